/*
 * test_openmetrics.c: the OpenMetrics 1.0 text parser as a specification: tables of accepted inputs with the model
 * they produce (rendered as text, see render()), rejected inputs with their exact message, every prefix of the
 * fixtures, arena exhaustion, and FY_ESC_OM unescaping.
 */
#include "testutil.h"
#include "fy_num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------- */
/* The model as text: one line per family ("name type [help=...] [unit=...]"), then one line per series
 * ("  {labels} value [count=N] [points] [@ts]"), with strings unescaped. */

static char out[1 << 16];
static size_t outn;

static void put(const char *s, size_t n)
{
    assert_true(outn + n < sizeof(out));
    memcpy(out + outn, s, n);
    outn += n;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void put_str(fy_str_t s, int esc)
{
    char *tmp = malloc(s.len + 1);
    assert_non_null(tmp);
    size_t n = fy_unescape(s, (fy_esc_t)esc, tmp);
    assert_int_equal(n, fy_unescaped_len(s, (fy_esc_t)esc));
    put(tmp, n);
    free(tmp);
}

static void put_float(double v)
{
    char b[FY_FLOAT_BUFSZ];
    put(b, fy_format_float_text(v, b));
}

static const char *type_name(int t)
{
    static const char *const names[] = {"counter", "gauge", "summary", "untyped", "histogram", "gaugehistogram"};
    return names[t];
}

static const char *render(const fy_body_t *b)
{
    char tmp[64];
    uint32_t total = 0;
    outn = 0;
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        put_str(f->name, FY_ESC_NONE);
        puts_(" ");
        puts_(type_name(f->type));
        if (f->has_help) {
            puts_(" help=");
            put_str(f->help, f->help_esc);
        }
        if (f->unit.len) {
            puts_(" unit=");
            put_str(f->unit, FY_ESC_NONE);
        }
        puts_("\n");
        total += f->nseries;
        for (uint32_t j = 0; j < f->nseries; j++) {
            const fy_series_t *s = &f->series[j];
            assert_int_equal(s->pb_histogram.len, 0);
            puts_("  {");
            for (uint32_t k = 0; k < s->nlabels; k++) {
                if (k)
                    puts_(",");
                put_str(s->labels[k].name, FY_ESC_NONE);
                puts_("=");
                put_str(s->labels[k].value, s->labels[k].value_esc);
            }
            puts_("} ");
            put_float(s->value);
            if (f->type == FY_TYPE_SUMMARY || f->type == FY_TYPE_HISTOGRAM || f->type == FY_TYPE_GAUGE_HISTOGRAM) {
                snprintf(tmp, sizeof(tmp), " count=%llu", (unsigned long long)s->count);
                puts_(tmp);
            }
            for (uint32_t k = 0; k < s->npoints; k++) {
                puts_(k ? "," : " [");
                put_float(s->points[k].key);
                puts_(":");
                if (f->type == FY_TYPE_SUMMARY) {
                    put_float(s->points[k].value);
                } else {
                    snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)s->points[k].count);
                    puts_(tmp);
                }
            }
            if (s->npoints)
                puts_("]");
            if (s->has_timestamp) {
                snprintf(tmp, sizeof(tmp), " @%lld", (long long)s->timestamp_ms);
                puts_(tmp);
            }
            puts_("\n");
        }
    }
    assert_int_equal(total, b->nseries);
    out[outn] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    const char *in;
    const char *want; /* render() of the body */
    const char *note;
} ok_case_t;

#define E "# EOF\n"

static const ok_case_t ok_cases[] = {
    {"# EOF", "", "empty exposition, no final newline"},
    {E, "", "empty exposition"},
    {"# TYPE a gauge\n" E, "", "a family without samples is dropped"},
    {"a 1\n" E, "a untyped\n  {} 1\n", "no TYPE: unknown, which the model calls untyped"},
    {"a{} 1\n" E, "a untyped\n  {} 1\n", "empty braces"},
    {"# TYPE a unknown\na 1\n" E, "a untyped\n  {} 1\n", "explicit unknown"},
    {"# TYPE a gauge\n# UNIT a \n# HELP a \na{x=\"1\",y=\"2\",} -1.5e3\n" E, "a gauge\n  {x=1,y=2} -1500\n",
     "empty UNIT and HELP count as absent; a trailing comma is accepted (as Prometheus does)"},
    {"# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n# HELP a_seconds h\\\\i \\\"x\\\" \\n \\t \"q\"\na_seconds 1\n" E,
     "a_seconds gauge help=h\\i \"x\" \n \\t \"q\" unit=seconds\n  {} 1\n",
     "UNIT suffix; HELP escapes \\\\ \\\" \\n, an undefined escape keeps its backslash, a bare quote is accepted"},
    {"# HELP a x\n# UNIT a_b b\n" E, "", "HELP for one family, then a new family by metadata"},
    {"a 1 1520879607.789\n" E, "a untyped\n  {} 1 @1520879607789\n", "float timestamp in seconds"},
    {"a 1 -1.5\n" E, "a untyped\n  {} 1 @-1500\n", "negative timestamp, truncated toward zero"},
    {"a 1 0.0019\n" E, "a untyped\n  {} 1 @1\n", "sub-millisecond part is dropped"},
    {"a 1 1e3\n" E, "a untyped\n  {} 1 @1000000\n", "exponent in a timestamp"},
    {"a +Inf\nb -inf\nc NaN\nd infinity\n" E,
     "a untyped\n  {} +Inf\nb untyped\n  {} -Inf\nc untyped\n  {} NaN\n"
     "d untyped\n  {} +Inf\n",
     "special values, case-insensitive"},
    {"a 0042\nb .5\nc 1.\n" E, "a untyped\n  {} 42\nb untyped\n  {} 0.5\nc untyped\n  {} 1\n", "number forms"},
    {"a{b=\"\\a\\\\\\\"\\n\"} 1\n" E, "a untyped\n  {b=\\a\\\"\n} 1\n", "label value escapes"},
    {"a{b=\"\xc3\xa9\x01\"} 1\n" E, "a untyped\n  {b=\xc3\xa9\x01} 1\n", "UTF-8 and control bytes in values"},
    {"a{b=\"1\",c=\"2\"} 1\na{c=\"2\",b=\"2\"} 1\n" E, "a untyped\n  {b=1,c=2} 1\n  {c=2,b=2} 1\n", "series differ by value"},
    {"# TYPE c counter\n# HELP c help\nc_total{a=\"1\"} 3 # {id=\"x\"} 1 1.5\nc_created{a=\"1\"} 1.5e9\n"
     "c_total{a=\"2\"} 0\n" E,
     "c_total counter help=help\n  {a=1} 3\n  {a=2} 0\nc_created gauge\n  {a=1} 1.5e+09\n",
     "counter: family <name>_total, _created split into a gauge family right after"},
    {"# TYPE c counter\nc_created 5\nc_total 1\n" E, "c_total counter\n  {} 1\nc_created gauge\n  {} 5\n",
     "_created may precede _total"},
    {"# TYPE c counter\nc_total 1 5\nc_created 2 5\n" E, "c_total counter\n  {} 1 @5000\nc_created gauge\n  {} 2 @5000\n",
     "timestamps carry over to the _created family"},
    {"# TYPE g gauge\ng 1\n# TYPE g_total gauge\ng_total 1\n" E, "g gauge\n  {} 1\ng_total gauge\n  {} 1\n",
     "a gauge named like a counter's sample is its own family"},
    {"# TYPE i info\ni_info{v=\"1\"} 1.0\n" E, "i_info gauge\n  {v=1} 1\n", "info: gauge <name>_info"},
    {"# TYPE s stateset\ns{s=\"a\"} 1\ns{s=\"b\"} 0\n" E, "s gauge\n  {s=a} 1\n  {s=b} 0\n", "stateset: one series per state"},
    {"# TYPE h histogram\n# UNIT h_s s\n" E, "", "UNIT for another family than h"},
    {"# TYPE h histogram\nh_bucket{le=\"1\"} 1 # {} 0.5\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\nh_created 7\n"
     "h_bucket{a=\"x\",le=\"+Inf\"} 0\n" E,
     "h histogram\n  {} 3 count=2 [1:1,+Inf:2]\n  {a=x} 0 count=0 [+Inf:0]\nh_created gauge\n  {} 7\n",
     "histogram: count and sum, exemplar on a bucket, _created family; count from +Inf without _count"},
    {"# TYPE h histogram\nh_count 2\nh_sum 3\nh_bucket{le=\"+Inf\"} 2\n" E, "h histogram\n  {} 3 count=2 [+Inf:2]\n",
     "sample kinds in any order within a series"},
    {"# TYPE h histogram\nh_bucket{le=\"-1\"} 0\nh_bucket{le=\"+Inf\"} 2\n" E, "h histogram\n  {} 0 count=2 [-1:0,+Inf:2]\n",
     "negative buckets without a sum"},
    {"# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1 # {} 1\ng_bucket{le=\"+Inf\"} 3.0\ng_gcount 3\ng_gsum -2\n" E,
     "g gaugehistogram\n  {} -2 count=3 [1:1,+Inf:3]\n", "gaugehistogram: _gcount, _gsum (may be negative)"},
    {"# TYPE s summary\ns{quantile=\"0.9\",a=\"1\"} NaN\ns{a=\"1\",quantile=\"0.5\"} 2\ns_sum{a=\"1\"} 5\ns_count{a=\"1\"} 3\n"
     "s_created{a=\"1\"} 9\ns_count 0\n" E,
     "s summary\n  {a=1} 5 count=3 [0.9:NaN,0.5:2]\n  {} 0 count=0\ns_created gauge\n  {a=1} 9\n",
     "summary: quantiles in input order, label order does not matter within a series"},
    {"# TYPE s summary\ns{quantile=\"0\"} 1\ns{quantile=\"1\"} 1\n" E, "s summary\n  {} 0 count=0 [0:1,1:1]\n",
     "quantile bounds are inclusive"},
    {"a_total 1\na_created 2\n" E, "a_total untyped\n  {} 1\na_created untyped\n  {} 2\n", "without TYPE, suffixes mean nothing"},
    {"# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_created 1\ng_count 1\n" E,
     "g gaugehistogram\n  {} 0 count=1 [+Inf:1]\ng_created untyped\n  {} 1\ng_count untyped\n  {} 1\n",
     "gaugehistogram has no _created or _count samples: such names start new unknown families"},
    {"# TYPE c counter\nc_total 1 # "
     "{a="
     "\"012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012"
     "3456\"} 1\n" E,
     "c_total counter\n  {} 1\n", "exemplar labels of exactly 128 characters"},
    {"# TYPE c counter\nc_total 1 # "
     "{a="
     "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
     "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
     "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
     "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
     "\xa9\xc3\xa9\xc3\xa9\\n\"} 1\n" E,
     "c_total counter\n  {} 1\n", "exemplar length counts code points of the unescaped value: 1 + 126 + 1"},
    {"a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\n" E, "a untyped\n  {x=1} 1\n  {x=2} 1\nb untyped\n  {} 1\n", "two families"},
};

static void test_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const ok_case_t *c = &ok_cases[i];
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(fy_parse_openmetrics, c->in, strlen(c->in), &body, &err);
        if (rc != FY_OK)
            fail_msg("case %zu (%s): rejected: %s", i, c->note, err.msg);
        const char *got = render(&body);
        if (strcmp(got, c->want) != 0)
            fail_msg("case %zu (%s):\n got: %s\nwant: %s", i, c->note, got, c->want);
    }
}

typedef struct {
    const char *in;
    const char *msg; /* exact message */
    const char *note;
} bad_case_t;

#define P "openmetrics parsing error in line "

static const bad_case_t bad_cases[] = {
    {"", P "1: data does not end with # EOF", "empty input"},
    {"a 1\n", P "2: data does not end with # EOF", "no EOF"},
    {"a 1", P "1: data does not end with # EOF", "truncated line"},
    {"# EOF\n\n", P "2: unexpected data after # EOF", "a blank line after EOF"},
    {"# EOF\na 1\n", P "2: unexpected data after # EOF", "samples after EOF"},
    {"# EOF ", P "1: data does not end with # EOF", "trailing space after EOF"},
    {"\n" E, P "1: expected a metric name or '#' at the start of a line, got \"\"", "blank line"},
    {"a 1\r\n" E, P "1: invalid value \"1\\r\" for \"a\"", "CR line ending"},
    {"# foo\n" E, P "1: invalid comment line \"# foo\": only # TYPE, # HELP, # UNIT and # EOF are allowed", "free comment"},
    {"#TYPE a gauge\n" E, P "1: invalid comment line \"#TYPE a gauge\": only # TYPE, # HELP, # UNIT and # EOF are allowed",
     "no space after #"},
    {"# TYPE 1a gauge\n" E, P "1: invalid metric name in TYPE line: \"1a\"", "bad family name"},
    {"# TYPE a- gauge\n" E, P "1: invalid metric name in TYPE line: \"a-\"", "bad family name character"},
    {"# TYPE a Gauge\n" E, P "1: invalid metric type \"Gauge\"", "types are lower case"},
    {"# TYPE a\n" E, P "1: invalid metric type \"\"", "missing type"},
    {"# TYPE a gauge\n# TYPE a gauge\n" E, P "2: second TYPE line for metric family \"a\"", "TYPE twice"},
    {"# HELP a x\n# HELP a y\n" E, P "2: second HELP line for metric family \"a\"", "HELP twice"},
    {"# UNIT a_s s\n# UNIT a_s s\n" E, P "2: second UNIT line for metric family \"a_s\"", "UNIT twice"},
    {"a 1\n# TYPE a gauge\n" E, P "2: TYPE line for metric family \"a\" after its samples", "TYPE after samples"},
    {"# TYPE a gauge\na 1\n# HELP a x\n" E, P "3: HELP line for metric family \"a\" after its samples", "HELP after samples"},
    {"# TYPE a gauge\n# UNIT a s\n" E, P "2: unit \"s\" is not a suffix of metric family \"a\"", "unit not a suffix"},
    {"# TYPE a_xs gauge\n# UNIT a_xs s\n" E, P "2: unit \"s\" is not a suffix of metric family \"a_xs\"",
     "unit must follow an underscore"},
    {"# UNIT a_s a.s\n" E, P "1: invalid unit \"a.s\"", "unit characters"},
    {"# TYPE a_s info\n# UNIT a_s s\n" E, P "2: info \"a_s\" must not have a unit", "info has no unit"},
    {"# UNIT a_s s\n# TYPE a_s stateset\n" E, P "2: stateset \"a_s\" must not have a unit", "stateset has no unit"},
    {"# HELP a x\\\n" E, P "1: HELP text \"x\\\\\" ends with a lone backslash", "lone backslash in HELP"},
    {"# HELP a \xff\n" E, P "1: HELP text \"\\xff\" is not valid UTF-8", "HELP UTF-8"},
    {"a 1\nb 1\na 2\n" E,
     P "3: sample \"a\" belongs to metric family \"a\", which is already closed (families must not be interleaved)",
     "interleaved families"},
    {"# TYPE a gauge\na 1\n# TYPE b gauge\n# TYPE a gauge\n" E,
     P "4: metric family \"a\" clashes with the names of metric family \"a\" (families must not be interleaved or "
       "repeated)",
     "family declared twice"},
    {"# TYPE c counter\nc_total 1\n# TYPE c_total gauge\n" E,
     P "3: metric family \"c_total\" clashes with the names of metric family \"c\" (families must not be interleaved "
       "or repeated)",
     "family named like another family's sample"},
    {"c_total 1\n# TYPE c counter\nc_total 1\n" E,
     P "3: sample \"c_total\" of metric family \"c\" clashes with metric family \"c_total\"",
     "sample named like an earlier family"},
    {"# TYPE c counter\nc 1\n" E, P "2: sample name \"c\" does not fit counter metric family \"c\"", "counter needs _total"},
    {"# TYPE h histogram\nh 1\n" E, P "2: sample name \"h\" does not fit histogram metric family \"h\"",
     "histogram has no bare samples"},
    {"# TYPE a gauge\na 1\na 2\n" E, P "3: duplicate sample \"a\" for one series (a series takes one MetricPoint)",
     "same series twice in a row"},
    {"# TYPE a gauge\na 1 1\na 2 2\n" E, P "3: duplicate sample \"a\" for one series (a series takes one MetricPoint)",
     "several MetricPoints per series are not supported by the model"},
    {"a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 2\n" E,
     P "3: series \"a{x=\\\"1\\\"}\" appears twice in metric family \"a\" (series must not repeat or be interleaved)",
     "series interleaved"},
    {"a{x=\"1\",y=\"2\"} 1\na{z=\"1\"} 1\na{y=\"2\",x=\"1\"} 2\n" E,
     P "3: series \"a{y=\\\"2\\\",x=\\\"1\\\"}\" appears twice in metric family \"a\" (series must not repeat or be "
       "interleaved)",
     "label order does not make another series"},
    {"# TYPE c counter\nc_total 1\nc_total 2\n" E,
     P "3: duplicate sample \"c_total\" for one series (a series takes one MetricPoint)", "counter total twice"},
    {"# TYPE c counter\nc_created 1\n" E, P "3: counter \"c\" has a series without a _total sample", "counter without total"},
    {"# TYPE c counter\nc_total -1\n" E, P "2: counter \"c\" total must be a non-negative number, got \"-1\"", "negative counter"},
    {"# TYPE c counter\nc_total NaN\n" E, P "2: counter \"c\" total must be a non-negative number, got \"NaN\"", "NaN counter"},
    {"# TYPE c counter\nc_total 1 1\nc_created 1\n" E,
     P "3: sample \"c_created\" has another timestamp than the earlier samples of its series (a series takes one "
       "MetricPoint)",
     "timestamps differ within a series"},
    {"a{b=\"1\",b=\"2\"} 1\n" E, P "1: duplicate label name \"b\"", "duplicate label"},
    {"a{__name__=\"x\"} 1\n" E, P "1: label name \"__name__\" is reserved", "reserved label"},
    {"a{b:c=\"1\"} 1\n" E, P "1: expected '=' after label name \"b\", got \":\"", "colon in label name"},
    {"a{1=\"1\"} 1\n" E, P "1: expected label name or '}' in labels of \"a\", got \"1\"", "bad label name"},
    {"a{,} 1\n" E, P "1: expected label name or '}' in labels of \"a\", got \",\"", "lone comma"},
    {"a{b=1} 1\n" E, P "1: expected '\"' at start of the value of label \"b\", got \"1\"", "unquoted value"},
    {"a{b=\"1\" c=\"2\"} 1\n" E, P "1: expected ',' or '}' after label value \"1\", got \" \"", "missing comma"},
    {"a{b=\"1\n\"} 1\n" E, P "1: label value \"1\" is not terminated by '\"' on its line", "newline in value"},
    {"a{b=\"1\\\n\"} 1\n" E, P "1: label value \"1\\\\\" is not terminated by '\"' on its line", "backslash before newline"},
    {"a{b=\"\xc3\"} 1\n" E, P "1: label value \"\\xc3\" is not valid UTF-8", "label UTF-8"},
    {"a{\"b\"=\"1\"} 1\n" E, P "1: expected label name or '}' in labels of \"a\", got \"\\\"\"",
     "quoted label names are not OpenMetrics 1.0"},
    {"a\n" E, P "1: expected ' ' and a value after \"a\", got \"\"", "missing value"},
    {"a  1\n" E, P "1: invalid value \"\" for \"a\"", "two spaces"},
    {"a 0x1p3\n" E, P "1: invalid value \"0x1p3\" for \"a\"", "hex floats"},
    {"a 1_0\n" E, P "1: invalid value \"1_0\" for \"a\"", "underscores"},
    {"a +nan\n" E, P "1: invalid value \"+nan\" for \"a\"", "signed NaN"},
    {"a 1e500\n" E, P "1: invalid value \"1e500\" for \"a\"", "out of range"},
    {"a 1 Inf\n" E, P "1: invalid timestamp \"Inf\"", "timestamps are real numbers"},
    {"a 1 nan\n" E, P "1: invalid timestamp \"nan\"", "timestamps are real numbers"},
    {"a 1 1e17\n" E, P "1: timestamp \"1e17\" is out of range", "timestamp beyond int64 milliseconds"},
    {"a 1 2 3\n" E, P "1: unexpected text \" 3\" after sample (expected a timestamp or \" # {\" and an exemplar)", "extra token"},
    {"a 1 \n" E, P "1: unexpected text \" \" after sample (expected a timestamp or \" # {\" and an exemplar)", "trailing space"},
    {"a 1 # {} 1\n" E, P "1: exemplar on sample \"a\": only counter _total and histogram _bucket samples may have one",
     "exemplar on unknown"},
    {"# TYPE h histogram\nh_sum 1 # {} 1\n" E,
     P "2: exemplar on sample \"h_sum\": only counter _total and histogram _bucket samples may have one", "exemplar on a sum"},
    {"# TYPE c counter\nc_total 1 # {a=\"1\",a=\"2\"} 1\n" E, P "2: duplicate label name \"a\"", "exemplar labels"},
    {"# TYPE c counter\nc_total 1 # {} x\n" E, P "2: invalid exemplar value \"x\"", "exemplar value"},
    {"# TYPE c counter\nc_total 1 # {}\n" E, P "2: expected ' ' and a value after exemplar labels, got \"\"",
     "exemplar without value"},
    {"# TYPE c counter\nc_total 1 # {} 1 Inf\n" E, P "2: invalid exemplar timestamp \"Inf\"", "exemplar timestamp"},
    {"# TYPE c counter\nc_total 1 # {} 1 1 1\n" E, P "2: unexpected text \" 1\" after exemplar timestamp", "after exemplar"},
    {"# TYPE c counter\nc_total 1 #{} 1\n" E,
     P "2: unexpected text \" #{} 1\" after sample (expected a timestamp or \" # {\" and an exemplar)", "exemplar syntax"},
    {"# TYPE c counter\nc_total 1 # {a=\"0123456789012345678901234567890123456789012345678901234567890123456789"
     "01234567890123456789012345678901234567890123456789012345678\"} 1\n" E,
     P "2: exemplar label set is longer than 128 characters", "129 characters"},
    {"# TYPE h histogram\nh_bucket 1\n" E, P "2: bucket sample \"h_bucket\" has no le label", "bucket without le"},
    {"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n" E, P "2: invalid le value \"x\"", "le is a number"},
    {"# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n" E, P "2: invalid le value \"NaN\"", "le is not NaN"},
    {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\n" E, P "3: histogram \"h\" has a series without a +Inf bucket", "+Inf required"},
    {"# TYPE h histogram\nh_count 1\nh_sum 1\n" E, P "4: histogram \"h\" has a series without a +Inf bucket",
     "a series with no buckets at all"},
    {"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n" E,
     P "3: histogram \"h\" buckets must be sorted by increasing le, got le=\"1\" after a larger or equal bound", "buckets sorted"},
    {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n" E,
     P "3: histogram \"h\" buckets must be sorted by increasing le, got le=\"1.0\" after a larger or equal bound",
     "bucket bounds unique"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"+Inf\"} 1\n" E,
     P "3: histogram \"h\" buckets must be sorted by increasing le, got le=\"+Inf\" after +Inf", "+Inf twice"},
    {"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n" E,
     P "3: histogram \"h\" bucket counts must not decrease, got \"1\" for le=\"+Inf\"", "cumulative buckets"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1.5\n" E,
     P "2: histogram \"h\" bucket count must be a non-negative integer, got \"1.5\"", "integral counts"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} -1\n" E,
     P "2: histogram \"h\" bucket count must be a non-negative integer, got \"-1\"", "negative counts"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 1\n" E,
     P "5: histogram \"h\" has a series whose count differs from its +Inf bucket", "count equals +Inf"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n" E,
     P "4: histogram \"h\" has a series with only one of _count and _sum", "sum needs count"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n" E,
     P "4: histogram \"h\" has a series with only one of _count and _sum", "count needs sum"},
    {"# TYPE h histogram\nh_bucket{le=\"-1\"} 0\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 1\n" E,
     P "6: histogram \"h\" has a series with negative buckets and a _sum", "negative buckets exclude a sum"},
    {"# TYPE h histogram\nh_sum -1\n" E, P "2: histogram \"h\" sum must be a non-negative number, got \"-1\"", "negative sum"},
    {"# TYPE h histogram\nh_count{le=\"1\"} 1\n" E, P "2: sample \"h_count\" must not have an le label", "le only on buckets"},
    {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"+Inf\",a=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n" E,
     P "4: series \"h_bucket{le=\\\"+Inf\\\"}\" appears twice in metric family \"h\" (series must not repeat or be "
       "interleaved)",
     "histogram series interleaved"},
    {"# TYPE g gaugehistogram\ng_gsum NaN\n" E, P "2: gaugehistogram \"g\" sum must be a number, got \"NaN\"", "gsum not NaN"},
    {"# TYPE s summary\ns 1\n" E, P "2: summary sample \"s\" has no quantile label", "quantile required"},
    {"# TYPE s summary\ns_count{quantile=\"1\"} 1\n" E, P "2: sample \"s_count\" must not have a quantile label",
     "quantile only on quantile samples"},
    {"# TYPE s summary\ns{quantile=\"1.5\"} 1\n" E, P "2: invalid quantile \"1.5\" (must be a number from 0 to 1)",
     "quantile range"},
    {"# TYPE s summary\ns{quantile=\"x\"} 1\n" E, P "2: invalid quantile \"x\" (must be a number from 0 to 1)",
     "quantile is a number"},
    {"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 1\n" E,
     P "3: duplicate quantile \"0.50\" in one series of summary \"s\"", "quantile twice"},
    {"# TYPE s summary\ns{quantile=\"0.5\"} -1\n" E, P "2: summary \"s\" quantile value must not be negative, got \"-1\"",
     "negative quantile value"},
    {"# TYPE s summary\ns_count 1.5\n" E, P "2: summary \"s\" count must be a non-negative integer, got \"1.5\"", "integral count"},
    {"# TYPE s summary\ns_sum NaN\n" E, P "2: summary \"s\" sum must be a non-negative number, got \"NaN\"", "sum not NaN"},
    {"# TYPE i info\ni_info 2\n" E, P "2: info \"i\" value must be 1, got \"2\"", "info value"},
    {"# TYPE i info\ni 1\n" E, P "2: sample name \"i\" does not fit info metric family \"i\"", "info suffix"},
    {"# TYPE s stateset\ns{t=\"a\"} 1\n" E, P "2: stateset sample \"s\" has no label named \"s\"", "state label"},
    {"# TYPE s stateset\ns{s=\"a\"} 0.5\n" E, P "2: stateset \"s\" value must be 0 or 1, got \"0.5\"", "state values"},
    {"# TYPE s stateset\ns{s=\"a\"} 1\ns{s=\"a\"} 1\n" E,
     P "3: duplicate sample \"s\" for one series (a series takes one MetricPoint)", "state twice"},
};

static void test_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(fy_parse_openmetrics, c->in, strlen(c->in), &body, &err);
        if (rc == FY_OK)
            fail_msg("case %zu (%s): accepted:\n%s", i, c->note, render(&body));
        if (rc != FY_PERR_OM_ERROR || strcmp(err.msg, c->msg) != 0)
            fail_msg("case %zu (%s):\n got: %s (%s)\nwant: %s", i, c->note, err.msg, fy_perr_name(rc), c->msg);
        assert_int_equal(err.code, rc);
        assert_int_equal(err.msg_len, strlen(err.msg));
        assert_true(err.offset <= strlen(c->in));
        assert_null(body.families);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */

static const char *const fixtures[] = {"openmetrics/all-types.txt", "openmetrics/minimal-no-newline.txt", "openmetrics/edges.txt"};

static const char all_types_model[] =
    "acme_http_router_request_seconds summary help=Latency though all of ACME's HTTP request router. unit=seconds\n"
    "  {path=/api/v1,method=GET} 9036.32 count=807283\n"
    "  {path=/api/v2,method=POST} 479.3 count=34\n"
    "acme_http_router_request_seconds_created gauge\n"
    "  {path=/api/v1,method=GET} 1.605281325e+09\n"
    "  {path=/api/v2,method=POST} 1.605281325e+09\n"
    "go_goroutines gauge help=Number of goroutines that currently exist.\n"
    "  {} 69\n"
    "process_cpu_seconds_total counter help=Total user and system CPU time spent in seconds. unit=seconds\n"
    "  {} 4.20072246e+06\n"
    "foo histogram\n"
    "  {} 324789.3 count=17 [0.01:0,0.1:8,1:11,10:17,+Inf:17]\n"
    "foo_created gauge\n"
    "  {} 1.520430000123e+09\n"
    "bar gaugehistogram\n"
    "  {} 3289.3 count=42 [0.01:20,0.1:25,1:34,10:34,+Inf:42]\n"
    "build_info gauge\n"
    "  {name=pretty name,version=8.2.7} 1\n"
    "state gauge\n"
    "  {entity=controller,state=a} 1\n"
    "  {entity=controller,state=bb} 0\n"
    "q summary\n"
    "  {x=a\\b\"c\nd\\e} 17 count=10 [0.5:1.5,0.9:2] @123000\n"
    "untyped_thing untyped help=Some text and \n some \" escaping \\q \"quotes\"\n"
    "  {a=1} -Inf\n"
    "  {a=2} NaN\n";

static void test_fixture_model(void **state)
{
    (void)state;
    size_t n;
    char *buf = fy_fixture(fixtures[0], &n);
    fy_body_t body;
    fy_parse_error_t err;
    int rc = fy_test_parse(fy_parse_openmetrics, buf, n, &body, &err);
    if (rc != FY_OK)
        fail_msg("%s", err.msg);
    const char *got = render(&body);
    if (strcmp(got, all_types_model) != 0)
        fail_msg("got:\n%s", got);
    free(buf);
}

/* Every prefix of a valid fixture is rejected (no "# EOF" yet), except the one that only lacks the final newline;
 * the guard page catches any read past the prefix. */
static void test_fixture_prefixes(void **state)
{
    (void)state;
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        size_t n;
        char *buf = fy_fixture(fixtures[f], &n);
        for (size_t k = 0; k <= n; k++) {
            fy_body_t body;
            fy_parse_error_t err;
            int rc = fy_test_parse(fy_parse_openmetrics, buf, k, &body, &err);
            int complete = k == n || (k + 1 == n && buf[n - 1] == '\n');
            if (complete && rc != FY_OK)
                fail_msg("%s: prefix %zu rejected: %s", fixtures[f], k, err.msg);
            if (!complete && rc != FY_PERR_OM_ERROR)
                fail_msg("%s: prefix %zu gave %s", fixtures[f], k, fy_perr_name(rc));
        }
        free(buf);
    }
}

/* Every arena smaller than what the fixture needs fails with FY_PERR_NOMEM and nothing else. */
static void test_arena_exhaustion(void **state)
{
    (void)state;
    size_t n;
    char *buf = fy_fixture(fixtures[0], &n);
    const char *in = fy_guarded(buf, n);
    size_t cap = fy_parse_arena_hint(n);
    char *mem = malloc(cap);
    assert_non_null(mem);
    fy_arena_t a;
    fy_body_t body;
    fy_parse_error_t err;
    fy_arena_init(&a, mem, cap);
    assert_int_equal(fy_parse_openmetrics(in, n, &a, &body, &err), FY_OK);
    size_t need = a.used;
    for (size_t sz = 0; sz < need; sz += 1 + sz / 64) {
        fy_arena_init(&a, mem, sz);
        int rc = fy_parse_openmetrics(in, n, &a, &body, &err);
        if (rc != FY_PERR_NOMEM)
            fail_msg("arena %zu of %zu: %s", sz, need, fy_perr_name(rc));
        assert_true(a.used <= sz);
    }
    free(mem);
    free(buf);
}

/* The densest inputs (a family per 4-byte line; a series per short line; a quantile per line) parse within
 * fy_parse_arena_hint, which fy_test_parse provides. */
static void test_arena_hint_worst_cases(void **state)
{
    (void)state;
    static const char *const heads[] = {"", "", "# TYPE s summary\n"};
    static const char *const units[] = {"%c%c 1\n", "a{b=\"%c%c\"} 1\n", "s{quantile=\"0.%c%c\"} 1\n"};
    for (size_t u = 0; u < 3; u++) {
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        assert_non_null(buf);
        n += (size_t)snprintf(buf, cap, "%s", heads[u]);
        for (int i = 0; i < 100; i++)
            n += (size_t)snprintf(buf + n, cap - n, units[u], u == 0 ? 'a' + i % 26 : '0' + i % 10,
                                  u == 0 ? '0' + i / 26 : '0' + i / 10);
        n += (size_t)snprintf(buf + n, cap - n, "# EOF\n");
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(fy_parse_openmetrics, buf, n, &body, &err);
        if (rc != FY_OK)
            fail_msg("unit %zu: %s", u, err.msg);
        assert_int_equal(body.nseries, u == 2 ? 1 : 100);
        free(buf);
    }
}

/* len 0 allows buf == NULL; out-params are preset even on failure. */
static void test_null_empty(void **state)
{
    (void)state;
    fy_body_t body = {(const fy_family_t *)&body, 7, 7};
    fy_parse_error_t err;
    assert_int_equal(fy_parse_openmetrics(NULL, 0, fy_test_arena(0), &body, &err), FY_PERR_OM_ERROR);
    assert_string_equal(err.msg, P "1: data does not end with # EOF");
    assert_null(body.families);
    assert_int_equal(body.nfamilies, 0);
    assert_int_equal(body.nseries, 0);
}

static void test_unescape_om(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},         {"a", "a"},     {"\\\\", "\\"},
        {"\\\"", "\""},   {"\\n", "\n"},  {"\\a", "\\a"},
        {"\\\\a", "\\a"}, {"x\\", "x\\"}, {"\\\\\\n\\t", "\\\n\\t"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        fy_str_t s = fy_str(cases[i].in, strlen(cases[i].in));
        size_t n = fy_unescape(s, FY_ESC_OM, buf);
        assert_int_equal(n, fy_unescaped_len(s, FY_ESC_OM));
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(buf, cases[i].want, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),         cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_fixture_model),    cmocka_unit_test(test_fixture_prefixes),
        cmocka_unit_test(test_arena_exhaustion), cmocka_unit_test(test_arena_hint_worst_cases),
        cmocka_unit_test(test_unescape_om),      cmocka_unit_test(test_null_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
