package grpcapi

import "time"

// window is a map whose entries leave in insertion order: when they are
// older than ttl, or to keep it within max entries and maxBytes. It holds
// the two sides of the join of WatchResults (inputs waiting for their
// result, results waiting for their input), which must stay bounded
// whatever the traffic. Not safe for concurrent use.
type window[V any] struct {
	ttl      time.Duration
	max      int
	maxBytes int
	size     func(V) int

	entries map[string]windowEntry[V]
	queue   []queued // insertion order; may name entries taken since
	head    int
	bytes   int
	seq     uint64 // numbers the puts: which queue entry is an entry's latest
}

type windowEntry[V any] struct {
	v   V
	at  time.Time
	seq uint64
}

type queued struct {
	key string
	at  time.Time
	seq uint64
}

func newWindow[V any](ttl time.Duration, maxEntries, maxBytes int, size func(V) int) *window[V] {
	return &window[V]{ttl: ttl, max: maxEntries, maxBytes: maxBytes, size: size, entries: map[string]windowEntry[V]{}}
}

// put adds (or replaces) key, then lets the oldest entries go.
func (w *window[V]) put(key string, v V, now time.Time) {
	if old, ok := w.entries[key]; ok {
		w.bytes -= w.size(old.v)
	}
	w.seq++
	w.entries[key] = windowEntry[V]{v: v, at: now, seq: w.seq}
	w.bytes += w.size(v)
	w.queue = append(w.queue, queued{key: key, at: now, seq: w.seq})
	w.expire(now)
}

// take removes and returns key's value.
func (w *window[V]) take(key string) (V, bool) {
	e, ok := w.entries[key]
	if ok {
		delete(w.entries, key)
		w.bytes -= w.size(e.v)
	}
	return e.v, ok
}

func (w *window[V]) len() int { return len(w.entries) }

// expire drops, oldest first, what is taken already, too old, or over the
// bounds; the queue, which also names taken entries, is bounded too.
func (w *window[V]) expire(now time.Time) {
	for w.head < len(w.queue) {
		q := w.queue[w.head]
		e, live := w.entries[q.key]
		live = live && e.seq == q.seq // else replaced: a later queue entry names it
		over := len(w.queue)-w.head > w.max || len(w.entries) > w.max || w.bytes > w.maxBytes
		if live && !over && now.Sub(q.at) < w.ttl {
			break
		}
		if live {
			delete(w.entries, q.key)
			w.bytes -= w.size(e.v)
		}
		w.queue[w.head] = queued{}
		w.head++
	}
	if w.head > len(w.queue)/2 {
		w.queue = append(w.queue[:0], w.queue[w.head:]...)
		w.head = 0
	}
}
