package events

import "strings"

// Subjects names every subject and stream of SPEC §2 under one optional
// prefix, so that several engines (a staging and a production chain, or the
// tests of one CI run) can share a NATS account without crossing streams.
// With the empty prefix the names are exactly the SPEC's defaults.
type Subjects struct {
	prefix string // "" or "acme." — always ending in a dot when set
	stream string // "" or "ACME_"
}

// NewSubjects returns the subject names under prefix ("" for the defaults;
// "acme" gives acme.pos.orders.paid and stream ACME_POS_ORDERS).
func NewSubjects(prefix string) Subjects {
	prefix = strings.Trim(prefix, ".")
	if prefix == "" {
		return Subjects{}
	}
	stream := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix)) + "_"
	return Subjects{prefix: prefix + ".", stream: stream}
}

// Input order subjects.
func (s Subjects) OrdersPaid() string      { return s.prefix + "pos.orders.paid" }
func (s Subjects) OrdersReturned() string  { return s.prefix + "pos.orders.returned" }
func (s Subjects) OrdersCancelled() string { return s.prefix + "pos.orders.cancelled" }

// OrderSubject returns the subject an input event of type t is published to:
// pos.orders.<last word of the type>.
func (s Subjects) OrderSubject(t string) string {
	switch t {
	case TypeOrderPaid:
		return s.OrdersPaid()
	case TypeOrderReturned:
		return s.OrdersReturned()
	case TypeOrderCancelled:
		return s.OrdersCancelled()
	}
	return s.prefix + "pos.orders.unknown"
}

// Result subjects.
func (s Subjects) ResultsOrder() string         { return s.prefix + "promo.results.order" }
func (s Subjects) ResultsPointsExpired() string { return s.prefix + "promo.results.points_expired" }
func (s Subjects) ResultsLevelChanged() string  { return s.prefix + "promo.results.level_changed" }
func (s Subjects) ResultsAll() string           { return s.prefix + "promo.results.>" }

// ResultSubject returns the subject of a result event of type t.
func (s Subjects) ResultSubject(t string) string {
	switch t {
	case TypePointsExpired:
		return s.ResultsPointsExpired()
	case TypeLevelChanged:
		return s.ResultsLevelChanged()
	case TypeLevelWarning:
		return s.ResultsLevelWarning()
	}
	return s.ResultsOrder()
}

// DLQ returns the dead-letter subject for a message that failed on subject
// original: promo.dlq.<original subject>. The prefix is not repeated. An
// input order keeps only its SPEC subject (promo.dlq.pos.orders.paid
// whatever its key and partition), so that one subject gathers the dead
// letters of one kind; Promo-Original-Subject has the subject in full.
func (s Subjects) DLQ(original string) string {
	if kind, _, _, ok := s.OrderSubjectParts(original); ok {
		original = s.prefix + "pos.orders." + kind
	}
	return s.prefix + "promo.dlq." + strings.TrimPrefix(original, s.prefix)
}

// DLQAll matches every dead letter; DLQOdoo is where failed pushes go.
func (s Subjects) DLQAll() string  { return s.prefix + "promo.dlq.>" }
func (s Subjects) DLQOdoo() string { return s.prefix + "promo.dlq.odoo" }

// OriginalFromDLQ strips the dead-letter prefix from a dead letter's subject.
func (s Subjects) OriginalFromDLQ(dlqSubject string) string {
	return s.prefix + strings.TrimPrefix(dlqSubject, s.prefix+"promo.dlq.")
}

// Quote is the micro service subject of the dry-run evaluation.
func (s Subjects) Quote() string { return s.prefix + "promo.quote" }

// Stream names.
func (s Subjects) StreamOrders() string  { return s.stream + "POS_ORDERS" }
func (s Subjects) StreamResults() string { return s.stream + "PROMO_RESULTS" }
func (s Subjects) StreamDLQ() string     { return s.stream + "PROMO_DLQ" }

// Dead-letter headers added to the original headers (SPEC §4).
const (
	HeaderErrorCode       = "Promo-Error-Code"
	HeaderErrorMessage    = "Promo-Error-Message"
	HeaderOriginalSubject = "Promo-Original-Subject"
	HeaderOriginalSeq     = "Promo-Original-Seq"
	HeaderFailedAt        = "Promo-Failed-At"
	// HeaderOriginalStream names the stream the dead letter came from.
	HeaderOriginalStream = "Promo-Original-Stream"
)

// Dead-letter codes.
const (
	DLQInvalidEvent         = "invalid_event"
	DLQUnknownOriginalOrder = "unknown_original_order"
	DLQDuplicateOrder       = "duplicate_order"
	DLQOdooRejected         = "odoo_rejected"
	DLQProcessingFailed     = "processing_failed"
	// DLQResultTooLarge: the event's result would not fit in a NATS message.
	DLQResultTooLarge = "result_too_large"
)
