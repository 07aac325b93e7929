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

/* --push.max-grouping-labels and --push.max-grouping-key-bytes: 0 means no limit. */
#define FY_GK_DEFAULT_MAX_LABELS 64
#define FY_GK_DEFAULT_MAX_KEY_BYTES 8192

/**
 * Sets the process-wide grouping-key limits (0: none). Called once at start-up, before any request: process-wide
 * rather than a parameter of fy_groupkey_parse because fy_groupkey_max_labels, which the caller uses to size its label
 * array before parsing, must be bounded by the same limit, so that a URL with thousands of pairs costs no allocation
 * proportional to its length. Until called, the limits are the flags' defaults.
 */
void fy_groupkey_set_limits(size_t max_labels, size_t max_key_bytes);

/**
 * Builds the grouping key from the router's parameters.
 * @param job        the decoded :job segment (no '/')
 * @param job_b64    non-zero for the /metrics/job@base64/ route
 * @param labels     the decoded *labels remainder including its leading '/', or empty
 * @param max_value  longest accepted value in bytes (--push.max-label-value-length), 0 for no limit
 * @param scratch    at least job_len + labels_len bytes; decoded base64 values and U__ names are written here
 * @param out        room for fy_groupkey_max_labels(labels_len) entries
 * @param nout       number of labels written: unique names sorted bytewise, "job" included
 * @param err        FY_GK_ERR_MAX bytes; on failure the message as the Pushgateway words it (no newline)
 * @return 0, or -1 when the request is a 400
 *
 * The limits of fy_groupkey_set_limits are checked first, before any decoding: job_len + labels_len (the key as the
 * router decoded it, before base64) against max_key_bytes, then the job plus the name/value pairs as written (a
 * repeated name counts each time) against max_labels.
 */
int fy_groupkey_parse(const char *job, size_t job_len, int job_b64, const char *labels, size_t labels_len, size_t max_value,
                      char *scratch, fy_gk_label_t *out, size_t *nout, char *err);

/** Whether a grouping-key label name is acceptable: model.LabelName.IsValid of common v0.39 plus push.go's check
 * against the reserved "__" prefix. */
int fy_groupkey_label_name_ok(const char *p, size_t n);

/**
 * --push.enable-utf8-names, process-wide like the limits (set once at start-up, before any request). When on, a
 * label name in the URL may be any non-empty valid UTF-8 not starting with "__", and a name starting "U__" is
 * decoded as common v0.61's model.UnescapeName(name, ValueEncodingEscaping) does (Pushgateway 1.11's splitLabels):
 * "__" stands for '_', "_<hex>_" for that code point, other bytes for themselves; a name that does not decode
 * (bad hex, no closing '_', a surrogate, more than 5 hex digits) is kept as written, as UnescapeName keeps it.
 */
void fy_groupkey_set_utf8_names(int on);

/** model.UnescapeName(s, ValueEncodingEscaping) into out (room for n bytes): the decoded length, or (size_t)-1
 * when s has no "U__" prefix or does not decode (the name then stands as written). */
size_t fy_groupkey_unescape_name(const char *s, size_t n, char *out);

/** Room for the labels of a key whose labels remainder is labels_len bytes: at most the --push.max-grouping-labels
 * limit, however long the remainder. */
size_t fy_groupkey_max_labels(size_t labels_len);

/**
 * Go's base64.RawURLEncoding.DecodeString after strings.TrimRight(s, "="): non-strict (pad bits ignored), '\r' and
 * '\n' skipped. Writes the decoded bytes to out (at least len bytes) and their count to *out_len, also on failure
 * (Go returns what decoded before the error). Returns -1 and sets *bad_at to Go's "illegal base64 data at input byte
 * N" offset on failure, else 0.
 */
int fy_base64url_decode(const char *s, size_t len, char *out, size_t *out_len, size_t *bad_at);

#endif
