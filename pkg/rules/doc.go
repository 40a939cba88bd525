// Package rules is promoengine's catalog and its evaluation: it turns a
// catalog document into a Catalog (Parse) and prices one paid order against
// it (Evaluate). It is pure — no I/O, no clock, no environment, no float64 —
// so the same catalog, order and ledger answers always give the same
// outcome, which is what makes replays byte-identical (SPEC §1).
//
// The ledger is reached through one narrow interface, LimitsReader, and
// everything else the evaluation needs from it comes in the Input (the
// customer's level held before the order and spendable balance, and the
// customer's issued coupons among the codes the order presents). rules never
// imports the ledger; the ledger imports rules for the catalog model, the
// calendar helpers (Catalog.ExpiresAt, Catalog.AvailableAt,
// Catalog.PeriodKey, Catalog.CountersKey, Catalog.CouponValidUntil), the
// ladder helpers (Path.Qualified, Path.Below, Catalog.LevelMultiplier),
// NormalizeCouponCode and Allocate.
//
// # Parsing a catalog
//
// A catalog is YAML 1.2 or JSON (a document that opens with a brace is
// JSON). It is first read into a JSON-like tree in which numbers keep their
// exact text (json.Number): a YAML float 0.1 is one tenth, never a binary
// approximation. YAML is read as 1.2, not 1.1: `on: lines` is the key "on"
// (1.1 would read the boolean true), `yes` is a string, `10:00` is a string
// (1.1 would read 600), `0012` is twelve (1.1 would read octal ten). Merge
// keys are refused rather than half supported; aliases are expanded with a
// bound on the values (200,000) and on the text (4 MiB, a whole catalog)
// they may produce, and nesting is bounded too. Duplicate keys are errors
// in both formats (encoding/json would silently keep the last one); so are
// NUL characters and invalid UTF-8, which the catalog store (jsonb) cannot
// hold. JSON pointers are kept as segments and written only for a
// violation, so reading is linear whatever the length of the keys, and
// every message quotes values through pkg/errtext (at most 64 characters,
// twenty violations in CatalogError's text).
//
// The tree is validated against schemas/catalog.schema.json — the published
// contract — and then checked for what a schema cannot say: unique program,
// path and level ids; default_path naming a path; exactly one reward kind;
// the targets a layer allows; buy_get only on the item layer; known levels
// in when.levels; percentages in (0, 100]; max_share in (0, 1]; amounts not
// negative and per_amount and multipliers positive; from before until;
// hours that are not an empty window; a real IANA timezone; expiry with
// exactly one of months and days; levels listed by strictly increasing min,
// the first at 0; an issue_coupon naming an existing program with
// when.coupon: issued; a per_period that counts something; a scope with a
// limit to keep apart; no budget on a reward that discounts nothing; code
// and coupon not both. Both passes run on every document and every problem comes
// back at once in a *CatalogError, each with the JSON pointer of its field,
// so an operator fixes a file in one round (SPEC §5). A value of the wrong
// shape is reported by the schema and skipped by the semantic pass, so one
// mistake is not reported twice.
//
// Defaults: money_decimals 2, points.decimals 0, redeem.min 0,
// redeem.max_share 1, downgrade one_level, warn_days 0 (no warnings),
// limits.scope chain, priority 0, exclusive false,
// reward.on lines on the item layer and order on the order layer, buy_get
// percent 100. Programs come out sorted in evaluation order: item layer
// before order layer, then priority, then id.
//
// Catalog.JSON is the canonical JSON of the document as written (keys
// sorted, numbers exact, defaults not filled in), which the catalog store
// keeps; Parse(c.JSON) gives an equal catalog. Identifiers may be written as
// integers (Odoo's ids) and are kept as their digits, as events.ID does.
//
// Choices made where the SPEC is silent:
//
//   - timezone is required: day and hour windows and expiry dates mean
//     nothing without it, and "Local" is refused because it would make the
//     result depend on the machine. The zone database is embedded
//     (time/tzdata) so a container without one still works.
//   - An item program may target lines or cheapest; an order program only
//     the order. An item program "on: order" would be an order discount run
//     before the member layer, and an order program on lines an item
//     discount run after it; both are more likely mistakes than intent, and
//     refusing them keeps the layers meaning what they say.
//   - on and max are refused on points rewards (there is no discount to
//     target or cap), on is refused on buy_get (its pool is its target), and
//     a budget is refused on a points reward (it caps discounts).
//   - when.products listing nothing is refused: it would match no line; to
//     match every line, leave it out.
//   - A membership path's first level is its entry level and must have min
//     0, so that every customer qualifies for some level; levels are listed
//     by increasing min so that "one level down" is unambiguous.
//
// # Evaluating an order
//
// Evaluate follows SPEC §6 exactly; these notes say how its open points were
// settled, from the numbers of the conformance scenarios.
//
// Lines. Each line's gross is qty × unit_price rounded half up to the money
// decimals; its running net starts at the gross and every applied discount
// lowers it. Conditions and rewards always read running nets, so a later
// program sees what earlier ones left.
//
// Layers run item → member → order → points. Within a layer programs run in
// catalog order (priority, then id). Each program is decided in this order,
// and the first failing step is its trace outcome:
//
//  1. stopped_by_exclusive — an exclusive program of the same layer applied
//     earlier. Exclusivity never crosses layers.
//  2. not_active — occurred_at outside [from, until), or its weekday or
//     time of day outside days and hours. Instants compare as instants;
//     days and hours are read on the wall clock of the catalog timezone,
//     whatever offset the event was written with. hours is [start, end);
//     end before start wraps past midnight (22:00–02:00). days is checked
//     on the calendar day of occurred_at, independently of hours, so Sunday
//     01:00 is a Sunday even in a Saturday 22:00–02:00 window.
//  3. not_eligible — the customer's level (before this order) is not in
//     levels (anonymous orders hold none), no coupon code equals code
//     case-insensitively (strings.EqualFold), the company or pos config is
//     not listed, the reward is points or issue_coupon and the order is
//     anonymous, or the program wants an issued coupon and no presented code
//     is one issued for it that is unused, not void and valid at
//     occurred_at (see Coupons below).
//  4. condition_failed — the qualifying lines are the lines matching
//     when.products (product id, any category or any tag; absent: every
//     line). With a products filter at least one line must qualify;
//     min_qty is checked on their summed qty and min_amount on their summed
//     running net ("min_amount 100000 not met: 85000").
//  5. condition_failed again when the reward comes to nothing on this order:
//     a buy_get without a complete set, a cheapest without a whole unit, a
//     percent of a zero net, a discount that rounds to 0. Such a program
//     asks no limit, uses nothing and stops nothing even if exclusive
//     (SPEC §5).
//  6. limit_reached — only for programs with limits, the LimitsReader is
//     asked once, after the reward is known to be non-zero: no use left, or
//     a budget left that is zero (after rounding down to the money
//     decimals). A budget left below the discount cuts the discount to it.
//     The reader says which counter stopped the program (Remaining.Stopped)
//     and which budget is the smallest remainder (Remaining.BudgetLimit);
//     the reason names it with the program's scope: "daily uses 100 reached
//     for company 1", "cut to the weekly budget left 1500 for pos config 3"
//     ("no uses left" and "budget exhausted" when the reader does not say).
//  7. applied — the discount is allocated, the running nets lowered, the
//     discount entries appended, and a Use recorded if the program has
//     limits (with the discount given; 0 for a points reward).
//
// Discounts (§6.3). A discount reward yields a weight per line: lines — the
// qualifying lines' running nets; order — every line's running net;
// cheapest — one unit of the qualifying line whose running net per unit is
// lowest, only lines with at least one whole unit counting, ties to the
// earlier line, the weight being that unit net; buy_get — see below. The
// raw amount is percent/100 × Σweights (amount: the fixed amount), capped at
// max, capped at Σweights, then rounded half up to the money decimals. That
// one total is split over the weights by Allocate.
//
// buy_get (§6.4). Units are whole units (floor(qty), so 1.5 kg is one
// unit), each valued at its line's running net per unit. Without
// buy_get.products the reward pool is the qualifying pool and sets =
// floor(units / (buy + get)): the get units come out of the same basket.
// With buy_get.products the reward pool is the lines matching it (among all
// lines, qualifying or not), sets = floor(qualifying units / buy) and up to
// sets × get of its units are given. In both cases the cheapest units are
// given first, ties to the earlier line, and a line's weight is its given
// units × its unit net; buy_get.percent (default 100) applies to their sum.
// The pools are not made disjoint when they overlap: with products naming
// some of the qualifying lines, the same units count towards the sets and
// can be given. To mean "buy two, the third free" within one range, leave
// buy_get.products out.
//
// Allocate splits a total by largest remainder in units of the money
// quantum: each share is first floored, then the quanta left over go to
// the largest remainders, ties to the earlier line. It works on integers
// (every number scaled to a common exponent), so remainders compare exactly.
// The total never exceeds Σweights and each weight is at most its line's
// net, so no net goes below zero; the evaluation still clamps defensively.
//
// Member layer (§6.5). The level the customer held before the order (looked
// up in Customer.Path, the default path when empty; an unknown level is
// ignored) with a discount_percent gives that percent of all running nets,
// as one total rounded and allocated like any discount. Its entries have
// layer "member" and the level id as program_id. It has no trace entry: the
// trace lists catalog programs only, one entry each.
//
// Points layer (§6.6). A positive order.redeem_points is checked in this
// order, the first failure rejecting the order: a customer is required
// (customer_required); the catalog must allow redemption
// (redemption_exceeds_limit); at least redeem.min (redemption_below_minimum);
// at most the spendable balance the ledger passed in Customer.Balance
// (insufficient_points); a value, points × redeem.value, at most max_share of
// the running order net (redemption_exceeds_limit). The messages name the
// numbers. The value, rounded half up, is a discount over all lines by
// running net, entries with layer "points" and program_id "points".
// redeem_points is used as given; the ledger consumes it FEFO.
//
// A rejected order has Rejection set, lines at their gross with no
// discount, no discount entries, no uses, nothing earned and nothing
// redeemed; the trace is kept so the operator sees what would have applied.
//
// Limits per period and scope (§6.9). The counters a use counts in are the
// ledger's business; rules gives it the keys: Catalog.CountersKey is the
// scope key ("company:1", "pos_config:3", "" for the chain) and the period
// key, which Catalog.PeriodKey writes as "2026-11-21" (day), "2026-W47"
// (ISO week, Monday to Monday) or "2026-11" (month) of occurred_at in the
// catalog timezone. Unlimited hands back the smaller of the configured
// budgets.
//
// Coupons (§6.10). An applied issue_coupon program adds an IssuedCoupon
// (issuing program, redeemed program, valid from occurred_at until
// occurred_at + valid_days calendar days in the catalog timezone) to
// Outcome.CouponsIssued; the ledger derives its code. A when.coupon: issued
// program looks at the presented codes in order, each normalised
// (NormalizeCouponCode: upper case, no spaces or hyphens, O as 0, I and L
// as 1), and takes the first that Input.Coupons holds for it, unused, not
// void and valid at occurred_at; the reason of not_eligible is about the
// first code issued for it ("coupon … is already used (order …)"), or says
// none was presented. Applied, it appends ", with coupon CODE" to the reason
// and a UsedCoupon to Outcome.CouponsUsed. A rejected order issues and uses
// nothing.
//
// Earn (§6.7), for customers only: base = the final order net; the sum over
// earn rules of floor(base / per_amount) × points, times the points
// multiplier of the level held before the order (1 when none), times every
// applied points_multiplier, plus every applied bonus_points, rounded down
// to the points decimals. Outcome.Earned is the whole amount; paying debt
// from it is the ledger's business.
//
// Output. Lines, totals and discount amounts carry exactly the money
// decimals (5 is written "5.00" with two), so they marshal as the SPEC
// wants. Per line gross − discount = net, totals are the sums of the lines
// and totals.discount is the sum of the discount entries, which are the
// non-zero allocations in application order.
//
// Line order. Ties go to the earlier line by contract (cheapest units,
// allocation remainders), so reordering the lines of an order may move one
// quantum from one line to another. Totals do not change unless a later
// program's product filter tells those two lines apart.
//
// # Performance
//
// A quote of 10 lines against 50 programs is one Evaluate call with a
// read-only LimitsReader. BenchmarkQuote measures a deliberately heavy mix
// (35 of the 50 programs apply); the hot path avoids division where it can
// (percentages multiply by 0.01, unit nets compare by cross-multiplying)
// and allocates discounts on integers.
//
// Product filters are indexed once per catalog (product_index.go): each
// listed id maps to the filters listing it. An evaluation looks up each id
// of each line once, building for every line the set of filters it
// matches, and a program's condition is then a bit test per line; the cost
// does not depend on how long the catalog's lists are (a catalog of 10,000
// categories per program made each quote scan them all).
// BenchmarkEvaluateLongLists measures it.
package rules
