package rules

import (
	"testing"

	"github.com/promoengine/promoengine/pkg/dec"
)

func TestAllocate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		total   string
		weights []string
		places  int32
		want    []string
	}{
		// 10 × 54000/66000 = 8.18…, 10 × 12000/66000 = 1.81…: floors 8 + 1, the
		// unit left goes to the larger remainder (.81 > .18).
		{"proportional", "10", []string{"54000", "12000"}, 0, []string{"8", "2"}},
		{"ties to the earlier weight", "2", []string{"1", "1", "1"}, 0, []string{"1", "1", "0"}},
		{"cents", "0.10", []string{"1", "1", "1"}, 2, []string{"0.04", "0.03", "0.03"}},
		{"zero and negative weights get nothing", "9", []string{"0", "3", "-5", "6"}, 0, []string{"0", "3", "0", "6"}},
		{"one weight takes all", "7.5", []string{"0", "2"}, 1, []string{"0.0", "7.5"}},
		{"no weight", "7", []string{"0", "0"}, 0, []string{"0", "0"}},
		{"zero total", "0", []string{"1", "2"}, 2, []string{"0.00", "0.00"}},
		{"negative total", "-3", []string{"1", "2"}, 0, []string{"0", "0"}},
		// The total is rounded half up first: 2.345 → 2.35; 2.35 / 2 = 1.175 → 1.17
		// each, one cent left, tie → the first.
		{"total rounded half up", "2.345", []string{"1", "1"}, 2, []string{"1.18", "1.17"}},
		// Unit nets of 10000/3: weights of 3333.33… compare exactly.
		{"fractional weights", "5000", []string{"3333.333333333333333333333333333333", "6666.666666666666666666666666666667"}, 0, []string{"1667", "3333"}},
		// Products beyond 128 bits still split exactly. In cents the exact
		// shares are 11111111021111100.91…, 88888888978888808.08…, 90.00000008…;
		// the floors leave one cent, which goes to the largest remainder (.91).
		{"huge", "999999999999999.99", []string{"123456789012345.6789", "987654321098765.4321", "1"}, 2,
			[]string{"111111110211111.01", "888888889788888.08", "0.90"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			weights := make([]dec.Decimal, len(tt.weights))
			for i, w := range tt.weights {
				weights[i] = dec.MustParse(w)
			}
			shares := Allocate(dec.MustParse(tt.total), weights, tt.places)
			got := make([]string, len(shares))
			for i, s := range shares {
				got[i] = s.String()
			}
			requireDeepEqual(t, tt.want, got, "shares")
		})
	}
}

func BenchmarkAllocate(b *testing.B) {
	weights := make([]dec.Decimal, 10)
	for i := range weights {
		weights[i] = dec.FromInt(int64(10000 + 1234*i))
	}
	total := dec.FromInt(12345)
	b.ReportAllocs()
	for b.Loop() {
		Allocate(total, weights, 0)
	}
}
