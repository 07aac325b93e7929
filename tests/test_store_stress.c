/*
 * test_store_stress.c: threads pushing (PUT and POST, shared family names, some new series, some rejected pushes),
 * deleting and rendering text and JSON at the same time; bounded by iterations and by time. Run under TSan by
 * `make test`. At the end every scrape must still be well-formed and the counters must match a fresh count.
 */
#include "store_int.h"
#include "store_testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define THREADS 4
#define ITERS 3000
#define MAX_SECONDS 20

static fy_store_t *S;
static _Atomic int stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *pusher(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, st = id * 7919u + 1;
    double t0 = now_s();
    for (int i = 0; i < ITERS && now_s() - t0 < MAX_SECONDS; i++) {
        st = st * 1103515245u + 12345u;
        unsigned r = (st >> 16) & 0x7fff;
        char gk[32], body[512];
        snprintf(gk, sizeof(gk), "job=j%u", r % 16);
        int op = (int)(r % 8);
        if (op == 0) {
            delete_gk(S, gk);
            continue;
        }
        if (op == 1) /* a type conflict half of the time: rejected, failure time recorded */
            snprintf(body, sizeof(body), "# TYPE shared %s\nshared 1\n", (r & 64) ? "counter" : "gauge");
        else
            snprintf(body, sizeof(body),
                     "# HELP shared s%u\n# TYPE shared counter\nshared{q=\"%u\"} %u\n# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 1\nh_sum 2\nh_count 3\nown_%u %u\n",
                     r % 2, r % 5, r, id, i); /* two HELP variants: scrapes choose among groups (fy__group_gfam) */
        push_text(S, gk, (op & 1) ? FY_STORE_POST : FY_STORE_PUT, body, (int64_t)i * 1000, NULL, 0);
    }
    return NULL;
}

static void *renderer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        char *t = render_text(S, NULL);
        assert_true(t[0] == 0 || t[strlen(t) - 1] == '\n');
        free(t);
        char *j = render_json(S);
        assert_true(j[strlen(j) - 1] == '}');
        free(j);
    }
    return NULL;
}

static int count_cb(void *ctx, const fy_store_group_view_t *g)
{
    uint64_t *c = ctx;
    c[0]++;
    c[1] += 2;
    for (uint32_t i = 0; i < g->nfamilies; i++)
        c[1] += g->families[i].nseries;
    return 0;
}

static void test_stress(void **state)
{
    (void)state;
    fy_store_config_t cfg = {0};
    cfg.nshards = 4;
    cfg.nstripes = 8;
    S = fy_store_create(&cfg);
    /* parse once before the threads start: the text parser initialises a static table on first use (a race reported
     * to its owner); the store itself is what this test exercises */
    assert_int_equal(push_text(S, "job=warm", FY_STORE_PUT, "warm 1\n", 0, NULL, 0), FY_OK);
    pthread_t p[THREADS], r[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&r[i], NULL, renderer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&p[i], NULL, pusher, (void *)(uintptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(p[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    uint64_t c[2] = {0, 0};
    fy_store_foreach_group(S, count_cb, c);
    fy_store_stats_t st;
    fy_store_stats(S, &st);
    assert_int_equal(st.groups, c[0]);
    assert_int_equal(st.series, c[1]);
    char *t = render_text(S, NULL);
    /* every stored series is rendered: one line per scalar series, 4 per histogram */
    size_t lines = 0;
    for (const char *q = t; *q; q++)
        lines += *q == '\n';
    assert_true(lines >= c[1]);
    free(t);
    fy_store_destroy(S);
}

/* Re-pushes of the same shape rewrite the stored records in place (push.c rec_rewrite, from the blind path after
 * the second push): a scrape must see each series whole, from one push. Every push gives all numbers of a histogram of
 * INPLACE_BUCKETS buckets the same value N (many buckets: a long rewrite, so that a scrape without the seqlock would see a mix);
 * every scrape checks that the h lines agree. */
#define INPLACE_BUCKETS 200

static size_t inplace_body(char *body, size_t cap, unsigned n)
{
    size_t len = (size_t)snprintf(body, cap, "# TYPE h histogram\n");
    for (int b = 0; b < INPLACE_BUCKETS; b++)
        len += (size_t)snprintf(body + len, cap - len, "h_bucket{le=\"%d\"} %u\n", b, n);
    len += (size_t)snprintf(body + len, cap - len, "h_bucket{le=\"+Inf\"} %u\nh_sum %u\nh_count %u\n", n, n, n);
    assert_true(len < cap);
    return len;
}

static void *same_shape_pusher(void *arg)
{
    (void)arg;
    double t0 = now_s();
    static char body[INPLACE_BUCKETS * 40 + 256];
    for (unsigned n = 1; n <= 20000 && now_s() - t0 < MAX_SECONDS / 2; n++) {
        inplace_body(body, sizeof(body), n);
        assert_int_equal(push_text(S, "job=inplace", FY_STORE_PUT, body, (int64_t)n, NULL, 0), FY_OK);
    }
    atomic_store(&stop, 1);
    return NULL;
}

static void test_inplace_consistent(void **state)
{
    (void)state;
    static char body[INPLACE_BUCKETS * 40 + 256];
    S = fy_store_create(NULL);
    atomic_store(&stop, 0);
    inplace_body(body, sizeof(body), 0);
    assert_int_equal(push_text(S, "job=inplace", FY_STORE_PUT, body, 0, NULL, 0), FY_OK);
    pthread_t p;
    pthread_create(&p, NULL, same_shape_pusher, NULL);
    unsigned scrapes = 0;
    while (!atomic_load(&stop)) {
        char *t = render_text(S, NULL);
        long v = -1;
        unsigned lines = 0;
        for (char *q = t; *q;) {
            char *e = strchr(q, '\n');
            assert_non_null(e);
            if (q[0] == 'h' && q[1] == '_') {
                long x = strtol(strrchr(q, ' ') + 1, NULL, 10);
                if (v < 0)
                    v = x;
                assert_int_equal(x, v);
                lines++;
            }
            q = e + 1;
        }
        assert_int_equal(lines, INPLACE_BUCKETS + 3);
        free(t);
        scrapes++;
    }
    pthread_join(p, NULL);
    assert_true(scrapes > 0);
    assert_true(fy__store_nblind(S) > 0); /* the pusher has ended */
    fy_store_destroy(S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stress), cmocka_unit_test(test_inplace_consistent)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
