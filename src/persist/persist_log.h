/*
 * persist_log.h: the write-ahead log of durable mode: append-only segment files of checksummed, sequence-numbered
 * records, group commit (many appenders share one fdatasync), rotation, truncation after a snapshot, and replay
 * with torn-tail repair. Payloads are opaque bytes; the caller decides what a record means. Format: docs/persistence.md.
 *
 * Segment file <dir>/<first seq, 16 hex digits>.wal, all integers little-endian:
 *   header  (28 bytes) "FERRYWAL" | u32 version (1) | u32 reserved (0) | u64 first_seq | u32 CRC-32C of bytes 0..23
 *   records (17 + len) u32 len | u32 crc | u8 type (1..255) | u64 seq | payload[len]
 *           crc = CRC-32C of payload[len] followed by the 13 header bytes other than crc (len, type, seq); the
 *           payload goes first so that appenders checksum it before they take the lock that assigns seq.
 * Sequence numbers start at 1 and increase by one per record, across segments.
 */
#ifndef FY_PERSIST_LOG_H
#define FY_PERSIST_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FY_LOG_SEG_HEADER 28
#define FY_LOG_REC_HEADER 17
#define FY_LOG_MAX_PAYLOAD (1u << 30) /* a longer length field is damage, not data */

typedef struct st_fy_log_t fy_log_t;

typedef struct st_fy_log_stats_t {
    uint64_t appends;     /* records made durable */
    uint64_t syncs;       /* fdatasync calls by appenders (group commits) */
    uint64_t bytes;       /* bytes written to segments, headers included */
    uint64_t max_batch;   /* most records covered by one fdatasync */
    uint64_t last_seq;    /* last sequence number handed out */
    uint64_t durable_seq; /* every record up to this one is on disk */
} fy_log_stats_t;

/**
 * Opens the log in dir (created, mode 0700, if missing) for appending: removes leftover temporary segment files, then
 * starts a new segment whose first record gets next_seq (the last replayed sequence number + 1). Fails if an existing
 * segment holds records at or after next_seq. Returns 0, or -1 with a message in err.
 */
int fy_log_open(const char *dir, uint64_t next_seq, fy_log_t **out, char *err, size_t errlen);

/** Closes the log: stops the writer thread if there is one, then writes and syncs the records submitted but not yet
 * durable (notifying as usual); returns -1 if that fails. */
int fy_log_close(fy_log_t *log);

/**
 * Appends one record and returns once it is durable (written and fdatasync'ed); concurrent callers share syncs.
 * type is 1..255. On success *seq (if not NULL) gets the record's sequence number. Returns 0, or -1 with errno set:
 * EINVAL (bad type or length), or the write/fdatasync error. A failed write or sync poisons the log: every later
 * append fails with EIO, because after a failed fdatasync Linux may have dropped the dirty pages and a retry
 * could report success for data that is not on disk.
 */
int fy_log_append(fy_log_t *log, unsigned type, const void *payload, size_t len, uint64_t *seq);

/**
 * The two halves of fy_log_append. fy_log_submit assigns the sequence number and queues the record (no I/O, no
 * waiting), so it can be called while the caller holds the lock that orders its in-memory change: records then
 * replay in the order the changes were applied. fy_log_wait(seq) returns once that record is durable.
 */
int fy_log_submit(fy_log_t *log, unsigned type, const void *payload, size_t len, uint64_t *seq);
int fy_log_wait(fy_log_t *log, uint64_t seq);

/**
 * Told after every flush, by the thread that did it, with the log's mutex held: every record up to durable_seq is
 * on disk, and err is 0, or the errno of the write or sync that just failed (the log is poisoned: records after
 * durable_seq never will be). Calls come in flush order, so durable_seq never decreases. The callback must be quick
 * and must not call into the log.
 */
typedef void (*fy_log_notify_cb)(void *ctx, uint64_t durable_seq, int err);

/**
 * Starts the log's writer thread: from then on, records submitted with fy_log_submit are written and synced without
 * anyone waiting for them, in batches (whatever was submitted while the previous sync ran), and notify is called
 * after each. This lets a caller that must not block (an event loop) submit and be told later. fy_log_wait still
 * works. Call at most once, before any submit; fy_log_close stops the thread. Returns 0, or -1 with errno set.
 */
int fy_log_start_writer(fy_log_t *log, fy_log_notify_cb notify, void *ctx);

/**
 * Makes everything submitted durable, then starts a new segment. *first_seq (if not NULL) gets the sequence number the
 * new segment starts with: a snapshot taken now, covering every record before it, lets fy_log_truncate_before
 * delete the older segments. Appenders wait while this runs (it syncs the new file and the directory).
 */
int fy_log_rotate(fy_log_t *log, uint64_t *first_seq);

/**
 * Deletes every segment other than the current one whose records all have sequence numbers < seq, then syncs the
 * directory. Call it with snapshot_seq + 1 once the snapshot covering snapshot_seq is durable. Returns the number
 * of segments deleted, or -1.
 */
int fy_log_truncate_before(fy_log_t *log, uint64_t seq);

void fy_log_get_stats(fy_log_t *log, fy_log_stats_t *st);

/**
 * What poisoned the log, e.g. "write /var/lib/pg/F.wal/0000000000000001.wal: No space left on device" or
 * "fdatasync ...: Input/output error" (the operation, the segment file, the first errno's text); NULL while the log
 * is healthy. Call it from the notify callback that reported the error, or after any call that returned it: the text
 * is set once, before either, and never changes.
 */
const char *fy_log_failure(fy_log_t *log);

/** "<file>.wal": the log directory that goes with --persistence.file. Returns -1 if it does not fit in out. */
int fy_log_dir_for(const char *file, char *out, size_t outlen);

/** Replay ------------------------------------------------------------------------------------------------------ */

enum {
    FY_LOG_REPLAY_SKIP_DAMAGED = 1, /* drop corrupt records in the middle (reported in the info) instead of failing */
    FY_LOG_REPLAY_READ_ONLY = 2,    /* do not truncate a torn tail (inspection) */
};

typedef struct st_fy_log_replay_info_t {
    uint64_t records;      /* records passed to the callback */
    uint64_t last_seq;     /* highest sequence number seen (after_seq if none): open the log with last_seq + 1 */
    unsigned segments;     /* segment files read */
    int torn;              /* 1 if a torn tail was dropped */
    char torn_segment[32]; /* file name inside dir */
    uint64_t torn_offset;  /* where the tail was cut */
    uint64_t torn_bytes;   /* bytes dropped there */
    uint64_t damaged;      /* corrupt regions skipped (FY_LOG_REPLAY_SKIP_DAMAGED) */
    uint64_t damaged_bytes;
} fy_log_replay_info_t;

/** Called for every record with seq > after_seq, in order. A nonzero return stops the replay with that value. */
typedef int (*fy_log_replay_cb)(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len);

/**
 * Reads the segments in dir in order and calls cb for every record after after_seq. A missing or empty directory is
 * not an error. A short or corrupt record at the very end of the last segment is a torn tail (a crash during a
 * write): it is dropped, reported in info, and the file is truncated there (unless FY_LOG_REPLAY_READ_ONLY) so that
 * later segments follow a clean one. Anything else that is wrong - a corrupt record with valid records after it,
 * damage in an earlier segment, a bad segment header, a gap in the sequence numbers - returns -1 with a message naming
 * the file and the offset, unless FY_LOG_REPLAY_SKIP_DAMAGED is set. Returns 0, -1, or the callback's nonzero value.
 */
int fy_log_replay(const char *dir, uint64_t after_seq, unsigned flags, fy_log_replay_cb cb, void *ctx, fy_log_replay_info_t *info,
                  char *err, size_t errlen);

/** Shared with persist_snap.c ---------------------------------------------------------------------------------- */

/** fdatasync (data_only) or fsync; tests replace it to inject failures. */
extern int (*fy__persist_sync)(int fd, int data_only);

/** write(2) for the log's segments; tests replace it to inject failures (a short write, then ENOSPC). */
extern ssize_t (*fy__persist_write)(int fd, const void *buf, size_t n);

/** Opens the directory and fsyncs it, so that a rename, create or unlink in it is durable. */
int fy__persist_sync_dir(const char *dir);

/* Formats an error message into err (errlen bytes; err may be NULL), for the log and the snapshot files alike. */
__attribute__((format(printf, 3, 4))) void fy__persist_err(char *err, size_t errlen, const char *fmt, ...);

#endif
