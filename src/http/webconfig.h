/*
 * webconfig.h - the --web.config.file of exporter-toolkit v0.8.2 (as Pushgateway 1.5.1 uses it): strict YAML
 * decoding and validation, an OpenSSL SSL_CTX for the TLS listener, the basic-auth decision and the extra headers.
 *
 * Lifecycle: fy_webcfg_load() at start-up, where any error stops start-up (the caller logs err.msg the way the
 * reference logs `msg="HTTP server stopped" err=...`), and again for each reload (SIGHUP, /-/reload), where an error
 * keeps the configuration in force (server.c publishes a new one as a generation, gen.h). The result is read-only
 * afterwards except for the auth cache and the certificate reload state, which have their own locks, so any thread
 * may call the check functions. The handshake state belongs to the SSL_CTX, not to the configuration: connections
 * accepted with a configuration's SSL_CTX keep working after it is freed.
 */
#ifndef FY_WEBCONFIG_H
#define FY_WEBCONFIG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

typedef enum {
    FY_CLIENT_AUTH_NONE = 0,           /* NoClientCert (default) */
    FY_CLIENT_AUTH_REQUEST,            /* RequestClientCert: ask, accept anything or nothing */
    FY_CLIENT_AUTH_REQUIRE_ANY,        /* RequireAnyClientCert / RequireClientCert: demand one, do not verify */
    FY_CLIENT_AUTH_VERIFY_IF_GIVEN,    /* VerifyClientCertIfGiven */
    FY_CLIENT_AUTH_REQUIRE_AND_VERIFY, /* RequireAndVerifyClientCert */
} fy_client_auth_t;

/* A load error. msg is the reference's error text where it has one (what `err=` shows in its log), otherwise ours.
 * line (1-based, 0 if none) and key locate the first problem for our own log line. */
typedef struct {
    char msg[1024];
    unsigned line;
    char key[64];
} fy_webcfg_err_t;

typedef struct {
    const char *name; /* Go's canonical form, as the reference writes it over HTTP/1.1 (a static string) */
    const char *value;
} fy_webcfg_header_t;

typedef struct {
    char *name;
    size_t name_len;
    char hash[61]; /* validated: $2a$/$2b$/$2y$, two-digit cost, 53 bcrypt-base64 characters */
} fy_webcfg_user_t;

#define FY_WEBCFG_MAX_CIPHERS 32
#define FY_WEBCFG_MAX_CURVES 8
#define FY_WEBCFG_MAX_HEADERS 5
#define FY_WEBCFG_CACHE_SIZE 100 /* the reference's cacheSize */
#define FY_WEBCFG_FAIL_CACHE_SIZE 256

typedef struct fy_webcfg_tls_state fy_webcfg_tls_state_t;

typedef struct st_fy_webcfg_t {
    char *path; /* the config file as given */

    /* tls_server_config (paths already joined with the config file's directory and cleaned like Go's filepath) */
    int tls_enabled; /* any of cert_file, key_file, client_auth_type, client_ca_file set */
    char *cert_file, *key_file, *client_ca_file, *client_auth_name;
    fy_client_auth_t client_auth;
    int min_version, max_version; /* OpenSSL TLS1_VERSION .. TLS1_3_VERSION; null in YAML gives Go's defaults */
    const char *ciphers[FY_WEBCFG_MAX_CIPHERS];
    size_t nciphers; /* Go names, validated against Go 1.19's tls.CipherSuites() */
    const char *curves[FY_WEBCFG_MAX_CURVES];
    size_t ncurves; /* Go names: CurveP256, CurveP384, CurveP521, X25519 */
    int prefer_server_cipher_suites;

    /* http_server_config */
    int http2;
    fy_webcfg_header_t headers[FY_WEBCFG_MAX_HEADERS];
    size_t nheaders; /* sorted by name, the order Go writes them */

    /* basic_auth_users, in file order */
    fy_webcfg_user_t *users;
    size_t nusers;
    char dummy_setting[30]; /* "$2b$NN$" + 22 salt chars: NN = the highest configured cost */

    /* Cache of successful verifications, keyed by a salted SHA-256 of (user, hash, password). */
    pthread_mutex_t cache_lock;
    uint8_t cache_salt[32];
    uint8_t cache[FY_WEBCFG_CACHE_SIZE][32];
    size_t ncache;
    uint64_t cache_rng;
    /* Cache of recent failures (same key, cache_lock), oldest replaced first: a flood that repeats a wrong password
     * costs one hash, not one per request. Safe to keep: the users cannot change while this configuration lives. */
    uint8_t fail_cache[FY_WEBCFG_FAIL_CACHE_SIZE][32];
    size_t nfail, fail_next;

    SSL_CTX *ssl_ctx;           /* built at load when tls_enabled; one reference owned here, one per connection */
    fy_webcfg_tls_state_t *tls; /* ssl_ctx's handshake state (its ex_data, freed with it); NULL without TLS */

    /* --cluster.tls-config only (fy_webcfg_load_cluster, docs/ha.md): tls_client_config, what a replica presents and
     * checks when it dials a peer, in prometheus/common's config.TLSConfig terms (paths joined like the others) */
    int cluster;
    char *client_cert_file, *client_key_file, *client_ca_file_peer, *client_server_name;
    int client_insecure;                        /* insecure_skip_verify */
    int client_min_version, client_max_version; /* default TLS 1.2 .. TLS 1.3 */
    SSL_CTX *client_ssl_ctx;                    /* built at load; owned here */
} fy_webcfg_t;

/* Reads, decodes and validates the file, then builds the SSL_CTX when TLS is configured. NULL on error. */
fy_webcfg_t *fy_webcfg_load(const char *path, fy_webcfg_err_t *err);

/* The same from text already in memory; path only gives the directory relative file names are resolved against. */
fy_webcfg_t *fy_webcfg_parse(const char *path, const char *text, size_t len, fy_webcfg_err_t *err);

/* --cluster.tls-config: Alertmanager's cluster TLS file. tls_server_config (required, with cert_file and key_file) as
 * in the web config, and tls_client_config (required): cert_file, key_file, ca_file, server_name,
 * insecure_skip_verify, min_version, max_version. Nothing else: http_server_config and basic_auth_users are unknown
 * fields there. Builds ssl_ctx (the peer port) and client_ssl_ctx (dialling peers); messages name the section. */
fy_webcfg_t *fy_webcfg_load_cluster(const char *path, fy_webcfg_err_t *err);
fy_webcfg_t *fy_webcfg_parse_cluster(const char *path, const char *text, size_t len, fy_webcfg_err_t *err);

void fy_webcfg_free(fy_webcfg_t *cfg);

/* Whether a newly loaded configuration may replace the one in force on a reload: 0, or -1 with err filled. TLS cannot
 * be switched on or off (the listeners' protocol, and the reference decides it once at start-up too); everything else
 * may change. */
int fy_webcfg_reload_check(const fy_webcfg_t *cur, const fy_webcfg_t *next, fy_webcfg_err_t *err);

/* ---- basic auth ---- */

/* DENY_RECENT: the pair failed a hash recently (the failure cache); a caller may answer it more slowly than a missing
 * or malformed header, to slow a flood down. */
typedef enum { FY_AUTH_DENY = 0, FY_AUTH_ALLOW = 1, FY_AUTH_HASH = 2, FY_AUTH_DENY_RECENT = 3 } fy_auth_result_t;

/* A check that needs a password hash: what fy_webcfg_auth_hash needs, copied out of the request (which may be gone
 * by the time it runs). */
typedef struct st_fy_auth_job_t {
    const fy_webcfg_user_t *user; /* NULL: no such user (a dummy hash of the highest cost keeps the time the same) */
    uint8_t key[32];              /* the caches' key for (user, password) */
    char *pw;                     /* NUL-terminated copy, wiped and freed by fy_webcfg_auth_hash / _job_free */
    size_t pwlen;
    int has_nul;
} fy_auth_job_t;

/* Decides a request given its Authorization header (NULL if absent) without hashing: ALLOW when no users are
 * configured or (user, password) is in the cache of recent successes, DENY for a missing or malformed header,
 * DENY_RECENT for a pair in the cache of recent failures, else HASH with *job filled (then fy_webcfg_auth_hash or
 * fy_webcfg_auth_job_free). Cheap: a SHA-256 and two cache scans; safe from any thread. */
fy_auth_result_t fy_webcfg_auth_begin(fy_webcfg_t *cfg, const char *authorization, size_t len, fy_auth_job_t *job);

/* The password hash of a HASH answer (one bcrypt: tens of milliseconds at cost 10): ALLOW or DENY, remembered in the
 * matching cache. Frees the job's copy. Any thread. */
fy_auth_result_t fy_webcfg_auth_hash(fy_webcfg_t *cfg, fy_auth_job_t *job);
void fy_webcfg_auth_job_free(fy_auth_job_t *job);

/* Both steps at once (tests, and callers that may block). */
fy_auth_result_t fy_webcfg_check_basic_auth(fy_webcfg_t *cfg, const char *authorization, size_t len);

/* The deny response, exactly as the reference sends it (http.Error after WWW-Authenticate is set). The configured
 * headers (cfg->headers) are sent on it too, as on every response. */
#define FY_WEBCFG_401_STATUS 401
#define FY_WEBCFG_401_REASON "Unauthorized"
#define FY_WEBCFG_401_BODY "Unauthorized\n"
extern const fy_webcfg_header_t fy_webcfg_401_headers[3]; /* Content-Type, Www-Authenticate, X-Content-Type-Options */

/* Constant-time equality of two n-byte buffers (1 if equal). */
int fy_webcfg_ct_equal(const void *a, const void *b, size_t n);

/* Test hooks: number of cached successful and failed verifications. */
size_t fy_webcfg_cache_count(fy_webcfg_t *cfg);
size_t fy_webcfg_fail_cache_count(fy_webcfg_t *cfg);

/* ---- TLS ---- */

/* The ALPN protocols the SSL_CTX offers, in preference order (server preference, as Go): "h2", "http/1.1" or just
 * "http/1.1" when http2 is false. Already registered on cfg->ssl_ctx; exposed for logging and tests. */
const char *fy_webcfg_alpn(const fy_webcfg_t *cfg, size_t i);

/* Go answers a plain-HTTP request on a TLS port with this and closes, when the first five bytes are one of
 * "GET /", "HEAD ", "POST ", "PUT /", "OPTIO". Other garbage just closes the connection. */
#define FY_WEBCFG_HTTP_ON_HTTPS_RESPONSE "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
int fy_webcfg_looks_like_http(const void *first_bytes, size_t len);

/* How often (seconds) the certificate and key files' metadata is checked for a reload. */
#define FY_WEBCFG_CERT_CHECK_INTERVAL 1

/* Test hook: how many times the certificate pair has been (re)loaded, the initial load included. */
unsigned fy_webcfg_cert_generation(fy_webcfg_t *cfg);

/* Test hook: run the reload check now (as a new handshake would) and return the leaf certificate it would serve;
 * the caller frees it with X509_free. force skips the once-a-second limit. */
X509 *fy_webcfg_current_cert(fy_webcfg_t *cfg, int force);

#endif
