/*
 * render_scrape.c: scrapes in text 0.0.4, delimited protobuf and OpenMetrics 1.0: lock-free reads of the per-family
 * sorted slot arrays under epoch-based reclamation; one stripe lock at a time, briefly, to fold pending changes; the
 * server's own families merged in by name and by series order.
 *
 * Every format renders each series from its stored values and its slot's labels (no pre-rendered text is kept: it
 * would repeat the label strings and was most of the memory); the scrape sorts only the family names.
 */
#include "store_int.h"

#include "fy_num.h"
#include "fy_parse.h"
#include "fy_pb.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct st_out_t {
    char *buf;
    size_t n, cap;
    fy_store_writer_t w;
    void *ctx;
    int rc;
} out_t;

static void out_flush(out_t *o)
{
    if (o->n && o->rc == 0)
        o->rc = o->w(o->ctx, o->buf, o->n);
    o->n = 0;
}

static void out_add(out_t *o, const char *p, size_t n)
{
    while (n && o->rc == 0) {
        size_t k = o->cap - o->n;
        if (k > n)
            k = n;
        memcpy(o->buf + o->n, p, k);
        o->n += k;
        p += k;
        n -= k;
        if (o->n == o->cap)
            out_flush(o);
    }
}

static void out_str(out_t *o, const char *z)
{
    out_add(o, z, strlen(z));
}

/* HELP escaping: backslash and newline. */
static void out_help(out_t *o, const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' || p[i] == '\n') {
            out_add(o, p + start, i - start);
            out_add(o, p[i] == '\\' ? "\\\\" : "\\n", 2);
            start = i + 1;
        }
    }
    out_add(o, p + start, n - start);
}

static int fam_name_cmp(const void *x, const void *y)
{
    const fy__fam_t *a = *(fy__fam_t *const *)x, *b = *(fy__fam_t *const *)y;
    return fy_str_cmp(a->name, b->name);
}

/* The HELP to expose for a pushed family: one variant -> it; several -> that of the group with the smallest canonical
 * key among the groups holding a series of the family (deterministic, unlike the reference; groups holding only an
 * empty family do not take part). Stripe locked and the published array merged, so every slot's group is alive. */
static int choose_help(const fy__fam_t *f, const fy__farr_t *a, const char **help, size_t *len)
{
    if (f->nhv == 1) {
        *help = f->hv[0].h->text;
        *len = f->hv[0].h->len;
        return f->hv[0].h->has_help;
    }
    const fy__group_t *best = NULL;
    for (size_t i = 0; a && i < a->n; i++) {
        const fy__group_t *g = a->v[i]->owner;
        if (best == NULL || (g != best && fy_str_cmp(fy__group_key(g), fy__group_key(best)) < 0))
            best = g;
    }
    const fy__gfam_t *gf = best ? fy__group_gfam(best, f->name) : NULL;
    if (gf == NULL)
        return 0;
    *help = gf->help->text;
    *len = gf->help->len;
    return gf->help->has_help;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* One series' text 0.0.4 lines. key holds the sanitised labels (slot encoding). */

/* Appends one line. Reserves its worst case once, then writes without further checks: a label takes at most
 * name + 2 * value + 4 bytes ('=', quotes, comma; escaping at most doubles the value), and 2 * keylen covers that
 * since each label has at least two length bytes in the key. */
static void render_line(fy__buf_t *b, fy_str_t name, const char *suffix, const char *key, uint32_t keylen, unsigned nlabels,
                        const char *extra, double extra_v, double v)
{
    fy__buf_reserve(b, name.len + 8 + 2 * keylen + 16 + 2 * FY_FLOAT_BUFSZ + 8);
    char *o = b->p + b->n;
    memcpy(o, name.ptr, name.len);
    o += name.len;
    if (suffix) {
        size_t sl = strlen(suffix);
        memcpy(o, suffix, sl);
        o += sl;
    }
    if (nlabels || extra) {
        *o++ = '{';
        const char *p = key;
        fy_str_t n, lv;
        for (unsigned i = 0; i < nlabels; i++) {
            p = fy__slot_label(p, &n, &lv);
            if (i)
                *o++ = ',';
            memcpy(o, n.ptr, n.len);
            o += n.len;
            *o++ = '=';
            *o++ = '"';
            for (size_t k = 0; k < lv.len; k++) {
                char c = lv.ptr[k];
                if (c == '\\' || c == '"') {
                    *o++ = '\\';
                    *o++ = c;
                } else if (c == '\n') {
                    *o++ = '\\';
                    *o++ = 'n';
                } else {
                    *o++ = c;
                }
            }
            *o++ = '"';
        }
        if (extra) {
            if (nlabels)
                *o++ = ',';
            size_t el = strlen(extra);
            memcpy(o, extra, el);
            o += el;
            *o++ = '=';
            *o++ = '"';
            o += fy_format_float_text(extra_v, o);
            *o++ = '"';
        }
        *o++ = '}';
    }
    *o++ = ' ';
    o += fy_format_float_text(v, o);
    *o++ = '\n';
    b->n = (size_t)(o - b->p);
}

void fy__render_series(fy__buf_t *b, fy_str_t name, int type, const char *key, uint32_t keylen, unsigned nlabels,
                       const fy_series_t *se)
{
    switch (type) {
    case FY_TYPE_SUMMARY:
        for (uint32_t i = 0; i < se->npoints; i++)
            render_line(b, name, NULL, key, keylen, nlabels, "quantile", se->points[i].key, se->points[i].value);
        render_line(b, name, "_sum", key, keylen, nlabels, NULL, 0, se->value);
        render_line(b, name, "_count", key, keylen, nlabels, NULL, 0, (double)se->count);
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM: {
        int inf = 0;
        for (uint32_t i = 0; i < se->npoints; i++) {
            render_line(b, name, "_bucket", key, keylen, nlabels, "le", se->points[i].key, (double)se->points[i].count);
            if (se->points[i].key == __builtin_inf())
                inf = 1;
        }
        if (!inf)
            render_line(b, name, "_bucket", key, keylen, nlabels, "le", __builtin_inf(), (double)se->count);
        render_line(b, name, "_sum", key, keylen, nlabels, NULL, 0, se->value);
        render_line(b, name, "_count", key, keylen, nlabels, NULL, 0, (double)se->count);
        break;
    }
    default:
        render_line(b, name, NULL, key, keylen, nlabels, NULL, 0, se->value);
        break;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Scrapes (text 0.0.4, delimited protobuf, OpenMetrics). One driver walks the families in name order, merging the
 * store's families with the server's own ones, and each family's series in exposition order, merging own series
 * into the published slot array; the format only decides how a family header and a series are written. */

enum { FMT_TEXT, FMT_PB, FMT_OM };

typedef struct st_scrape_t {
    int fmt;
    out_t o;
    fy__buf_t line; /* one series rendered (text of own series, OpenMetrics lines, a protobuf Metric) */
    fy__buf_t fam;  /* protobuf: the MetricFamily being built */
    fy__buf_t okey; /* slot key encoding of the current own series */
    fy__buf_t ounesc;
    fy_label_t *olabs;
    size_t cap_olabs;
    fy_str_t name; /* current family (escaped when names are escaped) */
    int type;
    /* --push.enable-utf8-names: utf8 when the store may hold names that are not legacy-valid; then esc says how they
     * are written, qname whether the current family's name is written quoted, and ename holds its escaped form.
     * Without utf8 nothing below is looked at and the output is byte for byte what it always was. */
    int utf8, esc, qname;
    fy__buf_t ename;
} scrape_t;

static void sbuf_add(fy__buf_t *b, const void *p, size_t n)
{
    fy__buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* OpenMetrics numbers: Go's 'g' with ".0" appended when neither '.' nor 'e' is in it; +Inf, -Inf, NaN. */
static void om_float(fy__buf_t *b, double v)
{
    fy__buf_reserve(b, FY_FLOAT_BUFSZ + 2);
    char *o = b->p + b->n;
    size_t n;
    if (v != v) {
        n = 3;
        memcpy(o, "NaN", 3);
    } else if (v == __builtin_inf() || v == -__builtin_inf()) {
        n = 4;
        memcpy(o, v > 0 ? "+Inf" : "-Inf", 4);
    } else {
        n = fy_format_float_g(v, o);
        if (memchr(o, '.', n) == NULL && memchr(o, 'e', n) == NULL) {
            o[n++] = '.';
            o[n++] = '0';
        }
    }
    b->n += n;
}

static void om_u64(fy__buf_t *b, uint64_t v)
{
    fy__buf_reserve(b, 24);
    b->n += fy_format_uint64(v, b->p + b->n);
}

/* OpenMetrics escaping of label values and HELP: backslash, double quote, newline. */
static void om_escaped(fy__buf_t *b, fy_str_t s)
{
    fy__buf_reserve(b, 2 * s.len);
    char *o = b->p + b->n;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '\\' || c == '"') {
            *o++ = '\\';
            *o++ = c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = c;
        }
    }
    b->n = (size_t)(o - b->p);
}

static void om_line(fy__buf_t *b, fy_str_t name, const char *suffix, const char *key, unsigned nlabels, const char *extra,
                    double extra_v, int is_int, double v, uint64_t u)
{
    sbuf_add(b, name.ptr, name.len);
    if (suffix)
        sbuf_add(b, suffix, strlen(suffix));
    if (nlabels || extra) {
        char sep = '{';
        const char *p = key;
        fy_str_t ln, lv;
        for (unsigned i = 0; i < nlabels; i++) {
            p = fy__slot_label(p, &ln, &lv);
            sbuf_add(b, &sep, 1);
            sbuf_add(b, ln.ptr, ln.len);
            sbuf_add(b, "=\"", 2);
            om_escaped(b, lv);
            sbuf_add(b, "\"", 1);
            sep = ',';
        }
        if (extra) {
            sbuf_add(b, &sep, 1);
            sbuf_add(b, extra, strlen(extra));
            sbuf_add(b, "=\"", 2);
            om_float(b, extra_v);
            sbuf_add(b, "\"", 1);
        }
        sbuf_add(b, "}", 1);
    }
    sbuf_add(b, " ", 1);
    if (is_int)
        om_u64(b, u);
    else
        om_float(b, v);
    sbuf_add(b, "\n", 1);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Names that are not legacy-valid (stores with utf8_names only). */

/* model's isValidLegacyRune: i is the rune's byte offset in the name. label: ':' is not legacy either (see
 * put_label_name). */
static int legacy_rune(uint32_t r, size_t i, int label)
{
    return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_' || (r == ':' && !label) || (r >= '0' && r <= '9' && i > 0);
}

/* model.EscapeName(n, esc) for a name that is not legacy-valid, appended to b. Store names are valid UTF-8; a byte
 * that does not decode is taken as U+FFFD, as Go's range loop does. */
static void escape_name(fy__buf_t *b, fy_str_t n, int esc, int label)
{
    if (esc == FY_NAMES_VALUES)
        sbuf_add(b, "U__", 3);
    for (size_t i = 0; i < n.len;) {
        uint32_t r;
        size_t k = fy_utf8_decode((const unsigned char *)n.ptr + i, n.len - i, &r);
        if (k == 0) {
            r = 0xFFFD;
            k = 1;
        }
        char tmp[16];
        if (esc == FY_NAMES_UNDERSCORES) {
            if (legacy_rune(r, i, label))
                sbuf_add(b, n.ptr + i, k);
            else
                sbuf_add(b, "_", 1);
        } else if (esc == FY_NAMES_DOTS) {
            if (r == '_')
                sbuf_add(b, "__", 2);
            else if (r == '.')
                sbuf_add(b, "_dot_", 5);
            else if (legacy_rune(r, i, label))
                sbuf_add(b, n.ptr + i, k);
            else
                sbuf_add(b, "__", 2);
        } else {
            if (r == '_')
                sbuf_add(b, "__", 2);
            else if (legacy_rune(r, i, label))
                sbuf_add(b, n.ptr + i, k);
            else
                sbuf_add(b, tmp, (size_t)snprintf(tmp, sizeof(tmp), "_%x_", (unsigned)r));
        }
        i += k;
    }
}

/* A quoted name's body, as expfmt's writeEscapedString(name, true): backslash, double quote and newline escaped. */
static void quoted_body(fy__buf_t *b, fy_str_t n)
{
    om_escaped(b, n);
}

/* A label name: as it is when legacy-valid, else quoted (allow-utf-8) or escaped. Divergence: expfmt tests label
 * names with the metric-name rule, so 1.11 writes a label "a:b" bare, which no text parser (its own included) reads
 * back as a label name; Ferry quotes or escapes ':' in label names. */
static void put_label_name(fy__buf_t *b, fy_str_t n, int esc)
{
    if (fy__label_name_legacy(n)) {
        sbuf_add(b, n.ptr, n.len);
    } else if (esc == FY_NAMES_ALLOW_UTF8) {
        sbuf_add(b, "\"", 1);
        quoted_body(b, n);
        sbuf_add(b, "\"", 1);
    } else {
        escape_name(b, n, esc, 1);
    }
}

/* One text or OpenMetrics sample line of a store with utf8 names: expfmt's writeNameAndLabelPairs, the name inside
 * the braces when quoted. om selects OpenMetrics number formatting (is_int/u as in om_line). */
static void utf8_line(const scrape_t *S, fy__buf_t *b, int om, const char *suffix, const char *key, unsigned nlabels,
                      const char *extra, double extra_v, int is_int, double v, uint64_t u)
{
    char sep = '{';
    if (S->qname) {
        sbuf_add(b, "{\"", 2);
        quoted_body(b, S->name);
        if (suffix)
            sbuf_add(b, suffix, strlen(suffix));
        sbuf_add(b, "\"", 1);
        sep = ',';
    } else {
        sbuf_add(b, S->name.ptr, S->name.len);
        if (suffix)
            sbuf_add(b, suffix, strlen(suffix));
    }
    const char *p = key;
    fy_str_t ln, lv;
    for (unsigned i = 0; i < nlabels; i++) {
        p = fy__slot_label(p, &ln, &lv);
        sbuf_add(b, &sep, 1);
        put_label_name(b, ln, S->esc);
        sbuf_add(b, "=\"", 2);
        om_escaped(b, lv);
        sbuf_add(b, "\"", 1);
        sep = ',';
    }
    if (extra) {
        sbuf_add(b, &sep, 1);
        sbuf_add(b, extra, strlen(extra));
        sbuf_add(b, "=\"", 2);
        if (om) {
            om_float(b, extra_v);
        } else {
            fy__buf_reserve(b, FY_FLOAT_BUFSZ);
            b->n += fy_format_float_text(extra_v, b->p + b->n);
        }
        sbuf_add(b, "\"", 1);
        sep = ',';
    }
    if (sep == ',')
        sbuf_add(b, "}", 1);
    sbuf_add(b, " ", 1);
    if (om && is_int) {
        om_u64(b, u);
    } else if (om) {
        om_float(b, v);
    } else {
        fy__buf_reserve(b, FY_FLOAT_BUFSZ);
        b->n += fy_format_float_text(v, b->p + b->n);
    }
    sbuf_add(b, "\n", 1);
}

/* fy__render_series / om_series for a store with utf8 names. */
static void utf8_series(const scrape_t *S, fy__buf_t *b, int om, const char *key, unsigned nlabels, const fy_series_t *se)
{
    switch (S->type) {
    case FY_TYPE_SUMMARY:
        for (uint32_t i = 0; i < se->npoints; i++)
            utf8_line(S, b, om, NULL, key, nlabels, "quantile", se->points[i].key, 0, se->points[i].value, 0);
        utf8_line(S, b, om, "_sum", key, nlabels, NULL, 0, 0, se->value, 0);
        utf8_line(S, b, om, "_count", key, nlabels, NULL, 0, 1, (double)se->count, se->count);
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM: {
        int inf = 0;
        for (uint32_t i = 0; i < se->npoints; i++) {
            utf8_line(S, b, om, "_bucket", key, nlabels, "le", se->points[i].key, 1, (double)se->points[i].count,
                      se->points[i].count);
            if (se->points[i].key == __builtin_inf())
                inf = 1;
        }
        if (!inf)
            utf8_line(S, b, om, "_bucket", key, nlabels, "le", __builtin_inf(), 1, (double)se->count, se->count);
        utf8_line(S, b, om, "_sum", key, nlabels, NULL, 0, 0, se->value, 0);
        utf8_line(S, b, om, "_count", key, nlabels, NULL, 0, 1, (double)se->count, se->count);
        break;
    }
    default:
        utf8_line(S, b, om, NULL, key, nlabels, NULL, 0, 0, se->value, 0);
        break;
    }
}

/* Whether every label name of a series key is written bare: then the classic line writers serve (they are several
 * times faster than utf8_line, and most series of a store with utf8 names still have only classic names). */
static int key_names_legacy(const char *key, unsigned nlabels)
{
    const char *p = key;
    fy_str_t n, v;
    for (unsigned i = 0; i < nlabels; i++) {
        p = fy__slot_label(p, &n, &v);
        if (!fy__label_name_legacy(n))
            return 0;
    }
    return 1;
}

/* The family's name as the scrape writes it: sets S->name (escaped into S->ename when needed) and S->qname. */
static void utf8_family_name(scrape_t *S, fy_str_t name)
{
    S->qname = 0;
    S->name = name;
    if (S->fmt == FMT_PB || fy__metric_name_legacy(name))
        return; /* delimited protobuf carries names unescaped, as client_golang's encoder does */
    if (S->esc == FY_NAMES_ALLOW_UTF8) {
        S->qname = 1;
        return;
    }
    S->ename.n = 0;
    escape_name(&S->ename, name, S->esc, 0);
    S->name = fy_str(S->ename.p, S->ename.n);
}

/* A name in a HELP or TYPE line. */
static void put_family_name(const scrape_t *S, fy__buf_t *b, fy_str_t name)
{
    if (S->qname) {
        sbuf_add(b, "\"", 1);
        quoted_body(b, name);
        sbuf_add(b, "\"", 1);
    } else {
        sbuf_add(b, name.ptr, name.len);
    }
}

static void om_series(fy__buf_t *b, fy_str_t name, int type, const char *key, unsigned nlabels, const fy_series_t *se)
{
    switch (type) {
    case FY_TYPE_SUMMARY:
        for (uint32_t i = 0; i < se->npoints; i++)
            om_line(b, name, NULL, key, nlabels, "quantile", se->points[i].key, 0, se->points[i].value, 0);
        om_line(b, name, "_sum", key, nlabels, NULL, 0, 0, se->value, 0);
        om_line(b, name, "_count", key, nlabels, NULL, 0, 1, 0, se->count);
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM: {
        int inf = 0;
        for (uint32_t i = 0; i < se->npoints; i++) {
            om_line(b, name, "_bucket", key, nlabels, "le", se->points[i].key, 1, 0, se->points[i].count);
            inf |= se->points[i].key == __builtin_inf();
        }
        if (!inf)
            om_line(b, name, "_bucket", key, nlabels, "le", __builtin_inf(), 1, 0, se->count);
        om_line(b, name, "_sum", key, nlabels, NULL, 0, 0, se->value, 0);
        om_line(b, name, "_count", key, nlabels, NULL, 0, 1, 0, se->count);
        break;
    }
    default:
        om_line(b, name, NULL, key, nlabels, NULL, 0, 0, se->value, 0);
        break;
    }
}

/* One io.prometheus.client.Metric (fields in number order, as Go marshals them). */
static void pb_metric(fy__buf_t *b, int type, const char *key, uint32_t keylen, unsigned nlabels, const fy_series_t *se)
{
    /* upper bound: per label two tags, three lengths and the bytes; per point two tags, a length and 18 bytes */
    size_t need = 3 * (size_t)keylen + 16 * (size_t)nlabels + 32 * (size_t)se->npoints + se->pb_histogram.len + 96;
    b->n = 0;
    fy__buf_reserve(b, need);
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, b->p, b->cap);
    const char *p = key;
    fy_str_t ln, lv;
    for (unsigned i = 0; i < nlabels; i++) {
        p = fy__slot_label(p, &ln, &lv);
        size_t m = fy_pb_begin(&w, 1);
        fy_pb_put_bytes(&w, 1, ln.ptr, ln.len);
        fy_pb_put_bytes(&w, 2, lv.ptr, lv.len);
        fy_pb_end(&w, m);
    }
    size_t m;
    switch (type) {
    case FY_TYPE_SUMMARY:
        m = fy_pb_begin(&w, 4);
        fy_pb_put_uint64(&w, 1, se->count);
        fy_pb_put_double(&w, 2, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            size_t q = fy_pb_begin(&w, 3);
            fy_pb_put_double(&w, 1, se->points[i].key);
            fy_pb_put_double(&w, 2, se->points[i].value);
            fy_pb_end(&w, q);
        }
        fy_pb_end(&w, m);
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM:
        if (se->pb_histogram.len) { /* native histogram fields: the pushed message as it was */
            fy_pb_put_bytes(&w, 7, se->pb_histogram.ptr, se->pb_histogram.len);
            break;
        }
        m = fy_pb_begin(&w, 7);
        fy_pb_put_uint64(&w, 1, se->count);
        fy_pb_put_double(&w, 2, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            size_t q = fy_pb_begin(&w, 3);
            fy_pb_put_uint64(&w, 1, se->points[i].count);
            fy_pb_put_double(&w, 2, se->points[i].key);
            fy_pb_end(&w, q);
        }
        fy_pb_end(&w, m);
        break;
    default:
        m = fy_pb_begin(&w, type == FY_TYPE_COUNTER ? 3 : type == FY_TYPE_GAUGE ? 2 : 5);
        fy_pb_put_double(&w, 1, se->value);
        fy_pb_end(&w, m);
        break;
    }
    assert(!w.overflow);
    b->n = w.len;
}

static int has_total_suffix(fy_str_t n)
{
    return n.len > 6 && memcmp(n.ptr + n.len - 6, "_total", 6) == 0;
}

static void family_begin(scrape_t *S, fy_str_t name, int type, int has_help, const char *help, size_t help_len)
{
    S->name = name;
    S->type = type;
    out_t *o = &S->o;
    if (S->utf8) {
        utf8_family_name(S, name);
        name = S->name;
    }
    if (S->fmt == FMT_TEXT && S->qname) {
        fy__buf_t *b = &S->line;
        b->n = 0;
        if (has_help) {
            sbuf_add(b, "# HELP ", 7);
            put_family_name(S, b, name);
            sbuf_add(b, " ", 1);
            out_add(o, b->p, b->n);
            out_help(o, help, help_len);
            out_add(o, "\n", 1);
            b->n = 0;
        }
        sbuf_add(b, "# TYPE ", 7);
        put_family_name(S, b, name);
        sbuf_add(b, " ", 1);
        out_add(o, b->p, b->n);
        out_str(o, fy__type_lower(type));
        out_add(o, "\n", 1);
    } else if (S->fmt == FMT_TEXT) {
        if (has_help) {
            out_str(o, "# HELP ");
            out_add(o, name.ptr, name.len);
            out_add(o, " ", 1);
            out_help(o, help, help_len);
            out_add(o, "\n", 1);
        }
        out_str(o, "# TYPE ");
        out_add(o, name.ptr, name.len);
        out_add(o, " ", 1);
        out_str(o, fy__type_lower(type));
        out_add(o, "\n", 1);
    } else if (S->fmt == FMT_OM) {
        fy_str_t shortn = name;
        const char *t;
        switch (type) {
        case FY_TYPE_COUNTER:
            t = has_total_suffix(name) ? "counter" : "unknown";
            if (has_total_suffix(name))
                shortn.len -= 6;
            break;
        case FY_TYPE_GAUGE:
            t = "gauge";
            break;
        case FY_TYPE_SUMMARY:
            t = "summary";
            break;
        case FY_TYPE_HISTOGRAM:
        case FY_TYPE_GAUGE_HISTOGRAM:
            t = "histogram";
            break;
        default:
            t = "unknown";
            break;
        }
        fy__buf_t *b = &S->line;
        b->n = 0;
        if (has_help) {
            sbuf_add(b, "# HELP ", 7);
            put_family_name(S, b, shortn);
            sbuf_add(b, " ", 1);
            om_escaped(b, fy_str(help, help_len));
            sbuf_add(b, "\n", 1);
        }
        sbuf_add(b, "# TYPE ", 7);
        put_family_name(S, b, shortn);
        sbuf_add(b, " ", 1);
        sbuf_add(b, t, strlen(t));
        sbuf_add(b, "\n", 1);
        out_add(o, b->p, b->n);
    } else {
        fy__buf_t *b = &S->fam;
        b->n = 0;
        fy__buf_reserve(b, name.len + help_len + 32);
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, b->p, b->cap);
        fy_pb_put_bytes(&w, 1, name.ptr, name.len);
        if (has_help)
            fy_pb_put_bytes(&w, 2, help, help_len);
        fy_pb_put_uint64(&w, 3, (uint64_t)type);
        assert(!w.overflow);
        b->n = w.len;
    }
}

/* One series (labels in slot key encoding). */
static void family_series(scrape_t *S, const char *key, uint32_t keylen, unsigned nlabels, const fy_series_t *se)
{
    if (S->utf8 && S->fmt != FMT_PB && (S->qname || !key_names_legacy(key, nlabels))) {
        S->line.n = 0;
        utf8_series(S, &S->line, S->fmt == FMT_OM, key, nlabels, se);
        out_add(&S->o, S->line.p, S->line.n);
    } else if (S->fmt == FMT_TEXT) {
        S->line.n = 0;
        fy__render_series(&S->line, S->name, S->type, key, keylen, nlabels, se);
        out_add(&S->o, S->line.p, S->line.n);
    } else if (S->fmt == FMT_OM) {
        S->line.n = 0;
        om_series(&S->line, S->name, S->type, key, nlabels, se);
        out_add(&S->o, S->line.p, S->line.n);
    } else {
        pb_metric(&S->line, S->type, key, keylen, nlabels, se);
        char hdr[1 + FY_PB_VARINT_MAX];
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, hdr, sizeof(hdr));
        fy_pb_put_tag(&w, 4, FY_PB_LEN);
        fy_pb_put_varint(&w, S->line.n);
        sbuf_add(&S->fam, hdr, w.len);
        sbuf_add(&S->fam, S->line.p, S->line.n);
    }
}

static void family_end(scrape_t *S)
{
    if (S->fmt == FMT_PB) {
        char hdr[FY_PB_VARINT_MAX];
        fy_pb_writer_t w;
        fy_pb_writer_init(&w, hdr, sizeof(hdr));
        fy_pb_put_varint(&w, S->fam.n);
        out_add(&S->o, hdr, w.len);
        out_add(&S->o, S->fam.p, S->fam.n);
    }
}

/* Builds the slot key encoding of an own series (labels sorted by name, values unescaped) in S->okey, and its
 * label count and key length in *hdr. */
static void own_key(scrape_t *S, const fy_series_t *se, fy__slot_t *hdr)
{
    if (se->nlabels > S->cap_olabs) {
        S->cap_olabs = 2 * se->nlabels;
        S->olabs = realloc(S->olabs, S->cap_olabs * sizeof(*S->olabs));
        if (S->olabs == NULL)
            abort();
    }
    fy_label_t *l = S->olabs;
    size_t bytes = 0;
    for (uint32_t i = 0; i < se->nlabels; i++)
        bytes += se->labels[i].value.len;
    S->ounesc.n = 0;
    fy__buf_reserve(&S->ounesc, bytes);
    for (uint32_t i = 0; i < se->nlabels; i++) {
        l[i] = se->labels[i];
        if (l[i].value_esc != FY_ESC_NONE) {
            size_t n = fy_unescape(l[i].value, (fy_esc_t)l[i].value_esc, S->ounesc.p + S->ounesc.n);
            l[i].value = fy_str(S->ounesc.p + S->ounesc.n, n);
            S->ounesc.n += n;
        }
        size_t j = i;
        fy_label_t t = l[i];
        for (; j > 0 && fy_str_cmp(l[j - 1].name, t.name) > 0; j--)
            l[j] = l[j - 1];
        l[j] = t;
    }
    S->okey.n = 0;
    for (uint32_t i = 0; i < se->nlabels; i++) {
        uint32_t nl = (uint32_t)l[i].name.len, vl = (uint32_t)l[i].value.len;
        char lens[10];
        size_t ln = fy__key_put_len(lens, nl);
        ln += fy__key_put_len(lens + ln, vl);
        sbuf_add(&S->okey, lens, ln);
        sbuf_add(&S->okey, l[i].name.ptr, nl);
        sbuf_add(&S->okey, l[i].value.ptr, vl);
    }
    memset(hdr, 0, sizeof(*hdr));
    hdr->keylen = (uint32_t)S->okey.n;
    hdr->nlabels = (uint16_t)se->nlabels;
}

static int own_fam_cmp(const void *x, const void *y)
{
    const fy_family_t *a = *(const fy_family_t *const *)x, *b = *(const fy_family_t *const *)y;
    return fy_str_cmp(a->name, b->name);
}

static int render_scrape(fy_store_t *s, const fy_body_t *own, int fmt, int esc, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    scrape_t S;
    memset(&S, 0, sizeof(S));
    S.fmt = fmt;
    S.utf8 = s->cfg.utf8_names;
    S.esc = esc;
    S.o.cap = chunk_size ? chunk_size : 65536;
    S.o.buf = malloc(S.o.cap);
    S.o.w = w;
    S.o.ctx = wctx;
    if (S.o.buf == NULL)
        return FY_SERR_NOMEM;
    fy_point_t *pts = NULL; /* a series' points, copied out of its record */
    size_t cap_pts = 0;
    unsigned r = fy__ebr_enter(s);
    fy__fam_t **fams = NULL;
    size_t nf = 0, capf = 0;
    for (uint32_t i = 0; i < s->cfg.nstripes; i++) {
        fy__stripe_t *st = &s->stripes[i];
        fy__stripe_lock(s, st);
        if (nf + st->nfams > capf) {
            capf = 2 * (nf + st->nfams) + 16;
            fams = realloc(fams, capf * sizeof(*fams));
            if (fams == NULL)
                abort();
        }
        for (size_t b = 0; b < st->nbuckets; b++)
            for (fy__fam_t *f = st->buckets[b]; f; f = f->next)
                fams[nf++] = f;
        fy__stripe_unlock(s, st);
    }
    if (nf > 1)
        qsort(fams, nf, sizeof(*fams), fam_name_cmp);
    /* own families by name (the server sorts them; sorting a sorted list of pointers is cheap insurance) */
    size_t no = own ? own->nfamilies : 0;
    const fy_family_t **ofams = malloc((no + 1) * sizeof(*ofams));
    if (ofams == NULL)
        abort();
    for (size_t i = 0; i < no; i++)
        ofams[i] = &own->families[i];
    if (no > 1)
        qsort(ofams, no, sizeof(*ofams), own_fam_cmp);
    char *helpcopy = NULL;
    size_t helpcap = 0;
    size_t fi = 0, oi = 0;
    while ((fi < nf || oi < no) && S.o.rc == 0) {
        fy__fam_t *f = NULL;
        const fy_family_t *of = NULL;
        int c = fi == nf ? 1 : oi == no ? -1 : fy_str_cmp(fams[fi]->name, ofams[oi]->name);
        if (c <= 0)
            f = fams[fi++];
        if (c >= 0)
            of = ofams[oi++];
        const char *help = NULL;
        size_t help_len = 0;
        int has_help = 0, type = FY_TYPE_UNTYPED;
        fy__farr_t *a = NULL;
        if (f) {
            fy__stripe_t *st = &s->stripes[f->hash & (s->cfg.nstripes - 1)];
            fy__stripe_lock(s, st);
            if (f->dropped) {
                fy__stripe_unlock(s, st);
                f = NULL;
                if (of == NULL)
                    continue;
            }
        }
        if (f) {
            fy__stripe_t *st = &s->stripes[f->hash & (s->cfg.nstripes - 1)];
            fy__fam_merge(s, st, f);
            a = atomic_load(&f->published);
            if (f->own) {
                has_help = 1;
                help = f->own_help.ptr;
                help_len = f->own_help.len;
                type = f->own_type;
            } else {
                has_help = choose_help(f, a, &help, &help_len);
                type = f->type;
                if (has_help) {                                   /* the variant may go away once we unlock */
                    if (help_len > helpcap || helpcopy == NULL) { /* never NULL: memcpy(NULL, p, 0) is undefined */
                        helpcap = help_len ? help_len : 1;
                        helpcopy = realloc(helpcopy, helpcap);
                        if (helpcopy == NULL)
                            abort();
                    }
                    memcpy(helpcopy, help, help_len);
                    help = helpcopy;
                }
            }
            fy__stripe_unlock(s, st);
        }
        size_t n = a ? a->n : 0, on = of ? of->nseries : 0;
        if (n == 0 && on == 0)
            continue;
        if (on) {
            has_help = of->has_help;
            help = of->help.ptr;
            help_len = of->help.len;
            type = of->type;
            if (of->has_help && of->help_esc != FY_ESC_NONE) {
                fy__buf_reserve(&S.ounesc, of->help.len);
                help_len = fy_unescape(of->help, (fy_esc_t)of->help_esc, S.ounesc.p);
                if (help_len > helpcap || helpcopy == NULL) {
                    helpcap = help_len ? help_len : 1;
                    helpcopy = realloc(helpcopy, helpcap);
                    if (helpcopy == NULL)
                        abort();
                }
                memcpy(helpcopy, S.ounesc.p, help_len);
                help = helpcopy;
            }
        }
        family_begin(&S, f ? f->name : of->name, type, has_help, help, help_len);
        size_t k = 0, ok = 0;
        fy__slot_t ohdr;
        if (ok < on)
            own_key(&S, &of->series[ok], &ohdr);
        while ((k < n || ok < on) && S.o.rc == 0) {
            const fy__slot_t *sl = k < n ? a->v[k] : NULL;
            int take_own = ok < on;
            if (take_own && sl) {
                /* fy__slot_cmp's order; the own key lives in S.okey, not after a slot header */
                fy_str_t na, va, nb, vb;
                if (ohdr.nlabels != sl->nlabels) {
                    take_own = ohdr.nlabels < sl->nlabels;
                } else {
                    int cmp = 0;
                    const char *pa = S.okey.p, *pb = sl->key;
                    for (unsigned i = 0; i < sl->nlabels && cmp == 0; i++) {
                        pa = fy__slot_label(pa, &na, &va);
                        pb = fy__slot_label(pb, &nb, &vb);
                        cmp = fy_str_cmp(va, vb);
                    }
                    pa = S.okey.p, pb = sl->key;
                    for (unsigned i = 0; i < sl->nlabels && cmp == 0; i++) {
                        pa = fy__slot_label(pa, &na, &va);
                        pb = fy__slot_label(pb, &nb, &vb);
                        cmp = fy_str_cmp(na, nb);
                    }
                    take_own = cmp <= 0;
                }
            }
            if (take_own) {
                family_series(&S, S.okey.p, ohdr.keylen, ohdr.nlabels, &of->series[ok]);
                if (++ok < on)
                    own_key(&S, &of->series[ok], &ohdr);
                continue;
            }
            if (k + 8 < n)
                __builtin_prefetch(a->v[k + 8]);
            if (k + 4 < n) {
                const fy__rec_t *pr = atomic_load_explicit(&a->v[k + 4]->cur, memory_order_acquire);
                __builtin_prefetch(pr);
            }
            const fy__rec_t *rec = atomic_load_explicit(&sl->cur, memory_order_acquire);
            fy_series_t se;
            memset(&se, 0, sizeof(se));
            se.npoints = rec->npoints;
            if (rec->npoints > cap_pts) {
                cap_pts = 2 * rec->npoints;
                pts = realloc(pts, cap_pts * sizeof(*pts));
                if (pts == NULL)
                    abort();
            }
            fy__rec_read(rec, &se.value, &se.count, pts); /* pushes rewrite records in place */
            se.points = pts;
            se.pb_histogram = fy__rec_pbh(rec);
            family_series(&S, sl->key, sl->keylen, sl->nlabels, &se);
            k++;
        }
        family_end(&S);
    }
    if (fmt == FMT_OM)
        out_str(&S.o, "# EOF\n");
    out_flush(&S.o);
    fy__ebr_leave(s, r);
    free(pts);
    free(helpcopy);
    free(fams);
    free(ofams);
    free(S.o.buf);
    free(S.line.p);
    free(S.fam.p);
    free(S.okey.p);
    free(S.ounesc.p);
    free(S.ename.p);
    free(S.olabs);
    return S.o.rc;
}

int fy_store_render_text(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_TEXT, FY_NAMES_UNDERSCORES, chunk_size, w, wctx);
}

int fy_store_render_protobuf(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_PB, FY_NAMES_UNDERSCORES, chunk_size, w, wctx);
}

int fy_store_render_openmetrics(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_OM, FY_NAMES_UNDERSCORES, chunk_size, w, wctx);
}

int fy_store_render_text_esc(fy_store_t *s, const fy_body_t *own, fy_name_escaping_t esc, size_t chunk_size, fy_store_writer_t w,
                             void *wctx)
{
    return render_scrape(s, own, FMT_TEXT, (int)esc, chunk_size, w, wctx);
}

int fy_store_render_openmetrics_esc(fy_store_t *s, const fy_body_t *own, fy_name_escaping_t esc, size_t chunk_size,
                                    fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_OM, (int)esc, chunk_size, w, wctx);
}
