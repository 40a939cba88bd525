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
// Authentication is a bearer key (Authorization: Bearer <key>) from
// PROMO_API_KEYS, each with a role. Keys are compared in constant time: the
// presented key and every configured key are hashed with SHA-256, so that
// the comparison always runs over 32 bytes whatever the lengths, and every
// configured key is compared, so that the time taken says nothing about
// which key nearly matched. Odoo's webhook action cannot send headers, so
// the webhook route alone also accepts the key as ?token=<key>; it is the
// same key, checked the same way and role-checked (the query string is never
// logged). 401 means no valid key, 403 a valid key of the wrong role.
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
