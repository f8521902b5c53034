/* money.h - integer money arithmetic: line totals, sums and tax, all
 * overflow-checked, plus the currency and country code formats */
#ifndef OD_MONEY_H
#define OD_MONEY_H

#include <stddef.h>
#include <stdint.h>

/*
 * tax = round-half-up(subtotal_cents * rate_bps / 10000), exact in
 * integers (no floating point, no intermediate overflow). Returns 0 with
 * *out set, or -1 when an argument is negative or the result does not fit
 * in int64 (only possible for rates above 10000 bps).
 */
int money_tax_cents(int64_t subtotal_cents, int64_t rate_bps, int64_t *out)
    __attribute__((warn_unused_result));

/* unit * qty; 0, or -1 on a negative argument or overflow */
int money_line_total(int64_t unit_cents, int64_t qty, int64_t *out)
    __attribute__((warn_unused_result));

/* a + b; 0, or -1 on a negative argument or overflow */
int money_add(int64_t a, int64_t b, int64_t *out)
    __attribute__((warn_unused_result));

/* 1 if s is a currency code: exactly 3 upper-case ASCII letters */
int money_currency_valid(const char *s);

/* 1 if s is a country code: exactly 2 upper-case ASCII letters */
int money_country_valid(const char *s);

/*
 * The number of minor-unit digits of a currency (ISO 4217): 0 for JPY,
 * KRW and the other currencies without a minor unit, 3 for BHD, KWD and
 * the like, 2 for every other code. Amounts are kept in minor units
 * whatever the currency (the contract's *_cents fields); this says only
 * how to show them.
 */
int money_currency_exponent(const char *currency);

/*
 * Formats minor units as major units with the currency's exponent
 * ("1234", "EUR" -> "12.34 EUR"; "1234", "JPY" -> "1234 JPY"; negative
 * amounts get a leading minus) into buf (at least 40 bytes). Returns buf.
 */
const char *money_format(int64_t minor, const char *currency, char *buf,
                         size_t len);

#endif
