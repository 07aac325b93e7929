/*
 * test_cli.c: the pure half of `ferry push` / `ferry run` (src/cli.c): argument parsing and its error messages,
 * grouping-key URLs with the @base64 form (checked against the server's own parser, src/groupkey.c, so the two can
 * never disagree), the retry and exit-code policy, and the exposition of a run's outcome.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/cli/cli.c"
#include "../src/common/base64.c"
#include "../src/http/groupkey.c"

#define MAXARGS 24

/* "push|--job|j" becomes argv; '|' separates arguments so that values may hold spaces. */
static int split(const char *line, char *buf, size_t cap, char **argv)
{
    int argc = 0;
    snprintf(buf, cap, "%s", line);
    for (char *p = buf;; p++) {
        argv[argc++] = p;
        p = strchr(p, '|');
        if (p == NULL)
            break;
        *p = '\0';
    }
    argv[argc] = NULL;
    return argc;
}

static void describe_target(const fy_cli_target_t *t, char *out, size_t cap)
{
    size_t w = (size_t)snprintf(out, cap, "gw=%s job=%s", t->gateway, t->job);
    for (size_t i = 0; i < t->nlabels; i++)
        w += (size_t)snprintf(out + w, cap - w, " %.*s=%s%s", (int)t->labels[i].name_len, t->labels[i].name, t->labels[i].value,
                              t->labels[i].from_env ? "(env)" : "");
    if (t->username != NULL)
        w += (size_t)snprintf(out + w, cap - w, " user=%s", t->username);
    if (t->password_file != NULL)
        w += (size_t)snprintf(out + w, cap - w, " pwfile=%s", t->password_file);
    if (t->password != NULL)
        w += (size_t)snprintf(out + w, cap - w, " password=(%zu bytes)", strlen(t->password));
    if (t->ca_file != NULL)
        w += (size_t)snprintf(out + w, cap - w, " ca=%s", t->ca_file);
    if (t->cert_file != NULL)
        w += (size_t)snprintf(out + w, cap - w, " cert=%s", t->cert_file);
    if (t->key_file != NULL)
        w += (size_t)snprintf(out + w, cap - w, " key=%s", t->key_file);
    if (t->interval[0] != '\0')
        w += (size_t)snprintf(out + w, cap - w, " interval=%s", t->interval);
    if (t->ttl[0] != '\0')
        w += (size_t)snprintf(out + w, cap - w, " ttl=%s", t->ttl);
    if (t->insecure)
        w += (size_t)snprintf(out + w, cap - w, " insecure");
    snprintf(out + w, cap - w, " timeout=%ld retries=%u", t->timeout_ms, t->retries);
}

typedef struct {
    const char *args;
    const char *want; /* description, or the exact error when err is set */
    int err;
    const char *note;
} args_case_t;

static const args_case_t push_cases[] = {
    {"push|--gateway|http://gw:9091|--job|j", "PUT file=- gw=http://gw:9091 job=j timeout=10000 retries=3", 0,
     "defaults: PUT from stdin, 10 s, 3 retries"},
    {"push|--gateway=http://gw|--job=j|m.prom", "PUT file=m.prom gw=http://gw job=j timeout=10000 retries=3", 0,
     "--name=value form and a file"},
    {"push|--gateway=http://gw|--job=j|-", "PUT file=- gw=http://gw job=j timeout=10000 retries=3", 0, "- is stdin"},
    {"push|--gateway=http://gw|--job=j|--add|f", "POST file=f gw=http://gw job=j timeout=10000 retries=3", 0, "--add"},
    {"push|--gateway=http://gw|--job=j|--delete", "DELETE file=(none) gw=http://gw job=j timeout=10000 retries=3", 0,
     "--delete has no file"},
    {"push|--gateway=http://gw|--job=j|--label|a=1|--label=path=/x/y|--label|e=",
     "PUT file=- gw=http://gw job=j a=1 path=/x/y e= timeout=10000 retries=3", 0, "labels; value keeps its ="},
    {"push|--gateway=https://gw|--job=j|--username=u|--password-file=/p|--ca-file=/ca|--insecure|--timeout=500ms|"
     "--retries=0",
     "PUT file=- gw=https://gw job=j user=u pwfile=/p ca=/ca insecure timeout=500 retries=0", 0, "auth, TLS, limits"},
    {"push|--gateway=http://gw|--job=j|--|--odd-name", "PUT file=--odd-name gw=http://gw job=j timeout=10000 retries=3", 0,
     "after -- every argument is a file"},
    {"push|--help|--bogus", "help", 0, "--help wins over anything after it"},
    {"push|--job=j", "--gateway is required (or set $FERRY_URL)", 1, "no gateway"},
    {"push|--gateway=http://gw", "--job is required (or set $FERRY_JOB)", 1, "no job"},
    {"push|--gateway=http://gw|--job=j|--push-timeout=2s|--interval=90s|--ttl=15m",
     "PUT file=- gw=http://gw job=j interval=90s ttl=900s timeout=2000 retries=3", 0,
     "--push-timeout is --timeout; push declares an interval and a TTL too"},
    {"push|--gateway=http://gw|--job=", "--job must not be empty", 1, "empty job"},
    {"push|--gateway=gw:9091|--job=j", "--gateway \"gw:9091\" is not an http:// or https:// URL", 1, "no scheme"},
    {"push|--gateway=http://gw/?x=1|--job=j", "--gateway \"http://gw/?x=1\" must not have a query or fragment", 1, "query"},
    {"push|--gateway=http://gw|--job=j|--bogus", "unknown flag \"--bogus\"", 1, "unknown flag"},
    {"push|--gateway=http://gw|--job=j|-x", "unknown flag \"-x\"", 1, "unknown short flag"},
    {"push|--gateway=http://gw|--job", "--job needs a value", 1, "missing value at the end"},
    {"push|--gateway=http://gw|--job=j|--label|novalue", "--label \"novalue\" is not name=value", 1, "no ="},
    {"push|--gateway=http://gw|--job=j|--label|1a=x", "invalid label name \"1a\"", 1, "digit first"},
    {"push|--gateway=http://gw|--job=j|--label|__a=x", "invalid label name \"__a\"", 1, "reserved prefix"},
    {"push|--gateway=http://gw|--job=j|--label|a-b=x", "invalid label name \"a-b\"", 1, "dash"},
    {"push|--gateway=http://gw|--job=j|--label|=x", "invalid label name \"\"", 1, "empty name"},
    {"push|--gateway=http://gw|--job=j|--label|job=x", "the job label comes from --job, not --label", 1, "job label"},
    {"push|--gateway=http://gw|--job=j|--label|a=1|--label|a=2", "label \"a\" given twice", 1, "duplicate"},
    {"push|--gateway=http://gw|--job=j|--timeout=soon", "--timeout \"soon\" is not a duration like 10s or 500ms", 1,
     "bad duration"},
    {"push|--gateway=http://gw|--job=j|--timeout=0", "--timeout \"0\" is not a duration like 10s or 500ms", 1, "zero timeout"},
    {"push|--gateway=http://gw|--job=j|--retries=-1", "--retries \"-1\" is not a count from 0 to 20", 1, "negative"},
    {"push|--gateway=http://gw|--job=j|--retries=21", "--retries \"21\" is not a count from 0 to 20", 1, "too many"},
    {"push|--gateway=http://gw|--job=j|--add|--delete", "--add and --delete exclude each other", 1, "both"},
    {"push|--gateway=http://gw|--job=j|--delete|f", "--delete sends no body, but a file was given: \"f\"", 1, "delete with a file"},
    {"push|--gateway=http://gw|--job=j|a|b", "one file at most, got \"a\" and \"b\"", 1, "two files"},
};

static const args_case_t run_cases[] = {
    {"run|--gateway=http://gw|--job=j|--|sh|-c|exit 3", "cmd=[sh,-c,exit 3] gw=http://gw job=j timeout=10000 retries=3", 0,
     "command after --"},
    {"run|--gateway=http://gw|--job=j|true|--job=x", "cmd=[true,--job=x] gw=http://gw job=j timeout=10000 retries=3", 0,
     "the first non-flag starts the command; its flags are its own"},
    {"run|--job=j|--gateway|http://gw|--label|a=b|--|--weird", "cmd=[--weird] gw=http://gw job=j a=b timeout=10000 retries=3", 0,
     "a command that looks like a flag after --"},
    {"run|-h", "help", 0, "help"},
    {"run|--gateway=http://gw|--job=j", "no command to run: ferry run [flags] -- CMD [ARGS...]", 1, "no command"},
    {"run|--gateway=http://gw|--job=j|--", "no command to run: ferry run [flags] -- CMD [ARGS...]", 1, "empty after --"},
    {"run|--job=j|--|true", "--gateway is required (or set $FERRY_URL)", 1, "no gateway"},
    {"run|--gateway=http://gw|--job=j|--timeout=2h|--kill-after=1s|--lock=/tmp/l|--stderr-lines=0|--textfile-dir=/d|"
     "--push-timeout=500ms|--|true",
     "cmd=[true] gw=http://gw job=j timeout=500 retries=3 job-timeout=7200000 kill-after=1000 lock=/tmp/l stderr-lines=0 "
     "textfile=/d",
     0, "run's own flags; in ferry run --timeout is the job's limit, the push's is --push-timeout"},
    {"run|--gateway=https://gw|--job=j|--interval=1h|--ttl=1.5s|--instance=db-1|--cert-file=/c|--key-file=/k|--|true",
     "cmd=[true] gw=https://gw job=j instance=db-1 cert=/c key=/k interval=3600s ttl=1500ms timeout=10000 retries=3", 0,
     "interval and TTL as Go durations; instance; client certificate"},
    {"run|--gateway=http://gw|--job=j|--ttl=0|--timeout|90|true",
     "cmd=[true] gw=http://gw job=j ttl=0s timeout=10000 retries=3 "
     "job-timeout=90000",
     0, "TTL 0 removes the group's TTL; a bare number is seconds"},
    {"run|--gateway=http://gw|--job=j|--timeout=0|--|true",
     "--timeout \"0\" is not a duration like 30s, 15m or 2h (the job's time limit)", 1, "a zero time limit"},
    {"run|--gateway=http://gw|--job=j|--timeout=1d|--|true",
     "--timeout \"1d\" is not a duration like 30s, 15m or 2h (the job's time limit)", 1, "no day unit"},
    {"run|--gateway=http://gw|--job=j|--kill-after=x|--|true", "--kill-after \"x\" is not a duration like 10s", 1, "bad grace"},
    {"run|--gateway=http://gw|--job=j|--interval=soon|--|true", "--interval \"soon\" is not a duration like 90s, 15m or 2h", 1,
     "bad interval"},
    {"run|--gateway=http://gw|--job=j|--ttl=-1s|--|true", "--ttl \"-1s\" is not a duration like 90s, 15m or 2h", 1, "negative TTL"},
    {"run|--gateway=http://gw|--job=j|--stderr-lines=51|--|true", "--stderr-lines \"51\" is not a count from 0 to 50", 1,
     "too many stderr lines"},
    {"run|--gateway=http://gw|--job=j|--lock=|--|true", "--lock needs a file name", 1, "empty lock"},
    {"run|--gateway=http://gw|--job=j|--textfile-dir=|--|true", "--textfile-dir needs a directory", 1, "empty dir"},
    {"run|--gateway=https://gw|--job=j|--key-file=/k|--|true",
     "--key-file needs --cert-file (the client certificate it belongs to)", 1, "a key without its certificate"},
    {"run|--gateway=http://gw|--job=j|--instance=a|--label=instance=b|--|true", "label \"instance\" given twice", 1,
     "--instance is the instance label"},
    {"run|--gateway=http://gw|--job=j|--add|--|true", "unknown flag \"--add\"", 1, "push-only flag"},
    {"run|--gateway=http://gw|--job=j|--label=job=x|--|true", "the job label comes from --job, not --label", 1, "job label"},
};

typedef struct {
    const char *env; /* '|'-separated NAME=value strings */
    const char *args;
    const char *want; /* description, or the exact error when err is set */
    int err;
    const char *note;
} env_case_t;

static const env_case_t env_cases[] = {
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_LABEL_db=main|FERRY_INSTANCE=h1", "run|--|true",
     "cmd=[true] gw=http://e job=ej instance=h1(env) db=main(env) timeout=10000 retries=3", 0, "the key from the environment"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_LABEL_db=main", "run|--gateway=http://f|--job=fj|--label=db=other|--|true",
     "cmd=[true] gw=http://f job=fj db=other timeout=10000 retries=3", 0, "flags override the environment, labels too"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_LABEL_a=1", "run|--label=b=2|--|true",
     "cmd=[true] gw=http://e job=ej a=1(env) b=2 timeout=10000 retries=3", 0, "flag labels add to the environment's"},
    {"FERRY_URL=https://e|FERRY_JOB=ej|FERRY_USERNAME=u|FERRY_PASSWORD=s3cret|FERRY_CA_FILE=/ca|FERRY_CERT_FILE=/c|"
     "FERRY_KEY_FILE=/k",
     "push", "PUT file=- gw=https://e job=ej user=u password=(6 bytes) ca=/ca cert=/c key=/k timeout=10000 retries=3", 0,
     "credentials and TLS files, for push too"},
    {"FERRY_URL=https://e|FERRY_JOB=ej|FERRY_PASSWORD_FILE=/pw", "push",
     "PUT file=- gw=https://e job=ej pwfile=/pw "
     "timeout=10000 retries=3",
     0, "password file"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_INTERVAL=5m|FERRY_TTL=1h|FERRY_TEXTFILE_DIR=/d", "run|true",
     "cmd=[true] gw=http://e job=ej interval=300s ttl=3600s timeout=10000 retries=3 textfile=/d", 0, "interval, TTL, textfile"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_TTL=1h", "run|--ttl=0|true",
     "cmd=[true] gw=http://e job=ej ttl=0s timeout=10000 "
     "retries=3",
     0, "--ttl overrides $FERRY_TTL"},
    {"FERRY_URL=|FERRY_JOB=ej", "run|true", "--gateway is required (or set $FERRY_URL)", 1, "an empty variable is unset"},
    {"FERRY_URL=http://e", "push", "--job is required (or set $FERRY_JOB)", 1, "no job anywhere"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_LABEL_1x=y", "run|true", "$FERRY_LABEL_1x: invalid label name \"1x\"", 1,
     "the variable is named in the error"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_LABEL_job=x", "run|true",
     "$FERRY_LABEL_job: the job label comes from --job, not --label", 1, "job is not a FERRY_LABEL_"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_INSTANCE=a|FERRY_LABEL_instance=b", "run|true",
     "$FERRY_LABEL_instance: label \"instance\" given twice", 1, "two variables for one label"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_INTERVAL=soon", "run|true",
     "$FERRY_INTERVAL \"soon\" is not a duration like 90s, 15m or 2h", 1, "bad interval"},
    {"FERRY_URL=http://e|FERRY_JOB=ej|FERRY_METRICS_FILE=/x|FERRY_OTHER=1|PATH=/bin", "push",
     "PUT file=- gw=http://e job=ej "
     "timeout=10000 retries=3",
     0, "other variables are ignored"},
    {"FERRY_LABEL_1x=y", "run|--help", "help", 0, "--help needs no valid environment"},
};

/* The environment the parsers see: NULL for the flag tables, one row's variables for env_cases. */
static char **cur_env;

/* Parses argv with one subcommand's parser; on success describes the options in got ("help" for --help). */
typedef int (*parse_describe_fn)(int argc, char **argv, char *err, char *got, size_t gotcap);

static int push_describe(int argc, char **argv, char *err, char *got, size_t gotcap)
{
    static fy_cli_push_opts_t o;
    char tgt[400];
    if (fy_cli_push_parse(&o, argc, argv, cur_env, err, FY_CLI_ERR_MAX) != 0)
        return -1;
    if (o.help) {
        snprintf(got, gotcap, "help");
    } else {
        describe_target(&o.t, tgt, sizeof(tgt));
        snprintf(got, gotcap, "%s file=%s %s", (const char *[]){"PUT", "POST", "DELETE"}[o.method], o.file ? o.file : "(none)",
                 tgt);
    }
    return 0;
}

static int run_describe(int argc, char **argv, char *err, char *got, size_t gotcap)
{
    static fy_cli_run_opts_t o;
    char tgt[400];
    if (fy_cli_run_parse(&o, argc, argv, cur_env, err, FY_CLI_ERR_MAX) != 0)
        return -1;
    if (o.help) {
        snprintf(got, gotcap, "help");
    } else {
        size_t w = (size_t)snprintf(got, gotcap, "cmd=[");
        for (char **a = o.cmd; *a != NULL; a++)
            w += (size_t)snprintf(got + w, gotcap - w, "%s%s", a == o.cmd ? "" : ",", *a);
        describe_target(&o.t, tgt, sizeof(tgt));
        w += (size_t)snprintf(got + w, gotcap - w, "] %s", tgt);
        if (o.job_timeout_ms != 0)
            w += (size_t)snprintf(got + w, gotcap - w, " job-timeout=%ld", o.job_timeout_ms);
        if (o.kill_after_ms != 10000)
            w += (size_t)snprintf(got + w, gotcap - w, " kill-after=%ld", o.kill_after_ms);
        if (o.lock_file != NULL)
            w += (size_t)snprintf(got + w, gotcap - w, " lock=%s", o.lock_file);
        if (o.stderr_lines != 5)
            w += (size_t)snprintf(got + w, gotcap - w, " stderr-lines=%u", o.stderr_lines);
        if (o.textfile_dir != NULL)
            snprintf(got + w, gotcap - w, " textfile=%s", o.textfile_dir);
    }
    return 0;
}

static void check_args_table(const args_case_t *cases, size_t n, parse_describe_fn parse)
{
    for (size_t i = 0; i < n; i++) {
        const args_case_t *c = &cases[i];
        char buf[512], *argv[MAXARGS], err[FY_CLI_ERR_MAX], got[512];
        int argc = split(c->args, buf, sizeof(buf), argv);
        int rc = parse(argc, argv, err, got, sizeof(got));
        if (c->err) {
            if (rc == 0)
                fail_msg("%s: accepted, want error %s", c->note, c->want);
            if (strcmp(err, c->want) != 0)
                fail_msg("%s: error '%s', want '%s'", c->note, err, c->want);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: unexpected error %s", c->note, err);
        if (strcmp(got, c->want) != 0)
            fail_msg("%s: got '%s', want '%s'", c->note, got, c->want);
    }
}

static void test_push_args(void **state)
{
    (void)state;
    check_args_table(push_cases, sizeof(push_cases) / sizeof(push_cases[0]), push_describe);
}

static void test_run_args(void **state)
{
    (void)state;
    check_args_table(run_cases, sizeof(run_cases) / sizeof(run_cases[0]), run_describe);
}

static void test_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
        const env_case_t *c = &env_cases[i];
        char ebuf[512], *env[MAXARGS];
        split(c->env, ebuf, sizeof(ebuf), env);
        cur_env = env;
        args_case_t a = {c->args, c->want, c->err, c->note};
        check_args_table(&a, 1, strncmp(c->args, "push", 4) == 0 ? push_describe : run_describe);
        cur_env = NULL;
    }
}

static void test_instance_hostname(void **state)
{
    (void)state;
    static fy_cli_run_opts_t o;
    char host[256] = "", err[FY_CLI_ERR_MAX];
    char *argv[] = {"run", "--gateway=http://gw", "--job=j", "--instance-hostname", "true", NULL};
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    assert_int_equal(fy_cli_run_parse(&o, 5, argv, NULL, err, sizeof(err)), 0);
    assert_int_equal(o.t.nlabels, 1);
    assert_memory_equal(o.t.labels[0].name, "instance", 8);
    assert_string_equal(o.t.labels[0].value, host);
}

typedef struct {
    const char *gateway, *job;
    const char *labels[6]; /* name=value strings, NULL-terminated */
    const char *url;
    const char *note;
} url_case_t;

static const url_case_t url_cases[] = {
    {"http://gw:9091", "backup", {NULL}, "http://gw:9091/metrics/job/backup", "plain job"},
    {"http://gw:9091///", "backup", {NULL}, "http://gw:9091/metrics/job/backup", "trailing slashes of the gateway"},
    {"https://u:p@gw/pg/", "b", {NULL}, "https://u:p@gw/pg/metrics/job/b", "credentials and route prefix kept"},
    {"http://gw",
     "b",
     {"instance=db-1.example.com", "tier=A_b~c", NULL},
     "http://gw/metrics/job/b/instance/db-1.example.com/tier/A_b~c",
     "unreserved bytes stay plain, order kept"},
    {"http://gw",
     "b",
     {"path=/var/tmp", NULL},
     "http://gw/metrics/job/b/path@base64/L3Zhci90bXA",
     "slash: the Pushgateway README example"},
    {"http://gw", "b", {"e=", NULL}, "http://gw/metrics/job/b/e@base64/=", "empty value is ="},
    {"http://gw", "/var/tmp", {NULL}, "http://gw/metrics/job@base64/L3Zhci90bXA", "job with a slash"},
    {"http://gw", "a b", {NULL}, "http://gw/metrics/job@base64/YSBi", "space"},
    {"http://gw",
     "b",
     {"x=.", "y=..", "z=...", NULL},
     "http://gw/metrics/job/b/x@base64/Lg/y@base64/Li4/z/...",
     "dot segments would be cleaned by the server; three dots would not"},
    {"http://gw",
     "b",
     {"q=a?b", "h=a#b", "p=100%", "s=a+b", NULL},
     "http://gw/metrics/job/b/q@base64/YT9i/h@base64/YSNi/p@base64/MTAwJQ/s@base64/YSti",
     "URL syntax characters"},
    {"http://gw",
     "b",
     {"name=\xce\xa0\xcf\x81\xce\xbf\xce\xbc\xce\xb7\xce\xb8\xce\xb5\xcf\x8d\xcf\x82", NULL},
     "http://gw/metrics/job/b/name@base64/zqDPgc6_zrzOt864zrXPjc-C",
     "UTF-8, URL-safe alphabet (- and _)"},
};

static void test_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const url_case_t *c = &url_cases[i];
        fy_cli_target_t t;
        char buf[512], err[FY_CLI_ERR_MAX];
        memset(&t, 0, sizeof(t));
        t.gateway = c->gateway;
        t.job = c->job;
        for (size_t k = 0; c->labels[k] != NULL; k++)
            if (parse_label(&t, c->labels[k], err, sizeof(err)) != 0)
                fail_msg("%s: label %s: %s", c->note, c->labels[k], err);
        size_t need = fy_cli_url(&t, buf, sizeof(buf));
        if (strcmp(buf, c->url) != 0)
            fail_msg("%s: got %s, want %s", c->note, buf, c->url);
        assert_int_equal(need, strlen(c->url));
        /* cut short: snprintf semantics, always NUL-terminated */
        char small[10];
        assert_int_equal(fy_cli_url(&t, small, sizeof(small)), need);
        assert_int_equal(strlen(small), sizeof(small) - 1);
        assert_memory_equal(small, c->url, sizeof(small) - 1);
    }
}

/* The server's parser reads back every grouping key the client writes, whatever bytes the values hold. */
static void test_url_round_trip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "",        "a",       "/",
        "//",      "a/b/",    ".",
        "..",      "...",     "=",
        "==",      "@base64", "a@base64",
        " ",       "\t\n",    "%2F",
        "a+b%25c", "é/ü",     "~",
        "-_",      "?#&",     "\\",
        "\x7f",    "0",       "long value with / and = and spaces, long enough to span several base64 chunks of forty-eight bytes",
    };
    size_t nv = sizeof(values) / sizeof(values[0]);
    for (size_t i = 0; i < nv; i++) {
        if (values[i][0] == '\0')
            continue; /* an empty job is a usage error, not a URL */
        for (size_t k = 0; k < nv; k++) {
            fy_cli_target_t t;
            char lab[256], url[1024], err[FY_GK_ERR_MAX];
            memset(&t, 0, sizeof(t));
            t.gateway = "http://gw";
            t.job = values[i];
            snprintf(lab, sizeof(lab), "v=%s", values[k]);
            assert_int_equal(parse_label(&t, lab, err, sizeof(err)), 0);
            assert_true(fy_cli_url(&t, url, sizeof(url)) < sizeof(url));
            /* what the router hands the handler: job segment, @base64 or not, then the rest with its slash */
            const char *p = url + strlen("http://gw/metrics/job");
            int b64 = strncmp(p, "@base64", 7) == 0;
            p += b64 ? 8 : 1;
            size_t jl = strcspn(p, "/");
            char scratch[1024];
            fy_gk_label_t out[8];
            size_t n;
            if (fy_groupkey_parse(p, jl, b64, p + jl, strlen(p + jl), 0, scratch, out, &n, err) != 0)
                fail_msg("job %s, value %s: %s rejected: %s", values[i], values[k], url, err);
            assert_int_equal(n, 2);
            /* sorted: job, v */
            assert_int_equal(out[0].value_len, strlen(values[i]));
            assert_memory_equal(out[0].value, values[i], out[0].value_len);
            assert_int_equal(out[1].value_len, strlen(values[k]));
            assert_memory_equal(out[1].value, values[k], out[1].value_len);
        }
    }
}

static void test_b64(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } t[] = {
        {"", ""}, {"a", "YQ"}, {"ab", "YWI"}, {"abc", "YWJj"}, {"abcd", "YWJjZA"}, {"\xff\xef", "_-8"}, {"\xfb\xff", "-_8"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[16];
        size_t n = fy_cli_b64url(t[i].in, strlen(t[i].in), out);
        assert_int_equal(n, strlen(t[i].out));
        assert_memory_equal(out, t[i].out, n);
    }
}

static void test_policy(void **state)
{
    (void)state;
    struct {
        long status;
        int retry, exit;
        const char *note;
    } t[] = {
        {200, 0, FY_CLI_OK, "checked push"},
        {202, 0, FY_CLI_OK, "delete, or push without the consistency check"},
        {0, 1, FY_CLI_UNREACHABLE, "no answer"},
        {400, 0, FY_CLI_REJECTED, "bad body: retrying cannot help"},
        {401, 0, FY_CLI_REJECTED, "wrong credentials"},
        {404, 0, FY_CLI_REJECTED, "wrong route prefix"},
        {500, 1, FY_CLI_UNREACHABLE, "server error"},
        {503, 1, FY_CLI_UNREACHABLE, "not ready yet (loading persistence)"},
        {307, 0, FY_CLI_UNREACHABLE, "redirects are not followed"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (fy_cli_retryable(t[i].status) != t[i].retry || fy_cli_exit_code(t[i].status) != t[i].exit)
            fail_msg("%s: status %ld", t[i].note, t[i].status);
    }
    static const long backoff[] = {250, 500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (unsigned n = 1; n <= 8; n++)
        assert_int_equal(fy_cli_backoff_ms(n), backoff[n - 1]);
    assert_int_equal(fy_cli_backoff_ms(20), 8000);
}

static void test_duration(void **state)
{
    (void)state;
    struct {
        const char *in;
        long ms;
    } t[] = {
        {"10s", 10000}, {"10", 10000}, {"1.5", 1500}, {"500ms", 500}, {"2m", 120000}, {"0", 0},
        {"", -1},       {"s", -1},     {"10h", -1},   {"-1s", -1},    {"nan", -1},    {"25h", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (fy_cli_parse_duration(t[i].in) != t[i].ms)
            fail_msg("duration \"%s\": got %ld, want %ld", t[i].in, fy_cli_parse_duration(t[i].in), t[i].ms);
}

static void test_redact(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } t[] = {
        {"http://gw:9091/metrics/job/j", "http://gw:9091/metrics/job/j"},
        {"https://user:s3cret@gw/metrics/job/j", "https://user:xxxxx@gw/metrics/job/j"},
        {"https://user@gw/metrics/job/j", "https://user@gw/metrics/job/j"},
        {"http://gw/metrics/job/a@base64/YQ", "http://gw/metrics/job/a@base64/YQ"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[128];
        fy_cli_redact(t[i].in, out, sizeof(out));
        assert_string_equal(out, t[i].out);
    }
}

/* Every sample line of a rendered exposition, in order, "|"-joined; HELP and TYPE lines are checked by parsing. */
static void samples(const char *text, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = '\0';
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (p[0] != '#')
            w += (size_t)snprintf(out + w, cap - w, "%s%.*s", w ? "|" : "", (int)n, p);
        p += n + (nl != NULL);
    }
}

/* What the gateway runs on it: a valid text exposition, one sample per family. */
static void assert_parses(const char *out, size_t n, size_t families)
{
    fy_body_t body;
    fy_parse_error_t perr;
    assert_int_equal(fy_test_parse(fy_parse_text, out, n, &body, &perr), 0);
    assert_int_equal(body.nfamilies, families);
    assert_int_equal(body.nseries, body.nfamilies);
}

static void test_outcome(void **state)
{
    (void)state;
    struct {
        fy_cli_outcome_t o;
        const char *labels;
        const char *want; /* the sample lines */
        const char *note;
    } t[] = {
        {{1700000000.25, 1700000012.5, 0, 0, 0, "ignored after a success"},
         NULL,
         "job_running 0|job_start_time_seconds 1700000000.250|job_duration_seconds 12.250000|job_exit_code 0|"
         "job_killed_by_signal 0|job_timed_out 0|job_last_success_timestamp_seconds 1700000012.500",
         "success: last success is the end time; no stderr tail"},
        {{1700000000, 1700000001, 3, 0, 0, NULL},
         NULL,
         "job_running 0|job_start_time_seconds 1700000000.000|job_duration_seconds 1.000000|job_exit_code 3|"
         "job_killed_by_signal 0|job_timed_out 0",
         "failure: no last-success family at all; stderr not captured, no tail"},
        {{1700000000, 1699999999, 143, 15, 0, ""},
         NULL,
         "job_running 0|job_start_time_seconds 1700000000.000|job_duration_seconds 0.000000|job_exit_code 143|"
         "job_killed_by_signal 15|job_timed_out 0|job_stderr_tail_info{stderr=\"\"} 1",
         "SIGTERM: 128+15; a clock step back gives duration 0; an empty tail still replaces an older one"},
        {{1700000000, 1700000060, 124, 9, 1, "line \"one\"\nback\\slash"},
         NULL,
         "job_running 0|job_start_time_seconds 1700000000.000|job_duration_seconds 60.000000|job_exit_code 124|"
         "job_killed_by_signal 9|job_timed_out 1|job_stderr_tail_info{stderr=\"line \\\"one\\\"\\nback\\\\slash\"} 1",
         "timed out: 124, the signal that ended it, the tail escaped"},
        {{1700000000, 1700000001, 2, 0, 0, "x"},
         "{job=\"b\",db=\"main\"}",
         "job_running{job=\"b\",db=\"main\"} 0|job_start_time_seconds{job=\"b\",db=\"main\"} 1700000000.000|"
         "job_duration_seconds{job=\"b\",db=\"main\"} 1.000000|job_exit_code{job=\"b\",db=\"main\"} 2|"
         "job_killed_by_signal{job=\"b\",db=\"main\"} 0|job_timed_out{job=\"b\",db=\"main\"} 0|"
         "job_stderr_tail_info{job=\"b\",db=\"main\",stderr=\"x\"} 1",
         "textfile: the grouping key on every series"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[4096], got[4096];
        size_t n = fy_cli_outcome_render(&t[i].o, t[i].labels, out, sizeof(out));
        assert_int_equal(n, strlen(out));
        samples(out, got, sizeof(got));
        if (strcmp(got, t[i].want) != 0)
            fail_msg("%s:\ngot:  %s\nwant: %s", t[i].note, got, t[i].want);
        size_t fam = 6 + (t[i].o.exit_code == 0 || t[i].o.stderr_tail != NULL);
        assert_parses(out, n, fam);
        assert_int_equal(fy_cli_outcome_render(&t[i].o, t[i].labels, out, 10), n); /* cut, but counted */
        assert_int_equal(strlen(out), 9);
    }
}

static void test_start_skip(void **state)
{
    (void)state;
    char out[1024], got[1024];
    size_t n = fy_cli_start_render(1700000000.5, out, sizeof(out));
    samples(out, got, sizeof(got));
    assert_string_equal(got, "job_running 1|job_start_time_seconds 1700000000.500");
    assert_parses(out, n, 2);
    n = fy_cli_skip_render(1700000001, out, sizeof(out));
    samples(out, got, sizeof(got));
    assert_string_equal(got, "job_last_skipped_timestamp_seconds 1700000001.000");
    assert_parses(out, n, 1);
}

static void test_stderr_tail(void **state)
{
    (void)state;
    struct {
        const char *in;
        unsigned lines;
        size_t max;
        const char *want;
        const char *note;
    } t[] = {
        {"", 5, 1024, "", "nothing written"},
        {"a\nb\nc\n", 5, 1024, "a\nb\nc", "fewer lines than kept; the last newline dropped"},
        {"a\nb\nc\nd\n", 2, 1024, "c\nd", "the last two lines"},
        {"a\nb\nc\nd", 2, 1024, "c\nd", "no final newline"},
        {"a\n\n\n", 2, 1024, "\n", "empty lines count"},
        {"0123456789\n", 1, 4, "...6789", "too long: the end is kept, marked"},
        {"\xce\xa0\xce\xa0\xce\xa0", 1, 3, "...\xce\xa0", "not cut inside a character"},
        {"bad \xff\xfe utf8 \xed\xa0\x80 \xc0\xaf", 1, 1024, "bad ?? utf8 ??? ??", "invalid UTF-8 and surrogates"},
        {"tab\there\r\x1b[31mred\x7f", 1, 1024, "tab\there??[31mred?", "control characters but tab"},
        {"\xf0\x9f\x98\x80 ok", 1, 1024, "\xf0\x9f\x98\x80 ok", "4-byte UTF-8 kept"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[1100];
        size_t n = fy_cli_stderr_tail(t[i].in, strlen(t[i].in), t[i].lines, t[i].max, out);
        if (strcmp(out, t[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", t[i].note, out, t[i].want);
        assert_int_equal(n, strlen(t[i].want));
    }
}

static void test_textfile_name(void **state)
{
    (void)state;
    static fy_cli_target_t a, b, c;
    a.job = b.job = "nightly/backup";
    c.job = "x";
    b.labels[0] = (fy_cli_label_t){"db", 2, "main", 0};
    b.nlabels = 1;
    char na[128], nb[128], nc[128], la[256];
    fy_cli_textfile_name(&a, na, sizeof(na));
    fy_cli_textfile_name(&b, nb, sizeof(nb));
    fy_cli_textfile_name(&c, nc, sizeof(nc));
    assert_int_equal(strncmp(na, "ferry_run_nightly_backup_", 25), 0); /* readable, no '/' */
    assert_int_equal(strlen(na), 25 + 16 + 5);
    assert_string_equal(na + strlen(na) - 5, ".prom");
    assert_string_not_equal(na, nb); /* the labels are in the hash */
    assert_int_equal(strncmp(nc, "ferry_run_x_", 12), 0);
    fy_cli_labels_render(&b, la, sizeof(la));
    assert_string_equal(la, "{job=\"nightly/backup\",db=\"main\"}");
    c.job = "q\"\\\n";
    fy_cli_labels_render(&c, la, sizeof(la));
    assert_string_equal(la, "{job=\"q\\\"\\\\\\n\"}");
}

static void test_span(void **state)
{
    (void)state;
    struct {
        const char *in;
        long ms;
    } t[] = {
        {"90", 90000},   {"90s", 90000},  {"1.5s", 1500}, {"250ms", 250},
        {"15m", 900000}, {"2h", 7200000}, {"0", 0},       {"8784h", 8784L * 3600000},
        {"8785h", -1},   {"", -1},        {"-1s", -1},    {"+1s", -1},
        {"1d", -1},      {"h", -1},       {"inf", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (fy_cli_parse_span(t[i].in) != t[i].ms)
            fail_msg("span \"%s\": got %ld, want %ld", t[i].in, fy_cli_parse_span(t[i].in), t[i].ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_args),
        cmocka_unit_test(test_run_args),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_url_round_trip),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_instance_hostname),
        cmocka_unit_test(test_start_skip),
        cmocka_unit_test(test_stderr_tail),
        cmocka_unit_test(test_textfile_name),
        cmocka_unit_test(test_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
