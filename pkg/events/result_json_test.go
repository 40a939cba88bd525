package events_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// TestOrderResultAppendJSON: AppendJSON writes exactly json.Marshal's bytes
// for results with every field filled at random (nil, empty and full
// slices, nil pointers, strings that need escaping). A field added to a
// result type without its line in AppendJSON makes the two differ.
func TestOrderResultAppendJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(20, 7))
	for range 3000 {
		var r events.OrderResult
		fill(rng, reflect.ValueOf(&r).Elem())
		want, err := json.Marshal(&r)
		require.NoError(t, err)
		got := r.AppendJSON(nil)
		require.Equal(t, string(want), string(got))
	}
}

var (
	decType     = reflect.TypeFor[dec.Decimal]()
	fillStrings = []string{"", "a", "lt-run-1", "<b>&</b>", "é ü", "\u2028\u2029", "\x00\x1f\n\t\"\\", "\xff\xfe", "😀", "applied"}
	fillDecs    = []string{"0", "1", "-1.50", "12345.678", "0.0000000001", "93500.00"}
)

func fill(rng *rand.Rand, v reflect.Value) {
	if v.Type() == decType {
		v.Set(reflect.ValueOf(dec.MustParse(fillDecs[rng.IntN(len(fillDecs))])))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fillStrings[rng.IntN(len(fillStrings))])
	case reflect.Int64, reflect.Int:
		v.SetInt(rng.Int64N(1<<40) - 1<<39)
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(rng, p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		switch n := rng.IntN(4); n {
		case 0: // nil
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1)
			for i := range n - 1 {
				fill(rng, s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i))
			}
		}
	default:
		panic("fill: no rule for " + v.Type().String())
	}
}
