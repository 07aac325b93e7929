/*
 * test_store_table.c: the shards' group tables (open addressing with tagged entries, store_int.h): every group is
 * found again after growth, single deletes, bulk deletes and churn; removed entries are reused or dropped by a
 * rebuild at the same size, so that churn with a steady number of groups does not grow the table; and the table
 * always keeps an empty entry (lookups of absent keys end). One shard, so that a few thousand groups exercise it.
 */
#include "store_int.h"
#include "store_testlib.h"

#include <stdio.h>

#define NOW 1700000000000000000LL
#define N 3000

static fy_store_t *one_shard(void)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 1;
    fy_store_t *s = fy_store_create(&cfg);
    assert_non_null(s);
    return s;
}

static void gk_of(char *out, size_t cap, const char *prefix, int i)
{
    snprintf(out, cap, "job=%s%d", prefix, i);
}

static uint64_t groups(fy_store_t *s)
{
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    return st.groups;
}

/* A push to an existing group finds it (the group count does not change); to an absent one, creates it. */
static void push_expect(fy_store_t *s, const char *prefix, int i, int exists)
{
    char gk[64];
    gk_of(gk, sizeof(gk), prefix, i);
    uint64_t before = groups(s);
    assert_int_equal(push_text(s, gk, FY_STORE_PUT, "x 1\n", NOW, NULL, 0), FY_OK);
    assert_int_equal(groups(s), before + (exists ? 0 : 1));
}

/* The table's own invariants: counts agree with its entries, load under 3/4, an empty entry left. */
static void table_check(fy_store_t *s)
{
    fy__shard_t *sh = &s->shards[0];
    size_t live = 0, tomb = 0, empty = 0;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        if (fy__gt_live(sh->buckets[i]))
            live++;
        else if (sh->buckets[i] == FY_GT_TOMB)
            tomb++;
        else
            empty++;
    }
    assert_int_equal(live, sh->ngroups);
    assert_int_equal(tomb, sh->ntomb);
    assert_true(empty > 0);
    assert_true(4 * (live + tomb) <= 3 * sh->nbuckets);
}

static int pred_prefix(void *ctx, const fy_store_group_view_t *g)
{
    const char *p = ctx;
    size_t n = strlen(p);
    return g->labels[0].value.len >= n && memcmp(g->labels[0].value.ptr, p, n) == 0;
}

static void test_grow_delete_find(void **state)
{
    (void)state;
    fy_store_t *s = one_shard();
    char gk[64];
    for (int i = 0; i < N; i++)
        push_expect(s, "g", i, 0);
    table_check(s);
    for (int i = 0; i < N; i++) /* all found again after the rebuilds of growth */
        push_expect(s, "g", i, 1);
    for (int i = 1; i < N; i += 2) {
        gk_of(gk, sizeof(gk), "g", i);
        assert_int_equal(delete_gk(s, gk), FY_OK);
    }
    assert_int_equal(groups(s), N / 2);
    table_check(s);
    for (int i = 0; i < N; i += 2) /* the even ones are found past the removed odd ones */
        push_expect(s, "g", i, 1);
    for (int i = 1; i < N; i += 2) /* the odd ones come back as new groups */
        push_expect(s, "g", i, 0);
    table_check(s);
    /* bulk delete removes entries while it walks the table: g1, g1x, g1xx... (1 + 10 + 100 + 1000 of them) */
    assert_int_equal(fy_store_delete_where(s, pred_prefix, "g1"), 1111);
    assert_int_equal(groups(s), N - 1111);
    table_check(s);
    for (int i = 0; i < N; i++)
        push_expect(s, "g", i, !(i == 1 || (i >= 10 && i < 20) || (i >= 100 && i < 200) || (i >= 1000 && i < 2000)));
    assert_int_equal(groups(s), N);
    table_check(s);
    fy_store_destroy(s);
}

static void test_churn_bounded(void **state)
{
    (void)state;
    fy_store_t *s = one_shard();
    char gk[64];
    for (int i = 0; i < 1000; i++)
        push_expect(s, "steady", i, 0);
    size_t nb = s->shards[0].nbuckets;
    /* 20 000 short-lived groups, never more than 1001 at once: the removed entries are reused or rebuilt away */
    for (int i = 0; i < 20000; i++) {
        push_expect(s, "brief", i, 0);
        gk_of(gk, sizeof(gk), "brief", i);
        assert_int_equal(delete_gk(s, gk), FY_OK);
        if (i % 997 == 0)
            table_check(s);
    }
    table_check(s);
    assert_int_equal(s->shards[0].nbuckets, nb); /* 1001 groups never pass half of the 2048 entries */
    for (int i = 0; i < 1000; i++)
        push_expect(s, "steady", i, 1);
    assert_int_equal(groups(s), 1000);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_delete_find),
        cmocka_unit_test(test_churn_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
