/*
 * store.c: the series store: hash-sharded groups, the striped metric-name index (type, HELP variants, reference
 * counts, the series set that finds duplicates across groups, and the incrementally sorted slot array per family),
 * push/delete with the Pushgateway's consistency check, and epoch-based reclamation for lock-free text scrapes.
 *
 * Lock order (the only one in the store): shard mutex -> stripe mutexes in ascending index. A push holds its
 * group's shard lock throughout, prepares everything that does not need the index (sanitising, copying, rendering
 * text) with only that lock held, then takes the stripe locks of every metric name the check must see, checks,
 * applies, and unlocks. Pushes to different groups therefore only meet on stripe locks, for a short critical
 * section of hash lookups and pointer swaps. Nothing takes a global lock.
 *
 * Workload assumption: pushes mostly re-send the same series of the same group (series identities are stable), so a
 * push usually only swaps the `cur` pointers of existing slots; series appear and disappear rarely, and then the
 * family's sorted array is rebuilt from (old array - dead + sorted pending) at the next scrape, in O(n) copying plus
 * O(k log n) comparisons.
 *
 * OOM policy: like h2o, allocation failures abort (fy__xmalloc); the store never returns half-applied state.
 */
#define _GNU_SOURCE /* qsort_r */
#include "store_int.h"

#include "fy_num.h"
#include "fy_parse.h"
#include "fy_parse_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const char fy__help_push[] = "Last Unix time when changing this group in the Pushgateway succeeded.";
const char fy__help_fail[] = "Last Unix time when changing this group in the Pushgateway failed.";
static const fy_str_t ts_names[2] = {{"push_time_seconds", 17}, {"push_failure_time_seconds", 25}};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

#define GROW(arr, n, cap)                                                                                            \
    do {                                                                                                             \
        if ((n) >= (cap)) {                                                                                          \
            (cap) = (cap) ? 2 * (cap) : 8;                                                                           \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                                         \
        }                                                                                                            \
    } while (0)

uint64_t fy__hash(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

const char *fy_store_strerror(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define XX(name, c, text)                                                                                             \
    case c:                                                                                                           \
        return text;
        FY_SERR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *fy__type_upper(int t)
{
    static const char *n[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"};
    return t >= 0 && t <= FY_TYPE_MAX ? n[t] : "UNKNOWN";
}

const char *fy__type_lower(int t)
{
    /* gauge histograms are exposed as histograms in text 0.0.4, as newer Pushgateways do (fixes B2) */
    static const char *n[] = {"counter", "gauge", "summary", "untyped", "histogram", "histogram"};
    return t >= 0 && t <= FY_TYPE_MAX ? n[t] : "untyped";
}

static int metric_name_valid(fy_str_t s)
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

/* client_golang's checkLabelName: model.LabelName.IsValid and no "__" prefix. */
static int label_name_valid(fy_str_t s)
{
    if (s.len == 0 || (s.len >= 2 && s.ptr[0] == '_' && s.ptr[1] == '_'))
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Epoch-based reclamation. Text scrapes register in a reader slot with the epoch they entered at; retired objects
 * carry the epoch at retirement; an object is freed once no registered reader entered at or before that epoch.
 * Readers bump the epoch when they enter, so a writer only loads it. All operations are seq_cst: a reader whose
 * registration a reclaimer does not see reads the published pointers after the reclaimer's scan, and the
 * unpublishing of a retired object precedes its retirement. */

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

static void reclaim(fy_store_t *s, fy__retire_list_t *l, int force)
{
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

static void retire(fy_store_t *s, fy__retire_list_t *l, void *p)
{
    if (p == NULL)
        return;
    GROW(l->v, l->n, l->cap);
    l->v[l->n].p = p;
    l->v[l->n].epoch = atomic_load(&s->epoch);
    l->n++;
}

/* Frees p (already unpublished under the shard lock) now if no text scrape is running, else retires it. The
 * read-modify-write orders this push's unpublishing stores before any scrape that counts itself in later (a plain
 * load would need a fence, which ThreadSanitizer does not model); the shard's line is this thread's already (its
 * mutex), so it costs no transfer between cores. */
static void retire_shard(fy_store_t *s, fy__shard_t *sh, void *p)
{
    if (atomic_fetch_add(&sh->readers, 0) == 0)
        free(p);
    else
        retire(s, &sh->retired, p);
}

static void reclaim_maybe(fy_store_t *s, fy__retire_list_t *l)
{
    if (l->n >= 64)
        reclaim(s, l, 0);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Slots and their order. */

/* Exposition order: label count, then values position by position (bytewise), then names (our deterministic
 * tie-break; the reference leaves such ties to an unstable sort). Unique among the live slots of a family. */
int fy__slot_cmp(const fy__slot_t *a, const fy__slot_t *b)
{
    if (a->nlabels != b->nlabels)
        return a->nlabels < b->nlabels ? -1 : 1;
    const char *pa = a->key, *pb = b->key;
    fy_str_t na, va, nb, vb;
    for (unsigned i = 0; i < a->nlabels; i++) {
        pa = fy__slot_label(pa, &na, &va);
        pb = fy__slot_label(pb, &nb, &vb);
        int c = fy_str_cmp(va, vb);
        if (c != 0)
            return c;
    }
    pa = a->key;
    pb = b->key;
    for (unsigned i = 0; i < a->nlabels; i++) {
        pa = fy__slot_label(pa, &na, &va);
        pb = fy__slot_label(pb, &nb, &vb);
        int c = fy_str_cmp(na, nb);
        if (c != 0)
            return c;
    }
    return 0;
}

static int slot_cmp_qsort(const void *x, const void *y)
{
    return fy__slot_cmp(*(fy__slot_t *const *)x, *(fy__slot_t *const *)y);
}

/* First index in v[0..n) whose slot is not less than k. */
static size_t lower_bound(fy__slot_t *const *v, size_t n, const fy__slot_t *k)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fy__slot_cmp(v[mid], k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int ptr_cmp(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
    return a < b ? -1 : a > b;
}

/* Folds pending and dead slots into a new published array. Called with the stripe locked, by scrapes (before they
 * read the array) and by pushes when the backlog grows past the array's size. */
void fy__fam_merge(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f)
{
    if (f->npending == 0 && f->ndead == 0)
        return;
    fy__farr_t *old = atomic_load(&f->published);
    size_t on = old ? old->n : 0;
    /* positions of dead slots in the old array; dead pending slots are filtered directly */
    size_t *dpos = xmalloc((f->ndead + 1) * sizeof(size_t));
    size_t nd = 0;
    for (size_t i = 0; i < f->ndead; i++) {
        fy__slot_t *d = f->dead[i];
        if (on == 0)
            break;
        size_t p = lower_bound(old->v, on, d);
        while (p < on && old->v[p] != d && fy__slot_cmp(old->v[p], d) == 0)
            p++;
        if (p < on && old->v[p] == d)
            dpos[nd++] = p;
    }
    if (nd > 1)
        qsort(dpos, nd, sizeof(size_t), ptr_cmp);
    size_t np = 0;
    for (size_t i = 0; i < f->npending; i++)
        if (!f->pending[i]->dead)
            f->pending[np++] = f->pending[i];
        else
            retire(s, &st->retired, f->pending[i]);
    if (np > 1)
        qsort(f->pending, np, sizeof(*f->pending), slot_cmp_qsort);
    size_t nn = on - nd + np;
    fy__farr_t *a = xmalloc(sizeof(*a) + nn * sizeof(a->v[0]));
    a->n = nn;
    size_t oi = 0, di = 0, pi = 0, w = 0;
    while (oi < on || pi < np) {
        /* next run of old entries before the next pending slot, skipping dead positions */
        size_t stop = on;
        if (pi < np)
            stop = oi < on ? oi + lower_bound(old->v + oi, on - oi, f->pending[pi]) : on;
        while (oi < stop) {
            size_t end = stop;
            if (di < nd && dpos[di] < end)
                end = dpos[di];
            memcpy(a->v + w, old->v + oi, (end - oi) * sizeof(a->v[0]));
            w += end - oi;
            oi = end;
            if (di < nd && dpos[di] == oi) {
                retire(s, &st->retired, old->v[oi]);
                oi++;
                di++;
            }
        }
        if (pi < np)
            a->v[w++] = f->pending[pi++];
    }
    assert(w == nn && di == nd);
    atomic_store(&f->published, a);
    retire(s, &st->retired, old);
    free(dpos);
    f->npending = 0;
    f->ndead = 0;
    /* a burst of new series (a store filling up) must not leave a pointer per series behind */
    if (f->cap_pending > 1024) {
        free(f->pending);
        f->pending = NULL;
        f->cap_pending = 0;
    }
    if (f->cap_dead > 1024) {
        free(f->dead);
        f->dead = NULL;
        f->cap_dead = 0;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The family index (one hash table per stripe, chained) and each family's series set (open addressing). */

fy__fam_t *fy__fam_find(fy__stripe_t *st, uint64_t h, fy_str_t name)
{
    for (fy__fam_t *f = st->buckets[FY_BUCKET(h, st->nbuckets)]; f; f = f->next)
        if (f->hash == h && fy_str_eq(f->name, name))
            return f;
    return NULL;
}

static fy__fam_t *fam_create(fy__stripe_t *st, uint64_t h, fy_str_t name)
{
    if (st->nfams >= st->nbuckets) {
        size_t nb = st->nbuckets * 2;
        fy__fam_t **b = xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < st->nbuckets; i++)
            for (fy__fam_t *f = st->buckets[i], *nx; f; f = nx) {
                nx = f->next;
                f->next = b[FY_BUCKET(f->hash, nb)];
                b[FY_BUCKET(f->hash, nb)] = f;
            }
        free(st->buckets);
        st->buckets = b;
        st->nbuckets = nb;
    }
    fy__fam_t *f = xcalloc(1, sizeof(*f) + name.len + 1);
    memcpy(f->name_buf, name.ptr, name.len);
    f->name = fy_str(f->name_buf, name.len);
    f->hash = h;
    f->next = st->buckets[FY_BUCKET(h, st->nbuckets)];
    st->buckets[FY_BUCKET(h, st->nbuckets)] = f;
    st->nfams++;
    return f;
}

/* Drops a family nobody holds any more (no group, not own). Its slots are all dead. */
static void fam_maybe_drop(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f)
{
    if (f->refs != 0 || f->own)
        return;
    assert(f->set_n == 0);
    fy__fam_t **pp = &st->buckets[FY_BUCKET(f->hash, st->nbuckets)];
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    st->nfams--;
    fy__farr_t *a = atomic_load(&f->published);
    if (a) {
        for (size_t i = 0; i < a->n; i++)
            retire(s, &st->retired, a->v[i]);
        retire(s, &st->retired, a);
    }
    for (size_t i = 0; i < f->npending; i++)
        retire(s, &st->retired, f->pending[i]);
    for (uint32_t i = 0; i < f->nhv; i++)
        retire(s, &st->retired, f->hv[i].h);
    free(f->hv);
    free(f->pending);
    free(f->dead);
    free(f->set);
    /* A scrape that collected f before it was unlinked may still lock the stripe and look at it (the fam itself is
     * freed through EBR): leave it empty and marked, so that the scrape skips it instead of merging again. */
    f->dropped = 1;
    f->hv = NULL;
    f->nhv = 0;
    f->pending = f->dead = f->set = NULL;
    f->npending = f->ndead = 0;
    f->set_cap = f->set_n = f->set_ntomb = 0;
    atomic_store(&f->published, NULL);
    retire(s, &st->retired, f);
}

static int slot_key_eq(const fy__slot_t *sl, uint64_t h, const char *key, uint32_t keylen)
{
    return sl->hash == (uint32_t)h && sl->keylen == keylen && memcmp(sl->key, key, keylen) == 0;
}

/* The series set is open addressing with linear probing. A removal leaves a tombstone instead of shifting the entries
 * behind it back: the shift has to read each following entry's hash, i.e. dereference a slot that is a cache miss
 * at 1M series (eight or so per removal at 3/4 load; a bulk delete of 100 000 groups spent most of its time there).
 * Tombstones count towards the load; the table is rebuilt (at the same size when the live entries fit in half of
 * it) when live entries and tombstones pass 3/4. */
static fy__slot_t set_tomb_slot;
#define SET_TOMB (&set_tomb_slot)

static fy__slot_t *set_find(const fy__fam_t *f, uint64_t h, const char *key, uint32_t keylen)
{
    if (f->set_cap == 0)
        return NULL;
    for (size_t i = (uint32_t)h & (f->set_cap - 1);; i = (i + 1) & (f->set_cap - 1)) {
        fy__slot_t *sl = f->set[i];
        if (sl == NULL)
            return NULL;
        if (sl != SET_TOMB && slot_key_eq(sl, h, key, keylen))
            return sl;
    }
}

/* Into a table without tombstones (a rebuild). */
static void set_insert_raw(fy__slot_t **set, size_t cap, fy__slot_t *sl)
{
    size_t i = sl->hash & (cap - 1);
    while (set[i])
        i = (i + 1) & (cap - 1);
    set[i] = sl;
}

static void set_insert(fy__fam_t *f, fy__slot_t *sl)
{
    if (4 * (f->set_n + f->set_ntomb + 1) > 3 * f->set_cap) {
        size_t nc = f->set_cap ? f->set_cap : 8;
        while (2 * (f->set_n + 1) > nc)
            nc *= 2;
        fy__slot_t **ns = xcalloc(nc, sizeof(*ns));
        for (size_t i = 0; i < f->set_cap; i++)
            if (f->set[i] && f->set[i] != SET_TOMB)
                set_insert_raw(ns, nc, f->set[i]);
        free(f->set);
        f->set = ns;
        f->set_cap = nc;
        f->set_ntomb = 0;
    }
    size_t m = f->set_cap - 1, i = sl->hash & m;
    while (f->set[i] != NULL && f->set[i] != SET_TOMB)
        i = (i + 1) & m;
    if (f->set[i] == SET_TOMB)
        f->set_ntomb--;
    f->set[i] = sl;
    f->set_n++;
}

static void set_remove(fy__fam_t *f, fy__slot_t *sl)
{
    size_t m = f->set_cap - 1, i = sl->hash & m;
    while (f->set[i] != sl) {
        assert(f->set[i] != NULL);
        i = (i + 1) & m;
    }
    f->set_n--;
    if (f->set[(i + 1) & m] != NULL) {
        f->set[i] = SET_TOMB;
        f->set_ntomb++;
        return;
    }
    /* the end of a run: no probe needs this entry or the tombstones right before it */
    f->set[i] = NULL;
    for (i = (i - 1) & m; f->set[i] == SET_TOMB; i = (i - 1) & m) {
        f->set[i] = NULL;
        f->set_ntomb--;
    }
}

static void slot_kill(fy__fam_t *f, fy__slot_t *sl)
{
    assert(!sl->dead);
    sl->dead = 1;
    set_remove(f, sl);
    GROW(f->dead, f->ndead, f->cap_dead);
    f->dead[f->ndead++] = sl;
}

/* Counts a gfam (or a group's timestamp series) in or out of the fam's HELP variant (has_help, text); returns the
 * variant, which the gfam then points at. Called with the fam's stripe locked. A variant whose last holder goes is
 * retired, not freed: a scrape that chose it may still be copying it (it does so under the stripe lock today, but
 * JSON and snapshot readers hold only a shard lock, and a retired gfam may still point at it). */
static const fy__help_t *help_ref(fy_store_t *s, fy__fam_t *f, int has_help, fy_str_t text, int delta)
{
    for (uint32_t i = 0; i < f->nhv; i++) {
        fy__helpvar_t *v = &f->hv[i];
        if (v->h->has_help == has_help && fy_str_eq(fy__help_str(v->h), text)) {
            const fy__help_t *h = v->h;
            v->refs += delta;
            if (v->refs == 0) {
                retire(s, &s->stripes[f->hash & (s->cfg.nstripes - 1)].retired, v->h);
                f->hv[i] = f->hv[--f->nhv];
                return NULL;
            }
            return h;
        }
    }
    assert(delta > 0);
    if (text.len > UINT32_MAX) { /* the parsers' limits keep bodies far below */
        fprintf(stderr, "fy_store: HELP of %zu bytes\n", text.len);
        abort();
    }
    GROW(f->hv, f->nhv, f->cap_hv);
    fy__helpvar_t *v = &f->hv[f->nhv++];
    v->h = xmalloc(sizeof(fy__help_t) + text.len + 1);
    v->h->len = (uint32_t)text.len;
    v->h->has_help = (uint8_t)has_help;
    memcpy(v->h->text, text.ptr, text.len);
    v->h->text[text.len] = 0;
    v->refs = 1;
    return v->h;
}

/* A gfam joins or leaves its fam: only its HELP variant is counted (the fam keeps no member list, so that a
 * re-push that keeps the family's shape touches no shared state; see push_fast). */
static void member_link(fy_store_t *s, fy__fam_t *f, fy__gfam_t *g, int has_help, fy_str_t help)
{
    g->fam = f;
    g->help = help_ref(s, f, has_help, help, 1);
}

static void member_unlink(fy_store_t *s, fy__fam_t *f, fy__gfam_t *g)
{
    help_ref(s, f, g->help->has_help, fy__help_str(g->help), -1);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Store life cycle. */

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
    s->shards = xcalloc(s->cfg.nshards, sizeof(*s->shards));
    s->stripes = xcalloc(s->cfg.nstripes, sizeof(*s->stripes));
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
        s->shards[i].buckets = xcalloc(16, sizeof(uint64_t));
    }
    pthread_mutexattr_destroy(&ma);
    for (uint32_t i = 0; i < s->cfg.nstripes; i++) {
        pthread_mutex_init(&s->stripes[i].lock, NULL);
        s->stripes[i].nbuckets = 8;
        s->stripes[i].buckets = xcalloc(8, sizeof(fy__fam_t *));
    }
    return s;
}

static void gfam_free_now(fy__gfam_t *g)
{
    free(g);
}

static void group_free(fy__group_t *g)
{
    free(g->lf);
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
        reclaim(s, &sh->retired, 1);
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
        reclaim(s, &st->retired, 1);
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
}

void fy_store_err_free(fy_store_err_t *err)
{
    if (err) {
        free(err->msg);
        err->msg = NULL;
        err->msg_len = 0;
    }
}

int fy_store_register_own(fy_store_t *s, fy_str_t name, fy_type_t type, fy_str_t help, int predefined)
{
    if (!metric_name_valid(name) || (unsigned)type > FY_TYPE_MAX)
        return FY_SERR_BADARG;
    uint64_t h = fy__hash(name.ptr, name.len);
    fy__stripe_t *st = &s->stripes[h & (s->cfg.nstripes - 1)];
    int rc = FY_OK;
    pthread_mutex_lock(&st->lock);
    fy__fam_t *f = fy__fam_find(st, h, name);
    if (f == NULL)
        f = fam_create(st, h, name);
    if (f->own) {
        rc = FY_SERR_BADARG;
    } else {
        char *hc = xmalloc(help.len + 1);
        memcpy(hc, help.ptr, help.len);
        f->own = 1;
        f->own_type = (uint8_t)type;
        f->own_predefined = predefined ? 1 : 0;
        f->own_help = fy_str(hc, help.len);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Growable byte buffer (push scratch, error messages). */

typedef fy__buf_t buf_t;

void fy__buf_grow(buf_t *b, size_t more)
{
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + more)
        nc *= 2;
    b->p = xrealloc(b->p, nc);
    b->cap = nc;
}

#define buf_reserve fy__buf_reserve

static void buf_add(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void buf_str(buf_t *b, const char *z)
{
    buf_add(b, z, strlen(z));
}

static void buf_go_quote(buf_t *b, fy_str_t s)
{
    size_t cap = 4 * s.len + 3;
    if (cap > 1 << 20)
        cap = 1 << 20;
    buf_reserve(b, cap + 1);
    b->n += fy__go_quote(s.ptr, s.len, b->p + b->n, cap + 1);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Rendering one series' exposition lines. key holds the sanitised labels (slot encoding). */

/* Appends one line. Reserves its worst case once, then writes without further checks: a label takes at most
 * name + 2 * value + 4 bytes ('=', quotes, comma; escaping at most doubles the value), and 2 * keylen covers that
 * since each label has at least two length bytes in the key. */
static void render_line(buf_t *b, fy_str_t name, const char *suffix, const char *key, uint32_t keylen, unsigned nlabels,
                        const char *extra, double extra_v, double v)
{
    buf_reserve(b, name.len + 8 + 2 * keylen + 16 + 2 * FY_FLOAT_BUFSZ + 8);
    char *o = b->p + b->n;
    memcpy(o, name.ptr, name.len);
    o += name.len;
    if (suffix) {
        size_t sl = strlen(suffix);
        memcpy(o, suffix, sl);
        o += sl;
    }
    if (nlabels || extra) {
        *o++ = '{';
        const char *p = key;
        fy_str_t n, lv;
        for (unsigned i = 0; i < nlabels; i++) {
            p = fy__slot_label(p, &n, &lv);
            if (i)
                *o++ = ',';
            memcpy(o, n.ptr, n.len);
            o += n.len;
            *o++ = '=';
            *o++ = '"';
            for (size_t k = 0; k < lv.len; k++) {
                char c = lv.ptr[k];
                if (c == '\\' || c == '"') {
                    *o++ = '\\';
                    *o++ = c;
                } else if (c == '\n') {
                    *o++ = '\\';
                    *o++ = 'n';
                } else {
                    *o++ = c;
                }
            }
            *o++ = '"';
        }
        if (extra) {
            if (nlabels)
                *o++ = ',';
            size_t el = strlen(extra);
            memcpy(o, extra, el);
            o += el;
            *o++ = '=';
            *o++ = '"';
            o += fy_format_float_text(extra_v, o);
            *o++ = '"';
        }
        *o++ = '}';
    }
    *o++ = ' ';
    o += fy_format_float_text(v, o);
    *o++ = '\n';
    b->n = (size_t)(o - b->p);
}

void fy__render_series(buf_t *b, fy_str_t name, int type, const char *key, uint32_t keylen, unsigned nlabels,
                          const fy_series_t *se)
{
    switch (type) {
    case FY_TYPE_SUMMARY:
        for (uint32_t i = 0; i < se->npoints; i++)
            render_line(b, name, NULL, key, keylen, nlabels, "quantile", se->points[i].key, se->points[i].value);
        render_line(b, name, "_sum", key, keylen, nlabels, NULL, 0, se->value);
        render_line(b, name, "_count", key, keylen, nlabels, NULL, 0, (double)se->count);
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM: {
        int inf = 0;
        for (uint32_t i = 0; i < se->npoints; i++) {
            render_line(b, name, "_bucket", key, keylen, nlabels, "le", se->points[i].key, (double)se->points[i].count);
            if (se->points[i].key == __builtin_inf())
                inf = 1;
        }
        if (!inf)
            render_line(b, name, "_bucket", key, keylen, nlabels, "le", __builtin_inf(), (double)se->count);
        render_line(b, name, "_sum", key, keylen, nlabels, NULL, 0, se->value);
        render_line(b, name, "_count", key, keylen, nlabels, NULL, 0, (double)se->count);
        break;
    }
    default:
        render_line(b, name, NULL, key, keylen, nlabels, NULL, 0, se->value);
        break;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Groups. */

/* The next group from entry *i on whose tag is h's (*i left at it), or NULL at the end of h's probe sequence (the
 * table always has an empty entry, see group_insert). The lookup and the push's prefetch of its group share it. */
static fy__group_t *gt_next_tagged(const fy__shard_t *sh, uint64_t h, size_t *i)
{
    uint64_t tag = fy__gt_tag(h), e;
    for (; (e = sh->buckets[*i]) != 0; *i = (*i + 1) & (sh->nbuckets - 1))
        if ((e & ~FY_GT_PTR_MASK) == tag && e != FY_GT_TOMB)
            return fy__gt_group(e);
    return NULL;
}

fy__group_t *fy__group_find(const fy__shard_t *sh, uint64_t h, fy_str_t key)
{
    size_t i = FY_BUCKET(h, sh->nbuckets);
    for (fy__group_t *g; (g = gt_next_tagged(sh, h, &i)) != NULL; i = (i + 1) & (sh->nbuckets - 1))
        if (g->hash == h && fy_str_eq(fy__group_key(g), key))
            return g;
    return NULL;
}

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
static void group_insert(fy__shard_t *sh, fy__group_t *g)
{
    if (((uintptr_t)g & ~FY_GT_PTR_MASK) != 0) { /* 57-bit address spaces hand these out only when asked to */
        fprintf(stderr, "fy_store: group address %p above 48 bits\n", (void *)g);
        abort();
    }
    if (4 * (sh->ngroups + sh->ntomb + 1) > 3 * sh->nbuckets) {
        size_t nb = sh->nbuckets;
        if (2 * (sh->ngroups + 1) > nb)
            nb *= 2;
        uint64_t *b = xcalloc(nb, sizeof(*b));
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
static void gt_remove_at(fy__shard_t *sh, size_t i)
{
    assert(fy__gt_live(sh->buckets[i]));
    if (sh->buckets[(i + 1) & (sh->nbuckets - 1)] == 0) {
        sh->buckets[i] = 0;
    } else {
        sh->buckets[i] = FY_GT_TOMB;
        sh->ntomb++;
    }
    sh->ngroups--;
}

static void group_unlink(fy__shard_t *sh, fy__group_t *g)
{
    size_t i = FY_BUCKET(g->hash, sh->nbuckets);
    while (fy__gt_group(sh->buckets[i]) != g || !fy__gt_live(sh->buckets[i]))
        i = (i + 1) & (sh->nbuckets - 1);
    gt_remove_at(sh, i);
}

static int label_cmp_name(const void *x, const void *y)
{
    const fy_store_label_t *a = x, *b = y;
    return fy_str_cmp(a->name, b->name);
}

/* The canonical grouping key of sorted labels: name 0xFF value, pairs joined by 0xFF. */
static void canonical_key(buf_t *b, const fy_store_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_add(b, "\xff", 1);
        buf_add(b, l[i].name.ptr, l[i].name.len);
        buf_add(b, "\xff", 1);
        buf_add(b, l[i].value.ptr, l[i].value.len);
    }
}

/* A parsed grouping key: sorted copies and the canonical form, all in one allocation owned by the caller. */
typedef struct st_gkey_t {
    fy_store_label_t *labels;
    size_t n;
    fy_str_t key;
    uint64_t hash;
    int valid_utf8, has_instance;
    char *mem;
} gkey_t;

static int gkey_parse(gkey_t *k, buf_t *mem, const fy_store_label_t *gk, size_t ngk)
{
    size_t bytes = 0;
    for (size_t i = 0; i < ngk; i++)
        bytes += gk[i].name.len + gk[i].value.len;
    size_t keylen = bytes + (ngk ? 2 * ngk - 1 : 0);
    mem->n = 0;
    buf_reserve(mem, ngk * sizeof(fy_store_label_t) + 2 * bytes + keylen + 1);
    k->mem = mem->p;
    k->labels = (fy_store_label_t *)k->mem;
    k->n = ngk;
    char *p = k->mem + ngk * sizeof(fy_store_label_t);
    for (size_t i = 0; i < ngk; i++) {
        memcpy(p, gk[i].name.ptr, gk[i].name.len);
        k->labels[i].name = fy_str(p, gk[i].name.len);
        p += gk[i].name.len;
        memcpy(p, gk[i].value.ptr, gk[i].value.len);
        k->labels[i].value = fy_str(p, gk[i].value.len);
        p += gk[i].value.len;
    }
    for (size_t i = 1; i < ngk; i++) /* insertion sort: grouping keys have a handful of labels */
        for (size_t j = i; j > 0 && label_cmp_name(&k->labels[j - 1], &k->labels[j]) > 0; j--) {
            fy_store_label_t t = k->labels[j];
            k->labels[j] = k->labels[j - 1];
            k->labels[j - 1] = t;
        }
    k->valid_utf8 = 1;
    k->has_instance = 0;
    for (size_t i = 0; i < ngk; i++) {
        if (!label_name_valid(k->labels[i].name) || (i && fy_str_eq(k->labels[i].name, k->labels[i - 1].name))) {
            return FY_SERR_BADARG;
        }
        if (!fy__utf8_valid(k->labels[i].value.ptr, k->labels[i].value.len))
            k->valid_utf8 = 0;
        if (fy_str_eq_mem(k->labels[i].name, FY_STRLIT("instance")))
            k->has_instance = 1;
    }
    buf_t b = {p, 0, keylen + 1};
    canonical_key(&b, k->labels, ngk);
    assert(b.p == p && b.n == keylen);
    k->key = fy_str(p, keylen);
    k->hash = fy__hash(p, keylen);
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Push preparation: everything that needs no index lock. */

typedef struct st_pser_t {
    const fy_series_t *src;
    size_t key_off; /* in scratch */
    uint32_t keylen;
    uint16_t nlabels;
    uint64_t hash;
    int dup_in_push; /* an earlier series of this push has the same labels */
    fy__slot_t *slot;
} pser_t;

typedef struct st_pfam_t {
    fy_str_t name; /* points into the body */
    uint64_t hash;
    uint8_t type, has_help, is_ts;
    size_t help_off, help_len; /* unescaped, in scratch */
    size_t first, n;           /* pser range */
    uint32_t stripe;
    fy__fam_t *fam;
    int ok;         /* passed the family-level checks (registered) */
    int removed_old; /* the group holds this name and the push replaces it */
    fy__gfam_t *ng; /* prepared gfam */
    const fy__gfam_t *old; /* the group's current family of this name, if any (set by the check) */
    size_t first_old;      /* its index in the group's family list (fast path) */
} pfam_t;

typedef struct st_lab_t {
    fy_str_t name, value;
} lab_t;

typedef struct st_push_t {
    fy_store_t *s;
    gkey_t gk;
    fy_store_method_t method;
    const fy_body_t *body;
    int64_t now;
    buf_t scratch;
    pfam_t *fams;
    size_t nfams, cap_fams;
    pser_t *ser;
    size_t nser, cap_ser;
    /* errors */
    buf_t err;
    size_t nerr;
    int key_caused;
    /* lock set */
    uint32_t *stripes;
    size_t nstripes, cap_stripes;
    /* more scratch: grouping key copy, unescaped label values, label arrays, index arrays, replaced families */
    buf_t gkmem, tmp;
    lab_t *labs;
    size_t cap_labs;
    size_t *idx;
    size_t cap_idx;
    fy__gfam_t **gone;
    size_t cap_gone;
    /* the push's shape (push_shape); shape_ok: it has one (else no blind path, and the group keeps {0, 0}) */
    uint64_t shape[2];
    int shape_ok;
} push_t;

/* A push's temporary arrays survive in a per-thread cache between pushes, so that a steady stream of pushes does not
 * call malloc for them. Arrays that grew past FY_SCRATCH_KEEP bytes are released after the push. */
#define FY_SCRATCH_KEEP (1u << 20)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    push_t *T = p;
    free(T->scratch.p);
    free(T->err.p);
    free(T->gkmem.p);
    free(T->tmp.p);
    free(T->fams);
    free(T->ser);
    free(T->stripes);
    free(T->labs);
    free(T->idx);
    free(T->gone);
    free(T);
}

static void scratch_key_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_release) != 0)
        abort();
}

/* Moves the thread's cached arrays into P (which must be zeroed). */
static void scratch_take(push_t *P)
{
    pthread_once(&scratch_once, scratch_key_init);
    push_t *T = pthread_getspecific(scratch_key);
    if (T == NULL)
        return;
    P->scratch = T->scratch;
    P->err = T->err;
    P->gkmem = T->gkmem;
    P->tmp = T->tmp;
    P->scratch.n = P->err.n = P->gkmem.n = P->tmp.n = 0;
    P->fams = T->fams, P->cap_fams = T->cap_fams;
    P->ser = T->ser, P->cap_ser = T->cap_ser;
    P->stripes = T->stripes, P->cap_stripes = T->cap_stripes;
    P->labs = T->labs, P->cap_labs = T->cap_labs;
    P->idx = T->idx, P->cap_idx = T->cap_idx;
    P->gone = T->gone, P->cap_gone = T->cap_gone;
    memset(T, 0, sizeof(*T));
}

#define KEEP_BUF(b)                                                                                                   \
    do {                                                                                                              \
        if ((b).cap > FY_SCRATCH_KEEP) {                                                                              \
            free((b).p);                                                                                              \
            (b).p = NULL;                                                                                             \
            (b).cap = 0;                                                                                              \
        }                                                                                                             \
    } while (0)
#define KEEP_ARR(a, cap)                                                                                              \
    do {                                                                                                              \
        if ((cap) * sizeof(*(a)) > FY_SCRATCH_KEEP) {                                                                 \
            free(a);                                                                                                  \
            (a) = NULL;                                                                                               \
            (cap) = 0;                                                                                                \
        }                                                                                                             \
    } while (0)

/* Gives P's arrays back to the thread's cache. */
static void scratch_give(push_t *P)
{
    push_t *T = pthread_getspecific(scratch_key);
    if (T == NULL) {
        T = xcalloc(1, sizeof(*T));
        if (pthread_setspecific(scratch_key, T) != 0)
            abort();
    }
    KEEP_BUF(P->scratch);
    KEEP_BUF(P->err);
    KEEP_BUF(P->gkmem);
    KEEP_BUF(P->tmp);
    KEEP_ARR(P->fams, P->cap_fams);
    KEEP_ARR(P->ser, P->cap_ser);
    KEEP_ARR(P->stripes, P->cap_stripes);
    KEEP_ARR(P->labs, P->cap_labs);
    KEEP_ARR(P->idx, P->cap_idx);
    KEEP_ARR(P->gone, P->cap_gone);
    T->scratch = P->scratch;
    T->err = P->err;
    T->gkmem = P->gkmem;
    T->tmp = P->tmp;
    T->fams = P->fams, T->cap_fams = P->cap_fams;
    T->ser = P->ser, T->cap_ser = P->cap_ser;
    T->stripes = P->stripes, T->cap_stripes = P->cap_stripes;
    T->labs = P->labs, T->cap_labs = P->cap_labs;
    T->idx = P->idx, T->cap_idx = P->cap_idx;
    T->gone = P->gone, T->cap_gone = P->cap_gone;
}

static void err_begin(push_t *P)
{
    /* each error is stored as "\n* <text>"; the prefix is stripped when there is only one */
    buf_add(&P->err, "\n* ", 3);
    P->nerr++;
}

/* Appends the sanitised labels of (name, value) list to the key encoding. */
static void key_add(buf_t *b, fy_str_t n, fy_str_t v)
{
    uint32_t nl = (uint32_t)n.len, vl = (uint32_t)v.len;
    char hdr[10];
    size_t hn = fy__key_put_len(hdr, nl);
    hn += fy__key_put_len(hdr + hn, vl);
    buf_add(b, hdr, hn);
    buf_add(b, n.ptr, n.len);
    buf_add(b, v.ptr, v.len);
}

/* Sanitises one series (spec 5.3) into the scratch key encoding. Label strings are first unescaped into `tmp`. */
static void prep_series(push_t *P, pser_t *ps)
{
    const fy_series_t *se = ps->src;
    size_t nl = 0, need = se->nlabels + P->gk.n + 1;
    if (need > P->cap_labs) {
        P->cap_labs = need * 2;
        P->labs = xrealloc(P->labs, P->cap_labs * sizeof(lab_t));
    }
    lab_t *labs = P->labs;
    buf_t *tmp = &P->tmp;
    tmp->n = 0;
    size_t bytes = 0;
    for (uint32_t i = 0; i < se->nlabels; i++)
        bytes += se->labels[i].value.len;
    buf_reserve(tmp, bytes);
    int has_instance = P->gk.has_instance;
    for (uint32_t i = 0; i < se->nlabels; i++) {
        const fy_label_t *l = &se->labels[i];
        int overridden = 0;
        for (size_t k = 0; k < P->gk.n && !overridden; k++)
            overridden = fy_str_eq(l->name, P->gk.labels[k].name);
        if (overridden)
            continue;
        if (fy_str_eq_mem(l->name, FY_STRLIT("instance")))
            has_instance = 1;
        fy_str_t v = l->value;
        if (l->value_esc != FY_ESC_NONE) {
            size_t n = fy_unescape(l->value, (fy_esc_t)l->value_esc, tmp->p + tmp->n);
            v = fy_str(tmp->p + tmp->n, n);
            tmp->n += n;
        }
        labs[nl].name = l->name;
        labs[nl].value = v;
        nl++;
    }
    for (size_t k = 0; k < P->gk.n; k++) {
        labs[nl].name = P->gk.labels[k].name;
        labs[nl].value = P->gk.labels[k].value;
        nl++;
    }
    if (!has_instance) {
        labs[nl].name = fy_str(FY_STRLIT("instance"));
        labs[nl].value = fy_str("", 0);
        nl++;
    }
    /* stable insertion sort by name: series have a handful of labels, and duplicates keep their input order */
    for (size_t i = 1; i < nl; i++) {
        lab_t t = labs[i];
        size_t j = i;
        for (; j > 0 && fy_str_cmp(labs[j - 1].name, t.name) > 0; j--)
            labs[j] = labs[j - 1];
        labs[j] = t;
    }
    ps->key_off = P->scratch.n;
    for (size_t i = 0; i < nl; i++)
        key_add(&P->scratch, labs[i].name, labs[i].value);
    ps->keylen = (uint32_t)(P->scratch.n - ps->key_off);
    ps->nlabels = (uint16_t)nl;
}

static int pfam_cmp(const void *x, const void *y)
{
    const pfam_t *a = x, *b = y;
    int c = fy_str_cmp(a->name, b->name);
    if (c)
        return c;
    return a->first < b->first ? -1 : a->first > b->first; /* later duplicates sort later */
}

static int is_ts_name(fy_str_t n)
{
    return fy_str_eq(n, ts_names[0]) || fy_str_eq(n, ts_names[1]);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The compact protobuf text dump used in client_golang's messages ("{ label:<...> gauge:<value:1 > }"). */

static void dump_pb_string(buf_t *b, fy_str_t s)
{
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        uint32_t r;
        size_t k;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_add(b, e, 2);
            i++;
        } else if (c == '\n') {
            buf_add(b, "\\n", 2);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            buf_add(b, &s.ptr[i], 1);
            i++;
        } else if (c >= 0x80 && (k = fy__utf8_decode((const unsigned char *)s.ptr + i, s.len - i, &r)) > 0) {
            buf_add(b, s.ptr + i, k);
            i += k;
        } else {
            char e[5];
            snprintf(e, sizeof(e), "\\%03o", c);
            buf_add(b, e, 4);
            i++;
        }
    }
    buf_add(b, "\"", 1);
}

static void dump_float(buf_t *b, double v)
{
    buf_reserve(b, FY_FLOAT_BUFSZ);
    b->n += fy_format_float_g(v, b->p + b->n);
}

static void dump_u64(buf_t *b, uint64_t v)
{
    buf_reserve(b, 24);
    b->n += fy_format_uint64(v, b->p + b->n);
}

static void dump_metric(push_t *P, buf_t *b, const pser_t *ps, int family_type)
{
    const fy_series_t *se = ps->src;
    buf_add(b, "{ ", 2);
    const char *p = P->scratch.p + ps->key_off;
    fy_str_t n, v;
    for (unsigned i = 0; i < ps->nlabels; i++) {
        p = fy__slot_label(p, &n, &v);
        buf_str(b, "label:<name:");
        dump_pb_string(b, n);
        buf_str(b, " value:");
        dump_pb_string(b, v);
        buf_str(b, " > ");
    }
    int kind = family_type;
    if ((se->pb_kinds & FY_PB_KINDS_VALID) && !(se->pb_kinds & FY_PB_KIND_BIT(family_type))) {
        /* Dump the first sub-message the series did carry, as the reference's text dump shows it. */
        for (int t = FY_TYPE_COUNTER; t <= FY_TYPE_HISTOGRAM; t++)
            if (se->pb_kinds & (1u << t)) {
                kind = t;
                break;
            }
    }
    switch (kind) {
    case FY_TYPE_COUNTER:
    case FY_TYPE_GAUGE:
    case FY_TYPE_UNTYPED:
        buf_str(b, kind == FY_TYPE_COUNTER ? "counter:<value:" : kind == FY_TYPE_GAUGE ? "gauge:<value:" : "untyped:<value:");
        dump_float(b, se->value);
        buf_str(b, " > ");
        break;
    case FY_TYPE_SUMMARY:
        buf_str(b, "summary:<sample_count:");
        dump_u64(b, se->count);
        buf_str(b, " sample_sum:");
        dump_float(b, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            buf_str(b, " quantile:<quantile:");
            dump_float(b, se->points[i].key);
            buf_str(b, " value:");
            dump_float(b, se->points[i].value);
            buf_str(b, " >");
        }
        buf_str(b, " > ");
        break;
    default:
        buf_str(b, "histogram:<sample_count:");
        dump_u64(b, se->count);
        buf_str(b, " sample_sum:");
        dump_float(b, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            buf_str(b, " bucket:<cumulative_count:");
            dump_u64(b, se->points[i].count);
            buf_str(b, " upper_bound:");
            dump_float(b, se->points[i].key);
            buf_str(b, " >");
        }
        buf_str(b, " > ");
        break;
    }
    if (se->has_timestamp) {
        char t[32];
        snprintf(t, sizeof(t), "timestamp_ms:%lld ", (long long)se->timestamp_ms);
        buf_str(b, t);
    }
    buf_add(b, "}", 1);
}

/* "collected metric %q { %s} <tail>" */
static void err_metric(push_t *P, const pfam_t *pf, const pser_t *ps, int family_type)
{
    err_begin(P);
    buf_str(&P->err, "collected metric ");
    buf_go_quote(&P->err, pf->name);
    buf_add(&P->err, " ", 1);
    dump_metric(P, &P->err, ps, family_type);
    buf_add(&P->err, " ", 1);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The check, with all stripe locks of the push held. */

static fy__stripe_t *stripe_of(fy_store_t *s, uint64_t h)
{
    return &s->stripes[h & (s->cfg.nstripes - 1)];
}

static fy__fam_t *lookup(push_t *P, fy_str_t name)
{
    uint64_t h = fy__hash(name.ptr, name.len);
    return fy__fam_find(stripe_of(P->s, h), h, name);
}

static fy__gfam_t *group_gfam(const fy__group_t *g, fy_str_t name)
{
    if (g == NULL)
        return NULL;
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

static pfam_t *pushed_fam(push_t *P, fy_str_t name)
{
    size_t lo = 0, hi = P->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fy_str_cmp(P->fams[mid].name, name);
        if (c == 0)
            return &P->fams[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether the group's current family `name` disappears with this push. */
static int replaced(push_t *P, const fy__group_t *g, fy_str_t name)
{
    if (group_gfam(g, name) == NULL)
        return 0;
    return P->method == FY_STORE_PUT || pushed_fam(P, name) != NULL;
}

/* Is `name` present (own, in another group, kept in this group, or pushed and registered earlier), and with which
 * type? Mirrors the metricFamiliesByName map of client_golang's Gather at the moment family `upto` is gathered. */
static int registered(push_t *P, const fy__group_t *g, fy_str_t name, const pfam_t *upto, int *type)
{
    fy__fam_t *f = lookup(P, name);
    if (f && f->own) {
        *type = f->own_type;
        return 1;
    }
    if (f && f->refs > (uint32_t)replaced(P, g, name)) {
        *type = f->type;
        return 1;
    }
    pfam_t *pf = pushed_fam(P, name);
    if (pf && pf < upto && pf->ok) {
        *type = pf->type;
        return 1;
    }
    return 0;
}

static int has_suffix(fy_str_t n, const char *suf, size_t sl)
{
    return n.len > sl && memcmp(n.ptr + n.len - sl, suf, sl) == 0;
}

/* client_golang's checkSuffixCollisions, against registered(). Returns 1 (and records the error) on a collision. */
static int check_suffix(push_t *P, const fy__group_t *g, pfam_t *pf)
{
    fy_str_t n = pf->name;
    size_t cut = 0;
    if (has_suffix(n, "_count", 6))
        cut = 6;
    else if (has_suffix(n, "_sum", 4))
        cut = 4;
    else if (has_suffix(n, "_bucket", 7))
        cut = 7;
    int t;
    if (cut) {
        fy_str_t base = fy_str(n.ptr, n.len - cut);
        if (registered(P, g, base, pf, &t) && (t == FY_TYPE_HISTOGRAM || (t == FY_TYPE_SUMMARY && cut != 7))) {
            err_begin(P);
            buf_str(&P->err, "collected metric named ");
            buf_go_quote(&P->err, n);
            buf_str(&P->err, t == FY_TYPE_SUMMARY ? " collides with previously collected summary named "
                                                  : " collides with previously collected histogram named ");
            buf_go_quote(&P->err, base);
            return 1;
        }
    }
    if (pf->type == FY_TYPE_SUMMARY || pf->type == FY_TYPE_HISTOGRAM) {
        static const char *sufs[3] = {"_count", "_sum", "_bucket"};
        for (int i = 0; i < (pf->type == FY_TYPE_HISTOGRAM ? 3 : 2); i++) {
            char tmp[512];
            if (n.len + 8 > sizeof(tmp))
                break; /* no registered name can be that long and collide: names longer than this are compared below */
            memcpy(tmp, n.ptr, n.len);
            memcpy(tmp + n.len, sufs[i], strlen(sufs[i]));
            fy_str_t sn = fy_str(tmp, n.len + strlen(sufs[i]));
            if (registered(P, g, sn, pf, &t)) {
                err_begin(P);
                buf_str(&P->err, i == 2 ? "collected histogram named " : "collected histogram or summary named ");
                buf_go_quote(&P->err, n);
                buf_str(&P->err, " collides with previously collected metric named ");
                buf_go_quote(&P->err, sn);
                return 1;
            }
        }
    }
    return 0;
}

/* Text and OpenMetrics series carry the family's kind by construction (pb_kinds 0); a protobuf series must carry
 * the sub-message of its family's type (see FY_PB_KIND_BIT). */
static int series_kind_ok(int family_type, unsigned pb_kinds)
{
    if (!(pb_kinds & FY_PB_KINDS_VALID))
        return 1;
    return (pb_kinds & FY_PB_KIND_BIT(family_type)) != 0;
}

/* client_golang's checkMetricConsistency for one series against the merged family of type `ftype`. */
static void check_series(push_t *P, const fy__group_t *g, pfam_t *pf, pser_t *ps, int ftype)
{
    if (!series_kind_ok(ftype, ps->src->pb_kinds)) {
        err_metric(P, pf, ps, ftype);
        buf_str(&P->err, "is not a ");
        buf_str(&P->err, fy__type_upper(ftype));
        goto Bad;
    }
    const char *p = P->scratch.p + ps->key_off;
    fy_str_t n, v, prev = {NULL, 0};
    for (unsigned i = 0; i < ps->nlabels; i++, prev = n) {
        p = fy__slot_label(p, &n, &v);
        if (i && fy_str_eq(n, prev)) {
            err_metric(P, pf, ps, ftype);
            buf_str(&P->err, "has two or more labels with the same name: ");
            buf_add(&P->err, n.ptr, n.len);
            goto Bad;
        }
        if (!label_name_valid(n)) {
            err_metric(P, pf, ps, ftype);
            buf_str(&P->err, "has a label with an invalid name: ");
            buf_add(&P->err, n.ptr, n.len);
            goto Bad;
        }
        if (ftype == FY_TYPE_SUMMARY && fy_str_eq_mem(n, FY_STRLIT("quantile"))) {
            err_metric(P, pf, ps, ftype);
            buf_str(&P->err, "must not have an explicit \"quantile\" label");
            goto Bad;
        }
        if (!fy__utf8_valid(v.ptr, v.len)) {
            err_metric(P, pf, ps, ftype);
            buf_str(&P->err, "has a label named ");
            buf_go_quote(&P->err, n);
            buf_str(&P->err, " whose value is not utf8: ");
            buf_go_quote(&P->err, v);
            goto Bad;
        }
    }
    /* A re-push usually sends the group's series in the same order: try the slot at the same position of the group's
     * current family first (its slot is hot anyway), and the family's series set only when that misses. */
    fy__slot_t *sl = NULL;
    if (pf->fam) {
        const char *key = P->scratch.p + ps->key_off;
        size_t k = (size_t)(ps - &P->ser[pf->first]);
        if (pf->old && k < pf->old->nrecs && slot_key_eq(fy__gfam_recs(pf->old)[k].slot, ps->hash, key, ps->keylen))
            sl = fy__gfam_recs(pf->old)[k].slot;
        else
            sl = set_find(pf->fam, ps->hash, key, ps->keylen);
    }
    ps->slot = sl;
    if (ps->dup_in_push || (sl && sl->owner != (const void *)g)) {
        err_metric(P, pf, ps, ftype);
        buf_str(&P->err, "was collected before with the same name and label values");
        goto Bad;
    }
    return;
Bad:
    if (pf->is_ts)
        P->key_caused = 1;
}

static int pser_key_cmp_idx(const void *x, const void *y, void *ctx)
{
    const push_t *P = ctx;
    const pser_t *a = &P->ser[*(const size_t *)x], *b = &P->ser[*(const size_t *)y];
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    if (a->keylen != b->keylen)
        return a->keylen < b->keylen ? -1 : 1;
    int c = memcmp(P->scratch.p + a->key_off, P->scratch.p + b->key_off, a->keylen);
    if (c)
        return c;
    return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

/* Marks series that repeat an earlier series of the same family in this push. */
static void mark_dups_in_push(push_t *P, pfam_t *pf)
{
    if (pf->n < 2)
        return;
    if (pf->n <= 16) {
        for (size_t i = 1; i < pf->n; i++) {
            pser_t *b = &P->ser[pf->first + i];
            for (size_t k = 0; k < i && !b->dup_in_push; k++) {
                pser_t *a = &P->ser[pf->first + k];
                if (a->hash == b->hash && a->keylen == b->keylen &&
                    memcmp(P->scratch.p + a->key_off, P->scratch.p + b->key_off, a->keylen) == 0)
                    b->dup_in_push = 1;
            }
        }
        return;
    }
    if (pf->n > P->cap_idx) {
        P->cap_idx = 2 * pf->n;
        P->idx = xrealloc(P->idx, P->cap_idx * sizeof(size_t));
    }
    size_t *idx = P->idx;
    for (size_t i = 0; i < pf->n; i++)
        idx[i] = pf->first + i;
    qsort_r(idx, pf->n, sizeof(size_t), pser_key_cmp_idx, P);
    for (size_t i = 1; i < pf->n; i++) {
        pser_t *a = &P->ser[idx[i - 1]], *b = &P->ser[idx[i]];
        if (a->hash == b->hash && a->keylen == b->keylen &&
            memcmp(P->scratch.p + a->key_off, P->scratch.p + b->key_off, a->keylen) == 0)
            b->dup_in_push = 1;
    }
}

/* Runs the whole check over the candidate families in name order (the ts families only for a new group). */
static void check_push(push_t *P, const fy__group_t *g)
{
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        pf->fam = lookup(P, pf->name);
        pf->old = pf->is_ts ? NULL : group_gfam(g, pf->name);
        fy__fam_t *f = pf->fam;
        pf->ok = 0;
        int ftype = pf->type;
        if (!pf->is_ts) {
            fy_str_t help = pf->has_help ? fy_str(P->scratch.p + pf->help_off, pf->help_len) : fy_str("", 0);
            if (f && f->own) {
                if (!f->own_predefined && !fy_str_eq(help, f->own_help)) {
                    err_begin(P);
                    buf_str(&P->err, "gathered metric family ");
                    buf_add(&P->err, pf->name.ptr, pf->name.len);
                    buf_str(&P->err, " has help ");
                    buf_go_quote(&P->err, help);
                    buf_str(&P->err, " but should have ");
                    buf_go_quote(&P->err, f->own_help);
                    continue;
                }
                if (pf->type != f->own_type) {
                    err_begin(P);
                    buf_str(&P->err, "gathered metric family ");
                    buf_add(&P->err, pf->name.ptr, pf->name.len);
                    buf_str(&P->err, " has type ");
                    buf_str(&P->err, fy__type_upper(pf->type));
                    buf_str(&P->err, " but should have ");
                    buf_str(&P->err, fy__type_upper(f->own_type));
                    continue;
                }
            }
            int others = f && f->refs > (uint32_t)replaced(P, g, pf->name);
            if (others && f->type != pf->type) {
                /* the merged family has the existing type: every pushed series mismatches it */
                for (size_t k = 0; k < pf->n; k++) {
                    err_metric(P, pf, &P->ser[pf->first + k], pf->type);
                    buf_str(&P->err, "is not a ");
                    buf_str(&P->err, fy__type_upper(f->type));
                }
                continue;
            }
            /* only a name not gathered yet is checked for suffix collisions, as in client_golang */
            if (!(f && f->own) && !others && check_suffix(P, g, pf))
                continue;
        }
        pf->ok = 1;
        mark_dups_in_push(P, pf);
        for (size_t k = 0; k < pf->n; k++)
            check_series(P, g, pf, &P->ser[pf->first + k], ftype);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Applying (all locks held, the check passed or only the failure time is recorded). */

static fy__gfam_t *make_gfam(push_t *P, const pfam_t *pf)
{
    size_t npts = 0;
    for (size_t k = 0; k < pf->n; k++)
        npts += P->ser[pf->first + k].src->npoints;
    size_t sz = sizeof(fy__gfam_t) + pf->n * sizeof(fy__rec_t) + npts * sizeof(fy_point_t);
    for (size_t k = 0; k < pf->n; k++)
        sz += P->ser[pf->first + k].src->pb_histogram.len;
    if (sz > UINT32_MAX) { /* recs address their bytes with 32-bit offsets; the parsers' limits keep bodies far below */
        fprintf(stderr, "fy_store: family of %zu bytes\n", sz);
        abort();
    }
    /* The allocator's size class, not whole cache lines: rounding to lines (so that a gfam shares no line with a
     * neighbour that another thread may be rewriting) cost 80 bytes per push-646 group and measured no faster, one
     * thread or two (docs/store.md, "Memory per group"). */
    fy__gfam_t *gf = xmalloc(sz);
    memset(gf, 0, sizeof(*gf));
    gf->type = pf->type;
    gf->stamp_ns = P->now;
    gf->nrecs = (uint32_t)pf->n;
    fy__rec_t *recs = fy__gfam_recs(gf);
    char *c;
    fy_point_t *pts = (fy_point_t *)(recs + pf->n);
    c = (char *)(pts + npts);
    for (size_t k = 0; k < pf->n; k++) {
        const pser_t *ps = &P->ser[pf->first + k];
        fy__rec_t *r = &recs[k];
        r->npoints = ps->src->npoints;
        r->points_off = (uint32_t)((char *)pts - (char *)r);
        if (r->npoints)
            memcpy(pts, ps->src->points, r->npoints * sizeof(fy_point_t));
        pts += r->npoints;
        r->value = ps->src->value;
        r->count = ps->src->count;
        r->slot = NULL;
        r->seq = 0;
        r->pbh_off = (uint32_t)(c - (char *)r);
        r->pbh_len = (uint32_t)ps->src->pb_histogram.len;
        if (ps->src->pb_histogram.len)
            memcpy(c, ps->src->pb_histogram.ptr, ps->src->pb_histogram.len);
        c += ps->src->pb_histogram.len;
    }
    assert((size_t)(c - (char *)gf) == sz);
    return gf;
}

static fy__slot_t *slot_new(push_t *P, const pser_t *ps, const fy__group_t *g)
{
    fy__slot_t *sl = xmalloc(offsetof(fy__slot_t, key) + ps->keylen);
    atomic_init(&sl->cur, NULL);
    sl->owner = g;
    sl->hash = (uint32_t)ps->hash;
    sl->keylen = ps->keylen;
    sl->nlabels = ps->nlabels;
    sl->dead = 0;
    sl->mark = 0;
    memcpy(sl->key, P->scratch.p + ps->key_off, ps->keylen);
    return sl;
}

static void fam_add_pending(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f, fy__slot_t *sl)
{
    GROW(f->pending, f->npending, f->cap_pending);
    f->pending[f->npending++] = sl;
    fy__farr_t *a = atomic_load(&f->published);
    if (f->npending + f->ndead > (a ? a->n : 0) + 1024)
        fy__fam_merge(s, st, f);
}

/* Drops a gfam from its fam: slots not marked as kept die, the member link goes, refs drop. */
static void gfam_detach(fy_store_t *s, fy__gfam_t *old, fy__shard_t *sh)
{
    fy__fam_t *f = old->fam;
    uint64_t killed = 0;
    for (uint32_t k = 0; k < old->nrecs; k++) {
        fy__slot_t *sl = fy__gfam_recs(old)[k].slot;
        if (sl->mark) {
            sl->mark = 0;
        } else {
            slot_kill(f, sl);
            killed++;
        }
    }
    member_unlink(s, f, old);
    f->refs--;
    atomic_fetch_sub(&s->nseries, killed);
    retire(s, &sh->retired, old);
    fam_maybe_drop(s, stripe_of(s, f->hash), f);
}

/* Links a new gfam: reuse the group's slots of the same labels, create the others. */
static void gfam_attach(push_t *P, fy__group_t *g, fy__gfam_t *gf, const pfam_t *pf)
{
    fy_store_t *s = P->s;
    fy__stripe_t *st = stripe_of(s, pf->hash);
    fy__fam_t *f = fy__fam_find(st, pf->hash, pf->name);
    if (f == NULL)
        f = fam_create(st, pf->hash, pf->name);
    f->type = pf->type; /* the check passed: any other holder has this type already */
    f->refs++;
    member_link(s, f, gf, pf->has_help, fy_str(P->scratch.p + pf->help_off, pf->help_len));
    for (size_t k = 0; k < pf->n; k++) {
        const pser_t *ps = &P->ser[pf->first + k];
        fy__slot_t *sl = ps->slot; /* found by check_series (all series of an applied push were checked) */
        assert(sl == set_find(f, ps->hash, P->scratch.p + ps->key_off, ps->keylen));
        if (sl) {
            assert(sl->owner == (const void *)g);
            sl->mark = 1;
        } else {
            sl = slot_new(P, ps, g);
            set_insert(f, sl);
            sl->mark = 1;
            fam_add_pending(s, st, f, sl);
            atomic_fetch_add(&s->nseries, 1);
        }
        fy__gfam_recs(gf)[k].slot = sl;
        atomic_store(&sl->cur, &fy__gfam_recs(gf)[k]);
    }
}

/* Clears the "kept" marks of a freshly attached gfam once its predecessor (if any) is detached. */
static void gfam_clear_marks(fy__gfam_t *gf)
{
    for (uint32_t k = 0; k < gf->nrecs; k++)
        fy__gfam_recs(gf)[k].slot->mark = 0;
}

/* The timestamp families' HELP, counted in their fams as a gfam's would be (a group's timestamps have no gfam). */
static const fy_str_t ts_help[2] = {{fy__help_push, sizeof(fy__help_push) - 1}, {fy__help_fail, sizeof(fy__help_fail) - 1}};

static fy__fam_t *ts_fam(fy_store_t *s, int t, int create)
{
    uint64_t h = fy__hash(ts_names[t].ptr, ts_names[t].len);
    fy__stripe_t *st = stripe_of(s, h);
    fy__fam_t *f = fy__fam_find(st, h, ts_names[t]);
    if (f == NULL && create)
        f = fam_create(st, h, ts_names[t]);
    return f;
}

/* Stores the group's two timestamp values in its embedded records, which the timestamp slots point at. Scrapes read
 * the values concurrently (atomic 8-byte stores and loads); on the group's creation (ts stripes locked) the records
 * are linked to their slots and the families. */
static void ts_update(push_t *P, fy__group_t *g, int created)
{
    for (int t = 0; t < 2; t++) {
        fy__rec_t *r = &g->tsrec[t];
        double v = (double)(t == FY_TS_PUSH ? g->push_ns : g->fail_ns) / 1e9;
        __atomic_store(&r->value, &v, __ATOMIC_RELAXED);
        if (created) {
            fy__fam_t *f = ts_fam(P->s, t, 1);
            f->type = FY_TYPE_GAUGE;
            f->refs++;
            help_ref(P->s, f, 1, ts_help[t], 1);
            atomic_store(&r->slot->cur, r);
        }
    }
}

/* Creates the group's two timestamp slots (the ts families' stripes are locked for a new group). */
static void ts_create(push_t *P, fy__group_t *g)
{
    for (int t = 0; t < 2; t++) {
        pser_t *ps = NULL;
        for (size_t i = 0; i < P->nfams; i++)
            if (P->fams[i].is_ts && fy_str_eq(P->fams[i].name, ts_names[t]))
                ps = &P->ser[P->fams[i].first];
        assert(ps != NULL);
        uint64_t h = fy__hash(ts_names[t].ptr, ts_names[t].len);
        fy__stripe_t *st = stripe_of(P->s, h);
        fy__fam_t *f = fy__fam_find(st, h, ts_names[t]);
        if (f == NULL)
            f = fam_create(st, h, ts_names[t]);
        fy__slot_t *sl = slot_new(P, ps, g);
        set_insert(f, sl);
        fam_add_pending(P->s, st, f, sl);
        g->tsrec[t].slot = sl;
        atomic_fetch_add(&P->s->nseries, 1);
    }
}

/* The sizes the memory per group rests on (see store_int.h and docs/store.md). */
_Static_assert(sizeof(fy__gfam_t) == 32, "gfam header");
_Static_assert(sizeof(fy__group_t) == 248, "group struct");
_Static_assert(offsetof(fy__slot_t, key) == 28, "slot header");

static fy__group_t *group_new(push_t *P)
{
    /* The struct, then the key; the labels are split out of the key when a view needs them (fy__key_labels). That
     * needs values without the separator 0xFF: every push whose grouping value is not valid UTF-8 is rejected on
     * the group's own timestamp series (check_series), which marks the rejection key_caused, and then no group is
     * created (B4 fixed). */
    assert(P->gk.valid_utf8);
    size_t sz = (sizeof(fy__group_t) + P->gk.key.len + 63) & ~(size_t)63;
    if (P->gk.key.len > UINT32_MAX || P->gk.n > UINT32_MAX)
        abort();
    fy__group_t *g = aligned_alloc(64, sz);
    if (g == NULL)
        abort();
    memset(g, 0, sz);
    memcpy(g + 1, P->gk.key.ptr, P->gk.key.len);
    g->keylen = (uint32_t)P->gk.key.len;
    g->nlabels = (uint32_t)P->gk.n;
    g->fams = g->fams_inline;
    g->cap_fams = FY_GROUP_INLINE_FAMS;
    g->hash = P->gk.hash;
    g->key_valid = (uint8_t)P->gk.valid_utf8;
    g->has_instance = (uint8_t)P->gk.has_instance;
    g->heap_idx = FY_HEAP_NONE;
    return g;
}

static void apply_push(push_t *P, fy__group_t *g, fy__shard_t *sh)
{
    fy_store_t *s = P->s;
    /* new family list: kept old ones (POST) merged with pushed ones, by name */
    size_t cap = g->nfams + P->nfams;
    /* the old list and the new one go to scratch arrays first; the group's array is only rewritten at the end */
    if (2 * cap + 1 > P->cap_gone) {
        P->cap_gone = 4 * cap + 8;
        P->gone = xrealloc(P->gone, P->cap_gone * sizeof(*P->gone));
    }
    fy__gfam_t **nf = P->gone, **gone = P->gone + cap;
    size_t nn = 0, ngone = 0, oi = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            continue;
        while (oi < g->nfams && fy_str_cmp(fy__gfam_name(g->fams[oi]), pf->name) < 0) {
            if (P->method == FY_STORE_PUT)
                gone[ngone++] = g->fams[oi++];
            else
                nf[nn++] = g->fams[oi++];
        }
        fy__gfam_t *old = NULL;
        if (oi < g->nfams && fy_str_eq(fy__gfam_name(g->fams[oi]), pf->name))
            old = g->fams[oi++];
        gfam_attach(P, g, pf->ng, pf);
        if (old)
            gfam_detach(s, old, sh);
        gfam_clear_marks(pf->ng);
        nf[nn++] = pf->ng;
        pf->ng = NULL;
    }
    while (oi < g->nfams) {
        if (P->method == FY_STORE_PUT)
            gone[ngone++] = g->fams[oi++];
        else
            nf[nn++] = g->fams[oi++];
    }
    for (size_t i = 0; i < ngone; i++)
        gfam_detach(s, gone[i], sh);
    if (nn > g->cap_fams) {
        if (g->fams != g->fams_inline)
            free(g->fams);
        g->cap_fams = (uint32_t)nn;
        g->fams = xmalloc(nn * sizeof(*g->fams));
    }
    if (nn)
        memcpy(g->fams, nf, nn * sizeof(*nf));
    g->nfams = (uint32_t)nn;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The fast path: a push to an existing group that re-sends exactly the series the group holds (same families with
 * the same type and HELP, same series in the same order; for PUT no family dropped). Such a push cannot fail the
 * check (the stored state passed it, own families never change after start-up, and the only push-dependent inputs,
 * timestamps and protobuf value kinds, are checked here), and it changes nothing in the metric-name index: the
 * slots, their sorted arrays, reference counts and HELP variants stay as they are. So it runs under the group's
 * shard lock alone, without any stripe lock, and pushes to different groups do not serialise on shared names. */

static size_t group_gfam_index(const fy__group_t *g, fy_str_t name)
{
    size_t lo = 0, hi = g->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fy_str_cmp(fy__gfam_name(g->fams[mid]), name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

static int push_fast_ok(push_t *P, const fy__group_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        size_t at = pf->is_ts ? SIZE_MAX : group_gfam_index(g, pf->name);
        if (at == SIZE_MAX)
            return 0;
        const fy__gfam_t *old = g->fams[at];
        if (old->type != pf->type || old->help->has_help != pf->has_help || old->nrecs != pf->n ||
            !fy_str_eq(fy__help_str(old->help), fy_str(P->scratch.p + pf->help_off, pf->help_len)))
            return 0;
        for (size_t k = 0; k < pf->n; k++) {
            const pser_t *ps = &P->ser[pf->first + k];
            if (!slot_key_eq(fy__gfam_recs(old)[k].slot, ps->hash, P->scratch.p + ps->key_off, ps->keylen) ||
                !series_kind_ok(pf->type, ps->src->pb_kinds))
                return 0;
        }
        pf->old = old;
        pf->first_old = at;
        n++;
    }
    return P->method == FY_STORE_POST || n == g->nfams;
}

/* Whether a re-pushed family fits its current gfam's records as they are: the same point counts, and no native
 * histogram bytes on either side (those vary in length and are rare). */
static int same_shape(const push_t *P, const pfam_t *pf, const fy__gfam_t *old)
{
    const fy__rec_t *r = fy__gfam_recs(old);
    for (size_t k = 0; k < pf->n; k++) {
        const fy_series_t *se = P->ser[pf->first + k].src;
        if (r[k].npoints != se->npoints || r[k].pbh_len != 0 || se->pb_histogram.len != 0)
            return 0;
    }
    return 1;
}

/* The seqlock value a push writes into the records it rewrites: odd while writing (q + 1), then q + 2, with q taken
 * from the group's version, which every push to the group raises, rather than read from the record. Each rewrite
 * thus still moves a record's seq to a value it never had (records start at 0, and a group's records are written
 * only by pushes to it, under its shard lock), and the write needs no load of the record's line: at 1M series that
 * line is a cache miss, and a load would wait for it where stores do not. */
static uint32_t rec_seq_base(const fy__group_t *g)
{
    return (uint32_t)(2 * (g->version + 1));
}

/* Writes a series' new values into its record, whose points (if any) start at pts (see fy__rec_read for the
 * readers' side). */
static void rec_rewrite(fy__rec_t *r, fy_point_t *pts, const fy_series_t *se, uint32_t q)
{
    __atomic_store_n(&r->seq, q + 1, __ATOMIC_RELAXED);
    /* release stores keep the odd seq before them (a reader that sees any of them sees seq changed); no fence, which
     * ThreadSanitizer does not support; on x86 they are plain stores */
    double v = se->value;
    __atomic_store(&r->value, &v, __ATOMIC_RELEASE);
    __atomic_store_n(&r->count, se->count, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < se->npoints; i++) {
        fy_point_t p = se->points[i];
        __atomic_store(&pts[i].key, &p.key, __ATOMIC_RELEASE);
        __atomic_store(&pts[i].value, &p.value, __ATOMIC_RELEASE);
        __atomic_store_n(&pts[i].count, p.count, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&r->seq, q + 2, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The blind path: a push whose shape is the group's (XXH3-128 of everything the fast path compares: family names,
 * types, HELP texts, the series' sanitised label sets in order, point counts; only for pushes with no native
 * histogram bytes and no protobuf value kind that needs the check) writes its values into the group's records
 * without reading them: families and records correspond by position (both sorted by name, records in push order,
 * points after the records in the same order, as make_gfam lays them out), so a re-push at 1M series waits for
 * the bucket and the group only, and its stores to the records do not wait for their lines. A different shape
 * with the same 128-bit hash is the only way this goes wrong (odds of 2^-128 per push of a changed shape). */

static char *shape_put(char *o, const void *p, size_t n)
{
    memcpy(o, p, n);
    return o + n;
}

/* Sets P->shape from the prepared push (families sorted, series sanitised into scratch), or clears shape_ok. The
 * descriptor has every length and offset, so that the hashed bytes (scratch: HELP texts and label sets) split
 * into the same pieces only for the same shape. */
static void push_shape(push_t *P)
{
    P->shape_ok = 0;
    /* the head, per family 7 fields and the name, per series 4 fields, the scratch's hash (as written below) */
    size_t need = 2 * sizeof(uint32_t) + P->nser * 4 * sizeof(uint32_t) + sizeof(XXH128_hash_t);
    for (size_t i = 0; i < P->nfams; i++)
        need += 7 * sizeof(uint32_t) + P->fams[i].name.len;
    fy__buf_t *d = &P->tmp; /* free again after prepare_series */
    d->n = 0;
    fy__buf_reserve(d, need);
    char *o = d->p;
    uint32_t head[2] = {(uint32_t)P->nfams, (uint32_t)P->nser};
    o = shape_put(o, head, sizeof(head));
    for (size_t i = 0; i < P->nfams; i++) {
        const pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            return;
        uint32_t f[7] = {(uint32_t)pf->name.len, pf->type,           pf->has_help,        (uint32_t)pf->help_off,
                         (uint32_t)pf->help_len, (uint32_t)pf->first, (uint32_t)pf->n};
        o = shape_put(o, f, sizeof(f));
        o = shape_put(o, pf->name.ptr, pf->name.len);
        for (size_t k = 0; k < pf->n; k++) {
            const fy_series_t *se = P->ser[pf->first + k].src;
            if (se->pb_histogram.len != 0 || !series_kind_ok(pf->type, se->pb_kinds))
                return;
        }
    }
    for (size_t k = 0; k < P->nser; k++) {
        const pser_t *ps = &P->ser[k];
        uint32_t f[4] = {(uint32_t)ps->key_off, ps->keylen, ps->nlabels, ps->src->npoints};
        o = shape_put(o, f, sizeof(f));
    }
    XXH128_hash_t h = XXH3_128bits(P->scratch.p, P->scratch.n);
    o = shape_put(o, &h, sizeof(h));
    assert((size_t)(o - d->p) == need);
    h = XXH3_128bits(d->p, (size_t)(o - d->p));
    P->shape[0] = h.low64;
    P->shape[1] = h.high64;
    P->shape_ok = P->shape[0] != 0 || P->shape[1] != 0;
}

static int push_blind_ok(const push_t *P, const fy__group_t *g)
{
    return P->shape_ok && g->nfams == P->nfams && g->shape[0] == P->shape[0] && g->shape[1] == P->shape[1];
}

static void push_blind(push_t *P, fy__group_t *g)
{
    uint32_t q = rec_seq_base(g);
    for (size_t i = 0; i < P->nfams; i++) {
        const pfam_t *pf = &P->fams[i];
        fy__gfam_t *gf = g->fams[i];
        fy__rec_t *r = fy__gfam_recs(gf);
        fy_point_t *pts = (fy_point_t *)(r + pf->n);
        for (size_t k = 0; k < pf->n; k++) {
            const fy_series_t *se = P->ser[pf->first + k].src;
            rec_rewrite(&r[k], pts, se, q);
            pts += se->npoints;
        }
        gf->stamp_ns = P->now; /* read under the shard lock only (JSON, snapshots) */
    }
}

static void push_fast(push_t *P, fy__group_t *g, fy__shard_t *sh)
{
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        fy__gfam_t *old = (fy__gfam_t *)(uintptr_t)pf->old;
        if (same_shape(P, pf, old)) {
            /* the common re-push: no allocation, and the slots keep pointing at the same records */
            fy__rec_t *r = fy__gfam_recs(old);
            uint32_t q = rec_seq_base(g);
            for (size_t k = 0; k < pf->n; k++)
                rec_rewrite(&r[k], (fy_point_t *)(uintptr_t)fy__rec_points(&r[k]), P->ser[pf->first + k].src, q);
            old->stamp_ns = P->now; /* read under the shard lock only (JSON, snapshots) */
            continue;
        }
        fy__gfam_t *ng = make_gfam(P, pf);
        ng->fam = old->fam;
        ng->help = old->help; /* the same variant: the check above compared the texts */
        for (uint32_t k = 0; k < ng->nrecs; k++) {
            fy__slot_t *sl = fy__gfam_recs(old)[k].slot;
            fy__gfam_recs(ng)[k].slot = sl;
            atomic_store_explicit(&sl->cur, &fy__gfam_recs(ng)[k], memory_order_release);
        }
        /* text scrapes that choose among HELP variants read the list under a stripe lock only (fy__group_gfam) */
        __atomic_store_n(&g->fams[pf->first_old], ng, __ATOMIC_RELEASE);
        retire_shard(P->s, sh, old);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Push entry point. */

static void lockset_add_name(push_t *P, fy_str_t n)
{
    GROW(P->stripes, P->nstripes, P->cap_stripes);
    P->stripes[P->nstripes++] = (uint32_t)(fy__hash(n.ptr, n.len) & (P->s->cfg.nstripes - 1));
}

static void lockset_build(push_t *P, const fy__group_t *g)
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
    lockset_add_name(P, ts_names[0]);
    lockset_add_name(P, ts_names[1]);
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

static void lockset_lock(push_t *P)
{
    for (size_t i = 0; i < P->nstripes; i++)
        pthread_mutex_lock(&P->s->stripes[P->stripes[i]].lock);
}

static void lockset_unlock(push_t *P)
{
    for (size_t i = P->nstripes; i-- > 0;) {
        fy__stripe_t *st = &P->s->stripes[P->stripes[i]];
        reclaim_maybe(P->s, &st->retired);
        pthread_mutex_unlock(&st->lock);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Expiry and liveness. A group's deadline is its last successful push time (its failure time while it never had
 * one) plus the TTL in effect, so that every replica and every replay of the same pushes derives the same deadline.
 * Each shard keeps its groups with a deadline in a min-heap (heap_idx tracks the position, so that a re-push or a
 * delete fixes the heap in O(log n)) and every group with a TTL or interval in effect in a list that scrapes walk for
 * the liveness families; both are locked by the shard, so expiry needs no lock of its own. */

static int64_t life_eff(int64_t declared, int64_t def)
{
    return declared > 0 ? declared : declared == 0 && def > 0 ? def : 0;
}

/* The group's fy__life_t, allocated on first use (zeroed: nothing declared, not in the life list). */
static fy__life_t *group_life(fy__group_t *g)
{
    if (g->lf == NULL)
        g->lf = xcalloc(1, sizeof(*g->lf));
    return g->lf;
}

static int64_t group_deadline(const fy_store_t *s, const fy__group_t *g)
{
    int64_t ttl = life_eff(g->lf ? g->lf->life.ttl_ns : 0, s->cfg.default_ttl_ns);
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
static void life_unlink(fy__shard_t *sh, fy__group_t *g)
{
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
static void life_update(fy_store_t *s, fy__shard_t *sh, fy__group_t *g)
{
    if (!g->life_any && !s->life_defaults)
        return; /* nothing declared, no defaults: no fy__life_t, and deadline_ns stays 0 */
    group_life(g);
    int64_t d = group_deadline(s, g);
    int live = d != 0 || life_eff(g->lf->life.interval_ns, s->cfg.default_interval_ns) != 0;
    if (d != g->deadline_ns || (d != 0) != (g->heap_idx != FY_HEAP_NONE)) {
        g->deadline_ns = d;
        if (g->heap_idx != FY_HEAP_NONE && d == 0) {
            heap_remove(sh, g);
        } else if (g->heap_idx != FY_HEAP_NONE) {
            heap_up(sh, g->heap_idx);
            heap_down(sh, g->heap_idx);
        } else if (d != 0) {
            GROW(sh->heap, sh->nheap, sh->cap_heap);
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
        life_unlink(sh, g); /* not in the heap either: d is 0 */
    }
}

/* Takes a declaration into the group: 0 keeps what it has. */
static void life_declare(fy__group_t *g, const fy_store_life_t *life)
{
    if (life == NULL || (life->ttl_ns == 0 && life->interval_ns == 0))
        return;
    g->life_any = 1;
    group_life(g);
    if (life->ttl_ns != 0)
        g->lf->life.ttl_ns = life->ttl_ns;
    if (life->interval_ns != 0)
        g->lf->life.interval_ns = life->interval_ns;
}

/* The partial view handed to expiry, liveness and bulk-delete callbacks: no families. */
static void life_view(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v)
{
    memset(v, 0, sizeof(*v));
    fy__group_view_head(s, g, vl, v);
}

/* A byte loop rather than memchr: names and values are a few bytes, shorter than a call costs. */
void fy__key_labels(fy_str_t key, uint32_t n, fy_store_label_t *out)
{
    const unsigned char *p = (const unsigned char *)key.ptr, *end = p + key.len, *e;
    for (uint32_t i = 0; i < n; i++) {
        for (e = p; e < end && *e != 0xff; e++)
            ;
        assert(e < end);
        out[i].name = fy_str((const char *)p, (size_t)(e - p));
        p = ++e;
        if (i + 1 < n)
            for (; e < end && *e != 0xff; e++)
                ;
        else
            e = end;
        assert(e < end || i + 1 == n);
        out[i].value = fy_str((const char *)p, (size_t)(e - p));
        p = e + (i + 1 < n);
    }
    assert(n == 0 ? key.len == 0 : p == end);
}

void fy__group_view_head(const fy_store_t *s, const fy__group_t *g, fy__view_labels_t *vl, fy_store_group_view_t *v)
{
    fy_store_label_t *l = vl->inl;
    if (g->nlabels > FY_VIEW_LABELS_INLINE) {
        if (g->nlabels > vl->cap_heap) {
            free(vl->heap);
            vl->cap_heap = 2 * g->nlabels;
            vl->heap = xmalloc(vl->cap_heap * sizeof(*vl->heap));
        }
        l = vl->heap;
    }
    v->key = fy__group_key(g);
    fy__key_labels(v->key, g->nlabels, l);
    v->labels = l;
    v->nlabels = g->nlabels;
    v->push_ns = g->push_ns;
    v->push_stamp_ns = g->push_stamp_ns;
    v->fail_ns = g->fail_ns;
    v->fail_stamp_ns = g->fail_stamp_ns;
    v->origin = g->origin;
    v->version = g->version;
    if (g->lf)
        v->life = g->lf->life;
    else
        memset(&v->life, 0, sizeof(v->life));
    v->ttl_ns = life_eff(v->life.ttl_ns, s->cfg.default_ttl_ns);
    v->interval_ns = life_eff(v->life.interval_ns, s->cfg.default_interval_ns);
    v->deadline_ns = g->deadline_ns;
}

/* Removes group g (found under sh's lock, which the caller holds) from the store. P is a push_t used only for its
 * lock set, which is empty before and after. */
static void group_remove(push_t *P, fy__shard_t *sh, fy__group_t *g)
{
    fy_store_t *s = P->s;
    size_t keep = P->nfams;
    P->nfams = 0; /* the lock set of a deletion is the group's families and the timestamp families */
    P->nstripes = 0;
    lockset_build(P, g);
    P->nfams = keep;
    lockset_lock(P);
    for (uint32_t i = 0; i < g->nfams; i++)
        gfam_detach(s, g->fams[i], sh);
    for (int t = 0; t < 2; t++) {
        fy__fam_t *f = ts_fam(s, t, 0);
        slot_kill(f, g->tsrec[t].slot);
        help_ref(s, f, 1, ts_help[t], -1);
        f->refs--;
        fam_maybe_drop(s, stripe_of(s, f->hash), f);
    }
    atomic_fetch_sub(&s->nseries, 2);
    lockset_unlock(P);
    P->nstripes = 0;
    life_unlink(sh, g);
    free(g->lf); /* read under the shard lock only */
    g->lf = NULL;
    group_unlink(sh, g);
    atomic_fetch_sub(&s->ngroups, 1);
    if (g->fams != g->fams_inline)
        free(g->fams);
    retire(s, &sh->retired, g); /* scrapes may still read its timestamp records */
}

/* fy__utf8_valid with eight ASCII bytes at a time first: every push's HELP texts go through it, and they are nearly
 * always ASCII (a byte loop cost 40-80 ns per push of bench_store's 646-byte body). */
static int help_utf8_valid(fy_str_t h)
{
    const char *p = h.ptr, *end = h.ptr + h.len;
    for (uint64_t w; end - p >= 8; p += 8) {
        memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    return fy__utf8_valid(p, (size_t)(end - p));
}

/* Validation that needs no index: timestamps first (and only them), then names, types and HELP texts (our fixes
 * B2/B5/B6/B7, and UTF-8 in HELP). */
static int precheck(push_t *P)
{
    const fy_body_t *b = P->body;
    for (uint32_t i = 0; i < b->nfamilies; i++)
        for (uint32_t k = 0; k < b->families[i].nseries; k++)
            if (b->families[i].series[k].has_timestamp) {
                err_begin(P);
                buf_str(&P->err, "pushed metrics must not have timestamps");
                return 1;
            }
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        if (!metric_name_valid(f->name)) {
            err_begin(P);
            buf_str(&P->err, "invalid metric name ");
            buf_go_quote(&P->err, f->name);
        } else if (fy_str_eq_mem(f->name, FY_STRLIT("labels")) || fy_str_eq_mem(f->name, FY_STRLIT("last_push_successful"))) {
            /* fixes B7: in /api/v1/metrics such a family would overwrite the group's key of that name */
            err_begin(P);
            buf_str(&P->err, "metric family name ");
            buf_go_quote(&P->err, f->name);
            buf_str(&P->err, " is reserved: it would replace the group's key of that name in /api/v1/metrics");
        } else if (f->type > FY_TYPE_MAX) {
            char t[64];
            err_begin(P);
            buf_str(&P->err, "metric family ");
            buf_go_quote(&P->err, f->name);
            snprintf(t, sizeof(t), " has unknown type %u", (unsigned)f->type);
            buf_str(&P->err, t);
        } else if (f->has_help && !help_utf8_valid(f->help)) {
            /* Prometheus (2.42) fails the whole scrape of the gateway on it ("help text is not a valid utf8 string"),
             * so one push would hide every group; the reference stores it (docs/compatibility.md). Escapes are ASCII:
             * the escaped text is valid exactly when the unescaped one is. */
            err_begin(P);
            buf_str(&P->err, "metric family ");
            buf_go_quote(&P->err, f->name);
            buf_str(&P->err, " has a HELP text that is not valid UTF-8: ");
            buf_go_quote(&P->err, f->help);
        }
    }
    return P->nerr != 0;
}

/* The push's families (HELP unescaped, series listed, sorted by name); prepare_series sanitises the series. Split so
 * that the push can do the series' work while the group's families load (see fy_store_push). */
static void prepare_fams(push_t *P, int new_group)
{
    const fy_body_t *b = P->body;
    for (uint32_t i = 0; i < b->nfamilies + (new_group ? 2u : 0u); i++) {
        GROW(P->fams, P->nfams, P->cap_fams);
        pfam_t *pf = &P->fams[P->nfams];
        memset(pf, 0, sizeof(*pf));
        pf->first = P->nser;
        if (i < b->nfamilies) {
            const fy_family_t *f = &b->families[i];
            if (is_ts_name(f->name))
                continue; /* the gateway owns these (documented in docs/store.md) */
            pf->name = f->name;
            pf->type = f->type;
            pf->has_help = f->has_help;
            pf->help_off = P->scratch.n;
            if (f->has_help) {
                buf_reserve(&P->scratch, f->help.len);
                pf->help_len = fy_unescape(f->help, (fy_esc_t)f->help_esc, P->scratch.p + P->scratch.n);
                P->scratch.n += pf->help_len;
            }
            pf->n = f->nseries;
            for (uint32_t k = 0; k < f->nseries; k++) {
                GROW(P->ser, P->nser, P->cap_ser);
                pser_t *ps = &P->ser[P->nser++];
                memset(ps, 0, sizeof(*ps));
                ps->src = &f->series[k];
            }
        } else {
            /* no labels, value 0: only the grouping labels (and instance) end up on it */
            static const fy_series_t ts_series = {.pb_kinds = 0};
            pf->name = ts_names[i - b->nfamilies];
            pf->type = FY_TYPE_GAUGE;
            pf->is_ts = 1;
            pf->n = 1;
            GROW(P->ser, P->nser, P->cap_ser);
            pser_t *ps = &P->ser[P->nser++];
            memset(ps, 0, sizeof(*ps));
            ps->src = &ts_series;
        }
        P->nfams++;
    }
    if (P->nfams > 16) {
        qsort(P->fams, P->nfams, sizeof(pfam_t), pfam_cmp);
    } else {
        for (size_t i = 1; i < P->nfams; i++) {
            pfam_t t = P->fams[i];
            size_t j = i;
            for (; j > 0 && pfam_cmp(&P->fams[j - 1], &t) > 0; j--)
                P->fams[j] = P->fams[j - 1];
            P->fams[j] = t;
        }
    }
    /* several families of one name (not produced by our parsers): the last one wins, as in protobuf */
    size_t w = 0;
    for (size_t i = 0; i < P->nfams; i++) {
        if (w && fy_str_eq(P->fams[w - 1].name, P->fams[i].name))
            w--;
        P->fams[w++] = P->fams[i];
    }
    P->nfams = w;
}

static void prepare_series(push_t *P)
{
    for (size_t i = 0; i < P->nser; i++)
        prep_series(P, &P->ser[i]);
}

/* The hashes of the families' names and the series' label sets, for the index (not needed by the blind path). */
static void prepare_hashes(push_t *P)
{
    for (size_t i = 0; i < P->nfams; i++)
        P->fams[i].hash = fy__hash(P->fams[i].name.ptr, P->fams[i].name.len);
    for (size_t i = 0; i < P->nser; i++)
        P->ser[i].hash = fy__hash(P->scratch.p + P->ser[i].key_off, P->ser[i].keylen);
}

static void prepare(push_t *P, int new_group)
{
    P->shape_ok = 0;
    P->nfams = P->nser = 0;
    P->scratch.n = 0;
    prepare_fams(P, new_group);
    prepare_series(P);
    prepare_hashes(P);
}

static void prepare_gfams(push_t *P)
{
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        if (pf->is_ts)
            continue;
        pf->ng = make_gfam(P, pf);
    }
}

static void set_err(push_t *P, fy_store_err_t *err, int code)
{
    if (err == NULL)
        return;
    err->code = code;
    if (code == FY_SERR_INVALID) {
        buf_t m = {0};
        if (P->nerr == 1) {
            buf_add(&m, P->err.p + 3, P->err.n - 3);
        } else {
            char h[48];
            snprintf(h, sizeof(h), "%zu error(s) occurred:", P->nerr);
            buf_str(&m, h);
            buf_add(&m, P->err.p, P->err.n);
        }
        buf_add(&m, "", 1);
        err->msg = m.p;
        err->msg_len = m.n - 1;
    } else {
        const char *t = fy_store_strerror(code);
        err->msg_len = strlen(t);
        err->msg = xmalloc(err->msg_len + 1);
        memcpy(err->msg, t, err->msg_len + 1);
    }
}

/* After a successful push: the group's shape is the push's if the group now holds exactly the pushed families (a
 * PUT, or a POST of all of them), else none, so that only a push that would leave the same families can take the
 * blind path. */
static void group_set_shape(const push_t *P, fy__group_t *g)
{
    int same = P->shape_ok && g->nfams == P->nfams;
    g->shape[0] = same ? P->shape[0] : 0;
    g->shape[1] = same ? P->shape[1] : 0;
}

/* The end of a push that took the blind or the fast path (the group's families are written; shard lock held). */
static void push_done(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, uint32_t origin)
{
    g->origin = origin;
    g->version++;
    g->push_ns = g->push_stamp_ns = P->now;
    ts_update(P, g, 0);
    life_declare(g, life);
    life_update(P->s, sh, g);
    group_set_shape(P, g);
}

int fy_store_push(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                  int64_t now_ns, uint32_t origin, fy_store_err_t *err)
{
    return fy_store_push_life(s, gkl, ngk, method, body, NULL, now_ns, origin, err);
}

int fy_store_push_life(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy_store_method_t method,
                       const fy_body_t *body, const fy_store_life_t *life, int64_t now_ns, uint32_t origin,
                       fy_store_err_t *err)
{
    static const fy_body_t empty;
    push_t P;
    memset(&P, 0, sizeof(P));
    if (err)
        memset(err, 0, sizeof(*err));
    P.s = s;
    P.method = method;
    P.body = body ? body : &empty;
    P.now = now_ns;
    scratch_take(&P);
    int rc = gkey_parse(&P.gk, &P.gkmem, gkl, ngk);
    if (rc != FY_OK) {
        set_err(&P, err, rc);
        scratch_give(&P);
        return rc;
    }
    /* With many groups, everything the push reads of the store is a cache miss, and each object's address is in the
     * previous one: bucket -> group (with its family list and key) -> the families (name, HELP, recs; only written on
     * the blind path) -> the slots (not on the blind path). Each stage is prefetched as soon as its address is known, and the push's own preparation is spread between
     * the stages so that the loads overlap with work instead of stalling one after another. */
    fy__shard_t *sh = &s->shards[P.gk.hash & (s->cfg.nshards - 1)];
    {
        /* the bucket, before the lock: a resize may change the table meanwhile, and then this only loads a line in
         * vain (a prefetch never faults; the address is computed as an integer) */
        uintptr_t b = (uintptr_t)__atomic_load_n(&sh->buckets, __ATOMIC_RELAXED);
        size_t nb = __atomic_load_n(&sh->nbuckets, __ATOMIC_RELAXED);
        __builtin_prefetch((const void *)(b + FY_BUCKET(P.gk.hash, nb) * sizeof(uint64_t)));
    }
    int rejected = precheck(&P);
    if (!rejected)
        prepare_fams(&P, 0); /* as for an existing group (the common case); redone below for a new one */
    pthread_mutex_lock(&sh->lock);
    /* the group the lookup will read: the first entry with the key's tag (rarely another group) */
    size_t at = FY_BUCKET(P.gk.hash, sh->nbuckets);
    const fy__group_t *g0 = gt_next_tagged(sh, P.gk.hash, &at);
    if (g0)
        for (size_t off = 0; off < sizeof(fy__group_t) + P.gk.key.len; off += 64)
            __builtin_prefetch((const char *)g0 + off);
    if (!rejected) {
        prepare_series(&P);
        /* By now the group has (mostly) arrived: start fetching its families' first lines for writing, so that they
         * come in while the shape is hashed (the blind path stores into them, the fast path reads and rewrites them).
         * g0 is only a candidate until the lookup; reading a wrong group's list under this lock is harmless. */
        if (g0)
            for (uint32_t i = 0; i < g0->nfams; i++)
                for (int l = 0; l < 4; l++)
                    __builtin_prefetch((const char *)g0->fams[i] + 64 * l, 1);
        push_shape(&P);
    }
    fy__group_t *g = fy__group_find(sh, P.gk.hash, P.gk.key);
    if (g && (g->life_any || s->life_defaults) && g->deadline_ns != 0 && g->deadline_ns <= now_ns) {
        /* expired, whether or not the timer got to it yet: the push starts a new group */
        group_remove(&P, sh, g);
        atomic_fetch_add(&s->expired, 1);
        g = NULL;
    }
    int new_group = g == NULL;
    if (!rejected && !new_group && push_blind_ok(&P, g)) {
        push_blind(&P, g);
        push_done(&P, sh, g, life, origin);
        sh->nblind++;
        goto Unlock;
    }
    if (!new_group)
        prepare_hashes(&P); /* (a new group redoes the preparation below) */
    if (!rejected) {
        if (new_group)
            prepare(&P, 1); /* with the timestamp families: no shape (a new group gets its shape on its next push) */
        if (g)
            for (uint32_t i = 0; i < g->nfams; i++) {
                const fy__rec_t *r = fy__gfam_recs(g->fams[i]);
                for (uint32_t k = 0; k < g->fams[i]->nrecs && k < 8; k++)
                    __builtin_prefetch(r[k].slot);
            }
    } else if (new_group) {
        prepare(&P, 1); /* only to check the new group's own timestamp series (B3/B4) */
        for (size_t i = 0; i < P.nfams; i++)
            P.fams[i].ok = 0;
    }
    if (!rejected && !new_group && push_fast_ok(&P, g)) {
        push_fast(&P, g, sh);
        push_done(&P, sh, g, life, origin);
        goto Unlock;
    }
    if (!rejected)
        prepare_gfams(&P);
    if (new_group && s->cfg.max_groups && atomic_load(&s->ngroups) >= s->cfg.max_groups) {
        rc = FY_SERR_LIMIT_GROUPS;
        goto Unlock;
    }
    lockset_build(&P, g);
    lockset_lock(&P);
    if (!rejected) {
        check_push(&P, g);
        rejected = P.nerr != 0;
    } else if (new_group) {
        /* the rejection stands; still find out whether the key itself is bad (then no failure group) */
        size_t keep = P.nerr;
        for (size_t i = 0; i < P.nfams; i++)
            if (P.fams[i].is_ts) {
                P.fams[i].fam = lookup(&P, P.fams[i].name);
                check_series(&P, g, &P.fams[i], &P.ser[P.fams[i].first], FY_TYPE_GAUGE);
            }
        if (P.key_caused) {
            /* report the key's errors, as the reference would for the timestamp series */
            (void)keep;
        } else {
            P.err.n = 0;
            P.nerr = 0;
            precheck(&P);
        }
    }
    if (!rejected && s->cfg.max_series) {
        uint64_t add = 0, drop = 0;
        for (size_t i = 0; i < P.nfams; i++)
            add += P.fams[i].n;
        for (uint32_t i = 0; g && i < g->nfams; i++)
            if (replaced(&P, g, fy__gfam_name(g->fams[i])))
                drop += g->fams[i]->nrecs;
        if (atomic_load(&s->nseries) + add > s->cfg.max_series + drop) {
            rc = FY_SERR_LIMIT_SERIES;
            goto UnlockAll;
        }
    }
    if (rejected && P.key_caused) {
        rc = FY_SERR_INVALID;
        goto UnlockAll;
    }
    if (new_group) {
        g = group_new(&P);
        group_insert(sh, g);
        atomic_fetch_add(&s->ngroups, 1);
        ts_create(&P, g);
        g->push_stamp_ns = g->fail_stamp_ns = now_ns;
    }
    g->origin = origin;
    g->version++;
    if (rejected) {
        g->fail_ns = g->fail_stamp_ns = now_ns;
        rc = FY_SERR_INVALID;
        if (err) {
            err->failure_recorded = 1;
            err->group_created = new_group;
        }
    } else {
        apply_push(&P, g, sh);
        g->push_ns = g->push_stamp_ns = now_ns;
        life_declare(g, life);
        group_set_shape(&P, g);
    }
    ts_update(&P, g, new_group);
    life_update(s, sh, g);
UnlockAll:
    lockset_unlock(&P);
Unlock:
    reclaim_maybe(s, &sh->retired);
    pthread_mutex_unlock(&sh->lock);
    if (rc != FY_OK)
        set_err(&P, err, rc);
    for (size_t i = 0; i < P.nfams; i++)
        free(P.fams[i].ng);
    scratch_give(&P);
    return rc;
}

/* The start of a keyed change other than a push (delete, restore): P set up, the grouping key parsed, its shard locked
 * and its group looked up (*g NULL: none). Returns the locked shard, or NULL with *rc set and nothing held. The caller
 * ends with keyed_end. */
static fy__shard_t *keyed_begin(push_t *P, fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy__group_t **g,
                                int *rc)
{
    memset(P, 0, sizeof(*P));
    P->s = s;
    P->method = FY_STORE_PUT;
    scratch_take(P);
    if ((*rc = gkey_parse(&P->gk, &P->gkmem, gkl, ngk)) != FY_OK) {
        scratch_give(P);
        return NULL;
    }
    fy__shard_t *sh = &s->shards[P->gk.hash & (s->cfg.nshards - 1)];
    pthread_mutex_lock(&sh->lock);
    *g = fy__group_find(sh, P->gk.hash, P->gk.key);
    return sh;
}

static void keyed_end(push_t *P, fy__shard_t *sh)
{
    pthread_mutex_unlock(&sh->lock);
    scratch_give(P);
}

int fy_store_delete(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, int64_t now_ns)
{
    (void)now_ns;
    push_t P;
    fy__group_t *g;
    int rc;
    fy__shard_t *sh = keyed_begin(&P, s, gkl, ngk, &g, &rc);
    if (sh == NULL)
        return rc;
    if (g)
        group_remove(&P, sh, g);
    reclaim_maybe(s, &sh->retired);
    keyed_end(&P, sh);
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Restoring persisted groups. */

int fy_store_restore_times(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, const fy_store_times_t *t,
                           const fy_str_t *fam_names, const int64_t *fam_stamps, size_t nfams)
{
    push_t P;
    fy__group_t *g;
    int rc;
    fy__shard_t *sh = keyed_begin(&P, s, gkl, ngk, &g, &rc);
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
            group_life(g)->life = t->life;
        life_update(s, sh, g);
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
    keyed_end(&P, sh);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Expiry, liveness and bulk deletes (see the section above group_remove). */

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
        pthread_mutex_lock(&sh->lock);
        if (!taken && sh->nheap > 0 && sh->heap[0]->deadline_ns <= now_ns) {
            scratch_take(&P);
            taken = 1;
        }
        while (sh->nheap > 0 && sh->heap[0]->deadline_ns <= now_ns) {
            fy__group_t *g = sh->heap[0];
            if (cb) {
                fy_store_group_view_t v;
                life_view(s, g, &vl, &v);
                cb(ctx, &v);
            }
            group_remove(&P, sh, g);
            n++;
        }
        reclaim_maybe(s, &sh->retired);
        pthread_mutex_unlock(&sh->lock);
    }
    if (taken)
        scratch_give(&P);
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
        pthread_mutex_lock(&sh->lock);
        for (fy__group_t *g = sh->life_head; g && rc == 0; g = g->lf->next) {
            fy_store_group_view_t v;
            life_view(s, g, &vl, &v);
            rc = cb(ctx, &v);
        }
        pthread_mutex_unlock(&sh->lock);
    }
    fy__view_labels_free(&vl);
    return rc;
}

/* The lines of a group that removing it reads: the lookup fields, the family list and the timestamp slots. */
static void group_prefetch_fams(const fy__group_t *g)
{
    __builtin_prefetch(g);
    __builtin_prefetch((const char *)g + offsetof(fy__group_t, tsrec[1].slot));
    __builtin_prefetch((const char *)g + offsetof(fy__group_t, fams_inline) + sizeof(g->fams_inline) - 1);
}

/* The header and first records of each of a group's gfams (the group's family list must be in the cache). */
static void gfams_prefetch(const fy__group_t *g)
{
    for (uint32_t k = 0; k < g->nfams; k++) {
        __builtin_prefetch(g->fams[k]);
        __builtin_prefetch((const char *)g->fams[k] + 64);
    }
}

/* The groups of one shard that a bulk delete selected (already unlinked from the shard's table, heap and life list,
 * under the shard lock, which the caller holds) leave the metric-name index under one lock set: the stripes of all
 * their families and the two timestamp families, taken once instead of once per group. The work per group is the
 * same as group_remove's, but one group's objects do not depend on another's: the loops prefetch the gfams, then the
 * slots, then the series-set entries of the groups a few places ahead, so that the misses (every object is one at
 * 100 000 groups) overlap instead of following each other. */
static void bulk_remove(push_t *P, fy__shard_t *sh, fy__group_t **v, size_t n, uint64_t *seen)
{
    enum { AHEAD_GROUP = 32, AHEAD_GFAM = 20, AHEAD_SLOT = 10, AHEAD_SET = 4 };
    fy_store_t *s = P->s;
    uint32_t mask = s->cfg.nstripes - 1;
    P->nstripes = 0;
    for (size_t i = 0; i < n + 2; i++) {
        const fy__group_t *g = i < n ? v[i] : NULL;
        if (i + AHEAD_GROUP < n)
            group_prefetch_fams(v[i + AHEAD_GROUP]);
        if (i + AHEAD_GFAM < n)
            gfams_prefetch(v[i + AHEAD_GFAM]);
        for (uint32_t k = 0; g && k < g->nfams; k++) {
            uint32_t x = (uint32_t)(g->fams[k]->fam->hash & mask);
            if (!(seen[x / 64] & (1ull << (x % 64)))) {
                seen[x / 64] |= 1ull << (x % 64);
                GROW(P->stripes, P->nstripes, P->cap_stripes);
                P->stripes[P->nstripes++] = x;
            }
        }
        if (i >= n) { /* the timestamp families, once */
            uint32_t x = (uint32_t)(fy__hash(ts_names[i - n].ptr, ts_names[i - n].len) & mask);
            if (!(seen[x / 64] & (1ull << (x % 64)))) {
                seen[x / 64] |= 1ull << (x % 64);
                GROW(P->stripes, P->nstripes, P->cap_stripes);
                P->stripes[P->nstripes++] = x;
            }
        }
    }
    for (size_t i = 0; i < P->nstripes; i++)
        seen[P->stripes[i] / 64] = 0;
    for (size_t i = 1; i < P->nstripes; i++) { /* insertion sort: usually a handful */
        uint32_t t = P->stripes[i];
        size_t j = i;
        for (; j > 0 && P->stripes[j - 1] > t; j--)
            P->stripes[j] = P->stripes[j - 1];
        P->stripes[j] = t;
    }
    lockset_lock(P);
    fy__fam_t *tsf[2] = {ts_fam(s, 0, 0), ts_fam(s, 1, 0)};
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD_GROUP < n)
            group_prefetch_fams(v[i + AHEAD_GROUP]);
        if (i + AHEAD_GFAM < n)
            gfams_prefetch(v[i + AHEAD_GFAM]);
        if (i + AHEAD_SLOT < n) {
            const fy__group_t *g = v[i + AHEAD_SLOT];
            for (uint32_t k = 0; k < g->nfams; k++) {
                const fy__rec_t *r = fy__gfam_recs(g->fams[k]);
                for (uint32_t j = 0; j < g->fams[k]->nrecs && j < 8; j++)
                    __builtin_prefetch(r[j].slot);
            }
            __builtin_prefetch(g->tsrec[0].slot);
            __builtin_prefetch(g->tsrec[1].slot);
        }
        if (i + AHEAD_SET < n) {
            const fy__group_t *g = v[i + AHEAD_SET];
            for (uint32_t k = 0; k < g->nfams; k++) {
                const fy__fam_t *f = g->fams[k]->fam;
                const fy__rec_t *r = fy__gfam_recs(g->fams[k]);
                for (uint32_t j = 0; j < g->fams[k]->nrecs && j < 8; j++)
                    __builtin_prefetch(&f->set[r[j].slot->hash & (f->set_cap - 1)]);
            }
            for (int t = 0; t < 2; t++)
                __builtin_prefetch(&tsf[t]->set[g->tsrec[t].slot->hash & (tsf[t]->set_cap - 1)]);
        }
        fy__group_t *g = v[i];
        for (uint32_t k = 0; k < g->nfams; k++)
            gfam_detach(s, g->fams[k], sh);
        for (int t = 0; t < 2; t++) {
            fy__fam_t *f = tsf[t];
            slot_kill(f, g->tsrec[t].slot);
            help_ref(s, f, 1, ts_help[t], -1);
            f->refs--;
            fam_maybe_drop(s, stripe_of(s, f->hash), f); /* only with the batch's last group, if at all */
        }
        if (g->fams != g->fams_inline)
            free(g->fams);
        free(g->lf); /* unlinked from the heap and life list by the caller; read under the shard lock only */
        g->lf = NULL;
        retire(s, &sh->retired, g); /* scrapes may still read its timestamp records */
    }
    atomic_fetch_sub(&s->nseries, 2 * n);
    lockset_unlock(P);
    P->nstripes = 0;
}

uint64_t fy_store_delete_where(fy_store_t *s, fy_store_group_cb_t pred, void *ctx)
{
    push_t P;
    memset(&P, 0, sizeof(P));
    P.s = s;
    scratch_take(&P);
    uint64_t n = 0;
    fy__group_t **v = NULL;
    size_t nv = 0, cap_v = 0;
    uint64_t *seen = xcalloc((s->cfg.nstripes + 63) / 64, sizeof(*seen));
    fy__view_labels_t vl = {0};
    for (uint32_t i = 0; i < s->cfg.nshards; i++) {
        fy__shard_t *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        nv = 0;
        for (size_t b = 0; b < sh->nbuckets; b++) {
            /* what life_view and a predicate read of the group: its first two lines, its life fields and its key
             * (the bucket array itself is read in order, which the hardware prefetcher follows) */
            if (b + 24 < sh->nbuckets && fy__gt_live(sh->buckets[b + 24])) {
                const char *a = (const char *)fy__gt_group(sh->buckets[b + 24]);
                __builtin_prefetch(a);
                __builtin_prefetch(a + 64);
                __builtin_prefetch(a + offsetof(fy__group_t, deadline_ns));
                __builtin_prefetch(a + sizeof(fy__group_t));
                __builtin_prefetch(a + sizeof(fy__group_t) + 64);
            }
            if (!fy__gt_live(sh->buckets[b]))
                continue;
            fy__group_t *g = fy__gt_group(sh->buckets[b]);
            fy_store_group_view_t view;
            life_view(s, g, &vl, &view);
            if (pred(ctx, &view)) {
                gt_remove_at(sh, b);
                life_unlink(sh, g);
                GROW(v, nv, cap_v);
                v[nv++] = g;
            }
        }
        if (nv > 0)
            bulk_remove(&P, sh, v, nv, seen);
        atomic_fetch_sub(&s->ngroups, nv);
        n += nv;
        reclaim_maybe(s, &sh->retired);
        pthread_mutex_unlock(&sh->lock);
    }
    free(seen);
    free(v);
    fy__view_labels_free(&vl);
    scratch_give(&P);
    atomic_fetch_add(&s->bulk_deleted, n);
    return n;
}
