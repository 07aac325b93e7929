/*
 * test_cluster_wire.c: the peer protocol's frames (src/cluster/wire.h) and the group record that carries a state
 * transfer (src/persist/grouprec.h, version 3): frames come out whole however the bytes are cut, a damaged frame is
 * refused, and a group's replication registers survive the trip exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fy_parse.h"
#include "store.h"

#include "../src/common/crc32c.c"
#include "../src/cluster/wire.c"
#include "../src/persist/grouprec.c"

/* (frames, how the bytes arrive, expected sequence of (type, payload), note) */
static void test_frames(void **state)
{
    (void)state;
    fy_wbuf_t out = {0};
    static const struct {
        unsigned type;
        const char *payload;
    } frames[] = {
        {FY_MSG_HELLO, "hello"}, {FY_MSG_ACK, "12345678"}, {FY_MSG_HB, ""}, {FY_MSG_OP, "a longer payload, 33 bytes long.."}};
    for (size_t i = 0; i < 4; i++) {
        size_t at = fy_frame_begin(&out, frames[i].type);
        fy_wbuf_add(&out, frames[i].payload, strlen(frames[i].payload));
        fy_frame_end(&out, at);
    }
    static const struct {
        size_t step;
        const char *note;
    } feeds[] = {{1, "byte by byte"}, {7, "7 bytes at a time"}, {4096, "all at once"}};
    for (size_t f = 0; f < 3; f++) {
        fy_wbuf_t in = {0};
        size_t got = 0;
        for (size_t off = 0; off < out.n; off += feeds[f].step) {
            size_t n = out.n - off < feeds[f].step ? out.n - off : feeds[f].step;
            fy_wbuf_add(&in, out.p + off, n);
            unsigned type;
            fy_str_t payload;
            int rc;
            while ((rc = fy_frame_next(&in, &type, &payload)) == 1) {
                assert_true(got < 4);
                if (type != frames[got].type || !fy_str_eq(payload, fy_str(frames[got].payload, strlen(frames[got].payload))))
                    fail_msg("%s: frame %zu differs", feeds[f].note, got);
                got++;
            }
            assert_int_equal(rc, 0);
            fy_wbuf_compact(&in);
        }
        if (got != 4)
            fail_msg("%s: %zu frames", feeds[f].note, got);
        fy_wbuf_free(&in);
    }
    /* a flipped bit anywhere in a frame is refused (checksum, or a length that no longer fits) */
    for (size_t at = 0; at < 17; at++) {
        fy_wbuf_t in = {0};
        fy_wbuf_add(&in, out.p, 17); /* the first frame: 9 + 5 bytes, and 3 of the next */
        in.p[at] ^= 0x10;
        unsigned type;
        fy_str_t payload;
        int rc = fy_frame_next(&in, &type, &payload);
        if (at < 14 && rc == 1)
            fail_msg("a flip at byte %zu went unnoticed", at);
        fy_wbuf_free(&in);
    }
    fy_wbuf_free(&out);
    /* reading past a payload sets bad and yields zeros */
    fy_wrd_t r = fy_wrd(fy_str("\x01\x02", 2));
    assert_int_equal(fy_wrd_u16(&r), 0x0201);
    assert_int_equal(fy_wrd_u32(&r), 0);
    assert_true(r.bad);
}

/* A group with every register set, through foreach_changed_since, encode (v3), decode. */
typedef struct {
    fy_grouprec_buf_t b[4];
    int n;
} enc_t;

static int enc(void *ctx, const fy_store_group_view_t *g)
{
    enc_t *E = ctx;
    assert_true(E->n < 4);
    assert_int_equal(fy_grouprec_encode(g, 1, &E->b[E->n]), 0);
    E->n++;
    return 0;
}

static void parse_push(fy_store_t *s, const char *job, const char *text, int post, int64_t stamp, const fy_store_life_t *life)
{
    char arena[65536];
    fy_arena_t a;
    fy_arena_init(&a, arena, sizeof(arena));
    fy_body_t body;
    fy_parse_error_t perr;
    assert_int_equal(fy_parse_text(text, strlen(text), &a, &body, &perr), FY_OK);
    fy_store_label_t gk = {{"job", 3}, {job, strlen(job)}};
    assert_int_equal(fy_store_merge_push(s, &gk, 1, post ? FY_STORE_POST : FY_STORE_PUT, &body, life, stamp, 0, NULL, NULL), FY_OK);
}

static void test_grouprec_v3(void **state)
{
    (void)state;
    fy_store_config_t cfg = {.lww = 1};
    fy_store_t *s = fy_store_create(&cfg);
    fy_store_life_t life = {60000000000LL, 0};
    parse_push(s, "a", "# TYPE x counter\nx{k=\"v\"} 1\n# TYPE y gauge\ny 2\n", 0, 1000, &life);
    parse_push(s, "a", "z 3\n", 1, 2000, NULL);
    fy_store_label_t ga = {{"job", 3}, {"a", 1}}, gb = {{"job", 3}, {"b", 1}};
    assert_int_equal(fy_store_kill(s, &ga, 1, fy_str("y", 1), 1500), FY_OK);
    assert_int_equal(fy_store_fail(s, &ga, 1, 2500), FY_OK);
    parse_push(s, "b", "w 1\n", 0, 3000, NULL);
    assert_int_equal(fy_store_delete(s, &gb, 1, 4000), FY_OK); /* a tombstone */
    enc_t E;
    memset(&E, 0, sizeof(E));
    assert_int_equal(fy_store_foreach_changed_since(s, 0, enc, &E), 0);
    assert_int_equal(E.n, 2);
    int seen_group = 0, seen_tomb = 0;
    for (int i = 0; i < E.n; i++) {
        fy_grouprec_t g;
        char err[128];
        assert_int_equal(fy_grouprec_decode(E.b[i].p, E.b[i].n, &g, err, sizeof(err)), 0);
        assert_int_equal(g.version, FY_GROUPREC_V3);
        if (g.tombstone) {
            seen_tomb = 1;
            assert_int_equal(g.clear_ns, 4000);
            assert_true(fy_str_eq(g.labels[0].value, fy_str("b", 1)));
        } else {
            seen_group = 1;
            assert_int_equal(g.clear_ns, 1000); /* the PUT's */
            assert_int_equal(g.times.push_stamp_ns, 2000);
            assert_int_equal(g.times.fail_stamp_ns, 2500);
            assert_int_equal(g.times.life.ttl_ns, 60000000000LL);
            assert_int_equal(g.ttl_stamp_ns, 1000);
            assert_int_equal(g.nkills, 1);
            assert_true(fy_str_eq(g.kills[0].name, fy_str("y", 1)));
            assert_int_equal(g.kills[0].stamp, 1500);
            assert_int_equal(g.nstamps, 2); /* x and z: y was killed */
            assert_true(fy_str_eq(g.names[0], fy_str("x", 1)));
            assert_int_equal(g.stamps[0], 1000);
            assert_true(fy_str_eq(g.names[1], fy_str("z", 1)));
            assert_int_equal(g.stamps[1], 2000);
            assert_int_equal(g.body.families[0].nseries, 1);
        }
        /* every truncation is refused, never read past */
        for (size_t cut = 0; cut < E.b[i].n; cut++) {
            char *q = malloc(cut ? cut : 1);
            memcpy(q, E.b[i].p, cut);
            fy_grouprec_t t;
            assert_int_not_equal(fy_grouprec_decode(q, cut, &t, err, sizeof(err)), 0);
            fy_grouprec_free(&t);
            free(q);
        }
        fy_grouprec_free(&g);
    }
    assert_true(seen_group && seen_tomb);
    for (int i = 0; i < 4; i++)
        fy_grouprec_buf_free(&E.b[i]);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_grouprec_v3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
