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
//
// A run that fails (PostgreSQL down, a chunk's transaction refused) is
// retried with capped exponential backoff (RetryMin doubling to RetryMax)
// until it succeeds: the customers it already handled are no longer
// candidates, so a retry resumes where the failed run stopped. A midnight
// that passes while a run is being retried is not lost: the scheduler runs
// as of the latest midnight it has not run yet.
type JobsScheduler struct {
	pool     *pgxpool.Pool
	store    *ledger.Store
	catalogs *CatalogWatcher
	metrics  *metrics.Metrics
	log      zerolog.Logger
	now      func() time.Time

	// RetryMin and RetryMax bound the wait between attempts of a failed
	// run (default 1 s and 1 min).
	RetryMin, RetryMax time.Duration

	cancel context.CancelFunc
	done   chan struct{}
}

// NewJobsScheduler returns a scheduler; call Start.
func NewJobsScheduler(pool *pgxpool.Pool, store *ledger.Store, catalogs *CatalogWatcher, m *metrics.Metrics, log zerolog.Logger) *JobsScheduler {
	return &JobsScheduler{pool: pool, store: store, catalogs: catalogs, metrics: m,
		log: log.With().Str("worker", "jobs").Logger(), now: time.Now, RetryMin: time.Second, RetryMax: time.Minute}
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
		var done time.Time // the last midnight run successfully
		for {
			due := lastMidnight(s.now(), s.catalogs.Current().Location)
			if due.After(done) {
				if !s.runUntilDone(ctx, due) {
					return
				}
				done = due
				continue // a midnight may have passed while retrying
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(due.AddDate(0, 0, 1))):
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

// runUntilDone runs the job as of asOf, retrying a failed run with capped
// exponential backoff; false when ctx ended first.
func (s *JobsScheduler) runUntilDone(ctx context.Context, asOf time.Time) bool {
	wait := s.RetryMin
	for attempt := 1; ; attempt++ {
		err := s.run(ctx, asOf)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.metrics.JobRuns.WithLabelValues("failed").Inc()
		s.log.Error().Err(err).Time("as_of", asOf).Int("attempt", attempt).Dur("retry_in", wait).
			Msg("job run failed; retrying (customers already handled are skipped)")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, s.RetryMax)
	}
}

func (s *JobsScheduler) run(ctx context.Context, asOf time.Time) error {
	cat := s.catalogs.Current()
	start := time.Now()
	report, err := s.store.RunJobs(ctx, s.pool, cat, asOf)
	if err != nil {
		return err
	}
	s.metrics.JobRuns.WithLabelValues("ok").Inc()
	s.log.Info().Time("as_of", asOf).Interface("report", report).Dur("took", time.Since(start)).Msg("job run done")
	return nil
}

// lastMidnight is the most recent 00:00 in loc at or before t.
func lastMidnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}
