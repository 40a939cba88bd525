package events

// The Odoo integration's own stream: the ids of Odoo orders the engine was
// told about (by the webhook, the reconciler or `promoengine odoo sync`),
// recorded durably before anything is read back from Odoo, so that the
// webhook answers at once and no order is lost when Odoo is slow to commit
// or unreachable. The read-back worker consumes it.

// OdooOrders is the subject of recorded Odoo order ids.
func (s Subjects) OdooOrders() string { return s.prefix + "promo.odoo.orders" }

// StreamOdooOrders is the stream of recorded Odoo order ids.
func (s Subjects) StreamOdooOrders() string { return s.stream + "PROMO_ODOO_ORDERS" }

// OdooStateBucket names the key-value bucket of the Odoo reconciler (its
// cursor and its lease).
func (s Subjects) OdooStateBucket() string { return s.stream + "PROMO_ODOO_STATE" }

// Dead-letter codes of the Odoo read-back.
const (
	// DLQOdooOrderUnavailable: a recorded order could not be read back
	// from Odoo (never committed, not visible to the API user, or Odoo
	// unreachable) within the read-back's bound.
	DLQOdooOrderUnavailable = "odoo_order_unavailable"
	// DLQForbiddenStore: the order read back belongs to a company or POS
	// config outside the scope of the credential that recorded it.
	DLQForbiddenStore = "forbidden_store"
)
