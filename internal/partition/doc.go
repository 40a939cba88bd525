// Package partition decides which engine process consumes which partition
// of POS_ORDERS, so that every customer's events are applied in stream
// order by exactly one process at a time while several processes share the
// load and take over a lost one's partitions within seconds.
//
// It keeps the three concerns apart, each resting on NATS itself:
//
//   - Who is alive (Members): each process rewrites its key in a JetStream
//     key-value bucket every beat; the bucket's max age removes the key of a
//     process that stopped beating. The live processes are the keys present.
//   - Who should consume what (Assign): rendezvous hashing of the units
//     (every partition, and the keyer) over the live processes, computed by
//     each process from the same list. A process joining or leaving moves
//     only its share of the units.
//   - Who does consume (the server): every unit's durable consumer is
//     pulled in a priority group with the pinned-client policy, so the
//     server delivers a unit's messages to one process at a time even while
//     two processes briefly disagree about the assignment. A unit moves
//     when its old owner stopped pulling for the consumer's pinned TTL, or
//     at once when the old owner settled everything it held and unpinned
//     it; streams.Timing explains why stream order survives the move.
//
// The package is deliberately small: membership and assignment, nothing
// about messages. workers.Partitions acquires and releases the units this
// process owns.
package partition
