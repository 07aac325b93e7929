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
 * `seconds`; the log is deleted afterwards. writer 0: fy_log_append; 1: the log's writer thread syncs and notifies,
 * the appenders submit and wait for the notification. Returns 0, or -1 if the log cannot be created or an append
 * fails.
 */
int fy_bench_persist_run(unsigned nthreads, int writer, size_t rec_len, double seconds, fy_bench_persist_result_t *r);

#ifdef __cplusplus
}
#endif

#endif
