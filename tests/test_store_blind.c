/*
 * test_store_blind.c: the blind path (push.c, push_blind): a push whose shape hash equals its group's writes only
 * values. Each case pushes `first` twice (the group is created, then gets its shape), then `next` with `method`,
 * and states whether that push may take the blind path and the exact scrape after it. Every way a shape can
 * differ must miss the blind path and get the full push's result; same shapes must take it and show the new values.
 * Also: the seqlock values a rewrite leaves, and the JSON family times a blind push updates.
 */
#include "store_int.h"
#include "store_testlib.h"

#define NOW 1700000000000000000LL

typedef struct {
    const char *note;
    const char *first;
    const char *method; /* of the third push: "PUT" or "POST" */
    const char *next;
    int blind;        /* the third push takes the blind path */
    const char *want; /* the scrape after it, without the timestamp families */
} blind_case_t;

#define H "# HELP a Some help.\n# TYPE a counter\n"
#define HIST "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"5\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n"
#define A_I "a{instance=\"\",job=\"j\""

/* clang-format off */
static const blind_case_t cases[] = {
    {"same shape, new values", H "a{k=\"x\"} 1\na{k=\"y\"} 2\nb 3\n", "PUT", H "a{k=\"x\"} 10\na{k=\"y\"} 20\nb 30\n", 1,
     "# HELP a Some help.\n# TYPE a counter\n" A_I ",k=\"x\"} 10\n" A_I ",k=\"y\"} 20\n"
     "# TYPE b untyped\nb{instance=\"\",job=\"j\"} 30\n"},
    {"same shape by POST of all families", H "a 1\nb 3\n", "POST", H "a 2\nb 4\n", 1,
     "# HELP a Some help.\n# TYPE a counter\n" A_I "} 2\n# TYPE b untyped\nb{instance=\"\",job=\"j\"} 4\n"},
    {"HELP text differs", H "a 1\n", "PUT", "# HELP a Other help.\n# TYPE a counter\na 2\n", 0,
     "# HELP a Other help.\n# TYPE a counter\n" A_I "} 2\n"},
    {"HELP dropped", H "a 1\n", "PUT", "# TYPE a counter\na 2\n", 0, "# TYPE a counter\n" A_I "} 2\n"},
    {"type differs", H "a 1\n", "PUT", "# HELP a Some help.\n# TYPE a gauge\na 2\n", 0,
     "# HELP a Some help.\n# TYPE a gauge\n" A_I "} 2\n"},
    {"a label value differs", H "a{k=\"x\"} 1\n", "PUT", H "a{k=\"z\"} 2\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I ",k=\"z\"} 2\n"},
    {"a label name differs (same bytes moved)", "ab{c=\"d\"} 1\n", "PUT", "ab{cd=\"\"} 1\n", 0,
     "# TYPE ab untyped\nab{cd=\"\",instance=\"\",job=\"j\"} 1\n"},
    {"series in another order", H "a{k=\"x\"} 1\na{k=\"y\"} 2\n", "PUT", H "a{k=\"y\"} 20\na{k=\"x\"} 10\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I ",k=\"x\"} 10\n" A_I ",k=\"y\"} 20\n"},
    {"a series more", H "a{k=\"x\"} 1\n", "PUT", H "a{k=\"x\"} 1\na{k=\"y\"} 2\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I ",k=\"x\"} 1\n" A_I ",k=\"y\"} 2\n"},
    {"a series split across families differently", "a{k=\"x\"} 1\nb 2\n", "PUT", "a 1\nb{k=\"x\"} 2\n", 0,
     "# TYPE a untyped\na{instance=\"\",job=\"j\"} 1\n# TYPE b untyped\nb{instance=\"\",job=\"j\",k=\"x\"} 2\n"},
    {"a family more", H "a 1\n", "PUT", H "a 1\nb 2\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I "} 1\n# TYPE b untyped\nb{instance=\"\",job=\"j\"} 2\n"},
    {"a family fewer (PUT drops it)", H "a 1\nb 2\n", "PUT", H "a 5\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I "} 5\n"},
    {"POST of a subset keeps the other family", H "a 1\nb 2\n", "POST", H "a 5\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I "} 5\n# TYPE b untyped\nb{instance=\"\",job=\"j\"} 2\n"},
    {"histogram, same buckets", HIST, "PUT",
     "# TYPE h histogram\nh_bucket{le=\"1\"} 7\nh_bucket{le=\"5\"} 8\nh_bucket{le=\"+Inf\"} 9\nh_sum 10.5\nh_count 9\n", 1,
     "# TYPE h histogram\nh_bucket{instance=\"\",job=\"j\",le=\"1\"} 7\nh_bucket{instance=\"\",job=\"j\",le=\"5\"} 8\n"
     "h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 9\nh_sum{instance=\"\",job=\"j\"} 10.5\n"
     "h_count{instance=\"\",job=\"j\"} 9\n"},
    {"histogram, a bucket fewer", HIST, "PUT",
     "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n", 0,
     "# TYPE h histogram\nh_bucket{instance=\"\",job=\"j\",le=\"1\"} 1\nh_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 3\n"
     "h_sum{instance=\"\",job=\"j\"} 4.5\nh_count{instance=\"\",job=\"j\"} 3\n"},
    {"histogram and a summary with points, new values in both", HIST "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
     "PUT", HIST "# TYPE s summary\ns{quantile=\"0.5\"} 11\ns_sum 12\ns_count 13\n", 1,
     "# TYPE h histogram\nh_bucket{instance=\"\",job=\"j\",le=\"1\"} 1\nh_bucket{instance=\"\",job=\"j\",le=\"5\"} 2\n"
     "h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 3\nh_sum{instance=\"\",job=\"j\"} 4.5\n"
     "h_count{instance=\"\",job=\"j\"} 3\n# TYPE s summary\ns{instance=\"\",job=\"j\",quantile=\"0.5\"} 11\n"
     "s_sum{instance=\"\",job=\"j\"} 12\ns_count{instance=\"\",job=\"j\"} 13\n"},
    {"body labels overridden by the grouping key, escaped values", "a{job=\"body\",v=\"q\\\"\\n\"} 1\n", "PUT",
     "a{job=\"other\",v=\"q\\\"\\n\"} 2\n", 1, "# TYPE a untyped\na{instance=\"\",job=\"j\",v=\"q\\\"\\n\"} 2\n"},
    {"empty PUT after empty PUT", "", "PUT", "", 1, ""},
    {"a rejected push changes nothing, blind or not", H "a 1\n", "PUT", H "a 1 1234\n", 0,
     "# HELP a Some help.\n# TYPE a counter\n" A_I "} 1\n"},
};
/* clang-format on */

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const blind_case_t *c = &cases[i];
        fy_store_t *s = fy_store_create(NULL);
        assert_int_equal(push_text(s, "job=j", FY_STORE_PUT, c->first, NOW, NULL, 0), FY_OK);
        assert_int_equal(push_text(s, "job=j", FY_STORE_PUT, c->first, NOW + 1, NULL, 0), FY_OK);
        uint64_t before = fy__store_nblind(s);
        int rc = push_text(s, "job=j", strcmp(c->method, "PUT") == 0 ? FY_STORE_PUT : FY_STORE_POST, c->next, NOW + 2, NULL, 0);
        if (strstr(c->note, "rejected") == NULL && rc != FY_OK)
            fail_msg("%s: push rc %d", c->note, rc);
        if ((int)(fy__store_nblind(s) - before) != c->blind)
            fail_msg("%s: blind path taken %d times, want %d", c->note, (int)(fy__store_nblind(s) - before), c->blind);
        check_scrape(s, c->want, c->note);
        fy_store_destroy(s);
    }
}

/* The first push of a new group and the first re-push (which sets the shape) do not take the blind path; a push to
 * a group that expired starts a new group (no shape); the shape survives failed pushes. */
static void test_when_shape_is_set(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    static const struct {
        const char *body;
        int rc, blind;
        const char *note;
    } steps[] = {
        {"x 1\n", FY_OK, 0, "creates the group"},
        {"x 2\n", FY_OK, 0, "fast path, sets the shape"},
        {"x 3\n", FY_OK, 1, "blind"},
        {"x 4 1234\n", FY_SERR_INVALID, 0, "rejected: records the failure only"},
        {"x 5\n", FY_OK, 1, "the shape survived the failure"},
        {"y 1\n", FY_OK, 0, "another shape"},
        {"x 6\n", FY_OK, 0, "back: the shape was y's"},
        {"x 7\n", FY_OK, 1, "blind again"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint64_t before = fy__store_nblind(s);
        assert_int_equal(push_text(s, "job=j", FY_STORE_PUT, steps[i].body, NOW + (int64_t)i, NULL, 0), steps[i].rc);
        if ((int)(fy__store_nblind(s) - before) != steps[i].blind)
            fail_msg("step %zu (%s): blind %d, want %d", i, steps[i].note, (int)(fy__store_nblind(s) - before), steps[i].blind);
    }
    check_scrape(s, "# TYPE x untyped\nx{instance=\"\",job=\"j\"} 7\n", "after the steps");
    fy_store_destroy(s);
}

/* Each rewrite leaves a record's seq even and larger than before (readers retry on a change); the family's time in
 * /api/v1/metrics is the blind push's. */
static void test_seq_and_stamps(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    uint32_t last = 0;
    for (int i = 0; i < 5; i++) {
        char body[32];
        snprintf(body, sizeof(body), "x %d\n", i);
        assert_int_equal(push_text(s, "job=j", FY_STORE_PUT, body, NOW + i * 1000000000LL, NULL, 0), FY_OK);
        const fy__group_t *g = NULL;
        for (uint32_t k = 0; k < s->cfg.nshards && g == NULL; k++)
            for (size_t e = 0; e < s->shards[k].nbuckets; e++)
                if (fy__gt_live(s->shards[k].buckets[e]))
                    g = fy__gt_group(s->shards[k].buckets[e]);
        assert_non_null(g);
        uint32_t seq = fy__gfam_recs(g->fams[0])[0].seq;
        assert_int_equal(seq % 2, 0);
        if (i > 0)
            assert_true(seq > last);
        last = seq;
    }
    assert_int_equal(fy__store_nblind(s), 3);
    char *j = render_json(s);
    /* the last push was at NOW + 4 s: 2023-11-14T22:13:24Z */
    assert_non_null(strstr(j, "\"x\":{\"time_stamp\":\"2023-11-14T22:13:24"));
    free(j);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_when_shape_is_set),
        cmocka_unit_test(test_seq_and_stamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
