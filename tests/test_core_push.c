/*
 * test_core_push.c: a push body through fy_push_apply (src/push.c): format dispatch, the growable parser arena,
 * the per-push limits (--push.max-series-per-push, --push.max-label-value-length), the store's answers as HTTP
 * status and text (spec 5.1, 5.6), and --push.disable-consistency-check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_testlib.h"

#include "fy_pb.h"

#include "../src/core/push.c"

#define INVALID "pushed metrics are invalid or inconsistent with existing metrics: "
#define OM FY_FMT_OPENMETRICS
#define TX FY_FMT_TEXT

typedef struct {
    fy_store_t *store;
    fy_push_arena_t arena;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    fy_store_config_t cfg = {0};
    cfg.max_groups = 3;
    cfg.max_series = 10;
    f->store = fy_store_create(&cfg);
    *state = f;
    return f->store == NULL;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fy_store_destroy(f->store);
    fy_push_arena_free(&f->arena);
    free(f);
    return 0;
}

/* Pushes body to the group "job=<job>" and returns the outcome (msg copied into a NUL-terminated static). */
static const char *push(fx_t *f, const fy_push_limits_t *lim, fy_store_method_t m, const char *job, const char *body, size_t len,
                        fy_body_format_t fmt, fy_push_outcome_t *o)
{
    static char msg[4096];
    fy_store_label_t gk = {fy_str("job", 3), fy_str(job, strlen(job))};
    fy_push_apply(f->store, &f->arena, lim, m, &gk, 1, fy_guarded(body, len), len, fmt, 1000000000, o);
    snprintf(msg, sizeof(msg), "%.*s", (int)o->msg_len, o->msg);
    fy_push_outcome_free(o);
    return msg;
}

static int group_exists(fx_t *f, const char *job)
{
    char *json = render_json(f->store);
    char want[128];
    snprintf(want, sizeof(want), "\"labels\":{\"job\":\"%s\"}", job);
    int r = strstr(json, want) != NULL;
    free(json);
    return r;
}

/* ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    fy_body_format_t fmt;
    const char *body;
    uint64_t max_series, max_label;
    int status;
    const char *msg; /* exact body text (without http.Error's newline) */
    int limit;       /* fy_limit_t or -1 */
    int stored;      /* the group exists afterwards with this push's data */
    const char *note;
} status_case_t;

static const status_case_t status_cases[] = {
    {TX, "some_metric 3.14\n", 0, 0, 200, "", -1, 1, "E02: OK"},
    {TX, "", 0, 0, 200, "", -1, 1, "empty body is a valid push"},
    {OM, "om_total 1\n# EOF\n", 0, 0, 200, "", -1, 1, "OpenMetrics"},
    {TX, "# TYPE x11 foo\nx11 1\n", 0, 0, 400, "text format parsing error in line 1: unknown metric type \"foo\"", -1, 0,
     "E12: the parser's message, verbatim"},
    {TX, "m 1.5 x\n", 0, 0, 400, "text format parsing error in line 1: expected integer as timestamp, got \"x\"", -1, 0,
     "spec 5.8"},
    {OM, "om_total 1\n", 0, 0, 400, "openmetrics parsing error in line 2: data does not end with # EOF", -1, 0,
     "OpenMetrics parse errors pass through too"},
    {TX, "m6 1 1234\n", 0, 0, 400, INVALID "pushed metrics must not have timestamps", -1, 0,
     "E09: FY_SERR_INVALID gets the prefix"},
    {TX, "m4 1\nm4 2\n", 0, 0, 400,
     INVALID "collected metric \"m4\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"j\" > "
             "untyped:<value:2 > } was collected before with the same name and label values",
     -1, 0, "E09 dup2"},
    /* --push.max-series-per-push */
    {TX, "a 1\nb 1\nc 1\n", 3, 0, 200, "", -1, 1, "at the limit"},
    {TX, "a 1\nb 1\nc{x=\"1\"} 1\nc{x=\"2\"} 1\n", 3, 0, 400,
     "push has 4 series, more than the limit of 3 (--push.max-series-per-push)", FY_LIMIT_SERIES_PER_PUSH, 0, "over the limit"},
    {TX, "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 3\ns_count 2\nb 1\n", 2, 0, 200, "", -1, 1,
     "a summary series counts once"},
    /* --push.max-label-value-length: bytes after unescaping */
    {TX, "m{a=\"abc\"} 1\n", 0, 3, 200, "", -1, 1, "at the limit"},
    {TX, "m{a=\"abcd\"} 1\n", 0, 3, 400,
     "label a of metric m has a value of 4 bytes, more than the limit of 3 (--push.max-label-value-length)",
     FY_LIMIT_LABEL_VALUE_LENGTH, 0, "over the limit"},
    {TX, "m{a=\"\\\\\\n\\\"\"} 1\n", 0, 3, 200, "", -1, 1, "three escapes are three bytes (6 raw)"},
    {TX, "m{a=\"\\\\\\n\\\"x\"} 1\n", 0, 3, 400,
     "label a of metric m has a value of 4 bytes, more than the limit of 3 (--push.max-label-value-length)",
     FY_LIMIT_LABEL_VALUE_LENGTH, 0, "escapes count once, the fourth byte is over"},
    {OM, "om_total{a=\"\\q\\n\"} 1\n# EOF\n", 0, 3, 200, "", -1, 1, "OpenMetrics: \\q is two bytes, \\n one"},
    {OM, "om_total{a=\"\\q\\n\\\\\"} 1\n# EOF\n", 0, 3, 400,
     "label a of metric om_total has a value of 4 bytes, more than the limit of 3 (--push.max-label-value-length)",
     FY_LIMIT_LABEL_VALUE_LENGTH, 0, "OpenMetrics escapes"},
    {TX, "m{a=\"\xc3\xa9\xc3\xa9\"} 1\n", 0, 3, 400,
     "label a of metric m has a value of 4 bytes, more than the limit of 3 (--push.max-label-value-length)",
     FY_LIMIT_LABEL_VALUE_LENGTH, 0, "bytes, not characters"},
    {TX, "ok{a=\"1\"} 1\nm{a=\"1\",b=\"xxxx\"} 1\n", 0, 3, 400,
     "label b of metric m has a value of 4 bytes, more than the limit of 3 (--push.max-label-value-length)",
     FY_LIMIT_LABEL_VALUE_LENGTH, 0, "names the first offending label"},
    {TX, "m{a=\"abcd\"} 1\n", 0, 0, 200, "", -1, 1, "0 = unlimited"},
};

static void test_status(void **state)
{
    for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const status_case_t *c = &status_cases[i];
        fx_t *f = *state;
        teardown(state);
        setup(state);
        f = *state;
        fy_push_limits_t lim = {c->max_series, c->max_label, 0};
        fy_push_outcome_t o;
        const char *msg = push(f, &lim, FY_STORE_PUT, "j", c->body, strlen(c->body), c->fmt, &o);
        if (o.status != c->status || strcmp(msg, c->msg) != 0 || o.limit != c->limit)
            fail_msg("case %zu (%s): got %d \"%s\" limit %d; want %d \"%s\" limit %d", i, c->note, o.status, msg, o.limit,
                     c->status, c->msg, c->limit);
        assert_int_equal(o.store_rc, c->status == 200                                ? FY_OK
                                     : c->limit >= 0 || strncmp(c->msg, INVALID, 10) ? 1
                                                                                     : FY_SERR_INVALID);
        assert_int_equal(o.log_failure, o.store_rc == FY_SERR_INVALID);
        /* parse errors and limits leave no trace (spec 5.1 step 2); a rejected push records the failure (5.4) */
        int want_group = c->stored || strncmp(c->msg, INVALID, 10) == 0;
        if (group_exists(f, "j") != want_group)
            fail_msg("case %zu (%s): group exists: %d", i, c->note, !want_group);
    }
}

/* The parse error message is the parser's, byte for byte, for every format. */
static void test_parse_error_passthrough(void **state)
{
    fx_t *f = *state;
    static const struct {
        fy_body_format_t fmt;
        fy_parse_fn fn;
        const char *body;
        size_t len;
    } t[] = {
        {TX, fy_parse_text, "m{a=\"1\" 1\n", 10},
        {TX, fy_parse_text, "m 1\nm 2\nm{", 10},
        {OM, fy_parse_openmetrics, "m{a=\"1\"} x\n# EOF\n", 17},
        {FY_FMT_PROTOBUF, fy_parse_protobuf,
         "\x06\x0a\x03"
         "abc",
         6},
    };
    fy_push_limits_t lim = {0, 0, 0};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_body_t b;
        fy_parse_error_t e;
        if (fy_test_parse(t[i].fn, t[i].body, t[i].len, &b, &e) == FY_OK)
            fail_msg("case %zu parses", i);
        char want[1024];
        snprintf(want, sizeof(want), "%.*s", (int)e.msg_len, e.msg);
        fy_push_outcome_t o;
        const char *got = push(f, &lim, FY_STORE_POST, "pe", t[i].body, t[i].len, t[i].fmt, &o);
        assert_int_equal(o.status, 400);
        assert_string_equal(got, want);
        assert_int_equal(o.store_rc, 1);
    }
}

/* Store limits: 429 naming the flag, and nothing changes. The fixture store holds 3 groups and 10 series. */
static void test_store_limits(void **state)
{
    fx_t *f = *state;
    fy_push_limits_t lim = {0, 0, 0};
    fy_push_outcome_t o;
    const char *msg;
    for (int i = 0; i < 3; i++) {
        char job[8];
        snprintf(job, sizeof(job), "g%d", i);
        assert_string_equal(push(f, &lim, FY_STORE_PUT, job, "a 1\n", 4, TX, &o), "");
        assert_int_equal(o.status, 200);
    }
    msg = push(f, &lim, FY_STORE_PUT, "g3", "a 1\n", 4, TX, &o);
    assert_int_equal(o.status, 429);
    assert_int_equal(o.limit, FY_LIMIT_STORE_GROUPS);
    assert_int_equal(o.store_rc, FY_SERR_LIMIT_GROUPS);
    assert_string_equal(msg, "the store holds the maximum number of groups (--store.max-groups); push rejected");
    assert_false(group_exists(f, "g3"));
    /* existing groups may still be pushed to */
    push(f, &lim, FY_STORE_POST, "g0", "b 1\n", 4, TX, &o);
    assert_int_equal(o.status, 200);
    /* series: 4 stored (a x3, b), a push adding 7 more exceeds 10 */
    const char *big = "s{i=\"1\"} 1\ns{i=\"2\"} 1\ns{i=\"3\"} 1\ns{i=\"4\"} 1\ns{i=\"5\"} 1\ns{i=\"6\"} 1\ns{i=\"7\"} 1\n";
    msg = push(f, &lim, FY_STORE_POST, "g1", big, strlen(big), TX, &o);
    assert_int_equal(o.status, 429);
    assert_int_equal(o.limit, FY_LIMIT_STORE_SERIES);
    assert_int_equal(o.store_rc, FY_SERR_LIMIT_SERIES);
    assert_string_equal(msg, "the push would exceed the maximum number of stored series (--store.max-series); push rejected");
    char *t = render_text(f->store, NULL);
    assert_null(strstr(t, "\ns{"));
    free(t);
    /* the limit is enforced with the consistency check disabled too */
    lim.consistency_check_disabled = 1;
    push(f, &lim, FY_STORE_PUT, "g3", "a 1\n", 4, TX, &o);
    assert_int_equal(o.status, 429);
}

/* --push.disable-consistency-check: 202 for accepted and for inconsistent pushes; inconsistent data is not stored
 * (Ferry keeps scrapes working, B9) but the failure is recorded; parse errors and limits are still 400. */
static void test_consistency_check_disabled(void **state)
{
    fx_t *f = *state;
    fy_push_limits_t lim = {2, 0, 1};
    fy_push_outcome_t o;
    assert_string_equal(push(f, &lim, FY_STORE_PUT, "ok", "m 1\n", 4, TX, &o), "");
    assert_int_equal(o.status, 202);
    /* The 202 carries no body; the store's reason is kept in the outcome for the error log. */
    assert_string_equal(push(f, &lim, FY_STORE_PUT, "dup", "m4 1\nm4 2\n", 10, TX, &o),
                        "collected metric \"m4\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" "
                        "value:\"dup\" > untyped:<value:2 > } was collected before with the same name and label values");
    assert_int_equal(o.status, 202);
    assert_int_equal(o.store_rc, FY_SERR_INVALID);
    assert_int_equal(o.log_failure, 1);
    assert_string_equal(push(f, &lim, FY_STORE_PUT, "ts", "m6 1 1234\n", 10, TX, &o), "pushed metrics must not have timestamps");
    assert_int_equal(o.status, 202);
    char *json = render_json(f->store);
    assert_null(strstr(json, "\"m4\""));
    assert_null(strstr(json, "\"m6\""));
    assert_non_null(strstr(json, "\"labels\":{\"job\":\"ts\"},\"last_push_successful\":false"));
    free(json);
    char *t = render_text(f->store, NULL);
    assert_non_null(strstr(t, "m{instance=\"\",job=\"ok\"} 1\n"));
    free(t);
    push(f, &lim, FY_STORE_PUT, "pe", "m{", 2, TX, &o);
    assert_int_equal(o.status, 400);
    push(f, &lim, FY_STORE_PUT, "lim", "a 1\nb 1\nc 1\n", 12, TX, &o);
    assert_int_equal(o.status, 400);
    assert_int_equal(o.limit, FY_LIMIT_SERIES_PER_PUSH);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The arena: starts at min(256 KiB, hint), grows on FY_PERR_NOMEM up to fy_parse_arena_hint(len). */

static char *text_body(size_t nseries, size_t *len)
{
    char *b = malloc(nseries * 48 + 1);
    size_t n = 0;
    for (size_t i = 0; i < nseries; i++)
        n += (size_t)sprintf(b + n, "big_metric{idx=\"%zu\",le_x=\"v\"} %zu\n", i, i);
    *len = n;
    return b;
}

static char *pb_body(size_t nseries, size_t *len)
{
    size_t cap = nseries * 64 + 64;
    char *b = malloc(cap);
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, b, cap);
    size_t fam = fy_pb_begin(&w, 0);
    fy_pb_put_bytes(&w, 1, "pb_big", 6);
    fy_pb_put_uint64(&w, 3, FY_TYPE_GAUGE);
    for (size_t i = 0; i < nseries; i++) {
        char v[24];
        int vl = snprintf(v, sizeof(v), "%zu", i);
        size_t m = fy_pb_begin(&w, 4);
        size_t l = fy_pb_begin(&w, 1);
        fy_pb_put_bytes(&w, 1, "idx", 3);
        fy_pb_put_bytes(&w, 2, v, (size_t)vl);
        fy_pb_end(&w, l);
        size_t g = fy_pb_begin(&w, 2);
        fy_pb_put_double(&w, 1, (double)i);
        fy_pb_end(&w, g);
        fy_pb_end(&w, m);
    }
    fy_pb_end(&w, fam);
    assert_false(w.overflow);
    *len = w.len;
    return b;
}

static void test_arena_growth(void **state)
{
    fx_t *f = *state;
    fy_store_destroy(f->store);
    f->store = fy_store_create(NULL);
    fy_push_limits_t lim = {0, 0, 0};
    fy_push_outcome_t o;

    /* a small first push allocates only what it can need */
    push(f, &lim, FY_STORE_PUT, "small", "a 1\n", 4, TX, &o);
    assert_int_equal(o.status, 200);
    assert_int_equal(f->arena.cap, fy_parse_arena_hint(4));

    for (int fmt = 0; fmt < 3; fmt++) {
        size_t len;
        const size_t nseries = 20000;
        char *body;
        if (fmt == 2) {
            body = pb_body(nseries, &len);
        } else {
            body = text_body(nseries, &len);
            if (fmt == 1) {
                memcpy(body + len, "# EOF\n", 7);
                len += 6;
            }
        }
        fy_push_arena_free(&f->arena);
        const char *msg = push(f, &lim, FY_STORE_PUT, "big", body, len,
                               fmt == 2   ? FY_FMT_PROTOBUF
                               : fmt == 1 ? FY_FMT_OPENMETRICS
                                          : FY_FMT_TEXT,
                               &o);
        if (o.status != 200)
            fail_msg("format %d: %d %s", fmt, o.status, msg);
        /* the arena had to grow past its initial 256 KiB, and never past the hint */
        assert_true(f->arena.cap > (256u << 10));
        assert_true(f->arena.cap <= fy_parse_arena_hint(len));
        print_message("format %d: %zu bytes, %zu series: arena %zu KiB\n", fmt, len, nseries, f->arena.cap >> 10);
        fy_store_stats_t st;
        fy_store_stats(f->store, &st);
        assert_int_equal(st.series, nseries + 1 + 2 + 2); /* + small's a, and two timestamp series per group */
        free(body);
    }
    /* a grown arena is reused as is by a later small push */
    size_t cap = f->arena.cap;
    push(f, &lim, FY_STORE_PUT, "small", "a 2\n", 4, TX, &o);
    assert_int_equal(o.status, 200);
    assert_int_equal(f->arena.cap, cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_error_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consistency_check_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arena_growth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
