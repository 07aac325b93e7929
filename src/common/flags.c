/*
 * flags.c: kingpin v2 semantics as Pushgateway 1.5.1 shows them: errors come before --help/--version, a bool flag
 * takes no "=value" (the value becomes an unexpected argument), a non-repeatable flag given twice is an error, a
 * value that looks like a flag is a missing argument. Defaults follow upstream 1.5.1 (persistence file empty).
 */
#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

typedef enum { T_BOOL, T_STRING, T_DURATION, T_LOGLEVEL, T_LOGFORMAT, T_URL, T_UINT, T_LISTEN, T_PEER } flag_type_t;

typedef struct st_flag_def_t {
    const char *name;
    flag_type_t type;
    const char *def;
    const char *help;
} flag_def_t;

/* Sorted by name: the order of /api/v1/status and of the help text is this table's order. */
static const flag_def_t defs[] = {
    {"cluster.ack-timeout", T_DURATION, "5s",
     "A change not held by the write quorum this long after it was taken is answered 503 (it may still spread)."},
    {"cluster.advertise-address", T_STRING, "",
     "The address peers reach this replica at, if --cluster.listen-address is not it (recognising itself in --cluster.peer)."},
    {"cluster.label", T_STRING, "", "A name every replica of one cluster shares; a peer with another label is refused."},
    {"cluster.listen-address", T_STRING, "",
     "HOST:PORT for replication between replicas. Empty (the default): no cluster, a single node as always."},
    {"cluster.max-clock-offset", T_DURATION, "500ms",
     "A peer whose clock runs further ahead than this is refused (its stamps would drag every replica's forward)."},
    {"cluster.peer", T_PEER, "", "HOST:PORT of a replica's --cluster.listen-address; repeatable; may include this replica."},
    {"cluster.peer-timeout", T_DURATION, "2s", "A peer link that carries nothing (heartbeats included) this long is dropped."},
    {"cluster.replicas", T_UINT, "0",
     "Replicas in the cluster, for the write quorum. 0: the distinct --cluster.peer addresses, this replica counted once."},
    {"cluster.tls-config", T_STRING, "",
     "[EXPERIMENTAL] File with tls_server_config and tls_client_config (Alertmanager's format): TLS on the peer links."},
    {"cluster.tombstone-retention", T_DURATION, "1h",
     "How long a deleted group's tombstone is kept, so that an older change arriving late cannot bring it back; a "
     "replica cut off for longer drops its state when it returns. At least --cluster.ack-timeout + 2 x "
     "--cluster.peer-timeout."},
    {"cluster.write-quorum", T_STRING, "majority",
     "Replicas (counting the one that took it) that must hold a change before it is acknowledged: majority, all or N."},
    {"log.format", T_LOGFORMAT, "logfmt", "Output format of log messages. One of: [logfmt, json]"},
    {"log.level", T_LOGLEVEL, "info", "Only log messages with the given severity or above. One of: [debug, info, warn, error]"},
    {"persistence.allow-bad-file", T_BOOL, "false",
     "Start with an empty store when the persistence file cannot be read (default: refuse to start)."},
    {"persistence.durable", T_BOOL, "false",
     "Acknowledge a push, delete or wipe only once it is on disk (write-ahead log next to the persistence file)."},
    {"persistence.file", T_STRING, "", "File to persist metrics. If empty, metrics are only kept in memory."},
    {"persistence.interval", T_DURATION, "5m", "The minimum interval at which to write out the persistence file."},
    {"push.default-interval", T_DURATION, "0s",
     "Expected push interval of groups that declare none (X-Ferry-Interval); gives every group push_alive. 0s: none."},
    {"push.default-ttl", T_DURATION, "0s",
     "Groups that declare no TTL (X-Ferry-TTL) are deleted this long after their last push. 0s: never."},
    {"push.disable-consistency-check", T_BOOL, "false", "Do not check consistency of pushed metrics. DANGEROUS."},
    {"push.enable-utf8-names", T_BOOL, "false",
     "Allow UTF-8 characters in metric and label names (Pushgateway 1.11): quoted names in text pushes, U__ escapes "
     "in grouping-key label names."},
    {"push.interval-grace", T_DURATION, "30s",
     "push_alive stays 1 for this long after a group's declared push interval has passed."},
    {"push.max-body-bytes", T_UINT, "67108864", "Largest accepted push body in bytes, after decompression (413 above)."},
    {"push.max-grouping-key-bytes", T_UINT, "8192",
     "Longest accepted grouping key in a push or delete URL, in bytes after percent-decoding (400 above). 0: no limit."},
    {"push.max-grouping-labels", T_UINT, "64",
     "Most grouping labels in a push or delete URL, job included (400 above). 0: no limit."},
    {"push.max-label-value-length", T_UINT, "32768", "Longest accepted label value in bytes (400 above)."},
    {"push.max-series-per-push", T_UINT, "100000", "Most series accepted in one push (400 above)."},
    {"store.max-groups", T_UINT, "1000000", "Most groups the store keeps; pushes creating more are rejected."},
    {"store.max-series", T_UINT, "10000000", "Most series the store keeps; pushes adding more are rejected."},
    {"web.auth-workers", T_UINT, "1",
     "Threads that check basic-auth passwords (bcrypt), off the HTTP loops; they run at low priority."},
    {"web.config.file", T_STRING, "", "[EXPERIMENTAL] Path to configuration file that can enable TLS or authentication."},
    {"web.enable-admin-api", T_BOOL, "false", "Enable API endpoints for admin control actions."},
    {"web.enable-lifecycle", T_BOOL, "false", "Enable shutdown via HTTP request."},
    {"web.enable-openmetrics", T_BOOL, "false",
     "Offer the OpenMetrics format to scrapers that ask for it (renames counters without a _total suffix)."},
    {"web.external-url", T_URL, "", "The URL under which the Pushgateway is externally reachable."},
    {"web.idle-timeout", T_DURATION, "10s",
     "Close a connection that sends nothing for this long while a request is awaited (408 if one was begun). 0s: never."},
    {"web.listen-address", T_LISTEN, ":9091",
     "Addresses on which to expose metrics and web interface. Repeatable for multiple addresses."},
    {"web.max-header-bytes", T_UINT, "65536",
     "Largest request line and header block in bytes (431 above, 414 for the request line alone; at most 417791)."},
    {"web.max-inflight-bytes", T_UINT, "268435456",
     "Request bytes all HTTP/1 connections may buffer together; a larger request in flight gets 503. 0: no limit."},
    {"web.probes-without-auth", T_BOOL, "false",
     "Answer GET /-/healthy and /-/ready without credentials when --web.config.file sets basic_auth_users (for "
     "kubelet and load-balancer probes); every other path still needs them."},
    {"web.read-header-timeout", T_DURATION, "10s", "Time a client has to send a request line and headers (408 after)."},
    {"web.read-timeout", T_DURATION, "0s",
     "Time a client has to send a whole request, headers and body (408 after). 0s: no limit, as long as data flows."},
    {"web.reuseport", T_BOOL, "true",
     "One SO_REUSEPORT listening socket per thread (--no-web.reuseport: one socket shared by all threads)."},
    {"web.route-prefix", T_STRING, "",
     "Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url."},
    {"web.systemd-socket", T_BOOL, "false", "Use systemd socket activation listeners instead of port listeners (Linux only)."},
    {"web.telemetry-path", T_STRING, "/metrics", "Path under which to expose metrics."},
    {"web.threads", T_UINT, "",
     "Number of HTTP worker threads (default: the CPUs this process may run on, lowered to its cgroup CPU quota)."},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))
_Static_assert(NDEFS <= sizeof(((fy_flags_t *)0)->raw) / sizeof(((fy_flags_t *)0)->raw[0]), "fy_flags_t.raw is too small");

/* ---------------------------------------------------------------------------------------------------------------- */
/* Go durations */

static const struct {
    const char *unit;
    int64_t ns;
} units[] = {{"ns", 1},       {"us", 1000},      {"\xc2\xb5s", 1000},  {"\xce\xbcs", 1000},
             {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000LL}, {"h", 3600000000000LL}};

int fy_parse_duration(const char *s, int64_t *ns, char *err, size_t errcap)
{
    const char *orig = s;
    int neg = 0;
    double total = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        goto Invalid;
    while (*s != '\0') {
        const char *start = s;
        double v = 0, scale = 1;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            digits = 1;
        }
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9') {
                scale /= 10;
                v += (*s++ - '0') * scale;
                digits = 1;
            }
        }
        if (!digits || s == start)
            goto Invalid;
        const char *u = s;
        while (*s != '\0' && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        size_t ul = (size_t)(s - u);
        if (ul == 0) {
            snprintf(err, errcap, "time: missing unit in duration \"%s\"", orig);
            return -1;
        }
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].unit) == ul && memcmp(units[i].unit, u, ul) == 0)
                unit = units[i].ns;
        if (unit == 0) {
            snprintf(err, errcap, "time: unknown unit \"%.*s\" in duration \"%s\"", (int)ul, u, orig);
            return -1;
        }
        total += v * (double)unit;
        if (total > 9.223372036854775807e18)
            goto Invalid;
    }
    *ns = (int64_t)llround(neg ? -total : total);
    return 0;
Invalid:
    snprintf(err, errcap, "time: invalid duration \"%s\"", orig);
    return -1;
}

/* Writes v / 10^prec with trailing zeros (and a bare '.') dropped. */
static size_t fmt_frac(char *out, uint64_t v, int prec)
{
    uint64_t p10 = 1;
    for (int i = 0; i < prec; i++)
        p10 *= 10;
    size_t n = (size_t)sprintf(out, "%llu", (unsigned long long)(v / p10));
    uint64_t frac = v % p10;
    if (frac != 0) {
        char digits[24];
        sprintf(digits, "%0*llu", prec, (unsigned long long)frac);
        size_t dl = strlen(digits);
        while (dl > 0 && digits[dl - 1] == '0')
            dl--;
        out[n++] = '.';
        memcpy(out + n, digits, dl);
        n += dl;
        out[n] = '\0';
    }
    return n;
}

void fy_format_duration(int64_t ns, char *out, size_t cap)
{
    char buf[64];
    size_t n = 0;
    uint64_t u = ns < 0 ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
    if (ns < 0)
        buf[n++] = '-';
    if (u == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (u < 1000000000ULL) {
        const char *unit;
        int prec;
        if (u < 1000) {
            unit = "ns";
            prec = 0;
        } else if (u < 1000000) {
            unit = "\xc2\xb5s";
            prec = 3;
        } else {
            unit = "ms";
            prec = 6;
        }
        n += fmt_frac(buf + n, u, prec);
        snprintf(out, cap, "%.*s%s", (int)n, buf, unit);
        return;
    }
    uint64_t secs_ns = u % 60000000000ULL, mins = u / 60000000000ULL;
    if (mins >= 60) {
        n += (size_t)sprintf(buf + n, "%lluh", (unsigned long long)(mins / 60));
        n += (size_t)sprintf(buf + n, "%llum", (unsigned long long)(mins % 60));
    } else if (mins > 0) {
        n += (size_t)sprintf(buf + n, "%llum", (unsigned long long)mins);
    }
    n += fmt_frac(buf + n, secs_ns, 9);
    snprintf(out, cap, "%.*ss", (int)n, buf);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Parsing */

/* The field a duration flag sets. */
static int64_t *duration_field(fy_flags_t *f, const flag_def_t *d)
{
    if (strcmp(d->name, "cluster.ack-timeout") == 0)
        return &f->cluster_ack_timeout_ns;
    if (strcmp(d->name, "cluster.max-clock-offset") == 0)
        return &f->cluster_max_offset_ns;
    if (strcmp(d->name, "cluster.peer-timeout") == 0)
        return &f->cluster_peer_timeout_ns;
    if (strcmp(d->name, "cluster.tombstone-retention") == 0)
        return &f->cluster_retention_ns;
    if (strcmp(d->name, "push.default-ttl") == 0)
        return &f->default_ttl_ns;
    if (strcmp(d->name, "push.default-interval") == 0)
        return &f->default_interval_ns;
    if (strcmp(d->name, "push.interval-grace") == 0)
        return &f->interval_grace_ns;
    if (strcmp(d->name, "web.read-header-timeout") == 0)
        return &f->read_header_timeout_ns;
    if (strcmp(d->name, "web.idle-timeout") == 0)
        return &f->idle_timeout_ns;
    if (strcmp(d->name, "web.read-timeout") == 0)
        return &f->read_timeout_ns;
    return &f->persistence_interval_ns;
}

static const flag_def_t *find(const char *name, size_t len)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strlen(defs[i].name) == len && memcmp(defs[i].name, name, len) == 0)
            return &defs[i];
    return NULL;
}

static int parse_uint(const char *s, uint64_t *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = x;
    return 0;
}

static int apply(fy_flags_t *f, const flag_def_t *d, const char *v, char *err, size_t errcap)
{
    size_t idx = (size_t)(d - defs);
    int is_bool = d->type == T_BOOL;
    int on = is_bool && strcmp(v, "true") == 0;
    uint64_t u = 0;
    f->raw[idx] = v;
    if (strcmp(d->name, "web.systemd-socket") == 0)
        f->systemd_socket = on;
    else if (strcmp(d->name, "web.enable-lifecycle") == 0)
        f->enable_lifecycle = on;
    else if (strcmp(d->name, "web.enable-admin-api") == 0)
        f->enable_admin_api = on;
    else if (strcmp(d->name, "push.disable-consistency-check") == 0)
        f->disable_consistency_check = on;
    else if (strcmp(d->name, "web.reuseport") == 0)
        f->reuseport = on;
    else if (strcmp(d->name, "push.enable-utf8-names") == 0)
        f->enable_utf8_names = on;
    else if (strcmp(d->name, "web.probes-without-auth") == 0)
        f->probes_without_auth = on;
    else if (strcmp(d->name, "web.enable-openmetrics") == 0)
        f->enable_openmetrics = on;
    else if (strcmp(d->name, "web.config.file") == 0)
        f->web_config_file = v;
    else if (strcmp(d->name, "web.telemetry-path") == 0)
        f->telemetry_path = v;
    else if (strcmp(d->name, "web.route-prefix") == 0)
        f->route_prefix = v;
    else if (strcmp(d->name, "persistence.file") == 0)
        f->persistence_file = v;
    else if (strcmp(d->name, "persistence.allow-bad-file") == 0)
        f->persistence_allow_bad = on;
    else if (strcmp(d->name, "persistence.durable") == 0)
        f->persistence_durable = on;
    else if (strcmp(d->name, "cluster.listen-address") == 0)
        f->cluster_listen = v;
    else if (strcmp(d->name, "cluster.advertise-address") == 0)
        f->cluster_advertise = v;
    else if (strcmp(d->name, "cluster.label") == 0)
        f->cluster_label = v;
    else if (strcmp(d->name, "cluster.tls-config") == 0)
        f->cluster_tls_config = v;
    else if (strcmp(d->name, "cluster.write-quorum") == 0) {
        uint64_t q;
        if (strcmp(v, "majority") == 0)
            f->cluster_quorum = 0;
        else if (strcmp(v, "all") == 0)
            f->cluster_quorum = UINT32_MAX;
        else if (parse_uint(v, &q) == 0 && q >= 1 && q <= 16)
            f->cluster_quorum = (unsigned)q;
        else {
            snprintf(err, errcap, "--cluster.write-quorum must be majority, all or a number from 1 to 16, got %s", v);
            return -1;
        }
    } else if (d->type == T_PEER) {
        if (v[0] == '\0')
            return 0;
        if (f->ncluster_peers == FY_MAX_PEERS) {
            snprintf(err, errcap, "too many --cluster.peer flags (at most %d)", FY_MAX_PEERS);
            return -1;
        }
        f->cluster_peers[f->ncluster_peers++] = v;
    } else if (strcmp(d->name, "web.external-url") == 0) {
        /* url.Parse as kingpin's URL value: "" is allowed, a value without a scheme before ':' is not */
        const char *colon = strchr(v, ':');
        if (colon == v) {
            snprintf(err, errcap, "invalid URL: parse \"%s\": missing protocol scheme", v);
            return -1;
        }
        f->external_url = v;
    } else if (d->type == T_DURATION) {
        char derr[160];
        int64_t *field = duration_field(f, d);
        if (fy_parse_duration(v, field, derr, sizeof(derr)) != 0) {
            snprintf(err, errcap, "%s", derr);
            return -1;
        }
        if (*field < 0 && field != &f->persistence_interval_ns) {
            snprintf(err, errcap, "--%s must not be negative, got %s", d->name, v);
            return -1;
        }
    } else if (d->type == T_LOGLEVEL) {
        if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error")) {
            snprintf(err, errcap, "unrecognized log level \"%s\"", v);
            return -1;
        }
        f->log_level = v;
    } else if (d->type == T_LOGFORMAT) {
        if (strcmp(v, "logfmt") && strcmp(v, "json")) {
            snprintf(err, errcap, "unrecognized log format \"%s\"", v);
            return -1;
        }
        f->log_format = v;
    } else if (d->type == T_UINT) {
        if (strcmp(d->name, "web.threads") == 0 && v[0] == '\0') {
            /* the CPUs this process may run on (its affinity mask, as taskset, cpusets and container runtimes set
             * it) rather than every online CPU, lowered to its cgroup's CPU quota (cpus.h) */
            f->threads = fy_cpus_default("", f->threads_how, sizeof(f->threads_how));
            return 0;
        }
        if (parse_uint(v, &u) != 0) {
            snprintf(err, errcap, "strconv.ParseUint: parsing \"%s\": invalid syntax", v);
            return -1;
        }
        if (strcmp(d->name, "web.threads") == 0) {
            if (u == 0 || u > 1024) {
                snprintf(err, errcap, "--web.threads must be between 1 and 1024, got %s", v);
                return -1;
            }
            f->threads = (int)u;
            snprintf(f->threads_how, sizeof(f->threads_how), "--web.threads");
        } else if (strcmp(d->name, "push.max-body-bytes") == 0)
            f->max_body_bytes = u;
        else if (strcmp(d->name, "push.max-series-per-push") == 0)
            f->max_series_per_push = u;
        else if (strcmp(d->name, "push.max-grouping-key-bytes") == 0)
            f->max_grouping_key_bytes = u;
        else if (strcmp(d->name, "push.max-grouping-labels") == 0)
            f->max_grouping_labels = u;
        else if (strcmp(d->name, "push.max-label-value-length") == 0)
            f->max_label_value_length = u;
        else if (strcmp(d->name, "store.max-series") == 0)
            f->max_series = u;
        else if (strcmp(d->name, "store.max-groups") == 0)
            f->max_groups = u;
        else if (strcmp(d->name, "web.max-inflight-bytes") == 0)
            f->max_inflight_bytes = u;
        else if (strcmp(d->name, "cluster.replicas") == 0) {
            if (u > 16) {
                snprintf(err, errcap, "--cluster.replicas must be between 0 and 16, got %s", v);
                return -1;
            }
            f->cluster_replicas = (unsigned)u;
        } else if (strcmp(d->name, "web.max-header-bytes") == 0) {
            if (u < 1024 || u > 417791) { /* h2o answers 400 itself from H2O_MAX_REQLEN (417792) on */
                snprintf(err, errcap, "--web.max-header-bytes must be between 1024 and 417791, got %s", v);
                return -1;
            }
            f->max_header_bytes = u;
        } else if (strcmp(d->name, "web.auth-workers") == 0) {
            if (u == 0 || u > 64) {
                snprintf(err, errcap, "--web.auth-workers must be between 1 and 64, got %s", v);
                return -1;
            }
            f->auth_workers = u;
        }
    } else if (d->type == T_LISTEN) {
        if (f->nlisten == FY_MAX_LISTEN) {
            snprintf(err, errcap, "too many --web.listen-address flags (at most %d)", FY_MAX_LISTEN);
            return -1;
        }
        f->listen[f->nlisten++] = v;
    }
    return 0;
}

int fy_flags_parse(fy_flags_t *f, int argc, char **argv, char *err, size_t errcap)
{
    int given[NDEFS] = {0};
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < NDEFS; i++)
        if (apply(f, &defs[i], defs[i].def, err, errcap) != 0)
            return -1;
    f->nlisten = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "--help-long") == 0) {
            f->help = 1;
            continue;
        }
        if (strcmp(a, "--help-man") == 0) {
            f->help_man = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            f->version = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) {
                snprintf(err, errcap, "unexpected %s", argv[i + 1]);
                return -1;
            }
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            snprintf(err, errcap, "unexpected %s", a);
            return -1;
        }
        if (a[1] != '-') {
            snprintf(err, errcap, "unknown short flag '-%c'", a[1]);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const flag_def_t *d = find(name, name_len), *neg = NULL;
        const char *value = NULL;
        if (d == NULL && name_len > 3 && memcmp(name, "no-", 3) == 0)
            neg = find(name + 3, name_len - 3);
        if (neg != NULL && neg->type == T_BOOL && eq == NULL) {
            d = neg;
            value = "false";
        } else if (d == NULL) {
            snprintf(err, errcap, "unknown long flag '--%.*s'", (int)name_len, name);
            return -1;
        } else if (d->type == T_BOOL) {
            if (eq != NULL) {
                snprintf(err, errcap, "unexpected %s", eq + 1);
                return -1;
            }
            value = "true";
        } else if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] != '\0')) {
                snprintf(err, errcap, "expected argument for flag '--%s'", d->name);
                return -1;
            }
            value = argv[++i];
        }
        size_t idx = (size_t)(d - defs);
        if (given[idx] && d->type != T_LISTEN && d->type != T_PEER) {
            snprintf(err, errcap, "flag '%s' cannot be repeated", d->name);
            return -1;
        }
        given[idx] = 1;
        if (apply(f, d, value, err, errcap) != 0)
            return -1;
    }
    if (f->persistence_durable && (f->persistence_file == NULL || f->persistence_file[0] == '\0')) {
        snprintf(err, errcap, "--persistence.durable needs --persistence.file (the log is kept next to it)");
        return -1;
    }
    if (f->ncluster_peers > 0 && (f->cluster_listen == NULL || f->cluster_listen[0] == '\0')) {
        snprintf(err, errcap, "--cluster.peer needs --cluster.listen-address (the port peers reach this replica at)");
        return -1;
    }
    if (f->cluster_tls_config != NULL && f->cluster_tls_config[0] != '\0' &&
        (f->cluster_listen == NULL || f->cluster_listen[0] == '\0')) {
        snprintf(err, errcap, "--cluster.tls-config needs --cluster.listen-address (TLS is for the peer links)");
        return -1;
    }
    if (f->nlisten == 0)
        f->listen[f->nlisten++] = ":9091";
    for (size_t i = 0, m = 0; i < f->ncluster_peers; i++)
        m += (size_t)snprintf(f->peers_joined + m, sizeof(f->peers_joined) - m, "%s%s", i ? "," : "", f->cluster_peers[i]);
    size_t n = 0;
    for (size_t i = 0; i < f->nlisten; i++)
        n += (size_t)snprintf(f->listen_joined + n, sizeof(f->listen_joined) - n, "%s%s", i ? "," : "", f->listen[i]);
    return 0;
}

void fy_flags_usage(FILE *out, const char *prog)
{
    fprintf(out, "usage: %s [<flags>]\n\nFerry, a Prometheus Pushgateway\n\nFlags:\n", prog);
    fprintf(out, "  -h, --help  Show context-sensitive help.\n");
    for (size_t i = 0; i < NDEFS; i++) {
        const flag_def_t *d = &defs[i];
        char head[160];
        if (d->type == T_BOOL)
            snprintf(head, sizeof(head), "--%s", d->name);
        else if (d->type == T_LISTEN || d->type == T_PEER)
            snprintf(head, sizeof(head), "--%s=%s ...", d->name, d->def);
        else
            snprintf(head, sizeof(head), "--%s=\"%s\"", d->name, d->def);
        fprintf(out, "      %s\n            %s\n", head, d->help);
    }
    fprintf(out, "      --version  Show application version.\n\n");
}

/* s as roff text: '-' as \- (a minus: options then copy, paste and search as typed, where a bare '-' may be set as a
 * hyphen), '\' as \e, and a line that would start with '.' or '\'' (a request) guarded by \&. */
static void roff(FILE *out, const char *s, int line_start)
{
    for (; *s != '\0'; s++, line_start = 0) {
        if (line_start && (*s == '.' || *s == '\''))
            fputs("\\&", out);
        if (*s == '-')
            fputs("\\-", out);
        else if (*s == '\\')
            fputs("\\e", out);
        else
            fputc(*s, out);
    }
}

void fy_flags_man(FILE *out, const fy_man_t *m)
{
    const char *d = m->build_date;
    char day[16];
    if (strlen(d) >= 8 && strspn(d, "0123456789") >= 8)
        snprintf(day, sizeof(day), "%.4s-%.2s-%.2s", d, d + 4, d + 6);
    else
        snprintf(day, sizeof(day), "%s", "unknown");
    fprintf(out, ".\\\" %s.1: written by `%s --help-man` from its flag table (src/common/flags.c); do not edit.\n", m->prog,
            m->prog);
    fprintf(out, ".TH %s 1 \"%s\" \"%s %s\" \"User Commands\"\n", m->prog, day, m->prog, m->version);
    fprintf(out, ".SH NAME\n%s \\- a Prometheus Pushgateway: batch jobs push metrics, Prometheus scrapes them\n", m->prog);
    fprintf(out, ".SH SYNOPSIS\n.B %s\n.RI [ flags ]\n", m->prog);
    for (size_t i = 0; i < m->ncommands; i++) {
        fprintf(out, ".br\n.B %s %s\n", m->prog, m->commands[i].name);
        roff(out, m->commands[i].args, 1);
        fputc('\n', out);
    }
    fprintf(out, ".SH DESCRIPTION\n");
    roff(out,
         "Ferry is a drop-in replacement for the Prometheus Pushgateway 1.5.1: the same HTTP API, flags, exposition "
         "formats and error messages. Batch jobs that cannot be scraped push their metrics to it "
         "(PUT or POST /metrics/job/<job>{/<label>/<value>}); it keeps the last push of each group, and Prometheus "
         "scrapes them all from /metrics. Without --persistence.file the groups are kept in memory only.",
         1);
    fprintf(out, "\n.PP\n");
    roff(out,
         "A flag is given as --name=value or --name value; a boolean flag is set by --name and cleared by --no-name. "
         "A flag given twice is an error, except the repeatable ones.",
         1);
    fprintf(out, "\n.SH OPTIONS\n.TP\n.B \\-h, \\-\\-help\nShow context\\-sensitive help.\n");
    for (size_t i = 0; i < NDEFS; i++) {
        const flag_def_t *fd = &defs[i];
        fprintf(out, ".TP\n\\fB");
        roff(out, fd->type == T_BOOL && strcmp(fd->def, "true") == 0 ? "--[no-]" : "--", 0);
        roff(out, fd->name, 0);
        fputs("\\fR", out);
        if (fd->type != T_BOOL) {
            fputs("=\\fI", out);
            roff(out, fd->def[0] != '\0' ? fd->def : "\"\"", 0);
            fputs("\\fR", out);
        }
        if (fd->type == T_LISTEN || fd->type == T_PEER)
            fputs(" ...", out);
        fputc('\n', out);
        roff(out, fd->help, 1);
        fputc('\n', out);
    }
    fprintf(out, ".TP\n.B \\-\\-help\\-man\nPrint this manual page (roff) and exit.\n");
    fprintf(out, ".TP\n.B \\-\\-version\nShow application version.\n");
    if (m->ncommands > 0)
        fprintf(out, ".SH COMMANDS\n");
    for (size_t i = 0; i < m->ncommands; i++) {
        fprintf(out, ".TP\n.B %s %s\n", m->prog, m->commands[i].name);
        roff(out, m->commands[i].help, 1);
        fprintf(out, " Its flags and exit codes: \\fB%s %s \\-\\-help\\fR.\n", m->prog, m->commands[i].name);
    }
    fprintf(out, ".SH SIGNALS\n.TP\n.B SIGTERM, SIGINT\n");
    roff(out,
         "Stop gracefully: close the listeners, let the requests under way finish, write the persistence file (if any) "
         "and exit 0.",
         1);
    fprintf(out, "\n.TP\n.B SIGHUP\n");
    roff(out,
         "Re-read --web.config.file (users, headers, TLS), as PUT or POST /-/reload does with --web.enable-lifecycle. "
         "The store, the connections and the flags stay; a broken file is refused and logged, and the one in force "
         "is kept.",
         1);
    fprintf(out, "\n.SH EXIT STATUS\n");
    roff(out,
         "0 after a graceful stop, --help, --help-man or --version; 1 when a flag is wrong (the message names it), a "
         "configuration file cannot be used, an address cannot be listened on or the persistence file cannot be read.",
         1);
    fprintf(out, "\n.SH SEE ALSO\n");
    fprintf(out, ".BR prometheus (1),\n.BR prometheus\\-pushgateway (1).\n");
    roff(out,
         "The documentation (README.md and docs/: quick start, HTTP API, compatibility with the Pushgateway, "
         "persistence, security, replication, operations) is installed under share/doc/ferry.",
         1);
    fputc('\n', out);
}

void fy_flags_each(const fy_flags_t *f, const char *route_prefix, void (*fn)(void *ctx, const char *name, const char *value),
                   void *ctx)
{
    char tmp[64];
    for (size_t i = 0; i < NDEFS; i++) {
        const flag_def_t *d = &defs[i];
        const char *v = f->raw[i];
        if (d->type == T_LISTEN) {
            v = f->listen_joined;
        } else if (d->type == T_PEER) {
            v = f->peers_joined;
        } else if (d->type == T_DURATION) {
            fy_format_duration(*duration_field((fy_flags_t *)(uintptr_t)f, d), tmp, sizeof(tmp));
            v = tmp;
        } else if (strcmp(d->name, "web.route-prefix") == 0) {
            v = route_prefix;
        } else if (strcmp(d->name, "web.threads") == 0) {
            snprintf(tmp, sizeof(tmp), "%d", f->threads);
            v = tmp;
        }
        fn(ctx, d->name, v);
    }
}
