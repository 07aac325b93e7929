/*
 * group_view.c: read-only views of groups (grouping labels split out of the key, times, lifetimes, families and
 * series) and the iteration over all groups in key order that JSON, snapshots and other consumers use: the keys are
 * collected one shard lock at a time, then each group is viewed under its own shard lock.
 */
#include "store_int.h"

#include <assert.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------------------------------- */
/* A group's view: its grouping labels (split out of the key), times, lifetimes, families and series. */

/* A byte loop rather than memchr: names and values are a few bytes, shorter than a call costs. */
void fy__key_labels(fy_str_t key, uint32_t n, fy_store_label_t *out)
{
    const unsigned char *p = (const unsigned char *)key.ptr, *end = p + key.len, *e;
    for (uint32_t i = 0; i < n; i++) {
        for (e = p; e < end && *e != 0xff; e++)
            ;
        assert(e < end);
        out[i].name = fy_str((const char *)p, (size_t)(e - p));
        p = ++e;
        if (i + 1 < n)
            for (; e < end && *e != 0xff; e++)
                ;
        else
            e = end;
        assert(e < end || i + 1 == n);
        out[i].value = fy_str((const char *)p, (size_t)(e - p));
        p = e + (i + 1 < n);
    }
    assert(n == 0 ? key.len == 0 : p == end);
}

void fy__group_view_head(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v)
{
    FY_ASSERT_GROUP(g);
    fy_store_label_t *l = vl->inl;
    if (g->nlabels > FY_VIEW_LABELS_INLINE) {
        if (g->nlabels > vl->cap_heap) {
            free(vl->heap);
            vl->cap_heap = 2 * g->nlabels;
            vl->heap = fy__xmalloc(vl->cap_heap * sizeof(*vl->heap));
        }
        l = vl->heap;
    }
    v->key = fy__group_key(g);
    fy__key_labels(v->key, g->nlabels, l);
    v->labels = l;
    v->nlabels = g->nlabels;
    v->push_ns = g->push_ns;
    v->push_stamp_ns = g->push_stamp_ns;
    v->fail_ns = g->fail_ns;
    v->fail_stamp_ns = g->fail_stamp_ns;
    v->origin = g->origin;
    v->version = g->version;
    if (g->lf)
        v->life = g->lf->life;
    else
        memset(&v->life, 0, sizeof(v->life));
    v->ttl_ns = fy__life_eff(v->life.ttl_ns, s->cfg.default_ttl_ns);
    v->interval_ns = fy__life_eff(v->life.interval_ns, s->cfg.default_interval_ns);
    v->deadline_ns = g->deadline_ns;
    const fy__lww_t *X = g->lf ? g->lf->lww : NULL;
    v->is_tombstone = 0;
    if (X) {
        v->clear_ns = X->clear;
        v->del_ns = X->del;
        v->ttl_stamp_ns = X->ttl_stamp > X->del ? X->ttl_stamp : 0;
        v->interval_stamp_ns = X->interval_stamp > X->del ? X->interval_stamp : 0;
        v->max_stamp_ns = X->max;
        v->nkills = X->nkills;
        v->kills = X->kills;
    } else {
        v->clear_ns = v->del_ns = v->ttl_stamp_ns = v->interval_stamp_ns = v->max_stamp_ns = 0;
        v->nkills = 0;
        v->kills = NULL;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Iteration over all groups in key order. */

static int gref_cmp(const void *x, const void *y)
{
    const fy__gref_t *a = x, *b = y;
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

void *fy__grow(void *p, size_t *cap, size_t need, size_t sz)
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
static void build_view(const fy_store_t *s, const fy__group_t *g, view_scratch_t *vs, fy_store_group_view_t *v, size_t max_labels,
                       int heads_only)
{
    FY_ASSERT_GROUP(g);
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
    vs->fv = fy__grow(vs->fv, &vs->cap_fv, g->nfams + 1, sizeof(*vs->fv));
    vs->sv = fy__grow(vs->sv, &vs->cap_sv, ns + 1, sizeof(*vs->sv));
    vs->lv = fy__grow(vs->lv, &vs->cap_lv, nl + 1, sizeof(*vs->lv));
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
fy__gref_t *fy__collect_refs(fy_store_t *s, size_t *np)
{
    fy__gref_t *refs = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        refs = fy__grow(refs, &cap, n + sh->ngroups + 1, sizeof(*refs));
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
        fy__shard_unlock(s, sh);
    }
    if (n > 1)
        qsort(refs, n, sizeof(*refs), gref_cmp);
    *np = n;
    return refs;
}

void fy__free_refs(fy__gref_t *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(refs[i].key);
    free(refs);
}

static int foreach_internal(fy_store_t *s, fy_store_group_cb_t cb, void *ctx)
{
    size_t n;
    fy__gref_t *refs = fy__collect_refs(s, &n);
    view_scratch_t vs = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        fy__shard_t *sh = &s->shards[refs[i].hash & (s->cfg.nshards - 1)];
        fy__shard_lock(s, sh);
        fy__group_t *g = fy__group_find(sh, refs[i].hash, fy_str(refs[i].key, refs[i].len));
        if (g) {
            fy_store_group_view_t v;
            build_view(s, g, &vs, &v, SIZE_MAX, 0);
            rc = cb(ctx, &v);
        }
        fy__shard_unlock(s, sh);
    }
    fy__free_refs(refs, n);
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
    fy__gref_t *refs;
    size_t n;
    view_scratch_t vs;
};

fy_store_cursor_t *fy_store_cursor_open(fy_store_t *s)
{
    fy_store_cursor_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->s = s;
    c->refs = fy__collect_refs(s, &c->n);
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
    const fy__gref_t *r = &c->refs[i];
    fy__shard_t *sh = &c->s->shards[r->hash & (c->s->cfg.nshards - 1)];
    fy__shard_lock(c->s, sh);
    const fy__group_t *g = fy__group_find(sh, r->hash, fy_str(r->key, r->len));
    if (g != NULL) {
        fy_store_group_view_t v;
        build_view(c->s, g, &c->vs, &v, max_labels, max_labels == 0);
        cb(ctx, &v);
    }
    fy__shard_unlock(c->s, sh);
    return g == NULL;
}

void fy_store_cursor_close(fy_store_cursor_t *c)
{
    if (c == NULL)
        return;
    fy__free_refs(c->refs, c->n);
    free(c->vs.fv);
    free(c->vs.sv);
    free(c->vs.lv);
    fy__view_labels_free(&c->vs.gl);
    free(c);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* lww mode: what changed since a stamp, for state transfer (lww.c has the rest). */

int fy_store_foreach_changed_since(fy_store_t *s, int64_t since, fy_store_group_cb_t cb, void *ctx)
{
    return fy_store_foreach_changed_since_shards(s, since, 0, UINT32_MAX, cb, ctx);
}

uint32_t fy_store_nshards(const fy_store_t *s)
{
    return s->cfg.nshards;
}

int fy_store_foreach_changed_since_shards(fy_store_t *s, int64_t since, uint32_t first, uint32_t count, fy_store_group_cb_t cb,
                                          void *ctx)
{
    view_scratch_t vs = {0};
    fy_store_label_t *tl = NULL; /* a tombstone's labels */
    size_t cap_tl = 0;
    int rc = 0;
    uint32_t end = count > s->cfg.nshards - (first < s->cfg.nshards ? first : s->cfg.nshards) ? s->cfg.nshards : first + count;
    for (uint32_t i = first; i < end && rc == 0; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        for (size_t b = 0; b < sh->nbuckets && rc == 0; b++)
            if (fy__gt_live(sh->buckets[b])) {
                const fy__group_t *g = fy__gt_group(sh->buckets[b]);
                if (g->lf && g->lf->lww && g->lf->lww->max > since) {
                    fy_store_group_view_t v;
                    build_view(s, g, &vs, &v, SIZE_MAX, 0);
                    rc = cb(ctx, &v);
                }
            }
        for (size_t b = 0; b < sh->cap_tombs && rc == 0; b++)
            for (const fy__tomb_t *t = sh->tombs[b]; t && rc == 0; t = t->next) {
                if (t->del <= since)
                    continue;
                fy_store_group_view_t v;
                memset(&v, 0, sizeof(v));
                v.key = fy_str(t->key, t->keylen);
                uint32_t nsep = 0;
                for (uint32_t k = 0; k < t->keylen; k++)
                    nsep += (unsigned char)t->key[k] == 0xff;
                v.nlabels = t->keylen ? (nsep + 1) / 2 : 0;
                tl = fy__grow(tl, &cap_tl, v.nlabels + 1, sizeof(*tl));
                fy__key_labels(v.key, v.nlabels, tl);
                v.labels = tl;
                v.is_tombstone = 1;
                v.clear_ns = v.del_ns = v.max_stamp_ns = t->del;
                rc = cb(ctx, &v);
            }
        fy__shard_unlock(s, sh);
    }
    free(vs.fv);
    free(vs.sv);
    free(vs.lv);
    fy__view_labels_free(&vs.gl);
    free(tl);
    return rc;
}
