package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// Report is what Check found; OK tells whether every promise held.
type Report struct {
	Events       int
	Results      int
	Missing      []string // no result
	Duplicated   []string // more than one result
	NotInInbox   []string // no inbox row
	Rejected     []string // event: code — nothing in a workload should be
	OutOfOrder   []string // customer: events applied against publish order
	DeadLetters  []string // code: subject
	Unreconciled []string
	Lots         int // point lots of the workload's sales
	// OrderChecked counts the events of customers whose place in their
	// customer's order was checked (all of them, when every event left a
	// spend entry); CustomerEvents counts the workload's events of
	// customers.
	OrderChecked, CustomerEvents int
	// ResultAt is when the stream stored each event's first result.
	ResultAt map[string]time.Time
}

// OK reports whether every promise held.
func (r *Report) OK() bool {
	return len(r.Missing)+len(r.Duplicated)+len(r.NotInInbox)+len(r.Rejected)+len(r.OutOfOrder)+
		len(r.DeadLetters)+len(r.Unreconciled) == 0
}

// String summarises the report, listing at most a few items of each kind.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events, %d results, %d lots", r.Events, r.Results, r.Lots)
	for _, l := range []struct {
		name  string
		items []string
	}{{"missing", r.Missing}, {"duplicated", r.Duplicated}, {"not in inbox", r.NotInInbox}, {"rejected", r.Rejected},
		{"out of order", r.OutOfOrder}, {"dead letters", r.DeadLetters}, {"unreconciled", r.Unreconciled}} {
		if len(l.items) > 0 {
			fmt.Fprintf(&b, "; %s %d: %s", l.name, len(l.items), strings.Join(l.items[:min(len(l.items), 5)], ", "))
		}
	}
	return b.String()
}

// Check reads PostgreSQL and the streams and checks the workload's
// promises (see Report).
func (w *Workload) Check(ctx context.Context, db ledger.DB, js jetstream.JetStream, s events.Subjects) (*Report, error) {
	r := &Report{Events: len(w.byID)}
	ids := make([]string, 0, len(w.byID))
	for id := range w.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	inInbox := map[string]bool{}
	rows, err := db.Query(ctx, `SELECT event_id FROM inbox WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("chaos: inbox: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		inInbox[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	results := map[string]int{}
	r.ResultAt = map[string]time.Time{}
	err = ReadStreamMsgs(ctx, js, s.StreamResults(), func(m StreamMsg) error {
		subject, data := m.Subject, m.Data
		var res struct {
			CausationID string `json:"causation_id"`
			Status      string `json:"status"`
			Error       *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("chaos: result on %s: %w", subject, err)
		}
		if _, ours := w.byID[res.CausationID]; !ours {
			return nil
		}
		results[res.CausationID]++
		if _, seen := r.ResultAt[res.CausationID]; !seen {
			r.ResultAt[res.CausationID] = m.At
		}
		if res.Status == events.StatusRejected && res.Error != nil {
			r.Rejected = append(r.Rejected, res.CausationID+": "+res.Error.Code)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = ReadStream(ctx, js, s.StreamDLQ(), func(subject string, data []byte) error {
		if ev, err := events.Decode(data); err == nil {
			if _, ours := w.byID[ev.EventID]; ours {
				r.DeadLetters = append(r.DeadLetters, ev.EventID+" on "+subject)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		switch n := results[id]; {
		case n == 0:
			r.Missing = append(r.Missing, id)
		case n > 1:
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("%s ×%d", id, n))
		}
		r.Results += min(results[id], 1)
		if !inInbox[id] {
			r.NotInInbox = append(r.NotInInbox, id)
		}
	}
	if err := w.checkOrder(ctx, db, r); err != nil {
		return nil, err
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM point_lots WHERE lot_id = ANY($1)`, ids).Scan(&r.Lots); err != nil {
		return nil, fmt.Errorf("chaos: lots: %w", err)
	}
	return r, nil
}

// checkOrder compares, for every customer of a chain, the order in which
// the ledger applied its events (the spend entries' ids: a transaction
// holds the customer's row lock from its first statement, so the entries
// of one customer are numbered in the order their transactions
// committed) with the chain's publish order.
func (w *Workload) checkOrder(ctx context.Context, db ledger.DB, r *Report) error {
	for _, chain := range w.Chains {
		cust := chain[0].Customer
		if cust == "" {
			continue
		}
		rows, err := db.Query(ctx, `SELECT event_id FROM spend_entries WHERE customer_id = $1 GROUP BY event_id ORDER BY min(id)`, cust)
		if err != nil {
			return fmt.Errorf("chaos: spend entries: %w", err)
		}
		var applied []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			applied = append(applied, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		pos := map[string]int{}
		for i, e := range chain {
			pos[e.ID] = i
		}
		r.CustomerEvents += len(chain)
		last := -1
		for _, id := range applied {
			p, ok := pos[id]
			if !ok {
				continue
			}
			r.OrderChecked++
			if p < last {
				r.OutOfOrder = append(r.OutOfOrder, fmt.Sprintf("%s: %s after %s", cust, id, chain[last].ID))
			}
			last = max(last, p)
		}
		if err := ledger.Reconcile(ctx, db, cust); err != nil {
			if !errors.Is(err, ledger.ErrReconcile) {
				return err
			}
			r.Unreconciled = append(r.Unreconciled, err.Error())
		}
	}
	return nil
}

// StreamMsg is one message of a stream as ReadStreamMsgs gives it.
type StreamMsg struct {
	Subject string
	Data    []byte
	Header  nats.Header
	Seq     uint64
	At      time.Time // when the stream stored it
}

// ReadStream calls fn for every message of stream, in order (see
// ReadStreamMsgs).
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(subject string, data []byte) error) error {
	return ReadStreamMsgs(ctx, js, stream, func(m StreamMsg) error { return fn(m.Subject, m.Data) })
}

// ReadStreamMsgs calls fn for every message of stream, in order, with an
// ordered consumer. The stream is read whole before fn is called, and read
// again from the start for up to 30 s while the cluster answers with an
// error (a server that just came back, a leader being elected), so fn
// sees every message once.
func ReadStreamMsgs(ctx context.Context, js jetstream.JetStream, stream string, fn func(m StreamMsg) error) error {
	var msgs []StreamMsg
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs = msgs[:0]
		err := readStream(ctx, js, stream, func(m StreamMsg) {
			msgs = append(msgs, m)
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	for _, m := range msgs {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func readStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(m StreamMsg)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("chaos: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			sm := StreamMsg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
			md, err := m.Metadata()
			if err == nil {
				sm.Seq, sm.At = md.Sequence.Stream, md.Timestamp
			}
			fn(sm)
			if err == nil && md.Sequence.Stream >= info.State.LastSeq {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 {
			return fmt.Errorf("chaos: stream %s: no message after the last one read (last seq %d)", stream, info.State.LastSeq)
		}
	}
}

// WaitDrained waits until the order consumers have nothing pending and
// the outbox is empty, or timeout passes.
func WaitDrained(ctx context.Context, db ledger.DB, js jetstream.JetStream, s events.Subjects, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := testnats.ConsumersSettled(ctx, js, s.StreamOrders())
		if err == nil && ok {
			var n int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err == nil && n == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: not drained after %s (consumers settled %v, %v)", timeout, ok, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
