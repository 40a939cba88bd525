package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/ops"
)

const dlqUsage = `dlq list [--code C] [--json] | dlq show ID [--json] | dlq redrive [--rebuild] ID… | dlq redrive [--rebuild] --all [--code C] | dlq purge ID…`

const dlqExamples = `  promoengine dlq list                                   # every dead letter, oldest first
  promoengine dlq list --code unknown_original_order --json
  promoengine dlq show 42                                # original body and all headers
  promoengine dlq redrive 42                             # republish to its original subject
  promoengine dlq redrive --all --code unknown_original_order
  promoengine dlq redrive --rebuild --all --code invalid_event   # Odoo orders: read them back afresh
  promoengine dlq purge 42 43                            # delete for good

ID is the dead letter's sequence in PROMO_DLQ, as dlq list shows it.

redrive republishes the original body, byte for byte, to the original subject
(Promo-Original-Subject) with the original headers minus the Promo-* ones, and
deletes the dead letter only once the publish is acknowledged. It gets a fresh
Nats-Msg-Id, "<original msg id>:redrive:<ID>", because the original id may still
be inside the stream's duplicate window, where the copy would be dropped
silently; the workers' inbox (keyed by event_id) still makes sure an event is
processed once. Fix the cause first (apply the missing order, correct the
catalog): a dead letter redriven unchanged comes back with a new ID.

redrive --rebuild is for orders that came from Odoo (event ids
"<db>:pos.order:<id>:…", and recorded order ids of PROMO_ODOO_ORDERS): after the
cause was fixed on Odoo's side (the currency, a product), it reads the order back
from Odoo (PROMO_ODOO_* must be set) and publishes the event built afresh under
Nats-Msg-Id "<event id>:rebuild:<ID>", instead of the stale body.

Exit status: 0 on success, 1 when something failed (an unknown ID, a publish),
2 on a usage error.
`

func runDLQ(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usagef("dlq: want a subcommand: %s", dlqUsage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		newFlags(c, "dlq", dlqUsage, dlqExamples).Usage()
		return nil
	}
	sub := args[0]
	fs := newFlags(c, "dlq "+sub, dlqUsage, dlqExamples)
	var (
		code    *string
		asJSON  *bool
		all     *bool
		rebuild *bool
	)
	switch sub {
	case "list":
		code = fs.String("code", "", "only dead letters with this error code")
		asJSON = fs.Bool("json", false, "print as JSON")
	case "show":
		asJSON = fs.Bool("json", false, "print as JSON (body as a string, or body_base64 when not UTF-8)")
	case "redrive":
		all = fs.Bool("all", false, "redrive every dead letter (with --code: every one with that code)")
		code = fs.String("code", "", "with --all: only dead letters with this error code")
		rebuild = fs.Bool("rebuild", false, "read Odoo orders back from Odoo and publish them afresh instead of the stale body")
	case "purge":
	default:
		return usagef("dlq: unknown subcommand %q; want list, show, redrive or purge", sub)
	}
	rest, help, err := parseInterspersed(fs, args[1:])
	if help || err != nil {
		return err
	}
	ids, err := parseIDs(sub, rest)
	if err != nil {
		return err
	}
	switch {
	case sub == "list" && len(ids) > 0:
		return usagef("dlq list: takes no ID (use dlq show ID)")
	case sub == "show" && len(ids) != 1:
		return usagef("dlq show: want exactly one ID")
	case sub == "redrive" && *all && len(ids) > 0:
		return usagef("dlq redrive: give IDs or --all, not both")
	case sub == "redrive" && !*all && len(ids) == 0:
		return usagef("dlq redrive: want an ID (or --all)")
	case sub == "redrive" && !*all && *code != "":
		return usagef("dlq redrive: --code goes with --all")
	case sub == "purge" && len(ids) == 0:
		return usagef("dlq purge: want an ID")
	}

	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	op := ops.New(js, nil, subjects, c.log)
	var trail *cliAudit
	if sub == "redrive" || sub == "purge" {
		// The audit trail is opened first: without it, nothing is changed.
		pool, err := openMigratedPool(ctx, c)
		if err != nil {
			return err
		}
		defer pool.Close()
		trail = newCLIAudit(c, pool)
	}
	if sub == "redrive" && *rebuild {
		client, err := odoo.NewFromConfig(cfg, c.log)
		if err != nil {
			return fmt.Errorf("dlq redrive --rebuild: %w", err)
		}
		if client == nil {
			return errors.New("dlq redrive --rebuild reads orders back from Odoo: set PROMO_ODOO_URL, PROMO_ODOO_DB, PROMO_ODOO_LOGIN and PROMO_ODOO_API_KEY")
		}
		if *all {
			return dlqRedriveAll(ctx, c, trail, *code, func(f ops.DeadLetterFilter, bar ops.Progress, each func(*ops.Redriven, error)) (*ops.RedriveReport, error) {
				return op.RebuildDeadLetters(ctx, client, f, bar, each)
			})
		}
		return dlqEach(c, ids, func(id uint64) error {
			r, err := op.RebuildDeadLetter(ctx, client, id)
			if r != nil {
				printRedriven(c, r)
			}
			return errors.Join(err, trail.record(ctx, audit.ActionDLQRedrive, fmt.Sprintf("dead letter %d (rebuilt from Odoo)", id), redriveDetails(r), err))
		})
	}
	switch sub {
	case "list":
		return dlqList(ctx, c, op, *code, *asJSON)
	case "show":
		return dlqShow(ctx, c, op, ids[0], *asJSON)
	case "redrive":
		if *all {
			return dlqRedriveAll(ctx, c, trail, *code, func(f ops.DeadLetterFilter, bar ops.Progress, each func(*ops.Redriven, error)) (*ops.RedriveReport, error) {
				return op.RedriveDeadLetters(ctx, f, bar, each)
			})
		}
		return dlqEach(c, ids, func(id uint64) error {
			r, err := op.RedriveDeadLetter(ctx, id)
			if r != nil {
				printRedriven(c, r)
			}
			return errors.Join(err, trail.record(ctx, audit.ActionDLQRedrive, fmt.Sprintf("dead letter %d", id), redriveDetails(r), err))
		})
	default:
		return dlqEach(c, ids, func(id uint64) error {
			d, err := op.PurgeDeadLetter(ctx, id)
			details := map[string]any{}
			if err == nil {
				fmt.Fprintf(c.stdout, "purged %d (%s, %s)\n", d.ID, d.Code, d.OriginalSubject)
				details = map[string]any{"code": d.Code, "original_subject": d.OriginalSubject, "original_stream": d.OriginalStream,
					"original_seq": d.OriginalSeq, "message": truncate(oneLine(d.Message), 200)}
			}
			return errors.Join(err, trail.record(ctx, audit.ActionDLQPurge, fmt.Sprintf("dead letter %d", id), details, err))
		})
	}
}

// parseInterspersed parses flags wherever they are among the positional
// arguments (`dlq show 42 --json`), which package flag alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, help bool, err error) {
	for {
		if help, err = parseFlags(fs, args); help || err != nil {
			return nil, help, err
		}
		if fs.NArg() == 0 {
			return positional, false, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func parseIDs(sub string, args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, usagef("dlq %s: %q is not a dead-letter ID (the PROMO_DLQ sequence `dlq list` shows)", sub, a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// dlqEach runs fn for every id, going on after a failure, and fails if any
// did.
func dlqEach(c *cli, ids []uint64, fn func(uint64) error) error {
	var failed int
	var last error
	for _, id := range ids {
		if err := fn(id); err != nil {
			failed++
			last = err
			if len(ids) > 1 {
				fmt.Fprintln(c.stderr, "promoengine:", err)
			}
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(ids) == 1:
		return last
	}
	return fmt.Errorf("%d of %d dead letters failed", failed, len(ids))
}

func dlqList(ctx context.Context, c *cli, op *ops.Operator, code string, asJSON bool) error {
	letters, err := op.ListDeadLetters(ctx, ops.DeadLetterFilter{Code: code})
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	now := time.Now()
	if asJSON {
		type row struct {
			ops.DeadLetter
			AgeSeconds float64 `json:"age_seconds"`
		}
		rows := make([]row, len(letters))
		for i, d := range letters {
			rows[i] = row{DeadLetter: d, AgeSeconds: d.Age(now).Round(time.Second).Seconds()}
		}
		return writeJSON(c, rows)
	}
	if len(letters) == 0 {
		if code != "" {
			fmt.Fprintf(c.stdout, "no dead letters with code %s\n", code)
		} else {
			fmt.Fprintln(c.stdout, "no dead letters")
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tCODE\tSUBJECT\tMESSAGE")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.ID, shortDuration(d.Age(now)), d.Code, d.OriginalSubject, truncate(oneLine(d.Message), 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d dead letter(s); `promoengine dlq show ID` for one in full\n", len(letters))
	return nil
}

func dlqShow(ctx context.Context, c *cli, op *ops.Operator, id uint64, asJSON bool) error {
	d, err := op.DeadLetter(ctx, id)
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	if asJSON {
		out := struct {
			*ops.DeadLetter
			Body       *string `json:"body,omitempty"`
			BodyBase64 *string `json:"body_base64,omitempty"`
		}{DeadLetter: d}
		if utf8.Valid(d.Data) {
			s := string(d.Data)
			out.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(d.Data)
			out.BodyBase64 = &s
		}
		return writeJSON(c, out)
	}
	w := c.stdout
	fmt.Fprintf(w, "dead letter %d on %s\n", d.ID, d.Subject)
	fmt.Fprintf(w, "  code:      %s\n", d.Code)
	fmt.Fprintf(w, "  message:   %s\n", d.Message)
	fmt.Fprintf(w, "  original:  %s", d.OriginalSubject)
	if d.OriginalSeq > 0 {
		fmt.Fprintf(w, " (%s seq %d)", d.OriginalStream, d.OriginalSeq)
	}
	fmt.Fprintln(w)
	if !d.FailedAt.IsZero() {
		fmt.Fprintf(w, "  failed at: %s (%s ago)\n", d.FailedAt.Format(time.RFC3339), shortDuration(d.Age(time.Now())))
	}
	fmt.Fprintln(w, "headers:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range d.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "body (%d bytes):\n", len(d.Data))
	if utf8.Valid(d.Data) {
		fmt.Fprintln(w, strings.TrimRight(string(d.Data), "\n"))
	} else {
		fmt.Fprintln(w, "(not UTF-8; base64) "+base64.StdEncoding.EncodeToString(d.Data))
	}
	return nil
}

func dlqRedriveAll(ctx context.Context, c *cli, trail *cliAudit, code string,
	redrive func(ops.DeadLetterFilter, ops.Progress, func(*ops.Redriven, error)) (*ops.RedriveReport, error)) error {
	bar := progressBar(c, false)
	var unrecorded int
	rep, err := redrive(ops.DeadLetterFilter{Code: code}, bar, func(r *ops.Redriven, err error) {
		bar.clear()
		target := "dead letters (redrive --all)"
		if r != nil {
			target = fmt.Sprintf("dead letter %d", r.ID)
		}
		if rerr := trail.record(ctx, audit.ActionDLQRedrive, target, redriveDetails(r), err); rerr != nil {
			unrecorded++
			fmt.Fprintln(c.stderr, "promoengine:", rerr)
		}
		if err != nil {
			fmt.Fprintln(c.stderr, "promoengine:", err)
			return
		}
		printRedriven(c, r)
	})
	bar.Done()
	if err != nil {
		return fmt.Errorf("dlq redrive --all: %w", err)
	}
	fmt.Fprintf(c.stdout, "redriven %d, failed %d\n", len(rep.Redriven), len(rep.Failed))
	if len(rep.Failed) > 0 {
		return errors.New("dlq redrive --all: some dead letters were not redriven (see above); they are kept")
	}
	if unrecorded > 0 {
		return fmt.Errorf("dlq redrive --all: %d redrives are not in the audit trail (see above)", unrecorded)
	}
	return nil
}

// redriveDetails are the audit details of a redrive.
func redriveDetails(r *ops.Redriven) map[string]any {
	if r == nil {
		return map[string]any{}
	}
	return map[string]any{"code": r.Code, "subject": r.Subject, "stream": r.Stream, "seq": r.Seq, "msg_id": r.MsgID, "duplicate": r.Duplicate}
}

func printRedriven(c *cli, r *ops.Redriven) {
	dup := ""
	if r.Duplicate {
		dup = ", already there from an earlier redrive"
	}
	fmt.Fprintf(c.stdout, "redriven %d (%s) → %s (%s seq %d, Nats-Msg-Id %s%s)\n", r.ID, r.Code, r.Subject, r.Stream, r.Seq, r.MsgID, dup)
}

// shortDuration prints 45s, 12m, 3h12m, 4d6h.
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
