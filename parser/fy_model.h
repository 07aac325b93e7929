/*
 * fy_model.h: the one representation of a parsed push that every body parser (text 0.0.4, OpenMetrics 1.0 text,
 * delimited protobuf) produces and the store takes.
 *
 * It mirrors io.prometheus.client.MetricFamily closely enough that protobuf round-trips, and it is zero-copy: every
 * fy_str_t points into the request body the parser was given, so a parsed body is valid only as long as that
 * buffer (and the arena the arrays live in, see fy_parse.h). The store copies what it keeps.
 *
 * Ownership: the parser writes these structs into the caller's arena; nobody frees them one by one, the caller
 * resets the arena. Consumers only read.
 */
#ifndef FY_MODEL_H
#define FY_MODEL_H

#include "fy_str.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Numbering equals io.prometheus.client.MetricType, so protobuf encoding and decoding need no table. */
typedef enum en_fy_type_t {
    FY_TYPE_COUNTER = 0,
    FY_TYPE_GAUGE = 1,
    FY_TYPE_SUMMARY = 2,
    FY_TYPE_UNTYPED = 3,
    FY_TYPE_HISTOGRAM = 4,
    FY_TYPE_GAUGE_HISTOGRAM = 5,
} fy_type_t;

#define FY_TYPE_MAX FY_TYPE_GAUGE_HISTOGRAM

/* Whether a slice still holds text-format escapes. Text label values may hold \\ \" \n; text HELP may hold \\ \n.
 * OpenMetrics label values and HELP may hold \\ \" \n, and any other backslash stands for itself ("\a" is the two
 * bytes \ a, as the OpenMetrics ABNF's `BS normal-char` says), hence a kind of their own.
 * Protobuf and already-unescaped strings are FY_ESC_NONE. fy_unescape() in fy_parse.h undoes them. */
typedef enum en_fy_esc_t {
    FY_ESC_NONE = 0,
    FY_ESC_LABEL = 1, /* \\ \" \n */
    FY_ESC_HELP = 2,  /* \\ \n */
    FY_ESC_OM = 3,    /* \\ \" \n; any other backslash is literal */
} fy_esc_t;

typedef struct st_fy_label_t {
    fy_str_t name;
    fy_str_t value;    /* raw bytes from the input; see value_esc */
    uint8_t value_esc; /* fy_esc_t */
} fy_label_t;

/* A summary quantile (key = quantile, value) or a classic histogram bucket (key = upper bound, count = cumulative
 * count). Text-format bucket counts are truncated to uint64 as expfmt does. */
typedef struct st_fy_point_t {
    double key;
    double value;   /* summaries */
    uint64_t count; /* histograms */
} fy_point_t;

#define FY_PB_KINDS_VALID 0x80
/* The pb_kinds bit that a series of family type t must carry. */
#define FY_PB_KIND_BIT(t) (1u << ((t) == FY_TYPE_GAUGE_HISTOGRAM ? FY_TYPE_HISTOGRAM : (t)))

typedef struct st_fy_series_t {
    const fy_label_t *labels; /* in input order, without le/quantile; not sanitised, not sorted */
    uint32_t nlabels;
    uint32_t npoints;
    const fy_point_t *points; /* summaries: quantiles; histograms: classic buckets; input order */
    double value;             /* counter, gauge, untyped: the value; summary, histogram: the sample sum */
    uint64_t count;           /* summary, histogram: the sample count */
    int64_t timestamp_ms;     /* valid iff has_timestamp */
    uint8_t has_timestamp;
    /* Protobuf only (text parsers leave 0): FY_PB_KINDS_VALID plus bit (1 << t) for each value sub-message the
     * Metric carried, t = FY_TYPE_COUNTER, _GAUGE, _SUMMARY, _UNTYPED, _HISTOGRAM (gauge histograms use the
     * histogram bit). The fields above come only from the sub-message matching the family type; the store's
     * consistency check ("... is not a GAUGE") uses this to see whether that sub-message was there at all. */
    uint8_t pb_kinds;
    /* Protobuf only: the whole encoded io.prometheus.client.Histogram message, when it carries native-histogram
     * fields (schema, zero bucket, spans, deltas, float counts). The store keeps it verbatim so that protobuf scrapes
     * and persistence re-expose it unchanged; text renders use the classic fields above. Empty otherwise. */
    fy_str_t pb_histogram;
} fy_series_t;

typedef struct st_fy_family_t {
    fy_str_t name;
    fy_str_t help; /* valid iff has_help; may be empty ("# HELP x " from protobuf) */
    fy_str_t unit; /* OpenMetrics # UNIT; empty otherwise */
    uint8_t type;  /* fy_type_t */
    uint8_t has_help;
    uint8_t help_esc; /* fy_esc_t */
    uint32_t nseries;
    const fy_series_t *series; /* in first-appearance order */
} fy_family_t;

/* A parsed body. Families appear in first-appearance order. Text parsers drop families with no samples (as expfmt
 * does); the protobuf decoder keeps them (the Pushgateway stores and JSON-exposes empty protobuf families) and keeps
 * only the last of several families with the same name. */
typedef struct st_fy_body_t {
    const fy_family_t *families;
    uint32_t nfamilies;
    uint32_t nseries; /* total over all families, for admission limits */
} fy_body_t;

#ifdef __cplusplus
}
#endif

#endif
