/*
 * life.h: a group's declared lifetime and liveness (docs/beyond-pushgateway.md): the X-Ferry-TTL / X-Ferry-Interval
 * header values, and the liveness families rendered at scrape time. The store keeps the per-group state (store.h:
 * fy_store_push_life, fy_store_foreach_life).
 */
#ifndef FY_LIFE_H
#define FY_LIFE_H

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

#endif
