/*
 * test_common_base64.c: src/common/base64.c against encoding/base64's behaviour (Go 1.19): decoded bytes, and the offset of
 * CorruptInputError, for the two encodings the reference uses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/common/base64.c"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        fy_base64_t enc;
        const char *in, *out; /* out NULL: an error at bad_at */
        size_t out_len, bad_at;
        const char *note;
    } t[] = {
        {FY_BASE64_STD, "", "", 0, 0, "empty"},
        {FY_BASE64_STD, "YQ==", "a", 1, 0, "two pad characters"},
        {FY_BASE64_STD, "YWI=", "ab", 2, 0, "one pad character"},
        {FY_BASE64_STD, "YWJj", "abc", 3, 0, "no padding needed"},
        {FY_BASE64_STD, "Y\r\nQ=\n=", "a", 1, 0, "newlines anywhere, between the pads too"},
        {FY_BASE64_STD, "YR==", "a", 1, 0, "pad bits are ignored (not strict)"},
        {FY_BASE64_STD, "YQ", NULL, 0, 0, "padding missing: at the quantum's start"},
        {FY_BASE64_STD, "YQ=", NULL, 0, 3, "not enough padding: at the end"},
        {FY_BASE64_STD, "Y===", NULL, 0, 1, "padding after one character"},
        {FY_BASE64_STD, "YQ=x", NULL, 0, 2, "a pad then something else"},
        {FY_BASE64_STD, "YQ==YQ==", NULL, 1, 4, "trailing data after the padding"},
        {FY_BASE64_STD, "YW-j", NULL, 0, 2, "a URL character in the standard alphabet"},
        {FY_BASE64_STD, "+/+/", "\xfb\xff\xbf", 3, 0, "the standard alphabet's last two"},
        {FY_BASE64_RAW_URL, "YQ", "a", 1, 0, "unpadded"},
        {FY_BASE64_RAW_URL, "YWJjZA", "abcd", 4, 0, "a short last quantum"},
        {FY_BASE64_RAW_URL, "-_-_", "\xfb\xff\xbf", 3, 0, "the URL alphabet's last two"},
        {FY_BASE64_RAW_URL, "YWJjZ", NULL, 3, 4, "one character left over"},
        {FY_BASE64_RAW_URL, "YQ=", NULL, 0, 2, "no padding in a raw encoding: the quantum yields nothing"},
        {FY_BASE64_RAW_URL, "Y/", NULL, 0, 1, "a standard character in the URL alphabet"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[64];
        size_t n = 99, bad = 99;
        int rc = fy_base64_decode(t[i].enc, t[i].in, strlen(t[i].in), out, &n, &bad);
        if (t[i].out != NULL) {
            if (rc != 0 || n != t[i].out_len || memcmp(out, t[i].out, n) != 0)
                fail_msg("%s: rc %d, %zu bytes", t[i].note, rc, n);
        } else if (rc != -1 || bad != t[i].bad_at || n != t[i].out_len) {
            fail_msg("%s: rc %d, bad_at %zu (want %zu), %zu bytes (want %zu)", t[i].note, rc, bad, t[i].bad_at, n, t[i].out_len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
