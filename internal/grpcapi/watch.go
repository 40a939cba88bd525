package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/pkg/events"
	promov1 "github.com/promoengine/promoengine/pkg/promov1"
)

// Bounds of the join of WatchResults. An input waits up to inputTTL for its
// result (the pipeline's lag, far above its normal milliseconds), a result
// up to parkedTTL for its input (the two consumers run independently).
const (
	watchLookback  = 10 * time.Second
	inputTTL       = 2 * time.Minute
	maxInputs      = 100_000
	parkedTTL      = 10 * time.Second
	maxParked      = 10_000
	maxParkedBytes = 32 << 20
	// watcherBuffer results may wait for a slow client; one more and the
	// watch ends (Unavailable), so that a slow till never holds up others.
	watcherBuffer = 256
)

// store is what a watch is for: a company and one of its points of sale
// ("" for every point of sale of the company).
type store struct{ company, pos string }

func (s store) has(company, pos string) bool {
	return s.company == company && (s.pos == "" || s.pos == pos)
}

type watcher struct {
	store store
	out   chan *promov1.OrderResult
	slow  chan struct{} // closed when the watcher fell behind
}

// hub joins the results on PROMO_RESULTS with the input events on
// POS_ORDERS that caused them, because a result does not name its store
// and its input does. One pair of ordered (ephemeral, flow-controlled)
// consumers serves every watch of the process, started with the first
// watch and stopped with the last: the cost is one pass over each stream
// per process, not per watcher.
type hub struct {
	js       jetstream.JetStream
	subjects events.Subjects
	log      zerolog.Logger
	now      func() time.Time
	done     chan struct{} // closed by close
	once     sync.Once

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	stop     func()          // stops the consumers; nil while none run
	inputs   *window[store]  // causation (input event_id) → store
	parked   *window[[]byte] // results whose input was not seen yet
}

func newHub(js jetstream.JetStream, subjects events.Subjects, log zerolog.Logger) *hub {
	return &hub{js: js, subjects: subjects, log: log, now: time.Now, done: make(chan struct{}),
		watchers: map[*watcher]struct{}{}}
}

// serve streams the results of st to send until ctx ends, the watcher
// falls behind, or the hub closes; it calls watching once the watch is in
// place.
func (h *hub) serve(ctx context.Context, st store, watching func(), send func(*promov1.OrderResult) error) error {
	w := &watcher{store: st, out: make(chan *promov1.OrderResult, watcherBuffer), slow: make(chan struct{})}
	if err := h.add(w); err != nil {
		return err
	}
	defer h.remove(w)
	watching()
	for {
		select {
		case <-ctx.Done():
			return nil // the client went away: the normal end of a watch
		case <-h.done:
			return apiError(api.CodeUnavailable, "the server is shutting down; watch again")
		case <-w.slow:
			return apiError(api.CodeUnavailable, fmt.Sprintf("this watch fell %d results behind and was ended; watch again", watcherBuffer))
		case m := <-w.out:
			if err := send(m); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

func (h *hub) add(w *watcher) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return apiError(api.CodeUnavailable, "the server is shutting down")
	default:
	}
	if h.stop == nil {
		if err := h.start(); err != nil {
			h.log.Warn().Err(err).Msg("starting the result watch consumers failed")
			return apiError(api.CodeUnavailable, "results cannot be watched now: JetStream does not answer; watch again")
		}
	}
	h.watchers[w] = struct{}{}
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.watchers, w)
	if len(h.watchers) == 0 && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// close ends every watch and stops the consumers.
func (h *hub) close() {
	h.once.Do(func() { close(h.done) })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// start creates the two consumers, both from watchLookback ago, so that a
// result published just after the call whose input came just before it
// is found. Called with mu held.
func (h *hub) start() error {
	h.inputs = newWindow(inputTTL, maxInputs, maxInputs*64, func(s store) int { return len(s.company) + len(s.pos) })
	h.parked = newWindow(parkedTTL, maxParked, maxParkedBytes, func(b []byte) int { return len(b) })
	ctx, cancel := context.WithCancel(context.Background())
	since := h.now().Add(-watchLookback)
	logErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrConsumerNotFound) { // an ordered consumer recreates itself
			h.log.Warn().Err(err).Msg("result watch consumer")
		}
	})
	orders, err := h.js.OrderedConsumer(ctx, h.subjects.StreamOrders(), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("grpcapi: consumer on %s: %w", h.subjects.StreamOrders(), err)
	}
	oc, err := orders.Consume(func(m jetstream.Msg) { h.onInput(m.Data()) }, logErr)
	if err != nil {
		cancel()
		return fmt.Errorf("grpcapi: consume %s: %w", h.subjects.StreamOrders(), err)
	}
	results, err := h.js.OrderedConsumer(ctx, h.subjects.StreamResults(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{h.subjects.ResultsOrder()},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		oc.Stop()
		cancel()
		return fmt.Errorf("grpcapi: consumer on %s: %w", h.subjects.StreamResults(), err)
	}
	rc, err := results.Consume(func(m jetstream.Msg) { h.onResult(m.Data()) }, logErr)
	if err != nil {
		oc.Stop()
		cancel()
		return fmt.Errorf("grpcapi: consume %s: %w", h.subjects.StreamResults(), err)
	}
	h.stop = func() {
		oc.Stop()
		rc.Stop()
		cancel()
	}
	return nil
}

// envelope is what the join reads of an input event: only the store.
type envelope struct {
	EventID     string    `json:"event_id"`
	CompanyID   events.ID `json:"company_id"`
	PosConfigID events.ID `json:"pos_config_id"`
}

func (h *hub) onInput(data []byte) {
	var ev envelope
	if json.Unmarshal(data, &ev) != nil || ev.EventID == "" {
		return // not an event the engine processes: it has no result
	}
	h.meet(ev.EventID, store{company: string(ev.CompanyID), pos: string(ev.PosConfigID)}, nil)
}

func (h *hub) onResult(data []byte) {
	var res struct {
		CausationID string `json:"causation_id"`
	}
	if json.Unmarshal(data, &res) != nil || res.CausationID == "" {
		return
	}
	h.meet(res.CausationID, store{}, data)
}

// meet joins the two sides under key (an input's event_id, a result's
// causation_id): an input (result nil) meets its result if it waits, else
// waits for it, and so does a result for its input. A pair that met is
// dispatched.
func (h *hub) meet(key string, st store, result []byte) {
	h.mu.Lock()
	if h.inputs == nil { // stopped meanwhile
		h.mu.Unlock()
		return
	}
	var met bool
	if result == nil {
		if result, met = h.parked.take(key); !met {
			h.inputs.put(key, st, h.now())
		}
	} else if st, met = h.inputs.take(key); !met {
		h.parked.put(key, result, h.now())
	}
	h.mu.Unlock()
	if met {
		h.dispatch(st, result)
	}
}

// dispatch hands a result to the watchers of its store.
func (h *hub) dispatch(st store, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msg *promov1.OrderResult
	for w := range h.watchers {
		if !w.store.has(st.company, st.pos) {
			continue
		}
		if msg == nil {
			msg = &promov1.OrderResult{}
			if err := readJSON.Unmarshal(data, msg); err != nil {
				h.log.Warn().Err(err).Msg("a result on PROMO_RESULTS does not read as promo.v1.OrderResult")
				return
			}
		}
		select {
		case w.out <- msg:
		case <-w.slow:
		default:
			close(w.slow)
		}
	}
}
