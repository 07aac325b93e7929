/*
 * change.c: the change path (change.h): admission, application to the store, and the hand-off to the observers.
 */
#include "change.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk.h"
#include "reaper.h"
#include "log.h"

#define NOT_READY "Service Unavailable: loading persisted metrics"

void fy_change_result_free(fy_change_result_t *r)
{
    free(r->buf);
    r->buf = NULL;
    free(r->effects);
    r->effects = NULL;
    r->effects_len = 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Effects (replication): u8 kind | u32 len | bytes. An allocation failure is fatal, as in the store: replication
 * that silently lost a deleted group or a dropped family would diverge. */

void fy_change_effect_add(fy_change_result_t *r, unsigned kind, const void *p, size_t n)
{
    uint8_t *e = realloc(r->effects, r->effects_len + 5 + n);
    if (e == NULL) {
        fy_log_error("msg", "out of memory while recording a change for replication; exiting");
        abort();
    }
    r->effects = e;
    e += r->effects_len;
    e[0] = (uint8_t)kind;
    e[1] = (uint8_t)n;
    e[2] = (uint8_t)(n >> 8);
    e[3] = (uint8_t)(n >> 16);
    e[4] = (uint8_t)(n >> 24);
    if (n)
        memcpy(e + 5, p, n);
    r->effects_len += 5 + n;
}

int fy_effect_next(const fy_change_result_t *r, size_t *off, unsigned *kind, fy_str_t *bytes)
{
    if (*off + 5 > r->effects_len)
        return 0;
    const uint8_t *e = r->effects + *off;
    size_t n = (size_t)e[1] | (size_t)e[2] << 8 | (size_t)e[3] << 16 | (size_t)e[4] << 24;
    *kind = e[0];
    *bytes = fy_str((const char *)e + 5, n);
    *off += 5 + n;
    return 1;
}

/* A group's labels as bytes: per label u32 name length | name | u32 value length | value (host order: the bytes
 * never leave the process). */
static size_t labels_encode(const fy_store_label_t *l, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = (uint32_t)l[i].name.len, b = (uint32_t)l[i].value.len;
        if (out) {
            memcpy(out + o, &a, 4);
            memcpy(out + o + 4, l[i].name.ptr, a);
            memcpy(out + o + 4 + a, &b, 4);
            if (b)
                memcpy(out + o + 8 + a, l[i].value.ptr, b);
        }
        o += 8 + a + b;
    }
    return o;
}

size_t fy_effect_labels(fy_str_t bytes, fy_store_label_t *out, size_t max)
{
    size_t n = 0, o = 0;
    while (o + 8 <= bytes.len && n < max) {
        uint32_t a, b;
        memcpy(&a, bytes.ptr + o, 4);
        out[n].name = fy_str(bytes.ptr + o + 4, a);
        memcpy(&b, bytes.ptr + o + 4 + a, 4);
        out[n].value = fy_str(bytes.ptr + o + 8 + a, b);
        o += 8 + a + b;
        n++;
    }
    return n;
}

static void dropped_family(void *ctx, fy_str_t name)
{
    fy_change_effect_add(ctx, FY_EFFECT_DROPPED, name.ptr, name.len);
}

static void set_msg(fy_change_result_t *r, int status, const char *msg)
{
    r->status = status;
    r->msg = msg;
    r->msg_len = strlen(msg);
}

/* "could not persist the push: <why>", owned by r */
static void set_not_persisted(fy_change_result_t *r, const fy_change_t *c, const char *why)
{
    static const char *const what[] = {[FY_CHANGE_PUSH] = "push",
                                       [FY_CHANGE_DELETE] = "deletion",
                                       [FY_CHANGE_WIPE] = "wipe",
                                       [FY_CHANGE_BULK] = "bulk delete",
                                       [FY_CHANGE_EXPIRE] = "expiry",
                                       [FY_CHANGE_RESTORE] = "restored group",
                                       [FY_CHANGE_FAIL] = "push failure",
                                       [FY_CHANGE_KILL] = "conflict resolution",
                                       [FY_CHANGE_DROP] = "drop of stale state"};
    free(r->buf);
    int n = snprintf(NULL, 0, "could not persist the %s: %s", what[c->kind], why);
    r->buf = malloc((size_t)n + 1);
    r->status = 500;
    r->not_persisted = 1;
    r->why = why;
    if (r->buf == NULL) {
        set_msg(r, 500, "out of memory");
        return;
    }
    snprintf(r->buf, (size_t)n + 1, "could not persist the %s: %s", what[c->kind], why);
    r->msg = r->buf;
    r->msg_len = (size_t)n;
}

void fy_core_init(fy_core_t *core, fy_store_t *store, const fy_push_limits_t *limits, fy_selfstats_t *stats)
{
    memset(core, 0, sizeof(*core));
    core->store = store;
    core->limits = *limits;
    core->stats = stats;
    pthread_mutex_init(&core->order, NULL);
}

void fy_core_dispose(fy_core_t *core)
{
    pthread_mutex_destroy(&core->order);
}

int fy_core_observe(fy_core_t *core, const fy_change_observer_t *o)
{
    size_t n = atomic_load(&core->nobservers);
    if (n == FY_CORE_MAX_OBSERVERS)
        return -1;
    core->observers[n] = *o;
    atomic_store(&core->nobservers, n + 1); /* after the entry: appliers read the count first */
    return 0;
}

static int any_ordered(fy_core_t *core, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (core->observers[i].ordered)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Applying each kind to the store. Each returns whether the store changed. */

static int apply_push(fy_core_t *core, const fy_change_t *c, fy_push_arena_t *arena, fy_change_result_t *r)
{
    fy_push_outcome_t o;
    if (c->merge)
        fy_push_merge(core->store, arena, c->post ? FY_STORE_POST : FY_STORE_PUT, c->labels, c->nlabels, c->body, c->body_len,
                      c->format, c->life, c->now_ns, dropped_family, r, &o);
    else
        fy_push_apply_life(core->store, arena, &core->limits, c->post ? FY_STORE_POST : FY_STORE_PUT, c->labels, c->nlabels,
                           c->body, c->body_len, c->format, c->life, c->now_ns, &o);
    r->failure = o.failure_recorded;
    /* the outcome's message (static, or NUL-terminated in its buffer) becomes the result's, buffer and all */
    r->status = o.status;
    r->limit = o.limit;
    r->log_failure = o.log_failure;
    r->msg = o.msg;
    r->msg_len = o.msg_len;
    r->buf = o.buf;
    int changed = o.store_rc != 1; /* every push that reached the store changed it: a refused one sets its failure time */
    if (r->limit >= 0 && core->stats != NULL)
        fy_selfstats_limit(core->stats, (fy_limit_t)r->limit);
    return changed;
}

static int apply_delete(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    int rc = fy_store_delete(core->store, c->labels, c->nlabels, c->now_ns);
    if (rc != FY_OK) {
        set_msg(r, 400, fy_store_strerror(rc));
        return 0;
    }
    r->status = 202;
    return 1;
}

/* Wipe: every group's key is collected first (the iteration callback may not call into the store), then each group
 * is deleted. */
typedef struct {
    fy_store_label_t *labels; /* all groups' labels, concatenated; strings as offsets into strings until the end */
    char *strings;
    size_t *counts;
    size_t ngroups, nlabels, cap_labels, cap_groups;
    size_t slen, scap;
    int oom;
} wipe_list_t;

static int wipe_collect(void *ctx, const fy_store_group_view_t *g)
{
    wipe_list_t *w = ctx;
    if (w->ngroups == w->cap_groups) {
        w->cap_groups = w->cap_groups ? w->cap_groups * 2 : 64;
        size_t *cn = realloc(w->counts, w->cap_groups * sizeof(size_t));
        if (cn == NULL)
            return w->oom = 1;
        w->counts = cn;
    }
    if (w->nlabels + g->nlabels > w->cap_labels) {
        while (w->nlabels + g->nlabels > w->cap_labels)
            w->cap_labels = w->cap_labels ? w->cap_labels * 2 : 256;
        fy_store_label_t *l = realloc(w->labels, w->cap_labels * sizeof(*l));
        if (l == NULL)
            return w->oom = 1;
        w->labels = l;
    }
    for (uint32_t i = 0; i < g->nlabels; i++) {
        size_t need = g->labels[i].name.len + g->labels[i].value.len;
        if (w->slen + need > w->scap) {
            size_t cap = w->scap ? w->scap : 4096;
            while (w->slen + need > cap)
                cap *= 2;
            char *s = realloc(w->strings, cap);
            if (s == NULL)
                return w->oom = 1;
            w->strings = s;
            w->scap = cap;
        }
        fy_store_label_t *l = &w->labels[w->nlabels++];
        memcpy(w->strings + w->slen, g->labels[i].name.ptr, g->labels[i].name.len);
        l->name = fy_str((const char *)(uintptr_t)w->slen, g->labels[i].name.len);
        w->slen += g->labels[i].name.len;
        memcpy(w->strings + w->slen, g->labels[i].value.ptr, g->labels[i].value.len);
        l->value = fy_str((const char *)(uintptr_t)w->slen, g->labels[i].value.len);
        w->slen += g->labels[i].value.len;
    }
    w->counts[w->ngroups++] = g->nlabels;
    return 0;
}

/* Deletes every group, each as fy_store_delete at now_ns (with lww: removes what is older and leaves a tombstone).
 * Returns how many, or -1 when out of memory (then none). */
static int64_t delete_each(fy_core_t *core, int64_t now_ns)
{
    wipe_list_t w;
    memset(&w, 0, sizeof(w));
    int rc = fy_store_foreach_group(core->store, wipe_collect, &w);
    if (rc == 0 && !w.oom) {
        for (size_t i = 0; i < w.nlabels; i++) {
            w.labels[i].name.ptr = w.strings + (uintptr_t)w.labels[i].name.ptr;
            w.labels[i].value.ptr = w.strings + (uintptr_t)w.labels[i].value.ptr;
        }
        size_t off = 0;
        for (size_t g = 0; g < w.ngroups; g++) {
            fy_store_delete(core->store, w.labels + off, w.counts[g], now_ns);
            off += w.counts[g];
        }
    }
    free(w.labels);
    free(w.strings);
    free(w.counts);
    return rc != 0 || w.oom ? -1 : (int64_t)w.ngroups;
}

static int apply_wipe(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    if (core->lww) { /* one stamp clears every group, also those an older change creates later */
        fy_store_wipe(core->store, c->now_ns);
        r->status = 202;
        return 1;
    }
    if (delete_each(core, c->now_ns) < 0) {
        set_msg(r, 500, "out of memory");
        return 0;
    }
    r->status = 202;
    return 1;
}

/* With replication, a bulk delete is handed on as the groups it deleted (each deleted at the change's stamp): a
 * peer's evaluation of the query could select other groups. */
typedef struct {
    fy_bulk_t *b;
    fy_core_t *core;
    fy_change_result_t *r;
    int64_t now;
} bulk_lww_t;

static int bulk_lww_match(void *ctx, const fy_store_group_view_t *g)
{
    bulk_lww_t *L = ctx;
    if (!fy_bulk_match(L->b, g))
        return 0;
    size_t n = labels_encode(g->labels, g->nlabels, NULL);
    char stack[1024] = {0}, *buf = n <= sizeof(stack) ? stack : malloc(n);
    if (buf == NULL)
        abort();
    labels_encode(g->labels, g->nlabels, buf);
    fy_change_effect_add(L->r, FY_EFFECT_DELETED, buf, n);
    if (buf != stack)
        free(buf);
    return 1;
}

static int apply_bulk(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    fy_bulk_t b;
    char err[1024];
    memset(&b, 0, sizeof(b));
    if (fy_bulk_parse_query(&b, c->body, c->body_len, err, sizeof(err)) != 0) {
        fy_bulk_free(&b);
        size_t n = strlen(err);
        if ((r->buf = malloc(n + 1)) == NULL) {
            set_msg(r, 500, "out of memory");
            return 0;
        }
        memcpy(r->buf, err, n + 1);
        r->status = 400;
        r->msg = r->buf;
        r->msg_len = n;
        return 0;
    }
    b.now_ns = c->now_ns;
    if (core->lww) {
        bulk_lww_t L = {&b, core, r, c->now_ns};
        r->deleted = fy_store_delete_where(core->store, bulk_lww_match, &L);
    } else {
        r->deleted = fy_store_delete_where(core->store, fy_bulk_match, &b);
    }
    fy_bulk_free(&b);
    r->status = 200;
    return 1; /* logged even when it deleted nothing: a replay re-evaluates it at its time */
}

static int apply_restore(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    const fy_change_restore_t *rs = c->restore;
    fy_store_err_t serr;
    memset(&serr, 0, sizeof(serr));
    int64_t at = rs->times.push_stamp_ns ? rs->times.push_stamp_ns : rs->times.fail_stamp_ns;
    int rc = fy_store_push(core->store, c->labels, c->nlabels, FY_STORE_PUT, rs->families, at, rs->times.origin, &serr);
    if (rc != FY_OK) {
        /* consistent when it was saved; a limit lowered since, for instance, can refuse it */
        const char *m = serr.msg ? serr.msg : fy_store_strerror(rc);
        size_t n = strlen(m);
        if ((r->buf = malloc(n + 1)) != NULL) {
            memcpy(r->buf, m, n + 1);
            r->msg = r->buf;
            r->msg_len = n;
        } else {
            r->msg = "out of memory";
            r->msg_len = 13;
        }
        r->status = 400;
        fy_store_err_free(&serr);
        return 0;
    }
    fy_store_err_free(&serr);
    fy_store_restore_times(core->store, c->labels, c->nlabels, &rs->times, rs->names, rs->stamps, rs->nstamps);
    r->status = 200;
    return 1;
}

static int apply_fail(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    int rc = fy_store_fail(core->store, c->labels, c->nlabels, c->now_ns);
    if (rc != FY_OK) {
        set_msg(r, 400, fy_store_strerror(rc));
        return 0;
    }
    r->status = 200;
    return 1;
}

static int apply_kill(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    int rc = fy_store_kill(core->store, c->labels, c->nlabels, c->family, c->now_ns);
    if (rc != FY_OK) {
        set_msg(r, 400, fy_store_strerror(rc));
        return 0;
    }
    r->status = 200;
    return 1;
}

/* Replication's drop of stale state: each group deleted above everything it holds (now_ns is after the newest stamp
 * the store held), then every tombstone and kill forgotten, so that nothing of it stops an older change from the
 * peers. Not a bulk delete (ferry_groups_bulk_deleted_total does not count it). */
static int apply_drop(fy_core_t *core, const fy_change_t *c, fy_change_result_t *r)
{
    int64_t n = delete_each(core, c->now_ns);
    if (n < 0) {
        set_msg(r, 500, "out of memory");
        return 0;
    }
    fy_store_gc_tombstones(core->store, INT64_MAX);
    r->deleted = (uint64_t)n;
    r->status = 200;
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------------- */

void fy_core_apply(fy_core_t *core, const fy_change_t *c, fy_push_arena_t *arena, fy_change_result_t *r)
{
    void *state[FY_CORE_MAX_OBSERVERS] = {NULL};
    size_t nobs = atomic_load(&core->nobservers), prepared = 0;
    memset(r, 0, sizeof(*r));
    r->limit = -1;
    r->msg = "";
    assert(c->kind != FY_CHANGE_EXPIRE);

    /* admission */
    if (c->origin == FY_ORIGIN_CLIENT && !atomic_load(&core->ready)) {
        set_msg(r, 503, fy_core_not_ready(core));
        return;
    }
    /* a drop only forgets: stale state leaves memory even when the log has failed and cannot record it */
    for (size_t i = 0; i < nobs && c->kind != FY_CHANGE_DROP; i++) {
        const fy_change_observer_t *o = &core->observers[i];
        if (o->refuse_status != 0 && c->origin != FY_ORIGIN_CLIENT)
            continue; /* replication's refusal (no write quorum) is for the changes a client waits for */
        const char *why = o->refuses != NULL ? o->refuses(o->ctx) : NULL;
        if (why != NULL) {
            if (o->refuse_status != 0)
                set_msg(r, o->refuse_status, why);
            else
                set_not_persisted(r, c, why);
            return;
        }
    }
    for (; prepared < nobs; prepared++) {
        const fy_change_observer_t *o = &core->observers[prepared];
        if (o->prepare != NULL && o->prepare(o->ctx, c, &state[prepared]) != 0)
            break;
    }
    if (prepared < nobs) {
        for (size_t i = 0; i < prepared; i++) /* commit nothing: each frees its state on a change that did not happen */
            if (core->observers[i].commit != NULL) {
                uint64_t s;
                core->observers[i].commit(core->observers[i].ctx, c, 0, r, state[i], &s);
            }
        set_msg(r, 500, "out of memory");
        return;
    }

    /* application, and the hand-off in store order */
    int ordered = any_ordered(core, nobs);
    if (ordered)
        pthread_mutex_lock(&core->order);
    fy_change_t stamped;
    if (core->stamp != NULL && c->origin == FY_ORIGIN_CLIENT) {
        /* replication: the change's time is its stamp, taken in store order (observers patch what they prepared) */
        stamped = *c;
        stamped.now_ns = core->stamp(core->stamp_ctx, c->now_ns);
        c = &stamped;
    }
    int changed = 0;
    r->applied = 1;
    switch (c->kind) {
    case FY_CHANGE_PUSH:
        changed = apply_push(core, c, arena, r);
        break;
    case FY_CHANGE_DELETE:
        changed = apply_delete(core, c, r);
        break;
    case FY_CHANGE_WIPE:
        changed = apply_wipe(core, c, r);
        break;
    case FY_CHANGE_BULK:
        changed = apply_bulk(core, c, r);
        break;
    case FY_CHANGE_RESTORE:
        changed = apply_restore(core, c, r);
        break;
    case FY_CHANGE_FAIL:
        changed = apply_fail(core, c, r);
        break;
    case FY_CHANGE_KILL:
        changed = apply_kill(core, c, r);
        break;
    case FY_CHANGE_DROP:
        changed = apply_drop(core, c, r);
        break;
    case FY_CHANGE_EXPIRE:
        break;
    }
    const char *why = NULL;
    for (size_t i = 0; i < nobs; i++) {
        const fy_change_observer_t *o = &core->observers[i];
        uint64_t seq = 0;
        const char *w = o->commit != NULL ? o->commit(o->ctx, c, changed, r, state[i], &seq) : NULL;
        if (w != NULL && why == NULL)
            why = w;
        if (seq != 0)
            r->seq = seq; /* the last that gives sequence numbers (replication's, which waits for the log's) */
    }
    if (ordered)
        pthread_mutex_unlock(&core->order);
    if (why != NULL) {
        r->seq = 0;
        set_not_persisted(r, c, why);
    }
}

const char *fy_core_wait(fy_core_t *core, uint64_t seq)
{
    size_t n = atomic_load(&core->nobservers);
    for (size_t i = n; i-- > 0;)
        if (core->observers[i].wait != NULL)
            return core->observers[i].wait(core->observers[i].ctx, seq);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Expiry: the store finds and deletes the groups; each is handed on as it goes, under the order lock like any other
 * change, so a replay sees it exactly where it happened (a push that raced with the timer included). */

typedef struct {
    fy_core_t *core;
    size_t nobs;
    int64_t now;
} expire_t;

static int expire_one(void *ctx, const fy_store_group_view_t *g)
{
    expire_t *E = ctx;
    if (fy_log_enabled(FY_LOG_DEBUG))
        fy_reaper_log(NULL, g);
    fy_change_t c;
    memset(&c, 0, sizeof(c));
    c.kind = FY_CHANGE_EXPIRE;
    c.origin = FY_ORIGIN_TIMER;
    c.now_ns = E->now;
    c.labels = g->labels;
    c.nlabels = g->nlabels;
    for (size_t i = 0; i < E->nobs; i++) {
        const fy_change_observer_t *o = &E->core->observers[i];
        void *state = NULL;
        uint64_t seq;
        if (o->prepare != NULL && o->prepare(o->ctx, &c, &state) != 0) {
            fy_log_error("msg", "could not hand on an expired group; a replay will expire it again", "err", "out of memory");
            continue;
        }
        const char *why = o->commit != NULL ? o->commit(o->ctx, &c, 1, NULL, state, &seq) : NULL;
        if (why != NULL)
            fy_log_error("msg", "could not hand on an expired group; a replay will expire it again", "err", why);
    }
    return 0;
}

uint64_t fy_core_expire(fy_core_t *core, int64_t now_ns)
{
    expire_t E = {core, atomic_load(&core->nobservers), now_ns};
    int ordered = any_ordered(core, E.nobs);
    if (ordered)
        pthread_mutex_lock(&core->order);
    uint64_t n = fy_store_expire(core->store, now_ns, expire_one, &E);
    if (ordered)
        pthread_mutex_unlock(&core->order);
    return n;
}

const char *fy_core_not_ready(fy_core_t *core)
{
    const char *m = atomic_load(&core->not_ready);
    return m != NULL ? m : NOT_READY;
}

void fy_core_pause(fy_core_t *core)
{
    pthread_mutex_lock(&core->order);
}

void fy_core_resume(fy_core_t *core)
{
    pthread_mutex_unlock(&core->order);
}
