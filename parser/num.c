/*
 * num.c: numbers with Go's strconv semantics (see fy_num.h).
 *
 * Parsing validates Go's syntax by hand and lets the C library do the correctly rounded conversion; formatting
 * finds the shortest round-trip digits and lays them out as Go's 'g' and 'f' formats do.
 */
#include "fy_num.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

/* Checks the decimal syntax Go's readFloat accepts (base 10, no underscores). */
static int decimal_syntax_ok(const char *s, size_t n)
{
    size_t i = 0;
    int digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits = 1;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits = 1;
        }
    }
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        int edigits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            edigits = 1;
        }
        if (!edigits)
            return 0;
    }
    return i == n;
}

/*
 * Copies a validated decimal literal into a NUL-terminated buffer for strtod. Literals longer than the buffer keep
 * their first significant digits plus one sticky non-zero digit when anything non-zero was cut: more than 800
 * significant digits never change a correctly rounded double, and the sticky digit keeps exact halfway cases on the
 * right side.
 */
static int copy_for_strtod(const char *s, size_t n, char *buf, size_t cap)
{
    if (n < cap) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        return 0;
    }
    enum { KEEP = 800 };
    size_t i = 0, o = 0;
    long dexp = 0; /* decimal exponent adjustment for dropped integer digits */
    if (s[i] == '+' || s[i] == '-')
        buf[o++] = s[i++];
    int sig = 0, sticky = 0, seen_point = 0;
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        char c = s[i];
        if (c == '.') {
            if (!seen_point && o < cap - 40)
                buf[o++] = '.';
            seen_point = 1;
            continue;
        }
        if (sig == 0 && c == '0') {
            if (o < cap - 40)
                buf[o++] = c;
            continue; /* leading zeros are not significant */
        }
        if (sig < KEEP && o < cap - 40) {
            buf[o++] = c;
            sig++;
        } else {
            if (c != '0')
                sticky = 1;
            if (!seen_point)
                dexp++;
        }
    }
    if (sticky && o < cap - 40) {
        if (!seen_point) {
            /* A sticky digit must go after the point so it does not scale the value. */
            buf[o++] = '.';
            seen_point = 1;
        }
        buf[o++] = '1';
    }
    long e = 0;
    if (i < n) {
        i++;
        int neg = 0;
        if (s[i] == '+' || s[i] == '-')
            neg = s[i++] == '-';
        for (; i < n; i++)
            if (e < 100000000)
                e = e * 10 + (s[i] - '0');
        if (neg)
            e = -e;
    }
    e += dexp;
    o += (size_t)snprintf(buf + o, cap - o, "e%ld", e);
    return o < cap ? 0 : -1;
}

int fy_parse_float(const char *s, size_t n, double *out)
{
    *out = 0;
    if (n == 0)
        return -1;
    /* Specials: Go's special() takes an optional sign before inf/infinity, none before nan. */
    {
        const char *p = s;
        size_t m = n;
        int neg = 0;
        if (*p == '+' || *p == '-') {
            neg = *p == '-';
            p++;
            m--;
        }
        if (ieq(p, m, "inf") || ieq(p, m, "infinity")) {
            *out = neg ? -INFINITY : INFINITY;
            return 0;
        }
        if (p == s && ieq(p, m, "nan")) {
            *out = NAN;
            return 0;
        }
    }
    if (!decimal_syntax_ok(s, n))
        return -1;
    char buf[1024];
    if (copy_for_strtod(s, n, buf, sizeof(buf)) != 0)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end != '\0')
        return -1;
    if (errno == ERANGE && isinf(v))
        return -1; /* Go: ErrRange on overflow; underflow to 0 or a subnormal is fine */
    *out = v;
    return 0;
}

int fy_parse_int64(const char *s, size_t n, int64_t *out)
{
    *out = 0;
    size_t i = 0;
    int neg = 0;
    if (n == 0)
        return -1;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return -1;
    uint64_t v = 0;
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return -1;
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Formatting. */

/* Shortest decimal digits d[0..nd) and point position dp (v = 0.d * 10^dp) of a finite, positive v that parse
 * back to v; among the shortest, the one closest to v (as Go's Ryu-based shortest mode picks). */
static int shortest_digits(double v, char *d, int *dp)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) != v) {
            /* The correctly rounded prec-digit decimal misses v's rounding interval; at an asymmetric interval
             * (v a power of two) its neighbour one unit up may still hit it. */
            char nb[40];
            char *e = strchr(buf, 'e');
            long ex = strtol(e + 1, NULL, 10);
            char dig[24];
            int nd = 0;
            for (char *p = buf; p < e; p++)
                if (*p >= '0' && *p <= '9')
                    dig[nd++] = *p;
            int i = nd - 1;
            while (i >= 0 && dig[i] == '9')
                dig[i--] = '0';
            if (i < 0) {
                memmove(dig + 1, dig, (size_t)nd);
                dig[0] = '1';
                ex++;
            } else {
                dig[i]++;
            }
            dig[nd] = '\0';
            snprintf(nb, sizeof(nb), "%c.%se%ld", dig[0], dig + 1, ex);
            if (strtod(nb, NULL) != v)
                continue;
            memcpy(buf, nb, sizeof(nb));
        }
        char *e = strchr(buf, 'e');
        int nd = 0;
        for (char *p = buf; p < e; p++)
            if (*p >= '0' && *p <= '9')
                d[nd++] = *p;
        while (nd > 1 && d[nd - 1] == '0')
            nd--;
        *dp = (int)strtol(e + 1, NULL, 10) + 1;
        return nd;
    }
    return 0; /* not reached: 17 digits always round-trip */
}

static size_t special(double v, char *out, const char *pinf)
{
    if (isnan(v))
        return (size_t)sprintf(out, "NaN");
    if (isinf(v))
        return (size_t)sprintf(out, "%s", v > 0 ? pinf : "-Inf");
    return 0;
}

static size_t fmt_f(int neg, const char *d, int nd, int dp, char *out)
{
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (dp > 0) {
        for (int i = 0; i < dp; i++)
            out[o++] = i < nd ? d[i] : '0';
    } else {
        out[o++] = '0';
    }
    if (nd > dp) {
        out[o++] = '.';
        for (int i = dp; i < nd; i++)
            out[o++] = i < 0 ? '0' : d[i];
    }
    out[o] = '\0';
    return o;
}

size_t fy_format_float_g(double v, char *out)
{
    size_t n = special(v, out, "+Inf");
    if (n)
        return n;
    int neg = signbit(v) != 0;
    if (v == 0)
        return (size_t)sprintf(out, neg ? "-0" : "0");
    char d[24];
    int dp;
    int nd = shortest_digits(fabs(v), d, &dp);
    int exp = dp - 1;
    if (exp < -4 || exp >= 6) {
        size_t o = 0;
        if (neg)
            out[o++] = '-';
        out[o++] = d[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        out[o++] = 'e';
        out[o++] = exp < 0 ? '-' : '+';
        int a = exp < 0 ? -exp : exp;
        if (a < 10) {
            out[o++] = '0';
            out[o++] = (char)('0' + a);
        } else if (a < 100) {
            out[o++] = (char)('0' + a / 10);
            out[o++] = (char)('0' + a % 10);
        } else {
            out[o++] = (char)('0' + a / 100);
            out[o++] = (char)('0' + a / 10 % 10);
            out[o++] = (char)('0' + a % 10);
        }
        out[o] = '\0';
        return o;
    }
    return fmt_f(neg, d, nd, dp, out);
}

size_t fy_format_float_f(double v, char *out)
{
    size_t n = special(v, out, "+Inf");
    if (n)
        return n;
    int neg = signbit(v) != 0;
    if (v == 0)
        return (size_t)sprintf(out, neg ? "-0" : "0");
    char d[24];
    int dp;
    int nd = shortest_digits(fabs(v), d, &dp);
    return fmt_f(neg, d, nd, dp, out);
}

size_t fy_format_float_text(double v, char *out)
{
    if (v == 1)
        return (size_t)sprintf(out, "1");
    if (v == 0)
        return (size_t)sprintf(out, "0");
    if (v == -1)
        return (size_t)sprintf(out, "-1");
    return fy_format_float_g(v, out);
}

size_t fy_format_float_json(double v, char *out)
{
    return fy_format_float_g(v, out);
}

size_t fy_format_uint64(uint64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}
