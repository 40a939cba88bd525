package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the same zone rules on every machine, container or not

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

// ErrInvalidCatalog is matched (errors.Is) by every refusal of a catalog.
var ErrInvalidCatalog = errors.New("rules: invalid catalog")

// CatalogError lists every reason a catalog was refused, each naming its
// field by JSON pointer, so that an operator fixes the whole file at once.
type CatalogError struct {
	Violations []schemas.Violation
}

// Error lists at most errtext.MaxListed violations, then "and N more".
func (e *CatalogError) Error() string {
	return "invalid catalog: " + schemas.Join(e.Violations, errtext.MaxListed)
}

// Is makes errors.Is(err, ErrInvalidCatalog) true.
func (e *CatalogError) Is(target error) bool { return target == ErrInvalidCatalog }

// Parse reads a catalog document, YAML 1.2 or JSON, checks it against
// schemas/catalog.schema.json and then against the rules a schema cannot
// express, and returns the catalog with defaults applied and programs in
// evaluation order. A refused catalog gives a *CatalogError listing every
// problem found, schema and semantic ones together.
//
// Catalog.JSON is the canonical JSON of the document: Parse(c.JSON) gives the
// same catalog.
func Parse(data []byte) (*Catalog, error) {
	doc, vs := readDocument(data)
	if len(vs) > 0 {
		return nil, &CatalogError{Violations: vs}
	}
	schema, err := schemas.Get(schemas.Catalog)
	if err != nil {
		return nil, fmt.Errorf("rules: catalog schema: %w", err)
	}
	vs = schemas.Validate(schema, doc)
	b := &builder{}
	c := b.catalog(doc)
	vs = append(vs, b.vs...)
	if len(vs) > 0 {
		return nil, &CatalogError{Violations: sortViolations(vs)}
	}
	if c.JSON, err = canonicalJSON(doc); err != nil {
		return nil, fmt.Errorf("rules: canonical catalog JSON: %w", err)
	}
	c.products = newProductIndex(c)
	return c, nil
}

// sortViolations orders by pointer (the schema's order) and drops repeats.
func sortViolations(vs []schemas.Violation) []schemas.Violation {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Pointer < vs[j].Pointer })
	out := vs[:0]
	seen := make(map[schemas.Violation]bool, len(vs))
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// builder turns a document into a Catalog and collects the semantic
// violations. It is lenient about shapes: a value of the wrong type is
// skipped, since the schema has already reported it, so that semantic
// problems elsewhere are still found in the same pass.
type builder struct {
	vs     []schemas.Violation
	levels map[string]bool // every level id of every path
	refs   []couponRef     // issue_coupon rewards, checked once every program is read
}

func (b *builder) add(ptr, format string, args ...any) {
	b.vs = append(b.vs, schemas.Violation{Pointer: ptr, Message: errtext.Sprintf(format, args...)})
}

// node is an object of the document with its JSON pointer.
type node struct {
	m   map[string]any
	ptr string
}

func asNode(v any, ptr string) (node, bool) {
	m, ok := v.(map[string]any)
	return node{m: m, ptr: ptr}, ok
}

func (n node) at(key string) string { return n.ptr + "/" + escapePointer(key) }

func (n node) has(key string) bool { _, ok := n.m[key]; return ok }

func (n node) obj(key string) (node, bool) { return asNode(n.m[key], n.at(key)) }

func (n node) arr(key string) ([]any, bool) { a, ok := n.m[key].([]any); return a, ok }

func (n node) str(key string) string { s, _ := n.m[key].(string); return s }

func (n node) boolean(key string) bool { v, _ := n.m[key].(bool); return v }

func (n node) integer(key string) (int64, bool) { return integer(n.m[key]) }

func integer(v any) (int64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	d, err := dec.Parse(string(num))
	if err != nil || !d.IsInteger() || d.IntDigits() > 15 {
		return 0, false
	}
	i, err := strconv.ParseInt(d.Round(0).String(), 10, 64)
	return i, err == nil
}

// decimal reads a decimal given as a string or a number; nil when absent or
// malformed (the schema names the malformed ones).
func (n node) decimal(key string) *dec.Decimal {
	var text string
	switch v := n.m[key].(type) {
	case string:
		text = v
	case json.Number:
		text = string(v)
	default:
		return nil
	}
	d, err := dec.Parse(text)
	if err != nil || d.IntDigits() > maxIntDigits || d.Places() > maxFracDigits {
		return nil
	}
	return &d
}

// ids reads a list of identifiers, integers normalised to their digits the
// way events.ID reads them.
func (n node) ids(key string) []string {
	a, ok := n.arr(key)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case json.Number:
			if i, ok := integer(v); ok {
				out = append(out, strconv.FormatInt(i, 10))
			}
		}
	}
	return out
}

func (n node) strings(key string) []string {
	a, _ := n.arr(key)
	out := make([]string, 0, len(a))
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Range checks of decimals; each reports with the field's pointer.
func (b *builder) nonNegative(n node, key string) *dec.Decimal {
	d := n.decimal(key)
	if d != nil && d.Sign() < 0 {
		b.add(n.at(key), "must not be negative, got %s", d)
	}
	return d
}

func (b *builder) positive(n node, key string) *dec.Decimal {
	d := n.decimal(key)
	if d != nil && d.Sign() <= 0 {
		b.add(n.at(key), "must be greater than 0, got %s", d)
	}
	return d
}

func (b *builder) share(n node, key string, limit dec.Decimal, what string) *dec.Decimal {
	d := n.decimal(key)
	if d != nil && (d.Sign() <= 0 || d.Greater(limit)) {
		b.add(n.at(key), "must be greater than 0 and at most %s%s, got %s", limit, what, d)
	}
	return d
}

func (b *builder) percent(n node, key string) *dec.Decimal {
	return b.share(n, key, dec.Hundred, " (a percentage)")
}

func (b *builder) catalog(doc any) *Catalog {
	root, ok := asNode(doc, "")
	if !ok {
		return nil
	}
	c := &Catalog{Currency: root.str("currency"), MoneyDecimals: 2, Location: time.UTC}
	if n, ok := root.integer("money_decimals"); ok {
		c.MoneyDecimals = int32(n)
	}
	if tz, ok := root.m["timezone"].(string); ok {
		loc, err := loadLocation(tz)
		if err != nil {
			b.add(root.at("timezone"), "%s", err)
		} else {
			c.Timezone, c.Location = tz, loc
		}
	}
	if n, ok := root.obj("points"); ok {
		c.Points = b.points(n)
	}
	if n, ok := root.obj("membership"); ok {
		c.Membership = b.membership(n)
	}
	if progs, ok := root.arr("programs"); ok {
		seen := map[string]string{}
		for i, v := range progs {
			n, ok := asNode(v, root.at("programs")+"/"+strconv.Itoa(i))
			if !ok {
				continue
			}
			p := b.program(n)
			if first, dup := seen[p.ID]; dup && p.ID != "" {
				b.add(n.at("id"), "program id %q is already used by %s", p.ID, first)
			} else {
				seen[p.ID] = n.ptr
			}
			c.Programs = append(c.Programs, p)
		}
	}
	b.checkCouponRefs(c.Programs)
	sortPrograms(c.Programs)
	return c
}

// sortPrograms puts programs in evaluation order: item layer before order
// layer, then priority (lower first), then id.
func sortPrograms(ps []*Program) {
	rank := func(p *Program) int {
		if p.Layer == LayerOrder {
			return 1
		}
		return 0
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.ID < b.ID
	})
}

var locations sync.Map // name → *time.Location, so that equal catalogs share one

// loadLocation loads an IANA zone. "Local" and "" are refused: they mean
// whatever the machine is set to, and evaluation must not depend on it.
func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("must name an IANA timezone such as Asia/Jakarta, got %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown IANA timezone %q", name)
	}
	l, _ := locations.LoadOrStore(name, loc)
	return l.(*time.Location), nil
}

func (b *builder) points(n node) PointsConfig {
	var pc PointsConfig
	if d, ok := n.integer("decimals"); ok {
		pc.Decimals = int32(d)
	}
	earn, _ := n.arr("earn")
	for i, v := range earn {
		e, ok := asNode(v, n.at("earn")+"/"+strconv.Itoa(i))
		if !ok {
			continue
		}
		per, pts := b.positive(e, "per_amount"), b.nonNegative(e, "points")
		if per != nil && pts != nil {
			pc.Earn = append(pc.Earn, EarnRule{PerAmount: *per, Points: *pts})
		}
	}
	if e, ok := n.obj("expiry"); ok {
		months, hasMonths := e.integer("months")
		days, hasDays := e.integer("days")
		switch {
		case e.has("months") == e.has("days"):
			b.add(e.ptr, "needs exactly one of months and days")
		case hasMonths:
			pc.Expiry = &Expiry{Months: int(months)}
		case hasDays:
			pc.Expiry = &Expiry{Days: int(days)}
		}
	}
	if d, ok := n.integer("pending_days"); ok {
		pc.PendingDays = int(d)
	}
	if r, ok := n.obj("redeem"); ok {
		rc := &RedeemConfig{Min: dec.Zero, MaxShare: dec.One}
		if v := b.positive(r, "value"); v != nil {
			rc.Value = *v
		}
		if v := b.nonNegative(r, "min"); v != nil {
			rc.Min = *v
		}
		if v := b.share(r, "max_share", dec.One, " (a share of the order net)"); v != nil {
			rc.MaxShare = *v
		}
		pc.Redeem = rc
	}
	return pc
}

func (b *builder) membership(n node) *MembershipConfig {
	mc := &MembershipConfig{DefaultPath: n.str("default_path")}
	b.levels = map[string]bool{}
	paths, _ := n.arr("paths")
	seen := map[string]string{}
	for i, v := range paths {
		pn, ok := asNode(v, n.at("paths")+"/"+strconv.Itoa(i))
		if !ok {
			continue
		}
		p := b.path(pn)
		if first, dup := seen[p.ID]; dup && p.ID != "" {
			b.add(pn.at("id"), "path id %q is already used by %s", p.ID, first)
			continue
		}
		seen[p.ID] = pn.ptr
		mc.Paths = append(mc.Paths, p)
	}
	if mc.DefaultPath != "" && seen[mc.DefaultPath] == "" && len(paths) > 0 {
		b.add(n.at("default_path"), "names no path: %q is not among the paths' ids", mc.DefaultPath)
	}
	return mc
}

func (b *builder) path(n node) *Path {
	p := &Path{ID: n.str("id"), Downgrade: DowngradeOneLevel}
	if q, ok := n.obj("qualify"); ok {
		if d, ok := q.integer("window_days"); ok {
			p.WindowDays = int(d)
		}
	}
	if d, ok := n.integer("retention_days"); ok {
		p.RetentionDays = int(d)
	}
	if s := n.str("downgrade"); s != "" {
		p.Downgrade = s
	}
	if d, ok := n.integer("warn_days"); ok {
		p.WarnDays = int(d)
	}
	levels, _ := n.arr("levels")
	seen := map[string]string{}
	var prev *Level
	for i, v := range levels {
		ln, ok := asNode(v, n.at("levels")+"/"+strconv.Itoa(i))
		if !ok {
			continue
		}
		l := &Level{ID: ln.str("id")}
		if first, dup := seen[l.ID]; dup && l.ID != "" {
			b.add(ln.at("id"), "level id %q is already used by %s", l.ID, first)
		}
		seen[l.ID] = ln.ptr
		if l.ID != "" {
			b.levels[l.ID] = true
		}
		min := b.nonNegative(ln, "min")
		if min != nil {
			l.Min = *min
			switch {
			case prev == nil && i == 0 && !min.IsZero():
				b.add(ln.at("min"), "the first level is the entry level every member holds: its min must be 0, got %s", min)
			case prev != nil && !min.Greater(prev.Min):
				b.add(ln.at("min"), "levels must be listed by increasing min: %s is not above %s of level %q", min, prev.Min, prev.ID)
			}
		}
		l.DiscountPercent = b.percent(ln, "discount_percent")
		l.PointsMultiplier = b.positive(ln, "points_multiplier")
		p.Levels = append(p.Levels, l)
		if min != nil {
			prev = l
		}
	}
	return p
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (b *builder) program(n node) *Program {
	p := &Program{ID: n.str("id"), Layer: n.str("layer"), Exclusive: n.boolean("exclusive")}
	if pr, ok := n.integer("priority"); ok {
		p.Priority = int(pr)
	}
	if v, ok := n.obj("valid"); ok {
		p.Valid = b.validity(v)
	}
	if w, ok := n.obj("when"); ok {
		p.When = b.conditions(w)
	}
	if l, ok := n.obj("limits"); ok {
		if v, ok := l.integer("total_uses"); ok {
			p.Limits.TotalUses = &v
		}
		if v, ok := l.integer("uses_per_customer"); ok {
			p.Limits.UsesPerCustomer = &v
		}
		p.Limits.Budget = b.nonNegative(l, "budget")
		b.limitsScope(l, &p.Limits)
	}
	if r, ok := n.obj("reward"); ok {
		p.Reward = b.reward(r, p.Layer)
		if p.Limits.Budget != nil && !p.Reward.discounts() {
			b.add(n.at("limits")+"/budget", "caps the discount a program gives: a %s reward gives none", p.Reward.Kind)
		}
		b.rewardLimits(n, p)
	}
	return p
}

func (b *builder) validity(n node) Validity {
	var v Validity
	parse := func(key string) *time.Time {
		s, ok := n.m[key].(string)
		if !ok {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			b.add(n.at(key), "not a valid RFC 3339 time with offset: %q", s)
			return nil
		}
		return &t
	}
	v.From, v.Until = parse("from"), parse("until")
	if v.From != nil && v.Until != nil && !v.From.Before(*v.Until) {
		b.add(n.at("until"), "must be after from (%s): the window [from, until) would be empty", v.From.Format(time.RFC3339))
	}
	for _, d := range n.strings("days") {
		if wd, ok := weekdays[d]; ok {
			v.Days = append(v.Days, wd)
		}
	}
	if hours := n.strings("hours"); len(hours) == 2 {
		start, ok1 := minutesOfDay(hours[0])
		end, ok2 := minutesOfDay(hours[1])
		switch {
		case !ok1 || !ok2:
			// The schema's pattern names the malformed one.
		case start == end:
			b.add(n.at("hours"), "start and end are both %s: the window [start, end) would be empty", hours[0])
		default:
			v.Hours = &[2]int{start, end}
		}
	}
	return v
}

// minutesOfDay reads HH:MM (00:00–23:59).
func minutesOfDay(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func (b *builder) conditions(n node) Conditions {
	var c Conditions
	if pn, ok := n.obj("products"); ok {
		c.Products = b.products(pn)
	}
	c.MinQty = b.nonNegative(n, "min_qty")
	c.MinAmount = b.nonNegative(n, "min_amount")
	if levels, ok := n.arr("levels"); ok {
		for i, v := range levels {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if !b.levels[s] {
				if b.levels == nil {
					b.add(n.at("levels")+"/"+strconv.Itoa(i), "unknown membership level %q: the catalog has no membership section", s)
				} else {
					b.add(n.at("levels")+"/"+strconv.Itoa(i), "unknown membership level %q", s)
				}
			}
			c.Levels = append(c.Levels, s)
		}
	}
	c.Code = n.str("code")
	c.Companies = n.ids("companies")
	c.PosConfigs = n.ids("pos_configs")
	c.Coupon = n.str("coupon")
	if c.Coupon != "" && c.Code != "" {
		b.add(n.at("coupon"), "a program is redeemed either with its code or with an issued coupon, not both")
	}
	return c
}

func (b *builder) products(n node) *ProductFilter {
	f := &ProductFilter{IDs: n.ids("ids"), Categories: n.ids("categories"), Tags: n.ids("tags")}
	if len(f.IDs)+len(f.Categories)+len(f.Tags) > 0 {
		return f
	}
	for _, v := range n.m {
		if _, ok := v.([]any); !ok {
			return f // the schema reports the malformed list
		}
	}
	b.add(n.ptr, "lists no ids, categories or tags, so no line would match: remove it to match every line")
	return f
}

var rewardKinds = []string{RewardPercent, RewardAmount, RewardBuyGet, RewardPointsMultiplier, RewardBonusPoints, RewardIssueCoupon}

func (b *builder) reward(n node, layer string) Reward {
	var r Reward
	var kinds []string
	for _, k := range rewardKinds {
		if n.has(k) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		b.add(n.ptr, "needs exactly one reward kind: %s", strings.Join(rewardKinds, ", "))
	case 1:
		r.Kind = kinds[0]
	default:
		b.add(n.ptr, "has %s: exactly one reward kind is allowed", strings.Join(kinds, " and "))
	}
	r.Percent = b.percent(n, RewardPercent)
	r.Amount = b.nonNegative(n, RewardAmount)
	r.PointsMultiplier = b.positive(n, RewardPointsMultiplier)
	r.BonusPoints = b.positive(n, RewardBonusPoints)
	r.Max = b.nonNegative(n, "max")
	if bg, ok := n.obj(RewardBuyGet); ok {
		r.BuyGet = &BuyGet{Percent: dec.Hundred}
		r.BuyGet.Buy, _ = bg.integer("buy")
		r.BuyGet.Get, _ = bg.integer("get")
		if v := b.percent(bg, "percent"); v != nil {
			r.BuyGet.Percent = *v
		}
		if pn, ok := bg.obj("products"); ok {
			r.BuyGet.Products = b.products(pn)
		}
		if layer == LayerOrder {
			b.add(bg.ptr, "buy_get is an item layer reward: it discounts units, not the order")
		}
	}
	if ic, ok := n.obj(RewardIssueCoupon); ok {
		r.IssueCoupon = b.issueCoupon(ic)
	}

	// The item layer discounts lines (all qualifying ones, or the cheapest
	// unit); the order layer discounts the order. An item program "on:
	// order" would be an order program run too early, and an order program
	// on lines an item program run too late: both are refused as the
	// likely mistakes they are.
	r.On = n.str("on")
	switch {
	case r.On == "" && layer == LayerOrder:
		r.On = OnOrder
	case r.On == "":
		r.On = OnLines
	case r.Kind == RewardBuyGet || !r.discounts():
		b.add(n.at("on"), "does not apply to a %s reward", r.Kind)
	case layer == LayerItem && r.On == OnOrder:
		b.add(n.at("on"), "%q is not a target of the item layer: use lines or cheapest, or make it an order program", r.On)
	case layer == LayerOrder && r.On != OnOrder:
		b.add(n.at("on"), "%q is not a target of the order layer: use order, or make it an item program", r.On)
	}
	if !r.discounts() && n.has("max") {
		b.add(n.at("max"), "does not apply to a %s reward: it caps a discount", r.Kind)
	}
	return r
}
