package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// Tuesday 24 November 2026, 10:00 in Jakarta.
const defaultAt = "2026-11-24T10:00:00+07:00"

// testCatalog is the catalog most evaluation tests share: IDR with the
// given money decimals, points at 1 per 10000 (redeemed at 100 each, at
// least 10, at most half the order), three levels, and the programs given
// as YAML list items.
func testCatalog(places int, programs string) string {
	if strings.TrimSpace(programs) == "" {
		programs = "  []"
	}
	return fmt.Sprintf(`currency: IDR
money_decimals: %d
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "10000", points: "1"}]
  redeem: {value: "100", min: "10", max_share: "0.5"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 365}
      retention_days: 365
      levels:
        - {id: classic, min: "0"}
        - {id: silver, min: "1000000", discount_percent: "2", points_multiplier: "1.5"}
        - {id: gold, min: "5000000", discount_percent: "5", points_multiplier: "2"}
programs:
%s
`, places, programs)
}

// ln builds an order line; match entries are "p:product", "c:category" or
// "t:tag" (the product defaults to "prod-<id>").
func ln(id, qty, price string, match ...string) events.Line {
	l := events.Line{ID: events.ID(id), ProductID: events.ID("prod-" + id), Qty: dec.MustParse(qty), UnitPrice: dec.MustParse(price)}
	for _, m := range match {
		kind, v, _ := strings.Cut(m, ":")
		switch kind {
		case "p":
			l.ProductID = events.ID(v)
		case "c":
			l.CategoryIDs = append(l.CategoryIDs, events.ID(v))
		case "t":
			l.TagIDs = append(l.TagIDs, events.ID(v))
		default:
			panic("bad match " + m)
		}
	}
	return l
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	requireNoError(t, err)
	return at
}

func customer(level, balance string) *Customer {
	return &Customer{ID: "c1", Path: "default", Level: level, Balance: dec.MustParse(balance)}
}

// fakeLimits is an in-memory LimitsReader: every program has uses and its
// whole budget left unless left says otherwise. It records its calls.
type fakeLimits struct {
	left  map[string]Remaining
	err   error
	calls []string // "program customer"
}

func (f *fakeLimits) Remaining(p *Program, customerID string) (Remaining, error) {
	f.calls = append(f.calls, p.ID+" "+customerID)
	if f.err != nil {
		return Remaining{}, f.err
	}
	if r, ok := f.left[p.ID]; ok {
		return r, nil
	}
	return Remaining{UsesLeft: true, Budget: p.Limits.Budget}, nil
}

// evalCase is one evaluation with its expected outcome. Expected lines are
// "id gross discount net", discounts "layer program line amount", trace
// entries "program outcome" or "program outcome: part of the reason", uses
// "program discount", a rejection "code: part of the message".
type evalCase struct {
	name     string
	catalog  string // full catalog; default testCatalog(places, programs)
	places   int
	programs string
	at       string // occurred_at; default defaultAt
	company  string // default "1"
	pos      string // default "1"
	lines    []events.Line
	codes    []string
	redeem   string
	customer *Customer
	limits   *fakeLimits

	wantLines     []string
	wantDiscounts []string
	wantTrace     []string
	wantUses      []string
	wantEarned    string
	wantReject    string
	wantCalls     []string
	wantErr       error
}

func (tc evalCase) input(t testing.TB) (*Catalog, Input, LimitsReader) {
	t.Helper()
	doc := tc.catalog
	if doc == "" {
		doc = testCatalog(tc.places, tc.programs)
	}
	c := mustParse(t, doc)
	at := tc.at
	if at == "" {
		at = defaultAt
	}
	occurred, err := time.Parse(time.RFC3339, at)
	requireNoError(t, err)
	in := Input{OccurredAt: occurred, CompanyID: "1", PosConfigID: "1", Customer: tc.customer,
		Order: &events.PaidOrder{ID: "1", Currency: "IDR", Lines: tc.lines, CouponCodes: tc.codes}}
	if tc.company != "" {
		in.CompanyID = tc.company
	}
	if tc.pos != "" {
		in.PosConfigID = tc.pos
	}
	if tc.customer != nil {
		in.Order.CustomerID = events.ID(tc.customer.ID)
	}
	if tc.redeem != "" {
		in.Order.RedeemPoints = ptrDec(tc.redeem)
	}
	var limits LimitsReader = Unlimited{}
	if tc.limits != nil {
		limits = tc.limits
	}
	return c, in, limits
}

func (tc evalCase) run(t *testing.T) {
	t.Helper()
	c, in, limits := tc.input(t)
	o, err := Evaluate(c, in, limits)
	if tc.wantErr != nil {
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("want error %v, got %v", tc.wantErr, err)
		}
		return
	}
	requireNoError(t, err)
	checkInvariants(t, c, o)

	if tc.wantLines != nil {
		var got []string
		for _, l := range o.Lines {
			got = append(got, fmt.Sprintf("%s %s %s %s", l.ID, l.Gross, l.Discount, l.Net))
		}
		requireDeepEqual(t, tc.wantLines, got, "lines")
	}
	if tc.wantDiscounts != nil {
		got := []string{}
		for _, d := range o.Discounts {
			got = append(got, fmt.Sprintf("%s %s %s %s", d.Layer, d.ProgramID, d.LineID, d.Amount))
		}
		requireDeepEqual(t, tc.wantDiscounts, got, "discounts")
	}
	if tc.wantTrace != nil {
		if len(tc.wantTrace) != len(o.Trace) {
			t.Fatalf("trace: want %d entries, got %s", len(tc.wantTrace), dump(o.Trace))
		}
		for i, w := range tc.wantTrace {
			head, reason, _ := strings.Cut(w, ": ")
			got := o.Trace[i]
			requireEqual(t, head, got.ProgramID+" "+got.Outcome, fmt.Sprintf("trace[%d] (reason %q)", i, got.Reason))
			requireContains(t, got.Reason, reason, fmt.Sprintf("trace[%d] reason", i))
		}
	}
	if tc.wantUses != nil {
		got := []string{}
		for _, u := range o.Uses {
			got = append(got, u.ProgramID+" "+u.Discount.String())
		}
		requireDeepEqual(t, tc.wantUses, got, "uses")
	}
	if tc.wantEarned != "" {
		requireDec(t, tc.wantEarned, o.Earned, "earned")
	}
	if tc.wantReject != "" {
		if o.Rejection == nil {
			t.Fatalf("want rejection %q, got none", tc.wantReject)
		}
		code, msg, _ := strings.Cut(tc.wantReject, ": ")
		requireEqual(t, code, o.Rejection.Code, "rejection code")
		requireContains(t, o.Rejection.Message, msg, "rejection message")
	} else if o.Rejection != nil {
		t.Fatalf("unexpected rejection %+v", o.Rejection)
	}
	if tc.wantCalls != nil {
		requireDeepEqual(t, tc.wantCalls, append([]string{}, tc.limits.calls...), "LimitsReader calls")
	}
}

// fataler is what testing.TB and *rapid.T have in common.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// checkInvariants holds for every outcome (SPEC §4): per line gross −
// discount = net, no net below zero, totals are the sums of the lines,
// totals.discount is the sum of the discounts, every amount has exactly the
// money decimals, and a rejected outcome discounts nothing.
func checkInvariants(t fataler, c *Catalog, o *Outcome) {
	t.Helper()
	places := c.MoneyDecimals
	exact := func(d dec.Decimal, what string) {
		t.Helper()
		if d.Places() != places {
			t.Fatalf("%s %s does not have exactly %d decimals", what, d, places)
		}
	}
	gross, discount, net := dec.Zero, dec.Zero, dec.Zero
	perLine := map[string]dec.Decimal{}
	for _, l := range o.Lines {
		exact(l.Gross, "gross")
		exact(l.Discount, "discount")
		exact(l.Net, "net")
		if !dec.Sub(l.Gross, l.Discount).Equal(l.Net) {
			t.Fatalf("line %s: %s - %s != %s", l.ID, l.Gross, l.Discount, l.Net)
		}
		if l.Net.Sign() < 0 || l.Discount.Sign() < 0 {
			t.Fatalf("line %s: negative net %s or discount %s", l.ID, l.Net, l.Discount)
		}
		gross, discount, net = dec.Add(gross, l.Gross), dec.Add(discount, l.Discount), dec.Add(net, l.Net)
		perLine[l.ID] = l.Discount
	}
	if !gross.Equal(o.Totals.Gross) || !discount.Equal(o.Totals.Discount) || !net.Equal(o.Totals.Net) {
		t.Fatalf("totals %+v are not the sums of the lines (%s, %s, %s)", o.Totals, gross, discount, net)
	}
	exact(o.Totals.Gross, "totals.gross")
	exact(o.Totals.Discount, "totals.discount")
	exact(o.Totals.Net, "totals.net")
	sum := dec.Zero
	for _, d := range o.Discounts {
		exact(d.Amount, "discount amount")
		if d.Amount.Sign() <= 0 {
			t.Fatalf("discount %+v is not positive", d)
		}
		sum = dec.Add(sum, d.Amount)
		perLine[d.LineID] = dec.Sub(perLine[d.LineID], d.Amount)
	}
	if !sum.Equal(o.Totals.Discount) {
		t.Fatalf("discounts sum to %s, totals.discount is %s", sum, o.Totals.Discount)
	}
	for id, rest := range perLine {
		if !rest.IsZero() {
			t.Fatalf("line %s: its discounts do not add up to its discount (off by %s)", id, rest)
		}
	}
	if o.Discounts == nil || o.Trace == nil {
		t.Fatal("discounts and trace must be lists, never null")
	}
	if len(o.Trace) != len(c.Programs) {
		t.Fatalf("trace has %d entries for %d programs", len(o.Trace), len(c.Programs))
	}
	if o.Earned.Sign() < 0 || o.Earned.Places() != c.Points.Decimals {
		t.Fatalf("earned %s: negative or not %d decimals", o.Earned, c.Points.Decimals)
	}
	if o.Rejection != nil && (len(o.Discounts) > 0 || len(o.Uses) > 0 || !o.Earned.IsZero() || !o.RedeemPoints.IsZero()) {
		t.Fatalf("a rejected outcome changes something: %s", dump(o))
	}
}
