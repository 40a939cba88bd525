package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

// A catalog is read into a JSON-like document first — map[string]any,
// []any, string, bool, nil and json.Number — which is what the JSON Schema
// validator takes and what the canonical JSON is written from. Numbers never
// pass through float64: a JSON number keeps its literal digits and a YAML
// number its text, so "0.1" stays one tenth.

// MaxCatalogBytes bounds a catalog document; real catalogs are a few
// kilobytes, and the bound keeps a hostile upload from costing much.
const MaxCatalogBytes = 4 << 20

// maxDepth bounds nesting: a catalog is at most seven levels deep.
const maxDepth = 32

// maxNodes bounds the values a YAML document may expand to through aliases
// (the "billion laughs" document).
const maxNodes = 200_000

// maxExpandedBytes bounds the text (scalars and keys) a YAML document may
// expand to through aliases: no more than the largest catalog written out
// in full, so that aliases save typing but never multiply the work of
// everything that follows (the schema, the error messages, the stored
// JSON). A 1 MB document of aliases to one large string used to expand to
// gigabytes.
const maxExpandedBytes = MaxCatalogBytes

// Bounds of a decimal, the same as the defs.schema.json decimal pattern: a
// number outside them is kept as its text so that the schema reports it.
const (
	maxIntDigits  = 15
	maxFracDigits = 10
)

// readDocument decodes YAML 1.2 or JSON into a JSON-like document. A
// problem the schema cannot see (bad syntax, a duplicate key) comes back as
// violations.
func readDocument(data []byte) (any, []schemas.Violation) {
	if len(data) > MaxCatalogBytes {
		return nil, []schemas.Violation{{Message: fmt.Sprintf("catalog is %d bytes, over the limit of %d bytes", len(data), MaxCatalogBytes)}}
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD without a word.
	if !utf8.Valid(data) {
		return nil, []schemas.Violation{{Message: "the document is not valid UTF-8"}}
	}
	// A document that opens with a brace is JSON. YAML could read it too
	// (JSON is almost a subset of YAML 1.2), but go.yaml.in/yaml/v3 is lax
	// with broken JSON — a trailing comma, a second document glued on — and
	// a JSON author deserves a JSON error.
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return readJSON(trimmed)
	}
	return readYAML(data)
}

// readJSON decodes JSON token by token so that duplicate keys are caught
// (encoding/json silently keeps the last one) and numbers stay exact.
func readJSON(data []byte) (any, []schemas.Violation) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	r := &jsonReader{d: d}
	v, err := r.value(0)
	if err == nil {
		if _, extra := d.Token(); !errors.Is(extra, io.EOF) {
			err = fmt.Errorf("unexpected data after the document at byte %d", d.InputOffset())
		}
	}
	if err != nil {
		return nil, []schemas.Violation{{Message: "not valid JSON: " + err.Error()}}
	}
	if len(r.vs) > 0 {
		return nil, r.vs
	}
	return v, nil
}

type jsonReader struct {
	d    *json.Decoder
	vs   []schemas.Violation
	path path
}

func (r *jsonReader) fail(format string, args ...any) {
	r.vs = append(r.vs, schemas.Violation{Pointer: r.path.pointer(), Message: errtext.Sprintf(format, args...)})
}

func (r *jsonReader) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested more than %d levels deep", orRoot(r.path.pointer()), maxDepth)
	}
	tok, err := r.d.Token()
	if err != nil {
		return nil, jsonError(err, r.d)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for r.d.More() {
				kt, err := r.d.Token()
				if err != nil {
					return nil, jsonError(err, r.d)
				}
				k, _ := kt.(string)
				r.path.push(k)
				if strings.IndexByte(k, 0) >= 0 {
					r.fail("%s", nulMessage)
				}
				v, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				if _, dup := m[k]; dup {
					r.fail("duplicate key")
				}
				r.path.pop()
				m[k] = v
			}
			if _, err := r.d.Token(); err != nil {
				return nil, jsonError(err, r.d)
			}
			return m, nil
		case '[':
			a := []any{}
			for r.d.More() {
				r.path.pushIndex(len(a))
				v, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				r.path.pop()
				a = append(a, v)
			}
			if _, err := r.d.Token(); err != nil {
				return nil, jsonError(err, r.d)
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %q at byte %d", t, r.d.InputOffset())
	case json.Number:
		return number(string(t)), nil
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			r.fail("%s", nulMessage)
		}
		return t, nil
	default:
		return t, nil // bool or nil
	}
}

// nulMessage refuses a NUL character, which the catalog store (jsonb)
// cannot hold.
const nulMessage = "contains a NUL character (\\u0000), which cannot be stored"

// path is the JSON pointer of the value being read, kept as segments and
// written out only for a violation: building every value's pointer as a
// string made reading quadratic in the length of the keys above it (a
// 142 KB document cost 2.4 s and 760 MB).
type path struct{ segs []string }

func (p *path) push(key string) { p.segs = append(p.segs, key) }
func (p *path) pushIndex(i int) { p.segs = append(p.segs, strconv.Itoa(i)) }
func (p *path) pop()            { p.segs = p.segs[:len(p.segs)-1] }
func (p *path) pointer() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		b.WriteString(escapePointer(s))
	}
	return b.String()
}

func jsonError(err error, d *json.Decoder) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("unexpected end of the document at byte %d", d.InputOffset())
	}
	return fmt.Errorf("%w (near byte %d)", err, d.InputOffset())
}

// readYAML decodes YAML 1.2 (go.yaml.in/yaml/v3): `on`, `yes` and `no` are
// strings, `10:00` is a string, not sexagesimal, `0777` is seven hundred
// and seventy-seven.
func readYAML(data []byte) (any, []schemas.Violation) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []schemas.Violation{{Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, []schemas.Violation{{Message: "the document is empty"}}
	}
	r := &yamlReader{}
	v := r.value(root.Content[0], 0)
	if len(r.vs) > 0 {
		return nil, r.vs
	}
	return v, nil
}

type yamlReader struct {
	vs       []schemas.Violation
	nodes    int
	expanded int // bytes of scalars and keys read so far, aliases expanded
	stop     bool
	path     path
}

func (r *yamlReader) fail(n *yaml.Node, format string, args ...any) {
	msg := errtext.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("%s (line %d)", msg, n.Line)
	}
	r.vs = append(r.vs, schemas.Violation{Pointer: r.path.pointer(), Message: msg})
}

// spend counts what a node costs the budget; false (and one violation) once
// the document expands to more than maxNodes values or maxExpandedBytes.
func (r *yamlReader) spend(text int) bool {
	r.nodes++
	r.expanded += text
	switch {
	case r.nodes > maxNodes:
		r.stop = true
		r.vs = append(r.vs, schemas.Violation{Message: fmt.Sprintf("the document expands to more than %d values", maxNodes)})
	case r.expanded > maxExpandedBytes:
		r.stop = true
		r.vs = append(r.vs, schemas.Violation{Message: fmt.Sprintf(
			"the document expands through aliases to more than %d bytes, the limit of a whole catalog", maxExpandedBytes)})
	}
	return !r.stop
}

func (r *yamlReader) value(n *yaml.Node, depth int) any {
	if r.stop {
		return nil
	}
	text := 0
	if n.Kind == yaml.ScalarNode {
		text = len(n.Value)
	}
	if !r.spend(text) {
		return nil
	}
	if depth > maxDepth {
		r.stop = true
		r.fail(n, "nested more than %d levels deep", maxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			r.fail(n, "unknown alias")
			return nil
		}
		return r.value(n.Alias, depth+1)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return r.value(n.Content[0], depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode {
				r.fail(kn, "a mapping key must be a plain name")
				continue
			}
			k := kn.Value
			if !r.spend(len(k)) {
				return nil
			}
			r.path.push(k)
			switch _, dup := m[k]; {
			case kn.ShortTag() == "!!merge":
				r.fail(kn, "merge keys (<<) are not supported: write the fields out")
			case dup:
				r.fail(kn, "duplicate key")
			default:
				if strings.IndexByte(k, 0) >= 0 {
					r.fail(kn, "%s", nulMessage)
				}
				m[k] = r.value(vn, depth+1)
			}
			r.path.pop()
		}
		return m
	case yaml.SequenceNode:
		a := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			r.path.pushIndex(i)
			a = append(a, r.value(c, depth+1))
			r.path.pop()
		}
		return a
	case yaml.ScalarNode:
		return r.scalar(n)
	}
	r.fail(n, "unsupported YAML node")
	return nil
}

var decimalDigits = regexp.MustCompile(`^[-+]?[0-9]+$`)

func (r *yamlReader) scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			r.fail(n, "not a boolean: %q", n.Value)
			return nil
		}
		return b
	case "!!int":
		text := n.Value
		if !decimalDigits.MatchString(text) {
			// 0x1F, 0o17, 1_000: let YAML say what integer it is.
			var i int64
			if err := n.Decode(&i); err != nil {
				return text
			}
			text = strconv.FormatInt(i, 10)
		}
		return number(text)
	case "!!float":
		return number(n.Value)
	default:
		// Strings, timestamps (kept as written: the schema wants RFC 3339
		// text), binary and unknown tags.
		if strings.IndexByte(n.Value, 0) >= 0 {
			r.fail(n, "%s", nulMessage)
		}
		return n.Value
	}
}

// number turns the text of a number into an exact json.Number, or keeps the
// text as a string when it is not a finite decimal within the bounds, so that
// the schema names it ("must be a decimal such as …") instead of the
// validator wrestling with 1e999999999.
func number(text string) any {
	d, err := dec.Parse(strings.TrimPrefix(text, "+"))
	if err != nil || d.IntDigits() > maxIntDigits || d.Places() > maxFracDigits {
		return text
	}
	return json.Number(d.String())
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func orRoot(ptr string) string {
	if ptr == "" {
		return "/"
	}
	return ptr
}

// canonicalJSON writes a document compactly with sorted keys and numbers as
// their exact text: the same catalog always gives the same bytes.
func canonicalJSON(doc any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
