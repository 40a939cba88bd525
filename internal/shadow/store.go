package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/ledger"
)

// DB is a pool or a transaction, as the ledger takes them.
type DB = ledger.DB

// Save stores a comparison, replacing an earlier one of the same event (a
// result delivered again is compared again: the latest is kept).
func Save(ctx context.Context, db DB, c *Comparison) error {
	programs, err := json.Marshal(c.Programs)
	if err != nil {
		return err
	}
	diffs, err := json.Marshal(c.Diffs)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO shadow_comparisons (event_id, order_id, order_name, company_id, pos_config_id, customer_id,
			occurred_at, catalog_version, outcome, explained, note, programs, diffs)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (event_id) DO UPDATE SET order_id = EXCLUDED.order_id, order_name = EXCLUDED.order_name,
			company_id = EXCLUDED.company_id, pos_config_id = EXCLUDED.pos_config_id, customer_id = EXCLUDED.customer_id,
			occurred_at = EXCLUDED.occurred_at, compared_at = now(), catalog_version = EXCLUDED.catalog_version,
			outcome = EXCLUDED.outcome, explained = EXCLUDED.explained, note = EXCLUDED.note,
			programs = EXCLUDED.programs, diffs = EXCLUDED.diffs`,
		c.EventID, c.OrderID, c.OrderName, c.CompanyID, c.POSConfigID, c.CustomerID, c.OccurredAt, c.CatalogVersion,
		c.Outcome, c.Explained(), c.Note, programs, diffs)
	if err != nil {
		return fmt.Errorf("shadow: store the comparison of %s: %w", c.EventID, err)
	}
	return nil
}

// ReportOptions select the comparisons of a report.
type ReportOptions struct {
	Since, Until time.Time // [Since, Until) of the orders' occurred_at; zero: open
	// Program keeps the orders where this program (odoo-<id>, or an
	// engine program id) was involved.
	Program string
	// Limit bounds the differing orders listed (the counts cover all).
	// 0 means 200.
	Limit int
}

// Report is the shadow comparison over a window.
type Report struct {
	Since        *time.Time         `json:"since,omitempty"`
	Until        *time.Time         `json:"until,omitempty"`
	Orders       int                `json:"orders"`
	Matches      int                `json:"matches"`
	Mismatches   int                `json:"mismatches"`
	Explained    int                `json:"explained"` // mismatches whose every difference is a known one
	NotCompared  int                `json:"not_compared"`
	Programs     []ProgramStats     `json:"programs"`
	Explanations []ExplanationStats `json:"explanations"`
	Differing    []*Comparison      `json:"differing"`
	Truncated    bool               `json:"truncated,omitempty"`
}

// ProgramStats is one program's agreement.
type ProgramStats struct {
	Program    string `json:"program"`
	OdooID     int64  `json:"odoo_id,omitempty"`
	Name       string `json:"name,omitempty"`
	Orders     int    `json:"orders"`
	Matches    int    `json:"matches"`
	Mismatches int    `json:"mismatches"`
}

// ExplanationStats counts one known difference.
type ExplanationStats struct {
	Code   string `json:"code"`
	Text   string `json:"text"`
	Orders int    `json:"orders"`
	Diffs  int    `json:"diffs"`
}

// Compared is the number of orders compared (match or mismatch).
func (r *Report) Compared() int { return r.Matches + r.Mismatches }

// Query builds the report of the comparisons stored.
func Query(ctx context.Context, db DB, opts ReportOptions) (*Report, error) {
	if opts.Limit <= 0 {
		opts.Limit = 200
	}
	rep := &Report{Programs: []ProgramStats{}, Explanations: []ExplanationStats{}, Differing: []*Comparison{}}
	var since, until *time.Time
	if !opts.Since.IsZero() {
		since, rep.Since = &opts.Since, &opts.Since
	}
	if !opts.Until.IsZero() {
		until, rep.Until = &opts.Until, &opts.Until
	}
	where := `($1::timestamptz IS NULL OR c.occurred_at >= $1) AND ($2::timestamptz IS NULL OR c.occurred_at < $2)
		AND ($3 = '' OR EXISTS (SELECT 1 FROM jsonb_array_elements(c.programs) q WHERE q->>'program' = $3))`
	args := []any{since, until, opts.Program}
	rows, err := db.Query(ctx, `SELECT outcome, explained, count(*) FROM shadow_comparisons c WHERE `+where+` GROUP BY 1, 2`, args...)
	if err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}
	var outcome string
	var explained bool
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&outcome, &explained, &n}, func() error {
		rep.Orders += n
		switch outcome {
		case OutcomeMatch:
			rep.Matches += n
		case OutcomeMismatch:
			rep.Mismatches += n
			if explained {
				rep.Explained += n
			}
		default:
			rep.NotCompared += n
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}

	rows, err = db.Query(ctx, `
		SELECT p->>'program', COALESCE((p->>'odoo_id')::bigint, 0), COALESCE(max(p->>'name'), ''),
		       count(*), count(*) FILTER (WHERE p->>'outcome' = 'match')
		FROM shadow_comparisons c, jsonb_array_elements(c.programs) p
		WHERE `+where+` GROUP BY 1, 2 ORDER BY 2, 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}
	var ps ProgramStats
	if _, err := pgx.ForEachRow(rows, []any{&ps.Program, &ps.OdooID, &ps.Name, &ps.Orders, &ps.Matches}, func() error {
		ps.Mismatches = ps.Orders - ps.Matches
		rep.Programs = append(rep.Programs, ps)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}

	rows, err = db.Query(ctx, `
		SELECT d->>'explanation', count(DISTINCT c.event_id), count(*)
		FROM shadow_comparisons c, jsonb_array_elements(c.diffs) d
		WHERE `+where+` GROUP BY 1 ORDER BY 2 DESC, 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}
	var es ExplanationStats
	if _, err := pgx.ForEachRow(rows, []any{&es.Code, &es.Orders, &es.Diffs}, func() error {
		es.Text = Explain[es.Code]
		rep.Explanations = append(rep.Explanations, es)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}

	rows, err = db.Query(ctx, `
		SELECT event_id, order_id, order_name, company_id, pos_config_id, customer_id, occurred_at, catalog_version,
		       outcome, note, programs, diffs
		FROM shadow_comparisons c WHERE c.outcome = 'mismatch' AND `+where+`
		ORDER BY c.occurred_at, c.event_id LIMIT $4`, append(args, opts.Limit+1)...)
	if err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}
	var c Comparison
	var programs, diffs []byte
	if _, err := pgx.ForEachRow(rows, []any{&c.EventID, &c.OrderID, &c.OrderName, &c.CompanyID, &c.POSConfigID, &c.CustomerID,
		&c.OccurredAt, &c.CatalogVersion, &c.Outcome, &c.Note, &programs, &diffs}, func() error {
		cc := c
		cc.Programs, cc.Diffs = nil, nil
		if err := json.Unmarshal(programs, &cc.Programs); err != nil {
			return err
		}
		if err := json.Unmarshal(diffs, &cc.Diffs); err != nil {
			return err
		}
		rep.Differing = append(rep.Differing, &cc)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("shadow: report: %w", err)
	}
	if len(rep.Differing) > opts.Limit {
		rep.Differing, rep.Truncated = rep.Differing[:opts.Limit], true
	}
	return rep, nil
}
