/*
 * store_testlib.h: helpers for the store suites: push a text body to a grouping key written as "job=a,x=y",
 * render text or JSON into a string, filter rendered text by family, compare a scrape without the timestamp families.
 */
#ifndef FY_STORE_TESTLIB_H
#define FY_STORE_TESTLIB_H

#include "store.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_sbuf_t {
    char *p;
    size_t n, cap;
} sbuf_t;

static inline int sbuf_writer(void *ctx, const char *buf, size_t len)
{
    sbuf_t *b = ctx;
    if (b->n + len + 1 > b->cap) {
        b->cap = 2 * (b->n + len + 1);
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, buf, len);
    b->n += len;
    b->p[b->n] = 0;
    return 0;
}

/* Parses "job=a,x=" into labels (pointing into a static copy). */
static inline size_t parse_gk(const char *spec, fy_store_label_t *out, char *mem)
{
    size_t n = 0;
    strcpy(mem, spec);
    char *p = mem;
    while (*p) {
        char *eq = strchr(p, '=');
        char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        out[n].name = fy_str(p, (size_t)(eq - p));
        out[n].value = fy_str(eq + 1, (size_t)(end - eq - 1));
        n++;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* Pushes a text body with a declared lifetime (NULL: none, as fy_store_push); returns the store's code and copies the
 * error message into msg (if not NULL). */
static inline int push_text_life(fy_store_t *s, const char *gk, fy_store_method_t m, const char *text, const fy_store_life_t *life,
                                 int64_t now, char *msg, size_t msgcap)
{
    fy_store_label_t l[16];
    char mem[512];
    size_t n = parse_gk(gk, l, mem);
    fy_body_t body;
    memset(&body, 0, sizeof(body));
    size_t len = strlen(text);
    void *amem = NULL;
    if (len) {
        fy_parse_error_t perr;
        fy_arena_t arena, *a = &arena; /* one per call: the stress test pushes from several threads */
        amem = malloc(fy_parse_arena_hint(len));
        fy_arena_init(a, amem, fy_parse_arena_hint(len));
        int prc = fy_parse_text(text, len, a, &body, &perr);
        if (prc != FY_OK)
            fail_msg("parse error: %s", perr.msg);
    }
    fy_store_err_t err;
    int rc = fy_store_push_life(s, l, n, m, &body, life, now, 0, &err);
    if (msg) {
        snprintf(msg, msgcap, "%s", rc == FY_OK ? "" : err.msg);
    }
    if (rc != FY_OK)
        fy_store_err_free(&err);
    free(amem);
    return rc;
}

/* Pushes a text body; returns the store's code and copies the error message into msg (if not NULL). */
static inline int push_text(fy_store_t *s, const char *gk, fy_store_method_t m, const char *text, int64_t now, char *msg,
                            size_t msgcap)
{
    return push_text_life(s, gk, m, text, NULL, now, msg, msgcap);
}

static inline int delete_gk(fy_store_t *s, const char *gk)
{
    fy_store_label_t l[16];
    char mem[512];
    size_t n = parse_gk(gk, l, mem);
    return fy_store_delete(s, l, n, 0);
}

static inline char *render_text(fy_store_t *s, const fy_body_t *own)
{
    sbuf_t b = {0};
    sbuf_writer(&b, "", 0);
    assert_int_equal(fy_store_render_text(s, own, 100, sbuf_writer, &b), 0);
    return b.p;
}

/* Protobuf and OpenMetrics scrapes into a buffer (n holds the length: protobuf output contains NULs). */
static inline sbuf_t render_fmt(fy_store_t *s, const fy_body_t *own, int pb)
{
    sbuf_t b = {0};
    sbuf_writer(&b, "", 0);
    if (pb)
        assert_int_equal(fy_store_render_protobuf(s, own, 100, sbuf_writer, &b), 0);
    else
        assert_int_equal(fy_store_render_openmetrics(s, own, 100, sbuf_writer, &b), 0);
    return b;
}

static inline char *render_json(fy_store_t *s)
{
    sbuf_t b = {0};
    sbuf_writer(&b, "", 0);
    assert_int_equal(fy_store_render_json(s, 100, sbuf_writer, &b), 0);
    return b.p;
}

/* Drops lines of push_time_seconds/push_failure_time_seconds (their values are times). */
static inline char *without_ts(const char *t)
{
    char *o = malloc(strlen(t) + 1), *w = o;
    while (*t) {
        const char *e = strchr(t, '\n');
        size_t n = e ? (size_t)(e - t + 1) : strlen(t);
        if (!strstr(t, "push_time_seconds") || (size_t)(strstr(t, "push_time_seconds") - t) >= n) {
            if (!strstr(t, "push_failure_time_seconds") || (size_t)(strstr(t, "push_failure_time_seconds") - t) >= n) {
                memcpy(w, t, n);
                w += n;
            }
        }
        t += n;
    }
    *w = 0;
    return o;
}

/* Fails the test (naming note, with what the scrape gave and what was wanted) unless the text scrape without the
 * timestamp families is exactly want. */
static inline void check_scrape(fy_store_t *s, const char *want, const char *note)
{
    char *t = render_text(s, NULL);
    char *f = without_ts(t);
    if (strcmp(f, want) != 0)
        fail_msg("%s:\n got:\n%s\nwant:\n%s", note, f, want);
    free(t);
    free(f);
}

#endif
