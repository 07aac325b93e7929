/*
 * gen.h: generations of a read-mostly object (the web configuration) published by one thread and used by others,
 * so that a reload can replace it while the HTTP loops run and no loop ever sees it half updated.
 *
 * A generation is immutable once published (apart from state that locks itself, such as the auth caches) and is
 * reference counted. The rule, which is the whole of the memory safety of a reload:
 *   - the slot holds one reference to the current generation;
 *   - each loop holds one reference to the generation it uses, and swaps it for the current one only at its own
 *     quiescent points (fy_gen_refresh: between requests, before accepting a connection, after each event-loop
 *     iteration), never in the middle of a request's synchronous handling;
 *   - anything that outlives one callback (a password check handed to the auth pool) takes a reference of its own
 *     (fy_gen_ref) and drops it when done;
 *   - the last reference dropped destroys the object, on the thread that dropped it.
 * So an old generation lives until every loop has passed a quiescent point after the publication and every
 * long-lived use has finished: a loop never reads freed memory, and no lock is taken on a request's path (one
 * acquire load compares ids).
 *
 * Threads: fy_gen_publish and fy_gen_current from any thread (the slot's mutex, a leaf lock, guards cur and the
 * reference taken from it); fy_gen_refresh, fy_gen_ref and fy_gen_unref from any thread holding the reference they
 * touch. h2o-free, so that the TSan tree tests it with threads (tests/test_http_gen.c).
 */
#ifndef FY_GEN_H
#define FY_GEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_fy_gen_t {
    atomic_size_t refs;
    uint64_t id; /* 1, 2, ... in publication order */
    void *obj;
    void (*destroy)(void *obj); /* called once, by whoever drops the last reference */
} fy_gen_t;

typedef struct st_fy_gen_slot_t {
    pthread_mutex_t lock;    /* guards cur (and next_id) */
    fy_gen_t *cur;           /* the current generation; the slot holds one reference to it */
    _Atomic uint64_t cur_id; /* cur->id, read without the lock to notice a publication */
    uint64_t next_id;
} fy_gen_slot_t;

void fy_gen_slot_init(fy_gen_slot_t *s);

/** Drops the slot's reference (the generation is destroyed once nothing else holds it). */
void fy_gen_slot_dispose(fy_gen_slot_t *s);

/** Makes obj the current generation; the slot's reference to the previous one is dropped. Returns its id, or 0 when
 * out of memory (then nothing changed and obj is not taken). */
uint64_t fy_gen_publish(fy_gen_slot_t *s, void *obj, void (*destroy)(void *obj));

/** A new reference to the current generation, or NULL before the first publication. */
fy_gen_t *fy_gen_current(fy_gen_slot_t *s);

/** The id of the current generation (0 before the first publication); one acquire load. */
uint64_t fy_gen_current_id(fy_gen_slot_t *s);

/** At a quiescent point of the holder of *held (which may be NULL): if a newer generation was published, *held
 * becomes a reference to it and the old reference is dropped. Returns 1 when *held changed. */
int fy_gen_refresh(fy_gen_slot_t *s, fy_gen_t **held);

/** One more reference to g, which the caller already holds one to. Returns g. */
fy_gen_t *fy_gen_ref(fy_gen_t *g);

/** Drops a reference (NULL: nothing); the last one destroys the object and frees g. */
void fy_gen_unref(fy_gen_t *g);

#endif
