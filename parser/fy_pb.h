/*
 * fy_pb.h: a minimal protobuf wire-format writer (varints, tags, fixed64, length-delimited fields and nested
 * messages) into a caller-provided buffer. Used to produce io.prometheus.client.MetricFamily for protobuf scrapes and
 * persistence, and by the tests to build bodies. The decoder side is fy_parse_protobuf() in fy_parse.h.
 *
 * Output is canonical (shortest varints, lengths included), the same bytes Go's proto.Marshal gives for the same
 * fields in the same order. Writers never write past cap: a write that does not fit sets overflow and leaves len
 * unchanged from then on, so the caller checks once at the end and retries with a bigger buffer.
 */
#ifndef FY_PB_H
#define FY_PB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum en_fy_pb_wire_t {
    FY_PB_VARINT = 0,
    FY_PB_FIXED64 = 1,
    FY_PB_LEN = 2,
    FY_PB_SGROUP = 3,
    FY_PB_EGROUP = 4,
    FY_PB_FIXED32 = 5,
} fy_pb_wire_t;

#define FY_PB_VARINT_MAX 10

typedef struct st_fy_pb_writer_t {
    char *buf;
    size_t cap;
    size_t len;
    int overflow;
} fy_pb_writer_t;

static inline void fy_pb_writer_init(fy_pb_writer_t *w, void *buf, size_t cap)
{
    w->buf = (char *)buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
}

/** Number of bytes the varint encoding of v takes (1..10). */
size_t fy_pb_varint_size(uint64_t v);

/** ZigZag mapping for sint32/sint64 fields. */
static inline uint64_t fy_pb_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

void fy_pb_put_raw(fy_pb_writer_t *w, const void *p, size_t n);
void fy_pb_put_varint(fy_pb_writer_t *w, uint64_t v);
void fy_pb_put_tag(fy_pb_writer_t *w, uint32_t field, fy_pb_wire_t wt);

/* Whole fields: tag plus value. int64 fields take the two's complement (10 bytes when negative), as Go does. */
void fy_pb_put_uint64(fy_pb_writer_t *w, uint32_t field, uint64_t v);
void fy_pb_put_int64(fy_pb_writer_t *w, uint32_t field, int64_t v);
void fy_pb_put_double(fy_pb_writer_t *w, uint32_t field, double v);
void fy_pb_put_bytes(fy_pb_writer_t *w, uint32_t field, const void *p, size_t n);

/**
 * Nested message: fy_pb_begin() writes the tag (none when field is 0: a frame of a delimited stream) and reserves
 * one length byte; fy_pb_end() fills in the length, moving the body when the length needs more bytes. Returns and
 * takes a mark; begin/end pairs nest.
 */
size_t fy_pb_begin(fy_pb_writer_t *w, uint32_t field);
void fy_pb_end(fy_pb_writer_t *w, size_t mark);

#ifdef __cplusplus
}
#endif

#endif
