// Package schemas embeds the JSON Schemas of every promoengine event and of
// the catalog, compiles them once, and turns a schema failure into a list of
// violations that each name the offending field by JSON pointer.
//
// The schemas are the published contract for integrators (Odoo, scripts);
// the Go decoders validate against these very files so the contract and the
// code cannot drift apart.
package schemas

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/promoengine/promoengine/pkg/errtext"
)

//go:embed *.json
var files embed.FS

// BaseURL is the $id prefix of every schema here.
const BaseURL = "https://schemas.promoengine.dev/"

// Names of the schemas, by file.
const (
	OrderPaid      = "pos.order.paid.schema.json"
	OrderReturned  = "pos.order.returned.schema.json"
	OrderCancelled = "pos.order.cancelled.schema.json"
	OrderResult    = "promo.order.result.schema.json"
	PointsExpired  = "promo.points_expired.schema.json"
	LevelChanged   = "promo.level_changed.schema.json"
	LevelWarning   = "promo.level_warning.schema.json"
	Catalog        = "catalog.schema.json"
)

// FS exposes the raw schema files (for `promoengine` docs and tests).
func FS() fs.FS { return files }

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

func compileAll() {
	c := jsonschema.NewCompiler()
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		compileErr = err
		return
	}
	var names []string
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			compileErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
		if err != nil {
			compileErr = fmt.Errorf("schemas: %s: %w", e.Name(), err)
			return
		}
		if err := c.AddResource(BaseURL+e.Name(), doc); err != nil {
			compileErr = fmt.Errorf("schemas: %s: %w", e.Name(), err)
			return
		}
		names = append(names, e.Name())
	}
	compiled = make(map[string]*jsonschema.Schema, len(names))
	for _, n := range names {
		s, err := c.Compile(BaseURL + n)
		if err != nil {
			compileErr = fmt.Errorf("schemas: compile %s: %w", n, err)
			return
		}
		compiled[n] = s
	}
}

// Get returns the compiled schema of a file named by one of the constants.
func Get(name string) (*jsonschema.Schema, error) {
	compileOnce.Do(compileAll)
	if compileErr != nil {
		return nil, compileErr
	}
	s, ok := compiled[name]
	if !ok {
		return nil, fmt.Errorf("schemas: no schema %q", name)
	}
	return s, nil
}

// Violation is one reason a document is invalid.
type Violation struct {
	Pointer string `json:"pointer"` // JSON pointer of the offending value, "" for the root
	Message string `json:"message"`
}

func (v Violation) String() string {
	p := v.Pointer
	if p == "" {
		p = "/"
	}
	return p + ": " + v.Message
}

var printer = message.NewPrinter(language.English)

// Validate checks a document decoded by jsonschema.UnmarshalJSON (numbers
// kept as json.Number) against a schema and returns every violation, sorted
// by pointer; nil when valid.
func Validate(s *jsonschema.Schema, doc any) []Violation {
	err := s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Message: errtext.Clip(err.Error(), errtext.MaxMessage)}}
	}
	seen := map[Violation]bool{}
	var out []Violation
	collect(ve, seen, &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

// collect walks the error tree down to its leaves. For a oneOf/anyOf failure
// (one of "a decimal string or a number"), it reports the alternative that
// got furthest into the value instead of every branch, which is what a human
// wants to read.
func collect(e *jsonschema.ValidationError, seen map[Violation]bool, out *[]Violation) {
	if len(e.Causes) == 0 {
		for _, v := range leaf(e) {
			if !seen[v] {
				seen[v] = true
				*out = append(*out, v)
			}
		}
		return
	}
	switch lastKeyword(e) {
	case "oneOf", "anyOf":
		best := bestCause(e.Causes)
		if best != nil {
			collect(best, seen, out)
			return
		}
		v := Violation{Pointer: pointer(e.InstanceLocation), Message: errtext.Clip(e.ErrorKind.LocalizedString(printer), errtext.MaxMessage)}
		if !seen[v] {
			seen[v] = true
			*out = append(*out, v)
		}
		return
	}
	for _, c := range e.Causes {
		collect(c, seen, out)
	}
}

// bestCause picks the branch of a oneOf whose failure is not a plain type
// mismatch, if exactly one such branch exists.
func bestCause(causes []*jsonschema.ValidationError) *jsonschema.ValidationError {
	var candidate *jsonschema.ValidationError
	for _, c := range causes {
		if isTypeMismatch(c) {
			continue
		}
		if candidate != nil {
			return nil
		}
		candidate = c
	}
	return candidate
}

func isTypeMismatch(e *jsonschema.ValidationError) bool {
	if len(e.Causes) == 1 {
		return isTypeMismatch(e.Causes[0])
	}
	if len(e.Causes) > 1 {
		for _, c := range e.Causes {
			if !isTypeMismatch(c) {
				return false
			}
		}
		return true
	}
	k := lastKeyword(e)
	return k == "type" || k == "const"
}

func lastKeyword(e *jsonschema.ValidationError) string {
	kp := e.ErrorKind.KeywordPath()
	if len(kp) == 0 {
		return ""
	}
	return kp[len(kp)-1]
}

// patternHelp replaces a regular expression nobody wants to read with what
// it means.
var patternHelp = map[string]string{
	`^-?[0-9]{1,15}(\.[0-9]{1,10})?$`: "must be a decimal such as \"12.50\" (at most 15 integer and 10 decimal digits)",
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`: "must be an RFC 3339 time with an offset such as 2026-11-28T10:15:00+07:00",
	`^[A-Z]{3}$`:                      "must be an ISO 4217 currency code such as IDR",
	`^([01][0-9]|2[0-3]):[0-5][0-9]$`: "must be a time of day HH:MM such as 09:30",
}

func leaf(e *jsonschema.ValidationError) []Violation {
	p := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		vs := make([]Violation, len(k.Missing))
		for i, m := range k.Missing {
			vs[i] = Violation{Pointer: p + "/" + escape(m), Message: "is required"}
		}
		return vs
	case *kind.Pattern:
		if help, ok := patternHelp[k.Want]; ok {
			return []Violation{{Pointer: p, Message: help + ", got " + errtext.Quote(k.Got)}}
		}
	case *kind.AdditionalProperties:
		vs := make([]Violation, len(k.Properties))
		for i, m := range k.Properties {
			vs[i] = Violation{Pointer: p + "/" + escape(m), Message: "is not a known field"}
		}
		return vs
	}
	return []Violation{{Pointer: p, Message: errtext.Clip(e.ErrorKind.LocalizedString(printer), errtext.MaxMessage)}}
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range loc {
		b.WriteByte('/')
		b.WriteString(escape(p))
	}
	return b.String()
}
