/*
 * parse_bench.c: benchmark bodies for the body parsers (registered from bench_parse.cc). Each case owns its
 * payload and a reusable arena, so the timed loop is the parse alone.
 */
#include "parse_bench.h"

#include "fy_parse.h"
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
    long n = fy_bench_parse_text(b);
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
