package ledger_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/schemas"
)

// couponCatalog issues a 10%-off coupon, valid 30 days, for orders of at
// least 150000; the coupon takes 10% off a later order.
var couponCatalog = catalogWith("programs: []", `programs:
  - {id: next-visit, layer: order, priority: 1, when: {min_amount: "150000"}, reward: {issue_coupon: {program: comeback-10, valid_days: 30}}}
  - {id: comeback-10, layer: order, priority: 2, when: {coupon: issued}, reward: {percent: "10", on: order}}`)

// Golden vectors computed apart from this code (Python's hmac module):
// HMAC-SHA256(secret, uvarint(len(event id)) ‖ event id ‖ program id), the
// first 60 bits in Crockford base32.
func TestCouponCode(t *testing.T) {
	t.Parallel()
	secret := []byte("test-coupon-secret-0123456789")
	for _, tc := range []struct {
		secret         []byte
		event, program string
		want           string
	}{
		{secret, "odoo1:pos.order:1042:paid", "next-visit", "MDG1YJE2PAY8"},
		{secret, "odoo1:pos.order:1042:paid", "other", "QK86QX00F7FF"},
		{[]byte("another-secret-0123456789abcdef"), "odoo1:pos.order:1042:paid", "next-visit", "XZXB5JJ15B4C"},
		{[]byte(strings.Repeat("x", 200)), strings.Repeat("e", 200), "p", "ZF7NAB8358NP"},
	} {
		got := ledger.CouponCode(tc.secret, tc.event, tc.program)
		require.Equal(t, tc.want, got, "%s/%s", tc.event, tc.program)
		require.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{12}$`, got, "12 characters of Crockford base32")
	}
}

// SPEC §6.10 end to end in the ledger: issue, customer view, use, a second
// use refused, another customer refused, release by cancelling the
// redeeming order, void by returning the issuing order, expiry.
func TestCouponLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, couponCatalog)
	issueAt := "2026-03-02T10:15:00+07:00"
	res := b.process(t, order{event: "issue", at: issueAt, id: "o1", customer: "ann", price: "200000"}.event_(t))
	code := ledger.CouponCode([]byte(testCouponSecret), "issue", "next-visit")
	require.Equal(t, []events.CouponIssued{{Code: code, ProgramID: "comeback-10", IssuedBy: "next-visit", ValidUntil: "2026-04-01T10:15:00+07:00"}}, res.CouponsIssued)
	require.Equal(t, "applied: issues a coupon for comeback-10, valid 30 days", traceOf(res, "next-visit").Outcome+": "+traceOf(res, "next-visit").Reason)
	requireDec(t, "0", res.Totals.Discount, "issuing discounts nothing")
	require.Equal(t, events.OutcomeNotEligible, traceOf(res, "comeback-10").Outcome)

	view := func(at string) []ledger.CouponView { return b.customer(t, "ann", at).Coupons }
	require.Equal(t, []ledger.CouponView{{Code: code, ProgramID: "comeback-10", IssuedBy: "next-visit", OrderID: "o1",
		ValidFrom: issueAt, ValidUntil: "2026-04-01T10:15:00+07:00", State: ledger.CouponStateIssued}}, view(issueAt))

	// A quote reports the code applicable and uses nothing.
	q, err := b.store.Quote(b.ctx, b.pool, b.cat, *order{event: "q", at: "2026-03-03T10:00:00+07:00", id: "q", customer: "ann", codes: []string{code}, price: "50000"}.event_(t))
	require.NoError(t, err)
	require.Equal(t, events.OutcomeApplied, traceOf(q, "comeback-10").Outcome)
	requireDec(t, "5000", q.Totals.Discount, "10% of 50000")
	require.Equal(t, ledger.CouponStateIssued, view("2026-03-03T10:00:00+07:00")[0].State)

	// Another customer cannot use ann's code.
	res = b.process(t, order{event: "bob", at: "2026-03-03T10:00:00+07:00", id: "o2", customer: "bob", codes: []string{code}, price: "50000"}.event_(t))
	require.Equal(t, "not_eligible: no coupon issued for comeback-10 presented", traceOf(res, "comeback-10").Outcome+": "+traceOf(res, "comeback-10").Reason)
	// Nor an anonymous order.
	res = b.process(t, order{event: "anon", at: "2026-03-03T10:00:00+07:00", id: "o3", codes: []string{code}, price: "50000"}.event_(t))
	require.Equal(t, events.OutcomeNotEligible, traceOf(res, "comeback-10").Outcome)

	// Ann uses it, typed in lower case: 10% of 50000.
	res = b.process(t, order{event: "use", at: "2026-03-03T10:00:00+07:00", id: "o4", customer: "ann", codes: []string{"x", lower(code)}, price: "50000"}.event_(t))
	require.Equal(t, events.OutcomeApplied, traceOf(res, "comeback-10").Outcome)
	requireDec(t, "5000", res.Totals.Discount)
	require.Equal(t, []events.CouponRef{{Code: code, ProgramID: "comeback-10"}}, res.CouponsUsed)
	require.Equal(t, ledger.CouponStateUsed, view("2026-03-03T10:00:00+07:00")[0].State)
	require.Equal(t, "o4", view("2026-03-03T10:00:00+07:00")[0].UsedBy)

	// Once.
	res = b.process(t, order{event: "again", at: "2026-03-04T10:00:00+07:00", id: "o5", customer: "ann", codes: []string{code}, price: "50000"}.event_(t))
	require.Equal(t, "not_eligible: coupon "+code+" is already used (order o4)", traceOf(res, "comeback-10").Outcome+": "+traceOf(res, "comeback-10").Reason)

	// A return of the redeeming order keeps it used; a cancellation (here
	// after a full return: nothing more to reverse) frees it.
	res = b.process(t, returnEvent(t, "r4", "2026-03-05T10:00:00+07:00", "o4-r", "o4", "1", "1"))
	require.Empty(t, res.CouponsReleased)
	require.Equal(t, ledger.CouponStateUsed, view("2026-03-05T10:00:00+07:00")[0].State)
	res = b.process(t, cancelEvent(t, "x4", "2026-03-05T11:00:00+07:00", "o4"))
	require.Equal(t, events.StatusApplied, res.Status)
	require.Equal(t, []events.CouponRef{{Code: code, ProgramID: "comeback-10"}}, res.CouponsReleased)
	require.Equal(t, ledger.CouponStateIssued, view("2026-03-05T11:00:00+07:00")[0].State)
	res = b.process(t, order{event: "use2", at: "2026-03-06T10:00:00+07:00", id: "o6", customer: "ann", codes: []string{code}, price: "50000"}.event_(t))
	require.Equal(t, events.OutcomeApplied, traceOf(res, "comeback-10").Outcome)
	res = b.process(t, cancelEvent(t, "x6", "2026-03-07T10:00:00+07:00", "o6"))
	require.Len(t, res.CouponsReleased, 1)

	// valid_until is exclusive: at it, the code has expired.
	require.Equal(t, ledger.CouponStateIssued, view("2026-04-01T10:14:59+07:00")[0].State)
	require.Equal(t, ledger.CouponStateExpired, view("2026-04-01T10:15:00+07:00")[0].State)
	res = b.process(t, order{event: "late", at: "2026-04-01T10:15:00+07:00", id: "o7", customer: "ann", codes: []string{code}, price: "50000"}.event_(t))
	require.Equal(t, "not_eligible: coupon "+code+" expired at 2026-04-01T10:15:00+07:00", traceOf(res, "comeback-10").Outcome+": "+traceOf(res, "comeback-10").Reason)
}

// Any return of the issuing order voids its unused codes; a used code
// stays used, and comes back void if the order that used it is cancelled.
func TestCouponVoidedByReturnOfTheIssuingOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, couponCatalog)
	at := "2026-03-02T10:00:00+07:00"
	b.process(t, order{event: "i1", at: at, id: "o1", customer: "ann", qty: "2", price: "100000"}.event_(t))
	b.process(t, order{event: "i2", at: at, id: "o2", customer: "ann", qty: "2", price: "100000"}.event_(t))
	c1, c2 := ledger.CouponCode([]byte(testCouponSecret), "i1", "next-visit"), ledger.CouponCode([]byte(testCouponSecret), "i2", "next-visit")

	// A partial return of o1: its unused code is void.
	res := b.process(t, returnEvent(t, "r1", "2026-03-03T10:00:00+07:00", "o1-r", "o1", "1", "1"))
	require.Equal(t, []events.CouponRef{{Code: c1, ProgramID: "comeback-10"}}, res.CouponsVoided)
	res = b.process(t, order{event: "u1", at: "2026-03-04T10:00:00+07:00", id: "o3", customer: "ann", codes: []string{c1}, price: "50000"}.event_(t))
	require.Equal(t, "not_eligible: coupon "+c1+" is void: the order that earned it was returned or cancelled",
		traceOf(res, "comeback-10").Outcome+": "+traceOf(res, "comeback-10").Reason)
	// A second return voids nothing more.
	res = b.process(t, returnEvent(t, "r1b", "2026-03-04T11:00:00+07:00", "o1-r2", "o1", "1", "1"))
	require.Empty(t, res.CouponsVoided)

	// c2 is used by o4, then o2 (which issued it) is cancelled: c2 stays used.
	res = b.process(t, order{event: "u2", at: "2026-03-04T12:00:00+07:00", id: "o4", customer: "ann", codes: []string{c2}, price: "50000"}.event_(t))
	require.Equal(t, events.OutcomeApplied, traceOf(res, "comeback-10").Outcome)
	res = b.process(t, cancelEvent(t, "x2", "2026-03-05T10:00:00+07:00", "o2"))
	require.Empty(t, res.CouponsVoided)
	states := func() map[string]string {
		out := map[string]string{}
		for _, c := range b.customer(t, "ann", "2026-03-06T10:00:00+07:00").Coupons {
			out[c.Code] = c.State
		}
		return out
	}
	require.Equal(t, map[string]string{c1: ledger.CouponStateVoided, c2: ledger.CouponStateUsed}, states())
	// Cancelling o4 gives c2 back void, not usable: its own order was cancelled.
	res = b.process(t, cancelEvent(t, "x4", "2026-03-06T10:00:00+07:00", "o4"))
	require.Empty(t, res.CouponsReleased)
	require.Equal(t, []events.CouponRef{{Code: c2, ProgramID: "comeback-10"}}, res.CouponsVoided)
	require.Equal(t, map[string]string{c1: ledger.CouponStateVoided, c2: ledger.CouponStateVoided}, states())
}

// Without a coupon secret nothing is issued: the order fails rather than
// get a code anyone could compute.
func TestNoCouponSecretRefusesToIssue(t *testing.T) {
	t.Parallel()
	b := setup(t, couponCatalog)
	b.store = ledger.NewStore(events.NewSubjects(""))
	_, err := b.tryProcess(order{event: "i1", at: "2026-03-02T10:00:00+07:00", id: "o1", customer: "ann", price: "200000"}.event_(t))
	require.ErrorIs(t, err, ledger.ErrNoCouponSecret)
	// An order that issues nothing goes through.
	res, err := b.tryProcess(order{event: "i2", at: "2026-03-02T10:00:00+07:00", id: "o2", customer: "ann", price: "100"}.event_(t))
	require.NoError(t, err)
	require.Equal(t, events.StatusApplied, res.Status)
}

// Eight tills race with one code of one customer, each order in its own
// batch transaction: exactly one gets the coupon.
func TestCouponUsedOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, couponCatalog)
	b.process(t, order{event: "issue", at: "2026-03-02T10:00:00+07:00", id: "o0", customer: "ann", price: "200000"}.event_(t))
	code := ledger.CouponCode([]byte(testCouponSecret), "issue", "next-visit")
	const tills = 8
	var wg sync.WaitGroup
	results := make(chan *events.OrderResult, tills)
	errs := make(chan error, tills)
	for i := range tills {
		ev := order{event: fmt.Sprintf("till%d", i), at: "2026-03-03T10:00:00+07:00", id: fmt.Sprintf("t%d", i), customer: "ann",
			codes: []string{code}, price: "50000"}.event_(t)
		wg.Go(func() {
			res, err := b.processLedgerBatch([]*events.Event{ev})
			if err != nil {
				errs <- err
				return
			}
			results <- res[0]
		})
	}
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		require.NoError(t, err)
	}
	applied, refused := 0, 0
	for res := range results {
		switch tr := traceOf(res, "comeback-10"); tr.Outcome {
		case events.OutcomeApplied:
			applied++
			require.Equal(t, []events.CouponRef{{Code: code, ProgramID: "comeback-10"}}, res.CouponsUsed)
		default:
			refused++
			require.Contains(t, tr.Reason, "is already used")
		}
	}
	require.Equal(t, 1, applied)
	require.Equal(t, tills-1, refused)
	require.Equal(t, int64(1), scalar[int64](t, b, `SELECT count(*) FROM coupons WHERE used_order_id IS NOT NULL`))
}

func lower(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c >= 'A' && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// requireSchema validates v, marshalled, against a published schema.
func requireSchema(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	s, err := schemas.Get(name)
	require.NoError(t, err)
	require.Empty(t, schemas.Validate(s, doc), "%s: %s", name, raw)
}

// The results with coupons and the warnings match the published schemas.
func TestCouponResultsAndWarningsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	b := setup(t, couponCatalog)
	issued := b.process(t, order{event: "i1", at: "2026-03-02T10:00:00+07:00", id: "o1", customer: "ann", qty: "2", price: "100000"}.event_(t))
	require.Len(t, issued.CouponsIssued, 1)
	requireSchema(t, schemas.OrderResult, issued)
	used := b.process(t, order{event: "u1", at: "2026-03-03T10:00:00+07:00", id: "o2", customer: "ann", codes: []string{issued.CouponsIssued[0].Code}, price: "50000"}.event_(t))
	require.Len(t, used.CouponsUsed, 1)
	requireSchema(t, schemas.OrderResult, used)
	released := b.process(t, cancelEvent(t, "x2", "2026-03-04T10:00:00+07:00", "o2"))
	require.Len(t, released.CouponsReleased, 1)
	requireSchema(t, schemas.OrderResult, released)
	voided := b.process(t, returnEvent(t, "r1", "2026-03-04T11:00:00+07:00", "o1-r", "o1", "1", "1"))
	require.Len(t, voided.CouponsVoided, 1)
	requireSchema(t, schemas.OrderResult, voided)

	w := setup(t, warnCatalog("one_level"))
	w.process(t, order{event: "a1", at: "2026-01-01T10:00:00+07:00", id: "a1", customer: "ann", price: "350000"}.event_(t))
	w.jobs(t, "2026-01-20T00:00:00+07:00")
	warnings, _ := w.warningsSince(t, 0)
	require.Len(t, warnings, 1)
	requireSchema(t, schemas.LevelWarning, warnings[0])
}
