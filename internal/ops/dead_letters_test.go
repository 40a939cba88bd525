package ops_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/events"
)

// A return dead-lettered as unknown_original_order, redriven once its
// order exists, is processed and leaves the dead-letter stream; the
// republished message carries the original bytes and headers, without the
// Promo-* ones, under a fresh message id.
func TestRedriveAfterFixUpstream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.startEngine(2, config.WorkerOrders, config.WorkerOutbox)

	body := returned("r1", "1", "1")
	msg := &nats.Msg{Subject: "pos.orders.returned", Data: []byte(body), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "t:pos.order:r1:returned")
	msg.Header.Set("Odoo-Db", "shop")
	ack, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(t, err)
	b.eventually("the dead letter", func() bool { return len(b.messages(b.subjects.StreamDLQ())) == 1 })

	letters, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, letters, 1)
	d := letters[0]
	require.Equal(t, events.DLQUnknownOriginalOrder, d.Code)
	require.Equal(t, "pos.orders.returned", d.OriginalSubject)
	require.Equal(t, "promo.dlq.pos.orders.returned", d.Subject)
	require.Equal(t, ack.Sequence, d.OriginalSeq)
	require.Equal(t, "POS_ORDERS", d.OriginalStream)
	require.Equal(t, "t:pos.order:r1:returned", d.MsgID)
	require.Equal(t, len(body), d.Size)
	require.Nil(t, d.Data, "list reads headers only")
	require.Contains(t, d.Message, "unknown original order")
	require.False(t, d.FailedAt.IsZero())

	full, err := b.op.DeadLetter(b.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, body, string(full.Data))
	require.Equal(t, "shop", full.Header.Get("Odoo-Db"))
	require.Equal(t, events.DLQUnknownOriginalOrder, full.Header.Get(events.HeaderErrorCode))

	// Fixed upstream: the order arrives.
	b.publish([]byte(paid("1", "c1", "drinks", "2", "5000")))
	b.settled()

	r, err := b.op.RedriveDeadLetter(b.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, "pos.orders.returned", r.Subject)
	require.Equal(t, "POS_ORDERS", r.Stream)
	require.False(t, r.Duplicate)
	require.Equal(t, "t:pos.order:r1:returned:redrive:1", r.MsgID)
	b.eventually("the return's result", func() bool { return len(b.results()["t:pos.order:r1:returned"]) == 1 })
	b.settled()
	require.Empty(t, b.messages(b.subjects.StreamDLQ()), "the dead letter left")
	require.Equal(t, "applied", b.results()["t:pos.order:r1:returned"][0]["status"])

	republished, err := b.js.Stream(b.ctx, "POS_ORDERS")
	require.NoError(t, err)
	m, err := republished.GetMsg(b.ctx, r.Seq)
	require.NoError(t, err)
	require.Equal(t, body, string(m.Data))
	require.Equal(t, "shop", m.Header.Get("Odoo-Db"))
	require.Equal(t, r.MsgID, m.Header.Get(jetstream.MsgIDHeader))
	for k := range m.Header {
		require.False(t, strings.HasPrefix(k, "Promo-"), "header %s was copied", k)
	}

	_, err = b.op.RedriveDeadLetter(b.ctx, d.ID)
	require.ErrorIs(t, err, ops.ErrDeadLetterNotFound)
}

// A redrive that published but could not delete is finished by running it
// again: the republish is a duplicate, and the dead letter goes.
func TestRedriveTwiceIsOnePublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dl := consume.NewDeadLetterer(b.js, b.subjects)
	body := paid("1", "", "drinks", "1", "1000")
	require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS", Seq: 7,
		Header: nats.Header{jetstream.MsgIDHeader: []string{"t:pos.order:1:paid"}}, Data: []byte(body),
		Code: events.DLQProcessingFailed, Message: "database down"}))
	letters, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{})
	require.NoError(t, err)
	id := letters[0].ID

	// Simulate the first attempt: published, not deleted.
	first := &nats.Msg{Subject: "pos.orders.paid", Data: []byte(body), Header: nats.Header{}}
	first.Header.Set(jetstream.MsgIDHeader, "t:pos.order:1:paid:redrive:1")
	_, err = b.js.PublishMsg(b.ctx, first)
	require.NoError(t, err)

	r, err := b.op.RedriveDeadLetter(b.ctx, id)
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.Len(t, b.messages("POS_ORDERS"), 1)
	require.Empty(t, b.messages(b.subjects.StreamDLQ()))
}

func TestRedriveAllAndPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dl := consume.NewDeadLetterer(b.js, b.subjects)
	send := func(id, code string) {
		require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS",
			Header: nats.Header{jetstream.MsgIDHeader: []string{id}}, Data: []byte(paid(id, "", "drinks", "1", "1000")),
			Code: code, Message: "boom"}))
	}
	send("a", events.DLQProcessingFailed)
	send("b", events.DLQInvalidEvent)
	send("c", events.DLQProcessingFailed)
	send("d", events.DLQInvalidEvent)

	counts, err := b.op.DeadLettersByCode(b.ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{events.DLQProcessingFailed: 2, events.DLQInvalidEvent: 2}, counts)

	only, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{Code: events.DLQInvalidEvent})
	require.NoError(t, err)
	require.Len(t, only, 2)
	require.Equal(t, []uint64{2, 4}, []uint64{only[0].ID, only[1].ID})

	var each []uint64
	prog := &recordingProgress{}
	rep, err := b.op.RedriveDeadLetters(b.ctx, ops.DeadLetterFilter{Code: events.DLQProcessingFailed}, prog,
		func(r *ops.Redriven, err error) {
			require.NoError(t, err)
			each = append(each, r.ID)
		})
	require.NoError(t, err)
	require.Len(t, rep.Redriven, 2)
	require.Empty(t, rep.Failed)
	require.Equal(t, []uint64{1, 3}, each)
	require.Equal(t, int64(2), prog.last)
	require.Len(t, b.messages("POS_ORDERS"), 2)

	purged, err := b.op.PurgeDeadLetter(b.ctx, 2)
	require.NoError(t, err)
	require.Equal(t, events.DLQInvalidEvent, purged.Code)
	_, err = b.op.PurgeDeadLetter(b.ctx, 2)
	require.ErrorIs(t, err, ops.ErrDeadLetterNotFound)
	_, err = b.op.DeadLetter(b.ctx, 99)
	require.ErrorIs(t, err, ops.ErrDeadLetterNotFound)
	left, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, uint64(4), left[0].ID)
}

// A dead letter whose original subject is itself a dead-letter subject is
// not redriven (it would loop).
func TestRedriveRefusesDeadLetterSubject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := &nats.Msg{Subject: "promo.dlq.x", Data: []byte("{}"), Header: nats.Header{}}
	msg.Header.Set(events.HeaderOriginalSubject, "promo.dlq.y")
	_, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(t, err)
	_, err = b.op.RedriveDeadLetter(b.ctx, 1)
	require.ErrorContains(t, err, "refusing to redrive")
	require.Len(t, b.messages(b.subjects.StreamDLQ()), 1)
}
