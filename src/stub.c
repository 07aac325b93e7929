/*
 * stub.c: TEMPORARY scaffolding. Until the store is wired in, every store-backed endpoint answers
 * 501 "not implemented yet" so that the binary runs and the frontend can be tested on its own. main.c replaces
 * fy_stub_handlers with the real handlers; delete this file then.
 */
#include "server.h"

#define NOT_YET "not implemented yet"

static fy_result_t not_yet(void)
{
    return (fy_result_t){501, NOT_YET, sizeof(NOT_YET) - 1};
}

static fy_result_t stub_push(void *ctx, const fy_push_t *push)
{
    return not_yet();
}

static fy_result_t stub_del(void *ctx, const fy_gk_label_t *labels, size_t nlabels, h2o_mem_pool_t *pool)
{
    return not_yet();
}

static int stub_respond(h2o_req_t *req)
{
    fy_server_error(req, 501, NOT_YET, sizeof(NOT_YET) - 1);
    return 0;
}

static int stub_scrape(void *ctx, h2o_req_t *req)
{
    return stub_respond(req);
}

static int stub_api_metrics(void *ctx, h2o_req_t *req)
{
    return stub_respond(req);
}

static fy_result_t stub_wipe(void *ctx, h2o_mem_pool_t *pool)
{
    return not_yet();
}

static int stub_ui(void *ctx, h2o_req_t *req, const char *path, size_t len)
{
    return stub_respond(req);
}

const fy_handlers_t fy_stub_handlers = {
    .ctx = NULL,
    .push = stub_push,
    .del = stub_del,
    .scrape = stub_scrape,
    .api_metrics = stub_api_metrics,
    .wipe = stub_wipe,
    .ui = stub_ui,
    .healthy = NULL,
    .shutdown = NULL,
};
