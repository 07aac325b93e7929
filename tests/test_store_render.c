/*
 * test_store_render.c: the scrape renderers' contract: own families merged into pushed ones by the series order
 * (text), delimited protobuf decoded back with fy_parse_protobuf and compared with what was pushed (including a
 * native histogram re-emitted byte for byte), and OpenMetrics 1.0 output as exact text that fy_parse_openmetrics
 * accepts, and the /api/v1/metrics JSON in parts (byte-identical to the whole body, bounded parts, valid JSON when a
 * group changes between its parts).
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

/* ------------------------------------------------------------------------------------------------------------- */
/* --push.enable-utf8-names: a store with utf8_names takes UTF-8 names and scrapes write the ones that are not
 * legacy-valid as the scraper asked (common v0.61's EscapingScheme). */

static const char utf8_body[] =
    "# HELP \"my.metric\" a help\n# TYPE \"my.metric\" counter\n"
    "{\"my.metric\",\"label.name\"=\"v\",plain=\"p\"} 1\n"
    "plain_m{\"a-b\"=\"x\",\"ü\"=\"y\",\"1st\"=\"z\",\"a:b\"=\"w\"} 2\n"
    "# TYPE \"s\\\"q\" summary\n{\"s\\\"q\",quantile=\"0.5\"} 3\n{\"s\\\"q_sum\"} 4\n{\"s\\\"q_count\"} 5\n";

static int push_utf8(fy_store_t *s, const char *gk, const char *text, char *msg, size_t msgcap)
{
    fy_store_label_t l[16];
    char mem[512];
    size_t n = parse_gk(gk, l, mem), len = strlen(text);
    void *amem = malloc(fy_parse_arena_hint(len));
    fy_arena_t a;
    fy_arena_init(&a, amem, fy_parse_arena_hint(len));
    fy_body_t body;
    fy_parse_error_t perr;
    if (fy_parse_text_opts(text, len, &a, &body, &perr, FY_PARSE_UTF8_NAMES) != FY_OK)
        fail_msg("parse error: %s", perr.msg);
    fy_store_err_t err;
    int rc = fy_store_push(s, l, n, FY_STORE_PUT, &body, NOW, 0, &err);
    snprintf(msg, msgcap, "%s", rc == FY_OK ? "" : err.msg);
    if (rc != FY_OK)
        fy_store_err_free(&err);
    free(amem);
    return rc;
}

static char *render_esc(fy_store_t *s, int om, fy_name_escaping_t esc)
{
    sbuf_t b = {0};
    sbuf_writer(&b, "", 0);
    if (om)
        assert_int_equal(fy_store_render_openmetrics_esc(s, NULL, esc, 100, sbuf_writer, &b), 0);
    else
        assert_int_equal(fy_store_render_text_esc(s, NULL, esc, 100, sbuf_writer, &b), 0);
    char *f = without_ts(b.p);
    free(b.p);
    return f;
}

typedef struct {
    int om;
    fy_name_escaping_t esc;
    const char *want;
    const char *note;
} esc_case_t;

static const esc_case_t esc_cases[] = {
    {0, FY_NAMES_UNDERSCORES,
     "# HELP my_metric a help\n# TYPE my_metric counter\n"
     "my_metric{dotted_key=\"kv\",instance=\"\",job=\"j\",label_name=\"v\",plain=\"p\"} 1\n"
     "# TYPE plain_m untyped\n"
     "plain_m{_st=\"z\",a_b=\"x\",a_b=\"w\",dotted_key=\"kv\",instance=\"\",job=\"j\",_=\"y\"} 2\n"
     "# TYPE s_q summary\n"
     "s_q{dotted_key=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3\n"
     "s_q_sum{dotted_key=\"kv\",instance=\"\",job=\"j\"} 4\n"
     "s_q_count{dotted_key=\"kv\",instance=\"\",job=\"j\"} 5\n",
     "underscores (the default): every rune that is not legacy becomes _, a leading digit too; the label a:b too (Ferry; 1.11 "
     "leaves it bare); labels keep the order of their original names (a-b before a:b)"},
    {0, FY_NAMES_ALLOW_UTF8,
     "# HELP \"my.metric\" a help\n# TYPE \"my.metric\" counter\n"
     "{\"my.metric\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",\"label.name\"=\"v\",plain=\"p\"} 1\n"
     "# TYPE plain_m untyped\n"
     "plain_m{\"1st\"=\"z\",\"a-b\"=\"x\",\"a:b\"=\"w\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",\"ü\"=\"y\"} 2\n"
     "# TYPE \"s\\\"q\" summary\n"
     "{\"s\\\"q\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3\n"
     "{\"s\\\"q_sum\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\"} 4\n"
     "{\"s\\\"q_count\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\"} 5\n",
     "allow-utf-8: quoted names, the metric name first in the braces, quotes escaped"},
    {0, FY_NAMES_DOTS,
     "# HELP my_dot_metric a help\n# TYPE my_dot_metric counter\n"
     "my_dot_metric{dotted_dot_key=\"kv\",instance=\"\",job=\"j\",label_dot_name=\"v\",plain=\"p\"} 1\n"
     "# TYPE plain_m untyped\n"
     "plain_m{__st=\"z\",a__b=\"x\",a__b=\"w\",dotted_dot_key=\"kv\",instance=\"\",job=\"j\",__=\"y\"} 2\n"
     "# TYPE s__q summary\n"
     "s__q{dotted_dot_key=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3\n"
     "s__q_sum{dotted_dot_key=\"kv\",instance=\"\",job=\"j\"} 4\n"
     "s__q_count{dotted_dot_key=\"kv\",instance=\"\",job=\"j\"} 5\n",
     "dots: . is _dot_, other runes __ (legacy names untouched)"},
    {0, FY_NAMES_VALUES,
     "# HELP U__my_2e_metric a help\n# TYPE U__my_2e_metric counter\n"
     "U__my_2e_metric{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",U__label_2e_name=\"v\",plain=\"p\"} 1\n"
     "# TYPE plain_m untyped\n"
     "plain_m{U___31_st=\"z\",U__a_2d_b=\"x\",U__a_3a_b=\"w\",U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",U___fc_=\"y\"} 2\n"
     "# TYPE U__s_22_q summary\n"
     "U__s_22_q{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3\n"
     "U__s_22_q_sum{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\"} 4\n"
     "U__s_22_q_count{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\"} 5\n",
     "values: U__ and hex code points, the reverse of the grouping-key decoding"},
    {1, FY_NAMES_ALLOW_UTF8,
     "# HELP \"my.metric\" a help\n# TYPE \"my.metric\" unknown\n"
     "{\"my.metric\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",\"label.name\"=\"v\",plain=\"p\"} 1.0\n"
     "# TYPE plain_m unknown\n"
     "plain_m{\"1st\"=\"z\",\"a-b\"=\"x\",\"a:b\"=\"w\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",\"ü\"=\"y\"} 2.0\n"
     "# TYPE \"s\\\"q\" summary\n"
     "{\"s\\\"q\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3.0\n"
     "{\"s\\\"q_sum\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\"} 4.0\n"
     "{\"s\\\"q_count\",\"dotted.key\"=\"kv\",instance=\"\",job=\"j\"} 5\n# EOF\n",
     "OpenMetrics (Ferry's opt-in) quotes the same way; a counter without _total stays unknown"},
    {1, FY_NAMES_VALUES,
     "# HELP U__my_2e_metric a help\n# TYPE U__my_2e_metric unknown\n"
     "U__my_2e_metric{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",U__label_2e_name=\"v\",plain=\"p\"} 1.0\n"
     "# TYPE plain_m unknown\n"
     "plain_m{U___31_st=\"z\",U__a_2d_b=\"x\",U__a_3a_b=\"w\",U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",U___fc_=\"y\"} 2.0\n"
     "# TYPE U__s_22_q summary\n"
     "U__s_22_q{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\",quantile=\"0.5\"} 3.0\n"
     "U__s_22_q_sum{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\"} 4.0\n"
     "U__s_22_q_count{U__dotted_2e_key=\"kv\",instance=\"\",job=\"j\"} 5\n# EOF\n",
     "OpenMetrics escapes like text"},
};

static void test_utf8_names(void **state)
{
    (void)state;
    char msg[512];
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.utf8_names = 1;
    fy_store_t *s = fy_store_create(&cfg);
    assert_int_equal(push_utf8(s, "job=j,dotted.key=kv", utf8_body, msg, sizeof(msg)), FY_OK);
    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        char *got = render_esc(s, esc_cases[i].om, esc_cases[i].esc);
        if (strcmp(got, esc_cases[i].want) != 0)
            fail_msg("%s:\n got:\n%s\nwant:\n%s", esc_cases[i].note, got, esc_cases[i].want);
        free(got);
    }
    /* escaped OpenMetrics output is plain OpenMetrics 1.0 */
    char *om = render_esc(s, 1, FY_NAMES_VALUES);
    fy_body_t omb;
    fy_parse_error_t omerr;
    if (fy_parse_openmetrics(om, strlen(om), fy_test_arena(strlen(om)), &omb, &omerr) != FY_OK)
        fail_msg("the escaped OpenMetrics scrape does not parse: %s", omerr.msg);
    free(om);
    /* allow-utf-8 output parses back, with the option, to the names that were pushed */
    char *q = render_esc(s, 0, FY_NAMES_ALLOW_UTF8);
    fy_body_t back;
    fy_parse_error_t perr;
    fy_arena_t *a = fy_test_arena(strlen(q));
    if (fy_parse_text_opts(q, strlen(q), a, &back, &perr, FY_PARSE_UTF8_NAMES) != FY_OK)
        fail_msg("the allow-utf-8 scrape does not parse: %s", perr.msg);
    assert_int_equal(back.nfamilies, 3);
    assert_true(fy_str_eq_mem(back.families[0].name, FY_STRLIT("my.metric")));
    assert_true(fy_str_eq_mem(back.families[0].series[0].labels[0].name, FY_STRLIT("dotted.key")));
    assert_true(fy_str_eq_mem(back.families[2].name, FY_STRLIT("s\"q")));
    free(q);
    /* the push time families carry the UTF-8 grouping label too */
    sbuf_t b = {0};
    sbuf_writer(&b, "", 0);
    assert_int_equal(fy_store_render_text_esc(s, NULL, FY_NAMES_ALLOW_UTF8, 100, sbuf_writer, &b), 0);
    assert_non_null(strstr(b.p, "push_time_seconds{\"dotted.key\"=\"kv\",instance=\"\",job=\"j\"} "));
    free(b.p);
    /* invalid UTF-8 in a name is refused even so */
    static const fy_label_t bad_l[] = {{{FY_STRLIT("ok")}, {FY_STRLIT("v")}, 0}};
    static fy_series_t bad_s = {bad_l, 1, 0, NULL, 1, 0, 0, 0, 0, {NULL, 0}};
    static const fy_family_t bad_f = {{"a\xff", 2}, {NULL, 0}, {NULL, 0}, FY_TYPE_GAUGE, 0, 0, 1, &bad_s};
    fy_body_t bad = {&bad_f, 1, 1};
    fy_store_label_t gk[1] = {{{FY_STRLIT("job")}, {FY_STRLIT("bad")}}};
    fy_store_err_t err;
    assert_int_equal(fy_store_push(s, gk, 1, FY_STORE_PUT, &bad, NOW, 0, &err), FY_SERR_INVALID);
    assert_non_null(strstr(err.msg, "invalid metric name \"a\\xff\""));
    fy_store_err_free(&err);
    fy_store_destroy(s);

    /* Without utf8_names the same body is refused by the store (a protobuf push can carry such names) */
    s = fy_store_create(NULL);
    assert_int_equal(push_utf8(s, "job=j", utf8_body, msg, sizeof(msg)), FY_SERR_INVALID);
    assert_non_null(strstr(msg, "invalid metric name \"my.metric\""));
    assert_int_equal(push_utf8(s, "job=j,dotted.key=kv", "a 1\n", msg, sizeof(msg)), FY_SERR_BADARG);
    fy_store_destroy(s);
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

/* ------------------------------------------------------------------------------------------------------------- */
/* /api/v1/metrics in parts (fy_store_json_next): the server sends them as they come, so their concatenation must be
 * the whole body byte for byte, whatever the budget, and a part must stay near its budget however large the group. */

/* A text body of nf families of ns series each; appended to a growing sbuf. */
static char *families_text(unsigned nf, unsigned ns)
{
    sbuf_t t = {0};
    sbuf_writer(&t, "", 0);
    char line[128];
    for (unsigned f = 0; f < nf; f++) {
        int n = snprintf(line, sizeof(line), "# HELP f%03u Family <%u> & \"co\".\n# TYPE f%03u %s\n", f, f, f,
                         f % 2 ? "gauge" : "counter");
        sbuf_writer(&t, line, (size_t)n);
        for (unsigned i = 0; i < ns; i++) {
            n = snprintf(line, sizeof(line), "f%03u{s=\"%u\",t=\"v\\n%u\"} %u.5\n", f, i, i % 7, i);
            sbuf_writer(&t, line, (size_t)n);
        }
    }
    return t.p;
}

/* Pushes text to a group of nl grouping labels: job=<job> and l0000..l<nl-2> with values of vlen bytes. */
static void push_wide(fy_store_t *s, const char *job, unsigned nl, size_t vlen, const char *text)
{
    assert_true(nl <= 10000);
    fy_store_label_t *gk = calloc(nl, sizeof(*gk));
    char *mem = calloc(nl, 8 + vlen);
    char *value = calloc(1, vlen + 1);
    memset(value, 'v', vlen);
    gk[0] = (fy_store_label_t){fy_str(FY_STRLIT("job")), fy_str(job, strlen(job))};
    for (unsigned i = 1; i < nl; i++) {
        char *nm = mem + (size_t)i * (8 + vlen);
        snprintf(nm, 8, "l%04u", i % 10000u); /* names are five bytes: nl is at most 10,000 */
        gk[i] = (fy_store_label_t){fy_str(nm, 5), fy_str(value, vlen)};
    }
    fy_body_t body;
    fy_parse_error_t perr;
    assert_int_equal(fy_test_parse(fy_parse_text, text, strlen(text), &body, &perr), FY_OK);
    assert_int_equal(fy_store_push(s, gk, nl, FY_STORE_PUT, &body, NOW, 0, NULL), FY_OK);
    free(gk);
    free(mem);
    free(value);
}

static fy_store_t *json_store(int shape)
{
    char hist[256];
    size_t hlen;
    if (shape == 1)
        return all_types_store(hist, &hlen);
    fy_store_t *s = fy_store_create(NULL);
    char gk[64], *text;
    switch (shape) {
    case 2: /* many small groups */
        text = families_text(3, 2);
        for (unsigned g = 0; g < 300; g++) {
            snprintf(gk, sizeof(gk), "job=j%03u,instance=i%u", g, g % 5);
            assert_int_equal(push_text(s, gk, FY_STORE_PUT, text, NOW + g, NULL, 0), FY_OK);
        }
        free(text);
        break;
    case 3: /* one group of 3 x 5,000 series, between two small ones */
        assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "m 1\n", NOW, NULL, 0), FY_OK);
        text = families_text(3, 5000);
        assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, text, NOW, NULL, 0), FY_OK);
        free(text);
        assert_int_equal(push_text(s, "job=z", FY_STORE_PUT, "m 2\n", NOW, NULL, 0), FY_OK);
        break;
    case 4: /* 2,000 grouping labels: every series carries them */
        text = families_text(2, 20);
        push_wide(s, "wide", 2000, 12, text);
        free(text);
        assert_int_equal(push_text(s, "job=b", FY_STORE_PUT, "m 1\n", NOW, NULL, 0), FY_OK);
        break;
    case 5: /* families sorted between the fixed members (families named like them are refused, B7) */
        assert_int_equal(push_text(s, "job=n", FY_STORE_PUT, "a 1\nlabel 2\nlast 3\npush_failure 4\npush_time_secondsx 5\nzzz 6\n",
                                   NOW, NULL, 0),
                         FY_OK);
        break;
    }
    return s;
}

static char *json_parts(fy_store_t *s, size_t budget, size_t *maxpart, size_t *nparts)
{
    sbuf_t out = {0};
    sbuf_writer(&out, "", 0);
    fy_store_json_t *c = fy_store_json_open(s);
    const char *p;
    size_t n;
    int more;
    *maxpart = *nparts = 0;
    do {
        more = fy_store_json_next(c, budget, &p, &n);
        sbuf_writer(&out, p, n);
        if (n > *maxpart)
            *maxpart = n;
        ++*nparts;
        if (more && n < budget)
            fail_msg("budget %zu: a part of %zu bytes that is not the last", budget, n);
    } while (more);
    fy_store_json_close(c);
    return out.p;
}

static void test_json_parts(void **state)
{
    (void)state;
    static const struct {
        int shape;
        size_t over; /* a part may exceed its budget by at most this much (one series and the closing of the rest) */
        const char *note;
    } t[] = {
        {0, 64, "empty store: one part"},
        {1, 512, "every type, a native histogram, escapes"},
        {2, 1024, "300 groups of 3 families"},
        {3, 512, "one family of 5,000 series spans many parts"},
        {4, 64 * 1024, "2,000 grouping labels: a series is ~40 KB and is never split"},
        {5, 512, "families sorted between the fixed members"},
    };
    static const size_t budgets[] = {1, 2, 3, 17, 100, 1000, 4096, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_store_t *s = json_store(t[i].shape);
        size_t maxpart, nparts;
        char *whole = json_parts(s, SIZE_MAX, &maxpart, &nparts);
        if (nparts != 1)
            fail_msg("case %zu (%s): %zu parts with an unlimited budget", i, t[i].note, nparts);
        char *ref = render_json(s); /* fy_store_render_json through a writer, 100-byte parts */
        if (strcmp(ref, whole) != 0)
            fail_msg("case %zu (%s): fy_store_render_json differs from one part", i, t[i].note);
        for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
            char *got = json_parts(s, budgets[k], &maxpart, &nparts);
            if (strcmp(got, whole) != 0) {
                size_t d = 0;
                while (got[d] == whole[d])
                    d++;
                fail_msg("case %zu (%s), budget %zu: differs at byte %zu: ...%.40s... vs ...%.40s...", i, t[i].note, budgets[k], d,
                         got + (d > 20 ? d - 20 : 0), whole + (d > 20 ? d - 20 : 0));
            }
            if (maxpart > budgets[k] + t[i].over)
                fail_msg("case %zu (%s), budget %zu: a part of %zu bytes", i, t[i].note, budgets[k], maxpart);
            free(got);
        }
        free(ref);
        free(whole);
        fy_store_destroy(s);
    }
}

/* JSON structure outside strings: brackets balance, and no comma is missing or doubled around them. */
static int json_well_formed(const char *j)
{
    char stack[64];
    int depth = 0, in_str = 0;
    char prev = 0; /* last significant character outside strings */
    for (const char *p = j; *p; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        char c = *p;
        if (c == '"') {
            if (prev == '"' || prev == '}' || prev == ']')
                return 0; /* a missing comma */
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (depth == 64 || prev == '}' || prev == ']' || prev == '"')
                return 0;
            stack[depth++] = c;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[--depth] != (c == '}' ? '{' : '[') || prev == ',')
                return 0;
        } else if (c == ',') {
            if (prev == ',' || prev == '{' || prev == '[')
                return 0;
        }
        prev = c;
    }
    return depth == 0 && !in_str;
}

/* A group larger than a part that is pushed to or deleted between its parts: the body stays valid JSON. */
static void test_json_parts_change(void **state)
{
    (void)state;
    static const struct {
        size_t after; /* bytes of the body rendered before the change */
        int change;   /* 0 none, 1 push a smaller version, 2 a larger one, 3 delete, 4 delete and re-push, 5 delete and
                       * push a smaller version at the same instant */
        const char *note;
    } t[] = {
        {0, 0, "no change"},
        {200000, 1, "pushed to mid-family: the family goes on from the same series index of the new version (here past its end)"},
        {200000, 2, "a new family appears after the one in progress"},
        {200000, 3, "deleted mid-family: the family and the group are closed"},
        {200000, 4, "deleted and pushed again: found again by name"},
        {10, 1, "changed before its first part: nothing is mixed"},
        {500000, 1, "changed after the family in progress is gone from the new version"},
        {200000, 5,
         "deleted and pushed again at the same instant with one family (a new group, perhaps at the same "
         "address and with the same version: the family count tells)"},
    };
    char *big = families_text(3, 5000), *small = families_text(1, 10), *larger = families_text(5, 3000);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_store_t *s = fy_store_create(NULL);
        assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "m 1\n", NOW, NULL, 0), FY_OK);
        assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, big, NOW, NULL, 0), FY_OK);
        assert_int_equal(push_text(s, "job=z", FY_STORE_PUT, "m 2\n", NOW, NULL, 0), FY_OK);
        sbuf_t out = {0};
        sbuf_writer(&out, "", 0);
        fy_store_json_t *c = fy_store_json_open(s);
        const char *p;
        size_t n;
        int more, changed = 0;
        do {
            more = fy_store_json_next(c, 4096, &p, &n);
            sbuf_writer(&out, p, n);
            if (!changed && out.n >= t[i].after) {
                changed = 1;
                if (t[i].change == 1)
                    assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, small, NOW + 1, NULL, 0), FY_OK);
                if (t[i].change == 2)
                    assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, larger, NOW + 1, NULL, 0), FY_OK);
                if (t[i].change >= 3)
                    assert_int_equal(delete_gk(s, "job=big"), FY_OK);
                if (t[i].change == 4)
                    assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, big, NOW + 2, NULL, 0), FY_OK);
                if (t[i].change == 5)
                    assert_int_equal(push_text(s, "job=big", FY_STORE_PUT, small, NOW, NULL, 0), FY_OK);
            }
        } while (more);
        fy_store_json_close(c);
        if (!json_well_formed(out.p))
            fail_msg("case %zu (%s): not well-formed: ...%.200s", i, t[i].note, out.p + (out.n > 200 ? out.n - 200 : 0));
        if (strstr(out.p, "{\"labels\":{\"job\":\"z\"}") == NULL)
            fail_msg("case %zu (%s): the group after the changed one is missing", i, t[i].note);
        free(out.p);
        fy_store_destroy(s);
    }
    free(big);
    free(small);
    free(larger);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_merge_text), cmocka_unit_test(test_protobuf),   cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_writer_stop),    cmocka_unit_test(test_json_parts), cmocka_unit_test(test_json_parts_change),
        cmocka_unit_test(test_utf8_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
