/*
 * test_persist_log_stress.c: 2, 4 and 8 threads appending 700-byte records through group commit while another
 * thread rotates segments; bounded by a record count and by time. Every acknowledged record must replay exactly
 * once, each thread's records in its own order, with contiguous sequence numbers. Prints fsyncs per append.
 * The same again with the writer thread (durable mode's server): appenders submit and wait for its notification
 * instead of fy_log_wait, so the commit delay and the notify run against rotations. Run under TSan by `make test`.
 */
#include "persist_testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../src/common/crc32c.c"
#include "../src/persist/persist_log.c"
#include "log_notes.h"

#define PER_THREAD 400
#define MAX_SECONDS 4.0
#define REC_LEN 700

static fy_log_t *L;
static _Atomic int stop;
static int with_writer;

/* writer mode: what the writer thread notified */
static fy_log_notes_t notes = FY_LOG_NOTES_INIT;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
    unsigned id;
    unsigned acked; /* records whose append returned 0 */
    double t0;
} appender_t;

static void *appender(void *arg)
{
    appender_t *a = arg;
    unsigned char rec[REC_LEN];
    for (unsigned i = 0; i < PER_THREAD && now_s() - a->t0 < MAX_SECONDS; i++) {
        memset(rec, (int)('a' + (i % 26)), sizeof(rec));
        memcpy(rec, &a->id, sizeof(a->id));
        memcpy(rec + 4, &i, sizeof(i));
        uint64_t seq;
        if (with_writer)
            assert_int_equal(fy_log_append_notified(L, &notes, 1 + a->id, rec, sizeof(rec)), 0);
        else
            assert_int_equal(fy_log_append(L, 1 + a->id, rec, sizeof(rec), &seq), 0);
        a->acked++;
    }
    return NULL;
}

static void *rotator(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t first;
        assert_int_equal(fy_log_rotate(L, &first), 0);
    }
    return NULL;
}

typedef struct {
    unsigned next[8];
    uint64_t expect_seq;
    uint64_t n;
} check_t;

static int check(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len)
{
    check_t *c = ctx;
    assert_int_equal(seq, c->expect_seq);
    c->expect_seq++;
    assert_int_equal(len, REC_LEN);
    unsigned id, i;
    memcpy(&id, payload, 4);
    memcpy(&i, (const char *)payload + 4, 4);
    assert_true(id < 8);
    assert_int_equal(type, 1 + id);
    assert_int_equal(i, c->next[id]); /* each thread's records in its order, none lost, none twice */
    c->next[id]++;
    assert_int_equal(((const unsigned char *)payload)[REC_LEN - 1], 'a' + (i % 26));
    c->n++;
    return 0;
}

static void run(unsigned nthreads, int writer)
{
    char *dir = pt_mkdtemp(), err[512];
    assert_int_equal(fy_log_open(dir, 1, &L, err, sizeof(err)), 0);
    with_writer = writer;
    fy_log_notes_reset(&notes);
    if (writer)
        assert_int_equal(fy_log_start_writer(L, fy_log_note, &notes), 0);
    atomic_store(&stop, 0);
    pthread_t th[8], rot;
    appender_t a[8];
    double t0 = now_s();
    assert_int_equal(pthread_create(&rot, NULL, rotator, NULL), 0);
    for (unsigned t = 0; t < nthreads; t++) {
        a[t] = (appender_t){t, 0, t0};
        assert_int_equal(pthread_create(&th[t], NULL, appender, &a[t]), 0);
    }
    uint64_t acked = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        acked += a[t].acked;
    }
    atomic_store(&stop, 1);
    pthread_join(rot, NULL);
    double secs = now_s() - t0;
    fy_log_stats_t st;
    fy_log_get_stats(L, &st);
    assert_int_equal(fy_log_close(L), 0);
    assert_int_equal(notes.went_down, 0); /* the durable mark the writer reports never goes back */
    assert_int_equal(st.appends, acked);
    assert_true(st.syncs >= 1 && st.syncs <= st.appends);
    printf("# %u appenders%s: %" PRIu64 " appends, %" PRIu64 " fdatasyncs (%.2f per append, mean batch %.1f, max %" PRIu64
           "), %.0f appends/s\n",
           nthreads, writer ? " (writer thread)" : "", st.appends, st.syncs, (double)st.syncs / (double)st.appends,
           (double)st.appends / (double)st.syncs, st.max_batch, (double)st.appends / secs);

    check_t c = {{0}, 1, 0};
    fy_log_replay_info_t info;
    assert_int_equal(fy_log_replay(dir, 0, 0, check, &c, &info, err, sizeof(err)), 0);
    assert_int_equal(c.n, acked);
    assert_int_equal(info.torn, 0);
    for (unsigned t = 0; t < nthreads; t++)
        assert_int_equal(c.next[t], a[t].acked);
    pt_rmdir(dir);
}

static void test_two(void **state)
{
    (void)state;
    run(2, 0);
}

static void test_four(void **state)
{
    (void)state;
    run(4, 0);
}

static void test_eight(void **state)
{
    (void)state;
    run(8, 0);
}

static void test_writer_two(void **state)
{
    (void)state;
    run(2, 1);
}

static void test_writer_eight(void **state)
{
    (void)state;
    run(8, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two),        cmocka_unit_test(test_four),         cmocka_unit_test(test_eight),
        cmocka_unit_test(test_writer_two), cmocka_unit_test(test_writer_eight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
