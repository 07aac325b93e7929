/*
 * bulk.c: the bulk-delete selection (bulk.h).
 */
#include "bulk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "grow.h"
#include "url.h"

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
        if (fy_grow((void **)&sel.m, &cap, sel.n + 1, sizeof(*sel.m)) != 0)
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
