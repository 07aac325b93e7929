/*
 * store_int.h: the store's internal structures, the lock order, and what the store's files share (grouped by the
 * file that defines it; docs/store.md has the table of files). Not part of the public API. What only the change
 * paths share (the push in progress, push_t) is in push_int.h.
 *
 * Object graph (who points to whom, who locks what):
 *
 *   shard[hash & (nshards-1)]  --(mutex)-->  group  --> gfam[] (pushed families, by name) + tsrec[2] (timestamps)
 *   stripe[hash(name) & (nstripes-1)]  --(mutex)-->  fam (one per metric name: type, refcount, own info,
 *                                                      series set, sorted slot array)
 *   slot: one per series identity (family, sanitised label set); its `cur` points at the series' current rec
 *         inside the current gfam. Slots sort the family for exposition; the sorted array is immutable once
 *         published and is replaced (copy-on-write) when series appear or disappear.
 *
 * Lock order: shard mutex, then stripe mutexes in ascending stripe index. Nobody takes two shard locks. A text
 * scrape takes one stripe lock at a time, briefly, and never a shard lock; JSON/snapshot take one shard lock at
 * a time. gfam, slot, published arrays and fams are freed through epoch-based reclamation (ebr_*) because text
 * scrapes read them without locks. Locks are taken through fy__shard_lock and fy__stripe_lock (below), and debug
 * builds check this order and the locks each function requires (lock_check.c).
 */
#ifndef FY_STORE_INT_H
#define FY_STORE_INT_H

#include "store.h"
#include "fy_parse.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Bucket of a hash in a shard's or stripe's table. The low bits already chose the shard/stripe, so the table uses
 * the high half (with the low bits, a shard would only ever fill 1/nshards of its buckets). */
#define FY_BUCKET(h, nbuckets) ((size_t)((h) >> 32) & ((nbuckets)-1))

#define FY_TS_PUSH 0
#define FY_TS_FAIL 1

typedef struct st_fy__slot_t fy__slot_t;
typedef struct st_fy__gfam_t fy__gfam_t;
typedef struct st_fy__fam_t fy__fam_t;
typedef struct st_fy__group_t fy__group_t;

/* A shard's group table is open-addressed (linear probing) and each 8-byte entry holds the group's address in its low
 * 48 bits (user-space addresses on x86-64 and arm64 fit in 47) and 16 bits of the group's hash above them (bits 16-31,
 * which neither the shard nor the bucket uses). A lookup compares tags inside the table and reads only the group it
 * is after: with chained buckets, a third of the lookups at 1M series also read a colliding group first, one cache
 * miss each (docs/store.md). 0 is an empty entry, FY_GT_TOMB a removed one (probes go on past it). */
#define FY_GT_TOMB ((uint64_t)1)
#define FY_GT_PTR_MASK ((UINT64_C(1) << 48) - 1)

static inline uint64_t fy__gt_tag(uint64_t hash)
{
    return (hash >> 16 & 0xffff) << 48;
}

static inline int fy__gt_live(uint64_t e)
{
    return e > FY_GT_TOMB; /* a group's address is 64-byte aligned and never 0 */
}

static inline fy__group_t *fy__gt_group(uint64_t e)
{
    return (fy__group_t *)(uintptr_t)(e & FY_GT_PTR_MASK);
}

/* One series of one gfam: its values as pushed. Every output (text, protobuf, OpenMetrics, JSON, snapshots) is
 * rendered from these at scrape time: pre-rendered lines would repeat the label strings that the slot already holds,
 * and were most of the store's memory. A fast-path push that re-sends a family of the same shape (same series, same
 * point counts, no native histogram bytes) rewrites value, count and points in place under `seq` (a seqlock: odd
 * while being written) instead of allocating a new gfam; lock-free readers copy them with fy__rec_read. Everything
 * else in a rec is immutable. */
typedef struct st_fy__rec_t {
    fy__slot_t *slot; /* identity and labels; owned by the group while the gfam is current */
    double value;
    uint64_t count;
    /* the points and the native histogram bytes live in the same gfam allocation, at these byte offsets from the rec
     * (32-bit offsets instead of pointers keep the rec at 48 bytes) */
    uint32_t points_off, npoints;
    uint32_t pbh_off, pbh_len;
    uint32_t seq;
} fy__rec_t;

static inline const fy_point_t *fy__rec_points(const fy__rec_t *r)
{
    return (const fy_point_t *)(const void *)((const char *)r + r->points_off);
}

static inline fy_str_t fy__rec_pbh(const fy__rec_t *r)
{
    return fy_str((const char *)r + r->pbh_off, r->pbh_len);
}

/* Copies the rewritable part of a rec (value, count, npoints points into pts) consistently, for readers that hold no
 * shard lock. All accesses are atomic, so that a concurrent rewrite is no data race (and ThreadSanitizer agrees). */
static inline void fy__rec_read(const fy__rec_t *r, double *value, uint64_t *count, fy_point_t *pts)
{
    const fy_point_t *src = fy__rec_points(r);
    for (;;) {
        uint32_t q = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (q & 1) { /* a push is writing it (a few stores under its shard lock) */
            sched_yield();
            continue;
        }
        /* acquire loads keep the second load of seq after them (instead of a fence, which ThreadSanitizer does not
         * support); on x86 they are plain loads */
        __atomic_load(&r->value, value, __ATOMIC_ACQUIRE);
        *count = __atomic_load_n(&r->count, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0; i < r->npoints; i++) {
            __atomic_load(&src[i].key, &pts[i].key, __ATOMIC_ACQUIRE);
            __atomic_load(&src[i].value, &pts[i].value, __ATOMIC_ACQUIRE);
            pts[i].count = __atomic_load_n(&src[i].count, __ATOMIC_ACQUIRE);
        }
        if (__atomic_load_n(&r->seq, __ATOMIC_RELAXED) == q)
            return;
    }
}

/* A series identity. Created when a (family, label set) first appears in a group, reused by later pushes of the same
 * series (only `cur` changes), marked dead when the group drops it. Labels are stored after the struct as
 * [varint name_len][varint value_len][name][value]... in name order (LEB128 lengths: one byte each below 128). Locked by its fam's
 * stripe, except `cur`, which text scrapes read atomically. */
struct st_fy__slot_t {
    _Atomic(const fy__rec_t *) cur;
    const void *owner; /* the owning group, for identity only (never dereferenced through a slot) */
    uint32_t hash;     /* low half of the XXH3 of the label bytes (series sets index with the low bits) */
    uint32_t keylen;   /* bytes of key[], which starts at offset 28: a slot is allocated as
                        * offsetof(key) + keylen, so that keys of up to 36 bytes fit 64 */
    uint16_t nlabels;
    uint8_t dead; /* dropped by its group; still in the published array until the next merge */
    uint8_t mark; /* scratch of the push that holds the stripe lock */
    char key[];
};

/* A HELP text of a family, shared by the gfams that carry it: one per distinct (has_help, text) among a family's
 * groups, counted in the fam's `hv`. Immutable; freed through EBR when its last gfam goes (text scrapes read it under
 * a stripe lock, JSON and snapshots under a shard lock; see help_ref). */
typedef struct st_fy__help_t {
    uint32_t len;
    uint8_t has_help;
    char text[];
} fy__help_t;

/* One family of one group as of one push. Immutable except where the fast path rewrites records in place. The name
 * is the fam's and the HELP is shared (fy__help_t), so a gfam is a 32-byte header and its records: a group's
 * families cost their values, not copies of strings that every group of the family repeats. */
struct st_fy__gfam_t {
    fy__fam_t *fam;         /* set when linked (gfam_attach, or taken over from the predecessor by the fast path) */
    const fy__help_t *help; /* likewise */
    int64_t stamp_ns;
    uint32_t nrecs;
    uint8_t type;
    /* then: nrecs recs (push order), points, native histogram bytes */
};

static inline fy__rec_t *fy__gfam_recs(const fy__gfam_t *g)
{
    return (fy__rec_t *)(void *)(uintptr_t)(g + 1);
}

static inline fy_str_t fy__help_str(const fy__help_t *h)
{
    return fy_str(h->text, h->len);
}

typedef struct st_fy__helpvar_t {
    fy__help_t *h;
    uint32_t refs; /* gfams (and a group's timestamp series, for the timestamp families) that carry it */
} fy__helpvar_t;

/* The immutable sorted array of a family's slots, as published to scrapes. */
typedef struct st_fy__farr_t {
    size_t n;
    fy__slot_t *v[];
} fy__farr_t;

/* A metric name. Everything here is locked by its stripe; `published` is also read by scrapes (EBR). */
struct st_fy__fam_t {
    fy__fam_t *next; /* stripe bucket chain */
    uint64_t hash;   /* XXH3 of the name */
    fy_str_t name;   /* bytes after the struct */
    uint32_t refs;   /* groups holding a family of this name (including empty ones) */
    uint8_t type;    /* the type all of them have (valid iff refs > 0) */
    uint8_t own, own_type, own_predefined;
    uint8_t dropped;   /* unlinked (no group holds the name); only scrapes that collected it earlier still see it */
    fy_str_t own_help; /* valid iff own */
    fy__helpvar_t *hv; /* distinct HELPs among the groups' gfams, with counts (usually one) */
    uint32_t nhv, cap_hv;
    /* series set: open addressing, linear probing, slot pointers keyed by slot->hash; removals leave tombstones */
    fy__slot_t **set;
    size_t set_cap, set_n, set_ntomb;
    _Atomic(fy__farr_t *) published;
    fy__slot_t **pending; /* slots created since the last merge */
    size_t npending, cap_pending;
    size_t ndead; /* dead slots still in published or pending */
    fy__slot_t **dead;
    size_t cap_dead;
    char name_buf[];
};

/* A linked gfam's name: its fam's (which lives at least as long as a gfam of it is linked to a group). */
static inline fy_str_t fy__gfam_name(const fy__gfam_t *g)
{
    return g->fam->name;
}

/* Groups are 64-byte aligned and laid out for the push: the first line holds what the lookup and the fast path read
 * (hash, family list, key length); the family list of up to FY_GROUP_INLINE_FAMS entries lives inside the
 * group and the key bytes follow the struct, so that one burst of prefetches after the bucket load brings in
 * everything the push reads of the group (at 1M series every object a push touches is a cache miss). The grouping
 * labels are not stored: views split them out of the key (fy__key_labels), which is exact because label names and
 * valid UTF-8 values never contain the separator 0xFF, and a group is only created with valid values (B4). The
 * struct is 248 bytes: with its key, a group fits the allocator's 256 class for keys of up to 8 bytes and the 320
 * class up to 72 bytes (job="node-exporter",instance="10.1.2.3:9100" is 40), whatever the number of labels. What only groups with a
 * declared lifetime (or a store with defaults) need is in a separate fy__life_t. */
#define FY_GROUP_INLINE_FAMS 4

/* Expiry and liveness of a group, locked by its shard; allocated when the group declares a lifetime or the store
 * has defaults (the Pushgateway's case has neither, and its groups do not pay for these). */
typedef struct st_fy__life_t {
    fy_store_life_t life;     /* as declared (lww mode: the life registers as far as visible) */
    fy__group_t *prev, *next; /* the shard's life list (valid while the group's in_life) */
    struct st_fy__lww_t *lww; /* lww mode only (every group has one there), else NULL */
} fy__life_t;

/* A group's last-writer-wins state (lww.c; docs/store.md, "LWW mode"), locked by its shard. Stamps are unique, so a
 * register is visible iff its stamp is above del (the latest DELETE or wipe); families are alive iff their stamp is
 * at or above clear (the latest PUT, DELETE or wipe). max is the largest stamp the group took: a change above it is
 * in order and takes the paths of a push without lww. */
typedef struct st_fy__lww_t {
    int64_t del, clear, push, fail;
    int64_t ttl, ttl_stamp, interval, interval_stamp; /* the life registers (value as fy_store_life_t, its stamp) */
    int64_t max;
    fy_store_kill_t *kills; /* sorted by name, one per name (names malloc'd) */
    uint32_t nkills, cap_kills;
} fy__lww_t;

/* A removed group remembered in lww mode: its key and clear stamp, in its shard's tombstone table (chained). */
typedef struct st_fy__tomb_t {
    struct st_fy__tomb_t *next;
    uint64_t hash;
    int64_t del;
    uint32_t keylen;
    char key[];
} fy__tomb_t;

struct st_fy__group_t {
    uint64_t hash;
    fy__gfam_t **fams; /* pushed families sorted by name; entries are swapped atomically by fast-path pushes;
                        * points at fams_inline while they fit */
    fy__life_t *lf;    /* NULL until needed (see fy__life_t) */
    uint32_t keylen;   /* the canonical key's bytes follow the struct (fy__group_key) */
    uint32_t nfams, cap_fams;
    uint32_t nlabels;
    uint32_t origin;
    uint32_t heap_idx; /* position in the shard's expiry heap, FY_HEAP_NONE if not there */
    uint8_t key_valid; /* all grouping values are valid UTF-8 */
    uint8_t has_instance;
    uint8_t life_any; /* the group ever declared a lifetime or had a deadline: its life fields matter */
    uint8_t in_life;  /* linked into the shard's life list */
    int64_t push_ns, push_stamp_ns, fail_ns, fail_stamp_ns;
    uint64_t version;
    /* XXH3-128 of the shape of the last push that left the group holding exactly its families, {0, 0} if none (see
     * push_shape in push.c): a re-push of that shape only writes values, reading nothing of the group's families */
    uint64_t shape[2];
    fy__rec_t tsrec[2]; /* the timestamp series' values (updated in place, see ts_update); .slot: their slots */
    fy__gfam_t *fams_inline[FY_GROUP_INLINE_FAMS];
    int64_t deadline_ns; /* 0 = never; here rather than in fy__life_t for the expiry heap's comparisons */
};

static inline fy_str_t fy__group_key(const fy__group_t *g)
{
    return fy_str((const char *)(g + 1), g->keylen);
}

#define FY_HEAP_NONE UINT32_MAX

/* Deferred frees (epoch-based reclamation). A list belongs to a shard or a stripe and is locked by it. */
typedef struct st_fy__retired_t {
    void *p;
    uint64_t epoch;
} fy__retired_t;

typedef struct st_fy__retire_list_t {
    fy__retired_t *v;
    size_t n, cap;
} fy__retire_list_t;

#define FY_EBR_READERS 64

typedef struct st_fy__shard_t {
    pthread_mutex_t lock;
    /* text scrapes running (each counts itself in every shard): a fast-path push frees the gfams it replaces at once
     * when there are none, so that the next push reuses that memory while it is still in the cache */
    _Atomic uint32_t readers;
    uint64_t *buckets; /* the group table (see FY_GT_TOMB); nbuckets is a power of two */
    size_t nbuckets, ngroups, ntomb;
    fy__retire_list_t retired;
    /* groups with a deadline, min-heap by deadline (fy_store_expire); groups with a TTL or interval in effect */
    fy__group_t **heap;
    uint32_t nheap, cap_heap;
    fy__group_t *life_head;
    uint64_t nblind;    /* pushes that took the blind path (push.c), for tests (fy__store_nblind) */
    fy__tomb_t **tombs; /* lww mode: tombstone table (NULL until the first), power-of-two buckets */
    size_t ntombs, cap_tombs;
    char pad[64];
} fy__shard_t;

typedef struct st_fy__stripe_t {
    pthread_mutex_t lock;
    fy__fam_t **buckets;
    size_t nbuckets, nfams;
    fy__retire_list_t retired;
    char pad[64];
} fy__stripe_t;

struct st_fy_store_t {
    fy_store_config_t cfg;
    fy__shard_t *shards;
    fy__stripe_t *stripes;
    _Atomic uint64_t ngroups, nseries;
    _Atomic uint64_t expired, bulk_deleted;
    uint8_t life_defaults;        /* cfg has a default TTL or interval: every group's life fields matter */
    _Atomic int64_t wipe;         /* lww mode: the latest wipe's stamp */
    _Atomic uint64_t ntombstones; /* lww mode */
    _Atomic uint64_t epoch;
    struct {
        _Atomic uint64_t e; /* 0 = free, else the epoch the reader entered at */
        char pad[56];
    } readers[FY_EBR_READERS];
};

/* ------------------------------------------------------------------------------------------------------------- */
/* Locks, and the lock order checked (lock_check.c). Debug builds (NDEBUG not defined) keep a per-thread record of
 * the store locks the thread holds (which store, which shard, which stripes in the order taken) and assert, when a
 * lock is taken, that the order above is kept (no second shard lock, no shard lock after a stripe lock, stripes in
 * ascending index, locks of one store at a time) and, when one is released, that it is held and released in reverse
 * order (stripes before their shard). Functions that require a lock assert it at entry (FY_ASSERT_*). Release builds
 * compile all of it out: the wrappers are plain pthread calls and the asserts are empty. */

#ifndef NDEBUG
void fy__lock_acquire_shard(const fy_store_t *s, const fy__shard_t *sh);
void fy__lock_acquired_shard(const fy_store_t *s, const fy__shard_t *sh);
void fy__lock_release_shard(const fy_store_t *s, const fy__shard_t *sh);
void fy__lock_acquire_stripe(const fy_store_t *s, const fy__stripe_t *st);
void fy__lock_acquired_stripe(const fy_store_t *s, const fy__stripe_t *st);
void fy__lock_release_stripe(const fy_store_t *s, const fy__stripe_t *st);
/* Whether the calling thread holds: shard sh; stripe st; the stripe of a metric name's hash (of the store whose locks
 * it holds); the lock that owns a retire list (its shard's or stripe's); the shard of group hash h; any store lock. */
int fy__lock_holds_shard(const fy__shard_t *sh);
int fy__lock_holds_stripe(const fy__stripe_t *st);
int fy__lock_holds_name(uint64_t name_hash);
int fy__lock_holds_retire_list(const fy__retire_list_t *l);
int fy__lock_holds_group(uint64_t group_hash);
int fy__lock_holds_any(void);
#define FY_ASSERT_SHARD(sh) assert(fy__lock_holds_shard(sh))
#define FY_ASSERT_STRIPE(st) assert(fy__lock_holds_stripe(st))
#define FY_ASSERT_NAME(hash) assert(fy__lock_holds_name(hash))
#define FY_ASSERT_FAM(f) assert(fy__lock_holds_name((f)->hash))
#define FY_ASSERT_GROUP(g) assert(fy__lock_holds_group((g)->hash))
#define FY_ASSERT_RETIRE_LIST(l) assert(fy__lock_holds_retire_list(l))
#define FY_ASSERT_NO_LOCK() assert(!fy__lock_holds_any())
#else
#define FY_ASSERT_SHARD(sh) ((void)0)
#define FY_ASSERT_STRIPE(st) ((void)0)
#define FY_ASSERT_NAME(hash) ((void)0)
#define FY_ASSERT_FAM(f) ((void)0)
#define FY_ASSERT_GROUP(g) ((void)0)
#define FY_ASSERT_RETIRE_LIST(l) ((void)0)
#define FY_ASSERT_NO_LOCK() ((void)0)
#endif

static inline void fy__shard_lock(fy_store_t *s, fy__shard_t *sh)
{
#ifndef NDEBUG
    fy__lock_acquire_shard(s, sh);
#endif
    pthread_mutex_lock(&sh->lock);
#ifndef NDEBUG
    fy__lock_acquired_shard(s, sh);
#endif
    (void)s;
}

static inline void fy__shard_unlock(fy_store_t *s, fy__shard_t *sh)
{
#ifndef NDEBUG
    fy__lock_release_shard(s, sh);
#endif
    pthread_mutex_unlock(&sh->lock);
    (void)s;
}

static inline void fy__stripe_lock(fy_store_t *s, fy__stripe_t *st)
{
#ifndef NDEBUG
    fy__lock_acquire_stripe(s, st);
#endif
    pthread_mutex_lock(&st->lock);
#ifndef NDEBUG
    fy__lock_acquired_stripe(s, st);
#endif
    (void)s;
}

static inline void fy__stripe_unlock(fy_store_t *s, fy__stripe_t *st)
{
#ifndef NDEBUG
    fy__lock_release_stripe(s, st);
#endif
    pthread_mutex_unlock(&st->lock);
    (void)s;
}

/* Pushes that took the blind path, over all shards; for tests, with no push running. */
static inline uint64_t fy__store_nblind(const fy_store_t *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->cfg.nshards; i++)
        n += s->shards[i].nblind;
    return n;
}

/* Growable byte buffer (push scratch, render scratch). Growth aborts on OOM. */
typedef struct st_fy__buf_t {
    char *p;
    size_t n, cap;
} fy__buf_t;

void fy__buf_grow(fy__buf_t *b, size_t more);
static inline void fy__buf_reserve(fy__buf_t *b, size_t more)
{
    if (__builtin_expect(b->n + more > b->cap, 0))
        fy__buf_grow(b, more);
}

/* Where a view's grouping labels live while the view is used: inline for the usual handful, else a heap array that
 * grows and is reused by the views built with the same fy__view_labels_t (free with fy__view_labels_free). */
#define FY_VIEW_LABELS_INLINE 8
typedef struct st_fy__view_labels_t {
    fy_store_label_t *heap;
    uint32_t cap_heap;
    fy_store_label_t inl[FY_VIEW_LABELS_INLINE];
} fy__view_labels_t;

static inline void fy__view_labels_free(fy__view_labels_t *vl)
{
    free(vl->heap);
    vl->heap = NULL;
    vl->cap_heap = 0;
}

/* The slot key's length prefixes: LEB128 (7 bits per byte, low first). */
static inline const char *fy__key_len(const char *p, uint32_t *v)
{
    uint32_t x = 0;
    unsigned shift = 0;
    unsigned char c;
    do {
        c = (unsigned char)*p++;
        x |= (uint32_t)(c & 0x7f) << shift;
        shift += 7;
    } while (c & 0x80);
    *v = x;
    return p;
}

/* Writes v as LEB128 into out (at least 5 bytes); returns the byte count. */
static inline size_t fy__key_put_len(char *out, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (char)v;
    return n;
}

/* Iterates over the label pairs of a slot. */
static inline const char *fy__slot_label(const char *p, fy_str_t *name, fy_str_t *value)
{
    uint32_t nl, vl;
    p = fy__key_len(p, &nl);
    p = fy__key_len(p, &vl);
    name->ptr = p;
    name->len = nl;
    value->ptr = p + nl;
    value->len = vl;
    return p + nl + vl;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* alloc.c: allocation that aborts on OOM, the byte buffer */

void *fy__xmalloc(size_t n);
void *fy__xcalloc(size_t n, size_t sz);
void *fy__xrealloc(void *p, size_t n);
void fy__buf_go_quote(fy__buf_t *b, fy_str_t s);

#define FY_GROW(arr, n, cap)                                                                                                       \
    do {                                                                                                                           \
        if ((n) >= (cap)) {                                                                                                        \
            (cap) = (cap) ? 2 * (cap) : 8;                                                                                         \
            (arr) = fy__xrealloc((arr), (cap) * sizeof(*(arr)));                                                                   \
        }                                                                                                                          \
    } while (0)

static inline void fy__buf_add(fy__buf_t *b, const void *p, size_t n)
{
    fy__buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void fy__buf_str(fy__buf_t *b, const char *z)
{
    fy__buf_add(b, z, strlen(z));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* names.c: fixed names; name validity and the hash (inline: every push uses them) */

extern const char fy__help_push[], fy__help_fail[];
extern const fy_str_t fy__ts_names[2], fy__ts_help[2];
const char *fy__type_upper(int t);
const char *fy__type_lower(int t);

static inline uint64_t fy__hash(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

/* model.IsValidLegacyMetricName: also the test for whether a name needs quoting or escaping on output. */
static inline int fy__metric_name_legacy(fy_str_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*: a label name that scrapes write bare. */
static inline int fy__label_name_legacy(fy_str_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* model.IsValidMetricName under the store's validation scheme: the legacy pattern, or (utf8) any non-empty valid
 * UTF-8, as common v0.61's UTF8Validation decides with --push.enable-utf8-names. */
static inline int fy__metric_name_valid(fy_str_t s, int utf8)
{
    if (utf8)
        return s.len != 0 && fy_utf8_valid(s.ptr, s.len);
    return fy__metric_name_legacy(s);
}

/* client_golang's checkLabelName: model.LabelName.IsValid (the legacy pattern, or with utf8 any non-empty valid
 * UTF-8) and no "__" prefix. */
static inline int fy__label_name_valid(fy_str_t s, int utf8)
{
    if (s.len == 0 || (s.len >= 2 && s.ptr[0] == '_' && s.ptr[1] == '_'))
        return 0;
    if (utf8)
        return fy_utf8_valid(s.ptr, s.len);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* epoch.c: epoch-based reclamation */

unsigned fy__ebr_enter(fy_store_t *s);
void fy__ebr_leave(fy_store_t *s, unsigned r);
void fy__reclaim(fy_store_t *s, fy__retire_list_t *l, int force);
void fy__retire(fy_store_t *s, fy__retire_list_t *l, void *p);
void fy__retire_shard(fy_store_t *s, fy__shard_t *sh, void *p);

static inline void fy__reclaim_maybe(fy_store_t *s, fy__retire_list_t *l)
{
    if (l->n >= 64)
        fy__reclaim(s, l, 0);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* family_index.c: the metric-name index (stripe locked) */

int fy__slot_cmp(const fy__slot_t *a, const fy__slot_t *b);
void fy__fam_merge(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f);
fy__fam_t *fy__fam_find(fy__stripe_t *st, uint64_t h, fy_str_t name);
fy__fam_t *fy__fam_create(fy__stripe_t *st, uint64_t h, fy_str_t name);
void fy__fam_maybe_drop(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f);
fy__slot_t *fy__set_find(const fy__fam_t *f, uint64_t h, const char *key, uint32_t keylen);
void fy__set_insert(fy__fam_t *f, fy__slot_t *sl);
void fy__slot_kill(fy__fam_t *f, fy__slot_t *sl);
const fy__help_t *fy__help_ref(fy_store_t *s, fy__fam_t *f, int has_help, fy_str_t text, int delta);

static inline int fy__slot_key_eq(const fy__slot_t *sl, uint64_t h, const char *key, uint32_t keylen)
{
    return sl->hash == (uint32_t)h && sl->keylen == keylen && memcmp(sl->key, key, keylen) == 0;
}

static inline fy__stripe_t *fy__stripe_of(fy_store_t *s, uint64_t h)
{
    return &s->stripes[h & (s->cfg.nstripes - 1)];
}

/* ------------------------------------------------------------------------------------------------------------- */
/* group_table.c: the shards' group tables (shard locked) */

void fy__group_insert(fy__shard_t *sh, fy__group_t *g);
void fy__gt_remove_at(fy__shard_t *sh, size_t i);
void fy__group_unlink(fy__shard_t *sh, fy__group_t *g);
fy__gfam_t *fy__group_gfam_locked(const fy__group_t *g, fy_str_t name);
/* group_gfam for readers that hold a stripe lock of one of the group's names but not its shard lock. */
const fy__gfam_t *fy__group_gfam(const fy__group_t *g, fy_str_t name);

/* The next group from entry *i on whose tag is h's (*i left at it), or NULL at the end of h's probe sequence (the
 * table always has an empty entry, see fy__group_insert). The lookup and the push's prefetch of its group share it. */
static inline fy__group_t *fy__gt_next_tagged(const fy__shard_t *sh, uint64_t h, size_t *i)
{
    FY_ASSERT_SHARD(sh);
    uint64_t tag = fy__gt_tag(h), e;
    for (; (e = sh->buckets[*i]) != 0; *i = (*i + 1) & (sh->nbuckets - 1))
        if ((e & ~FY_GT_PTR_MASK) == tag && e != FY_GT_TOMB)
            return fy__gt_group(e);
    return NULL;
}

static inline fy__group_t *fy__group_find(const fy__shard_t *sh, uint64_t h, fy_str_t key)
{
    size_t i = FY_BUCKET(h, sh->nbuckets);
    for (fy__group_t *g; (g = fy__gt_next_tagged(sh, h, &i)) != NULL; i = (i + 1) & (sh->nbuckets - 1))
        if (g->hash == h && fy_str_eq(fy__group_key(g), key))
            return g;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* life.c: expiry and liveness (shard locked) */

fy__life_t *fy__group_life(fy__group_t *g);
void fy__life_unlink(fy__shard_t *sh, fy__group_t *g);
void fy__life_update_slow(fy_store_t *s, fy__shard_t *sh, fy__group_t *g);
void fy__life_declare_slow(fy__group_t *g, const fy_store_life_t *life);
void fy__life_view(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v);
static inline int64_t fy__life_eff(int64_t declared, int64_t def)
{
    return declared > 0 ? declared : declared == 0 && def > 0 ? def : 0;
}

/* Brings the group's deadline, heap position and life-list membership up to date; inline for the early exit that
 * every push of a store without lifetimes takes. */
static inline void fy__life_update(fy_store_t *s, fy__shard_t *sh, fy__group_t *g)
{
    if (!g->life_any && !s->life_defaults)
        return;
    fy__life_update_slow(s, sh, g);
}

/* Takes a declaration into the group (0 keeps what it has); inline for the early exit of pushes that declare none. */
static inline void fy__life_declare(fy__group_t *g, const fy_store_life_t *life)
{
    if (life == NULL || (life->ttl_ns == 0 && life->interval_ns == 0))
        return;
    fy__life_declare_slow(g, life);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* lww.c: last-writer-wins state (shard locked) */

void fy__life_free(fy__group_t *g);
void fy__tombs_free(fy__shard_t *sh);

/* ------------------------------------------------------------------------------------------------------------- */
/* group_view.c: group views and iteration in key order */

/* Splits a canonical key of n labels into out[0..n), names and values pointing into the key's bytes (so sorted by
 * name). The key must hold exactly 2n-1 separators, which holds for every stored group (see above). */
void fy__key_labels(fy_str_t key, uint32_t n, fy_store_label_t *out);

/* Fills a group view's fields other than its families: key, labels (in vl's storage: valid until vl is reused or
 * freed), times, origin, version, and the life fields (declared and effective TTL and interval, deadline). */
void fy__group_view_head(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v);

/* A group's key as collected for an iteration (fy__collect_refs: all groups, sorted by key). */
typedef struct st_fy__gref_t {
    char *key;
    size_t len;
    uint64_t hash;
} fy__gref_t;

void *fy__grow(void *p, size_t *cap, size_t need, size_t sz);
fy__gref_t *fy__collect_refs(fy_store_t *s, size_t *np);
void fy__free_refs(fy__gref_t *refs, size_t n);

/* ------------------------------------------------------------------------------------------------------------- */
/* render_scrape.c */

/* Appends the text 0.0.4 lines of one series (labels in slot key encoding) to b. */
void fy__render_series(fy__buf_t *b, fy_str_t name, int type, const char *key, uint32_t keylen, unsigned nlabels,
                       const fy_series_t *se);

#endif
