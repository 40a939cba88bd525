package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/promoengine/promoengine/pkg/events"
)

// BenchmarkEvaluateLongLists prices an order of 100 lines of 20 ids each
// against 200 programs whose filters list 1,500 categories each: before the
// product index each evaluation compared every id of every line with every
// list entry (200 × 100 × 20 × 1,500 = 6·10^8 comparisons).
func BenchmarkEvaluateLongLists(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`{"currency":"IDR","money_decimals":0,"timezone":"UTC","programs":[`)
	for p := range 200 {
		if p > 0 {
			doc.WriteString(",")
		}
		ids := make([]string, 1500)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"c%d-%d"`, p, i)
		}
		fmt.Fprintf(&doc, `{"id":"p%03d","layer":"item","when":{"products":{"categories":[%s]}},"reward":{"percent":"1"}}`, p, strings.Join(ids, ","))
	}
	doc.WriteString("]}")
	c, err := Parse([]byte(doc.String()))
	if err != nil {
		b.Fatal(err)
	}
	var order strings.Builder
	order.WriteString(`{"id":"o","currency":"IDR","lines":[`)
	for l := range 100 {
		if l > 0 {
			order.WriteString(",")
		}
		cats := make([]string, 20)
		for i := range cats {
			cats[i] = fmt.Sprintf(`"x%d"`, i)
		}
		cats[0] = fmt.Sprintf(`"c%d-1499"`, l) // line l matches program l
		fmt.Fprintf(&order, `{"id":"%d","product_id":"p","category_ids":[%s],"qty":"1","unit_price":"1000"}`, l, strings.Join(cats, ","))
	}
	order.WriteString("]}")
	ev, err := events.Decode([]byte(paid("e", "2026-11-24T10:00:00+07:00", order.String())))
	if err != nil {
		b.Fatal(err)
	}
	in := Input{OccurredAt: ev.OccurredAt, Order: ev.Paid}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(c, in, Unlimited{}); err != nil {
			b.Fatal(err)
		}
	}
}
