-- 0060_report_indexes: what `orderd report` and the console read without
-- scanning whole tables.
--
-- Orders by creation (event) time: every report query starts from the
-- orders of its window and reaches their items and history through the
-- primary key of order_items and the (order_id, id) index of
-- order_status_history, so a report costs what its window holds. Only the
-- key: status and payment columns stay out, so that a payment remains a
-- HOT update. Building it locks out writes to orders for as long as it
-- takes (tens of seconds at 10 million orders); on a large shop create it
-- beforehand without the lock, and this migration then finds it:
--   CREATE INDEX CONCURRENTLY orders_created_at ON orders (created_at);
CREATE INDEX IF NOT EXISTS orders_created_at ON orders (created_at);

-- The dead letters still in the outbox (published copies stay for
-- --outbox-retention): the console lists the latest. Partial, so the hot
-- path maintains it only for the rare dead letter, not for every event.
CREATE INDEX outbox_dead_letters ON outbox (id) WHERE headers ? 'orderd-error';
