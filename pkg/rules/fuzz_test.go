package rules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/promoengine/promoengine/internal/testhostile"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// FuzzParseCatalog: whatever the bytes, Parse either refuses them with a
// *CatalogError that names at least one violation, or returns a catalog
// whose canonical JSON parses back to the same catalog and the same bytes.
func FuzzParseCatalog(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		fullCatalog, benchCatalog, laughs(),
		`{"currency": "IDR", "timezone": "UTC", "programs": [{"id": "a", "layer": "item", "reward": {"percent": 1e2}}]}`,
		"currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: order, reward: {amount: 0x10, on: order}}]\n",
		"currency: IDR\ntimezone: Asia/Jakarta\nprograms: [{id: a, layer: item, valid: {hours: [22:00, 02:00]}, reward: {buy_get: {buy: 1, get: 1, products: {ids: [1]}}}}]\n",
		"a: &x [*x]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	_, _, hostile := testhostile.Small(testhostile.Load(f, "fuzz"), 256<<10)
	for _, doc := range hostile {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ce *CatalogError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidCatalog) || len(ce.Violations) == 0 {
				t.Fatalf("refused without violations: %v", err)
			}
			if n := len(err.Error()); n > 20*(512+256+4)+64 {
				t.Fatalf("error text of %d bytes", n)
			}
			return
		}
		if bytes.Contains(c.JSON, []byte(`\u0000`)) || !utf8.Valid(c.JSON) {
			t.Fatalf("accepted a catalog the store cannot hold: %s", c.JSON)
		}
		again, err := Parse(c.JSON)
		if err != nil {
			t.Fatalf("canonical JSON refused: %v\n%s", err, c.JSON)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("canonical JSON parses to another catalog:\n%s\n%s", dump(c), dump(again))
		}
	})
}

// fuzzCatalogs are the catalogs FuzzEvaluate prices against.
var fuzzCatalogs = func() []*Catalog {
	var out []*Catalog
	for _, doc := range []string{benchCatalog, fullCatalog, testCatalog(2, `  - {id: cheap, layer: item, reward: {percent: "33.3", on: cheapest, max: "999.99"}}
  - {id: b3g2, layer: item, exclusive: true, when: {products: {tags: ["1"]}}, reward: {buy_get: {buy: 3, get: 2, percent: "50", products: {categories: ["2"]}}}}
  - {id: amount, layer: order, when: {min_amount: "10.01"}, limits: {budget: "7.77"}, reward: {amount: "12.345"}}
  - {id: x2, layer: order, reward: {points_multiplier: "2"}}`)} {
		c, err := Parse([]byte(doc))
		if err != nil {
			panic(err)
		}
		out = append(out, c)
	}
	// An id listed by more filters than denseAt: dense postings.
	var many strings.Builder
	for i := range denseAt + 6 {
		fmt.Fprintf(&many, "  - {id: d%02d, layer: item, when: {products: {categories: [drinks, \"%d\"], tags: [snack]}}, reward: {percent: \"1\"}}\n", i, i)
	}
	dense, err := Parse([]byte(testCatalog(0, many.String())))
	if err != nil {
		panic(err)
	}
	out = append(out, dense)
	for _, name := range []string{"scenario01.yaml", "scenario03.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			panic(err)
		}
		c, err := Parse(b)
		if err != nil {
			panic(err)
		}
		out = append(out, c)
	}
	return out
}()

// FuzzEvaluate decodes an event the way the worker does and prices it:
// no panic, and every outcome keeps the invariants of SPEC §4.
func FuzzEvaluate(f *testing.F) {
	for _, e := range []string{
		paid("a", "2026-11-24T10:00:00+07:00", `{"id": "1", "currency": "IDR", "customer_id": "c1", "coupon_codes": ["save10"],
			"lines": [{"id": "1", "product_id": "coffee", "category_ids": ["drinks"], "qty": "3", "unit_price": "18000"},
			          {"id": "2", "product_id": "tea", "category_ids": ["drinks"], "qty": "1", "unit_price": "12000"},
			          {"id": "3", "product_id": "cake", "category_ids": ["food"], "qty": "2", "unit_price": "25000"}]}`),
		paid("b", "2026-11-28T04:00:00Z", `{"id": 2, "currency": "IDR", "customer_id": 77, "redeem_points": 50,
			"lines": [{"id": 1, "product_id": 501, "category_ids": [12], "tag_ids": ["drink", 1], "qty": 2.5, "unit_price": 25000.55},
			          {"id": 2, "product_id": "chips-b", "tag_ids": ["snack"], "qty": "7", "unit_price": "8000"}]}`),
		paid("c", "2026-11-24T10:10:00+07:00", `{"id": "3", "currency": "IDR", "lines": [
			{"id": "1", "product_id": "chips-a", "tag_ids": ["snack"], "qty": "2", "unit_price": "10000"},
			{"id": "2", "product_id": "bun", "category_ids": ["bakery", "2"], "qty": "0.5", "unit_price": "0"}]}`),
		paid("d", "2026-11-24T10:10:00+07:00", `{"id": "3", "currency": "EUR", "lines": [{"id": "1", "product_id": "p", "qty": "1", "unit_price": "1"}]}`),
	} {
		for i := range fuzzCatalogs {
			f.Add([]byte(e), uint8(i), int64(100), uint8(1))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, catalog uint8, balance int64, level uint8) {
		ev, err := events.Decode(data)
		if err != nil || ev.Paid == nil {
			return
		}
		c := fuzzCatalogs[int(catalog)%len(fuzzCatalogs)]
		in := Input{OccurredAt: ev.OccurredAt, CompanyID: string(ev.CompanyID), PosConfigID: string(ev.PosConfigID), Order: ev.Paid}
		if ev.Paid.CustomerID != "" {
			levels := []string{"", "classic", "silver", "gold", "unknown"}
			in.Customer = &Customer{ID: string(ev.Paid.CustomerID), Level: levels[int(level)%len(levels)], Balance: dec.FromInt(balance)}
		}
		checkIndex(t, c, ev.Paid.Lines)
		o, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			if errors.Is(err, ErrInvalidOrder) {
				return
			}
			t.Fatal(err)
		}
		checkInvariants(t, c, o)
	})
}

// checkIndex: the product index agrees with every filter's Matches.
func checkIndex(t *testing.T, c *Catalog, lines []events.Line) {
	t.Helper()
	sets := c.products.match(lines)
	for _, p := range c.Programs {
		for _, f := range []*ProductFilter{p.When.Products, p.Reward.bgProducts()} {
			match := sets.filter(f, lines)
			for i := range lines {
				if match.at(i) != f.Matches(&lines[i]) {
					t.Fatalf("program %s, line %d: the index and Matches disagree", p.ID, i)
				}
			}
		}
	}
}
