/*
 * lock_check.c: the lock order of store_int.h, checked in debug builds (NDEBUG not defined). Each thread keeps a
 * record of the store locks it holds: the store, the shard (at most one) and the stripes in the order taken. The
 * lock wrappers (fy__shard_lock, fy__stripe_lock and their unlocks) update it and assert the order on every
 * acquisition and release; the fy__lock_holds_* queries back the FY_ASSERT_* checks at the entry of functions that
 * require a lock. Remote changes will be applied from threads other than the HTTP workers, so the order must hold
 * on every path, not only on the ones the tests happen to interleave. Release builds compile this file to nothing.
 */
#include "store_int.h"

#ifndef NDEBUG

#include <stdio.h>

#define NONE UINT32_MAX
#define HELD_INLINE 64 /* stripes held without allocating: a push's lock set is a few dozen at most */

typedef struct st_held_t {
    const fy_store_t *s; /* the store whose locks are held, NULL if none */
    uint32_t shard;      /* index of the shard held, NONE if none */
    uint32_t n, cap;     /* stripes held; capacity of heap */
    uint32_t *heap;      /* the stripes' indexes beyond HELD_INLINE are kept here (freed when none is held) */
    uint32_t inl[HELD_INLINE];
} held_t;

static _Thread_local held_t held = {NULL, NONE, 0, 0, NULL, {0}};

static uint32_t *stripes_held(void)
{
    return held.heap ? held.heap : held.inl;
}

static void fail(const char *what, const fy_store_t *s, uint32_t idx)
{
    fprintf(stderr, "fy_store: lock order violated: %s (store %p, index %u; held: store %p, shard %d, %u stripes", what,
            (const void *)s, idx, (const void *)held.s, held.shard == NONE ? -1 : (int)held.shard, held.n);
    if (held.n)
        fprintf(stderr, ", last %u", stripes_held()[held.n - 1]);
    fprintf(stderr, ")\n");
    abort();
}

static uint32_t shard_index(const fy_store_t *s, const fy__shard_t *sh)
{
    assert(sh >= s->shards && sh < s->shards + s->cfg.nshards);
    return (uint32_t)(sh - s->shards);
}

static uint32_t stripe_index(const fy_store_t *s, const fy__stripe_t *st)
{
    assert(st >= s->stripes && st < s->stripes + s->cfg.nstripes);
    return (uint32_t)(st - s->stripes);
}

void fy__lock_acquire_shard(const fy_store_t *s, const fy__shard_t *sh)
{
    uint32_t i = shard_index(s, sh);
    if (held.s != NULL && held.s != s)
        fail("a shard lock while holding another store's locks", s, i);
    if (held.shard != NONE)
        fail("a second shard lock", s, i);
    if (held.n != 0)
        fail("a shard lock after a stripe lock", s, i);
}

void fy__lock_acquired_shard(const fy_store_t *s, const fy__shard_t *sh)
{
    held.s = s;
    held.shard = shard_index(s, sh);
}

void fy__lock_release_shard(const fy_store_t *s, const fy__shard_t *sh)
{
    uint32_t i = shard_index(s, sh);
    if (held.s != s || held.shard != i)
        fail("releasing a shard lock not held", s, i);
    if (held.n != 0)
        fail("releasing a shard lock before its stripe locks", s, i);
    held.shard = NONE;
    held.s = NULL;
}

void fy__lock_acquire_stripe(const fy_store_t *s, const fy__stripe_t *st)
{
    uint32_t i = stripe_index(s, st);
    if (held.s != NULL && held.s != s)
        fail("a stripe lock while holding another store's locks", s, i);
    if (held.n != 0 && stripes_held()[held.n - 1] >= i)
        fail("stripe locks not in ascending index", s, i);
}

void fy__lock_acquired_stripe(const fy_store_t *s, const fy__stripe_t *st)
{
    if (held.n == (held.heap ? held.cap : HELD_INLINE)) {
        uint32_t nc = 2 * held.n;
        uint32_t *v = malloc(nc * sizeof(*v));
        if (v == NULL)
            abort();
        memcpy(v, stripes_held(), held.n * sizeof(*v));
        free(held.heap);
        held.heap = v;
        held.cap = nc;
    }
    held.s = s;
    stripes_held()[held.n++] = stripe_index(s, st);
}

void fy__lock_release_stripe(const fy_store_t *s, const fy__stripe_t *st)
{
    uint32_t i = stripe_index(s, st);
    if (held.s != s || held.n == 0 || stripes_held()[held.n - 1] != i)
        fail("releasing a stripe lock not held last", s, i);
    held.n--;
    if (held.n == 0) {
        free(held.heap);
        held.heap = NULL;
        held.cap = 0;
        if (held.shard == NONE)
            held.s = NULL;
    }
}

int fy__lock_holds_shard(const fy__shard_t *sh)
{
    return held.s != NULL && held.shard != NONE && &held.s->shards[held.shard] == sh;
}

static int holds_stripe_index(uint32_t i)
{
    const uint32_t *v = stripes_held();
    size_t lo = 0, hi = held.n; /* ascending: the order taken */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] == i)
            return 1;
        if (v[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int fy__lock_holds_stripe(const fy__stripe_t *st)
{
    if (held.s == NULL || st < held.s->stripes || st >= held.s->stripes + held.s->cfg.nstripes)
        return 0;
    return holds_stripe_index((uint32_t)(st - held.s->stripes));
}

int fy__lock_holds_name(uint64_t name_hash)
{
    return held.s != NULL && holds_stripe_index((uint32_t)(name_hash & (held.s->cfg.nstripes - 1)));
}

int fy__lock_holds_group(uint64_t group_hash)
{
    return held.s != NULL && held.shard == (uint32_t)(group_hash & (held.s->cfg.nshards - 1));
}

int fy__lock_holds_retire_list(const fy__retire_list_t *l)
{
    if (held.s == NULL)
        return 0;
    if (held.shard != NONE && &held.s->shards[held.shard].retired == l)
        return 1;
    const char *p = (const char *)l - offsetof(fy__stripe_t, retired), *b = (const char *)held.s->stripes;
    if (p < b || p >= (const char *)(held.s->stripes + held.s->cfg.nstripes) || (size_t)(p - b) % sizeof(fy__stripe_t))
        return 0;
    return holds_stripe_index((uint32_t)((size_t)(p - b) / sizeof(fy__stripe_t)));
}

int fy__lock_holds_any(void)
{
    return held.s != NULL;
}

#else
typedef int fy__lock_check_off; /* release builds: nothing (and no empty translation unit) */
#endif
