package grpcapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestWindowTakesWhatWasPut(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	w := newWindow(time.Minute, 3, 100, func(b []byte) int { return len(b) })
	w.put("a", []byte("1"), at)
	w.put("b", []byte("22"), at)
	v, ok := w.take("a")
	require.True(t, ok)
	require.Equal(t, "1", string(v))
	_, ok = w.take("a")
	require.False(t, ok, "taken once")
	require.Equal(t, 1, w.len())

	// Replaced: the old queue entry does not evict the new value.
	w.put("b", []byte("333"), at)
	w.put("c", []byte("4"), at)
	w.put("d", []byte("5"), at)
	v, ok = w.take("b")
	require.True(t, ok)
	require.Equal(t, "333", string(v))
}

func TestWindowLetsTheOldestGo(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	w := newWindow(time.Minute, 2, 100, func(b []byte) int { return len(b) })
	w.put("a", []byte("1"), at)
	w.put("b", []byte("1"), at)
	w.put("c", []byte("1"), at) // over two entries: a goes
	_, ok := w.take("a")
	require.False(t, ok)
	w.put("d", []byte("1"), at.Add(time.Minute)) // b and c are a minute old
	_, ok = w.take("b")
	require.False(t, ok)
	_, ok = w.take("c")
	require.False(t, ok)
	_, ok = w.take("d")
	require.True(t, ok)

	bytes := newWindow(time.Minute, 10, 5, func(b []byte) int { return len(b) })
	bytes.put("a", []byte("123"), at)
	bytes.put("b", []byte("123"), at) // 6 bytes: a goes
	_, ok = bytes.take("a")
	require.False(t, ok)
	require.Equal(t, 3, bytes.bytes)
}

// Whatever is put and taken, the window stays within its bounds, counts its
// bytes right, and after a put holds nothing expired.
func TestWindowStaysBounded(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		maxEntries := rapid.IntRange(1, 8).Draw(t, "max")
		maxBytes := rapid.IntRange(1, 40).Draw(t, "max_bytes")
		w := newWindow(10*time.Second, maxEntries, maxBytes, func(s string) int { return len(s) })
		at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		for i := range rapid.IntRange(0, 200).Draw(t, "ops") {
			key := fmt.Sprint(rapid.IntRange(0, 12).Draw(t, "key"))
			at = at.Add(time.Duration(rapid.IntRange(0, 3000).Draw(t, "ms")) * time.Millisecond)
			put := rapid.Bool().Draw(t, "put")
			if put {
				w.put(key, rapid.StringN(0, 10, 10).Draw(t, "value"), at)
			} else {
				w.take(key)
			}
			if w.len() > maxEntries || w.bytes > maxBytes {
				t.Fatalf("op %d: %d entries, %d bytes over %d, %d", i, w.len(), w.bytes, maxEntries, maxBytes)
			}
			if len(w.queue)-w.head > maxEntries {
				t.Fatalf("op %d: queue of %d over %d", i, len(w.queue)-w.head, maxEntries)
			}
			sum := 0
			for k, e := range w.entries {
				sum += len(e.v)
				if put && at.Sub(e.at) >= 10*time.Second { // a put lets the expired go
					t.Fatalf("op %d: %s is %s old", i, k, at.Sub(e.at))
				}
			}
			if sum != w.bytes {
				t.Fatalf("op %d: bytes %d, entries hold %d", i, w.bytes, sum)
			}
		}
	})
}
