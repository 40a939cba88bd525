package ledger_test

import (
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

func TestCatalogStore(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	_, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.ErrorIs(t, err, ledger.ErrNoCatalog)
	_, err = ledger.CatalogByVersion(b.ctx, b.pool, 1)
	require.ErrorIs(t, err, ledger.ErrUnknownCatalogVersion)

	// Applying notifies the version on CatalogChannel.
	conn, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(b.ctx, "LISTEN "+pgx.Identifier{ledger.CatalogChannel}.Sanitize())
	require.NoError(t, err)

	first, err := rules.Parse([]byte(baseCatalog))
	require.NoError(t, err)
	v1, err := ledger.ApplyCatalog(b.ctx, b.pool, first)
	require.NoError(t, err)
	n, err := conn.Conn().WaitForNotification(b.ctx)
	require.NoError(t, err)
	require.Equal(t, strconv.FormatInt(v1, 10), n.Payload)

	second, err := rules.Parse([]byte(catalogWith("programs: []", `programs:
  - {id: ten, layer: item, priority: 1, reward: {percent: "10", on: lines}}`)))
	require.NoError(t, err)
	v2, err := ledger.ApplyCatalog(b.ctx, b.pool, second)
	require.NoError(t, err)
	require.Greater(t, v2, v1)

	latest, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.NoError(t, err)
	require.Equal(t, v2, latest.Version)
	require.Len(t, latest.Programs, 1)
	require.Equal(t, "Asia/Jakarta", latest.Timezone)

	old, err := ledger.CatalogByVersion(b.ctx, b.pool, v1)
	require.NoError(t, err)
	require.Equal(t, v1, old.Version)
	require.Empty(t, old.Programs)

	vs, err := ledger.CatalogVersions(b.ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, vs, 2)
	require.Equal(t, v2, vs[0].Version)
	require.Equal(t, 1, vs[0].Programs)
	require.Equal(t, "IDR", vs[1].Currency)
}
