/*
 * persist_testlib.h: helpers for the persistence suites (test_persist_*.c): scratch directories, whole-file
 * read/write, and a replay collector. Header-only because each suite compiles the src/persist_*.c it tests.
 */
#ifndef FY_PERSIST_TESTLIB_H
#define FY_PERSIST_TESTLIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* A fresh directory under $TMPDIR (default /tmp); removed (one level deep) by pt_rmdir. */
static inline char *pt_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/ferry-persist-XXXXXX", t && t[0] ? t : "/tmp");
    assert_non_null(mkdtemp(p));
    return p;
}

static inline void pt_rmdir(char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[8192];
            snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
            struct stat sb;
            if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                char *copy = strdup(sub);
                pt_rmdir(copy); /* frees copy */
            } else {
                unlink(sub);
            }
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static inline unsigned char *pt_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    unsigned char *b = malloc((size_t)sb.st_size + 1);
    assert_non_null(b);
    assert_int_equal(read(fd, b, (size_t)sb.st_size), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return b;
}

static inline void pt_write(const char *path, const void *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

static inline int pt_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Records seen by a replay or snapshot read: payload copies in order. */
typedef struct {
    size_t n;
    uint64_t seq[256];
    unsigned type[256];
    size_t len[256];
    unsigned char *data[256];
    int stop_at; /* return 7 when n reaches this (0: never) */
} pt_seen_t;

static inline int pt_collect(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len)
{
    pt_seen_t *s = ctx;
    assert_true(s->n < 256);
    s->seq[s->n] = seq;
    s->type[s->n] = type;
    s->len[s->n] = len;
    s->data[s->n] = malloc(len + 1);
    memcpy(s->data[s->n], payload, len);
    s->n++;
    return s->stop_at != 0 && (int)s->n == s->stop_at ? 7 : 0;
}

static inline void pt_seen_free(pt_seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    memset(s, 0, sizeof(*s));
}

#endif
