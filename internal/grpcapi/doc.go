// Package grpcapi serves promo.v1.PromoService (schemas/proto/promo/v1,
// Go code in pkg/promov1) with connectrpc.com/connect: gRPC, gRPC-Web and
// the Connect protocol from one handler, mounted on the HTTP API's mux and
// port (HTTP/2 in cleartext too, so native gRPC clients need no TLS), with
// gRPC health checking (grpc.health.v1, serving while /readyz would answer
// 200) and server reflection (v1 and v1alpha, for grpcurl and friends).
//
//	Quote          pos    POST /v1/quote
//	PublishEvent   pos    POST /v1/events
//	GetCustomer    pos    GET  /v1/customers/{id}
//	ApplyCatalog   admin  PUT  /v1/catalog
//	WatchResults   pos    (server stream) the order results of one store
//
// # One API, two transports
//
// The package owns no business logic. Each call is rendered as the JSON
// body of its HTTP route (protojson with the SPEC's field names; an empty
// field is an absent one) and handed to the very function the HTTP handler
// calls (api.Server.Quote, PublishEvent, Customer, ApplyCatalog), whose
// answer — the value the route writes as JSON — is read back into the
// message that mirrors it. So a call validates with the order worker's
// decoder and names violations by the same JSON pointers, an event is
// published through the same keying resolver to the same keyed subject
// (pos.orders.<kind>.<key>) with Nats-Msg-Id = event_id, and the answers
// are those of the HTTP API field for field: the tests compare them byte
// for byte after protojson. The messages mirror the JSON shapes: decimals
// and times are strings, a field the JSON omits when empty is `optional`,
// 64-bit integers (only stream_seq) are strings in protobuf's JSON mapping.
// Connect clients asking for JSON get the SPEC's field names (codec.go).
//
// # Credentials, roles, store scope
//
// "authorization: Bearer <key or token>" in the request metadata, checked
// by api.Server.Authorize: the HTTP API's authenticator (API keys, OpenID
// Connect tokens), the same roles per operation, the same messages (naming
// the procedure where HTTP names the route). The principal goes in the
// context, where the operations find it for the store scope
// (forbidden_store). Health and reflection need no credential, like
// /healthz.
//
// # Errors
//
// Every refusal carries the HTTP API's error object as a promo.v1.Error
// detail ({code, message, details: [{pointer, message}]}); the status code
// is the class of the code, chosen by what the client should do:
//
//	unauthorized                                   Unauthenticated
//	forbidden, forbidden_store                     PermissionDenied
//	invalid_event, invalid_order, invalid_request,
//	invalid_catalog                                InvalidArgument
//	unknown_customer (not_found, order_not_found)  NotFound
//	body_too_large                                 ResourceExhausted
//	no_catalog                                     FailedPrecondition
//	unavailable (not_ready, odoo_*)                Unavailable
//	internal, anything else                        Internal
//
// no_catalog is FailedPrecondition, not Unavailable like its HTTP 503:
// retrying does not help until an operator applies a catalog, which is
// what gRPC's FailedPrecondition says. An error that is not an API error is
// logged and answered Internal "internal error", as over HTTP.
//
// # Limits
//
// A message is refused over 4 MiB + 64 KiB by connect (ResourceExhausted)
// before it is read; each operation then applies its route's limit to the
// request rendered as JSON (an event or a quote: 1 MiB + 64 KiB; a catalog
// document: 4 MiB) with body_too_large, as over HTTP.
//
// # WatchResults
//
// A result event does not name its store; its input event does. The hub
// (watch.go) joins them: one ordered consumer on POS_ORDERS (reading only
// event_id, company_id and pos_config_id of each event) and one on
// promo.results.order, both ephemeral and started 10 s in the past, shared
// by every watch of the process (started with the first, stopped with the
// last), matched by the result's causation_id. Each side waits in a
// bounded window for the other (window.go: inputs 2 min / 100,000, results
// 10 s / 10,000 / 32 MiB), so memory stays bounded whatever the traffic. A
// watch gets the results published from shortly before its call on; a
// result whose input is older than the windows (a backlog of minutes) is
// not streamed — the stream is a live feed for tills and dashboards, not a
// replay (PROMO_RESULTS is). A watcher more than 256 results behind is
// ended with Unavailable rather than holding up the others, and every watch
// ends with Unavailable when the server shuts down: watch again. The HTTP
// server's read and write timeouts are lifted from these streams only.
package grpcapi
