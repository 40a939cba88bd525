package events

import (
	"encoding/json"
	"strings"

	"github.com/promoengine/promoengine/pkg/dec"
)

// parseJSON is the hot path's JSON reader: the same document that
// jsonschema.UnmarshalJSON builds (map[string]any, []any, string,
// json.Number, bool, nil; a repeated key keeps its last value), from one
// pass over the bytes without encoding/json's reflection. It gives up (ok
// false) on anything it is not sure of — a syntax error, a string with an
// escape sequence it does not read itself, nesting deeper than maxParseDepth
// — and Decode then uses jsonschema.UnmarshalJSON, which decides and words
// the error. FuzzParseJSON checks that whatever it reads, UnmarshalJSON reads
// the same.
//
// Along the way it notes whatever the screen (screen.go) refuses: a NUL in
// a string or key, an array of more than MaxLines items, a number text
// dec.CheckText refuses. screened is true when there is none, and Decode
// then skips the screen's walk; FuzzParseJSON checks the screen would
// indeed find nothing.
//
// data must be valid UTF-8 (Decode checks it first).
func parseJSON(data []byte) (doc any, screened, ok bool) {
	p := jsonParser{b: data}
	p.space()
	v, ok := p.value(0)
	if !ok {
		return nil, false, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false, false
	}
	return v, !p.suspect, true
}

const maxParseDepth = 64

type jsonParser struct {
	b       []byte
	i       int
	suspect bool // something the screen refuses may be in the document
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, bool) {
	if p.i >= len(p.b) || depth > maxParseDepth {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, ok := p.str()
		return s, ok
	case c == '-' || digit(c):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, false
}

func (p *jsonParser) literal(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *jsonParser) object(depth int) (any, bool) {
	p.i++ // {
	m := make(map[string]any)
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.space()
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
		if end, ok := p.next('}'); !ok {
			return nil, false
		} else if end {
			return m, true
		}
	}
}

func (p *jsonParser) array(depth int) (any, bool) {
	p.i++ // [
	a := []any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if len(a) > MaxLines {
			p.suspect = true
		}
		if end, ok := p.next(']'); !ok {
			return nil, false
		} else if end {
			return a, true
		}
	}
}

// next reads what follows a member or an item: a comma (end false) or
// the closing bracket (end true).
func (p *jsonParser) next(closing byte) (end, ok bool) {
	p.space()
	if p.i >= len(p.b) {
		return false, false
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.space()
		return false, true
	case closing:
		p.i++
		return true, true
	}
	return false, false
}

// str reads a string. One without escapes is copied as is (the input is
// valid UTF-8); one with escapes is handed to encoding/json, whose rules
// (surrogates, U+FFFD) then apply exactly.
func (p *jsonParser) str() (string, bool) {
	start := p.i
	p.i++ // "
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !escaped {
				return string(p.b[start+1 : p.i-1]), true
			}
			var s string
			if json.Unmarshal(p.b[start:p.i], &s) != nil {
				return "", false
			}
			if strings.IndexByte(s, 0) >= 0 { // only an escape can write a NUL
				p.suspect = true
			}
			return s, true
		case c == '\\':
			escaped = true
			p.i += 2 // the escaped byte is never the closing quote
		case c < 0x20:
			return "", false
		default:
			p.i++
		}
	}
	return "", false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as its text.
func (p *jsonParser) number() (any, bool) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && digit(p.b[p.i]):
		p.digits()
	default:
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	n := json.Number(p.b[start:p.i])
	if dec.CheckText(string(n)) != nil {
		p.suspect = true
	}
	return n, true
}

// digits skips [0-9]+; false when there is none.
func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && digit(p.b[p.i]) {
		p.i++
	}
	return p.i > start
}
