/*
 * reaper.c: the expiry timer (reaper.h).
 */
#include "reaper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer. */

int fy_reaper_log(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    char buf[1024];
    size_t n = 0;
    buf[n++] = '{';
    for (uint32_t i = 0; i < g->nlabels && n < sizeof(buf) - 8; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%.*s=\"%.*s\"", i ? "," : "", (int)g->labels[i].name.len,
                              g->labels[i].name.ptr, (int)g->labels[i].value.len, g->labels[i].value.ptr);
    if (n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '}';
    buf[n] = '\0';
    char dl[32];
    snprintf(dl, sizeof(dl), "%.3f", (double)g->deadline_ns / 1e9);
    fy_log_debug("msg", "group expired", "group", buf, "deadline", dl);
    return 0;
}

static void *reaper_main(void *arg)
{
    fy_reaper_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        pthread_mutex_unlock(&r->mu);
        r->pass(r->ctx, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += FY_REAPER_TICK_NS;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int fy_reaper_start(fy_reaper_t *r, uint64_t (*pass)(void *ctx, int64_t now_ns), void *ctx)
{
    pthread_condattr_t ca;
    memset(r, 0, sizeof(*r));
    r->pass = pass;
    r->ctx = ctx;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, reaper_main, r) != 0)
        return -1;
    r->running = 1;
    return 0;
}

void fy_reaper_stop(fy_reaper_t *r)
{
    if (!r->running)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->running = 0;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}
