/*
 * decode.h: what a push body is before the parsers see it: its Content-Encoding (gzip, snappy framing) and its
 * format (text 0.0.4, delimited protobuf, OpenMetrics) chosen from the Content-Type exactly as Pushgateway 1.5.1
 * does (mime.ParseMediaType).
 */
#ifndef FY_DECODE_H
#define FY_DECODE_H

#include <stddef.h>

#include "push.h" /* fy_body_format_t */

typedef enum en_fy_encoding_t {
    FY_ENC_IDENTITY = 0, /* no header, or a value the reference ignores (deflate, br, ...) */
    FY_ENC_GZIP,
    FY_ENC_SNAPPY,
} fy_encoding_t;

/* Longest message written to the err buffers below. */
#define FY_DECODE_ERR_MAX 128

/** Content-Encoding value to encoding; gzip and snappy match case-insensitively (as Pushgateway >= 1.6 does). */
fy_encoding_t fy_decode_encoding(const char *value, size_t len);

/** The Content-Type rule of handler/push.go; value may be NULL for "no header". */
fy_body_format_t fy_decode_format(const char *value, size_t len);

/**
 * What gzip.NewReader checks before any handler runs (1.5.1 wraps every non-API route): the first member's header.
 * @return 0, or -1 with err set to Go's text ("EOF", "unexpected EOF", "gzip: invalid header")
 */
int fy_decode_gzip_header(const char *body, size_t len, char *err);

/**
 * Decodes a whole body.
 * @param max     largest decoded size accepted (--push.max-body-bytes)
 * @param out     the decoded bytes: body itself for FY_ENC_IDENTITY (no copy), else a malloc'd buffer
 * @param owned   what the caller must free() afterwards (NULL for identity or an empty result)
 * @param err     FY_DECODE_ERR_MAX bytes, the message on failure
 * @return 0, 400 (corrupt input) or 413 (decoded size above max)
 */
int fy_decode_body(fy_encoding_t enc, const char *body, size_t len, size_t max, const char **out, size_t *out_len, char **owned,
                   char *err);

#endif
