-- ceiling.sql: the SQL work orderd does per checkout, run server side in
-- one PL/pgSQL call per batch (scripts/bench runs it with pgbench). No
-- Kafka, no client round trips, no JSON parsing in the client: an upper
-- bound for the worker on the same Postgres. The statements are copies of
-- worker/executor.c (offset lock, batch prelock, offset store),
-- worker/apply.c (savepoint; dedup row + result outbox row with the order
-- snapshot + parked-commands check in one statement) and
-- handlers/checkout.c + handlers/stock.c (product locks, order insert,
-- guarded decrements with ledger rows), as of commit 0687fa0; keep them in
-- step when those change.
CREATE OR REPLACE FUNCTION bench_ceiling_batch(p_n int, p_partition int)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_grp constant text := 'bench-ceiling';
    v_topic constant text := 'bench.commands';
    v_country char(2) := NULL;
    v_next bigint;
    v_replay bigint;
    v_pids bigint[];
    v_vids bigint[];
    v_qtys bigint[];
    v_prices bigint[];
    v_order uuid;
    v_key text;
    v_cust text;
    v_exists boolean;
    v_rate int;
    v_sub bigint;
    v_number text;
    v_event uuid;
    v_order_json jsonb;
    v_inserted int;
    v_stock bigint;
    v_low_pid bigint;
    v_at bigint;
    v_all_pids bigint[] := '{}';
    v_all_qtys bigint[] := '{}';
    v_all_lines int[] := '{}';
    v_orders uuid[] := '{}';
    v_line int := 0;
    v_parked boolean;
    r record;
    i int;
    k int;
BEGIN
    -- executor.c: lock the partition's offset row
    INSERT INTO consumer_offsets (grp, topic, partition, next_offset)
    VALUES (v_grp, v_topic, p_partition, 0)
    ON CONFLICT (grp, topic, partition)
    DO UPDATE SET next_offset = consumer_offsets.next_offset
    RETURNING next_offset, replay_until INTO v_next, v_replay;

    -- the batch's commands: 1-3 distinct products each, quantity 1-3,
    -- sorted by id (checkout_aggregate); generating them stands for
    -- parsing them
    FOR i IN 1 .. p_n LOOP
        SELECT array_agg(id ORDER BY id) INTO v_pids
          FROM (SELECT DISTINCT 1 + floor(random() * 10000)::bigint AS id
                  FROM generate_series(1, 1 + floor(random() * 3)::int)) s;
        v_all_lines := v_all_lines || cardinality(v_pids);
        v_all_pids := v_all_pids || v_pids;
        v_all_qtys := v_all_qtys || ARRAY(SELECT 1 + floor(random() * 3)::bigint
                          FROM generate_series(1, cardinality(v_pids)));
        v_orders := v_orders || gen_random_uuid();
    END LOOP;

    -- executor.c stmt_prelock_orders and stmt_prelock_products
    PERFORM 1 FROM orders WHERE id = ANY (v_orders) ORDER BY id FOR UPDATE;
    PERFORM 1 FROM products WHERE id = ANY (v_all_pids ||
            ARRAY(SELECT product_id FROM order_items
                   WHERE order_id = ANY (v_orders)))
      ORDER BY id FOR UPDATE;

    FOR i IN 1 .. p_n LOOP
        v_pids := v_all_pids[v_line + 1 : v_line + v_all_lines[i]];
        v_qtys := v_all_qtys[v_line + 1 : v_line + v_all_lines[i]];
        v_line := v_line + v_all_lines[i];
        v_order := v_orders[i];
        v_key := 'co:ceiling:' || v_order;
        v_cust := 'cust-' || floor(random() * 5000)::int;
        v_at := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;

        BEGIN -- SAVEPOINT cmd ... RELEASE SAVEPOINT cmd
            -- checkout.c stmt_lock_products
            v_prices := '{}';
            FOR r IN
                SELECT x.order_exists, x.rate_bps, p.id,
                       p.kind = 'variant' AS is_variant, p.currency,
                       p.price_cents, COALESCE(p.stock, 0) AS stock,
                       p.deleted_at IS NOT NULL AS deleted
                  FROM (SELECT EXISTS (SELECT 1 FROM orders
                                        WHERE id = v_order) AS order_exists,
                               (SELECT rate_bps FROM tax_rates
                                 WHERE country = v_country) AS rate_bps) x
                  LEFT JOIN LATERAL (SELECT * FROM products
                                      WHERE id = ANY (v_pids)
                                      ORDER BY id FOR UPDATE) p ON true
            LOOP
                v_exists := r.order_exists;
                v_rate := COALESCE(r.rate_bps, 0);
                v_prices := v_prices || r.price_cents;
            END LOOP;
            IF v_exists THEN
                RAISE EXCEPTION 'order exists';
            END IF;
            v_sub := 0;
            FOR k IN 1 .. cardinality(v_pids) LOOP
                v_sub := v_sub + v_prices[k] * v_qtys[k];
            END LOOP;

            -- checkout.c stmt_insert_order: the order, its items, the
            -- first history row, the guarded decrements and their ledger
            -- rows in one statement (no variants in the bench catalogue,
            -- so the variant branch matches nothing, as in orderd)
            v_vids := array_fill(0::bigint, ARRAY[cardinality(v_pids)]);
            WITH t AS (SELECT 'epoch'::timestamptz
                              + (v_at / 1000000) * interval '1 second'
                              + (v_at % 1000000) * interval '1 microsecond' AS at,
                              nextval('order_number_seq') AS n),
            o AS (INSERT INTO orders (id, number, customer_id, status, currency,
                      subtotal_cents, tax_country, tax_rate_bps, tax_cents,
                      total_cents, dedup_key, source, created_at, expires_at)
                  SELECT v_order, 'ORD-' || CASE WHEN t.n < 100000000
                             THEN lpad(t.n::text, 8, '0') ELSE t.n::text END,
                         v_cust, 'pending', 'EUR', v_sub, v_country, v_rate,
                         0, v_sub, v_key, 'default', t.at,
                         t.at + 900 * interval '1 second'
                    FROM t
                  ON CONFLICT (id) DO NOTHING RETURNING id, number),
            it AS (INSERT INTO order_items (order_id, line_no, product_id,
                       variant_id, vendor_id, sku, name, variant_name, quantity,
                       unit_price_cents)
                   SELECT o.id, x.ord::int, x.pid, v.id, p.vendor_id,
                          COALESCE(v.sku, p.sku), p.name, v.name, x.qty, x.price
                     FROM o, unnest(v_pids, v_vids, v_qtys, v_prices)
                          WITH ORDINALITY AS x(pid, vid, qty, price, ord)
                     JOIN LATERAL (SELECT vendor_id, sku, name FROM products
                                    WHERE id = x.pid OFFSET 0) p ON true
                     LEFT JOIN LATERAL (SELECT id, sku, name
                                          FROM product_variants
                                         WHERE id = x.vid OFFSET 0) v ON true),
            h AS (INSERT INTO order_status_history (order_id, from_status,
                      to_status, actor_role, actor_id, dedup_key, source)
                  SELECT o.id, NULL, 'pending', 'customer', v_cust, v_key,
                         'default' FROM o),
            sp AS (UPDATE products p SET stock = p.stock - x.qty,
                          updated_at = now()
                     FROM o, unnest(v_pids, v_vids, v_qtys) AS x(pid, vid, qty)
                    WHERE x.vid = 0 AND p.id = x.pid AND p.stock >= x.qty
                   RETURNING p.id AS pid, 0::bigint AS vid, x.qty, p.stock,
                             p.low_stock_threshold AS thr),
            sv AS (UPDATE product_variants v SET stock = v.stock - x.qty,
                          updated_at = now()
                     FROM o, unnest(v_pids, v_vids, v_qtys) AS x(pid, vid, qty)
                    WHERE x.vid <> 0 AND v.id = x.vid AND v.product_id = x.pid
                      AND v.stock >= x.qty
                   RETURNING v.product_id AS pid, v.id AS vid, x.qty, v.stock,
                             (SELECT low_stock_threshold FROM products
                               WHERE id = v.product_id) AS thr),
            s AS (SELECT * FROM sp UNION ALL SELECT * FROM sv),
            l AS (INSERT INTO stock_ledger (product_id, variant_id, delta,
                      reason, order_id, dedup_key, source)
                  SELECT pid, NULLIF(vid, 0), -qty, 'order', v_order, v_key,
                         'default' FROM s)
            SELECT o.number, (SELECT count(*) FROM s), low.pid, low.stock
              INTO v_number, v_inserted, v_low_pid, v_stock
              FROM o LEFT JOIN (SELECT * FROM s
                                 WHERE s.stock <= s.thr
                                   AND s.stock + s.qty > s.thr) low ON true
             LIMIT 1;

            -- apply.c stmt_dedup_result: the dedup row, the result event
            -- (its text built in C by orderd) with the order snapshot, and
            -- the parked-commands check, in one statement
            v_event := gen_random_uuid();
            WITH d AS (INSERT INTO processed_commands (dedup_key, fingerprint,
                           command_type, outcome, reason, result_event_id,
                           order_id, source_topic, source_partition,
                           source_offset, source)
                       VALUES (v_key, sha256(convert_to(v_key, 'UTF8')),
                               'checkout', 'applied', NULL, v_event, v_order,
                               v_topic, p_partition, v_next + i - 1, 'default')
                       ON CONFLICT (source, dedup_key) DO NOTHING
                       RETURNING order_id),
            e AS (INSERT INTO outbox (event_id, topic, key, payload, dedup_key)
                  SELECT v_event, 'bench.events',
                         convert_to(v_order::text, 'UTF8'),
                         convert_to(jsonb_set(jsonb_build_object(
                             'event_id', v_event, 'type', 'command.result',
                             'dedup_key', v_key, 'command_type', 'checkout',
                             'order_id', v_order, 'outcome', 'applied',
                             'reason', NULL, 'details', '{}'::jsonb,
                             'order', NULL,
                             'source', jsonb_build_object('name', 'default',
                                 'topic', v_topic,
                                 'partition', p_partition,
                                 'offset', v_next + i - 1),
                             'at', clock_timestamp())::text::jsonb, '{order}',
                             COALESCE(orderd_order_json(d.order_id),
                                      'null'::jsonb))::text, 'UTF8'),
                         v_key
                    FROM d RETURNING 1)
            SELECT (SELECT count(*) FROM e),
                   EXISTS (SELECT 1 FROM deferred_commands
                            WHERE order_id = v_order)
              INTO v_inserted, v_parked;
        EXCEPTION WHEN others THEN
            RAISE; -- the bench workload has no rejections
        END;
    END LOOP;

    -- executor.c stmt_offset_store
    UPDATE consumer_offsets SET next_offset = v_next + p_n, updated_at = now()
     WHERE grp = v_grp AND topic = v_topic AND partition = p_partition;
    RETURN p_n;
END $$;
