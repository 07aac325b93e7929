/*
 * log.c: the promlog line formats. logfmt quotes a value when it contains a space, '=', '"', a control character or
 * invalid UTF-8 (go-logfmt), with JSON-style escapes; an empty value is written bare ("key="). JSON lines are
 * go-kit's JSONLogger: one object, keys sorted (Go map), HTML-safe escaping, a newline.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static fy_log_level_t min_level = FY_LOG_INFO;
static int json_format;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int fy_log_setup(const char *level, const char *format)
{
    int lv = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            lv = i;
    if (lv < 0)
        return -1;
    if (strcmp(format, "logfmt") == 0)
        json_format = 0;
    else if (strcmp(format, "json") == 0)
        json_format = 1;
    else
        return -1;
    min_level = (fy_log_level_t)lv;
    return 0;
}

int fy_log_enabled(fy_log_level_t level)
{
    return level >= min_level;
}

typedef struct st_line_t {
    char buf[4096];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - 1 - l->len)
        n = sizeof(l->buf) - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* JSON string escaping (also used inside logfmt quotes, as go-logfmt does). */
static void put_escaped(line_t *l, const char *s, int html)
{
    char tmp[8];
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(l, tmp, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&'))) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            put(l, tmp, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static int needs_quotes(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7f)
            return 1;
    }
    return 0;
}

typedef struct st_kv_t {
    const char *k, *v;
} kv_t;

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const kv_t *)a)->k, ((const kv_t *)b)->k);
}

void fy__log(fy_log_level_t level, const char *file, int line, ...)
{
    if (level < min_level)
        return;
    kv_t kv[32];
    size_t n = 0;
    char ts[40], caller[128];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03dZ", (int)(tv.tv_usec / 1000));
    const char *base = strrchr(file, '/');
    snprintf(caller, sizeof(caller), "%s:%d", base != NULL ? base + 1 : file, line);

    kv[n++] = (kv_t){"ts", ts};
    kv[n++] = (kv_t){"caller", caller};
    kv[n++] = (kv_t){"level", level_names[level]};
    va_list ap;
    va_start(ap, line);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        if (n < sizeof(kv) / sizeof(kv[0]))
            kv[n++] = (kv_t){k, v != NULL ? v : "null"};
    }
    va_end(ap);

    line_t l;
    l.len = 0;
    if (json_format) {
        qsort(kv, n, sizeof(kv[0]), kv_cmp);
        put(&l, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                put(&l, ",", 1);
            put(&l, "\"", 1);
            put_escaped(&l, kv[i].k, 1);
            put(&l, "\":\"", 3);
            put_escaped(&l, kv[i].v, 1);
            put(&l, "\"", 1);
        }
        put(&l, "}", 1);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                put(&l, " ", 1);
            puts_(&l, kv[i].k);
            put(&l, "=", 1);
            if (needs_quotes(kv[i].v)) {
                put(&l, "\"", 1);
                put_escaped(&l, kv[i].v, 0);
                put(&l, "\"", 1);
            } else {
                puts_(&l, kv[i].v);
            }
        }
    }
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
