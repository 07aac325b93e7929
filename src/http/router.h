/*
 * router.h: request dispatch reproducing the Pushgateway 1.5.1 stack byte for byte: Go's http.ServeMux (path
 * cleaning and its 301s, the P/api/v1/ subtree), then httprouter v1.3.0 for the main and the API routers (trailing-
 * slash and case-insensitive redirects, 404, 405 with Allow, automatic OPTIONS). Pure: no I/O, no allocation.
 */
#ifndef FY_ROUTER_H
#define FY_ROUTER_H

#include "url.h"

#include <stddef.h>

typedef enum en_fy_handler_id_t {
    FY_H_NONE = 0,
    FY_H_HEALTHY,           /* GET P/-/healthy */
    FY_H_READY,             /* GET P/-/ready */
    FY_H_SCRAPE,            /* GET path.Join(P, telemetry path) */
    FY_H_PUSH,              /* PUT/POST P/metrics/job[@base64]/:job[/&labels] (& = *) */
    FY_H_DELETE,            /* DELETE, same paths */
    FY_H_STATIC,            /* GET P/static/&filepath (& = *); param = filepath (leading '/') */
    FY_H_UI,                /* GET P/ and P/status */
    FY_H_QUIT,              /* PUT/POST P/-/quit */
    FY_H_QUIT_GET,          /* GET /-/quit, never prefixed: 405 "Only POST or PUT requests allowed." */
    FY_H_RELOAD,            /* PUT/POST P/-/reload, only with --web.enable-lifecycle (Ferry's; 1.5.1 has none: 404) */
    FY_H_API_METRICS,       /* GET P/api/v1/metrics */
    FY_H_API_STATUS,        /* GET P/api/v1/status */
    FY_H_API_OPTIONS,       /* OPTIONS P/api/v1/<anything>: CORS preflight */
    FY_H_API_WIPE,          /* PUT P/api/v1/admin/wipe, only with --web.enable-admin-api */
    FY_H_API_GROUPS_DELETE, /* DELETE P/api/v1/admin/groups (Ferry's bulk delete), only with --web.enable-admin-api */
} fy_handler_id_t;

typedef enum en_fy_route_kind_t {
    FY_ROUTE_HANDLER = 0,
    FY_ROUTE_REDIRECT,    /* status 301 or 307, location; body only for GET (fy_route_redirect_body) */
    FY_ROUTE_NOT_FOUND,   /* 404 page not found */
    FY_ROUTE_NOT_ALLOWED, /* 405 with allow */
    FY_ROUTE_OPTIONS,     /* 200, allow, empty body (main router's automatic OPTIONS) */
    FY_ROUTE_BAD_REQUEST, /* the request target does not parse (Go: "400 Bad Request", connection closed) */
    FY_ROUTE_STAR,        /* "*" target: 200 for OPTIONS, else 400, both with empty bodies */
} fy_route_kind_t;

#define FY_ROUTER_MAX_ROUTES 32
#define FY_ROUTER_MAX_PATTERN 640

/* One httprouter registration. ':' starts a one-segment parameter, "/" + "*" a catch-all (the '/' is captured too). */
typedef struct st_fy_route_def_t {
    const char *method;
    char pattern[FY_ROUTER_MAX_PATTERN];
    fy_handler_id_t handler;
    int job_b64;
    int api; /* registered on the API router, whose paths are relative to P/api/v1 */
} fy_route_def_t;

typedef struct st_fy_router_t {
    char prefix[256];    /* normalised route prefix: "" or "/x" */
    char telemetry[512]; /* path.Join(prefix, telemetry path), always starting with '/' */
    char api_root[300];  /* prefix + "/api/v1": ServeMux's subtree pattern without its final '/' */
    int enable_admin;
    int enable_lifecycle;
    size_t nroutes;
    fy_route_def_t routes[FY_ROUTER_MAX_ROUTES];
} fy_router_t;

typedef struct st_fy_route_t {
    fy_route_kind_t kind;
    int status;      /* for FY_ROUTE_REDIRECT */
    int via_decoder; /* 1.5.1 wraps the main router (not ServeMux, not the API) in the gzip reader */
    int is_get;      /* the method was GET (redirect bodies) */
    int is_head;     /* HEAD (redirect Content-Type without body) */
    fy_handler_id_t handler;
    int job_b64;
    const char *job, *labels, *param; /* decoded, point into the caller's buffer */
    size_t job_len, labels_len, param_len;
    const char *location; /* points into the caller's buffer */
    size_t location_len;
    char allow[48]; /* "DELETE, OPTIONS, POST, PUT" */
} fy_route_t;

/** Room the caller must give fy_route for a request target of target_len bytes. */
static inline size_t fy_route_buf_size(size_t target_len)
{
    return 8 * target_len + 64;
}

/**
 * Fills r from the command-line values (1.5.1 computeRoutePrefix and path.Join rules).
 * @param route_prefix  --web.route-prefix as given ("" falls back to the external URL's path)
 * @param external_path path of --web.external-url ("" if unset)
 */
void fy_router_init(fy_router_t *r, const char *route_prefix, const char *external_path, const char *telemetry_path,
                    int enable_admin, int enable_lifecycle);

/** The normalised prefix alone (what /api/v1/status shows as web.route-prefix). */
void fy_route_prefix_normalise(const char *route_prefix, const char *external_path, char *out, size_t cap);

/**
 * Dispatches one request. target is the raw request target (path and query, as sent), buf a scratch area of
 * fy_route_buf_size(target_len) bytes that the result points into.
 */
void fy_route(const fy_router_t *r, const char *method, size_t method_len, const char *target, size_t target_len, char *buf,
              fy_route_t *out);

/** Go's http.Redirect body for GET ("<a href=\"...\">Moved Permanently</a>.\n\n"); returns its length (cap >= 6 *
 * location_len + 64). */
size_t fy_route_redirect_body(const fy_route_t *rt, char *out, size_t cap);

#endif
