/*
 * defer.h: the bookkeeping of deferred answers, apart from h2o so that it can be unit-tested: a loop thread's queue
 * of parked requests in ticket order, and the release mark that another thread raises (every ticket up to N is
 * done, or everything after N has failed). The server (server.c) embeds fy_parked_t in its own entry and does the
 * answering; durable mode's tickets are write-ahead log sequence numbers.
 */
#ifndef FY_DEFER_H
#define FY_DEFER_H

#include <stddef.h>
#include <stdint.h>

#include <h2o/linklist.h>

typedef struct st_fy_parked_t {
    h2o_linklist_t link; /* in fy_defer_queue_t.parked while parked */
    uint64_t ticket;
} fy_parked_t;

/* One loop thread's parked requests; only that thread touches it. */
typedef struct st_fy_defer_queue_t {
    h2o_linklist_t parked; /* ascending tickets */
    size_t count;
    uint64_t last_ticket;
} fy_defer_queue_t;

/* How far the work behind the tickets has got; written by any thread (fy_defer_mark), read by the loops. The two
 * fields are C11 atomics behind the accessors below (uint64_t here so that C++ can include the header). */
typedef struct st_fy_defer_mark_t {
    uint64_t _upto; /* every ticket <= _upto is done */
    int _err;       /* nonzero: every ticket > _upto has failed with this errno, and so will any later one */
    uint64_t _late; /* every ticket <= _late that _upto does not cover has timed out (ETIMEDOUT): a replicated
                     * change whose write quorum did not answer in time (only those tickets; later ones may pass) */
} fy_defer_mark_t;

void fy_defer_queue_init(fy_defer_queue_t *q);

/** Parks p (zeroed, or taken out since it was last parked) under ticket. Tickets given to one queue must not
 * decrease (asserted). */
void fy_defer_queue_push(fy_defer_queue_t *q, fy_parked_t *p, uint64_t ticket);

/** Takes p out of the queue before its ticket is decided (its request went away). p must be parked in q. */
void fy_defer_queue_remove(fy_defer_queue_t *q, fy_parked_t *p);

/**
 * Unlinks and returns the oldest parked entry whose fate the mark (upto, err, late) decides: *err_out = 0 if its
 * ticket is <= upto, else err if err is nonzero, else ETIMEDOUT if the ticket is <= late. NULL once no parked entry is
 * decided.
 */
fy_parked_t *fy_defer_queue_next(fy_defer_queue_t *q, uint64_t upto, int err, uint64_t late, int *err_out);

/** Raises the mark: upto only grows (a smaller one is ignored), and a nonzero err sticks. Any thread. */
void fy_defer_mark(fy_defer_mark_t *m, uint64_t upto, int err);

/** Raises the timed-out mark: tickets up to late that upto does not cover fail with ETIMEDOUT. Any thread. */
void fy_defer_mark_late(fy_defer_mark_t *m, uint64_t late);

/** Reads the mark, upto last, so that a failure or a time-out is never seen with an upto older than the one it was
 * raised with (a ticket released before it timed out is released). */
void fy_defer_mark_read(fy_defer_mark_t *m, uint64_t *upto, int *err, uint64_t *late);

#endif
