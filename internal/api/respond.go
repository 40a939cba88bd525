package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/schemas"
)

// Error is an API error: the status and the body's error object.
type Error struct {
	Status  int                 `json:"-"`
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Details []schemas.Violation `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Error codes of the API.
const (
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeBodyTooLarge      = "body_too_large"
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidEvent      = "invalid_event"
	CodeInvalidOrder      = "invalid_order"
	CodeInvalidCatalog    = "invalid_catalog"
	CodeUnknownCustomer   = "unknown_customer"
	CodeNoCatalog         = "no_catalog"
	CodeUnavailable       = "unavailable"
	CodeOdooNotConfigured = "odoo_not_configured"
	CodeOdooUnavailable   = "odoo_unavailable"
	CodeOrderNotFound     = "order_not_found"
	CodeInternal          = "internal"
	CodeNotReady          = "not_ready"
)

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with the status. An encoding failure can only be a
// programming error; the status line is already gone by then.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="promoengine"`)
	}
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}

// Body limits. An event may be 1 MiB (SPEC §3); the quote's envelope and
// JSON whitespace get a little room on top.
const (
	maxEventBody   = events.MaxEventBytes + 64<<10
	maxCatalogBody = 4 << 20
)

// readBody reads the whole body, refusing more than limit bytes with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, apiErr(http.StatusBadRequest, CodeInvalidRequest, "reading the body: %v", err)
	}
	return b, nil
}

func tooLarge(limit int64) *Error {
	return apiErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the body is over the limit of %d bytes", limit)
}

// violations builds a validation error. Its size is bounded whatever the
// input (schemas.Bound): the message names three violations, details at
// most twenty, each cut to a bounded length, then "and N more".
func violations(status int, code, message string, vs []schemas.Violation) *Error {
	return &Error{Status: status, Code: code, Message: message + ": " + schemas.Join(vs, 3), Details: schemas.Bound(vs)}
}
