/*
 * grouprec.c: the group record codec (grouprec.h), shared by snapshots and the cluster's state transfer.
 */
#include "grouprec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fy_parse.h"
#include "fy_pb.h"
#include "le.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* Encoding */

static int gr_reserve(fy_grouprec_buf_t *b, size_t n)
{
    if (b->n + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int gr_put(fy_grouprec_buf_t *b, const void *p, size_t n)
{
    if (gr_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static int gr_put_u32(fy_grouprec_buf_t *b, uint32_t v)
{
    unsigned char x[4];
    fy_put_le32(x, v);
    return gr_put(b, x, 4);
}

static int gr_put_i64(fy_grouprec_buf_t *b, int64_t v)
{
    unsigned char x[8];
    fy_put_le64(x, (uint64_t)v);
    return gr_put(b, x, 8);
}

static int gr_put_str(fy_grouprec_buf_t *b, fy_str_t s)
{
    return gr_put_u32(b, (uint32_t)s.len) | gr_put(b, s.ptr, s.len);
}

/* One family as io.prometheus.client.MetricFamily, into w (the caller retries with a bigger buffer on overflow). */
static void gr_encode_family(fy_pb_writer_t *w, const fy_store_family_view_t *f)
{
    fy_pb_put_bytes(w, 1, f->name.ptr, f->name.len);
    if (f->has_help)
        fy_pb_put_bytes(w, 2, f->help.ptr, f->help.len);
    fy_pb_put_uint64(w, 3, f->type);
    for (uint32_t i = 0; i < f->nseries; i++) {
        const fy_store_series_view_t *s = &f->series[i];
        size_t m = fy_pb_begin(w, 4);
        for (uint32_t k = 0; k < s->nlabels; k++) {
            size_t l = fy_pb_begin(w, 1);
            fy_pb_put_bytes(w, 1, s->labels[k].name.ptr, s->labels[k].name.len);
            fy_pb_put_bytes(w, 2, s->labels[k].value.ptr, s->labels[k].value.len);
            fy_pb_end(w, l);
        }
        switch (f->type) {
        case FY_TYPE_SUMMARY: {
            size_t v = fy_pb_begin(w, 4);
            fy_pb_put_uint64(w, 1, s->count);
            fy_pb_put_double(w, 2, s->value);
            for (uint32_t k = 0; k < s->npoints; k++) {
                size_t q = fy_pb_begin(w, 3);
                fy_pb_put_double(w, 1, s->points[k].key);
                fy_pb_put_double(w, 2, s->points[k].value);
                fy_pb_end(w, q);
            }
            fy_pb_end(w, v);
            break;
        }
        case FY_TYPE_HISTOGRAM:
        case FY_TYPE_GAUGE_HISTOGRAM:
            if (s->pb_histogram.len != 0) {
                /* native or float histogram: the pushed message, verbatim */
                fy_pb_put_bytes(w, 7, s->pb_histogram.ptr, s->pb_histogram.len);
            } else {
                size_t v = fy_pb_begin(w, 7);
                fy_pb_put_uint64(w, 1, s->count);
                fy_pb_put_double(w, 2, s->value);
                for (uint32_t k = 0; k < s->npoints; k++) {
                    size_t q = fy_pb_begin(w, 3);
                    fy_pb_put_uint64(w, 1, s->points[k].count);
                    fy_pb_put_double(w, 2, s->points[k].key);
                    fy_pb_end(w, q);
                }
                fy_pb_end(w, v);
            }
            break;
        default: {
            uint32_t field = f->type == FY_TYPE_GAUGE ? 2 : f->type == FY_TYPE_COUNTER ? 3 : 5;
            size_t v = fy_pb_begin(w, field);
            fy_pb_put_double(w, 1, s->value);
            fy_pb_end(w, v);
        }
        }
        fy_pb_end(w, m);
    }
}

void fy_grouprec_buf_free(fy_grouprec_buf_t *b)
{
    free(b->p);
    free(b->pb);
    memset(b, 0, sizeof(*b));
}

int fy_grouprec_encode(const fy_store_group_view_t *g, int cluster, fy_grouprec_buf_t *b)
{
    int rc = 0;
    b->n = 0;
    int has_life = g->life.ttl_ns != 0 || g->life.interval_ns != 0;
    unsigned char ver = cluster ? FY_GROUPREC_V3 : has_life ? FY_GROUPREC_V2 : FY_GROUPREC_V1;
    rc |= gr_put(b, &ver, 1);
    rc |= gr_put_u32(b, g->nlabels);
    for (uint32_t i = 0; i < g->nlabels; i++)
        rc |= gr_put_str(b, g->labels[i].name) | gr_put_str(b, g->labels[i].value);
    rc |= gr_put_i64(b, g->push_ns) | gr_put_i64(b, g->push_stamp_ns) | gr_put_i64(b, g->fail_ns) | gr_put_i64(b, g->fail_stamp_ns);
    rc |= gr_put_u32(b, g->origin);
    if (ver >= FY_GROUPREC_V2)
        rc |= gr_put_i64(b, g->life.ttl_ns) | gr_put_i64(b, g->life.interval_ns);
    if (ver == FY_GROUPREC_V3) {
        unsigned char flags = g->is_tombstone ? 1 : 0;
        rc |= gr_put_i64(b, g->clear_ns) | gr_put_i64(b, g->del_ns) | gr_put_i64(b, g->ttl_stamp_ns) |
              gr_put_i64(b, g->interval_stamp_ns);
        rc |= gr_put(b, &flags, 1);
        rc |= gr_put_u32(b, g->nkills);
        for (uint32_t i = 0; i < g->nkills; i++)
            rc |= gr_put_str(b, g->kills[i].name) | gr_put_i64(b, g->kills[i].stamp);
    }
    rc |= gr_put_u32(b, g->nfamilies);
    for (uint32_t i = 0; i < g->nfamilies && rc == 0; i++) {
        fy_pb_writer_t w;
        for (;;) {
            if (b->pb == NULL) {
                b->pbcap = 64 << 10;
                if ((b->pb = malloc(b->pbcap)) == NULL)
                    return -1;
            }
            fy_pb_writer_init(&w, b->pb, b->pbcap);
            gr_encode_family(&w, &g->families[i]);
            if (!w.overflow)
                break;
            char *q = realloc(b->pb, b->pbcap * 2);
            if (q == NULL)
                return -1;
            b->pb = q;
            b->pbcap *= 2;
        }
        rc |= gr_put_i64(b, g->families[i].stamp_ns) | gr_put_u32(b, (uint32_t)w.len) | gr_put(b, b->pb, w.len);
    }
    return rc != 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Decoding */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} gr_rd_t;

static uint32_t gr_rd_u32(gr_rd_t *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = fy_get_le32(r->p);
    r->p += 4;
    return v;
}

static int64_t gr_rd_i64(gr_rd_t *r)
{
    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = fy_get_le64(r->p);
    r->p += 8;
    return (int64_t)v;
}

static fy_str_t gr_rd_bytes(gr_rd_t *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return fy_str("", 0);
    }
    fy_str_t s = fy_str((const char *)r->p, n);
    r->p += n;
    return s;
}

void fy_grouprec_free(fy_grouprec_t *r)
{
    free(r->labels);
    free(r->kills);
    free(r->stamps);
    free(r->names);
    free(r->mem_delim);
    free(r->mem_arena);
    memset(r, 0, sizeof(*r));
}

int fy_grouprec_decode(const void *payload, size_t len, fy_grouprec_t *g, char *err, size_t errlen)
{
    gr_rd_t r = {payload, (const unsigned char *)payload + len, 0};
    memset(g, 0, sizeof(*g));
    fy_str_t ver = gr_rd_bytes(&r, 1);
    if (r.bad || ver.ptr[0] < FY_GROUPREC_V1 || ver.ptr[0] > FY_GROUPREC_V3) {
        snprintf(err, errlen, "group record version %d, this Ferry reads 1 to 3", r.bad ? -1 : ver.ptr[0]);
        return -1;
    }
    g->version = (unsigned char)ver.ptr[0];
    uint32_t nl = gr_rd_u32(&r);
    if (r.bad || nl > len)
        goto Bad;
    if ((g->labels = calloc(nl ? nl : 1, sizeof(*g->labels))) == NULL)
        return -2;
    g->nlabels = nl;
    for (uint32_t i = 0; i < nl && !r.bad; i++) {
        g->labels[i].name = gr_rd_bytes(&r, gr_rd_u32(&r));
        g->labels[i].value = gr_rd_bytes(&r, gr_rd_u32(&r));
    }
    g->times.push_ns = gr_rd_i64(&r);
    g->times.push_stamp_ns = gr_rd_i64(&r);
    g->times.fail_ns = gr_rd_i64(&r);
    g->times.fail_stamp_ns = gr_rd_i64(&r);
    g->times.origin = gr_rd_u32(&r);
    if (g->version >= FY_GROUPREC_V2) {
        g->times.life.ttl_ns = gr_rd_i64(&r);
        g->times.life.interval_ns = gr_rd_i64(&r);
    }
    if (g->version == FY_GROUPREC_V3) {
        g->clear_ns = gr_rd_i64(&r);
        g->del_ns = gr_rd_i64(&r);
        g->ttl_stamp_ns = gr_rd_i64(&r);
        g->interval_stamp_ns = gr_rd_i64(&r);
        fy_str_t fl = gr_rd_bytes(&r, 1);
        g->tombstone = !r.bad && (fl.ptr[0] & 1);
        uint32_t nk = gr_rd_u32(&r);
        if (r.bad || nk > len)
            goto Bad;
        if ((g->kills = calloc(nk ? nk : 1, sizeof(*g->kills))) == NULL)
            return -2;
        g->nkills = nk;
        for (uint32_t i = 0; i < nk && !r.bad; i++) {
            g->kills[i].name = gr_rd_bytes(&r, gr_rd_u32(&r));
            g->kills[i].stamp = gr_rd_i64(&r);
        }
    }
    uint32_t nf = gr_rd_u32(&r);
    if (r.bad || nf > len)
        goto Bad;
    /* The families become one delimited protobuf body: varint length + message each. */
    size_t dcap = len + 10 * (size_t)nf + 1;
    g->mem_delim = malloc(dcap);
    g->names = calloc(nf ? nf : 1, sizeof(*g->names));
    g->stamps = calloc(nf ? nf : 1, sizeof(*g->stamps));
    if (g->mem_delim == NULL || g->names == NULL || g->stamps == NULL)
        return -2;
    fy_pb_writer_t w;
    fy_pb_writer_init(&w, g->mem_delim, dcap);
    for (uint32_t i = 0; i < nf && !r.bad; i++) {
        g->stamps[i] = gr_rd_i64(&r);
        fy_str_t pb = gr_rd_bytes(&r, gr_rd_u32(&r));
        fy_pb_put_varint(&w, pb.len);
        fy_pb_put_raw(&w, pb.ptr, pb.len);
    }
    if (r.bad || w.overflow || r.p != r.end)
        goto Bad;
    size_t acap = fy_parse_arena_hint(w.len);
    if ((g->mem_arena = malloc(acap)) == NULL)
        return -2;
    fy_arena_t a;
    fy_arena_init(&a, g->mem_arena, acap);
    fy_parse_error_t perr;
    if (fy_parse_protobuf(w.buf, w.len, &a, &g->body, &perr) != FY_OK) {
        snprintf(err, errlen, "group record: %s", perr.msg);
        return -1;
    }
    g->nstamps = g->body.nfamilies < nf ? g->body.nfamilies : nf;
    for (size_t i = 0; i < g->nstamps; i++)
        g->names[i] = g->body.families[i].name;
    return 0;
Bad:
    snprintf(err, errlen, "group record is malformed");
    return -1;
}

void fy_grouprec_merge_view(const fy_grouprec_t *g, fy_store_merge_group_t *m)
{
    memset(m, 0, sizeof(*m));
    m->labels = g->labels;
    m->nlabels = g->nlabels;
    m->is_tombstone = (uint8_t)g->tombstone;
    m->clear_ns = g->clear_ns;
    m->del_ns = g->del_ns;
    m->push_ns = g->times.push_ns;
    m->fail_ns = g->times.fail_ns;
    m->life = g->times.life;
    m->ttl_stamp_ns = g->ttl_stamp_ns;
    m->interval_stamp_ns = g->interval_stamp_ns;
    m->kills = g->kills;
    m->nkills = g->nkills;
    m->body = &g->body;
    m->family_stamps = g->stamps;
}
