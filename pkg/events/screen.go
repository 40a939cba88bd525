package events

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

// The screen runs between parsing the JSON and validating it against the
// schema, and refuses, at the cost of one walk over the document, what
// would make any later step expensive or fail in PostgreSQL:
//
//   - a number whose text is longer than dec.MaxText or whose exponent has
//     more than dec.MaxExponentDigits digits: the schema validator reads
//     every number as a big.Rat to check "integer", which for 1e999999 or a
//     million digits costs from milliseconds to seconds;
//   - an array of more than MaxLines items (no array of an event may have
//     more), so that the validator never reports a violation per item of a
//     huge array;
//   - a NUL character (\u0000) in any string or key: PostgreSQL text and
//     jsonb cannot hold one.
//
// Invalid UTF-8 was refused before parsing (encoding/json would silently
// turn it into U+FFFD, so that two different ids could become one).

// maxScreenViolations is where the screen stops looking: its refusals are
// about the cost of the input, and a few examples make the point.
const maxScreenViolations = errtext.MaxListed

// screen walks a document decoded by jsonschema.UnmarshalJSON. The pointer
// of the value being visited is kept as a stack of segments and written out
// only for a violation, so the walk is linear in the document whatever the
// length of its keys.
func screen(doc any) []schemas.Violation {
	s := &screener{}
	s.walk(doc)
	// Objects are walked in map order; sorted, the violations come out the
	// same every time (when the check did not stop early).
	sort.SliceStable(s.vs, func(i, j int) bool { return s.vs[i].Pointer < s.vs[j].Pointer })
	if s.stopped {
		s.vs = append(s.vs, schemas.Violation{Message: "more values may have these problems: the check stopped here"})
	}
	return s.vs
}

type screener struct {
	path    []string
	vs      []schemas.Violation
	stopped bool
}

func (s *screener) add(format string, args ...any) {
	if len(s.vs) == maxScreenViolations {
		s.stopped = true
		return
	}
	var b strings.Builder
	for _, seg := range s.path {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(seg, "~", "~0"), "/", "~1"))
	}
	s.vs = append(s.vs, schemas.Violation{Pointer: b.String(), Message: errtext.Sprintf(format, args...)})
}

func (s *screener) walk(v any) {
	if s.stopped {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			s.path = append(s.path, k)
			if strings.IndexByte(k, 0) >= 0 {
				s.add("the key contains a NUL character (\\u0000), which cannot be stored")
			}
			s.walk(child)
			s.path = s.path[:len(s.path)-1]
		}
	case []any:
		if len(x) > MaxLines {
			s.add("has %d items; no list of an event may have more than %d", len(x), MaxLines)
			return
		}
		for i, child := range x {
			s.path = append(s.path, strconv.Itoa(i))
			s.walk(child)
			s.path = s.path[:len(s.path)-1]
		}
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			s.add("contains a NUL character (\\u0000), which cannot be stored")
		}
	case json.Number:
		if err := dec.CheckText(string(x)); err != nil {
			s.add("is a number of %d characters; at most %d characters with an exponent of at most %d digits are read",
				len(x), dec.MaxText, dec.MaxExponentDigits)
		}
	}
}

// checkUTF8 refuses bytes that are not UTF-8, naming the offset of the
// first bad byte.
func checkUTF8(data []byte) *InvalidError {
	if utf8.Valid(data) {
		return nil
	}
	off := 0
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	return invalid("", "not valid UTF-8 (first bad byte at offset %d); JSON text must be UTF-8", off)
}
