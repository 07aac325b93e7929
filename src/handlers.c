/*
 * handlers.c: the store-backed endpoints behind the server's seam (fy_handlers_t in server.h): push, delete, wipe,
 * the scrape (content negotiation, gzip), /api/v1/metrics and the web UI. Owns the application state (fy_app_t):
 * the store, the self-metrics and one parser arena per loop thread.
 *
 * Threads: every callback runs on a loop thread; the only state a callback writes is its own thread's arena and
 * stats slot (indexed by fy_server_thread_index()), and the store, which does its own locking.
 */
#include "handlers.h"

#include <assert.h>
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "le.h"
#include "log.h"
#include "negotiate.h"
#include "persist_log.h"
#include "router.h"
#include "push.h"
#include "ui.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* Responses from the store. Two ways, one generator:
 *  - collected: a render pushes its output through out_writer into a list of malloc'd chunks (gzip-compressed as it
 *    comes when asked), sent 16 chunks at a time once the render is done (the scrape);
 *  - pulled: a source (out_pull_t) produces the body one bounded part at a time, and each part is produced only when
 *    h2o has sent the previous one (proceed), so one response holds one part however large the body
 *    (/api/v1/metrics, the web UI). A body that fits one part is sent with its Content-Length, a larger one chunked.
 * Everything is freed with the request's pool, also when the client goes away mid-body. */

/* Produces the next part of a body into *p, *n (valid until the next call); returns 1 while more follows, 0 with the
 * last part. */
typedef int (*out_pull_t)(void *src, const char **p, size_t *n);

typedef struct st_out_t {
    h2o_iovec_t *v;
    size_t n, cap;
    size_t total;
    size_t sent; /* chunks handed to h2o so far */
    int gzip;
    z_stream z;
    int z_ready;
    int oom;
    h2o_generator_t gen;
    h2o_req_t *req;
    out_pull_t pull; /* pulled mode: the source, freed with src_free */
    void *src;
    void (*src_free)(void *src);
} out_t;

#define OUT_CHUNK (64u << 10)

static void out_push(out_t *o, char *p, size_t n)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        h2o_iovec_t *v = realloc(o->v, cap * sizeof(*v));
        if (v == NULL) {
            free(p);
            o->oom = 1;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = h2o_iovec_init(p, n);
    o->total += n;
}

static int out_deflate(out_t *o, const char *buf, size_t len, int flush)
{
    o->z.next_in = (Bytef *)buf;
    o->z.avail_in = (uInt)len;
    do {
        char *chunk = malloc(OUT_CHUNK);
        if (chunk == NULL) {
            o->oom = 1;
            return -1;
        }
        o->z.next_out = (Bytef *)chunk;
        o->z.avail_out = OUT_CHUNK;
        int rc = deflate(&o->z, flush);
        if (rc == Z_STREAM_ERROR) {
            free(chunk);
            o->oom = 1;
            return -1;
        }
        size_t have = OUT_CHUNK - o->z.avail_out;
        if (have)
            out_push(o, chunk, have);
        else
            free(chunk);
    } while (o->z.avail_out == 0 || (o->z.avail_in != 0));
    return 0;
}

static int out_writer(void *ctx, const char *buf, size_t len)
{
    out_t *o = ctx;
    if (len == 0)
        return 0;
    if (o->gzip)
        return out_deflate(o, buf, len, Z_NO_FLUSH);
    char *p = malloc(len);
    if (p == NULL) {
        o->oom = 1;
        return -1;
    }
    memcpy(p, buf, len);
    out_push(o, p, len);
    return o->oom ? -1 : 0;
}

static void out_dispose(void *p)
{
    out_t *o = p;
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i].base);
    free(o->v);
    if (o->z_ready)
        deflateEnd(&o->z);
    if (o->src_free)
        o->src_free(o->src);
}

static out_t *out_new(h2o_req_t *req, int gzip)
{
    out_t *o = h2o_mem_alloc_shared(&req->pool, sizeof(*o), out_dispose);
    memset(o, 0, sizeof(*o));
    o->req = req;
    if (gzip) {
        /* Level 1: a scrape of a large store must stay fast; the size is still about a tenth of the text. */
        if (deflateInit2(&o->z, 1, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
            o->gzip = 1;
            o->z_ready = 1;
        }
    }
    return o;
}

static int out_finish(out_t *o)
{
    if (o->gzip && !o->oom)
        out_deflate(o, NULL, 0, Z_FINISH);
    return o->oom ? -1 : 0;
}

/* Sends the chunks a few at a time, so that a large scrape does not queue 75 MB of iovecs in one go. */
#define SEND_BATCH 16

static void out_send_some(out_t *o)
{
    size_t left = o->n - o->sent;
    size_t k = left < SEND_BATCH ? left : SEND_BATCH;
    h2o_send_state_t st = o->sent + k == o->n ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    h2o_iovec_t *v = o->v + o->sent;
    o->sent += k;
    h2o_send(o->req, v, k, st);
}

static void out_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    out_t *o = H2O_STRUCT_FROM_MEMBER(out_t, gen, gen);
    out_send_some(o);
}

static void out_respond(out_t *o, const char *content_type)
{
    h2o_req_t *req = o->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    if (o->gzip)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
    req->res.content_length = o->total;
    o->gen.proceed = out_proceed;
    o->gen.stop = NULL;
    h2o_start_response(req, &o->gen);
    if (o->n == 0)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        out_send_some(o);
}

static void out_pull_send(out_t *o)
{
    const char *p;
    size_t n;
    int more = o->pull(o->src, &p, &n);
    h2o_iovec_t v = h2o_iovec_init(p, n);
    h2o_send(o->req, &v, n ? 1 : 0, more ? H2O_SEND_STATE_IN_PROGRESS : H2O_SEND_STATE_FINAL);
}

static void out_pull_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    out_pull_send(H2O_STRUCT_FROM_MEMBER(out_t, gen, gen));
}

/* Answers 200 with the body that src produces part by part (pulled mode, see above); src belongs to the response
 * from here on and is freed by src_free with the request. */
static void out_stream(h2o_req_t *req, const char *content_type, out_pull_t pull, void *src, void (*src_free)(void *))
{
    out_t *o = out_new(req, 0);
    o->pull = pull;
    o->src = src;
    o->src_free = src_free;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type", content_type,
                   strlen(content_type));
    const char *p;
    size_t n;
    if (pull(src, &p, &n) == 0) { /* the whole body in one part */
        req->res.content_length = n;
        o->gen.proceed = NULL;
        h2o_start_response(req, &o->gen);
        h2o_iovec_t v = h2o_iovec_init(p, n);
        h2o_send(req, &v, n ? 1 : 0, H2O_SEND_STATE_FINAL);
        return;
    }
    o->gen.proceed = out_pull_proceed;
    o->gen.stop = NULL;
    h2o_start_response(req, &o->gen);
    h2o_iovec_t v = h2o_iovec_init(p, n);
    h2o_send(req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static fy_app_t *app_of(void *ctx)
{
    return ctx;
}

static fy_push_arena_t *thread_arena(fy_app_t *app)
{
    int t = fy_server_thread_index();
    return &app->arenas[t >= 0 && (unsigned)t < app->nthreads ? (unsigned)t : 0];
}

static size_t to_store_labels(const fy_gk_label_t *in, size_t n, fy_store_label_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].name = fy_str(in[i].name, in[i].name_len);
        out[i].value = fy_str(in[i].value, in[i].value_len);
    }
    return n;
}

static int64_t ts_ns(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts_ns(ts);
}

/* client_golang's approximate request size: URL, method, protocol, header names and values, host, Content-Length. */
static double approx_request_size(h2o_req_t *req)
{
    size_t s = req->path.len + req->method.len + (req->version >= 0x200 ? 8 : 8);
    for (size_t i = 0; i < req->headers.size; i++)
        s += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    s += req->authority.len;
    if (req->entity.base != NULL) /* the Content-Length value, as promhttp adds r.ContentLength's digits */
        s += (size_t)snprintf(NULL, 0, "%zu", req->entity.len);
    return (double)s;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Durable mode: the write-ahead log's records. Each payload starts with a version byte (1) and the request's time,
 * so that replay re-applies the change exactly as the handler did (the store keeps push and failure times).
 *   push   (type 1)  u8 version | i64 now_ns | u8 method (0 PUT, 1 POST) | u8 body format | grouping labels | body
 *   delete (type 2)  u8 version | i64 now_ns | grouping labels
 *   wipe   (type 3)  u8 version | i64 now_ns
 *   bulk   (type 4)  u8 version | i64 now_ns | the query string of DELETE /api/v1/admin/groups (re-evaluated at now_ns)
 * A push that declared a lifetime (X-Ferry-TTL, X-Ferry-Interval) is written with version 2 and i64 ttl_ns | i64
 * interval_ns (fy_store_life_t's encoding) after the body format; every other record keeps version 1. An expiry by
 * the timer is logged as a delete; a push replayed after its group's deadline finds the group expired by itself.
 * grouping labels = u32 count, then per label u32 name length | name | u32 value length | value. The body is the
 * decoded request body (gzip/snappy undone) and runs to the end of the payload. Integers are little-endian. */

enum { REC_PUSH = 1, REC_DELETE = 2, REC_WIPE = 3, REC_BULK = 4 };
#define REC_VERSION 1
#define REC_VERSION_LIFE 2

static size_t rec_labels_size(const fy_store_label_t *gk, size_t n)
{
    size_t s = 4;
    for (size_t i = 0; i < n; i++)
        s += 8 + gk[i].name.len + gk[i].value.len;
    return s;
}

static uint8_t *rec_head(uint8_t *p, int64_t now)
{
    *p++ = REC_VERSION;
    fy_put_le64(p, (uint64_t)now);
    return p + 8;
}

static uint8_t *rec_labels(uint8_t *p, const fy_store_label_t *gk, size_t n)
{
    fy_put_le32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++) {
        fy_put_le32(p, (uint32_t)gk[i].name.len);
        memcpy(p + 4, gk[i].name.ptr, gk[i].name.len);
        p += 4 + gk[i].name.len;
        fy_put_le32(p, (uint32_t)gk[i].value.len);
        if (gk[i].value.len)
            memcpy(p + 4, gk[i].value.ptr, gk[i].value.len);
        p += 4 + gk[i].value.len;
    }
    return p;
}

/* The record of a push; NULL when out of memory. */
static uint8_t *rec_push(int64_t now, int post, fy_body_format_t format, const fy_store_label_t *gk, size_t n,
                         const char *body, size_t body_len, size_t *len)
{
    *len = 11 + rec_labels_size(gk, n) + body_len;
    uint8_t *r = malloc(*len), *p = r;
    if (r == NULL)
        return NULL;
    p = rec_head(p, now);
    *p++ = (uint8_t)post;
    *p++ = (uint8_t)format;
    p = rec_labels(p, gk, n);
    if (body_len)
        memcpy(p, body, body_len);
    assert(p + body_len == r + *len);
    return r;
}

/* Turns a version 1 push record into version 2 with the declared lifetime (16 bytes after the body format). */
static uint8_t *rec_push_add_life(uint8_t *rec, size_t *len, const fy_store_life_t *life)
{
    uint8_t *r = realloc(rec, *len + 16);
    if (r == NULL) {
        free(rec);
        return NULL;
    }
    memmove(r + 27, r + 11, *len - 11);
    r[0] = REC_VERSION_LIFE;
    fy_put_le64(r + 11, (uint64_t)life->ttl_ns);
    fy_put_le64(r + 19, (uint64_t)life->interval_ns);
    *len += 16;
    return r;
}

/* The record of a delete; NULL when out of memory. */
static uint8_t *rec_delete(int64_t now, const fy_store_label_t *gk, size_t n, size_t *len)
{
    *len = 9 + rec_labels_size(gk, n);
    uint8_t *r = malloc(*len);
    if (r != NULL)
        rec_labels(rec_head(r, now), gk, n);
    return r;
}

/* Reading a record: every field is bounds-checked, a short or malformed payload sets bad. */
typedef struct {
    const uint8_t *p, *end;
    int bad;
} rec_rd_t;

static const uint8_t *rd_take(rec_rd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

/* Decodes the grouping labels into *out (malloc'd; strings point into the payload). */
static size_t rd_labels(rec_rd_t *r, fy_store_label_t **out)
{
    const uint8_t *q = rd_take(r, 4);
    uint32_t n = q ? fy_get_le32(q) : 0;
    *out = NULL;
    if (r->bad || n > (size_t)(r->end - r->p) / 8) {
        r->bad = 1;
        return 0;
    }
    if ((*out = calloc(n ? n : 1, sizeof(**out))) == NULL) {
        r->bad = 1;
        return 0;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        q = rd_take(r, 4);
        size_t len = q ? fy_get_le32(q) : 0;
        const uint8_t *s = rd_take(r, len);
        (*out)[i].name = fy_str((const char *)s, len);
        q = rd_take(r, 4);
        len = q ? fy_get_le32(q) : 0;
        s = rd_take(r, len);
        (*out)[i].value = fy_str(len ? (const char *)s : "", len);
    }
    return n;
}

static int wipe_at(fy_app_t *app, int64_t now);

typedef struct {
    fy_app_t *app;
    fy_push_arena_t arena;
    uint64_t pushes, deletes, wipes, bad;
    char *err;
    size_t errlen;
} replay_t;

/* Re-applies one record as its handler did. A record whose checksum is right but whose content is not is damage
 * too: it stops start-up unless --persistence.allow-bad-file, which skips it. */
static int replay_record(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len)
{
    replay_t *R = ctx;
    rec_rd_t r = {payload, (const uint8_t *)payload + len, 0};
    const uint8_t *q = rd_take(&r, 9);
    int64_t now = q ? (int64_t)fy_get_le64(q + 1) : 0;
    int life_rec = q != NULL && q[0] == REC_VERSION_LIFE && type == REC_PUSH;
    if (q != NULL && q[0] != REC_VERSION && !life_rec)
        r.bad = 1;
    fy_store_label_t *gk = NULL;
    if (!r.bad && type == REC_PUSH) {
        q = rd_take(&r, 2);
        fy_store_life_t life = {0, 0};
        const uint8_t *lq = life_rec ? rd_take(&r, 16) : NULL;
        if (lq != NULL) {
            life.ttl_ns = (int64_t)fy_get_le64(lq);
            life.interval_ns = (int64_t)fy_get_le64(lq + 8);
        }
        size_t n = rd_labels(&r, &gk);
        if (!r.bad && (q[0] > 1 || q[1] > FY_FMT_OPENMETRICS))
            r.bad = 1;
        if (!r.bad) {
            fy_push_outcome_t o;
            fy_push_apply_life(R->app->store, &R->arena, &R->app->limits, q[0] ? FY_STORE_POST : FY_STORE_PUT, gk, n,
                               (const char *)r.p, (size_t)(r.end - r.p), (fy_body_format_t)q[1], lq ? &life : NULL,
                               now, &o);
            fy_push_outcome_free(&o);
            R->pushes++;
        }
    } else if (!r.bad && type == REC_DELETE) {
        size_t n = rd_labels(&r, &gk);
        if (!r.bad && r.p != r.end)
            r.bad = 1;
        if (!r.bad) {
            fy_store_delete(R->app->store, gk, n, now);
            R->deletes++;
        }
    } else if (!r.bad && type == REC_WIPE) {
        if (r.p != r.end || wipe_at(R->app, now) != 0)
            r.bad = 1;
        else
            R->wipes++;
    } else if (!r.bad && type == REC_BULK) {
        fy_bulk_t b;
        char berr[256];
        memset(&b, 0, sizeof(b));
        if (fy_bulk_parse_query(&b, (const char *)r.p, (size_t)(r.end - r.p), berr, sizeof(berr)) != 0) {
            r.bad = 1;
        } else {
            b.now_ns = now;
            fy_store_delete_where(R->app->store, fy_bulk_match, &b);
            R->deletes++;
        }
        fy_bulk_free(&b);
    } else {
        r.bad = 1;
    }
    free(gk);
    if (!r.bad)
        return 0;
    R->bad++;
    snprintf(R->err, R->errlen, "write-ahead log record %llu (type %u, %zu bytes) cannot be decoded",
             (unsigned long long)seq, type, len);
    if (R->app->flags->persistence_allow_bad) {
        fy_log_error("msg", "skipping a write-ahead log record that cannot be decoded", "err", R->err);
        return 0;
    }
    return -1;
}

/* Why a change could not be made durable: once the log has failed, the failure itself (wal_reason) rather than the
 * EIO that every later submit gets, which would tell the client nothing. */
static const char *wal_why(fy_app_t *app, int e)
{
    return atomic_load(&app->stats.wal_failed) ? app->wal_reason : strerror(e);
}

/* Submits rec (if any) while the caller holds app->order, and releases it. *seq gets the record's sequence number
 * (0: nothing to wait for). When the handler cannot park its request (not on a loop thread), this waits until the
 * record is durable and sets *seq to 0. Returns 0, or -1 with the reason in why. */
static int durable_commit(fy_app_t *app, unsigned type, const uint8_t *rec, size_t len, uint64_t *seq, const char **why)
{
    *seq = 0;
    int rc = rec != NULL ? fy_log_submit(app->log, type, rec, len, seq) : 0;
    int e = errno;
    pthread_mutex_unlock(&app->order);
    if (rc == 0 && *seq != 0 && !fy_server_can_defer()) {
        rc = fy_log_wait(app->log, *seq);
        e = errno;
        *seq = 0;
    }
    if (rc != 0) {
        *seq = 0;
        *why = wal_why(app, e);
    }
    return rc;
}

/* The 500 of a change that was applied but could not be made durable, counted in ferry_persistence_log_errors_total.
 * Logged at error level unless the log has failed: that was logged once (wal_failed), and a line per refused change
 * would flood the log at the push rate. pool may be NULL when nobody will read the message (the client has gone). */
static fy_result_t not_persisted(fy_app_t *app, h2o_mem_pool_t *pool, const char *what, const char *why)
{
    fy_selfstats_wal_error(&app->stats);
    if (!atomic_load(&app->stats.wal_failed))
        fy_log_error("msg", "could not persist a change before answering", "what", what, "err", why);
    if (pool == NULL)
        return (fy_result_t){500, NULL, 0};
    size_t n = (size_t)snprintf(NULL, 0, "could not persist the %s: %s", what, why);
    char *m = h2o_mem_alloc_pool(pool, n + 1);
    snprintf(m, n + 1, "could not persist the %s: %s", what, why);
    return (fy_result_t){500, m, n};
}

/* Once the log has failed, a change is refused before it touches the store: applied and then refused, it would be
 * visible to scrapes until the restart that drops it (docs/persistence.md, "When the write-ahead log fails"). Only
 * the changes in flight when the failure happened are applied and refused. */
static int wal_refuses(fy_app_t *app)
{
    return app->log != NULL && atomic_load(&app->stats.wal_failed);
}

/* A change whose record is submitted but not yet durable: the request is parked (fy_server_defer) and answered by
 * on_durable once the log's writer has synced the record (log_notify -> fy_server_release). */
typedef struct {
    fy_app_t *app;
    fy_result_t r;    /* the answer once durable; msg in the request's pool */
    const char *what; /* "push", "deletion", "wipe" */
    int push, post;   /* pushes feed the push-duration histogram when answered */
    int64_t now;      /* the request's time */
    double size;      /* approx_request_size, taken while the request was there */
} durable_wait_t;

static fy_result_t on_durable(void *data, h2o_req_t *req, int err)
{
    durable_wait_t *w = data;
    fy_result_t r = w->r;
    if (err != 0)
        r = not_persisted(w->app, req != NULL ? &req->pool : NULL, w->what, wal_why(w->app, err));
    if (w->push)
        fy_selfstats_push(&w->app->stats, (unsigned)fy_server_thread_index(), w->post, (double)(now_ns() - w->now) / 1e9, w->size,
                          w->now);
    return r;
}

static durable_wait_t *durable_park(fy_app_t *app, uint64_t seq, fy_result_t r, const char *what)
{
    durable_wait_t *w = fy_server_defer(seq, on_durable, sizeof(*w));
    w->app = app;
    w->r = r;
    w->what = what;
    return w;
}

/* The log has just failed (the first notify with an error; the log cannot recover, docs/persistence.md): keep the
 * reason for /-/ready, /-/healthy and the 500s, log it once, and raise ferry_persistence_log_failed. */
static void wal_failed(fy_app_t *app, uint64_t durable_seq, int err)
{
    const char *what = fy_log_failure(app->log);
    char when[32], seq[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)durable_seq);
    snprintf(app->wal_reason, sizeof(app->wal_reason),
             "write-ahead log failed: %s at %s; changes are refused until a restart; see docs/persistence.md",
             what != NULL ? what : strerror(err), when);
    fy_log_error("msg", "the write-ahead log failed: every change is refused with 500, and /-/ready and /-/healthy "
                        "answer 503, until a restart (free space first; acknowledged changes are kept)",
                 "err", what != NULL ? what : strerror(err), "last_durable_seq", seq);
    /* after the reason is written: readers check the flag first */
    atomic_store(&app->stats.wal_failed, 1);
}

/* The log's writer thread has synced everything up to durable_seq, or failed (err). Called with the log's mutex
 * held, so calls never overlap: the first error is seen once. */
static void log_notify(void *ctx, uint64_t durable_seq, int err)
{
    fy_app_t *app = ctx;
    if (err != 0 && !atomic_load(&app->stats.wal_failed))
        wal_failed(app, durable_seq, err);
    fy_server_release(durable_seq, err);
}

/* ------------------------------------------------------------------------------------------------------------- */

#define NOT_READY "Service Unavailable: loading persisted metrics"

static fy_result_t not_ready(void)
{
    return (fy_result_t){503, NOT_READY, sizeof(NOT_READY) - 1};
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

static fy_result_t on_push(void *ctx, const fy_push_t *p)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready())
        return not_ready();
    if (wal_refuses(app))
        return not_persisted(app, p->pool, "push", app->wal_reason);
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
    fy_push_outcome_t o;
    int64_t now = ts_ns(p->now);
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    if (app->log != NULL) {
        /* built before taking the lock: the copy of the body is the expensive part */
        if ((rec = rec_push(now, p->method == FY_PUSH_POST, p->format, gk, p->nlabels, p->body, p->body_len, &rec_len)) == NULL)
            return (fy_result_t){500, "out of memory", 13};
        if (declared && (rec = rec_push_add_life(rec, &rec_len, &life)) == NULL)
            return (fy_result_t){500, "out of memory", 13};
        pthread_mutex_lock(&app->order);
    }
    fy_push_apply_life(app->store, thread_arena(app), &app->limits, p->method == FY_PUSH_POST ? FY_STORE_POST : FY_STORE_PUT,
                       gk, p->nlabels, p->body, p->body_len, p->format, declared ? &life : NULL, now, &o);
    const char *why = NULL;
    uint64_t seq = 0;
    if (app->log != NULL) {
        /* every push that reached the store is logged, rejected ones too: they set the group's failure time */
        durable_commit(app, REC_PUSH, o.store_rc != 1 ? rec : NULL, rec_len, &seq, &why);
        free(rec);
    }
    if (o.limit >= 0)
        fy_selfstats_limit(&app->stats, (fy_limit_t)o.limit);
    if (o.store_rc != 1 && app->persist_on)
        fy_persist_changed(&app->persist); /* a failed push changes the failure time too */
    if (o.log_failure && fy_log_enabled(FY_LOG_ERROR)) {
        /* The log line's err is the reason alone, as the reference logs it. */
        static const char prefix[] = "pushed metrics are invalid or inconsistent with existing metrics: ";
        size_t skip = o.msg_len >= sizeof(prefix) - 1 && memcmp(o.msg, prefix, sizeof(prefix) - 1) == 0 ? sizeof(prefix) - 1 : 0;
        char *msg = h2o_mem_alloc_pool(p->pool, o.msg_len - skip + 1);
        memcpy(msg, o.msg + skip, o.msg_len - skip);
        msg[o.msg_len - skip] = '\0';
        fy_log_error("msg", "pushed metrics are invalid or inconsistent with existing metrics", "method",
                     p->method == FY_PUSH_POST ? "POST" : "PUT", "err", msg);
    }
    fy_result_t r = {o.status, NULL, o.msg_len};
    if (o.msg_len) {
        char *m = h2o_mem_alloc_pool(p->pool, o.msg_len);
        memcpy(m, o.msg, o.msg_len);
        r.msg = m;
    }
    fy_push_outcome_free(&o);
    if (why != NULL)
        r = not_persisted(app, p->pool, "push", why);
    if (seq != 0) {
        /* answered (and timed for the push-duration histogram) once the record is durable */
        durable_wait_t *w = durable_park(app, seq, r, "push");
        w->push = 1;
        w->post = p->method == FY_PUSH_POST;
        w->now = now;
        w->size = approx_request_size(p->req);
        return FY_DEFERRED;
    }
    if (p->req != NULL) {
        double secs = (double)(now_ns() - now) / 1e9;
        fy_selfstats_push(&app->stats, (unsigned)fy_server_thread_index(), p->method == FY_PUSH_POST, secs,
                          approx_request_size(p->req), now);
    }
    return r;
}

static fy_result_t on_delete(void *ctx, const fy_gk_label_t *labels, size_t nlabels, h2o_mem_pool_t *pool)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready())
        return not_ready();
    if (wal_refuses(app))
        return not_persisted(app, pool, "deletion", app->wal_reason);
    fy_store_label_t *gk = h2o_mem_alloc_pool(pool, sizeof(*gk) * (nlabels ? nlabels : 1));
    to_store_labels(labels, nlabels, gk);
    int64_t now = now_ns();
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    if (app->log != NULL) {
        rec_len = 9 + rec_labels_size(gk, nlabels);
        if ((rec = malloc(rec_len)) == NULL)
            return (fy_result_t){500, "out of memory", 13};
        rec_labels(rec_head(rec, now), gk, nlabels);
        pthread_mutex_lock(&app->order);
    }
    int rc = fy_store_delete(app->store, gk, nlabels, now);
    const char *why = NULL;
    uint64_t seq = 0;
    if (app->log != NULL) {
        durable_commit(app, REC_DELETE, rc == FY_OK ? rec : NULL, rec_len, &seq, &why);
        free(rec);
    }
    if (app->persist_on)
        fy_persist_changed(&app->persist);
    if (why != NULL)
        return not_persisted(app, pool, "deletion", why);
    if (rc != FY_OK)
        return (fy_result_t){400, fy_store_strerror(rc), strlen(fy_store_strerror(rc))};
    if (seq != 0) {
        durable_park(app, seq, (fy_result_t){202, NULL, 0}, "deletion");
        return FY_DEFERRED;
    }
    return (fy_result_t){202, NULL, 0};
}

/* Wipe: collect every group's labels first (the iteration callback may not call into the store), then delete. */
typedef struct {
    fy_store_label_t *labels; /* all groups' labels, concatenated */
    char *strings;
    size_t *counts;
    size_t ngroups, nlabels, cap_labels, cap_groups;
    size_t slen, scap;
    int oom;
} wipe_list_t;

static int wipe_collect(void *ctx, const fy_store_group_view_t *g)
{
    wipe_list_t *w = ctx;
    if (w->ngroups == w->cap_groups) {
        w->cap_groups = w->cap_groups ? w->cap_groups * 2 : 64;
        size_t *c = realloc(w->counts, w->cap_groups * sizeof(size_t));
        if (c == NULL)
            return w->oom = 1;
        w->counts = c;
    }
    if (w->nlabels + g->nlabels > w->cap_labels) {
        while (w->nlabels + g->nlabels > w->cap_labels)
            w->cap_labels = w->cap_labels ? w->cap_labels * 2 : 256;
        fy_store_label_t *l = realloc(w->labels, w->cap_labels * sizeof(*l));
        if (l == NULL)
            return w->oom = 1;
        w->labels = l;
    }
    for (uint32_t i = 0; i < g->nlabels; i++) {
        size_t need = g->labels[i].name.len + g->labels[i].value.len;
        if (w->slen + need > w->scap) {
            /* Strings are referenced by offset until the end, so the buffer may move. */
            size_t cap = w->scap ? w->scap : 4096;
            while (w->slen + need > cap)
                cap *= 2;
            char *s = realloc(w->strings, cap);
            if (s == NULL)
                return w->oom = 1;
            w->strings = s;
            w->scap = cap;
        }
        fy_store_label_t *l = &w->labels[w->nlabels++];
        memcpy(w->strings + w->slen, g->labels[i].name.ptr, g->labels[i].name.len);
        l->name = fy_str((const char *)(uintptr_t)w->slen, g->labels[i].name.len);
        w->slen += g->labels[i].name.len;
        memcpy(w->strings + w->slen, g->labels[i].value.ptr, g->labels[i].value.len);
        l->value = fy_str((const char *)(uintptr_t)w->slen, g->labels[i].value.len);
        w->slen += g->labels[i].value.len;
    }
    w->counts[w->ngroups++] = g->nlabels;
    return 0;
}

int fy_app_wipe(fy_app_t *app)
{
    return wipe_at(app, now_ns());
}

static int wipe_at(fy_app_t *app, int64_t now)
{
    wipe_list_t w;
    memset(&w, 0, sizeof(w));
    int rc = fy_store_foreach_group(app->store, wipe_collect, &w);
    if (rc == 0 && !w.oom) {
        for (size_t i = 0; i < w.nlabels; i++) {
            w.labels[i].name.ptr = w.strings + (uintptr_t)w.labels[i].name.ptr;
            w.labels[i].value.ptr = w.strings + (uintptr_t)w.labels[i].value.ptr;
        }
        size_t off = 0;
        for (size_t g = 0; g < w.ngroups; g++) {
            fy_store_delete(app->store, w.labels + off, w.counts[g], now);
            off += w.counts[g];
        }
    }
    free(w.labels);
    free(w.strings);
    free(w.counts);
    return rc == 0 && !w.oom ? 0 : -1;
}

static fy_result_t on_wipe(void *ctx, h2o_mem_pool_t *pool)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready())
        return not_ready();
    if (wal_refuses(app))
        return not_persisted(app, pool, "wipe", app->wal_reason);
    if (app->persist_on)
        fy_persist_changed(&app->persist);
    int64_t now = now_ns();
    uint8_t rec[9];
    rec_head(rec, now);
    if (app->log != NULL)
        pthread_mutex_lock(&app->order);
    int rc = wipe_at(app, now);
    const char *why = NULL;
    uint64_t seq = 0;
    if (app->log != NULL)
        durable_commit(app, REC_WIPE, rc == 0 ? rec : NULL, sizeof(rec), &seq, &why);
    if (why != NULL)
        return not_persisted(app, pool, "wipe", why);
    if (rc != 0)
        return (fy_result_t){500, "out of memory", 13};
    if (seq != 0) {
        durable_park(app, seq, (fy_result_t){202, NULL, 0}, "wipe");
        return FY_DEFERRED;
    }
    return (fy_result_t){202, NULL, 0};
}

/* DELETE P/api/v1/admin/groups?match[]=...&older_than=...: one request, one JSON answer with the count. */
static int respond_json_error(h2o_req_t *req, int status, const char *type, const char *msg)
{
    char *b = NULL;
    size_t n = 0, cap = 0;
    fy_json_quote(fy_str(type, strlen(type)), &b, &n, &cap);
    size_t tl = n;
    fy_json_quote(fy_str(msg, strlen(msg)), &b, &n, &cap);
    size_t len = (size_t)snprintf(NULL, 0, "{\"status\":\"error\",\"errorType\":%.*s,\"error\":%.*s}", (int)tl, b,
                                  (int)(n - tl), b + tl);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    snprintf(body, len + 1, "{\"status\":\"error\",\"errorType\":%.*s,\"error\":%.*s}", (int)tl, b, (int)(n - tl),
             b + tl);
    free(b);
    fy_server_respond(req, status, NULL, "application/json", body, len);
    return 0;
}

static int on_bulk_delete(void *ctx, h2o_req_t *req)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready())
        return respond_json_error(req, 503, "unavailable", NOT_READY);
    if (wal_refuses(app)) {
        not_persisted(app, NULL, "bulk delete", app->wal_reason); /* counted; the answer is JSON */
        return respond_json_error(req, 500, "internal", app->wal_reason);
    }
    const char *q = "";
    size_t qlen = 0;
    if (req->query_at != SIZE_MAX) {
        q = req->path.base + req->query_at + 1;
        qlen = req->path.len - req->query_at - 1;
    }
    fy_bulk_t b;
    char err[1024];
    memset(&b, 0, sizeof(b));
    if (fy_bulk_parse_query(&b, q, qlen, err, sizeof(err)) != 0) {
        fy_bulk_free(&b);
        return respond_json_error(req, 400, "bad_data", err);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now = now_ns();
    b.now_ns = now;
    uint8_t *rec = NULL;
    size_t rec_len = 9 + qlen;
    if (app->log != NULL) {
        if ((rec = malloc(rec_len)) == NULL) {
            fy_bulk_free(&b);
            return respond_json_error(req, 500, "internal", "out of memory");
        }
        memcpy(rec_head(rec, now), q, qlen);
        pthread_mutex_lock(&app->order);
    }
    uint64_t n = fy_store_delete_where(app->store, fy_bulk_match, &b);
    const char *why = NULL;
    if (app->log != NULL) {
        /* a rare admin request: it waits for its sync on the loop rather than being parked like a push */
        uint64_t seq = 0;
        if (durable_commit(app, REC_BULK, rec, rec_len, &seq, &why) == 0 && seq != 0 && fy_log_wait(app->log, seq) != 0)
            why = wal_why(app, errno);
        free(rec);
    }
    fy_bulk_free(&b);
    if (app->persist_on && n != 0)
        fy_persist_changed(&app->persist);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char cnt[32], secs[32];
    snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)n);
    snprintf(secs, sizeof(secs), "%.6f", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fy_log_info("msg", "bulk delete", "query", fy_log_enabled(FY_LOG_INFO) ? h2o_strdup(&req->pool, q, qlen).base : "",
                "deleted", cnt, "seconds", secs);
    if (why != NULL) {
        not_persisted(app, NULL, "bulk delete", why); /* counted and logged; the answer is JSON */
        return respond_json_error(req, 500, "internal", why);
    }
    size_t len = (size_t)snprintf(NULL, 0, "{\"status\":\"success\",\"data\":{\"deleted\":%s}}", cnt);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    snprintf(body, len + 1, "{\"status\":\"success\",\"data\":{\"deleted\":%s}}", cnt);
    fy_server_respond(req, 200, NULL, "application/json", body, len);
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer's pass. In durable mode each expired group is logged as a delete, under the order lock like any
 * other change, so that a replay sees it exactly where it happened (a push that raced with the timer included). */

static int expire_one(void *ctx, const fy_store_group_view_t *g)
{
    fy_app_t *app = ctx;
    if (fy_log_enabled(FY_LOG_DEBUG))
        fy_reaper_log(NULL, g);
    if (app->log != NULL) {
        size_t len;
        uint64_t seq;
        uint8_t *rec = rec_delete(app->expire_now, g->labels, g->nlabels, &len);
        if (rec == NULL || fy_log_submit(app->log, REC_DELETE, rec, len, &seq) != 0)
            fy_log_error("msg", "could not log an expired group; a replay will expire it again", "err",
                         rec == NULL ? "out of memory" : strerror(errno));
        free(rec);
    }
    return 0;
}

static uint64_t expire_pass(void *ctx, int64_t now)
{
    fy_app_t *app = ctx;
    if (app->log != NULL)
        pthread_mutex_lock(&app->order);
    app->expire_now = now;
    uint64_t n = fy_store_expire(app->store, now, expire_one, app);
    if (app->log != NULL)
        pthread_mutex_unlock(&app->order);
    if (n != 0 && app->persist_on)
        fy_persist_changed(&app->persist);
    return n;
}

/* Once the store is loaded (the timer must not run while a log replays: the replay re-applies changes at their own
 * times): drops the groups whose deadline passed while Ferry was down, then starts the timer. */
static void start_expiry(fy_app_t *app)
{
    expire_pass(app, now_ns());
    if (fy_reaper_start(&app->reaper, expire_pass, app) != 0)
        fy_log_error("msg", "could not start the expiry timer thread");
}

/* ------------------------------------------------------------------------------------------------------------- */

static int header_value(h2o_req_t *req, const h2o_token_t *token, const char **v, size_t *n)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0) {
        *v = NULL;
        *n = 0;
        return 0;
    }
    *v = req->headers.entries[i].value.base;
    *n = req->headers.entries[i].value.len;
    return 1;
}

static int on_scrape(void *ctx, h2o_req_t *req)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready()) {
        fy_server_error(req, 503, H2O_STRLIT(NOT_READY));
        return 0;
    }
    const char *accept, *ae;
    size_t accept_len, ae_len;
    header_value(req, H2O_TOKEN_ACCEPT, &accept, &accept_len);
    header_value(req, H2O_TOKEN_ACCEPT_ENCODING, &ae, &ae_len);
    fy_scrape_format_t fmt = fy_negotiate_format(accept, accept_len, app->flags->enable_openmetrics);
    out_t *o = out_new(req, fy_negotiate_gzip(ae, ae_len));

    /* The own families, collected into an arena that lives as long as this call; it doubles until they fit (every
     * code x handler x method combination seen needs about 656 KiB). */
    void *own_mem = NULL;
    fy_body_t own, *ownp = NULL;
    fy_store_stats_t st;
    fy_store_stats(app->store, &st);
    int64_t now = now_ns(); /* one instant for the own families and the liveness ages */
    for (size_t own_cap = 256u << 10; ownp == NULL && own_cap <= (16u << 20); own_cap *= 2) {
        free(own_mem);
        if ((own_mem = malloc(own_cap)) == NULL)
            break;
        fy_arena_t a;
        fy_arena_init(&a, own_mem, own_cap);
        if (fy_selfstats_collect(&app->stats, &a, now, st.groups, st.series, &own) == 0)
            ownp = &own;
    }
    /* the liveness families and the expiry counters (docs/beyond-pushgateway.md) join the own families */
    fy_life_body_t life;
    fy_life_collect(app->store, ownp, now, app->flags->interval_grace_ns, &life);
    int rc;
    switch (fmt) {
    case FY_SCRAPE_PROTOBUF:
        rc = fy_store_render_protobuf(app->store, &life.body, OUT_CHUNK, out_writer, o);
        break;
    case FY_SCRAPE_OPENMETRICS:
        rc = fy_store_render_openmetrics(app->store, &life.body, OUT_CHUNK, out_writer, o);
        break;
    default:
        rc = fy_store_render_text(app->store, &life.body, OUT_CHUNK, out_writer, o);
        break;
    }
    fy_life_body_free(&life);
    free(own_mem);
    if (rc != 0 || out_finish(o) != 0) {
        static const char msg[] = "An error has occurred while serving metrics:\n\nout of memory";
        fy_server_error(req, 500, msg, sizeof(msg) - 1);
        return 0;
    }
    out_respond(o, fy_scrape_content_type(fmt));
    return 0;
}

/* /api/v1/metrics is pulled from a store cursor in parts of OUT_CHUNK bytes (the body is as large as the store's
 * scrape, or larger: it repeats the grouping labels in every series). */
static int json_pull(void *src, const char **p, size_t *n)
{
    return fy_store_json_next(src, OUT_CHUNK, p, n);
}

static void json_free(void *src)
{
    fy_store_json_close(src);
}

static int on_api_metrics(void *ctx, h2o_req_t *req)
{
    fy_app_t *app = app_of(ctx);
    if (!fy_server_is_ready()) {
        fy_server_error(req, 503, H2O_STRLIT(NOT_READY));
        return 0;
    }
    out_stream(req, "application/json", json_pull, fy_store_json_open(app->store), json_free);
    return 0;
}

/* Query parameter `key` of the request target, percent-decoded into buf; returns its length or -1 if absent. */
static ssize_t query_param(h2o_req_t *req, const char *key, char *buf, size_t cap)
{
    if (req->query_at == SIZE_MAX)
        return -1;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t kl = strlen(key);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *e = amp ? amp : end;
        if ((size_t)(e - q) > kl && memcmp(q, key, kl) == 0 && q[kl] == '=') {
            size_t n = 0;
            for (const char *p = q + kl + 1; p < e && n + 1 < cap; p++) {
                if (*p == '+') {
                    buf[n++] = ' ';
                } else if (*p == '%' && e - p > 2 && fy_url_unhex(p[1]) >= 0 && fy_url_unhex(p[2]) >= 0) {
                    buf[n++] = (char)(fy_url_unhex(p[1]) << 4 | fy_url_unhex(p[2]));
                    p += 2;
                } else {
                    buf[n++] = *p;
                }
            }
            buf[n] = '\0';
            return (ssize_t)n;
        }
        q = e + 1;
    }
    return -1;
}

/* The page is pulled a part at a time too: with FY_UI_MAX_LIMIT groups of FY_UI_GROUP_LABELS labels it can still be
 * tens of MB, which one buffer per request would hold. */
static int ui_pull(void *src, const char **p, size_t *n)
{
    return fy_ui_next(src, FY_UI_PART, p, n);
}

static void ui_free(void *src)
{
    fy_ui_close(src);
}

static int on_ui(void *ctx, h2o_req_t *req, const char *static_path, size_t static_len)
{
    fy_app_t *app = app_of(ctx);
    if (static_path != NULL) {
        /* The page is self-contained: Ferry serves no static assets. */
        fy_server_error(req, 404, H2O_STRLIT("404 page not found"));
        return 0;
    }
    char page[32], limit[32], filter[512];
    ssize_t fl = query_param(req, "q", filter, sizeof(filter));
    fy_ui_opts_t o = app->ui;
    o.page = query_param(req, "page", page, sizeof(page)) > 0 ? (unsigned)strtoul(page, NULL, 10) : 0;
    /* ?limit= groups per page; 0 or garbage is the default, more than FY_UI_MAX_LIMIT is FY_UI_MAX_LIMIT (ui.c) */
    if (query_param(req, "limit", limit, sizeof(limit)) > 0) {
        unsigned long l = strtoul(limit, NULL, 10);
        o.page_size = l > FY_UI_MAX_LIMIT ? FY_UI_MAX_LIMIT : (unsigned)l;
    }
    o.filter = fl > 0 ? filter : NULL;
    o.filter_len = fl > 0 ? (size_t)fl : 0;
    size_t pl = req->path.len;
    if (req->query_at != SIZE_MAX)
        pl = req->query_at;
    o.status_tab = pl >= 7 && memcmp(req->path.base + pl - 7, "/status", 7) == 0;
    fy_ui_t *u = fy_ui_open(app->store, &o);
    if (u == NULL) {
        fy_server_error(req, 500, H2O_STRLIT("out of memory"));
        return 0;
    }
    out_stream(req, "text/html; charset=utf-8", ui_pull, u, ui_free);
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */

static void add_kv(fy_ui_kv_t **kv, size_t *n, size_t *cap, const char *k, const char *v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        fy_ui_kv_t *p = realloc(*kv, *cap * sizeof(**kv));
        if (p == NULL)
            return;
        *kv = p;
    }
    (*kv)[*n].key = strdup(k);
    (*kv)[*n].value = strdup(v);
    (*n)++;
}

typedef struct {
    fy_ui_kv_t *kv;
    size_t n, cap;
} kvlist_t;

static void flag_cb(void *ctx, const char *name, const char *value)
{
    kvlist_t *l = ctx;
    add_kv(&l->kv, &l->n, &l->cap, name, value);
}

int fy_app_init(fy_app_t *app, const fy_flags_t *flags, const char *version, const char *revision, const char *start_time)
{
    memset(app, 0, sizeof(*app));
    app->flags = flags;
    pthread_mutex_init(&app->order, NULL);
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_groups = flags->max_groups;
    cfg.max_series = flags->max_series;
    cfg.default_ttl_ns = flags->default_ttl_ns;
    cfg.default_interval_ns = flags->default_interval_ns;
    app->store = fy_store_create(&cfg);
    if (app->store == NULL)
        return -1;
    for (unsigned i = 0; i < fy_own_families_count; i++) {
        const fy_own_family_t *f = &fy_own_families[i];
        if (fy_store_register_own(app->store, fy_str(f->name, strlen(f->name)), f->type, fy_str(f->help, strlen(f->help)),
                                  f->predefined) != FY_OK)
            return -1;
    }
    for (unsigned i = 0; i < 2; i++) {
        const fy_own_family_t *f = &fy_life_own_families[i];
        if (fy_store_register_own(app->store, fy_str(f->name, strlen(f->name)), f->type, fy_str(f->help, strlen(f->help)),
                                  f->predefined) != FY_OK)
            return -1;
    }
    app->nthreads = (unsigned)flags->threads;
    app->arenas = calloc(app->nthreads, sizeof(*app->arenas));
    if (app->arenas == NULL || fy_selfstats_init(&app->stats, app->nthreads, version, revision, "HEAD") != 0)
        return -1;
    app->limits.max_series_per_push = flags->max_series_per_push;
    app->limits.max_label_value_length = flags->max_label_value_length;
    app->limits.consistency_check_disabled = flags->disable_consistency_check;

    kvlist_t fl = {NULL, 0, 0};
    char prefix[256];
    const char *ext = flags->external_url, *ext_path = "", *sep = strstr(ext, "://");
    if (sep != NULL && (ext_path = strchr(sep + 3, '/')) == NULL)
        ext_path = "";
    fy_route_prefix_normalise(flags->route_prefix, ext_path, prefix, sizeof(prefix));
    fy_flags_each(flags, prefix, flag_cb, &fl);
    app->ui.admin_api = flags->enable_admin_api;
    app->ui.version = version;
    app->ui.revision = revision;
    app->ui.start_time = start_time;
    app->ui.flags = fl.kv;
    app->ui.nflags = fl.n;
    kvlist_t bl = {NULL, 0, 0};
    add_kv(&bl.kv, &bl.n, &bl.cap, "branch", "HEAD");
    add_kv(&bl.kv, &bl.n, &bl.cap, "revision", revision);
    add_kv(&bl.kv, &bl.n, &bl.cap, "version", version);
    app->ui.build = bl.kv;
    app->ui.nbuild = bl.n;
    app->ui_flags_owned = fl.kv;
    app->ui_build_owned = bl.kv;
    return 0;
}

void fy_app_dispose(fy_app_t *app)
{
    fy_reaper_stop(&app->reaper);
    for (unsigned i = 0; i < app->nthreads && app->arenas; i++)
        fy_push_arena_free(&app->arenas[i]);
    free(app->arenas);
    for (size_t i = 0; i < app->ui.nflags; i++) {
        free((void *)app->ui.flags[i].key);
        free((void *)app->ui.flags[i].value);
    }
    for (size_t i = 0; i < app->ui.nbuild; i++) {
        free((void *)app->ui.build[i].key);
        free((void *)app->ui.build[i].value);
    }
    free(app->ui_flags_owned);
    free(app->ui_build_owned);
    fy_selfstats_dispose(&app->stats);
    if (app->store != NULL)
        fy_store_destroy(app->store);
    pthread_mutex_destroy(&app->order);
    memset(app, 0, sizeof(*app));
}

static void on_request_done(void *ctx, fy_stat_handler_t h, int status, const char *method, size_t method_len)
{
    fy_app_t *app = app_of(ctx);
    int t = fy_server_thread_index();
    if (t < 0)
        return;
    fy_selfstats_request(&app->stats, (unsigned)t, status, h, fy_method_from(method, method_len));
}

/* Durable mode: replays the log after the snapshot's wal_seq and opens it for appending. Exits on damage unless
 * --persistence.allow-bad-file. fresh: the snapshot was unreadable and moved aside, so the log (which only makes
 * sense on top of it) is moved aside too and a new one starts. */
static void open_log(fy_app_t *app, int fresh)
{
    const char *path = app->flags->persistence_file;
    char dir[4096], err[1024] = "";
    if (fy_log_dir_for(path, dir, sizeof(dir)) != 0) {
        fy_log_error("msg", "persistence file name too long for the write-ahead log", "file", path);
        _exit(1);
    }
    if (fresh) {
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.bad.%lld", dir, (long long)(now_ns() / 1000000000));
        if (rename(dir, aside) == 0)
            fy_log_error("msg", "moved the write-ahead log aside with the unreadable snapshot", "moved_to", aside);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    replay_t R;
    memset(&R, 0, sizeof(R));
    R.app = app;
    R.err = err;
    R.errlen = sizeof(err);
    fy_log_replay_info_t info;
    memset(&info, 0, sizeof(info));
    uint64_t after = fresh ? 0 : app->persist.wal_seq;
    int rc = fy_log_replay(dir, after, app->flags->persistence_allow_bad ? FY_LOG_REPLAY_SKIP_DAMAGED : 0, replay_record,
                           &R, &info, err, sizeof(err));
    fy_push_arena_free(&R.arena);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
        fy_log_error("msg", "could not replay the write-ahead log; refusing to start (--persistence.allow-bad-file skips "
                            "damaged records)",
                     "dir", dir, "err", err);
        _exit(1);
    }
    char n[5][32];
    if (info.torn) {
        char where[96];
        snprintf(where, sizeof(where), "%s", info.torn_segment);
        snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.torn_offset);
        snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)info.torn_bytes);
        fy_log_warn("msg", "dropped a torn write at the end of the write-ahead log (a crash during a write; that change "
                           "was never acknowledged)",
                    "dir", dir, "segment", where, "offset", n[0], "bytes", n[1]);
    }
    if (info.damaged) {
        snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.damaged);
        snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)info.damaged_bytes);
        fy_log_error("msg", "skipped damaged write-ahead log records (--persistence.allow-bad-file)", "dir", dir, "regions",
                     n[0], "bytes", n[1]);
    }
    snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)info.records);
    snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)after);
    snprintf(n[2], sizeof(n[2]), "%llu", (unsigned long long)info.last_seq);
    snprintf(n[3], sizeof(n[3]), "%.3f", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fy_log_info("msg", "replayed the write-ahead log", "dir", dir, "records", n[0], "after_seq", n[1], "last_seq", n[2],
                "seconds", n[3]);
    fy_log_t *log;
    if (fy_log_open(dir, info.last_seq + 1, &log, err, sizeof(err)) != 0) {
        fy_log_error("msg", "could not open the write-ahead log", "dir", dir, "err", err);
        _exit(1);
    }
    /* durable mode's handlers park their requests instead of waiting: the writer syncs and tells the loops */
    if (app->flags->persistence_durable && fy_log_start_writer(log, log_notify, app) != 0) {
        fy_log_error("msg", "could not start the write-ahead log's writer thread", "err", strerror(errno));
        _exit(1);
    }
    app->persist.log = log;
    app->persist.order = &app->order;
    app->log = log;
    if (app->flags->persistence_durable)
        atomic_store(&app->stats.wal_enabled, 1); /* the log's self-metrics, from now on */
}

/* Without --persistence.durable, a log left by an earlier durable run (killed before its final snapshot) would be
 * ignored, and replayed over newer state by a later durable run. Instead it is replayed now, folded into a snapshot
 * and removed. */
static void fold_old_log(fy_app_t *app)
{
    char dir[4096], err[1024], file[4400];
    struct stat st;
    if (fy_log_dir_for(app->flags->persistence_file, dir, sizeof(dir)) != 0 || stat(dir, &st) != 0)
        return;
    open_log(app, 0);
    app->log = NULL; /* handlers do not log in this mode */
    if (fy_persist_write(&app->persist, err, sizeof(err)) != 0) {
        fy_log_error("msg", "could not fold the write-ahead log of a durable run into the snapshot", "dir", dir, "err", err);
        _exit(1);
    }
    fy_log_close(app->persist.log);
    app->persist.log = NULL;
    app->persist.order = NULL;
    DIR *dp = opendir(dir);
    struct dirent *e;
    while (dp != NULL && (e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".wal") == 0 && snprintf(file, sizeof(file), "%s/%s", dir, e->d_name) > 0)
            unlink(file);
    }
    if (dp != NULL)
        closedir(dp);
    if (rmdir(dir) != 0)
        fy_log_warn("msg", "could not remove the write-ahead log directory", "dir", dir, "err", strerror(errno));
    else
        fy_log_info("msg", "folded the write-ahead log of an earlier durable run into the snapshot and removed it", "dir",
                    dir);
}

static void *load_persisted(void *arg)
{
    fy_app_t *app = arg;
    char err[1024];
    const char *path = app->flags->persistence_file;
    if (fy_persist_load(&app->persist, app->store, path, app->flags->persistence_interval_ns, err, sizeof(err)) != 0) {
        if (!app->flags->persistence_allow_bad) {
            fy_log_error("msg", "could not load persisted metrics; refusing to start with an empty store "
                                "(--persistence.allow-bad-file starts empty and keeps the file aside)",
                         "err", err);
            _exit(1);
        }
        char aside[4096];
        snprintf(aside, sizeof(aside), "%s.bad.%lld", path, (long long)(now_ns() / 1000000000));
        rename(path, aside);
        fy_log_error("msg", "could not load persisted metrics; starting empty", "err", err, "moved_to", aside);
        fy_app_wipe(app); /* nothing half-loaded stays */
        if (app->flags->persistence_durable)
            open_log(app, 1);
    } else if (app->flags->persistence_durable) {
        open_log(app, 0);
    } else {
        fold_old_log(app);
    }
    char groups[32], secs[32];
    snprintf(groups, sizeof(groups), "%llu", (unsigned long long)app->persist.loaded_groups);
    snprintf(secs, sizeof(secs), "%.3f", app->persist.load_seconds);
    fy_log_info("msg", "loaded persisted metrics", "file", path, "groups", groups, "seconds", secs);
    app->stats.persist_load_seconds = app->persist.load_seconds;
    app->stats.persist_loaded_groups = app->persist.loaded_groups;
    atomic_store(&app->stats.persist_enabled, 1);
    if (fy_persist_start(&app->persist) != 0)
        fy_log_error("msg", "could not start the persistence thread");
    start_expiry(app);
    fy_server_set_ready(1);
    return NULL;
}

int fy_app_start_persistence(fy_app_t *app)
{
    if (app->flags->persistence_file == NULL || app->flags->persistence_file[0] == '\0') {
        start_expiry(app);
        fy_server_set_ready(1);
        return 0;
    }
    app->persist_on = 1;
    fy_server_set_ready(0);
    return pthread_create(&app->loader, NULL, load_persisted, app) == 0 ? 0 : -1;
}

/* /-/healthy and /-/ready: 503 with the reason once the write-ahead log has failed. Both, not only readiness: the log
 * cannot recover in-process and a restart is what recovers it, losing nothing acknowledged (docs/persistence.md,
 * "When the write-ahead log fails"). */
static fy_result_t on_healthy(void *ctx)
{
    fy_app_t *app = app_of(ctx);
    if (atomic_load(&app->stats.wal_failed))
        return (fy_result_t){503, app->wal_reason, strlen(app->wal_reason)};
    return (fy_result_t){200, "OK", 2};
}

static void on_shutdown(void *ctx)
{
    fy_app_t *app = app_of(ctx);
    if (!app->persist_on) {
        fy_reaper_stop(&app->reaper);
        return;
    }
    pthread_join(app->loader, NULL);
    fy_reaper_stop(&app->reaper); /* after the loader, which starts it */
    fy_persist_stop(&app->persist); /* in durable mode the final snapshot truncates the log */
    if (app->log != NULL && fy_log_close(app->log) != 0)
        fy_log_error("msg", "could not close the write-ahead log", "err", strerror(errno));
    app->log = NULL;
}

fy_handlers_t fy_app_handlers(fy_app_t *app)
{
    fy_handlers_t h;
    memset(&h, 0, sizeof(h));
    h.ctx = app;
    h.stats = &app->stats;
    h.push = on_push;
    h.del = on_delete;
    h.scrape = on_scrape;
    h.api_metrics = on_api_metrics;
    h.wipe = on_wipe;
    h.bulk_delete = on_bulk_delete;
    h.ui = on_ui;
    h.healthy = on_healthy;
    h.shutdown = on_shutdown;
    h.request_done = on_request_done;
    return h;
}
