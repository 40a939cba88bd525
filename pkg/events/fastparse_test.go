package events

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testhostile"
)

var parseSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `1E+2`, `true`, `false`, `null`, ` {"a" : [1, 2.0, "x", null, true, {}] } `,
	`{"a":1,"a":2}`, `{"a\u0062":"\u00e9\ud83d\ude00\n\t\"\\\/"}`, `{"bad":"\ud800"}`, `{"x":"é ü 😀"}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":"x` + "\n" + `"}`, `{"a":1,}`, `[1,]`, `{"a" 1}`,
	`{"a\u0000":1}`, `["\u0000"]`, `[1e99999]`, `[` + strings.Repeat("1,", 1000) + `1]`, `[` + strings.Repeat("9", 200) + `]`,
	`{} {}`, `{}x`, `{"a":"\x"}`, `{"a":"\u12"}`, strings.Repeat("[", 70) + strings.Repeat("]", 70), `{"a":[` + strings.Repeat(`{"b":1},`, 10) + `{}]}`,
}

// TestParseJSONReadsWhatUnmarshalJSONReads: same documents for what both
// read; the fast reader gives up on what UnmarshalJSON refuses.
func TestParseJSONReadsWhatUnmarshalJSONReads(t *testing.T) {
	t.Parallel()
	read := 0
	for _, s := range append(append([]string{}, parseSeeds...), fastSeeds...) {
		checkParse(t, []byte(s))
		if _, _, ok := parseJSON([]byte(s)); ok {
			read++
		}
	}
	require.Greater(t, read, len(fastSeeds), "the fast reader gave up on plain documents")
	for _, s := range []string{`{"a\u0000":1}`, `["\u0000"]`, `[1e99999]`, `[` + strings.Repeat("1,", 1000) + `1]`, `[` + strings.Repeat("9", 200) + `]`} {
		doc, screened, ok := parseJSON([]byte(s))
		require.True(t, ok, s)
		require.False(t, screened, "the screen must see %s", s)
		require.NotEmpty(t, screen(doc), s)
	}
	for _, s := range fastSeeds {
		_, screened, ok := parseJSON([]byte(s))
		require.True(t, ok, s)
		require.True(t, screened, s)
	}
}

func checkParse(t *testing.T, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return // Decode refuses it before parsing
	}
	got, screened, ok := parseJSON(data)
	want, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if !ok {
		return // UnmarshalJSON decides
	}
	require.NoError(t, err, "fast reader accepted what UnmarshalJSON refuses: %q", data)
	require.Equal(t, want, got, "%q", data)
	if screened {
		require.Empty(t, screen(got), "the screen refuses what the fast reader passed: %q", data)
	}
}

// FuzzParseJSON: whatever the fast reader reads, UnmarshalJSON reads too,
// to the same document.
func FuzzParseJSON(f *testing.F) {
	for _, s := range append(append([]string{}, parseSeeds...), fastSeeds...) {
		f.Add([]byte(s))
	}
	evs, _, _ := testhostile.Small(testhostile.Load(f, "fuzz"), 64<<10)
	for _, e := range evs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data) })
}
