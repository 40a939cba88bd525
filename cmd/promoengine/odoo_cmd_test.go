package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

func TestResultsOnAnEmptyStream(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	res := b.run("results", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Empty(t, res.Stdout)
	res = b.run("results")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, "no results yet\n", res.Stdout)
}

// withOdoo points the commands at a fake Odoo.
func (b *opsBundle) withOdoo() *odootest.Server {
	srv := odootest.New(b.t)
	odootest.SeedPOS(srv)
	b.env["PROMO_ODOO_URL"] = srv.URL
	b.env["PROMO_ODOO_DB"] = srv.DB
	b.env["PROMO_ODOO_LOGIN"] = srv.Login
	b.env["PROMO_ODOO_API_KEY"] = srv.APIKey
	require.NoError(b.t, streams.EnsureOdoo(b.ctx, b.js, events.NewSubjects(""), streams.DefaultOptions()))
	return srv
}

func TestOdooSyncRecordsTheOrdersTheEngineNeverReceived(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	srv := b.withOdoo()
	now := time.Now().UTC()
	for i, id := range []int64{3001, 3002, 3003} {
		srv.AddOrder(odootest.Order{ID: id, Partner: 77, WriteDate: odoo.FormatDatetime(now.Add(time.Duration(i-3) * time.Hour)),
			Lines: []odootest.Line{{ID: 30010 + id, Qty: 1, Price: 1000}}})
	}
	srv.AddOrder(odootest.Order{ID: 3004, State: "draft", WriteDate: odoo.FormatDatetime(now)})
	// The engine has processed 3001 already.
	_, err := b.pool.Exec(b.ctx, `INSERT INTO inbox (event_id, event_type, stream_seq) VALUES ('odoo1:pos.order:3001:paid', 'pos.order.paid', 1)`)
	require.NoError(t, err)

	res := b.run("odoo", "sync", "--since", "24h", "--dry-run")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	// SeedPOS's 1042 and 1043 have no write_date: outside any window.
	require.Contains(t, res.Stdout, "3 final orders in Odoo written since")
	require.Contains(t, res.Stdout, "1 processed by the engine, 2 not processed (dry run: nothing recorded)")
	require.Contains(t, res.Stdout, "orders: [3002 3003]")
	require.Zero(t, b.streamMsgs("PROMO_ODOO_ORDERS"))

	res = b.run("odoo", "sync", "--since", "150m", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var rep odoo.ReconcileReport
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	require.Equal(t, 2, rep.Examined, "3001 is older than 150 minutes")
	require.Equal(t, 2, rep.Recorded)
	require.Equal(t, []int64{3002, 3003}, rep.Missing)
	require.Equal(t, uint64(2), b.streamMsgs("PROMO_ODOO_ORDERS"))

	// Again: in flight, not recorded twice.
	res = b.run("odoo", "sync", "--since", "24h")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "1 processed by the engine, 0 recorded for read-back, 2 already recorded and in flight")
	require.Equal(t, uint64(2), b.streamMsgs("PROMO_ODOO_ORDERS"))

	res = b.run("odoo", "sync")
	require.Equal(t, 2, res.ExitCode)
	require.Contains(t, res.Stderr, "--since is required")
}

func TestDLQRedriveRebuildsAnOdooOrderFromOdoo(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	srv := b.withOdoo()
	b.applyCatalog(cliCatalog)
	// Odoo sold in USD while the catalog is in IDR: the order worker
	// dead-lettered the event as invalid_event.
	srv.AddOrder(odootest.Order{ID: 4001, Partner: 77, Currency: "USD", Lines: []odootest.Line{{ID: 40011, Qty: 2, Price: 1500}}})
	usd, err := odoo.POSOrderEvents(b.ctx, srv.Client(t, zerolog.Nop(), 5*time.Second), srv.DB, 4001)
	require.NoError(t, err)
	dl := consume.NewDeadLetterer(b.js, events.NewSubjects(""))
	require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS", Seq: 1,
		Header: nats.Header{jetstream.MsgIDHeader: []string{"odoo1:pos.order:4001:paid"}}, Data: usd.Events[0].Data,
		Code: events.DLQInvalidEvent, Message: "/order/currency: order 4001 is in \"USD\", the catalog in \"IDR\""}))
	// A dead letter that does not come from Odoo is refused by --rebuild.
	require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS", Seq: 2,
		Header: nats.Header{jetstream.MsgIDHeader: []string{"till-7"}}, Data: []byte(cliPaid("till-7", "drinks", "1", "3000")),
		Code: events.DLQInvalidEvent, Message: "x"}))

	// The cause is fixed in Odoo (the POS now sells in IDR).
	srv.AddOrder(odootest.Order{ID: 4001, Partner: 77, Currency: "IDR", Lines: []odootest.Line{{ID: 40011, Qty: 2, Price: 1500}}})
	res := b.run("dlq", "redrive", "--rebuild", "--all", "--code", events.DLQInvalidEvent)
	require.Equal(t, 1, res.ExitCode, res.Stdout)
	require.Contains(t, res.Stdout, "redriven 1 (invalid_event) → pos.orders.paid (POS_ORDERS seq 1, Nats-Msg-Id odoo1:pos.order:4001:paid:rebuild:1)")
	require.Contains(t, res.Stderr, `dead letter 2 (event "till-7") was not built from an Odoo order; redrive it without --rebuild`)
	require.Contains(t, res.Stdout, "redriven 1, failed 1")

	msg, err := b.js.Stream(b.ctx, "POS_ORDERS")
	require.NoError(t, err)
	raw, err := msg.GetMsg(b.ctx, 1)
	require.NoError(t, err)
	ev, err := events.Decode(raw.Data)
	require.NoError(t, err)
	require.Equal(t, "odoo1:pos.order:4001:paid", ev.EventID)
	require.Equal(t, "IDR", ev.Paid.Currency, "built afresh from Odoo, not the stale body")
	require.Equal(t, uint64(1), b.streamMsgs("PROMO_DLQ"), "the rebuilt one is gone, the other kept")

	// The engine processes it once.
	b.startEngine()
	require.Eventually(t, func() bool {
		seen, err := ledger.ProcessedEventIDs(b.ctx, b.pool, []string{"odoo1:pos.order:4001:paid"})
		return err == nil && seen["odoo1:pos.order:4001:paid"]
	}, 30*time.Second, 50*time.Millisecond)

	res = b.run("dlq", "redrive", "--rebuild", "2")
	require.Equal(t, 1, res.ExitCode)
	require.True(t, strings.Contains(res.Stderr, "was not built from an Odoo order"), res.Stderr)
}
