/*
 * wire.c: frames and buffers of the peer protocol (wire.h).
 */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

void fy_wbuf_free(fy_wbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

uint8_t *fy_wbuf_reserve(fy_wbuf_t *b, size_t more)
{
    if (b->n + more > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + more)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) {
            fprintf(stderr, "ferry: out of memory in a peer link buffer\n");
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->n;
}

void fy_wbuf_add(fy_wbuf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(fy_wbuf_reserve(b, n), p, n);
    b->n += n;
}

void fy_wbuf_compact(fy_wbuf_t *b)
{
    if (b->off == b->n) {
        b->off = b->n = 0;
    } else if (b->off > (64u << 10) && b->off > b->n / 2) {
        memmove(b->p, b->p + b->off, b->n - b->off);
        b->n -= b->off;
        b->off = 0;
    }
}

size_t fy_frame_begin(fy_wbuf_t *b, unsigned type)
{
    size_t at = b->n;
    uint8_t *p = fy_wbuf_reserve(b, 9);
    memset(p, 0, 8);
    p[8] = (uint8_t)type;
    b->n += 9;
    return at;
}

void fy_frame_u16(fy_wbuf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    fy_wbuf_add(b, x, 2);
}

void fy_frame_u32(fy_wbuf_t *b, uint32_t v)
{
    uint8_t x[4];
    fy_put_le32(x, v);
    fy_wbuf_add(b, x, 4);
}

void fy_frame_u64(fy_wbuf_t *b, uint64_t v)
{
    uint8_t x[8];
    fy_put_le64(x, v);
    fy_wbuf_add(b, x, 8);
}

void fy_frame_str(fy_wbuf_t *b, const char *p, size_t n)
{
    fy_frame_u32(b, (uint32_t)n);
    fy_wbuf_add(b, p, n);
}

void fy_frame_end(fy_wbuf_t *b, size_t at)
{
    uint32_t len = (uint32_t)(b->n - at - 8);
    fy_put_le32(b->p + at, len);
    fy_put_le32(b->p + at + 4, fy_crc32c(0, b->p + at + 8, len));
}

int fy_frame_next(fy_wbuf_t *b, unsigned *type, fy_str_t *payload)
{
    size_t avail = b->n - b->off;
    if (avail < 8)
        return 0;
    const uint8_t *p = b->p + b->off;
    uint32_t len = fy_get_le32(p);
    if (len == 0 || len > FY_WIRE_MAX_FRAME)
        return -1;
    if (avail < 8 + (size_t)len)
        return 0;
    if (fy_crc32c(0, p + 8, len) != fy_get_le32(p + 4))
        return -1;
    *type = p[8];
    *payload = fy_str((const char *)p + 9, len - 1);
    b->off += 8 + len;
    return 1;
}

static const uint8_t *take(fy_wrd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

uint8_t fy_wrd_u8(fy_wrd_t *r)
{
    const uint8_t *q = take(r, 1);
    return q ? q[0] : 0;
}

uint16_t fy_wrd_u16(fy_wrd_t *r)
{
    const uint8_t *q = take(r, 2);
    return q ? (uint16_t)(q[0] | q[1] << 8) : 0;
}

uint32_t fy_wrd_u32(fy_wrd_t *r)
{
    const uint8_t *q = take(r, 4);
    return q ? fy_get_le32(q) : 0;
}

uint64_t fy_wrd_u64(fy_wrd_t *r)
{
    const uint8_t *q = take(r, 8);
    return q ? fy_get_le64(q) : 0;
}

fy_str_t fy_wrd_str(fy_wrd_t *r)
{
    uint32_t n = fy_wrd_u32(r);
    const uint8_t *q = take(r, n);
    return q ? fy_str((const char *)q, n) : fy_str("", 0);
}

fy_str_t fy_wrd_rest(fy_wrd_t *r)
{
    fy_str_t s = fy_str(r->bad ? "" : (const char *)r->p, r->bad ? 0 : (size_t)(r->end - r->p));
    r->p = r->end;
    return s;
}
