package rules

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/schemas"
)

// fullCatalog is SPEC §5's example with every field used.
const fullCatalog = `
currency: IDR
money_decimals: 0            # default 2
timezone: Asia/Jakarta       # for day and hour windows
points:
  decimals: 0                # earned points are rounded down to this
  earn: [{per_amount: "10000", points: "1"}]   # floor(base / per_amount) * points
  expiry: {months: 12}       # or {days: N}; absent: never
  pending_days: 0            # lot spendable from occurred_at + pending_days
  redeem: {value: "1", min: "100", max_share: "0.5"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 365}       # net spend over a rolling window
      retention_days: 365
      downgrade: one_level               # or to_qualified
      levels:
        - {id: classic, min: "0"}
        - {id: silver, min: "2000000", discount_percent: "2", points_multiplier: "1.25"}
        - {id: gold, min: "10000000", discount_percent: "5", points_multiplier: "1.5"}
programs:
  - id: bev-weekend
    layer: item                  # item | order
    priority: 10                 # lower first; ties by id
    exclusive: false             # true: once applied, later programs of the layer stop
    valid: {from: "2026-11-01T00:00:00+07:00", until: "2026-12-01T00:00:00+07:00",
            days: [sat, sun], hours: ["10:00", "14:00"]}
    when:
      products: {ids: ["501"], categories: ["12"], tags: ["drink"]}   # any match; absent: all lines
      min_qty: "2"               # sum of qualifying qty
      min_amount: "40000"        # sum of qualifying running net
      levels: [silver, gold]
      code: WELCOME10            # coupon code, case-insensitive
      companies: ["1"]
      pos_configs: ["3"]
    limits: {total_uses: 1000, uses_per_customer: 1, budget: "5000000"}
    reward: {percent: "20", on: lines, max: "50000"}
`

func mustParse(t testing.TB, doc string) *Catalog {
	t.Helper()
	c, err := Parse([]byte(doc))
	requireNoError(t, err)
	return c
}

func violationsOf(t *testing.T, doc string) []schemas.Violation {
	t.Helper()
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("the catalog was accepted")
	}
	requireEqual(t, true, errors.Is(err, ErrInvalidCatalog), "errors.Is(err, ErrInvalidCatalog)")
	var ce *CatalogError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not a *CatalogError", err)
	}
	return ce.Violations
}

func TestParseFullCatalog(t *testing.T) {
	t.Parallel()
	c := mustParse(t, fullCatalog)

	requireEqual(t, "IDR", c.Currency, "currency")
	requireEqual(t, int32(0), c.MoneyDecimals, "money_decimals")
	requireEqual(t, "Asia/Jakarta", c.Location.String(), "location")
	requireDec(t, "10000", c.Points.Earn[0].PerAmount, "earn per_amount")
	requireEqual(t, 12, c.Points.Expiry.Months, "expiry months")
	requireDec(t, "0.5", c.Points.Redeem.MaxShare, "max_share")
	requireEqual(t, 3, len(c.Path("default").Levels), "levels")
	requireDec(t, "1.25", *c.Path("default").Level("silver").PointsMultiplier, "silver multiplier")

	p := c.Programs[0]
	requireEqual(t, "bev-weekend", p.ID, "id")
	requireEqual(t, 10, p.Priority, "priority")
	jakarta := time.FixedZone("", 7*3600)
	requireEqual(t, true, p.Valid.From.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, jakarta)), "from")
	requireEqual(t, true, p.Valid.Until.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, jakarta)), "until")
	requireDeepEqual(t, []time.Weekday{time.Saturday, time.Sunday}, p.Valid.Days, "days")
	requireDeepEqual(t, &[2]int{600, 840}, p.Valid.Hours, "hours")
	requireDeepEqual(t, &ProductFilter{IDs: []string{"501"}, Categories: []string{"12"}, Tags: []string{"drink"}}, p.When.Products, "products")
	requireDeepEqual(t, []string{"silver", "gold"}, p.When.Levels, "levels")
	requireEqual(t, "WELCOME10", p.When.Code, "code")
	requireEqual(t, int64(1000), *p.Limits.TotalUses, "total_uses")
	requireEqual(t, int64(1), *p.Limits.UsesPerCustomer, "uses_per_customer")
	requireDec(t, "5000000", *p.Limits.Budget, "budget")
	requireEqual(t, RewardPercent, p.Reward.Kind, "kind")
	requireEqual(t, OnLines, p.Reward.On, "on")
	requireDec(t, "50000", *p.Reward.Max, "max")
}

// YAML 1.2: `on` is a plain key, not the YAML 1.1 boolean true, and `10:00`
// is a string, not the sexagesimal 600.
func TestParseYAMLOnKeyIsAString(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
currency: IDR
timezone: UTC
programs:
  - id: bread
    layer: item
    valid:
      hours: [10:00, 14:00]
    reward:
      percent: 50
      on: cheapest
`)
	requireEqual(t, OnCheapest, c.Programs[0].Reward.On, "on")
	requireDeepEqual(t, &[2]int{600, 840}, c.Programs[0].Valid.Hours, "hours")
	requireContains(t, string(c.JSON), `"on":"cheapest"`, "canonical JSON")
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
currency: EUR
timezone: Europe/Berlin
points: {earn: [{per_amount: "1", points: "1"}], redeem: {value: "0.01"}}
membership:
  default_path: main
  paths: [{id: main, qualify: {window_days: 365}, retention_days: 30, levels: [{id: base, min: "0"}]}]
programs:
  - {id: o, layer: order, reward: {percent: "5"}}
  - {id: i, layer: item, reward: {buy_get: {buy: 1, get: 1}}}
  - {id: a, layer: item, reward: {amount: "1"}}
`)
	requireEqual(t, int32(2), c.MoneyDecimals, "money_decimals default")
	requireEqual(t, int32(0), c.Points.Decimals, "points decimals default")
	requireEqual(t, 0, c.Points.PendingDays, "pending_days default")
	requireEqual(t, true, c.Points.Expiry == nil, "no expiry")
	requireDec(t, "0", c.Points.Redeem.Min, "redeem min default")
	requireDec(t, "1", c.Points.Redeem.MaxShare, "redeem max_share default")
	requireEqual(t, DowngradeOneLevel, c.Path("main").Downgrade, "downgrade default")

	// Item programs first, then by priority (all 0), then id.
	ids := []string{c.Programs[0].ID, c.Programs[1].ID, c.Programs[2].ID}
	requireDeepEqual(t, []string{"a", "i", "o"}, ids, "evaluation order")
	requireEqual(t, OnLines, c.Programs[0].Reward.On, "item on default")
	requireEqual(t, OnOrder, c.Programs[2].Reward.On, "order on default")
	requireDec(t, "100", c.Programs[1].Reward.BuyGet.Percent, "buy_get percent default")
	requireEqual(t, 0, c.Programs[0].Priority, "priority default")
	requireEqual(t, false, c.Programs[0].Exclusive, "exclusive default")
}

func TestParseProgramOrder(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
currency: IDR
timezone: UTC
programs:
  - {id: z-order, layer: order, priority: -5, reward: {percent: "1"}}
  - {id: b, layer: item, priority: 10, reward: {percent: "1"}}
  - {id: a, layer: item, priority: 10, reward: {percent: "1"}}
  - {id: c, layer: item, priority: 2, reward: {percent: "1"}}
  - {id: a-order, layer: order, priority: 0, reward: {percent: "1"}}
`)
	var ids []string
	for _, p := range c.Programs {
		ids = append(ids, p.ID)
	}
	requireDeepEqual(t, []string{"c", "a", "b", "z-order", "a-order"}, ids, "evaluation order")
}

// Every problem of a catalog comes back at once, schema and semantic ones
// together, each at its JSON pointer.
func TestParseReportsEveryError(t *testing.T) {
	t.Parallel()
	vs := violationsOf(t, `
currency: idr                          # schema: not an ISO code
money_decimals: 7                      # schema: 0..6
timezone: Mars/Olympus_Mons            # not an IANA zone
points:
  decimals: 0
  earn: [{per_amount: "0", points: "1"}]               # per_amount > 0
  expiry: {months: 12, days: 30}                       # exactly one
  redeem: {value: "1", min: "-1", max_share: "1.5"}    # min >= 0, max_share in (0, 1]
membership:
  default_path: vip                                    # no such path
  paths:
    - id: default
      qualify: {window_days: 365}
      retention_days: 365
      levels:
        - {id: classic, min: "0"}
        - {id: classic, min: "100", discount_percent: "150"}    # duplicate id; percent > 100
        - {id: gold, min: "50"}                                 # min not increasing
    - id: default                                               # duplicate path
      qualify: {window_days: 30}
      retention_days: 30
      levels: [{id: entry, min: "10"}]                          # entry level min must be 0
programs:
  - id: p1
    layer: item
    valid: {from: "2026-12-01T00:00:00+07:00", until: "2026-11-01T00:00:00+07:00", hours: ["10:00", "10:00"]}
    when: {levels: [platinum], products: {}}
    reward: {percent: "0"}
  - id: p1                                   # duplicate id
    layer: order
    reward: {percent: "10", amount: "5"}     # two kinds
  - id: p3
    layer: order
    reward: {buy_get: {buy: 2, get: 1}}      # buy_get is item only
  - id: p4
    layer: item
    priority: high                           # schema: integer
    reward: {percent: "10", on: order}       # not an item target
  - id: p5
    layer: item
    reward: {}                               # no kind
  - id: p6
    layer: order
    limits: {budget: "100"}                  # a points reward has no discount to cap
    reward: {bonus_points: "5", max: "3"}    # max caps discounts only
  - id: p7
    layer: item
    valid: {from: "2026-13-01T00:00:00+07:00"}
    reward: {amount: "-1", on: lines}
`)
	want := map[string]string{
		"/currency":                                     "ISO 4217",
		"/money_decimals":                               "maximum",
		"/timezone":                                     "unknown IANA timezone",
		"/points/earn/0/per_amount":                     "greater than 0",
		"/points/expiry":                                "exactly one of months and days",
		"/points/redeem/min":                            "must not be negative",
		"/points/redeem/max_share":                      "at most 1",
		"/membership/default_path":                      `"vip"`,
		"/membership/paths/0/levels/1/id":               `"classic" is already used by /membership/paths/0/levels/0`,
		"/membership/paths/0/levels/1/discount_percent": "at most 100",
		"/membership/paths/0/levels/2/min":              "increasing min",
		"/membership/paths/1/id":                        `"default" is already used by /membership/paths/0`,
		"/membership/paths/1/levels/0/min":              "entry level",
		"/programs/0/valid/until":                       "must be after from",
		"/programs/0/valid/hours":                       "would be empty",
		"/programs/0/when/levels/0":                     `unknown membership level "platinum"`,
		"/programs/0/when/products":                     "lists no ids",
		"/programs/0/reward/percent":                    "greater than 0",
		"/programs/1/id":                                `"p1" is already used by /programs/0`,
		"/programs/1/reward":                            "percent and amount",
		"/programs/2/reward/buy_get":                    "item layer reward",
		"/programs/3/priority":                          "integer",
		"/programs/3/reward/on":                         "not a target of the item layer",
		"/programs/4/reward":                            "exactly one reward kind",
		"/programs/5/limits/budget":                     "gives none",
		"/programs/5/reward/max":                        "does not apply",
		"/programs/6/valid/from":                        "RFC 3339",
		"/programs/6/reward/amount":                     "must not be negative",
	}
	checkViolations(t, vs, want)
}

func TestParseRefusesBadDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, pointer, message string
	}{
		{"empty", "", "", "empty"},
		{"bad YAML", "currency: [IDR", "", "not valid YAML"},
		{"bad JSON", `{"currency": "IDR",}`, "", "not valid JSON"},
		{"unterminated JSON", `{"currency": "IDR"`, "", "unexpected end"},
		{"JSON trailing data", `{"currency": "IDR", "timezone": "UTC"} {}`, "", "after the document"},
		{"not an object", "- a\n- b\n", "", "want object"},
		{"YAML duplicate key", "currency: IDR\ncurrency: EUR\ntimezone: UTC\n", "/currency", "duplicate key"},
		{"JSON duplicate key", `{"currency": "IDR", "timezone": "UTC", "currency": "EUR"}`, "/currency", "duplicate key"},
		{"merge key", "base: &b {percent: 1}\ncurrency: IDR\n<<: *b\n", "/<<", "merge keys"},
		{"typo", "currency: IDR\ntimezone: UTC\nprogram: []\n", "/program", "not a known field"},
		{"missing", "currency: IDR\n", "/timezone", "is required"},
		{"local zone", "currency: IDR\ntimezone: Local\n", "/timezone", "IANA"},
		{"YAML infinity", "currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: item, reward: {percent: .inf}}]\n", "/programs/0/reward/percent", "must be a decimal"},
		{"huge number", `{"currency": "IDR", "timezone": "UTC", "programs": [{"id": "a", "layer": "item", "reward": {"amount": 1e999999}}]}`, "/programs/0/reward/amount", "must be a decimal"},
		{"too precise", "currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: item, reward: {percent: 0.00000000001}}]\n", "/programs/0/reward/percent", "must be a decimal"},
		{"bad hours", "currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: item, valid: {hours: ['24:00', '10:00']}, reward: {percent: 1}}]\n", "/programs/0/valid/hours/0", "HH:MM"},
		{"bad day", "currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: item, valid: {days: [saturday]}, reward: {percent: 1}}]\n", "/programs/0/valid/days/0", ""},
		{"no membership", "currency: IDR\ntimezone: UTC\nprograms: [{id: a, layer: item, when: {levels: [gold]}, reward: {percent: 1}}]\n", "/programs/0/when/levels/0", "no membership section"},
		{"deep", "currency: IDR\ntimezone: UTC\nx: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "*", "nested more than 32 levels"},
		{"deep JSON", `{"x": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", "", "nested more than 32 levels"},
		{"billion laughs", laughs(), "", "expands to more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vs := violationsOf(t, tt.doc)
			for _, v := range vs {
				if (v.Pointer == tt.pointer || tt.pointer == "*") && strings.Contains(v.Message, tt.message) {
					return
				}
			}
			t.Fatalf("no violation %s containing %q in %v", tt.pointer, tt.message, vs)
		})
	}
}

// laughs is a YAML document whose aliases expand to 10^9 strings.
func laughs() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// Numbers stay exact whatever their spelling: a YAML float, a JSON number
// with an exponent, an integer id.
func TestParseNumbersAreExact(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
currency: IDR
timezone: UTC
programs:
  - id: a
    layer: item
    when: {products: {ids: [501, "502"], categories: [0012]}, min_amount: 0.1}
    reward: {percent: 12.50, max: 1e3}
`)
	p := c.Programs[0]
	requireDeepEqual(t, []string{"501", "502"}, p.When.Products.IDs, "ids")
	requireDeepEqual(t, []string{"12"}, p.When.Products.Categories, "YAML 1.2 reads 0012 as decimal twelve")
	requireDec(t, "0.1", *p.When.MinAmount, "min_amount")
	requireDec(t, "12.50", *p.Reward.Percent, "percent keeps its digits")
	requireDec(t, "1000", *p.Reward.Max, "max")
}

// JSON and YAML spellings of one catalog give the same catalog, and the
// canonical JSON parses back to it.
func TestParseJSONAndYAMLAgree(t *testing.T) {
	t.Parallel()
	yamlDoc, err := os.ReadFile("testdata/scenario01.yaml")
	requireNoError(t, err)
	jsonDoc := `{
	  "currency": "IDR", "money_decimals": 0, "timezone": "Asia/Jakarta",
	  "points": {"decimals": 0, "earn": [{"per_amount": "10000", "points": "1"}], "expiry": {"months": 12},
	             "redeem": {"value": "100", "min": "10", "max_share": "0.5"}},
	  "membership": {"default_path": "default", "paths": [{"id": "default", "qualify": {"window_days": 365},
	    "retention_days": 365, "downgrade": "one_level", "levels": [
	      {"id": "classic", "min": "0"},
	      {"id": "silver", "min": "1000000", "discount_percent": "2", "points_multiplier": "1.5"},
	      {"id": "gold", "min": "5000000", "discount_percent": "5", "points_multiplier": "2"}]}]},
	  "programs": [
	    {"id": "drinks-20", "layer": "item", "priority": 10, "when": {"products": {"categories": ["drinks"]}, "min_qty": "2"},
	     "reward": {"percent": "20", "on": "lines", "max": "15000"}},
	    {"id": "order-10k", "layer": "order", "priority": 10, "when": {"code": "SAVE10", "min_amount": "100000"},
	     "reward": {"amount": "10000", "on": "order"}}]
	}`
	fromYAML := mustParse(t, string(yamlDoc))
	fromJSON := mustParse(t, jsonDoc)
	requireDeepEqual(t, fromYAML, fromJSON, "YAML and JSON catalogs")
}

func TestParseCanonicalJSONRoundTrips(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{fullCatalog, mustRead(t, "testdata/scenario01.yaml"), mustRead(t, "testdata/scenario03.yaml"), benchCatalog} {
		c := mustParse(t, doc)
		again := mustParse(t, string(c.JSON))
		requireDeepEqual(t, c, again, "Parse(c.JSON)")
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	requireNoError(t, err)
	return string(b)
}

func TestCatalogHelpers(t *testing.T) {
	t.Parallel()
	c := mustParse(t, mustRead(t, "testdata/scenario01.yaml"))

	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC) // 10:00 in Jakarta
	exp := c.ExpiresAt(at)
	requireEqual(t, "2027-11-24T10:00:00+07:00", exp.Format(time.RFC3339), "expiry in the catalog timezone")
	requireEqual(t, "2026-11-24T10:00:00+07:00", c.AvailableAt(at).Format(time.RFC3339), "available at once")

	p := c.Path("")
	requireEqual(t, "default", p.ID, "the empty id names the default path")
	requireEqual(t, true, c.Path("nope") == nil, "unknown path")
	requireEqual(t, "classic", p.Qualified(dec.MustParse("999999")).ID, "below silver")
	requireEqual(t, "silver", p.Qualified(dec.MustParse("1000000")).ID, "min is inclusive")
	requireEqual(t, "gold", p.Qualified(dec.MustParse("99999999")).ID, "top")
	requireEqual(t, "silver", p.Below("gold").ID, "below gold")
	requireEqual(t, true, p.Below("classic") == nil, "nothing below the entry level")
	requireEqual(t, true, p.Below("nope") == nil, "unknown level")
	requireDec(t, "1.5", c.LevelMultiplier("default", "silver"), "silver multiplier")
	requireDec(t, "1", c.LevelMultiplier("default", "classic"), "no multiplier is 1")
	requireDec(t, "1", c.LevelMultiplier("gone", "silver"), "unknown path is 1")
	requireEqual(t, true, c.Path("nope").Level("x") == nil, "Level on a nil path")

	days := mustParse(t, `{"currency": "IDR", "timezone": "Europe/Berlin", "points": {"expiry": {"days": 30}, "pending_days": 2}}`)
	// 30 calendar days across the start of summer time keep the wall clock.
	winter := time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC) // 10:00 CET
	requireEqual(t, "2026-04-19T10:00:00+02:00", days.ExpiresAt(winter).Format(time.RFC3339), "days expiry across DST")
	requireEqual(t, "2026-03-22T10:00:00+01:00", days.AvailableAt(winter).Format(time.RFC3339), "pending days")

	never := mustParse(t, "currency: IDR\ntimezone: UTC\n")
	requireEqual(t, true, never.ExpiresAt(winter) == nil, "no expiry: never")
	requireEqual(t, true, never.Path("") == nil, "no membership")
}
