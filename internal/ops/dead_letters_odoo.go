package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/promoengine/promoengine/internal/odoo"
)

// RebuildDeadLetter recovers a dead letter built from an Odoo order once
// its cause is fixed (the catalog's currency, Odoo's data): instead of the
// stale body, it reads the order back from Odoo and publishes the event
// afresh, then deletes the dead letter.
//
//   - A pos.order event (event id "<db>:pos.order:<id>:…", as the webhook's
//     read-back and the promo_engine addon build them) is rebuilt with
//     odoo.POSOrderEvents and published under a fresh Nats-Msg-Id,
//     "<event id>:rebuild:<ID>": the original id may still be inside the
//     duplicate window, where the republish would be dropped. It stays
//     effectively once: the event never reached the inbox (it was
//     dead-lettered), and should it have, the inbox skips it by event_id.
//   - A recorded order reference (PROMO_ODOO_ORDERS: odoo_order_unavailable,
//     forbidden_store) is redriven as it is: reading it back is the rebuild.
//
// Any other dead letter is refused (use RedriveDeadLetter).
func (o *Operator) RebuildDeadLetter(ctx context.Context, client *odoo.Client, id uint64) (*Redriven, error) {
	d, err := o.DeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.OriginalSubject == o.subjects.OdooOrders() {
		return o.RedriveDeadLetter(ctx, id)
	}
	eventID := strings.SplitN(d.MsgID, ":redrive:", 2)[0]
	eventID = strings.SplitN(eventID, ":rebuild:", 2)[0]
	if eventID == "" {
		var head struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(d.Data, &head)
		eventID = head.EventID
	}
	db, orderID, ok := odoo.ParseEventID(eventID)
	if !ok {
		return nil, fmt.Errorf("dead letter %d (event %q) was not built from an Odoo order; redrive it without --rebuild", id, eventID)
	}
	if db != client.DB() {
		return nil, fmt.Errorf("dead letter %d comes from Odoo database %q, PROMO_ODOO_DB is %q; the dead letter is kept", id, db, client.DB())
	}
	order, err := odoo.POSOrderEvents(ctx, client, db, orderID)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: read pos.order %d back from Odoo: %w (the dead letter is kept)", id, orderID, err)
	}
	var found *odoo.OrderEvent
	var have []string
	for i := range order.Events {
		have = append(have, order.Events[i].Event.EventID)
		if order.Events[i].Event.EventID == eventID {
			found = &order.Events[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("dead letter %d: pos.order %d (state %s) no longer gives event %s (it gives %v); the dead letter is kept",
			id, orderID, order.State, eventID, have)
	}
	msgID := eventID + ":rebuild:" + strconv.FormatUint(id, 10)
	ack, err := o.PublishEvent(ctx, found.Event, found.Data, msgID)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w (the dead letter is kept)", id, err)
	}
	r := &Redriven{ID: id, Code: d.Code, Subject: o.subjects.OrderSubject(found.Event.Type), MsgID: msgID,
		Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
	if err := o.deleteDeadLetter(ctx, id); err != nil {
		return r, fmt.Errorf("dead letter %d was rebuilt and published (%s seq %d) but not deleted: %w; `promoengine dlq purge %d` removes it",
			id, ack.Stream, ack.Sequence, err, id)
	}
	return r, nil
}

// RebuildDeadLetters rebuilds every dead letter matching f (see
// RebuildDeadLetter); each, if set, is called after every attempt.
func (o *Operator) RebuildDeadLetters(ctx context.Context, client *odoo.Client, f DeadLetterFilter, prog Progress, each func(*Redriven, error)) (*RedriveReport, error) {
	return o.redriveEach(ctx, f, prog, each, func(ctx context.Context, id uint64) (*Redriven, error) {
		return o.RebuildDeadLetter(ctx, client, id)
	})
}
