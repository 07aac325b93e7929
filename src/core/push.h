/*
 * push.h: from a decoded push body to a store mutation, and from the store's answer to an HTTP status and message.
 * Transport-free (no h2o here), so the rules are unit-testable: body format dispatch, arena growth, the admission
 * limits, and the mapping of parser and store errors to the reference's status codes and texts.
 */
#ifndef FY_PUSH_H
#define FY_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "fy_parse.h"
#include "store.h"

/* What a push body is written in (chosen from its Content-Type: decode.h in http/). */
typedef enum en_fy_body_format_t {
    FY_FMT_TEXT = 0,    /* text exposition format 0.0.4: everything that is not one of the two below */
    FY_FMT_PROTOBUF,    /* varint-delimited io.prometheus.client.MetricFamily */
    FY_FMT_OPENMETRICS, /* application/openmetrics-text (Ferry extension; 1.5.1 parses it as text) */
} fy_body_format_t;

typedef struct st_fy_push_limits_t {
    uint64_t max_series_per_push;    /* 0 = unlimited */
    uint64_t max_label_value_length; /* bytes after unescaping; 0 = unlimited */
    int consistency_check_disabled;  /* --push.disable-consistency-check: answer 202 whatever the check says */
} fy_push_limits_t;

/* A growable parser arena owned by one loop thread (never shared). */
typedef struct st_fy_push_arena_t {
    void *mem;
    size_t cap;
} fy_push_arena_t;

void fy_push_arena_free(fy_push_arena_t *a);

/* What to answer. msg is the response body without the trailing newline (http.Error adds it); it points into
 * buf (owned by the outcome, free with fy_push_outcome_free) or is a static string. */
typedef struct st_fy_push_outcome_t {
    int status;
    int limit; /* -1, or the fy_limit_t (src/selfmetrics.h) that rejected the push */
    const char *msg;
    size_t msg_len;
    char *buf;
    int store_rc;         /* what the store said (FY_OK, FY_SERR_*), or 1 when it was not called */
    int log_failure;      /* the reference logs consistency failures at error level */
    int failure_recorded; /* refused, and the group's failure time was set */
} fy_push_outcome_t;

void fy_push_outcome_free(fy_push_outcome_t *o);

/**
 * Parses body[0..len) in `format` and applies it to `store` as PUT or POST of the group `gk`.
 * Status: 200 on success (202 with the consistency check disabled), 400 for parse errors, invalid or inconsistent
 * pushes and per-push limits, 429 when the store is full (a store limit), 500 when out of memory.
 */
void fy_push_apply(fy_store_t *store, fy_push_arena_t *arena, const fy_push_limits_t *lim, fy_store_method_t method,
                   const fy_store_label_t *gk, size_t ngk, const char *body, size_t len, fy_body_format_t format, int64_t now_ns,
                   fy_push_outcome_t *out);

/** fy_push_apply with the push's declared lifetime (X-Ferry-TTL / X-Ferry-Interval; NULL = none declared). */
void fy_push_apply_life(fy_store_t *store, fy_push_arena_t *arena, const fy_push_limits_t *lim, fy_store_method_t method,
                        const fy_store_label_t *gk, size_t ngk, const char *body, size_t len, fy_body_format_t format,
                        const fy_store_life_t *life, int64_t now_ns, fy_push_outcome_t *out);

/**
 * A replicated push (change.h's merge): parsed, then merged into the store at stamp now_ns, last writer wins, without
 * a verdict or limits; dropped(ctx, name) is called for each family that conflicts with the store and was left out.
 * Status 200, or 400 when the body does not parse (the replica that took it parsed it: the change is damaged), 500
 * when out of memory.
 */
void fy_push_merge(fy_store_t *store, fy_push_arena_t *arena, fy_store_method_t method, const fy_store_label_t *gk, size_t ngk,
                   const char *body, size_t len, fy_body_format_t format, const fy_store_life_t *life, int64_t now_ns,
                   void (*dropped)(void *ctx, fy_str_t family), void *ctx, fy_push_outcome_t *out);

#endif
