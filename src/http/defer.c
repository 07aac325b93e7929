/*
 * defer.c: the parked-request queue and the release mark of deferred answers (defer.h). The queue is a plain
 * doubly-linked list in ticket order: requests are parked in the order their loop submitted them, so the ones a
 * mark releases are always at its head, and one that goes away is unlinked from the middle in O(1).
 */
#include "defer.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

void fy_defer_queue_init(fy_defer_queue_t *q)
{
    h2o_linklist_init_anchor(&q->parked);
    q->count = 0;
    q->last_ticket = 0;
}

void fy_defer_queue_push(fy_defer_queue_t *q, fy_parked_t *p, uint64_t ticket)
{
    assert(ticket >= q->last_ticket);
    p->ticket = q->last_ticket = ticket;
    h2o_linklist_insert(&q->parked, &p->link);
    q->count++;
}

void fy_defer_queue_remove(fy_defer_queue_t *q, fy_parked_t *p)
{
    assert(h2o_linklist_is_linked(&p->link) && q->count > 0);
    h2o_linklist_unlink(&p->link);
    q->count--;
}

fy_parked_t *fy_defer_queue_next(fy_defer_queue_t *q, uint64_t upto, int err, uint64_t late, int *err_out)
{
    if (h2o_linklist_is_empty(&q->parked))
        return NULL;
    fy_parked_t *p = (fy_parked_t *)((char *)q->parked.next - offsetof(fy_parked_t, link));
    if (p->ticket <= upto)
        *err_out = 0;
    else if (err != 0)
        *err_out = err;
    else if (p->ticket <= late)
        *err_out = ETIMEDOUT;
    else
        return NULL;
    fy_defer_queue_remove(q, p);
    return p;
}

/* The struct's fields are plain in the header (C++ includes it); every access here goes through these views. */
#define UPTO(m) ((_Atomic uint64_t *)&(m)->_upto)
#define ERR(m) ((_Atomic int *)&(m)->_err)
#define LATE(m) ((_Atomic uint64_t *)&(m)->_late)

void fy_defer_mark(fy_defer_mark_t *m, uint64_t upto, int err)
{
    uint64_t cur = atomic_load(UPTO(m));
    while (cur < upto && !atomic_compare_exchange_weak(UPTO(m), &cur, upto))
        ;
    if (err != 0) {
        int zero = 0;
        atomic_compare_exchange_strong(ERR(m), &zero, err); /* the first failure's errno stays */
    }
}

void fy_defer_mark_late(fy_defer_mark_t *m, uint64_t late)
{
    uint64_t cur = atomic_load(LATE(m));
    while (cur < late && !atomic_compare_exchange_weak(LATE(m), &cur, late))
        ;
}

void fy_defer_mark_read(fy_defer_mark_t *m, uint64_t *upto, int *err, uint64_t *late)
{
    *err = atomic_load(ERR(m));
    *late = atomic_load(LATE(m));
    *upto = atomic_load(UPTO(m));
}
