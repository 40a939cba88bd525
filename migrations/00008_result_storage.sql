-- +goose Up
-- The two copies of every order result (processed_orders.result, and the
-- outbox row the relay publishes) cost PostgreSQL more to store than any
-- other write of an order (docs/DESIGN.md, "Where PostgreSQL's time goes"):
-- as jsonb the ~2 kB document was parsed into jsonb and then compressed
-- with pglz, and the outbox's bytes were compressed with pglz too, for a
-- row deleted milliseconds later. Nothing queries inside a stored result
-- (the engine reads it whole), so json keeps it checked and queryable by
-- hand (-> and ->> work on json) at a fraction of the cost, and lz4
-- compresses several times faster than pglz.
--
-- Measured on 20,000 stored results (PostgreSQL 15, one core): jsonb + pglz
-- 52 µs per row, jsonb + lz4 32, json + lz4 16.
--
-- Changing the column's type rewrites processed_orders once (roughly a
-- minute per few million orders, under an exclusive lock: run `promoengine
-- migrate` with the engines stopped, as for every migration), and the
-- rewrite stores the results already there with lz4 too. A server built
-- without lz4 keeps pglz.
-- +goose StatementBegin
DO $$
BEGIN
    BEGIN
        ALTER TABLE processed_orders ALTER COLUMN result TYPE json USING result::json,
                                     ALTER COLUMN result SET COMPRESSION lz4;
        ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'lz4 is not supported by this server: results stay compressed with pglz';
        ALTER TABLE processed_orders ALTER COLUMN result TYPE json USING result::json;
    END;
END $$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION default;
ALTER TABLE processed_orders ALTER COLUMN result SET COMPRESSION default;
ALTER TABLE processed_orders ALTER COLUMN result TYPE jsonb USING result::jsonb;
