/*
 * family_index.c: the metric-name index. One chained hash table of families (fy__fam_t) per stripe; per family its
 * series set (open addressing, finds a series' slot across groups), its HELP variants, and the sorted slot array
 * that text scrapes read without locks (folded from pending and dead slots by fy__fam_merge). Everything here is
 * called with the family's stripe lock held.
 */
#include "store_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

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
    FY_ASSERT_STRIPE(st);
    if (f->npending == 0 && f->ndead == 0)
        return;
    fy__farr_t *old = atomic_load(&f->published);
    size_t on = old ? old->n : 0;
    /* positions of dead slots in the old array; dead pending slots are filtered directly */
    size_t *dpos = fy__xmalloc((f->ndead + 1) * sizeof(size_t));
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
            fy__retire(s, &st->retired, f->pending[i]);
    if (np > 1)
        qsort(f->pending, np, sizeof(*f->pending), slot_cmp_qsort);
    size_t nn = on - nd + np;
    fy__farr_t *a = fy__xmalloc(sizeof(*a) + nn * sizeof(a->v[0]));
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
                fy__retire(s, &st->retired, old->v[oi]);
                oi++;
                di++;
            }
        }
        if (pi < np)
            a->v[w++] = f->pending[pi++];
    }
    assert(w == nn && di == nd);
    atomic_store(&f->published, a);
    fy__retire(s, &st->retired, old);
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

fy__fam_t *fy__fam_find(fy__stripe_t *st, uint64_t h, fy_str_t name)
{
    FY_ASSERT_STRIPE(st);
    for (fy__fam_t *f = st->buckets[FY_BUCKET(h, st->nbuckets)]; f; f = f->next)
        if (f->hash == h && fy_str_eq(f->name, name))
            return f;
    return NULL;
}

fy__fam_t *fy__fam_create(fy__stripe_t *st, uint64_t h, fy_str_t name)
{
    FY_ASSERT_STRIPE(st);
    if (st->nfams >= st->nbuckets) {
        size_t nb = st->nbuckets * 2;
        fy__fam_t **b = fy__xcalloc(nb, sizeof(*b));
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
    fy__fam_t *f = fy__xcalloc(1, sizeof(*f) + name.len + 1);
    memcpy(f->name_buf, name.ptr, name.len);
    f->name = fy_str(f->name_buf, name.len);
    f->hash = h;
    f->next = st->buckets[FY_BUCKET(h, st->nbuckets)];
    st->buckets[FY_BUCKET(h, st->nbuckets)] = f;
    st->nfams++;
    return f;
}

/* Drops a family nobody holds any more (no group, not own). Its slots are all dead. */
void fy__fam_maybe_drop(fy_store_t *s, fy__stripe_t *st, fy__fam_t *f)
{
    FY_ASSERT_STRIPE(st);
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
            fy__retire(s, &st->retired, a->v[i]);
        fy__retire(s, &st->retired, a);
    }
    for (size_t i = 0; i < f->npending; i++)
        fy__retire(s, &st->retired, f->pending[i]);
    for (uint32_t i = 0; i < f->nhv; i++)
        fy__retire(s, &st->retired, f->hv[i].h);
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
    fy__retire(s, &st->retired, f);
}

/* The series set is open addressing with linear probing. A removal leaves a tombstone instead of shifting the entries
 * behind it back: the shift has to read each following entry's hash, i.e. dereference a slot that is a cache miss
 * at 1M series (eight or so per removal at 3/4 load; a bulk delete of 100 000 groups spent most of its time there).
 * Tombstones count towards the load; the table is rebuilt (at the same size when the live entries fit in half of
 * it) when live entries and tombstones pass 3/4. */
static fy__slot_t set_tomb_slot;
#define SET_TOMB (&set_tomb_slot)

fy__slot_t *fy__set_find(const fy__fam_t *f, uint64_t h, const char *key, uint32_t keylen)
{
    FY_ASSERT_FAM(f);
    if (f->set_cap == 0)
        return NULL;
    for (size_t i = (uint32_t)h & (f->set_cap - 1);; i = (i + 1) & (f->set_cap - 1)) {
        fy__slot_t *sl = f->set[i];
        if (sl == NULL)
            return NULL;
        if (sl != SET_TOMB && fy__slot_key_eq(sl, h, key, keylen))
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

void fy__set_insert(fy__fam_t *f, fy__slot_t *sl)
{
    FY_ASSERT_FAM(f);
    if (4 * (f->set_n + f->set_ntomb + 1) > 3 * f->set_cap) {
        size_t nc = f->set_cap ? f->set_cap : 8;
        while (2 * (f->set_n + 1) > nc)
            nc *= 2;
        fy__slot_t **ns = fy__xcalloc(nc, sizeof(*ns));
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

void fy__slot_kill(fy__fam_t *f, fy__slot_t *sl)
{
    FY_ASSERT_FAM(f);
    assert(!sl->dead);
    sl->dead = 1;
    set_remove(f, sl);
    FY_GROW(f->dead, f->ndead, f->cap_dead);
    f->dead[f->ndead++] = sl;
}

/* Counts a gfam (or a group's timestamp series) in or out of the fam's HELP variant (has_help, text); returns the
 * variant, which the gfam then points at. Called with the fam's stripe locked. A variant whose last holder goes is
 * retired, not freed: a scrape that chose it may still be copying it (it does so under the stripe lock today, but
 * JSON and snapshot readers hold only a shard lock, and a retired gfam may still point at it). */
const fy__help_t *fy__help_ref(fy_store_t *s, fy__fam_t *f, int has_help, fy_str_t text, int delta)
{
    FY_ASSERT_FAM(f);
    for (uint32_t i = 0; i < f->nhv; i++) {
        fy__helpvar_t *v = &f->hv[i];
        if (v->h->has_help == has_help && fy_str_eq(fy__help_str(v->h), text)) {
            const fy__help_t *h = v->h;
            v->refs += delta;
            if (v->refs == 0) {
                fy__retire(s, &s->stripes[f->hash & (s->cfg.nstripes - 1)].retired, v->h);
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
    FY_GROW(f->hv, f->nhv, f->cap_hv);
    fy__helpvar_t *v = &f->hv[f->nhv++];
    v->h = fy__xmalloc(sizeof(fy__help_t) + text.len + 1);
    v->h->len = (uint32_t)text.len;
    v->h->has_help = (uint8_t)has_help;
    memcpy(v->h->text, text.ptr, text.len);
    v->h->text[text.len] = 0;
    v->refs = 1;
    return v->h;
}
