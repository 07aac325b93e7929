/*
 * negotiate.c: Accept / Accept-Encoding handling for scrapes (see negotiate.h).
 *
 * goautoneg parses the Accept header into clauses (type, subtype, q, parameters) and sorts them by q descending,
 * specific types before wildcards; expfmt then takes the first clause it can serve. Go's sort is not stable, but for
 * the short headers seen in practice ties keep header order, which a stable sort gives us deterministically.
 */
#include "negotiate.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CLAUSES 32
#define MAX_PARAMS 8

typedef struct {
    const char *type, *sub;
    size_t type_len, sub_len;
    double q;
    int order;
    struct {
        const char *k, *v;
        size_t kl, vl;
    } params[MAX_PARAMS];
    int nparams;
} clause_t;

/* goautoneg and expfmt compare types, subtypes and parameter names case-sensitively. */
static int eq_lit(const char *a, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(a, lit, n) == 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static double parse_q(const char *v, size_t n)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return 0;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    double q = strtod(tmp, &end);
    return *end == '\0' ? q : 0;
}

static int parse_clauses(const char *s, size_t len, clause_t *out)
{
    int n = 0;
    size_t i = 0;
    while (i < len && n < MAX_CLAUSES) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        const char *c = s + i;
        size_t cl = j - i;
        i = j + 1;
        /* media range, then ;params */
        size_t k = 0;
        while (k < cl && c[k] != ';')
            k++;
        const char *mr = c;
        size_t mrl = k;
        trim(&mr, &mrl);
        const char *slash = memchr(mr, '/', mrl);
        clause_t *x = &out[n];
        memset(x, 0, sizeof(*x));
        x->q = 1.0;
        x->order = n;
        if (slash == NULL) {
            if (mrl == 1 && mr[0] == '*') { /* goautoneg treats "*" as "* / *" */
                x->type = x->sub = "*";
                x->type_len = x->sub_len = 1;
            } else {
                continue;
            }
        } else {
            x->type = mr;
            x->type_len = (size_t)(slash - mr);
            x->sub = slash + 1;
            x->sub_len = mrl - x->type_len - 1;
        }
        while (k < cl) {
            size_t st = ++k;
            while (k < cl && c[k] != ';')
                k++;
            const char *p = c + st;
            size_t pl = k - st;
            trim(&p, &pl);
            const char *eq = memchr(p, '=', pl);
            if (eq == NULL)
                continue;
            const char *key = p, *val = eq + 1;
            size_t kl = (size_t)(eq - p), vl = pl - kl - 1;
            trim(&key, &kl);
            trim(&val, &vl);
            if (eq_lit(key, kl, "q")) {
                x->q = parse_q(val, vl);
            } else if (x->nparams < MAX_PARAMS) {
                x->params[x->nparams].k = key;
                x->params[x->nparams].kl = kl;
                x->params[x->nparams].v = val;
                x->params[x->nparams].vl = vl;
                x->nparams++;
            }
        }
        n++;
    }
    return n;
}

static int specificity(const clause_t *c)
{
    int wt = c->type_len == 1 && c->type[0] == '*';
    int ws = c->sub_len == 1 && c->sub[0] == '*';
    return wt ? 0 : ws ? 1 : 2;
}

static int clause_cmp(const void *pa, const void *pb)
{
    const clause_t *a = pa, *b = pb;
    if (a->q != b->q)
        return a->q > b->q ? -1 : 1;
    int sa = specificity(a), sb = specificity(b);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return a->order - b->order;
}

static const char *param(const clause_t *c, const char *key, size_t *vl)
{
    for (int i = 0; i < c->nparams; i++)
        if (eq_lit(c->params[i].k, c->params[i].kl, key)) {
            *vl = c->params[i].vl;
            return c->params[i].v;
        }
    return NULL;
}

static int param_is(const clause_t *c, const char *key, const char *want)
{
    size_t vl;
    const char *v = param(c, key, &vl);
    return v != NULL && vl == strlen(want) && memcmp(v, want, vl) == 0;
}

fy_scrape_format_t fy_negotiate_format(const char *accept, size_t len, int allow_openmetrics)
{
    clause_t cl[MAX_CLAUSES];
    if (accept == NULL || len == 0)
        return FY_SCRAPE_TEXT;
    int n = parse_clauses(accept, len, cl);
    qsort(cl, (size_t)n, sizeof(clause_t), clause_cmp);
    for (int i = 0; i < n; i++) {
        const clause_t *c = &cl[i];
        if (eq_lit(c->type, c->type_len, "application") && eq_lit(c->sub, c->sub_len, "vnd.google.protobuf") &&
            param_is(c, "proto", "io.prometheus.client.MetricFamily") && param_is(c, "encoding", "delimited"))
            return FY_SCRAPE_PROTOBUF;
        if (allow_openmetrics && eq_lit(c->type, c->type_len, "application") &&
            eq_lit(c->sub, c->sub_len, "openmetrics-text")) {
            size_t vl;
            const char *v = param(c, "version", &vl);
            if (v == NULL || (vl == 5 && (memcmp(v, "1.0.0", 5) == 0 || memcmp(v, "0.0.1", 5) == 0)))
                return FY_SCRAPE_OPENMETRICS;
        }
        if (eq_lit(c->type, c->type_len, "text") && eq_lit(c->sub, c->sub_len, "plain")) {
            size_t vl;
            const char *v = param(c, "version", &vl);
            if (v == NULL || (vl == 5 && memcmp(v, "0.0.4", 5) == 0))
                return FY_SCRAPE_TEXT;
        }
    }
    return FY_SCRAPE_TEXT;
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

int fy_negotiate_gzip(const char *ae, size_t len)
{
    size_t i = 0;
    while (ae != NULL && i < len) {
        size_t j = i;
        while (j < len && ae[j] != ',')
            j++;
        const char *p = ae + i;
        size_t n = j - i;
        trim(&p, &n);
        if ((n == 4 && memcmp(p, "gzip", 4) == 0) || (n > 4 && memcmp(p, "gzip;", 5) == 0))
            return 1;
        i = j + 1;
    }
    return 0;
}
