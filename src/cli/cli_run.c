/*
 * cli_run.c: `ferry run -- CMD ARGS...`: run a batch job and push that it started and how it ended, whatever
 * happened, plus the metrics it wrote to $FERRY_METRICS_FILE. The job's exit status is ours; a failed push is only
 * reported on stderr (and, with --textfile-dir, written for the node exporter).
 *
 * The start push is a POST of job_running 1 and the start time only, so a hung job is visible while it hangs and
 * the previous run's results (its last success above all) stay. The end push is a PUT after a success and a POST
 * after a failure. The PUT replaces the whole group, so families a previous run wrote and this one did not are gone;
 * the POST replaces only the families it carries, so the last success time of an earlier run survives a failure,
 * which is what `time() - job_last_success_timestamp_seconds > X` alerts rely on.
 *
 * The command runs in its own process group, so --timeout and forwarded signals reach whatever it started too;
 * --timeout sends SIGTERM to the group, then SIGKILL after --kill-after, and ferry run exits 124 as timeout(1).
 */
#define _GNU_SOURCE /* pipe2 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_JOB_METRICS (64u << 20)
#define TAIL_KEEP 8192      /* bytes of the job's stderr kept for the tail */
#define TAIL_MAX_BYTES 1024 /* longest job_stderr_tail_info value */

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof(FORWARDED) / sizeof(FORWARDED[0]))

static volatile sig_atomic_t child_pgid;
static volatile sig_atomic_t stop_signal; /* the last stop signal we got: the job's whole group must end */
static int chld_pipe[2] = {-1, -1};

/* The command has its own process group, so nothing reaches it but what we send: a terminal's ^C included. Before
 * it starts, the signal is only recorded, and the command is then not started at all. */
static void forward(int sig)
{
    stop_signal = sig;
    if (child_pgid > 0)
        kill(-(pid_t)child_pgid, sig);
}

/* Wakes the poll in supervise(): the self-pipe closes the race between waitpid and poll. */
static void on_chld(int sig)
{
    (void)sig;
    int e = errno;
    ssize_t w = write(chld_pipe[1], "", 1);
    (void)w;
    errno = e;
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

/* Starts cmd in its own process group with our signal dispositions undone, its stderr to err_fd when >= 0. Returns
 * the pid, or -1 with *exec_errno set when fork or exec failed (known through a close-on-exec pipe the child writes
 * its errno to). */
static pid_t start(char **cmd, const char *metrics_path, const sigset_t *oldmask, int err_fd, int *exec_errno)
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
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL); /* an ignored signal stays ignored across exec */
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        setpgid(0, 0);
        if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
            _exit(126);
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
    setpgid(pid, pid); /* also here, so the group exists before any signal is forwarded to it */
    child_pgid = pid;
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

typedef struct {
    char buf[TAIL_KEEP];
    size_t len;
} tail_t;

static void tail_add(tail_t *t, const char *p, size_t n)
{
    if (n > sizeof(t->buf)) { /* not with pump_stderr's reads, which are smaller */
        p += n - sizeof(t->buf);
        n = sizeof(t->buf);
    }
    if (t->len + n > sizeof(t->buf)) {
        size_t drop = t->len + n - sizeof(t->buf);
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

/* Copies what the job wrote to stderr through to ours and keeps its end. Returns 0 at EOF, else 1. */
static int pump_stderr(int fd, tail_t *t)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 1 : 0;
    tail_add(t, chunk, (size_t)n);
    for (ssize_t off = 0, w; off < n; off += w)
        if ((w = write(STDERR_FILENO, chunk + off, (size_t)(n - off))) <= 0)
            break; /* our stderr is gone: the tail is still kept */
    return 1;
}

static long ms_until(double deadline)
{
    double left = (deadline - now_mono()) * 1000;
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (long)left + 1;
}

typedef struct {
    pid_t pid;
    int err_fd;      /* read end of the job's stderr, -1 when not captured */
    long timeout_ms; /* 0: none */
    long kill_after_ms;
    const char *cmd;
    tail_t *tail;
} job_t;

/*
 * Waits for the job, copying its stderr, and enforces --timeout: SIGTERM to its process group, SIGKILL after
 * --kill-after. Returns the wait status; *timed_out says whether the limit ran out.
 */
static int supervise(const job_t *j, double t0, int *timed_out)
{
    double deadline = j->timeout_ms > 0 ? t0 + j->timeout_ms / 1000.0 : 0;
    int stage = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int status = 0, err_open = j->err_fd >= 0;

    *timed_out = 0;
    for (;;) {
        pid_t r = waitpid(j->pid, &status, WNOHANG);
        if (r == j->pid)
            break;
        if (r < 0 && errno != EINTR) {
            status = 127 << 8; /* cannot happen with our own child; never report a success we did not see */
            break;
        }
        long wait = -1;
        if (deadline > 0 && stage < 2) {
            wait = ms_until(deadline);
            if (wait == 0) {
                if (stage == 0) {
                    fprintf(stderr, "ferry run: %s ran past --timeout=%ldms; sending SIGTERM to its process group\n", j->cmd,
                            j->timeout_ms);
                    *timed_out = 1;
                    kill(-j->pid, SIGTERM);
                    kill(-j->pid, SIGCONT); /* a stopped job would never see the SIGTERM */
                    deadline = now_mono() + j->kill_after_ms / 1000.0;
                    stage = 1;
                } else {
                    fprintf(stderr, "ferry run: %s still running %ldms after SIGTERM; sending SIGKILL\n", j->cmd, j->kill_after_ms);
                    kill(-j->pid, SIGKILL);
                    stage = 2;
                }
                continue;
            }
        }
        struct pollfd fds[2] = {{.fd = chld_pipe[0], .events = POLLIN}, {.fd = j->err_fd, .events = POLLIN}};
        int n = poll(fds, err_open ? 2 : 1, (int)wait);
        if (n <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            char drain[64];
            while (read(chld_pipe[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            err_open = pump_stderr(j->err_fd, j->tail);
    }
    /* What the job wrote just before it ended; bounded, as a child it left behind may write on. */
    for (int k = 0; err_open && k < 64; k++)
        err_open = pump_stderr(j->err_fd, j->tail);

    if (*timed_out || stop_signal != 0) {
        /* The job was told to stop and its leader is gone; others in its group (a grandchild that ignores SIGTERM)
         * get the rest of the grace, then SIGKILL: none may outlive us. A job that ends by itself keeps its
         * background children, which may be daemons started on purpose. */
        double until = *timed_out ? (stage == 1 ? deadline : now_mono()) : now_mono() + j->kill_after_ms / 1000.0;
        while (kill(-j->pid, 0) == 0 && now_mono() < until) {
            while (waitpid(-j->pid, NULL, WNOHANG) > 0) /* ours, if we are PID 1 and they were orphaned to us */
                ;
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        kill(-j->pid, SIGKILL);
        while (waitpid(-j->pid, NULL, WNOHANG) > 0)
            ;
    }
    return status;
}

static int exit_status(int status, int *sig)
{
    *sig = 0;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return 128 + *sig;
    }
    return WEXITSTATUS(status);
}

int fy_cli_write_atomic(const char *dir, const char *name, const char *body, size_t len)
{
    char tmp[4096], dst[4096];
    /* A dot and no .prom suffix: the textfile collector reads only *.prom, so it never sees a half-written file. */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid()) >= sizeof(tmp) ||
        (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, body + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto Error;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto Error;
    if (close(fd) != 0) {
        fd = -1;
        goto Error;
    }
    fd = -1;
    if (rename(tmp, dst) != 0)
        goto Error;
    return 0;
Error : {
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}
}

/* --lock: 1 when we hold it, 0 when another run does, -1 on error. The descriptor is inherited by the command, as
 * with flock(1): the lock lasts as long as the job, even if ferry run itself is killed. */
static int take_lock(const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT, 0644);
    if (*fd < 0)
        return -1;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 1;
    int e = errno;
    close(*fd);
    *fd = -1;
    errno = e;
    return e == EWOULDBLOCK ? 0 : -1;
}

/* The end push: the job's metrics and the outcome together, or the outcome alone when the gateway refuses the job's
 * part. Returns an FY_CLI_* code. */
static int push_outcome(const fy_cli_target_t *t, fy_cli_method_t method, const char *url, const char *extra, size_t extra_len,
                        const char *outcome, size_t olen)
{
    long status;
    int code;
    char *body;
    if (extra != NULL && (body = malloc(extra_len + olen)) != NULL) {
        memcpy(body, extra, extra_len);
        memcpy(body + extra_len, outcome, olen);
        code = fy_cli_send(t, method, url, body, extra_len + olen, "ferry run", &status);
        free(body);
        /* A 400 is about the body (parse error, inconsistency), and only the job's part can be at fault; its own
         * metrics must not cost the job its outcome. Other 4xx (auth, route) would fail the same way again. */
        if (code == FY_CLI_REJECTED && status == 400) {
            fprintf(stderr, "ferry run: the gateway refused the metrics from $" FY_RUN_METRICS_ENV "; pushing the outcome alone\n");
            code = fy_cli_send(t, method, url, outcome, olen, "ferry run", &status);
        }
        return code;
    }
    return fy_cli_send(t, method, url, outcome, olen, "ferry run", &status);
}

/* --textfile-dir: the outcome for the node exporter when it could not be pushed; removed once a push succeeds, so
 * the collector never shows an outcome older than the gateway's. */
static void textfile(const fy_cli_run_opts_t *o, const fy_cli_outcome_t *out, int pushed)
{
    char name[256], labels[8192];
    fy_cli_textfile_name(&o->t, name, sizeof(name));
    if (pushed) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", o->textfile_dir, name) < sizeof(path) && unlink(path) != 0 &&
            errno != ENOENT)
            fprintf(stderr, "ferry run: cannot remove the stale %s: %s\n", path, strerror(errno));
        return;
    }
    if (fy_cli_labels_render(&o->t, labels, sizeof(labels)) >= sizeof(labels)) {
        fprintf(stderr, "ferry run: the grouping key is too long for --textfile-dir\n");
        return;
    }
    size_t len = fy_cli_outcome_render(out, labels, NULL, 0);
    char *body = malloc(len + 1);
    if (body == NULL)
        return;
    fy_cli_outcome_render(out, labels, body, len + 1);
    if (fy_cli_write_atomic(o->textfile_dir, name, body, len) != 0)
        fprintf(stderr, "ferry run: cannot write %s/%s: %s\n", o->textfile_dir, name, strerror(errno));
    else
        fprintf(stderr, "ferry run: the outcome is in %s/%s for the textfile collector\n", o->textfile_dir, name);
    free(body);
}

int fy_cli_run_main(int argc, char **argv)
{
    static fy_cli_run_opts_t o;
    static tail_t tail;
    char err[FY_CLI_ERR_MAX], metrics_path[4096], tailtext[TAIL_MAX_BYTES + 4];
    char *url = NULL, *extra = NULL;
    size_t extra_len = 0;
    int have_file = 0, lock_fd = -1, errp[2] = {-1, -1};

    if (fy_cli_run_parse(&o, argc, argv, environ, err, sizeof(err)) != 0) {
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
    signal(SIGPIPE, SIG_IGN); /* a closed stderr must not kill us before the outcome is pushed */
    if (pipe2(chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "ferry run: cannot create a pipe: %s\n", strerror(errno));
        free(url);
        return FY_RUN_USAGE;
    }
    /* From here on a stop signal never kills us: before the command starts it cancels it, while it runs it is
     * forwarded, and once it has ended the outcome is still pushed. */
    sigset_t block, oldmask;
    sigemptyset(&block);
    for (size_t i = 0; i <= NFORWARDED; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        int sig = i < NFORWARDED ? FORWARDED[i] : SIGCHLD;
        sa.sa_handler = i < NFORWARDED ? forward : on_chld;
        sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, NULL);
        sigaddset(&block, sig);
    }

    if (o.lock_file != NULL) {
        int held = take_lock(o.lock_file, &lock_fd);
        if (held < 0) {
            fprintf(stderr, "ferry run: cannot lock --lock=%s: %s\n", o.lock_file, strerror(errno));
            free(url);
            return FY_RUN_USAGE;
        }
        if (held == 0) {
            char body[512];
            size_t n = fy_cli_skip_render(now_real(), body, sizeof(body));
            long status;
            fprintf(stderr, "ferry run: %s not started: an earlier run still holds --lock=%s\n", o.cmd[0], o.lock_file);
            if (fy_cli_send(&o.t, FY_CLI_POST, url, body, n, "ferry run", &status) != FY_CLI_OK)
                fprintf(stderr, "ferry run: the skipped run was not pushed\n");
            free(url);
            return FY_RUN_SKIPPED;
        }
    }

    fy_cli_outcome_t out = {.start = now_real()};
    {
        /* One attempt only: a gateway that is down must not hold the job back by the whole retry schedule. */
        fy_cli_target_t once = o.t;
        char body[512];
        size_t n = fy_cli_start_render(out.start, body, sizeof(body));
        long status;
        once.retries = 0;
        if (fy_cli_send(&once, FY_CLI_POST, url, body, n, "ferry run", &status) != FY_CLI_OK)
            fprintf(stderr, "ferry run: the start of %s was not pushed; running it anyway\n", o.cmd[0]);
    }

    if (make_metrics_file(metrics_path, sizeof(metrics_path)) == 0)
        have_file = 1;
    else
        fprintf(stderr, "ferry run: cannot create the metrics file (%s), $" FY_RUN_METRICS_ENV " is not set\n", strerror(errno));
    if (o.stderr_lines > 0 && pipe2(errp, O_CLOEXEC) != 0) {
        fprintf(stderr, "ferry run: cannot capture stderr (%s); no job_stderr_tail_info\n", strerror(errno));
        errp[0] = errp[1] = -1;
    }
    if (errp[0] >= 0)
        fcntl(errp[0], F_SETFL, O_NONBLOCK);

    /* Signals stay blocked from before fork until child_pgid is known, so none is lost or sent to pid 0. */
    sigprocmask(SIG_BLOCK, &block, &oldmask);
    double t0 = now_mono();
    int exec_errno = 0;
    pid_t pid = -1;
    if (stop_signal != 0) { /* SIGTERM while the start was pushed: the job is not to run */
        fprintf(stderr, "ferry run: %s not started: got signal %d before it could start\n", o.cmd[0], (int)stop_signal);
        out.signal = stop_signal;
        out.exit_code = 128 + out.signal;
    } else {
        pid = start(o.cmd, have_file ? metrics_path : NULL, &oldmask, errp[1], &exec_errno);
    }
    if (errp[1] >= 0)
        close(errp[1]), errp[1] = -1; /* the job holds the write end now: EOF once it and its children are done */
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    if (pid > 0) {
        job_t j = {pid, errp[0], o.job_timeout_ms, o.kill_after_ms, o.cmd[0], &tail};
        int status = supervise(&j, t0, &out.timed_out);
        out.exit_code = exit_status(status, &out.signal);
        if (out.timed_out)
            out.exit_code = FY_RUN_TIMED_OUT;
    }
    child_pgid = 0;
    if (exec_errno != 0) {
        /* The reason belongs in the stderr tail too: it is the one line that explains a 127 or 126. */
        char why[512];
        int n = snprintf(why, sizeof(why), "ferry run: cannot run %s: %s\n", o.cmd[0], strerror(exec_errno));
        fputs(why, stderr);
        tail_add(&tail, why, n > 0 && (size_t)n < sizeof(why) ? (size_t)n : strlen(why));
        out.exit_code = exec_errno == ENOENT || exec_errno == ENOTDIR ? 127 : 126;
        out.signal = 0;
    }
    out.end = out.start + (now_mono() - t0);
    if (errp[0] >= 0) {
        fy_cli_stderr_tail(tail.buf, tail.len, o.stderr_lines, TAIL_MAX_BYTES, tailtext);
        out.stderr_tail = tailtext;
    }

    if (have_file && read_metrics_file(metrics_path, &extra, &extra_len) != 0)
        fprintf(stderr, "ferry run: cannot read $" FY_RUN_METRICS_ENV " (%s): %s; pushing the outcome alone\n", metrics_path,
                strerror(errno));

    char outcome[4096];
    size_t olen = fy_cli_outcome_render(&out, NULL, outcome, sizeof(outcome));
    if (olen >= sizeof(outcome)) {
        fprintf(stderr, "ferry run: internal error: outcome too long\n");
        goto Exit;
    }
    fy_cli_method_t method = out.exit_code == 0 ? FY_CLI_PUT : FY_CLI_POST;
    int code = push_outcome(&o.t, method, url, extra, extra_len, outcome, olen);
    if (code != FY_CLI_OK)
        fprintf(stderr, "ferry run: the outcome of %s was not pushed; exit status %d is the command's%s\n", o.cmd[0], out.exit_code,
                out.timed_out ? " (timed out)" : "");
    if (o.textfile_dir != NULL)
        textfile(&o, &out, code == FY_CLI_OK);
Exit:
    if (have_file)
        unlink(metrics_path);
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (lock_fd >= 0)
        close(lock_fd);
    free(extra);
    free(url);
    return out.exit_code;
}
