package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func TestMatchPartialAndExact(t *testing.T) {
	t.Parallel()
	actual := decodeJSON(t, `{"status":"applied","totals":{"gross":"9.00","net":"9"},"extra":1,
		"lines":[{"id":"1","net":"4"},{"id":"2","net":"5"}],
		"points":{"earned_expires_at":"2027-11-24T03:00:00Z"}}`)

	require.Empty(t, Match(map[string]any{
		"status": "applied",
		"totals": map[string]any{"gross": "9", "net": "9.0"},
		"lines":  []any{map[string]any{"id": "1"}, map[string]any{"net": 5}},
		"points": map[string]any{"earned_expires_at": "2027-11-24T10:00:00+07:00"},
	}, actual), "partial keys, decimals as decimals, times as instants")

	ms := Match(map[string]any{"totals": map[string]any{"net": "8"}}, actual)
	require.Len(t, ms, 1)
	require.Equal(t, "$.totals.net", ms[0].Path)

	ms = Match(map[string]any{"lines": []any{map[string]any{"id": "1"}}}, actual)
	require.Len(t, ms, 1, "lists must have the same length")
	require.Equal(t, "$.lines", ms[0].Path)

	ms = Match(map[string]any{"missing": "x"}, actual)
	require.Len(t, ms, 1)
	require.Equal(t, "missing", ms[0].Why)

	require.Len(t, Match(map[string]any{"status": "rejected"}, actual), 1)
	require.Empty(t, Match(map[string]any{"discounts": []any{}}, decodeJSON(t, `{"discounts":[]}`)))
	require.Len(t, Match(map[string]any{"discounts": []any{}}, decodeJSON(t, `{"discounts":[{"a":1}]}`)), 1)
}
