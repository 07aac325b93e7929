/*
 * server.c: h2o plumbing, threads, listeners, lifecycle, dispatch of router results, and the store-free endpoints.
 *
 * Threads: one h2o evloop + h2o_context_t per --web.threads. Listeners: either one SO_REUSEPORT socket per thread
 * and address, so the kernel spreads connections (default: --web.reuseport is true), or, with --no-web.reuseport,
 * one socket per address dup()ed into every thread (as h2o 2.2.5's own server). All sockets are opened by the main
 * thread before any loop starts, so a bind failure is reported once and the process exits non-zero (1.5.1 logs it
 * and exits 0).
 * Signals: SIGINT, SIGTERM and SIGHUP are blocked in every thread and a dedicated thread sigwait()s; SIGHUP asks for
 * a reload and the thread goes on waiting.
 * Shutdown: on SIGINT/SIGTERM (or /-/quit) the signal thread sets a flag and wakes every loop; each
 * loop closes its listeners, asks h2o to shut down (HTTP/2 GOAWAY) and keeps running 1.5 s so in-flight requests
 * finish and h2o's one-second GOAWAY timer fires. Contexts are not disposed (h2o's own server does not either: idle
 * keep-alive connections still hold timers, and h2o_context_dispose asserts on those).
 * Deferred answers (server.h): each loop keeps its parked requests in a fy_defer_queue_t; fy_server_release raises
 * one process-wide mark and sends each loop one message (a flag keeps at most one in flight per loop), and the loop
 * answers what the mark decides. A parked entry is malloc'd, not in req->pool: the pool only holds a pointer to it
 * whose dispose callback forgets the request, so a client that disconnects (HTTP/2 disposes its streams at once;
 * HTTP/1 stops reading while a request is handled, so it notices only when the answer is written) never leaves the
 * entry pointing at a freed h2o_req_t. A loop that is shutting down runs until its queue is empty.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth_pool.h"
#include "buildinfo.h"
#include "conn_guard.h"
#include "defer.h"
#include "gen.h"
#include "log.h"
#include "router.h"
#include "sdlisten.h"
#include "store.h"
#include "webconfig.h"

#ifndef FY_BUILD_DATE
#define FY_BUILD_DATE "unknown"
#endif

typedef struct st_fy_thread_t {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t wakeup;
    pthread_t tid;
    int *fds;
    h2o_socket_t **listeners;
    size_t nfds;
    int index;
    /* deferred answers */
    h2o_multithread_receiver_t defer_rx;
    h2o_multithread_message_t defer_msg;
    atomic_int defer_signalled; /* defer_msg is in flight */
    atomic_int defer_ready;     /* defer_rx is registered */
    fy_defer_queue_t deferred;
    h2o_req_t *serving;                   /* the request inside a push/delete/wipe handler (fy_server_defer parks it) */
    struct st_deferred_t *parked_now;     /* what fy_server_defer parked during that call */
    fy_guard_loop_t guard;                /* limits on connections before their requests reach a handler */
    h2o_multithread_receiver_t auth_rx;   /* password checks done by the auth pool, for requests of this loop */
    h2o_multithread_receiver_t reload_rx; /* reloads done by the signal thread, for /-/reload requests of this loop */
    /* The web configuration this loop uses (gen.h): its reference to a generation, taken up at the loop's quiescent
     * points by loop_config(); cfg is cfg_gen's object (NULL without --web.config.file). Loop thread only. */
    fy_gen_t *cfg_gen;
    fy_webcfg_t *cfg;
    h2o_timeout_t auth_slow; /* slow answers to failed passwords (AUTH_SLOW_ANSWER_MS) */
    /* accept(2) back-off: out of descriptors (or buffers), the listeners pause for backoff_ms, doubling to 1 s */
    h2o_timeout_t accept_pause;
    h2o_timeout_entry_t accept_entry;
    unsigned backoff_ms, pause_left_ms;
    uint64_t last_accept_log; /* h2o_now of the last "accept failed" log line */
    uint64_t unlogged_errors; /* failures since that line */
} fy_thread_t;

/* A parked request. */
typedef struct st_deferred_t {
    fy_parked_t super;
    h2o_req_t *req;             /* NULL once h2o has disposed of the request */
    struct st_deferred_t **ref; /* the pointer to this entry in req->pool (h2o_mem_alloc_shared), NULL with req */
    fy_defer_cb cb;
    int counted; /* the route is one of pushgateway_http_requests_total's: stat says which */
    fy_stat_handler_t stat;
    char method[16]; /* for request_done when req is gone */
    size_t method_len;
    _Alignas(max_align_t) unsigned char data[];
} deferred_t;

static h2o_globalconf_t config;
static fy_router_t router;
static fy_handlers_t handlers;
static const fy_flags_t *flags;
static char start_time[64];
static fy_thread_t *threads;
static int nthreads;
static atomic_int ready_flag;
static atomic_int shutdown_requested;
static pthread_t signal_waiter;
static pthread_barrier_t loops_registered;
static atomic_int signal_seen;
/* --web.config.file. The configuration in force is a generation in webcfg_slot (gen.h): the signal thread publishes a
 * new one on each successful reload, and each loop takes it up at its next quiescent point (loop_config). A
 * generation is read-only (its auth caches lock themselves) and freed when its last holder lets go. webcfg_path is
 * NULL without a web config file; then nothing is published and every loop's cfg stays NULL. */
static const char *webcfg_path;
static fy_gen_slot_t webcfg_slot;
static _Thread_local int thread_index = -1;
static fy_defer_mark_t defer_mark;
static _Atomic(fy_thread_t *) threads_pub; /* threads, for fy_server_release on other threads (nthreads set before) */
static uint64_t guard_backstop_ms;         /* h2o's request timeout while the connection guard is active */

int fy_server_thread_index(void)
{
    return thread_index;
}

int fy_server_is_ready(void)
{
    return atomic_load(&ready_flag);
}

void fy_server_set_ready(int ready)
{
    atomic_store(&ready_flag, ready);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Responses */

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *orig, const char *value, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, token, orig, value, len);
}

/* h2o wants lower-case names (HTTP/2 rejects anything else); orig_name keeps Go's canonical case for HTTP/1. */
static void add_header_str(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t len)
{
    char *lower = h2o_mem_alloc_pool(&req->pool, name_len);
    for (size_t i = 0; i < name_len; i++)
        lower[i] = (char)h2o_tolower(name[i]);
    h2o_add_header_by_str(&req->pool, &req->res.headers, lower, name_len, 0, name, value, len);
}

/* Go's Header().Set: replaces a header already on the response (a --web.config.file header that the answer sets
 * too, X-Content-Type-Options on every error, must go out once), else adds it. */
static void set_header_str(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t len)
{
    char *lower = h2o_mem_alloc_pool(&req->pool, name_len);
    for (size_t i = 0; i < name_len; i++)
        lower[i] = (char)h2o_tolower(name[i]);
    ssize_t i = h2o_find_header_by_str(&req->res.headers, lower, name_len, -1);
    if (i < 0) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, lower, name_len, 0, name, value, len);
        return;
    }
    req->res.headers.entries[i].value = h2o_iovec_init(value, len);
    while ((i = h2o_find_header_by_str(&req->res.headers, lower, name_len, i)) >= 0) {
        h2o_delete_header(&req->res.headers, i);
        i--; /* the next entry moved into i; the search starts after the cursor */
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 301:
        return "Moved Permanently";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Request Entity Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void fy_server_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason != NULL ? reason : reason_of(status);
    if (content_type != NULL)
        add_header(req, H2O_TOKEN_CONTENT_TYPE, "Content-Type", content_type, strlen(content_type));
    assert(body != NULL || len == 0);
    req->res.content_length = len;
    /* No buffer for an empty body: h2o 2.2.5's evloop writes the headers, finds the empty buffer still to send and
     * polls for writability to write nothing (writev, epoll_ctl twice and a loop turn more per answer; every push's
     * 200 has an empty body). tests/integration/test_http_writes.py counts them. */
    h2o_iovec_t buf = len != 0 ? h2o_strdup(&req->pool, body, len) : h2o_iovec_init(NULL, 0);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, len != 0, H2O_SEND_STATE_FINAL);
}

#define TEXT_PLAIN "text/plain; charset=utf-8"

void fy_server_error(h2o_req_t *req, int status, const char *msg, size_t len)
{
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(body, msg, len);
    body[len] = '\n';
    set_header_str(req, H2O_STRLIT("X-Content-Type-Options"), H2O_STRLIT("nosniff"));
    fy_server_respond(req, status, NULL, TEXT_PLAIN, body, len + 1);
}

static void respond_result(h2o_req_t *req, fy_result_t r)
{
    if (r.status == 0) /* FY_DEFERRED: parked, answered later */
        return;
    if (r.status >= 200 && r.status < 300)
        fy_server_respond(req, r.status, NULL, NULL, NULL, 0);
    else
        fy_server_error(req, r.status, r.msg, r.msg_len);
}

const char *fy_server_remote_addr(h2o_req_t *req, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    char host[INET6_ADDRSTRLEN];
    snprintf(buf, cap, "%s", "");
    if (req->conn == NULL || req->conn->callbacks->get_peername == NULL ||
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(buf, cap, "%s:%u", host, ntohs(in6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
        }
    }
    return buf;
}

void fy_server_add_cors(h2o_req_t *req)
{
    add_header_str(req, H2O_STRLIT("Access-Control-Allow-Headers"), H2O_STRLIT("Accept, Authorization, Content-Type, Origin"));
    add_header_str(req, H2O_STRLIT("Access-Control-Allow-Methods"), H2O_STRLIT("GET, POST, DELETE, OPTIONS"));
    add_header_str(req, H2O_STRLIT("Access-Control-Allow-Origin"), H2O_STRLIT("*"));
    add_header_str(req, H2O_STRLIT("Access-Control-Expose-Headers"), H2O_STRLIT("Date"));
    add_header(req, H2O_TOKEN_CACHE_CONTROL, "Cache-Control", H2O_STRLIT("no-cache, no-store, must-revalidate"));
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* GET /api/v1/status */

typedef struct st_jbuf_t {
    char *p;
    size_t len, cap;
} jbuf_t;

static void jput(jbuf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = (b->len + n) * 2 + 256;
        char *np = realloc(b->p, ncap);
        if (np == NULL)
            h2o_fatal("no memory");
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* encoding/json string, as the store writes them for /api/v1/metrics */
static void jstr(jbuf_t *b, const char *s)
{
    fy_json_quote(fy_str(s, strlen(s)), &b->p, &b->len, &b->cap);
}

static void jflag(void *ctx, const char *name, const char *value)
{
    jbuf_t *b = ctx;
    if (b->p[b->len - 1] != '{')
        jput(b, ",", 1);
    jstr(b, name);
    jput(b, ":", 1);
    jstr(b, value);
}

static char status_json[16384];
static size_t status_json_len;

static void build_status_json(void)
{
    char route_prefix_shown[256];
    const char *ext = flags->external_url, *path = "";
    /* path of --web.external-url: after "scheme://host" */
    const char *sep = strstr(ext, "://");
    if (sep != NULL) {
        path = strchr(sep + 3, '/');
        if (path == NULL)
            path = "";
    }
    fy_route_prefix_normalise(flags->route_prefix, path, route_prefix_shown, sizeof(route_prefix_shown));

    jbuf_t b = {NULL, 0, 0};
    jput(&b, H2O_STRLIT("{\"status\":\"success\",\"data\":{\"build_information\":{"));
    const char *bi[][2] = {{"branch", FY_BRANCH}, {"buildDate", FY_BUILD_DATE}, {"buildUser", FY_BUILD_USER},
                           {"goVersion", "none"}, {"revision", FY_REVISION},    {"version", FY_VERSION}};
    for (size_t i = 0; i < sizeof(bi) / sizeof(bi[0]); i++) {
        if (i > 0)
            jput(&b, ",", 1);
        jstr(&b, bi[i][0]);
        jput(&b, ":", 1);
        jstr(&b, bi[i][1]);
    }
    jput(&b, H2O_STRLIT("},\"flags\":{"));
    fy_flags_each(flags, route_prefix_shown, jflag, &b);
    jput(&b, H2O_STRLIT("},\"start_time\":"));
    jstr(&b, start_time);
    jput(&b, "}}", 2);
    status_json_len = b.len < sizeof(status_json) ? b.len : sizeof(status_json);
    memcpy(status_json, b.p, status_json_len);
    free(b.p);
}

/* Go's time.Time JSON form (RFC 3339 with nanoseconds, trailing zeros trimmed, local offset or Z). */
static void format_start_time(void)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(start_time, sizeof(start_time), "%Y-%m-%dT%H:%M:%S", &tm);
    if (ts.tv_nsec != 0) {
        char frac[16];
        snprintf(frac, sizeof(frac), "%09ld", ts.tv_nsec);
        size_t fl = 9;
        while (frac[fl - 1] == '0')
            fl--;
        n += (size_t)snprintf(start_time + n, sizeof(start_time) - n, ".%.*s", (int)fl, frac);
    }
    long off = tm.tm_gmtoff;
    if (off == 0)
        snprintf(start_time + n, sizeof(start_time) - n, "Z");
    else
        snprintf(start_time + n, sizeof(start_time) - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                 labs(off) % 3600 / 60);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Dispatch */

static void request_shutdown(void);
static void request_reload(h2o_req_t *req);
static void on_reload_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

static ssize_t find_header(h2o_req_t *req, const h2o_token_t *token)
{
    return h2o_find_header(&req->headers, token, -1);
}

static void handle_push_or_delete(h2o_req_t *req, const fy_route_t *rt)
{
    char err[FY_GK_ERR_MAX];
    size_t nl = 0;
    char *scratch = h2o_mem_alloc_pool(&req->pool, rt->job_len + rt->labels_len + 1);
    fy_gk_label_t *labels = h2o_mem_alloc_pool(&req->pool, sizeof(*labels) * fy_groupkey_max_labels(rt->labels_len));
    if (fy_groupkey_parse(rt->job, rt->job_len, rt->job_b64, rt->labels, rt->labels_len, flags->max_label_value_length, scratch,
                          labels, &nl, err) != 0) {
        fy_server_error(req, 400, err, strlen(err));
        return;
    }
    if (rt->handler == FY_H_DELETE) {
        respond_result(req, handlers.del(handlers.ctx, labels, nl, &req->pool));
        return;
    }

    fy_push_t push;
    memset(&push, 0, sizeof(push));
    push.method = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")) ? FY_PUSH_PUT : FY_PUSH_POST;
    push.labels = labels;
    push.nlabels = nl;
    push.pool = &req->pool;
    push.req = req;
    clock_gettime(CLOCK_REALTIME, &push.now);
    ssize_t ct = find_header(req, H2O_TOKEN_CONTENT_TYPE);
    push.format = ct >= 0 ? fy_decode_format(req->headers.entries[ct].value.base, req->headers.entries[ct].value.len) : FY_FMT_TEXT;
    ssize_t ce = find_header(req, H2O_TOKEN_CONTENT_ENCODING);
    /* an empty body is empty whatever its declared encoding (B10) */
    fy_encoding_t enc = ce >= 0 && req->entity.len != 0
                            ? fy_decode_encoding(req->headers.entries[ce].value.base, req->headers.entries[ce].value.len)
                            : FY_ENC_IDENTITY;
    char derr[FY_DECODE_ERR_MAX], *owned = NULL;
    int rc = fy_decode_body(enc, req->entity.base, req->entity.base != NULL ? req->entity.len : 0, flags->max_body_bytes,
                            &push.body, &push.body_len, &owned, derr);
    if (rc != 0) {
        fy_server_error(req, rc, derr, strlen(derr));
        return;
    }
    fy_result_t r = handlers.push(handlers.ctx, &push);
    /* the result message may point into the decoded body; copy before freeing */
    if (r.msg_len != 0 && owned != NULL)
        r.msg = h2o_strdup(&req->pool, r.msg, r.msg_len).base;
    free(owned);
    respond_result(req, r);
}

static void handle_route(h2o_req_t *req, const fy_route_t *rt)
{
    switch (rt->handler) {
    case FY_H_HEALTHY:
    case FY_H_READY: {
        if (rt->handler == FY_H_READY && !atomic_load(&ready_flag)) {
            const char *why = handlers.not_ready != NULL ? handlers.not_ready(handlers.ctx) : NULL;
            if (why != NULL) {
                char *m = h2o_mem_alloc_pool(&req->pool, 300);
                int n = snprintf(m, 300, "Service Unavailable: %s", why);
                fy_server_error(req, 503, m, n < 300 ? (size_t)n : 299);
            } else {
                fy_server_error(req, 503, H2O_STRLIT("Service Unavailable"));
            }
            return;
        }
        if (handlers.healthy != NULL) {
            fy_result_t r = handlers.healthy(handlers.ctx);
            if (r.status != 200) {
                fy_server_error(req, r.status, r.msg, r.msg_len);
                return;
            }
        }
        fy_server_respond(req, 200, NULL, TEXT_PLAIN, H2O_STRLIT("OK"));
        return;
    }
    case FY_H_SCRAPE:
        handlers.scrape(handlers.ctx, req);
        return;
    case FY_H_PUSH:
    case FY_H_DELETE:
        handle_push_or_delete(req, rt);
        return;
    case FY_H_STATIC:
        handlers.ui(handlers.ctx, req, rt->param, rt->param_len);
        return;
    case FY_H_UI:
        handlers.ui(handlers.ctx, req, NULL, 0);
        return;
    case FY_H_QUIT:
        if (!flags->enable_lifecycle) {
            fy_server_respond(req, 403, NULL, TEXT_PLAIN, H2O_STRLIT("Lifecycle API is not enabled."));
            return;
        }
        fy_server_respond(req, 200, NULL, TEXT_PLAIN, H2O_STRLIT("Requesting termination... Goodbye!"));
        fy_log_warn("msg", "received termination request via web service, exiting gracefully...");
        request_shutdown();
        return;
    case FY_H_QUIT_GET:
        fy_server_respond(req, 405, NULL, TEXT_PLAIN, H2O_STRLIT("Only POST or PUT requests allowed."));
        return;
    case FY_H_RELOAD: /* only routed with --web.enable-lifecycle */
        request_reload(req);
        return;
    case FY_H_API_STATUS:
        fy_server_add_cors(req);
        char *extra = handlers.status_extra != NULL ? handlers.status_extra(handlers.ctx) : NULL;
        if (extra != NULL && status_json_len >= 2) {
            /* the static object without its closing "}}", then the extra members */
            size_t el = strlen(extra), n = status_json_len - 2 + 1 + el + 2;
            char *body = h2o_mem_alloc_pool(&req->pool, n);
            memcpy(body, status_json, status_json_len - 2);
            body[status_json_len - 2] = ',';
            memcpy(body + status_json_len - 1, extra, el);
            memcpy(body + status_json_len - 1 + el, "}}", 2);
            free(extra);
            fy_server_respond(req, 200, NULL, "application/json", body, n);
            return;
        }
        free(extra);
        fy_server_respond(req, 200, NULL, "application/json", status_json, status_json_len);
        return;
    case FY_H_API_METRICS:
        fy_server_add_cors(req);
        handlers.api_metrics(handlers.ctx, req);
        return;
    case FY_H_API_OPTIONS:
        fy_server_add_cors(req);
        fy_server_respond(req, 200, NULL, NULL, NULL, 0);
        return;
    case FY_H_API_WIPE:
        respond_result(req, handlers.wipe(handlers.ctx, &req->pool));
        return;
    case FY_H_API_GROUPS_DELETE:
        if (handlers.bulk_delete == NULL)
            break;
        handlers.bulk_delete(handlers.ctx, req);
        return;
    case FY_H_NONE:
        break;
    }
    fy_server_error(req, 404, H2O_STRLIT("404 page not found"));
}

/* pushgateway_http_requests_total: the handlers the reference instruments (not scrapes, not /-/quit). Returns 0 and
 * sets *stat for those, -1 for the others. */
static int stat_of(const fy_route_t *rt, fy_stat_handler_t *stat)
{
    static const struct {
        fy_handler_id_t route;
        fy_stat_handler_t stat;
    } map[] = {{FY_H_PUSH, FY_SH_PUSH},
               {FY_H_DELETE, FY_SH_DELETE},
               {FY_H_HEALTHY, FY_SH_HEALTHY},
               {FY_H_READY, FY_SH_READY},
               {FY_H_STATIC, FY_SH_STATIC},
               {FY_H_UI, FY_SH_STATUS},
               {FY_H_API_METRICS, FY_SH_API_METRICS},
               {FY_H_API_STATUS, FY_SH_API_STATUS},
               {FY_H_API_OPTIONS, FY_SH_API_OPTIONS},
               {FY_H_API_WIPE, FY_SH_WIPE}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i].route == rt->handler) {
            *stat = map[i].stat;
            return 0;
        }
    return -1;
}

static void count_request(h2o_req_t *req, const fy_route_t *rt)
{
    fy_stat_handler_t stat;
    if (handlers.request_done != NULL && stat_of(rt, &stat) == 0)
        handlers.request_done(handlers.ctx, stat, req->res.status, req->method.base, req->method.len);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Deferred answers */

int fy_server_can_defer(void)
{
    return thread_index >= 0 && threads[thread_index].serving != NULL;
}

static void signal_loop(fy_thread_t *t)
{
    if (!atomic_exchange(&t->defer_signalled, 1))
        h2o_multithread_send_message(&t->defer_rx, &t->defer_msg);
}

/* dispose callback of the pointer in req->pool: the request is being freed (client gone, connection closed) */
static void forget_request(void *p)
{
    deferred_t *d = *(deferred_t **)p;
    if (d != NULL) {
        d->req = NULL;
        d->ref = NULL;
    }
}

void *fy_server_defer(uint64_t ticket, fy_defer_cb cb, size_t data_size)
{
    assert(fy_server_can_defer());
    fy_thread_t *t = &threads[thread_index];
    h2o_req_t *req = t->serving;
    assert(t->parked_now == NULL);
    deferred_t *d = calloc(1, sizeof(*d) + data_size);
    if (d == NULL)
        h2o_fatal("no memory");
    d->req = req;
    d->cb = cb;
    d->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*d->ref), forget_request);
    *d->ref = d;
    d->method_len = req->method.len < sizeof(d->method) ? req->method.len : sizeof(d->method);
    memcpy(d->method, req->method.base, d->method_len);
    fy_defer_queue_push(&t->deferred, &d->super, ticket);
    t->parked_now = d;
    /* normally the release comes later, from the thread doing the work; if it has already come (or failed), this
     * loop still needs a message, or the request would wait for the next release that may never come */
    uint64_t upto, late;
    int err;
    fy_defer_mark_read(&defer_mark, &upto, &err, &late);
    if (ticket <= upto || err != 0 || ticket <= late)
        signal_loop(t);
    return d->data;
}

static void signal_loops(void)
{
    fy_thread_t *ts = atomic_load(&threads_pub);
    for (int i = 0; ts != NULL && i < nthreads; i++)
        if (atomic_load(&ts[i].defer_ready)) /* a loop not yet running has nothing parked */
            signal_loop(&ts[i]);
}

void fy_server_time_out(uint64_t late)
{
    fy_defer_mark_late(&defer_mark, late);
    signal_loops();
}

void fy_server_release(uint64_t upto, int err)
{
    fy_defer_mark(&defer_mark, upto, err);
    fy_thread_t *ts = atomic_load(&threads_pub);
    for (int i = 0; ts != NULL && i < nthreads; i++)
        if (atomic_load(&ts[i].defer_ready)) /* a loop not yet running has nothing parked */
            signal_loop(&ts[i]);
}

/* Answers every parked request the mark decides, oldest first. */
static void answer_parked(fy_thread_t *t)
{
    uint64_t upto, late;
    int err, e;
    fy_parked_t *p;
    fy_defer_mark_read(&defer_mark, &upto, &err, &late);
    while ((p = fy_defer_queue_next(&t->deferred, upto, err, late, &e)) != NULL) {
        deferred_t *d = (deferred_t *)p;
        h2o_req_t *req = d->req;
        if (d->ref != NULL)
            *d->ref = NULL; /* the pool's dispose callback must not reach d after this */
        fy_result_t r = d->cb(d->data, req, e);
        assert(r.status != 0);
        if (d->counted && handlers.request_done != NULL)
            handlers.request_done(handlers.ctx, d->stat, r.status, d->method, d->method_len);
        if (req != NULL)
            respond_result(req, r);
        free(d);
    }
}

static void on_defer_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    fy_thread_t *t = H2O_STRUCT_FROM_MEMBER(fy_thread_t, defer_rx, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    /* cleared before the mark is read: a release after this point sends a new message */
    atomic_store(&t->defer_signalled, 0);
    answer_parked(t);
}

static void destroy_webcfg(void *cfg)
{
    fy_webcfg_free(cfg);
}

/* The web configuration loop t uses, taken up anew if a reload published one. Called only at the loop's quiescent
 * points: when h2o hands it a request (on_req, and again when a request parked for a password check comes back),
 * before it accepts a connection, and after each event-loop iteration (so that an idle loop lets go of an old
 * generation once the reload's wake-up reaches it). Everything that uses the configuration across callbacks holds
 * a reference of its own (a password check), so what a request reads never changes under it. */
static fy_webcfg_t *loop_config(fy_thread_t *t)
{
    if (webcfg_path != NULL && fy_gen_refresh(&webcfg_slot, &t->cfg_gen)) {
        t->cfg = t->cfg_gen != NULL ? t->cfg_gen->obj : NULL;
        /* new connections handshake with the new SSL_CTX; established ones keep theirs (SSL_new took a reference) */
        if (t->cfg != NULL && t->cfg->tls_enabled)
            t->accept_ctx.ssl_ctx = t->cfg->ssl_ctx;
    }
    return t->cfg;
}

/* --web.config.file: the configured headers go on every response. h2o keeps a pointer to a header's value until the
 * response is sent, which may be after a reload has freed this configuration (a parked request answered later): the
 * value is copied into the request's pool (the names are webconfig.c's static strings). */
static void add_web_config_headers(h2o_req_t *req)
{
    fy_webcfg_t *webcfg = thread_index >= 0 ? loop_config(&threads[thread_index]) : NULL;
    for (size_t i = 0; webcfg != NULL && i < webcfg->nheaders; i++) {
        h2o_iovec_t value = h2o_strdup(&req->pool, webcfg->headers[i].value, SIZE_MAX);
        add_header_str(req, webcfg->headers[i].name, strlen(webcfg->headers[i].name), value.base, value.len);
    }
}

/* Basic auth ------------------------------------------------------------------------------------------------------
 * With basic_auth_users every request needs valid credentials (exporter-toolkit wraps the whole mux). The caches
 * decide most requests on the loop (webconfig.h); a request that needs a password hash is parked while the auth pool
 * computes it (auth_pool.h) and resumed on its own loop by a message. Like a deferred answer, a parked request is
 * reached through a pointer in its pool whose dispose callback forgets it, so a client that goes away meanwhile
 * leaves nothing dangling. */

#define AUTH_QUEUE_PER_WORKER 32 /* checks waiting per pool thread before new ones get 503 (~2 s at cost 10) */
/* A recently failed password, or a check refused for a full queue, is answered this much later: a timer costs the
 * server nothing, and a flooding client's connections each wait as long as a hash would have taken. */
#define AUTH_SLOW_ANSWER_MS 250

typedef struct st_auth_wait_t {
    fy_auth_task_t task;
    h2o_multithread_message_t msg;
    fy_thread_t *t;
    fy_gen_t *gen;               /* a hash's reference to the configuration it checks against (task.cfg), or NULL */
    h2o_req_t *req;              /* NULL once h2o has disposed of the request */
    struct st_auth_wait_t **ref; /* the pointer to this entry in req->pool, NULL with req */
    h2o_timeout_entry_t slow;    /* a slow answer: 401 (task.result DENY) or 503 (busy) when it fires */
    int busy;
} auth_wait_t;

static void serve(h2o_req_t *req);
static void start_request(h2o_req_t *req);

static void free_auth_wait(auth_wait_t *w)
{
    fy_gen_unref(w->gen);
    free(w);
}

static void count_auth(fy_auth_check_t c)
{
    if (handlers.stats != NULL)
        atomic_fetch_add_explicit(&handlers.stats->auth_checks[c], 1, memory_order_relaxed);
}

static void respond_401(h2o_req_t *req)
{
    for (size_t k = 0; k < 3; k++) {
        const fy_webcfg_header_t *hd = &fy_webcfg_401_headers[k];
        if (strcmp(hd->name, "Content-Type") == 0)
            continue; /* fy_server_respond sets it */
        set_header_str(req, hd->name, strlen(hd->name), hd->value, strlen(hd->value));
    }
    fy_server_respond(req, FY_WEBCFG_401_STATUS, FY_WEBCFG_401_REASON, TEXT_PLAIN, H2O_STRLIT(FY_WEBCFG_401_BODY));
}

static void forget_auth_wait(void *p)
{
    auth_wait_t *w = *(auth_wait_t **)p;
    if (w != NULL) {
        w->req = NULL;
        w->ref = NULL;
    }
}

/* pool thread: hand the result to the request's loop */
static void auth_done(fy_auth_task_t *task)
{
    auth_wait_t *w = H2O_STRUCT_FROM_MEMBER(auth_wait_t, task, task);
    h2o_multithread_send_message(&w->t->auth_rx, &w->msg);
}

static void on_auth_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        auth_wait_t *w = H2O_STRUCT_FROM_MEMBER(auth_wait_t, msg, m);
        h2o_req_t *req = w->req;
        if (w->ref != NULL)
            *w->ref = NULL;
        loop_config(w->t);
        if (req != NULL && w->gen != w->t->cfg_gen) {
            /* a reload came while the password was hashed: the answer of the old users does not count (a password
             * the reload removed must not get in), nor is it counted; the request starts over under the
             * configuration now in force, its headers included */
            memset(&req->res.headers, 0, sizeof(req->res.headers));
            start_request(req);
            free_auth_wait(w);
            continue;
        }
        count_auth(w->task.result == FY_AUTH_ALLOW ? FY_AUTHC_HASHED_ALLOW : FY_AUTHC_HASHED_DENY);
        if (req != NULL) {
            if (w->task.result == FY_AUTH_ALLOW)
                serve(req);
            else
                respond_401(req);
        }
        free_auth_wait(w);
    }
}

static void park_auth_wait(auth_wait_t *w, h2o_req_t *req)
{
    w->t = &threads[thread_index];
    w->req = req;
    w->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*w->ref), forget_auth_wait);
    *w->ref = w;
}

static void on_slow_answer(h2o_timeout_entry_t *entry)
{
    auth_wait_t *w = H2O_STRUCT_FROM_MEMBER(auth_wait_t, slow, entry);
    h2o_req_t *req = w->req;
    if (w->ref != NULL)
        *w->ref = NULL;
    if (req != NULL && w->busy) {
        add_header_str(req, H2O_STRLIT("Retry-After"), H2O_STRLIT("1"));
        fy_server_error(req, 503, H2O_STRLIT("too many password checks in progress; retry later"));
    } else if (req != NULL) {
        respond_401(req);
    }
    free_auth_wait(w);
}

/* A parked request: answers 401 (busy = 0) or 503 (busy = 1) AUTH_SLOW_ANSWER_MS from now. */
static void answer_slowly(auth_wait_t *w, int busy)
{
    w->busy = busy;
    w->slow.cb = on_slow_answer;
    h2o_timeout_link(w->t->ctx.loop, &w->t->auth_slow, &w->slow);
}

/* Returns 1 when the request was answered (401, 503) or parked for a password check. */
static int web_config_gate(h2o_req_t *req)
{
    fy_thread_t *t = &threads[thread_index];
    fy_webcfg_t *webcfg = loop_config(t);
    if (webcfg == NULL || webcfg->nusers == 0)
        return 0;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    auth_wait_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        h2o_fatal("no memory");
    switch (fy_webcfg_auth_begin(webcfg, i >= 0 ? req->headers.entries[i].value.base : NULL,
                                 i >= 0 ? req->headers.entries[i].value.len : 0, &w->task.job)) {
    case FY_AUTH_ALLOW:
        free(w);
        count_auth(FY_AUTHC_CACHED_ALLOW);
        return 0;
    case FY_AUTH_DENY: /* no or malformed credentials: a client that has not tried yet, answered at once */
        free(w);
        count_auth(FY_AUTHC_CACHED_DENY);
        respond_401(req);
        return 1;
    case FY_AUTH_DENY_RECENT:
        count_auth(FY_AUTHC_CACHED_DENY);
        park_auth_wait(w, req);
        answer_slowly(w, 0);
        return 1;
    case FY_AUTH_HASH:
        break;
    }
    w->task.cfg = webcfg;
    w->gen = fy_gen_ref(t->cfg_gen); /* task.cfg and task.job.user stay valid while the pool hashes */
    w->task.done = auth_done;
    /* parked before it is queued: the pool may be done with it at once, but its message is only read on this
     * thread, after this returns */
    park_auth_wait(w, req);
    if (fy_auth_pool_submit(&w->task) != 0) {
        fy_webcfg_auth_job_free(&w->task.job);
        if (handlers.stats != NULL)
            atomic_fetch_add_explicit(&handlers.stats->http_rejections[FY_REJECT_AUTH_BUSY], 1, memory_order_relaxed);
        answer_slowly(w, 1);
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Body size limit
 *
 * h2o reads request bodies before any handler runs and refuses the large ones itself: HTTP/1 with a Content-Length
 * over config.max_request_entity_size, or a chunked body whose decoded size reaches it, gets h2o_send_error_generic's
 * 413 "request entity is too large" and the connection is closed; HTTP/2 gets RST_STREAM(REFUSED_STREAM) and no
 * response at all (h2o 2.2.5 offers no hook there). The limit is set to --push.max-body-bytes + 1, so a chunked body
 * of exactly the limit passes (h2o's chunked check is ">=", its Content-Length check ">"), and every body of limit + 1
 * bytes that gets through is refused here by on_req. At most one byte beyond the limit is ever buffered.
 *
 * h2o's own 413 is sent before the request is bound to a path, so h2o_send_error_generic binds it to the hostconf's
 * fallback path and runs that path's filters: limit_filter there rewrites the body to name the limit, as on_req's. */

static char too_large_buf[96];
static h2o_iovec_t too_large_msg; /* "request body exceeds --push.max-body-bytes=N\n", in too_large_buf */

static void too_large_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    h2o_iovec_t body = too_large_msg;
    /* a HEAD request gets no body buffer from h2o_send_inline: keep it that way */
    h2o_ostream_send_next(self, req, bufcnt != 0 ? &body : bufs, bufcnt != 0 ? 1 : 0, state);
}

static void limit_filter_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->res.status == 413) {
        /* h2o_send_error_generic set only Content-Type, without its canonical case: the headers of fy_server_error */
        memset(&req->res.headers, 0, sizeof(req->res.headers));
        add_web_config_headers(req);
        set_header_str(req, H2O_STRLIT("X-Content-Type-Options"), H2O_STRLIT("nosniff"));
        add_header(req, H2O_TOKEN_CONTENT_TYPE, "Content-Type", H2O_STRLIT(TEXT_PLAIN));
        req->res.content_length = too_large_msg.len;
        h2o_ostream_t *ostr = h2o_add_ostream(req, sizeof(*ostr), slot);
        ostr->do_send = too_large_do_send;
        slot = &ostr->next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* --web.probes-without-auth: a kubelet or load balancer cannot send credentials, so the two probes may skip basic
 * auth. Only what the router itself sends to their handlers (a GET under the route prefix) qualifies: a HEAD,
 * a redirect, a 404 or a 405 on a look-alike path still needs credentials, so nothing else is revealed. */
static int is_open_probe(h2o_req_t *req)
{
    fy_webcfg_t *webcfg = loop_config(&threads[thread_index]);
    if (!flags->probes_without_auth || webcfg == NULL || webcfg->nusers == 0)
        return 0;
    fy_route_t rt;
    char *buf = h2o_mem_alloc_pool(&req->pool, fy_route_buf_size(req->path.len));
    fy_route(&router, req->method.base, req->method.len, req->path.base, req->path.len, buf, &rt);
    return rt.kind == FY_ROUTE_HANDLER && (rt.handler == FY_H_HEALTHY || rt.handler == FY_H_READY);
}

/* rate_limit: the reference's limiter is the first thing its handler does, before headers and authentication, so a
 * flood of requests without credentials drains the bucket as much as any other (and costs no password hash). Ours
 * runs first in on_req too; unlike the reference's 429 it carries the configured headers, as every answer does. */
static int over_rate_limit(h2o_req_t *req)
{
    fy_webcfg_t *webcfg = thread_index >= 0 ? loop_config(&threads[thread_index]) : NULL;
    if (webcfg == NULL || fy_webcfg_rate_allow(webcfg))
        return 0;
    if (handlers.stats != NULL)
        atomic_fetch_add_explicit(&handlers.stats->http_rejections[FY_REJECT_RATE_LIMIT], 1, memory_order_relaxed);
    add_web_config_headers(req);
    set_header_str(req, H2O_STRLIT("X-Content-Type-Options"), H2O_STRLIT("nosniff"));
    fy_server_respond(req, FY_WEBCFG_429_STATUS, FY_WEBCFG_429_REASON, TEXT_PLAIN, H2O_STRLIT(FY_WEBCFG_429_BODY));
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    if (over_rate_limit(req))
        return 0;
    if (req->entity.base != NULL && req->entity.len > flags->max_body_bytes) {
        /* h2o let limit + 1 bytes through (see above); checked before authentication, as h2o's own 413 is */
        add_web_config_headers(req);
        fy_server_error(req, 413, too_large_msg.base, too_large_msg.len - 1);
        return 0;
    }
    start_request(req);
    return 0;
}

/* The configured headers, then authentication, then the route: everything under one generation of the web
 * configuration (add_web_config_headers takes up the newest one, web_config_gate uses the same). */
static void start_request(h2o_req_t *req)
{
    add_web_config_headers(req);
    if (is_open_probe(req) || !web_config_gate(req))
        serve(req);
}

/* Routes and answers an authenticated request, on its loop thread. */
static void serve(h2o_req_t *req)
{
    fy_route_t rt;
    size_t target_len = req->path.len;
    char *buf = h2o_mem_alloc_pool(&req->pool, fy_route_buf_size(target_len));
    fy_route(&router, req->method.base, req->method.len, req->path.base, target_len, buf, &rt);

    int has_body = req->entity.base != NULL && req->entity.len != 0;
    int body_method = !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
                      !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (rt.via_decoder && (has_body || body_method)) {
        /* 1.5.1 wraps the main router in gzip.NewReader, which reads the member header before anything else, so an
         * empty gzip push is "400 EOF". It does the same to body-less GETs (B10); Ferry ignores the header there. */
        ssize_t ce = find_header(req, H2O_TOKEN_CONTENT_ENCODING);
        if (ce >= 0 && fy_decode_encoding(req->headers.entries[ce].value.base, req->headers.entries[ce].value.len) == FY_ENC_GZIP) {
            char err[FY_DECODE_ERR_MAX];
            if (fy_decode_gzip_header(req->entity.base, req->entity.base != NULL ? req->entity.len : 0, err) != 0) {
                fy_server_error(req, 400, err, strlen(err));
                return;
            }
        }
    }

    switch (rt.kind) {
    case FY_ROUTE_HANDLER: {
        fy_thread_t *t = &threads[thread_index];
        int parks = rt.handler == FY_H_PUSH || rt.handler == FY_H_DELETE || rt.handler == FY_H_API_WIPE;
        t->serving = parks ? req : NULL;
        handle_route(req, &rt);
        t->serving = NULL;
        deferred_t *d = t->parked_now;
        t->parked_now = NULL;
        if (d == NULL) {
            count_request(req, &rt);
        } else {
            d->counted = stat_of(&rt, &d->stat) == 0;
        }
        break;
    }
    case FY_ROUTE_REDIRECT: {
        add_header(req, H2O_TOKEN_LOCATION, "Location", rt.location, rt.location_len);
        const char *ct = rt.is_get || rt.is_head ? "text/html; charset=utf-8" : NULL;
        if (rt.is_get) {
            size_t cap = 6 * rt.location_len + 64;
            char *body = h2o_mem_alloc_pool(&req->pool, cap);
            size_t n = fy_route_redirect_body(&rt, body, cap);
            fy_server_respond(req, rt.status, NULL, ct, body, n);
        } else {
            fy_server_respond(req, rt.status, NULL, ct, NULL, 0);
        }
        break;
    }
    case FY_ROUTE_NOT_FOUND:
        fy_server_error(req, 404, H2O_STRLIT("404 page not found"));
        break;
    case FY_ROUTE_NOT_ALLOWED:
        add_header_str(req, H2O_STRLIT("Allow"), rt.allow, strlen(rt.allow));
        fy_server_error(req, 405, H2O_STRLIT("Method Not Allowed"));
        break;
    case FY_ROUTE_OPTIONS:
        add_header_str(req, H2O_STRLIT("Allow"), rt.allow, strlen(rt.allow));
        fy_server_respond(req, 200, NULL, NULL, NULL, 0);
        break;
    case FY_ROUTE_BAD_REQUEST:
        /* Go answers a malformed request line and closes the connection */
        req->http1_is_persistent = 0;
        fy_server_respond(req, 400, NULL, TEXT_PLAIN, H2O_STRLIT("400 Bad Request"));
        break;
    case FY_ROUTE_STAR:
        fy_server_respond(req, rt.status, NULL, NULL, NULL, 0);
        break;
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Listeners */

/* Opens one listening socket for "host:port" (":port" = every interface, dual-stack). Returns the fd or -1 with
 * errno-style text in err. With check_free, a SO_REUSEPORT socket is only opened once a plain socket could listen on
 * the address: otherwise a second Ferry started on the port of a running one would share it and silently split the
 * pushes between two stores, where the Pushgateway fails with "address already in use". */
static int open_listener(const char *addr, int reuseport, int check_free, char *err, size_t errcap)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL) {
        snprintf(err, errcap, "listen tcp %s: address %s: missing port in address", addr, addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), addr + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = host[0] == '\0' ? AF_INET6 : AF_UNSPEC;
    int gai = getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0 && host[0] == '\0') {
        hints.ai_family = AF_INET;
        gai = getaddrinfo(NULL, colon + 1, &hints, &res);
    }
    if (gai != 0) {
        snprintf(err, errcap, "listen tcp %s: %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd, on = 1, off = 0;
    if (reuseport && check_free) {
        if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            goto Error;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (res->ai_family == AF_INET6 && host[0] == '\0')
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0)
            goto Error;
        close(fd);
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto Error;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    if (res->ai_family == AF_INET6 && host[0] == '\0')
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)
        goto Error;
    freeaddrinfo(res);
    return fd;
Error:
    /* Go's wording: "listen tcp 127.0.0.1:9091: bind: address already in use" */
    snprintf(err, errcap, "listen tcp %s: bind: %s", addr, strerror(errno));
    char *msg = strstr(err, "bind: ");
    if (msg != NULL && msg[6] >= 'A' && msg[6] <= 'Z')
        msg[6] = (char)(msg[6] - 'A' + 'a');
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

/* An activated socket's address for the log ("127.0.0.1:9091", "[::1]:9091", a unix path). Sets TCP_NODELAY on a
 * TCP one, as open_listener does (accepted sockets inherit it). */
static const char *activated_name(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    int on = 1;
    snprintf(buf, cap, "fd %d", fd);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return buf;
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(buf, cap, "%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path)), ((struct sockaddr_un *)&ss)->sun_path);
    }
    return buf;
}

#define ACCEPT_TICK_MS 10 /* the pause timer's step */
#define ACCEPT_MAX_PAUSE_MS 1000
#define ACCEPT_LOG_EVERY_MS 10000

static void set_listeners_reading(fy_thread_t *t, int on);

static void on_accept_pause(h2o_timeout_entry_t *entry)
{
    fy_thread_t *t = H2O_STRUCT_FROM_MEMBER(fy_thread_t, accept_entry, entry);
    if (t->pause_left_ms > ACCEPT_TICK_MS) {
        t->pause_left_ms -= ACCEPT_TICK_MS;
        h2o_timeout_link(t->ctx.loop, &t->accept_pause, &t->accept_entry);
        return;
    }
    t->pause_left_ms = 0;
    if (!atomic_load(&shutdown_requested))
        set_listeners_reading(t, 1);
}

/* accept(2) failed for want of a resource (descriptors, socket buffers): the pending connection stays in the
 * backlog and the listener stays readable, so accepting again at once would spin. Pause this loop's listeners,
 * doubling the pause from 10 ms to 1 s while the failures go on (as Go's net/http does), count each failure and log
 * at most one line per 10 s. */
static void accept_failed(fy_thread_t *t, int err)
{
    fy_accept_error_t kind = err == EMFILE                     ? FY_ACCEPT_EMFILE
                             : err == ENFILE                   ? FY_ACCEPT_ENFILE
                             : err == ENOBUFS || err == ENOMEM ? FY_ACCEPT_ENOBUFS
                                                               : FY_ACCEPT_OTHER;
    if (handlers.stats != NULL)
        atomic_fetch_add_explicit(&handlers.stats->accept_errors[kind], 1, memory_order_relaxed);
    uint64_t now = h2o_now(t->ctx.loop);
    t->backoff_ms = t->backoff_ms == 0 ? ACCEPT_TICK_MS : t->backoff_ms * 2;
    if (t->backoff_ms > ACCEPT_MAX_PAUSE_MS)
        t->backoff_ms = ACCEPT_MAX_PAUSE_MS;
    t->unlogged_errors++;
    if (t->last_accept_log == 0 || now - t->last_accept_log >= ACCEPT_LOG_EVERY_MS) {
        char n[24], pause[24];
        snprintf(n, sizeof(n), "%" PRIu64, t->unlogged_errors);
        snprintf(pause, sizeof(pause), "%ums", t->backoff_ms);
        fy_log_error("msg", "accept failed; pausing the listener", "err", strerror(err), "failures", n, "pause", pause);
        t->last_accept_log = now;
        t->unlogged_errors = 0;
    }
    set_listeners_reading(t, 0);
    t->pause_left_ms = t->backoff_ms;
    h2o_timeout_link(t->ctx.loop, &t->accept_pause, &t->accept_entry);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    fy_thread_t *t = listener->data;
    h2o_socket_t *sock;
    if (err != NULL || t->pause_left_ms != 0)
        return;
    /* drain a few per wake-up, like h2o's server does, without starving the loop */
    for (int i = 0; i < 16; i++) {
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                accept_failed(t, e);
            return; /* EAGAIN: drained; ECONNABORTED and the like: the next wake-up tries again */
        }
        t->backoff_ms = 0;
        fy_guard_attach(&t->guard, sock);
        loop_config(t); /* a reload's certificate is used from the next connection on */
        h2o_accept(&t->accept_ctx, sock);
    }
}

static void set_listeners_reading(fy_thread_t *t, int on)
{
    for (size_t i = 0; i < t->nfds; i++) {
        if (on)
            h2o_socket_read_start(t->listeners[i], on_accept);
        else
            h2o_socket_read_stop(t->listeners[i]);
    }
}

static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    /* nothing to do: the wake-up itself makes the loop re-check shutdown_requested */
}

static void *run_loop(void *arg)
{
    fy_thread_t *t = arg;
    thread_index = t->index;
    char name[16]; /* for top -H, perf and the benchmark scripts */
    snprintf(name, sizeof(name), "ferry-loop%d", t->index);
    pthread_setname_np(pthread_self(), name);
    h2o_context_init(&t->ctx, h2o_evloop_create(), &config);
    h2o_multithread_register_receiver(t->ctx.queue, &t->wakeup, on_wakeup);
    h2o_multithread_register_receiver(t->ctx.queue, &t->defer_rx, on_defer_message);
    h2o_multithread_register_receiver(t->ctx.queue, &t->auth_rx, on_auth_message);
    h2o_multithread_register_receiver(t->ctx.queue, &t->reload_rx, on_reload_message);
    fy_defer_queue_init(&t->deferred);
    atomic_store(&t->defer_ready, 1);
    pthread_barrier_wait(&loops_registered);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = config.hosts;
    loop_config(t); /* the start-up configuration, and its SSL_CTX with TLS */
    fy_guard_loop_init(&t->guard, &t->accept_ctx);
    if (t->guard.active) /* the guard's timeouts govern; h2o's own (one for the whole request) only backs them up */
        t->ctx.http1.req_timeout.timeout = guard_backstop_ms;
    h2o_timeout_init(t->ctx.loop, &t->accept_pause, ACCEPT_TICK_MS);
    h2o_timeout_init(t->ctx.loop, &t->auth_slow, AUTH_SLOW_ANSWER_MS);
    t->accept_entry.cb = on_accept_pause;
    for (size_t i = 0; i < t->nfds; i++) {
        t->listeners[i] = h2o_evloop_socket_create(t->ctx.loop, t->fds[i], H2O_SOCKET_FLAG_DONT_READ);
        t->listeners[i]->data = t;
    }
    set_listeners_reading(t, 1);
    while (!atomic_load(&shutdown_requested)) {
        h2o_evloop_run(t->ctx.loop, INT32_MAX);
        loop_config(t); /* a quiescent point: a reload's wake-up lands here, and the old generation is let go */
    }

    if (h2o_timeout_is_linked(&t->accept_entry))
        h2o_timeout_unlink(&t->accept_entry);
    for (size_t i = 0; i < t->nfds; i++) {
        h2o_socket_read_stop(t->listeners[i]);
        h2o_socket_close(t->listeners[i]);
    }
    h2o_context_request_shutdown(&t->ctx);
    /* deferred answers: a push acknowledged before exit is durable, so each one waits for its release */
    uint64_t until = h2o_now(t->ctx.loop) + 1500;
    while (h2o_now(t->ctx.loop) < until || t->deferred.count > 0)
        h2o_evloop_run(t->ctx.loop, 100);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Reloads
 *
 * SIGHUP, and PUT/POST /-/reload with --web.enable-lifecycle, re-read --web.config.file (users, headers, TLS) while
 * the store and every connection stay. SIGHUP used to end the process (its default action), and a store without
 * persistence with it; the reference Pushgateway 1.5.1 still dies of it and has no /-/reload (404).
 *
 * Every reload runs on the signal thread, one at a time, off the loops: a /-/reload request is parked in
 * reload_queue and its loop raises SIGHUP for the process (blocked in every thread, so it waits for the signal
 * thread's sigwait). The signal thread takes the whole queue, loads and checks the file, and publishes the new
 * configuration as the next generation (gen.h) only if it is valid; then it answers each parked request on its own
 * loop with the outcome. A request queued after the queue was taken has its SIGHUP still pending and gets the next
 * reload, so none is answered with a load that started before it asked. A broken file changes nothing: the old
 * generation stays in force, the error is logged with the file, and /-/reload answers 500 with it (Prometheus's
 * answer). ferry_config_last_reload_successful and ..._success_timestamp_seconds record the outcome. */

typedef struct st_reload_wait_t {
    struct st_reload_wait_t *next; /* reload_queue's link (reload_lock) */
    h2o_multithread_message_t msg;
    fy_thread_t *t;
    h2o_req_t *req;                /* NULL once h2o has disposed of the request (loop thread only) */
    struct st_reload_wait_t **ref; /* the pointer to this entry in req->pool, NULL with req (loop thread only) */
    int ok;                        /* set by the signal thread before it sends msg */
    char err[1200];
} reload_wait_t;

static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER; /* a leaf lock: guards reload_queue only */
static reload_wait_t *reload_queue;

static void forget_reload_wait(void *p)
{
    reload_wait_t *w = *(reload_wait_t **)p;
    if (w != NULL) {
        w->req = NULL;
        w->ref = NULL;
    }
}

/* A loop, for /-/reload: park the request and ask the signal thread. */
static void request_reload(h2o_req_t *req)
{
    reload_wait_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        h2o_fatal("no memory");
    w->t = &threads[thread_index];
    w->req = req;
    w->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*w->ref), forget_reload_wait);
    *w->ref = w;
    pthread_mutex_lock(&reload_lock);
    w->next = reload_queue;
    reload_queue = w;
    pthread_mutex_unlock(&reload_lock);
    kill(getpid(), SIGHUP);
}

/* A loop: the signal thread's answers to this loop's /-/reload requests. */
static void on_reload_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        reload_wait_t *w = H2O_STRUCT_FROM_MEMBER(reload_wait_t, msg, m);
        h2o_req_t *req = w->req;
        if (w->ref != NULL)
            *w->ref = NULL;
        if (req != NULL && w->ok) {
            fy_server_respond(req, 200, NULL, NULL, NULL, 0);
        } else if (req != NULL) {
            char *body = h2o_mem_alloc_pool(&req->pool, sizeof(w->err) + 32);
            int n = snprintf(body, sizeof(w->err) + 32, "failed to reload config: %s", w->err);
            fy_server_error(req, 500, body, (size_t)n < sizeof(w->err) + 32 ? (size_t)n : sizeof(w->err) + 31);
        }
        free(w);
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_reload(int ok)
{
    if (handlers.stats != NULL)
        fy_selfstats_config_reload(handlers.stats, ok, now_seconds());
}

/* The signal thread: loads --web.config.file again and publishes it if it is valid. 0, or -1 with err filled (the
 * configuration in force is kept). */
static int reload_web_config(char *err, size_t cap)
{
    if (webcfg_path == NULL) {
        fy_log_info("msg", "reload: no --web.config.file, nothing to re-read");
        return 0;
    }
    fy_webcfg_err_t werr;
    fy_webcfg_t *next = fy_webcfg_load(webcfg_path, &werr);
    if (next != NULL) {
        fy_gen_t *cur = fy_gen_current(&webcfg_slot);
        if (cur != NULL && fy_webcfg_reload_check(cur->obj, next, &werr) != 0) {
            fy_webcfg_free(next);
            next = NULL;
        }
        fy_gen_unref(cur);
    }
    if (next != NULL && fy_gen_publish(&webcfg_slot, next, destroy_webcfg) == 0) {
        fy_webcfg_free(next);
        next = NULL;
        snprintf(werr.msg, sizeof(werr.msg), "out of memory");
        werr.line = 0;
        werr.key[0] = '\0';
    }
    if (next == NULL) {
        char line[16];
        snprintf(line, sizeof(line), "%u", werr.line);
        fy_log_error("msg", "could not reload the web configuration; the one in force is kept", "file", webcfg_path, "line",
                     werr.line != 0 ? line : "", "key", werr.key, "err", werr.msg);
        snprintf(err, cap, "%s", werr.msg);
        count_reload(0);
        return -1;
    }
    /* wake every loop, so that an idle one also takes the new generation up (and lets go of the old one) */
    for (int i = 0; i < nthreads; i++)
        h2o_multithread_send_message(&threads[i].wakeup, NULL);
    char users[24], headers[24];
    snprintf(users, sizeof(users), "%zu", next->nusers);
    snprintf(headers, sizeof(headers), "%zu", next->nheaders);
    fy_log_info("msg", "reloaded the web configuration", "file", webcfg_path, "users", users, "headers", headers, "tls",
                next->tls_enabled ? "true" : "false");
    count_reload(1);
    return 0;
}

/* The signal thread, on SIGHUP (from outside, or raised by /-/reload): one reload for everything asked so far. */
static void on_sighup(void)
{
    pthread_mutex_lock(&reload_lock);
    reload_wait_t *w = reload_queue;
    reload_queue = NULL;
    pthread_mutex_unlock(&reload_lock);
    fy_log_info("msg", w != NULL ? "reload requested via web service" : "received SIGHUP; reloading");
    char err[sizeof(w->err)];
    err[0] = '\0';
    int ok = reload_web_config(err, sizeof(err)) == 0;
    while (w != NULL) {
        reload_wait_t *next = w->next; /* read first: the loop may free w once it has the message */
        w->ok = ok;
        memcpy(w->err, err, sizeof(err));
        h2o_multithread_send_message(&w->t->reload_rx, &w->msg);
        w = next;
    }
}

/* Sets the flag and wakes every loop; safe from any thread, idempotent. */
static void request_shutdown(void)
{
    if (atomic_exchange(&shutdown_requested, 1))
        return;
    for (int i = 0; i < nthreads; i++)
        h2o_multithread_send_message(&threads[i].wakeup, NULL);
}

/* The signal thread: SIGHUP reloads (and the thread goes on waiting), SIGINT/SIGTERM shut down (and it returns). */
static void *wait_signals(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            on_sighup();
            continue;
        }
        atomic_store(&signal_seen, 1);
        if (!atomic_load(&shutdown_requested)) {
            fy_log_info("msg", "received SIGINT/SIGTERM; exiting gracefully...");
            request_shutdown();
        }
        return NULL;
    }
}

int fy_server_run(const fy_flags_t *f, const fy_handlers_t *h, fy_webcfg_t *wc)
{
    char err[512];
    int rc = 1;
    size_t nlisten = f->nlisten;
    /* activated sockets are one per address, given: every loop accepts on a dup() of each, as with --no-web.reuseport */
    int reuse = f->reuseport && !f->systemd_socket;
    int nsock_threads = reuse ? f->threads : 1;
    int activated[FY_SD_MAX_FDS];
    int *fds = NULL;
    static sigset_t set;

    flags = f;
    handlers = *h;
    nthreads = f->threads;
    /* the start-up configuration is generation 1; the server owns it from here on */
    fy_gen_slot_init(&webcfg_slot);
    if (wc != NULL) {
        webcfg_path = f->web_config_file;
        if (fy_gen_publish(&webcfg_slot, wc, destroy_webcfg) == 0) {
            fy_log_error("msg", "HTTP server stopped", "err", "out of memory");
            fy_webcfg_free(wc);
            free(fds);
            return 1;
        }
        count_reload(1); /* the start-up load counts as the last successful one, as in Prometheus */
    }
    format_start_time();
    build_status_json();

    const char *ext = f->external_url, *ext_path = "", *sep = strstr(ext, "://");
    if (sep != NULL && (ext_path = strchr(sep + 3, '/')) == NULL)
        ext_path = "";
    fy_router_init(&router, f->route_prefix, ext_path, f->telemetry_path, f->enable_admin_api, f->enable_lifecycle);
    fy_log_debug("msg", "path prefix for internal routing", "path", router.prefix);

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); /* main.c blocks it first thing; here for a caller that did not */
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (f->systemd_socket) {
        /* exporter-toolkit's wording; --web.listen-address is ignored, as there */
        fy_log_info("msg", "Listening on systemd activated listeners instead of port listeners.");
        int n = fy_sd_listeners(activated, FY_SD_MAX_FDS, err, sizeof(err));
        if (n < 0) {
            fy_log_error("msg", "HTTP server stopped", "err", err);
            goto Exit;
        }
        nlisten = (size_t)n;
    }
    fds = calloc((size_t)nsock_threads * nlisten, sizeof(int));
    for (size_t a = 0; a < nlisten; a++) {
        char name[INET6_ADDRSTRLEN + 16];
        const char *addr = f->systemd_socket ? activated_name(activated[a], name, sizeof(name)) : f->listen[a];
        for (int t = 0; t < nsock_threads; t++) {
            int fd = f->systemd_socket ? activated[a] : open_listener(f->listen[a], reuse, t == 0, err, sizeof(err));
            if (fd < 0) {
                fy_log_error("msg", "HTTP server stopped", "err", err);
                goto Exit;
            }
            fds[(size_t)t * nlisten + a] = fd;
        }
        fy_log_info("msg", "Listening on", "address", addr);
        if (wc != NULL && wc->tls_enabled)
            fy_log_info("msg", "TLS is enabled.", "http2", wc->http2 ? "true" : "false", "address", addr);
        else
            fy_log_info("msg", "TLS is disabled.", "http2", "true", "address", addr);
    }

    h2o_config_init(&config);
    {
        fy_guard_config_t gc = {
            .header_timeout_ms = (uint64_t)(f->read_header_timeout_ns / 1000000),
            .idle_timeout_ms = (uint64_t)(f->idle_timeout_ns / 1000000),
            .read_timeout_ms = (uint64_t)(f->read_timeout_ns / 1000000),
            .max_header_bytes = (size_t)f->max_header_bytes,
            .inflight_budget = f->max_inflight_bytes,
            .stats = handlers.stats,
        };
        fy_guard_global_init(&gc);
        /* past every limit of the guard, so that only the guard cuts a request; a day when there is no total limit */
        guard_backstop_ms = gc.read_timeout_ms != 0 ? gc.read_timeout_ms + 5000 : 86400000;
        if (handlers.stats != NULL)
            handlers.stats->inflight_bytes = fy_guard_inflight_bytes;
    }
    config.max_request_entity_size = f->max_body_bytes < SIZE_MAX ? (size_t)f->max_body_bytes + 1 : SIZE_MAX;
    config.server_name = h2o_iovec_init(H2O_STRLIT(""));
    int n = snprintf(too_large_buf, sizeof(too_large_buf), "request body exceeds --push.max-body-bytes=%" PRIu64 "\n",
                     f->max_body_bytes);
    too_large_msg = h2o_iovec_init(too_large_buf, (size_t)n);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_filter_t *limit_filter = h2o_create_filter(&host->fallback_path, sizeof(*limit_filter));
    limit_filter->on_setup_ostream = limit_filter_setup_ostream;
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    threads = calloc((size_t)nthreads, sizeof(*threads));
    for (int t = 0; t < nthreads; t++) {
        fy_thread_t *th = &threads[t];
        th->index = t;
        th->nfds = nlisten;
        th->fds = calloc(nlisten, sizeof(int));
        th->listeners = calloc(nlisten, sizeof(h2o_socket_t *));
        for (size_t a = 0; a < nlisten; a++)
            th->fds[a] = reuse ? fds[(size_t)t * nlisten + a] : (t == 0 ? fds[a] : dup(fds[a]));
    }
    /* every wake-up receiver exists before anything can call request_shutdown: contexts are created inside the
     * threads, which only start accepting after the barrier; signals stay pending until the waiter runs */
    atomic_store(&threads_pub, threads);
    /* with a web config file even without users: a reload may add some */
    if (wc != NULL && fy_auth_pool_start((unsigned)f->auth_workers, (size_t)f->auth_workers * AUTH_QUEUE_PER_WORKER) != 0) {
        fy_log_error("msg", "HTTP server stopped", "err", "could not start the password-check threads");
        goto Exit;
    }
    pthread_barrier_init(&loops_registered, NULL, (unsigned)nthreads + 1);
    for (int t = 0; t < nthreads; t++)
        pthread_create(&threads[t].tid, NULL, run_loop, &threads[t]);
    pthread_barrier_wait(&loops_registered);
    pthread_create(&signal_waiter, NULL, wait_signals, &set);

    for (int t = 0; t < nthreads; t++)
        pthread_join(threads[t].tid, NULL);
    /* after /-/quit the waiter is still in sigwait(): hand it the signal it waits for (it sees the flag, logs nothing) */
    if (!atomic_load(&signal_seen))
        pthread_kill(signal_waiter, SIGTERM);
    pthread_join(signal_waiter, NULL);
    /* the loops are gone: checks still queued have no request to answer */
    for (fy_auth_task_t *left = fy_auth_pool_stop(), *next; left != NULL; left = next) {
        next = left->next;
        fy_webcfg_auth_job_free(&left->job);
        free_auth_wait(H2O_STRUCT_FROM_MEMBER(auth_wait_t, task, left));
    }
    /* and reloads asked for after the signal thread stopped have no one to do them */
    for (reload_wait_t *w = reload_queue, *next; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    reload_queue = NULL;
    /* the loops' references to the web configuration, then the slot's: the last one frees it */
    for (int t = 0; t < nthreads; t++) {
        fy_gen_unref(threads[t].cfg_gen);
        threads[t].cfg_gen = NULL;
        threads[t].cfg = NULL;
    }
    fy_gen_slot_dispose(&webcfg_slot);
    pthread_barrier_destroy(&loops_registered);
    fy_log_info("msg", "HTTP server stopped");
    if (handlers.shutdown != NULL)
        handlers.shutdown(handlers.ctx);
    rc = 0;
Exit:
    if (rc != 0) /* failed before any loop started: the slot holds the only reference */
        fy_gen_slot_dispose(&webcfg_slot);
    free(fds);
    return rc;
}
