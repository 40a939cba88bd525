// Package api is promoengine's HTTP API (SPEC §8): the door for tills and
// back offices that do not speak NATS, and for Odoo's own automation rules.
//
// Routes and the role each needs (admin may call everything):
//
//	POST /v1/quote             pos    dry-run evaluation of an order; changes nothing
//	POST /v1/events            pos    ingest an input event: validate, publish, 202
//	GET  /v1/customers/{id}    pos    balance (as of now), debt, lots, levels, history
//	POST /v1/odoo/webhook      webhook Odoo "Send Webhook Notification" on pos.order
//	                                  (a pos key may call it too)
//	PUT  /v1/catalog           admin  apply a catalog (YAML or JSON)
//	GET  /healthz              —      the process is alive
//	GET  /readyz               —      NATS and PostgreSQL are reachable
//
// /metrics is mounted by the engine next to this handler, not here.
//
// The operations behind the routes (service.go: Quote, PublishEvent,
// Customer, ApplyCatalog, Authorize, AuthorizeStore) take a context and the
// route's JSON body and return the answer or an *Error, so that the gRPC,
// gRPC-Web and Connect service (internal/grpcapi) calls the very same code.
//
// Authentication is a bearer (Authorization: Bearer <key>): a key from
// PROMO_API_KEYS, or an OpenID Connect token when PROMO_OIDC_ISSUER is set;
// internal/identity checks both (keys in constant time over every key,
// tokens per SPEC §8) and gives a Principal, which the route wrapper puts in
// the request context (auth.go). Odoo's webhook action cannot send headers,
// so the webhook route alone also accepts the bearer as ?token=<key>; it is
// checked the same way (the query string is never logged). 401 means no
// valid key or token, 403 `forbidden` a valid one without the role.
//
// Store scope (SPEC §8): a key or token limited to stores may quote,
// publish and call the webhook only for orders of those stores;
// authorizeStore is the one check, made on the quote body, the published
// event, and the events the webhook built from Odoo's read-back before
// any is published (403 `forbidden_store`). PUT /v1/catalog is recorded in
// the audit trail (internal/audit) in the transaction that applies it.
//
// Every error is JSON: {"error": {"code", "message", "details"}}, where
// details, for a validation error, lists every violation as {pointer,
// message}, the pointer naming the field in the request body. Request bodies
// are limited (an event or an order: 1 MiB plus room for its envelope; a
// catalog: 4 MiB) and a larger body is refused with 413 before it is read
// whole.
//
// Every request is counted in promo_http_requests_total by route pattern
// (/v1/customers/{id}, never the id) and status code.
//
// The webhook route records the order id on PROMO_ODOO_ORDERS and answers
// within milliseconds; it reads nothing from Odoo. Odoo posts the webhook
// from inside the transaction that pays the order (and a POS syncing many
// orders commits them all at the end), so the order is read back later, by
// the read-back worker (workers.OdooReadback), with retries for as long as
// Odoo takes. A webhook key (role webhook) may call this route and nothing
// else: it sits in the automation rule's URL and in Odoo's logs.
package api
