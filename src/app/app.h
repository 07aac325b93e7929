/*
 * app.h: the application behind the HTTP frontend: the store, the change path (change.h) and its observers (the
 * write-ahead log, the snapshot's change counter), persistence at start-up and shutdown, the expiry timer and the
 * self-metrics. No HTTP here: the frontend reaches it through the change path and the store's renderers, and is
 * told about readiness and durable changes through the two callbacks below.
 *
 * Threads: init, start and dispose on the main thread; the loader thread loads the persistence file (snapshot, then
 * the log's replay, both through fy_core_apply) while the frontend already answers 503; the expiry timer and the
 * log's writer have threads of their own.
 */
#ifndef FY_APP_H
#define FY_APP_H

#include <pthread.h>

#include "life.h"
#include "reaper.h"
#include "change.h"
#include "cluster.h"
#include "flags.h"
#include "persist.h"
#include "persist_wal.h"
#include "push.h"
#include "selfmetrics.h"
#include "store.h"

typedef struct st_fy_app_t {
    fy_store_t *store;
    fy_core_t core;
    fy_selfstats_t stats;
    const fy_flags_t *flags;
    fy_push_arena_t *arenas; /* one per loop thread, indexed by the loop's index */
    unsigned nthreads;
    fy_persist_t persist; /* valid iff persist_on */
    int persist_on;
    pthread_t loader;   /* loads the persistence file while the frontend answers /-/ready with 503 */
    fy_wal_t wal;       /* durable mode: wal.log is set once start-up has replayed the log */
    fy_reaper_t reaper; /* the expiry timer, started once the store is loaded */
    /* set by the caller before fy_app_start: readiness (after loading) and durable sequence numbers (the log's
     * writer thread, with the log's mutex held: calls never overlap) */
    void (*set_ready)(int ready);
    void (*durable)(uint64_t upto, int err);
    void (*time_out)(uint64_t late); /* replication: tickets up to late fail (no write quorum in time) */
    fy_cluster_t *cluster;           /* --cluster.listen-address: replication (docs/ha.md), else NULL */
} fy_app_t;

/** Creates the store (with the own families registered), the change path, the self-metrics and, with
 * --cluster.listen-address, replication. 0; -1 when out of memory; -2 for a cluster configuration error (logged). */
int fy_app_init(fy_app_t *app, const fy_flags_t *flags, const char *version, const char *revision);
void fy_app_dispose(fy_app_t *app);

/** With --persistence.file: loads it in a background thread (set_ready(0) until it is done), then starts the
 * periodic snapshots. A file that cannot be read stops the process with exit status 1, unless
 * --persistence.allow-bad-file (then it is moved aside and Ferry starts empty). Without it: ready at once. Starts the
 * expiry timer once the store is loaded. Returns 0 or -1. */
int fy_app_start(fy_app_t *app);

/** After the frontend has stopped: the final snapshot, the log closed, the timer stopped. */
void fy_app_stop(fy_app_t *app);

/** NULL when healthy, else why not (the write-ahead log has failed). */
const char *fy_app_unhealthy(fy_app_t *app);

/** The parser arena of loop thread t (t < 0: the first one). */
fy_push_arena_t *fy_app_arena(fy_app_t *app, int t);

/** CLOCK_REALTIME in nanoseconds. */
int64_t fy_now_ns(void);

#endif
