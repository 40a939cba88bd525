#!/usr/bin/env python3
"""Generates examples/orders.jsonl: one Saturday (2026-11-21) of a Warung Kita store.

Deterministic (fixed seed), so the file only changes when this script does.
Run: python3 examples/gen_orders.py > examples/orders.jsonl
"""
import json, random

random.seed(20261128)
PRODUCTS = [
    ("501", "Teh Botol Sosro 450ml", ["minuman-dingin"], ["drink"], "5500"),
    ("502", "Aqua 600ml", ["minuman-dingin"], ["drink"], "3500"),
    ("503", "Coca-Cola 390ml", ["minuman-dingin"], ["drink"], "6500"),
    ("601", "Sari Roti Tawar", ["roti"], ["bakery"], "16500"),
    ("602", "Roti Sobek Coklat", ["roti"], ["bakery"], "13000"),
    ("701", "Indomie Goreng", ["mie"], ["mie-instan"], "3100"),
    ("702", "Mie Sedaap Soto", ["mie"], ["mie-instan"], "3000"),
    ("801", "Minyak Bimoli 2L", ["minyak-goreng"], [], "38900"),
    ("802", "Minyak Sania 1L", ["minyak-goreng"], [], "19500"),
    ("901", "Beras Pandan Wangi 5kg", ["sembako"], [], "72000"),
    ("902", "Gula Pasir 1kg", ["sembako"], [], "17500"),
    ("903", "Telur Ayam (kg)", ["sembako"], ["timbang"], "29000"),
    ("1001", "Sabun Lifebuoy", ["perawatan"], [], "4500"),
]
CUSTOMERS = [str(1001 + i) for i in range(40)]

out = []
order_id = 50000
paid = []
for minute in range(7 * 60, 22 * 60, 4):  # a sale every 4 minutes, 07:00-22:00
    order_id += 1
    hh, mm = divmod(minute, 60)
    occurred = f"2026-11-21T{hh:02d}:{mm:02d}:{random.randint(0, 59):02d}+07:00"
    lines = []
    for n, p in enumerate(random.sample(PRODUCTS, random.randint(1, 5)), start=1):
        pid, name, cats, tags, price = p
        qty = str(random.choice(["0.5", "1", "1.5"])) if "timbang" in tags else str(random.choice([1, 1, 2, 2, 3, 4, 6]))
        lines.append({"id": str(n), "product_id": pid, "category_ids": cats, "tag_ids": tags,
                      "qty": qty, "unit_price": price})
    order = {"id": str(order_id), "name": f"WK-JKT-017/{order_id - 50000:04d}", "currency": "IDR", "lines": lines}
    if random.random() < 0.7:
        order["customer_id"] = random.choice(CUSTOMERS)
        if random.random() < 0.15:
            order["coupon_codes"] = [random.choice(["HEMAT10", "hemat10"])]
        if minute > 18 * 60 and random.random() < 0.1:
            order["redeem_points"] = "50"
    ev = {"event_id": f"warungkita:pos.order:{order_id}:paid", "type": "pos.order.paid",
          "occurred_at": occurred, "company_id": "1", "pos_config_id": str(random.randint(1, 4)), "order": order}
    out.append(ev)
    paid.append(ev)

# Two returns and a cancellation late in the day.
for ev, qty_share in ((paid[10], 1), (paid[40], None)):
    order_id += 1
    line = ev["order"]["lines"][0]
    qty = line["qty"] if qty_share is None else "1"
    out.append({"event_id": f"warungkita:pos.order:{order_id}:returned", "type": "pos.order.returned",
                "occurred_at": "2026-11-21T21:30:00+07:00", "company_id": "1", "pos_config_id": "1",
                "order": {"id": str(order_id), "original_order_id": ev["order"]["id"],
                          "lines": [{"line_id": line["id"], "qty": qty}]}})
out.append({"event_id": f"warungkita:pos.order:{paid[20]['order']['id']}:cancelled", "type": "pos.order.cancelled",
            "occurred_at": "2026-11-21T21:45:00+07:00", "company_id": "1", "pos_config_id": "2",
            "order": {"id": paid[20]["order"]["id"]}})

for ev in out:
    print(json.dumps(ev, separators=(",", ":")))
