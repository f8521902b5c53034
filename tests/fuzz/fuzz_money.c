/* fuzz_money.c - fuzz target: the money math (tax rounding, line totals,
 * sums, order totals, currency and country codes) against a 128-bit
 * reference
 *
 * DESIGN: the input is a stream of records, each an opcode byte and its
 * operands; operands are 8 little-endian bytes, or 2 when the opcode's
 * "small" bit says so (so that the small subtotals and quantities of real
 * orders are as easy to reach as the extremes). Every operation is
 * recomputed in __int128, where nothing a valid call can produce
 * overflows, and the properties are the header's promises: the result is
 * exact, rounding is half up, and -1 comes back exactly when an argument
 * is negative or the true result leaves int64, never otherwise.
 */
#include <string.h>

#include "../../handlers/checkout.h"
#include "../../handlers/money.h"
#include "fuzz.h"

enum { OP_TAX = 0, OP_LINE_TOTAL, OP_ADD, OP_TOTALS, OP_CODES, OP_N };

/* the opcode byte: bits 0-3 the operation (modulo OP_N), 4-5 the operand
 * sizes, 6-7 (OP_TOTALS) the number of groups */
#define OP_SMALL_A 0x10 /* the first operand is 2 bytes, 0..65535 */
#define OP_SMALL_B 0x20 /* the second operand is 2 bytes */
#define TOTALS_MAX_GROUPS 8

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

/* n bytes little-endian, zero when the input runs out */
static int64_t
take(reader_t *r, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        uint64_t b = 0;

        if (r->left > 0) {
            b = *r->p++;
            r->left--;
        }
        v |= b << (8 * i);
    }
    return (int64_t)v; /* two's complement on every target gcc and clang */
}

static int64_t
take_operand(reader_t *r, int small)
{
    return take(r, small ? 2 : 8);
}

static int
fits(__int128 v)
{
    return v >= INT64_MIN && v <= INT64_MAX;
}

/* round-half-up(s * rate / 10000) for s, rate >= 0 */
static __int128
ref_tax(int64_t s, int64_t rate)
{
    return ((__int128)s * rate + 5000) / 10000;
}

static void
check_tax(int64_t s, int64_t rate)
{
    int64_t out = 0;
    int rc = money_tax_cents(s, rate, &out);
    __int128 ref, miss;

    if (s < 0 || rate < 0) {
        FUZZ_CHECK(rc == -1);
        return;
    }
    ref = ref_tax(s, rate);
    FUZZ_CHECK(rc == (fits(ref) ? 0 : -1));
    if (rc != 0)
        return;
    FUZZ_CHECK(out == (int64_t)ref);
    /* half up, said another way: the true tax minus the rounded one is in
     * [-1/2, 1/2) cent (in units of 1/20000 cent, to stay in integers) */
    miss = (__int128)s * rate * 2 - (__int128)out * 20000;
    FUZZ_CHECK(miss >= -10000 && miss < 10000);
}

static void
check_line_total(int64_t unit, int64_t qty)
{
    int64_t out = 0;
    int rc = money_line_total(unit, qty, &out);
    __int128 ref = (__int128)unit * qty;

    FUZZ_CHECK(rc == (unit >= 0 && qty >= 0 && fits(ref) ? 0 : -1));
    if (rc == 0)
        FUZZ_CHECK(out == (int64_t)ref);
}

static void
check_add(int64_t a, int64_t b)
{
    int64_t out = 0;
    int rc = money_add(a, b, &out);
    __int128 ref = (__int128)a + b;

    FUZZ_CHECK(rc == (a >= 0 && b >= 0 && fits(ref) ? 0 : -1));
    if (rc == 0)
        FUZZ_CHECK(out == (int64_t)ref);
}

/* checkout_totals over up to 8 groups: "overflow anywhere" is -1, and only
 * then (all terms are non-negative, so the partial sums cannot overflow
 * unless the whole does). */
static void
check_totals(reader_t *r, uint8_t op)
{
    static checkout_cmd_t cmd; /* large: keep it off the stack */
    checkout_state_t states[TOTALS_MAX_GROUPS];
    int n = 1 + (op >> 6) + 4 * (int)(take(r, 1) & 1);
    int64_t rate = take_operand(r, op & OP_SMALL_B);
    int64_t sub = -1, tax = -1, total = -1;
    __int128 rsub = 0, rtax = 0;
    int valid = rate >= 0, ok, rc;

    memset(&cmd, 0, sizeof(cmd));
    memset(states, 0, sizeof(states));
    cmd.ngroups = n;
    for (int i = 0; i < n; i++) {
        states[i].price_cents = take_operand(r, op & OP_SMALL_A);
        cmd.groups[i].quantity = take(r, 2);
        if (states[i].price_cents < 0)
            valid = 0;
        rsub += (__int128)states[i].price_cents * cmd.groups[i].quantity;
    }
    rc = checkout_totals(&cmd, states, rate, &sub, &tax, &total);
    if (!valid) {
        FUZZ_CHECK(rc == -1);
        return;
    }
    ok = fits(rsub);
    if (ok) {
        rtax = ref_tax((int64_t)rsub, rate);
        ok = fits(rtax) && fits(rsub + rtax);
    }
    FUZZ_CHECK(rc == (ok ? 0 : -1));
    if (rc == 0) {
        FUZZ_CHECK(sub == (int64_t)rsub);
        FUZZ_CHECK(tax == (int64_t)rtax);
        FUZZ_CHECK(total == sub + tax);
    }
}

/* A code is exactly n upper-case ASCII letters: the reference reads the
 * whole string, the checker may stop early. */
static int
ref_code(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    return 1;
}

static void
check_codes(reader_t *r)
{
    char s[6];
    size_t n = (size_t)take(r, 1) % sizeof(s);

    for (size_t i = 0; i < n; i++)
        s[i] = (char)take(r, 1);
    s[n] = '\0';
    FUZZ_CHECK(!!money_currency_valid(s) == ref_code(s, 3));
    FUZZ_CHECK(!!money_country_valid(s) == ref_code(s, 2));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};

    while (r.left > 0) {
        uint8_t op = (uint8_t)take(&r, 1);
        int64_t a, b;

        switch ((op & 0x0f) % OP_N) {
        case OP_TAX:
            a = take_operand(&r, op & OP_SMALL_A);
            b = take_operand(&r, op & OP_SMALL_B);
            check_tax(a, b);
            break;
        case OP_LINE_TOTAL:
            a = take_operand(&r, op & OP_SMALL_A);
            b = take_operand(&r, op & OP_SMALL_B);
            check_line_total(a, b);
            break;
        case OP_ADD:
            a = take_operand(&r, op & OP_SMALL_A);
            b = take_operand(&r, op & OP_SMALL_B);
            check_add(a, b);
            break;
        case OP_TOTALS:
            check_totals(&r, op);
            break;
        case OP_CODES:
            check_codes(&r);
            break;
        }
    }
    return 0;
}
