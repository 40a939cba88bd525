package ledger

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeSQL cut into parts keeps every table and every parameter, and a
// variant keeps exactly the parameters of its parts, renumbered from $1.
func TestWriteVariants(t *testing.T) {
	var names []string
	var all []int
	for _, p := range writeParts {
		names = append(names, p.name)
		require.NotZero(t, p.driver, "part %s has a text[] parameter for its rows", p.name)
		all = append(all, p.params...)
	}
	require.Equal(t, []string{"program_uses", "customer_uses", "account_changes", "levels", "history", "consumptions",
		"new_lots", "lot_changes", "entries", "spend", "orders", "results", "new_coupons", "coupon_uses"}, names)
	slices.Sort(all)
	all = slices.Compact(all)
	require.Len(t, all, 79)
	require.Equal(t, 79, all[len(all)-1])

	full := variantOf(1<<len(writeParts) - 1)
	require.Len(t, full.params, 79)
	require.Contains(t, full.sql, "pg_notify")

	// Only the orders and their results: the catalog version is $1.
	v := variantOf(1<<10 | 1<<11)
	require.Equal(t, []int{49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 79}, v.params)
	require.True(t, strings.HasPrefix(v.sql, "WITH orders AS ("))
	require.Contains(t, v.sql, "WHERE cardinality($11::text[]) > 0")
	require.NotContains(t, v.sql, "$13")

	// No results: no notification.
	v = variantOf(1 << 2)
	require.Equal(t, []int{8, 9, 10, 11}, v.params)
	require.True(t, strings.HasSuffix(v.sql, "\nSELECT 1"))

	args := make([]any, 79)
	for _, p := range writeParts {
		args[p.driver-1] = []string{}
	}
	_, _, ok := reduceWrite(args)
	require.False(t, ok, "nothing to write, no statement")
	args[36] = []string{"c1"} // $37: ledger entries
	sql, reduced, ok := reduceWrite(args)
	require.True(t, ok)
	require.True(t, strings.HasPrefix(sql, "WITH entries AS ("))
	require.Len(t, reduced, 7)
	require.Equal(t, []string{"c1"}, reduced[0])
}

// Numeric arrays go to PostgreSQL as array text.
func TestNumericArrayText(t *testing.T) {
	require.Equal(t, "{}", numericArray(nil))
	require.Equal(t, "{1.50,-2,3E+2}", numericArray([]string{"1.50", "-2", "3E+2"}))
	five := "5"
	require.Equal(t, "{NULL,5}", nullableNumericArray([]*string{nil, &five}))
}
