/*
 * endpoints_change.c: the endpoints that change the store, as thin adapters: request -> change (change.h) ->
 * fy_core_apply -> response. A change that must be durable first (the write-ahead log's sequence number in the
 * result) parks its request (fy_server_defer) until the log's writer has synced it.
 */
#include "endpoints.h"

#include <errno.h>
#include <netinet/in.h> /* INET6_ADDRSTRLEN */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fy_num.h"
#include "life.h"
#include "log.h"

static fy_push_arena_t *thread_arena(fy_app_t *app)
{
    return fy_app_arena(app, fy_server_thread_index());
}

static void to_store_labels(const fy_gk_label_t *in, size_t n, fy_store_label_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].name = fy_str(in[i].name, in[i].name_len);
        out[i].value = fy_str(in[i].value, in[i].value_len);
    }
}

/* client_golang's approximate request size: URL, method, protocol, header names and values, host, Content-Length. */
static double approx_request_size(h2o_req_t *req)
{
    size_t s = req->path.len + req->method.len + (req->version >= 0x200 ? 8 : 8);
    for (size_t i = 0; i < req->headers.size; i++)
        s += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    s += req->authority.len;
    if (req->entity.base != NULL) { /* the Content-Length value, as promhttp adds r.ContentLength's digits */
        char digits[21];
        s += fy_format_uint64(req->entity.len, digits);
    }
    return (double)s;
}

/* A change that could not be made durable: counted in ferry_persistence_log_errors_total and logged, unless the log
 * has failed: that was logged once, and a line per refused change would flood the log at the push rate. */
static void count_not_persisted(fy_app_t *app, const char *what, const char *why)
{
    fy_selfstats_wal_error(&app->stats);
    if (!atomic_load(&app->stats.wal_failed))
        fy_log_error("msg", "could not persist a change before answering", "what", what, "err", why);
}

/* Its 500, counted: "could not persist the <what>: <why>" in pool (no message when pool is NULL: nobody reads it). */
static fy_result_t not_persisted(fy_app_t *app, h2o_mem_pool_t *pool, const char *what, const char *why)
{
    count_not_persisted(app, what, why);
    fy_result_t r = {500, NULL, 0};
    if (pool != NULL) {
        size_t n = (size_t)snprintf(NULL, 0, "could not persist the %s: %s", what, why);
        char *m = h2o_mem_alloc_pool(pool, n + 1);
        snprintf(m, n + 1, "could not persist the %s: %s", what, why);
        r.msg = m;
        r.msg_len = n;
    }
    return r;
}

/* A change's answer for the server: msg copied into the request's pool (the result is freed by the caller). */
static fy_result_t answer(fy_app_t *app, const fy_change_result_t *r, h2o_mem_pool_t *pool, const char *what)
{
    if (r->not_persisted)
        count_not_persisted(app, what, r->why);
    fy_result_t a = {r->status, NULL, r->msg_len};
    if (r->msg_len != 0 && pool != NULL) {
        char *m = h2o_mem_alloc_pool(pool, r->msg_len);
        memcpy(m, r->msg, r->msg_len);
        a.msg = m;
    } else {
        a.msg_len = 0;
    }
    return a;
}

/* A change whose record is submitted but not yet durable: the request is parked and answered by on_durable once the
 * log's writer has synced it (the app's durable callback -> fy_server_release). */
typedef struct {
    fy_app_t *app;
    fy_result_t r;    /* the answer once durable; msg in the request's pool */
    const char *what; /* "push", "deletion", "wipe" */
    int push, post;   /* pushes feed the push-duration summary when answered */
    int64_t now;      /* the request's time */
    double size;      /* approx_request_size, taken while the request was there */
} durable_wait_t;

/* Replication's time-out: the write quorum did not hold the change within --cluster.ack-timeout. 503, so that a load
 * balancer retries another replica (a retry is harmless: changes merge last-writer-wins); the outcome is not known. */
#define FY_QUORUM_TIMEOUT                                                                                                          \
    "cluster: not held by the write quorum within --cluster.ack-timeout; the change may still reach the other replicas "           \
    "(retrying it is safe)"

static fy_result_t on_durable(void *data, h2o_req_t *req, int err)
{
    durable_wait_t *w = data;
    fy_result_t r = w->r;
    if (err == ETIMEDOUT && w->app->cluster != NULL)
        r = (fy_result_t){503, FY_QUORUM_TIMEOUT, sizeof(FY_QUORUM_TIMEOUT) - 1};
    else if (err != 0)
        r = not_persisted(w->app, req != NULL ? &req->pool : NULL, w->what, fy_wal_why(&w->app->wal, err));
    if (w->push)
        fy_selfstats_push(&w->app->stats, (unsigned)fy_server_thread_index(), w->post, (double)(fy_now_ns() - w->now) / 1e9,
                          w->size, w->now);
    return r;
}

/* Parks the request until seq is durable (returns the wait's state), or, off the loops, waits here (returns NULL
 * with *a updated when that fails). */
static durable_wait_t *durable(fy_app_t *app, uint64_t seq, fy_result_t *a, const char *what, h2o_mem_pool_t *pool)
{
    if (!fy_server_can_defer()) {
        const char *why = fy_core_wait(&app->core, seq);
        if (why != NULL)
            *a = not_persisted(app, pool, what, why);
        return NULL;
    }
    durable_wait_t *w = fy_server_defer(seq, on_durable, sizeof(*w));
    w->app = app;
    w->r = *a;
    w->what = what;
    return w;
}

/* The push's X-Ferry-TTL and X-Ferry-Interval headers; returns 0, or -1 with the 400 message in err. */
static int read_life(h2o_req_t *req, fy_store_life_t *life, int *declared, char *err, size_t errcap)
{
    static const struct {
        const char *name, *shown;
    } hs[2] = {{FY_TTL_HEADER, "X-Ferry-TTL"}, {FY_INTERVAL_HEADER, "X-Ferry-Interval"}};
    *declared = 0;
    for (int k = 0; k < 2; k++) {
        ssize_t i = h2o_find_header_by_str(&req->headers, hs[k].name, strlen(hs[k].name), -1);
        if (i < 0)
            continue;
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        if (fy_life_parse_header(hs[k].shown, v->base, v->len, k == 0 ? &life->ttl_ns : &life->interval_ns, err, errcap) != 0)
            return -1;
        *declared = 1;
    }
    return 0;
}

fy_result_t fy_http_push(void *ctx, const fy_push_t *p)
{
    fy_http_t *h = ctx;
    fy_app_t *app = h->app;
    fy_store_life_t life = {0, 0};
    int declared = 0;
    char lerr[256];
    if (p->req != NULL && read_life(p->req, &life, &declared, lerr, sizeof(lerr)) != 0) {
        size_t n = strlen(lerr);
        char *m = h2o_mem_alloc_pool(p->pool, n);
        memcpy(m, lerr, n);
        return (fy_result_t){400, m, n};
    }
    fy_store_label_t *gk = h2o_mem_alloc_pool(p->pool, sizeof(*gk) * (p->nlabels ? p->nlabels : 1));
    to_store_labels(p->labels, p->nlabels, gk);
    fy_change_t c = {.kind = FY_CHANGE_PUSH,
                     .origin = FY_ORIGIN_CLIENT,
                     .now_ns = (int64_t)p->now.tv_sec * 1000000000 + p->now.tv_nsec,
                     .labels = gk,
                     .nlabels = p->nlabels,
                     .post = p->method == FY_PUSH_POST,
                     .format = p->format,
                     .body = p->body,
                     .body_len = p->body_len,
                     .life = declared ? &life : NULL};
    fy_change_result_t r;
    fy_core_apply(&app->core, &c, thread_arena(app), &r);
    if (r.log_failure && fy_log_enabled(FY_LOG_ERROR)) {
        /* The log line's err is the reason alone, as the reference logs it. */
        static const char prefix[] = "pushed metrics are invalid or inconsistent with existing metrics: ";
        size_t skip = r.msg_len >= sizeof(prefix) - 1 && memcmp(r.msg, prefix, sizeof(prefix) - 1) == 0 ? sizeof(prefix) - 1 : 0;
        char source[INET6_ADDRSTRLEN + 16] = "";
        if (p->req != NULL)
            fy_server_remote_addr(p->req, source, sizeof(source));
        fy_log_error("msg", "pushed metrics are invalid or inconsistent with existing metrics", "method", c.post ? "POST" : "PUT",
                     "source", source, "err", r.msg + skip);
    }
    fy_result_t a = answer(app, &r, p->pool, "push");
    uint64_t seq = r.seq;
    int applied = r.applied;
    fy_change_result_free(&r);
    if (seq != 0) {
        /* answered (and timed for the push-duration summary) once the record is durable */
        durable_wait_t *w = durable(app, seq, &a, "push", p->pool);
        if (w != NULL) {
            w->push = 1;
            w->post = c.post;
            w->now = c.now_ns;
            w->size = approx_request_size(p->req);
            return FY_DEFERRED;
        }
    }
    if (p->req != NULL && applied)
        fy_selfstats_push(&app->stats, (unsigned)fy_server_thread_index(), c.post, (double)(fy_now_ns() - c.now_ns) / 1e9,
                          approx_request_size(p->req), c.now_ns);
    return a;
}

/* Applies a delete or a wipe and answers it, at once or once durable (FY_DEFERRED). */
static fy_result_t run(fy_app_t *app, const fy_change_t *c, h2o_mem_pool_t *pool, const char *what)
{
    fy_change_result_t r;
    fy_core_apply(&app->core, c, NULL, &r);
    fy_result_t a = answer(app, &r, pool, what);
    uint64_t seq = r.seq;
    fy_change_result_free(&r);
    if (seq != 0 && durable(app, seq, &a, what, pool) != NULL)
        return FY_DEFERRED;
    return a;
}

fy_result_t fy_http_delete(void *ctx, const fy_gk_label_t *labels, size_t nlabels, h2o_mem_pool_t *pool)
{
    fy_http_t *h = ctx;
    fy_store_label_t *gk = h2o_mem_alloc_pool(pool, sizeof(*gk) * (nlabels ? nlabels : 1));
    to_store_labels(labels, nlabels, gk);
    fy_change_t c = {.kind = FY_CHANGE_DELETE, .origin = FY_ORIGIN_CLIENT, .now_ns = fy_now_ns(), .labels = gk, .nlabels = nlabels};
    return run(h->app, &c, pool, "deletion");
}

fy_result_t fy_http_wipe(void *ctx, h2o_mem_pool_t *pool)
{
    fy_http_t *h = ctx;
    fy_change_t c = {.kind = FY_CHANGE_WIPE, .origin = FY_ORIGIN_CLIENT, .now_ns = fy_now_ns()};
    return run(h->app, &c, pool, "wipe");
}

/* DELETE P/api/v1/admin/groups?match[]=...&older_than=...: one request, one JSON answer with the count. */
static int respond_json_error(h2o_req_t *req, int status, const char *type, const char *msg)
{
    char *b = NULL;
    size_t n = 0, cap = 0;
    fy_json_quote(fy_str(type, strlen(type)), &b, &n, &cap);
    size_t tl = n;
    fy_json_quote(fy_str(msg, strlen(msg)), &b, &n, &cap);
    size_t len =
        (size_t)snprintf(NULL, 0, "{\"status\":\"error\",\"errorType\":%.*s,\"error\":%.*s}", (int)tl, b, (int)(n - tl), b + tl);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    snprintf(body, len + 1, "{\"status\":\"error\",\"errorType\":%.*s,\"error\":%.*s}", (int)tl, b, (int)(n - tl), b + tl);
    free(b);
    fy_server_respond(req, status, NULL, "application/json", body, len);
    return 0;
}

int fy_http_bulk_delete(void *ctx, h2o_req_t *req)
{
    fy_http_t *h = ctx;
    fy_app_t *app = h->app;
    const char *q = "";
    size_t qlen = 0;
    if (req->query_at != SIZE_MAX) {
        q = req->path.base + req->query_at + 1;
        qlen = req->path.len - req->query_at - 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fy_change_t c = {.kind = FY_CHANGE_BULK, .origin = FY_ORIGIN_CLIENT, .now_ns = fy_now_ns(), .body = q, .body_len = qlen};
    fy_change_result_t r;
    fy_core_apply(&app->core, &c, NULL, &r);
    /* a rare admin request: it waits for its sync on the loop rather than being parked like a push */
    const char *unsynced = r.seq != 0 ? fy_core_wait(&app->core, r.seq) : NULL;
    if (unsynced != NULL && app->cluster != NULL && strncmp(unsynced, "cluster:", 8) == 0) {
        respond_json_error(req, 503, "unavailable", unsynced); /* no write quorum in time: the outcome is not known */
    } else if (unsynced != NULL) {
        count_not_persisted(app, "bulk delete", unsynced); /* the answer is JSON */
        respond_json_error(req, 500, "internal", unsynced);
    } else if (r.status == 503) {
        respond_json_error(req, 503, "unavailable", r.msg);
    } else if (r.status == 400) {
        respond_json_error(req, 400, "bad_data", r.msg);
    } else if (r.status != 200) {
        answer(app, &r, NULL, "bulk delete"); /* counted and logged; the answer is JSON */
        respond_json_error(req, 500, "internal", r.not_persisted ? r.why : r.msg);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        char cnt[32], secs[32];
        snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)r.deleted);
        snprintf(secs, sizeof(secs), "%.6f", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        fy_log_info("msg", "bulk delete", "query", fy_log_enabled(FY_LOG_INFO) ? h2o_strdup(&req->pool, q, qlen).base : "",
                    "deleted", cnt, "seconds", secs);
        size_t len = (size_t)snprintf(NULL, 0, "{\"status\":\"success\",\"data\":{\"deleted\":%s}}", cnt);
        char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
        snprintf(body, len + 1, "{\"status\":\"success\",\"data\":{\"deleted\":%s}}", cnt);
        fy_server_respond(req, 200, NULL, "application/json", body, len);
    }
    fy_change_result_free(&r);
    return 0;
}
