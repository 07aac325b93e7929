/*
 * ui.h: the web UI at / and /status: every group with its labels, last push and failure times and its metrics, a
 * delete button per group and "delete all" when the admin API is on. One self-contained HTML page (no CDN, inline
 * CSS and JS), paged so that a store of 100k groups stays fast, and escaped against HTML injection.
 */
#ifndef FY_UI_H
#define FY_UI_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A growable output buffer (malloc'd). */
typedef struct st_fy_buf_t {
    char *p;
    size_t len, cap;
    int oom;
} fy_buf_t;

void fy_buf_add(fy_buf_t *b, const char *s, size_t n);
void fy_buf_str(fy_buf_t *b, const char *s);
void fy_buf_printf(fy_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fy_buf_free(fy_buf_t *b);

typedef struct st_fy_ui_kv_t {
    const char *key;
    const char *value;
} fy_ui_kv_t;

typedef struct st_fy_ui_opts_t {
    int admin_api;             /* show "Delete All Groups" */
    const char *asset_prefix;  /* unused for now: the page has no external assets */
    const char *version;
    const char *revision;
    const char *start_time;    /* human-readable start time */
    const fy_ui_kv_t *flags;   /* the flags map of /api/v1/status, sorted by key */
    size_t nflags;
    const fy_ui_kv_t *build;   /* build information, sorted by key */
    size_t nbuild;
    unsigned page;             /* 0-based */
    unsigned page_size;        /* groups per page; 0 = 100 */
    const char *filter;        /* only groups whose label values contain this substring; NULL or "" = all */
    size_t filter_len;
    int status_tab;            /* open the Status tab first (GET /status) */
} fy_ui_opts_t;

/** Renders the page into *out. Returns 0, or -1 when out of memory. */
int fy_ui_render(fy_store_t *store, const fy_ui_opts_t *opts, fy_buf_t *out);

/** Escapes s for HTML text and attribute values (& < > " '). */
void fy_html_escape(fy_buf_t *b, const char *s, size_t n);

#endif
