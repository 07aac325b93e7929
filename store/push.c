/*
 * push.c: a push, from its grouping key and parsed body to the group's new values. Preparation (everything that
 * needs no index lock: validation, sanitising labels, the push's shape), the blind path (the group's shape again:
 * values written by position), the fast path (the same series again: values rewritten in place) and the entry point
 * that picks a path and otherwise runs the check (check.c) and applies (apply.c) under the push's stripe locks.
 *
 * This is the push's hot path, kept in one translation unit on purpose: the blind and fast paths, the shape hash
 * and the fast-path checks are inlined into fy_store_push_life as they were before the store was split into files,
 * and what they call elsewhere is inline in store_int.h (group lookup, name checks, reclaim, lifetimes' early
 * exits). Moving any of them to another file would put a call on every push (docs/store.md, "Files").
 *
 * Lock order: the group's shard lock throughout; the stripe locks of the lock set (lockset.c) only on the slow path.
 */
#define _GNU_SOURCE
#include "push_int.h"

#include "fy_parse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------------------------------- */
/* The grouping key, sorted, checked and made canonical. */

static int label_cmp_name(const void *x, const void *y)
{
    const fy_store_label_t *a = x, *b = y;
    return fy_str_cmp(a->name, b->name);
}

/* The canonical grouping key of sorted labels: name 0xFF value, pairs joined by 0xFF. */
static void canonical_key(fy__buf_t *b, const fy_store_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fy__buf_add(b, "\xff", 1);
        fy__buf_add(b, l[i].name.ptr, l[i].name.len);
        fy__buf_add(b, "\xff", 1);
        fy__buf_add(b, l[i].value.ptr, l[i].value.len);
    }
}

int fy__gkey_parse(gkey_t *k, fy__buf_t *mem, const fy_store_label_t *gk, size_t ngk, int utf8)
{
    size_t bytes = 0;
    for (size_t i = 0; i < ngk; i++)
        bytes += gk[i].name.len + gk[i].value.len;
    size_t keylen = bytes + (ngk ? 2 * ngk - 1 : 0);
    mem->n = 0;
    fy__buf_reserve(mem, ngk * sizeof(fy_store_label_t) + 2 * bytes + keylen + 1);
    k->mem = mem->p;
    k->labels = (fy_store_label_t *)k->mem;
    k->n = ngk;
    char *p = k->mem + ngk * sizeof(fy_store_label_t);
    for (size_t i = 0; i < ngk; i++) {
        memcpy(p, gk[i].name.ptr, gk[i].name.len);
        k->labels[i].name = fy_str(p, gk[i].name.len);
        p += gk[i].name.len;
        memcpy(p, gk[i].value.ptr, gk[i].value.len);
        k->labels[i].value = fy_str(p, gk[i].value.len);
        p += gk[i].value.len;
    }
    for (size_t i = 1; i < ngk; i++) /* insertion sort: grouping keys have a handful of labels */
        for (size_t j = i; j > 0 && label_cmp_name(&k->labels[j - 1], &k->labels[j]) > 0; j--) {
            fy_store_label_t t = k->labels[j];
            k->labels[j] = k->labels[j - 1];
            k->labels[j - 1] = t;
        }
    k->valid_utf8 = 1;
    k->has_instance = 0;
    for (size_t i = 0; i < ngk; i++) {
        if (!fy__label_name_valid(k->labels[i].name, utf8) || (i && fy_str_eq(k->labels[i].name, k->labels[i - 1].name))) {
            return FY_SERR_BADARG;
        }
        if (!fy_utf8_valid(k->labels[i].value.ptr, k->labels[i].value.len))
            k->valid_utf8 = 0;
        if (fy_str_eq_mem(k->labels[i].name, FY_STRLIT("instance")))
            k->has_instance = 1;
    }
    fy__buf_t b = {p, 0, keylen + 1};
    canonical_key(&b, k->labels, ngk);
    assert(b.p == p && b.n == keylen);
    k->key = fy_str(p, keylen);
    k->hash = fy__hash(p, keylen);
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* A push's temporary arrays survive in a per-thread cache between pushes, so that a steady stream of pushes does not
 * call malloc for them. Arrays that grew past FY_SCRATCH_KEEP bytes are released after the push. */
#define FY_SCRATCH_KEEP (1u << 20)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    push_t *T = p;
    free(T->scratch.p);
    free(T->err.p);
    free(T->gkmem.p);
    free(T->tmp.p);
    free(T->fams);
    free(T->ser);
    free(T->stripes);
    free(T->labs);
    free(T->idx);
    free(T->gone);
    free(T);
}

static void scratch_key_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_release) != 0)
        abort();
}

/* Moves the thread's cached arrays into P (which must be zeroed). */
void fy__scratch_take(push_t *P)
{
    pthread_once(&scratch_once, scratch_key_init);
    push_t *T = pthread_getspecific(scratch_key);
    if (T == NULL)
        return;
    P->scratch = T->scratch;
    P->err = T->err;
    P->gkmem = T->gkmem;
    P->tmp = T->tmp;
    P->scratch.n = P->err.n = P->gkmem.n = P->tmp.n = 0;
    P->fams = T->fams, P->cap_fams = T->cap_fams;
    P->ser = T->ser, P->cap_ser = T->cap_ser;
    P->stripes = T->stripes, P->cap_stripes = T->cap_stripes;
    P->labs = T->labs, P->cap_labs = T->cap_labs;
    P->idx = T->idx, P->cap_idx = T->cap_idx;
    P->gone = T->gone, P->cap_gone = T->cap_gone;
    memset(T, 0, sizeof(*T));
}

#define KEEP_BUF(b)                                                                                                                \
    do {                                                                                                                           \
        if ((b).cap > FY_SCRATCH_KEEP) {                                                                                           \
            free((b).p);                                                                                                           \
            (b).p = NULL;                                                                                                          \
            (b).cap = 0;                                                                                                           \
        }                                                                                                                          \
    } while (0)

#define KEEP_ARR(a, cap)                                                                                                           \
    do {                                                                                                                           \
        if ((cap) * sizeof(*(a)) > FY_SCRATCH_KEEP) {                                                                              \
            free(a);                                                                                                               \
            (a) = NULL;                                                                                                            \
            (cap) = 0;                                                                                                             \
        }                                                                                                                          \
    } while (0)

/* Gives P's arrays back to the thread's cache. */
void fy__scratch_give(push_t *P)
{
    push_t *T = pthread_getspecific(scratch_key);
    if (T == NULL) {
        T = fy__xcalloc(1, sizeof(*T));
        if (pthread_setspecific(scratch_key, T) != 0)
            abort();
    }
    KEEP_BUF(P->scratch);
    KEEP_BUF(P->err);
    KEEP_BUF(P->gkmem);
    KEEP_BUF(P->tmp);
    KEEP_ARR(P->fams, P->cap_fams);
    KEEP_ARR(P->ser, P->cap_ser);
    KEEP_ARR(P->stripes, P->cap_stripes);
    KEEP_ARR(P->labs, P->cap_labs);
    KEEP_ARR(P->idx, P->cap_idx);
    KEEP_ARR(P->gone, P->cap_gone);
    T->scratch = P->scratch;
    T->err = P->err;
    T->gkmem = P->gkmem;
    T->tmp = P->tmp;
    T->fams = P->fams, T->cap_fams = P->cap_fams;
    T->ser = P->ser, T->cap_ser = P->cap_ser;
    T->stripes = P->stripes, T->cap_stripes = P->cap_stripes;
    T->labs = P->labs, T->cap_labs = P->cap_labs;
    T->idx = P->idx, T->cap_idx = P->cap_idx;
    T->gone = P->gone, T->cap_gone = P->cap_gone;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Preparation: everything that needs no index lock. */

/* Appends the sanitised labels of (name, value) list to the key encoding. */
static void key_add(fy__buf_t *b, fy_str_t n, fy_str_t v)
{
    uint32_t nl = (uint32_t)n.len, vl = (uint32_t)v.len;
    char hdr[10];
    size_t hn = fy__key_put_len(hdr, nl);
    hn += fy__key_put_len(hdr + hn, vl);
    fy__buf_add(b, hdr, hn);
    fy__buf_add(b, n.ptr, n.len);
    fy__buf_add(b, v.ptr, v.len);
}

/* Sanitises one series (spec 5.3) into the scratch key encoding. Label strings are first unescaped into `tmp`. */
static void prep_series(push_t *P, pser_t *ps)
{
    const fy_series_t *se = ps->src;
    size_t nl = 0, need = se->nlabels + P->gk.n + 1;
    if (need > P->cap_labs) {
        P->cap_labs = need * 2;
        P->labs = fy__xrealloc(P->labs, P->cap_labs * sizeof(lab_t));
    }
    lab_t *labs = P->labs;
    fy__buf_t *tmp = &P->tmp;
    tmp->n = 0;
    size_t bytes = 0;
    for (uint32_t i = 0; i < se->nlabels; i++)
        bytes += se->labels[i].value.len;
    fy__buf_reserve(tmp, bytes);
    int has_instance = P->gk.has_instance;
    for (uint32_t i = 0; i < se->nlabels; i++) {
        const fy_label_t *l = &se->labels[i];
        int overridden = 0;
        for (size_t k = 0; k < P->gk.n && !overridden; k++)
            overridden = fy_str_eq(l->name, P->gk.labels[k].name);
        if (overridden)
            continue;
        if (fy_str_eq_mem(l->name, FY_STRLIT("instance")))
            has_instance = 1;
        fy_str_t v = l->value;
        if (l->value_esc != FY_ESC_NONE) {
            size_t n = fy_unescape(l->value, (fy_esc_t)l->value_esc, tmp->p + tmp->n);
            v = fy_str(tmp->p + tmp->n, n);
            tmp->n += n;
        }
        labs[nl].name = l->name;
        labs[nl].value = v;
        nl++;
    }
    for (size_t k = 0; k < P->gk.n; k++) {
        labs[nl].name = P->gk.labels[k].name;
        labs[nl].value = P->gk.labels[k].value;
        nl++;
    }
    if (!has_instance) {
        labs[nl].name = fy_str(FY_STRLIT("instance"));
        labs[nl].value = fy_str("", 0);
        nl++;
    }
    /* stable insertion sort by name: series have a handful of labels, and duplicates keep their input order */
    for (size_t i = 1; i < nl; i++) {
        lab_t t = labs[i];
        size_t j = i;
        for (; j > 0 && fy_str_cmp(labs[j - 1].name, t.name) > 0; j--)
            labs[j] = labs[j - 1];
        labs[j] = t;
    }
    ps->key_off = P->scratch.n;
    for (size_t i = 0; i < nl; i++)
        key_add(&P->scratch, labs[i].name, labs[i].value);
    ps->keylen = (uint32_t)(P->scratch.n - ps->key_off);
    ps->nlabels = (uint16_t)nl;
}

static int pfam_cmp(const void *x, const void *y)
{
    const pfam_t *a = x, *b = y;
    int c = fy_str_cmp(a->name, b->name);
    if (c)
        return c;
    return a->first < b->first ? -1 : a->first > b->first; /* later duplicates sort later */
}

static int is_ts_name(fy_str_t n)
{
    return fy_str_eq(n, fy__ts_names[0]) || fy_str_eq(n, fy__ts_names[1]);
}

/* fy_utf8_valid with eight ASCII bytes at a time first: every push's HELP texts go through it, and they are nearly
 * always ASCII (a byte loop cost 40-80 ns per push of bench_store's 646-byte body). */
static int help_utf8_valid(fy_str_t h)
{
    const char *p = h.ptr, *end = h.ptr + h.len;
    for (uint64_t w; end - p >= 8; p += 8) {
        memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    return fy_utf8_valid(p, (size_t)(end - p));
}

/* Validation that needs no index: timestamps first (and only them), then names, types and HELP texts (our fixes
 * B2/B5/B6/B7, and UTF-8 in HELP). */
static int precheck(push_t *P)
{
    const fy_body_t *b = P->body;
    for (uint32_t i = 0; i < b->nfamilies; i++)
        for (uint32_t k = 0; k < b->families[i].nseries; k++)
            if (b->families[i].series[k].has_timestamp) {
                err_begin(P);
                fy__buf_str(&P->err, "pushed metrics must not have timestamps");
                return 1;
            }
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        if (!fy__metric_name_valid(f->name, P->s->cfg.utf8_names)) {
            err_begin(P);
            fy__buf_str(&P->err, "invalid metric name ");
            fy__buf_go_quote(&P->err, f->name);
        } else if (fy_str_eq_mem(f->name, FY_STRLIT("labels")) || fy_str_eq_mem(f->name, FY_STRLIT("last_push_successful"))) {
            /* fixes B7: in /api/v1/metrics such a family would overwrite the group's key of that name */
            err_begin(P);
            fy__buf_str(&P->err, "metric family name ");
            fy__buf_go_quote(&P->err, f->name);
            fy__buf_str(&P->err, " is reserved: it would replace the group's key of that name in /api/v1/metrics");
        } else if (f->type > FY_TYPE_MAX) {
            char t[64];
            err_begin(P);
            fy__buf_str(&P->err, "metric family ");
            fy__buf_go_quote(&P->err, f->name);
            snprintf(t, sizeof(t), " has unknown type %u", (unsigned)f->type);
            fy__buf_str(&P->err, t);
        } else if (f->has_help && !help_utf8_valid(f->help)) {
            /* Prometheus (2.42) fails the whole scrape of the gateway on it ("help text is not a valid utf8 string"),
             * so one push would hide every group; the reference stores it (docs/compatibility.md). Escapes are ASCII:
             * the escaped text is valid exactly when the unescaped one is. */
            err_begin(P);
            fy__buf_str(&P->err, "metric family ");
            fy__buf_go_quote(&P->err, f->name);
            fy__buf_str(&P->err, " has a HELP text that is not valid UTF-8: ");
            fy__buf_go_quote(&P->err, f->help);
        }
    }
    return P->nerr != 0;
}

/* The push's families (HELP unescaped, series listed, sorted by name); prepare_series sanitises the series. Split so
 * that the push can do the series' work while the group's families load (see fy_store_push). */
static void prepare_fams(push_t *P, int new_group)
{
    const fy_body_t *b = P->body;
    for (uint32_t i = 0; i < b->nfamilies + (new_group ? 2u : 0u); i++) {
        FY_GROW(P->fams, P->nfams, P->cap_fams);
        pfam_t *pf = &P->fams[P->nfams];
        memset(pf, 0, sizeof(*pf));
        pf->first = P->nser;
        if (i < b->nfamilies) {
            const fy_family_t *f = &b->families[i];
            if (is_ts_name(f->name))
                continue; /* the gateway owns these (documented in docs/store.md) */
            pf->name = f->name;
            pf->type = f->type;
            pf->has_help = f->has_help;
            pf->help_off = P->scratch.n;
            if (f->has_help) {
                fy__buf_reserve(&P->scratch, f->help.len);
                pf->help_len = fy_unescape(f->help, (fy_esc_t)f->help_esc, P->scratch.p + P->scratch.n);
                P->scratch.n += pf->help_len;
            }
            pf->n = f->nseries;
            for (uint32_t k = 0; k < f->nseries; k++) {
                FY_GROW(P->ser, P->nser, P->cap_ser);
                pser_t *ps = &P->ser[P->nser++];
                memset(ps, 0, sizeof(*ps));
                ps->src = &f->series[k];
            }
        } else {
            /* no labels, value 0: only the grouping labels (and instance) end up on it */
            static const fy_series_t ts_series = {.pb_kinds = 0};
            pf->name = fy__ts_names[i - b->nfamilies];
            pf->type = FY_TYPE_GAUGE;
            pf->is_ts = 1;
            pf->n = 1;
            FY_GROW(P->ser, P->nser, P->cap_ser);
            pser_t *ps = &P->ser[P->nser++];
            memset(ps, 0, sizeof(*ps));
            ps->src = &ts_series;
        }
        P->nfams++;
    }
    if (P->nfams > 16) {
        qsort(P->fams, P->nfams, sizeof(pfam_t), pfam_cmp);
    } else {
        for (size_t i = 1; i < P->nfams; i++) {
            pfam_t t = P->fams[i];
            size_t j = i;
            for (; j > 0 && pfam_cmp(&P->fams[j - 1], &t) > 0; j--)
                P->fams[j] = P->fams[j - 1];
            P->fams[j] = t;
        }
    }
    /* several families of one name (not produced by our parsers): the last one wins, as in protobuf */
    size_t w = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        if (w && fy_str_eq(P->fams[w - 1].name, P->fams[i].name))
            w--;
        P->fams[w++] = P->fams[i];
    }
    P->nfams = w;
}

static void prepare_series(push_t *P)
{
    for (size_t i = 0; i < P->nser; i++)
        prep_series(P, &P->ser[i]);
}

/* The hashes of the families' names and the series' label sets, for the index (not needed by the blind path). */
static void prepare_hashes(push_t *P)
{
    for (size_t i = 0; i < P->nfams; i++)
        P->fams[i].hash = fy__hash(P->fams[i].name.ptr, P->fams[i].name.len);
    for (size_t i = 0; i < P->nser; i++)
        P->ser[i].hash = fy__hash(P->scratch.p + P->ser[i].key_off, P->ser[i].keylen);
}

static void prepare(push_t *P, int new_group)
{
    P->shape_ok = 0;
    P->nfams = P->nser = 0;
    P->scratch.n = 0;
    prepare_fams(P, new_group);
    prepare_series(P);
    prepare_hashes(P);
}

static void prepare_gfams(push_t *P)
{
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            continue;
        pf->ng = fy__make_gfam(P, pf);
    }
}

/* For lww.c: extern copies, so that the push's own calls stay calls to static functions (inlined as before). */
void fy__prepare(push_t *P, int new_group)
{
    prepare(P, new_group);
}

void fy__prepare_hashes(push_t *P)
{
    prepare_hashes(P);
}

void fy__prepare_gfams(push_t *P)
{
    prepare_gfams(P);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The fast path: a push to an existing group that re-sends exactly the series the group holds (same families with
 * the same type and HELP, same series in the same order; for PUT no family dropped). Such a push cannot fail the
 * check (the stored state passed it, own families never change after start-up, and the only push-dependent inputs,
 * timestamps and protobuf value kinds, are checked here), and it changes nothing in the metric-name index: the
 * slots, their sorted arrays, reference counts and HELP variants stay as they are. So it runs under the group's
 * shard lock alone, without any stripe lock, and pushes to different groups do not serialise on shared names. */

static size_t group_gfam_index(const fy__group_t *g, fy_str_t name)
{
    size_t lo = 0, hi = g->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fy_str_cmp(fy__gfam_name(g->fams[mid]), name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

static int push_fast_ok(push_t *P, const fy__group_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        size_t at = pf->is_ts ? SIZE_MAX : group_gfam_index(g, pf->name);
        if (at == SIZE_MAX)
            return 0;
        const fy__gfam_t *old = g->fams[at];
        if (old->type != pf->type || old->help->has_help != pf->has_help || old->nrecs != pf->n ||
            !fy_str_eq(fy__help_str(old->help), fy_str(P->scratch.p + pf->help_off, pf->help_len)))
            return 0;
        for (size_t k = 0; k < pf->n; k++) {
            const pser_t *ps = &P->ser[pf->first + k];
            if (!fy__slot_key_eq(fy__gfam_recs(old)[k].slot, ps->hash, P->scratch.p + ps->key_off, ps->keylen) ||
                !series_kind_ok(pf->type, ps->src->pb_kinds))
                return 0;
        }
        pf->old = old;
        pf->first_old = at;
        n++;
    }
    return P->method == FY_STORE_POST || n == g->nfams;
}

/* Whether a re-pushed family fits its current gfam's records as they are: the same point counts, and no native
 * histogram bytes on either side (those vary in length and are rare). */
static int same_shape(const push_t *P, const pfam_t *pf, const fy__gfam_t *old)
{
    const fy__rec_t *r = fy__gfam_recs(old);
    for (size_t k = 0; k < pf->n; k++) {
        const fy_series_t *se = P->ser[pf->first + k].src;
        if (r[k].npoints != se->npoints || r[k].pbh_len != 0 || se->pb_histogram.len != 0)
            return 0;
    }
    return 1;
}

/* The seqlock value a push writes into the records it rewrites: odd while writing (q + 1), then q + 2, with q taken
 * from the group's version, which every push to the group raises, rather than read from the record. Each rewrite
 * thus still moves a record's seq to a value it never had (records start at 0, and a group's records are written
 * only by pushes to it, under its shard lock), and the write needs no load of the record's line: at 1M series that
 * line is a cache miss, and a load would wait for it where stores do not. */
static uint32_t rec_seq_base(const fy__group_t *g)
{
    return (uint32_t)(2 * (g->version + 1));
}

/* Writes a series' new values into its record, whose points (if any) start at pts (see fy__rec_read for the
 * readers' side). */
static void rec_rewrite(fy__rec_t *r, fy_point_t *pts, const fy_series_t *se, uint32_t q)
{
    __atomic_store_n(&r->seq, q + 1, __ATOMIC_RELAXED);
    /* release stores keep the odd seq before them (a reader that sees any of them sees seq changed); no fence, which
     * ThreadSanitizer does not support; on x86 they are plain stores */
    double v = se->value;
    __atomic_store(&r->value, &v, __ATOMIC_RELEASE);
    __atomic_store_n(&r->count, se->count, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < se->npoints; i++) {
        fy_point_t p = se->points[i];
        __atomic_store(&pts[i].key, &p.key, __ATOMIC_RELEASE);
        __atomic_store(&pts[i].value, &p.value, __ATOMIC_RELEASE);
        __atomic_store_n(&pts[i].count, p.count, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&r->seq, q + 2, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The blind path: a push whose shape is the group's (XXH3-128 of everything the fast path compares: family names,
 * types, HELP texts, the series' sanitised label sets in order, point counts; only for pushes with no native
 * histogram bytes and no protobuf value kind that needs the check) writes its values into the group's records
 * without reading them: families and records correspond by position (both sorted by name, records in push order,
 * points after the records in the same order, as make_gfam lays them out), so a re-push at 1M series waits for
 * the bucket and the group only, and its stores to the records do not wait for their lines. A different shape
 * with the same 128-bit hash is the only way this goes wrong (odds of 2^-128 per push of a changed shape). */

static char *shape_put(char *o, const void *p, size_t n)
{
    memcpy(o, p, n);
    return o + n;
}

/* Sets P->shape from the prepared push (families sorted, series sanitised into scratch), or clears shape_ok. The
 * descriptor has every length and offset, so that the hashed bytes (scratch: HELP texts and label sets) split
 * into the same pieces only for the same shape. */
static void push_shape(push_t *P)
{
    P->shape_ok = 0;
    /* the head, per family 7 fields and the name, per series 4 fields, the scratch's hash (as written below) */
    size_t need = 2 * sizeof(uint32_t) + P->nser * 4 * sizeof(uint32_t) + sizeof(XXH128_hash_t);
    for (size_t i = 0; i < P->nfams; i++)
        need += 7 * sizeof(uint32_t) + P->fams[i].name.len;
    fy__buf_t *d = &P->tmp; /* free again after prepare_series */
    d->n = 0;
    fy__buf_reserve(d, need);
    char *o = d->p;
    uint32_t head[2] = {(uint32_t)P->nfams, (uint32_t)P->nser};
    o = shape_put(o, head, sizeof(head));
    for (size_t i = 0; i < P->nfams; i++) {
        const pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            return;
        uint32_t f[7] = {(uint32_t)pf->name.len, pf->type,       pf->has_help, (uint32_t)pf->help_off, (uint32_t)pf->help_len,
                         (uint32_t)pf->first,    (uint32_t)pf->n};
        o = shape_put(o, f, sizeof(f));
        o = shape_put(o, pf->name.ptr, pf->name.len);
        for (size_t k = 0; k < pf->n; k++) {
            const fy_series_t *se = P->ser[pf->first + k].src;
            if (se->pb_histogram.len != 0 || !series_kind_ok(pf->type, se->pb_kinds))
                return;
        }
    }
    for (size_t k = 0; k < P->nser; k++) {
        const pser_t *ps = &P->ser[k];
        uint32_t f[4] = {(uint32_t)ps->key_off, ps->keylen, ps->nlabels, ps->src->npoints};
        o = shape_put(o, f, sizeof(f));
    }
    XXH128_hash_t h = XXH3_128bits(P->scratch.p, P->scratch.n);
    o = shape_put(o, &h, sizeof(h));
    assert((size_t)(o - d->p) == need);
    h = XXH3_128bits(d->p, (size_t)(o - d->p));
    P->shape[0] = h.low64;
    P->shape[1] = h.high64;
    P->shape_ok = P->shape[0] != 0 || P->shape[1] != 0;
}

static int push_blind_ok(const push_t *P, const fy__group_t *g)
{
    return P->shape_ok && g->nfams == P->nfams && g->shape[0] == P->shape[0] && g->shape[1] == P->shape[1];
}

static void push_blind(push_t *P, fy__group_t *g)
{
    FY_ASSERT_GROUP(g);
    uint32_t q = rec_seq_base(g);
    for (size_t i = 0; i < P->nfams; i++) {
        const pfam_t *pf = &P->fams[i];
        fy__gfam_t *gf = g->fams[i];
        fy__rec_t *r = fy__gfam_recs(gf);
        fy_point_t *pts = (fy_point_t *)(r + pf->n);
        for (size_t k = 0; k < pf->n; k++) {
            const fy_series_t *se = P->ser[pf->first + k].src;
            rec_rewrite(&r[k], pts, se, q);
            pts += se->npoints;
        }
        gf->stamp_ns = P->now; /* read under the shard lock only (JSON, snapshots) */
    }
}

static void push_fast(push_t *P, fy__group_t *g, fy__shard_t *sh)
{
    FY_ASSERT_SHARD(sh);
    FY_ASSERT_GROUP(g);
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        fy__gfam_t *old = (fy__gfam_t *)(uintptr_t)pf->old;
        if (same_shape(P, pf, old)) {
            /* the common re-push: no allocation, and the slots keep pointing at the same records */
            fy__rec_t *r = fy__gfam_recs(old);
            uint32_t q = rec_seq_base(g);
            for (size_t k = 0; k < pf->n; k++)
                rec_rewrite(&r[k], (fy_point_t *)(uintptr_t)fy__rec_points(&r[k]), P->ser[pf->first + k].src, q);
            old->stamp_ns = P->now; /* read under the shard lock only (JSON, snapshots) */
            continue;
        }
        fy__gfam_t *ng = fy__make_gfam(P, pf);
        ng->fam = old->fam;
        ng->help = old->help; /* the same variant: the check above compared the texts */
        for (uint32_t k = 0; k < ng->nrecs; k++) {
            fy__slot_t *sl = fy__gfam_recs(old)[k].slot;
            fy__gfam_recs(ng)[k].slot = sl;
            atomic_store_explicit(&sl->cur, &fy__gfam_recs(ng)[k], memory_order_release);
        }
        /* text scrapes that choose among HELP variants read the list under a stripe lock only (fy__group_gfam) */
        __atomic_store_n(&g->fams[pf->first_old], ng, __ATOMIC_RELEASE);
        fy__retire_shard(P->s, sh, old);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The entry point: the blind path, else the fast path, else check and apply under the lock set. */

/* Stores the group's two timestamp values in its embedded records, which the timestamp slots point at. Scrapes read
 * the values concurrently (atomic 8-byte stores and loads); on the group's creation (ts stripes locked) the records
 * are linked to their slots and the families. */
static void ts_update(push_t *P, fy__group_t *g, int created)
{
    FY_ASSERT_GROUP(g);
    for (int t = 0; t < 2; t++) {
        fy__rec_t *r = &g->tsrec[t];
        double v = (double)(t == FY_TS_PUSH ? g->push_ns : g->fail_ns) / 1e9;
        __atomic_store(&r->value, &v, __ATOMIC_RELAXED);
        if (created) {
            fy__fam_t *f = fy__ts_fam(P->s, t, 1);
            f->type = FY_TYPE_GAUGE;
            f->refs++;
            fy__help_ref(P->s, f, 1, fy__ts_help[t], 1);
            atomic_store(&r->slot->cur, r);
        }
    }
}

void fy__ts_update(push_t *P, fy__group_t *g, int created)
{
    ts_update(P, g, created);
}

static void set_err(push_t *P, fy_store_err_t *err, int code)
{
    if (err == NULL)
        return;
    err->code = code;
    if (code == FY_SERR_INVALID) {
        fy__buf_t m = {0};
        if (P->nerr == 1) {
            fy__buf_add(&m, P->err.p + 3, P->err.n - 3);
        } else {
            char h[48];
            snprintf(h, sizeof(h), "%zu error(s) occurred:", P->nerr);
            fy__buf_str(&m, h);
            fy__buf_add(&m, P->err.p, P->err.n);
        }
        fy__buf_add(&m, "", 1);
        err->msg = m.p;
        err->msg_len = m.n - 1;
    } else {
        const char *t = fy_store_strerror(code);
        err->msg_len = strlen(t);
        err->msg = fy__xmalloc(err->msg_len + 1);
        memcpy(err->msg, t, err->msg_len + 1);
    }
}

/* After a successful push: the group's shape is the push's if the group now holds exactly the pushed families (a
 * PUT, or a POST of all of them), else none, so that only a push that would leave the same families can take the
 * blind path. */
static void group_set_shape(const push_t *P, fy__group_t *g)
{
    int same = P->shape_ok && g->nfams == P->nfams;
    g->shape[0] = same ? P->shape[0] : 0;
    g->shape[1] = same ? P->shape[1] : 0;
}

/* The end of a push that took the blind or the fast path (the group's families are written; shard lock held). */
static void push_done(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, uint32_t origin)
{
    FY_ASSERT_SHARD(sh);
    g->origin = origin;
    g->version++;
    g->push_ns = g->push_stamp_ns = P->now;
    ts_update(P, g, 0);
    fy__life_declare(g, life);
    if (__builtin_expect(P->s->cfg.lww, 0))
        fy__lww_note_push(P, sh, g, life, 0);
    fy__life_update(P->s, sh, g);
    group_set_shape(P, g);
}

int fy_store_push(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                  int64_t now_ns, uint32_t origin, fy_store_err_t *err)
{
    return fy_store_push_life(s, gkl, ngk, method, body, NULL, now_ns, origin, err);
}

static int push_impl(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                     const fy_store_life_t *life, int64_t now_ns, uint32_t origin, fy_store_err_t *err, fy__merge_t *M);

int fy_store_push_life(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                       const fy_store_life_t *life, int64_t now_ns, uint32_t origin, fy_store_err_t *err)
{
    return push_impl(s, gkl, ngk, method, body, life, now_ns, origin, err, NULL);
}

int fy_store_merge_push(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                        const fy_store_life_t *life, int64_t stamp, uint32_t origin, fy_store_dropped_cb_t dropped, void *ctx)
{
    if (!s->cfg.lww)
        return FY_SERR_BADARG;
    fy__merge_t M = {0};
    int rc = push_impl(s, gkl, ngk, method, body, life, stamp, origin, NULL, &M);
    for (size_t i = 0; i < M.ndropped; i++)
        if (dropped)
            dropped(ctx, M.dropped[i]);
    free(M.dropped);
    return rc;
}

/* A push (M NULL) or an lww merge (M: no limits, inconsistent families dropped into M instead of a rejection).
 * Inlined into both callers, so that the push's copy has no trace of M. */
static inline __attribute__((always_inline)) int push_impl(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk,
                                                           fy_store_method_t method, const fy_body_t *body,
                                                           const fy_store_life_t *life, int64_t now_ns, uint32_t origin,
                                                           fy_store_err_t *err, fy__merge_t *M)
{
    static const fy_body_t empty;
    push_t P;
    memset(&P, 0, sizeof(P));
    if (err)
        memset(err, 0, sizeof(*err));
    P.s = s;
    P.method = method;
    P.body = body ? body : &empty;
    P.now = now_ns;
    fy__scratch_take(&P);
    int rc = fy__gkey_parse(&P.gk, &P.gkmem, gkl, ngk, s->cfg.utf8_names);
    if (rc != FY_OK) {
        set_err(&P, err, rc);
        fy__scratch_give(&P);
        return rc;
    }
    /* With many groups, everything the push reads of the store is a cache miss, and each object's address is in the
     * previous one: bucket -> group (with its family list and key) -> the families (name, HELP, recs; only written on
     * the blind path) -> the slots (not on the blind path). Each stage is prefetched as soon as its address is known, and the
     * push's own preparation is spread between the stages so that the loads overlap with work instead of stalling one after
     * another. */
    fy__shard_t *sh = &s->shards[P.gk.hash & (s->cfg.nshards - 1)];
    {
        /* the bucket, before the lock: a resize may change the table meanwhile, and then this only loads a line in
         * vain (a prefetch never faults; the address is computed as an integer) */
        uintptr_t b = (uintptr_t)__atomic_load_n(&sh->buckets, __ATOMIC_RELAXED);
        size_t nb = __atomic_load_n(&sh->nbuckets, __ATOMIC_RELAXED);
        __builtin_prefetch((const void *)(b + FY_BUCKET(P.gk.hash, nb) * sizeof(uint64_t)));
    }
    int rejected = precheck(&P);
    if (M && rejected) {
        /* the taking replica checked the body: nothing here is one family's fault, so the change goes whole */
        for (uint32_t i = 0; i < P.body->nfamilies; i++)
            fy__merge_drop(M, P.body->families[i].name);
        fy__scratch_give(&P);
        return FY_OK;
    }
    if (!rejected)
        prepare_fams(&P, 0); /* as for an existing group (the common case); redone below for a new one */
    fy__shard_lock(s, sh);
    /* the group the lookup will read: the first entry with the key's tag (rarely another group) */
    size_t at = FY_BUCKET(P.gk.hash, sh->nbuckets);
    const fy__group_t *g0 = fy__gt_next_tagged(sh, P.gk.hash, &at);
    if (g0)
        for (size_t off = 0; off < sizeof(fy__group_t) + P.gk.key.len; off += 64)
            __builtin_prefetch((const char *)g0 + off);
    if (!rejected) {
        prepare_series(&P);
        /* By now the group has (mostly) arrived: start fetching its families' first lines for writing, so that they
         * come in while the shape is hashed (the blind path stores into them, the fast path reads and rewrites them).
         * g0 is only a candidate until the lookup; reading a wrong group's list under this lock is harmless. */
        if (g0)
            for (uint32_t i = 0; i < g0->nfams; i++)
                for (int l = 0; l < 4; l++)
                    __builtin_prefetch((const char *)g0->fams[i] + 64 * l, 1);
        push_shape(&P);
    }
    fy__group_t *g = fy__group_find(sh, P.gk.hash, P.gk.key);
    if (g && (g->life_any || s->life_defaults) && g->deadline_ns != 0 && g->deadline_ns <= now_ns) {
        /* expired, whether or not the timer got to it yet: the push starts a new group */
        fy__group_remove(&P, sh, g);
        atomic_fetch_add(&s->expired, 1);
        g = NULL;
    }
    if (__builtin_expect(s->cfg.lww, 0)) {
        if (g && now_ns <= g->lf->lww->max) {
            /* out of order: the LWW rules (lww.c) */
            rc = fy__lww_push(&P, sh, g, life, origin, M, rejected);
            goto Unlock;
        }
        if (g == NULL && now_ns <= (P.lww_del = fy__lww_absent_del(s, sh, &P.gk)))
            goto Unlock; /* deleted at or after this change: nothing of it is visible */
    }
    int new_group = g == NULL;
    if (!rejected && !new_group && push_blind_ok(&P, g)) {
        push_blind(&P, g);
        push_done(&P, sh, g, life, origin);
        sh->nblind++;
        goto Unlock;
    }
    if (!new_group)
        prepare_hashes(&P); /* (a new group redoes the preparation below) */
    if (!rejected) {
        if (new_group)
            prepare(&P, 1); /* with the timestamp families: no shape (a new group gets its shape on its next push) */
        if (g)
            for (uint32_t i = 0; i < g->nfams; i++) {
                const fy__rec_t *r = fy__gfam_recs(g->fams[i]);
                for (uint32_t k = 0; k < g->fams[i]->nrecs && k < 8; k++)
                    __builtin_prefetch(r[k].slot);
            }
    } else if (new_group) {
        prepare(&P, 1); /* only to check the new group's own timestamp series (B3/B4) */
        for (size_t i = 0; i < P.nfams; i++)
            P.fams[i].ok = 0;
    }
    if (!rejected && !new_group && push_fast_ok(&P, g)) {
        push_fast(&P, g, sh);
        push_done(&P, sh, g, life, origin);
        goto Unlock;
    }
    if (!rejected)
        prepare_gfams(&P);
    if (M == NULL && new_group && s->cfg.max_groups && atomic_load(&s->ngroups) >= s->cfg.max_groups) {
        rc = FY_SERR_LIMIT_GROUPS;
        goto Unlock;
    }
    fy__lockset_build(&P, g);
    fy__lockset_lock(&P);
    if (!rejected) {
        fy__check_push(&P, g);
        rejected = P.nerr != 0;
        if (M && rejected && fy__lww_drop(&P, g, M))
            goto UnlockAll; /* nothing left to apply: the grouping key itself fails */
        if (M)
            rejected = 0;
    } else if (new_group) {
        /* the rejection stands; still find out whether the key itself is bad (then no failure group) */
        size_t keep = P.nerr;
        for (size_t i = 0; i < P.nfams; i++)
            if (P.fams[i].is_ts) {
                P.fams[i].fam = fy__lookup(&P, P.fams[i].name);
                fy__check_series(&P, g, &P.fams[i], &P.ser[P.fams[i].first], FY_TYPE_GAUGE);
            }
        if (P.key_caused) {
            /* report the key's errors, as the reference would for the timestamp series */
            (void)keep;
        } else {
            P.err.n = 0;
            P.nerr = 0;
            precheck(&P);
        }
    }
    if (!rejected && M == NULL && s->cfg.max_series) {
        uint64_t add = 0, drop = 0;
        for (size_t i = 0; i < P.nfams; i++)
            add += P.fams[i].n;
        for (uint32_t i = 0; g && i < g->nfams; i++)
            if (fy__replaced(&P, g, fy__gfam_name(g->fams[i])))
                drop += g->fams[i]->nrecs;
        if (atomic_load(&s->nseries) + add > s->cfg.max_series + drop) {
            rc = FY_SERR_LIMIT_SERIES;
            goto UnlockAll;
        }
    }
    if (rejected && P.key_caused) {
        rc = FY_SERR_INVALID;
        goto UnlockAll;
    }
    if (new_group) {
        g = fy__group_new(&P);
        fy__group_insert(sh, g);
        atomic_fetch_add(&s->ngroups, 1);
        fy__ts_create(&P, g);
        g->push_stamp_ns = g->fail_stamp_ns = now_ns;
    }
    g->origin = origin;
    g->version++;
    if (rejected) {
        g->fail_ns = g->fail_stamp_ns = now_ns;
        rc = FY_SERR_INVALID;
        if (err) {
            err->failure_recorded = 1;
            err->group_created = new_group;
        }
        if (__builtin_expect(s->cfg.lww, 0))
            fy__lww_note_fail(&P, g, new_group);
    } else {
        fy__apply_push(&P, g, sh);
        g->push_ns = g->push_stamp_ns = now_ns;
        fy__life_declare(g, life);
        group_set_shape(&P, g);
        if (__builtin_expect(s->cfg.lww, 0))
            fy__lww_note_push(&P, sh, g, life, new_group);
    }
    ts_update(&P, g, new_group);
    fy__life_update(s, sh, g);
UnlockAll:
    fy__lockset_unlock(&P);
Unlock:
    fy__reclaim_maybe(s, &sh->retired);
    fy__shard_unlock(s, sh);
    if (rc != FY_OK)
        set_err(&P, err, rc);
    for (size_t i = 0; i < P.nfams; i++)
        free(P.fams[i].ng);
    fy__scratch_give(&P);
    return rc;
}
