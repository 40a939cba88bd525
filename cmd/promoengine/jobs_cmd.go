package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/pkg/events"
)

func runJobs(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			args = []string{"run", "--help"}
		} else {
			return usagef("jobs: want `jobs run --as-of T`")
		}
	}
	fs := newFlags(c, "jobs run", "jobs run [--as-of T]",
		`  promoengine jobs run --as-of 2026-12-01T00:00:00+07:00   # expire lots and downgrade levels as of that instant
  promoengine jobs run                                       # as of now

Running it twice with the same --as-of changes nothing and publishes nothing new.
`)
	asOfText := fs.String("as-of", "", "RFC 3339 time with offset (default: now)")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	asOf := time.Now()
	if *asOfText != "" {
		t, err := time.Parse(time.RFC3339Nano, *asOfText)
		if err != nil {
			return usagef("--as-of: %q is not an RFC 3339 time with offset such as 2026-12-01T00:00:00+07:00", *asOfText)
		}
		asOf = t
	}
	ls, err := openLedger(ctx, c, true)
	if err != nil {
		return err
	}
	defer ls.Close()
	report, err := ls.store.RunJobs(ctx, ls.pool, ls.catalog, asOf)
	details := map[string]any{"as_of": events.FormatTime(asOf), "catalog_version": ls.catalog.Version}
	if err == nil {
		details["report"] = report
	}
	if aerr := newCLIAudit(c, ls.pool).record(ctx, audit.ActionJobsRun, "as of "+events.FormatTime(asOf), details, err); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	b, _ := json.Marshal(report)
	fmt.Fprintf(c.stdout, "jobs as of %s: %s\n", events.FormatTime(asOf), b)
	fmt.Fprintln(c.stdout, "events are in the outbox; a running engine's outbox worker publishes them")
	return nil
}
