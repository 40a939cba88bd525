package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Puller pulls one durable consumer for as long as it runs and hands every
// message to Handle as soon as it arrives.
//
// Nothing waits in the client's buffer: a message is on the wire or held by
// the worker, where Held keeps it alive. Backpressure therefore comes from
// the consumer's MaxAckPending, never from a full buffer in which messages
// silently pass their AckWait. Pulls go on while the worker is stuck
// (PostgreSQL down): a pinned consumer stays pinned to a process that
// pulls, and the server hands out nothing past MaxAckPending.
//
// A pull that ends for any reason but ctx (the consumer was deleted or
// recreated, a bad request, the connection closed) starts again after a
// pause, through Open when the consumer is gone. Status tells whether it
// is consuming, for /readyz.
type Puller struct {
	// Name is the consumer's name, for logs and readiness.
	Name string
	// Open returns the consumer, creating it if it is missing.
	Open func(ctx context.Context) (jetstream.Consumer, error)
	// Opts are the pull options (priority group, batch, expiry).
	Opts []jetstream.PullMessagesOpt
	// Handle takes a message. It must not block for long: it queues.
	Handle func(jetstream.Msg)
	// Log receives restarts.
	Log zerolog.Logger
	// Pause is the first wait before a restart (default 250 ms); it doubles
	// up to 5 s while restarts keep failing.
	Pause time.Duration

	mu     sync.Mutex
	status PullStatus
}

// PullStatus is a Puller's state.
type PullStatus struct {
	Consuming bool
	Since     time.Time // when Consuming last changed
	Err       error     // why it is not consuming
}

// NotConsumingFor reports an error when the pull has not been working for
// longer than grace (nil while it works, or a moment after a restart).
func (s PullStatus) NotConsumingFor(name string, grace time.Duration) error {
	if s.Consuming || s.Since.IsZero() || time.Since(s.Since) <= grace {
		return nil
	}
	return fmt.Errorf("consumer %s not consuming since %s", name, s.Since.UTC().Format(time.RFC3339))
}

// Status returns the puller's state.
func (p *Puller) Status() PullStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *Puller) set(consuming bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status.Consuming != consuming || p.status.Since.IsZero() {
		p.status.Since = time.Now()
	}
	p.status.Consuming, p.status.Err = consuming, err
}

// Run pulls until ctx ends. Messages the client received but had not
// handed out when ctx ended are naked, so that they go to the next owner
// without waiting for AckWait. Once Run returns, Handle is not called again.
func (p *Puller) Run(ctx context.Context) {
	pause := p.Pause
	if pause <= 0 {
		pause = 250 * time.Millisecond
	}
	wait := pause
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		var err error
		if cons == nil {
			cons, err = p.Open(ctx)
		}
		if err == nil {
			err = p.pull(ctx, cons)
			if err == nil { // pulled something before it ended: not a failing loop
				wait = pause
			}
		}
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			err = errors.New("the pull ended")
		}
		p.set(false, err)
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, jetstream.ErrBadRequest) {
			cons = nil // the next round recreates it
		}
		p.Log.Warn().Err(err).Str("consumer", p.Name).Dur("retry_in", wait).Msg("pulling stopped; starting again")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	p.set(false, context.Canceled)
}

// pull runs one Messages iterator. It returns nil when it ended after
// handing out at least one message (the caller restarts it at once), the
// iterator's error otherwise.
func (p *Puller) pull(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(p.Opts...)
	if err != nil {
		return fmt.Errorf("consume: pull %s: %w", p.Name, err)
	}
	p.set(true, nil)
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	handled := false
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || handled && errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("consume: pull %s: %w", p.Name, err)
		}
		if ctx.Err() != nil {
			_ = msg.Nak() // drained after ctx ended: the next owner takes it now
			continue
		}
		handled = true
		p.Handle(msg)
	}
}
