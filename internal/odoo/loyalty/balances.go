package loyalty

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// cardPage is how many loyalty cards one search_read returns.
const cardPage = 1000

// ReadLoyaltyCards reads the program and every card of it (whatever their
// points), in id order, a page at a time.
func ReadLoyaltyCards(ctx context.Context, c *odoo.Client, programID int64) (*Program, []*Card, error) {
	recs, err := c.Read(ctx, ModelProgram, []int64{programID}, ProgramFields)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("loyalty: loyalty.program %d not found", programID)
	}
	s := &Snapshot{Models: map[string][]odoo.Record{ModelProgram: recs}}
	s.Models[ModelProgram][0]["rule_ids"], s.Models[ModelProgram][0]["reward_ids"] = []byte("[]"), []byte("[]")
	programs, err := s.Programs()
	if err != nil {
		return nil, nil, err
	}
	var cards []*Card
	for offset := 0; ; offset += cardPage {
		page, err := c.SearchRead(ctx, ModelCard, []any{[]any{"program_id", "=", programID}}, CardFields,
			map[string]any{"order": "id", "limit": cardPage, "offset": offset})
		if err != nil {
			return nil, nil, err
		}
		decoded, err := DecodeCards(page)
		if err != nil {
			return nil, nil, err
		}
		cards = append(cards, decoded...)
		if len(page) < cardPage {
			return programs[0], cards, nil
		}
	}
}

// FindLoyaltyProgram returns the id of the only active loyalty program
// offered in the Point of Sale, or an error naming them when there are
// several (or none).
func FindLoyaltyProgram(ctx context.Context, c *odoo.Client) (int64, error) {
	recs, err := c.SearchRead(ctx, ModelProgram, []any{[]any{"program_type", "=", TypeLoyalty}}, []string{"name"},
		map[string]any{"order": "sequence, id"})
	if err != nil {
		return 0, err
	}
	switch len(recs) {
	case 0:
		return 0, fmt.Errorf("loyalty: Odoo has no active loyalty program")
	case 1:
		return recs[0].ID(), nil
	}
	var names []string
	for _, r := range recs {
		names = append(names, fmt.Sprintf("%d %q", r.ID(), r.String("name")))
	}
	return 0, fmt.Errorf("loyalty: Odoo has %d loyalty programs (%v): name one with --program", len(recs), names)
}

// BalanceOptions steer PlanBalances.
type BalanceOptions struct {
	// DB is the Odoo database, the first part of every id (as in event ids).
	DB string
	// AsOf is the import's instant: lots are earned and available from it,
	// and cards that expired before it are left out.
	AsOf time.Time
	// Catalog is the catalog in force: its time zone dates expiries, its
	// points decimals round the balances.
	Catalog *rules.Catalog
}

// CardOutcome says what became of one card.
type CardOutcome struct {
	CardID    int64       `json:"card_id"`
	PartnerID int64       `json:"partner_id,omitempty"`
	Points    dec.Decimal `json:"points"` // as Odoo holds them
	// Imported is what goes into the ledger (Points rounded to the
	// catalog's points decimals); zero when skipped.
	Imported  dec.Decimal `json:"imported"`
	ExpiresAt *string     `json:"expires_at,omitempty"`
	// Skipped says why the card's points are not imported.
	Skipped string `json:"skipped,omitempty"`
	// Rounded is set when Imported differs from Points by more than the
	// noise of Odoo's floats.
	Rounded bool `json:"rounded,omitempty"`
}

// BalancePlan is what an import of balances writes, and its
// reconciliation with Odoo.
type BalancePlan struct {
	ProgramID int64          `json:"program_id"`
	Cards     []CardOutcome  `json:"cards"`
	Lots      []OpeningLotID `json:"-"`
	// Odoo's side: every card, the points they hold.
	OdooCards  int         `json:"odoo_cards"`
	OdooPoints dec.Decimal `json:"odoo_points"`
	// What is imported: cards, customers, points.
	ImportedCards    int         `json:"imported_cards"`
	ImportedPartners int         `json:"imported_partners"`
	ImportedPoints   dec.Decimal `json:"imported_points"`
	// What is not, by reason: points left out, and the rounding.
	SkippedPoints  map[string]dec.Decimal `json:"skipped_points"`
	SkippedCards   map[string]int         `json:"skipped_cards"`
	RoundingPoints dec.Decimal            `json:"rounding_points"`
}

// OpeningLotID pairs an opening lot with its card.
type OpeningLotID struct {
	CardID int64
	Lot    ledger.OpeningLot
}

// Reasons a card is not imported.
const (
	SkipNoPoints  = "no points"
	SkipNoPartner = "no customer: the points of an anonymous card cannot be given to anyone"
	SkipExpired   = "expired"
	SkipNegative  = "negative points"
)

// floatNoise is below any difference Odoo shows: its points are floats, so
// 0.1 + 0.2 is 0.30000000000000004.
var floatNoise = dec.MustParse("0.000001")

// CardLotID is the opening lot of a card: its id is the source record's,
// so that importing twice opens it once.
func CardLotID(db string, cardID int64) string {
	return CardSource(db, cardID) + ":opening"
}

// CardSource names a card as the source of ledger entries.
func CardSource(db string, cardID int64) string {
	return db + ":loyalty.card:" + strconv.FormatInt(cardID, 10)
}

// PlanBalances decides, for every card of the loyalty program, the opening
// lot of its partner, or why it has none. Odoo's total equals what is
// imported plus what is skipped plus the rounding, always.
func PlanBalances(p *Program, cards []*Card, opts BalanceOptions) *BalancePlan {
	plan := &BalancePlan{ProgramID: p.ID, OdooPoints: dec.Zero, ImportedPoints: dec.Zero, RoundingPoints: dec.Zero,
		SkippedPoints: map[string]dec.Decimal{}, SkippedCards: map[string]int{}}
	loc := opts.Catalog.Location
	if loc == nil {
		loc = time.UTC
	}
	today := opts.AsOf.In(loc).Format(time.DateOnly)
	partners := map[int64]bool{}
	for _, c := range cards {
		plan.OdooCards++
		plan.OdooPoints = dec.Add(plan.OdooPoints, c.Points)
		o := CardOutcome{CardID: c.ID, PartnerID: c.PartnerID, Points: c.Points, Imported: dec.Zero}
		expiry := c.Expiration
		if p.DateTo != "" && (expiry == "" || p.DateTo < expiry) {
			expiry = p.DateTo
		}
		rounded := c.Points.Round(opts.Catalog.Points.Decimals)
		switch {
		case c.Points.Sign() < 0:
			o.Skipped = SkipNegative
		case rounded.Sign() == 0:
			o.Skipped = SkipNoPoints
		case c.PartnerID == 0:
			o.Skipped = SkipNoPartner
		case expiry != "" && expiry < today:
			o.Skipped = SkipExpired
		}
		if o.Skipped != "" {
			plan.SkippedCards[o.Skipped]++
			plan.SkippedPoints[o.Skipped] = dec.Add(plan.SkippedPoints[o.Skipped], c.Points) // absent: the zero Decimal, 0
			plan.Cards = append(plan.Cards, o)
			continue
		}
		o.Imported = rounded
		diff := dec.Sub(rounded, c.Points)
		plan.RoundingPoints = dec.Add(plan.RoundingPoints, diff)
		if diff.Sign() < 0 {
			diff = diff.Neg()
		}
		o.Rounded = diff.Greater(floatNoise)
		lot := ledger.OpeningLot{LotID: CardLotID(opts.DB, c.ID), CustomerID: strconv.FormatInt(c.PartnerID, 10),
			Source: CardSource(opts.DB, c.ID), At: opts.AsOf, Points: rounded}
		if expiry != "" {
			d, _ := time.ParseInLocation(time.DateOnly, expiry, loc)
			end := d.AddDate(0, 0, 1) // the date is included
			lot.ExpiresAt = &end
			s := end.Format(time.RFC3339)
			o.ExpiresAt = &s
		}
		plan.Lots = append(plan.Lots, OpeningLotID{CardID: c.ID, Lot: lot})
		plan.ImportedCards++
		plan.ImportedPoints = dec.Add(plan.ImportedPoints, rounded)
		partners[c.PartnerID] = true
		plan.Cards = append(plan.Cards, o)
	}
	plan.ImportedPartners = len(partners)
	return plan
}

// Balanced reports whether Odoo's total is what was imported, skipped and
// rounded — the reconciliation's equation.
func (p *BalancePlan) Balanced() bool {
	sum := dec.Sub(p.ImportedPoints, p.RoundingPoints)
	for _, v := range p.SkippedPoints {
		sum = dec.Add(sum, v)
	}
	return sum.Equal(p.OdooPoints)
}

// TrueUpTargets sums, per partner, the points of its cards that are not
// expired (rounded to the catalog's points decimals): what the engine's
// balance must be at cut-over. Cards without a partner are left out, as in
// the import.
func TrueUpTargets(p *Program, cards []*Card, opts BalanceOptions) map[int64]dec.Decimal {
	plan := PlanBalances(p, cards, opts)
	out := map[int64]dec.Decimal{}
	for _, o := range plan.Cards {
		if o.PartnerID == 0 {
			continue
		}
		cur := out[o.PartnerID] // absent: 0
		if o.Skipped == "" {
			cur = dec.Add(cur, o.Imported)
		}
		out[o.PartnerID] = cur
	}
	return out
}

// TrueUpID is the id of a partner's true-up at asOf.
func TrueUpID(db string, partnerID int64, asOf time.Time) string {
	return fmt.Sprintf("%s:res.partner:%d:true-up:%s", db, partnerID, asOf.UTC().Format("20060102T150405Z"))
}

// SortedPartners returns the partner ids of targets in order.
func SortedPartners(targets map[int64]dec.Decimal) []int64 {
	out := make([]int64, 0, len(targets))
	for id := range targets {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
