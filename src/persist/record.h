/*
 * record.h: the write-ahead log's record of a change (change.h), and back.
 *
 *   push   (type 1)  u8 version | i64 now_ns | u8 method (0 PUT, 1 POST) | u8 body format | grouping labels | body
 *   delete (type 2)  u8 version | i64 now_ns | grouping labels
 *   wipe   (type 3)  u8 version | i64 now_ns
 *   bulk   (type 4)  u8 version | i64 now_ns | the query string of DELETE /api/v1/admin/groups (re-evaluated at now_ns)
 *   merge  (type 5)  as push: a replicated push (change.h's merge), or with replication on, a client's push that was
 *                    accepted (replayed without a verdict)
 *   fail   (type 6)  as push (the body is not read): a push refused at now_ns (the group's failure time)
 *   kill   (type 7)  u8 version | i64 now_ns | grouping labels | u32 length | the family's name
 *   drop   (type 8)  u8 version | i64 now_ns: replication's drop of stale state (change.h): every group, tombstone and
 *                    kill before it is forgotten
 *
 * version is 1, except a push that declared a lifetime (X-Ferry-TTL, X-Ferry-Interval): version 2, with i64 ttl_ns |
 * i64 interval_ns (fy_store_life_t's encoding) after the body format. An expiry is written as a delete (a push
 * replayed after its group's deadline finds the group expired by itself). grouping labels = u32 count, then per label
 * u32 name length | name | u32 value length | value. The body is the decoded request body (gzip/snappy undone) and
 * runs to the end of the payload. Integers are little-endian. The log itself (framing, checksums, segments) is
 * persist_log.h's.
 */
#ifndef FY_RECORD_H
#define FY_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "change.h"

enum {
    FY_REC_PUSH = 1,
    FY_REC_DELETE = 2,
    FY_REC_WIPE = 3,
    FY_REC_BULK = 4,
    FY_REC_MERGE = 5,
    FY_REC_FAIL = 6,
    FY_REC_KILL = 7,
    FY_REC_DROP = 8
};

/** The record of c: its type and a malloc'd payload. Returns 0; 1 when c is not logged (a restored group); -1 when
 * out of memory. */
int fy_record_encode(const fy_change_t *c, unsigned *type, uint8_t **payload, size_t *len);

/* A decoded record: the change points into the payload and into labels (owned). */
typedef struct st_fy_record_t {
    fy_change_t change;
    fy_store_life_t life;
    fy_store_label_t *labels;
} fy_record_t;

/** Decodes one record into r (free with fy_record_free, whatever the result). Every field is bounds-checked.
 * Returns 0, or -1 when the payload is not a well-formed record of that type. */
int fy_record_decode(unsigned type, const void *payload, size_t len, fy_record_t *r);

void fy_record_free(fy_record_t *r);

#endif
