package events

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

// docReader turns a document that passed the event's JSON Schema (decoded
// once, numbers kept as json.Number) into the typed event, so the bytes are
// parsed once and not again with encoding/json. The schema has already
// checked every type; what remains to check here (decimal syntax of JSON
// numbers) is reported as violations.
type docReader struct {
	vs []schemas.Violation
}

func (r *docReader) add(p, format string, args ...any) {
	r.vs = append(r.vs, schemas.Violation{Pointer: p, Message: errtext.Sprintf(format, args...)})
}

// text reads a string that is used as a key (event_id, a coupon code): it
// must pass CheckID, since it reaches PostgreSQL and NATS headers as it is.
func (r *docReader) text(p string, v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if err := CheckID(s); err != nil {
		r.add(p, "%v", err)
	}
	return s
}

func (r *docReader) str(v any) string {
	s, _ := v.(string)
	return s
}

// id reads a string id or an integer, normalised to its decimal digits
// (SPEC §3): a JSON number that is not written as an integer (77.0, 1e3) is
// refused, as ID.UnmarshalJSON refuses it, or one customer could become two;
// so is an integer of more than MaxIDDigits digits and a string CheckID
// refuses, which PostgreSQL would refuse later, in the middle of a batch.
func (r *docReader) id(p string, v any) ID {
	switch x := v.(type) {
	case string:
		if err := CheckID(x); err != nil {
			r.add(p, "%v", err)
		}
		return ID(x)
	case json.Number:
		id, ok := integerID([]byte(x))
		if !ok {
			r.add(p, "%s is not an integer id of at most %d digits (write it with digits only, or as a string)", x.String(), MaxIDDigits)
		}
		return id
	}
	return ""
}

func (r *docReader) ids(p string, v any) IDs {
	a, _ := v.([]any)
	if len(a) == 0 {
		return nil
	}
	out := make(IDs, len(a))
	for i, x := range a {
		out[i] = r.id(p+"/"+strconv.Itoa(i), x)
	}
	return out
}

func (r *docReader) decimal(p string, v any) dec.Decimal {
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case json.Number:
		text = x.String()
	default:
		r.add(p, "must be a decimal")
		return dec.Zero
	}
	d, err := dec.Parse(text)
	switch {
	case errors.Is(err, dec.ErrTooLarge):
		r.add(p, "%q has more than %d integer or %d decimal digits", text, maxIntDigits, maxFracDigits)
	case err != nil:
		r.add(p, "%q is not a decimal number", text)
	}
	return d
}

func (r *docReader) paid(o map[string]any) *PaidOrder {
	p := &PaidOrder{
		ID:         r.id("/order/id", o["id"]),
		Name:       r.str(o["name"]),
		Currency:   r.str(o["currency"]),
		CustomerID: r.id("/order/customer_id", o["customer_id"]),
	}
	if codes, ok := o["coupon_codes"].([]any); ok && len(codes) > 0 {
		p.CouponCodes = make([]string, len(codes))
		for i, c := range codes {
			p.CouponCodes[i] = r.text("/order/coupon_codes/"+strconv.Itoa(i), c)
		}
	}
	if v, ok := o["redeem_points"]; ok && v != nil {
		d := r.decimal("/order/redeem_points", v)
		p.RedeemPoints = &d
	}
	lines, _ := o["lines"].([]any)
	p.Lines = make([]Line, len(lines))
	for i, l := range lines {
		m, _ := l.(map[string]any)
		at := "/order/lines/" + strconv.Itoa(i)
		p.Lines[i] = Line{
			ID:          r.id(at+"/id", m["id"]),
			ProductID:   r.id(at+"/product_id", m["product_id"]),
			CategoryIDs: r.ids(at+"/category_ids", m["category_ids"]),
			TagIDs:      r.ids(at+"/tag_ids", m["tag_ids"]),
			Qty:         r.decimal(at+"/qty", m["qty"]),
			UnitPrice:   r.decimal(at+"/unit_price", m["unit_price"]),
		}
	}
	return p
}

func (r *docReader) returned(o map[string]any) *ReturnedOrder {
	ret := &ReturnedOrder{
		ID:              r.id("/order/id", o["id"]),
		Name:            r.str(o["name"]),
		OriginalOrderID: r.id("/order/original_order_id", o["original_order_id"]),
	}
	lines, _ := o["lines"].([]any)
	ret.Lines = make([]ReturnLine, len(lines))
	for i, l := range lines {
		m, _ := l.(map[string]any)
		at := "/order/lines/" + strconv.Itoa(i)
		ret.Lines[i] = ReturnLine{
			LineID: r.id(at+"/line_id", m["line_id"]),
			Qty:    r.decimal(at+"/qty", m["qty"]),
		}
	}
	return ret
}
