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
// A decode failure is permanent: the worker dead-letters the original bytes
// with code invalid_event and the violations as the message. Nothing in this
// package touches the network or the clock.
package events
