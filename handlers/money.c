/* money.c - integer money arithmetic: line totals, sums and tax
 *
 * DESIGN: the tax splits the subtotal as q * 10000 + r and the rate as
 * a * 10000 + b, so that subtotal * rate / 10000 = q * rate + r * a +
 * r * b / 10000 exactly; only the last term needs rounding, and r * b is
 * under 10^8. Every term is non-negative and at most the result, so a
 * step overflows exactly when the result does not fit in int64: never for
 * rates up to 10000 bps, and for larger rates only when it must (the rate
 * has to be split too: r * rate alone overflows for a small subtotal and
 * a huge rate whose tax still fits).
 */
#include "money.h"

#include <stddef.h>

#define MONEY_BPS 10000

int
money_tax_cents(int64_t subtotal_cents, int64_t rate_bps, int64_t *out)
{
    int64_t q, r, a, b, whole, mixed, sum;

    if (subtotal_cents < 0 || rate_bps < 0)
        return -1;
    q = subtotal_cents / MONEY_BPS;
    r = subtotal_cents % MONEY_BPS;
    a = rate_bps / MONEY_BPS;
    b = rate_bps % MONEY_BPS;
    if (__builtin_mul_overflow(q, rate_bps, &whole) ||
        __builtin_mul_overflow(r, a, &mixed) ||
        __builtin_add_overflow(whole, mixed, &sum))
        return -1;
    /* round half up: floor((r * b + 5000) / 10000), all non-negative */
    if (__builtin_add_overflow(sum, (r * b + MONEY_BPS / 2) / MONEY_BPS, out))
        return -1;
    return 0;
}

int
money_line_total(int64_t unit_cents, int64_t qty, int64_t *out)
{
    if (unit_cents < 0 || qty < 0)
        return -1;
    return __builtin_mul_overflow(unit_cents, qty, out) ? -1 : 0;
}

int
money_add(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return -1;
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

static int
upper_letters(const char *s, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    return s[n] == '\0';
}

int
money_currency_valid(const char *s)
{
    return s != NULL && upper_letters(s, 3);
}

int
money_country_valid(const char *s)
{
    return s != NULL && upper_letters(s, 2);
}
