package workers

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// A run that fails is retried with backoff until it succeeds, not left
// for the next midnight: here the points table is missing (renamed away)
// when the scheduler starts, and back a few failed attempts later.
func TestJobsSchedulerRetriesAFailedRunUntilItSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, `ALTER TABLE point_lots RENAME TO point_lots_away`)
	require.NoError(t, err)

	catalogs := NewCatalogWatcher(b.pool, b.metrics, b.log)
	catalogs.Start(b.ctx)
	s := NewJobsScheduler(b.pool, b.store, catalogs, b.metrics, b.log)
	s.RetryMin, s.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	s.Start(b.ctx)
	t.Cleanup(s.Stop)

	failed := func() float64 { return testutil.ToFloat64(b.metrics.JobRuns.WithLabelValues("failed")) }
	ok := func() float64 { return testutil.ToFloat64(b.metrics.JobRuns.WithLabelValues("ok")) }
	require.Eventually(t, func() bool { return failed() >= 3 }, time.Minute, 10*time.Millisecond,
		"the run is attempted again and again while it fails")
	require.Zero(t, ok())

	_, err = b.pool.Exec(b.ctx, `ALTER TABLE point_lots_away RENAME TO point_lots`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ok() == 1 }, time.Minute, 10*time.Millisecond,
		"the retry succeeds once PostgreSQL can run it")
	stopped := failed()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, stopped, failed(), "no attempt after the run succeeded")
	require.Equal(t, float64(1), ok(), "one successful run for the last midnight, not one per attempt")
}
