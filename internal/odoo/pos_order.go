package odoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// The Odoo fields POSOrderEvents reads, model by model. Each exists in Odoo
// 17 and 18 under this name; the user of the API key needs read access to
// these models (a Point of Sale user has it).
var (
	// POSOrderFields of pos.order. config_id is a related field of
	// session_id.config_id; the session is read only when it is empty.
	// The refund link is read on the lines (refunded_orderline_id), which
	// both versions have, rather than on the order (refunded_order_ids in
	// 17, refunded_order_id in 18).
	POSOrderFields = []string{"name", "state", "date_order", "partner_id", "company_id",
		"config_id", "session_id", "currency_id", "lines"}
	// POSOrderLineFields of pos.order.line. discount is the percentage
	// given at the till; refunded_orderline_id points a refund line at the
	// line it gives back.
	POSOrderLineFields = []string{"order_id", "product_id", "qty", "price_unit", "discount", "refunded_orderline_id"}
	// RefundedLineFields of the original pos.order.line of a refund line.
	RefundedLineFields = []string{"order_id"}
	// ProductFields of product.product (product_tag_ids comes from the
	// template through Odoo's delegation inheritance).
	ProductFields = []string{"categ_id", "pos_categ_ids", "product_tag_ids"}
	// ProductCategoryFields of product.category: parent_path "1/5/12/"
	// gives a category's ancestors in one read.
	ProductCategoryFields = []string{"parent_path"}
	// POSSessionFields of pos.session, read only when an order has no
	// config_id.
	POSSessionFields = []string{"config_id"}
)

// PublishableStates are the pos.order states whose order is final: paid at
// the till, posted at session closing (done), or invoiced. A draft order may
// still change, and a cancelled one was never paid.
var PublishableStates = []string{"paid", "done", "invoiced"}

// POSCategoryPrefix marks POS categories (pos.category) among a line's
// category_ids, which also holds product categories (product.category): the
// two models number their records independently.
const POSCategoryPrefix = "pos:"

// ErrOrderNotFound: no pos.order with that id is visible to the API user
// (not created yet, deleted, or in another company the user cannot read).
var ErrOrderNotFound = errors.New("odoo: pos.order not found")

// POSOrder is what POSOrderEvents found.
type POSOrder struct {
	ID    int64
	Name  string
	State string
	// CompanyID and POSConfigID are the order's company_id and config_id
	// (or its session's), set for a publishable order: the store scope of
	// the credential that recorded it is checked against them.
	CompanyID   string
	POSConfigID string
	// Events are the input events the order gives: a pos.order.paid for its
	// lines sold, a pos.order.returned for its lines given back (one per
	// original order). An exchange gives both. Empty when the state is not
	// publishable or no line qualifies.
	Events  []OrderEvent
	Skipped []SkippedLine
}

// Publishable reports whether the order is in a final state.
func (o *POSOrder) Publishable() bool { return slices.Contains(PublishableStates, o.State) }

// OrderEvent is one event, decoded and as the bytes to publish.
type OrderEvent struct {
	Event *events.Event
	Data  []byte
}

// SkippedLine is a line of the order that is not part of any event.
type SkippedLine struct {
	LineID int64  `json:"line_id"`
	Reason string `json:"reason"`
}

// PaidEventID and ReturnedEventID are the deterministic event ids of an
// order, so that publishing the same order twice is recognised by
// JetStream's de-duplication and by the engine's inbox.
func PaidEventID(db string, orderID int64) string {
	return db + ":pos.order:" + strconv.FormatInt(orderID, 10) + ":paid"
}

// ReturnedEventID is the id of the return of lines of originalID by the
// refund order orderID; multi is set when the refund gives back lines of
// several orders, each then getting its own event.
func ReturnedEventID(db string, orderID, originalID int64, multi bool) string {
	id := db + ":pos.order:" + strconv.FormatInt(orderID, 10) + ":returned"
	if multi {
		id += ":" + strconv.FormatInt(originalID, 10)
	}
	return id
}

// POSOrderEvents reads pos.order orderID back from Odoo with its lines and
// products and builds the events it gives (see POSOrder). db names the Odoo
// database in the event ids. Only the fields listed above are read.
//
// Mapping (Odoo → event):
//
//	event_id        <db>:pos.order:<id>:paid | :returned
//	occurred_at     date_order (UTC in Odoo) as RFC 3339 with Z
//	company_id      company_id
//	pos_config_id   config_id (or session_id.config_id)
//	order.id        id;  order.name  name
//	order.currency  currency_id's name (the ISO code)
//	order.customer_id  partner_id (absent for an anonymous order)
//	line.id, product_id     pos.order.line id, product_id
//	line.category_ids  product's categ_id and its parents, then pos_categ_ids as "pos:<id>"
//	line.tag_ids    product_tag_ids
//	line.qty        qty (> 0)
//	line.unit_price price_unit × (100 − discount) / 100
//	returned line   line_id = refunded_orderline_id, qty = −qty,
//	                original_order_id = that line's order_id
//
// Lines with a negative price (Odoo's own discount and reward lines), a
// zero quantity, or a negative quantity without refunded_orderline_id are
// not sent and are listed in Skipped.
func POSOrderEvents(ctx context.Context, c *Client, db string, orderID int64) (*POSOrder, error) {
	recs, err := c.SearchRead(ctx, "pos.order", []any{[]any{"id", "=", orderID}}, POSOrderFields, nil)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: id %d", ErrOrderNotFound, orderID)
	}
	order := recs[0]
	o := &POSOrder{ID: orderID, Name: order.String("name"), State: order.String("state")}
	if !o.Publishable() {
		return o, nil
	}
	b := &orderBuilder{c: c, db: db, order: order, out: o}
	if err := b.build(ctx); err != nil {
		return nil, fmt.Errorf("odoo: pos.order %d: %w", orderID, err)
	}
	return o, nil
}

type orderBuilder struct {
	c     *Client
	db    string
	order Record
	out   *POSOrder

	occurredAt  string
	companyID   string
	posConfigID string
	currency    string
}

func (b *orderBuilder) build(ctx context.Context) error {
	at, err := b.order.Datetime("date_order")
	if err != nil {
		return err
	}
	b.occurredAt = events.FormatTime(at)
	company, _, ok := b.order.Many2one("company_id")
	if !ok {
		return errors.New("company_id is empty")
	}
	b.companyID = itoa(company)
	if b.posConfigID, err = b.configID(ctx); err != nil {
		return err
	}
	b.out.CompanyID, b.out.POSConfigID = b.companyID, b.posConfigID
	if _, b.currency, ok = b.order.Many2one("currency_id"); !ok || b.currency == "" {
		return errors.New("currency_id is empty")
	}

	lines, err := b.c.Read(ctx, "pos.order.line", sortedIDs(b.order.IDs("lines")), POSOrderLineFields)
	if err != nil {
		return err
	}
	slices.SortFunc(lines, func(x, y Record) int { return cmpInt(x.ID(), y.ID()) })

	var sold, returned []Record
	for _, l := range lines {
		qty, err := l.Decimal("qty")
		if err != nil {
			return err
		}
		price, err := l.Decimal("price_unit")
		if err != nil {
			return err
		}
		_, _, refunds := l.Many2one("refunded_orderline_id")
		switch {
		case qty.IsZero():
			b.skip(l, "zero quantity")
		case qty.Sign() < 0 && refunds:
			returned = append(returned, l)
		case qty.Sign() < 0:
			b.skip(l, "negative quantity without refunded_orderline_id: a return without its original line cannot be reversed")
		case price.Sign() < 0:
			b.skip(l, "negative unit price: an Odoo discount or reward line, not goods")
		default:
			sold = append(sold, l)
		}
	}
	if len(sold) > 0 {
		if err := b.paid(ctx, sold); err != nil {
			return err
		}
	}
	if len(returned) > 0 {
		if err := b.returned(ctx, returned); err != nil {
			return err
		}
	}
	return nil
}

func (b *orderBuilder) skip(l Record, reason string) {
	b.out.Skipped = append(b.out.Skipped, SkippedLine{LineID: l.ID(), Reason: reason})
}

// configID is config_id, or the session's when the order has none.
func (b *orderBuilder) configID(ctx context.Context) (string, error) {
	if id, _, ok := b.order.Many2one("config_id"); ok {
		return itoa(id), nil
	}
	session, _, ok := b.order.Many2one("session_id")
	if !ok {
		return "", errors.New("config_id and session_id are empty")
	}
	recs, err := b.c.Read(ctx, "pos.session", []int64{session}, POSSessionFields)
	if err != nil {
		return "", err
	}
	if len(recs) == 0 {
		return "", fmt.Errorf("pos.session %d not found", session)
	}
	id, _, ok := recs[0].Many2one("config_id")
	if !ok {
		return "", fmt.Errorf("pos.session %d has no config_id", session)
	}
	return itoa(id), nil
}

// paid builds the pos.order.paid event of the lines sold.
func (b *orderBuilder) paid(ctx context.Context, sold []Record) error {
	products, err := b.products(ctx, sold)
	if err != nil {
		return err
	}
	p := &events.PaidOrder{ID: events.ID(itoa(b.out.ID)), Name: b.out.Name, Currency: b.currency}
	if partner, _, ok := b.order.Many2one("partner_id"); ok {
		p.CustomerID = events.ID(itoa(partner))
	}
	for _, l := range sold {
		productID, _, ok := l.Many2one("product_id")
		if !ok {
			return fmt.Errorf("pos.order.line %d has no product_id", l.ID())
		}
		qty, _ := l.Decimal("qty")
		price, _ := l.Decimal("price_unit")
		discount, err := l.Decimal("discount")
		if err != nil {
			return err
		}
		pr := products[productID]
		p.Lines = append(p.Lines, events.Line{
			ID: events.ID(itoa(l.ID())), ProductID: events.ID(itoa(productID)),
			CategoryIDs: pr.categories, TagIDs: pr.tags,
			Qty: qty, UnitPrice: discounted(price, discount),
		})
	}
	return b.add(PaidEventID(b.db, b.out.ID), events.TypeOrderPaid, p)
}

// returned builds one pos.order.returned event per original order.
func (b *orderBuilder) returned(ctx context.Context, lines []Record) error {
	var originalLines []int64
	for _, l := range lines {
		id, _, _ := l.Many2one("refunded_orderline_id")
		originalLines = append(originalLines, id)
	}
	recs, err := b.c.Read(ctx, "pos.order.line", sortedIDs(originalLines), RefundedLineFields)
	if err != nil {
		return err
	}
	orderOf := make(map[int64]int64, len(recs))
	for _, r := range recs {
		if o, _, ok := r.Many2one("order_id"); ok {
			orderOf[r.ID()] = o
		}
	}
	type group struct {
		lines []events.ReturnLine
		index map[int64]int
	}
	groups := map[int64]*group{}
	var originals []int64
	for _, l := range lines {
		lineID, _, _ := l.Many2one("refunded_orderline_id")
		original, ok := orderOf[lineID]
		if !ok {
			b.skip(l, fmt.Sprintf("refunded line %d is not readable", lineID))
			continue
		}
		g := groups[original]
		if g == nil {
			g = &group{index: map[int64]int{}}
			groups[original] = g
			originals = append(originals, original)
		}
		qty, _ := l.Decimal("qty")
		qty = qty.Neg()
		if i, seen := g.index[lineID]; seen { // two refund lines of one original line
			g.lines[i].Qty = dec.Add(g.lines[i].Qty, qty)
			continue
		}
		g.index[lineID] = len(g.lines)
		g.lines = append(g.lines, events.ReturnLine{LineID: events.ID(itoa(lineID)), Qty: qty})
	}
	slices.Sort(originals)
	for _, original := range originals {
		r := &events.ReturnedOrder{ID: events.ID(itoa(b.out.ID)), Name: b.out.Name,
			OriginalOrderID: events.ID(itoa(original)), Lines: groups[original].lines}
		id := ReturnedEventID(b.db, b.out.ID, original, len(originals) > 1)
		if err := b.add(id, events.TypeOrderReturned, r); err != nil {
			return err
		}
	}
	return nil
}

// add encodes an event and checks it with the engine's own decoder, so that
// what is published is what the order worker accepts.
func (b *orderBuilder) add(eventID, typ string, order any) error {
	data, err := json.Marshal(struct {
		EventID     string `json:"event_id"`
		Type        string `json:"type"`
		OccurredAt  string `json:"occurred_at"`
		CompanyID   string `json:"company_id"`
		PosConfigID string `json:"pos_config_id"`
		Order       any    `json:"order"`
	}{eventID, typ, b.occurredAt, b.companyID, b.posConfigID, order})
	if err != nil {
		return err
	}
	decoded, err := events.Decode(data)
	if err != nil {
		return err
	}
	b.out.Events = append(b.out.Events, OrderEvent{Event: decoded, Data: data})
	return nil
}

type productInfo struct {
	categories events.IDs
	tags       events.IDs
}

// products reads the products of the lines and their categories.
func (b *orderBuilder) products(ctx context.Context, lines []Record) (map[int64]productInfo, error) {
	var ids []int64
	for _, l := range lines {
		if id, _, ok := l.Many2one("product_id"); ok {
			ids = append(ids, id)
		}
	}
	recs, err := b.c.Read(ctx, "product.product", sortedIDs(ids), ProductFields)
	if err != nil {
		return nil, err
	}
	var categIDs []int64
	for _, r := range recs {
		if id, _, ok := r.Many2one("categ_id"); ok {
			categIDs = append(categIDs, id)
		}
	}
	// parent_path is "1/5/12/": the root first, the category itself last.
	ancestry := map[int64][]int64{}
	if len(categIDs) > 0 {
		cats, err := b.c.Read(ctx, "product.category", sortedIDs(categIDs), ProductCategoryFields)
		if err != nil {
			return nil, err
		}
		for _, c := range cats {
			for _, part := range strings.Split(strings.Trim(c.String("parent_path"), "/"), "/") {
				if id, err := strconv.ParseInt(part, 10, 64); err == nil {
					ancestry[c.ID()] = append(ancestry[c.ID()], id)
				}
			}
		}
	}
	out := make(map[int64]productInfo, len(recs))
	for _, r := range recs {
		var info productInfo
		if categ, _, ok := r.Many2one("categ_id"); ok {
			path := ancestry[categ]
			if len(path) == 0 {
				path = []int64{categ}
			}
			for i := len(path) - 1; i >= 0; i-- { // the category first, then its parents
				info.categories = append(info.categories, events.ID(itoa(path[i])))
			}
		}
		for _, id := range r.IDs("pos_categ_ids") {
			info.categories = append(info.categories, events.ID(POSCategoryPrefix+itoa(id)))
		}
		for _, id := range r.IDs("product_tag_ids") {
			info.tags = append(info.tags, events.ID(itoa(id)))
		}
		out[r.ID()] = info
	}
	return out, nil
}

// maxPriceDecimals is what the event schema accepts.
const maxPriceDecimals = 10

// discounted applies a till discount percentage to a unit price exactly,
// rounding half up only beyond the decimals an event may carry.
func discounted(price, discountPercent dec.Decimal) dec.Decimal {
	if discountPercent.IsZero() {
		return price
	}
	p := dec.Quo(dec.Mul(price, dec.Sub(dec.Hundred, discountPercent)), dec.Hundred)
	if p.Places() > maxPriceDecimals {
		p = p.Round(maxPriceDecimals)
	}
	if p.Sign() < 0 { // a discount over 100 %: the customer is not paid to take goods
		return dec.Zero
	}
	return Reduce(p)
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedIDs(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// ParseEventID reads the database and the order id out of an event id
// built from an Odoo order ("<db>:pos.order:<id>:paid", ":returned",
// ":returned:<original id>"); ok is false for any other event id.
func ParseEventID(eventID string) (db string, orderID int64, ok bool) {
	db, rest, found := strings.Cut(eventID, ":pos.order:")
	if !found || db == "" {
		return "", 0, false
	}
	idText, kind, _ := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 || (kind != "paid" && kind != "returned" && !strings.HasPrefix(kind, "returned:")) {
		return "", 0, false
	}
	return db, id, true
}
