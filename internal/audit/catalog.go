package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// CatalogChange is what the trail says of a catalog applied: its version
// and how it differs from the version before.
type CatalogChange struct {
	Version         int64    `json:"version"`
	PreviousVersion int64    `json:"previous_version,omitempty"`
	SHA256          string   `json:"sha256"`
	Programs        int      `json:"programs"`
	Added           []string `json:"programs_added,omitempty"`
	Removed         []string `json:"programs_removed,omitempty"`
	Changed         []string `json:"programs_changed,omitempty"`
	// Settings are the other top-level sections that changed (currency,
	// points, membership, …).
	Settings []string `json:"settings_changed,omitempty"`
}

// SummarizeCatalog compares two catalog documents (JSON; prev nil for the
// first catalog). Programs are matched by id; documents are compared as
// values, so key order and spacing do not count as changes.
func SummarizeCatalog(prev, next []byte) CatalogChange {
	sum := sha256.Sum256(next)
	c := CatalogChange{SHA256: hex.EncodeToString(sum[:])}
	prevDoc, nextDoc := sections(prev), sections(next)
	prevProgs, nextProgs := programs(prevDoc["programs"]), programs(nextDoc["programs"])
	c.Programs = len(nextProgs.ids)
	for _, id := range nextProgs.ids {
		old, ok := prevProgs.byID[id]
		switch {
		case !ok:
			c.Added = append(c.Added, id)
		case !reflect.DeepEqual(old, nextProgs.byID[id]):
			c.Changed = append(c.Changed, id)
		}
	}
	for _, id := range prevProgs.ids {
		if _, ok := nextProgs.byID[id]; !ok {
			c.Removed = append(c.Removed, id)
		}
	}
	for name := range unionKeys(prevDoc, nextDoc) {
		if name != "programs" && !reflect.DeepEqual(prevDoc[name], nextDoc[name]) {
			c.Settings = append(c.Settings, name)
		}
	}
	slices.Sort(c.Settings)
	return c
}

func sections(doc []byte) map[string]any {
	out := map[string]any{}
	if len(doc) == 0 {
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	_ = dec.Decode(&out)
	return out
}

type programSet struct {
	ids  []string
	byID map[string]any
}

func programs(v any) programSet {
	s := programSet{byID: map[string]any{}}
	list, _ := v.([]any)
	for i, p := range list {
		obj, _ := p.(map[string]any)
		id, _ := obj["id"].(string)
		if id == "" {
			id = fmt.Sprintf("#%d", i)
		}
		if _, dup := s.byID[id]; !dup {
			s.ids = append(s.ids, id)
		}
		s.byID[id] = p
	}
	return s
}

func unionKeys(a, b map[string]any) map[string]struct{} {
	out := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// Beginner starts transactions (a pool).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ApplyCatalog applies a catalog and records it in the trail in one
// transaction: a catalog is never in force without its entry. e names the
// actor and source; the rest is filled in. It returns the new version and
// the entry's id.
func ApplyCatalog(ctx context.Context, db Beginner, cat *rules.Catalog, e Entry) (int64, CatalogChange, int64, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, CatalogChange{}, 0, fmt.Errorf("audit: apply catalog: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var prevDoc []byte
	var prevVersion int64
	prev, err := ledger.LatestCatalog(ctx, tx)
	switch {
	case err == nil:
		prevDoc, prevVersion = prev.JSON, prev.Version
	case errors.Is(err, ledger.ErrNoCatalog):
	default:
		// A previous version that no longer parses is no reason to refuse a
		// new one; the summary then compares with nothing.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return 0, CatalogChange{}, 0, err
		}
	}
	version, err := ledger.ApplyCatalog(ctx, tx, cat)
	if err != nil {
		return 0, CatalogChange{}, 0, err
	}
	change := SummarizeCatalog(prevDoc, cat.JSON)
	change.Version, change.PreviousVersion = version, prevVersion
	e.Action, e.Target, e.Outcome = ActionCatalogApply, fmt.Sprintf("catalog version %d", version), OutcomeOK
	id, err := Record(ctx, tx, e, change)
	if err != nil {
		return 0, CatalogChange{}, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, CatalogChange{}, 0, fmt.Errorf("audit: apply catalog: %w", err)
	}
	return version, change, id, nil
}
