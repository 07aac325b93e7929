/*
 * parse_bench.h: C benchmark bodies for the parsers, called from the Google Benchmark shim bench_parse.cc.
 */
#ifndef FY_PARSE_BENCH_H
#define FY_PARSE_BENCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FY_BENCH_PUSH646,     /* bench/payloads/push-646.txt: the reference push (10 series) */
    FY_BENCH_NODE_10M,    /* generated node-exporter-like exposition, 10 MiB */
    FY_BENCH_LABELS_20,   /* generated gauges with 20 labels each, 4 MiB */
    FY_BENCH_PB_NODE_10M, /* (d): the FY_BENCH_NODE_10M model encoded as delimited MetricFamily messages */
} fy_bench_payload_t;

typedef struct st_fy_bench_parse_t fy_bench_parse_t;

/* Builds the payload and an arena of fy_parse_arena_hint() bytes; NULL if the payload fails to parse. */
fy_bench_parse_t *fy_bench_parse_new(fy_bench_payload_t which);
void fy_bench_parse_free(fy_bench_parse_t *b);
size_t fy_bench_parse_len(const fy_bench_parse_t *b);
size_t fy_bench_parse_nseries(const fy_bench_parse_t *b);

/* One fy_parse_text over the payload; returns the series count, or -1 on a parse error. */
long fy_bench_parse_text(fy_bench_parse_t *b);

/* One fy_parse_protobuf over a FY_BENCH_PB_* payload; returns the series count, or -1 on a parse error. */
long fy_bench_parse_protobuf(fy_bench_parse_t *b);

/* The floor: one memchr('\n') pass over the payload; returns the line count. */
size_t fy_bench_memchr_lines(const fy_bench_parse_t *b);

#ifdef __cplusplus
}
#endif

#endif
