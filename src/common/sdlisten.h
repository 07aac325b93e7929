/*
 * sdlisten.h: systemd socket activation (--web.systemd-socket), the protocol of sd_listen_fds(3) implemented
 * directly: systemd (or systemd-socket-activate, or any supervisor that speaks it) opens the listening sockets,
 * passes them as descriptors 3, 4, ... and sets LISTEN_PID to the process they are for and LISTEN_FDS to their
 * count. Ferry does not link libsystemd for these few lines (nor would a package need it installed).
 */
#ifndef FY_SDLISTEN_H
#define FY_SDLISTEN_H

#include <stddef.h>

#define FY_SD_LISTEN_FDS_START 3
#define FY_SD_MAX_FDS 16

/* The variables' values (NULL when unset) for process self: n >= 1 descriptors from FY_SD_LISTEN_FDS_START, or 0
 * when none are for this process (err says why: unset, or another process's LISTEN_PID, as after an exec that
 * kept the environment), or -1 when a value is malformed (err names it). */
int fy_sd_parse(const char *listen_pid, const char *listen_fds, long self, char *err, size_t errcap);

/* The activated listeners: reads LISTEN_PID and LISTEN_FDS, unsets them (and LISTEN_FDNAMES) so that no child
 * takes the descriptors for its own, checks that each one is a listening stream socket, and marks it close-on-exec.
 * Returns their count (>= 1) with the descriptors in fds[0..n), or -1 with err: no descriptors is an error, since
 * --web.systemd-socket asked for them. */
int fy_sd_listeners(int *fds, size_t cap, char *err, size_t errcap);

#endif
