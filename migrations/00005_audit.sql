-- +goose Up
-- The audit trail (docs/SECURITY.md): one row per admin action — a catalog
-- applied, dead letters redriven or purged, a replay, a jobs run — with who
-- (a token's issuer and subject, an API key's fingerprint, or the operator
-- at a terminal), when, what (for a catalog its version and a summary of
-- the change) and from where. db_user is the database role that wrote the
-- row: give each operator a role of their own and the trail names them
-- whatever the terminal says.
CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL DEFAULT '',
    outcome  text NOT NULL CHECK (outcome IN ('ok', 'failed')),
    details  jsonb NOT NULL DEFAULT '{}',
    source   text NOT NULL DEFAULT '',
    db_user  text NOT NULL DEFAULT current_user
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action_at ON audit_log (action, at);

-- Append-only: rows are never updated or deleted, and the table is never
-- truncated, whatever the application does. (A role that may drop the
-- trigger may still do all three: the copy of every entry in the engine's
-- log, shipped off the machine, is the record that survives that.)
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd

-- The trigger names the function with the table's schema: replay
-- --dry-run migrates a scratch ledger in pg_temp, where functions are never
-- found unqualified.
-- +goose StatementBegin
DO $$
DECLARE
    ns text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'audit_log'::regclass);
BEGIN
    EXECUTE format('CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION %s.audit_log_append_only()', ns);
    EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION %s.audit_log_append_only()', ns);
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
