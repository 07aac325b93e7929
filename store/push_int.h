/*
 * push_int.h: a change in progress (push_t: the parsed grouping key, the prepared families and series, the error
 * text, the lock set and the per-thread scratch arrays), shared by the files that make changes: push.c, check.c,
 * apply.c, lockset.c, remove.c, restore.c, bulk_delete.c and life.c (expiry). Deletes and expiry use a push_t for its
 * scratch and lock set only. Not part of the public API.
 */
#ifndef FY_PUSH_INT_H
#define FY_PUSH_INT_H

#include "store_int.h"

/* A parsed grouping key: sorted copies and the canonical form, all in one allocation owned by the caller. */
typedef struct st_gkey_t {
    fy_store_label_t *labels;
    size_t n;
    fy_str_t key;
    uint64_t hash;
    int valid_utf8, has_instance;
    char *mem;
} gkey_t;

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
    int ok;                /* passed the family-level checks (registered) */
    int removed_old;       /* the group holds this name and the push replaces it */
    fy__gfam_t *ng;        /* prepared gfam */
    const fy__gfam_t *old; /* the group's current family of this name, if any (set by the check) */
    size_t first_old;      /* its index in the group's family list (fast path) */
    int failed;            /* the check recorded an error for this family (lww merges drop it) */
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
    fy__buf_t scratch;
    pfam_t *fams;
    size_t nfams, cap_fams;
    pser_t *ser;
    size_t nser, cap_ser;
    /* errors */
    fy__buf_t err;
    size_t nerr;
    int key_caused;
    /* lock set */
    uint32_t *stripes;
    size_t nstripes, cap_stripes;
    /* more scratch: grouping key copy, unescaped label values, label arrays, index arrays, replaced families */
    fy__buf_t gkmem, tmp;
    lab_t *labs;
    size_t cap_labs;
    size_t *idx;
    size_t cap_idx;
    fy__gfam_t **gone;
    size_t cap_gone;
    /* the push's shape (push_shape); shape_ok: it has one (else no blind path, and the group keeps {0, 0}) */
    uint64_t shape[2];
    int shape_ok;
    /* lww mode: families of the group stamped below lww_cut disappear with this change (fy__replaced); the clear a
     * new group starts with (its tombstone's or the wipe's) */
    int64_t lww_cut, lww_del;
} push_t;

/* A merge in progress (lww.c): where dropped families are collected until the locks are released. */
typedef struct st_fy__merge_t {
    fy_str_t *dropped;
    size_t ndropped, cap_dropped;
} fy__merge_t;

static inline void err_begin(push_t *P)
{
    /* each error is stored as "\n* <text>"; the prefix is stripped when there is only one */
    fy__buf_add(&P->err, "\n* ", 3);
    P->nerr++;
}

static inline fy__fam_t *fy__lookup(push_t *P, fy_str_t name)
{
    uint64_t h = fy__hash(name.ptr, name.len);
    FY_ASSERT_NAME(h); /* the lock set covers every name the check looks up */
    return fy__fam_find(fy__stripe_of(P->s, h), h, name);
}

static inline int has_suffix(fy_str_t n, const char *suf, size_t sl)
{
    return n.len > sl && memcmp(n.ptr + n.len - sl, suf, sl) == 0;
}

/* Text and OpenMetrics series carry the family's kind by construction (pb_kinds 0); a protobuf series must carry
 * the sub-message of its family's type (see FY_PB_KIND_BIT). */
static inline int series_kind_ok(int family_type, unsigned pb_kinds)
{
    if (!(pb_kinds & FY_PB_KINDS_VALID))
        return 1;
    return (pb_kinds & FY_PB_KIND_BIT(family_type)) != 0;
}

/* Debug builds: the push's group's shard is held (its group exists or is about to be created), and every stripe of
 * its lock set. */
#define FY_ASSERT_PUSH_SHARD(P) assert(fy__lock_holds_group((P)->gk.hash))
#ifndef NDEBUG
static inline int fy__lockset_held(const push_t *P)
{
    for (size_t i = 0; i < P->nstripes; i++)
        if (!fy__lock_holds_stripe(&P->s->stripes[P->stripes[i]]))
            return 0;
    return 1;
}
#define FY_ASSERT_LOCKSET(P) assert(fy__lockset_held(P))
#else
#define FY_ASSERT_LOCKSET(P) ((void)0)
#endif

/* ------------------------------------------------------------------------------------------------------------- */
/* push.c */

int fy__gkey_parse(gkey_t *k, fy__buf_t *mem, const fy_store_label_t *gk, size_t ngk, int utf8);
void fy__scratch_take(push_t *P);
void fy__scratch_give(push_t *P);

/* Wrappers of push.c's static preparation and timestamp update for lww.c (push.c's own calls stay inlined). */
void fy__prepare(push_t *P, int new_group);
void fy__prepare_hashes(push_t *P);
void fy__prepare_gfams(push_t *P);
void fy__ts_update(push_t *P, fy__group_t *g, int created);

/* ------------------------------------------------------------------------------------------------------------- */
/* lww.c */

int64_t fy__lww_absent_del(fy_store_t *s, fy__shard_t *sh, const gkey_t *k);
void fy__lww_note_push(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, int created);
void fy__lww_note_fail(push_t *P, fy__group_t *g, int created);
int fy__lww_push(push_t *P, fy__shard_t *sh, fy__group_t *g, const fy_store_life_t *life, uint32_t origin, fy__merge_t *M,
                 int rejected);
int fy__lww_drop(push_t *P, const fy__group_t *g, fy__merge_t *M);
int fy__lww_delete(fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, int64_t stamp);
void fy__merge_drop(fy__merge_t *M, fy_str_t name);

static inline fy__lww_t *fy__lww(const fy__group_t *g)
{
    return g->lf ? g->lf->lww : NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* check.c: with the push's shard lock and all its stripe locks held */

int fy__replaced(push_t *P, const fy__group_t *g, fy_str_t name);
void fy__check_series(push_t *P, const fy__group_t *g, pfam_t *pf, pser_t *ps, int ftype);
void fy__check_push(push_t *P, const fy__group_t *g);

/* ------------------------------------------------------------------------------------------------------------- */
/* apply.c: with the push's shard lock and all its stripe locks held */

fy__gfam_t *fy__make_gfam(push_t *P, const pfam_t *pf);
void fy__gfam_detach(fy_store_t *s, fy__gfam_t *old, fy__shard_t *sh);
fy__fam_t *fy__ts_fam(fy_store_t *s, int t, int create);
void fy__ts_create(push_t *P, fy__group_t *g);
fy__group_t *fy__group_new(push_t *P);
void fy__apply_push(push_t *P, fy__group_t *g, fy__shard_t *sh);

/* ------------------------------------------------------------------------------------------------------------- */
/* lockset.c */

void fy__lockset_build(push_t *P, const fy__group_t *g);
void fy__lockset_lock(push_t *P);
void fy__lockset_unlock(push_t *P);

/* ------------------------------------------------------------------------------------------------------------- */
/* remove.c */

void fy__group_remove(push_t *P, fy__shard_t *sh, fy__group_t *g);
fy__shard_t *fy__keyed_begin(push_t *P, fy_store_t *s, const fy_store_label_t *gkl, size_t ngk, fy__group_t **g, int *rc);
void fy__keyed_end(push_t *P, fy__shard_t *sh);

#endif
