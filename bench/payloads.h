/*
 * payloads.h: deterministic request bodies for the parser benchmarks (same bytes on every run and machine).
 */
#ifndef FY_BENCH_PAYLOADS_H
#define FY_BENCH_PAYLOADS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A node-exporter-like text exposition of at least target bytes: families with HELP and TYPE, counters and gauges
 * with a few labels, histograms and summaries, values such as 1.8446744073709552e+19, 0.000123 and 42. malloc'd;
 * *len gets its size, *nseries the number of series fy_parse_text reports for it. */
char *fy_payload_node_exporter(size_t target, size_t *len, size_t *nseries);

/* Gauges with nlabels labels per series (realistic names and values), at least target bytes. */
char *fy_payload_many_labels(size_t target, unsigned nlabels, size_t *len, size_t *nseries);

/* The file below bench/payloads/ (e.g. "push-646.txt"), malloc'd, or NULL. */
char *fy_payload_file(const char *name, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
