package consume

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Fetcher pulls messages from a consumer and hands each to a deliver
// function, holding at most Slots messages between delivery and Release.
type Fetcher struct {
	cons  jetstream.Consumer
	slots chan struct{}
	log   zerolog.Logger
	opts  []jetstream.PullMessagesOpt
}

// NewFetcher returns a Fetcher with the given number of slots. Without
// options the client buffers up to half the slots ahead (16 to 1024
// messages); opts replace that (a priority group, a smaller buffer).
func NewFetcher(cons jetstream.Consumer, slots int, log zerolog.Logger, opts ...jetstream.PullMessagesOpt) *Fetcher {
	if slots < 1 {
		slots = 1
	}
	if len(opts) == 0 {
		opts = []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(min(max(slots/2, 16), 1024))}
	}
	return &Fetcher{cons: cons, slots: make(chan struct{}, slots), log: log, opts: opts}
}

// Release frees the slot of one delivered message. Call it once per
// delivered message, after the message was settled.
func (f *Fetcher) Release() { <-f.slots }

// Run delivers messages until ctx is cancelled, then stops pulling. Messages
// already buffered by the client but not delivered are naked so that another
// worker takes them at once.
func (f *Fetcher) Run(ctx context.Context, deliver func(jetstream.Msg)) error {
	it, err := f.cons.Messages(f.opts...)
	if err != nil {
		return fmt.Errorf("consume: start pulling: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	for {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			f.nakBuffered(it)
			return nil
		}
		msg, err := it.Next()
		if err != nil {
			<-f.slots
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			f.log.Warn().Err(err).Msg("pull consumer error; continuing")
			continue
		}
		if ctx.Err() != nil {
			<-f.slots
			_ = msg.Nak()
			f.nakBuffered(it)
			return nil
		}
		deliver(msg)
	}
}

func (f *Fetcher) nakBuffered(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}
