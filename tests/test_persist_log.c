/*
 * test_persist_log.c: the write-ahead log (src/persist_log.c): CRC-32C vectors, round trips across rotation and
 * reopen, truncation after a snapshot, every truncation point and every flipped byte of a small log (torn tail
 * dropped and cut vs. damage reported with the right offset), leftover temp segments, sync and write failures (a full
 * disk: what poisons the log, what fy_log_failure names, what a restart replays), and the writer thread (records
 * submitted without waiting are synced and notified in order; a failed sync is notified once).
 */
#include "persist_testlib.h"

#include "../src/common/crc32c.c"
#include "../src/persist/persist_log.c"
#include "log_notes.h"

static char *D;

static int setup(void **state)
{
    (void)state;
    D = pt_mkdtemp();
    fy__persist_sync = default_sync;
    fy__persist_write = write;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pt_rmdir(D);
    fy__persist_sync = default_sync;
    return 0;
}

static void seg_path(char *out, size_t n, uint64_t first)
{
    snprintf(out, n, "%s/%016" PRIx64 ".wal", D, first);
}

/* Opens a log at next_seq, appends recs (type, payload) and closes it. */
typedef struct {
    unsigned type;
    const char *payload;
} rec_t;

static void write_log(uint64_t next_seq, const rec_t *recs, size_t n)
{
    fy_log_t *log;
    char err[256];
    assert_int_equal(fy_log_open(D, next_seq, &log, err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        assert_int_equal(fy_log_append(log, recs[i].type, recs[i].payload, strlen(recs[i].payload), &seq), 0);
        assert_int_equal(seq, next_seq + i);
    }
    assert_int_equal(fy_log_close(log), 0);
}

static int replay(uint64_t after, unsigned flags, pt_seen_t *seen, fy_log_replay_info_t *info, char *err)
{
    pt_seen_free(seen);
    err[0] = 0;
    return fy_log_replay(D, after, flags, pt_collect, seen, info, err, 512);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* the check value of CRC-32C (RFC 3720 appendix B.4 lists more) */
    assert_int_equal(fy_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(fy_crc32c(0, "", 0), 0);
    static const uint8_t zeros[32];
    assert_int_equal(fy_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* chaining equals one pass, and the table and SSE4.2 paths agree at every length and alignment */
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t a = 0; a < 8; a++)
        for (size_t n = 0; n + a <= sizeof(buf); n += 13) {
            uint32_t one = fy_crc32c(0, buf + a, n);
            assert_int_equal(fy_crc32c(fy_crc32c(0, buf + a, n / 3), buf + a + n / 3, n - n / 3), one);
            assert_int_equal(~crc_sw(~0u, buf + a, n), one);
        }
}

static const rec_t three[] = {{1, "push job=a"}, {2, "delete job=b"}, {3, "wipe"}};

static void test_round_trip(void **state)
{
    (void)state;
    /* sizes around the buffer and framing edges, every type value class */
    static char big[70000];
    memset(big, 'x', sizeof(big) - 1);
    const rec_t recs[] = {{1, ""}, {255, "a"}, {7, "0123456789abcdef"}, {1, big}};
    write_log(1, recs, 4);
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    char err[512];
    assert_int_equal(replay(0, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(seen.seq[i], i + 1);
        assert_int_equal(seen.type[i], recs[i].type);
        assert_int_equal(seen.len[i], strlen(recs[i].payload));
        assert_memory_equal(seen.data[i], recs[i].payload, seen.len[i]);
    }
    assert_int_equal(info.records, 4);
    assert_int_equal(info.last_seq, 4);
    assert_int_equal(info.segments, 1);
    assert_int_equal(info.torn, 0);

    /* after_seq skips what a snapshot covers; last_seq still reports the end */
    assert_int_equal(replay(3, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.seq[0], 4);
    assert_int_equal(info.last_seq, 4);

    /* reopen after replay: a new segment continues the numbering */
    write_log(info.last_seq + 1, three, 3);
    assert_int_equal(replay(0, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, 7);
    assert_int_equal(info.segments, 2);
    assert_int_equal(seen.seq[6], 7);
    assert_memory_equal(seen.data[6], "wipe", 4);

    /* the callback stops the replay with its value */
    pt_seen_free(&seen);
    seen.stop_at = 2;
    assert_int_equal(fy_log_replay(D, 0, 0, pt_collect, &seen, &info, err, sizeof(err)), 7);
    assert_int_equal(seen.n, 2);
    pt_seen_free(&seen);

    /* an empty or missing directory is an empty log */
    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/none", D);
    assert_int_equal(fy_log_replay(missing, 9, 0, pt_collect, &seen, &info, err, sizeof(err)), 0);
    assert_int_equal(info.last_seq, 9);
    assert_int_equal(seen.n, 0);
}

static void test_rotate_truncate(void **state)
{
    (void)state;
    fy_log_t *log;
    char err[512];
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
    uint64_t first, seq;
    for (int i = 0; i < 5; i++)
        assert_int_equal(fy_log_append(log, 1, "r", 1, &seq), 0);
    assert_int_equal(fy_log_rotate(log, &first), 0);
    assert_int_equal(first, 6);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fy_log_append(log, 1, "s", 1, &seq), 0);
    /* submitted but not yet waited for: rotation makes it durable in the old segment */
    assert_int_equal(fy_log_submit(log, 2, "t", 1, &seq), 0);
    assert_int_equal(seq, 11);
    assert_int_equal(fy_log_rotate(log, &first), 0);
    assert_int_equal(first, 12);
    assert_int_equal(fy_log_wait(log, 11), 0);
    assert_int_equal(fy_log_append(log, 3, "u", 1, &seq), 0);

    char p1[4200], p6[4200], p12[4200];
    seg_path(p1, sizeof(p1), 1);
    seg_path(p6, sizeof(p6), 6);
    seg_path(p12, sizeof(p12), 12);
    /* a snapshot covering up to 4 does not cover segment 1 (1..5); one covering 7 frees segment 1 only */
    assert_int_equal(fy_log_truncate_before(log, 5), 0);
    assert_true(pt_exists(p1));
    assert_int_equal(fy_log_truncate_before(log, 8), 1);
    assert_false(pt_exists(p1));
    assert_true(pt_exists(p6));
    /* the current segment is never deleted */
    assert_int_equal(fy_log_truncate_before(log, 100), 1);
    assert_false(pt_exists(p6));
    assert_true(pt_exists(p12));
    fy_log_stats_t st;
    fy_log_get_stats(log, &st);
    assert_int_equal(st.appends, 12);
    assert_int_equal(st.last_seq, 12);
    assert_int_equal(st.durable_seq, 12);
    assert_int_equal(fy_log_close(log), 0);

    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    assert_int_equal(replay(11, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.seq[0], 12);
    /* without a snapshot covering 1..11 the deleted records are missing: an error, not a silent start */
    assert_int_equal(replay(0, 0, &seen, &info, err), -1);
    char want[4300];
    snprintf(want, sizeof(want),
             "%s/000000000000000c.wal: offset 0: log starts at sequence number 12 but the snapshot covers only up "
             "to 0 (records are missing)",
             D);
    assert_string_equal(err, want);
    assert_int_equal(replay(0, FY_LOG_REPLAY_SKIP_DAMAGED, &seen, &info, err), 0);
    assert_int_equal(seen.n, 1);
    pt_seen_free(&seen);
}

static void test_open_rules(void **state)
{
    (void)state;
    fy_log_t *log;
    char err[512], want[4300];
    assert_int_equal(fy_log_open(D, 0, &log, err, sizeof(err)), -1);
    /* leftovers of a crash during segment creation are removed; a header-only segment at next_seq is replaced */
    char tmp[4200], p5[4200];
    snprintf(tmp, sizeof(tmp), "%s/0000000000000003.wal.tmp", D);
    pt_write(tmp, "junk", 4);
    write_log(5, NULL, 0);
    seg_path(p5, sizeof(p5), 5);
    assert_true(pt_exists(p5));
    write_log(5, three, 1);
    assert_false(pt_exists(tmp));
    /* a segment with records at or after next_seq means the caller skipped the replay */
    assert_int_equal(fy_log_open(D, 5, &log, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "log %s: segment 0000000000000005.wal already holds records from sequence number 5", D);
    assert_string_equal(err, want);
    assert_int_equal(fy_log_open(D, 3, &log, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "log %s: segment 0000000000000005.wal starts after sequence number 3 (replay first)", D);
    assert_string_equal(err, want);
    /* a file where the directory should be */
    char file[4200];
    snprintf(file, sizeof(file), "%s/plain", D);
    pt_write(file, "x", 1);
    assert_int_equal(fy_log_open(file, 1, &log, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "open log directory %s: Not a directory", file);
    assert_string_equal(err, want);
    /* bad arguments */
    assert_int_equal(fy_log_open(D, 6, &log, err, sizeof(err)), 0);
    errno = 0;
    assert_int_equal(fy_log_append(log, 0, "x", 1, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(fy_log_append(log, 256, "x", 1, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(fy_log_close(log), 0);
    char dirname_out[15];
    assert_int_equal(fy_log_dir_for("/var/lib/x", dirname_out, sizeof(dirname_out)), 0);
    assert_string_equal(dirname_out, "/var/lib/x.wal");
    assert_int_equal(fy_log_dir_for("/var/lib/xy", dirname_out, sizeof(dirname_out)), -1);
}

/* Every prefix of a 3-record segment: a cut at a record boundary is a clean log, anything else a torn tail that
 * replay drops and cuts away, so that the next replay is clean. Shorter than the header: an error. */
static void test_every_truncation(void **state)
{
    (void)state;
    write_log(1, three, 3);
    char p[4200], err[512];
    seg_path(p, sizeof(p), 1);
    size_t size;
    unsigned char *orig = pt_read(p, &size);
    size_t bounds[4] = {FY_LOG_SEG_HEADER};
    for (int i = 0; i < 3; i++)
        bounds[i + 1] = bounds[i] + FY_LOG_REC_HEADER + strlen(three[i].payload);
    assert_int_equal(bounds[3], size);
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    for (size_t cut = 0; cut < size; cut++) {
        pt_write(p, orig, cut);
        int rc = replay(0, 0, &seen, &info, err);
        if (cut < FY_LOG_SEG_HEADER) {
            char want[4400];
            snprintf(want, sizeof(want), "%s: offset 0: file shorter than the segment header", p);
            assert_int_equal(rc, -1);
            assert_string_equal(err, want);
            continue;
        }
        size_t whole = 0;
        while (whole < 3 && bounds[whole + 1] <= cut)
            whole++;
        assert_int_equal(rc, 0);
        assert_int_equal(seen.n, whole);
        assert_int_equal(info.torn, cut != bounds[whole]);
        if (info.torn) {
            assert_string_equal(info.torn_segment, "0000000000000001.wal");
            assert_int_equal(info.torn_offset, bounds[whole]);
            assert_int_equal(info.torn_bytes, cut - bounds[whole]);
        }
        size_t after;
        free(pt_read(p, &after));
        assert_int_equal(after, bounds[whole]);
        assert_int_equal(replay(0, 0, &seen, &info, err), 0);
        assert_int_equal(info.torn, 0);
        assert_int_equal(seen.n, whole);
    }
    /* read-only replay reports the tail but leaves the file alone */
    pt_write(p, orig, size - 1);
    assert_int_equal(replay(0, FY_LOG_REPLAY_READ_ONLY, &seen, &info, err), 0);
    assert_int_equal(info.torn, 1);
    size_t after;
    free(pt_read(p, &after));
    assert_int_equal(after, size - 1);
    /* the same cut in a segment that is not the last is damage: restarts never leave a torn segment behind */
    write_log(3, three, 1);
    assert_int_equal(replay(0, 0, &seen, &info, err), -1);
    char want[4400];
    snprintf(want, sizeof(want),
             "%s: offset %zu: corrupt record (record runs past the end of the file) in a segment "
             "that is not the last",
             p, bounds[2]);
    assert_string_equal(err, want);
    pt_seen_free(&seen);
    free(orig);
}

/* Every single-byte flip of a 3-record segment: in the header an error at offset 0; in the first two records an
 * error at that record's offset (a valid record follows); in the last record a torn tail. */
static void test_every_flip(void **state)
{
    (void)state;
    write_log(1, three, 3);
    char p[4200], err[512], want[4400];
    seg_path(p, sizeof(p), 1);
    size_t size;
    unsigned char *orig = pt_read(p, &size);
    size_t bounds[4] = {FY_LOG_SEG_HEADER};
    for (int i = 0; i < 3; i++)
        bounds[i + 1] = bounds[i] + FY_LOG_REC_HEADER + strlen(three[i].payload);
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    unsigned char *b = malloc(size);
    for (size_t at = 0; at < size; at++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(b, orig, size);
            b[at] ^= (unsigned char)(1u << bit);
            pt_write(p, b, size);
            int rc = replay(0, 0, &seen, &info, err);
            if (at < FY_LOG_SEG_HEADER) {
                assert_int_equal(rc, -1);
                snprintf(want, sizeof(want), "%s: offset 0: ", p);
                assert_memory_equal(err, want, strlen(want));
                continue;
            }
            int k = at < bounds[1] ? 0 : at < bounds[2] ? 1 : 2;
            if (k == 2) {
                assert_int_equal(rc, 0);
                assert_int_equal(info.torn, 1);
                assert_int_equal(info.torn_offset, bounds[2]);
                assert_int_equal(seen.n, 2);
                continue;
            }
            assert_int_equal(rc, -1);
            snprintf(want, sizeof(want), "%s: offset %zu: corrupt record (", p, bounds[k]);
            assert_memory_equal(err, want, strlen(want));
            snprintf(want, sizeof(want), "a valid record follows at offset %zu", bounds[k + 1]);
            assert_non_null(strstr(err, want));
            /* with the flag the damaged record is skipped and the rest loads */
            assert_int_equal(replay(0, FY_LOG_REPLAY_SKIP_DAMAGED, &seen, &info, err), 0);
            assert_int_equal(seen.n, 2);
            assert_int_equal(info.damaged, 1);
            assert_int_equal(info.damaged_bytes, bounds[k + 1] - bounds[k]);
            assert_int_equal(seen.seq[k], (uint64_t)k + 2);
        }
    }
    pt_seen_free(&seen);
    free(b);
    free(orig);
}

/* The exact messages of the other damage kinds. */
static void test_damage_messages(void **state)
{
    (void)state;
    write_log(1, three, 3);
    char p[4200], err[512], want[4400];
    seg_path(p, sizeof(p), 1);
    size_t size;
    unsigned char *orig = pt_read(p, &size);
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    /* a segment renamed so that its header disagrees with its name */
    char p9[4200];
    seg_path(p9, sizeof(p9), 9);
    assert_int_equal(rename(p, p9), 0);
    assert_int_equal(replay(8, 0, &seen, &info, err), -1);
    snprintf(want, sizeof(want), "%s: offset 0: header sequence number does not match the file name", p9);
    assert_string_equal(err, want);
    unlink(p9);
    /* a segment of another program */
    unsigned char *b = malloc(size);
    memcpy(b, orig, size);
    memcpy(b, "GARBAGE!", 8);
    pt_write(p, b, size);
    assert_int_equal(replay(0, 0, &seen, &info, err), -1);
    snprintf(want, sizeof(want), "%s: offset 0: bad magic (not a ferry log segment)", p);
    assert_string_equal(err, want);
    /* ... skipped as a whole with the flag */
    assert_int_equal(replay(0, FY_LOG_REPLAY_SKIP_DAMAGED, &seen, &info, err), 0);
    assert_int_equal(info.damaged, 1);
    assert_int_equal(seen.n, 0);
    /* a zero-filled tail (a crash after the file grew, before the data landed) is torn, not damage */
    unsigned char *z = calloc(1, size + 100);
    memcpy(z, orig, size);
    pt_write(p, z, size + 100);
    assert_int_equal(replay(0, 0, &seen, &info, err), 0);
    assert_int_equal(info.torn, 1);
    assert_int_equal(info.torn_offset, size);
    assert_int_equal(info.torn_bytes, 100);
    assert_int_equal(seen.n, 3);
    pt_seen_free(&seen);
    free(z);
    free(b);
    free(orig);
}

/* Sync failures: the failing append reports the error and the log refuses everything afterwards. */
static int fail_sync_calls;

static int failing_sync(int fd, int data_only)
{
    (void)fd;
    (void)data_only;
    fail_sync_calls++;
    errno = EIO;
    return -1;
}

static void test_sync_failure(void **state)
{
    (void)state;
    fy_log_t *log;
    char err[512], want[4400];
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
    assert_int_equal(fy_log_append(log, 1, "ok", 2, NULL), 0);
    fy__persist_sync = failing_sync;
    errno = 0;
    assert_int_equal(fy_log_append(log, 1, "lost", 4, NULL), -1);
    assert_int_equal(errno, EIO);
    fy__persist_sync = default_sync;
    /* poisoned even though syncing works again: the kernel may have dropped the failed pages */
    assert_int_equal(fy_log_append(log, 1, "later", 5, NULL), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(fy_log_rotate(log, NULL), -1);
    fy_log_stats_t st;
    fy_log_get_stats(log, &st);
    assert_int_equal(st.durable_seq, 1);
    assert_int_equal(fy_log_close(log), -1);

    /* a failing sync while creating a segment fails the open and leaves no temp file */
    pt_rmdir(D);
    D = pt_mkdtemp();
    fy__persist_sync = failing_sync;
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "write %s/0000000000000001.wal.tmp: Input/output error", D);
    assert_string_equal(err, want);
    fy__persist_sync = default_sync;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s/0000000000000001.wal.tmp", D);
    assert_false(pt_exists(tmp));
    /* a rotation that cannot sync keeps the old segment current */
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
    assert_int_equal(fy_log_append(log, 1, "a", 1, NULL), 0);
    fail_sync_calls = 0;
    fy__persist_sync = failing_sync;
    assert_int_equal(fy_log_rotate(log, NULL), -1);
    fy__persist_sync = default_sync;
    assert_int_equal(fy_log_append(log, 1, "b", 1, NULL), 0);
    assert_int_equal(fy_log_close(log), 0);
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    assert_int_equal(replay(0, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(info.segments, 1);
    pt_seen_free(&seen);
}

#define SUBMITTERS 4
#define PER_SUBMITTER 50

typedef struct {
    fy_log_t *log;
    int id;
    uint64_t last;
} submitter_t;

static void *submit_some(void *arg)
{
    submitter_t *s = arg;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        char p[32];
        int n = snprintf(p, sizeof(p), "t%d r%03d", s->id, i);
        assert_int_equal(fy_log_submit(s->log, 1, p, (size_t)n, &s->last), 0);
    }
    return NULL;
}

static void test_writer(void **state)
{
    (void)state;
    static fy_log_notes_t n = FY_LOG_NOTES_INIT;
    fy_log_t *log;
    char err[512];
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
    assert_int_equal(fy_log_start_writer(log, fy_log_note, &n), 0);
    pthread_t t[SUBMITTERS];
    submitter_t sub[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        sub[i] = (submitter_t){log, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, submit_some, &sub[i]), 0);
    }
    uint64_t last = 0;
    for (int i = 0; i < SUBMITTERS; i++) {
        pthread_join(t[i], NULL);
        last = sub[i].last > last ? sub[i].last : last;
    }
    assert_int_equal(last, SUBMITTERS * PER_SUBMITTER);
    /* nobody waits: the writer alone makes them durable and says so */
    fy_log_notes_wait(&n, last);
    assert_int_equal(n.durable, last);
    assert_int_equal(n.errs, 0);
    assert_int_equal(n.went_down, 0);
    fy_log_stats_t st;
    fy_log_get_stats(log, &st);
    assert_int_equal(st.durable_seq, last);
    assert_int_equal(n.calls, st.syncs); /* one notification per sync */
    /* fy_log_wait still works next to the writer, and a rotation's flush notifies too */
    uint64_t seq;
    assert_int_equal(fy_log_append(log, 2, "waited", 6, &seq), 0);
    assert_int_equal(seq, last + 1);
    assert_int_equal(fy_log_submit(log, 3, "rotated", 7, &seq), 0);
    assert_int_equal(fy_log_rotate(log, NULL), 0);
    fy_log_notes_wait(&n, seq);
    assert_int_equal(n.durable, seq);
    assert_int_equal(fy_log_close(log), 0);

    /* replay: all of them, each submitter's records in its order */
    pt_seen_t seen = {0};
    fy_log_replay_info_t info;
    assert_int_equal(replay(0, 0, &seen, &info, err), 0);
    assert_int_equal(seen.n, SUBMITTERS * PER_SUBMITTER + 2);
    int next[SUBMITTERS] = {0};
    for (size_t i = 0; i < SUBMITTERS * PER_SUBMITTER; i++) {
        int id, r;
        char rec[32];
        assert_int_equal(seen.seq[i], i + 1);
        assert_true(seen.len[i] < sizeof(rec));
        memcpy(rec, seen.data[i], seen.len[i]); /* payloads are not NUL-terminated */
        rec[seen.len[i]] = '\0';
        assert_int_equal(sscanf(rec, "t%d r%d", &id, &r), 2);
        assert_int_equal(r, next[id]++);
    }
    pt_seen_free(&seen);
}

/* Write failures (a full disk): the append that hit it returns the errno, the log is poisoned, fy_log_failure names
 * the operation, the segment and the first errno (later refusals are EIO and do not replace it), and a restart's
 * replay keeps every acknowledged record. */
static enum { WF_NONE, WF_HALF_THEN_ENOSPC, WF_ENOSPC } write_mode;

static ssize_t failing_write(int fd, const void *buf, size_t n)
{
    if (write_mode == WF_HALF_THEN_ENOSPC && n > 1) {
        write_mode = WF_ENOSPC; /* what a file system does when it fills up during a write: short, then ENOSPC */
        return write(fd, buf, n / 2);
    }
    if (write_mode != WF_NONE) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, n);
}

static void test_write_failure(void **state)
{
    (void)state;
    static const struct {
        int write_mode, fail_sync; /* the fault */
        int want_errno;            /* from the failing append */
        const char *want_op;       /* fy_log_failure: "<op> <segment>: <strerror>" */
        uint64_t want_replayed;    /* records a restart finds */
        int want_torn;
        const char *note;
    } cases[] = {
        {WF_HALF_THEN_ENOSPC, 0, ENOSPC, "write", 1, 1, "disk full in the middle of a record: torn tail, dropped at restart"},
        {WF_ENOSPC, 0, ENOSPC, "write", 1, 0, "disk full before the record: nothing of it on disk"},
        {WF_NONE, 1, EIO, "fdatasync", 2, 0,
         "sync error: the refused record may still reach the disk and replay (it got an error, never a 2xx)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pt_rmdir(D);
        D = pt_mkdtemp();
        fy_log_t *log;
        char err[512], want[4400];
        assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
        assert_int_equal(fy_log_append(log, 1, "acknowledged", 12, NULL), 0);
        assert_null(fy_log_failure(log));
        write_mode = cases[i].write_mode;
        fy__persist_write = failing_write;
        if (cases[i].fail_sync)
            fy__persist_sync = failing_sync;
        errno = 0;
        if (fy_log_append(log, 1, "refused", 7, NULL) != -1 || errno != cases[i].want_errno)
            fail_msg("case %zu (%s): append gave errno %d, want %d", i, cases[i].note, errno, cases[i].want_errno);
        snprintf(want, sizeof(want), "%s %s/0000000000000001.wal: %s", cases[i].want_op, D, strerror(cases[i].want_errno));
        assert_non_null(fy_log_failure(log));
        assert_string_equal(fy_log_failure(log), want);
        /* space is back, but the log stays poisoned and keeps naming the first failure */
        fy__persist_write = write;
        fy__persist_sync = default_sync;
        errno = 0;
        assert_int_equal(fy_log_append(log, 1, "later", 5, NULL), -1);
        assert_int_equal(errno, EIO);
        assert_string_equal(fy_log_failure(log), want);
        assert_int_equal(fy_log_close(log), -1);
        pt_seen_t seen = {0};
        fy_log_replay_info_t info;
        memset(&info, 0, sizeof(info));
        assert_int_equal(replay(0, 0, &seen, &info, err), 0);
        if (seen.n != cases[i].want_replayed || info.torn != cases[i].want_torn)
            fail_msg("case %zu (%s): replayed %zu records (torn %d), want %" PRIu64 " (torn %d)", i, cases[i].note, (size_t)seen.n,
                     info.torn, cases[i].want_replayed, cases[i].want_torn);
        assert_int_equal(seen.len[0], 12);
        assert_memory_equal(seen.data[0], "acknowledged", 12);
        pt_seen_free(&seen);
    }
}

static void test_writer_failure(void **state)
{
    (void)state;
    static fy_log_notes_t n = FY_LOG_NOTES_INIT;
    fy_log_t *log;
    char err[512];
    assert_int_equal(fy_log_open(D, 1, &log, err, sizeof(err)), 0);
    assert_int_equal(fy_log_start_writer(log, fy_log_note, &n), 0);
    uint64_t seq;
    assert_int_equal(fy_log_submit(log, 1, "ok", 2, &seq), 0);
    fy_log_notes_wait(&n, seq);
    assert_int_equal(n.durable, 1);
    fy__persist_sync = failing_sync;
    assert_int_equal(fy_log_submit(log, 1, "lost", 4, &seq), 0);
    fy_log_notes_wait(&n, seq);
    /* told once: record 1 is durable, the rest never will be */
    assert_int_equal(n.durable, 1);
    assert_int_equal(n.err, EIO);
    assert_int_equal(n.errs, 1);
    char want[4400];
    snprintf(want, sizeof(want), "fdatasync %s/0000000000000001.wal: Input/output error", D);
    assert_string_equal(fy_log_failure(log), want);
    fy__persist_sync = default_sync;
    errno = 0;
    assert_int_equal(fy_log_submit(log, 1, "later", 5, &seq), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(fy_log_close(log), -1);
    assert_int_equal(n.errs, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
