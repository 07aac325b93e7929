/*
 * protobuf.c: the delimited io.prometheus.client.MetricFamily decoder (fy_parse_protobuf) and the small wire-format
 * writer declared in fy_pb.h.
 *
 * The decoder is hand-written and zero-copy: strings are slices of the input, arrays come from the caller's arena.
 * Each MetricFamily is walked twice: once against a schema table (structural validation exactly where Go's
 * proto.Unmarshal validates, plus counting of metrics, labels and points), then once more to fill arrays of the
 * exact size. Wire schema: prometheus/client_model io/prometheus/client/metrics.proto; behaviour: Pushgateway
 * 1.5.1's pbutil.ReadDelimited loop (spec 6.2). Choices and measurements: docs/parser.md, "Protobuf".
 */
#include "fy_parse.h"
#include "fy_parse_internal.h"
#include "fy_pb.h"

#include <assert.h>
#include <string.h>

/* Go's proto.Unmarshal reports every structural problem with this one message (errDecode). */
#define PB_ERR_DECODE "proto: cannot parse invalid wire-format data"
/* pbutil.ReadDelimited: the length prefix did not end within 5 bytes. */
#define PB_ERR_VARINT32 "invalid varint32 encountered"

#define PB_FIELD_MAX ((1u << 29) - 1)
/* Go allows 10000 nested groups in unknown fields; nobody sends groups in metrics, so we stop much earlier. */
#define PB_GROUP_DEPTH_MAX 64

/* ------------------------------------------------------------------------------------------------------------- */
/* Reading the wire format. Every reader returns the position after what it read, or NULL when the input is
 * malformed or truncated; none reads at or past end. */

static const uint8_t *varint_slow(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < FY_PB_VARINT_MAX; i++) {
        if (p == end)
            return NULL;
        uint64_t b = *p++;
        /* The 10th byte holds bit 63 only; anything more overflows (protowire's errCodeOverflow). */
        if (i == FY_PB_VARINT_MAX - 1 && b > 1)
            return NULL;
        x |= (b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return p;
        }
    }
    return NULL;
}

static inline const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (fy_likely(p < end && *p < 0x80)) {
        *v = *p;
        return p + 1;
    }
    return varint_slow(p, end, v);
}

static inline uint64_t load64le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline double u64_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

typedef struct {
    uint32_t num;
    uint32_t wt;
    uint64_t v;          /* FY_PB_VARINT, FY_PB_FIXED64, FY_PB_FIXED32 */
    const uint8_t *data; /* FY_PB_LEN */
    size_t len;
} field_t;

static const uint8_t *get_tag(const uint8_t *p, const uint8_t *end, uint32_t *num, uint32_t *wt)
{
    uint64_t tag;
    if ((p = get_varint(p, end, &tag)) == NULL)
        return NULL;
    uint64_t n = tag >> 3;
    if (n < 1 || n > PB_FIELD_MAX)
        return NULL;
    *num = (uint32_t)n;
    *wt = (uint32_t)(tag & 7);
    return p;
}

/* Skips the rest of a group opened by field num (its start tag already read). */
static const uint8_t *skip_group(const uint8_t *p, const uint8_t *end, uint32_t num)
{
    uint32_t open[PB_GROUP_DEPTH_MAX];
    unsigned depth = 0;
    open[depth++] = num;
    while (depth > 0) {
        uint32_t n, wt;
        uint64_t v;
        if ((p = get_tag(p, end, &n, &wt)) == NULL)
            return NULL;
        switch (wt) {
        case FY_PB_VARINT:
            p = get_varint(p, end, &v);
            break;
        case FY_PB_FIXED64:
            p = end - p >= 8 ? p + 8 : NULL;
            break;
        case FY_PB_FIXED32:
            p = end - p >= 4 ? p + 4 : NULL;
            break;
        case FY_PB_LEN:
            if ((p = get_varint(p, end, &v)) != NULL)
                p = v <= (uint64_t)(end - p) ? p + v : NULL;
            break;
        case FY_PB_SGROUP:
            if (depth == PB_GROUP_DEPTH_MAX)
                return NULL;
            open[depth++] = n;
            break;
        case FY_PB_EGROUP:
            if (open[depth - 1] != n)
                return NULL;
            depth--;
            break;
        default:
            return NULL;
        }
        if (p == NULL)
            return NULL;
    }
    return p;
}

/* Reads one field. An end-group tag here has no matching start, which Go rejects like any other malformation. */
static inline const uint8_t *get_field(const uint8_t *p, const uint8_t *end, field_t *f)
{
    if ((p = get_tag(p, end, &f->num, &f->wt)) == NULL)
        return NULL;
    switch (f->wt) {
    case FY_PB_VARINT:
        return get_varint(p, end, &f->v);
    case FY_PB_FIXED64:
        if (end - p < 8)
            return NULL;
        f->v = load64le(p);
        return p + 8;
    case FY_PB_LEN: {
        uint64_t n;
        if ((p = get_varint(p, end, &n)) == NULL || n > (uint64_t)(end - p))
            return NULL;
        f->data = p;
        f->len = (size_t)n;
        return p + n;
    }
    case FY_PB_FIXED32:
        if (end - p < 4)
            return NULL;
        f->v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
        return p + 4;
    case FY_PB_SGROUP:
        return skip_group(p, end, f->num);
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Pass 1: validation against the schema. Go decodes known fields of the right wire type (so a malformed nested
 * message or packed array is an error) and keeps everything else as unknown fields (checked only for framing). */

enum {
    K_UNKNOWN = 0,
    K_VARINT,  /* wire type 0 */
    K_DOUBLE,  /* wire type 1 */
    K_BYTES,   /* wire type 2, not looked into (proto2 strings are not UTF-8 checked) */
    K_MSG,     /* wire type 2, a nested message */
    K_RVARINT, /* repeated varint: wire type 0, or 2 packed */
    K_RDOUBLE, /* repeated double: wire type 1, or 2 packed */
};

enum { SLOT_NONE = 0, SLOT_METRICS, SLOT_LABELS, SLOT_POINTS, NSLOTS };

typedef struct st_msgspec_t msgspec_t;
typedef struct {
    uint8_t kind;
    uint8_t slot; /* counts[slot]++ per occurrence */
    const msgspec_t *sub;
} fieldspec_t;
struct st_msgspec_t {
    uint32_t nfields; /* fields are indexed by number; numbers >= nfields are unknown */
    const fieldspec_t *f;
};

#define MSG(name, ...)                                                                                                             \
    static const fieldspec_t name##_fields[] = {__VA_ARGS__};                                                                      \
    static const msgspec_t name = {sizeof(name##_fields) / sizeof(name##_fields[0]), name##_fields}

/* clang-format off */
MSG(M_LABELPAIR,  [1] = {K_BYTES, 0, NULL}, [2] = {K_BYTES, 0, NULL});
MSG(M_TIMESTAMP,  [1] = {K_VARINT, 0, NULL}, [2] = {K_VARINT, 0, NULL});
MSG(M_EXEMPLAR,   [1] = {K_MSG, 0, &M_LABELPAIR}, [2] = {K_DOUBLE, 0, NULL}, [3] = {K_MSG, 0, &M_TIMESTAMP});
MSG(M_GAUGE,      [1] = {K_DOUBLE, 0, NULL});
MSG(M_COUNTER,    [1] = {K_DOUBLE, 0, NULL}, [2] = {K_MSG, 0, &M_EXEMPLAR}, [3] = {K_MSG, 0, &M_TIMESTAMP});
MSG(M_QUANTILE,   [1] = {K_DOUBLE, 0, NULL}, [2] = {K_DOUBLE, 0, NULL});
MSG(M_SUMMARY,    [1] = {K_VARINT, 0, NULL}, [2] = {K_DOUBLE, 0, NULL}, [3] = {K_MSG, SLOT_POINTS, &M_QUANTILE},
                  [4] = {K_MSG, 0, &M_TIMESTAMP});
MSG(M_UNTYPED,    [1] = {K_DOUBLE, 0, NULL});
MSG(M_BUCKET,     [1] = {K_VARINT, 0, NULL}, [2] = {K_DOUBLE, 0, NULL}, [3] = {K_MSG, 0, &M_EXEMPLAR},
                  [4] = {K_DOUBLE, 0, NULL});
MSG(M_SPAN,       [1] = {K_VARINT, 0, NULL}, [2] = {K_VARINT, 0, NULL});
MSG(M_HISTOGRAM,  [1] = {K_VARINT, 0, NULL}, [2] = {K_DOUBLE, 0, NULL}, [3] = {K_MSG, SLOT_POINTS, &M_BUCKET},
                  [4] = {K_DOUBLE, 0, NULL}, [5] = {K_VARINT, 0, NULL}, [6] = {K_DOUBLE, 0, NULL},
                  [7] = {K_VARINT, 0, NULL}, [8] = {K_DOUBLE, 0, NULL}, [9] = {K_MSG, 0, &M_SPAN},
                  [10] = {K_RVARINT, 0, NULL}, [11] = {K_RDOUBLE, 0, NULL}, [12] = {K_MSG, 0, &M_SPAN},
                  [13] = {K_RVARINT, 0, NULL}, [14] = {K_RDOUBLE, 0, NULL}, [15] = {K_MSG, 0, &M_TIMESTAMP},
                  [16] = {K_MSG, 0, &M_EXEMPLAR});
MSG(M_METRIC,     [1] = {K_MSG, SLOT_LABELS, &M_LABELPAIR}, [2] = {K_MSG, 0, &M_GAUGE},
                  [3] = {K_MSG, 0, &M_COUNTER}, [4] = {K_MSG, 0, &M_SUMMARY}, [5] = {K_MSG, 0, &M_UNTYPED},
                  [6] = {K_VARINT, 0, NULL}, [7] = {K_MSG, 0, &M_HISTOGRAM});
MSG(M_FAMILY,     [1] = {K_BYTES, 0, NULL}, [2] = {K_BYTES, 0, NULL}, [3] = {K_VARINT, 0, NULL},
                  [4] = {K_MSG, SLOT_METRICS, &M_METRIC}, [5] = {K_BYTES, 0, NULL});
/* clang-format on */

/* Validates the message [p, end) against m, adding to counts. Returns NULL, or the field where it failed. */
static const uint8_t *validate(const uint8_t *p, const uint8_t *end, const msgspec_t *m, uint32_t *counts)
{
    field_t f = {0}; /* zeroed once: see FOR_FIELDS */
    while (p < end) {
        const uint8_t *at = p;
        if ((p = get_field(p, end, &f)) == NULL)
            return at;
        if (f.num >= m->nfields)
            continue;
        const fieldspec_t *fs = &m->f[f.num];
        switch (fs->kind) {
        case K_MSG:
            if (f.wt != FY_PB_LEN)
                break;
            if (validate(f.data, f.data + f.len, fs->sub, counts) != NULL)
                return at;
            counts[fs->slot]++;
            break;
        case K_RVARINT:
            if (f.wt == FY_PB_LEN) {
                const uint8_t *q = f.data, *qend = f.data + f.len;
                uint64_t v;
                while (q < qend)
                    if ((q = get_varint(q, qend, &v)) == NULL)
                        return at;
            }
            break;
        case K_RDOUBLE:
            if (f.wt == FY_PB_LEN && f.len % 8 != 0)
                return at;
            break;
        default:
            break;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Pass 2: filling the model from validated messages. The loops below cannot meet malformed input any more; they
 * still stop at the first NULL rather than trust that. */

/* get_field sets only the members of f that the wire type uses, and the loops read v or data/len only after testing
 * wt; GCC 12 (Release) cannot follow that and warns (-Wmaybe-uninitialized) at -O3, so each function zeroes its
 * field_t once, before its loops, rather than get_field clearing every member for every field. */
#define FOR_FIELDS(f, data, len)                                                                                                   \
    for (const uint8_t *p_##f = (data), *end_##f = p_##f + (len);                                                                  \
         p_##f < end_##f && (p_##f = get_field(p_##f, end_##f, &(f))) != NULL;)

/* The last value = 1 (double) of a Gauge, Counter or Untyped; unchanged if absent (so repeated sub-messages merge
 * as in Go). */
static void fill_value(const uint8_t *data, size_t len, double *value)
{
    field_t f = {0};
    FOR_FIELDS(f, data, len)
    {
        if (f.num == 1 && f.wt == FY_PB_FIXED64)
            *value = u64_to_double(f.v);
    }
}

static void fill_summary(const uint8_t *data, size_t len, fy_series_t *s, fy_point_t *points)
{
    field_t f = {0}, g = {0};
    FOR_FIELDS(f, data, len)
    {
        if (f.num == 1 && f.wt == FY_PB_VARINT) {
            s->count = f.v;
        } else if (f.num == 2 && f.wt == FY_PB_FIXED64) {
            s->value = u64_to_double(f.v);
        } else if (f.num == 3 && f.wt == FY_PB_LEN) {
            fy_point_t *pt = &points[s->npoints++];
            pt->key = 0;
            pt->value = 0;
            pt->count = 0;
            FOR_FIELDS(g, f.data, f.len)
            {
                if (g.num == 1 && g.wt == FY_PB_FIXED64)
                    pt->key = u64_to_double(g.v);
                else if (g.num == 2 && g.wt == FY_PB_FIXED64)
                    pt->value = u64_to_double(g.v);
            }
        }
    }
}

/* Classic fields go to the model; anything the classic model cannot carry (native buckets, float counts, created
 * timestamp, exemplars, unknown fields) makes the whole encoded message the series' pb_histogram. */
static void fill_histogram(const uint8_t *data, size_t len, fy_series_t *s, fy_point_t *points)
{
    field_t f = {0}, g = {0};
    int classic = 1;
    FOR_FIELDS(f, data, len)
    {
        if (f.num == 1 && f.wt == FY_PB_VARINT) {
            s->count = f.v;
        } else if (f.num == 2 && f.wt == FY_PB_FIXED64) {
            s->value = u64_to_double(f.v);
        } else if (f.num == 3 && f.wt == FY_PB_LEN) {
            fy_point_t *pt = &points[s->npoints++];
            pt->key = 0;
            pt->value = 0;
            pt->count = 0;
            FOR_FIELDS(g, f.data, f.len)
            {
                if (g.num == 1 && g.wt == FY_PB_VARINT)
                    pt->count = g.v;
                else if (g.num == 2 && g.wt == FY_PB_FIXED64)
                    pt->key = u64_to_double(g.v);
                else
                    classic = 0;
            }
        } else {
            classic = 0;
        }
    }
    if (!classic)
        s->pb_histogram = fy_str((const char *)data, len);
}

static void fill_label(const uint8_t *data, size_t len, fy_label_t *l)
{
    field_t f = {0};
    l->name = fy_str(NULL, 0);
    l->value = fy_str(NULL, 0);
    l->value_esc = FY_ESC_NONE;
    FOR_FIELDS(f, data, len)
    {
        if (f.wt != FY_PB_LEN)
            continue;
        if (f.num == 1)
            l->name = fy_str((const char *)f.data, f.len);
        else if (f.num == 2)
            l->value = fy_str((const char *)f.data, f.len);
    }
}

typedef struct {
    fy_label_t *labels;
    fy_point_t *points;
} cursor_t;

static void fill_metric(const uint8_t *data, size_t len, unsigned type, fy_series_t *s, cursor_t *c)
{
    field_t f = {0};
    unsigned want = type == FY_TYPE_GAUGE_HISTOGRAM ? FY_TYPE_HISTOGRAM : type;
    memset(s, 0, sizeof(*s));
    s->labels = c->labels;
    s->points = c->points;
    s->pb_kinds = FY_PB_KINDS_VALID;
    FOR_FIELDS(f, data, len)
    {
        if (f.num == 6 && f.wt == FY_PB_VARINT) {
            s->timestamp_ms = (int64_t)f.v;
            s->has_timestamp = 1;
            continue;
        }
        if (f.wt != FY_PB_LEN)
            continue;
        unsigned kind;
        switch (f.num) {
        case 1:
            fill_label(f.data, f.len, &c->labels[s->nlabels++]);
            continue;
        case 2:
            kind = FY_TYPE_GAUGE;
            break;
        case 3:
            kind = FY_TYPE_COUNTER;
            break;
        case 4:
            kind = FY_TYPE_SUMMARY;
            break;
        case 5:
            kind = FY_TYPE_UNTYPED;
            break;
        case 7:
            kind = FY_TYPE_HISTOGRAM;
            break;
        default:
            continue;
        }
        s->pb_kinds |= (uint8_t)(1u << kind);
        if (kind != want)
            continue;
        if (kind == FY_TYPE_SUMMARY)
            fill_summary(f.data, f.len, s, c->points);
        else if (kind == FY_TYPE_HISTOGRAM)
            fill_histogram(f.data, f.len, s, c->points);
        else
            fill_value(f.data, f.len, &s->value);
    }
    /* Arrays are not allocated when a family has no labels or points at all; NULL + 0 is undefined. */
    if (s->nlabels)
        c->labels += s->nlabels;
    if (s->npoints)
        c->points += s->npoints;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The delimited stream. */

/* pbutil.ReadDelimited reads the length prefix a byte at a time into a 5-byte buffer. Returns the position after
 * the prefix, or NULL with *eof set when the input ends inside it (unexpected EOF) or clear when 5 bytes did not
 * end it. */
static const uint8_t *get_frame_len(const uint8_t *p, const uint8_t *end, uint64_t *v, int *eof)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 5; i++) {
        if (p == end) {
            *eof = 1;
            return NULL;
        }
        uint64_t b = *p++;
        x |= (b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return p;
        }
    }
    *eof = 0;
    return NULL;
}

static uint32_t name_hash(fy_str_t s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 16777619u;
    return h;
}

#define FAMILY_DROPPED 0xFF

/* Decodes the top-level fields of one validated MetricFamily and fills its series. */
static int decode_family(const uint8_t *data, size_t len, const uint32_t *counts, fy_arena_t *arena, fy_family_t *fam)
{
    field_t f = {0};
    memset(fam, 0, sizeof(*fam));
    fam->help_esc = FY_ESC_NONE;
    FOR_FIELDS(f, data, len)
    {
        if (f.wt == FY_PB_LEN) {
            fy_str_t s = fy_str((const char *)f.data, f.len);
            if (f.num == 1) {
                fam->name = s;
            } else if (f.num == 2) {
                fam->help = s;
                fam->has_help = 1;
            } else if (f.num == 5) {
                fam->unit = s;
            }
        } else if (f.num == 3 && f.wt == FY_PB_VARINT) {
            /* Go truncates the varint to int32 and, the enum being closed (proto2), keeps values it does not know
             * as unknown fields, leaving the type as it was. */
            int32_t t = (int32_t)(uint32_t)f.v;
            if (t >= 0 && t <= FY_TYPE_MAX)
                fam->type = (uint8_t)t;
        }
    }
    if (counts[SLOT_METRICS] == 0)
        return FY_OK;

    fy_series_t *series = fy_arena_alloc(arena, counts[SLOT_METRICS] * sizeof(fy_series_t));
    cursor_t c = {NULL, NULL};
    if (series == NULL)
        return FY_PERR_NOMEM;
    if (counts[SLOT_LABELS] != 0 && (c.labels = fy_arena_alloc(arena, counts[SLOT_LABELS] * sizeof(fy_label_t))) == NULL)
        return FY_PERR_NOMEM;
    if (counts[SLOT_POINTS] != 0 && (c.points = fy_arena_alloc(arena, counts[SLOT_POINTS] * sizeof(fy_point_t))) == NULL)
        return FY_PERR_NOMEM;
    FOR_FIELDS(f, data, len)
    {
        if (f.num == 4 && f.wt == FY_PB_LEN) {
            assert(fam->nseries < counts[SLOT_METRICS]);
            fill_metric(f.data, f.len, fam->type, &series[fam->nseries++], &c);
        }
    }
    fam->series = series;
    return FY_OK;
}

int fy_parse_protobuf(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err)
{
    const uint8_t *start = (const uint8_t *)buf, *end, *p;
    fy_family_t *fams = NULL;
    uint32_t *slots = NULL, mask = 0, nfam = 0, maxfam = 0;
    const uint8_t *at = start;
    int ret = FY_OK;

    body->families = NULL;
    body->nfamilies = 0;
    body->nseries = 0;
    fy__perr_clear(err);
    if (len == 0)
        return FY_OK;
    end = start + len;

    /* Size the family array and the name table from the framing alone; errors are reported in order below. */
    for (p = start; p < end;) {
        uint64_t n;
        int eof;
        maxfam++;
        if ((p = get_frame_len(p, end, &n, &eof)) == NULL || n > (uint64_t)(end - p))
            break;
        p += n;
    }
    uint32_t nslots = 4;
    while (nslots < 2 * (uint64_t)maxfam)
        nslots *= 2;
    mask = nslots - 1;
    if ((fams = fy_arena_alloc(arena, maxfam * sizeof(*fams))) == NULL ||
        (slots = fy_arena_alloc(arena, nslots * sizeof(*slots))) == NULL) {
        ret = fy__perr(err, FY_PERR_NOMEM, NULL, 0, 0);
        goto Exit;
    }
    memset(slots, 0, nslots * sizeof(*slots));

    for (p = start; p < end;) {
        uint64_t n;
        int eof;
        at = p;
        if ((p = get_frame_len(p, end, &n, &eof)) == NULL) {
            if (eof)
                ret = fy__perr(err, FY_PERR_PB_UNEXPECTED_EOF, NULL, 0, len);
            else
                ret = fy__perr(err, FY_PERR_PB_ERROR, NULL, 0, (size_t)(at - start), PB_ERR_VARINT32);
            goto Exit;
        }
        if (n > (uint64_t)(end - p)) {
            ret = fy__perr(err, FY_PERR_PB_UNEXPECTED_EOF, NULL, 0, len);
            goto Exit;
        }
        const uint8_t *msg = p;
        p += n;

        uint32_t counts[NSLOTS] = {0};
        const uint8_t *bad = validate(msg, p, &M_FAMILY, counts);
        if (bad != NULL) {
            ret = fy__perr(err, FY_PERR_PB_ERROR, NULL, 0, (size_t)(bad - start), PB_ERR_DECODE);
            goto Exit;
        }
        assert(nfam < maxfam);
        fy_family_t *fam = &fams[nfam];
        if ((ret = decode_family(msg, (size_t)n, counts, arena, fam)) != FY_OK) {
            ret = fy__perr(err, ret, NULL, 0, (size_t)(at - start));
            goto Exit;
        }

        /* Pushgateway stores families in a map by name: a later family replaces an earlier one wholesale. */
        uint32_t i = name_hash(fam->name) & mask;
        while (slots[i] != 0 && !fy_str_eq(fams[slots[i] - 1].name, fam->name))
            i = (i + 1) & mask;
        if (slots[i] != 0)
            fams[slots[i] - 1].type = FAMILY_DROPPED;
        slots[i] = ++nfam;
    }

    uint32_t kept = 0, nseries = 0;
    for (uint32_t i = 0; i < nfam; i++) {
        if (fams[i].type == FAMILY_DROPPED)
            continue;
        nseries += fams[i].nseries;
        fams[kept++] = fams[i];
    }
    body->families = fams;
    body->nfamilies = kept;
    body->nseries = nseries;

Exit:
    return ret;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The writer (fy_pb.h). */

size_t fy_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t encode_varint(uint8_t *dst, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        dst[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (uint8_t)v;
    return n;
}

void fy_pb_put_raw(fy_pb_writer_t *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void fy_pb_put_varint(fy_pb_writer_t *w, uint64_t v)
{
    uint8_t tmp[FY_PB_VARINT_MAX];
    fy_pb_put_raw(w, tmp, encode_varint(tmp, v));
}

void fy_pb_put_tag(fy_pb_writer_t *w, uint32_t field, fy_pb_wire_t wt)
{
    assert(field >= 1 && field <= PB_FIELD_MAX);
    fy_pb_put_varint(w, (uint64_t)field << 3 | (uint64_t)wt);
}

void fy_pb_put_uint64(fy_pb_writer_t *w, uint32_t field, uint64_t v)
{
    fy_pb_put_tag(w, field, FY_PB_VARINT);
    fy_pb_put_varint(w, v);
}

void fy_pb_put_int64(fy_pb_writer_t *w, uint32_t field, int64_t v)
{
    fy_pb_put_uint64(w, field, (uint64_t)v);
}

void fy_pb_put_double(fy_pb_writer_t *w, uint32_t field, double v)
{
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    fy_pb_put_tag(w, field, FY_PB_FIXED64);
    fy_pb_put_raw(w, b, 8);
}

void fy_pb_put_bytes(fy_pb_writer_t *w, uint32_t field, const void *p, size_t n)
{
    fy_pb_put_tag(w, field, FY_PB_LEN);
    fy_pb_put_varint(w, n);
    fy_pb_put_raw(w, p, n);
}

size_t fy_pb_begin(fy_pb_writer_t *w, uint32_t field)
{
    if (field != 0)
        fy_pb_put_tag(w, field, FY_PB_LEN);
    size_t mark = w->len;
    fy_pb_put_raw(w, "", 1);
    return mark;
}

void fy_pb_end(fy_pb_writer_t *w, size_t mark)
{
    if (w->overflow)
        return;
    assert(mark < w->len);
    size_t body = w->len - mark - 1;
    uint8_t tmp[FY_PB_VARINT_MAX];
    size_t k = encode_varint(tmp, body);
    if (k > 1) {
        if (k - 1 > w->cap - w->len) {
            w->overflow = 1;
            return;
        }
        memmove(w->buf + mark + k, w->buf + mark + 1, body);
        w->len += k - 1;
    }
    memcpy(w->buf + mark, tmp, k);
}
