/*
 * test_persist_record.c: the write-ahead log's record codec (src/record.h): every kind round-trips; every truncation of a
 * valid record and every single-byte flip decodes either to an error or to a well-formed change (never reads out of
 * bounds: ASan runs this too); records written before the change path (hand-made here) still decode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fy_parse.h"

#include "../src/persist/record.c"

static const fy_store_label_t GK[2] = {{{"instance", 8}, {"i-1", 3}}, {{"job", 3}, {"", 0}}};
static const fy_store_life_t LIFE = {60000000000LL, 15000000000LL};

/* (change, note): every kind of change that is logged */
static const struct {
    fy_change_t c;
    const char *note;
} cases[] = {
    {{.kind = FY_CHANGE_PUSH,
      .now_ns = 1700000000123456789LL,
      .labels = GK,
      .nlabels = 2,
      .post = 0,
      .format = FY_FMT_TEXT,
      .body = "m 1\n",
      .body_len = 4},
     "PUT"},
    {{.kind = FY_CHANGE_PUSH,
      .now_ns = 5,
      .labels = GK,
      .nlabels = 2,
      .post = 1,
      .format = FY_FMT_PROTOBUF,
      .body = "\x01\x02",
      .body_len = 2,
      .life = &LIFE},
     "POST with a declared lifetime (version 2)"},
    {{.kind = FY_CHANGE_PUSH, .now_ns = -1, .labels = GK, .nlabels = 1, .format = FY_FMT_OPENMETRICS}, "empty body"},
    {{.kind = FY_CHANGE_DELETE, .now_ns = 42, .labels = GK, .nlabels = 2}, "delete"},
    {{.kind = FY_CHANGE_DELETE, .now_ns = 42, .labels = NULL, .nlabels = 0}, "delete of no labels"},
    {{.kind = FY_CHANGE_WIPE, .now_ns = 7}, "wipe"},
    {{.kind = FY_CHANGE_BULK, .now_ns = 9, .body = "match[]={job=\"a\"}&older_than=1h", .body_len = 31}, "bulk"},
    {{.kind = FY_CHANGE_BULK, .now_ns = 9}, "bulk with an empty query"},
    {{.kind = FY_CHANGE_PUSH,
      .now_ns = 1700000000123456791LL,
      .labels = GK,
      .nlabels = 2,
      .post = 1,
      .format = FY_FMT_TEXT,
      .body = "m 2\n",
      .body_len = 4,
      .life = &LIFE,
      .merge = 1},
     "replicated push (merge, with a lifetime)"},
    {{.kind = FY_CHANGE_FAIL, .now_ns = 11, .labels = GK, .nlabels = 2, .post = 1}, "push failure"},
    {{.kind = FY_CHANGE_KILL, .now_ns = 12, .labels = GK, .nlabels = 2, .family = {"x_total", 7}}, "kill of a family"},
    {{.kind = FY_CHANGE_DROP, .now_ns = 13}, "drop of a replica's stale state"},
};

static void check_same(const fy_change_t *want, const fy_change_t *got, const char *note)
{
    fy_change_kind_t kind = want->kind == FY_CHANGE_EXPIRE ? FY_CHANGE_DELETE : want->kind;
    if (got->kind != kind || got->now_ns != want->now_ns || got->nlabels != want->nlabels || got->post != want->post ||
        got->origin != FY_ORIGIN_REPLAY)
        fail_msg("%s: header differs", note);
    if (kind == FY_CHANGE_PUSH && (got->format != want->format || (got->life == NULL) != (want->life == NULL) ||
                                   (got->life != NULL && memcmp(got->life, want->life, sizeof(*want->life)) != 0)))
        fail_msg("%s: format or lifetime differs", note);
    for (size_t i = 0; i < want->nlabels; i++)
        if (!fy_str_eq(got->labels[i].name, want->labels[i].name) || !fy_str_eq(got->labels[i].value, want->labels[i].value))
            fail_msg("%s: label %zu differs", note, i);
    if (kind != FY_CHANGE_FAIL &&
        (got->body_len != want->body_len || (want->body_len && memcmp(got->body, want->body, want->body_len) != 0)))
        fail_msg("%s: body differs", note);
    if (got->merge != want->merge || !fy_str_eq(got->family, want->family))
        fail_msg("%s: merge or family differs", note);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned type;
        uint8_t *p;
        size_t len;
        assert_int_equal(fy_record_encode(&cases[i].c, &type, &p, &len), 0);
        fy_record_t r;
        if (fy_record_decode(type, p, len, &r) != 0)
            fail_msg("%s: does not decode", cases[i].note);
        check_same(&cases[i].c, &r.change, cases[i].note);
        fy_record_free(&r);
        free(p);
    }
    /* an expiry is logged as a delete; a restored group is not logged */
    fy_change_t e = {.kind = FY_CHANGE_EXPIRE, .now_ns = 3, .labels = GK, .nlabels = 2};
    unsigned type;
    uint8_t *p = NULL; /* GCC 12 -O3 cannot see that a failed assert does not return */
    size_t len = 0;
    assert_int_equal(fy_record_encode(&e, &type, &p, &len), 0);
    assert_int_equal(type, FY_REC_DELETE);
    fy_record_t r;
    assert_int_equal(fy_record_decode(type, p, len, &r), 0);
    check_same(&e, &r.change, "expiry");
    fy_record_free(&r);
    free(p);
    fy_change_t rs = {.kind = FY_CHANGE_RESTORE};
    assert_int_equal(fy_record_encode(&rs, &type, &p, &len), 1);
}

/* Every prefix shorter than the record is refused or decodes within its bounds (a push's body simply ends earlier);
 * every single-byte flip likewise, and an unknown type never decodes. */
static void test_damage(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned type;
        uint8_t *p;
        size_t len;
        assert_int_equal(fy_record_encode(&cases[i].c, &type, &p, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *q = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees any read past them */
            memcpy(q, p, cut);
            fy_record_t r;
            int rc = fy_record_decode(type, q, cut, &r);
            /* a push's (and a failure's, which has a push's layout) body and a bulk query run to the end */
            if (rc == 0 && cases[i].c.kind != FY_CHANGE_PUSH && cases[i].c.kind != FY_CHANGE_BULK &&
                cases[i].c.kind != FY_CHANGE_FAIL)
                fail_msg("%s: a record cut to %zu of %zu bytes decodes", cases[i].note, cut, len);
            if (rc == 0 && (const char *)r.change.body + r.change.body_len > (const char *)q + cut)
                fail_msg("%s: body runs past the record", cases[i].note);
            fy_record_free(&r);
            free(q);
        }
        for (size_t at = 0; at < len; at++)
            for (int bit = 0; bit < 8; bit++) {
                uint8_t *q = malloc(len);
                memcpy(q, p, len);
                q[at] ^= (uint8_t)(1u << bit);
                fy_record_t r;
                if (fy_record_decode(type, q, len, &r) == 0)
                    for (size_t k = 0; k < r.change.nlabels; k++) /* what decodes lies inside the record */
                        assert_true((const uint8_t *)r.change.labels[k].value.ptr + r.change.labels[k].value.len <= q + len ||
                                    r.change.labels[k].value.len == 0);
                fy_record_free(&r);
                free(q);
            }
        fy_record_t r;
        assert_int_equal(fy_record_decode(99, p, len, &r), -1);
        fy_record_free(&r);
        free(p);
    }
}

/* Records as the handlers wrote them before the change path: the bytes are the format, not the code. */
static void test_old_records(void **state)
{
    (void)state;
    static const uint8_t push[] = {1, 0x15, 0xcd, 0x5b, 0x07, 0, 0, 0, 0, /* v1, now 123456789 */
                                   1, 0,                                  /* POST, text */
                                   1, 0,    0,    0,    3,    0, 0, 0, 'j', 'o', 'b', 1, 0, 0, 0, 'x', 'm', ' ', '1', '\n'};
    fy_record_t r;
    assert_int_equal(fy_record_decode(FY_REC_PUSH, push, sizeof(push), &r), 0);
    assert_int_equal(r.change.kind, FY_CHANGE_PUSH);
    assert_int_equal(r.change.now_ns, 123456789);
    assert_true(r.change.post);
    assert_int_equal(r.change.nlabels, 1);
    assert_true(fy_str_eq_mem(r.change.labels[0].value, "x", 1));
    assert_int_equal(r.change.body_len, 4);
    fy_record_free(&r);
    static const uint8_t wipe_v2[] = {2, 0, 0, 0, 0, 0, 0, 0, 0}; /* version 2 exists only for pushes */
    assert_int_equal(fy_record_decode(FY_REC_WIPE, wipe_v2, sizeof(wipe_v2), &r), -1);
    fy_record_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_old_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
