/*
 * fy_num.h: number parsing and formatting with Go's exact semantics, because the Pushgateway's output is defined by
 * Go's strconv: a scrape of Ferry must be byte-identical to the reference.
 */
#ifndef FY_NUM_H
#define FY_NUM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest output of the 'g', text and JSON formatters, including the NUL. */
#define FY_FLOAT_BUFSZ 40
/* Longest output of fy_format_float_f (-5e-324 is "-0." followed by 323 digits), including the NUL. */
#define FY_FLOAT_F_BUFSZ 336

/**
 * Parses s[0..n) as Go's strconv.ParseFloat(s, 64) does, minus what expfmt forbids on top (any 'p', 'P' or '_'),
 * so hex floats and underscores are rejected. Accepts an optional sign, decimal digits with an optional '.', an
 * optional exponent, and case-insensitive "inf", "infinity", "nan". Out-of-range values (1e500) are rejected, as Go
 * reports ErrRange. Correctly rounded. Returns 0 and sets *out, or -1.
 * @pre s need not be NUL-terminated; n may be 0 (rejected).
 */
int fy_parse_float(const char *s, size_t n, double *out);

/** Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow. Returns 0 or -1. */
int fy_parse_int64(const char *s, size_t n, int64_t *out);

/** Go's strconv.FormatFloat(v, 'g', -1, 64): shortest round-trip digits. Writes a NUL; returns the length. */
size_t fy_format_float_g(double v, char *out);

/** Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent (the web UI's format).
 * out needs FY_FLOAT_F_BUFSZ bytes. */
size_t fy_format_float_f(double v, char *out);

/** expfmt's writeFloat for the text exposition: 1, 0 (also for -0), -1, NaN, +Inf, -Inf, else format 'g'. */
size_t fy_format_float_text(double v, char *out);

/** Go's fmt.Sprint(float64), used by the JSON API: like format 'g' but +Inf is "+Inf" and -0 is "-0". */
size_t fy_format_float_json(double v, char *out);

/** Decimal digits of v (no sign tricks: uint64). Returns the length. */
size_t fy_format_uint64(uint64_t v, char *out);

#ifdef __cplusplus
}
#endif

#endif
