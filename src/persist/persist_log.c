/*
 * persist_log.c: the durable-mode write-ahead log (format and contract in persist_log.h, docs/persistence.md):
 * CRC-32C, segment files, group commit, rotation and truncation, and replay with torn-tail repair.
 *
 * Group commit is leader/follower, as in the classic database log writers: fy_log_submit frames the record into
 * the shared pending buffer under the mutex; fy_log_wait either finds a flush running (and sleeps on the condition
 * variable) or becomes the leader, takes the whole pending buffer, and writes and syncs it without the mutex held.
 * Records submitted while a leader syncs pile up in the other buffer and go out together in the next sync, so the
 * batch grows with the number of appenders and one fdatasync serves all of them.
 *
 * With a writer thread (fy_log_start_writer, durable mode's server), nobody waits: the writer is a permanent leader
 * that flushes whatever is pending as soon as the previous sync ends, and a notify callback tells the submitters
 * which sequence numbers are durable. The batch is then everything submitted during one sync, however many requests
 * that is, instead of one per blocked thread.
 *
 * Commit delay: N clients that each wait for their answer before pushing again settle, without one, into two
 * halves that alternate: when a sync ends, the half it covered is answered, but the writer has already started
 * the next sync with the other half, so the first half's next pushes wait a whole sync before theirs starts, and
 * the batch is N/2 (measured: 16 records per sync with 32 connections, 29 with 64). So the writer, before a sync,
 * waits until as many records are pending as the last sync covered plus what was pending when it ended (the
 * clients it answered come back), but no longer than half the last sync's duration, capped at GATHER_MAX_NS. A
 * lone client never waits (the target is 1), and a target that is not met costs at most that bound.
 */
#include "persist_log.h"
#include "crc32c.h"
#include "le.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC "FERRYWAL"
#define SEG_VERSION 1u
#define SEG_SUFFIX ".wal"
#define SEG_NAME_LEN 20       /* 16 hex digits + ".wal" */
#define SPARE_KEEP (1u << 20) /* a pending buffer that grew past this is freed after its flush */
#define GATHER_MAX_NS 1000000 /* the commit delay's cap (1 ms) */

void fy__persist_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int default_sync(int fd, int data_only)
{
    return data_only ? fdatasync(fd) : fsync(fd);
}

int (*fy__persist_sync)(int fd, int data_only) = default_sync;
ssize_t (*fy__persist_write)(int fd, const void *buf, size_t n) = write;

int fy__persist_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fy__persist_sync(fd, 0), saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = fy__persist_write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The record's checksum: payload first, then the 13 header bytes after the crc field's gap (len, type, seq). */
static uint32_t rec_crc(uint32_t payload_crc, const uint8_t *hdr)
{
    uint8_t h[13];
    memcpy(h, hdr, 4);
    memcpy(h + 4, hdr + 8, 9);
    return fy_crc32c(payload_crc, h, sizeof(h));
}

/* Segment files ------------------------------------------------------------------------------------------------ */

typedef struct {
    uint64_t first;
    char name[SEG_NAME_LEN + 1];
} seg_ent_t;

static int seg_parse_name(const char *name, uint64_t *first)
{
    if (strlen(name) != SEG_NAME_LEN || strcmp(name + 16, SEG_SUFFIX) != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const seg_ent_t *)a)->first, y = ((const seg_ent_t *)b)->first;
    return x < y ? -1 : x > y;
}

/*
 * Lists dir's segments in sequence order. A missing directory is an empty log. With remove_tmp, leftover
 * "<seg>.tmp" files of a crash during fy_log_rotate/fy_log_open (never renamed, so never part of the log) go.
 */
static int seg_list(const char *dir, int remove_tmp, seg_ent_t **out, size_t *count, char *err, size_t errlen)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        fy__persist_err(err, errlen, "open log directory %s: %s", dir, strerror(errno));
        return -1;
    }
    seg_ent_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (seg_parse_name(de->d_name, &first) != 0) {
            size_t l = strlen(de->d_name);
            if (remove_tmp && l == SEG_NAME_LEN + 4 && strcmp(de->d_name + SEG_NAME_LEN, ".tmp") == 0)
                unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seg_ent_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                fy__persist_err(err, errlen, "out of memory listing %s", dir);
                rc = -1;
                break;
            }
            v = nv;
        }
        v[n].first = first;
        memcpy(v[n].name, de->d_name, SEG_NAME_LEN + 1);
        n++;
    }
    closedir(d);
    if (rc != 0) {
        free(v);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), seg_cmp);
    *out = v;
    *count = n;
    return 0;
}

/* Writes the header to <name>.tmp, syncs it, renames it into place and syncs the directory; returns the open fd. */
static int seg_create(const char *dir, uint64_t first, char *err, size_t errlen)
{
    char path[4096], tmp[4096 + 8];
    snprintf(path, sizeof(path), "%s/%016" PRIx64 SEG_SUFFIX, dir, first);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    uint8_t h[FY_LOG_SEG_HEADER];
    memcpy(h, SEG_MAGIC, 8);
    fy_put_le32(h + 8, SEG_VERSION);
    fy_put_le32(h + 12, 0);
    fy_put_le64(h + 16, first);
    fy_put_le32(h + 24, fy_crc32c(0, h, 24));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fy__persist_err(err, errlen, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, h, sizeof(h)) != 0 || fy__persist_sync(fd, 0) != 0) {
        fy__persist_err(err, errlen, "write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        fy__persist_err(err, errlen, "rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fy__persist_sync_dir(dir) != 0) {
        /* the segment is in place but its name may not survive a crash: unusable, and a later open replaces it */
        fy__persist_err(err, errlen, "sync directory %s: %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
fail:
    close(fd);
    unlink(tmp);
    return -1;
}

/* The log ------------------------------------------------------------------------------------------------------ */

struct st_fy_log_t {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *dir;
    int fd;             /* current segment, positioned at its end */
    uint64_t seg_first; /* first sequence number of the current segment */
    uint64_t *closed;   /* first sequence numbers of older segments still on disk, ascending */
    size_t nclosed, capclosed;
    uint8_t *buf; /* pending records: durable_seq + 1 .. next_seq - 1, framed */
    size_t len, cap;
    uint8_t *spare; /* the other buffer; the leader owns it while flushing */
    size_t spare_cap;
    uint64_t next_seq;
    uint64_t durable_seq;
    int flushing;       /* a leader is writing and syncing */
    int err;            /* sticky errno of a failed write or sync */
    char failure[4200]; /* what failed, e.g. "write <dir>/<segment>: <strerror>"; set once, with err */
    fy_log_stats_t st;
    /* the writer thread (fy_log_start_writer) */
    fy_log_notify_cb notify;
    void *notify_ctx;
    pthread_t writer;
    pthread_cond_t wcv; /* the writer sleeps here while there is nothing for it to do */
    int has_writer;
    int writer_idle;      /* the writer waits on wcv for a first record: a submit must signal it */
    int writer_gathering; /* the writer waits on wcv for `gather` records (commit delay) */
    int writer_stop;
    uint64_t gather;      /* commit delay: records to wait for before the next sync (0: none) */
    uint64_t last_batch;  /* records the last flush covered */
    int64_t last_sync_ns; /* how long its write + fdatasync took */
};

int fy_log_open(const char *dir, uint64_t next_seq, fy_log_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (next_seq == 0) {
        fy__persist_err(err, errlen, "log %s: sequence numbers start at 1", dir);
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fy__persist_err(err, errlen, "create log directory %s: %s", dir, strerror(errno));
        return -1;
    }
    seg_ent_t *segs;
    size_t nsegs;
    if (seg_list(dir, 1, &segs, &nsegs, err, errlen) != 0)
        return -1;
    int rc = -1;
    fy_log_t *log = calloc(1, sizeof(*log));
    if (log == NULL || (log->dir = strdup(dir)) == NULL) {
        fy__persist_err(err, errlen, "out of memory opening log %s", dir);
        goto out;
    }
    log->fd = -1;
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i].first > next_seq) {
            fy__persist_err(err, errlen, "log %s: segment %s starts after sequence number %" PRIu64 " (replay first)", dir,
                            segs[i].name, next_seq);
            goto out;
        }
        if (segs[i].first == next_seq) {
            /* a segment created just before a crash, before any record: it is replaced; anything else is data */
            char path[4096];
            struct stat sb;
            snprintf(path, sizeof(path), "%s/%s", dir, segs[i].name);
            if (stat(path, &sb) != 0 || sb.st_size > FY_LOG_SEG_HEADER) {
                fy__persist_err(err, errlen, "log %s: segment %s already holds records from sequence number %" PRIu64, dir,
                                segs[i].name, next_seq);
                goto out;
            }
            continue;
        }
        if (log->nclosed == log->capclosed) {
            log->capclosed = log->capclosed ? log->capclosed * 2 : 16;
            uint64_t *nc = realloc(log->closed, log->capclosed * sizeof(*nc));
            if (nc == NULL) {
                fy__persist_err(err, errlen, "out of memory opening log %s", dir);
                goto out;
            }
            log->closed = nc;
        }
        log->closed[log->nclosed++] = segs[i].first;
    }
    if ((log->fd = seg_create(dir, next_seq, err, errlen)) < 0)
        goto out;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    pthread_cond_init(&log->wcv, NULL);
    log->seg_first = next_seq;
    log->next_seq = next_seq;
    log->durable_seq = next_seq - 1;
    log->st.last_seq = log->st.durable_seq = next_seq - 1;
    log->st.bytes = FY_LOG_SEG_HEADER;
    *out = log;
    log = NULL;
    rc = 0;
out:
    if (log != NULL) {
        free(log->closed);
        free(log->dir);
        free(log);
    }
    free(segs);
    return rc;
}

/* Called with mu held, no flush running and records pending; returns with mu held. */
static void flush_locked(fy_log_t *log)
{
    assert(!log->flushing && log->len > 0 && log->err == 0);
    uint8_t *b = log->buf;
    size_t n = log->len, bcap = log->cap;
    uint64_t upto = log->next_seq - 1, nrec = upto - log->durable_seq;
    log->buf = log->spare;
    log->cap = log->spare_cap;
    log->len = 0;
    log->spare = NULL;
    log->spare_cap = 0;
    log->flushing = 1;
    int fd = log->fd;
    pthread_mutex_unlock(&log->mu);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *op = "write";
    int rc = write_all(fd, b, n);
    if (rc == 0) {
        op = "fdatasync";
        rc = fy__persist_sync(fd, 1);
    }
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);

    pthread_mutex_lock(&log->mu);
    log->flushing = 0;
    log->last_batch = nrec;
    log->last_sync_ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    if (rc != 0) {
        log->err = saved ? saved : EIO;
        /* named once, for the operator: the first failure is the one that matters (later ones are EIO) */
        snprintf(log->failure, sizeof(log->failure), "%s %s/%016" PRIx64 SEG_SUFFIX ": %s", op, log->dir, log->seg_first,
                 strerror(log->err));
    } else {
        log->durable_seq = upto;
        log->st.durable_seq = upto;
        log->st.appends += nrec;
        log->st.syncs++;
        log->st.bytes += n;
        if (nrec > log->st.max_batch)
            log->st.max_batch = nrec;
    }
    if (bcap > SPARE_KEEP) {
        free(b);
        b = NULL;
        bcap = 0;
    }
    if (log->spare == NULL) {
        log->spare = b;
        log->spare_cap = bcap;
    } else {
        free(b);
    }
    pthread_cond_broadcast(&log->cv);
    /* a flush by someone else (rotate, close) while records piled up: the writer takes them next */
    if (log->writer_idle && log->len > 0)
        pthread_cond_signal(&log->wcv);
    if (log->notify != NULL)
        log->notify(log->notify_ctx, log->durable_seq, log->err);
}

int fy_log_submit(fy_log_t *log, unsigned type, const void *payload, size_t len, uint64_t *seq)
{
    if (type == 0 || type > 255 || len > FY_LOG_MAX_PAYLOAD || (len > 0 && payload == NULL)) {
        errno = EINVAL;
        return -1;
    }
    uint32_t pcrc = fy_crc32c(0, payload, len); /* outside the lock: the expensive part of the checksum */
    size_t need = FY_LOG_REC_HEADER + len;
    pthread_mutex_lock(&log->mu);
    int rc = -1;
    if (log->err != 0) {
        errno = EIO;
        goto out;
    }
    if (log->cap - log->len < need) {
        size_t ncap = log->cap ? log->cap : 64 * 1024;
        while (ncap - log->len < need)
            ncap *= 2;
        uint8_t *nb = realloc(log->buf, ncap);
        if (nb == NULL) {
            errno = ENOMEM;
            goto out;
        }
        log->buf = nb;
        log->cap = ncap;
    }
    uint8_t *p = log->buf + log->len;
    uint64_t s = log->next_seq++;
    fy_put_le32(p, (uint32_t)len);
    p[8] = (uint8_t)type;
    fy_put_le64(p + 9, s);
    fy_put_le32(p + 4, rec_crc(pcrc, p));
    if (len > 0)
        memcpy(p + FY_LOG_REC_HEADER, payload, len);
    log->len += need;
    log->st.last_seq = s;
    if (seq != NULL)
        *seq = s;
    /* the writer sleeps for the first record, or gathers until enough are pending (commit delay) */
    if (log->writer_idle || (log->writer_gathering && log->next_seq - 1 - log->durable_seq >= log->gather))
        pthread_cond_signal(&log->wcv);
    rc = 0;
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int fy_log_wait(fy_log_t *log, uint64_t seq)
{
    pthread_mutex_lock(&log->mu);
    assert(seq < log->next_seq);
    while (log->durable_seq < seq && log->err == 0) {
        if (log->flushing)
            pthread_cond_wait(&log->cv, &log->mu);
        else
            flush_locked(log);
    }
    int rc = 0;
    if (log->durable_seq < seq) {
        errno = log->err;
        rc = -1;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int fy_log_append(fy_log_t *log, unsigned type, const void *payload, size_t len, uint64_t *seq)
{
    uint64_t s;
    if (fy_log_submit(log, type, payload, len, &s) != 0)
        return -1;
    if (seq != NULL)
        *seq = s;
    return fy_log_wait(log, s);
}

/* Called with mu held, records pending: the commit delay (file comment). Returns with mu held. */
static void gather_locked(fy_log_t *log)
{
    int64_t delay = log->last_sync_ns / 2 < GATHER_MAX_NS ? log->last_sync_ns / 2 : GATHER_MAX_NS;
    if (log->gather <= 1 || delay <= 0 || log->next_seq - 1 - log->durable_seq >= log->gather)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_cond_timedwait's default clock */
    until.tv_nsec += delay;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    log->writer_gathering = 1;
    while (!log->writer_stop && log->err == 0 && log->next_seq - 1 - log->durable_seq < log->gather)
        if (pthread_cond_timedwait(&log->wcv, &log->mu, &until) != 0)
            break;
    log->writer_gathering = 0;
}

/* The writer thread: flushes whatever is pending whenever no flush runs, until told to stop (fy_log_close then
 * drains what is left). After a failure there is nothing more it can do: it waits for the stop. */
static void *writer_main(void *arg)
{
    fy_log_t *log = arg;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (!log->writer_stop && (log->len == 0 || log->flushing || log->err != 0)) {
            log->writer_idle = 1;
            pthread_cond_wait(&log->wcv, &log->mu);
            log->writer_idle = 0;
        }
        if (log->writer_stop)
            break;
        gather_locked(log);
        if (log->writer_stop || log->flushing || log->err != 0 || log->len == 0)
            continue; /* a rotation or close flushed meanwhile, or it is time to stop */
        flush_locked(log);
        /* the clients just answered come back, next to the records that piled up during this sync */
        log->gather = log->last_batch + (log->next_seq - 1 - log->durable_seq);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

int fy_log_start_writer(fy_log_t *log, fy_log_notify_cb notify, void *ctx)
{
    pthread_mutex_lock(&log->mu);
    assert(!log->has_writer && log->next_seq == log->durable_seq + 1);
    log->notify = notify;
    log->notify_ctx = ctx;
    int rc = pthread_create(&log->writer, NULL, writer_main, log);
    if (rc == 0)
        log->has_writer = 1;
    pthread_mutex_unlock(&log->mu);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* Called with mu held: waits out a running flush and flushes what is pending, until nothing is. */
static int drain_locked(fy_log_t *log)
{
    while ((log->flushing || log->len > 0) && log->err == 0) {
        if (log->flushing)
            pthread_cond_wait(&log->cv, &log->mu);
        else
            flush_locked(log);
    }
    if (log->err != 0) {
        errno = log->err;
        return -1;
    }
    return 0;
}

int fy_log_rotate(fy_log_t *log, uint64_t *first_seq)
{
    pthread_mutex_lock(&log->mu);
    int rc = -1;
    if (drain_locked(log) != 0)
        goto out;
    /* The mutex stays held from here: no submit can slip a record between the drain and the new segment. */
    if (log->nclosed == log->capclosed) {
        size_t ncap = log->capclosed ? log->capclosed * 2 : 16;
        uint64_t *nc = realloc(log->closed, ncap * sizeof(*nc));
        if (nc == NULL) {
            errno = ENOMEM;
            goto out;
        }
        log->closed = nc;
        log->capclosed = ncap;
    }
    char msg[256];
    int fd = seg_create(log->dir, log->next_seq, msg, sizeof(msg));
    if (fd < 0)
        goto out; /* the old segment stays current and intact */
    close(log->fd);
    log->closed[log->nclosed++] = log->seg_first;
    log->fd = fd;
    log->seg_first = log->next_seq;
    log->st.bytes += FY_LOG_SEG_HEADER;
    if (first_seq != NULL)
        *first_seq = log->seg_first;
    rc = 0;
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int fy_log_truncate_before(fy_log_t *log, uint64_t seq)
{
    pthread_mutex_lock(&log->mu);
    size_t del = 0;
    int rc = 0;
    /* closed[i] holds closed[i] .. (next segment's first) - 1 */
    while (del < log->nclosed) {
        uint64_t end = del + 1 < log->nclosed ? log->closed[del + 1] : log->seg_first;
        if (end > seq)
            break;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%016" PRIx64 SEG_SUFFIX, log->dir, log->closed[del]);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = -1;
            break;
        }
        del++;
    }
    memmove(log->closed, log->closed + del, (log->nclosed - del) * sizeof(*log->closed));
    log->nclosed -= del;
    pthread_mutex_unlock(&log->mu);
    if (del > 0 && fy__persist_sync_dir(log->dir) != 0)
        rc = -1;
    return rc == 0 ? (int)del : -1;
}

const char *fy_log_failure(fy_log_t *log)
{
    /* no lock: failure is written once, under the mutex, before err is set and before the notify that reports it;
     * the caller has seen that report (or a call that returned the error), which orders the write before this read */
    return log->failure[0] != '\0' ? log->failure : NULL;
}

void fy_log_get_stats(fy_log_t *log, fy_log_stats_t *st)
{
    pthread_mutex_lock(&log->mu);
    *st = log->st;
    pthread_mutex_unlock(&log->mu);
}

int fy_log_close(fy_log_t *log)
{
    if (log == NULL)
        return 0;
    pthread_mutex_lock(&log->mu);
    if (log->has_writer) {
        log->writer_stop = 1;
        pthread_cond_signal(&log->wcv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->writer, NULL);
        pthread_mutex_lock(&log->mu);
        log->has_writer = 0;
    }
    int rc = drain_locked(log);
    pthread_mutex_unlock(&log->mu);
    if (close(log->fd) != 0)
        rc = -1;
    pthread_cond_destroy(&log->cv);
    pthread_cond_destroy(&log->wcv);
    pthread_mutex_destroy(&log->mu);
    free(log->buf);
    free(log->spare);
    free(log->closed);
    free(log->dir);
    free(log);
    return rc;
}

int fy_log_dir_for(const char *file, char *out, size_t outlen)
{
    size_t n = strlen(file);
    if (n + sizeof(SEG_SUFFIX) > outlen)
        return -1;
    memcpy(out, file, n);
    memcpy(out + n, SEG_SUFFIX, sizeof(SEG_SUFFIX));
    return 0;
}

/* Replay ------------------------------------------------------------------------------------------------------- */

enum { REC_OK, REC_SHORT_HEADER, REC_BAD_LENGTH, REC_SHORT_PAYLOAD, REC_BAD_TYPE, REC_BAD_CRC };

static const char *const rec_problem[] = {
    [REC_OK] = "ok",
    [REC_SHORT_HEADER] = "incomplete record header",
    [REC_BAD_LENGTH] = "impossible length",
    [REC_SHORT_PAYLOAD] = "record runs past the end of the file",
    [REC_BAD_TYPE] = "record type 0",
    [REC_BAD_CRC] = "checksum mismatch",
};

static int rec_check(const uint8_t *p, size_t avail, size_t *total)
{
    if (avail < FY_LOG_REC_HEADER)
        return REC_SHORT_HEADER;
    uint32_t len = fy_get_le32(p);
    if (len > FY_LOG_MAX_PAYLOAD)
        return REC_BAD_LENGTH;
    if ((size_t)len > avail - FY_LOG_REC_HEADER)
        return REC_SHORT_PAYLOAD;
    if (p[8] == 0)
        return REC_BAD_TYPE;
    if (rec_crc(fy_crc32c(0, p + FY_LOG_REC_HEADER, len), p) != fy_get_le32(p + 4))
        return REC_BAD_CRC;
    *total = FY_LOG_REC_HEADER + (size_t)len;
    return REC_OK;
}

/*
 * After damage at `from`, looks for a valid record further on whose sequence number could follow: min_seq up to
 * one more per 17 bytes skipped. Finding one means the damage is in the middle, not a torn tail. Cheap on real
 * damage: most offsets fail on the length or the sequence number before any checksum is computed.
 */
static size_t find_next_valid(const uint8_t *p, size_t size, size_t from, uint64_t min_seq)
{
    for (size_t off = from + 1; off + FY_LOG_REC_HEADER <= size; off++) {
        uint64_t s = fy_get_le64(p + off + 9);
        if (s < min_seq || s - min_seq > (off - from) / FY_LOG_REC_HEADER + 1)
            continue;
        size_t total;
        if (rec_check(p + off, size - off, &total) == REC_OK)
            return off;
    }
    return SIZE_MAX;
}

typedef struct {
    const char *dir;
    unsigned flags;
    fy_log_replay_cb cb;
    void *ctx;
    uint64_t after_seq;
    uint64_t expect; /* next sequence number; 0 before the first segment read */
    fy_log_replay_info_t *info;
    char *err;
    size_t errlen;
} replay_t;

/* Returns 0 to go on, -1 on an error (message set), or the callback's nonzero value. */
static int replay_segment(replay_t *r, const seg_ent_t *seg, int last)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", r->dir, seg->name);
    int skip = (r->flags & FY_LOG_REPLAY_SKIP_DAMAGED) != 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fy__persist_err(r->err, r->errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        fy__persist_err(r->err, r->errlen, "stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    const uint8_t *p = NULL;
    if (size > 0) {
        p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            fy__persist_err(r->err, r->errlen, "mmap %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    int rc = 0;
    r->info->segments++;

    /* segments are renamed into place only after their header is synced: a bad header is damage, never a crash */
    const char *hproblem = NULL;
    if (size < FY_LOG_SEG_HEADER)
        hproblem = "file shorter than the segment header";
    else if (memcmp(p, SEG_MAGIC, 8) != 0)
        hproblem = "bad magic (not a ferry log segment)";
    else if (fy_get_le32(p + 24) != fy_crc32c(0, p, 24))
        hproblem = "header checksum mismatch";
    else if (fy_get_le32(p + 8) != SEG_VERSION)
        hproblem = "unsupported segment version";
    else if (fy_get_le64(p + 16) != seg->first)
        hproblem = "header sequence number does not match the file name";
    if (hproblem != NULL) {
        if (!skip) {
            fy__persist_err(r->err, r->errlen, "%s: offset 0: %s", path, hproblem);
            rc = -1;
        } else {
            r->info->damaged++;
            r->info->damaged_bytes += size;
        }
        goto out;
    }
    if (r->expect != 0 && seg->first != r->expect && !skip) {
        fy__persist_err(r->err, r->errlen,
                        "%s: offset 0: log starts at sequence number %" PRIu64 ", expected %" PRIu64 " (records are missing)", path,
                        seg->first, r->expect);
        rc = -1;
        goto out;
    }
    r->expect = seg->first;

    size_t off = FY_LOG_SEG_HEADER;
    while (off < size) {
        size_t total = 0;
        int pr = rec_check(p + off, size - off, &total);
        uint64_t s = pr == REC_OK ? fy_get_le64(p + off + 9) : 0;
        if (pr == REC_OK && s == r->expect) {
            if (s > r->after_seq) {
                uint32_t len = fy_get_le32(p + off);
                rc = r->cb(r->ctx, s, p[off + 8], p + off + FY_LOG_REC_HEADER, len);
                if (rc != 0)
                    goto out;
                r->info->records++;
            }
            if (s > r->info->last_seq)
                r->info->last_seq = s;
            r->expect++;
            off += total;
            continue;
        }
        size_t next = find_next_valid(p, size, off, r->expect);
        if (last && next == SIZE_MAX) {
            /* a torn tail: the end of the last write before a crash; cut it so later segments follow clean data */
            r->info->torn = 1;
            memcpy(r->info->torn_segment, seg->name, SEG_NAME_LEN + 1);
            r->info->torn_offset = off;
            r->info->torn_bytes = size - off;
            if (!(r->flags & FY_LOG_REPLAY_READ_ONLY)) {
                int wfd = open(path, O_WRONLY | O_CLOEXEC);
                if (wfd < 0 || ftruncate(wfd, (off_t)off) != 0 || fy__persist_sync(wfd, 0) != 0) {
                    fy__persist_err(r->err, r->errlen, "truncate torn tail of %s at offset %zu: %s", path, off, strerror(errno));
                    rc = -1;
                }
                if (wfd >= 0)
                    close(wfd);
            }
            break;
        }
        const char *problem = pr == REC_OK ? "unexpected sequence number" : rec_problem[pr];
        if (!skip) {
            if (next != SIZE_MAX)
                fy__persist_err(r->err, r->errlen, "%s: offset %zu: corrupt record (%s); a valid record follows at offset %zu",
                                path, off, problem, next);
            else
                fy__persist_err(r->err, r->errlen, "%s: offset %zu: corrupt record (%s) in a segment that is not the last", path,
                                off, problem);
            rc = -1;
            goto out;
        }
        r->info->damaged++;
        r->info->damaged_bytes += (next == SIZE_MAX ? size : next) - off;
        if (next == SIZE_MAX)
            break;
        off = next;
        r->expect = fy_get_le64(p + off + 9);
    }
out:
    if (p != NULL)
        munmap((void *)p, size);
    return rc;
}

int fy_log_replay(const char *dir, uint64_t after_seq, unsigned flags, fy_log_replay_cb cb, void *ctx, fy_log_replay_info_t *info,
                  char *err, size_t errlen)
{
    memset(info, 0, sizeof(*info));
    info->last_seq = after_seq;
    seg_ent_t *segs;
    size_t n;
    if (seg_list(dir, 0, &segs, &n, err, errlen) != 0)
        return -1;
    replay_t r = {dir, flags, cb, ctx, after_seq, 0, info, err, errlen};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* wholly covered by the snapshot: not even read (fy_log_truncate_before deletes such segments) */
        if (i + 1 < n && segs[i + 1].first <= after_seq + 1)
            continue;
        if (r.expect == 0 && segs[i].first > after_seq + 1 && !(flags & FY_LOG_REPLAY_SKIP_DAMAGED)) {
            fy__persist_err(err, errlen,
                            "%s/%s: offset 0: log starts at sequence number %" PRIu64 " but the snapshot covers only"
                            " up to %" PRIu64 " (records are missing)",
                            dir, segs[i].name, segs[i].first, after_seq);
            rc = -1;
            break;
        }
        rc = replay_segment(&r, &segs[i], i + 1 == n);
    }
    free(segs);
    return rc;
}
