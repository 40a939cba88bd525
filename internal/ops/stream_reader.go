package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamReader reads, in stream order, the messages of a stream whose
// subject matches a filter, from a start sequence up to a last one
// inclusive. It reads with an ordered consumer: ephemeral, flow-controlled,
// nothing to acknowledge, gone when the read ends.
type streamReader struct {
	ctx    context.Context
	js     jetstream.JetStream
	stream string
	last   uint64
	cons   jetstream.Consumer
	it     jetstream.MessagesContext
	done   bool
}

// openStreamReader starts reading. headersOnly leaves the bodies on the
// server (listing dead letters needs only their headers).
func (o *Operator) openStreamReader(ctx context.Context, stream, filter string, start, last uint64, headersOnly bool) (*streamReader, error) {
	r := &streamReader{ctx: ctx, js: o.js, stream: stream, last: last}
	if start == 0 || start > last {
		r.done = true
		return r, nil
	}
	cons, err := o.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		HeadersOnly:       headersOnly,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	r.cons, r.it = cons, it
	return r, nil
}

// Next returns the next message, or nil at the end of the range.
func (r *streamReader) Next() (jetstream.Msg, error) {
	for !r.done {
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		msg, err := r.it.Next(jetstream.NextMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) {
			// Nothing came for a second: the end if nothing is left to
			// deliver (the last message of the range may have been
			// deleted, so it never arrives).
			info, ierr := r.cons.Info(r.ctx)
			if ierr != nil {
				if r.ctx.Err() != nil {
					return nil, r.ctx.Err()
				}
				return nil, fmt.Errorf("read %s: %w", r.stream, ierr)
			}
			r.done = info.NumPending == 0
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.stream, err)
		}
		seq := md.Sequence.Stream
		// Nothing pending after this message: the end, even when the
		// range's last message was deleted (as a redriven or purged dead
		// letter is), which would otherwise cost a second's wait.
		if seq >= r.last || md.NumPending == 0 {
			r.done = true
		}
		if seq <= r.last {
			return msg, nil
		}
	}
	return nil, nil
}

// Close stops reading and deletes the ordered consumer rather than leave
// it to expire, so that it does not linger in `status`.
func (r *streamReader) Close() {
	if r.it == nil {
		return
	}
	r.it.Stop()
	if info := r.cons.CachedInfo(); info != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
		defer cancel()
		_ = r.js.DeleteConsumer(ctx, r.stream, info.Name)
	}
}

// readStream calls fn for every message of the range, in order.
func (o *Operator) readStream(ctx context.Context, stream, filter string, start, last uint64, headersOnly bool,
	fn func(jetstream.Msg) error) error {
	r, err := o.openStreamReader(ctx, stream, filter, start, last, headersOnly)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		msg, err := r.Next()
		if err != nil || msg == nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}
