/*
 * test_http_router.c: dispatch table checked against the 1.5.1 binary (E05, E22, E23, E26, E27, E30):
 * (prefix, method, target) -> status-ish outcome and Location / Allow / handler.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/common/url.c"
#include "../src/http/router.c"

typedef struct {
    const char *prefix, *method, *target;
    int kind;
    int status;       /* redirects */
    const char *what; /* Location, Allow, or "job|labels" for handlers */
    fy_handler_id_t handler;
} rt_case_t;

static const rt_case_t cases[] = {
    {"", "GET", "/-/healthy", FY_ROUTE_HANDLER, 0, NULL, FY_H_HEALTHY},
    {"", "GET", "/metrics", FY_ROUTE_HANDLER, 0, NULL, FY_H_SCRAPE},
    {"", "PUT", "/metrics/job/j", FY_ROUTE_HANDLER, 0, "j|", FY_H_PUSH},
    {"", "PUT", "/metrics/job/e1/x/", FY_ROUTE_HANDLER, 0, "e1|/x/", FY_H_PUSH},
    {"", "PUT", "/metrics/job/e3/", FY_ROUTE_HANDLER, 0, "e3|/", FY_H_PUSH},
    {"", "PUT", "/metrics/job/a%2Fb", FY_ROUTE_HANDLER, 0, "a|/b", FY_H_PUSH},
    {"", "PUT", "/metrics/job/q?x=y", FY_ROUTE_HANDLER, 0, "q|", FY_H_PUSH},
    {"", "PUT", "/metrics/job/a+b%25c", FY_ROUTE_HANDLER, 0, "a+b%c|", FY_H_PUSH},
    {"", "PUT", "/metrics/job/.../a/b", FY_ROUTE_HANDLER, 0, "...|/a/b", FY_H_PUSH},
    {"", "DELETE", "/metrics/job@base64/YQ=", FY_ROUTE_HANDLER, 0, "YQ=|", FY_H_DELETE},
    {"", "PUT", "/metrics/job/e2/x//y/z", FY_ROUTE_REDIRECT, 301, "/metrics/job/e2/x/y/z", 0},
    {"", "GET", "/metrics/job/e2/x//y/z?q=1", FY_ROUTE_REDIRECT, 301, "/metrics/job/e2/x/y/z?q=1", 0},
    {"", "PUT", "/metrics/job/../x", FY_ROUTE_REDIRECT, 301, "/metrics/x", 0},
    {"", "PUT", "/metrics/job/./a/b", FY_ROUTE_REDIRECT, 301, "/metrics/job/a/b", 0},
    {"", "PUT", "/metrics/job/x/a/%2E%2E", FY_ROUTE_REDIRECT, 301, "/metrics/job/x", 0},
    {"", "PUT", "/metrics/job/f5/x@base64/%2F%2F8", FY_ROUTE_REDIRECT, 301, "/metrics/job/f5/x@base64/8", 0},
    {"", "GET", "/a/b/%21%27()*/../c%3F", FY_ROUTE_REDIRECT, 301, "/a/b/c%3F", 0},
    {"", "PUT", "/metrics/job/", FY_ROUTE_REDIRECT, 307, "/metrics/job", 0},
    {"", "POST", "/metrics/job/", FY_ROUTE_REDIRECT, 307, "/metrics/job", 0},
    {"", "PUT", "/metrics/job", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "PUT", "/metrics/job@base64/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "PUT", "/metrics/job@base64", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "PUT", "/metrics/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "PUT", "/metrics/jobx/a", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/metrics/", FY_ROUTE_REDIRECT, 301, "/metrics", 0},
    {"", "HEAD", "/metrics/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/-/healthy/", FY_ROUTE_REDIRECT, 301, "/-/healthy", 0},
    {"", "GET", "/METRICS", FY_ROUTE_REDIRECT, 301, "/metrics", 0},
    {"", "GET", "/METRICS?x=1", FY_ROUTE_REDIRECT, 301, "/metrics?x=1", 0},
    {"", "PUT", "/Metrics/job/CaseJob", FY_ROUTE_REDIRECT, 307, "/metrics/job/CaseJob", 0},
    {"", "PUT", "/Metrics/Job/CaseJob/A/b", FY_ROUTE_REDIRECT, 307, "/metrics/job/CaseJob/A/b", 0},
    {"", "PUT", "/metrics/JOB@BASE64/CaseJob", FY_ROUTE_REDIRECT, 307, "/metrics/job@base64/CaseJob", 0},
    {"", "GET", "/static", FY_ROUTE_REDIRECT, 301, "/static/", 0},
    {"", "GET", "/static/", FY_ROUTE_HANDLER, 0, NULL, FY_H_STATIC},
    {"", "GET", "/status/", FY_ROUTE_REDIRECT, 301, "/status", 0},
    {"", "GET", "/", FY_ROUTE_HANDLER, 0, NULL, FY_H_UI},
    {"", "GET", "/metrics/job/foo", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS, POST, PUT", 0},
    {"", "PATCH", "/metrics/job/foo", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS, POST, PUT", 0},
    /* methods are compared whole: one longer than fy_route's 15-byte copy, a prefix of PUT, PUT with more after it */
    {"", "PUTPUTPUTPUTPUTPUTPUT", "/metrics/job/foo", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS, POST, PUT", 0},
    {"", "PU", "/metrics/job/foo", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS, POST, PUT", 0},
    {"", "PUTX", "/metrics/job/foo", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS, POST, PUT", 0},
    {"", "HEAD", "/metrics", FY_ROUTE_NOT_ALLOWED, 0, "GET, OPTIONS", 0},
    {"", "POST", "/metrics", FY_ROUTE_NOT_ALLOWED, 0, "GET, OPTIONS", 0},
    {"", "DELETE", "/-/quit", FY_ROUTE_NOT_ALLOWED, 0, "GET, OPTIONS, POST, PUT", 0},
    {"", "OPTIONS", "/metrics", FY_ROUTE_OPTIONS, 0, "GET, OPTIONS", 0},
    {"", "OPTIONS", "/metrics/job/foo/a/b", FY_ROUTE_OPTIONS, 0, "DELETE, OPTIONS, POST, PUT", 0},
    {"", "OPTIONS", "/", FY_ROUTE_OPTIONS, 0, "GET, OPTIONS", 0},
    {"", "OPTIONS", "/nonexistent", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/nonexistent", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "POST", "/-/reload", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/-/quit", FY_ROUTE_HANDLER, 0, NULL, FY_H_QUIT_GET},
    {"", "PUT", "/-/quit", FY_ROUTE_HANDLER, 0, NULL, FY_H_QUIT},
    {"", "GET", "/api/v1", FY_ROUTE_REDIRECT, 301, "/api/v1/", 0},
    {"", "GET", "/api/v1?a=b", FY_ROUTE_REDIRECT, 301, "/api/v1/?a=b", 0},
    {"", "GET", "/api/v1/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/api/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/api/v1/status", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_STATUS},
    {"", "GET", "/api/v1/metrics", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_METRICS},
    {"", "POST", "/api/v1/status", FY_ROUTE_NOT_ALLOWED, 0, "GET, OPTIONS", 0},
    {"", "OPTIONS", "/api/v1/anything/x", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_OPTIONS},
    {"", "PUT", "/api/v1/admin/wipe", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "DELETE", "/api/v1/admin/groups", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/api/v1/status/", FY_ROUTE_REDIRECT, 301, "/status", 0},
    {"", "GET", "/api/v1/STATUS", FY_ROUTE_REDIRECT, 301, "/status", 0},
    {"", "GET", "/API/v1/status", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"", "GET", "/api/v1//status", FY_ROUTE_REDIRECT, 301, "/api/v1/status", 0},
    {"", "GET", "/a%zz", FY_ROUTE_BAD_REQUEST, 0, NULL, 0},
    {"", "OPTIONS", "*", FY_ROUTE_STAR, 200, NULL, 0},
    {"/pg/", "GET", "/pg/metrics", FY_ROUTE_HANDLER, 0, NULL, FY_H_SCRAPE},
    {"/pg/", "GET", "/metrics", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"/pg/", "GET", "/pg", FY_ROUTE_REDIRECT, 301, "/pg/", 0},
    {"/pg/", "GET", "/pg/", FY_ROUTE_HANDLER, 0, NULL, FY_H_UI},
    {"/pg/", "GET", "/", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"/pg/", "GET", "/-/quit", FY_ROUTE_HANDLER, 0, NULL, FY_H_QUIT_GET},
    {"/pg/", "GET", "/pg/-/quit", FY_ROUTE_NOT_ALLOWED, 0, "OPTIONS, POST, PUT", 0},
    {"/pg/", "GET", "/pg/api/v1/status", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_STATUS},
    {"/pg/", "GET", "/api/v1/status", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"/pg/", "POST", "/pg/api/v1/admin/wipe", FY_ROUTE_NOT_ALLOWED, 0, "OPTIONS, PUT", 0},
    {"/pg/", "PUT", "/pg/api/v1/admin/wipe", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_WIPE},
    {"/pg/", "DELETE", "/pg/api/v1/admin/groups?match[]=%7Bjob%3D%22a%22%7D", FY_ROUTE_HANDLER, 0, NULL, FY_H_API_GROUPS_DELETE},
    {"/pg/", "GET", "/pg/api/v1/admin/groups", FY_ROUTE_NOT_ALLOWED, 0, "DELETE, OPTIONS", 0},
    {"/pg/", "PUT", "/pg/metrics/job/", FY_ROUTE_REDIRECT, 307, "/pg/metrics/job", 0},
    /* /-/reload exists only with --web.enable-lifecycle, which the rows with a prefix have (the first rows do not) */
    {"/pg/", "POST", "/pg/-/reload", FY_ROUTE_HANDLER, 0, NULL, FY_H_RELOAD},
    {"/pg/", "PUT", "/pg/-/reload", FY_ROUTE_HANDLER, 0, NULL, FY_H_RELOAD},
    {"/pg/", "GET", "/pg/-/reload", FY_ROUTE_NOT_ALLOWED, 0, "OPTIONS, POST, PUT", 0},
    {"/pg/", "POST", "/-/reload", FY_ROUTE_NOT_FOUND, 0, NULL, 0},
    {"/pg/", "POST", "/pg/-/Reload", FY_ROUTE_REDIRECT, 307, "/pg/-/reload", 0},
};

static void test_table(void **state)
{
    (void)state;
    static fy_router_t r;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rt_case_t *c = &cases[i];
        int admin_and_lifecycle = c->prefix[0] != '\0';
        fy_router_init(&r, c->prefix, "", "/metrics", admin_and_lifecycle, admin_and_lifecycle);
        size_t tl = strlen(c->target);
        char *buf = malloc(fy_route_buf_size(tl));
        fy_route_t rt;
        fy_route(&r, c->method, strlen(c->method), fy_guarded(c->target, tl), tl, buf, &rt);
        if ((int)rt.kind != c->kind)
            fail_msg("%s %s: kind %d, want %d", c->method, c->target, rt.kind, c->kind);
        if (c->kind == FY_ROUTE_REDIRECT) {
            if (rt.status != c->status || rt.location_len != strlen(c->what) || memcmp(rt.location, c->what, rt.location_len))
                fail_msg("%s %s: %d %.*s, want %d %s", c->method, c->target, rt.status, (int)rt.location_len, rt.location,
                         c->status, c->what);
        } else if (c->kind == FY_ROUTE_NOT_ALLOWED || c->kind == FY_ROUTE_OPTIONS) {
            if (strcmp(rt.allow, c->what) != 0)
                fail_msg("%s %s: Allow %s, want %s", c->method, c->target, rt.allow, c->what);
        } else if (c->kind == FY_ROUTE_HANDLER) {
            if (rt.handler != c->handler)
                fail_msg("%s %s: handler %d, want %d", c->method, c->target, rt.handler, c->handler);
            if (c->what != NULL) {
                char got[256];
                snprintf(got, sizeof(got), "%.*s|%.*s", (int)rt.job_len, rt.job, (int)rt.labels_len, rt.labels ? rt.labels : "");
                if (strcmp(got, c->what) != 0)
                    fail_msg("%s %s: params %s, want %s", c->method, c->target, got, c->what);
            }
        }
        free(buf);
    }
}

static void test_redirect_body(void **state)
{
    (void)state;
    fy_router_t r;
    fy_route_t rt;
    char buf[256], body[256];
    fy_router_init(&r, "", "", "/metrics", 0, 0);
    fy_route(&r, "GET", 3, "/METRICS", 8, buf, &rt);
    size_t n = fy_route_redirect_body(&rt, body, sizeof(body));
    assert_int_equal(n, 43); /* E22: Content-Length 43 */
    assert_memory_equal(body, "<a href=\"/metrics\">Moved Permanently</a>.\n\n", n);
}

static void test_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *ext, *want;
    } t[] = {{"", "", ""},          {"/", "", ""},         {"/pg/", "", "/pg"}, {"pg", "", "/pg"},
             {"//pg//", "", "/pg"}, {"", "/ext/", "/ext"}, {"/", "/ext/", ""}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[64];
        fy_route_prefix_normalise(t[i].prefix, t[i].ext, out, sizeof(out));
        assert_string_equal(out, t[i].want);
    }
    fy_router_t r;
    fy_router_init(&r, "pfx", "", "custom2", 0, 0);
    assert_string_equal(r.telemetry, "/pfx/custom2"); /* E27 */
    fy_router_init(&r, "", "", "/custom", 0, 0);
    assert_string_equal(r.telemetry, "/custom");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_redirect_body),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
