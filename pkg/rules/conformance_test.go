package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/promoengine/promoengine/pkg/events"
)

// The pure-evaluation parts of the conformance scenarios in
// /work/shared/conformance (their catalogs are copied to testdata/): the
// same events through events.Decode, the ledger's side stood in by the
// Customer the ledger would pass (level held and balance spendable before
// the order).

type conformanceStep struct {
	name     string
	catalog  string // testdata file
	event    string // the input event, JSON
	customer *Customer

	wantTotals    string // "gross discount net"
	wantLines     []string
	wantDiscounts []string // "layer program line amount"
	wantTrace     []string // "program outcome"
	wantEarned    string
	wantRedeem    string // "points value"
	wantReject    string // code
	wantExpires   string // catalog.ExpiresAt(occurred_at)
}

func paid(id, at, order string) string {
	return fmt.Sprintf(`{"event_id": %q, "type": "pos.order.paid", "occurred_at": %q, "company_id": "1", "pos_config_id": "1", "order": %s}`, id, at, order)
}

func TestConformanceScenarios(t *testing.T) {
	t.Parallel()
	steps := []conformanceStep{
		{
			name: "01 step 1: item cap, order coupon, earn", catalog: "scenario01.yaml",
			event: paid("t1:pos.order:1:paid", "2026-11-24T10:00:00+07:00", `{"id": "1", "currency": "IDR", "customer_id": "c1", "coupon_codes": ["save10"],
				"lines": [{"id": "1", "product_id": "coffee", "category_ids": ["drinks"], "qty": "3", "unit_price": "18000"},
				          {"id": "2", "product_id": "tea", "category_ids": ["drinks"], "qty": "1", "unit_price": "12000"},
				          {"id": "3", "product_id": "cake", "category_ids": ["food"], "qty": "2", "unit_price": "25000"}]}`),
			customer:   &Customer{ID: "c1", Path: "default", Level: "classic"},
			wantTotals: "116000 23200 92800",
			wantLines:  []string{"1 54000 15002 38998", "2 12000 3334 8666", "3 50000 4864 45136"},
			wantDiscounts: []string{
				"item drinks-20 1 10800", "item drinks-20 2 2400",
				"order order-10k 1 4202", "order order-10k 2 934", "order order-10k 3 4864",
			},
			wantTrace:   []string{"drinks-20 applied", "order-10k applied"},
			wantEarned:  "9",
			wantExpires: "2027-11-24T10:00:00+07:00",
		},
		{
			name: "01 step 2: no program, classic earns 95", catalog: "scenario01.yaml",
			event: paid("t1:pos.order:2:paid", "2026-11-25T12:00:00+07:00", `{"id": "2", "currency": "IDR", "customer_id": "c1",
				"lines": [{"id": "1", "product_id": "tv", "category_ids": ["electronics"], "qty": "1", "unit_price": "950000"}]}`),
			customer:      &Customer{ID: "c1", Path: "default", Level: "classic", Balance: decOf("9")},
			wantTotals:    "950000 0 950000",
			wantDiscounts: []string{},
			wantTrace:     []string{"drinks-20 condition_failed", "order-10k not_eligible"},
			wantEarned:    "95",
		},
		{
			name: "01 step 3: silver member discount, redeem 50, earn × 1.5", catalog: "scenario01.yaml",
			event: paid("t1:pos.order:3:paid", "2026-11-26T09:00:00+07:00", `{"id": "3", "currency": "IDR", "customer_id": "c1", "redeem_points": "50",
				"lines": [{"id": "1", "product_id": "coffee", "category_ids": ["drinks"], "qty": "2", "unit_price": "18000"}]}`),
			customer:      &Customer{ID: "c1", Path: "default", Level: "silver", Balance: decOf("104")},
			wantTotals:    "36000 12776 23224",
			wantDiscounts: []string{"item drinks-20 1 7200", "member silver 1 576", "points points 1 5000"},
			wantEarned:    "3",
			wantRedeem:    "50 5000",
		},
		{
			name: "01 step 4: redeem more than the balance", catalog: "scenario01.yaml",
			event: paid("t1:pos.order:4:paid", "2026-11-26T10:00:00+07:00", `{"id": "4", "currency": "IDR", "customer_id": "c1", "redeem_points": "1000",
				"lines": [{"id": "1", "product_id": "cake", "category_ids": ["food"], "qty": "40", "unit_price": "25000"}]}`),
			customer:      &Customer{ID: "c1", Path: "default", Level: "silver", Balance: decOf("57")},
			wantTotals:    "1000000 0 1000000",
			wantDiscounts: []string{},
			wantReject:    events.RejectInsufficientPoints,
			wantEarned:    "0",
		},
		{
			name: "02 step 1: earn 50, expires in 30 days", catalog: "scenario02.yaml",
			event:       paid("t2:1", "2026-01-01T10:00:00+07:00", `{"id": "1", "currency": "IDR", "customer_id": "c2", "lines": [{"id": "1", "product_id": "p", "qty": "1", "unit_price": "50000"}]}`),
			customer:    &Customer{ID: "c2"},
			wantEarned:  "50",
			wantExpires: "2026-01-31T10:00:00+07:00",
		},
		{
			name: "02 step 3: redeem 10 at value 1", catalog: "scenario02.yaml",
			event:      paid("t2:3", "2026-02-10T10:00:00+07:00", `{"id": "3", "currency": "IDR", "customer_id": "c2", "redeem_points": "10", "lines": [{"id": "1", "product_id": "p", "qty": "1", "unit_price": "20000"}]}`),
			customer:   &Customer{ID: "c2", Path: "default", Level: "member", Balance: decOf("30")},
			wantTotals: "20000 10 19990",
			wantEarned: "19",
			wantRedeem: "10 10",
		},
		{
			name: "02 step 4: the expired lot is not spendable", catalog: "scenario02.yaml",
			event:      paid("t2:4", "2026-02-20T10:00:00+07:00", `{"id": "4", "currency": "IDR", "customer_id": "c2", "redeem_points": "25", "lines": [{"id": "1", "product_id": "p", "qty": "1", "unit_price": "20000"}]}`),
			customer:   &Customer{ID: "c2", Path: "default", Level: "member", Balance: decOf("19")},
			wantReject: events.RejectInsufficientPoints,
		},
		{
			name: "03 step 1: cheapest unit, buy 2 get 1, exclusive stop", catalog: "scenario03.yaml",
			event: paid("t3:1", "2026-11-24T10:00:00+07:00", `{"id": "1", "currency": "IDR", "lines": [
				{"id": "1", "product_id": "chips-a", "tag_ids": ["snack"], "qty": "2", "unit_price": "10000"},
				{"id": "2", "product_id": "chips-b", "tag_ids": ["snack"], "qty": "2", "unit_price": "8000"},
				{"id": "3", "product_id": "bread", "category_ids": ["bakery"], "qty": "1", "unit_price": "15000"},
				{"id": "4", "product_id": "bun", "category_ids": ["bakery"], "qty": "2", "unit_price": "6000"}]}`),
			wantTotals:    "63000 11000 52000",
			wantDiscounts: []string{"item cheap-50 4 3000", "item b2g1-snacks 2 8000"},
			wantTrace:     []string{"cheap-50 applied", "b2g1-snacks applied", "snack-10 stopped_by_exclusive"},
			wantEarned:    "0",
		},
		{
			name: "03 step 2: an exclusive program with no set stops nothing", catalog: "scenario03.yaml",
			event: paid("t3:2", "2026-11-24T10:05:00+07:00", `{"id": "2", "currency": "IDR", "lines": [
				{"id": "1", "product_id": "chips-a", "tag_ids": ["snack"], "qty": "2", "unit_price": "10000"}]}`),
			wantTotals:    "20000 2000 18000",
			wantDiscounts: []string{"item snack-10 1 2000"},
			wantTrace:     []string{"cheap-50 condition_failed", "b2g1-snacks condition_failed", "snack-10 applied"},
		},
		{
			name: "03 step 3: three sets from nine units", catalog: "scenario03.yaml",
			event: paid("t3:3", "2026-11-24T10:10:00+07:00", `{"id": "3", "currency": "IDR", "lines": [
				{"id": "1", "product_id": "chips-a", "tag_ids": ["snack"], "qty": "2", "unit_price": "10000"},
				{"id": "2", "product_id": "chips-b", "tag_ids": ["snack"], "qty": "7", "unit_price": "8000"}]}`),
			wantTotals:    "76000 24000 52000",
			wantDiscounts: []string{"item b2g1-snacks 2 24000"},
			wantTrace:     []string{"cheap-50 condition_failed", "b2g1-snacks applied", "snack-10 stopped_by_exclusive"},
		},
		{
			name: "04 step 3: 1.5 units", catalog: "scenario04.yaml",
			event:      paid("t4:ok", "2026-11-24T10:01:00+07:00", `{"id": "10", "currency": "IDR", "customer_id": "c4", "lines": [{"id": "1", "product_id": "p", "qty": "1.5", "unit_price": "20000"}]}`),
			customer:   &Customer{ID: "c4"},
			wantTotals: "30000 0 30000",
			wantEarned: "3",
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, mustRead(t, "testdata/"+st.catalog))
			ev, err := events.Decode([]byte(st.event))
			requireNoError(t, err)
			o, err := Evaluate(c, Input{OccurredAt: ev.OccurredAt, CompanyID: string(ev.CompanyID), PosConfigID: string(ev.PosConfigID),
				Order: ev.Paid, Customer: st.customer}, Unlimited{})
			requireNoError(t, err)
			checkInvariants(t, c, o)

			if st.wantTotals != "" {
				requireEqual(t, st.wantTotals, fmt.Sprintf("%s %s %s", o.Totals.Gross, o.Totals.Discount, o.Totals.Net), "totals")
			}
			if st.wantLines != nil {
				var got []string
				for _, l := range o.Lines {
					got = append(got, fmt.Sprintf("%s %s %s %s", l.ID, l.Gross, l.Discount, l.Net))
				}
				requireDeepEqual(t, st.wantLines, got, "lines")
			}
			if st.wantDiscounts != nil {
				got := []string{}
				for _, d := range o.Discounts {
					got = append(got, fmt.Sprintf("%s %s %s %s", d.Layer, d.ProgramID, d.LineID, d.Amount))
				}
				requireDeepEqual(t, st.wantDiscounts, got, "discounts")
			}
			if st.wantTrace != nil {
				var got []string
				for _, tr := range o.Trace {
					got = append(got, tr.ProgramID+" "+tr.Outcome)
				}
				requireDeepEqual(t, st.wantTrace, got, "trace")
			}
			if st.wantEarned != "" {
				requireDec(t, st.wantEarned, o.Earned, "earned")
			}
			if st.wantRedeem != "" {
				requireEqual(t, st.wantRedeem, o.RedeemPoints.String()+" "+o.RedeemValue.String(), "redeemed points and value")
			}
			if st.wantReject != "" {
				if o.Rejection == nil {
					t.Fatalf("want rejection %s", st.wantReject)
				}
				requireEqual(t, st.wantReject, o.Rejection.Code, "rejection")
			} else if o.Rejection != nil {
				t.Fatalf("unexpected rejection %+v", o.Rejection)
			}
			if st.wantExpires != "" {
				requireEqual(t, st.wantExpires, c.ExpiresAt(ev.OccurredAt).Format(time.RFC3339), "expires_at")
			}
		})
	}
}
