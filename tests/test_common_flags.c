/*
 * test_common_flags.c: kingpin behaviour of the command line as 1.5.1 shows it, Go durations, the status map, and the
 * man page of --help-man.
 */
#define _GNU_SOURCE /* the included src/common/cpus.c uses CPU_ALLOC; it must come before any system header */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/common/cpus.c"
#include "../src/common/flags.c"

typedef struct {
    const char *args[6];
    const char *err; /* NULL: parses */
    const char *note;
} fl_case_t;

static const fl_case_t cases[] = {
    {{"--bogus"}, "unknown long flag '--bogus'", "unknown flag"},
    {{"-x"}, "unknown short flag '-x'", "unknown short flag"},
    {{"--log.level=x"}, "unrecognized log level \"x\"", "bad level"},
    {{"--log.format=JSON"}, "unrecognized log format \"JSON\"", "enum values are case-sensitive"},
    {{"--log.level"}, "expected argument for flag '--log.level'", "missing value at the end"},
    {{"--web.telemetry-path", "--version"}, "expected argument for flag '--web.telemetry-path'", "a flag is no value"},
    {{"--persistence.interval=5x"}, "time: unknown unit \"x\" in duration \"5x\"", "bad duration unit"},
    {{"--persistence.interval=5"}, "time: missing unit in duration \"5\"", "duration without unit"},
    {{"--persistence.file=a", "--persistence.file=b"}, "flag 'persistence.file' cannot be repeated", "repeat"},
    {{"--persistence.durable"},
     "--persistence.durable needs --persistence.file (the log is kept next to it)",
     "durable mode without a file"},
    {{"foo"}, "unexpected foo", "positional argument"},
    {{"--web.enable-lifecycle=true"}, "unexpected true", "bools take no =value"},
    {{"--no-log.level"}, "unknown long flag '--no-log.level'", "--no- only for bools"},
    {{"--web.external-url=::bad"}, "invalid URL: parse \"::bad\": missing protocol scheme", "bad URL"},
    {{"--web.threads=0"}, "--web.threads must be between 1 and 1024, got 0", "threads range"},
    {{"--push.max-body-bytes=1k"}, "strconv.ParseUint: parsing \"1k\": invalid syntax", "sizes are plain integers"},
    {{"--web.max-header-bytes=1023"}, "--web.max-header-bytes must be between 1024 and 417791, got 1023", "below the range"},
    {{"--web.max-header-bytes=417792"},
     "--web.max-header-bytes must be between 1024 and 417791, got 417792",
     "h2o answers 400 itself from H2O_MAX_REQLEN on"},
    {{"--web.auth-workers=0"}, "--web.auth-workers must be between 1 and 64, got 0", "at least one password checker"},
    {{"--web.idle-timeout=-1s"}, "--web.idle-timeout must not be negative, got -1s", "durations are not negative"},
    {{"--push.max-grouping-labels=-1"}, "strconv.ParseUint: parsing \"-1\": invalid syntax", "label count not negative"},
    {{"--push.max-grouping-key-bytes=8KiB"}, "strconv.ParseUint: parsing \"8KiB\": invalid syntax", "key bytes plain integer"},
    {{"--push.max-grouping-labels=0", "--push.max-grouping-key-bytes=0"}, NULL, "0: no limit"},
    {{"--cluster.peer=a:1"},
     "--cluster.peer needs --cluster.listen-address (the port peers reach this replica at)",
     "peers without a peer port"},
    {{"--cluster.write-quorum=most"},
     "--cluster.write-quorum must be majority, all or a number from 1 to 16, got most",
     "quorum words"},
    {{"--cluster.write-quorum=0"},
     "--cluster.write-quorum must be majority, all or a number from 1 to 16, got 0",
     "a quorum counts the replica that took the change"},
    {{"--cluster.tls-config=peers.yml"},
     "--cluster.tls-config needs --cluster.listen-address (TLS is for the peer links)",
     "TLS without a cluster"},
    {{"--cluster.replicas=17"}, "--cluster.replicas must be between 0 and 16, got 17", "a 4-bit clock slot each"},
    {{"--cluster.listen-address=:9095", "--cluster.peer=a:1", "--cluster.peer=b:1"}, NULL, "peer repeats"},
    {{"--push.enable-utf8-names"}, NULL, "Pushgateway 1.11's flag is accepted"},
    {{"--no-push.enable-utf8-names"}, NULL, "its default, spelt out, is fine"},
    {{"--web.systemd-socket", "--web.probes-without-auth"}, NULL, "socket activation, open probes"},
    {{"--web.probes-without-auth=true"}, "unexpected true", "a bool as any other"},
    {{"--no-web.enable-lifecycle", "--version"}, NULL, "--no-bool"},
    {{"--web.telemetry-path="}, NULL, "empty value"},
    {{"-h", "--web.listen-address", "127.0.0.1:1", "--web.listen-address=:2"}, NULL, "help, repeatable listen"},
};

static void test_errors(void **state)
{
    (void)state;
    static fy_flags_t f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[8] = {"ferry"}, err[256] = "";
        int argc = 1;
        for (int k = 0; cases[i].args[k] != NULL; k++)
            argv[argc++] = (char *)cases[i].args[k];
        int rc = fy_flags_parse(&f, argc, argv, err, sizeof(err));
        if (cases[i].err == NULL && rc != 0)
            fail_msg("%s: unexpected error %s", cases[i].note, err);
        if (cases[i].err != NULL && (rc == 0 || strcmp(err, cases[i].err) != 0))
            fail_msg("%s: got '%s', want '%s'", cases[i].note, rc == 0 ? "(ok)" : err, cases[i].err);
    }
}

static void collect(void *ctx, const char *name, const char *value)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 4096 - n, "%s=%s;", name, value);
}

static void test_defaults_and_map(void **state)
{
    (void)state;
    static fy_flags_t f;
    char *argv[] = {"ferry",
                    "--web.listen-address=127.0.0.1:19295",
                    "--web.listen-address",
                    "127.0.0.1:19296",
                    "--web.enable-admin-api",
                    "--web.threads=3",
                    "--persistence.interval=90m"};
    char err[256], map[4096] = "";
    assert_int_equal(fy_flags_parse(&f, 7, argv, err, sizeof(err)), 0);
    assert_int_equal(f.nlisten, 2);
    assert_int_equal(f.enable_admin_api, 1);
    assert_int_equal(f.enable_lifecycle, 0);
    assert_int_equal(f.threads, 3);
    assert_string_equal(f.persistence_file, "");
    assert_int_equal(f.max_body_bytes, 64u << 20);
    assert_int_equal(f.max_grouping_labels, 64);
    assert_int_equal(f.max_grouping_key_bytes, 8192);
    fy_flags_each(&f, "/pg", collect, map);
    assert_string_equal(
        map, "cluster.ack-timeout=5s;cluster.advertise-address=;cluster.label=;cluster.listen-address=;"
             "cluster.max-clock-offset=500ms;cluster.peer=;cluster.peer-timeout=2s;cluster.replicas=0;"
             "cluster.tls-config=;cluster.tombstone-retention=1h0m0s;cluster.write-quorum=majority;"
             "log.format=logfmt;log.level=info;persistence.allow-bad-file=false;persistence.durable=false;persistence."
             "file=;persistence.interval=1h30m0s;"
             "push.default-interval=0s;push.default-ttl=0s;push.disable-consistency-check=false;"
             "push.enable-utf8-names=false;push.interval-grace=30s;"
             "push.max-body-bytes=67108864;push.max-grouping-key-bytes=8192;push.max-grouping-labels=64;"
             "push.max-label-value-length=32768;push.max-series-per-push=100000;store.max-groups=1000000;"
             "store.max-series=10000000;web.auth-workers=1;web.config.file=;web.enable-admin-api=true;"
             "web.enable-lifecycle=false;web.enable-openmetrics=false;web.external-url=;web.idle-timeout=10s;"
             "web.listen-address=127.0.0.1:19295,127.0.0.1:19296;web.max-header-bytes=65536;"
             "web.max-inflight-bytes=268435456;web.probes-without-auth=false;web.read-header-timeout=10s;web.read-timeout=0s;"
             "web.reuseport=true;web.route-prefix=/pg;"
             "web.systemd-socket=false;web.telemetry-path=/metrics;web.threads=3;");
    char *argv2[] = {"ferry"};
    assert_int_equal(fy_flags_parse(&f, 1, argv2, err, sizeof(err)), 0);
    assert_string_equal(f.listen_joined, ":9091");
    assert_true(f.threads >= 1);
}

/* --web.threads defaults to the CPUs this process may run on (its affinity mask, lowered to a cgroup CPU quota:
 * test_common_cpus.c), not to every online CPU. */
static void test_threads_default_affinity(void **state)
{
    (void)state;
    cpu_set_t all, one;
    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    fy_flags_t f;
    char err[256];
    char *argv[] = {"ferry"};
    assert_int_equal(fy_flags_parse(&f, 1, argv, err, sizeof(err)), 0);
    char how[512];
    assert_int_equal(f.threads, fy_cpus_default("", how, sizeof(how)));
    assert_true(f.threads <= CPU_COUNT(&all));
    int first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(fy_flags_parse(&f, 1, argv, err, sizeof(err)), 0);
    assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
    assert_int_equal(f.threads, 1); /* as `taskset -c N ferry` */
    assert_string_equal(f.threads_how, "affinity mask");
    char *argv2[] = {"ferry", "--web.threads=3"};
    assert_int_equal(fy_flags_parse(&f, 2, argv2, err, sizeof(err)), 0);
    assert_int_equal(f.threads, 3); /* an explicit count wins over the mask */
    assert_string_equal(f.threads_how, "--web.threads");
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } t[] = {{"5m", "5m0s"},     {"0", "0s"},        {"2s", "2s"},       {"1.5h", "1h30m0s"},       {"500ms", "500ms"},
             {"1500ms", "1.5s"}, {"1h1s", "1h0m1s"}, {"100ns", "100ns"}, {"1.5us", "1.5\xc2\xb5s"}, {"-2m", "-2m0s"},
             {"36h", "36h0m0s"}, {"2.25s", "2.25s"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t ns;
        char err[128], out[64];
        assert_int_equal(fy_parse_duration(t[i].in, &ns, err, sizeof(err)), 0);
        fy_format_duration(ns, out, sizeof(out));
        assert_string_equal(out, t[i].out);
    }
    int64_t ns;
    char err[128];
    assert_int_equal(fy_parse_duration("", &ns, err, sizeof(err)), -1);
    assert_string_equal(err, "time: invalid duration \"\"");
    assert_int_equal(fy_parse_duration("m", &ns, err, sizeof(err)), -1);
    assert_string_equal(err, "time: invalid duration \"m\"");
}

/* The roff escaping of the man page, on its own: what a help text may contain and what groff must be given. */
static void test_roff_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int line_start;
        const char *out, *note;
    } t[] = {
        {"--web.threads", 0, "\\-\\-web.threads", "a minus, not a hyphen: the option reads and searches as typed"},
        {"a\\b", 0, "a\\eb", "a backslash is groff's escape character"},
        {".TH x", 1, "\\&.TH x", "a line starting with '.' would be a request"},
        {"'x'", 1, "\\&'x'", "... or with '\\'' (the no-break control character)"},
        {".x", 0, ".x", "mid-line, a '.' is text"},
        {"1.5.1: ok.", 1, "1.5.1: ok.", "dots inside a line stay"},
        {"", 1, "", "nothing in, nothing out"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *buf = NULL;
        size_t n = 0;
        FILE *out = open_memstream(&buf, &n);
        assert_non_null(out);
        roff(out, t[i].in, t[i].line_start);
        fclose(out);
        if (strcmp(buf, t[i].out) != 0)
            fail_msg("%s: roff(\"%s\") gave \"%s\", want \"%s\"", t[i].note, t[i].in, buf, t[i].out);
        free(buf);
    }
}

static char *man_page(const char *date)
{
    static const fy_command_t cmds[] = {{"push", "--job=NAME [FILE|-]", "Push a file."}};
    fy_man_t m = {"ferry", "1.2.3", date, cmds, 1};
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    assert_non_null(out);
    fy_flags_man(out, &m);
    fclose(out);
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

/* --help-man: a man page, from the flag table, so that the packaged ferry.1 lists exactly the flags ferry takes. */
static void test_man_page(void **state)
{
    (void)state;
    static fy_flags_t f;
    char err[256];
    char *argv[] = {"ferry", "--help-man"};
    assert_int_equal(fy_flags_parse(&f, 2, argv, err, sizeof(err)), 0);
    assert_int_equal(f.help_man, 1);
    assert_int_equal(f.help, 0); /* --help-man is not the plain help any more */

    char *page = man_page("20261207-06:35:02");
    /* the header: name, section, the build's day (reproducible with SOURCE_DATE_EPOCH), the version */
    assert_non_null(strstr(page, "\n.TH ferry 1 \"2026-12-07\" \"ferry 1.2.3\" \"User Commands\"\n"));
    static const char *const sections[] = {".SH NAME\nferry \\- ", ".SH SYNOPSIS\n", ".SH DESCRIPTION\n", ".SH OPTIONS\n",
                                           ".SH COMMANDS\n",       ".SH SIGNALS\n",  ".SH EXIT STATUS\n", ".SH SEE ALSO\n"};
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        if (count(page, sections[i]) != 1)
            fail_msg("section %s: %zu times, want once", sections[i], count(page, sections[i]));
    assert_non_null(strstr(page, ".B ferry push\n\\-\\-job=NAME [FILE|\\-]\n"));
    /* every flag once, as a tagged paragraph: bold name, italic default ("" when empty), help text on the next line */
    for (size_t i = 0; i < NDEFS; i++) {
        char want[512], esc[128];
        size_t k = 0;
        for (const char *c = defs[i].name; *c != '\0' && k + 3 < sizeof(esc); c++)
            k += (size_t)snprintf(esc + k, sizeof(esc) - k, *c == '-' ? "\\-" : "%c", *c);
        if (defs[i].type == T_BOOL)
            snprintf(want, sizeof(want), ".TP\n\\fB\\-\\-%s%s\\fR\n", strcmp(defs[i].def, "true") == 0 ? "[no\\-]" : "", esc);
        else
            snprintf(want, sizeof(want), ".TP\n\\fB\\-\\-%s\\fR=\\fI", esc);
        if (count(page, want) != 1)
            fail_msg("flag --%s: \"%s\" found %zu times, want once", defs[i].name, want, count(page, want));
    }
    assert_non_null(strstr(page, "\\fB\\-\\-persistence.file\\fR=\\fI\"\"\\fR\n"));
    assert_non_null(strstr(page, "\\fB\\-\\-web.listen\\-address\\fR=\\fI:9091\\fR ...\n"));
    assert_non_null(strstr(page, ".TP\n.B \\-\\-version\n"));
    /* what groff would take for a request: only the macros the page means */
    static const char *const macros[] = {".\\\" ", ".TH ", ".SH ", ".TP", ".B ", ".BR ", ".RI ", ".PP", ".br"};
    for (const char *line = page; *line != '\0'; line = strchr(line, '\n') + 1) {
        int ok = line[0] != '.' && line[0] != '\'';
        for (size_t i = 0; !ok && i < sizeof(macros) / sizeof(macros[0]); i++)
            ok = strncmp(line, macros[i], strlen(macros[i])) == 0;
        if (!ok)
            fail_msg("a line reads as an unintended request: %.60s", line);
        if (strchr(line, '\n') == NULL)
            fail_msg("the page does not end with a newline");
    }
    free(page);
    page = man_page("unknown"); /* a build outside CMake */
    assert_non_null(strstr(page, "\n.TH ferry 1 \"unknown\" \"ferry 1.2.3\""));
    free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_defaults_and_map), cmocka_unit_test(test_threads_default_affinity),
        cmocka_unit_test(test_durations), cmocka_unit_test(test_roff_escapes),     cmocka_unit_test(test_man_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
