/*
 * test_store_keylabels.c: the grouping labels that group views split out of the canonical key (fy__key_labels; the
 * store keeps only the key), and the invariant that makes the split exact: no stored group has a value with the
 * separator byte 0xFF, because a grouping value that is not valid UTF-8 never creates a group (B4 fixed).
 */
#include "store_int.h"
#include "store_testlib.h"

#define NOW 1700000000000000000LL

/* ------------------------------------------------------------------------------------------------------------- */
/* fy__key_labels on canonical keys (the separator 0xFF written \377, which cannot swallow a following digit). */

typedef struct {
    const char *key; /* canonical key bytes */
    size_t keylen;
    uint32_t n;
    const char *want; /* the pairs as "name=value;" each */
    const char *note;
} split_case_t;

#define K(s) s, sizeof(s) - 1

static const split_case_t split_cases[] = {
    {K(""), 0, "", "no labels: the empty key"},
    {K("job\377a"), 1, "job=a;", "one label"},
    {K("job\377"), 1, "job=;", "one label, empty value"},
    {K("instance\37710.1.2.3:9100\377job\377node-exporter"), 2, "instance=10.1.2.3:9100;job=node-exporter;",
     "two labels, the server's usual shape"},
    {K("a\377\377b\377"), 2, "a=;b=;", "two empty values: separators side by side"},
    {K("a\377\377b\377x"), 2, "a=;b=x;", "empty value first"},
    {K("a\377x\377b\377"), 2, "a=x;b=;", "empty value last"},
    {K("a\3771\377b\3772\377c\3773\377d\377\377e\3775"), 5, "a=1;b=2;c=3;d=;e=5;", "several labels"},
    {K("job\377caf\xc3\xa9 \xf4\x8f\xbf\xbf\xef\xbf\xbd"), 1, "job=caf\xc3\xa9 \xf4\x8f\xbf\xbf\xef\xbf\xbd;",
     "multi-byte UTF-8: the highest code point (lead byte 0xF4) and U+FFFD (0xEF 0xBF 0xBD) are not the separator"},
    {K("job\377=a;b"), 1, "job==a;b;", "value with characters that are no separator in the key"},
    {K("_\377\xe2\x80\xa8\377a_1\377/x/y"), 2, "_=\xe2\x80\xa8;a_1=/x/y;", "short names, U+2028, slashes"},
};

/* Renders the pairs as "name=value;" for comparison. */
static char *pairs(const fy_store_label_t *l, uint32_t n)
{
    size_t len = 1;
    for (uint32_t i = 0; i < n; i++)
        len += l[i].name.len + l[i].value.len + 2;
    char *out = malloc(len), *p = out;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(p, l[i].name.ptr, l[i].name.len);
        p += l[i].name.len;
        *p++ = '=';
        memcpy(p, l[i].value.ptr, l[i].value.len);
        p += l[i].value.len;
        *p++ = ';';
    }
    *p = 0;
    return out;
}

static void test_split_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        const split_case_t *c = &split_cases[i];
        /* the key on a guarded page: the split must not read past it */
        const char *gk = fy_guarded(c->key, c->keylen);
        fy_store_label_t out[8];
        fy__key_labels(fy_str(gk, c->keylen), c->n, out);
        char *got = pairs(out, c->n);
        if (strcmp(got, c->want) != 0)
            fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, c->note, got, c->want);
        for (uint32_t k = 0; k < c->n; k++) /* the labels point into the key, not into a copy */
            assert_true(out[k].name.ptr >= gk && out[k].value.ptr + out[k].value.len <= gk + c->keylen);
        free(got);
    }
}

/* Values of 64 KiB (far beyond any URL the server accepts) and names of many bytes split like short ones. */
static void test_split_long(void **state)
{
    (void)state;
    size_t vlen = 65536, nlen = 300;
    size_t keylen = nlen + 1 + vlen + 1 + 1 + 1 + vlen;
    char *key = malloc(keylen), *p = key;
    memset(p, 'a', nlen), p += nlen;
    *p++ = (char)0xff;
    memset(p, 'v', vlen), p += vlen;
    *p++ = (char)0xff;
    *p++ = 'b';
    *p++ = (char)0xff;
    for (size_t i = 0; i < vlen; i += 2) { /* U+00FF as UTF-8 (0xC3 0xBF), so many 0xBF and no 0xFF */
        *p++ = (char)0xc3;
        *p++ = (char)0xbf;
    }
    assert_int_equal((size_t)(p - key), keylen);
    const char *gk = fy_guarded(key, keylen);
    fy_store_label_t out[2];
    fy__key_labels(fy_str(gk, keylen), 2, out);
    assert_int_equal(out[0].name.len, nlen);
    assert_ptr_equal(out[0].name.ptr, gk);
    assert_int_equal(out[0].value.len, vlen);
    assert_ptr_equal(out[0].value.ptr, gk + nlen + 1);
    assert_true(fy_str_eq(out[1].name, fy_str("b", 1)));
    assert_int_equal(out[1].value.len, vlen);
    assert_ptr_equal(out[1].value.ptr, gk + keylen - vlen);
    free(key);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Views of stored groups. */

/* Grouping keys as pushed (any order) and their labels as every view must show them (sorted by name). */
typedef struct {
    const char *push;
    const char *want;
    const char *note;
} view_case_t;

static const view_case_t view_cases[] = {
    {"job=a", "job=a;", "one label"},
    {"job=node-exporter,instance=10.1.2.3:9100", "instance=10.1.2.3:9100;job=node-exporter;", "two, sorted by name"},
    {"job=e,x=", "job=e;x=;", "empty value last"},
    {"x=,job=f,a=", "a=;job=f;x=;", "empty values first and last"},
    {"job=caf\xc3\xa9,z=\xf4\x8f\xbf\xbf", "job=caf\xc3\xa9;z=\xf4\x8f\xbf\xbf;", "multi-byte UTF-8 values"},
    {"l8=8,l7=7,l6=6,l5=5,l4=4,l3=3,l2=2,job=inl", "job=inl;l2=2;l3=3;l4=4;l5=5;l6=6;l7=7;l8=8;",
     "8 labels: the most a view holds inline"},
    {"job=h9,a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=", "a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=;job=h9;", "9 labels: the heap array"},
    {"job=h12,a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11", "a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8;i=9;j=10;job=h12;k=11;",
     "12 labels: the heap array grows"},
    {"job=after-heap,b=2", "b=2;job=after-heap;", "a small group after large ones"},
};
#define NVIEW (sizeof(view_cases) / sizeof(view_cases[0]))

typedef struct {
    char *seen[NVIEW + 1];
    size_t n;
} seen_t;

static int collect(void *ctx, const fy_store_group_view_t *g)
{
    seen_t *S = ctx;
    assert_true(S->n < NVIEW);
    S->seen[S->n++] = pairs(g->labels, g->nlabels);
    return 0;
}

static void seen_check(seen_t *S, const char *how)
{
    if (S->n != NVIEW)
        fail_msg("%s: %zu groups, want %zu", how, S->n, NVIEW);
    for (size_t i = 0; i < NVIEW; i++) {
        int found = 0;
        for (size_t k = 0; k < S->n && !found; k++)
            found = strcmp(S->seen[k], view_cases[i].want) == 0;
        if (!found)
            fail_msg("%s: %s: no view with labels \"%s\"", how, view_cases[i].note, view_cases[i].want);
    }
    for (size_t k = 0; k < S->n; k++)
        free(S->seen[k]);
    S->n = 0;
}

static fy_store_t *filled(int64_t ttl)
{
    fy_store_config_t cfg = {0};
    cfg.nshards = 1; /* one shard: the views follow each other with the same label storage */
    cfg.default_ttl_ns = ttl;
    fy_store_t *s = fy_store_create(&cfg);
    for (size_t i = 0; i < NVIEW; i++)
        if (push_text(s, view_cases[i].push, FY_STORE_PUT, "m 1\n", NOW, NULL, 0) != FY_OK)
            fail_msg("%s: push of %s failed", view_cases[i].note, view_cases[i].push);
    return s;
}

/* foreach_group (the UI and snapshots), foreach_life, bulk-delete predicates and expiry callbacks all see the labels. */
static void test_views(void **state)
{
    (void)state;
    seen_t S = {0};
    fy_store_t *s = filled(10);
    assert_int_equal(fy_store_foreach_group(s, collect, &S), 0);
    seen_check(&S, "foreach_group");
    assert_int_equal(fy_store_foreach_life(s, collect, &S), 0);
    seen_check(&S, "foreach_life");
    assert_int_equal(fy_store_expire(s, NOW + 10, collect, &S), NVIEW);
    seen_check(&S, "expire");
    fy_store_destroy(s);

    s = filled(0);
    assert_int_equal(fy_store_delete_where(s, collect, &S), 0); /* collect answers 0: nothing deleted */
    seen_check(&S, "delete_where");
    fy_store_stats_t st;
    fy_store_stats(s, &st);
    assert_int_equal(st.groups, NVIEW);
    fy_store_destroy(s);
}

/* The JSON API renders the grouping labels (and the timestamp series' labels built from them) of a 12-label group. */
static void test_json_many_labels(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    assert_int_equal(push_text(s, "job=j,k=11,a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=,j=10", FY_STORE_PUT, "", NOW, NULL, 0), FY_OK);
    char *j = render_json(s);
    assert_non_null(strstr(j, "\"labels\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\",\"e\":\"5\",\"f\":\"6\","
                              "\"g\":\"7\",\"h\":\"8\",\"i\":\"\",\"j\":\"10\",\"job\":\"j\",\"k\":\"11\"}"));
    assert_non_null(strstr(j, "\"labels\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\",\"e\":\"5\",\"f\":\"6\","
                              "\"g\":\"7\",\"h\":\"8\",\"i\":\"\",\"instance\":\"\",\"j\":\"10\",\"job\":\"j\",\"k\":\"11\"}"));
    free(j);
    fy_store_destroy(s);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The invariant: a value with byte 0xFF (or any invalid UTF-8) never makes a group, whichever way it is pushed. */

typedef struct {
    const char *gk;
    fy_store_method_t m;
    const char *body;
    const char *note;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"job=a,x=\xff", FY_STORE_PUT, "m 1\n", "PUT, a valid body"},
    {"job=a,x=\xff", FY_STORE_POST, "m 1\n", "POST"},
    {"job=a,x=\xff", FY_STORE_PUT, "", "empty body"},
    {"job=a,x=\xff", FY_STORE_PUT, "m 1 123\n", "a body rejected for its own reason (timestamp) too"},
    {"job=\xff", FY_STORE_PUT, "m 1\n", "the only value"},
    {"job=a\377b,x=y", FY_STORE_PUT, "m 1\n", "0xFF inside a value would look like a separator"},
    {"job=a,x=\xc3", FY_STORE_PUT, "m 1\n", "a truncated sequence (no 0xFF, still invalid)"},
};

static void test_no_group_with_invalid_value(void **state)
{
    (void)state;
    fy_store_t *s = fy_store_create(NULL);
    /* an existing group of the same job: the failure must not be recorded elsewhere either */
    assert_int_equal(push_text(s, "job=a", FY_STORE_PUT, "m 1\n", NOW, NULL, 0), FY_OK);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        fy_store_label_t l[16];
        char mem[512];
        size_t n = parse_gk(c->gk, l, mem);
        fy_body_t body;
        memset(&body, 0, sizeof(body));
        size_t len = strlen(c->body);
        void *amem = malloc(fy_parse_arena_hint(len) + 1);
        if (len) {
            fy_arena_t a;
            fy_parse_error_t perr;
            fy_arena_init(&a, amem, fy_parse_arena_hint(len));
            assert_int_equal(fy_parse_text(c->body, len, &a, &body, &perr), FY_OK);
        }
        fy_store_err_t err;
        int rc = fy_store_push(s, l, n, c->m, &body, NOW, 0, &err);
        if (rc != FY_SERR_INVALID || err.group_created || err.failure_recorded)
            fail_msg("%s: rc %d, group_created %d, failure_recorded %d", c->note, rc, err.group_created, err.failure_recorded);
        fy_store_err_free(&err);
        free(amem);
        fy_store_stats_t st;
        fy_store_stats(s, &st);
        if (st.groups != 1)
            fail_msg("%s: %llu groups", c->note, (unsigned long long)st.groups);
    }
    fy_store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_split_long),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_json_many_labels),
        cmocka_unit_test(test_no_group_with_invalid_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
