/* cli_db.c - orderd migrate, check and order: the Postgres-only commands */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../handlers/handler.h"
#include "cli.h"
#include "db.h"
#include "log.h"
#include "migrate.h"

static db_t *
cli_connect_to(const char *conninfo)
{
    char err[512];
    db_t *db = db_connect(conninfo, err, sizeof(err));

    if (db == NULL)
        fprintf(stderr, "orderd: %s\n", err);
    return db;
}

static db_t *
cli_connect(const od_config_t *cfg)
{
    return cli_connect_to(cfg->pg);
}

static void
print_pending(const char *name, void *arg)
{
    (void)arg;
    printf("pending %s\n", name);
}

/*
 * Migrations are DDL, so they run as the schema owner (--migrate-pg) while
 * every other subcommand runs as the runtime role (--pg), which owns
 * nothing and may not change the schema (docs/operations.md, "PostgreSQL
 * roles"). Without --migrate-pg both are one role, as before. --dry-run
 * only reads: it lists what would be applied.
 */
int
cli_migrate(const od_config_t *cfg)
{
    char err[1024], masked[512], dir[4096];
    const char *conninfo = cfg->migrate_pg[0] ? cfg->migrate_pg : cfg->pg;
    db_t *db;
    int applied = 0;
    od_status_t st;

    if (db_conninfo_masked(conninfo, masked, sizeof(masked)) < 0) {
        fprintf(stderr, "orderd migrate: the connection string is malformed "
                        "(not shown: it may hold a password)\n");
        return CLI_EXIT_USAGE;
    }
    if (migrate_schema_dir(cfg->schema_dir, dir, sizeof(dir), err,
                           sizeof(err)) < 0) {
        fprintf(stderr, "orderd migrate: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    log_info("%s postgres '%s' (%s) with the migrations in %s",
             cfg->dry_run ? "listing pending migrations of" : "migrating",
             masked, cfg->migrate_pg[0] ? "--migrate-pg" : "--pg", dir);
    db = cli_connect_to(conninfo);
    if (db == NULL)
        return CLI_EXIT_FAILURE;
    if (cfg->dry_run)
        st = migrate_pending(db, dir, print_pending, NULL, &applied, err,
                             sizeof(err));
    else
        st = migrate_run(db, dir, &applied, err, sizeof(err));
    db_destroy(db);
    if (st != OD_OK) {
        fprintf(stderr, "orderd migrate: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    if (cfg->dry_run)
        printf("migrations pending: %d (dry run: nothing applied)\n", applied);
    else
        printf("migrations applied: %d\n", applied);
    return CLI_EXIT_OK;
}

/* One invariant: a query listing the violations, one text column each. */
typedef struct check {
    const char *name;
    const char *sql;
} check_t;

static const check_t checks[] = {
    {"stock equals the sum of its ledger (products)",
     "SELECT format('product %s: stock %s, ledger %s', p.id, p.stock,"
     "  COALESCE(l.s, 0))"
     " FROM products p LEFT JOIN (SELECT product_id, sum(delta) s"
     "  FROM stock_ledger WHERE variant_id IS NULL GROUP BY product_id) l"
     "  ON l.product_id = p.id"
     " WHERE p.kind = 'simple' AND p.stock <> COALESCE(l.s, 0)"},
    {"stock equals the sum of its ledger (variants)",
     "SELECT format('variant %s of product %s: stock %s, ledger %s', v.id,"
     "  v.product_id, v.stock, COALESCE(l.s, 0))"
     " FROM product_variants v LEFT JOIN (SELECT product_id, variant_id,"
     "  sum(delta) s FROM stock_ledger WHERE variant_id IS NOT NULL"
     "  GROUP BY product_id, variant_id) l"
     "  ON l.product_id = v.product_id AND l.variant_id = v.id"
     " WHERE v.stock <> COALESCE(l.s, 0)"},
    {"ledger rows name an existing product or variant",
     "SELECT format('ledger row %s names unknown product %s variant %s',"
     "  l.id, l.product_id, l.variant_id) FROM stock_ledger l"
     " WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = l.product_id)"
     "  OR (l.variant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
     "  product_variants v WHERE v.id = l.variant_id"
     "  AND v.product_id = l.product_id))"},
    {"no negative stock",
     "SELECT format('product %s has stock %s', id, stock) FROM products"
     " WHERE stock < 0 UNION ALL"
     " SELECT format('variant %s has stock %s', id, stock)"
     " FROM product_variants WHERE stock < 0"},
    {"order totals equal items plus tax",
     "SELECT format('order %s: subtotal %s (items %s), tax %s (expected %s),"
     "  total %s', o.number, o.subtotal_cents, i.s, o.tax_cents,"
     "  div(i.s * o.tax_rate_bps + 5000, 10000), o.total_cents)"
     " FROM orders o JOIN (SELECT order_id,"
     "  sum(quantity::numeric * unit_price_cents) s FROM order_items"
     "  GROUP BY order_id) i ON i.order_id = o.id"
     " WHERE o.subtotal_cents <> i.s"
     "  OR o.tax_cents <> div(i.s * o.tax_rate_bps + 5000, 10000)"
     "  OR o.total_cents <> o.subtotal_cents + o.tax_cents"},
    {"every order has items",
     "SELECT format('order %s has no items', o.number) FROM orders o"
     " WHERE NOT EXISTS (SELECT 1 FROM order_items i"
     "  WHERE i.order_id = o.id)"},
    {"status history ends in the order's status",
     "SELECT format('order %s is %s but its history ends in %s', o.number,"
     "  o.status, h.to_status) FROM orders o"
     " LEFT JOIN LATERAL (SELECT to_status FROM order_status_history x"
     "  WHERE x.order_id = o.id ORDER BY x.id DESC LIMIT 1) h ON true"
     " WHERE h.to_status IS DISTINCT FROM o.status"},
    {"every processed command has its one result event",
     "SELECT format('command %s/%s (%s) has %s result events', p.source,"
     "  p.dedup_key,"
     "  p.outcome, (SELECT count(*) FROM outbox e"
     "   WHERE e.event_id = p.result_event_id))"
     " FROM processed_commands p"
     " WHERE (SELECT count(*) FROM outbox e"
     "   WHERE e.event_id = p.result_event_id) <> 1"
     "  AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.published_at IS NOT"
     "   NULL AND e.published_at < now() - interval '1 day'"
     "   AND e.dedup_key = p.dedup_key)"},
};

int
cli_check(const od_config_t *cfg)
{
    db_t *db = cli_connect(cfg);
    int violations = 0;
    char err[1024];

    if (db == NULL)
        return CLI_EXIT_UNCHECKED;
    /* one snapshot for every check */
    if (db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
                sizeof(err)) != OD_OK) {
        fprintf(stderr, "orderd check: %s\n", err);
        db_destroy(db);
        return CLI_EXIT_UNCHECKED;
    }
    for (size_t i = 0; i < OD_ARRAY_LEN(checks); i++) {
        db_rows_t *rows = NULL;
        int n;

        if (db_query(db, checks[i].sql, 0, NULL, &rows, err, sizeof(err)) !=
            OD_OK) {
            fprintf(stderr, "orderd check: %s: %s\n", checks[i].name, err);
            db_destroy(db);
            return CLI_EXIT_UNCHECKED;
        }
        n = db_nrows(rows);
        printf("%-52s %s\n", checks[i].name, n == 0 ? "ok" : "VIOLATED");
        for (int r = 0; r < n && r < 20; r++)
            printf("    %s\n", db_val(rows, r, 0));
        if (n > 20)
            printf("    ... and %d more\n", n - 20);
        violations += n;
        db_rows_free(rows);
    }
    if (db_commit(db, err, sizeof(err)) != OD_OK)
        fprintf(stderr, "orderd check: %s\n", err);
    db_destroy(db);
    if (violations > 0) {
        printf("%d violation(s)\n", violations);
        return CLI_EXIT_FAILURE;
    }
    printf("all invariants hold\n");
    return CLI_EXIT_OK;
}

int
cli_order(const od_config_t *cfg, const char *order_id)
{
    static const char *sql =
        "SELECT orderd_order_json(o.id) || jsonb_build_object("
        " 'created_at', o.created_at, 'updated_at', o.updated_at,"
        " 'payment_id', o.payment_id, 'tracking_number', o.tracking_number,"
        " 'history', (SELECT jsonb_agg(jsonb_build_object("
        "   'from', h.from_status, 'to', h.to_status,"
        "   'actor_role', h.actor_role, 'actor_id', h.actor_id,"
        "   'dedup_key', h.dedup_key, 'source', h.source, 'at', h.created_at)"
        "   ORDER BY h.id)"
        "  FROM order_status_history h WHERE h.order_id = o.id))"
        " FROM orders o WHERE o.id::text = lower($1) OR o.number = $1";
    const char *params[1] = {order_id};
    db_t *db = cli_connect(cfg);
    db_rows_t *rows = NULL;
    char err[1024];
    int rc = CLI_EXIT_OK;

    if (db == NULL)
        return CLI_EXIT_FAILURE;
    if (db_query(db, sql, 1, params, &rows, err, sizeof(err)) != OD_OK) {
        fprintf(stderr, "orderd order: %s\n", err);
        rc = CLI_EXIT_FAILURE;
    } else if (db_nrows(rows) == 0) {
        fprintf(stderr, "orderd order: no order %s\n", order_id);
        rc = CLI_EXIT_FAILURE;
    } else {
        json_t *j = json_loads(db_val(rows, 0, 0), 0, NULL);
        char *s;

        /* what may happen next, from the state machine table */
        json_object_set_new(j, "available_actions",
                            handler_available_actions(json_string_value(
                                json_object_get(j, "status"))));
        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        printf("%s\n", s ? s : db_val(rows, 0, 0));
        free(s);
        json_decref(j);
    }
    db_rows_free(rows);
    db_destroy(db);
    return rc;
}
