/*
 * server.h: the HTTP frontend (h2o evloop, one context per thread) and the seam between it and the rest of Ferry.
 * The frontend owns routing, grouping keys, body decoding, the endpoints that need no store, and the process
 * lifecycle; everything that needs the store is reached through fy_handlers_t, which main.c fills.
 */
#ifndef FY_SERVER_H
#define FY_SERVER_H

#include <stdint.h>
#include <time.h>

#include <h2o.h>

#include "decode.h"
#include "flags.h"
#include "groupkey.h"
#include "selfmetrics.h"

/* A handler's answer. 2xx: empty body, Content-Length: 0, no Content-Type (push, delete, wipe). Any other status:
 * Go's http.Error format (text/plain; charset=utf-8, nosniff, msg + "\n"). msg is not NUL-terminated and must live
 * until the handler returns (static, or req->pool). */
typedef struct st_fy_result_t {
    int status;
    const char *msg;
    size_t msg_len;
} fy_result_t;

typedef enum en_fy_push_method_t { FY_PUSH_PUT = 0, FY_PUSH_POST } fy_push_method_t;

typedef struct st_fy_push_t {
    fy_push_method_t method;     /* PUT replaces the group, POST only the pushed families */
    const fy_gk_label_t *labels; /* the grouping key: unique names, sorted, "job" included, valid UTF-8 */
    size_t nlabels;
    const char *body; /* decoded (gzip/snappy undone), not NUL-terminated, valid during the call; may be
                       * NULL when body_len is 0 */
    size_t body_len;
    fy_body_format_t format;
    struct timespec now;  /* CLOCK_REALTIME when the request was dispatched */
    h2o_mem_pool_t *pool; /* the request's pool, for the result message */
    h2o_req_t *req;       /* the request itself (read-only: headers for the push-size metric) */
} fy_push_t;

/* Callbacks; each runs on a loop thread, concurrently with the others. */
typedef struct st_fy_handlers_t {
    void *ctx;
    fy_selfstats_t *stats; /* where the frontend counts what it refuses itself (may be NULL) */
    /* PUT/POST P/metrics/job/...: 200 (202 with --push.disable-consistency-check) or an error */
    fy_result_t (*push)(void *ctx, const fy_push_t *push);
    /* DELETE P/metrics/job/...: 202 */
    fy_result_t (*del)(void *ctx, const fy_gk_label_t *labels, size_t nlabels, h2o_mem_pool_t *pool);
    /* GET telemetry path: responds through h2o itself (Accept, Accept-Encoding are in req->headers); returns 0 */
    int (*scrape)(void *ctx, h2o_req_t *req);
    /* GET P/api/v1/metrics: the CORS headers are already on req->res; responds itself; returns 0 */
    int (*api_metrics)(void *ctx, h2o_req_t *req);
    /* PUT P/api/v1/admin/wipe (only registered with --web.enable-admin-api): 202 */
    fy_result_t (*wipe)(void *ctx, h2o_mem_pool_t *pool);
    /* DELETE P/api/v1/admin/groups?match[]=...&older_than=... (only with --web.enable-admin-api): responds itself with
     * JSON; returns 0 */
    int (*bulk_delete)(void *ctx, h2o_req_t *req);
    /* GET P/ and P/status (static_path NULL) or P/static/<static_path>: responds itself; returns 0 */
    int (*ui)(void *ctx, h2o_req_t *req, const char *static_path, size_t static_path_len);
    /* GET P/-/healthy and P/-/ready: 200 "OK", or e.g. 500 "write queue is full"; NULL means always healthy */
    fy_result_t (*healthy)(void *ctx);
    /* after the loops have stopped, before exit (final persistence); may be NULL */
    void (*shutdown)(void *ctx);
    /* /api/v1/status: more members of "data" after start_time (e.g. "cluster":{...}), malloc'd, or NULL; may be NULL */
    char *(*status_extra)(void *ctx);
    /* /-/ready while not ready: why, or NULL ("Service Unavailable"); may be NULL */
    const char *(*not_ready)(void *ctx);
    /* after every request that pushgateway_http_requests_total counts (spec 2.5), with the status sent; may be NULL */
    void (*request_done)(void *ctx, fy_stat_handler_t h, int status, const char *method, size_t method_len);
} fy_handlers_t;

/* Deferred answers --------------------------------------------------------------------------------------------
 * A handler whose answer must wait for work done on another thread (durable mode: the fdatasync of its log record)
 * parks its request under a ticket with fy_server_defer and returns FY_DEFERRED; the event loop goes on serving
 * other requests. Whichever thread finishes the work calls fy_server_release(upto, err); each loop then calls the
 * parked requests' callbacks, on its own thread, and sends their answers (and counts them: request_done). A request
 * whose client goes away meanwhile stays parked without it: its callback still runs, with req NULL, and its answer
 * is only counted. At shutdown every loop keeps running until its parked requests are answered. */

#define FY_DEFERRED ((fy_result_t){0, NULL, 0})

/* On the loop thread that parked the request, once its ticket is decided: err is 0 (released) or the errno of the
 * failure. Returns the answer, as a handler would (msg in req->pool). req is NULL if the request is gone. */
typedef fy_result_t (*fy_defer_cb)(void *data, h2o_req_t *req, int err);

/** 1 if the calling thread is a loop thread inside a push, delete or wipe handler, where fy_server_defer works. */
int fy_server_can_defer(void);

/**
 * From a push, delete or wipe handler (fy_server_can_defer): parks the request being served until ticket is
 * released; the handler then returns FY_DEFERRED. Tickets parked by one loop thread must not decrease. Returns
 * data_size zeroed bytes (max_align_t-aligned) for the callback's state, freed after the callback returns.
 */
void *fy_server_defer(uint64_t ticket, fy_defer_cb cb, size_t data_size);

/** Any thread: every ticket <= upto is done; err != 0 fails every ticket after upto, parked or parked later. */
void fy_server_release(uint64_t upto, int err);

/** Any thread: every ticket <= late that is not released fails with ETIMEDOUT (a replicated change whose write quorum
 * did not answer in time); later tickets still wait for fy_server_release. */
void fy_server_time_out(uint64_t late);

/** The index (0..threads-1) of the calling loop thread, or -1 outside the loops. */
int fy_server_thread_index(void);

struct st_fy_webcfg_t;

/** Runs the server until SIGINT/SIGTERM or /-/quit; returns the process exit code. webcfg (from --web.config.file:
 * TLS, basic auth, extra headers) may be NULL; the server takes it over (it frees it once no loop uses it, after a
 * reload replaced it or at the end) and re-reads flags->web_config_file on SIGHUP and, with --web.enable-lifecycle,
 * on PUT/POST /-/reload. */
int fy_server_run(const fy_flags_t *flags, const fy_handlers_t *handlers, struct st_fy_webcfg_t *webcfg);

/** /-/ready answers 503 until this is set (after persistence has loaded). */
void fy_server_set_ready(int ready);
int fy_server_is_ready(void);

/** Adds the five CORS headers of api/v1 (corsHeaders in PG api/v1/api.go) to req->res. */
void fy_server_add_cors(h2o_req_t *req);

/** The client's address as Go's Request.RemoteAddr shows it ("127.0.0.1:54321", "[::1]:54321"; an IPv4 client of
 * a dual-stack socket without its ::ffff: prefix), for log lines' source=; "" when the connection has none. */
const char *fy_server_remote_addr(h2o_req_t *req, char *buf, size_t cap);

/** Sends a complete response with Content-Length; body is copied into req->pool. */
void fy_server_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len);

/** Go's http.Error: status, text/plain; charset=utf-8, nosniff, msg + "\n". */
void fy_server_error(h2o_req_t *req, int status, const char *msg, size_t len);

#endif
