/*
 * test_http_groupkey.c: grouping keys from push/delete URLs (spec section 4, edge cases 3-5, E04-E06, E29, E30).
 * Each row: the router's parameters (decoded job, job@base64 or not, decoded labels remainder), then the expected
 * labels as "name=value;..." sorted by name, or the exact 400 message.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/common/base64.c"
#include "../src/http/groupkey.c"

typedef struct {
    const char *job;
    int b64;
    const char *labels;
    const char *want; /* "a=1;job=x" or NULL when err applies */
    const char *err;
    const char *note;
} gk_case_t;

static const gk_case_t cases[] = {
    {"j1", 0, "", "job=j1", NULL, "plain job"},
    {"e3", 0, "/", "job=e3", NULL, "trailing slash after the job: same group"},
    {"e1", 0, "/x/", "job=e1;x=", NULL, "trailing slash after a name: empty value"},
    {"e4", 0, "/x", NULL, "odd number of components in label string \"/x\"", "name without value"},
    {"a", 0, "/b", NULL, "odd number of components in label string \"/b\"", "%2F in the job became a separator (E05)"},
    {"j1", 0, "/path@base64/L3Zhci90bXA", "job=j1;path=/var/tmp", NULL, "README example"},
    {"j1", 0, "/first_label@base64/=/second_label/foobar", "first_label=;job=j1;second_label=foobar", NULL, "= is empty"},
    {"L3Zhci90bXA=", 1, "", "job=/var/tmp", NULL, "job@base64"},
    {"titan", 0, "/name@base64/zqDPgc6_zrzOt864zrXPjc-C",
     "job=titan;name=\xce\xa0\xcf\x81\xce\xbf\xce\xbc\xce\xb7\xce\xb8\xce\xb5\xcf\x8d\xcf\x82", NULL, "URL-safe alphabet"},
    {"e5", 0, "/1abc/v", NULL, "improper label name \"1abc\"", "digit first"},
    {"e5", 0, "/__abc/v", NULL, "improper label name \"__abc\"", "reserved prefix"},
    {"e5", 0, "/__abc@base64/dg", NULL, "improper label name \"__abc\"", "reserved prefix, suffix trimmed"},
    {"e5", 0, "/foo-bar/v", NULL, "improper label name \"foo-bar\"", "dash"},
    {"e5", 0, "/@base64/dg", NULL, "improper label name \"\"", "only the suffix"},
    {"f9", 0, "/x@base64@base64/YQ", NULL, "improper label name \"x@base64\"", "one suffix trimmed"},
    {"f1", 0, "/x@base64/a+b/", NULL, "odd number of components in label string \"/x@base64/a+b/\"", "odd before base64"},
    {"f1", 0, "/x@base64/Y", NULL, "invalid base64 encoding for label x=\"Y\": illegal base64 data at input byte 0", "1 char"},
    {"f1", 0, "/x@base64/YR", "job=f1;x=a", NULL, "non-zero pad bits accepted"},
    {"f2", 0, "/x@base64/YQ=====", "job=f2;x=a", NULL, "any number of trailing ="},
    {"f3", 0, "/x@base64/Y=Q", NULL, "invalid base64 encoding for label x=\"Y=Q\": illegal base64 data at input byte 1",
     "= inside"},
    {"f4", 0, "/x@base64/Y\nQ", "job=f4;x=a", NULL, "newline ignored"},
    {"f4", 0, "/x@base64/Y\r\nQ", "job=f4;x=a", NULL, "CR LF ignored"},
    {"g1", 0, "/x@base64/a+b", NULL, "invalid base64 encoding for label x=\"a+b\": illegal base64 data at input byte 1",
     "+ invalid"},
    {"f6", 0, "/x/1/x/2", "job=f6;x=2", NULL, "duplicate: last wins"},
    {"f6", 0, "/x@base64/MQ/x/2", "job=f6;x=2", NULL, "duplicate mixed plain/base64: last wins"},
    {"f6", 0, "/x/2/x@base64/MQ", "job=f6;x=1", NULL, "duplicate mixed base64/plain: last wins"},
    {"f7", 0, "/job/other", "job=f7", NULL, "job segment overrides a job label"},
    {"f8", 0, "/job@base64/b3RoZXI", "job=f8", NULL, "also a base64 job label"},
    {"f10", 0, "/instance@base64/=", "instance=;job=f10", NULL, "empty instance is part of the key"},
    {"f11", 0, "/x@base64/", "job=f11;x=", NULL, "trailing base64 value empty"},
    {"a+b", 1, "", NULL, "invalid base64 encoding in job name \"\": illegal base64 data at input byte 1", "E29"},
    {"YWJj+", 1, "/a/b", NULL, "invalid base64 encoding in job name \"abc\": illegal base64 data at input byte 4",
     "partial job reported"},
    {"=", 1, "", NULL, "job name is required", "empty base64 job"},
    {"=", 1, "/a/b", NULL, "job name is required", "labels checked first, then the job"},
    {"=", 1, "/a", NULL, "odd number of components in label string \"/a\"", "labels error wins over empty job"},
    {"YQ", 1, "/x/y", "job=a;x=y", NULL, "base64 job with labels"},
    {" ", 0, "/a/b", "a=b;job= ", NULL, "blank job (E29)"},
    {"a+b%c", 0, "", "job=a+b%c", NULL, "+ stays literal (E30)"},
    {"...", 0, "/a/b", "a=b;job=...", NULL, "three dots are a name (E30)"},
    {"inv", 0, "/a/\xff", NULL, "grouping label a has a value that is not valid UTF-8: \"\\xff\"", "Ferry: B4 rejected early"},
    {"\xff", 0, "", NULL, "grouping label job has a value that is not valid UTF-8: \"\\xff\"", "Ferry: invalid job"},
    {"/w8", 1, "", NULL, "invalid base64 encoding in job name \"\": illegal base64 data at input byte 0", "/ not in alphabet"},
    {"b", 0, "/z/1/a/2/m/3", "a=2;job=b;m=3;z=1", NULL, "labels come out sorted by name"},
};

static void render(const fy_gk_label_t *l, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        w += (size_t)snprintf(out + w, cap - w, "%s%.*s=%.*s", i ? ";" : "", (int)l[i].name_len, l[i].name, (int)l[i].value_len,
                              l[i].value);
}

static void run_case(const gk_case_t *c, const char *want)
{
    size_t jl = strlen(c->job), ll = strlen(c->labels), n = 0;
    char *scratch = malloc(jl + ll + 1), err[FY_GK_ERR_MAX], got[1024];
    fy_gk_label_t *out = malloc(sizeof(*out) * fy_groupkey_max_labels(ll));
    /* job and labels come from separate guarded copies so that any over-read faults */
    char *job = malloc(jl + 1);
    memcpy(job, c->job, jl);
    const char *labels = fy_guarded(c->labels, ll);
    int rc = fy_groupkey_parse(job, jl, c->b64, labels, ll, 32768, scratch, out, &n, err);
    if (want != NULL) {
        if (rc != 0)
            fail_msg("%s: unexpected error %s", c->note, err);
        render(out, n, got, sizeof(got));
        if (strcmp(got, want) != 0)
            fail_msg("%s: got %s, want %s", c->note, got, want);
    } else {
        if (rc == 0)
            fail_msg("%s: expected error %s", c->note, c->err);
        if (strcmp(err, c->err) != 0)
            fail_msg("%s: got error '%s', want '%s'", c->note, err, c->err);
    }
    free(job);
    free(scratch);
    free(out);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i], cases[i].want);
}

/* --push.enable-utf8-names: U__ names (common v0.61's ValueEncodingEscaping), as Pushgateway 1.11 decodes them. */
typedef struct {
    const char *in;
    const char *want; /* NULL: not an encoding, the name stands as written */
    const char *note;
} unescape_case_t;

static const unescape_case_t unescape_cases[] = {
    {"U__dotted_2e_label_2e_name", "dotted.label.name", "1.11's handler test"},
    {"U__label_2e_name2", "label.name2", "1.11's splitLabels test"},
    {"U__a__b", "a_b", "__ is one underscore"},
    {"U___2e_", ".", "an escape right after the prefix"},
    {"U__", "", "the prefix alone decodes to the empty name (then refused as a name)"},
    {"U__caf_e9_", "caf\xc3\xa9", "two-byte UTF-8"},
    {"U___20ac_", "\xe2\x82\xac", "three-byte UTF-8 (euro sign)"},
    {"U___1F600_", "\xf0\x9f\x98\x80", "four-byte UTF-8, upper-case hex"},
    {"U___0002e_", ".", "leading zeros, five digits"},
    {"U___10ffff_", NULL, "six digits: UnescapeName's digit count check comes before the closing _"},
    {"U___d800_", NULL, "a surrogate is not a valid rune"},
    {"U___110000_", NULL, "beyond U+10FFFF"},
    {"U___2g_", NULL, "not hex"},
    {"U___2e", NULL, "no closing underscore"},
    {"U__a_", NULL, "a lone underscore at the end"},
    {"U_x", NULL, "no U__ prefix"},
    {"u__a_2e_b", NULL, "the prefix is case-sensitive"},
    {"plain", NULL, "a legacy name is not touched"},
    {"U__a.b", "a.b", "other bytes stand for themselves"},
};

static void test_unescape_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(unescape_cases) / sizeof(unescape_cases[0]); i++) {
        const unescape_case_t *c = &unescape_cases[i];
        size_t n = strlen(c->in);
        char out[64];
        size_t got = fy_groupkey_unescape_name(fy_guarded(c->in, n), n, out);
        if (c->want == NULL) {
            if (got != (size_t)-1)
                fail_msg("%s: decoded to \"%.*s\", want no decoding", c->note, (int)got, out);
            continue;
        }
        if (got == (size_t)-1)
            fail_msg("%s: not decoded, want \"%s\"", c->note, c->want);
        assert_true(got <= n);
        if (got != strlen(c->want) || memcmp(out, c->want, got) != 0)
            fail_msg("%s: got \"%.*s\", want \"%s\"", c->note, (int)got, out, c->want);
    }
}

static const gk_case_t utf8_cases[] = {
    {"testjob", 0, "/instance/testinstance/U__dotted_2e_label_2e_name/mylabelvalue",
     "dotted.label.name=mylabelvalue;instance=testinstance;job=testjob", NULL, "1.11's handler test"},
    {"testjob", 0, "/instance@base64/dGVzdGluc3RhbmNl/U__dotted_2e_label_2e_name@base64/bXlsYWJlbHZhbHVl",
     "dotted.label.name=mylabelvalue;instance=testinstance;job=testjob", NULL, "U__ name with a base64 value"},
    {"j", 0, "/label_name1/label_value1/U__label_2e_name2/label_value2", "job=j;label.name2=label_value2;label_name1=label_value1",
     NULL, "1.11's splitLabels test"},
    {"j", 0, "/a.b/1", "a.b=1;job=j", NULL, "an unescaped UTF-8 name is valid too"},
    {"j", 0, "/caf\xc3\xa9/1", "caf\xc3\xa9=1;job=j", NULL, "raw UTF-8 in the name"},
    {"j", 0, "/U___2g_/1", "U___2g_=1;job=j", NULL, "a name that does not decode stands as written"},
    {"j", 0, "/U__job/x", "job=j", NULL, "U__job is job: the job segment still wins"},
    {"j", 0, "/U__/1", NULL, "improper label name \"U__\"", "decodes to the empty name"},
    {"j", 0, "/U______x/1", NULL, "improper label name \"U______x\"", "Ferry: decodes to __x, reserved"},
    {"j", 0, "/__x/1", NULL, "improper label name \"__x\"", "the reserved prefix as written"},
    {"j", 0, "/a\xff/1", NULL, "improper label name \"a\\xff\"", "invalid UTF-8 in a name"},
    {"j", 0, "/U__a_ff_/1", "a\xc3\xbf=1;job=j", NULL, "_ff_ is U+00FF, not the byte 0xff"},
};

static void test_utf8_names(void **state)
{
    (void)state;
    fy_groupkey_set_utf8_names(1);
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++)
        run_case(&utf8_cases[i], utf8_cases[i].want);
    fy_groupkey_set_utf8_names(0);
    /* Without the flag U__ names are literal, as 1.11 keeps them with legacy validation, and dots are refused. */
    static const gk_case_t legacy[] = {
        {"j", 0, "/label_name1/label_value1/U__label_2e_name2/label_value2",
         "U__label_2e_name2=label_value2;job=j;label_name1=label_value1", NULL, "1.11: U__ literal under legacy validation"},
        {"j", 0, "/a.b/1", NULL, "improper label name \"a.b\"", "a dot is improper without the flag"},
    };
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
        run_case(&legacy[i], legacy[i].want);
}

static void test_value_length_limit(void **state)
{
    (void)state;
    char labels[64], err[FY_GK_ERR_MAX], scratch[80];
    fy_gk_label_t out[8];
    size_t n;
    snprintf(labels, sizeof(labels), "/v/%s", "0123456789");
    assert_int_equal(fy_groupkey_parse("j", 1, 0, labels, strlen(labels), 10, scratch, out, &n, err), 0);
    assert_int_equal(fy_groupkey_parse("j", 1, 0, labels, strlen(labels), 9, scratch, out, &n, err), -1);
    assert_string_equal(err, "grouping label v has a value longer than 9 bytes (--push.max-label-value-length)");
}

/* --push.max-grouping-labels (job included, pairs as written) and --push.max-grouping-key-bytes (job + remainder as
 * the router decoded them), checked before the reference's checks. Rows: limits, router parameters, expected. */
typedef struct {
    size_t max_labels, max_key_bytes;
    gk_case_t c;
} gk_limit_case_t;

static const gk_limit_case_t limit_cases[] = {
    {3, 0, {"j", 0, "/a/1/b/2", "a=1;b=2;job=j", NULL, "job + 2 pairs = 3: at the limit"}},
    {3,
     0,
     {"j", 0, "/a/1/b/2/c/3", NULL, "grouping key has 4 labels, more than the limit of 3 (--push.max-grouping-labels)",
      "job + 3 pairs = 4: one over"}},
    {3,
     0,
     {"j", 0, "/a/1/a/2/a/3", NULL, "grouping key has 4 labels, more than the limit of 3 (--push.max-grouping-labels)",
      "a repeated name counts each time it is written"}},
    {2, 0, {"j", 0, "/job/x", "job=j", NULL, "a job pair counts (and the job segment overrides it)"}},
    {1, 0, {"j", 0, "/", "job=j", NULL, "only the job"}},
    {3,
     0,
     {"j", 0, "/a/1/b/2/c/3/d", NULL, "grouping key has 4 labels, more than the limit of 3 (--push.max-grouping-labels)",
      "over the limit wins over an odd count"}},
    {3, 0, {"j", 0, "/a/1/b", NULL, "odd number of components in label string \"/a/1/b\"", "odd count within the limit"}},
    {3,
     0,
     {"=", 1, "/1x/a/b/c/d/e", NULL, "grouping key has 4 labels, more than the limit of 3 (--push.max-grouping-labels)",
      "before name and job checks"}},
    {0, 0, {"j", 0, "/a/1/b/2/c/3/d/4/e/5", "a=1;b=2;c=3;d=4;e=5;job=j", NULL, "0: no label limit"}},
    {0, 10, {"j", 0, "/a/123456", "a=123456;job=j", NULL, "1 + 9 = 10 bytes: at the limit"}},
    {0,
     10,
     {"j", 0, "/a/1234567", NULL, "grouping key has 11 bytes, more than the limit of 10 (--push.max-grouping-key-bytes)",
      "one byte over"}},
    {0,
     10,
     {"YWJjZGVmZ2hpams", 1, "", NULL, "grouping key has 15 bytes, more than the limit of 10 (--push.max-grouping-key-bytes)",
      "counted before base64 decoding"}},
    {2,
     10,
     {"j", 0, "/a/1/b/2/c/3/d/4", NULL, "grouping key has 17 bytes, more than the limit of 10 (--push.max-grouping-key-bytes)",
      "bytes checked first"}},
    {0,
     10,
     {"j", 0, "/a/\xff", NULL, "grouping label a has a value that is not valid UTF-8: \"\\xff\"",
      "within the limit: later checks unchanged"}},
};

static void test_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
        fy_groupkey_set_limits(limit_cases[i].max_labels, limit_cases[i].max_key_bytes);
        run_case(&limit_cases[i].c, limit_cases[i].c.want);
    }
    fy_groupkey_set_limits(FY_GK_DEFAULT_MAX_LABELS, FY_GK_DEFAULT_MAX_KEY_BYTES);
}

/* The caller sizes its array with fy_groupkey_max_labels before parsing: bounded by the label limit, not the path. */
static void test_max_labels_room(void **state)
{
    (void)state;
    static const struct {
        size_t max_labels, labels_len, want;
        const char *note;
    } t[] = {
        {64, 0, 2, "no remainder"},
        {64, 10, 7, "short remainder: from its length"},
        {64, 329 * 1024, 64, "the 329 KB key of issue #13: the limit"},
        {0, 329 * 1024, 329 * 512 + 2, "0: from the length, as before"},
        {1, 100, 1, "only the job"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        fy_groupkey_set_limits(t[i].max_labels, 0);
        if (fy_groupkey_max_labels(t[i].labels_len) != t[i].want)
            fail_msg("%s: got %zu, want %zu", t[i].note, fy_groupkey_max_labels(t[i].labels_len), t[i].want);
    }
    fy_groupkey_set_limits(FY_GK_DEFAULT_MAX_LABELS, FY_GK_DEFAULT_MAX_KEY_BYTES);
}

static void test_base64_quanta(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
        long bad;
    } t[] = {
        {"", "", -1},           {"YQ", "a", -1}, {"YWI", "ab", -1},   {"YWJj", "abc", -1},
        {"YWJjZA", "abcd", -1}, {"Y", "", 0},    {"YWJjZ", "abc", 4}, {"Y\n", "", 1},
        {"YW\nJj", "abc", -1},  {"YW*j", "", 2}, {"====", "", -1},    {"_-8", "\xff\xef", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[16];
        size_t n, bad;
        int rc = fy_base64url_decode(t[i].in, strlen(t[i].in), out, &n, &bad);
        assert_int_equal(rc, t[i].bad < 0 ? 0 : -1);
        if (t[i].bad >= 0)
            assert_int_equal(bad, (size_t)t[i].bad);
        assert_int_equal(n, strlen(t[i].out));
        assert_memory_equal(out, t[i].out, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),           cmocka_unit_test(test_value_length_limit), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_max_labels_room), cmocka_unit_test(test_base64_quanta),      cmocka_unit_test(test_unescape_name),
        cmocka_unit_test(test_utf8_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
