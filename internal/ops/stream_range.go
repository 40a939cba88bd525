package ops

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Range selects messages of POS_ORDERS, either by stream sequence
// (FromSeq, ToSeq inclusive) or by the time JetStream stored them (Since
// inclusive, Until exclusive, like every [from, until) of the SPEC). An
// open end stops at the stream's last message when the command starts, so
// that a replay ends even while events keep arriving.
type Range struct {
	FromSeq uint64
	ToSeq   uint64 // 0: the last message at start
	Since   time.Time
	Until   time.Time // zero: the last message at start
}

// ErrBadRange is matched by every invalid Range.
var ErrBadRange = errors.New("ops: invalid range")

// Validate checks that exactly one way of selecting is used, consistently.
func (r Range) Validate() error {
	bySeq, byTime := r.FromSeq > 0 || r.ToSeq > 0, !r.Since.IsZero() || !r.Until.IsZero()
	switch {
	case bySeq && byTime:
		return fmt.Errorf("%w: give --from-seq/--to-seq or --since/--until, not both", ErrBadRange)
	case !bySeq && !byTime:
		return fmt.Errorf("%w: give --from-seq N or --since T", ErrBadRange)
	case bySeq && r.FromSeq == 0:
		return fmt.Errorf("%w: --to-seq needs --from-seq (sequences start at 1)", ErrBadRange)
	case bySeq && r.ToSeq > 0 && r.ToSeq < r.FromSeq:
		return fmt.Errorf("%w: --to-seq %d is before --from-seq %d", ErrBadRange, r.ToSeq, r.FromSeq)
	case byTime && r.Since.IsZero():
		return fmt.Errorf("%w: --until needs --since", ErrBadRange)
	case byTime && !r.Until.IsZero() && !r.Until.After(r.Since):
		return fmt.Errorf("%w: --until %s is not after --since %s", ErrBadRange, r.Until.Format(time.RFC3339), r.Since.Format(time.RFC3339))
	}
	return nil
}

func (r Range) bySeq() bool { return r.FromSeq > 0 }

// String describes the range as the operator gave it.
func (r Range) String() string {
	if r.bySeq() {
		if r.ToSeq > 0 {
			return fmt.Sprintf("seq %d–%d", r.FromSeq, r.ToSeq)
		}
		return fmt.Sprintf("seq %d–end", r.FromSeq)
	}
	if r.Until.IsZero() {
		return fmt.Sprintf("since %s", r.Since.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s – %s", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
}

// window is a Range resolved against the stream's state at start.
type window struct {
	Range
	first uint64 // first sequence the stream still holds
	last  uint64 // last sequence that may be in the range
	empty bool
}

// resolve bounds r by the stream's state. A range entirely past the last
// message is an error (a mistyped sequence); a range starting before the
// first message still held starts there.
func resolve(r Range, st jetstream.StreamState, stream string) (window, error) {
	w := window{Range: r, first: st.FirstSeq, last: st.LastSeq}
	if st.Msgs == 0 {
		w.empty = true
		return w, nil
	}
	if r.bySeq() {
		if r.FromSeq > st.LastSeq {
			return w, fmt.Errorf("%w: --from-seq %d is past the last message of %s (seq %d)", ErrBadRange, r.FromSeq, stream, st.LastSeq)
		}
		if r.ToSeq > 0 && r.ToSeq < st.LastSeq {
			w.last = r.ToSeq
		}
		if w.last < st.FirstSeq {
			w.empty = true
		}
		return w, nil
	}
	if r.Since.After(st.LastTime) {
		w.empty = true
	}
	if !r.Until.IsZero() && !r.Until.After(st.FirstTime) {
		w.empty = true
	}
	return w, nil
}

// startSeq is where a consumer reading the range starts.
func (w window) startSeq() uint64 { return max(w.FromSeq, w.first) }

// contains reports whether the message stored at seq and time ts is in the
// range.
func (w window) contains(seq uint64, ts time.Time) bool {
	if seq > w.last {
		return false
	}
	if w.bySeq() {
		return seq >= w.FromSeq
	}
	return !ts.Before(w.Since) && (w.Until.IsZero() || ts.Before(w.Until))
}

// past reports whether the message at seq and ts is after the range, so
// that every message of the range was delivered before it.
func (w window) past(seq uint64, ts time.Time) bool {
	return seq > w.last || (!w.bySeq() && !w.Until.IsZero() && !ts.Before(w.Until))
}

// consumerStart sets where a consumer of the range starts.
func (w window) deliverPolicy() (jetstream.DeliverPolicy, uint64, *time.Time) {
	if w.bySeq() {
		return jetstream.DeliverByStartSequencePolicy, w.startSeq(), nil
	}
	since := w.Since
	return jetstream.DeliverByStartTimePolicy, 0, &since
}
