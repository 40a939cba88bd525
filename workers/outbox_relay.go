package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/pglisten"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// relayLockKey is the advisory lock that elects the one relay allowed to
// publish, so that several engine processes never interleave the outbox.
const relayLockKey = 0x70726f6d6f6f7574 // "promoout"

// OutboxRelayHooks let tests crash the relay between publish and delete.
type OutboxRelayHooks struct {
	// AfterPublish runs once a chunk was acknowledged by JetStream and before
	// its rows are deleted. An error leaves the rows, as a crash would.
	AfterPublish func(eventIDs []string) error
}

// OutboxRelay publishes outbox rows to PROMO_RESULTS in id order (which is
// commit order for the events of one customer), with Nats-Msg-Id = the
// result's event_id, and deletes each row once JetStream acknowledged it. A
// crash between publish and delete publishes the row again on restart; the
// stream's duplicate window makes subscribers see it once.
//
// The deletion of a chunk travels with the read of the next one (one round
// trip and one PostgreSQL transaction per chunk, not two): under load the
// next wake-up comes within milliseconds; when none comes within
// DeleteDelay the rows are deleted on their own. A published row therefore
// stays at most DeleteDelay (plus a failed round trip) before deletion,
// far inside the duplicate window; deletions do not wait for the WAL flush
// (ledger.NextOutbox says what a PostgreSQL crash then costs).
//
// It wakes on NOTIFY promo_outbox (sent by every transaction that enqueues)
// and polls every PollInterval in case a notification was lost. Only the
// process holding the relay advisory lock publishes; others wait as hot
// standbys.
type OutboxRelay struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	nc      *nats.Conn
	dl      *consume.DeadLetterer
	metrics *metrics.Metrics
	log     zerolog.Logger
	Hooks   OutboxRelayHooks

	ChunkSize    int
	PollInterval time.Duration
	DeleteDelay  time.Duration

	published []int64 // acknowledged by JetStream, not deleted yet
	kick      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	backlogAt time.Time // last refresh of the backlog gauges
}

// NewOutboxRelay returns a relay; call Start.
func NewOutboxRelay(pool *pgxpool.Pool, js jetstream.JetStream, subjects events.Subjects, m *metrics.Metrics, log zerolog.Logger) *OutboxRelay {
	return &OutboxRelay{pool: pool, js: js, nc: js.Conn(), dl: consume.NewDeadLetterer(js, subjects), metrics: m, log: log.With().Str("worker", "outbox").Logger(),
		ChunkSize: 1000, PollInterval: time.Second, DeleteDelay: 20 * time.Millisecond, kick: make(chan struct{}, 1)}
}

// Kick wakes the relay as a NOTIFY promo_outbox would: the order workers of
// the same process call it after each commit, which saves the
// notification's trip through PostgreSQL and the listening connection
// (NOTIFY still wakes the relay of another process when that one leads).
// It never blocks.
func (r *OutboxRelay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start runs the relay until Stop or ctx ends.
func (r *OutboxRelay) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			err := r.lead(ctx)
			if ctx.Err() != nil {
				return
			}
			r.log.Warn().Err(err).Msg("outbox relay lost its lock or connection; retrying")
			select {
			case <-ctx.Done():
			case <-time.After(r.PollInterval):
			}
		}
	}()
}

// Stop ends the relay after publishing what is in the outbox (for up to 5
// s; what is left waits for the next leader).
func (r *OutboxRelay) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// lead takes the advisory lock on a dedicated connection and publishes while
// it holds it.
func (r *OutboxRelay) lead(ctx context.Context) error {
	pooled, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pooled.Hijack() // the lock lives as long as this session
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(relayLockKey)).Scan(&got); err != nil {
			return err
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	r.log.Info().Msg("outbox relay is the leader")
	lctx, stop := context.WithCancel(ctx)
	waker := pglisten.Run(lctx, r.pool, ledger.OutboxChannel, r.PollInterval, r.log)
	lost := make(chan error, 1)
	pinged := make(chan struct{})
	// Both goroutines end before conn is closed and lead returns.
	defer func() { stop(); <-pinged; <-waker.Done() }()
	defer r.deletePublished(ctx)
	go func() { // the lock is only ours while its session is alive
		defer close(pinged)
		for {
			select {
			case <-lctx.Done():
				return
			case <-time.After(5 * time.Second):
				if err := conn.Ping(lctx); err != nil && lctx.Err() == nil {
					lost <- err
					stop()
					return
				}
			}
		}
	}()
	var failing int
	var retry time.Duration
	var lastLog time.Time
	for {
		var deleteDue <-chan time.Time
		if len(r.published) > 0 {
			deleteDue = time.After(r.DeleteDelay)
		}
		select {
		case <-lctx.Done():
			select {
			case err := <-lost:
				return err
			default:
			}
			// Stopping (the order workers have stopped first): publish what
			// they committed last, rather than leave it to the next start.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := r.drain(dctx); err != nil {
				r.log.Warn().Err(err).Msg("publish the outbox before stopping; the next leader publishes the rest")
			}
			cancel()
			return ctx.Err()
		case <-waker.C:
		case <-r.kick:
		case <-deleteDue:
		}
		if err := r.drain(lctx); err != nil && lctx.Err() == nil {
			// PostgreSQL or NATS is not answering: wait (growing to 0.5 s)
			// instead of trying again at the next wake-up, milliseconds
			// away under load; say so once, then every 30 s.
			failing++
			if failing == 1 || time.Since(lastLog) > 30*time.Second {
				r.log.Error().Err(err).Int("failures", failing).Msg("publish outbox; retrying")
				lastLog = time.Now()
			}
			retry = min(max(2*retry, 50*time.Millisecond), 500*time.Millisecond)
			select {
			case <-lctx.Done():
			case <-time.After(retry):
			}
			continue
		}
		if failing > 0 {
			r.log.Info().Int("failures", failing).Msg("outbox publishing again")
		}
		failing, retry = 0, 0
	}
}

// drain publishes until the outbox is empty.
func (r *OutboxRelay) drain(ctx context.Context) error {
	for {
		n, err := r.publishChunk(ctx)
		if err != nil {
			return err
		}
		if n < r.ChunkSize {
			return r.updateBacklog(ctx)
		}
	}
}

// backlogEvery bounds how often the backlog gauges are refreshed: counting
// the outbox after every drain (hundreds a second under load) cost
// PostgreSQL more than the publishing.
const backlogEvery = time.Second

func (r *OutboxRelay) publishChunk(ctx context.Context) (_ int, err error) {
	rows, err := ledger.NextOutbox(ctx, r.pool, r.published, r.ChunkSize)
	if err != nil {
		return 0, err
	}
	r.published = r.published[:0]
	if len(rows) == 0 {
		return 0, nil
	}
	futures := make([]jetstream.PubAckFuture, len(rows))
	spans := newPublishSpans(len(rows)) // relay_trace.go
	defer func() { spans.end(err) }()
	for i, row := range rows {
		msg := &nats.Msg{Subject: row.Subject, Data: row.Payload, Header: nats.Header{}}
		spans.start(ctx, row, msg.Header)
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(row.EventID))
		if errors.Is(err, nats.ErrMaxPayload) {
			// It can never be published: left first in the outbox it would
			// stop every result behind it. Dead-letter it and go on.
			if derr := r.deadLetterRow(ctx, row); derr != nil {
				return 0, r.settleChunk(ctx, rows[:i], futures[:i], derr)
			}
			futures[i] = nil
			continue
		}
		if err != nil {
			return 0, r.settleChunk(ctx, rows[:i], futures[:i], fmt.Errorf("publish %s: %w", row.EventID, err))
		}
		futures[i] = f
	}
	return len(rows), r.settleChunk(ctx, rows, futures, nil)
}

// settleChunk waits for the acknowledgements and marks the acknowledged
// prefix for deletion. Rows after the first failure stay and are published
// again (with the same id) on the next round.
func (r *OutboxRelay) settleChunk(ctx context.Context, rows []ledger.OutboxRow, futures []jetstream.PubAckFuture, pubErr error) error {
	acked := make([]int64, 0, len(rows))
	var ids []string // for the test hook
	var firstErr error
	// One deadline for the whole chunk: a lost acknowledgement (a stream
	// leader change) fails the chunk instead of waiting for ever. The
	// context's Done channel stays closed once the deadline passed, so
	// every later future sees it too.
	wait, cancel := context.WithTimeout(ctx, ackDeadline)
	defer cancel()
	timeout := wait.Done()
	for i, f := range futures {
		if f == nil { // dead-lettered instead of published
			if firstErr == nil {
				acked = append(acked, rows[i].ID)
			}
			continue
		}
		select {
		case <-f.Ok():
			r.observeDelay(rows[i])
			if firstErr == nil {
				acked = append(acked, rows[i].ID)
				if r.Hooks.AfterPublish != nil {
					ids = append(ids, rows[i].EventID)
				}
			}
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = fmt.Errorf("publish %s: %w", rows[i].EventID, err)
			}
		case <-timeout:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if firstErr == nil {
				firstErr = errors.New("timed out waiting for JetStream acknowledgements")
			}
		}
	}
	if len(acked) > 0 {
		if r.Hooks.AfterPublish != nil {
			if err := r.Hooks.AfterPublish(ids); err != nil {
				return err
			}
		}
		r.published = append(r.published, acked...)
		r.metrics.OutboxPublished.Add(float64(len(acked)))
	}
	return errors.Join(pubErr, firstErr)
}

// deadLetterRow sends a result too large for a NATS message to the
// dead-letter stream: with its bytes when they fit there, else with none
// (the order's result is also stored in processed_orders, and a replay
// computes it again).
func (r *OutboxRelay) deadLetterRow(ctx context.Context, row ledger.OutboxRow) error {
	l := consume.Letter{Subject: row.Subject, Data: row.Payload, Code: events.DLQResultTooLarge,
		Message: fmt.Sprintf("result %s is %d bytes, more than the NATS server's max_payload of %d", row.EventID, len(row.Payload), r.maxPayload()),
		Header:  nats.Header{jetstream.MsgIDHeader: []string{"dlq:" + row.EventID}}}
	if len(row.Payload)+16<<10 > int(r.maxPayload()) {
		l.Data = nil
		l.Header.Set(HeaderBodyOmitted, fmt.Sprintf("%d bytes", len(row.Payload)))
	}
	if err := r.dl.Send(ctx, l); err != nil {
		return err
	}
	r.metrics.DeadLetters.WithLabelValues(events.DLQResultTooLarge).Inc()
	r.log.Error().Str("event_id", row.EventID).Int("bytes", len(row.Payload)).Msg("result too large to publish; dead-lettered")
	return nil
}

// HeaderBodyOmitted marks a dead letter whose body could not be kept.
const HeaderBodyOmitted = "Promo-Body-Omitted"

func (r *OutboxRelay) maxPayload() int64 {
	if r.nc == nil {
		return 1 << 20
	}
	return r.nc.MaxPayload()
}

// ackDeadline bounds the wait for the acknowledgements of one chunk.
const ackDeadline = 10 * time.Second

func (r *OutboxRelay) updateBacklog(ctx context.Context) error {
	if time.Since(r.backlogAt) < backlogEvery {
		return nil
	}
	r.backlogAt = time.Now()
	n, oldest, err := ledger.OutboxBacklog(ctx, r.pool)
	if err != nil {
		return err
	}
	// Rows published and not deleted yet are not backlog. (The oldest age
	// may count them: they are at most DeleteDelay old.)
	r.metrics.OutboxBacklog.Set(float64(max(n-int64(len(r.published)), 0)))
	r.metrics.OutboxOldest.Set(oldest.Seconds())
	return nil
}

// deletePublished deletes the published rows when the relay stops leading;
// rows it cannot delete are published again, with the same ids, by the next
// leader.
func (r *OutboxRelay) deletePublished(ctx context.Context) {
	if len(r.published) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := ledger.DeleteOutbox(dctx, r.pool, r.published); err != nil {
		r.log.Warn().Err(err).Int("rows", len(r.published)).Msg("delete published outbox rows; the next leader publishes them again")
	}
	r.published = r.published[:0]
}
