/*
 * test_http_negotiate.c: scrape content negotiation (spec 7.5, 7.6, E18): Accept -> text / delimited protobuf /
 * OpenMetrics as prometheus/common expfmt.Negotiate decides with goautoneg's parser, and 1.5.1's Accept-Encoding
 * gzip rule (client_golang 1.14 gzipAccepted: q ignored, exact lower-case token).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../src/http/negotiate.c"

#define PB "application/vnd.google.protobuf"
#define PROTO "proto=io.prometheus.client.MetricFamily"
#define T FY_SCRAPE_TEXT
#define P FY_SCRAPE_PROTOBUF
#define O FY_SCRAPE_OPENMETRICS

typedef struct {
    const char *accept;
    fy_scrape_format_t want;    /* OpenMetrics not allowed (the 1.5.1 default) */
    fy_scrape_format_t want_om; /* --web.enable-openmetrics (Ferry's opt-in) */
    const char *note;
} accept_case_t;

static const accept_case_t accept_cases[] = {
    /* E18 transcript */
    {"application/openmetrics-text; version=0.0.1", T, O, "E18: OpenMetrics is never negotiated by 1.5.1"},
    {PB "; " PROTO "; encoding=delimited", P, P, "E18: delimited protobuf"},
    {PB "; " PROTO "; encoding=text", T, T, "E18 serves protobuf text; Ferry does not (divergence) -> text"},
    {PB "; " PROTO "; encoding=compact-text", T, T, "compact-text not served either -> text"},
    {"text/plain; version=0.0.5", T, T, "E18: unknown text version -> default text"},
    {"application/json", T, T, "E18: json -> text"},
    {PB ";" PROTO ";encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1", P, P, "E18: q list"},
    /* empty and trivial */
    {"", T, T, "no Accept header"},
    {"*/*", T, T, "wildcard alone"},
    {"*", T, T, "goautoneg reads * as */*"},
    {"text/plain", T, T, "text without version"},
    {"text/plain; version=0.0.4", T, T, "text 0.0.4"},
    {"text/plain;version=", T, T, "explicitly empty version counts as no version"},
    {"text/plain;version=, " PB ";" PROTO ";encoding=delimited", T, T, "empty version text clause comes first"},
    /* protobuf parameters */
    {PB ";encoding=delimited;" PROTO, P, P, "parameters in any order"},
    {PB, T, T, "no parameters"},
    {PB ";" PROTO, T, T, "no encoding"},
    {PB ";encoding=delimited", T, T, "no proto"},
    {PB ";proto=\"io.prometheus.client.MetricFamily\";encoding=delimited", T, T, "goautoneg does not unquote"},
    {PB ";" PROTO ";encoding=\"delimited\"", T, T, "quoted encoding: no match"},
    {PB ";" PROTO ";encoding=DELIMITED", T, T, "values are case-sensitive"},
    {"APPLICATION/vnd.google.protobuf;" PROTO ";encoding=delimited", T, T, "types are case-sensitive"},
    {PB ";PROTO=io.prometheus.client.MetricFamily;encoding=delimited", T, T, "parameter names are case-sensitive"},
    {PB " ; " PROTO " ; encoding = delimited ", P, P, "spaces around ; and = are trimmed"},
    {"  " PB ";" PROTO ";encoding=delimited  ", P, P, "spaces around the clause"},
    {"application / vnd.google.protobuf;" PROTO ";encoding=delimited", P, P, "goautoneg trims type and subtype"},
    {"\t" PB ";" PROTO ";encoding=delimited", T, T, "only spaces are trimmed, not tabs"},
    {PB ";" PROTO ";encoding=text;encoding=delimited", P, P, "duplicate parameter: the last wins (Go map)"},
    {PB ";" PROTO ";encoding=delimited;encoding=text", T, T, "duplicate parameter: the last wins, text not served"},
    {PB ";a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8;i=9;" PROTO ";encoding=delimited", P, P, "many other parameters"},
    {PB ";" PROTO ";encoding", T, T, "parameter without '=' is ignored"},
    {PB ";" PROTO ";encoding=delimited;junk", P, P, "junk parameter ignored"},
    {PB "/x;" PROTO ";encoding=delimited", T, T, "two slashes: clause dropped"},
    /* encoding=text / compact-text fall through to the next clause */
    {PB ";" PROTO ";encoding=text," PB ";" PROTO ";encoding=delimited", P, P, "text encoding skipped, next clause"},
    {PB ";" PROTO ";encoding=compact-text,application/openmetrics-text", T, O, "compact skipped, OM if allowed"},
    /* q values */
    {"text/plain;q=0.5," PB ";" PROTO ";encoding=delimited", P, P, "q=1 (default) beats 0.5"},
    {"text/plain;q=1," PB ";" PROTO ";encoding=delimited", T, T, "tie: header order"},
    {PB ";" PROTO ";encoding=delimited,text/plain", P, P, "tie: header order (protobuf first)"},
    {"text/plain;q=0.3," PB ";" PROTO ";encoding=delimited;q=0.30", T, T, "equal q spelled differently: tie"},
    {"text/plain;q=0.1," PB ";" PROTO ";encoding=delimited;q=0.2", P, P, "higher q wins"},
    {PB ";" PROTO ";encoding=delimited;q=0", P, P, "q=0 is not excluded by expfmt"},
    {"text/plain;q=0," PB ";" PROTO ";encoding=delimited;q=0", T, T, "both q=0: header order"},
    {"text/plain;q=0.5;q=0.1," PB ";" PROTO ";encoding=delimited;q=0.2", P, P, "repeated q: the last wins"},
    {"text/plain;q=x," PB ";" PROTO ";encoding=delimited;q=0.001", P, P, "unparsable q is 0"},
    {"text/plain;q= 0.9," PB ";" PROTO ";encoding=delimited;q=0.5", P, P, "q value is not trimmed: ' 0.9' is 0"},
    {"text/plain;q=0.9 ;v=1," PB ";" PROTO ";encoding=delimited;q=0.5", P, P, "'0.9 ' fails to parse too"},
    {"text/plain;q=1e-1," PB ";" PROTO ";encoding=delimited;q=0.05", T, T, "exponent form parses"},
    {"text/plain;q=.5," PB ";" PROTO ";encoding=delimited;q=0.4", T, T, "leading dot parses"},
    {"text/plain;q=2," PB ";" PROTO ";encoding=delimited", T, T, "q above 1 is kept as is"},
    {"text/plain;q=-1," PB ";" PROTO ";encoding=delimited;q=0", P, P, "negative q"},
    {"text/plain;q=1e99," PB ";" PROTO ";encoding=delimited", T, T, "float32 overflow: +Inf"},
    {"text/plain;q=0x1p-1," PB ";" PROTO ";encoding=delimited;q=0.4", T, T, "Go parses hex floats with p"},
    {"text/plain;q=0x1," PB ";" PROTO ";encoding=delimited;q=0.4", P, P, "hex without p exponent: syntax error"},
    {"text/plain;q=0.3," PB ";" PROTO ";encoding=delimited;q=0.30000001", T, T, "equal as float32 (ParseFloat 32): tie"},
    {"text/plain;Q=0.1," PB ";" PROTO ";encoding=delimited;q=0.5", T, T, "'Q' is not q"},
    /* wildcards and others never match */
    {"*/*;q=1," PB ";" PROTO ";encoding=delimited;q=0.5", P, P, "wildcards are skipped"},
    {"text/*," PB ";" PROTO ";encoding=delimited;q=0.5", P, P, "text/* is not text/plain"},
    {"application/json;q=1,text/plain;q=0.2," PB ";" PROTO ";encoding=delimited;q=0.1", T, T, "json skipped"},
    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8", T, T, "browser"},
    {"text/plain;version=0.0.5," PB ";" PROTO ";encoding=delimited;q=0.1", P, P, "bad text version skipped"},
    /* OpenMetrics, when allowed */
    {"application/openmetrics-text", T, O, "no version"},
    {"application/openmetrics-text;version=1.0.0", T, O, "1.0.0"},
    {"application/openmetrics-text;version=0.0.1", T, O, "0.0.1"},
    {"application/openmetrics-text;version=", T, O, "empty version"},
    {"application/openmetrics-text;version=2.0.0", T, T, "unknown version"},
    {"application/openmetrics-text;version=1.0.0;q=0.5," PB ";" PROTO ";encoding=delimited;q=0.6", P, P, "q order"},
    {"application/openmetrics-text; version=1.0.0; charset=utf-8,text/plain;version=0.0.4;q=0.5;charset=utf-8,*/*;q=0.1", T, O,
     "Prometheus 2.x scrape header"},
    {PB ";" PROTO ";encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0", P, O, "OM first if allowed"},
    /* malformed */
    {",", T, T, "empty clauses"},
    {",,," PB ";" PROTO ";encoding=delimited,,", P, P, "empty clauses around a good one"},
    {"garbage", T, T, "no slash"},
    {"/", T, T, "empty type and subtype"},
    {";;;===", T, T, "only separators"},
    {"text/plain;;;q=0.1," PB ";" PROTO ";encoding=delimited", P, P, "empty parameters"},
    {PB ";" PROTO ";encoding=delimited=x", T, T, "value 'delimited=x'"},
};

static void test_accept(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(accept_cases) / sizeof(accept_cases[0]); i++) {
        const accept_case_t *c = &accept_cases[i];
        size_t n = strlen(c->accept);
        const char *g = fy_guarded(c->accept, n);
        fy_scrape_format_t got = fy_negotiate_format(g, n, 0);
        if (got != c->want)
            fail_msg("case %zu (%s): \"%s\": got %d, want %d", i, c->note, c->accept, got, c->want);
        g = fy_guarded(c->accept, n);
        got = fy_negotiate_format(g, n, 1);
        if (got != c->want_om)
            fail_msg("case %zu (%s) with OpenMetrics: \"%s\": got %d, want %d", i, c->note, c->accept, got, c->want_om);
    }
}

/* A header longer than any fixed clause table: the protobuf clause at the end with the highest q still wins. */
static void test_accept_many_clauses(void **state)
{
    (void)state;
    char buf[8192];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "text/plain;q=0.%d,", i % 9 + 1);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, PB ";" PROTO ";encoding=delimited");
    assert_int_equal(fy_negotiate_format(fy_guarded(buf, n), n, 0), P);
    assert_int_equal(fy_negotiate_format(NULL, 0, 1), T);
    /* the length is honoured: a header cut before its protobuf clause is text */
    const char *h = "text/plain;q=0.1," PB ";" PROTO ";encoding=delimited";
    assert_int_equal(fy_negotiate_format(fy_guarded(h, 17), 17, 0), T);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_string_equal(fy_scrape_content_type(T), "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(fy_scrape_content_type(P), PB "; " PROTO "; encoding=delimited");
    assert_string_equal(fy_scrape_content_type(O), "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

static const struct {
    const char *ae;
    int want;
    const char *note;
} gzip_cases[] = {
    {"gzip", 1, "E18"},
    {"gzip;q=0", 1, "E18: q is ignored"},
    {"gzip; q=0", 1, "prefix gzip;"},
    {"br, GZIP", 0, "E18: case-sensitive"},
    {"x-gzip", 0, "E18: x-gzip is not gzip"},
    {"", 0, "no header"},
    {"deflate, gzip", 1, "second element"},
    {"gzip, deflate, br", 1, "curl/browser style"},
    {"  gzip  ", 1, "trimmed"},
    {"\tgzip", 1, "TrimSpace trims tabs"},
    {"\r\n\v\fgzip", 1, "and the other ASCII white space"},
    {"\xc2\xa0gzip", 1, "and U+00A0 (Go's unicode.IsSpace)"},
    {"gzip\xe3\x80\x80", 1, "and U+3000"},
    {"\xe2\x80\x8agzip", 1, "and U+200A"},
    {"\xc2gzip", 0, "a lone lead byte is not space"},
    {"\xe2\x80 gzip", 0, "an invalid three-byte sequence is not space"},
    {"gzip ;q=1", 0, "space before ; : neither gzip nor gzip;"},
    {"gzipx", 0, "longer token"},
    {"gzi", 0, "shorter token"},
    {"*", 0, "wildcard does not count"},
    {"identity, *;q=0", 0, "no gzip element"},
    {",,gzip,,", 1, "empty elements"},
    {"br;q=1.0, gzip;q=0.8", 1, "Chrome style"},
};

/* --push.enable-utf8-names: the escaping= a scrape gets (expfmt v0.61 Negotiate, as Pushgateway 1.11 serves it). */
typedef struct {
    const char *accept;
    int want;
    const char *note;
} escaping_case_t;

#define EU FY_ESCAPING_UNDERSCORES
#define EA FY_ESCAPING_ALLOW_UTF8
#define ED FY_ESCAPING_DOTS
#define EV FY_ESCAPING_VALUES

static const escaping_case_t escaping_cases[] = {
    {"", EU, "no Accept: model.NameEscapingScheme, underscores"},
    {"text/plain;version=0.0.4", EU, "no escaping parameter"},
    {"text/plain;version=0.0.4;escaping=allow-utf-8", EA, "allow-utf-8 on the served clause"},
    {"text/plain; escaping = values ", EV, "spaces trimmed as for other parameters"},
    {"text/plain;escaping=dots", ED, "dots"},
    {"text/plain;escaping=underscores", EU, "underscores, spelt out"},
    {"text/plain;escaping=Allow-UTF-8", EU, "values are case-sensitive; unknown ones are ignored"},
    {"text/plain;escaping=bogus", EU, "an unknown value is ignored"},
    {PB ";" PROTO ";encoding=delimited;escaping=allow-utf-8", EA, "protobuf clauses carry it too (names are raw there)"},
    {"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4", EA,
     "a clause sorted before the served one sets it: what Prometheus 3 sends, in spirit"},
    {"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.3", EA,
     "OpenMetrics not served (1.11 never negotiates it), its escaping still counts"},
    {"text/plain;version=0.0.4;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5", EA, "q orders, not the header"},
    {"text/plain;version=0.0.4;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4", EU,
     "a clause after the served one does not count"},
    {"text/plain;version=0.0.4;escaping=dots;q=0.5,text/plain;escaping=values;q=0.5", ED,
     "equal q: header order, the first is served and the second comes after it"},
    {"x/y;escaping=values;q=0.9,x/z;escaping=dots;q=0.8,text/plain;q=0.1", ED, "the last one before the served clause wins"},
    {"x/y;escaping=values", EV, "nothing served: every clause was walked"},
    {"text/plain;q=0.5,*/*;escaping=values;q=0.5", EU, "a wildcard sorts after a specific type of equal q"},
    {"*/*;escaping=values;q=0.6,text/plain;q=0.5", EV, "a wildcard with a higher q sorts before"},
};

static void test_escaping(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(escaping_cases) / sizeof(escaping_cases[0]); i++) {
        const escaping_case_t *c = &escaping_cases[i];
        int got = fy_negotiate_escaping(c->accept, strlen(c->accept), 0);
        if (got != c->want)
            fail_msg("%s: Accept %s: got %s, want %s", c->note, c->accept, fy_escaping_name(got), fy_escaping_name(c->want));
    }
    /* Prometheus 3's default scrape Accept (its scrape tests' expected header): text 0.0.4 is served at q=0.3, and
     * the text 1.0.0 clause before it asks for allow-utf-8, so the names come quoted; with --web.enable-openmetrics
     * the first clause is served, with its own allow-utf-8. */
    static const char prom3[] = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                                "application/openmetrics-text;version=0.0.1;q=0.5,"
                                "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_int_equal(fy_negotiate_format(prom3, strlen(prom3), 0), FY_SCRAPE_TEXT);
    assert_int_equal(fy_negotiate_escaping(prom3, strlen(prom3), 0), FY_ESCAPING_ALLOW_UTF8);
    assert_int_equal(fy_negotiate_format(prom3, strlen(prom3), 1), FY_SCRAPE_OPENMETRICS);
    assert_int_equal(fy_negotiate_escaping(prom3, strlen(prom3), 1), FY_ESCAPING_ALLOW_UTF8);
    assert_string_equal(fy_escaping_name(FY_ESCAPING_ALLOW_UTF8), "allow-utf-8");
    assert_string_equal(fy_escaping_name(FY_ESCAPING_VALUES), "values");
}

static void test_gzip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(gzip_cases) / sizeof(gzip_cases[0]); i++) {
        size_t n = strlen(gzip_cases[i].ae);
        int got = fy_negotiate_gzip(fy_guarded(gzip_cases[i].ae, n), n);
        if (got != gzip_cases[i].want)
            fail_msg("case %zu (%s): \"%s\": got %d", i, gzip_cases[i].note, gzip_cases[i].ae, got);
    }
    assert_int_equal(fy_negotiate_gzip(NULL, 0), 0);
    assert_int_equal(fy_negotiate_gzip(fy_guarded("gzip", 3), 3), 0); /* "gzi": the length is honoured */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept),       cmocka_unit_test(test_accept_many_clauses),
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
