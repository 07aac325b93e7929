/* bench_rand.h: the benchmarks' one pseudo-random generator (xorshift64): fixed seeds keep bodies and access
 * patterns identical across runs; nothing here needs more than that. Usable from the C bodies and the C++ shims. */
#ifndef FY_BENCH_RAND_H
#define FY_BENCH_RAND_H

#include <stdint.h>

/* Advances *x (never 0) and returns the new value. */
static inline uint64_t fy_bench_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#endif
