/*
 * num_bench.h: benchmark bodies for parser/num.c, in C so that the Google Benchmark shim (bench_num.cc) only
 * registers them. Each body runs once over a fixed set of values and returns how many it processed.
 */
#ifndef FY_NUM_BENCH_H
#define FY_NUM_BENCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fy_bench_num_set {
    FY_BENCH_NUM_TYPICAL, /* what metrics hold: small integers, counters, 47.25, 0.000123, timestamps */
    FY_BENCH_NUM_RANDOM,  /* random finite bit patterns: 16-17 digits, every exponent */
};

/* fast != 0: parser/num.c; fast == 0: the old printf/strtod code kept in tests/num_oracle.c. */
size_t fy_bench_num_format_g(int set, int fast);
size_t fy_bench_num_parse(int set, int fast);

#ifdef __cplusplus
}
#endif

#endif
