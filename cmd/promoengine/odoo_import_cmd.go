package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/ledger"
)

const importCatalogUsage = `odoo import-catalog [-o FILE] [--company ID] [--loyalty-program ID] [--timezone TZ] [--max-coupon-codes N] [--coupon-valid-days N] [--json]`

const importCatalogExamples = `  promoengine odoo import-catalog -o catalog.yaml     # Odoo's loyalty programs as a catalog, and what could not be translated
  promoengine catalog validate -f catalog.yaml
  promoengine odoo import-catalog --json > import.json   # the report for a script

import-catalog reads Odoo's loyalty programs (loyalty.program, loyalty.rule,
loyalty.reward, the coupons holding points, and the products, categories, tags,
pricelists and companies they name) over JSON-RPC as PROMO_ODOO_LOGIN, and writes
a catalog: the YAML on stdout or in FILE, the report on stderr (or, with --json,
the report as JSON on stdout and the catalog only in FILE). Every Odoo program is
reported: translated, partly, not translated (with the reason) or skipped; the
catalog file repeats the list at its end. Nothing is written to the engine: read
the catalog, then catalog apply it (docs/MIGRATION.md).

Exit status: 0 when the catalog is written, 1 on failure (Odoo unreachable),
2 on a usage error.
`

const importBalancesUsage = `odoo import-balances [--program ID] [--as-of T] [--true-up] [--dry-run] [--json]`

const importBalancesExamples = `  promoengine odoo import-balances --dry-run          # what would be imported, and the reconciliation
  promoengine odoo import-balances                    # every card's points become an opening lot of its customer
  promoengine odoo import-balances --true-up --as-of 2027-01-15T00:00:00+07:00   # at cut-over: balances = Odoo's

import-balances reads every loyalty card of the loyalty program (--program, or
the only one) over JSON-RPC and opens, for each card with points and a customer,
a lot of those points for the customer (res.partner id), earned at --as-of
(default now), expiring at the end of the card's expiration date or the program's
end date. Lot ids are the cards' (<PROMO_ODOO_DB>:loyalty.card:<id>:opening):
running it again opens nothing twice. The reconciliation printed after it says,
for Odoo and for the engine, how many cards, customers and points; Odoo's total
is always what was imported plus what was left out (cards without a customer,
expired, empty) plus the rounding to the catalog's points decimals.

--true-up is for the cut-over after a shadow period: it brings each card
holder's balance in the engine, at --as-of, to the points of their cards in Odoo
(a lot for what is missing, clawbacks first-expiring-first for what is too much,
a debt paid off), once per customer and --as-of.

Exit status: 0 when the engine's totals equal Odoo's, 1 when they do not or on
failure, 2 on a usage error.
`

// actionOdooImportBalances is the audit trail's name of a balance import.
const actionOdooImportBalances = "odoo.import_balances"

func runOdooImportCatalog(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "odoo import-catalog", importCatalogUsage, importCatalogExamples)
	out := fs.String("o", "", "write the catalog to FILE (default stdout)")
	company := fs.Int64("company", 0, "res.company whose currency the catalog takes (default the API user's)")
	program := fs.Int64("loyalty-program", 0, "loyalty.program whose points become the catalog's points (default the only active one)")
	tz := fs.String("timezone", "", "the catalog's IANA time zone (default the API user's in Odoo, else UTC)")
	maxCoupons := fs.Int("max-coupon-codes", 50, "open coupons translated to a program each, at most (0: none)")
	validDays := fs.Int("coupon-valid-days", 30, "days a coupon the engine issues for a next order coupons program stays valid")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout (the catalog goes to -o only)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *asJSON && *out == "" {
		return usagef("odoo import-catalog: --json prints the report; name the catalog's file with -o")
	}
	if *maxCoupons == 0 {
		*maxCoupons = -1
	}
	client, err := odooClient(c, "odoo import-catalog")
	if err != nil {
		return err
	}
	snap, err := loyalty.Read(ctx, client, loyalty.ReadOptions{})
	if err != nil {
		return fmt.Errorf("odoo import-catalog: %w", err)
	}
	imp, err := loyalty.Translate(snap, loyalty.Options{Company: *company, LoyaltyProgram: *program, Timezone: *tz,
		MaxCouponCodes: *maxCoupons, CouponValidDays: *validDays, IssuedCoupons: loyalty.SupportsIssuedCoupons(), Now: time.Now()})
	if err != nil {
		return fmt.Errorf("odoo import-catalog: %w", err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, imp.YAML, 0o644); err != nil {
			return fmt.Errorf("odoo import-catalog: %w", err)
		}
	} else if _, err := c.stdout.Write(imp.YAML); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, imp)
	}
	w := c.stderr
	if *out != "" {
		w = c.stdout
	}
	printImportReport(w, imp, *out)
	return nil
}

// printImportReport lists every Odoo program and what became of it.
func printImportReport(w io.Writer, imp *loyalty.Import, file string) {
	counts := map[string]int{}
	for _, r := range imp.Programs {
		counts[r.Outcome]++
	}
	where := "above"
	if file != "" {
		where = file
	}
	fmt.Fprintf(w, "catalog (%s, %s, %d programs) written %s; Odoo programs: %d translated, %d partly, %d not translated, %d skipped\n",
		imp.Currency, imp.Timezone, len(imp.Catalog.Programs), map[bool]string{true: "to " + where, false: where}[file != ""],
		counts[loyalty.OutcomeTranslated], counts[loyalty.OutcomePartial], counts[loyalty.OutcomeUntranslated], counts[loyalty.OutcomeSkipped])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ODOO ID\tTYPE\tNAME\tOUTCOME\tCATALOG\tWHY / WHAT DIFFERS")
	for _, r := range imp.Programs {
		why := r.Reason
		notes := append(append([]string{}, r.NotTranslated...), r.Differences...)
		if why == "" && len(notes) > 0 {
			why, notes = notes[0], notes[1:]
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Name, r.Outcome, strings.Join(r.CatalogIDs, " "), why)
		for _, n := range notes {
			fmt.Fprintf(tw, "\t\t\t\t\t%s\n", n)
		}
	}
	_ = tw.Flush()
	for _, n := range imp.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// odooClient is the client of PROMO_ODOO_*, required by cmd.
func odooClient(c *cli, cmd string) (*odoo.Client, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	client, err := odoo.NewFromConfig(cfg, c.log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if client == nil {
		return nil, fmt.Errorf("%s: set PROMO_ODOO_URL, PROMO_ODOO_DB, PROMO_ODOO_LOGIN and PROMO_ODOO_API_KEY", cmd)
	}
	return client, nil
}

// balancesReport is what import-balances prints (as JSON with --json).
type balancesReport struct {
	Plan *loyalty.BalancePlan `json:"plan"`
	// Opened counts the lots written now; Existing those of an earlier
	// import (Changed: of which Odoo's points have changed since).
	Opened   int `json:"opened"`
	Existing int `json:"existing"`
	Changed  int `json:"changed"`
	// EngineCards and EnginePoints are what the engine holds of the
	// imported cards: lots (original points) and the debt they paid.
	EngineCards  int          `json:"engine_cards"`
	EnginePoints dec.Decimal  `json:"engine_points"`
	TrueUps      []trueUpLine `json:"true_ups,omitempty"`
	DryRun       bool         `json:"dry_run"`
	Equal        bool         `json:"equal"`
}

type trueUpLine struct {
	PartnerID int64       `json:"partner_id"`
	Odoo      dec.Decimal `json:"odoo"`
	Before    dec.Decimal `json:"before"`
	Delta     dec.Decimal `json:"delta"`
	Debt      dec.Decimal `json:"debt_cleared"`
	Applied   bool        `json:"applied"`
}

func runOdooImportBalances(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "odoo import-balances", importBalancesUsage, importBalancesExamples)
	programID := fs.Int64("program", 0, "the loyalty.program whose cards to import (default the only active loyalty program)")
	asOfText := fs.String("as-of", "", "the import's instant, RFC 3339 or a duration ago (default now)")
	trueUp := fs.Bool("true-up", false, "bring each customer's balance to their cards' points in Odoo (at cut-over)")
	dryRun := fs.Bool("dry-run", false, "print the plan and the reconciliation; write nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	asOf := time.Now()
	if *asOfText != "" {
		var err error
		if asOf, err = parseInstant(*asOfText, asOf); err != nil {
			return usagef("odoo import-balances: --as-of: %v", err)
		}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	client, err := odooClient(c, "odoo import-balances")
	if err != nil {
		return err
	}
	s, err := openLedger(ctx, c, !*dryRun || *trueUp) // a dry true-up runs in a transaction rolled back
	if err != nil {
		return err
	}
	defer s.Close()
	if *programID == 0 {
		if *programID, err = loyalty.FindLoyaltyProgram(ctx, client); err != nil {
			return err
		}
	}
	program, cards, err := loyalty.ReadLoyaltyCards(ctx, client, *programID)
	if err != nil {
		return fmt.Errorf("odoo import-balances: %w", err)
	}
	if program.Type != loyalty.TypeLoyalty {
		return usagef("odoo import-balances: program %d %q is of type %s, not loyalty", program.ID, program.Name, program.Type)
	}
	opts := loyalty.BalanceOptions{DB: cfg.OdooDB, AsOf: asOf, Catalog: s.catalog}
	rep := &balancesReport{Plan: loyalty.PlanBalances(program, cards, opts), DryRun: *dryRun, EnginePoints: dec.Zero}
	if *trueUp {
		err = trueUpBalances(ctx, s, program, cards, opts, rep)
	} else {
		err = openBalances(ctx, s, rep)
	}
	if err == nil && !*dryRun {
		trail := newCLIAudit(c, s.pool)
		details := map[string]any{"program_id": program.ID, "as_of": asOf.Format(time.RFC3339), "true_up": *trueUp,
			"opened": rep.Opened, "true_ups": len(rep.TrueUps), "odoo_points": rep.Plan.OdooPoints.String()}
		err = trail.record(ctx, actionOdooImportBalances, fmt.Sprintf("loyalty.program %d", program.ID), details, nil)
	}
	if err != nil {
		return fmt.Errorf("odoo import-balances: %w", err)
	}
	if *asJSON {
		if err := writeJSON(c, rep); err != nil {
			return err
		}
	} else {
		printBalances(c.stdout, program, rep, *trueUp)
	}
	if !rep.Equal {
		return &exitError{code: 1}
	}
	return nil
}

// openBalances opens the plan's lots (500 customers a transaction) and
// reads back what the engine holds of them.
func openBalances(ctx context.Context, s *ledgerSession, rep *balancesReport) error {
	lots := rep.Plan.Lots
	ids := make([]string, len(lots))
	byID := map[string]dec.Decimal{}
	for i, l := range lots {
		ids[i] = l.Lot.LotID
		byID[l.Lot.LotID] = l.Lot.Points
	}
	const chunk = 500
	for start := 0; start < len(lots) && !rep.DryRun; start += chunk {
		part := make([]ledger.OpeningLot, 0, chunk)
		for _, l := range lots[start:min(start+chunk, len(lots))] {
			part = append(part, l.Lot)
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			out, err := ledger.OpenLots(ctx, tx, part)
			for _, o := range out {
				if o.Opened {
					rep.Opened++
				}
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	// What the engine holds of these cards, whoever imported them: the
	// points each opening put in (its earn and debt payment entries).
	rows, err := s.pool.Query(ctx, `
		SELECT event_id, sum(amount) FROM ledger_entries
		WHERE event_id = ANY($1) AND kind IN ('earn', 'debt_payment')
		GROUP BY event_id`, ids)
	if err != nil {
		return err
	}
	held, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		id  string
		sum dec.Decimal
	}, error) {
		var v struct {
			id  string
			sum dec.Decimal
		}
		err := r.Scan(&v.id, &v.sum)
		return v, err
	})
	if err != nil {
		return err
	}
	for _, h := range held {
		rep.EngineCards++
		rep.EnginePoints = dec.Add(rep.EnginePoints, h.sum)
		if !h.sum.Equal(byID[h.id]) {
			rep.Changed++
		}
	}
	rep.Existing = rep.EngineCards - rep.Opened
	if rep.DryRun {
		// What the engine would hold: what it has, plus what it would open.
		have := map[string]bool{}
		for _, h := range held {
			have[h.id] = true
		}
		for _, l := range lots {
			if !have[l.Lot.LotID] {
				rep.EnginePoints = dec.Add(rep.EnginePoints, l.Lot.Points)
			}
		}
		rep.Existing, rep.EngineCards = len(held), len(lots)
	}
	rep.Equal = rep.Plan.Balanced() && rep.EnginePoints.Equal(rep.Plan.ImportedPoints) && rep.EngineCards == rep.Plan.ImportedCards
	return nil
}

// trueUpBalances brings each card holder's balance to their Odoo points.
func trueUpBalances(ctx context.Context, s *ledgerSession, p *loyalty.Program, cards []*loyalty.Card,
	opts loyalty.BalanceOptions, rep *balancesReport) error {
	targets := loyalty.TrueUpTargets(p, cards, opts)
	partners := loyalty.SortedPartners(targets)
	const chunk = 500
	for start := 0; start < len(partners); start += chunk {
		var adjs []ledger.TrueUp
		for _, id := range partners[start:min(start+chunk, len(partners))] {
			adjs = append(adjs, ledger.TrueUp{ID: loyalty.TrueUpID(opts.DB, id, opts.AsOf), CustomerID: strconv.FormatInt(id, 10),
				Source: fmt.Sprintf("%s:res.partner:%d", opts.DB, id), At: opts.AsOf, Target: targets[id]})
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			out, err := ledger.TrueUps(ctx, tx, adjs)
			if err != nil {
				return err
			}
			for i, o := range out {
				id := partners[start+i]
				rep.TrueUps = append(rep.TrueUps, trueUpLine{PartnerID: id, Odoo: targets[id], Before: o.Before, Delta: o.Delta,
					Debt: o.DebtCleared, Applied: o.Applied})
			}
			if rep.DryRun {
				return errDryRun // roll back: what would change, changing nothing
			}
			return nil
		})
		if err != nil && !errors.Is(err, errDryRun) {
			return err
		}
	}
	// The engine's balances now (or after, for a dry run).
	total := dec.Zero
	for _, l := range rep.TrueUps {
		if l.Applied {
			total = dec.Add(total, dec.Add(l.Before, l.Delta))
		} else {
			v, err := s.store.Customer(ctx, s.pool, strconv.FormatInt(l.PartnerID, 10), opts.AsOf, s.catalog)
			switch {
			case errors.Is(err, ledger.ErrUnknownCustomer):
			case err != nil:
				return err
			default:
				total = dec.Add(total, v.Balance)
			}
		}
	}
	rep.EngineCards, rep.EnginePoints = len(rep.TrueUps), total
	want := dec.Zero
	for _, v := range targets {
		want = dec.Add(want, v)
	}
	rep.Equal = total.Equal(want)
	return nil
}

var errDryRun = errors.New("dry run")

func printBalances(w io.Writer, p *loyalty.Program, rep *balancesReport, trueUp bool) {
	plan := rep.Plan
	verb := "imported"
	switch {
	case trueUp:
		verb = "counted (cards of customers)"
	case rep.DryRun:
		verb = "to import (dry run: nothing written)"
	}
	fmt.Fprintf(w, "Odoo loyalty program %d %q\n", p.ID, p.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tcards\tcustomers\tpoints\t")
	fmt.Fprintf(tw, "Odoo\t%d\t\t%s\t\n", plan.OdooCards, plan.OdooPoints)
	fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", verb, plan.ImportedCards, plan.ImportedPartners, plan.ImportedPoints)
	for _, reason := range []string{loyalty.SkipNoPoints, loyalty.SkipNoPartner, loyalty.SkipExpired, loyalty.SkipNegative} {
		if n := plan.SkippedCards[reason]; n > 0 {
			fmt.Fprintf(tw, "left out: %s\t%d\t\t%s\t\n", reason, n, plan.SkippedPoints[reason])
		}
	}
	if !plan.RoundingPoints.IsZero() {
		fmt.Fprintf(tw, "rounding to the catalog's points decimals\t\t\t%s\t\n", plan.RoundingPoints)
	}
	_ = tw.Flush()
	check := "equal"
	if !plan.Balanced() {
		check = "NOT EQUAL (a bug: please report it)"
	}
	fmt.Fprintf(w, "Odoo's total = imported + left out − rounding: %s\n", check)
	for _, o := range plan.Cards {
		if o.Rounded {
			fmt.Fprintf(w, "card %d: %s points in Odoo, %s imported (rounded to the catalog's points decimals)\n", o.CardID, o.Points, o.Imported)
		}
		if o.Skipped == loyalty.SkipNoPartner {
			fmt.Fprintf(w, "card %d: %s points, no customer: not imported\n", o.CardID, o.Points)
		}
	}
	if trueUp {
		up, down := 0, 0
		for _, l := range rep.TrueUps {
			switch l.Delta.Sign() {
			case 1:
				up++
			case -1:
				down++
			}
		}
		fmt.Fprintf(w, "true-up of %d customers: %d raised, %d lowered; engine balances %s, Odoo's %s: %s\n",
			len(rep.TrueUps), up, down, rep.EnginePoints, sumTargets(rep.TrueUps), equalWord(rep.Equal))
		return
	}
	if rep.DryRun {
		fmt.Fprintf(w, "engine after this import: %d opening lots of these cards (%d from an earlier import), %s points: %s\n",
			rep.EngineCards, rep.Existing, rep.EnginePoints, equalWord(rep.Equal))
	} else {
		fmt.Fprintf(w, "engine: %d opening lots of these cards (%d opened now, %d from an earlier import), %s points: %s\n",
			rep.EngineCards, rep.Opened, rep.Existing, rep.EnginePoints, equalWord(rep.Equal))
	}
	if rep.Changed > 0 {
		fmt.Fprintf(w, "%d cards changed in Odoo since their import: run --true-up at cut-over (docs/MIGRATION.md)\n", rep.Changed)
	}
}

func sumTargets(ls []trueUpLine) dec.Decimal {
	sum := dec.Zero
	for _, l := range ls {
		sum = dec.Add(sum, l.Odoo)
	}
	return sum
}

func equalWord(ok bool) string {
	if ok {
		return "equal to Odoo's"
	}
	return "NOT EQUAL to Odoo's"
}
