package workers

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"

	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/schemas"
)

// QuoteService answers the NATS micro service promo.quote (service "promo",
// endpoint "quote"): the dry-run evaluation of an order against the catalog
// in force and the customer's current ledger state. It changes nothing.
// Requests are the same body as POST /v1/quote; errors answer with a micro
// error code 400 (the violations as data) or 503 (no catalog yet) or 500.
type QuoteService struct {
	nc       *nats.Conn
	pool     *pgxpool.Pool
	replica  ledger.DB // nil without a read replica
	store    *ledger.Store
	catalogs *CatalogWatcher
	subjects events.Subjects
	log      zerolog.Logger
	svc      micro.Service
	now      func() time.Time
}

// NewQuoteService returns the service; call Start.
func NewQuoteService(nc *nats.Conn, pool, readPool *pgxpool.Pool, store *ledger.Store, catalogs *CatalogWatcher, subjects events.Subjects, log zerolog.Logger) *QuoteService {
	var replica ledger.DB
	if readPool != nil {
		replica = readPool
	}
	return &QuoteService{nc: nc, pool: pool, replica: replica, store: store, catalogs: catalogs, subjects: subjects,
		log: log.With().Str("worker", "quote").Logger(), now: time.Now}
}

// Start registers the service.
func (q *QuoteService) Start(ctx context.Context) error {
	svc, err := micro.AddService(q.nc, micro.Config{
		Name:        "promo",
		Version:     "1.0.0",
		Description: "promoengine dry-run evaluation",
	})
	if err != nil {
		return err
	}
	err = svc.AddEndpoint("quote", micro.HandlerFunc(func(req micro.Request) { q.handle(ctx, req) }),
		micro.WithEndpointSubject(q.subjects.Quote()))
	if err != nil {
		_ = svc.Stop()
		return err
	}
	q.svc = svc
	return nil
}

// Stop deregisters the service, letting requests in progress finish.
func (q *QuoteService) Stop() {
	if q.svc != nil {
		_ = q.svc.Stop()
	}
}

func (q *QuoteService) handle(ctx context.Context, req micro.Request) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ctx, span := tracing.StartRequest(ctx, "quote "+q.subjects.Quote(), nats.Header(req.Headers()))
	defer span.End()
	ev, err := events.DecodeQuote(req.Data(), q.now())
	if err != nil {
		var ie *events.InvalidError
		details, _ := json.Marshal(map[string]any{"error": err.Error()})
		if errors.As(err, &ie) {
			details, _ = json.Marshal(map[string]any{"violations": schemas.Bound(ie.Violations)})
		}
		_ = req.Error("400", errtext.Header(err.Error(), 4000), details)
		return
	}
	cat := q.catalogs.Current()
	if cat == nil {
		_ = req.Error("503", "no catalog applied yet", nil)
		return
	}
	var res *events.OrderResult
	err = ledger.Read(q.replica, q.pool, func(db ledger.DB) (err error) {
		res, err = q.store.Quote(ctx, db, cat, *ev)
		return err
	})
	if err != nil {
		q.log.Error().Ctx(ctx).Err(err).Msg("quote")
		span.SetStatus(codes.Error, "quote failed")
		_ = req.Error("500", "quote failed", nil)
		return
	}
	_ = req.RespondJSON(res)
}
