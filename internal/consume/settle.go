package consume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Settlement says what happened to a message, for metrics and logs.
type Settlement string

// Settlements.
const (
	Acked        Settlement = "acked"
	Retried      Settlement = "retried"
	DeadLettered Settlement = "dead_lettered"
	Released     Settlement = "released"
)

// Settler applies outcomes to messages.
type Settler struct {
	dl         *DeadLetterer
	maxDeliver uint64
	// OnDeadLetterError, when set, hears each failed attempt to store a
	// dead letter (for a log line and a metric) before it is tried again.
	OnDeadLetterError func(error)
}

// NewSettler returns a Settler that dead-letters a retried message once it
// has been delivered maxDeliver times.
func NewSettler(dl *DeadLetterer, maxDeliver int) *Settler {
	return &Settler{dl: dl, maxDeliver: uint64(maxDeliver)}
}

// Settle tells JetStream the outcome of handling msg. A dead letter is
// acknowledged by the DLQ stream before the original is terminated.
func (s *Settler) Settle(ctx context.Context, msg jetstream.Msg, outcome error) (Settlement, error) {
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	var perm *Permanent
	var retry *Retry
	switch {
	case outcome == nil:
		return Acked, msg.Ack()
	case errors.As(outcome, &perm):
		return s.deadLetter(ctx, msg, perm.Code, perm.Err.Error())
	case errors.Is(outcome, context.Canceled):
		return Released, msg.Nak()
	case errors.As(outcome, &retry):
		if delivered >= s.maxDeliver {
			return s.deadLetter(ctx, msg, retry.Code, fmt.Sprintf("%v (after %d deliveries)", retry.Err, delivered))
		}
		delay := retry.Delay
		if delay == 0 {
			delay = RetryDelay(delivered)
		}
		return Retried, msg.NakWithDelay(delay)
	default:
		if delivered >= s.maxDeliver {
			return s.deadLetter(ctx, msg, events.DLQProcessingFailed, fmt.Sprintf("%v (after %d deliveries)", outcome, delivered))
		}
		return Retried, msg.NakWithDelay(RetryDelay(delivered))
	}
}

// deadLetter stores the letter, then terminates the message. The server
// delivers without limit (the worker counts), so a message is never given
// up before its dead letter is stored: a failed publish is retried in
// place, with the message held, until it succeeds or ctx ends (then the
// message is naked and comes back).
func (s *Settler) deadLetter(ctx context.Context, msg jetstream.Msg, code, message string) (Settlement, error) {
	letter := LetterFromMsg(msg, code, message)
	wait := 100 * time.Millisecond
	for {
		err := s.dl.Send(ctx, letter)
		if err == nil {
			return DeadLettered, msg.Term()
		}
		if ctx.Err() != nil {
			return Released, errors.Join(err, msg.Nak())
		}
		if s.OnDeadLetterError != nil {
			s.OnDeadLetterError(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
