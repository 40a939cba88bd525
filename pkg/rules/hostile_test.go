package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/promoengine/promoengine/pkg/events"
)

// Crafted catalogs must cost work bounded by their size (issue 14).
// Allocation is the deterministic witness of the cost here; the hostile
// corpus test measures the CPU time of the real engine.

func allocated(f func()) uint64 {
	_, _ = Parse([]byte(fullCatalog)) // the schemas are compiled once, on first use
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func refusedWith(t *testing.T, err error) *CatalogError {
	t.Helper()
	var ce *CatalogError
	if !errors.As(err, &ce) || len(ce.Violations) == 0 {
		t.Fatalf("want a *CatalogError, got %v", err)
	}
	if n := len(err.Error()); n > 20*800 {
		t.Fatalf("error text of %d bytes: at most 20 violations of bounded length are listed", n)
	}
	return ce
}

//nolint:paralleltest // measures allocation
func TestHostileCatalogsCostBoundedWork(t *testing.T) {
	aliasBomb := func() string {
		var b strings.Builder
		b.WriteString("currency: IDR\ntimezone: UTC\nx: &big \"" + strings.Repeat("a", 50_000) + "\"\nprograms:\n")
		b.WriteString(" - &p {id: p, layer: item, reward: {percent: \"1\"}, valid: {from: *big, until: *big}}\n")
		for range 5000 {
			b.WriteString(" - *p\n")
		}
		return b.String()
	}()
	cases := []struct {
		name, doc string
		maxAlloc  uint64
		message   string
	}{
		// 80 KB of YAML: a 1 GB error, 25 s of CPU and 8.7 GB allocated.
		{"aliases of a large string", aliasBomb, 64 << 20, "expands through aliases to more than"},
		{"billion laughs", laughs(), 64 << 20, "expands to more than"},
		// 142 KB of JSON: 2.5 GB allocated building pointers.
		{"a long key above many values", `{"` + strings.Repeat("k", 71_000) + `":[` + strings.TrimSuffix(strings.Repeat("0,", 35_500), ",") + `]}`, 32 << 20, "is not a known field"},
		{"a long key above many values in YAML", "? " + strings.Repeat("k", 71_000) + "\n: [" + strings.TrimSuffix(strings.Repeat("0,", 35_500), ",") + "]\n", 32 << 20, "is not a known field"},
		{"a priority of a million digits", `{"currency":"IDR","timezone":"UTC","programs":[{"id":"p","layer":"item","priority":1` + strings.Repeat("0", 1_000_000) + `,"reward":{"percent":"1"}}]}`, 16 << 20, "/programs/0/priority"},
		{"a percent of 1e999999", `{"currency":"IDR","timezone":"UTC","programs":[{"id":"p","layer":"item","reward":{"percent":1e999999}}]}`, 4 << 20, "/programs/0/reward/percent"},
		{"a YAML integer of a million digits", "currency: IDR\ntimezone: UTC\nprograms: [{id: p, layer: item, priority: 1" + strings.Repeat("0", 1_000_000) + ", reward: {percent: \"1\"}}]\n", 32 << 20, "/programs/0/priority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, err = Parse([]byte(tc.doc)) })
			refusedWith(t, err)
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("want %q in %s", tc.message, err)
			}
			if alloc > tc.maxAlloc {
				t.Fatalf("refusing it allocated %d MB, more than %d MB", alloc>>20, tc.maxAlloc>>20)
			}
		})
	}
}

// Strings the catalog store (jsonb) cannot hold are refused with their
// pointer, not applied and failed with a 500.
func TestCatalogStringsPostgreSQLWouldRefuseAreRefused(t *testing.T) {
	t.Parallel()
	for doc, pointer := range map[string]string{
		`{"currency":"IDR","timezone":"UTC","programs":[{"id":"p\u0000","layer":"item","reward":{"percent":"1"}}]}`:          "/programs/0/id",
		`{"currency":"IDR","timezone":"UTC","x\u0000":1}`:                                                                    "/x\x00",
		"currency: IDR\ntimezone: UTC\nprograms: [{id: \"p\\0\", layer: item, reward: {percent: \"1\"}}]\n":                  "/programs/0/id",
		"currency: IDR\ntimezone: UTC\nprograms: [{id: p, layer: item, when: {code: \"A\\0\"}, reward: {percent: \"1\"}}]\n": "/programs/0/when/code",
	} {
		_, err := Parse([]byte(doc))
		ce := refusedWith(t, err)
		found := false
		for _, v := range ce.Violations {
			found = found || (v.Pointer == pointer && strings.Contains(v.Message, "NUL"))
		}
		if !found {
			t.Fatalf("%q: want a NUL violation at %q, got %s", doc, pointer, err)
		}
	}
	_, err := Parse([]byte("currency: IDR\ntimezone: UTC\n# \xff\n"))
	refusedWith(t, err)
}

// A thousand programs each with a problem quoting a long value: every
// violation is kept, each bounded, and the error lists twenty.
func TestCatalogErrorsAreBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"currency":"IDR","timezone":"UTC","programs":[`)
	long := strings.Repeat("z", 2000)
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"p%d","layer":"item","valid":{"from":"%s"},"reward":{"percent":"1"}}`, i, long)
	}
	b.WriteString("]}")
	_, err := Parse([]byte(b.String()))
	ce := refusedWith(t, err)
	if len(ce.Violations) < 1000 {
		t.Fatalf("want every violation kept, got %d", len(ce.Violations))
	}
	for _, v := range ce.Violations {
		if len(v.Message) > 512 {
			t.Fatalf("a message of %d bytes: %.100s…", len(v.Message), v.Message)
		}
	}
	if !strings.Contains(err.Error(), " more") {
		t.Fatalf("the error says how many more: %.300s", err)
	}
}

// The product index answers exactly what each filter's Matches answers,
// for random filters (some ids listed by more than denseAt filters, so that
// both kinds of posting are used) and random lines.
func TestProductIndexAgreesWithMatches(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(14, 14))
	pick := func(prefix string, n, of int) []string {
		var out []string
		for range r.IntN(n + 1) {
			out = append(out, fmt.Sprintf("%s%d", prefix, r.IntN(of)))
		}
		return out
	}
	for round := range 50 {
		c := &Catalog{}
		for p := range 1 + r.IntN(150) {
			prog := &Program{ID: fmt.Sprint(p)}
			if r.IntN(5) > 0 {
				prog.When.Products = &ProductFilter{IDs: pick("p", 3, 20), Categories: pick("c", 4, 10), Tags: pick("t", 3, 6)}
			}
			if r.IntN(4) == 0 {
				prog.Reward.BuyGet = &BuyGet{Products: &ProductFilter{Categories: pick("c", 2, 10)}}
			}
			c.Programs = append(c.Programs, prog)
		}
		lines := make([]events.Line, 1+r.IntN(30))
		for i := range lines {
			lines[i] = events.Line{ProductID: events.ID(fmt.Sprintf("p%d", r.IntN(25))),
				CategoryIDs: idsOf(pick("c", 5, 12)), TagIDs: idsOf(pick("t", 3, 8))}
		}
		sets := newProductIndex(c).match(lines)
		for _, p := range c.Programs {
			for _, f := range []*ProductFilter{p.When.Products, p.Reward.bgProducts()} {
				match := sets.filter(f, lines)
				for i := range lines {
					if got, want := match.at(i), f.Matches(&lines[i]); got != want {
						t.Fatalf("round %d, program %s, line %d: index says %v, Matches %v", round, p.ID, i, got, want)
					}
				}
			}
		}
		// A filter the index does not know falls back to Matches.
		stray := &ProductFilter{Categories: []string{"c1"}}
		match := sets.filter(stray, lines)
		for i := range lines {
			if match.at(i) != stray.Matches(&lines[i]) {
				t.Fatalf("round %d: an unknown filter answers differently", round)
			}
		}
	}
}

func (r *Reward) bgProducts() *ProductFilter {
	if r.BuyGet == nil {
		return nil
	}
	return r.BuyGet.Products
}

func idsOf(s []string) events.IDs {
	out := make(events.IDs, len(s))
	for i, v := range s {
		out[i] = events.ID(v)
	}
	return out
}

// A catalog whose id is listed by more programs than denseAt evaluates the
// same through the dense postings as through Matches, and the evaluation
// of a large catalog does not depend on how long its lists are: an order
// no list names costs the same against lists of 10 or 10,000 ids.
func TestEvaluationAgainstLongListsIsExact(t *testing.T) {
	t.Parallel()
	doc := func(listLen int) []byte {
		var b strings.Builder
		b.WriteString(`{"currency":"IDR","money_decimals":0,"timezone":"UTC","programs":[`)
		for p := range 100 {
			if p > 0 {
				b.WriteString(",")
			}
			ids := []string{`"shared"`}
			for i := range listLen {
				ids = append(ids, fmt.Sprintf(`"c%d-%d"`, p, i))
			}
			fmt.Fprintf(&b, `{"id":"p%03d","layer":"item","when":{"products":{"categories":[%s]}},"reward":{"percent":"1"}}`, p, strings.Join(ids, ","))
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	order := `{"id":"o","currency":"IDR","lines":[{"id":"1","product_id":"x","category_ids":["shared"],"qty":"1","unit_price":"100000"},` +
		`{"id":"2","product_id":"y","category_ids":["c7-3","nothing"],"qty":"2","unit_price":"5000"},{"id":"3","product_id":"z","qty":"1","unit_price":"1"}]}`
	ev, err := events.Decode([]byte(paid("e", "2026-11-24T10:00:00+07:00", order)))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, 1000} {
		c, err := Parse(doc(n))
		if err != nil {
			t.Fatal(err)
		}
		o, err := Evaluate(c, Input{OccurredAt: ev.OccurredAt, Order: ev.Paid}, Unlimited{})
		if err != nil {
			t.Fatal(err)
		}
		applied := 0
		for _, tr := range o.Trace {
			if tr.Outcome == events.OutcomeApplied {
				applied++
			}
		}
		if applied != 100 {
			t.Fatalf("lists of %d: every program lists the shared category, %d applied", n, applied)
		}
		b, _ := json.Marshal(o.Lines)
		if !strings.Contains(string(b), `"id":"2"`) {
			t.Fatalf("lines: %s", b)
		}
		// Line 2 matches p007 too (c7-3), which only the catalog with
		// lists of at least 4 ids names.
		want := 1
		if n < 4 {
			want = 0
		}
		if got := len(discountsOn(o, "2")); got != want {
			t.Fatalf("lists of %d: line 2 got %d discounts, want %d", n, got, want)
		}
	}
}

func discountsOn(o *Outcome, line string) []events.Discount {
	var out []events.Discount
	for _, d := range o.Discounts {
		if d.LineID == line {
			out = append(out, d)
		}
	}
	return out
}
