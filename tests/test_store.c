/*
 * test_store.c: the store's semantics as a table of (pushes, expected result or exact error, expected scrape, note),
 * ported from the Pushgateway 1.5.1 transcripts (spec appendix A) and our documented fixes of its bugs.
 */
#include "store_testlib.h"

#define NOW 1795607735192139212LL /* E02's clock: push_time_seconds 1.7956077351921391e+09 */

typedef struct st_step_t {
    const char *method; /* "PUT", "POST", "DEL" */
    const char *gk;
    const char *body;
    int rc;
    const char *msg; /* exact error message (after the "pushed metrics are invalid..." prefix), or NULL */
} step_t;

typedef struct st_case_t {
    const char *note;
    step_t steps[6];
    const char *text; /* expected scrape without the timestamp families; NULL = not checked */
} case_t;

#define OK 0
#define BAD FY_SERR_INVALID

/* clang-format off */
static const case_t cases[] = {
    {"E02 basic push", {{"PUT", "job=some_job", "some_metric 3.14\n", OK, NULL}},
     "# TYPE some_metric untyped\nsome_metric{instance=\"\",job=\"some_job\"} 3.14\n"},
    {"E08 grouping labels override body labels, instance added, labels sorted",
     {{"PUT", "job=gj,a=grp", "# TYPE m1 counter\n# HELP m1 help one\nm1{job=\"bodyjob\",instance=\"bodyinst\",a=\"1\"} 1\n"
                              "m1{a=\"2\"} 2\nm2{instance=\"bi\"} 5\n", OK, NULL},
      {"PUT", "job=gj2", "# TYPE m1 counter\n# HELP m1 help one\nm1{job=\"bodyjob\",instance=\"bodyinst\",a=\"1\"} 1\n"
                         "m1{a=\"2\"} 2\nm2{instance=\"bi\"} 5\n", OK, NULL}},
     "# HELP m1 help one\n# TYPE m1 counter\n"
     "m1{a=\"1\",instance=\"bodyinst\",job=\"gj2\"} 1\nm1{a=\"2\",instance=\"\",job=\"gj2\"} 2\n"
     "m1{a=\"grp\",instance=\"\",job=\"gj\"} 2\nm1{a=\"grp\",instance=\"bodyinst\",job=\"gj\"} 1\n"
     "# TYPE m2 untyped\nm2{instance=\"bi\",job=\"gj2\"} 5\nm2{a=\"grp\",instance=\"bi\",job=\"gj\"} 5\n"},
    {"E09 override makes duplicates", {{"PUT", "job=dup,a=x", "m3{a=\"1\"} 1\nm3{a=\"2\"} 2\n", BAD,
     "collected metric \"m3\" { label:<name:\"a\" value:\"x\" > label:<name:\"instance\" value:\"\" > "
     "label:<name:\"job\" value:\"dup\" > untyped:<value:2 > } was collected before with the same name and label values"}},
     ""},
    {"E09 duplicate series in one body", {{"PUT", "job=dup2", "m4 1\nm4 2\n", BAD,
     "collected metric \"m4\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"dup2\" > "
     "untyped:<value:2 > } was collected before with the same name and label values"}}, ""},
    {"E09 timestamps are checked first and alone", {{"PUT", "job=ts", "m6 1 1234\nm6 2\n", BAD,
     "pushed metrics must not have timestamps"}}, ""},
    {"E10 type conflict across groups", {{"PUT", "job=t1", "# TYPE tc counter\ntc 1\n", OK, NULL},
     {"PUT", "job=t2", "# TYPE tc gauge\ntc 1\n", BAD,
      "collected metric \"tc\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"t2\" > "
      "gauge:<value:1 > } is not a COUNTER"}},
     "# TYPE tc counter\ntc{instance=\"\",job=\"t1\"} 1\n"},
    {"E10 HELP conflict: the first group in key order wins (t1 has none)",
     {{"PUT", "job=t3", "# HELP tc other help\n# TYPE tc counter\ntc 1\n", OK, NULL},
      {"PUT", "job=t1", "# TYPE tc counter\ntc 1\n", OK, NULL}},
     "# TYPE tc counter\ntc{instance=\"\",job=\"t1\"} 1\ntc{instance=\"\",job=\"t3\"} 1\n"},
    {"same type, re-push to the same group replaces its family",
     {{"PUT", "job=t1", "# TYPE tc counter\ntc 1\n", OK, NULL}, {"PUT", "job=t1", "# TYPE tc gauge\ntc 2\n", OK, NULL}},
     "# TYPE tc gauge\ntc{instance=\"\",job=\"t1\"} 2\n"},
    {"E15 PUT then POST replaces same-named families only",
     {{"PUT", "job=sem", "a1 1\na2 2\n", OK, NULL}, {"POST", "job=sem", "a2 20\na3 30\n", OK, NULL}},
     "# TYPE a1 untyped\na1{instance=\"\",job=\"sem\"} 1\n# TYPE a2 untyped\na2{instance=\"\",job=\"sem\"} 20\n"
     "# TYPE a3 untyped\na3{instance=\"\",job=\"sem\"} 30\n"},
    {"E15 empty POST keeps everything",
     {{"PUT", "job=sem", "a1 1\n", OK, NULL}, {"POST", "job=sem", "", OK, NULL}},
     "# TYPE a1 untyped\na1{instance=\"\",job=\"sem\"} 1\n"},
    {"E15 empty PUT keeps only the timestamps",
     {{"PUT", "job=sem", "a1 1\n", OK, NULL}, {"PUT", "job=sem", "# TYPE onlytype counter\n", OK, NULL}}, ""},
    {"DELETE removes the group; deleting a missing group is fine",
     {{"PUT", "job=d", "a1 1\n", OK, NULL}, {"DEL", "job=d", NULL, OK, NULL}, {"DEL", "job=nope", NULL, OK, NULL}}, ""},
    {"E12 suffix collision inside one push", {{"PUT", "job=x", "sm_sum 1\n# TYPE sm summary\nsm_count 2\n", BAD,
     "collected metric named \"sm_sum\" collides with previously collected summary named \"sm\""}}, ""},
    {"E30 suffix collision with another group's histogram",
     {{"PUT", "job=sfx2", "# TYPE hsx histogram\nhsx_bucket{le=\"1\"} 1\nhsx_sum 1\nhsx_count 1\n", OK, NULL},
      {"PUT", "job=sfx3", "hsx_bucket 1\n", BAD,
       "collected metric named \"hsx_bucket\" collides with previously collected histogram named \"hsx\""}}, NULL},
    {"reverse suffix collision: summary after X_count exists",
     {{"PUT", "job=a", "rv_count 1\n", OK, NULL},
      {"PUT", "job=b", "# TYPE rv summary\nrv_sum 1\nrv_count 1\n", BAD,
       "collected histogram or summary named \"rv\" collides with previously collected metric named \"rv_count\""}}, NULL},
    {"E30 __ label names are invalid", {{"PUT", "job=y8", "x{__r=\"x\"} 1\n", BAD,
     "collected metric \"x\" { label:<name:\"__r\" value:\"x\" > label:<name:\"instance\" value:\"\" > "
     "label:<name:\"job\" value:\"y8\" > untyped:<value:1 > } has a label with an invalid name: __r"}}, ""},
    {"duplicate across groups through overriding",
     {{"PUT", "job=a,x=1", "m 1\n", OK, NULL},
      {"PUT", "job=a", "m{x=\"1\"} 2\n", BAD,
       "collected metric \"m\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"a\" > "
       "label:<name:\"x\" value:\"1\" > untyped:<value:2 > } was collected before with the same name and label values"}},
     "# TYPE m untyped\nm{instance=\"\",job=\"a\",x=\"1\"} 1\n"},
    {"multiple errors, in family name order",
     {{"PUT", "job=me", "b 1\nb 2\na 1\na 2\n", BAD,
       "2 error(s) occurred:\n"
       "* collected metric \"a\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"me\" > untyped:<value:2 > } "
       "was collected before with the same name and label values\n"
       "* collected metric \"b\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"me\" > untyped:<value:2 > } "
       "was collected before with the same name and label values"}}, ""},
    {"E11 histogram, summary, floats, escaping",
     {{"PUT", "job=hist",
       "# HELP rq Request duration.\n# TYPE rq histogram\nrq_bucket{le=\"0.1\",path=\"/a\"} 1\nrq_bucket{le=\"1\",path=\"/a\"} 3\n"
       "rq_bucket{le=\"+Inf\",path=\"/a\"} 4\nrq_sum{path=\"/a\"} 2.5\nrq_count{path=\"/a\"} 4\nrq_bucket{le=\"0.5\",path=\"/b\"} 2\n"
       "rq_sum{path=\"/b\"} 0.7\nrq_count{path=\"/b\"} 2\n# TYPE sm summary\nsm{quantile=\"0.5\"} 1.5\nsm{quantile=\"0.9\"} NaN\n"
       "sm_sum 10\nsm_count 7\n# TYPE sm2 summary\nsm2_count 3\nsm2_sum 1e-7\ng_big 1e21\ng_neg0 -0\nesc{v=\"a\\\"b\\\\c\\nd\"} 1\n",
       OK, NULL}},
     "# TYPE esc untyped\nesc{instance=\"\",job=\"hist\",v=\"a\\\"b\\\\c\\nd\"} 1\n"
     "# TYPE g_big untyped\ng_big{instance=\"\",job=\"hist\"} 1e+21\n# TYPE g_neg0 untyped\ng_neg0{instance=\"\",job=\"hist\"} 0\n"
     "# HELP rq Request duration.\n# TYPE rq histogram\n"
     "rq_bucket{instance=\"\",job=\"hist\",path=\"/a\",le=\"0.1\"} 1\nrq_bucket{instance=\"\",job=\"hist\",path=\"/a\",le=\"1\"} 3\n"
     "rq_bucket{instance=\"\",job=\"hist\",path=\"/a\",le=\"+Inf\"} 4\nrq_sum{instance=\"\",job=\"hist\",path=\"/a\"} 2.5\n"
     "rq_count{instance=\"\",job=\"hist\",path=\"/a\"} 4\nrq_bucket{instance=\"\",job=\"hist\",path=\"/b\",le=\"0.5\"} 2\n"
     "rq_bucket{instance=\"\",job=\"hist\",path=\"/b\",le=\"+Inf\"} 2\nrq_sum{instance=\"\",job=\"hist\",path=\"/b\"} 0.7\n"
     "rq_count{instance=\"\",job=\"hist\",path=\"/b\"} 2\n"
     "# TYPE sm summary\nsm{instance=\"\",job=\"hist\",quantile=\"0.5\"} 1.5\nsm{instance=\"\",job=\"hist\",quantile=\"0.9\"} NaN\n"
     "sm_sum{instance=\"\",job=\"hist\"} 10\nsm_count{instance=\"\",job=\"hist\"} 7\n"
     "# TYPE sm2 summary\nsm2_sum{instance=\"\",job=\"hist\"} 1e-07\nsm2_count{instance=\"\",job=\"hist\"} 3\n"},
    {"E30 byte order of families and of label values",
     {{"PUT", "job=ord", "b 1\nB 1\n_a 1\na 1\n:x 1\nzz{l=\"b\"} 1\nzz{l=\"B\"} 2\nzz{l=\"a\"} 3\nzz{l=\"10\"} 4\nzz{l=\"9\"} 5\n",
       OK, NULL}},
     "# TYPE :x untyped\n:x{instance=\"\",job=\"ord\"} 1\n# TYPE B untyped\nB{instance=\"\",job=\"ord\"} 1\n"
     "# TYPE _a untyped\n_a{instance=\"\",job=\"ord\"} 1\n# TYPE a untyped\na{instance=\"\",job=\"ord\"} 1\n"
     "# TYPE b untyped\nb{instance=\"\",job=\"ord\"} 1\n# TYPE zz untyped\nzz{instance=\"\",job=\"ord\",l=\"10\"} 4\n"
     "zz{instance=\"\",job=\"ord\",l=\"9\"} 5\nzz{instance=\"\",job=\"ord\",l=\"B\"} 2\nzz{instance=\"\",job=\"ord\",l=\"a\"} 3\n"
     "zz{instance=\"\",job=\"ord\",l=\"b\"} 1\n"},
    {"series with fewer labels first; ties broken by label names",
     {{"PUT", "job=tie,c=x", "t 3\n", OK, NULL}, {"PUT", "job=tie,a=x", "t 1\n", OK, NULL},
      {"PUT", "job=tie,b=x", "t 2\n", OK, NULL}, {"PUT", "job=tie", "t 0\n", OK, NULL}},
     "# TYPE t untyped\nt{instance=\"\",job=\"tie\"} 0\nt{a=\"x\",instance=\"\",job=\"tie\"} 1\n"
     "t{b=\"x\",instance=\"\",job=\"tie\"} 2\nt{c=\"x\",instance=\"\",job=\"tie\"} 3\n"},
    {"pushed push_time_seconds families are ignored (the gateway owns them)",
     {{"PUT", "job=p1", "# TYPE push_time_seconds counter\npush_time_seconds 42\nother 1\n", OK, NULL}},
     "# TYPE other untyped\nother{instance=\"\",job=\"p1\"} 1\n"},
    {"B2 fixed: gauge_histogram is exposed as a histogram",
     {{"PUT", "job=gh", "# TYPE x13 gauge_histogram\nx13_bucket{le=\"1\"} 1\nx13_gsum 1\nx13_gcount 1\n", OK, NULL}}, NULL},
    {"B3 fixed: an aliasing group is not created",
     {{"PUT", "job=f10,instance=", "some_metric 3.14\n", OK, NULL},
      {"PUT", "job=f10", "some_metric 3.14\n", BAD, NULL}},
     "# TYPE some_metric untyped\nsome_metric{instance=\"\",job=\"f10\"} 3.14\n"},
    {"a rejected push leaves the stored series alone",
     {{"PUT", "job=r", "a 1\n", OK, NULL}, {"PUT", "job=r", "a 2\na 3\n", BAD, NULL}},
     "# TYPE a untyped\na{instance=\"\",job=\"r\"} 1\n"},
};
/* clang-format on */

static void run_case(const case_t *c)
{
    fy_store_t *s = fy_store_create(NULL);
    for (int i = 0; i < 6 && c->steps[i].method; i++) {
        const step_t *st = &c->steps[i];
        char msg[4096];
        int rc;
        if (strcmp(st->method, "DEL") == 0)
            rc = delete_gk(s, st->gk);
        else
            rc = push_text(s, st->gk, strcmp(st->method, "PUT") == 0 ? FY_STORE_PUT : FY_STORE_POST, st->body, NOW + i, msg,
                           sizeof(msg));
        if (rc != st->rc)
            fail_msg("%s: step %d: rc %d, want %d (%s)", c->note, i, rc, st->rc, rc ? msg : "");
        if (st->msg && strcmp(msg, st->msg) != 0)
            fail_msg("%s: step %d:\n got: %s\nwant: %s", c->note, i, msg, st->msg);
    }
    if (c->text)
        check_scrape(s, c->text, c->note);
    fy_store_destroy(s);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* E02/E03: the timestamp families, their exact values and HELP, and the JSON of one group (fake clock). */
static void test_timestamps_and_json(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_text(s, "job=some_job", FY_STORE_PUT, "some_metric 3.14\n", NOW, NULL, 0), OK);
    char *t = render_text(s, NULL);
    assert_string_equal(t, "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n"
                           "# TYPE push_failure_time_seconds gauge\n"
                           "push_failure_time_seconds{instance=\"\",job=\"some_job\"} 0\n"
                           "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n"
                           "# TYPE push_time_seconds gauge\n"
                           "push_time_seconds{instance=\"\",job=\"some_job\"} 1.7956077351921391e+09\n"
                           "# TYPE some_metric untyped\n"
                           "some_metric{instance=\"\",job=\"some_job\"} 3.14\n");
    free(t);
    char *j = render_json(s);
    assert_string_equal(
        j, "{\"status\":\"success\",\"data\":[{\"labels\":{\"job\":\"some_job\"},\"last_push_successful\":true,"
           "\"push_failure_time_seconds\":{\"time_stamp\":\"2026-11-25T11:55:35.192139212Z\",\"type\":\"GAUGE\",\"help\":"
           "\"Last Unix time when changing this group in the Pushgateway failed.\",\"metrics\":[{\"labels\":{\"instance\":"
           "\"\",\"job\":\"some_job\"},\"value\":\"0\"}]},\"push_time_seconds\":{\"time_stamp\":\"2026-11-25T11:55:35."
           "192139212Z\",\"type\":\"GAUGE\",\"help\":\"Last Unix time when changing this group in the Pushgateway "
           "succeeded.\",\"metrics\":[{\"labels\":{\"instance\":\"\",\"job\":\"some_job\"},\"value\":\"1.7956077351921391e+"
           "09\"}]},\"some_metric\":{\"time_stamp\":\"2026-11-25T11:55:35.192139212Z\",\"type\":\"UNTYPED\",\"metrics\":[{"
           "\"labels\":{\"instance\":\"\",\"job\":\"some_job\"},\"value\":\"3.14\"}]}}]}");
    free(j);
    fy_store_destroy(s);
}

/* E09/E16: a rejected push creates a failure group (push_time 0) and keeps failure times across later successes. */
static void test_failure_times(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_text(s, "job=dup2", FY_STORE_PUT, "m4 1\nm4 2\n", 2000000000LL, NULL, 0), BAD);
    char *j = render_json(s);
    assert_non_null(strstr(j, "\"last_push_successful\":false"));
    assert_non_null(strstr(j, "\"value\":\"2\"}]}")); /* failure at 2 s */
    assert_null(strstr(j, "m4"));
    free(j);
    assert_int_equal(push_text(s, "job=dup2", FY_STORE_POST, "m4 1\n", 3000000000LL, NULL, 0), OK);
    j = render_json(s);
    assert_non_null(strstr(j, "\"last_push_successful\":true"));
    assert_non_null(strstr(j, "failure_time_seconds\":{\"time_stamp\":\"1970-01-01T00:00:02Z\""));
    free(j);
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.series, 3);
    fy_store_destroy(s);
}

/* B4 fixed: an invalid UTF-8 grouping value is rejected without creating a group. */
static void test_bad_utf8_key(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    char msg[4096];
    assert_int_equal(push_text(s, "job=inv,a=\xff", FY_STORE_PUT, "some_metric 1\n", NOW, msg, sizeof(msg)), BAD);
    assert_non_null(strstr(msg, "3 error(s) occurred:\n* collected metric \"push_failure_time_seconds\" {"));
    assert_non_null(strstr(msg, "has a label named \"a\" whose value is not utf8: \"\\xff\""));
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 0);
    char *j = render_json(s);
    assert_string_equal(j, "{\"status\":\"success\",\"data\":[]}");
    free(j);
    fy_store_destroy(s);
}

/* The server's own go_goroutines as it builds them at scrape time (one unlabelled series). */
static const fy_series_t own_goroutines_series[] = {{.value = 10}};
static const fy_family_t own_fams[] = {{.name = {FY_STRLIT("go_goroutines")},
                                        .help = {FY_STRLIT("Number of goroutines that currently exist.")},
                                        .type = FY_TYPE_GAUGE,
                                        .has_help = 1,
                                        .nseries = 1,
                                        .series = own_goroutines_series}};
static const fy_body_t own_body = {own_fams, 1, 1};

/* E14 and E30: collisions with the gateway's own families. */
static void test_own_families(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(fy_store_register_own(s, fy_str(FY_STRLIT("go_goroutines")), FY_TYPE_GAUGE,
                                           fy_str(FY_STRLIT("Number of goroutines that currently exist.")), 1),
                     OK);
    assert_int_equal(fy_store_register_own(s, fy_str(FY_STRLIT("go_threads")), FY_TYPE_GAUGE,
                                           fy_str(FY_STRLIT("Number of OS threads created.")), 1),
                     OK);
    assert_int_equal(fy_store_register_own(s, fy_str(FY_STRLIT("go_gc_duration_seconds")), FY_TYPE_SUMMARY,
                                           fy_str(FY_STRLIT("A summary of the pause duration of garbage collection cycles.")), 1),
                     OK);
    assert_int_equal(
        fy_store_register_own(s, fy_str(FY_STRLIT("pushgateway_http_requests_total")), FY_TYPE_COUNTER,
                              fy_str(FY_STRLIT("Total HTTP requests processed by the Pushgateway, excluding scrapes.")), 0),
        OK);
    assert_int_equal(fy_store_register_own(s, fy_str(FY_STRLIT("go_threads")), FY_TYPE_GAUGE, fy_str("", 0), 1), FY_SERR_BADARG);
    static const struct {
        const char *body;
        int rc;
        const char *msg;
    } rows[] = {
        {"# HELP go_goroutines my help\n# TYPE go_goroutines gauge\ngo_goroutines 42\n", OK, NULL},
        {"# TYPE go_threads counter\ngo_threads 42\n", BAD,
         "gathered metric family go_threads has type COUNTER but should have GAUGE"},
        {"# HELP pushgateway_http_requests_total my help\n# TYPE pushgateway_http_requests_total counter\n"
         "pushgateway_http_requests_total 42\n",
         BAD,
         "gathered metric family pushgateway_http_requests_total has help \"my help\" but should have \"Total HTTP requests "
         "processed by the Pushgateway, excluding scrapes.\""},
        {"go_gc_duration_seconds_count 1\n", BAD,
         "collected metric named \"go_gc_duration_seconds_count\" collides with previously collected summary named "
         "\"go_gc_duration_seconds\""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char msg[4096];
        char gk[32];
        snprintf(gk, sizeof(gk), "job=p%zu", i);
        int rc = push_text(s, gk, FY_STORE_PUT, rows[i].body, NOW, msg, sizeof(msg));
        assert_int_equal(rc, rows[i].rc);
        if (rows[i].msg)
            assert_string_equal(msg, rows[i].msg);
    }
    char *t = render_text(s, &own_body);
    char *f = without_ts(t);
    assert_string_equal(f, "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\n"
                           "go_goroutines 10\ngo_goroutines{instance=\"\",job=\"p0\"} 42\n");
    free(t);
    free(f);
    fy_store_destroy(s);
}

/* B5/B6/B7 fixed: bad or reserved names, unknown types and HELP texts that are not UTF-8 are rejected at push time
 * (bodies built by hand, as protobuf could). */
static void test_bad_names_types(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t type;
        const char *msg;
        const char *help; /* NULL: none */
        size_t help_len;  /* 0: strlen(help) */
    } rows[] = {
        {"1bad-name", FY_TYPE_GAUGE, "invalid metric name \"1bad-name\"", NULL, 0},
        {"", FY_TYPE_GAUGE, "invalid metric name \"\"", NULL, 0},
        {"ok", 9, "metric family \"ok\" has unknown type 9", NULL, 0},
        /* B7 fixed: these would overwrite the group's own keys in /api/v1/metrics */
        {"labels", FY_TYPE_GAUGE,
         "metric family name \"labels\" is reserved: it would replace the group's key of that name in /api/v1/metrics", NULL, 0},
        {"last_push_successful", FY_TYPE_COUNTER,
         "metric family name \"last_push_successful\" is reserved: it would replace the group's key of that name in "
         "/api/v1/metrics",
         NULL, 0},
        {"labels_total", FY_TYPE_GAUGE, NULL, NULL, 0}, /* only the exact names */
        /* Prometheus 2.42 fails the whole scrape on a HELP text that is not UTF-8 (Go's utf8.ValidString); NUL it
         * takes as is (tests/integration/test_abuse_prometheus.py) */
        {"h1", FY_TYPE_GAUGE, "metric family \"h1\" has a HELP text that is not valid UTF-8: \"a\\xffb\"",
         "a\xff"
         "b",
         0},
        {"h2", FY_TYPE_GAUGE, "metric family \"h2\" has a HELP text that is not valid UTF-8: \"\\xed\\xa0\\x80\"", "\xed\xa0\x80",
         0}, /* a surrogate */
        {"h3", FY_TYPE_GAUGE, "metric family \"h3\" has a HELP text that is not valid UTF-8: \"\\xc3\"", "\xc3", 0},
        {"h4", FY_TYPE_GAUGE, NULL, "a\0b", 3},
        {"h5", FY_TYPE_GAUGE, NULL, "caf\xc3\xa9 \xe2\x82\xac", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fy_store_t *s = fy_store_create(NULL);
        fy_series_t se;
        memset(&se, 0, sizeof(se));
        se.pb_kinds = 0;
        se.value = 1;
        fy_family_t fam;
        memset(&fam, 0, sizeof(fam));
        fam.name = fy_str(rows[i].name, strlen(rows[i].name));
        fam.type = rows[i].type;
        fam.nseries = 1;
        fam.series = &se;
        if (rows[i].help != NULL) {
            fam.help = fy_str(rows[i].help, rows[i].help_len ? rows[i].help_len : strlen(rows[i].help));
            fam.has_help = 1;
        }
        fy_body_t body = {&fam, 1, 1};
        fy_store_label_t gk = {fy_str(FY_STRLIT("job")), fy_str(FY_STRLIT("x"))};
        fy_store_err_t err;
        if (rows[i].msg == NULL) {
            assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, &err), OK);
        } else {
            assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, &err), BAD);
            assert_string_equal(err.msg, rows[i].msg);
            assert_true(err.failure_recorded);
            fy_store_err_free(&err);
        }
        fy_store_destroy(s);
    }
}

/* Protobuf value kinds that do not match the family type, and explicit quantile labels on summaries. */
static void test_pb_checks(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    fy_series_t se;
    memset(&se, 0, sizeof(se));
    se.pb_kinds = FY_PB_KINDS_VALID | FY_PB_KIND_BIT(FY_TYPE_COUNTER);
    se.value = 1;
    fy_family_t fam;
    memset(&fam, 0, sizeof(fam));
    fam.name = fy_str(FY_STRLIT("pb_tm"));
    fam.type = FY_TYPE_GAUGE;
    fam.nseries = 1;
    fam.series = &se;
    fy_body_t body = {&fam, 1, 1};
    fy_store_label_t gk = {fy_str(FY_STRLIT("job")), fy_str(FY_STRLIT("pb"))};
    fy_store_err_t err;
    assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, &err), BAD);
    assert_string_equal(err.msg, "collected metric \"pb_tm\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" "
                                 "value:\"pb\" > counter:<value:1 > } is not a GAUGE");
    fy_store_err_free(&err);
    fy_label_t q = {fy_str(FY_STRLIT("quantile")), fy_str(FY_STRLIT("x")), 0};
    se.pb_kinds = FY_PB_KINDS_VALID | FY_PB_KIND_BIT(FY_TYPE_SUMMARY);
    se.labels = &q;
    se.nlabels = 1;
    fam.type = FY_TYPE_SUMMARY;
    fam.name = fy_str(FY_STRLIT("pb_sq"));
    assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, &err), BAD);
    assert_non_null(strstr(err.msg, "must not have an explicit \"quantile\" label"));
    fy_store_err_free(&err);
    fy_label_t dl[2] = {{fy_str(FY_STRLIT("a")), fy_str(FY_STRLIT("1")), 0}, {fy_str(FY_STRLIT("a")), fy_str(FY_STRLIT("2")), 0}};
    se.labels = dl;
    se.nlabels = 2;
    assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, &err), BAD);
    assert_non_null(strstr(err.msg, "has two or more labels with the same name: a"));
    fy_store_err_free(&err);
    fy_store_destroy(s);
}

static void test_limits(void **state)
{
    (void)state;
    fy_store_config_t cfg = {0};
    cfg.max_groups = 2;
    cfg.max_series = 7;
    fy_store_t *s = fy_store_create(&cfg);
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "a 1\n", NOW, NULL, 0), OK); /* 3 series */
    assert_int_equal(push_text(s, "job=b", FY_STORE_PUT, "a 1\n", NOW, NULL, 0), OK); /* 6 */
    assert_int_equal(push_text(s, "job=c", FY_STORE_PUT, "a 1\n", NOW, NULL, 0), FY_SERR_LIMIT_GROUPS);
    assert_int_equal(push_text(s, "job=a", FY_STORE_POST, "b 1\nc 1\n", NOW, NULL, 0), FY_SERR_LIMIT_SERIES);
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "b 1\nc 1\n", NOW, NULL, 0), OK); /* replaces a: 7 */
    assert_int_equal(push_text(s, "job=a", FY_STORE_POST, "d 1\n", NOW, NULL, 0), FY_SERR_LIMIT_SERIES);
    assert_int_equal(push_text(s, "job=a", FY_STORE_POST, "b 1\n", NOW, NULL, 0), OK); /* replaces b: still 7 */
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, 2);
    assert_int_equal(st.series, 7);
    fy_store_destroy(s);
}

static int count_groups(void *ctx, const fy_store_group_view_t *g)
{
    int *n = ctx;
    if (*n == 0)
        assert_memory_equal(g->key.ptr,
                            "job\xff"
                            "a",
                            5);
    (*n)++;
    return 0;
}

static void test_foreach(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_text(s, "job=b", FY_STORE_PUT, "x 1\n", NOW, NULL, 0), OK);
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "x 1\n", NOW, NULL, 0), OK);
    int n = 0;
    assert_int_equal(fy_store_foreach_group(s, count_groups, &n), 0);
    assert_int_equal(n, 2);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),         cmocka_unit_test(test_timestamps_and_json),
        cmocka_unit_test(test_failure_times), cmocka_unit_test(test_bad_utf8_key),
        cmocka_unit_test(test_own_families),  cmocka_unit_test(test_bad_names_types),
        cmocka_unit_test(test_pb_checks),     cmocka_unit_test(test_limits),
        cmocka_unit_test(test_foreach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
