/*
 * log_notes.h: what the write-ahead log's writer thread notified (fy_log_start_writer's callback), kept as the
 * server keeps its release mark, and a durable append on top of it (submit, then wait to be told): the way durable
 * mode appends. Shared by the log's tests and its benchmark (bench/persist_bench.c), which compile
 * src/persist_log.c in before including this.
 */
#ifndef FY_LOG_NOTES_H
#define FY_LOG_NOTES_H

#include <pthread.h>
#include <stdint.h>

#include "../src/persist/persist_log.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t durable; /* last durable_seq notified */
    int err;          /* last err notified */
    unsigned calls, errs, went_down;
} fy_log_notes_t;

#define FY_LOG_NOTES_INIT                                                                                                          \
    {                                                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0                                                         \
    }

/* Forgets earlier notifications (before a writer is started again). */
static inline void fy_log_notes_reset(fy_log_notes_t *n)
{
    pthread_mutex_lock(&n->mu);
    n->durable = 0;
    n->err = 0;
    n->calls = n->errs = n->went_down = 0;
    pthread_mutex_unlock(&n->mu);
}

/* The notify callback; ctx is the fy_log_notes_t. */
static inline void fy_log_note(void *ctx, uint64_t durable_seq, int err)
{
    fy_log_notes_t *n = ctx;
    pthread_mutex_lock(&n->mu);
    if (durable_seq < n->durable)
        n->went_down++;
    n->durable = durable_seq;
    n->err = err;
    n->calls++;
    n->errs += err != 0;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* Waits until the writer reported seq durable (returns 0) or an error (-1). */
static inline int fy_log_notes_wait(fy_log_notes_t *n, uint64_t seq)
{
    pthread_mutex_lock(&n->mu);
    while (n->durable < seq && n->err == 0)
        pthread_cond_wait(&n->cv, &n->mu);
    int rc = n->durable >= seq ? 0 : -1;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

/* A durable append as durable mode's server does it: submit, then wait for the writer's notification. */
static inline int fy_log_append_notified(fy_log_t *log, fy_log_notes_t *n, unsigned type, const void *rec, size_t len)
{
    uint64_t seq;
    if (fy_log_submit(log, type, rec, len, &seq) != 0)
        return -1;
    return fy_log_notes_wait(n, seq);
}

#endif
