package consume

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Held is the set of messages a worker holds between delivery and
// settlement — queued, in a transaction, waiting for a retry in place — and
// keeps each alive with InProgress every beat, so that the server
// redelivers a message only when the process holding it died or gave it
// up. A consumer's AckWait can then be short (a dead process's messages
// move within seconds) without redelivering work still in progress, and a
// retry in place never costs a delivery.
type Held struct {
	beat time.Duration
	mu   sync.Mutex
	m    map[jetstream.Msg]*Source
}

// NewHeld returns a tracker beating every beat; call Run.
func NewHeld(beat time.Duration) *Held {
	return &Held{beat: beat, m: make(map[jetstream.Msg]*Source)}
}

// Add starts keeping msg alive. src says where it came from (nil: a source
// that is never released).
func (h *Held) Add(msg jetstream.Msg, src *Source) {
	h.mu.Lock()
	h.m[msg] = src
	h.mu.Unlock()
}

// Remove stops keeping msg alive, once it was acknowledged, naked or
// terminated.
func (h *Held) Remove(msg jetstream.Msg) {
	h.mu.Lock()
	delete(h.m, msg)
	h.mu.Unlock()
}

// Len is the number of messages held.
func (h *Held) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

// Run beats until ctx ends. Messages of a released source get no beat: the
// server must be free to hand them to the next owner after AckWait.
func (h *Held) Run(ctx context.Context) {
	t := time.NewTicker(h.beat)
	defer t.Stop()
	var batch []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch = batch[:0]
		h.mu.Lock()
		for m, src := range h.m {
			if !src.Released() {
				batch = append(batch, m)
			}
		}
		h.mu.Unlock()
		for _, m := range batch {
			_ = m.InProgress() // a lost beat is made up by the next two
		}
	}
}
