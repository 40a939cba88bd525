package events_test

import (
	"testing"

	"github.com/promoengine/promoengine/pkg/events"
)

// BenchmarkDecodePaid decodes and validates a paid order shaped like the
// load test's (three lines with categories and tags, a customer): the
// order worker does this once per event, on its fetch goroutine.
func BenchmarkDecodePaid(b *testing.B) {
	data := []byte(`{"event_id":"lt-run-12345","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17.123456789Z","company_id":"1","pos_config_id":"7",` +
		`"order":{"id":"lt-run-12345","currency":"IDR","customer_id":"c4242","lines":[` +
		`{"id":"1","product_id":"501","category_ids":["minuman-dingin"],"tag_ids":["drink"],"qty":"2","unit_price":"5500"},` +
		`{"id":"2","product_id":"701","category_ids":["mie"],"tag_ids":["mie-instan"],"qty":"3","unit_price":"3100"},` +
		`{"id":"3","product_id":"901","category_ids":["sembako"],"tag_ids":[],"qty":"1","unit_price":"72000"}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
