/*
 * app.c: the application behind the frontend (app.h): set-up, start-up loading (snapshot and log replay through the
 * change path), the observers, the expiry timer, and shutdown.
 */
#include "app.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buildinfo.h"
#include "log.h"
#include "persist_log.h"
#include "record.h"

int64_t fy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

fy_push_arena_t *fy_app_arena(fy_app_t *app, int t)
{
    return &app->arenas[t >= 0 && (unsigned)t < app->nthreads ? (unsigned)t : 0];
}

/* The snapshot thread writes after changes: every change that changed the store counts (unordered). */
static const char *snapshot_commit(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state,
                                   uint64_t *seq)
{
    (void)c;
    (void)state;
    *seq = 0;
    if (changed)
        fy_persist_changed(ctx);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Replication */

static void cluster_release(void *ctx, uint64_t upto)
{
    fy_app_t *app = ctx;
    if (app->durable != NULL)
        app->durable(upto, 0);
}

static void cluster_time_out(void *ctx, uint64_t late)
{
    fy_app_t *app = ctx;
    if (app->time_out != NULL)
        app->time_out(late);
}

static void cluster_ready(void *ctx, int r)
{
    fy_app_t *app = ctx;
    if (r < 0) {
        /* isolated: reads answer 503 with why; pushes still reach the change path, whose replication observer refuses
         * them for want of a quorum (and counts them) */
        atomic_store(&app->core.not_ready, "Service Unavailable: " FY_CLUSTER_ISOLATED);
        if (app->set_ready != NULL)
            app->set_ready(0);
        return;
    }
    atomic_store(&app->core.ready, r);
    if (app->set_ready != NULL)
        app->set_ready(r);
}

/* The ferry_cluster_* families' figures (selfmetrics.h), from a scrape's thread. */
static void cluster_stats(void *ctx, fy_selfstats_cluster_t *out)
{
    fy_cluster_status_t st;
    fy_cluster_status(ctx, &st);
    out->ready = st.ready;
    out->backlog_bytes = st.backlog_bytes;
    out->applied = st.applied;
    out->sent = st.sent;
    out->killed = st.killed;
    out->tombstones = st.tombstones;
    out->refused_no_quorum = st.refused_no_quorum;
    out->timed_out = st.quorum_failures;
    out->resync_full = st.resync_full;
    out->resync_lost_peer = st.resync_lost_peer;
    out->resync_gap = st.resync_delta;
    out->npeers = st.npeers < FY_SELF_MAX_PEERS ? st.npeers : FY_SELF_MAX_PEERS;
    for (size_t i = 0; i < out->npeers; i++) {
        snprintf(out->peers[i].addr, sizeof(out->peers[i].addr), "%s", st.peers[i].addr);
        out->peers[i].connected = st.peers[i].connected;
        out->peers[i].lag_seconds = st.peers[i].lag_seconds;
        out->peers[i].clock_offset_seconds = st.peers[i].clock_offset_seconds;
    }
}

static int cluster_init(fy_app_t *app)
{
    const fy_flags_t *f = app->flags;
    fy_cluster_config_t cc;
    memset(&cc, 0, sizeof(cc));
    cc.listen = f->cluster_listen;
    cc.advertise = f->cluster_advertise;
    cc.peers = f->cluster_peers;
    cc.npeers = f->ncluster_peers;
    cc.label = f->cluster_label;
    cc.quorum = f->cluster_quorum;
    cc.replicas = f->cluster_replicas;
    cc.ack_timeout_ns = f->cluster_ack_timeout_ns;
    cc.peer_timeout_ns = f->cluster_peer_timeout_ns;
    cc.max_offset_ns = f->cluster_max_offset_ns;
    cc.retention_ns = f->cluster_retention_ns;
    cc.durable = f->persistence_durable;
    /* what must agree between replicas, or their stores would differ: the expiry defaults (not the replica count or
     * the quorum, which a rolling restart changes one replica at a time) */
    uint64_t fp[2] = {(uint64_t)f->default_ttl_ns, (uint64_t)f->default_interval_ns};
    cc.fingerprint = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof(fp); i++)
        cc.fingerprint = (cc.fingerprint ^ ((const uint8_t *)fp)[i]) * 1099511628211ULL;
    cc.ctx = app;
    cc.release = cluster_release;
    cc.time_out = cluster_time_out;
    cc.ready = cluster_ready;
    char err[512];
    app->cluster = fy_cluster_create(&cc, &app->core, err, sizeof(err));
    if (app->cluster == NULL) {
        fy_log_error("msg", "invalid cluster configuration", "err", err);
        return -1;
    }
    app->core.lww = 1;
    app->wal.lww = 1;
    app->stats.cluster_ctx = app->cluster;
    app->stats.cluster = cluster_stats;
    return 0;
}

/* Once local loading is done: replication starts, and readiness waits for it to catch up. */
static void cluster_start(fy_app_t *app)
{
    /* not ready (store endpoints 503) until caught up from the peers, with or without a persistence file */
    atomic_store(&app->core.not_ready, "Service Unavailable: catching up from the other replicas");
    if (app->set_ready != NULL)
        app->set_ready(0);
    fy_change_observer_t o = fy_cluster_observer(app->cluster);
    if (fy_core_observe(&app->core, &o) != 0) {
        fy_log_error("msg", "could not observe the change path for replication");
        _exit(1);
    }
    app->core.stamp_ctx = app->cluster;
    app->core.stamp = fy_cluster_stamp;
    char err[512];
    if (fy_cluster_start(app->cluster, err, sizeof(err)) != 0) {
        fy_log_error("msg", "could not start replication", "err", err);
        _exit(1);
    }
    fy_store_stats_t st;
    fy_store_stats(app->store, &st);
    fy_cluster_loaded(app->cluster, app->flags->persistence_durable && st.groups > 0);
}

int fy_app_init(fy_app_t *app, const fy_flags_t *flags, const char *version, const char *revision)
{
    memset(app, 0, sizeof(*app));
    app->flags = flags;
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_groups = flags->max_groups;
    cfg.max_series = flags->max_series;
    cfg.default_ttl_ns = flags->default_ttl_ns;
    cfg.default_interval_ns = flags->default_interval_ns;
    int clustered = flags->cluster_listen != NULL && flags->cluster_listen[0] != '\0';
    cfg.utf8_names = (uint8_t)(flags->enable_utf8_names != 0);
    cfg.lww = (uint8_t)clustered; /* replication merges changes last-writer-wins (docs/ha.md) */
    app->store = fy_store_create(&cfg);
    if (app->store == NULL)
        return -1;
    for (unsigned i = 0; i < fy_own_families_count; i++) {
        const fy_own_family_t *f = &fy_own_families[i];
        if (fy_store_register_own(app->store, fy_str(f->name, strlen(f->name)), f->type, fy_str(f->help, strlen(f->help)),
                                  f->predefined) != FY_OK)
            return -1;
    }
    for (unsigned i = 0; i < 2; i++) {
        const fy_own_family_t *f = &fy_life_own_families[i];
        if (fy_store_register_own(app->store, fy_str(f->name, strlen(f->name)), f->type, fy_str(f->help, strlen(f->help)),
                                  f->predefined) != FY_OK)
            return -1;
    }
    app->nthreads = (unsigned)flags->threads;
    app->arenas = calloc(app->nthreads, sizeof(*app->arenas));
    if (app->arenas == NULL || fy_selfstats_init(&app->stats, app->nthreads, version, revision, FY_BRANCH) != 0)
        return -1;
    fy_push_limits_t limits = {flags->max_series_per_push, flags->max_label_value_length, flags->disable_consistency_check};
    fy_core_init(&app->core, app->store, &limits, &app->stats);
    app->wal.stats = &app->stats;
    if (clustered && cluster_init(app) != 0)
        return -2;
    return 0;
}

void fy_app_dispose(fy_app_t *app)
{
    fy_reaper_stop(&app->reaper);
    if (app->cluster != NULL) {
        fy_cluster_stop(app->cluster);
        fy_cluster_destroy(app->cluster);
    }
    for (unsigned i = 0; i < app->nthreads && app->arenas; i++)
        fy_push_arena_free(&app->arenas[i]);
    free(app->arenas);
    fy_selfstats_dispose(&app->stats);
    fy_core_dispose(&app->core);
    if (app->store != NULL)
        fy_store_destroy(app->store);
    memset(app, 0, sizeof(*app));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer */

static uint64_t expire_pass(void *ctx, int64_t now)
{
    fy_app_t *app = ctx;
    return fy_core_expire(&app->core, now);
}

/* Once the store is loaded (the timer must not run while a log replays: the replay re-applies changes at their own
 * times): drops the groups whose deadline passed while Ferry was down, then starts the timer. */
static void start_expiry(fy_app_t *app)
{
    expire_pass(app, fy_now_ns());
    if (fy_reaper_start(&app->reaper, expire_pass, app) != 0)
        fy_log_error("msg", "could not start the expiry timer thread");
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Durable mode: the log's replay and the observer */

typedef struct {
    fy_app_t *app;
    fy_push_arena_t arena;
    uint64_t changes, bad;
    char *err;
    size_t errlen;
} replay_t;

/* Re-applies one record through the change path, at its own time. A record whose checksum is right but whose
 * content is not is damage too: it stops start-up unless --persistence.allow-bad-file, which skips it. */
static int replay_record(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len)
{
    replay_t *R = ctx;
    fy_record_t rec;
    int bad = fy_record_decode(type, payload, len, &rec) != 0;
    if (!bad) {
        fy_change_result_t res;
        fy_core_apply(&R->app->core, &rec.change, &R->arena, &res);
        /* a push or a delete may be refused as it was the first time; a wipe that ran out of memory or a bulk query
         * that does not parse means the record is not what was applied */
        bad = (type == FY_REC_WIPE && res.status != 202) || (type == FY_REC_BULK && res.status == 400);
        fy_change_result_free(&res);
        R->changes++;
    }
    fy_record_free(&rec);
    if (!bad)
        return 0;
    R->bad++;
    snprintf(R->err, R->errlen, "write-ahead log record %llu (type %u, %zu bytes) cannot be decoded", (unsigned long long)seq, type,
             len);
    if (R->app->flags->persistence_allow_bad) {
        fy_log_error("msg", "skipping a write-ahead log record that cannot be decoded", "err", R->err);
        return 0;
    }
    return -1;
}

/* The log's writer thread has synced everything up to durable_seq, or failed (err). Called with the log's mutex
 * held, so calls never overlap: the first error is seen once. */
static void log_notify(void *ctx, uint64_t durable_seq, int err)
{
    fy_app_t *app = ctx;
    if (err == 0) {
        atomic_store_explicit(&app->stats.wal_sync_ns, fy_now_ns(), memory_order_relaxed);
    } else if (!atomic_load(&app->stats.wal_failed)) {
        atomic_fetch_add_explicit(&app->stats.wal_sync_failures, 1, memory_order_relaxed);
        fy_wal_failed(&app->wal, durable_seq, err);
    }
    if (app->cluster != NULL) {
        /* the tickets are replication's: it waits for the log, and a failure fails every ticket not yet released */
        fy_cluster_local_durable(app->cluster, durable_seq);
        if (err != 0 && app->durable != NULL)
            app->durable(0, err);
        return;
    }
    if (app->durable != NULL)
        app->durable(durable_seq, err);
}

/* Replays the log after the snapshot's wal_seq and opens it for appending. Exits on damage unless
 * --persistence.allow-bad-file. fresh: the snapshot was unreadable and moved aside, so the log (which only makes
 * sense on top of it) is moved aside too and a new one starts. */
static void open_log(fy_app_t *app, int fresh)
{
    const char *path = app->flags->persistence_file;
    char dir[4096], err[1024] = "";
    if (fy_log_dir_for(path, dir, sizeof(dir)) != 0) {
        fy_log_error("msg", "persistence file name too long for the write-ahead log", "file", path);
        _exit(1);
    }
    if (fresh) {
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.bad.%lld", dir, (long long)(fy_now_ns() / 1000000000));
        if (rename(dir, aside) == 0)
            fy_log_error("msg", "moved the write-ahead log aside with the unreadable snapshot", "moved_to", aside);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    replay_t R;
    memset(&R, 0, sizeof(R));
    R.app = app;
    R.err = err;
    R.errlen = sizeof(err);
    fy_log_replay_info_t info;
    memset(&info, 0, sizeof(info));
    uint64_t after = fresh ? 0 : app->persist.wal_seq;
    int rc = fy_log_replay(dir, after, app->flags->persistence_allow_bad ? FY_LOG_REPLAY_SKIP_DAMAGED : 0, replay_record, &R, &info,
                           err, sizeof(err));
    fy_push_arena_free(&R.arena);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
        fy_log_error("msg",
                     "could not replay the write-ahead log; refusing to start (--persistence.allow-bad-file skips "
                     "damaged records)",
                     "dir", dir, "err", err);
        _exit(1);
    }
    char n[5][32];
    if (info.torn) {
        char where[96];
        snprintf(where, sizeof(where), "%s", info.torn_segment);
        snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.torn_offset);
        snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)info.torn_bytes);
        fy_log_warn("msg",
                    "dropped a torn write at the end of the write-ahead log (a crash during a write; that change "
                    "was never acknowledged)",
                    "dir", dir, "segment", where, "offset", n[0], "bytes", n[1]);
    }
    if (info.damaged) {
        snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.damaged);
        snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)info.damaged_bytes);
        fy_log_error("msg", "skipped damaged write-ahead log records (--persistence.allow-bad-file)", "dir", dir, "regions", n[0],
                     "bytes", n[1]);
    }
    snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.records);
    snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)after);
    snprintf(n[2], sizeof(n[2]), "%llu", (unsigned long long)info.last_seq);
    snprintf(n[3], sizeof(n[3]), "%.3f", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fy_log_info("msg", "replayed the write-ahead log", "dir", dir, "records", n[0], "after_seq", n[1], "last_seq", n[2], "seconds",
                n[3]);
    fy_log_t *log;
    if (fy_log_open(dir, info.last_seq + 1, &log, err, sizeof(err)) != 0) {
        fy_log_error("msg", "could not open the write-ahead log", "dir", dir, "err", err);
        _exit(1);
    }
    /* the frontend parks durable requests instead of waiting: the writer syncs and tells it */
    if (app->flags->persistence_durable && fy_log_start_writer(log, log_notify, app) != 0) {
        fy_log_error("msg", "could not start the write-ahead log's writer thread", "err", strerror(errno));
        _exit(1);
    }
    app->persist.log = log;
    app->persist.order = &app->core.order;
    app->wal.log = log;
}

/* Durable mode from here on: every change goes to the log (after the replay, which must not be logged again). */
static void observe_log(fy_app_t *app)
{
    fy_change_observer_t o = fy_wal_observer(&app->wal);
    if (fy_core_observe(&app->core, &o) != 0) {
        fy_log_error("msg", "could not register the write-ahead log with the change path");
        _exit(1);
    }
    atomic_store(&app->stats.wal_enabled, 1); /* the log's self-metrics, from now on */
}

/* Without --persistence.durable, a log left by an earlier durable run (killed before its final snapshot) would be
 * ignored, and replayed over newer state by a later durable run. Instead it is replayed now, folded into a snapshot
 * and removed. */
static void fold_old_log(fy_app_t *app)
{
    char dir[4096], err[1024], file[4400];
    struct stat st;
    if (fy_log_dir_for(app->flags->persistence_file, dir, sizeof(dir)) != 0 || stat(dir, &st) != 0)
        return;
    open_log(app, 0);
    app->wal.log = NULL; /* not an observer in this mode */
    if (fy_persist_write(&app->persist, err, sizeof(err)) != 0) {
        fy_log_error("msg", "could not fold the write-ahead log of a durable run into the snapshot", "dir", dir, "err", err);
        _exit(1);
    }
    fy_log_close(app->persist.log);
    app->persist.log = NULL;
    app->persist.order = NULL;
    DIR *dp = opendir(dir);
    struct dirent *e;
    while (dp != NULL && (e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".wal") == 0 && snprintf(file, sizeof(file), "%s/%s", dir, e->d_name) > 0)
            unlink(file);
    }
    if (dp != NULL)
        closedir(dp);
    if (rmdir(dir) != 0)
        fy_log_warn("msg", "could not remove the write-ahead log directory", "dir", dir, "err", strerror(errno));
    else
        fy_log_info("msg", "folded the write-ahead log of an earlier durable run into the snapshot and removed it", "dir", dir);
}

static void ready(fy_app_t *app)
{
    if (app->cluster != NULL) {
        cluster_start(app);
        return;
    }
    atomic_store(&app->core.ready, 1);
    if (app->set_ready != NULL)
        app->set_ready(1);
}

static void *load_persisted(void *arg)
{
    fy_app_t *app = arg;
    char err[1024];
    const char *path = app->flags->persistence_file;
    int loaded = fy_persist_load(&app->persist, &app->core, path, app->flags->persistence_interval_ns, err, sizeof(err));
    app->persist.stats = &app->stats; /* snapshot health, from the first write on (fy_persist_load clears it) */
    if (loaded != 0) {
        if (!app->flags->persistence_allow_bad) {
            fy_log_error("msg",
                         "could not load persisted metrics; refusing to start with an empty store "
                         "(--persistence.allow-bad-file starts empty and keeps the file aside)",
                         "err", err);
            _exit(1);
        }
        char aside[4096];
        snprintf(aside, sizeof(aside), "%s.bad.%lld", path, (long long)(fy_now_ns() / 1000000000));
        rename(path, aside);
        fy_log_error("msg", "could not load persisted metrics; starting empty", "err", err, "moved_to", aside);
        if (app->cluster != NULL) {
            fy_cluster_drop_local(app->cluster); /* a wipe stamp would spread to the peers and empty them too */
        } else {
            fy_change_t wipe = {.kind = FY_CHANGE_WIPE, .origin = FY_ORIGIN_SNAPSHOT, .now_ns = fy_now_ns()};
            fy_change_result_t res;
            fy_core_apply(&app->core, &wipe, NULL, &res); /* nothing half-loaded stays */
            fy_change_result_free(&res);
        }
        if (app->flags->persistence_durable)
            open_log(app, 1);
    } else if (app->flags->persistence_durable) {
        open_log(app, 0);
    } else {
        fold_old_log(app);
    }
    if (app->flags->persistence_durable)
        observe_log(app);
    fy_change_observer_t snap = {&app->persist, 0, NULL, NULL, snapshot_commit, NULL, 0};
    fy_core_observe(&app->core, &snap);
    char groups[32], secs[32];
    snprintf(groups, sizeof(groups), "%llu", (unsigned long long)app->persist.loaded_groups);
    snprintf(secs, sizeof(secs), "%.3f", app->persist.load_seconds);
    fy_log_info("msg", "loaded persisted metrics", "file", path, "groups", groups, "seconds", secs);
    app->stats.persist_load_seconds = app->persist.load_seconds;
    app->stats.persist_loaded_groups = app->persist.loaded_groups;
    atomic_store(&app->stats.persist_enabled, 1);
    if (fy_persist_start(&app->persist) != 0)
        fy_log_error("msg", "could not start the persistence thread");
    start_expiry(app);
    ready(app);
    return NULL;
}

int fy_app_start(fy_app_t *app)
{
    if (app->flags->persistence_file == NULL || app->flags->persistence_file[0] == '\0') {
        start_expiry(app);
        ready(app);
        return 0;
    }
    app->persist_on = 1;
    if (app->set_ready != NULL)
        app->set_ready(0);
    return pthread_create(&app->loader, NULL, load_persisted, app) == 0 ? 0 : -1;
}

/* Both /-/healthy and /-/ready, not only readiness: the log cannot recover in-process and a restart is what recovers
 * it, losing nothing acknowledged (docs/persistence.md, "When the write-ahead log fails"). */
const char *fy_app_unhealthy(fy_app_t *app)
{
    return atomic_load(&app->stats.wal_failed) ? app->wal.reason : NULL;
}

void fy_app_stop(fy_app_t *app)
{
    if (!app->persist_on) {
        fy_reaper_stop(&app->reaper);
        return;
    }
    pthread_join(app->loader, NULL);
    fy_reaper_stop(&app->reaper);   /* after the loader, which starts it */
    fy_persist_stop(&app->persist); /* in durable mode the final snapshot truncates the log */
    if (app->wal.log != NULL && fy_log_close(app->wal.log) != 0)
        fy_log_error("msg", "could not close the write-ahead log", "err", strerror(errno));
    app->wal.log = NULL;
}
