package events_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// BenchmarkOrderResultJSON encodes a result shaped like the load test's
// (three lines, two discounts, points, a membership and a trace of the
// example catalog's programs): the ledger does this once per paid order, and
// the document is what the outbox stores and the relay publishes. The
// ledger uses AppendJSON; encoding-json is the reflection it replaced.
func BenchmarkOrderResultJSON(b *testing.B) {
	d := dec.MustParse
	exp := "2027-11-25T13:41:17+07:00"
	res := &events.OrderResult{
		EventID: "result:lt-run-12345", Type: events.TypeOrderResult, CausationID: "lt-run-12345", SourceType: events.TypeOrderPaid,
		OccurredAt: "2026-11-25T13:41:17.123456789Z", OrderID: "lt-run-12345", CustomerID: "c4242", Currency: "IDR",
		Status: events.StatusApplied, CatalogVersion: 3,
		Totals: events.Totals{Gross: d("93500"), Discount: d("3250"), Net: d("90250")},
		Points: &events.Points{Earned: d("90"), EarnedLotID: "lot:lt-run-12345", EarnedExpiresAt: &exp, Redeemed: d("0"),
			RedeemedLots: []events.LotAmount{}, ClawedBack: d("0"), Restored: d("0"), Debt: d("0"), Balance: d("1290")},
		Membership: &events.Membership{Path: "default", Level: "silver", PreviousLevel: "silver", QualifyingAmount: d("1250000")},
	}
	for i, p := range []string{"11000", "9300", "72000"} {
		res.Lines = append(res.Lines, events.LineResult{ID: fmt.Sprint(i + 1), Qty: d("2"), Gross: d(p), Discount: d("0"), Net: d(p)})
	}
	res.Discounts = []events.Discount{
		{Layer: events.LayerItem, ProgramID: "drinks-2-for-1", LineID: "1", Amount: d("2750")},
		{Layer: events.LayerMember, ProgramID: "silver-member", LineID: "3", Amount: d("500")},
	}
	for i := range 12 {
		res.Trace = append(res.Trace, events.Trace{ProgramID: fmt.Sprintf("program-%d", i), Layer: events.LayerOrder,
			Outcome: events.OutcomeNotEligible, Reason: "no line of the order matches the program's products"})
	}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n = len(res.AppendJSON(make([]byte, 0, 2048)))
		}
		b.ReportMetric(float64(n), "bytes")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
