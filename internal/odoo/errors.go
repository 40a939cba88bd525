package odoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrAccessDenied is matched (errors.Is) by a refused authentication: Odoo
// answered uid false, or execute_kw was denied again after a fresh
// authenticate. The login or API key is wrong or revoked.
var ErrAccessDenied = errors.New("odoo: access denied")

// Error is a JSON-RPC error answered by Odoo. Raw is the error object as
// received (scrubbed of the API key), which is what goes into a dead letter
// so that an operator sees exactly what Odoo said.
type Error struct {
	Code     int    // JSON-RPC error code; Odoo uses 200 for server-side exceptions
	Message  string // e.g. "Odoo Server Error"
	DataName string // Python class of the exception, e.g. "odoo.exceptions.ValidationError"
	// DataMessage is the exception's own message (data.message), the text a
	// user would have seen in Odoo.
	DataMessage string
	Raw         json.RawMessage
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("odoo: ")
	if e.DataName != "" {
		b.WriteString(e.DataName)
		b.WriteString(": ")
	}
	switch {
	case e.DataMessage != "":
		b.WriteString(e.DataMessage)
	case e.Message != "":
		b.WriteString(e.Message)
	default:
		fmt.Fprintf(&b, "JSON-RPC error %d", e.Code)
	}
	return b.String()
}

// exceptionName is the class name without its module:
// "odoo.exceptions.ValidationError" → "ValidationError".
func (e *Error) exceptionName() string {
	n := e.DataName
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	return n
}

// permanentExceptions are Odoo's user-facing exceptions: raised by business
// code on purpose, they fail the same way however often the call is
// repeated. RedirectWarning is a UserError subclass.
var permanentExceptions = map[string]bool{
	"ValidationError": true,
	"UserError":       true,
	"RedirectWarning": true,
	"MissingError":    true,
	"AccessError":     true,
}

// transientExceptions are database conflicts Odoo gives up on after its own
// retries; a later call usually succeeds.
var transientExceptions = map[string]bool{
	"SerializationFailure":     true,
	"TransactionRollbackError": true,
	"LockNotAvailable":         true,
	"OperationalError":         true,
}

// Permanent reports whether the call can never succeed as it is: Odoo
// refused it with a user-facing exception. The match is on the class name
// so that "odoo.exceptions.ValidationError" and a module's own subclass
// path ending in ".ValidationError" are both recognised.
func (e *Error) Permanent() bool { return permanentExceptions[e.exceptionName()] }

// AccessDenied reports a refused login or API key (not to be confused with
// AccessError, a permission refused to a valid user, which is permanent).
func (e *Error) AccessDenied() bool { return e.exceptionName() == "AccessDenied" }

// Is makes errors.Is(err, ErrAccessDenied) true for an access-denied answer.
func (e *Error) Is(target error) bool { return target == ErrAccessDenied && e.AccessDenied() }

// HTTPError is an answer other than 200 OK, typically from a proxy in front
// of Odoo or from Odoo's worker limits.
type HTTPError struct {
	StatusCode int
	// RetryAfter is the delay asked by a 429 or 503 (0 when absent).
	RetryAfter time.Duration
	Body       string // the beginning of the body, scrubbed
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("odoo: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable is true for 5xx and 429.
func (e *HTTPError) Retryable() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// TransportError is a failure before Odoo answered: connection, TLS,
// timeout, or an unreadable body.
type TransportError struct {
	Op  string // the JSON-RPC call, e.g. "object.execute_kw pos.order.promo_engine_apply"
	Err error
}

func (e *TransportError) Error() string { return "odoo: " + e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time.
func (e *TransportError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &t) && t.Timeout())
}

// IsPermanent reports an Odoo answer that will not change on retry.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent()
}

// IsRetryable reports a failure worth trying again soon: a transport error
// or timeout (but not a cancellation by the caller), HTTP 5xx or 429, or a
// database conflict inside Odoo.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var te *TransportError
	var he *HTTPError
	var e *Error
	switch {
	case errors.As(err, &te):
		return true
	case errors.As(err, &he):
		return he.Retryable()
	case errors.As(err, &e):
		return transientExceptions[e.exceptionName()]
	}
	return false
}

// RetryAfter returns the delay Odoo (or its proxy) asked for, or 0.
func RetryAfter(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

// FailureReason names the kind of a failed call for logs and metrics:
// not_found, access_denied, timeout, transport, http, rpc, cancelled, or
// other.
func FailureReason(err error) string {
	var te *TransportError
	var he *HTTPError
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrOrderNotFound):
		return "not_found"
	case errors.Is(err, ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &te) && te.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &te):
		return "transport"
	case errors.As(err, &he):
		return "http"
	case errors.As(err, &e):
		return "rpc"
	}
	return "other"
}

// Unreachable reports a failure of Odoo or of the way to it — an error
// answer, an HTTP error, a connection, a timeout, refused credentials — as
// opposed to an answer whose data makes no event.
func Unreachable(err error) bool {
	var rpc *Error
	var status *HTTPError
	var transport *TransportError
	return errors.As(err, &rpc) || errors.As(err, &status) || errors.As(err, &transport) ||
		errors.Is(err, ErrAccessDenied) || errors.Is(err, context.DeadlineExceeded)
}

// scrubbedSnippet is the beginning of an answer's body for an error
// message, with the API key removed from the whole body before it is cut:
// cut first, a key that straddles the cut would not be found, and its
// prefix would reach logs and dead letters.
func (c *Client) scrubbedSnippet(body []byte) string {
	return snippet([]byte(c.scrub(string(body))))
}
