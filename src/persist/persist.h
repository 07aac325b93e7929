/*
 * persist.h: --persistence.file and --persistence.interval with the Pushgateway's meaning: the whole store is written
 * as a snapshot at most once per interval after a change, and once more at shutdown; it is loaded at start-up.
 * The snapshot file is Ferry's own (src/persist_snap.h: temp file, fsync, rename, directory fsync, checksums); a
 * Pushgateway 1.5.1 persistence file (Go gob) is imported instead when that is what the path holds.
 *
 * One record per group: the grouping labels, the group's times, and each family as an encoded
 * io.prometheus.client.MetricFamily with the time it was last written.
 *
 * Threads: fy_persist_load runs once, before pushes are accepted; the snapshot thread is the only writer of the file;
 * handlers only bump the change counter (an atomic).
 */
#ifndef FY_PERSIST_H
#define FY_PERSIST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "change.h"
#include "store.h"

typedef struct st_fy_persist_t {
    fy_core_t *core;   /* groups are restored through its change path */
    fy_store_t *store; /* core->store, which snapshots read */
    const char *path;
    int64_t interval_ns;
    _Atomic uint64_t changes; /* bumped by every write request */
    uint64_t saved_changes;   /* changes covered by the last snapshot (snapshot thread only) */
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop and the condition */
    pthread_cond_t cond;
    int stop, running;
    /* durable mode (set by the caller after fy_persist_load, before fy_persist_start): each snapshot takes the last
     * submitted sequence number under order (the lock that orders store changes with their log records), rotates
     * the log, is written with that wal_seq, and then truncates the log before it */
    struct st_fy_log_t *log;
    pthread_mutex_t *order;
    /* what start-up found, for the log and the self-metrics */
    uint64_t wal_seq; /* the loaded snapshot's wal_seq: replay the log after it */
    uint64_t loaded_groups;
    double load_seconds;
    fy_selfstats_t *stats; /* NULL, or where snapshot successes and failures are recorded (set after loading) */
} fy_persist_t;

/** Removes leftover temp files, then loads the file into the store, each group as an FY_CHANGE_RESTORE through
 * core's change path (a missing file is an empty start). Returns 0, or -1 with a message naming the file and the
 * offset in err. */
int fy_persist_load(fy_persist_t *p, fy_core_t *core, const char *path, int64_t interval_ns, char *err, size_t errlen);

/** Starts the snapshot thread. */
int fy_persist_start(fy_persist_t *p);

/** Records that the store changed (a push, failed push, delete or wipe). */
static inline void fy_persist_changed(fy_persist_t *p)
{
    if (p != NULL && p->path != NULL)
        atomic_fetch_add_explicit(&p->changes, 1, memory_order_relaxed);
}

/** Writes a snapshot now. Returns 0, or -1 with the reason in err. */
int fy_persist_write(fy_persist_t *p, char *err, size_t errlen);

/** Stops the snapshot thread and writes the final snapshot (shutdown). Returns 0 or -1 (logged). */
int fy_persist_stop(fy_persist_t *p);

#endif
