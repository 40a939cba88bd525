-- +goose Up
-- The ledger: catalog versions, points lots and their append-only journal,
-- membership levels, program limits and the processed orders that returns
-- and cancellations refer to. Every amount is numeric (never float), every
-- instant timestamptz. pkg/ledger owns every statement against these tables
-- and never schema-qualifies them, so that a dry-run replay can run the same
-- code against a scratch schema by setting search_path.

-- Each applied catalog is a new immutable version; results name the version
-- they were computed with.
CREATE TABLE catalog_versions (
    version    bigserial PRIMARY KEY,
    doc        jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per customer. The row is the customer's lock: every change to a
-- customer's lots, debt, spend and levels happens while it is held FOR
-- UPDATE, which is what serialises a customer's events (SPEC §1.5).
-- opened_at is the business time of the customer's first applied order; a
-- row with opened_at NULL was only created to be locked (a batch locks its
-- customers up front) and holds nothing yet. path is the membership path the
-- customer is on (NULL when the catalog has no membership).
CREATE TABLE accounts (
    customer_id text PRIMARY KEY,
    path        text,
    debt        numeric NOT NULL DEFAULT 0 CHECK (debt >= 0),
    opened_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A lot is the points one order earned (after paying debt). Its id is the
-- earning event's event_id, so a replay produces the same ids. expires_at
-- NULL never expires. remaining falls as points are redeemed, clawed back or
-- expired and rises when a redemption is returned. expired_at is when the
-- expiry job (or a restore into an already expired lot) zeroed it.
CREATE TABLE point_lots (
    lot_id       text PRIMARY KEY,
    customer_id  text NOT NULL,
    order_id     text NOT NULL,
    earned_at    timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at   timestamptz,
    original     numeric NOT NULL CHECK (original > 0),
    remaining    numeric NOT NULL CHECK (remaining >= 0),
    expired_at   timestamptz
);
-- Spendable lots of a customer in FEFO order (the hot read of every paid
-- order and return).
CREATE INDEX point_lots_fefo ON point_lots (customer_id, expires_at NULLS LAST, earned_at, lot_id)
    WHERE remaining > 0;
-- Lots the expiry job has to visit.
CREATE INDEX point_lots_expiring ON point_lots (expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;

-- The append-only journal of every points movement. amount is always
-- positive; kind says the direction:
--   earn          points put into a new lot (earned minus the debt it paid)
--   debt_payment  earned points that paid the account's debt instead
--   redeem        points taken from a lot by a redemption
--   expire        points a lot lost at its expiry
--   clawback      points taken back from a lot by a return or cancellation
--   debt          clawback the lots could not cover, added to the debt
--   restore       redeemed points put back into their lot by a return
-- So Σ remaining = earn − redeem − expire − clawback + restore and
-- debt = debt − debt_payment, which Reconcile checks.
CREATE TABLE ledger_entries (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('earn', 'redeem', 'expire', 'clawback', 'restore', 'debt', 'debt_payment')),
    amount      numeric NOT NULL CHECK (amount > 0),
    lot_id      text,
    order_id    text,
    event_id    text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX ledger_entries_customer ON ledger_entries (customer_id, id);

-- Which lots paid an order's redemption, in consumption order, and how much
-- of each has been restored by returns (restores go last consumed first).
CREATE TABLE point_consumptions (
    order_id text NOT NULL,
    seq      int NOT NULL,
    lot_id   text NOT NULL,
    amount   numeric NOT NULL CHECK (amount > 0),
    restored numeric NOT NULL DEFAULT 0 CHECK (restored >= 0 AND restored <= amount),
    PRIMARY KEY (order_id, seq)
);

-- Net spend for membership: one row per paid order, and a negative row per
-- return or cancellation dated at the original order's time so that the
-- rolling window sees the spend as if it had been smaller all along.
CREATE TABLE spend_entries (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    order_id    text NOT NULL,
    event_id    text NOT NULL,
    spent_at    timestamptz NOT NULL,
    amount      numeric NOT NULL
);
CREATE INDEX spend_entries_window ON spend_entries (customer_id, spent_at) INCLUDE (amount);

-- The level a customer holds on a path and since when (retention counts
-- from since; staying qualified does not move it).
CREATE TABLE member_levels (
    customer_id text NOT NULL,
    path        text NOT NULL,
    level       text NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (customer_id, path)
);
-- The downgrade job's candidates.
CREATE INDEX member_levels_since ON member_levels (since);

CREATE TABLE level_history (
    id             bigserial PRIMARY KEY,
    customer_id    text NOT NULL,
    path           text NOT NULL,
    previous_level text,
    level          text NOT NULL,
    changed_at     timestamptz NOT NULL,
    reason         text NOT NULL,
    event_id       text NOT NULL
);
CREATE INDEX level_history_customer ON level_history (customer_id, id);

-- Program limits. The program row is locked FOR UPDATE while an order is
-- evaluated against it, which is what makes total_uses and budget exact
-- however many workers race.
CREATE TABLE program_usage (
    program_id  text PRIMARY KEY,
    uses        bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    budget_used numeric NOT NULL DEFAULT 0 CHECK (budget_used >= 0)
);

CREATE TABLE program_customer_usage (
    program_id  text NOT NULL,
    customer_id text NOT NULL,
    uses        bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    PRIMARY KEY (program_id, customer_id)
);

-- The uses of one order, so that a cancellation can give them back.
CREATE TABLE order_program_uses (
    order_id    text NOT NULL,
    program_id  text NOT NULL,
    customer_id text,
    discount    numeric NOT NULL,
    released    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, program_id)
);

-- Every paid order processed (applied or rejected) with its result, which
-- returns and cancellations are computed from, and what has been returned of
-- it so far. returned_qty maps line id to the quantity returned.
CREATE TABLE processed_orders (
    order_id        text PRIMARY KEY,
    event_id        text NOT NULL,
    customer_id     text,
    occurred_at     timestamptz NOT NULL,
    status          text NOT NULL,
    catalog_version bigint NOT NULL,
    result          jsonb NOT NULL,
    cancelled       boolean NOT NULL DEFAULT false,
    returned_qty    jsonb NOT NULL DEFAULT '{}',
    points_earned   numeric NOT NULL DEFAULT 0,
    points_redeemed numeric NOT NULL DEFAULT 0,
    points_clawed   numeric NOT NULL DEFAULT 0,
    points_restored numeric NOT NULL DEFAULT 0
);
CREATE INDEX processed_orders_customer ON processed_orders (customer_id, occurred_at);

-- Every return and cancellation processed, with its result (the dry-run
-- replay compares against it). A return order id is used once.
CREATE TABLE order_reversals (
    event_id          text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('returned', 'cancelled')),
    order_id          text NOT NULL,
    original_order_id text NOT NULL,
    customer_id       text,
    occurred_at       timestamptz NOT NULL,
    status            text NOT NULL,
    catalog_version   bigint NOT NULL,
    result            jsonb NOT NULL
);
CREATE UNIQUE INDEX order_reversals_return_id ON order_reversals (order_id) WHERE kind = 'returned';
CREATE INDEX order_reversals_original ON order_reversals (original_order_id);

-- Each run of the jobs, so that operators (and a replay) can see when points
-- were expired and levels reviewed.
CREATE TABLE job_runs (
    id              bigserial PRIMARY KEY,
    as_of           timestamptz NOT NULL,
    catalog_version bigint NOT NULL,
    lots_expired    bigint NOT NULL,
    downgrades      bigint NOT NULL,
    ran_at          timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE job_runs;
DROP TABLE order_reversals;
DROP TABLE processed_orders;
DROP TABLE order_program_uses;
DROP TABLE program_customer_usage;
DROP TABLE program_usage;
DROP TABLE level_history;
DROP TABLE member_levels;
DROP TABLE spend_entries;
DROP TABLE point_consumptions;
DROP TABLE ledger_entries;
DROP TABLE point_lots;
DROP TABLE accounts;
DROP TABLE catalog_versions;
