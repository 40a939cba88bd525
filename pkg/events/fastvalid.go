package events

import (
	"encoding/json"
	"unicode/utf8"
)

// The hot path's validator. Walking the JSON Schema (schemas.Validate) was
// a fifth of the order worker's CPU, and every order is decoded twice (the
// keyer, then the order worker). fastValid answers the same question for
// the three input schemas with plain code: true only when the document is
// one the schema accepts. It may say false for a document the schema
// accepts (a number id written as 1.0 or 1e2, which JSON Schema counts as
// an integer); Decode then asks the schema, which also words every
// violation. So Decode's outcome is the schema's, by construction, as long
// as fastValid never accepts what the schema refuses: FuzzFastValid checks
// exactly that, and that the documents a till sends take the fast path.
//
// The keywords are those of schemas/pos.order.*.schema.json and
// defs.schema.json; a change there must be mirrored here (the fuzz test
// and TestFastValidAgreesWithSchema fail until it is).
func fastValid(typ string, obj map[string]any) bool {
	// envelope
	if !fastString(obj["event_id"], 1, 200) || !fastTime(obj["occurred_at"]) ||
		!fastID(obj["company_id"]) || !fastID(obj["pos_config_id"]) {
		return false
	}
	if _, ok := obj["type"].(string); !ok {
		return false
	}
	order, ok := obj["order"].(map[string]any)
	if !ok || !fastID(order["id"]) {
		return false
	}
	switch typ {
	case TypeOrderPaid:
		return fastPaid(order)
	case TypeOrderReturned:
		return fastReturned(order)
	case TypeOrderCancelled:
		return true
	}
	return false
}

func fastPaid(order map[string]any) bool {
	if !fastOptionalString(order, "name") {
		return false
	}
	if c, ok := order["currency"].(string); !ok || len(c) != 3 || !upper(c[0]) || !upper(c[1]) || !upper(c[2]) {
		return false
	}
	if v, ok := order["customer_id"]; ok && v != nil && !fastID(v) {
		return false
	}
	if v, ok := order["coupon_codes"]; ok {
		codes, isArr := v.([]any)
		if !isArr || len(codes) > 50 {
			return false
		}
		for _, c := range codes {
			if !fastString(c, 1, 100) {
				return false
			}
		}
	}
	if v, ok := order["redeem_points"]; ok && v != nil && !fastDecimal(v) {
		return false
	}
	return fastLines(order["lines"], func(line map[string]any) bool {
		if !fastID(line["id"]) || !fastID(line["product_id"]) || !fastDecimal(line["qty"]) || !fastDecimal(line["unit_price"]) {
			return false
		}
		for _, k := range [...]string{"category_ids", "tag_ids"} {
			v, present := line[k]
			if !present {
				continue
			}
			ids, isArr := v.([]any)
			if !isArr || len(ids) > 100 {
				return false
			}
			for _, id := range ids {
				if !fastID(id) {
					return false
				}
			}
		}
		return true
	})
}

func fastReturned(order map[string]any) bool {
	if !fastOptionalString(order, "name") {
		return false
	}
	if !fastID(order["original_order_id"]) {
		return false
	}
	return fastLines(order["lines"], func(line map[string]any) bool {
		return fastID(line["line_id"]) && fastDecimal(line["qty"])
	})
}

// fastLines: an array of 1 to 1000 objects, each passing ok.
func fastLines(v any, ok func(map[string]any) bool) bool {
	lines, isArr := v.([]any)
	if !isArr || len(lines) < 1 || len(lines) > 1000 {
		return false
	}
	for _, l := range lines {
		line, isObj := l.(map[string]any)
		if !isObj || !ok(line) {
			return false
		}
	}
	return true
}

// fastOptionalString: m has no key, or a string there (not null).
func fastOptionalString(m map[string]any, key string) bool {
	v, present := m[key]
	if !present {
		return true
	}
	_, isStr := v.(string)
	return isStr
}

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }
func digit(c byte) bool { return c >= '0' && c <= '9' }

// fastString: a string of min to max characters (code points, as JSON
// Schema counts them).
func fastString(v any, minLen, maxLen int) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	n := len(s)
	if n > maxLen { // more bytes than characters allowed: count them
		n = utf8.RuneCountInString(s)
	}
	return n >= minLen && n <= maxLen
}

// fastID is $defs/id: a string of 1 to 200 characters, or an integer
// (here: only written as plain digits).
func fastID(v any) bool {
	if n, ok := v.(json.Number); ok {
		return plainInteger(string(n))
	}
	return fastString(v, 1, 200)
}

func plainInteger(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !digit(s[i]) {
			return false
		}
	}
	return true
}

// fastDecimal is $defs/decimal: any JSON number, or a string matching
// ^-?[0-9]{1,15}(\.[0-9]{1,10})?$.
func fastDecimal(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case string:
		s := x
		if len(s) > 0 && s[0] == '-' {
			s = s[1:]
		}
		i := 0
		for i < len(s) && digit(s[i]) {
			i++
		}
		if i < 1 || i > 15 {
			return false
		}
		if i == len(s) {
			return true
		}
		if s[i] != '.' {
			return false
		}
		frac := s[i+1:]
		if len(frac) < 1 || len(frac) > 10 {
			return false
		}
		for j := 0; j < len(frac); j++ {
			if !digit(frac[j]) {
				return false
			}
		}
		return true
	}
	return false
}

// fastTime is $defs/time: ^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$
func fastTime(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) < 20 {
		return false
	}
	const head = "dddd-dd-ddTdd:dd:dd"
	for i := 0; i < len(head); i++ {
		switch head[i] {
		case 'd':
			if !digit(s[i]) {
				return false
			}
		case 'T':
			if s[i] != 'T' && s[i] != 't' {
				return false
			}
		default:
			if s[i] != head[i] {
				return false
			}
		}
	}
	s = s[len(head):]
	if s[0] == '.' {
		i := 1
		for i < len(s) && digit(s[i]) {
			i++
		}
		if i == 1 {
			return false
		}
		s = s[i:]
	}
	switch {
	case s == "Z" || s == "z":
		return true
	case len(s) == 6 && (s[0] == '+' || s[0] == '-'):
		return digit(s[1]) && digit(s[2]) && s[3] == ':' && digit(s[4]) && digit(s[5])
	}
	return false
}
