/*
 * render_json.c: the /api/v1/metrics JSON, written in parts by a cursor (fy_store_json_next) so that a large store
 * is sent without holding a shard lock for long: each group is rendered into a buffer under its shard lock and
 * flushed after unlocking.
 */
#include "store_int.h"

#include "fy_num.h"
#include "fy_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
    int n = snprintf(out, sizeof(out), "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
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
    fy__gref_t *refs; /* the groups as of fy_store_json_open, sorted */
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
    c->refs = fy__collect_refs(s, &c->n);
    return c;
}

void fy_store_json_close(fy_store_json_t *c)
{
    if (c == NULL)
        return;
    fy__free_refs(c->refs, c->n);
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
    c->keys = fy__grow(c->keys, &c->cap_keys, nk, sizeof(*c->keys));
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
    c->cur = fy__grow(c->cur, &c->cap_cur, name.len + 1, 1);
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
    c->lv = fy__grow(c->lv, &c->cap_lv, nl + 1, sizeof(*c->lv));
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
    c->tl = fy__grow(c->tl, &c->cap_tl, v->nlabels + 2, sizeof(*c->tl));
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
        const fy__gref_t *r = &c->refs[c->gi];
        fy__shard_t *sh = &c->s->shards[r->hash & (c->s->cfg.nshards - 1)];
        fy__shard_lock(c->s, sh);
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
        fy__shard_unlock(c->s, sh);
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
