package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/promoengine/promoengine/internal/ops"
)

const publishUsage = `publish -f FILE.jsonl|- [--rate N] [--strict]`

const publishExamples = `  promoengine publish -f orders.jsonl                # backfill a file
  zcat day.jsonl.gz | promoengine publish -f -       # from standard input
  promoengine publish -f orders.jsonl --rate 500     # at most 500 events per second
  promoengine publish -f orders.jsonl --strict       # publish nothing if any line is invalid

Every line is validated as the order worker validates it (SPEC §3); an invalid
line is reported with its line number and what is wrong, and skipped. Each event
goes to pos.orders.<paid|returned|cancelled> with Nats-Msg-Id = event_id, so
rerunning a backfill changes nothing: within the stream's duplicate window
(PROMO_DUPLICATE_WINDOW, default 10m) JetStream drops the copies, counted as
duplicates; after it the copies are stored, but the workers' inbox knows their
event ids and skips them.

Exit status: 0 when every line was published (or was a duplicate); 1 when a line
was invalid or a publish failed; 2 on a usage error.
`

func runPublish(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "publish", publishUsage, publishExamples)
	file := fs.String("f", "", "JSON Lines file of input events, one per line (- for standard input)")
	rateLimit := fs.Float64("rate", 0, "publish at most `N` events per second (0: as fast as the server acknowledges)")
	strict := fs.Bool("strict", false, "publish nothing unless every line is valid")
	window := fs.Int("window", ops.DefaultPublishWindow, "publishes awaiting acknowledgement at once")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	switch {
	case *file == "":
		return usagef("publish: -f FILE is required (- for standard input)")
	case fs.NArg() > 0:
		return usagef("publish: unexpected argument %q", fs.Arg(0))
	case *rateLimit < 0:
		return usagef("publish: --rate must not be negative, got %v", *rateLimit)
	case *window < 1:
		return usagef("publish: --window must be at least 1, got %d", *window)
	}

	var src io.Reader = c.stdin
	name := "standard input"
	var size int64
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		src, name = f, *file
	}

	nc, js, _, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	bar := progressBar(c, true)
	op := ops.New(js, nil, subjects, c.log)
	rep, err := op.Publish(ctx, src, ops.PublishOptions{
		Rate: *rateLimit, Strict: *strict, Window: *window, Size: size, Progress: bar,
		OnInvalid: func(l ops.InvalidLine) {
			bar.clear()
			fmt.Fprintf(c.stderr, "%s:%d: invalid event: %s\n", name, l.Line, strings.Join(l.Violations, "; "))
		},
	})
	if err != nil {
		if rep != nil {
			printPublishSummary(c, name, rep)
		}
		return fmt.Errorf("publish: %w", err)
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(c.stderr, "%s:%d: publish of %s failed: %s\n", name, f.Line, f.EventID, f.Error)
	}
	if rep.Refused {
		return fmt.Errorf("publish --strict: %s has %d invalid line(s) of %d; nothing was published", name, rep.Invalid, rep.Lines)
	}
	printPublishSummary(c, name, rep)
	if !rep.OK() {
		return fmt.Errorf("publish: %d invalid line(s) skipped, %d publish(es) failed", rep.Invalid, rep.Failed)
	}
	return nil
}

func printPublishSummary(c *cli, name string, rep *ops.PublishReport) {
	rate := ""
	if s := rep.Elapsed.Seconds(); s > 0 && rep.Published+rep.Duplicates > 0 {
		rate = fmt.Sprintf(", %.0f events/s", float64(rep.Published+rep.Duplicates)/s)
	}
	fmt.Fprintf(c.stdout, "published %d, duplicates %d, invalid %d, failed %d (%d lines of %s in %s%s)\n",
		rep.Published, rep.Duplicates, rep.Invalid, rep.Failed, rep.Lines, name, rep.Elapsed.Round(time.Millisecond), rate)
}

// barProgress draws an ops.Progress as a progress bar on a terminal. The
// zero of *barProgress (nil) draws nothing, so commands use it without
// checking whether stderr is a terminal.
type barProgress struct {
	w     io.Writer
	bytes bool
	bar   *progressbar.ProgressBar
}

// progressBar returns a bar on stderr when stderr is a terminal, else nil.
// bytes shows the units as bytes (publish reads a file).
func progressBar(c *cli, bytes bool) *barProgress {
	f, ok := c.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &barProgress{w: f, bytes: bytes}
}

func (p *barProgress) Stage(description string, total int64) {
	if p == nil {
		return
	}
	p.Done()
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(30),
	}
	if p.bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts())
	}
	p.bar = progressbar.NewOptions64(total, opts...)
}

func (p *barProgress) Advance(done int64) {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Set64(done)
}

func (p *barProgress) Done() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Finish()
	_ = p.bar.Clear()
	p.bar = nil
}

// clear takes the bar off the line so that a message can be printed.
func (p *barProgress) clear() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Clear()
}
