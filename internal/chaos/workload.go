// Package chaos drives the engine under load while faults are injected,
// and checks the promises from outside: every acknowledged event has
// exactly one result and one ledger effect, every customer's events take
// effect in the order they were published, nothing a correct order funds
// is rejected, the ledger reconciles, and everything drains.
//
// The multi-node test of `make test` (a short load on three engine
// processes, a three-server NATS cluster and PostgreSQL with a streaming
// replica) and the longer fault suite of `make chaos` both use it.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Catalog is the catalog the workloads assume: 1 point per 1,000 spent,
// points worth 1 each, any share of an order redeemable.
const Catalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  redeem: {value: "1", min: "1", max_share: "1"}
membership:
  default_path: default
  paths: [{id: default, qualify: {window_days: 365}, retention_days: 365, downgrade: one_level, levels: [{id: member, min: "0"}]}]
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "10"}}
`

// Event is one input event of a workload.
type Event struct {
	ID       string
	Type     string
	Customer string // "" for an anonymous sale; the sale's for a reversal
	Body     []byte
	key      events.Key
}

// Workload is a set of per-key chains of events. Within a chain each event
// depends on the ones before it: a redemption spends points only the
// earlier sales earned, a return returns an earlier sale. Applied in
// order, nothing is rejected; applied out of order, a redemption is
// rejected or a return waits.
type Workload struct {
	Chains [][]*Event
	byID   map[string]*Event
}

// NewWorkload builds hot customers with chains of n events each, plus
// cold customers and anonymous sales (one event each) to fill the other
// partitions. seed makes it reproducible; prefix keeps ids of two runs
// apart.
func NewWorkload(prefix string, hot, n, cold int, seed uint64) *Workload {
	w := &Workload{byID: map[string]*Event{}}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.FixedZone("WIB", 7*3600))
	for c := range hot {
		cust := fmt.Sprintf("%s-hot-%d", prefix, c)
		var chain []*Event
		var sales []string
		for k := range n {
			id := fmt.Sprintf("%s-%d", cust, k)
			t := at.Add(time.Duration(k) * time.Minute)
			switch {
			case k%3 == 2 && len(sales) > 0:
				orig := sales[0]
				sales = sales[1:]
				chain = append(chain, w.add(returned(id, orig, t), events.TypeOrderReturned, cust))
			case k%3 == 1:
				chain = append(chain, w.add(paid(id, cust, t, "5"), events.TypeOrderPaid, cust))
			default:
				chain = append(chain, w.add(paid(id, cust, t, ""), events.TypeOrderPaid, cust))
				sales = append(sales, id)
			}
		}
		w.Chains = append(w.Chains, chain)
	}
	for c := range cold {
		id := fmt.Sprintf("%s-cold-%d", prefix, c)
		cust := ""
		if rng.IntN(3) > 0 {
			cust = fmt.Sprintf("%s-cust-%d", prefix, c)
		}
		w.Chains = append(w.Chains, []*Event{w.add(paid(id, cust, at, ""), events.TypeOrderPaid, cust)})
	}
	rng.Shuffle(len(w.Chains), func(i, j int) { w.Chains[i], w.Chains[j] = w.Chains[j], w.Chains[i] })
	return w
}

func (w *Workload) add(body []byte, typ, customer string) *Event {
	ev, err := events.Decode(body)
	if err != nil {
		panic(fmt.Sprintf("chaos: workload event does not decode: %v\n%s", err, body))
	}
	e := &Event{ID: ev.EventID, Type: typ, Customer: customer, Body: body}
	if ev.Paid != nil {
		e.key = events.SaleKey(ev.Paid.CustomerID, ev.Paid.ID)
	} else {
		e.key = events.CustomerKey(events.ID(customer))
	}
	w.byID[e.ID] = e
	return e
}

// Reversed is the workload with every chain backwards (the same events):
// published so, it breaks every dependency, which a checker must see.
func (w *Workload) Reversed() *Workload {
	r := &Workload{byID: w.byID}
	for _, chain := range w.Chains {
		rc := slices.Clone(chain)
		slices.Reverse(rc)
		r.Chains = append(r.Chains, rc)
	}
	return r
}

// Events is the number of events.
func (w *Workload) Events() int { return len(w.byID) }

// paid is a sale of two units of 5,000 (10 points when nothing is
// redeemed), redeeming points when redeem is set.
func paid(id, customer string, at time.Time, redeem string) []byte {
	order := map[string]any{"id": "o-" + id, "currency": "IDR",
		"lines": []any{map[string]any{"id": "1", "product_id": "p1", "category_ids": []string{"food"}, "qty": "2", "unit_price": "5000"}}}
	if customer != "" {
		order["customer_id"] = customer
	}
	if redeem != "" {
		order["redeem_points"] = redeem
	}
	return mustJSON(map[string]any{"event_id": id, "type": events.TypeOrderPaid, "occurred_at": events.FormatTime(at),
		"company_id": "1", "pos_config_id": "1", "order": order})
}

// returned returns one of the two units of sale orig.
func returned(id, orig string, at time.Time) []byte {
	return mustJSON(map[string]any{"event_id": id, "type": events.TypeOrderReturned, "occurred_at": events.FormatTime(at),
		"company_id": "1", "pos_config_id": "1",
		"order": map[string]any{"id": "r-" + id, "original_order_id": "o-" + orig, "lines": []any{map[string]any{"line_id": "1", "qty": "1"}}}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// PublishOptions shape a run of the workload.
type PublishOptions struct {
	// Rate is the total events per second (0: as fast as acknowledgements
	// come).
	Rate float64
	// Unkeyed is the share of chains published on the bare SPEC subjects,
	// left to the engine's keyer (0 to 1).
	Unkeyed float64
	// Subjects names the subjects (default prefix "").
	Subjects events.Subjects
}

// Published counts what JetStream acknowledged, and when.
type Published struct {
	Acked   atomic.Int64
	Retried atomic.Int64

	mu      sync.Mutex
	ackedAt map[string]time.Time
}

func (p *Published) acked(id string, at time.Time) {
	p.Acked.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ackedAt == nil {
		p.ackedAt = map[string]time.Time{}
	}
	p.ackedAt[id] = at
}

// AckedAt is when JetStream acknowledged each event: from then on it is
// the engine's.
func (p *Published) AckedAt() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]time.Time, len(p.ackedAt))
	for id, at := range p.ackedAt {
		out[id] = at
	}
	return out
}

// Timing is how long events waited for their results around a fault.
type Timing struct {
	// MaxDelay is the longest wait, from an event's publish acknowledgement
	// to the storing of its result, over every event.
	MaxDelay time.Duration
	// Recovery is from the fault's end until the result of the last event
	// acknowledged before that end (0 when all of them had their results
	// by then): how long the backlog the fault left took to clear.
	Recovery time.Duration
	// Resume is from the fault's end until the first result of the
	// backlog: how soon processing started again.
	Resume time.Duration
	// Backlog counts the events acknowledged before the fault's end whose
	// results came after it.
	Backlog int
}

// Timing measures the delays of the events that have a result in r, for
// a fault that ended at faultEnd.
func (p *Published) Timing(r *Report, faultEnd time.Time) Timing {
	var tm Timing
	for id, acked := range p.AckedAt() {
		res, ok := r.ResultAt[id]
		if !ok {
			continue
		}
		tm.MaxDelay = max(tm.MaxDelay, res.Sub(acked))
		if !acked.After(faultEnd) && res.After(faultEnd) {
			if tm.Backlog == 0 || res.Sub(faultEnd) < tm.Resume {
				tm.Resume = res.Sub(faultEnd)
			}
			tm.Backlog++
			tm.Recovery = max(tm.Recovery, res.Sub(faultEnd))
		}
	}
	return tm
}

// Publish publishes every chain in order, chains concurrently, each event
// with its event_id as Nats-Msg-Id, retrying a publish until JetStream
// acknowledges it (the id makes a retry harmless). The next event of a
// chain is published only once the previous one is acknowledged, so a
// chain's stream order is its order. It returns when all are acknowledged
// or ctx ends.
func (w *Workload) Publish(ctx context.Context, js jetstream.JetStream, opts PublishOptions, pub *Published) error {
	var tick <-chan time.Time
	if opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		defer t.Stop()
		tick = t.C
	}
	tokens := make(chan struct{})
	go func() {
		for {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(w.Chains))
	unkeyedEvery := 0
	if opts.Unkeyed > 0 {
		unkeyedEvery = max(1, int(1/opts.Unkeyed))
	}
	for i, chain := range w.Chains {
		unkeyed := unkeyedEvery > 0 && i%unkeyedEvery == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range chain {
				select {
				case <-tokens:
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
				subject := opts.Subjects.KeyedOrderSubject(e.Type, e.key)
				if unkeyed {
					subject = opts.Subjects.OrderSubject(e.Type)
				}
				if err := publishAcked(ctx, js, subject, e, pub); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func publishAcked(ctx context.Context, js jetstream.JetStream, subject string, e *Event, pub *Published) error {
	for {
		msg := &nats.Msg{Subject: subject, Data: e.Body, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			pub.acked(e.ID, time.Now())
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish %s: %w", e.ID, ctx.Err())
		}
		pub.Retried.Add(1)
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}
