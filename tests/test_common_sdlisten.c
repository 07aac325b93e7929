/*
 * test_common_sdlisten.c: systemd socket activation (src/common/sdlisten.c): LISTEN_PID/LISTEN_FDS as sd_listen_fds(3)
 * reads them, and the checks on the passed descriptors (a listening TCP socket, a file, a datagram socket, a socket
 * that does not listen). The end-to-end run under systemd-socket-activate is in tests/integration/test_operations.py.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "../src/common/sdlisten.c"

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *pid, *fds;
        int rc;
        const char *err; /* a substring of the reason */
        const char *note;
    } cases[] = {
        {"100", "1", 1, "", "one socket for us"},
        {"100", "3", 3, "", "three sockets"},
        {"100", "16", 16, "", "the most we take"},
        {NULL, NULL, 0, "LISTEN_FDS is not set", "not activated"},
        {"100", NULL, 0, "LISTEN_FDS is not set", "a PID alone"},
        {NULL, "1", 0, "LISTEN_PID is not", "descriptors without a PID are not known to be ours"},
        {"101", "1", 0, "LISTEN_PID=101 is another process (this is 100)", "inherited from a parent"},
        {"100", "0", 0, "LISTEN_FDS=0", "no sockets"},
        {"100", "17", -1, "LISTEN_FDS=17: at most 16", "too many"},
        {"100", "x", -1, "LISTEN_FDS=x is not a number", "garbage count"},
        {"100", "-1", -1, "LISTEN_FDS=-1 is not a number", "negative count"},
        {"100", "1 ", -1, "LISTEN_FDS=1  is not a number", "trailing space"},
        {"abc", "1", -1, "LISTEN_PID=abc is not a process id", "garbage PID"},
        {"0", "1", -1, "LISTEN_PID=0 is not a process id", "PID 0"},
        {"", "1", -1, "LISTEN_PID= is not a process id", "empty PID"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc = fy_sd_parse(cases[i].pid, cases[i].fds, 100, err, sizeof(err));
        if (rc != cases[i].rc || strstr(err, cases[i].err) == NULL)
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].note, rc, err, cases[i].rc, cases[i].err);
    }
}

/* Puts fd at descriptor 3 (FY_SD_LISTEN_FDS_START) with LISTEN_PID set to us, and returns fy_sd_listeners' answer. */
static int activate(int fd, char *err, size_t cap)
{
    char pid[32];
    if (fd != FY_SD_LISTEN_FDS_START) {
        assert_int_equal(dup2(fd, FY_SD_LISTEN_FDS_START), FY_SD_LISTEN_FDS_START);
        close(fd);
    }
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "web", 1);
    int fds[4] = {-1, -1, -1, -1};
    int n = fy_sd_listeners(fds, 4, err, cap);
    assert_null(getenv("LISTEN_PID")); /* unset, so that no child process takes the sockets */
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    if (n == 1)
        assert_int_equal(fds[0], FY_SD_LISTEN_FDS_START);
    return n;
}

static int tcp_socket(int type, int do_listen)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static void test_descriptors(void **state)
{
    (void)state;
    char err[256];
    /* descriptor 3 may be in use by the test runner: keep whatever is there and put it back */
    int saved = dup(FY_SD_LISTEN_FDS_START);

    assert_int_equal(activate(tcp_socket(SOCK_STREAM, 1), err, sizeof(err)), 1);
    assert_true(fcntl(FY_SD_LISTEN_FDS_START, F_GETFD) & FD_CLOEXEC);

    static const struct {
        int kind; /* 0 a file, 1 a datagram socket, 2 a stream socket that does not listen */
        const char *err;
        const char *note;
    } bad[] = {
        {0, "activated descriptor 3 (of LISTEN_FDS=1) is not a socket", "a file"},
        {1, "is not a stream socket", "ListenDatagram="},
        {2, "is not listening (Accept=yes is not supported)", "a connection socket, as Accept=yes passes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = bad[i].kind == 0 ? open("/dev/null", O_RDONLY) : tcp_socket(bad[i].kind == 1 ? SOCK_DGRAM : SOCK_STREAM, 0);
        err[0] = '\0';
        if (activate(fd, err, sizeof(err)) != -1 || strstr(err, bad[i].err) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].note, err, bad[i].err);
    }
    close(FY_SD_LISTEN_FDS_START);
    unsetenv("LISTEN_PID");
    err[0] = '\0';
    int fds[1];
    assert_int_equal(fy_sd_listeners(fds, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no socket activation file descriptors found (LISTEN_FDS is not set"));
    if (saved >= 0) {
        dup2(saved, FY_SD_LISTEN_FDS_START);
        close(saved);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
