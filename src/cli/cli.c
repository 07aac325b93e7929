/*
 * cli.c: the pure half of `ferry push` and `ferry run`: argument parsing and the FERRY_* variables (passed in as an
 * array, so tests need not touch the process environment), grouping-key URLs with the Pushgateway's @base64
 * convention, the exit-code and retry policy, the expositions of a run's start, outcome and skip, the stderr tail and
 * the textfile name. No I/O here except the usage texts and gethostname for --instance-hostname, so all of it is
 * unit-tested by table (tests/test_cli.c); tests/integration/test_cli.py runs `ferry push` and `ferry run` end to
 * end.
 */
#include "cli.h"
#include "groupkey.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_RETRIES 3

static int bad_arg(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad_arg(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* A number with an optional unit (s, the default; ms; m; h when hours) in milliseconds, at most max_ms; -1 else. */
static long parse_ms(const char *s, int digit_first, int hours, double max_ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || (digit_first && (s[0] < '0' || s[0] > '9')))
        return -1;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else if (hours && strcmp(end, "h") == 0)
        scale = 3600000;
    else
        return -1;
    double ms = v * scale;
    return ms > max_ms ? -1 : (long)ms;
}

long fy_cli_parse_duration(const char *s)
{
    return parse_ms(s, 0, 0, 24.0 * 3600 * 1000);
}

long fy_cli_parse_span(const char *s)
{
    return parse_ms(s, 1, 1, 366.0 * 24 * 3600 * 1000);
}

/*
 * Adds a grouping label. A flag's label replaces one from the environment of the same name (flags override the
 * environment); two from the same source are an error. src names the source in messages: NULL for a flag, else the
 * variable.
 */
static int add_label(fy_cli_target_t *t, const char *name, size_t nlen, const char *value, const char *src, char *err, size_t cap)
{
    char where[80] = "";
    if (src != NULL)
        snprintf(where, sizeof(where), "$%s: ", src);
    if (!fy_groupkey_label_name_ok(name, nlen)) /* the server will parse them so */
        return bad_arg(err, cap, "%sinvalid label name \"%.*s\"", where, (int)nlen, name);
    if (nlen == 3 && memcmp(name, "job", 3) == 0)
        return bad_arg(err, cap, "%sthe job label comes from --job, not --label", where);
    for (size_t i = 0; i < t->nlabels; i++) {
        if (t->labels[i].name_len != nlen || memcmp(t->labels[i].name, name, nlen) != 0)
            continue;
        if (t->labels[i].from_env && src == NULL) {
            t->labels[i] = (fy_cli_label_t){name, nlen, value, 0};
            return 0;
        }
        return bad_arg(err, cap, "%slabel \"%.*s\" given twice", where, (int)nlen, name);
    }
    if (t->nlabels == FY_CLI_MAX_LABELS)
        return bad_arg(err, cap, "%stoo many labels (at most %d)", where, FY_CLI_MAX_LABELS);
    t->labels[t->nlabels++] = (fy_cli_label_t){name, nlen, value, src != NULL};
    return 0;
}

static int parse_label(fy_cli_target_t *t, const char *arg, char *err, size_t cap)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL)
        return bad_arg(err, cap, "--label \"%s\" is not name=value", arg);
    return add_label(t, arg, (size_t)(eq - arg), eq + 1, NULL, err, cap);
}

/* --interval and --ttl: checked here, sent as Go durations ("90s", "1500ms") that both Ferry and Go parse. */
static int parse_header_span(const char *flag, const char *v, char *out, size_t outcap, char *err, size_t cap)
{
    long ms = fy_cli_parse_span(v);
    if (ms < 0)
        return bad_arg(err, cap, "%s \"%s\" is not a duration like 90s, 15m or 2h", flag, v);
    if (ms % 1000 == 0)
        snprintf(out, outcap, "%lds", ms / 1000);
    else
        snprintf(out, outcap, "%ldms", ms);
    return 0;
}

static int set_hostname(fy_cli_target_t *t, char *err, size_t cap)
{
    if (gethostname(t->hostname, sizeof(t->hostname)) != 0 || t->hostname[0] == '\0')
        return bad_arg(err, cap, "--instance-hostname: cannot read the host name: %s", strerror(errno));
    t->hostname[sizeof(t->hostname) - 1] = '\0';
    return add_label(t, "instance", 8, t->hostname, NULL, err, cap);
}

/* argv[*i] (starting "--") as one of valued (a NULL-terminated list; entry skip, when >= 0, does not count), given as
 * --name=value or --name value: its index, with *v its value (*i moved past a separate value). -1 when it is none of
 * them, -2 (err set) when its value is missing. */
static int valued_option(const char *const *valued, int skip, int argc, char **argv, int *i, const char **v, char *err, size_t cap)
{
    const char *name = argv[*i] + 2;
    size_t nlen = strcspn(name, "=");
    int k;
    for (k = 0; valued[k] != NULL; k++)
        if (k != skip && strlen(valued[k]) == nlen && memcmp(valued[k], name, nlen) == 0)
            break;
    if (valued[k] == NULL)
        return -1;
    if (name[nlen] == '=') {
        *v = name + nlen + 1;
    } else {
        if (*i + 1 >= argc) {
            bad_arg(err, cap, "--%s needs a value", valued[k]);
            return -2;
        }
        *v = argv[++*i];
    }
    return k;
}

/*
 * One option of argv at *i. Recognises --name=value and --name value for the shared options; the caller handles its
 * own. --timeout is the per-attempt limit only when timeout_is_push (in `ferry run` it is the job's). Returns 1 when
 * consumed, 0 when not a shared option, -1 on error.
 */
static int shared_option(fy_cli_target_t *t, int argc, char **argv, int *i, int timeout_is_push, char *err, size_t cap)
{
    static const char *const valued[] = {"gateway",  "job",      "label",    "username",     "password-file",
                                         "ca-file",  "timeout",  "retries",  "push-timeout", "cert-file",
                                         "key-file", "instance", "interval", "ttl",          NULL};
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *name = arg + 2;
    if (strcmp(name, "insecure") == 0) {
        t->insecure = 1;
        return 1;
    }
    if (strcmp(name, "instance-hostname") == 0)
        return set_hostname(t, err, cap) == 0 ? 1 : -1;
    const char *v;
    int k = valued_option(valued, timeout_is_push ? -1 : 6, argc, argv, i, &v, err, cap);
    if (k < 0)
        return k == -1 ? 0 : -1;
    switch (k) {
    case 0:
        t->gateway = v;
        break;
    case 1:
        t->job = v;
        break;
    case 2:
        return parse_label(t, v, err, cap) == 0 ? 1 : -1;
    case 3:
        t->username = v;
        break;
    case 4:
        t->password_file = v;
        break;
    case 5:
        t->ca_file = v;
        break;
    case 6:
    case 8:
        if ((t->timeout_ms = fy_cli_parse_duration(v)) <= 0)
            return bad_arg(err, cap, "--%s \"%s\" is not a duration like 10s or 500ms", valued[k], v);
        break;
    case 7: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 20)
            return bad_arg(err, cap, "--retries \"%s\" is not a count from 0 to 20", v);
        t->retries = (unsigned)n;
        break;
    }
    case 9:
        t->cert_file = v;
        break;
    case 10:
        t->key_file = v;
        break;
    case 11:
        return add_label(t, "instance", 8, v, NULL, err, cap) == 0 ? 1 : -1;
    case 12:
        return parse_header_span("--interval", v, t->interval, sizeof(t->interval), err, cap) == 0 ? 1 : -1;
    case 13:
        return parse_header_span("--ttl", v, t->ttl, sizeof(t->ttl), err, cap) == 0 ? 1 : -1;
    default:
        assert(0);
    }
    return 1;
}

/* The value of NAME in env, NULL when absent or empty (an empty variable is how shells and unit files unset one). */
static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; env != NULL && *env != NULL; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return (*env)[n + 1] != '\0' ? *env + n + 1 : NULL;
    return NULL;
}

#define ENV_LABEL_PREFIX "FERRY_LABEL_"

/* The FERRY_* variables shared by both commands (docs/cli.md); the flags parsed after them override them. */
static int target_env(fy_cli_target_t *t, char *const *env, char *err, size_t cap)
{
    const char *v;
    t->gateway = env_get(env, "FERRY_URL");
    t->job = env_get(env, "FERRY_JOB");
    t->username = env_get(env, "FERRY_USERNAME");
    t->password = env_get(env, "FERRY_PASSWORD");
    t->password_file = env_get(env, "FERRY_PASSWORD_FILE");
    t->ca_file = env_get(env, "FERRY_CA_FILE");
    t->cert_file = env_get(env, "FERRY_CERT_FILE");
    t->key_file = env_get(env, "FERRY_KEY_FILE");
    if ((v = env_get(env, "FERRY_INTERVAL")) != NULL &&
        parse_header_span("$FERRY_INTERVAL", v, t->interval, sizeof(t->interval), err, cap) != 0)
        return -1;
    if ((v = env_get(env, "FERRY_TTL")) != NULL && parse_header_span("$FERRY_TTL", v, t->ttl, sizeof(t->ttl), err, cap) != 0)
        return -1;
    if ((v = env_get(env, "FERRY_INSTANCE")) != NULL && add_label(t, "instance", 8, v, "FERRY_INSTANCE", err, cap) != 0)
        return -1;
    for (; env != NULL && *env != NULL; env++) {
        const char *e = *env;
        if (strncmp(e, ENV_LABEL_PREFIX, sizeof(ENV_LABEL_PREFIX) - 1) != 0)
            continue;
        const char *name = e + sizeof(ENV_LABEL_PREFIX) - 1, *eq = strchr(name, '=');
        if (eq == NULL)
            continue;
        char var[128];
        snprintf(var, sizeof(var), "%.*s", (int)(eq - e), e);
        if (add_label(t, name, (size_t)(eq - name), eq + 1, var, err, cap) != 0)
            return -1;
    }
    return 0;
}

static void target_defaults(fy_cli_target_t *t)
{
    memset(t, 0, sizeof(*t));
    t->timeout_ms = DEFAULT_TIMEOUT_MS;
    t->retries = DEFAULT_RETRIES;
}

static int target_check(const fy_cli_target_t *t, char *err, size_t cap)
{
    if (t->gateway == NULL)
        return bad_arg(err, cap, "--gateway is required (or set $FERRY_URL)");
    if (strncmp(t->gateway, "http://", 7) != 0 && strncmp(t->gateway, "https://", 8) != 0)
        return bad_arg(err, cap, "--gateway \"%s\" is not an http:// or https:// URL", t->gateway);
    if (strpbrk(t->gateway, "?#") != NULL)
        return bad_arg(err, cap, "--gateway \"%s\" must not have a query or fragment", t->gateway);
    if (t->job == NULL)
        return bad_arg(err, cap, "--job is required (or set $FERRY_JOB)");
    if (t->job[0] == '\0')
        return bad_arg(err, cap, "--job must not be empty");
    if (t->key_file != NULL && t->cert_file == NULL)
        return bad_arg(err, cap, "--key-file needs --cert-file (the client certificate it belongs to)");
    return 0;
}

int fy_cli_push_parse(fy_cli_push_opts_t *o, int argc, char **argv, char *const *env, char *err, size_t cap)
{
    int add = 0, del = 0, only_files = 0;

    memset(o, 0, sizeof(*o));
    target_defaults(&o->t);
    for (int i = 1; i < argc; i++) /* --help needs no valid environment */
        if (strcmp(argv[i], "--") == 0)
            break;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            o->help = 1;
            return 0;
        }
    if (target_env(&o->t, env, err, cap) != 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_files) {
            if (strcmp(arg, "--") == 0) {
                only_files = 1;
                continue;
            }
            if (strcmp(arg, "--add") == 0) {
                add = 1;
                continue;
            }
            if (strcmp(arg, "--delete") == 0) {
                del = 1;
                continue;
            }
            int r = shared_option(&o->t, argc, argv, &i, 1, err, cap);
            if (r < 0)
                return -1;
            if (r > 0)
                continue;
            if (arg[0] == '-' && arg[1] != '\0')
                return bad_arg(err, cap, "unknown flag \"%s\"", arg);
        }
        if (o->file != NULL)
            return bad_arg(err, cap, "one file at most, got \"%s\" and \"%s\"", o->file, arg);
        o->file = arg;
    }
    if (add && del)
        return bad_arg(err, cap, "--add and --delete exclude each other");
    if (del && o->file != NULL)
        return bad_arg(err, cap, "--delete sends no body, but a file was given: \"%s\"", o->file);
    o->method = del ? FY_CLI_DELETE : add ? FY_CLI_POST : FY_CLI_PUT;
    if (!del && o->file == NULL)
        o->file = "-";
    return target_check(&o->t, err, cap);
}

#define DEFAULT_KILL_AFTER_MS 10000
#define DEFAULT_STDERR_LINES 5
#define MAX_STDERR_LINES 50

/* `ferry run`'s own valued flags. Returns 1 when consumed, 0 when not one of them, -1 on error. */
static int run_option(fy_cli_run_opts_t *o, int argc, char **argv, int *i, char *err, size_t cap)
{
    static const char *const valued[] = {"timeout", "kill-after", "lock", "stderr-lines", "textfile-dir", NULL};
    if (strncmp(argv[*i], "--", 2) != 0)
        return 0;
    const char *v;
    int k = valued_option(valued, -1, argc, argv, i, &v, err, cap);
    if (k < 0)
        return k == -1 ? 0 : -1;
    switch (k) {
    case 0:
        if ((o->job_timeout_ms = fy_cli_parse_span(v)) <= 0)
            return bad_arg(err, cap, "--timeout \"%s\" is not a duration like 30s, 15m or 2h (the job's time limit)", v);
        break;
    case 1:
        if ((o->kill_after_ms = fy_cli_parse_span(v)) < 0)
            return bad_arg(err, cap, "--kill-after \"%s\" is not a duration like 10s", v);
        break;
    case 2:
        if (v[0] == '\0')
            return bad_arg(err, cap, "--lock needs a file name");
        o->lock_file = v;
        break;
    case 3: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > MAX_STDERR_LINES)
            return bad_arg(err, cap, "--stderr-lines \"%s\" is not a count from 0 to %d", v, MAX_STDERR_LINES);
        o->stderr_lines = (unsigned)n;
        break;
    }
    case 4:
        if (v[0] == '\0')
            return bad_arg(err, cap, "--textfile-dir needs a directory");
        o->textfile_dir = v;
        break;
    default:
        assert(0);
    }
    return 1;
}

int fy_cli_run_parse(fy_cli_run_opts_t *o, int argc, char **argv, char *const *env, char *err, size_t cap)
{
    memset(o, 0, sizeof(*o));
    target_defaults(&o->t);
    o->kill_after_ms = DEFAULT_KILL_AFTER_MS;
    o->stderr_lines = DEFAULT_STDERR_LINES;
    for (int i = 1; i < argc; i++) { /* --help needs no valid environment */
        if (strcmp(argv[i], "--") == 0 || argv[i][0] != '-')
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            o->help = 1;
            return 0;
        }
    }
    if (target_env(&o->t, env, err, cap) != 0)
        return -1;
    o->textfile_dir = env_get(env, "FERRY_TEXTFILE_DIR");
    int i;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            o->help = 1;
            return 0;
        }
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        int r = run_option(o, argc, argv, &i, err, cap);
        if (r == 0)
            r = shared_option(&o->t, argc, argv, &i, 0, err, cap);
        if (r < 0)
            return -1;
        if (r == 0 && arg[0] == '-')
            return bad_arg(err, cap, "unknown flag \"%s\"", arg);
        if (r == 0)
            break; /* the command, without a "--" before it */
    }
    if (i >= argc)
        return bad_arg(err, cap, "no command to run: ferry run [flags] -- CMD [ARGS...]");
    o->cmd = argv + i;
    return target_check(&o->t, err, cap);
}

static const char SHARED_USAGE[] =
    "      --gateway=URL        Pushgateway or Ferry base URL, with the route prefix if any\n"
    "                           (http://host:9091, https://user:pass@host/prefix). Required. $FERRY_URL\n"
    "      --job=NAME           The job label of the grouping key. Required. $FERRY_JOB\n"
    "      --label=NAME=VALUE   Another grouping label; repeatable. $FERRY_LABEL_<NAME>=VALUE. Values with\n"
    "                           '/', empty values and other non-URL-safe values are sent as @base64.\n"
    "      --instance=NAME      The instance label (none by default). $FERRY_INSTANCE\n"
    "      --instance-hostname  The instance label is this host's name.\n"
    "      --interval=DUR       Send X-Ferry-Interval: Ferry then exposes push_alive for the group. $FERRY_INTERVAL\n"
    "      --ttl=DUR            Send X-Ferry-TTL: Ferry deletes the group DUR after its last push. $FERRY_TTL\n"
    "      --username=USER      HTTP basic auth user (or put user:pass@ in the URL). $FERRY_USERNAME\n"
    "      --password-file=F    File whose first line is the basic auth password. $FERRY_PASSWORD_FILE,\n"
    "                           or the password itself in $FERRY_PASSWORD.\n"
    "      --ca-file=F          PEM CA bundle to verify the gateway's certificate. $FERRY_CA_FILE\n"
    "      --cert-file=F        PEM client certificate, for gateways that require one. $FERRY_CERT_FILE\n"
    "      --key-file=F         Its private key, if not in the --cert-file. $FERRY_KEY_FILE\n"
    "      --insecure           Do not verify the gateway's TLS certificate.\n"
    "      --push-timeout=10s   Time limit of each push attempt (ms, s or m).\n"
    "      --retries=3          Attempts after the first on connection errors and 5xx, with\n"
    "                           exponential backoff from 250ms. 4xx answers are never retried.\n";

void fy_cli_push_usage(FILE *out)
{
    fprintf(out, "usage: ferry push --gateway=URL --job=NAME [--label=NAME=VALUE]... [--add|--delete] [FILE|-]\n\n"
                 "Push a file in the Prometheus text format (stdin when FILE is - or absent) to a grouping key.\n"
                 "PUT replaces the group; --add POSTs (replaces only the metric families in FILE);\n"
                 "--delete deletes the group and sends no body.\n\nFlags:\n");
    fputs(SHARED_USAGE, out);
    fprintf(out, "      --timeout=10s        Same as --push-timeout.\n"
                 "      --add                POST instead of PUT.\n"
                 "      --delete             DELETE the group.\n\n"
                 "A flag overrides the $FERRY_ variable named after it; an empty variable is unset.\n\n"
                 "Exit status: 0 pushed, 1 usage error, 2 rejected by the gateway (4xx, message printed),\n"
                 "3 gateway unreachable or 5xx after all retries.\n");
}

void fy_cli_run_usage(FILE *out)
{
    fprintf(out, "usage: ferry run --gateway=URL --job=NAME [--label=NAME=VALUE]... -- CMD [ARGS...]\n\n"
                 "Run CMD and push that it started (job_running 1, job_start_time_seconds, a POST) and how it\n"
                 "ended: job_running 0, job_duration_seconds, job_exit_code, job_killed_by_signal, job_timed_out,\n"
                 "after a success job_last_success_timestamp_seconds, after a failure job_stderr_tail_info. A\n"
                 "success PUTs (the group is replaced); a failure POSTs, so the last success time stays. Metrics\n"
                 "CMD writes in the text format to the file named by $" FY_RUN_METRICS_ENV " are pushed too.\n\nFlags:\n");
    fputs(SHARED_USAGE, out);
    fprintf(out, "      --timeout=DUR        Time limit of CMD: then SIGTERM to its process group, SIGKILL after\n"
                 "                           --kill-after, exit 124, job_timed_out 1 pushed. None by default.\n"
                 "      --kill-after=10s     Grace between that SIGTERM and SIGKILL.\n"
                 "      --lock=FILE          Do not run while another ferry run holds FILE (flock); a skipped run\n"
                 "                           pushes job_last_skipped_timestamp_seconds and exits 75.\n"
                 "      --stderr-lines=5     Lines of CMD's stderr kept for job_stderr_tail_info (0: stderr is not\n"
                 "                           captured). CMD's stderr is still copied to ferry's.\n"
                 "      --textfile-dir=DIR   When the outcome cannot be pushed, write it to DIR/ferry_run_*.prom\n"
                 "                           for the node exporter's textfile collector. $FERRY_TEXTFILE_DIR\n");
    fprintf(out, "\nA flag overrides the $FERRY_ variable named after it; an empty variable is unset.\n"
                 "\nExit status: CMD's (128+N when killed by signal N, 127 not found, 126 not executable), never\n"
                 "changed by a failed push (that is reported on stderr); 124 timed out; 75 skipped (--lock);\n"
                 "125 when ferry run itself is misused.\n");
}

size_t fy_cli_b64url(const char *in, size_t len, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = (const unsigned char *)in;
    size_t n = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[n++] = alphabet[v >> 18];
        out[n++] = alphabet[(v >> 12) & 63];
        out[n++] = alphabet[(v >> 6) & 63];
        out[n++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        out[n++] = alphabet[v >> 18];
        out[n++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        out[n++] = alphabet[v >> 18];
        out[n++] = alphabet[(v >> 12) & 63];
        out[n++] = alphabet[(v >> 6) & 63];
    }
    return n;
}

/* Plain in a path only if the server will see it unchanged: unreserved bytes, and not a dot segment it would clean. */
static int plain_ok(const char *v, size_t len)
{
    if (len == 0 || (len == 1 && v[0] == '.') || (len == 2 && v[0] == '.' && v[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
              c == '~'))
            return 0;
    }
    return 1;
}

typedef struct {
    char *out;
    size_t cap, len;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len < b->cap) {
        size_t room = b->cap - b->len;
        memcpy(b->out + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

static void put_pair(sbuf_t *b, const char *name, size_t name_len, const char *value)
{
    size_t vlen = strlen(value);
    put(b, "/", 1);
    put(b, name, name_len);
    if (plain_ok(value, vlen)) {
        put(b, "/", 1);
        put(b, value, vlen);
        return;
    }
    put(b, "@base64/", 8);
    if (vlen == 0) {
        put(b, "=", 1);
        return;
    }
    char chunk[4 * 48 / 3];
    for (size_t off = 0; off < vlen; off += 48) {
        size_t n = vlen - off < 48 ? vlen - off : 48; /* whole 3-byte groups until the last chunk */
        put(b, chunk, fy_cli_b64url(value + off, n, chunk));
    }
}

size_t fy_cli_url(const fy_cli_target_t *t, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    size_t glen = strlen(t->gateway);
    while (glen > 0 && t->gateway[glen - 1] == '/')
        glen--;
    put(&b, t->gateway, glen);
    put(&b, "/metrics", 8);
    put_pair(&b, "job", 3, t->job);
    for (size_t i = 0; i < t->nlabels; i++)
        put_pair(&b, t->labels[i].name, t->labels[i].name_len, t->labels[i].value);
    if (cap > 0)
        out[b.len < cap ? b.len : cap - 1] = '\0';
    return b.len;
}

void fy_cli_redact(const char *url, char *out, size_t cap)
{
    const char *host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    size_t auth_len = strcspn(host, "/@");
    const char *colon = memchr(host, ':', auth_len);
    if (host[auth_len] != '@' || colon == NULL) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*sxxxxx%s", (int)(colon + 1 - url), url, host + auth_len);
}

int fy_cli_retryable(long status)
{
    return status == 0 || status >= 500;
}

int fy_cli_exit_code(long status)
{
    if (status >= 200 && status < 300)
        return FY_CLI_OK;
    if (status >= 400 && status < 500)
        return FY_CLI_REJECTED;
    return FY_CLI_UNREACHABLE; /* no answer, 5xx, or anything a gateway never sends (1xx, 3xx) */
}

long fy_cli_backoff_ms(unsigned n)
{
    assert(n >= 1);
    long ms = 250;
    for (unsigned i = 1; i < n && ms < 8000; i++)
        ms *= 2;
    return ms < 8000 ? ms : 8000;
}

static void put_metric(sbuf_t *b, const char *name, const char *labels, const char *help, const char *value)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s gauge\n%s%s %s\n", name, help, name, name,
                     labels != NULL ? labels : "", value);
    assert(n > 0 && (size_t)n < sizeof(line));
    put(b, line, (size_t)n);
}

/* A label value in the text format: backslash, double quote and newline escaped. */
static void put_escaped(sbuf_t *b, const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\\')
            put(b, "\\\\", 2);
        else if (v[i] == '"')
            put(b, "\\\"", 2);
        else if (v[i] == '\n')
            put(b, "\\n", 2);
        else
            put(b, v + i, 1);
    }
}

static void finish(sbuf_t *b)
{
    if (b->cap > 0)
        b->out[b->len < b->cap ? b->len : b->cap - 1] = '\0';
}

size_t fy_cli_labels_render(const fy_cli_target_t *t, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    put(&b, "{job=\"", 6);
    put_escaped(&b, t->job, strlen(t->job));
    for (size_t i = 0; i < t->nlabels; i++) {
        put(&b, "\",", 2);
        put(&b, t->labels[i].name, t->labels[i].name_len);
        put(&b, "=\"", 2);
        put_escaped(&b, t->labels[i].value, strlen(t->labels[i].value));
    }
    put(&b, "\"}", 2);
    finish(&b);
    return b.len;
}

size_t fy_cli_outcome_render(const fy_cli_outcome_t *o, const char *labels, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    char v[64];
    double dur = o->end - o->start;

    put_metric(&b, "job_running", labels, "1 while the job's command runs, 0 once it has ended.", "0");
    snprintf(v, sizeof(v), "%.3f", o->start);
    put_metric(&b, "job_start_time_seconds", labels, "Unix time when the job's command was started.", v);
    snprintf(v, sizeof(v), "%.6f", dur > 0 ? dur : 0.0);
    put_metric(&b, "job_duration_seconds", labels, "How long the job's command ran.", v);
    snprintf(v, sizeof(v), "%d", o->exit_code);
    put_metric(&b, "job_exit_code", labels,
               "Exit status of the job's command: 128+N when killed by signal N, 127 or 126 when it could not be started, 124 "
               "when it timed out.",
               v);
    snprintf(v, sizeof(v), "%d", o->signal);
    put_metric(&b, "job_killed_by_signal", labels, "Number of the signal that killed the job's command, 0 when it exited.", v);
    put_metric(&b, "job_timed_out", labels, "1 if the job's command ran past its --timeout and was stopped.",
               o->timed_out ? "1" : "0");
    if (o->exit_code == 0) {
        snprintf(v, sizeof(v), "%.3f", o->end);
        put_metric(&b, "job_last_success_timestamp_seconds", labels, "Unix time when the job last finished successfully.", v);
    } else if (o->stderr_tail != NULL) {
        static const char head[] = "# HELP job_stderr_tail_info The last lines of the failed job's stderr.\n"
                                   "# TYPE job_stderr_tail_info gauge\n";
        put(&b, head, sizeof(head) - 1);
        put(&b, "job_stderr_tail_info{", 21);
        if (labels != NULL && labels[0] == '{') { /* the grouping labels first, then ours */
            size_t n = strlen(labels);
            put(&b, labels + 1, n - 2);
            put(&b, ",", 1);
        }
        put(&b, "stderr=\"", 8);
        put_escaped(&b, o->stderr_tail, strlen(o->stderr_tail));
        put(&b, "\"} 1\n", 5);
    }
    finish(&b);
    return b.len;
}

size_t fy_cli_start_render(double start, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    char v[64];
    put_metric(&b, "job_running", NULL, "1 while the job's command runs, 0 once it has ended.", "1");
    snprintf(v, sizeof(v), "%.3f", start);
    put_metric(&b, "job_start_time_seconds", NULL, "Unix time when the job's command was started.", v);
    finish(&b);
    return b.len;
}

size_t fy_cli_skip_render(double now, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    char v[64];
    snprintf(v, sizeof(v), "%.3f", now);
    put_metric(&b, "job_last_skipped_timestamp_seconds", NULL,
               "Unix time when a run was skipped because an earlier one still held its --lock.", v);
    finish(&b);
    return b.len;
}

void fy_cli_textfile_name(const fy_cli_target_t *t, char *out, size_t cap)
{
    /* FNV-1a over the whole key (NUL-separated), so two keys that differ only in a label never share a file. */
    uint64_t h = 14695981039346656037ull;
    size_t jl = strlen(t->job);
    for (size_t i = 0; i <= jl; i++)
        h = (h ^ (unsigned char)t->job[i]) * 1099511628211ull;
    for (size_t k = 0; k < t->nlabels; k++) {
        for (size_t i = 0; i < t->labels[k].name_len; i++)
            h = (h ^ (unsigned char)t->labels[k].name[i]) * 1099511628211ull;
        h = (h ^ '=') * 1099511628211ull;
        for (const char *p = t->labels[k].value;; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
            if (*p == '\0')
                break;
        }
    }
    char job[65];
    size_t n = 0;
    for (size_t i = 0; i < jl && n < sizeof(job) - 1; i++) {
        char c = t->job[i];
        job[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ? c : '_';
    }
    job[n] = '\0';
    snprintf(out, cap, "ferry_run_%s_%016llx.prom", job, (unsigned long long)h);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t fy_cli_stderr_tail(const char *buf, size_t len, unsigned lines, size_t max, char *out)
{
    /* Drop one trailing newline, then walk back over `lines` newlines. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    size_t from = len;
    for (unsigned seen = 0; from > 0; from--)
        if (buf[from - 1] == '\n' && ++seen == lines)
            break;
    size_t n = 0;
    if (len - from > max) { /* keep the end: the last words of a failing job are the useful ones */
        from = len - max;
        while (from < len && ((unsigned char)buf[from] & 0xc0) == 0x80)
            from++; /* not in the middle of a character */
        memcpy(out, "...", 3);
        n = 3;
    }
    const unsigned char *s = (const unsigned char *)buf;
    for (size_t i = from; i < len;) {
        size_t l = utf8_len(s + i, len - i);
        if (l == 0 || (l == 1 && ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n') || s[i] == 0x7f))) {
            out[n++] = '?';
            i++;
            continue;
        }
        memcpy(out + n, s + i, l);
        n += l;
        i += l;
    }
    out[n] = '\0';
    return n;
}
