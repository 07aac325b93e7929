/*
 * gobimport.h: reads a Prometheus Pushgateway (1.x) persistence file, the Go encoding/gob stream of one
 * map[string]MetricGroup (spec section 9.3), so that a user switching to Ferry keeps their groups.
 * See docs/migrating-persistence.md for the format as implemented and what is checked.
 */
#ifndef FY_GOBIMPORT_H
#define FY_GOBIMPORT_H

#include <stddef.h>
#include <stdint.h>

/* One grouping label; both slices point into the caller's buffer, never NUL-terminated. */
typedef struct st_fy_gob_label_t {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} fy_gob_label_t;

/* One stored family of a group. */
typedef struct st_fy_gob_family_t {
    const char *name; /* the map key (the family name the Pushgateway stored it under) */
    size_t name_len;
    /* TimestampedMetricFamily.Timestamp: when the family was last written. A value without a Timestamp (Go's zero
     * time, never written by the Pushgateway) reads as 0001-01-01T00:00:00Z. */
    int64_t unix_sec;      /* seconds since 1970-01-01T00:00:00Z */
    int32_t nsec;          /* 0..999999999 */
    int32_t zone_offset_s; /* seconds east of UTC of the zone the Pushgateway ran in */
    uint8_t zone_utc;      /* Go's time.UTC location (stored as offset -1 minute); zone_offset_s is then 0 */
    /* GobbableMetricFamily: the protobuf binary encoding of io.prometheus.client.MetricFamily, NOT length-delimited.
     * fy_parse_protobuf wants a varint length before it: see fy_gob_delimit_prefix. */
    const char *mf;
    size_t mf_len;
    size_t mf_offset; /* offset of mf in the file, for error messages */
} fy_gob_family_t;

/* One group. Labels are sorted by name, families by name; names are unique within a group. */
typedef struct st_fy_gob_group_t {
    const char *key; /* the gob map key: the 1.5.1 grouping key ("job\xffx\xffa\xff1"); NULL if the file used a */
    size_t key_len;  /* non-string key (later Pushgateways hash it to a uint64) */
    const fy_gob_label_t *labels;
    size_t nlabels;
    const fy_gob_family_t *families;
    size_t nfamilies;
    size_t offset; /* where this group's value starts in the file */
} fy_gob_group_t;

/* Called once per group, in file order (which is Go map order: random). The group and its arrays are valid only
 * during the call; the slices inside point into the caller's buffer. Return 0 to go on; anything else stops the
 * import, and fy_gob_import returns that value. */
typedef int (*fy_gob_group_cb)(void *ctx, const fy_gob_group_t *group);

#define FY_GOB_ERR_MAX 256

typedef struct st_fy_gob_error_t {
    size_t offset;            /* byte offset in the file where the problem was detected */
    char msg[FY_GOB_ERR_MAX]; /* "gob: unexpected EOF at offset 123 reading a message length", NUL-terminated */
} fy_gob_error_t;

/* Limits that keep a hostile file from costing more than its size in time and memory. */
#define FY_GOB_MAX_DEPTH 32    /* nesting of gob values (the Pushgateway schema needs 6) */
#define FY_GOB_MAX_TYPES 65536 /* type definitions in one stream (the Pushgateway writes about 30) */
#define FY_GOB_MAX_FIELDS 4096 /* fields of one struct type */

/**
 * Decodes the persistence file in buf (len bytes; need not be NUL-terminated; never read past len) and calls cb for
 * every group. The file must hold exactly one gob value (plus the type definitions before it) whose type has the
 * Pushgateway's shape: a map from string (or integer) keys to a struct with fields Labels (map[string]string) and
 * Metrics (map[string]struct{Timestamp; GobbableMetricFamily}, both GobEncoders). Other fields and types are skipped.
 * An empty file (len 0) holds no groups, like a Pushgateway started without one.
 *
 * Groups are delivered as they are decoded, each one complete and checked; when the file turns out to be bad later,
 * the groups already delivered stay delivered (the caller stages them if it wants all or nothing).
 *
 * @return 0 when the whole file was read, -1 on a malformed file (*err says where and what), or the callback's
 *         non-zero value. malloc failure is reported as an error too ("gob: out of memory ...").
 */
int fy_gob_import(const char *buf, size_t len, fy_gob_group_cb cb, void *ctx, fy_gob_error_t *err);

/**
 * Writes the protobuf varint of mf_len (the "delimited" framing fy_parse_protobuf expects before each message) to
 * out and returns its length (1..10). The caller places it right before a copy of the blob.
 */
size_t fy_gob_delimit_prefix(size_t mf_len, uint8_t out[10]);

/** The family's timestamp in nanoseconds since the Unix epoch; returns -1 when it does not fit in int64 (outside
 * the years 1678-2262), else 0. */
int fy_gob_time_ns(const fy_gob_family_t *f, int64_t *ns);

#endif
