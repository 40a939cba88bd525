// Package testhostile loads the adversarial corpus in testdata/hostile/:
// crafted inputs that once cost seconds of CPU, gigabytes of memory, a
// stalled lane or a 500 (issue 14). internal/engine's TestHostileCorpus
// sends every item through the HTTP API and NATS to the real engine; the
// decoders' fuzz targets take the small ones as seeds.
package testhostile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Expectations of an item.
const (
	Refused  = "refused"  // 400/413/422 with the channel's code; a dead letter invalid_event
	Accepted = "accepted" // processed normally
)

// DefaultCPU is the CPU time one item may cost the engine, unless the item
// says otherwise. It is generous (a loaded 2-core machine) and still one to
// three orders of magnitude below what the items cost before.
const DefaultCPU = 500 * time.Millisecond

// Item is one adversarial input, its templates expanded.
type Item struct {
	Name string
	What string // why it is hostile, and what it cost before
	// Order is a paid order object: sent as the order of a pos.order.paid
	// event (HTTP and NATS) and as a quote body (HTTP and promo.quote).
	Order []byte
	// Event is a whole input event (HTTP and NATS).
	Event []byte
	// Customer is the path segment of GET /v1/customers/{id}, already
	// percent-encoded.
	Customer string
	// Catalog is a catalog document for PUT /v1/catalog. With Accepted and
	// an Order, it is applied first and the order evaluated against it.
	Catalog []byte
	Expect  string
	// Status overrides the HTTP status of a refusal (413 for bodies over
	// the limit); 0 means the channel's usual one.
	Status int
	// NATS is false for items too large for a NATS message.
	NATS bool
	CPU  time.Duration
}

type fileItem struct {
	Name     string `yaml:"name"`
	What     string `yaml:"what"`
	Order    string `yaml:"order"`
	Event    string `yaml:"event"`
	Customer string `yaml:"customer"`
	Catalog  string `yaml:"catalog"`
	Expect   string `yaml:"expect"`
	Status   int    `yaml:"status"`
	NATS     *bool  `yaml:"nats"`
	CPU      string `yaml:"cpu"`
}

// Path is the corpus file.
func Path(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(tb, ok)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "hostile", "corpus.yaml")
}

// Load reads the corpus and expands every item; run names the run so that
// ids ({{.ID}}) differ between runs against one stream.
func Load(tb testing.TB, run string) []Item {
	tb.Helper()
	data, err := os.ReadFile(Path(tb))
	require.NoError(tb, err)
	items, err := parse(data, run)
	require.NoError(tb, err)
	return items
}

func parse(data []byte, run string) ([]Item, error) {
	var f struct {
		Items []fileItem `yaml:"items"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("testhostile: corpus: %w", err)
	}
	seen := map[string]bool{}
	out := make([]Item, 0, len(f.Items))
	for _, fi := range f.Items {
		if fi.Name == "" || seen[fi.Name] {
			return nil, fmt.Errorf("testhostile: item %q: a unique name is required", fi.Name)
		}
		seen[fi.Name] = true
		it := Item{Name: fi.Name, What: fi.What, Expect: fi.Expect, Status: fi.Status, NATS: fi.NATS == nil || *fi.NATS, CPU: DefaultCPU}
		if it.Expect != Refused && it.Expect != Accepted {
			return nil, fmt.Errorf("testhostile: item %s: expect must be %s or %s", fi.Name, Refused, Accepted)
		}
		if fi.CPU != "" {
			d, err := time.ParseDuration(fi.CPU)
			if err != nil {
				return nil, fmt.Errorf("testhostile: item %s: cpu: %w", fi.Name, err)
			}
			it.CPU = d
		}
		id := "hostile-" + run + "-" + fi.Name
		var err error
		expand := func(field, text string) []byte {
			if text == "" || err != nil {
				return nil
			}
			var b []byte
			b, err = execute(fi.Name+"."+field, text, id)
			return b
		}
		it.Order, it.Event, it.Catalog = expand("order", fi.Order), expand("event", fi.Event), expand("catalog", fi.Catalog)
		it.Customer = string(expand("customer", fi.Customer))
		if err != nil {
			return nil, err
		}
		if it.Order == nil && it.Event == nil && it.Customer == "" && it.Catalog == nil {
			return nil, fmt.Errorf("testhostile: item %s: no input", fi.Name)
		}
		out = append(out, it)
	}
	return out, nil
}

var funcs = template.FuncMap{
	"repeat": strings.Repeat,
	"seq": func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	},
	"byte": func(n int) string { return string([]byte{byte(n)}) },
}

func execute(name, text, id string) ([]byte, error) {
	t, err := template.New(name).Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("testhostile: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ ID string }{id}); err != nil {
		return nil, fmt.Errorf("testhostile: %w", err)
	}
	return b.Bytes(), nil
}

// PaidEvent wraps an order into a pos.order.paid event with the given id.
func PaidEvent(eventID string, order []byte) []byte {
	return []byte(`{"event_id":"` + eventID + `","type":"pos.order.paid","occurred_at":"2026-11-28T10:15:00+07:00","company_id":"1","pos_config_id":"1","order":` + string(order) + `}`)
}

// Small returns the item inputs (events, orders, catalogs) of at most max
// bytes, for fuzz seeds.
func Small(items []Item, max int) (events, orders, catalogs [][]byte) {
	for _, it := range items {
		if it.Event != nil && len(it.Event) <= max {
			events = append(events, it.Event)
		}
		if it.Order != nil && len(it.Order) <= max {
			orders = append(orders, it.Order)
			events = append(events, PaidEvent("fuzz-"+it.Name, it.Order))
		}
		if it.Catalog != nil && len(it.Catalog) <= max {
			catalogs = append(catalogs, it.Catalog)
		}
	}
	return events, orders, catalogs
}
