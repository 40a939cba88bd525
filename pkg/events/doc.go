// Package events defines promoengine's wire contract: the input order events
// Odoo publishes, the result events the engine publishes back, their NATS
// subjects, and the decoder that turns untrusted bytes into a valid Event or
// a list of violations each naming its field by JSON pointer.
//
// Decoding is strict because anything that gets past it changes customers'
// money. Every event is checked against the JSON Schema of its type (the very
// files in schemas/ that integrators read), then against the rules a schema
// cannot express (line ids unique, qty > 0, the 1 MiB and 1,000 line limits).
// Amounts are read from their literal digits into apd decimals — a JSON
// number 0.1 is exactly one tenth — and integer ids, which Odoo sends, are
// normalised to their decimal strings.
//
// Hostile input costs work bounded by its size, and what passes decoding
// cannot fail in PostgreSQL because of its content (issue 14). Before the
// schema runs, invalid UTF-8 is refused, and one walk over the parsed
// document (screen.go) refuses numbers longer than 64 characters or with an
// exponent of three digits or more (the schema validator's integer check
// builds a big.Rat: 1e999999 cost 25 ms, a million digits 2 s), lists over
// 1,000 items, and NUL in any string or key (PostgreSQL text and jsonb
// cannot hold it). After it, ids are integers of at most 19 digits or
// strings CheckID accepts (1–200 characters, no control characters), and so
// are event_id and coupon codes; occurred_at lies in [2000-01-01,
// 2100-01-01); -0 is read as 0. Every message quotes values through
// pkg/errtext, and InvalidError lists at most twenty violations.
//
// A decode failure is permanent: the worker dead-letters the original bytes
// with code invalid_event and the violations as the message. Nothing in this
// package touches the network or the clock.
package events
