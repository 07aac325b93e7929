/*
 * sdlisten.c: systemd socket activation (sdlisten.h): parse LISTEN_PID/LISTEN_FDS, check the passed descriptors.
 */
#include "sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A decimal integer with nothing around it, 0 .. max: 0 with *v, else -1. */
static int parse_num(const char *s, long max, long *v)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || x > max)
        return -1;
    *v = x;
    return 0;
}

int fy_sd_parse(const char *listen_pid, const char *listen_fds, long self, char *err, size_t errcap)
{
    long pid, n;
    if (listen_fds == NULL) {
        snprintf(err, errcap, "LISTEN_FDS is not set: start ferry from a systemd .socket unit (or systemd-socket-activate)");
        return 0;
    }
    if (listen_pid == NULL) {
        snprintf(err, errcap, "LISTEN_FDS is set but LISTEN_PID is not, so the descriptors are not known to be for this process");
        return 0;
    }
    if (parse_num(listen_pid, 0x7fffffff, &pid) != 0 || pid == 0) {
        snprintf(err, errcap, "LISTEN_PID=%.32s is not a process id", listen_pid);
        return -1;
    }
    if (pid != self) {
        snprintf(err, errcap, "LISTEN_PID=%ld is another process (this is %ld): the descriptors are not for ferry", pid, self);
        return 0;
    }
    if (parse_num(listen_fds, 1 << 20, &n) != 0) {
        snprintf(err, errcap, "LISTEN_FDS=%.32s is not a number of descriptors", listen_fds);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errcap, "LISTEN_FDS=0: the socket unit passed no descriptors");
        return 0;
    }
    if (n > FY_SD_MAX_FDS) {
        snprintf(err, errcap, "LISTEN_FDS=%ld: at most %d activated sockets are supported", n, FY_SD_MAX_FDS);
        return -1;
    }
    return (int)n;
}

int fy_sd_listeners(int *fds, size_t cap, char *err, size_t errcap)
{
    char why[256];
    int n = fy_sd_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), (long)getpid(), why, sizeof(why));
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n <= 0) {
        snprintf(err, errcap, "no socket activation file descriptors found (%s)", why);
        return -1;
    }
    if ((size_t)n > cap) {
        snprintf(err, errcap, "LISTEN_FDS=%d: at most %zu activated sockets are supported", n, cap);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = FY_SD_LISTEN_FDS_START + i, type = 0, listening = 0;
        socklen_t len = sizeof(type);
        struct stat st;
        if (fstat(fd, &st) != 0) {
            snprintf(err, errcap, "activated descriptor %d (of LISTEN_FDS=%d): %s", fd, n, strerror(errno));
            return -1;
        }
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errcap, "activated descriptor %d (of LISTEN_FDS=%d) is not a socket", fd, n);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
            snprintf(err, errcap,
                     "activated descriptor %d (of LISTEN_FDS=%d) is not a stream socket (ListenDatagram= and "
                     "ListenSequentialPacket= cannot carry HTTP)",
                     fd, n);
            return -1;
        }
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
            snprintf(err, errcap, "activated descriptor %d (of LISTEN_FDS=%d) is not listening (Accept=yes is not supported)", fd,
                     n);
            return -1;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fds[i] = fd;
    }
    return n;
}
