package events

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Partitioned consumption (docs/DESIGN.md, "One customer, one order"):
// every input event carries in its subject a key token, a hash of the key
// that must keep its events in order — the customer for a sale with one,
// the order for an anonymous sale, the original order's key for a return or
// cancellation. POS_ORDERS rewrites pos.orders.<kind>.<token> on arrival
// into pos.orders.<kind>.<partition>.<token> (a subject transform with
// NATS's partition() function), and each partition is consumed by one
// process at a time, in stream order.
//
// Events published on the bare SPEC subjects (pos.orders.paid, three
// tokens) are keyed by the engine's keyer, which republishes them, in
// stream order, on their keyed subject.

// Headers of a keyed copy the keyer made of an event published without a
// key.
const (
	// HeaderOriginalMsgID keeps the original's Nats-Msg-Id.
	HeaderOriginalMsgID = "Promo-Original-Msg-Id"
	// HeaderKeyedFrom is the original's stream sequence.
	HeaderKeyedFrom = "Promo-Keyed-From"
)

// Key is what orders an event among others: the events of one key take
// effect in stream order.
type Key string

// CustomerKey is the key of a customer's events.
func CustomerKey(customerID ID) Key { return Key("customer:" + string(customerID)) }

// OrderKey is the key of an anonymous sale and of its returns and
// cancellation.
func OrderKey(orderID ID) Key { return Key("order:" + string(orderID)) }

// SaleKey is the key of a sale: its customer's, or its own order's when
// anonymous. The key of a return or cancellation is its original sale's,
// which only a lookup can tell (see KeyOf).
func SaleKey(customerID, orderID ID) Key {
	if customerID != "" {
		return CustomerKey(customerID)
	}
	return OrderKey(orderID)
}

// KeyOf is the key of ev. customerOf tells the customer of an earlier sale
// ("" when anonymous or unknown); it is asked only for returns and
// cancellations. When it does not know, the event is keyed by its original
// order: it still waits for its sale (a return before its sale is retried),
// but may be ordered differently from that customer's other events.
func KeyOf(ev *Event, customerOf func(orderID ID) ID) Key {
	if ev.Paid != nil {
		return SaleKey(ev.Paid.CustomerID, ev.Paid.ID)
	}
	orig := ev.ReferencedOrderID()
	if customerOf != nil {
		if c := customerOf(orig); c != "" {
			return CustomerKey(c)
		}
	}
	return OrderKey(orig)
}

// Token is the subject token of a key: 16 hex digits of its 64-bit FNV-1a
// hash, valid in any subject whatever the key's characters.
func (k Key) Token() string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(k))
	var sum [8]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// MaxPartitions bounds PROMO_PARTITIONS: one durable consumer each.
const MaxPartitions = 1024

// OrdersUnkeyed matches the bare SPEC subjects (pos.orders.<kind>), which
// the keyer reads.
func (s Subjects) OrdersUnkeyed() string { return s.prefix + "pos.orders.*" }

// OrdersKeyedIn matches keyed subjects as publishers write them
// (pos.orders.<kind>.<token>); POS_ORDERS transforms them on arrival.
func (s Subjects) OrdersKeyedIn() string { return s.prefix + "pos.orders.*.*" }

// OrdersPartitioned matches keyed subjects as POS_ORDERS stores them
// (pos.orders.<kind>.<partition>.<token>): every event the order workers
// process.
func (s Subjects) OrdersPartitioned() string { return s.prefix + "pos.orders.*.*.*" }

// PartitionTransform is POS_ORDERS' subject transform for n partitions:
// source and destination.
func (s Subjects) PartitionTransform(n int) (src, dest string) {
	return s.OrdersKeyedIn(), fmt.Sprintf("%spos.orders.{{wildcard(1)}}.{{partition(%d,2)}}.{{wildcard(2)}}", s.prefix, n)
}

// Partition matches the stored subjects of partition p.
func (s Subjects) Partition(p int) string {
	return s.prefix + "pos.orders.*." + strconv.Itoa(p) + ".*"
}

// KeyedOrderSubject is where an input event of type t and key k is
// published: pos.orders.<kind>.<token>.
func (s Subjects) KeyedOrderSubject(t string, k Key) string {
	return s.OrderSubject(t) + "." + k.Token()
}

// OrderSubjectParts reads an input order subject in any of its forms:
// pos.orders.<kind>, pos.orders.<kind>.<token> or
// pos.orders.<kind>.<partition>.<token>. partition is -1 and token "" when
// absent; ok is false for a subject of another shape.
func (s Subjects) OrderSubjectParts(subject string) (kind string, partition int, token string, ok bool) {
	rest, found := strings.CutPrefix(subject, s.prefix+"pos.orders.")
	if !found || rest == "" {
		return "", -1, "", false
	}
	parts := strings.Split(rest, ".")
	switch len(parts) {
	case 1:
		return parts[0], -1, "", true
	case 2:
		return parts[0], -1, parts[1], true
	case 3:
		p, err := strconv.Atoi(parts[1])
		if err != nil || p < 0 {
			return "", -1, "", false
		}
		return parts[0], p, parts[2], true
	}
	return "", -1, "", false
}

// TypeOfKind is the input event type published under pos.orders.<kind>
// ("" for a kind of no type).
func TypeOfKind(kind string) string {
	for _, t := range []string{TypeOrderPaid, TypeOrderReturned, TypeOrderCancelled} {
		if strings.TrimPrefix(t, "pos.order.") == kind {
			return t
		}
	}
	return ""
}

// Republishable is the subject a stored order message is published to
// again (dead-letter redrive, keying): a stored partitioned subject loses
// its partition, which the stream assigns again on arrival.
func (s Subjects) Republishable(subject string) string {
	kind, p, token, ok := s.OrderSubjectParts(subject)
	if !ok || p < 0 {
		return subject
	}
	return s.prefix + "pos.orders." + kind + "." + token
}
