package events

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testhostile"
	"github.com/promoengine/promoengine/schemas"
)

// Documents a till or the loadtest sends: the fast path must take them.
var fastSeeds = []string{
	`{"event_id":"odoo1:pos.order:1042:paid","type":"pos.order.paid","occurred_at":"2026-11-28T10:15:00+07:00","company_id":1,"pos_config_id":"3",` +
		`"order":{"id":1042,"name":"Shop/0042","currency":"IDR","customer_id":77,"lines":[{"id":1,"product_id":501,"category_ids":[12],"tag_ids":["drink"],"qty":0.1,"unit_price":"25000"}],` +
		`"coupon_codes":["WELCOME10"],"redeem_points":"200"}}`,
	`{"event_id":"lt-run-1","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17.123456789Z","company_id":"1","pos_config_id":"7",` +
		`"order":{"id":"lt-run-1","currency":"IDR","customer_id":"c4242","lines":[{"id":"1","product_id":"501","category_ids":["minuman-dingin"],"tag_ids":["drink"],"qty":"2","unit_price":"5500"},` +
		`{"id":"2","product_id":"901","category_ids":["sembako"],"tag_ids":[],"qty":"1","unit_price":"72000.50"}]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25t13:41:17z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"EUR","customer_id":null,"redeem_points":null,"lines":[{"id":"1","product_id":"p","qty":-1,"unit_price":"-0.0000000001"}]}}`,
	`{"event_id":"r","type":"pos.order.returned","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2","name":"R/1","original_order_id":1,"lines":[{"line_id":"1","qty":"1"}]}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00-03:30","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"ü","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":-5,"pos_config_id":"1","order":{"id":"2","extra":[1,{}]},"extra":true}`,
}

// Documents the schema accepts that the fast path leaves to it.
var slowOnlySeeds = []string{
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":1.0,"pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":1e2,"order":{"id":"2"}}`,
}

// Documents the schema refuses.
var refusedSeeds = []string{
	`{"event_id":"","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28 10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00.Z","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00+0700","company_id":"1","pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":1.5,"pos_config_id":"1","order":{"id":"2"}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{}}`,
	`{"event_id":"c","type":"pos.order.cancelled","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1"}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"idr","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"IDR","lines":[]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1.","unit_price":"1"}]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"1234567890123456","unit_price":"1"}]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"IDR","coupon_codes":[""],"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}}`,
	`{"event_id":"a","type":"pos.order.paid","occurred_at":"2026-11-25T13:41:17Z","company_id":"1","pos_config_id":"7","order":{"id":"x","currency":"IDR","name":5,"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1","tag_ids":[""]}]}}`,
	`{"event_id":"r","type":"pos.order.returned","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2","lines":[{"line_id":"1","qty":"1"}]}}`,
	`{"event_id":"r","type":"pos.order.returned","occurred_at":"2026-11-28T10:15:00Z","company_id":"1","pos_config_id":"1","order":{"id":"2","name":null,"original_order_id":1,"lines":[{"line_id":"1","qty":"1"}]}}`,
}

// parseForSchema decodes data the way Decode does before validating; ok is
// false when Decode would refuse it before the schema.
func parseForSchema(data []byte) (typ string, obj map[string]any, doc any, ok bool) {
	if len(data) > MaxEventBytes || checkUTF8(data) != nil {
		return "", nil, nil, false
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return "", nil, nil, false
	}
	obj, isObj := doc.(map[string]any)
	if !isObj || len(screen(doc)) > 0 {
		return "", nil, nil, false
	}
	typ, _ = obj["type"].(string)
	if _, known := schemaOf[typ]; !known {
		return "", nil, nil, false
	}
	return typ, obj, doc, true
}

func schemaAccepts(t testing.TB, typ string, doc any) ([]schemas.Violation, bool) {
	s, err := schemas.Get(schemaOf[typ])
	require.NoError(t, err)
	vs := schemas.Validate(s, doc)
	return vs, len(vs) == 0
}

func TestFastValidAgreesWithSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		docs   []string
		fast   bool
		schema bool
	}{
		{"till documents take the fast path", fastSeeds, true, true},
		{"integers not written as digits are left to the schema", slowOnlySeeds, false, true},
		{"refused documents", refusedSeeds, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.docs {
				typ, obj, doc, ok := parseForSchema([]byte(d))
				require.True(t, ok, d)
				vs, accepted := schemaAccepts(t, typ, doc)
				require.Equal(t, tc.schema, accepted, "schema on %s: %v", d, vs)
				require.Equal(t, tc.fast, fastValid(typ, obj), d)
			}
		})
	}
}

// TestFastValidMutations replaces values of valid documents with tricky
// ones, many times over: the fast path never accepts what the schema
// refuses.
func TestFastValidMutations(t *testing.T) {
	t.Parallel()
	values := []string{`""`, `"a"`, `"IDR"`, `"ID"`, `"1"`, `"1.5"`, `"-1.50"`, `".5"`, `"1e3"`, `"01"`, `" 1"`, `"2026-11-28T10:15:00Z"`,
		`"2026-11-28T10:15:00.5+07:00"`, `"2026-11-28T10:15:00Z\n"`, `"IDR\n"`, `"1\n"`, `1`, `-1`, `0`, `1.0`, `1e2`, `1.5`, `-0`, `null`, `true`,
		`[]`, `[1]`, `["a"]`, `[""]`, `{}`, `{"a":1}`, `"` + strings.Repeat("é", 200) + `"`, `"` + strings.Repeat("é", 201) + `"`,
		`"` + strings.Repeat("x", 101) + `"`, `"1234567890.1234567890"`, `"1234567890.12345678901"`}
	keys := []string{"event_id", "occurred_at", "company_id", "pos_config_id", "type", "order", "id", "name", "currency", "customer_id",
		"coupon_codes", "redeem_points", "lines", "product_id", "category_ids", "tag_ids", "qty", "unit_price", "original_order_id", "line_id"}
	rng := rand.New(rand.NewPCG(20, 26))
	fast := 0
	for i := range 4000 {
		seed := fastSeeds[i%len(fastSeeds)]
		doc := seed
		for range 1 + rng.IntN(2) {
			k := `"` + keys[rng.IntN(len(keys))] + `":`
			at := strings.Index(doc, k)
			if at < 0 {
				continue
			}
			start := at + len(k)
			end := valueEnd(doc, start)
			doc = doc[:start] + values[rng.IntN(len(values))] + doc[end:]
		}
		typ, obj, parsed, ok := parseForSchema([]byte(doc))
		if !ok || !fastValid(typ, obj) {
			continue
		}
		fast++
		vs, accepted := schemaAccepts(t, typ, parsed)
		require.True(t, accepted, "fast path accepted what the schema refuses: %s\n%v", doc, vs)
	}
	require.Greater(t, fast, 100, "too few mutations were accepted to mean anything")
}

// valueEnd finds the end of the JSON value starting at i (no strings with
// brackets in the seeds).
func valueEnd(s string, i int) int {
	depth, inStr := 0, false
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case inStr:
			if c == '\\' {
				j++
			} else if c == '"' {
				inStr = false
				if depth == 0 {
					return j + 1
				}
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case c == ',' && depth == 0:
			return j
		}
	}
	return len(s)
}

// FuzzFastValid: whatever the fast path accepts, the schema accepts.
func FuzzFastValid(f *testing.F) {
	for _, s := range append(append(append([]string{}, fastSeeds...), slowOnlySeeds...), refusedSeeds...) {
		f.Add([]byte(s))
	}
	evs, _, _ := testhostile.Small(testhostile.Load(f, "fuzz"), 64<<10)
	for _, e := range evs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, obj, doc, ok := parseForSchema(data)
		if !ok || !fastValid(typ, obj) {
			return
		}
		if vs, accepted := schemaAccepts(t, typ, doc); !accepted {
			t.Fatalf("fast path accepted what the schema refuses: %s\n%v", data, vs)
		}
	})
}
