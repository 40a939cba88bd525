import json

from odoo import fields, models


class PosOrder(models.Model):
    _inherit = "pos.order"

    promo_engine_loyalty_points = fields.Text(
        "Loyalty point changes", readonly=True, copy=False,
        help="What Odoo's loyalty changed on its cards with this order, as the Point of Sale confirmed it "
             "(JSON: program, card, points changed, balance after, card created by the order). "
             "promoengine's shadow comparison reads it.")

    def confirm_coupon_programs(self, coupon_data):
        """Record the confirmed point changes, then let Odoo apply them.

        coupon_data maps a card id (negative for a card the order creates)
        to {program_id, points, line_codes, ...}; points is the change of the
        card: won minus the points_cost of the reward lines it paid.
        """
        entries = []
        for key, vals in (coupon_data or {}).items():
            try:
                entries.append((int(key), dict(vals)))
            except (TypeError, ValueError):
                continue
        result = super().confirm_coupon_programs(coupon_data)
        for order in self:
            order.sudo().write({"promo_engine_loyalty_points": json.dumps(order._promo_engine_point_changes(entries))})
        return result

    def _promo_engine_point_changes(self, entries):
        self.ensure_one()
        Card = self.env["loyalty.card"].sudo()
        created = Card.search([("source_pos_order_id", "=", self.id)], order="id")
        taken = Card
        out = []
        for key, vals in sorted(entries, key=lambda e: e[0]):
            program_id = vals.get("program_id")
            program = self.env["loyalty.program"].sudo().browse(program_id).exists()
            card = Card
            if key > 0:
                card = Card.browse(key).exists()
            elif program and program.program_type == "loyalty" and self.partner_id:
                # A new loyalty card for a customer who already had one is
                # the existing card (pos_loyalty's _check_existing_loyalty_cards).
                card = Card.search([("partner_id", "=", self.partner_id.id), ("program_id", "=", program.id)],
                                   order="id", limit=1)
            if not card:
                card = (created - taken).filtered(lambda c: c.program_id.id == program_id)[:1]
            taken |= card
            out.append({
                "program_id": program_id,
                "card_id": card.id or False,
                "code": card.code or False,
                "points": vals.get("points") or 0,
                "balance": card.points if card else False,
                "created": bool(card and card in created),
                "line_codes": vals.get("line_codes") or [],
            })
        return out
