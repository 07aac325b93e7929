/*
 * conn_guard.c: the connection guard (conn_guard.h): limits on what an HTTP/1 request costs before h2o hands it to a
 * handler, enforced on every read of the socket.
 *
 * A guard is attached to each accepted socket through sock->on_close (h2o's server side leaves it unused), which
 * also tells it when the socket is gone. While h2o reads a request, the socket's read callback is guard_on_read,
 * which looks at what arrived (header lines so far, time of the last byte, buffered bytes) and either passes the
 * read on to h2o's callback or answers the request itself: a short response written straight to the socket, after
 * which the rest of what the client sends is read and dropped for a moment (so the client sees the answer rather
 * than a reset), and then h2o's own callback is told the connection failed, so h2o frees its connection as it does
 * after any read error. A guard never answers while h2o is writing: it acts only while h2o is reading.
 *
 * Request boundaries: h2o drops a finished request from the socket's input buffer and then restarts reading, so a
 * read restart that finds the buffer smaller than the guard last saw begins a new request. (A restart without that
 * is the 100-continue case: the same request goes on.) Pipelined requests already in the buffer are parsed by h2o
 * without a read, so only h2o's own limits apply to them.
 *
 * Timeouts are checked by a sweep once a second per loop, so they fire up to a second late; h2o's own request
 * timeout is set beyond them (server.c) so that it never cuts a request the guard would let through.
 *
 * Pauses: h2o stops reading a socket once a request is read (h2o_socket_read_stop) and starts again when the answer
 * is written. Inside one loop turn that costs nothing, but an answer that waits (a durable push for the log's sync,
 * a cluster's push for its write quorum) takes the socket out of epoll and puts it back: two epoll_ctl per request,
 * a fifth of a parked push's system time. So h2o's stop of a guarded HTTP/1 socket becomes a pause: the socket stays
 * polled but is not read (H2O_SOCKET_FLAG_DONT_READ), and the first sign of input (a pipelined request, the end of
 * the connection) turns the pause into the real stop, leaving that input in the kernel for h2o's next read. Nothing
 * is read that h2o would not have read; only a client that sends while it waits costs the two calls.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "conn_guard.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#include <h2o/http1.h>

#define LINGER_MS 2000 /* how long the rest of a rejected request is read and dropped */

typedef struct st_fy_guard_t {
    h2o_socket_t *sock;
    fy_guard_loop_t *gl;
    h2o_linklist_t link;   /* in gl->conns */
    h2o_socket_cb read_cb; /* h2o's read callback, called by guard_on_read */
    uint64_t req_start;    /* h2o_now of the request's first byte, 0 before it */
    uint64_t last_input;   /* h2o_now of the last byte read, or of the last read restart */
    uint64_t linger_until; /* rejected: when the connection is closed at the latest */
    size_t seen;           /* sock->input->size after the last look */
    size_t scan_off;       /* header bytes scanned so far */
    size_t acct;           /* bytes of this connection in the in-flight count */
    unsigned lines;        /* request line and header fields seen */
    size_t request_line_len;
    unsigned http1 : 1;    /* h2o's HTTP/1 request reader is the callback (not TLS handshake, not HTTP/2) */
    unsigned hdr_done : 1; /* the header block is complete */
    unsigned rejected : 1; /* the guard has answered; the connection is closing */
    unsigned closing : 1;  /* h2o has been told to close it: with TLS the socket lingers until close_notify is out */
} fy_guard_t;

static fy_guard_config_t cfg;
static _Atomic uint64_t inflight;
static void (*real_read_start)(h2o_socket_t *, h2o_socket_cb);
static void (*real_read_stop)(h2o_socket_t *);
/* h2o's HTTP/1 request reader, learnt by the probe; every loop thread probes at start and may read it at once:
 * atomic (the value is the same function on every thread, but plain accesses race, and ThreadSanitizer says so) */
static _Atomic(h2o_socket_cb) http1_read_cb;
static _Thread_local int probing;
static _Thread_local h2o_socket_cb probed_cb;

static void guard_on_read(h2o_socket_t *sock, const char *err);
static void guard_on_close(void *data);
static void on_paused_input(h2o_socket_t *sock, const char *err);

static fy_guard_t *guard_of(h2o_socket_t *sock)
{
    return sock->on_close.cb == guard_on_close ? sock->on_close.data : NULL;
}

/* h2o stopped reading and the socket stays polled, unread: on_paused_input is its callback exactly then. */
static int paused(h2o_socket_t *sock)
{
    return sock->_cb.read == on_paused_input;
}

uint64_t fy_guard_inflight_bytes(void)
{
    return atomic_load_explicit(&inflight, memory_order_relaxed);
}

/* Buffer capacity rather than size: that is what the connection holds in memory. */
static void account(fy_guard_t *g)
{
    h2o_buffer_t *in = g->sock->input;
    size_t now = in->bytes != NULL ? in->capacity : 0;
    if (now != g->acct) {
        if (now > g->acct)
            atomic_fetch_add_explicit(&inflight, now - g->acct, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(&inflight, g->acct - now, memory_order_relaxed);
        g->acct = now;
    }
}

static void count(fy_http_reject_t r)
{
    if (cfg.stats != NULL)
        atomic_fetch_add_explicit(&cfg.stats->http_rejections[r], 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Interposition */

/* libh2o starts (and restarts) every read through here; see conn_guard.h. */
void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    fy_guard_t *g = guard_of(sock);
    if (probing)
        probed_cb = cb;
    if (paused(sock)) /* any start ends a pause, whoever reads next */
        h2o_socket_dont_read(sock, 0);
    if (g == NULL || g->rejected || g->closing) {
        real_read_start(sock, cb);
        return;
    }
    g->read_cb = cb;
    h2o_socket_cb h1 = atomic_load_explicit(&http1_read_cb, memory_order_relaxed);
    g->http1 = h1 != NULL && cb == h1;
    size_t size = sock->input->size;
    if (size < g->seen) { /* h2o dropped a finished request: the next one begins */
        g->hdr_done = 0;
        g->scan_off = 0;
        g->lines = 0;
        g->request_line_len = 0;
        g->req_start = size != 0 ? h2o_now(g->gl->loop) : 0;
    }
    g->seen = size;
    g->last_input = h2o_now(g->gl->loop);
    account(g);
    real_read_start(sock, guard_on_read);
}

/* libh2o stops every read through here too. */
void h2o_socket_read_stop(h2o_socket_t *sock)
{
    fy_guard_t *g = guard_of(sock);
    if (g != NULL && g->http1 && !g->rejected && !g->closing && sock->_cb.read == guard_on_read) {
        h2o_socket_dont_read(sock, 1);
        real_read_start(sock, on_paused_input); /* already polled for reading: no epoll_ctl */
        return;
    }
    if (paused(sock))
        h2o_socket_dont_read(sock, 0);
    real_read_stop(sock);
}

/* Input (or its end) arrived while h2o was not reading: the stop h2o asked for, with the input left where it is. */
static void on_paused_input(h2o_socket_t *sock, const char *err)
{
    (void)err; /* nothing was read: a closed connection shows again at h2o's next read */
    fy_guard_t *g = guard_of(sock);
    assert(g != NULL);
    h2o_socket_read_stop(sock); /* paused, so the real stop */
    account(g);                 /* unchanged unless something was read after all: the in-flight gauge would show it */
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Answering a request itself */

static const struct {
    int status;
    const char *head; /* status line */
    const char *body;
    int retry_after;
} answers[FY_REJECT__COUNT] = {
    [FY_REJECT_HEADER_FIELDS] = {431, "431 Request Header Fields Too Large", "request has more than 100 header fields", 0},
    [FY_REJECT_HEADER_BYTES] = {431, "431 Request Header Fields Too Large", "request header block exceeds --web.max-header-bytes",
                                0},
    [FY_REJECT_URI_BYTES] = {414, "414 URI Too Long", "request line exceeds --web.max-header-bytes", 0},
    [FY_REJECT_HEADER_TIMEOUT] = {408, "408 Request Timeout", "request headers not received within --web.read-header-timeout", 0},
    [FY_REJECT_IDLE_TIMEOUT] = {408, "408 Request Timeout", "request stalled: nothing received for --web.idle-timeout", 0},
    [FY_REJECT_READ_TIMEOUT] = {408, "408 Request Timeout", "request not received within --web.read-timeout", 0},
    [FY_REJECT_INFLIGHT] = {503, "503 Service Unavailable",
                            "too many request bytes in flight (--web.max-inflight-bytes); retry later", 1},
};

static void close_now(fy_guard_t *g, const char *why)
{
    h2o_socket_t *sock = g->sock;
    h2o_socket_cb cb = g->read_cb;
    g->closing = 1; /* never twice: h2o frees its connection on the first call */
    real_read_stop(sock);
    /* h2o's reader frees its connection (and closes the socket) on a read error; nothing of g is used after */
    cb(sock, why);
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    fy_guard_t *g = guard_of(sock);
    if (err != NULL) {
        close_now(g, err);
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
    g->seen = 0;
    account(g);
}

static void on_answer_written(h2o_socket_t *sock, const char *err)
{
    fy_guard_t *g = guard_of(sock);
    if (err != NULL) {
        close_now(g, err);
        return;
    }
    g->linger_until = h2o_now(g->gl->loop) + LINGER_MS;
    real_read_start(sock, on_linger_read);
    if (sock->input->size != 0)
        on_linger_read(sock, NULL);
}

/* The whole responses, built once by fy_guard_global_init: evloop keeps pointing at the bytes of a write it could not
 * finish at once, so they must outlive the connection's write. */
static h2o_iovec_t answer_text[FY_REJECT__COUNT];

static void build_answers(void)
{
    for (size_t r = 0; r < FY_REJECT__COUNT; r++) {
        if (answers[r].head == NULL)
            continue;
        char buf[512];
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         "X-Content-Type-Options: nosniff\r\n%sContent-Length: %zu\r\n\r\n%s\n",
                         answers[r].head, answers[r].retry_after ? "Retry-After: 1\r\n" : "", strlen(answers[r].body) + 1,
                         answers[r].body);
        assert(n > 0 && (size_t)n < sizeof(buf));
        answer_text[r] = h2o_strdup(NULL, buf, (size_t)n);
    }
}

static void reject(fy_guard_t *g, fy_http_reject_t r)
{
    assert(answer_text[r].base != NULL);
    count(r);
    g->rejected = 1;
    real_read_stop(g->sock);
    h2o_iovec_t iov = answer_text[r];
    h2o_socket_write(g->sock, &iov, 1, on_answer_written);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Reads */

/* Counts the header lines that arrived since the last scan. Returns the reason to reject, or -1. */
static int scan_headers(fy_guard_t *g)
{
    const char *p = g->sock->input->bytes;
    size_t size = g->sock->input->size, off = g->scan_off;
    while (off < size) {
        const char *nl = memchr(p + off, '\n', size - off);
        if (nl == NULL) {
            off = size;
            break;
        }
        size_t end = (size_t)(nl - p), len = end - off;
        int empty = len == 0 || (len == 1 && p[off] == '\r');
        off = end + 1;
        if (empty) {
            if (g->lines == 0) /* empty lines before a request line are skipped, as h2o does */
                continue;
            g->hdr_done = 1;
            break;
        }
        if (++g->lines == 1)
            g->request_line_len = len;
        if (g->lines > FY_GUARD_MAX_HEADER_FIELDS + 1)
            return FY_REJECT_HEADER_FIELDS;
    }
    g->scan_off = off;
    if (off > cfg.max_header_bytes || (!g->hdr_done && size > cfg.max_header_bytes))
        return g->lines == 0 || g->request_line_len > cfg.max_header_bytes ? FY_REJECT_URI_BYTES : FY_REJECT_HEADER_BYTES;
    return -1;
}

static void guard_on_read(h2o_socket_t *sock, const char *err)
{
    fy_guard_t *g = guard_of(sock);
    assert(g != NULL);
    if (err == NULL && g->http1) {
        size_t size = sock->input->size;
        if (size != g->seen) {
            uint64_t now = h2o_now(g->gl->loop);
            if (size > g->seen) {
                g->last_input = now;
                if (g->req_start == 0)
                    g->req_start = now;
            }
            g->seen = size;
            account(g);
        }
        int r = -1;
        if (!g->hdr_done && size > g->scan_off)
            r = scan_headers(g);
        if (r < 0 && cfg.inflight_budget != 0 && g->acct > FY_GUARD_EXEMPT_BYTES &&
            atomic_load_explicit(&inflight, memory_order_relaxed) > cfg.inflight_budget)
            r = FY_REJECT_INFLIGHT;
        if (r >= 0) {
            reject(g, (fy_http_reject_t)r);
            return;
        }
    }
    g->read_cb(sock, err); /* may free g */
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Timeouts */

static void sweep_one(fy_guard_t *g, uint64_t now)
{
    if (g->closing)
        return;
    if (g->rejected) {
        if (now >= g->linger_until)
            close_now(g, "closed after answering");
        return;
    }
    if (!g->http1 || g->sock->_cb.read != guard_on_read)
        return; /* h2o is not waiting for this client (handling, writing) or it is not an HTTP/1 reader */
    if (g->req_start == 0) {
        if (cfg.idle_timeout_ms != 0 && now - g->last_input >= cfg.idle_timeout_ms)
            close_now(g, "idle"); /* between requests: closed without an answer, as h2o does */
        return;
    }
    if (!g->hdr_done && cfg.header_timeout_ms != 0 && now - g->req_start >= cfg.header_timeout_ms)
        reject(g, FY_REJECT_HEADER_TIMEOUT);
    else if (cfg.idle_timeout_ms != 0 && now - g->last_input >= cfg.idle_timeout_ms)
        reject(g, FY_REJECT_IDLE_TIMEOUT);
    else if (cfg.read_timeout_ms != 0 && now - g->req_start >= cfg.read_timeout_ms)
        reject(g, FY_REJECT_READ_TIMEOUT);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    fy_guard_loop_t *gl = H2O_STRUCT_FROM_MEMBER(fy_guard_loop_t, tick_entry, entry);
    uint64_t now = h2o_now(gl->loop);
    h2o_linklist_t *node = gl->conns.next;
    while (node != &gl->conns) {
        fy_guard_t *g = H2O_STRUCT_FROM_MEMBER(fy_guard_t, link, node);
        node = node->next; /* g may be freed by sweep_one (a plain-text socket closes at once) */
        sweep_one(g, now);
    }
    h2o_timeout_link(gl->loop, &gl->tick, &gl->tick_entry);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Set-up */

static void guard_on_close(void *data)
{
    fy_guard_t *g = data;
    h2o_linklist_unlink(&g->link);
    if (g->acct != 0)
        atomic_fetch_sub_explicit(&inflight, g->acct, memory_order_relaxed);
    free(g);
}

/* At load, before any thread: libh2o's reads start and stop through these definitions from the first socket on, the
 * server's or not, guarded or not. */
__attribute__((constructor)) static void resolve_real(void)
{
    real_read_start = (void (*)(h2o_socket_t *, h2o_socket_cb))dlsym(RTLD_NEXT, "h2o_socket_read_start");
    real_read_stop = (void (*)(h2o_socket_t *))dlsym(RTLD_NEXT, "h2o_socket_read_stop");
}

void fy_guard_global_init(const fy_guard_config_t *c)
{
    cfg = *c;
    build_answers();
    if (cfg.max_header_bytes == 0 || cfg.max_header_bytes > FY_GUARD_MAX_HEADER_BYTES_LIMIT)
        cfg.max_header_bytes = FY_GUARD_MAX_HEADER_BYTES_LIMIT;
}

/* Learns h2o's HTTP/1 reader by accepting one end of a socket pair as an HTTP/1 connection; closing the other end
 * makes h2o free it on the next turn of the loop. Returns 0 when the interposition saw the call. */
static int probe(h2o_accept_ctx_t *accept_ctx)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    h2o_socket_t *sock = h2o_evloop_socket_create(accept_ctx->ctx->loop, sv[0], 0);
    probing = 1;
    probed_cb = NULL;
    h2o_http1_accept(accept_ctx, sock, *h2o_get_timestamp(accept_ctx->ctx, NULL, NULL));
    probing = 0;
    close(sv[1]);
    if (probed_cb == NULL)
        return -1;
    h2o_socket_cb none = NULL;
    atomic_compare_exchange_strong(&http1_read_cb, &none, probed_cb); /* the same function on every thread */
    return 0;
}

void fy_guard_loop_init(fy_guard_loop_t *gl, h2o_accept_ctx_t *accept_ctx)
{
    memset(gl, 0, sizeof(*gl));
    gl->loop = accept_ctx->ctx->loop;
    h2o_linklist_init_anchor(&gl->conns);
    if (real_read_start == NULL || real_read_stop == NULL || probe(accept_ctx) != 0) {
        fy_log_error("msg", "connection guard inactive: libh2o does not start reads through h2o_socket_read_start's "
                            "PLT entry; header limits, request timeouts and the in-flight budget are not enforced");
        return;
    }
    gl->active = 1;
    h2o_timeout_init(gl->loop, &gl->tick, 1000);
    gl->tick_entry.cb = on_tick;
    h2o_timeout_link(gl->loop, &gl->tick, &gl->tick_entry);
}

void fy_guard_attach(fy_guard_loop_t *gl, h2o_socket_t *sock)
{
    if (!gl->active)
        return;
    fy_guard_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return; /* unguarded rather than refused */
    g->sock = sock;
    g->gl = gl;
    g->last_input = h2o_now(gl->loop);
    h2o_linklist_insert(&gl->conns, &g->link);
    sock->on_close.cb = guard_on_close;
    sock->on_close.data = g;
}
