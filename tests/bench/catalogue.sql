-- catalogue.sql: the benchmark catalogue, loaded straight into a freshly
-- migrated database by scripts/bench (not through product_upsert commands,
-- so it is neither counted nor timed): 10,000 simple products with a large
-- stock, each with its 'initial' ledger row so that stock = sum(ledger)
-- holds. Prices follow bench_price() in orderd_bench.c.
INSERT INTO products (id, vendor_id, kind, name, sku, currency, price_cents,
                      stock)
SELECT g, 'vendor-' || (g % 100), 'simple', 'Bench product ' || g,
       'BENCH-' || g, 'EUR', 199 + (g * 7919) % 9800, 1000000000
  FROM generate_series(1, 10000) AS g;

INSERT INTO stock_ledger (product_id, variant_id, delta, reason, dedup_key,
                          source)
SELECT g, NULL, 1000000000, 'initial', 'bench-catalogue', 'bench'
  FROM generate_series(1, 10000) AS g;

ANALYZE products;
ANALYZE stock_ledger;
