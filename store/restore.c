/*
 * restore.c: restoring a persisted group's times and lifetime declarations after its families were pushed again
 * (snapshot and log replay).
 */
#include "push_int.h"

#include "fy_parse.h"

int fy_store_restore_times(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, const fy_store_times_t *t,
                           const fy_str_t *fam_names, const int64_t *fam_stamps, size_t nfams)
{
    push_t P;
    fy__group_t *g;
    int rc;
    fy__shard_t *sh = fy__keyed_begin(&P, s, gkl, ngk, &g, &rc);
    if (sh == NULL)
        return rc;
    if (g == NULL) {
        rc = FY_SERR_BADARG;
    } else {
        g->push_ns = t->push_ns;
        g->push_stamp_ns = t->push_stamp_ns;
        g->fail_ns = t->fail_ns;
        g->fail_stamp_ns = t->fail_stamp_ns;
        g->origin = t->origin;
        if (t->life.ttl_ns != 0 || t->life.interval_ns != 0)
            g->life_any = 1;
        if (g->lf || g->life_any)
            fy__group_life(g)->life = t->life;
        fy__life_update(s, sh, g);
        for (int k = 0; k < 2; k++) {
            double v = (double)(k == FY_TS_PUSH ? g->push_ns : g->fail_ns) / 1e9;
            __atomic_store(&g->tsrec[k].value, &v, __ATOMIC_RELAXED);
        }
        /* Family stamps: gfams are immutable once published, but a restore runs before anything reads the store. */
        for (size_t i = 0; i < nfams; i++) {
            fy__gfam_t *gf = (fy__gfam_t *)fy__group_gfam(g, fam_names[i]);
            if (gf != NULL)
                gf->stamp_ns = fam_stamps[i];
        }
    }
    fy__keyed_end(&P, sh);
    return rc;
}
