package chaos_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/chaos"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// The checker sees what it is there to see: a workload whose chains are
// published backwards (returns before their sales, redemptions before the
// earnings) is reported out of order, with rejections, and not OK.
func TestCheckSeesDisorder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := testnats.New(t)
	url := testdb.NewDatabase(t)
	cat, err := rules.Parse([]byte(chaos.Catalog))
	require.NoError(t, err)
	e, err := engine.Start(ctx, &config.Config{NATSURL: srv.URL(), DatabaseURL: url, HTTPAddr: "off", BatchSize: 16,
		MaxDeliver: 2, DuplicateWindow: 10 * time.Minute, OdooConcurrency: 1, OdooTimeout: time.Second, AckWait: time.Second},
		[]string{config.WorkerOrders, config.WorkerOutbox}, zerolog.New(io.Discard))
	require.NoError(t, err)
	t.Cleanup(e.Stop)
	_, err = ledger.ApplyCatalog(ctx, e.Pool, cat)
	require.NoError(t, err)

	wl := chaos.NewWorkload("bw", 2, 9, 0, 1)
	js, err := jetstream.New(srv.Conn(t))
	require.NoError(t, err)
	var pub chaos.Published
	require.NoError(t, wl.Reversed().Publish(ctx, js, chaos.PublishOptions{}, &pub))
	require.NoError(t, chaos.WaitDrained(ctx, e.Pool, js, events.NewSubjects(""), 2*time.Minute))
	rep, err := wl.Check(ctx, e.Pool, js, events.NewSubjects(""))
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.NotEmpty(t, rep.OutOfOrder, rep.String())
	require.NotEmpty(t, rep.Rejected, rep.String())
}
