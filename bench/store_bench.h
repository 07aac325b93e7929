/* store_bench.h: C benchmark bodies for the store, called from the Google Benchmark shim bench_store.cc. */
#ifndef FY_STORE_BENCH_H
#define FY_STORE_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_fy_bench_store_t fy_bench_store_t;

/** A store holding ngroups groups, each the push-646 body (10 lines + 2 timestamp lines). */
fy_bench_store_t *fy_bench_store_new(size_t ngroups);
void fy_bench_store_free(fy_bench_store_t *b);
/** A store holding ngroups groups {job="many",instance="i<n>"}, each two untyped families of one series. */
fy_bench_store_t *fy_bench_store_new_bulk(size_t ngroups);
/** Bulk-deletes every group of a fy_bench_store_new_bulk store; returns the count. */
uint64_t fy_bench_store_delete_where(fy_bench_store_t *b);
/** PUTs the push-646 body to group number `group`. */
int fy_bench_store_push(fy_bench_store_t *b, size_t group, int64_t now);
/** Renders the whole store (format 0 text, 1 delimited protobuf, 2 OpenMetrics, 3 the /api/v1/metrics JSON); returns
 * the byte count. */
size_t fy_bench_store_render(fy_bench_store_t *b, int format);
/** RSS growth per group when filling a store with ngroups push-646 groups (10 pushed lines, 2 timestamp lines),
 * grouped by job="jobN" (two_labels 0) or by {job="node-exporter-<k>", instance="10.a.b.c:9100"} (two_labels 1). */
double fy_bench_store_rss_per_group(size_t ngroups, int two_labels);

#ifdef __cplusplus
}
#endif

#endif
