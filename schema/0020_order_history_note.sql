-- 0020_order_history_note: the free-text reason a status change was made
-- with (the optional `reason` of a cancel command), kept with its history row
ALTER TABLE order_status_history ADD COLUMN note text;
