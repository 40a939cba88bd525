-- +goose Up
-- Tracing (docs/DESIGN.md, "Tracing"): an outbox row carries the W3C
-- traceparent of the order event's span, so that the relay's publish and
-- the Odoo push continue the order's trace. NULL when tracing is off or
-- for results no traced event produced (expiry, downgrade jobs). Adding a
-- nullable column without a default rewrites nothing.
ALTER TABLE outbox ADD COLUMN trace_parent text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN trace_parent;
