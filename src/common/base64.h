/*
 * base64.h: base64 decoding as Go's encoding/base64 does it (non-strict: padding bits are ignored; '\r' and '\n'
 * are skipped anywhere), for the two encodings the reference uses: StdEncoding (basic-auth credentials) and
 * RawURLEncoding (the @base64 grouping-key values, after strings.TrimRight(s, "=")).
 */
#ifndef FY_BASE64_H
#define FY_BASE64_H

#include <stddef.h>

typedef enum en_fy_base64_t {
    FY_BASE64_STD,     /* + / with '=' padding */
    FY_BASE64_RAW_URL, /* - _ without padding */
} fy_base64_t;

/**
 * Decodes s into out (at least len bytes); *out_len gets the bytes decoded, also on failure (Go returns what decoded
 * before the error). Returns 0, or -1 with *bad_at set to the offset Go's CorruptInputError names.
 */
int fy_base64_decode(fy_base64_t enc, const char *s, size_t len, char *out, size_t *out_len, size_t *bad_at);

#endif
