"""Scenarios for pgdiff.py: what a Pushgateway user does, step by step, grouped by server configuration.

Each scenario is a list of HTTP steps played against the reference and Ferry; after it, /metrics and
/api/v1/metrics are compared too (check_state=False skips that). A step's `compare` says how responses are compared:
"full" (status, headers, body; the default), "error" (status, headers, and the body up to any protobuf dump, multi-
error lines sorted), "status", "scrape" (pushed families of a text scrape), "json" (normalised /api/v1/metrics).
Scenarios with `divergence=` describe a documented difference (docs/compatibility.md) and give Ferry's expected
`ferry=(status[, body])` per step instead; they are never sent to the reference.

Never send an invalid `job@base64` value to the reference: 1.5.1 deadlocks that route (spec 4.6, bug B1).
"""
import gzip

from pghttp import (COUNTER, GAUGE, HISTOGRAM, PB_CONTENT_TYPE, SUMMARY, UNTYPED, pb_family, pb_metric)

B1 = b"some_metric 3.14\n"


def S(name, *steps, **kw):
    return dict(name=name, steps=list(steps), **kw)


def step(method, path, body=None, ct=None, ce=None, compare="full", headers=None, **kw):
    h = dict(headers or {})
    if ct:
        h["Content-Type"] = ct
    if ce:
        h["Content-Encoding"] = ce
    d = dict(method=method, path=path, body=body, headers=h, compare=compare)
    d.update(kw)
    return d


def put(path, body=B1, **kw):
    return step("PUT", path, body, **kw)


def post(path, body=B1, **kw):
    return step("POST", path, body, **kw)


def delete(path, **kw):
    return step("DELETE", path, **kw)


def get(path, **kw):
    return step("GET", path, **kw)


def bad(method, path, body=B1, **kw):
    """A push the reference rejects in its consistency check: compare with error normalisation."""
    return step(method, path, body, compare="error", **kw)


# ------------------------------------------------------------------------------------------------------------------
# Push semantics (spec section 5, 14)

H1 = (b'# HELP rq Request duration.\n# TYPE rq histogram\n'
      b'rq_bucket{le="0.1",path="/a"} 1\nrq_bucket{le="1",path="/a"} 3\nrq_bucket{le="+Inf",path="/a"} 4\n'
      b'rq_sum{path="/a"} 2.5\nrq_count{path="/a"} 4\nrq_bucket{le="0.5",path="/b"} 2\nrq_sum{path="/b"} 0.7\n'
      b'rq_count{path="/b"} 2\n# TYPE sm summary\nsm{quantile="0.5"} 1.5\nsm{quantile="0.9"} NaN\nsm_sum 10\n'
      b'sm_count 7\n# TYPE sm2 summary\nsm2_count 3\nsm2_sum 1e-7\nuntyped_sum 5\ng_inf +Inf\ng_ninf -Inf\n'
      b'g_nan NaN\ng_big 1e21\ng_small 0.000001\ng_int 100000\ng_neg0 -0\nesc{v="a\\"b\\\\c\\nd"} 1\n'
      b'g_inf2 infinity\ng_nan2 nan\ng_exp 1E+3\n')

B2 = (b'# TYPE m1 counter\n# HELP m1 help one\nm1{job="bodyjob",instance="bodyinst",a="1"} 1\nm1{a="2"} 2\n'
      b'm2{instance="bi"} 5\n')

PUSH = [
    S("put-basic", put("/metrics/job/some_job")),
    S("post-instance", post("/metrics/job/some_job/instance/i1")),
    S("put-post-delete", put("/metrics/job/some_job"), post("/metrics/job/some_job/instance/i1"),
      delete("/metrics/job/some_job/instance/i1"), put("/metrics/job/other")),
    S("delete-missing", delete("/metrics/job/nothing/here/x")),
    S("readme-path-base64", put("/metrics/job/j1/path@base64/L3Zhci90bXA")),
    S("readme-empty-first-label", put("/metrics/job/j1/first_label@base64/=/second_label/foobar")),
    S("readme-job-base64", put("/metrics/job@base64/L3Zhci90bXA=")),
    S("readme-unicode-base64", put("/metrics/job/titan/name@base64/zqDPgc6_zrzOt864zrXPjc-C")),
    S("readme-unicode-percent",
      put("/metrics/job/titan2/name/%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82")),
    S("put-then-post-merges", put("/metrics/job/sem", b"a1 1\na2 2\n"), post("/metrics/job/sem", b"a2 20\na3 30\n")),
    S("post-empty-keeps", put("/metrics/job/sem", b"a1 1\na2 2\n"), post("/metrics/job/sem", b"")),
    S("put-empty-clears", put("/metrics/job/sem", b"a1 1\na2 2\n"), put("/metrics/job/sem", b"")),
    S("put-no-body", put("/metrics/job/sem2", None)),
    S("post-new-group-empty", post("/metrics/job/sem3", b"")),
    S("only-type-help-is-empty", put("/metrics/job/x5", b"# TYPE onlytype counter\n")),
    S("comments-and-blank-lines",
      put("/metrics/job/x4", b"# just a comment\n\n# TYPE\n# HELP\n# TYPE x4a\n# HELP x4b   \nx4 1\n")),
    S("grouping-overrides-body", put("/metrics/job/gj/a/grp", B2), put("/metrics/job/gj2", B2)),
    S("body-instance-kept", put("/metrics/job/bi", b'm{instance="mine"} 1\n')),
    S("grouping-instance-overrides", put("/metrics/job/bi/instance/grp", b'm{instance="mine"} 1\n')),
    S("dup-after-override", bad("PUT", "/metrics/job/dup/a/x", b'm3{a="1"} 1\nm3{a="2"} 2\n')),
    S("dup-in-body", bad("PUT", "/metrics/job/dup2", b"m4 1\nm4 2\n")),
    S("dup-label-names", put("/metrics/job/dup3", b'm5{b="1",b="2"} 1\n')),
    S("timestamp-rejected", bad("PUT", "/metrics/job/ts", b"m6 1 1234\n")),
    S("negative-timestamp-rejected", bad("PUT", "/metrics/job/ts", b"ts_neg 1 -5\n")),
    S("failure-after-success", put("/metrics/job/sem"), bad("PUT", "/metrics/job/sem", b"m6 1 1234\n"),
      post("/metrics/job/sem")),
    S("failure-keeps-old-metrics", put("/metrics/job/keep", b"k 1\n"), bad("POST", "/metrics/job/keep", b"k 2 5\n")),
    S("type-conflict-across-groups", put("/metrics/job/t1", b"# TYPE tc counter\ntc 1\n"),
      bad("PUT", "/metrics/job/t2", b"# TYPE tc gauge\ntc 1\n")),
    S("same-help-across-groups", put("/metrics/job/t1", b"# HELP tc h\n# TYPE tc counter\ntc 1\n"),
      put("/metrics/job/t3", b"# HELP tc h\n# TYPE tc counter\ntc 1\n")),
    S("untyped-vs-counter", put("/metrics/job/u1", b"uc 1\n"), bad("PUT", "/metrics/job/u2", b"# TYPE uc counter\nuc 1\n")),
    S("same-type-other-group-replaced", put("/metrics/job/r1", b"# TYPE rc gauge\nrc 1\n"),
      put("/metrics/job/r1", b"# TYPE rc counter\nrc 2\n")),
    S("histogram-summary-floats-escaping", put("/metrics/job/hist", H1)),
    S("hex-float-rejected", put("/metrics/job/hist", H1 + b"g_hex 0x1A\n")),
    S("cross-group-duplicate-via-body-label", put("/metrics/job/a", b'm{x="1"} 1\n'),
      bad("PUT", "/metrics/job/a/x/1", b"m 1\n")),
    S("suffix-collision-pushed", put("/metrics/job/sfx2", b"# TYPE hsx histogram\nhsx_bucket{le=\"1\"} 1\nhsx_sum 1\nhsx_count 1\n"),
      bad("PUT", "/metrics/job/sfx3", b"hsx_bucket 1\n")),
    S("suffix-collision-in-body", bad("PUT", "/metrics/job/x6", b"sm_sum 1\n# TYPE sm summary\nsm_count 2\n")),
    S("pushed-push-time-replaced",
      put("/metrics/job/p1", b"# HELP push_time_seconds mine\n# TYPE push_time_seconds counter\npush_time_seconds 42\n")),
    S("own-family-help-conflict",
      bad("PUT", "/metrics/job/p4", b"# HELP pushgateway_http_requests_total my help\n"
          b"# TYPE pushgateway_http_requests_total counter\npushgateway_http_requests_total 42\n")),
    S("byte-order-sorting", put("/metrics/job/ord", b'b 1\nB 1\n_a 1\na 1\n:x 1\nzz{l="b"} 1\nzz{l="B"} 2\n'
                                b'zz{l="a"} 3\nzz{l="10"} 4\nzz{l="9"} 5\n')),
    S("json-html-escaping", put("/metrics/job/html", b'html{v="<a&b>"} 1\nhtml{v="\xe2\x80\xa8"} 2\nhtml{v="0"} 3\n')),
    S("series-order-by-label-count", put("/metrics/job/lc/a/1", b'lc 1\nlc{z="1"} 2\n'),
      put("/metrics/job/lc", b'lc{b="2",c="3"} 3\n')),
    S("many-groups-one-family", *[put("/metrics/job/mg/instance/i%d" % i, b"mg %d\n" % i) for i in range(12)]),
    S("help-escapes", put("/metrics/job/hh", b'# HELP hh a\\\\b\\nc "q"\nhh 1\n')),
    S("colons-in-name", put("/metrics/job/nm", b"nm:with:colons 1\n")),
    S("floats-plain", put("/metrics/job/fp", b"pl +1.5\nmi -.5\ndot 5.\nlead 007\n")),
    S("count-truncation", put("/metrics/job/f3", b'# TYPE st summary\nst_count 7.9\nst_sum 1\n'
                              b'# TYPE hh3 histogram\nhh3_bucket{le="1"} 2.7\nhh3_count 3.2\n')),
    S("histogram-line-without-le", put("/metrics/job/sfx4", b'# TYPE hb histogram\nhb_bucket{path="/c"} 5\nhb_count 3\n')),
    S("trailing-comma-and-empty-braces", put("/metrics/job/lbl", b'lbl{a="b",} 1\nx8{} 1\n')),
    S("uppercase-type", put("/metrics/job/x12", b"# TYPE x12 COUNTER\nx12 1\n")),
    S("grouping-label-empty-value", put("/metrics/job/e1/x/")),
    S("job-label-in-path-overridden", put("/metrics/job/f7/job/other")),
    S("duplicate-path-label-last-wins", put("/metrics/job/f6/x/1/x/2")),
    S("space-job", put("/metrics/job/%20/a/b")),
    S("plus-and-percent-kept", put("/metrics/job/a+b%25c")),
    S("query-ignored", put("/metrics/job/q?x=y")),
    S("three-dots-job", put("/metrics/job/.../a/b")),
    S("large-group", put("/metrics/job/large", b"".join(b'lg{i="%d"} %d\n' % (i, i) for i in range(500)))),
    S("delete-then-push-again", put("/metrics/job/d1"), delete("/metrics/job/d1"), put("/metrics/job/d1", b"x 2\n")),
    S("delete-with-body", put("/metrics/job/ord"), delete("/metrics/job/ord", body=b"garbage")),
]

# Text parser strictness (spec 6.3, 14 item 8; transcripts E12, E30) - all deterministic 400s or 200s.
PARSE = [S("parse-" + n, put("/metrics/job/p" + n, body)) for n, body in [
    ("no-final-newline", b"nonl 1"),
    ("crlf", b"crlf 1\r\n"),
    ("trailing-blanks", b'  \t lead{a="b"}   1   \n'),
    ("second-type", b"# TYPE x9 counter\n# TYPE x9 gauge\nx9 1\n"),
    ("type-after-samples", b"x10 1\n# TYPE x10 counter\n"),
    ("unknown-type", b"# TYPE x11 foo\nx11 1\n"),
    ("invalid-utf8-label", b'u8{a="\xff"} 1\n'),
    # NUL is valid UTF-8: stored and served as is by both, and Prometheus 2.42 ingests it (test_abuse_prometheus.py)
    ("help-nul", b"# HELP hn a\x00b\nhn 1\n"),
    ("label-nul", b'ln{a="x\x00y"} 1\n'),
    ("colon-label-name", b'u8{a:b="x"} 1\n'),
    ("help-bad-escape", b"# HELP hh a\\\\b\\nc \\t\nhh 1\n"),
    ("label-bad-escape", b'lv{v="x\\ty"} 1\n'),
    ("reserved-name-label", b'x{__name__="x"} 1\n'),
    ("second-help", b"# HELP hh2 first\n# HELP hh2 second\nhh2 1\n"),
    ("float-overflow", b"big 1e500\n"),
    ("float-timestamp", b"tsx 1 1.5\n"),
    ("spurious-after-timestamp", b"tsy 1 5 x\n"),
    ("unterminated-labels", b'x{a="1"\n'),
    ("minus-in-name", b"a-b 1\n"),
    ("invalid-metric-name", b"1abc 2\n"),
    ("empty-value", b"x \n"),
    ("missing-value", b"x\n"),
    ("quantile-not-float", b'# TYPE sq summary\nsq{quantile="x"} 1\n'),
    ("le-not-float", b'# TYPE hq histogram\nhq_bucket{le="x"} 1\n'),
    ("label-without-quotes", b"x{a=b} 1\n"),
    ("raw-newline-in-label", b'x{a="b\nc"} 1\n'),
    ("value-word", b"x one\n"),
    ("nan-variants", b"n1 NaN\nn2 nan\nn3 NAN\ni1 Inf\ni2 -inf\ni3 +INFINITY\n"),
    ("exponents", b"e1 1e3\ne2 1E-3\ne3 .5e+2\ne4 5.e1\n"),
    ("int-timestamp-max", b"tm 1 9223372036854775807\n"),
    ("int-timestamp-overflow", b"tm 1 9223372036854775808\n"),
    ("tabs-around-labels", b'tb\t{\ta\t=\t"b"\t,\tc="d"\t}\t1\n'),
    ("underscore-value", b"uv 1_000\n"),
    ("hash-without-space", b"#TYPE x counter\nx 1\n"),
    ("type-without-type", b"# TYPE x\nx 1\n"),
    ("help-empty-text", b"# HELP hx\nhx 1\n"),
]]

# URL and router behaviour (spec 2, 4, 14 items 3-5, 15; transcripts E05, E06, E22, E23, E30).
URLS = [
    S("path-double-slash-301", put("/metrics/job/e2/x//y/z")),
    S("path-trailing-slash", put("/metrics/job/e3/")),
    S("path-job-slash-307", put("/metrics/job/")),
    S("path-no-job-404", put("/metrics/job")),
    S("path-encoded-slash", put("/metrics/job/a%2Fb")),
    S("path-odd-components", put("/metrics/job/e4/x")),
    S("label-name-digit", put("/metrics/job/e5/1abc/v")),
    S("label-name-reserved", put("/metrics/job/e5/__abc/v")),
    S("label-name-reserved-b64", put("/metrics/job/e5/__abc@base64/dg")),
    S("label-name-dash", put("/metrics/job/e5/foo-bar/v")),
    S("label-name-empty-b64", put("/metrics/job/e5/@base64/dg")),
    S("b64-odd-with-slash", put("/metrics/job/f1/x@base64/a+b/")),
    S("b64-one-char", put("/metrics/job/f1/x@base64/Y")),
    S("b64-pad-bits", put("/metrics/job/f1/x@base64/YR")),
    S("b64-many-pads", put("/metrics/job/f2/x@base64/YQ=====")),
    S("b64-pad-in-middle", put("/metrics/job/f3/x@base64/Y=Q")),
    S("b64-newline-ignored", put("/metrics/job/f4/x@base64/Y%0AQ")),
    S("b64-encoded-slashes-301", put("/metrics/job/f5/x@base64/%2F%2F8")),
    S("b64-job-label-overridden", put("/metrics/job/f8/job@base64/b3RoZXI")),
    S("b64-double-suffix", put("/metrics/job/f9/x@base64@base64/YQ")),
    S("b64-instance-empty", put("/metrics/job/f10/instance@base64/=")),
    S("b64-trailing-empty", put("/metrics/job/f11/x@base64/")),
    S("b64-plus", put("/metrics/job/g1/x@base64/a+b")),
    S("b64-job-empty-required", put("/metrics/job@base64/=")),
    S("b64-job-empty-with-labels", put("/metrics/job@base64/=/a/b")),
    S("b64-job-slash-404", put("/metrics/job@base64/")),
    S("dot-dot-301", put("/metrics/job/../x")),
    S("dot-301", put("/metrics/job/./a/b")),
    S("encoded-dot-dot-301", put("/metrics/job/x/a/%2E%2E")),
    S("delete-bad-name", delete("/metrics/job/ord/bad-name/x")),
    S("delete-odd", delete("/metrics/job/ord/a")),
    S("get-push-path-405", get("/metrics/job/foo")),
    S("patch-405", step("PATCH", "/metrics/job/foo")),
    S("head-metrics-405", step("HEAD", "/metrics"), check_state=False),
    S("options-push-path", step("OPTIONS", "/metrics/job/foo/a/b")),
    S("options-metrics", step("OPTIONS", "/metrics")),
    S("post-metrics-405", post("/metrics")),
    S("uppercase-metrics-301", get("/METRICS")),
    S("uppercase-push-307", put("/Metrics/job/CaseJob")),
    S("metrics-slash-301", get("/metrics/")),
    S("nonexistent-404", get("/nonexistent")),
    S("healthy-slash-301", get("/-/healthy/")),
    S("healthy", get("/-/healthy")),
    S("ready", get("/-/ready")),
    S("post-api-metrics-405", post("/api/v1/metrics")),
    S("options-api", step("OPTIONS", "/api/v1/anything")),
    S("api-root-404", get("/api/v1/")),
    S("api-no-slash-301", get("/api/v1")),
    S("api-404", get("/api/")),
    S("quit-disabled-put", put("/-/quit", None)),
    S("quit-disabled-post", post("/-/quit", None)),
    S("quit-get", get("/-/quit")),
    S("quit-delete-405", delete("/-/quit")),
    S("reload-404", post("/-/reload", None)),
    S("wipe-post-405", post("/api/v1/admin/wipe", None)),
]

# Request body encodings (spec 2.3, 14 item 13; transcript E21).
GZ = gzip.compress(b"gz_metric 7\n")
ENCODINGS = [
    S("gzip-body", put("/metrics/job/gz", GZ, ce="gzip")),
    S("gzip-bad-header", put("/metrics/job/gz3", B1, ce="gzip")),
    S("gzip-empty-body", put("/metrics/job/gz5", None, ce="gzip")),
    S("gzip-short-body", delete("/metrics/job/ord", body=b"garbage", headers={"Content-Encoding": "gzip"})),
    S("deflate-ignored", put("/metrics/job/gz4", B1, ce="deflate")),
    S("gzip-multi-line", put("/metrics/job/gzm", gzip.compress(H1), ce="gzip")),
]

# Protobuf bodies (spec 6.2, 14 item 12; transcript E19).
PB_BASIC = pb_family("pb_gauge", GAUGE, [pb_metric([("z", "1"), ("a", "2"), ("job", "bodyjob")], 1.5, GAUGE)],
                     help="PB help")
PROTOBUF = [
    S("pb-basic", put("/metrics/job/pb_basic", PB_BASIC, ct=PB_CONTENT_TYPE)),
    S("pb-timestamp", bad("PUT", "/metrics/job/pb_ts",
                          pb_family("pb_ts", GAUGE, [pb_metric([], 1, GAUGE, timestamp_ms=1234)]), ct=PB_CONTENT_TYPE)),
    S("pb-duplicate-family-last-wins", put("/metrics/job/pb_dupfam",
                                           pb_family("pb_dup", GAUGE, [pb_metric([("x", "1")], 1, GAUGE)]) +
                                           pb_family("pb_dup", GAUGE, [pb_metric([("x", "2")], 2, GAUGE)]),
                                           ct=PB_CONTENT_TYPE)),
    S("pb-bad-label-name", bad("PUT", "/metrics/job/pb_badlabel",
                               pb_family("pb_badl", GAUGE, [pb_metric([("foo-bar", "1")], 1, GAUGE)]),
                               ct=PB_CONTENT_TYPE)),
    S("pb-type-mismatch", bad("PUT", "/metrics/job/pb_typemismatch",
                              pb_family("pb_tm", GAUGE, [pb_metric([], 1, COUNTER)]), ct=PB_CONTENT_TYPE)),
    S("pb-empty-family", put("/metrics/job/pb_emptyfam", pb_family("pb_empty", GAUGE, []), ct=PB_CONTENT_TYPE)),
    S("pb-truncated", put("/metrics/job/pb_trunc", PB_BASIC[:-3], ct=PB_CONTENT_TYPE)),
    S("pb-quantile-label", bad("PUT", "/metrics/job/pb_quantile",
                               pb_family("pb_sq", SUMMARY, [pb_metric([("quantile", "0.5")], summary=(1, 1.0, []))]),
                               ct=PB_CONTENT_TYPE)),
    S("pb-classic-histogram", put("/metrics/job/pb_classic",
                                  pb_family("pb_ch", HISTOGRAM, [pb_metric([], histogram=(4, 3.0, [(0.5, 1), (1, 3)]))]),
                                  ct=PB_CONTENT_TYPE)),
    S("pb-summary", put("/metrics/job/pb_summary",
                        pb_family("pb_s", SUMMARY, [pb_metric([("p", "x")], summary=(7, 10.0, [(0.5, 1.5), (0.9, 2)]))],
                                  help="S"), ct=PB_CONTENT_TYPE)),
    S("pb-empty-help", put("/metrics/job/pb_emptyhelp", pb_family("pb_eh", COUNTER, [pb_metric([], 3, COUNTER)], help=""),
                           ct=PB_CONTENT_TYPE)),
    S("pb-empty-label-value", put("/metrics/job/pb_nolabelval",
                                  pb_family("pb_nlv", UNTYPED, [pb_metric([("a", "")], 3, UNTYPED)]), ct=PB_CONTENT_TYPE)),
    S("pb-invalid-utf8", bad("PUT", "/metrics/job/pb_badutf8",
                             pb_family("pb_u8", GAUGE, [pb_metric([("a", b"\xff\xfe")], 1, GAUGE)]),
                             ct=PB_CONTENT_TYPE)),
    S("pb-help-nul", put("/metrics/job/pb_helpnul", pb_family("pb_hn", GAUGE, [pb_metric([], 1, GAUGE)], help=b"a\x00b"),
                         ct=PB_CONTENT_TYPE)),
    S("pb-label-nul", put("/metrics/job/pb_labelnul", pb_family("pb_ln", GAUGE, [pb_metric([("a", b"x\x00y")], 1, GAUGE)]),
                          ct=PB_CONTENT_TYPE)),
    S("pb-ct-param-order", put("/metrics/job/pb_ct1", PB_BASIC,
                               ct="application/vnd.google.protobuf; encoding=delimited; proto=io.prometheus.client.MetricFamily")),
    S("pb-ct-case", put("/metrics/job/pb_ct2", PB_BASIC,
                        ct="Application/Vnd.Google.Protobuf; Proto=io.prometheus.client.MetricFamily; Encoding=delimited")),
    S("pb-ct-plain-is-text", put("/metrics/job/pb_ct3", PB_BASIC, ct="application/vnd.google.protobuf")),
    S("pb-ct-quoted", put("/metrics/job/pb_ct4", PB_BASIC,
                          ct='application/vnd.google.protobuf; proto="io.prometheus.client.MetricFamily"; encoding="delimited"')),
    S("pb-ct-upper-value-is-text", put("/metrics/job/pb_ct5", PB_BASIC,
                                       ct="application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=DELIMITED")),
    S("pb-post-replaces-family", put("/metrics/job/pbp", b"a 1\nb 2\n"),
      post("/metrics/job/pbp", pb_family("b", UNTYPED, [pb_metric([], 20, UNTYPED)]), ct=PB_CONTENT_TYPE)),
]

# Scrape negotiation and compression (spec 7.5, 7.6; transcript E18).
SCRAPE = [
    S("scrape-accept-openmetrics", put("/metrics/job/sc"),
      get("/metrics", headers={"Accept": "application/openmetrics-text; version=0.0.1"}, compare="scrape")),
    S("scrape-accept-json", put("/metrics/job/sc"), get("/metrics", headers={"Accept": "application/json"}, compare="scrape")),
    S("scrape-accept-005", put("/metrics/job/sc"),
      get("/metrics", headers={"Accept": "text/plain; version=0.0.5"}, compare="scrape")),
    S("scrape-gzip", put("/metrics/job/sc", H1), get("/metrics", headers={"Accept-Encoding": "gzip"}, compare="scrape")),
    S("scrape-gzip-q0", put("/metrics/job/sc"), get("/metrics", headers={"Accept-Encoding": "gzip;q=0"}, compare="scrape")),
    S("scrape-x-gzip", put("/metrics/job/sc"), get("/metrics", headers={"Accept-Encoding": "br, GZIP, x-gzip"},
                                                   compare="scrape")),
    S("scrape-protobuf-content-type", put("/metrics/job/sc"),
      get("/metrics", headers={"Accept": PB_CONTENT_TYPE}, compare="headers")),
    S("api-metrics-not-compressed", put("/metrics/job/sc"),
      get("/api/v1/metrics", headers={"Accept-Encoding": "gzip"}, compare="json")),
]

# Ferry-only: documented divergences (docs/compatibility.md), checked against Ferry's own behaviour.
DIVERGENCES = [
    S("b3-instance-aliasing", put("/metrics/job/f10/instance@base64/=", ferry=(200,)),
      put("/metrics/job/f10", ferry=(400,)), get("/metrics", ferry=(200,)),
      divergence="B3: the aliasing push is rejected and creates no group; scrapes keep working"),
    S("b4-invalid-utf8-grouping-value", put("/metrics/job/inv/a/%FF", ferry=(400,)), get("/metrics", ferry=(200,)),
      divergence="B4: rejected before anything is stored"),
    S("b2-gauge-histogram", put("/metrics/job/x13", b'# TYPE x13 gauge_histogram\nx13_bucket{le="1"} 1\nx13_count 2\n',
                                ferry=(200,)),
      ferry_scrape='# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n'
                   '# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds{instance="",job="x13"} 0\n'
                   '# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n'
                   '# TYPE push_time_seconds gauge\npush_time_seconds{instance="",job="x13"} <ts>\n'
                   '# TYPE x13 histogram\nx13_bucket{instance="",job="x13",le="1"} 1\n'
                   'x13_bucket{instance="",job="x13",le="+Inf"} 2\nx13_sum{instance="",job="x13"} 0\n'
                   'x13_count{instance="",job="x13"} 2\n',
      divergence="B2: gauge histograms are parsed and exposed like histograms instead of truncating every scrape"),
    S("b10-gzip-header-on-get", get("/-/healthy", headers={"Content-Encoding": "gzip"}, ferry=(200,)),
      divergence="B10: body-less requests ignore Content-Encoding"),
    S("help-invalid-utf8", put("/metrics/job/hu", b"# HELP hu a\xffb\nhu 1\n",
                               ferry=(400, b'pushed metrics are invalid or inconsistent with existing metrics: metric family '
                                           b'"hu" has a HELP text that is not valid UTF-8: "a\\xffb"\n')),
      put("/metrics/job/hu", pb_family("hu", GAUGE, [pb_metric([], 1, GAUGE)], help=b"\xc3"), ct=PB_CONTENT_TYPE,
          ferry=(400, b'pushed metrics are invalid or inconsistent with existing metrics: metric family "hu" has a HELP '
                      b'text that is not valid UTF-8: "\\xc3"\n')),
      get("/metrics", ferry=(200,)),
      # as for every push refused by the consistency check (and as 1.5.1 does), the group records the failure
      ferry_scrape='# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n'
                   '# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds{instance="",job="hu"} <ts>\n'
                   '# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n'
                   '# TYPE push_time_seconds gauge\npush_time_seconds{instance="",job="hu"} 0\n',
      divergence="a HELP text that is not UTF-8 is rejected (Prometheus fails the whole scrape on it); nothing of the "
                 "push is stored"),
    S("grouping-key-limits", put("/metrics/job/gl" + "".join("/l%d/v" % i for i in range(1, 64)), ferry=(200,)),
      put("/metrics/job/gl" + "".join("/l%d/v" % i for i in range(1, 65)),
          ferry=(400, b"grouping key has 65 labels, more than the limit of 64 (--push.max-grouping-labels)\n")),
      delete("/metrics/job/gl" + "".join("/l%d/v" % i for i in range(1, 65)),
             ferry=(400, b"grouping key has 65 labels, more than the limit of 64 (--push.max-grouping-labels)\n")),
      put("/metrics/job/g/a/" + "v" * 8188, ferry=(200,)),
      put("/metrics/job/g/a/" + "v" * 8189,
          ferry=(400, b"grouping key has 8193 bytes, more than the limit of 8192 (--push.max-grouping-key-bytes)\n")),
      divergence="grouping keys over --push.max-grouping-labels or --push.max-grouping-key-bytes are a 400"),
    S("gzip-bad-crc", put("/metrics/job/crc", gzip.compress(b"crc_metric 1\n")[:-8] + b"\0\0\0\0" +
                          gzip.compress(b"crc_metric 1\n")[-4:], ce="gzip", ferry=(400,)),
      divergence="a gzip body with a bad CRC is rejected"),
]

MAIN_FLAGS = ["--web.enable-admin-api"]

CONFIGS = [
    dict(name="default", flags=MAIN_FLAGS, scenarios=PUSH + PARSE + URLS + ENCODINGS + PROTOBUF + SCRAPE + DIVERGENCES),
    dict(name="no-admin", flags=[], admin=False, scenarios=[
        S("wipe-disabled-404", put("/api/v1/admin/wipe", None)),
    ]),
    dict(name="prefix", flags=MAIN_FLAGS + ["--web.route-prefix=/pg/", "--web.enable-lifecycle"], prefix="/pg", scenarios=[
        S("prefix-push", put("/pg/metrics/job/a"), get("/pg/metrics", compare="scrape")),
        S("prefix-unprefixed-404", put("/metrics/job/a"), get("/metrics")),
        S("prefix-api-status-404", get("/api/v1/status")),
        S("prefix-healthy", get("/pg/-/healthy"), get("/-/healthy")),
        S("prefix-quit-get", get("/-/quit"), get("/pg/-/quit")),
        S("prefix-root-301", get("/pg")),
        S("prefix-wipe-post-405", post("/pg/api/v1/admin/wipe", None)),
        S("prefix-wipe", put("/pg/metrics/job/a"), put("/pg/api/v1/admin/wipe", None, compare="status", sleep=0.1)),
    ]),
    dict(name="telemetry", flags=MAIN_FLAGS + ["--web.telemetry-path=/custom"], telemetry="/custom", scenarios=[
        S("telemetry-custom", put("/metrics/job/x"), get("/custom", compare="scrape"), get("/metrics")),
    ]),
]
