package grpcapi

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/promoengine/promoengine/internal/api"
	promov1 "github.com/promoengine/promoengine/pkg/promov1"
	"github.com/promoengine/promoengine/schemas"
)

// codeOf maps the HTTP API's error codes to status codes. The code of the
// API travels unchanged in the promo.v1.Error detail; the status code is
// its class, chosen by what a client should do (see doc.go).
var codeOf = map[string]connect.Code{
	api.CodeUnauthorized:      connect.CodeUnauthenticated,
	api.CodeForbidden:         connect.CodePermissionDenied,
	api.CodeForbiddenStore:    connect.CodePermissionDenied,
	api.CodeInvalidRequest:    connect.CodeInvalidArgument,
	api.CodeInvalidEvent:      connect.CodeInvalidArgument,
	api.CodeInvalidOrder:      connect.CodeInvalidArgument,
	api.CodeInvalidCatalog:    connect.CodeInvalidArgument,
	api.CodeBodyTooLarge:      connect.CodeResourceExhausted,
	api.CodeNotFound:          connect.CodeNotFound,
	api.CodeUnknownCustomer:   connect.CodeNotFound,
	api.CodeOrderNotFound:     connect.CodeNotFound,
	api.CodeNoCatalog:         connect.CodeFailedPrecondition,
	api.CodeUnavailable:       connect.CodeUnavailable,
	api.CodeNotReady:          connect.CodeUnavailable,
	api.CodeOdooUnavailable:   connect.CodeUnavailable,
	api.CodeOdooNotConfigured: connect.CodeUnavailable,
	api.CodeMethodNotAllowed:  connect.CodeUnimplemented,
	api.CodeInternal:          connect.CodeInternal,
}

// CodeOf is the status code of an API error code (Internal for a code it
// does not know).
func CodeOf(apiCode string) connect.Code {
	if c, ok := codeOf[apiCode]; ok {
		return c
	}
	return connect.CodeInternal
}

// toConnect turns an API error into a status with the promo.v1.Error
// detail. Any other error is an internal one: logged by the caller, never
// shown.
func toConnect(err error) (*connect.Error, bool) {
	var e *api.Error
	known := errors.As(err, &e)
	if !known {
		e = &api.Error{Code: api.CodeInternal, Message: "internal error"}
	}
	ce := connect.NewError(CodeOf(e.Code), errors.New(e.Message))
	detail := &promov1.Error{Code: e.Code, Message: e.Message}
	for _, v := range e.Details {
		detail.Details = append(detail.Details, &promov1.Violation{Pointer: v.Pointer, Message: v.Message})
	}
	if d, derr := connect.NewErrorDetail(detail); derr == nil {
		ce.AddDetail(d)
	}
	return ce, known
}

// apiError builds an API error for the service's own refusals.
func apiError(code, message string) *api.Error {
	return &api.Error{Code: code, Message: message}
}

// violation is the details of a refusal naming one field.
func violation(pointer, message string) []schemas.Violation {
	return []schemas.Violation{{Pointer: pointer, Message: message}}
}
