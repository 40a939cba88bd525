package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
)

func webhookBody(id int64, state string) []byte {
	return []byte(fmt.Sprintf(`{"_action": "Send Webhook Notification(#12)", "_id": %d, "_model": "pos.order",
		"name": "Shop/%04d", "state": %q, "company_id": 1, "config_id": 3}`, id, id%10000, state))
}

func (b *apiBundle) webhook(body []byte) response {
	return b.do("POST", "/v1/odoo/webhook?token="+webhookKey, "", body)
}

// recorded returns the order references on PROMO_ODOO_ORDERS.
func (b *apiBundle) recorded() []jetstream.RawStreamMsg {
	b.t.Helper()
	s, err := b.js.Stream(b.ctx, b.subjects.StreamOdooOrders())
	require.NoError(b.t, err)
	info, err := s.Info(b.ctx)
	require.NoError(b.t, err)
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(b.ctx, seq)
		require.NoError(b.t, err)
		out = append(out, *m)
	}
	return out
}

func TestWebhookRecordsTheOrderAndAnswersAtOnce(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{odoo: true})

	r := b.webhook(webhookBody(odootest.PaidOrderID, "paid"))
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	require.JSONEq(t, `{"status": "recorded", "order_id": "1042", "state": "paid", "stream_seq": 1, "duplicate": false}`, string(r.body))
	require.Empty(t, b.odoo.Calls(), "the webhook reads nothing from Odoo: the read-back worker does")

	msgs := b.recorded()
	require.Len(t, msgs, 1)
	require.Equal(t, "odoo:odoo1:pos.order:1042", msgs[0].Header.Get(jetstream.MsgIDHeader))
	ref, err := odoo.DecodeOrderRef(msgs[0].Data)
	require.NoError(t, err)
	require.Equal(t, odoo.OrderRef{DB: "odoo1", OrderID: 1042, Source: odoo.SourceWebhook, State: "paid",
		CompanyID: "1", POSConfigID: "3", RecordedAt: ref.RecordedAt}, ref)
	require.WithinDuration(t, time.Now(), ref.RecordedAt, time.Minute)

	// Odoo fires again (another save of the order): recorded once.
	r = b.webhook(webhookBody(odootest.PaidOrderID, "done"))
	require.Equal(t, http.StatusAccepted, r.status)
	require.Equal(t, true, r.json(t)["duplicate"])
	require.Len(t, b.recorded(), 1)

	// Without the optional fields (a rule that sends nothing but the id).
	r = b.webhook([]byte(`{"_action": "x", "_id": 1043, "_model": "pos.order"}`))
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	require.Equal(t, "recorded", r.json(t)["status"])
	require.Len(t, b.recorded(), 2)
}

func TestWebhookIgnoresOrdersNotFinalAndRefusesOtherPayloads(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{odoo: true})

	r := b.webhook(webhookBody(odootest.DraftOrderID, "draft"))
	require.Equal(t, http.StatusAccepted, r.status)
	require.Equal(t, "ignored", r.json(t)["status"])

	r = b.webhook(bytes.Repeat([]byte(" "), 1<<20+65<<10))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)

	r = b.webhook([]byte(`{"_action": "x", "_id": 5, "_model": "sale.order"}`))
	require.Equal(t, http.StatusBadRequest, r.status)
	_, details := r.errorBody(t)
	require.Equal(t, "/_model", details[0].(map[string]any)["pointer"])

	r = b.webhook([]byte(`{"_action": "x", "_id": "12", "_model": "pos.order"}`))
	require.Equal(t, http.StatusBadRequest, r.status)
	_, details = r.errorBody(t)
	require.Equal(t, "/_id", details[0].(map[string]any)["pointer"])

	r = b.webhook([]byte(`[1, 2]`))
	require.Equal(t, http.StatusBadRequest, r.status)

	require.Empty(t, b.recorded(), "nothing recorded")
	require.Empty(t, b.odoo.Calls())
}

func TestWebhookChecksTheStoreScope(t *testing.T) {
	t.Parallel()
	scope := &odoo.StoreScope{CompanyIDs: []string{"1"}, POSConfigIDs: []string{"3"}}
	b := setupAPI(t, apiOptions{odoo: true, scope: func(*http.Request) *odoo.StoreScope { return scope }})

	for _, body := range []string{
		`{"_id": 1042, "_model": "pos.order", "state": "paid", "company_id": 2, "config_id": 3}`,
		`{"_id": 1042, "_model": "pos.order", "state": "paid", "company_id": 1, "config_id": 4}`,
		`{"_id": 1042, "_model": "pos.order", "state": "paid"}`, // a scoped credential must name the store
	} {
		r := b.webhook([]byte(body))
		require.Equal(t, http.StatusForbidden, r.status, body)
		code, _ := r.errorBody(t)
		require.Equal(t, "forbidden_store", code)
	}
	require.Empty(t, b.recorded())

	r := b.webhook(webhookBody(odootest.PaidOrderID, "paid"))
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	msgs := b.recorded()
	require.Len(t, msgs, 1)
	ref, err := odoo.DecodeOrderRef(msgs[0].Data)
	require.NoError(t, err)
	require.Equal(t, scope, ref.Scope, "the scope travels with the order, to be checked again after the read-back")
}

func TestWebhookWithoutOdooOrJetStream(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	r := b.webhook(webhookBody(odootest.PaidOrderID, "paid"))
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeOdooNotConfigured, code)

	// The stream is gone (an operator deleted it): 503, send it again.
	b = setupAPI(t, apiOptions{odoo: true})
	require.NoError(t, b.js.DeleteStream(b.ctx, b.subjects.StreamOdooOrders()))
	r = b.webhook(webhookBody(odootest.PaidOrderID, "paid"))
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	code, _ = r.errorBody(t)
	require.Equal(t, api.CodeUnavailable, code)
}
