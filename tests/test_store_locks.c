/*
 * test_store_locks.c: the lock order of store_int.h is checked in debug builds (store/lock_check.c). Each violation
 * runs in a child process and must abort there; the same sequences in the right order must not. In release builds
 * (NDEBUG) the checks are compiled out and the violation cases are skipped.
 */
#include "store_int.h"
#include "store_testlib.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static fy_store_t *store_new(void)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 4;
    cfg.nstripes = 16;
    fy_store_t *s = fy_store_create(&cfg);
    assert_non_null(s);
    return s;
}

/* Runs f in a child; returns 1 if the child aborted, 0 if it exited normally. */
static int aborts(void (*f)(fy_store_t *s))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fy_store_t *s = store_new();
        f(s);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
        return 1;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
}

#ifndef NDEBUG /* the violations: each must abort */
static void two_shards(fy_store_t *s)
{
    fy__shard_lock(s, &s->shards[0]);
    fy__shard_lock(s, &s->shards[1]);
}

static void shard_after_stripe(fy_store_t *s)
{
    fy__stripe_lock(s, &s->stripes[2]);
    fy__shard_lock(s, &s->shards[0]);
}

static void stripes_descending(fy_store_t *s)
{
    fy__shard_lock(s, &s->shards[0]);
    fy__stripe_lock(s, &s->stripes[5]);
    fy__stripe_lock(s, &s->stripes[3]);
}

static void stripe_twice(fy_store_t *s)
{
    fy__stripe_lock(s, &s->stripes[5]);
    fy__stripe_lock(s, &s->stripes[5]);
}

static void stripes_released_in_order(fy_store_t *s)
{
    fy__stripe_lock(s, &s->stripes[3]);
    fy__stripe_lock(s, &s->stripes[5]);
    fy__stripe_unlock(s, &s->stripes[3]);
}

static void shard_before_stripes(fy_store_t *s)
{
    fy__shard_lock(s, &s->shards[1]);
    fy__stripe_lock(s, &s->stripes[3]);
    fy__shard_unlock(s, &s->shards[1]);
}

static void unlock_not_held(fy_store_t *s)
{
    fy__shard_unlock(s, &s->shards[2]);
}

static void two_stores(fy_store_t *s)
{
    fy_store_t *t = store_new();
    fy__shard_lock(s, &s->shards[0]);
    fy__stripe_lock(t, &t->stripes[0]);
}

/* A function that requires a lock, called without it: the group table's insert asserts its shard. */
static void required_shard_missing(fy_store_t *s)
{
    fy__shard_lock(s, &s->shards[0]);
    FY_ASSERT_SHARD(&s->shards[0]);
    FY_ASSERT_SHARD(&s->shards[1]);
}

static void required_stripe_missing(fy_store_t *s)
{
    fy__stripe_lock(s, &s->stripes[4]);
    (void)fy__fam_find(&s->stripes[5], 5, fy_str("x", 1));
}

/* A callback under a shard lock that changes the store: the push's shard lock is a second one. */
static int push_from_callback(void *ctx, const fy_store_group_view_t *v)
{
    (void)v;
    push_text(ctx, "job=b", FY_STORE_PUT, "b 1\n", 2, NULL, 0);
    return 0;
}

static void push_inside_foreach(fy_store_t *s)
{
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "a 1\n", 1, NULL, 0), FY_OK);
    fy_store_foreach_group(s, push_from_callback, s);
}
#endif

/* The order as the store uses it, and the record's answers. */
static void right_order(fy_store_t *s)
{
    fy__shard_lock(s, &s->shards[3]);
    for (uint32_t i = 0; i < 16; i += 3)
        fy__stripe_lock(s, &s->stripes[i]);
#ifndef NDEBUG
    if (!fy__lock_holds_shard(&s->shards[3]) || fy__lock_holds_shard(&s->shards[2]) || !fy__lock_holds_stripe(&s->stripes[6]) ||
        fy__lock_holds_stripe(&s->stripes[7]) || !fy__lock_holds_group(7) || fy__lock_holds_group(6) || !fy__lock_holds_name(15) ||
        fy__lock_holds_name(14) || !fy__lock_holds_retire_list(&s->shards[3].retired) ||
        !fy__lock_holds_retire_list(&s->stripes[9].retired) || fy__lock_holds_retire_list(&s->stripes[10].retired))
        abort();
#endif
    for (uint32_t i = 16; i-- > 0;)
        if (i % 3 == 0)
            fy__stripe_unlock(s, &s->stripes[i]);
    fy__shard_unlock(s, &s->shards[3]);
#ifndef NDEBUG
    if (fy__lock_holds_any())
        abort();
#endif
    /* a scrape: one stripe at a time, in any order, no shard */
    fy__stripe_lock(s, &s->stripes[9]);
    fy__stripe_unlock(s, &s->stripes[9]);
    fy__stripe_lock(s, &s->stripes[2]);
    fy__stripe_unlock(s, &s->stripes[2]);
    /* more stripes than the record keeps inline */
    fy_store_config_t cfg = {0};
    cfg.nstripes = 256;
    fy_store_t *t = fy_store_create(&cfg);
    fy__shard_lock(t, &t->shards[0]);
    for (uint32_t i = 0; i < 256; i++)
        fy__stripe_lock(t, &t->stripes[i]);
#ifndef NDEBUG
    if (!fy__lock_holds_stripe(&t->stripes[200]))
        abort();
#endif
    for (uint32_t i = 256; i-- > 0;)
        fy__stripe_unlock(t, &t->stripes[i]);
    fy__shard_unlock(t, &t->shards[0]);
    fy_store_destroy(t);
    fy_store_destroy(s);
}

static void test_right_order(void **state)
{
    (void)state;
    assert_int_equal(aborts(right_order), 0);
}

static void test_violations_abort(void **state)
{
    (void)state;
#ifdef NDEBUG
    skip();
#else
    static const struct {
        const char *name;
        void (*f)(fy_store_t *s);
    } cases[] = {
        {"two shard locks", two_shards},
        {"a shard lock after a stripe lock", shard_after_stripe},
        {"stripes in descending index", stripes_descending},
        {"the same stripe twice", stripe_twice},
        {"stripes released in the order taken", stripes_released_in_order},
        {"a shard released before its stripes", shard_before_stripes},
        {"a lock released that is not held", unlock_not_held},
        {"locks of two stores", two_stores},
        {"a required shard lock not held", required_shard_missing},
        {"a required stripe lock not held", required_stripe_missing},
        {"a push from a callback under a shard lock", push_inside_foreach},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!aborts(cases[i].f))
            fail_msg("no abort: %s", cases[i].name);
    }
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_order),
        cmocka_unit_test(test_violations_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
