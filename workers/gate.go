package workers

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/consume"
)

// gate holds what a process receives of a unit it has just acquired until
// nothing of the unit is held anywhere else, then hands it on in stream
// order.
//
// Why: a unit's messages that its previous owner held come back to the
// next owner only once they were acknowledged or expired (AckWait) and the
// server queued them for redelivery, which it serves before anything
// newer. The pin moves sooner than that (streams.Timing.PinnedTTL is two
// pull expiries, and a consumer leader change — a NATS server lost —
// resets it at once), so a new owner can receive newer messages of the
// same customers first. The gate waits until the consumer counts no
// unacknowledged message but the ones this process holds — the old ones
// were redelivered to it (and sorted in front) or acknowledged — or, at
// most, limit.
type gate struct {
	src     *consume.Source
	held    *consume.Held
	deliver func(jetstream.Msg)

	mu     sync.Mutex
	open   bool
	queued []jetstream.Msg
}

func newGate(src *consume.Source, held *consume.Held, deliver func(jetstream.Msg)) *gate {
	return &gate{src: src, held: held, deliver: deliver}
}

// handle takes a message: through when open, held otherwise.
func (g *gate) handle(msg jetstream.Msg) {
	g.mu.Lock()
	if !g.open {
		g.held.Add(msg, g.src)
		g.queued = append(g.queued, msg)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.deliver(msg)
}

// watch opens the gate once the consumer has nothing unacknowledged but
// what this process holds (polled every poll), or after limit, or when ctx
// ends (the queued messages are then naked).
func (g *gate) watch(ctx context.Context, cons func() jetstream.Consumer, poll, limit time.Duration) (waited time.Duration, timedOut bool) {
	start := time.Now()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if c := cons(); c != nil {
			if info, err := c.Info(ctx); err == nil {
				g.mu.Lock()
				ours := int64(len(g.queued)) + g.src.Holding()
				g.mu.Unlock()
				if int64(info.NumAckPending) <= ours {
					g.release()
					return time.Since(start), false
				}
			}
		}
		select {
		case <-ctx.Done():
			g.drop()
			return time.Since(start), false
		case <-t.C:
		}
		if time.Since(start) >= limit {
			g.release()
			return time.Since(start), true
		}
	}
}

// release hands the queued messages on in stream order and opens the gate.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	slices.SortStableFunc(g.queued, func(a, b jetstream.Msg) int { return cmp.Compare(streamSeq(a), streamSeq(b)) })
	for _, m := range g.queued {
		g.held.Remove(m)
		g.deliver(m)
	}
	g.queued, g.open = nil, true
}

// drop hands the queued messages back.
func (g *gate) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.queued {
		g.held.Remove(m)
		_ = m.Nak()
	}
	g.queued, g.open = nil, true
}

func streamSeq(m jetstream.Msg) uint64 {
	if md, err := m.Metadata(); err == nil {
		return md.Sequence.Stream
	}
	return 0
}
