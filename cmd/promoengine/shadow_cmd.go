package main

import (
	"context"
	"time"

	"github.com/promoengine/promoengine/internal/shadow"
)

const shadowUsage = `shadow report [--since T] [--until T] [--program ID] [--limit N] [--json]`

const shadowExamples = `  promoengine shadow report --since 168h          # the last week: agreement, by program, each differing order
  promoengine shadow report --program odoo-12      # one Odoo program (loyalty.program 12)
  promoengine shadow report --since 2027-01-01T00:00:00+07:00 --json

In shadow mode (PROMO_MODE=shadow, or per company and POS config with
PROMO_MODE_COMPANIES / PROMO_MODE_POS_CONFIGS) the engine pushes nothing to Odoo
and compares each order's result with what Odoo's own loyalty gave it: reward
lines and their amounts, codes used, coupons issued, points won and spent. The
report gives the agreement rate, the agreement by program, the known systematic
differences that explain the mismatches (each named, with how many orders), and
every differing order grouped by program with the field and both values
(docs/MIGRATION.md, "Reading the report").

T is an RFC 3339 time or a duration ago; the window is on the orders' times.
Exit status: 0, 2 on a usage error, 1 on failure.
`

func runShadow(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			newFlags(c, "shadow", shadowUsage, shadowExamples).Usage()
			return nil
		}
		return usagef("shadow: want a subcommand: %s", shadowUsage)
	}
	fs := newFlags(c, "shadow report", shadowUsage, shadowExamples)
	since := fs.String("since", "", "orders at or after T (RFC 3339, or a duration ago)")
	until := fs.String("until", "", "orders before T")
	program := fs.String("program", "", "only the orders where this program was involved (odoo-<loyalty.program id>)")
	limit := fs.Int("limit", 200, "differing orders listed at most (the counts cover all)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	now := time.Now()
	opts := shadow.ReportOptions{Program: *program, Limit: *limit}
	var err error
	if opts.Since, err = parseInstant(*since, now); err != nil {
		return usagef("shadow report: --since: %v", err)
	}
	if opts.Until, err = parseInstant(*until, now); err != nil {
		return usagef("shadow report: --until: %v", err)
	}
	pool, err := openMigratedPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := shadow.Query(ctx, pool, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, rep)
	}
	return rep.Write(c.stdout)
}
