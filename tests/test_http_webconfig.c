/*
 * test_http_webconfig.c: --web.config.file (src/webconfig.c): what is accepted and how it decodes, every rejection with
 * the reference's exact error text, bcrypt verification, the auth cache, the unknown-user path, and the SSL_CTX
 * (a real handshake over a BIO pair, ALPN, certificate reload). Fixtures: tests/fixtures/webconfig (test-only keys).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "webconfig.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#define DIR FY_FIXTURES "/webconfig"
#define CFG DIR "/web.yml"

/* bcrypt hashes made once with Python's crypt module (libxcrypt), then committed (see docs/security.md). */
#define H_SECRET "$2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr." /* "secret" */
#define H_HUNTER "$2a$05$IsKhaMlObPLdGxbVHx6AMexc2KcDLCERHFZ5A7by37Ef8i5vzMBWe" /* "hunter2" */
#define H_UMLAUT "$2y$04$oGmLCxdesLZDsAhPn0YoXuUM6gn5IP/SUzwOSvhwf6KignmK575Ey" /* "pässwörd" */
#define H_UMLAUT_2A "$2a$04$oGmLCxdesLZDsAhPn0YoXuUM6gn5IP/SUzwOSvhwf6KignmK575Ey"
/* exporter-toolkit's own dummy hash, made by Go's bcrypt: "fakepassword" */
#define H_GO "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

static fy_webcfg_t *parse(const char *yaml, fy_webcfg_err_t *err)
{
    size_t len = strlen(yaml);
    return fy_webcfg_parse(CFG, fy_guarded(yaml, len), len, err);
}

/* ---- accepted configurations ---- */

typedef struct {
    const char *yaml;
    int tls, http2, min, max, prefer;
    const char *ciphers; /* comma-joined Go names */
    const char *curves;
    const char *headers; /* "Name: value|Name: value" in send order */
    size_t nusers;
    fy_client_auth_t auth;
    const char *cert_file; /* resolved */
    const char *note;
} accept_case_t;

#define D12 TLS1_2_VERSION
#define D13 TLS1_3_VERSION

static const accept_case_t ACCEPT[] = {
    {"", 0, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "empty file: all defaults"},
    {"# only a comment\n", 0, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "comment only"},
    {"---\n", 0, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "null document"},
    {"http_server_config:\n  http2: false\n", 0, 0, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "http2 off"},
    {"http_server_config:\n  http2: no\n", 0, 0, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "YAML 1.1 no"},
    {"http_server_config:\n  http2: \"off\"\n", 0, 0, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "",
     "yaml.v2.4 takes quoted on/off/yes/no for a bool"},
    {"http_server_config:\n", 0, 0, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "",
     "null struct is the zero value: http2 becomes false"},
    {"http_server_config: {http2: ~}\n", 0, 0, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "null bool is false"},
    {"http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n"
     "    X-XSS-Protection: 1; mode=block\n    Strict-Transport-Security: max-age=31536000\n"
     "    X-Content-Type-Options: nosniff\n",
     0, 1, D12, D13, 1, "", "",
     "Content-Security-Policy: default-src 'self'|Strict-Transport-Security: max-age=31536000|"
     "X-Content-Type-Options: nosniff|X-Frame-Options: deny|X-Xss-Protection: 1; mode=block",
     0, FY_CLIENT_AUTH_NONE, "", "all five headers, sent sorted, X-XSS-Protection in Go's canonical form"},
    {"http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n    X-XSS-Protection:\n", 0, 1, D12, D13, 1, "", "",
     "X-Frame-Options: sameorigin|X-Xss-Protection: ", 0, FY_CLIENT_AUTH_NONE, "",
     "an empty free-form header is kept, as the reference sets it"},
    {"basic_auth_users:\n  alice: " H_SECRET "\n  bob: '" H_HUNTER "'\n  carol: " H_UMLAUT "\n", 0, 1, D12, D13, 1, "", "", "", 3,
     FY_CLIENT_AUTH_NONE, "", "three users, $2b$ $2a$ $2y$"},
    {"basic_auth_users:\n", 0, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "null map: no auth"},
    {"basic_auth_users: {}\n", 0, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, "", "empty map: no auth"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n", 1, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE,
     DIR "/cert.pem", "relative paths join the config file's directory"},
    {"tls_server_config:\n  cert_file: ./sub/../cert.pem\n  key_file: " DIR "/key.pem\n", 1, 1, D12, D13, 1, "", "", "", 0,
     FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "joined paths are cleaned; absolute paths kept"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n  max_version: TLS13\n"
     "  prefer_server_cipher_suites: false\n",
     1, 1, D13, D13, 0, "", "", "", 0, FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "versions and prefer flag"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS10\n  max_version: TLS11\n", 1, 1,
     TLS1_VERSION, TLS1_1_VERSION, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "old versions parse"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version:\n", 1, 1, TLS1_VERSION, D13, 1, "", "", "", 0,
     FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "null min_version is Go's zero: TLS 1.0 minimum"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  cipher_suites:\n"
     "    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
     "    - TLS_AES_128_GCM_SHA256\n  curve_preferences: [X25519, CurveP256, CurveP384, CurveP521]\n",
     1, 1, D12, D13, 1,
     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_AES_128_GCM_SHA256",
     "X25519,CurveP256,CurveP384,CurveP521", "", 0, FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "ciphers and curves"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequestClientCert\n", 1, 1, D12, D13, 1,
     "", "", "", 0, FY_CLIENT_AUTH_REQUEST, DIR "/cert.pem", "RequestClientCert"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireClientCert\n", 1, 1, D12, D13, 1,
     "", "", "", 0, FY_CLIENT_AUTH_REQUIRE_ANY, DIR "/cert.pem", "old name of RequireAnyClientCert"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAnyClientCert\n", 1, 1, D12, D13,
     1, "", "", "", 0, FY_CLIENT_AUTH_REQUIRE_ANY, DIR "/cert.pem", "RequireAnyClientCert"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: VerifyClientCertIfGiven\n"
     "  client_ca_file: cert.pem\n",
     1, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_VERIFY_IF_GIVEN, DIR "/cert.pem", "VerifyClientCertIfGiven + CA"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n"
     "  client_ca_file: garbage.pem\n",
     1, 1, D12, D13, 1, "", "", "", 0, FY_CLIENT_AUTH_REQUIRE_AND_VERIFY, DIR "/cert.pem",
     "a CA file without certificates is accepted (AppendCertsFromPEM)"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: NoClientCert\n", 1, 1, D12, D13, 1, "",
     "", "", 0, FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "explicit NoClientCert"},
    {"tls_server_config: &t\n  cert_file: cert.pem\n  key_file: key.pem\nhttp_server_config:\n  <<: {http2: false}\n", 1, 0, D12,
     D13, 1, "", "", "", 0, FY_CLIENT_AUTH_NONE, DIR "/cert.pem", "anchors and merge keys"},
};

static void join_list(char *out, size_t cap, const char *const *items, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, items[i], cap - strlen(out) - 1);
    }
}

static void test_accept(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ACCEPT) / sizeof(ACCEPT[0]); i++) {
        const accept_case_t *c = &ACCEPT[i];
        fy_webcfg_err_t err;
        fy_webcfg_t *cfg = parse(c->yaml, &err);
        if (!cfg)
            fail_msg("case %zu (%s): unexpected error: %s", i, c->note, err.msg);
        char buf[1024];
        assert_int_equal(cfg->tls_enabled, c->tls);
        assert_int_equal(cfg->http2, c->http2);
        assert_int_equal(cfg->min_version, c->min);
        assert_int_equal(cfg->max_version, c->max);
        assert_int_equal(cfg->prefer_server_cipher_suites, c->prefer);
        join_list(buf, sizeof(buf), cfg->ciphers, cfg->nciphers);
        assert_string_equal(buf, c->ciphers);
        join_list(buf, sizeof(buf), cfg->curves, cfg->ncurves);
        assert_string_equal(buf, c->curves);
        buf[0] = '\0';
        for (size_t h = 0; h < cfg->nheaders; h++) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof(buf) - l, "%s%s: %s", h ? "|" : "", cfg->headers[h].name, cfg->headers[h].value);
        }
        assert_string_equal(buf, c->headers);
        assert_int_equal(cfg->nusers, c->nusers);
        assert_int_equal(cfg->client_auth, c->auth);
        assert_string_equal(cfg->cert_file, c->cert_file);
        assert_int_equal(cfg->ssl_ctx != NULL, c->tls);
        fy_webcfg_free(cfg);
    }
}

/* ---- rejections: exact reference wording ---- */

typedef struct {
    const char *yaml;
    const char *msg;
    unsigned line;
    const char *note;
} reject_case_t;

static const reject_case_t REJECT[] = {
    /* strict decoding (yaml.v2 UnmarshalStrict) */
    {"tls_server_config:\n  cert_file: cert.pem\n  unknown_key: x\n",
     "yaml: unmarshal errors:\n  line 3: field unknown_key not found in type web.TLSConfig", 3, "E28's message"},
    {"rate_limit:\n  burst: 10\n  interval: 1s\n",
     "yaml: unmarshal errors:\n  line 1: field rate_limit not found in type web.Config (a key of newer Pushgateway releases "
     "that ferry does not support; docs/compatibility.md)",
     1, "exporter-toolkit v0.16's rate_limit: refused, named"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [a]\n",
     "yaml: unmarshal errors:\n  line 4: field client_allowed_sans not found in type web.TLSConfig (a key of newer "
     "Pushgateway releases that ferry does not support; docs/compatibility.md)",
     4, "v0.13's client_allowed_sans"},
    {"tls_server_config:\n  cert: PEM\n  key: PEM\n  client_ca: PEM\n",
     "yaml: unmarshal errors:\n  line 2: field cert not found in type web.TLSConfig (a key of newer Pushgateway releases "
     "that ferry does not support; docs/compatibility.md)\n  line 3: field key not found in type web.TLSConfig (a key of "
     "newer Pushgateway releases that ferry does not support; docs/compatibility.md)\n  line 4: field client_ca not "
     "found in type web.TLSConfig (a key of newer Pushgateway releases that ferry does not support; "
     "docs/compatibility.md)",
     2, "inline PEM: each key named"},
    {"tls_config: {}\n", "yaml: unmarshal errors:\n  line 1: field tls_config not found in type web.Config", 1,
     "unknown top-level key"},
    {"http_server_config:\n  http3: true\n", "yaml: unmarshal errors:\n  line 2: field http3 not found in type web.HTTPConfig", 2,
     "unknown http key"},
    {"a: 1\nb: 2\n",
     "yaml: unmarshal errors:\n  line 1: field a not found in type web.Config\n  line 2: field b not found in type web.Config", 1,
     "type errors are collected, all reported"},
    {"http_server_config:\n  http2: true\n  http2: false\n",
     "yaml: unmarshal errors:\n  line 3: field http2 already set in type web.HTTPConfig", 3, "repeated field"},
    {"basic_auth_users:\n  alice: " H_SECRET "\n  alice: " H_SECRET "\n",
     "yaml: unmarshal errors:\n  line 3: key \"alice\" already set in map", 3, "repeated user, value's line"},
    {"http_server_config:\n  http2: 1\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!int `1` into bool", 2,
     "int into bool"},
    {"http_server_config:\n  http2: \"true\"\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `true` into bool", 2,
     "quoted true is a string"},
    {"http_server_config:\n  http2: enabled-please\n",
     "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `enabled...` into bool", 2, "long values are cut at 7"},
    {"tls_server_config: [a]\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into web.TLSConfig", 1,
     "sequence for a struct"},
    {"tls_server_config: yes\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!bool `yes` into web.TLSConfig", 1,
     "bool for a struct"},
    {"hello\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `hello` into web.Config", 1, "scalar document"},
    {"tls_server_config:\n  cert_file: [a, b]\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into string", 2,
     "sequence for a string"},
    {"tls_server_config:\n  cipher_suites: TLS_AES_128_GCM_SHA256\n",
     "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `TLS_AES...` into []web.Cipher", 2, "scalar for a list"},
    {"tls_server_config:\n  curve_preferences:\n    - {a: b}\n",
     "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!map into string", 3, "map as a list element"},
    {"basic_auth_users:\n  - alice\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into map[string]config.Secret", 2,
     "users as a list"},
    {"basic_auth_users:\n  alice: [x]\n", "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into config.plain", 2,
     "a password that is not a string"},
    {"http_server_config:\n  headers: [X-Frame-Options]\n",
     "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into map[string]string", 2, "headers as a list"},
    {"http_server_config:\n  <<: 5\n", "map merge requires map or sequence of maps as the value", 2, "bad merge"},
    /* custom unmarshalers abort with a bare message */
    {"tls_server_config:\n  min_version: TLS14\n", "unknown TLS version: TLS14", 2, "unknown version"},
    {"tls_server_config:\n  max_version: tls12\n", "unknown TLS version: tls12", 2, "names are case-sensitive"},
    {"tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "unknown cipher: TLS_RSA_WITH_RC4_128_SHA", 2,
     "insecure suites are not in tls.CipherSuites()"},
    {"tls_server_config:\n  curve_preferences: [CurveP224]\n", "unknown curve: CurveP224", 2, "unknown curve"},
    {"a: 1\ntls_server_config:\n  min_version: x\n", "unknown TLS version: x", 3, "a bare error wins over type errors"},
    /* syntax errors, go-yaml's line rule */
    {"tls_server_config:\n  cert_file: a\n key_file: b\n", "yaml: line 2: did not find expected key", 2,
     "go-yaml shows a parser error's 0-based line"},
    {"a: b: c\n", "yaml: mapping values are not allowed in this context", 0, "line 1 is not shown by go-yaml"},
    {"x: 1\ny: \"unterminated\n", "yaml: line 3: found unexpected end of stream", 3, "scanner errors: 0-based line + 1"},
    {"x: *nope\n", "yaml: found undefined alias", 0, "go-yaml says: unknown anchor 'nope' referenced"},
    /* validateHeaderConfig */
    {"http_server_config:\n  headers:\n    Server: ferry\n", "HTTP header \"Server\" can not be configured", 3,
     "header not in the list"},
    {"http_server_config:\n  headers:\n    x-frame-options: deny\n", "HTTP header \"x-frame-options\" can not be configured", 3,
     "names are case-sensitive"},
    {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     "invalid value for X-Frame-Options. Expected one of: [\"deny\" \"sameorigin\"], but got: \"allow\"", 3,
     "X-Frame-Options values"},
    {"http_server_config:\n  headers:\n    X-Content-Type-Options: Nosniff\n",
     "invalid value for X-Content-Type-Options. Expected one of: [\"nosniff\"], but got: \"Nosniff\"", 3,
     "values are case-sensitive"},
    {"http_server_config:\n  headers:\n    X-Frame-Options:\n",
     "invalid value for X-Frame-Options. Expected one of: [\"deny\" \"sameorigin\"], but got: \"\"", 3, "empty enumerated value"},
    /* bcrypt.Cost, then our stricter shape check */
    {"basic_auth_users:\n  alice: secret\n", "crypto/bcrypt: hashedSecret too short to be a bcrypted password", 2,
     "plain-text password"},
    {"basic_auth_users:\n  alice:\n", "crypto/bcrypt: hashedSecret too short to be a bcrypted password", 2, "empty password"},
    {"basic_auth_users:\n  alice: x2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "crypto/bcrypt: bcrypt hashes must start with '$', but hashedSecret started with 'x'", 2, "no dollar"},
    {"basic_auth_users:\n  alice: $3b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "crypto/bcrypt: bcrypt algorithm version '3' requested is newer than current version '2'", 2, "version 3"},
    {"basic_auth_users:\n  alice: $2b$xx$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "strconv.Atoi: parsing \"xx\": invalid syntax", 2, "cost not a number"},
    {"basic_auth_users:\n  alice: $2b$03$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "crypto/bcrypt: cost 3 is outside allowed range (4,31)", 2, "cost too low"},
    {"basic_auth_users:\n  alice: $2b$32$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "crypto/bcrypt: cost 32 is outside allowed range (4,31)", 2, "cost too high"},
    {"basic_auth_users:\n  alice: $1$saltsalt$0123456789012345678901234567890123456789012345678\n",
     "strconv.Atoi: parsing \"sa\": invalid syntax", 2, "MD5-crypt is no bcrypt"},
    {"basic_auth_users:\n  alice: $2x$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n",
     "basic_auth_users: the password of user \"alice\" is not a bcrypt hash of the form $2a$, $2b$ or $2y$, two-digit "
     "cost, 53 characters of salt and hash",
     2, "Go's Cost accepts $2x$; crypt_r would run the buggy variant, so we refuse"},
    {"basic_auth_users:\n  alice: $2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.x\n",
     "basic_auth_users: the password of user \"alice\" is not a bcrypt hash of the form $2a$, $2b$ or $2y$, two-digit "
     "cost, 53 characters of salt and hash",
     2, "too long: Go would start and never let alice in"},
    {"basic_auth_users:\n  alice: $2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEU*.\n",
     "basic_auth_users: the password of user \"alice\" is not a bcrypt hash of the form $2a$, $2b$ or $2y$, two-digit "
     "cost, 53 characters of salt and hash",
     2, "character outside bcrypt's base64"},
    /* ConfigToTLSConfig */
    {"tls_server_config:\n  key_file: key.pem\n", "missing cert_file", 0, "key without cert"},
    {"tls_server_config:\n  cert_file: cert.pem\n", "missing key_file", 0, "cert without key"},
    {"tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n", "missing cert_file", 0,
     "client auth alone turns TLS on"},
    {"tls_server_config:\n  cert_file: nothere.pem\n  key_file: key.pem\n",
     "failed to load X509KeyPair: open " DIR "/nothere.pem: no such file or directory", 0, "missing cert file"},
    {"tls_server_config:\n  cert_file: garbage.pem\n  key_file: key.pem\n",
     "failed to load X509KeyPair: tls: failed to find any PEM data in certificate input", 0, "not PEM"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: garbage.pem\n",
     "failed to load X509KeyPair: tls: failed to find any PEM data in key input", 0, "key not PEM"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key2.pem\n",
     "failed to load X509KeyPair: tls: private key does not match public key", 0, "mismatched pair"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: ca-missing.pem\n"
     "  client_auth_type: RequireAndVerifyClientCert\n",
     "open " DIR "/ca-missing.pem: no such file or directory", 0, "missing CA file"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: Always\n", "Invalid ClientAuth: Always",
     0, "unknown client auth"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: cert.pem\n",
     "Client CA's have been configured without a Client Auth Policy", 0, "CA without auth type"},
    {"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n  max_version: TLS12\n",
     "tls_server_config: min_version is newer than max_version", 0, "ours: Go would fail every handshake"},
    /* order: YAML errors, then headers, then bcrypt, then TLS */
    {"tls_server_config:\n  cert_file: cert.pem\nbasic_auth_users:\n  a: b\nhttp_server_config:\n  headers: {Via: x}\n",
     "HTTP header \"Via\" can not be configured", 6, "headers before bcrypt before TLS"},
    {"tls_server_config:\n  cert_file: cert.pem\nbasic_auth_users:\n  a: b\n",
     "crypto/bcrypt: hashedSecret too short to be a bcrypted password", 4, "bcrypt before TLS"},
};

static void test_reject(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(REJECT) / sizeof(REJECT[0]); i++) {
        const reject_case_t *c = &REJECT[i];
        fy_webcfg_err_t err;
        fy_webcfg_t *cfg = parse(c->yaml, &err);
        if (cfg)
            fail_msg("case %zu (%s): accepted", i, c->note);
        if (strcmp(err.msg, c->msg) != 0)
            fail_msg("case %zu (%s):\n got  %s\n want %s", i, c->note, err.msg, c->msg);
        if (err.line != c->line)
            fail_msg("case %zu (%s): line %u, want %u", i, c->note, err.line, c->line);
    }
}

static void test_load_file(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    assert_null(fy_webcfg_load(DIR "/absent.yml", &err));
    assert_string_equal(err.msg, "open " DIR "/absent.yml: no such file or directory");

    fy_webcfg_t *cfg = fy_webcfg_load(DIR "/web-tls.yml", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_true(cfg->tls_enabled);
    assert_non_null(cfg->ssl_ctx);
    assert_int_equal(cfg->nusers, 1);
    assert_int_equal(cfg->nheaders, 1);
    assert_string_equal(cfg->headers[0].name, "X-Frame-Options");
    fy_webcfg_free(cfg);
}

/* ---- basic auth ---- */

static fy_auth_result_t check(fy_webcfg_t *cfg, const char *hdr)
{
    return fy_webcfg_check_basic_auth(cfg, hdr, hdr ? strlen(hdr) : 0);
}

static char *basic(const char *userpass)
{
    static char out[512];
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)userpass;
    size_t n = strlen(userpass), o = 0;
    o += (size_t)sprintf(out, "Basic ");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        out[o++] = A[v >> 18 & 63];
        out[o++] = A[v >> 12 & 63];
        out[o++] = i + 1 < n ? A[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? A[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

typedef struct {
    const char *header; /* NULL: no Authorization header */
    fy_auth_result_t want;
    const char *note;
} auth_case_t;

static void test_basic_auth(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("basic_auth_users:\n  alice: " H_SECRET "\n  bob: " H_HUNTER "\n  carol: " H_UMLAUT
                             "\n  dave: " H_UMLAUT_2A "\n  gopher: " H_GO "\n",
                             &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    char b[8][256];
    snprintf(b[0], 256, "%s", basic("alice:secret"));
    snprintf(b[1], 256, "%s", basic("bob:hunter2"));
    snprintf(b[2], 256, "%s", basic("carol:p\xc3\xa4ssw\xc3\xb6rd"));
    snprintf(b[3], 256, "%s", basic("dave:p\xc3\xa4ssw\xc3\xb6rd"));
    snprintf(b[4], 256, "%s", basic("gopher:fakepassword"));
    snprintf(b[5], 256, "basic %s", basic("alice:secret") + 6);
    snprintf(b[6], 256, "%s", basic("alice:secret:more"));
    snprintf(b[7], 256, "BASIC %.4s\r\n%s", basic("alice:secret") + 6, basic("alice:secret") + 10);
    const auth_case_t CASES[] = {
        {b[0], FY_AUTH_ALLOW, "$2b$ hash"},
        {b[1], FY_AUTH_ALLOW, "$2a$ hash"},
        {b[2], FY_AUTH_ALLOW, "$2y$ hash, UTF-8 password"},
        {b[3], FY_AUTH_ALLOW, "$2a$ with 8-bit bytes verifies as Go does (computed as $2b$)"},
        {b[4], FY_AUTH_ALLOW, "a hash made by Go's bcrypt (exporter-toolkit's dummy)"},
        {b[5], FY_AUTH_ALLOW, "scheme is case-insensitive"},
        {b[7], FY_AUTH_ALLOW, "CR LF inside base64 is skipped, as Go's decoder does"},
        {NULL, FY_AUTH_DENY, "no header"},
        {"", FY_AUTH_DENY, "empty header"},
        {"Bearer abc", FY_AUTH_DENY, "other scheme"},
        {"Basic", FY_AUTH_DENY, "scheme only"},
        {"Basic Ym9iOmh1bnRlcjI=", FY_AUTH_ALLOW, "bob:hunter2, padded"},
        {"Basic Ym9iOmh1bnRlcjI", FY_AUTH_DENY, "missing padding: StdEncoding requires it"},
        {"Basic Ym9iOmh1bnRlcjI==", FY_AUTH_DENY, "too much padding"},
        {"Basic Ym9iOmh1bnRlcjI=x", FY_AUTH_DENY, "data after padding"},
        {"Basic Ym9iOmh1bnRlcjJ=", FY_AUTH_ALLOW, "non-zero unused bits are accepted, as Go's non-strict decoder"},
        {"Basic !!!!", FY_AUTH_DENY, "not base64"},
        {"Basic  YWxpY2U6c2VjcmV0", FY_AUTH_DENY, "two spaces"},
        {basic("alicesecret"), FY_AUTH_DENY, "no colon"},
        {basic("alice:wrong"), FY_AUTH_DENY, "wrong password"},
        {basic("alice:"), FY_AUTH_DENY, "empty password"},
        {basic("Alice:secret"), FY_AUTH_DENY, "user names are case-sensitive"},
        {basic("mallory:secret"), FY_AUTH_DENY, "unknown user"},
        {basic(":secret"), FY_AUTH_DENY, "empty user"},
        {b[6], FY_AUTH_DENY, "password is everything after the first colon"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char hdr[300];
        const char *h = NULL;
        if (CASES[i].header) {
            snprintf(hdr, sizeof(hdr), "%s", CASES[i].header);
            h = hdr;
        }
        if (check(cfg, h) != CASES[i].want)
            fail_msg("case %zu (%s): got %d", i, CASES[i].note, !CASES[i].want);
    }
    fy_webcfg_free(cfg);

    /* no users: everything passes, even without a header */
    cfg = parse("http_server_config: {http2: true}\n", &err);
    assert_non_null(cfg);
    assert_int_equal(check(cfg, NULL), FY_AUTH_ALLOW);
    assert_int_equal(check(cfg, "Basic !!"), FY_AUTH_ALLOW);
    fy_webcfg_free(cfg);
}

static void test_password_with_nul(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("basic_auth_users:\n  alice: " H_SECRET "\n", &err);
    assert_non_null(cfg);
    /* "alice:secret\0x": crypt_r would see "secret"; Go would not match either, so it must fail */
    const char hdr[] = "Basic YWxpY2U6c2VjcmV0AHg=";
    assert_int_equal(fy_webcfg_check_basic_auth(cfg, hdr, sizeof(hdr) - 1), FY_AUTH_DENY);
    /* and still after a successful login has filled the cache */
    assert_int_equal(check(cfg, basic("alice:secret")), FY_AUTH_ALLOW);
    assert_int_equal(fy_webcfg_check_basic_auth(cfg, hdr, sizeof(hdr) - 1), FY_AUTH_DENY);
    fy_webcfg_free(cfg);
}

static void test_cache(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("basic_auth_users:\n  alice: " H_SECRET "\n  bob: " H_HUNTER "\n", &err);
    assert_non_null(cfg);
    char ok_alice[128], ok_bob[128];
    snprintf(ok_alice, sizeof(ok_alice), "%s", basic("alice:secret"));
    snprintf(ok_bob, sizeof(ok_bob), "%s", basic("bob:hunter2"));

    assert_int_equal(fy_webcfg_cache_count(cfg), 0);
    assert_int_equal(check(cfg, basic("alice:wrong")), FY_AUTH_DENY);
    assert_int_equal(fy_webcfg_cache_count(cfg), 0); /* failures are not cached */
    assert_int_equal(check(cfg, basic("mallory:secret")), FY_AUTH_DENY);
    assert_int_equal(fy_webcfg_cache_count(cfg), 0); /* nor unknown users */
    assert_int_equal(check(cfg, ok_alice), FY_AUTH_ALLOW);
    assert_int_equal(fy_webcfg_cache_count(cfg), 1);
    assert_int_equal(check(cfg, ok_alice), FY_AUTH_ALLOW); /* hit: no new entry */
    assert_int_equal(fy_webcfg_cache_count(cfg), 1);
    assert_int_equal(check(cfg, ok_bob), FY_AUTH_ALLOW);
    assert_int_equal(fy_webcfg_cache_count(cfg), 2);
    /* a cached success for alice says nothing about another password, or another user with the same password */
    assert_int_equal(check(cfg, basic("alice:secret2")), FY_AUTH_DENY);
    assert_int_equal(check(cfg, basic("bob:secret")), FY_AUTH_DENY);

    /* The hash is part of the key (CVE-2022-46146): give alice bob's hash and her cached password stops working. */
    memcpy(cfg->users[0].hash, H_HUNTER, 60);
    assert_int_equal(check(cfg, ok_alice), FY_AUTH_DENY);
    assert_int_equal(check(cfg, basic("alice:hunter2")), FY_AUTH_ALLOW);
    assert_int_equal(fy_webcfg_cache_count(cfg), 3);
    fy_webcfg_free(cfg);

    /* eviction keeps the cache bounded: fill it by hand through distinct users */
    char yaml[16384] = "basic_auth_users:\n";
    for (int i = 0; i < FY_WEBCFG_CACHE_SIZE + 5; i++) {
        size_t l = strlen(yaml);
        snprintf(yaml + l, sizeof(yaml) - l, "  u%d: " H_SECRET "\n", i);
    }
    cfg = parse(yaml, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    for (int i = 0; i < FY_WEBCFG_CACHE_SIZE + 5; i++) {
        char up[32];
        snprintf(up, sizeof(up), "u%d:secret", i);
        assert_int_equal(check(cfg, basic(up)), FY_AUTH_ALLOW);
        assert_true(fy_webcfg_cache_count(cfg) <= FY_WEBCFG_CACHE_SIZE);
    }
    /* after one eviction round: 100 - 11 + the rest */
    assert_int_equal(fy_webcfg_cache_count(cfg), FY_WEBCFG_CACHE_SIZE - FY_WEBCFG_CACHE_SIZE / 10 - 1 + 5);
    fy_webcfg_free(cfg);
}

static void test_dummy_hash(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    /* the dummy costs as much as the most expensive configured hash */
    fy_webcfg_t *cfg = parse("basic_auth_users:\n  alice: " H_SECRET "\n  bob: " H_HUNTER "\n", &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->dummy_setting, "$2b$05$QOauhQNbBCuQDKes6eFzPe");
    /* An unknown user pays for a bcrypt at that cost: measure against a known user with the cost-5 hash. Thread CPU
     * time, not wall time: under load (make test -j2 beside other work) a preempted run made the ratio fail. */
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(check(cfg, basic("nobody:hunter2")), FY_AUTH_DENY);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(check(cfg, basic("bob:wrong")), FY_AUTH_DENY);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t2);
    double unknown = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double known = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
    /* generous bound: the point is that the unknown path is not skipping bcrypt */
    assert_true(unknown > known / 4);
    assert_int_equal(fy_webcfg_cache_count(cfg), 0);
    fy_webcfg_free(cfg);
}

static void test_ct_equal(void **state)
{
    (void)state;
    const struct {
        const char *a, *b;
        size_t n;
        int want;
    } CASES[] = {
        {"", "", 0, 1},         {"abc", "abc", 3, 1},   {"abc", "abd", 3, 0},
        {"abc", "xbc", 3, 0},   {"abc", "abd", 2, 1},   {"a\0c", "a\0c", 3, 1},
        {"a\0c", "a\0d", 3, 0}, {"\x80", "\x00", 1, 0}, {"\xff\xff", "\xff\xfe", 2, 0},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        assert_int_equal(fy_webcfg_ct_equal(CASES[i].a, CASES[i].b, CASES[i].n), CASES[i].want);
    /* every single-bit difference at every position of a 64-byte buffer is seen */
    unsigned char x[64], y[64];
    for (size_t i = 0; i < 64; i++)
        x[i] = (unsigned char)(i * 7);
    for (size_t pos = 0; pos < 64; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(y, x, 64);
            y[pos] ^= (unsigned char)(1u << bit);
            assert_int_equal(fy_webcfg_ct_equal(x, y, 64), 0);
        }
    }
    assert_int_equal(fy_webcfg_ct_equal(x, x, 64), 1);
}

/* The split check (fy_webcfg_auth_begin on the loop, fy_webcfg_auth_hash on the auth pool) and the cache of recent
 * failures, which makes a repeated wrong password cost a lookup instead of a bcrypt. */
static void test_auth_begin_and_failures(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("basic_auth_users:\n  alice: " H_SECRET "\n", &err);
    assert_non_null(cfg);
    static const struct {
        const char *userpass; /* NULL: no header */
        fy_auth_result_t first, after_hash, again;
        const char *note;
    } cases[] = {
        {NULL, FY_AUTH_DENY, FY_AUTH_DENY, FY_AUTH_DENY, "no credentials: decided without a hash, never cached"},
        {"alice:secret", FY_AUTH_HASH, FY_AUTH_ALLOW, FY_AUTH_ALLOW, "right password: hashed once, then cached"},
        {"alice:wrong", FY_AUTH_HASH, FY_AUTH_DENY, FY_AUTH_DENY_RECENT, "wrong password: hashed once, then a recent failure"},
        {"mallory:secret", FY_AUTH_HASH, FY_AUTH_DENY, FY_AUTH_DENY_RECENT, "unknown user: the same"},
        {"alice:wrong2", FY_AUTH_HASH, FY_AUTH_DENY, FY_AUTH_DENY_RECENT, "another wrong password is hashed anew"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hdr[256] = "";
        if (cases[i].userpass != NULL)
            snprintf(hdr, sizeof(hdr), "%s", basic(cases[i].userpass));
        const char *h = cases[i].userpass != NULL ? hdr : NULL;
        size_t hl = h != NULL ? strlen(h) : 0;
        fy_auth_job_t job;
        fy_auth_result_t r = fy_webcfg_auth_begin(cfg, h, hl, &job);
        if (r != cases[i].first)
            fail_msg("%s: begin %d, expected %d", cases[i].note, r, cases[i].first);
        r = r == FY_AUTH_HASH ? fy_webcfg_auth_hash(cfg, &job) : r;
        if (r != cases[i].after_hash)
            fail_msg("%s: result %d, expected %d", cases[i].note, r, cases[i].after_hash);
        r = fy_webcfg_auth_begin(cfg, h, hl, &job);
        if (r == FY_AUTH_HASH)
            fy_webcfg_auth_job_free(&job);
        if (r != cases[i].again)
            fail_msg("%s: second begin %d, expected %d", cases[i].note, r, cases[i].again);
        assert_int_equal(check(cfg, h), cases[i].after_hash); /* the one-call form agrees */
    }
    assert_int_equal(fy_webcfg_cache_count(cfg), 1);
    assert_int_equal(fy_webcfg_fail_cache_count(cfg), 3);
    /* the failure cache is bounded: the oldest failures go first */
    for (int i = 0; i < FY_WEBCFG_FAIL_CACHE_SIZE + 10; i++) {
        char up[32];
        snprintf(up, sizeof(up), "nobody%d:x", i);
        fy_auth_job_t job;
        const char *h = basic(up);
        if (fy_webcfg_auth_begin(cfg, h, strlen(h), &job) == FY_AUTH_HASH)
            fy_webcfg_auth_hash(cfg, &job);
    }
    assert_int_equal(fy_webcfg_fail_cache_count(cfg), FY_WEBCFG_FAIL_CACHE_SIZE);
    fy_auth_job_t job;
    const char *h = basic("alice:wrong");
    assert_int_equal(fy_webcfg_auth_begin(cfg, h, strlen(h), &job), FY_AUTH_HASH); /* evicted */
    fy_webcfg_auth_job_free(&job);
    fy_webcfg_free(cfg);
}

static void test_401(void **state)
{
    (void)state;
    assert_int_equal(FY_WEBCFG_401_STATUS, 401);
    assert_string_equal(FY_WEBCFG_401_BODY, "Unauthorized\n");
    assert_int_equal(strlen(FY_WEBCFG_401_BODY), 13); /* E28's Content-Length */
    assert_string_equal(fy_webcfg_401_headers[0].name, "Content-Type");
    assert_string_equal(fy_webcfg_401_headers[0].value, "text/plain; charset=utf-8");
    assert_string_equal(fy_webcfg_401_headers[1].name, "Www-Authenticate");
    assert_string_equal(fy_webcfg_401_headers[1].value, "Basic");
    assert_string_equal(fy_webcfg_401_headers[2].name, "X-Content-Type-Options");
    assert_string_equal(fy_webcfg_401_headers[2].value, "nosniff");
}

static void test_looks_like_http(void **state)
{
    (void)state;
    const struct {
        const char *in;
        int want;
    } CASES[] = {
        {"GET / HTTP/1.1", 1}, {"GET /metrics", 1}, {"HEAD /", 1}, {"POST /x", 1}, {"PUT /metrics/job/a", 1},
        {"OPTIONS *", 1},      {"DELETE /", 0},     {"GET", 0},    {"get / ", 0},  {"\x16\x03\x01\x02\x00", 0},
        {"PATCH /", 0},        {"GET  /", 0},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        assert_int_equal(fy_webcfg_looks_like_http(CASES[i].in, strlen(CASES[i].in)), CASES[i].want);
    assert_string_equal(FY_WEBCFG_HTTP_ON_HTTPS_RESPONSE,
                        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
}

/* ---- TLS: a real handshake through memory BIOs ---- */

typedef struct {
    int ok;
    char alpn[16];
    int version;
    char cn[64];
} hs_result_t;

static hs_result_t handshake(SSL_CTX *server_ctx, const char *alpn_wire, size_t alpn_len, int max_version)
{
    hs_result_t r = {0};
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    if (max_version)
        SSL_CTX_set_max_proto_version(cctx, max_version);
    SSL *c = SSL_new(cctx), *s = SSL_new(server_ctx);
    BIO *cb, *sb;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (alpn_wire)
        SSL_set_alpn_protos(c, (const unsigned char *)alpn_wire, (unsigned)alpn_len);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) {
            int rc = SSL_do_handshake(c);
            if (rc == 1)
                cdone = 1;
            else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
                break;
        }
        if (!sdone) {
            int rc = SSL_do_handshake(s);
            if (rc == 1)
                sdone = 1;
            else if (SSL_get_error(s, rc) != SSL_ERROR_WANT_READ)
                break;
        }
    }
    r.ok = cdone && sdone;
    if (r.ok) {
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(s, &p, &n);
        snprintf(r.alpn, sizeof(r.alpn), "%.*s", (int)n, (const char *)p);
        r.version = SSL_version(c);
        X509 *peer = SSL_get1_peer_certificate(c);
        if (peer) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, r.cn, sizeof(r.cn));
            X509_free(peer);
        }
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return r;
}

static void test_ssl_ctx(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_string_equal(fy_webcfg_alpn(cfg, 0), "h2");
    assert_string_equal(fy_webcfg_alpn(cfg, 1), "http/1.1");
    assert_null(fy_webcfg_alpn(cfg, 2));

    hs_result_t r = handshake(cfg->ssl_ctx, "\x08http/1.1\x02h2", 12, 0);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "h2"); /* server preference */
    assert_int_equal(r.version, TLS1_3_VERSION);
    assert_string_equal(r.cn, "localhost");
    r = handshake(cfg->ssl_ctx, "\x08http/1.1", 9, TLS1_2_VERSION);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "http/1.1");
    assert_int_equal(r.version, TLS1_2_VERSION);
    r = handshake(cfg->ssl_ctx, NULL, 0, 0);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "");
    fy_webcfg_free(cfg);

    cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n"
                "http_server_config:\n  http2: false\n",
                &err);
    assert_non_null(cfg);
    assert_string_equal(fy_webcfg_alpn(cfg, 0), "http/1.1");
    assert_null(fy_webcfg_alpn(cfg, 1));
    r = handshake(cfg->ssl_ctx, "\x02h2\x08http/1.1", 12, 0);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "http/1.1"); /* http2: false never selects h2 */
    r = handshake(cfg->ssl_ctx, NULL, 0, TLS1_2_VERSION);
    assert_false(r.ok); /* min_version TLS13 */
    fy_webcfg_free(cfg);

    /* cipher_suites restricts TLS 1.2: an ECDSA key with only RSA suites cannot complete a 1.2 handshake */
    cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  max_version: TLS12\n"
                "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
                &err);
    assert_non_null(cfg);
    assert_false(handshake(cfg->ssl_ctx, NULL, 0, 0).ok);
    fy_webcfg_free(cfg);
    cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  max_version: TLS12\n"
                "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n  curve_preferences: [CurveP384]\n",
                &err);
    assert_non_null(cfg);
    assert_true(handshake(cfg->ssl_ctx, NULL, 0, 0).ok);
    fy_webcfg_free(cfg);

    /* only TLS 1.3 names: Go leaves no suite for 1.2, so 1.2 clients fail and 1.3 clients succeed */
    cfg =
        parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", &err);
    assert_non_null(cfg);
    assert_false(handshake(cfg->ssl_ctx, NULL, 0, TLS1_2_VERSION).ok);
    assert_true(handshake(cfg->ssl_ctx, NULL, 0, 0).ok);
    fy_webcfg_free(cfg);

    /* client auth: RequireAnyClientCert turns away a client without a certificate */
    cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAnyClientCert\n"
                "  max_version: TLS12\n",
                &err);
    assert_non_null(cfg);
    assert_false(handshake(cfg->ssl_ctx, NULL, 0, 0).ok);
    fy_webcfg_free(cfg);
    cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequestClientCert\n", &err);
    assert_non_null(cfg);
    assert_true(handshake(cfg->ssl_ctx, NULL, 0, 0).ok);
    fy_webcfg_free(cfg);
}

/* A reload frees the configuration a connection's SSL came from while the connection lives on (its handshake may not
 * even have started): the SSL_CTX and the handshake state it owns must outlive the configuration. Under ASan a use
 * after free fails here, and the leak check proves the state is freed with the last SSL. */
static void test_ssl_outlives_config(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    SSL_CTX *ctx = cfg->ssl_ctx;
    assert_int_equal(SSL_CTX_up_ref(ctx), 1); /* as SSL_new does for each accepted connection */
    fy_webcfg_free(cfg);                      /* the reload's old generation is gone */
    hs_result_t r = handshake(ctx, "\x02h2\x08http/1.1", 12, 0);
    assert_true(r.ok); /* the certificate callback and ALPN ran on the state the SSL_CTX owns */
    assert_string_equal(r.cn, "localhost");
    assert_string_equal(r.alpn, "h2");
    SSL_CTX_free(ctx); /* the last reference: the state goes with it */
}

/* fy_webcfg_reload_check: what a reload may change. */
#define TLS_MIN "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
static void test_reload_check(void **state)
{
    (void)state;
    static const struct {
        const char *cur, *next;
        const char *msg; /* NULL: allowed */
        const char *note;
    } cases[] = {
        {"", "basic_auth_users:\n  alice: " H_SECRET "\n", NULL, "users added to a plain listener"},
        {"basic_auth_users:\n  alice: " H_SECRET "\n", "", NULL, "users removed"},
        {"", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n", NULL, "headers added"},
        {TLS_MIN, "tls_server_config:\n  cert_file: cert2.pem\n  key_file: key2.pem\n  min_version: TLS13\n", NULL,
         "another certificate, other TLS settings"},
        {TLS_MIN, "http_server_config:\n  http2: false\n" TLS_MIN, NULL, "HTTP/2 turned off (ALPN of new connections)"},
        {"", TLS_MIN, "a reload cannot turn TLS on (restart Ferry for that)", "plain to TLS"},
        {TLS_MIN, "basic_auth_users:\n  alice: " H_SECRET "\n", "a reload cannot turn TLS off (restart Ferry for that)",
         "TLS to plain"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fy_webcfg_err_t err;
        fy_webcfg_t *cur = parse(cases[i].cur, &err), *next = parse(cases[i].next, &err);
        if (cur == NULL || next == NULL)
            fail_msg("case %zu (%s): fixture does not load: %s", i, cases[i].note, err.msg);
        int rc = fy_webcfg_reload_check(cur, next, &err);
        if (cases[i].msg == NULL && rc != 0)
            fail_msg("case %zu (%s): refused: %s", i, cases[i].note, err.msg);
        if (cases[i].msg != NULL && (rc != -1 || strcmp(err.msg, cases[i].msg) != 0 || strcmp(err.key, "tls_server_config") != 0))
            fail_msg("case %zu (%s): rc %d, err %s (key %s)", i, cases[i].note, rc, err.msg, err.key);
        fy_webcfg_free(cur);
        fy_webcfg_free(next);
    }
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char rel[256];
    snprintf(rel, sizeof(rel), "webconfig/%s", from);
    char *data = fy_fixture(rel, &len);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(rename(tmp, to), 0); /* how certificates are rotated in practice */
    free(data);
}

static void test_cert_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/fy_webcfg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[PATH_MAX], key[PATH_MAX], yml[PATH_MAX];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(yml, sizeof(yml), "%s/web.yml", dir);
    copy_file("cert.pem", cert);
    copy_file("key.pem", key);
    FILE *f = fopen(yml, "w");
    assert_non_null(f);
    fputs("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n", f);
    fclose(f);

    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = fy_webcfg_load(yml, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(fy_webcfg_cert_generation(cfg), 1);
    assert_string_equal(handshake(cfg->ssl_ctx, NULL, 0, 0).cn, "localhost");

    /* an unchanged pair is not reloaded */
    X509_free(fy_webcfg_current_cert(cfg, 1));
    assert_int_equal(fy_webcfg_cert_generation(cfg), 1);

    /* half a rotation (new cert, old key) is not taken: the old pair keeps serving */
    copy_file("cert2.pem", cert);
    X509_free(fy_webcfg_current_cert(cfg, 1));
    assert_int_equal(fy_webcfg_cert_generation(cfg), 1);
    assert_string_equal(handshake(cfg->ssl_ctx, NULL, 0, 0).cn, "localhost");

    /* the whole rotation is; new handshakes see it once the check interval has passed */
    copy_file("key2.pem", key);
    sleep(FY_WEBCFG_CERT_CHECK_INTERVAL + 1);
    assert_string_equal(handshake(cfg->ssl_ctx, NULL, 0, 0).cn, "rotated");
    assert_int_equal(fy_webcfg_cert_generation(cfg), 2);
    fy_webcfg_free(cfg);

    unlink(cert);
    unlink(key);
    unlink(yml);
    rmdir(dir);
}

/* ---- --cluster.tls-config (fy_webcfg_parse_cluster) ---- */

#define CL_SERVER "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
#define CL_MTLS CL_SERVER "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n"
#define CL_CLIENT "tls_client_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  ca_file: cert.pem\n"

typedef struct {
    const char *yaml;
    const char *msg; /* NULL: accepted */
    const char *key; /* accepted: the client's server_name; rejected: err.key */
    int insecure;
    const char *note;
} cluster_case_t;

static const cluster_case_t CLUSTER[] = {
    {CL_MTLS CL_CLIENT, NULL, "", 0, "mutual TLS"},
    {CL_SERVER "tls_client_config:\n  ca_file: cert.pem\n  server_name: ferry-peers\n", NULL, "ferry-peers", 0,
     "no client certificate, a fixed server name"},
    {CL_SERVER "tls_client_config:\n  insecure_skip_verify: true\n  min_version: TLS13\n", NULL, "", 1, "no checks"},
    {"", "missing tls_server_config", "tls_server_config", 0, "empty file"},
    {"tls_client_config:\n  ca_file: cert.pem\n", "missing tls_server_config", "tls_server_config", 0, "no server side"},
    {CL_SERVER, "missing tls_client_config", "tls_client_config", 0, "no client side"},
    {CL_SERVER "tls_client_config:\n", "missing tls_client_config", "tls_client_config", 0, "null client side"},
    {CL_SERVER CL_CLIENT "basic_auth_users:\n  a: b\n",
     "yaml: unmarshal errors:\n  line 8: field basic_auth_users not found in type cluster.TLSTransportConfig", "basic_auth_users",
     0, "no basic auth on the peer port"},
    {"http_server_config:\n  http2: false\n" CL_SERVER CL_CLIENT,
     "yaml: unmarshal errors:\n  line 1: field http_server_config not found in type cluster.TLSTransportConfig",
     "http_server_config", 0, "no HTTP settings"},
    {"tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n" CL_CLIENT, "tls_server_config: missing cert_file",
     "cert_file", 0, "the server side needs a certificate"},
    {CL_SERVER "  client_auth_type: Sometimes\n" CL_CLIENT, "tls_server_config: Invalid ClientAuth: Sometimes", "client_auth_type",
     0, "web config checks apply"},
    {CL_SERVER "tls_client_config:\n  cert_file: cert.pem\n",
     "tls_client_config: client cert file \"" DIR "/cert.pem\" specified without client key file", "key_file", 0,
     "certificate without key"},
    {CL_SERVER "tls_client_config:\n  ca_file: absent.pem\n",
     "tls_client_config: unable to load specified CA cert " DIR "/absent.pem: open " DIR "/absent.pem: no such file or directory",
     "ca_file", 0, "CA file missing"},
    {CL_SERVER "tls_client_config:\n  ca_file: garbage.pem\n",
     "tls_client_config: unable to use specified CA cert " DIR "/garbage.pem", "ca_file", 0, "CA file without a certificate"},
    {CL_SERVER "tls_client_config:\n  ca: inline\n",
     "yaml: unmarshal errors:\n  line 5: field ca not found in type config.TLSConfig", "ca", 0, "inline PEM not supported"},
    {CL_SERVER "tls_client_config:\n  min_version: TLS14\n", "unknown TLS version: TLS14", "min_version", 0, "bad version"},
    {CL_SERVER "tls_client_config:\n  min_version: TLS13\n  max_version: TLS12\n",
     "tls_client_config: min_version is newer than max_version", "min_version", 0, "versions crossed"},
};

static void test_cluster_config(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CLUSTER) / sizeof(CLUSTER[0]); i++) {
        const cluster_case_t *c = &CLUSTER[i];
        fy_webcfg_err_t err;
        size_t len = strlen(c->yaml);
        fy_webcfg_t *cfg = fy_webcfg_parse_cluster(CFG, fy_guarded(c->yaml, len), len, &err);
        if (c->msg == NULL) {
            if (!cfg)
                fail_msg("case %zu (%s): rejected: %s", i, c->note, err.msg);
            assert_true(cfg->cluster);
            assert_non_null(cfg->ssl_ctx);
            assert_non_null(cfg->client_ssl_ctx);
            assert_string_equal(cfg->client_server_name, c->key);
            assert_int_equal(cfg->client_insecure, c->insecure);
            fy_webcfg_free(cfg);
            continue;
        }
        if (cfg)
            fail_msg("case %zu (%s): accepted", i, c->note);
        if (strcmp(err.msg, c->msg) != 0)
            fail_msg("case %zu (%s):\n got  %s\n want %s", i, c->note, err.msg, c->msg);
        if (strcmp(err.key, c->key) != 0)
            fail_msg("case %zu (%s): key %s, want %s", i, c->note, err.key, c->key);
    }
    /* the web config's own sections are not a cluster file's, and the reverse */
    fy_webcfg_err_t err;
    fy_webcfg_t *cfg = parse(CL_SERVER CL_CLIENT, &err);
    assert_null(cfg);
    assert_string_equal(err.msg, "yaml: unmarshal errors:\n  line 4: field tls_client_config not found in type web.Config");
}

/* A handshake between the two contexts of a cluster file (over a BIO pair), the client checking host. */
static int peer_handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, const char *host)
{
    SSL *c = SSL_new(client_ctx), *s = SSL_new(server_ctx);
    BIO *cb, *sb;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (host)
        SSL_set1_host(c, host);
    int cdone = 0, sdone = 0, failed = 0;
    for (int i = 0; i < 100 && !(cdone && sdone) && !failed; i++) {
        if (!cdone) {
            int rc = SSL_do_handshake(c);
            cdone = rc == 1;
            failed |= rc != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ;
        }
        if (!sdone && !failed) {
            int rc = SSL_do_handshake(s);
            sdone = rc == 1;
            failed |= rc != 1 && SSL_get_error(s, rc) != SSL_ERROR_WANT_READ;
        }
    }
    /* TLS 1.3: the client is done before the server has checked its certificate; a byte each way settles it */
    if (!failed && cdone && sdone) {
        char b = 'x';
        failed = SSL_write(c, &b, 1) != 1 || SSL_read(s, &b, 1) != 1;
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return cdone && sdone && !failed;
}

static void test_cluster_handshake(void **state)
{
    (void)state;
    fy_webcfg_err_t err;
    const char *y = CL_MTLS CL_CLIENT;
    fy_webcfg_t *good = fy_webcfg_parse_cluster(CFG, y, strlen(y), &err);
    if (!good)
        fail_msg("%s", err.msg);
    assert_true(peer_handshake(good->ssl_ctx, good->client_ssl_ctx, "localhost"));
    assert_true(peer_handshake(good->ssl_ctx, good->client_ssl_ctx, "127.0.0.1"));
    assert_false(peer_handshake(good->ssl_ctx, good->client_ssl_ctx, "ferry-peers")); /* not in the certificate */

    /* a client certificate the CA did not sign (cert2 is its own CA) */
    y = CL_SERVER "tls_client_config:\n  cert_file: cert2.pem\n  key_file: key2.pem\n  ca_file: cert.pem\n";
    fy_webcfg_t *rogue = fy_webcfg_parse_cluster(CFG, y, strlen(y), &err);
    if (!rogue)
        fail_msg("%s", err.msg);
    assert_false(peer_handshake(good->ssl_ctx, rogue->client_ssl_ctx, "localhost"));
    /* no client certificate at all */
    y = CL_SERVER "tls_client_config:\n  ca_file: cert.pem\n";
    fy_webcfg_t *anon = fy_webcfg_parse_cluster(CFG, y, strlen(y), &err);
    assert_non_null(anon);
    assert_false(peer_handshake(good->ssl_ctx, anon->client_ssl_ctx, "localhost"));
    assert_true(peer_handshake(anon->ssl_ctx, anon->client_ssl_ctx, "localhost")); /* NoClientCert */
    /* a server certificate the client's CA did not sign: refused, unless insecure_skip_verify */
    y = "tls_server_config:\n  cert_file: cert2.pem\n  key_file: key2.pem\n" CL_CLIENT;
    fy_webcfg_t *other = fy_webcfg_parse_cluster(CFG, y, strlen(y), &err);
    assert_non_null(other);
    assert_false(peer_handshake(other->ssl_ctx, good->client_ssl_ctx, "localhost"));
    y = CL_SERVER "tls_client_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  insecure_skip_verify: true\n";
    fy_webcfg_t *insecure = fy_webcfg_parse_cluster(CFG, y, strlen(y), &err);
    assert_non_null(insecure);
    assert_true(peer_handshake(other->ssl_ctx, insecure->client_ssl_ctx, "ferry-peers"));
    fy_webcfg_free(good);
    fy_webcfg_free(rogue);
    fy_webcfg_free(anon);
    fy_webcfg_free(other);
    fy_webcfg_free(insecure);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_password_with_nul),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_dummy_hash),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_auth_begin_and_failures),
        cmocka_unit_test(test_401),
        cmocka_unit_test(test_looks_like_http),
        cmocka_unit_test(test_ssl_ctx),
        cmocka_unit_test(test_cert_reload),
        cmocka_unit_test(test_cluster_config),
        cmocka_unit_test(test_cluster_handshake),
        cmocka_unit_test(test_ssl_outlives_config),
        cmocka_unit_test(test_reload_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
