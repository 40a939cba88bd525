#!/usr/bin/env python3
"""Generates examples/orders.jsonl: one Saturday (2026-11-21) of four Warung Kita stores.

Deterministic (fixed seed), so the file only changes when this script does.
Run: python3 examples/gen_orders.py > examples/orders.jsonl

Besides the day's sales it holds two big orders of a year before (two regulars
who reached silver then, whose tier the daily job warns is about to drop), and
members presenting the "come back" coupons that earlier baskets of the day
earned. Coupon codes are derived from the event id with the coupon secret; the
ones here are those `promoengine dev` issues with its fixed development secret
(under another PROMO_COUPON_SECRET they are codes nobody was issued).
"""
import hashlib, hmac, json, random

DEV_COUPON_SECRET = b"dev-coupon-secret-not-for-production"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def coupon_code(event_id, program_id):
    """The code promoengine derives (pkg/ledger CouponCode): HMAC-SHA256 over the
    event id's length (uvarint), the event id and the issuing program id; the
    first 60 bits in Crockford base32."""
    n, prefix = len(event_id.encode()), b""
    while n >= 0x80:
        prefix += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    prefix += bytes([n])
    mac = hmac.new(DEV_COUPON_SECRET, prefix + event_id.encode() + program_id.encode(), hashlib.sha256).digest()
    v = int.from_bytes(mac[:8], "big") >> 4
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in reversed(range(12)))


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
# A year before: a warung owner and a caterer buy in bulk and reach silver
# (3.000.000 over 365 days). Their spend of that day leaves the window on 24
# and 26 November 2026.
for oid, cust, day, lines in (
    ("49001", "1003", "2025-11-24T10:00:00+07:00", [("901", 45)]),
    ("49002", "1017", "2025-11-26T09:30:00+07:00", [("901", 40), ("801", 6)]),
):
    ls = []
    for n, (pid, qty) in enumerate(lines, start=1):
        p = next(p for p in PRODUCTS if p[0] == pid)
        ls.append({"id": str(n), "product_id": pid, "category_ids": p[2], "tag_ids": p[3], "qty": str(qty), "unit_price": p[4]})
    out.append({"event_id": f"warungkita:pos.order:{oid}:paid", "type": "pos.order.paid", "occurred_at": day,
                "company_id": "1", "pos_config_id": "1",
                "order": {"id": oid, "name": f"WK-JKT-017/{oid}", "currency": "IDR", "customer_id": cust, "lines": ls}})

STORES = {"1": "WK-JKT-017", "2": "WK-JKT-018", "3": "WK-JKT-021", "4": "WK-JKT-024"}
order_id = 50000
paid = []
coupons = {}  # customer → codes that baskets of Rp 180.000+ gross probably earned today
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
    store = str(random.randint(1, 4))
    order = {"id": str(order_id), "name": f"{STORES[store]}/{order_id - 50000:04d}", "currency": "IDR", "lines": lines}
    event_id = f"warungkita:pos.order:{order_id}:paid"
    if random.random() < 0.7:
        customer = random.choice(CUSTOMERS)
        order["customer_id"] = customer
        codes = []
        if random.random() < 0.15:
            codes.append(random.choice(["HEMAT10", "hemat10"]))
        if coupons.get(customer) and random.random() < 0.5:
            code = coupons[customer].pop(0)
            codes.append(code if random.random() < 0.7 else code.lower())  # typed in by hand
        if codes:
            order["coupon_codes"] = codes
        if minute > 18 * 60 and random.random() < 0.1:
            order["redeem_points"] = "50"
        gross = sum(float(l["qty"]) * int(l["unit_price"]) for l in lines)
        if gross >= 180000:
            coupons.setdefault(customer, []).append(coupon_code(event_id, "kembali-issue"))
    ev = {"event_id": event_id, "type": "pos.order.paid",
          "occurred_at": occurred, "company_id": "1", "pos_config_id": store, "order": order}
    out.append(ev)
    paid.append(ev)

# Two returns and a cancellation late in the day. The first return is of a
# member's big basket, which voids the coupon it earned if it is still unused.
unused = {code for codes in coupons.values() for code in codes}
big = next(ev for ev in paid[60:] if coupon_code(ev["event_id"], "kembali-issue") in unused)
for ev, qty_share in ((big, 1), (paid[40], None)):
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
