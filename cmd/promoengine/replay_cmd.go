package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/ops"
)

const replayUsage = `replay --from-seq N [--to-seq M] | --since T [--until T] [--dry-run] [--json]`

const replayExamples = `  promoengine replay --from-seq 1200 --to-seq 1300          # reprocess 101 messages
  promoengine replay --since 2026-11-28T00:00:00+07:00      # everything stored since then
  promoengine replay --since 6h                             # the last six hours
  promoengine replay --from-seq 1 --dry-run                 # what would change under the current catalog?

A replay feeds the range of POS_ORDERS to the order worker again (on an
ephemeral consumer, deleted at the end). Events already processed are skipped
by the inbox; events never processed (not yet, or dead-lettered) are processed
now with the current catalog. Safe while the engine runs. Results are written
to the outbox, which the engine's outbox relay publishes.

--dry-run writes nothing. It rebuilds the ledger in temporary tables private to
its database session by re-applying every processed event from the first one,
in the order they were processed: events before the range with the catalog version each was
processed with, events in the range with the current catalog. It prints, for
each event of the range whose result would differ, the order id and every
differing field with the stored and the new value (catalog_version ignored),
then a summary line. It needs every processed event to still be in POS_ORDERS
(kept 90 days by default).

T is RFC 3339 (2026-11-28T10:00:00+07:00) or a duration meaning "that long ago"
(90m, 6h, 72h). --since is inclusive, --until exclusive, both in the time
JetStream stored the messages. An open end stops at the last message stored
when the command starts.

Exit status: replay: 0 done, 1 failed, 2 usage error. --dry-run: 0 nothing
differs, 1 something differs, 2 error.
`

func runReplay(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "replay", replayUsage, replayExamples)
	fromSeq := fs.Uint64("from-seq", 0, "first POS_ORDERS sequence of the range")
	toSeq := fs.Uint64("to-seq", 0, "last sequence of the range (default: the last message at start)")
	since := fs.String("since", "", "start of the range: RFC 3339 time or duration ago (inclusive)")
	until := fs.String("until", "", "end of the range: RFC 3339 time or duration ago (exclusive; default: the last message at start)")
	dryRun := fs.Bool("dry-run", false, "write nothing; report the events whose result would differ under the current catalog")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("replay: unexpected argument %q", fs.Arg(0))
	}
	now := time.Now()
	r := ops.Range{FromSeq: *fromSeq, ToSeq: *toSeq}
	var err error
	if r.Since, err = parseInstant(*since, now); err != nil {
		return usagef("replay: --since: %v", err)
	}
	if r.Until, err = parseInstant(*until, now); err != nil {
		return usagef("replay: --until: %v", err)
	}
	if err := r.Validate(); err != nil {
		return usagef("replay: %s", strings.TrimPrefix(err.Error(), ops.ErrBadRange.Error()+": "))
	}
	if *dryRun {
		return dryRunReplay(ctx, c, r, *asJSON)
	}

	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := openMigratedPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	bar := progressBar(c, false)
	op := ops.New(js, pool, subjects, quietLog(c.log)).WithCouponSecret([]byte(cfg.CouponSecret))
	rep, err := op.Replay(ctx, ops.ReplayOptions{Range: r, Lanes: cfg.Lanes, InFlight: cfg.Transactions, BatchSize: cfg.BatchSize, MaxDeliver: cfg.MaxDeliver, Progress: bar})
	bar.Done()
	details := map[string]any{"range": r.String()}
	target := subjects.StreamOrders() + " " + r.String()
	if rep != nil {
		details["report"] = rep
		if rep.FirstSeq > 0 {
			target = fmt.Sprintf("%s seq %d–%d", rep.Stream, rep.FirstSeq, rep.LastSeq)
		}
	}
	if aerr := newCLIAudit(c, pool).record(ctx, audit.ActionReplay, target, details, err); aerr != nil {
		defer fmt.Fprintln(c.stderr, "promoengine:", aerr)
		if err == nil {
			err = aerr
		}
	}
	if rep != nil {
		if *asJSON {
			if jerr := writeJSON(c, rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printReplay(c, rep)
		}
	}
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

func printReplay(c *cli, rep *ops.ReplayReport) {
	where := rep.Range
	if rep.FirstSeq > 0 {
		where = fmt.Sprintf("seq %d–%d", rep.FirstSeq, rep.LastSeq)
	}
	fmt.Fprintf(c.stdout, "replayed %d events of %s (%s): reprocessed %d", rep.Events, rep.Stream, where, rep.Reprocessed)
	if rep.Rejected > 0 {
		fmt.Fprintf(c.stdout, " (%d rejected)", rep.Rejected)
	}
	fmt.Fprintf(c.stdout, ", skipped as already processed %d, dead-lettered %d in %s\n",
		rep.Skipped, rep.DeadLettered, rep.Elapsed.Round(time.Millisecond))
	if rep.OutboxBacklog > 0 {
		fmt.Fprintf(c.stdout, "%d results wait in the outbox; the engine's outbox relay publishes them\n", rep.OutboxBacklog)
	}
	if rep.DeadLettered > 0 {
		fmt.Fprintln(c.stdout, "see `promoengine dlq list` for the dead letters")
	}
}

// dryRunReplay runs `replay --dry-run`: exit 0 when nothing differs, 1 when
// something does, 2 on any error.
func dryRunReplay(ctx context.Context, c *cli, r ops.Range, asJSON bool) error {
	fail := func(err error) error { return &exitError{code: 2, err: fmt.Errorf("replay --dry-run: %w", err)} }
	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	// Not openMigratedPool: a dry run writes nothing, not even migrations.
	pool, err := openPool(ctx, c)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	bar := progressBar(c, false)
	op := ops.New(js, pool, subjects, quietLog(c.log)).WithCouponSecret([]byte(cfg.CouponSecret))
	rep, err := op.DryRun(ctx, ops.DryRunOptions{Range: r, BatchSize: cfg.BatchSize, Progress: bar})
	bar.Done()
	if err != nil {
		return fail(err)
	}
	if asJSON {
		if err := writeJSON(c, rep); err != nil {
			return fail(err)
		}
	} else {
		printDryRun(c, rep)
	}
	if rep.Differs() {
		return &exitError{code: 1}
	}
	return nil
}

func printDryRun(c *cli, rep *ops.DryRunReport) {
	for _, w := range rep.Warnings {
		fmt.Fprintln(c.stderr, "warning:", w)
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(c.stdout, "order %s (%s, event %s, seq %d, stored with catalog v%d)\n",
			d.OrderID, d.Type, d.EventID, d.Seq, d.StoredCatalogVersion)
		if d.Failure != "" {
			fmt.Fprintf(c.stdout, "  %s\n", d.Failure)
		}
		for _, f := range d.Fields {
			fmt.Fprintf(c.stdout, "  %s: %s → %s\n", f.Path, orAbsent(f.Stored), orAbsent(f.Replayed))
		}
	}
	verdict := "no result differs"
	if n := len(rep.Differences); n > 0 {
		verdict = fmt.Sprintf("%d of %d results differ", n, rep.Compared)
	}
	rebuilt := "nothing processed up to the range's end"
	if rep.RebuiltFrom > 0 {
		rebuilt = fmt.Sprintf("ledger rebuilt from seq %d: %d events and %d job runs re-applied", rep.RebuiltFrom, rep.Reapplied, rep.JobRuns)
	}
	notProcessed := ""
	if rep.NotProcessed > 0 {
		notProcessed = fmt.Sprintf("; %d events of the range never processed, not compared", rep.NotProcessed)
	}
	fmt.Fprintf(c.stdout, "dry run of %s %s under catalog v%d: %s (%d compared%s); %s, in %s; nothing written\n",
		rep.Stream, rep.Range, rep.CatalogVersion, verdict, rep.Compared, notProcessed, rebuilt, rep.Elapsed.Round(time.Millisecond))
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

// parseInstant reads an RFC 3339 time, or a duration meaning that long
// before now ("" is the zero time).
func parseInstant(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time with offset (2026-11-28T10:00:00+07:00) nor a duration ago (6h)", s)
}

// quietLog keeps the embedded worker's routine messages (catalog loaded,
// and the like) off an operator's terminal unless debug logging was asked
// for; warnings and errors still show.
func quietLog(log zerolog.Logger) zerolog.Logger {
	if log.GetLevel() <= zerolog.DebugLevel {
		return log
	}
	return log.Level(max(log.GetLevel(), zerolog.WarnLevel))
}

func writeJSON(c *cli, v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
