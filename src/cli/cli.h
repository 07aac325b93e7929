/*
 * cli.h: the client side of the ferry binary, `ferry push` and `ferry run` (issue #6). The pure parts (argument
 * parsing, grouping-key URLs, the outcome exposition, exit-code policy) live in cli.c and are unit-tested without a
 * network; cli_push.c and cli_run.c are the two entry points; httpclient.c sends with libcurl and retries.
 */
#ifndef FY_CLI_H
#define FY_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes of `ferry push` (docs/cli.md). `ferry run` exits with its command's status instead. */
#define FY_CLI_OK 0
#define FY_CLI_USAGE 1       /* bad arguments, unreadable file or password file */
#define FY_CLI_REJECTED 2    /* the gateway answered 4xx; its message is printed */
#define FY_CLI_UNREACHABLE 3 /* no answer, or 5xx, on every attempt */

/* `ferry run`'s own failures before the command runs, as GNU timeout and env do: 125 is never the command's. */
#define FY_RUN_USAGE 125

#define FY_CLI_MAX_LABELS 64

/* A grouping label: name points at the argument or environment string (not NUL-terminated), value at its rest.
 * from_env: it came from FERRY_LABEL_<name>, so a --label of the same name replaces it rather than being an error. */
typedef struct st_fy_cli_label_t {
    const char *name;
    size_t name_len;
    const char *value;
    int from_env;
} fy_cli_label_t;

/* Where and how to push: the options `ferry push` and `ferry run` share. */
typedef struct st_fy_cli_target_t {
    const char *gateway; /* base URL, may carry user:password@ and a route prefix */
    const char *job;
    fy_cli_label_t labels[FY_CLI_MAX_LABELS];
    size_t nlabels;
    const char *username;
    const char *password;      /* from $FERRY_PASSWORD only: a flag would show it in ps */
    const char *password_file; /* wins over password */
    const char *ca_file;
    const char *cert_file; /* client certificate (PEM), for gateways that require one */
    const char *key_file;  /* its key, when not in cert_file */
    int insecure;
    long timeout_ms; /* per attempt */
    unsigned retries;
    char interval[32];  /* X-Ferry-Interval value ("90s"), empty when not given */
    char ttl[32];       /* X-Ferry-TTL value */
    char hostname[256]; /* storage for --instance-hostname */
} fy_cli_target_t;

typedef enum en_fy_cli_method_t { FY_CLI_PUT, FY_CLI_POST, FY_CLI_DELETE } fy_cli_method_t;

typedef struct st_fy_cli_push_opts_t {
    fy_cli_target_t t;
    fy_cli_method_t method;
    const char *file; /* "-" is stdin */
    int help;
} fy_cli_push_opts_t;

typedef struct st_fy_cli_run_opts_t {
    fy_cli_target_t t;
    char **cmd;               /* NULL-terminated tail of argv */
    long job_timeout_ms;      /* --timeout: 0 = none */
    long kill_after_ms;       /* --kill-after: SIGTERM to SIGKILL after a timeout */
    const char *lock_file;    /* --lock */
    unsigned stderr_lines;    /* --stderr-lines: 0 = stderr is not captured */
    const char *textfile_dir; /* --textfile-dir */
    int help;
} fy_cli_run_opts_t;

/* Exit statuses of `ferry run` that are its own, not the command's. */
#define FY_RUN_TIMED_OUT 124 /* as timeout(1) */
#define FY_RUN_SKIPPED 75    /* EX_TEMPFAIL: another run holds the --lock */

/* Longest message the parsers write. */
#define FY_CLI_ERR_MAX 256

/**
 * Parse `ferry push` arguments (argv[0] is "push"), after the FERRY_* variables of env (a NULL-terminated
 * "NAME=value" array like environ; NULL for none), which flags override. Returns 0, or -1 with a one-line message
 * in err. o->help set means: print fy_cli_push_usage and exit 0 (nothing else is checked then).
 */
int fy_cli_push_parse(fy_cli_push_opts_t *o, int argc, char **argv, char *const *env, char *err, size_t errcap);
/** Same for `ferry run` (argv[0] is "run"): options, then `--` or the first non-option, then the command. */
int fy_cli_run_parse(fy_cli_run_opts_t *o, int argc, char **argv, char *const *env, char *err, size_t errcap);

void fy_cli_push_usage(FILE *out);
void fy_cli_run_usage(FILE *out);

/**
 * The push URL: gateway without trailing slashes, then /metrics/job/<job>{/<name>/<value>}. A job or value that is
 * empty, "." or "..", or has a byte outside [A-Za-z0-9._~-], is written as name@base64/<RawURLEncoding>, "=" when
 * empty (what the Pushgateway and its Go client expect). Writes at most cap bytes with a NUL; returns the length
 * the whole URL needs (like snprintf), so a result >= cap means it was cut.
 */
size_t fy_cli_url(const fy_cli_target_t *t, char *out, size_t cap);

/** The URL for messages: a password in its user info is replaced by "xxxxx". Cut to cap like snprintf. */
void fy_cli_redact(const char *url, char *out, size_t cap);

/** base64.RawURLEncoding: no padding. out needs (len * 4 + 2) / 3 bytes; returns the count written. */
size_t fy_cli_b64url(const char *in, size_t len, char *out);

/** Retry policy: should an attempt that got this HTTP status (0 = no response) be tried again? */
int fy_cli_retryable(long status);
/** Exit code for the final attempt's status (0 = no response). */
int fy_cli_exit_code(long status);
/** Wait before retry number n (1-based): 250 ms doubling, at most 8 s. */
long fy_cli_backoff_ms(unsigned n);

/** Parses "10s", "500ms", "2m", "1.5" (seconds). Returns milliseconds, or -1. */
long fy_cli_parse_duration(const char *s);
/** Same, with "h" too and up to 366 days: the job's --timeout, --interval, --ttl. Returns milliseconds, or -1. */
long fy_cli_parse_span(const char *s);

/* How a `ferry run` command ended. */
typedef struct st_fy_cli_outcome_t {
    double start;            /* Unix seconds */
    double end;              /* Unix seconds */
    int exit_code;           /* the status ferry run exits with: code, 128+signal, 126/127 when not started, 124 */
    int signal;              /* the signal that killed it, else 0 */
    int timed_out;           /* --timeout ran out and the job was stopped */
    const char *stderr_tail; /* last lines of its stderr, pushed after a failure; NULL when not captured */
} fy_cli_outcome_t;

/**
 * The outcome in text format 0.0.4: job_running 0, start time, duration, exit code, killing signal, timed out, on
 * success (exit_code 0) the last-success time, and after a failure the stderr tail as job_stderr_tail_info. labels
 * ("{job=\"x\"}", or NULL for none) is written on every series: the textfile has no grouping key. Returns the length
 * needed, like snprintf.
 */
size_t fy_cli_outcome_render(const fy_cli_outcome_t *o, const char *labels, char *out, size_t cap);
/** The start push: job_running 1 and job_start_time_seconds. */
size_t fy_cli_start_render(double start, char *out, size_t cap);
/** A run skipped because of --lock: job_last_skipped_timestamp_seconds. */
size_t fy_cli_skip_render(double now, char *out, size_t cap);
/** The grouping key as a label set, {job="...",name="..."}, escaped for the text format. Like snprintf. */
size_t fy_cli_labels_render(const fy_cli_target_t *t, char *out, size_t cap);
/** The --textfile-dir file name for the key: ferry_run_<job, [A-Za-z0-9_-] kept>_<16 hex of a hash of the key>.prom */
void fy_cli_textfile_name(const fy_cli_target_t *t, char *out, size_t cap);
/**
 * The last `lines` lines of a job's stderr (buf holds its end), at most max bytes, made safe for a label value:
 * invalid UTF-8 and control characters other than tab and newline become '?', a trailing newline is dropped, a
 * line cut at the front starts with "...". Returns the length written (out has max + 4 bytes of room).
 */
size_t fy_cli_stderr_tail(const char *buf, size_t len, unsigned lines, size_t max, char *out);

/* The environment variable naming the file a `ferry run` command may write extra metrics to. */
#define FY_RUN_METRICS_ENV "FERRY_METRICS_FILE"

/* Reads all of f into a malloc'ed buffer with two spare bytes after *len (for a newline and a NUL). Returns 0, or
 * -1 with errno (EFBIG past max bytes). */
int fy_cli_slurp(FILE *f, size_t max, char **out, size_t *len);

/* Entry points, called by main() with argv[0] = "push" or "run". */
int fy_cli_push_main(int argc, char **argv);
int fy_cli_run_main(int argc, char **argv);

/**
 * Sends one request with the target's auth, TLS and timeout, retrying with fy_cli_backoff_ms on no response and
 * 5xx. Messages go to stderr prefixed with who ("ferry push"). Returns an FY_CLI_* exit code; *status gets the last
 * attempt's HTTP status (0 when there was no answer).
 */
int fy_cli_send(const fy_cli_target_t *t, fy_cli_method_t method, const char *url, const char *body, size_t len, const char *who,
                long *status);

/** Writes body to dir/name through a temporary file and rename(2), so a reader sees the old file or the new one. */
int fy_cli_write_atomic(const char *dir, const char *name, const char *body, size_t len);

#endif
