/*
 * groupkey.h: the grouping key of a push or delete, taken from the URL (/metrics/job/<JOB>{/<NAME>/<VALUE>}) with
 * exactly the Pushgateway 1.5.1 rules (handler/push.go splitLabels, decodeBase64), minus its bugs B1 and B4.
 */
#ifndef FY_GROUPKEY_H
#define FY_GROUPKEY_H

#include <stddef.h>

/* One grouping label; name and value point into the caller's path or scratch buffer, never NUL-terminated. */
typedef struct st_fy_gk_label_t {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} fy_gk_label_t;

/* The longest error message fy_groupkey_parse writes (values are quoted and cut by fy__go_quote). */
#define FY_GK_ERR_MAX 512

/**
 * Builds the grouping key from the router's parameters.
 * @param job        the decoded :job segment (no '/')
 * @param job_b64    non-zero for the /metrics/job@base64/ route
 * @param labels     the decoded *labels remainder including its leading '/', or empty
 * @param max_value  longest accepted value in bytes (--push.max-label-value-length), 0 for no limit
 * @param scratch    at least job_len + labels_len bytes; decoded base64 values are written here
 * @param out        room for fy_groupkey_max_labels(labels_len) entries
 * @param nout       number of labels written: unique names sorted bytewise, "job" included
 * @param err        FY_GK_ERR_MAX bytes; on failure the message as the Pushgateway words it (no newline)
 * @return 0, or -1 when the request is a 400
 */
int fy_groupkey_parse(const char *job, size_t job_len, int job_b64, const char *labels, size_t labels_len, size_t max_value,
                      char *scratch, fy_gk_label_t *out, size_t *nout, char *err);

/** Whether a grouping-key label name is acceptable: model.LabelName.IsValid of common v0.39 plus push.go's check
 * against the reserved "__" prefix. */
int fy_groupkey_label_name_ok(const char *p, size_t n);

static inline size_t fy_groupkey_max_labels(size_t labels_len)
{
    return labels_len / 2 + 2;
}

/**
 * Go's base64.RawURLEncoding.DecodeString after strings.TrimRight(s, "="): non-strict (pad bits ignored), '\r' and
 * '\n' skipped. Writes the decoded bytes to out (at least len bytes) and their count to *out_len, also on failure
 * (Go returns what decoded before the error). Returns -1 and sets *bad_at to Go's "illegal base64 data at input byte
 * N" offset on failure, else 0.
 */
int fy_base64url_decode(const char *s, size_t len, char *out, size_t *out_len, size_t *bad_at);

#endif
