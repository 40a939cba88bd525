import json
import logging
from datetime import datetime, timezone

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .event_builder import FINAL_STATES, order_events

_logger = logging.getLogger(__name__)


class PosOrder(models.Model):
    _inherit = "pos.order"

    promo_engine_status = fields.Char("Promotion status", readonly=True, copy=False,
                                      help="applied or rejected, as promoengine answered for the last result.")
    promo_engine_gross = fields.Char("Promotion gross", readonly=True, copy=False)
    promo_engine_discount = fields.Char("Promotion discount", readonly=True, copy=False)
    promo_engine_net = fields.Char("Promotion net", readonly=True, copy=False)
    promo_engine_discounts = fields.Text("Discounts", readonly=True, copy=False,
                                         help="Every allocation: program, layer, line, amount.")
    promo_engine_points_earned = fields.Char("Points earned", readonly=True, copy=False)
    promo_engine_points_redeemed = fields.Char("Points redeemed", readonly=True, copy=False)
    promo_engine_points_balance = fields.Char("Points balance after", readonly=True, copy=False)
    promo_engine_level = fields.Char("Membership level", readonly=True, copy=False)
    promo_engine_error = fields.Char("Promotion error", readonly=True, copy=False)
    promo_engine_result = fields.Text("Last result (JSON)", readonly=True, copy=False)
    # Every result applied, one event id a line: a result delivered again is
    # recognised even when a later one was applied meanwhile.
    promo_engine_event_ids = fields.Text("Results applied", readonly=True, copy=False)
    promo_engine_deliveries = fields.Integer("Result deliveries", readonly=True, copy=False,
                                             help="Calls of promo_engine_apply, repeated deliveries included.")
    promo_engine_outbox_ids = fields.One2many("promo.engine.outbox", "order_id", string="Events sent", readonly=True)

    # -- Odoo → engine: queue the order's events when it becomes final -----

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        orders.filtered(lambda o: o.state in FINAL_STATES)._promo_engine_enqueue()
        return orders

    def write(self, vals):
        res = super().write(vals)
        if vals.get("state") in FINAL_STATES:
            self._promo_engine_enqueue()
        return res

    def _promo_engine_db(self):
        return self.env["ir.config_parameter"].sudo().get_param("promo_engine.db") or self.env.cr.dbname

    def _promo_engine_enqueue(self):
        outbox = self.env["promo.engine.outbox"].sudo()
        if not self.env["ir.config_parameter"].sudo().get_param("promo_engine.url"):
            return  # not configured: nothing is queued (the engine's reconciler, if any, still finds the orders)
        db = self._promo_engine_db()
        for order in self:
            events, skipped = order_events(order, db)
            if skipped:
                _logger.info("promo_engine: lines of %s not sent: %s", order.name, skipped)
            if events:
                outbox._enqueue(events, order)

    # -- engine → Odoo: store a result ------------------------------------

    def promo_engine_apply(self, result):
        """Store a promoengine result on the order, once.

        Called by the engine's pusher with execute_kw('pos.order',
        'promo_engine_apply', [[order_id], result], {}). Delivery is at least
        once: a result already applied (same event_id) is counted and
        ignored. The customer's balance and level are stored on the partner
        when the result is not older than what the partner shows. Raising
        UserError dead-letters the result on the engine's side.
        """
        if not isinstance(result, dict) or not result.get("event_id"):
            raise UserError(_("promo_engine_apply expects a result object with an event_id."))
        event_id = result["event_id"]
        for order in self:
            applied = (order.promo_engine_event_ids or "").split()
            vals = {"promo_engine_deliveries": order.promo_engine_deliveries + 1}
            if event_id not in applied:
                vals.update(self._promo_engine_result_values(result))
                vals["promo_engine_event_ids"] = "\n".join(applied + [event_id])
                order._promo_engine_update_partner(result)
            order.write(vals)
        return True

    @api.model
    def _promo_engine_result_values(self, result):
        totals = result.get("totals") or {}
        points = result.get("points") or {}
        membership = result.get("membership") or {}
        error = result.get("error") or {}
        discounts = "\n".join(
            "%s (%s) line %s: %s" % (d.get("program_id"), d.get("layer"), d.get("line_id"), d.get("amount"))
            for d in result.get("discounts") or [])
        return {
            "promo_engine_status": result.get("status"),
            "promo_engine_gross": totals.get("gross"),
            "promo_engine_discount": totals.get("discount"),
            "promo_engine_net": totals.get("net"),
            "promo_engine_discounts": discounts or False,
            "promo_engine_points_earned": points.get("earned"),
            "promo_engine_points_redeemed": points.get("redeemed"),
            "promo_engine_points_balance": points.get("balance"),
            "promo_engine_level": membership.get("level"),
            "promo_engine_error": ("%s: %s" % (error.get("code"), error.get("message"))) if error else False,
            "promo_engine_result": json.dumps(result, ensure_ascii=False),
        }

    def _promo_engine_update_partner(self, result):
        customer = result.get("customer_id")
        points = result.get("points") or {}
        membership = result.get("membership") or {}
        if not customer or not (points.get("balance") or membership.get("level")):
            return
        try:
            partner = self.env["res.partner"].sudo().browse(int(customer)).exists()
        except ValueError:
            return
        if not partner:
            return
        occurred = _utc(result.get("occurred_at"))
        # Results of one customer may arrive out of order (different
        # orders are pushed in parallel): keep the latest by business time.
        if partner.promo_engine_as_of and occurred < partner.promo_engine_as_of:
            return
        vals = {"promo_engine_as_of": occurred}
        if points.get("balance") is not None:
            vals["promo_engine_points_balance"] = points.get("balance")
        if membership.get("level"):
            vals["promo_engine_level"] = membership.get("level")
        partner.write(vals)


def _utc(text):
    """An RFC 3339 time as comparable UTC text ("" when unreadable)."""
    try:
        t = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return ""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
