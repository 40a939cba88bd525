package dec_test

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
)

// Golden vectors for the two roundings the engine uses: half up (money) and
// floor (earned points), and for the fixed rendering on the wire.
func TestRoundingGoldenVectors(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/round.txt")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		require.Len(t, fs, 5, line)
		x := dec.MustParse(fs[0])
		places, err := strconv.Atoi(fs[1])
		require.NoError(t, err)
		require.Equal(t, fs[2], x.Round(int32(places)).String(), "half up: %s", line)
		require.Equal(t, fs[3], x.Floor(int32(places)).String(), "floor: %s", line)
		require.Equal(t, fs[4], x.Fixed(int32(places)), "fixed: %s", line)
		n++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 11, n)
}

func TestJSONReadsNumbersExactlyAndWritesStrings(t *testing.T) {
	t.Parallel()
	var v struct{ A, B, C dec.Decimal }
	require.NoError(t, json.Unmarshal([]byte(`{"A": 0.1, "B": "0.2", "C": 12345678901234567890.123}`), &v))
	require.Equal(t, "0.1", v.A.String())
	require.Equal(t, "0.3", dec.Add(v.A, v.B).String(), "exact, where float64 gives 0.30000000000000004")
	require.Equal(t, "12345678901234567890.123", v.C.String())
	out, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"A":"0.1","B":"0.2","C":"12345678901234567890.123"}`, string(out))

	for _, bad := range []string{`{"A": "NaN"}`, `{"A": "Infinity"}`, `{"A": null}`, `{"A": " 1"}`, `{"A": ""}`, `{"A": true}`} {
		require.Error(t, json.Unmarshal([]byte(bad), &v), bad)
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	d := dec.MustParse
	require.Equal(t, "3", dec.Mul(dec.QuoInt(d("23224"), d("10000")), d("1.5")).Floor(0).String())
	require.Equal(t, "2.5", dec.Quo(d("5"), d("2")).String())
	require.Equal(t, "0.01", dec.Quantum(2).String())
	require.True(t, dec.Min(d("1"), d("2")).Equal(d("1.00")))
	require.Equal(t, "6", dec.Sum(d("1"), d("2"), d("3")).String())
	require.Panics(t, func() { dec.Quo(d("1"), dec.Zero) })
	require.Equal(t, int32(2), d("1.50").Places())
	require.Equal(t, int64(3), d("123.4").IntDigits())
	require.True(t, d("4.000").IsInteger())
	require.False(t, d("4.001").IsInteger())
}

// A hostile number is refused by looking at its text: no big-number
// arithmetic, so the cost is that of a scan (a million digits used to take
// seconds; 1e999999 built a huge coefficient).
func TestParseRefusesHugeNumbersBeforeArithmetic(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"1e999999", "-1e100000", "1E+100", "1e-100", "0.5e0000000000000000000000100",
		"1" + strings.Repeat("0", 1_000_000), strings.Repeat("9", dec.MaxText+1),
	} {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		_, err := dec.Parse(s)
		runtime.ReadMemStats(&ms1)
		require.ErrorIs(t, err, dec.ErrTooLarge, errtext.Quote(s))
		require.ErrorIs(t, err, dec.ErrSyntax)
		require.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(64<<10), "refusing %s allocated too much", errtext.Quote(s))
	}
	for _, s := range []string{"1e99", "1.5E+2", "1e-0000000000000000000000000000000000000000000000000000009", "123456789012345.1234567890"} {
		_, err := dec.Parse(s)
		require.NoError(t, err, s)
	}
	require.Equal(t, "150", dec.MustParse("1.5e2").String())
}

// -0 is zero: read without its sign, and a zero never prints one.
func TestNegativeZeroIsZero(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"-0", "-0.00", "-0e5", "-0.0"} {
		x := dec.MustParse(s)
		require.True(t, x.IsZero())
		require.NotContains(t, x.String(), "-", s)
		require.Equal(t, 0, x.Sign())
	}
	require.Equal(t, "0.00", dec.MustParse("-0.00").String())
	require.Equal(t, "0", dec.Mul(dec.Zero, dec.MustParse("-5")).String(), "computed -0 prints as 0")
	require.Equal(t, "0.00", dec.MustParse("-0.001").Round(2).String())
}
