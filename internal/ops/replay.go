package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/workers"
)

// ReplayOptions tune Replay.
type ReplayOptions struct {
	Range Range
	// Lanes, InFlight, BatchSize and MaxDeliver configure the order worker
	// as in `run` (PROMO_LANES, PROMO_TRANSACTIONS, PROMO_BATCH_SIZE,
	// PROMO_MAX_DELIVER); zero values take the worker's defaults, and 256
	// and 10 for the last two.
	Lanes, InFlight, BatchSize, MaxDeliver int
	Progress                               Progress
}

// ReplayReport is the outcome of Replay.
type ReplayReport struct {
	Stream string `json:"stream"`
	Range  string `json:"range"`
	// FirstSeq and LastSeq are the first and last sequences of the range
	// that were delivered (0 when none was).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Events   int    `json:"events"`
	// Reprocessed were processed now (Rejected of them with a rejected
	// result); Skipped were already in the inbox; DeadLettered went to
	// PROMO_DLQ (invalid, or a return whose order is still unknown).
	Reprocessed  int `json:"reprocessed"`
	Rejected     int `json:"rejected"`
	Skipped      int `json:"skipped"`
	DeadLettered int `json:"dead_lettered"`
	// OutboxBacklog is the number of results waiting to be published when
	// the replay ended; the engine's outbox relay publishes them.
	OutboxBacklog int64         `json:"outbox_backlog"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// replayAckWait is the ephemeral consumer's redelivery delay for a message
// the worker neither acknowledged nor naked (a crash of this process).
const replayAckWait = 30 * time.Second

// replayInactive is how long the ephemeral consumer outlives a replay that
// died without deleting it.
const replayInactive = 5 * time.Minute

// Replay reprocesses a range of POS_ORDERS with the order worker on an
// ephemeral consumer. Already processed events are skipped by the inbox;
// events never processed (not yet, or dead-lettered before) are processed
// now, with the current catalog, and may be dead-lettered again. It is safe
// while the engine runs: the inbox and the customer locks make the two
// workers' overlap harmless.
func (o *Operator) Replay(ctx context.Context, opts ReplayOptions) (*ReplayReport, error) {
	start := o.now()
	if err := opts.Range.Validate(); err != nil {
		return nil, err
	}
	if err := o.needPool(); err != nil {
		return nil, err
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = 10
	}
	prog := progressOrNone(opts.Progress)
	defer prog.Done()
	cat, err := ledger.LatestCatalog(ctx, o.pool)
	if err != nil {
		if errors.Is(err, ledger.ErrNoCatalog) {
			return nil, errors.New("no catalog applied yet: `promoengine catalog apply -f FILE` first")
		}
		return nil, err
	}
	if err := ledger.CheckCouponSecret(cat, o.couponSecret); err != nil {
		return nil, fmt.Errorf("replay needs PROMO_COUPON_SECRET, the engine's: %w", err)
	}
	name := o.subjects.StreamOrders()
	stream, err := o.stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	w, err := resolve(opts.Range, info.State, name)
	if err != nil {
		return nil, err
	}
	rep := &ReplayReport{Stream: name, Range: opts.Range.String()}
	if w.empty {
		rep.Elapsed = o.now().Sub(start)
		return rep, nil
	}
	if opts.Range.bySeq() && opts.Range.FromSeq < info.State.FirstSeq {
		o.log.Warn().Uint64("first_seq", info.State.FirstSeq).
			Msgf("%s no longer holds seq %d–%d (removed by its max age); replaying from seq %d",
				name, opts.Range.FromSeq, info.State.FirstSeq-1, info.State.FirstSeq)
	}

	policy, startSeq, startTime := w.deliverPolicy()
	ocfg := workers.OrdersConfig{Lanes: opts.Lanes, InFlight: opts.InFlight, BatchSize: opts.BatchSize, MaxDeliver: opts.MaxDeliver}
	cons, err := o.js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{
		Name:              "promo-replay-" + randomSuffix(),
		Description:       "promoengine replay " + opts.Range.String(),
		FilterSubject:     o.subjects.OrdersPartitioned(), // what the order workers process; the keyer's originals are copies
		DeliverPolicy:     policy,
		OptStartSeq:       startSeq,
		OptStartTime:      startTime,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           replayAckWait,
		MaxDeliver:        -1, // the worker dead-letters after opts.MaxDeliver deliveries
		MaxAckPending:     ocfg.MaxAckPending(),
		InactiveThreshold: replayInactive,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("create the replay consumer on %s: %w", name, err)
	}
	consName := cons.CachedInfo().Name
	defer func() {
		if err := o.js.DeleteConsumer(context.WithoutCancel(ctx), name, consName); err != nil {
			o.log.Warn().Err(err).Str("consumer", consName).Msg("delete the replay consumer; it goes away by itself after 5 minutes")
		}
	}()
	total := int64(cons.CachedInfo().NumPending)
	if opts.Range.bySeq() {
		total = int64(w.last - w.startSeq() + 1)
	}

	tr := newRangeTracker(w)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log := o.log.With().Str("replay", consName).Logger()
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	catalogs := workers.NewCatalogWatcher(o.pool, m, log)
	catalogs.Start(wctx)
	store := o.store()
	settler := consume.NewSettler(consume.NewDeadLetterer(o.js, o.subjects), opts.MaxDeliver)
	orders := workers.NewOrders(ocfg, o.pool, store, catalogs, settler, o.subjects, m, log)
	orders.Start(wctx)
	src := consume.NewSource(consName)
	rc := &rangeConsumer{Consumer: cons, tr: tr}
	puller := &consume.Puller{
		Name:   consName,
		Open:   func(context.Context) (jetstream.Consumer, error) { return rc, nil },
		Opts:   []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(min(ocfg.MaxAckPending(), 256))},
		Handle: func(msg jetstream.Msg) { orders.Handle(src, msg) },
		Log:    log,
	}
	pullCtx, stopPulling := context.WithCancel(wctx)
	pulled := make(chan struct{})
	go func() { defer close(pulled); puller.Run(pullCtx) }()

	prog.Stage("replaying", total)
	err = o.waitRange(ctx, cons, tr, prog)
	stopPulling()
	<-pulled
	orders.Stop()
	stopWorkers()

	outcomes, gerr := eventOutcomes(reg)
	if gerr != nil && err == nil {
		err = gerr
	}
	rep.FirstSeq, rep.LastSeq = tr.bounds()
	rep.Reprocessed = outcomes["applied"] + outcomes["rejected"]
	rep.Rejected = outcomes["rejected"]
	rep.Skipped = outcomes["duplicate"]
	rep.DeadLettered = outcomes["dead_lettered"]
	rep.Events = rep.Reprocessed + rep.Skipped + rep.DeadLettered
	if n, _, berr := ledger.OutboxBacklog(context.WithoutCancel(ctx), o.pool); berr == nil {
		rep.OutboxBacklog = n
	}
	rep.Elapsed = o.now().Sub(start)
	if err != nil {
		return rep, err
	}
	prog.Advance(total)
	return rep, nil
}

// waitRange returns once every message of the range was delivered and
// settled for good, polling the tracker (and, for a range that reaches the
// end of the stream, the consumer's counts).
func (o *Operator) waitRange(ctx context.Context, cons jetstream.Consumer, tr *rangeTracker, prog Progress) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastInfo time.Time
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("replay interrupted: %w", ctx.Err())
		case <-tick.C:
		}
		settled, open, past := tr.state()
		prog.Advance(int64(settled))
		if open > 0 {
			continue
		}
		if past {
			return nil
		}
		// No message after the range was seen: it reaches the end of the
		// stream, which is done when the consumer has nothing left.
		if time.Since(lastInfo) < 250*time.Millisecond {
			continue
		}
		lastInfo = time.Now()
		info, err := cons.Info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("replay consumer: %w", err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			if _, open, _ := tr.state(); open == 0 {
				return nil
			}
		}
	}
}

// eventOutcomes sums promo_events_total by outcome.
func eventOutcomes(reg *prometheus.Registry) (map[string]int, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("replay counts: %w", err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "promo_events_total" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] += int(metric.GetCounter().GetValue())
				}
			}
		}
	}
	return out, nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rangeTracker follows the messages of a range from delivery to their final
// settlement (an ack, or a term after dead-lettering), so that a replay
// knows when it is done. A nak is not final: the message comes back.
type rangeTracker struct {
	w           window
	mu          sync.Mutex
	open        map[uint64]bool // delivered, not settled for good
	settled     int
	first, last uint64
	past        bool // a message after the range was delivered
}

func newRangeTracker(w window) *rangeTracker {
	return &rangeTracker{w: w, open: map[uint64]bool{}}
}

// admit decides whether the worker gets msg, and tracks it if so.
func (t *rangeTracker) admit(msg jetstream.Msg) (uint64, bool) {
	md, err := msg.Metadata()
	if err != nil {
		return 0, false
	}
	seq := md.Sequence.Stream
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w.past(seq, md.Timestamp) {
		t.past = true
		return seq, false
	}
	if !t.w.contains(seq, md.Timestamp) {
		return seq, false
	}
	t.open[seq] = true
	if t.first == 0 || seq < t.first {
		t.first = seq
	}
	t.last = max(t.last, seq)
	return seq, true
}

func (t *rangeTracker) settle(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open[seq] {
		delete(t.open, seq)
		t.settled++
	}
}

func (t *rangeTracker) state() (settled, open int, past bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settled, len(t.open), t.past
}

func (t *rangeTracker) bounds() (uint64, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first, t.last
}

// rangeConsumer is the replay's consumer as the order worker sees it: only
// the messages of the range, each tracked until settled. Messages after the
// range are acknowledged on the ephemeral consumer — which only tells it
// not to deliver them again; the stream and every other consumer keep them
// — and never reach the worker.
type rangeConsumer struct {
	jetstream.Consumer
	tr *rangeTracker
}

func (c *rangeConsumer) Messages(opts ...jetstream.PullMessagesOpt) (jetstream.MessagesContext, error) {
	it, err := c.Consumer.Messages(opts...)
	if err != nil {
		return nil, err
	}
	return &rangeMessages{MessagesContext: it, tr: c.tr}, nil
}

type rangeMessages struct {
	jetstream.MessagesContext
	tr *rangeTracker
}

func (it *rangeMessages) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	for {
		msg, err := it.MessagesContext.Next(opts...)
		if err != nil {
			return nil, err
		}
		seq, ok := it.tr.admit(msg)
		if !ok {
			_ = msg.Ack()
			continue
		}
		return &trackedMsg{Msg: msg, tr: it.tr, seq: seq}, nil
	}
}

// trackedMsg reports its final settlement to the tracker.
type trackedMsg struct {
	jetstream.Msg
	tr  *rangeTracker
	seq uint64
}

func (m *trackedMsg) Ack() error {
	err := m.Msg.Ack()
	m.tr.settle(m.seq)
	return err
}

func (m *trackedMsg) DoubleAck(ctx context.Context) error {
	err := m.Msg.DoubleAck(ctx)
	if err == nil {
		m.tr.settle(m.seq)
	}
	return err
}

func (m *trackedMsg) Term() error {
	err := m.Msg.Term()
	m.tr.settle(m.seq)
	return err
}

func (m *trackedMsg) TermWithReason(reason string) error {
	err := m.Msg.TermWithReason(reason)
	m.tr.settle(m.seq)
	return err
}
