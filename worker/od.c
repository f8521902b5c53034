/* od.c - time, UUID, error-buffer and escaping helpers */
#define _POSIX_C_SOURCE 200809L
#include "od.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void
od_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int64_t
od_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
od_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *
od_format_time(int64_t us, char *buf, size_t len)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    char base[32];

    if (us < 0)
        secs = 0, us = 0;
    /* past what struct tm holds (a hostile timestamp): say so */
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "(out of range)");
        return buf;
    }
    snprintf(buf, len, "%s.%03dZ", base, (int)((us % 1000000) / 1000));
    return buf;
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant) */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int
od_parse_time(const char *s, int64_t *out_us)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac_us = 0, off = 0;
    const char *p = s;

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    if (*p == '.') {
        int scale = 100000, n = 0;

        p++;
        while (isdigit((unsigned char)*p)) {
            frac_us += (*p - '0') * scale;
            scale /= 10;
            p++;
            n++;
        }
        if (n == 0)
            return -1;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;

        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    if (sec == 60)
        sec = 59; /* a leap second is judged as the second before it */
    *out_us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                (int64_t)off * 60) *
               1000000) +
              frac_us;
    return 0;
}

void
od_uuid_v4(char out[37])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

        if (n > 0)
            got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

int
od_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[36] == '\0';
}

/*
 * Length of the well-formed, printable UTF-8 sequence starting at p (a
 * non-ASCII lead byte), or 0. The ranges are RFC 3629's: no overlong
 * forms, no surrogates, nothing past U+10FFFF. The C1 controls
 * (U+0080..U+009F, C2 80..C2 9F) count as not printable: some terminals
 * act on them as on ESC sequences.
 */
static size_t
utf8_printable_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (p[0] == 0xc2)
        lo = 0xa0;
    else if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    /* a NUL is not a continuation byte, so this never reads past it */
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

char *
od_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    if (outlen == 0)
        return out;
    while (*p != '\0') {
        char esc[4];
        const char *piece = esc;
        size_t n, take = 1;

        if (*p == '\\' || *p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\';
            esc[1] = *p == '\\'   ? '\\'
                     : *p == '\n' ? 'n'
                     : *p == '\r' ? 'r'
                                  : 't';
            n = 2;
        } else if (*p >= 0x20 && *p < 0x7f) {
            piece = (const char *)p;
            n = 1;
        } else if (*p >= 0x80 && (take = utf8_printable_len(p)) > 0) {
            piece = (const char *)p;
            n = take;
        } else {
            /* control byte, or a byte that does not start well-formed
             * UTF-8: shown alone, the scan resumes at the next byte */
            take = 1;
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[*p >> 4];
            esc[3] = hex[*p & 0xf];
            n = 4;
        }
        if (o + n >= outlen)
            break;
        memcpy(out + o, piece, n);
        o += n;
        p += take;
    }
    out[o] = '\0';
    return out;
}

static int
lower_hex(const char *s, size_t n, int *all_zero)
{
    *all_zero = 1;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        if (s[i] != '0')
            *all_zero = 0;
    }
    return 1;
}

int
od_traceparent_valid(const void *v, size_t len)
{
    const char *s = v;
    int zero;

    if (s == NULL || len != OD_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' ||
        s[52] != '-')
        return 0;
    if (!lower_hex(s, 2, &zero) || (s[0] == 'f' && s[1] == 'f'))
        return 0;
    if (!lower_hex(s + 3, 32, &zero) || zero)
        return 0;
    if (!lower_hex(s + 36, 16, &zero) || zero)
        return 0;
    return lower_hex(s + 53, 2, &zero);
}
