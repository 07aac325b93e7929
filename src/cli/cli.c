/*
 * cli.c: the pure half of `ferry push` and `ferry run`: argument parsing, grouping-key URLs with the Pushgateway's
 * @base64 convention, the exit-code and retry policy, and the exposition of a run's outcome. No I/O here except the
 * usage texts, so all of it is unit-tested by table (tests/test_cli.c); tests/integration/test_cli.py runs
 * `ferry push` and `ferry run` end to end.
 */
#include "cli.h"
#include "groupkey.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

long fy_cli_parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0))
        return -1;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else
        return -1;
    double ms = v * scale;
    if (ms > 24.0 * 3600 * 1000)
        return -1;
    return (long)ms;
}

static int parse_label(fy_cli_target_t *t, const char *arg, char *err, size_t cap)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL)
        return bad_arg(err, cap, "--label \"%s\" is not name=value", arg);
    size_t nlen = (size_t)(eq - arg);
    if (!fy_groupkey_label_name_ok(arg, nlen)) /* the server will parse them so */
        return bad_arg(err, cap, "invalid label name \"%.*s\"", (int)nlen, arg);
    if (nlen == 3 && memcmp(arg, "job", 3) == 0)
        return bad_arg(err, cap, "the job label comes from --job, not --label");
    for (size_t i = 0; i < t->nlabels; i++)
        if (t->labels[i].name_len == nlen && memcmp(t->labels[i].name, arg, nlen) == 0)
            return bad_arg(err, cap, "label \"%.*s\" given twice", (int)nlen, arg);
    if (t->nlabels == FY_CLI_MAX_LABELS)
        return bad_arg(err, cap, "too many labels (at most %d)", FY_CLI_MAX_LABELS);
    t->labels[t->nlabels++] = (fy_cli_label_t){arg, nlen, eq + 1};
    return 0;
}

/*
 * One option of argv at *i. Recognises --name=value and --name value for the shared options; the caller handles its
 * own. Returns 1 when consumed, 0 when not a shared option, -1 on error.
 */
static int shared_option(fy_cli_target_t *t, int argc, char **argv, int *i, char *err, size_t cap)
{
    static const char *const valued[] = {"gateway", "job",     "label",   "username", "password-file",
                                         "ca-file", "timeout", "retries", NULL};
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *name = arg + 2;
    if (strcmp(name, "insecure") == 0) {
        t->insecure = 1;
        return 1;
    }
    size_t nlen = strcspn(name, "=");
    int k;
    for (k = 0; valued[k] != NULL; k++)
        if (strlen(valued[k]) == nlen && memcmp(valued[k], name, nlen) == 0)
            break;
    if (valued[k] == NULL)
        return 0;
    const char *v;
    if (name[nlen] == '=') {
        v = name + nlen + 1;
    } else {
        if (*i + 1 >= argc)
            return bad_arg(err, cap, "--%s needs a value", valued[k]);
        v = argv[++*i];
    }
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
        if ((t->timeout_ms = fy_cli_parse_duration(v)) <= 0)
            return bad_arg(err, cap, "--timeout \"%s\" is not a duration like 10s or 500ms", v);
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
    default:
        assert(0);
    }
    return 1;
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
        return bad_arg(err, cap, "--gateway is required");
    if (strncmp(t->gateway, "http://", 7) != 0 && strncmp(t->gateway, "https://", 8) != 0)
        return bad_arg(err, cap, "--gateway \"%s\" is not an http:// or https:// URL", t->gateway);
    if (strpbrk(t->gateway, "?#") != NULL)
        return bad_arg(err, cap, "--gateway \"%s\" must not have a query or fragment", t->gateway);
    if (t->job == NULL)
        return bad_arg(err, cap, "--job is required");
    if (t->job[0] == '\0')
        return bad_arg(err, cap, "--job must not be empty");
    return 0;
}

int fy_cli_push_parse(fy_cli_push_opts_t *o, int argc, char **argv, char *err, size_t cap)
{
    int add = 0, del = 0, only_files = 0;

    memset(o, 0, sizeof(*o));
    target_defaults(&o->t);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_files) {
            if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                o->help = 1;
                return 0;
            }
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
            int r = shared_option(&o->t, argc, argv, &i, err, cap);
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

int fy_cli_run_parse(fy_cli_run_opts_t *o, int argc, char **argv, char *err, size_t cap)
{
    memset(o, 0, sizeof(*o));
    target_defaults(&o->t);
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
        int r = shared_option(&o->t, argc, argv, &i, err, cap);
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
    "                           (http://host:9091, https://user:pass@host/prefix). Required.\n"
    "      --job=NAME           The job label of the grouping key. Required.\n"
    "      --label=NAME=VALUE   Another grouping label; repeatable. Values with '/', empty values and\n"
    "                           other non-URL-safe values are sent in the @base64 form.\n"
    "      --username=USER      HTTP basic auth user (or put user:pass@ in the URL).\n"
    "      --password-file=F    File whose first line is the basic auth password.\n"
    "      --ca-file=F          PEM CA bundle to verify the gateway's certificate.\n"
    "      --insecure           Do not verify the gateway's TLS certificate.\n"
    "      --timeout=10s        Time limit of each attempt (ms, s or m).\n"
    "      --retries=3          Attempts after the first on connection errors and 5xx, with\n"
    "                           exponential backoff from 250ms. 4xx answers are never retried.\n";

void fy_cli_push_usage(FILE *out)
{
    fprintf(out, "usage: ferry push --gateway=URL --job=NAME [--label=NAME=VALUE]... [--add|--delete] [FILE|-]\n\n"
                 "Push a file in the Prometheus text format (stdin when FILE is - or absent) to a grouping key.\n"
                 "PUT replaces the group; --add POSTs (replaces only the metric families in FILE);\n"
                 "--delete deletes the group and sends no body.\n\nFlags:\n");
    fputs(SHARED_USAGE, out);
    fprintf(out, "      --add                POST instead of PUT.\n"
                 "      --delete             DELETE the group.\n\n"
                 "Exit status: 0 pushed, 1 usage error, 2 rejected by the gateway (4xx, message printed),\n"
                 "3 gateway unreachable or 5xx after all retries.\n");
}

void fy_cli_run_usage(FILE *out)
{
    fprintf(out, "usage: ferry run --gateway=URL --job=NAME [--label=NAME=VALUE]... -- CMD [ARGS...]\n\n"
                 "Run CMD and push how it ended: job_start_time_seconds, job_duration_seconds, job_exit_code,\n"
                 "job_killed_by_signal, and after a success job_last_success_timestamp_seconds. A success PUTs\n"
                 "(the group is replaced); a failure POSTs, so the last success time stays. Metrics CMD writes\n"
                 "in the text format to the file named by $" FY_RUN_METRICS_ENV " are pushed too.\n\nFlags:\n");
    fputs(SHARED_USAGE, out);
    fprintf(out, "\nExit status: CMD's (128+N when killed by signal N, 127 not found, 126 not executable), never\n"
                 "changed by a failed push (that is reported on stderr); 125 when ferry run itself is misused.\n");
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

static void put_metric(sbuf_t *b, const char *name, const char *help, const char *value)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, value);
    assert(n > 0 && (size_t)n < sizeof(line));
    put(b, line, (size_t)n);
}

size_t fy_cli_outcome_render(const fy_cli_outcome_t *o, char *out, size_t cap)
{
    sbuf_t b = {out, cap, 0};
    char v[64];
    double dur = o->end - o->start;

    snprintf(v, sizeof(v), "%.3f", o->start);
    put_metric(&b, "job_start_time_seconds", "Unix time when the job's command was started.", v);
    snprintf(v, sizeof(v), "%.6f", dur > 0 ? dur : 0.0);
    put_metric(&b, "job_duration_seconds", "How long the job's command ran.", v);
    snprintf(v, sizeof(v), "%d", o->exit_code);
    put_metric(&b, "job_exit_code",
               "Exit status of the job's command: 128+N when killed by signal N, 127 or 126 when it could not be started.", v);
    snprintf(v, sizeof(v), "%d", o->signal);
    put_metric(&b, "job_killed_by_signal", "Number of the signal that killed the job's command, 0 when it exited.", v);
    if (o->exit_code == 0) {
        snprintf(v, sizeof(v), "%.3f", o->end);
        put_metric(&b, "job_last_success_timestamp_seconds", "Unix time when the job last finished successfully.", v);
    }
    if (cap > 0)
        out[b.len < cap ? b.len : cap - 1] = '\0';
    return b.len;
}
