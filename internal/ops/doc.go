// Package ops holds the logic of the operator commands of SPEC §9 —
// `publish`, `replay` (and `replay --dry-run`), `dlq` and `status` — so that
// it runs in-process against a real NATS server and a real PostgreSQL in
// tests, while cmd/promoengine only parses flags and prints.
//
// # Publish
//
// Publish reads JSON Lines, validates every line with events.Decode (the
// decoder the order worker uses, so a line that passes here is not
// dead-lettered as invalid later), and publishes each valid event to its
// subject with Nats-Msg-Id set to its event_id. Publishes are asynchronous
// with a bounded window of acknowledgements in flight. Rerunning a backfill
// is harmless twice over: inside the stream's duplicate window JetStream
// drops the copy (reported as a duplicate); beyond it the copy is stored but
// the order worker finds its event_id in the inbox and changes nothing.
//
// # Replay
//
// Replay reprocesses a range of POS_ORDERS with the order worker itself
// (workers.Orders) on an ephemeral consumer that starts at the range and is
// deleted at the end. The worker cannot be told where to stop, so the
// consumer is wrapped: messages past the range are acknowledged on the
// ephemeral consumer (which affects nobody else) and never reach the worker,
// and every message of the range is tracked until it is settled for good
// (acknowledged or dead-lettered), which is when the replay ends. Events
// already processed are skipped by the inbox, exactly as a redelivery is.
//
// # Dry run
//
// DryRun answers "what would these orders have got under the current
// catalog?" without writing anything. It rebuilds the ledger from scratch
// in PostgreSQL temporary tables — private to one session, invisible to
// every other, dropped when the session ends even if the process dies — by
// re-applying every processed event from the first one, in the order they
// were processed (stream order for each customer), with the same ledger
// calls as the worker (ledger.Batch, and Store.RunJobsWith for the recorded
// job runs). Events before the range
// use the catalog version they were processed with, events in the range the
// current catalog; each result in the range is compared with the stored
// one. See DryRun for the details and the limits.
//
// # Dead letters and status
//
// DeadLetters lists, shows, redrives and purges the messages of PROMO_DLQ,
// identified by their DLQ stream sequence. Status gathers the streams, their
// consumers, the outbox backlog and the dead letters by code.
package ops
