package consume

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Fetcher pulls messages from a consumer and hands each to a deliver
// function, holding at most Slots messages between delivery and Release.
//
// Messages the server sends while every slot is busy wait in the
// Fetcher's own queue, not in the client library's buffer: from the moment
// they arrive they are in Held, which beats them (InProgress), so a busy
// worker never lets a received message pass its AckWait and come back as a
// duplicate. The consumer's MaxAckPending bounds the queue. Pulling is a
// Puller: it restarts after a terminal error (consumer deleted, bad
// request), through Open when the consumer must be recreated, and Status
// reports it for /readyz.
type Fetcher struct {
	puller Puller
	slots  chan struct{}
	held   *Held

	mu    sync.Mutex
	queue []jetstream.Msg
	wake  chan struct{}
}

// NewFetcher returns a Fetcher of cons with the given number of slots,
// beating held messages every beat. open, when not nil, recreates the
// consumer after it vanished. opts are the pull options (default: a batch
// of half the slots, 16 to 1024).
func NewFetcher(cons jetstream.Consumer, open func(context.Context) (jetstream.Consumer, error), slots int, beat time.Duration,
	log zerolog.Logger, opts ...jetstream.PullMessagesOpt) *Fetcher {
	if slots < 1 {
		slots = 1
	}
	if len(opts) == 0 {
		opts = []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(min(max(slots/2, 16), 1024))}
	}
	if open == nil {
		open = func(context.Context) (jetstream.Consumer, error) { return cons, nil }
	}
	f := &Fetcher{slots: make(chan struct{}, slots), held: NewHeld(beat), wake: make(chan struct{}, 1)}
	first := true
	f.puller = Puller{
		Name: cons.CachedInfo().Name,
		Open: func(ctx context.Context) (jetstream.Consumer, error) {
			if first { // the consumer handle the caller made keeps its pin
				first = false
				return cons, nil
			}
			return open(ctx)
		},
		Opts:   opts,
		Handle: f.enqueue,
		Log:    log,
	}
	return f
}

// Status is the state of the pull (for /readyz).
func (f *Fetcher) Status() PullStatus { return f.puller.Status() }

func (f *Fetcher) enqueue(msg jetstream.Msg) {
	f.held.Add(msg, nil)
	f.mu.Lock()
	f.queue = append(f.queue, msg)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Release frees the slot of one delivered message and stops beating it.
// Call it once per delivered message, after the message was settled.
func (f *Fetcher) Release(msg jetstream.Msg) {
	f.held.Remove(msg)
	<-f.slots
}

// Run delivers messages until ctx ends, then stops pulling. Messages
// received but not delivered are naked so that another worker takes them
// at once. Messages delivered and not yet released go on being beaten
// until beatCtx (the worker's own context) ends.
func (f *Fetcher) Run(ctx, beatCtx context.Context, deliver func(jetstream.Msg)) {
	beatDone := make(chan struct{})
	go func() { defer close(beatDone); f.held.Run(beatCtx) }()
	pullDone := make(chan struct{})
	go func() { defer close(pullDone); f.puller.Run(ctx) }()
	defer func() {
		<-pullDone
		f.nakQueued()
	}()
	for {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, ok := f.next(ctx)
		if !ok {
			<-f.slots
			return
		}
		deliver(msg)
	}
}

// next waits for a queued message; false when ctx ended first.
func (f *Fetcher) next(ctx context.Context) (jetstream.Msg, bool) {
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			msg := f.queue[0]
			f.queue[0] = nil
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return msg, true
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (f *Fetcher) nakQueued() {
	f.mu.Lock()
	queued := f.queue
	f.queue = nil
	f.mu.Unlock()
	for _, m := range queued {
		f.held.Remove(m)
		_ = m.Nak()
	}
}
