/*
 * gen.c: reference-counted generations of a published object (gen.h has the ownership rule).
 */
#include "gen.h"

#include <stdlib.h>

void fy_gen_slot_init(fy_gen_slot_t *s)
{
    pthread_mutex_init(&s->lock, NULL);
    s->cur = NULL;
    atomic_init(&s->cur_id, 0);
    s->next_id = 1;
}

void fy_gen_slot_dispose(fy_gen_slot_t *s)
{
    pthread_mutex_lock(&s->lock);
    fy_gen_t *old = s->cur;
    s->cur = NULL;
    atomic_store_explicit(&s->cur_id, 0, memory_order_release);
    pthread_mutex_unlock(&s->lock);
    fy_gen_unref(old);
    pthread_mutex_destroy(&s->lock);
}

uint64_t fy_gen_publish(fy_gen_slot_t *s, void *obj, void (*destroy)(void *obj))
{
    fy_gen_t *g = malloc(sizeof(*g));
    if (g == NULL)
        return 0;
    atomic_init(&g->refs, 1); /* the slot's */
    g->obj = obj;
    g->destroy = destroy;
    pthread_mutex_lock(&s->lock);
    g->id = s->next_id++;
    fy_gen_t *old = s->cur;
    s->cur = g;
    /* release: a reader that sees the new id and then takes the lock finds g (the lock orders that anyway; the
     * release keeps the id meaningful to readers that only compare it) */
    atomic_store_explicit(&s->cur_id, g->id, memory_order_release);
    pthread_mutex_unlock(&s->lock);
    fy_gen_unref(old); /* outside the lock: destroying may take a while */
    return g->id;
}

fy_gen_t *fy_gen_current(fy_gen_slot_t *s)
{
    pthread_mutex_lock(&s->lock);
    fy_gen_t *g = s->cur;
    if (g != NULL) /* the slot's reference keeps g alive while the lock is held */
        atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return g;
}

uint64_t fy_gen_current_id(fy_gen_slot_t *s)
{
    return atomic_load_explicit(&s->cur_id, memory_order_acquire);
}

int fy_gen_refresh(fy_gen_slot_t *s, fy_gen_t **held)
{
    uint64_t id = fy_gen_current_id(s);
    if (*held != NULL ? (*held)->id == id : id == 0)
        return 0;
    fy_gen_t *g = fy_gen_current(s);
    if (g == *held) { /* published and read back between the two loads: nothing new after all */
        fy_gen_unref(g);
        return 0;
    }
    fy_gen_unref(*held);
    *held = g;
    return 1;
}

fy_gen_t *fy_gen_ref(fy_gen_t *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void fy_gen_unref(fy_gen_t *g)
{
    if (g == NULL)
        return;
    /* acq_rel: every use of the object by other holders happens before the destroy below */
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (g->destroy != NULL)
        g->destroy(g->obj);
    free(g);
}
