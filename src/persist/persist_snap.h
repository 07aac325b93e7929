/*
 * persist_snap.h: snapshot files: written whole to a temp file in the same directory, synced, renamed over the
 * target, directory synced; read back only after every byte has been verified. Payloads are opaque bytes.
 *
 * Layout, all integers little-endian:
 *   header  (28 bytes) "FERRYSNP" | u32 version (1) | u32 reserved (0) | u64 wal_seq | u32 CRC-32C of bytes 0..23
 *   records (8 + len)  u32 len (< 0xFFFFFFFF) | u32 CRC-32C of len field + payload | payload[len]
 *   trailer (24 bytes) u32 0xFFFFFFFF (end mark) | u64 record count | "FYSNPEND" | u32 CRC-32C of every byte of
 *                      the file before this field
 * wal_seq is the last write-ahead-log sequence number the snapshot covers (0 without a log).
 */
#ifndef FY_PERSIST_SNAP_H
#define FY_PERSIST_SNAP_H

#include <stddef.h>
#include <stdint.h>

#define FY_SNAP_HEADER 28
#define FY_SNAP_TRAILER 24
#define FY_SNAP_MAX_RECORD (1u << 30)

typedef struct st_fy_snap_writer_t fy_snap_writer_t;

/** Adds one record. Returns 0, or -1 (errno set) after which the fill callback should return nonzero. */
int fy_snap_put(fy_snap_writer_t *w, const void *payload, size_t len);

/** Produces the snapshot's records with fy_snap_put; a nonzero return abandons the snapshot. */
typedef int (*fy_snap_fill_cb)(void *ctx, fy_snap_writer_t *w);

typedef struct st_fy_snap_info_t {
    uint64_t wal_seq;
    uint64_t records;
    uint64_t bytes; /* file size */
} fy_snap_info_t;

/**
 * Writes the snapshot: <path>.tmp.<pid> in path's directory (mode 0600), then fsync, rename over path, fsync of the
 * directory. On any error, or a nonzero fill return, the temp file is removed and path is untouched; returns -1 with
 * a message in err. info (may be NULL) gets the counts.
 */
int fy_snap_write(const char *path, uint64_t wal_seq, fy_snap_fill_cb fill, void *ctx, fy_snap_info_t *info, char *err,
                  size_t errlen);

/** Called for every record in file order; a nonzero return stops the read with that value. */
typedef int (*fy_snap_read_cb)(void *ctx, const void *payload, size_t len);

/**
 * Verifies the whole file (header, every record, trailer count and checksum) and only then calls cb for each record,
 * so a damaged snapshot never loads halfway. Returns 1 if path does not exist (not an error: a first start), 0 on
 * success, -1 with "<path>: offset N: what is wrong" in err, or the callback's nonzero value.
 */
int fy_snap_read(const char *path, fy_snap_read_cb cb, void *ctx, fy_snap_info_t *info, char *err, size_t errlen);

/**
 * Removes the leftovers of interrupted snapshot writes next to path: "<basename>.tmp.*" (ours) and
 * "<basename>.in_progress.*" (the Pushgateway's os.CreateTemp pattern). removed (may be NULL) is called with each
 * removed file's path, for the log. Call it at start-up, before the first write. Returns the number removed, or -1.
 */
int fy_snap_cleanup(const char *path, void (*removed)(void *ctx, const char *file), void *ctx);

#endif
