/*
 * test_num.c: parser/num.c against Go. The fixtures in tests/fixtures/num were written by Go's strconv itself
 * (tests/tools/gofloat); the randomized sections compare the fast code with the slow oracle it replaced
 * (tests/num_oracle.c, compiled into this test) over millions of values within a fixed time budget.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fy_num.h"
#include "num_oracle.c"
#include "num_pow5.h"

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static const double p10[12] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parses s with fy_parse_float, the input placed against the guard page. Returns 0/-1; bits in *bits. */
static int parse_guarded(const char *s, size_t n, uint64_t *bits)
{
    double v;
    int rc = fy_parse_float(fy_guarded(s, n), n, &v);
    *bits = to_bits(v);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */

static void test_pow5_table(void **state)
{
    (void)state;
    for (int j = FY__POW5_MIN; j <= FY__POW5_MAX; j++) {
        uint64_t hi, lo;
        fy_oracle_pow5(j, &hi, &lo);
        if (fy__num_pow5[j - FY__POW5_MIN][0] != hi || fy__num_pow5[j - FY__POW5_MIN][1] != lo)
            fail_msg("parser/num_pow5.h: 5^%d differs from exact arithmetic; regenerate with tests/tools/gen_pow5.c", j);
    }
}

static const struct {
    double v;
    const char *g, *f, *text, *json, *note;
} format_cases[] = {
    {0.0, "0", "0", "0", "0", "zero"},
    {-0.0, "-0", "-0", "0", "-0", "negative zero keeps its sign except in the text format"},
    {1.0, "1", "1", "1", "1", "one"},
    {-1.0, "-1", "-1", "-1", "-1", "minus one"},
    {47.25, "47.25", "47.25", "47.25", "47.25", "short decimal"},
    {0.000123, "0.000123", "0.000123", "0.000123", "0.000123", "exp -4 stays plain"},
    {0.00001, "1e-05", "0.00001", "1e-05", "1e-05", "exp -5 switches to exponent form, two exponent digits"},
    {0.0001, "0.0001", "0.0001", "0.0001", "0.0001", "exp -4 is the last plain one"},
    {999999, "999999", "999999", "999999", "999999", "exp 5 stays plain"},
    {1000000, "1e+06", "1000000", "1e+06", "1e+06", "exp 6 switches, trailing zeros dropped"},
    {1234567, "1.234567e+06", "1234567", "1.234567e+06", "1.234567e+06", "integer with 7 digits"},
    {1.7956077351921391e+09, "1.7956077351921391e+09", "1795607735.1921391", "1.7956077351921391e+09", "1.7956077351921391e+09",
     "a timestamp: 17 digits"},
    {1e21, "1e+21", "1000000000000000000000", "1e+21", "1e+21", "1e21"},
    {1e23, "1e+23", "100000000000000000000000", "1e+23", "1e+23", "1e23 is not exact; shortest is still 1e+23"},
    {5e-324, "5e-324", "0.{323}5", "5e-324", "5e-324", "smallest subnormal: one digit"},
    {1.7976931348623157e308, "1.7976931348623157e+308", "17976931348623157{292}", "1.7976931348623157e+308",
     "1.7976931348623157e+308", "largest double: three exponent digits"},
    {9007199254740993.0, "9.007199254740992e+15", "9007199254740992", "9.007199254740992e+15", "9.007199254740992e+15",
     "2^53+1 is not a double; 2^53 prints with 16 digits"},
    {0.1, "0.1", "0.1", "0.1", "0.1", "0.1 is the shortest"},
    {0.3, "0.3", "0.3", "0.3", "0.3", "0.3"},
    {0.1 + 0.2, "0.30000000000000004", "0.30000000000000004", "0.30000000000000004", "0.30000000000000004",
     "0.1+0.2 needs 17 digits"},
    {INFINITY, "+Inf", "+Inf", "+Inf", "+Inf", "positive infinity"},
    {-INFINITY, "-Inf", "-Inf", "-Inf", "-Inf", "negative infinity"},
    {NAN, "NaN", "NaN", "NaN", "NaN", "NaN"},
};

/* Expands "0.{3}5" to "0.0005" and "17{2}" to "1700": a run of zeros written as a count. */
static void expand(const char *pat, char *out)
{
    while (*pat) {
        if (*pat == '{') {
            int n = (int)strtol(pat + 1, (char **)&pat, 10);
            pat++;
            memset(out, '0', (size_t)n);
            out += n;
        } else {
            *out++ = *pat++;
        }
    }
    *out = '\0';
}

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        char buf[FY_FLOAT_F_BUFSZ], want[FY_FLOAT_F_BUFSZ];
        double v = format_cases[i].v;
        size_t n = fy_format_float_g(v, buf);
        if (strcmp(buf, format_cases[i].g) != 0 || n != strlen(buf))
            fail_msg("g %s: got %s want %s", format_cases[i].note, buf, format_cases[i].g);
        expand(format_cases[i].f, want);
        fy_format_float_f(v, buf);
        if (strcmp(buf, want) != 0)
            fail_msg("f %s: got %s want %s", format_cases[i].note, buf, want);
        fy_format_float_text(v, buf);
        if (strcmp(buf, format_cases[i].text) != 0)
            fail_msg("text %s: got %s want %s", format_cases[i].note, buf, format_cases[i].text);
        fy_format_float_json(v, buf);
        if (strcmp(buf, format_cases[i].json) != 0)
            fail_msg("json %s: got %s want %s", format_cases[i].note, buf, format_cases[i].json);
    }
}

/* Every line of format.txt: "<bits hex> <g> <f>", written by Go; "~" for f means "too long, ask the oracle". */
static void test_format_go_fixture(void **state)
{
    (void)state;
    size_t len;
    char *text = fy_fixture("num/format.txt", &len);
    size_t lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char g[64], f[128];
        unsigned long long bits;
        if (sscanf(line, "%llx %63s %127s", &bits, g, f) != 3)
            fail_msg("bad fixture line: %s", line);
        double v = from_bits(bits);
        char got[FY_FLOAT_F_BUFSZ], want[FY_FLOAT_F_BUFSZ];
        size_t n = fy_format_float_g(v, got);
        if (strcmp(got, g) != 0 || n != strlen(g))
            fail_msg("g(%016llx): got %s, Go says %s", bits, got, g);
        n = fy_format_float_f(v, got);
        if (strcmp(f, "~") == 0)
            fy_oracle_format_float_f(v, want);
        else
            strcpy(want, f);
        if (strcmp(got, want) != 0 || n != strlen(want))
            fail_msg("f(%016llx): got %s, want %s", bits, got, want);
        lines++;
    }
    assert_true(lines > 20000);
    free(text);
}

/* Undoes Go's %q for the characters the fixture uses. */
static size_t unquote(const char *q, char *out)
{
    size_t o = 0;
    assert_true(*q == '"');
    for (q++; *q != '"'; q++) {
        if (*q == '\\') {
            q++;
            switch (*q) {
            case 'n':
                out[o++] = '\n';
                break;
            case 't':
                out[o++] = '\t';
                break;
            case '\\':
                out[o++] = '\\';
                break;
            case '"':
                out[o++] = '"';
                break;
            default:
                fail_msg("unexpected escape \\%c in parse fixture", *q);
            }
        } else {
            out[o++] = *q;
        }
    }
    return o;
}

/* Every line of parse.txt: "<quoted input>\t<bits hex>|error", written by Go; also checks the oracle agrees. */
static void test_parse_go_fixture(void **state)
{
    (void)state;
    size_t len;
    char *text = fy_fixture("num/parse.txt", &len);
    char *input = malloc(len);
    assert_non_null(input);
    size_t lines = 0, errors = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *tab = strrchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        size_t n = unquote(line, input);
        uint64_t bits;
        int rc = parse_guarded(input, n, &bits);
        double ov;
        int orc = fy_oracle_parse_float(input, n, &ov);
        /* Go reads hex floats ("0x1p3"); expfmt rejects any p, P or _ first, and so do we. */
        if (strcmp(tab + 1, "error") == 0 || memchr(input, 'p', n) || memchr(input, 'P', n) || memchr(input, '_', n)) {
            if (rc != -1)
                fail_msg("parse %s: accepted as %016llx, Go rejects it", line, (unsigned long long)bits);
            assert_int_equal(orc, -1);
            errors++;
        } else {
            unsigned long long want = strtoull(tab + 1, NULL, 16);
            if (rc != 0)
                fail_msg("parse %s: rejected, Go gives %016llx", line, want);
            if (isnan(from_bits(want))) {
                assert_true(isnan(from_bits(bits)));
            } else if (bits != want) {
                fail_msg("parse %s: got %016llx, Go gives %016llx", line, (unsigned long long)bits, want);
            }
            assert_int_equal(orc, 0);
            assert_true(isnan(ov) || to_bits(ov) == want);
        }
        lines++;
    }
    assert_true(lines > 20000);
    assert_true(errors > 50);
    free(input);
    free(text);
}

#define ERR 2 /* expected rc -1 */
static const struct {
    const char *in;
    int err;
    double want;
    const char *note;
} parse_cases[] = {
    {"0", 0, 0.0, "zero"},
    {"-0", 0, -0.0, "negative zero keeps its sign"},
    {"007", 0, 7, "leading zeros"},
    {"+1.5", 0, 1.5, "explicit plus"},
    {".5", 0, 0.5, "no integer part"},
    {"5.", 0, 5, "no fraction digits"},
    {"1E+2", 0, 100, "upper-case exponent with sign"},
    {"1e-5", 0, 1e-5, "negative exponent"},
    {"47.25", 0, 47.25, "Clinger fast path"},
    {"1.7956077351921391e+09", 0, 1.7956077351921391e+09, "17 digits: Eisel-Lemire"},
    {"9007199254740993", 0, 9007199254740992.0, "2^53+1 rounds to even"},
    {"1e23", 0, 1e23, "beyond the exact powers of ten"},
    {"4.9406564584124654e-324", 0, 4.9406564584124654e-324, "smallest subnormal"},
    {"2.2250738585072011e-308", 0, 2.2250738585072011e-308, "the largest subnormal neighbourhood (PHP's hang)"},
    {"1e-400", 0, 0.0, "underflow is accepted as zero"},
    {"-1e-400", 0, -0.0, "negative underflow gives negative zero"},
    {"0e999999999", 0, 0.0, "zero with a huge exponent is zero"},
    {"1.7976931348623157e308", 0, 1.7976931348623157e308, "largest double"},
    {"1e500", ERR, 0, "overflow is Go's ErrRange"},
    {"1.7976931348623159e308", ERR, 0, "rounds to infinity: ErrRange"},
    {"inf", 0, INFINITY, "inf"},
    {"-Infinity", 0, -INFINITY, "signed infinity, any case"},
    {"+INF", 0, INFINITY, "plus infinity"},
    {"NaN", 0, NAN, "nan in any case"},
    {"+nan", ERR, 0, "no sign before nan"},
    {"0x10", ERR, 0, "hex is rejected (expfmt forbids p/P and Go needs them for hex floats)"},
    {"1_000", ERR, 0, "underscores are rejected"},
    {"", ERR, 0, "empty"},
    {"-", ERR, 0, "sign only"},
    {".", ERR, 0, "point only"},
    {"1e", ERR, 0, "exponent without digits"},
    {"1e+", ERR, 0, "exponent sign without digits"},
    {"e5", ERR, 0, "exponent without mantissa"},
    {" 1", ERR, 0, "leading space"},
    {"1 ", ERR, 0, "trailing space"},
    {"1.2.3", ERR, 0, "two points"},
    {"infinit", ERR, 0, "partial infinity"},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        uint64_t bits;
        int rc = parse_guarded(parse_cases[i].in, strlen(parse_cases[i].in), &bits);
        if (parse_cases[i].err) {
            if (rc != -1)
                fail_msg("%s (%s): accepted", parse_cases[i].in, parse_cases[i].note);
            continue;
        }
        if (rc != 0)
            fail_msg("%s (%s): rejected", parse_cases[i].in, parse_cases[i].note);
        double want = parse_cases[i].want;
        if (isnan(want) ? !isnan(from_bits(bits)) : bits != to_bits(want))
            fail_msg("%s (%s): got %.17g", parse_cases[i].in, parse_cases[i].note, from_bits(bits));
    }
}

static void test_parse_long_halfway(void **state)
{
    (void)state;
    /* 2^53 + 1 written out, then with a trailing non-zero digit 900 places later: the tie breaks upwards. */
    char buf[1000];
    strcpy(buf, "9007199254740993.");
    size_t n = strlen(buf);
    memset(buf + n, '0', 900);
    n += 900;
    uint64_t bits;
    assert_int_equal(parse_guarded(buf, n, &bits), 0);
    assert_true(from_bits(bits) == 9007199254740992.0);
    buf[n++] = '1';
    assert_int_equal(parse_guarded(buf, n, &bits), 0);
    assert_true(from_bits(bits) == 9007199254740994.0);
}

static const struct {
    const char *in;
    int rc;
    int64_t want;
    const char *note;
} int_cases[] = {
    {"0", 0, 0, "zero"},
    {"-0", 0, 0, "negative zero"},
    {"+17", 0, 17, "plus sign"},
    {"0012", 0, 12, "leading zeros"},
    {"9223372036854775807", 0, INT64_MAX, "max"},
    {"-9223372036854775808", 0, INT64_MIN, "min"},
    {"9223372036854775808", -1, 0, "max + 1 overflows"},
    {"-9223372036854775809", -1, 0, "min - 1 overflows"},
    {"00000000000000000000000000001", 0, 1, "many leading zeros"},
    {"99999999999999999999", -1, 0, "20 nines"},
    {"123456789012345678", 0, 123456789012345678, "18 digits, the unchecked loop"},
    {"", -1, 0, "empty"},
    {"-", -1, 0, "sign only"},
    {"1.0", -1, 0, "not an integer"},
    {"1e3", -1, 0, "no exponent"},
    {" 1", -1, 0, "no spaces"},
    {"12345678901234567a", -1, 0, "bad digit in the fast loop"},
    {"1234567890123456789a", -1, 0, "bad digit in the checked loop"},
};

static void test_parse_int64(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        int64_t v;
        size_t n = strlen(int_cases[i].in);
        int rc = fy_parse_int64(fy_guarded(int_cases[i].in, n), n, &v);
        if (rc != int_cases[i].rc || (rc == 0 && v != int_cases[i].want))
            fail_msg("%s (%s): rc %d value %lld", int_cases[i].in, int_cases[i].note, rc, (long long)v);
    }
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        int64_t want = (int64_t)rnd() >> (rnd() % 64), got;
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)want);
        assert_int_equal(fy_parse_int64(buf, (size_t)n, &got), 0);
        assert_true(got == want);
    }
}

/* Every binary exponent, with the mantissas that matter to the rounding interval (power of two: asymmetric),
 * compared with the oracle in both formats. */
static void test_format_every_exponent(void **state)
{
    (void)state;
    for (uint64_t be = 0; be < 0x7FF; be++) {
        uint64_t fracs[] = {0, 1, 2, 3, (1ull << 52) - 1, (1ull << 51), rnd() & ((1ull << 52) - 1)};
        for (size_t i = 0; i < sizeof(fracs) / sizeof(fracs[0]); i++) {
            double v = from_bits(be << 52 | fracs[i]);
            char got[FY_FLOAT_F_BUFSZ], want[FY_FLOAT_F_BUFSZ];
            fy_format_float_g(v, got);
            fy_oracle_format_float_g(v, want);
            if (strcmp(got, want) != 0)
                fail_msg("g(%016llx): got %s oracle %s", (unsigned long long)to_bits(v), got, want);
            fy_format_float_f(v, got);
            fy_oracle_format_float_f(v, want);
            if (strcmp(got, want) != 0)
                fail_msg("f(%016llx): got %s oracle %s", (unsigned long long)to_bits(v), got, want);
        }
    }
}

/* Random doubles, fast against the oracle, for a fixed time: bit patterns (every exponent equally likely) and
 * metric-like decimals. Then round trips through fy_parse_float for many more. */
static void test_format_random_vs_oracle(void **state)
{
    (void)state;
    double t0 = now();
    long n = 0;
    while (n < 4000000 && (n < 20000 || now() - t0 < 3.0)) {
        for (int i = 0; i < 1000; i++, n++) {
            double v;
            if (i & 1) {
                do
                    v = from_bits(rnd());
                while (!isfinite(v));
            } else {
                v = (double)(rnd() % 1000000000) / p10[rnd() % 12];
            }
            char got[FY_FLOAT_BUFSZ], want[FY_FLOAT_BUFSZ];
            fy_format_float_g(v, got);
            fy_oracle_format_float_g(v, want);
            if (strcmp(got, want) != 0)
                fail_msg("g(%016llx): got %s oracle %s", (unsigned long long)to_bits(v), got, want);
        }
    }
    long rt = 0;
    t0 = now();
    while (rt < 20000000 && (rt < 100000 || now() - t0 < 2.0)) {
        for (int i = 0; i < 1000; i++, rt++) {
            double v = from_bits(rnd()), back;
            if (!isfinite(v))
                continue;
            char buf[FY_FLOAT_BUFSZ];
            size_t len = fy_format_float_g(v, buf);
            if (fy_parse_float(buf, len, &back) != 0 || to_bits(back) != to_bits(v))
                fail_msg("round trip %016llx via %s", (unsigned long long)to_bits(v), buf);
        }
    }
    print_message("format: %ld values vs oracle, %ld round trips\n", n, rt);
}

/* Random decimal literals of 1..25 significant digits at every scale (so all of the fast paths, the range
 * limits and the strtod fallback), fast against the oracle. */
static void test_parse_random_vs_oracle(void **state)
{
    (void)state;
    double t0 = now();
    long n = 0;
    char buf[64];
    while (n < 10000000 && (n < 20000 || now() - t0 < 2.0)) {
        for (int i = 0; i < 1000; i++, n++) {
            int nd = 1 + (int)(rnd() % 25), len = 0;
            if (rnd() & 1)
                buf[len++] = '-';
            int point = (int)(rnd() % (unsigned)(nd + 2));
            for (int j = 0; j < nd; j++) {
                if (j == point)
                    buf[len++] = '.';
                buf[len++] = (char)('0' + rnd() % 10);
            }
            if (rnd() & 1)
                len += snprintf(buf + len, sizeof(buf) - (size_t)len, "e%d", (int)(rnd() % 700) - 350);
            double got, want;
            int rc = fy_parse_float(buf, (size_t)len, &got), orc = fy_oracle_parse_float(buf, (size_t)len, &want);
            if (rc != orc || (rc == 0 && to_bits(got) != to_bits(want)))
                fail_msg("parse %.*s: rc %d %016llx, oracle rc %d %016llx", len, buf, rc, (unsigned long long)to_bits(got), orc,
                         (unsigned long long)to_bits(want));
        }
    }
    print_message("parse: %ld literals vs oracle\n", n);
}

/* Literals longer than the fallback's buffer: hundreds of leading zeros, around 800 significant digits, a tail
 * that is sometimes all zeros and sometimes ends in a lone 1, at scales from subnormal to huge. */
static void test_parse_long_vs_oracle(void **state)
{
    (void)state;
    static char buf[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        int zeros = (int)(rnd() % 400), nd = 700 + (int)(rnd() % 200), tail = (int)(rnd() % 300);
        if (rnd() & 1) {
            buf[len++] = '0';
            buf[len++] = '.';
            memset(buf + len, '0', (size_t)zeros);
            len += (size_t)zeros;
        } else {
            memset(buf + len, '0', (size_t)zeros);
            len += (size_t)zeros;
        }
        for (int j = 0; j < nd; j++)
            buf[len++] = (char)('0' + (j == 0 ? 1 + rnd() % 9 : rnd() % 10));
        memset(buf + len, '0', (size_t)tail);
        len += (size_t)tail;
        if (rnd() & 1)
            buf[len++] = '1';
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "e%d", (int)(rnd() % 1400) - 1100);
        uint64_t got;
        double want;
        int rc = parse_guarded(buf, len, &got), orc = fy_oracle_parse_float(buf, len, &want);
        if (rc != orc || (rc == 0 && got != to_bits(want)))
            fail_msg("long literal #%d (%zu bytes): rc %d %016llx, oracle rc %d %016llx", iter, len, rc, (unsigned long long)got,
                     orc, (unsigned long long)to_bits(want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pow5_table),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_go_fixture),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_go_fixture),
        cmocka_unit_test(test_parse_long_halfway),
        cmocka_unit_test(test_parse_int64),
        cmocka_unit_test(test_format_every_exponent),
        cmocka_unit_test(test_format_random_vs_oracle),
        cmocka_unit_test(test_parse_random_vs_oracle),
        cmocka_unit_test(test_parse_long_vs_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
