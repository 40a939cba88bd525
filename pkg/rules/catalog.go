package rules

import (
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Catalog is a parsed, validated catalog document (SPEC §5). It is
// immutable once parsed and safe to share between goroutines.
type Catalog struct {
	// Version is the catalog version stored in Postgres (0 when the catalog
	// was parsed from a file and not yet applied). Results carry it.
	Version int64

	Currency      string
	MoneyDecimals int32 // default 2
	Timezone      string
	Location      *time.Location // loaded from Timezone

	Points     PointsConfig
	Membership *MembershipConfig // nil: no membership levels

	// Programs sorted in evaluation order: layer (item, order), then
	// priority, then id.
	Programs []*Program

	// JSON is the canonical JSON form of the document as applied (YAML is
	// converted), which is what the catalog store keeps.
	JSON []byte

	// products indexes the programs' product filters (set by Parse; an
	// evaluation of a catalog built by hand indexes it on the fly).
	products *productIndex
}

// PointsConfig is the points section. A catalog without one earns nothing
// and allows no redemption.
type PointsConfig struct {
	Decimals    int32 // earned points are rounded down to this; default 0
	Earn        []EarnRule
	Expiry      *Expiry // nil: lots never expire
	PendingDays int     // a lot is spendable from occurred_at + PendingDays
	Redeem      *RedeemConfig
}

// EarnRule gives floor(base / PerAmount) × Points.
type EarnRule struct {
	PerAmount dec.Decimal
	Points    dec.Decimal
}

// Expiry is {months: N} or {days: N}; exactly one is non-zero.
type Expiry struct {
	Months int
	Days   int
}

// RedeemConfig governs spending points as a discount.
type RedeemConfig struct {
	Value    dec.Decimal // money value of one point
	Min      dec.Decimal // smallest redemption
	MaxShare dec.Decimal // value ≤ MaxShare × running order net
}

// MembershipConfig is the membership section.
type MembershipConfig struct {
	DefaultPath string
	Paths       []*Path
}

// Downgrade policies.
const (
	DowngradeOneLevel    = "one_level"
	DowngradeToQualified = "to_qualified"
)

// Path is one ladder of levels.
type Path struct {
	ID            string
	WindowDays    int // qualify.window_days: spend is summed over this rolling window
	RetentionDays int
	Downgrade     string   // DowngradeOneLevel or DowngradeToQualified
	Levels        []*Level // sorted by Min ascending; Levels[0] is the entry level
	// WarnDays is how many days ahead the job warns of a coming downgrade
	// (SPEC §6.8); 0: no warnings.
	WarnDays int
}

// Level is one rung of a path.
type Level struct {
	ID               string
	Min              dec.Decimal
	DiscountPercent  *dec.Decimal // member layer discount; nil: none
	PointsMultiplier *dec.Decimal // nil: 1
}

// Layers of programs.
const (
	LayerItem  = "item"
	LayerOrder = "order"
)

// Reward kinds.
const (
	RewardPercent          = "percent"
	RewardAmount           = "amount"
	RewardBuyGet           = "buy_get"
	RewardPointsMultiplier = "points_multiplier"
	RewardBonusPoints      = "bonus_points"
	RewardIssueCoupon      = "issue_coupon"
)

// Reward targets.
const (
	OnLines    = "lines"
	OnCheapest = "cheapest"
	OnOrder    = "order"
)

// Program is one promotion.
type Program struct {
	ID        string
	Layer     string // LayerItem or LayerOrder
	Priority  int
	Exclusive bool
	Valid     Validity
	When      Conditions
	Limits    Limits
	Reward    Reward
}

// Validity is when a program is active, in the catalog timezone.
type Validity struct {
	From  *time.Time // inclusive; nil: always
	Until *time.Time // exclusive; nil: forever
	Days  []time.Weekday
	// Hours is [start, end) in minutes after local midnight; nil: all day.
	// End < Start means the window wraps past midnight (22:00–02:00).
	Hours *[2]int
}

// Conditions are eligibility (who and where) and conditions (what is in the
// basket).
type Conditions struct {
	Products   *ProductFilter // nil: all lines qualify
	MinQty     *dec.Decimal
	MinAmount  *dec.Decimal
	Levels     []string
	Code       string // coupon code, compared case-insensitively
	Companies  []string
	PosConfigs []string
	// Coupon is CouponIssued for a program redeemable only with a code the
	// engine issued for it (SPEC §6.10); "" otherwise.
	Coupon string
}

// ProductFilter matches a line whose product id, any category or any tag is
// listed.
type ProductFilter struct {
	IDs        []string
	Categories []string
	Tags       []string
}

// Limits of a program; nil fields are unlimited.
type Limits struct {
	TotalUses       *int64
	UsesPerCustomer *int64
	Budget          *dec.Decimal
	PerPeriod       *PeriodLimits // nil: no calendar period counters
	// Scope is ScopeChain, ScopeCompany or ScopePosConfig: every counter
	// above is kept apart per company or pos config ("" is the chain).
	Scope string
}

// Any reports whether the program has a limit the ledger must enforce.
func (l Limits) Any() bool {
	return l.TotalUses != nil || l.UsesPerCustomer != nil || l.Budget != nil || l.PerPeriod != nil
}

// Reward is exactly one kind of reward.
type Reward struct {
	Kind             string // one of the Reward* constants
	Percent          *dec.Decimal
	Amount           *dec.Decimal
	BuyGet           *BuyGet
	PointsMultiplier *dec.Decimal
	BonusPoints      *dec.Decimal
	IssueCoupon      *IssueCoupon
	On               string       // OnLines, OnCheapest or OnOrder (defaulted by layer)
	Max              *dec.Decimal // cap of the discount per order
}

// BuyGet is "buy Buy, get Get at Percent off".
type BuyGet struct {
	Buy      int64
	Get      int64
	Percent  dec.Decimal    // default 100
	Products *ProductFilter // reward pool; nil: the qualifying lines
}

// location is the catalog's timezone; UTC for a catalog built by hand
// without one.
func (c *Catalog) location() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// ExpiresAt is when a lot earned at occurredAt expires: occurredAt plus the
// expiry's months or days, counted on the calendar of the catalog timezone
// (time.AddDate, so 31 January + 1 month is 3 March, as Go normalises), and
// expressed in that timezone. nil means the lot never expires.
func (c *Catalog) ExpiresAt(occurredAt time.Time) *time.Time {
	e := c.Points.Expiry
	if e == nil || (e.Months == 0 && e.Days == 0) {
		return nil
	}
	t := occurredAt.In(c.location()).AddDate(0, e.Months, e.Days)
	return &t
}

// AvailableAt is when a lot earned at occurredAt becomes spendable:
// occurredAt plus pending_days on the catalog's calendar, in its timezone.
func (c *Catalog) AvailableAt(occurredAt time.Time) time.Time {
	return occurredAt.In(c.location()).AddDate(0, 0, c.Points.PendingDays)
}

// Path returns the membership path with the given id, or nil. The empty id
// names the default path.
func (c *Catalog) Path(id string) *Path {
	if c.Membership == nil {
		return nil
	}
	if id == "" {
		id = c.Membership.DefaultPath
	}
	for _, p := range c.Membership.Paths {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// LevelMultiplier is the points multiplier of a level, 1 when the path or
// level is unknown (a catalog change may have removed it) or the level has
// none.
func (c *Catalog) LevelMultiplier(path, level string) dec.Decimal {
	if l := c.Path(path).Level(level); l != nil && l.PointsMultiplier != nil {
		return *l.PointsMultiplier
	}
	return dec.One
}

// Level returns the level with the given id, or nil. It is safe on a nil
// path, so that c.Path(p).Level(l) needs no check in between.
func (p *Path) Level(id string) *Level {
	if p == nil {
		return nil
	}
	for _, l := range p.Levels {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// Qualified is the highest level whose min is at most spend: the level a
// customer with that window spend qualifies for. nil only when spend is below
// the entry level's min (Parse requires that min to be 0, so for a
// non-negative spend never).
func (p *Path) Qualified(spend dec.Decimal) *Level {
	if p == nil {
		return nil
	}
	var q *Level
	for _, l := range p.Levels {
		if l.Min.LessEq(spend) && (q == nil || l.Min.Greater(q.Min)) {
			q = l
		}
	}
	return q
}

// Below is the level one rung under the level id (what a one_level
// downgrade moves to); nil for the entry level or an unknown id.
func (p *Path) Below(id string) *Level {
	if p == nil {
		return nil
	}
	for i, l := range p.Levels {
		if l.ID == id {
			if i == 0 {
				return nil
			}
			return p.Levels[i-1]
		}
	}
	return nil
}
