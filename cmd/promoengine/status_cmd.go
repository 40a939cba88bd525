package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promoengine/promoengine/internal/ops"
)

const statusUsage = `status [--json]`

const statusExamples = `  promoengine status          # streams, consumer lag, outbox backlog, dead letters
  promoengine status --json   # the same for scripts and monitoring

PENDING is what a consumer has not been delivered yet (its lag), ACK PENDING what
it was delivered and has not acknowledged, REDELIVERED what it got more than once
and has not acknowledged yet. The outbox backlog is results committed but not yet
published to PROMO_RESULTS; a growing backlog or oldest age means the outbox
relay is not running or cannot reach NATS.

Exit status: 0 when everything could be read, 1 when something could not (a
missing stream, an unreachable database); what could be read is printed anyway.
`

func runStatus(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "status", statusUsage, statusExamples)
	asJSON := fs.Bool("json", false, "print as JSON")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status: unexpected argument %q", fs.Arg(0))
	}
	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Without a database the NATS half of the status is still worth showing.
	var pool *pgxpool.Pool
	var dbErr error
	if cfg.DatabaseURL != "" {
		pool, dbErr = openReadPool(ctx, c)
		if pool != nil {
			defer pool.Close()
		}
	}
	rep, err := ops.New(js, pool, subjects, c.log).Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	switch {
	case dbErr != nil:
		rep.Problems = append(rep.Problems, "outbox: "+dbErr.Error())
	case pool == nil:
		rep.Problems = append(rep.Problems, "outbox: PROMO_DATABASE_URL is not set")
	}
	if *asJSON {
		if err := writeJSON(c, rep); err != nil {
			return err
		}
	} else if err := printStatus(c, rep); err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		if !*asJSON {
			for _, p := range rep.Problems {
				fmt.Fprintln(c.stderr, "problem:", p)
			}
		}
		return errors.New("status: some of the pipeline could not be read")
	}
	return nil
}

func printStatus(c *cli, rep *ops.StatusReport) error {
	now := time.Now()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST SEQ\tLAST SEQ\tLAST MESSAGE")
	for _, s := range rep.Streams {
		if s.Missing {
			fmt.Fprintf(tw, "%s\t(missing: start the engine once to create it)\n", s.Name)
			continue
		}
		last := "-"
		if s.LastTime != nil {
			last = shortDuration(now.Sub(*s.LastTime)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", s.Name, s.Messages, byteSize(s.Bytes), s.FirstSeq, s.LastSeq, last)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONSUMER\tPENDING\tACK PENDING\tREDELIVERED\tLAST DELIVERY")
	consumers := 0
	for _, s := range rep.Streams {
		for _, cs := range foldPartitions(s.Consumers) {
			consumers++
			last := "-"
			if cs.LastActive != nil {
				last = shortDuration(now.Sub(*cs.LastActive)) + " ago"
			}
			fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%s\n", s.Name, cs.Name, cs.Pending, cs.AckPending, cs.Redelivered, last)
		}
	}
	if consumers == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tHOST\tPID\tUP\tCONSUMERS")
	for _, n := range rep.Nodes {
		up := "-"
		if !n.Started.IsZero() {
			up = shortDuration(now.Sub(n.Started))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", n.ID, n.Host, n.PID, up, len(n.Owned))
	}
	if len(rep.Nodes) == 0 {
		fmt.Fprintln(tw, "(none alive)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	if rep.Outbox != nil {
		oldest := "-"
		if rep.Outbox.Backlog > 0 {
			oldest = shortDuration(time.Duration(rep.Outbox.OldestSeconds * float64(time.Second)))
		}
		fmt.Fprintf(c.stdout, "OUTBOX  backlog %d, oldest %s\n", rep.Outbox.Backlog, oldest)
	} else {
		fmt.Fprintln(c.stdout, "OUTBOX  unknown (no database)")
	}
	fmt.Fprintln(c.stdout)
	if len(rep.DeadLetters) == 0 {
		fmt.Fprintln(c.stdout, "DEAD LETTERS  none")
		return nil
	}
	total := 0
	for _, d := range rep.DeadLetters {
		total += d.Count
	}
	fmt.Fprintf(c.stdout, "DEAD LETTERS  %d (`promoengine dlq list`)\n", total)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, d := range rep.DeadLetters {
		code := d.Code
		if code == "" {
			code = "(no code)"
		}
		fmt.Fprintf(tw, "  %s\t%d\n", code, d.Count)
	}
	return tw.Flush()
}

// byteSize prints 512 B, 4.2 KiB, 9.1 MiB.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// foldPartitions shows the partition consumers of the order workers as one
// line, summed (`status --json` lists each).
func foldPartitions(cs []ops.ConsumerStatus) []ops.ConsumerStatus {
	var out []ops.ConsumerStatus
	var sum *ops.ConsumerStatus
	parts := 0
	for _, c := range cs {
		if !strings.HasPrefix(c.Name, "promo-orders-") {
			out = append(out, c)
			continue
		}
		parts++
		if sum == nil {
			sum = &ops.ConsumerStatus{}
		}
		sum.Pending += c.Pending
		sum.AckPending += c.AckPending
		sum.Redelivered += c.Redelivered
		if c.LastActive != nil && (sum.LastActive == nil || c.LastActive.After(*sum.LastActive)) {
			sum.LastActive = c.LastActive
		}
	}
	if sum != nil {
		sum.Name = fmt.Sprintf("promo-orders-* (%d partitions)", parts)
		out = append(out, *sum)
	}
	return out
}
