/*
 * test_core_change.c: the change path (src/change.h) without HTTP: a change in, a result and the observers' calls out.
 * Tables of (change, expected status and message, what each observer must have seen, what the store then holds).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_testlib.h"

#include "../src/core/life.c"
#include "../src/core/bulk.c"
#include "../src/core/reaper.c"
#include "../src/common/grow.c"
#include "../src/common/url.c"
#include "../src/core/change.c"
#include "../src/common/cpus.c"
#include "../src/common/flags.c"
#include "../src/common/log.c"
#include "../src/core/push.c"
#include "../src/http/router.c"
#include "../src/core/selfmetrics.c"

/* The store's groups as their job values, comma-separated, in the store's order. */
typedef struct {
    char *buf;
    size_t cap;
} groups_t;

static int add_group(void *ctx, const fy_store_group_view_t *g)
{
    groups_t *G = ctx;
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq_mem(g->labels[i].name, "job", 3)) {
            size_t n = strlen(G->buf);
            snprintf(G->buf + n, G->cap - n, "%s%.*s", n ? "," : "", (int)g->labels[i].value.len, g->labels[i].value.ptr);
        }
    return 0;
}

static void check_groups(fy_store_t *s, char *buf, size_t cap)
{
    groups_t G = {buf, cap};
    buf[0] = '\0';
    fy_store_foreach_group(s, add_group, &G);
}

/* An observer that records what it is handed. */
typedef struct {
    int ordered;
    const char *refuse; /* refuses returns this */
    int fail_prepare;   /* prepare returns -1 */
    const char *fail_commit;
    uint64_t next_seq; /* commit hands out 1, 2, ... when non-zero */
    int prepared, committed, changed, freed;
    char seen[1024]; /* "kind:origin:changed:key;" per commit, in order */
    const fy_change_t *last;
} rec_obs_t;

static const char *obs_refuses(void *ctx)
{
    return ((rec_obs_t *)ctx)->refuse;
}

static int obs_prepare(void *ctx, const fy_change_t *c, void **state)
{
    rec_obs_t *o = ctx;
    (void)c;
    if (o->fail_prepare)
        return -1;
    o->prepared++;
    *state = malloc(8); /* must come back to commit to be freed (ASan checks) */
    return 0;
}

static const char *obs_commit(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state, uint64_t *seq)
{
    rec_obs_t *o = ctx;
    (void)r;
    free(state);
    o->committed++;
    o->changed += changed;
    o->last = c;
    size_t n = strlen(o->seen);
    snprintf(o->seen + n, sizeof(o->seen) - n, "%d:%d:%d:%.*s;", c->kind, c->origin, changed,
             c->nlabels ? (int)c->labels[0].value.len : 0, c->nlabels ? c->labels[0].value.ptr : "");
    *seq = o->next_seq ? o->next_seq++ : 0;
    return o->fail_commit;
}

static fy_change_observer_t observer(rec_obs_t *o)
{
    fy_change_observer_t x = {o, o->ordered, obs_refuses, obs_prepare, obs_commit, NULL, 0};
    return x;
}

typedef struct {
    fy_store_t *store;
    fy_core_t core;
    fy_selfstats_t stats;
    fy_push_arena_t arena;
} fixture_t;

static fixture_t *setup_mode(int lww)
{
    fixture_t *f = calloc(1, sizeof(*f));
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_groups = 3;
    cfg.lww = (uint8_t)lww;
    f->store = fy_store_create(&cfg);
    fy_selfstats_init(&f->stats, 1, "v", "r", "b");
    fy_push_limits_t lim = {10, 0, 0};
    fy_core_init(&f->core, f->store, &lim, &f->stats);
    f->core.lww = lww;
    atomic_store(&f->core.ready, 1);
    return f;
}

static fixture_t *setup(void)
{
    return setup_mode(0);
}

static void teardown(fixture_t *f)
{
    fy_core_dispose(&f->core);
    fy_push_arena_free(&f->arena);
    fy_selfstats_dispose(&f->stats);
    fy_store_destroy(f->store);
    free(f);
}

static fy_change_result_t change(fixture_t *f, fy_change_kind_t kind, const char *job, const char *body, int64_t now)
{
    fy_store_label_t l = {fy_str("job", 3), fy_str(job, job ? strlen(job) : 0)};
    fy_change_t c = {.kind = kind,
                     .origin = FY_ORIGIN_CLIENT,
                     .now_ns = now,
                     .labels = job ? &l : NULL,
                     .nlabels = job ? 1 : 0,
                     .format = FY_FMT_TEXT,
                     .body = body,
                     .body_len = body ? strlen(body) : 0};
    fy_change_result_t r;
    fy_core_apply(&f->core, &c, &f->arena, &r);
    return r;
}

/* A table of single changes on a store holding {job="a"} with one family. */
static void test_kinds(void **state)
{
    (void)state;
    static const struct {
        fy_change_kind_t kind;
        const char *job, *body;
        int status;
        const char *msg;    /* prefix of the result's message */
        int changed;        /* what the observer's commit was told */
        const char *groups; /* the store's groups after, by job, in order */
        const char *note;
    } cases[] = {
        {FY_CHANGE_PUSH, "b", "m 1\n", 200, "", 1, "a,b", "a new group"},
        {FY_CHANGE_PUSH, "a", "m{x=\"1\"} 1\nm 2\n", 200, "", 1, "a", "PUT replaces the group"},
        {FY_CHANGE_PUSH, "a", "m 1\nm 2\n", 400, "", 1, "a", "invalid: refused, yet the failure time changed"},
        {FY_CHANGE_PUSH, "a", "garbage{\n", 400, "text format parsing error", 0, "a", "does not parse: store not asked"},
        {FY_CHANGE_PUSH, "a",
         "m{i=\"1\"} 1\nm{i=\"2\"} 1\nm{i=\"3\"} 1\nm{i=\"4\"} 1\nm{i=\"5\"} 1\nm{i=\"6\"} 1\n"
         "m{i=\"7\"} 1\nm{i=\"8\"} 1\nm{i=\"9\"} 1\nm{i=\"10\"} 1\nm{i=\"11\"} 1\n",
         400, "push has 11 series", 0, "a", "per-push limit"},
        {FY_CHANGE_DELETE, "a", NULL, 202, "", 1, "", "delete"},
        {FY_CHANGE_DELETE, "zz", NULL, 202, "", 1, "a", "a missing group: a no-op, still a change"},
        {FY_CHANGE_WIPE, NULL, NULL, 202, "", 1, "", "wipe"},
        {FY_CHANGE_BULK, NULL, "match[]={job=\"a\"}", 200, "", 1, "", "bulk delete"},
        {FY_CHANGE_BULK, NULL, "match[]={job=", 400, "", 0, "a", "a bad bulk query"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t *f = setup();
        fy_change_result_t r = change(f, FY_CHANGE_PUSH, "a", "m 1\n", 1000);
        assert_int_equal(r.status, 200);
        fy_change_result_free(&r);
        rec_obs_t o = {0};
        fy_change_observer_t ob = observer(&o);
        assert_int_equal(fy_core_observe(&f->core, &ob), 0);
        r = change(f, cases[i].kind, cases[i].job, cases[i].body, 2000);
        if (r.status != cases[i].status || strncmp(r.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s: %d %s, expected %d %s", cases[i].note, r.status, r.msg, cases[i].status, cases[i].msg);
        if (o.prepared != 1 || o.committed != 1 || o.changed != cases[i].changed)
            fail_msg("%s: prepared %d committed %d changed %d", cases[i].note, o.prepared, o.committed, o.changed);
        assert_true(r.applied);
        assert_int_equal(r.seq, 0);
        fy_change_result_free(&r);
        char groups[256] = "";
        check_groups(f->store, groups, sizeof(groups));
        if (strcmp(groups, cases[i].groups) != 0)
            fail_msg("%s: groups %s, expected %s", cases[i].note, groups, cases[i].groups);
        teardown(f);
    }
}

/* Admission: not ready, an observer's veto, a failed prepare; none reaches the store or commits anything. */
static void test_admission(void **state)
{
    (void)state;
    fixture_t *f = setup();
    rec_obs_t o = {0};
    fy_change_observer_t ob = observer(&o);
    fy_core_observe(&f->core, &ob);

    atomic_store(&f->core.ready, 0);
    fy_change_result_t r = change(f, FY_CHANGE_PUSH, "a", "m 1\n", 1);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.msg, "Service Unavailable: loading persisted metrics");
    assert_false(r.applied);
    fy_change_result_free(&r);
    /* a replay is applied while not ready */
    fy_store_label_t l = {fy_str("job", 3), fy_str("a", 1)};
    fy_change_t c = {.kind = FY_CHANGE_PUSH,
                     .origin = FY_ORIGIN_REPLAY,
                     .now_ns = 2,
                     .labels = &l,
                     .nlabels = 1,
                     .body = "m 1\n",
                     .body_len = 4};
    fy_core_apply(&f->core, &c, &f->arena, &r);
    assert_int_equal(r.status, 200);
    fy_change_result_free(&r);
    assert_string_equal(o.seen, "1:1:1:a;");
    atomic_store(&f->core.ready, 1);

    o.refuse = "the log failed";
    r = change(f, FY_CHANGE_DELETE, "a", NULL, 3);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.msg, "could not persist the deletion: the log failed");
    assert_true(r.not_persisted);
    assert_string_equal(r.why, "the log failed");
    assert_false(r.applied);
    fy_change_result_free(&r);
    o.refuse = NULL;

    o.fail_prepare = 1;
    r = change(f, FY_CHANGE_DELETE, "a", NULL, 4);
    assert_int_equal(r.status, 500);
    assert_false(r.applied);
    fy_change_result_free(&r);
    o.fail_prepare = 0;
    assert_int_equal(o.committed, 1); /* still only the replay */
    char groups[64] = "";
    check_groups(f->store, groups, sizeof(groups));
    assert_string_equal(groups, "a");
    teardown(f);
}

/* Ordered observers see changes in store order and give the sequence number the answer waits for; a failed commit
 * turns the answer into a 500 naming the reason (the change itself was applied). */
static void test_order_and_seq(void **state)
{
    (void)state;
    fixture_t *f = setup();
    rec_obs_t log = {.ordered = 1, .next_seq = 1}, snap = {0};
    fy_change_observer_t a = observer(&log), b = observer(&snap);
    fy_core_observe(&f->core, &a);
    fy_core_observe(&f->core, &b);
    static const char *const jobs[] = {"x", "y", "z"};
    for (int i = 0; i < 3; i++) {
        fy_change_result_t r = change(f, FY_CHANGE_PUSH, jobs[i], "m 1\n", 10 + i);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.seq, (uint64_t)i + 1);
        fy_change_result_free(&r);
    }
    assert_string_equal(log.seen, "1:0:1:x;1:0:1:y;1:0:1:z;");
    assert_string_equal(snap.seen, log.seen);
    /* the store holds 3 groups at most: the fourth is refused; like every push that reached the store it is handed
     * on (a refused push may set a group's failure time; a replay refuses it again) */
    fy_change_result_t r = change(f, FY_CHANGE_PUSH, "w", "m 1\n", 20);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.limit, FY_LIMIT_STORE_GROUPS);
    assert_int_equal(r.seq, 4);
    fy_change_result_free(&r);
    assert_string_equal(log.seen + strlen(log.seen) - 8, "1:0:1:w;");
    log.fail_commit = "disk full";
    r = change(f, FY_CHANGE_DELETE, "x", NULL, 30);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.msg, "could not persist the deletion: disk full");
    assert_int_equal(r.seq, 0);
    fy_change_result_free(&r);
    teardown(f);
}

/* Expiry hands each expired group to the observers as FY_CHANGE_EXPIRE at the pass's time. */
static void test_expire(void **state)
{
    (void)state;
    fixture_t *f = setup();
    fy_store_life_t life = {100, 0};
    fy_store_label_t l = {fy_str("job", 3), fy_str("t", 1)};
    fy_change_t c = {.kind = FY_CHANGE_PUSH,
                     .origin = FY_ORIGIN_CLIENT,
                     .now_ns = 1000,
                     .labels = &l,
                     .nlabels = 1,
                     .body = "m 1\n",
                     .body_len = 4,
                     .life = &life};
    fy_change_result_t r;
    fy_core_apply(&f->core, &c, &f->arena, &r);
    assert_int_equal(r.status, 200);
    fy_change_result_free(&r);
    r = change(f, FY_CHANGE_PUSH, "keep", "m 1\n", 1000);
    fy_change_result_free(&r);
    rec_obs_t o = {.ordered = 1};
    fy_change_observer_t ob = observer(&o);
    fy_core_observe(&f->core, &ob);
    assert_int_equal(fy_core_expire(&f->core, 1099), 0);
    assert_int_equal(fy_core_expire(&f->core, 1100), 1);
    assert_string_equal(o.seen, "5:3:1:t;");
    assert_int_equal(o.last == NULL, 0);
    char groups[64] = "";
    check_groups(f->store, groups, sizeof(groups));
    assert_string_equal(groups, "keep");
    teardown(f);
}

/* Replication's drop of stale state (a replica away longer than the tombstone retention): every group and every
 * tombstone goes without a trace, also when an observer refuses changes (a failed log); the observers see it once (the
 * log records it so that a replay drops too; replication leaves it out by its kind). */
static void test_drop(void **state)
{
    (void)state;
    fixture_t *f = setup_mode(1);
    static const struct {
        fy_change_kind_t kind;
        const char *job;
        int64_t stamp;
        int status;
    } before[] = {
        {FY_CHANGE_PUSH, "a", 1000, 200},
        {FY_CHANGE_PUSH, "b", 1100, 200},
        {FY_CHANGE_DELETE, "b", 1200, 202},
    };
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
        fy_change_result_t r = change(f, before[i].kind, before[i].job, "m 1\n", before[i].stamp);
        assert_int_equal(r.status, before[i].status);
        fy_change_result_free(&r);
    }
    fy_store_stats_t st;
    fy_store_stats(f->store, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.tombstones, 1);
    rec_obs_t o = {.ordered = 1, .refuse = "the log failed"};
    fy_change_observer_t ob = observer(&o);
    fy_core_observe(&f->core, &ob);
    fy_change_t d = {.kind = FY_CHANGE_DROP, .origin = FY_ORIGIN_CLUSTER, .now_ns = 1201};
    fy_change_result_t r;
    fy_core_apply(&f->core, &d, &f->arena, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.applied);
    assert_int_equal(r.deleted, 1);
    fy_change_result_free(&r);
    assert_string_equal(o.seen, "9:5:1:;");
    char groups[64] = "x";
    check_groups(f->store, groups, sizeof(groups));
    assert_string_equal(groups, "");
    fy_store_stats(f->store, &st);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(st.bulk_deleted, 0);
    /* nothing remembers b's delete: a peer's older push of it is taken */
    o.refuse = NULL;
    fy_store_label_t l = {fy_str("job", 3), fy_str("b", 1)};
    fy_change_t m = {.kind = FY_CHANGE_PUSH,
                     .origin = FY_ORIGIN_PEER,
                     .merge = 1,
                     .now_ns = 1150,
                     .labels = &l,
                     .nlabels = 1,
                     .body = "m 1\n",
                     .body_len = 4};
    fy_core_apply(&f->core, &m, &f->arena, &r);
    assert_int_equal(r.status, 200);
    fy_change_result_free(&r);
    check_groups(f->store, groups, sizeof(groups));
    assert_string_equal(groups, "b");
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),  cmocka_unit_test(test_admission), cmocka_unit_test(test_order_and_seq),
        cmocka_unit_test(test_expire), cmocka_unit_test(test_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
