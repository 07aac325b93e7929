/*
 * alloc.c: allocation that aborts on out-of-memory (the store's OOM policy, as h2o's: the store never returns
 * half-applied state) and the growable byte buffer that pushes, errors and renderers write into.
 */
#include "fy_parse.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>

void *fy__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

void *fy__xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

void *fy__xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "fy_store: out of memory\n");
        abort();
    }
    return p;
}

void fy__buf_grow(fy__buf_t *b, size_t more)
{
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + more)
        nc *= 2;
    b->p = fy__xrealloc(b->p, nc);
    b->cap = nc;
}

void fy__buf_go_quote(fy__buf_t *b, fy_str_t s)
{
    size_t cap = 4 * s.len + 3;
    if (cap > 1 << 20)
        cap = 1 << 20;
    fy__buf_reserve(b, cap + 1);
    b->n += fy_go_quote(s.ptr, s.len, b->p + b->n, cap + 1);
}
