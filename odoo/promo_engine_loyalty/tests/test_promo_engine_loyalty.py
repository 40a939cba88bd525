import json

from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install", "promo_engine")
class TestPromoEngineLoyalty(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.cola = env["product.product"].create({"name": "Cola", "list_price": 2.5, "available_in_pos": True})
        cls.ann = env["res.partner"].create({"name": "Ann"})
        cls.config = env["pos.config"].create({"name": "Loyalty shadow shop"})
        cls.session = env["pos.session"].create({"config_id": cls.config.id})
        cls.loyalty = env["loyalty.program"].create({
            "name": "Points", "program_type": "loyalty", "applies_on": "both", "trigger": "auto",
            "rule_ids": [(0, 0, {"reward_point_mode": "money", "reward_point_amount": 1})],
            "reward_ids": [(0, 0, {"reward_type": "discount", "discount_mode": "per_point", "discount": 0.01,
                                   "required_points": 100})],
        })
        cls.next_order = env["loyalty.program"].create({
            "name": "Come back", "program_type": "next_order_coupons", "applies_on": "future", "trigger": "auto",
            "rule_ids": [(0, 0, {"reward_point_mode": "order", "reward_point_amount": 1, "minimum_amount": 5})],
            "reward_ids": [(0, 0, {"reward_type": "discount", "discount_mode": "percent", "discount": 10,
                                   "discount_applicability": "order"})],
        })
        cls.card = env["loyalty.card"].create({"program_id": cls.loyalty.id, "partner_id": cls.ann.id, "points": 300})

    def _order(self, lines, partner=None):
        return self.env["pos.order"].create({
            "session_id": self.session.id, "partner_id": partner.id if partner else False,
            "amount_tax": 0.0, "amount_total": 0.0, "amount_paid": 0.0, "amount_return": 0.0,
            "lines": [(0, 0, dict(price_subtotal=0.0, price_subtotal_incl=0.0, **line)) for line in lines],
        })

    def test_point_changes_are_recorded_with_the_cards(self):
        reward = self.loyalty.reward_ids
        order = self._order([
            {"product_id": self.cola.id, "qty": 4, "price_unit": 2.5},
            {"product_id": reward.discount_line_product_id.id, "qty": 1, "price_unit": -1.0, "is_reward_line": True,
             "reward_id": reward.id, "coupon_id": self.card.id, "points_cost": 100, "reward_identifier_code": "r1"},
        ], self.ann)
        # As the POS sends it after the order: the loyalty card won 9 points
        # and paid 100 for the reward; a next order coupon is created (-1).
        order.confirm_coupon_programs({
            str(self.card.id): {"program_id": self.loyalty.id, "coupon_id": self.card.id, "points": 9 - 100,
                                "line_codes": ["r1"], "partner_id": self.ann.id},
            "-1": {"program_id": self.next_order.id, "coupon_id": -1, "points": 1, "barcode": False},
        })
        changes = json.loads(order.promo_engine_loyalty_points)
        created = self.env["loyalty.card"].search([("source_pos_order_id", "=", order.id)])
        self.assertEqual(len(created), 1)
        self.assertEqual(changes, [
            {"program_id": self.next_order.id, "card_id": created.id, "code": created.code, "points": 1,
             "balance": 1.0, "created": True, "line_codes": []},
            {"program_id": self.loyalty.id, "card_id": self.card.id, "code": self.card.code, "points": -91,
             "balance": 209.0, "created": False, "line_codes": ["r1"]},
        ])
        self.assertEqual(self.card.points, 209)

    def test_an_order_without_loyalty_records_nothing(self):
        order = self._order([{"product_id": self.cola.id, "qty": 1, "price_unit": 2.5}])
        self.assertFalse(order.promo_engine_loyalty_points)
