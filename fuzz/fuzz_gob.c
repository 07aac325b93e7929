/*
 * fuzz_gob.c: libFuzzer target for fy_gob_import (src/gobimport.c), seeded from the .data files in
 * tests/fixtures/gob/. Checks the reader's contract on any input: no read outside the input (ASan), a result or an
 * error that starts "gob: " and names an offset inside the input, every slice inside the input, labels and families
 * sorted with unique names, timestamps normalised; and every MetricFamily blob goes through fy_parse_protobuf after
 * the varint prefix, as the server's import does, without tripping anything.
 */
#include "fy_parse.h"

#include "../src/persist/gobimport.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* CHECK() is compiled out in RelWithDebInfo; the fuzzer must check regardless. */
#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *buf;
    size_t len;
    size_t groups;
} fuzz_ctx_t;

static int inside(const char *p, size_t n, const fuzz_ctx_t *c)
{
    return n == 0 || (p >= c->buf && n <= c->len && p + n <= c->buf + c->len);
}

static void parse_blob(const fy_gob_family_t *f)
{
    uint8_t pre[10];
    size_t np = fy_gob_delimit_prefix(f->mf_len, pre);
    char *blob = malloc(np + f->mf_len);
    memcpy(blob, pre, np);
    if (f->mf_len)
        memcpy(blob + np, f->mf, f->mf_len);
    size_t cap = fy_parse_arena_hint(np + f->mf_len);
    void *mem = malloc(cap);
    fy_arena_t arena;
    fy_arena_init(&arena, mem, cap);
    fy_body_t body;
    static fy_parse_error_t err;
    int rc = fy_parse_protobuf(blob, np + f->mf_len, &arena, &body, &err);
    CHECK(rc == FY_OK || rc == FY_PERR_PB_UNEXPECTED_EOF || rc == FY_PERR_PB_ERROR);
    CHECK(rc != FY_OK || body.nfamilies <= 1);
    free(mem);
    free(blob);
}

static int on_group(void *ctx, const fy_gob_group_t *g)
{
    fuzz_ctx_t *c = ctx;
    c->groups++;
    CHECK(g->offset < c->len);
    CHECK(g->key == NULL || inside(g->key, g->key_len, c));
    for (size_t i = 0; i < g->nlabels; i++) {
        CHECK(inside(g->labels[i].name, g->labels[i].name_len, c) && inside(g->labels[i].value, g->labels[i].value_len, c));
        CHECK(i == 0 || cmp_label(&g->labels[i - 1], &g->labels[i]) < 0);
    }
    for (size_t i = 0; i < g->nfamilies; i++) {
        const fy_gob_family_t *f = &g->families[i];
        CHECK(inside(f->name, f->name_len, c) && inside(f->mf, f->mf_len, c));
        CHECK(f->mf_offset <= c->len && (f->mf_len == 0 || f->mf == c->buf + f->mf_offset));
        CHECK(f->nsec >= 0 && f->nsec <= 999999999);
        CHECK(i == 0 || cmp_family(&g->families[i - 1], f) < 0);
        int64_t ns;
        (void)fy_gob_time_ns(f, &ns);
        parse_blob(f);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    fuzz_ctx_t c = {buf, size, 0};
    fy_gob_error_t err;
    int rc = fy_gob_import(buf, size, on_group, &c, &err);
    if (rc != 0) {
        CHECK(rc == -1);
        CHECK(strncmp(err.msg, "gob: ", 5) == 0 && err.offset <= size);
    }
    free(buf);
    return 0;
}
