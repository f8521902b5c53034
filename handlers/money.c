/* money.c - integer money arithmetic: line totals, sums and tax
 *
 * DESIGN: the tax splits the subtotal as q * 10000 + r, so that
 * subtotal * rate / 10000 = q * rate + r * rate / 10000 exactly; only the
 * second term needs rounding, and neither product overflows for rates up
 * to 10000 bps (r * rate < 10^8, q * rate <= subtotal). Larger rates are
 * still exact, with every step overflow-checked.
 */
#include "money.h"

#include <stddef.h>

#define MONEY_BPS 10000

int
money_tax_cents(int64_t subtotal_cents, int64_t rate_bps, int64_t *out)
{
    int64_t q, r, whole, part;

    if (subtotal_cents < 0 || rate_bps < 0)
        return -1;
    q = subtotal_cents / MONEY_BPS;
    r = subtotal_cents % MONEY_BPS;
    if (__builtin_mul_overflow(q, rate_bps, &whole) ||
        __builtin_mul_overflow(r, rate_bps, &part) ||
        __builtin_add_overflow(part, MONEY_BPS / 2, &part))
        return -1;
    /* round half up: floor((r * rate + 5000) / 10000), all non-negative */
    if (__builtin_add_overflow(whole, part / MONEY_BPS, out))
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
