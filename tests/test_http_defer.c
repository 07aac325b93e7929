/*
 * test_http_defer.c: the bookkeeping of deferred answers (src/defer.c): which parked requests a release mark decides, in
 * what order, removal of a request whose client went away, and the mark itself (grows only, a failure sticks, read
 * consistently while other threads raise it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "../src/http/defer.c"

/* Takes every entry the mark (upto, err, late) decides; returns them as "ticket:err" in out. */
static void take_late(fy_defer_queue_t *q, uint64_t upto, int err, uint64_t late, char *out, size_t cap)
{
    fy_parked_t *p;
    int e;
    size_t n = 0;
    out[0] = '\0';
    while ((p = fy_defer_queue_next(q, upto, err, late, &e)) != NULL)
        n += (size_t)snprintf(out + n, cap - n, "%s%llu:%d", n ? " " : "", (unsigned long long)p->ticket, e);
}

static void take(fy_defer_queue_t *q, uint64_t upto, int err, char *out, size_t cap)
{
    take_late(q, upto, err, 0, out, cap);
}

/* Replication's time-outs (ETIMEDOUT = 110): only the tickets up to late fail; later ones wait for the release. */
static void test_queue_late(void **state)
{
    (void)state;
    fy_parked_t p[5];
    memset(p, 0, sizeof(p));
    fy_defer_queue_t q;
    char got[256];
    fy_defer_queue_init(&q);
    static const uint64_t tickets[] = {1, 2, 3, 4, 5};
    for (size_t i = 0; i < 5; i++)
        fy_defer_queue_push(&q, &p[i], tickets[i]);
    static const struct {
        uint64_t upto, late;
        const char *taken;
        const char *note;
    } steps[] = {
        {1, 0, "1:0", "released up to 1"},
        {1, 3, "2:110 3:110", "2 and 3 timed out"},
        {1, 3, "", "4 and 5 still wait"},
        {5, 3, "4:0 5:0", "released after the time-out: the later ones pass"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        take_late(&q, steps[i].upto, 0, steps[i].late, got, sizeof(got));
        assert_string_equal(got, steps[i].taken);
    }
    assert_int_equal(q.count, 0);
}

static void test_queue(void **state)
{
    (void)state;
    fy_parked_t p[8];
    memset(p, 0, sizeof(p)); /* not parked (the server callocs its entries) */
    fy_defer_queue_t q;
    char got[256];
    fy_defer_queue_init(&q);
    take(&q, 100, 0, got, sizeof(got));
    assert_string_equal(got, ""); /* empty queue: nothing decided */
    static const uint64_t tickets[] = {3, 5, 5, 9, 12, 13, 20, 21};
    for (size_t i = 0; i < 8; i++)
        fy_defer_queue_push(&q, &p[i], tickets[i]);
    assert_int_equal(q.count, 8);

    static const struct {
        uint64_t upto;
        int err;
        const char *taken;
        size_t left;
        const char *note;
    } steps[] = {
        {2, 0, "", 8, "mark below the oldest ticket: nothing"},
        {5, 0, "3:0 5:0 5:0", 5, "released up to 5: the equal tickets too, oldest first"},
        {5, 0, "", 5, "the same mark again: nothing new"},
        {10, 0, "9:0", 4, "a mark between tickets"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        take(&q, steps[i].upto, steps[i].err, got, sizeof(got));
        assert_string_equal(got, steps[i].taken);
        assert_int_equal(q.count, steps[i].left);
    }
    /* the client of ticket 13 goes away: it leaves from the middle */
    fy_defer_queue_remove(&q, &p[5]);
    assert_int_equal(q.count, 3);
    /* a failure after 12: 12 is durable, every later one fails with the errno */
    take(&q, 12, 5 /* EIO */, got, sizeof(got));
    assert_string_equal(got, "12:0 20:5 21:5");
    assert_int_equal(q.count, 0);
    /* tickets keep increasing after the queue ran empty */
    fy_defer_queue_push(&q, &p[0], 30);
    take(&q, 29, 0, got, sizeof(got));
    assert_string_equal(got, "");
    fy_defer_queue_remove(&q, &p[0]);
    assert_int_equal(q.count, 0);
}

static void test_mark(void **state)
{
    (void)state;
    fy_defer_mark_t m = {0, 0, 0};
    uint64_t upto, late;
    int err;
    static const struct {
        uint64_t upto;
        int err;
        uint64_t want_upto;
        int want_err;
        const char *note;
    } steps[] = {
        {0, 0, 0, 0, "initial: nothing released"},
        {7, 0, 7, 0, "raised"},
        {4, 0, 7, 0, "a smaller mark (a late notification) is ignored"},
        {9, 0, 9, 0, "raised again"},
        {9, 5, 9, 5, "a failure sticks with its upto"},
        {9, 28, 9, 5, "the first failure's errno stays"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        fy_defer_mark(&m, steps[i].upto, steps[i].err);
        fy_defer_mark_read(&m, &upto, &err, &late);
        assert_int_equal(upto, steps[i].want_upto);
        assert_int_equal(err, steps[i].want_err);
    }
}

/* Writers raise the mark with interleaved values while a reader checks it never goes down. */
#define RAISERS 4
#define RAISES 50000

static fy_defer_mark_t shared_mark;
static atomic_int raisers_done;

static void *raiser(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 1; i <= RAISES; i++)
        fy_defer_mark(&shared_mark, i * RAISERS + base, 0);
    atomic_fetch_add(&raisers_done, 1);
    return NULL;
}

static void test_mark_threads(void **state)
{
    (void)state;
    pthread_t t[RAISERS];
    for (uintptr_t i = 0; i < RAISERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, raiser, (void *)i), 0);
    uint64_t last = 0, upto, late;
    int err;
    while (atomic_load(&raisers_done) < RAISERS) {
        fy_defer_mark_read(&shared_mark, &upto, &err, &late);
        assert_true(upto >= last);
        assert_int_equal(err, 0);
        last = upto;
    }
    for (int i = 0; i < RAISERS; i++)
        pthread_join(t[i], NULL);
    fy_defer_mark_read(&shared_mark, &upto, &err, &late);
    assert_int_equal(upto, (uint64_t)RAISES * RAISERS + RAISERS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_queue_late),
        cmocka_unit_test(test_mark),
        cmocka_unit_test(test_mark_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
