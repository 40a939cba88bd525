package loyalty_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/pkg/dec"
)

// fakeOdoo holds the recorded programs and an order paid with three
// rewards: Ann's coupon 4 of "Coupon 15%" scanned (program 11), the code
// WELCOME5 (program 10, a throwaway card 30 made by the order), and a next
// order coupon (program 12) issued as card 31.
func fakeOdoo(t *testing.T, withModule bool) *odootest.Server {
	t.Helper()
	srv := odootest.New(t)
	data, err := os.ReadFile(filepath.Join("testdata", "odoo17_programs.json"))
	require.NoError(t, err)
	srv.LoadModels(t, data)
	if withModule {
		srv.AddField("pos.order", loyalty.OrderPointsField)
	}
	srv.Add(loyalty.ModelCard, 20, map[string]any{"program_id": []any{13, "Loyalty card"}, "code": "0441", "points": 30.2,
		"expiration_date": false, "source_pos_order_id": false, "partner_id": []any{10, "Ann"}})
	for id, program := range map[int64]int64{30: 10, 31: 12} {
		srv.Add(loyalty.ModelCard, id, map[string]any{"program_id": []any{program, "p"}, "code": "new-" + string(rune('0'+id%10)),
			"points": 1.0, "expiration_date": false, "source_pos_order_id": []any{7001, "Shop/7001"}, "partner_id": false})
	}
	srv.AddOrder(odootest.Order{ID: 7001, Partner: 10, Currency: "USD", Lines: []odootest.Line{
		{ID: 1, Product: 13, Qty: 10, Price: 3},
		{ID: 2, Product: 1, Qty: 1, Price: -4.5, Reward: 11, Coupon: 4, PointsCost: 1},
		{ID: 3, Product: 1, Qty: 1, Price: -5, Reward: 10, Coupon: 30, PointsCost: 1},
		{ID: 4, Product: 1, Qty: 2, Price: -0.3, Reward: 13, Coupon: 20, PointsCost: 100}},
		LoyaltyPoints: `[{"program_id": 12, "card_id": 31, "code": "new-1", "points": 1, "balance": 1.0, "created": true, "line_codes": []},
			{"program_id": 13, "card_id": 20, "code": "0441", "points": -90.3, "balance": 30.2, "created": false, "line_codes": ["r4"]}]`})
	return srv
}

func TestOrderReaderReadsWhatOdoosLoyaltyGave(t *testing.T) {
	t.Parallel()
	srv := fakeOdoo(t, true)
	r := loyalty.NewOrderReader(srv.Client(t, zerolog.Nop(), 5*time.Second))
	o, err := r.Read(t.Context(), 7001)
	require.NoError(t, err)
	require.Equal(t, int64(10), o.PartnerID)
	require.Equal(t, int64(1), o.CompanyID)
	require.Equal(t, int64(3), o.POSConfigID)
	require.Len(t, o.Rewards, 3)
	require.Equal(t, "044b-11b5-439c", o.Rewards[0].Code, "the coupon scanned: its card's code")
	require.Equal(t, int64(11), o.Rewards[0].ProgramID)
	require.Equal(t, "4.5", o.Rewards[0].Amount.String())
	require.Equal(t, "WELCOME5", o.Rewards[1].Code, "a card the order made: the program's code")
	require.Empty(t, o.Rewards[2].Code, "an automatic reward")
	require.Equal(t, "0.6", o.Rewards[2].Amount.String(), "-0.3 × 2")
	require.Equal(t, []loyalty.IssuedCard{{CardID: 31, ProgramID: 12, Code: "new-1", Points: dec.One}}, o.Issued,
		"the next order coupon; the throwaway card of the code is not one")
	require.True(t, o.PointsRecorded)
	won, ok := o.Won(13)
	require.True(t, ok)
	require.Equal(t, "9.7", won.String(), "-90.3 recorded + 100 spent")
	require.Equal(t, "100", o.Spent(13).String())
	require.Equal(t, "Loyalty card", o.Programs[13].Name)
	require.Equal(t, []string{"WELCOME5"}, o.Programs[10].Codes)

	_, err = r.Read(t.Context(), 9999)
	require.ErrorIs(t, err, loyalty.ErrOrderMissing)
}

func TestOrderReaderWithoutTheModule(t *testing.T) {
	t.Parallel()
	srv := fakeOdoo(t, false)
	r := loyalty.NewOrderReader(srv.Client(t, zerolog.Nop(), 5*time.Second))
	for range 2 {
		o, err := r.Read(t.Context(), 7001)
		require.NoError(t, err)
		require.False(t, o.PointsRecorded)
		require.Len(t, o.Rewards, 3)
		_, ok := o.Won(13)
		require.False(t, ok)
	}
	refused := 0
	for _, c := range srv.CallsTo("pos.order", "search_read") {
		if strings.Contains(string(c.Kwargs["fields"]), loyalty.OrderPointsField) {
			refused++
		}
	}
	require.Equal(t, 1, refused, "asked once for the field Odoo does not have, then remembered")
}

func FuzzDecodePointChanges(f *testing.F) {
	f.Add(`[{"program_id": 13, "card_id": 20, "code": "0441", "points": -90.3, "balance": 30.2, "created": false, "line_codes": ["r4"]}]`)
	f.Add(`[{"program_id": 12, "card_id": false, "code": false, "points": 1, "balance": false, "created": true}]`)
	f.Add(``)
	f.Add(`{}`)
	f.Add(`[{"program_id": 1, "points": 1e999999}]`)
	f.Fuzz(func(t *testing.T, text string) {
		changes, err := loyalty.DecodePointChanges(text)
		if err != nil {
			require.ErrorIs(t, err, loyalty.ErrBadPointChanges)
			require.Nil(t, changes)
			return
		}
		for _, c := range changes {
			require.Positive(t, c.ProgramID)
		}
	})
}
