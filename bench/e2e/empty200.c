/*
 * empty200.c: the calibration server of the end-to-end benchmark. It answers every HTTP/1.1 request with an empty
 * 200 and does nothing else (no routing, no body parsing beyond skipping Content-Length bytes), on one thread with
 * plain epoll, so wrk against it shows the load generator's own ceiling on this machine.
 * Usage: empty200 PORT   (listens on 127.0.0.1:PORT until SIGTERM/SIGINT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFCAP 65536

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

typedef struct {
    int fd;
    size_t len;  /* bytes buffered in buf */
    size_t skip; /* body bytes of the current request still to discard */
    char buf[BUFCAP];
} conn_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Content-Length of the header block [p, p+n), 0 when absent. */
static size_t content_length(const char *p, size_t n)
{
    static const char name[] = "\r\ncontent-length:";
    size_t nl = sizeof(name) - 1;
    for (size_t i = 0; i + nl <= n; i++) {
        if (strncasecmp(p + i, name, nl) == 0) {
            size_t v = 0;
            for (i += nl; i < n && p[i] == ' '; i++)
                ;
            for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
                v = v * 10 + (size_t)(p[i] - '0');
            return v;
        }
    }
    return 0;
}

/* Consumes every complete request in c->buf and answers each; returns -1 when the connection must close. */
static int serve(conn_t *c)
{
    size_t off = 0;
    int answers = 0;
    for (;;) {
        if (c->skip) {
            size_t take = c->len - off < c->skip ? c->len - off : c->skip;
            off += take;
            c->skip -= take;
            if (c->skip)
                break;
        }
        char *end = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t hdr = (size_t)(end - (c->buf + off)) + 4;
        c->skip = content_length(c->buf + off, hdr);
        off += hdr;
        answers++;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (c->len == BUFCAP)
        return -1; /* a header block larger than the buffer: not a client this server is for */
    for (int i = 0; i < answers; i++)
        if (write(c->fd, reply, sizeof(reply) - 1) != (ssize_t)(sizeof(reply) - 1))
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(ls, 1024) != 0) {
        perror("empty200: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);

    struct epoll_event evs[64];
    while (!stopping) {
        int n = epoll_wait(ep, evs, 64, 500);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn_t *nc = calloc(1, sizeof(*nc));
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int dead = 0;
            for (;;) {
                ssize_t r = read(c->fd, c->buf + c->len, BUFCAP - c->len);
                if (r > 0) {
                    c->len += (size_t)r;
                    if (serve(c) != 0) {
                        dead = 1;
                        break;
                    }
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                dead = 1; /* EOF or error */
                break;
            }
            if (dead) {
                close(c->fd); /* also removes it from the epoll set */
                free(c);
            }
        }
    }
    close(ep);
    close(ls);
    return 0;
}
