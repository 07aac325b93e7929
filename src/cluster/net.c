/*
 * net.c: the network thread of replication (cluster.h): the peer port, outbound connections, and the poll loop
 * that feeds the protocol (node.c). It owns every socket; the protocol only sees links.
 *
 * With --cluster.tls-config every link is TLS (non-blocking OpenSSL over the same sockets): an accepted socket
 * starts SSL_accept, a dial that connected starts SSL_connect and only then is opened for the protocol (its HELLO).
 * A handshake that fails closes the link and is logged once a minute per address with OpenSSL's reason.
 */
#define _GNU_SOURCE
#include "cluster_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"

static int64_t wall_now(fy_cluster_t *c)
{
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* HOST:PORT (IPv6 in brackets); "" host = every address. 0, or -1. */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return 0;
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The driver hooks */

static void drv_dial(fy_cluster_t *c, int ai)
{
    fy_cl_addr_t *a = &c->addrs[ai];
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* names are resolved at each attempt: a replica that moved is found again (DNS in Kubernetes) */
    int rc = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fy_cl_dial_failed(c, ai, rc != 0 ? gai_strerror(rc) : "no address");
        return;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        fy_cl_dial_failed(c, ai, strerror(errno));
        return;
    }
    set_nonblock(fd);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        fy_cl_dial_failed(c, ai, strerror(errno));
        close(fd);
        return;
    }
    int li = fy_cl_link_new(c, fd, 1, ai);
    if (li < 0) {
        close(fd);
        fy_cl_dial_failed(c, ai, "too many links");
        return;
    }
    c->links[li].open = 0;
    /* connecting: the handshake starts when the socket is writable (drv_loop) */
    c->links[li].last_tx = -1;
}

static void drv_close(fy_cluster_t *c, int li)
{
    (void)c;
    (void)li; /* swept by the loop after the current input (links are not freed under the protocol's feet) */
}

static void drv_wake(fy_cluster_t *c)
{
    uint64_t one = 1;
    if (atomic_exchange(&c->wake_pending, 1))
        return;
    if (c->wake_fd >= 0 && write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        fy_log_error("msg", "could not wake the replication thread", "err", strerror(errno));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* TLS (--cluster.tls-config) */

#define MINUTE_NS (60 * (int64_t)1000000000)

/* OpenSSL's reason for a failed handshake or read (the error queue is cleared). */
static void tls_reason(SSL *ssl, int rc, int e, char *out, size_t cap)
{
    unsigned long code = ERR_peek_last_error();
    long vr = SSL_get_verify_result(ssl);
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    if (code && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
        snprintf(out, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    else if (r != NULL)
        snprintf(out, cap, "%s", r);
    else if (code)
        ERR_error_string_n(code, out, cap);
    else if (e == SSL_ERROR_SYSCALL && rc < 0 && errno != 0)
        snprintf(out, cap, "%s", strerror(errno));
    else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
        snprintf(out, cap, "connection closed by the other side");
    else
        snprintf(out, cap, "TLS error %d", e);
    ERR_clear_error();
}

/* A TLS failure before the protocol's handshake is done: the link closes, logged once a minute per address. */
static void tls_failed(fy_cluster_t *c, int li, const char *why)
{
    fy_cl_link_t *l = &c->links[li];
    int64_t now = c->now(c), *at = NULL;
    const char *who = l->peer;
    if (l->outbound) {
        at = &c->addrs[l->addr].logged_at;
        who = c->addrs[l->addr].text;
    } else {
        int oldest = 0;
        for (int i = 0; i < 16 && at == NULL; i++) {
            if (strcmp(c->tls_logged[i].addr, l->peer) == 0)
                at = &c->tls_logged[i].at;
            else if (c->tls_logged[i].at < c->tls_logged[oldest].at)
                oldest = i;
        }
        if (at == NULL) {
            memcpy(c->tls_logged[oldest].addr, l->peer, sizeof(c->tls_logged[oldest].addr)); /* both 64, NUL-ended */
            c->tls_logged[oldest].at = 0;
            at = &c->tls_logged[oldest].at;
        }
    }
    if (*at == 0 || now - *at >= MINUTE_NS) {
        *at = now;
        fy_log_warn("msg", "TLS handshake with a peer failed (logged once a minute per address)", "peer", who, "direction",
                    l->outbound ? "outbound" : "inbound", "err", why);
    }
    l->tls_dead = 1;
    l->closing = 1;
}

/* Starts TLS on a link whose socket is connected (outbound) or accepted. 0, or -1 (the link is closing). */
static int tls_begin(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = &c->links[li];
    SSL *ssl = SSL_new((SSL_CTX *)(l->outbound ? c->cfg.tls_client : c->cfg.tls_server));
    if (ssl == NULL || SSL_set_fd(ssl, l->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        tls_failed(c, li, "could not set up TLS (out of memory)");
        return -1;
    }
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (l->outbound) {
        const char *name =
            c->cfg.tls_server_name != NULL && c->cfg.tls_server_name[0] ? c->cfg.tls_server_name : c->addrs[l->addr].host;
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
        /* checked unless insecure_skip_verify (the context's SSL_VERIFY_NONE then ignores the result) */
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
                       : SSL_set1_host(ssl, name) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1;
        if (!ok) {
            SSL_free(ssl);
            ERR_clear_error();
            tls_failed(c, li, "the server name to check is not valid");
            return -1;
        }
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    l->ssl = ssl;
    l->tls_hs = 1;
    l->tls_want = POLLIN;
    return 0;
}

/* One step of the handshake; an outbound link is opened for the protocol once it is done. */
static void tls_step(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = &c->links[li];
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(l->ssl);
    if (rc == 1) {
        l->tls_hs = 0;
        l->tls_want = 0;
        if (l->outbound)
            fy_cl_link_opened(c, li);
        return;
    }
    int e = SSL_get_error(l->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        l->tls_want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return;
    }
    char why[256];
    tls_reason(l->ssl, rc, e, why, sizeof(why));
    tls_failed(c, li, why);
}

/* Everything OpenSSL can decrypt now into link->in (SSL_read until it wants the socket: nothing stays pending). */
static void tls_read(fy_cluster_t *c, int li, char *buf, size_t cap)
{
    fy_cl_link_t *l = &c->links[li];
    size_t got = 0;
    l->tls_want = 0;
    l->tls_wr_read = 0;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int k = SSL_read(l->ssl, buf + got, (int)(cap - got));
        if (k > 0) {
            got += (size_t)k;
            if (got == cap) {
                fy_wbuf_add(&l->in, buf, got);
                got = 0;
            }
            continue;
        }
        int e = SSL_get_error(l->ssl, k);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            l->tls_want = POLLOUT;
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: ours goes back in sweep */
            l->closing = 1;
            break;
        }
        char why[256];
        tls_reason(l->ssl, k, e, why, sizeof(why));
        if (!l->open) /* TLS 1.3: a client learns here that the server refused its certificate */
            tls_failed(c, li, why);
        l->tls_dead = 1;
        l->closing = 1;
        break;
    }
    if (got > 0)
        fy_wbuf_add(&l->in, buf, got);
}

/* Closes a link's socket: TLS says close_notify first (one non-blocking try) unless it failed. */
static void drv_release(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = &c->links[li];
    if (l->ssl != NULL) {
        if (!l->tls_dead && !l->tls_hs)
            SSL_shutdown(l->ssl);
        SSL_free(l->ssl);
        ERR_clear_error();
        l->ssl = NULL;
    }
    close(l->fd);
}

void fy_cluster_set_tls(fy_cluster_t *c, void *server_ctx, void *client_ctx, const char *server_name)
{
    c->cfg.tls_server = server_ctx;
    c->cfg.tls_client = client_ctx;
    c->cfg.tls_server_name = server_name;
}

/* ------------------------------------------------------------------------------------------------------------- */

static void do_write(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = &c->links[li];
    if (l->ssl != NULL) {
        while (!l->tls_hs && !l->tls_dead && fy_wbuf_len(&l->out) > 0) {
            size_t len = fy_wbuf_len(&l->out);
            ERR_clear_error();
            int n = SSL_write(l->ssl, l->out.p + l->out.off, len > INT_MAX ? INT_MAX : (int)len);
            if (n > 0) {
                l->out.off += (size_t)n;
                continue;
            }
            int e = SSL_get_error(l->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                l->tls_wr_read = 1;
            else if (e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                l->tls_dead = 1;
                l->closing = 1;
            }
            break;
        }
        fy_wbuf_compact(&l->out);
        return;
    }
    while (fy_wbuf_len(&l->out) > 0) {
        ssize_t n = send(l->fd, l->out.p + l->out.off, fy_wbuf_len(&l->out), MSG_NOSIGNAL);
        if (n > 0) {
            l->out.off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        l->closing = 1;
        break;
    }
    fy_wbuf_compact(&l->out);
}

static void sweep(fy_cluster_t *c)
{
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = &c->links[li];
        if (!l->used || !l->closing)
            continue;
        do_write(c, li); /* a REFUSE, if any, goes out first when it can */
        drv_release(c, li);
        l->closing = 0; /* so that fy_cl_link_closed runs its bookkeeping */
        fy_cl_link_closed(c, li, NULL);
    }
}

static void *loop(void *arg)
{
    fy_cluster_t *c = arg;
    /* OpenSSL writes to the sockets with write(), not send(MSG_NOSIGNAL): a peer gone must not kill the process
     * before the HTTP server ignores SIGPIPE (it is thread-directed, so blocked here it stays pending, harmlessly) */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    struct pollfd pfd[FY_CL_MAX_LINKS + 2];
    int map[FY_CL_MAX_LINKS + 2];
    char buf[256 << 10];
    while (!atomic_load(&c->stop)) {
        int n = 0;
        pfd[n] = (struct pollfd){c->listen_fd, POLLIN, 0};
        map[n++] = -1;
        pfd[n] = (struct pollfd){c->wake_fd, POLLIN, 0};
        map[n++] = -2;
        for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
            fy_cl_link_t *l = &c->links[li];
            if (!l->used)
                continue;
            short ev = POLLIN;
            if (l->ssl != NULL && l->tls_hs)
                ev = l->tls_want;
            else if (l->ssl != NULL) {
                if (l->tls_want == POLLOUT || (fy_wbuf_len(&l->out) > 0 && !l->tls_wr_read))
                    ev |= POLLOUT;
            } else if (l->last_tx == -1 || fy_wbuf_len(&l->out) > 0)
                ev |= POLLOUT;
            pfd[n] = (struct pollfd){l->fd, ev, 0};
            map[n++] = li;
        }
        int64_t wait = fy_cl_wait_ns(c); /* 0 while frames or a transfer wait, the flush delay, up to 20 ms idle */
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        int rc = ppoll(pfd, (nfds_t)n, &ts, NULL);
        if (rc < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && rc > 0; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (map[i] == -1) {
                for (;;) {
                    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    set_nonblock(fd);
                    int li = fy_cl_link_new(c, fd, 0, -1);
                    if (li < 0) {
                        close(fd);
                        continue;
                    }
                    if (c->cfg.tls_server != NULL) {
                        struct sockaddr_storage ss;
                        socklen_t sl = sizeof(ss);
                        char h[INET6_ADDRSTRLEN] = "?";
                        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
                            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h, sizeof(h));
                        else if (ss.ss_family == AF_INET)
                            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h, sizeof(h));
                        snprintf(c->links[li].peer, sizeof(c->links[li].peer), "%s", h);
                        tls_begin(c, li);
                    }
                }
            } else if (map[i] == -2) {
                uint64_t v;
                if (read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    fy_log_error("msg", "replication wake-up read failed", "err", strerror(errno));
                /* after the read, before the flush below: a change committed from here on writes the eventfd again
                 * (cleared first, a change committed between the clear and the read left the flag set with the
                 * eventfd empty, and every later change waited for the 20 ms poll timeout) */
                atomic_store(&c->wake_pending, 0);
            } else {
                int li = map[i];
                fy_cl_link_t *l = &c->links[li];
                if (!l->used || l->closing)
                    continue;
                if (l->last_tx == -1 && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
                    int err = 0;
                    socklen_t el = sizeof(err);
                    getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                    if (err != 0) {
                        int ai = l->addr;
                        close(l->fd);
                        fy_cl_link_closed(c, li, strerror(err));
                        fy_cl_dial_failed(c, ai, strerror(err));
                        continue;
                    }
                    l->last_tx = wall_now(c);
                    if (c->cfg.tls_client == NULL) {
                        fy_cl_link_opened(c, li);
                    } else {
                        if (tls_begin(c, li) == 0)
                            tls_step(c, li);
                        continue;
                    }
                }
                if (l->ssl != NULL) {
                    if (l->tls_hs)
                        tls_step(c, li); /* any event: the handshake's next step */
                    if (l->tls_hs || l->closing)
                        continue;
                    /* the peer's first frames may have come with the handshake's last flight: read in any case */
                    tls_read(c, li, buf, sizeof(buf));
                    if (fy_wbuf_len(&l->in) > 0) {
                        int closing = l->closing;
                        l->closing = 0;
                        fy_cl_input(c, li);
                        l->closing |= closing;
                    }
                    continue;
                }
                if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    for (;;) {
                        ssize_t k = recv(l->fd, buf, sizeof(buf), 0);
                        if (k > 0) {
                            fy_wbuf_add(&l->in, buf, (size_t)k);
                            if ((size_t)k < sizeof(buf))
                                break;
                            continue;
                        }
                        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                            break;
                        l->closing = 1; /* EOF or error */
                        break;
                    }
                    if (fy_wbuf_len(&l->in) > 0) {
                        int closing = l->closing;
                        l->closing = 0;
                        fy_cl_input(c, li); /* what arrived before an EOF still counts */
                        l->closing |= closing;
                    }
                }
            }
        }
        for (int li = 0; li < FY_CL_MAX_LINKS; li++) /* frames left over from a time slice */
            if (c->links[li].used && !c->links[li].closing && c->links[li].more_input)
                fy_cl_input(c, li);
        fy_cl_tick(c);
        for (int li = 0; li < FY_CL_MAX_LINKS; li++)
            if (c->links[li].used && !c->links[li].closing && c->links[li].last_tx != -1 && fy_wbuf_len(&c->links[li].out) > 0)
                do_write(c, li);
        sweep(c);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */

/* An address is this replica's when it resolves to an address of this host and the peer port (bind() to an address
 * that is not local fails), or names --cluster.advertise-address. */
static int is_self(fy_cluster_t *c, fy_cl_addr_t *a, const char *listen_port)
{
    if (c->cfg.advertise != NULL && c->cfg.advertise[0] && strcmp(c->cfg.advertise, a->text) == 0)
        return 1;
    if (strcmp(a->port, listen_port) != 0)
        return 0;
    struct addrinfo hints, *res = NULL, *p;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(a->host[0] ? a->host : NULL, "0", &hints, &res) != 0)
        return 0;
    int self = 0;
    for (p = res; p != NULL && !self; p = p->ai_next) {
        int fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        self = bind(fd, p->ai_addr, p->ai_addrlen) == 0;
        close(fd);
    }
    freeaddrinfo(res);
    return self;
}

fy_cluster_t *fy_cluster_create(const fy_cluster_config_t *cfg, fy_core_t *core, char *err, size_t errlen)
{
    char host[256], port[16];
    if (split_hostport(cfg->listen, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, errlen, "--cluster.listen-address %s is not HOST:PORT", cfg->listen);
        return NULL;
    }
    /* A replica back from a partition longer than the retention drops its state (node.c discard_isolated): a change
     * it acknowledged just before the cut must have been answered by then (200, or 503 after the ack timeout), or a
     * 200 could come for a change it no longer holds (tests/test_cluster_sim.c, FY_SIM_RETENTION_MS=4000). */
    if (cfg->retention_ns < cfg->ack_timeout_ns + 2 * cfg->peer_timeout_ns) {
        snprintf(err, errlen,
                 "--cluster.tombstone-retention (%.1fs) must be at least --cluster.ack-timeout + 2 x --cluster.peer-timeout "
                 "(%.1fs): a replica back from a longer partition drops its state, and must not hold changes still waiting "
                 "for their answer then",
                 (double)cfg->retention_ns / 1e9, (double)(cfg->ack_timeout_ns + 2 * cfg->peer_timeout_ns) / 1e9);
        return NULL;
    }
    fy_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (c->cfg.label == NULL)
        c->cfg.label = "";
    if (c->cfg.backlog_bytes == 0)
        c->cfg.backlog_bytes = 64u << 20;
    if (c->cfg.heartbeat_ns == 0)
        c->cfg.heartbeat_ns = 250 * (int64_t)1000000;
    if (c->cfg.reconnect_ns == 0)
        c->cfg.reconnect_ns = 200 * (int64_t)1000000;
    c->core = core;
    c->listen_fd = c->wake_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->now = wall_now;
    c->dial = drv_dial;
    c->close_link = drv_close;
    c->wake = drv_wake;
    if (getrandom(&c->id, sizeof(c->id), 0) != sizeof(c->id))
        c->id = (uint64_t)wall_now(c) ^ (uint64_t)getpid() << 32;
    atomic_store(&c->slot, (uint32_t)(c->id >> 60));
    for (size_t i = 0; i < cfg->npeers; i++) {
        const char *p = cfg->peers[i];
        int dup = 0;
        for (size_t k = 0; k < c->naddrs; k++)
            dup |= strcmp(c->addrs[k].text, p) == 0;
        if (dup)
            continue;
        if (c->naddrs == FY_CL_MAX_ADDRS) {
            snprintf(err, errlen, "too many --cluster.peer addresses (at most %d)", FY_CL_MAX_ADDRS);
            goto Fail;
        }
        fy_cl_addr_t *a = &c->addrs[c->naddrs];
        snprintf(a->text, sizeof(a->text), "%s", p);
        if (split_hostport(p, a->host, sizeof(a->host), a->port, sizeof(a->port)) != 0 || a->host[0] == '\0') {
            snprintf(err, errlen, "--cluster.peer %s is not HOST:PORT", p);
            goto Fail;
        }
        a->self = is_self(c, a, port);
        c->naddrs++;
    }
    /* The clock slot (the low bits of every stamp, which make stamps unique across replicas): the rank of this
     * replica's address among the peer addresses, so that replicas given the same list never share one. A random
     * slot (from the id) collided 3 times in 16 with 3 replicas; two replicas that became ready before they met then
     * kept it and stamped changes alike (a DELETE and a POST at one stamp), which the store cannot order
     * (tests/test_cluster_sim.c, seed 46). Without this replica in the list the random slot stays (slot_check). */
    for (size_t i = 0; i < c->naddrs; i++) {
        if (!c->addrs[i].self)
            continue;
        unsigned rank = 0;
        for (size_t k = 0; k < c->naddrs; k++)
            rank += strcmp(c->addrs[k].text, c->addrs[i].text) < 0;
        atomic_store(&c->slot, rank & 15);
        break;
    }
    unsigned others = 0;
    for (size_t i = 0; i < c->naddrs; i++)
        others += !c->addrs[i].self;
    c->replicas = cfg->replicas ? cfg->replicas : others + 1;
    if (c->replicas > 16) {
        snprintf(err, errlen, "at most 16 replicas (the clock gives each a 4-bit slot), got %u", c->replicas);
        goto Fail;
    }
    if (others + 1 < c->replicas && cfg->replicas == 0) {
        snprintf(err, errlen, "internal: replicas");
        goto Fail;
    }
    c->quorum = cfg->quorum == 0 ? c->replicas / 2 + 1 : cfg->quorum == UINT32_MAX ? c->replicas : cfg->quorum;
    if (c->quorum > c->replicas) {
        snprintf(err, errlen, "--cluster.write-quorum=%u is more than the %u replicas", c->quorum, c->replicas);
        goto Fail;
    }
    fy_cl_init(c);
    return c;
Fail:
    pthread_mutex_destroy(&c->mu);
    free(c);
    return NULL;
}

int fy_cluster_start(fy_cluster_t *c, char *err, size_t errlen)
{
    char host[256], port[16];
    split_hostport(c->cfg.listen, host, sizeof(host), port, sizeof(port));
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--cluster.listen-address %s: %s", c->cfg.listen, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "--cluster.listen-address %s: %s", c->cfg.listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    set_nonblock(fd);
    c->listen_fd = fd;
    fy_cl_clock_from_store(c);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0 || pthread_create(&c->thread, NULL, loop, c) != 0) {
        snprintf(err, errlen, "could not start the replication thread: %s", strerror(errno));
        return -1;
    }
    c->running = 1;
    char n[3][24];
    snprintf(n[0], sizeof(n[0]), "%u", c->replicas);
    snprintf(n[1], sizeof(n[1]), "%u", c->quorum);
    snprintf(n[2], sizeof(n[2]), "%016llx", (unsigned long long)c->id);
    fy_log_info("msg", "cluster: listening for peers", "address", c->cfg.listen, "replicas", n[0], "write_quorum", n[1], "node",
                n[2], "tls", c->cfg.tls_server != NULL ? "true" : "false");
    return 0;
}

void fy_cluster_loaded(fy_cluster_t *c, int durable_state)
{
    /* a store write from the loader thread is over before this; the flag is read by the network thread */
    __atomic_store_n(&c->durable_state, durable_state, __ATOMIC_RELEASE);
    __atomic_store_n(&c->loaded, 1, __ATOMIC_RELEASE);
    c->wake(c);
}

void fy_cluster_local_durable(fy_cluster_t *c, uint64_t wal_seq)
{
    uint64_t cur = atomic_load(&c->wal_durable);
    while (wal_seq > cur && !atomic_compare_exchange_weak(&c->wal_durable, &cur, wal_seq))
        ;
    c->wake(c);
}

void fy_cluster_stop(fy_cluster_t *c)
{
    if (!c->running)
        return;
    atomic_store(&c->stop, 1);
    c->wake(c);
    pthread_join(c->thread, NULL);
    c->running = 0;
    for (int li = 0; li < FY_CL_MAX_LINKS; li++)
        if (c->links[li].used) {
            drv_release(c, li);
            fy_cl_link_closed(c, li, "stopping");
        }
    if (c->listen_fd >= 0)
        close(c->listen_fd);
}

void fy_cluster_destroy(fy_cluster_t *c)
{
    if (c == NULL)
        return;
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    for (size_t i = 0; i < c->bl_n; i++)
        free(c->backlog[(c->bl_head + i) % c->bl_cap].frame);
    free(c->backlog);
    free(c->holds);
    fy_wbuf_free(&c->deferred);
    fy_push_arena_free(&c->arena);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
