/*
 * num_bench.c: format 'g' and ParseFloat over typical metric values and random doubles, parser/num.c against the
 * slow code it replaced (tests/num_oracle.c, compiled in here so both run under the same flags).
 */
#include "num_bench.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../tests/num_oracle.c"
#include "fy_num.h"

enum { NVALUES = 1024 };

static double values[2][NVALUES];
static char texts[2][NVALUES][FY_FLOAT_BUFSZ];
static size_t text_lens[2][NVALUES];
static int ready;

static void setup(void)
{
    if (ready)
        return;
    static const double typical[] = {0,     1,     2,        17,      200,  4096,           123456,
                                     1e6,   47.25, 0.000123, 0.5,     3.14, 99.9,           1.7956077351921391e+09,
                                     1.6e9, 0.1,   12.3456,  2.5e-05, 1e-3, 8.589934592e+09};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < NVALUES; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t r = x * 0x2545F4914F6CDD1Dull;
        double t = typical[i % (sizeof(typical) / sizeof(typical[0]))];
        if (i % 4 == 3)
            t = (double)(r % 100000); /* counters */
        values[FY_BENCH_NUM_TYPICAL][i] = t;
        double v;
        do {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            memcpy(&v, &r, sizeof(v));
        } while (!isfinite(v));
        values[FY_BENCH_NUM_RANDOM][i] = v;
    }
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < NVALUES; i++)
            text_lens[s][i] = fy_format_float_g(values[s][i], texts[s][i]);
    ready = 1;
}

size_t fy_bench_num_format_g(int set, int fast)
{
    setup();
    char buf[FY_FLOAT_BUFSZ];
    size_t sum = 0;
    for (int i = 0; i < NVALUES; i++)
        sum += fast ? fy_format_float_g(values[set][i], buf) : fy_oracle_format_float_g(values[set][i], buf);
    return sum ? NVALUES : 0;
}

size_t fy_bench_num_parse(int set, int fast)
{
    setup();
    double v, sum = 0;
    for (int i = 0; i < NVALUES; i++) {
        if (fast)
            fy_parse_float(texts[set][i], text_lens[set][i], &v);
        else
            fy_oracle_parse_float(texts[set][i], text_lens[set][i], &v);
        sum += v;
    }
    return sum == sum ? NVALUES : 0;
}
