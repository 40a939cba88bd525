package events

import (
	"encoding/json"
	"strconv"

	"github.com/promoengine/promoengine/pkg/dec"
)

// AppendJSON appends the result's JSON to b: byte for byte what
// json.Marshal writes for it (field order, omitempty, null for a nil slice,
// encoding/json's string escaping), without reflection. The ledger renders
// every result with it, once per order; TestOrderResultAppendJSON compares
// it with json.Marshal on randomly filled results, every field included, so
// a field added to a result type and not here fails that test.
func (r *OrderResult) AppendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, r.EventID)
	b = appendKey(b, "type", r.Type)
	b = appendKey(b, "causation_id", r.CausationID)
	b = appendKey(b, "source_type", r.SourceType)
	b = appendKey(b, "occurred_at", r.OccurredAt)
	b = appendKey(b, "order_id", r.OrderID)
	if r.OriginalOrderID != "" {
		b = appendKey(b, "original_order_id", r.OriginalOrderID)
	}
	if r.CustomerID != "" {
		b = appendKey(b, "customer_id", r.CustomerID)
	}
	b = appendKey(b, "currency", r.Currency)
	b = appendKey(b, "status", r.Status)
	if r.Error != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendJSONString(b, r.Error.Code)
		b = appendKey(b, "message", r.Error.Message)
		b = append(b, '}')
	}
	b = append(b, `,"catalog_version":`...)
	b = strconv.AppendInt(b, r.CatalogVersion, 10)
	b = append(b, `,"totals":{"gross":`...)
	b = appendDec(b, r.Totals.Gross)
	b = appendDecKey(b, "discount", r.Totals.Discount)
	b = appendDecKey(b, "net", r.Totals.Net)
	b = append(b, `},"lines":`...)
	b = appendList(b, r.Lines, func(b []byte, l *LineResult) []byte {
		b = append(b, `{"id":`...)
		b = appendJSONString(b, l.ID)
		b = appendDecKey(b, "qty", l.Qty)
		b = appendDecKey(b, "gross", l.Gross)
		b = appendDecKey(b, "discount", l.Discount)
		b = appendDecKey(b, "net", l.Net)
		return append(b, '}')
	})
	b = append(b, `,"discounts":`...)
	b = appendList(b, r.Discounts, func(b []byte, d *Discount) []byte {
		b = append(b, `{"layer":`...)
		b = appendJSONString(b, d.Layer)
		b = appendKey(b, "program_id", d.ProgramID)
		b = appendKey(b, "line_id", d.LineID)
		b = appendDecKey(b, "amount", d.Amount)
		return append(b, '}')
	})
	if p := r.Points; p != nil {
		b = append(b, `,"points":{"earned":`...)
		b = appendDec(b, p.Earned)
		if p.EarnedLotID != "" {
			b = appendKey(b, "earned_lot_id", p.EarnedLotID)
		}
		b = append(b, `,"earned_expires_at":`...)
		b = appendOptString(b, p.EarnedExpiresAt)
		b = appendDecKey(b, "redeemed", p.Redeemed)
		b = append(b, `,"redeemed_lots":`...)
		b = appendList(b, p.RedeemedLots, appendLotAmount)
		b = appendDecKey(b, "clawed_back", p.ClawedBack)
		if len(p.ClawedBackLots) > 0 {
			b = append(b, `,"clawed_back_lots":`...)
			b = appendList(b, p.ClawedBackLots, appendLotAmount)
		}
		b = appendDecKey(b, "restored", p.Restored)
		if len(p.RestoredLots) > 0 {
			b = append(b, `,"restored_lots":`...)
			b = appendList(b, p.RestoredLots, appendLotAmount)
		}
		b = appendDecKey(b, "debt", p.Debt)
		b = appendDecKey(b, "balance", p.Balance)
		b = append(b, '}')
	}
	if m := r.Membership; m != nil {
		b = append(b, `,"membership":{"path":`...)
		b = appendJSONString(b, m.Path)
		b = appendKey(b, "level", m.Level)
		b = appendKey(b, "previous_level", m.PreviousLevel)
		b = append(b, `,"changed":`...)
		b = strconv.AppendBool(b, m.Changed)
		b = appendDecKey(b, "qualifying_amount", m.QualifyingAmount)
		b = append(b, '}')
	}
	b = append(b, `,"trace":`...)
	b = appendList(b, r.Trace, func(b []byte, t *Trace) []byte {
		b = append(b, `{"program_id":`...)
		b = appendJSONString(b, t.ProgramID)
		b = appendKey(b, "layer", t.Layer)
		b = appendKey(b, "outcome", t.Outcome)
		b = appendKey(b, "reason", t.Reason)
		return append(b, '}')
	})
	if len(r.CouponsIssued) > 0 {
		b = append(b, `,"coupons_issued":`...)
		b = appendList(b, r.CouponsIssued, func(b []byte, c *CouponIssued) []byte {
			b = append(b, `{"code":`...)
			b = appendJSONString(b, c.Code)
			b = appendKey(b, "program_id", c.ProgramID)
			b = appendKey(b, "issued_by", c.IssuedBy)
			b = appendKey(b, "valid_until", c.ValidUntil)
			return append(b, '}')
		})
	}
	for _, refs := range [...]struct {
		key  string
		list []CouponRef
	}{{"coupons_used", r.CouponsUsed}, {"coupons_voided", r.CouponsVoided}, {"coupons_released", r.CouponsReleased}} {
		if len(refs.list) > 0 {
			b = append(b, `,"`...)
			b = append(b, refs.key...)
			b = append(b, `":`...)
			b = appendList(b, refs.list, func(b []byte, c *CouponRef) []byte {
				b = append(b, `{"code":`...)
				b = appendJSONString(b, c.Code)
				b = appendKey(b, "program_id", c.ProgramID)
				return append(b, '}')
			})
		}
	}
	return append(b, '}')
}

func appendLotAmount(b []byte, l *LotAmount) []byte {
	b = append(b, `{"lot_id":`...)
	b = appendJSONString(b, l.LotID)
	b = appendDecKey(b, "amount", l.Amount)
	b = append(b, `,"expires_at":`...)
	b = appendOptString(b, l.ExpiresAt)
	return append(b, '}')
}

// appendList writes a JSON array, null for a nil slice as encoding/json does.
func appendList[T any](b []byte, list []T, item func([]byte, *T) []byte) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(b, &list[i])
	}
	return append(b, ']')
}

// appendKey writes ,"key":"value" (key needs no escaping).
func appendKey(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

func appendDecKey(b []byte, key string, d dec.Decimal) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendDec(b, d)
}

// appendDec writes what dec.Decimal.MarshalJSON writes: its plain text,
// quoted (digits, a sign and a point: nothing to escape).
func appendDec(b []byte, d dec.Decimal) []byte {
	b = append(b, '"')
	b = append(b, d.String()...)
	return append(b, '"')
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

// appendJSONString writes s as encoding/json does: printable ASCII other
// than ", \, <, > and & as it is; anything else through encoding/json
// itself, so that its escaping rules (HTML characters, U+2028, invalid
// UTF-8) apply exactly.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // a string always marshals
				panic(err)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
