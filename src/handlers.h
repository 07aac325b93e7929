/*
 * handlers.h: the application behind the server's seam: the store, the self-metrics, and the handlers that use
 * them (push, delete, wipe, scrape, /api/v1/metrics, web UI).
 */
#ifndef FY_HANDLERS_H
#define FY_HANDLERS_H

#include "flags.h"
#include "persist.h"
#include "push.h"
#include "selfmetrics.h"
#include "server.h"
#include "store.h"
#include "beyond.h"
#include "ui.h"

typedef struct st_fy_app_t {
    fy_store_t *store;
    fy_selfstats_t stats;
    const fy_flags_t *flags;
    fy_push_limits_t limits;
    fy_push_arena_t *arenas; /* one per loop thread, indexed by fy_server_thread_index() */
    unsigned nthreads;
    fy_ui_opts_t ui;         /* page-independent UI options */
    fy_ui_kv_t *ui_flags_owned, *ui_build_owned;
    fy_persist_t persist;    /* valid iff persist_on */
    int persist_on;
    pthread_t loader;        /* loads the persistence file while the server already answers /-/ready with 503 */
    /* --persistence.durable: log is non-NULL once start-up has replayed it. order is held around [apply to the
     * store + fy_log_submit], so records replay in the order the store applied them; fy_log_wait runs outside it,
     * so concurrent requests share fdatasyncs. */
    struct st_fy_log_t *log;
    pthread_mutex_t order;
    /* why the log failed, for /-/ready, /-/healthy and the 500s: written once by the writer thread's notify, before
     * stats.wal_failed is set; read only after seeing that flag */
    char wal_reason[4600];
    fy_reaper_t reaper; /* the expiry timer, started once the store is loaded */
    int64_t expire_now; /* the time of the running expiry pass (timer thread only) */
} fy_app_t;

/** With --persistence.file: loads it in a background thread (the server answers 503 on /-/ready and on store-backed
 * endpoints until it is done), then starts the periodic snapshots. A file that cannot be read stops the process with
 * exit status 1, unless --persistence.allow-bad-file (then it is moved aside and Ferry starts empty). Without the
 * flag set: ready at once. */
int fy_app_start_persistence(fy_app_t *app);

/** Creates the store (with the own families registered) and the self-metrics. Returns 0 or -1. */
int fy_app_init(fy_app_t *app, const fy_flags_t *flags, const char *version, const char *revision, const char *start_time);
void fy_app_dispose(fy_app_t *app);

/** The handler table for fy_server_run. */
fy_handlers_t fy_app_handlers(fy_app_t *app);

/** Deletes every group (PUT /api/v1/admin/wipe). Returns 0, or -1 when out of memory. */
int fy_app_wipe(fy_app_t *app);

#endif
