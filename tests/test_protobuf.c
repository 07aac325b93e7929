/*
 * test_protobuf.c: the delimited MetricFamily decoder (fy_parse_protobuf) and the wire writer (fy_pb.h).
 *
 * Bodies are built with the writer (one builder per case) or written out byte by byte from the wire format; the
 * expected result is either a dump of the decoded model (see dump()) or the exact error message. Every input goes
 * through fy_test_parse, i.e. right before a PROT_NONE page.
 *
 * Set FY_PB_WRITE_FIXTURES=<dir> to write each builder case to <dir>/<name>.bin (the seeds in
 * tests/fixtures/protobuf/ were made that way).
 */
#include "testutil.h"
#include "fy_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_FIELD_MAX_FOR_TEST 536870911u

/* ------------------------------------------------------------------------------------------------------------- */
/* A one-line-per-item dump of the model, so that expectations read like the model itself. */

typedef struct {
    char s[8192];
    size_t n;
} dump_t;

static void dputs(dump_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dputs(dump_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(d->s + d->n, sizeof(d->s) - d->n, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof(d->s) - d->n);
    d->n += (size_t)k;
}

static const char *dump(const fy_body_t *b)
{
    static dump_t d;
    d.n = 0;
    d.s[0] = '\0';
    uint32_t total = 0;
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        dputs(&d, "F %.*s t%u", (int)f->name.len, f->name.ptr, f->type);
        if (f->has_help)
            dputs(&d, " help=\"%.*s\"", (int)f->help.len, f->help.ptr);
        if (f->unit.len)
            dputs(&d, " unit=%.*s", (int)f->unit.len, f->unit.ptr);
        dputs(&d, "\n");
        assert_int_equal(f->help_esc, FY_ESC_NONE);
        for (uint32_t j = 0; j < f->nseries; j++) {
            const fy_series_t *s = &f->series[j];
            dputs(&d, " S {");
            for (uint32_t k = 0; k < s->nlabels; k++) {
                assert_int_equal(s->labels[k].value_esc, FY_ESC_NONE);
                dputs(&d, "%s%.*s=%.*s", k ? "," : "", (int)s->labels[k].name.len, s->labels[k].name.ptr,
                      (int)s->labels[k].value.len, s->labels[k].value.ptr);
            }
            dputs(&d, "} k%02x v=%g", s->pb_kinds, s->value);
            if (s->count)
                dputs(&d, " c=%llu", (unsigned long long)s->count);
            for (uint32_t k = 0; k < s->npoints; k++)
                dputs(&d, " [%g %g %llu]", s->points[k].key, s->points[k].value, (unsigned long long)s->points[k].count);
            if (s->has_timestamp)
                dputs(&d, " ts=%lld", (long long)s->timestamp_ms);
            if (s->pb_histogram.len)
                dputs(&d, " nh=%zu", s->pb_histogram.len);
            dputs(&d, "\n");
        }
        total += f->nseries;
    }
    assert_int_equal(total, b->nseries);
    return d.s;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Builders. */

static void put_str(fy_pb_writer_t *w, uint32_t field, const char *s)
{
    fy_pb_put_bytes(w, field, s, strlen(s));
}

static void label(fy_pb_writer_t *w, const char *name, const char *value)
{
    size_t m = fy_pb_begin(w, 1);
    put_str(w, 1, name);
    put_str(w, 2, value);
    fy_pb_end(w, m);
}

/* A family with name, help (NULL: none) and type, left open for metrics. */
static size_t family(fy_pb_writer_t *w, const char *name, const char *help, int type)
{
    size_t m = fy_pb_begin(w, 0);
    put_str(w, 1, name);
    if (help)
        put_str(w, 2, help);
    fy_pb_put_uint64(w, 3, (uint64_t)type);
    return m;
}

/* A metric with one value sub-message (field: 2 gauge, 3 counter, 5 untyped) and labels a=1. */
static void simple_metric(fy_pb_writer_t *w, uint32_t field, double v)
{
    size_t m = fy_pb_begin(w, 4);
    label(w, "a", "1");
    size_t g = fy_pb_begin(w, field);
    fy_pb_put_double(w, 1, v);
    fy_pb_end(w, g);
    fy_pb_end(w, m);
}

static void b_gauge(fy_pb_writer_t *w)
{
    size_t f = family(w, "pb_gauge", "PB help", FY_TYPE_GAUGE);
    size_t m = fy_pb_begin(w, 4);
    label(w, "z", "1");
    label(w, "a", "2");
    label(w, "job", "bodyjob");
    size_t g = fy_pb_begin(w, 2);
    fy_pb_put_double(w, 1, 1.5);
    fy_pb_end(w, g);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

static void exemplar(fy_pb_writer_t *w, uint32_t field)
{
    size_t e = fy_pb_begin(w, field);
    label(w, "trace_id", "abc");
    fy_pb_put_double(w, 2, 0.25);
    size_t t = fy_pb_begin(w, 3);
    fy_pb_put_int64(w, 1, 1700000000);
    fy_pb_put_int64(w, 2, 5);
    fy_pb_end(w, t);
    fy_pb_end(w, e);
}

static void b_counter(fy_pb_writer_t *w)
{
    size_t f = family(w, "c_total", "C", FY_TYPE_COUNTER);
    size_t m = fy_pb_begin(w, 4);
    size_t c = fy_pb_begin(w, 3);
    fy_pb_put_double(w, 1, 42);
    exemplar(w, 2);
    size_t t = fy_pb_begin(w, 3); /* created_timestamp */
    fy_pb_put_int64(w, 1, 1600000000);
    fy_pb_end(w, t);
    fy_pb_end(w, c);
    fy_pb_end(w, m);
    simple_metric(w, 3, 7);
    fy_pb_end(w, f);
}

static void b_summary(fy_pb_writer_t *w)
{
    size_t f = family(w, "rpc_seconds", "S", FY_TYPE_SUMMARY);
    size_t m = fy_pb_begin(w, 4);
    label(w, "svc", "x");
    size_t s = fy_pb_begin(w, 4);
    fy_pb_put_uint64(w, 1, 9);
    fy_pb_put_double(w, 2, 3.5);
    for (int i = 0; i < 3; i++) {
        size_t q = fy_pb_begin(w, 3);
        fy_pb_put_double(w, 1, i == 0 ? 0.5 : i == 1 ? 0.9 : 0.99);
        fy_pb_put_double(w, 2, 0.1 * (i + 1));
        fy_pb_end(w, q);
    }
    fy_pb_end(w, s);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

static void b_untyped(fy_pb_writer_t *w)
{
    size_t f = family(w, "u", NULL, FY_TYPE_UNTYPED);
    simple_metric(w, 5, -2.5);
    fy_pb_end(w, f);
}

static void bucket(fy_pb_writer_t *w, double ub, uint64_t cum)
{
    size_t b = fy_pb_begin(w, 3);
    fy_pb_put_uint64(w, 1, cum);
    fy_pb_put_double(w, 2, ub);
    fy_pb_end(w, b);
}

static void b_classic(fy_pb_writer_t *w)
{
    size_t f = family(w, "pb_ch", "classic", FY_TYPE_HISTOGRAM);
    size_t m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, 4);
    fy_pb_put_double(w, 2, 3);
    bucket(w, 0.5, 1);
    bucket(w, 1, 3);
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

/* Spec E19 "native": schema 0, zero threshold 0.001, zero count 1, count 5, sum 12.5, one positive span. */
static void b_native(fy_pb_writer_t *w)
{
    size_t f = family(w, "pb_nh", "native", FY_TYPE_HISTOGRAM);
    size_t m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, 5);
    fy_pb_put_double(w, 2, 12.5);
    fy_pb_put_uint64(w, 5, fy_pb_zigzag(0));
    fy_pb_put_double(w, 6, 0.001);
    fy_pb_put_uint64(w, 7, 1);
    size_t sp = fy_pb_begin(w, 12);
    fy_pb_put_uint64(w, 1, fy_pb_zigzag(-1));
    fy_pb_put_uint64(w, 2, 2);
    fy_pb_end(w, sp);
    size_t d = fy_pb_begin(w, 13); /* packed deltas 3, -2 */
    fy_pb_put_varint(w, fy_pb_zigzag(3));
    fy_pb_put_varint(w, fy_pb_zigzag(-2));
    fy_pb_end(w, d);
    fy_pb_put_uint64(w, 13, fy_pb_zigzag(1)); /* and one unpacked */
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

/* Float histogram: counts as doubles (packed and not), a float bucket count, created timestamp, exemplars. */
static void b_float_histogram(fy_pb_writer_t *w)
{
    size_t f = family(w, "fh", NULL, FY_TYPE_GAUGE_HISTOGRAM);
    size_t m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_double(w, 4, 2.5);
    size_t b = fy_pb_begin(w, 3);
    fy_pb_put_double(w, 2, 1);
    fy_pb_put_double(w, 4, 1.5);
    fy_pb_end(w, b);
    fy_pb_put_double(w, 8, 0.5);
    size_t sp = fy_pb_begin(w, 9);
    fy_pb_put_uint64(w, 2, 1);
    fy_pb_end(w, sp);
    fy_pb_put_double(w, 11, 1.0);
    size_t pc = fy_pb_begin(w, 14);
    const char eight[16] = {0};
    fy_pb_put_raw(w, eight, 16);
    fy_pb_end(w, pc);
    size_t t = fy_pb_begin(w, 15);
    fy_pb_end(w, t);
    exemplar(w, 16);
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

static void b_empty_help(fy_pb_writer_t *w)
{
    size_t f = family(w, "pb_eh", "", FY_TYPE_GAUGE);
    simple_metric(w, 2, 1);
    fy_pb_end(w, f);
}

static void b_empty_family(fy_pb_writer_t *w)
{
    fy_pb_end(w, family(w, "pb_empty", "E", FY_TYPE_GAUGE));
    fy_pb_end(w, family(w, "after", NULL, FY_TYPE_GAUGE));
}

static void b_dup(fy_pb_writer_t *w)
{
    size_t f = family(w, "pb_dup", "first", FY_TYPE_GAUGE);
    simple_metric(w, 2, 1);
    fy_pb_end(w, f);
    f = family(w, "other", NULL, FY_TYPE_COUNTER);
    simple_metric(w, 3, 5);
    fy_pb_end(w, f);
    f = family(w, "pb_dup", NULL, FY_TYPE_COUNTER);
    simple_metric(w, 3, 2);
    simple_metric(w, 3, 3);
    fy_pb_end(w, f);
    fy_pb_end(w, family(w, "other", NULL, FY_TYPE_GAUGE)); /* empty, still replaces */
}

/* Labels out of order, duplicates and empty values stay as given; the store sorts and checks them. */
static void b_labels(fy_pb_writer_t *w)
{
    size_t f = family(w, "l", NULL, FY_TYPE_GAUGE);
    size_t m = fy_pb_begin(w, 4);
    size_t g = fy_pb_begin(w, 2);
    fy_pb_put_double(w, 1, 3);
    fy_pb_end(w, g);
    label(w, "zz", "");
    size_t l = fy_pb_begin(w, 1); /* value before name */
    put_str(w, 2, "v");
    put_str(w, 1, "b");
    fy_pb_end(w, l);
    l = fy_pb_begin(w, 1); /* no name, no value */
    fy_pb_end(w, l);
    label(w, "zz", "again");
    label(w, "foo-bar", "\xff\xfe");
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

/* Field order is free: metrics before name and type; the type decides which sub-message fills the value. */
static void b_order(fy_pb_writer_t *w)
{
    size_t f = fy_pb_begin(w, 0);
    simple_metric(w, 3, 1);       /* counter field */
    simple_metric(w, 2, 2);       /* gauge field */
    size_t m = fy_pb_begin(w, 4); /* both, the gauge twice (merged: last value wins) */
    size_t g = fy_pb_begin(w, 2);
    fy_pb_put_double(w, 1, 10);
    fy_pb_end(w, g);
    g = fy_pb_begin(w, 3);
    fy_pb_put_double(w, 1, 99);
    fy_pb_end(w, g);
    g = fy_pb_begin(w, 2);
    fy_pb_end(w, g);
    g = fy_pb_begin(w, 2);
    fy_pb_put_double(w, 1, 11);
    fy_pb_end(w, g);
    fy_pb_end(w, m);
    m = fy_pb_begin(w, 4); /* no value sub-message at all */
    fy_pb_end(w, m);
    fy_pb_put_uint64(w, 3, FY_TYPE_GAUGE);
    put_str(w, 1, "first_name");
    put_str(w, 1, "pb_tm");
    fy_pb_put_uint64(w, 3, 9);                /* unknown enum value: ignored */
    fy_pb_put_uint64(w, 3, (1ull << 32) | 7); /* truncated to int32 7: unknown, ignored */
    put_str(w, 5, "seconds");
    fy_pb_end(w, f);
}

static void b_timestamps(fy_pb_writer_t *w)
{
    size_t f = family(w, "ts", NULL, FY_TYPE_UNTYPED);
    int64_t ts[] = {1234, 0, -5, INT64_MIN};
    for (int i = 0; i < 4; i++) {
        size_t m = fy_pb_begin(w, 4);
        fy_pb_put_int64(w, 6, ts[i]);
        fy_pb_end(w, m);
    }
    simple_metric(w, 5, 1);
    fy_pb_end(w, f);
}

/* Unknown fields of every wire type, at every level, including groups and known fields with the wrong wire type. */
static void unknowns(fy_pb_writer_t *w)
{
    fy_pb_put_uint64(w, 100, UINT64_MAX);
    fy_pb_put_double(w, 101, 1);
    put_str(w, 102, "\x01\x02 not a message");
    fy_pb_put_tag(w, 103, FY_PB_FIXED32);
    fy_pb_put_raw(w, "abcd", 4);
    fy_pb_put_tag(w, 104, FY_PB_SGROUP);
    fy_pb_put_uint64(w, 1, 1);
    fy_pb_put_tag(w, 2, FY_PB_SGROUP);
    put_str(w, 3, "x");
    fy_pb_put_tag(w, 2, FY_PB_EGROUP);
    fy_pb_put_tag(w, 104, FY_PB_EGROUP);
    fy_pb_put_tag(w, PB_FIELD_MAX_FOR_TEST, FY_PB_VARINT);
    fy_pb_put_varint(w, 0);
}

static void b_unknown(fy_pb_writer_t *w)
{
    size_t f = fy_pb_begin(w, 0);
    unknowns(w);
    put_str(w, 1, "unk");
    fy_pb_put_double(w, 3, 1); /* type with the wrong wire type: unknown */
    fy_pb_put_uint64(w, 4, 1); /* metric as a varint: unknown */
    fy_pb_put_uint64(w, 2, 1); /* help as a varint: unknown, so no help */
    fy_pb_put_uint64(w, 3, FY_TYPE_SUMMARY);
    size_t m = fy_pb_begin(w, 4);
    unknowns(w);
    size_t l = fy_pb_begin(w, 1);
    unknowns(w);
    put_str(w, 1, "n");
    fy_pb_put_uint64(w, 2, 5); /* value as varint: unknown */
    fy_pb_end(w, l);
    fy_pb_put_double(w, 6, 1); /* timestamp as fixed64: unknown */
    size_t s = fy_pb_begin(w, 4);
    unknowns(w);
    fy_pb_put_double(w, 1, 1); /* count with the wrong type */
    fy_pb_put_uint64(w, 1, 3);
    size_t q = fy_pb_begin(w, 3);
    unknowns(w);
    fy_pb_put_double(w, 1, 0.5);
    fy_pb_end(w, q);
    fy_pb_end(w, s);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

/* Unknown fields inside a Histogram are kept (Go re-marshals them), so they make it non-classic. */
static void b_unknown_histogram(fy_pb_writer_t *w)
{
    size_t f = family(w, "uh", NULL, FY_TYPE_HISTOGRAM);
    size_t m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, 1);
    fy_pb_put_uint64(w, 99, 1);
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

/* spec bench/payloads/push-646.txt as protobuf */
static void b_push646(fy_pb_writer_t *w)
{
    size_t f = family(w, "job_items_total", "Items processed by the job.", FY_TYPE_COUNTER);
    const char *q[] = {"high", "low"};
    double v[] = {1234567, 678};
    for (int i = 0; i < 2; i++) {
        size_t m = fy_pb_begin(w, 4);
        label(w, "queue", q[i]);
        size_t c = fy_pb_begin(w, 3);
        fy_pb_put_double(w, 1, v[i]);
        fy_pb_end(w, c);
        fy_pb_end(w, m);
    }
    fy_pb_end(w, f);
    f = family(w, "job_last_success_seconds", "Unix time of the last success.", FY_TYPE_GAUGE);
    size_t m = fy_pb_begin(w, 4);
    size_t g = fy_pb_begin(w, 2);
    fy_pb_put_double(w, 1, 1.7956077351921391e+09);
    fy_pb_end(w, g);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
    f = family(w, "job_duration_seconds", "Job duration in s.", FY_TYPE_HISTOGRAM);
    m = fy_pb_begin(w, 4);
    size_t h = fy_pb_begin(w, 7);
    fy_pb_put_uint64(w, 1, 12);
    fy_pb_put_double(w, 2, 47.25);
    bucket(w, 0.5, 2);
    bucket(w, 1, 5);
    bucket(w, 5, 9);
    bucket(w, 10, 11);
    fy_pb_end(w, h);
    fy_pb_end(w, m);
    fy_pb_end(w, f);
}

typedef struct {
    const char *name;
    void (*build)(fy_pb_writer_t *w);
    const char *expect;
    const char *note;
} build_case_t;

/* clang-format off */
static const build_case_t build_cases[] = {
    {"gauge", b_gauge,
     "F pb_gauge t1 help=\"PB help\"\n S {z=1,a=2,job=bodyjob} k82 v=1.5\n",
     "spec E19 basic: labels in input order, job kept (the store overwrites it)"},
    {"counter", b_counter,
     "F c_total t0 help=\"C\"\n S {} k81 v=42\n S {a=1} k81 v=7\n",
     "counter exemplar and created timestamp are validated and dropped"},
    {"summary", b_summary,
     "F rpc_seconds t2 help=\"S\"\n S {svc=x} k84 v=3.5 c=9 [0.5 0.1 0] [0.9 0.2 0] [0.99 0.3 0]\n",
     "quantiles become points, sample_sum the value, sample_count the count"},
    {"untyped", b_untyped, "F u t3\n S {a=1} k88 v=-2.5\n", "no help field: has_help 0"},
    {"classic", b_classic,
     "F pb_ch t4 help=\"classic\"\n S {} k90 v=3 c=4 [0.5 0 1] [1 0 3]\n",
     "spec E19 classic: no +Inf bucket added here; nothing native, so no pb_histogram"},
    {"native", b_native,
     "F pb_nh t4 help=\"native\"\n S {} k90 v=12.5 c=5 nh=36\n",
     "spec E19 native: classic view plus the whole Histogram message"},
    {"float_histogram", b_float_histogram,
     "F fh t5\n S {} k90 v=0 [1 0 0] nh=110\n",
     "gauge histogram reads the histogram field; float counts only in pb_histogram"},
    {"empty_help", b_empty_help, "F pb_eh t1 help=\"\"\n S {a=1} k82 v=1\n", "spec E19 emptyhelp"},
    {"empty_family", b_empty_family, "F pb_empty t1 help=\"E\"\nF after t1\n", "spec E19 emptyfam: kept"},
    {"dup", b_dup,
     "F pb_dup t0\n S {a=1} k81 v=2\n S {a=1} k81 v=3\nF other t1\n",
     "spec E19 dupfam: the later family replaces the earlier wholesale, at its own position"},
    {"labels", b_labels,
     "F l t1\n S {zz=,b=v,=,zz=again,foo-bar=\xff\xfe} k82 v=3\n",
     "labels as given: any order, empty, duplicate, invalid names and bytes are the store's business"},
    {"order", b_order,
     "F pb_tm t1 unit=seconds\n S {a=1} k81 v=0\n S {a=1} k82 v=2\n S {} k83 v=11\n S {} k80 v=0\n",
     "type after the metrics; value only from the matching sub-message; unknown enum values ignored"},
    {"timestamps", b_timestamps,
     "F ts t3\n S {} k80 v=0 ts=1234\n S {} k80 v=0 ts=0\n S {} k80 v=0 ts=-5\n"
     " S {} k80 v=0 ts=-9223372036854775808\n S {a=1} k88 v=1\n",
     "timestamp_ms present (even 0) sets has_timestamp"},
    {"unknown", b_unknown,
     "F unk t2\n S {n=} k84 v=0 c=3 [0.5 0 0]\n",
     "unknown fields of every wire type and known fields with the wrong wire type are skipped"},
    {"unknown_histogram", b_unknown_histogram, "F uh t4\n S {} k90 v=0 c=1 nh=5\n",
     "unknown fields make a histogram non-classic"},
    {"push646", b_push646,
     "F job_items_total t0 help=\"Items processed by the job.\"\n S {queue=high} k81 v=1.23457e+06\n"
     " S {queue=low} k81 v=678\nF job_last_success_seconds t1 help=\"Unix time of the last success.\"\n"
     " S {} k82 v=1.79561e+09\nF job_duration_seconds t4 help=\"Job duration in s.\"\n"
     " S {} k90 v=47.25 c=12 [0.5 0 2] [1 0 5] [5 0 9] [10 0 11]\n",
     "the bench workload"},
};
/* clang-format on */

static size_t build(const build_case_t *c, char *buf, size_t cap)
{
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, buf, cap);
    c->build(&w);
    assert_false(w.overflow);
    return w.len;
}

static void test_build_cases(void **state)
{
    (void)state;
    static char buf[4096];
    const char *dir = getenv("FY_PB_WRITE_FIXTURES");
    for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
        const build_case_t *c = &build_cases[i];
        size_t n = build(c, buf, sizeof(buf));
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(fy_parse_protobuf, buf, n, &body, &err);
        if (rc != FY_OK)
            fail_msg("%s (%s): %s", c->name, c->note, err.msg);
        const char *got = dump(&body);
        if (strcmp(got, c->expect) != 0)
            fail_msg("%s (%s):\nwant:\n%sgot:\n%s", c->name, c->note, c->expect, got);
        if (dir != NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s.bin", dir, c->name);
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(buf, 1, n, f), n);
            fclose(f);
        }
    }
}

/* Cutting a valid body anywhere: OK (with the families before the cut) exactly at frame boundaries, otherwise
 * "unexpected EOF", also inside a length prefix. */
static void test_truncation(void **state)
{
    (void)state;
    static char buf[4096];
    for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
        size_t n = build(&build_cases[i], buf, sizeof(buf));
        size_t next_boundary = 0;
        uint32_t frames = 0;
        for (size_t cut = 0; cut < n; cut++) {
            int boundary = cut == next_boundary;
            if (boundary) {
                /* Frame lengths here are < 2^14: at most two prefix bytes. */
                size_t len = (unsigned char)buf[cut] & 0x7F, pre = 1;
                if ((unsigned char)buf[cut] & 0x80) {
                    len |= (size_t)((unsigned char)buf[cut + 1]) << 7;
                    pre = 2;
                }
                next_boundary = cut + pre + len;
            }
            fy_body_t body;
            fy_parse_error_t err;
            int rc = fy_test_parse(fy_parse_protobuf, buf, cut, &body, &err);
            if (boundary) {
                assert_int_equal(rc, FY_OK);
                assert_true(body.nfamilies <= frames);
                frames++;
            } else {
                if (rc != FY_PERR_PB_UNEXPECTED_EOF)
                    fail_msg("%s cut at %zu: %s", build_cases[i].name, cut, err.msg);
                assert_string_equal(err.msg, "unexpected EOF");
                assert_int_equal(body.nfamilies, 0);
                assert_null(body.families);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Bodies written byte by byte. */

typedef struct {
    const char *hex;    /* bytes in hex, blanks ignored */
    const char *expect; /* dump, or "ERR <message>" */
    const char *note;
} hex_case_t;

#define DECODE "ERR proto: cannot parse invalid wire-format data"

/* clang-format off */
static const hex_case_t hex_cases[] = {
    {"", "", "empty body: no families"},
    {"00", "F  t0\n", "zero-length frame: a family with no name (stored under \"\", as the reference does)"},
    {"00 00", "F  t0\n", "two nameless families: the later wins"},
    {"02 0a 00", "F  t0\n", "empty name given explicitly"},
    {"0a", "ERR unexpected EOF", "length prefix, then nothing"},
    {"80", "ERR unexpected EOF", "cut inside the length prefix"},
    {"02 0a", "ERR unexpected EOF", "cut inside the message"},
    {"ff ff ff ff 0f", "ERR unexpected EOF", "4 GiB frame announced"},
    {"ff ff ff ff 7f 00", "ERR unexpected EOF", "35-bit frame length"},
    {"80 80 80 80 80 00", "ERR invalid varint32 encountered", "length prefix longer than 5 bytes"},
    {"ff ff ff ff ff ff ff ff ff 01", "ERR invalid varint32 encountered", "10-byte length prefix"},
    {"02 0a 05", DECODE, "string length past the end of the message"},
    {"0a 0a ff ff ff ff ff ff ff ff 01", DECODE, "huge string length"},
    {"07 0a 04 41 42 43 44 00", DECODE, "a zero byte where a tag belongs: field number 0"},
    {"01 00", DECODE, "field number 0"},
    {"05 80 80 80 80 10", DECODE, "field number 2^29 (too big)"},
    {"06 f8 ff ff ff 0f 00", "F  t0\n", "field number 2^29-1 (the largest), unknown varint"},
    {"0b 18 80 80 80 80 80 80 80 80 80 01", "F  t0\n", "10-byte varint with bit 63 only: valid; type truncates to 0"},
    {"0b 18 80 80 80 80 80 80 80 80 80 02", DECODE, "10-byte varint overflowing 64 bits"},
    {"0c 18 80 80 80 80 80 80 80 80 80 80 00", DECODE, "11-byte varint"},
    {"02 18 80", DECODE, "varint cut by the end of the message"},
    {"02 0e 00", DECODE, "wire type 6"},
    {"02 0f 00", DECODE, "wire type 7"},
    {"01 0c", DECODE, "end group without start"},
    {"04 4b 08 01 4c", "F  t0\n", "unknown group field 9 with a varint inside"},
    {"03 4b 08 01", DECODE, "group never closed"},
    {"04 4b 08 01 54", DECODE, "group closed with another field number"},
    {"04 4b 4b 4c 4c", "F  t0\n", "nested groups"},
    {"02 31 00", DECODE, "fixed64 cut"},
    {"03 35 00 00", DECODE, "fixed32 cut"},
    {"04 32 02 ff 80", "F  t0\n", "unknown length-delimited field: contents not looked at"},
    {"04 22 02 0a 05", DECODE, "metric with a label whose length runs past the metric"},
    {"06 22 04 0a 02 0a 05", DECODE, "label pair with a name running past the label"},
    {"06 22 04 12 02 09 00", DECODE, "gauge sub-message with a cut double"},
    {"0d 22 0b 3a 09 5a 07 00 00 00 00 00 00 00", DECODE, "packed double counts with 7 bytes"},
    {"07 22 05 3a 03 6a 01 80", DECODE, "packed deltas with a cut varint"},
    {"0c 22 0a 3a 08 1a 06 1a 04 0a 02 0a 05", DECODE, "bucket exemplar with a broken label, five levels down"},
    {"02 20 01", "F  t0\n", "known field with the wrong wire type (metric as varint) is unknown"},
    {"03 0a 01 61 00 02 0a 05", DECODE, "error in the third frame after two good ones: no partial result"},
    {"02 0a 05 80", DECODE, "malformed frame before a truncated one: first error wins"},
};
/* clang-format on */

static size_t unhex(const char *hex, char *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(p, "%2x", &v), 1);
        out[n++] = (char)v;
        p += 2;
    }
    return n;
}

static void test_hex_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hex_cases) / sizeof(hex_cases[0]); i++) {
        const hex_case_t *c = &hex_cases[i];
        char buf[256];
        size_t n = unhex(c->hex, buf);
        fy_body_t body;
        fy_parse_error_t err;
        int rc = fy_test_parse(fy_parse_protobuf, buf, n, &body, &err);
        char got[FY_ERRMSG_MAX + 8];
        if (rc == FY_OK) {
            snprintf(got, sizeof(got), "%s", dump(&body));
            assert_int_equal(err.msg_len, 0);
        } else {
            snprintf(got, sizeof(got), "ERR %s", err.msg);
            assert_int_equal(err.msg_len, strlen(err.msg));
            assert_int_equal(body.nfamilies, 0);
            assert_true(rc == FY_PERR_PB_UNEXPECTED_EOF || rc == FY_PERR_PB_ERROR);
            assert_int_equal(rc == FY_PERR_PB_UNEXPECTED_EOF, strcmp(err.msg, "unexpected EOF") == 0);
            assert_true(err.offset <= n);
        }
        if (strcmp(got, c->expect) != 0)
            fail_msg("case %zu [%s] (%s):\nwant: %s\ngot:  %s", i, c->hex, c->note, c->expect, got);
    }
}

/* Too small an arena is FY_PERR_NOMEM (not an input error); fy_parse_arena_hint() always suffices, also for the
 * densest bodies: one-byte empty families, and two-byte empty metrics and labels. */
static void test_arena(void **state)
{
    (void)state;
    static char buf[4096];
    size_t n = build(&build_cases[0], buf, sizeof(buf));
    const char *in = fy_guarded(buf, n);
    fy_body_t body;
    fy_parse_error_t err;
    for (size_t cap = 0; cap < 512; cap += 16) {
        char mem[512];
        fy_arena_t a;
        fy_arena_init(&a, mem, cap);
        int rc = fy_parse_protobuf(in, n, &a, &body, &err);
        assert_true(rc == FY_OK || rc == FY_PERR_NOMEM);
        if (rc == FY_PERR_NOMEM)
            assert_string_equal(err.msg, "arena exhausted (not an input error)");
        assert_true(a.used <= cap);
    }

    /* Densest bodies: one-byte empty families; two-byte empty metrics; two-byte empty labels. */
    static char dense[60000];
    for (int kind = 0; kind < 3; kind++) {
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, dense, sizeof(dense));
        uint32_t want_series = 0, want_labels = 0;
        if (kind == 0) {
            memset(dense, 0, sizeof(dense));
            w.len = sizeof(dense);
        } else if (kind == 1) {
            size_t f = fy_pb_begin(&w, 0);
            for (; w.len + 2 <= sizeof(dense) - 3; want_series++)
                fy_pb_put_bytes(&w, 4, "", 0);
            fy_pb_end(&w, f);
        } else {
            size_t f = fy_pb_begin(&w, 0), m = fy_pb_begin(&w, 4);
            for (; w.len + 2 <= sizeof(dense) - 6; want_labels++)
                fy_pb_put_bytes(&w, 1, "", 0);
            fy_pb_end(&w, m);
            fy_pb_end(&w, f);
            want_series = 1;
        }
        assert_false(w.overflow);
        size_t cap = fy_parse_arena_hint(w.len);
        void *mem = malloc(cap);
        assert_non_null(mem);
        fy_arena_t a;
        fy_arena_init(&a, mem, cap);
        int rc = fy_parse_protobuf(fy_guarded(dense, w.len), w.len, &a, &body, &err);
        if (rc != FY_OK)
            fail_msg("dense %d: %s", kind, err.msg);
        assert_int_equal(body.nseries, want_series);
        assert_int_equal(body.nfamilies, 1);
        if (want_labels)
            assert_int_equal(body.families[0].series[0].nlabels, want_labels);
        free(mem);
    }
}

/* The fixtures (fuzzer seeds) decode. */
static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
        char rel[256];
        size_t n;
        snprintf(rel, sizeof(rel), "protobuf/%s.bin", build_cases[i].name);
        char *data = fy_fixture(rel, &n);
        fy_body_t body;
        fy_parse_error_t err;
        assert_int_equal(fy_test_parse(fy_parse_protobuf, data, n, &body, &err), FY_OK);
        assert_string_equal(dump(&body), build_cases[i].expect);
        free(data);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The writer. */

static void test_writer_varint(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *hex;
    } cases[] = {
        {0, "00"},
        {1, "01"},
        {127, "7f"},
        {128, "80 01"},
        {300, "ac 02"},
        {16383, "ff 7f"},
        {16384, "80 80 01"},
        {UINT32_MAX, "ff ff ff ff 0f"},
        {1ull << 63, "80 80 80 80 80 80 80 80 80 01"},
        {UINT64_MAX, "ff ff ff ff ff ff ff ff ff 01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[16], got[16];
        size_t wn = unhex(cases[i].hex, want);
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, got, sizeof(got));
        fy_pb_put_varint(&w, cases[i].v);
        assert_int_equal(w.len, wn);
        assert_int_equal(fy_pb_varint_size(cases[i].v), wn);
        assert_memory_equal(got, want, wn);
    }
    assert_int_equal(fy_pb_zigzag(0), 0);
    assert_int_equal(fy_pb_zigzag(-1), 1);
    assert_int_equal(fy_pb_zigzag(1), 2);
    assert_int_equal(fy_pb_zigzag(INT64_MIN), UINT64_MAX);
}

static void test_writer_fields(void **state)
{
    (void)state;
    char got[64], want[64];
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, got, sizeof(got));
    fy_pb_put_uint64(&w, 1, 150);
    fy_pb_put_int64(&w, 6, -1);
    fy_pb_put_double(&w, 2, 1.5);
    fy_pb_put_bytes(&w, 16, "ab", 2);
    fy_pb_put_tag(&w, 536870911, FY_PB_FIXED32);
    size_t n = unhex("08 96 01  30 ff ff ff ff ff ff ff ff ff 01  11 00 00 00 00 00 00 f8 3f  82 01 02 61 62"
                     "  fd ff ff ff 0f",
                     want);
    assert_false(w.overflow);
    assert_int_equal(w.len, n);
    assert_memory_equal(got, want, n);
}

/* Nested lengths are canonical: the body moves when its length needs a second byte. */
static void test_writer_nested(void **state)
{
    (void)state;
    static char big[300];
    memset(big, 'x', sizeof(big));
    for (size_t body = 125; body <= 128; body++) {
        char out[512];
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, out, sizeof(out));
        size_t outer = fy_pb_begin(&w, 0);
        size_t inner = fy_pb_begin(&w, 4);
        fy_pb_put_bytes(&w, 9, big, body - 5); /* an unknown field */
        fy_pb_end(&w, inner);
        fy_pb_end(&w, outer);
        assert_false(w.overflow);
        size_t inner_len = body - 3, inner_pre = fy_pb_varint_size(inner_len);
        size_t outer_len = 1 + inner_pre + inner_len;
        assert_int_equal(w.len, fy_pb_varint_size(outer_len) + outer_len);
        uint64_t v = 0;
        for (size_t i = 0, sh = 0;; i++, sh += 7) {
            v |= (uint64_t)(out[i] & 0x7F) << sh;
            if (!(out[i] & 0x80))
                break;
        }
        assert_int_equal(v, outer_len);
        fy_body_t b;
        fy_parse_error_t err;
        assert_int_equal(fy_test_parse(fy_parse_protobuf, out, w.len, &b, &err), FY_OK);
        assert_int_equal(b.nfamilies, 1);
        assert_int_equal(b.families[0].nseries, 1);
    }
}

static void test_writer_overflow(void **state)
{
    (void)state;
    char out[8];
    for (size_t cap = 0; cap <= sizeof(out); cap++) {
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, out, cap);
        size_t m = fy_pb_begin(&w, 1);
        fy_pb_put_bytes(&w, 2, "abcd", 4);
        fy_pb_end(&w, m);
        /* 0a 06 12 04 61 62 63 64 = 8 bytes */
        assert_int_equal(w.overflow, cap < 8);
        assert_true(w.len <= cap);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_cases),   cmocka_unit_test(test_truncation),    cmocka_unit_test(test_hex_cases),
        cmocka_unit_test(test_arena),         cmocka_unit_test(test_fixtures),      cmocka_unit_test(test_writer_varint),
        cmocka_unit_test(test_writer_fields), cmocka_unit_test(test_writer_nested), cmocka_unit_test(test_writer_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
