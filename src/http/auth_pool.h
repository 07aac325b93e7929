/*
 * auth_pool.h: the threads that check basic-auth passwords, off the HTTP event loops.
 *
 * A bcrypt check takes tens of milliseconds of CPU. Run on a loop thread, a flood of wrong passwords stops every
 * other request on that loop (issue #13: 0 of 2 legitimate pushes completed under 200 flooding connections). Here it
 * runs on a few threads of lower scheduling priority, behind a bounded queue: the loops keep serving the requests
 * whose credentials the caches decide (webconfig.h), and a check that does not fit in the queue is refused at once
 * (the caller answers 503 with Retry-After) instead of queueing without bound.
 *
 * Threads: submit from any thread; done runs on a pool thread. The queue is guarded by the pool's mutex.
 */
#ifndef FY_AUTH_POOL_H
#define FY_AUTH_POOL_H

#include <stddef.h>

#include "webconfig.h"

typedef struct st_fy_auth_task_t {
    struct st_fy_auth_task_t *next; /* the queue's link */
    fy_webcfg_t *cfg;
    fy_auth_job_t job;
    fy_auth_result_t result; /* ALLOW or DENY, set before done is called */
    /* on a pool thread once the hash is done; never called for tasks still queued at fy_auth_pool_stop */
    void (*done)(struct st_fy_auth_task_t *task);
} fy_auth_task_t;

/** Starts nthreads threads (nice 10) and a queue of at most max_queued tasks. 0, or -1 (nothing started). */
int fy_auth_pool_start(unsigned nthreads, size_t max_queued);

/** Queues a task. 0, or -1 when the queue is full or the pool is not running (the task is not taken). */
int fy_auth_pool_submit(fy_auth_task_t *task);

/** Stops and joins the threads; returns the tasks that were never run, linked by next (the caller frees them). */
fy_auth_task_t *fy_auth_pool_stop(void);

#endif
