package grpcapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/promov1/promov1connect"
)

// Deps is what the service works with.
type Deps struct {
	// API is the HTTP API whose operations the service calls.
	API      *api.Server
	JS       jetstream.JetStream
	Subjects events.Subjects
	// Ready checks that NATS and PostgreSQL are reachable (gRPC health).
	Ready func(ctx context.Context) error
	// Registerer takes promo_grpc_requests_total; nil: not exported.
	Registerer prometheus.Registerer
	Log        zerolog.Logger
}

// Service is promo.v1.PromoService with gRPC health checking and server
// reflection, to be mounted beside the HTTP API.
type Service struct {
	routes map[string]http.Handler
	watch  *hub
}

// maxMessage bounds any request message: a catalog of 4 MiB and room for
// its envelope. Each operation applies its own limit on top (an event 1 MiB
// plus room, as over HTTP).
const maxMessage = api.MaxCatalogBody + 64<<10

// New builds the service and its routes.
func New(d Deps) (*Service, error) {
	log := d.Log.With().Str("component", "grpcapi").Logger()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promo_grpc_requests_total",
		Help: "Calls of promo.v1.PromoService (gRPC, gRPC-Web and Connect), by procedure and status code.",
	}, []string{"procedure", "code"})
	if d.Registerer != nil {
		if err := d.Registerer.Register(requests); err != nil {
			return nil, fmt.Errorf("grpcapi: %w", err)
		}
	}
	svc := &service{api: d.API, watch: newHub(d.JS, d.Subjects, log)}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(&interceptor{api: d.API, log: log, requests: requests}),
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
		connect.WithReadMaxBytes(maxMessage),
		connect.WithRecover(func(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.Error().Str("procedure", spec.Procedure).Str("panic", fmt.Sprint(p)).Msg("handler panicked")
			ce, _ := toConnect(nil)
			return ce
		}),
	}
	if tracing.Enabled() {
		// A SERVER span per call, first so that it covers authentication;
		// the caller's traceparent is trusted like an HTTP request's (the
		// published event continues its trace). Metrics stay ours.
		otel, err := otelconnect.NewInterceptor(otelconnect.WithTrustRemote(), otelconnect.WithoutMetrics())
		if err != nil {
			return nil, fmt.Errorf("grpcapi: %w", err)
		}
		opts = append([]connect.HandlerOption{connect.WithInterceptors(otel)}, opts...)
	}
	path, handler := promov1connect.NewPromoServiceHandler(svc, opts...)
	s := &Service{routes: map[string]http.Handler{path: streamDeadlines(handler)}, watch: svc.watch}

	healthPath, health := grpchealth.NewHandler(&checker{ready: d.Ready})
	s.routes[healthPath] = health
	reflector := grpcreflect.NewStaticReflector(promov1connect.PromoServiceName, grpchealth.HealthV1ServiceName)
	for _, mk := range []func(*grpcreflect.Reflector, ...connect.HandlerOption) (string, http.Handler){
		grpcreflect.NewHandlerV1, grpcreflect.NewHandlerV1Alpha,
	} {
		p, h := mk(reflector)
		s.routes[p] = h
	}
	return s, nil
}

// Routes are the handlers to mount on the HTTP API's mux, by path prefix:
// /promo.v1.PromoService/, /grpc.health.v1.Health/ and the reflection
// services.
func (s *Service) Routes() map[string]http.Handler { return s.routes }

// Close ends every WatchResults stream (Unavailable: watch again, on
// another node) so that the HTTP server's graceful shutdown does not wait
// for streams that never end by themselves. Register it with
// http.Server.RegisterOnShutdown.
func (s *Service) Close() { s.watch.close() }

// streamDeadlines lifts the HTTP server's read and write timeouts (30 s and
// 2 min, meant for single requests) from WatchResults streams, which last
// as long as the till watches, and gives the stream a way to send its
// response headers before its first result (flushHeaders).
func streamDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == promov1connect.PromoServiceWatchResultsProcedure {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
			r = r.WithContext(context.WithValue(r.Context(), flushKey{}, func() { _ = rc.Flush() }))
		}
		next.ServeHTTP(w, r)
	})
}

type flushKey struct{}

// flushHeaders sends a stream's response headers now. connect-go sends
// them with the first message, and its clients wait for them before the
// call returns: a watch of a quiet store would hang its caller until the
// store's first result. connect has set the protocol's headers on the
// ResponseWriter by the time the handler runs, and ends the stream in the
// body or in HTTP trailers (gRPC-Web too, once the handler set a response
// header of its own), so the stream's end is unaffected.
func flushHeaders(ctx context.Context) {
	if f, ok := ctx.Value(flushKey{}).(func()); ok {
		f()
	}
}

// checker answers gRPC health checks as /readyz does: serving while NATS
// and PostgreSQL answer, for the server as a whole ("") and for
// promo.v1.PromoService.
type checker struct {
	ready func(ctx context.Context) error
}

func (c *checker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", promov1connect.PromoServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if c.ready != nil {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := c.ready(ctx); err != nil {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
		}
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
