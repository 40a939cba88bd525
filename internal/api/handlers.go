package api

import (
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
	"github.com/promoengine/promoengine/schemas"
)

// quote evaluates an order as if it were paid now (or at its occurred_at)
// and changes nothing. The body is a paid event's order object, with
// occurred_at, company_id and pos_config_id optionally beside its fields;
// events.DecodeQuote checks it with the very decoder the order worker uses,
// so a quote refuses exactly what the worker would dead-letter, and names
// each violation by its pointer into the body as sent (/lines/0/qty).
func (s *Server) quote(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	ev, err := events.DecodeQuote(body, s.d.Now())
	var inv *events.InvalidError
	if errors.As(err, &inv) {
		return violations(http.StatusBadRequest, CodeInvalidOrder, "invalid order", inv.Violations)
	}
	if err != nil {
		return err
	}
	if err := authorizeStore(r.Context(), ev.CompanyID, ev.PosConfigID); err != nil {
		return err
	}
	var res *events.OrderResult
	err = ledger.Read(s.replica(), s.d.Pool, func(db ledger.DB) (err error) {
		res, err = s.d.Store.Quote(r.Context(), db, s.d.Catalog(), *ev)
		return err
	})
	switch {
	case errors.Is(err, ledger.ErrNoCatalog):
		return apiErr(http.StatusServiceUnavailable, CodeNoCatalog, "no catalog applied yet")
	case errors.Is(err, ledger.ErrCurrencyMismatch):
		return violations(http.StatusBadRequest, CodeInvalidOrder, "invalid order",
			[]schemas.Violation{{Pointer: "/currency", Message: err.Error()}})
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// published is the answer to an accepted event.
type published struct {
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"stream_seq"`
	Duplicate bool   `json:"duplicate"`
}

// ingest validates an input event and publishes it, byte for byte, to its
// subject with Nats-Msg-Id = event_id, so that an event sent twice within
// the stream's duplicate window is stored once (duplicate: true) and one
// sent later is skipped by the worker's inbox.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	ev, err := events.Decode(body)
	var inv *events.InvalidError
	if errors.As(err, &inv) {
		return violations(http.StatusBadRequest, CodeInvalidEvent, "invalid event", inv.Violations)
	}
	if err != nil {
		return err
	}
	if err := authorizeStore(r.Context(), ev.CompanyID, ev.PosConfigID); err != nil {
		return err
	}
	p, err := s.publish(r, ev, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, p)
	return nil
}

// publish stores one event in POS_ORDERS and waits for JetStream's ack.
func (s *Server) publish(r *http.Request, ev *events.Event, data []byte) (published, error) {
	subject := s.routing.Subject(r.Context(), s.d.Subjects, ev)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.EventID)
	ack, err := s.d.JS.PublishMsg(r.Context(), msg)
	if err != nil {
		s.log.Warn().Err(err).Str("event_id", ev.EventID).Str("subject", subject).Msg("publish failed")
		return published{}, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the event could not be stored in JetStream; send it again")
	}
	s.log.Debug().Str("event_id", ev.EventID).Str("subject", subject).Uint64("stream_seq", ack.Sequence).
		Bool("duplicate", ack.Duplicate).Msg("event published")
	return published{EventID: ev.EventID, Type: ev.Type, Subject: subject, StreamSeq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// customer answers a customer's balance as of now. An id no event could
// carry (NUL, invalid UTF-8, control characters, over 200 characters) is
// answered 400 before it reaches PostgreSQL, which would refuse it.
func (s *Server) customer(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := events.CheckID(id); err != nil {
		return violations(http.StatusBadRequest, CodeInvalidRequest, "invalid customer id in the path",
			[]schemas.Violation{{Pointer: "/customer_id", Message: err.Error()}})
	}
	cat := s.d.Catalog()
	if cat == nil {
		return apiErr(http.StatusServiceUnavailable, CodeNoCatalog, "no catalog applied yet")
	}
	var v *ledger.CustomerView
	err := ledger.Read(s.replica(), s.d.Pool, func(db ledger.DB) (err error) {
		v, err = s.d.Store.Customer(r.Context(), db, id, s.d.Now(), cat)
		return err
	})
	if errors.Is(err, ledger.ErrUnknownCustomer) {
		return apiErr(http.StatusNotFound, CodeUnknownCustomer, "no customer %q: no order of this customer was processed", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// putCatalog applies a catalog, refused whole with every violation listed.
// The order workers switch to the new version on its NOTIFY.
func (s *Server) putCatalog(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxCatalogBody)
	if err != nil {
		return err
	}
	cat, err := rules.Parse(body)
	var ce *rules.CatalogError
	if errors.As(err, &ce) {
		s.auditRefusedCatalog(r, len(ce.Violations))
		return violations(http.StatusUnprocessableEntity, CodeInvalidCatalog, "invalid catalog", ce.Violations)
	}
	if err != nil {
		return err
	}
	if err := s.d.Store.CheckCatalog(cat); err != nil {
		return violations(http.StatusUnprocessableEntity, CodeInvalidCatalog, "invalid catalog",
			[]schemas.Violation{{Message: "this engine has no PROMO_COUPON_SECRET to derive coupon codes with: " + err.Error()}})
	}
	version, err := s.applyCatalog(r, cat)
	if err != nil {
		return err
	}
	s.log.Info().Int64("catalog_version", version).Msg("catalog applied over HTTP")
	writeJSON(w, http.StatusOK, map[string]int64{"version": version})
	return nil
}
