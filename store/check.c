/*
 * check.c: the Pushgateway's consistency check of a push against the store (client_golang's Gather: types, HELP of
 * own families, suffix collisions, label names and values, duplicate series), and its error messages, which quote
 * series in client_golang's compact protobuf text. Called with the push's shard lock and all its stripe locks held.
 */
#define _GNU_SOURCE /* qsort_r */
#include "push_int.h"

#include "fy_num.h"
#include "fy_parse.h"

#include <stdio.h>
#include <stdlib.h>

static void dump_pb_string(fy__buf_t *b, fy_str_t s)
{
    fy__buf_add(b, "\"", 1);
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        uint32_t r;
        size_t k;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            fy__buf_add(b, e, 2);
            i++;
        } else if (c == '\n') {
            fy__buf_add(b, "\\n", 2);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            fy__buf_add(b, &s.ptr[i], 1);
            i++;
        } else if (c >= 0x80 && (k = fy_utf8_decode((const unsigned char *)s.ptr + i, s.len - i, &r)) > 0) {
            fy__buf_add(b, s.ptr + i, k);
            i += k;
        } else {
            char e[5];
            snprintf(e, sizeof(e), "\\%03o", c);
            fy__buf_add(b, e, 4);
            i++;
        }
    }
    fy__buf_add(b, "\"", 1);
}

static void dump_float(fy__buf_t *b, double v)
{
    fy__buf_reserve(b, FY_FLOAT_BUFSZ);
    b->n += fy_format_float_g(v, b->p + b->n);
}

static void dump_u64(fy__buf_t *b, uint64_t v)
{
    fy__buf_reserve(b, 24);
    b->n += fy_format_uint64(v, b->p + b->n);
}

static void dump_metric(push_t *P, fy__buf_t *b, const pser_t *ps, int family_type)
{
    const fy_series_t *se = ps->src;
    fy__buf_add(b, "{ ", 2);
    const char *p = P->scratch.p + ps->key_off;
    fy_str_t n, v;
    for (unsigned i = 0; i < ps->nlabels; i++) {
        p = fy__slot_label(p, &n, &v);
        fy__buf_str(b, "label:<name:");
        dump_pb_string(b, n);
        fy__buf_str(b, " value:");
        dump_pb_string(b, v);
        fy__buf_str(b, " > ");
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
        fy__buf_str(b, kind == FY_TYPE_COUNTER ? "counter:<value:" : kind == FY_TYPE_GAUGE ? "gauge:<value:" : "untyped:<value:");
        dump_float(b, se->value);
        fy__buf_str(b, " > ");
        break;
    case FY_TYPE_SUMMARY:
        fy__buf_str(b, "summary:<sample_count:");
        dump_u64(b, se->count);
        fy__buf_str(b, " sample_sum:");
        dump_float(b, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            fy__buf_str(b, " quantile:<quantile:");
            dump_float(b, se->points[i].key);
            fy__buf_str(b, " value:");
            dump_float(b, se->points[i].value);
            fy__buf_str(b, " >");
        }
        fy__buf_str(b, " > ");
        break;
    default:
        fy__buf_str(b, "histogram:<sample_count:");
        dump_u64(b, se->count);
        fy__buf_str(b, " sample_sum:");
        dump_float(b, se->value);
        for (uint32_t i = 0; i < se->npoints; i++) {
            fy__buf_str(b, " bucket:<cumulative_count:");
            dump_u64(b, se->points[i].count);
            fy__buf_str(b, " upper_bound:");
            dump_float(b, se->points[i].key);
            fy__buf_str(b, " >");
        }
        fy__buf_str(b, " > ");
        break;
    }
    if (se->has_timestamp) {
        char t[32];
        snprintf(t, sizeof(t), "timestamp_ms:%lld ", (long long)se->timestamp_ms);
        fy__buf_str(b, t);
    }
    fy__buf_add(b, "}", 1);
}

/* "collected metric %q { %s} <tail>" */
static void err_metric(push_t *P, const pfam_t *pf, const pser_t *ps, int family_type)
{
    err_begin(P);
    fy__buf_str(&P->err, "collected metric ");
    fy__buf_go_quote(&P->err, pf->name);
    fy__buf_add(&P->err, " ", 1);
    dump_metric(P, &P->err, ps, family_type);
    fy__buf_add(&P->err, " ", 1);
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
int fy__replaced(push_t *P, const fy__group_t *g, fy_str_t name)
{
    const fy__gfam_t *gf = fy__group_gfam_locked(g, name);
    if (gf == NULL)
        return 0;
    /* lww: a change older than some of the group's families keeps those (lww_cut is 0 without lww) */
    return P->method == FY_STORE_PUT || gf->stamp_ns < P->lww_cut || pushed_fam(P, name) != NULL;
}

/* Is `name` present (own, in another group, kept in this group, or pushed and registered earlier), and with which
 * type? Mirrors the metricFamiliesByName map of client_golang's Gather at the moment family `upto` is gathered. */
static int registered(push_t *P, const fy__group_t *g, fy_str_t name, const pfam_t *upto, int *type)
{
    fy__fam_t *f = fy__lookup(P, name);
    if (f && f->own) {
        *type = f->own_type;
        return 1;
    }
    if (f && f->refs > (uint32_t)fy__replaced(P, g, name)) {
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
            fy__buf_str(&P->err, "collected metric named ");
            fy__buf_go_quote(&P->err, n);
            fy__buf_str(&P->err, t == FY_TYPE_SUMMARY ? " collides with previously collected summary named "
                                                      : " collides with previously collected histogram named ");
            fy__buf_go_quote(&P->err, base);
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
                fy__buf_str(&P->err, i == 2 ? "collected histogram named " : "collected histogram or summary named ");
                fy__buf_go_quote(&P->err, n);
                fy__buf_str(&P->err, " collides with previously collected metric named ");
                fy__buf_go_quote(&P->err, sn);
                return 1;
            }
        }
    }
    return 0;
}

/* client_golang's checkMetricConsistency for one series against the merged family of type `ftype`. */
void fy__check_series(push_t *P, const fy__group_t *g, pfam_t *pf, pser_t *ps, int ftype)
{
    FY_ASSERT_PUSH_SHARD(P);
    if (!series_kind_ok(ftype, ps->src->pb_kinds)) {
        err_metric(P, pf, ps, ftype);
        fy__buf_str(&P->err, "is not a ");
        fy__buf_str(&P->err, fy__type_upper(ftype));
        goto Bad;
    }
    const char *p = P->scratch.p + ps->key_off;
    fy_str_t n, v, prev = {NULL, 0};
    for (unsigned i = 0; i < ps->nlabels; i++, prev = n) {
        p = fy__slot_label(p, &n, &v);
        if (i && fy_str_eq(n, prev)) {
            err_metric(P, pf, ps, ftype);
            fy__buf_str(&P->err, "has two or more labels with the same name: ");
            fy__buf_add(&P->err, n.ptr, n.len);
            goto Bad;
        }
        if (!fy__label_name_valid(n, P->s->cfg.utf8_names)) {
            err_metric(P, pf, ps, ftype);
            fy__buf_str(&P->err, "has a label with an invalid name: ");
            fy__buf_add(&P->err, n.ptr, n.len);
            goto Bad;
        }
        if (ftype == FY_TYPE_SUMMARY && fy_str_eq_mem(n, FY_STRLIT("quantile"))) {
            err_metric(P, pf, ps, ftype);
            fy__buf_str(&P->err, "must not have an explicit \"quantile\" label");
            goto Bad;
        }
        if (!fy_utf8_valid(v.ptr, v.len)) {
            err_metric(P, pf, ps, ftype);
            fy__buf_str(&P->err, "has a label named ");
            fy__buf_go_quote(&P->err, n);
            fy__buf_str(&P->err, " whose value is not utf8: ");
            fy__buf_go_quote(&P->err, v);
            goto Bad;
        }
    }
    /* A re-push usually sends the group's series in the same order: try the slot at the same position of the group's
     * current family first (its slot is hot anyway), and the family's series set only when that misses. */
    fy__slot_t *sl = NULL;
    if (pf->fam) {
        const char *key = P->scratch.p + ps->key_off;
        size_t k = (size_t)(ps - &P->ser[pf->first]);
        if (pf->old && k < pf->old->nrecs && fy__slot_key_eq(fy__gfam_recs(pf->old)[k].slot, ps->hash, key, ps->keylen))
            sl = fy__gfam_recs(pf->old)[k].slot;
        else
            sl = fy__set_find(pf->fam, ps->hash, key, ps->keylen);
    }
    ps->slot = sl;
    if (ps->dup_in_push || (sl && sl->owner != (const void *)g)) {
        err_metric(P, pf, ps, ftype);
        fy__buf_str(&P->err, "was collected before with the same name and label values");
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
        P->idx = fy__xrealloc(P->idx, P->cap_idx * sizeof(size_t));
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
void fy__check_push(push_t *P, const fy__group_t *g)
{
    FY_ASSERT_PUSH_SHARD(P);
    FY_ASSERT_LOCKSET(P);
    for (size_t i = 0; i < P->nfams; i++) {
        pfam_t *pf = &P->fams[i];
        size_t nerr0 = P->nerr; /* the errors of this family: an lww merge drops it for them */
        pf->fam = fy__lookup(P, pf->name);
        pf->old = pf->is_ts ? NULL : fy__group_gfam_locked(g, pf->name);
        fy__fam_t *f = pf->fam;
        pf->ok = 0;
        int ftype = pf->type;
        if (!pf->is_ts) {
            fy_str_t help = pf->has_help ? fy_str(P->scratch.p + pf->help_off, pf->help_len) : fy_str("", 0);
            if (f && f->own) {
                if (!f->own_predefined && !fy_str_eq(help, f->own_help)) {
                    err_begin(P);
                    fy__buf_str(&P->err, "gathered metric family ");
                    fy__buf_add(&P->err, pf->name.ptr, pf->name.len);
                    fy__buf_str(&P->err, " has help ");
                    fy__buf_go_quote(&P->err, help);
                    fy__buf_str(&P->err, " but should have ");
                    fy__buf_go_quote(&P->err, f->own_help);
                    goto Next;
                }
                if (pf->type != f->own_type) {
                    err_begin(P);
                    fy__buf_str(&P->err, "gathered metric family ");
                    fy__buf_add(&P->err, pf->name.ptr, pf->name.len);
                    fy__buf_str(&P->err, " has type ");
                    fy__buf_str(&P->err, fy__type_upper(pf->type));
                    fy__buf_str(&P->err, " but should have ");
                    fy__buf_str(&P->err, fy__type_upper(f->own_type));
                    goto Next;
                }
            }
            int others = f && f->refs > (uint32_t)fy__replaced(P, g, pf->name);
            if (others && f->type != pf->type) {
                /* the merged family has the existing type: every pushed series mismatches it */
                for (size_t k = 0; k < pf->n; k++) {
                    err_metric(P, pf, &P->ser[pf->first + k], pf->type);
                    fy__buf_str(&P->err, "is not a ");
                    fy__buf_str(&P->err, fy__type_upper(f->type));
                }
                goto Next;
            }
            /* only a name not gathered yet is checked for suffix collisions, as in client_golang */
            if (!(f && f->own) && !others && check_suffix(P, g, pf))
                goto Next;
        }
        pf->ok = 1;
        mark_dups_in_push(P, pf);
        for (size_t k = 0; k < pf->n; k++)
            fy__check_series(P, g, pf, &P->ser[pf->first + k], ftype);
    Next:
        pf->failed = P->nerr != nerr0;
    }
}
