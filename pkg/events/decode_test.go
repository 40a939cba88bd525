package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testhostile"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

const validPaid = `{"event_id":"odoo1:pos.order:1042:paid","type":"pos.order.paid",
 "occurred_at":"2026-11-28T10:15:00+07:00","company_id":1,"pos_config_id":"3",
 "order":{"id":1042,"name":"Shop/0042","currency":"IDR","customer_id":77,
   "lines":[{"id":1,"product_id":501,"category_ids":[12],"tag_ids":["drink"],"qty":0.1,"unit_price":"25000"}],
   "coupon_codes":["WELCOME10"],"redeem_points":"200"}}`

func TestDecodePaidNormalisesIDsAndReadsNumbersExactly(t *testing.T) {
	t.Parallel()
	ev, err := events.Decode([]byte(validPaid))
	require.NoError(t, err)
	require.Equal(t, events.ID("1"), ev.CompanyID, "integer ids become their decimal string")
	require.Equal(t, events.ID("1042"), ev.Paid.ID)
	require.Equal(t, events.ID("77"), ev.Paid.CustomerID)
	require.Equal(t, events.IDs{"12"}, ev.Paid.Lines[0].CategoryIDs)
	require.Equal(t, "0.1", ev.Paid.Lines[0].Qty.String(), "a JSON number is read from its digits, never through float64")
	require.Equal(t, "200", ev.Paid.RedeemPoints.String())
	_, offset := ev.OccurredAt.Zone()
	require.Equal(t, 7*3600, offset, "the offset is kept")
}

func TestDecodeRefusesWithThePointerOfEveryProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		pointers   []string
	}{
		{"bad json", `{not json`, []string{""}},
		{"not an object", `[1,2]`, []string{""}},
		{"unknown type", `{"type":"pos.order.refunded"}`, []string{"/type"}},
		{"missing type", `{"event_id":"x"}`, []string{"/type"}},
		{"missing fields", `{"type":"pos.order.paid","order":{"lines":[]}}`,
			[]string{"/company_id", "/event_id", "/occurred_at", "/order/currency", "/order/id", "/order/lines", "/pos_config_id"}},
		{"time without offset", strings.Replace(validPaid, "+07:00", "", 1), []string{"/occurred_at"}},
		{"non-numeric amount", strings.Replace(validPaid, `"25000"`, `"25,000"`, 1), []string{"/order/lines/0/unit_price"}},
		{"negative qty", strings.Replace(validPaid, `"qty":0.1`, `"qty":"-1"`, 1), []string{"/order/lines/0/qty"}},
		{"zero qty", strings.Replace(validPaid, `"qty":0.1`, `"qty":0`, 1), []string{"/order/lines/0/qty"}},
		{"fractional id", strings.Replace(validPaid, `"customer_id":77`, `"customer_id":7.5`, 1), []string{"/order/customer_id"}},
		// The schema's integer admits 77.0 and 1e3; as ids they would be
		// other strings than 77 and 1000, so one customer would be two.
		{"integer id with a fraction", strings.Replace(validPaid, `"customer_id":77`, `"customer_id":77.0`, 1), []string{"/order/customer_id"}},
		{"integer id with an exponent", strings.Replace(validPaid, `"customer_id":77`, `"customer_id":1e3`, 1), []string{"/order/customer_id"}},
		{"duplicate line ids", strings.Replace(validPaid, `"lines":[{"id":1,`, `"lines":[{"id":"1","product_id":"9","qty":"1","unit_price":"1"},{"id":1,`, 1), []string{"/order/lines/1/id"}},
		{"too many digits", strings.Replace(validPaid, `"qty":0.1`, `"qty":1234567890123456789`, 1), []string{"/order/lines/0/qty"}},
		{"return without original", `{"event_id":"r","type":"pos.order.returned","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2","lines":[{"line_id":"1","qty":"1"}]}}`, []string{"/order/original_order_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.Decode([]byte(tc.body))
			require.Equal(t, tc.pointers, pointersOf(t, err), err.Error())
		})
	}
}

func TestDecodeRefusesOversizedEvents(t *testing.T) {
	t.Parallel()
	big := strings.Replace(validPaid, `"Shop/0042"`, `"`+strings.Repeat("x", events.MaxEventBytes)+`"`, 1)
	_, err := events.Decode([]byte(big))
	require.ErrorContains(t, err, "1 MiB")
}

func TestDecodeQuoteDefaultsAndPointsIntoTheBody(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ev, err := events.DecodeQuote([]byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"10"}]}`), now)
	require.NoError(t, err)
	require.True(t, ev.OccurredAt.Equal(now), "priced now without occurred_at")
	require.Equal(t, events.ID("quote"), ev.Paid.ID, "a basket has no order id yet")
	require.Empty(t, ev.CompanyID)

	ev, err = events.DecodeQuote([]byte(`{"id":"9","currency":"IDR","company_id":"2","occurred_at":"2026-11-22T15:30:00+07:00","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"10"}]}`), now)
	require.NoError(t, err)
	require.Equal(t, events.ID("2"), ev.CompanyID)
	require.Equal(t, events.ID("9"), ev.Paid.ID)

	_, err = events.DecodeQuote([]byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"x","unit_price":"10"}]}`), now)
	var inv *events.InvalidError
	require.True(t, errors.As(err, &inv))
	require.Equal(t, "/lines/0/qty", inv.Violations[0].Pointer)
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	ev, err := events.Decode([]byte(validPaid))
	require.NoError(t, err)
	b, err := ev.MarshalJSON()
	require.NoError(t, err)
	again, err := events.Decode(b)
	require.NoError(t, err)
	require.Equal(t, ev.Paid, again.Paid)
	require.True(t, ev.OccurredAt.Equal(again.OccurredAt))
}

// FuzzDecode: no input makes the decoder panic; its error text is bounded
// whatever the input; whatever it accepts could be stored in PostgreSQL as
// it is (ids and codes pass CheckID, no NUL anywhere, amounts within SPEC
// §1.4, occurred_at within range) and re-encodes to an event it accepts
// again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validPaid))
	f.Add([]byte(`{"event_id":"r","type":"pos.order.returned","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2","original_order_id":"1","lines":[{"line_id":"1","qty":"1"}]}}`))
	f.Add([]byte(`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`))
	f.Add([]byte(`{not json`))
	f.Add([]byte(`{"type":"pos.order.paid","order":{"lines":[{"qty":1e999999}]}}`))
	for _, seed := range hostileSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := events.Decode(data)
		if !acceptable(t, ev, err) {
			return
		}
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.Decode(b); err != nil {
			t.Fatalf("re-encoded event refused: %v\n%s", err, b)
		}
	})
}

// FuzzDecodeQuote: the quote decoder goes through the same checks.
func FuzzDecodeQuote(f *testing.F) {
	f.Add([]byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"10"}]}`))
	f.Add([]byte(`{"id":"9","currency":"IDR","company_id":"2","occurred_at":"2026-11-22T15:30:00+07:00","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"10"}]}`))
	f.Add([]byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1","category_ids":[1e999999,2e999999]}]}`))
	f.Add([]byte(`{"currency":"IDR","customer_id":"\u0000","lines":[]}`))
	_, orders, _ := testhostile.Small(testhostile.Load(f, "fuzz"), 64<<10)
	for _, o := range orders {
		f.Add(o)
	}
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := events.DecodeQuote(data, now)
		acceptable(t, ev, err)
	})
}

// acceptable checks a decoder's answer: a refusal is marked invalid and its
// text bounded; an accepted event is storable. It reports acceptance.
func acceptable(t *testing.T, ev *events.Event, err error) bool {
	t.Helper()
	if err != nil {
		if !errors.Is(err, events.ErrInvalid) {
			t.Fatalf("error not marked invalid: %v", err)
		}
		if n := len(err.Error()); n > maxErrorText {
			t.Fatalf("error text of %d bytes", n)
		}
		return false
	}
	requireStorable(t, ev)
	return true
}

// maxErrorText: 20 violations of at most 512 bytes of message and 256 of
// pointer each, and the "and N more".
const maxErrorText = 20*(512+256+4) + 64

func requireStorable(t *testing.T, ev *events.Event) {
	t.Helper()
	ids := []string{ev.EventID, string(ev.OrderID()), string(ev.ReferencedOrderID())}
	if ev.CompanyID != "" || ev.EventID != events.QuoteEventID { // a quote may have none
		ids = append(ids, string(ev.CompanyID))
	}
	if ev.PosConfigID != "" || ev.EventID != events.QuoteEventID {
		ids = append(ids, string(ev.PosConfigID))
	}
	var amounts []dec.Decimal
	var texts []string
	switch {
	case ev.Paid != nil:
		if ev.Paid.CustomerID != "" {
			ids = append(ids, string(ev.Paid.CustomerID))
		}
		ids = append(ids, ev.Paid.CouponCodes...)
		texts = append(texts, ev.Paid.Name, ev.Paid.Currency)
		if ev.Paid.RedeemPoints != nil {
			amounts = append(amounts, *ev.Paid.RedeemPoints)
		}
		for _, l := range ev.Paid.Lines {
			ids = append(ids, string(l.ID), string(l.ProductID))
			ids = append(ids, l.CategoryIDs.Strings()...)
			ids = append(ids, l.TagIDs.Strings()...)
			amounts = append(amounts, l.Qty, l.UnitPrice)
		}
	case ev.Returned != nil:
		texts = append(texts, ev.Returned.Name)
		for _, l := range ev.Returned.Lines {
			ids = append(ids, string(l.LineID))
			amounts = append(amounts, l.Qty)
		}
	}
	for _, id := range ids {
		if err := events.CheckID(id); err != nil {
			t.Fatalf("accepted id %q: %v", id, err)
		}
	}
	for _, s := range texts {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			t.Fatalf("accepted text %q", s)
		}
	}
	for _, a := range amounts {
		if a.IntDigits() > 15 || a.Places() > 10 || strings.HasPrefix(a.String(), "-0") {
			t.Fatalf("accepted amount %s", a)
		}
	}
	if ev.OccurredAt.Before(events.MinOccurredAt) || !ev.OccurredAt.Before(events.MaxOccurredAt) {
		t.Fatalf("accepted occurred_at %s", ev.OccurredAt)
	}
}

// hostileSeeds are the small events and orders (as paid events) of the
// adversarial corpus in testdata/hostile.
func hostileSeeds(f *testing.F) [][]byte {
	evs, _, _ := testhostile.Small(testhostile.Load(f, "fuzz"), 64<<10)
	return evs
}

// pointersOf returns the pointers of a decoder's refusal, in order.
func pointersOf(t *testing.T, err error) []string {
	t.Helper()
	require.ErrorIs(t, err, events.ErrInvalid)
	var inv *events.InvalidError
	require.True(t, errors.As(err, &inv))
	var got []string
	for _, v := range inv.Violations {
		got = append(got, v.Pointer)
		require.NotEmpty(t, v.Message)
	}
	return got
}
