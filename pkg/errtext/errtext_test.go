package errtext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/schemas"
)

type id string

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestQuoteKeepsTheHeadAndSaysTheLength(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"short"`, errtext.Quote("short"))
	q := errtext.Quote(strings.Repeat("é", 100_000))
	require.Equal(t, `"`+strings.Repeat("é", errtext.MaxQuoted)+`…" (200000 bytes)`, q)
	require.Equal(t, `"a\x00\n\xff"`, errtext.Quote("a\x00\n\xff"), "control characters and bad bytes are escaped")
}

func TestClipCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", errtext.Clip("abc", 3))
	for n := 4; n < 12; n++ {
		c := errtext.Clip(strings.Repeat("é", 10), n)
		require.True(t, utf8.ValidString(c), c)
		require.LessOrEqual(t, len(c), n)
		require.True(t, strings.HasSuffix(c, "…"))
	}
	require.Equal(t, "…", errtext.Clip("abcdef", 1))
}

func TestSprintfBoundsEveryStringArgument(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1<<20)
	msg := errtext.Sprintf("got %q, %s, %s and %d", long, id(long), stringer{long}, 42)
	require.Less(t, len(msg), 3*errtext.MaxQuoted+64)
	require.Contains(t, msg, "and 42")
	require.LessOrEqual(t, len(errtext.Sprintf("%s", strings.Repeat("%", 4000))), errtext.MaxMessage)
	require.Equal(t, "ok 1", errtext.Sprintf("ok %d", 1))
}

func TestListSaysHowManyMore(t *testing.T) {
	t.Parallel()
	items := make([]string, 1000)
	for i := range items {
		items[i] = strings.Repeat("i", 1000)
	}
	out := errtext.Strings(items, ", ")
	require.True(t, strings.HasSuffix(out, " and 980 more"), out[len(out)-40:])
	require.Less(t, len(out), errtext.MaxListed*(errtext.MaxQuoted+8)+32)
	require.Equal(t, "a, b", errtext.Strings([]string{"a", "b"}, ", "))
}

func TestSchemasBoundAndJoin(t *testing.T) {
	t.Parallel()
	vs := make([]schemas.Violation, 1000)
	for i := range vs {
		vs[i] = schemas.Violation{Pointer: "/" + strings.Repeat("k", 10_000), Message: strings.Repeat("m", 10_000)}
	}
	b := schemas.Bound(vs)
	require.Len(t, b, errtext.MaxListed+1)
	require.Equal(t, schemas.Violation{Message: "and 980 more"}, b[errtext.MaxListed])
	for _, v := range b {
		require.LessOrEqual(t, len(v.Pointer), 256)
		require.LessOrEqual(t, len(v.Message), errtext.MaxMessage)
	}
	require.Len(t, schemas.Bound(vs[:3]), 3, "a short list is kept whole")
	j := schemas.Join(vs, 3)
	require.True(t, strings.HasSuffix(j, " and 997 more"))
	require.Less(t, len(j), 3*(256+errtext.MaxMessage+4)+20)
	require.Equal(t, 1000, len(vs), "Bound does not change its argument")
}

func TestHeaderCannotEndTheLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "plain é", errtext.Header("plain é", 100))
	require.Equal(t, `a  Nats-Rollup: all\x00\x1b\xff`, errtext.Header("a\r\nNats-Rollup: all\x00\x1b\xff", 100))
	h := errtext.Header(strings.Repeat("\n", 10_000), 4000)
	require.LessOrEqual(t, len(h), 4000)
	require.NotContains(t, h, "\n")
	require.True(t, utf8.ValidString(errtext.Header(strings.Repeat("é", 3000), 4000)))
}
