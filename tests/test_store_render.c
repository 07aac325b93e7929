/*
 * test_store_render.c: the scrape renderers' contract: own families merged into pushed ones by the series order
 * (text), delimited protobuf decoded back with fy_parse_protobuf and compared with what was pushed (including a
 * native histogram re-emitted byte for byte), and OpenMetrics 1.0 output as exact text that fy_parse_openmetrics
 * accepts.
 */
#include "fy_parse.h"
#include "fy_pb.h"
#include "store_testlib.h"

#define NOW 1700000000500000000LL /* push_time_seconds 1.7000000005e+09 */

/* ------------------------------------------------------------------------------------------------------------- */
/* Own families: rendered like pushed series, merged by label count, then values, then names. */

static const fy_label_t own_l200[] = {{{FY_STRLIT("code")}, {FY_STRLIT("200")}, 0},
                                      {{FY_STRLIT("handler")}, {FY_STRLIT("push")}, 0}};
static const fy_label_t own_l500[] = {{{FY_STRLIT("code")}, {FY_STRLIT("500")}, 0},
                                      {{FY_STRLIT("handler")}, {FY_STRLIT("a")}, 0},
                                      {{FY_STRLIT("x")}, {FY_STRLIT("1")}, 0}};
static const fy_series_t own_total_series[] = {
    {.value = 7},                                   /* no labels: before every pushed series (they have >= 2) */
    {.labels = own_l200, .nlabels = 2, .value = 3}, /* 2 labels, "200" > "": after {instance="",job="b"} */
    {.labels = own_l500, .nlabels = 3, .value = 2}, /* 3 labels, "500" < "x": before {a="x",instance="",job="a"} */
};
static const fy_label_t own_x1[] = {{{FY_STRLIT("x")}, {FY_STRLIT("1")}, 0}};
static const fy_series_t own_gauge_series[] = {{.labels = own_x1, .nlabels = 1, .value = 2}};
static const fy_family_t merge_fams[] = {
    {.name = {FY_STRLIT("aa_empty")}, .type = FY_TYPE_GAUGE}, /* no series: omitted */
    {.name = {FY_STRLIT("own_total")},
     .help = {FY_STRLIT("Own help.")},
     .type = FY_TYPE_COUNTER,
     .has_help = 1,
     .nseries = 3,
     .series = own_total_series},
    {.name = {FY_STRLIT("zz_own")}, .type = FY_TYPE_GAUGE, .nseries = 1, .series = own_gauge_series}, /* no HELP */
};
static const fy_body_t merge_own = {merge_fams, 3, 4};

static void test_own_merge_text(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(fy_store_register_own(s, fy_str(FY_STRLIT("own_total")), FY_TYPE_COUNTER, fy_str(FY_STRLIT("Own help.")), 1),
                     FY_OK);
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "# TYPE own_total counter\nown_total{a=\"x\"} 1\n", NOW, NULL, 0), FY_OK);
    assert_int_equal(push_text(s, "job=b", FY_STORE_PUT, "# TYPE own_total counter\nown_total 5\n", NOW, NULL, 0), FY_OK);
    char *t = render_text(s, &merge_own);
    char *f = without_ts(t);
    assert_string_equal(f, "# HELP own_total Own help.\n# TYPE own_total counter\n"
                           "own_total 7\n"
                           "own_total{instance=\"\",job=\"b\"} 5\n"
                           "own_total{code=\"200\",handler=\"push\"} 3\n"
                           "own_total{code=\"500\",handler=\"a\",x=\"1\"} 2\n"
                           "own_total{a=\"x\",instance=\"\",job=\"a\"} 1\n"
                           "# TYPE zz_own gauge\nzz_own{x=\"1\"} 2\n");
    free(t);
    free(f);
    /* without own data, a registered own family still shows its pushed series under the registered header */
    t = render_text(s, NULL);
    f = without_ts(t);
    assert_string_equal(f, "# HELP own_total Own help.\n# TYPE own_total counter\n"
                           "own_total{instance=\"\",job=\"b\"} 5\nown_total{a=\"x\",instance=\"\",job=\"a\"} 1\n");
    free(t);
    free(f);
    fy_store_destroy(s);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* A store with every type, HELP with escapes, a counter without _total, an untyped family, a native histogram. */

static const char body_a[] =
    "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{code=\"200\"} 3\nreq_total{code=\"500\"} 1\n"
    "# TYPE temp gauge\ntemp 21.5\n"
    "# HELP lat Latency \"quoted\" \\\\ back.\n# TYPE lat summary\nlat{quantile=\"0.5\"} 0.2\nlat_sum 1\nlat_count 4\n"
    "# TYPE dur histogram\ndur_bucket{le=\"1\"} 2\ndur_bucket{le=\"+Inf\"} 3\ndur_sum 2.5\ndur_count 3\n"
    "plain{v=\"a\\\"b\\nc\"} 7\n";
static const char body_b[] = "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total 9\n# TYPE hits counter\nhits 2\n";

static const fy_family_t own_only_fams[] = {{.name = {FY_STRLIT("aaa_own")},
                                             .help = {FY_STRLIT("Own gauge.")},
                                             .type = FY_TYPE_GAUGE,
                                             .has_help = 1,
                                             .nseries = 1,
                                             .series = own_gauge_series}};
static const fy_body_t own_only = {own_only_fams, 1, 1};

/* The encoded Histogram sub-message pushed for family nh: count 3, sum 1.5, schema 3, zero threshold, zero count 1,
 * one positive span (offset 0, length 2), deltas [1, 0]. */
static size_t native_hist(char *buf, size_t cap)
{
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, buf, cap);
    fy_pb_put_uint64(&w, 1, 3);
    fy_pb_put_double(&w, 2, 1.5);
    fy_pb_put_uint64(&w, 5, fy_pb_zigzag(3));
    fy_pb_put_double(&w, 6, 1e-128);
    fy_pb_put_uint64(&w, 7, 1);
    size_t m = fy_pb_begin(&w, 12);
    fy_pb_put_uint64(&w, 1, fy_pb_zigzag(0));
    fy_pb_put_uint64(&w, 2, 2);
    fy_pb_end(&w, m);
    m = fy_pb_begin(&w, 13);
    fy_pb_put_varint(&w, fy_pb_zigzag(1));
    fy_pb_put_varint(&w, fy_pb_zigzag(0));
    fy_pb_end(&w, m);
    assert_false(w.overflow);
    return w.len;
}

static void push_native(fy_store_t *s, char *hist, size_t hlen)
{
    char buf[512];
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, buf, sizeof(buf));
    size_t fam = fy_pb_begin(&w, 0);
    fy_pb_put_bytes(&w, 1, "nh", 2);
    fy_pb_put_uint64(&w, 3, FY_TYPE_HISTOGRAM);
    size_t met = fy_pb_begin(&w, 4);
    size_t lp = fy_pb_begin(&w, 1);
    fy_pb_put_bytes(&w, 1, "a", 1);
    fy_pb_put_bytes(&w, 2, "1", 1);
    fy_pb_end(&w, lp);
    fy_pb_put_bytes(&w, 7, hist, hlen);
    fy_pb_end(&w, met);
    fy_pb_end(&w, fam);
    assert_false(w.overflow);
    size_t cap = fy_parse_arena_hint(w.len);
    void *mem = malloc(cap);
    fy_arena_t a;
    fy_arena_init(&a, mem, cap);
    fy_body_t body;
    fy_parse_error_t perr;
    assert_int_equal(fy_parse_protobuf(buf, w.len, &a, &body, &perr), FY_OK);
    assert_int_equal(body.families[0].series[0].pb_histogram.len, hlen);
    fy_store_label_t gk = {{FY_STRLIT("job")}, {FY_STRLIT("c")}};
    assert_int_equal(fy_store_push(s, &gk, 1, FY_STORE_PUT, &body, NOW, 0, NULL), FY_OK);
    free(mem);
}

static fy_store_t *all_types_store(char *hist, size_t *hlen)
{
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, body_a, NOW, NULL, 0), FY_OK);
    assert_int_equal(push_text(s, "job=b", FY_STORE_PUT, body_b, NOW, NULL, 0), FY_OK);
    *hlen = native_hist(hist, 256);
    push_native(s, hist, *hlen);
    return s;
}

static void dump_str(sbuf_t *o, fy_str_t v, fy_esc_t esc)
{
    char tmp[256];
    size_t n = esc == FY_ESC_NONE ? v.len : fy_unescape(v, esc, tmp);
    sbuf_writer(o, esc == FY_ESC_NONE ? v.ptr : tmp, n);
}

/* A readable dump of a parsed body: one line per family, one per series (labels as given, values, points). */
static void dump_body(sbuf_t *o, const fy_body_t *b)
{
    char t[512];
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        dump_str(o, f->name, FY_ESC_NONE);
        snprintf(t, sizeof(t), " type=%u help=", f->type);
        sbuf_writer(o, t, strlen(t));
        if (f->has_help)
            dump_str(o, f->help, (fy_esc_t)f->help_esc);
        else
            sbuf_writer(o, "-", 1);
        sbuf_writer(o, "\n", 1);
        for (uint32_t k = 0; k < f->nseries; k++) {
            const fy_series_t *se = &f->series[k];
            sbuf_writer(o, " {", 2);
            for (uint32_t j = 0; j < se->nlabels; j++) {
                if (j)
                    sbuf_writer(o, ",", 1);
                dump_str(o, se->labels[j].name, FY_ESC_NONE);
                sbuf_writer(o, "=", 1);
                dump_str(o, se->labels[j].value, (fy_esc_t)se->labels[j].value_esc);
            }
            snprintf(t, sizeof(t), "} %.17g", se->value);
            sbuf_writer(o, t, strlen(t));
            if (f->type == FY_TYPE_SUMMARY || f->type == FY_TYPE_HISTOGRAM) {
                snprintf(t, sizeof(t), " count=%llu", (unsigned long long)se->count);
                sbuf_writer(o, t, strlen(t));
            }
            for (uint32_t j = 0; j < se->npoints; j++) {
                snprintf(t, sizeof(t), " [%.17g %.17g %llu]", se->points[j].key, se->points[j].value,
                         (unsigned long long)se->points[j].count);
                sbuf_writer(o, t, strlen(t));
            }
            if (se->pb_histogram.len) {
                snprintf(t, sizeof(t), " native=%zu", se->pb_histogram.len);
                sbuf_writer(o, t, strlen(t));
            }
            sbuf_writer(o, "\n", 1);
        }
    }
}

static void test_protobuf(void **state)
{
    (void)state;
    char hist[256];
    size_t hlen;
    fy_store_t *s = all_types_store(hist, &hlen);
    sbuf_t out = render_fmt(s, &own_only, 1);
    size_t cap = fy_parse_arena_hint(out.n);
    void *mem = malloc(cap);
    fy_arena_t a;
    fy_arena_init(&a, mem, cap);
    fy_body_t body;
    fy_parse_error_t perr;
    assert_int_equal(fy_parse_protobuf(out.p, out.n, &a, &body, &perr), FY_OK);
    sbuf_t d = {0};
    sbuf_writer(&d, "", 0);
    dump_body(&d, &body);
    assert_string_equal(d.p, "aaa_own type=1 help=Own gauge.\n"
                             " {x=1} 2\n"
                             "dur type=4 help=-\n"
                             " {instance=,job=a} 2.5 count=3 [1 0 2] [inf 0 3]\n"
                             "hits type=0 help=-\n"
                             " {instance=,job=b} 2\n"
                             "lat type=2 help=Latency \"quoted\" \\ back.\n"
                             " {instance=,job=a} 1 count=4 [0.5 0.20000000000000001 0]\n"
                             "nh type=4 help=-\n"
                             " {a=1,instance=,job=c} 1.5 count=3 native=34\n"
                             "plain type=3 help=-\n"
                             " {instance=,job=a,v=a\"b\nc} 7\n"
                             "push_failure_time_seconds type=1 help=Last Unix time when changing this group in the "
                             "Pushgateway failed.\n"
                             " {instance=,job=a} 0\n {instance=,job=b} 0\n {instance=,job=c} 0\n"
                             "push_time_seconds type=1 help=Last Unix time when changing this group in the Pushgateway "
                             "succeeded.\n"
                             " {instance=,job=a} 1700000000.5\n {instance=,job=b} 1700000000.5\n"
                             " {instance=,job=c} 1700000000.5\n"
                             "req_total type=0 help=Requests.\n"
                             " {instance=,job=b} 9\n {code=200,instance=,job=a} 3\n {code=500,instance=,job=a} 1\n"
                             "temp type=1 help=-\n"
                             " {instance=,job=a} 21.5\n");
    /* the native histogram comes back byte for byte */
    const fy_series_t *nh = &body.families[4].series[0];
    assert_int_equal(nh->pb_histogram.len, hlen);
    assert_memory_equal(nh->pb_histogram.ptr, hist, hlen);
    free(d.p);
    free(mem);
    free(out.p);
    fy_store_destroy(s);
}

static void test_openmetrics(void **state)
{
    (void)state;
    char hist[256];
    size_t hlen;
    fy_store_t *s = all_types_store(hist, &hlen);
    sbuf_t out = render_fmt(s, &own_only, 0);
    assert_string_equal(out.p, "# HELP aaa_own Own gauge.\n# TYPE aaa_own gauge\naaa_own{x=\"1\"} 2.0\n"
                               "# TYPE dur histogram\n"
                               "dur_bucket{instance=\"\",job=\"a\",le=\"1.0\"} 2\n"
                               "dur_bucket{instance=\"\",job=\"a\",le=\"+Inf\"} 3\n"
                               "dur_sum{instance=\"\",job=\"a\"} 2.5\n"
                               "dur_count{instance=\"\",job=\"a\"} 3\n"
                               "# TYPE hits unknown\nhits{instance=\"\",job=\"b\"} 2.0\n"
                               "# HELP lat Latency \\\"quoted\\\" \\\\ back.\n# TYPE lat summary\n"
                               "lat{instance=\"\",job=\"a\",quantile=\"0.5\"} 0.2\n"
                               "lat_sum{instance=\"\",job=\"a\"} 1.0\n"
                               "lat_count{instance=\"\",job=\"a\"} 4\n"
                               "# TYPE nh histogram\n"
                               "nh_bucket{a=\"1\",instance=\"\",job=\"c\",le=\"+Inf\"} 3\n"
                               "nh_sum{a=\"1\",instance=\"\",job=\"c\"} 1.5\n"
                               "nh_count{a=\"1\",instance=\"\",job=\"c\"} 3\n"
                               "# TYPE plain unknown\nplain{instance=\"\",job=\"a\",v=\"a\\\"b\\nc\"} 7.0\n"
                               "# HELP push_failure_time_seconds Last Unix time when changing this group in the "
                               "Pushgateway failed.\n# TYPE push_failure_time_seconds gauge\n"
                               "push_failure_time_seconds{instance=\"\",job=\"a\"} 0.0\n"
                               "push_failure_time_seconds{instance=\"\",job=\"b\"} 0.0\n"
                               "push_failure_time_seconds{instance=\"\",job=\"c\"} 0.0\n"
                               "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway "
                               "succeeded.\n# TYPE push_time_seconds gauge\n"
                               "push_time_seconds{instance=\"\",job=\"a\"} 1.7000000005e+09\n"
                               "push_time_seconds{instance=\"\",job=\"b\"} 1.7000000005e+09\n"
                               "push_time_seconds{instance=\"\",job=\"c\"} 1.7000000005e+09\n"
                               "# HELP req Requests.\n# TYPE req counter\n"
                               "req_total{instance=\"\",job=\"b\"} 9.0\n"
                               "req_total{code=\"200\",instance=\"\",job=\"a\"} 3.0\n"
                               "req_total{code=\"500\",instance=\"\",job=\"a\"} 1.0\n"
                               "# TYPE temp gauge\ntemp{instance=\"\",job=\"a\"} 21.5\n"
                               "# EOF\n");
    /* and our OpenMetrics parser reads it back: req is counter req_total again, hits/plain untyped */
    size_t cap = fy_parse_arena_hint(out.n);
    void *mem = malloc(cap);
    fy_arena_t a;
    fy_arena_init(&a, mem, cap);
    fy_body_t body;
    fy_parse_error_t perr;
    int rc = fy_parse_openmetrics(out.p, out.n, &a, &body, &perr);
    if (rc != FY_OK)
        fail_msg("openmetrics parse: %s", perr.msg);
    sbuf_t d = {0};
    sbuf_writer(&d, "", 0);
    dump_body(&d, &body);
    assert_non_null(strstr(d.p, "req_total type=0 help=Requests.\n {instance=,job=b} 9\n"));
    assert_non_null(strstr(d.p, "hits type=3 help=-\n"));
    assert_non_null(strstr(d.p, "lat type=2 help=Latency \"quoted\" \\ back.\n"));
    assert_non_null(strstr(d.p, " {instance=,job=a,v=a\"b\nc} 7\n"));
    assert_int_equal(body.nfamilies, 10);
    free(d.p);
    free(mem);
    free(out.p);
    fy_store_destroy(s);
}

/* The writer's non-zero return stops every renderer and is returned. */
static int stop_writer(void *ctx, const char *buf, size_t len)
{
    (void)buf;
    (void)len;
    ++*(int *)ctx;
    return 42;
}

static void test_writer_stop(void **state)
{
    (void)state;
    char hist[256];
    size_t hlen;
    fy_store_t *s = all_types_store(hist, &hlen);
    int calls = 0;
    assert_int_equal(fy_store_render_text(s, &own_only, 64, stop_writer, &calls), 42);
    assert_int_equal(fy_store_render_protobuf(s, &own_only, 64, stop_writer, &calls), 42);
    assert_int_equal(fy_store_render_openmetrics(s, &own_only, 64, stop_writer, &calls), 42);
    assert_int_equal(calls, 3);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_merge_text),
        cmocka_unit_test(test_protobuf),
        cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_writer_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
