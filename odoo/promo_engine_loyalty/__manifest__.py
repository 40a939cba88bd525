{
    "name": "Promo Engine: Odoo loyalty in shadow",
    "version": "1.0.0",
    "summary": "Record on each POS order what Odoo's own loyalty changed on its cards, for promoengine's shadow comparison",
    "description": """
While a shop moves from Odoo's loyalty (pos_loyalty) to promoengine, the
engine runs in shadow: it computes every order and compares its result with
what Odoo's loyalty gave (docs/MIGRATION.md). The reward lines of an order say
which discounts Odoo gave and which points they cost, but Odoo 17 keeps only
each card's balance, not what one order won. This module records, on the
order, the point changes the Point of Sale confirmed for it
(confirm_coupon_programs): program, card, points changed, the card's balance
after, and whether the card was created by the order (a next order coupon).

It installs by itself when both promo_engine and pos_loyalty are installed,
and changes nothing else.
""",
    "category": "Sales/Point of Sale",
    "depends": ["promo_engine", "pos_loyalty"],
    "auto_install": True,
    "data": [],
    "license": "LGPL-3",
    "installable": True,
    "application": False,
}
