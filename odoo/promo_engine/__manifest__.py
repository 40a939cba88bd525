{
    "name": "Promo Engine",
    "version": "1.0.0",  # Odoo prefixes the series: 17.0.1.0.0, 18.0.1.0.0
    "summary": "Send paid POS orders to promoengine and store its promotions, points and levels",
    "description": """
Connects Odoo Point of Sale to promoengine (https://github.com/promoengine/promoengine).

* Every order that becomes paid (or done, invoiced) writes its events to an
  outbox in the same transaction; a post-commit hook and a cron send them to
  the engine's POST /v1/events with retries and backoff, so no order is lost
  while the engine or the network is down. Point of Sale > Configuration >
  Promo Engine Outbox shows what is pending or failed.
* promo_engine_apply, called by the engine, stores each result on its order
  (status, discounts, points) and the customer's balance and level on the
  partner, exactly once per result.
* Settings > Point of Sale > Promo Engine: the engine's URL and key.
""",
    "category": "Sales/Point of Sale",
    "depends": ["point_of_sale"],
    "data": [
        "security/ir.model.access.csv",
        "views/promo_engine_outbox_views.xml",
        "views/pos_order_views.xml",
        "views/res_partner_views.xml",
        "views/res_config_settings_views.xml",
    ],
    "license": "LGPL-3",
    "installable": True,
    "application": False,
}
