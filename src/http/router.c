/*
 * router.c: ServeMux + httprouter behaviour (see router.h). httprouter's radix tree is not rebuilt here; the
 * registered patterns are matched one by one, and the places where the tree's shape shows through (its trailing-
 * slash recommendation for "P/metrics/job/") are expressed as rules over the patterns.
 */
#include "router.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------------------- */
/* Configuration */

void fy_route_prefix_normalise(const char *route_prefix, const char *external_path, char *out, size_t cap)
{
    const char *p = route_prefix[0] != '\0' ? route_prefix : external_path;
    if (strcmp(p, "/") == 0 || p[0] == '\0') {
        /* 1.5.1: "/" means none; an empty value stays empty */
        out[0] = '\0';
        return;
    }
    /* "/" + strings.Trim(prefix, "/") */
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    snprintf(out, cap, "/%.*s", (int)n, p);
}

/* Go's path.Clean (lexical: "//", "/./", "/x/../"), for rooted paths; writes to out (>= len + 1 bytes). */
static size_t path_clean(const char *in, size_t len, char *out)
{
    size_t r = 0, w = 0;
    /* every path reaching here is rooted: cleanPath prepends '/' */
    out[w++] = '/';
    r = 1;
    while (r < len) {
        if (in[r] == '/') {
            r++;
        } else if (in[r] == '.' && (r + 1 == len || in[r + 1] == '/')) {
            r++;
        } else if (in[r] == '.' && in[r + 1] == '.' && (r + 2 == len || in[r + 2] == '/')) {
            r += 2;
            if (w > 1) {
                w--;
                while (w > 1 && out[w - 1] != '/')
                    w--;
                if (w > 1)
                    w--; /* drop the separator too, path.Clean has no trailing slash */
            }
        } else {
            if (w > 1)
                out[w++] = '/';
            while (r < len && in[r] != '/')
                out[w++] = in[r++];
        }
    }
    return w;
}

static void add_route(fy_router_t *r, const char *method, const char *a, const char *b, fy_handler_id_t h, int b64, int api)
{
    assert(r->nroutes < FY_ROUTER_MAX_ROUTES);
    fy_route_def_t *d = &r->routes[r->nroutes++];
    d->method = method;
    snprintf(d->pattern, sizeof(d->pattern), "%s%s", a, b);
    d->handler = h;
    d->job_b64 = b64;
    d->api = api;
}

void fy_router_init(fy_router_t *r, const char *route_prefix, const char *external_path, const char *telemetry_path,
                    int enable_admin, int enable_lifecycle)
{
    memset(r, 0, sizeof(*r));
    fy_route_prefix_normalise(route_prefix, external_path, r->prefix, sizeof(r->prefix));
    r->enable_admin = enable_admin;
    r->enable_lifecycle = enable_lifecycle;

    /* path.Join(prefix, telemetry): joined with '/', then cleaned; a result without a leading '/' would make
     * httprouter panic at start-up, Ferry roots it instead */
    char joined[1024];
    if (r->prefix[0] == '\0' && telemetry_path[0] == '\0')
        joined[0] = '\0';
    else
        snprintf(joined, sizeof(joined), "/%s/%s", r->prefix, telemetry_path);
    size_t n = path_clean(joined, strlen(joined), r->telemetry);
    r->telemetry[n] = '\0';
    snprintf(r->api_root, sizeof(r->api_root), "%s/api/v1", r->prefix);

    char P[sizeof(r->prefix)], T[sizeof(r->telemetry)];
    memcpy(P, r->prefix, sizeof(P));
    memcpy(T, r->telemetry, sizeof(T));
    add_route(r, "GET", P, "/-/healthy", FY_H_HEALTHY, 0, 0);
    add_route(r, "GET", P, "/-/ready", FY_H_READY, 0, 0);
    add_route(r, "GET", T, "", FY_H_SCRAPE, 0, 0);
    for (int b64 = 0; b64 <= 1; b64++) {
        const char *job = b64 ? "/metrics/job@base64/:job" : "/metrics/job/:job";
        char with_labels[64];
        snprintf(with_labels, sizeof(with_labels), "%s/*labels", job);
        add_route(r, "PUT", P, with_labels, FY_H_PUSH, b64, 0);
        add_route(r, "POST", P, with_labels, FY_H_PUSH, b64, 0);
        add_route(r, "DELETE", P, with_labels, FY_H_DELETE, b64, 0);
        add_route(r, "PUT", P, job, FY_H_PUSH, b64, 0);
        add_route(r, "POST", P, job, FY_H_PUSH, b64, 0);
        add_route(r, "DELETE", P, job, FY_H_DELETE, b64, 0);
    }
    add_route(r, "GET", P, "/static/*filepath", FY_H_STATIC, 0, 0);
    add_route(r, "GET", P, "/status", FY_H_UI, 0, 0);
    add_route(r, "GET", P, "/", FY_H_UI, 0, 0);
    add_route(r, "PUT", P, "/-/quit", FY_H_QUIT, 0, 0);
    add_route(r, "POST", P, "/-/quit", FY_H_QUIT, 0, 0);
    add_route(r, "GET", "", "/-/quit", FY_H_QUIT_GET, 0, 0);
    if (enable_lifecycle) { /* without it /-/reload stays the reference's 404 (it has no such route at all) */
        add_route(r, "PUT", P, "/-/reload", FY_H_RELOAD, 0, 0);
        add_route(r, "POST", P, "/-/reload", FY_H_RELOAD, 0, 0);
    }

    add_route(r, "OPTIONS", "", "/*path", FY_H_API_OPTIONS, 0, 1);
    add_route(r, "GET", "", "/metrics", FY_H_API_METRICS, 0, 1);
    add_route(r, "GET", "", "/status", FY_H_API_STATUS, 0, 1);
    if (enable_admin) {
        add_route(r, "PUT", "", "/admin/wipe", FY_H_API_WIPE, 0, 1);
        add_route(r, "DELETE", "", "/admin/groups", FY_H_API_GROUPS_DELETE, 0, 1);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Pattern matching */

typedef struct st_match_t {
    const char *param, *rest; /* ':' parameter and catch-all */
    size_t param_len, rest_len;
    char *fixed; /* case-insensitive mode: the path with the pattern's case written here */
    size_t fixed_len;
} match_t;

static int match(const char *pat, const char *path, size_t len, int ci, match_t *m)
{
    size_t i = 0, j = 0;
    m->param = m->rest = NULL;
    m->param_len = m->rest_len = 0;
    m->fixed_len = 0;
    while (pat[i] != '\0') {
        if (pat[i] == ':') {
            size_t start = j;
            while (j < len && path[j] != '/')
                j++;
            if (j == start)
                return 0;
            m->param = path + start;
            m->param_len = j - start;
            if (m->fixed != NULL) {
                memcpy(m->fixed + m->fixed_len, path + start, j - start);
                m->fixed_len += j - start;
            }
            while (pat[i] != '\0' && pat[i] != '/')
                i++;
        } else if (pat[i] == '/' && pat[i + 1] == '*') {
            if (j >= len || path[j] != '/')
                return 0;
            m->rest = path + j;
            m->rest_len = len - j;
            if (m->fixed != NULL) {
                memcpy(m->fixed + m->fixed_len, path + j, len - j);
                m->fixed_len += len - j;
            }
            return 1;
        } else {
            if (j >= len)
                return 0;
            if (ci ? tolower((unsigned char)pat[i]) != tolower((unsigned char)path[j]) : pat[i] != path[j])
                return 0;
            if (m->fixed != NULL)
                m->fixed[m->fixed_len++] = pat[i];
            i++;
            j++;
        }
    }
    return j == len;
}

static const fy_route_def_t *lookup(const fy_router_t *r, int api, const char *method, const char *path, size_t len, int ci,
                                    match_t *m)
{
    for (size_t k = 0; k < r->nroutes; k++) {
        const fy_route_def_t *d = &r->routes[k];
        if (d->api == api && strcmp(d->method, method) == 0 && match(d->pattern, path, len, ci, m))
            return d;
    }
    return NULL;
}

static int has_tree(const fy_router_t *r, int api, const char *method)
{
    for (size_t k = 0; k < r->nroutes; k++)
        if (r->routes[k].api == api && strcmp(r->routes[k].method, method) == 0)
            return 1;
    return 0;
}

/* httprouter recommends dropping a trailing slash at a tree node that is exactly "/" and has a parameter child,
 * whether or not the shorter path exists: "PUT /metrics/job/" -> 307 "/metrics/job" (itself a 404). The node is
 * exactly "/" when another pattern forks off right before that slash ("/metrics/job@base64/..."). */
static int tsr_param_quirk(const fy_router_t *r, int api, const char *method, const char *path, size_t len)
{
    int param_child = 0, fork = 0;
    if (len < 2 || path[len - 1] != '/')
        return 0;
    for (size_t k = 0; k < r->nroutes; k++) {
        const fy_route_def_t *d = &r->routes[k];
        if (d->api != api || strcmp(d->method, method) != 0 || strncmp(d->pattern, path, len - 1) != 0)
            continue;
        char next = d->pattern[len - 1];
        if (next == '/' && d->pattern[len] == ':')
            param_child = 1;
        else if (next != '/')
            fork = 1;
    }
    return param_child && fork;
}

static const char *const methods[] = {"DELETE", "GET", "OPTIONS", "POST", "PUT"}; /* sorted: Allow order */

static int allowed(const fy_router_t *r, int api, const char *path, size_t len, const char *req_method, char *out)
{
    match_t m = {0};
    size_t n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
        if (strcmp(methods[k], req_method) == 0 || strcmp(methods[k], "OPTIONS") == 0)
            continue;
        if (lookup(r, api, methods[k], path, len, 0, &m) != NULL)
            n++;
    }
    if (n == 0)
        return 0;
    for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
        int in = strcmp(methods[k], "OPTIONS") == 0 ||
                 (strcmp(methods[k], req_method) != 0 && lookup(r, api, methods[k], path, len, 0, &m) != NULL);
        if (in) {
            if (out[0] != '\0')
                strcat(out, ", ");
            strcat(out, methods[k]);
        }
    }
    return 1;
}

/* shouldEscape(c, encodePath) */
static int path_keeps(unsigned char c)
{
    return isalnum(c) || strchr("-_.~$&+,/:;=@", c) != NULL;
}

static size_t path_escape(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c != '\0' && path_keeps(c)) {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        }
    }
    return w;
}

static void set_redirect(fy_route_t *out, int status, char *loc, const char *path, size_t len, const char *query, size_t query_len,
                         int with_query)
{
    size_t n = path_escape(path, len, loc);
    if (with_query) {
        loc[n++] = '?';
        memcpy(loc + n, query, query_len);
        n += query_len;
    }
    out->kind = FY_ROUTE_REDIRECT;
    out->status = status;
    out->location = loc;
    out->location_len = n;
}

size_t fy_route_redirect_body(const fy_route_t *rt, char *out, size_t cap)
{
    size_t w = 0;
#define PUT(s, n)                                                                                                                  \
    do {                                                                                                                           \
        size_t n_ = (n);                                                                                                           \
        if (w + n_ < cap) {                                                                                                        \
            memcpy(out + w, (s), n_);                                                                                              \
            w += n_;                                                                                                               \
        }                                                                                                                          \
    } while (0)
    PUT("<a href=\"", 9);
    for (size_t i = 0; i < rt->location_len; i++) {
        switch (rt->location[i]) {
        case '&':
            PUT("&amp;", 5);
            break;
        case '<':
            PUT("&lt;", 4);
            break;
        case '>':
            PUT("&gt;", 4);
            break;
        case '"':
            PUT("&#34;", 5);
            break;
        case '\'':
            PUT("&#39;", 5);
            break;
        default:
            PUT(&rt->location[i], 1);
            break;
        }
    }
    const char *text = rt->status == 301 ? "Moved Permanently" : "Temporary Redirect";
    PUT("\">", 2);
    PUT(text, strlen(text));
    PUT("</a>.\n\n", 7);
#undef PUT
    return w;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Dispatch */

/* One httprouter.Router.ServeHTTP. path is clean and decoded; for the API router it is relative to P/api/v1. */
static void serve_router(const fy_router_t *r, int api, const char *method, const char *path, size_t len, const char *query,
                         size_t query_len, int has_query, char *scratch, fy_route_t *out)
{
    match_t m = {0};
    const fy_route_def_t *d;

    if (has_tree(r, api, method)) {
        if ((d = lookup(r, api, method, path, len, 0, &m)) != NULL) {
            out->kind = FY_ROUTE_HANDLER;
            out->handler = d->handler;
            out->job_b64 = d->job_b64;
            if (d->handler == FY_H_STATIC) {
                out->param = m.rest;
                out->param_len = m.rest_len;
            } else {
                out->job = m.param;
                out->job_len = m.param_len;
                out->labels = m.rest;
                out->labels_len = m.rest_len;
            }
            return;
        }
        if (strcmp(method, "CONNECT") != 0 && !(len == 1 && path[0] == '/')) {
            int code = strcmp(method, "GET") == 0 ? 301 : 307;
            /* 1. trailing-slash redirect */
            char *alt = scratch;
            size_t alt_len;
            if (path[len - 1] == '/') {
                alt_len = len - 1;
                memcpy(alt, path, alt_len);
            } else {
                memcpy(alt, path, len);
                alt[len] = '/';
                alt_len = len + 1;
            }
            if (lookup(r, api, method, alt, alt_len, 0, &m) != NULL || tsr_param_quirk(r, api, method, path, len)) {
                set_redirect(out, code, scratch + alt_len, alt, alt_len, query, query_len, has_query);
                return;
            }
            /* 2. case-insensitive fixed path, trailing slash fixed as well (the last matching call wrote fixed) */
            char *fixed = scratch + alt_len + 1;
            match_t cm = {.fixed = fixed};
            if (lookup(r, api, method, path, len, 1, &cm) != NULL || lookup(r, api, method, alt, alt_len, 1, &cm) != NULL) {
                set_redirect(out, code, fixed + cm.fixed_len, fixed, cm.fixed_len, query, query_len, has_query);
                return;
            }
        }
    }
    if (strcmp(method, "OPTIONS") == 0) {
        if (allowed(r, api, path, len, "OPTIONS", out->allow)) {
            out->kind = FY_ROUTE_OPTIONS;
            return;
        }
    } else if (allowed(r, api, path, len, method, out->allow)) {
        out->kind = FY_ROUTE_NOT_ALLOWED;
        return;
    }
    out->kind = FY_ROUTE_NOT_FOUND;
}

void fy_route(const fy_router_t *r, const char *method, size_t method_len, const char *target, size_t target_len, char *buf,
              fy_route_t *out)
{
    char m[16];
    memset(out, 0, sizeof(*out));
    size_t ml = method_len < sizeof(m) ? method_len : sizeof(m) - 1; /* longer ones match no route's method */
    memcpy(m, method, ml);
    m[ml] = '\0';
    out->is_get = strcmp(m, "GET") == 0;
    out->is_head = strcmp(m, "HEAD") == 0;

    if (target_len == 1 && target[0] == '*') {
        out->kind = FY_ROUTE_STAR;
        out->status = strcmp(m, "OPTIONS") == 0 ? 200 : 400;
        return;
    }
    const char *q = memchr(target, '?', target_len);
    size_t raw_len = q != NULL ? (size_t)(q - target) : target_len;
    const char *query = q != NULL ? q + 1 : "";
    size_t query_len = q != NULL ? target_len - raw_len - 1 : 0;
    if (raw_len == 0 || target[0] != '/') {
        out->kind = FY_ROUTE_BAD_REQUEST;
        return;
    }

    /* buf layout: decoded [len] | cleaned [len + 1] | scratch for redirects and case fixing */
    char *decoded = buf;
    long dl = fy_url_unescape(target, raw_len, decoded, 0); /* url.PathUnescape: '+' kept */
    if (dl < 0) {
        out->kind = FY_ROUTE_BAD_REQUEST;
        return;
    }
    size_t len = (size_t)dl;
    char *clean = decoded + len;
    size_t clen = path_clean(decoded, len, clean);
    if (decoded[len - 1] == '/' && clen > 1)
        clean[clen++] = '/';
    char *scratch = clean + clen + 1;

    /* ServeMux: "P/api/v1" -> "P/api/v1/" (the registered subtree), then unclean paths -> their clean form */
    size_t api_len = strlen(r->api_root);
    if (clen == api_len && memcmp(clean, r->api_root, api_len) == 0) {
        memcpy(scratch, clean, clen);
        scratch[clen] = '/';
        set_redirect(out, 301, scratch + clen + 1, scratch, clen + 1, query, query_len, query_len > 0);
        return;
    }
    if (clen != len || memcmp(clean, decoded, len) != 0) {
        set_redirect(out, 301, scratch, clean, clen, query, query_len, query_len > 0);
        return;
    }
    if (clen > api_len && memcmp(clean, r->api_root, api_len) == 0 && clean[api_len] == '/') {
        serve_router(r, 1, m, clean + api_len, clen - api_len, query, query_len, q != NULL, scratch, out);
        return;
    }
    out->via_decoder = 1;
    serve_router(r, 0, m, clean, clen, query, query_len, q != NULL, scratch, out);
}
