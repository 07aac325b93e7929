/*
 * webconfig.c - owns --web.config.file: decoding the YAML the way gopkg.in/yaml.v2 UnmarshalStrict does (same
 * error texts), the checks exporter-toolkit v0.8.2 runs before serving, the OpenSSL server context with
 * certificate reload, and the basic-auth decision with its cache. See docs/security.md for the behaviour and the
 * places where we deliberately differ from the reference.
 */
#include "webconfig.h"

#include "base64.h"

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                                  */

static void set_err(fy_webcfg_err_t *err, unsigned line, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->line = line;
    snprintf(err->key, sizeof(err->key), "%s", key ? key : "");
}

/* Go's %q for the strings we quote (names, header values): printable ASCII as is, the rest escaped. */
static void go_quote(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3)
        return;
    out[o++] = '"';
    for (; *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* Go's "open <path>: <errno text>": Go's syscall messages are glibc's with a lower-case first letter. */
static void open_error(char *out, size_t cap, const char *path, int e)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s", strerror(e));
    if (msg[0] >= 'A' && msg[0] <= 'Z')
        msg[0] = (char)(msg[0] - 'A' + 'a');
    snprintf(out, cap, "open %s: %s", path, msg);
}

/* filepath.Clean, for config_util.JoinDir(dir, path) = Clean(dir + "/" + path) unless path is empty or absolute. */
static char *go_clean(const char *p)
{
    size_t n = strlen(p);
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    int rooted = p[0] == '/';
    size_t w = 0, r = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        r = 1;
        dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

static char *join_dir(const char *dir, const char *path)
{
    if (path[0] == '\0' || path[0] == '/')
        return strdup(path);
    size_t a = strlen(dir), b = strlen(path);
    char *tmp = malloc(a + b + 2);
    if (!tmp)
        return NULL;
    memcpy(tmp, dir, a);
    tmp[a] = '/';
    memcpy(tmp + a + 1, path, b + 1);
    char *res = go_clean(tmp);
    free(tmp);
    return res;
}

/* filepath.Dir: everything before the last slash, cleaned; "." when there is none. */
static char *go_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = (size_t)(slash - path) + 1;
    char *tmp = strndup(path, n);
    if (!tmp)
        return NULL;
    char *res = go_clean(tmp);
    free(tmp);
    return res;
}

int fy_webcfg_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned char)(x[i] ^ y[i]);
    return acc == 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Strict YAML decoding in yaml.v2's manner                                                                       */

/*
 * yaml.v2 collects type errors ("line N: ...") and keeps going, then returns them all under
 * "yaml: unmarshal errors:"; an error returned by a custom unmarshaler (unknown cipher, curve or TLS version) or a
 * malformed merge aborts at once and is returned bare. dec_t mirrors that.
 */
typedef struct {
    yaml_document_t *doc;
    char terrors[900];
    size_t tlen;
    unsigned first_line;
    char first_key[64];
    int fatal;
    char fatal_msg[512];
    unsigned fatal_line;
    char fatal_key[64];
} dec_t;

static void terror_add(dec_t *d, unsigned line, const char *key, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (d->tlen == 0) {
        d->first_line = line;
        snprintf(d->first_key, sizeof(d->first_key), "%s", key ? key : "");
    }
    int w = snprintf(d->terrors + d->tlen, sizeof(d->terrors) - d->tlen, "\n  line %u: %s", line, buf);
    if (w > 0)
        d->tlen = d->tlen + (size_t)w < sizeof(d->terrors) ? d->tlen + (size_t)w : sizeof(d->terrors) - 1;
}

static void fail(dec_t *d, unsigned line, const char *key, const char *fmt, ...)
{
    if (d->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fatal_msg, sizeof(d->fatal_msg), fmt, ap);
    va_end(ap);
    d->fatal = 1;
    d->fatal_line = line;
    snprintf(d->fatal_key, sizeof(d->fatal_key), "%s", key ? key : "");
}

static unsigned node_line(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static const char *const NULLS[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const TRUES[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
static const char *const FALSES[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
/* What yaml.v2.4 turns into a bool when the target is a bool, even from a quoted string. */
static const char *const COMPAT_TRUE[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", NULL};
static const char *const COMPAT_FALSE[] = {"n", "N", "no", "No", "NO", "off", "Off", "OFF", NULL};

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE)
        return 0;
    if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
        return 1;
    return is_plain(n) && in_list(sval(n), NULLS);
}

static int looks_float(const char *s)
{
    /* yaml.v2's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$, plus .inf and .nan */
    static const char *const SPECIAL[] = {".inf",  ".Inf",  ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                          "-.Inf", "-.INF", ".nan", ".NaN",  ".NAN",  NULL};
    if (in_list(s, SPECIAL))
        return 1;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    int digits = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
        if (!digits)
            return 0;
    } else {
        while (*p >= '0' && *p <= '9')
            p++, digits++;
        if (!digits)
            return 0;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        digits = 0;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
        if (!digits)
            return 0;
    }
    return *p == '\0';
}

static int looks_int(const char *s)
{
    /* strconv.ParseInt(s, 0, 64) after yaml.v2 removed the underscores: sign, then 0x/0o/0b/0-octal or decimal */
    char buf[80];
    size_t w = 0;
    for (const char *p = s; *p && w + 1 < sizeof(buf); p++)
        if (*p != '_')
            buf[w++] = *p;
    buf[w] = '\0';
    const char *p = buf;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    const char *digits = "0123456789";
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        digits = "0123456789abcdefABCDEF", p += 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        digits = "01234567", p += 2;
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
        digits = "01", p += 2;
    else if (p[0] == '0' && p[1])
        digits = "01234567";
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!strchr(digits, *p))
            return 0;
    return 1;
}

/* The short tag yaml.v2 prints in "cannot unmarshal !!tag ..." */
static const char *short_tag(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "!!map";
    if (n->type == YAML_SEQUENCE_NODE)
        return "!!seq";
    if (!is_plain(n))
        return "!!str";
    const char *v = sval(n);
    if (in_list(v, NULLS))
        return "!!null";
    if (in_list(v, TRUES) || in_list(v, FALSES))
        return "!!bool";
    if (looks_int(v))
        return "!!int";
    if (looks_float(v))
        return "!!float";
    return "!!str";
}

/* yaml.v2's decoder.terror: scalars show their value, cut to 7 characters and "..." past 10. */
static void terror(dec_t *d, const yaml_node_t *n, const char *key, const char *type)
{
    if (n->type == YAML_SCALAR_NODE) {
        const char *v = sval(n);
        size_t len = strlen(v);
        if (len > 10)
            terror_add(d, node_line(n), key, "cannot unmarshal %s `%.7s...` into %s", short_tag(n), v, type);
        else
            terror_add(d, node_line(n), key, "cannot unmarshal %s `%s` into %s", short_tag(n), v, type);
    } else {
        terror_add(d, node_line(n), key, "cannot unmarshal %s into %s", short_tag(n), type);
    }
}

static yaml_node_t *node(dec_t *d, int idx)
{
    return yaml_document_get_node(d->doc, idx);
}

/* A string destination: any scalar is taken verbatim, null gives "". Returns 0 (after a type error) otherwise. */
static int dec_string(dec_t *d, const yaml_node_t *n, const char *key, const char *type, char **out)
{
    if (n->type != YAML_SCALAR_NODE) {
        terror(d, n, key, type);
        return 0;
    }
    char *s = strdup(is_null(n) ? "" : sval(n));
    if (!s) {
        fail(d, node_line(n), key, "out of memory");
        return 0;
    }
    free(*out);
    *out = s;
    return 1;
}

static void dec_bool(dec_t *d, const yaml_node_t *n, const char *key, int *out)
{
    if (n->type != YAML_SCALAR_NODE) {
        terror(d, n, key, "bool");
        return;
    }
    const char *v = sval(n);
    if (is_null(n))
        *out = 0;
    else if (is_plain(n) && in_list(v, TRUES))
        *out = 1;
    else if (is_plain(n) && in_list(v, FALSES))
        *out = 0;
    else if (in_list(v, COMPAT_TRUE))
        *out = 1;
    else if (in_list(v, COMPAT_FALSE))
        *out = 0;
    else
        terror(d, n, key, "bool");
}

static int is_merge(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && is_plain(k) && strcmp(sval(k), "<<") == 0;
}

/*
 * Walks a mapping the way yaml.v2 does, including "<<" merges (a map or a list of maps, later entries of the list
 * losing to earlier ones). The visitor gets each key/value pair; mapping-level type errors are reported here.
 */
typedef void (*pair_fn)(dec_t *d, void *ctx, const yaml_node_t *k, const yaml_node_t *v);

static void walk_mapping(dec_t *d, const yaml_node_t *n, const char *type, const char *key, void *ctx, pair_fn fn, int depth)
{
    if (depth > 64) {
        fail(d, node_line(n), key, "yaml: merge nesting too deep");
        return;
    }
    if (n->type != YAML_MAPPING_NODE) {
        terror(d, n, key, type);
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && !d->fatal; p++) {
        yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        if (is_merge(k)) {
            if (v->type == YAML_MAPPING_NODE) {
                walk_mapping(d, v, type, key, ctx, fn, depth + 1);
            } else if (v->type == YAML_SEQUENCE_NODE) {
                yaml_node_item_t *items = v->data.sequence.items.start;
                for (yaml_node_item_t *it = v->data.sequence.items.top; it > items && !d->fatal; it--) {
                    yaml_node_t *m = node(d, it[-1]);
                    if (m->type != YAML_MAPPING_NODE) {
                        fail(d, node_line(m), key, "map merge requires map or sequence of maps as the value");
                        return;
                    }
                    walk_mapping(d, m, type, key, ctx, fn, depth + 1);
                }
            } else {
                fail(d, node_line(v), key, "map merge requires map or sequence of maps as the value");
                return;
            }
            continue;
        }
        fn(d, ctx, k, v);
    }
}

/* Struct decoding: a field table, strict about unknown and repeated fields. */
typedef struct {
    const char *type; /* Go type name for messages, e.g. web.TLSConfig */
    const char *const *fields;
    unsigned done; /* bit per field, reset for every struct mapping (merged maps get their own set, as in yaml.v2) */
    void (*field)(dec_t *d, void *target, int idx, const yaml_node_t *v);
    void *target;
} struct_ctx_t;

/* Keys that exporter-toolkit added after v0.8.2, which Pushgateway 1.11 accepts and Ferry does not implement: still
 * refused (the file would not mean what its author wrote), with yaml.v2's message and a note saying why. */
static const struct {
    const char *type, *field;
} NEWER_FIELDS[] = {
    {"web.Config", "rate_limit"},
    {"web.TLSConfig", "cert"},
    {"web.TLSConfig", "key"},
    {"web.TLSConfig", "client_ca"},
    {"web.TLSConfig", "client_allowed_sans"},
};

static int newer_field(const char *type, const char *name)
{
    for (size_t i = 0; i < sizeof(NEWER_FIELDS) / sizeof(NEWER_FIELDS[0]); i++)
        if (strcmp(NEWER_FIELDS[i].type, type) == 0 && strcmp(NEWER_FIELDS[i].field, name) == 0)
            return 1;
    return 0;
}

static void struct_pair(dec_t *d, void *vctx, const yaml_node_t *k, const yaml_node_t *v)
{
    struct_ctx_t *c = vctx;
    if (k->type != YAML_SCALAR_NODE) {
        terror(d, k, NULL, "string");
        return;
    }
    const char *name = is_null(k) ? "" : sval(k);
    for (int i = 0; c->fields[i]; i++) {
        if (strcmp(name, c->fields[i]) != 0)
            continue;
        if (c->done & (1u << i)) {
            terror_add(d, node_line(k), name, "field %s already set in type %s", name, c->type);
            return;
        }
        c->done |= 1u << i;
        c->field(d, c->target, i, v);
        return;
    }
    if (newer_field(c->type, name))
        terror_add(d, node_line(k), name,
                   "field %s not found in type %s (a key of newer Pushgateway releases that ferry does not support; "
                   "docs/compatibility.md)",
                   name, c->type);
    else
        terror_add(d, node_line(k), name, "field %s not found in type %s", name, c->type);
}

static void dec_struct(dec_t *d, const yaml_node_t *n, const char *key, struct_ctx_t *c, void (*zero)(void *))
{
    if (is_null(n)) {
        /* yaml.v2 sets a null struct to its zero value: the defaults are gone too */
        zero(c->target);
        return;
    }
    c->done = 0;
    walk_mapping(d, n, c->type, key, c, struct_pair, 0);
}

/* ---- the three sections ---- */

typedef struct {
    const char *go;
    const char *ossl; /* NULL: TLS 1.3 suite, which Go does not let cipher_suites restrict */
} cipher_t;

/* Go 1.19's tls.CipherSuites(), the only names exporter-toolkit accepts, with OpenSSL's names. */
static const cipher_t CIPHERS[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_AES_128_GCM_SHA256", NULL},
    {"TLS_AES_256_GCM_SHA384", NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {NULL, NULL},
};

static const struct {
    const char *go, *ossl;
} CURVES[] = {{"CurveP256", "P-256"}, {"CurveP384", "P-384"}, {"CurveP521", "P-521"}, {"X25519", "X25519"}, {NULL, NULL}};

static const struct {
    const char *go;
    int ossl;
} VERSIONS[] = {
    {"TLS13", TLS1_3_VERSION}, {"TLS12", TLS1_2_VERSION}, {"TLS11", TLS1_1_VERSION}, {"TLS10", TLS1_VERSION}, {NULL, 0}};

/* A list element of a type with UnmarshalYAML(&string): null elements are left at zero (we skip them). */
static const char *list_elem(dec_t *d, const yaml_node_t *e, const char *key)
{
    if (is_null(e))
        return NULL;
    if (e->type != YAML_SCALAR_NODE) {
        terror(d, e, key, "string");
        return NULL;
    }
    return sval(e);
}

static void dec_ciphers(dec_t *d, fy_webcfg_t *cfg, const yaml_node_t *v)
{
    cfg->nciphers = 0;
    if (is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        terror(d, v, "cipher_suites", "[]web.Cipher");
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top && !d->fatal; it++) {
        const yaml_node_t *e = node(d, *it);
        const char *s = list_elem(d, e, "cipher_suites");
        if (!s)
            continue;
        int i = 0;
        while (CIPHERS[i].go && strcmp(CIPHERS[i].go, s) != 0)
            i++;
        if (!CIPHERS[i].go) {
            fail(d, node_line(e), "cipher_suites", "unknown cipher: %s", s);
            return;
        }
        if (cfg->nciphers == FY_WEBCFG_MAX_CIPHERS) {
            fail(d, node_line(e), "cipher_suites", "cipher_suites: more than %d entries", FY_WEBCFG_MAX_CIPHERS);
            return;
        }
        cfg->ciphers[cfg->nciphers++] = CIPHERS[i].go;
    }
}

static void dec_curves(dec_t *d, fy_webcfg_t *cfg, const yaml_node_t *v)
{
    cfg->ncurves = 0;
    if (is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        terror(d, v, "curve_preferences", "[]web.Curve");
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top && !d->fatal; it++) {
        const yaml_node_t *e = node(d, *it);
        const char *s = list_elem(d, e, "curve_preferences");
        if (!s)
            continue;
        int i = 0;
        while (CURVES[i].go && strcmp(CURVES[i].go, s) != 0)
            i++;
        if (!CURVES[i].go) {
            fail(d, node_line(e), "curve_preferences", "unknown curve: %s", s);
            return;
        }
        if (cfg->ncurves == FY_WEBCFG_MAX_CURVES) {
            fail(d, node_line(e), "curve_preferences", "curve_preferences: more than %d entries", FY_WEBCFG_MAX_CURVES);
            return;
        }
        cfg->curves[cfg->ncurves++] = CURVES[i].go;
    }
}

static void dec_version(dec_t *d, const yaml_node_t *v, const char *key, int *out)
{
    if (is_null(v)) {
        /* zero TLSVersion: Go then applies its own defaults, TLS 1.0 minimum and TLS 1.3 maximum for a server */
        *out = strcmp(key, "min_version") == 0 ? TLS1_VERSION : TLS1_3_VERSION;
        return;
    }
    if (v->type != YAML_SCALAR_NODE) {
        terror(d, v, key, "string");
        return;
    }
    for (int i = 0; VERSIONS[i].go; i++) {
        if (strcmp(VERSIONS[i].go, sval(v)) == 0) {
            *out = VERSIONS[i].ossl;
            return;
        }
    }
    fail(d, node_line(v), key, "unknown TLS version: %s", sval(v));
}

static const char *const TLS_FIELDS[] = {"cert_file",
                                         "key_file",
                                         "client_auth_type",
                                         "client_ca_file",
                                         "cipher_suites",
                                         "curve_preferences",
                                         "min_version",
                                         "max_version",
                                         "prefer_server_cipher_suites",
                                         NULL};

static void tls_field(dec_t *d, void *target, int idx, const yaml_node_t *v)
{
    fy_webcfg_t *cfg = target;
    switch (idx) {
    case 0:
        dec_string(d, v, "cert_file", "string", &cfg->cert_file);
        break;
    case 1:
        dec_string(d, v, "key_file", "string", &cfg->key_file);
        break;
    case 2:
        dec_string(d, v, "client_auth_type", "string", &cfg->client_auth_name);
        break;
    case 3:
        dec_string(d, v, "client_ca_file", "string", &cfg->client_ca_file);
        break;
    case 4:
        dec_ciphers(d, cfg, v);
        break;
    case 5:
        dec_curves(d, cfg, v);
        break;
    case 6:
        dec_version(d, v, "min_version", &cfg->min_version);
        break;
    case 7:
        dec_version(d, v, "max_version", &cfg->max_version);
        break;
    case 8:
        dec_bool(d, v, "prefer_server_cipher_suites", &cfg->prefer_server_cipher_suites);
        break;
    default:
        assert(0);
    }
}

static void set_str(char **p, const char *s)
{
    free(*p);
    *p = strdup(s);
}

static void tls_zero(void *target)
{
    fy_webcfg_t *cfg = target;
    set_str(&cfg->cert_file, "");
    set_str(&cfg->key_file, "");
    set_str(&cfg->client_auth_name, "");
    set_str(&cfg->client_ca_file, "");
    cfg->nciphers = cfg->ncurves = 0;
    cfg->min_version = TLS1_VERSION; /* zero TLSVersion, see dec_version */
    cfg->max_version = TLS1_3_VERSION;
    cfg->prefer_server_cipher_suites = 0;
}

/* Headers are collected raw and validated after decoding, like validateHeaderConfig after UnmarshalStrict. */
typedef struct {
    char *name[16];
    char *value[16];
    unsigned line[16];
    size_t n;
} raw_headers_t;

typedef struct {
    fy_webcfg_t *cfg;
    raw_headers_t *hdr;
} http_ctx_t;

static void header_pair(dec_t *d, void *vctx, const yaml_node_t *k, const yaml_node_t *v)
{
    raw_headers_t *h = vctx;
    char *name = NULL, *value = NULL;
    if (!dec_string(d, k, NULL, "string", &name))
        return;
    if (!dec_string(d, v, name, "string", &value)) {
        free(name);
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->name[i], name) == 0) {
            char q[200];
            go_quote(q, sizeof(q), name);
            terror_add(d, node_line(v), name, "key %s already set in map", q);
            free(name);
            free(value);
            return;
        }
    }
    if (h->n == sizeof(h->name) / sizeof(h->name[0])) {
        /* more entries than there are distinct allowed headers: one of them cannot be configured */
        fail(d, node_line(k), name, "HTTP header \"%s\" can not be configured", name);
        free(name);
        free(value);
        return;
    }
    h->name[h->n] = name;
    h->value[h->n] = value;
    h->line[h->n] = node_line(k);
    h->n++;
}

static const char *const HTTP_FIELDS[] = {"http2", "headers", NULL};

static void http_field(dec_t *d, void *target, int idx, const yaml_node_t *v)
{
    http_ctx_t *c = target;
    if (idx == 0) {
        dec_bool(d, v, "http2", &c->cfg->http2);
        return;
    }
    for (size_t i = 0; i < c->hdr->n; i++) {
        free(c->hdr->name[i]);
        free(c->hdr->value[i]);
    }
    c->hdr->n = 0;
    if (is_null(v))
        return;
    walk_mapping(d, v, "map[string]string", "headers", c->hdr, header_pair, 0);
}

static void http_zero(void *target)
{
    http_ctx_t *c = target;
    c->cfg->http2 = 0;
    for (size_t i = 0; i < c->hdr->n; i++) {
        free(c->hdr->name[i]);
        free(c->hdr->value[i]);
    }
    c->hdr->n = 0;
}

/* basic_auth_users: map[string]config.Secret; Secret unmarshals through a local type named "plain". */
typedef struct {
    fy_webcfg_t *cfg;
    size_t cap;
    unsigned *lines;
    size_t *hlens; /* the hash's full length: only 60 characters are kept */
} users_ctx_t;

static void user_pair(dec_t *d, void *vctx, const yaml_node_t *k, const yaml_node_t *v)
{
    users_ctx_t *c = vctx;
    fy_webcfg_t *cfg = c->cfg;
    char *name = NULL, *hash = NULL;
    if (!dec_string(d, k, NULL, "string", &name))
        return;
    if (!dec_string(d, v, name, "config.plain", &hash)) {
        free(name);
        return;
    }
    size_t name_len = k->type == YAML_SCALAR_NODE && !is_null(k) ? k->data.scalar.length : 0;
    for (size_t i = 0; i < cfg->nusers; i++) {
        if (cfg->users[i].name_len == name_len && memcmp(cfg->users[i].name, name, name_len) == 0) {
            char q[200];
            go_quote(q, sizeof(q), name);
            terror_add(d, node_line(v), name, "key %s already set in map", q);
            free(name);
            free(hash);
            return;
        }
    }
    if (cfg->nusers == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 8;
        fy_webcfg_user_t *nu = realloc(cfg->users, ncap * sizeof(*nu));
        unsigned *nl = realloc(c->lines, ncap * sizeof(*nl));
        size_t *nh = realloc(c->hlens, ncap * sizeof(*nh));
        if (nu)
            cfg->users = nu;
        if (nl)
            c->lines = nl;
        if (nh)
            c->hlens = nh;
        if (!nu || !nl || !nh) {
            fail(d, node_line(k), name, "out of memory");
            free(name);
            free(hash);
            return;
        }
        c->cap = ncap;
    }
    fy_webcfg_user_t *u = &cfg->users[cfg->nusers];
    u->name = name;
    u->name_len = name_len;
    /* The hash is validated after decoding; keep at most what fits, validation looks at the full length. */
    size_t hl = strlen(hash);
    memset(u->hash, 0, sizeof(u->hash));
    memcpy(u->hash, hash, hl < 60 ? hl : 60);
    c->hlens[cfg->nusers] = hl;
    c->lines[cfg->nusers] = node_line(v);
    cfg->nusers++;
    explicit_bzero(hash, hl);
    free(hash);
}

static void free_users(fy_webcfg_t *cfg)
{
    for (size_t i = 0; i < cfg->nusers; i++) {
        free(cfg->users[i].name);
        explicit_bzero(cfg->users[i].hash, sizeof(cfg->users[i].hash));
    }
    free(cfg->users);
    cfg->users = NULL;
    cfg->nusers = 0;
}

typedef struct {
    fy_webcfg_t *cfg;
    raw_headers_t *hdr;
    users_ctx_t *users;
    int have_server, have_client; /* cluster mode: the sections given (not null) */
} root_ctx_t;

static const char *const ROOT_FIELDS[] = {"tls_server_config", "http_server_config", "basic_auth_users", NULL};

static void root_field(dec_t *d, void *target, int idx, const yaml_node_t *v)
{
    root_ctx_t *r = target;
    if (idx == 0) {
        struct_ctx_t c = {"web.TLSConfig", TLS_FIELDS, 0, tls_field, r->cfg};
        dec_struct(d, v, "tls_server_config", &c, tls_zero);
    } else if (idx == 1) {
        http_ctx_t hc = {r->cfg, r->hdr};
        struct_ctx_t c = {"web.HTTPConfig", HTTP_FIELDS, 0, http_field, &hc};
        dec_struct(d, v, "http_server_config", &c, http_zero);
    } else {
        free_users(r->cfg);
        if (is_null(v))
            return;
        walk_mapping(d, v, "map[string]config.Secret", "basic_auth_users", r->users, user_pair, 0);
    }
}

/* tls_client_config: the part of prometheus/common's config.TLSConfig that takes files */
static const char *const TLSC_FIELDS[] = {"ca_file",     "cert_file",   "key_file", "server_name", "insecure_skip_verify",
                                          "min_version", "max_version", NULL};

static void tlsc_field(dec_t *d, void *target, int idx, const yaml_node_t *v)
{
    fy_webcfg_t *cfg = target;
    switch (idx) {
    case 0:
        dec_string(d, v, "ca_file", "string", &cfg->client_ca_file_peer);
        break;
    case 1:
        dec_string(d, v, "cert_file", "string", &cfg->client_cert_file);
        break;
    case 2:
        dec_string(d, v, "key_file", "string", &cfg->client_key_file);
        break;
    case 3:
        dec_string(d, v, "server_name", "string", &cfg->client_server_name);
        break;
    case 4:
        dec_bool(d, v, "insecure_skip_verify", &cfg->client_insecure);
        break;
    case 5:
        dec_version(d, v, "min_version", &cfg->client_min_version);
        break;
    case 6:
        dec_version(d, v, "max_version", &cfg->client_max_version);
        break;
    default:
        assert(0);
    }
}

static void tlsc_zero(void *target)
{
    (void)target; /* a null section is "missing" (checked after decoding) */
}

/* Alertmanager's cluster.TLSTransportConfig */
static const char *const CLUSTER_ROOT_FIELDS[] = {"tls_server_config", "tls_client_config", NULL};

static void cluster_root_field(dec_t *d, void *target, int idx, const yaml_node_t *v)
{
    root_ctx_t *r = target;
    if (idx == 0) {
        r->have_server = !is_null(v);
        struct_ctx_t c = {"web.TLSConfig", TLS_FIELDS, 0, tls_field, r->cfg};
        dec_struct(d, v, "tls_server_config", &c, tls_zero);
    } else {
        r->have_client = !is_null(v);
        struct_ctx_t c = {"config.TLSConfig", TLSC_FIELDS, 0, tlsc_field, r->cfg};
        dec_struct(d, v, "tls_client_config", &c, tlsc_zero);
    }
}

static void root_zero(void *target)
{
    (void)target; /* a null document leaves the defaults alone: yaml.v2 never touches the value */
}

/* go-yaml's parser.fail(): which line it reports for a syntax error. */
static void yaml_syntax_error(const yaml_parser_t *p, fy_webcfg_err_t *err)
{
    size_t line = 0;
    if (p->problem_mark.line != 0) {
        line = p->problem_mark.line;
        if (p->error == YAML_SCANNER_ERROR)
            line++;
    } else if (p->context_mark.line != 0) {
        line = p->context_mark.line;
    }
    const char *msg = p->problem ? p->problem : "unknown problem parsing YAML content";
    if (line)
        set_err(err, (unsigned)line, NULL, "yaml: line %zu: %s", line, msg);
    else
        set_err(err, 0, NULL, "yaml: %s", msg);
}

/* ---- validation after decoding ---- */

static const struct {
    const char *name;
    const char *wire; /* http.CanonicalHeaderKey(name) */
    const char *allowed[3];
} EXTRA_HEADERS[] = {
    {"Content-Security-Policy", "Content-Security-Policy", {NULL}},
    {"Strict-Transport-Security", "Strict-Transport-Security", {NULL}},
    {"X-Content-Type-Options", "X-Content-Type-Options", {"nosniff", NULL}},
    {"X-Frame-Options", "X-Frame-Options", {"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", "X-Xss-Protection", {NULL}},
};

static int validate_headers(fy_webcfg_t *cfg, raw_headers_t *h, fy_webcfg_err_t *err)
{
    for (size_t i = 0; i < h->n; i++) {
        size_t j = 0;
        while (j < 5 && strcmp(EXTRA_HEADERS[j].name, h->name[i]) != 0)
            j++;
        char qn[200];
        go_quote(qn, sizeof(qn), h->name[i]);
        if (j == 5) {
            set_err(err, h->line[i], h->name[i], "HTTP header %s can not be configured", qn);
            return -1;
        }
        if (EXTRA_HEADERS[j].allowed[0]) {
            int ok = 0;
            char list[120] = "[";
            for (int a = 0; EXTRA_HEADERS[j].allowed[a]; a++) {
                char qa[40];
                go_quote(qa, sizeof(qa), EXTRA_HEADERS[j].allowed[a]);
                if (a)
                    strcat(list, " ");
                strcat(list, qa);
                ok |= strcmp(EXTRA_HEADERS[j].allowed[a], h->value[i]) == 0;
            }
            strcat(list, "]");
            if (!ok) {
                char qv[300];
                go_quote(qv, sizeof(qv), h->value[i]);
                set_err(err, h->line[i], h->name[i], "invalid value for %s. Expected one of: %s, but got: %s", h->name[i], list,
                        qv);
                return -1;
            }
        }
    }
    /* Go writes response headers sorted by name; EXTRA_HEADERS is in that order already. */
    cfg->nheaders = 0;
    for (size_t j = 0; j < 5; j++) {
        for (size_t i = 0; i < h->n; i++) {
            if (strcmp(EXTRA_HEADERS[j].name, h->name[i]) == 0) {
                cfg->headers[cfg->nheaders].name = EXTRA_HEADERS[j].wire;
                cfg->headers[cfg->nheaders].value = h->value[i];
                h->value[i] = NULL; /* ownership moves to cfg */
                cfg->nheaders++;
            }
        }
    }
    return 0;
}

static int bcrypt_char(char c)
{
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* golang.org/x/crypto/bcrypt.Cost(), then our own stricter check: we only verify what crypt_r verifies as bcrypt. */
static int validate_hash(const fy_webcfg_user_t *u, size_t len, unsigned line, fy_webcfg_err_t *err)
{
    const char *h = u->hash;
    if (len < 59) {
        set_err(err, line, u->name, "crypto/bcrypt: hashedSecret too short to be a bcrypted password");
        return -1;
    }
    if (h[0] != '$') {
        set_err(err, line, u->name, "crypto/bcrypt: bcrypt hashes must start with '$', but hashedSecret started with '%c'", h[0]);
        return -1;
    }
    if (h[1] > '2') {
        set_err(err, line, u->name, "crypto/bcrypt: bcrypt algorithm version '%c' requested is newer than current version '2'",
                h[1]);
        return -1;
    }
    size_t n = h[2] != '$' ? 4 : 3;
    char cost_s[3] = {h[n], h[n + 1], 0};
    char *end;
    long cost = strtol(cost_s, &end, 10);
    if (*end != '\0' || cost_s[0] == ' ' || cost_s[0] == '\0' || cost_s[1] == ' ') {
        set_err(err, line, u->name, "strconv.Atoi: parsing \"%s\": invalid syntax", cost_s);
        return -1;
    }
    if (cost < 4 || cost > 31) {
        set_err(err, line, u->name, "crypto/bcrypt: cost %ld is outside allowed range (4,31)", cost);
        return -1;
    }
    int ok = len == 60 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$' && h[6] == '$';
    for (int i = 7; ok && i < 60; i++)
        ok = bcrypt_char(h[i]);
    if (!ok) {
        char q[200];
        go_quote(q, sizeof(q), u->name);
        set_err(err, line, u->name,
                "basic_auth_users: the password of user %s is not a bcrypt hash of the form $2a$, $2b$ or $2y$, "
                "two-digit cost, 53 characters of salt and hash",
                q);
        return -1;
    }
    return 0;
}

static int build_tls(fy_webcfg_t *cfg, fy_webcfg_err_t *err);
static int build_client_tls(fy_webcfg_t *cfg, fy_webcfg_err_t *err);

/* Cluster mode: err->msg gets the section in front, unless it names it already. */
static void err_in(fy_webcfg_err_t *err, const char *section)
{
    if (strstr(err->msg, section) != NULL)
        return;
    char m[sizeof(err->msg)];
    size_t n = strlen(section);
    if (n + 2 >= sizeof(m))
        return;
    memcpy(m, section, n);
    memcpy(m + n, ": ", 2);
    size_t k = strnlen(err->msg, sizeof(m) - n - 3);
    memcpy(m + n + 2, err->msg, k);
    m[n + 2 + k] = '\0';
    memcpy(err->msg, m, sizeof(m));
}

static fy_webcfg_t *parse_mode(const char *path, const char *text, size_t len, fy_webcfg_err_t *err, int cluster)
{
    fy_webcfg_t *cfg = calloc(1, sizeof(*cfg));
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0, ok = 0;
    raw_headers_t hdr = {0};
    users_ctx_t users = {0};
    char *dir = NULL;

    memset(err, 0, sizeof(*err));
    if (!cfg) {
        set_err(err, 0, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&cfg->cache_lock, NULL);
    cfg->path = strdup(path);
    cfg->cert_file = strdup("");
    cfg->key_file = strdup("");
    cfg->client_ca_file = strdup("");
    cfg->client_auth_name = strdup("");
    cfg->min_version = TLS1_2_VERSION;
    cfg->max_version = TLS1_3_VERSION;
    cfg->prefer_server_cipher_suites = 1;
    cfg->http2 = 1;
    cfg->cluster = cluster;
    cfg->client_cert_file = strdup("");
    cfg->client_key_file = strdup("");
    cfg->client_ca_file_peer = strdup("");
    cfg->client_server_name = strdup("");
    cfg->client_min_version = TLS1_2_VERSION;
    cfg->client_max_version = TLS1_3_VERSION;
    users.cfg = cfg;
    if (!cfg->path || !cfg->cert_file || !cfg->key_file || !cfg->client_ca_file || !cfg->client_auth_name ||
        !cfg->client_cert_file || !cfg->client_key_file || !cfg->client_ca_file_peer || !cfg->client_server_name) {
        set_err(err, 0, NULL, "out of memory");
        goto out;
    }

    if (!yaml_parser_initialize(&parser)) {
        set_err(err, 0, NULL, "yaml: cannot initialise the parser");
        goto out;
    }
    have_parser = 1;
    /* go-yaml feeds a lone newline for empty input */
    yaml_parser_set_input_string(&parser, (const unsigned char *)(len ? text : "\n"), len ? len : 1);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_syntax_error(&parser, err);
        goto out;
    }
    have_doc = 1;

    dec_t d = {.doc = &doc};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    root_ctx_t rc = {cfg, &hdr, &users, 0, 0};
    if (root && cluster) {
        struct_ctx_t c = {"cluster.TLSTransportConfig", CLUSTER_ROOT_FIELDS, 0, cluster_root_field, &rc};
        dec_struct(&d, root, NULL, &c, root_zero);
    } else if (root) {
        struct_ctx_t c = {"web.Config", ROOT_FIELDS, 0, root_field, &rc};
        dec_struct(&d, root, NULL, &c, root_zero);
    }
    if (d.fatal) {
        set_err(err, d.fatal_line, d.fatal_key, "%s", d.fatal_msg);
        goto out;
    }
    if (d.tlen) {
        set_err(err, d.first_line, d.first_key, "yaml: unmarshal errors:%s", d.terrors);
        goto out;
    }
    if (validate_headers(cfg, &hdr, err) < 0)
        goto out;

    dir = go_dir(path);
    if (!dir)
        goto out;
    char **paths[] = {&cfg->cert_file,        &cfg->key_file,        &cfg->client_ca_file,
                      &cfg->client_cert_file, &cfg->client_key_file, &cfg->client_ca_file_peer};
    for (size_t i = 0; i < (cluster ? 6u : 3u); i++) {
        char *j = join_dir(dir, *paths[i]);
        if (!j) {
            set_err(err, 0, NULL, "out of memory");
            goto out;
        }
        free(*paths[i]);
        *paths[i] = j;
    }

    int maxcost = 4;
    for (size_t i = 0; i < cfg->nusers; i++) {
        if (validate_hash(&cfg->users[i], users.hlens[i], users.lines[i], err) < 0)
            goto out;
        int cost = (cfg->users[i].hash[4] - '0') * 10 + (cfg->users[i].hash[5] - '0');
        if (cost > maxcost)
            maxcost = cost;
    }
    /* Unknown users pay for one bcrypt at the highest configured cost, so timing cannot tell them apart. */
    snprintf(cfg->dummy_setting, sizeof(cfg->dummy_setting), "$2b$%02u$QOauhQNbBCuQDKes6eFzPe", (unsigned)maxcost % 100u);

    if (getrandom(cfg->cache_salt, sizeof(cfg->cache_salt), 0) != (ssize_t)sizeof(cfg->cache_salt) ||
        getrandom(&cfg->cache_rng, sizeof(cfg->cache_rng), 0) != (ssize_t)sizeof(cfg->cache_rng)) {
        set_err(err, 0, NULL, "getrandom: %s", strerror(errno));
        goto out;
    }
    cfg->cache_rng |= 1;

    cfg->tls_enabled = cfg->cert_file[0] || cfg->key_file[0] || cfg->client_auth_name[0] || cfg->client_ca_file[0];
    if (cluster) {
        /* both sections are required, as in Alertmanager; the server side always serves TLS */
        if (!rc.have_server) {
            set_err(err, 0, "tls_server_config", "missing tls_server_config");
            goto out;
        }
        if (!rc.have_client) {
            set_err(err, 0, "tls_client_config", "missing tls_client_config");
            goto out;
        }
        cfg->tls_enabled = 1;
        if (build_tls(cfg, err) < 0) {
            err_in(err, "tls_server_config");
            goto out;
        }
        if (build_client_tls(cfg, err) < 0) {
            err_in(err, "tls_client_config");
            goto out;
        }
    } else if (cfg->tls_enabled && build_tls(cfg, err) < 0)
        goto out;
    ok = 1;

out:
    for (size_t i = 0; i < hdr.n; i++) {
        free(hdr.name[i]);
        free(hdr.value[i]);
    }
    free(users.lines);
    free(users.hlens);
    free(dir);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    if (!ok) {
        if (!err->msg[0])
            set_err(err, 0, NULL, "out of memory");
        fy_webcfg_free(cfg);
        return NULL;
    }
    return cfg;
}

fy_webcfg_t *fy_webcfg_parse(const char *path, const char *text, size_t len, fy_webcfg_err_t *err)
{
    return parse_mode(path, text, len, err, 0);
}

fy_webcfg_t *fy_webcfg_parse_cluster(const char *path, const char *text, size_t len, fy_webcfg_err_t *err)
{
    return parse_mode(path, text, len, err, 1);
}

static fy_webcfg_t *load_mode(const char *path, fy_webcfg_err_t *err, int cluster)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    fy_webcfg_t *cfg = NULL;

    memset(err, 0, sizeof(*err));
    if (!f) {
        open_error(err->msg, sizeof(err->msg), path, errno);
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                set_err(err, 0, NULL, "out of memory");
                goto out;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) {
                snprintf(err->msg, sizeof(err->msg), "read %s: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    cfg = parse_mode(path, buf, len, err, cluster);
out:
    fclose(f);
    if (buf)
        explicit_bzero(buf, len);
    free(buf);
    return cfg;
}

fy_webcfg_t *fy_webcfg_load(const char *path, fy_webcfg_err_t *err)
{
    return load_mode(path, err, 0);
}

fy_webcfg_t *fy_webcfg_load_cluster(const char *path, fy_webcfg_err_t *err)
{
    return load_mode(path, err, 1);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* TLS                                                                                                            */

/* What the handshake callbacks use. Owned by the SSL_CTX (ex_data, freed with it), not by the configuration: every
 * connection holds a reference to its SSL_CTX, so a handshake that is still in progress, or a connection's later
 * callbacks, find this state alive after a reload has freed the configuration it came from. */
struct fy_webcfg_tls_state {
    pthread_mutex_t lock;
    char *cert_file, *key_file; /* copies of the configuration's, for the reload check */
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
    struct stat cert_st, key_st;
    time_t last_check; /* CLOCK_MONOTONIC seconds */
    unsigned generation;
    const unsigned char *alpn; /* wire format */
    unsigned alpn_len;
};

static const unsigned char ALPN_H2[] = "\x02h2\x08http/1.1";
static const unsigned char ALPN_H1[] = "\x08http/1.1";

/* tls.LoadX509KeyPair: the first PEM certificate is the leaf, the rest its chain; the key must match the leaf. */
static int load_pair(const char *cert_file, const char *key_file, X509 **leaf, STACK_OF(X509) * *chain, EVP_PKEY **key, char *msg,
                     size_t cap)
{
    BIO *b = NULL;
    int rc = -1;
    *leaf = NULL;
    *chain = NULL;
    *key = NULL;

    if (!(b = BIO_new_file(cert_file, "r"))) {
        char e[300];
        open_error(e, sizeof(e), cert_file, errno);
        snprintf(msg, cap, "failed to load X509KeyPair: %s", e);
        goto out;
    }
    *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (!*leaf) {
        snprintf(msg, cap, "failed to load X509KeyPair: tls: failed to find any PEM data in certificate input");
        goto out;
    }
    *chain = sk_X509_new_null();
    if (!*chain)
        goto oom;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(*chain, x)) {
            X509_free(x);
            goto oom;
        }
    }
    ERR_clear_error();
    BIO_free(b);
    if (!(b = BIO_new_file(key_file, "r"))) {
        char e[300];
        open_error(e, sizeof(e), key_file, errno);
        snprintf(msg, cap, "failed to load X509KeyPair: %s", e);
        goto out;
    }
    *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (!*key) {
        snprintf(msg, cap, "failed to load X509KeyPair: tls: failed to find any PEM data in key input");
        goto out;
    }
    if (X509_check_private_key(*leaf, *key) != 1) {
        snprintf(msg, cap, "failed to load X509KeyPair: tls: private key does not match public key");
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(msg, cap, "failed to load X509KeyPair: out of memory");
out:
    ERR_clear_error();
    BIO_free(b);
    if (rc < 0) {
        X509_free(*leaf);
        sk_X509_pop_free(*chain, X509_free);
        EVP_PKEY_free(*key);
        *leaf = NULL;
        *chain = NULL;
        *key = NULL;
    }
    return rc;
}

static int tls_state_index = -1;
static pthread_once_t tls_state_once = PTHREAD_ONCE_INIT;

static void tls_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    fy_webcfg_tls_state_t *st = ptr;
    if (st == NULL) /* called for every SSL_CTX, ours or not */
        return;
    X509_free(st->cert);
    sk_X509_pop_free(st->chain, X509_free);
    EVP_PKEY_free(st->key);
    free(st->cert_file);
    free(st->key_file);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void tls_state_register(void)
{
    tls_state_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_state_free);
}

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Called with st->lock held: reload the pair if either file changed. A pair that fails to load (e.g. caught between
 * the two renames of a rotation) is not taken; the old one keeps serving and the next check tries again. */
static void maybe_reload(fy_webcfg_tls_state_t *st, int force)
{
    time_t now = mono_now();
    if (!force && now - st->last_check < FY_WEBCFG_CERT_CHECK_INTERVAL)
        return;
    st->last_check = now;
    struct stat cs, ks;
    if (stat(st->cert_file, &cs) != 0 || stat(st->key_file, &ks) != 0)
        return;
    if (same_file(&cs, &st->cert_st) && same_file(&ks, &st->key_st))
        return;
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    char msg[512];
    if (load_pair(st->cert_file, st->key_file, &leaf, &chain, &key, msg, sizeof(msg)) < 0)
        return;
    X509_free(st->cert);
    sk_X509_pop_free(st->chain, X509_free);
    EVP_PKEY_free(st->key);
    st->cert = leaf;
    st->chain = chain;
    st->key = key;
    st->cert_st = cs;
    st->key_st = ks;
    st->generation++;
}

static int cert_cb(SSL *ssl, void *arg)
{
    fy_webcfg_tls_state_t *st = arg;
    pthread_mutex_lock(&st->lock);
    maybe_reload(st, 0);
    int ok = SSL_use_cert_and_key(ssl, st->cert, st->key, st->chain, 1);
    pthread_mutex_unlock(&st->lock);
    return ok == 1 ? 1 : 0;
}

static int accept_any_cert(int preverify, X509_STORE_CTX *ctx)
{
    (void)preverify;
    (void)ctx;
    return 1;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    fy_webcfg_tls_state_t *st = arg;
    /* server preference, as Go's negotiateALPN */
    for (unsigned i = 0; i < st->alpn_len; i += 1u + st->alpn[i]) {
        const unsigned char *p = st->alpn + i;
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break;
            if (in[j] == p[0] && memcmp(in + j + 1, p + 1, p[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

const char *fy_webcfg_alpn(const fy_webcfg_t *cfg, size_t i)
{
    static const char *const H2[] = {"h2", "http/1.1", NULL};
    static const char *const H1[] = {"http/1.1", NULL};
    const char *const *l = cfg->http2 ? H2 : H1;
    size_t n = cfg->http2 ? 2 : 1;
    return i < n ? l[i] : NULL;
}

/* The checks and the context of ConfigToTLSConfig, in its order. */
static int build_tls(fy_webcfg_t *cfg, fy_webcfg_err_t *err)
{
    SSL_CTX *ctx = NULL;
    fy_webcfg_tls_state_t *st = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;

    if (!cfg->cert_file[0]) {
        set_err(err, 0, "cert_file", "missing cert_file");
        return -1;
    }
    if (!cfg->key_file[0]) {
        set_err(err, 0, "key_file", "missing key_file");
        return -1;
    }
    if (load_pair(cfg->cert_file, cfg->key_file, &leaf, &chain, &key, err->msg, sizeof(err->msg)) < 0) {
        snprintf(err->key, sizeof(err->key), "cert_file");
        return -1;
    }

    pthread_once(&tls_state_once, tls_state_register);
    if (tls_state_index < 0 || !(ctx = SSL_CTX_new(TLS_server_method())) || !(st = calloc(1, sizeof(*st))) ||
        !(st->cert_file = strdup(cfg->cert_file)) || !(st->key_file = strdup(cfg->key_file))) {
        set_err(err, 0, NULL, "SSL_CTX_new failed");
        if (st) {
            free(st->cert_file);
            free(st);
        }
        goto out;
    }
    pthread_mutex_init(&st->lock, NULL);
    if (SSL_CTX_set_ex_data(ctx, tls_state_index, st) != 1) {
        set_err(err, 0, NULL, "SSL_CTX_set_ex_data failed");
        pthread_mutex_destroy(&st->lock);
        free(st->cert_file);
        free(st->key_file);
        free(st);
        goto out;
    }
    /* from here on st belongs to ctx (tls_state_free) */
    st->cert = leaf;
    st->chain = chain;
    st->key = key;
    leaf = NULL;
    chain = NULL;
    key = NULL;
    stat(cfg->cert_file, &st->cert_st);
    stat(cfg->key_file, &st->key_st);
    st->last_check = mono_now();
    st->generation = 1;
    st->alpn = cfg->http2 ? ALPN_H2 : ALPN_H1;
    st->alpn_len = cfg->http2 ? sizeof(ALPN_H2) - 1 : sizeof(ALPN_H1) - 1;
    cfg->tls = st;
    cfg->ssl_ctx = ctx;

    if (cfg->client_ca_file[0]) {
        BIO *b = BIO_new_file(cfg->client_ca_file, "r");
        if (!b) {
            open_error(err->msg, sizeof(err->msg), cfg->client_ca_file, errno);
            snprintf(err->key, sizeof(err->key), "client_ca_file");
            goto out;
        }
        /* AppendCertsFromPEM: take every certificate found, ignore the rest, even if that is nothing */
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509 *x;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(store, x);
            SSL_CTX_add_client_CA(ctx, x);
            X509_free(x);
        }
        ERR_clear_error();
        BIO_free(b);
    }

    int mode;
    const char *ca = cfg->client_auth_name;
    if (strcmp(ca, "RequestClientCert") == 0)
        cfg->client_auth = FY_CLIENT_AUTH_REQUEST;
    else if (strcmp(ca, "RequireAnyClientCert") == 0 || strcmp(ca, "RequireClientCert") == 0)
        cfg->client_auth = FY_CLIENT_AUTH_REQUIRE_ANY;
    else if (strcmp(ca, "VerifyClientCertIfGiven") == 0)
        cfg->client_auth = FY_CLIENT_AUTH_VERIFY_IF_GIVEN;
    else if (strcmp(ca, "RequireAndVerifyClientCert") == 0)
        cfg->client_auth = FY_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    else if (ca[0] == '\0' || strcmp(ca, "NoClientCert") == 0)
        cfg->client_auth = FY_CLIENT_AUTH_NONE;
    else {
        set_err(err, 0, "client_auth_type", "Invalid ClientAuth: %s", ca);
        goto out;
    }
    if (cfg->client_ca_file[0] && cfg->client_auth == FY_CLIENT_AUTH_NONE) {
        set_err(err, 0, "client_ca_file", "Client CA's have been configured without a Client Auth Policy");
        goto out;
    }
    /* Go starts and then fails every handshake; we refuse the configuration instead. */
    if (cfg->min_version > cfg->max_version) {
        set_err(err, 0, "min_version", "tls_server_config: min_version is newer than max_version");
        goto out;
    }

    switch (cfg->client_auth) {
    case FY_CLIENT_AUTH_NONE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case FY_CLIENT_AUTH_REQUEST:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
        break;
    case FY_CLIENT_AUTH_REQUIRE_ANY:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_cert);
        break;
    case FY_CLIENT_AUTH_VERIFY_IF_GIVEN:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case FY_CLIENT_AUTH_REQUIRE_AND_VERIFY:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    /* Go verifies client certificates against the system roots when no client CA file is given. */
    if ((cfg->client_auth == FY_CLIENT_AUTH_VERIFY_IF_GIVEN || cfg->client_auth == FY_CLIENT_AUTH_REQUIRE_AND_VERIFY) &&
        !cfg->client_ca_file[0])
        SSL_CTX_set_default_verify_paths(ctx);

    mode = cfg->min_version;
    int only13 = 0;
    if (cfg->nciphers) {
        char list[1024] = "";
        for (size_t i = 0; i < cfg->nciphers; i++) {
            for (int j = 0; CIPHERS[j].go; j++) {
                if (strcmp(CIPHERS[j].go, cfg->ciphers[i]) == 0 && CIPHERS[j].ossl) {
                    if (list[0])
                        strcat(list, ":");
                    strcat(list, CIPHERS[j].ossl);
                }
            }
        }
        if (list[0]) {
            if (SSL_CTX_set_cipher_list(ctx, list) != 1) {
                set_err(err, 0, "cipher_suites", "cipher_suites: OpenSSL accepts none of %s", list);
                goto out;
            }
        } else {
            only13 = 1; /* Go: no suite left for TLS <= 1.2, so only TLS 1.3 handshakes can succeed */
        }
    } else {
        /* Go's defaults are the secure suites; OpenSSL's DEFAULT also offers e.g. DHE and CCM, which Go never does */
        char list[1024] = "";
        for (int j = 0; CIPHERS[j].go; j++) {
            if (CIPHERS[j].ossl) {
                if (list[0])
                    strcat(list, ":");
                strcat(list, CIPHERS[j].ossl);
            }
        }
        SSL_CTX_set_cipher_list(ctx, list);
    }
    if (only13 && mode < TLS1_3_VERSION)
        mode = TLS1_3_VERSION;
    if (mode > cfg->max_version) {
        set_err(err, 0, "cipher_suites", "cipher_suites: only TLS 1.3 suites given but max_version is below TLS13");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, mode);
    SSL_CTX_set_max_proto_version(ctx, cfg->max_version);

    if (cfg->ncurves) {
        char list[128] = "";
        for (size_t i = 0; i < cfg->ncurves; i++) {
            for (int j = 0; CURVES[j].go; j++) {
                if (strcmp(CURVES[j].go, cfg->curves[i]) == 0) {
                    if (list[0])
                        strcat(list, ":");
                    strcat(list, CURVES[j].ossl);
                }
            }
        }
        if (SSL_CTX_set1_groups_list(ctx, list) != 1) {
            set_err(err, 0, "curve_preferences", "curve_preferences: OpenSSL rejected %s", list);
            goto out;
        }
    }
    long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (cfg->prefer_server_cipher_suites)
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(ctx, opts);

    if (SSL_CTX_use_cert_and_key(ctx, st->cert, st->key, st->chain, 1) != 1) {
        set_err(err, 0, "cert_file", "failed to load X509KeyPair: OpenSSL refused the certificate");
        goto out;
    }
    SSL_CTX_set_cert_cb(ctx, cert_cb, st);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, st);
    rc = 0;
out:
    ERR_clear_error();
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    if (rc < 0 && !cfg->ssl_ctx)
        SSL_CTX_free(ctx); /* and st with it, if it was attached */
    return rc;
}

/* tls_client_config (cluster mode): the context a replica dials its peers with. The name to check (server_name or
 * the peer's host) is set per connection by the caller; here only the trust (ca_file, else the system's roots, or
 * nothing with insecure_skip_verify) and the certificate it presents. */
static int build_client_tls(fy_webcfg_t *cfg, fy_webcfg_err_t *err)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;
    if (cfg->client_cert_file[0] && !cfg->client_key_file[0]) {
        set_err(err, 0, "key_file", "client cert file \"%s\" specified without client key file", cfg->client_cert_file);
        return -1;
    }
    if (cfg->client_key_file[0] && !cfg->client_cert_file[0]) {
        set_err(err, 0, "cert_file", "client key file \"%s\" specified without client cert file", cfg->client_key_file);
        return -1;
    }
    if (cfg->client_min_version > cfg->client_max_version) {
        set_err(err, 0, "min_version", "min_version is newer than max_version");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        set_err(err, 0, NULL, "SSL_CTX_new failed");
        return -1;
    }
    if (cfg->client_ca_file_peer[0]) {
        BIO *b = BIO_new_file(cfg->client_ca_file_peer, "r");
        if (!b) {
            char e[300];
            open_error(e, sizeof(e), cfg->client_ca_file_peer, errno);
            set_err(err, 0, "ca_file", "unable to load specified CA cert %s: %s", cfg->client_ca_file_peer, e);
            goto out;
        }
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509 *x;
        int n = 0;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            n += X509_STORE_add_cert(store, x) == 1;
            X509_free(x);
        }
        BIO_free(b);
        if (n == 0) {
            set_err(err, 0, "ca_file", "unable to use specified CA cert %s", cfg->client_ca_file_peer);
            goto out;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (cfg->client_cert_file[0]) {
        if (load_pair(cfg->client_cert_file, cfg->client_key_file, &leaf, &chain, &key, err->msg, sizeof(err->msg)) < 0) {
            snprintf(err->key, sizeof(err->key), "cert_file");
            goto out;
        }
        if (SSL_CTX_use_cert_and_key(ctx, leaf, key, chain, 1) != 1) {
            set_err(err, 0, "cert_file", "failed to load X509KeyPair: OpenSSL refused the certificate");
            goto out;
        }
    }
    SSL_CTX_set_verify(ctx, cfg->client_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(ctx, cfg->client_min_version);
    SSL_CTX_set_max_proto_version(ctx, cfg->client_max_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    cfg->client_ssl_ctx = ctx;
    ctx = NULL;
    rc = 0;
out:
    ERR_clear_error();
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return rc;
}

unsigned fy_webcfg_cert_generation(fy_webcfg_t *cfg)
{
    if (!cfg->tls)
        return 0;
    pthread_mutex_lock(&cfg->tls->lock);
    unsigned g = cfg->tls->generation;
    pthread_mutex_unlock(&cfg->tls->lock);
    return g;
}

X509 *fy_webcfg_current_cert(fy_webcfg_t *cfg, int force)
{
    if (!cfg->tls)
        return NULL;
    pthread_mutex_lock(&cfg->tls->lock);
    maybe_reload(cfg->tls, force);
    X509 *x = cfg->tls->cert;
    X509_up_ref(x);
    pthread_mutex_unlock(&cfg->tls->lock);
    return x;
}

int fy_webcfg_looks_like_http(const void *first_bytes, size_t len)
{
    static const char *const PREFIXES[] = {"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"};
    if (len < 5)
        return 0;
    for (size_t i = 0; i < 5; i++)
        if (memcmp(first_bytes, PREFIXES[i], 5) == 0)
            return 1;
    return 0;
}

void fy_webcfg_free(fy_webcfg_t *cfg)
{
    if (!cfg)
        return;
    if (cfg->ssl_ctx)
        SSL_CTX_free(cfg->ssl_ctx);
    SSL_CTX_free(cfg->client_ssl_ctx);
    free(cfg->client_cert_file);
    free(cfg->client_key_file);
    free(cfg->client_ca_file_peer);
    free(cfg->client_server_name);
    for (size_t i = 0; i < cfg->nheaders; i++)
        free((char *)cfg->headers[i].value);
    free_users(cfg);
    free(cfg->path);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->client_ca_file);
    free(cfg->client_auth_name);
    explicit_bzero(cfg->cache, sizeof(cfg->cache));
    explicit_bzero(cfg->cache_salt, sizeof(cfg->cache_salt));
    pthread_mutex_destroy(&cfg->cache_lock);
    free(cfg);
}

int fy_webcfg_reload_check(const fy_webcfg_t *cur, const fy_webcfg_t *next, fy_webcfg_err_t *err)
{
    memset(err, 0, sizeof(*err));
    if (!cur->tls_enabled == !next->tls_enabled)
        return 0;
    set_err(err, 0, "tls_server_config", "a reload cannot turn TLS %s (restart Ferry for that)", cur->tls_enabled ? "off" : "on");
    return -1;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Basic auth                                                                                                     */

const fy_webcfg_header_t fy_webcfg_401_headers[3] = {
    {"Content-Type", "text/plain; charset=utf-8"},
    {"Www-Authenticate", "Basic"},
    {"X-Content-Type-Options", "nosniff"},
};

/* The caches' key: a salted SHA-256 of (user name, stored hash, password); for a user that does not exist, the name
 * asked for and no hash. */
static void cache_key(fy_webcfg_t *cfg, const char *name, size_t name_len, const char *hash60, const unsigned char *pw,
                      size_t pwlen, uint8_t out[32])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint64_t lens[3] = {name_len, hash60 != NULL ? 60 : 0, pwlen};
    unsigned olen = 32;
    /* length-prefixed, so no two different triples hash the same input */
    if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(m, cfg->cache_salt, sizeof(cfg->cache_salt)) != 1 ||
        EVP_DigestUpdate(m, lens, sizeof(lens)) != 1 || EVP_DigestUpdate(m, name, name_len) != 1 ||
        (hash60 != NULL && EVP_DigestUpdate(m, hash60, 60) != 1) || EVP_DigestUpdate(m, pw, pwlen) != 1 ||
        EVP_DigestFinal_ex(m, out, &olen) != 1) {
        /* a key no lookup can match: the request simply pays for bcrypt */
        memset(out, 0, 32);
        out[0] = 1;
    }
    EVP_MD_CTX_free(m);
}

static int fail_cache_has(fy_webcfg_t *cfg, const uint8_t key[32])
{
    int hit = 0;
    pthread_mutex_lock(&cfg->cache_lock);
    for (size_t i = 0; i < cfg->nfail && !hit; i++) /* not constant-time: a failure reveals nothing worth hiding */
        hit = memcmp(cfg->fail_cache[i], key, 32) == 0;
    pthread_mutex_unlock(&cfg->cache_lock);
    return hit;
}

static void fail_cache_put(fy_webcfg_t *cfg, const uint8_t key[32])
{
    pthread_mutex_lock(&cfg->cache_lock);
    memcpy(cfg->fail_cache[cfg->fail_next], key, 32);
    cfg->fail_next = (cfg->fail_next + 1) % FY_WEBCFG_FAIL_CACHE_SIZE;
    if (cfg->nfail < FY_WEBCFG_FAIL_CACHE_SIZE)
        cfg->nfail++;
    pthread_mutex_unlock(&cfg->cache_lock);
}

size_t fy_webcfg_fail_cache_count(fy_webcfg_t *cfg)
{
    pthread_mutex_lock(&cfg->cache_lock);
    size_t n = cfg->nfail;
    pthread_mutex_unlock(&cfg->cache_lock);
    return n;
}

static int cache_has(fy_webcfg_t *cfg, const uint8_t key[32])
{
    int hit = 0;
    pthread_mutex_lock(&cfg->cache_lock);
    for (size_t i = 0; i < cfg->ncache; i++)
        hit |= fy_webcfg_ct_equal(cfg->cache[i], key, 32);
    pthread_mutex_unlock(&cfg->cache_lock);
    return hit;
}

static void cache_put(fy_webcfg_t *cfg, const uint8_t key[32])
{
    pthread_mutex_lock(&cfg->cache_lock);
    if (cfg->ncache == FY_WEBCFG_CACHE_SIZE) {
        /* like the reference: when full, drop a tenth (plus one) of the entries at random */
        for (size_t k = 0; k <= FY_WEBCFG_CACHE_SIZE / 10 && cfg->ncache; k++) {
            cfg->cache_rng ^= cfg->cache_rng << 13;
            cfg->cache_rng ^= cfg->cache_rng >> 7;
            cfg->cache_rng ^= cfg->cache_rng << 17;
            size_t victim = (size_t)(cfg->cache_rng % cfg->ncache);
            memcpy(cfg->cache[victim], cfg->cache[cfg->ncache - 1], 32);
            cfg->ncache--;
        }
    }
    memcpy(cfg->cache[cfg->ncache++], key, 32);
    pthread_mutex_unlock(&cfg->cache_lock);
}

size_t fy_webcfg_cache_count(fy_webcfg_t *cfg)
{
    pthread_mutex_lock(&cfg->cache_lock);
    size_t n = cfg->ncache;
    pthread_mutex_unlock(&cfg->cache_lock);
    return n;
}

/*
 * One bcrypt through libxcrypt. Go's bcrypt treats $2a$, $2b$ and $2y$ alike, so we always compute with $2b$ (the
 * correct algorithm in libxcrypt: no $2a$ 8-bit "safety" tweak) and compare only the 31 hash characters, as Go
 * compares only the hash part. Returns 1 on match.
 */
static int bcrypt_verify(const char *setting29, const char *stored_hash31, const char *pw)
{
    char setting[30];
    int match = 0;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd)
        return 0;
    memcpy(setting, "$2b$", 4);
    memcpy(setting + 4, setting29 + 4, 25);
    setting[29] = '\0';
    const char *out = crypt_r(pw, setting, cd);
    if (out && strlen(out) == 60 && out[0] == '$')
        match = stored_hash31 ? fy_webcfg_ct_equal(out + 29, stored_hash31, 31) : 0;
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return match;
}

fy_auth_result_t fy_webcfg_auth_begin(fy_webcfg_t *cfg, const char *authorization, size_t len, fy_auth_job_t *job)
{
    static const char PREFIX[] = "Basic ";
    unsigned char *buf = NULL;
    fy_auth_result_t res = FY_AUTH_DENY;

    memset(job, 0, sizeof(*job));
    if (cfg->nusers == 0)
        return FY_AUTH_ALLOW;
    if (!authorization || len < 6 || strncasecmp(authorization, PREFIX, 6) != 0)
        return FY_AUTH_DENY;
    buf = malloc(len + 1);
    if (!buf)
        return FY_AUTH_DENY;
    size_t n, bad_at;
    if (fy_base64_decode(FY_BASE64_STD, authorization + 6, len - 6, (char *)buf, &n, &bad_at) != 0)
        goto out;
    unsigned char *colon = memchr(buf, ':', (size_t)n);
    if (!colon)
        goto out;
    size_t ulen = (size_t)(colon - buf);
    const unsigned char *pw = colon + 1;
    size_t pwlen = (size_t)n - ulen - 1;
    buf[n] = '\0';

    /* Look at every user, so the scan takes as long whoever is asked for. */
    const fy_webcfg_user_t *found = NULL;
    for (size_t i = 0; i < cfg->nusers; i++) {
        const fy_webcfg_user_t *u = &cfg->users[i];
        int eq = u->name_len == ulen && fy_webcfg_ct_equal(u->name, buf, ulen);
        if (eq && !found)
            found = u;
    }
    /* crypt_r takes a C string; a password with a NUL byte cannot be checked the way Go would, so it fails. */
    job->has_nul = memchr(pw, '\0', pwlen) != NULL;
    job->user = found;
    if (found != NULL)
        cache_key(cfg, found->name, found->name_len, found->hash, pw, pwlen, job->key);
    else
        cache_key(cfg, (const char *)buf, ulen, NULL, pw, pwlen, job->key);
    if (found != NULL && !job->has_nul && cache_has(cfg, job->key)) {
        res = FY_AUTH_ALLOW;
        goto out;
    }
    if (fail_cache_has(cfg, job->key)) {
        res = FY_AUTH_DENY_RECENT;
        goto out;
    }
    if ((job->pw = malloc(pwlen + 1)) == NULL)
        goto out;
    memcpy(job->pw, pw, pwlen + 1);
    job->pwlen = pwlen;
    res = FY_AUTH_HASH;
out:
    if (res != FY_AUTH_HASH)
        explicit_bzero(job->key, sizeof(job->key));
    explicit_bzero(buf, len + 1);
    free(buf);
    return res;
}

void fy_webcfg_auth_job_free(fy_auth_job_t *job)
{
    if (job->pw != NULL) {
        explicit_bzero(job->pw, job->pwlen);
        free(job->pw);
    }
    explicit_bzero(job, sizeof(*job));
}

fy_auth_result_t fy_webcfg_auth_hash(fy_webcfg_t *cfg, fy_auth_job_t *job)
{
    fy_auth_result_t res = FY_AUTH_DENY;
    if (job->user == NULL) {
        bcrypt_verify(cfg->dummy_setting, NULL, job->pw);
    } else if (bcrypt_verify(job->user->hash, job->user->hash + 29, job->pw) && !job->has_nul) {
        cache_put(cfg, job->key);
        res = FY_AUTH_ALLOW;
    }
    if (res == FY_AUTH_DENY)
        fail_cache_put(cfg, job->key);
    fy_webcfg_auth_job_free(job);
    return res;
}

fy_auth_result_t fy_webcfg_check_basic_auth(fy_webcfg_t *cfg, const char *authorization, size_t len)
{
    fy_auth_job_t job;
    fy_auth_result_t r = fy_webcfg_auth_begin(cfg, authorization, len, &job);
    return r == FY_AUTH_HASH ? fy_webcfg_auth_hash(cfg, &job) : r == FY_AUTH_DENY_RECENT ? FY_AUTH_DENY : r;
}
