/*
 * conn_guard.h: what one HTTP/1 connection may cost before its request reaches a handler: the size and number of
 * its header fields (431 above; 414 for a request line alone above the limit), the time it may take to send them, how long it may
 * stay silent, and its share of the server-wide budget for request bytes in flight (503 with Retry-After above).
 *
 * h2o 2.2.5 reads a whole request (headers and body) before any handler runs, answers an oversized header block
 * with a bare 400, and has one timeout that covers the whole request (a slow but steady upload is cut off without
 * an answer). The guard sees every read of a guarded socket first: h2o (re)starts reading through
 * h2o_socket_read_start, which libh2o calls through its PLT, so Ferry's definition of it (conn_guard.c) is the one
 * every call reaches, and it slips the guard's callback in front of h2o's. fy_guard_loop_init checks at start-up
 * that this holds (a libh2o linked with -Bsymbolic would bypass it) and logs an error, leaving connections
 * unguarded, when it does not. h2o_socket_read_stop is defined the same way, so that a request whose answer waits
 * keeps its socket in epoll, paused (conn_guard.c, "Pauses").
 *
 * Threads: a guard belongs to the loop thread of its socket; only that thread touches it. The in-flight byte count
 * is shared by every loop (a relaxed atomic).
 */
#ifndef FY_CONN_GUARD_H
#define FY_CONN_GUARD_H

#include <stdint.h>

#include <h2o.h>

#include "selfmetrics.h"

typedef struct st_fy_guard_config_t {
    uint64_t header_timeout_ms; /* request line and headers must be complete this long after their first byte */
    uint64_t idle_timeout_ms;   /* no byte for this long while h2o waits for one: closed (408 mid-request) */
    uint64_t read_timeout_ms;   /* the whole request; 0: no limit */
    size_t max_header_bytes;    /* request line and header fields, 431 above */
    uint64_t inflight_budget;   /* request bytes buffered over all connections; 0: no limit */
    fy_selfstats_t *stats;      /* counters (may be NULL) */
} fy_guard_config_t;

/* The per-loop part: its guarded connections and the one-second sweep that applies the timeouts. */
typedef struct st_fy_guard_loop_t {
    h2o_evloop_t *loop;
    h2o_linklist_t conns;
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
    int active; /* the interposition works: connections are guarded */
} fy_guard_loop_t;

/* Most header fields h2o parses (H2O_MAX_HEADERS); the guard answers 431 above it, where h2o would answer 400. */
#define FY_GUARD_MAX_HEADER_FIELDS H2O_MAX_HEADERS
/* The largest --web.max-header-bytes: h2o itself answers 400 once a header block reaches H2O_MAX_REQLEN. */
#define FY_GUARD_MAX_HEADER_BYTES_LIMIT (H2O_MAX_REQLEN - 1)
/* A connection may always buffer this much, whatever the budget, so that large bodies cannot lock out small
 * pushes; what the budget bounds is the rest. */
#define FY_GUARD_EXEMPT_BYTES (64 * 1024)

/** Once, before any loop starts. The configuration is copied. */
void fy_guard_global_init(const fy_guard_config_t *cfg);

/** On each loop thread, after its context is set up; accept_ctx is what the loop passes to h2o_accept. */
void fy_guard_loop_init(fy_guard_loop_t *gl, h2o_accept_ctx_t *accept_ctx);

/** A newly accepted socket, before h2o_accept is called on it. */
void fy_guard_attach(fy_guard_loop_t *gl, h2o_socket_t *sock);

/** Request bytes buffered now over all connections (the in-flight gauge). */
uint64_t fy_guard_inflight_bytes(void);

#endif
