/* mem_bench.h: the machine's memory latency, the floor under the store's push cost at 1M series, and the cost of
 * moving a cache line between the two cores, which the 2-thread push figures depend on (bench_mem.cc). */
#ifndef FY_MEM_BENCH_H
#define FY_MEM_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_fy_bench_chase_t fy_bench_chase_t;

/** A buffer of `bytes` bytes whose cache lines form one random cycle (each line holds the next line's address). */
fy_bench_chase_t *fy_bench_chase_new(size_t bytes, uint64_t seed);
void fy_bench_chase_free(fy_bench_chase_t *c);
/** Follows `steps` links, each load depending on the one before; returns where it ended (keeps the loads alive). */
uintptr_t fy_bench_chase(fy_bench_chase_t *c, size_t steps);

/** Two threads hand a cache line back and forth `rounds` times; returns the nanoseconds of one round trip (two line
 * transfers between the cores the threads run on). */
double fy_bench_core_round_trip(size_t rounds);

#ifdef __cplusplus
}
#endif

#endif
