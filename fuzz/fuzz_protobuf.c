/*
 * fuzz_protobuf.c: libFuzzer target for fy_parse_protobuf. Checks the decoder's contract on any input: no read
 * outside the input (ASan), a result or an error with a message, every slice inside the input, counts consistent,
 * and that a body the decoder accepts re-encodes (through fy_pb.h) to something it accepts again with the same shape.
 */
#include "fy_parse.h"
#include "fy_pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* CHECK() is compiled out in RelWithDebInfo; the fuzzer must check regardless. */
#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(fy_str_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.len <= len && s.ptr + s.len <= buf + len);
}

static void reencode(const fy_body_t *b, fy_pb_writer_t *w)
{
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        size_t fm = fy_pb_begin(w, 0);
        fy_pb_put_bytes(w, 1, f->name.ptr, f->name.len);
        if (f->has_help)
            fy_pb_put_bytes(w, 2, f->help.ptr, f->help.len);
        fy_pb_put_uint64(w, 3, f->type);
        for (uint32_t j = 0; j < f->nseries; j++) {
            const fy_series_t *s = &f->series[j];
            size_t mm = fy_pb_begin(w, 4);
            for (uint32_t k = 0; k < s->nlabels; k++) {
                size_t lm = fy_pb_begin(w, 1);
                fy_pb_put_bytes(w, 1, s->labels[k].name.ptr, s->labels[k].name.len);
                fy_pb_put_bytes(w, 2, s->labels[k].value.ptr, s->labels[k].value.len);
                fy_pb_end(w, lm);
            }
            fy_pb_end(w, mm);
        }
        fy_pb_end(w, fm);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    size_t cap = fy_parse_arena_hint(size);
    void *mem = malloc(cap);
    fy_arena_t arena;
    fy_arena_init(&arena, mem, cap);
    fy_body_t body;
    static fy_parse_error_t err;
    int rc = fy_parse_protobuf(buf, size, &arena, &body, &err);
    if (rc != FY_OK) {
        CHECK(rc == FY_PERR_PB_UNEXPECTED_EOF || rc == FY_PERR_PB_ERROR);
        CHECK(err.msg_len > 0 && err.msg_len == strlen(err.msg) && err.offset <= size);
        CHECK(body.nfamilies == 0);
        goto Exit;
    }
    uint32_t nseries = 0;
    size_t out_cap = 2 * size + 64;
    for (uint32_t i = 0; i < body.nfamilies; i++) {
        const fy_family_t *f = &body.families[i];
        CHECK(f->type <= FY_TYPE_MAX);
        CHECK(inside(f->name, buf, size) && inside(f->help, buf, size) && inside(f->unit, buf, size));
        for (uint32_t j = 0; j < i; j++)
            CHECK(!fy_str_eq(body.families[j].name, f->name));
        for (uint32_t j = 0; j < f->nseries; j++) {
            const fy_series_t *s = &f->series[j];
            CHECK(s->pb_kinds & FY_PB_KINDS_VALID);
            CHECK(inside(s->pb_histogram, buf, size));
            for (uint32_t k = 0; k < s->nlabels; k++) {
                CHECK(inside(s->labels[k].name, buf, size) && inside(s->labels[k].value, buf, size));
                out_cap += 16;
            }
            out_cap += 16;
        }
        nseries += f->nseries;
        out_cap += 32;
    }
    CHECK(nseries == body.nseries);

    /* Round trip of the shape (names, help, type, labels). */
    char *out = malloc(out_cap);
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, out, out_cap);
    reencode(&body, &w);
    CHECK(!w.overflow);
    size_t cap2 = fy_parse_arena_hint(w.len);
    void *mem2 = malloc(cap2);
    fy_arena_t arena2;
    fy_arena_init(&arena2, mem2, cap2);
    fy_body_t body2;
    rc = fy_parse_protobuf(out, w.len, &arena2, &body2, &err);
    CHECK(rc == FY_OK);
    CHECK(body2.nfamilies == body.nfamilies && body2.nseries == body.nseries);
    for (uint32_t i = 0; i < body.nfamilies; i++) {
        CHECK(fy_str_eq(body.families[i].name, body2.families[i].name));
        CHECK(body.families[i].has_help == body2.families[i].has_help);
        for (uint32_t j = 0; j < body.families[i].nseries; j++)
            CHECK(body.families[i].series[j].nlabels == body2.families[i].series[j].nlabels);
    }
    free(mem2);
    free(out);
Exit:
    free(mem);
    free(buf);
    return 0;
}
