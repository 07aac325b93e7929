/*
 * num_oracle.c: the original, slow but obviously correct number routines, kept as test oracles for parser/num.c.
 * Parsing validates Go's ParseFloat syntax by hand and lets the C library's correctly rounded strtod convert
 * (the whole literal, however long: the fixed buffer the first version used lost the sticky digit of long tails);
 * formatting finds the shortest round-trip digits by trying printf precisions 1..17 and checking each with strtod.
 * Also the exact (bignum) powers of five that parser/num_pow5.h must hold.
 */
#include "num_oracle.h"

#include <assert.h>
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

int fy_oracle_parse_float(const char *s, size_t n, double *out)
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
    /* glibc's strtod is exact for literals of any length, so the oracle hands it the whole one. */
    char *buf = malloc(n + 1);
    assert(buf != NULL);
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    int bad = *end != '\0';
    free(buf);
    if (bad)
        return -1;
    if (errno == ERANGE && isinf(v))
        return -1; /* Go: ErrRange on overflow; underflow to 0 or a subnormal is fine */
    *out = v;
    return 0;
}

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

size_t fy_oracle_format_float_g(double v, char *out)
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

size_t fy_oracle_format_float_f(double v, char *out)
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

/* ------------------------------------------------------------------------------------------------------------- */
/* Exact powers of five with a little bignum (32-bit limbs, enough for 2^1600). */

enum { BN_LIMBS = 52 };

typedef struct {
    uint32_t w[BN_LIMBS]; /* little-endian limbs */
} bignum_t;

static int bn_bits(const bignum_t *a)
{
    for (int i = BN_LIMBS - 1; i >= 0; i--)
        if (a->w[i])
            return i * 32 + 32 - __builtin_clz(a->w[i]);
    return 0;
}

static int bn_bit(const bignum_t *a, int i)
{
    return (int)(a->w[i / 32] >> (i % 32)) & 1;
}

static void bn_mul_small(bignum_t *a, uint32_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < BN_LIMBS; i++) {
        uint64_t t = (uint64_t)a->w[i] * m + carry;
        a->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    assert(carry == 0);
}

static int bn_cmp(const bignum_t *a, const bignum_t *b)
{
    for (int i = BN_LIMBS - 1; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

static void bn_sub(bignum_t *a, const bignum_t *b)
{
    int64_t borrow = 0;
    for (int i = 0; i < BN_LIMBS; i++) {
        int64_t t = (int64_t)a->w[i] - b->w[i] - borrow;
        borrow = t < 0;
        a->w[i] = (uint32_t)(t + (borrow ? (int64_t)1 << 32 : 0));
    }
    assert(borrow == 0);
}

static void bn_shl1(bignum_t *a, int in)
{
    uint32_t carry = (uint32_t)in;
    for (int i = 0; i < BN_LIMBS; i++) {
        uint32_t nc = a->w[i] >> 31;
        a->w[i] = (a->w[i] << 1) | carry;
        carry = nc;
    }
    assert(carry == 0);
}

void fy_oracle_pow5(int j, uint64_t *hi, uint64_t *lo)
{
    bignum_t p = {{1}};
    for (int i = 0; i < (j < 0 ? -j : j); i++)
        bn_mul_small(&p, 5);
    int pb = bn_bits(&p);
    unsigned __int128 r = 0;
    if (j >= 0) {
        /* The top 128 bits of 5^j, truncated; shifted up when 5^j is shorter. */
        for (int i = pb - 1, k = 0; k < 128; i--, k++)
            r = (r << 1) | (unsigned)(i >= 0 ? bn_bit(&p, i) : 0);
    } else {
        /* floor(2^(pb + 127) / 5^-j) lies in (2^127, 2^128): restoring division, one quotient bit at a time. */
        bignum_t rem = {{0}};
        for (int i = pb + 127; i >= 0; i--) {
            bn_shl1(&rem, i == pb + 127);
            int q = bn_cmp(&rem, &p) >= 0;
            if (q)
                bn_sub(&rem, &p);
            if (i < 128)
                r = (r << 1) | (unsigned)q;
        }
    }
    assert(r >> 127 == 1);
    *hi = (uint64_t)(r >> 64);
    *lo = (uint64_t)r;
}
