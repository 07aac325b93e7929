/*
 * test_http_ui.c: the web UI page (src/ui.c, spec 11): HTML escaping of everything pushed, delete URLs that the
 * router decodes back to the group (job@base64, label@base64 with '='), paging and filter, "Last push failed!",
 * the delete-all button, the page arithmetic, huge groups cut to FY_UI_GROUP_LABELS with a notice, the page in parts
 * equal to the whole, and the cost of a page over a large store.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_testlib.h"

#include "../src/http/ui.c"

static char *page(fy_store_t *s, const fy_ui_opts_t *o)
{
    fy_buf_t b = {0};
    assert_int_equal(fy_ui_render(s, o, &b), 0);
    assert_non_null(b.p);
    assert_int_equal(strlen(b.p), b.len);
    return b.p;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Pushes a text body to a group given as label pairs (name, value, name, value, ..., NULL). */
static int push_gk(fy_store_t *s, const char *body, int64_t now, ...)
{
    fy_store_label_t gk[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, now);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        gk[n].name = fy_str(name, strlen(name));
        gk[n].value = fy_str(value, strlen(value));
        n++;
    }
    va_end(ap);
    size_t len = strlen(body);
    fy_body_t b;
    fy_parse_error_t perr;
    memset(&b, 0, sizeof(b));
    if (len && fy_test_parse(fy_parse_text, body, len, &b, &perr) != FY_OK)
        fail_msg("parse: %.*s", (int)perr.msg_len, perr.msg);
    fy_store_err_t err;
    int rc = fy_store_push(s, gk, n, FY_STORE_PUT, &b, now, 0, &err);
    if (rc != FY_OK)
        fy_store_err_free(&err);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------------- */

static void test_html_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } t[] = {
        {"", ""},
        {"plain", "plain"},
        {"<script>", "&lt;script&gt;"},
        {"a&b", "a&amp;b"},
        {"\"'", "&#34;&#39;"},
        {"&amp;", "&amp;amp;"},
        {"\xc3\xa9\n\t", "\xc3\xa9\n\t"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_buf_t b = {0};
        fy_buf_add(&b, "", 0);
        fy_html_escape(&b, t[i].in, strlen(t[i].in));
        assert_string_equal(b.p ? b.p : "", t[i].out);
        fy_buf_free(&b);
    }
}

/* Everything a client controls goes through the escaper, in every position where it appears. */
static void test_page_escapes_pushed_data(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_gk(s,
                             "# HELP m <script>alert(\"help\")</script> & 'q'\n"
                             "m{v=\"<img src=x onerror=alert(1)>\",w=\"a&b\\\"c'\"} 1\n",
                             1000000000, "job", "<script>alert('job')</script>", "lbl", "</span><b>&", NULL),
                     FY_OK);
    fy_ui_kv_t flags[] = {{"web.listen-address", "<b>:9091</b>"}};
    fy_ui_kv_t build[] = {{"version", "1&2"}};
    fy_ui_opts_t o = {0};
    o.flags = flags;
    o.nflags = 1;
    o.build = build;
    o.nbuild = 1;
    o.start_time = "<now>";
    o.filter = "</span><b>&"; /* matches the group */
    o.filter_len = strlen(o.filter);
    o.admin_api = 1;
    char *p = page(s, &o);
    /* nothing pushed or configured appears raw */
    static const char *const raw[] = {"<script>alert", "<img", "</span><b>", "<b>:9091", "<now>", "a&b", "'q'", "1&2"};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        if (strstr(p, raw[i]) != NULL)
            fail_msg("raw %s in the page", raw[i]);
    /* ... and each appears escaped */
    static const char *const esc[] = {
        "&lt;script&gt;alert(&#34;help&#34;)&lt;/script&gt; &amp; &#39;q&#39;", /* HELP */
        "v=&#34;&lt;img src=x onerror=alert(1)&gt;&#34;",                       /* series label value */
        "w=&#34;a&amp;b&#34;c&#39;&#34;",                                       /* escapes undone, then HTML-escaped */
        "job=&#34;&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;&#34;",      /* grouping label */
        "lbl=&#34;&lt;/span&gt;&lt;b&gt;&amp;&#34;",                            /* another grouping label */
        "&lt;b&gt;:9091&lt;/b&gt;",
        "&lt;now&gt;",
        "1&amp;2",                               /* status tab */
        "value=\"&lt;/span&gt;&lt;b&gt;&amp;\"", /* the filter box */
    };
    for (size_t i = 0; i < sizeof(esc) / sizeof(esc[0]); i++)
        if (strstr(p, esc[i]) == NULL)
            fail_msg("missing %s", esc[i]);
    /* the page's own script is the only one */
    assert_int_equal(count(p, "<script"), 1);
    free(p);
    o.filter = "\"><script>";
    o.filter_len = strlen(o.filter);
    p = page(s, &o);
    assert_null(strstr(p, "\"><script>"));
    assert_non_null(strstr(p, "value=\"&#34;&gt;&lt;script&gt;\""));
    free(p);
    fy_store_destroy(s);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Delete URLs: the data-del attribute, decoded as the router does (base64url, '=' stripped), names the group. */

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static size_t b64dec(const char *s, size_t n, char *out)
{
    while (n && s[n - 1] == '=')
        n--;
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64val(s[i]);
        assert_true(d >= 0);
        v = v << 6 | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xFF);
        }
    }
    return o;
}

/* Decodes "metrics/job@base64/X/n1@base64/Y=..." into "job=<v>,n1=<v>" (the router's view of the URL). */
static void decode_del(const char *url, size_t n, char *out)
{
    const char *pre = "metrics/";
    assert_true(n > strlen(pre) && memcmp(url, pre, strlen(pre)) == 0);
    const char *p = url + strlen(pre), *end = url + n;
    size_t o = 0;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        assert_non_null(slash);
        const char *at = memmem(p, (size_t)(slash - p), "@base64", 7);
        assert_non_null(at);
        assert_true(at + 7 == slash);
        if (o)
            out[o++] = ',';
        memcpy(out + o, p, (size_t)(at - p));
        o += (size_t)(at - p);
        out[o++] = '=';
        const char *v = slash + 1, *ve = memchr(v, '/', (size_t)(end - v));
        if (ve == NULL)
            ve = end;
        o += b64dec(v, (size_t)(ve - v), out + o);
        p = ve < end ? ve + 1 : end;
    }
    out[o] = '\0';
}

static void test_delete_urls(void **state)
{
    (void)state;
    static const struct {
        const char *gk[6]; /* name, value pairs, job first */
        const char *want;  /* decoded URL: grouping labels, job first, then sorted */
        const char *note;
    } t[] = {
        {{"job", "j"}, "job=j", "plain"},
        {{"job", "a/b"}, "job=a/b", "job with '/'"},
        {{"job", "x", "instance", ""}, "job=x,instance=", "empty value: 'instance@base64/='"},
        {{"job", "x", "b", "1", "a", "2"}, "job=x,a=2,b=1", "other labels sorted"},
        {{"job", "?>~\xc3\xbf?#%"}, "job=?>~\xc3\xbf?#%", "bytes whose base64url has - and _"},
        {{"job", "ab", "c", "abc", "d", "abcd"}, "job=ab,c=abc,d=abcd", "every padding length"},
        {{"job", "job", "zz", "=="}, "job=job,zz===", "value made of '='"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_store_t *s = fy_store_create(NULL);
        fy_store_label_t gk[3];
        size_t n = 0;
        for (; n < 3 && t[i].gk[2 * n] != NULL; n++) {
            gk[n].name = fy_str(t[i].gk[2 * n], strlen(t[i].gk[2 * n]));
            gk[n].value = fy_str(t[i].gk[2 * n + 1], strlen(t[i].gk[2 * n + 1]));
        }
        fy_body_t empty = {0};
        assert_int_equal(fy_store_push(s, gk, n, FY_STORE_PUT, &empty, 1, 0, NULL), FY_OK);
        fy_ui_opts_t o = {0};
        char *p = page(s, &o);
        const char *a = strstr(p, "data-del=\"");
        assert_non_null(a);
        a += 10;
        const char *e = strchr(a, '"');
        char got[256];
        decode_del(a, (size_t)(e - a), got);
        if (strcmp(got, t[i].want) != 0)
            fail_msg("case %zu (%s): %.*s decodes to %s", i, t[i].note, (int)(e - a), a, got);
        /* job has no '=', every other label value ends with one (spec 11.2) */
        const char *job_end = strchr(a + strlen("metrics/job@base64/"), '/');
        if (job_end == NULL || job_end > e)
            job_end = e;
        assert_true(job_end[-1] != '=' || strcmp(t[i].gk[1], "") == 0);
        assert_int_equal(count(p, "data-del="), 1);
        free(p);
        fy_store_destroy(s);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */

static fy_store_t *store_of(unsigned n)
{
    fy_store_t *s = fy_store_create(NULL);
    for (unsigned i = 0; i < n; i++) {
        char job[16];
        snprintf(job, sizeof(job), "g%04u%s", i, i % 10 == 3 ? "x" : "");
        assert_int_equal(push_gk(s, "m 1\n", 1000000000, "job", job, NULL), FY_OK);
    }
    return s;
}

static void test_paging(void **state)
{
    (void)state;
    fy_store_t *s = store_of(250);
    static const struct {
        unsigned page, page_size;
        const char *filter;
        unsigned groups;         /* rendered */
        const char *first_group; /* job of the first rendered group, NULL if none */
        const char *pager;       /* exact pager paragraph */
        const char *note;
    } t[] = {
        {0, 0, NULL, 100, "g0000",
         "<p class=\"muted pager\">250 groups &middot; showing 1&ndash;100 &middot; <a href=\"?page=1\">next &rarr;</a></p>",
         "default page size 100"},
        {1, 0, NULL, 100, "g0100",
         "<p class=\"muted pager\">250 groups &middot; showing 101&ndash;200 &middot; <a href=\"?page=0\">&larr; "
         "previous</a><a href=\"?page=2\">next &rarr;</a></p>",
         "middle page"},
        {2, 0, NULL, 50, "g0200",
         "<p class=\"muted pager\">250 groups &middot; showing 201&ndash;250 &middot; <a href=\"?page=1\">&larr; "
         "previous</a></p>",
         "last page is short"},
        {3, 0, NULL, 0, NULL,
         "<p class=\"muted pager\">250 groups &middot; showing 0&ndash;0 &middot; <a href=\"?page=2\">&larr; "
         "previous</a></p>",
         "beyond the end"},
        {0, 1000, NULL, 250, "g0000", "<p class=\"muted pager\">250 groups</p>", "one page: no pager"},
        {0, 250, NULL, 250, "g0000", "<p class=\"muted pager\">250 groups</p>", "exactly one page"},
        {1, 125, NULL, 125, "g0125",
         "<p class=\"muted pager\">250 groups &middot; showing 126&ndash;250 &middot; <a href=\"?page=0&amp;limit=125\">&larr; "
         "previous</a></p>",
         "exactly two pages; an explicit limit is kept in the links"},
        {0, 10, "3x", 10, "g0003",
         "<p class=\"muted pager\">25 groups &middot; showing 1&ndash;10 &middot; <a href=\"?page=1&amp;limit=10&amp;q=3x\">next "
         "&rarr;</a></p>",
         "filter by label value substring"},
        {2, 10, "3x", 5, "g0203",
         "<p class=\"muted pager\">25 groups &middot; showing 21&ndash;25 &middot; <a "
         "href=\"?page=1&amp;limit=10&amp;q=3x\">&larr; "
         "previous</a></p>",
         "filtered last page"},
        {0, 0, "nomatch", 0, NULL, "<p class=\"muted pager\">0 groups</p>", "filter matches nothing"},
        {0, 0, "g0042", 1, "g0042", "<p class=\"muted pager\">1 groups</p>", "exact value"},
        {1, 0, "<&>", 0, NULL,
         "<p class=\"muted pager\">0 groups &middot; showing 0&ndash;0 &middot; <a href=\"?page=0&amp;q=%3C%26%3E\">&larr; "
         "previous</a></p>",
         "the filter is URL-encoded in pager links"},
        {0, 0, "job", 0, NULL, "<p class=\"muted pager\">0 groups</p>", "label names are not searched"},
        {42949673, 100, NULL, 0, NULL,
         "<p class=\"muted pager\">250 groups &middot; showing 0&ndash;0 &middot; <a href=\"?page=42949672\">&larr; "
         "previous</a></p>",
         "page * page_size beyond 2^32 must not wrap around to the first pages"},
        {4294967295u, 4294967295u, NULL, 0, NULL,
         "<p class=\"muted pager\">250 groups &middot; showing 0&ndash;0 &middot; <a "
         "href=\"?page=4294967294&amp;limit=1000\">&larr; "
         "previous</a></p>",
         "largest page and page size (the size is capped at FY_UI_MAX_LIMIT)"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_ui_opts_t o = {0};
        o.page = t[i].page;
        o.page_size = t[i].page_size;
        o.filter = t[i].filter;
        o.filter_len = t[i].filter ? strlen(t[i].filter) : 0;
        char *p = page(s, &o);
        size_t groups = count(p, "<details class=\"group\" ");
        const char *first = strstr(p, "<span class=\"badge job\">job=&#34;");
        if (groups != t[i].groups || strstr(p, t[i].pager) == NULL ||
            (t[i].first_group && (first == NULL || strncmp(first + 33, t[i].first_group, 5) != 0)) ||
            (!t[i].first_group && first != NULL)) {
            const char *pg = strstr(p, "<p class=\"muted pager\">");
            fail_msg("case %zu (%s): %zu groups, first %.5s, pager %.*s", i, t[i].note, groups, first ? first + 33 : "-",
                     pg ? (int)(strstr(pg, "</p>") + 4 - pg) : 0, pg ? pg : "");
        }
        free(p);
    }
    fy_store_destroy(s);
}

static void test_last_push_failed(void **state)
{
    (void)state;
    static const struct {
        const char *first;  /* body of a first push at t=10 (NULL: none) */
        const char *second; /* body of a second push at `at` */
        int64_t at;
        int shown;
        const char *note;
    } t[] = {
        {NULL, "m 1\n", 10, 0, "success only"},
        {NULL, "m 1 1234\n", 10, 1, "a new group whose first push failed: push 0 < failure"},
        {"m 1\n", "m 1 1234\n", 20, 1, "failure after a success"},
        {"m 1 1234\n", "m 1\n", 20, 0, "success after a failure"},
        {"m 1\n", "m 1 1234\n", 10, 0, "failure at the same instant: not strictly greater"},
        {"m 1\n", "m 1 1234\n", 9, 0, "failure stamped earlier than the success"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_store_t *s = fy_store_create(NULL);
        if (t[i].first)
            push_gk(s, t[i].first, 10, "job", "j", NULL);
        push_gk(s, t[i].second, t[i].at, "job", "j", NULL);
        fy_ui_opts_t o = {0};
        char *p = page(s, &o);
        size_t n = count(p, "Last push failed!");
        if (n != (size_t)t[i].shown)
            fail_msg("case %zu (%s): shown %zu times", i, t[i].note, n);
        free(p);
        fy_store_destroy(s);
    }
}

static void test_delete_all_button(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    fy_ui_opts_t o = {0};
    char *p = page(s, &o);
    assert_null(strstr(p, "delAll()\""));
    assert_null(strstr(p, "del-all-counter\""));
    free(p);
    o.admin_api = 1;
    p = page(s, &o);
    assert_non_null(strstr(p, "<button class=\"delall\" type=\"button\" onclick=\"delAll()\" disabled>Delete All "
                              "<span id=\"del-all-counter\">0</span> Groups</button>"));
    free(p);
    push_gk(s, "m 1\n", 1, "job", "a", NULL);
    push_gk(s, "m 1\n", 1, "job", "b", NULL);
    o.filter = "a"; /* the count is the store's, not the filtered page's */
    o.filter_len = 1;
    p = page(s, &o);
    assert_non_null(strstr(p, "<button class=\"delall\" type=\"button\" onclick=\"delAll()\">Delete All "
                              "<span id=\"del-all-counter\">2</span> Groups</button>"));
    free(p);
    fy_store_destroy(s);
}

/* A store of 100k groups: one page costs one walk over the group index plus 100 groups of HTML. */
static void test_large_store(void **state)
{
    (void)state;
    const unsigned n = 100000;
    fy_store_t *s = fy_store_create(NULL);
    const char *body = "# HELP m A gauge.\n# TYPE m gauge\nm{a=\"1\"} 1\nm{a=\"2\"} 2\n";
    fy_body_t b;
    fy_parse_error_t perr;
    assert_int_equal(fy_test_parse(fy_parse_text, body, strlen(body), &b, &perr), FY_OK);
    for (unsigned i = 0; i < n; i++) {
        char job[16];
        int jl = snprintf(job, sizeof(job), "job%06u", i);
        fy_store_label_t gk[2] = {{fy_str("job", 3), fy_str(job, (size_t)jl)}, {fy_str("instance", 8), fy_str("i", 1)}};
        assert_int_equal(fy_store_push(s, gk, 2, FY_STORE_PUT, &b, 1, 0, NULL), FY_OK);
    }
    double best = 1e9;
    size_t len = 0;
    for (int run = 0; run < 5; run++) {
        fy_ui_opts_t o = {0};
        o.page = run == 4 ? 999 : (unsigned)run * 250;
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        char *p = page(s, &o);
        clock_gettime(CLOCK_MONOTONIC, &z);
        double ms = (double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best)
            best = ms;
        assert_int_equal(count(p, "<details class=\"group\" "), 100);
        assert_non_null(strstr(p, "100000 groups"));
        len = strlen(p);
        free(p);
    }
    print_message("100k groups: a page of 100 groups (%zu bytes) renders in %.1f ms (best of 5)\n", len, best);
    assert_true(best < 1000);
    fy_store_destroy(s);
}

/* The page arithmetic alone (fy_ui_pager): what a sort or a state filter (issue #17) would reuse unchanged. */
static void test_pager(void **state)
{
    (void)state;
    static const struct {
        uint64_t total;
        unsigned page, limit;
        uint64_t first, end, pages;
        unsigned eff_limit;
        int prev, next, shown;
        const char *note;
    } t[] = {
        {0, 0, 0, 0, 0, 0, 100, 0, 0, 0, "empty store: no pager"},
        {1, 0, 0, 0, 1, 1, 100, 0, 0, 0, "one group"},
        {100, 0, 0, 0, 100, 1, 100, 0, 0, 0, "exactly one default page"},
        {101, 0, 0, 0, 100, 2, 100, 0, 1, 1, "one more than a page"},
        {101, 1, 0, 100, 101, 2, 100, 1, 0, 1, "the short last page"},
        {101, 2, 0, 200, 200, 2, 100, 1, 0, 1, "beyond the end: empty, a link back"},
        {100000, 999, 0, 99900, 100000, 1000, 100, 1, 0, 1, "100k groups, last page"},
        {100000, 5, 500, 2500, 3000, 200, 500, 1, 1, 1, "limit 500"},
        {100000, 0, 5000, 0, 1000, 100, 1000, 0, 1, 1, "limit capped at FY_UI_MAX_LIMIT"},
        {7, 0, 1, 0, 1, 7, 1, 0, 1, 1, "limit 1"},
        {10, 4294967295u, 1000, 4294967295000ull, 4294967295000ull, 1, 1000, 1, 0, 1,
         "largest page: page * limit in 64 bits, no wrap to an early page"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_ui_pager_t pg;
        fy_ui_pager(t[i].total, t[i].page, t[i].limit, &pg);
        if (pg.first != t[i].first || pg.end != t[i].end || pg.pages != t[i].pages || pg.limit != t[i].eff_limit ||
            pg.has_prev != t[i].prev || pg.has_next != t[i].next || pg.shown != t[i].shown)
            fail_msg("case %zu (%s): first %llu end %llu pages %llu limit %u prev %d next %d shown %d", i, t[i].note,
                     (unsigned long long)pg.first, (unsigned long long)pg.end, (unsigned long long)pg.pages, pg.limit, pg.has_prev,
                     pg.has_next, pg.shown);
    }
}

/* A text body of nf families of ns series each. */
static char *families_text(unsigned nf, unsigned ns)
{
    fy_buf_t t = {0};
    for (unsigned f = 0; f < nf; f++) {
        fy_buf_printf(&t, "# TYPE f%u gauge\n", f);
        for (unsigned i = 0; i < ns; i++)
            fy_buf_printf(&t, "f%u{s=\"%u\"} %u\n", f, i, i);
    }
    return t.p;
}

/* Pushes text to a group with nl grouping labels (job=<job> and l0001.. with 12-byte values). */
static void push_wide(fy_store_t *s, const char *job, unsigned nl, const char *text)
{
    assert_true(nl <= 10000);
    fy_store_label_t *gk = calloc(nl, sizeof(*gk));
    char *names = calloc(nl, 8);
    gk[0] = (fy_store_label_t){fy_str("job", 3), fy_str(job, strlen(job))};
    for (unsigned i = 1; i < nl; i++) {
        snprintf(names + 8 * i, 8, "l%04u", i % 10000u); /* names are five bytes: nl is at most 10,000 */
        gk[i] = (fy_store_label_t){fy_str(names + 8 * i, 5), fy_str("vvvvvvvvvvvv", 12)};
    }
    fy_body_t b;
    fy_parse_error_t perr;
    assert_int_equal(fy_test_parse(fy_parse_text, text, strlen(text), &b, &perr), FY_OK);
    assert_int_equal(fy_store_push(s, gk, nl, FY_STORE_PUT, &b, 1000000000, 0, NULL), FY_OK);
    free(gk);
    free(names);
}

/* A huge group is listed up to FY_UI_GROUP_LABELS series labels, with a notice per cut family; the page's parts
 * concatenate to the whole page whatever the budget, and stay near it. */
static void test_huge_groups(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    char *text = families_text(3, 5000);
    assert_int_equal(push_gk(s, text, 1000000000, "job", "big", NULL), FY_OK);
    free(text);
    text = families_text(2, 20);
    push_wide(s, "wide", 5000, text);
    free(text);
    assert_int_equal(push_gk(s, "m 1\n", 1000000000, "job", "small", NULL), FY_OK);
    fy_buf_t lt = {0}; /* 1,000 series with a 4,000-byte value of '<' (&lt; in HTML: 16 KB each) */
    for (unsigned i = 0; i < 1000; i++) {
        fy_buf_printf(&lt, "m{i=\"%u\",v=\"", i);
        for (unsigned k = 0; k < 4000; k++)
            fy_buf_add(&lt, "<", 1);
        fy_buf_str(&lt, "\"} 1\n");
    }
    assert_int_equal(push_gk(s, lt.p, 1000000000, "job", "long", NULL), FY_OK);
    fy_buf_free(&lt);
    static const struct {
        const char *filter;
        unsigned rows;      /* series rows listed */
        const char *notice; /* expected notices, in order */
        size_t max_bytes;
        const char *note;
    } t[] = {
        {"big", 1365, "3635 more series not shown", 320 * 1024,
         "3 x 5,000 series of 3 labels (instance, job, s): 1,365 rows, the rest counted"},
        {"wide", 1, "19 more series not shown", 512 * 1024,
         "5,000 grouping labels: the first series (5,001 labels) only, 64 of its labels; the header shows them all"},
        {"small", 1, NULL, 16 * 1024, "a small group is whole"},
        {"long", 61, "939 more series not shown", 300 * 1024,
         "4,000-byte values: cut to 1,024 bytes in rows, rows until the group's HTML reaches 256 KiB"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_ui_opts_t o = {0};
        o.filter = t[i].filter;
        o.filter_len = strlen(t[i].filter);
        char *p = page(s, &o);
        size_t rows = count(p, "<tr><td><span class=\"badge lbl\">");
        const char *n = t[i].notice ? strstr(p, t[i].notice) : NULL;
        if (rows != t[i].rows || (t[i].notice && n == NULL) || (!t[i].notice && strstr(p, "not shown")) ||
            strlen(p) > t[i].max_bytes)
            fail_msg("case %zu (%s): %zu rows, notice %s, %zu bytes", i, t[i].note, rows, n ? "found" : "missing", strlen(p));
        print_message("%s: %zu series rows, page of %zu bytes\n", t[i].filter, rows, strlen(p));
        /* the page in parts of any size is the same page */
        static const size_t budgets[] = {1, 100, 4096, 65536};
        for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
            fy_ui_t *u = fy_ui_open(s, &o);
            fy_buf_t b = {0};
            const char *part;
            size_t len;
            int more;
            do {
                more = fy_ui_next(u, budgets[k], &part, &len);
                fy_buf_add(&b, part, len);
            } while (more);
            fy_ui_close(u);
            if (b.len != strlen(p) || memcmp(b.p, p, b.len) != 0)
                fail_msg("case %zu (%s), budget %zu: parts differ from the whole page", i, t[i].note, budgets[k]);
            fy_buf_free(&b);
        }
        free(p);
    }
    fy_store_destroy(s);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Group states (ui.h, fy_ui_state; docs/ui.md). */

#define S_ 1000000000LL /* one second in ns */

static void test_state_rules(void **state)
{
    (void)state;
    static const struct {
        int64_t push, fail, interval, ttl, deadline; /* the view's times (0 = none) */
        int64_t now, grace;
        fy_ui_state_t want;
        const char *note;
    } t[] = {
        {100 * S_, 0, 0, 0, 0, 200 * S_, 30 * S_, FY_UI_UNDECLARED, "no interval, no TTL: nothing to judge by"},
        {100 * S_, 0, 0, 0, 0, 999999 * S_, 30 * S_, FY_UI_UNDECLARED, "without an interval a group is never late"},
        {100 * S_, 0, 10 * S_, 0, 0, 105 * S_, 30 * S_, FY_UI_ALIVE, "within its interval"},
        {100 * S_, 0, 10 * S_, 0, 0, 140 * S_, 30 * S_, FY_UI_ALIVE, "interval + grace exactly: push_alive is still 1"},
        {100 * S_, 0, 10 * S_, 0, 0, 140 * S_ + 1, 30 * S_, FY_UI_LATE, "one ns past interval + grace: late"},
        {100 * S_, 0, 10 * S_, 0, 0, 111 * S_, 0, FY_UI_LATE, "no grace: late right after the interval"},
        {0, 0, 10 * S_, 0, 0, 1 * S_, 30 * S_, FY_UI_LATE, "never pushed successfully: push_alive 0, so late"},
        {100 * S_, 150 * S_, 10 * S_, 0, 0, 151 * S_, 30 * S_, FY_UI_FAILED, "last push failed: failed wins over late"},
        {100 * S_, 150 * S_, 0, 0, 0, 151 * S_, 30 * S_, FY_UI_FAILED, "failed without any declaration"},
        {0, 5 * S_, 0, 0, 0, 6 * S_, 30 * S_, FY_UI_FAILED, "a group whose only push failed"},
        {150 * S_, 150 * S_, 0, 0, 0, 151 * S_, 30 * S_, FY_UI_UNDECLARED, "failure at the push's instant: not failed"},
        {150 * S_, 100 * S_, 10 * S_, 0, 0, 151 * S_, 30 * S_, FY_UI_ALIVE, "a success after a failure"},
        {100 * S_, 0, 0, 100 * S_, 200 * S_, 174 * S_, 30 * S_, FY_UI_UNDECLARED, "26 s of a 100 s TTL left: not yet soon"},
        {100 * S_, 0, 0, 100 * S_, 200 * S_, 175 * S_, 30 * S_, FY_UI_EXPIRING, "a quarter of the TTL left: expires soon"},
        {100 * S_, 0, 60 * S_, 100 * S_, 200 * S_, 180 * S_, 30 * S_, FY_UI_EXPIRING, "alive but expiring: expiring wins"},
        {100 * S_, 0, 10 * S_, 100 * S_, 200 * S_, 180 * S_, 30 * S_, FY_UI_LATE, "late and expiring: late wins"},
        {100 * S_, 0, 10 * S_, 100 * S_, 200 * S_, 120 * S_, 30 * S_, FY_UI_ALIVE, "alive, TTL far off"},
        {100 * S_, 0, 0, 0, 200 * S_, 199 * S_, 30 * S_, FY_UI_UNDECLARED, "a deadline without a TTL in effect is ignored"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_store_group_view_t g;
        memset(&g, 0, sizeof(g));
        g.push_ns = t[i].push;
        g.fail_ns = t[i].fail;
        g.interval_ns = t[i].interval;
        g.ttl_ns = t[i].ttl;
        g.deadline_ns = t[i].deadline;
        fy_ui_state_t got = fy_ui_state(&g, t[i].now, t[i].grace);
        if (got != t[i].want)
            fail_msg("case %zu (%s): %s, want %s", i, t[i].note, fy_ui_state_name(got), fy_ui_state_name(t[i].want));
    }
    /* names and texts round-trip, and anything else is no state */
    for (int i = 0; i < FY_UI_NSTATES; i++) {
        const char *n = fy_ui_state_name((fy_ui_state_t)i);
        assert_int_equal(fy_ui_state_parse(n, strlen(n)), i);
    }
    assert_string_equal(fy_ui_state_text(FY_UI_EXPIRING), "expires soon");
    assert_string_equal(fy_ui_state_text(FY_UI_UNDECLARED), "no interval");
    assert_int_equal(fy_ui_state_parse("LATE", 4), -1);
    assert_int_equal(fy_ui_state_parse("lat", 3), -1);
    assert_int_equal(fy_ui_state_parse("", 0), -1);
}

/* Pushes `body` with a declared lifetime (seconds; 0 = none) at `at` seconds to the group job=job[, instance=inst]. */
static void push_life(fy_store_t *s, const char *job, const char *inst, const char *body, int64_t at, int64_t interval_s,
                      int64_t ttl_s)
{
    fy_store_label_t gk[2] = {{fy_str("job", 3), fy_str(job, strlen(job))},
                              {fy_str("instance", 8), fy_str(inst ? inst : "", inst ? strlen(inst) : 0)}};
    fy_body_t b;
    fy_parse_error_t perr;
    memset(&b, 0, sizeof(b));
    assert_int_equal(fy_test_parse(fy_parse_text, body, strlen(body), &b, &perr), FY_OK);
    fy_store_life_t life = {ttl_s * S_, interval_s * S_};
    fy_store_err_t err;
    if (fy_store_push_life(s, gk, inst ? 2 : 1, FY_STORE_PUT, &b, &life, at * S_, 0, &err) != FY_OK)
        fy_store_err_free(&err);
}

/* The jobs of the rendered groups, in page order, joined by ','. */
static void page_jobs(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *g = p; (g = strstr(g, "<details class=\"group\" ")) != NULL; g++) {
        const char *j = strstr(g, "<span class=\"badge job\">job=&#34;");
        assert_non_null(j);
        j += strlen("<span class=\"badge job\">job=&#34;");
        const char *e = strstr(j, "&#34;");
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "," : "", (int)(e - j), j);
        assert_true(n < cap);
    }
}

static void test_states_on_page(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    /* now = 1000 s; grace 30 s */
    push_life(s, "alive", NULL, "m 1\n", 995, 10, 0);
    push_life(s, "late", NULL, "m 1\n", 900, 10, 0);
    push_life(s, "plain", NULL, "m 1\n", 10, 0, 0);
    push_life(s, "failed", NULL, "m 1\n", 990, 10, 0);
    push_life(s, "failed", NULL, "m 1 1234\n", 995, 10, 0); /* a timestamp: the push fails */
    push_life(s, "soon", NULL, "m 1\n", 950, 0, 60);        /* expires at 1010: 10 s of 60 left */
    fy_ui_opts_t o = {0};
    o.now_ns = 1000 * S_;
    o.grace_ns = 30 * S_;
    static const struct {
        const char *job, *state, *text;
    } t[] = {
        {"alive", "alive", "alive"},
        {"late", "late", "late"},
        {"plain", "undeclared", "no interval"},
        {"failed", "failed", "failed"},
        {"soon", "expiring", "expires soon"},
    };
    char *p = page(s, &o);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char want[256];
        snprintf(want, sizeof(want), "<details class=\"group\" data-state=\"%s\">", t[i].state);
        const char *g = strstr(p, want);
        if (g == NULL)
            fail_msg("case %zu: no group in state %s", i, t[i].state);
        snprintf(want, sizeof(want), "\">%s</span> <span class=\"badge job\">job=&#34;%s&#34;", t[i].text, t[i].job);
        const char *b = strstr(g, want);
        if (b == NULL || b > strstr(g, "</summary>"))
            fail_msg("case %zu: the group of job %s has no badge \"%s\"", i, t[i].job, t[i].text);
        snprintf(want, sizeof(want), "<span class=\"badge st st-%s\" title=\"", t[i].state);
        assert_non_null(strstr(g, want));
    }
    /* the state choice counts every state, and says which is chosen */
    assert_non_null(strstr(p, "<option value=\"\">all states (5)</option><option value=\"failed\">failed (1)</option>"
                              "<option value=\"late\">late (1)</option><option value=\"expiring\">expires soon (1)</option>"
                              "<option value=\"alive\">alive (1)</option><option value=\"undeclared\">no interval (1)</option>"));
    assert_non_null(strstr(p, "title=\"last push 100s ago; expected every 10s (+30s grace)\">late</span>"));
    assert_non_null(strstr(p, "title=\"deleted in 10s unless pushed (TTL 60s)\">expires soon</span>"));
    assert_non_null(strstr(p, "<a href=\"static/docs/\">Help</a>"));
    assert_null(strstr(p, "github.com/prometheus/pushgateway"));
    free(p);
    fy_store_destroy(s);
}

static void test_filters_and_order(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    /* the canonical key sorts instance before job ("instance" < "job"); the page sorts by job first */
    push_life(s, "b", "1", "m 1\n", 990, 10, 0);   /* alive */
    push_life(s, "a", "2", "m 1\n", 900, 10, 0);   /* late, oldest push */
    push_life(s, "a", "1", "m 1\n", 980, 10, 0);   /* alive */
    push_life(s, "ab", "0", "m 1\n", 999, 0, 0);   /* no interval, newest push */
    push_life(s, "c", NULL, "m 1\n", 950, 100, 0); /* alive, no instance label */
    push_life(s, "bc", "9", "m 1\n", 950, 10, 0);  /* late: 50 s ago, interval + grace 40 s */
    static const struct {
        const char *filter, *job;
        int state, sort;
        const char *jobs; /* the page's groups, in order */
        const char *note;
    } t[] = {
        {NULL, NULL, 0, FY_UI_SORT_JOB, "a,a,ab,b,bc,c", "job, then instance; a value that is a prefix comes first"},
        {NULL, NULL, 0, FY_UI_SORT_STATE, "a,bc,a,b,c,ab", "late first, then alive, then no interval; job within"},
        {NULL, NULL, 0, FY_UI_SORT_PUSH, "a,bc,c,a,b,ab", "oldest push first; the same push time: by job"},
        {NULL, "b", 0, FY_UI_SORT_JOB, "ab,b,bc", "job contains b"},
        {NULL, "bc", 0, FY_UI_SORT_JOB, "bc", "job contains bc"},
        {NULL, "zz", 0, FY_UI_SORT_JOB, "", "no such job"},
        {NULL, NULL, FY_UI_LATE + 1, FY_UI_SORT_JOB, "a,bc", "late only"},
        {NULL, NULL, FY_UI_ALIVE + 1, FY_UI_SORT_JOB, "a,b,c", "alive only"},
        {NULL, NULL, FY_UI_FAILED + 1, FY_UI_SORT_JOB, "", "none failed"},
        {NULL, "b", FY_UI_LATE + 1, FY_UI_SORT_JOB, "bc", "job and state together"},
        {"1", NULL, 0, FY_UI_SORT_JOB, "a,b", "label value filter (instance 1) as before"},
        {"1", "a", FY_UI_ALIVE + 1, FY_UI_SORT_JOB, "a", "all three filters"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_ui_opts_t o = {0};
        o.now_ns = 1000 * S_;
        o.grace_ns = 30 * S_;
        o.filter = t[i].filter;
        o.filter_len = t[i].filter ? strlen(t[i].filter) : 0;
        o.job = t[i].job;
        o.job_len = t[i].job ? strlen(t[i].job) : 0;
        o.state = t[i].state;
        o.sort = t[i].sort;
        char *p = page(s, &o);
        char jobs[256];
        page_jobs(p, jobs, sizeof(jobs));
        if (strcmp(jobs, t[i].jobs) != 0)
            fail_msg("case %zu (%s): %s, want %s", i, t[i].note, jobs, t[i].jobs);
        free(p);
    }
    /* the pager's links keep the filters and the order */
    fy_ui_opts_t o = {0};
    o.now_ns = 1000 * S_;
    o.page_size = 1;
    o.grace_ns = 30 * S_;
    o.job = "b";
    o.job_len = 1;
    o.sort = FY_UI_SORT_PUSH;
    char *p = page(s, &o);
    assert_non_null(strstr(p, "<a href=\"?page=1&amp;limit=1&amp;job=b&amp;sort=push\">next &rarr;</a>"));
    assert_non_null(strstr(p, "<option value=\"push\" selected>"));
    assert_non_null(strstr(p, "<input name=\"job\" aria-label=\"job contains\" placeholder=\"job contains\" value=\"b\">"));
    free(p);
    o.job = NULL;
    o.job_len = 0;
    o.sort = FY_UI_SORT_JOB;
    o.state = FY_UI_LATE + 1;
    p = page(s, &o);
    assert_non_null(strstr(p, "<a href=\"?page=1&amp;limit=1&amp;state=late\">next &rarr;</a>"));
    assert_non_null(strstr(p, "<option value=\"late\" selected>late (2)</option>"));
    free(p);
    o.job = "<\"&'>"; /* the form shows the job filter escaped */
    o.job_len = strlen(o.job);
    p = page(s, &o);
    assert_non_null(strstr(p, "placeholder=\"job contains\" value=\"&lt;&#34;&amp;&#39;&gt;\">"));
    assert_non_null(strstr(p, "<p class=\"muted pager\">0 groups</p>"));
    free(p);
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_page_escapes_pushed_data),
        cmocka_unit_test(test_delete_urls),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_pager),
        cmocka_unit_test(test_huge_groups),
        cmocka_unit_test(test_last_push_failed),
        cmocka_unit_test(test_delete_all_button),
        cmocka_unit_test(test_large_store),
        cmocka_unit_test(test_state_rules),
        cmocka_unit_test(test_states_on_page),
        cmocka_unit_test(test_filters_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
