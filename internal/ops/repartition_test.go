package ops_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/streams"
)

// The partitions change only with every engine stopped: a running engine
// is refused by name, and once it stopped the change goes through.
func TestRepartitionWaitsForEveryEngineToStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog(examples.Catalog)
	e := b.startEngine(5, "orders")
	timing := streams.Timing{AckWait: 5 * time.Second}

	_, err := b.op.Repartition(b.ctx, 32, timing, 256)
	require.ErrorIs(t, err, ops.ErrEnginesRunning)
	require.NoError(t, streams.CheckPartitions(b.ctx, b.js, b.subjects, streams.DefaultPartitions), "nothing changed")

	e.Stop() // a graceful stop leaves the membership at once
	rep, err := b.op.Repartition(b.ctx, 32, timing, 256)
	require.NoError(t, err)
	require.Equal(t, streams.DefaultPartitions, rep.From)
	require.NoError(t, streams.CheckPartitions(b.ctx, b.js, b.subjects, 32))
}
