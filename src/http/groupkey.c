/*
 * groupkey.c: grouping-key parsing for push and delete URLs. Owns the order of checks and every error text; the
 * Pushgateway reports the first failing check, so the order below is part of the interface:
 *   0. (Ferry only) the key's length and label count (--push.max-grouping-key-bytes, --push.max-grouping-labels),
 *   1. job@base64 decoding, 2. the label pairs (odd count, names, base64 values), 3. empty job, 4. job override,
 *   5. (Ferry only) UTF-8 and length of every value, which the reference lets through to the store (bug B4).
 */
#include "groupkey.h"

#include "base64.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fy_parse.h"

/* Written once by fy_groupkey_set_limits / _set_utf8_names before the loop threads start, only read afterwards. */
static size_t max_labels = FY_GK_DEFAULT_MAX_LABELS, max_key_bytes = FY_GK_DEFAULT_MAX_KEY_BYTES;
static int utf8_names;

void fy_groupkey_set_utf8_names(int on)
{
    utf8_names = on != 0;
}

void fy_groupkey_set_limits(size_t labels, size_t key_bytes)
{
    max_labels = labels;
    max_key_bytes = key_bytes;
}

size_t fy_groupkey_max_labels(size_t labels_len)
{
    size_t n = labels_len / 2 + 2;
    /* fy_groupkey_parse refuses more than max_labels before writing any, and "job" takes the place of a job pair */
    return max_labels != 0 && max_labels < n ? max_labels : n;
}

#define B64_SUFFIX "@base64"
#define B64_SUFFIX_LEN (sizeof(B64_SUFFIX) - 1)

/* Go's base64.RawURLEncoding.DecodeString after strings.TrimRight(s, "=") (groupkey.h). */
int fy_base64url_decode(const char *s, size_t len, char *out, size_t *out_len, size_t *bad_at)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    return fy_base64_decode(FY_BASE64_RAW_URL, s, len, out, out_len, bad_at);
}

int fy_groupkey_label_name_ok(const char *p, size_t n)
{
    if (n == 0 || (n >= 2 && p[0] == '_' && p[1] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9' && i > 0)))
            return 0;
    }
    return 1;
}

size_t fy_groupkey_unescape_name(const char *s, size_t n, char *out)
{
    if (n < 3 || memcmp(s, "U__", 3) != 0)
        return (size_t)-1;
    size_t o = 0;
    for (size_t i = 3; i < n; i++) {
        if (s[i] != '_') {
            out[o++] = s[i];
            continue;
        }
        if (++i >= n)
            return (size_t)-1;
        if (s[i] == '_') {
            out[o++] = '_';
            continue;
        }
        uint32_t v = 0;
        for (size_t j = 0;; j++, i++) {
            /* UnescapeName's order: the digit count is checked before the closing '_', so six digits fail */
            if (i >= n || j >= 6)
                return (size_t)-1;
            unsigned char c = (unsigned char)(s[i] | 0x20);
            if (s[i] == '_')
                break;
            if (c >= '0' && c <= '9')
                v = v * 16 + (c - '0');
            else if (c >= 'a' && c <= 'f')
                v = v * 16 + (c - 'a' + 10);
            else
                return (size_t)-1;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) /* utf8.ValidRune */
            return (size_t)-1;
        /* A code point's UTF-8 is never longer than its "_<hex>_" form, so out keeps within n bytes. */
        if (v < 0x80) {
            out[o++] = (char)v;
        } else if (v < 0x800) {
            out[o++] = (char)(0xC0 | (v >> 6));
            out[o++] = (char)(0x80 | (v & 0x3F));
        } else if (v < 0x10000) {
            out[o++] = (char)(0xE0 | (v >> 12));
            out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (v & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (v >> 18));
            out[o++] = (char)(0x80 | ((v >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (v & 0x3F));
        }
    }
    return o;
}

/* With --push.enable-utf8-names: model.LabelName.IsValid under UTF8Validation (non-empty, valid UTF-8) and no "__"
 * prefix. */
static int label_name_ok_utf8(const char *p, size_t n)
{
    return n != 0 && !(n >= 2 && p[0] == '_' && p[1] == '_') && fy_utf8_valid(p, n);
}

static int name_cmp(const fy_gk_label_t *a, const fy_gk_label_t *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c != 0)
        return c;
    return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* Inserts into the sorted, unique array; an existing name is overwritten (a later URL pair wins, as with Go's map). */
static void put_label(fy_gk_label_t *out, size_t *n, fy_gk_label_t l)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_cmp(&out[mid], &l);
        if (c == 0) {
            out[mid] = l;
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&out[lo + 1], &out[lo], (*n - lo) * sizeof(*out));
    out[lo] = l;
    (*n)++;
}

static int gk_fail(char *err, const char *fmt, const char *a, const char *b, const char *c)
{
    snprintf(err, FY_GK_ERR_MAX, fmt, a, b, c);
    return -1;
}

int fy_groupkey_parse(const char *job, size_t job_len, int job_b64, const char *labels, size_t labels_len, size_t max_value,
                      char *scratch, fy_gk_label_t *out, size_t *nout, char *err)
{
    char q[FY_GK_ERR_MAX / 2], num[32];
    size_t bad_at, dec_len;

    *nout = 0;
    err[0] = '\0';
    /* The limits come before the reference's checks: an oversized key is refused before it costs any decoding. */
    if (max_key_bytes != 0 && job_len + labels_len > max_key_bytes) {
        char lim[32];
        snprintf(num, sizeof(num), "%zu", job_len + labels_len);
        snprintf(lim, sizeof(lim), "%zu", max_key_bytes);
        return gk_fail(err, "grouping key has %s bytes, more than the limit of %s (--push.max-grouping-key-bytes)", num, lim, NULL);
    }
    if (max_labels != 0 && labels_len > 1) {
        size_t ncomp = 1;
        for (size_t i = 1; i < labels_len; i++)
            ncomp += labels[i] == '/';
        /* the job, then one per name/value pair as written (an odd count is refused below, when within the limit) */
        if (1 + ncomp / 2 > max_labels) {
            char lim[32];
            snprintf(num, sizeof(num), "%zu", 1 + ncomp / 2);
            snprintf(lim, sizeof(lim), "%zu", max_labels);
            return gk_fail(err, "grouping key has %s labels, more than the limit of %s (--push.max-grouping-labels)", num, lim,
                           NULL);
        }
    }
    if (job_b64) {
        if (fy_base64url_decode(job, job_len, scratch, &dec_len, &bad_at) != 0) {
            fy_go_quote(scratch, dec_len, q, sizeof(q));
            snprintf(num, sizeof(num), "%zu", bad_at);
            return gk_fail(err, "invalid base64 encoding in job name %s: illegal base64 data at input byte %s", q, num, NULL);
        }
        job = scratch;
        job_len = dec_len;
        scratch += dec_len;
    }

    if (labels_len > 1) {
        size_t ncomp = 1;
        for (size_t i = 1; i < labels_len; i++)
            ncomp += labels[i] == '/';
        if (ncomp % 2 != 0) {
            fy_go_quote(labels, labels_len, q, sizeof(q));
            return gk_fail(err, "odd number of components in label string %s", q, NULL, NULL);
        }
        const char *p = labels + 1, *end = labels + labels_len;
        while (p < end) {
            const char *name = p, *slash = memchr(p, '/', (size_t)(end - p));
            /* the count is even, so every name has a value component after it (possibly empty at the end) */
            size_t name_len = (size_t)(slash - name);
            const char *value = slash + 1, *vend = memchr(value, '/', (size_t)(end - value));
            if (vend == NULL)
                vend = end;
            size_t value_len = (size_t)(vend - value);
            p = vend + 1;

            int b64 = name_len >= B64_SUFFIX_LEN && memcmp(name + name_len - B64_SUFFIX_LEN, B64_SUFFIX, B64_SUFFIX_LEN) == 0;
            size_t trimmed_len = b64 ? name_len - B64_SUFFIX_LEN : name_len;
            const char *uname = name; /* the name the key gets */
            size_t uname_len = trimmed_len;
            if (utf8_names) {
                /* 1.11 checks the "__" prefix on the name as written and validity on the decoded one; Ferry checks
                 * both on both, since the store refuses a decoded "__x" anyway (U______x decodes to "__x"). */
                size_t dl = fy_groupkey_unescape_name(name, trimmed_len, scratch);
                if (dl != (size_t)-1) {
                    uname = scratch;
                    uname_len = dl;
                    scratch += dl;
                }
                if (!label_name_ok_utf8(uname, uname_len) || (trimmed_len >= 2 && name[0] == '_' && name[1] == '_')) {
                    fy_go_quote(name, trimmed_len, q, sizeof(q));
                    return gk_fail(err, "improper label name %s", q, NULL, NULL);
                }
            } else if (!fy_groupkey_label_name_ok(name, trimmed_len)) {
                fy_go_quote(name, trimmed_len, q, sizeof(q));
                return gk_fail(err, "improper label name %s", q, NULL, NULL);
            }
            if (b64) {
                if (fy_base64url_decode(value, value_len, scratch, &dec_len, &bad_at) != 0) {
                    char nm[FY_GK_ERR_MAX / 4];
                    snprintf(nm, sizeof(nm), "%.*s", (int)trimmed_len, name);
                    fy_go_quote(value, value_len, q, sizeof(q));
                    snprintf(num, sizeof(num), "%zu", bad_at);
                    return gk_fail(err, "invalid base64 encoding for label %s=%s: illegal base64 data at input byte %s", nm, q,
                                   num);
                }
                value = scratch;
                value_len = dec_len;
                scratch += dec_len;
            }
            put_label(out, nout, (fy_gk_label_t){uname, uname_len, value, value_len});
        }
    }

    if (job_len == 0)
        return gk_fail(err, "job name is required", NULL, NULL, NULL);
    put_label(out, nout, (fy_gk_label_t){"job", 3, job, job_len});

    for (size_t i = 0; i < *nout; i++) {
        char nm[FY_GK_ERR_MAX / 4]; /* the name, for the messages only (formatted on failure: this runs per push) */
        if (!fy_utf8_valid(out[i].value, out[i].value_len)) {
            snprintf(nm, sizeof(nm), "%.*s", (int)out[i].name_len, out[i].name);
            fy_go_quote(out[i].value, out[i].value_len, q, sizeof(q));
            return gk_fail(err, "grouping label %s has a value that is not valid UTF-8: %s", nm, q, NULL);
        }
        if (max_value != 0 && out[i].value_len > max_value) {
            snprintf(nm, sizeof(nm), "%.*s", (int)out[i].name_len, out[i].name);
            snprintf(num, sizeof(num), "%zu", max_value);
            return gk_fail(err, "grouping label %s has a value longer than %s bytes (--push.max-label-value-length)", nm, num,
                           NULL);
        }
    }
    return 0;
}
