-- +goose Up
-- Pipeline tables: the inbox that makes processing idempotent and the
-- transactional outbox that makes publishing reliable (SPEC §1.2).

-- One row per input event ever processed, inserted in the same transaction
-- as its effects. A redelivered or republished event finds its row and
-- changes nothing.
CREATE TABLE inbox (
    event_id     text PRIMARY KEY,
    event_type   text NOT NULL,
    stream_seq   bigint,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Result events waiting to be published to PROMO_RESULTS. A row is written
-- in the transaction that produced it and deleted once JetStream has
-- acknowledged it; the relay publishes with Nats-Msg-Id = event_id, so a row
-- published twice (crash between publish and delete) is seen once.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE inbox;
