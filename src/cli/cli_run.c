/*
 * cli_run.c: `ferry run -- CMD ARGS...`: run a batch job, forward SIGTERM/SIGINT/SIGHUP/SIGQUIT to it, and push how
 * it ended whatever happened, plus the metrics it wrote to $FERRY_METRICS_FILE. The job's exit status is ours; a
 * failed push is only reported on stderr.
 *
 * PUT after a success, POST after a failure. The PUT replaces the whole group, so families a previous run wrote and
 * this one did not are gone; the POST replaces only the families it carries, so the last success time of an earlier
 * run survives a failure, which is what `time() - job_last_success_timestamp_seconds > X` alerts rely on.
 */
#define _GNU_SOURCE /* pipe2 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOB_METRICS (64u << 20)

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof(FORWARDED) / sizeof(FORWARDED[0]))

static volatile sig_atomic_t child_pid;

/* A terminal's ^C reaches the whole foreground process group, the child included: forwarding it again would make
 * the job see two. Signals sent by a process (kill, systemd, the kubelet) reach only us, so those are forwarded. */
static void forward(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    if (child_pid > 0 && info->si_code != SI_KERNEL)
        kill((pid_t)child_pid, sig);
}

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Creates the empty metrics file in $TMPDIR (or /tmp). Returns 0 with its path in out, else -1. */
static int make_metrics_file(char *out, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/ferry-run-XXXXXX", dir) >= cap)
        return -1;
    int fd = mkstemp(out);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* The job's metrics file, NUL-terminated and ending in a newline when non-empty. *buf stays NULL when empty. */
static int read_metrics_file(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1; /* the job may have removed it */
    char *b;
    size_t n;
    int rc = fy_cli_slurp(f, MAX_JOB_METRICS, &b, &n), e = errno;
    fclose(f);
    errno = e;
    if (rc != 0)
        return -1;
    if (n == 0) {
        free(b);
        return 0;
    }
    if (b[n - 1] != '\n')
        b[n++] = '\n'; /* fy_cli_slurp leaves two bytes of room */
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* Starts cmd with the forwarded signals back at their defaults. Returns the pid, or -1 with *exec_errno set when
 * fork or exec failed (known through a close-on-exec pipe the child writes its errno to). */
static pid_t start(char **cmd, const char *metrics_path, const sigset_t *oldmask, int *exec_errno)
{
    int pfd[2];
    *exec_errno = 0;
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        *exec_errno = errno;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        for (size_t i = 0; i < NFORWARDED; i++)
            signal(FORWARDED[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        if (metrics_path != NULL)
            setenv(FY_RUN_METRICS_ENV, metrics_path, 1);
        else
            unsetenv(FY_RUN_METRICS_ENV);
        execvp(cmd[0], cmd);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    child_pid = pid;
    close(pfd[1]);
    int e;
    ssize_t r;
    while ((r = read(pfd[0], &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r == (ssize_t)sizeof(e))
        *exec_errno = e;
    return pid;
}

static int wait_child(pid_t pid, int *sig)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            *sig = 0;
            return 127;
        }
    }
    *sig = 0;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return 128 + *sig;
    }
    return WEXITSTATUS(status);
}

int fy_cli_run_main(int argc, char **argv)
{
    static fy_cli_run_opts_t o;
    char err[FY_CLI_ERR_MAX], metrics_path[4096];
    char *url = NULL, *extra = NULL, *body = NULL;
    size_t extra_len = 0;
    int have_file = 0;

    if (fy_cli_run_parse(&o, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry run: %s (see ferry run --help)\n", err);
        return FY_RUN_USAGE;
    }
    if (o.help) {
        fy_cli_run_usage(stdout);
        return 0;
    }
    size_t ulen = fy_cli_url(&o.t, NULL, 0);
    if ((url = malloc(ulen + 1)) == NULL) {
        fprintf(stderr, "ferry run: out of memory\n");
        return FY_RUN_USAGE;
    }
    fy_cli_url(&o.t, url, ulen + 1);
    if (make_metrics_file(metrics_path, sizeof(metrics_path)) == 0)
        have_file = 1;
    else
        fprintf(stderr, "ferry run: cannot create the metrics file (%s), $" FY_RUN_METRICS_ENV " is not set\n", strerror(errno));

    /* Signals stay blocked from before fork until child_pid is known, so none is lost or sent to pid 0. */
    sigset_t block, oldmask;
    sigemptyset(&block);
    for (size_t i = 0; i < NFORWARDED; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = forward;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(FORWARDED[i], &sa, NULL);
        sigaddset(&block, FORWARDED[i]);
    }
    sigprocmask(SIG_BLOCK, &block, &oldmask);

    fy_cli_outcome_t out = {.start = now_real()};
    double t0 = now_mono();
    int exec_errno;
    pid_t pid = start(o.cmd, have_file ? metrics_path : NULL, &oldmask, &exec_errno);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    if (pid > 0)
        out.exit_code = wait_child(pid, &out.signal);
    child_pid = 0;
    if (exec_errno != 0) {
        fprintf(stderr, "ferry run: cannot run %s: %s\n", o.cmd[0], strerror(exec_errno));
        out.exit_code = exec_errno == ENOENT || exec_errno == ENOTDIR ? 127 : 126;
        out.signal = 0;
    }
    out.end = out.start + (now_mono() - t0);

    if (have_file && read_metrics_file(metrics_path, &extra, &extra_len) != 0)
        fprintf(stderr, "ferry run: cannot read $" FY_RUN_METRICS_ENV " (%s): %s; pushing the outcome alone\n", metrics_path,
                strerror(errno));

    char outcome[2048];
    size_t olen = fy_cli_outcome_render(&out, outcome, sizeof(outcome));
    if (olen >= sizeof(outcome)) {
        fprintf(stderr, "ferry run: internal error: outcome too long\n");
        goto Exit;
    }
    fy_cli_method_t method = out.exit_code == 0 ? FY_CLI_PUT : FY_CLI_POST;
    int code;
    long status;
    if (extra != NULL && (body = malloc(extra_len + olen)) != NULL) {
        memcpy(body, extra, extra_len);
        memcpy(body + extra_len, outcome, olen);
        code = fy_cli_send(&o.t, method, url, body, extra_len + olen, "ferry run", &status);
        /* A 400 is about the body (parse error, inconsistency), and only the job's part can be at fault; its own
         * metrics must not cost the job its outcome. Other 4xx (auth, route) would fail the same way again. */
        if (code == FY_CLI_REJECTED && status == 400) {
            fprintf(stderr, "ferry run: the gateway refused the metrics from $" FY_RUN_METRICS_ENV "; pushing the outcome alone\n");
            code = fy_cli_send(&o.t, method, url, outcome, olen, "ferry run", &status);
        }
    } else {
        code = fy_cli_send(&o.t, method, url, outcome, olen, "ferry run", &status);
    }
    if (code != FY_CLI_OK)
        fprintf(stderr, "ferry run: the outcome of %s was not pushed; exit status %d is the command's\n", o.cmd[0], out.exit_code);
Exit:
    if (have_file)
        unlink(metrics_path);
    free(body);
    free(extra);
    free(url);
    return out.exit_code;
}
