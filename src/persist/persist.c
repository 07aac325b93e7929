/*
 * persist.c: the periodic snapshot of the store and its loading at start-up (see persist.h).
 *
 * One record per group: grouprec.h (versions 1 and 2).
 */
#include "persist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fy_parse.h"
#include "fy_pb.h"
#include "gobimport.h"
#include "grouprec.h"
#include "le.h"
#include "log.h"
#include "persist_log.h"
#include "persist_snap.h"

typedef struct {
    fy_store_t *store;
    fy_snap_writer_t *w;
    fy_grouprec_buf_t rec;
    int failed, lww;
    uint64_t groups;
} fill_t;

static int encode_group(void *ctx, const fy_store_group_view_t *g)
{
    fill_t *F = ctx;
    if (fy_grouprec_encode(g, F->lww, &F->rec) != 0)
        return F->failed = 1;
    /* The iteration holds the group's shard lock: the record is only copied into the snapshot writer here. */
    if (fy_snap_put(F->w, F->rec.p, F->rec.n) != 0)
        return F->failed = 1;
    F->groups++;
    return 0;
}

static int fill(void *ctx, fy_snap_writer_t *w)
{
    fill_t *F = ctx;
    F->w = w;
    /* with replication, every register and the tombstones (version 3), so that a restart merges exactly what was */
    int rc =
        F->lww ? fy_store_foreach_changed_since(F->store, 0, encode_group, F) : fy_store_foreach_group(F->store, encode_group, F);
    return rc != 0 || F->failed ? -1 : 0;
}

/* The persistence file holds every change as of now (ferry_persistence_last_snapshot_success_timestamp_seconds). */
static void snapshot_current(fy_persist_t *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (p->stats != NULL)
        atomic_store_explicit(&p->stats->snap_ok_ns, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, memory_order_relaxed);
}

int fy_persist_write(fy_persist_t *p, char *err, size_t errlen)
{
    fill_t F;
    memset(&F, 0, sizeof(F));
    F.store = p->store;
    F.lww = p->core != NULL && p->core->lww;
    uint64_t changes = atomic_load_explicit(&p->changes, memory_order_relaxed);
    uint64_t seq = 0;
    if (p->log != NULL) {
        /* Every record up to seq has been applied (apply and submit happen under order). The snapshot may also hold
         * later changes: replaying those on top is harmless, as a push, delete or wipe with its recorded time
         * leaves the same state when applied again. */
        fy_log_stats_t st;
        pthread_mutex_lock(p->order);
        fy_log_get_stats(p->log, &st);
        pthread_mutex_unlock(p->order);
        seq = st.last_seq;
        if (fy_log_rotate(p->log, NULL) != 0) {
            snprintf(err, errlen, "%s: could not rotate the write-ahead log: %s", p->path, strerror(errno));
            if (p->stats != NULL)
                atomic_fetch_add_explicit(&p->stats->snap_failures, 1, memory_order_relaxed);
            return -1;
        }
    }
    fy_snap_info_t info;
    int rc = fy_snap_write(p->path, seq, fill, &F, &info, err, errlen);
    if (rc != 0 && F.failed && err[0] == '\0')
        snprintf(err, errlen, "%s: out of memory while encoding the snapshot", p->path);
    if (rc == 0)
        snapshot_current(p);
    else if (p->stats != NULL)
        atomic_fetch_add_explicit(&p->stats->snap_failures, 1, memory_order_relaxed);
    fy_grouprec_buf_free(&F.rec);
    if (rc == 0)
        p->saved_changes = changes;
    if (rc == 0 && p->log != NULL && fy_log_truncate_before(p->log, seq + 1) < 0) {
        /* the snapshot is good; the old segments are only replayed (harmlessly) and removed next time */
        fy_log_error("msg", "could not remove write-ahead log segments covered by the snapshot", "file", p->path, "err",
                     strerror(errno));
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Loading. */

typedef struct {
    fy_persist_t *p;
    uint64_t groups, failed;
    char *err;
    size_t errlen;
} load_t;

/* Restores one group record: PUT its families, then set its times. A record that does not decode is an error (the
 * snapshot's checksums passed, so it is a bug or a version mismatch, never silently skipped). */
static int load_group(void *ctx, const void *payload, size_t len)
{
    load_t *L = ctx;
    fy_grouprec_t g;
    char why[256];
    int rc = fy_grouprec_decode(payload, len, &g, why, sizeof(why));
    if (rc != 0) {
        if (rc == -2)
            snprintf(why, sizeof(why), "out of memory");
        snprintf(L->err, L->errlen, "%s: group record %llu: %s", L->p->path, (unsigned long long)L->groups, why);
        fy_grouprec_free(&g);
        return -1;
    }
    if (g.version == FY_GROUPREC_V3 && L->p->core->lww) {
        /* a replica's snapshot into a replica: the state joins as a peer's would */
        fy_store_merge_group_t m;
        fy_grouprec_merge_view(&g, &m);
        fy_store_merge_group(L->p->store, &m, NULL, NULL);
        if (!g.tombstone)
            L->groups++;
        fy_grouprec_free(&g);
        return 0;
    }
    if (g.tombstone) { /* a replica's snapshot loaded by a single node: deleted groups stay deleted */
        fy_grouprec_free(&g);
        return 0;
    }
    fy_change_restore_t rs = {&g.body, g.times, g.names, g.stamps, g.nstamps};
    fy_change_t c;
    memset(&c, 0, sizeof(c));
    c.kind = FY_CHANGE_RESTORE;
    c.origin = FY_ORIGIN_SNAPSHOT;
    c.now_ns = g.times.push_stamp_ns ? g.times.push_stamp_ns : g.times.fail_stamp_ns;
    c.labels = g.labels;
    c.nlabels = g.nlabels;
    c.restore = &rs;
    fy_change_result_t res;
    fy_core_apply(L->p->core, &c, NULL, &res);
    if (res.status != 200) {
        /* The data was consistent when it was saved; a limit lowered since, for instance, can refuse it. */
        L->failed++;
        fy_log_error("msg", "could not restore a persisted group", "file", L->p->path, "err", res.msg); /* NUL-ended */
    } else {
        L->groups++;
    }
    fy_change_result_free(&res);
    fy_grouprec_free(&g);
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Importing a Pushgateway 1.5.1 persistence file (Go gob, spec section 9). */

typedef struct {
    fy_persist_t *p;
    uint64_t groups;
    char *err;
    size_t errlen;
} gob_load_t;

static int gob_group(void *ctx, const fy_gob_group_t *g)
{
    gob_load_t *G = ctx;
    int rc = -1;
    size_t total = 0;
    for (size_t i = 0; i < g->nfamilies; i++)
        total += g->families[i].mf_len + 10;
    fy_store_label_t *gk = calloc(g->nlabels ? g->nlabels : 1, sizeof(*gk));
    char *delim = malloc(total + 1), *arena = NULL;
    fy_str_t *names = calloc(g->nfamilies ? g->nfamilies : 1, sizeof(*names));
    int64_t *stamps = calloc(g->nfamilies ? g->nfamilies : 1, sizeof(*stamps));
    if (gk == NULL || delim == NULL || names == NULL || stamps == NULL) {
        snprintf(G->err, G->errlen, "%s: out of memory importing a Pushgateway file", G->p->path);
        goto Exit;
    }
    for (size_t i = 0; i < g->nlabels; i++) {
        gk[i].name = fy_str(g->labels[i].name, g->labels[i].name_len);
        gk[i].value = fy_str(g->labels[i].value, g->labels[i].value_len);
    }
    size_t n = 0;
    for (size_t i = 0; i < g->nfamilies; i++) {
        uint8_t pre[10];
        size_t k = fy_gob_delimit_prefix(g->families[i].mf_len, pre);
        memcpy(delim + n, pre, k);
        memcpy(delim + n + k, g->families[i].mf, g->families[i].mf_len);
        n += k + g->families[i].mf_len;
    }
    size_t acap = fy_parse_arena_hint(n);
    if ((arena = malloc(acap)) == NULL) {
        snprintf(G->err, G->errlen, "%s: out of memory importing a Pushgateway file", G->p->path);
        goto Exit;
    }
    fy_arena_t a;
    fy_arena_init(&a, arena, acap);
    fy_body_t body;
    fy_parse_error_t perr;
    if (fy_parse_protobuf(delim, n, &a, &body, &perr) != FY_OK || body.nfamilies != g->nfamilies) {
        snprintf(G->err, G->errlen, "%s: offset %zu: a stored MetricFamily does not decode: %s", G->p->path, g->offset,
                 perr.msg[0] ? perr.msg : "family count mismatch");
        goto Exit;
    }
    /* The two timestamp families carry the group's times; the store owns them, so they are not pushed. */
    fy_store_times_t t;
    memset(&t, 0, sizeof(t));
    fy_family_t *fams = (fy_family_t *)body.families;
    size_t keep = 0;
    for (size_t i = 0; i < g->nfamilies; i++) {
        const fy_gob_family_t *gf = &g->families[i];
        if (!fy_str_eq_mem(fams[i].name, gf->name, gf->name_len)) {
            snprintf(G->err, G->errlen, "%s: offset %zu: family stored under \"%.*s\" is named \"%.*s\"", G->p->path, gf->mf_offset,
                     (int)gf->name_len, gf->name, (int)fams[i].name.len, fams[i].name.ptr);
            goto Exit;
        }
        int64_t stamp = 0;
        fy_gob_time_ns(gf, &stamp);
        int is_push = fy_str_eq_mem(fams[i].name, FY_STRLIT("push_time_seconds"));
        int is_fail = fy_str_eq_mem(fams[i].name, FY_STRLIT("push_failure_time_seconds"));
        if (is_push || is_fail) {
            int64_t v = fams[i].nseries ? (int64_t)(fams[i].series[0].value * 1e9) : 0;
            if (is_push) {
                t.push_ns = v;
                t.push_stamp_ns = stamp;
            } else {
                t.fail_ns = v;
                t.fail_stamp_ns = stamp;
            }
            continue;
        }
        fams[keep] = fams[i];
        names[keep] = fams[i].name;
        stamps[keep] = stamp;
        keep++;
    }
    body.nfamilies = (uint32_t)keep;
    fy_change_restore_t rs = {&body, t, names, stamps, keep};
    fy_change_t c;
    memset(&c, 0, sizeof(c));
    c.kind = FY_CHANGE_RESTORE;
    c.origin = FY_ORIGIN_SNAPSHOT;
    c.now_ns = t.push_stamp_ns ? t.push_stamp_ns : t.fail_stamp_ns;
    c.labels = gk;
    c.nlabels = g->nlabels;
    c.restore = &rs;
    fy_change_result_t res;
    fy_core_apply(G->p->core, &c, NULL, &res);
    if (res.status != 200) {
        snprintf(G->err, G->errlen, "%s: offset %zu: a stored group cannot be restored: %.*s", G->p->path, g->offset,
                 (int)res.msg_len, res.msg);
        fy_change_result_free(&res);
        goto Exit;
    }
    fy_change_result_free(&res);
    G->groups++;
    rc = 0;
Exit:
    free(gk);
    free(delim);
    free(arena);
    free(names);
    free(stamps);
    return rc;
}

/* Reads the whole file; returns 0, 1 if it does not exist, -1 with err set. */
static int slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    if (*buf == NULL || (n > 0 && fread(*buf, 1, (size_t)n, f) != (size_t)n)) {
        snprintf(err, errlen, "%s: cannot read the file", path);
        fclose(f);
        free(*buf);
        *buf = NULL;
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

/* If path holds a Pushgateway file, imports it and keeps the original beside it as <path>.pushgateway.bak.
 * Returns 0 when imported, 1 when the file is not a Pushgateway file (or missing), -1 on error. */
static int import_pushgateway(fy_persist_t *p, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = slurp(p->path, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    if (len >= 8 && memcmp(buf, "FERRYSNP", 8) == 0) {
        free(buf);
        return 1;
    }
    gob_load_t G = {p, 0, err, errlen};
    fy_gob_error_t gerr;
    err[0] = '\0';
    rc = fy_gob_import(buf, len, gob_group, &G, &gerr);
    free(buf);
    if (rc != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: not a Ferry snapshot, and not a Pushgateway file either: %s", p->path, gerr.msg);
        return -1;
    }
    p->loaded_groups = G.groups;
    char bak[4096];
    snprintf(bak, sizeof(bak), "%s.pushgateway.bak", p->path);
    if (rename(p->path, bak) != 0) {
        snprintf(err, errlen, "%s: imported, but cannot keep the original as %s: %s", p->path, bak, strerror(errno));
        return -1;
    }
    fy_log_info("msg", "imported a Pushgateway persistence file; the original is kept", "file", p->path, "kept_as", bak);
    /* Write Ferry's snapshot right away, so that the file at path is never missing. */
    return fy_persist_write(p, err, errlen) == 0 ? 0 : -1;
}

static void log_removed(void *ctx, const char *file)
{
    (void)ctx;
    fy_log_info("msg", "removed a temporary persistence file left by an interrupted write", "file", file);
}

int fy_persist_load(fy_persist_t *p, fy_core_t *core, const char *path, int64_t interval_ns, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->core = core;
    p->store = core->store;
    p->path = path;
    p->interval_ns = interval_ns > 0 ? interval_ns : 1000000000;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    err[0] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fy_snap_cleanup(path, log_removed, NULL);
    load_t L = {p, 0, 0, err, errlen};
    fy_snap_info_t info;
    int rc = import_pushgateway(p, err, errlen);
    if (rc <= 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        p->load_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        return rc;
    }
    memset(&info, 0, sizeof(info));
    rc = fy_snap_read(path, load_group, &L, &info, err, errlen);
    p->wal_seq = rc == 0 ? info.wal_seq : 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    p->load_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    p->loaded_groups = L.groups;
    if (rc == 1) {
        err[0] = '\0';
        return 0; /* no file yet */
    }
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The snapshot thread: wakes once per interval and writes if anything changed since the last snapshot. */

static void *snapshot_loop(void *arg)
{
    fy_persist_t *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + p->interval_ns % 1000000000;
        until.tv_sec += (time_t)(p->interval_ns / 1000000000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&p->cond, &p->lock, &until);
        if (p->stop)
            break;
        if (atomic_load_explicit(&p->changes, memory_order_relaxed) == p->saved_changes) {
            snapshot_current(p); /* nothing new: the file on disk is still complete */
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        char err[512];
        if (fy_persist_write(p, err, sizeof(err)) == 0)
            fy_log_info("msg", "metrics persisted", "file", p->path);
        else
            fy_log_error("msg", "error persisting metrics", "err", err);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int fy_persist_start(fy_persist_t *p)
{
    if (pthread_create(&p->thread, NULL, snapshot_loop, p) != 0)
        return -1;
    p->running = 1;
    return 0;
}

int fy_persist_stop(fy_persist_t *p)
{
    if (p->running) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        p->running = 0;
    }
    char err[512];
    int rc = fy_persist_write(p, err, sizeof(err));
    if (rc != 0)
        fy_log_error("msg", "problem shutting down metric storage", "err", err);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    return rc;
}
