package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// DeadLetter is one message of PROMO_DLQ. Its ID is its sequence in the
// dead-letter stream, which never changes and is never reused.
type DeadLetter struct {
	ID              uint64    `json:"id"`
	Subject         string    `json:"subject"` // promo.dlq.<original subject>
	OriginalSubject string    `json:"original_subject"`
	OriginalStream  string    `json:"original_stream,omitempty"`
	OriginalSeq     uint64    `json:"original_seq,omitempty"`
	Code            string    `json:"code"`
	Message         string    `json:"message"`
	MsgID           string    `json:"msg_id,omitempty"` // the original Nats-Msg-Id: the event_id of an order event
	FailedAt        time.Time `json:"failed_at"`
	StoredAt        time.Time `json:"stored_at"`
	Size            int       `json:"size"` // body bytes
	// Header holds every header (the original ones and the Promo-* ones)
	// and Data the original body, byte for byte; both only from DeadLetter,
	// not from ListDeadLetters.
	Header nats.Header `json:"headers,omitempty"`
	Data   []byte      `json:"-"`
}

// Age is how long ago the message failed.
func (d *DeadLetter) Age(now time.Time) time.Duration {
	t := d.FailedAt
	if t.IsZero() {
		t = d.StoredAt
	}
	return now.Sub(t)
}

// DeadLetterFilter narrows ListDeadLetters and RedriveDeadLetters.
type DeadLetterFilter struct {
	Code string // only this error code ("" for all)
}

func (f DeadLetterFilter) match(d *DeadLetter) bool { return f.Code == "" || d.Code == f.Code }

// ErrDeadLetterNotFound: no dead letter has that ID (purged, redriven, or
// never existed).
var ErrDeadLetterNotFound = errors.New("ops: no such dead letter")

// ListDeadLetters returns the dead letters matching f, oldest first,
// without their bodies.
func (o *Operator) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.eachDeadLetter(ctx, func(d *DeadLetter) {
		if f.match(d) {
			out = append(out, *d)
		}
	})
	return out, err
}

// DeadLettersByCode counts the dead letters by error code.
func (o *Operator) DeadLettersByCode(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := o.eachDeadLetter(ctx, func(d *DeadLetter) { out[d.Code]++ })
	return out, err
}

func (o *Operator) eachDeadLetter(ctx context.Context, fn func(*DeadLetter)) error {
	name := o.subjects.StreamDLQ()
	stream, err := o.stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	return o.readStream(ctx, name, o.subjects.DLQAll(), info.State.FirstSeq, info.State.LastSeq, true, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		d := o.deadLetter(md.Sequence.Stream, msg.Subject(), msg.Headers(), nil, md.Timestamp)
		d.Size, _ = strconv.Atoi(msg.Headers().Get(msgSizeHeader))
		d.Header = nil
		fn(d)
		return nil
	})
}

func (o *Operator) deadLetter(id uint64, subject string, h nats.Header, data []byte, stored time.Time) *DeadLetter {
	d := &DeadLetter{ID: id, Subject: subject, Header: h, Data: data, Size: len(data), StoredAt: stored,
		OriginalSubject: h.Get(events.HeaderOriginalSubject),
		OriginalStream:  h.Get(events.HeaderOriginalStream),
		Code:            h.Get(events.HeaderErrorCode),
		Message:         h.Get(events.HeaderErrorMessage),
		MsgID:           h.Get(jetstream.MsgIDHeader),
	}
	if d.OriginalSubject == "" {
		d.OriginalSubject = o.subjects.OriginalFromDLQ(subject)
	}
	d.OriginalSeq, _ = strconv.ParseUint(h.Get(events.HeaderOriginalSeq), 10, 64)
	d.FailedAt, _ = time.Parse(time.RFC3339Nano, h.Get(events.HeaderFailedAt))
	if from := h.Get(events.HeaderKeyedFrom); from != "" {
		// The keyed copy the engine made of an event published without a
		// key: show (and redrive) what was published — the SPEC subject,
		// its sequence and message id; the keyer keys it again.
		if kind, _, _, ok := o.subjects.OrderSubjectParts(d.OriginalSubject); ok && events.TypeOfKind(kind) != "" {
			d.OriginalSubject = o.subjects.OrderSubject(events.TypeOfKind(kind))
		}
		d.OriginalSeq, _ = strconv.ParseUint(from, 10, 64)
		d.MsgID = h.Get(events.HeaderOriginalMsgID)
	}
	return d
}

// DeadLetter returns dead letter id with its headers and original body.
func (o *Operator) DeadLetter(ctx context.Context, id uint64) (*DeadLetter, error) {
	name := o.subjects.StreamDLQ()
	stream, err := o.stream(ctx, name)
	if err != nil {
		return nil, err
	}
	raw, err := stream.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %d is not in %s (redriven, purged, or never there; `promoengine dlq list` shows what is)", ErrDeadLetterNotFound, id, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	return o.deadLetter(raw.Sequence, raw.Subject, raw.Header, raw.Data, raw.Time), nil
}

// Redriven says where a redriven dead letter went.
type Redriven struct {
	ID      uint64 `json:"id"`
	Code    string `json:"code"`
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id"`
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	// Duplicate: the stream already held this redrive (an earlier redrive
	// published it but did not get to delete the dead letter).
	Duplicate bool `json:"duplicate"`
}

// RedriveDeadLetter republishes dead letter id — the original body, byte
// for byte, and the original headers without the Promo-* ones — to its
// original subject, and deletes it once the publish is acknowledged.
//
// The republished message gets a fresh Nats-Msg-Id,
// "<original msg id>:redrive:<id>": the original id may still be inside
// the stream's duplicate window, where JetStream would silently drop the
// copy. Processing stays effectively once: the worker's inbox is keyed by
// the event_id in the body, not by the message id.
func (o *Operator) RedriveDeadLetter(ctx context.Context, id uint64) (*Redriven, error) {
	d, err := o.DeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(d.OriginalSubject, strings.TrimSuffix(o.subjects.DLQAll(), ">")) {
		return nil, fmt.Errorf("dead letter %d names %s as its original subject, a dead-letter subject; refusing to redrive it", id, d.OriginalSubject)
	}
	msg := &nats.Msg{Subject: o.redriveSubject(ctx, d), Data: d.Data, Header: nats.Header{}}
	for k, vs := range d.Header {
		if dropOnRedrive(k) {
			continue
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	msgID := "redrive:" + o.subjects.StreamDLQ() + ":" + strconv.FormatUint(id, 10)
	if d.MsgID != "" {
		msgID = d.MsgID + ":redrive:" + strconv.FormatUint(id, 10)
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	// No WithExpectStream: the header would be stored with the message and
	// break its dead-lettering should it fail again.
	ack, err := o.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("redrive dead letter %d to %s: %w (the dead letter is kept)", id, d.OriginalSubject, err)
	}
	if d.OriginalStream != "" && ack.Stream != d.OriginalStream {
		o.log.Warn().Uint64("dead_letter", id).Str("subject", d.OriginalSubject).
			Msgf("redriven message was stored in %s, not in %s where it came from", ack.Stream, d.OriginalStream)
	}
	r := &Redriven{ID: id, Code: d.Code, Subject: d.OriginalSubject, MsgID: msgID, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
	if err := o.deleteDeadLetter(ctx, id); err != nil {
		return r, fmt.Errorf("dead letter %d was republished to %s (%s seq %d) but not deleted: %w; `promoengine dlq purge %d` removes it",
			id, d.OriginalSubject, ack.Stream, ack.Sequence, err, id)
	}
	return r, nil
}

// redriveSubject is where a dead letter goes back: an order event that
// reads is keyed here, as every publisher of the engine does (the stream
// partitions it on arrival); one that does not goes back where it came from.
func (o *Operator) redriveSubject(ctx context.Context, d *DeadLetter) string {
	if kind, _, _, ok := o.subjects.OrderSubjectParts(d.OriginalSubject); ok {
		if ev, err := events.Decode(d.Data); err == nil && events.TypeOfKind(kind) == ev.Type {
			return o.subjects.KeyedOrderSubject(ev.Type, o.keys.Key(ctx, ev))
		}
	}
	return o.subjects.Republishable(d.OriginalSubject)
}

// dropOnRedrive names the headers a redrive does not copy: the Promo-*
// headers of the dead letter, the message id (replaced), and the
// Nats-Expected-* publish conditions, which held for the original publish
// and would refuse the republish.
func dropOnRedrive(key string) bool {
	k := strings.ToLower(key)
	return strings.HasPrefix(k, "promo-") || k == strings.ToLower(jetstream.MsgIDHeader) ||
		strings.HasPrefix(k, "nats-expected-")
}

// RedriveReport is the outcome of RedriveDeadLetters.
type RedriveReport struct {
	Redriven []Redriven `json:"redriven"`
	Failed   []string   `json:"failed,omitempty"`
}

// RedriveDeadLetters redrives every dead letter matching f that is in the
// stream when it starts (a redriven message that fails again is
// dead-lettered anew, after the snapshot, and not redriven twice). each, if
// set, is called after every attempt.
func (o *Operator) RedriveDeadLetters(ctx context.Context, f DeadLetterFilter, prog Progress, each func(*Redriven, error)) (*RedriveReport, error) {
	return o.redriveEach(ctx, f, prog, each, o.RedriveDeadLetter)
}

// redriveEach applies redrive to every dead letter matching f that is in
// the stream when it starts.
func (o *Operator) redriveEach(ctx context.Context, f DeadLetterFilter, prog Progress, each func(*Redriven, error),
	redrive func(context.Context, uint64) (*Redriven, error)) (*RedriveReport, error) {
	prog = progressOrNone(prog)
	defer prog.Done()
	letters, err := o.ListDeadLetters(ctx, f)
	if err != nil {
		return nil, err
	}
	rep := &RedriveReport{Redriven: []Redriven{}}
	prog.Stage("redriving", int64(len(letters)))
	for i, d := range letters {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r, err := redrive(ctx, d.ID)
		if err != nil {
			rep.Failed = append(rep.Failed, err.Error())
		} else {
			rep.Redriven = append(rep.Redriven, *r)
		}
		if each != nil {
			each(r, err)
		}
		prog.Advance(int64(i + 1))
	}
	return rep, nil
}

// PurgeDeadLetter deletes dead letter id for good and returns what it was.
func (o *Operator) PurgeDeadLetter(ctx context.Context, id uint64) (*DeadLetter, error) {
	d, err := o.DeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := o.deleteDeadLetter(ctx, id); err != nil {
		return nil, err
	}
	d.Data = nil
	return d, nil
}

func (o *Operator) deleteDeadLetter(ctx context.Context, id uint64) error {
	stream, err := o.stream(ctx, o.subjects.StreamDLQ())
	if err != nil {
		return err
	}
	err = stream.DeleteMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: %d", ErrDeadLetterNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("delete dead letter %d: %w", id, err)
	}
	return nil
}

// CodeCount is the number of dead letters with one error code.
type CodeCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// sortedCounts orders counts most first, then by code.
func sortedCounts(m map[string]int) []CodeCount {
	out := make([]CodeCount, 0, len(m))
	for code, n := range m {
		out = append(out, CodeCount{Code: code, Count: n})
	}
	slices.SortFunc(out, func(a, b CodeCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	return out
}

// msgSizeHeader carries the body size of a message read headers only.
const msgSizeHeader = "Nats-Msg-Size"
