package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// Operator runs the operator commands against one NATS account and one
// database.
type Operator struct {
	js       jetstream.JetStream
	pool     *pgxpool.Pool // nil for the commands that need only NATS
	subjects events.Subjects
	keys     *keying.Resolver // keys the input events publish and redrive send
	log      zerolog.Logger
	now      func() time.Time
	// couponSecret derives issued coupon codes (PROMO_COUPON_SECRET): a
	// replay or dry run issues the codes the engine would.
	couponSecret []byte
}

// New returns an Operator. pool may be nil for publish and dlq, which touch
// only NATS.
func New(js jetstream.JetStream, pool *pgxpool.Pool, subjects events.Subjects, log zerolog.Logger) *Operator {
	var db ledger.DB
	if pool != nil {
		db = pool
	}
	return &Operator{js: js, pool: pool, subjects: subjects, keys: keying.NewResolver(db, log), log: log, now: time.Now}
}

// WithCouponSecret sets the secret the replays derive coupon codes with;
// it must be the engine's.
func (o *Operator) WithCouponSecret(secret []byte) *Operator {
	o.couponSecret = secret
	return o
}

// store is a ledger Store with the operator's subjects and coupon secret.
func (o *Operator) store() *ledger.Store {
	return ledger.NewStore(o.subjects, ledger.WithCouponSecret(o.couponSecret))
}

// ErrStreamMissing is returned when a stream the command needs does not
// exist: the engine creates its streams at start, so it never ran against
// this NATS server (or under this PROMO_SUBJECT_PREFIX).
var ErrStreamMissing = errors.New("ops: stream does not exist")

// stream returns the named stream, or an error that says what to do.
func (o *Operator) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := o.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s; start the engine once (`promoengine run` or `promoengine dev`) to create its streams, and check PROMO_NATS_URL and PROMO_SUBJECT_PREFIX", ErrStreamMissing, name)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

func (o *Operator) needPool() error {
	if o.pool == nil {
		return errors.New("ops: this command needs PostgreSQL (PROMO_DATABASE_URL)")
	}
	return nil
}

// Progress receives the advance of a long operation, to draw a progress
// bar. Implementations need not be safe for concurrent use: every call
// comes from the goroutine running the command.
type Progress interface {
	// Stage starts a new stage of total units; total < 0 when unknown.
	Stage(description string, total int64)
	// Advance reports the units done so far in the current stage.
	Advance(done int64)
	// Done ends the last stage.
	Done()
}

type noProgress struct{}

func (noProgress) Stage(string, int64) {}
func (noProgress) Advance(int64)       {}
func (noProgress) Done()               {}

func progressOrNone(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}
