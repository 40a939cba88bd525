// Package consume is the one JetStream run loop every promoengine worker
// uses, and the one place where the outcome of handling a message is turned
// into what JetStream hears: Ack, NakWithDelay, or a dead letter then Term.
//
// Backpressure: a Fetcher hands out a message only when one of its slots is
// free, so a slow database slows fetching instead of piling messages up in
// memory (and past their AckWait).
//
// Outcomes are typed errors decided once, in Settle:
//
//	nil                      → Ack
//	*Permanent{Code, …}      → dead letter with the original bytes, then Term
//	*Retry{Delay, Code, …}   → NakWithDelay; on the last allowed delivery the
//	                           message is dead-lettered with Code instead
//	context.Canceled         → Nak without delay: another worker takes it now
//	any other error          → NakWithDelay with a growing delay; dead letter
//	                           processing_failed after the last delivery
//
// Nothing is ever dropped silently: the only ways out of a stream are an ack
// after the effects committed, or a dead letter acknowledged by the DLQ
// stream before the original is terminated.
package consume
