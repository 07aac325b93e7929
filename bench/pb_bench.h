/* pb_bench.h: benchmark bodies for the protobuf decoder (pb_bench.c), registered by bench_pb.cc. */
#ifndef FY_PB_BENCH_H
#define FY_PB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FY_PB_BENCH_PUSH646 = 0, FY_PB_BENCH_NODE = 1 };

/* The encoded body (built once, kept for the process) and its series count. */
const char *fy_pb_bench_body(int which, size_t *len, uint32_t *nseries);

/* One decode of the body into a reused arena; returns the series decoded (0 on error). */
uint32_t fy_pb_bench_decode(const char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
