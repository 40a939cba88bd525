package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

// ErrInvalid is matched by every decode failure (errors.Is).
var ErrInvalid = errors.New("events: invalid event")

// InvalidError lists every reason an event was refused.
type InvalidError struct {
	Violations []schemas.Violation
}

// Error lists at most errtext.MaxListed violations, then "and N more": it
// is what a dead letter's header and a quote's error carry.
func (e *InvalidError) Error() string {
	return "invalid event: " + schemas.Join(e.Violations, errtext.MaxListed)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(pointer, format string, args ...any) *InvalidError {
	return &InvalidError{Violations: []schemas.Violation{{Pointer: pointer, Message: errtext.Sprintf(format, args...)}}}
}

// Limits on decimal inputs: what a till can sensibly send, and what keeps
// every product of two amounts well inside the 34 digits of dec.
const (
	maxIntDigits  = 15
	maxFracDigits = 10
)

var schemaOf = map[string]string{
	TypeOrderPaid:      schemas.OrderPaid,
	TypeOrderReturned:  schemas.OrderReturned,
	TypeOrderCancelled: schemas.OrderCancelled,
}

// Decode parses and validates an input event. On failure the error is an
// *InvalidError naming every offending field by JSON pointer.
func Decode(data []byte) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, invalid("", "event is %d bytes, over the limit of %d bytes (1 MiB)", len(data), MaxEventBytes)
	}
	if ie := checkUTF8(data); ie != nil {
		return nil, ie
	}
	doc, screened, parsed := parseJSON(data)
	var err error
	if !parsed { // jsonschema.UnmarshalJSON decides, and words the error
		if doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(data)); err != nil {
			return nil, invalid("", "not valid JSON: %s", jsonErrorText(err))
		}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, invalid("", "must be a JSON object")
	}
	// Cheap refusal first: nothing the schema validator would spend seconds
	// on, nothing PostgreSQL would refuse, gets past this walk.
	if !screened {
		if vs := screen(doc); len(vs) > 0 {
			return nil, &InvalidError{Violations: vs}
		}
	}
	rawType, present := obj["type"]
	if !present {
		return nil, invalid("/type", "is required; one of %s", knownTypes())
	}
	typ, _ := rawType.(string)
	name, known := schemaOf[typ]
	if !known {
		return nil, invalid("/type", "unknown event type %s; want one of %s", quoteAny(rawType), knownTypes())
	}
	if !fastValid(typ, obj) { // the schema decides, and words the violations
		schema, err := schemas.Get(name)
		if err != nil {
			return nil, err
		}
		if vs := schemas.Validate(schema, doc); len(vs) > 0 {
			return nil, &InvalidError{Violations: vs}
		}
	}

	r := &docReader{}
	ev := &Event{EventID: r.text("/event_id", obj["event_id"]), Type: typ, CompanyID: r.id("/company_id", obj["company_id"]), PosConfigID: r.id("/pos_config_id", obj["pos_config_id"])}
	add := r.add
	occurred := r.str(obj["occurred_at"])
	ev.OccurredAt, err = time.Parse(time.RFC3339Nano, occurred)
	switch {
	case err != nil:
		add("/occurred_at", "not a valid RFC 3339 time with offset: %q", occurred)
	case ev.OccurredAt.Before(MinOccurredAt) || !ev.OccurredAt.Before(MaxOccurredAt):
		add("/occurred_at", "must be from %s and before %s, got %q", MinOccurredAt.Format(time.DateOnly), MaxOccurredAt.Format(time.DateOnly), occurred)
	}
	order, _ := obj["order"].(map[string]any)
	switch typ {
	case TypeOrderPaid:
		ev.Paid = r.paid(order)
	case TypeOrderReturned:
		ev.Returned = r.returned(order)
	case TypeOrderCancelled:
		ev.Cancelled = &CancelledOrder{ID: r.id("/order/id", order["id"])}
	}
	switch {
	case ev.Paid != nil:
		checkPaid(ev.Paid, add)
	case ev.Returned != nil:
		checkReturned(ev.Returned, add)
	}
	if len(r.vs) > 0 {
		return nil, &InvalidError{Violations: r.vs}
	}
	return ev, nil
}

type addFunc func(pointer, format string, args ...any)

var _ addFunc = (*docReader)(nil).add

func checkPaid(o *PaidOrder, add addFunc) {
	seen := make(map[ID]int, len(o.Lines))
	for i, l := range o.Lines {
		p := "/order/lines/" + strconv.Itoa(i)
		if j, dup := seen[l.ID]; dup {
			add(p+"/id", "line id %q is already used by /order/lines/%d", l.ID, j)
		}
		seen[l.ID] = i
		checkAmount(p+"/qty", l.Qty, add)
		if l.Qty.Sign() <= 0 {
			add(p+"/qty", "must be greater than 0, got %s", l.Qty)
		}
		checkAmount(p+"/unit_price", l.UnitPrice, add)
		if l.UnitPrice.Sign() < 0 {
			add(p+"/unit_price", "must not be negative, got %s", l.UnitPrice)
		}
	}
	if o.RedeemPoints != nil {
		checkAmount("/order/redeem_points", *o.RedeemPoints, add)
		if o.RedeemPoints.Sign() < 0 {
			add("/order/redeem_points", "must not be negative, got %s", o.RedeemPoints)
		}
	}
}

func checkReturned(o *ReturnedOrder, add addFunc) {
	seen := make(map[ID]int, len(o.Lines))
	for i, l := range o.Lines {
		p := "/order/lines/" + strconv.Itoa(i)
		if j, dup := seen[l.LineID]; dup {
			add(p+"/line_id", "line %q is already returned by /order/lines/%d", l.LineID, j)
		}
		seen[l.LineID] = i
		checkAmount(p+"/qty", l.Qty, add)
		if l.Qty.Sign() <= 0 {
			add(p+"/qty", "must be greater than 0, got %s", l.Qty)
		}
	}
}

// checkAmount bounds digits, which a JSON number can exceed where a string
// cannot get past the schema's pattern. The screen has bounded the text, so
// d is small enough to print.
func checkAmount(p string, d dec.Decimal, add addFunc) {
	if d.IntDigits() > maxIntDigits || d.Places() > maxFracDigits {
		add(p, "%s has more than %d integer or %d decimal digits", d, maxIntDigits, maxFracDigits)
	}
}

// The range of occurred_at. Business time outside it is a broken till clock
// or a forged event; within it every derived instant (expiry dates decades
// later) stays a valid RFC 3339 time.
var (
	MinOccurredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxOccurredAt = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func knownTypes() string {
	return strings.Join([]string{TypeOrderPaid, TypeOrderReturned, TypeOrderCancelled}, ", ")
}

func quoteAny(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jsonErrorText keeps decoder messages short and free of Go type names.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	return err.Error()
}
