package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// ErrNoCouponSecret: a catalog issues coupons and the Store was given no
// secret to derive their codes from. Codes derived from no secret could be
// computed by anyone who knows how event ids look, so none are issued.
var ErrNoCouponSecret = errors.New("ledger: the catalog issues coupons and no coupon secret is configured (PROMO_COUPON_SECRET)")

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithCouponSecret gives the Store the secret key coupon codes are derived
// with (PROMO_COUPON_SECRET). Every process that processes or replays
// events of one chain must have the same one, or a replay would issue other
// codes.
func WithCouponSecret(secret []byte) StoreOption {
	return func(s *Store) { s.couponSecret = slices.Clone(secret) }
}

// crockford is Crockford's base32 alphabet: no I, L, O or U, so a code read
// aloud or copied by hand is hard to get wrong.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// CouponCodeLength is the length of an issued code: 12 characters, 60 bits.
const CouponCodeLength = 12

// CouponCode is the code of the coupon program programID issues on event
// eventID: the first 60 bits of HMAC-SHA256(secret, event id, program id)
// in Crockford base32 (SPEC §6.10). The same event, program and secret
// always give the same code, so a replay issues the same codes; without the
// secret, a code cannot be guessed from the event id.
func CouponCode(secret []byte, eventID, programID string) string {
	m := hmac.New(sha256.New, secret)
	var n [binary.MaxVarintLen64]byte
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(eventID)))]) // so that no two (event, program) pairs share an input
	m.Write([]byte(eventID))
	m.Write([]byte(programID))
	v := binary.BigEndian.Uint64(m.Sum(nil)[:8]) >> 4
	var out [CouponCodeLength]byte
	for i := CouponCodeLength - 1; i >= 0; i-- {
		out[i] = crockford[v&31]
		v >>= 5
	}
	return string(out[:])
}

// Coupon states (SPEC §6.10).
const (
	CouponStateIssued  = "issued"
	CouponStateUsed    = "used"
	CouponStateVoided  = "voided"
	CouponStateExpired = "expired"
)

// coupon is one row of coupons.
type coupon struct {
	customerID string
	code       string
	programID  string // the program it redeems
	issuedBy   string
	orderID    string // the issuing order
	eventID    string
	validFrom  time.Time
	validUntil time.Time
	usedBy     *string // the order that used it
	usedAt     *time.Time
	voidedAt   *time.Time
}

// couponColumns is what scanCoupon reads, in order.
const couponColumns = `customer_id, code, program_id, issued_by, order_id, event_id, valid_from, valid_until, used_order_id, used_at, voided_at`

func scanCoupon(row pgx.CollectableRow) (*coupon, error) {
	var c coupon
	err := row.Scan(&c.customerID, &c.code, &c.programID, &c.issuedBy, &c.orderID, &c.eventID, &c.validFrom, &c.validUntil, &c.usedBy, &c.usedAt, &c.voidedAt)
	return &c, err
}

// state is the coupon's state at t: used wins over voided (a used code
// whose issuing order is returned stays used), voided over expired.
func (c *coupon) state(t time.Time) string {
	switch {
	case c.usedBy != nil:
		return CouponStateUsed
	case c.voidedAt != nil:
		return CouponStateVoided
	case !t.Before(c.validUntil):
		return CouponStateExpired
	}
	return CouponStateIssued
}

func (c *coupon) forRules() rules.Coupon {
	rc := rules.Coupon{Code: c.code, ProgramID: c.programID, ValidFrom: c.validFrom, ValidUntil: c.validUntil, Voided: c.voidedAt != nil}
	if c.usedBy != nil {
		rc.UsedBy = *c.usedBy
	}
	return rc
}

// presentedCodes are an order's coupon codes as issued codes are stored:
// normalized, each once, in the order presented.
func presentedCodes(o *events.PaidOrder) []string {
	var out []string
	for _, c := range o.CouponCodes {
		if n := rules.NormalizeCouponCode(c); len(n) == CouponCodeLength && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// queueCouponReads adds to b the read of the customer's coupons among codes
// into st.coupons. Inside an event's transaction it runs after the account
// lock, which every change of a coupon holds.
func queueCouponReads(b *pgx.Batch, st *customerState, codes []string) {
	if len(codes) == 0 {
		return
	}
	b.Queue(`SELECT `+couponColumns+` FROM coupons WHERE customer_id = $1 AND code = ANY($2)`, st.id, codes).
		Query(func(rows pgx.Rows) error {
			var err error
			st.coupons, err = pgx.CollectRows(rows, scanCoupon)
			return err
		})
}

// couponsInput is what the evaluation is told of the presented coupons.
func couponsInput(cs []*coupon) []rules.Coupon {
	if len(cs) == 0 {
		return nil
	}
	out := make([]rules.Coupon, len(cs))
	for i, c := range cs {
		out[i] = c.forRules()
	}
	return out
}

// issueCoupons derives the codes of the coupons the order's applied
// issue_coupon programs give.
func (p *paidPlan) issueCoupons(secret []byte, ev *events.Event) error {
	out := p.outcome
	if len(out.CouponsIssued) == 0 || out.Rejection != nil || p.cust == nil {
		return nil
	}
	if len(secret) == 0 {
		return ErrNoCouponSecret
	}
	for _, ic := range out.CouponsIssued {
		p.issued = append(p.issued, &coupon{
			customerID: p.cust.id, code: CouponCode(secret, ev.EventID, ic.IssuedBy), programID: ic.ProgramID, issuedBy: ic.IssuedBy,
			orderID: string(ev.Paid.ID), eventID: ev.EventID, validFrom: pgTime(ic.ValidFrom), validUntil: pgTime(ic.ValidUntil),
		})
	}
	return nil
}

// queueCouponWrites adds the coupon writes of an applied paid order: the
// codes it issues and the codes it uses. A code to use that is no longer
// unused means the account lock failed to serialise its uses, which must
// never happen: the transaction fails with ErrConflict rather than use a
// code twice.
func (p *paidPlan) queueCouponWrites(b *pgx.Batch, orderID string, check *error) {
	if len(p.issued) > 0 {
		b.Queue(`INSERT INTO coupons (`+couponColumns+`)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[], $11::timestamptz[])`,
			issuedArgs(nil, p.issued)...)
	}
	if used := p.outcome.CouponsUsed; len(used) > 0 {
		codes := make([]string, len(used))
		for i, u := range used {
			codes[i] = u.Code
		}
		b.Queue(`UPDATE coupons SET used_order_id = $3, used_at = $4 WHERE customer_id = $1 AND code = ANY($2) AND used_order_id IS NULL AND voided_at IS NULL`,
			p.cust.id, codes, orderID, p.t).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != int64(len(codes)) {
				*check = fmt.Errorf("%w: coupon %v of customer %s is no longer unused", ErrConflict, codes, p.cust.id)
			}
			return nil
		})
	}
}

// couponResults renders the coupons a paid order issued and used.
func (p *paidPlan) couponResults(f format, res *events.OrderResult) {
	for _, c := range p.issued {
		res.CouponsIssued = append(res.CouponsIssued, events.CouponIssued{Code: c.code, ProgramID: c.programID, IssuedBy: c.issuedBy, ValidUntil: f.time(c.validUntil)})
	}
	for _, u := range p.outcome.CouponsUsed {
		res.CouponsUsed = append(res.CouponsUsed, events.CouponRef{Code: u.Code, ProgramID: u.ProgramID})
	}
}

// couponRows are coupons rows a Batch issues and the uses of coupons it
// did not issue in the same flush. Issued rows are inserted with their
// state as of the flush (a use by a later event of the batch included).
type couponRows struct {
	issued   []*coupon
	inserted map[[2]string]bool // customer, code
	uses     []*coupon
}

func (r *couponRows) issue(c *coupon) {
	if r.inserted == nil {
		r.inserted = map[[2]string]bool{}
	}
	r.issued = append(r.issued, c)
	r.inserted[[2]string{c.customerID, c.code}] = true
}

func (r *couponRows) use(c *coupon) {
	if !r.inserted[[2]string{c.customerID, c.code}] {
		r.uses = append(r.uses, c)
	}
}

// issuedArgs adds the columns of coupons rows (couponColumns), one array
// each.
func issuedArgs(args []any, cs []*coupon) []any {
	n := len(cs)
	customers, codes, programs, issuers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	orders, evs := make([]string, n), make([]string, n)
	from, until := make([]time.Time, n), make([]time.Time, n)
	usedBy := make([]*string, n)
	usedAt, voided := make([]*time.Time, n), make([]*time.Time, n)
	for i, c := range cs {
		customers[i], codes[i], programs[i], issuers[i], orders[i], evs[i] = c.customerID, c.code, c.programID, c.issuedBy, c.orderID, c.eventID
		from[i], until[i], usedBy[i], usedAt[i], voided[i] = c.validFrom, c.validUntil, c.usedBy, c.usedAt, c.voidedAt
	}
	return append(args, customers, codes, programs, issuers, orders, evs, from, until, usedBy, usedAt, voided)
}

func (r *couponRows) empty() bool { return len(r.issued) == 0 && len(r.uses) == 0 }

// appendArgs adds the eleven columns of the issued rows, then the four of
// the uses (customer, code, order, at).
func (r *couponRows) appendArgs(args []any) []any {
	args = issuedArgs(args, r.issued)
	m := len(r.uses)
	uc, ucode, uo := make([]string, m), make([]string, m), make([]*string, m)
	ut := make([]*time.Time, m)
	for i, c := range r.uses {
		uc[i], ucode[i], uo[i], ut[i] = c.customerID, c.code, c.usedBy, c.usedAt
	}
	return append(args, uc, ucode, uo, ut)
}

// couponsSQL are writeSQL's coupon statements (parameters $64 to $78).
const couponsSQL = `, new_coupons AS (
	INSERT INTO coupons (` + couponColumns + `)
	SELECT * FROM unnest($64::text[], $65::text[], $66::text[], $67::text[], $68::text[], $69::text[], $70::timestamptz[], $71::timestamptz[], $72::text[], $73::timestamptz[], $74::timestamptz[])
), coupon_uses AS (
	UPDATE coupons c SET used_order_id = u.o, used_at = u.t
	FROM unnest($75::text[], $76::text[], $77::text[], $78::timestamptz[]) AS u(cust, code, o, t)
	WHERE c.customer_id = u.cust AND c.code = u.code
)`

// planCoupons works out what an applied return or cancellation does to the
// original order's coupons (SPEC §6.10): any return or cancellation of the
// issuing order voids the codes it issued that are still unused; a
// cancellation of the redeeming order makes the codes it used usable again,
// unless their own issuing order has been returned or cancelled since, in
// which case they are void.
//
// Voiding marks every code of the issuing order not yet void, the used ones
// too: a used code stays used, but should the order that used it be
// cancelled later, it comes back void rather than usable.
func (p *reversalPlan) planCoupons() {
	orderID := p.orig.orderID
	for _, c := range p.coupons {
		switch {
		case c.orderID == orderID && c.voidedAt == nil:
			at := p.t
			c.voidedAt = &at
			if c.usedBy == nil {
				p.voided = append(p.voided, c)
			}
		case p.kind == reversalCancelled && c.usedBy != nil && *c.usedBy == orderID:
			c.usedBy, c.usedAt = nil, nil
			if c.voidedAt != nil {
				p.voided = append(p.voided, c)
			} else {
				p.released = append(p.released, c)
			}
		}
	}
}

// queueCouponWrites adds the coupon writes of an applied return or
// cancellation.
func (p *reversalPlan) queueCouponWrites(b *pgx.Batch) {
	if len(p.coupons) == 0 {
		return
	}
	b.Queue(`UPDATE coupons SET voided_at = $3 WHERE customer_id = $1 AND order_id = $2 AND voided_at IS NULL`,
		p.cust.id, p.orig.orderID, p.t)
	if p.kind == reversalCancelled {
		b.Queue(`UPDATE coupons SET used_order_id = NULL, used_at = NULL WHERE customer_id = $1 AND used_order_id = $2`,
			p.cust.id, p.orig.orderID)
	}
}

// CheckCouponSecret refuses a catalog that issues coupons when there is no
// secret to derive their codes with: applying it, or starting an engine on
// it, would only dead-letter the orders that earn a coupon.
func CheckCouponSecret(cat *rules.Catalog, secret []byte) error {
	if p := cat.CouponIssuer(); p != nil && len(secret) == 0 {
		return fmt.Errorf("%w: program %s issues coupons", ErrNoCouponSecret, p.ID)
	}
	return nil
}

// CheckCatalog is CheckCouponSecret with the Store's secret: whether this
// Store can process events under cat.
func (s *Store) CheckCatalog(cat *rules.Catalog) error {
	return CheckCouponSecret(cat, s.couponSecret)
}
