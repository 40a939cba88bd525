package odoo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Record is one record as read() or search_read() return it: field name to
// the field's JSON. The accessors below understand Odoo's conventions (false
// for empty) so that callers never look at JSON.
type Record map[string]json.RawMessage

var jsonFalse = []byte("false")

func (r Record) empty(field string) bool {
	v, ok := r[field]
	v = bytes.TrimSpace(v)
	return !ok || len(v) == 0 || bytes.Equal(v, jsonFalse) || bytes.Equal(v, []byte("null"))
}

// Has reports whether the field was returned at all.
func (r Record) Has(field string) bool { _, ok := r[field]; return ok }

// ID is the record's id (0 when absent).
func (r Record) ID() int64 { id, _ := r.Int("id"); return id }

// Int reads an integer field; ok is false when empty or not an integer.
func (r Record) Int(field string) (int64, bool) {
	if r.empty(field) {
		return 0, false
	}
	i, err := strconv.ParseInt(string(bytes.TrimSpace(r[field])), 10, 64)
	return i, err == nil
}

// String reads a char, text or selection field; "" when empty (false).
func (r Record) String(field string) string {
	if r.empty(field) {
		return ""
	}
	var s string
	if err := json.Unmarshal(r[field], &s); err != nil {
		return ""
	}
	return s
}

// Many2one reads a many-to-one field: [id, "display name"] from read() and
// search_read(), or a bare id from a read with load=None. ok is false when
// the field is empty.
func (r Record) Many2one(field string) (id int64, name string, ok bool) {
	if r.empty(field) {
		return 0, "", false
	}
	v := bytes.TrimSpace(r[field])
	if len(v) > 0 && v[0] == '[' {
		var pair []json.RawMessage
		if err := json.Unmarshal(v, &pair); err != nil || len(pair) == 0 {
			return 0, "", false
		}
		if err := json.Unmarshal(pair[0], &id); err != nil {
			return 0, "", false
		}
		if len(pair) > 1 {
			_ = json.Unmarshal(pair[1], &name)
		}
		return id, name, id > 0
	}
	if err := json.Unmarshal(v, &id); err != nil {
		return 0, "", false
	}
	return id, "", id > 0
}

// IDs reads a one-to-many or many-to-many field: a list of ids.
func (r Record) IDs(field string) []int64 {
	if r.empty(field) {
		return nil
	}
	var ids []int64
	if err := json.Unmarshal(r[field], &ids); err != nil {
		return nil
	}
	return ids
}

// Decimal reads a float or monetary field exactly from the digits Odoo
// wrote (Python writes the shortest repr that round-trips, so 0.1 is "0.1"),
// without trailing zeros: 25000.0 → 25000. An empty field is 0.
func (r Record) Decimal(field string) (dec.Decimal, error) {
	if r.empty(field) {
		return dec.Zero, nil
	}
	var d dec.Decimal
	if err := d.UnmarshalJSON(r[field]); err != nil {
		return dec.Zero, fmt.Errorf("odoo: field %s: %w", field, err)
	}
	return Reduce(d), nil
}

// Reduce strips trailing zeros: 2.500 → 2.5, 25000.0 → 25000.
func Reduce(d dec.Decimal) dec.Decimal {
	var z apd.Decimal
	z.Reduce(d.APD())
	if z.Exponent > 0 { // 2.5E+4 → 25000: plain digits on the wire
		if _, err := apd.BaseContext.WithPrecision(dec.Precision).Quantize(&z, &z, 0); err != nil {
			return d
		}
	}
	return dec.FromAPD(&z)
}

// datetimeLayout is how Odoo stores and sends datetimes: UTC, no zone.
const datetimeLayout = "2006-01-02 15:04:05"

// Datetime reads a datetime field ("2026-11-28 03:15:00", UTC, possibly
// with microseconds) as a UTC time.
func (r Record) Datetime(field string) (time.Time, error) {
	s := r.String(field)
	if s == "" {
		return time.Time{}, fmt.Errorf("odoo: field %s is empty", field)
	}
	return ParseDatetime(s)
}

// ParseDatetime reads Odoo's UTC datetime text.
func ParseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{datetimeLayout, datetimeLayout + ".999999", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("odoo: %q is not an Odoo datetime (YYYY-MM-DD HH:MM:SS, UTC)", s)
}
