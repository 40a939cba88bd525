package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/promoengine/promoengine/schemas"
)

// QuoteEventID is the event id given to a quote's synthetic event.
const QuoteEventID = "quote"

// DecodeQuote reads a quote request (HTTP POST /v1/quote and the NATS
// promo.quote service): a paid event's `order` object, optionally with
// `occurred_at`, `company_id` and `pos_config_id` beside its fields. The
// order is validated exactly like a pos.order.paid event; violations point
// into the request body as sent (`/lines/0/qty`, not `/order/lines/0/qty`).
// A missing order id is "quote"; a missing occurred_at means now; a missing
// company or pos config makes
// programs restricted to companies or pos configs not eligible.
func DecodeQuote(body []byte, now time.Time) (*Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "empty body; want a paid order object")
	}
	if len(body) > MaxEventBytes {
		return nil, invalid("", "the order is %d bytes, over the limit of %d bytes (1 MiB)", len(body), MaxEventBytes)
	}
	if ie := checkUTF8(body); ie != nil {
		return nil, ie
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, invalid("", "not a JSON object: %s", jsonErrorText(err))
	}
	envelope := map[string]json.RawMessage{
		"event_id":      json.RawMessage(`"` + QuoteEventID + `"`),
		"type":          json.RawMessage(`"` + TypeOrderPaid + `"`),
		"company_id":    json.RawMessage(`"-"`),
		"pos_config_id": json.RawMessage(`"-"`),
	}
	moved := map[string]bool{}
	for _, k := range []string{"occurred_at", "company_id", "pos_config_id"} {
		if v, ok := fields[k]; ok {
			envelope[k] = v
			moved[k] = true
			delete(fields, k)
		}
	}
	// A basket being priced has no order id yet.
	if _, ok := fields["id"]; !ok {
		fields["id"] = json.RawMessage(`"` + QuoteEventID + `"`)
	}
	if _, ok := envelope["occurred_at"]; !ok {
		b, _ := json.Marshal(FormatTime(now))
		envelope["occurred_at"] = b
	}
	order, err := json.Marshal(fields)
	if err != nil {
		return nil, invalid("", "%v", err)
	}
	envelope["order"] = order
	data, err := json.Marshal(envelope)
	if err != nil {
		return nil, invalid("", "%v", err)
	}
	ev, err := Decode(data)
	if err != nil {
		if ie, ok := err.(*InvalidError); ok {
			out := make([]schemas.Violation, len(ie.Violations))
			for i, v := range ie.Violations {
				p := v.Pointer
				if rest, cut := strings.CutPrefix(p, "/order"); cut {
					p = rest
				}
				out[i] = schemas.Violation{Pointer: p, Message: v.Message}
			}
			return nil, &InvalidError{Violations: out}
		}
		return nil, err
	}
	if !moved["company_id"] {
		ev.CompanyID = ""
	}
	if !moved["pos_config_id"] {
		ev.PosConfigID = ""
	}
	return ev, nil
}
