package odoo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
)

func TestOdooPOSOrderEventsPaid(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	odootest.SeedPOS(b.odoo)

	o, err := odoo.POSOrderEvents(context.Background(), b.c, "odoo1", odootest.PaidOrderID)
	require.NoError(t, err)
	require.True(t, o.Publishable())
	require.Equal(t, "Shop/0042", o.Name)
	require.Equal(t, []odoo.SkippedLine{{LineID: 3, Reason: "negative unit price: an Odoo discount or reward line, not goods"}}, o.Skipped)
	require.Len(t, o.Events, 1)
	require.JSONEq(t, `{"event_id": "odoo1:pos.order:1042:paid", "type": "pos.order.paid",
		"occurred_at": "2026-11-28T03:15:00Z", "company_id": "1", "pos_config_id": "3",
		"order": {"id": "1042", "name": "Shop/0042", "currency": "IDR", "customer_id": "77",
		  "lines": [
		    {"id": "1", "product_id": "501", "category_ids": ["12", "5", "1", "pos:4"], "tag_ids": ["8"], "qty": "2", "unit_price": "25000"},
		    {"id": "2", "product_id": "502", "category_ids": ["1"], "qty": "1", "unit_price": "9000"}]}}`,
		string(o.Events[0].Data))
	ev := o.Events[0].Event
	require.Equal(t, "odoo1:pos.order:1042:paid", ev.EventID)
	require.Equal(t, time.Date(2026, 11, 28, 3, 15, 0, 0, time.UTC), ev.OccurredAt.UTC())
}

func TestOdooPOSOrderEventsRefund(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	odootest.SeedPOS(b.odoo)

	o, err := odoo.POSOrderEvents(context.Background(), b.c, "odoo1", odootest.RefundOrderID)
	require.NoError(t, err)
	require.Empty(t, o.Skipped)
	require.Len(t, o.Events, 1)
	require.JSONEq(t, `{"event_id": "odoo1:pos.order:1043:returned", "type": "pos.order.returned",
		"occurred_at": "2026-11-29T08:00:00Z", "company_id": "1", "pos_config_id": "3",
		"order": {"id": "1043", "name": "Shop/0043", "original_order_id": "1042",
		  "lines": [{"line_id": "1", "qty": "1"}]}}`, string(o.Events[0].Data))
}

func TestOdooPOSOrderEventsExchangeAndSession(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	odootest.SeedPOS(b.odoo)
	// An exchange: one unit of line 1 back (twice, as two refund lines), a
	// new product sold; no config_id on the order, only its session.
	b.odoo.Add("pos.order", 1050, map[string]any{"name": "Shop/0050", "state": "done", "date_order": "2026-12-01 10:00:00.5",
		"partner_id": false, "company_id": []any{1, "My Shop Ltd"}, "config_id": false, "session_id": []any{9, "POS/00009"},
		"currency_id": []any{12, "IDR"}, "lines": []any{51, 52, 53, 54}})
	b.odoo.Add("pos.order.line", 51, map[string]any{"order_id": []any{1050, "x"}, "product_id": []any{501, "Cola"},
		"qty": -1.0, "price_unit": 25000.0, "discount": 0.0, "refunded_orderline_id": []any{1, "Cola"}})
	b.odoo.Add("pos.order.line", 52, map[string]any{"order_id": []any{1050, "x"}, "product_id": []any{501, "Cola"},
		"qty": -0.5, "price_unit": 25000.0, "discount": 0.0, "refunded_orderline_id": []any{1, "Cola"}})
	b.odoo.Add("pos.order.line", 53, map[string]any{"order_id": []any{1050, "x"}, "product_id": []any{502, "Chips"},
		"qty": 3.0, "price_unit": 1.15, "discount": 12.5, "refunded_orderline_id": false})
	b.odoo.Add("pos.order.line", 54, map[string]any{"order_id": []any{1050, "x"}, "product_id": []any{502, "Chips"},
		"qty": -1.0, "price_unit": 10000.0, "discount": 0.0, "refunded_orderline_id": false})

	o, err := odoo.POSOrderEvents(context.Background(), b.c, "odoo1", 1050)
	require.NoError(t, err)
	require.Len(t, o.Events, 2)
	require.JSONEq(t, `{"event_id": "odoo1:pos.order:1050:paid", "type": "pos.order.paid",
		"occurred_at": "2026-12-01T10:00:00.5Z", "company_id": "1", "pos_config_id": "3",
		"order": {"id": "1050", "name": "Shop/0050", "currency": "IDR",
		  "lines": [{"id": "53", "product_id": "502", "category_ids": ["1"], "qty": "3", "unit_price": "1.00625"}]}}`,
		string(o.Events[0].Data))
	require.JSONEq(t, `{"event_id": "odoo1:pos.order:1050:returned", "type": "pos.order.returned",
		"occurred_at": "2026-12-01T10:00:00.5Z", "company_id": "1", "pos_config_id": "3",
		"order": {"id": "1050", "name": "Shop/0050", "original_order_id": "1042",
		  "lines": [{"line_id": "1", "qty": "1.5"}]}}`, string(o.Events[1].Data))
	require.Len(t, o.Skipped, 1)
	require.Equal(t, int64(54), o.Skipped[0].LineID)
}

func TestOdooPOSOrderEventsNotPublishable(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	odootest.SeedPOS(b.odoo)

	o, err := odoo.POSOrderEvents(context.Background(), b.c, "odoo1", odootest.DraftOrderID)
	require.NoError(t, err)
	require.False(t, o.Publishable())
	require.Equal(t, "draft", o.State)
	require.Empty(t, o.Events)
	require.Empty(t, b.odoo.CallsTo("pos.order.line", "read"), "a draft order's lines are not read")

	_, err = odoo.POSOrderEvents(context.Background(), b.c, "odoo1", 999999)
	require.ErrorIs(t, err, odoo.ErrOrderNotFound)
}
