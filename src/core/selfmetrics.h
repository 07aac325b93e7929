/*
 * selfmetrics.h: the gateway's own metrics, under the Pushgateway's names so that dashboards keep working:
 * process_*, pushgateway_build_info, pushgateway_http_requests_total, pushgateway_http_push_duration_seconds and
 * pushgateway_http_push_size_bytes, plus Ferry's own ferry_* families.
 *
 * Recording is per loop thread (each thread owns one fy_selfstats_thread_t and is its only writer); a scrape sums
 * the threads. Counters are relaxed atomics so a scrape may read them while threads write; the summaries' sample
 * rings are guarded by a per-thread mutex that only the owner thread and scrapes take.
 *
 * A scrape collects everything into an fy_body_t (parser/fy_model.h) so that the store renders own and pushed
 * families with the same code in every format.
 */
#ifndef FY_SELFMETRICS_H
#define FY_SELFMETRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fy_parse.h"

/* The handler label of pushgateway_http_requests_total (spec 2.5). */
typedef enum en_fy_stat_handler_t {
    FY_SH_PUSH,
    FY_SH_DELETE,
    FY_SH_HEALTHY,
    FY_SH_READY,
    FY_SH_STATIC,
    FY_SH_STATUS,
    FY_SH_API_METRICS,
    FY_SH_API_STATUS,
    FY_SH_API_OPTIONS,
    FY_SH_WIPE,
    FY_SH__COUNT
} fy_stat_handler_t;

/* The method label: lower-case for the methods Go's promhttp knows, "unknown" otherwise. */
typedef enum en_fy_method_t {
    FY_M_GET,
    FY_M_PUT,
    FY_M_HEAD,
    FY_M_POST,
    FY_M_DELETE,
    FY_M_CONNECT,
    FY_M_OPTIONS,
    FY_M_NOTIFY,
    FY_M_TRACE,
    FY_M_PATCH,
    FY_M_UNKNOWN,
    FY_M__COUNT
} fy_method_t;

#define FY_SELF_CODES 24                           /* distinct status codes tracked per thread; more fold into the last slot */
#define FY_SELF_RING 2048                          /* observations kept per summary and thread for the quantiles */
#define FY_SELF_WINDOW_NS (600ull * 1000000000ull) /* client_golang's default MaxAge: 10 minutes */

typedef struct st_fy_selfstats_ring_t {
    double v[FY_SELF_RING];
    int64_t at[FY_SELF_RING]; /* observation time, ns */
    uint32_t next;
    uint32_t n;
    double sum;
    uint64_t count;
} fy_selfstats_ring_t;

typedef struct st_fy_selfstats_thread_t {
    int codes[FY_SELF_CODES]; /* written by the owner thread only, before the matching counter is first bumped */
    _Atomic int ncodes;
    _Atomic uint64_t requests[FY_SELF_CODES][FY_SH__COUNT][FY_M__COUNT];
    pthread_mutex_t lock;                 /* guards the rings: owner thread and scrapes */
    fy_selfstats_ring_t push_duration[2]; /* [0] = put, [1] = post */
    fy_selfstats_ring_t push_size[2];
} fy_selfstats_thread_t;

struct st_fy_selfstats_cluster_t;

typedef struct st_fy_selfstats_t {
    fy_selfstats_thread_t *threads;
    unsigned nthreads;
    double start_time_seconds;
    const char *version, *revision, *branch;
    /* Persistence, set once after start-up loading (persist_enabled = 0: not exposed). */
    _Atomic int persist_enabled;
    double persist_load_seconds;
    uint64_t persist_loaded_groups;
    /* Durable mode's write-ahead log (wal_enabled = 0: not exposed, so the default output is unchanged). wal_failed
     * goes to 1 when a write or sync of the log fails and stays there (the log cannot recover, see
     * docs/persistence.md); wal_errors counts the changes answered 500 because the log could not make them durable. */
    _Atomic int wal_enabled;
    _Atomic int wal_failed;
    _Atomic uint64_t wal_errors;
    /* Persistence health, for alerts (docs/persistence.md): the wall-clock time (ns since the epoch, 0 = never) when
     * the snapshot last held every change (written, or an interval with nothing new) and of the log's last successful
     * sync; the failed snapshot writes and the failed log writes or syncs. Shown with persist_enabled and
     * wal_enabled respectively. */
    _Atomic int64_t snap_ok_ns;
    _Atomic uint64_t snap_failures;
    _Atomic int64_t wal_sync_ns;
    _Atomic uint64_t wal_sync_failures;
    /* --web.config.file's loads (config_enabled = 0: no such file, not exposed): the outcome of the last one (start-up
     * or reload) and when the last successful one was. Written by the thread that reloads; the time first. */
    _Atomic int config_enabled;
    _Atomic int config_ok;
    _Atomic double config_ok_time; /* seconds since the epoch */
    /* Ferry's own counters (shared by all threads, relaxed atomics). */
    _Atomic uint64_t limit_rejections[8];
    _Atomic uint64_t http_rejections[8]; /* fy_http_reject_t: requests the connection guard answered itself */
    _Atomic uint64_t accept_errors[4];   /* fy_accept_error_t */
    _Atomic uint64_t auth_checks[4];     /* fy_auth_check_t */
    /* request bytes buffered by the connections (set by the server before its loops start; NULL: not exposed) */
    uint64_t (*inflight_bytes)(void);
    /* replication's figures (set before start-up when clustered; NULL: not exposed) */
    void (*cluster)(void *ctx, struct st_fy_selfstats_cluster_t *out);
    void *cluster_ctx;
} fy_selfstats_t;

/* What replication reports for the ferry_cluster_* families (docs/ha.md, "Observability"). */
#define FY_SELF_MAX_PEERS 16
typedef struct st_fy_selfstats_cluster_t {
    int ready;
    uint64_t backlog_bytes, applied, sent, killed, tombstones;
    uint64_t refused_no_quorum, timed_out;
    uint64_t resync_full, resync_lost_peer, resync_gap;
    size_t npeers;
    struct {
        char addr[128];
        int connected;
        double lag_seconds, clock_offset_seconds;
    } peers[FY_SELF_MAX_PEERS];
} fy_selfstats_cluster_t;

/* ferry_http_rejections_total{reason=...}; keep in sync with http_reject_names in selfmetrics.c. */
typedef enum en_fy_http_reject_t {
    FY_REJECT_HEADER_FIELDS,
    FY_REJECT_HEADER_BYTES,
    FY_REJECT_URI_BYTES,
    FY_REJECT_HEADER_TIMEOUT,
    FY_REJECT_IDLE_TIMEOUT,
    FY_REJECT_READ_TIMEOUT,
    FY_REJECT_INFLIGHT,
    FY_REJECT_AUTH_BUSY,
    FY_REJECT__COUNT
} fy_http_reject_t;

/* ferry_http_accept_errors_total{error=...}: accept(2) failures that pause the listener. */
typedef enum en_fy_accept_error_t {
    FY_ACCEPT_EMFILE,
    FY_ACCEPT_ENFILE,
    FY_ACCEPT_ENOBUFS,
    FY_ACCEPT_OTHER,
    FY_ACCEPT__COUNT
} fy_accept_error_t;

/* ferry_auth_checks_total{result=...}: basic-auth decisions, from the caches or from a password hash. */
typedef enum en_fy_auth_check_t {
    FY_AUTHC_CACHED_ALLOW,
    FY_AUTHC_CACHED_DENY,
    FY_AUTHC_HASHED_ALLOW,
    FY_AUTHC_HASHED_DENY,
    FY_AUTHC__COUNT
} fy_auth_check_t;

/* Limits named in ferry_limit_rejections_total{limit=...}; keep in sync with limit_names in selfmetrics.c. */
typedef enum en_fy_limit_t {
    FY_LIMIT_BODY_BYTES,
    FY_LIMIT_SERIES_PER_PUSH,
    FY_LIMIT_LABEL_VALUE_LENGTH,
    FY_LIMIT_STORE_SERIES,
    FY_LIMIT_STORE_GROUPS,
    FY_LIMIT__COUNT
} fy_limit_t;

int fy_selfstats_init(fy_selfstats_t *s, unsigned nthreads, const char *version, const char *revision, const char *branch);
void fy_selfstats_dispose(fy_selfstats_t *s);

fy_method_t fy_method_from(const char *m, size_t n);

/** Called by thread t after a counted request finished (spec 2.5: not for scrapes, redirects, 404/405s...). */
void fy_selfstats_request(fy_selfstats_t *s, unsigned t, int code, fy_stat_handler_t h, fy_method_t m);

/** Called by thread t after a PUT/POST push (any outcome): duration in seconds, approximate request size. */
void fy_selfstats_push(fy_selfstats_t *s, unsigned t, int is_post, double seconds, double size, int64_t now_ns);

void fy_selfstats_limit(fy_selfstats_t *s, fy_limit_t which);

/** A load of --web.config.file (at start-up or a reload) succeeded (ok = 1) or was refused (0), at now (seconds since
 * the epoch); exposes the ferry_config_* families from then on. */
void fy_selfstats_config_reload(fy_selfstats_t *s, int ok, double now);

/** A change answered 500 because the write-ahead log could not make it durable (any thread). */
void fy_selfstats_wal_error(fy_selfstats_t *s);

/**
 * Builds the own families, sorted by name, series in exposition order, into *body (arrays from arena; strings
 * live in the arena too). store_groups/store_series feed ferry_store_*; pass UINT64_MAX to omit them.
 * Returns 0, or -1 when the arena is too small (256 KiB suffices for a few hundred request counters; every
 * code x handler x method combination needs about 656 KiB): grow it and call again.
 */
int fy_selfstats_collect(fy_selfstats_t *s, fy_arena_t *arena, int64_t now_ns, uint64_t store_groups, uint64_t store_series,
                         fy_body_t *body);

/* The own families a push may collide with: name, type, HELP and whether the Pushgateway treats the HELP as
 * "predefined" (present in its startup snapshot: a pushed family with another HELP is re-labelled with ours rather
 * than rejected; spec 1.3, 7.2). */
typedef struct st_fy_own_family_t {
    const char *name;
    fy_type_t type;
    const char *help;
    int predefined;
} fy_own_family_t;

extern const fy_own_family_t fy_own_families[];
extern const unsigned fy_own_families_count;

#endif
