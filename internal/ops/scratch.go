package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promoengine/promoengine/migrations"
)

// scratch is an empty ledger private to one PostgreSQL session: the
// migrations applied to the session's temporary schema (pg_temp), with
// search_path naming only that schema.
//
// Why temporary tables rather than a schema created inside one rolled-back
// transaction:
//   - migrations.Up runs goose, which applies each migration in a
//     transaction of its own, so a schema cannot be migrated inside ours;
//   - a rebuild updates the same rows (program counters, accounts, lots)
//     once per event, and inside one transaction no superseded row version
//     can be pruned, so every update walks all earlier versions and the
//     rebuild grows quadratic. The scratch work is therefore committed every
//     DryRunOptions.CheckpointEvery events, which only temporary tables make
//     harmless.
//
// Temporary tables give the guarantees that matter without a trace: no
// other session can see them, and PostgreSQL drops them when the session
// ends, also when this process is killed. The ledger's SQL is never
// schema-qualified, so with search_path = pg_temp every statement lands in
// the scratch tables; a table the scratch schema lacked would be an error
// ("relation does not exist"), never a write to the real one, because
// search_path names no other schema. The one effect outside the session:
// the ledger notifies promo_outbox when it enqueues a result, so each
// checkpoint wakes a running outbox relay once, which finds nothing new.
type scratch struct {
	pool   *pgxpool.Pool
	conn   *pgxpool.Conn
	tables []string // pg_temp.<table>, for VACUUM
	Tx     pgx.Tx   // the open scratch transaction
}

// scratchMarker is created at connect so that the session's temporary
// schema exists before goose looks for its version table in
// current_schema(); without it current_schema() is NULL and goose would
// find the real database's goose_db_version.
const scratchMarker = "promo_scratch_session"

// openScratch opens the scratch session on the database base points at.
func openScratch(ctx context.Context, base *pgxpool.Config) (*scratch, error) {
	cfg := base.Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	// The one connection must live as long as the dry run: its temporary
	// tables are the scratch ledger.
	cfg.MaxConnLifetime, cfg.MaxConnIdleTime, cfg.HealthCheckPeriod = 365*24*time.Hour, 365*24*time.Hour, time.Hour
	cfg.ConnConfig.RuntimeParams["search_path"] = "pg_temp"
	cfg.ConnConfig.RuntimeParams["application_name"] = "promoengine-dry-run"
	cfg.BeforeConnect, cfg.AfterConnect, cfg.BeforeAcquire, cfg.AfterRelease = nil, nil, nil, nil
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+scratchMarker+" ()")
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dry run: scratch session: %w", err)
	}
	s := &scratch{pool: pool}
	if _, err := migrations.Up(ctx, pool); err != nil {
		s.Close()
		return nil, fmt.Errorf("dry run: migrate the scratch ledger: %w", err)
	}
	s.conn, err = pool.Acquire(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dry run: scratch session: %w", err)
	}
	if err := s.check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.tables, err = s.tempTables(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *scratch) begin(ctx context.Context) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("dry run: scratch transaction: %w", err)
	}
	s.Tx = tx
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_temp"); err != nil {
		return fmt.Errorf("dry run: scratch transaction: %w", err)
	}
	return nil
}

// tempTables lists the scratch tables.
func (s *scratch) tempTables(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r' ORDER BY relname`)
	if err != nil {
		return nil, fmt.Errorf("dry run: scratch tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("dry run: scratch tables: %w", err)
	}
	for i, n := range names {
		names[i] = "pg_temp." + pgx.Identifier{n}.Sanitize()
	}
	return names, nil
}

// checkpoint commits the scratch work so far (into the session's own
// temporary tables), lets PostgreSQL prune the row versions it superseded,
// and refreshes the planner statistics, which autovacuum never gathers for
// temporary tables.
func (s *scratch) checkpoint(ctx context.Context) error {
	if err := s.Tx.Commit(ctx); err != nil {
		return fmt.Errorf("dry run: scratch checkpoint: %w", err)
	}
	s.Tx = nil
	if _, err := s.conn.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(s.tables, ", ")); err != nil {
		return fmt.Errorf("dry run: scratch checkpoint: %w", err)
	}
	return s.begin(ctx)
}

// check makes sure, before anything is written, that the ledger's tables
// resolve to this session's temporary schema (the pool could have replaced
// the connection the migrations ran on).
func (s *scratch) check(ctx context.Context) error {
	var schema string
	err := s.conn.QueryRow(ctx, `
		SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('processed_orders')`).Scan(&schema)
	if err != nil {
		return fmt.Errorf("dry run: the scratch ledger is missing from its session: %w", err)
	}
	if !strings.HasPrefix(schema, "pg_temp") {
		return fmt.Errorf("dry run: processed_orders resolves to schema %q, not the session's temporary schema; refusing to go on", schema)
	}
	return nil
}

// Close rolls the open transaction back and ends the session, which drops
// the temporary tables.
func (s *scratch) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.Tx != nil {
		_ = s.Tx.Rollback(ctx)
	}
	if s.conn != nil {
		// Destroy rather than release: the session must end, not go back
		// to a pool.
		_ = s.conn.Conn().Close(ctx)
		s.conn.Release()
	}
	s.pool.Close()
}
