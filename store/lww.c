/*
 * lww.c: last-writer-wins merging for replication (fy_store_config_t.lww; docs/store.md, "LWW mode"): a group's
 * registers (clear, del, push, fail, life fields, kills), the per-shard tombstone table, the out-of-order push, and
 * the other changes (delete, fail, kill, wipe, a whole group's state). Every change carries a stamp that no other
 * change has, and each operation is a join on the group's semilattice, so that a store ends in the same state
 * whatever the order and the number of deliveries of a set of changes.
 *
 * Why del and clear are two stamps: a PUT clears the families older than itself but not the failure time nor the
 * life declarations (a PUT after a failed push still shows the failure, as without lww), while a DELETE or wipe hides
 * everything older. So families live iff stamp >= clear, and push, fail and life registers are visible iff their
 * stamp is above del. An op older than clear still raises the push, fail and life registers (only its families are
 * dead): in stamp order it would have set them before the clearing op, which would have kept them.
 *
 * The in-order case (a stamp above everything the group holds: every local push) goes through push.c's paths as a
 * push without lww and only notes its stamps here (fy__lww_note_*). Locks: the group's shard lock throughout; the
 * stripe locks of the group's names (and the pushed names) while families are written or removed.
 */
#include "push_int.h"

#include "fy_parse.h"

#include <assert.h>
#include <stdlib.h>

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The tombstone table: removed groups' keys and del stamps, chained, in their shard (locked by it). */

static fy__tomb_t **tomb_slot(fy__shard_t *sh, uint64_t h, fy_str_t key)
{
    if (sh->tombs == NULL)
        return NULL;
    fy__tomb_t **p = &sh->tombs[FY_BUCKET(h, sh->cap_tombs)];
    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->keylen == key.len && memcmp((*p)->key, key.ptr, key.len) == 0)
            return p;
    return p;
}

static void tomb_grow(fy__shard_t *sh)
{
    size_t ncap = sh->cap_tombs ? 2 * sh->cap_tombs : 16;
    fy__tomb_t **nb = fy__xcalloc(ncap, sizeof(*nb));
    for (size_t i = 0; i < sh->cap_tombs; i++)
        for (fy__tomb_t *t = sh->tombs[i], *nx; t; t = nx) {
            nx = t->next;
            fy__tomb_t **b = &nb[FY_BUCKET(t->hash, ncap)];
            t->next = *b;
            *b = t;
        }
    free(sh->tombs);
    sh->tombs = nb;
    sh->cap_tombs = ncap;
}

static int64_t tomb_get(fy__shard_t *sh, uint64_t h, fy_str_t key)
{
    fy__tomb_t **p = tomb_slot(sh, h, key);
    return p && *p ? (*p)->del : 0;
}

/* Takes the tombstone of a group being created (its stamp is now the group's del). */
static void tomb_take(fy_store_t *s, fy__shard_t *sh, uint64_t h, fy_str_t key)
{
    fy__tomb_t **p = tomb_slot(sh, h, key);
    if (p && *p) {
        fy__tomb_t *t = *p;
        *p = t->next;
        free(t);
        sh->ntombs--;
        atomic_fetch_sub(&s->ntombstones, 1);
    }
}

/* tombstone := max(tombstone, del), unless the wipe already covers it. */
static void tomb_raise(fy_store_t *s, fy__shard_t *sh, uint64_t h, fy_str_t key, int64_t del)
{
    if (del <= atomic_load(&s->wipe))
        return;
    fy__tomb_t **p = tomb_slot(sh, h, key);
    if (p && *p) {
        (*p)->del = max64((*p)->del, del);
        return;
    }
    if (sh->ntombs + 1 > sh->cap_tombs)
        tomb_grow(sh);
    fy__tomb_t *t = fy__xmalloc(sizeof(*t) + key.len);
    t->hash = h;
    t->del = del;
    t->keylen = (uint32_t)key.len;
    memcpy(t->key, key.ptr, key.len);
    fy__tomb_t **b = &sh->tombs[FY_BUCKET(h, sh->cap_tombs)];
    t->next = *b;
    *b = t;
    sh->ntombs++;
    atomic_fetch_add(&s->ntombstones, 1);
}

void fy__tombs_free(fy__shard_t *sh)
{
    for (size_t i = 0; i < sh->cap_tombs; i++)
        for (fy__tomb_t *t = sh->tombs[i], *nx; t; t = nx) {
            nx = t->next;
            free(t);
        }
    free(sh->tombs);
    sh->tombs = NULL;
    sh->cap_tombs = sh->ntombs = 0;
}

int64_t fy__lww_absent_del(fy_store_t *s, fy__shard_t *sh, const gkey_t *k)
{
    FY_ASSERT_SHARD(sh);
    return max64(tomb_get(sh, k->hash, k->key), atomic_load(&s->wipe));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* A group's registers. */

void fy__life_free(fy__group_t *g)
{
    if (g->lf == NULL)
        return;
    fy__lww_t *X = g->lf->lww;
    if (X) {
        for (uint32_t i = 0; i < X->nkills; i++)
            free((void *)X->kills[i].name.ptr);
        free(X->kills);
        free(X);
    }
    free(g->lf);
    g->lf = NULL;
}

/* The group's registers; a group just created gets them, starting from its tombstone's (or the wipe's) stamp. */
static fy__lww_t *lww_of(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    fy__life_t *lf = fy__group_life(g);
    if (lf->lww == NULL) {
        lf->lww = fy__xcalloc(1, sizeof(*lf->lww));
        lf->lww->del = lf->lww->clear = lf->lww->max = P->lww_del;
        tomb_take(P->s, sh, g->hash, fy__group_key(g));
    }
    return lf->lww;
}

void fy__lww_note_push(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, int created)
{
    (void)created;
    fy__lww_t *X = lww_of(P, sh, g);
    int64_t s = P->now;
    if (P->method == FY_STORE_PUT)
        X->clear = s;
    X->push = X->max = s;
    if (life && life->ttl_ns != 0)
        X->ttl = life->ttl_ns, X->ttl_stamp = s;
    if (life && life->interval_ns != 0)
        X->interval = life->interval_ns, X->interval_stamp = s;
    g->fail_stamp_ns = g->fail_ns ? g->fail_ns : s;
}

void fy__lww_note_fail(push_t *P, fy__group_t *g, int created)
{
    (void)created;
    fy__shard_t *sh = &P->s->shards[g->hash & (P->s->cfg.nshards - 1)];
    fy__lww_t *X = lww_of(P, sh, g);
    X->fail = X->max = P->now;
    g->push_stamp_ns = g->push_ns ? g->push_ns : P->now;
}

static int killed(const fy__lww_t *X, fy_str_t name, int64_t s)
{
    for (uint32_t i = 0; i < X->nkills; i++)
        if (fy_str_eq(X->kills[i].name, name))
            return s <= X->kills[i].stamp;
    return 0;
}

static void kill_add(fy__lww_t *X, fy_str_t name, int64_t s)
{
    uint32_t i = 0;
    for (; i < X->nkills; i++) {
        int c = fy_str_cmp(X->kills[i].name, name);
        if (c == 0) {
            X->kills[i].stamp = max64(X->kills[i].stamp, s);
            return;
        }
        if (c > 0)
            break;
    }
    FY_GROW(X->kills, X->nkills, X->cap_kills);
    memmove(&X->kills[i + 1], &X->kills[i], (X->nkills - i) * sizeof(*X->kills));
    char *n = fy__xmalloc(name.len + 1);
    if (name.len)
        memcpy(n, name.ptr, name.len);
    X->kills[i].name = fy_str(n, name.len);
    X->kills[i].stamp = s;
    X->nkills++;
}

/* The group's visible state from its registers: push and fail times (and the families' JSON stamps of the two
 * timestamp families, which must not depend on the order either), the life declarations, the deadline. */
static void lww_refresh(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    fy__lww_t *X = g->lf->lww;
    g->push_ns = X->push > X->del ? X->push : 0;
    g->fail_ns = X->fail > X->del ? X->fail : 0;
    g->push_stamp_ns = g->push_ns ? g->push_ns : g->fail_ns;
    g->fail_stamp_ns = g->fail_ns ? g->fail_ns : g->push_ns;
    g->lf->life.ttl_ns = X->ttl_stamp > X->del ? X->ttl : 0;
    g->lf->life.interval_ns = X->interval_stamp > X->del ? X->interval : 0;
    if (g->lf->life.ttl_ns || g->lf->life.interval_ns)
        g->life_any = 1;
    g->version++;
    g->shape[0] = g->shape[1] = 0; /* the blind path needs a group that holds exactly its last push's families */
    fy__ts_update(P, g, 0);
    fy__life_update(P->s, sh, g);
}

static int lww_empty(const fy__group_t *g)
{
    return g->nfams == 0 && g->push_ns == 0 && g->fail_ns == 0;
}

/* The stripe locks of the group's names and the timestamp families (the pushed names too, if P holds families). */
static void lock_group(push_t *P, const fy__group_t *g)
{
    P->nstripes = 0;
    fy__lockset_build(P, g);
    fy__lockset_lock(P);
}

static void unlock_group(push_t *P)
{
    fy__lockset_unlock(P);
    P->nstripes = 0;
}

/* Removes the group's families stamped below cut, and family kname if stamped at or before kstamp (lock_group held). */
static void remove_fams(push_t *P, fy__shard_t *sh, fy__group_t *g, int64_t cut, fy_str_t kname, int64_t kstamp)
{
    FY_ASSERT_LOCKSET(P);
    uint32_t w = 0;
    for (uint32_t i = 0; i < g->nfams; i++) {
        fy__gfam_t *gf = g->fams[i];
        if (gf->stamp_ns < cut || (kstamp && gf->stamp_ns <= kstamp && fy_str_eq(fy__gfam_name(gf), kname)))
            fy__gfam_detach(P->s, gf, sh);
        else
            g->fams[w++] = gf;
    }
    g->nfams = w;
}

static int has_fams_below(const fy__group_t *g, int64_t cut, fy_str_t kname, int64_t kstamp)
{
    for (uint32_t i = 0; i < g->nfams; i++) {
        const fy__gfam_t *gf = g->fams[i];
        if (gf->stamp_ns < cut || (kstamp && gf->stamp_ns <= kstamp && fy_str_eq(fy__gfam_name(gf), kname)))
            return 1;
    }
    return 0;
}

/* Removes a group that holds nothing visible any more, remembering its del in a tombstone. */
static void remove_with_tomb(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    int64_t del = g->lf->lww->del;
    uint64_t h = g->hash;
    fy__buf_t *k = &P->tmp; /* the key outlives the group's removal here */
    k->n = 0;
    fy__buf_add(k, fy__group_key(g).ptr, g->keylen);
    size_t nf = P->nfams;
    P->nfams = 0;
    fy__group_remove(P, sh, g);
    P->nfams = nf;
    tomb_raise(P->s, sh, h, fy_str(k->p, k->n), del);
}

/* A change stamped at or after the group's deadline sees it absent (as fy_store_push_life): expiry leaves no
 * tombstone. Returns the group, or NULL if it expired. */
static fy__group_t *unless_expired(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    fy_store_t *s = P->s;
    if (g && (g->life_any || s->life_defaults) && g->deadline_ns != 0 && g->deadline_ns <= P->now) {
        size_t nf = P->nfams;
        P->nfams = 0;
        fy__group_remove(P, sh, g);
        P->nfams = nf;
        atomic_fetch_add(&s->expired, 1);
        return NULL;
    }
    return g;
}

/* Creates an absent group with nothing but its timestamp series (push time 0), as a rejected push does; NULL if the
 * grouping key cannot make a group (the timestamp series' check, as for a push: B3/B4). P->lww_del must be set. */
static fy__group_t *create_empty(push_t *P, fy__shard_t *sh)
{
    static const fy_body_t empty;
    if (!P->gk.valid_utf8)
        return NULL;
    P->body = &empty;
    fy__prepare(P, 1);
    lock_group(P, NULL);
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        pf->fam = fy__lookup(P, pf->name);
        fy__check_series(P, NULL, pf, &P->ser[pf->first], FY_TYPE_GAUGE);
    }
    fy__group_t *g = NULL;
    if (P->nerr == 0) {
        g = fy__group_new(P);
        fy__group_insert(sh, g);
        atomic_fetch_add(&P->s->ngroups, 1);
        fy__ts_create(P, g);
        fy__ts_update(P, g, 1);
    }
    unlock_group(P);
    P->nfams = P->nser = 0;
    P->nerr = 0;
    P->err.n = 0;
    P->key_caused = 0;
    if (g)
        lww_of(P, sh, g);
    return g;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Pushes. */

void fy__merge_drop(fy__merge_t *M, fy_str_t name)
{
    FY_GROW(M->dropped, M->ndropped, M->cap_dropped);
    M->dropped[M->ndropped++] = name;
}

int fy__lww_drop(push_t *P, const fy__group_t *g, fy__merge_t *M)
{
    while (P->nerr) {
        size_t w = 0, ndrop = 0;
        for (size_t i = 0; i < P->nfams; i++)
            if (P->fams[i].failed && !P->fams[i].is_ts)
                ndrop++;
        if (P->key_caused || ndrop == 0) {
            /* not one family's fault: the whole change goes (the caller frees the prepared families) */
            for (size_t i = 0; i < P->nfams; i++)
                if (!P->fams[i].is_ts)
                    fy__merge_drop(M, P->fams[i].name);
            return 1;
        }
        for (size_t i = 0; i < P->nfams; i++) {
            pfam_t *pf = &P->fams[i];
            if (pf->failed && !pf->is_ts) {
                fy__merge_drop(M, pf->name);
                free(pf->ng);
                pf->ng = NULL;
            } else {
                P->fams[w++] = *pf;
            }
        }
        P->nfams = w;
        P->nerr = 0;
        P->err.n = 0;
        /* again without them: a family may have passed only against a dropped one (suffixes, earlier pushed names) */
        fy__check_push(P, g);
    }
    return 0;
}

int fy__lww_push(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, uint32_t origin, fy__merge_t *M,
                 int rejected)
{
    FY_ASSERT_SHARD(sh);
    fy__lww_t *X = g->lf->lww;
    int64_t s = P->now;
    int rc = FY_OK;
    if (s < X->del)
        return FY_OK; /* deleted after it: nothing of this change is visible */
    if (rejected) {
        /* a local push, refused by its own content */
        X->fail = max64(X->fail, s);
        goto Registers;
    }
    fy__prepare_hashes(P);
    int64_t cut = P->method == FY_STORE_PUT ? max64(X->clear, s) : X->clear;
    size_t w = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        const fy__gfam_t *old = fy__group_gfam_locked(g, pf->name);
        if (s >= cut && (old == NULL || old->stamp_ns < s) && !killed(X, pf->name, s))
            P->fams[w++] = *pf;
    }
    P->nfams = w;
    if (w > 0 || has_fams_below(g, cut, fy_str("", 0), 0)) {
        P->lww_cut = cut;
        P->method = FY_STORE_POST; /* what stays and goes is said by lww_cut and the kept families */
        fy__prepare_gfams(P);
        lock_group(P, g);
        fy__check_push(P, g);
        if (P->nerr && M)
            fy__lww_drop(P, g, M); /* the group exists: its key is fine, so this drops families only */
        if (P->nerr) {
            unlock_group(P);
            X->fail = max64(X->fail, s);
            rc = FY_SERR_INVALID;
            goto Registers;
        }
        if (P->nfams)
            fy__apply_push(P, g, sh);
        remove_fams(P, sh, g, cut, fy_str("", 0), 0);
        unlock_group(P);
    }
    X->clear = cut;
    if (s > X->push) {
        X->push = s;
        g->origin = origin;
    }
    if (life && life->ttl_ns != 0 && s > X->ttl_stamp)
        X->ttl = life->ttl_ns, X->ttl_stamp = s;
    if (life && life->interval_ns != 0 && s > X->interval_stamp)
        X->interval = life->interval_ns, X->interval_stamp = s;
Registers:
    X->max = max64(X->max, s);
    lww_refresh(P, sh, g);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Keyed changes other than pushes. */

typedef enum { OP_DELETE, OP_CLEAR, OP_FAIL, OP_KILL } keyed_op_t;

/* DELETE: clear and del := max(., s); CLEAR (a PUT's clear without the push, for state transfer): clear := max;
 * FAIL: fail := max(fail, s) if above del; KILL: the kill recorded, the family removed if at or before s, and fail
 * as FAIL. Each creates an absent group as a rejected push does (FAIL, KILL) or raises its tombstone (DELETE). */
static int keyed_op(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, keyed_op_t op, fy_str_t name, int64_t stamp)
{
    if (!s->cfg.lww)
        return FY_SERR_BADARG;
    push_t P;
    fy__group_t *g;
    int rc;
    fy__shard_t *sh = fy__keyed_begin(&P, s, gkl, ngk, &g, &rc);
    if (sh == NULL)
        return rc;
    P.now = stamp;
    g = unless_expired(&P, sh, g);
    if (g == NULL) {
        P.lww_del = fy__lww_absent_del(s, sh, &P.gk);
        if (op == OP_DELETE)
            tomb_raise(s, sh, P.gk.hash, P.gk.key, stamp);
        else if ((op == OP_FAIL || op == OP_KILL) && stamp > P.lww_del)
            g = create_empty(&P, sh);
    }
    if (g != NULL) {
        fy__lww_t *X = lww_of(&P, sh, g);
        int64_t cut = X->clear, kstamp = 0;
        if (op == OP_DELETE || op == OP_CLEAR)
            cut = max64(cut, stamp);
        if (op == OP_KILL) {
            kill_add(X, name, stamp);
            kstamp = stamp;
        }
        if (has_fams_below(g, cut, name, kstamp)) {
            lock_group(&P, g);
            remove_fams(&P, sh, g, cut, name, kstamp);
            unlock_group(&P);
        }
        X->clear = cut;
        if (op == OP_DELETE)
            X->del = max64(X->del, stamp);
        if ((op == OP_FAIL || op == OP_KILL) && stamp > X->del)
            X->fail = max64(X->fail, stamp);
        X->max = max64(X->max, stamp);
        lww_refresh(&P, sh, g);
        if (lww_empty(g))
            remove_with_tomb(&P, sh, g);
    }
    fy__reclaim_maybe(s, &sh->retired);
    fy__keyed_end(&P, sh);
    return FY_OK;
}

int fy__lww_delete(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, int64_t stamp)
{
    return keyed_op(s, gkl, ngk, OP_DELETE, fy_str("", 0), stamp);
}

int fy_store_fail(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, int64_t stamp)
{
    return keyed_op(s, gkl, ngk, OP_FAIL, fy_str("", 0), stamp);
}

int fy_store_kill(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_str_t family, int64_t stamp)
{
    return keyed_op(s, gkl, ngk, OP_KILL, family, stamp);
}

int fy_store_wipe(fy_store_t *s, int64_t stamp)
{
    if (!s->cfg.lww)
        return FY_SERR_BADARG;
    int64_t w = atomic_load(&s->wipe);
    while (w < stamp && !atomic_compare_exchange_weak(&s->wipe, &w, stamp))
        ;
    push_t P;
    memset(&P, 0, sizeof(P));
    P.s = s;
    P.now = stamp;
    fy__scratch_take(&P);
    fy__group_t **gs = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        size_t n = 0;
        for (size_t b = 0; b < sh->nbuckets; b++)
            if (fy__gt_live(sh->buckets[b])) {
                FY_GROW(gs, n, cap);
                gs[n++] = fy__gt_group(sh->buckets[b]);
            }
        for (size_t k = 0; k < n; k++) {
            fy__group_t *g = unless_expired(&P, sh, gs[k]);
            if (g == NULL)
                continue;
            fy__lww_t *X = lww_of(&P, sh, g);
            if (has_fams_below(g, stamp, fy_str("", 0), 0)) {
                lock_group(&P, g);
                remove_fams(&P, sh, g, stamp, fy_str("", 0), 0);
                unlock_group(&P);
            }
            X->clear = max64(X->clear, stamp);
            X->del = max64(X->del, stamp);
            X->max = max64(X->max, stamp);
            lww_refresh(&P, sh, g);
            if (lww_empty(g))
                remove_with_tomb(&P, sh, g);
        }
        /* tombstones the wipe covers are no longer needed */
        for (size_t b = 0; b < sh->cap_tombs; b++)
            for (fy__tomb_t **p = &sh->tombs[b]; *p;) {
                if ((*p)->del <= stamp) {
                    fy__tomb_t *t = *p;
                    *p = t->next;
                    free(t);
                    sh->ntombs--;
                    atomic_fetch_sub(&s->ntombstones, 1);
                } else {
                    p = &(*p)->next;
                }
            }
        fy__reclaim_maybe(s, &sh->retired);
        fy__shard_unlock(s, sh);
    }
    free(gs);
    fy__scratch_give(&P);
    return FY_OK;
}

int64_t fy_store_wipe_stamp(fy_store_t *s)
{
    return atomic_load(&s->wipe);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* State transfer and garbage collection. */

int fy_store_merge_group(fy_store_t *s, const fy_store_merge_group_t *m, fy_store_dropped_cb_t dropped, void *ctx)
{
    if (!s->cfg.lww)
        return FY_SERR_BADARG;
    static const fy_body_t empty;
    int rc = FY_OK;
    if (m->is_tombstone)
        return fy__lww_delete(s, m->labels, m->nlabels, max64(m->clear_ns, m->del_ns));
    /* everything that raises a register first (each may create the group), the clears last; the order does not
     * matter to the result, only to how much work is done */
    for (uint32_t i = 0; m->body && i < m->body->nfamilies && rc == FY_OK; i++) {
        fy_body_t one = {&m->body->families[i], 1, m->body->families[i].nseries};
        rc = fy_store_merge_push(s, m->labels, m->nlabels, FY_STORE_POST, &one, NULL, m->family_stamps[i], 0, dropped, ctx);
    }
    if (rc == FY_OK && m->push_ns)
        rc = fy_store_merge_push(s, m->labels, m->nlabels, FY_STORE_POST, &empty, NULL, m->push_ns, 0, dropped, ctx);
    if (rc == FY_OK && m->ttl_stamp_ns) {
        fy_store_life_t l = {m->life.ttl_ns, 0};
        rc = fy_store_merge_push(s, m->labels, m->nlabels, FY_STORE_POST, &empty, &l, m->ttl_stamp_ns, 0, dropped, ctx);
    }
    if (rc == FY_OK && m->interval_stamp_ns) {
        fy_store_life_t l = {0, m->life.interval_ns};
        rc = fy_store_merge_push(s, m->labels, m->nlabels, FY_STORE_POST, &empty, &l, m->interval_stamp_ns, 0, dropped, ctx);
    }
    if (rc == FY_OK && m->fail_ns)
        rc = fy_store_fail(s, m->labels, m->nlabels, m->fail_ns);
    for (size_t i = 0; i < m->nkills && rc == FY_OK; i++)
        rc = fy_store_kill(s, m->labels, m->nlabels, m->kills[i].name, m->kills[i].stamp);
    if (rc == FY_OK && m->clear_ns)
        rc = keyed_op(s, m->labels, m->nlabels, OP_CLEAR, fy_str("", 0), m->clear_ns);
    if (rc == FY_OK && m->del_ns)
        rc = fy__lww_delete(s, m->labels, m->nlabels, m->del_ns);
    return rc;
}

uint64_t fy_store_gc_tombstones(fy_store_t *s, int64_t before)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        for (size_t b = 0; b < sh->cap_tombs; b++)
            for (fy__tomb_t **p = &sh->tombs[b]; *p;) {
                if ((*p)->del < before) {
                    fy__tomb_t *t = *p;
                    *p = t->next;
                    free(t);
                    sh->ntombs--;
                    atomic_fetch_sub(&s->ntombstones, 1);
                    n++;
                } else {
                    p = &(*p)->next;
                }
            }
        for (size_t b = 0; b < sh->nbuckets; b++)
            if (fy__gt_live(sh->buckets[b])) {
                fy__lww_t *X = fy__lww(fy__gt_group(sh->buckets[b]));
                if (X == NULL)
                    continue;
                uint32_t w = 0;
                for (uint32_t k = 0; k < X->nkills; k++)
                    if (X->kills[k].stamp < before) {
                        free((void *)X->kills[k].name.ptr);
                        n++;
                    } else {
                        X->kills[w++] = X->kills[k];
                    }
                X->nkills = w;
            }
        fy__shard_unlock(s, sh);
    }
    return n;
}
