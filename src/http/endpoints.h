/*
 * endpoints.h: the store-backed endpoints behind the server's seam (fy_handlers_t in server.h): HTTP requests that
 * change the store become changes on the change path (endpoints_change.c), and the scrape, /api/v1/metrics and the
 * web UI render the store (endpoints_read.c).
 *
 * Threads: every callback runs on a loop thread; what a callback writes is its own thread's arena and stats slot
 * (indexed by fy_server_thread_index()) and the store, through the change path, which does its own locking.
 */
#ifndef FY_ENDPOINTS_H
#define FY_ENDPOINTS_H

#include "app.h"
#include "server.h"
#include "ui.h"

#define FY_NOT_READY "Service Unavailable: loading persisted metrics"

typedef struct st_fy_http_t {
    fy_app_t *app;
    fy_ui_opts_t ui; /* page-independent UI options */
    fy_ui_kv_t *ui_flags_owned, *ui_build_owned;
} fy_http_t;

/** The UI's options from the flags and the build. Returns 0 or -1. */
int fy_http_init(fy_http_t *h, fy_app_t *app, const char *version, const char *revision, const char *start_time);
void fy_http_dispose(fy_http_t *h);

/** The handler table for fy_server_run. */
fy_handlers_t fy_http_handlers(fy_http_t *h);

/* endpoints_change.c */
fy_result_t fy_http_push(void *ctx, const fy_push_t *p);
fy_result_t fy_http_delete(void *ctx, const fy_gk_label_t *labels, size_t nlabels, h2o_mem_pool_t *pool);
fy_result_t fy_http_wipe(void *ctx, h2o_mem_pool_t *pool);
int fy_http_bulk_delete(void *ctx, h2o_req_t *req);

#endif
