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

/** 1.5.1's gzip rule: some comma-separated element of Accept-Encoding, trimmed, is "gzip" or starts "gzip;". */
int fy_negotiate_gzip(const char *accept_encoding, size_t len);

#endif
