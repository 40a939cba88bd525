-- +goose Up
-- Shadow mode (docs/MIGRATION.md): while a shop still runs Odoo's own
-- loyalty, the engine computes every order without pushing anything to
-- Odoo and compares its result with what Odoo's loyalty gave. One row per
-- order event compared (a redelivered result compares again and replaces
-- its row): the outcome, each differing field of each program with both
-- values and the known difference that explains it, and the programs
-- involved with their own outcome, which `promoengine shadow report` and
-- its agreement rate by program read.
CREATE TABLE shadow_comparisons (
    event_id        text PRIMARY KEY,
    order_id        text NOT NULL,
    order_name      text NOT NULL DEFAULT '',
    company_id      text NOT NULL DEFAULT '',
    pos_config_id   text NOT NULL DEFAULT '',
    customer_id     text NOT NULL DEFAULT '',
    occurred_at     timestamptz NOT NULL,
    compared_at     timestamptz NOT NULL DEFAULT now(),
    catalog_version bigint NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('match', 'mismatch', 'not_compared')),
    explained       boolean NOT NULL,
    note            text NOT NULL DEFAULT '',
    programs        jsonb NOT NULL DEFAULT '[]',
    diffs           jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX shadow_comparisons_occurred ON shadow_comparisons (occurred_at);

-- +goose Down
DROP TABLE shadow_comparisons;
