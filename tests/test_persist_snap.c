/*
 * test_persist_snap.c: snapshot files (src/persist_snap.c): round trip, missing file, every truncation point and
 * every flipped byte (detected before any record is delivered, at the offset of the damaged structure), temp-file
 * clean-up (ours and the Pushgateway's), and failures while writing (producer abort, fsync error).
 */
#include "persist_testlib.h"

#include "../src/common/crc32c.c"
#include "../src/persist/persist_log.c"
#include "../src/persist/persist_snap.c"

static char *D;
static char P[4200];

static int setup(void **state)
{
    (void)state;
    D = pt_mkdtemp();
    snprintf(P, sizeof(P), "%s/ferry.db", D);
    fy__persist_sync = default_sync;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pt_rmdir(D);
    fy__persist_sync = default_sync;
    return 0;
}

typedef struct {
    const char *const *recs;
    size_t n;
    int fail_after; /* return this many + 1 from the producer after that many records (0: never) */
} producer_t;

static int produce(void *ctx, fy_snap_writer_t *w)
{
    producer_t *p = ctx;
    for (size_t i = 0; i < p->n; i++) {
        if (p->fail_after != 0 && (int)i == p->fail_after)
            return 42;
        if (fy_snap_put(w, p->recs[i], strlen(p->recs[i])) != 0)
            return -1;
    }
    return 0;
}

static int collect(void *ctx, const void *payload, size_t len)
{
    return pt_collect(ctx, 0, 0, payload, len);
}

static const char *const small[] = {"job=a|push_time_seconds 1", "", "job=b|x 2"};

static void test_round_trip(void **state)
{
    (void)state;
    pt_seen_t seen = {0};
    fy_snap_info_t info;
    char err[512];
    /* no file is a first start, not an error */
    assert_int_equal(fy_snap_read(P, collect, &seen, &info, err, sizeof(err)), 1);

    static char big[300000]; /* larger than the write buffer */
    memset(big, 'y', sizeof(big) - 1);
    const char *const recs[] = {small[0], small[1], big, small[2]};
    producer_t pr = {recs, 4, 0};
    assert_int_equal(fy_snap_write(P, 77, produce, &pr, &info, err, sizeof(err)), 0);
    assert_int_equal(info.records, 4);
    size_t size;
    free(pt_read(P, &size));
    assert_int_equal(info.bytes, size);
    assert_int_equal(size, FY_SNAP_HEADER + FY_SNAP_TRAILER + 4 * 8 + strlen(small[0]) + strlen(big) + strlen(small[2]));
    memset(&info, 0, sizeof(info));
    assert_int_equal(fy_snap_read(P, collect, &seen, &info, err, sizeof(err)), 0);
    assert_int_equal(info.wal_seq, 77);
    assert_int_equal(info.records, 4);
    assert_int_equal(seen.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(seen.len[i], strlen(recs[i]));
        assert_memory_equal(seen.data[i], recs[i], seen.len[i]);
    }
    pt_seen_free(&seen);
    /* an empty snapshot is valid; rewriting replaces the file and leaves no temp file */
    producer_t none = {NULL, 0, 0};
    assert_int_equal(fy_snap_write(P, 0, produce, &none, NULL, err, sizeof(err)), 0);
    assert_int_equal(fy_snap_read(P, collect, &seen, &info, err, sizeof(err)), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(info.records, 0);
    assert_int_equal(fy_snap_cleanup(P, NULL, NULL), 0);
    /* the callback stops the read */
    producer_t three = {small, 3, 0};
    assert_int_equal(fy_snap_write(P, 1, produce, &three, NULL, err, sizeof(err)), 0);
    seen.stop_at = 1;
    assert_int_equal(fy_snap_read(P, collect, &seen, &info, err, sizeof(err)), 7);
    pt_seen_free(&seen);
    /* a path without a directory part writes in the current directory */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(D), 0);
    assert_int_equal(fy_snap_write("rel.db", 5, produce, &three, NULL, err, sizeof(err)), 0);
    assert_int_equal(fy_snap_read("rel.db", collect, &seen, &info, err, sizeof(err)), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(chdir(cwd), 0);
    pt_seen_free(&seen);
}

/* Offsets of the structures of the 3-record snapshot: header, records, trailer. */
static size_t small_bounds(size_t *b)
{
    b[0] = 0;
    b[1] = FY_SNAP_HEADER;
    for (int i = 0; i < 3; i++)
        b[i + 2] = b[i + 1] + 8 + strlen(small[i]);
    return 5; /* b[4] is the trailer */
}

static void test_every_truncation(void **state)
{
    (void)state;
    char err[512], want[9000];
    producer_t pr = {small, 3, 0};
    assert_int_equal(fy_snap_write(P, 9, produce, &pr, NULL, err, sizeof(err)), 0);
    size_t size, b[5];
    unsigned char *orig = pt_read(P, &size);
    small_bounds(b);
    assert_int_equal(b[4] + FY_SNAP_TRAILER, size);
    pt_seen_t seen = {0};
    for (size_t cut = 0; cut < size; cut++) {
        pt_write(P, orig, cut);
        assert_int_equal(fy_snap_read(P, collect, &seen, NULL, err, sizeof(err)), -1);
        assert_int_equal(seen.n, 0); /* nothing delivered from a damaged file */
        if (cut < FY_SNAP_HEADER)
            snprintf(want, sizeof(want), "%s: offset 0: truncated header (%zu of 28 bytes)", P, cut);
        else if (cut >= b[4] + 4)
            snprintf(want, sizeof(want), "%s: offset %zu: truncated trailer (%zu of 24 bytes)", P, b[4], cut - b[4]);
        else {
            size_t k = 1;
            while (k < 4 && b[k + 1] <= cut)
                k++;
            if (k == 4 || cut - b[k] < 4)
                snprintf(want, sizeof(want),
                         "%s: offset %zu: truncated: the file ends after %zu records, without a "
                         "trailer",
                         P, b[k], k - 1);
            else
                snprintf(want, sizeof(want),
                         "%s: offset %zu: truncated: record of %zu bytes runs past the end of the "
                         "file (%zu bytes)",
                         P, b[k], strlen(small[k - 1]), cut);
        }
        assert_string_equal(err, want);
    }
    /* and bytes appended after the trailer */
    unsigned char *longer = malloc(size + 3);
    memcpy(longer, orig, size);
    memcpy(longer + size, "abc", 3);
    pt_write(P, longer, size + 3);
    assert_int_equal(fy_snap_read(P, collect, &seen, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: offset %zu: 3 unexpected bytes after the trailer", P, size);
    assert_string_equal(err, want);
    free(longer);
    free(orig);
}

static void test_every_flip(void **state)
{
    (void)state;
    char err[512], want[9000];
    producer_t pr = {small, 3, 0};
    assert_int_equal(fy_snap_write(P, 9, produce, &pr, NULL, err, sizeof(err)), 0);
    size_t size, b[5];
    unsigned char *orig = pt_read(P, &size);
    small_bounds(b);
    unsigned char *m = malloc(size);
    pt_seen_t seen = {0};
    for (size_t at = 0; at < size; at++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, orig, size);
            m[at] ^= (unsigned char)(1u << bit);
            pt_write(P, m, size);
            assert_int_equal(fy_snap_read(P, collect, &seen, NULL, err, sizeof(err)), -1);
            assert_int_equal(seen.n, 0);
            size_t k = 0;
            while (k < 4 && b[k + 1] <= at)
                k++;
            snprintf(want, sizeof(want), "%s: offset %zu: ", P, b[k]);
            assert_memory_equal(err, want, strlen(want));
        }
    }
    free(m);
    free(orig);
}

static void test_bad_files(void **state)
{
    (void)state;
    char err[512], want[9000];
    pt_seen_t seen = {0};
    /* a Pushgateway gob file is not ours (the migration reader handles those) */
    pt_write(P, "\x3b\xff\x81\x03\x01\x01\x19GroupingKeyToMetricGroup\x01\xff\x82", 33);
    assert_int_equal(fy_snap_read(P, collect, &seen, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: offset 0: not a ferry snapshot (bad magic)", P);
    assert_string_equal(err, want);
    /* a directory where the file should be */
    unlink(P);
    assert_int_equal(mkdir(P, 0700), 0);
    assert_int_equal(fy_snap_read(P, collect, &seen, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: not a regular file", P);
    assert_string_equal(err, want);
    /* ... and writing over it fails at the rename, removing the temp file */
    producer_t pr = {small, 3, 0};
    assert_int_equal(fy_snap_write(P, 1, produce, &pr, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "rename %s.tmp.%ld to %s: Is a directory", P, (long)getpid(), P);
    assert_string_equal(err, want);
    assert_int_equal(fy_snap_cleanup(P, NULL, NULL), 0);
    rmdir(P);
    /* a missing directory */
    char deep[4300];
    snprintf(deep, sizeof(deep), "%s/nonexistent-dir/x.data", D);
    assert_int_equal(fy_snap_write(deep, 1, produce, &pr, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "open %s.tmp.%ld: No such file or directory", deep, (long)getpid());
    assert_string_equal(err, want);
}

static int failing_sync_for_test(int fd, int data_only)
{
    (void)fd;
    (void)data_only;
    errno = EIO;
    return -1;
}

static void test_write_failures(void **state)
{
    (void)state;
    char err[512], want[9000];
    producer_t good = {small, 3, 0};
    assert_int_equal(fy_snap_write(P, 1, produce, &good, NULL, err, sizeof(err)), 0);
    size_t size;
    unsigned char *before = pt_read(P, &size);
    /* the producer gives up: the old snapshot stays, no temp file */
    producer_t quits = {small, 3, 2};
    assert_int_equal(fy_snap_write(P, 2, produce, &quits, NULL, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "write %s.tmp.%ld: abandoned by its producer (42)", P, (long)getpid());
    assert_string_equal(err, want);
    /* fsync fails */
    fy__persist_sync = failing_sync_for_test;
    assert_int_equal(fy_snap_write(P, 3, produce, &good, NULL, err, sizeof(err)), -1);
    fy__persist_sync = default_sync;
    snprintf(want, sizeof(want), "fsync %s.tmp.%ld: Input/output error", P, (long)getpid());
    assert_string_equal(err, want);
    size_t after;
    unsigned char *now = pt_read(P, &after);
    assert_int_equal(after, size);
    assert_memory_equal(now, before, size);
    assert_int_equal(fy_snap_cleanup(P, NULL, NULL), 0);
    free(now);
    free(before);
}

typedef struct {
    int n;
    char names[8][64];
} removed_t;

static void note_removed(void *ctx, const char *file)
{
    removed_t *r = ctx;
    const char *slash = strrchr(file, '/');
    snprintf(r->names[r->n++], 64, "%s", slash + 1);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_cleanup(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int removed;
        const char *note;
    } files[] = {
        {"ferry.db.tmp.1234", 1, "ours, from a crashed process"},
        {"ferry.db.in_progress.2551562526", 1, "the Pushgateway's os.CreateTemp pattern"},
        {"ferry.db", 0, "the snapshot itself"},
        {"ferry.db.tmp.", 0, "no suffix: not a name we create"},
        {"ferry.dbx.tmp.1", 0, "another file's temp"},
        {"other.tmp.1", 0, "unrelated"},
        {"ferry.db.wal", 0, "the log directory's name"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[4300];
        snprintf(p, sizeof(p), "%s/%s", D, files[i].name);
        pt_write(p, "x", 1);
    }
    removed_t r = {0};
    assert_int_equal(fy_snap_cleanup(P, note_removed, &r), 2);
    assert_int_equal(r.n, 2);
    qsort(r.names, 2, sizeof(r.names[0]), name_cmp);
    assert_string_equal(r.names[0], "ferry.db.in_progress.2551562526");
    assert_string_equal(r.names[1], "ferry.db.tmp.1234");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[4300];
        snprintf(p, sizeof(p), "%s/%s", D, files[i].name);
        assert_int_equal(pt_exists(p), !files[i].removed);
    }
    /* a missing directory has nothing to clean */
    char deep[4300];
    snprintf(deep, sizeof(deep), "%s/none/ferry.db", D);
    assert_int_equal(fy_snap_cleanup(deep, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
