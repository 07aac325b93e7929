/*
 * wire.h: the peer protocol's framing and messages (docs/ha.md, "Wire").
 *
 * A frame is u32 len | u32 CRC-32C of the len bytes that follow | u8 type | payload (len = 1 + payload bytes), as the
 * write-ahead log frames its records. All integers are little-endian. Messages:
 *
 *   HELLO   dialer -> acceptor   u32 magic "FYC1" | u16 protocol | u16 flags | u64 node | u32 slot | i64 hlc |
 *                                u64 fingerprint | str label
 *   WELCOME acceptor -> dialer   u16 flags | u64 node | u32 slot | i64 hlc | u64 applied (the dialer's changes this
 *                                replica has applied, by the dialer's sequence numbers)
 *   REFUSE  either               str reason (then the connection is closed)
 *   OP      dialer -> acceptor   u64 seq | u8 record type | record (record.h; its i64 at offset 1 is the stamp)
 *   ACK     acceptor -> dialer   u64 seq (every change of the dialer up to seq is held here)
 *   HB      either               i64 hlc | i64 frontier (every change of the sender stamped <= frontier was sent) |
 *                                u16 flags (the sender's now; absent from a peer before they were added)
 *   REQ     dialer -> acceptor   u64 id | i64 since: send me every group changed after since
 *   GROUP   acceptor -> dialer   one group record (grouprec.h, version 3)
 *   END     acceptor -> dialer   u64 id | u64 groups | i64 wipe: the answer to REQ id is complete (wipe: the
 *                                sender's store-wide wipe stamp, 0 = none)
 *   GAP     dialer -> acceptor   u64 first: the changes before first are no longer in my backlog
 * flags: bit 0 the sender's store is empty (never held a group or tombstone), bit 1 it is ready.
 * str = u32 length | bytes. Each connection carries the dialer's changes one way and the acceptor's state the other.
 */
#ifndef FY_CLUSTER_WIRE_H
#define FY_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fy_model.h"

#define FY_WIRE_MAGIC 0x31435946u /* "FYC1" */
#define FY_WIRE_PROTOCOL 1
#define FY_WIRE_MAX_FRAME (64u << 20)

enum {
    FY_MSG_HELLO = 1,
    FY_MSG_WELCOME = 2,
    FY_MSG_REFUSE = 3,
    FY_MSG_OP = 4,
    FY_MSG_ACK = 5,
    FY_MSG_HB = 6,
    FY_MSG_REQ = 7,
    FY_MSG_GROUP = 8,
    FY_MSG_END = 9,
    FY_MSG_GAP = 10,
};

#define FY_WIRE_EMPTY 1u
#define FY_WIRE_READY 2u

/* A growable byte buffer with a read offset (the unsent or unparsed part is p[off..n)). */
typedef struct st_fy_wbuf_t {
    uint8_t *p;
    size_t off, n, cap;
} fy_wbuf_t;

void fy_wbuf_free(fy_wbuf_t *b);
/** Room for more bytes; aborts when out of memory (a peer link that silently lost bytes would diverge). */
uint8_t *fy_wbuf_reserve(fy_wbuf_t *b, size_t more);
void fy_wbuf_add(fy_wbuf_t *b, const void *p, size_t n);
/** Drops the consumed prefix when it is large. */
void fy_wbuf_compact(fy_wbuf_t *b);
static inline size_t fy_wbuf_len(const fy_wbuf_t *b)
{
    return b->n - b->off;
}

/* Building a frame: begin, put fields, end (which writes len and CRC). */
size_t fy_frame_begin(fy_wbuf_t *b, unsigned type);
void fy_frame_u16(fy_wbuf_t *b, uint16_t v);
void fy_frame_u32(fy_wbuf_t *b, uint32_t v);
void fy_frame_u64(fy_wbuf_t *b, uint64_t v);
void fy_frame_str(fy_wbuf_t *b, const char *p, size_t n);
void fy_frame_end(fy_wbuf_t *b, size_t at);

/** The next whole frame in b: 1 with its type and payload (consumed from b), 0 when incomplete, -1 when damaged
 * (bad CRC, or longer than FY_WIRE_MAX_FRAME). */
int fy_frame_next(fy_wbuf_t *b, unsigned *type, fy_str_t *payload);

/* Reading a payload: every take is bounds-checked; a short payload sets bad. */
typedef struct st_fy_wrd_t {
    const uint8_t *p, *end;
    int bad;
} fy_wrd_t;

static inline fy_wrd_t fy_wrd(fy_str_t s)
{
    fy_wrd_t r = {(const uint8_t *)s.ptr, (const uint8_t *)s.ptr + s.len, 0};
    return r;
}
uint16_t fy_wrd_u16(fy_wrd_t *r);
uint32_t fy_wrd_u32(fy_wrd_t *r);
uint64_t fy_wrd_u64(fy_wrd_t *r);
uint8_t fy_wrd_u8(fy_wrd_t *r);
fy_str_t fy_wrd_str(fy_wrd_t *r);
fy_str_t fy_wrd_rest(fy_wrd_t *r);

#endif
