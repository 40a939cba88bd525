package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldDiff is one field whose value differs between two results.
type FieldDiff struct {
	// Path is the field's JSON path: totals.discount, lines[0].net,
	// discounts[2] (a whole element present on one side only).
	Path string `json:"path"`
	// Stored and Replayed are the values as compact JSON, or "" when the
	// field is absent on that side.
	Stored   string `json:"stored"`
	Replayed string `json:"replayed"`
}

// ignoredResultFields are not compared: the catalog version differs by
// construction when a range is evaluated under the current catalog.
var ignoredResultFields = []string{"catalog_version"}

// diffResults compares two result documents field by field. Numbers are
// compared by their text (amounts are strings on the wire anyway), objects
// by key, arrays by position.
func diffResults(stored, replayed []byte) ([]FieldDiff, error) {
	a, err := decodeJSON(stored)
	if err != nil {
		return nil, fmt.Errorf("stored result: %w", err)
	}
	b, err := decodeJSON(replayed)
	if err != nil {
		return nil, fmt.Errorf("replayed result: %w", err)
	}
	for _, f := range ignoredResultFields {
		if m, ok := a.(map[string]any); ok {
			delete(m, f)
		}
		if m, ok := b.(map[string]any); ok {
			delete(m, f)
		}
	}
	var out []FieldDiff
	diffValue("", a, b, &out)
	return out, nil
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func diffValue(path string, a, b any, out *[]FieldDiff) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, seen := av[k]; !seen {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			x, inA := av[k]
			y, inB := bv[k]
			p := joinPath(path, k)
			switch {
			case inA && inB:
				diffValue(p, x, y, out)
			case inA:
				*out = append(*out, FieldDiff{Path: p, Stored: compact(x)})
			default:
				*out = append(*out, FieldDiff{Path: p, Replayed: compact(y)})
			}
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok {
			break
		}
		for i := 0; i < max(len(av), len(bv)); i++ {
			p := path + "[" + strconv.Itoa(i) + "]"
			switch {
			case i < len(av) && i < len(bv):
				diffValue(p, av[i], bv[i], out)
			case i < len(av):
				*out = append(*out, FieldDiff{Path: p, Stored: compact(av[i])})
			default:
				*out = append(*out, FieldDiff{Path: p, Replayed: compact(bv[i])})
			}
		}
		return
	}
	if x, y := compact(a), compact(b); x != y {
		if path == "" {
			path = "$"
		}
		*out = append(*out, FieldDiff{Path: path, Stored: x, Replayed: y})
	}
}

// joinPath appends key to a dotted path; keys that are not plain
// identifiers are quoted (["a.b"]).
func joinPath(path, key string) string {
	plain := key != "" && strings.IndexFunc(key, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func compact(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
