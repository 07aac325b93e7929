/* testutil.c: guard-page buffers, fixtures and arenas for the cmocka suites (see testutil.h). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARDED_MAX (64u << 20)

static char *guard_base; /* GUARDED_MAX readable bytes followed by one PROT_NONE page */

const char *fy_guarded(const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (guard_base == NULL) {
        char *m = mmap(NULL, GUARDED_MAX + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(m != MAP_FAILED);
        assert_int_equal(mprotect(m + GUARDED_MAX, page, PROT_NONE), 0);
        guard_base = m;
    }
    assert_true(len <= GUARDED_MAX);
    char *dst = guard_base + GUARDED_MAX - len;
    if (len)
        memcpy(dst, data, len);
    return dst;
}

char *fy_fixture(const char *relpath, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", FY_FIXTURES, relpath);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read on %s", path);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static fy_arena_t test_arena;
static void *test_arena_mem;

static void free_test_arena(void)
{
    free(test_arena_mem);
}

fy_arena_t *fy_test_arena(size_t input_len)
{
    size_t need = fy_parse_arena_hint(input_len);
    if (test_arena.cap < need) {
        if (test_arena_mem == NULL)
            atexit(free_test_arena);
        free(test_arena_mem);
        test_arena_mem = malloc(need);
        assert_non_null(test_arena_mem);
        fy_arena_init(&test_arena, test_arena_mem, need);
    }
    fy_arena_reset(&test_arena);
    return &test_arena;
}

int fy_test_parse(fy_parse_fn fn, const char *data, size_t len, fy_body_t *body, fy_parse_error_t *err)
{
    const char *in = fy_guarded(data, len);
    return fn(in, len, fy_test_arena(len), body, err);
}
