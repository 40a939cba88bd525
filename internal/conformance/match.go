// Package conformance runs the scenarios of ../shared/conformance (and the
// project's own, in testdata/scenarios) against the real engine: the built
// promoengine binary, an embedded NATS JetStream server and a real
// PostgreSQL database, exactly as the scenarios' README prescribes.
//
// This file holds the partial matcher of that README: every key of the
// expectation must match, keys it does not name are ignored, lists match
// element by element with the same length, numbers written as strings
// compare as decimals and times compare as instants.
package conformance

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Mismatch is one difference, at a JSON path such as $.lines[0].net.
type Mismatch struct {
	Path     string
	Expected any
	Actual   any
	Why      string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s\n      expected: %s\n      actual:   %s", m.Path, m.Why, show(m.Expected), show(m.Actual))
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Match compares actual (decoded JSON) against expected (decoded YAML).
func Match(expected, actual any) []Mismatch {
	var out []Mismatch
	match("$", normalize(expected), actual, &out)
	return out
}

func match(path string, exp, act any, out *[]Mismatch) {
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			*out = append(*out, Mismatch{path, exp, act, "want an object"})
			return
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, present := a[k]
			if !present {
				*out = append(*out, Mismatch{path + "." + k, e[k], nil, "missing"})
				continue
			}
			match(path+"."+k, e[k], av, out)
		}
	case []any:
		a, ok := act.([]any)
		if !ok {
			if len(e) == 0 && act == nil {
				return // an absent list matches an empty expectation
			}
			*out = append(*out, Mismatch{path, exp, act, "want a list"})
			return
		}
		if len(a) != len(e) {
			*out = append(*out, Mismatch{path, exp, act, fmt.Sprintf("want %d elements, got %d", len(e), len(a))})
			return
		}
		for i := range e {
			match(fmt.Sprintf("%s[%d]", path, i), e[i], a[i], out)
		}
	default:
		if !scalarEqual(exp, act) {
			*out = append(*out, Mismatch{path, exp, act, "differs"})
		}
	}
}

func scalarEqual(exp, act any) bool {
	if exp == nil || act == nil {
		return exp == nil && act == nil
	}
	if eb, ok := exp.(bool); ok {
		ab, ok := act.(bool)
		return ok && eb == ab
	}
	es, as := scalarText(exp), scalarText(act)
	if es == as {
		return true
	}
	if ed, err := dec.Parse(es); err == nil {
		if ad, err := dec.Parse(as); err == nil {
			return ed.Cmp(ad) == 0
		}
	}
	if et, err := time.Parse(time.RFC3339Nano, es); err == nil {
		if at, err := time.Parse(time.RFC3339Nano, as); err == nil {
			return et.Equal(at)
		}
	}
	return false
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

// normalize turns YAML's map[any]any (never produced by yaml.v3 for string
// keys, but harmless) into map[string]any.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[k] = normalize(vv)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[fmt.Sprint(k)] = normalize(vv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = normalize(vv)
		}
		return out
	}
	return v
}
