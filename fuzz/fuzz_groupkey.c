/*
 * fuzz_groupkey.c: libFuzzer target for the grouping key of a push URL (src/groupkey.c). The first byte chooses the
 * base64 job route and the label-value limit; the rest is split at the first '\n' into the decoded job segment and
 * the labels remainder, as the router hands them over. On success the labels are unique, sorted bytewise, include
 * "job", have valid names, and point into the input or the scratch buffer; on failure the message fits its buffer.
 */
#include "../src/common/base64.c"
#include "../src/http/groupkey.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int within(const char *p, size_t n, const char *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int b64 = data[0] & 1;
    size_t max_value = (data[0] & 2) ? 16 : 0;
    int utf8 = (data[0] & 4) != 0; /* --push.enable-utf8-names: UTF-8 and U__ label names */
    fy_groupkey_set_utf8_names(utf8);
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(in, '\n', n);
    size_t job_len = nl ? (size_t)(nl - in) : n;
    const char *labels = nl ? nl + 1 : in + n;
    size_t labels_len = nl ? n - job_len - 1 : 0;
    char *job = malloc(job_len ? job_len : 1), *lab = malloc(labels_len ? labels_len : 1);
    memcpy(job, in, job_len);
    memcpy(lab, labels, labels_len);
    char *scratch = malloc(job_len + labels_len + 1);
    size_t cap = fy_groupkey_max_labels(labels_len);
    fy_gk_label_t *out = calloc(cap ? cap : 1, sizeof(*out));
    size_t nout = 0;
    char err[FY_GK_ERR_MAX];
    err[0] = '\0';
    if (fy_groupkey_parse(job, job_len, b64, lab, labels_len, max_value, scratch, out, &nout, err) == 0) {
        int has_job = 0;
        CHECK(nout >= 1 && nout <= cap);
        for (size_t i = 0; i < nout; i++) {
            CHECK((utf8 ? label_name_ok_utf8(out[i].name, out[i].name_len)
                        : fy_groupkey_label_name_ok(out[i].name, out[i].name_len)) ||
                  (out[i].name_len == 3 && !memcmp(out[i].name, "job", 3)));
            CHECK(within(out[i].name, out[i].name_len, lab, labels_len) ||
                  within(out[i].name, out[i].name_len, scratch, job_len + labels_len) ||
                  (out[i].name_len == 3 && !memcmp(out[i].name, "job", 3)));
            CHECK(within(out[i].value, out[i].value_len, job, job_len) || within(out[i].value, out[i].value_len, lab, labels_len) ||
                  within(out[i].value, out[i].value_len, scratch, job_len + labels_len));
            has_job |= out[i].name_len == 3 && !memcmp(out[i].name, "job", 3);
            if (i > 0) {
                size_t m = out[i - 1].name_len < out[i].name_len ? out[i - 1].name_len : out[i].name_len;
                int c = memcmp(out[i - 1].name, out[i].name, m);
                CHECK(c < 0 || (c == 0 && out[i - 1].name_len < out[i].name_len));
            }
        }
        CHECK(has_job);
    } else {
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }
    free(job);
    free(lab);
    free(scratch);
    free(out);
    return 0;
}
