// Package odoo talks to Odoo 17/18 over its external JSON-RPC API: the one
// endpoint POST {url}/jsonrpc that every Odoo serves, with no custom module
// and no web session.
//
// Two services are used, exactly as SPEC §7 describes:
//
//	common.authenticate(db, login, api_key, {})            → uid (or false)
//	object.execute_kw(db, uid, api_key, model, method, args, kwargs)
//
// The uid is cached for the life of the Client and renewed once when Odoo
// answers an access-denied error (data.name odoo.exceptions.AccessDenied), so
// that an API key rotated in Odoo and in our configuration, or a user
// re-created with a new id, heals itself without a restart; a second denial
// is returned, since retrying in a loop would only lock the user out.
//
// Errors are typed so that the caller decides once what to do:
//
//   - *Error is an answer of Odoo: a JSON-RPC error object. Permanent() is
//     true for Odoo's user-facing exceptions (ValidationError, UserError and
//     its subclass RedirectWarning, MissingError, AccessError): the same
//     call will fail the same way, so the pusher dead-letters it.
//   - *HTTPError is a non-200 HTTP answer (a proxy, a worker limit, a
//     crash). 5xx and 429 are retryable; the Retry-After of a 429 or 503 is
//     kept.
//   - *TransportError is everything before an answer: DNS, connection
//     refused, TLS, a timeout, a truncated body. Retryable.
//
// IsRetryable and IsPermanent sort any error of this package.
//
// The API key is a secret: it is sent in the JSON-RPC body and nowhere else.
// It is never logged, and every text that comes back from Odoo (an error
// message, a traceback in data.debug, an HTTP error body) is scrubbed of it
// before it becomes part of an error, since an Odoo module that echoes its
// arguments in a traceback would otherwise leak it into our logs and dead
// letters.
//
// Record and its helpers read Odoo's JSON as Odoo writes it: false for an
// empty field, [id, "display name"] for a many-to-one read with read() or
// search_read(), a bare id for one read with load=None (webhook payloads),
// floats as JSON numbers that are read from their digits (never through
// float64) and datetimes as "YYYY-MM-DD HH:MM:SS" in UTC.
//
// POSOrderEvents turns a pos.order into the input events of SPEC §3 by
// reading it back from Odoo. The Odoo addon (odoo/promo_engine,
// event_builder.py) builds the same events with the same ids, so an order
// that arrives both ways is processed once.
//
// The webhook path never loses an order (docs/ODOO.md, DESIGN "Odoo
// intake"): the /v1/odoo/webhook route only records an OrderRef — the order
// id, what the webhook claimed, the credential's StoreScope — on
// PROMO_ODOO_ORDERS with RecordOrder and answers at once; the read-back
// worker (workers.OdooReadback) reads the order with POSOrderEvents, for as
// long as Odoo takes to commit it. Reconcile (the reconciler worker and
// `promoengine odoo sync`) asks Odoo for final orders changed in a window
// (ChangedOrders) and records those whose event ids the engine has not
// processed.
package odoo
