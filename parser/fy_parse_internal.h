/*
 * fy_parse_internal.h: helpers shared by the parser implementations (not part of the public API).
 */
#ifndef FY_PARSE_INTERNAL_H
#define FY_PARSE_INTERNAL_H

#include "fy_parse.h"

#include <stdint.h>

/* Message prefixes, formatted with the 1-based line number. */
#define FY_TEXT_PREFIX "text format parsing error in line %u: "
#define FY_OM_PREFIX "openmetrics parsing error in line %u: "

/* A fy_str_t that fy__perr quotes as a Go rune ('\t') instead of a string. */
static inline fy_str_t fy__rune_arg(const char *p)
{
    fy_str_t s;
    s.ptr = p;
    s.len = SIZE_MAX;
    return s;
}

/* Fills *err (see common.c) and returns code. Variadic arguments: one fy_str_t per %q, one int (a byte) per %c, one
 * const char * per %s. */
int fy__perr(fy_parse_error_t *err, int code, const char *prefix, uint32_t line, size_t offset, ...);
void fy__perr_clear(fy_parse_error_t *err);

/* Go's strconv.Quote into out (cap bytes incl. NUL); cut with "..." when it does not fit. Returns the length. */
size_t fy__go_quote(const char *s, size_t n, char *out, size_t cap);

/* UTF-8 as Go validates it (utf8.ValidString). */
int fy__utf8_valid(const char *s, size_t n);
size_t fy__utf8_decode(const unsigned char *s, size_t n, uint32_t *rune);

#endif
