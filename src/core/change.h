/*
 * change.h: the one path every change of the store takes.
 *
 * A change (a push, a delete, a wipe, a bulk delete, an expiry, or a group restored from a snapshot or a Pushgateway
 * file) is described by an fy_change_t, which carries everything needed to apply it again anywhere: its grouping key,
 * method, body, time stamp, origin and declared lifetime. fy_core_apply admits it (readiness, the observers' vetoes,
 * the per-push limits), applies it to the store, and hands it, in store order, to the observers that need it: the
 * write-ahead log today, replication next. HTTP handlers, the log's replay and the snapshot loader are all callers of
 * fy_core_apply; the expiry timer is a caller of fy_core_expire. Nothing here knows HTTP.
 *
 * Threads and locks: fy_core_apply runs on any thread (loop threads, the loader, the expiry timer). When an observer
 * is ordered (it must see changes in the order the store applied them: a log, a replication stream), the core holds
 * its order lock around [apply to the store + every observer's commit]; the store's own locks nest inside it (order
 * lock, then shard, then stripe). Observers' prepare steps run before the lock, so the expensive part of handing a
 * change on (copying a body into a log record) does not serialise the pushes.
 */
#ifndef FY_CHANGE_H
#define FY_CHANGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "push.h"
#include "selfmetrics.h"
#include "store.h"

typedef enum en_fy_change_kind_t {
    FY_CHANGE_PUSH = 1,    /* PUT or POST of a body to one group */
    FY_CHANGE_DELETE = 2,  /* one group */
    FY_CHANGE_WIPE = 3,    /* every group */
    FY_CHANGE_BULK = 4,    /* the groups a bulk-delete query selects at the change's time */
    FY_CHANGE_EXPIRE = 5,  /* one group whose deadline had passed (the store's expiry; observers only) */
    FY_CHANGE_RESTORE = 6, /* one group as a snapshot or a Pushgateway file holds it: families and their times */
    /* Replication only (store in last-writer-wins mode, docs/ha.md): */
    FY_CHANGE_FAIL = 7, /* a push that the replica which took it rejected: the group's failure time, nothing else */
    FY_CHANGE_KILL = 8, /* one family instance of one group that lost a conflict (family, stamped now_ns) */
    /* every group, tombstone and kill forgotten, without a trace: a replica's state older than the tombstone
     * retention, which its peers' state replaces (docs/ha.md). Logged, so that a replay forgets it too; never shipped,
     * and never refused by an observer (it only forgets) */
    FY_CHANGE_DROP = 9,
} fy_change_kind_t;

typedef enum en_fy_change_origin_t {
    FY_ORIGIN_CLIENT = 0, /* an HTTP request */
    FY_ORIGIN_REPLAY,     /* the write-ahead log, at start-up */
    FY_ORIGIN_SNAPSHOT,   /* the persistence file (Ferry's snapshot or a Pushgateway file), at start-up */
    FY_ORIGIN_TIMER,      /* the expiry timer */
    FY_ORIGIN_PEER,       /* another replica took it (merge is set) */
    FY_ORIGIN_CLUSTER,    /* this replica's cluster made it (a kill); handed on like a client's */
} fy_change_origin_t;

/* A group restored as it was saved (FY_CHANGE_RESTORE). */
typedef struct st_fy_change_restore_t {
    const fy_body_t *families; /* parsed; PUT as the group's content */
    fy_store_times_t times;    /* push and failure times, origin, lifetime */
    const fy_str_t *names;     /* each family's name and the time it was last written */
    const int64_t *stamps;
    size_t nstamps;
} fy_change_restore_t;

typedef struct st_fy_change_t {
    fy_change_kind_t kind;
    fy_change_origin_t origin;
    int64_t now_ns;                 /* when the change was accepted: push_time_seconds and the like come from it */
    const fy_store_label_t *labels; /* push, delete, expire, restore: the grouping key */
    size_t nlabels;
    int post;                /* push: POST (replace only the pushed families) rather than PUT */
    fy_body_format_t format; /* push */
    const char *body;        /* push: the decoded body; bulk: the query string of the request */
    size_t body_len;
    const fy_store_life_t *life; /* push: the declared lifetime (X-Ferry-TTL, X-Ferry-Interval), NULL if none */
    const fy_change_restore_t *restore;
    fy_str_t family; /* kill: the family's name */
    /* Apply as a replicated change (a peer's, or this replica's own when replayed): last-writer-wins at now_ns, no
     * verdict and no limits (they were applied by the replica that took it); families that conflict with the store
     * are dropped and listed in the result's effects. */
    int merge;
} fy_change_t;

/* What became of a change. msg is without the trailing newline; it points into buf (owned, fy_change_result_free)
 * or is static. */
typedef struct st_fy_change_result_t {
    int status;      /* 200 (202 with the consistency check off) for pushes, 202 for deletes and wipes, 200 for bulk
                      * deletes; 400, 429 (a store limit), 500 (out of memory, not persisted), 503 (not ready) */
    const char *msg; /* NUL-terminated too */
    size_t msg_len;
    char *buf;
    int limit;         /* -1, or the fy_limit_t that refused a push */
    int log_failure;   /* a push the reference logs at error level (invalid or inconsistent) */
    int applied;       /* the store was asked (not refused at admission) */
    int not_persisted; /* 500 because an observer refused it or could not take it; why says why */
    const char *why;   /* static or the observer's; valid while the core lives */
    uint64_t seq;      /* > 0: acknowledge only once fy_core_durable(seq) (the ordered observer's sequence number) */
    uint64_t deleted;  /* bulk: groups deleted */
    int failure;       /* push: refused, and the group's failure time was recorded */
    /* With a last-writer-wins store only, what the change did that replication must hand on: FY_EFFECT_* entries,
     * each u8 kind | u32 len | bytes (a dropped family's name; a deleted group's labels as record.h encodes them).
     * Owned (fy_change_result_free). */
    uint8_t *effects;
    size_t effects_len;
} fy_change_result_t;

enum { FY_EFFECT_DROPPED = 1, FY_EFFECT_DELETED = 2 };

void fy_change_result_free(fy_change_result_t *r);

/** Appends an effect to r (aborts when out of memory: replication that lost one would diverge). */
void fy_change_effect_add(fy_change_result_t *r, unsigned kind, const void *p, size_t n);

/** The next effect of r from *off (start at 0): 1 with its kind and bytes, 0 after the last. */
int fy_effect_next(const fy_change_result_t *r, size_t *off, unsigned *kind, fy_str_t *bytes);

/** A FY_EFFECT_DELETED entry's grouping labels (pointing into bytes), at most max. Returns the count. */
size_t fy_effect_labels(fy_str_t bytes, fy_store_label_t *out, size_t max);

/* Something that needs every change: the write-ahead log, replication. */
typedef struct st_fy_change_observer_t {
    void *ctx;
    int ordered; /* commit must see changes in store order (under the core's order lock) */
    /* Before anything is applied to a client's change: a reason to refuse every change (e.g. the log has failed), or
     * NULL. May be NULL. The answer is 500 "could not persist", or refuse_status with the reason as it is. */
    const char *(*refuses)(void *ctx);
    /* Outside the order lock, before the store applies c: the expensive part. Returns 0 with *state (may be NULL)
     * for commit, or -1 when out of memory (the change is refused with 500). May be NULL. */
    int (*prepare)(void *ctx, const fy_change_t *c, void **state);
    /* Right after the store applied c (under the order lock when ordered). changed: the store changed (a refused push
     * still changed the group's failure time); r: what became of it (NULL for an expiry). Frees state. Returns 0
     * with *seq (0: nothing to wait for), or a reason (static or owned by the observer) why the change could not be
     * handed on. */
    const char *(*commit)(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state, uint64_t *seq);
    /* Waits until seq is durable: 0, or a reason. NULL when commit never returns a seq. */
    const char *(*wait)(void *ctx, uint64_t seq);
    int refuse_status; /* 0: 500 (not persisted); else the status of a refusal (503: another replica may take it) */
    /* The tickets of the last observer that gives sequence numbers are the result's seq (replication's, which
     * waits for the log's own). */
} fy_change_observer_t;

#define FY_CORE_MAX_OBSERVERS 4

typedef struct st_fy_core_t {
    fy_store_t *store;
    fy_push_limits_t limits;
    fy_selfstats_t *stats; /* limit rejections (may be NULL) */
    fy_change_observer_t observers[FY_CORE_MAX_OBSERVERS];
    _Atomic size_t nobservers;       /* set before the changes they must see; never shrinks */
    pthread_mutex_t order;           /* around [apply + ordered commits]; before the store's locks */
    _Atomic int ready;               /* client changes get 503 until start-up loading is done */
    _Atomic(const char *) not_ready; /* the 503's message (static; NULL: loading persisted metrics); any thread */
    /* Replication: the clock of changes made here (client and cluster origins), read under the order lock so that
     * stamps rise in store order; NULL: the caller's now_ns stands. */
    int64_t (*stamp)(void *ctx, int64_t now_ns);
    void *stamp_ctx;
    int lww; /* the store is in last-writer-wins mode (replication) */
} fy_core_t;

void fy_core_init(fy_core_t *core, fy_store_t *store, const fy_push_limits_t *limits, fy_selfstats_t *stats);
void fy_core_dispose(fy_core_t *core);

/** Adds an observer: every change applied after this returns is handed to it. Returns 0, -1 when full. */
int fy_core_observe(fy_core_t *core, const fy_change_observer_t *o);

/**
 * Admits, applies and hands on one change. arena: the calling thread's parser arena (pushes). Always fills r (free
 * with fy_change_result_free). FY_CHANGE_EXPIRE is not applied this way (fy_core_expire).
 */
void fy_core_apply(fy_core_t *core, const fy_change_t *c, fy_push_arena_t *arena, fy_change_result_t *r);

/** Waits until r->seq is durable (for callers that cannot park their request). 0, or a reason. */
const char *fy_core_wait(fy_core_t *core, uint64_t seq);

/** Deletes every group whose deadline is at or before now; each is handed to the observers as FY_CHANGE_EXPIRE.
 * Returns the number deleted. */
uint64_t fy_core_expire(fy_core_t *core, int64_t now_ns);

/** The 503 message while not ready (never NULL). */
const char *fy_core_not_ready(fy_core_t *core);

/** Holds the order lock, so that no change is applied or handed on meanwhile (a snapshot's cut). */
void fy_core_pause(fy_core_t *core);
void fy_core_resume(fy_core_t *core);

#endif
