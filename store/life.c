/*
 * life.c: group lifetimes: expiry and liveness. A group's deadline is its last successful push time (its failure
 * time while it never had one) plus the TTL in effect, so that every replica and every replay of the same pushes
 * derives the same deadline. Each shard keeps its groups with a deadline in a min-heap (heap_idx tracks the
 * position, so that a re-push or a delete fixes the heap in O(log n)) and every group with a TTL or interval in
 * effect in a list that scrapes walk for the liveness families; both are locked by the shard, so expiry needs no
 * lock of its own.
 */
#include "push_int.h"

#include <assert.h>
#include <stdlib.h>

/* The group's fy__life_t, allocated on first use (zeroed: nothing declared, not in the life list). */
fy__life_t *fy__group_life(fy__group_t *g)
{
    FY_ASSERT_GROUP(g);
    if (g->lf == NULL)
        g->lf = fy__xcalloc(1, sizeof(*g->lf));
    return g->lf;
}

static int64_t group_deadline(const fy_store_t *s, const fy__group_t *g)
{
    int64_t ttl = fy__life_eff(g->lf ? g->lf->life.ttl_ns : 0, s->cfg.default_ttl_ns);
    int64_t base = g->push_ns ? g->push_ns : g->fail_ns;
    if (ttl == 0)
        return 0;
    return base > INT64_MAX - ttl ? INT64_MAX : base + ttl;
}

static void heap_set(fy__shard_t *sh, uint32_t i, fy__group_t *g)
{
    sh->heap[i] = g;
    g->heap_idx = i;
}

static void heap_up(fy__shard_t *sh, uint32_t i)
{
    fy__group_t *g = sh->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (sh->heap[p]->deadline_ns <= g->deadline_ns)
            break;
        heap_set(sh, i, sh->heap[p]);
        i = p;
    }
    heap_set(sh, i, g);
}

static void heap_down(fy__shard_t *sh, uint32_t i)
{
    fy__group_t *g = sh->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= sh->nheap)
            break;
        if (c + 1 < sh->nheap && sh->heap[c + 1]->deadline_ns < sh->heap[c]->deadline_ns)
            c++;
        if (sh->heap[c]->deadline_ns >= g->deadline_ns)
            break;
        heap_set(sh, i, sh->heap[c]);
        i = c;
    }
    heap_set(sh, i, g);
}

static void heap_remove(fy__shard_t *sh, fy__group_t *g)
{
    uint32_t i = g->heap_idx;
    assert(i < sh->nheap && sh->heap[i] == g);
    g->heap_idx = FY_HEAP_NONE;
    fy__group_t *last = sh->heap[--sh->nheap];
    if (i == sh->nheap)
        return;
    heap_set(sh, i, last);
    heap_up(sh, i);
    heap_down(sh, last->heap_idx);
}

/* Takes the group out of the shard's heap and life list (it is being removed). */
void fy__life_unlink(fy__shard_t *sh, fy__group_t *g)
{
    FY_ASSERT_SHARD(sh);
    if (g->heap_idx != FY_HEAP_NONE)
        heap_remove(sh, g);
    if (g->in_life) {
        g->in_life = 0;
        if (g->lf->prev)
            g->lf->prev->lf->next = g->lf->next;
        else
            sh->life_head = g->lf->next;
        if (g->lf->next)
            g->lf->next->lf->prev = g->lf->prev;
    }
}

/* Brings the group's deadline, heap position and life-list membership up to date with its times and declarations.
 * Cheap when neither the group nor the store has anything declared (the Pushgateway's case). */
void fy__life_update_slow(fy_store_t *s, fy__shard_t *sh, fy__group_t *g)
{
    FY_ASSERT_SHARD(sh);
    if (!g->life_any && !s->life_defaults)
        return; /* nothing declared, no defaults: no fy__life_t, and deadline_ns stays 0 */
    fy__group_life(g);
    int64_t d = group_deadline(s, g);
    int live = d != 0 || fy__life_eff(g->lf->life.interval_ns, s->cfg.default_interval_ns) != 0;
    if (d != g->deadline_ns || (d != 0) != (g->heap_idx != FY_HEAP_NONE)) {
        g->deadline_ns = d;
        if (g->heap_idx != FY_HEAP_NONE && d == 0) {
            heap_remove(sh, g);
        } else if (g->heap_idx != FY_HEAP_NONE) {
            heap_up(sh, g->heap_idx);
            heap_down(sh, g->heap_idx);
        } else if (d != 0) {
            FY_GROW(sh->heap, sh->nheap, sh->cap_heap);
            sh->heap[sh->nheap] = g;
            heap_up(sh, sh->nheap++);
        }
    }
    if (live && !g->in_life) {
        g->in_life = 1;
        g->lf->prev = NULL;
        g->lf->next = sh->life_head;
        if (sh->life_head)
            sh->life_head->lf->prev = g;
        sh->life_head = g;
    } else if (!live && g->in_life) {
        fy__life_unlink(sh, g); /* not in the heap either: d is 0 */
    }
}

/* Takes a declaration into the group: 0 keeps what it has. */
void fy__life_declare_slow(fy__group_t *g, const fy_store_life_t *life)
{
    FY_ASSERT_GROUP(g);
    if (life == NULL || (life->ttl_ns == 0 && life->interval_ns == 0))
        return;
    g->life_any = 1;
    fy__group_life(g);
    if (life->ttl_ns != 0)
        g->lf->life.ttl_ns = life->ttl_ns;
    if (life->interval_ns != 0)
        g->lf->life.interval_ns = life->interval_ns;
}

/* The partial view handed to expiry, liveness and bulk-delete callbacks: no families. */
void fy__life_view(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v)
{
    FY_ASSERT_GROUP(g);
    memset(v, 0, sizeof(*v));
    fy__group_view_head(s, g, vl, v);
}

uint64_t fy_store_expire(fy_store_t *s, int64_t now_ns, fy_store_group_cb_t cb, void *ctx)
{
    push_t P;
    memset(&P, 0, sizeof(P));
    P.s = s;
    uint64_t n = 0;
    int taken = 0;
    fy__view_labels_t vl = {0};
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        if (!taken && sh->nheap > 0 && sh->heap[0]->deadline_ns <= now_ns) {
            fy__scratch_take(&P);
            taken = 1;
        }
        while (sh->nheap > 0 && sh->heap[0]->deadline_ns <= now_ns) {
            fy__group_t *g = sh->heap[0];
            if (cb) {
                fy_store_group_view_t v;
                fy__life_view(s, g, &vl, &v);
                cb(ctx, &v);
            }
            fy__group_remove(&P, sh, g);
            n++;
        }
        fy__reclaim_maybe(s, &sh->retired);
        fy__shard_unlock(s, sh);
    }
    if (taken)
        fy__scratch_give(&P);
    fy__view_labels_free(&vl);
    atomic_fetch_add(&s->expired, n);
    return n;
}

int fy_store_foreach_life(fy_store_t *s, fy_store_group_cb_t cb, void *ctx)
{
    int rc = 0;
    fy__view_labels_t vl = {0};
    for (uint32_t i = 0; i < s->cfg.nshards && rc == 0; i++) {
        fy__shard_t *sh = &s->shards[i];
        fy__shard_lock(s, sh);
        for (fy__group_t *g = sh->life_head; g && rc == 0; g = g->lf->next) {
            fy_store_group_view_t v;
            fy__life_view(s, g, &vl, &v);
            rc = cb(ctx, &v);
        }
        fy__shard_unlock(s, sh);
    }
    fy__view_labels_free(&vl);
    return rc;
}
