/*
 * persist_wal.c: the write-ahead log observer (persist_wal.h).
 */
#include "persist_wal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "le.h"
#include "log.h"
#include "record.h"

typedef struct {
    unsigned type;
    uint8_t *payload;
    size_t len;
} prepared_t;

const char *fy_wal_why(fy_wal_t *w, int err)
{
    return atomic_load(&w->stats->wal_failed) ? w->reason : strerror(err);
}

static const char *wal_refuses(void *ctx)
{
    fy_wal_t *w = ctx;
    return atomic_load(&w->stats->wal_failed) ? w->reason : NULL;
}

/* built before the order lock: the copy of the body is the expensive part */
static int wal_prepare(void *ctx, const fy_change_t *c, void **state)
{
    prepared_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return -1;
    int rc = fy_record_encode(c, &p->type, &p->payload, &p->len);
    if (rc != 0)
        free(p);
    *state = rc == 0 ? p : NULL;
    return rc < 0 ? -1 : 0;
}

static const char *wal_commit(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state, uint64_t *seq)
{
    fy_wal_t *w = ctx;
    prepared_t *p = state;
    const char *why = NULL;
    *seq = 0;
    if (p != NULL && w->lww) {
        /* Replication: the change's stamp was taken under the order lock, after prepare; and a client's push is
         * logged as what it did (merged, or a failure), so that a replay does not judge it again against a store
         * that has merged other replicas' changes in between. */
        fy_put_le64(p->payload + 1, (uint64_t)c->now_ns);
        if (p->type == FY_REC_PUSH && r != NULL && !c->merge) {
            p->type = r->status < 300 && !r->failure ? FY_REC_MERGE : FY_REC_FAIL;
            if (!r->failure && r->status >= 300)
                changed = 0; /* refused by a limit: nothing happened */
        }
    }
    if (p != NULL && changed && fy_log_submit(w->log, p->type, p->payload, p->len, seq) != 0) {
        *seq = 0;
        why = fy_wal_why(w, errno);
    }
    if (p != NULL) {
        free(p->payload);
        free(p);
    }
    return why;
}

static const char *wal_wait(void *ctx, uint64_t seq)
{
    fy_wal_t *w = ctx;
    return fy_log_wait(w->log, seq) == 0 ? NULL : fy_wal_why(w, errno);
}

fy_change_observer_t fy_wal_observer(fy_wal_t *w)
{
    fy_change_observer_t o = {w, 1, wal_refuses, wal_prepare, wal_commit, wal_wait, 0};
    return o;
}

void fy_wal_failed(fy_wal_t *w, uint64_t durable_seq, int err)
{
    const char *what = fy_log_failure(w->log);
    char when[32], seq[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)durable_seq);
    snprintf(w->reason, sizeof(w->reason),
             "write-ahead log failed: %s at %s; changes are refused until a restart; see docs/persistence.md",
             what != NULL ? what : strerror(err), when);
    fy_log_error("msg",
                 "the write-ahead log failed: every change is refused with 500, and /-/ready and /-/healthy "
                 "answer 503, until a restart (free space first; acknowledged changes are kept)",
                 "err", what != NULL ? what : strerror(err), "last_durable_seq", seq);
    /* after the reason is written: readers check the flag first */
    atomic_store(&w->stats->wal_failed, 1);
}
