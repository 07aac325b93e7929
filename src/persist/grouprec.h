/*
 * grouprec.h: one group as a record, and back: the snapshot's group record and the cluster's state transfer share it.
 *
 * Layout (little-endian):
 *   u8 version: 1, 2 (with a declared lifetime) or 3 (with the replication registers)
 *   u32 nlabels, then per grouping label: u32 len, name, u32 len, value
 *   i64 push_ns, push_stamp_ns, fail_ns, fail_stamp_ns; u32 origin
 *   versions 2 and 3: i64 ttl_ns, i64 interval_ns (the declared lifetime, fy_store_life_t's encoding)
 *   version 3 only:   i64 clear_ns, del_ns, ttl_stamp_ns, interval_stamp_ns; u8 flags (bit 0: a tombstone);
 *                     u32 nkills, then per kill: u32 len, family name, i64 stamp
 *   u32 nfamilies, then per family: i64 stamp_ns, u32 len, MetricFamily bytes (not delimited)
 * Series carry their sanitised labels; restoring them with a PUT or merge of the same grouping key is idempotent.
 * Snapshots keep writing versions 1 and 2 (so files written without replication are unchanged and older Ferries read
 * them); the cluster sends version 3.
 */
#ifndef FY_GROUPREC_H
#define FY_GROUPREC_H

#include <stddef.h>
#include <stdint.h>

#include "fy_model.h"
#include "store.h"

#define FY_GROUPREC_V1 1
#define FY_GROUPREC_V2 2
#define FY_GROUPREC_V3 3

/* A growable output buffer (reused between records). */
typedef struct st_fy_grouprec_buf_t {
    char *p;
    size_t n, cap;
    char *pb; /* scratch for one MetricFamily */
    size_t pbcap;
} fy_grouprec_buf_t;

void fy_grouprec_buf_free(fy_grouprec_buf_t *b);

/** Encodes g into b (b->n bytes from b->p; replaces what was there). cluster: version 3 (with the replication
 * registers), else 1 or 2. Returns 0, or -1 when out of memory. */
int fy_grouprec_encode(const fy_store_group_view_t *g, int cluster, fy_grouprec_buf_t *b);

/* A decoded record. Strings point into the payload or into memory the record owns (fy_grouprec_free). */
typedef struct st_fy_grouprec_t {
    unsigned version;
    fy_store_label_t *labels;
    uint32_t nlabels;
    fy_store_times_t times;
    int64_t clear_ns, del_ns, ttl_stamp_ns, interval_stamp_ns; /* version 3 */
    int tombstone;
    fy_store_kill_t *kills;
    uint32_t nkills;
    fy_body_t body;  /* the families, parsed */
    int64_t *stamps; /* per family of body (body order is the record's) */
    fy_str_t *names; /* per family of body */
    size_t nstamps;
    char *mem_delim, *mem_arena;
} fy_grouprec_t;

/** Decodes one record. Returns 0, -1 when malformed (err says where), -2 when out of memory. r is always safe to free. */
int fy_grouprec_decode(const void *payload, size_t len, fy_grouprec_t *r, char *err, size_t errlen);

void fy_grouprec_free(fy_grouprec_t *r);

/** A version 3 record as the state fy_store_merge_group joins (pointing into r): the push and failure registers are
 * the values, not the timestamp families' times (those are the other register when one is 0, which the store would
 * take for a push or a failure at that time). */
void fy_grouprec_merge_view(const fy_grouprec_t *r, fy_store_merge_group_t *m);

#endif
