package api_test

import (
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// couponCatalog issues a coupon on every order of a customer.
const couponCatalog = testCatalog + `  - {id: thanks, layer: order, reward: {issue_coupon: {program: back, valid_days: 30}}}
  - {id: back, layer: order, when: {coupon: issued}, reward: {percent: "5"}}
`

const apiCouponSecret = "api-test-coupon-secret"

// An engine without PROMO_COUPON_SECRET refuses a catalog that issues
// coupons, naming the variable; with one it applies it.
func TestAPICatalogPutNeedsCouponSecret(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true})
	r := b.do("PUT", "/v1/catalog", adminKey, []byte(couponCatalog))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	code, details := r.errorBody(t)
	require.Equal(t, api.CodeInvalidCatalog, code)
	require.Len(t, details, 1)
	require.Contains(t, details[0].(map[string]any)["message"], "PROMO_COUPON_SECRET")
	require.Contains(t, details[0].(map[string]any)["message"], "program thanks issues coupons")
	_, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.ErrorIs(t, err, ledger.ErrNoCatalog, "nothing was applied")

	b = setupAPI(t, apiOptions{db: true, couponSecret: apiCouponSecret})
	r = b.do("PUT", "/v1/catalog", adminKey, []byte(couponCatalog))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
}

// GET /v1/customers/{id} lists the customer's coupons with their state.
func TestAPICustomerCoupons(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true, couponSecret: apiCouponSecret})
	cat := b.applyCatalog(couponCatalog)
	ev, err := events.Decode(paidEvent("odoo1:pos.order:1042:paid", "1042", "77"))
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := b.store.Process(b.ctx, tx, cat, ev, 1)
		return err
	}))
	r := b.do("GET", "/v1/customers/77", posKey, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	coupons := r.json(t)["coupons"].([]any)
	require.Len(t, coupons, 1)
	c := coupons[0].(map[string]any)
	require.Equal(t, ledger.CouponCode([]byte(apiCouponSecret), "odoo1:pos.order:1042:paid", "thanks"), c["code"])
	require.Equal(t, "back", c["program_id"])
	require.Equal(t, "2026-12-28T10:15:00+07:00", c["valid_until"], "30 days from occurred_at")
	require.Equal(t, ledger.CouponStateIssued, c["state"], "unused and valid now (28 November)")
}
