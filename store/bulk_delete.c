/*
 * bulk_delete.c: deleting every group a predicate selects, one shard at a time, with one lock set per shard and the
 * removals' cache misses overlapped by prefetching.
 */
#include "push_int.h"

#include <stdlib.h>

/* The lines of a group that removing it reads: the lookup fields, the family list and the timestamp slots. */
static void group_prefetch_fams(const fy__group_t *g)
{
    __builtin_prefetch(g);
    __builtin_prefetch((const char *)g + offsetof(fy__group_t, tsrec[1].slot));
    __builtin_prefetch((const char *)g + offsetof(fy__group_t, fams_inline) + sizeof(g->fams_inline) - 1);
}

/* The header and first records of each of a group's gfams (the group's family list must be in the cache). */
static void gfams_prefetch(const fy__group_t *g)
{
    for (uint32_t k = 0; k < g->nfams; k++) {
        __builtin_prefetch(g->fams[k]);
        __builtin_prefetch((const char *)g->fams[k] + 64);
    }
}

/* The groups of one shard that a bulk delete selected (already unlinked from the shard's table, heap and life list,
 * under the shard lock, which the caller holds) leave the metric-name index under one lock set: the stripes of all
 * their families and the two timestamp families, taken once instead of once per group. The work per group is the
 * same as group_remove's, but one group's objects do not depend on another's: the loops prefetch the gfams, then the
 * slots, then the series-set entries of the groups a few places ahead, so that the misses (every object is one at
 * 100 000 groups) overlap instead of following each other. */
static void bulk_remove(push_t *P, fy__shard_t *sh, fy__group_t **v, size_t n, uint64_t *seen)
{
    FY_ASSERT_SHARD(sh);
    enum { AHEAD_GROUP = 32, AHEAD_GFAM = 20, AHEAD_SLOT = 10, AHEAD_SET = 4 };
    fy_store_t *s = P->s;
    uint32_t mask = s->cfg.nstripes - 1;
    P->nstripes = 0;
    for (size_t i = 0; i < n + 2; i++) {
        const fy__group_t *g = i < n ? v[i] : NULL;
        if (i + AHEAD_GROUP < n)
            group_prefetch_fams(v[i + AHEAD_GROUP]);
        if (i + AHEAD_GFAM < n)
            gfams_prefetch(v[i + AHEAD_GFAM]);
        for (uint32_t k = 0; g && k < g->nfams; k++) {
            uint32_t x = (uint32_t)(g->fams[k]->fam->hash & mask);
            if (!(seen[x / 64] & (1ull << (x % 64)))) {
                seen[x / 64] |= 1ull << (x % 64);
                FY_GROW(P->stripes, P->nstripes, P->cap_stripes);
                P->stripes[P->nstripes++] = x;
            }
        }
        if (i >= n) { /* the timestamp families, once */
            uint32_t x = (uint32_t)(fy__hash(fy__ts_names[i - n].ptr, fy__ts_names[i - n].len) & mask);
            if (!(seen[x / 64] & (1ull << (x % 64)))) {
                seen[x / 64] |= 1ull << (x % 64);
                FY_GROW(P->stripes, P->nstripes, P->cap_stripes);
                P->stripes[P->nstripes++] = x;
            }
        }
    }
    for (size_t i = 0; i < P->nstripes; i++)
        seen[P->stripes[i] / 64] = 0;
    for (size_t i = 1; i < P->nstripes; i++) { /* insertion sort: usually a handful */
        uint32_t t = P->stripes[i];
        size_t j = i;
        for (; j > 0 && P->stripes[j - 1] > t; j--)
            P->stripes[j] = P->stripes[j - 1];
        P->stripes[j] = t;
    }
    fy__lockset_lock(P);
    fy__fam_t *tsf[2] = {fy__ts_fam(s, 0, 0), fy__ts_fam(s, 1, 0)};
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD_GROUP < n)
            group_prefetch_fams(v[i + AHEAD_GROUP]);
        if (i + AHEAD_GFAM < n)
            gfams_prefetch(v[i + AHEAD_GFAM]);
        if (i + AHEAD_SLOT < n) {
            const fy__group_t *g = v[i + AHEAD_SLOT];
            for (uint32_t k = 0; k < g->nfams; k++) {
                const fy__rec_t *r = fy__gfam_recs(g->fams[k]);
                for (uint32_t j = 0; j < g->fams[k]->nrecs && j < 8; j++)
                    __builtin_prefetch(r[j].slot);
            }
            __builtin_prefetch(g->tsrec[0].slot);
            __builtin_prefetch(g->tsrec[1].slot);
        }
        if (i + AHEAD_SET < n) {
            const fy__group_t *g = v[i + AHEAD_SET];
            for (uint32_t k = 0; k < g->nfams; k++) {
                const fy__fam_t *f = g->fams[k]->fam;
                const fy__rec_t *r = fy__gfam_recs(g->fams[k]);
                for (uint32_t j = 0; j < g->fams[k]->nrecs && j < 8; j++)
                    __builtin_prefetch(&f->set[r[j].slot->hash & (f->set_cap - 1)]);
            }
            for (int t = 0; t < 2; t++)
                __builtin_prefetch(&tsf[t]->set[g->tsrec[t].slot->hash & (tsf[t]->set_cap - 1)]);
        }
        fy__group_t *g = v[i];
        for (uint32_t k = 0; k < g->nfams; k++)
            fy__gfam_detach(s, g->fams[k], sh);
        for (int t = 0; t < 2; t++) {
            fy__fam_t *f = tsf[t];
            fy__slot_kill(f, g->tsrec[t].slot);
            fy__help_ref(s, f, 1, fy__ts_help[t], -1);
            f->refs--;
            fy__fam_maybe_drop(s, fy__stripe_of(s, f->hash), f); /* only with the batch's last group, if at all */
        }
        if (g->fams != g->fams_inline)
            free(g->fams);
        free(g->lf); /* unlinked from the heap and life list by the caller; read under the shard lock only */
        g->lf = NULL;
        fy__retire(s, &sh->retired, g); /* scrapes may still read its timestamp records */
    }
    atomic_fetch_sub(&s->nseries, 2 * n);
    fy__lockset_unlock(P);
    P->nstripes = 0;
}

uint64_t fy_store_delete_where(fy_store_t *s, fy_store_group_cb_t pred, void *ctx)
{
    push_t P;
    memset(&P, 0, sizeof(P));
    P.s = s;
    fy__scratch_take(&P);
    uint64_t n = 0;
    fy__group_t **v = NULL;
    size_t nv = 0, cap_v = 0;
    uint64_t *seen = fy__xcalloc((s->cfg.nstripes + 63) / 64, sizeof(*seen));
    fy__view_labels_t vl = {0};
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        nv = 0;
        for (size_t b = 0; b < sh->nbuckets; b++) {
            /* what life_view and a predicate read of the group: its first two lines, its life fields and its key
             * (the bucket array itself is read in order, which the hardware prefetcher follows) */
            if (b + 24 < sh->nbuckets && fy__gt_live(sh->buckets[b + 24])) {
                const char *a = (const char *)fy__gt_group(sh->buckets[b + 24]);
                __builtin_prefetch(a);
                __builtin_prefetch(a + 64);
                __builtin_prefetch(a + offsetof(fy__group_t, deadline_ns));
                __builtin_prefetch(a + sizeof(fy__group_t));
                __builtin_prefetch(a + sizeof(fy__group_t) + 64);
            }
            if (!fy__gt_live(sh->buckets[b]))
                continue;
            fy__group_t *g = fy__gt_group(sh->buckets[b]);
            fy_store_group_view_t view;
            fy__life_view(s, g, &vl, &view);
            if (pred(ctx, &view)) {
                fy__gt_remove_at(sh, b);
                fy__life_unlink(sh, g);
                FY_GROW(v, nv, cap_v);
                v[nv++] = g;
            }
        }
        if (nv > 0)
            bulk_remove(&P, sh, v, nv, seen);
        atomic_fetch_sub(&s->ngroups, nv);
        n += nv;
        fy__reclaim_maybe(s, &sh->retired);
        fy__shard_unlock(s, sh);
    }
    free(seen);
    free(v);
    fy__view_labels_free(&vl);
    fy__scratch_give(&P);
    atomic_fetch_add(&s->bulk_deleted, n);
    return n;
}
