-- 0040_sources: contract v2. A command's dedup identity is (source,
-- dedup_key): producers on different topics can no longer take each
-- other's keys, nor orderd's own (source 'orderd'). Rows written before
-- v2 came from the one v1 input topic and become source 'default', the
-- name orderd gives --commands-topic when no --source is configured.
-- The defaults are dropped afterwards so that every new row must say
-- where it came from.

ALTER TABLE processed_commands ADD COLUMN source text NOT NULL DEFAULT 'default';
ALTER TABLE processed_commands ALTER COLUMN source DROP DEFAULT;
ALTER TABLE processed_commands DROP CONSTRAINT processed_commands_pkey;
ALTER TABLE processed_commands ADD PRIMARY KEY (source, dedup_key);

-- scheduler expiries were written under the v1 namespace with a key no
-- producer could be told apart from; they are orderd's own
UPDATE processed_commands SET source = 'orderd'
 WHERE dedup_key LIKE 'orderd-expire:%' AND source_topic = 'orderd.scheduler';

ALTER TABLE deferred_commands ADD COLUMN source text NOT NULL DEFAULT 'default';
ALTER TABLE deferred_commands ALTER COLUMN source DROP DEFAULT;
ALTER TABLE deferred_commands DROP CONSTRAINT deferred_commands_dedup_key_key;
ALTER TABLE deferred_commands ADD UNIQUE (source, dedup_key);

ALTER TABLE stock_ledger ADD COLUMN source text NOT NULL DEFAULT 'default';
ALTER TABLE stock_ledger ALTER COLUMN source DROP DEFAULT;
UPDATE stock_ledger SET source = 'orderd'
 WHERE dedup_key LIKE 'orderd-expire:%' AND reason = 'expire';

ALTER TABLE order_status_history ADD COLUMN source text NOT NULL DEFAULT 'default';
ALTER TABLE order_status_history ALTER COLUMN source DROP DEFAULT;
UPDATE order_status_history SET source = 'orderd'
 WHERE dedup_key LIKE 'orderd-expire:%' AND to_status = 'expired'
   AND actor_role = 'system';

ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT 'default';
ALTER TABLE orders ALTER COLUMN source DROP DEFAULT;
