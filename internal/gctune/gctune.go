// Package gctune sets the engine's garbage-collector defaults.
//
// Go's default (GOGC=100, no memory limit) collects each time the heap
// doubles. The engine's heap is small and short-lived (an order's event,
// its evaluation, its batch's statements), so at 1,000 orders/s it
// collects many times a second: garbage collection was ~15 % of its CPU.
// With Tune, the collector lets the heap triple (GOGC=200) while that stays
// under a soft memory limit of Target, and keeps to the limit above it,
// which keeps the process inside SPEC §10's 100 MB at full speed (the
// live heap is 20–30 MB there). The limit follows the live heap, so it never
// falls under one and a half times the live heap plus Slack: a process
// whose live heap is large (a big catalog, a long replay) collects about
// as often as with Go's default (GOGC 50–100) rather than continuously,
// which a fixed limit would make it do.
//
// GOGC or GOMEMLIMIT in the environment turn Tune off: they are Go's own
// settings, and the operator's.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// Percent is GOGC while the heap is under the limit.
	Percent = 200
	// Target is the soft memory limit while the live heap is small.
	Target = 56 << 20
	// Slack is added to 1.5 × the live heap when that exceeds Target.
	Slack = 16 << 20
	// Every is how often the limit follows the live heap.
	Every = time.Second
)

// Tune applies the defaults unless getenv has GOGC or GOMEMLIMIT, and keeps
// the limit above the live heap until ctx ends. It reports whether it
// applied them.
func Tune(ctx context.Context, getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(Percent)
	debug.SetMemoryLimit(Limit(liveHeap()))
	go func() {
		t := time.NewTicker(Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				debug.SetMemoryLimit(Limit(liveHeap()))
			}
		}
	}()
	return true
}

// Limit is the memory limit for a live heap of live bytes.
func Limit(live uint64) int64 {
	return max(int64(Target), int64(live)+int64(live)/2+Slack)
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
