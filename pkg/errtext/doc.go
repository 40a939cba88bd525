// Package errtext bounds the text of every error built from untrusted input.
//
// An error message that quotes what it refuses grows with the input: a
// thousand lines that each quote a hundred-thousand-digit amount made a
// 400 MB answer out of a 71 KB request, and a catalog whose YAML aliases
// repeat a large string a gigabyte of it. Every message that quotes a value
// or lists problems goes through this package instead, so that its size is
// bounded whatever the input:
//
//   - a quoted value keeps at most MaxQuoted characters, then says how long
//     it was ("aaaa…" (50000 bytes));
//   - one message keeps at most MaxMessage bytes;
//   - a list keeps at most MaxListed items, then says "and N more".
//
// The HTTP API's error bodies, the event decoder, the catalog validator, the
// NATS quote service and the dead-letter headers all use it (through
// schemas.Bound for lists of violations). Cutting always falls on a UTF-8
// boundary, and Quote escapes control characters, so what comes out is safe
// in a JSON body, a log line and a NATS header alike.
//
// The package is pure (standard library only) so that pkg/events and
// pkg/rules can use it.
package errtext
