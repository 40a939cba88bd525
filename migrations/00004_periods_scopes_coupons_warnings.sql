-- +goose Up
-- Periodic and per-store limits, engine-issued coupons and downgrade
-- warnings (SPEC §6.8–§6.10).

-- A program's counters are kept per scope (the company or pos config its
-- limits.scope keeps apart: 'company:1', 'pos_config:3'; '' for the chain)
-- and per calendar period ('2026-11-21', '2026-W47', '2026-11'; '' for the
-- counters that span all time). The existing rows are the chain's all-time
-- counters.
ALTER TABLE program_usage ADD COLUMN scope text NOT NULL DEFAULT '', ADD COLUMN period text NOT NULL DEFAULT '';
ALTER TABLE program_usage DROP CONSTRAINT program_usage_pkey;
ALTER TABLE program_usage ADD PRIMARY KEY (program_id, scope, period);

ALTER TABLE program_customer_usage ADD COLUMN scope text NOT NULL DEFAULT '', ADD COLUMN period text NOT NULL DEFAULT '';
ALTER TABLE program_customer_usage DROP CONSTRAINT program_customer_usage_pkey;
ALTER TABLE program_customer_usage ADD PRIMARY KEY (program_id, customer_id, scope, period);

-- The scope and period a use counted in, so that a cancellation gives back
-- to the original order's period and store whatever the catalog says now
-- (period '' when the program had no per_period).
ALTER TABLE order_program_uses ADD COLUMN scope text NOT NULL DEFAULT '', ADD COLUMN period text NOT NULL DEFAULT '';

-- Single-use codes issued by issue_coupon programs. A code is 12 characters
-- of Crockford base32 derived from the issuing event and program with the
-- coupon secret, and it only ever redeems for its owner, so it is looked up
-- by (customer, code). Every change of a row happens under the owner's
-- account lock (issue and use by their paid orders, release and void by
-- the reversals of those orders), which is what makes a code usable once
-- however many tills race. State: used while used_order_id is set, else
-- voided once voided_at is set (its issuing order was returned or
-- cancelled), else expired from valid_until, else issued.
CREATE TABLE coupons (
    customer_id   text NOT NULL,
    code          text NOT NULL,
    program_id    text NOT NULL,
    issued_by     text NOT NULL,
    order_id      text NOT NULL,
    event_id      text NOT NULL,
    valid_from    timestamptz NOT NULL,
    valid_until   timestamptz NOT NULL,
    used_order_id text,
    used_at       timestamptz,
    voided_at     timestamptz,
    PRIMARY KEY (customer_id, code)
);

-- Downgrade warnings published, once per customer, path, level and coming
-- downgrade date: a later job run that finds the same date publishes
-- nothing (the outbox forgets its rows once published).
CREATE TABLE level_warnings (
    customer_id  text NOT NULL,
    path         text NOT NULL,
    level        text NOT NULL,
    downgrade_at timestamptz NOT NULL,
    event_id     text NOT NULL,
    warned_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, path, level, downgrade_at)
);

ALTER TABLE job_runs ADD COLUMN warnings bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE job_runs DROP COLUMN warnings;
DROP TABLE level_warnings;
DROP TABLE coupons;
ALTER TABLE order_program_uses DROP COLUMN period, DROP COLUMN scope;
DELETE FROM program_customer_usage WHERE scope <> '' OR period <> '';
ALTER TABLE program_customer_usage DROP CONSTRAINT program_customer_usage_pkey;
ALTER TABLE program_customer_usage DROP COLUMN period, DROP COLUMN scope;
ALTER TABLE program_customer_usage ADD PRIMARY KEY (program_id, customer_id);
DELETE FROM program_usage WHERE scope <> '' OR period <> '';
ALTER TABLE program_usage DROP CONSTRAINT program_usage_pkey;
ALTER TABLE program_usage DROP COLUMN period, DROP COLUMN scope;
ALTER TABLE program_usage ADD PRIMARY KEY (program_id);
