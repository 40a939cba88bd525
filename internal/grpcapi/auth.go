package grpcapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/pkg/promov1/promov1connect"
)

// needs is the role each procedure needs, as its HTTP route does.
var needs = map[string]string{
	promov1connect.PromoServiceQuoteProcedure:        config.RolePOS,
	promov1connect.PromoServicePublishEventProcedure: config.RolePOS,
	promov1connect.PromoServiceGetCustomerProcedure:  config.RolePOS,
	promov1connect.PromoServiceWatchResultsProcedure: config.RolePOS,
	promov1connect.PromoServiceApplyCatalogProcedure: config.RoleAdmin,
}

// interceptor authenticates every call with the HTTP API's authenticator
// (Server.Authorize: the same keys, tokens, roles and messages), puts the
// principal in the context for the store scope, turns API errors into
// statuses, and counts and logs calls.
type interceptor struct {
	api      *api.Server
	log      zerolog.Logger
	requests *prometheus.CounterVec // procedure, code
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		procedure := req.Spec().Procedure
		ctx, err := i.authorize(ctx, procedure, req.Header().Get("Authorization"), req.Peer().Addr)
		var resp connect.AnyResponse
		if err == nil {
			resp, err = next(ctx, req)
		}
		err = i.finish(procedure, start, err)
		return resp, err
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		procedure := conn.Spec().Procedure
		ctx, err := i.authorize(ctx, procedure, conn.RequestHeader().Get("Authorization"), conn.Peer().Addr)
		if err == nil {
			err = next(ctx, conn)
		}
		return i.finish(procedure, start, err)
	}
}

// authorize returns ctx with the caller's principal, or the refusal.
func (i *interceptor) authorize(ctx context.Context, procedure, authorization, peer string) (context.Context, error) {
	need, ok := needs[procedure]
	if !ok {
		return ctx, apiError(api.CodeInternal, "no role is configured for "+procedure)
	}
	p, e := i.api.Authorize(ctx, bearer(authorization), procedure, need, peer)
	if e != nil {
		return ctx, e
	}
	return identity.NewContext(ctx, p), nil
}

// finish turns an API error into its status, logs what is not the caller's
// fault, and counts the call.
func (i *interceptor) finish(procedure string, start time.Time, err error) error {
	code := "ok"
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
	case errors.Is(err, context.Canceled): // the caller's doing: not logged
		err = connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		err = connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	if err != nil {
		if !errors.As(err, &ce) {
			var known bool
			ce, known = toConnect(err)
			if !known {
				i.log.Error().Err(err).Str("procedure", procedure).Msg("call failed")
			}
			err = ce
		}
		code = ce.Code().String()
	}
	if i.requests != nil {
		i.requests.WithLabelValues(procedure, code).Inc()
	}
	i.log.Debug().Str("procedure", procedure).Str("code", code).Dur("took", time.Since(start)).Msg("rpc")
	return err
}

// bearer is the credential of an authorization header ("Bearer <key>",
// the scheme in any case), as the HTTP API reads it.
func bearer(authorization string) string {
	scheme, key, ok := strings.Cut(authorization, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(key)
	}
	return ""
}
