/*
 * ui.c: the web UI page (see ui.h), produced in parts so that the server sends it as it is written. A request copies
 * the sorted grouping keys (a store cursor), reads every group's grouping labels and times once (no families: a view
 * without them costs about the key), keeps the groups that pass the filters with their state and a sort key, sorts
 * those and takes one page of them; the page's groups are rendered one at a time, each with series up to
 * FY_UI_GROUP_LABELS labels and FY_UI_GROUP_BYTES of HTML (the first series always) and a notice where series were left
 * out, at most FY_UI_ROW_LABELS labels per series row and FY_UI_VALUE_BYTES per value in a row. A part holds one group
 * or more, so a request costs one part's memory plus the keys twice (the cursor's, the sort's: about 60 bytes a group
 * with two short labels, 6 MB at 100,000 groups), however large a group.
 */
#define _GNU_SOURCE /* memmem */
#include "ui.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fy_num.h"

/* ------------------------------------------------------------------------------------------------------------- */

void fy_buf_add(fy_buf_t *b, const char *s, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void fy_buf_str(fy_buf_t *b, const char *s)
{
    fy_buf_add(b, s, strlen(s));
}

void fy_buf_printf(fy_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        fy_buf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    fy_buf_add(b, big, (size_t)n);
    free(big);
}

void fy_buf_free(fy_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void fy_html_escape(fy_buf_t *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&#34;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        fy_buf_add(b, s + start, i - start);
        fy_buf_str(b, rep);
        start = i + 1;
    }
    fy_buf_add(b, s + start, n - start);
}

static void esc_str(fy_buf_t *b, fy_str_t s)
{
    fy_html_escape(b, s.ptr, s.len);
}

/* base64url without padding, as the Pushgateway's own UI builds delete URLs. */
static void b64url(fy_buf_t *b, fy_str_t s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = (const unsigned char *)s.ptr;
    char out[4];
    size_t i = 0;
    for (; i + 3 <= s.len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = tab[(v >> 6) & 63];
        out[3] = tab[v & 63];
        fy_buf_add(b, out, 4);
    }
    if (s.len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        fy_buf_add(b, out, 2);
    } else if (s.len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = tab[(v >> 6) & 63];
        fy_buf_add(b, out, 3);
    }
}

static void fmt_time(fy_buf_t *b, int64_t ns)
{
    if (ns == 0) {
        fy_buf_str(b, "never");
        return;
    }
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[40];
    strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fy_buf_str(b, tmp);
}

static void fmt_value(fy_buf_t *b, double v)
{
    char tmp[FY_FLOAT_F_BUFSZ];
    size_t n = fy_format_float_f(v, tmp);
    fy_buf_add(b, tmp, n);
}

static const char *const type_names[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"};

/* ------------------------------------------------------------------------------------------------------------- */

/* A group that passes the filters, as read at open: what the sort needs. */
typedef struct st_row_t {
    uint32_t idx;     /* cursor index */
    uint32_t key_len; /* the sort key: keys.p + key_off */
    size_t key_off;
    int64_t push_ns;
    uint8_t state;
} row_t;

struct st_fy_ui_t {
    fy_ui_opts_t o; /* o.filter and o.job point at filter and job (copies) */
    char *filter, *job;
    fy_store_t *store;
    fy_store_cursor_t *cur;
    /* the groups that pass the filters, in display order, and their sort keys */
    row_t *match;
    size_t nmatch;
    fy_buf_t keys;
    uint64_t counts[FY_UI_NSTATES]; /* groups per state among those that pass the label and job filters */
    fy_ui_pager_t pg;
    uint64_t next; /* the next entry of match to render, pg.first <= next <= pg.end */
    int phase;
    fy_buf_t b; /* the part being written */
};

static const char *const state_names[FY_UI_NSTATES] = {"failed", "late", "expiring", "alive", "undeclared"};
static const char *const state_texts[FY_UI_NSTATES] = {"failed", "late", "expires soon", "alive", "no interval"};

fy_ui_state_t fy_ui_state(const fy_store_group_view_t *g, int64_t now_ns, int64_t grace_ns)
{
    if (g->fail_ns > g->push_ns)
        return FY_UI_FAILED;
    /* push_alive's rule (life.c, fy_life_collect): alive while push_ns != 0 && now - push_ns <= interval + grace */
    int alive = g->push_ns != 0 && now_ns - g->push_ns <= g->interval_ns + grace_ns;
    if (g->interval_ns != 0 && !alive)
        return FY_UI_LATE;
    /* "soon" is relative to the TTL: a quarter of it left means three pushes at TTL/4 or more went missing, and a
     * fixed threshold would flag a short TTL at every push or a long one only at the last moment */
    if (g->ttl_ns > 0 && g->deadline_ns != 0 && g->deadline_ns - now_ns <= g->ttl_ns / 4)
        return FY_UI_EXPIRING;
    return g->interval_ns != 0 ? FY_UI_ALIVE : FY_UI_UNDECLARED;
}

const char *fy_ui_state_name(fy_ui_state_t st)
{
    return st < FY_UI_NSTATES ? state_names[st] : "?";
}

const char *fy_ui_state_text(fy_ui_state_t st)
{
    return st < FY_UI_NSTATES ? state_texts[st] : "?";
}

int fy_ui_state_parse(const char *name, size_t len)
{
    for (int i = 0; i < FY_UI_NSTATES; i++)
        if (strlen(state_names[i]) == len && memcmp(state_names[i], name, len) == 0)
            return i;
    return -1;
}

static int contains(fy_str_t v, const char *needle, size_t n)
{
    return v.len >= n && memmem(v.ptr, v.len, needle, n) != NULL;
}

static const fy_store_label_t *job_label(const fy_store_group_view_t *g)
{
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (fy_str_eq_mem(g->labels[i].name, FY_STRLIT("job")))
            return &g->labels[i];
    return NULL;
}

static int matches(const fy_ui_opts_t *o, const fy_store_group_view_t *g)
{
    if (o->job != NULL && o->job_len != 0) {
        const fy_store_label_t *job = job_label(g);
        if (job == NULL || !contains(job->value, o->job, o->job_len))
            return 0;
    }
    if (o->filter == NULL || o->filter_len == 0)
        return 1;
    for (uint32_t i = 0; i < g->nlabels; i++) {
        fy_str_t v = g->labels[i].value;
        if (v.len >= o->filter_len && memmem(v.ptr, v.len, o->filter, o->filter_len) != NULL)
            return 1;
    }
    return 0;
}

static void label_badge(fy_buf_t *b, fy_str_t name, fy_str_t value, const char *cls)
{
    fy_buf_printf(b, "<span class=\"badge %s\">", cls);
    esc_str(b, name);
    fy_buf_str(b, "=&#34;");
    esc_str(b, value);
    fy_buf_str(b, "&#34;</span> ");
}

static void render_series(fy_buf_t *b, const fy_store_family_view_t *f, const fy_store_series_view_t *s)
{
    fy_buf_str(b, "<tr><td>");
    uint32_t nl = s->nlabels > FY_UI_ROW_LABELS ? FY_UI_ROW_LABELS : s->nlabels;
    for (uint32_t i = 0; i < nl; i++) {
        fy_str_t v = s->labels[i].value;
        if (v.len > FY_UI_VALUE_BYTES) { /* cut at a UTF-8 character boundary */
            v.len = FY_UI_VALUE_BYTES;
            while (v.len > 0 && ((unsigned char)v.ptr[v.len] & 0xC0) == 0x80)
                v.len--;
        }
        label_badge(b, s->labels[i].name, v, v.len < s->labels[i].value.len ? "lbl cut" : "lbl");
    }
    if (nl < s->nlabels)
        fy_buf_printf(b, "<span class=\"muted trunc\">and %u more labels</span>", (unsigned)(s->nlabels - nl));
    fy_buf_str(b, "</td><td>");
    switch (f->type) {
    case FY_TYPE_SUMMARY:
        fy_buf_str(b, "<table class=\"inner\">");
        for (uint32_t i = 0; i < s->npoints; i++) {
            fy_buf_str(b, "<tr><th>Quantile ");
            fmt_value(b, s->points[i].key);
            fy_buf_str(b, "</th><td>");
            fmt_value(b, s->points[i].value);
            fy_buf_str(b, "</td></tr>");
        }
        fy_buf_printf(b, "<tr><th>Sample Count</th><td>%llu</td></tr><tr><th>Sample Sum</th><td>", (unsigned long long)s->count);
        fmt_value(b, s->value);
        fy_buf_str(b, "</td></tr></table>");
        break;
    case FY_TYPE_HISTOGRAM:
    case FY_TYPE_GAUGE_HISTOGRAM:
        fy_buf_str(b, "<table class=\"inner\">");
        for (uint32_t i = 0; i < s->npoints; i++) {
            fy_buf_str(b, "<tr><th>Sample values &le; ");
            fmt_value(b, s->points[i].key);
            fy_buf_printf(b, "</th><td>%llu</td></tr>", (unsigned long long)s->points[i].count);
        }
        fy_buf_printf(b, "<tr><th>Total sample Count</th><td>%llu</td></tr><tr><th>Sample Sum</th><td>",
                      (unsigned long long)s->count);
        fmt_value(b, s->value);
        fy_buf_str(b, "</td></tr></table>");
        break;
    default:
        fmt_value(b, s->value);
    }
    fy_buf_str(b, "</td></tr>\n");
}

/* Series are listed while the group's HTML is under `limit` bytes of the buffer (the group's first series always;
 * *rows counts the group's rows so far). */
static void render_family(fy_buf_t *b, const fy_store_family_view_t *f, size_t limit, uint32_t *rows)
{
    fy_buf_str(b, "<details class=\"fam\"><summary><b>");
    esc_str(b, f->name);
    fy_buf_str(b, "</b> ");
    if (f->has_help) {
        fy_buf_str(b, "<span class=\"badge help\">");
        esc_str(b, f->help);
        fy_buf_str(b, "</span> ");
    }
    fy_buf_printf(b, "<span class=\"badge type\">%s</span> <span class=\"muted\">last pushed: ",
                  f->type < 6 ? type_names[f->type] : "UNKNOWN");
    fmt_time(b, f->stamp_ns);
    fy_buf_printf(b, " &middot; %u series</span></summary><table class=\"series\">\n", (unsigned)f->nseries);
    uint32_t shown = 0;
    for (; shown < f->nviewed && (*rows == 0 || b->len < limit); shown++, ++*rows)
        render_series(b, f, &f->series[shown]);
    if (shown < f->nseries)
        fy_buf_printf(b,
                      "<tr><td colspan=\"2\" class=\"muted trunc\">%u more series not shown: this group is too "
                      "large for the page; <a href=\"api/v1/metrics\">api/v1/metrics</a> has all of it</td></tr>\n",
                      (unsigned)(f->nseries - shown));
    fy_buf_str(b, "</table></details>\n");
}

/* The state badge: text and colour (the colour alone would say nothing to some readers), with why in its title. */
static void state_badge(fy_buf_t *b, const fy_store_group_view_t *g, fy_ui_state_t st, int64_t now_ns, int64_t grace_ns)
{
    fy_buf_printf(b, "<span class=\"badge st st-%s\" title=\"", state_names[st]);
    switch (st) {
    case FY_UI_FAILED:
        fy_buf_str(b, "the last push failed");
        break;
    case FY_UI_LATE:
        if (g->push_ns == 0)
            fy_buf_str(b, "never pushed successfully");
        else
            fy_buf_printf(b, "last push %.0fs ago; expected every %gs (+%gs grace)", (double)(now_ns - g->push_ns) / 1e9,
                          (double)g->interval_ns / 1e9, (double)grace_ns / 1e9);
        break;
    case FY_UI_EXPIRING:
        fy_buf_printf(b, "deleted in %.0fs unless pushed (TTL %gs)", (double)(g->deadline_ns - now_ns) / 1e9,
                      (double)g->ttl_ns / 1e9);
        break;
    case FY_UI_ALIVE:
        fy_buf_printf(b, "pushed within its interval of %gs (+%gs grace)", (double)g->interval_ns / 1e9, (double)grace_ns / 1e9);
        break;
    default:
        fy_buf_str(b, "no push interval declared (X-Ferry-Interval)");
    }
    fy_buf_printf(b, "\">%s</span> ", state_texts[st]);
}

/* Called by the cursor for one group of the page (its shard locked); ctx is the fy_ui_t. */
static int render_group(void *ctx, const fy_store_group_view_t *g)
{
    fy_ui_t *u = ctx;
    fy_buf_t *b = &u->b;
    const fy_store_label_t *job = job_label(g);
    fy_ui_state_t st = fy_ui_state(g, u->o.now_ns, u->o.grace_ns);
    /* The delete URL: job@base64 and every other label @base64 with a trailing '=' so that empty values work. */
    fy_buf_printf(b, "<details class=\"group\" data-state=\"%s\"><summary data-del=\"metrics/job@base64/", state_names[st]);
    if (job != NULL)
        b64url(b, job->value);
    for (uint32_t i = 0; i < g->nlabels; i++) {
        if (&g->labels[i] == job)
            continue;
        fy_buf_str(b, "/");
        esc_str(b, g->labels[i].name);
        fy_buf_str(b, "@base64/");
        b64url(b, g->labels[i].value);
        fy_buf_str(b, "=");
    }
    /* the button first: floated right at the top of the summary, it stays on the first line when the labels wrap */
    fy_buf_str(b, "\"><button class=\"del\" type=\"button\">Delete Group</button>");
    state_badge(b, g, st, u->o.now_ns, u->o.grace_ns);
    if (job != NULL)
        label_badge(b, job->name, job->value, "job");
    for (uint32_t i = 0; i < g->nlabels; i++)
        if (&g->labels[i] != job)
            label_badge(b, g->labels[i].name, g->labels[i].value,
                        fy_str_eq_mem(g->labels[i].name, FY_STRLIT("instance")) ? "inst" : "lbl");
    if (g->fail_ns > g->push_ns)
        fy_buf_str(b, "<span class=\"badge fail\">Last push failed!</span> ");
    fy_buf_str(b, "<span class=\"muted\">last push: ");
    fmt_time(b, g->push_ns);
    if (g->fail_ns) {
        fy_buf_str(b, " &middot; last failure: ");
        fmt_time(b, g->fail_ns);
    }
    /* expiry and liveness (docs/beyond-pushgateway.md), only for groups that have them */
    if (g->deadline_ns) {
        fy_buf_str(b, " &middot; expires: ");
        fmt_time(b, g->deadline_ns);
    }
    if (g->interval_ns)
        fy_buf_printf(b, " &middot; pushes every %gs", (double)g->interval_ns / 1e9);
    fy_buf_printf(b, " &middot; %u families</span></summary>\n", (unsigned)g->nfamilies);
    size_t limit = b->len + FY_UI_GROUP_BYTES;
    uint32_t rows = 0;
    for (uint32_t i = 0; i < g->nfamilies; i++)
        render_family(b, &g->families[i], limit, &rows);
    fy_buf_str(b, "</details>\n");
    return 0;
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ferry (Pushgateway)</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}"
    "nav{background:#24292f;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}"
    "nav a{color:#ddd;text-decoration:none;cursor:pointer}nav a.on{color:#fff;font-weight:bold}"
    "main{padding:1em}details{background:#fff;border:1px solid #ddd;border-radius:4px;margin:.3em 0;padding:.3em .6em}"
    "details.fam{margin-left:1.5em}summary{cursor:pointer}"
    ".badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:.85em;background:#e1ecf4}"
    ".job{background:#ffe08a}.inst{background:#b6d4fe}.help{background:#eee}.type{background:#c6efce}"
    ".fail{background:#d9534f;color:#fff}.muted{color:#666;font-size:.85em}"
    /* state colours, each with its text in the badge; white or black text at a contrast ratio of 4.5 or more */
    ".st{font-weight:bold;min-width:6.5em;text-align:center}.st-failed{background:#b52a26;color:#fff}"
    ".st-late{background:#f0ad4e;color:#000}.st-expiring{background:#6f42c1;color:#fff}"
    ".st-alive{background:#1e7e34;color:#fff}.st-undeclared{background:#e2e3e5;color:#000}"
    "table.series{border-collapse:collapse;margin:.4em 0 .4em 1.5em}table.series td{border-top:1px solid #eee;"
    "padding:.2em .6em;vertical-align:top}table.inner th{text-align:left;font-weight:normal;padding-right:1em}"
    "button.del{float:right;margin-left:.5em;background:#d9534f;color:#fff;border:0;border-radius:3px;cursor:pointer}"
    "button.delall{background:#d9534f;color:#fff;border:0;border-radius:3px;padding:.3em .8em;cursor:pointer}"
    "button:disabled{opacity:.5;cursor:default}.pager a{margin-right:.8em}.cut::after{content:'\\2026'}"
    "table.kv td,table.kv th{text-align:left;padding:.15em .8em;border-bottom:1px solid #eee}"
    "</style></head><body>\n";

static const char page_script[] =
    "<script>\n"
    /* fetch() refuses a URL with credentials, and a relative one resolved against a page opened as
     * http://user:pass@host/ has them: resolve it here without them (the browser still authenticates the request) */
    "function rel(p){const u=new URL(p,document.baseURI);u.username='';u.password='';return u.href;}\n"
    "function tab(n){for(const t of ['metrics','status']){document.getElementById(t).hidden=t!==n;"
    "document.getElementById('tab-'+t).className=t===n?'on':'';}}\n"
    "document.addEventListener('click',function(e){const b=e.target.closest('button.del');if(!b)return;"
    "e.preventDefault();const s=b.closest('summary');const d=s.parentElement;"
    "if(!confirm('Do you really want to delete all metrics of this group?'))return;"
    "fetch(rel(s.dataset.del),{method:'DELETE'}).then(function(r){if(!r.ok)throw new Error(r.status+' '+r.statusText);"
    "d.remove();const c=document.getElementById('del-all-counter');if(c)c.textContent=Math.max(0,+c.textContent-1);})"
    ".catch(function(err){alert('Deleting metric group failed: '+err);});});\n"
    "function delAll(){if(!confirm('Do you really want to delete all metrics from all metric groups?'))return;"
    "fetch(rel('api/v1/admin/wipe'),{method:'PUT'}).then(function(r){if(!r.ok)throw new Error(r.status+' '+r.statusText);"
    "for(const g of document.querySelectorAll('details.group'))g.remove();"
    "document.getElementById('del-all-counter').textContent='0';})"
    ".catch(function(err){alert('Deleting all metric groups failed: '+err);});}\n"
    "</script>\n";

static void kv_table(fy_buf_t *b, const char *title, const fy_ui_kv_t *kv, size_t n)
{
    fy_buf_printf(b, "<h3>%s</h3><table class=\"kv\">", title);
    for (size_t i = 0; i < n; i++) {
        fy_buf_str(b, "<tr><th>");
        fy_html_escape(b, kv[i].key, strlen(kv[i].key));
        fy_buf_str(b, "</th><td>");
        fy_html_escape(b, kv[i].value, strlen(kv[i].value));
        fy_buf_str(b, "</td></tr>");
    }
    fy_buf_str(b, "</table>\n");
}

void fy_ui_pager(uint64_t total, unsigned page, unsigned limit, fy_ui_pager_t *out)
{
    if (limit == 0)
        limit = FY_UI_DEFAULT_LIMIT;
    if (limit > FY_UI_MAX_LIMIT)
        limit = FY_UI_MAX_LIMIT;
    out->limit = limit;
    out->total = total;
    out->first = (uint64_t)page * limit; /* 64 bits: ?page= comes from the URL and must not wrap to an early page */
    out->end = out->first >= total ? out->first : (total - out->first < limit ? total : out->first + limit);
    out->pages = (total + limit - 1) / limit;
    out->has_prev = page > 0;
    out->has_next = out->first + limit < total; /* then page + 1 cannot wrap */
    out->shown = total > limit || page > 0;
}

static void url_param(fy_buf_t *b, const char *name, const char *v, size_t n)
{
    if (v == NULL || n == 0)
        return;
    fy_buf_printf(b, "&amp;%s=", name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
            fy_buf_add(b, (const char *)&c, 1);
        else
            fy_buf_printf(b, "%%%02X", c);
    }
}

static const char *const sort_names[] = {"job", "state", "push"};

/* A link to another page of the same list: the page size (when given), the filters and the order are kept. */
static void page_link(fy_buf_t *b, const fy_ui_opts_t *o, unsigned limit, uint64_t page, const char *label)
{
    fy_buf_printf(b, "<a href=\"?page=%llu", (unsigned long long)page);
    if (o->page_size != 0 && limit != FY_UI_DEFAULT_LIMIT) /* an explicit ?limit= is kept from page to page */
        fy_buf_printf(b, "&amp;limit=%u", limit);
    url_param(b, "q", o->filter, o->filter_len);
    url_param(b, "job", o->job, o->job_len);
    if (o->state > 0 && o->state <= FY_UI_NSTATES)
        fy_buf_printf(b, "&amp;state=%s", state_names[o->state - 1]);
    if (o->sort > 0 && o->sort <= FY_UI_SORT_PUSH)
        fy_buf_printf(b, "&amp;sort=%s", sort_names[o->sort]);
    fy_buf_printf(b, "\">%s</a>", label);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The page in parts. */

enum { PH_HEAD, PH_GROUPS, PH_TAIL, PH_DONE };

/*
 * Reads one group at open (its shard locked, no families). A group that passes the label and job filters is counted
 * in its state; one that passes the state filter as well becomes a row, with its sort key appended to u->keys: the
 * job's value, then the other grouping labels' names and values in name order, each followed by a NUL, so that
 * comparing keys bytewise (shorter first) orders by job, then by the other labels, and a value that is a prefix of
 * another comes first.
 */
static int open_cb(void *ctx, const fy_store_group_view_t *g)
{
    fy_ui_t *u = ctx;
    if (!matches(&u->o, g))
        return 0;
    fy_ui_state_t st = fy_ui_state(g, u->o.now_ns, u->o.grace_ns);
    u->counts[st]++;
    if (u->o.state > 0 && (int)st != u->o.state - 1)
        return 0;
    row_t *r = &u->match[u->nmatch++];
    r->state = (uint8_t)st;
    r->push_ns = g->push_ns;
    r->key_off = u->keys.len;
    const fy_store_label_t *job = job_label(g);
    if (job != NULL)
        fy_buf_add(&u->keys, job->value.ptr, job->value.len);
    fy_buf_add(&u->keys, "", 1);
    for (uint32_t i = 0; i < g->nlabels; i++) {
        if (&g->labels[i] == job)
            continue;
        fy_buf_add(&u->keys, g->labels[i].name.ptr, g->labels[i].name.len);
        fy_buf_add(&u->keys, "", 1);
        fy_buf_add(&u->keys, g->labels[i].value.ptr, g->labels[i].value.len);
        fy_buf_add(&u->keys, "", 1);
    }
    r->key_len = (uint32_t)(u->keys.len - r->key_off);
    return 0;
}

typedef struct st_sort_ctx_t {
    const char *keys;
    int sort;
} sort_ctx_t;

static int row_cmp(const void *x, const void *y, void *ctx)
{
    const row_t *a = x, *b = y;
    const sort_ctx_t *c = ctx;
    if (c->sort == FY_UI_SORT_STATE && a->state != b->state)
        return a->state < b->state ? -1 : 1;
    if (c->sort == FY_UI_SORT_PUSH && a->push_ns != b->push_ns)
        return a->push_ns < b->push_ns ? -1 : 1;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int r = memcmp(c->keys + a->key_off, c->keys + b->key_off, n);
    if (r != 0)
        return r;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx; /* distinct groups have distinct keys; kept total all the same */
}

static char *copy_mem(const char *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c != NULL && n)
        memcpy(c, p, n);
    return c;
}

fy_ui_t *fy_ui_open(fy_store_t *store, const fy_ui_opts_t *o)
{
    fy_ui_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->o = *o;
    u->store = store;
    if (u->o.now_ns == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* push times are Unix times */
        u->o.now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    if (o->filter && o->filter_len) {
        if ((u->filter = copy_mem(o->filter, o->filter_len)) == NULL) {
            free(u);
            return NULL;
        }
        u->o.filter = u->filter;
    }
    if (o->job && o->job_len) {
        if ((u->job = copy_mem(o->job, o->job_len)) == NULL) {
            free(u->filter);
            free(u);
            return NULL;
        }
        u->o.job = u->job;
    }
    u->cur = fy_store_cursor_open(store);
    size_t n = fy_store_cursor_count(u->cur);
    if ((u->match = malloc((n + 1) * sizeof(*u->match))) == NULL) {
        fy_ui_close(u);
        return NULL;
    }
    /* One pass over the groups' labels and times (views without families), then a sort of the rows that passed. */
    for (size_t i = 0; i < n; i++) {
        size_t before = u->nmatch;
        fy_store_cursor_view(u->cur, i, 0, open_cb, u);
        if (u->nmatch > before)
            u->match[before].idx = (uint32_t)i;
    }
    if (u->keys.oom) {
        fy_ui_close(u);
        return NULL;
    }
    sort_ctx_t sc = {u->keys.p, u->o.sort};
    if (u->nmatch > 1)
        qsort_r(u->match, u->nmatch, sizeof(*u->match), row_cmp, &sc);
    fy_ui_pager(u->nmatch, o->page, o->page_size, &u->pg);
    u->next = u->pg.first;
    return u;
}

void fy_ui_close(fy_ui_t *u)
{
    if (u == NULL)
        return;
    fy_store_cursor_close(u->cur);
    free(u->match);
    free(u->filter);
    free(u->job);
    fy_buf_free(&u->keys);
    fy_buf_free(&u->b);
    free(u);
}

static void write_head(fy_ui_t *u)
{
    const fy_ui_opts_t *o = &u->o;
    fy_buf_t *out = &u->b;
    fy_store_stats_t st;
    fy_store_stats(u->store, &st);
    fy_buf_str(out, page_head);
    fy_buf_printf(out,
                  "<nav><b>Ferry</b><a id=\"tab-metrics\" class=\"%s\" onclick=\"tab('metrics')\">Metrics</a>"
                  "<a id=\"tab-status\" class=\"%s\" onclick=\"tab('status')\">Status</a>"
                  "<a href=\"static/docs/\">Help</a></nav>\n",
                  o->status_tab ? "" : "on", o->status_tab ? "on" : "");
    fy_buf_printf(out, "<main><section id=\"metrics\"%s>\n", o->status_tab ? " hidden" : "");
    fy_buf_str(out, "<form method=\"get\" style=\"margin-bottom:.6em\"><input name=\"q\" aria-label=\"label value contains\" "
                    "placeholder=\"filter by label value\" value=\"");
    if (o->filter)
        fy_html_escape(out, o->filter, o->filter_len);
    fy_buf_str(out, "\"> <input name=\"job\" aria-label=\"job contains\" placeholder=\"job contains\" value=\"");
    if (o->job)
        fy_html_escape(out, o->job, o->job_len);
    /* the state choice shows how many groups are in each state (among those the other filters keep) */
    uint64_t all = 0;
    for (int i = 0; i < FY_UI_NSTATES; i++)
        all += u->counts[i];
    fy_buf_printf(out, "\"> <select name=\"state\" aria-label=\"state\"><option value=\"\">all states (%llu)</option>",
                  (unsigned long long)all);
    for (int i = 0; i < FY_UI_NSTATES; i++)
        fy_buf_printf(out, "<option value=\"%s\"%s>%s (%llu)</option>", state_names[i], o->state == i + 1 ? " selected" : "",
                      state_texts[i], (unsigned long long)u->counts[i]);
    static const char *const sort_texts[] = {"sort by job", "sort by state", "sort by last push (oldest first)"};
    fy_buf_str(out, "</select> <select name=\"sort\" aria-label=\"order\">");
    for (int i = 0; i <= FY_UI_SORT_PUSH; i++)
        fy_buf_printf(out, "<option value=\"%s\"%s>%s</option>", sort_names[i], o->sort == i ? " selected" : "", sort_texts[i]);
    fy_buf_str(out, "</select> ");
    if (o->page_size != 0 && u->pg.limit != FY_UI_DEFAULT_LIMIT)
        fy_buf_printf(out, "<input type=\"hidden\" name=\"limit\" value=\"%u\">", u->pg.limit);
    fy_buf_str(out, "<button type=\"submit\">Filter</button> ");
    if (o->admin_api)
        fy_buf_printf(out,
                      "<button class=\"delall\" type=\"button\" onclick=\"delAll()\"%s>Delete All "
                      "<span id=\"del-all-counter\">%llu</span> Groups</button>",
                      st.groups ? "" : " disabled", (unsigned long long)st.groups);
    fy_buf_str(out, "</form>\n");
    const fy_ui_pager_t *pg = &u->pg;
    fy_buf_printf(out, "<p class=\"muted pager\">%llu groups", (unsigned long long)pg->total);
    if (pg->shown) {
        int any = pg->end > pg->first;
        fy_buf_printf(out, " &middot; showing %llu&ndash;%llu &middot; ", any ? (unsigned long long)pg->first + 1 : 0ull,
                      any ? (unsigned long long)pg->end : 0ull);
        if (pg->has_prev)
            page_link(out, o, pg->limit, (uint64_t)o->page - 1, "&larr; previous");
        if (pg->has_next)
            page_link(out, o, pg->limit, (uint64_t)o->page + 1, "next &rarr;");
    }
    fy_buf_str(out, "</p>\n");
}

static void write_tail(fy_ui_t *u)
{
    const fy_ui_opts_t *o = &u->o;
    fy_buf_t *out = &u->b;
    fy_store_stats_t st;
    fy_store_stats(u->store, &st);
    fy_buf_str(out, "</section>\n");
    fy_buf_printf(out, "<section id=\"status\"%s><h3>Runtime Information</h3><table class=\"kv\"><tr><th>Started</th><td>",
                  o->status_tab ? "" : " hidden");
    if (o->start_time)
        fy_html_escape(out, o->start_time, strlen(o->start_time));
    fy_buf_printf(out, "</td></tr><tr><th>Groups</th><td>%llu</td></tr><tr><th>Series</th><td>%llu</td></tr></table>\n",
                  (unsigned long long)st.groups, (unsigned long long)st.series);
    if (o->cluster_rows[0] != '\0')
        fy_buf_printf(out, "<h3>Cluster</h3><table class=\"kv\" id=\"cluster\">%s</table>\n", o->cluster_rows);
    kv_table(out, "Build Information", o->build, o->nbuild);
    kv_table(out, "Startup Flags", o->flags, o->nflags);
    fy_buf_str(out, "</section></main>\n");
    fy_buf_str(out, page_script);
    fy_buf_str(out, "</body></html>\n");
}

int fy_ui_next(fy_ui_t *u, size_t budget, const char **p, size_t *n)
{
    u->b.len = 0;
    if (u->b.p)
        u->b.p[0] = '\0';
    if (budget == 0)
        budget = 1;
    if (u->phase == PH_HEAD) {
        write_head(u);
        u->phase = PH_GROUPS;
    }
    while (u->phase == PH_GROUPS && u->b.len < budget) {
        if (u->next >= u->pg.end) {
            u->phase = PH_TAIL;
            break;
        }
        /* a group that went away since the request started is left out */
        fy_store_cursor_view(u->cur, u->match[u->next++].idx, FY_UI_GROUP_LABELS, render_group, u);
    }
    if (u->phase == PH_TAIL && u->b.len < budget) {
        write_tail(u);
        u->phase = PH_DONE;
    }
    *p = u->b.p ? u->b.p : "";
    *n = u->b.len;
    return u->phase != PH_DONE;
}

int fy_ui_failed(const fy_ui_t *u)
{
    return u->b.oom;
}

int fy_ui_render(fy_store_t *store, const fy_ui_opts_t *o, fy_buf_t *out)
{
    fy_ui_t *u = fy_ui_open(store, o);
    if (u == NULL)
        return -1;
    const char *p;
    size_t n;
    int more, oom = 0;
    do {
        more = fy_ui_next(u, FY_UI_PART, &p, &n);
        oom |= fy_ui_failed(u);
        fy_buf_add(out, p, n);
    } while (more);
    fy_ui_close(u);
    return oom || out->oom ? -1 : 0;
}
