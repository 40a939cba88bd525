{
    "name": "Promo Engine (webhook path)",
    "version": "1.0.0",
    "summary": "The automation rule that tells promoengine an order was paid, for installations without the Promo Engine module",
    "description": """
Installs, switched off, the automation rule of promoengine's webhook path
(docs/ODOO.md, "Without the module"): when a POS order's state is set to
Paid, Odoo posts the order's id, state, company and POS config to the
engine's /v1/odoo/webhook; the engine records the id at once and reads the
order back with JSON-RPC. Set the URL (with a key of role webhook) and
activate the rule under Settings > Technical > Automation Rules.

Do not use it together with the Promo Engine module: that one sends the
orders itself, through an outbox.
""",
    "category": "Sales/Point of Sale",
    "depends": ["point_of_sale", "base_automation"],
    "data": ["data/automation_rule.xml"],
    "license": "LGPL-3",
    "installable": True,
}
