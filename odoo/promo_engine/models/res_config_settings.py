from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    promo_engine_url = fields.Char(
        "Promo Engine URL", config_parameter="promo_engine.url",
        help="The engine's base URL, e.g. https://engine.example.com; events go to /v1/events.")
    promo_engine_api_key = fields.Char(
        "Promo Engine key", config_parameter="promo_engine.api_key",
        help="A key of the engine (PROMO_API_KEYS) with role pos, sent as Authorization: Bearer.")
    promo_engine_db = fields.Char(
        "Event id prefix", config_parameter="promo_engine.db",
        help="First part of every event id; must equal the engine's PROMO_ODOO_DB. Empty: this database's name.")
