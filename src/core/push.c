/*
 * push.c: body -> parser -> limits -> store, and the store's answer -> HTTP status and text (see push.h).
 */
#include "push.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfmetrics.h"

#define ARENA_START (256u << 10)

static const char invalid_prefix[] = "pushed metrics are invalid or inconsistent with existing metrics: ";

void fy_push_arena_free(fy_push_arena_t *a)
{
    free(a->mem);
    a->mem = NULL;
    a->cap = 0;
}

void fy_push_outcome_free(fy_push_outcome_t *o)
{
    free(o->buf);
    o->buf = NULL;
}

static void set_static(fy_push_outcome_t *o, int status, const char *msg)
{
    o->status = status;
    o->msg = msg;
    o->msg_len = strlen(msg);
}

static void set_fmt(fy_push_outcome_t *o, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_fmt(fy_push_outcome_t *o, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    free(o->buf);
    o->buf = malloc((size_t)n + 1);
    if (o->buf == NULL) {
        set_static(o, 500, "out of memory");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(o->buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->status = status;
    o->msg = o->buf;
    o->msg_len = (size_t)n;
}

/* Parses with an arena that grows (doubling, up to the size that always suffices) on FY_PERR_NOMEM. */
/* utf8: the store takes UTF-8 names (--push.enable-utf8-names), so text bodies may quote them. */
static int parse(fy_push_arena_t *a, const char *body, size_t len, fy_body_format_t format, int utf8, fy_body_t *out,
                 fy_parse_error_t *err)
{
    size_t hint = fy_parse_arena_hint(len);
    for (;;) {
        if (a->mem == NULL) {
            size_t cap = ARENA_START;
            if (cap > hint)
                cap = hint;
            if ((a->mem = malloc(cap)) == NULL)
                return FY_PERR_NOMEM;
            a->cap = cap;
        }
        fy_arena_t arena;
        fy_arena_init(&arena, a->mem, a->cap);
        int rc;
        switch (format) {
        case FY_FMT_PROTOBUF:
            rc = fy_parse_protobuf(body, len, &arena, out, err);
            break;
        case FY_FMT_OPENMETRICS:
            rc = fy_parse_openmetrics(body, len, &arena, out, err);
            break;
        default:
            rc = fy_parse_text_opts(body, len, &arena, out, err, utf8 ? FY_PARSE_UTF8_NAMES : 0);
            break;
        }
        if (rc != FY_PERR_NOMEM || a->cap >= hint)
            return rc;
        size_t cap = a->cap * 2 < hint ? a->cap * 2 : hint;
        void *m = malloc(cap);
        if (m == NULL)
            return FY_PERR_NOMEM;
        free(a->mem);
        a->mem = m;
        a->cap = cap;
    }
}

/* The first label value longer than the limit, as "metric", "label" and its length; 0 if none. */
static int long_label(const fy_body_t *b, uint64_t max, const fy_family_t **fam, const fy_label_t **lbl, size_t *len)
{
    for (uint32_t i = 0; i < b->nfamilies; i++) {
        const fy_family_t *f = &b->families[i];
        for (uint32_t k = 0; k < f->nseries; k++) {
            const fy_series_t *s = &f->series[k];
            for (uint32_t j = 0; j < s->nlabels; j++) {
                const fy_label_t *l = &s->labels[j];
                if (l->value.len <= max)
                    continue; /* escapes only shrink a value */
                size_t n = fy_unescaped_len(l->value, (fy_esc_t)l->value_esc);
                if (n > max) {
                    *fam = f;
                    *lbl = l;
                    *len = n;
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* Starts an outcome and parses the body into *parsed: 0, or -1 with the outcome set (400 naming the error, 500 when
 * out of memory). */
static int parse_outcome(fy_store_t *store, fy_push_arena_t *arena, const char *body, size_t len, fy_body_format_t format,
                         fy_body_t *parsed, fy_push_outcome_t *out)
{
    fy_parse_error_t perr;
    memset(out, 0, sizeof(*out));
    out->limit = -1;
    out->store_rc = 1;
    int rc = parse(arena, body, len, format, fy_store_utf8_names(store), parsed, &perr);
    if (rc == FY_PERR_NOMEM) {
        set_static(out, 500, "out of memory while parsing the push");
        return -1;
    }
    if (rc != FY_OK) {
        set_fmt(out, 400, "%.*s", (int)perr.msg_len, perr.msg);
        return -1;
    }
    return 0;
}

void fy_push_apply(fy_store_t *store, fy_push_arena_t *arena, const fy_push_limits_t *lim, fy_store_method_t method,
                   const fy_store_label_t *gk, size_t ngk, const char *body, size_t len, fy_body_format_t format, int64_t now_ns,
                   fy_push_outcome_t *out)
{
    fy_push_apply_life(store, arena, lim, method, gk, ngk, body, len, format, NULL, now_ns, out);
}

void fy_push_apply_life(fy_store_t *store, fy_push_arena_t *arena, const fy_push_limits_t *lim, fy_store_method_t method,
                        const fy_store_label_t *gk, size_t ngk, const char *body, size_t len, fy_body_format_t format,
                        const fy_store_life_t *life, int64_t now_ns, fy_push_outcome_t *out)
{
    fy_body_t parsed;
    if (parse_outcome(store, arena, body, len, format, &parsed, out) != 0)
        return;
    if (lim->max_series_per_push && parsed.nseries > lim->max_series_per_push) {
        out->limit = FY_LIMIT_SERIES_PER_PUSH;
        set_fmt(out, 400, "push has %u series, more than the limit of %llu (--push.max-series-per-push)", (unsigned)parsed.nseries,
                (unsigned long long)lim->max_series_per_push);
        return;
    }
    const fy_family_t *f;
    const fy_label_t *l;
    size_t vlen;
    if (lim->max_label_value_length && long_label(&parsed, lim->max_label_value_length, &f, &l, &vlen)) {
        out->limit = FY_LIMIT_LABEL_VALUE_LENGTH;
        set_fmt(out, 400,
                "label %.*s of metric %.*s has a value of %zu bytes, more than the limit of %llu "
                "(--push.max-label-value-length)",
                (int)l->name.len, l->name.ptr, (int)f->name.len, f->name.ptr, vlen,
                (unsigned long long)lim->max_label_value_length);
        return;
    }

    fy_store_err_t serr;
    memset(&serr, 0, sizeof(serr));
    int rc = fy_store_push_life(store, gk, ngk, method, &parsed, life, now_ns, 0, &serr);
    out->store_rc = rc;
    out->failure_recorded = serr.failure_recorded;
    switch (rc) {
    case FY_OK:
        set_static(out, lim->consistency_check_disabled ? 202 : 200, "");
        break;
    case FY_SERR_INVALID:
        out->log_failure = 1;
        if (lim->consistency_check_disabled) {
            /* The reference answers 202 before checking; we still refuse to store inconsistent data (it would
             * break every scrape) and record the failure, as it does for timestamps (B9). The message is kept for
             * the log; a 2xx answer carries no body. */
            set_fmt(out, 202, "%.*s", (int)serr.msg_len, serr.msg ? serr.msg : "");
        } else {
            set_fmt(out, 400, "%s%.*s", invalid_prefix, (int)serr.msg_len, serr.msg ? serr.msg : "");
        }
        break;
    case FY_SERR_LIMIT_GROUPS:
        out->limit = FY_LIMIT_STORE_GROUPS;
        set_static(out, 429, "the store holds the maximum number of groups (--store.max-groups); push rejected");
        break;
    case FY_SERR_LIMIT_SERIES:
        out->limit = FY_LIMIT_STORE_SERIES;
        set_static(out, 429,
                   "the push would exceed the maximum number of stored series (--store.max-series); "
                   "push rejected");
        break;
    case FY_SERR_BADARG:
        set_fmt(out, 400, "%s", serr.msg ? serr.msg : fy_store_strerror(rc));
        break;
    default:
        set_static(out, 500, "out of memory while storing the push");
        break;
    }
    fy_store_err_free(&serr);
}

void fy_push_merge(fy_store_t *store, fy_push_arena_t *arena, fy_store_method_t method, const fy_store_label_t *gk, size_t ngk,
                   const char *body, size_t len, fy_body_format_t format, const fy_store_life_t *life, int64_t now_ns,
                   void (*dropped)(void *ctx, fy_str_t family), void *ctx, fy_push_outcome_t *out)
{
    fy_body_t parsed;
    if (parse_outcome(store, arena, body, len, format, &parsed, out) != 0)
        return; /* the replica that took it parsed it: a damaged or foreign change */
    int rc = fy_store_merge_push(store, gk, ngk, method, &parsed, life, now_ns, 0, dropped, ctx);
    out->store_rc = rc;
    if (rc == FY_OK)
        set_static(out, 200, "");
    else
        set_fmt(out, 400, "%s", fy_store_strerror(rc));
}
