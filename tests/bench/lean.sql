-- lean.sql: the lean reference of scripts/bench, the least SQL that leaves
-- the effects of a batch of checkouts, written from the tables (schema/)
-- and the contract (docs/CONTRACT.md), not from orderd's statements.
--
-- DESIGN: a set-based writer loads what the batch may touch, decides in
-- memory, and writes each table once with arrays. lean.pgbench is that
-- writer with the deciding done ahead: bench_lean_prepare() computes every
-- batch's inputs (ids, keys, snapshotted names and prices, totals, the
-- result event's JSON) from the catalogue's formulas before the timed run
-- and stores them one row per batch, so the timed transactions contain only
-- what a client would send: one fetch of the batch's arrays (the client's
-- parameters, passed back as parameters), two loads (dedup keys and order
-- ids; the products locked in ascending id order) and one INSERT or UPDATE
-- per table with the arrays unnested. The result payload is passed in as
-- text, as a client that built the order in memory would send it; it is
-- not built from the rows with SQL. Checkouts only, of one or two distinct
-- products (quantity 1-3), no tax country, stock ample: every command is
-- applied. Run after catalogue.sql on a freshly migrated database.

-- One row per batch: text arrays whose elements line up by command (c_*),
-- by order line (l_*) or by product of the batch (p_*).
CREATE UNLOGGED TABLE bench_lean_input (
    id         bigint PRIMARY KEY,
    c_keys     text NOT NULL,
    c_orders   text NOT NULL,
    c_events   text NOT NULL,
    c_customers text NOT NULL,
    c_numbers  text NOT NULL,
    c_subtotals text NOT NULL,
    c_fingerprints text NOT NULL,
    c_offsets  text NOT NULL,
    c_payloads text NOT NULL,
    l_orders   text NOT NULL,
    l_nos      text NOT NULL,
    l_products text NOT NULL,
    l_vendors  text NOT NULL,
    l_skus     text NOT NULL,
    l_names    text NOT NULL,
    l_quantities text NOT NULL,
    l_prices   text NOT NULL,
    l_keys     text NOT NULL,
    p_ids      text NOT NULL,
    p_quantities text NOT NULL,
    next_offset bigint NOT NULL
);
-- the transactions take batches in order, each one once
CREATE SEQUENCE bench_lean_next;

-- bench_lean_prepare(batches, n): fills bench_lean_input with that many
-- batches of n checkouts; prices, names and SKUs follow catalogue.sql.
CREATE FUNCTION bench_lean_prepare(batches int, n int) RETURNS void
LANGUAGE sql AS $$
WITH cmd AS (
    SELECT b, i,
           gen_random_uuid() AS order_id,
           gen_random_uuid() AS event_id,
           'lean:' || b || ':' || i AS dedup_key,
           'cust-' || floor(random() * 5000)::int AS customer,
           'ORD-' || lpad(nextval('order_number_seq')::text, 8, '0') AS number,
           1 + (random() < 0.5)::int AS nlines,
           1 + floor(random() * 10000)::bigint AS first_product,
           floor(random() * 9999)::bigint AS shift,
           (b::bigint - 1) * n + i - 1 AS kafka_offset,
           now() + interval '15 minutes' AS expires_at
      FROM generate_series(1, batches) AS b, generate_series(1, n) AS i
),
line AS (
    SELECT c.*, l AS line_no,
           q.product_id,
           199 + (q.product_id * 7919) % 9800 AS price,
           1 + floor(random() * 3)::bigint AS quantity
      FROM cmd c
      CROSS JOIN LATERAL generate_series(1, c.nlines) AS l
      -- the second line's product: any other one of the 10,000
      CROSS JOIN LATERAL (SELECT CASE l WHEN 1 THEN c.first_product
                                 ELSE 1 + (c.first_product + c.shift) % 10000
                                 END AS product_id) AS q
),
ord AS (
    SELECT b, i, order_id, event_id, dedup_key, customer, number, expires_at,
           kafka_offset,
           sum(quantity * price) AS subtotal,
           jsonb_agg(jsonb_build_object(
               'product_id', product_id, 'variant_id', NULL,
               'sku', 'BENCH-' || product_id,
               'name', 'Bench product ' || product_id, 'variant_name', NULL,
               'quantity', quantity, 'unit_price_cents', price)
               ORDER BY line_no) AS items
      FROM line
     GROUP BY b, i, order_id, event_id, dedup_key, customer, number,
              expires_at, kafka_offset
),
-- the command.result event as docs/CONTRACT.md shows it
res AS (
    SELECT ord.*, jsonb_build_object(
               'event_id', event_id, 'type', 'command.result',
               'dedup_key', dedup_key, 'command_type', 'checkout',
               'order_id', order_id, 'outcome', 'applied', 'reason', NULL,
               'details', '{}'::jsonb,
               'order', jsonb_build_object(
                   'id', order_id, 'number', number, 'status', 'pending',
                   'customer_id', customer, 'currency', 'EUR',
                   'subtotal_cents', subtotal, 'tax_country', NULL,
                   'tax_rate_bps', 0, 'tax_cents', 0,
                   'total_cents', subtotal, 'expires_at', expires_at,
                   'items', items),
               'source', jsonb_build_object(
                   'topic', 'orders.commands', 'partition', 0,
                   'offset', kafka_offset),
               'at', now())::text AS payload
      FROM ord
),
per_cmd AS (
    SELECT b,
           array_agg(dedup_key ORDER BY i)::text AS c_keys,
           array_agg(order_id ORDER BY i)::text AS c_orders,
           array_agg(event_id ORDER BY i)::text AS c_events,
           array_agg(customer ORDER BY i)::text AS c_customers,
           array_agg(number ORDER BY i)::text AS c_numbers,
           array_agg(subtotal ORDER BY i)::text AS c_subtotals,
           array_agg(sha256(convert_to(dedup_key, 'UTF8')) ORDER BY i)::text
               AS c_fingerprints,
           array_agg(kafka_offset ORDER BY i)::text AS c_offsets,
           array_agg(payload ORDER BY i)::text AS c_payloads,
           max(kafka_offset) + 1 AS next_offset
      FROM res
     GROUP BY b
),
per_line AS (
    SELECT b,
           array_agg(order_id ORDER BY i, line_no)::text AS l_orders,
           array_agg(line_no ORDER BY i, line_no)::text AS l_nos,
           array_agg(product_id ORDER BY i, line_no)::text AS l_products,
           array_agg('vendor-' || product_id % 100 ORDER BY i, line_no)::text
               AS l_vendors,
           array_agg('BENCH-' || product_id ORDER BY i, line_no)::text AS l_skus,
           array_agg('Bench product ' || product_id ORDER BY i, line_no)::text
               AS l_names,
           array_agg(quantity ORDER BY i, line_no)::text AS l_quantities,
           array_agg(price ORDER BY i, line_no)::text AS l_prices,
           array_agg(dedup_key ORDER BY i, line_no)::text AS l_keys
      FROM line
     GROUP BY b
),
-- a product's quantities summed over the batch, ids ascending: the order
-- the rows are locked in
per_product AS (
    SELECT b, array_agg(product_id ORDER BY product_id)::text AS p_ids,
           array_agg(quantity ORDER BY product_id)::text AS p_quantities
      FROM (SELECT b, product_id, sum(quantity) AS quantity
              FROM line GROUP BY b, product_id) AS s
     GROUP BY b
)
INSERT INTO bench_lean_input
SELECT c.b, c_keys, c_orders, c_events, c_customers, c_numbers, c_subtotals,
       c_fingerprints, c_offsets, c_payloads, l_orders, l_nos, l_products,
       l_vendors, l_skus, l_names, l_quantities, l_prices, l_keys, p_ids,
       p_quantities, next_offset
  FROM per_cmd c JOIN per_line l USING (b) JOIN per_product p USING (b)
$$;
