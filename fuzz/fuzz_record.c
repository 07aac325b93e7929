/*
 * fuzz_record.c: libFuzzer target for the write-ahead log's record codec (src/record.c). The first byte picks the
 * record type (1-7: push, delete, wipe, bulk, and replication's merge, failure and kill), the rest is the payload.
 * Whatever decodes must lie inside the input, and must encode back to a record that decodes to the same change (the
 * codec's round trip on any accepted input).
 */
#include "../src/persist/record.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    return n == 0 || ((const uint8_t *)p >= buf && (const uint8_t *)p + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned type = data[0] % 10; /* 0 and 9: unknown types */
    uint8_t *payload = malloc(size - 1 ? size - 1 : 1);
    memcpy(payload, data + 1, size - 1);
    fy_record_t r;
    if (fy_record_decode(type, payload, size - 1, &r) == 0) {
        const fy_change_t *c = &r.change;
        CHECK(type >= FY_REC_PUSH && type <= FY_REC_DROP);
        CHECK(inside(c->body, c->body_len, payload, size - 1));
        for (size_t i = 0; i < c->nlabels; i++) {
            CHECK(inside(c->labels[i].name.ptr, c->labels[i].name.len, payload, size - 1));
            CHECK(c->labels[i].value.len == 0 || inside(c->labels[i].value.ptr, c->labels[i].value.len, payload, size - 1));
        }
        unsigned t2;
        uint8_t *p2;
        size_t len2;
        CHECK(fy_record_encode(c, &t2, &p2, &len2) == 0);
        CHECK(t2 == type);
        fy_record_t r2;
        CHECK(fy_record_decode(t2, p2, len2, &r2) == 0);
        CHECK(r2.change.kind == c->kind && r2.change.now_ns == c->now_ns && r2.change.nlabels == c->nlabels &&
              r2.change.post == c->post && r2.change.merge == c->merge && fy_str_eq(r2.change.family, c->family));
        if (c->kind != FY_CHANGE_FAIL) { /* a failure's record keeps no body (it has a push's layout) */
            CHECK(r2.change.body_len == c->body_len);
            CHECK(c->body_len == 0 || memcmp(r2.change.body, c->body, c->body_len) == 0);
        }
        for (size_t i = 0; i < c->nlabels; i++)
            CHECK(fy_str_eq(r2.change.labels[i].name, c->labels[i].name) &&
                  fy_str_eq(r2.change.labels[i].value, c->labels[i].value));
        fy_record_free(&r2);
        free(p2);
    }
    fy_record_free(&r);
    free(payload);
    return 0;
}
