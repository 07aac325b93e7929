/*
 * httpclient.c: the one network path of `ferry push` and `ferry run`: a libcurl easy request with basic auth, TLS
 * options, a per-attempt timeout and the retry loop of cli.c's policy. libcurl brings https, proxies from the
 * environment (https_proxy, no_proxy) and credentials in the URL; docs/cli.md says why that beats our own client.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static const char *const METHODS[] = {"PUT", "POST", "DELETE"};

#define REPLY_MAX 4096 /* of a gateway's answer we keep and print; its errors are one line */

typedef struct {
    char text[REPLY_MAX + 1];
    size_t len;
} reply_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    reply_t *r = ctx;
    size_t n = size * nmemb, room = REPLY_MAX - r->len;
    memcpy(r->text + r->len, data, n < room ? n : room);
    r->len += n < room ? n : room;
    return n;
}

/* The first line of the file, without its line end (empty for an empty file); -1 when it cannot be read. */
static int read_password(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    out[0] = '\0';
    int rc = fgets(out, (int)cap, f) == NULL && ferror(f) ? -1 : 0;
    out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Failures that the same request will meet again: bad URL, TLS trust, unsupported scheme. Not worth a retry. */
static int permanent(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_LOGIN_DENIED:
        return 1;
    default:
        return 0;
    }
}

/* One attempt. Returns the HTTP status, or 0 with a message in err when there was no answer (*fatal when retrying
 * cannot help). */
static long attempt(CURL *h, reply_t *r, char *err, int *fatal)
{
    r->len = 0;
    err[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    *fatal = permanent(rc);
    if (rc != CURLE_OK) {
        if (err[0] == '\0')
            snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r->text[r->len] = '\0';
    while (r->len > 0 && (r->text[r->len - 1] == '\n' || r->text[r->len - 1] == '\r'))
        r->text[--r->len] = '\0';
    return status;
}

int fy_cli_send(const fy_cli_target_t *t, fy_cli_method_t method, const char *url, const char *body, size_t len, const char *who,
                long *status_out)
{
    static reply_t reply;
    char err[CURL_ERROR_SIZE], password[1024] = "", shown[2048];
    struct curl_slist *headers = NULL;
    CURL *h = NULL;
    int code = FY_CLI_UNREACHABLE;

    *status_out = 0;

    if (t->password_file != NULL && read_password(t->password_file, password, sizeof(password)) != 0) {
        fprintf(stderr, "%s: cannot read --password-file %s: %m\n", who, t->password_file);
        return FY_CLI_USAGE;
    }
    if (t->password_file == NULL && t->password != NULL)
        snprintf(password, sizeof(password), "%s", t->password);
    fy_cli_redact(url, shown, sizeof(shown));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (h = curl_easy_init()) == NULL) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", who);
        goto Exit;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, METHODS[method]); /* a DELETE is a bodiless GET renamed */
    if (method != FY_CLI_DELETE) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, len > 0 ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        headers = curl_slist_append(headers, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
    }
    /* Ferry's lifetime and liveness headers; the Pushgateway ignores headers it does not know. */
    char hdr[64];
    if (t->interval[0] != '\0') {
        snprintf(hdr, sizeof(hdr), "X-Ferry-Interval: %s", t->interval);
        headers = curl_slist_append(headers, hdr);
    }
    if (t->ttl[0] != '\0') {
        snprintf(hdr, sizeof(hdr), "X-Ferry-TTL: %s", t->ttl);
        headers = curl_slist_append(headers, hdr);
    }
    /* No "Expect: 100-continue" round trip for large bodies; the gateway answers at once anyway. */
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ferry/" FY_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (t->username != NULL || t->password_file != NULL || t->password != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        if (t->username != NULL)
            curl_easy_setopt(h, CURLOPT_USERNAME, t->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, password);
    }
    if (t->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file != NULL) { /* a gateway with client_auth_type RequireAndVerifyClientCert */
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file != NULL ? t->key_file : t->cert_file);
    }
    if (t->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    for (unsigned n = 0;; n++) {
        int fatal;
        long status = attempt(h, &reply, err, &fatal);
        *status_out = status;
        code = fy_cli_exit_code(status);
        if (code == FY_CLI_OK)
            break;
        char what[CURL_ERROR_SIZE + REPLY_MAX + 64];
        if (status == 0)
            snprintf(what, sizeof(what), "%s", err);
        else
            snprintf(what, sizeof(what), "HTTP %ld: %s", status, reply.len > 0 ? reply.text : "(empty answer)");
        if (!fy_cli_retryable(status)) {
            fprintf(stderr, "%s: %s %s rejected: %s\n", who, METHODS[method], shown, what);
            break;
        }
        if (fatal) {
            fprintf(stderr, "%s: %s %s failed: %s\n", who, METHODS[method], shown, what);
            break;
        }
        if (n == t->retries) {
            fprintf(stderr, "%s: %s %s failed after %u attempt%s: %s\n", who, METHODS[method], shown, n + 1, n ? "s" : "", what);
            break;
        }
        long wait = fy_cli_backoff_ms(n + 1);
        fprintf(stderr, "%s: attempt %u failed (%s), retrying in %ld ms\n", who, n + 1, what, wait);
        sleep_ms(wait);
    }
Exit:
    curl_slist_free_all(headers);
    if (h != NULL)
        curl_easy_cleanup(h);
    curl_global_cleanup();
    memset(password, 0, sizeof(password));
    return code;
}
