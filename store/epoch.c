/*
 * epoch.c: epoch-based reclamation. Text scrapes read gfams, slots, published arrays, HELP variants and fams
 * without locks; whoever unpublishes one of them retires it here instead of freeing it.
 *
 * Text scrapes register in a reader slot with the epoch they entered at; retired objects
 * carry the epoch at retirement; an object is freed once no registered reader entered at or before that epoch.
 * Readers bump the epoch when they enter, so a writer only loads it. All operations are seq_cst: a reader whose
 * registration a reclaimer does not see reads the published pointers after the reclaimer's scan, and the
 * unpublishing of a retired object precedes its retirement.
 */
#include "store_int.h"

#include <stdlib.h>

unsigned fy__ebr_enter(fy_store_t *s)
{
    for (uint32_t i = 0; i < s->cfg.nshards; i++)
        atomic_fetch_add(&s->shards[i].readers, 1);
    uint64_t e = atomic_fetch_add(&s->epoch, 1) + 1;
    for (;;) {
        for (unsigned i = 0; i < FY_EBR_READERS; i++) {
            uint64_t z = 0;
            if (atomic_load(&s->readers[i].e) == 0 && atomic_compare_exchange_strong(&s->readers[i].e, &z, e))
                return i;
        }
        sched_yield();
    }
}

void fy__ebr_leave(fy_store_t *s, unsigned r)
{
    atomic_store(&s->readers[r].e, 0);
    for (uint32_t i = 0; i < s->cfg.nshards; i++)
        atomic_fetch_sub(&s->shards[i].readers, 1);
}

static uint64_t ebr_min_reader(fy_store_t *s)
{
    uint64_t m = UINT64_MAX;
    for (unsigned i = 0; i < FY_EBR_READERS; i++) {
        uint64_t e = atomic_load(&s->readers[i].e);
        if (e != 0 && e < m)
            m = e;
    }
    return m;
}

void fy__reclaim(fy_store_t *s, fy__retire_list_t *l, int force)
{
    assert(force || fy__lock_holds_retire_list(l));
    if (l->n == 0)
        return;
    uint64_t m = force ? UINT64_MAX : ebr_min_reader(s);
    size_t j = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].epoch < m)
            free(l->v[i].p);
        else
            l->v[j++] = l->v[i];
    }
    l->n = j;
}

void fy__retire(fy_store_t *s, fy__retire_list_t *l, void *p)
{
    FY_ASSERT_RETIRE_LIST(l);
    if (p == NULL)
        return;
    FY_GROW(l->v, l->n, l->cap);
    l->v[l->n].p = p;
    l->v[l->n].epoch = atomic_load(&s->epoch);
    l->n++;
}

/* Frees p (already unpublished under the shard lock) now if no text scrape is running, else retires it. The
 * read-modify-write orders this push's unpublishing stores before any scrape that counts itself in later (a plain
 * load would need a fence, which ThreadSanitizer does not model); the shard's line is this thread's already (its
 * mutex), so it costs no transfer between cores. */
void fy__retire_shard(fy_store_t *s, fy__shard_t *sh, void *p)
{
    FY_ASSERT_SHARD(sh);
    if (atomic_fetch_add(&sh->readers, 0) == 0)
        free(p);
    else
        fy__retire(s, &sh->retired, p);
}
