from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    promo_engine_points_balance = fields.Char("Points balance", readonly=True, copy=False,
                                              help="As promoengine reported it with the customer's latest order.")
    promo_engine_level = fields.Char("Membership level", readonly=True, copy=False)
    promo_engine_as_of = fields.Char("Promotions as of", readonly=True, copy=False,
                                     help="Business time (UTC) of the order whose result set the balance and level.")
