/*
 * parse_bench.c: benchmark bodies for the body parsers (registered from bench_parse.cc). Each case owns its
 * payload and a reusable arena, so the timed loop is the parse alone.
 */
#include "parse_bench.h"

#include "fy_parse.h"
#include "fy_pb.h"
#include "payloads.h"

#include <stdlib.h>
#include <string.h>

struct st_fy_bench_parse_t {
    char *buf;
    size_t len;
    size_t nseries;
    void *arena_mem;
    fy_arena_t arena;
};

/* A string field, with the text escapes undone (protobuf carries the plain bytes). */
static void put_text_str(fy_pb_writer_t *w, uint32_t field, fy_str_t s, fy_esc_t esc, char *tmp)
{
    if (esc == FY_ESC_NONE) {
        fy_pb_put_bytes(w, field, s.ptr, s.len);
        return;
    }
    fy_pb_put_bytes(w, field, tmp, fy_unescape(s, esc, tmp));
}

/* The parsed text body as client_golang would push it: delimited io.prometheus.client.MetricFamily messages with the
 * same families, labels, values and buckets. Returns a malloc'ed body, or NULL. */
static char *encode_protobuf(const fy_body_t *body, size_t text_len, size_t *len)
{
    size_t cap = text_len * 2 + 4096; /* fixed64 values and tags never double a text body */
    char *buf = malloc(cap), *tmp = malloc(text_len + 1);
    fy_pb_writer_t w;
    if (buf == NULL || tmp == NULL)
        goto Fail;
    fy_pb_writer_init(&w, buf, cap);
    for (uint32_t f = 0; f < body->nfamilies; f++) {
        const fy_family_t *fm = &body->families[f];
        size_t fmark = fy_pb_begin(&w, 0);
        fy_pb_put_bytes(&w, 1, fm->name.ptr, fm->name.len);
        if (fm->has_help)
            put_text_str(&w, 2, fm->help, (fy_esc_t)fm->help_esc, tmp);
        fy_pb_put_uint64(&w, 3, fm->type == FY_TYPE_GAUGE_HISTOGRAM ? FY_TYPE_HISTOGRAM : fm->type);
        for (uint32_t s = 0; s < fm->nseries; s++) {
            const fy_series_t *se = &fm->series[s];
            size_t mmark = fy_pb_begin(&w, 4);
            for (uint32_t l = 0; l < se->nlabels; l++) {
                size_t lmark = fy_pb_begin(&w, 1);
                fy_pb_put_bytes(&w, 1, se->labels[l].name.ptr, se->labels[l].name.len);
                put_text_str(&w, 2, se->labels[l].value, (fy_esc_t)se->labels[l].value_esc, tmp);
                fy_pb_end(&w, lmark);
            }
            size_t vmark;
            switch (fm->type) {
            case FY_TYPE_SUMMARY:
                vmark = fy_pb_begin(&w, 4);
                fy_pb_put_uint64(&w, 1, se->count);
                fy_pb_put_double(&w, 2, se->value);
                for (uint32_t p = 0; p < se->npoints; p++) {
                    size_t q = fy_pb_begin(&w, 3);
                    fy_pb_put_double(&w, 1, se->points[p].key);
                    fy_pb_put_double(&w, 2, se->points[p].value);
                    fy_pb_end(&w, q);
                }
                break;
            case FY_TYPE_HISTOGRAM:
            case FY_TYPE_GAUGE_HISTOGRAM:
                vmark = fy_pb_begin(&w, 7);
                fy_pb_put_uint64(&w, 1, se->count);
                fy_pb_put_double(&w, 2, se->value);
                for (uint32_t p = 0; p < se->npoints; p++) {
                    size_t q = fy_pb_begin(&w, 3);
                    fy_pb_put_uint64(&w, 1, se->points[p].count);
                    fy_pb_put_double(&w, 2, se->points[p].key);
                    fy_pb_end(&w, q);
                }
                break;
            default: /* gauge 2, counter 3, untyped 5: a message with the value in field 1 */
                vmark = fy_pb_begin(&w, fm->type == FY_TYPE_GAUGE ? 2 : fm->type == FY_TYPE_COUNTER ? 3 : 5);
                fy_pb_put_double(&w, 1, se->value);
                break;
            }
            fy_pb_end(&w, vmark);
            if (se->has_timestamp)
                fy_pb_put_int64(&w, 6, se->timestamp_ms);
            fy_pb_end(&w, mmark);
        }
        fy_pb_end(&w, fmark);
    }
    if (w.overflow)
        goto Fail;
    free(tmp);
    *len = w.len;
    return buf;

Fail:
    free(tmp);
    free(buf);
    return NULL;
}

/* The (b) text payload, parsed once and re-encoded as protobuf. */
static char *node_protobuf(size_t *len)
{
    size_t tlen, nseries;
    char *text = fy_payload_node_exporter(10u << 20, &tlen, &nseries);
    size_t cap = fy_parse_arena_hint(tlen);
    void *mem = malloc(cap);
    char *pb = NULL;
    if (text != NULL && mem != NULL) {
        fy_arena_t arena;
        fy_body_t body;
        fy_parse_error_t err;
        fy_arena_init(&arena, mem, cap);
        if (fy_parse_text(text, tlen, &arena, &body, &err) == FY_OK)
            pb = encode_protobuf(&body, tlen, len);
    }
    free(mem);
    free(text);
    return pb;
}

fy_bench_parse_t *fy_bench_parse_new(fy_bench_payload_t which)
{
    fy_bench_parse_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    switch (which) {
    case FY_BENCH_PUSH646:
        b->buf = fy_payload_file("push-646.txt", &b->len);
        break;
    case FY_BENCH_NODE_10M:
        b->buf = fy_payload_node_exporter(10u << 20, &b->len, &b->nseries);
        break;
    case FY_BENCH_LABELS_20:
        b->buf = fy_payload_many_labels(4u << 20, 20, &b->len, &b->nseries);
        break;
    case FY_BENCH_PB_NODE_10M:
        b->buf = node_protobuf(&b->len);
        break;
    }
    if (b->buf == NULL) {
        free(b);
        return NULL;
    }
    size_t cap = fy_parse_arena_hint(b->len);
    b->arena_mem = malloc(cap);
    if (b->arena_mem == NULL) {
        free(b->buf);
        free(b);
        return NULL;
    }
    fy_arena_init(&b->arena, b->arena_mem, cap);
    /* Fault the arena pages in once and learn the series count. */
    long n = which == FY_BENCH_PB_NODE_10M ? fy_bench_parse_protobuf(b) : fy_bench_parse_text(b);
    if (n < 0) {
        fy_bench_parse_free(b);
        return NULL;
    }
    b->nseries = (size_t)n;
    return b;
}

void fy_bench_parse_free(fy_bench_parse_t *b)
{
    if (b == NULL)
        return;
    free(b->arena_mem);
    free(b->buf);
    free(b);
}

size_t fy_bench_parse_len(const fy_bench_parse_t *b)
{
    return b->len;
}

size_t fy_bench_parse_nseries(const fy_bench_parse_t *b)
{
    return b->nseries;
}

long fy_bench_parse_text(fy_bench_parse_t *b)
{
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_reset(&b->arena);
    if (fy_parse_text(b->buf, b->len, &b->arena, &body, &err) != FY_OK)
        return -1;
    return (long)body.nseries;
}

long fy_bench_parse_protobuf(fy_bench_parse_t *b)
{
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_reset(&b->arena);
    if (fy_parse_protobuf(b->buf, b->len, &b->arena, &body, &err) != FY_OK)
        return -1;
    return (long)body.nseries;
}

size_t fy_bench_memchr_lines(const fy_bench_parse_t *b)
{
    size_t lines = 0;
    const char *p = b->buf, *end = b->buf + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        lines++;
        p = nl + 1;
    }
    return lines;
}
