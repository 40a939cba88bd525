package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

func TestOrdersEventProducesExactlyOneResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})

	b.publish(b.subjects.OrdersPaid(), paidEvent("e1", "c1", line("1", "drinks", "2", "15000"), line("2", "food", "1", "5000")), "e1")
	rs := b.waitResults("e1")
	b.waitQuiet()

	require.Len(t, rs["e1"], 1)
	r := rs["e1"][0]
	require.Equal(t, "applied", r["status"])
	require.Equal(t, "result:e1", r["event_id"])
	// Drinks 30000 − 10% = 27000, food 5000: net 32000, 32 points.
	require.Equal(t, map[string]any{"gross": "35000", "discount": "3000", "net": "32000"}, r["totals"])
	require.Equal(t, "32", r["points"].(map[string]any)["earned"])
	require.Equal(t, 1, b.count(`SELECT count(*) FROM inbox`))
	msgs := b.streamMsgs(b.subjects.StreamResults())
	require.Len(t, msgs, 1)
	require.Equal(t, "result:e1", msgs[0].Header.Get(jetstream.MsgIDHeader), "results carry their event_id as Nats-Msg-Id")
}

func TestOrdersSameEventTwiceChangesStateOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev := paidEvent("dup", "c1", line("1", "food", "1", "10000"))
	// Once with its id, once more with the same id (JetStream drops it), and
	// once with another Nats-Msg-Id (JetStream stores it; the inbox skips it).
	b.publish(b.subjects.OrdersPaid(), ev, "dup")
	b.publish(b.subjects.OrdersPaid(), ev, "dup")
	b.publish(b.subjects.OrdersPaid(), ev, "dup-again")
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.waitResults("dup")
	b.waitQuiet()

	require.Len(t, b.results()["dup"], 1)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM inbox`))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM point_lots WHERE customer_id = 'c1'`))
}

func TestOrdersMalformedEventIsDeadLetteredAndStreamGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})

	bad := []byte("{not json")
	msg := &nats.Msg{Subject: b.subjects.OrdersPaid(), Data: bad, Header: nats.Header{"X-Till": []string{"till-7"}}}
	ack, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(t, err)
	badQty := paidEvent("bad-qty", "c1", line("1", "food", "-1", "1000"))
	ackQty := b.publish(b.subjects.OrdersPaid(), badQty, "bad-qty")
	b.publish(b.subjects.OrdersPaid(), paidEvent("ok", "c1", line("1", "food", "1", "1000")), "ok")
	b.waitResults("ok")
	b.waitQuiet()

	letters := b.streamMsgs(b.subjects.StreamDLQ())
	require.Len(t, letters, 2)
	first := letters[0]
	require.Equal(t, "promo.dlq.pos.orders.paid", first.Subject)
	require.Equal(t, bad, first.Data, "the original bytes, byte for byte")
	require.Equal(t, "till-7", first.Header.Get("X-Till"), "the original headers are kept")
	require.Equal(t, events.DLQInvalidEvent, first.Header.Get(events.HeaderErrorCode))
	require.Contains(t, first.Header.Get(events.HeaderErrorMessage), "not valid JSON")
	require.Equal(t, "pos.orders.paid", first.Header.Get(events.HeaderOriginalSubject))
	require.Equal(t, fmt.Sprint(ack.Sequence), first.Header.Get(events.HeaderOriginalSeq))
	_, err = time.Parse(time.RFC3339Nano, first.Header.Get(events.HeaderFailedAt))
	require.NoError(t, err)

	second := letters[1]
	require.Equal(t, badQty, second.Data)
	require.Equal(t, fmt.Sprint(ackQty), second.Header.Get(events.HeaderOriginalSeq))
	require.Contains(t, second.Header.Get(events.HeaderErrorMessage), "/order/lines/0/qty", "the message names the field")
	require.Len(t, b.results()["ok"], 1)
}

func TestOrdersEventOnWrongSubjectIsDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.publish("pos.orders.returned", paidEvent("misrouted", "c1", line("1", "food", "1", "1000")), "misrouted")
	b.publish("pos.orders.typo", paidEvent("typo", "c1", line("1", "food", "1", "1000")), "typo")
	b.waitQuiet()
	letters := b.streamMsgs(b.subjects.StreamDLQ())
	require.Len(t, letters, 2)
	require.Equal(t, "promo.dlq.pos.orders.returned", letters[0].Subject)
	require.Equal(t, "promo.dlq.pos.orders.typo", letters[1].Subject)
	require.Contains(t, letters[0].Header.Get(events.HeaderErrorMessage), "/type")
}

// A worker that dies after its transaction committed and before it acked
// loses nothing and duplicates nothing: the redelivered events find their
// inbox rows.
func TestOrdersCrashBetweenCommitAndAck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%d", i)
		b.publish(b.subjects.OrdersPaid(), paidEvent(ids[i], fmt.Sprintf("c%d", i%7), line("1", "food", "1", "10000")), ids[i])
	}
	var committed atomic.Int64
	crashed := b.startOrders(OrdersHooks{AfterCommit: func(ids []string) error {
		committed.Add(int64(len(ids)))
		return errors.New("crash before ack")
	}})
	require.Eventually(t, func() bool { return committed.Load() == n }, 30*time.Second, 20*time.Millisecond)
	crashed.Stop()
	require.Equal(t, n, b.count(`SELECT count(*) FROM inbox`))

	b.startOrders(OrdersHooks{}) // the restarted worker gets the redeliveries
	b.startRelay(OutboxRelayHooks{})
	b.waitResults(ids...)
	b.waitQuiet()

	rs := b.results()
	for _, id := range ids {
		require.Len(t, rs[id], 1, id)
	}
	require.Len(t, b.streamMsgs(b.subjects.StreamResults()), n)
	require.Equal(t, n, b.count(`SELECT count(*) FROM point_lots`))
	require.Equal(t, n*10, b.count(`SELECT COALESCE(sum(original), 0)::int FROM point_lots`))
}

// A relay that dies after JetStream stored the results and before it
// deleted their rows publishes them again on restart, with the same
// Nats-Msg-Id: subscribers see each result once.
func TestRelayCrashBetweenPublishAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 25
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("relay-%d", i)
		b.publish(b.subjects.OrdersPaid(), paidEvent(ids[i], "c1", line("1", "food", "1", "1000")), ids[i])
	}
	b.startOrders(OrdersHooks{})
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM inbox`) == n }, 30*time.Second, 20*time.Millisecond)

	var published atomic.Int64
	crashed := b.startRelay(OutboxRelayHooks{AfterPublish: func(ids []string) error {
		published.Add(int64(len(ids)))
		return errors.New("crash before delete")
	}})
	require.Eventually(t, func() bool { return published.Load() >= n }, 30*time.Second, 20*time.Millisecond)
	crashed.Stop()
	require.Equal(t, n, b.count(`SELECT count(*) FROM outbox`), "rows stay until deleted")
	require.Len(t, b.streamMsgs(b.subjects.StreamResults()), n, "they were published once already")

	b.startRelay(OutboxRelayHooks{})
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM outbox`) == 0 }, 30*time.Second, 20*time.Millisecond)
	msgs := b.streamMsgs(b.subjects.StreamResults())
	require.Len(t, msgs, n, "the second publish was recognised as a duplicate")
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		require.False(t, seen[id], id)
		seen[id] = true
	}
}

// Two worker processes on one durable consumer never hold one customer at
// the same time: each batch locks its customers' rows first.
func TestTwoWorkersNeverProcessOneCustomerConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	active := map[string]int{}
	var overlaps atomic.Int64
	var batches [2]atomic.Int64
	hooks := func(worker int) OrdersHooks {
		return OrdersHooks{
			InLock: func(customers []string) {
				batches[worker].Add(1)
				mu.Lock()
				for _, c := range customers {
					active[c]++
					if active[c] > 1 {
						overlaps.Add(1)
					}
				}
				mu.Unlock()
				time.Sleep(time.Millisecond) // widen the window a broken lock would show in
			},
			Releasing: func(customers []string) {
				mu.Lock()
				for _, c := range customers {
					active[c]--
				}
				mu.Unlock()
			},
		}
	}
	n0 := b.startOrders(hooks(0))
	n1 := b.startOrders(hooks(1))
	b.startRelay(OutboxRelayHooks{})
	b.waitShared(n0, n1)

	// Enough customers that both processes own some of their partitions
	// (which process owns what depends on the process ids).
	const n, customers = 320, 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("two-%d", i)
		b.publish(b.subjects.OrdersPaid(), paidEvent(ids[i], fmt.Sprintf("c%d", i%customers), line("1", "food", "1", "1000")), ids[i])
	}
	b.waitResults(ids...)
	b.waitQuiet()

	require.Zero(t, overlaps.Load(), "a customer was processed by two transactions at once")
	require.Positive(t, batches[0].Load(), "worker 0 took part")
	require.Positive(t, batches[1].Load(), "worker 1 took part")
	for c := 0; c < customers; c++ {
		require.Equal(t, n/customers, b.count(`SELECT count(*) FROM point_lots WHERE customer_id = $1`, fmt.Sprintf("c%d", c)))
	}
}

// In one process, a customer's events take effect in stream order: their
// results come out in the order the events went in.
func TestOrdersKeepCustomerOrderInProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ord-%02d", i)
		b.publish(b.subjects.OrdersPaid(), paidEvent(ids[i], "same-customer", line("1", "food", "1", "1000")), ids[i])
	}
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.waitResults(ids...)
	var got []string
	for _, m := range b.streamMsgs(b.subjects.StreamResults()) {
		got = append(got, m.Header.Get(jetstream.MsgIDHeader))
	}
	want := make([]string, n)
	for i, id := range ids {
		want[i] = "result:" + id
	}
	require.Equal(t, want, got)
	// Balances grow by one point per event, in order.
	for i, id := range ids {
		r := b.results()[id][0]
		require.Equal(t, fmt.Sprint(i+1), r["points"].(map[string]any)["balance"], id)
	}
}

// Stop finishes the batches in flight: everything fetched is either
// committed and acknowledged or handed back at once (nak), so a new worker
// takes over without waiting for the ack wait to expire.
func TestOrdersGracefulStopAcksInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.ackWait = 30 * time.Second // a message left unsettled would wait this long
	const n = 200
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("stop-%d", i)
		b.publish(b.subjects.OrdersPaid(), paidEvent(id, fmt.Sprintf("c%d", i%20), line("1", "food", "1", "1000")), id)
	}
	// Each transaction holds on a moment before committing, so that the
	// stream cannot be through before Stop comes (it was, at times, once
	// batches got faster).
	o := b.startOrders(OrdersHooks{BeforeCommit: func(context.Context, pgx.Tx, []string) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	}})
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM inbox`) > 0 }, 30*time.Second, 5*time.Millisecond)
	o.Stop()
	stoppedAt := time.Now()
	processed := b.count(`SELECT count(*) FROM inbox`)
	require.Less(t, processed, n, "stopped mid-stream")

	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM inbox`) == n }, 20*time.Second, 20*time.Millisecond)
	require.Less(t, time.Since(stoppedAt), b.ackWait, "nothing waited for the ack wait: all was settled at stop")
	b.waitQuiet()
	require.Len(t, b.streamMsgs(b.subjects.StreamResults()), n)
}

// A statement of the bulk path that fails with no event to blame (here a
// trigger refusing one order) sends the batch through one event at a time,
// which sets the guilty event apart; the others commit.
func TestOrdersBulkFailureFallsBackToOneEventAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, `
		CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.order_id = 'o-poison' THEN RAISE EXCEPTION 'poisoned order'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_poison BEFORE INSERT ON processed_orders FOR EACH ROW EXECUTE FUNCTION refuse_poison();`)
	require.NoError(t, err)
	var ids []string
	for i := range 9 {
		id := fmt.Sprintf("fine-%d", i)
		ids = append(ids, id)
		if i == 4 {
			b.publish(b.subjects.OrdersPaid(), paidEvent("poison", "c1", line("1", "food", "1", "1000")), "poison")
		}
		b.publish(b.subjects.OrdersPaid(), paidEvent(id, fmt.Sprintf("c%d", i%3), line("1", "food", "1", "1000")), id)
	}
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.waitResults(ids...)
	require.Empty(t, b.results()["poison"])
	require.Equal(t, 9, b.count(`SELECT count(*) FROM inbox`))
	require.Zero(t, b.count(`SELECT count(*) FROM inbox WHERE event_id = 'poison'`))
}

// A stopping relay publishes what is in the outbox instead of leaving it to
// the next start (rows inserted here send no NOTIFY, and the poll is an
// hour away: only the drain at stop can publish them).
func TestRelayPublishesTheOutboxWhenStopping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := NewOutboxRelay(b.pool, b.js, b.subjects, b.metrics, b.log)
	r.PollInterval = time.Hour
	r.Start(b.ctx)
	t.Cleanup(r.Stop)

	insert := func(id string) {
		_, err := b.pool.Exec(b.ctx, `INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, '{}')`, id, b.subjects.ResultsOrder())
		require.NoError(t, err)
	}
	insert("first")
	_, err := b.pool.Exec(b.ctx, `NOTIFY promo_outbox`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return len(b.streamMsgs(b.subjects.StreamResults())) == 1 && b.count(`SELECT count(*) FROM outbox`) == 0
	}, 30*time.Second, 20*time.Millisecond, "the relay leads and publishes")

	for _, id := range []string{"a", "b", "c"} {
		insert(id)
	}
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 3, b.count(`SELECT count(*) FROM outbox`), "nothing woke the relay")
	r.Stop()
	require.Zero(t, b.count(`SELECT count(*) FROM outbox`))
	require.Len(t, b.streamMsgs(b.subjects.StreamResults()), 4)
}
