/*
 * apply.c: linking a checked push into the store on the slow path (a new group, new or changed series): the new
 * gfams, their slots in the family index, the group's family list, and the group's own timestamp series. Called
 * with the push's shard lock and all its stripe locks held; removals (remove.c, bulk_delete.c) use the detaching
 * half.
 */
#include "push_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

fy__gfam_t *fy__make_gfam(push_t *P, const pfam_t *pf)
{
    size_t npts = 0;
    for (size_t k = 0; k < pf->n; k++)
        npts += P->ser[pf->first + k].src->npoints;
    size_t sz = sizeof(fy__gfam_t) + pf->n * sizeof(fy__rec_t) + npts * sizeof(fy_point_t);
    for (size_t k = 0; k < pf->n; k++)
        sz += P->ser[pf->first + k].src->pb_histogram.len;
    if (sz > UINT32_MAX) { /* recs address their bytes with 32-bit offsets; the parsers' limits keep bodies far below */
        fprintf(stderr, "fy_store: family of %zu bytes\n", sz);
        abort();
    }
    /* The allocator's size class, not whole cache lines: rounding to lines (so that a gfam shares no line with a
     * neighbour that another thread may be rewriting) cost 80 bytes per push-646 group and measured no faster, one
     * thread or two (bench/results/2026-12-07-store-history.md, "Memory per group"). */
    fy__gfam_t *gf = fy__xmalloc(sz);
    memset(gf, 0, sizeof(*gf));
    gf->type = pf->type;
    gf->stamp_ns = P->now;
    gf->nrecs = (uint32_t)pf->n;
    fy__rec_t *recs = fy__gfam_recs(gf);
    char *c;
    fy_point_t *pts = (fy_point_t *)(recs + pf->n);
    c = (char *)(pts + npts);
    for (size_t k = 0; k < pf->n; k++) {
        const pser_t *ps = &P->ser[pf->first + k];
        fy__rec_t *r = &recs[k];
        r->npoints = ps->src->npoints;
        r->points_off = (uint32_t)((char *)pts - (char *)r);
        if (r->npoints)
            memcpy(pts, ps->src->points, r->npoints * sizeof(fy_point_t));
        pts += r->npoints;
        r->value = ps->src->value;
        r->count = ps->src->count;
        r->slot = NULL;
        r->seq = 0;
        r->pbh_off = (uint32_t)(c - (char *)r);
        r->pbh_len = (uint32_t)ps->src->pb_histogram.len;
        if (ps->src->pb_histogram.len)
            memcpy(c, ps->src->pb_histogram.ptr, ps->src->pb_histogram.len);
        c += ps->src->pb_histogram.len;
    }
    assert((size_t)(c - (char *)gf) == sz);
    return gf;
}

static fy__slot_t *slot_new(push_t *P, const pser_t *ps, const fy__group_t *g)
{
    fy__slot_t *sl = fy__xmalloc(offsetof(fy__slot_t, key) + ps->keylen);
    atomic_init(&sl->cur, NULL);
    sl->owner = g;
    sl->hash = (uint32_t)ps->hash;
    sl->keylen = ps->keylen;
    sl->nlabels = ps->nlabels;
    sl->dead = 0;
    sl->mark = 0;
    memcpy(sl->key, P->scratch.p + ps->key_off, ps->keylen);
    return sl;
}

static void fam_add_pending(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f, fy__slot_t *sl)
{
    FY_ASSERT_STRIPE(st);
    FY_GROW(f->pending, f->npending, f->cap_pending);
    f->pending[f->npending++] = sl;
    fy__farr_t *a = atomic_load(&f->published);
    if (f->npending + f->ndead > (a ? a->n : 0) + 1024)
        fy__fam_merge(s, st, f);
}

/* A gfam joins or leaves its fam: only its HELP variant is counted (the fam keeps no member list, so that a
 * re-push that keeps the family's shape touches no shared state; see push_fast). */
static void member_link(fy_store_t *s, fy__fam_t *f, fy__gfam_t *g, int has_help, fy_str_t help)
{
    g->fam = f;
    g->help = fy__help_ref(s, f, has_help, help, 1);
}

static void member_unlink(fy_store_t *s, fy__fam_t *f, fy__gfam_t *g)
{
    fy__help_ref(s, f, g->help->has_help, fy__help_str(g->help), -1);
}

/* Drops a gfam from its fam: slots not marked as kept die, the member link goes, refs drop. */
void fy__gfam_detach(fy_store_t *s, fy__gfam_t *old, fy__shard_t *sh)
{
    FY_ASSERT_SHARD(sh);
    FY_ASSERT_FAM(old->fam);
    fy__fam_t *f = old->fam;
    uint64_t killed = 0;
    for (uint32_t k = 0; k < old->nrecs; k++) {
        fy__slot_t *sl = fy__gfam_recs(old)[k].slot;
        if (sl->mark) {
            sl->mark = 0;
        } else {
            fy__slot_kill(f, sl);
            killed++;
        }
    }
    member_unlink(s, f, old);
    f->refs--;
    atomic_fetch_sub(&s->nseries, killed);
    fy__retire(s, &sh->retired, old);
    fy__fam_maybe_drop(s, fy__stripe_of(s, f->hash), f);
}

/* Links a new gfam: reuse the group's slots of the same labels, create the others. */
static void gfam_attach(push_t *P, fy__group_t *g, fy__gfam_t *gf, const pfam_t *pf)
{
    FY_ASSERT_GROUP(g);
    FY_ASSERT_NAME(pf->hash);
    fy_store_t *s = P->s;
    fy__stripe_t *st = fy__stripe_of(s, pf->hash);
    fy__fam_t *f = fy__fam_find(st, pf->hash, pf->name);
    if (f == NULL)
        f = fy__fam_create(st, pf->hash, pf->name);
    f->type = pf->type; /* the check passed: any other holder has this type already */
    f->refs++;
    member_link(s, f, gf, pf->has_help, fy_str(P->scratch.p + pf->help_off, pf->help_len));
    for (size_t k = 0; k < pf->n; k++) {
        const pser_t *ps = &P->ser[pf->first + k];
        fy__slot_t *sl = ps->slot; /* found by check_series (all series of an applied push were checked) */
        assert(sl == fy__set_find(f, ps->hash, P->scratch.p + ps->key_off, ps->keylen));
        if (sl) {
            assert(sl->owner == (const void *)g);
            sl->mark = 1;
        } else {
            sl = slot_new(P, ps, g);
            fy__set_insert(f, sl);
            sl->mark = 1;
            fam_add_pending(s, st, f, sl);
            atomic_fetch_add(&s->nseries, 1);
        }
        fy__gfam_recs(gf)[k].slot = sl;
        atomic_store(&sl->cur, &fy__gfam_recs(gf)[k]);
    }
}

/* Clears the "kept" marks of a freshly attached gfam once its predecessor (if any) is detached. */
static void gfam_clear_marks(fy__gfam_t *gf)
{
    for (uint32_t k = 0; k < gf->nrecs; k++)
        fy__gfam_recs(gf)[k].slot->mark = 0;
}

fy__fam_t *fy__ts_fam(fy_store_t *s, int t, int create)
{
    uint64_t h = fy__hash(fy__ts_names[t].ptr, fy__ts_names[t].len);
    FY_ASSERT_NAME(h);
    fy__stripe_t *st = fy__stripe_of(s, h);
    fy__fam_t *f = fy__fam_find(st, h, fy__ts_names[t]);
    if (f == NULL && create)
        f = fy__fam_create(st, h, fy__ts_names[t]);
    return f;
}

/* Creates the group's two timestamp slots (the ts families' stripes are locked for a new group). */
void fy__ts_create(push_t *P, fy__group_t *g)
{
    FY_ASSERT_GROUP(g);
    for (int t = 0; t < 2; t++) {
        pser_t *ps = NULL;
        for (size_t i = 0; i < P->nfams; i++)
            if (P->fams[i].is_ts && fy_str_eq(P->fams[i].name, fy__ts_names[t]))
                ps = &P->ser[P->fams[i].first];
        assert(ps != NULL);
        uint64_t h = fy__hash(fy__ts_names[t].ptr, fy__ts_names[t].len);
        fy__stripe_t *st = fy__stripe_of(P->s, h);
        fy__fam_t *f = fy__fam_find(st, h, fy__ts_names[t]);
        if (f == NULL)
            f = fy__fam_create(st, h, fy__ts_names[t]);
        fy__slot_t *sl = slot_new(P, ps, g);
        fy__set_insert(f, sl);
        fam_add_pending(P->s, st, f, sl);
        g->tsrec[t].slot = sl;
        atomic_fetch_add(&P->s->nseries, 1);
    }
}

/* The sizes the memory per group rests on (see store_int.h and docs/store.md). */
_Static_assert(sizeof(fy__gfam_t) == 32, "gfam header");
_Static_assert(sizeof(fy__group_t) == 248, "group struct");
_Static_assert(offsetof(fy__slot_t, key) == 28, "slot header");

fy__group_t *fy__group_new(push_t *P)
{
    /* The struct, then the key; the labels are split out of the key when a view needs them (fy__key_labels). That
     * needs values without the separator 0xFF: every push whose grouping value is not valid UTF-8 is rejected on
     * the group's own timestamp series (check_series), which marks the rejection key_caused, and then no group is
     * created (B4 fixed). */
    assert(P->gk.valid_utf8);
    size_t sz = (sizeof(fy__group_t) + P->gk.key.len + 63) & ~(size_t)63;
    if (P->gk.key.len > UINT32_MAX || P->gk.n > UINT32_MAX)
        abort();
    fy__group_t *g = aligned_alloc(64, sz);
    if (g == NULL)
        abort();
    memset(g, 0, sz);
    memcpy(g + 1, P->gk.key.ptr, P->gk.key.len);
    g->keylen = (uint32_t)P->gk.key.len;
    g->nlabels = (uint32_t)P->gk.n;
    g->fams = g->fams_inline;
    g->cap_fams = FY_GROUP_INLINE_FAMS;
    g->hash = P->gk.hash;
    g->key_valid = (uint8_t)P->gk.valid_utf8;
    g->has_instance = (uint8_t)P->gk.has_instance;
    g->heap_idx = FY_HEAP_NONE;
    return g;
}

void fy__apply_push(push_t *P, fy__group_t *g, fy__shard_t *sh)
{
    FY_ASSERT_SHARD(sh);
    FY_ASSERT_GROUP(g);
    fy_store_t *s = P->s;
    /* new family list: kept old ones (POST) merged with pushed ones, by name */
    size_t cap = g->nfams + P->nfams;
    /* the old list and the new one go to scratch arrays first; the group's array is only rewritten at the end */
    if (2 * cap + 1 > P->cap_gone) {
        P->cap_gone = 4 * cap + 8;
        P->gone = fy__xrealloc(P->gone, P->cap_gone * sizeof(*P->gone));
    }
    fy__gfam_t **nf = P->gone, **gone = P->gone + cap;
    size_t nn = 0, ngone = 0, oi = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            continue;
        while (oi < g->nfams && fy_str_cmp(fy__gfam_name(g->fams[oi]), pf->name) < 0) {
            if (P->method == FY_STORE_PUT)
                gone[ngone++] = g->fams[oi++];
            else
                nf[nn++] = g->fams[oi++];
        }
        fy__gfam_t *old = NULL;
        if (oi < g->nfams && fy_str_eq(fy__gfam_name(g->fams[oi]), pf->name))
            old = g->fams[oi++];
        gfam_attach(P, g, pf->ng, pf);
        if (old)
            fy__gfam_detach(s, old, sh);
        gfam_clear_marks(pf->ng);
        nf[nn++] = pf->ng;
        pf->ng = NULL;
    }
    while (oi < g->nfams) {
        if (P->method == FY_STORE_PUT)
            gone[ngone++] = g->fams[oi++];
        else
            nf[nn++] = g->fams[oi++];
    }
    for (size_t i = 0; i < ngone; i++)
        fy__gfam_detach(s, gone[i], sh);
    if (nn > g->cap_fams) {
        if (g->fams != g->fams_inline)
            free(g->fams);
        g->cap_fams = (uint32_t)nn;
        g->fams = fy__xmalloc(nn * sizeof(*g->fams));
    }
    if (nn)
        memcpy(g->fams, nf, nn * sizeof(*nf));
    g->nfams = (uint32_t)nn;
}
