/*
 * fy_str.h: the one slice type used everywhere in Ferry.
 *
 * A slice is (ptr, len) into somebody else's buffer; it is never NUL-terminated and never owned. Whoever hands out
 * a slice says in its API comment how long the bytes behind it stay valid.
 */
#ifndef FY_STR_H
#define FY_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_fy_str_t {
    const char *ptr;
    size_t len;
} fy_str_t;

/* For literals: fy_str_eq_mem(s, FY_STRLIT("job")); FY_STRLIT expands to "ptr, len". */
#define FY_STRLIT(s) (s), (sizeof(s) - 1)

#if defined(__GNUC__)
#define fy_likely(x) __builtin_expect(!!(x), 1)
#define fy_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define fy_likely(x) (x)
#define fy_unlikely(x) (x)
#endif

static inline fy_str_t fy_str(const char *p, size_t n)
{
    fy_str_t s;
    s.ptr = p;
    s.len = n;
    return s;
}

static inline int fy_str_eq(fy_str_t a, fy_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int fy_str_eq_mem(fy_str_t a, const char *p, size_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, p, n) == 0);
}

/* Bytewise comparison as Go's string comparison does it: shorter prefix first. Returns <0, 0, >0. */
static inline int fy_str_cmp(fy_str_t a, fy_str_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

#ifdef __cplusplus
}
#endif

#endif
