/*
 * auth_pool.c: the password-check threads (auth_pool.h).
 */
#define _GNU_SOURCE /* gettid */
#include "auth_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

#define POOL_NICE 10 /* below the loops: under a flood the CPU goes to requests that need no hash first */
#define POOL_MAX_THREADS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;
static fy_auth_task_t *head, **tail = &head; /* guarded by lock */
static size_t queued, capacity;              /* guarded by lock */
static int running, stopping;                /* guarded by lock */
static pthread_t threads[POOL_MAX_THREADS];
static unsigned nthreads;

static void *worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "ferry-auth");
    /* per-thread on Linux: setpriority on a thread id changes that thread only */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), POOL_NICE) != 0)
        fy_log_debug("msg", "could not lower the priority of a password-check thread");
    pthread_mutex_lock(&lock);
    for (;;) {
        while (head == NULL && !stopping)
            pthread_cond_wait(&nonempty, &lock);
        if (stopping)
            break;
        fy_auth_task_t *t = head;
        if ((head = t->next) == NULL)
            tail = &head;
        queued--;
        pthread_mutex_unlock(&lock);
        t->next = NULL;
        t->result = fy_webcfg_auth_hash(t->cfg, &t->job);
        t->done(t); /* t belongs to the caller from here on */
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int fy_auth_pool_start(unsigned n, size_t max_queued)
{
    if (n == 0 || n > POOL_MAX_THREADS)
        return -1;
    pthread_mutex_lock(&lock);
    capacity = max_queued;
    stopping = 0;
    running = 1;
    pthread_mutex_unlock(&lock);
    for (nthreads = 0; nthreads < n; nthreads++) {
        if (pthread_create(&threads[nthreads], NULL, worker, NULL) != 0) {
            fy_auth_task_t *left = fy_auth_pool_stop();
            (void)left; /* nothing can have been submitted yet */
            return -1;
        }
    }
    return 0;
}

int fy_auth_pool_submit(fy_auth_task_t *task)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    if (running && !stopping && queued < capacity) {
        task->next = NULL;
        *tail = task;
        tail = &task->next;
        queued++;
        pthread_cond_signal(&nonempty);
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

fy_auth_task_t *fy_auth_pool_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_broadcast(&nonempty);
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    nthreads = 0;
    pthread_mutex_lock(&lock);
    fy_auth_task_t *left = head;
    head = NULL;
    tail = &head;
    queued = 0;
    running = 0;
    pthread_mutex_unlock(&lock);
    return left;
}
