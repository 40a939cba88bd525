package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ID is an identifier: a string on output. On input an integer is accepted
// and kept as its decimal digits, since Odoo sends database ids as integers.
type ID string

var errBadID = errors.New("must be a non-empty string or an integer")

// UnmarshalJSON accepts "abc", 42 or -7 (kept as "-7"); never 4.2 or null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errBadID
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %w", errBadID, err)
		}
		if s == "" {
			return errBadID
		}
		*id = ID(s)
		return nil
	}
	digits := b
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return errBadID
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return errBadID
		}
	}
	*id = ID(b)
	return nil
}

// String returns the id's text.
func (id ID) String() string { return string(id) }

// IDs is a list of ids, each normalised like ID.
type IDs []ID

// Strings returns the ids as plain strings.
func (ids IDs) Strings() []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}
