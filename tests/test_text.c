/*
 * test_text.c: fy_parse_text against the behaviour of expfmt's TextParser v0.39.0 (Pushgateway 1.5.1): what it
 * accepts (checked through a canonical dump of the resulting model), what it rejects (exact message and line), and
 * robustness (every prefix of every fixture, arena bounds). Scenarios come from expfmt's text_parse_test.go (in our
 * words) and the Pushgateway spec (section 6.3, section 14 items 1, 2, 7, 8, 11, transcripts E11, E12, E30 and the
 * corrections).
 */
#include "testutil.h"

#include "fy_num.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------- */
/* A canonical dump of a parsed body: one line per family ("name TYPE help=...") and per series ("  {labels} v=..
 * c=.. ts=.. [key:value ...]"); numbers formatted like Go's 'g'. */

static const char *type_names[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"};

typedef struct {
    char *s;
    size_t len, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_float(sbuf_t *b, double v)
{
    char f[FY_FLOAT_BUFSZ];
    sb_put(b, f, fy_format_float_g(v, f));
}

static void sb_uint(sbuf_t *b, uint64_t v)
{
    char f[32];
    sb_put(b, f, fy_format_uint64(v, f));
}

static void sb_unescaped(sbuf_t *b, fy_str_t s, fy_esc_t esc)
{
    char *tmp = malloc(s.len + 1);
    assert_non_null(tmp);
    size_t n = fy_unescape(s, esc, tmp);
    assert_int_equal(n, fy_unescaped_len(s, esc));
    sb_put(b, tmp, n);
    free(tmp);
}

static char *dump_body(const fy_body_t *body)
{
    sbuf_t b = {0};
    sb_str(&b, "");
    uint32_t total = 0;
    for (uint32_t i = 0; i < body->nfamilies; i++) {
        const fy_family_t *f = &body->families[i];
        assert_true(f->nseries > 0);
        sb_put(&b, f->name.ptr, f->name.len);
        sb_str(&b, " ");
        sb_str(&b, type_names[f->type]);
        if (f->has_help) {
            sb_str(&b, " help=");
            sb_unescaped(&b, f->help, (fy_esc_t)f->help_esc);
        }
        sb_str(&b, "\n");
        for (uint32_t j = 0; j < f->nseries; j++) {
            const fy_series_t *s = &f->series[j];
            sb_str(&b, "  {");
            for (uint32_t k = 0; k < s->nlabels; k++) {
                if (k)
                    sb_str(&b, ",");
                sb_put(&b, s->labels[k].name.ptr, s->labels[k].name.len);
                sb_str(&b, "=");
                sb_unescaped(&b, s->labels[k].value, (fy_esc_t)s->labels[k].value_esc);
            }
            sb_str(&b, "} v=");
            sb_float(&b, s->value);
            if (f->type == FY_TYPE_SUMMARY || f->type == FY_TYPE_HISTOGRAM || f->type == FY_TYPE_GAUGE_HISTOGRAM) {
                sb_str(&b, " c=");
                sb_uint(&b, s->count);
            }
            if (s->has_timestamp) {
                char t[32];
                snprintf(t, sizeof(t), " ts=%lld", (long long)s->timestamp_ms);
                sb_str(&b, t);
            }
            for (uint32_t k = 0; k < s->npoints; k++) {
                sb_str(&b, " ");
                sb_float(&b, s->points[k].key);
                sb_str(&b, ":");
                if (f->type == FY_TYPE_SUMMARY)
                    sb_float(&b, s->points[k].value);
                else
                    sb_uint(&b, s->points[k].count);
            }
            sb_str(&b, "\n");
            total++;
        }
    }
    assert_int_equal(total, body->nseries);
    return b.s;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Accepted inputs and the model they give. */

typedef struct {
    const char *in;
    const char *dump;
    const char *note;
} ok_case_t;

static const ok_case_t ok_cases[] = {
    {"", "", "empty body"},
    {"\n", "", "a lone newline"},
    {"   \t", "", "blanks without a newline at the end are fine: expfmt stops at start of line"},
    {"a 1\n  ", "a UNTYPED\n  {} v=1\n", "trailing blanks after the last newline"},
    {"\nminimal_metric 1.234\nanother_metric -3e3 103948\n# Even that:\nno_labels{} 3\n"
     "# HELP line for non-existing metric will be ignored.\n",
     "minimal_metric UNTYPED\n  {} v=1.234\nanother_metric UNTYPED\n  {} v=-3000 ts=103948\nno_labels UNTYPED\n  {} v=3\n",
     "expfmt: minimal metrics, a timestamp, empty braces, a HELP for a family that gets no samples"},
    {"\n# A normal comment.\n#\n# TYPE name counter\nname{labelname=\"val1\",basename=\"basevalue\"} NaN\n"
     "name {labelname=\"val2\",basename=\"base\\\"v\\\\al\\nue\"} 0.23 1234567890\n"
     "# HELP name two-line\\n doc  str\\\\ing\n"
     " # HELP  name2  \tdoc str\"ing 2\n"
     "  #    TYPE    name2 gauge\n"
     "name2{labelname=\"val2\"\t,basename   =   \"basevalue2\"\t\t} +Inf 54321\n"
     "name2{ labelname = \"val1\" , }-Inf\n",
     "name COUNTER help=two-line\n doc  str\\ing\n"
     "  {labelname=val1,basename=basevalue} v=NaN\n"
     "  {labelname=val2,basename=base\"v\\al\nue} v=0.23 ts=1234567890\n"
     "name2 GAUGE help=doc str\"ing 2\n"
     "  {labelname=val2,basename=basevalue2} v=+Inf ts=54321\n"
     "  {labelname=val1} v=-Inf\n",
     "expfmt: comments, escapes, blanks and tabs everywhere they are allowed, trailing comma, no blank after '}'"},
    {"\n# TYPE my_summary summary\nmy_summary{n1=\"val1\",quantile=\"0.5\"} 110\ndecoy -1 -2\n"
     "my_summary{n1=\"val1\",quantile=\"0.9\"} 140 1\nmy_summary_count{n1=\"val1\"} 42\n"
     "# Latest timestamp wins in case of a summary.\nmy_summary_sum{n1=\"val1\"} 4711 2\n"
     "fake_sum{n1=\"val1\"} 2001\n# TYPE another_summary summary\n"
     "another_summary_count{n2=\"val2\",n1=\"val1\"} 20\nmy_summary_count{n2=\"val2\",n1=\"val1\"} 5 5\n"
     "another_summary{n1=\"val1\",n2=\"val2\",quantile=\".3\"} -1.2\nmy_summary_sum{n1=\"val2\"} 08 15\n"
     "my_summary{n1=\"val3\", quantile=\"0.2\"} 4711\n"
     "  my_summary{n1=\"val1\",n2=\"val2\",quantile=\"-12.34\",} NaN\n"
     "# some\n# funny comments\n# HELP \n# HELP\n# HELP my_summary\n# HELP my_summary \n",
     "my_summary SUMMARY\n"
     "  {n1=val1} v=4711 c=42 ts=2 0.5:110 0.9:140\n"
     "  {n2=val2,n1=val1} v=0 c=5 ts=5 -12.34:NaN\n"
     "  {n1=val2} v=8 c=0 ts=15\n"
     "  {n1=val3} v=0 c=0 0.2:4711\n"
     "decoy UNTYPED\n  {} v=-1 ts=-2\n"
     "fake_sum UNTYPED\n  {n1=val1} v=2001\n"
     "another_summary SUMMARY\n  {n2=val2,n1=val1} v=0 c=20 0.3:-1.2\n",
     "expfmt: summaries grouped by label set in any order, _count/_sum attach, latest timestamp wins"},
    {"\n# HELP request_duration_microseconds The response latency.\n"
     "# TYPE request_duration_microseconds histogram\n"
     "request_duration_microseconds_bucket{le=\"100\"} 123\n"
     "request_duration_microseconds_bucket{le=\"120\"} 412\n"
     "request_duration_microseconds_bucket{le=\"144\"} 592\n"
     "request_duration_microseconds_bucket{le=\"172.8\"} 1524\n"
     "request_duration_microseconds_bucket{le=\"+Inf\"} 2693\n"
     "request_duration_microseconds_sum 1.7560473e+06\n"
     "request_duration_microseconds_count 2693\n",
     "request_duration_microseconds HISTOGRAM help=The response latency.\n"
     "  {} v=1.7560473e+06 c=2693 100:123 120:412 144:592 172.8:1524 +Inf:2693\n",
     "expfmt: a histogram"},
    /* Spec E11. */
    {"# HELP rq Request duration.\n# TYPE rq histogram\nrq_bucket{le=\"0.1\",path=\"/a\"} 1\n"
     "rq_bucket{le=\"1\",path=\"/a\"} 3\nrq_bucket{le=\"+Inf\",path=\"/a\"} 4\nrq_sum{path=\"/a\"} 2.5\n"
     "rq_count{path=\"/a\"} 4\nrq_bucket{le=\"0.5\",path=\"/b\"} 2\nrq_sum{path=\"/b\"} 0.7\nrq_count{path=\"/b\"} 2\n"
     "# TYPE sm summary\nsm{quantile=\"0.5\"} 1.5\nsm{quantile=\"0.9\"} NaN\nsm_sum 10\nsm_count 7\n"
     "# TYPE sm2 summary\nsm2_count 3\nsm2_sum 1e-7\nuntyped_sum 5\ng_inf +Inf\ng_ninf -Inf\ng_nan NaN\n"
     "g_big 1e21\ng_small 0.000001\ng_int 100000\ng_neg0 -0\nesc{v=\"a\\\"b\\\\c\\nd\"} 1\ng_inf2 infinity\n"
     "g_nan2 nan\ng_exp 1E+3\n",
     "rq HISTOGRAM help=Request duration.\n  {path=/a} v=2.5 c=4 0.1:1 1:3 +Inf:4\n  {path=/b} v=0.7 c=2 0.5:2\n"
     "sm SUMMARY\n  {} v=10 c=7 0.5:1.5 0.9:NaN\nsm2 SUMMARY\n  {} v=1e-07 c=3\nuntyped_sum UNTYPED\n  {} v=5\n"
     "g_inf UNTYPED\n  {} v=+Inf\ng_ninf UNTYPED\n  {} v=-Inf\ng_nan UNTYPED\n  {} v=NaN\ng_big UNTYPED\n  {} v=1e+21\n"
     "g_small UNTYPED\n  {} v=1e-06\ng_int UNTYPED\n  {} v=100000\ng_neg0 UNTYPED\n  {} v=-0\n"
     "esc UNTYPED\n  {v=a\"b\\c\nd} v=1\ng_inf2 UNTYPED\n  {} v=+Inf\ng_nan2 UNTYPED\n  {} v=NaN\n"
     "g_exp UNTYPED\n  {} v=1000\n",
     "spec E11: histogram, summary, special floats, escapes"},
    /* Spec E12. */
    {"# just a comment\n\n# TYPE\n# HELP\n# TYPE x4a\n# HELP x4b   \nx4 1\n", "x4 UNTYPED\n  {} v=1\n",
     "spec E12: HELP/TYPE without name or text are ignored; only x4 remains"},
    {"# TYPE onlytype counter\n", "", "spec E12/14.1: only a TYPE line counts as an empty body"},
    {"# HELP h some help\n# TYPE h gauge\n", "", "spec 14.1: HELP and TYPE without samples: no family"},
    {"sm_sum 1\n# TYPE sm summary\nsm_count 2\n", "sm_sum UNTYPED\n  {} v=1\nsm SUMMARY\n  {} v=0 c=2\n",
     "spec E12: sm_sum before the TYPE line is a family of its own, sm_count after it attaches (the store then "
     "reports the collision)"},
    {"lbl{a=\"b\",} 1\n", "lbl UNTYPED\n  {a=b} v=1\n", "spec E12: trailing comma"},
    {"x8{} 1\n", "x8 UNTYPED\n  {} v=1\n", "spec E12: empty braces"},
    {"# TYPE x12 COUNTER\nx12 1\n", "x12 COUNTER\n  {} v=1\n", "spec E12: type names are case-insensitive"},
    {"# TYPE x13 gauge_histogram\nx13 1\n", "x13 GAUGE_HISTOGRAM\n  {} v=0 c=0\n",
     "spec E12: gauge_histogram is accepted (treated as a histogram; a line without le keeps no value)"},
    {"# TYPE gh gauge_histogram\ngh_bucket{le=\"1\"} 2\ngh_bucket{le=\"+Inf\"} 3\ngh_sum 4\ngh_count 3\n",
     "gh GAUGE_HISTOGRAM\n  {} v=4 c=3 1:2 +Inf:3\n", "gauge_histogram groups like a histogram (divergence, documented)"},
    /* Spec 14.2: body labels are kept as given; the store overrides them. */
    {"m1{job=\"bodyjob\",instance=\"bodyinst\",a=\"1\"} 1\n", "m1 UNTYPED\n  {job=bodyjob,instance=bodyinst,a=1} v=1\n",
     "spec 14.2: labels in input order, job/instance untouched by the parser"},
    /* Spec 14.7: the parser only validates timestamps. */
    {"m6 1 1234\n", "m6 UNTYPED\n  {} v=1 ts=1234\n", "spec 14.7: timestamp kept for the store to reject"},
    {"ts_neg 1 -5\n", "ts_neg UNTYPED\n  {} v=1 ts=-5\n", "spec E30: negative timestamp parses"},
    {"x 1\t+5\n", "x UNTYPED\n  {} v=1 ts=5\n", "tab before the timestamp, sign allowed"},
    /* Spec 14.8. */
    {"  \t lead{a=\"b\"} 1\n", "lead UNTYPED\n  {a=b} v=1\n", "spec 14.8: leading blanks"},
    /* Spec 14.11 / E30 ordering input: the parser keeps input order. */
    {"b 1\nB 1\n_a 1\na 1\n:x 1\nzz{l=\"b\"} 1\nzz{l=\"B\"} 2\n",
     "b UNTYPED\n  {} v=1\nB UNTYPED\n  {} v=1\n_a UNTYPED\n  {} v=1\na UNTYPED\n  {} v=1\n:x UNTYPED\n  {} v=1\n"
     "zz UNTYPED\n  {l=b} v=1\n  {l=B} v=2\n",
     "spec E30: families and series in first-appearance order"},
    /* Spec E30. */
    {"nm:with:colons 1\n", "nm:with:colons UNTYPED\n  {} v=1\n", "spec E30: colons in metric names"},
    {"x{__r=\"x\"} 1\n", "x UNTYPED\n  {__r=x} v=1\n", "spec E30: __r passes the parser"},
    {"# HELP hh a\\\\b\\nc \"q\"\nhh 1\n", "hh UNTYPED help=a\\b\nc \"q\"\n  {} v=1\n", "spec E30: HELP escapes"},
    {"pl +1.5\nmi -.5\ndot 5.\nlead 007\n",
     "pl UNTYPED\n  {} v=1.5\nmi UNTYPED\n  {} v=-0.5\ndot UNTYPED\n  {} v=5\nlead UNTYPED\n  {} v=7\n",
     "spec E30: float spellings"},
    {"# TYPE st summary\nst_count 7.9\nst_sum 1\n# TYPE hh3 histogram\nhh3_bucket{le=\"1\"} 2.7\nhh3_count 3.2\n",
     "st SUMMARY\n  {} v=1 c=7\nhh3 HISTOGRAM\n  {} v=0 c=3 1:2\n", "spec E30: counts truncate to uint64"},
    {"# TYPE hb histogram\nhb_bucket{path=\"/c\"} 5\nhb_count 3\n", "hb HISTOGRAM\n  {path=/c} v=0 c=0\n  {} v=0 c=3\n",
     "spec E30: a bucket line without le creates the series but drops its value"},
    {"html{v=\"<a&b>\"} 1\nhtml{v=\"\xe2\x80\xa8\"} 2\nhtml{v=\"0\"} 3\n",
     "html UNTYPED\n  {v=<a&b>} v=1\n  {v=\xe2\x80\xa8} v=2\n  {v=0} v=3\n", "spec E30: UTF-8 label values"},
    /* expfmt details. */
    {"# TYPE c counter\n# HELP c_count not for c\nc 1\n", "c COUNTER\n  {} v=1\n",
     "HELP c_count on a counter names a family of its own (no samples: dropped)"},
    {"# TYPE x gauge\n# TYPE x_count summary\n", "", "TYPE for X_count where X is a gauge: a new family"},
    {"# TYPE s summary\n# HELP s_sum help via suffix\ns_sum 1\n", "s SUMMARY help=help via suffix\n  {} v=1 c=0\n",
     "a HELP for X_sum lands on summary X"},
    {"# TYPE s summary\ns{quantile=\"NaN\"} 1\ns{quantile=\"0.5\",quantile=\"0.7\"} 2\n", "s SUMMARY\n  {} v=0 c=0 0.7:2\n",
     "a NaN quantile is dropped; of two quantile labels the last counts"},
    {"# TYPE s summary\ns{le=\"x\"} 1\n", "s SUMMARY\n  {le=x} v=0 c=0\n", "le is an ordinary label on a summary"},
    {"# TYPE h histogram\nh{quantile=\"x\",le=\"2\"} 1\n", "h HISTOGRAM\n  {quantile=x} v=0 c=0 2:1\n",
     "quantile is an ordinary label on a histogram"},
    {"# TYPE h histogram\nh_bucket{le=\"1\"} -1\nh_bucket{le=\"2\"} NaN\nh_bucket{le=\"3\"} 1e20\nh_count -Inf\n",
     "h HISTOGRAM\n  {} v=0 c=9223372036854775808 1:18446744073709551615 2:9223372036854775808 "
     "3:9223372036854775808\n",
     "negative, NaN, huge and infinite counts convert as Go's uint64(float64) does on amd64"},
    {"# TYPE h histogram\nh_bucket{le=\"1\",a=\"x\"} 1\nother 5\nh_bucket{a=\"x\",le=\"2\"} 2\nh_bucket{a=\"y\",le=\"1\"} 3\n",
     "h HISTOGRAM\n  {a=x} v=0 c=0 1:1 2:2\n  {a=y} v=0 c=0 1:3\nother UNTYPED\n  {} v=5\n",
     "interleaved families and series are regrouped, input order kept within each"},
    {"# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"1\"} 2\nh_bucket{a=\"1\",le=\"2\"} 3\n",
     "h HISTOGRAM\n  {a=1} v=0 c=0 1:1 2:3\n  {a=2} v=0 c=0 1:2\n", "points of one series regrouped"},
    {"dup 1\ndup 2\n", "dup UNTYPED\n  {} v=1\n  {} v=2\n", "duplicate plain series stay duplicates"},
    {"# TYPE x counter\n# TYPE x_count gauge\nx_count 1\n", "x_count GAUGE\n  {} v=1\n",
     "suffixes only attach to summaries and histograms"},
    {"# TYPE x summary\nx_bucket 1\n", "x_bucket UNTYPED\n  {} v=1\n", "_bucket does not attach to a summary"},
    {"# TYPE x histogram\nx_count_sum 1\n", "x_count_sum UNTYPED\n  {} v=1\n", "only one suffix is stripped"},
    {"# TYPE _count summary\n_count 1\n", "_count SUMMARY\n  {} v=0 c=0\n", "a name that is only the suffix"},
    {"#HELP x h\nx 1\n", "x UNTYPED help=h\n  {} v=1\n", "no blank needed after '#'"},
    {"# help x h\nx 1\n", "x UNTYPED\n  {} v=1\n", "keywords are case-sensitive: a plain comment"},
    {"# HELP x trailing  \t\nx 1\n", "x UNTYPED help=trailing  \t\n  {} v=1\n", "HELP keeps trailing blanks"},
    {"# TYPE x coun\\ter\nx 1\n", "x COUNTER\n  {} v=1\n", "expfmt drops backslashes from the TYPE argument"},
    {"# TYPE x h\xc4\xb1stogram\nx_count 1\n", "x HISTOGRAM\n  {} v=0 c=1\n", "strings.ToUpper maps dotless i to I"},
    {"# TYPE x \xc5\xbfummary\nx_sum 1\n", "x SUMMARY\n  {} v=1 c=0\n", "strings.ToUpper maps long s to S"},
    {"x{a=\"1\"}2\n", "x UNTYPED\n  {a=1} v=2\n", "no blank needed between '}' and the value"},
    {"x{a=\"\"} 1\n", "x UNTYPED\n  {a=} v=1\n", "empty label value"},
    {"x{a=\"\\\\\"} 1\n", "x UNTYPED\n  {a=\\} v=1\n", "escaped backslash before the closing quote"},
    {"# TYPE x summary\nx{a=\"\\\"\"} 1\nx_count{a=\"\\\"\"} 2\n", "x SUMMARY\n  {a=\"} v=0 c=2\n",
     "escaped values group like their unescaped forms"},
    {"x 1 9223372036854775807\n", "x UNTYPED\n  {} v=1 ts=9223372036854775807\n", "largest timestamp"},
    {"x 1.8446744073709552e+19\ny 0.000123\nz 42\n",
     "x UNTYPED\n  {} v=1.8446744073709552e+19\ny UNTYPED\n  {} v=0.000123\nz UNTYPED\n  {} v=42\n", "realistic values"},
};

/* tag: how a failure names the parser ("" for the plain one) */
static void check_ok(fy_parse_fn parse, const ok_case_t *c, const char *tag)
{
    fy_body_t body;
    fy_parse_error_t err;
    int rc = fy_test_parse(parse, c->in, strlen(c->in), &body, &err);
    if (rc != FY_OK)
        fail_msg("%s%s: unexpected error %s: %s", c->note, tag, fy_perr_name(rc), err.msg);
    char *d = dump_body(&body);
    if (strcmp(d, c->dump) != 0)
        fail_msg("%s%s:\n--- want\n%s--- got\n%s", c->note, tag, c->dump, d);
    free(d);
}

static void test_accepts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++)
        check_ok(fy_parse_text, &ok_cases[i], "");
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Rejected inputs: the complete message. */

typedef struct {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *msg;
    const char *note;
} err_case_t;

#define P "text format parsing error in line "

static const err_case_t err_cases[] = {
    /* expfmt's text_parse_test.go. */
    {"\nbla 3.14\nblubber 42", 0, P "3: unexpected end of input stream", "expfmt: no final newline"},
    {"metric{label=\"\\t\"} 3.14", 0, P "1: invalid escape sequence '\\t'", "expfmt: bad escape in a label value"},
    {"\nmetric{label=\"new\nline\"} 3.14\n", 0, P "2: label value \"new\" contains unescaped new-line",
     "expfmt: raw newline in a label value"},
    {"metric{@=\"bla\"} 3.14", 0, P "1: invalid label name for metric \"metric\"", "expfmt: bad label name"},
    {"metric{__name__=\"bla\"} 3.14", 0, P "1: label name \"__name__\" is reserved", "expfmt: __name__"},
    {"metric{label+=\"bla\"} 3.14", 0, P "1: expected '=' after label name, found '+'", "expfmt: junk after name"},
    {"metric{label=bla} 3.14", 0, P "1: expected '\"' at start of label value, found 'b'", "expfmt: unquoted"},
    {"\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n", 0,
     P "3: expected float as value for 'quantile' label, got \"bla\"", "expfmt: bad quantile"},
    {"metric{label=\"bla\"+} 3.14", 0, P "1: unexpected end of label value \"bla\"", "expfmt: junk after value"},
    {"metric{label=\"bla\"} 3.14 2.72\n", 0, P "1: expected integer as timestamp, got \"2.72\"", "expfmt: float timestamp"},
    {"metric{label=\"bla\"} 3.14 2 3\n", 0, P "1: spurious string after timestamp: \" 3\"", "expfmt: extra field"},
    {"metric{label=\"bla\"} blubb\n", 0, P "1: expected float as value, got \"blubb\"", "expfmt: bad value"},
    {"\n# HELP metric one\n# HELP metric two\n", 0, P "3: second HELP line for metric name \"metric\"", "expfmt: two HELP lines"},
    {"\n# TYPE metric counter\n# TYPE metric untyped\n", 0,
     P "3: second TYPE line for metric name \"metric\", or TYPE reported after samples", "expfmt: two TYPE lines"},
    {"\nmetric 4.12\n# TYPE metric counter\n", 0,
     P "3: second TYPE line for metric name \"metric\", or TYPE reported after samples", "expfmt: TYPE after sample"},
    {"\n# TYPE metric bla\n", 0, P "2: unknown metric type \"bla\"", "expfmt: unknown type"},
    {"\n# TYPE met-ric\n", 0, P "2: invalid metric name in comment", "expfmt: bad name in TYPE"},
    {"@invalidmetric{label=\"bla\"} 3.14 2", 0, P "1: invalid metric name", "expfmt: bad metric name"},
    {"{label=\"bla\"} 3.14 2", 0, P "1: invalid metric name", "expfmt: no metric name (v0.39: no quoted names)"},
    {"\n# TYPE metric histogram\nmetric_bucket{le=\"bla\"} 3.14\n", 0, P "3: expected float as value for 'le' label, got \"bla\"",
     "expfmt: bad le"},
    {"metric{l=\"\xbd\"} 3.14\n", 0, P "1: invalid label value \"\\xbd\"", "expfmt: invalid UTF-8"},
    {"foo 1_2\n", 0, P "1: expected float as value, got \"1_2\"", "expfmt: underscore"},
    {"foo 0x1p-3\n", 0, P "1: expected float as value, got \"0x1p-3\"", "expfmt: hex float"},
    {"foo 0x1P-3\n", 0, P "1: expected float as value, got \"0x1P-3\"", "expfmt: hex float, P"},
    {"foo 0B1\n", 0, P "1: expected float as value, got \"0B1\"", "expfmt: binary"},
    {"foo 0O1\n", 0, P "1: expected float as value, got \"0O1\"", "expfmt: octal"},
    {"foo 0X1\n", 0, P "1: expected float as value, got \"0X1\"", "expfmt: hex int"},
    {"foo 0x1\n", 0, P "1: expected float as value, got \"0x1\"", "expfmt: hex int"},
    {"foo 0b1\n", 0, P "1: expected float as value, got \"0b1\"", "expfmt: binary"},
    {"foo 0o1\n", 0, P "1: expected float as value, got \"0o1\"", "expfmt: octal"},
    {"\n# TYPE metric histogram\nmetric_bucket{le=\"0x1p-3\"} 3.14\n", 0,
     P "3: expected float as value for 'le' label, got \"0x1p-3\"", "expfmt: hex le"},
    {"\n# TYPE metric summary\nmetric{quantile=\"0x1p-3\"} 3.14\n", 0,
     P "3: expected float as value for 'quantile' label, got \"0x1p-3\"", "expfmt: hex quantile"},
    {"metric{label=\"bla\",label=\"bla\"} 3.14", 0, P "1: duplicate label names for metric \"metric\"", "expfmt: duplicate label"},
    /* Spec 6.3, 14.7, 14.8, E11, E12, E30, corrections. */
    {"nonl 1", 0, P "1: unexpected end of input stream", "spec E12: missing final newline"},
    {"crlf 1\r\n", 0, P "1: expected float as value, got \"1\\r\"", "spec E12: CRLF"},
    {"  \t lead{a=\"b\"}   1   \n", 0, P "1: expected integer as timestamp, got \"\"", "spec E12: blanks after value"},
    {"# TYPE x9 counter\n# TYPE x9 gauge\nx9 1\n", 0,
     P "2: second TYPE line for metric name \"x9\", or TYPE reported after samples", "spec E12"},
    {"x10 1\n# TYPE x10 counter\n", 0, P "2: second TYPE line for metric name \"x10\", or TYPE reported after samples", "spec E12"},
    {"# TYPE x11 foo\nx11 1\n", 0, P "1: unknown metric type \"foo\"", "spec E12"},
    {"g_exp 1E+3\ng_hex 0x1A\n", 0, P "2: expected float as value, got \"0x1A\"", "spec E11: hex value"},
    {"u8{a=\"\xff\"} 1\n", 0, P "1: invalid label value \"\\xff\"", "spec E30: invalid UTF-8"},
    {"u8{a:b=\"x\"} 1\n", 0, P "1: expected '=' after label name, found ':'", "spec E30: colon in label name"},
    {"# HELP hh a\\\\b\\nc \\t\n", 0, P "1: invalid escape sequence '\\t'", "spec E30: bad HELP escape"},
    {"x{a=\"x\\ty\"} 1\n", 0, P "1: invalid escape sequence '\\t'", "spec E30: bad label escape"},
    {"x{__name__=\"x\"} 1\n", 0, P "1: label name \"__name__\" is reserved", "spec E30"},
    {"# HELP hh2 first\n# HELP hh2 second\nhh2 1\n", 0, P "2: second HELP line for metric name \"hh2\"", "spec E30"},
    {"big 1e500\n", 0, P "1: expected float as value, got \"1e500\"", "spec E30: out of range"},
    {"tsx 1 1.5\n", 0, P "1: expected integer as timestamp, got \"1.5\"", "spec 14.7"},
    {"tsy 1 5 x\n", 0, P "1: spurious string after timestamp: \" x\"", "spec E30"},
    {"x{a=\"1\"", 0, P "1: unexpected end of input stream", "correction 7, cut at EOF"},
    {"x{a=\"1\"\n", 0, P "1: unexpected end of label value \"1\"", "correction 7"},
    {"a-b 1\n", 0, P "1: expected float as value, got \"-b\"", "correction 7"},
    /* EOF everywhere (expfmt reports EOF where it runs out, whatever state it is in). */
    {"#", 0, P "1: unexpected end of input stream", "EOF after '#'"},
    {"# ", 0, P "1: unexpected end of input stream", "EOF in comment blanks"},
    {"# plain comment", 0, P "1: unexpected end of input stream", "EOF in a plain comment"},
    {"# HELP", 0, P "1: unexpected end of input stream", "EOF after HELP"},
    {"# HELP x", 0, P "1: unexpected end of input stream", "EOF after HELP name"},
    {"# HELP x help", 0, P "1: unexpected end of input stream", "EOF in HELP text"},
    {"# HELP x a\\", 0, P "1: unexpected end of input stream", "EOF after a backslash in HELP"},
    {"# TYPE x counter", 0, P "1: unexpected end of input stream", "EOF in TYPE"},
    {"# TYPE x 1-x", 0, P "1: unexpected end of input stream", "EOF decides before the type is checked"},
    {"x", 0, P "1: unexpected end of input stream", "EOF in name"},
    {"x{", 0, P "1: unexpected end of input stream", "EOF after '{'"},
    {"x{a", 0, P "1: unexpected end of input stream", "EOF in label name"},
    {"x{a=", 0, P "1: unexpected end of input stream", "EOF after '='"},
    {"x{a=\"\\", 0, P "1: unexpected end of input stream", "EOF after backslash"},
    {"x{a=\"1\"}", 0, P "1: unexpected end of input stream", "EOF after '}'"},
    {"x 1 ", 0, P "1: unexpected end of input stream", "EOF before timestamp"},
    {"x 1 2", 0, P "1: unexpected end of input stream", "EOF in timestamp"},
    {"x 1 2 ", 0, P "1: unexpected end of input stream", "EOF after timestamp"},
    {"x{@", 0, P "1: invalid label name for metric \"x\"", "an error before EOF wins"},
    {"x{a=\"\xff\"", 0, P "1: invalid label value \"\\xff\"", "the closing quote is read before EOF"},
    {"x{a+", 0, P "1: expected '=' after label name, found '+'", "error on the last byte"},
    {"a 1\n#", 0, P "2: unexpected end of input stream", "line numbers count the cut line"},
    /* More expfmt details. */
    {"x\n", 0, P "1: expected float as value, got \"\"", "no value"},
    {"x{}\n", 0, P "1: expected float as value, got \"\"", "no value after braces"},
    {"x 1}\n", 0, P "1: expected float as value, got \"1}\"", "value token ends only at a blank"},
    {"x{a=\"1\" b=\"2\"} 1\n", 0, P "1: unexpected end of label value \"1\"", "missing comma"},
    {"x{,} 1\n", 0, P "1: invalid label name for metric \"x\"", "lone comma"},
    {"x{a=\"1\",,} 1\n", 0, P "1: invalid label name for metric \"x\"", "double comma"},
    {"x{a} 1\n", 0, P "1: expected '=' after label name, found '}'", "label without value"},
    {"x{a=\"1\",a} 1\n", 0, P "1: expected '=' after label name, found '}'", "= is checked before duplicates"},
    {"x{__name__} 1\n", 0, P "1: label name \"__name__\" is reserved", "reserved is checked before '='"},
    {"x{a=\"\\\n", 0, P "1: invalid escape sequence '\\\n'", "backslash-newline in a label value"},
    {"x{a=\"\\\xff\"} 1\n", 0, P "1: invalid escape sequence '\\\xc3\xbf'", "%c writes rune(byte)"},
    {"x{a=\xff} 1\n", 0, P "1: expected '\"' at start of label value, found '\xc3\xbf'", "%q quotes rune(byte)"},
    {"x{a=\x85} 1\n", 0, P "1: expected '\"' at start of label value, found '\\u0085'", "C1 controls"},
    {"x{a\x01=\"\"} 1\n", 0, P "1: expected '=' after label name, found '\\x01'", "control byte"},
    {"x{a=\"\\\"\n", 0, P "1: label value \"\\\"\" contains unescaped new-line", "message shows the unescaped value"},
    {"x{a=\"a\\nb\"+} 1\n", 0, P "1: unexpected end of label value \"a\\nb\"", "unescaped in the message"},
    {"x 1 2\t\n", 0, P "1: spurious string after timestamp: \"\\t\"", "a tab after the timestamp"},
    {"x 1 2 \\x\n", 0, P "1: spurious string after timestamp: \" x\"", "backslashes are dropped there"},
    {"x 1 0x10\n", 0, P "1: expected integer as timestamp, got \"0x10\"", "timestamps are decimal"},
    {"x 1 9223372036854775808\n", 0, P "1: expected integer as timestamp, got \"9223372036854775808\"", "overflow"},
    {"# HELP x\\ y\n", 0, P "1: invalid metric name in comment", "backslash after a HELP name"},
    {"# HELP 1x y\n", 0, P "1: invalid metric name in comment", "HELP name starting with a digit"},
    {"# HELP x a\\\n", 0, P "1: invalid escape sequence '\\\n'", "HELP ending in a backslash"},
    {"# HELP x a\\\"\n", 0, P "1: invalid escape sequence '\\\"'", "\\\" is not a HELP escape"},
    {"# TYPE x counter \n", 0, P "1: unknown metric type \"counter \"", "TYPE keeps trailing blanks"},
    {"# TYPE s summary\n# TYPE s_sum gauge\n", 0, P "2: second TYPE line for metric name \"s\", or TYPE reported after samples",
     "TYPE for X_sum resolves to summary X"},
    {"x 1\n1x 2\n", 0, P "2: invalid metric name", "name starting with a digit"},
    {"x 1\n\xff 2\n", 0, P "2: invalid metric name", "non-ASCII name"},
    {"\"x\" 1\n", 0, P "1: invalid metric name", "quoted names are not v0.39 syntax"},
    {"x{\"a\"=\"1\"} 1\n", 0, P "1: invalid label name for metric \"x\"", "quoted label names neither"},
    {"# TYPE x summary\nx{quantile=\"1\\n\"} 1\n", 0, P "2: expected float as value for 'quantile' label, got \"1\\n\"",
     "quantile message shows the unescaped value"},
    {"# TYPE x histogram\nx{le=\"\"} 1\n", 0, P "2: expected float as value for 'le' label, got \"\"", "empty le"},
    {"x 1\n\n\n  x{a=\"1\",b=\"2\",a=\"3\"} 1\n", 0, P "4: duplicate label names for metric \"x\"", "empty lines count"},
};

static void check_rejects(fy_parse_fn parse, const err_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const err_case_t *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(parse, c->in, len, &body, &err);
        if (rc == FY_OK)
            fail_msg("%s: accepted, want: %s", c->note, c->msg);
        if (strcmp(err.msg, c->msg) != 0 || err.msg_len != strlen(c->msg))
            fail_msg("%s:\nwant: %s\ngot:  %s", c->note, c->msg, err.msg);
        assert_int_equal(err.code, rc);
        assert_true(err.offset <= len);
        assert_null(body.families);
        assert_int_equal(body.nfamilies, 0);
    }
}

static void test_rejects(void **state)
{
    (void)state;
    check_rejects(fy_parse_text, err_cases, sizeof(err_cases) / sizeof(err_cases[0]));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* FY_PARSE_UTF8_NAMES (--push.enable-utf8-names): the quoted names of newer expfmt versions. */

static int parse_utf8(const char *buf, size_t len, fy_arena_t *a, fy_body_t *body, fy_parse_error_t *err)
{
    return fy_parse_text_opts(buf, len, a, body, err, FY_PARSE_UTF8_NAMES);
}

static const ok_case_t utf8_ok_cases[] = {
    {"{\"my.metric\"} 1\n", "my.metric UNTYPED\n  {} v=1\n", "a quoted name alone in the braces"},
    {"{\"my.metric\",a=\"b\"} 1\n", "my.metric UNTYPED\n  {a=b} v=1\n", "the name first, then labels"},
    {"{ \"my.metric\" , \"x.y\"=\"b\" ,} 1\n", "my.metric UNTYPED\n  {x.y=b} v=1\n",
     "blanks around everything and a trailing comma, as for labels"},
    {"{plain,a=\"b\"} 1\n", "plain UNTYPED\n  {a=b} v=1\n", "a classic name may sit in the braces too"},
    {"\"my.metric\" 1\n", "my.metric UNTYPED\n  {} v=1\n", "a quoted name before the value (expfmt accepts it)"},
    {"\"my.metric\"{a=\"b\"} 1\n", "my.metric UNTYPED\n  {a=b} v=1\n", "a quoted name before the braces"},
    {"m{\"label.name\"=\"v\",\"ü\"=\"w\"} 1\n", "m UNTYPED\n  {label.name=v,ü=w} v=1\n", "quoted label names"},
    {"{\"a\\\"b\\\\c\\nd\"} 1\n", "a\"b\\c\nd UNTYPED\n  {} v=1\n", "escapes in a quoted name are undone"},
    {"# HELP \"my.metric\" some help\n# TYPE \"my.metric\" counter\n{\"my.metric\"} 1\n",
     "my.metric COUNTER help=some help\n  {} v=1\n", "HELP and TYPE name a quoted family"},
    {"# TYPE \"h.x\" histogram\n{\"h.x_bucket\",le=\"1\"} 2\n{\"h.x_bucket\",\"le\"=\"+Inf\"} 3\n{\"h.x_sum\"} 4\n"
     "{\"h.x_count\"} 3\n",
     "h.x HISTOGRAM\n  {} v=4 c=3 1:2 +Inf:3\n", "suffixes resolve to the quoted histogram; a quoted le is le"},
    {"{\"my.metric\"} 1\nmy_metric 2\n", "my.metric UNTYPED\n  {} v=1\nmy_metric UNTYPED\n  {} v=2\n",
     "a dotted name and its underscored look-alike are two families"},
    {"{\"abc\"} 1\nabc{x=\"1\"} 2\n", "abc UNTYPED\n  {} v=1\n  {x=1} v=2\n", "a quoted legacy name is that name"},
};

static const err_case_t utf8_err_cases[] = {
    {"{\"my.metric\"} 1", 0, P "1: unexpected end of input stream", "the last line needs its newline"},
    {"{\"\"} 1\n", 0, P "1: invalid metric name", "an empty quoted metric name"},
    {"m{\"\"=\"v\"} 1\n", 0, P "1: invalid label name for metric \"m\"", "an empty quoted label name"},
    {"{\"a\xff\"} 1\n", 0, P "1: metric name \"a\\xff\" is not valid UTF-8", "invalid UTF-8 in a metric name"},
    {"m{\"\xc3\"=\"v\"} 1\n", 0, P "1: label name \"\\xc3\" is not valid UTF-8", "invalid UTF-8 in a label name"},
    {"# TYPE \"\xc0\xaf\" counter\n", 0, P "1: metric name \"\\xc0\\xaf\" is not valid UTF-8", "an overlong encoding"},
    {"{\"ab\ncd\"} 1\n", 0, P "1: metric name \"ab\" contains unescaped new-line", "a raw newline in a quoted name"},
    {"{\"a\\tb\"} 1\n", 0, P "1: invalid escape sequence '\\t'", "only \\\\ \\\" \\n are escapes"},
    {"{\"a\",\"b\"} 1\n", 0, P "1: multiple metric names for metric \"a\"", "two names in one label set"},
    {"{a=\"b\"} 1\n", 0, P "1: a label set that starts a line must start with the metric name, found label \"a\"",
     "a label set without the name first"},
    {"{\"a.b\"=\"c\"} 1\n", 0, P "1: a label set that starts a line must start with the metric name, found label \"a.b\"",
     "a quoted label first"},
    {"{\"a\" x} 1\n", 0, P "1: unexpected end of metric name 'x'", "the name is followed by neither ',' nor '}'"},
    {"{} 1\n", 0, P "1: invalid metric name", "empty braces have no name"},
    {"m{\"a\"} 1\n", 0, P "1: expected '=' after label name, found '}'", "a quoted label without a value"},
    {"{\"a\"}{b=\"c\"} 1\n", 0, P "1: expected float as value, got \"{b=\\\"c\\\"}\"", "one label set per line"},
    {"# HELP \"a\"x y\n", 0, P "1: invalid metric name in comment", "a quoted name in a comment needs a blank after it"},
    {"m{\"__name__\"=\"x\"} 1\n", 0, P "1: label name \"__name__\" is reserved", "quoting does not unreserve __name__"},
    {"m{\"a\"=\"1\",a=\"2\"} 1\n", 0, P "1: duplicate label names for metric \"m\"", "a quoted and a plain a are one name"},
};

static void test_utf8_accepts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(utf8_ok_cases) / sizeof(utf8_ok_cases[0]); i++) {
        const ok_case_t *c = &utf8_ok_cases[i];
        check_ok(parse_utf8, c, "");
        /* Without the option every one of them is refused, as Pushgateway 1.5.1 (expfmt v0.39.0) refuses it. */
        fy_body_t body;
        fy_parse_error_t err;
        if (fy_test_parse(fy_parse_text, c->in, strlen(c->in), &body, &err) == FY_OK)
            fail_msg("%s: accepted without FY_PARSE_UTF8_NAMES", c->note);
    }
    /* The option changes nothing for classic inputs: every accepted case gives the same model. */
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++)
        check_ok(parse_utf8, &ok_cases[i], " (utf8)");
}

static void test_utf8_rejects(void **state)
{
    (void)state;
    check_rejects(parse_utf8, utf8_err_cases, sizeof(utf8_err_cases) / sizeof(utf8_err_cases[0]));
}

/* Names with escapes are copied into the arena: every prefix of a body full of them still parses within the hint
 * (or fails properly), and the copies are what the model points at. */
static void test_utf8_arena(void **state)
{
    (void)state;
    static const char in[] =
        "# HELP \"a\\\"b\" h\n{\"a\\\"b\",\"c\\\\d\"=\"1\",\"e\\nf\"=\"2\"} 1\n{\"a\\\"b\",\"c\\\\d\"=\"3\"} 2\n";
    for (size_t n = 0; n <= sizeof(in) - 1; n++) {
        size_t hint = fy_parse_arena_hint(n);
        char *mem = malloc(hint);
        assert_non_null(mem);
        fy_arena_t a;
        fy_body_t body;
        fy_parse_error_t err;
        fy_arena_init(&a, mem, hint);
        int rc = fy_parse_text_opts(fy_guarded(in, n), n, &a, &body, &err, FY_PARSE_UTF8_NAMES);
        assert_true(rc == FY_OK || rc == FY_PERR_EOF_IN_LINE);
        assert_true(a.used <= hint);
        if (n == sizeof(in) - 1) {
            assert_int_equal(rc, FY_OK);
            char *d = dump_body(&body);
            assert_string_equal(d, "a\"b UNTYPED help=h\n  {c\\d=1,e\nf=2} v=1\n  {c\\d=3} v=2\n");
            free(d);
        }
        free(mem);
    }
}

/* The UTF-8 fixture (also a fuzz seed): the whole model, and every prefix OK (only after a newline) or a proper
 * error; without the option its first quoted name is refused. */
static void test_utf8_fixture(void **state)
{
    (void)state;
    size_t len;
    char *data = fy_fixture("text/utf8-names.txt", &len);
    fy_body_t body;
    fy_parse_error_t err;
    assert_int_equal(fy_test_parse(parse_utf8, data, len, &body, &err), FY_OK);
    char *d = dump_body(&body);
    assert_string_equal(d, "my.metric COUNTER help=A dotted counter.\n  {label.name=v,plain=p} v=1\n  {label.name=w} v=2\n"
                           "other.metric UNTYPED\n  {ü=x} v=3\nplain_in_braces UNTYPED\n  {} v=4\nm UNTYPED\n  {a\"b\\c\nd=1} v=5\n"
                           "h.x HISTOGRAM\n  {} v=3 c=2 1:1 +Inf:2\ns.x SUMMARY\n  {} v=2 c=3 0.5:1\n");
    free(d);
    for (size_t n = 0; n < len; n++) {
        int rc = fy_test_parse(parse_utf8, data, n, &body, &err);
        if (rc == FY_OK) {
            assert_true(n == 0 || data[n - 1] == '\n');
        } else {
            assert_true(rc < 0 && rc != FY_PERR_NOMEM && rc != FY_PERR_INTERNAL);
            assert_int_equal(strncmp(err.msg, "text format parsing error in line ", 34), 0);
        }
    }
    assert_int_equal(fy_test_parse(fy_parse_text, data, len, &body, &err), FY_PERR_INVALID_NAME_COMMENT);
    free(data);
}

/* A NUL byte: Go's %c writes it into the message; ours keeps it (msg_len counts it). */
static void test_nul_in_escape(void **state)
{
    (void)state;
    static const char in[] = "x{a=\"\\\0\"} 1\n";
    fy_body_t body;
    fy_parse_error_t err;
    int rc = fy_test_parse(fy_parse_text, in, sizeof(in) - 1, &body, &err);
    assert_int_equal(rc, FY_PERR_INVALID_ESCAPE);
    static const char want[] = P "1: invalid escape sequence '\\\0'";
    assert_int_equal(err.msg_len, sizeof(want) - 1);
    assert_memory_equal(err.msg, want, sizeof(want) - 1);
}

/* Long label values are cut in the message, never overflow it. */
static void test_long_values_in_messages(void **state)
{
    (void)state;
    size_t n = 100000;
    char *in = malloc(n + 32);
    assert_non_null(in);
    memcpy(in, "x{a=\"", 5);
    memset(in + 5, 'v', n);
    memcpy(in + 5 + n, "\"+} 1\n", 6);
    fy_body_t body;
    fy_parse_error_t err;
    int rc = fy_test_parse(fy_parse_text, in, n + 11, &body, &err);
    assert_int_equal(rc, FY_PERR_EXPECTED_LABEL_END);
    assert_true(err.msg_len < FY_ERRMSG_MAX);
    assert_int_equal(strlen(err.msg), err.msg_len);
    assert_non_null(strstr(err.msg, "...\""));
    free(in);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Robustness. */

static const char *fixtures[] = {"text/push-646.txt", "text/node-exporter.txt", "text/mixed.txt"};

/* Every prefix of every fixture parses or fails cleanly (guard page right after the prefix). */
static void test_fixture_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        size_t len;
        char *data = fy_fixture(fixtures[i], &len);
        fy_body_t body;
        fy_parse_error_t err;
        assert_int_equal(fy_test_parse(fy_parse_text, data, len, &body, &err), FY_OK);
        assert_true(body.nfamilies > 0);
        char *full = dump_body(&body);
        for (size_t n = 0; n < len; n++) {
            int rc = fy_test_parse(fy_parse_text, data, n, &body, &err);
            if (rc == FY_OK) {
                /* Only a cut right after a newline (or after blanks following one) can succeed. */
                size_t k = n;
                while (k > 0 && (data[k - 1] == ' ' || data[k - 1] == '\t'))
                    k--;
                assert_true(k == 0 || data[k - 1] == '\n');
                free(dump_body(&body));
            } else {
                assert_true(rc < 0 && rc != FY_PERR_NOMEM && rc != FY_PERR_INTERNAL);
                assert_int_equal(strncmp(err.msg, "text format parsing error in line ", 34), 0);
            }
        }
        free(full);
        free(data);
    }
}

/* The arena hint always suffices, and a too-small arena gives NOMEM, never a wrong answer or a crash. */
static void test_arena(void **state)
{
    (void)state;
    size_t len;
    char *data = fy_fixture("text/push-646.txt", &len);
    const char *in = fy_guarded(data, len);
    size_t hint = fy_parse_arena_hint(len);
    char *mem = malloc(hint);
    assert_non_null(mem);
    fy_arena_t a;
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_init(&a, mem, hint);
    assert_int_equal(fy_parse_text(in, len, &a, &body, &err), FY_OK);
    assert_true(a.used <= hint);
    char *want = dump_body(&body);
    size_t used = a.used;
    for (size_t cap = 0; cap < used; cap += 97) {
        fy_arena_init(&a, mem, cap);
        int rc = fy_parse_text(in, len, &a, &body, &err);
        assert_int_equal(rc, FY_PERR_NOMEM);
        assert_int_equal(err.code, FY_PERR_NOMEM);
        assert_null(body.families);
    }
    fy_arena_init(&a, mem, used);
    assert_int_equal(fy_parse_text(in, len, &a, &body, &err), FY_OK);
    char *got = dump_body(&body);
    assert_string_equal(want, got);
    free(got);
    free(want);
    free(mem);
    free(data);
}

/* Worst cases for arena use and time: minimal lines, many families, many labels, many interleaved series. */
static void check_within_hint(const char *in, size_t len, int want_rc)
{
    size_t hint = fy_parse_arena_hint(len);
    char *mem = malloc(hint);
    assert_non_null(mem);
    fy_arena_t a;
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_init(&a, mem, hint);
    int rc = fy_parse_text(fy_guarded(in, len), len, &a, &body, &err);
    if (rc != want_rc)
        fail_msg("rc %s (%s)", fy_perr_name(rc), err.msg);
    assert_true(a.used <= hint);
    free(mem);
}

static void test_worst_cases(void **state)
{
    (void)state;
    size_t cap = 4 << 20, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);

    /* "a 1\n" x many, one family per line. */
    n = 0;
    for (unsigned i = 0; n + 32 < cap; i++)
        n += (size_t)snprintf(b + n, cap - n, "%x 1\n", i | 0xA0000000u);
    check_within_hint(b, n, FY_OK);
    n = 0;
    while (n + 4 < cap) {
        memcpy(b + n, "a 1\n", 4);
        n += 4;
    }
    check_within_hint(b, n, FY_OK);

    /* One line with very many labels (duplicate detection must stay linear). */
    n = 0;
    n += (size_t)snprintf(b + n, cap - n, "# TYPE m summary\nm{");
    for (unsigned i = 0; n + 40 < cap; i++)
        n += (size_t)snprintf(b + n, cap - n, "l%u=\"\",", i);
    n += (size_t)snprintf(b + n, cap - n, "} 1\n");
    check_within_hint(b, n, FY_OK);
    /* The same label set twice in different orders, then a duplicate at the very end. */
    n = 0;
    n += (size_t)snprintf(b + n, cap - n, "# TYPE m summary\nm{");
    for (unsigned i = 0; i < 5000; i++)
        n += (size_t)snprintf(b + n, cap - n, "l%u=\"%u\",", i, i);
    n += (size_t)snprintf(b + n, cap - n, "quantile=\"0.5\"} 1\nm_count{");
    for (unsigned i = 5000; i-- > 0;)
        n += (size_t)snprintf(b + n, cap - n, "l%u=\"%u\",", i, i);
    n += (size_t)snprintf(b + n, cap - n, "} 7\n");
    {
        fy_body_t body;
        fy_parse_error_t err;
        assert_int_equal(fy_test_parse(fy_parse_text, b, n, &body, &err), FY_OK);
        assert_int_equal(body.nfamilies, 1);
        assert_int_equal(body.nseries, 1);
        assert_int_equal(body.families[0].series[0].count, 7);
        assert_int_equal(body.families[0].series[0].nlabels, 5000);
    }
    n += (size_t)snprintf(b + n, cap - n, "m{l1=\"1\",");
    for (unsigned i = 2; i < 40; i++)
        n += (size_t)snprintf(b + n, cap - n, "x%u=\"%u\",", i, i);
    n += (size_t)snprintf(b + n, cap - n, "l1=\"1\"} 1\n");
    check_within_hint(b, n, FY_PERR_DUPLICATE_LABEL);

    /* Many distinct histogram series, interleaved with untyped lines (regrouping, series table growth). */
    n = 0;
    n += (size_t)snprintf(b + n, cap - n, "# TYPE h histogram\n");
    for (unsigned i = 0; n + 64 < cap; i++)
        n += (size_t)snprintf(b + n, cap - n, "h_bucket{a=\"%u\",le=\"1\"} 1\nu 2\n", i % 50000);
    check_within_hint(b, n, FY_OK);

    /* Minimal point lines. */
    n = 0;
    n += (size_t)snprintf(b + n, cap - n, "# TYPE a histogram\n");
    while (n + 12 < cap) {
        memcpy(b + n, "a{le=\"1\"} 1\n", 12);
        n += 12;
    }
    check_within_hint(b, n, FY_OK);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),          cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_nul_in_escape),    cmocka_unit_test(test_long_values_in_messages),
        cmocka_unit_test(test_fixture_prefixes), cmocka_unit_test(test_arena),
        cmocka_unit_test(test_worst_cases),      cmocka_unit_test(test_utf8_accepts),
        cmocka_unit_test(test_utf8_rejects),     cmocka_unit_test(test_utf8_arena),
        cmocka_unit_test(test_utf8_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
