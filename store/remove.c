/*
 * remove.c: removing one group (deletes, expiry, a push to an expired group) and the set-up shared by keyed changes
 * other than a push (delete, restore): the grouping key parsed, the shard locked, the group looked up.
 */
#include "push_int.h"

#include "fy_parse.h"

#include <stdlib.h>

/* Removes group g (found under sh's lock, which the caller holds) from the store. P is a push_t used only for its
 * lock set, which is empty before and after. */
void fy__group_remove(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    FY_ASSERT_SHARD(sh);
    FY_ASSERT_GROUP(g);
    fy_store_t *s = P->s;
    size_t keep = P->nfams;
    P->nfams = 0; /* the lock set of a deletion is the group's families and the timestamp families */
    P->nstripes = 0;
    fy__lockset_build(P, g);
    P->nfams = keep;
    fy__lockset_lock(P);
    for (uint32_t i = 0; i < g->nfams; i++)
        fy__gfam_detach(s, g->fams[i], sh);
    for (int t = 0; t < 2; t++) {
        fy__fam_t *f = fy__ts_fam(s, t, 0);
        fy__slot_kill(f, g->tsrec[t].slot);
        fy__help_ref(s, f, 1, fy__ts_help[t], -1);
        f->refs--;
        fy__fam_maybe_drop(s, fy__stripe_of(s, f->hash), f);
    }
    atomic_fetch_sub(&s->nseries, 2);
    fy__lockset_unlock(P);
    P->nstripes = 0;
    fy__life_unlink(sh, g);
    fy__life_free(g); /* read under the shard lock only */
    fy__group_unlink(sh, g);
    atomic_fetch_sub(&s->ngroups, 1);
    if (g->fams != g->fams_inline)
        free(g->fams);
    fy__retire(s, &sh->retired, g); /* scrapes may still read its timestamp records */
}

/* The start of a keyed change other than a push (delete, restore): P set up, the grouping key parsed, its shard locked
 * and its group looked up (*g NULL: none). Returns the locked shard, or NULL with *rc set and nothing held. The caller
 * ends with keyed_end. */
fy__shard_t *fy__keyed_begin(push_t *P, fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy__group_t **g, int *rc)
{
    memset(P, 0, sizeof(*P));
    P->s = s;
    P->method = FY_STORE_PUT;
    fy__scratch_take(P);
    if ((*rc = fy__gkey_parse(&P->gk, &P->gkmem, gkl, ngk, s->cfg.utf8_names)) != FY_OK) {
        fy__scratch_give(P);
        return NULL;
    }
    fy__shard_t *sh = &s->shards[P->gk.hash & (s->cfg.nshards - 1)];
    fy__shard_lock(s, sh);
    *g = fy__group_find(sh, P->gk.hash, P->gk.key);
    return sh;
}

void fy__keyed_end(push_t *P, fy__shard_t *sh)
{
    fy__shard_unlock(P->s, sh);
    fy__scratch_give(P);
}

int fy_store_delete(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, int64_t now_ns)
{
    if (s->cfg.lww)
        return fy__lww_delete(s, gkl, ngk, now_ns); /* only what is older than now_ns goes, and a tombstone stays */
    push_t P;
    fy__group_t *g;
    int rc;
    fy__shard_t *sh = fy__keyed_begin(&P, s, gkl, ngk, &g, &rc);
    if (sh == NULL)
        return rc;
    if (g)
        fy__group_remove(&P, sh, g);
    fy__reclaim_maybe(s, &sh->retired);
    fy__keyed_end(&P, sh);
    return FY_OK;
}
