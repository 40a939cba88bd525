package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ID is an identifier: a string on output. On input an integer is accepted
// and kept as its decimal digits, since Odoo sends database ids as integers.
type ID string

// Bounds of an id (SPEC §3 leaves them open; these are what reaches
// PostgreSQL as text and a btree key): a string of 1 to MaxIDLength
// characters without control characters, or an integer of at most
// MaxIDDigits digits (Odoo's ids are PostgreSQL integers, at most 19 digits
// even as bigint).
const (
	MaxIDLength = 200
	MaxIDDigits = 19
)

var (
	errBadID = errors.New("must be a non-empty string or an integer")
	// ErrBadIDText is matched (errors.Is) by CheckID's refusals.
	ErrBadIDText = errors.New("events: bad id")
)

// badIDError is a CheckID refusal; its text is the reason alone, ready to
// be a violation's message.
type badIDError struct{ reason string }

func (e *badIDError) Error() string        { return e.reason }
func (e *badIDError) Is(target error) bool { return target == ErrBadIDText }

// CheckID reports whether s may be an id: 1 to MaxIDLength characters of
// valid UTF-8 without control characters (NUL, newlines, DEL, C1 codes).
// Such an id can be stored in PostgreSQL text and put in a NATS header as
// it is. The error says why in a few words and does not quote s.
func CheckID(s string) error {
	bad := func(format string, args ...any) error { return &badIDError{reason: fmt.Sprintf(format, args...)} }
	switch {
	case s == "":
		return bad("must not be empty")
	case !utf8.ValidString(s):
		return bad("must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxIDLength:
		return bad("must be at most %d characters, got %d", MaxIDLength, utf8.RuneCountInString(s))
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return bad("must not contain control characters (%U at byte %d)", r, i)
		}
	}
	return nil
}

// integerID reads the text of a JSON integer as an id: an optional minus
// and 1 to MaxIDDigits digits, nothing else (no fraction, no exponent: 77.0
// and 7.7e1 would be other strings than 77, and one customer two). -0 is
// read as "0". Only the text is looked at.
func integerID(b []byte) (ID, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > MaxIDDigits {
		return "", false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if bytes.Equal(b, []byte("-0")) {
		return "0", true
	}
	return ID(b), true
}

// UnmarshalJSON accepts "abc", 42 or -7 (kept as "-7"); never 4.2, null, an
// integer of more than MaxIDDigits digits or a string CheckID refuses.
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
		if err := CheckID(s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	v, ok := integerID(b)
	if !ok {
		return errBadID
	}
	*id = v
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
