/*
 * life.c: lifetime header values and the liveness families (life.h).
 */
#include "life.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "grow.h"
#include "log.h"

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

static fy_str_t lc_str(lcollect_t *c, fy_str_t s)
{
    if (fy_grow((void **)&c->str, &c->capstr, c->nstr + s.len + 1, 1) != 0) {
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
    if (fy_grow((void **)&c->r, &c->cap, c->n + 1, sizeof(*c->r)) != 0 ||
        fy_grow((void **)&c->lab, &c->caplab, c->nlab + g->nlabels + 1, sizeof(*c->lab)) != 0)
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
