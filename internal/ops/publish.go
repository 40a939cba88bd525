package ops

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/pkg/events"
)

// PublishOptions tune Publish.
type PublishOptions struct {
	// Rate is the most events published per second; 0 publishes as fast as
	// the server acknowledges.
	Rate float64
	// Strict publishes nothing unless every line is valid.
	Strict bool
	// Window is how many publishes may await their acknowledgement at once
	// (default 256): enough to keep a remote server busy, small enough that
	// a failure is noticed within a window's worth of events.
	Window int
	// Size is the source's size in bytes when known, for progress.
	Size int64
	// Progress receives the bytes read; nil for none.
	Progress Progress
	// OnInvalid, when set, is called for each invalid line as it is found,
	// so that a long backfill reports problems as it goes.
	OnInvalid func(InvalidLine)
}

// DefaultPublishWindow is the default of PublishOptions.Window.
const DefaultPublishWindow = 256

// maxReported bounds the invalid lines and failures a report keeps (all are
// counted and passed to OnInvalid).
const maxReported = 1000

// InvalidLine is a line of the source that is not a valid input event.
type InvalidLine struct {
	Line       int      `json:"line"`
	Violations []string `json:"violations"`
}

// PublishFailure is a valid event the server did not acknowledge.
type PublishFailure struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id"`
	Error   string `json:"error"`
}

// PublishReport is the outcome of Publish.
type PublishReport struct {
	Lines      int `json:"lines"`      // non-blank lines read
	Published  int `json:"published"`  // stored as new messages
	Duplicates int `json:"duplicates"` // acknowledged as duplicates of a stored message
	Invalid    int `json:"invalid"`    // lines skipped as invalid
	Failed     int `json:"failed"`     // valid events not acknowledged
	// Refused is set when Strict found an invalid line and published nothing.
	Refused      bool             `json:"refused"`
	InvalidLines []InvalidLine    `json:"invalid_lines,omitempty"`
	Failures     []PublishFailure `json:"failures,omitempty"`
	Elapsed      time.Duration    `json:"elapsed_ns"`
}

// OK reports whether every line was valid and published (or a duplicate).
func (r *PublishReport) OK() bool { return r.Invalid == 0 && r.Failed == 0 && !r.Refused }

// Publish validates every line of src as an input event and publishes the
// valid ones to POS_ORDERS, each on the subject of its type with
// Nats-Msg-Id = event_id. Invalid lines are reported and skipped (with
// Strict, nothing is published if there is one). Blank lines are ignored.
// The error is for what stops the whole run (no stream, a read error,
// cancellation); invalid lines and failed publishes are in the report.
func (o *Operator) Publish(ctx context.Context, src io.Reader, opts PublishOptions) (*PublishReport, error) {
	start := o.now()
	if opts.Window <= 0 {
		opts.Window = DefaultPublishWindow
	}
	prog := progressOrNone(opts.Progress)
	defer prog.Done()
	if _, err := o.stream(ctx, o.subjects.StreamOrders()); err != nil {
		return nil, err
	}
	rep := &PublishReport{}
	total := opts.Size
	if total <= 0 {
		total = -1
	}

	if opts.Strict {
		replay, cleanup, err := rewindable(src)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		prog.Stage("validating", total)
		if err := eachLine(replay.first, prog, func(n int, line []byte, tooLong bool) error {
			rep.Lines++
			if _, bad := checkLine(line, tooLong); bad != nil {
				bad.Line = n
				rep.addInvalid(*bad, opts.OnInvalid)
			}
			return ctx.Err()
		}); err != nil {
			return nil, err
		}
		if rep.Invalid > 0 {
			rep.Refused = true
			rep.Elapsed = o.now().Sub(start)
			return rep, nil
		}
		second, err := replay.again()
		if err != nil {
			return nil, err
		}
		src = second
		rep.Lines = 0
	}

	p := o.newPipeline(ctx, opts, rep)
	prog.Stage("publishing", total)
	err := eachLine(src, prog, func(n int, line []byte, tooLong bool) error {
		rep.Lines++
		ev, bad := checkLine(line, tooLong)
		if bad != nil {
			bad.Line = n
			rep.addInvalid(*bad, opts.OnInvalid)
			return nil
		}
		return p.publish(n, ev, bytes.Clone(line))
	})
	if ferr := p.flush(); err == nil {
		err = ferr
	}
	rep.Elapsed = o.now().Sub(start)
	return rep, err
}

func (r *PublishReport) addInvalid(l InvalidLine, notify func(InvalidLine)) {
	r.Invalid++
	if len(r.InvalidLines) < maxReported {
		r.InvalidLines = append(r.InvalidLines, l)
	}
	if notify != nil {
		notify(l)
	}
}

func (r *PublishReport) addFailure(f PublishFailure) {
	r.Failed++
	if len(r.Failures) < maxReported {
		r.Failures = append(r.Failures, f)
	}
}

// checkLine decodes one line with the worker's decoder.
func checkLine(line []byte, tooLong bool) (*events.Event, *InvalidLine) {
	if tooLong {
		return nil, &InvalidLine{Violations: []string{fmt.Sprintf("/: line is over the limit of %d bytes (1 MiB)", events.MaxEventBytes)}}
	}
	ev, err := events.Decode(line)
	if err == nil {
		return ev, nil
	}
	var inv *events.InvalidError
	if errors.As(err, &inv) {
		vs := make([]string, len(inv.Violations))
		for i, v := range inv.Violations {
			vs[i] = v.String()
		}
		return nil, &InvalidLine{Violations: vs}
	}
	return nil, &InvalidLine{Violations: []string{err.Error()}}
}

// pipeline publishes asynchronously with at most a window of
// acknowledgements outstanding, oldest first.
//
// Two events of one key are never in flight together: an event whose key
// has a publish outstanding waits until it is stored (a failed publish is
// retried first), so a key's events are stored in file order even when a
// publish fails and later ones do not.
type pipeline struct {
	ctx      context.Context
	js       jetstream.JetStream
	subjects events.Subjects
	keys     *keying.Resolver
	limiter  *rate.Limiter
	window   int
	inflight []pending
	keyed    map[string]int // publishes in flight by key token
	rep      *PublishReport
}

type pending struct {
	line    int
	eventID string
	token   string
	fut     jetstream.PubAckFuture
}

// ackTimeout bounds the wait for one acknowledgement before the publish is
// retried synchronously (the Nats-Msg-Id makes a retry harmless).
const ackTimeout = 30 * time.Second

func (o *Operator) newPipeline(ctx context.Context, opts PublishOptions, rep *PublishReport) *pipeline {
	p := &pipeline{ctx: ctx, js: o.js, subjects: o.subjects, keys: o.keys, window: opts.Window, rep: rep, keyed: map[string]int{}}
	if opts.Rate > 0 {
		// A burst of 50 ms worth: waiting for every single event would
		// sleep in timer ticks coarser than 1/rate and fall short of it.
		p.limiter = rate.NewLimiter(rate.Limit(opts.Rate), max(1, int(opts.Rate/20)))
	}
	return p
}

func (p *pipeline) publish(line int, ev *events.Event, data []byte) error {
	if p.limiter != nil {
		if err := p.limiter.Wait(p.ctx); err != nil {
			return err
		}
	}
	key := p.keys.Key(p.ctx, ev)
	token := key.Token()
	for len(p.inflight) >= p.window || p.keyed[token] > 0 {
		if err := p.settleOldest(); err != nil {
			return err
		}
	}
	msg := orderMsg(p.subjects, ev, key, data, "")
	// No WithExpectStream: it travels as a Nats-Expected-Stream header,
	// which is stored with the message and copied into its dead letter,
	// where it makes the DLQ stream refuse the publish.
	fut, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		// The async queue refused it (stalled): publish synchronously.
		p.syncPublish(line, ev.EventID, msg, err)
		return p.ctx.Err()
	}
	p.inflight = append(p.inflight, pending{line: line, eventID: ev.EventID, token: token, fut: fut})
	p.keyed[token]++
	return nil
}

func (p *pipeline) settleOldest() error {
	pd := p.inflight[0]
	p.inflight = p.inflight[1:]
	if p.keyed[pd.token]--; p.keyed[pd.token] <= 0 {
		delete(p.keyed, pd.token)
	}
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	select {
	case ack := <-pd.fut.Ok():
		p.count(ack)
	case err := <-pd.fut.Err():
		p.syncPublish(pd.line, pd.eventID, pd.fut.Msg(), err)
	case <-timer.C:
		p.syncPublish(pd.line, pd.eventID, pd.fut.Msg(), errors.New("no acknowledgement within 30s"))
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	return nil
}

// syncPublish retries a publish whose asynchronous attempt failed.
func (p *pipeline) syncPublish(line int, eventID string, msg *nats.Msg, first error) {
	err := first
	for attempt := 0; attempt < 3 && p.ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			case <-p.ctx.Done():
			}
		}
		var ack *jetstream.PubAck
		ack, err = p.js.PublishMsg(p.ctx, msg)
		if err == nil {
			p.count(ack)
			return
		}
	}
	p.rep.addFailure(PublishFailure{Line: line, EventID: eventID, Error: err.Error()})
}

func (p *pipeline) count(ack *jetstream.PubAck) {
	if ack.Duplicate {
		p.rep.Duplicates++
	} else {
		p.rep.Published++
	}
}

func (p *pipeline) flush() error {
	for len(p.inflight) > 0 {
		if err := p.settleOldest(); err != nil {
			return err
		}
	}
	return nil
}

// eachLine calls fn for every non-blank line of r with its 1-based number.
// A line over the event size limit is passed truncated with tooLong set.
// The line is only valid during the call.
func eachLine(r io.Reader, prog Progress, fn func(n int, line []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, 256*1024)
	var (
		buf      []byte
		n        int
		consumed int64
	)
	for {
		buf = buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			consumed += int64(len(chunk))
			if len(buf)+len(chunk) <= events.MaxEventBytes+2 {
				buf = append(buf, chunk...)
			} else {
				tooLong = true
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n+1, err)
		}
		if len(buf) > 0 || tooLong {
			n++
			line := bytes.TrimSpace(buf)
			if len(line) > 0 || tooLong {
				if err := fn(n, line, tooLong); err != nil {
					return err
				}
			}
			prog.Advance(consumed)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// rewinder reads a source twice: a seekable file by seeking back, anything
// else (a pipe on stdin) by spooling the first read into a temporary file.
type rewinder struct {
	first io.Reader
	again func() (io.Reader, error)
}

func rewindable(src io.Reader) (rewinder, func(), error) {
	if s, ok := src.(io.ReadSeeker); ok {
		if start, err := s.Seek(0, io.SeekCurrent); err == nil {
			return rewinder{first: s, again: func() (io.Reader, error) {
				_, err := s.Seek(start, io.SeekStart)
				return s, err
			}}, func() {}, nil
		}
	}
	spool, err := os.CreateTemp("", "promoengine-publish-*.jsonl")
	if err != nil {
		return rewinder{}, nil, fmt.Errorf("spool standard input for --strict: %w", err)
	}
	cleanup := func() { _ = spool.Close(); _ = os.Remove(spool.Name()) }
	return rewinder{first: io.TeeReader(src, spool), again: func() (io.Reader, error) {
		_, err := spool.Seek(0, io.SeekStart)
		return spool, err
	}}, cleanup, nil
}
