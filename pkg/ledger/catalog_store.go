package ledger

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/rules"
)

// CatalogChannel is the LISTEN/NOTIFY channel on which ApplyCatalog
// announces a new version (the payload is the version number), so that
// workers switch to it without a restart.
const CatalogChannel = "promo_catalog"

// ApplyCatalog stores c's canonical JSON as a new immutable catalog version
// and notifies CatalogChannel at commit. It returns the new version; c itself
// is not changed (load the stored version with LatestCatalog or
// CatalogByVersion to get a catalog whose Version is set).
func ApplyCatalog(ctx context.Context, db DB, c *rules.Catalog) (int64, error) {
	if c == nil || len(c.JSON) == 0 {
		return 0, errors.New("ledger: apply catalog: catalog has no JSON document")
	}
	var version int64
	err := db.QueryRow(ctx, `
		WITH ins AS (INSERT INTO catalog_versions (doc) VALUES ($1) RETURNING version)
		SELECT version, pg_notify('`+CatalogChannel+`', version::text) IS NULL FROM ins`,
		string(c.JSON)).Scan(&version, new(bool))
	if err != nil {
		return 0, dbErr("apply catalog", err)
	}
	return version, nil
}

// LatestCatalog returns the newest catalog version, parsed, with Version
// set; ErrNoCatalog when none was ever applied.
func LatestCatalog(ctx context.Context, db DB) (*rules.Catalog, error) {
	return loadCatalog(ctx, db,
		`SELECT version, doc::text FROM catalog_versions ORDER BY version DESC LIMIT 1`,
		nil, ErrNoCatalog)
}

// CatalogByVersion returns catalog version v, parsed, with Version set;
// ErrUnknownCatalogVersion when there is no such version. Replays use it to
// re-apply an event with the version it originally used.
func CatalogByVersion(ctx context.Context, db DB, v int64) (*rules.Catalog, error) {
	return loadCatalog(ctx, db,
		`SELECT version, doc::text FROM catalog_versions WHERE version = $1`,
		[]any{v}, ErrUnknownCatalogVersion)
}

func loadCatalog(ctx context.Context, db DB, sql string, args []any, missing error) (*rules.Catalog, error) {
	var (
		version int64
		doc     string
	)
	err := db.QueryRow(ctx, sql, args...).Scan(&version, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, missing
	}
	if err != nil {
		return nil, dbErr("load catalog", err)
	}
	c, err := rules.Parse([]byte(doc))
	if err != nil {
		// A stored version was valid when applied; failing now means the
		// rules changed incompatibly, which an operator must see.
		return nil, fmt.Errorf("ledger: catalog version %d no longer parses: %w", version, err)
	}
	c.Version = version
	return c, nil
}

// CatalogVersion describes one stored catalog version, for `catalog show`.
type CatalogVersion struct {
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Currency  string    `json:"currency"`
	Programs  int       `json:"programs"`
}

// CatalogVersions lists every stored version, newest first.
func CatalogVersions(ctx context.Context, db DB) ([]CatalogVersion, error) {
	rows, err := db.Query(ctx, `
		SELECT version, created_at, COALESCE(doc->>'currency', ''),
		       CASE WHEN jsonb_typeof(doc->'programs') = 'array' THEN jsonb_array_length(doc->'programs') ELSE 0 END
		FROM catalog_versions ORDER BY version DESC`)
	if err != nil {
		return nil, dbErr("list catalog versions", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CatalogVersion])
	if err != nil {
		return nil, dbErr("list catalog versions", err)
	}
	return vs, nil
}
