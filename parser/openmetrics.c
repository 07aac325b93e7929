/*
 * openmetrics.c: the OpenMetrics 1.0 text parser (fy_parse_openmetrics), which turns an exposition into the model of
 * fy_model.h and enforces the specification's structural rules (contiguous families and series, metadata before
 * samples, per-type sample suffixes, histogram bucket rules, exemplar placement and size, "# EOF" at the end).
 *
 * One pass over the lines. Work arrays (families, series, points, _created values) are carved from the arena once,
 * sized by the most lines the input can hold, so pointers into them stay valid and nothing is copied at the end
 * except the output family array and the series of the split-off "<name>_created" gauge families. Three hash tables
 * (names, series, quantiles) grow by doubling inside the arena and keep every lookup O(1) expected; label sets are
 * compared through an order-independent hash plus a sorted index, so no input makes the parser quadratic.
 */
#include "fy_num.h"
#include "fy_parse.h"
#include "fy_parse_internal.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* OpenMetrics metric types (only what this file needs; the model has fewer). */
enum { OM_UNKNOWN, OM_GAUGE, OM_COUNTER, OM_STATESET, OM_INFO, OM_HISTOGRAM, OM_GAUGEHISTOGRAM, OM_SUMMARY };
static const char *const om_type_names[] = {"unknown", "gauge",     "counter",        "stateset",
                                            "info",    "histogram", "gaugehistogram", "summary"};

/* What a sample line contributes to its series, from the sample name's suffix. */
enum { S_VALUE, S_TOTAL, S_CREATED, S_COUNT, S_SUM, S_BUCKET, S_QUANTILE, S_INFO, S_NKINDS };
static const char *const sample_suffix[S_NKINDS] = {"", "_total", "_created", "_count", "_sum", "_bucket", "", "_info"};

#define NAME_FAMILY 0x80000000u /* the name is a family's name */
#define NAME_SAMPLE 0x40000000u /* the name is a sample name of the family */
#define NAME_FAM_MASK 0x3FFFFFFFu
#define EXEMPLAR_MAX_RUNES 128

typedef struct {
    uint32_t hash; /* low half of the 64-bit hash */
    uint32_t val;  /* index + 1; 0 marks an empty slot */
} slot_t;

typedef struct {
    slot_t *s;
    uint32_t mask; /* capacity - 1, capacity a power of two */
    uint32_t n;
} table_t;

typedef struct {
    fy_str_t name; /* as declared, or the sample name of an undeclared (unknown) family */
    fy_str_t help, unit;
    const char *sample_name;  /* counter: "<name>_total", info: "<name>_info" (points into the input) */
    const char *created_name; /* first "<name>_created" sample, or NULL */
    uint32_t first_series, nseries;
    uint32_t first_created, ncreated;
    uint8_t type, has_type, has_help, has_unit, help_esc;
} fam_t;

typedef struct {
    uint32_t series;
    double value;
} created_t;

typedef struct {
    fy_str_t name;
    uint32_t fam_flags; /* family index | NAME_* */
} name_t;

/* State of the series being filled; only the last series of the current family can take more samples. */
typedef struct {
    int active;
    uint32_t nsamples;
    uint32_t seen; /* bit per sample kind */
    uint8_t has_ts;
    int64_t ts_ms;
    uint32_t nbuckets;
    double last_le;
    uint64_t last_bucket, count;
    double sum, created;
    int neg_le;
} cur_t;

typedef struct {
    const char *buf;
    size_t len;
    fy_arena_t *arena;
    fy_parse_error_t *err;
    uint32_t line;
    uint64_t seed;

    fam_t *fams;
    uint32_t nfams, maxfams;
    fy_series_t *series;
    uint32_t nseries, maxseries;
    fy_point_t *points;
    uint32_t npoints, maxpoints;
    created_t *created;
    uint32_t ncreated, maxcreated;
    name_t *names;
    uint32_t nnames, maxnames;
    table_t name_tab, series_tab, quantile_tab;

    int cur_fam; /* index of the current family, -1 before the first */
    cur_t cur;
} om_t;

/* Per sample line: the parsed pieces. */
typedef struct {
    fy_str_t name;
    fy_label_t *labels; /* scratch until the series is new */
    uint32_t nlabels;
    uint32_t *sorted; /* label indices sorted by name, then value */
    uint64_t hash;
    fy_str_t special; /* value of le / quantile, when the kind takes one */
    int has_special;
    fy_str_t value_tok;
    double value;
    uint8_t has_ts;
    int64_t ts_ms;
    int has_exemplar;
    const char *exemplar_at;
} sample_t;

/* ------------------------------------------------------------------------------------------------------------- */
/* Errors */

static int om_fail(om_t *p, const char *at, const char *fmt, ...)
{
    char msg[FY_ERRMSG_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0' && n + 1 < sizeof(msg); f++) {
        if (f[0] == '%' && f[1] == 'q') {
            fy_str_t a = va_arg(ap, fy_str_t);
            size_t room = sizeof(msg) - n;
            room = room > 300 ? 300 : room; /* one long argument must not push the rest of the message out */
            if (a.len == SIZE_MAX) {
                char q[16];
                if (a.ptr == NULL) {
                    n += fy__go_quote("", 0, msg + n, room);
                } else {
                    size_t k = fy__go_quote(a.ptr, 1, q, sizeof(q)); /* shown as a one-byte string */
                    if (k + 1 < room) {
                        memcpy(msg + n, q, k);
                        n += k;
                    }
                }
            } else {
                n += fy__go_quote(a.ptr, a.len, msg + n, room);
            }
            f++;
        } else if (f[0] == '%' && f[1] == 's') {
            const char *s = va_arg(ap, const char *);
            size_t k = strlen(s);
            if (k > sizeof(msg) - 1 - n)
                k = sizeof(msg) - 1 - n;
            memcpy(msg + n, s, k);
            n += k;
            f++;
        } else {
            msg[n++] = *f;
        }
    }
    va_end(ap);
    msg[n] = '\0';
    return fy__perr(p->err, FY_PERR_OM_ERROR, FY_OM_PREFIX, p->line, (size_t)(at - p->buf), msg);
}

static int om_nomem(om_t *p, const char *at)
{
    return fy__perr(p->err, FY_PERR_NOMEM, NULL, p->line, (size_t)(at - p->buf));
}

/* The byte at p as a quoted one-byte string, or "" at the end of the line. */
static fy_str_t tok_at(const char *p, const char *e)
{
    return p < e ? fy__rune_arg(p) : fy__rune_arg(NULL);
}

/* The rest of the token at p (up to a space or the end of the line), for messages. */
static fy_str_t word_at(const char *p, const char *e)
{
    const char *q = p;
    while (q < e && *q != ' ')
        q++;
    return fy_str(p, (size_t)(q - p));
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Hashing and tables */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

/* Seeded per call (the seed comes from addresses, which ASLR varies) so that crafted collisions do not carry over
 * from one process to the next. */
static uint64_t hash_bytes(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, s, n);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

static int tab_init(om_t *p, table_t *t, uint32_t cap)
{
    t->s = fy_arena_alloc(p->arena, (size_t)cap * sizeof(slot_t));
    if (t->s == NULL)
        return -1;
    memset(t->s, 0, (size_t)cap * sizeof(slot_t));
    t->mask = cap - 1;
    t->n = 0;
    return 0;
}

/* Makes room for one more entry (load stays <= 1/2). The old slots stay in the arena as garbage, bounded by the
 * size of the final table. */
static int tab_reserve(om_t *p, table_t *t)
{
    if ((t->n + 1) * 2 <= t->mask + 1)
        return 0;
    table_t nt;
    if (tab_init(p, &nt, (t->mask + 1) * 2) != 0)
        return -1;
    for (uint32_t i = 0; i <= t->mask; i++) {
        if (t->s[i].val == 0)
            continue;
        uint32_t j = (uint32_t)t->s[i].hash & nt.mask;
        while (nt.s[j].val != 0)
            j = (j + 1) & nt.mask;
        nt.s[j] = t->s[i];
    }
    nt.n = t->n;
    *t = nt;
    return 0;
}

/* Inserts without looking (the caller has looked and reserved). */
static void tab_put(table_t *t, uint64_t hash, uint32_t val)
{
    uint32_t j = (uint32_t)hash & t->mask;
    while (t->s[j].val != 0)
        j = (j + 1) & t->mask;
    t->s[j].hash = (uint32_t)hash;
    t->s[j].val = val;
    t->n++;
}

static name_t *name_find(om_t *p, fy_str_t name, uint64_t h)
{
    table_t *t = &p->name_tab;
    for (uint32_t j = (uint32_t)h & t->mask; t->s[j].val != 0; j = (j + 1) & t->mask) {
        name_t *nm = &p->names[t->s[j].val - 1];
        if (t->s[j].hash == (uint32_t)h && fy_str_eq(nm->name, name))
            return nm;
    }
    return NULL;
}

static name_t *name_add(om_t *p, fy_str_t name, uint64_t h, uint32_t fam_flags)
{
    if (p->nnames == p->maxnames || tab_reserve(p, &p->name_tab) != 0)
        return NULL;
    name_t *nm = &p->names[p->nnames++];
    nm->name = name;
    nm->fam_flags = fam_flags;
    tab_put(&p->name_tab, h, p->nnames);
    return nm;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Lexical pieces */

static inline int is_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static inline int is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static inline int is_label_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline int is_label_char(unsigned char c)
{
    return is_label_start(c) || (c >= '0' && c <= '9');
}

/* Length of the metric name at s (0 if none). */
static size_t scan_metric_name(const char *s, const char *e)
{
    const char *q = s;
    if (q < e && is_name_start((unsigned char)*q)) {
        q++;
        while (q < e && is_name_char((unsigned char)*q))
            q++;
    }
    return (size_t)(q - s);
}

/* An escaped-string up to (not including) the byte `stop` or the end of the line: checks UTF-8 and that no
 * backslash ends the string. Returns the end, and sets *esc if a backslash occurs. In HELP, stop is '\n' (never
 * present before e) and a bare '"' is accepted as Prometheus and client_golang do; in label values stop is '"'. */
static const char *scan_escaped(const char *s, const char *e, char stop, int *esc, int *bad)
{
    const char *q = s;
    int ascii = 1;
    *esc = 0;
    *bad = 0;
    while (q < e && *q != stop) {
        unsigned char c = (unsigned char)*q;
        if (c == '\\') {
            *esc = 1;
            if (q + 1 >= e) {
                *bad = 1; /* a backslash right before the end of the line */
                return q + 1;
            }
            q += 2;
            if ((unsigned char)q[-1] >= 0x80)
                ascii = 0;
            continue;
        }
        if (c >= 0x80)
            ascii = 0;
        q++;
    }
    if (!ascii && !fy__utf8_valid(s, (size_t)(q - s)))
        *bad = 2;
    return q;
}

/* OpenMetrics `realnumber` (no inf/nan) as a timestamp in seconds, to milliseconds rounded toward zero. */
static int parse_timestamp(fy_str_t t, int64_t *ms)
{
    double v;
    size_t i = (t.len && (t.ptr[0] == '+' || t.ptr[0] == '-')) ? 1 : 0;
    if (i >= t.len || !((t.ptr[i] >= '0' && t.ptr[i] <= '9') || t.ptr[i] == '.'))
        return -1;
    if (fy_parse_float(t.ptr, t.len, &v) != 0)
        return -1;
    v *= 1000.0;
    if (!(v > -9223372036854775808.0 && v < 9223372036854775808.0))
        return -2;
    *ms = (int64_t)v;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Labels */

/* Sorts idx[0..n) by label name (heap sort: no allocation, no quadratic case). */
static int label_less(const fy_label_t *l, uint32_t a, uint32_t b)
{
    int c = fy_str_cmp(l[a].name, l[b].name);
    return c < 0;
}

static void sift_down(const fy_label_t *l, uint32_t *idx, uint32_t root, uint32_t n)
{
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && label_less(l, idx[child], idx[child + 1]))
            child++;
        if (!label_less(l, idx[root], idx[child]))
            return;
        uint32_t t = idx[root];
        idx[root] = idx[child];
        idx[child] = t;
        root = child;
    }
}

static void sort_labels(const fy_label_t *l, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    if (n <= 12) {
        for (uint32_t i = 1; i < n; i++) {
            uint32_t v = idx[i], j = i;
            while (j > 0 && label_less(l, v, idx[j - 1])) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        return;
    }
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(l, idx, i, n);
    for (uint32_t end = n; end-- > 1;) {
        uint32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(l, idx, 0, end);
    }
}

/*
 * Parses "{...}" at *pos (which points at '{') into an array written at the arena's top; on success the labels
 * are committed to the arena (the caller may roll back to its mark). Label names must be unique (checked by the
 * caller on the sorted index). *runes gets the code points of names and unescaped values (for exemplars).
 */
static int parse_labels(om_t *p, const char **pos, const char *e, fy_str_t metric, fy_label_t **out, uint32_t *nout, size_t *runes)
{
    fy_arena_t *a = p->arena;
    size_t base = (a->used + 15) & ~(size_t)15;
    fy_label_t *labels = (fy_label_t *)(a->base + base);
    uint32_t n = 0;
    const char *q = *pos + 1;
    *runes = 0;
    if (base > a->cap)
        return om_nomem(p, q);
    for (;;) {
        if (q < e && *q == '}') {
            q++;
            break;
        }
        if (q >= e || !is_label_start((unsigned char)*q))
            return om_fail(p, q, "expected label name or '}' in labels of %q, got %q", metric, tok_at(q, e));
        const char *ln = q;
        while (q < e && is_label_char((unsigned char)*q))
            q++;
        fy_str_t name = fy_str(ln, (size_t)(q - ln));
        if (q >= e || *q != '=')
            return om_fail(p, q, "expected '=' after label name %q, got %q", name, tok_at(q, e));
        q++;
        if (q >= e || *q != '"')
            return om_fail(p, q, "expected '\"' at start of the value of label %q, got %q", name, tok_at(q, e));
        q++;
        int esc, bad;
        const char *ve = scan_escaped(q, e, '"', &esc, &bad);
        fy_str_t value = fy_str(q, (size_t)(ve - q));
        if (bad == 2)
            return om_fail(p, q, "label value %q is not valid UTF-8", value);
        if (bad == 1 || ve >= e)
            return om_fail(p, q, "label value %q is not terminated by '\"' on its line", fy_str(q, (size_t)(e - q)));
        if (name.len == 8 && memcmp(name.ptr, "__name__", 8) == 0)
            return om_fail(p, ln, "label name %q is reserved", name);
        if ((size_t)(a->cap - base) / sizeof(fy_label_t) <= n)
            return om_nomem(p, ln);
        labels[n].name = name;
        labels[n].value = value;
        labels[n].value_esc = esc ? FY_ESC_OM : FY_ESC_NONE;
        n++;
        if (runes != NULL) {
            size_t r = name.len;
            for (size_t i = 0; i < value.len; i++) {
                unsigned char c = (unsigned char)value.ptr[i];
                if ((c & 0xC0) != 0x80)
                    r++;
                if (c == '\\' && i + 1 < value.len) {
                    char d = value.ptr[i + 1];
                    if (d == '\\' || d == '"' || d == 'n')
                        i++;
                }
            }
            *runes += r;
        }
        q = ve + 1;
        if (q < e && *q == ',') {
            q++; /* a trailing comma before '}' is accepted, as Prometheus does */
            continue;
        }
        if (q < e && *q == '}') {
            q++;
            break;
        }
        return om_fail(p, q, "expected ',' or '}' after label value %q, got %q", value, tok_at(q, e));
    }
    a->used = base + (size_t)n * sizeof(fy_label_t);
    *out = labels;
    *nout = n;
    *pos = q;
    return FY_OK;
}

/* Sorted index and duplicate check for labels just parsed. */
static int index_labels(om_t *p, const char *at, fy_label_t *l, uint32_t n, uint32_t **sorted)
{
    uint32_t *idx = fy_arena_alloc(p->arena, (size_t)n * sizeof(uint32_t) + 1);
    if (idx == NULL)
        return om_nomem(p, at);
    sort_labels(l, idx, n);
    for (uint32_t i = 1; i < n; i++) {
        if (fy_str_eq(l[idx[i - 1]].name, l[idx[i]].name))
            return om_fail(p, at, "duplicate label name %q", l[idx[i]].name);
    }
    *sorted = idx;
    return FY_OK;
}

static uint64_t labels_hash(const om_t *p, const fy_label_t *l, uint32_t n)
{
    uint64_t h = 0x243f6a8885a308d3ull;
    for (uint32_t i = 0; i < n; i++)
        h += mix64(hash_bytes(p->seed, l[i].name.ptr, l[i].name.len) * 31 +
                   hash_bytes(p->seed ^ 0x5bd1e995u, l[i].value.ptr, l[i].value.len));
    return mix64(h + n);
}

static int labels_equal(const fy_label_t *a, const uint32_t *as, const fy_label_t *b, const uint32_t *bs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const fy_label_t *x = &a[as[i]], *y = &b[bs[i]];
        if (!fy_str_eq(x->name, y->name) || !fy_str_eq(x->value, y->value))
            return 0;
    }
    return 1;
}

/* While parsing, a series keeps its sorted index and label hash in pb_histogram (always empty for OpenMetrics);
 * finish() clears them. */
static inline const uint32_t *series_sorted(const fy_series_t *s)
{
    return (const uint32_t *)(const void *)s->pb_histogram.ptr;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Families */

/* Which sample kind `name` is in family f, or -1 if it is none of f's sample names. */
static int sample_kind(const fam_t *f, fy_str_t name)
{
    static const uint8_t kinds[][5] = {
        [OM_UNKNOWN] = {S_VALUE, 0xFF},
        [OM_GAUGE] = {S_VALUE, 0xFF},
        [OM_COUNTER] = {S_TOTAL, S_CREATED, 0xFF},
        [OM_STATESET] = {S_VALUE, 0xFF},
        [OM_INFO] = {S_INFO, 0xFF},
        [OM_HISTOGRAM] = {S_BUCKET, S_COUNT, S_SUM, S_CREATED, 0xFF},
        [OM_GAUGEHISTOGRAM] = {S_BUCKET, S_COUNT, S_SUM, 0xFF},
        [OM_SUMMARY] = {S_QUANTILE, S_COUNT, S_SUM, S_CREATED, 0xFF},
    };
    if (name.len < f->name.len || memcmp(name.ptr, f->name.ptr, f->name.len) != 0)
        return -1;
    fy_str_t suffix = fy_str(name.ptr + f->name.len, name.len - f->name.len);
    for (const uint8_t *k = kinds[f->type]; *k != 0xFF; k++) {
        const char *sfx = sample_suffix[*k];
        if (f->type == OM_GAUGEHISTOGRAM && *k == S_COUNT)
            sfx = "_gcount";
        else if (f->type == OM_GAUGEHISTOGRAM && *k == S_SUM)
            sfx = "_gsum";
        if (fy_str_eq_mem(suffix, sfx, strlen(sfx)))
            return *k;
    }
    return -1;
}

static fam_t *new_family(om_t *p, fy_str_t name)
{
    if (p->nfams == p->maxfams)
        return NULL;
    fam_t *f = &p->fams[p->nfams];
    memset(f, 0, sizeof(*f));
    f->name = name;
    f->type = OM_UNKNOWN;
    f->first_series = p->nseries;
    f->first_created = p->ncreated;
    p->cur_fam = (int)p->nfams++;
    memset(&p->cur, 0, sizeof(p->cur));
    return f;
}

/* Checks the series being filled and writes its values; called when another series, family or the end begins. */
static int close_series(om_t *p, const char *at)
{
    cur_t *c = &p->cur;
    if (!c->active)
        return FY_OK;
    c->active = 0;
    fam_t *f = &p->fams[p->cur_fam];
    fy_series_t *s = &p->series[p->nseries - 1];
    switch (f->type) {
    case OM_COUNTER:
        if (!(c->seen & (1u << S_TOTAL)))
            return om_fail(p, at, "counter %q has a series without a _total sample", f->name);
        break;
    case OM_HISTOGRAM:
    case OM_GAUGEHISTOGRAM:
        if (c->nbuckets == 0 || !isinf(c->last_le))
            return om_fail(p, at, "%s %q has a series without a +Inf bucket", om_type_names[f->type], f->name);
        if (!(c->seen & (1u << S_COUNT)) != !(c->seen & (1u << S_SUM)))
            return om_fail(p, at, "%s %q has a series with only one of %s and %s", om_type_names[f->type], f->name,
                           f->type == OM_HISTOGRAM ? "_count" : "_gcount", f->type == OM_HISTOGRAM ? "_sum" : "_gsum");
        if ((c->seen & (1u << S_COUNT)) && c->count != c->last_bucket)
            return om_fail(p, at, "%s %q has a series whose count differs from its +Inf bucket", om_type_names[f->type], f->name);
        if (f->type == OM_HISTOGRAM && c->neg_le && (c->seen & (1u << S_SUM)))
            return om_fail(p, at, "histogram %q has a series with negative buckets and a _sum", f->name);
        s->count = c->last_bucket;
        s->value = c->sum;
        break;
    case OM_SUMMARY:
        s->count = c->count;
        s->value = c->sum;
        break;
    default:
        break;
    }
    if (c->seen & (1u << S_CREATED)) {
        assert(p->ncreated < p->maxcreated);
        p->created[p->ncreated].series = p->nseries - 1;
        p->created[p->ncreated].value = c->created;
        p->ncreated++;
        f->ncreated++;
    }
    return FY_OK;
}

/* A HELP, TYPE or UNIT line for `name`: the current family if it has no samples yet, else a new one. */
static int descriptor_family(om_t *p, const char *at, fy_str_t name, const char *what, fam_t **out)
{
    if (p->cur_fam >= 0 && fy_str_eq(p->fams[p->cur_fam].name, name)) {
        fam_t *f = &p->fams[p->cur_fam];
        if (f->nseries > 0)
            return om_fail(p, at, "%s line for metric family %q after its samples", what, name);
        *out = f;
        return FY_OK;
    }
    int rc = close_series(p, at);
    if (rc != FY_OK)
        return rc;
    uint64_t h = hash_bytes(p->seed, name.ptr, name.len);
    name_t *nm = name_find(p, name, h);
    if (nm != NULL)
        return om_fail(p, at,
                       "metric family %q clashes with the names of metric family %q (families must not be "
                       "interleaved or repeated)",
                       name, p->fams[nm->fam_flags & NAME_FAM_MASK].name);
    fam_t *f = new_family(p, name);
    if (f == NULL || name_add(p, name, h, NAME_FAMILY | (uint32_t)p->cur_fam) == NULL)
        return om_nomem(p, at);
    *out = f;
    return FY_OK;
}

static int parse_descriptor(om_t *p, const char *s, const char *e)
{
    /* s points after "# " */
    static const char *const kw[] = {"TYPE", "HELP", "UNIT"};
    int k = -1;
    for (int i = 0; i < 3; i++) {
        if (e - s >= 5 && memcmp(s, kw[i], 4) == 0 && s[4] == ' ')
            k = i;
    }
    if (k < 0)
        return om_fail(p, s - 2, "invalid comment line %q: only # TYPE, # HELP, # UNIT and # EOF are allowed",
                       fy_str(s - 2, (size_t)(e - s + 2)));
    const char *q = s + 5;
    size_t nl = scan_metric_name(q, e);
    fy_str_t name = fy_str(q, nl);
    if (nl == 0)
        return om_fail(p, q, "invalid metric name in %s line: %q", kw[k], word_at(q, e));
    q += nl;
    fy_str_t rest = fy_str(q, 0);
    if (q < e) {
        if (*q != ' ')
            return om_fail(p, q, "invalid metric name in %s line: %q", kw[k], word_at(name.ptr, e));
        rest = fy_str(q + 1, (size_t)(e - q - 1));
    }
    fam_t *f = NULL;
    int rc = descriptor_family(p, s - 2, name, kw[k], &f);
    if (rc != FY_OK)
        return rc;
    switch (k) {
    case 0: {
        if (f->has_type)
            return om_fail(p, s - 2, "second TYPE line for metric family %q", name);
        int t = -1;
        for (int i = 0; i < 8; i++) {
            if (fy_str_eq_mem(rest, om_type_names[i], strlen(om_type_names[i])))
                t = i;
        }
        if (t < 0)
            return om_fail(p, rest.ptr, "invalid metric type %q", rest);
        f->type = (uint8_t)t;
        f->has_type = 1;
        if (f->has_unit && f->unit.len && (t == OM_INFO || t == OM_STATESET))
            return om_fail(p, s - 2, "%s %q must not have a unit", om_type_names[t], name);
        break;
    }
    case 1: {
        if (f->has_help)
            return om_fail(p, s - 2, "second HELP line for metric family %q", name);
        int esc, bad;
        scan_escaped(rest.ptr, rest.ptr + rest.len, '\n', &esc, &bad);
        if (bad == 1)
            return om_fail(p, rest.ptr, "HELP text %q ends with a lone backslash", rest);
        if (bad == 2)
            return om_fail(p, rest.ptr, "HELP text %q is not valid UTF-8", rest);
        f->has_help = 1;
        f->help = rest;
        f->help_esc = esc ? FY_ESC_OM : FY_ESC_NONE;
        break;
    }
    default: {
        if (f->has_unit)
            return om_fail(p, s - 2, "second UNIT line for metric family %q", name);
        for (size_t i = 0; i < rest.len; i++) {
            if (!is_name_char((unsigned char)rest.ptr[i]))
                return om_fail(p, rest.ptr, "invalid unit %q", rest);
        }
        if (rest.len > 0 && (rest.len + 1 > name.len || name.ptr[name.len - rest.len - 1] != '_' ||
                             memcmp(name.ptr + name.len - rest.len, rest.ptr, rest.len) != 0))
            return om_fail(p, rest.ptr, "unit %q is not a suffix of metric family %q", rest, name);
        if (rest.len > 0 && (f->type == OM_INFO || f->type == OM_STATESET))
            return om_fail(p, s - 2, "%s %q must not have a unit", om_type_names[f->type], name);
        f->has_unit = 1;
        f->unit = rest;
        break;
    }
    }
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Samples */

/* Resolves the family of sample `name` and its kind, starting a new unknown family where the name allows. */
static int sample_family(om_t *p, const char *at, fy_str_t name, fam_t **out, int *kind)
{
    uint64_t h = hash_bytes(p->seed, name.ptr, name.len);
    if (p->cur_fam >= 0) {
        fam_t *f = &p->fams[p->cur_fam];
        int k = sample_kind(f, name);
        if (k >= 0) {
            name_t *nm = name_find(p, name, h);
            if (nm != NULL && (nm->fam_flags & NAME_FAM_MASK) != (uint32_t)p->cur_fam)
                return om_fail(p, at, "sample %q of metric family %q clashes with metric family %q", name, f->name,
                               p->fams[nm->fam_flags & NAME_FAM_MASK].name);
            if (nm == NULL && name_add(p, name, h, NAME_SAMPLE | (uint32_t)p->cur_fam) == NULL)
                return om_nomem(p, at);
            *out = f;
            *kind = k;
            return FY_OK;
        }
    }
    name_t *nm = name_find(p, name, h);
    if (nm != NULL) {
        fam_t *g = &p->fams[nm->fam_flags & NAME_FAM_MASK];
        if ((int)(nm->fam_flags & NAME_FAM_MASK) == p->cur_fam)
            return om_fail(p, at, "sample name %q does not fit %s metric family %q", name, om_type_names[g->type], g->name);
        return om_fail(p, at,
                       "sample %q belongs to metric family %q, which is already closed (families must not be "
                       "interleaved)",
                       name, g->name);
    }
    int rc = close_series(p, at);
    if (rc != FY_OK)
        return rc;
    fam_t *f = new_family(p, name);
    if (f == NULL || name_add(p, name, h, NAME_FAMILY | NAME_SAMPLE | (uint32_t)p->cur_fam) == NULL)
        return om_nomem(p, at);
    *out = f;
    *kind = S_VALUE;
    return FY_OK;
}

/* Removes label `name` from the parsed line labels (and its sorted index), returning its value. */
static int take_label(sample_t *sm, const char *name, size_t n, fy_str_t *value)
{
    for (uint32_t i = 0; i < sm->nlabels; i++) {
        if (fy_str_eq_mem(sm->labels[i].name, name, n)) {
            *value = sm->labels[i].value;
            memmove(&sm->labels[i], &sm->labels[i + 1], (sm->nlabels - i - 1) * sizeof(fy_label_t));
            uint32_t o = 0;
            for (uint32_t j = 0; j < sm->nlabels; j++) {
                if (sm->sorted[j] == i)
                    continue;
                sm->sorted[o++] = sm->sorted[j] > i ? sm->sorted[j] - 1 : sm->sorted[j];
            }
            sm->nlabels--;
            return 1;
        }
    }
    return 0;
}

static int has_label(const sample_t *sm, fy_str_t name)
{
    for (uint32_t i = 0; i < sm->nlabels; i++) {
        if (fy_str_eq(sm->labels[i].name, name))
            return 1;
    }
    return 0;
}

/* A non-negative integral float that fits uint64 (bucket and count values). */
static int as_count(double v, uint64_t *out)
{
    if (!(v >= 0 && v < 18446744073709551616.0) || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_exemplar(om_t *p, const char *q, const char *e)
{
    /* q points at '{' after " # " */
    size_t mark = p->arena->used, runes;
    fy_label_t *l;
    uint32_t n, *sorted;
    int rc = parse_labels(p, &q, e, fy_str("exemplar", 8), &l, &n, &runes);
    if (rc != FY_OK)
        return rc;
    if ((rc = index_labels(p, q, l, n, &sorted)) != FY_OK)
        return rc;
    p->arena->used = mark; /* exemplars are validated and dropped */
    if (runes > EXEMPLAR_MAX_RUNES)
        return om_fail(p, q, "exemplar label set is longer than 128 characters");
    double v;
    if (q >= e || *q != ' ')
        return om_fail(p, q, "expected ' ' and a value after exemplar labels, got %q", tok_at(q, e));
    q++;
    fy_str_t vt = word_at(q, e);
    if (fy_parse_float(vt.ptr, vt.len, &v) != 0)
        return om_fail(p, q, "invalid exemplar value %q", vt);
    q += vt.len;
    if (q < e) {
        q++; /* the space */
        fy_str_t tt = word_at(q, e);
        int64_t ms;
        if (parse_timestamp(tt, &ms) != 0)
            return om_fail(p, q, "invalid exemplar timestamp %q", tt);
        q += tt.len;
        if (q < e)
            return om_fail(p, q, "unexpected text %q after exemplar timestamp", fy_str(q, (size_t)(e - q)));
    }
    return FY_OK;
}

static int apply_sample(om_t *p, fam_t *f, int kind, sample_t *sm, const char *at);

static int parse_sample(om_t *p, const char *s, const char *e)
{
    sample_t sm;
    memset(&sm, 0, sizeof(sm));
    size_t nl = scan_metric_name(s, e);
    if (nl == 0)
        return om_fail(p, s, "expected a metric name or '#' at the start of a line, got %q", tok_at(s, e));
    sm.name = fy_str(s, nl);
    fam_t *f = NULL;
    int kind = S_VALUE, rc;
    if ((rc = sample_family(p, s, sm.name, &f, &kind)) != FY_OK)
        return rc;
    const char *q = s + nl;
    size_t mark = p->arena->used;
    if (q < e && *q == '{') {
        size_t runes;
        if ((rc = parse_labels(p, &q, e, sm.name, &sm.labels, &sm.nlabels, &runes)) != FY_OK)
            return rc;
    }
    const char *series_end = q;
    if ((rc = index_labels(p, s, sm.labels, sm.nlabels, &sm.sorted)) != FY_OK)
        return rc;
    if (q >= e || *q != ' ')
        return om_fail(p, q, "expected ' ' and a value after %q, got %q", sm.name, tok_at(q, e));
    q++;
    sm.value_tok = word_at(q, e);
    if (fy_parse_float(sm.value_tok.ptr, sm.value_tok.len, &sm.value) != 0)
        return om_fail(p, q, "invalid value %q for %q", sm.value_tok, sm.name);
    q += sm.value_tok.len;
    if (q < e && q + 1 < e && q[1] != '#') {
        q++;
        fy_str_t tt = word_at(q, e);
        rc = parse_timestamp(tt, &sm.ts_ms);
        if (rc == -2)
            return om_fail(p, q, "timestamp %q is out of range", tt);
        if (rc != 0)
            return om_fail(p, q, "invalid timestamp %q", tt);
        sm.has_ts = 1;
        q += tt.len;
    }
    if (q < e) {
        if (e - q < 4 || memcmp(q, " # {", 4) != 0)
            return om_fail(p, q, "unexpected text %q after sample (expected a timestamp or \" # {\" and an exemplar)",
                           fy_str(q, (size_t)(e - q)));
        sm.has_exemplar = 1;
        sm.exemplar_at = q;
    }
    /* le / quantile / state labels. */
    int is_hist = f->type == OM_HISTOGRAM || f->type == OM_GAUGEHISTOGRAM;
    if (kind == S_BUCKET) {
        if (!take_label(&sm, FY_STRLIT("le"), &sm.special))
            return om_fail(p, s, "bucket sample %q has no le label", sm.name);
        sm.has_special = 1;
    } else if (is_hist && has_label(&sm, fy_str("le", 2))) {
        return om_fail(p, s, "sample %q must not have an le label", sm.name);
    }
    if (kind == S_QUANTILE) {
        if (!take_label(&sm, FY_STRLIT("quantile"), &sm.special))
            return om_fail(p, s, "summary sample %q has no quantile label", sm.name);
        sm.has_special = 1;
    } else if (f->type == OM_SUMMARY && has_label(&sm, fy_str("quantile", 8))) {
        return om_fail(p, s, "sample %q must not have a quantile label", sm.name);
    }
    if (f->type == OM_STATESET && !has_label(&sm, f->name))
        return om_fail(p, s, "stateset sample %q has no label named %q", sm.name, f->name);
    if (sm.has_exemplar) {
        if (kind != S_TOTAL && kind != S_BUCKET)
            return om_fail(p, sm.exemplar_at,
                           "exemplar on sample %q: only counter _total and histogram _bucket "
                           "samples may have one",
                           sm.name);
        if ((rc = parse_exemplar(p, sm.exemplar_at + 3, e)) != FY_OK)
            return rc;
    }
    /* The family is part of the key: every family may have a series with the same labels (often none). */
    sm.hash = labels_hash(p, sm.labels, sm.nlabels) ^ mix64((uint64_t)p->cur_fam + p->seed);

    /* Same series as the one being filled, or a new one. */
    cur_t *c = &p->cur;
    if (c->active) {
        const fy_series_t *cs = &p->series[p->nseries - 1];
        if (cs->nlabels == sm.nlabels && (uint64_t)cs->pb_histogram.len == sm.hash &&
            labels_equal(cs->labels, series_sorted(cs), sm.labels, sm.sorted, sm.nlabels)) {
            p->arena->used = mark; /* the line's labels are not needed */
            return apply_sample(p, f, kind, &sm, s);
        }
        if ((rc = close_series(p, s)) != FY_OK)
            return rc;
    }
    table_t *t = &p->series_tab;
    for (uint32_t j = (uint32_t)sm.hash & t->mask; t->s[j].val != 0; j = (j + 1) & t->mask) {
        /* The current family's series are the newest ones. */
        const fy_series_t *o = &p->series[t->s[j].val - 1];
        if (t->s[j].hash == (uint32_t)sm.hash && t->s[j].val - 1 >= f->first_series && o->nlabels == sm.nlabels &&
            (uint64_t)o->pb_histogram.len == sm.hash && labels_equal(o->labels, series_sorted(o), sm.labels, sm.sorted, sm.nlabels))
            return om_fail(p, s,
                           "series %q appears twice in metric family %q (series must not repeat or be "
                           "interleaved)",
                           fy_str(s, (size_t)(series_end - s)), f->name);
    }
    if (p->nseries == p->maxseries || tab_reserve(p, t) != 0)
        return om_nomem(p, s);
    fy_series_t *ns = &p->series[p->nseries++];
    memset(ns, 0, sizeof(*ns));
    ns->labels = sm.labels;
    ns->nlabels = sm.nlabels;
    ns->points = p->points + p->npoints;
    ns->pb_histogram = fy_str((const char *)sm.sorted, (size_t)sm.hash);
    tab_put(t, sm.hash, p->nseries);
    f->nseries++;
    memset(c, 0, sizeof(*c));
    c->active = 1;
    return apply_sample(p, f, kind, &sm, s);
}

static int apply_sample(om_t *p, fam_t *f, int kind, sample_t *sm, const char *at)
{
    cur_t *c = &p->cur;
    fy_series_t *s = &p->series[p->nseries - 1];
    double v = sm->value;
    const char *tn = om_type_names[f->type];
    if (kind != S_BUCKET && kind != S_QUANTILE && (c->seen & (1u << kind)))
        return om_fail(p, at, "duplicate sample %q for one series (a series takes one MetricPoint)", sm->name);
    if (c->nsamples++ == 0) {
        c->has_ts = sm->has_ts;
        c->ts_ms = sm->ts_ms;
        s->has_timestamp = sm->has_ts;
        s->timestamp_ms = sm->ts_ms;
    } else if (c->has_ts != sm->has_ts || c->ts_ms != sm->ts_ms) {
        return om_fail(p, at,
                       "sample %q has another timestamp than the earlier samples of its series (a series "
                       "takes one MetricPoint)",
                       sm->name);
    }
    switch (kind) {
    case S_VALUE:
        if (f->type == OM_STATESET && v != 0 && v != 1)
            return om_fail(p, at, "stateset %q value must be 0 or 1, got %q", f->name, sm->value_tok);
        s->value = v;
        break;
    case S_INFO:
        if (v != 1)
            return om_fail(p, at, "info %q value must be 1, got %q", f->name, sm->value_tok);
        if (f->sample_name == NULL)
            f->sample_name = sm->name.ptr;
        s->value = v;
        break;
    case S_TOTAL:
        if (!(v >= 0))
            return om_fail(p, at, "counter %q total must be a non-negative number, got %q", f->name, sm->value_tok);
        if (f->sample_name == NULL)
            f->sample_name = sm->name.ptr;
        s->value = v;
        break;
    case S_CREATED:
        if (f->created_name == NULL)
            f->created_name = sm->name.ptr;
        c->created = v;
        break;
    case S_COUNT:
        if (as_count(v, &c->count) != 0)
            return om_fail(p, at, "%s %q count must be a non-negative integer, got %q", tn, f->name, sm->value_tok);
        break;
    case S_SUM:
        if (isnan(v) || (f->type != OM_GAUGEHISTOGRAM && v < 0))
            return om_fail(p, at, "%s %q sum must be a %snumber, got %q", tn, f->name,
                           f->type == OM_GAUGEHISTOGRAM ? "" : "non-negative ", sm->value_tok);
        c->sum = v;
        break;
    case S_BUCKET: {
        double le;
        uint64_t n;
        if (fy_parse_float(sm->special.ptr, sm->special.len, &le) != 0 || isnan(le))
            return om_fail(p, at, "invalid le value %q", sm->special);
        if (c->nbuckets > 0 && !(le > c->last_le))
            return om_fail(p, at, "%s %q buckets must be sorted by increasing le, got le=%q after %s", tn, f->name, sm->special,
                           isinf(c->last_le) ? "+Inf" : "a larger or equal bound");
        if (as_count(v, &n) != 0)
            return om_fail(p, at, "%s %q bucket count must be a non-negative integer, got %q", tn, f->name, sm->value_tok);
        if (c->nbuckets > 0 && n < c->last_bucket)
            return om_fail(p, at, "%s %q bucket counts must not decrease, got %q for le=%q", tn, f->name, sm->value_tok,
                           sm->special);
        if (p->npoints == p->maxpoints)
            return om_nomem(p, at);
        fy_point_t *pt = &p->points[p->npoints++];
        pt->key = le;
        pt->value = 0;
        pt->count = n;
        s->npoints++;
        c->nbuckets++;
        c->last_le = le;
        c->last_bucket = n;
        if (le < 0)
            c->neg_le = 1;
        break;
    }
    case S_QUANTILE: {
        double q;
        if (fy_parse_float(sm->special.ptr, sm->special.len, &q) != 0 || !(q >= 0 && q <= 1))
            return om_fail(p, at, "invalid quantile %q (must be a number from 0 to 1)", sm->special);
        if (v < 0)
            return om_fail(p, at, "summary %q quantile value must not be negative, got %q", f->name, sm->value_tok);
        /* Quantiles may come in any order; a table finds repeats without a quadratic scan. */
        table_t *t = &p->quantile_tab;
        uint64_t bits;
        double qk = q == 0 ? 0 : q; /* -0 and 0 are one quantile */
        memcpy(&bits, &qk, sizeof(bits));
        uint64_t h = mix64(bits ^ ((uint64_t)p->nseries * 0x9e3779b97f4a7c15ull) ^ p->seed);
        for (uint32_t j = (uint32_t)h & t->mask; t->s[j].val != 0; j = (j + 1) & t->mask) {
            /* The current series' points are the newest ones. */
            if (t->s[j].hash == (uint32_t)h && t->s[j].val - 1 >= (uint32_t)(s->points - p->points) &&
                p->points[t->s[j].val - 1].key == qk)
                return om_fail(p, at, "duplicate quantile %q in one series of summary %q", sm->special, f->name);
        }
        if (p->npoints == p->maxpoints || tab_reserve(p, t) != 0)
            return om_nomem(p, at);
        fy_point_t *pt = &p->points[p->npoints++];
        pt->key = qk;
        pt->value = v;
        pt->count = 0;
        tab_put(t, h, p->npoints);
        s->npoints++;
        break;
    }
    default:
        return om_fail(p, at, "internal: unknown sample kind");
    }
    if (kind != S_BUCKET && kind != S_QUANTILE)
        c->seen |= 1u << kind;
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Output */

static int finish(om_t *p, fy_body_t *body)
{
    uint32_t nout = 0, nextra = 0;
    for (uint32_t i = 0; i < p->nfams; i++) {
        if (p->fams[i].nseries == 0)
            continue;
        nout += 1 + (p->fams[i].ncreated > 0);
        nextra += p->fams[i].ncreated;
    }
    fy_family_t *out = fy_arena_alloc(p->arena, (size_t)nout * sizeof(fy_family_t) + 1);
    fy_series_t *extra = fy_arena_alloc(p->arena, (size_t)nextra * sizeof(fy_series_t) + 1);
    if (out == NULL || extra == NULL)
        return om_nomem(p, p->buf + p->len);
    for (uint32_t i = 0; i < p->nseries; i++)
        p->series[i].pb_histogram = fy_str(NULL, 0);
    uint32_t o = 0, total = 0;
    for (uint32_t i = 0; i < p->nfams; i++) {
        const fam_t *f = &p->fams[i];
        if (f->nseries == 0)
            continue;
        fy_family_t *of = &out[o++];
        memset(of, 0, sizeof(*of));
        of->name = f->name;
        if (f->has_help && f->help.len > 0) {
            of->help = f->help;
            of->has_help = 1;
            of->help_esc = f->help_esc;
        }
        if (f->has_unit)
            of->unit = f->unit;
        of->series = &p->series[f->first_series];
        of->nseries = f->nseries;
        total += f->nseries;
        switch (f->type) {
        case OM_COUNTER:
            of->type = FY_TYPE_COUNTER;
            of->name = fy_str(f->sample_name, f->name.len + 6);
            break;
        case OM_INFO:
            of->type = FY_TYPE_GAUGE;
            of->name = fy_str(f->sample_name, f->name.len + 5);
            break;
        case OM_GAUGE:
        case OM_STATESET:
            of->type = FY_TYPE_GAUGE;
            break;
        case OM_HISTOGRAM:
            of->type = FY_TYPE_HISTOGRAM;
            break;
        case OM_GAUGEHISTOGRAM:
            of->type = FY_TYPE_GAUGE_HISTOGRAM;
            break;
        case OM_SUMMARY:
            of->type = FY_TYPE_SUMMARY;
            break;
        default:
            of->type = FY_TYPE_UNTYPED;
            break;
        }
        if (f->ncreated == 0)
            continue;
        fy_family_t *cf = &out[o++];
        memset(cf, 0, sizeof(*cf));
        cf->name = fy_str(f->created_name, f->name.len + 8);
        cf->type = FY_TYPE_GAUGE;
        cf->series = extra;
        cf->nseries = f->ncreated;
        for (uint32_t k = 0; k < f->ncreated; k++) {
            const created_t *cr = &p->created[f->first_created + k];
            const fy_series_t *src = &p->series[cr->series];
            memset(extra, 0, sizeof(*extra));
            extra->labels = src->labels;
            extra->nlabels = src->nlabels;
            extra->value = cr->value;
            extra->timestamp_ms = src->timestamp_ms;
            extra->has_timestamp = src->has_timestamp;
            extra++;
        }
        total += f->ncreated;
    }
    assert(o == nout);
    body->families = out;
    body->nfamilies = nout;
    body->nseries = total;
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */

static void *alloc_array(fy_arena_t *a, size_t n, size_t size)
{
    if (n > SIZE_MAX / size)
        return NULL;
    return fy_arena_alloc(a, n * size);
}

int fy_parse_openmetrics(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err)
{
    om_t p;
    int rc;
    body->families = NULL;
    body->nfamilies = 0;
    body->nseries = 0;
    fy__perr_clear(err);
    memset(&p, 0, sizeof(p));
    p.buf = buf;
    p.len = len;
    p.arena = arena;
    p.err = err;
    p.line = 1;
    p.cur_fam = -1;
    p.seed = mix64((uint64_t)(uintptr_t)arena ^ ((uint64_t)(uintptr_t)&p << 17) ^ (uint64_t)len);

    /* Bounds from the shortest lines: a sample "a 1\n" (4 bytes) starts at most one family and one series and
     * names one sample; a bucket or quantile line is at least 17 bytes ("a{le=\"1\"} 1\n" and longer names); a
     * _created sample at least 12. */
    size_t lines = len / 4 + 2;
    if (lines > NAME_FAM_MASK)
        return fy__perr(err, FY_PERR_NOMEM, NULL, 0, 0);
    p.maxfams = p.maxseries = p.maxnames = (uint32_t)lines;
    p.maxpoints = (uint32_t)(len / 12 + 2);
    p.maxcreated = (uint32_t)(len / 12 + 2);
    p.fams = alloc_array(arena, p.maxfams, sizeof(fam_t));
    p.series = alloc_array(arena, p.maxseries, sizeof(fy_series_t));
    p.names = alloc_array(arena, p.maxnames, sizeof(name_t));
    p.points = alloc_array(arena, p.maxpoints, sizeof(fy_point_t));
    p.created = alloc_array(arena, p.maxcreated, sizeof(created_t));
    if (p.fams == NULL || p.series == NULL || p.names == NULL || p.points == NULL || p.created == NULL ||
        tab_init(&p, &p.name_tab, 64) != 0 || tab_init(&p, &p.series_tab, 64) != 0 || tab_init(&p, &p.quantile_tab, 16) != 0)
        return fy__perr(err, FY_PERR_NOMEM, NULL, 0, 0);

    if (len == 0) /* buf may be NULL: no pointer arithmetic on it */
        return fy__perr(err, FY_PERR_OM_ERROR, FY_OM_PREFIX, 1, 0, "data does not end with # EOF");
    size_t pos = 0;
    for (;;) {
        if (pos >= len)
            return om_fail(&p, buf + len, "data does not end with # EOF");
        const char *s = buf + pos;
        const char *nl = memchr(s, '\n', len - pos);
        const char *e = nl != NULL ? nl : buf + len;
        if (e - s == 5 && memcmp(s, "# EOF", 5) == 0) {
            if (nl != NULL && (size_t)(nl + 1 - buf) != len) {
                p.line++;
                return om_fail(&p, nl + 1, "unexpected data after # EOF");
            }
            break;
        }
        if (nl == NULL)
            return om_fail(&p, buf + len, "data does not end with # EOF");
        if (s < e && *s == '#') {
            if (e - s < 2 || s[1] != ' ')
                return om_fail(&p, s, "invalid comment line %q: only # TYPE, # HELP, # UNIT and # EOF are allowed",
                               fy_str(s, (size_t)(e - s)));
            rc = parse_descriptor(&p, s + 2, e);
        } else {
            rc = parse_sample(&p, s, e);
        }
        if (rc != FY_OK)
            return rc;
        pos = (size_t)(e - buf) + 1;
        p.line++;
    }
    if ((rc = close_series(&p, buf + len)) != FY_OK)
        return rc;
    return finish(&p, body);
}
