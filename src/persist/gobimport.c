/*
 * gobimport.c: a Go encoding/gob decoder for exactly one schema, the Pushgateway's persistence file (spec 9.3):
 *
 *     map[string]MetricGroup
 *     MetricGroup             struct { Labels map[string]string; Metrics map[string]TimestampedMetricFamily }
 *     TimestampedMetricFamily struct { Timestamp time.Time; GobbableMetricFamily *GobbableMetricFamily }
 *
 * where both Timestamp and GobbableMetricFamily travel as GobEncoder byte strings (time.MarshalBinary, and the
 * protobuf encoding of io.prometheus.client.MetricFamily). The stream is self-describing: type definitions (wireType
 * values) come first, then the value. We keep every definition, check that the value's type has the shape above
 * (matching struct fields by name, as Go does), walk the value, and skip generically whatever the schema does not
 * name, including the dto struct descriptors the Pushgateway also sends.
 *
 * The wire format is the one documented in Go's encoding/gob doc.go. Every read is bounded by the current message,
 * every count is checked against the bytes left before anything is allocated or looped over, and value nesting is
 * capped, so that any input ends in a result or an error that names the offset.
 */
#include "gobimport.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Predefined gob type ids (doc.go). 9..15 are reserved, 16..23 describe types themselves, users start at 65. */
enum {
    TID_BOOL = 1,
    TID_INT = 2,
    TID_UINT = 3,
    TID_FLOAT = 4,
    TID_BYTES = 5,
    TID_STRING = 6,
    TID_COMPLEX = 7,
    TID_INTERFACE = 8,
    TID_FIRST_USER = 65,
};

/* Kinds of user-defined types, in the order of the wireType fields that define them. */
enum { K_ARRAY, K_SLICE, K_STRUCT, K_MAP, K_GOBENC, K_BINMARSHAL, K_TEXTMARSHAL, K__COUNT };

static const char *const kind_names[K__COUNT] = {"array",      "slice",           "struct",       "map",
                                                 "GobEncoder", "BinaryMarshaler", "TextMarshaler"};

typedef struct {
    const char *name;
    size_t name_len;
    int64_t id;
} field_t;

typedef struct {
    int64_t id;
    int kind;
    const char *name; /* CommonType.Name, for messages */
    size_t name_len;
    int64_t key;  /* maps */
    int64_t elem; /* arrays, slices, maps */
    uint64_t len; /* arrays */
    field_t *fields;
    size_t nfields;
} type_t;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    size_t end; /* end of the current message */
    fy_gob_error_t *err;
    int failed;

    type_t *types;
    size_t ntypes, captypes;
    uint32_t *slots; /* open addressing: index + 1 into types, 0 = empty */
    size_t nslots;

    fy_gob_label_t *labels;
    size_t nlabels, caplabels;
    fy_gob_family_t *families;
    size_t nfamilies, capfamilies;
} dec_t;

/* The resolved schema: field positions of the structs we read. */
typedef struct {
    const type_t *top, *group, *tmf;
    const type_t *labels_map, *metrics_map;
    size_t f_labels, f_metrics, f_timestamp, f_mf;
} schema_t;

__attribute__((format(printf, 3, 4))) static int set_error(dec_t *d, size_t off, const char *fmt, ...)
{
    if (d->failed)
        return -1;
    d->failed = 1;
    d->err->offset = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err->msg, sizeof(d->err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int set_eof(dec_t *d, const char *what)
{
    if (d->end == d->len)
        return set_error(d, d->pos, "gob: unexpected EOF at offset %zu reading %s", d->pos, what);
    return set_error(d, d->pos, "gob: message ends at offset %zu while reading %s", d->pos, what);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Primitive reads, all bounded by d->end. */

/* An unsigned int: one byte below 128, else a byte holding the negated byte count (1..8) then big-endian bytes. Go
 * accepts non-minimal encodings, so do we. */
static int read_uint(dec_t *d, const char *what, uint64_t *out)
{
    /* Set on errors too, here and in read_count: set_error, being variadic, is not inlined, so GCC 12 (Release)
     * cannot see that error paths return -1 and warns (-Wmaybe-uninitialized) in the callers. */
    *out = 0;
    if (d->pos >= d->end)
        return set_eof(d, what);
    uint8_t b = d->buf[d->pos];
    if (b < 0x80) {
        *out = b;
        d->pos++;
        return 0;
    }
    size_t n = (size_t)(256 - b);
    if (n > 8)
        return set_error(d, d->pos, "gob: invalid uint length byte 0x%02x at offset %zu reading %s", b, d->pos, what);
    if (n > d->end - d->pos - 1)
        return set_eof(d, what);
    uint64_t v = 0;
    for (size_t i = 1; i <= n; i++)
        v = v << 8 | d->buf[d->pos + i];
    d->pos += n + 1;
    *out = v;
    return 0;
}

static int read_int(dec_t *d, const char *what, int64_t *out)
{
    uint64_t u;
    if (read_uint(d, what, &u) != 0)
        return -1;
    /* bit 0 says "complement the rest" */
    *out = (u & 1) ? (int64_t) ~(u >> 1) : (int64_t)(u >> 1);
    return 0;
}

/* A count of things that each take at least one byte: more than the bytes left in the message cannot be right, and
 * checking it here is what keeps loops and allocations proportional to the input. */
static int read_count(dec_t *d, const char *what, size_t *out)
{
    *out = 0;
    size_t at = d->pos;
    uint64_t n;
    if (read_uint(d, what, &n) != 0)
        return -1;
    if (n > d->end - d->pos)
        return set_error(d, at, "gob: %s %llu at offset %zu exceeds the %zu bytes left in the message", what, (unsigned long long)n,
                         at, d->end - d->pos);
    *out = (size_t)n;
    return 0;
}

/* A string or []byte or GobEncoder payload: a count, then that many bytes. */
static int read_bytes(dec_t *d, const char *what, const char **p, size_t *n)
{
    if (read_count(d, what, n) != 0)
        return -1;
    *p = (const char *)d->buf + d->pos;
    d->pos += *n;
    return 0;
}

static int read_type_id(dec_t *d, const char *what, int64_t *out)
{
    size_t at = d->pos;
    if (read_int(d, what, out) != 0)
        return -1;
    if (*out < 0 || *out > INT32_MAX)
        return set_error(d, at, "gob: invalid type id %lld at offset %zu in %s", (long long)*out, at, what);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The type table. */

static type_t *find_type(const dec_t *d, int64_t id)
{
    if (d->nslots == 0)
        return NULL;
    size_t mask = d->nslots - 1;
    for (size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 32) & mask;; i = (i + 1) & mask) {
        uint32_t s = d->slots[i];
        if (s == 0)
            return NULL;
        if (d->types[s - 1].id == id)
            return &d->types[s - 1];
    }
}

static void insert_slot(uint32_t *slots, size_t nslots, int64_t id, uint32_t value)
{
    size_t mask = nslots - 1;
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 32) & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = value;
}

/* Takes ownership of t->fields. */
static int add_type(dec_t *d, const type_t *t, size_t at)
{
    if (d->ntypes >= FY_GOB_MAX_TYPES) {
        free(t->fields);
        return set_error(d, at, "gob: more than %d type definitions at offset %zu", FY_GOB_MAX_TYPES, at);
    }
    if (d->ntypes == d->captypes) {
        size_t cap = d->captypes ? d->captypes * 2 : 64;
        type_t *nt = realloc(d->types, cap * sizeof(*nt));
        if (nt == NULL) {
            free(t->fields);
            return set_error(d, at, "gob: out of memory for type definitions at offset %zu", at);
        }
        d->types = nt;
        d->captypes = cap;
    }
    if ((d->ntypes + 1) * 2 > d->nslots) {
        size_t nslots = d->nslots ? d->nslots * 2 : 128;
        uint32_t *ns = calloc(nslots, sizeof(*ns));
        if (ns == NULL) {
            free(t->fields);
            return set_error(d, at, "gob: out of memory for type definitions at offset %zu", at);
        }
        for (size_t i = 0; i < d->ntypes; i++)
            insert_slot(ns, nslots, d->types[i].id, (uint32_t)i + 1);
        free(d->slots);
        d->slots = ns;
        d->nslots = nslots;
    }
    d->types[d->ntypes] = *t;
    insert_slot(d->slots, d->nslots, t->id, (uint32_t)d->ntypes + 1);
    d->ntypes++;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Type definitions: a wireType value. All its structs are delta-coded field lists ending in a zero delta. */

/* Reads the next field delta of a struct whose fields are numbered 0..nfields-1; *field becomes -1 at the end. */
static int next_field(dec_t *d, const char *what, int64_t *field, size_t nfields)
{
    size_t at = d->pos;
    uint64_t delta;
    if (read_uint(d, what, &delta) != 0)
        return -1;
    if (delta == 0) {
        *field = -1;
        return 0;
    }
    if (delta > nfields || (uint64_t)(*field + 1) + delta - 1 >= nfields)
        return set_error(d, at, "gob: field number out of range in %s at offset %zu", what, at);
    *field += (int64_t)delta;
    return 0;
}

static int read_common(dec_t *d, type_t *t)
{
    int64_t f = -1;
    for (;;) {
        if (next_field(d, "a type's CommonType", &f, 2) != 0)
            return -1;
        if (f < 0)
            return 0;
        if (f == 0) {
            if (read_bytes(d, "a type name", &t->name, &t->name_len) != 0)
                return -1;
        } else {
            int64_t ignored; /* the id repeated inside the type; Go does not check it either */
            if (read_int(d, "a type's own id", &ignored) != 0)
                return -1;
        }
    }
}

static int read_field_list(dec_t *d, type_t *t)
{
    size_t n;
    if (read_count(d, "struct field count", &n) != 0)
        return -1;
    if (n > FY_GOB_MAX_FIELDS)
        return set_error(d, d->pos, "gob: struct type with %zu fields at offset %zu (limit %d)", n, d->pos, FY_GOB_MAX_FIELDS);
    t->fields = calloc(n ? n : 1, sizeof(*t->fields));
    if (t->fields == NULL)
        return set_error(d, d->pos, "gob: out of memory for struct fields at offset %zu", d->pos);
    t->nfields = n;
    for (size_t i = 0; i < n; i++) {
        field_t *fl = &t->fields[i];
        fl->id = -1;
        int64_t f = -1;
        for (;;) {
            if (next_field(d, "a struct field definition", &f, 2) != 0)
                return -1;
            if (f < 0)
                break;
            if (f == 0 && read_bytes(d, "a field name", &fl->name, &fl->name_len) != 0)
                return -1;
            if (f == 1 && read_type_id(d, "a field's type id", &fl->id) != 0)
                return -1;
        }
        if (fl->id < 0)
            return set_error(d, d->pos, "gob: struct field %zu has no type id at offset %zu", i, d->pos);
    }
    return 0;
}

/* The body of arrayType, sliceType, structType, mapType or gobEncoderType (all start with an embedded CommonType). */
static int read_kind(dec_t *d, type_t *t)
{
    static const size_t nfields[K__COUNT] = {3, 2, 2, 3, 1, 1, 1};
    bool have_elem = false, have_key = false;
    int64_t f = -1;
    t->key = t->elem = -1;
    for (;;) {
        if (next_field(d, "a type definition", &f, nfields[t->kind]) != 0)
            return -1;
        if (f < 0)
            break;
        if (f == 0) {
            if (read_common(d, t) != 0)
                return -1;
            continue;
        }
        switch (t->kind) {
        case K_ARRAY:
            if (f == 1) {
                if (read_type_id(d, "an array's element type", &t->elem) != 0)
                    return -1;
                have_elem = true;
            } else {
                size_t at = d->pos;
                int64_t n;
                if (read_int(d, "an array length", &n) != 0)
                    return -1;
                if (n < 0)
                    return set_error(d, at, "gob: negative array length %lld at offset %zu", (long long)n, at);
                t->len = (uint64_t)n;
            }
            break;
        case K_SLICE:
            if (read_type_id(d, "a slice's element type", &t->elem) != 0)
                return -1;
            have_elem = true;
            break;
        case K_STRUCT:
            if (t->fields != NULL)
                return set_error(d, d->pos, "gob: struct type with two field lists at offset %zu", d->pos);
            if (read_field_list(d, t) != 0)
                return -1;
            break;
        case K_MAP:
            if (f == 1) {
                if (read_type_id(d, "a map's key type", &t->key) != 0)
                    return -1;
                have_key = true;
            } else {
                if (read_type_id(d, "a map's element type", &t->elem) != 0)
                    return -1;
                have_elem = true;
            }
            break;
        default:
            assert(0 && "GobEncoder types have only a CommonType");
        }
    }
    if ((t->kind == K_ARRAY || t->kind == K_SLICE || t->kind == K_MAP) && !have_elem)
        return set_error(d, d->pos, "gob: %s type without an element type at offset %zu", kind_names[t->kind], d->pos);
    if (t->kind == K_MAP && !have_key)
        return set_error(d, d->pos, "gob: map type without a key type at offset %zu", d->pos);
    return 0;
}

/* A type definition message: after -id, one wireType value with exactly one of its seven fields set. */
static int read_type_def(dec_t *d, int64_t id, size_t at)
{
    if (id < TID_FIRST_USER || find_type(d, id) != NULL)
        return set_error(d, at, "gob: duplicate or reserved type id %lld defined at offset %zu", (long long)id, at);
    type_t t;
    memset(&t, 0, sizeof(t));
    t.id = id;
    t.kind = -1;
    int64_t f = -1;
    for (;;) {
        if (next_field(d, "a wireType", &f, K__COUNT) != 0)
            goto Error;
        if (f < 0)
            break;
        if (t.kind >= 0) {
            set_error(d, d->pos, "gob: type id %lld defined as both %s and %s at offset %zu", (long long)id, kind_names[t.kind],
                      kind_names[f], d->pos);
            goto Error;
        }
        t.kind = (int)f;
        if (read_kind(d, &t) != 0)
            goto Error;
    }
    if (t.kind < 0) {
        set_error(d, at, "gob: empty type definition for id %lld at offset %zu", (long long)id, at);
        goto Error;
    }
    if (d->pos != d->end) {
        set_error(d, d->pos, "gob: %zu bytes of extra data after the definition of type id %lld at offset %zu", d->end - d->pos,
                  (long long)id, d->pos);
        goto Error;
    }
    return add_type(d, &t, at);
Error:
    free(t.fields);
    return -1;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Values we do not interpret: walked to stay in step, nothing kept. */

static int skip_value(dec_t *d, int64_t tid, int depth);

static int skip_struct(dec_t *d, const type_t *t, int depth)
{
    int64_t f = -1;
    for (;;) {
        if (next_field(d, "a struct value", &f, t->nfields) != 0)
            return -1;
        if (f < 0)
            return 0;
        if (skip_value(d, t->fields[f].id, depth + 1) != 0)
            return -1;
    }
}

static int skip_value(dec_t *d, int64_t tid, int depth)
{
    uint64_t u;
    const char *p;
    size_t n;
    if (depth > FY_GOB_MAX_DEPTH)
        return set_error(d, d->pos, "gob: values nested deeper than %d at offset %zu", FY_GOB_MAX_DEPTH, d->pos);
    switch (tid) {
    case TID_BOOL:
    case TID_INT:
    case TID_UINT:
    case TID_FLOAT:
        return read_uint(d, "a number", &u);
    case TID_COMPLEX:
        return read_uint(d, "a complex's real part", &u) || read_uint(d, "a complex's imaginary part", &u) ? -1 : 0;
    case TID_BYTES:
    case TID_STRING:
        return read_bytes(d, "a string length", &p, &n);
    }
    const type_t *t = find_type(d, tid);
    if (t == NULL) {
        if (tid == TID_INTERFACE)
            return set_error(d, d->pos, "gob: interface values are not part of the Pushgateway format (offset %zu)", d->pos);
        return set_error(d, d->pos, "gob: type id %lld not defined at offset %zu", (long long)tid, d->pos);
    }
    size_t at = d->pos;
    switch (t->kind) {
    case K_ARRAY:
    case K_SLICE:
        if (read_count(d, "an element count", &n) != 0)
            return -1;
        if (t->kind == K_ARRAY && n != t->len)
            return set_error(d, at, "gob: array of %zu elements for a type of length %llu at offset %zu", n,
                             (unsigned long long)t->len, at);
        for (size_t i = 0; i < n; i++)
            if (skip_value(d, t->elem, depth + 1) != 0)
                return -1;
        return 0;
    case K_MAP:
        if (read_count(d, "a map size", &n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (skip_value(d, t->key, depth + 1) != 0 || skip_value(d, t->elem, depth + 1) != 0)
                return -1;
        return 0;
    case K_STRUCT:
        return skip_struct(d, t, depth);
    default:
        return read_bytes(d, "an encoded value's length", &p, &n);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The schema. Go matches struct fields by name and needs compatible types; so do we, for the fields we read. */

static bool name_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static const type_t *user_type(const dec_t *d, int64_t id, int kind)
{
    const type_t *t = find_type(d, id);
    return t != NULL && t->kind == kind ? t : NULL;
}

static bool is_encoder(const type_t *t)
{
    return t != NULL && (t->kind == K_GOBENC || t->kind == K_BINMARSHAL || t->kind == K_TEXTMARSHAL);
}

static int find_field(const type_t *st, const char *name, size_t *idx)
{
    for (size_t i = 0; i < st->nfields; i++) {
        if (name_is(st->fields[i].name, st->fields[i].name_len, name)) {
            *idx = i;
            return 0;
        }
    }
    return -1;
}

static int resolve_schema(dec_t *d, int64_t tid, size_t at, schema_t *s)
{
    const char *why;
    memset(s, 0, sizeof(*s));
    if ((s->top = user_type(d, tid, K_MAP)) == NULL) {
        why = find_type(d, tid) == NULL && tid >= TID_FIRST_USER ? "is not defined" : "is not a map";
        goto Bad;
    }
    if (s->top->key != TID_STRING && s->top->key != TID_INT && s->top->key != TID_UINT) {
        why = "has a map key that is neither a string nor an integer";
        goto Bad;
    }
    if ((s->group = user_type(d, s->top->elem, K_STRUCT)) == NULL) {
        why = "is not a map of structs";
        goto Bad;
    }
    if (find_field(s->group, "Labels", &s->f_labels) != 0 || find_field(s->group, "Metrics", &s->f_metrics) != 0) {
        why = "has no MetricGroup (fields Labels and Metrics) as its element";
        goto Bad;
    }
    s->labels_map = user_type(d, s->group->fields[s->f_labels].id, K_MAP);
    if (s->labels_map == NULL || s->labels_map->key != TID_STRING || s->labels_map->elem != TID_STRING) {
        why = "has a MetricGroup.Labels that is not a map[string]string";
        goto Bad;
    }
    s->metrics_map = user_type(d, s->group->fields[s->f_metrics].id, K_MAP);
    if (s->metrics_map == NULL || s->metrics_map->key != TID_STRING ||
        (s->tmf = user_type(d, s->metrics_map->elem, K_STRUCT)) == NULL) {
        why = "has a MetricGroup.Metrics that is not a map[string]struct";
        goto Bad;
    }
    if (find_field(s->tmf, "Timestamp", &s->f_timestamp) != 0 || find_field(s->tmf, "GobbableMetricFamily", &s->f_mf) != 0 ||
        !is_encoder(find_type(d, s->tmf->fields[s->f_timestamp].id)) || !is_encoder(find_type(d, s->tmf->fields[s->f_mf].id))) {
        why = "has no TimestampedMetricFamily (GobEncoder fields Timestamp and GobbableMetricFamily) in Metrics";
        goto Bad;
    }
    return 0;
Bad:
    return set_error(d, at, "gob: the value at offset %zu (type id %lld) %s; not a Pushgateway persistence file", at,
                     (long long)tid, why);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The value. */

#define GO_SECONDS_TO_UNIX 62135596800ll /* seconds from 0001-01-01 to 1970-01-01 (time.unixToInternal) */

/* time.Time.UnmarshalBinary: version 1 (15 bytes) or 2 (16 bytes, the zone's extra seconds). */
static int parse_time(dec_t *d, const uint8_t *p, size_t n, size_t at, fy_gob_family_t *fam)
{
    if (n == 0 || (p[0] != 1 && p[0] != 2) || n != (p[0] == 1 ? 15u : 16u))
        return set_error(d, at, "gob: bad time.Time encoding at offset %zu (%zu bytes, version %d)", at, n, n ? p[0] : -1);
    uint64_t sec = 0;
    for (int i = 1; i <= 8; i++)
        sec = sec << 8 | p[i];
    uint32_t nsec = (uint32_t)p[9] << 24 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 8 | p[12];
    int16_t off_min = (int16_t)(uint16_t)((unsigned)p[13] << 8 | p[14]);
    if (nsec > 999999999u)
        return set_error(d, at, "gob: time.Time with %u nanoseconds at offset %zu", nsec, at);
    if ((int64_t)sec < INT64_MIN + GO_SECONDS_TO_UNIX)
        return set_error(d, at, "gob: time.Time out of range at offset %zu", at);
    fam->unix_sec = (int64_t)sec - GO_SECONDS_TO_UNIX;
    fam->nsec = (int32_t)nsec;
    fam->zone_utc = off_min == -1;
    fam->zone_offset_s = fam->zone_utc ? 0 : off_min * 60 + (p[0] == 2 ? (int8_t)p[15] : 0);
    return 0;
}

static int push_label(dec_t *d, const fy_gob_label_t *l)
{
    if (d->nlabels == d->caplabels) {
        size_t cap = d->caplabels ? d->caplabels * 2 : 16;
        fy_gob_label_t *n = realloc(d->labels, cap * sizeof(*n));
        if (n == NULL)
            return set_error(d, d->pos, "gob: out of memory for labels at offset %zu", d->pos);
        d->labels = n;
        d->caplabels = cap;
    }
    d->labels[d->nlabels++] = *l;
    return 0;
}

static fy_gob_family_t *push_family(dec_t *d)
{
    if (d->nfamilies == d->capfamilies) {
        size_t cap = d->capfamilies ? d->capfamilies * 2 : 16;
        fy_gob_family_t *n = realloc(d->families, cap * sizeof(*n));
        if (n == NULL) {
            set_error(d, d->pos, "gob: out of memory for families at offset %zu", d->pos);
            return NULL;
        }
        d->families = n;
        d->capfamilies = cap;
    }
    fy_gob_family_t *f = &d->families[d->nfamilies++];
    memset(f, 0, sizeof(*f));
    f->unix_sec = -GO_SECONDS_TO_UNIX; /* Go's zero time, if no Timestamp is sent */
    f->zone_utc = 1;
    return f;
}

static int read_labels(dec_t *d)
{
    size_t n;
    if (read_count(d, "the Labels map size", &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        fy_gob_label_t l;
        if (read_bytes(d, "a label name", &l.name, &l.name_len) != 0 || read_bytes(d, "a label value", &l.value, &l.value_len) != 0)
            return -1;
        if (push_label(d, &l) != 0)
            return -1;
    }
    return 0;
}

static int read_family(dec_t *d, const schema_t *s, fy_gob_family_t *fam, int depth)
{
    size_t start = d->pos;
    bool have_mf = false;
    int64_t f = -1;
    for (;;) {
        if (next_field(d, "a TimestampedMetricFamily", &f, s->tmf->nfields) != 0)
            return -1;
        if (f < 0)
            break;
        size_t at = d->pos;
        const char *p;
        size_t n;
        if ((size_t)f == s->f_timestamp) {
            if (read_bytes(d, "a Timestamp length", &p, &n) != 0 || parse_time(d, (const uint8_t *)p, n, at, fam) != 0)
                return -1;
        } else if ((size_t)f == s->f_mf) {
            if (read_bytes(d, "a GobbableMetricFamily length", &fam->mf, &fam->mf_len) != 0)
                return -1;
            fam->mf_offset = (size_t)(fam->mf - (const char *)d->buf);
            have_mf = true;
        } else if (skip_value(d, s->tmf->fields[f].id, depth + 1) != 0) {
            return -1;
        }
    }
    /* A nil *GobbableMetricFamily is omitted by the encoder; the Pushgateway never stores one and could not serve it. */
    if (!have_mf)
        return set_error(d, start, "gob: family \"%.*s\" at offset %zu has no GobbableMetricFamily",
                         (int)(fam->name_len > 64 ? 64 : fam->name_len), fam->name, start);
    return 0;
}

static int read_metrics(dec_t *d, const schema_t *s, int depth)
{
    size_t n;
    if (read_count(d, "the Metrics map size", &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        fy_gob_family_t *fam = push_family(d);
        if (fam == NULL || read_bytes(d, "a family name", &fam->name, &fam->name_len) != 0 ||
            read_family(d, s, fam, depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    const fy_gob_label_t *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c != 0 ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int cmp_family(const void *a, const void *b)
{
    const fy_gob_family_t *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c != 0 ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int read_group(dec_t *d, const schema_t *s, fy_gob_group_t *g, int depth)
{
    d->nlabels = d->nfamilies = 0;
    int64_t f = -1;
    for (;;) {
        if (next_field(d, "a MetricGroup", &f, s->group->nfields) != 0)
            return -1;
        if (f < 0)
            break;
        int rc;
        if ((size_t)f == s->f_labels)
            rc = read_labels(d);
        else if ((size_t)f == s->f_metrics)
            rc = read_metrics(d, s, depth + 1);
        else
            rc = skip_value(d, s->group->fields[f].id, depth + 1);
        if (rc != 0)
            return -1;
    }
    /* Go maps cannot hold a key twice; a stream that repeats one is corrupt, and the caller must not see two
     * values for one name. Sorting also gives the caller a deterministic order. */
    if (d->nlabels > 1)
        qsort(d->labels, d->nlabels, sizeof(*d->labels), cmp_label);
    if (d->nfamilies > 1)
        qsort(d->families, d->nfamilies, sizeof(*d->families), cmp_family);
    for (size_t i = 1; i < d->nlabels; i++)
        if (cmp_label(&d->labels[i - 1], &d->labels[i]) == 0)
            return set_error(d, g->offset, "gob: group at offset %zu repeats the label name \"%.*s\"", g->offset,
                             (int)(d->labels[i].name_len > 64 ? 64 : d->labels[i].name_len), d->labels[i].name);
    for (size_t i = 1; i < d->nfamilies; i++)
        if (cmp_family(&d->families[i - 1], &d->families[i]) == 0)
            return set_error(d, g->offset, "gob: group at offset %zu repeats the family \"%.*s\"", g->offset,
                             (int)(d->families[i].name_len > 64 ? 64 : d->families[i].name_len), d->families[i].name);
    g->labels = d->labels;
    g->nlabels = d->nlabels;
    g->families = d->families;
    g->nfamilies = d->nfamilies;
    return 0;
}

/* The top-level map, sent as a singleton: a zero field delta, then the map. */
static int read_store(dec_t *d, const schema_t *s, fy_gob_group_cb cb, void *ctx)
{
    size_t at = d->pos;
    uint64_t delta;
    size_t n;
    if (read_uint(d, "the singleton field delta", &delta) != 0)
        return -1;
    if (delta != 0)
        return set_error(d, at, "gob: non-zero field delta %llu for the top-level map at offset %zu", (unsigned long long)delta,
                         at);
    if (read_count(d, "the number of groups", &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        fy_gob_group_t g;
        memset(&g, 0, sizeof(g));
        size_t key_at = d->pos;
        if (s->top->key == TID_STRING) {
            if (read_bytes(d, "a grouping key", &g.key, &g.key_len) != 0)
                return -1;
        } else if (skip_value(d, s->top->key, 1) != 0) {
            return -1;
        }
        g.offset = key_at;
        if (read_group(d, s, &g, 1) != 0)
            return -1;
        int rc = cb(ctx, &g);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets d->end to the end of the next message; returns 1 at a clean end of input. */
static int next_message(dec_t *d)
{
    d->end = d->len;
    if (d->pos == d->len)
        return 1;
    size_t at = d->pos;
    uint64_t n;
    if (read_uint(d, "a message length", &n) != 0)
        return -1;
    if (n == 0)
        return set_error(d, at, "gob: empty message at offset %zu", at);
    if (n > d->len - d->pos)
        return set_error(d, at, "gob: unexpected EOF at offset %zu: message of %llu bytes, only %zu left", at,
                         (unsigned long long)n, d->len - d->pos);
    d->end = d->pos + (size_t)n;
    return 0;
}

int fy_gob_import(const char *buf, size_t len, fy_gob_group_cb cb, void *ctx, fy_gob_error_t *err)
{
    dec_t d;
    int rc;
    memset(&d, 0, sizeof(d));
    d.buf = (const uint8_t *)buf;
    d.len = len;
    d.err = err;
    err->offset = 0;
    err->msg[0] = '\0';

    for (;;) {
        if ((rc = next_message(&d)) != 0) {
            if (rc == 1) /* no value at all: an empty file, or only type definitions */
                rc = d.pos == 0 ? 0
                                : set_error(&d, d.pos, "gob: unexpected EOF at offset %zu: type definitions but no value", d.pos);
            goto Exit;
        }
        size_t at = d.pos;
        int64_t id;
        if ((rc = read_int(&d, "a type id", &id)) != 0)
            goto Exit;
        if (id < 0) {
            if (id == INT64_MIN || -id > INT32_MAX) {
                rc = set_error(&d, at, "gob: invalid type id %lld at offset %zu", (long long)id, at);
                goto Exit;
            }
            if ((rc = read_type_def(&d, -id, at)) != 0)
                goto Exit;
            continue;
        }
        schema_t s;
        if ((rc = resolve_schema(&d, id, at, &s)) != 0 || (rc = read_store(&d, &s, cb, ctx)) != 0)
            goto Exit;
        if (d.pos != d.end) {
            rc = set_error(&d, d.pos, "gob: %zu bytes left over in the value message at offset %zu", d.end - d.pos, d.pos);
            goto Exit;
        }
        /* The Pushgateway encodes one value per file; anything after it is not something it wrote. */
        if (d.pos != d.len)
            rc = set_error(&d, d.pos, "gob: %zu bytes of trailing data after the value at offset %zu", d.len - d.pos, d.pos);
        goto Exit;
    }
Exit:
    for (size_t i = 0; i < d.ntypes; i++)
        free(d.types[i].fields);
    free(d.types);
    free(d.slots);
    free(d.labels);
    free(d.families);
    return rc;
}

size_t fy_gob_delimit_prefix(size_t mf_len, uint8_t out[10])
{
    size_t n = 0;
    uint64_t v = mf_len;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

int fy_gob_time_ns(const fy_gob_family_t *f, int64_t *ns)
{
    if (f->unix_sec < INT64_MIN / 1000000000 + 1 || f->unix_sec > INT64_MAX / 1000000000 - 1)
        return -1;
    int64_t v = f->unix_sec * 1000000000;
    if (v > INT64_MAX - f->nsec)
        return -1;
    *ns = v + f->nsec;
    return 0;
}
