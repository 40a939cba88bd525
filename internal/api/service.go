package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
	"github.com/promoengine/promoengine/schemas"
)

// The operations of the API apart from HTTP. The HTTP handlers and the
// gRPC/Connect service (internal/grpcapi) both call them, so that every
// transport validates, authorises, publishes and answers alike: a request
// is the JSON body of the HTTP route, an answer the value the route writes
// as JSON, and every refusal an *Error whose Code the transport passes on.
// The principal is read from the context (identity.NewContext), put there
// by the transport after Authorize.

// Body limits of the operations, for transports that read the request
// themselves.
const (
	MaxEventBody   = maxEventBody
	MaxCatalogBody = maxCatalogBody
)

// Published is the answer to an accepted event.
type Published struct {
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"stream_seq"`
	Duplicate bool   `json:"duplicate"`
}

// published is the webhook's name for it.
type published = Published

// Quote evaluates an order as if it were paid now (or at its occurred_at)
// and changes nothing. The body is a paid event's order object, with
// occurred_at, company_id and pos_config_id optionally beside its fields;
// events.DecodeQuote checks it with the very decoder the order worker uses,
// so a quote refuses exactly what the worker would dead-letter, and names
// each violation by its pointer into the body as sent (/lines/0/qty).
func (s *Server) Quote(ctx context.Context, body []byte) (*events.OrderResult, error) {
	if int64(len(body)) > maxEventBody {
		return nil, tooLarge(maxEventBody)
	}
	ev, err := events.DecodeQuote(body, s.d.Now())
	var inv *events.InvalidError
	if errors.As(err, &inv) {
		return nil, violations(http.StatusBadRequest, CodeInvalidOrder, "invalid order", inv.Violations)
	}
	if err != nil {
		return nil, err
	}
	if err := authorizeStore(ctx, ev.CompanyID, ev.PosConfigID); err != nil {
		return nil, err
	}
	var res *events.OrderResult
	err = ledger.Read(s.replica(), s.d.Pool, func(db ledger.DB) (err error) {
		res, err = s.d.Store.Quote(ctx, db, s.d.Catalog(), *ev)
		return err
	})
	switch {
	case errors.Is(err, ledger.ErrNoCatalog):
		return nil, apiErr(http.StatusServiceUnavailable, CodeNoCatalog, "no catalog applied yet")
	case errors.Is(err, ledger.ErrCurrencyMismatch):
		return nil, violations(http.StatusBadRequest, CodeInvalidOrder, "invalid order",
			[]schemas.Violation{{Pointer: "/currency", Message: err.Error()}})
	case err != nil:
		return nil, err
	}
	return res, nil
}

// PublishEvent validates an input event and publishes it, byte for byte,
// to its keyed subject with Nats-Msg-Id = event_id, so that an event sent
// twice within the stream's duplicate window is stored once (Duplicate)
// and one sent later is skipped by the worker's inbox.
func (s *Server) PublishEvent(ctx context.Context, body []byte) (Published, error) {
	if int64(len(body)) > maxEventBody {
		return Published{}, tooLarge(maxEventBody)
	}
	ev, err := events.Decode(body)
	var inv *events.InvalidError
	if errors.As(err, &inv) {
		return Published{}, violations(http.StatusBadRequest, CodeInvalidEvent, "invalid event", inv.Violations)
	}
	if err != nil {
		return Published{}, err
	}
	if err := authorizeStore(ctx, ev.CompanyID, ev.PosConfigID); err != nil {
		return Published{}, err
	}
	return s.publishEvent(ctx, ev, body)
}

// publish stores one event in POS_ORDERS and waits for JetStream's ack.
func (s *Server) publish(r *http.Request, ev *events.Event, data []byte) (Published, error) {
	return s.publishEvent(r.Context(), ev, data)
}

func (s *Server) publishEvent(ctx context.Context, ev *events.Event, data []byte) (Published, error) {
	subject := s.routing.Subject(ctx, s.d.Subjects, ev)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.EventID)
	// The request's trace goes on in the message headers (internal/tracing).
	ctx, span := tracing.StartPublish(ctx, s.d.Subjects.StreamOrders(), msg.Header, attribute.String("promo.event_id", ev.EventID))
	ack, err := s.d.JS.PublishMsg(ctx, msg)
	tracing.End(span, err)
	if err != nil {
		s.log.Warn().Err(err).Str("event_id", ev.EventID).Str("subject", subject).Msg("publish failed")
		return Published{}, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the event could not be stored in JetStream; send it again")
	}
	s.log.Debug().Str("event_id", ev.EventID).Str("subject", subject).Uint64("stream_seq", ack.Sequence).
		Bool("duplicate", ack.Duplicate).Msg("event published")
	return Published{EventID: ev.EventID, Type: ev.Type, Subject: subject, StreamSeq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// Customer answers a customer's balance as of now. An id no event could
// carry (NUL, invalid UTF-8, control characters, over 200 characters) is
// answered 400 before it reaches PostgreSQL, which would refuse it.
func (s *Server) Customer(ctx context.Context, id string) (*ledger.CustomerView, error) {
	if err := events.CheckID(id); err != nil {
		return nil, violations(http.StatusBadRequest, CodeInvalidRequest, "invalid customer id in the path",
			[]schemas.Violation{{Pointer: "/customer_id", Message: err.Error()}})
	}
	cat := s.d.Catalog()
	if cat == nil {
		return nil, apiErr(http.StatusServiceUnavailable, CodeNoCatalog, "no catalog applied yet")
	}
	var v *ledger.CustomerView
	err := ledger.Read(s.replica(), s.d.Pool, func(db ledger.DB) (err error) {
		v, err = s.d.Store.Customer(ctx, db, id, s.d.Now(), cat)
		return err
	})
	if errors.Is(err, ledger.ErrUnknownCustomer) {
		return nil, apiErr(http.StatusNotFound, CodeUnknownCustomer, "no customer %q: no order of this customer was processed", id)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// ApplyCatalog applies a catalog document (YAML or JSON), refused whole
// with every violation listed, and records it in the audit trail with
// source, where the request came from ("http 10.0.0.7:51234"). The order
// workers switch to the new version on its NOTIFY.
func (s *Server) ApplyCatalog(ctx context.Context, doc []byte, source string) (int64, error) {
	if int64(len(doc)) > maxCatalogBody {
		return 0, tooLarge(maxCatalogBody)
	}
	e := auditEntry(ctx, source)
	cat, err := rules.Parse(doc)
	var ce *rules.CatalogError
	if errors.As(err, &ce) {
		s.auditRefusedCatalog(ctx, e, len(ce.Violations))
		return 0, violations(http.StatusUnprocessableEntity, CodeInvalidCatalog, "invalid catalog", ce.Violations)
	}
	if err != nil {
		return 0, err
	}
	if err := s.d.Store.CheckCatalog(cat); err != nil {
		return 0, violations(http.StatusUnprocessableEntity, CodeInvalidCatalog, "invalid catalog",
			[]schemas.Violation{{Message: "this engine has no PROMO_COUPON_SECRET to derive coupon codes with: " + err.Error()}})
	}
	version, err := s.applyCatalog(ctx, e, cat)
	if err != nil {
		return 0, err
	}
	s.log.Info().Int64("catalog_version", version).Str("source", source).Msg("catalog applied")
	return version, nil
}

// auditEntry is the who and where of a request for the audit trail.
func auditEntry(ctx context.Context, source string) audit.Entry {
	who := "unauthenticated"
	if p, ok := identity.FromContext(ctx); ok {
		who = p.Who()
	}
	return audit.Entry{Actor: who, Source: source}
}

// AuthorizeStore is the store scope of SPEC §8 for other transports: nil
// when the principal in ctx may act for company companyID at point of sale
// posConfigID, else a 403 forbidden_store *Error.
func AuthorizeStore(ctx context.Context, companyID, posConfigID string) error {
	return authorizeStore(ctx, events.ID(companyID), events.ID(posConfigID))
}
