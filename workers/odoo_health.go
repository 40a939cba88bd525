package workers

import "sync"

// odooHealth wakes every push waiting in place for Odoo (see
// OdooPusher.pushWithRetries) as soon as a push or a probe succeeds after a
// failure.
//
// Why in place: while Odoo does not answer at all, a result naked with a
// delay would wait out its own growing delay after Odoo is back (up to
// NakMax). Waiting in process instead — kept alive by the fetcher's
// heartbeats, no delivery counted, nothing later of its order overtaking
// it, nothing more fetched since every slot is taken — lets everything go
// within moments of Odoo answering. A result that fails while Odoo
// answers is that order's problem and takes the nak path (its deliveries
// counted, dead-lettered after MaxDeliver).
type odooHealth struct {
	mu        sync.Mutex
	recovered chan struct{} // closed at the first success after a failure
	failing   bool
}

func newOdooHealth() *odooHealth { return &odooHealth{recovered: make(chan struct{})} }

// succeeded records that Odoo answered.
func (h *odooHealth) succeeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing {
		h.failing = false
		close(h.recovered)
		h.recovered = make(chan struct{})
	}
}

// failed records a failed push and returns the channel closed when Odoo
// next answers.
func (h *odooHealth) failed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = true
	return h.recovered
}
