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
#include <stdio.h>
#include <string.h>

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

/* ISO 4217 currencies whose minor unit is not a hundredth */
static const struct {
    char code[4];
    int exponent;
} money_exponents[] = {
    {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0},
    {"KMF", 0}, {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0},
    {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"BHD", 3},
    {"IQD", 3}, {"JOD", 3}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"TND", 3},
    {"CLF", 4}, {"UYW", 4},
};

int
money_currency_exponent(const char *currency)
{
    for (size_t i = 0; currency != NULL &&
                       i < sizeof(money_exponents) / sizeof(money_exponents[0]);
         i++)
        if (strcmp(money_exponents[i].code, currency) == 0)
            return money_exponents[i].exponent;
    return 2;
}

const char *
money_format(int64_t minor, const char *currency, char *buf, size_t len)
{
    int e = money_currency_exponent(currency);
    /* the magnitude as unsigned: INT64_MIN has no positive counterpart */
    uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    uint64_t scale = 1;

    for (int i = 0; i < e; i++)
        scale *= 10;
    if (e == 0)
        snprintf(buf, len, "%s%llu %s", minor < 0 ? "-" : "",
                 (unsigned long long)mag, currency ? currency : "");
    else
        snprintf(buf, len, "%s%llu.%0*llu %s", minor < 0 ? "-" : "",
                 (unsigned long long)(mag / scale), e,
                 (unsigned long long)(mag % scale), currency ? currency : "");
    return buf;
}
