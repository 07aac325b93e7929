/*
 * bulk.h: the selection of DELETE /api/v1/admin/groups (docs/beyond-pushgateway.md): label matchers and an age limit,
 * parsed from the query string and matched against groups for fy_store_delete_where.
 */
#ifndef FY_BULK_H
#define FY_BULK_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

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

#endif
