/*
 * negotiate.h: which format and encoding a scrape gets, from its Accept and Accept-Encoding headers, exactly as
 * Pushgateway 1.5.1 decides (prometheus/common expfmt.Negotiate with goautoneg; client_golang 1.14's gzip test).
 */
#ifndef FY_NEGOTIATE_H
#define FY_NEGOTIATE_H

#include <stddef.h>

typedef enum en_fy_scrape_format_t {
    FY_SCRAPE_TEXT = 0,    /* text/plain; version=0.0.4; charset=utf-8 */
    FY_SCRAPE_PROTOBUF,    /* application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited */
    FY_SCRAPE_OPENMETRICS, /* application/openmetrics-text; version=1.0.0; charset=utf-8 (only when enabled) */
} fy_scrape_format_t;

/**
 * The format for an Accept header value (NULL or empty: text). OpenMetrics is chosen only if allow_openmetrics:
 * the reference never negotiates it, and an OpenMetrics exposition renames counters without a _total suffix.
 * The protobuf text encodings (encoding=text, compact-text) are not offered: such clauses are skipped.
 */
fy_scrape_format_t fy_negotiate_format(const char *accept, size_t len, int allow_openmetrics);

/** Content-Type header value for a format. */
const char *fy_scrape_content_type(fy_scrape_format_t f);

/* The escaping= values of common v0.61 (model.EscapingKey), in the order of fy_name_escaping_t (store.h). */
#define FY_ESCAPING_UNDERSCORES 0 /* the default (model.NameEscapingScheme) */
#define FY_ESCAPING_ALLOW_UTF8 1
#define FY_ESCAPING_DOTS 2
#define FY_ESCAPING_VALUES 3

/**
 * The name escaping a scrape asks for, as Pushgateway 1.11 decides it (expfmt v0.61 Negotiate): the Accept clauses
 * are walked in goautoneg's order (q descending, specific types before wildcards, header order on ties) up to and
 * including the one that is served, and the last of them with a known escaping= parameter sets it; none: underscores.
 * So "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4", which Prometheus 3 sends
 * in that spirit, gets text 0.0.4 with quoted names.
 */
int fy_negotiate_escaping(const char *accept, size_t len, int allow_openmetrics);

/** "underscores", "allow-utf-8", "dots" or "values". */
const char *fy_escaping_name(int escaping);

/** 1.5.1's gzip rule: some comma-separated element of Accept-Encoding, trimmed, is "gzip" or starts "gzip;". */
int fy_negotiate_gzip(const char *accept_encoding, size_t len);

#endif
