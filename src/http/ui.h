/*
 * ui.h: the web UI at / and /status: the groups with their labels, their state (failed, late, expires soon, alive,
 * no interval: fy_ui_state), last push and failure times and their metrics, a delete button per group and "delete
 * all" when the admin API is on; filtered by label value, by job and by state, sorted by job (then the other grouping
 * labels in name order), by state or by last push. Its Help is Ferry's own documentation (fy_ui_doc). One self-contained HTML page
 * (no CDN, inline CSS and JS), escaped against HTML injection, and bounded however large the store: one page of groups at a time
 * (?page=, ?limit=), at most FY_UI_GROUP_LABELS series labels per group, produced in parts (fy_ui_next) that the
 * server sends as they come.
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

/*
 * A group's state as the page shows it (docs/ui.md), the first that applies:
 *   failed      its last push failed (push_failure_time_seconds > push_time_seconds, as "Last push failed!")
 *   late        it has an interval in effect (X-Ferry-Interval or --push.default-interval) and push_alive is 0:
 *               never pushed, or now - push time > interval + grace (fy_life_collect's rule, the same grace)
 *   expiring    "expires soon": it has a TTL in effect and at most a quarter of it is left before it is deleted
 *   alive       it has an interval in effect and push_alive is 1
 *   undeclared  "no interval": nothing says how often it should be pushed, so neither alive nor late is known
 */
typedef enum en_fy_ui_state_t {
    FY_UI_FAILED = 0,
    FY_UI_LATE,
    FY_UI_EXPIRING,
    FY_UI_ALIVE,
    FY_UI_UNDECLARED,
    FY_UI_NSTATES
} fy_ui_state_t;

/** The state of group g at now_ns with the server's --push.interval-grace (see fy_ui_state_t). */
fy_ui_state_t fy_ui_state(const fy_store_group_view_t *g, int64_t now_ns, int64_t grace_ns);
/** The state's name in URLs and data-state attributes ("late"), and its text on the page ("expires soon"). */
const char *fy_ui_state_name(fy_ui_state_t st);
const char *fy_ui_state_text(fy_ui_state_t st);
/** The state named name[0..len), or -1. */
int fy_ui_state_parse(const char *name, size_t len);

/* The order of the groups (?sort=). */
typedef enum en_fy_ui_sort_t {
    FY_UI_SORT_JOB = 0, /* job, then the other grouping labels in name order (names and values compared bytewise) */
    FY_UI_SORT_STATE,   /* state in fy_ui_state_t order (failed first), then as FY_UI_SORT_JOB */
    FY_UI_SORT_PUSH,    /* last push, oldest first (never pushed first), then as FY_UI_SORT_JOB */
} fy_ui_sort_t;

typedef struct st_fy_ui_opts_t {
    int admin_api;            /* show "Delete All Groups" */
    const char *asset_prefix; /* unused for now: the page has no external assets */
    const char *version;
    const char *revision;
    const char *start_time;  /* human-readable start time */
    const fy_ui_kv_t *flags; /* the flags map of /api/v1/status, sorted by key */
    size_t nflags;
    const fy_ui_kv_t *build; /* build information, sorted by key */
    size_t nbuild;
    unsigned page;      /* 0-based */
    unsigned page_size; /* groups per page (?limit=); 0 = FY_UI_DEFAULT_LIMIT, at most FY_UI_MAX_LIMIT */
    const char *filter; /* only groups whose label values contain this substring; NULL or "" = all */
    size_t filter_len;
    const char *job; /* only groups whose job label contains this substring; NULL or "" = all */
    size_t job_len;
    int state;               /* only groups in this state: fy_ui_state_t + 1; 0 = all */
    int sort;                /* fy_ui_sort_t */
    int64_t now_ns;          /* the time states are computed for; 0 = the real-time clock at open */
    int64_t grace_ns;        /* --push.interval-grace */
    int status_tab;          /* open the Status tab first (GET /status) */
    char cluster_rows[4096]; /* replication: the Status tab's "Cluster" table rows, HTML; "" = no cluster */
} fy_ui_opts_t;

/* Groups per page by default and at most: a page of 100 groups renders in about a millisecond; 1,000 keeps a page
 * that a browser shows at once. */
#define FY_UI_DEFAULT_LIMIT 100
#define FY_UI_MAX_LIMIT 1000
/* Series labels shown per group (series are listed in order until their labels would exceed it; the first always):
 * about 4,000 one-label series, or one series of a group with 5,000 grouping labels; the rest of the group is
 * counted and linked to /api/v1/metrics. With at most FY_UI_MAX_LIMIT groups a page is bounded. */
#define FY_UI_GROUP_LABELS 4096
/* Labels shown per series row (the rest counted): a group with 5,000 grouping labels repeats them in every series;
 * the group's header still shows them all, and its delete URL needs them all. */
#define FY_UI_ROW_LABELS 64
/* HTML per group: series are listed until the group's HTML reaches it (256 KiB: about 1,500 rows of a few labels),
 * and bytes per label value in a series row (the rest cut, shown with an ellipsis; values may be 32 KiB long). The
 * grouping labels in a group's header are shown whole. */
#define FY_UI_GROUP_BYTES (256u << 10)
#define FY_UI_VALUE_BYTES 1024
/* Bytes per part (fy_ui_next's budget in fy_ui_render and the server). */
#define FY_UI_PART (64u << 10)

/* The page arithmetic, apart from how groups are chosen and ordered: groups [first, end) of `total` are shown. */
typedef struct st_fy_ui_pager_t {
    uint64_t total, first, end, pages;
    unsigned limit; /* the page size in effect */
    int has_prev, has_next;
    int shown; /* the pager line has links and a range (more than one page, or not the first) */
} fy_ui_pager_t;
void fy_ui_pager(uint64_t total, unsigned page, unsigned limit, fy_ui_pager_t *out);

/*
 * The page in parts. open copies what it needs of opts (the filter too) and of the store (the sorted grouping keys,
 * the groups that pass the filter); next writes the next part, at least `budget` bytes unless the page ends first,
 * a group at a time, into *p, *n (valid until the next call or close), and returns 1 while more follows, 0 with the
 * last part. A group is read under its shard lock only while it is rendered; one that went away is left out.
 * open returns NULL when out of memory; fy_ui_failed says that a part was cut short by a failed allocation.
 */
typedef struct st_fy_ui_t fy_ui_t;
fy_ui_t *fy_ui_open(fy_store_t *store, const fy_ui_opts_t *opts);
int fy_ui_next(fy_ui_t *u, size_t budget, const char **p, size_t *n);
int fy_ui_failed(const fy_ui_t *u);
void fy_ui_close(fy_ui_t *u);

/** Renders the whole page into *out (through the parts). Returns 0, or -1 when out of memory. */
int fy_ui_render(fy_store_t *store, const fy_ui_opts_t *opts, fy_buf_t *out);

/*
 * Ferry's documentation, compiled in (docs_embed.c, generated from a fixed list of docs/ pages by
 * cmake/embed_docs.cmake): the Help link's pages, served at P/static/docs/ (an index) and P/static/docs/NAME.md. When
 * the build found cmark-gfm, each page is HTML rendered at build time (text/html) and the images the pages show are
 * in the table too (P/static/docs/img/NAME.png); without it, the docs as they are (text/plain). Only names in the list
 * are served, so a request path cannot reach any other file.
 */
typedef struct st_fy_ui_doc_t {
    const char *name;  /* "ui.md", "img/ui.png": the path under P/static/docs/ */
    const char *title; /* the doc's first heading, plain text; NULL for an image, which the index does not list */
    const char *type;  /* its Content-Type */
    const unsigned char *text;
    size_t len;
} fy_ui_doc_t;
extern const fy_ui_doc_t fy_ui_docs[];
extern const size_t fy_ui_ndocs;
/* 1 when the pages are HTML (the build had cmark-gfm), 0 when they are the Markdown of docs/ as text */
extern const int fy_ui_docs_html;
/* The Content-Security-Policy of the docs and their index: markup with inline styles and images from here, nothing
 * else (no script, no form, no frame, no other origin). */
#define FY_UI_DOCS_CSP                                                                                                             \
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; "                         \
    "frame-ancestors 'none'"
/** The doc called name[0..len), or NULL. */
const fy_ui_doc_t *fy_ui_doc(const char *name, size_t len);
/** The index page of the docs (HTML) into *out. Returns 0, or -1 when out of memory. */
int fy_ui_doc_index(fy_buf_t *out);

/** Escapes s for HTML text and attribute values (& < > " '). */
void fy_html_escape(fy_buf_t *b, const char *s, size_t n);

#endif
