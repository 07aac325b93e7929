/*
 * endpoints_read.c: the endpoints that render the store: the scrape (content negotiation, gzip), /api/v1/metrics and
 * the web UI, the response generator they share, and the handler table.
 */
#include "endpoints.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "buildinfo.h"
#include "life.h"
#include "log.h"
#include "negotiate.h"
#include "router.h"

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
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type", content_type, strlen(content_type));
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
    fy_http_t *h = ctx;
    fy_app_t *app = h->app;
    if (!fy_server_is_ready()) {
        const char *why = fy_core_not_ready(&h->app->core);
        fy_server_error(req, 503, why, strlen(why));
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
    int64_t now = fy_now_ns(); /* one instant for the own families and the liveness ages */
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
    /* --push.enable-utf8-names: names that are not legacy-valid are quoted or escaped as the scraper asked (1.11's
     * expfmt.Negotiate), and the Content-Type says which, as client_golang's promhttp does. Without the flag no name
     * needs either, and the header stays 1.5.1's. */
    int esc = FY_ESCAPING_UNDERSCORES;
    if (app->flags->enable_utf8_names)
        esc = fy_negotiate_escaping(accept, accept_len, app->flags->enable_openmetrics);
    int rc;
    switch (fmt) {
    case FY_SCRAPE_PROTOBUF:
        rc = fy_store_render_protobuf(app->store, &life.body, OUT_CHUNK, out_writer, o);
        break;
    case FY_SCRAPE_OPENMETRICS:
        rc = fy_store_render_openmetrics_esc(app->store, &life.body, (fy_name_escaping_t)esc, OUT_CHUNK, out_writer, o);
        break;
    default:
        rc = fy_store_render_text_esc(app->store, &life.body, (fy_name_escaping_t)esc, OUT_CHUNK, out_writer, o);
        break;
    }
    fy_life_body_free(&life);
    free(own_mem);
    if (rc != 0 || out_finish(o) != 0) {
        static const char msg[] = "An error has occurred while serving metrics:\n\nout of memory";
        fy_server_error(req, 500, msg, sizeof(msg) - 1);
        return 0;
    }
    const char *ctype = fy_scrape_content_type(fmt);
    if (app->flags->enable_utf8_names) {
        size_t n = strlen(ctype) + 32;
        char *t = h2o_mem_alloc_pool(&req->pool, n);
        snprintf(t, n, "%s; escaping=%s", ctype, fy_escaping_name(esc));
        ctype = t;
    }
    out_respond(o, ctype);
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
    fy_http_t *h = ctx;
    fy_app_t *app = h->app;
    if (!fy_server_is_ready()) {
        const char *why = fy_core_not_ready(&h->app->core);
        fy_server_error(req, 503, why, strlen(why));
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

/* ------------------------------------------------------------------------------------------------------------- */
/* Replication's state: /api/v1/status "cluster", the UI's Status tab, /-/ready's reason */

static void row(fy_buf_t *b, const char *k, const char *v)
{
    fy_buf_str(b, "<tr><th>");
    fy_html_escape(b, k, strlen(k));
    fy_buf_str(b, "</th><td>");
    fy_html_escape(b, v, strlen(v));
    fy_buf_str(b, "</td></tr>");
}

static void cluster_rows(fy_cluster_t *c, char *out, size_t cap)
{
    fy_cluster_status_t st;
    fy_cluster_status(c, &st);
    fy_buf_t b = {NULL, 0, 0, 0};
    char v[512];
    snprintf(v, sizeof(v), "%016llx (clock slot %u)", (unsigned long long)st.node, st.slot);
    row(&b, "Replica", v);
    snprintf(v, sizeof(v), "%s", st.ready ? "yes" : st.not_ready ? st.not_ready : "no");
    row(&b, "Ready", v);
    snprintf(v, sizeof(v), "%u replicas, a change is acknowledged once %u hold it", st.replicas, st.quorum);
    row(&b, "Write quorum", v);
    snprintf(v, sizeof(v), "sent %llu, applied from peers %llu, quorum failures %llu, conflicts dropped %llu, tombstones %llu",
             (unsigned long long)st.sent, (unsigned long long)st.applied,
             (unsigned long long)(st.quorum_failures + st.refused_no_quorum), (unsigned long long)st.killed,
             (unsigned long long)st.tombstones);
    row(&b, "Changes", v);
    for (size_t i = 0; i < st.npeers; i++) {
        const fy_cluster_peer_status_t *p = &st.peers[i];
        snprintf(v, sizeof(v), "%s%s; acknowledged %llu of ours (lag %.3f s); clock offset %+.3f s%s%s",
                 p->connected ? "connected" : "not connected", p->inbound ? "" : " (no link from it)", (unsigned long long)p->acked,
                 p->lag_seconds, p->clock_offset_seconds, p->refused[0] ? "; refused: " : "", p->refused);
        char k[160];
        snprintf(k, sizeof(k), "Peer %s", p->addr);
        row(&b, k, v);
    }
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    if (b.p != NULL)
        memcpy(out, b.p, n);
    out[n] = '\0';
    fy_buf_free(&b);
}

static void jadd(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t c = (*len + n) * 2 + 256;
        char *q = realloc(*buf, c);
        if (q == NULL)
            abort(); /* as fy_json_quote does */
        *buf = q;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static char *status_extra(void *ctx)
{
    fy_http_t *h = ctx;
    if (h->app->cluster == NULL)
        return NULL;
    fy_cluster_status_t st;
    fy_cluster_status(h->app->cluster, &st);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char t[512];
    int n = snprintf(t, sizeof(t),
                     "\"cluster\":{\"node\":\"%016llx\",\"slot\":%u,\"replicas\":%u,\"write_quorum\":%u,\"ready\":%s,"
                     "\"changes_sent\":%llu,\"changes_applied\":%llu,\"quorum_failures\":%llu,\"conflicts_dropped\":%llu,"
                     "\"tombstones\":%llu,\"not_ready\":",
                     (unsigned long long)st.node, st.slot, st.replicas, st.quorum, st.ready ? "true" : "false",
                     (unsigned long long)st.sent, (unsigned long long)st.applied,
                     (unsigned long long)(st.quorum_failures + st.refused_no_quorum), (unsigned long long)st.killed,
                     (unsigned long long)st.tombstones);
    jadd(&buf, &len, &cap, t, (size_t)n);
    if (st.not_ready != NULL)
        fy_json_quote(fy_str(st.not_ready, strlen(st.not_ready)), &buf, &len, &cap);
    else
        jadd(&buf, &len, &cap, "null", 4);
    jadd(&buf, &len, &cap, ",\"peers\":[", 10);
    for (size_t i = 0; i < st.npeers; i++) {
        const fy_cluster_peer_status_t *p = &st.peers[i];
        if (i)
            jadd(&buf, &len, &cap, ",", 1);
        jadd(&buf, &len, &cap, "{\"address\":", 11);
        fy_json_quote(fy_str(p->addr, strlen(p->addr)), &buf, &len, &cap);
        n = snprintf(t, sizeof(t),
                     ",\"node\":\"%016llx\",\"connected\":%s,\"inbound\":%s,\"caught_up\":%s,\"acknowledged\":%llu,"
                     "\"applied\":%llu,\"lag_seconds\":%.6f,\"clock_offset_seconds\":%.6f,\"refused\":",
                     (unsigned long long)p->node, p->connected ? "true" : "false", p->inbound ? "true" : "false",
                     p->caught_up ? "true" : "false", (unsigned long long)p->acked, (unsigned long long)p->applied, p->lag_seconds,
                     p->clock_offset_seconds);
        jadd(&buf, &len, &cap, t, (size_t)n);
        fy_json_quote(fy_str(p->refused, strlen(p->refused)), &buf, &len, &cap);
        jadd(&buf, &len, &cap, "}", 1);
    }
    jadd(&buf, &len, &cap, "]}", 3); /* with the NUL */
    return buf;
}

static const char *not_ready(void *ctx)
{
    fy_http_t *h = ctx;
    const char *why = NULL;
    if (h->app->cluster != NULL && !fy_cluster_is_ready(h->app->cluster, &why))
        return why;
    return NULL;
}

static int on_ui(void *ctx, h2o_req_t *req, const char *static_path, size_t static_len)
{
    fy_http_t *h = ctx;
    fy_app_t *app = h->app;
    if (static_path != NULL) {
        /* The page is self-contained: the only static files are the Help's docs (ui_docs.c), looked up by name in a
         * fixed table, so no path reaches the file system. */
        int docs = static_len >= 6 && memcmp(static_path, "/docs/", 6) == 0;
        const fy_ui_doc_t *d = docs && static_len > 6 ? fy_ui_doc(static_path + 6, static_len - 6) : NULL;
        if (docs && (static_len == 6 || d != NULL)) {
            /* nosniff: a browser takes the type as given (no HTML guessed in Markdown shown as text). The CSP says what
             * the pages are, so even a doc that slipped something past cmark-gfm's safe mode could not run it. */
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, "X-Content-Type-Options",
                                  H2O_STRLIT("nosniff"));
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0,
                                  "Content-Security-Policy", H2O_STRLIT(FY_UI_DOCS_CSP));
        }
        if (docs && static_len == 6) {
            fy_buf_t b = {0};
            if (fy_ui_doc_index(&b) == 0)
                fy_server_respond(req, 200, NULL, "text/html; charset=utf-8", b.p, b.len);
            else
                fy_server_error(req, 500, H2O_STRLIT("out of memory"));
            fy_buf_free(&b);
            return 0;
        }
        if (d != NULL) {
            fy_server_respond(req, 200, NULL, d->type, (const char *)d->text, d->len);
            return 0;
        }
        fy_server_error(req, 404, H2O_STRLIT("404 page not found"));
        return 0;
    }
    char page[32], limit[32], filter[512], job[512], state[32], sort[32];
    ssize_t fl = query_param(req, "q", filter, sizeof(filter));
    ssize_t jl = query_param(req, "job", job, sizeof(job));
    fy_ui_opts_t o = h->ui;
    o.page = query_param(req, "page", page, sizeof(page)) > 0 ? (unsigned)strtoul(page, NULL, 10) : 0;
    /* ?limit= groups per page; 0 or garbage is the default, more than FY_UI_MAX_LIMIT is FY_UI_MAX_LIMIT (ui.c) */
    if (query_param(req, "limit", limit, sizeof(limit)) > 0) {
        unsigned long l = strtoul(limit, NULL, 10);
        o.page_size = l > FY_UI_MAX_LIMIT ? FY_UI_MAX_LIMIT : (unsigned)l;
    }
    o.filter = fl > 0 ? filter : NULL;
    o.filter_len = fl > 0 ? (size_t)fl : 0;
    o.job = jl > 0 ? job : NULL;
    o.job_len = jl > 0 ? (size_t)jl : 0;
    /* an unknown ?state= or ?sort= is ignored (all states, the default order), like a bad ?page= */
    ssize_t sl = query_param(req, "state", state, sizeof(state));
    int st = sl > 0 ? fy_ui_state_parse(state, (size_t)sl) : -1;
    o.state = st >= 0 ? st + 1 : 0;
    ssize_t ol = query_param(req, "sort", sort, sizeof(sort));
    o.sort = ol == 5 && memcmp(sort, "state", 5) == 0  ? FY_UI_SORT_STATE
             : ol == 4 && memcmp(sort, "push", 4) == 0 ? FY_UI_SORT_PUSH
                                                       : FY_UI_SORT_JOB;
    o.now_ns = 0;                               /* the clock at open */
    o.grace_ns = app->flags->interval_grace_ns; /* as push_alive */
    size_t pl = req->path.len;
    if (req->query_at != SIZE_MAX)
        pl = req->query_at;
    o.status_tab = pl >= 7 && memcmp(req->path.base + pl - 7, "/status", 7) == 0;
    if (app->cluster != NULL)
        cluster_rows(app->cluster, o.cluster_rows, sizeof(o.cluster_rows));
    fy_ui_t *u = fy_ui_open(app->store, &o);
    if (u == NULL) {
        fy_server_error(req, 500, H2O_STRLIT("out of memory"));
        return 0;
    }
    out_stream(req, "text/html; charset=utf-8", ui_pull, u, ui_free);
    return 0;
}

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

int fy_http_init(fy_http_t *h, fy_app_t *app, const char *version, const char *revision, const char *start_time)
{
    memset(h, 0, sizeof(*h));
    h->app = app;
    kvlist_t fl = {NULL, 0, 0};
    char prefix[256];
    const char *ext = app->flags->external_url, *ext_path = "", *sep = strstr(ext, "://");
    if (sep != NULL && (ext_path = strchr(sep + 3, '/')) == NULL)
        ext_path = "";
    fy_route_prefix_normalise(app->flags->route_prefix, ext_path, prefix, sizeof(prefix));
    fy_flags_each(app->flags, prefix, flag_cb, &fl);
    h->ui.admin_api = app->flags->enable_admin_api;
    h->ui.version = version;
    h->ui.revision = revision;
    h->ui.start_time = start_time;
    h->ui.flags = fl.kv;
    h->ui.nflags = fl.n;
    kvlist_t bl = {NULL, 0, 0};
    add_kv(&bl.kv, &bl.n, &bl.cap, "branch", FY_BRANCH);
    add_kv(&bl.kv, &bl.n, &bl.cap, "revision", revision);
    add_kv(&bl.kv, &bl.n, &bl.cap, "version", version);
    h->ui.build = bl.kv;
    h->ui.nbuild = bl.n;
    h->ui_flags_owned = fl.kv;
    h->ui_build_owned = bl.kv;
    return 0;
}

void fy_http_dispose(fy_http_t *h)
{
    for (size_t i = 0; i < h->ui.nflags; i++) {
        free((void *)h->ui.flags[i].key);
        free((void *)h->ui.flags[i].value);
    }
    for (size_t i = 0; i < h->ui.nbuild; i++) {
        free((void *)h->ui.build[i].key);
        free((void *)h->ui.build[i].value);
    }
    free(h->ui_flags_owned);
    free(h->ui_build_owned);
    memset(h, 0, sizeof(*h));
}

static void on_request_done(void *ctx, fy_stat_handler_t hd, int status, const char *method, size_t method_len)
{
    fy_http_t *h = ctx;
    int t = fy_server_thread_index();
    if (t < 0)
        return;
    fy_selfstats_request(&h->app->stats, (unsigned)t, status, hd, fy_method_from(method, method_len));
}

static fy_result_t on_healthy(void *ctx)
{
    fy_http_t *h = ctx;
    const char *why = fy_app_unhealthy(h->app);
    if (why != NULL)
        return (fy_result_t){503, why, strlen(why)};
    return (fy_result_t){200, "OK", 2};
}

static void on_shutdown(void *ctx)
{
    fy_http_t *h = ctx;
    fy_app_stop(h->app);
}

fy_handlers_t fy_http_handlers(fy_http_t *h)
{
    fy_handlers_t t;
    memset(&t, 0, sizeof(t));
    t.ctx = h;
    t.stats = &h->app->stats;
    t.push = fy_http_push;
    t.del = fy_http_delete;
    t.scrape = on_scrape;
    t.api_metrics = on_api_metrics;
    t.wipe = fy_http_wipe;
    t.bulk_delete = fy_http_bulk_delete;
    t.ui = on_ui;
    t.healthy = on_healthy;
    t.shutdown = on_shutdown;
    t.request_done = on_request_done;
    t.status_extra = status_extra;
    t.not_ready = not_ready;
    return t;
}
