/*
 * mem_bench.c: a pointer chase through a random cycle of cache lines, to measure what one dependent load costs when
 * its line is in the cache (a buffer the size of the 1k-series store) and when it is not (a buffer the size of the
 * 1M-series store). The store's push at 1M series waits for such loads (bucket -> group -> families -> slots), so
 * this is the floor under the "same push cost at 1k and 1M" goal: each dependent miss adds this much to a push.
 * Also a ping-pong of one cache line between two threads: what a line written by both cores costs. On this VM it
 * changes with where the host places the two vCPUs (107 ns or 380 ns per round trip on the same day), and the
 * 2-thread push figures of bench_store change with it (docs/store.md).
 */
#include "mem_bench.h"

#include "bench_rand.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define LINE 64

struct st_fy_bench_chase_t {
    char *mem;
    size_t nlines;
    uintptr_t at;
};

fy_bench_chase_t *fy_bench_chase_new(size_t bytes, uint64_t seed)
{
    fy_bench_chase_t *c = calloc(1, sizeof(*c));
    c->nlines = bytes / LINE;
    if (c->nlines < 2)
        c->nlines = 2;
    c->mem = aligned_alloc(LINE, c->nlines * LINE);
    size_t *order = malloc(c->nlines * sizeof(*order));
    if (c->mem == NULL || order == NULL)
        abort();
    for (size_t i = 0; i < c->nlines; i++)
        order[i] = i;
    for (size_t i = c->nlines - 1; i > 0; i--) { /* Fisher-Yates: one cycle through every line in random order */
        size_t j = (size_t)(fy_bench_rand(&seed) % (i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < c->nlines; i++)
        *(char **)(void *)(c->mem + order[i] * LINE) = c->mem + order[(i + 1) % c->nlines] * LINE;
    c->at = (uintptr_t)(c->mem + order[0] * LINE);
    free(order);
    return c;
}

void fy_bench_chase_free(fy_bench_chase_t *c)
{
    free(c->mem);
    free(c);
}

uintptr_t fy_bench_chase(fy_bench_chase_t *c, size_t steps)
{
    char *p = (char *)c->at;
    for (size_t i = 0; i < steps; i++)
        p = *(char **)(void *)p;
    c->at = (uintptr_t)p;
    return c->at;
}

static struct {
    _Alignas(64) _Atomic uint64_t turn; /* odd: the partner's move, even: the caller's */
    size_t rounds;
} pingpong;

static void *pong(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < pingpong.rounds; i++) {
        while (atomic_load_explicit(&pingpong.turn, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&pingpong.turn, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

double fy_bench_core_round_trip(size_t rounds)
{
    pthread_t t;
    atomic_store(&pingpong.turn, 0);
    pingpong.rounds = rounds;
    if (pthread_create(&t, NULL, pong, NULL) != 0)
        abort();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < rounds; i++) {
        atomic_store_explicit(&pingpong.turn, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&pingpong.turn, memory_order_acquire) != 2 * i + 2)
            ;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)rounds;
}
