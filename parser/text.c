/*
 * text.c: the text exposition format 0.0.4 parser (fy_parse_text), a re-implementation of prometheus/common expfmt's
 * TextParser v0.39.0 (the one Pushgateway 1.5.1 links): same accepted inputs, same messages, same line numbers.
 *
 * Shape: one pass over the body, line by line, writing straight into arena arrays (series, labels, points) in input
 * order, with two open-addressing tables for the lookups expfmt does through Go maps (metric name -> family, and
 * label set -> summary/histogram series). At the end the arrays are regrouped (stable counting sort) only if the
 * input interleaved families or series; for the usual exposition they already are contiguous and nothing moves.
 *
 * End of input. expfmt reads byte by byte and reports "unexpected end of input stream" wherever EOF cuts a line.
 * We parse everything up to the last '\n' with that '\n' as a sentinel (every scanning loop stops at '\n', so no
 * loop needs a bounds check), and parse an unterminated last line from a copy with a '\n' appended: whatever
 * decision expfmt would have taken on that virtual '\n' (or later) becomes the EOF error instead. See text_error().
 */
#include "fy_num.h"
#include "fy_parse.h"
#include "fy_parse_internal.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------- */
/* Character classes. */

enum {
    C_LNAME0 = 1,  /* [a-zA-Z_] */
    C_LNAME = 2,   /* [a-zA-Z0-9_] */
    C_MNAME0 = 4,  /* [a-zA-Z_:] */
    C_MNAME = 8,   /* [a-zA-Z0-9_:] */
    C_TOKEND = 16, /* ' ' '\t' '\n': ends readTokenUntilWhitespace */
    C_LVSTOP = 32, /* '"' '\\' '\n' and bytes >= 0x80: stop the label-value scan */
};

/* A constant table, so that concurrent first calls from several threads need no initialisation (and no race). */
#define CT_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '_')
#define CT(c)                                                                                                                      \
    (unsigned char)((CT_ALPHA(c) ? (C_LNAME0 | C_MNAME0 | C_LNAME | C_MNAME) : 0) |                                                \
                    (((c) >= '0' && (c) <= '9') ? (C_LNAME | C_MNAME) : 0) | ((c) == ':' ? (C_MNAME0 | C_MNAME) : 0) |             \
                    (((c) == ' ' || (c) == '\t' || (c) == '\n') ? C_TOKEND : 0) |                                                  \
                    (((c) == '"' || (c) == '\\' || (c) == '\n' || (c) >= 0x80) ? C_LVSTOP : 0))
#define CT4(c) CT(c), CT((c) + 1), CT((c) + 2), CT((c) + 3)
#define CT16(c) CT4(c), CT4((c) + 4), CT4((c) + 8), CT4((c) + 12)
#define CT64(c) CT16(c), CT16((c) + 16), CT16((c) + 32), CT16((c) + 48)
static const unsigned char ctab[256] = {CT64(0), CT64(64), CT64(128), CT64(192)};
#undef CT64
#undef CT16
#undef CT4
#undef CT
#undef CT_ALPHA

#define IS(c, cls) (ctab[(unsigned char)(c)] & (cls))
#define IS_BLANK(c) ((c) == ' ' || (c) == '\t')

/* ------------------------------------------------------------------------------------------------------------- */
/* Scanning. Each scan_* returns the first byte at or after p that ends a token of its class. The SSE2 part is only
 * a candidate finder (picohttpparser style): it skips 16-byte blocks whose bytes all certainly belong to the class,
 * and stops at the first block that holds a byte that may not; the table loop after it decides. It never looks at
 * a block that is not wholly before lim (the end of the region, lim[-1] == '\n'), so nothing past len is read.
 * FY_PARSER_SCALAR leaves only the table loops. */

#if defined(__SSE2__) && !defined(FY_PARSER_SCALAR)
#define TEXT_SSE2 1
#include <emmintrin.h>

/* Lanes of v in [lo, lo + n): shifting by 0x80 - lo maps the range onto [-128, -128 + n) (mod 256, a bijection). */
static inline __m128i in_range(__m128i v, unsigned char lo, unsigned char n)
{
    __m128i t = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - lo)));
    return _mm_cmplt_epi8(t, _mm_set1_epi8((char)(-128 + n)));
}

/* [a-zA-Z0-9_] lanes, plus ':' when colon. */
static inline unsigned name_mask(__m128i v, int colon)
{
    __m128i alpha = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26);
    __m128i digit = in_range(v, '0', colon ? 11 : 10); /* ':' directly follows '9' */
    __m128i under = _mm_cmpeq_epi8(v, _mm_set1_epi8('_'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), under));
}

static inline const char *skip_names(const char *p, const char *lim, int colon)
{
    while (lim - p >= 16) {
        unsigned m = ~name_mask(_mm_loadu_si128((const __m128i *)p), colon) & 0xffff;
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return p;
}
#endif

/* Metric name bytes [a-zA-Z0-9_:]. */
static inline const char *scan_mname(const char *p, const char *lim)
{
#ifdef TEXT_SSE2
    p = skip_names(p, lim, 1);
#else
    (void)lim;
#endif
    while (IS(*p, C_MNAME))
        p++;
    return p;
}

/* Label name bytes [a-zA-Z0-9_]. */
static inline const char *scan_lname(const char *p, const char *lim)
{
#ifdef TEXT_SSE2
    p = skip_names(p, lim, 0);
#else
    (void)lim;
#endif
    while (IS(*p, C_LNAME))
        p++;
    return p;
}

/* Up to the next '"', '\\', '\n' or byte >= 0x80 in a label value. */
static inline const char *scan_lvalue(const char *p, const char *lim)
{
#ifdef TEXT_SSE2
    while (lim - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(stop, v)); /* the sign bit flags bytes >= 0x80 */
        if (m != 0) {
            p += __builtin_ctz(m);
            break;
        }
        p += 16;
    }
#else
    (void)lim;
#endif
    while (!IS(*p, C_LVSTOP))
        p++;
    return p;
}

/* Up to the next ' ', '\t' or '\n' (readTokenUntilWhitespace). */
static inline const char *scan_token(const char *p, const char *lim)
{
#ifdef TEXT_SSE2
    while (lim - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m != 0) {
            p += __builtin_ctz(m);
            break;
        }
        p += 16;
    }
#else
    (void)lim;
#endif
    while (!IS(*p, C_TOKEND))
        p++;
    return p;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Hashing: names and label values are short; an 8-bytes-at-a-time multiply-mix is plenty and cheap. */

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

/* Equality of short byte strings without a libc call: names and label values are mostly under 64 bytes. */
static inline int mem_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            if (load64(a + i) != load64(b + i))
                return 0;
        }
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + n - 4, 4);
        memcpy(&y1, b + n - 4, 4);
        return x0 == y0 && x1 == y1;
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return 0;
    }
    return 1;
}

static inline int str_eq(fy_str_t a, fy_str_t b)
{
    return a.len == b.len && mem_eq(a.ptr, b.ptr, a.len);
}

static uint64_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        h = (h ^ load64(p)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ t) * 0x94d049bb133111ebULL;
    return mix64(h);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Parser state. */

enum { K_EXACT = 0, K_COUNT, K_SUM, K_BUCKET };

typedef struct {
    const char *ptr; /* metric name as written on the line */
    size_t len;
    uint32_t fam;  /* family it resolves to */
    uint8_t kind;  /* K_*: how the name relates to the family's name */
    uint8_t alias; /* 1: a suffixed name resolved to a summary/histogram, not a family of its own */
} name_ent_t;

typedef struct {
    uint32_t first_series, last_series; /* global series indices, for the contiguity check */
    uint8_t type_set;                   /* expfmt's "Type != nil": TYPE seen or a sample read */
} fam_work_t;

typedef struct {
    uint32_t fam;
    uint32_t last_pt; /* global point index, for the contiguity check */
    uint32_t pt_at;   /* layout(): write cursor when points interleave */
    uint64_t sig;     /* summaries/histograms: order-independent hash of the label set */
} series_work_t;

#define RECENT_N 4

typedef struct {
    const char *ptr;
    size_t len; /* 0: unused */
    uint32_t fam;
    uint8_t kind;
} recent_t;

typedef struct {
    fy_arena_t *arena;
    fy_parse_error_t *err;
    uint32_t line;

    /* Error positions: offsets are reported relative to the original input; in the copied last line, anything
     * decided at or after eof_at is expfmt's EOF. */
    const char *region; /* start of the region being parsed (input or the copy of the last line) */
    size_t region_off;  /* its offset in the input */
    const char *eof_at; /* first position that does not exist in the input */
    const char *lim;    /* end of the region; lim[-1] is '\n' */
    const char *eol;    /* set by a successful line parse: its '\n' */

    fy_family_t *fams;
    fam_work_t *famw;
    uint32_t nfams, maxfams;

    name_ent_t *names;
    uint32_t nnames;
    uint64_t *name_slots; /* hash << 32 | entry index + 1; 0 = empty. The hash here spares a visit to the entry on most
                           * probes that do not match. */
    uint32_t name_mask;

    fy_series_t *series;
    series_work_t *serw;
    uint32_t nseries, maxseries;
    uint32_t *ser_slots; /* summary/histogram series index + 1 */
    uint32_t ser_mask, ser_count;

    fy_label_t *labels;
    size_t nlabels, maxlabels;

    fy_point_t *points;
    uint32_t *pt_series;
    uint32_t npoints, maxpoints;

    uint32_t *dup_slots; /* per-line label-name set for lines with many labels */
    uint32_t dup_cap;

    uint8_t series_interleaved, points_interleaved;

    /* Fast path: the last few distinct metric names and what they resolved to, most recent first. Four cover a
     * histogram's X_bucket, X_sum, X_count and the X of its HELP/TYPE lines. */
    recent_t recent[RECENT_N];

    uint32_t last_hs; /* the summary/histogram series of the last such line + 1; 0 = none */

    uint8_t utf8;         /* FY_PARSE_UTF8_NAMES: quoted names; looked at only where a classic parse fails */
    uint32_t braced_line; /* utf8: the line whose metric name was the first item of its label set */
} ps_t;

#define DUP_LINEAR_MAX 16

static int text_eof(ps_t *ps, const char *pos)
{
    return fy__perr(ps->err, FY_PERR_EOF_IN_LINE, FY_TEXT_PREFIX, ps->line, ps->region_off + (size_t)(pos - ps->region));
}

/* Reports code at pos, the position of the byte expfmt had just read when it decided (its currentByte). */
#define TERR(ps, pos, code, ...)                                                                                                   \
    ((pos) >= (ps)->eof_at ? text_eof((ps), (ps)->eof_at)                                                                          \
                           : fy__perr((ps)->err, (code), FY_TEXT_PREFIX, (ps)->line,                                               \
                                      (ps)->region_off + (size_t)((pos) - (ps)->region), ##__VA_ARGS__))

/* A label value as expfmt holds it (escapes undone), for messages. Long values are cut; the message cuts them
 * anyway (FY_ERRMSG_MAX). */
typedef struct {
    char buf[FY_ERRMSG_MAX * 2];
    fy_str_t s;
} msgval_t;

static fy_str_t unescaped_for_msg(msgval_t *m, const char *p, size_t n, fy_esc_t esc)
{
    size_t take = n < sizeof(m->buf) ? n : sizeof(m->buf);
    /* Do not split an escape at the cut. */
    if (take < n && take > 0 && p[take - 1] == '\\')
        take--;
    m->s.ptr = m->buf;
    m->s.len = fy_unescape(fy_str(p, take), esc, m->buf);
    return m->s;
}

/* Raw bytes minus backslashes: what readTokenUntilNewline(false) collects (TYPE argument, text after a timestamp). */
static fy_str_t strip_backslashes(msgval_t *m, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(m->buf); i++) {
        if (p[i] != '\\')
            m->buf[o++] = p[i];
    }
    m->s.ptr = m->buf;
    m->s.len = o;
    return m->s;
}

static void *alloc_zero(fy_arena_t *a, size_t n)
{
    void *p = fy_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Name table: metric name -> (family, kind). Holds every family name and, once resolved, every suffixed name that
 * attached to a summary or histogram. A resolution never changes later (families are never removed and a family's
 * type is fixed once set), so caching the suffixed names is exact. */

static int names_grow(ps_t *ps)
{
    uint32_t nmask = ps->name_mask * 2 + 1;
    uint64_t *ns = alloc_zero(ps->arena, ((size_t)nmask + 1) * sizeof(*ns));
    if (ns == NULL)
        return FY_PERR_NOMEM;
    for (uint32_t i = 0; i <= ps->name_mask; i++) {
        uint64_t e = ps->name_slots[i];
        if (e == 0)
            continue;
        uint32_t j = (uint32_t)(e >> 32) & nmask;
        while (ns[j] != 0)
            j = (j + 1) & nmask;
        ns[j] = e;
    }
    ps->name_slots = ns;
    ps->name_mask = nmask;
    return FY_OK;
}

static name_ent_t *names_find(ps_t *ps, const char *name, size_t len, uint32_t h)
{
    for (uint32_t j = h & ps->name_mask;; j = (j + 1) & ps->name_mask) {
        uint64_t e = ps->name_slots[j];
        if (e == 0)
            return NULL;
        if ((uint32_t)(e >> 32) != h)
            continue;
        name_ent_t *ne = &ps->names[(uint32_t)e - 1];
        if (ne->len == len && mem_eq(ne->ptr, name, len))
            return ne;
    }
}

static int names_add(ps_t *ps, const char *name, size_t len, uint32_t h, uint32_t fam, uint8_t kind, uint8_t alias)
{
    if ((ps->nnames + 1) * 2 > ps->name_mask) {
        int rc = names_grow(ps);
        if (rc != FY_OK)
            return rc;
    }
    name_ent_t *ne = &ps->names[ps->nnames];
    ne->ptr = name;
    ne->len = len;
    ne->fam = fam;
    ne->kind = kind;
    ne->alias = alias;
    uint32_t j = h & ps->name_mask;
    while (ps->name_slots[j] != 0)
        j = (j + 1) & ps->name_mask;
    ps->name_slots[j] = (uint64_t)h << 32 | ++ps->nnames;
    return FY_OK;
}

static inline int is_hist_type(uint8_t t)
{
    return t == FY_TYPE_HISTOGRAM || t == FY_TYPE_GAUGE_HISTOGRAM;
}

static inline int ends_with(const char *s, size_t n, const char *suf, size_t sn)
{
    return n > sn && memcmp(s + n - sn, suf, sn) == 0;
}

/* A real family (not an alias) named base, if it has the wanted type class. */
static int find_typed_family(ps_t *ps, const char *base, size_t blen, int want_hist, uint32_t *fam)
{
    name_ent_t *ne = names_find(ps, base, blen, (uint32_t)hash_bytes(base, blen, 0));
    if (ne == NULL || ne->alias)
        return 0;
    uint8_t t = ps->fams[ne->fam].type;
    if (!ps->famw[ne->fam].type_set || (want_hist ? !is_hist_type(t) : t != FY_TYPE_SUMMARY))
        return 0;
    *fam = ne->fam;
    return 1;
}

/*
 * expfmt's setOrCreateCurrentMF: the family called name; else, for X_count/X_sum, X if X is a summary; else, for
 * X_count/X_sum/X_bucket, X if X is a histogram (gauge histograms count as histograms); else a new family.
 */
static int resolve_family(ps_t *ps, const char *name, size_t len, uint32_t *fam, uint8_t *kind)
{
    for (int i = 0; i < RECENT_N; i++) {
        recent_t r = ps->recent[i];
        if (r.len == len && mem_eq(name, r.ptr, len)) {
            for (int j = i; j > 0; j--)
                ps->recent[j] = ps->recent[j - 1];
            ps->recent[0] = r;
            *fam = r.fam;
            *kind = r.kind;
            return FY_OK;
        }
    }
    uint32_t h = (uint32_t)hash_bytes(name, len, 0);
    name_ent_t *ne = names_find(ps, name, len, h);
    uint32_t f;
    uint8_t k = K_EXACT;
    int rc;
    if (ne != NULL) {
        f = ne->fam;
        k = ne->kind;
    } else {
        int found = 0;
        size_t sl = ends_with(name, len, "_count", 6) ? len - 6 : ends_with(name, len, "_sum", 4) ? len - 4 : 0;
        if (sl != 0 && find_typed_family(ps, name, sl, 0, &f)) {
            k = sl == len - 6 ? K_COUNT : K_SUM;
            found = 1;
        }
        if (!found) {
            size_t hl = sl != 0 ? sl : ends_with(name, len, "_bucket", 7) ? len - 7 : 0;
            if (hl != 0 && find_typed_family(ps, name, hl, 1, &f)) {
                k = hl == len - 6 ? K_COUNT : hl == len - 4 ? K_SUM : K_BUCKET;
                found = 1;
            }
        }
        if (found) {
            if ((rc = names_add(ps, name, len, h, f, k, 1)) != FY_OK)
                return rc;
        } else {
            if (ps->nfams == ps->maxfams)
                return FY_PERR_NOMEM;
            f = ps->nfams++;
            fy_family_t *fm = &ps->fams[f];
            memset(fm, 0, sizeof(*fm));
            fm->name = fy_str(name, len);
            fm->type = FY_TYPE_UNTYPED;
            ps->famw[f].type_set = 0;
            if ((rc = names_add(ps, name, len, h, f, K_EXACT, 0)) != FY_OK)
                return rc;
        }
    }
    memmove(&ps->recent[1], &ps->recent[0], (RECENT_N - 1) * sizeof(ps->recent[0]));
    ps->recent[0] = (recent_t){name, len, f, k};
    *fam = f;
    *kind = k;
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Per-line duplicate label names. Lines with few labels compare linearly; longer ones use a set that is emptied
 * after the line (only the slots the line used), so the cost stays linear in the number of labels. */

static int dup_insert(ps_t *ps, const fy_label_t *ls, uint32_t i, uint32_t mask)
{
    uint32_t j = (uint32_t)hash_bytes(ls[i].name.ptr, ls[i].name.len, 1) & mask;
    for (;; j = (j + 1) & mask) {
        uint32_t e = ps->dup_slots[j];
        if (e == 0) {
            ps->dup_slots[j] = i + 1;
            return 0;
        }
        if (str_eq(ls[e - 1].name, ls[i].name))
            return 1;
    }
}

static const fy_label_t *dup_lookup(ps_t *ps, const fy_label_t *ls, fy_str_t name, uint32_t mask)
{
    uint32_t j = (uint32_t)hash_bytes(name.ptr, name.len, 1) & mask;
    for (;; j = (j + 1) & mask) {
        uint32_t e = ps->dup_slots[j];
        if (e == 0)
            return NULL;
        if (str_eq(ls[e - 1].name, name))
            return &ls[e - 1];
    }
}

/* Set mask for n labels: load <= 1/2. */
static uint32_t dup_mask_for(uint32_t n)
{
    uint32_t m = 63;
    while (m / 2 < n)
        m = m * 2 + 1;
    return m;
}

/* Makes sure the set can hold n labels with mask; rebuilds it from ls[0..n-1) when the mask grows. */
static int dup_prepare(ps_t *ps, const fy_label_t *ls, uint32_t n, uint32_t *mask)
{
    uint32_t want = dup_mask_for(n);
    if (want == *mask)
        return FY_OK;
    if (ps->dup_cap < want + 1) {
        uint32_t *s = alloc_zero(ps->arena, ((size_t)want + 1) * sizeof(*s));
        if (s == NULL)
            return FY_PERR_NOMEM;
        ps->dup_slots = s;
        ps->dup_cap = want + 1;
    } else if (*mask != 0) {
        memset(ps->dup_slots, 0, ((size_t)*mask + 1) * sizeof(uint32_t));
    }
    *mask = want;
    for (uint32_t i = 0; i + 1 < n; i++)
        dup_insert(ps, ls, i, want);
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Summary/histogram series lookup by (family, label set). */

static uint64_t label_hash(const fy_label_t *l)
{
    uint64_t hn = hash_bytes(l->name.ptr, l->name.len, 2);
    return mix64(hn ^ hash_bytes(l->value.ptr, l->value.len, hn));
}

/* Same label set (as sets: expfmt's signature ignores order). a has na labels, the line's b has nb, and when
 * dmask != 0 the line's labels are in the duplicate set. Raw values compare exactly like unescaped ones, because
 * every unescaped string has exactly one escaped spelling. */
static int same_label_set(ps_t *ps, const fy_label_t *a, uint32_t na, const fy_label_t *b, uint32_t nb, uint32_t dmask)
{
    if (na != nb)
        return 0;
    uint32_t i = 0;
    while (i < na && str_eq(a[i].name, b[i].name) && str_eq(a[i].value, b[i].value))
        i++;
    if (i == na)
        return 1;
    for (; i < na; i++) {
        const fy_label_t *m = NULL;
        if (dmask != 0) {
            m = dup_lookup(ps, b, a[i].name, dmask);
        } else {
            for (uint32_t j = 0; j < nb; j++) {
                if (str_eq(a[i].name, b[j].name)) {
                    m = &b[j];
                    break;
                }
            }
        }
        if (m == NULL || !str_eq(m->value, a[i].value))
            return 0;
    }
    return 1;
}

static int ser_grow(ps_t *ps)
{
    uint32_t nmask = ps->ser_mask * 2 + 1;
    uint32_t *ns = alloc_zero(ps->arena, ((size_t)nmask + 1) * sizeof(*ns));
    if (ns == NULL)
        return FY_PERR_NOMEM;
    for (uint32_t j = 0; j <= ps->ser_mask; j++) {
        uint32_t e = ps->ser_slots[j];
        if (e == 0)
            continue;
        uint32_t k = (uint32_t)ps->serw[e - 1].sig & nmask;
        while (ns[k] != 0)
            k = (k + 1) & nmask;
        ns[k] = e;
    }
    ps->ser_slots = ns;
    ps->ser_mask = nmask;
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Values. */

/* Go's uint64(f) on amd64 (the conversion expfmt applies to counts): values below 2^63 go through CVTTSD2SQ (which
 * gives 0x8000000000000000 when out of range, NaN included); others have 2^63 subtracted first and the top bit set
 * afterwards. So 7.9 -> 7, -1 -> 2^64-1, NaN/+Inf/-Inf/1e20 -> 2^63. */
static int64_t cvttsd2sq(double x)
{
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0)
        return (int64_t)x;
    return INT64_MIN;
}

static uint64_t go_float_to_uint64(double x)
{
    const double cut = 9223372036854775808.0;
    if (x < cut)
        return (uint64_t)cvttsd2sq(x);
    return (uint64_t)cvttsd2sq(x - cut) | 0x8000000000000000ULL;
}

/* expfmt's parseFloat: strconv.ParseFloat, but any 'p', 'P' or '_' is an error (fy_parse_float already refuses
 * them). */
static inline int parse_value(const char *s, size_t n, double *v)
{
    /* Plain digit strings below 10^15 (bucket counts, most counters) are exact as doubles: ParseFloat gives (double)w,
     * leading zeros included. Everything else goes to the full parser. */
    if (n - 1 < 15) {
        uint64_t w = 0;
        size_t i = 0;
        for (; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9)
                break;
            w = w * 10 + d;
        }
        if (i == n) {
            *v = (double)w;
            return 0;
        }
    }
    return fy_parse_float(s, n, v);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Lines. Every function here may read up to and including the line's '\n' (guaranteed to exist) and no further. */

static inline const char *skip_blanks(const char *p)
{
    while (IS_BLANK(*p))
        p++;
    return p;
}

/* strings.ToUpper(tok) == want (ASCII, upper case), for the type names. ToUpper also maps U+0131 (dotless i) to 'I'
 * and U+017F (long s) to 'S', so "hıstogram" is a histogram to expfmt. */
static int type_name_is(const char *t, size_t n, const char *want)
{
    size_t i = 0, w = 0;
    while (i < n && want[w] != '\0') {
        unsigned char c = (unsigned char)t[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 32);
        if (c == 0xC4 && i + 1 < n && (unsigned char)t[i + 1] == 0xB1) {
            c = 'I';
            i++;
        } else if (c == 0xC5 && i + 1 < n && (unsigned char)t[i + 1] == 0xBF) {
            c = 'S';
            i++;
        }
        if (c != (unsigned char)want[w])
            return 0;
        i++;
        w++;
    }
    return i == n && want[w] == '\0';
}

static int parse_type(const char *t, size_t n, uint8_t *type)
{
    static const struct {
        const char *name;
        uint8_t type;
    } types[] = {
        {"COUNTER", FY_TYPE_COUNTER}, {"GAUGE", FY_TYPE_GAUGE},         {"SUMMARY", FY_TYPE_SUMMARY},
        {"UNTYPED", FY_TYPE_UNTYPED}, {"HISTOGRAM", FY_TYPE_HISTOGRAM}, {"GAUGE_HISTOGRAM", FY_TYPE_GAUGE_HISTOGRAM},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (type_name_is(t, n, types[i].name)) {
            *type = types[i].type;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Quoted names (FY_PARSE_UTF8_NAMES). Only reached from places where the classic grammar has already failed, so the
 * option costs the classic parse nothing. */

/* What the quoted-name helpers return. By value, so that the callers' cursor and name never have their address
 * taken: that would keep them in memory throughout the hot parse_sample (measured: 3% more instructions). */
typedef struct {
    int rc;
    int braced;    /* sample_name_utf8: the name was the first item of the label set */
    const char *p; /* where parsing resumes */
    fy_str_t name;
} qname_t;

/* A quoted name; p at its opening '"'. Takes the label-value escapes (\\ \" \n), no raw newline, and must be valid
 * UTF-8. On FY_OK, name is the unescaped name (a slice of the region, or an arena copy when it held escapes: the
 * model's names carry no escape flag, and the escaped form of a string is unique, so comparing either form gives the
 * same answer) and p is just after the closing quote; the name may be empty, which the caller reports in its words.
 * `what` is "metric" or "label" for the messages. */
static __attribute__((noinline, cold)) qname_t quoted_name(ps_t *ps, const char *p, const char *what)
{
    qname_t q = {FY_OK, 0, NULL, {NULL, 0}};
    const char *s = ++p;
    uint8_t esc = FY_ESC_NONE;
    for (;; p++) { /* the line's '\n' is the sentinel */
        if (*p == '"')
            break;
        if (*p == '\n') {
            msgval_t m;
            q.rc = TERR(ps, p, FY_PERR_NAME_NEWLINE, what, unescaped_for_msg(&m, s, (size_t)(p - s), (fy_esc_t)esc));
            return q;
        }
        if (*p == '\\') {
            if (p[1] != '"' && p[1] != '\\' && p[1] != 'n') {
                q.rc = TERR(ps, p + 1, FY_PERR_INVALID_ESCAPE, (int)(unsigned char)p[1]);
                return q;
            }
            esc = FY_ESC_LABEL;
            p++;
        }
    }
    fy_str_t name = fy_str(s, (size_t)(p - s));
    if (esc != FY_ESC_NONE) {
        /* Byte-granular: the copies of one body add up to less than its length, on top of fy_parse_arena_hint. */
        fy_arena_t *a = ps->arena;
        if (a->cap - a->used < name.len) {
            q.rc = FY_PERR_NOMEM;
            return q;
        }
        char *c = a->base + a->used;
        name.len = fy_unescape(name, FY_ESC_LABEL, c);
        a->used += name.len;
        name.ptr = c;
    }
    if (!fy__utf8_valid(name.ptr, name.len)) {
        q.rc = TERR(ps, p, FY_PERR_NAME_NOT_UTF8, what, name);
        return q;
    }
    q.name = name;
    q.p = p + 1;
    return q;
}

/* The metric name of a sample line that does not start with a classic name: `"name"` (then optional labels), or a
 * label set whose first item is the name, quoted or not: `{"name"}`, `{"name",a="b"}`, `{name,a="b"}`. On FY_OK p is
 * after the name; braced is 1 when the name was inside the braces, and p then points where the label loop resumes
 * (after the ',', or at the '}'). */
static __attribute__((noinline, cold)) qname_t sample_name_utf8(ps_t *ps, const char *p)
{
    qname_t q;
    if (*p == '"') {
        q = quoted_name(ps, p, "metric");
        if (q.rc == FY_OK && q.name.len == 0)
            q.rc = TERR(ps, q.p - 1, FY_PERR_INVALID_METRIC_NAME);
        return q;
    }
    assert(*p == '{');
    p = skip_blanks(p + 1);
    const char *n0 = p;
    if (*p == '"') {
        q = quoted_name(ps, p, "metric");
        if (q.rc != FY_OK)
            return q;
        if (q.name.len == 0) {
            q.rc = TERR(ps, q.p - 1, FY_PERR_INVALID_METRIC_NAME);
            return q;
        }
        p = q.p;
    } else if (IS(*p, C_MNAME0)) {
        p = scan_mname(p + 1, ps->lim);
        q = (qname_t){FY_OK, 0, p, fy_str(n0, (size_t)(p - n0))};
    } else {
        q.rc = TERR(ps, p, FY_PERR_INVALID_METRIC_NAME);
        return q;
    }
    p = skip_blanks(p);
    if (*p == '=') {
        fy_str_t label = *n0 == '"' ? q.name : fy_str(n0, (size_t)(p - n0));
        q.rc = TERR(ps, p, FY_PERR_NAME_FIRST, label);
        return q;
    }
    if (*p != ',' && *p != '}') {
        q.rc = TERR(ps, p, FY_PERR_NAME_END, fy__rune_arg(p));
        return q;
    }
    q.braced = 1;
    ps->braced_line = ps->line;
    q.p = *p == ',' ? p + 1 : p;
    return q;
}

static int comment_rest(ps_t *ps, const char *p, int help, uint32_t f);

/* A HELP or TYPE line whose name is quoted; p at the quote. */
static __attribute__((noinline, cold)) int comment_utf8(ps_t *ps, const char *p, int help)
{
    qname_t q = quoted_name(ps, p, "metric");
    if (q.rc != FY_OK)
        return q.rc;
    fy_str_t cname = q.name;
    p = q.p;
    int rc;
    ps->eol = p;
    if (*p == '\n')
        return p >= ps->eof_at ? text_eof(ps, p) : FY_OK;
    if (!IS_BLANK(*p) || cname.len == 0)
        return TERR(ps, p, FY_PERR_INVALID_NAME_COMMENT);
    uint32_t f;
    uint8_t kind;
    if ((rc = resolve_family(ps, cname.ptr, cname.len, &f, &kind)) != FY_OK)
        return rc;
    return comment_rest(ps, p, help, f);
}

/* '#' lines. p is just after the '#'. */
static int parse_comment(ps_t *ps, const char *p)
{
    p = skip_blanks(p);
    ps->eol = p;
    if (*p == '\n')
        return FY_OK;
    const char *kw = p;
    p = scan_token(p, ps->lim);
    ps->eol = p;
    if (*p == '\n')
        return FY_OK;
    size_t kwlen = (size_t)(p - kw);
    int help = kwlen == 4 && memcmp(kw, "HELP", 4) == 0;
    int type = kwlen == 4 && memcmp(kw, "TYPE", 4) == 0;
    if (!help && !type) {
        /* A plain comment; in the copied last line the '\n' found is the virtual one, which expfmt reports as EOF. */
        const char *eol = memchr(p, '\n', (size_t)(ps->lim - p));
        assert(eol != NULL);
        ps->eol = eol;
        return eol >= ps->eof_at ? text_eof(ps, ps->eof_at) : FY_OK;
    }
    p = skip_blanks(p);
    const char *name = p;
    if (IS(*p, C_MNAME0))
        p = scan_mname(p + 1, ps->lim);
    ps->eol = p;
    if (*p == '\n')
        return p >= ps->eof_at ? text_eof(ps, p) : FY_OK;
    if (!IS_BLANK(*p)) {
        if (!(ps->utf8 && p == name && *p == '"'))
            return TERR(ps, p, FY_PERR_INVALID_NAME_COMMENT);
        return comment_utf8(ps, p, help);
    }
    uint32_t f;
    uint8_t kind;
    int rc = resolve_family(ps, name, (size_t)(p - name), &f, &kind);
    if (rc != FY_OK)
        return rc;
    return comment_rest(ps, p, help, f);
}

/* The HELP text or TYPE of a comment line, p after the family's name (at a blank). */
static int comment_rest(ps_t *ps, const char *p, int help, uint32_t f)
{
    fy_family_t *fm = &ps->fams[f];
    p = skip_blanks(p);
    ps->eol = p;
    if (*p == '\n')
        return p >= ps->eof_at ? text_eof(ps, p) : FY_OK;
    const char *eol = memchr(p, '\n', (size_t)(ps->lim - p));
    assert(eol != NULL);
    ps->eol = eol;
    if (help) {
        if (fm->has_help)
            return TERR(ps, p, FY_PERR_SECOND_HELP, fm->name);
        uint8_t esc = FY_ESC_NONE;
        for (const char *b = p; (b = memchr(b, '\\', (size_t)(eol - b))) != NULL; b += 2) {
            if (b[1] != '\\' && b[1] != 'n')
                return TERR(ps, b + 1, FY_PERR_INVALID_ESCAPE, (int)(unsigned char)b[1]);
            esc = FY_ESC_HELP;
        }
        if (eol >= ps->eof_at)
            return text_eof(ps, eol);
        fm->help = fy_str(p, (size_t)(eol - p));
        fm->help_esc = esc;
        fm->has_help = 1;
        return FY_OK;
    }
    if (ps->famw[f].type_set)
        return TERR(ps, p, FY_PERR_SECOND_TYPE, fm->name);
    msgval_t m;
    fy_str_t tok = memchr(p, '\\', (size_t)(eol - p)) ? strip_backslashes(&m, p, (size_t)(eol - p)) : fy_str(p, (size_t)(eol - p));
    uint8_t t;
    if (!parse_type(tok.ptr, tok.len, &t))
        return TERR(ps, eol, FY_PERR_UNKNOWN_TYPE, tok);
    if (eol >= ps->eof_at)
        return text_eof(ps, eol);
    fm->type = t;
    ps->famw[f].type_set = 1;
    return FY_OK;
}

static int add_point(ps_t *ps, uint32_t s, double key, double value, uint64_t count)
{
    if (ps->npoints == ps->maxpoints)
        return FY_PERR_NOMEM;
    uint32_t i = ps->npoints++;
    series_work_t *sw = &ps->serw[s];
    if (ps->series[s].npoints == 0) {
        ps->series[s].points = &ps->points[i]; /* final unless points interleave (then layout() moves them) */
    } else if (sw->last_pt != i - 1) {
        ps->points_interleaved = 1;
    }
    sw->last_pt = i;
    ps->series[s].npoints++;
    ps->points[i].key = key;
    ps->points[i].value = value;
    ps->points[i].count = count;
    ps->pt_series[i] = s;
    return FY_OK;
}

static uint32_t new_series(ps_t *ps, uint32_t f, const fy_label_t *labels, uint32_t nlabels)
{
    uint32_t s = ps->nseries++;
    fy_series_t *se = &ps->series[s];
    memset(se, 0, sizeof(*se));
    se->labels = labels;
    se->nlabels = nlabels;
    ps->serw[s].fam = f;
    fy_family_t *fm = &ps->fams[f];
    if (fm->nseries == 0)
        ps->famw[f].first_series = s;
    else if (ps->famw[f].last_series != s - 1)
        ps->series_interleaved = 1;
    ps->famw[f].last_series = s;
    fm->nseries++;
    return s;
}

/* A sample line; p is at its first non-blank byte (not '#', not '\n'). */
static int parse_sample(ps_t *ps, const char *p)
{
    const char *const lim = ps->lim;
    int rc;
    fy_str_t mname;
    int braced = 0; /* the name was the first item of the label set, whose loop resumes at p */
    if (IS(*p, C_MNAME0)) {
        const char *name = p;
        p = scan_mname(p + 1, lim);
        mname = fy_str(name, (size_t)(p - name));
    } else if (__builtin_expect(ps->utf8 && (*p == '"' || *p == '{'), 0)) {
        qname_t q = sample_name_utf8(ps, p);
        if (q.rc != FY_OK)
            return q.rc;
        p = q.p;
        mname = q.name;
        braced = q.braced;
    } else {
        return TERR(ps, p, FY_PERR_INVALID_METRIC_NAME);
    }
    uint32_t f;
    uint8_t kind;
    if ((rc = resolve_family(ps, mname.ptr, mname.len, &f, &kind)) != FY_OK)
        return rc;
    fy_family_t *fm = &ps->fams[f];
    if (!ps->famw[f].type_set) {
        fm->type = FY_TYPE_UNTYPED;
        ps->famw[f].type_set = 1;
    }
    const uint8_t type = fm->type;
    const int is_sum = type == FY_TYPE_SUMMARY, is_hist = is_hist_type(type);
    p = skip_blanks(p);

    /* Labels go straight to the arena; a summary/histogram line that joins an existing series gives them back. */
    fy_label_t *ls = ps->labels + ps->nlabels;
    uint32_t n = 0, dmask = 0;
    double special = NAN; /* the quantile or le value */
    if (__builtin_expect(braced, 0))
        goto Labels; /* the name was the label set's first item: the set is open already */
    if (*p == '{') {
        p++;
    Labels:
        for (;;) {
            p = skip_blanks(p);
            if (*p == '}') {
                p = skip_blanks(p + 1);
                break;
            }
            fy_str_t lname;
            if (IS(*p, C_LNAME0)) {
                const char *ln = p;
                p = scan_lname(p + 1, lim);
                lname = fy_str(ln, (size_t)(p - ln));
            } else if (ps->utf8 && *p == '"') {
                qname_t q = quoted_name(ps, p, "label");
                if (q.rc != FY_OK)
                    return q.rc;
                if (q.name.len == 0)
                    return TERR(ps, q.p - 1, FY_PERR_INVALID_LABEL_NAME, fm->name);
                p = q.p;
                lname = q.name;
            } else {
                return TERR(ps, p, FY_PERR_INVALID_LABEL_NAME, fm->name);
            }
            if (fy_str_eq_mem(lname, FY_STRLIT("__name__")))
                return TERR(ps, p, FY_PERR_RESERVED_LABEL, fy_str(FY_STRLIT("__name__")));
            int is_special =
                (is_sum && fy_str_eq_mem(lname, FY_STRLIT("quantile"))) || (is_hist && fy_str_eq_mem(lname, FY_STRLIT("le")));
            p = skip_blanks(p);
            if (*p != '=') {
                if (ps->utf8 && ps->braced_line == ps->line) /* a second name in a set that has one, as newer expfmt says */
                    return TERR(ps, p, FY_PERR_MULTIPLE_NAMES, fm->name);
                return TERR(ps, p, FY_PERR_EXPECTED_EQUAL, fy__rune_arg(p));
            }
            if (!is_special) {
                if (ps->nlabels + n == ps->maxlabels)
                    return FY_PERR_NOMEM;
                ls[n].name = lname;
                n++;
                if (n <= DUP_LINEAR_MAX) {
                    for (uint32_t i = 0; i + 1 < n; i++) {
                        if (str_eq(ls[i].name, lname))
                            return TERR(ps, p, FY_PERR_DUPLICATE_LABEL, fm->name);
                    }
                } else {
                    if ((rc = dup_prepare(ps, ls, n, &dmask)) != FY_OK)
                        return rc;
                    if (dup_insert(ps, ls, n - 1, dmask))
                        return TERR(ps, p, FY_PERR_DUPLICATE_LABEL, fm->name);
                }
            }
            p = skip_blanks(p + 1);
            if (*p != '"')
                return TERR(ps, p, FY_PERR_EXPECTED_QUOTE, fy__rune_arg(p));
            const char *v = ++p;
            uint8_t esc = FY_ESC_NONE, high = 0;
            for (;;) {
                p = scan_lvalue(p, lim);
                if (*p == '"')
                    break;
                if (*p == '\\') {
                    if (p[1] != '"' && p[1] != '\\' && p[1] != 'n')
                        return TERR(ps, p + 1, FY_PERR_INVALID_ESCAPE, (int)(unsigned char)p[1]);
                    esc = FY_ESC_LABEL;
                    p += 2;
                } else if (*p == '\n') {
                    msgval_t m;
                    return TERR(ps, p, FY_PERR_UNESCAPED_NEWLINE, unescaped_for_msg(&m, v, (size_t)(p - v), esc));
                } else {
                    high = 1;
                    p++;
                }
            }
            fy_str_t val = fy_str(v, (size_t)(p - v));
            if (high && !fy__utf8_valid(val.ptr, val.len)) {
                msgval_t m;
                return TERR(ps, p, FY_PERR_INVALID_LABEL_VALUE, unescaped_for_msg(&m, val.ptr, val.len, esc));
            }
            if (is_special) {
                if (parse_value(val.ptr, val.len, &special) != 0) {
                    msgval_t m;
                    return TERR(ps, p, FY_PERR_EXPECTED_FLOAT_LBL, is_sum ? "quantile" : "le",
                                unescaped_for_msg(&m, val.ptr, val.len, esc));
                }
            } else {
                ls[n - 1].value = val;
                ls[n - 1].value_esc = esc;
            }
            p = skip_blanks(p + 1);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == '}') {
                p = skip_blanks(p + 1);
                break;
            }
            msgval_t m;
            return TERR(ps, p, FY_PERR_EXPECTED_LABEL_END, unescaped_for_msg(&m, val.ptr, val.len, esc));
        }
    }

    /* readingValue: find or create the series first, as expfmt does. */
    uint32_t s;
    if ((is_sum || is_hist) && ps->last_hs != 0 && ps->serw[ps->last_hs - 1].fam == f &&
        same_label_set(ps, ps->series[ps->last_hs - 1].labels, ps->series[ps->last_hs - 1].nlabels, ls, n, dmask)) {
        /* The series of the previous summary/histogram line again (the usual run of buckets): the lookup below would
         * find it, since a (family, label set) has at most one series. */
        s = ps->last_hs - 1;
    } else if (is_sum || is_hist) {
        uint64_t sig = mix64((uint64_t)f * 0x9E3779B97F4A7C15ULL + n);
        for (uint32_t i = 0; i < n; i++)
            sig += label_hash(&ls[i]);
        uint32_t found = 0;
        for (uint32_t j = (uint32_t)sig & ps->ser_mask;; j = (j + 1) & ps->ser_mask) {
            uint32_t e = ps->ser_slots[j];
            if (e == 0)
                break;
            const series_work_t *sw = &ps->serw[e - 1];
            const fy_series_t *se = &ps->series[e - 1];
            if (sw->sig == sig && sw->fam == f && same_label_set(ps, se->labels, se->nlabels, ls, n, dmask)) {
                found = e;
                break;
            }
        }
        if (found != 0) {
            s = found - 1;
        } else {
            if (ps->nseries == ps->maxseries)
                return FY_PERR_NOMEM;
            s = new_series(ps, f, ls, n);
            ps->nlabels += n;
            ps->serw[s].sig = sig;
            if ((ps->ser_count + 1) * 2 > ps->ser_mask && (rc = ser_grow(ps)) != FY_OK)
                return rc;
            uint32_t j = (uint32_t)sig & ps->ser_mask;
            while (ps->ser_slots[j] != 0)
                j = (j + 1) & ps->ser_mask;
            ps->ser_slots[j] = s + 1;
            ps->ser_count++;
        }
        ps->last_hs = s + 1;
    } else {
        if (ps->nseries == ps->maxseries)
            return FY_PERR_NOMEM;
        s = new_series(ps, f, ls, n);
        ps->nlabels += n;
    }
    if (dmask != 0)
        memset(ps->dup_slots, 0, ((size_t)dmask + 1) * sizeof(uint32_t));

    const char *vt = p;
    p = scan_token(p, lim);
    double value;
    if (p >= ps->eof_at)
        return text_eof(ps, p);
    if (parse_value(vt, (size_t)(p - vt), &value) != 0)
        return TERR(ps, p, FY_PERR_EXPECTED_FLOAT, fy_str(vt, (size_t)(p - vt)));
    fy_series_t *se = &ps->series[s];
    if (is_sum) {
        if (kind == K_COUNT)
            se->count = go_float_to_uint64(value);
        else if (kind == K_SUM)
            se->value = value;
        else if (!isnan(special) && (rc = add_point(ps, s, special, value, 0)) != FY_OK)
            return rc;
    } else if (is_hist) {
        if (kind == K_COUNT)
            se->count = go_float_to_uint64(value);
        else if (kind == K_SUM)
            se->value = value;
        else if (!isnan(special) && (rc = add_point(ps, s, special, 0, go_float_to_uint64(value))) != FY_OK)
            return rc;
    } else {
        se->value = value;
    }
    ps->eol = p;
    if (*p == '\n')
        return FY_OK;

    /* startTimestamp */
    p = skip_blanks(p + 1);
    const char *ts = p;
    p = scan_token(p, lim);
    int64_t t;
    if (p >= ps->eof_at)
        return text_eof(ps, p);
    if (fy_parse_int64(ts, (size_t)(p - ts), &t) != 0)
        return TERR(ps, p, FY_PERR_EXPECTED_INT_TS, fy_str(ts, (size_t)(p - ts)));
    se->timestamp_ms = t;
    se->has_timestamp = 1;
    ps->eol = p;
    if (*p != '\n') {
        /* Anything after the timestamp starts with a blank, so it is never empty once backslashes are dropped. */
        const char *eol = memchr(p, '\n', (size_t)(ps->lim - p));
        assert(eol != NULL);
        msgval_t m;
        return TERR(ps, eol, FY_PERR_SPURIOUS_AFTER_TS, strip_backslashes(&m, p, (size_t)(eol - p)));
    }
    return FY_OK;
}

/* Parses the lines of [p, end); end[-1] is '\n'. Returns FY_OK or an error; ps->line counts lines. */
static int parse_lines(ps_t *ps, const char *p, const char *end)
{
    while (p < end) {
        ps->line++;
        p = skip_blanks(p);
        int rc;
        if (*p == '\n') {
            p++;
            continue;
        }
        if (*p == '#') {
            rc = parse_comment(ps, p + 1);
        } else {
            rc = parse_sample(ps, p);
        }
        if (rc != FY_OK)
            return rc;
        assert(ps->eol < end && *ps->eol == '\n');
        p = ps->eol + 1;
    }
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Layout: families without samples go, each family's series and each series' points become contiguous. */

static int layout(ps_t *ps, fy_body_t *body)
{
    /* Points in input order already are contiguous per series, and add_point() pointed each series at its first. */
    if (ps->points_interleaved) {
        fy_point_t *np = fy_arena_alloc(ps->arena, (size_t)ps->npoints * sizeof(*np));
        if (np == NULL)
            return FY_PERR_NOMEM;
        uint32_t at = 0;
        for (uint32_t s = 0; s < ps->nseries; s++) {
            ps->serw[s].pt_at = at;
            at += ps->series[s].npoints;
        }
        for (uint32_t i = 0; i < ps->npoints; i++)
            np[ps->serw[ps->pt_series[i]].pt_at++] = ps->points[i];
        at = 0;
        for (uint32_t s = 0; s < ps->nseries; s++) {
            ps->series[s].points = ps->series[s].npoints ? np + at : NULL;
            at += ps->series[s].npoints;
        }
    }

    fy_series_t *ser = ps->series;
    if (ps->series_interleaved) {
        ser = fy_arena_alloc(ps->arena, (size_t)ps->nseries * sizeof(*ser));
        if (ser == NULL)
            return FY_PERR_NOMEM;
        uint32_t at = 0;
        for (uint32_t f = 0; f < ps->nfams; f++) {
            ps->famw[f].first_series = at; /* reused as the write cursor */
            at += ps->fams[f].nseries;
        }
        for (uint32_t s = 0; s < ps->nseries; s++)
            ser[ps->famw[ps->serw[s].fam].first_series++] = ps->series[s];
        at = 0;
        for (uint32_t f = 0; f < ps->nfams; f++) {
            ps->famw[f].first_series = at;
            at += ps->fams[f].nseries;
        }
    }
    uint32_t nf = 0;
    for (uint32_t f = 0; f < ps->nfams; f++) {
        if (ps->fams[f].nseries == 0)
            continue;
        ps->fams[f].series = ser + ps->famw[f].first_series;
        ps->fams[nf++] = ps->fams[f];
    }
    body->families = ps->fams;
    body->nfamilies = nf;
    body->nseries = ps->nseries;
    return FY_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */

#define ALLOC_ARRAY(ps, ptr, n)                                                                                                    \
    do {                                                                                                                           \
        if (((ptr) = fy_arena_alloc((ps)->arena, (size_t)(n) * sizeof(*(ptr)))) == NULL)                                           \
            return FY_PERR_NOMEM;                                                                                                  \
    } while (0)

/* Reserves the arrays with bounds from the input length: a sample line takes at least 4 bytes ("a 1\n"), a label
 * at least 5 ('a="",'), a point-making line at least 12 ('a{le="1"} 1\n'). Nothing is touched until written. */
static int setup(ps_t *ps, size_t len)
{
    size_t lines = len / 4 + 2;
    if (lines > UINT32_MAX - 1)
        lines = UINT32_MAX - 1;
    ps->maxfams = ps->maxseries = (uint32_t)lines;
    ps->maxlabels = len / 5 + 2;
    ps->maxpoints = (uint32_t)(len / 12 + 2 < lines ? len / 12 + 2 : lines);
    ALLOC_ARRAY(ps, ps->fams, ps->maxfams);
    ALLOC_ARRAY(ps, ps->famw, ps->maxfams);
    ALLOC_ARRAY(ps, ps->names, ps->maxfams);
    ALLOC_ARRAY(ps, ps->series, ps->maxseries);
    ALLOC_ARRAY(ps, ps->serw, ps->maxseries);
    ALLOC_ARRAY(ps, ps->labels, ps->maxlabels);
    ALLOC_ARRAY(ps, ps->points, ps->maxpoints);
    ALLOC_ARRAY(ps, ps->pt_series, ps->maxpoints);
    ps->name_mask = 63;
    ps->ser_mask = 63;
    if ((ps->name_slots = alloc_zero(ps->arena, 64 * sizeof(uint64_t))) == NULL ||
        (ps->ser_slots = alloc_zero(ps->arena, 64 * sizeof(uint32_t))) == NULL)
        return FY_PERR_NOMEM;
    return FY_OK;
}

int fy_parse_text(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err)
{
    return fy_parse_text_opts(buf, len, arena, body, err, 0);
}

int fy_parse_text_opts(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err, unsigned opts)
{
    ps_t ps;
    int rc;

    body->families = NULL;
    body->nfamilies = 0;
    body->nseries = 0;
    fy__perr_clear(err);

    memset(&ps, 0, sizeof(ps));
    ps.arena = arena;
    ps.err = err;
    ps.utf8 = (opts & FY_PARSE_UTF8_NAMES) != 0;
    ps.region = buf;
    ps.eof_at = buf + len;
    if ((rc = setup(&ps, len)) != FY_OK)
        goto Exit;

    /* Whole lines first, with their own '\n' as the sentinel. */
    const char *tail = buf + len;
    while (tail > buf && tail[-1] != '\n')
        tail--;
    ps.lim = tail;
    if ((rc = parse_lines(&ps, buf, tail)) != FY_OK)
        goto Exit;

    /* An unterminated last line: only blanks are fine; otherwise it ends in an error expfmt reaches at or before EOF.
     * Parse a copy with a virtual '\n' so the line code keeps its sentinel. */
    size_t tlen = (size_t)(buf + len - tail);
    if (tlen != 0) {
        char *copy = fy_arena_alloc(arena, tlen + 1);
        if (copy == NULL) {
            rc = FY_PERR_NOMEM;
            goto Exit;
        }
        memcpy(copy, tail, tlen);
        copy[tlen] = '\n';
        ps.region = copy;
        ps.region_off = (size_t)(tail - buf);
        ps.eof_at = copy + tlen;
        ps.lim = copy + tlen + 1;
        memset(ps.recent, 0, sizeof(ps.recent));
        ps.line++;
        const char *p = skip_blanks(copy);
        if (p != ps.eof_at) {
            rc = *p == '#' ? parse_comment(&ps, p + 1) : parse_sample(&ps, p);
            /* Reaching the virtual '\n' without an error is expfmt's EOF inside the line. */
            if (rc == FY_OK)
                rc = text_eof(&ps, ps.eof_at);
            goto Exit;
        }
    }
    rc = layout(&ps, body);

Exit:
    if (rc == FY_PERR_NOMEM)
        fy__perr(err, FY_PERR_NOMEM, NULL, ps.line, 0);
    if (rc != FY_OK) {
        body->families = NULL;
        body->nfamilies = 0;
        body->nseries = 0;
    }
    return rc;
}
