package testhostile_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testhostile"
)

func TestCorpusLoadsAndExpands(t *testing.T) {
	t.Parallel()
	items := testhostile.Load(t, "t")
	require.GreaterOrEqual(t, len(items), 25)
	byName := map[string]testhostile.Item{}
	for _, it := range items {
		byName[it.Name] = it
		require.NotEmpty(t, it.What, it.Name)
	}
	million := string(byName["id-million-digits"].Order)
	require.Equal(t, 999_000+len(`{"id":"hostile-t-id-million-digits","currency":"IDR","customer_id":1,"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1000"}]}`), len(million))
	require.True(t, strings.HasPrefix(million, `{"id":"hostile-t-id-million-digits","currency":"IDR","customer_id":1000`))
	require.False(t, utf8.Valid(byName["id-invalid-utf8"].Order))
	require.Contains(t, string(byName["id-nul"].Order), `"c\u0000hostile-t-id-nul"`)
	require.False(t, byName["body-2mib"].NATS)
	require.Equal(t, 413, byName["catalog-5mib"].Status)
	events, orders, catalogs := testhostile.Small(items, 64<<10)
	require.NotEmpty(t, events)
	require.NotEmpty(t, orders)
	require.NotEmpty(t, catalogs)
}
