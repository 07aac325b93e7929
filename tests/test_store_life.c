/*
 * test_store_life.c: the store's side of expiry, liveness and bulk deletes (docs/beyond-pushgateway.md) with a fake
 * clock: every call takes its time from the test, so deadlines and ages are exact.
 */
#include "store_testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define T0 1700000000000000000LL /* the fake clock's start (Unix ns) */
#define S 1000000000LL
#define NONE FY_LIFE_NONE

/* Pushes text with a declared lifetime (ttl/interval in fy_store_life_t's encoding: 0 = not declared). */
static int push_life(fy_store_t *s, const char *gk, fy_store_method_t m, const char *text, int64_t ttl, int64_t interval,
                     int64_t now)
{
    fy_store_life_t life = {ttl, interval};
    return push_text_life(s, gk, m, text, &life, now, NULL, 0);
}

/* The view of one group (found by its canonical grouping labels "job=a,x=y"), via fy_store_foreach_group. */
typedef struct {
    const char *want;
    int found;
    fy_store_group_view_t v;
} find_t;

static int find_cb(void *ctx, const fy_store_group_view_t *g)
{
    find_t *f = ctx;
    char buf[256];
    size_t n = 0;
    for (uint32_t i = 0; i < g->nlabels; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%.*s=%.*s", i ? "," : "", (int)g->labels[i].name.len,
                              g->labels[i].name.ptr, (int)g->labels[i].value.len, g->labels[i].value.ptr);
    if (strcmp(buf, f->want) == 0) {
        f->found = 1;
        f->v = *g;
        f->v.labels = NULL; /* not valid after the callback */
        f->v.families = NULL;
    }
    return 0;
}

static find_t find(fy_store_t *s, const char *gk)
{
    find_t f;
    memset(&f, 0, sizeof(f));
    f.want = gk;
    assert_int_equal(fy_store_foreach_group(s, find_cb, &f), 0);
    return f;
}

static fy_store_t *store_with(int64_t def_ttl, int64_t def_interval)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 4; /* few shards: the heaps hold many groups each */
    cfg.default_ttl_ns = def_ttl;
    cfg.default_interval_ns = def_interval;
    fy_store_t *s = fy_store_create(&cfg);
    assert_non_null(s);
    return s;
}

/* A table of pushes to one group and the TTL and deadline each leaves. */
typedef struct {
    const char *method;
    const char *body;
    int64_t ttl; /* declared by this push (0 = none) */
    int64_t at;  /* seconds after T0 */
    int rc;
    int64_t want_declared, want_ttl; /* group's declared and effective TTL afterwards */
    int64_t want_deadline;           /* ns after T0, or -1 = never */
    const char *note;
} ttl_step_t;

static void test_ttl_declarations(void **state)
{
    (void)state;
    /* clang-format off */
    static const ttl_step_t steps[] = {
        {"PUT",  "m 1\n",   10 * S, 0,  FY_OK, 10 * S, 10 * S, 10 * S, "declared: deadline = push time + TTL"},
        {"PUT",  "m 2\n",   0,      5,  FY_OK, 10 * S, 10 * S, 15 * S, "no header: the TTL sticks (PUT)"},
        {"POST", "n 1\n",   0,      6,  FY_OK, 10 * S, 10 * S, 16 * S, "no header: the TTL sticks (POST)"},
        {"PUT",  "m 1 5\n", 60 * S, 7,  FY_SERR_INVALID, 10 * S, 10 * S, 16 * S,
         "a rejected push changes neither the TTL nor the deadline"},
        {"POST", "m 3\n",   20 * S, 8,  FY_OK, 20 * S, 20 * S, 28 * S, "a new TTL replaces the old one"},
        {"PUT",  "m 4\n",   NONE,   9,  FY_OK, NONE,   0,      -1,     "0 in the header: no expiry any more"},
        {"PUT",  "m 5\n",   0,      30, FY_OK, NONE,   0,      -1,     "still none without a header"},
    };
    /* clang-format on */
    fy_store_t *s = store_with(0, 0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const ttl_step_t *t = &steps[i];
        int rc = push_life(s, "job=a", strcmp(t->method, "PUT") ? FY_STORE_POST : FY_STORE_PUT, t->body, t->ttl, 0, T0 + t->at * S);
        if (rc != t->rc)
            fail_msg("step %zu (%s): rc %d, want %d", i, t->note, rc, t->rc);
        find_t f = find(s, "job=a");
        assert_true(f.found);
        if (f.v.life.ttl_ns != t->want_declared || f.v.ttl_ns != t->want_ttl ||
            f.v.deadline_ns != (t->want_deadline < 0 ? 0 : T0 + t->want_deadline))
            fail_msg("step %zu (%s): declared %lld ttl %lld deadline %lld", i, t->note, (long long)f.v.life.ttl_ns,
                     (long long)f.v.ttl_ns, (long long)(f.v.deadline_ns ? f.v.deadline_ns - T0 : -1));
    }
    assert_int_equal(fy_store_expire(s, T0 + 1000 * S, NULL, NULL), 0);
    fy_store_destroy(s);
}

static int count_cb(void *ctx, const fy_store_group_view_t *g)
{
    (void)g;
    (*(int *)ctx)++;
    return 0;
}

static void test_expire(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    assert_int_equal(push_life(s, "job=a", FY_STORE_PUT, "m 1\n", 10 * S, 0, T0), FY_OK);
    assert_int_equal(push_life(s, "job=b", FY_STORE_PUT, "m 2\n", 0, 0, T0), FY_OK);
    assert_int_equal(push_life(s, "job=c", FY_STORE_PUT, "m 3\n", 5 * S, 0, T0 + 1 * S), FY_OK);
    int seen = 0;
    /* one nanosecond before each deadline nothing goes; at the deadline it does */
    assert_int_equal(fy_store_expire(s, T0 + 6 * S - 1, count_cb, &seen), 0);
    assert_int_equal(fy_store_expire(s, T0 + 6 * S, count_cb, &seen), 1);
    assert_int_equal(seen, 1);
    assert_false(find(s, "job=c").found);
    assert_int_equal(fy_store_expire(s, T0 + 10 * S - 1, NULL, NULL), 0);
    assert_int_equal(fy_store_expire(s, T0 + 10 * S, NULL, NULL), 1);
    char *t = render_text(s, NULL), *w = without_ts(t);
    assert_string_equal(w, "# TYPE m untyped\nm{instance=\"\",job=\"b\"} 2\n");
    free(t);
    free(w);
    char *j = render_json(s);
    assert_null(strstr(j, "\"a\""));
    assert_non_null(strstr(j, "\"b\""));
    free(j);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.expired, 2);
    /* the family index forgot the expired groups: m can change its type now that only b has it */
    assert_int_equal(push_life(s, "job=b", FY_STORE_PUT, "# TYPE m gauge\nm 2\n", 0, 0, T0 + 11 * S), FY_OK);
    fy_store_destroy(s);
}

static void test_push_after_deadline_starts_fresh(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    assert_int_equal(push_life(s, "job=a", FY_STORE_PUT, "old 1\n", 10 * S, 0, T0), FY_OK);
    /* a POST just before the deadline merges; at the deadline the group counts as gone even though nothing expired
     * it yet, so the POST starts a new group (without the TTL, which went with the group) */
    assert_int_equal(push_life(s, "job=a", FY_STORE_POST, "new 1\n", 0, 0, T0 + 20 * S), FY_OK);
    char *t = render_text(s, NULL), *w = without_ts(t);
    assert_string_equal(w, "# TYPE new untyped\nnew{instance=\"\",job=\"a\"} 1\n");
    free(t);
    free(w);
    find_t f = find(s, "job=a");
    assert_int_equal(f.v.deadline_ns, 0);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.groups, 1);
    fy_store_destroy(s);
}

static void test_defaults(void **state)
{
    (void)state;
    fy_store_t *s = store_with(60 * S, 15 * S);
    assert_int_equal(push_life(s, "job=d", FY_STORE_PUT, "m 1\n", 0, 0, T0), FY_OK);
    assert_int_equal(push_life(s, "job=e", FY_STORE_PUT, "m 1\n", NONE, NONE, T0), FY_OK);
    assert_int_equal(push_life(s, "job=f", FY_STORE_PUT, "m 1\n", 5 * S, 0, T0), FY_OK);
    find_t d = find(s, "job=d"), e = find(s, "job=e"), f = find(s, "job=f");
    assert_int_equal(d.v.life.ttl_ns, 0);
    assert_int_equal(d.v.ttl_ns, 60 * S);
    assert_int_equal(d.v.interval_ns, 15 * S);
    assert_int_equal(d.v.deadline_ns, T0 + 60 * S);
    assert_int_equal(e.v.ttl_ns, 0);
    assert_int_equal(e.v.interval_ns, 0);
    assert_int_equal(e.v.deadline_ns, 0);
    assert_int_equal(f.v.deadline_ns, T0 + 5 * S);
    assert_int_equal(f.v.interval_ns, 15 * S);
    int n = 0;
    assert_int_equal(fy_store_foreach_life(s, count_cb, &n), 0);
    assert_int_equal(n, 2); /* d and f; e opted out of both */
    /* a failure-only group (its first push was rejected) expires from its failure time */
    assert_int_equal(push_life(s, "job=g", FY_STORE_PUT, "m 1 5\n", 0, 0, T0 + 1 * S), FY_SERR_INVALID);
    assert_int_equal(find(s, "job=g").v.deadline_ns, T0 + 61 * S);
    assert_int_equal(fy_store_expire(s, T0 + 61 * S, NULL, NULL), 3);
    assert_true(find(s, "job=e").found);
    fy_store_destroy(s);
}

/* Liveness: the values fy_store_foreach_life hands out (the server turns them into push_alive). */
typedef struct {
    int64_t push_ns, interval_ns, deadline_ns;
    int n;
} life_t;

static int life_cb(void *ctx, const fy_store_group_view_t *g)
{
    life_t *l = ctx;
    l->push_ns = g->push_ns;
    l->interval_ns = g->interval_ns;
    l->deadline_ns = g->deadline_ns;
    l->n++;
    return 0;
}

static void test_liveness_values(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    life_t l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(push_life(s, "job=plain", FY_STORE_PUT, "m 1\n", 0, 0, T0), FY_OK);
    assert_int_equal(fy_store_foreach_life(s, life_cb, &l), 0);
    assert_int_equal(l.n, 0); /* nothing declared: not visited, so the scrape adds nothing */
    assert_int_equal(push_life(s, "job=l", FY_STORE_PUT, "m 1\n", 0, 30 * S, T0), FY_OK);
    assert_int_equal(push_life(s, "job=l", FY_STORE_POST, "n 1\n", 0, 0, T0 + 20 * S), FY_OK);
    assert_int_equal(fy_store_foreach_life(s, life_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.push_ns, T0 + 20 * S);
    assert_int_equal(l.interval_ns, 30 * S);
    assert_int_equal(l.deadline_ns, 0); /* an interval alone never deletes anything */
    assert_int_equal(fy_store_expire(s, T0 + 1000 * S, NULL, NULL), 0);
    /* clearing the interval takes the group off the list */
    assert_int_equal(push_life(s, "job=l", FY_STORE_POST, "", 0, NONE, T0 + 21 * S), FY_OK);
    l.n = 0;
    assert_int_equal(fy_store_foreach_life(s, life_cb, &l), 0);
    assert_int_equal(l.n, 0);
    fy_store_destroy(s);
}

/* Bulk deletes with a C predicate (the server's matchers are tested in test_server_beyond.c). */
typedef struct {
    const char *job;    /* delete groups with this job (NULL: any) */
    int64_t older_than; /* and last pushed before this (0: any age) */
} pred_t;

static int pred_cb(void *ctx, const fy_store_group_view_t *g)
{
    const pred_t *p = ctx;
    if (p->older_than && g->push_ns >= p->older_than)
        return 0;
    if (p->job == NULL)
        return 1;
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq_mem(g->labels[i].name, "job", 3))
            return fy_str_eq_mem(g->labels[i].value, p->job, strlen(p->job));
    return 0;
}

static void test_delete_where(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    char gk[64];
    for (int i = 0; i < 300; i++) {
        snprintf(gk, sizeof(gk), "job=%s,instance=i%d", i % 3 == 0 ? "backup" : "web", i);
        assert_int_equal(push_life(s, gk, FY_STORE_PUT, "m 1\n", i % 2 ? 100 * S : 0, 0, T0 + i * S), FY_OK);
    }
    pred_t p = {"backup", 0};
    assert_int_equal(fy_store_delete_where(s, pred_cb, &p), 100);
    assert_false(find(s, "instance=i0,job=backup").found);
    assert_true(find(s, "instance=i1,job=web").found);
    pred_t age = {NULL, T0 + 100 * S}; /* pushed more than 200 s before T0 + 300 s */
    /* i in [0, 100) not multiple of 3 remain: 66 groups */
    assert_int_equal(fy_store_delete_where(s, pred_cb, &age), 66);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 300 - 166);
    assert_int_equal(st.bulk_deleted, 166);
    /* deleted groups left the expiry heaps: expiring everything removes exactly the TTL'd survivors */
    int left_with_ttl = 0;
    for (int i = 100; i < 300; i++)
        left_with_ttl += i % 3 != 0 && i % 2 == 1;
    assert_int_equal(fy_store_expire(s, T0 + 10000 * S, NULL, NULL), (uint64_t)left_with_ttl);
    fy_store_destroy(s);
}

/* The heap against a brute-force count: many groups, deadlines in random order, re-pushes moving them. */
static void test_heap_order(void **state)
{
    (void)state;
    enum { N = 2000 };
    static int64_t deadline[N];
    fy_store_t *s = store_with(0, 0);
    uint64_t x = 88172645463325252ULL;
    char gk[32];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int64_t ttl = (int64_t)(x % 1000) * S + 1;
            int64_t at = T0 + round * 10 * S;
            snprintf(gk, sizeof(gk), "job=j%d", i);
            assert_int_equal(push_life(s, gk, FY_STORE_PUT, "m 1\n", ttl, 0, at), FY_OK);
            deadline[i] = at + ttl;
        }
    uint64_t total = 0;
    for (int64_t t = T0; t <= T0 + 1100 * S; t += 37 * S) {
        uint64_t want = 0;
        for (int i = 0; i < N; i++)
            want += deadline[i] > t - 37 * S && deadline[i] <= t;
        if (t == T0)
            want = 0;
        uint64_t got = fy_store_expire(s, t, NULL, NULL);
        if (got != want)
            fail_msg("at +%llds: expired %llu, want %llu", (long long)((t - T0) / S), (unsigned long long)got,
                     (unsigned long long)want);
        total += got;
    }
    assert_int_equal(total, N);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 0);
    fy_store_destroy(s);
}

static void test_restore_times(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    assert_int_equal(push_life(s, "job=r", FY_STORE_PUT, "m 1\n", 0, 0, T0 + 100 * S), FY_OK);
    fy_store_label_t l[1] = {{fy_str("job", 3), fy_str("r", 1)}};
    fy_store_times_t t;
    memset(&t, 0, sizeof(t));
    t.push_ns = t.push_stamp_ns = T0;
    t.life.ttl_ns = 50 * S;
    t.life.interval_ns = 10 * S;
    assert_int_equal(fy_store_restore_times(s, l, 1, &t, NULL, NULL, 0), FY_OK);
    find_t f = find(s, "job=r");
    assert_int_equal(f.v.life.ttl_ns, 50 * S);
    assert_int_equal(f.v.interval_ns, 10 * S);
    assert_int_equal(f.v.deadline_ns, T0 + 50 * S); /* from the restored push time, not the restoring push */
    assert_int_equal(fy_store_expire(s, T0 + 50 * S, NULL, NULL), 1);
    fy_store_destroy(s);
}

/* Pushes with TTLs, the expiry timer, bulk deletes and lock-free text scrapes at the same time (under ASan/TSan this
 * is the race test): the counters must add up and nothing may be left in a heap once the store is empty. */
typedef struct {
    fy_store_t *s;
    int id;
    _Atomic int *stop;
    _Atomic int64_t *clock;
} conc_t;

static void *conc_pusher(void *arg)
{
    conc_t *c = arg;
    char gk[48];
    for (int i = 0; !atomic_load(c->stop); i++) {
        snprintf(gk, sizeof(gk), "job=p%d,instance=i%d", c->id, i % 500);
        int64_t now = atomic_fetch_add(c->clock, 1000000);
        assert_int_equal(push_life(c->s, gk, i % 3 ? FY_STORE_PUT : FY_STORE_POST, "m 1\nn 2\n", (i % 7 + 1) * 10000000LL,
                                   i % 2 ? 5 * S : 0, now),
                         FY_OK);
    }
    return NULL;
}

/* Scrapes read slots and records without locks while bulk deletes retire them (epoch-based reclamation). */
static void *conc_scraper(void *arg)
{
    conc_t *c = arg;
    while (!atomic_load(c->stop))
        free(render_text(c->s, NULL));
    return NULL;
}

static int pred_odd(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    return g->labels[0].value.len > 0 && (g->labels[0].value.ptr[g->labels[0].value.len - 1] & 1);
}

static void test_concurrent(void **state)
{
    (void)state;
    fy_store_t *s = store_with(0, 0);
    _Atomic int stop = 0;
    _Atomic int64_t clock = T0;
    pthread_t th[3];
    conc_t c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (conc_t){s, i, &stop, &clock};
        assert_int_equal(pthread_create(&th[i], NULL, i < 2 ? conc_pusher : conc_scraper, &c[i]), 0);
    }
    uint64_t expired = 0, deleted = 0;
    for (int k = 0; k < 300; k++) {
        expired += fy_store_expire(s, atomic_load(&clock), NULL, NULL);
        if (k % 50 == 0)
            deleted += fy_store_delete_where(s, pred_odd, NULL);
        int n = 0;
        fy_store_foreach_life(s, count_cb, &n);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.bulk_deleted, deleted);
    assert_true(st.expired >= expired); /* pushes after a deadline expire groups themselves */
    /* everything left has a deadline: expiring far in the future empties the store and every heap */
    fy_store_expire(s, INT64_MAX - 1, NULL, NULL);
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 0);
    assert_int_equal(st.series, 0);
    int n = 0;
    fy_store_foreach_life(s, count_cb, &n);
    assert_int_equal(n, 0);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_declarations),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_push_after_deadline_starts_fresh),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_liveness_values),
        cmocka_unit_test(test_delete_where),
        cmocka_unit_test(test_heap_order),
        cmocka_unit_test(test_restore_times),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
