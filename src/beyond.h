/*
 * beyond.h: what Ferry adds to the Pushgateway's model of a group (docs/beyond-pushgateway.md), on the server side:
 * the X-Ferry-TTL / X-Ferry-Interval header values, the liveness families rendered at scrape time, the label
 * matchers and age limit of the admin bulk delete, and the expiry timer thread. The store keeps the per-group state
 * (store.h: fy_store_push_life, fy_store_expire, fy_store_foreach_life, fy_store_delete_where).
 */
#ifndef FY_BEYOND_H
#define FY_BEYOND_H

#include <pthread.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "selfmetrics.h"
#include "store.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* Header values. */

#define FY_TTL_HEADER "x-ferry-ttl"
#define FY_INTERVAL_HEADER "x-ferry-interval"

/**
 * Parses a lifetime header value (Go duration syntax: "30s", "15m", "1h30m"; "0" or "0s" = explicitly none) into
 * fy_store_life_t's encoding (> 0, or FY_LIFE_NONE). Returns 0, or -1 with err set to the whole 400 message, which
 * names the header and the value ("invalid X-Ferry-TTL header \"abc\": time: invalid duration \"abc\"").
 */
int fy_life_parse_header(const char *header, const char *v, size_t len, int64_t *out, char *err, size_t errcap);

/* ------------------------------------------------------------------------------------------------------------- */
/* Liveness families. */

/* The families built at scrape time for groups with a TTL or an expected interval in effect (all gauges). Their
 * values depend on the time of the scrape, so they are not part of any group's stored families. */
#define FY_LIFE_EXPIRY_FAMILY "push_expiry_time_seconds"
#define FY_LIFE_INTERVAL_FAMILY "push_interval_seconds"
#define FY_LIFE_ALIVE_FAMILY "push_alive"

/* The two counters fy_life_collect adds (registered as own families at start-up, like selfmetrics.h's). */
extern const fy_own_family_t fy_life_own_families[2];

typedef struct st_fy_life_body_t {
    fy_body_t body; /* own families (as given) plus the liveness families */
    void *mem[6];   /* malloc'd; freed by fy_life_body_free */
} fy_life_body_t;

/**
 * Builds out->body: the families of `own` (may be NULL), the counters ferry_groups_expired_total and
 * ferry_groups_bulk_deleted_total, and the liveness families of every group the store has with a TTL or an interval
 * in effect. A group with an interval is alive (push_alive 1) while now_ns - its push time <= interval + grace_ns.
 * Returns 0, or -1 when out of memory (out->body is then *own).
 */
int fy_life_collect(fy_store_t *store, const fy_body_t *own, int64_t now_ns, int64_t grace_ns, fy_life_body_t *out);
void fy_life_body_free(fy_life_body_t *b);

/* ------------------------------------------------------------------------------------------------------------- */
/* Bulk delete selection: DELETE /api/v1/admin/groups?match[]={job="backup"}&older_than=1h. */

typedef enum en_fy_match_op_t { FY_MATCH_EQ, FY_MATCH_NE, FY_MATCH_RE, FY_MATCH_NRE } fy_match_op_t;

typedef struct st_fy_matcher_t {
    char *name, *value; /* malloc'd, NUL-terminated (value unescaped) */
    fy_match_op_t op;
    regex_t re; /* valid for FY_MATCH_RE/NRE: POSIX ERE of value, anchored at both ends */
} fy_matcher_t;

typedef struct st_fy_selector_t {
    fy_matcher_t *m; /* all must match */
    size_t n;
} fy_selector_t;

typedef struct st_fy_bulk_t {
    fy_selector_t *sel; /* a group matches if any selector matches (none given: every group) */
    size_t nsel;
    int64_t older_than_ns; /* > 0: only groups whose last push is older than now - this */
    int64_t now_ns;
} fy_bulk_t;

/**
 * Parses the query string (without '?'; URL-encoded) into b: repeatable match[] selectors and older_than (a Go
 * duration). At least one of them is required. Returns 0, or -1 with err (the 400 message). b must be zeroed; free
 * it with fy_bulk_free in either case.
 */
int fy_bulk_parse_query(fy_bulk_t *b, const char *query, size_t len, char *err, size_t errcap);

/** Parses one selector ("{job=\"a\",env=~\"prod.*\"}") and appends it to b. Returns 0, or -1 with err. */
int fy_bulk_add_selector(fy_bulk_t *b, const char *s, size_t len, char *err, size_t errcap);

/** fy_store_delete_where's predicate: ctx is the fy_bulk_t (with now_ns set). Label values missing from the group
 * match as the empty string, as in Prometheus. */
int fy_bulk_match(void *ctx, const fy_store_group_view_t *g);

void fy_bulk_free(fy_bulk_t *b);

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer: a thread that calls pass(ctx, now) every FY_REAPER_TICK_NS, so that a group disappears within
 * FY_REAPER_TICK_NS (plus the pass) of its deadline. A store without TTLs costs one lock per shard and tick. */

#define FY_REAPER_TICK_NS 200000000LL

typedef struct st_fy_reaper_t {
    uint64_t (*pass)(void *ctx, int64_t now_ns);
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, running;
} fy_reaper_t;

int fy_reaper_start(fy_reaper_t *r, uint64_t (*pass)(void *ctx, int64_t now_ns), void *ctx);
void fy_reaper_stop(fy_reaper_t *r);

/** fy_store_expire's callback that logs the group at debug level ("group expired"); ctx is unused. */
int fy_reaper_log(void *ctx, const fy_store_group_view_t *g);

#endif
