/*
 * num.c: numbers with Go's strconv semantics (see fy_num.h), on the hot paths of every push and every scrape.
 *
 * Parsing does one pass over the literal that both checks Go's ParseFloat syntax and collects up to 19 significant
 * digits. Most values then take Clinger's exact fast path (mantissa <= 2^53, |exponent| <= 22: one correctly
 * rounded multiply or divide) or the Eisel-Lemire algorithm (a 64x128-bit product with a truncated power of five,
 * which either proves its rounding or gives up). Everything else (more digits, subnormals, the rare ambiguous
 * product) falls back to the C library's correctly rounded strtod.
 *
 * Formatting uses Schubfach (R. Giulietti, "The Schubfach way to render doubles"): with k chosen so that the
 * rounding interval of v, scaled by 10^-k, is between 1 and 10 wide, the shortest decimal in it is either the one
 * multiple of ten it may hold, or one of floor(v*10^-k) and the next integer, the closer one (ties to even). The
 * scaled values come from one 128-bit power of five with round-to-odd, which the paper proves is enough to decide
 * every comparison exactly. That is Go's rule too (shortest digits, closest to v among the shortest); the tests
 * hold it to Go's own output and to the slow printf/strtod search this file used to do (tests/num_oracle.c).
 */
#include "fy_num.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FY__POW5_DEFINE
#include "num_pow5.h"

typedef unsigned __int128 u128;

/* ------------------------------------------------------------------------------------------------------------- */
/* Parsing. */

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

/* Go's special(): an optional sign before inf/infinity, none before nan; any case. */
static int parse_special(const char *s, size_t n, double *out)
{
    const char *p = s;
    size_t m = n;
    int neg = 0;
    if (m && (*p == '+' || *p == '-')) {
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
    return -1;
}

/*
 * Copies a syntactically valid decimal literal into a NUL-terminated buffer for strtod. Literals that do not fit
 * are rewritten as "<digits>e<exp>" with their first 800 significant digits, plus one sticky digit 1 when anything
 * non-zero was cut: every rounding boundary between doubles has fewer than 800 significant digits, so a value
 * strictly between two 800-digit neighbours rounds as the full literal does, including exact ties broken by a far
 * digit.
 */
static int copy_for_strtod(const char *s, size_t n, char *buf, size_t cap)
{
    enum { KEEP = 800 };
    if (n < cap) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        return 0;
    }
    assert(cap >= KEEP + 40);
    size_t i = 0, o = 0;
    if (s[i] == '+' || s[i] == '-')
        buf[o++] = s[i++];
    int64_t dexp = 0; /* the value is <kept digits> * 10^dexp, plus what was cut */
    int kept = 0, sticky = 0, point = 0;
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            point = 1;
        } else if (kept == 0 && s[i] == '0') {
            dexp -= point;
        } else if (kept < KEEP) {
            buf[o++] = s[i];
            kept++;
            dexp -= point;
        } else {
            sticky |= s[i] != '0';
            dexp += !point;
        }
    }
    if (kept == 0)
        buf[o++] = '0';
    if (sticky) {
        buf[o++] = '1';
        dexp--;
    }
    int64_t e = 0;
    if (i < n) {
        int neg = 0;
        if (s[++i] == '+' || s[i] == '-')
            neg = s[i++] == '-';
        for (; i < n; i++)
            if (e < 1000000000)
                e = e * 10 + (s[i] - '0');
        dexp += neg ? -e : e;
    }
    o += (size_t)snprintf(buf + o, cap - o, "e%lld", (long long)dexp);
    return o < cap ? 0 : -1;
}

/* The slow path for a literal whose syntax is already checked. */
static int parse_strtod(const char *s, size_t n, double *out)
{
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

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Eisel-Lemire: w * 10^q for w != 0 and q in [FY__POW5_MIN, 308]. Returns 1 with the double's bits, 0 when the
 * truncated product cannot decide the rounding or the result is subnormal (the caller falls back to strtod), -1 on
 * overflow.
 *
 * w is normalised to [2^63, 2^64) and multiplied by 5^q normalised to [2^127, 2^128); the top 54 bits of the
 * product are the mantissa plus a rounding bit, and 2^q comes in through the binary exponent. The table holds
 * 5^q truncated, so the product is a lower bound that is off by less than one unit of its low word.
 */
static int eisel_lemire(uint64_t w, int q, uint64_t *bits)
{
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *p = fy__num_pow5[q - FY__POW5_MIN];
    u128 z = (u128)w * p[0];
    uint64_t hi = (uint64_t)(z >> 64), lo = (uint64_t)z;
    if ((hi & 0x1FF) == 0x1FF) {
        /* The discarded bits are all ones: a carry from below would change the mantissa. Add the low half of the
         * power; if the sum could still carry, give up. */
        uint64_t add = (uint64_t)(((u128)w * p[1]) >> 64);
        lo += add;
        hi += lo < add;
        if ((hi & 0x1FF) == 0x1FF && lo == UINT64_MAX)
            return 0;
    }
    int upper = (int)(hi >> 63);
    uint64_t m = hi >> (upper + 9);
    /* Nothing below the rounding bit: an exact tie that the round-half-up below would get wrong for even m. */
    if (lo == 0 && (hi & 0x1FF) == 0 && (m & 3) == 1)
        return 0;
    /* floor(q * log2(10)) is (q * 217706) >> 16 for |q| < 1500. */
    int e = ((q * 217706) >> 16) + 1086 + upper - lz;
    m += m & 1;
    m >>= 1;
    if (m >> 53) {
        m >>= 1;
        e++;
    }
    if (e <= 0)
        return 0;
    if (e >= 0x7FF)
        return -1;
    *bits = ((uint64_t)e << 52) | (m & ((1ull << 52) - 1));
    return 1;
}

int fy_parse_float(const char *s, size_t n, double *out)
{
    *out = 0;
    if (n == 0)
        return -1;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    /* Up to 19 significant digits in w; value = w * 10^dexp (exactly unless trunc). */
    uint64_t w = 0;
    int nd = 0, digits = 0, trunc = 0;
    int64_t dexp = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            break;
        digits = 1;
        if (nd < 19) {
            w = w * 10 + d;
            nd += w != 0;
        } else {
            dexp++;
            trunc |= d != 0;
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9)
                break;
            digits = 1;
            if (nd < 19) {
                w = w * 10 + d;
                nd += w != 0;
                dexp--;
            } else {
                trunc |= d != 0;
            }
        }
    }
    if (!digits)
        return parse_special(s, n, out);
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i == n || (unsigned)(s[i] - '0') > 9)
            return -1;
        int64_t e = 0;
        for (; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9)
                break;
            if (e < 1000000000)
                e = e * 10 + d;
        }
        dexp += eneg ? -e : e;
    }
    if (i != n)
        return -1;
    if (trunc)
        return parse_strtod(s, n, out);
    if (w == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    double v;
    if (w <= (1ull << 53) && dexp >= -22 && dexp <= 22) {
        v = (double)w;
        v = dexp < 0 ? v / exact_pow10[-dexp] : v * exact_pow10[dexp];
    } else {
        if (dexp + nd - 1 >= 309)
            return -1; /* >= 1e309: overflow, Go's ErrRange */
        if (dexp + nd < -343) {
            *out = neg ? -0.0 : 0.0; /* < 1e-343: below half the smallest subnormal */
            return 0;
        }
        if (dexp < FY__POW5_MIN)
            return parse_strtod(s, n, out);
        uint64_t bits;
        int r = eisel_lemire(w, (int)dexp, &bits);
        if (r < 0)
            return -1;
        if (r == 0)
            return parse_strtod(s, n, out);
        memcpy(&v, &bits, sizeof(v));
    }
    *out = neg ? -v : v;
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
    /* 18 digits cannot overflow; only longer strings need the checked loop. */
    size_t fast = n - i > 18 ? i + 18 : n;
    uint64_t v = 0;
    for (; i < fast; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return -1;
        v = v * 10 + d;
    }
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Formatting. */

/* floor(q * log10(2)), floor(q * log10(2) + log10(3/4)) and floor(k * log2(10)) for the exponent ranges of
 * doubles (checked over those ranges by tests/test_num.c). */
static int flog10_pow2(int q)
{
    return (q * 315653) >> 20;
}

static int flog10_three_quarters_pow2(int q)
{
    return (q * 315653 - 131237) >> 20;
}

static int flog2_pow10(int k)
{
    return (k * 1741647) >> 19;
}

/*
 * Round to odd of g * x / 2^128, g being 5^-k rounded up: the low bit is set when the product has a fractional
 * part. g's excess makes the product too large by less than 2^-65, so the fraction is judged on its top 64 bits
 * only (as the paper does with its 126-bit g and 63 bits): an exact integer stays exact, and the paper shows that
 * the fraction of a non-integer is never small enough to vanish there.
 */
static uint64_t mul_round_odd(uint64_t ghi, uint64_t glo, uint64_t x)
{
    u128 a = (u128)ghi * x;
    uint64_t b1 = (uint64_t)(((u128)glo * x) >> 64);
    uint64_t mid = (uint64_t)a + b1;
    uint64_t top = (uint64_t)(a >> 64) + (mid < b1);
    return top | (mid != 0);
}

/*
 * Schubfach for v = c * 2^q (c != 0): the shortest decimal d * 10^*e10 in v's rounding interval, closest to v.
 * The interval is [c - 1/2, c + 1/2] * 2^q, or [c - 1/4, c + 1/2] * 2^q at a power of two whose lower neighbour
 * is closer; its ends belong to it when c is even (round-half-even maps them to v).
 */
static uint64_t schubfach(uint64_t c, int q, int asym, int *e10)
{
    uint64_t cb = c << 2, cbr = cb + 2, cbl = asym ? cb - 1 : cb - 2;
    int k = asym ? flog10_three_quarters_pow2(q) : flog10_pow2(q);
    /* g = floor(5^-k * 2^(127 - floor(log2 5^-k))) + 1, even where the power is exact, as the proof wants;
     * then 4 * v * 10^-k = cb * g * 2^(h - 128) with h in [1, 8]. */
    const uint64_t *p = fy__num_pow5[-k - FY__POW5_MIN];
    uint64_t glo = p[1] + 1, ghi = p[0] + (glo == 0);
    int h = q + flog2_pow10(-k) + 1;
    assert(h >= 1 && h <= 8);
    uint64_t vb = mul_round_odd(ghi, glo, cb << h);
    uint64_t vbl = mul_round_odd(ghi, glo, cbl << h);
    uint64_t vbr = mul_round_odd(ghi, glo, cbr << h);
    uint64_t out = c & 1; /* odd c: the interval's ends are excluded */
    uint64_t s = vb >> 2;
    *e10 = k;
    if (s >= 10) {
        /* The interval is narrower than 10, so it holds at most one multiple of ten; if it does, that one is the
         * shortest (trailing zeros are stripped by the caller). */
        uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
        int upin = vbl + out <= sp10 << 2;
        int wpin = (tp10 << 2) + out <= vbr;
        if (upin != wpin)
            return upin ? sp10 : tp10;
    }
    uint64_t t = s + 1;
    int uin = vbl + out <= s << 2;
    int win = (t << 2) + out <= vbr;
    if (uin != win)
        return uin ? s : t;
    assert(uin && win);
    /* Both are in: the closer one to v, ties to even. */
    int64_t cmp = (int64_t)(vb - ((s + t) << 1));
    return (cmp < 0 || (cmp == 0 && (s & 1) == 0)) ? s : t;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* Writes the decimal digits of v (at most 20) right-aligned to end at buf + 20; returns the first. */
static char *u64_digits(uint64_t v, char *buf)
{
    char *p = buf + 20;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

/* Shortest digits of a finite, non-zero |v|: *d points at nd digits without trailing zeros inside buf[0..20),
 * and the value is 0.d * 10^dp. */
static int shortest(double v, char *buf, const char **d, int *dp)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    uint64_t frac = bits & ((1ull << 52) - 1);
    int be = (int)(bits >> 52) & 0x7FF;
    uint64_t c;
    int q, e10 = 0;
    uint64_t dec;
    if (be == 0) {
        c = frac;
        q = -1074;
    } else {
        c = frac | (1ull << 52);
        q = be - 1075;
    }
    if (q <= 0 && q > -53 && (c & ((1ull << -q) - 1)) == 0) {
        /* An integer below 2^53: its own digits are the shortest, as in Go. */
        dec = c >> -q;
    } else {
        dec = schubfach(c, q, be > 1 && frac == 0, &e10);
    }
    char *p = u64_digits(dec, buf);
    int len = (int)(buf + 20 - p);
    int nd = len;
    while (p[nd - 1] == '0')
        nd--;
    *d = p;
    *dp = len + e10;
    return nd;
}

static size_t special(double v, char *out)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    return 0;
}

static size_t zero(double v, char *out)
{
    if (signbit(v)) {
        memcpy(out, "-0", 3);
        return 2;
    }
    memcpy(out, "0", 2);
    return 1;
}

static size_t layout_f(const char *d, int nd, int dp, char *out)
{
    size_t o = 0;
    if (dp <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        memset(out + o, '0', (size_t)-dp);
        o += (size_t)-dp;
        memcpy(out + o, d, (size_t)nd);
        o += (size_t)nd;
    } else if (nd <= dp) {
        memcpy(out + o, d, (size_t)nd);
        o += (size_t)nd;
        memset(out + o, '0', (size_t)(dp - nd));
        o += (size_t)(dp - nd);
    } else {
        memcpy(out + o, d, (size_t)dp);
        o += (size_t)dp;
        out[o++] = '.';
        memcpy(out + o, d + dp, (size_t)(nd - dp));
        o += (size_t)(nd - dp);
    }
    out[o] = '\0';
    return o;
}

size_t fy_format_float_g(double v, char *out)
{
    if (!isfinite(v))
        return special(v, out);
    if (v == 0)
        return zero(v, out);
    size_t o = 0;
    if (v < 0)
        out[o++] = '-';
    char buf[20];
    const char *d;
    int dp;
    int nd = shortest(fabs(v), buf, &d, &dp);
    int exp = dp - 1;
    if (exp >= -4 && exp < 6)
        return o + layout_f(d, nd, dp, out + o);
    out[o++] = d[0];
    if (nd > 1) {
        out[o++] = '.';
        memcpy(out + o, d + 1, (size_t)nd - 1);
        o += (size_t)nd - 1;
    }
    out[o++] = 'e';
    out[o++] = exp < 0 ? '-' : '+';
    unsigned a = (unsigned)(exp < 0 ? -exp : exp);
    if (a >= 100) {
        out[o++] = (char)('0' + a / 100);
        a %= 100;
    }
    memcpy(out + o, digit_pairs + 2 * a, 2);
    o += 2;
    out[o] = '\0';
    return o;
}

size_t fy_format_float_f(double v, char *out)
{
    if (!isfinite(v))
        return special(v, out);
    if (v == 0)
        return zero(v, out);
    size_t o = 0;
    if (v < 0)
        out[o++] = '-';
    char buf[20];
    const char *d;
    int dp;
    int nd = shortest(fabs(v), buf, &d, &dp);
    return o + layout_f(d, nd, dp, out + o);
}

size_t fy_format_float_text(double v, char *out)
{
    if (v == 1) {
        memcpy(out, "1", 2);
        return 1;
    }
    if (v == 0) {
        memcpy(out, "0", 2);
        return 1;
    }
    if (v == -1) {
        memcpy(out, "-1", 3);
        return 2;
    }
    return fy_format_float_g(v, out);
}

size_t fy_format_float_json(double v, char *out)
{
    return fy_format_float_g(v, out);
}

size_t fy_format_uint64(uint64_t v, char *out)
{
    char buf[20];
    char *p = u64_digits(v, buf);
    size_t n = (size_t)(buf + 20 - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}
