/*
 * store.c: the store object: creation (shards and stripes), destruction, counters, the server's own families and
 * error texts. What each part of the store does is in the file named after it (docs/store.md has the table); the
 * structures and the lock order are in store_int.h.
 *
 * Workload assumption: pushes mostly re-send the same series of the same group (series identities are stable), so a
 * push usually only rewrites the values of existing records (push.c); series appear and disappear rarely, and then
 * the family's sorted array is rebuilt from (old array - dead + sorted pending) at the next scrape, in O(n) copying
 * plus O(k log n) comparisons (family_index.c).
 */
#include "store_int.h"

#include "fy_parse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

const char *fy_store_strerror(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define XX(name, c, text)                                                                                                          \
    case c:                                                                                                                        \
        return text;
        FY_SERR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

fy_store_t *fy_store_create(const fy_store_config_t *cfg)
{
    fy_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (cfg)
        s->cfg = *cfg;
    if (s->cfg.nshards == 0)
        s->cfg.nshards = 64;
    if (s->cfg.nstripes == 0)
        s->cfg.nstripes = 256;
    s->life_defaults = s->cfg.default_ttl_ns > 0 || s->cfg.default_interval_ns > 0;
    assert((s->cfg.nshards & (s->cfg.nshards - 1)) == 0 && (s->cfg.nstripes & (s->cfg.nstripes - 1)) == 0);
    s->shards = fy__xcalloc(s->cfg.nshards, sizeof(*s->shards));
    s->stripes = fy__xcalloc(s->cfg.nstripes, sizeof(*s->stripes));
    /* Shard locks spin briefly before sleeping: a push holds its shard for well under a microsecond, and with plain
     * mutexes two threads meeting on a shard (1 push in ~64) paid a futex sleep and wake-up each time. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        pthread_mutex_init(&s->shards[i].lock, &ma);
        s->shards[i].nbuckets = 16;
        s->shards[i].buckets = fy__xcalloc(16, sizeof(uint64_t));
    }
    pthread_mutexattr_destroy(&ma);
    for (uint32_t i = 0; i < s->cfg.nstripes; i++) {
        pthread_mutex_init(&s->stripes[i].lock, NULL);
        s->stripes[i].nbuckets = 8;
        s->stripes[i].buckets = fy__xcalloc(8, sizeof(fy__fam_t *));
    }
    return s;
}

static void gfam_free_now(fy__gfam_t *g)
{
    free(g);
}

static void group_free(fy__group_t *g)
{
    fy__life_free(g);
    free(g);
}

void fy_store_destroy(fy_store_t *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        for (size_t b = 0; b < sh->nbuckets; b++)
            if (fy__gt_live(sh->buckets[b])) {
                fy__group_t *g = fy__gt_group(sh->buckets[b]);
                for (uint32_t k = 0; k < g->nfams; k++)
                    gfam_free_now(g->fams[k]);
                if (g->fams != g->fams_inline)
                    free(g->fams);
                group_free(g);
            }
        free(sh->buckets);
        free(sh->heap);
        fy__tombs_free(sh);
        fy__reclaim(s, &sh->retired, 1);
        free(sh->retired.v);
        pthread_mutex_destroy(&sh->lock);
    }
    for (uint32_t i = 0; i < s->cfg.nstripes; i++) {
        fy__stripe_t *st = &s->stripes[i];
        for (size_t b = 0; b < st->nbuckets; b++)
            for (fy__fam_t *f = st->buckets[b], *nx; f; f = nx) {
                nx = f->next;
                fy__farr_t *a = atomic_load(&f->published);
                if (a) {
                    for (size_t k = 0; k < a->n; k++)
                        free(a->v[k]);
                    free(a);
                }
                for (size_t k = 0; k < f->npending; k++)
                    free(f->pending[k]);
                for (uint32_t k = 0; k < f->nhv; k++)
                    free(f->hv[k].h);
                free(f->hv);
                free(f->pending);
                free(f->dead);
                free(f->set);
                if (f->own)
                    free((void *)f->own_help.ptr);
                free(f);
            }
        free(st->buckets);
        fy__reclaim(s, &st->retired, 1);
        free(st->retired.v);
        pthread_mutex_destroy(&st->lock);
    }
    free(s->shards);
    free(s->stripes);
    free(s);
}

void fy_store_stats(fy_store_t *s, fy_store_stats_t *out)
{
    out->groups = atomic_load(&s->ngroups);
    out->series = atomic_load(&s->nseries);
    out->expired = atomic_load(&s->expired);
    out->bulk_deleted = atomic_load(&s->bulk_deleted);
    out->tombstones = atomic_load(&s->ntombstones);
}

void fy_store_err_free(fy_store_err_t *err)
{
    if (err) {
        free(err->msg);
        err->msg = NULL;
        err->msg_len = 0;
    }
}

int fy_store_utf8_names(const fy_store_t *s)
{
    return s->cfg.utf8_names;
}

int fy_store_register_own(fy_store_t *s, fy_str_t name, fy_type_t type, fy_str_t help, int predefined)
{
    if (!fy__metric_name_valid(name, 0) || (unsigned)type > FY_TYPE_MAX)
        return FY_SERR_BADARG;
    uint64_t h = fy__hash(name.ptr, name.len);
    fy__stripe_t *st = &s->stripes[h & (s->cfg.nstripes - 1)];
    int rc = FY_OK;
    fy__stripe_lock(s, st);
    fy__fam_t *f = fy__fam_find(st, h, name);
    if (f == NULL)
        f = fy__fam_create(st, h, name);
    if (f->own) {
        rc = FY_SERR_BADARG;
    } else {
        char *hc = fy__xmalloc(help.len + 1);
        memcpy(hc, help.ptr, help.len);
        f->own = 1;
        f->own_type = (uint8_t)type;
        f->own_predefined = predefined ? 1 : 0;
        f->own_help = fy_str(hc, help.len);
    }
    fy__stripe_unlock(s, st);
    return rc;
}
