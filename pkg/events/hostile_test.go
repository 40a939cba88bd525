package events_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/schemas"
)

// Crafted input must cost work bounded by its size and be refused before
// it can fail in PostgreSQL. Each case below was accepted, or cost
// seconds of CPU and gigabytes of allocation, before the screen existed
// (issue 14); allocation is the deterministic witness of that cost here
// (the hostile corpus test measures CPU time against the real engine).

// allocated returns the bytes allocated while f ran. Tests using it do not
// run in parallel, so that the figure is f's own.
func allocated(f func()) uint64 {
	_, _ = events.Decode([]byte(validPaid)) // the schemas are compiled once, on first use
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func paidWith(order string) []byte {
	return []byte(`{"event_id":"e1","type":"pos.order.paid","occurred_at":"2026-11-28T10:15:00+07:00","company_id":"1","pos_config_id":"1","order":` + order + `}`)
}

const oneLine = `"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]`

func requireRefused(t *testing.T, err error, pointers ...string) *events.InvalidError {
	t.Helper()
	got := pointersOf(t, err)
	var inv *events.InvalidError
	require.True(t, errors.As(err, &inv))
	for _, p := range pointers {
		require.Contains(t, got, p, err.Error())
	}
	return inv
}

//nolint:paralleltest // measures allocation
func TestHugeNumbersAreRefusedWithoutBigArithmetic(t *testing.T) {
	cases := []struct {
		name, order, pointer string
	}{
		{"id 1e999999", `{"id":"1","currency":"IDR","customer_id":1e999999,` + oneLine + `}`, "/order/customer_id"},
		{"id of a million digits", `{"id":"1","currency":"IDR","customer_id":1` + strings.Repeat("0", 999_000) + `,` + oneLine + `}`, "/order/customer_id"},
		{"amount -1e100000", `{"id":"1","currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":-1e100000}]}`, "/order/lines/0/unit_price"},
		{"qty of 500,000 digits", `{"id":"1","currency":"IDR","lines":[{"id":"1","product_id":"p","qty":` + strings.Repeat("9", 500_000) + `,"unit_price":"1"}]}`, "/order/lines/0/qty"},
		{"category 1e999999", `{"id":"1","currency":"IDR","lines":[{"id":"1","product_id":"p","category_ids":[1e999999],"qty":"1","unit_price":"1"}]}`, "/order/lines/0/category_ids/0"},
		{"integer id of 3001 digits", `{"id":"1","currency":"IDR","customer_id":` + strings.Repeat("7", 3001) + `,` + oneLine + `}`, "/order/customer_id"},
		{"integer id of 20 digits", `{"id":"1","currency":"IDR","customer_id":12345678901234567890,` + oneLine + `}`, "/order/customer_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := paidWith(tc.order)
			var err error
			alloc := allocated(func() { _, err = events.Decode(data) })
			requireRefused(t, err, tc.pointer)
			// Parsing the JSON costs a few times its size; a big.Rat of
			// 1e999999 cost 6 MB, a million digits 2 GB.
			require.Less(t, alloc, uint64(8*len(data)+512<<10), "refusing %s allocated %d bytes", tc.name, alloc)
			require.Less(t, len(err.Error()), 2048, "the error quotes a bounded head of the value")
		})
	}
}

//nolint:paralleltest // measures allocation
func TestQuoteWithAHundredHugeIDsIsCheap(t *testing.T) {
	ids := strings.TrimSuffix(strings.Repeat("1e999999,", 100), ",")
	body := []byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1","category_ids":[` + ids + `]}]}`)
	var err error
	alloc := allocated(func() { _, err = events.DecodeQuote(body, time.Now()) })
	requireRefused(t, err, "/lines/0/category_ids/0")
	require.Less(t, alloc, uint64(1<<20), "before: 269 MB and 2.9 s of CPU")
}

// A thousand lines of -1e100000 answered a 400 MB error; the error is now
// bounded: each value quoted in at most 64 characters, at most 20
// violations listed.
func TestErrorsAreBoundedWhateverTheInput(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"id":"1","currency":"IDR","lines":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"%d","product_id":"p","qty":1,"unit_price":-1e99}`, i)
	}
	b.WriteString("]}")
	_, err := events.Decode(paidWith(b.String()))
	inv := requireRefused(t, err, "/order/lines/0/unit_price")
	require.Len(t, inv.Violations, 2000, "every problem is kept (each message bounded)")
	for _, v := range inv.Violations {
		require.LessOrEqual(t, len(v.Message), 512)
	}
	require.Less(t, len(err.Error()), 20*600, "Error lists at most 20 violations")
	require.Contains(t, err.Error(), "and 1980 more")
	shown := schemas.Bound(inv.Violations)
	require.Len(t, shown, 21)
	require.Equal(t, "and 1980 more", shown[20].Message)

	// A value a megabyte long is quoted by its head.
	long := strings.Repeat("x", 900_000)
	_, err = events.Decode(paidWith(`{"id":"1","currency":"` + long + `",` + oneLine + `}`))
	requireRefused(t, err, "/order/currency")
	require.Less(t, len(err.Error()), 1024)
	_, err = events.Decode([]byte(`{"type":"` + long + `"}`))
	requireRefused(t, err, "/type")
	require.Less(t, len(err.Error()), 1024)
}

// What passes decoding cannot fail in PostgreSQL because of its content:
// no NUL (text and jsonb refuse it, 22021 / 22P05), no invalid UTF-8, no id
// longer than a btree key can hold (54000), no control characters in ids.
func TestStringsThatPostgreSQLWouldRefuseAreRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		data    []byte
		pointer string
	}{
		{"NUL in customer id", paidWith(`{"id":"1","currency":"IDR","customer_id":"a\u0000b",` + oneLine + `}`), "/order/customer_id"},
		{"NUL in order name", paidWith(`{"id":"1","name":"Shop\u0000","currency":"IDR",` + oneLine + `}`), "/order/name"},
		{"NUL in an unknown key", paidWith(`{"id":"1","currency":"IDR","x\u0000":1,` + oneLine + `}`), "/order/x\x00"},
		{"NUL in event id", []byte(strings.Replace(string(paidWith(`{"id":"1","currency":"IDR",`+oneLine+`}`)), `"e1"`, `"e\u00001"`, 1)), "/event_id"},
		{"newline in event id", []byte(strings.Replace(string(paidWith(`{"id":"1","currency":"IDR",`+oneLine+`}`)), `"e1"`, `"e\n1"`, 1)), "/event_id"},
		{"control character in product id", paidWith(`{"id":"1","currency":"IDR","lines":[{"id":"1","product_id":"p\u001b[31m","qty":"1","unit_price":"1"}]}`), "/order/lines/0/product_id"},
		{"C1 control in coupon code", paidWith(`{"id":"1","currency":"IDR","coupon_codes":["A\u0085B"],` + oneLine + `}`), "/order/coupon_codes/0"},
		{"id of 201 characters", paidWith(`{"id":"1","currency":"IDR","customer_id":"` + strings.Repeat("é", 201) + `",` + oneLine + `}`), "/order/customer_id"},
		{"invalid UTF-8", paidWith(`{"id":"1","currency":"IDR","customer_id":"a` + "\xff\xfe" + `",` + oneLine + `}`), ""},
		{"a list longer than any event has", paidWith(`{"id":"1","currency":"IDR","lines":[` + strings.Repeat(`{},`, 5000) + `{}]}`), "/order/lines"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.Decode(tc.data)
			requireRefused(t, err, tc.pointer)
		})
	}
	ev, err := events.Decode(paidWith(`{"id":"1","currency":"IDR","customer_id":"` + strings.Repeat("é", 200) + `",` + oneLine + `}`))
	require.NoError(t, err, "200 characters is the bound")
	require.Len(t, []rune(string(ev.CustomerID())), 200)
	ev, err = events.Decode(paidWith(`{"id":"1","name":"Shop\t42","currency":"IDR","customer_id":9223372036854775807,` + oneLine + `}`))
	require.NoError(t, err, "19 digits is the bound; a tab in a name is fine")
	require.Equal(t, events.ID("9223372036854775807"), ev.CustomerID())
}

func TestOccurredAtIsWithinASaneRange(t *testing.T) {
	t.Parallel()
	at := func(ts string) []byte {
		return []byte(strings.Replace(string(paidWith(`{"id":"1","currency":"IDR",`+oneLine+`}`)), "2026-11-28T10:15:00+07:00", ts, 1))
	}
	for _, ts := range []string{"9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2100-01-01T06:59:59+07:00x"} {
		_, err := events.Decode(at(ts))
		requireRefused(t, err, "/occurred_at")
	}
	for _, ts := range []string{"2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999999999Z", "2000-01-01T07:00:00+07:00"} {
		_, err := events.Decode(at(ts))
		require.NoError(t, err, ts)
	}
	_, err := events.DecodeQuote([]byte(`{"currency":"IDR","occurred_at":"9999-01-01T00:00:00Z",`+oneLine+`}`), time.Now())
	requireRefused(t, err, "/occurred_at")
}

// -0 is normalised, never refused: Python (Odoo) writes -0.0 for a negated
// zero price. It reads as 0, and an integer id -0 as "0".
func TestNegativeZeroIsNormalised(t *testing.T) {
	t.Parallel()
	ev, err := events.Decode(paidWith(`{"id":-0,"currency":"IDR","redeem_points":-0,"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":-0.0}]}`))
	require.NoError(t, err)
	require.Equal(t, "0.0", ev.Paid.Lines[0].UnitPrice.String())
	require.Equal(t, "0", ev.Paid.RedeemPoints.String())
	require.Equal(t, events.ID("0"), ev.Paid.ID)
	ev, err = events.Decode(paidWith(`{"id":"1","currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"-0.00"}]}`))
	require.NoError(t, err)
	require.Equal(t, "0.00", ev.Paid.Lines[0].UnitPrice.String())
}

func TestIDUnmarshalJSONHasTheDecodersBounds(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`12345678901234567890`, `"a\u0000"`, `"` + strings.Repeat("x", 201) + `"`, `"a\nb"`, `1e3`, `""`} {
		var id events.ID
		require.Error(t, id.UnmarshalJSON([]byte(bad)), bad)
	}
	var id events.ID
	require.NoError(t, id.UnmarshalJSON([]byte(`-0`)))
	require.Equal(t, events.ID("0"), id)
	require.NoError(t, events.CheckID("Shop/0042 é"))
	require.ErrorIs(t, events.CheckID("a\x00"), events.ErrBadIDText)
	require.ErrorIs(t, events.CheckID("\xff"), events.ErrBadIDText)
}
