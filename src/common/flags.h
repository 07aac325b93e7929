/*
 * flags.h: the command line. Every Pushgateway 1.5.1 flag with kingpin's syntax (--name=value, --name value,
 * --no-name for bools, repeatable --web.listen-address), plus Ferry's own (threads, listener mode, limits).
 */
#ifndef FY_FLAGS_H
#define FY_FLAGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FY_MAX_LISTEN 16
#define FY_MAX_PEERS 16

typedef struct st_fy_flags_t {
    int systemd_socket;
    const char *listen[FY_MAX_LISTEN];
    size_t nlisten;
    const char *web_config_file;
    const char *telemetry_path;
    const char *external_url;
    const char *route_prefix;
    int enable_lifecycle;
    int enable_admin_api;
    const char *persistence_file;
    int64_t persistence_interval_ns;
    int persistence_allow_bad;
    int persistence_durable; /* --persistence.durable: write-ahead log, a 2xx only once on disk */
    int disable_consistency_check;
    int enable_utf8_names; /* --push.enable-utf8-names (1.11): UTF-8 metric and label names */
    const char *log_level;
    const char *log_format;
    /* Ferry */
    int threads;
    char threads_how[384]; /* where the count came from: --web.threads, the affinity mask or the cgroup quota */
    int reuseport;
    int probes_without_auth; /* --web.probes-without-auth: /-/healthy and /-/ready skip basic auth */
    int enable_openmetrics;
    uint64_t max_body_bytes;
    uint64_t max_series_per_push;
    uint64_t max_label_value_length;
    uint64_t max_grouping_labels;    /* --push.max-grouping-labels, job included, 0 = none */
    uint64_t max_grouping_key_bytes; /* --push.max-grouping-key-bytes, 0 = none */
    uint64_t max_series;
    uint64_t max_groups;
    /* what one connection may cost before its request reaches a handler (conn_guard.h) */
    int64_t read_header_timeout_ns; /* --web.read-header-timeout */
    int64_t idle_timeout_ns;        /* --web.idle-timeout */
    int64_t read_timeout_ns;        /* --web.read-timeout, 0 = none */
    uint64_t max_header_bytes;      /* --web.max-header-bytes */
    uint64_t max_inflight_bytes;    /* --web.max-inflight-bytes, 0 = none */
    uint64_t auth_workers;          /* --web.auth-workers: threads that check passwords */
    /* beyond the Pushgateway (docs/beyond-pushgateway.md) */
    int64_t default_ttl_ns;      /* --push.default-ttl, 0 = never */
    int64_t default_interval_ns; /* --push.default-interval, 0 = none */
    int64_t interval_grace_ns;   /* --push.interval-grace */
    /* replication (docs/ha.md) */
    const char *cluster_listen;     /* --cluster.listen-address, "" = no cluster */
    const char *cluster_advertise;  /* --cluster.advertise-address */
    const char *cluster_label;      /* --cluster.label */
    const char *cluster_tls_config; /* --cluster.tls-config, "" = plain TCP */
    const char *cluster_peers[FY_MAX_PEERS];
    size_t ncluster_peers;
    unsigned cluster_quorum;   /* --cluster.write-quorum: 0 majority, UINT32_MAX all, else N */
    unsigned cluster_replicas; /* --cluster.replicas, 0 = derived */
    int64_t cluster_ack_timeout_ns, cluster_max_offset_ns, cluster_peer_timeout_ns, cluster_retention_ns;
    char peers_joined[2048];
    /* actions */
    int help;
    int help_man; /* --help-man: the man page on stdout (fy_flags_man) */
    int version;
    /* the value strings as given (or defaulted), for /api/v1/status; indexed like the flag table */
    const char *raw[64];
    char listen_joined[1024];
} fy_flags_t;

/**
 * Parses argv[1..argc). Returns 0, or -1 with err holding kingpin's message without the "ferry: error: " prefix and
 * the ", try --help" suffix (e.g. "unknown long flag '--bogus'").
 */
int fy_flags_parse(fy_flags_t *f, int argc, char **argv, char *err, size_t errcap);

/** Usage text as kingpin lays it out. */
void fy_flags_usage(FILE *out, const char *prog);

/** A subcommand, for --help and the man page: `ferry NAME ARGS`, what it does. */
typedef struct st_fy_command_t {
    const char *name, *args, *help;
} fy_command_t;

/** What the man page says about the build and the subcommands besides the flags. */
typedef struct st_fy_man_t {
    const char *prog;       /* "ferry" */
    const char *version;    /* "0.1.0" */
    const char *build_date; /* FY_BUILD_DATE ("20261207-06:35:02"); the page's date is its day, "2026-12-07" */
    const fy_command_t *commands;
    size_t ncommands;
} fy_man_t;

/**
 * The man page (roff, man(7) macros) of the server and its subcommands, from the flag table: every flag with its
 * default and help text, so the page cannot drift from the flags (the Debian package installs this output as ferry.1).
 */
void fy_flags_man(FILE *out, const fy_man_t *m);

/**
 * The /api/v1/status "flags" map: calls fn(name, value) in bytewise name order for every flag except help and
 * version. route_prefix is the normalised prefix (1.5.1 shows the normalised value).
 */
void fy_flags_each(const fy_flags_t *f, const char *route_prefix, void (*fn)(void *ctx, const char *name, const char *value),
                   void *ctx);

/** Go's time.ParseDuration; -1 with err ("time: unknown unit \"x\" in duration \"5x\"") on failure. */
int fy_parse_duration(const char *s, int64_t *ns, char *err, size_t errcap);

/** Go's time.Duration.String ("5m0s", "1.5s", "300ms", "0s"). */
void fy_format_duration(int64_t ns, char *out, size_t cap);

#endif
