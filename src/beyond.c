/*
 * beyond.c: lifetime headers, liveness families, bulk-delete selectors and the expiry timer (see beyond.h and
 * docs/beyond-pushgateway.md).
 */
#include "beyond.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "log.h"
#include "router.h"

/* ------------------------------------------------------------------------------------------------------------- */
/* Header values. */

int fy_life_parse_header(const char *header, const char *v, size_t len, int64_t *out, char *err, size_t errcap)
{
    char buf[64], derr[160];
    int64_t ns = 0;
    if (len >= sizeof(buf)) {
        snprintf(err, errcap, "invalid %s header \"%.*s\": too long", header, (int)(len > 200 ? 200 : len), v);
        return -1;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    if (fy_parse_duration(buf, &ns, derr, sizeof(derr)) != 0) {
        snprintf(err, errcap, "invalid %s header \"%s\": %s", header, buf, derr);
        return -1;
    }
    if (ns < 0) {
        snprintf(err, errcap, "invalid %s header \"%s\": must not be negative", header, buf);
        return -1;
    }
    *out = ns == 0 ? FY_LIFE_NONE : ns;
    return 0;
}

const fy_own_family_t fy_life_own_families[2] = {
    {"ferry_groups_bulk_deleted_total", FY_TYPE_COUNTER, "Groups deleted by DELETE /api/v1/admin/groups.", 1},
    {"ferry_groups_expired_total", FY_TYPE_COUNTER, "Groups deleted because their TTL ran out.", 1},
};

/* ------------------------------------------------------------------------------------------------------------- */
/* Liveness families. Collected in two passes: the store callback copies each group's labels into one string buffer
 * (by offset: it may move while it grows), then the series point into it. */

typedef struct st_lrec_t {
    size_t off;  /* first label in the label buffer */
    uint32_t nl; /* labels, instance included */
    int64_t push_ns, interval_ns, deadline_ns;
} lrec_t;

typedef struct st_lcollect_t {
    lrec_t *r;
    size_t n, cap;
    fy_store_label_t *lab; /* names and values hold offsets into str until the end */
    size_t nlab, caplab;
    char *str;
    size_t nstr, capstr;
    int oom;
} lcollect_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static fy_str_t lc_str(lcollect_t *c, fy_str_t s)
{
    if (grow((void **)&c->str, &c->capstr, c->nstr + s.len + 1, 1) != 0) {
        c->oom = 1;
        return fy_str(NULL, 0);
    }
    memcpy(c->str + c->nstr, s.ptr, s.len);
    fy_str_t r = fy_str((const char *)(uintptr_t)c->nstr, s.len);
    c->nstr += s.len;
    return r;
}

static int lc_group(void *ctx, const fy_store_group_view_t *g)
{
    lcollect_t *c = ctx;
    if (grow((void **)&c->r, &c->cap, c->n + 1, sizeof(*c->r)) != 0 ||
        grow((void **)&c->lab, &c->caplab, c->nlab + g->nlabels + 1, sizeof(*c->lab)) != 0)
        return c->oom = 1;
    lrec_t *r = &c->r[c->n++];
    r->off = c->nlab;
    r->push_ns = g->push_ns;
    r->interval_ns = g->interval_ns;
    r->deadline_ns = g->deadline_ns;
    /* the labels of push_time_seconds: the grouping labels, sorted, with instance="" when the key has none */
    int inst = 0;
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq(g->labels[i].name, fy_str("instance", 8)))
            inst = 1;
    for (uint32_t i = 0; i <= g->nlabels; i++) {
        if (!inst && (i == g->nlabels || fy_str_cmp(g->labels[i].name, fy_str("instance", 8)) > 0)) {
            c->lab[c->nlab].name = lc_str(c, fy_str("instance", 8));
            c->lab[c->nlab++].value = lc_str(c, fy_str("", 0));
            inst = 1;
        }
        if (i < g->nlabels) {
            c->lab[c->nlab].name = lc_str(c, g->labels[i].name);
            c->lab[c->nlab++].value = lc_str(c, g->labels[i].value);
        }
    }
    r->nl = (uint32_t)(c->nlab - r->off);
    return c->oom;
}

/* Exposition order (the store's fy__slot_cmp): label count, then values position by position, then names. */
static int series_cmp(const void *x, const void *y)
{
    const fy_series_t *a = x, *b = y;
    if (a->nlabels != b->nlabels)
        return a->nlabels < b->nlabels ? -1 : 1;
    for (uint32_t i = 0; i < a->nlabels; i++) {
        int c = fy_str_cmp(a->labels[i].value, b->labels[i].value);
        if (c != 0)
            return c;
    }
    for (uint32_t i = 0; i < a->nlabels; i++) {
        int c = fy_str_cmp(a->labels[i].name, b->labels[i].name);
        if (c != 0)
            return c;
    }
    return 0;
}

int fy_life_collect(fy_store_t *store, const fy_body_t *own, int64_t now_ns, int64_t grace_ns, fy_life_body_t *out)
{
    static const fy_body_t none;
    lcollect_t c;
    memset(&c, 0, sizeof(c));
    memset(out, 0, sizeof(*out));
    if (own == NULL)
        own = &none;
    out->body = *own;
    fy_store_foreach_life(store, lc_group, &c);
    fy_store_stats_t st;
    fy_store_stats(store, &st);
    fy_label_t *labels = NULL;
    fy_series_t *ser = NULL;
    fy_family_t *fams = NULL;
    int rc = -1;
    if (c.oom)
        goto Exit;
    labels = malloc(sizeof(*labels) * (c.nlab + 1));
    ser = calloc(3 * c.n + 2, sizeof(*ser)); /* [0, n) expiry, [n, 2n) interval, [2n, 3n) alive, the counters */
    fams = malloc(sizeof(*fams) * (own->nfamilies + 5));
    if (labels == NULL || ser == NULL || fams == NULL)
        goto Exit;
    for (size_t i = 0; i < c.nlab; i++) {
        labels[i].name = fy_str(c.str + (uintptr_t)c.lab[i].name.ptr, c.lab[i].name.len);
        labels[i].value = fy_str(c.str + (uintptr_t)c.lab[i].value.ptr, c.lab[i].value.len);
        labels[i].value_esc = FY_ESC_NONE;
    }
    size_t n[3] = {0, 0, 0};
    for (size_t i = 0; i < c.n; i++) {
        const lrec_t *r = &c.r[i];
        fy_series_t base;
        memset(&base, 0, sizeof(base));
        base.labels = labels + r->off;
        base.nlabels = r->nl;
        if (r->deadline_ns != 0) {
            fy_series_t *s = &ser[n[0]++];
            *s = base;
            s->value = (double)r->deadline_ns / 1e9;
        }
        if (r->interval_ns != 0) {
            fy_series_t *s = &ser[c.n + n[1]++];
            *s = base;
            s->value = (double)r->interval_ns / 1e9;
            s = &ser[2 * c.n + n[2]++];
            *s = base;
            s->value = r->push_ns != 0 && now_ns - r->push_ns <= r->interval_ns + grace_ns ? 1 : 0;
        }
    }
    static const struct {
        const char *name, *help;
    } defs[3] = {
        {FY_LIFE_EXPIRY_FAMILY, "Unix time when this group expires (its last push time plus its TTL)."},
        {FY_LIFE_INTERVAL_FAMILY, "Push interval the pusher of this group declared."},
        {FY_LIFE_ALIVE_FAMILY, "1 if this group was pushed within its declared interval plus the grace period, else 0."},
    };
    if (own->nfamilies != 0)
        memcpy(fams, own->families, sizeof(*fams) * own->nfamilies);
    uint32_t nf = own->nfamilies, ns = own->nseries;
    for (int k = 0; k < 2; k++) {
        const fy_own_family_t *of = &fy_life_own_families[k];
        fy_series_t *s = &ser[3 * c.n + (size_t)k];
        s->value = (double)(k == 0 ? st.bulk_deleted : st.expired);
        fy_family_t *f = &fams[nf++];
        memset(f, 0, sizeof(*f));
        f->name = fy_str(of->name, strlen(of->name));
        f->help = fy_str(of->help, strlen(of->help));
        f->has_help = 1;
        f->type = FY_TYPE_COUNTER;
        f->nseries = 1;
        f->series = s;
        ns++;
    }
    for (int k = 0; k < 3; k++) {
        if (n[k] == 0)
            continue;
        fy_series_t *s = ser + (size_t)k * c.n;
        qsort(s, n[k], sizeof(*s), series_cmp);
        fy_family_t *f = &fams[nf++];
        memset(f, 0, sizeof(*f));
        f->name = fy_str(defs[k].name, strlen(defs[k].name));
        f->help = fy_str(defs[k].help, strlen(defs[k].help));
        f->has_help = 1;
        f->help_esc = FY_ESC_NONE;
        f->type = FY_TYPE_GAUGE;
        f->nseries = (uint32_t)n[k];
        f->series = s;
        ns += (uint32_t)n[k];
    }
    out->body.families = fams;
    out->body.nfamilies = nf;
    out->body.nseries = ns;
    out->mem[0] = labels;
    out->mem[1] = ser;
    out->mem[2] = fams;
    out->mem[3] = c.str;
    labels = NULL;
    ser = NULL;
    fams = NULL;
    c.str = NULL;
    rc = 0;
Exit:
    free(labels);
    free(ser);
    free(fams);
    free(c.r);
    free(c.lab);
    free(c.str);
    if (rc != 0)
        out->body = *own;
    return rc;
}

void fy_life_body_free(fy_life_body_t *b)
{
    for (size_t i = 0; i < sizeof(b->mem) / sizeof(b->mem[0]); i++) {
        free(b->mem[i]);
        b->mem[i] = NULL;
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Bulk delete selection. */

static void matcher_free(fy_matcher_t *m)
{
    if (m->op == FY_MATCH_RE || m->op == FY_MATCH_NRE)
        regfree(&m->re);
    free(m->name);
    free(m->value);
}

static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n'))
        (*p)++;
}

static int is_name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

int fy_bulk_add_selector(fy_bulk_t *b, const char *s, size_t len, char *err, size_t errcap)
{
    const char *p = s, *end = s + len;
    fy_selector_t sel = {NULL, 0};
    size_t cap = 0;
    char *val = NULL;
    skip_ws(&p, end);
    if (p == end || *p != '{') {
        snprintf(err, errcap, "invalid match[] selector \"%.*s\": expected '{'", (int)len, s);
        goto Fail;
    }
    p++;
    for (;;) {
        skip_ws(&p, end);
        if (p < end && *p == '}') {
            p++;
            break;
        }
        const char *n0 = p;
        while (p < end && is_name_char(*p, p == n0))
            p++;
        if (p == n0) {
            snprintf(err, errcap, "invalid match[] selector \"%.*s\": expected a label name at offset %zu", (int)len, s,
                     (size_t)(n0 - s));
            goto Fail;
        }
        size_t nlen = (size_t)(p - n0);
        skip_ws(&p, end);
        fy_match_op_t op;
        if (end - p >= 2 && p[0] == '=' && p[1] == '~')
            op = FY_MATCH_RE, p += 2;
        else if (end - p >= 2 && p[0] == '!' && p[1] == '~')
            op = FY_MATCH_NRE, p += 2;
        else if (end - p >= 2 && p[0] == '!' && p[1] == '=')
            op = FY_MATCH_NE, p += 2;
        else if (p < end && p[0] == '=')
            op = FY_MATCH_EQ, p += 1;
        else {
            snprintf(err, errcap, "invalid match[] selector \"%.*s\": expected =, !=, =~ or !~ after %.*s", (int)len, s, (int)nlen,
                     n0);
            goto Fail;
        }
        skip_ws(&p, end);
        if (p == end || (*p != '"' && *p != '\'')) {
            snprintf(err, errcap, "invalid match[] selector \"%.*s\": expected a quoted value for %.*s", (int)len, s, (int)nlen,
                     n0);
            goto Fail;
        }
        char q = *p++;
        free(val);
        if ((val = malloc((size_t)(end - p) + 1)) == NULL)
            goto Oom;
        size_t vl = 0;
        while (p < end && *p != q) {
            char ch = *p++;
            if (ch == '\\' && p < end) {
                ch = *p++;
                ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
            }
            val[vl++] = ch;
        }
        if (p == end) {
            snprintf(err, errcap, "invalid match[] selector \"%.*s\": unterminated value", (int)len, s);
            goto Fail;
        }
        p++;
        val[vl] = '\0';
        if (memchr(val, '\0', vl) != NULL) {
            snprintf(err, errcap, "invalid match[] selector \"%.*s\": NUL in a value", (int)len, s);
            goto Fail;
        }
        if (grow((void **)&sel.m, &cap, sel.n + 1, sizeof(*sel.m)) != 0)
            goto Oom;
        fy_matcher_t *m = &sel.m[sel.n];
        memset(m, 0, sizeof(*m));
        m->op = op;
        if (op == FY_MATCH_RE || op == FY_MATCH_NRE) {
            size_t rl = vl + 5;
            char *rx = malloc(rl);
            if (rx == NULL)
                goto Oom;
            snprintf(rx, rl, "^(%s)$", val); /* anchored, as Prometheus' matchers are */
            int rc = regcomp(&m->re, rx, REG_EXTENDED | REG_NOSUB);
            free(rx);
            if (rc != 0) {
                char rerr[128];
                regerror(rc, &m->re, rerr, sizeof(rerr));
                snprintf(err, errcap, "invalid match[] selector \"%.*s\": bad regular expression \"%s\": %s", (int)len, s, val,
                         rerr);
                goto Fail;
            }
        }
        m->name = strndup(n0, nlen);
        m->value = val;
        val = NULL;
        sel.n++;
        if (m->name == NULL)
            goto Oom;
        skip_ws(&p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        snprintf(err, errcap, "invalid match[] selector \"%.*s\": expected ',' or '}'", (int)len, s);
        goto Fail;
    }
    skip_ws(&p, end);
    if (p != end) {
        snprintf(err, errcap, "invalid match[] selector \"%.*s\": unexpected text after '}'", (int)len, s);
        goto Fail;
    }
    if (sel.n == 0) {
        snprintf(err, errcap, "invalid match[] selector \"%.*s\": needs at least one label matcher", (int)len, s);
        goto Fail;
    }
    fy_selector_t *v = realloc(b->sel, (b->nsel + 1) * sizeof(*v));
    if (v == NULL)
        goto Oom;
    b->sel = v;
    b->sel[b->nsel++] = sel;
    return 0;
Oom:
    snprintf(err, errcap, "out of memory");
Fail:
    free(val);
    for (size_t i = 0; i < sel.n; i++)
        matcher_free(&sel.m[i]);
    free(sel.m);
    return -1;
}

int fy_bulk_parse_query(fy_bulk_t *b, const char *query, size_t len, char *err, size_t errcap)
{
    const char *p = query, *end = query + len;
    int have_age = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        char *k = malloc((size_t)(ke - p) + 1), *v = malloc((size_t)(pe - ke) + 1);
        ssize_t kl = k ? fy_url_unescape(p, (size_t)(ke - p), k, 1) : -1;
        ssize_t vl = v && eq ? fy_url_unescape(eq + 1, (size_t)(pe - eq - 1), v, 1) : 0;
        int rc = 0;
        if (k == NULL || v == NULL) {
            snprintf(err, errcap, "out of memory");
            rc = -1;
        } else if (kl < 0 || vl < 0) {
            snprintf(err, errcap, "invalid URL escape in the query \"%.*s\"", (int)(pe - p), p);
            rc = -1;
        } else if ((size_t)kl == 7 && memcmp(k, "match[]", 7) == 0) {
            rc = fy_bulk_add_selector(b, v, (size_t)vl, err, errcap);
        } else if ((size_t)kl == 10 && memcmp(k, "older_than", 10) == 0) {
            char derr[160];
            derr[0] = '\0';
            v[vl] = '\0';
            if (fy_parse_duration(v, &b->older_than_ns, derr, sizeof(derr)) != 0 || b->older_than_ns <= 0) {
                snprintf(err, errcap, "invalid older_than \"%s\": %s", v,
                         b->older_than_ns <= 0 && derr[0] == '\0' ? "must be positive" : derr);
                rc = -1;
            }
            have_age = 1;
        } else if (kl > 0) {
            snprintf(err, errcap, "unknown parameter \"%.*s\" (expected match[] and older_than)", (int)kl, k);
            rc = -1;
        }
        free(k);
        free(v);
        if (rc != 0)
            return -1;
        p = amp ? amp + 1 : end;
    }
    if (b->nsel == 0 && !have_age) {
        snprintf(err, errcap, "no match[] selector and no older_than given (PUT /api/v1/admin/wipe deletes everything)");
        return -1;
    }
    return 0;
}

static int matcher_ok(const fy_matcher_t *m, const fy_store_group_view_t *g)
{
    fy_str_t v = fy_str("", 0);
    size_t nl = strlen(m->name);
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq(g->labels[i].name, fy_str(m->name, nl))) {
            v = g->labels[i].value;
            break;
        }
    switch (m->op) {
    case FY_MATCH_EQ:
        return fy_str_eq(v, fy_str(m->value, strlen(m->value)));
    case FY_MATCH_NE:
        return !fy_str_eq(v, fy_str(m->value, strlen(m->value)));
    default: {
        char stackbuf[256], *z = v.len < sizeof(stackbuf) ? stackbuf : malloc(v.len + 1);
        if (z == NULL)
            return 0; /* out of memory: delete nothing rather than too much */
        memcpy(z, v.ptr, v.len);
        z[v.len] = '\0';
        /* a value with a NUL byte cannot be matched by regexec; it never matches (=~) */
        int hit = memchr(v.ptr, '\0', v.len) == NULL && regexec(&m->re, z, 0, NULL, 0) == 0;
        if (z != stackbuf)
            free(z);
        return m->op == FY_MATCH_RE ? hit : !hit;
    }
    }
}

int fy_bulk_match(void *ctx, const fy_store_group_view_t *g)
{
    const fy_bulk_t *b = ctx;
    if (b->older_than_ns > 0) {
        int64_t last = g->push_ns ? g->push_ns : g->fail_ns;
        if (last > b->now_ns - b->older_than_ns)
            return 0;
    }
    if (b->nsel == 0)
        return 1;
    for (size_t i = 0; i < b->nsel; i++) {
        size_t k = 0;
        while (k < b->sel[i].n && matcher_ok(&b->sel[i].m[k], g))
            k++;
        if (k == b->sel[i].n)
            return 1;
    }
    return 0;
}

void fy_bulk_free(fy_bulk_t *b)
{
    for (size_t i = 0; i < b->nsel; i++) {
        for (size_t k = 0; k < b->sel[i].n; k++)
            matcher_free(&b->sel[i].m[k]);
        free(b->sel[i].m);
    }
    free(b->sel);
    b->sel = NULL;
    b->nsel = 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The expiry timer. */

int fy_reaper_log(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    char buf[1024];
    size_t n = 0;
    buf[n++] = '{';
    for (uint32_t i = 0; i < g->nlabels && n < sizeof(buf) - 8; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%.*s=\"%.*s\"", i ? "," : "", (int)g->labels[i].name.len,
                              g->labels[i].name.ptr, (int)g->labels[i].value.len, g->labels[i].value.ptr);
    if (n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '}';
    buf[n] = '\0';
    char dl[32];
    snprintf(dl, sizeof(dl), "%.3f", (double)g->deadline_ns / 1e9);
    fy_log_debug("msg", "group expired", "group", buf, "deadline", dl);
    return 0;
}

static void *reaper_main(void *arg)
{
    fy_reaper_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        pthread_mutex_unlock(&r->mu);
        r->pass(r->ctx, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += FY_REAPER_TICK_NS;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int fy_reaper_start(fy_reaper_t *r, uint64_t (*pass)(void *ctx, int64_t now_ns), void *ctx)
{
    pthread_condattr_t ca;
    memset(r, 0, sizeof(*r));
    r->pass = pass;
    r->ctx = ctx;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, reaper_main, r) != 0)
        return -1;
    r->running = 1;
    return 0;
}

void fy_reaper_stop(fy_reaper_t *r)
{
    if (!r->running)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->running = 0;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}
