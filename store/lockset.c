/*
 * lockset.c: the stripe locks a change takes, after its shard lock: every metric name the check must see (the
 * pushed names, their _count/_sum/_bucket relatives, the group's current names, the timestamp families), as
 * stripe indexes sorted and deduplicated, locked in ascending order and unlocked in reverse (store_int.h).
 */
#include "push_int.h"

static void lockset_add_name(push_t *P, fy_str_t n)
{
    FY_GROW(P->stripes, P->nstripes, P->cap_stripes);
    P->stripes[P->nstripes++] = (uint32_t)(fy__hash(n.ptr, n.len) & (P->s->cfg.nstripes - 1));
}

void fy__lockset_build(push_t *P, const fy__group_t *g)
{
    char tmp[512];
    for (size_t i = 0; i < P->nfams; i++) {
        fy_str_t n = P->fams[i].name;
        lockset_add_name(P, n);
        static const struct {
            const char *s;
            size_t l;
        } sufs[3] = {{"_count", 6}, {"_sum", 4}, {"_bucket", 7}};
        for (int k = 0; k < 3; k++) {
            if (has_suffix(n, sufs[k].s, sufs[k].l))
                lockset_add_name(P, fy_str(n.ptr, n.len - sufs[k].l));
            if (n.len + sufs[k].l <= sizeof(tmp)) {
                if (n.len != 0) /* an empty name may have no pointer (refused later, as invalid) */
                    memcpy(tmp, n.ptr, n.len);
                memcpy(tmp + n.len, sufs[k].s, sufs[k].l);
                lockset_add_name(P, fy_str(tmp, n.len + sufs[k].l));
            }
        }
    }
    if (g)
        for (uint32_t i = 0; i < g->nfams; i++)
            lockset_add_name(P, fy__gfam_name(g->fams[i]));
    /* the timestamp families: slots and HELP counts on creation and deletion, failure checks of new groups */
    lockset_add_name(P, fy__ts_names[0]);
    lockset_add_name(P, fy__ts_names[1]);
    for (size_t i = 1; i < P->nstripes; i++) { /* insertion sort: a few dozen entries */
        uint32_t t = P->stripes[i];
        size_t j = i;
        for (; j > 0 && P->stripes[j - 1] > t; j--)
            P->stripes[j] = P->stripes[j - 1];
        P->stripes[j] = t;
    }
    size_t w = 0;
    for (size_t i = 0; i < P->nstripes; i++)
        if (w == 0 || P->stripes[w - 1] != P->stripes[i])
            P->stripes[w++] = P->stripes[i];
    P->nstripes = w;
}

void fy__lockset_lock(push_t *P)
{
    for (size_t i = 0; i < P->nstripes; i++)
        fy__stripe_lock(P->s, &P->s->stripes[P->stripes[i]]);
}

void fy__lockset_unlock(push_t *P)
{
    for (size_t i = P->nstripes; i-- > 0;) {
        fy__stripe_t *st = &P->s->stripes[P->stripes[i]];
        fy__reclaim_maybe(P->s, &st->retired);
        fy__stripe_unlock(P->s, st);
    }
}
