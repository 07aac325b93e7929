/*
 * test_core_life.c: src/beyond.c: the X-Ferry-TTL / X-Ferry-Interval values, the bulk-delete query (match[]
 * selectors, older_than) and its matching, and the liveness families a scrape adds (docs/beyond-pushgateway.md).
 */
#define _GNU_SOURCE /* the included src/common/cpus.c uses CPU_ALLOC; it must come before any system header */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_testlib.h"

#include "../src/core/life.c"
#include "../src/core/bulk.c"
#include "../src/core/reaper.c"
#include "../src/common/grow.c"
#include "../src/common/url.c"
#include "../src/common/cpus.c"
#include "../src/common/flags.c"
#include "../src/common/log.c"
#include "../src/http/router.c"

#define S 1000000000LL
#define T0 1700000000000000000LL

typedef struct {
    const char *value;
    int rc;
    int64_t ns;      /* fy_store_life_t's encoding */
    const char *err; /* exact 400 message */
} header_case_t;

static void test_header_values(void **state)
{
    (void)state;
    /* clang-format off */
    static const header_case_t cases[] = {
        {"30s", 0, 30 * S, NULL},
        {"15m", 0, 900 * S, NULL},
        {"1h30m", 0, 5400 * S, NULL},
        {"1.5s", 0, 1500000000, NULL},
        {"250ms", 0, 250000000, NULL},
        {"0", 0, FY_LIFE_NONE, NULL},                 /* explicitly none: overrides --push.default-ttl */
        {"0s", 0, FY_LIFE_NONE, NULL},
        {"abc", -1, 0, "invalid X-Ferry-TTL header \"abc\": time: invalid duration \"abc\""},
        {"10", -1, 0, "invalid X-Ferry-TTL header \"10\": time: missing unit in duration \"10\""},
        {"5x", -1, 0, "invalid X-Ferry-TTL header \"5x\": time: unknown unit \"x\" in duration \"5x\""},
        {"-5s", -1, 0, "invalid X-Ferry-TTL header \"-5s\": must not be negative"},
        {"", -1, 0, "invalid X-Ferry-TTL header \"\": time: invalid duration \"\""},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = 0;
        char err[256] = "";
        int rc = fy_life_parse_header("X-Ferry-TTL", cases[i].value, strlen(cases[i].value), &ns, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d (%s)", cases[i].value, rc, err);
        if (rc == 0)
            assert_int_equal(ns, cases[i].ns);
        else
            assert_string_equal(err, cases[i].err);
    }
    char big[100];
    memset(big, '1', sizeof(big));
    int64_t ns;
    char err[512];
    assert_int_equal(fy_life_parse_header("X-Ferry-Interval", big, sizeof(big), &ns, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid X-Ferry-Interval header"));
}

/* A group for matching: its labels ("job=a,x=y") and last push (s after T0). */
static fy_store_group_view_t group(const char *spec, fy_store_label_t *l, char *mem, int64_t pushed_s)
{
    fy_store_group_view_t g;
    memset(&g, 0, sizeof(g));
    g.nlabels = (uint32_t)parse_gk(spec, l, mem);
    g.labels = l;
    g.push_ns = T0 + pushed_s * S;
    return g;
}

typedef struct {
    const char *query;
    const char *err;     /* exact parse error, or NULL */
    const char *matches; /* groups (by index into the fixed list below) that match, e.g. "0,2" */
    const char *note;
} query_case_t;

static void test_bulk_queries(void **state)
{
    (void)state;
    /* the groups, each pushed at the given second after T0; matching runs at T0 + 100 s */
    static const struct {
        const char *labels;
        int64_t pushed;
    } groups[] = {
        {"job=backup,instance=db1", 10}, /* 0 */
        {"job=backup,instance=db2", 95}, /* 1 */
        {"job=web,instance=w1", 10},     /* 2 */
        {"job=web", 99},                 /* 3 */
        {"job=backup-nightly", 50},      /* 4 */
    };
    /* clang-format off */
    static const query_case_t cases[] = {
        {"match[]={job=\"backup\"}", NULL, "0,1", "equality, whatever the other labels"},
        {"match[]=%7Bjob%3D%22backup%22%7D", NULL, "0,1", "URL-encoded"},
        {"match[]={job=~\"backup.*\"}", NULL, "0,1,4", "regex, anchored"},
        {"match[]={job=~\"ack\"}", NULL, "", "anchored: no partial match"},
        {"match[]={job!=\"backup\"}", NULL, "2,3,4", "inequality"},
        {"match[]={job!~\"backup|web\"}", NULL, "4", "negative regex"},
        {"match[]={instance=\"\"}", NULL, "3,4", "a missing label matches the empty string"},
        {"match[]={job=\"web\",instance=~\"w.*\"}", NULL, "2", "matchers of one selector AND"},
        {"match[]={job=\"web\"}&match[]={instance=\"db2\"}", NULL, "1,2,3", "selectors OR"},
        {"match[]={ job = 'backup' , }", NULL, "0,1", "spaces, single quotes, trailing comma"},
        {"older_than=1m", NULL, "0,2", "last push more than 60 s ago (4 is 50 s old)"},
        {"older_than=50s", NULL, "0,2,4", "exactly as old as the limit counts"},
        {"older_than=60s&match[]={job=\"backup\"}", NULL, "0", "age and selector AND"},
        {"", "no match[] selector and no older_than given (PUT /api/v1/admin/wipe deletes everything)", NULL, "nothing"},
        {"match[]={}", "invalid match[] selector \"{}\": needs at least one label matcher", NULL, "empty selector"},
        {"match[]=job=\"a\"", "invalid match[] selector \"job=\"a\"\": expected '{'", NULL, "no braces"},
        {"match[]={job=a}", "invalid match[] selector \"{job=a}\": expected a quoted value for job", NULL, "unquoted"},
        {"match[]={job==\"a\"}", "invalid match[] selector \"{job==\"a\"}\": expected a quoted value for job", NULL,
         "bad operator"},
        {"match[]={job=\"a}", "invalid match[] selector \"{job=\"a}\": unterminated value", NULL, "unterminated"},
        {"match[]={job=\"a\"} x", "invalid match[] selector \"{job=\"a\"} x\": unexpected text after '}'", NULL, "trailing"},
        {"match[]={job=~\"(\"}", NULL, NULL, "bad regex (message from regerror)"},
        {"older_than=soon", "invalid older_than \"soon\": time: invalid duration \"soon\"", NULL, "bad age"},
        {"older_than=0s", "invalid older_than \"0s\": must be positive", NULL, "zero age"},
        {"match=x", "unknown parameter \"match\" (expected match[] and older_than)", NULL, "unknown parameter"},
        {"match[]=%zz", "invalid URL escape in the query \"match[]=%zz\"", NULL, "bad escape"},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const query_case_t *c = &cases[i];
        fy_bulk_t b;
        char err[512] = "";
        memset(&b, 0, sizeof(b));
        int rc = fy_bulk_parse_query(&b, c->query, strlen(c->query), err, sizeof(err));
        if (c->matches == NULL) {
            if (rc == 0)
                fail_msg("%s (%s): parsed", c->query, c->note);
            if (c->err != NULL && strcmp(err, c->err) != 0)
                fail_msg("%s (%s): error \"%s\", want \"%s\"", c->query, c->note, err, c->err);
            if (c->err == NULL && strstr(err, "bad regular expression") == NULL)
                fail_msg("%s (%s): error \"%s\"", c->query, c->note, err);
            fy_bulk_free(&b);
            continue;
        }
        if (rc != 0)
            fail_msg("%s (%s): %s", c->query, c->note, err);
        b.now_ns = T0 + 100 * S;
        char got[64] = "";
        size_t n = 0;
        for (size_t k = 0; k < sizeof(groups) / sizeof(groups[0]); k++) {
            fy_store_label_t l[8];
            char mem[128];
            fy_store_group_view_t g = group(groups[k].labels, l, mem, groups[k].pushed);
            if (fy_bulk_match(&b, &g))
                n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%zu", n ? "," : "", k);
        }
        if (strcmp(got, c->matches) != 0)
            fail_msg("%s (%s): matched \"%s\", want \"%s\"", c->query, c->note, got, c->matches);
        fy_bulk_free(&b);
    }
}

static int push_life(fy_store_t *s, const char *gk, const char *text, int64_t ttl, int64_t interval, int64_t now)
{
    fy_store_label_t l[8];
    char mem[256];
    size_t n = parse_gk(gk, l, mem);
    fy_body_t body;
    fy_parse_error_t perr;
    fy_arena_t arena;
    void *amem = malloc(fy_parse_arena_hint(strlen(text)));
    fy_arena_init(&arena, amem, fy_parse_arena_hint(strlen(text)));
    assert_int_equal(fy_parse_text(text, strlen(text), &arena, &body, &perr), FY_OK);
    fy_store_life_t life = {ttl, interval};
    int rc = fy_store_push_life(s, l, n, FY_STORE_PUT, &body, &life, now, 0, NULL);
    free(amem);
    return rc;
}

/* Lines of the scrape whose family is one of the liveness families or the two counters. */
static char *life_lines(const char *t)
{
    static const char *keep[] = {"push_alive", "push_expiry_time_seconds", "push_interval_seconds", "ferry_groups_expired_total",
                                 "ferry_groups_bulk_deleted_total"};
    char *o = malloc(strlen(t) + 1), *w = o;
    while (*t) {
        const char *e = strchr(t, '\n');
        size_t n = e ? (size_t)(e - t + 1) : strlen(t);
        for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
            const char *h = strstr(t, keep[k]);
            if (h != NULL && (size_t)(h - t) < n) {
                memcpy(w, t, n);
                w += n;
                break;
            }
        }
        t += n;
    }
    *w = 0;
    return o;
}

static void test_liveness_families(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_life(s, "job=plain", "m 1\n", 0, 0, T0), FY_OK);
    /* nothing declared: the counters only, so the pushed part of a scrape is the Pushgateway's */
    fy_life_body_t lb;
    assert_int_equal(fy_life_collect(s, NULL, T0, 30 * S, &lb), 0);
    char *t = render_text(s, &lb.body), *l = life_lines(t);
    assert_string_equal(l, "# HELP ferry_groups_bulk_deleted_total Groups deleted by DELETE /api/v1/admin/groups.\n"
                           "# TYPE ferry_groups_bulk_deleted_total counter\nferry_groups_bulk_deleted_total 0\n"
                           "# HELP ferry_groups_expired_total Groups deleted because their TTL ran out.\n"
                           "# TYPE ferry_groups_expired_total counter\nferry_groups_expired_total 0\n");
    free(t);
    free(l);
    fy_life_body_free(&lb);

    assert_int_equal(push_life(s, "job=cron,instance=h1", "m 1\n", 0, 60 * S, T0), FY_OK);
    assert_int_equal(push_life(s, "job=cron,instance=h2", "m 1\n", 0, 60 * S, T0 + 50 * S), FY_OK);
    assert_int_equal(push_life(s, "job=batch", "m 1\n", 300 * S, 0, T0), FY_OK);
    /* at T0 + 100 s with 30 s of grace: h1 is 100 s old (> 90: dead), h2 50 s (alive) */
    assert_int_equal(fy_life_collect(s, NULL, T0 + 100 * S, 30 * S, &lb), 0);
    t = render_text(s, &lb.body);
    l = life_lines(t);
    const char *alive = strstr(l, "# HELP push_alive");
    assert_non_null(alive);
    assert_string_equal(alive, "# HELP push_alive 1 if this group was pushed within its declared interval plus the grace period, "
                               "else 0.\n# TYPE push_alive gauge\n"
                               "push_alive{instance=\"h1\",job=\"cron\"} 0\npush_alive{instance=\"h2\",job=\"cron\"} 1\n"
                               "# HELP push_expiry_time_seconds Unix time when this group expires (its last push time plus its "
                               "TTL).\n# TYPE push_expiry_time_seconds gauge\n"
                               "push_expiry_time_seconds{instance=\"\",job=\"batch\"} 1.7000003e+09\n"
                               "# HELP push_interval_seconds Push interval the pusher of this group declared.\n"
                               "# TYPE push_interval_seconds gauge\n"
                               "push_interval_seconds{instance=\"h1\",job=\"cron\"} 60\n"
                               "push_interval_seconds{instance=\"h2\",job=\"cron\"} 60\n");
    free(t);
    free(l);
    fy_life_body_free(&lb);
    /* the grace is exactly inclusive: age == interval + grace is still alive */
    assert_int_equal(fy_life_collect(s, NULL, T0 + 90 * S, 30 * S, &lb), 0);
    t = render_text(s, &lb.body);
    assert_non_null(strstr(t, "push_alive{instance=\"h1\",job=\"cron\"} 1\n"));
    free(t);
    fy_life_body_free(&lb);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_bulk_queries),
        cmocka_unit_test(test_liveness_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
