/*
 * persist_wal.h: durable mode's write-ahead log as an observer of the change path (change.h): each change that
 * changed the store is encoded (record.h) before the core's order lock and submitted to the log (persist_log.h) in
 * store order; the caller acknowledges it once the returned sequence number is durable.
 *
 * Once a write or sync of the log fails, the log cannot recover in-process (docs/persistence.md, "When the
 * write-ahead log fails"): the observer then refuses every change before it touches the store, with the reason.
 *
 * Threads: prepare on the applying thread; commit under the core's order lock; fy_wal_failed on the log's writer
 * thread (its notify callback), once.
 */
#ifndef FY_PERSIST_WAL_H
#define FY_PERSIST_WAL_H

#include <stdint.h>

#include "change.h"
#include "persist_log.h"
#include "selfmetrics.h"

typedef struct st_fy_wal_t {
    fy_log_t *log;
    fy_selfstats_t *stats; /* wal_failed (the flag readers check), the reason below written before it is set */
    int lww;               /* replication: records carry the stamp taken under the order lock, pushes what they did */
    char reason[4600];
} fy_wal_t;

/** The observer for fy_core_observe. */
fy_change_observer_t fy_wal_observer(fy_wal_t *w);

/** Why a change could not be made durable: once the log has failed, the failure itself rather than the EIO every
 * later call gets, which would tell the client nothing. */
const char *fy_wal_why(fy_wal_t *w, int err);

/** The log has just failed (the writer's first notify with an error): keeps the reason, logs it once, raises
 * ferry_persistence_log_failed. */
void fy_wal_failed(fy_wal_t *w, uint64_t durable_seq, int err);

#endif
