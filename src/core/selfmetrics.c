/*
 * selfmetrics.c: recording and collection of the gateway's own metrics (see selfmetrics.h for the ownership rules).
 *
 * The summaries' quantiles come from the last FY_SELF_RING observations of each thread within the last 10 minutes
 * (client_golang uses a decaying CKMS stream over the same window; the figures agree within the stream's error for
 * realistic rates, and exactly for fewer than FY_SELF_RING observations).
 */
#include "selfmetrics.h"
#include "buildinfo.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <dirent.h>

const fy_own_family_t fy_own_families[] = {
    {"ferry_auth_checks_total", FY_TYPE_COUNTER,
     "Basic-auth decisions by result: from the caches of recent successes and failures, or by a password hash.", 1},
    {"ferry_cluster_backlog_bytes", FY_TYPE_GAUGE, "Bytes of this replica's changes kept to resend to peers that reconnect.", 1},
    {"ferry_cluster_changes_applied_total", FY_TYPE_COUNTER, "Changes taken by other replicas and applied here.", 1},
    {"ferry_cluster_changes_sent_total", FY_TYPE_COUNTER, "Changes taken here and sent to the other replicas.", 1},
    {"ferry_cluster_clock_offset_seconds", FY_TYPE_GAUGE,
     "A peer's clock minus this replica's, at its last heartbeat (refused beyond --cluster.max-clock-offset).", 1},
    {"ferry_cluster_conflicts_dropped_total", FY_TYPE_COUNTER,
     "Family instances dropped on every replica because they conflicted with one pushed at the same time elsewhere.", 1},
    {"ferry_cluster_peer_lag_seconds", FY_TYPE_GAUGE,
     "How long the oldest of this replica's changes a peer has not acknowledged has waited (0: it holds them all).", 1},
    {"ferry_cluster_peers", FY_TYPE_GAUGE, "The other replicas, by the state of this replica's link to them.", 1},
    {"ferry_cluster_quorum_failures_total", FY_TYPE_COUNTER,
     "Changes answered 503 by replication: refused without a write quorum, or not held by one within --cluster.ack-timeout.", 1},
    {"ferry_cluster_ready", FY_TYPE_GAUGE, "1 once this replica has caught up from its peers (/-/ready answers 200).", 1},
    {"ferry_cluster_resyncs_total", FY_TYPE_COUNTER,
     "State transfers asked of peers: full (at start), lost_peer (a replica went away), gap (a peer's backlog was short).", 1},
    {"ferry_cluster_tombstones", FY_TYPE_GAUGE,
     "Deleted groups remembered so that an older change arriving late cannot bring them back.", 1},
    {"ferry_config_last_reload_success_timestamp_seconds", FY_TYPE_GAUGE,
     "When --web.config.file was last loaded successfully (at start-up or by a reload), in seconds since the epoch.", 1},
    {"ferry_config_last_reload_successful", FY_TYPE_GAUGE,
     "1 if the last load of --web.config.file succeeded, 0 if a reload was refused (the previous configuration stays).", 1},
    {"ferry_http_accept_errors_total", FY_TYPE_COUNTER,
     "Failed accepts (e.g. out of file descriptors); each pauses the listener with a back-off.", 1},
    {"ferry_http_inflight_bytes", FY_TYPE_GAUGE, "Request bytes buffered by HTTP/1 connections, against --web.max-inflight-bytes.",
     1},
    {"ferry_http_rejections_total", FY_TYPE_COUNTER, "Requests answered before reaching a handler (431, 408, 503), by reason.", 1},
    {"ferry_limit_rejections_total", FY_TYPE_COUNTER, "Pushes rejected because they would exceed a configured limit.", 1},
    {"ferry_persistence_last_log_sync_timestamp_seconds", FY_TYPE_GAUGE,
     "When the write-ahead log was last written and synced successfully (Unix time; 0: not yet).", 1},
    {"ferry_persistence_last_snapshot_success_timestamp_seconds", FY_TYPE_GAUGE,
     "When the persistence file last held every change: a snapshot written, or an interval with nothing new to write "
     "(Unix time; 0: not yet).",
     1},
    {"ferry_persistence_load_seconds", FY_TYPE_GAUGE, "Time the start-up load of the persistence file took.", 1},
    {"ferry_persistence_loaded_groups", FY_TYPE_GAUGE, "Groups loaded from the persistence file at start-up.", 1},
    {"ferry_persistence_log_errors_total", FY_TYPE_COUNTER,
     "Changes (pushes, deletions, wipes, bulk deletes) answered 500 because the write-ahead log could not make them "
     "durable.",
     1},
    {"ferry_persistence_log_failed", FY_TYPE_GAUGE,
     "1 once a write or sync of the write-ahead log has failed: every change is refused until a restart.", 1},
    {"ferry_persistence_log_sync_failures_total", FY_TYPE_COUNTER,
     "Failed writes or syncs of the write-ahead log (the first one stops the log: ferry_persistence_log_failed).", 1},
    {"ferry_persistence_snapshot_failures_total", FY_TYPE_COUNTER,
     "Snapshots of the persistence file that could not be written (each is retried at the next interval).", 1},
    {"ferry_store_groups", FY_TYPE_GAUGE, "Number of groups in the store.", 1},
    {"ferry_store_series", FY_TYPE_GAUGE, "Number of series in the store.", 1},
    {"process_cpu_seconds_total", FY_TYPE_COUNTER, "Total user and system CPU time spent in seconds.", 1},
    {"process_max_fds", FY_TYPE_GAUGE, "Maximum number of open file descriptors.", 1},
    {"process_open_fds", FY_TYPE_GAUGE, "Number of open file descriptors.", 1},
    {"process_resident_memory_bytes", FY_TYPE_GAUGE, "Resident memory size in bytes.", 1},
    {"process_start_time_seconds", FY_TYPE_GAUGE, "Start time of the process since unix epoch in seconds.", 1},
    {"process_virtual_memory_bytes", FY_TYPE_GAUGE, "Virtual memory size in bytes.", 1},
    {"process_virtual_memory_max_bytes", FY_TYPE_GAUGE, "Maximum amount of virtual memory available in bytes.", 1},
    {"pushgateway_build_info", FY_TYPE_GAUGE,
     "A metric with a constant '1' value labeled by version, revision, branch, goversion from which pushgateway was "
     "built, and the goos and goarch for the build.",
     1},
    {"pushgateway_http_push_duration_seconds", FY_TYPE_SUMMARY, "HTTP request duration for pushes to the Pushgateway.", 0},
    {"pushgateway_http_push_size_bytes", FY_TYPE_SUMMARY, "HTTP request size for pushes to the Pushgateway.", 0},
    {"pushgateway_http_requests_total", FY_TYPE_COUNTER, "Total HTTP requests processed by the Pushgateway, excluding scrapes.", 0},
};
const unsigned fy_own_families_count = sizeof(fy_own_families) / sizeof(fy_own_families[0]);

static const char *const handler_names[FY_SH__COUNT] = {
    "push", "delete", "healthy", "ready", "static", "status", "api/v1/metrics", "api/v1/status", "api/v1/options", "wipe",
};
static const char *const method_names[FY_M__COUNT] = {
    "get", "put", "head", "post", "delete", "connect", "options", "notify", "trace", "patch", "unknown",
};
static const char *const limit_names[FY_LIMIT__COUNT] = {
    "push.max-body-bytes", "push.max-series-per-push", "push.max-label-value-length", "store.max-series", "store.max-groups",
};
static const char *const http_reject_names[FY_REJECT__COUNT] = {
    "header_fields", "header_bytes",   "uri_bytes", "header_timeout", "idle_timeout",
    "read_timeout",  "inflight_bytes", "auth_busy", "rate_limit",
};
static const char *const accept_error_names[FY_ACCEPT__COUNT] = {"EMFILE", "ENFILE", "ENOBUFS", "other"};
static const char *const auth_check_names[FY_AUTHC__COUNT] = {"cached_allow", "cached_deny", "hashed_allow", "hashed_deny"};

int fy_selfstats_init(fy_selfstats_t *s, unsigned nthreads, const char *version, const char *revision, const char *branch)
{
    memset(s, 0, sizeof(*s));
    s->threads = calloc(nthreads, sizeof(*s->threads));
    if (s->threads == NULL)
        return -1;
    s->nthreads = nthreads;
    for (unsigned i = 0; i < nthreads; i++)
        pthread_mutex_init(&s->threads[i].lock, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->start_time_seconds = (double)ts.tv_sec + (double)(ts.tv_nsec / 10000000) / 100.0; /* 10 ms, as Go's process collector */
    s->version = version;
    s->revision = revision;
    s->branch = branch;
    return 0;
}

void fy_selfstats_dispose(fy_selfstats_t *s)
{
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_mutex_destroy(&s->threads[i].lock);
    free(s->threads);
    s->threads = NULL;
}

fy_method_t fy_method_from(const char *m, size_t n)
{
    /* client_golang's sanitizeMethod lists each method in upper and in lower case ("GET", "get"); nothing else. */
    for (int i = 0; i < FY_M__COUNT - 1; i++) {
        const char *lower = method_names[i];
        if (strlen(lower) != n)
            continue;
        size_t k = 0;
        while (k < n && m[k] == lower[k] - 'a' + 'A')
            k++;
        if (k == n || memcmp(m, lower, n) == 0)
            return (fy_method_t)i;
    }
    return FY_M_UNKNOWN;
}

void fy_selfstats_request(fy_selfstats_t *s, unsigned t, int code, fy_stat_handler_t h, fy_method_t m)
{
    fy_selfstats_thread_t *th = &s->threads[t];
    int n = atomic_load_explicit(&th->ncodes, memory_order_relaxed);
    int i;
    if (code == 0)
        code = 200; /* promhttp counts an unset status as 200 */
    for (i = 0; i < n; i++)
        if (th->codes[i] == code)
            break;
    if (i == n) {
        if (n == FY_SELF_CODES) {
            i = FY_SELF_CODES - 1;
        } else {
            th->codes[n] = code;
            atomic_store_explicit(&th->ncodes, n + 1, memory_order_release);
        }
    }
    atomic_fetch_add_explicit(&th->requests[i][h][m], 1, memory_order_relaxed);
}

static void ring_add(fy_selfstats_ring_t *r, double v, int64_t now)
{
    r->v[r->next] = v;
    r->at[r->next] = now;
    r->next = (r->next + 1) % FY_SELF_RING;
    if (r->n < FY_SELF_RING)
        r->n++;
    r->sum += v;
    r->count++;
}

void fy_selfstats_push(fy_selfstats_t *s, unsigned t, int is_post, double seconds, double size, int64_t now_ns)
{
    fy_selfstats_thread_t *th = &s->threads[t];
    pthread_mutex_lock(&th->lock);
    ring_add(&th->push_duration[is_post != 0], seconds, now_ns);
    ring_add(&th->push_size[is_post != 0], size, now_ns);
    pthread_mutex_unlock(&th->lock);
}

void fy_selfstats_wal_error(fy_selfstats_t *s)
{
    atomic_fetch_add_explicit(&s->wal_errors, 1, memory_order_relaxed);
}

void fy_selfstats_config_reload(fy_selfstats_t *s, int ok, double now)
{
    if (ok)
        atomic_store(&s->config_ok_time, now);
    atomic_store(&s->config_ok, ok);
    atomic_store(&s->config_enabled, 1);
}

void fy_selfstats_limit(fy_selfstats_t *s, fy_limit_t which)
{
    atomic_fetch_add_explicit(&s->limit_rejections[which], 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Collection: builds an fy_body_t in the arena. */

typedef struct {
    fy_arena_t *a;
    int failed;
} builder_t;

static void *balloc(builder_t *b, size_t n)
{
    void *p = fy_arena_alloc(b->a, n ? n : 1);
    if (p == NULL)
        b->failed = 1;
    return p;
}

static fy_str_t bstr(builder_t *b, const char *s)
{
    size_t n = strlen(s);
    char *p = balloc(b, n + 1);
    if (p == NULL)
        return fy_str("", 0);
    memcpy(p, s, n + 1);
    return fy_str(p, n);
}

static void set_family(builder_t *b, fy_family_t *f, const char *name, fy_series_t *series, uint32_t n)
{
    for (unsigned i = 0; i < fy_own_families_count; i++) {
        if (strcmp(fy_own_families[i].name, name) == 0) {
            f->name = fy_str(fy_own_families[i].name, strlen(fy_own_families[i].name));
            f->help = fy_str(fy_own_families[i].help, strlen(fy_own_families[i].help));
            f->has_help = 1;
            f->type = (uint8_t)fy_own_families[i].type;
        }
    }
    (void)b;
    f->series = series;
    f->nseries = n;
}

static fy_series_t *gauge1(builder_t *b, double v)
{
    fy_series_t *s = balloc(b, sizeof(*s));
    if (s != NULL) {
        memset(s, 0, sizeof(*s));
        s->value = v;
        s->pb_kinds = 0;
    }
    return s;
}

typedef struct {
    char code[12];
    int handler, method;
    uint64_t count;
} req_row_t;

static int req_cmp(const void *pa, const void *pb)
{
    const req_row_t *a = pa, *b = pb;
    int c = strcmp(a->code, b->code);
    if (c == 0)
        c = strcmp(handler_names[a->handler], handler_names[b->handler]);
    if (c == 0)
        c = strcmp(method_names[a->method], method_names[b->method]);
    return c;
}

static int dbl_cmp(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* Summary series for method index m ([0] put, [1] post) over all threads; NULL count means no observation yet. */
static int collect_summary(builder_t *b, fy_selfstats_t *s, int size_not_duration, int m, int64_t now, fy_series_t *out)
{
    static const double qs[3] = {0.1, 0.5, 0.9};
    double *vals = malloc(sizeof(double) * FY_SELF_RING * s->nthreads);
    size_t n = 0;
    double sum = 0;
    uint64_t count = 0;
    if (vals == NULL)
        return -1;
    for (unsigned t = 0; t < s->nthreads; t++) {
        fy_selfstats_thread_t *th = &s->threads[t];
        pthread_mutex_lock(&th->lock);
        fy_selfstats_ring_t *r = size_not_duration ? &th->push_size[m] : &th->push_duration[m];
        for (uint32_t i = 0; i < r->n; i++)
            if (now - r->at[i] <= (int64_t)FY_SELF_WINDOW_NS)
                vals[n++] = r->v[i];
        sum += r->sum;
        count += r->count;
        pthread_mutex_unlock(&th->lock);
    }
    if (count == 0) {
        free(vals);
        return 0;
    }
    qsort(vals, n, sizeof(double), dbl_cmp);
    fy_point_t *pts = balloc(b, sizeof(fy_point_t) * 3);
    fy_label_t *lbl = balloc(b, sizeof(fy_label_t));
    if (pts == NULL || lbl == NULL) {
        free(vals);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        pts[i].key = qs[i];
        pts[i].count = 0;
        if (n == 0) {
            pts[i].value = NAN;
        } else {
            /* beorn7/perks before its first flush (fewer than 500 samples): sorted[ceil(n*q) - 1], at least [0] */
            size_t k = (size_t)ceil((double)n * qs[i]);
            k = k > 0 ? k - 1 : 0;
            pts[i].value = vals[k < n ? k : n - 1];
        }
    }
    free(vals);
    lbl->name = fy_str("method", 6);
    lbl->value = fy_str(m ? "post" : "put", m ? 4 : 3);
    lbl->value_esc = FY_ESC_NONE;
    memset(out, 0, sizeof(*out));
    out->labels = lbl;
    out->nlabels = 1;
    out->points = pts;
    out->npoints = 3;
    out->value = sum;
    out->count = count;
    out->pb_kinds = 0;
    return 1;
}

static void proc_stats(double *cpu, double *vsize, double *rss)
{
    *cpu = *vsize = *rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (p == NULL)
        return;
    unsigned long utime = 0, stime = 0, vs = 0;
    long rsspages = 0;
    /* Fields after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
     * cutime cstime priority nice num_threads itrealvalue starttime(22) vsize(23) rss(24). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u %lu %ld", &utime, &stime,
               &vs, &rsspages) == 4) {
        long hz = sysconf(_SC_CLK_TCK);
        *cpu = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
        *vsize = (double)vs;
        *rss = (double)rsspages * (double)sysconf(_SC_PAGESIZE);
    }
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    double n = 0;
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* ns since the epoch as seconds, the fraction added separately so that whole milliseconds print exactly */
static double unix_seconds(int64_t ns)
{
    return (double)(ns / 1000000000) + (double)(ns % 1000000000) / 1e9;
}

/* counters() sorts at most this many label values; checked at compile time, since its assert is gone in release
 * builds (a ninth http_rejections reason once overflowed a smaller array there) */
#define COUNTERS_MAX 16
_Static_assert(FY_REJECT__COUNT <= COUNTERS_MAX && FY_AUTHC__COUNT <= COUNTERS_MAX && FY_ACCEPT__COUNT <= COUNTERS_MAX &&
                   FY_LIMIT__COUNT <= COUNTERS_MAX,
               "a counter family has more values than counters() sorts");

/* A counter family with one label: only the values that have counted something, sorted by label value (a family
 * with none is left out). Returns the number of series; *nf grows by one when the family is emitted. */
static uint32_t counters(builder_t *b, fy_family_t *f, uint32_t *nf, const char *name, const char *label, const char *const *names,
                         _Atomic uint64_t *values, int n)
{
    int order[COUNTERS_MAX];
    assert(n <= COUNTERS_MAX);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by name: a handful of entries */
        for (int j = i; j > 0 && strcmp(names[order[j - 1]], names[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fy_series_t *ser = balloc(b, sizeof(fy_series_t) * (size_t)n);
    uint32_t k = 0;
    for (int i = 0; ser != NULL && i < n; i++) {
        uint64_t v = atomic_load_explicit(&values[order[i]], memory_order_relaxed);
        if (v == 0)
            continue;
        fy_label_t *l = balloc(b, sizeof(*l));
        if (l == NULL)
            break;
        l->name = fy_str(label, strlen(label));
        l->value = bstr(b, names[order[i]]);
        l->value_esc = FY_ESC_NONE;
        memset(&ser[k], 0, sizeof(ser[k]));
        ser[k].labels = l;
        ser[k].nlabels = 1;
        ser[k].value = (double)v;
        k++;
    }
    if (k != 0) {
        set_family(b, f, name, ser, k);
        (*nf)++;
    }
    return k;
}

/* A family of one series per peer, labelled peer="HOST:PORT" (peers in the order configured, sorted here). */
static uint32_t per_peer(builder_t *b, fy_family_t *fams, uint32_t *nf, const char *name, const fy_selfstats_cluster_t *cl,
                         int what)
{
    fy_series_t *ser = balloc(b, sizeof(fy_series_t) * (cl->npeers ? cl->npeers : 1));
    size_t order[FY_SELF_MAX_PEERS];
    for (size_t i = 0; i < cl->npeers; i++)
        order[i] = i;
    for (size_t i = 1; i < cl->npeers; i++)
        for (size_t j = i; j > 0 && strcmp(cl->peers[order[j - 1]].addr, cl->peers[order[j]].addr) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    uint32_t k = 0;
    for (size_t i = 0; ser != NULL && i < cl->npeers; i++) {
        fy_label_t *l = balloc(b, sizeof(*l));
        if (l == NULL)
            break;
        l->name = fy_str("peer", 4);
        l->value = bstr(b, cl->peers[order[i]].addr);
        l->value_esc = FY_ESC_NONE;
        memset(&ser[k], 0, sizeof(ser[k]));
        ser[k].labels = l;
        ser[k].nlabels = 1;
        ser[k].value = what == 0 ? cl->peers[order[i]].clock_offset_seconds : cl->peers[order[i]].lag_seconds;
        k++;
    }
    if (k != 0)
        set_family(b, &fams[(*nf)++], name, ser, k);
    return k;
}

/* A family whose series are (label value, count) pairs given sorted by value; zero counts are left out unless
 * keep_zero. */
static uint32_t labelled(builder_t *b, fy_family_t *fams, uint32_t *nf, const char *name, const char *label,
                         const char *const *vals, const double *v, int n, int keep_zero)
{
    fy_series_t *ser = balloc(b, sizeof(fy_series_t) * (size_t)n);
    uint32_t k = 0;
    for (int i = 0; ser != NULL && i < n; i++) {
        if (v[i] == 0 && !keep_zero)
            continue;
        fy_label_t *l = balloc(b, sizeof(*l));
        if (l == NULL)
            break;
        l->name = fy_str(label, strlen(label));
        l->value = bstr(b, vals[i]);
        l->value_esc = FY_ESC_NONE;
        memset(&ser[k], 0, sizeof(ser[k]));
        ser[k].labels = l;
        ser[k].nlabels = 1;
        ser[k].value = v[i];
        k++;
    }
    if (k != 0)
        set_family(b, &fams[(*nf)++], name, ser, k);
    return k;
}

/* The ferry_cluster_* families, in name order. */
static uint32_t cluster_families(builder_t *b, fy_selfstats_t *s, fy_family_t *fams, uint32_t *nf)
{
    fy_selfstats_cluster_t *cl = malloc(sizeof(*cl));
    if (cl == NULL) {
        b->failed = 1;
        return 0;
    }
    memset(cl, 0, sizeof(*cl));
    s->cluster(s->cluster_ctx, cl);
    uint32_t total = 0;
    set_family(b, &fams[(*nf)++], "ferry_cluster_backlog_bytes", gauge1(b, (double)cl->backlog_bytes), 1);
    set_family(b, &fams[(*nf)++], "ferry_cluster_changes_applied_total", gauge1(b, (double)cl->applied), 1);
    set_family(b, &fams[(*nf)++], "ferry_cluster_changes_sent_total", gauge1(b, (double)cl->sent), 1);
    total += 3;
    total += per_peer(b, fams, nf, "ferry_cluster_clock_offset_seconds", cl, 0);
    set_family(b, &fams[(*nf)++], "ferry_cluster_conflicts_dropped_total", gauge1(b, (double)cl->killed), 1);
    total++;
    total += per_peer(b, fams, nf, "ferry_cluster_peer_lag_seconds", cl, 1);
    {
        static const char *const states[2] = {"connected", "disconnected"};
        double v[2] = {0, 0};
        for (size_t i = 0; i < cl->npeers; i++)
            v[cl->peers[i].connected ? 0 : 1]++;
        total += labelled(b, fams, nf, "ferry_cluster_peers", "state", states, v, 2, 1);
    }
    {
        static const char *const reasons[2] = {"no_quorum", "timeout"};
        double v[2] = {(double)cl->refused_no_quorum, (double)cl->timed_out};
        total += labelled(b, fams, nf, "ferry_cluster_quorum_failures_total", "reason", reasons, v, 2, 1);
    }
    set_family(b, &fams[(*nf)++], "ferry_cluster_ready", gauge1(b, cl->ready ? 1 : 0), 1);
    total++;
    {
        static const char *const kinds[3] = {"full", "gap", "lost_peer"};
        double v[3] = {(double)cl->resync_full, (double)cl->resync_gap, (double)cl->resync_lost_peer};
        total += labelled(b, fams, nf, "ferry_cluster_resyncs_total", "kind", kinds, v, 3, 1);
    }
    set_family(b, &fams[(*nf)++], "ferry_cluster_tombstones", gauge1(b, (double)cl->tombstones), 1);
    total++;
    free(cl);
    return total;
}

int fy_selfstats_collect(fy_selfstats_t *s, fy_arena_t *arena, int64_t now_ns, uint64_t store_groups, uint64_t store_series,
                         fy_body_t *body)
{
    builder_t b = {arena, 0};
    fy_family_t *fams = balloc(&b, sizeof(fy_family_t) * fy_own_families_count);
    uint32_t nf = 0, total = 0;
    memset(body, 0, sizeof(*body));
    if (fams == NULL)
        return -1;
    memset(fams, 0, sizeof(fy_family_t) * fy_own_families_count);

    total += counters(&b, &fams[nf], &nf, "ferry_auth_checks_total", "result", auth_check_names, s->auth_checks, FY_AUTHC__COUNT);
    if (s->cluster != NULL)
        total += cluster_families(&b, s, fams, &nf);
    if (atomic_load(&s->config_enabled)) {
        set_family(&b, &fams[nf++], "ferry_config_last_reload_success_timestamp_seconds",
                   gauge1(&b, atomic_load(&s->config_ok_time)), 1);
        set_family(&b, &fams[nf++], "ferry_config_last_reload_successful", gauge1(&b, atomic_load(&s->config_ok)), 1);
        total += 2;
    }
    total += counters(&b, &fams[nf], &nf, "ferry_http_accept_errors_total", "error", accept_error_names, s->accept_errors,
                      FY_ACCEPT__COUNT);
    if (s->inflight_bytes != NULL) {
        set_family(&b, &fams[nf++], "ferry_http_inflight_bytes", gauge1(&b, (double)s->inflight_bytes()), 1);
        total++;
    }
    total += counters(&b, &fams[nf], &nf, "ferry_http_rejections_total", "reason", http_reject_names, s->http_rejections,
                      FY_REJECT__COUNT);
    total +=
        counters(&b, &fams[nf], &nf, "ferry_limit_rejections_total", "limit", limit_names, s->limit_rejections, FY_LIMIT__COUNT);
    /* in name order, as the families are merged by name */
    int persisting = atomic_load(&s->persist_enabled), logging = atomic_load(&s->wal_enabled);
    if (logging) {
        double t = unix_seconds(atomic_load_explicit(&s->wal_sync_ns, memory_order_relaxed));
        set_family(&b, &fams[nf++], "ferry_persistence_last_log_sync_timestamp_seconds", gauge1(&b, t), 1);
        total++;
    }
    if (persisting) {
        double t = unix_seconds(atomic_load_explicit(&s->snap_ok_ns, memory_order_relaxed));
        set_family(&b, &fams[nf++], "ferry_persistence_last_snapshot_success_timestamp_seconds", gauge1(&b, t), 1);
        set_family(&b, &fams[nf++], "ferry_persistence_load_seconds", gauge1(&b, s->persist_load_seconds), 1);
        set_family(&b, &fams[nf++], "ferry_persistence_loaded_groups", gauge1(&b, (double)s->persist_loaded_groups), 1);
        total += 3;
    }
    if (logging) {
        double errors = (double)atomic_load_explicit(&s->wal_errors, memory_order_relaxed);
        double fails = (double)atomic_load_explicit(&s->wal_sync_failures, memory_order_relaxed);
        set_family(&b, &fams[nf++], "ferry_persistence_log_errors_total", gauge1(&b, errors), 1);
        set_family(&b, &fams[nf++], "ferry_persistence_log_failed", gauge1(&b, (double)atomic_load(&s->wal_failed)), 1);
        set_family(&b, &fams[nf++], "ferry_persistence_log_sync_failures_total", gauge1(&b, fails), 1);
        total += 3;
    }
    if (persisting) {
        double fails = (double)atomic_load_explicit(&s->snap_failures, memory_order_relaxed);
        set_family(&b, &fams[nf++], "ferry_persistence_snapshot_failures_total", gauge1(&b, fails), 1);
        total++;
    }
    if (store_groups != UINT64_MAX) {
        set_family(&b, &fams[nf++], "ferry_store_groups", gauge1(&b, (double)store_groups), 1);
        set_family(&b, &fams[nf++], "ferry_store_series", gauge1(&b, (double)store_series), 1);
        total += 2;
    }
    {
        double cpu, vs, rss;
        struct rlimit rl;
        proc_stats(&cpu, &vs, &rss);
        double maxfds = 0, maxvm = 18446744073709551615.0;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
            maxfds = rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)rl.rlim_cur;
        if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            maxvm = (double)rl.rlim_cur;
        set_family(&b, &fams[nf++], "process_cpu_seconds_total", gauge1(&b, cpu), 1);
        set_family(&b, &fams[nf++], "process_max_fds", gauge1(&b, maxfds), 1);
        set_family(&b, &fams[nf++], "process_open_fds", gauge1(&b, open_fds()), 1);
        set_family(&b, &fams[nf++], "process_resident_memory_bytes", gauge1(&b, rss), 1);
        set_family(&b, &fams[nf++], "process_start_time_seconds", gauge1(&b, s->start_time_seconds), 1);
        set_family(&b, &fams[nf++], "process_virtual_memory_bytes", gauge1(&b, vs), 1);
        set_family(&b, &fams[nf++], "process_virtual_memory_max_bytes", gauge1(&b, maxvm), 1);
        total += 7;
    }
    {
        static const char *const names[6] = {"branch", "goarch", "goos", "goversion", "revision", "version"};
        const char *vals[6] = {s->branch, FY_GOARCH, FY_GOOS, "none", s->revision, s->version};
        fy_label_t *l = balloc(&b, sizeof(fy_label_t) * 6);
        fy_series_t *ser = gauge1(&b, 1);
        if (l != NULL && ser != NULL) {
            for (int i = 0; i < 6; i++) {
                l[i].name = fy_str(names[i], strlen(names[i]));
                l[i].value = bstr(&b, vals[i]);
                l[i].value_esc = FY_ESC_NONE;
            }
            ser->labels = l;
            ser->nlabels = 6;
        }
        set_family(&b, &fams[nf++], "pushgateway_build_info", ser, 1);
        total++;
    }
    for (int which = 0; which < 2; which++) { /* duration, then size: byte order of the names */
        fy_series_t *ser = balloc(&b, sizeof(fy_series_t) * 2);
        uint32_t n = 0;
        /* "post" sorts before "put". */
        for (int m = 1; ser != NULL && m >= 0; m--) {
            int r = collect_summary(&b, s, which, m, now_ns, &ser[n]);
            if (r < 0)
                b.failed = 1;
            else if (r > 0)
                n++;
        }
        if (n)
            set_family(&b, &fams[nf++], which ? "pushgateway_http_push_size_bytes" : "pushgateway_http_push_duration_seconds", ser,
                       n);
        total += n;
    }
    {
        size_t cap = (size_t)s->nthreads * FY_SELF_CODES * FY_SH__COUNT * FY_M__COUNT;
        req_row_t *rows = malloc(sizeof(req_row_t) * (cap ? cap : 1));
        size_t nrows = 0;
        if (rows == NULL)
            return -1;
        for (unsigned t = 0; t < s->nthreads; t++) {
            fy_selfstats_thread_t *th = &s->threads[t];
            int nc = atomic_load_explicit(&th->ncodes, memory_order_acquire);
            for (int c = 0; c < nc; c++)
                for (int h = 0; h < FY_SH__COUNT; h++)
                    for (int m = 0; m < FY_M__COUNT; m++) {
                        uint64_t v = atomic_load_explicit(&th->requests[c][h][m], memory_order_relaxed);
                        if (v == 0)
                            continue;
                        req_row_t r;
                        snprintf(r.code, sizeof(r.code), "%d", th->codes[c]);
                        r.handler = h;
                        r.method = m;
                        r.count = v;
                        size_t k;
                        for (k = 0; k < nrows; k++)
                            if (req_cmp(&rows[k], &r) == 0)
                                break;
                        if (k < nrows)
                            rows[k].count += v;
                        else
                            rows[nrows++] = r;
                    }
        }
        qsort(rows, nrows, sizeof(req_row_t), req_cmp);
        fy_series_t *ser = balloc(&b, sizeof(fy_series_t) * (nrows ? nrows : 1));
        fy_label_t *l = balloc(&b, sizeof(fy_label_t) * 3 * (nrows ? nrows : 1));
        for (size_t i = 0; ser != NULL && l != NULL && i < nrows; i++) {
            fy_label_t *li = &l[3 * i];
            li[0].name = fy_str("code", 4);
            li[0].value = bstr(&b, rows[i].code);
            li[1].name = fy_str("handler", 7);
            li[1].value = fy_str(handler_names[rows[i].handler], strlen(handler_names[rows[i].handler]));
            li[2].name = fy_str("method", 6);
            li[2].value = fy_str(method_names[rows[i].method], strlen(method_names[rows[i].method]));
            li[0].value_esc = li[1].value_esc = li[2].value_esc = FY_ESC_NONE;
            memset(&ser[i], 0, sizeof(ser[i]));
            ser[i].labels = li;
            ser[i].nlabels = 3;
            ser[i].value = (double)rows[i].count;
            ser[i].pb_kinds = 0;
        }
        if (nrows)
            set_family(&b, &fams[nf++], "pushgateway_http_requests_total", ser, (uint32_t)nrows);
        total += (uint32_t)nrows;
        free(rows);
    }
    if (b.failed)
        return -1;
    body->families = fams;
    body->nfamilies = nf;
    body->nseries = total;
    return 0;
}
