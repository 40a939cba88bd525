package consume

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/pkg/events"
)

// DeadLetterer publishes dead letters to PROMO_DLQ.
type DeadLetterer struct {
	js       jetstream.JetStream
	subjects events.Subjects
	now      func() time.Time
}

// NewDeadLetterer returns a DeadLetterer publishing under subjects.
func NewDeadLetterer(js jetstream.JetStream, subjects events.Subjects) *DeadLetterer {
	return &DeadLetterer{js: js, subjects: subjects, now: time.Now}
}

// maxHeaderMessage keeps a header within what proxies and NATS accept.
const maxHeaderMessage = 4000

// Letter describes one dead letter.
type Letter struct {
	Subject    string      // original subject
	Stream     string      // original stream ("" when not from a stream)
	Seq        uint64      // original stream sequence (0 when unknown)
	Header     nats.Header // original headers, kept as they were
	Data       []byte      // original body, byte for byte
	Code       string
	Message    string
	DLQSubject string // "" → promo.dlq.<original subject>
}

// Send publishes the letter and waits for the DLQ stream's acknowledgement.
// The original headers are kept; the Promo-* headers of SPEC §4 are added.
// The dead letter's Nats-Msg-Id is the original's (so a redelivered message
// dead-lettered twice is stored once) or, without one, derived from the
// original stream and sequence.
func (d *DeadLetterer) Send(ctx context.Context, l Letter) error {
	h := DisarmHeaders(l.Header)
	msg := errtext.Header(l.Message, maxHeaderMessage) // one line, bounded, cut on a UTF-8 boundary
	h.Set(events.HeaderErrorCode, l.Code)
	h.Set(events.HeaderErrorMessage, msg)
	h.Set(events.HeaderOriginalSubject, l.Subject)
	if l.Stream != "" {
		h.Set(events.HeaderOriginalStream, l.Stream)
	}
	if l.Seq > 0 {
		h.Set(events.HeaderOriginalSeq, strconv.FormatUint(l.Seq, 10))
	}
	h.Set(events.HeaderFailedAt, d.now().UTC().Format(time.RFC3339Nano))
	if h.Get(jetstream.MsgIDHeader) == "" && l.Seq > 0 {
		h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%d", l.Stream, l.Seq))
	}
	subject := l.DLQSubject
	if subject == "" {
		subject = d.subjects.DLQ(l.Subject)
	}
	out := &nats.Msg{Subject: subject, Header: h, Data: l.Data}
	if _, err := d.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("consume: dead-letter to %s: %w", subject, err)
	}
	return nil
}

// DisarmHeaders copies h for publishing a message again (a dead letter, a
// keyed copy): a condition of the original publish (Nats-Expected-Stream…)
// would make the new publish fail, so it is kept under another name; the
// pin id of the delivery is dropped.
func DisarmHeaders(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+6)
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) == pinIDHeader {
			continue // a detail of one delivery, not of the message
		}
		if publishControl(k) {
			k = originalHeaderPrefix + k
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// pinIDHeader is set by the server on messages of a pinned consumer.
const pinIDHeader = "Nats-Pin-Id"

// originalHeaderPrefix renames headers that JetStream would act on.
const originalHeaderPrefix = "Promo-Original-Header-"

// publishControl reports headers that steer a JetStream publish rather than
// describe the message: expectations, rollups and per-message TTLs.
func publishControl(name string) bool {
	name = http.CanonicalHeaderKey(name)
	return strings.HasPrefix(name, "Nats-Expected-") || name == "Nats-Rollup" || name == "Nats-Ttl"
}

// LetterFromMsg builds a letter from a JetStream message.
func LetterFromMsg(msg jetstream.Msg, code, message string) Letter {
	l := Letter{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), Code: code, Message: message}
	if md, err := msg.Metadata(); err == nil {
		l.Stream = md.Stream
		l.Seq = md.Sequence.Stream
	}
	return l
}
