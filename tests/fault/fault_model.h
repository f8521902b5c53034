/* fault_model.h - shared by the fault tests 03xx: a stream of mixed
 * commands (multi-line checkouts of simple and variant products, stock
 * that runs out, pays and cancels, pays sent before their checkout on
 * another partition, producer retries, poison) with an independent model
 * that predicts every command's outcome and reason and the final stock
 * and statuses, its verification against the database and the result
 * events, and helpers for private servers (scripts/pg, scripts/kafka),
 * free ports and the worker's /metrics endpoint.
 *
 * Every function is static inline so a test may use any subset. */
#ifndef OD_FAULT_MODEL_H
#define OD_FAULT_MODEL_H

#include "../integration/ktest.h"
#include "../integration/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The catalogue: FM_FAMILIES families, each of FM_SIMPLE simple products
 * (ids 3f+1..3f+3, FM_PRICE) and one variant product (id FM_VARIANT_BASE+f)
 * with two variants (ids FM_VARIANT_ID(f, 1..2), FM_VARIANT_PRICE). Every
 * command that touches a family's items travels on the family's partition
 * under its key (the smallest product id in the family), so each item's
 * commands keep their order and the model can tell which checkout gets the
 * last units. One family in four starts with little stock: checkouts run
 * it out and are refused insufficient_stock.
 */
#define FM_FAMILIES 8
#define FM_SIMPLE 3
#define FM_PRODUCTS (FM_FAMILIES * FM_SIMPLE)
#define FM_ITEMS (FM_SIMPLE + 2) /* per family: 3 products, 2 variants */
#define FM_PRICE 250
#define FM_VARIANT_PRICE 400
#define FM_START_STOCK 400
#define FM_LOW_STOCK 12
#define FM_VARIANT_STOCK 30
#define FM_VARIANT_BASE 100
#define FM_VARIANT_ID(f, v) (1000 + 10 * (f) + (v))
#define FM_MAX_LINES 3

typedef enum { FM_NONE, FM_PENDING, FM_PAID, FM_CANCELLED } fm_state_t;

typedef struct fm_order {
    int family;
    int nlines;
    int item[FM_MAX_LINES]; /* index within the family, 0..FM_ITEMS-1 */
    int qty[FM_MAX_LINES];
    int64_t total;
    fm_state_t state;
    int early; /* its pay was sent before its checkout, elsewhere */
} fm_order_t;

/* What the model predicts for one message: its result's outcome and
 * reason; for a producer retry, "duplicate" and the original's outcome.
 * early: a pay sent before its checkout on another partition, whose
 * result may be preceded by a "deferred" one. */
typedef struct fm_expect {
    char key[32];
    char outcome[12];
    char reason[32];
    char original[12]; /* duplicates only */
    int early;
} fm_expect_t;

typedef struct fmodel {
    ktest_t *k;
    int64_t stock[FM_FAMILIES][FM_ITEMS];
    fm_order_t *orders;
    int norders, cap;
    char **sent;      /* every valid message, for producer retries */
    int *sent_family; /* ... the family whose partition carried it */
    int *sent_exp;    /* ... and its expectation */
    int nsent;        /* distinct valid dedup keys */
    fm_expect_t *exp; /* one per valid message, retries included */
    int nexp;
    int nretries; /* producer retries (same key, same body) */
    int npoison;
    int nearly;    /* pays sent before their checkout */
    int nreleased; /* ... whose second result the model predicts */
    int nmessages; /* messages that must get a result (valid + retries) */
    int seq;
    unsigned int seed;
    int64_t part_sent[64]; /* messages sent to each partition */
} fmodel_t;

static inline int
fm_rnd(fmodel_t *m, int n)
{
    return (int)(rand_r(&m->seed) % (unsigned int)n);
}

static inline void
fm_order_uuid(int i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

/* cap: the most messages the whole test will generate */
static inline void
fm_init(fmodel_t *m, ktest_t *k, int cap, unsigned int seed)
{
    memset(m, 0, sizeof(*m));
    m->k = k;
    m->cap = 2 * cap + 2 * FM_FAMILIES * (FM_SIMPLE + 1) + 2;
    m->seed = seed;
    m->orders = calloc((size_t)m->cap, sizeof(*m->orders));
    m->sent = calloc((size_t)m->cap, sizeof(*m->sent));
    m->sent_family = calloc((size_t)m->cap, sizeof(*m->sent_family));
    m->sent_exp = calloc((size_t)m->cap, sizeof(*m->sent_exp));
    m->exp = calloc((size_t)m->cap, sizeof(*m->exp));
    ck_assert(m->orders && m->sent && m->sent_family && m->sent_exp && m->exp);
}

static inline void
fm_free(fmodel_t *m)
{
    for (int i = 0; i < m->nsent; i++)
        free(m->sent[i]);
    free(m->sent);
    free(m->sent_family);
    free(m->sent_exp);
    free(m->exp);
    free(m->orders);
    memset(m, 0, sizeof(*m));
}

static inline int
fm_partition(const fmodel_t *m, int family)
{
    return family % m->k->partitions;
}

/* Sends msg on family's partition under the family's key. */
static inline void
fm_send(fmodel_t *m, int family, const char *msg)
{
    char key[16];

    snprintf(key, sizeof(key), "%d", FM_SIMPLE * family + 1);
    ktest_send_partition(m->k, fm_partition(m, family), key, msg);
    m->part_sent[fm_partition(m, family)]++;
}

/* Records what msg (dedup key key) must yield; returns its index. */
static inline int
fm_expect(fmodel_t *m, const char *key, const char *outcome, const char *reason,
          const char *original, int early)
{
    fm_expect_t *e;

    ck_assert_int_lt(m->nexp, m->cap);
    e = &m->exp[m->nexp];
    snprintf(e->key, sizeof(e->key), "%s", key);
    snprintf(e->outcome, sizeof(e->outcome), "%s", outcome);
    snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
    snprintf(e->original, sizeof(e->original), "%s", original ? original : "");
    e->early = early;
    m->nmessages++;
    return m->nexp++;
}

/* A valid message, kept for producer retries (not for early pays: their
 * original outcome is not known in advance). */
static inline void
fm_keep(fmodel_t *m, int family, const char *msg, int exp)
{
    ck_assert_int_lt(m->nsent, m->cap);
    m->sent_family[m->nsent] = family;
    m->sent_exp[m->nsent] = exp;
    m->sent[m->nsent++] = strdup(msg);
}

/* the JSON of item i of family f in a checkout line */
static inline void
fm_item_json(int f, int i, int qty, char *out, size_t len)
{
    if (i < FM_SIMPLE)
        snprintf(out, len, "{\"product_id\":%d,\"quantity\":%d}",
                 FM_SIMPLE * f + 1 + i, qty);
    else
        snprintf(out, len,
                 "{\"product_id\":%d,\"variant_id\":%d,\"quantity\":%d}",
                 FM_VARIANT_BASE + f, FM_VARIANT_ID(f, i - FM_SIMPLE + 1), qty);
}

/* A new order of 1..3 distinct items of one family; its checkout is
 * applied only if every line's stock is there (else nothing is taken). */
static inline int
fm_new_order(fmodel_t *m, char *msg, size_t len, int *applied)
{
    char id[37], items[512], line[96];
    int o = m->norders++, f = fm_rnd(m, FM_FAMILIES), ok = 1;
    fm_order_t *mo = &m->orders[o];
    size_t n = 0;

    mo->family = f;
    mo->nlines = 1 + fm_rnd(m, FM_MAX_LINES);
    for (int l = 0; l < mo->nlines; l++) {
        int i, dup;

        do {
            i = fm_rnd(m, FM_ITEMS);
            dup = 0;
            for (int j = 0; j < l; j++)
                dup |= mo->item[j] == i;
        } while (dup);
        mo->item[l] = i;
        mo->qty[l] = 1 + fm_rnd(m, 3);
        mo->total +=
            (int64_t)mo->qty[l] * (i < FM_SIMPLE ? FM_PRICE : FM_VARIANT_PRICE);
        fm_item_json(f, i, mo->qty[l], line, sizeof(line));
        n += (size_t)snprintf(items + n, sizeof(items) - n, "%s%s",
                              l ? "," : "", line);
        if (m->stock[f][i] < mo->qty[l])
            ok = 0;
    }
    fm_order_uuid(o, id);
    snprintf(msg, len,
             "{\"dedup_key\":\"co-%d\",\"type\":\"checkout\","
             "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
             "\"order_id\":\"%s\",\"customer_id\":\"c%d\","
             "\"currency\":\"EUR\",\"items\":[%s]}",
             o, id, o % 97, items);
    if (ok) {
        for (int l = 0; l < mo->nlines; l++)
            m->stock[f][mo->item[l]] -= mo->qty[l];
        mo->state = FM_PENDING;
    }
    *applied = ok;
    return o;
}

static inline void
fm_checkout(fmodel_t *m)
{
    char msg[1024], key[32];
    int applied, o = fm_new_order(m, msg, sizeof(msg), &applied);

    snprintf(key, sizeof(key), "co-%d", o);
    fm_send(m, m->orders[o].family, msg);
    fm_keep(m, m->orders[o].family, msg,
            fm_expect(m, key, applied ? "applied" : "rejected",
                      applied ? NULL : "insufficient_stock", NULL, 0));
}

static inline void
fm_pay_json(fmodel_t *m, int o, char *key, size_t klen, char *msg, size_t len)
{
    char id[37];

    fm_order_uuid(o, id);
    snprintf(key, klen, "pay-%d", m->seq++);
    snprintf(msg, len,
             "{\"dedup_key\":\"%s\",\"type\":\"pay\","
             "\"actor\":{\"role\":\"payment\",\"id\":\"gw\"},"
             "\"order_id\":\"%s\",\"payment_id\":\"pi-%d\","
             "\"amount_cents\":%lld,\"currency\":\"EUR\"}",
             key, id, o, (long long)m->orders[o].total);
}

/*
 * Where a pay sent before its checkout travels: on another partition, so
 * that it races the checkout. Parking and releasing are serialised by the
 * per-order advisory lock every batch takes before it loads its orders
 * (worker/batch_load.c): a pay parked while the checkout's transaction is
 * open is released by the checkout or found by the next batch. (Before the
 * batch redesign the checkout looked for parked commands without that
 * lock, and such a pay waited for --defer-timeout; 0 sends it on the
 * checkout's own partition.)
 */
#ifndef FM_EARLY_ON_OTHER_PARTITION
#define FM_EARLY_ON_OTHER_PARTITION 1
#endif

/*
 * A pay for a new order sent before its checkout: parked (deferred), then
 * applied when the checkout comes (a second result for its key); on
 * another partition it may also find the order and be applied at once. If
 * the checkout is refused, the pay waits for an order that never comes:
 * deferred.
 */
static inline void
fm_early_pay(fmodel_t *m)
{
    char msg[1024], pay[512], key[32], cokey[32];
    int applied, o = fm_new_order(m, msg, sizeof(msg), &applied);
    fm_order_t *mo = &m->orders[o];
    int other = FM_EARLY_ON_OTHER_PARTITION;

    mo->early = 1;
    m->nearly++;
    fm_pay_json(m, o, key, sizeof(key), pay, sizeof(pay));
    fm_send(m, other ? (mo->family + 1) % FM_FAMILIES : mo->family, pay);
    if (applied && other) {
        fm_expect(m, key, "applied", NULL, NULL, 1);
    } else {
        fm_expect(m, key, "deferred", NULL, NULL, 0);
        if (applied) {
            /* its second result, when the checkout releases it */
            fm_expect(m, key, "applied", NULL, NULL, 0);
            m->nmessages--;
            m->nreleased++;
        }
    }
    snprintf(cokey, sizeof(cokey), "co-%d", o);
    fm_send(m, mo->family, msg);
    fm_keep(m, mo->family, msg,
            fm_expect(m, cokey, applied ? "applied" : "rejected",
                      applied ? NULL : "insufficient_stock", NULL, 0));
    if (applied)
        mo->state = FM_PAID;
}

static inline void
fm_pay_or_cancel(fmodel_t *m)
{
    char msg[512], id[37], key[32];
    int o = fm_rnd(m, m->norders);
    fm_order_t *mo = &m->orders[o];
    const char *outcome = "applied", *reason = NULL;

    if (mo->early) {
        /* its pay raced its checkout: nothing else may race them */
        fm_checkout(m);
        return;
    }
    fm_order_uuid(o, id);
    if (fm_rnd(m, 3) > 0) {
        fm_pay_json(m, o, key, sizeof(key), msg, sizeof(msg));
        if (mo->state == FM_PENDING)
            mo->state = FM_PAID;
        else if (mo->state == FM_PAID)
            outcome = "rejected", reason = "already_paid";
        else if (mo->state == FM_CANCELLED)
            outcome = "rejected", reason = "invalid_transition";
        else
            outcome = "deferred"; /* its checkout was refused */
    } else {
        snprintf(key, sizeof(key), "cancel-%d", m->seq++);
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"%s\",\"type\":\"cancel\","
                 "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
                 "\"order_id\":\"%s\"}",
                 key, id);
        if (mo->state == FM_PENDING || mo->state == FM_PAID) {
            mo->state = FM_CANCELLED;
            for (int l = 0; l < mo->nlines; l++)
                m->stock[mo->family][mo->item[l]] += mo->qty[l];
        } else if (mo->state == FM_CANCELLED) {
            outcome = "rejected", reason = "already_cancelled";
        } else {
            outcome = "deferred";
        }
    }
    /* the checkout's partition: they are applied after it, in order */
    fm_send(m, mo->family, msg);
    fm_keep(m, mo->family, msg, fm_expect(m, key, outcome, reason, NULL, 0));
}

static inline int
fm_total(const fmodel_t *m)
{
    return m->nmessages + m->npoison;
}

static inline void
fm_catalogue(fmodel_t *m)
{
    char msg[1024], key[32];

    for (int f = 0; f < FM_FAMILIES; f++) {
        for (int i = 0; i < FM_SIMPLE; i++) {
            int p = FM_SIMPLE * f + 1 + i;
            int stock = f % 4 == 0 ? FM_LOW_STOCK : FM_START_STOCK;

            snprintf(key, sizeof(key), "prod-%d", p);
            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"%s\",\"type\":\"product_upsert\","
                     "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                     "\"product_id\":%d,\"vendor_id\":\"v\",\"name\":\"P%d\","
                     "\"sku\":\"SKU-%d\",\"currency\":\"EUR\",\"kind\":"
                     "\"simple\",\"price_cents\":%d,\"stock\":%d}",
                     key, p, p, p, FM_PRICE, stock);
            fm_send(m, f, msg);
            fm_keep(m, f, msg, fm_expect(m, key, "applied", NULL, NULL, 0));
            m->stock[f][i] = stock;
        }
        snprintf(key, sizeof(key), "prod-%d", FM_VARIANT_BASE + f);
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"%s\",\"type\":\"product_upsert\","
                 "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                 "\"product_id\":%d,\"vendor_id\":\"v\",\"name\":\"V%d\","
                 "\"sku\":\"SKU-%d\",\"currency\":\"EUR\",\"kind\":"
                 "\"variant\",\"variants\":["
                 "{\"variant_id\":%d,\"name\":\"a\",\"sku\":\"SKU-%d-a\","
                 "\"price_cents\":%d,\"stock\":%d},"
                 "{\"variant_id\":%d,\"name\":\"b\",\"sku\":\"SKU-%d-b\","
                 "\"price_cents\":%d,\"stock\":%d}]}",
                 key, FM_VARIANT_BASE + f, f, FM_VARIANT_BASE + f,
                 FM_VARIANT_ID(f, 1), f, FM_VARIANT_PRICE, FM_VARIANT_STOCK,
                 FM_VARIANT_ID(f, 2), f, FM_VARIANT_PRICE, FM_VARIANT_STOCK);
        fm_send(m, f, msg);
        fm_keep(m, f, msg, fm_expect(m, key, "applied", NULL, NULL, 0));
        m->stock[f][FM_SIMPLE] = m->stock[f][FM_SIMPLE + 1] = FM_VARIANT_STOCK;
    }
}

/* Produces messages until the stream holds `upto` messages in all (the
 * catalogue first, on the first call) and waits for the broker's acks. */
static inline void
fm_generate(fmodel_t *m, int upto)
{
    if (m->nsent == 0)
        fm_catalogue(m);
    while (fm_total(m) < upto) {
        int r = fm_rnd(m, 100);

        if (r < 52 || m->norders == 0) {
            fm_checkout(m);
        } else if (r < 55) {
            fm_early_pay(m);
        } else if (r < 93) {
            fm_pay_or_cancel(m);
        } else if (r < 98) {
            /* a producer retry of an earlier message: same key, same body */
            int i = fm_rnd(m, m->nsent);
            const fm_expect_t *orig = &m->exp[m->sent_exp[i]];
            char key[32];

            snprintf(key, sizeof(key), "%s", orig->key);
            fm_send(m, m->sent_family[i], m->sent[i]);
            fm_expect(m, key, "duplicate", NULL, orig->outcome, 0);
            m->nretries++;
        } else {
            ktest_send_partition(m->k, 0, "1", "\x01garbage that is not json");
            m->part_sent[0]++;
            m->npoison++;
        }
    }
    ktest_flush(m->k);
}

/* Messages the workers have taken off the topic (committed offsets). */
static inline int64_t
fm_done(ktest_t *k)
{
    return itest_int(k->db, "SELECT COALESCE(sum(next_offset), 0) FROM "
                            "consumer_offsets");
}

/* Polls until the committed offsets reach `at` messages. */
static inline void
fm_wait_done(ktest_t *k, int64_t at, int timeout_s)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT (COALESCE(sum(next_offset), 0) >= %lld)::int"
             " FROM consumer_offsets",
             (long long)at);
    ck_assert_msg(ktest_wait_sql(k, sql, 1, timeout_s) == 1,
                  "no progress past %lld of %lld messages",
                  (long long)fm_done(k), (long long)at);
}

/* Waits until the whole stream is applied and published. */
static inline void
fm_wait_drained(fmodel_t *m, int timeout_s)
{
    ck_assert_int_eq(ktest_wait_sql(m->k,
                                    "SELECT COALESCE(sum(next_offset), 0)"
                                    " FROM consumer_offsets",
                                    fm_total(m), timeout_s),
                     fm_total(m));
    ck_assert_int_eq(ktest_wait_sql(m->k,
                                    "SELECT count(*) FROM outbox WHERE "
                                    "published_at IS NULL",
                                    0, timeout_s),
                     0);
}

/* Results of pays that were parked before their checkout and applied
 * when it came: the one case where a command has two results. */
static inline int64_t
fm_released(fmodel_t *m)
{
    char sql[640];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT dedup_key FROM outbox"
             " WHERE topic = '%s' AND convert_from(payload, 'UTF8')::jsonb"
             "->>'type' = 'command.result' GROUP BY dedup_key HAVING"
             " bool_or(convert_from(payload, 'UTF8')::jsonb->>'outcome' ="
             " 'deferred') AND bool_or(convert_from(payload, 'UTF8')::jsonb"
             "->>'outcome' = 'applied')) x",
             m->k->events);
    return itest_int(m->k->db, sql);
}

/*
 * The database against the model: one result per message (two for a pay
 * parked before its checkout) and none twice, poison in the DLQ, every
 * dedup key once, stock of every product and variant and every order's
 * status equal to the model, stock = ledger, `orderd check` clean.
 */
static inline void
fm_verify_db(fmodel_t *m)
{
    static const char *names[] = {"", "pending", "paid", "cancelled"};
    const char *check[] = {"check", NULL};
    ktest_t *k = m->k;
    char sql[512], *out = NULL;
    int64_t released = fm_released(m);

    if (FM_EARLY_ON_OTHER_PARTITION)
        ck_assert_int_le(released, m->nearly);
    else
        ck_assert_int_eq(released, m->nreleased);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result'",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), m->nmessages + released);
    /* no message has two final results */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE topic = '%s'"
             " AND convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result' AND convert_from(payload, 'UTF8')::jsonb"
             "->>'outcome' <> 'deferred' GROUP BY"
             " convert_from(payload, 'UTF8')::jsonb->'source'"
             " HAVING count(*) > 1) x",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE topic = '%s'",
             k->dlq);
    ck_assert_int_eq(itest_int(k->db, sql), m->npoison);
    ck_assert_int_eq(itest_int(k->db, "SELECT count(*) FROM "
                                      "processed_commands"),
                     m->nsent + m->nearly);
    /* producer retries are duplicates, never applied twice */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'outcome' ="
             " 'duplicate'",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), m->nretries);

    for (int f = 0; f < FM_FAMILIES; f++)
        for (int i = 0; i < FM_ITEMS; i++) {
            int64_t got;

            if (i < FM_SIMPLE)
                snprintf(sql, sizeof(sql),
                         "SELECT stock FROM products WHERE id = %d",
                         FM_SIMPLE * f + 1 + i);
            else
                snprintf(sql, sizeof(sql),
                         "SELECT stock FROM product_variants WHERE id = %d",
                         FM_VARIANT_ID(f, i - FM_SIMPLE + 1));
            got = itest_int(k->db, sql);
            ck_assert_msg(got == m->stock[f][i],
                          "family %d item %d: stock %lld, model %lld", f, i,
                          (long long)got, (long long)m->stock[f][i]);
        }
    for (int o = 0; o < m->norders; o++) {
        char id[37], got[32];

        fm_order_uuid(o, id);
        snprintf(sql, sizeof(sql), "SELECT status FROM orders WHERE id = '%s'",
                 id);
        itest_text(k->db, sql, got, sizeof(got));
        ck_assert_msg(strcmp(got, names[m->orders[o].state]) == 0,
                      "order %d: status '%s', model '%s'", o, got,
                      names[m->orders[o].state]);
    }
    itest_assert_stock_matches_ledger(k->db);
    ck_assert_msg(ktest_cli(k, check, &out) == 0, "orderd check: %s", out);
    free(out);
}

static inline const char *
fm_str(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));

    return s ? s : "";
}

/*
 * Every message's result against the model's prediction: outcome and
 * reason, for a duplicate the original's outcome, and no result that the
 * model did not predict (a second result for a command included). The
 * results are those the harness read from the events topic.
 */
static inline void
fm_verify_outcomes(fmodel_t *m)
{
    json_t *byk = json_object(), *ev, *list;
    size_t i;
    const char *key;

    /* the results of each dedup key, as read */
    json_array_foreach(m->k->results, i, ev)
    {
        const char *dk = fm_str(ev, "dedup_key");

        list = json_object_get(byk, dk);
        if (list == NULL)
            json_object_set_new(byk, dk, list = json_array());
        json_array_append(list, ev);
    }
    /* each prediction takes one matching result of its key */
    for (int e = 0; e < m->nexp; e++) {
        const fm_expect_t *x = &m->exp[e];
        int found = 0;

        list = json_object_get(byk, x->key);
        ck_assert_msg(list != NULL, "%s: no result, expected %s %s", x->key,
                      x->outcome, x->reason);
        json_array_foreach(list, i, ev)
        {
            json_t *det = json_object_get(ev, "details");

            if (strcmp(fm_str(ev, "outcome"), x->outcome) != 0 ||
                strcmp(fm_str(ev, "reason"), x->reason) != 0 ||
                (x->original[0] != '\0' &&
                 strcmp(fm_str(det, "original_outcome"), x->original) != 0))
                continue;
            json_array_remove(list, i);
            found = 1;
            break;
        }
        if (!found) {
            char *got = json_dumps(list, JSON_COMPACT);

            ck_abort_msg("%s: expected %s %s%s%s, results left: %s", x->key,
                         x->outcome, x->reason,
                         x->original[0] ? " of original " : "", x->original,
                         got);
        }
        /* a pay that raced its checkout may have been parked first */
        if (x->early)
            for (i = 0; i < json_array_size(list); i++)
                if (strcmp(fm_str(json_array_get(list, i), "outcome"),
                           "deferred") == 0) {
                    json_array_remove(list, i);
                    break;
                }
    }
    json_object_foreach(byk, key, list)
    {
        char *got = json_dumps(list, JSON_COMPACT);

        ck_assert_msg(json_array_size(list) == 0,
                      "%s: results the model did not predict: %s", key, got);
        free(got);
    }
    json_decref(byk);
}

/* Every event row of the outbox (results and domain events) arrived on the
 * events topic (read by the harness's consumer, deduplicated by event_id),
 * read up to the topic's end so that no extra result hides; then every
 * command's result against the model. Results and domain events sit on
 * different partitions, so the reader keeps reading until it has seen
 * every id or the timeout passes. */
static inline void
fm_verify_events(fmodel_t *m, int timeout_s)
{
    ktest_t *k = m->k;
    char sql[512], err[512];
    db_rows_t *rows = NULL;
    const char **ids;
    int n, missing;

    ck_assert_int_ge(
        ktest_wait_results(k, m->nmessages + m->nreleased, timeout_s),
        m->nmessages + m->nreleased);
    snprintf(sql, sizeof(sql), "SELECT event_id FROM outbox WHERE topic = '%s'",
             k->events);
    ck_assert_msg(db_query(k->db, sql, 0, NULL, &rows, err, sizeof(err)) ==
                      OD_OK,
                  "%s", err);
    n = db_nrows(rows);
    ids = calloc((size_t)n + 1, sizeof(*ids));
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < n; i++)
        ids[i] = db_val(rows, i, 0);
    missing = ktest_wait_seen(k, ids, timeout_s);
    free(ids);
    db_rows_free(rows);
    ck_assert_msg(missing == 0, "%d events of the outbox never reached %s",
                  missing, k->events);
    ktest_read_to_end(k, timeout_s);
    ck_assert_int_eq((int64_t)json_array_size(k->results),
                     m->nmessages + fm_released(m));
    fm_verify_outcomes(m);
}

/* --- processes, ports, private servers ------------------------------- */

/* 1 while the child is alive (not reaped, not exited). */
static inline int
fm_alive(pid_t pid)
{
    int status;

    return waitpid(pid, &status, WNOHANG) == 0;
}

/* A TCP port nobody listens on now (and, with pair, port+1 to port+3
 * too: a broker's controller, SASL and proxied listeners). */
static inline int
fm_free_port(int pair)
{
    return test_free_ports(pair ? 4 : 1);
}

/* The repository root, from the schema directory every test is built
 * with. */
static inline const char *
fm_repo(void)
{
    static char root[1024];
    char *slash;

    snprintf(root, sizeof(root), "%s", ORDERD_SCHEMA_DIR);
    slash = strrchr(root, '/');
    if (slash != NULL)
        *slash = '\0';
    return root;
}

/* Runs `scripts/<script> <verb>` with the private env; output appended to
 * <run_dir>/script.log. Returns the exit status. */
static inline int
fm_script(const char *run_dir, const char *port_var, int port,
          const char *script, const char *verb)
{
    char cmd[2048];
    int rc;

    /* scripts/test exports its own ports (the controller's too): every
     * port the script uses is set here */
    snprintf(cmd, sizeof(cmd),
             "ORDERD_RUN_DIR='%s' %s=%d ORDERD_KAFKA_CONTROLLER_PORT=%d"
             " ORDERD_KAFKA_SASL_PORT=%d"
             " '%s/scripts/%s' %s >>'%s/script.log' 2>&1 </dev/null",
             run_dir, port_var, port, port + 1, port + 2, fm_repo(), script,
             verb, run_dir);
    rc = system(cmd);
    if (rc != 0) {
        char tail[1200];

        snprintf(tail, sizeof(tail), "tail -n 20 '%s/script.log' >&2", run_dir);
        if (system(tail) != 0)
            fprintf(stderr, "(no script log)\n");
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Prints the last lines of a worker's log that are not about poison
 * messages (the stream sends many on purpose) to stderr: called as a
 * private run dir is removed, so a failed run's output says what the
 * worker saw, and the test's own assertion is not buried under it. */
static inline void
fm_log_tail(const char *label, const char *path)
{
    char cmd[1200];

    fprintf(stderr, "--- %s: last lines of %s (poison lines left out)\n", label,
            path);
    fflush(stderr);
    snprintf(cmd, sizeof(cmd),
             "grep -v 'poison message' '%s' 2>/dev/null | tail -n 25 >&2",
             path);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

/* Points the harness at the private cluster of run_dir, as `scripts/pg env`
 * describes it: ORDERD_TEST_PG (runtime role), ORDERD_TEST_MIGRATE_PG
 * (owner) and PGPASSFILE (their passwords) for this process and the
 * workers it starts. */
static inline void
fm_pg_use(const char *run_dir, int port)
{
    static const char *const map[][2] = {
        {"PGPASSFILE", "PGPASSFILE"},
        {"ORDERD_PG", "ORDERD_TEST_PG"},
        {"ORDERD_MIGRATE_PG", "ORDERD_TEST_MIGRATE_PG"}};
    char cmd[2048], line[2048], prefix[64];
    int found = 0;
    FILE *f;

    snprintf(cmd, sizeof(cmd),
             "ORDERD_RUN_DIR='%s' ORDERD_PG_PORT=%d '%s/scripts/pg' env",
             run_dir, port, fm_repo());
    f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "popen: %s", strerror(errno));
    /* lines of the form: export NAME='value' */
    while (fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            size_t n = (size_t)snprintf(prefix, sizeof(prefix), "export %s='",
                                        map[i][0]);
            char *end;

            if (strncmp(line, prefix, n) != 0 ||
                (end = strrchr(line + n, '\'')) == NULL)
                continue;
            *end = '\0';
            setenv(map[i][1], line + n, 1);
            found++;
        }
    }
    ck_assert_msg(pclose(f) == 0 && found == 3,
                  "scripts/pg env for %s gave %d of 3 variables", run_dir,
                  found);
}

/* GET path from 127.0.0.1:port; returns the HTTP status (0 when nothing
 * answers) and the body in buf. */
static inline int
fm_http_get(int port, const char *path, char *buf, size_t len)
{
    struct sockaddr_in sin;
    char req[1200];
    size_t n = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
    const char *body;

    buf[0] = '\0';
    if (fd < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return 0;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
             path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
        return 0;
    body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

/* One metric's value from /metrics (-1 when absent or unreachable). */
static inline long long
fm_metric(int port, const char *name)
{
    char buf[65536], pat[160];
    const char *p;

    if (fm_http_get(port, "/metrics", buf, sizeof(buf)) != 200)
        return -1;
    snprintf(pat, sizeof(pat), "\n%s ", name);
    p = strstr(buf, pat);
    return p != NULL ? atoll(p + strlen(pat)) : -1;
}

/* Polls /readyz until it answers `status` (200 or 503) or timeout;
 * returns 1 when it did. */
static inline int
fm_wait_ready(int port, int status, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    char buf[512];

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (fm_http_get(port, "/readyz", buf, sizeof(buf)) == status)
            return 1;
        if (od_mono_us() >= end)
            return 0;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

#endif
