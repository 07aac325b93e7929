/*
 * group_table.c: each shard's table of groups (open addressing with 8-byte tagged entries, see FY_GT_TOMB in
 * store_int.h): insertion, removal, and a group's family by name. The lookups the push needs inline
 * (fy__group_find) are in store_int.h. Called with the shard lock held.
 */
#include "store_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

/* The first entry of h's probe sequence in b that holds no group (empty or removed). */
static size_t gt_free_entry(const uint64_t *b, size_t nb, uint64_t h)
{
    size_t i = FY_BUCKET(h, nb);
    while (fy__gt_live(b[i]))
        i = (i + 1) & (nb - 1);
    return i;
}

/* Inserts a group that is not in the table (fy__group_find missed it under the same lock). The table is rebuilt when
 * live and removed entries would pass 3/4 of it: twice as large when the groups alone pass half of it, else at the
 * same size to drop the removed entries (churn, bulk deletes), which leaves at least a quarter of the table to fill
 * before the next rebuild. Rebuilding reads every group's hash, as the chained table's resize did. */
void fy__group_insert(fy__shard_t *sh, fy__group_t *g)
{
    FY_ASSERT_SHARD(sh);
    if (((uintptr_t)g & ~FY_GT_PTR_MASK) != 0) { /* 57-bit address spaces hand these out only when asked to */
        fprintf(stderr, "fy_store: group address %p above 48 bits\n", (void *)g);
        abort();
    }
    if (4 * (sh->ngroups + sh->ntomb + 1) > 3 * sh->nbuckets) {
        size_t nb = sh->nbuckets;
        if (2 * (sh->ngroups + 1) > nb)
            nb *= 2;
        uint64_t *b = fy__xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < sh->nbuckets; i++)
            if (fy__gt_live(sh->buckets[i]))
                b[gt_free_entry(b, nb, fy__gt_group(sh->buckets[i])->hash)] = sh->buckets[i];
        free(sh->buckets);
        /* atomic for fy_store_push's prefetch of its bucket, which reads these without the lock */
        __atomic_store_n(&sh->buckets, b, __ATOMIC_RELAXED);
        __atomic_store_n(&sh->nbuckets, nb, __ATOMIC_RELAXED);
        sh->ntomb = 0;
    }
    size_t i = gt_free_entry(sh->buckets, sh->nbuckets, g->hash);
    if (sh->buckets[i] == FY_GT_TOMB)
        sh->ntomb--;
    sh->buckets[i] = fy__gt_tag(g->hash) | (uint64_t)(uintptr_t)g;
    sh->ngroups++;
}

/* Removes table entry i (a live one). It becomes empty if the next one is, since no probe sequence then passes
 * through it to reach a later entry; else a tombstone. Safe while a walk in entry order is at i. */
void fy__gt_remove_at(fy__shard_t *sh, size_t i)
{
    FY_ASSERT_SHARD(sh);
    assert(fy__gt_live(sh->buckets[i]));
    if (sh->buckets[(i + 1) & (sh->nbuckets - 1)] == 0) {
        sh->buckets[i] = 0;
    } else {
        sh->buckets[i] = FY_GT_TOMB;
        sh->ntomb++;
    }
    sh->ngroups--;
}

void fy__group_unlink(fy__shard_t *sh, fy__group_t *g)
{
    FY_ASSERT_SHARD(sh);
    size_t i = FY_BUCKET(g->hash, sh->nbuckets);
    while (fy__gt_group(sh->buckets[i]) != g || !fy__gt_live(sh->buckets[i]))
        i = (i + 1) & (sh->nbuckets - 1);
    fy__gt_remove_at(sh, i);
}

fy__gfam_t *fy__group_gfam_locked(const fy__group_t *g, fy_str_t name)
{
    if (g == NULL)
        return NULL;
    FY_ASSERT_GROUP(g);
    size_t lo = 0, hi = g->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fy_str_cmp(fy__gfam_name(g->fams[mid]), name);
        if (c == 0)
            return g->fams[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* group_gfam for readers that hold a stripe lock of one of the group's names but not its shard lock (a text scrape
 * choosing among HELP variants): fast-path pushes swap entries concurrently (same names, same HELP), while changes
 * of the list itself happen with the stripe locks of all the group's names held. */
const fy__gfam_t *fy__group_gfam(const fy__group_t *g, fy_str_t name)
{
    assert(fy__lock_holds_any()); /* its shard, or a stripe of one of its names */
    size_t lo = 0, hi = g->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const fy__gfam_t *gf = __atomic_load_n(&g->fams[mid], __ATOMIC_ACQUIRE);
        int c = fy_str_cmp(fy__gfam_name(gf), name);
        if (c == 0)
            return gf;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
