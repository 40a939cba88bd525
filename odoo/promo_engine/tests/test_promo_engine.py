import json
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged

from ..models import promo_engine_outbox


class FakeResponse:
    def __init__(self, status, body):
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)

    def json(self):
        return self._body


@tagged("post_install", "-at_install", "promo_engine")
class TestPromoEngine(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        params = env["ir.config_parameter"].sudo()
        params.set_param("promo_engine.url", "http://engine.test")
        params.set_param("promo_engine.api_key", "k-test")
        params.set_param("promo_engine.db", "shop")
        cls.drinks = env["product.category"].create({"name": "Drinks"})
        cls.soda = env["product.category"].create({"name": "Soda", "parent_id": cls.drinks.id})
        cls.cola = env["product.product"].create({"name": "Cola", "categ_id": cls.soda.id, "list_price": 2.5,
                                                   "available_in_pos": True})
        cls.chips = env["product.product"].create({"name": "Chips", "list_price": 1.0, "available_in_pos": True})
        cls.ann = env["res.partner"].create({"name": "Ann"})
        cls.config = env["pos.config"].create({"name": "Promo test shop"})
        cls.session = env["pos.session"].create({"config_id": cls.config.id})

    def _order(self, lines, partner=None):
        return self.env["pos.order"].create({
            "session_id": self.session.id, "partner_id": partner.id if partner else False,
            "amount_tax": 0.0, "amount_total": 0.0, "amount_paid": 0.0, "amount_return": 0.0,
            "lines": [(0, 0, dict(price_subtotal=0.0, price_subtotal_incl=0.0, **line)) for line in lines],
        })

    def _outbox(self, order):
        return self.env["promo.engine.outbox"].search([("order_id", "=", order.id)], order="event_id")

    def test_paid_order_queues_its_event_in_the_same_transaction(self):
        order = self._order([{"product_id": self.cola.id, "qty": 2, "price_unit": 2.5},
                             {"product_id": self.chips.id, "qty": 1, "price_unit": 1.0, "discount": 10},
                             {"product_id": self.chips.id, "qty": 1, "price_unit": -0.5}], self.ann)
        self.assertFalse(self._outbox(order), "a draft is not sent")
        order.write({"state": "paid"})
        order.write({"state": "done"})  # final again: queued once
        box = self._outbox(order)
        self.assertEqual(len(box), 1)
        self.assertEqual(box.event_id, "shop:pos.order:%d:paid" % order.id)
        self.assertEqual(box.state, "pending")
        event = json.loads(box.payload)
        lines = order.lines.sorted("id")
        self.assertEqual(event["type"], "pos.order.paid")
        self.assertEqual(event["company_id"], str(order.company_id.id))
        self.assertEqual(event["pos_config_id"], str(self.config.id))
        self.assertTrue(event["occurred_at"].endswith("Z"))
        self.assertEqual(event["order"]["customer_id"], str(self.ann.id))
        self.assertEqual(event["order"]["currency"], order.currency_id.name)
        chain = lambda categ: list(reversed(categ.parent_path.strip("/").split("/")))  # noqa: E731
        self.assertEqual(chain(self.soda)[:2], [str(self.soda.id), str(self.drinks.id)])
        self.assertEqual(event["order"]["lines"], [
            {"id": str(lines[0].id), "product_id": str(self.cola.id), "category_ids": chain(self.soda),
             "qty": "2", "unit_price": "2.5"},
            {"id": str(lines[1].id), "product_id": str(self.chips.id), "category_ids": chain(self.chips.categ_id),
             "qty": "1", "unit_price": "0.9"},
        ], "the negative discount line is not goods")

    def test_refund_and_exchange_give_returned_events(self):
        sale = self._order([{"product_id": self.cola.id, "qty": 3, "price_unit": 2.5}], self.ann)
        sale.write({"state": "paid"})
        exchange = self._order([
            {"product_id": self.cola.id, "qty": -1, "price_unit": 2.5, "refunded_orderline_id": sale.lines.id},
            {"product_id": self.chips.id, "qty": 1, "price_unit": 1.0}], self.ann)
        exchange.write({"state": "paid"})
        box = self._outbox(exchange)
        self.assertEqual(box.mapped("event_id"), ["shop:pos.order:%d:paid" % exchange.id,
                                                  "shop:pos.order:%d:returned" % exchange.id])
        returned = json.loads(box.filtered(lambda b: b.event_type == "pos.order.returned").payload)
        self.assertEqual(returned["order"]["original_order_id"], str(sale.id))
        self.assertEqual(returned["order"]["lines"], [{"line_id": str(sale.lines.id), "qty": "1"}])

    def test_send_marks_sent_and_backs_off_on_failure(self):
        order = self._order([{"product_id": self.cola.id, "qty": 1, "price_unit": 2.5}])
        order.write({"state": "paid"})
        box = self._outbox(order)
        promo_engine_outbox._trip(True)
        with patch("requests.Session.post", return_value=FakeResponse(503, {"error": {}})) as post:
            box._send((1, 1))
        self.assertEqual(post.call_args.kwargs["headers"]["Authorization"], "Bearer k-test")
        self.assertEqual(post.call_args.args[0], "http://engine.test/v1/events")
        self.assertEqual((box.state, box.attempts), ("pending", 1))
        self.assertIn("HTTP 503", box.last_error)
        self.assertTrue(promo_engine_outbox._circuit_open(), "the hook leaves sending to the cron for a while")
        with patch("requests.Session.post", return_value=FakeResponse(202, {"stream_seq": 42, "duplicate": False})):
            box._send((1, 1))
        self.assertEqual((box.state, box.stream_seq, box.attempts), ("sent", "42", 2))
        self.assertFalse(promo_engine_outbox._circuit_open())

        other = self._order([{"product_id": self.cola.id, "qty": 1, "price_unit": 2.5}])
        other.write({"state": "paid"})
        with patch("requests.Session.post", return_value=FakeResponse(400, {"error": {"code": "invalid_event"}})), \
                self.assertLogs("odoo.addons.promo_engine.models.promo_engine_outbox", level="ERROR"):
            self._outbox(other)._send((1, 1))
        self.assertEqual(self._outbox(other).state, "failed")

    def test_apply_stores_a_result_once_and_the_latest_balance_on_the_customer(self):
        order = self._order([{"product_id": self.cola.id, "qty": 1, "price_unit": 2.5}], self.ann)
        result = {"event_id": "result:shop:pos.order:%d:paid" % order.id, "status": "applied",
                  "occurred_at": "2026-11-28T10:15:00Z", "customer_id": str(self.ann.id),
                  "totals": {"gross": "2.50", "discount": "0.25", "net": "2.25"},
                  "discounts": [{"layer": "item", "program_id": "drinks-10", "line_id": "1", "amount": "0.25"}],
                  "points": {"earned": "2", "redeemed": "0", "balance": "12"},
                  "membership": {"path": "default", "level": "silver"}}
        self.assertTrue(order.promo_engine_apply(result))
        self.assertTrue(order.promo_engine_apply(dict(result, status="tampered")))  # delivered again
        self.assertEqual(order.promo_engine_status, "applied")
        self.assertEqual(order.promo_engine_discount, "0.25")
        self.assertEqual(order.promo_engine_event_ids.split(), [result["event_id"]])
        self.assertEqual(order.promo_engine_deliveries, 2)
        self.assertEqual((self.ann.promo_engine_points_balance, self.ann.promo_engine_level), ("12", "silver"))
        older = dict(result, event_id="result:shop:pos.order:1:paid", occurred_at="2026-11-27T10:00:00+07:00",
                     points={"balance": "3"}, membership={"level": "classic"})
        order.promo_engine_apply(older)
        self.assertEqual(self.ann.promo_engine_points_balance, "12", "an older result does not set the balance")
        with self.assertRaises(UserError):
            order.promo_engine_apply({"status": "applied"})
