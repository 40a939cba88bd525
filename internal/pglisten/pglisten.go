// Package pglisten wakes a worker when Postgres sends a notification on a
// channel, and also at a fixed poll interval so that a lost notification (a
// dropped connection, a notification sent while reconnecting) delays work by
// at most one interval instead of stalling it.
package pglisten

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Waker signals on C when a notification arrives or the poll interval
// passes. Signals coalesce: many notifications while the worker is busy make
// one wake-up.
type Waker struct {
	C    <-chan string // the payload of the last notification, "" for a poll
	c    chan string
	done chan struct{}
}

// Done is closed once the listener has stopped (after ctx ended) and its
// connection is closed.
func (w *Waker) Done() <-chan struct{} { return w.done }

// Run listens on channel until ctx is done, reconnecting with a short pause
// after any failure. It must run in its own goroutine.
func Run(ctx context.Context, pool *pgxpool.Pool, channel string, poll time.Duration, log zerolog.Logger) *Waker {
	c := make(chan string, 1)
	w := &Waker{C: c, c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.run(ctx, pool, channel, poll, log)
	}()
	return w
}

func (w *Waker) signal(payload string) {
	select {
	case w.c <- payload:
	default:
	}
}

func (w *Waker) run(ctx context.Context, pool *pgxpool.Pool, channel string, poll time.Duration, log zerolog.Logger) {
	for ctx.Err() == nil {
		err := w.listen(ctx, pool, channel, poll)
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Str("channel", channel).Msg("listen connection lost; polling until it is back")
		w.signal("")
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

func (w *Waker) listen(ctx context.Context, pool *pgxpool.Pool, channel string, poll time.Duration) error {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection that has LISTENed must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	w.signal("") // catch up on whatever happened before we listened
	for {
		wctx, cancel := context.WithTimeout(ctx, poll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			w.signal(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			w.signal("")
		default:
			return err
		}
	}
}
