package workers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/pkg/events"
)

// Keyer keys the events published on the bare SPEC subjects
// (pos.orders.paid…), which carry no key: it reads them in stream order —
// its consumer is owned by one process at a time, like a partition — and
// publishes each again, byte for byte with its headers, on its keyed
// subject (keying.Resolver), then acknowledges the original. The order
// workers only ever see keyed events.
//
// A return or cancellation takes its sale's key; when the keyer does not
// know the sale's customer it asks PostgreSQL, retrying while PostgreSQL
// does not answer and waiting (up to SaleWait) while the sale is not
// processed yet — after a failover the new keyer has no memory of the
// sales the old one keyed. Events behind it wait meanwhile: guessing would
// let the customer's later events overtake the reversal.
//
// Order: two events of one key are never in flight together. An event
// waits until the previous event of its key is stored (a failed publish is
// retried until it is), so a key's keyed copies are stored in the order of
// the originals. Events of different keys are published concurrently.
//
// The copy's Nats-Msg-Id is derived from the original's stream sequence, so
// a copy published again after a crash is stored once; the original's id
// is kept in Promo-Original-Msg-Id. An event that cannot be read is
// dead-lettered here, with the original's subject and bytes.
type Keyer struct {
	// SaleWait bounds the wait for a reversal's sale (DefaultSaleWait).
	SaleWait time.Duration

	js       jetstream.JetStream
	subjects events.Subjects
	resolver *keying.Resolver
	settler  *consume.Settler
	metrics  *metrics.Metrics
	log      zerolog.Logger

	held *consume.Held
	mu   sync.Mutex
	q    []keyerItem
	wake chan struct{}

	workCtx  context.Context
	stopWork context.CancelFunc
	stopOnce sync.Once
	closed   bool
	done     chan struct{}
	beatDone chan struct{}
}

// DefaultSaleWait is how long the keyer waits for the sale of a return or
// cancellation to be processed before keying the reversal by its order
// (keying.Resolver.KeyPatiently).
const DefaultSaleWait = 10 * time.Second

type keyerItem struct {
	msg jetstream.Msg
	src *consume.Source
}

// keyerWindow bounds the copies in flight.
const keyerWindow = 256

// NewKeyer returns a keyer; call Start.
func NewKeyer(js jetstream.JetStream, subjects events.Subjects, resolver *keying.Resolver, settler *consume.Settler,
	heartbeat time.Duration, m *metrics.Metrics, log zerolog.Logger) *Keyer {
	return &Keyer{js: js, subjects: subjects, resolver: resolver, settler: settler, metrics: m, SaleWait: DefaultSaleWait,
		log: log.With().Str("worker", "keyer").Logger(), held: consume.NewHeld(heartbeat), wake: make(chan struct{}, 1)}
}

// Start runs the keyer until Stop.
func (k *Keyer) Start(ctx context.Context) {
	k.workCtx, k.stopWork = context.WithCancel(context.WithoutCancel(ctx))
	k.done, k.beatDone = make(chan struct{}), make(chan struct{})
	go func() { defer close(k.beatDone); k.held.Run(k.workCtx) }()
	go func() { defer close(k.done); k.run(k.workCtx) }()
}

// Handle takes a message of src; it never blocks.
func (k *Keyer) Handle(src *consume.Source, msg jetstream.Msg) {
	k.held.Add(msg, src)
	src.Hold()
	src.SawPin(msg.Headers().Get(pinHeader))
	k.mu.Lock()
	closed := k.closed
	if !closed {
		k.q = append(k.q, keyerItem{msg, src})
	}
	k.mu.Unlock()
	if closed {
		k.done1(keyerItem{msg, src}, msg.Nak())
		return
	}
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Stop keys what was received (for up to 10 s), then hands the rest back.
// The caller stops the puller first.
func (k *Keyer) Stop() {
	if k.stopWork == nil {
		return
	}
	k.stopOnce.Do(func() {
		k.mu.Lock()
		k.closed = true
		k.mu.Unlock()
		select {
		case k.wake <- struct{}{}:
		default:
		}
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
			k.stopWork()
			<-k.done
		}
		k.stopWork()
		<-k.beatDone
	})
}

// copyInFlight is one keyed copy between publish and the ack of its
// original.
type copyInFlight struct {
	it     keyerItem
	token  string
	msg    *nats.Msg
	fut    jetstream.PubAckFuture
	err    error // publish failed before a future
	stored bool  // acknowledged (a future's channels deliver once)
}

func (k *Keyer) run(ctx context.Context) {
	last := map[string]*copyInFlight{} // the newest copy of each key in flight
	var window []*copyInFlight
	flush := func() {
		for _, c := range window {
			k.settle(ctx, c)
			if last[c.token] == c {
				delete(last, c.token)
			}
		}
		window = window[:0]
	}
	for {
		k.mu.Lock()
		items, closed := k.q, k.closed
		k.q = nil
		k.mu.Unlock()
		if len(items) == 0 {
			flush()
			if closed || ctx.Err() != nil {
				return
			}
			select {
			case <-k.wake:
			case <-ctx.Done():
			}
			continue
		}
		for _, it := range items {
			c := k.prepare(ctx, it)
			if c == nil {
				continue
			}
			if prev := last[c.token]; prev != nil && !k.store(ctx, prev) {
				k.done1(c.it, c.it.msg.Nak()) // stopping: never store a key's copies out of order
				continue
			}
			k.publish(c)
			last[c.token] = c
			window = append(window, c)
			if len(window) >= keyerWindow {
				flush()
			}
		}
	}
}

// prepare decodes an original and builds its keyed copy; nil when the
// original was settled here (invalid, released, stopping).
func (k *Keyer) prepare(ctx context.Context, it keyerItem) *copyInFlight {
	if it.src.Released() || ctx.Err() != nil {
		k.done1(it, it.msg.Nak())
		return nil
	}
	ev, err := events.Decode(it.msg.Data())
	if err == nil && k.subjects.OrderSubject(ev.Type) != it.msg.Subject() {
		err = fmt.Errorf("%w: /type: a %s event was published on %s; want %s",
			events.ErrInvalid, ev.Type, it.msg.Subject(), k.subjects.OrderSubject(ev.Type))
	}
	if err != nil {
		settlement, serr := k.settler.Settle(ctx, it.msg, consume.NewPermanent(events.DLQInvalidEvent, err))
		if settlement == consume.DeadLettered {
			k.metrics.DeadLetters.WithLabelValues(events.DLQInvalidEvent).Inc()
			k.metrics.Events.WithLabelValues("unknown", "dead_lettered").Inc()
		}
		k.done1(it, serr)
		return nil
	}
	key, err := k.resolver.KeyPatiently(ctx, ev, k.SaleWait)
	if err != nil { // stopping
		k.done1(it, it.msg.Nak())
		return nil
	}
	h := consume.DisarmHeaders(it.msg.Headers())
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		h.Set(events.HeaderOriginalMsgID, id)
	}
	stream, seq := k.subjects.StreamOrders(), uint64(0)
	if md, err := it.msg.Metadata(); err == nil {
		stream, seq = md.Stream, md.Sequence.Stream
	}
	h.Set(jetstream.MsgIDHeader, "keyed:"+stream+":"+strconv.FormatUint(seq, 10))
	h.Set(events.HeaderKeyedFrom, strconv.FormatUint(seq, 10))
	msg := &nats.Msg{Subject: k.subjects.KeyedOrderSubject(ev.Type, key), Header: h, Data: it.msg.Data()}
	return &copyInFlight{it: it, token: key.Token(), msg: msg}
}

func (k *Keyer) publish(c *copyInFlight) {
	c.fut, c.err = k.js.PublishMsgAsync(c.msg)
}

// store waits until c is stored, publishing it again (the same Nats-Msg-Id)
// while it fails, until ctx ends.
func (k *Keyer) store(ctx context.Context, c *copyInFlight) bool {
	wait := 100 * time.Millisecond
	for {
		if c.stored {
			return true
		}
		err := c.err
		if err == nil && c.fut != nil {
			select {
			case <-c.fut.Ok():
				c.stored = true
				return true
			case err = <-c.fut.Err():
			case <-ctx.Done():
				return false
			}
		}
		if ctx.Err() != nil {
			return false
		}
		k.log.Warn().Err(err).Str("subject", c.msg.Subject).Dur("retry_in", wait).Msg("keyed copy not stored; publishing it again")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait = min(2*wait, 5*time.Second)
		k.publish(c)
	}
}

// settle acknowledges the original once its copy is stored.
func (k *Keyer) settle(ctx context.Context, c *copyInFlight) {
	if !k.store(ctx, c) {
		k.done1(c.it, c.it.msg.Nak())
		return
	}
	k.metrics.Events.WithLabelValues("keyed", "keyed").Inc()
	k.done1(c.it, c.it.msg.Ack())
}

// done1 stops holding an original.
func (k *Keyer) done1(it keyerItem, err error) {
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		k.log.Debug().Err(err).Str("subject", it.msg.Subject()).Msg("settling an original failed; it will be delivered again")
	}
	k.held.Remove(it.msg)
	it.src.Done()
}
