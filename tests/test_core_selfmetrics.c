/*
 * test_core_selfmetrics.c: the gateway's own metrics (src/selfmetrics.c, spec 2.5, E01, E03): the method label,
 * request counters summed over threads and sorted by label values, the push summaries (only observed methods,
 * quantiles over the window with client_golang's rank rule, NaN for an empty window), limit counters, durable
 * mode's log families, and the collected body: families sorted by name with the Pushgateway 1.5.1 HELP texts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_testlib.h"

#include "../src/core/selfmetrics.c"

#define NOW 2000000000000000000ll

static const struct {
    const char *m;
    fy_method_t want;
    const char *note;
} method_cases[] = {
    {"GET", FY_M_GET, ""},
    {"PUT", FY_M_PUT, ""},
    {"HEAD", FY_M_HEAD, ""},
    {"POST", FY_M_POST, ""},
    {"DELETE", FY_M_DELETE, ""},
    {"CONNECT", FY_M_CONNECT, ""},
    {"OPTIONS", FY_M_OPTIONS, ""},
    {"NOTIFY", FY_M_NOTIFY, ""},
    {"TRACE", FY_M_TRACE, ""},
    {"PATCH", FY_M_PATCH, ""},
    {"get", FY_M_GET, "client_golang's sanitizeMethod lists the lower-case spelling too"},
    {"patch", FY_M_PATCH, "lower-case"},
    {"Get", FY_M_UNKNOWN, "mixed case is not listed"},
    {"PROPFIND", FY_M_UNKNOWN, "WebDAV"},
    {"", FY_M_UNKNOWN, "empty"},
    {"GETX", FY_M_UNKNOWN, "longer"},
    {"GE", FY_M_UNKNOWN, "prefix"},
};

static void test_method(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(method_cases) / sizeof(method_cases[0]); i++) {
        size_t n = strlen(method_cases[i].m);
        fy_method_t got = fy_method_from(fy_guarded(method_cases[i].m, n), n);
        if (got != method_cases[i].want)
            fail_msg("case %zu \"%s\" (%s): got %s", i, method_cases[i].m, method_cases[i].note, method_names[got]);
    }
}

/* Collects and renders the own families as a text scrape of an empty store. */
static char *scrape(fy_selfstats_t *s, int64_t now, uint64_t groups, uint64_t series, fy_body_t *own, void **mem)
{
    *mem = malloc(64 << 10);
    fy_arena_t a;
    fy_arena_init(&a, *mem, 64 << 10);
    assert_int_equal(fy_selfstats_collect(s, &a, now, groups, series, own), 0);
    fy_store_t *st = fy_store_create(NULL);
    char *t = render_text(st, own);
    fy_store_destroy(st);
    return t;
}

/* The lines of t that start with prefix, joined. */
static char *lines(const char *t, const char *prefix)
{
    char *o = calloc(1, strlen(t) + 1), *w = o;
    for (const char *p = t; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p + 1) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            memcpy(w, p, n);
            w += n;
        }
        p += n;
    }
    return o;
}

static void test_requests(void **state)
{
    (void)state;
    fy_selfstats_t s;
    assert_int_equal(fy_selfstats_init(&s, 3, "1.5.1", "rev", "HEAD"), 0);
    fy_selfstats_request(&s, 0, 200, FY_SH_HEALTHY, FY_M_GET);
    fy_selfstats_request(&s, 1, 200, FY_SH_HEALTHY, FY_M_GET);
    fy_selfstats_request(&s, 2, 0, FY_SH_HEALTHY, FY_M_GET); /* unset status counts as 200 */
    fy_selfstats_request(&s, 2, 202, FY_SH_DELETE, FY_M_DELETE);
    fy_selfstats_request(&s, 0, 200, FY_SH_PUSH, FY_M_PUT);
    fy_selfstats_request(&s, 1, 200, FY_SH_PUSH, FY_M_POST);
    fy_selfstats_request(&s, 1, 400, FY_SH_PUSH, FY_M_PUT);
    fy_selfstats_request(&s, 0, 1000, FY_SH_PUSH, FY_M_PUT); /* "1000" sorts before "200" (strings) */
    fy_selfstats_request(&s, 2, 200, FY_SH_API_METRICS, FY_M_GET);
    fy_selfstats_request(&s, 2, 200, FY_SH_STATUS, FY_M_UNKNOWN);
    fy_body_t own;
    void *mem;
    char *t = scrape(&s, NOW, UINT64_MAX, 0, &own, &mem);
    char *got = lines(t, "pushgateway_http_requests_total");
    assert_string_equal(got, "pushgateway_http_requests_total{code=\"1000\",handler=\"push\",method=\"put\"} 1\n"
                             "pushgateway_http_requests_total{code=\"200\",handler=\"api/v1/metrics\",method=\"get\"} 1\n"
                             "pushgateway_http_requests_total{code=\"200\",handler=\"healthy\",method=\"get\"} 3\n"
                             "pushgateway_http_requests_total{code=\"200\",handler=\"push\",method=\"post\"} 1\n"
                             "pushgateway_http_requests_total{code=\"200\",handler=\"push\",method=\"put\"} 1\n"
                             "pushgateway_http_requests_total{code=\"200\",handler=\"status\",method=\"unknown\"} 1\n"
                             "pushgateway_http_requests_total{code=\"202\",handler=\"delete\",method=\"delete\"} 1\n"
                             "pushgateway_http_requests_total{code=\"400\",handler=\"push\",method=\"put\"} 1\n");
    free(got);
    /* no push observed: no summaries (a family appears only after its first observation) */
    assert_null(strstr(t, "pushgateway_http_push_"));
    /* no limit hit: no ferry_limit_rejections_total; UINT64_MAX: no ferry_store_* */
    assert_null(strstr(t, "ferry_"));
    free(t);
    free(mem);
    fy_selfstats_dispose(&s);
}

/* Quantile q of n observations, as beorn7/perks answers before its first flush: sorted[ceil(n*q) - 1], min index 0. */
static void test_summaries(void **state)
{
    (void)state;
    static const struct {
        unsigned n;  /* observations 1..n, on thread i % 2 */
        double q[3]; /* expected 0.1, 0.5, 0.9 quantiles */
        const char *note;
    } t[] = {
        {1, {1, 1, 1}, "one observation"},
        {2, {1, 1, 2}, "ceil(0.2)=1 -> 1st, ceil(1)=1 -> 1st, ceil(1.8)=2 -> 2nd"},
        {10, {1, 5, 9}, "n*q integral: ceil(n*q)-1, not floor(n*q)"},
        {11, {2, 6, 10}, "ceil(1.1)=2, ceil(5.5)=6, ceil(9.9)=10"},
        {100, {10, 50, 90}, "hundred"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_selfstats_t s;
        assert_int_equal(fy_selfstats_init(&s, 2, "v", "r", "b"), 0);
        for (unsigned k = t[i].n; k >= 1; k--) /* in reverse: the order of observation must not matter */
            fy_selfstats_push(&s, k % 2, 0, (double)k, (double)k * 10, NOW);
        fy_body_t own;
        void *mem;
        char *txt = scrape(&s, NOW, UINT64_MAX, 0, &own, &mem);
        const fy_family_t *dur = NULL, *size = NULL;
        for (uint32_t f = 0; f < own.nfamilies; f++) {
            if (fy_str_eq_mem(own.families[f].name, FY_STRLIT("pushgateway_http_push_duration_seconds")))
                dur = &own.families[f];
            if (fy_str_eq_mem(own.families[f].name, FY_STRLIT("pushgateway_http_push_size_bytes")))
                size = &own.families[f];
        }
        assert_non_null(dur);
        assert_non_null(size);
        assert_int_equal(dur->nseries, 1); /* put only: no post series */
        assert_true(fy_str_eq_mem(dur->series[0].labels[0].value, FY_STRLIT("put")));
        for (int q = 0; q < 3; q++) {
            if (dur->series[0].points[q].value != t[i].q[q] || size->series[0].points[q].value != t[i].q[q] * 10)
                fail_msg("case %zu (%s): quantile %g is %g, want %g", i, t[i].note, dur->series[0].points[q].key,
                         dur->series[0].points[q].value, t[i].q[q]);
        }
        assert_int_equal(dur->series[0].count, t[i].n);
        assert_true(dur->series[0].value == (double)t[i].n * (t[i].n + 1) / 2);
        free(txt);
        free(mem);
        fy_selfstats_dispose(&s);
    }
}

static void test_summary_window(void **state)
{
    (void)state;
    fy_selfstats_t s;
    assert_int_equal(fy_selfstats_init(&s, 1, "v", "r", "b"), 0);
    const int64_t min = 60ll * 1000000000ll;
    fy_selfstats_push(&s, 0, 1, 100, 1000, NOW - 11 * min); /* post, out of the window */
    fy_selfstats_push(&s, 0, 0, 7, 70, NOW - 11 * min);     /* put, out of the window */
    fy_selfstats_push(&s, 0, 0, 1, 10, NOW - 10 * min);     /* put, exactly 10 minutes old: still in */
    fy_selfstats_push(&s, 0, 0, 2, 20, NOW);
    fy_body_t own;
    void *mem;
    char *t = scrape(&s, NOW, UINT64_MAX, 0, &own, &mem);
    char *got = lines(t, "pushgateway_http_push_duration_seconds");
    assert_string_equal(got, "pushgateway_http_push_duration_seconds{method=\"post\",quantile=\"0.1\"} NaN\n"
                             "pushgateway_http_push_duration_seconds{method=\"post\",quantile=\"0.5\"} NaN\n"
                             "pushgateway_http_push_duration_seconds{method=\"post\",quantile=\"0.9\"} NaN\n"
                             "pushgateway_http_push_duration_seconds_sum{method=\"post\"} 100\n"
                             "pushgateway_http_push_duration_seconds_count{method=\"post\"} 1\n"
                             "pushgateway_http_push_duration_seconds{method=\"put\",quantile=\"0.1\"} 1\n"
                             "pushgateway_http_push_duration_seconds{method=\"put\",quantile=\"0.5\"} 1\n"
                             "pushgateway_http_push_duration_seconds{method=\"put\",quantile=\"0.9\"} 2\n"
                             "pushgateway_http_push_duration_seconds_sum{method=\"put\"} 10\n"
                             "pushgateway_http_push_duration_seconds_count{method=\"put\"} 3\n");
    free(got);
    free(t);
    free(mem);
    fy_selfstats_dispose(&s);
}

static void test_limits(void **state)
{
    (void)state;
    fy_selfstats_t s;
    assert_int_equal(fy_selfstats_init(&s, 1, "v", "r", "b"), 0);
    fy_selfstats_limit(&s, FY_LIMIT_STORE_GROUPS);
    fy_selfstats_limit(&s, FY_LIMIT_BODY_BYTES);
    fy_selfstats_limit(&s, FY_LIMIT_BODY_BYTES);
    fy_selfstats_limit(&s, FY_LIMIT_LABEL_VALUE_LENGTH);
    fy_body_t own;
    void *mem;
    char *t = scrape(&s, NOW, 12, 345, &own, &mem);
    char *got = lines(t, "ferry_");
    assert_string_equal(got, "ferry_limit_rejections_total{limit=\"push.max-body-bytes\"} 2\n"
                             "ferry_limit_rejections_total{limit=\"push.max-label-value-length\"} 1\n"
                             "ferry_limit_rejections_total{limit=\"store.max-groups\"} 1\n"
                             "ferry_store_groups 12\n"
                             "ferry_store_series 345\n");
    free(got);
    free(t);
    free(mem);
    fy_selfstats_dispose(&s);
}

/* Durable mode's log families: absent unless durable mode opened the log (the default output stays as it was), then
 * 0 and 0; a failure sets the gauge for good and each refused change counts once. */
static void test_wal(void **state)
{
    (void)state;
    static const struct {
        int enabled, failed;
        unsigned errors;
        const char *want;
        const char *note;
    } cases[] = {
        {0, 0, 0, "", "no durable mode: nothing"},
        {0, 1, 3, "", "not enabled: nothing, whatever the fields hold"},
        {1, 0, 0,
         "ferry_persistence_log_errors_total 0\nferry_persistence_log_failed 0\nferry_persistence_log_sync_failures_total 0\n",
         "durable, healthy"},
        {1, 0, 2,
         "ferry_persistence_log_errors_total 2\nferry_persistence_log_failed 0\nferry_persistence_log_sync_failures_total 0\n",
         "refused without a failed log (out of memory building a record)"},
        {1, 1, 7,
         "ferry_persistence_log_errors_total 7\nferry_persistence_log_failed 1\nferry_persistence_log_sync_failures_total 1\n",
         "the log failed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fy_selfstats_t s;
        assert_int_equal(fy_selfstats_init(&s, 1, "v", "r", "b"), 0);
        atomic_store(&s.wal_enabled, cases[i].enabled);
        atomic_store(&s.wal_failed, cases[i].failed);
        atomic_store(&s.wal_sync_failures, (uint64_t)cases[i].failed); /* the failed sync that failed the log */
        for (unsigned k = 0; k < cases[i].errors; k++)
            fy_selfstats_wal_error(&s);
        fy_body_t own;
        void *mem;
        char *t = scrape(&s, NOW, UINT64_MAX, UINT64_MAX, &own, &mem);
        char *got = lines(t, "ferry_persistence_log");
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu (%s): got\n%s", i, cases[i].note, got);
        if (cases[i].enabled)
            assert_non_null(strstr(t, "# TYPE ferry_persistence_log_errors_total counter\n"));
        free(got);
        free(t);
        free(mem);
        fy_selfstats_dispose(&s);
    }
}

/* Persistence health: the two time stamps (0 until the first success) and the two failure counters, each shown only
 * with the part of persistence it watches (--persistence.file; the log with --persistence.durable). */
static void test_persistence_health(void **state)
{
    (void)state;
    static const struct {
        int persist, wal;
        int64_t snap_ns, sync_ns;
        unsigned snap_failures, sync_failures;
        const char *want;
        const char *note;
    } cases[] = {
        {0, 0, 5000000000, 6000000000, 1, 1, "", "no --persistence.file: nothing, whatever the fields hold"},
        {1, 0, 0, 0, 0, 0,
         "ferry_persistence_last_snapshot_success_timestamp_seconds 0\n"
         "ferry_persistence_snapshot_failures_total 0\n",
         "no snapshot yet"},
        {1, 0, 1700000000500000000, 0, 3, 0,
         "ferry_persistence_last_snapshot_success_timestamp_seconds 1.7000000005e+09\n"
         "ferry_persistence_snapshot_failures_total 3\n",
         "a success after three failures"},
        {1, 1, 1700000000000000000, 1700000001250000000, 0, 0,
         "ferry_persistence_last_log_sync_timestamp_seconds 1.70000000125e+09\n"
         "ferry_persistence_last_snapshot_success_timestamp_seconds 1.7e+09\n"
         "ferry_persistence_log_sync_failures_total 0\n"
         "ferry_persistence_snapshot_failures_total 0\n",
         "durable: the log's too, in name order"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fy_selfstats_t s;
        assert_int_equal(fy_selfstats_init(&s, 1, "v", "r", "b"), 0);
        atomic_store(&s.persist_enabled, cases[i].persist);
        atomic_store(&s.wal_enabled, cases[i].wal);
        atomic_store(&s.snap_ok_ns, cases[i].snap_ns);
        atomic_store(&s.wal_sync_ns, cases[i].sync_ns);
        atomic_store(&s.snap_failures, cases[i].snap_failures);
        atomic_store(&s.wal_sync_failures, cases[i].sync_failures);
        fy_body_t own;
        void *mem;
        char *t = scrape(&s, NOW, UINT64_MAX, UINT64_MAX, &own, &mem);
        char *a = lines(t, "ferry_persistence_last_"), *b = lines(t, "ferry_persistence_log_sync"),
             *c = lines(t, "ferry_persistence_snapshot");
        char got[1024];
        snprintf(got, sizeof(got), "%s%s%s", a, b, c);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu (%s): got\n%s", i, cases[i].note, got);
        free(a);
        free(b);
        free(c);
        free(t);
        free(mem);
        fy_selfstats_dispose(&s);
    }
}

/* The web config's loads: absent without --web.config.file (the default output stays as it was); the start-up load,
 * then each reload sets the outcome; a refused one keeps the time of the last success. */
static void test_config_reload(void **state)
{
    (void)state;
    static const struct {
        int ok;
        double at;
        const char *want;
        const char *note;
    } steps[] = {
        {-1, 0, "", "no --web.config.file: nothing"},
        {1, 1700000000, "ferry_config_last_reload_success_timestamp_seconds 1.7e+09\nferry_config_last_reload_successful 1\n",
         "start-up load"},
        {0, 1700000100, "ferry_config_last_reload_success_timestamp_seconds 1.7e+09\nferry_config_last_reload_successful 0\n",
         "a broken file refused: the time stays"},
        {1, 1700000200.5,
         "ferry_config_last_reload_success_timestamp_seconds 1.7000002005e+09\nferry_config_last_reload_successful 1\n",
         "fixed and reloaded"},
    };
    fy_selfstats_t s;
    assert_int_equal(fy_selfstats_init(&s, 1, "v", "r", "b"), 0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i].ok >= 0)
            fy_selfstats_config_reload(&s, steps[i].ok, steps[i].at);
        fy_body_t own;
        void *mem;
        char *t = scrape(&s, NOW, UINT64_MAX, UINT64_MAX, &own, &mem);
        char *got = lines(t, "ferry_config_");
        if (strcmp(got, steps[i].want) != 0)
            fail_msg("step %zu (%s): got\n%s", i, steps[i].note, got);
        if (steps[i].ok >= 0)
            assert_non_null(strstr(t, "# TYPE ferry_config_last_reload_successful gauge\n"));
        free(got);
        free(t);
        free(mem);
    }
    fy_selfstats_dispose(&s);
}

static uint64_t inflight_42(void)
{
    return 42;
}

/* The collected body: families in byte order of their names, HELP and TYPE as Pushgateway 1.5.1 (E01, E03,
 * client_golang's process collector), nseries the total. */
/* A replica with two peers, for the ferry_cluster_* families. */
static void fake_cluster(void *ctx, fy_selfstats_cluster_t *out)
{
    (void)ctx;
    out->ready = 1;
    out->sent = 7;
    out->npeers = 2;
    snprintf(out->peers[0].addr, sizeof(out->peers[0].addr), "ferry-2:9095");
    snprintf(out->peers[1].addr, sizeof(out->peers[1].addr), "ferry-1:9095");
    out->peers[0].connected = 1;
    out->peers[1].lag_seconds = 0.25;
}

static void test_families(void **state)
{
    (void)state;
    static const struct {
        const char *name, *help;
        fy_type_t type;
    } want[] = {
        {"ferry_auth_checks_total",
         "Basic-auth decisions by result: from the caches of recent successes and failures, or by a password hash.",
         FY_TYPE_COUNTER},
        {"ferry_cluster_backlog_bytes", "Bytes of this replica's changes kept to resend to peers that reconnect.", FY_TYPE_GAUGE},
        {"ferry_cluster_changes_applied_total", "Changes taken by other replicas and applied here.", FY_TYPE_COUNTER},
        {"ferry_cluster_changes_sent_total", "Changes taken here and sent to the other replicas.", FY_TYPE_COUNTER},
        {"ferry_cluster_clock_offset_seconds",
         "A peer's clock minus this replica's, at its last heartbeat (refused beyond --cluster.max-clock-offset).", FY_TYPE_GAUGE},
        {"ferry_cluster_conflicts_dropped_total",
         "Family instances dropped on every replica because they conflicted with one pushed at the same time elsewhere.",
         FY_TYPE_COUNTER},
        {"ferry_cluster_peer_lag_seconds",
         "How long the oldest of this replica's changes a peer has not acknowledged has waited (0: it holds them all).",
         FY_TYPE_GAUGE},
        {"ferry_cluster_peers", "The other replicas, by the state of this replica's link to them.", FY_TYPE_GAUGE},
        {"ferry_cluster_quorum_failures_total",
         "Changes answered 503 by replication: refused without a write quorum, or not held by one within --cluster.ack-timeout.",
         FY_TYPE_COUNTER},
        {"ferry_cluster_ready", "1 once this replica has caught up from its peers (/-/ready answers 200).", FY_TYPE_GAUGE},
        {"ferry_cluster_resyncs_total",
         "State transfers asked of peers: full (at start), lost_peer (a replica went away), gap (a peer's backlog was short).",
         FY_TYPE_COUNTER},
        {"ferry_cluster_tombstones", "Deleted groups remembered so that an older change arriving late cannot bring them back.",
         FY_TYPE_GAUGE},
        {"ferry_config_last_reload_success_timestamp_seconds",
         "When --web.config.file was last loaded successfully (at start-up or by a reload), in seconds since the epoch.",
         FY_TYPE_GAUGE},
        {"ferry_config_last_reload_successful",
         "1 if the last load of --web.config.file succeeded, 0 if a reload was refused (the previous configuration stays).",
         FY_TYPE_GAUGE},
        {"ferry_http_accept_errors_total",
         "Failed accepts (e.g. out of file descriptors); each pauses the listener with a back-off.", FY_TYPE_COUNTER},
        {"ferry_http_inflight_bytes", "Request bytes buffered by HTTP/1 connections, against --web.max-inflight-bytes.",
         FY_TYPE_GAUGE},
        {"ferry_http_rejections_total", "Requests answered before reaching a handler (431, 408, 503), by reason.", FY_TYPE_COUNTER},
        {"ferry_limit_rejections_total", "Pushes rejected because they would exceed a configured limit.", FY_TYPE_COUNTER},
        {"ferry_persistence_last_log_sync_timestamp_seconds",
         "When the write-ahead log was last written and synced successfully (Unix time; 0: not yet).", FY_TYPE_GAUGE},
        {"ferry_persistence_last_snapshot_success_timestamp_seconds",
         "When the persistence file last held every change: a snapshot written, or an interval with nothing new to write "
         "(Unix time; 0: not yet).",
         FY_TYPE_GAUGE},
        {"ferry_persistence_load_seconds", "Time the start-up load of the persistence file took.", FY_TYPE_GAUGE},
        {"ferry_persistence_loaded_groups", "Groups loaded from the persistence file at start-up.", FY_TYPE_GAUGE},
        {"ferry_persistence_log_errors_total",
         "Changes (pushes, deletions, wipes, bulk deletes) answered 500 because the write-ahead log could not make them "
         "durable.",
         FY_TYPE_COUNTER},
        {"ferry_persistence_log_failed",
         "1 once a write or sync of the write-ahead log has failed: every change is refused until a restart.", FY_TYPE_GAUGE},
        {"ferry_persistence_log_sync_failures_total",
         "Failed writes or syncs of the write-ahead log (the first one stops the log: ferry_persistence_log_failed).",
         FY_TYPE_COUNTER},
        {"ferry_persistence_snapshot_failures_total",
         "Snapshots of the persistence file that could not be written (each is retried at the next interval).", FY_TYPE_COUNTER},
        {"ferry_store_groups", "Number of groups in the store.", FY_TYPE_GAUGE},
        {"ferry_store_series", "Number of series in the store.", FY_TYPE_GAUGE},
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", FY_TYPE_COUNTER},
        {"process_max_fds", "Maximum number of open file descriptors.", FY_TYPE_GAUGE},
        {"process_open_fds", "Number of open file descriptors.", FY_TYPE_GAUGE},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", FY_TYPE_GAUGE},
        {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", FY_TYPE_GAUGE},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", FY_TYPE_GAUGE},
        {"process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", FY_TYPE_GAUGE}, /* E01 */
        {"pushgateway_build_info",
         "A metric with a constant '1' value labeled by version, revision, branch, goversion from which pushgateway "
         "was built, and the goos and goarch for the build.",
         FY_TYPE_GAUGE}, /* E01 */
        {"pushgateway_http_push_duration_seconds", "HTTP request duration for pushes to the Pushgateway.",
         FY_TYPE_SUMMARY},                                                                                         /* E03 */
        {"pushgateway_http_push_size_bytes", "HTTP request size for pushes to the Pushgateway.", FY_TYPE_SUMMARY}, /* E03 */
        {"pushgateway_http_requests_total", "Total HTTP requests processed by the Pushgateway, excluding scrapes.",
         FY_TYPE_COUNTER}, /* E01, E03 */
    };
    fy_selfstats_t s;
    assert_int_equal(fy_selfstats_init(&s, 2, "1.5.1", "abc", "main"), 0);
    fy_selfstats_limit(&s, FY_LIMIT_STORE_SERIES);
    /* the frontend's counters appear once they have counted something; the in-flight gauge once the server set it */
    atomic_store(&s.auth_checks[FY_AUTHC_HASHED_DENY], 1);
    atomic_store(&s.accept_errors[FY_ACCEPT_EMFILE], 2);
    atomic_store(&s.http_rejections[FY_REJECT_HEADER_FIELDS], 3);
    s.inflight_bytes = inflight_42;
    /* the persistence gauges appear once start-up loading has run with --persistence.file */
    s.persist_load_seconds = 0.25;
    s.persist_loaded_groups = 3;
    atomic_store(&s.persist_enabled, 1);
    atomic_store(&s.wal_enabled, 1);          /* and the log's, in durable mode */
    s.cluster = fake_cluster;                 /* and replication's */
    fy_selfstats_config_reload(&s, 1, 1.5e9); /* and the web config's, with --web.config.file */
    fy_selfstats_request(&s, 1, 200, FY_SH_HEALTHY, FY_M_GET);
    fy_selfstats_push(&s, 0, 1, 0.001, 155, NOW);
    fy_body_t own;
    void *mem;
    char *t = scrape(&s, NOW, 1, 2, &own, &mem);
    assert_int_equal(own.nfamilies, sizeof(want) / sizeof(want[0]));
    uint32_t total = 0;
    for (uint32_t i = 0; i < own.nfamilies; i++) {
        const fy_family_t *f = &own.families[i];
        if (!fy_str_eq_mem(f->name, want[i].name, strlen(want[i].name)))
            fail_msg("family %u is %.*s, want %s", i, (int)f->name.len, f->name.ptr, want[i].name);
        assert_true(f->has_help);
        assert_true(fy_str_eq_mem(f->help, want[i].help, strlen(want[i].help)));
        assert_int_equal(f->type, want[i].type);
        assert_true(f->nseries > 0);
        if (i > 0)
            assert_true(fy_str_cmp(own.families[i - 1].name, f->name) < 0);
        total += f->nseries;
        /* the same table the store registers own families from */
        assert_string_equal(fy_own_families[i].name, want[i].name);
        assert_string_equal(fy_own_families[i].help, want[i].help);
    }
    assert_int_equal(own.nseries, total);
    assert_int_equal(fy_own_families_count, sizeof(want) / sizeof(want[0]));
    /* predefined = in 1.5.1's start-up HELP snapshot: all but the three pushgateway_http_* families */
    for (unsigned i = 0; i < fy_own_families_count; i++)
        assert_int_equal(fy_own_families[i].predefined, strncmp(fy_own_families[i].name, "pushgateway_http_", 17) != 0);
    char *bi = lines(t, "pushgateway_build_info");
    assert_string_equal(bi, "pushgateway_build_info{branch=\"main\",goarch=\"amd64\",goos=\"linux\",goversion=\"none\","
                            "revision=\"abc\",version=\"1.5.1\"} 1\n");
    free(bi);
    /* replication: one series per peer, sorted by address; peers counted by link state, zeros kept */
    static const struct {
        const char *family, *want;
    } cl[] = {
        {"ferry_cluster_peer_lag_seconds",
         "ferry_cluster_peer_lag_seconds{peer=\"ferry-1:9095\"} 0.25\nferry_cluster_peer_lag_seconds{peer=\"ferry-2:9095\"} 0\n"},
        {"ferry_cluster_peers", "ferry_cluster_peers{state=\"connected\"} 1\nferry_cluster_peers{state=\"disconnected\"} 1\n"},
        {"ferry_cluster_changes_sent_total", "ferry_cluster_changes_sent_total 7\n"},
        {"ferry_cluster_ready", "ferry_cluster_ready 1\n"},
    };
    for (size_t i = 0; i < sizeof(cl) / sizeof(cl[0]); i++) {
        char *got = lines(t, cl[i].family);
        assert_string_equal(got, cl[i].want);
        free(got);
    }
    /* E03's header lines, verbatim */
    assert_non_null(strstr(t, "# HELP pushgateway_http_push_duration_seconds HTTP request duration for pushes to the "
                              "Pushgateway.\n# TYPE pushgateway_http_push_duration_seconds summary\n"));
    assert_non_null(strstr(t, "# HELP pushgateway_http_requests_total Total HTTP requests processed by the Pushgateway, "
                              "excluding scrapes.\n# TYPE pushgateway_http_requests_total counter\n"));
    /* process values are live and plausible */
    char *pm = lines(t, "process_open_fds ");
    assert_true(atof(pm + strlen("process_open_fds ")) >= 3);
    free(pm);
    pm = lines(t, "process_resident_memory_bytes ");
    assert_true(atof(pm + strlen("process_resident_memory_bytes ")) > 1e5);
    free(pm);
    free(t);
    free(mem);
    fy_selfstats_dispose(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_summary_window),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_wal),
        cmocka_unit_test(test_persistence_health),
        cmocka_unit_test(test_config_reload),
        cmocka_unit_test(test_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
