/*
 * testutil.h: helpers shared by the cmocka suites: inputs placed against a PROT_NONE guard page (so that any read
 * past the end faults, as picohttpparser's test does), fixture loading, and a growing arena for parser calls.
 */
#ifndef FY_TESTUTIL_H
#define FY_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fy_parse.h"

/* Copies len bytes so that the last byte sits right before an unreadable page; the returned pointer is valid
 * until the next call (one buffer per process, up to 64 MiB). */
const char *fy_guarded(const void *data, size_t len);

/* Reads a file below FY_FIXTURES into a malloc'd buffer; *len gets its size. Fails the test if it cannot. */
char *fy_fixture(const char *relpath, size_t *len);

/* A parser arena that is always big enough (fy_parse_arena_hint), reused between calls. */
fy_arena_t *fy_test_arena(size_t input_len);

typedef int (*fy_parse_fn)(const char *, size_t, fy_arena_t *, fy_body_t *, fy_parse_error_t *);

/* Parses data (placed against the guard page) with fn; returns the code. */
int fy_test_parse(fy_parse_fn fn, const char *data, size_t len, fy_body_t *body, fy_parse_error_t *err);

#endif
