package ledger_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// A random sequence of orders, redemptions, returns, cancellations,
// redeliveries and job runs keeps every customer's lots and journal in
// agreement, never overdraws, and gives back exactly the whole of every
// cancelled order.
func TestRandomSequenceReconciles(t *testing.T) {
	t.Parallel()
	catalogs := map[string]string{
		"whole": catalogWith("programs: []", `programs:
  - {id: ten, layer: item, priority: 1, reward: {percent: "10", on: lines}}
  - {id: pot, layer: order, priority: 1, limits: {budget: "20000", total_uses: 15}, reward: {amount: "2500", on: order}}`),
		"decimals": `
currency: IDR
money_decimals: 2
timezone: Asia/Jakarta
points:
  decimals: 2
  earn: [{per_amount: "1000", points: "1.5"}]
  expiry: {days: 10}
  pending_days: 1
  redeem: {value: "1", min: "1", max_share: "0.5"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 7}
      retention_days: 3
      downgrade: to_qualified
      levels:
        - {id: bronze, min: "0"}
        - {id: silver, min: "50000", discount_percent: "3", points_multiplier: "1.5"}
        - {id: gold, min: "150000", discount_percent: "7", points_multiplier: "2"}
programs:
  - {id: third, layer: item, priority: 1, reward: {percent: "33.3", on: lines}}
`,
	}
	for name, doc := range catalogs {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				t.Parallel()
				runRandomSequence(t, doc, seed, 120)
			})
		}
	}
}

type soldOrder struct {
	id       string
	lines    map[string]int // line id → qty sold
	returned map[string]int
}

func runRandomSequence(t *testing.T, doc string, seed uint64, steps int) {
	b := setup(t, doc)
	rng := rand.New(rand.NewPCG(seed, 42))
	customers := []string{"c0", "c1", "c2", "c3"}
	now := mustTime(t, "2026-01-01T08:00:00+07:00")
	var orders []*soldOrder
	var last *events.Event
	n := 0
	at := func() string { return now.Format(time.RFC3339) }

	for range steps {
		now = now.Add(time.Duration(rng.IntN(48*60)) * time.Minute)
		n++
		var ev *events.Event
		switch r := rng.IntN(100); {
		case r < 50 || len(orders) == 0:
			customer := ""
			if rng.IntN(5) > 0 {
				customer = customers[rng.IntN(len(customers))]
			}
			var lines []line
			for i := range 1 + rng.IntN(3) {
				lines = append(lines, line{id: fmt.Sprint(i + 1), qty: fmt.Sprint(1 + rng.IntN(4)), price: fmt.Sprint(1000 + rng.IntN(60000))})
			}
			redeem := ""
			if customer != "" && rng.IntN(3) == 0 {
				v, err := b.store.Customer(b.ctx, b.pool, customer, now, b.cat)
				if err == nil && v.Balance.Sign() > 0 {
					redeem = dec.Mul(v.Balance, dec.MustParse(fmt.Sprintf("0.%02d", 10+rng.IntN(90)))).Floor(0).String()
					if rng.IntN(6) == 0 {
						redeem = dec.Add(v.Balance, dec.One).String() // too much
					}
					if redeem == "0" {
						redeem = ""
					}
				}
			}
			id := fmt.Sprintf("o%d", n)
			ev = paidEvent(t, "ev"+id, at(), id, customer, redeem, lines...)
			res := b.process(t, ev)
			if res.Status == events.StatusApplied {
				so := &soldOrder{id: id, lines: map[string]int{}, returned: map[string]int{}}
				for _, l := range lines {
					var q int
					fmt.Sscan(l.qty, &q)
					so.lines[l.id] = q
				}
				orders = append(orders, so)
			}
		case r < 75:
			so := orders[rng.IntN(len(orders))]
			lineID := fmt.Sprint(1 + rng.IntN(len(so.lines)))
			left := so.lines[lineID] - so.returned[lineID]
			q := 1 + rng.IntN(left+1) // sometimes one too many
			ev = returnEvent(t, fmt.Sprintf("evr%d", n), at(), fmt.Sprintf("r%d", n), so.id, lineID, fmt.Sprint(q))
			res := b.process(t, ev)
			if res.Status == events.StatusApplied {
				so.returned[lineID] += q
			} else {
				require.Contains(t, []string{events.RejectReturnExceedsSold, events.RejectAlreadyCancelled}, res.Error.Code)
			}
		case r < 85:
			so := orders[rng.IntN(len(orders))]
			ev = cancelEvent(t, fmt.Sprintf("evx%d", n), at(), so.id)
			b.process(t, ev)
		case r < 95:
			b.jobs(t, at())
		default:
			if last != nil {
				res, err := b.tryProcess(last)
				require.NoError(t, err)
				require.Nil(t, res, "a redelivery changes nothing")
			}
		}
		if ev != nil {
			last = ev
		}
		for _, c := range customers {
			require.NoError(t, reconcileIfKnown(b, c), "after step %d", n)
		}
	}

	// Every cancelled order was given back whole: net, earned and redeemed.
	rows, err := b.pool.Query(b.ctx, `
		SELECT o.order_id,
		       (o.result->'totals'->>'net')::numeric = COALESCE(sum((r.result->'totals'->>'net')::numeric), 0),
		       o.points_clawed = o.points_earned AND o.points_restored = o.points_redeemed
		FROM processed_orders o
		LEFT JOIN order_reversals r ON r.original_order_id = o.order_id AND r.status = 'applied'
		WHERE o.cancelled
		GROUP BY o.order_id`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var netOK, pointsOK bool
		require.NoError(t, rows.Scan(&id, &netOK, &pointsOK))
		require.True(t, netOK, "order %s: reversals do not sum to its net", id)
		require.True(t, pointsOK, "order %s: points not given back whole", id)
	}
	require.NoError(t, rows.Err())
	require.Zero(t, scalar[int64](t, b, `SELECT count(*) FROM point_lots WHERE remaining < 0 OR remaining > original`))
	t.Logf("entries by kind: %s; reversals: %s", scalar[string](t, b, `SELECT string_agg(kind || '=' || n, ' ' ORDER BY kind) FROM (SELECT kind, count(*) n FROM ledger_entries GROUP BY kind) x`),
		scalar[string](t, b, `SELECT COALESCE(string_agg(kind || '/' || status || '=' || n, ' ' ORDER BY kind, status), '') FROM (SELECT kind, status, count(*) n FROM order_reversals GROUP BY 1, 2) x`))
}

func reconcileIfKnown(b *bundle, customer string) error {
	var exists bool
	if err := b.pool.QueryRow(b.ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE customer_id = $1)`, customer).Scan(&exists); err != nil || !exists {
		return err
	}
	return ledger.Reconcile(b.ctx, b.pool, customer)
}
