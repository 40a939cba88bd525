package odoo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
)

func TestOdooParseEventID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id    string
		db    string
		order int64
		ok    bool
	}{
		{"odoo1:pos.order:1042:paid", "odoo1", 1042, true},
		{"odoo1:pos.order:1043:returned", "odoo1", 1043, true},
		{"shop-prod:pos.order:7:returned:1042", "shop-prod", 7, true},
		{"odoo1:pos.order:1042:cancelled", "", 0, false},
		{"odoo1:pos.order:x:paid", "", 0, false},
		{"odoo1:pos.order:0:paid", "", 0, false},
		{":pos.order:1:paid", "", 0, false},
		{"till-7", "", 0, false},
		{"odoo1:pos.order:1042:paid:rebuild:3", "", 0, false},
	} {
		db, order, ok := odoo.ParseEventID(tc.id)
		require.Equal(t, tc.ok, ok, tc.id)
		require.Equal(t, tc.db, db, tc.id)
		require.Equal(t, tc.order, order, tc.id)
		if ok && tc.order == 1042 {
			require.Equal(t, tc.id, odoo.PaidEventID(db, order))
		}
	}
}

func TestOdooStoreScope(t *testing.T) {
	t.Parallel()
	var none *odoo.StoreScope
	require.True(t, none.Allows("", ""))
	require.True(t, none.Unscoped())
	companies := &odoo.StoreScope{CompanyIDs: []string{"1", "2"}}
	require.True(t, companies.Allows("2", ""))
	require.False(t, companies.Allows("3", "9"))
	require.False(t, companies.Allows("", "9"), "a company not sent is outside")
	both := &odoo.StoreScope{CompanyIDs: []string{"1"}, POSConfigIDs: []string{"3"}}
	require.True(t, both.Allows("1", "3"))
	require.False(t, both.Allows("1", "4"))
	require.False(t, both.Unscoped())
	require.True(t, (&odoo.StoreScope{}).Unscoped())
}

func TestOdooDecodeOrderRef(t *testing.T) {
	t.Parallel()
	ref, err := odoo.DecodeOrderRef([]byte(`{"db":"odoo1","order_id":1042,"source":"webhook","recorded_at":"2026-11-28T03:15:00Z","state":"paid","scope":{"company_ids":["1"]}}`))
	require.NoError(t, err)
	require.Equal(t, "odoo:odoo1:pos.order:1042", ref.MsgID())
	require.Equal(t, []string{"1"}, ref.Scope.CompanyIDs)
	for _, bad := range []string{`{}`, `{"db":"odoo1"}`, `{"db":"","order_id":1}`, `{"db":"x","order_id":-1}`, `nope`, `{"order_id":"12","db":"x"}`} {
		_, err := odoo.DecodeOrderRef([]byte(bad))
		require.ErrorIs(t, err, odoo.ErrBadOrderRef, bad)
	}
}

func FuzzOdooDecodeOrderRef(f *testing.F) {
	f.Add([]byte(`{"db":"odoo1","order_id":1042,"source":"webhook"}`))
	f.Add([]byte(`{"db":"odoo1","order_id":1,"scope":{"company_ids":[]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ref, err := odoo.DecodeOrderRef(data)
		if err != nil {
			require.ErrorIs(t, err, odoo.ErrBadOrderRef)
			return
		}
		require.NotEmpty(t, ref.DB)
		require.Positive(t, ref.OrderID)
	})
}

func TestOdooFailureReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, "not_found", odoo.FailureReason(fmt.Errorf("x: %w", odoo.ErrOrderNotFound)))
	require.Equal(t, "access_denied", odoo.FailureReason(odoo.ErrAccessDenied))
	require.Equal(t, "http", odoo.FailureReason(&odoo.HTTPError{StatusCode: 502}))
	require.Equal(t, "transport", odoo.FailureReason(&odoo.TransportError{Op: "x", Err: errors.New("refused")}))
	require.Equal(t, "timeout", odoo.FailureReason(&odoo.TransportError{Op: "x", Err: context.DeadlineExceeded}))
	require.Equal(t, "rpc", odoo.FailureReason(&odoo.Error{DataName: "builtins.KeyError"}))
	require.Equal(t, "other", odoo.FailureReason(errors.New("x")))
}

func TestOdooChangedOrdersPagesOldestFirst(t *testing.T) {
	t.Parallel()
	srv := odootest.New(t)
	c := srv.Client(t, zerolog.Nop(), 5*time.Second)
	base := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	const n = 1203 // three pages
	for i := range n {
		srv.AddOrder(odootest.Order{ID: int64(10000 + i), WriteDate: odoo.FormatDatetime(base.Add(time.Duration(n-i) * time.Second)),
			Lines: []odootest.Line{{ID: int64(20000 + i), Qty: 1, Price: 1}}})
	}
	srv.AddOrder(odootest.Order{ID: 9999, State: "draft", WriteDate: odoo.FormatDatetime(base.Add(time.Hour))})
	var got []odoo.ChangedOrder
	require.NoError(t, odoo.ChangedOrders(context.Background(), c, base.Add(4*time.Second), base.Add(time.Duration(n)*time.Second),
		func(page []odoo.ChangedOrder) error { got = append(got, page...); return nil }))
	require.Len(t, got, n-4, "[since, until): the newest is at until, excluded; the 3 oldest are before since")
	for i := 1; i < len(got); i++ {
		require.False(t, got[i].WriteDate.Before(got[i-1].WriteDate), "oldest write first")
	}
	require.Len(t, srv.CallsTo("pos.order", "search_read"), 3)
}
