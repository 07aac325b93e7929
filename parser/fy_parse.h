/*
 * fy_parse.h: public API of Ferry's body parsers (text 0.0.4, OpenMetrics 1.0 text, delimited protobuf).
 *
 * Contract shared by all parsers (picohttpparser style):
 *   - The caller owns the input buffer and the arena. The parser never calls malloc, never writes to the input and
 *     never reads past buf + len; the input need not be NUL-terminated. If len is 0, buf may be NULL.
 *   - On success the result (fy_body_t) points into both the input and the arena; it stays valid until either is
 *     reused.
 *   - All out-params are preset at entry, so they are defined on failure too.
 *   - Return value: FY_OK (0) or a negative FY_PERR_* code; *err then holds the full message exactly as the
 *     Pushgateway (prometheus/common expfmt) words it, e.g. "text format parsing error in line 3: invalid metric name".
 *   - FY_PERR_NOMEM means the arena was too small: nothing is wrong with the input; retry with a bigger arena.
 *     fy_parse_arena_hint() gives a size that always suffices.
 */
#ifndef FY_PARSE_H
#define FY_PARSE_H

#include "fy_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------------- */
/* Error codes: one table, codes are negative. The message formats live next to the code so that the two cannot
 * drift apart; the parser fills them in at the error site (a cold path). */

/* clang-format off */
#define FY_PERR_MAP(XX)                                                                                             \
    /* generic */                                                                                                  \
    XX(NOMEM,              "arena exhausted (not an input error)")                                                 \
    XX(INTERNAL,           "internal parser error")                                                                \
    /* text 0.0.4 (expfmt TextParser); every message is prefixed "text format parsing error in line N: " */        \
    XX(EOF_IN_LINE,        "unexpected end of input stream")                                                       \
    XX(INVALID_METRIC_NAME,"invalid metric name")                                                                  \
    XX(INVALID_NAME_COMMENT,"invalid metric name in comment")                                                      \
    XX(INVALID_LABEL_NAME, "invalid label name for metric %q")                                                     \
    XX(RESERVED_LABEL,     "label name %q is reserved")                                                            \
    XX(EXPECTED_EQUAL,     "expected '=' after label name, found %q")                                              \
    XX(EXPECTED_QUOTE,     "expected '\"' at start of label value, found %q")                                      \
    XX(EXPECTED_LABEL_END, "unexpected end of label value %q")                                                     \
    XX(INVALID_ESCAPE,     "invalid escape sequence '\\%c'")                                                         \
    XX(UNESCAPED_NEWLINE,  "label value %q contains unescaped new-line")                                           \
    XX(INVALID_LABEL_VALUE,"invalid label value %q")                                                               \
    XX(DUPLICATE_LABEL,    "duplicate label names for metric %q")                                                  \
    XX(EXPECTED_FLOAT,     "expected float as value, got %q")                                                      \
    XX(EXPECTED_FLOAT_LBL, "expected float as value for '%s' label, got %q")                                       \
    XX(EXPECTED_INT_TS,    "expected integer as timestamp, got %q")                                                \
    XX(SPURIOUS_AFTER_TS,  "spurious string after timestamp: %q")                                                  \
    XX(SECOND_HELP,        "second HELP line for metric name %q")                                                  \
    XX(SECOND_TYPE,        "second TYPE line for metric name %q, or TYPE reported after samples")                  \
    XX(UNKNOWN_TYPE,       "unknown metric type %q")                                                               \
    XX(INVALID_TOKEN,      "invalid token %q")                                                                     \
    /* OpenMetrics 1.0 text; prefixed "openmetrics parsing error in line N: " */                                   \
    XX(OM_ERROR,           "%s")                                                                                   \
    /* delimited protobuf io.prometheus.client.MetricFamily */                                                     \
    XX(PB_UNEXPECTED_EOF,  "unexpected EOF")                                                                       \
    XX(PB_ERROR,           "%s")                                                                                   \
    /* text 0.0.4 with FY_PARSE_UTF8_NAMES (quoted names); appended so the codes above keep their numbers */        \
    XX(NAME_NEWLINE,       "%s name %q contains unescaped new-line")                                               \
    XX(NAME_NOT_UTF8,      "%s name %q is not valid UTF-8")                                                        \
    XX(NAME_END,           "unexpected end of metric name %q")                                                     \
    XX(MULTIPLE_NAMES,     "multiple metric names for metric %q")                                                  \
    XX(NAME_FIRST,         "a label set that starts a line must start with the metric name, found label %q")
/* clang-format on */

enum {
    FY_OK = 0,
#define FY__PERR_ENUM(name, fmt) FY__PERR_##name,
    FY__PERR_BASE = 0, /* placeholder so the first code is -1 */
    FY_PERR_MAP(FY__PERR_ENUM) FY__PERR_END
#undef FY__PERR_ENUM
};
#define FY__PERR_DEF(name, fmt) enum { FY_PERR_##name = -(int)FY__PERR_##name };
FY_PERR_MAP(FY__PERR_DEF)
#undef FY__PERR_DEF

/** Short name of a code ("EOF_IN_LINE"), or "OK"; for logs and tests. */
const char *fy_perr_name(int code);

#define FY_ERRMSG_MAX 1024

typedef struct st_fy_parse_error_t {
    int code;                /* FY_OK or FY_PERR_* */
    uint32_t line;           /* 1-based line of the error for text formats; 0 for protobuf */
    size_t offset;           /* byte offset into the input where the error was detected */
    size_t msg_len;          /* strlen(msg) */
    char msg[FY_ERRMSG_MAX]; /* full message, NUL-terminated; quoted input longer than fits is cut with "..." */
} fy_parse_error_t;

/* ------------------------------------------------------------------------------------------------------------- */
/* Arena: caller-provided memory that parsers carve their output arrays and working tables from. */

typedef struct st_fy_arena_t {
    char *base;
    size_t cap;
    size_t used;
} fy_arena_t;

static inline void fy_arena_init(fy_arena_t *a, void *mem, size_t cap)
{
    a->base = (char *)mem;
    a->cap = cap;
    a->used = 0;
}

static inline void fy_arena_reset(fy_arena_t *a)
{
    a->used = 0;
}

/** Bump-allocates n bytes aligned to 16 from the arena, or returns NULL when it is exhausted. */
static inline void *fy_arena_alloc(fy_arena_t *a, size_t n)
{
    size_t off = (a->used + 15) & ~(size_t)15;
    if (off > a->cap || n > a->cap - off)
        return NULL;
    a->used = off + n;
    return a->base + off;
}

/** An arena size with which parsing `len` input bytes never fails with FY_PERR_NOMEM. */
size_t fy_parse_arena_hint(size_t len);

/* ------------------------------------------------------------------------------------------------------------- */
/* The parsers. */

/**
 * Parses a text format 0.0.4 body exactly as prometheus/common expfmt's TextParser does (same accepted inputs, same
 * error messages), into *body. Label values and HELP keep their escapes (see fy_esc_t).
 */
int fy_parse_text(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err);

/* Options of fy_parse_text_opts. */
#define FY_PARSE_UTF8_NAMES 1u /* --push.enable-utf8-names: quoted metric and label names (see docs/parser.md) */

/**
 * fy_parse_text with options. FY_PARSE_UTF8_NAMES also accepts the quoted names of newer expfmt versions:
 * `{"metric.name",label="v"} 1`, `{"metric.name"} 1`, `"metric.name" 1`, `m{"label.name"="v"} 1` and
 * `# HELP "metric.name" ...` / `# TYPE "metric.name" ...`. A quoted name takes the label-value escapes (\\ \" \n), must
 * be non-empty and valid UTF-8, and is returned unescaped: a slice of the input, or an arena copy when it held
 * escapes. Without options the parser is exactly fy_parse_text (a line that holds a quoted name is an error there,
 * and that error path is the only place that looks at the option).
 */
int fy_parse_text_opts(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err, unsigned opts);

/**
 * Parses an OpenMetrics 1.0 text body (must end with "# EOF"). Counters become family "<name>_total" of type counter
 * (their _created samples become a gauge family "<name>_created"), info becomes gauge "<name>_info", stateset becomes
 * a gauge, unknown becomes untyped, gaugehistogram becomes FY_TYPE_GAUGE_HISTOGRAM. Exemplars are validated and
 * dropped. Timestamps are reported in milliseconds (rounded toward zero).
 */
int fy_parse_openmetrics(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err);

/**
 * Decodes a sequence of varint-length-delimited io.prometheus.client.MetricFamily messages. Unknown fields are
 * skipped; truncation anywhere gives FY_PERR_PB_UNEXPECTED_EOF ("unexpected EOF").
 */
int fy_parse_protobuf(const char *buf, size_t len, fy_arena_t *arena, fy_body_t *body, fy_parse_error_t *err);

/* ------------------------------------------------------------------------------------------------------------- */
/* Helpers for consumers of fy_body_t. */

/** Length of s once the escapes of kind esc are undone (always <= s.len). */
size_t fy_unescaped_len(fy_str_t s, fy_esc_t esc);

/** Writes s with the escapes of kind esc undone to out (room for fy_unescaped_len bytes); returns the length. */
size_t fy_unescape(fy_str_t s, fy_esc_t esc, char *out);

/** Go's strconv.Quote of s into out (cap bytes including the NUL), cut with "..." when it does not fit, as the
 * reference quotes values in its error messages. Returns the length written. */
size_t fy_go_quote(const char *s, size_t n, char *out, size_t cap);

/** Whether s is valid UTF-8 as Go's utf8.ValidString decides it. */
int fy_utf8_valid(const char *s, size_t n);

/** Decodes one UTF-8 sequence at s (n bytes available) into *rune; returns its length, 0 when it is not valid. */
size_t fy_utf8_decode(const unsigned char *s, size_t n, uint32_t *rune);

#ifdef __cplusplus
}
#endif

#endif
