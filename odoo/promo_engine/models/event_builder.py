"""Build promoengine input events (SPEC §3) from a pos.order, exactly as the
engine's read-back does (internal/odoo/pos_order.go), so that an order sent
by this module and one read back by the engine give the same events under
the same event ids: ``<db>:pos.order:<id>:paid`` and ``…:returned``
(``…:returned:<original id>`` when a refund gives back lines of several
orders). Amounts are decimal strings; floats are read from their shortest
repr, never through binary arithmetic."""

from decimal import ROUND_HALF_UP, Decimal

FINAL_STATES = ("paid", "done", "invoiced")
POS_CATEGORY_PREFIX = "pos:"
MAX_PRICE_DECIMALS = 10


def decimal_text(value):
    """A float as Odoo stores it, as a plain decimal string without
    trailing zeros: 25000.0 → "25000", 0.1 → "0.1"."""
    d = Decimal(repr(float(value or 0.0)))
    return _plain(d)


def _plain(d):
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")


def discounted_price(price, discount_percent):
    """price × (100 − discount) / 100, exact up to 10 decimals (half up);
    never below zero."""
    p = Decimal(repr(float(price or 0.0)))
    disc = Decimal(repr(float(discount_percent or 0.0)))
    if disc:
        p = p * (Decimal(100) - disc) / Decimal(100)
        if p.as_tuple().exponent < -MAX_PRICE_DECIMALS:
            p = p.quantize(Decimal(1).scaleb(-MAX_PRICE_DECIMALS), rounding=ROUND_HALF_UP)
    if p < 0:
        p = Decimal(0)
    return _plain(p)


def paid_event_id(db, order_id):
    return "%s:pos.order:%d:paid" % (db, order_id)


def returned_event_id(db, order_id, original_id=None):
    eid = "%s:pos.order:%d:returned" % (db, order_id)
    if original_id is not None:
        eid += ":%d" % original_id
    return eid


def _occurred_at(order):
    # date_order is stored in UTC without zone.
    return order.date_order.strftime("%Y-%m-%dT%H:%M:%SZ")


def _product_info(product):
    categories = []
    categ = product.categ_id
    if categ:
        path = [int(p) for p in (categ.parent_path or "").strip("/").split("/") if p]
        if not path:
            path = [categ.id]
        categories = [str(i) for i in reversed(path)]  # the category first, then its parents
    categories += [POS_CATEGORY_PREFIX + str(c.id) for c in product.pos_categ_ids]
    tags = [str(t.id) for t in product.product_tag_ids]
    return categories, tags


def order_events(order, db):
    """The events a final pos.order gives: a list of (event_id, type, dict),
    and the lines left out as (line id, reason). An exchange gives both a
    ``pos.order.returned`` and a ``pos.order.paid``."""
    if order.state not in FINAL_STATES:
        return [], []
    config = order.config_id or order.session_id.config_id
    envelope = {
        "occurred_at": _occurred_at(order),
        "company_id": str(order.company_id.id),
        "pos_config_id": str(config.id),
    }
    sold, returned, skipped = [], [], []
    for line in order.lines.sorted("id"):
        qty, price = line.qty, line.price_unit
        if not qty:
            skipped.append((line.id, "zero quantity"))
        elif qty < 0 and line.refunded_orderline_id:
            returned.append(line)
        elif qty < 0:
            skipped.append((line.id, "negative quantity without refunded_orderline_id"))
        elif price < 0:
            skipped.append((line.id, "negative unit price: an Odoo discount or reward line, not goods"))
        else:
            sold.append(line)
    events = []
    if sold:
        paid = {"id": str(order.id), "name": order.name, "currency": order.currency_id.name}
        if order.partner_id:
            paid["customer_id"] = str(order.partner_id.id)
        paid["lines"] = []
        for line in sold:
            categories, tags = _product_info(line.product_id)
            ev_line = {"id": str(line.id), "product_id": str(line.product_id.id)}
            if categories:
                ev_line["category_ids"] = categories
            if tags:
                ev_line["tag_ids"] = tags
            ev_line["qty"] = decimal_text(line.qty)
            ev_line["unit_price"] = discounted_price(line.price_unit, line.discount)
            paid["lines"].append(ev_line)
        eid = paid_event_id(db, order.id)
        events.append((eid, "pos.order.paid", dict(event_id=eid, type="pos.order.paid", **envelope, order=paid)))
    if returned:
        groups = {}
        for line in returned:
            original_line = line.refunded_orderline_id
            original = original_line.order_id.id
            group = groups.setdefault(original, {})
            qty = Decimal(repr(float(-line.qty)))
            group[original_line.id] = group.get(original_line.id, Decimal(0)) + qty
        multi = len(groups) > 1
        for original in sorted(groups):
            lines = [{"line_id": str(lid), "qty": _plain(q)} for lid, q in groups[original].items()]
            eid = returned_event_id(db, order.id, original if multi else None)
            body = {"id": str(order.id), "name": order.name, "original_order_id": str(original), "lines": lines}
            events.append((eid, "pos.order.returned", dict(event_id=eid, type="pos.order.returned", **envelope, order=body)))
    return events, skipped
