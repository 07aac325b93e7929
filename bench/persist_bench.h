/* persist_bench.h: C benchmark body for the write-ahead log's group commit, called from bench_persist.cc. */
#ifndef FY_PERSIST_BENCH_H
#define FY_PERSIST_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_fy_bench_persist_result_t {
    uint64_t appends;
    uint64_t syncs;
    uint64_t max_batch;
    double seconds;
    double p50_us, p99_us, max_us; /* latency of one fy_log_append */
} fy_bench_persist_result_t;

/**
 * nthreads appenders each append rec_len-byte records to a fresh log under $FY_BENCH_DIR (default /tmp) for about
 * `seconds`; the log is deleted afterwards. Returns 0, or -1 if the log cannot be created or an append fails.
 */
int fy_bench_persist_run(unsigned nthreads, size_t rec_len, double seconds, fy_bench_persist_result_t *r);

#ifdef __cplusplus
}
#endif

#endif
