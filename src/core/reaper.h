/*
 * reaper.h: the expiry timer (docs/beyond-pushgateway.md): a thread that runs an expiry pass several times a second.
 */
#ifndef FY_REAPER_H
#define FY_REAPER_H

#include <pthread.h>
#include <stdint.h>

#include "store.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer: a thread that calls pass(ctx, now) every FY_REAPER_TICK_NS, so that a group disappears within
 * FY_REAPER_TICK_NS (plus the pass) of its deadline. A store without TTLs costs one lock per shard and tick. */

#define FY_REAPER_TICK_NS 200000000LL

typedef struct st_fy_reaper_t {
    uint64_t (*pass)(void *ctx, int64_t now_ns);
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, running;
} fy_reaper_t;

int fy_reaper_start(fy_reaper_t *r, uint64_t (*pass)(void *ctx, int64_t now_ns), void *ctx);
void fy_reaper_stop(fy_reaper_t *r);

/** fy_store_expire's callback that logs the group at debug level ("group expired"); ctx is unused. */
int fy_reaper_log(void *ctx, const fy_store_group_view_t *g);
#endif
