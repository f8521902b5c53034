-- 0030_outbox_write_path: every outbox row is inserted once and updated
-- once (published_at), and each write maintains every index of the table.
-- The index on dedup_key only served one rare branch of `orderd check`
-- (rows purged by retention), which can scan; dropping it saves two index
-- insertions per event on the hot path.
DROP INDEX IF EXISTS outbox_dedup_key;
