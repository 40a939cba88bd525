package workers

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// JobsScheduler runs the expiry and downgrade job (the same code as
// `promoengine jobs run --as-of T`) every day at 00:00 in the catalog
// timezone, as of that instant. At start it runs the job for the last
// midnight it may have missed while the process was down: the job is
// idempotent (deterministic event ids, state already changed is skipped), so
// running it again, or in two processes at once, changes nothing.
type JobsScheduler struct {
	pool     *pgxpool.Pool
	store    *ledger.Store
	catalogs *CatalogWatcher
	metrics  *metrics.Metrics
	log      zerolog.Logger
	now      func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// NewJobsScheduler returns a scheduler; call Start.
func NewJobsScheduler(pool *pgxpool.Pool, store *ledger.Store, catalogs *CatalogWatcher, m *metrics.Metrics, log zerolog.Logger) *JobsScheduler {
	return &JobsScheduler{pool: pool, store: store, catalogs: catalogs, metrics: m,
		log: log.With().Str("worker", "jobs").Logger(), now: time.Now}
}

// Start schedules the job until Stop.
func (s *JobsScheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		select {
		case <-s.catalogs.Ready():
		case <-ctx.Done():
			return
		}
		loc := s.catalogs.Current().Location
		s.run(ctx, lastMidnight(s.now(), loc))
		for {
			next := lastMidnight(s.now(), s.catalogs.Current().Location).AddDate(0, 0, 1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
				s.run(ctx, next)
			}
		}
	}()
}

// Stop ends the scheduler after a run in progress.
func (s *JobsScheduler) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *JobsScheduler) run(ctx context.Context, asOf time.Time) {
	cat := s.catalogs.Current()
	start := time.Now()
	report, err := s.store.RunJobs(ctx, s.pool, cat, asOf)
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.JobRuns.WithLabelValues("failed").Inc()
			s.log.Error().Err(err).Time("as_of", asOf).Msg("job run failed; it runs again at the next midnight or with `promoengine jobs run`")
		}
		return
	}
	s.metrics.JobRuns.WithLabelValues("ok").Inc()
	s.log.Info().Time("as_of", asOf).Interface("report", report).Dur("took", time.Since(start)).Msg("job run done")
}

// lastMidnight is the most recent 00:00 in loc at or before t.
func lastMidnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}
