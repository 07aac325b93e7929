/*
 * record.c: the write-ahead log's record codec (record.h).
 */
#include "record.h"

#include <stdlib.h>
#include <string.h>

#include "le.h"

#define REC_VERSION 1
#define REC_VERSION_LIFE 2

static size_t labels_size(const fy_store_label_t *gk, size_t n)
{
    size_t s = 4;
    for (size_t i = 0; i < n; i++)
        s += 8 + gk[i].name.len + gk[i].value.len;
    return s;
}

static uint8_t *put_labels(uint8_t *p, const fy_store_label_t *gk, size_t n)
{
    fy_put_le32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++) {
        fy_put_le32(p, (uint32_t)gk[i].name.len);
        memcpy(p + 4, gk[i].name.ptr, gk[i].name.len);
        p += 4 + gk[i].name.len;
        fy_put_le32(p, (uint32_t)gk[i].value.len);
        if (gk[i].value.len)
            memcpy(p + 4, gk[i].value.ptr, gk[i].value.len);
        p += 4 + gk[i].value.len;
    }
    return p;
}

int fy_record_encode(const fy_change_t *c, unsigned *type, uint8_t **payload, size_t *len)
{
    size_t n = 9;
    switch (c->kind) {
    case FY_CHANGE_PUSH:
        *type = c->merge ? FY_REC_MERGE : FY_REC_PUSH;
        n += 2 + (c->life != NULL ? 16 : 0) + labels_size(c->labels, c->nlabels) + c->body_len;
        break;
    case FY_CHANGE_FAIL:
        *type = FY_REC_FAIL;
        n += 2 + labels_size(c->labels, c->nlabels);
        break;
    case FY_CHANGE_KILL:
        *type = FY_REC_KILL;
        n += labels_size(c->labels, c->nlabels) + 4 + c->family.len;
        break;
    case FY_CHANGE_DELETE:
    case FY_CHANGE_EXPIRE:
        *type = FY_REC_DELETE;
        n += labels_size(c->labels, c->nlabels);
        break;
    case FY_CHANGE_WIPE:
        *type = FY_REC_WIPE;
        break;
    case FY_CHANGE_DROP:
        *type = FY_REC_DROP;
        break;
    case FY_CHANGE_BULK:
        *type = FY_REC_BULK;
        n += c->body_len;
        break;
    case FY_CHANGE_RESTORE:
    default:
        return 1;
    }
    uint8_t *r = malloc(n), *p = r;
    if (r == NULL)
        return -1;
    *p++ = c->kind == FY_CHANGE_PUSH && c->life != NULL ? REC_VERSION_LIFE : REC_VERSION;
    fy_put_le64(p, (uint64_t)c->now_ns);
    p += 8;
    if (c->kind == FY_CHANGE_PUSH || c->kind == FY_CHANGE_FAIL) {
        *p++ = (uint8_t)(c->post != 0);
        *p++ = (uint8_t)(c->kind == FY_CHANGE_PUSH ? c->format : 0);
        if (c->kind == FY_CHANGE_PUSH && c->life != NULL) {
            fy_put_le64(p, (uint64_t)c->life->ttl_ns);
            fy_put_le64(p + 8, (uint64_t)c->life->interval_ns);
            p += 16;
        }
    }
    if (c->kind != FY_CHANGE_WIPE && c->kind != FY_CHANGE_BULK && c->kind != FY_CHANGE_DROP)
        p = put_labels(p, c->labels, c->nlabels);
    if (c->kind == FY_CHANGE_KILL) {
        fy_put_le32(p, (uint32_t)c->family.len);
        if (c->family.len)
            memcpy(p + 4, c->family.ptr, c->family.len);
        p += 4 + c->family.len;
    }
    if ((c->kind == FY_CHANGE_PUSH || c->kind == FY_CHANGE_BULK) && c->body_len != 0) {
        memcpy(p, c->body, c->body_len);
        p += c->body_len;
    }
    *payload = r;
    *len = (size_t)(p - r);
    return 0;
}

/* Reading: every take is bounds-checked; a short or malformed payload sets bad. */
typedef struct {
    const uint8_t *p, *end;
    int bad;
} rd_t;

static const uint8_t *take(rd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

static size_t take_labels(rd_t *r, fy_store_label_t **out)
{
    const uint8_t *q = take(r, 4);
    uint32_t n = q ? fy_get_le32(q) : 0;
    if (r->bad || n > (size_t)(r->end - r->p) / 8) { /* each label takes at least 8 bytes */
        r->bad = 1;
        return 0;
    }
    if ((*out = calloc(n ? n : 1, sizeof(**out))) == NULL) {
        r->bad = 1;
        return 0;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        q = take(r, 4);
        size_t len = q ? fy_get_le32(q) : 0;
        const uint8_t *s = take(r, len);
        (*out)[i].name = fy_str((const char *)s, len);
        q = take(r, 4);
        len = q ? fy_get_le32(q) : 0;
        s = take(r, len);
        (*out)[i].value = fy_str(len ? (const char *)s : "", len);
    }
    return n;
}

int fy_record_decode(unsigned type, const void *payload, size_t len, fy_record_t *rec)
{
    rd_t r = {payload, (const uint8_t *)payload + len, 0};
    fy_change_t *c = &rec->change;
    memset(rec, 0, sizeof(*rec));
    c->origin = FY_ORIGIN_REPLAY;
    const uint8_t *q = take(&r, 9);
    if (q == NULL)
        return -1;
    c->now_ns = (int64_t)fy_get_le64(q + 1);
    int life = q[0] == REC_VERSION_LIFE && (type == FY_REC_PUSH || type == FY_REC_MERGE);
    if (q[0] != REC_VERSION && !life)
        return -1;
    switch (type) {
    case FY_REC_PUSH:
    case FY_REC_MERGE:
    case FY_REC_FAIL:
        c->kind = type == FY_REC_FAIL ? FY_CHANGE_FAIL : FY_CHANGE_PUSH;
        c->merge = type == FY_REC_MERGE;
        q = take(&r, 2);
        if (q == NULL || q[0] > 1 || q[1] > FY_FMT_OPENMETRICS)
            return -1;
        c->post = q[0];
        c->format = (fy_body_format_t)q[1];
        if (life) {
            const uint8_t *lq = take(&r, 16);
            if (lq == NULL)
                return -1;
            rec->life.ttl_ns = (int64_t)fy_get_le64(lq);
            rec->life.interval_ns = (int64_t)fy_get_le64(lq + 8);
            c->life = &rec->life;
        }
        c->nlabels = take_labels(&r, &rec->labels);
        c->labels = rec->labels;
        c->body = (const char *)r.p;
        c->body_len = r.bad ? 0 : (size_t)(r.end - r.p);
        break;
    case FY_REC_KILL:
        c->kind = FY_CHANGE_KILL;
        c->nlabels = take_labels(&r, &rec->labels);
        c->labels = rec->labels;
        q = take(&r, 4);
        if (q != NULL) {
            size_t fl = fy_get_le32(q);
            const uint8_t *f = take(&r, fl);
            c->family = fy_str(f ? (const char *)f : "", f ? fl : 0);
        }
        if (!r.bad && r.p != r.end)
            return -1;
        break;
    case FY_REC_DELETE:
        c->kind = FY_CHANGE_DELETE;
        c->nlabels = take_labels(&r, &rec->labels);
        c->labels = rec->labels;
        if (!r.bad && r.p != r.end)
            return -1;
        break;
    case FY_REC_WIPE:
    case FY_REC_DROP:
        c->kind = type == FY_REC_WIPE ? FY_CHANGE_WIPE : FY_CHANGE_DROP;
        if (r.p != r.end)
            return -1;
        break;
    case FY_REC_BULK:
        c->kind = FY_CHANGE_BULK;
        c->body = (const char *)r.p;
        c->body_len = (size_t)(r.end - r.p);
        break;
    default:
        return -1;
    }
    return r.bad ? -1 : 0;
}

void fy_record_free(fy_record_t *r)
{
    free(r->labels);
    r->labels = NULL;
}
