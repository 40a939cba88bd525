package odootest

import (
	"strconv"
	"time"
)

// Order is a pos.order to add with AddOrder: the fields the engine reads,
// with the conventions of SeedPOS (company 1, POS config 3, session 9).
type Order struct {
	ID    int64
	Name  string // default "Shop/<id>"
	State string // default "paid"
	// Partner is the customer's res.partner id; 0 for an anonymous sale.
	Partner int64
	// Date is date_order and WriteDate write_date, both in Odoo's UTC
	// text; default "2026-11-28 03:15:00" and the wall clock.
	Date, WriteDate string
	// Currency is the ISO code of currency_id; default IDR.
	Currency string
	// Company is company_id; default 1.
	Company int64
	Lines   []Line
	// LoyaltyPoints is the JSON promo_engine_loyalty records on the order
	// (set only when not empty; the field must be known: AddField).
	LoyaltyPoints string
}

// Line is a pos.order.line of an Order.
type Line struct {
	ID         int64
	Product    int64 // default 501 (Cola, category 12 of SeedPOS)
	Qty, Price float64
	Discount   float64
	// Refunds is the pos.order.line this refund line gives back (0: none).
	Refunds int64
	// Reward makes it a reward line of Odoo's loyalty (pos_loyalty): the
	// loyalty.reward, the loyalty.card it was claimed with (0: none) and
	// the points it cost.
	Reward, Coupon int64
	PointsCost     float64
}

// Tx stages records as one Odoo transaction does: nothing it adds is
// visible to read or search_read until Commit, then all of it is.
type Tx struct {
	s      *Server
	staged []stagedRecord
}

type stagedRecord struct {
	model  string
	id     int64
	fields map[string]any
}

// Begin starts a transaction.
func (s *Server) Begin() *Tx { return &Tx{s: s} }

// Add stages a record (see Server.Add).
func (tx *Tx) Add(model string, id int64, fields map[string]any) {
	tx.staged = append(tx.staged, stagedRecord{model, id, fields})
}

// AddOrder stages an order and its lines.
func (tx *Tx) AddOrder(o Order) { orderRecords(o, tx.Add) }

// Commit makes every staged record visible at once.
func (tx *Tx) Commit() {
	tx.s.mu.Lock()
	defer tx.s.mu.Unlock()
	for _, r := range tx.staged {
		tx.s.addLocked(r.model, r.id, r.fields)
	}
	tx.staged = nil
}

// AddOrder adds an order and its lines, committed.
func (s *Server) AddOrder(o Order) { orderRecords(o, s.Add) }

func orderRecords(o Order, add func(model string, id int64, fields map[string]any)) {
	if o.Name == "" {
		o.Name = "Shop/" + itoa(o.ID)
	}
	if o.State == "" {
		o.State = "paid"
	}
	if o.Date == "" {
		o.Date = "2026-11-28 03:15:00"
	}
	if o.WriteDate == "" {
		o.WriteDate = time.Now().UTC().Format("2006-01-02 15:04:05")
	}
	if o.Currency == "" {
		o.Currency = "IDR"
	}
	var partner any = false
	if o.Partner > 0 {
		partner = []any{o.Partner, "Customer " + itoa(o.Partner)}
	}
	lineIDs := make([]any, 0, len(o.Lines))
	for _, l := range o.Lines {
		lineIDs = append(lineIDs, l.ID)
		product := l.Product
		if product == 0 {
			product = 501
		}
		var refunded any = false
		if l.Refunds > 0 {
			refunded = []any{l.Refunds, "refunded line"}
		}
		line := map[string]any{"order_id": []any{o.ID, o.Name}, "product_id": []any{product, "Product " + itoa(product)},
			"qty": l.Qty, "price_unit": l.Price, "discount": l.Discount, "refunded_orderline_id": refunded,
			"is_reward_line": l.Reward != 0, "reward_id": false, "coupon_id": false, "points_cost": l.PointsCost}
		if l.Reward != 0 {
			line["reward_id"] = []any{l.Reward, "Reward " + itoa(l.Reward)}
		}
		if l.Coupon != 0 {
			line["coupon_id"] = []any{l.Coupon, "Card " + itoa(l.Coupon)}
		}
		add("pos.order.line", l.ID, line)
	}
	company := o.Company
	if company == 0 {
		company = 1
	}
	order := map[string]any{"name": o.Name, "state": o.State, "date_order": o.Date, "write_date": o.WriteDate,
		"partner_id": partner, "company_id": []any{company, "Company " + itoa(company)}, "config_id": []any{3, "Shop"},
		"session_id": []any{9, "POS/00009"}, "currency_id": []any{currencyID(o.Currency), o.Currency}, "lines": lineIDs}
	if o.LoyaltyPoints != "" {
		order["promo_engine_loyalty_points"] = o.LoyaltyPoints
	}
	add("pos.order", o.ID, order)
}

func currencyID(code string) int64 {
	switch code {
	case "IDR":
		return 12
	case "USD":
		return 2
	case "EUR":
		return 1
	}
	return 99
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
