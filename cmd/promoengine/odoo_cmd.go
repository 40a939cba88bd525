package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/ledger"
)

const odooUsage = `odoo sync --since T [--until T] [--dry-run] [--json] | odoo import-catalog [-o FILE] … | odoo import-balances [--true-up] …`

const odooExamples = `  promoengine odoo sync --since 2026-11-28T00:00:00+07:00   # every final order written since then
  promoengine odoo sync --since 6h --dry-run                 # list what the engine never received
  promoengine odoo sync --since 720h --until 696h --json

sync asks Odoo (PROMO_ODOO_*) for the pos.orders in a final state (paid, done,
invoiced) whose write_date is in [--since, --until), keeps those whose events the
engine has not processed (its inbox, PROMO_DATABASE_URL), and records them on
PROMO_ODOO_ORDERS; the engine's read-back worker then reads each from Odoo and
publishes its events. An order already recorded and in flight is not recorded
twice; one the engine processed is skipped. Running it twice is harmless.

T is an RFC 3339 time or a duration ago (90m, 6h, 72h). The engine's
reconciler does the same every PROMO_ODOO_RECONCILE_INTERVAL from its cursor;
sync is for history before it ran, or after it was switched off.

Exit status: 0 on success, 1 on failure (Odoo, NATS or PostgreSQL unreachable),
2 on a usage error.
`

func runOdoo(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "import-catalog":
			return runOdooImportCatalog(ctx, c, args[1:])
		case "import-balances":
			return runOdooImportBalances(ctx, c, args[1:])
		}
	}
	if len(args) == 0 || args[0] != "sync" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			newFlags(c, "odoo", odooUsage, odooExamples).Usage()
			return nil
		}
		return usagef("odoo: want a subcommand: %s", odooUsage)
	}
	fs := newFlags(c, "odoo sync", odooUsage, odooExamples)
	since := fs.String("since", "", "start of the range of write_date: RFC 3339 time or duration ago (inclusive)")
	until := fs.String("until", "", "end of the range (exclusive); default now")
	dryRun := fs.Bool("dry-run", false, "list the orders the engine has not processed; record nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	now := time.Now()
	var opts odoo.ReconcileOptions
	var err error
	if *since == "" {
		return usagef("odoo sync: --since is required")
	}
	if opts.Since, err = parseInstant(*since, now); err != nil {
		return usagef("odoo sync: --since: %v", err)
	}
	if *until != "" {
		if opts.Until, err = parseInstant(*until, now); err != nil {
			return usagef("odoo sync: --until: %v", err)
		}
		if !opts.Until.After(opts.Since) {
			return usagef("odoo sync: --until must be after --since")
		}
	}
	opts.Source, opts.DryRun = odoo.SourceSync, *dryRun

	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := odoo.NewFromConfig(cfg, c.log)
	if err != nil {
		return fmt.Errorf("odoo sync: %w", err)
	}
	if client == nil {
		return errors.New("odoo sync: set PROMO_ODOO_URL, PROMO_ODOO_DB, PROMO_ODOO_LOGIN and PROMO_ODOO_API_KEY")
	}
	if _, err := js.Stream(ctx, subjects.StreamOdooOrders()); errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("odoo sync: stream %s does not exist: start the engine once with PROMO_ODOO_URL set", subjects.StreamOdooOrders())
	} else if err != nil {
		return fmt.Errorf("odoo sync: %w", err)
	}
	pool, err := openPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := odoo.Reconcile(ctx, client, js, subjects, func(ctx context.Context, ids []string) (map[string]bool, error) {
		return ledger.ProcessedEventIDs(ctx, pool, ids)
	}, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, rep)
	}
	verb, n := "recorded for read-back", rep.Recorded
	if opts.DryRun {
		verb, n = "not processed (dry run: nothing recorded)", len(rep.Missing)
	}
	fmt.Fprintf(c.stdout, "%d final orders in Odoo written since %s: %d processed by the engine, %d %s, %d already recorded and in flight\n",
		rep.Examined, opts.Since.UTC().Format(time.RFC3339), rep.Seen, n, verb, rep.Duplicates)
	if len(rep.Missing) > 0 {
		fmt.Fprintf(c.stdout, "orders: %v\n", rep.Missing)
	}
	return nil
}
