/*
 * store.h: public API of Ferry's series store (library fy_store).
 *
 * The store keeps the pushed groups and renders them. It knows nothing of HTTP: the server hands it a grouping key
 * and a parsed body (fy_body_t, parser/fy_model.h) and asks it to render a scrape (text 0.0.4, delimited protobuf,
 * OpenMetrics 1.0; the server's own families passed in as a body) or the /api/v1/metrics JSON.
 * Semantics are those of the Prometheus Pushgateway 1.5.1 (spec sections 5, 7, 8.3), with its bugs B2-B6 fixed and
 * B7 (a family named labels or last_push_successful) rejected at push time, and its nondeterministic choices made
 * deterministic (see docs/store.md).
 *
 * Concurrency: every function may be called from any thread at any time, concurrently with any other, except
 * fy_store_destroy (no other call may be running). Pushes to different groups proceed in parallel; a render never
 * holds a shard lock while it calls the writer.
 *
 * Ownership: the store copies everything it keeps out of the arguments (the body's slices are copied in once and
 * unescaped). Nothing the store hands to a callback may be kept after the callback returns.
 *
 * Clock: every mutating call takes now_ns (Unix nanoseconds) from the caller; the store never reads a clock.
 */
#ifndef FY_STORE_H
#define FY_STORE_H

#include "fy_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------------- */
/* Error codes (negative; FY_OK is 0, from fy_parse.h's convention). */

/* clang-format off */
#define FY_SERR_MAP(XX)                                                                                             \
    XX(INVALID,       -101, "pushed metrics are invalid or inconsistent with existing metrics") /* -> 400 */        \
    XX(LIMIT_GROUPS,  -102, "the store holds the configured maximum number of groups")          /* -> 4xx */        \
    XX(LIMIT_SERIES,  -103, "the push would exceed the configured maximum number of series")    /* -> 4xx */        \
    XX(NOMEM,         -104, "out of memory")                                                                       \
    XX(BADARG,        -105, "invalid argument (grouping key)")
/* clang-format on */

enum {
#define FY__SERR_ENUM(name, code, text) FY_SERR_##name = code,
    FY_SERR_MAP(FY__SERR_ENUM)
#undef FY__SERR_ENUM
};

/** Short description of an FY_SERR_* code (or "OK" for 0). */
const char *fy_store_strerror(int code);

typedef struct st_fy_store_t fy_store_t;

typedef struct st_fy_store_config_t {
    uint32_t nshards;    /* power of two; 0 = default (64) */
    uint32_t nstripes;   /* metric-name index stripes, power of two; 0 = default (256) */
    uint64_t max_groups; /* 0 = unlimited */
    uint64_t max_series; /* stored series (a summary or histogram series counts once), 0 = unlimited */
    /* Expiry and liveness (docs/beyond-pushgateway.md): what a group that never declared its own TTL or expected
     * push interval gets; 0 = none (the Pushgateway's behaviour). */
    int64_t default_ttl_ns;
    int64_t default_interval_ns;
    /* Last-writer-wins merge mode for replication (docs/store.md, "LWW mode"): every mutating call's now_ns is the
     * change's cluster-unique stamp, and changes may arrive in any order and any number of times. 0 = off (the
     * store behaves exactly as without it). */
    uint8_t lww;
    /* --push.enable-utf8-names (Pushgateway 1.11): metric and label names may be any non-empty valid UTF-8 (label
     * names still not starting with "__"). 0 = the classic [a-zA-Z_:][a-zA-Z0-9_:]* / [a-zA-Z_][a-zA-Z0-9_]* rules. */
    uint8_t utf8_names;
} fy_store_config_t;

/** Creates a store; returns NULL when out of memory. cfg may be NULL (defaults). */
fy_store_t *fy_store_create(const fy_store_config_t *cfg);

/** The store's utf8_names setting (what its pushers parse with, and what its scrapes may have to quote or escape). */
int fy_store_utf8_names(const fy_store_t *s);

/** Frees the store and everything in it. No other call may be running or follow. */
void fy_store_destroy(fy_store_t *s);

/* ------------------------------------------------------------------------------------------------------------- */
/* The gateway's own families (pushgateway_*, process_*), registered once at start-up, before any push. */

/**
 * Registers an own family. `predefined` says whether its HELP was in the reference's start-up snapshot (go_*,
 * process_*, pushgateway_build_info): a pushed family of that name with another HELP is accepted and exposed with
 * this HELP; for a family that is not predefined (pushgateway_http_*) another HELP is rejected.
 * Returns FY_OK, or FY_SERR_BADARG if the name is already registered or invalid. Aborts when out of memory, as
 * every allocation of the store does (store/alloc.c; docs/design.md, "Memory").
 */
int fy_store_register_own(fy_store_t *s, fy_str_t name, fy_type_t type, fy_str_t help, int predefined);

/* ------------------------------------------------------------------------------------------------------------- */
/* Mutations. */

typedef enum en_fy_store_method_t {
    FY_STORE_PUT = 0,  /* replace the group */
    FY_STORE_POST = 1, /* replace the families of the same names */
} fy_store_method_t;

/* A grouping label (already decoded from the URL; not escaped). */
typedef struct st_fy_store_label_t {
    fy_str_t name;
    fy_str_t value;
} fy_store_label_t;

/* Result of a rejected push. msg is malloc'd (free with fy_store_err_free), NUL-terminated, and is the text that
 * follows "pushed metrics are invalid or inconsistent with existing metrics: " in the 400 body, e.g.
 * "pushed metrics must not have timestamps" or "2 error(s) occurred:\n* ...\n* ...". */
typedef struct st_fy_store_err_t {
    int code;
    char *msg;
    size_t msg_len;
    int group_created;    /* a failure group was created (push_time 0) */
    int failure_recorded; /* push_failure_time_seconds was set to now_ns */
} fy_store_err_t;

void fy_store_err_free(fy_store_err_t *err);

/* A push's declared lifetime (docs/beyond-pushgateway.md). Each field: 0 = not declared (the group keeps what it had;
 * a new group starts with the store's default), FY_LIFE_NONE = explicitly none (overrides the default), > 0 = the
 * duration in ns. The declaration sticks to the group until a later successful push declares something else; a
 * rejected push changes nothing. */
#define FY_LIFE_NONE (-1)
typedef struct st_fy_store_life_t {
    int64_t ttl_ns;      /* the group expires at push time + TTL */
    int64_t interval_ns; /* the pusher's expected push interval (liveness) */
} fy_store_life_t;

/**
 * Applies a PUT or POST of `body` to the group with the given grouping labels (any order, distinct names; the store
 * sorts them), at time now_ns, from replication origin `origin` (0 = local).
 * Returns FY_OK, or FY_SERR_INVALID (err->msg says why; the stored series are unchanged; the group's failure time
 * is recorded unless the grouping key itself is the cause), or FY_SERR_LIMIT_* (nothing changed). Aborts when out
 * of memory (store/alloc.c): what a push may add is bounded by --store.max-series and --store.max-groups instead.
 * err may be NULL. The body is only read during the call.
 */
int fy_store_push(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                  int64_t now_ns, uint32_t origin, fy_store_err_t *err);

/** fy_store_push with a declared lifetime (NULL = none declared, as fy_store_push). A group whose deadline is at or
 * before now_ns counts as absent: it is removed (and counted as expired) before the push is applied, so that the
 * outcome depends only on the push times and not on when the expiry timer last ran. */
int fy_store_push_life(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                       const fy_store_life_t *life, int64_t now_ns, uint32_t origin, fy_store_err_t *err);

/* A group's timestamps, as persisted: the push_time_seconds and push_failure_time_seconds values (Unix ns, 0 =
 * never) and the times their families were last written. */
typedef struct st_fy_store_times_t {
    int64_t push_ns, push_stamp_ns;
    int64_t fail_ns, fail_stamp_ns;
    uint32_t origin;
    fy_store_life_t life; /* the declared TTL and interval (fy_store_life_t's encoding; 0 = none declared) */
} fy_store_times_t;

/**
 * Restores a persisted group's timestamps after its families were pushed (PUT) at start-up: sets the push and failure
 * times and, for each named family, the time it was last written. Only for start-up, before any render or push runs
 * concurrently (it rewrites records that renders read without locks). Returns FY_OK, or FY_SERR_BADARG if the group
 * does not exist.
 */
int fy_store_restore_times(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, const fy_store_times_t *t,
                           const fy_str_t *fam_names, const int64_t *fam_stamps, size_t nfams);

/** Removes the group (a missing group is a no-op). Returns FY_OK, FY_SERR_BADARG. */
int fy_store_delete(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, int64_t now_ns);

/** Counters, read without locks (approximate while pushes run). */
typedef struct st_fy_store_stats_t {
    uint64_t groups;
    uint64_t series;
    uint64_t expired;      /* groups removed because their deadline passed (fy_store_expire and pushes) */
    uint64_t bulk_deleted; /* groups removed by fy_store_delete_where */
    uint64_t tombstones;   /* lww mode: removed groups remembered with their clear stamp */
} fy_store_stats_t;
void fy_store_stats(fy_store_t *s, fy_store_stats_t *out);

/* ------------------------------------------------------------------------------------------------------------- */
/* Rendering. The writer is called with chunks of output (never while a store lock is held); it returns 0 to go on
 * or non-zero to stop (the render then returns that value). */

typedef int (*fy_store_writer_t)(void *ctx, const char *buf, size_t len);

/*
 * The scrape renderers. Families come in byte order of their names; `own` (may be NULL) holds the gateway's own
 * families, built by the server at scrape time (parser/fy_model.h: families sorted by name, series in exposition
 * order, label values FY_ESC_NONE, pb_kinds 0; valid until the render returns). Own families are rendered by the same
 * code as pushed ones; an own family and a pushed family of the same name become one family whose series are merged
 * by the exposition order (label count, then label values in label-name order, then label names), so own unlabelled
 * series come first. Header of a merged family: the own family's HELP and type when it has series, else those
 * registered with fy_store_register_own (else the pushed family's). A family with no series is omitted.
 * Output goes to the writer in chunks of about chunk_size bytes (0 = 64 KiB). Each returns 0, the writer's non-zero
 * value, or FY_SERR_NOMEM.
 */

/** Text format 0.0.4. */
int fy_store_render_text(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx);

/* How text and OpenMetrics scrapes write names that are not legacy-valid (only a store with utf8_names holds any),
 * as common v0.61's EscapingScheme does on the encoder side for client_golang (Pushgateway 1.11). A name that is
 * legacy-valid ([a-zA-Z_:][a-zA-Z0-9_:]*, for label names too, as EscapeMetricFamily checks) is never changed. */
typedef enum en_fy_name_escaping_t {
    FY_NAMES_UNDERSCORES = 0, /* escaping=underscores, the default: each rune that is not legacy becomes '_' */
    FY_NAMES_ALLOW_UTF8,      /* escaping=allow-utf-8: quoted, {"metric.name","label.name"="v"} */
    FY_NAMES_DOTS,            /* escaping=dots: '_' -> "__", '.' -> "_dot_", other runes -> "__" */
    FY_NAMES_VALUES,          /* escaping=values: "U__", then '_' -> "__", other runes -> "_<hex>_" */
} fy_name_escaping_t;

/** Text format 0.0.4 (fmt 0) or OpenMetrics (fmt 1) with names written per esc. fy_store_render_text and
 * fy_store_render_openmetrics are these with FY_NAMES_UNDERSCORES. */
int fy_store_render_text_esc(fy_store_t *s, const fy_body_t *own, fy_name_escaping_t esc, size_t chunk_size, fy_store_writer_t w,
                             void *wctx);
int fy_store_render_openmetrics_esc(fy_store_t *s, const fy_body_t *own, fy_name_escaping_t esc, size_t chunk_size,
                                    fy_store_writer_t w, void *wctx);

/** Delimited protobuf: one varint-length-prefixed io.prometheus.client.MetricFamily per family. Native histograms
 * are re-emitted verbatim; gauge histograms keep type GAUGE_HISTOGRAM; no help field when the family has no HELP. */
int fy_store_render_protobuf(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx);

/** OpenMetrics 1.0 text, as expfmt writes it: a counter named x_total is family x (TYPE counter) with x_total
 * samples, other counters and untyped families are TYPE unknown, gauge histograms are rendered as histograms; ends
 * with "# EOF". */
int fy_store_render_openmetrics(fy_store_t *s, const fy_body_t *own, size_t chunk_size, fy_store_writer_t w, void *wctx);

/** Appends s as a JSON string exactly as Go's encoding/json writes it (quotes included, HTML-safe \u003c \u003e
 * \u0026, U+2028/U+2029 escaped, invalid UTF-8 as \ufffd) to the malloc'd buffer (*buf, *len, *cap), growing it;
 * aborts when out of memory. For the server's other JSON answers (/api/v1/status). */
void fy_json_quote(fy_str_t s, char **buf, size_t *len, size_t *cap);

/** Renders the /api/v1/metrics body ({"status":"success","data":[...]}), groups in canonical key order, through a
 * fy_store_json_t cursor with parts of chunk_size bytes (0 = 64 KiB). */
int fy_store_render_json(fy_store_t *s, size_t chunk_size, fy_store_writer_t w, void *wctx);

/*
 * The same body one part at a time, for a server that sends a response of any size from a buffer of about one part.
 * open copies the sorted grouping keys (the groups that exist then are the ones rendered; a group deleted before its
 * turn is skipped). Each next writes on from where the last part stopped, taking one shard lock at a time: at least
 * `budget` bytes unless the body ends first, and at most budget plus one series (a series is never split). *out
 * points into the cursor and stays valid until the next call or close. next returns 1 while more follows and 0 with
 * the last part. The concatenated parts are byte-identical whatever the budgets, except where a group larger than a
 * part changes while it is being written: its object then goes on from the new version (render_json.c says how).
 * A cursor is used by one thread at a time and holds no lock between calls. Allocation failures abort.
 */
typedef struct st_fy_store_json_t fy_store_json_t;
fy_store_json_t *fy_store_json_open(fy_store_t *s);
int fy_store_json_next(fy_store_json_t *c, size_t budget, const char **out, size_t *len);
void fy_store_json_close(fy_store_json_t *c);

/* ------------------------------------------------------------------------------------------------------------- */
/* Read-only snapshot iteration (for the web UI, persistence and other renderers). */

typedef struct st_fy_store_series_view_t {
    const fy_store_label_t *labels; /* sanitised: grouping labels set, instance present, sorted by name */
    uint32_t nlabels;
    uint32_t npoints;
    const fy_point_t *points; /* as pushed */
    double value;
    uint64_t count;
    fy_str_t pb_histogram;
} fy_store_series_view_t;

typedef struct st_fy_store_family_view_t {
    fy_str_t name;
    fy_str_t help; /* valid iff has_help */
    uint8_t has_help;
    uint8_t type;     /* fy_type_t */
    int64_t stamp_ns; /* when this family was last written in this group */
    uint32_t nseries;
    const fy_store_series_view_t *series; /* stored (push) order */
    uint32_t nviewed;                     /* series[0..nviewed) are set: nseries, except in a view with a label budget (cursor) */
} fy_store_family_view_t;

typedef struct st_fy_store_group_view_t {
    fy_str_t key;                   /* canonical grouping key (names sorted, name 0xFF value pairs joined by 0xFF) */
    const fy_store_label_t *labels; /* grouping labels, sorted by name */
    uint32_t nlabels;
    int64_t push_ns, push_stamp_ns; /* push_time_seconds value (0 = never) and family time */
    int64_t fail_ns, fail_stamp_ns; /* push_failure_time_seconds value and family time */
    uint32_t origin;
    uint64_t version;
    fy_store_life_t life;        /* as declared (0 = none declared, FY_LIFE_NONE) */
    int64_t ttl_ns, interval_ns; /* in effect (declared, else the store's default; 0 = none) */
    int64_t deadline_ns;         /* when the group expires (0 = never) */
    uint32_t nfamilies;
    const fy_store_family_view_t *families; /* pushed families in name order, without the two timestamp families */
    /* lww mode only (0 otherwise). A tombstone (fy_store_foreach_changed_since only) sets key, labels, nlabels,
     * clear_ns and del_ns; everything else is 0. push_ns/fail_ns are then the registers as far as they are visible
     * (0 when below del_ns), and life holds the life registers visible (stamp >= del_ns), with their stamps. */
    uint8_t is_tombstone;
    int64_t clear_ns; /* latest PUT, DELETE or wipe: families stamped below it are dead */
    int64_t del_ns;   /* latest DELETE or wipe (joined with the store's wipe): hides push, fail and life below it */
    int64_t ttl_stamp_ns, interval_stamp_ns; /* stamps of life.ttl_ns and life.interval_ns (0 = none visible) */
    int64_t max_stamp_ns;                    /* the largest stamp the group holds (registers, families, kills) */
    uint32_t nkills;
    const struct st_fy_store_kill_t *kills; /* families killed (fy_store_kill), in name order */
} fy_store_group_view_t;

/* Called once per group, in canonical key order, while that group's shard is read-locked: the callback must be
 * quick, must not call into the store and must not keep pointers. Return non-zero to stop. */
typedef int (*fy_store_group_cb_t)(void *ctx, const fy_store_group_view_t *g);

/** Iterates over all groups in canonical key order. Returns 0 or the callback's value. */
int fy_store_foreach_group(fy_store_t *s, fy_store_group_cb_t cb, void *ctx);

/*
 * The same groups one at a time, for a reader that pages or stops between groups (the web UI). open copies the
 * sorted grouping keys (the per-group state: the key bytes); view(i) finds group i again under its shard lock and
 * calls cb as fy_store_foreach_group would, with series included family by family while their labels total at most
 * max_labels (the group's first series always; SIZE_MAX: all; 0: no families at all, nfamilies 0, which costs only
 * the key). view returns 0, or 1 if group i no longer exists (cb not called). A cursor is used by one thread at a
 * time, holds no lock between calls, and its views are valid only during cb. Allocation failures abort.
 */
typedef struct st_fy_store_cursor_t fy_store_cursor_t;
fy_store_cursor_t *fy_store_cursor_open(fy_store_t *s);
size_t fy_store_cursor_count(const fy_store_cursor_t *c);
int fy_store_cursor_view(fy_store_cursor_t *c, size_t i, size_t max_labels, fy_store_group_cb_t cb, void *ctx);
void fy_store_cursor_close(fy_store_cursor_t *c);

/* ------------------------------------------------------------------------------------------------------------- */
/* Expiry, liveness and bulk deletes (docs/beyond-pushgateway.md). The group views these pass to callbacks are
 * partial: key, labels, times, life and deadline are set, families are not (nfamilies is 0). Callbacks run with the
 * group's shard locked: they must be quick and must not call into the store. */

/**
 * Removes every group whose deadline is at or before now_ns. Each shard keeps its groups with a deadline in a
 * min-heap, so a call costs one heap peek per shard plus the removals. cb (may be NULL) sees each group just before
 * it is removed. Returns the number of groups removed.
 */
uint64_t fy_store_expire(fy_store_t *s, int64_t now_ns, fy_store_group_cb_t cb, void *ctx);

/** Calls cb for every group that has a TTL or an expected interval in effect (no particular order); the others are
 * not visited. Returns 0 or the callback's non-zero value. */
int fy_store_foreach_life(fy_store_t *s, fy_store_group_cb_t cb, void *ctx);

/** Removes every group for which pred returns non-zero, one shard at a time (a push to a shard not yet visited may
 * still land). Returns the number of groups removed. */
uint64_t fy_store_delete_where(fy_store_t *s, fy_store_group_cb_t pred, void *ctx);

/* ------------------------------------------------------------------------------------------------------------- */
/* Last-writer-wins merging (fy_store_config_t.lww; docs/store.md, "LWW mode"). Every change carries a stamp that no
 * other change has; whatever the order in which a store receives a set of changes, and however often each, it ends
 * in the same state. A group is a join-semilattice: clear (latest PUT/DELETE/wipe), del (latest DELETE/wipe), push
 * and fail registers, one stamp per family, per-field life registers, kills. The stamp of a change that is above
 * every stamp its group holds (the in-order case, every local push) takes the same paths as a push without lww.
 * fy_store_push, fy_store_push_life and fy_store_delete take now_ns as the stamp in lww mode; fy_store_delete then
 * removes only what is older than its stamp and leaves a tombstone. The calls below return FY_SERR_BADARG on a store
 * without lww (and for an invalid grouping key). */

/* A family killed in a group: every instance of that name stamped at or before `stamp` is dead. */
typedef struct st_fy_store_kill_t {
    fy_str_t name;
    int64_t stamp;
} fy_store_kill_t;

/* Called (after every lock is released) for each family a merge dropped because it is inconsistent with the store:
 * the replication layer turns each into a fy_store_kill of (group, family, stamp) on every replica. */
typedef void (*fy_store_dropped_cb_t)(void *ctx, fy_str_t family);

/**
 * Applies a change another replica accepted (PUT or POST at `stamp`): no limits and no rejection. Families that fail
 * the store-wide consistency check (type conflicts with other groups, series already in other groups, suffix
 * collisions, own families' HELP or type) are left out and reported through dropped (may be NULL); a body the check
 * cannot attribute family by family (invalid grouping values, timestamps) is dropped whole (every family reported,
 * nothing changed). The rest is merged by the LWW rules: PUT clears families older than the stamp; a family is
 * written iff the stamp is above its current one and no kill covers it; push := max(push, stamp); each declared life
 * field is a register of its own. Returns FY_OK or FY_SERR_BADARG.
 */
int fy_store_merge_push(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, fy_store_method_t method, const fy_body_t *body,
                        const fy_store_life_t *life, int64_t stamp, uint32_t origin, fy_store_dropped_cb_t dropped, void *ctx);

/** A push rejected at the replica that took it: fail := max(fail, stamp), creating the group (push time 0) if it is
 * absent and not deleted at or after stamp. Returns FY_OK or FY_SERR_BADARG. */
int fy_store_fail(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, int64_t stamp);

/** Kills a family of a group at stamp: its instance stamped at or before stamp goes, and a later-arriving push of that
 * name stamped at or before it skips the family; fail := max(fail, stamp) as fy_store_fail. */
int fy_store_kill(fy_store_t *s, const fy_store_label_t *gk, size_t ngk, fy_str_t family, int64_t stamp);

/** Deletes every group at stamp (each as fy_store_delete) and remembers the stamp, so that older changes arriving
 * later find their group deleted too. Returns FY_OK or FY_SERR_BADARG. */
int fy_store_wipe(fy_store_t *s, int64_t stamp);

/** The store's wipe stamp (0 = none), for state transfer: the receiver applies it with fy_store_wipe. */
int64_t fy_store_wipe_stamp(fy_store_t *s);

/** Calls cb for every group and every tombstone whose largest stamp is above since, in no particular order, with the
 * group's shard locked (as fy_store_foreach_group; views carry the lww fields). Returns 0 or the callback's value. */
int fy_store_foreach_changed_since(fy_store_t *s, int64_t since, fy_store_group_cb_t cb, void *ctx);

/** The same over shards [first, first + count) only (count may run past the last), so that a state transfer can be
 * produced a piece at a time; fy_store_nshards says how many there are. */
int fy_store_foreach_changed_since_shards(fy_store_t *s, int64_t since, uint32_t first, uint32_t count, fy_store_group_cb_t cb,
                                          void *ctx);
uint32_t fy_store_nshards(const fy_store_t *s);

/* A whole group's state from another replica (state transfer), as fy_store_foreach_changed_since views it. */
typedef struct st_fy_store_merge_group_t {
    const fy_store_label_t *labels;
    size_t nlabels;
    uint8_t is_tombstone; /* then only clear_ns (and del_ns) count */
    int64_t clear_ns, del_ns;
    int64_t push_ns, fail_ns; /* registers (stamps), 0 = none */
    fy_store_life_t life;
    int64_t ttl_stamp_ns, interval_stamp_ns;
    const fy_store_kill_t *kills;
    size_t nkills;
    const fy_body_t *body;        /* the live families (may be NULL) */
    const int64_t *family_stamps; /* one per body->families[i] */
} fy_store_merge_group_t;

/** Joins a group's state into the store: the same as DELETE@del, a PUT's clear at clear_ns, POST({f})@stamp of
 * each family, the push register, FAIL@fail, the kills and the life registers (a tombstone: DELETE@clear). Families
 * the check drops are reported as by fy_store_merge_push. Returns FY_OK or FY_SERR_BADARG. */
int fy_store_merge_group(fy_store_t *s, const fy_store_merge_group_t *g, fy_store_dropped_cb_t dropped, void *ctx);

/** Forgets tombstones and kills stamped below before (every replica has applied everything older). Returns how many
 * went. */
uint64_t fy_store_gc_tombstones(fy_store_t *s, int64_t before);

#ifdef __cplusplus
}
#endif

#endif
