/*
 * negotiate.c: Accept / Accept-Encoding handling for scrapes (see negotiate.h).
 *
 * goautoneg splits the Accept header at ',' into clauses (type, subtype, q, parameters) and sorts them by q
 * descending, specific types before wildcards; expfmt then takes the first clause it can serve. Wildcard clauses are
 * never served, so the answer is the servable clause with the highest q, the earliest one on ties. Go's sort is not
 * stable, but its insertion sort (used below 13 clauses) keeps ties in header order, which we do for any length.
 * So one pass over the header suffices, with no clause table to overflow.
 *
 * goautoneg's parsing quirks matter for the answer and are kept: only spaces are trimmed (not tabs), type and
 * subtype are trimmed separately, a parameter is last-wins (a Go map), a parameter without '=' is ignored, q is
 * strconv.ParseFloat(value, 32) of the untrimmed value (0 on a syntax error, +-Inf on overflow), values are never
 * unquoted, and everything compares case-sensitively.
 */
#include "negotiate.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n;
} span_t;

/* The parameters expfmt reads; absent and empty are the same to it (a Go map yields ""). */
typedef struct {
    span_t proto, encoding, version, escaping;
    float q;
} clause_t;

static int eq_lit(span_t s, const char *lit)
{
    return strlen(lit) == s.n && memcmp(s.p, lit, s.n) == 0;
}

static span_t trim_spaces(const char *p, size_t n)
{
    while (n && *p == ' ') {
        p++;
        n--;
    }
    while (n && p[n - 1] == ' ')
        n--;
    return (span_t){p, n};
}

/* strconv.ParseFloat(s, 32) as goautoneg uses it: the value on success or overflow (+-Inf), 0 on a syntax error.
 * strtof rounds to float32 directly, as Go does, but is laxer: it skips leading white space, and takes hex
 * mantissas without a 'p' exponent and "nan(...)", which Go rejects. */
static float parse_q(span_t v)
{
    char tmp[64];
    if (v.n == 0 || v.n >= sizeof(tmp) || v.p[0] == ' ' || v.p[0] == '\t' || v.p[0] == '\n' || v.p[0] == '\v' || v.p[0] == '\f' ||
        v.p[0] == '\r')
        return 0;
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    if (strchr(tmp, '(') != NULL || strchr(tmp, '_') != NULL)
        return 0;
    const char *m = tmp + (tmp[0] == '+' || tmp[0] == '-');
    if (m[0] == '0' && (m[1] == 'x' || m[1] == 'X') && strpbrk(tmp, "pP") == NULL)
        return 0;
    char *end;
    float q = strtof(tmp, &end);
    return *end == '\0' ? q : 0;
}

/* Parses one clause (the text between commas). Returns 0 if goautoneg drops it (no valid media range). */
static int parse_clause(const char *c, size_t cl, span_t *type, span_t *sub, clause_t *x)
{
    span_t part = trim_spaces(c, cl);
    size_t k = 0;
    while (k < part.n && part.p[k] != ';')
        k++;
    /* media range: "type/subtype", or "*" alone meaning any */
    const char *slash = memchr(part.p, '/', k);
    if (slash == NULL) {
        span_t t = trim_spaces(part.p, k);
        if (!eq_lit(t, "*"))
            return 0;
        *type = *sub = t;
    } else {
        size_t tl = (size_t)(slash - part.p);
        if (memchr(slash + 1, '/', k - tl - 1) != NULL)
            return 0;
        *type = trim_spaces(part.p, tl);
        *sub = trim_spaces(slash + 1, k - tl - 1);
    }
    memset(x, 0, sizeof(*x));
    x->q = 1.0f;
    while (k < part.n) {
        size_t st = ++k;
        while (k < part.n && part.p[k] != ';')
            k++;
        const char *eq = memchr(part.p + st, '=', k - st);
        if (eq == NULL)
            continue;
        span_t key = trim_spaces(part.p + st, (size_t)(eq - (part.p + st)));
        span_t raw = {eq + 1, (size_t)(part.p + k - eq - 1)};
        if (eq_lit(key, "q"))
            x->q = parse_q(raw);
        else if (eq_lit(key, "proto"))
            x->proto = trim_spaces(raw.p, raw.n);
        else if (eq_lit(key, "encoding"))
            x->encoding = trim_spaces(raw.p, raw.n);
        else if (eq_lit(key, "version"))
            x->version = trim_spaces(raw.p, raw.n);
        else if (eq_lit(key, "escaping"))
            x->escaping = trim_spaces(raw.p, raw.n);
    }
    return 1;
}

/* What expfmt serves for a clause, or -1. */
static int servable(span_t type, span_t sub, const clause_t *x, int allow_openmetrics)
{
    if (eq_lit(type, "application") && eq_lit(sub, "vnd.google.protobuf") &&
        eq_lit(x->proto, "io.prometheus.client.MetricFamily") && eq_lit(x->encoding, "delimited"))
        return FY_SCRAPE_PROTOBUF; /* encoding=text and compact-text are not offered */
    if (eq_lit(type, "text") && eq_lit(sub, "plain") && (x->version.n == 0 || eq_lit(x->version, "0.0.4")))
        return FY_SCRAPE_TEXT;
    if (allow_openmetrics && eq_lit(type, "application") && eq_lit(sub, "openmetrics-text") &&
        (x->version.n == 0 || eq_lit(x->version, "1.0.0") || eq_lit(x->version, "0.0.1")))
        return FY_SCRAPE_OPENMETRICS;
    return -1;
}

/* The Accept header's next comma-separated clause from *at (moved past it): 1 parsed, 0 not a clause we read (skipped),
 * -1 at the end. */
static int next_clause(const char *accept, size_t len, size_t *at, span_t *type, span_t *sub, clause_t *x)
{
    size_t i = *at, j = i;
    if (accept == NULL || i >= len)
        return -1;
    while (j < len && accept[j] != ',')
        j++;
    *at = j + 1;
    return parse_clause(accept + i, j - i, type, sub, x);
}

fy_scrape_format_t fy_negotiate_format(const char *accept, size_t len, int allow_openmetrics)
{
    fy_scrape_format_t best = FY_SCRAPE_TEXT;
    float best_q = 0;
    int found = 0, rc;
    size_t at = 0;
    span_t type, sub;
    clause_t x;
    while ((rc = next_clause(accept, len, &at, &type, &sub, &x)) >= 0) {
        int f = rc ? servable(type, sub, &x, allow_openmetrics) : -1;
        if (f >= 0 && (!found || x.q > best_q)) {
            best = (fy_scrape_format_t)f;
            best_q = x.q;
            found = 1;
        }
    }
    return best;
}

/* goautoneg's secondary order at equal q: specific types, then type/ *, then * / *. */
static int wildness(span_t type, span_t sub)
{
    return eq_lit(type, "*") ? 2 : eq_lit(sub, "*") ? 1 : 0;
}

static const char *const escaping_names[] = {"underscores", "allow-utf-8", "dots", "values"};

static int escaping_value(span_t v)
{
    for (int i = 0; i < 4; i++)
        if (eq_lit(v, escaping_names[i]))
            return i;
    return -1; /* unknown values are ignored, as Negotiate ignores them */
}

const char *fy_escaping_name(int escaping)
{
    return escaping >= 0 && escaping < 4 ? escaping_names[escaping] : escaping_names[0];
}

int fy_negotiate_escaping(const char *accept, size_t len, int allow_openmetrics)
{
    /* Pass 1: the served clause (as fy_negotiate_format) and where it sorts: (q, wildness 0, index). */
    float served_q = 0;
    size_t served_at = 0, at = 0;
    int found = 0, rc;
    span_t type, sub;
    clause_t x;
    for (size_t k = 0; (rc = next_clause(accept, len, &at, &type, &sub, &x)) >= 0; k++)
        if (rc && servable(type, sub, &x, allow_openmetrics) >= 0 && (!found || x.q > served_q)) {
            served_q = x.q;
            served_at = k;
            found = 1;
        }
    /* Pass 2: of the clauses that sort at or before it (all of them when none is served), the one sorting last with a
     * known escaping sets it. */
    int esc = FY_ESCAPING_UNDERSCORES, have = 0;
    float best_q = 0;
    int best_w = 0;
    size_t best_at = 0;
    at = 0;
    for (size_t k = 0; (rc = next_clause(accept, len, &at, &type, &sub, &x)) >= 0; k++) {
        if (rc) {
            int e = escaping_value(x.escaping), w = wildness(type, sub);
            int before = !found || x.q > served_q || (x.q == served_q && (w == 0 && k <= served_at));
            /* later in goautoneg's order than the best so far: lower q, or more wildcard, or later in the header */
            int later = !have || x.q < best_q || (x.q == best_q && (w > best_w || (w == best_w && k > best_at)));
            if (e >= 0 && before && later) {
                esc = e;
                have = 1;
                best_q = x.q;
                best_w = w;
                best_at = k;
            }
        }
    }
    return esc;
}

const char *fy_scrape_content_type(fy_scrape_format_t f)
{
    switch (f) {
    case FY_SCRAPE_PROTOBUF:
        return "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    case FY_SCRAPE_OPENMETRICS:
        return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    default:
        return "text/plain; version=0.0.4; charset=utf-8";
    }
}

/* Length of the Unicode white space rune (Go's unicode.IsSpace) at p[0..n), or 0. */
static size_t space_at(const unsigned char *p, size_t n)
{
    if (n >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
        return 1;
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0))
        return 2;
    if (n >= 3 &&
        ((p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) ||
         (p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) ||
         (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) || (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)))
        return 3;
    return 0;
}

/* The same, for the rune that ends at p[n-1]. */
static size_t space_before(const unsigned char *p, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_at(p + n - k, k) == k)
            return k;
    return 0;
}

int fy_negotiate_gzip(const char *ae, size_t len)
{
    size_t i = 0;
    while (ae != NULL && i < len) {
        size_t j = i;
        while (j < len && ae[j] != ',')
            j++;
        const unsigned char *p = (const unsigned char *)ae + i;
        size_t n = j - i, k;
        while ((k = space_at(p, n)) != 0) { /* strings.TrimSpace */
            p += k;
            n -= k;
        }
        while ((k = space_before(p, n)) != 0)
            n -= k;
        if ((n == 4 && memcmp(p, "gzip", 4) == 0) || (n > 4 && memcmp(p, "gzip;", 5) == 0))
            return 1;
        i = j + 1;
    }
    return 0;
}
