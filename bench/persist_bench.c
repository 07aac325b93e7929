/*
 * persist_bench.c: group-commit throughput of the write-ahead log (src/persist_log.c, compiled in here): appenders
 * in a closed loop, one outstanding durable append each, as HTTP handlers waiting for their fsync before the 2xx:
 * either fy_log_append (leader/follower among the appenders) or, with the writer thread, fy_log_submit and a wait
 * for the writer's notification (what durable mode's server does, with an event loop instead of a thread).
 */
#include "persist_bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../src/common/crc32c.c"
#include "../src/persist/persist_log.c"
#include "../tests/log_notes.h"

/* writer mode: the notifications, as the server's release mark */
static fy_log_notes_t notes = FY_LOG_NOTES_INIT;

typedef struct {
    fy_log_t *log;
    int writer;
    size_t rec_len;
    double until;
    double *lat; /* microseconds, one per append */
    size_t nlat, caplat;
    int failed;
} worker_t;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    uint8_t *rec = malloc(w->rec_len);
    if (rec == NULL) {
        w->failed = 1;
        return NULL;
    }
    memset(rec, 'p', w->rec_len);
    for (double t = bench_now(); t < w->until;) {
        if (w->nlat == w->caplat) {
            size_t ncap = w->caplat ? w->caplat * 2 : 4096;
            double *nl = realloc(w->lat, ncap * sizeof(*nl));
            if (nl == NULL) {
                w->failed = 1;
                break;
            }
            w->lat = nl;
            w->caplat = ncap;
        }
        if ((w->writer ? fy_log_append_notified(w->log, &notes, 1, rec, w->rec_len)
                       : fy_log_append(w->log, 1, rec, w->rec_len, NULL)) != 0) {
            w->failed = 1;
            break;
        }
        double t2 = bench_now();
        w->lat[w->nlat++] = (t2 - t) * 1e6;
        t = t2;
    }
    free(rec);
    return NULL;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void remove_log_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

int fy_bench_persist_run(unsigned nthreads, int writer, size_t rec_len, double seconds, fy_bench_persist_result_t *r)
{
    const char *base = getenv("FY_BENCH_DIR");
    char dir[4096], err[512];
    snprintf(dir, sizeof(dir), "%s/ferry-walbench-XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    fy_log_t *log;
    if (fy_log_open(dir, 1, &log, err, sizeof(err)) != 0) {
        fprintf(stderr, "persist_bench: %s\n", err);
        remove_log_dir(dir);
        return -1;
    }
    fy_log_notes_reset(&notes);
    if (writer && fy_log_start_writer(log, fy_log_note, &notes) != 0) {
        fy_log_close(log);
        remove_log_dir(dir);
        return -1;
    }
    worker_t *w = calloc(nthreads, sizeof(*w));
    pthread_t *th = calloc(nthreads, sizeof(*th));
    int rc = -1;
    if (w == NULL || th == NULL)
        goto out;
    double t0 = bench_now();
    for (unsigned i = 0; i < nthreads; i++) {
        w[i] = (worker_t){.log = log, .writer = writer, .rec_len = rec_len, .until = t0 + seconds};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    size_t total = 0;
    int failed = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].nlat;
        failed |= w[i].failed;
    }
    double secs = bench_now() - t0;
    fy_log_stats_t st;
    fy_log_get_stats(log, &st);
    double *all = malloc((total ? total : 1) * sizeof(*all));
    if (failed || all == NULL) {
        free(all);
        goto out;
    }
    size_t k = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
        k += w[i].nlat;
    }
    qsort(all, total, sizeof(*all), dbl_cmp);
    *r = (fy_bench_persist_result_t){
        .appends = st.appends,
        .syncs = st.syncs,
        .max_batch = st.max_batch,
        .seconds = secs,
        .p50_us = total ? all[total / 2] : 0,
        .p99_us = total ? all[(size_t)((double)total * 0.99)] : 0,
        .max_us = total ? all[total - 1] : 0,
    };
    free(all);
    rc = 0;
out:
    if (w != NULL)
        for (unsigned i = 0; i < nthreads; i++)
            free(w[i].lat);
    free(w);
    free(th);
    fy_log_close(log);
    remove_log_dir(dir);
    return rc;
}
