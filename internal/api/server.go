package api

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Deps is what the API works with.
type Deps struct {
	Keys config.APIKeys
	OIDC *identity.OIDC // tokens beside the keys; nil: keys only
	Pool *pgxpool.Pool
	// ReadPool, when set, is a streaming replica that serves quotes and
	// customer views (PROMO_DATABASE_REPLICA_URL); Pool answers when it
	// cannot.
	ReadPool *pgxpool.Pool
	JS       jetstream.JetStream
	Subjects events.Subjects
	Store    *ledger.Store
	// Catalog returns the catalog in force, nil before one was applied.
	Catalog func() *rules.Catalog
	// Odoo is nil when PROMO_ODOO_URL is not set; the webhook then answers
	// 503.
	Odoo *odoo.Client
	// StoreScope returns the store scope of a request's principal for the
	// webhook (SPEC §8: 403 forbidden_store outside it); nil, or a nil
	// answer, means every store.
	StoreScope func(r *http.Request) *odoo.StoreScope
	Metrics    *metrics.Metrics
	Log        zerolog.Logger
	// Ready checks that NATS and PostgreSQL are reachable (GET /readyz).
	Ready func(ctx context.Context) error
	// Now is the wall clock (quotes without occurred_at, customer balances);
	// nil means time.Now.
	Now func() time.Time
}

// Server serves the API.
type Server struct {
	d       Deps
	auth    *identity.Authenticator
	routing *keying.Resolver // keys the input events published
	log     zerolog.Logger
	handler http.Handler
}

// replica is the read replica's pool, nil without one.
func (s *Server) replica() ledger.DB {
	if s.d.ReadPool == nil {
		return nil
	}
	return s.d.ReadPool
}

// New builds the server and its routes.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Catalog == nil {
		d.Catalog = func() *rules.Catalog { return nil }
	}
	if d.StoreScope == nil {
		d.StoreScope = principalScope
	}
	s := &Server{d: d, auth: newAuthenticator(d.Keys, d.OIDC), log: d.Log.With().Str("component", "api").Logger()}
	var db ledger.DB
	if d.Pool != nil {
		db = d.Pool
	}
	s.routing = keying.NewResolver(db, d.Log)
	s.handler = s.routes()
	return s
}

// principalScope is the store scope of the request's principal (API key
// or token; see internal/identity), nil when unlimited.
func principalScope(r *http.Request) *odoo.StoreScope {
	p, ok := identity.FromContext(r.Context())
	if !ok || p.Scope.Unlimited() {
		return nil
	}
	return &odoo.StoreScope{CompanyIDs: p.Scope.CompanyIDs, POSConfigIDs: p.Scope.PosConfigIDs}
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server for the API on addr with every timeout
// set, so that a slow or malicious client cannot hold connections open:
// headers within 5 s, a whole request within 30 s, an answer within 2 min
// (the webhook may wait for Odoo), idle keep-alive connections 2 min.
//
// It speaks HTTP/1.1 and HTTP/2, over TLS and, without TLS, in cleartext
// (h2c): native gRPC clients need HTTP/2 and tills on a shop's LAN often
// connect without TLS (internal/grpcapi shares the port).
func (s *Server) HTTPServer(addr string) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           s.handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(s.log.With().Str("source", "net/http").Logger(), "", 0),
	}
}

// handlerFunc handles a request; a returned *Error is written as the
// answer, any other error as 500.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Roles a route may need; "" is a route without authentication.
const (
	public    = ""
	needPOS   = config.RolePOS
	needAdmin = config.RoleAdmin
	// needWebhook: a webhook, pos or admin key.
	needWebhook = config.RoleWebhook
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	type route struct {
		method, path, need string
		queryToken         bool
		h                  handlerFunc
	}
	routes := []route{
		{http.MethodPost, "/v1/quote", needPOS, false, s.quote},
		{http.MethodPost, "/v1/events", needPOS, false, s.ingest},
		{http.MethodGet, "/v1/customers/{id}", needPOS, false, s.customer},
		{http.MethodPost, "/v1/odoo/webhook", needWebhook, true, s.webhook},
		{http.MethodPut, "/v1/catalog", needAdmin, false, s.putCatalog},
		{http.MethodGet, "/healthz", public, false, s.healthz},
		{http.MethodGet, "/readyz", public, false, s.readyz},
	}
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt.path, rt.need, rt.queryToken, rt.h))
		allow := rt.method
		if rt.method == http.MethodGet {
			allow += ", HEAD"
		}
		mux.Handle(rt.path, s.wrap(rt.path, public, false, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", allow)
			return apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, rt.path, rt.method)
		}))
	}
	mux.Handle("/", s.wrap("other", public, false, func(w http.ResponseWriter, r *http.Request) error {
		return apiErr(http.StatusNotFound, CodeNotFound, "no route %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// statusWriter remembers the status for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap adds to a handler what every route has: panic recovery, the
// role check, error answers, metrics and a log line. The log line has the
// path, never the query string (it may hold a ?token=).
func (s *Server) wrap(route, need string, queryToken bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		tracing.NameRoute(r, route)
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error().Str("route", route).Str("panic", fmt.Sprint(p)).Msg("handler panicked")
				if w.status == 0 {
					writeError(w, apiErr(http.StatusInternalServerError, CodeInternal, "internal error"))
				}
			}
			if s.d.Metrics != nil {
				s.d.Metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(w.status)).Inc()
			}
			s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("route", route).
				Int("status", w.status).Dur("took", time.Since(start)).Msg("http request")
		}()
		if need != public {
			var ok bool
			if r, ok = s.authenticate(w, r, route, need, queryToken); !ok {
				return
			}
		}
		err := h(w, r)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			s.log.Error().Err(err).Str("route", route).Msg("request failed")
			e = apiErr(http.StatusInternalServerError, CodeInternal, "internal error")
		}
		if w.status == 0 {
			writeError(w, e)
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.d.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.d.Ready(ctx); err != nil {
			// The reason stays in the log: /readyz is unauthenticated, and
			// a driver's error names hosts, users and databases.
			s.log.Warn().Err(err).Msg("not ready")
			return apiErr(http.StatusServiceUnavailable, CodeNotReady, "not ready: NATS or PostgreSQL is not reachable (see the engine's log)")
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
