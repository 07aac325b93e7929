/*
 * render.c: the store's outputs: scrapes in text 0.0.4, delimited protobuf and OpenMetrics 1.0 (lock-free reads of
 * the per-family sorted slot arrays under epoch-based reclamation; one stripe lock at a time, briefly, to fold pending
 * changes; the server's own families merged in by name and by series order), the /api/v1/metrics JSON, and the
 * read-only group iteration that JSON and other consumers use (one shard lock at a time).
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
    fy_str_t name; /* current family */
    int type;
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

static void om_line(fy__buf_t *b, fy_str_t name, const char *suffix, const char *key, unsigned nlabels,
                    const char *extra, double extra_v, int is_int, double v, uint64_t u)
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
    if (S->fmt == FMT_TEXT) {
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
            sbuf_add(b, shortn.ptr, shortn.len);
            sbuf_add(b, " ", 1);
            om_escaped(b, fy_str(help, help_len));
            sbuf_add(b, "\n", 1);
        }
        sbuf_add(b, "# TYPE ", 7);
        sbuf_add(b, shortn.ptr, shortn.len);
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
    if (S->fmt == FMT_TEXT) {
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

static int render_scrape(fy_store_t *s, const fy_body_t *own, int fmt, size_t chunk_size, fy_store_writer_t w,
                         void *wctx)
{
    scrape_t S;
    memset(&S, 0, sizeof(S));
    S.fmt = fmt;
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
        pthread_mutex_lock(&st->lock);
        if (nf + st->nfams > capf) {
            capf = 2 * (nf + st->nfams) + 16;
            fams = realloc(fams, capf * sizeof(*fams));
            if (fams == NULL)
                abort();
        }
        for (size_t b = 0; b < st->nbuckets; b++)
            for (fy__fam_t *f = st->buckets[b]; f; f = f->next)
                fams[nf++] = f;
        pthread_mutex_unlock(&st->lock);
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
            pthread_mutex_lock(&st->lock);
            if (f->dropped) {
                pthread_mutex_unlock(&st->lock);
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
                if (has_help) { /* the variant may go away once we unlock */
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
            pthread_mutex_unlock(&st->lock);
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
    free(S.olabs);
    return S.o.rc;
}

int fy_store_render_text(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_TEXT, chunk_size, w, wctx);
}

int fy_store_render_protobuf(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    return render_scrape(s, own, FMT_PB, chunk_size, w, wctx);
}

int fy_store_render_openmetrics(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w,
                                void *wctx)
{
    return render_scrape(s, own, FMT_OM, chunk_size, w, wctx);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Group iteration. */

typedef struct st_gref_t {
    char *key;
    size_t len;
    uint64_t hash;
} gref_t;

static int gref_cmp(const void *x, const void *y)
{
    const gref_t *a = x, *b = y;
    return fy_str_cmp(fy_str(a->key, a->len), fy_str(b->key, b->len));
}

/* Builds the view of one group (shard locked). Scratch arrays are reused across groups. */
typedef struct st_view_scratch_t {
    fy_store_family_view_t *fv;
    size_t cap_fv;
    fy_store_series_view_t *sv;
    size_t cap_sv;
    fy_store_label_t *lv;
    size_t cap_lv;
    fy__view_labels_t gl; /* the grouping labels */
} view_scratch_t;

static void *grow(void *p, size_t *cap, size_t need, size_t sz)
{
    if (need > *cap) {
        *cap = need * 2;
        p = realloc(p, *cap * sz);
        if (p == NULL)
            abort();
    }
    return p;
}

/* The view of group g (its shard locked). Series are included family by family while their labels total at most
 * max_labels (the group's first series always; SIZE_MAX: all, as fy_store_foreach_group); a family's nviewed says how
 * many of its series are in the view. heads_only: no families at all. */
static void build_view(const fy_store_t *s, const fy__group_t *g, view_scratch_t *vs, fy_store_group_view_t *v,
                       size_t max_labels, int heads_only)
{
    fy__group_view_head(s, g, &vs->gl, v);
    v->nfamilies = 0;
    v->families = NULL;
    if (heads_only)
        return;
    size_t ns = 0, nl = 0;
    int full = 0;
    for (uint32_t i = 0; i < g->nfams && !full; i++)
        for (uint32_t k = 0; k < g->fams[i]->nrecs; k++) {
            size_t l = fy__gfam_recs(g->fams[i])[k].slot->nlabels;
            if (ns > 0 && nl + l > max_labels) {
                full = 1;
                break;
            }
            ns++;
            nl += l;
        }
    vs->fv = grow(vs->fv, &vs->cap_fv, g->nfams + 1, sizeof(*vs->fv));
    vs->sv = grow(vs->sv, &vs->cap_sv, ns + 1, sizeof(*vs->sv));
    vs->lv = grow(vs->lv, &vs->cap_lv, nl + 1, sizeof(*vs->lv));
    size_t si = 0, li = 0;
    for (uint32_t i = 0; i < g->nfams; i++) {
        const fy__gfam_t *gf = g->fams[i];
        fy_store_family_view_t *f = &vs->fv[i];
        f->name = fy__gfam_name(gf);
        f->help = fy__help_str(gf->help);
        f->has_help = gf->help->has_help;
        f->type = gf->type;
        f->stamp_ns = gf->stamp_ns;
        f->nseries = gf->nrecs;
        f->series = vs->sv + si;
        f->nviewed = 0;
        for (uint32_t k = 0; k < gf->nrecs && si < ns; k++) {
            const fy__rec_t *rec = &fy__gfam_recs(gf)[k];
            fy_store_series_view_t *sv = &vs->sv[si++];
            sv->labels = vs->lv + li;
            sv->nlabels = rec->slot->nlabels;
            const char *p = rec->slot->key;
            for (unsigned j = 0; j < rec->slot->nlabels; j++, li++)
                p = fy__slot_label(p, &vs->lv[li].name, &vs->lv[li].value);
            sv->npoints = rec->npoints;
            sv->points = fy__rec_points(rec);
            sv->value = rec->value;
            sv->count = rec->count;
            sv->pb_histogram = fy__rec_pbh(rec);
            f->nviewed++;
        }
    }
    v->nfamilies = g->nfams;
    v->families = vs->fv;
}

/* The groups' sorted grouping keys, copied one shard lock at a time. */
static gref_t *collect_refs(fy_store_t *s, size_t *np)
{
    gref_t *refs = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        refs = grow(refs, &cap, n + sh->ngroups + 1, sizeof(*refs));
        for (size_t b = 0; b < sh->nbuckets; b++)
            if (fy__gt_live(sh->buckets[b])) {
                const fy__group_t *g = fy__gt_group(sh->buckets[b]);
                refs[n].key = malloc(g->keylen + 1);
                if (refs[n].key == NULL)
                    abort();
                memcpy(refs[n].key, fy__group_key(g).ptr, g->keylen);
                refs[n].len = g->keylen;
                refs[n].hash = g->hash;
                n++;
            }
        pthread_mutex_unlock(&sh->lock);
    }
    if (n > 1)
        qsort(refs, n, sizeof(*refs), gref_cmp);
    *np = n;
    return refs;
}

static void free_refs(gref_t *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(refs[i].key);
    free(refs);
}

static int foreach_internal(fy_store_t *s, fy_store_group_cb_t cb, void *ctx)
{
    size_t n;
    gref_t *refs = collect_refs(s, &n);
    view_scratch_t vs = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        fy__shard_t *sh = &s->shards[refs[i].hash & (s->cfg.nshards - 1)];
        pthread_mutex_lock(&sh->lock);
        fy__group_t *g = fy__group_find(sh, refs[i].hash, fy_str(refs[i].key, refs[i].len));
        if (g) {
            fy_store_group_view_t v;
            build_view(s, g, &vs, &v, SIZE_MAX, 0);
            rc = cb(ctx, &v);
        }
        pthread_mutex_unlock(&sh->lock);
    }
    free_refs(refs, n);
    free(vs.fv);
    free(vs.sv);
    free(vs.lv);
    fy__view_labels_free(&vs.gl);
    return rc;
}

int fy_store_foreach_group(fy_store_t *s, fy_store_group_cb_t cb, void *ctx)
{
    return foreach_internal(s, cb, ctx);
}

struct st_fy_store_cursor_t {
    fy_store_t *s;
    gref_t *refs;
    size_t n;
    view_scratch_t vs;
};

fy_store_cursor_t *fy_store_cursor_open(fy_store_t *s)
{
    fy_store_cursor_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->s = s;
    c->refs = collect_refs(s, &c->n);
    return c;
}

size_t fy_store_cursor_count(const fy_store_cursor_t *c)
{
    return c->n;
}

int fy_store_cursor_view(fy_store_cursor_t *c, size_t i, size_t max_labels, fy_store_group_cb_t cb, void *ctx)
{
    if (i >= c->n)
        return 1;
    const gref_t *r = &c->refs[i];
    fy__shard_t *sh = &c->s->shards[r->hash & (c->s->cfg.nshards - 1)];
    pthread_mutex_lock(&sh->lock);
    const fy__group_t *g = fy__group_find(sh, r->hash, fy_str(r->key, r->len));
    if (g != NULL) {
        fy_store_group_view_t v;
        build_view(c->s, g, &c->vs, &v, max_labels, max_labels == 0);
        cb(ctx, &v);
    }
    pthread_mutex_unlock(&sh->lock);
    return g == NULL;
}

void fy_store_cursor_close(fy_store_cursor_t *c)
{
    if (c == NULL)
        return;
    free_refs(c->refs, c->n);
    free(c->vs.fv);
    free(c->vs.sv);
    free(c->vs.lv);
    fy__view_labels_free(&c->vs.gl);
    free(c);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* JSON (/api/v1/metrics). Each group is rendered into a buffer under its shard lock and flushed after unlocking. */

typedef struct st_jbuf_t {
    char *p;
    size_t n, cap;
} jbuf_t;

static void jb_add(jbuf_t *b, const char *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        b->p = realloc(b->p, nc);
        if (b->p == NULL)
            abort();
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void jb_str(jbuf_t *b, const char *z)
{
    jb_add(b, z, strlen(z));
}

size_t fy__utf8_decode(const unsigned char *s, size_t n, uint32_t *rune);

/* A JSON string as Go's encoding/json writes it (HTML-safe; invalid UTF-8 becomes U+FFFD). */
static void jb_quote(jbuf_t *b, fy_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    jb_add(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            jb_add(b, s.ptr + start, i - start);
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                jb_add(b, e, 2);
            } else if (c == '\n') {
                jb_add(b, "\\n", 2);
            } else if (c == '\r') {
                jb_add(b, "\\r", 2);
            } else if (c == '\t') {
                jb_add(b, "\\t", 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                jb_add(b, e, 6);
            }
            i++;
            start = i;
            continue;
        }
        uint32_t r;
        size_t k = fy__utf8_decode((const unsigned char *)s.ptr + i, s.len - i, &r);
        if (k == 0) {
            jb_add(b, s.ptr + start, i - start);
            jb_add(b, "\\ufffd", 6);
            i++;
            start = i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            jb_add(b, s.ptr + start, i - start);
            jb_add(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += k;
            start = i;
            continue;
        }
        i += k;
    }
    jb_add(b, s.ptr + start, s.len - start);
    jb_add(b, "\"", 1);
}

void fy_json_quote(fy_str_t s, char **buf, size_t *len, size_t *cap)
{
    jbuf_t b = {*buf, *len, *cap};
    jb_quote(&b, s);
    *buf = b.p;
    *len = b.n;
    *cap = b.cap;
}

static void jb_num(jbuf_t *b, double v)
{
    char t[FY_FLOAT_BUFSZ + 2];
    t[0] = '"';
    size_t n = fy_format_float_json(v, t + 1);
    t[n + 1] = '"';
    jb_add(b, t, n + 2);
}

static void jb_u64(jbuf_t *b, uint64_t v)
{
    char t[26];
    t[0] = '"';
    size_t n = fy_format_uint64(v, t + 1);
    t[n + 1] = '"';
    jb_add(b, t, n + 2);
}

/* RFC3339Nano in UTC, as Go's time.Format(time.RFC3339Nano): fraction without trailing zeros, none if zero. */
static void jb_time(jbuf_t *b, int64_t ns)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[64];
    int n = snprintf(out, sizeof(out), "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac) {
        char f[16];
        snprintf(f, sizeof(f), ".%09lld", (long long)frac);
        size_t fl = strlen(f);
        while (f[fl - 1] == '0')
            fl--;
        memcpy(out + n, f, fl);
        n += (int)fl;
    }
    memcpy(out + n, "Z\"", 2);
    jb_add(b, out, (size_t)n + 2);
}

static void jb_labels(jbuf_t *b, const fy_store_label_t *l, uint32_t n)
{
    jb_add(b, "{", 1);
    int first = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (i + 1 < n && fy_str_eq(l[i].name, l[i + 1].name))
            continue; /* a Go map keeps one value per key */
        if (!first)
            jb_add(b, ",", 1);
        first = 0;
        jb_quote(b, l[i].name);
        jb_add(b, ":", 1);
        jb_quote(b, l[i].value);
    }
    jb_add(b, "}", 1);
}

typedef struct st_kv_t {
    char k[FY_FLOAT_BUFSZ];
    size_t kl;
    double v;
    uint64_t c;
    size_t idx;
} kv_t;

static int kv_cmp(const void *x, const void *y)
{
    const kv_t *a = x, *b = y;
    int c = fy_str_cmp(fy_str(a->k, a->kl), fy_str(b->k, b->kl));
    if (c)
        return c;
    return a->idx < b->idx ? -1 : 1;
}

/* A map[string]string of points keyed by fmt.Sprint(key), sorted by key; the last of equal keys wins. */
static void jb_points(jbuf_t *b, const fy_point_t *p, uint32_t n, int hist)
{
    kv_t *kv = malloc((n + 1) * sizeof(*kv));
    if (kv == NULL)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        kv[i].kl = fy_format_float_json(p[i].key, kv[i].k);
        kv[i].v = p[i].value;
        kv[i].c = p[i].count;
        kv[i].idx = i;
    }
    if (n > 1)
        qsort(kv, n, sizeof(*kv), kv_cmp);
    jb_add(b, "{", 1);
    int first = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (i + 1 < n && kv[i].kl == kv[i + 1].kl && memcmp(kv[i].k, kv[i + 1].k, kv[i].kl) == 0)
            continue;
        if (!first)
            jb_add(b, ",", 1);
        first = 0;
        jb_add(b, "\"", 1);
        jb_add(b, kv[i].k, kv[i].kl);
        jb_add(b, "\":", 2);
        if (hist)
            jb_u64(b, kv[i].c);
        else
            jb_num(b, kv[i].v);
    }
    jb_add(b, "}", 1);
    free(kv);
}

static const char *const json_types[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"};

/* A family is written as its head, its series and "]}", so that a family of 100k series can span many parts. */
static void jb_family_head(jbuf_t *b, int type, fy_str_t help, int has_help, int64_t stamp_ns)
{
    jb_str(b, "{\"time_stamp\":");
    jb_time(b, stamp_ns);
    jb_str(b, ",\"type\":\"");
    jb_str(b, type <= FY_TYPE_MAX ? json_types[type] : "UNTYPED");
    jb_str(b, "\"");
    if (has_help && help.len) {
        jb_str(b, ",\"help\":");
        jb_quote(b, help);
    }
    jb_str(b, ",\"metrics\":[");
}

static void jb_series(jbuf_t *b, int type, const fy_store_series_view_t *s, int first)
{
    if (!first)
        jb_add(b, ",", 1);
    if (type == FY_TYPE_SUMMARY) {
        jb_str(b, "{\"count\":");
        jb_u64(b, s->count);
        jb_str(b, ",\"labels\":");
        jb_labels(b, s->labels, s->nlabels);
        jb_str(b, ",\"quantiles\":");
        jb_points(b, s->points, s->npoints, 0);
        jb_str(b, ",\"sum\":");
        jb_num(b, s->value);
        jb_add(b, "}", 1);
    } else if (type == FY_TYPE_HISTOGRAM) {
        jb_str(b, "{\"buckets\":");
        jb_points(b, s->points, s->npoints, 1);
        jb_str(b, ",\"count\":");
        jb_u64(b, s->count);
        jb_str(b, ",\"labels\":");
        jb_labels(b, s->labels, s->nlabels);
        jb_str(b, ",\"sum\":");
        jb_num(b, s->value);
        jb_add(b, "}", 1);
    } else {
        jb_str(b, "{\"labels\":");
        jb_labels(b, s->labels, s->nlabels);
        jb_str(b, ",\"value\":");
        jb_num(b, type == FY_TYPE_GAUGE_HISTOGRAM ? 0 : s->value);
        jb_add(b, "}", 1);
    }
}

/*
 * The JSON is produced by a cursor, one part at a time, so that the server can send a response of any size from a
 * buffer of about one part (the /api/v1/metrics body of a store is as large as its text scrape or larger). The cursor
 * copies the sorted grouping keys when it opens (the per-group state), then each part takes one shard lock at a time,
 * finds the group again by its key and writes on from where the last part stopped: between groups, between the
 * members of a group object, or between two series of a family. Nothing of the store is kept across parts except the
 * name of the member in progress and the key list of the group in progress, and the latter only while the group's
 * address and version (raised by every push) are unchanged.
 *
 * A group that changes between two parts of its own object (only a group larger than a part can) goes on from its
 * new version: the member in progress continues at the same series index, the members after it by name. The object
 * is valid JSON and every series in it is whole, but it may mix two versions of the group; a deleted group's object
 * is closed where it stopped. Rendering a whole group under one lock would instead hold that lock, and a copy of the
 * group's JSON, for as long as the group is large.
 */

/* One member of a group object; sorted together with "labels" and "last_push_successful". */
typedef struct st_jkey_t {
    fy_str_t name; /* points into the store: read only while the list is built (a later part writes a family's name
                    * from the group itself, so a stale list can never read freed memory) */
    int kind;      /* 0 labels, 1 last_push_successful, 2 family, 3 push ts, 4 fail ts */
    int shadowed;  /* the next entry has the same name and wins */
    uint32_t fam;  /* kind 2: index into the group's fams */
    size_t order;
} jkey_t;

static int jkey_cmp(const void *x, const void *y)
{
    const jkey_t *a = x, *b = y;
    int c = fy_str_cmp(a->name, b->name);
    if (c)
        return c;
    return a->order < b->order ? -1 : 1;
}

struct st_fy_store_json_t {
    fy_store_t *s;
    gref_t *refs; /* the groups as of fy_store_json_open, sorted */
    size_t n;
    size_t gi; /* the group being written; n once all are */
    jbuf_t b;  /* the part being written */
    int started, done;
    size_t ngroups; /* group objects started (groups deleted before their turn are skipped) */
    /* the group in progress (in_group), written up to keys[ki] (and series si of it when in_fam) */
    int in_group, in_fam;
    const fy__group_t *g; /* identity of keys[] (with the version, family count and stamps, as a group deleted and
                           * created again at the same address could have the same version): compared, never
                           * dereferenced without the shard lock */
    uint64_t version;
    uint32_t nfams;
    int64_t push_stamp_ns, fail_stamp_ns;
    jkey_t *keys;
    size_t nkeys, cap_keys, ki;
    size_t nmembers; /* members written into the group object */
    uint32_t si;
    char *cur; /* name of the last member started (to find the position again in a changed group) */
    size_t cur_len, cap_cur;
    /* scratch */
    fy_store_label_t *lv, *tl;
    size_t cap_lv, cap_tl;
    fy__view_labels_t gl;
};

fy_store_json_t *fy_store_json_open(fy_store_t *s)
{
    fy_store_json_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->s = s;
    c->refs = collect_refs(s, &c->n);
    return c;
}

void fy_store_json_close(fy_store_json_t *c)
{
    if (c == NULL)
        return;
    free_refs(c->refs, c->n);
    free(c->b.p);
    free(c->keys);
    free(c->cur);
    free(c->lv);
    free(c->tl);
    fy__view_labels_free(&c->gl);
    free(c);
}

static void build_keys(fy_store_json_t *c, const fy__group_t *g)
{
    size_t nk = (size_t)g->nfams + 4;
    c->keys = grow(c->keys, &c->cap_keys, nk, sizeof(*c->keys));
    jkey_t *k = c->keys;
    k[0] = (jkey_t){fy_str(FY_STRLIT("labels")), 0, 0, 0, 0};
    k[1] = (jkey_t){fy_str(FY_STRLIT("last_push_successful")), 1, 0, 0, 1};
    k[2] = (jkey_t){fy_str(FY_STRLIT("push_time_seconds")), 3, 0, 0, 2};
    k[3] = (jkey_t){fy_str(FY_STRLIT("push_failure_time_seconds")), 4, 0, 0, 3};
    for (uint32_t i = 0; i < g->nfams; i++)
        k[4 + i] = (jkey_t){fy__gfam_name(g->fams[i]), 2, 0, i, 4 + i};
    qsort(k, nk, sizeof(*k), jkey_cmp);
    /* pushes of such names are rejected (B7 fixed); should one exist, the family wins, as in the reference */
    for (size_t i = 0; i + 1 < nk; i++)
        k[i].shadowed = fy_str_eq(k[i].name, k[i + 1].name);
    c->nkeys = nk;
    c->g = g;
    c->version = g->version;
    c->nfams = g->nfams;
    c->push_stamp_ns = g->push_stamp_ns;
    c->fail_stamp_ns = g->fail_stamp_ns;
}

static void set_cur(fy_store_json_t *c, fy_str_t name)
{
    c->cur = grow(c->cur, &c->cap_cur, name.len + 1, 1);
    memcpy(c->cur, name.ptr, name.len);
    c->cur_len = name.len;
}

/* The group changed (or may have) since the last part: a new key list, and the position found again by name. */
static void reposition(fy_store_json_t *c, const fy__group_t *g)
{
    build_keys(c, g);
    fy_str_t cur = fy_str(c->cur, c->cur_len);
    size_t i = 0;
    if (c->nmembers == 0 && !c->in_fam) {
        c->ki = 0;
        return;
    }
    while (i < c->nkeys && fy_str_cmp(c->keys[i].name, cur) < 0)
        i++;
    if (c->in_fam) {
        /* the last entry of that name is the one written (a family wins over a fixed member of its name) */
        size_t j = i;
        while (j + 1 < c->nkeys && fy_str_eq(c->keys[j + 1].name, cur))
            j++;
        if (j < c->nkeys && fy_str_eq(c->keys[j].name, cur) && c->keys[j].kind == 2) {
            c->ki = j;
            return;
        }
        jb_str(&c->b, "]}"); /* the family went away: close it where it stopped */
        c->in_fam = 0;
    }
    while (i < c->nkeys && fy_str_cmp(c->keys[i].name, cur) <= 0)
        i++;
    c->ki = i;
}

/* The series of rec as a view (its labels decoded into the cursor's scratch). */
static void rec_series(fy_store_json_t *c, const fy__rec_t *rec, fy_store_series_view_t *sv)
{
    unsigned nl = rec->slot->nlabels;
    c->lv = grow(c->lv, &c->cap_lv, nl + 1, sizeof(*c->lv));
    const char *p = rec->slot->key;
    for (unsigned j = 0; j < nl; j++)
        p = fy__slot_label(p, &c->lv[j].name, &c->lv[j].value);
    sv->labels = c->lv;
    sv->nlabels = nl;
    sv->npoints = rec->npoints;
    sv->points = fy__rec_points(rec);
    sv->value = rec->value;
    sv->count = rec->count;
    sv->pb_histogram = fy__rec_pbh(rec);
}

/* push_time_seconds or push_failure_time_seconds: one series, the grouping labels plus instance="" when missing. */
static void jb_ts_family(fy_store_json_t *c, const fy_store_group_view_t *v, int push)
{
    c->tl = grow(c->tl, &c->cap_tl, v->nlabels + 2, sizeof(*c->tl));
    uint32_t ntl = 0;
    int has_inst = 0;
    for (uint32_t i = 0; i < v->nlabels; i++)
        has_inst |= fy_str_eq_mem(v->labels[i].name, FY_STRLIT("instance"));
    for (uint32_t i = 0; i <= v->nlabels; i++) {
        if (!has_inst && (i == v->nlabels || fy_str_cmp(v->labels[i].name, fy_str(FY_STRLIT("instance"))) > 0)) {
            c->tl[ntl++] = (fy_store_label_t){fy_str(FY_STRLIT("instance")), fy_str("", 0)};
            has_inst = 1;
        }
        if (i < v->nlabels)
            c->tl[ntl++] = v->labels[i];
    }
    fy_store_series_view_t sv = {0};
    sv.labels = c->tl;
    sv.nlabels = ntl;
    sv.value = (double)(push ? v->push_ns : v->fail_ns) / 1e9;
    fy_str_t help = push ? fy_str(fy__help_push, strlen(fy__help_push)) : fy_str(fy__help_fail, strlen(fy__help_fail));
    jb_family_head(&c->b, FY_TYPE_GAUGE, help, 1, push ? v->push_stamp_ns : v->fail_stamp_ns);
    jb_series(&c->b, FY_TYPE_GAUGE, &sv, 1);
    jb_str(&c->b, "]}");
}

/* Writes on in group g (its shard locked) until the group object is closed (returns 1) or the part is full (0). */
static int json_group_part(fy_store_json_t *c, const fy__group_t *g, size_t budget)
{
    jbuf_t *b = &c->b;
    if (!c->in_group) {
        jb_add(b, "{", 1);
        build_keys(c, g);
        c->in_group = 1;
        c->ki = 0;
        c->nmembers = 0;
        c->in_fam = 0;
    } else if (g != c->g || g->version != c->version || g->nfams != c->nfams || g->push_stamp_ns != c->push_stamp_ns ||
               g->fail_stamp_ns != c->fail_stamp_ns ||
               (c->in_fam && !fy_str_eq(fy__gfam_name(g->fams[c->keys[c->ki].fam]), fy_str(c->cur, c->cur_len)))) {
        reposition(c, g);
    }
    fy_store_group_view_t v;
    fy__group_view_head(c->s, g, &c->gl, &v);
    while (c->ki < c->nkeys) {
        const jkey_t *k = &c->keys[c->ki];
        if (!c->in_fam) {
            if (k->shadowed) {
                c->ki++;
                continue;
            }
            /* a family's name from the group (k->name may be stale in a list kept from an earlier part) */
            fy_str_t name = k->kind == 2 ? fy__gfam_name(g->fams[k->fam]) : k->name;
            if (c->nmembers++)
                jb_add(b, ",", 1);
            jb_quote(b, name);
            jb_add(b, ":", 1);
            set_cur(c, name);
            switch (k->kind) {
            case 0:
                jb_labels(b, v.labels, v.nlabels);
                break;
            case 1:
                jb_str(b, v.fail_ns > v.push_ns ? "false" : "true");
                break;
            case 2: {
                const fy__gfam_t *gf = g->fams[k->fam];
                jb_family_head(b, gf->type, fy__help_str(gf->help), gf->help->has_help, gf->stamp_ns);
                c->in_fam = 1;
                c->si = 0;
                break;
            }
            default:
                jb_ts_family(c, &v, k->kind == 3);
                break;
            }
        }
        if (c->in_fam) {
            const fy__gfam_t *gf = g->fams[k->fam];
            const fy__rec_t *recs = fy__gfam_recs(gf);
            while (c->si < gf->nrecs) {
                if (b->n >= budget)
                    return 0;
                fy_store_series_view_t sv;
                rec_series(c, &recs[c->si], &sv);
                jb_series(b, gf->type, &sv, c->si == 0);
                c->si++;
            }
            jb_str(b, "]}");
            c->in_fam = 0;
        }
        c->ki++;
        if (b->n >= budget && c->ki < c->nkeys)
            return 0;
    }
    jb_add(b, "}", 1);
    c->in_group = 0;
    return 1;
}

int fy_store_json_next(fy_store_json_t *c, size_t budget, const char **out, size_t *len)
{
    jbuf_t *b = &c->b;
    b->n = 0;
    if (budget == 0)
        budget = 1;
    if (!c->started) {
        jb_str(b, "{\"status\":\"success\",\"data\":[");
        c->started = 1;
    }
    while (c->gi < c->n && b->n < budget) {
        const gref_t *r = &c->refs[c->gi];
        fy__shard_t *sh = &c->s->shards[r->hash & (c->s->cfg.nshards - 1)];
        pthread_mutex_lock(&sh->lock);
        const fy__group_t *g = fy__group_find(sh, r->hash, fy_str(r->key, r->len));
        int closed = 1;
        if (g != NULL) {
            if (!c->in_group && c->ngroups++)
                jb_add(b, ",", 1);
            closed = json_group_part(c, g, budget);
        } else if (c->in_group) { /* deleted while its object was being written: close it where it stopped */
            jb_str(b, c->in_fam ? "]}}" : "}");
            c->in_group = c->in_fam = 0;
        }
        pthread_mutex_unlock(&sh->lock);
        if (closed)
            c->gi++;
    }
    if (c->gi == c->n && !c->done) {
        jb_str(b, "]}");
        c->done = 1;
    }
    *out = b->p;
    *len = b->n;
    return !c->done;
}

int fy_store_render_json(fy_store_t *s, size_t chunk_size, fy_store_writer_t w, void *wctx)
{
    fy_store_json_t *c = fy_store_json_open(s);
    const char *p;
    size_t n;
    int more, rc = 0;
    do {
        more = fy_store_json_next(c, chunk_size ? chunk_size : 65536, &p, &n);
        rc = n ? w(wctx, p, n) : 0;
    } while (more && rc == 0);
    fy_store_json_close(c);
    return rc;
}
