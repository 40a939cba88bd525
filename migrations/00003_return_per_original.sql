-- +goose Up
-- A refund in Odoo may give back lines of several original orders; it
-- reaches the engine as one pos.order.returned per original order, all with
-- the refund's order id. A return is therefore identified by its order id
-- and its original order: the same pair under another event id is still a
-- duplicate order.
DROP INDEX order_reversals_return_id;
CREATE UNIQUE INDEX order_reversals_return_id ON order_reversals (order_id, original_order_id) WHERE kind = 'returned';

-- +goose Down
DROP INDEX order_reversals_return_id;
CREATE UNIQUE INDEX order_reversals_return_id ON order_reversals (order_id) WHERE kind = 'returned';
