/*
 * test_cluster_sim.c: a deterministic simulation of replication (docs/ha-design.md, 10 T2). One process, one thread,
 * N replicas (3 or 5), each a real store, core and fy_cluster_t assembled as app.c does, but driven by a seeded
 * simulated network instead of net.c's thread and sockets: the protocol (src/cluster/node.c) only sees links, and
 * this file plays the driver (net.c's dial, poll loop and sweep).
 *
 * The network: each connection is a pair of byte queues (dialer -> acceptor, acceptor -> dialer); bytes are cut into
 * random segments and delivered in order with a random delay of 0-50 ms; connects take 0-50 ms and are sometimes
 * refused; connections are reset (both ends closed at once); directed pairs of replicas are partitioned for a while
 * (bytes and connects stop flowing one way, without a close: only the peer timeout notices). Replicas crash (their
 * cluster, core and store are destroyed) at most one at a time with 3 replicas, two with 5. Each replica's clock is
 * the simulated clock plus a seeded skew of +-100 ms.
 *
 * Two modes, chosen per seed by a hash of it (about half each; FY_SIM_DURABLE=0 or 1 forces one):
 *  - in memory: a crashed replica restarts empty;
 *  - durable (--persistence.durable): each replica has a persistence file and write-ahead log in a scratch
 *    directory under $TMPDIR, handled by the real code: the log observer (persist_wal.c: every change a replica
 *    commits, clients' and peers' alike, as a merge, failure, delete or kill record at its stamp), the log
 *    (persist_log.c), snapshots (persist.c) and replay. Real code rather than a list of changes kept here, so that a
 *    restart replays what a real one would: it all runs without its threads (with no writer thread, fy_log_wait
 *    writes and syncs in the caller), and the files cost about half again a seed's time. This file plays the
 *    threads: the log syncs 1-8 ms after records are pending (a sync takes everything pending then: a group commit)
 *    and replication is told (fy_cluster_local_durable), as app.c's log_notify does; on three seeds in four the
 *    snapshot thread's rule runs every 0.3-3 s (a snapshot if the change path changed the store since the last one:
 *    it drains and rotates the log and truncates what it covers), on the others the log alone replays. fdatasync is
 *    a no-op; a crash makes the log's writes fail, so exactly the records not yet written (the unsynced tail) are
 *    lost. The restart is app.c's: the snapshot (fy_persist_load), the log after it (fy_log_replay, each record
 *    through fy_core_apply), the log reopened, its observer registered before replication's, fy_cluster_loaded(c, 1)
 *    if a group was loaded (readiness then needs N-W peers caught up instead of N-W+1), then catch-up from the peers.
 *    Each replica also has a disk image, a second store that outlives crashes: every record its log writes is
 *    applied to it (taken from the writes themselves, sim_write), and each snapshot reloads it from the file. A
 *    restarted replica must render (text and JSON) as its disk image, and a snapshot must load as the store it was
 *    taken of.
 *
 * The workload: PUT, POST and DELETE of a few groups and families at random replicas through fy_core_apply (origin
 * client), each family's value the change's number; now and then a family whose type conflicts with other groups'.
 * A change answered 2xx gives a ticket; the release callback acknowledges it, the time-out callback fails it.
 *
 * Checks:
 *  1. after healing everything and quiescing, every replica renders byte-identical text and JSON;
 *  2. every acknowledged change is reflected: for every group and family, the family's state on every replica is
 *     the effect of an applied change (its value is the change's number, its stamp the change's stamp) that is not
 *     older than the newest acknowledged change touching that family, or the family is absent because a newer
 *     applied PUT or DELETE cleared it;
 *  3. no replica becomes ready while it misses a change acknowledged before it (re)started;
 *  4. a ticket acknowledged by a replica is held, at that moment, by at least W replicas (a replica that crashed
 *     after holding it counts: it held it). Durable mode: held on disk: the replica's log synced the change's record,
 *     or its disk image reflects the change (superseded, or in a snapshot); a replica restarted from its files holds
 *     what they held.
 * "Holds change X" is semantic: the replica's state for X's group reflects X or something that supersedes it (see
 * covers()).
 *
 * Environment: FY_SIM_SEEDS=n seeds 1..n (default 1300, about 45 s in a Release build on this 2-core VM; 160 under
 * sanitizers), FY_SIM_FIRST_SEED=s to start elsewhere; FY_SIM_SEED=s runs seed s alone (a failure prints it with its
 * mode, and the run replays exactly); FY_SIM_DURABLE=0 or 1 every seed in memory or durable; FY_SIM_STEPS=n simulated
 * milliseconds of workload and faults per seed (default 8000, then up to 60 s of healing); FY_SIM_VERBOSE=1 the
 * replicas' log lines, and per seed its figures; FY_SIM_TRACE=1 every change applied, and the protocol's state (and
 * durable mode's disk images) at a failure (stdout); FY_SIM_DUMP=file the renders of two replicas that differ;
 * FY_SIM_DOUBLE_FAULTS=1 lets a replica crash while another one is still catching up (a second failure);
 * FY_SIM_RETENTION_MS=n a tombstone retention of n ms instead of an hour (exploration: the workload's partitions and
 * crashes then outlast it, and the drops of stale state run; below 9 s the ack timeout is shortened to retention - 4 s,
 * the floor fy_cluster_create sets, so n must be above 4000).
 *
 * Regression seeds (each fails with its fix reverted, and runs first, in its mode, whatever FY_SIM_SEEDS says):
 *   3   state transfer took the failure-time JSON stamp for the failure register (node.c on_group)
 *   46  two replicas with the same random clock slot stamped two changes alike (net.c fy_cluster_create)
 *   54  a GAP bumped the applied mark although the state request could not go out (node.c FY_MSG_GAP)
 *   291 a peer lost a second time was not resynchronised (node.c lost_node, "once")
 *   69  a replica acknowledged changes its state transfer had not brought yet (node.c acks_true; main's skip_to)
 *   7   durable: a restarted replica acknowledged changes that only its state transfer had brought, which its log
 *       never records (node.c fy_cl_flush: skip_to skipped changes still waiting for the quorum)
 *   47  a replica acknowledged a peer's change whose conflict it held back during a state transfer, before settling
 *       it: it did not hold the change (node.c on_op, HOLD_DEFERRED)
 *
 * Scripted tests (run first), for conflicts that only looked concurrent (node.c settle_deferred):
 *   test_stale_conflict   a restarted durable replica's log brings back a family the cluster deleted while it was
 *                         down; its state transfer sent another group's instance of that family, of another type and
 *                         acknowledged, before the deletion, and the replica killed it on every replica
 *   test_causal_conflict  a push that another replica accepted after applying a DELETE reached a third replica before
 *                         the DELETE did, and that replica killed it on every replica
 * and for stale state (node.c drop_if_stale):
 *   test_long_partition   a replica cut off for longer than the tombstone retention handed back a group deleted
 *                         meanwhile (durable: its log replayed the group after it had dropped it)
 *   test_stale_requester  the same replica handed the group to a replica that restarted empty as the partition healed,
 *                         or became ready with it on the transfers of a durable majority restarting then
 *   test_quiet_reconnect  a ready replica dropped its whole state at a reconnection after a quiet hour
 * The random workload cannot catch these: check 2 counts any kill as a conflict's legitimate outcome.
 */
#define _GNU_SOURCE
#include "store_testlib.h"

#include <stdarg.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "cluster_int.h"
#include "le.h"
#include "log.h"
#include "persist.h"
#include "persist_log.h"
#include "persist_testlib.h"
#include "persist_wal.h"
#include "record.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define MAXR 5
#define MAXCONN 256
#define NGROUPS 6
#define NFAMS 4 /* sim_a, sim_b, sim_c (counters), sim_x (counter or gauge: the conflicting one) */
#define FAM_X 3

static const char *const fam_names[NFAMS] = {"sim_a", "sim_b", "sim_c", "sim_x"};

/* ------------------------------------------------------------------------------------------------------------- */
/* State */

typedef struct st_seg_t {
    struct st_seg_t *next;
    int64_t at;
    int fin;
    size_t len;
    uint8_t data[];
} seg_t;

/* A connection: end 0 dialled, end 1 accepted; queue d carries bytes from end d to end 1-d. */
typedef struct {
    int used, connected, refuse;
    int rep[2];
    uint32_t inc[2];
    int link[2];
    int closed[2];
    int64_t connect_at;
    seg_t *head[2], *tail[2];
    int64_t last_at[2];
} conn_t;

enum { K_PUT, K_POST, K_DEL };
enum { ST_PENDING, ST_ACKED, ST_FAILED, ST_LOST, ST_REFUSED };

typedef struct {
    int kind, g, rep;
    unsigned fams; /* bit per family */
    int xgauge;    /* sim_x pushed as a gauge */
    int64_t stamp;
    int status;
    int64_t acked_at;
    unsigned crashed_holders; /* replicas that held it when they crashed */
    unsigned logged;          /* durable mode: replicas whose log synced its record */
} op_t;

typedef struct {
    uint64_t seq;
    size_t op;
} ticket_t;

typedef struct {
    int idx, up;
    uint32_t inc;
    int64_t skew, started, down_until;
    fy_store_t *store;
    fy_core_t core;
    fy_cluster_t *cl;
    ticket_t *tickets;
    size_t ntickets, cap_tickets;
    /* durable mode: the replica's persistence file and write-ahead log (the real ones, in S.dir) */
    char path[4096], waldir[4200];
    fy_log_t *log;
    fy_wal_t wal;
    fy_persist_t persist;
    int64_t sync_at, snap_at; /* the next sync of the log (0: nothing pending), the next snapshot */
    /* what a restart would load: the last snapshot, then every record synced since (the records are taken from the
     * log's own writes, sim_write); it outlives crashes, as a disk does */
    fy_store_t *disk;
    fy_core_t disk_core;
} replica_t;

typedef struct {
    uint64_t seed, rng;
    int n, maxdown;
    unsigned W;
    int64_t T, T0;
    replica_t r[MAXR];
    conn_t conns[MAXCONN];
    int64_t blocked[MAXR][MAXR]; /* bytes from i to j stop until then */
    char addr[MAXR][16];
    const char *addrp[MAXR];
    op_t *ops;
    size_t nops, cap_ops;
    size_t *by_stamp, cap_by_stamp; /* durable mode: applied ops by stamp (open addressing; index + 1, 0: free) */
    fy_push_arena_t arena;
    uint64_t backlog_bytes;
    int healing, trace, double_faults;
    int64_t retention;  /* --cluster.tombstone-retention of every replica (0: 1 h) */
    int durable;        /* the replicas run with --persistence.durable */
    char *dir;          /* durable mode: the replicas' files */
    int64_t snap_every; /* durable mode: the snapshot interval (0: none in this seed) */
    int capture;        /* durable mode: the replica whose log is writing (sim_write), or -1 */
    int crashing;       /* durable mode: the log's writes fail (what it had not written is lost) */
    char failure[2048];
    /* figures */
    uint64_t acked, failed, lost, refused, crashes, resets, partitions;
    uint64_t crashes_durable, lost_tails, from_snapshot, syncs, snapshots;
} sim_t;

static sim_t S;

static void sim_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sim_fail(const char *fmt, ...)
{
    if (S.failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(S.failure, sizeof(S.failure), "t=%.3fs: ", (double)(S.T - S.T0) / 1e9);
    vsnprintf(S.failure + n, sizeof(S.failure) - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint64_t mix(uint64_t z) /* splitmix64's finaliser */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
    return mix(S.rng += 0x9e3779b97f4a7c15ULL);
}

static int64_t rnd_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static int chance(double p)
{
    return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Coverage: does a replica's state reflect change X, or something that supersedes it? */

typedef struct {
    const op_t *op;
    int found, covered;
} cover_t;

static int view_is_group(const fy_store_group_view_t *g, int gi)
{
    char want[16];
    snprintf(want, sizeof(want), "g%d", gi);
    return g->nlabels == 1 && fy_str_eq_mem(g->labels[0].value, want, strlen(want));
}

static int family_covered(const fy_store_group_view_t *g, const char *name, int64_t s)
{
    for (uint32_t i = 0; i < g->nfamilies; i++)
        if (fy_str_eq_mem(g->families[i].name, name, strlen(name)))
            return g->families[i].stamp_ns >= s;
    for (uint32_t i = 0; i < g->nkills; i++)
        if (fy_str_eq_mem(g->kills[i].name, name, strlen(name)) && g->kills[i].stamp >= s)
            return 1;
    return 0;
}

static int cover_cb(void *ctx, const fy_store_group_view_t *g)
{
    cover_t *C = ctx;
    const op_t *op = C->op;
    if (!view_is_group(g, op->g))
        return 0;
    C->found = 1;
    int64_t s = op->stamp, clear = g->clear_ns > g->del_ns ? g->clear_ns : g->del_ns;
    if (clear > s || (op->kind == K_DEL && clear >= s)) {
        C->covered = 1; /* a later PUT or DELETE (or this DELETE) */
        return 1;
    }
    if (op->kind == K_DEL || g->is_tombstone)
        return 1;
    if (op->kind == K_PUT && clear != s)
        return 1;
    if (g->push_stamp_ns < s)
        return 1;
    for (int f = 0; f < NFAMS; f++)
        if ((op->fams & (1u << f)) && !family_covered(g, fam_names[f], s))
            return 1;
    C->covered = 1;
    return 1;
}

static int covers_store(fy_store_t *s, const op_t *op)
{
    cover_t C = {op, 0, 0};
    fy_store_foreach_changed_since(s, op->stamp - 1, cover_cb, &C);
    return C.covered;
}

/* A group deleted by an acknowledged DELETE older than the tombstone retention leaves nothing to look at: the
 * tombstone is collected (only the scripted long-partition test shortens the retention enough for that). */
static int collected(replica_t *R, const op_t *op)
{
    cover_t C = {op, 0, 0};
    fy_store_foreach_changed_since(R->store, 0, cover_cb, &C);
    if (C.found)
        return 0;
    for (size_t i = 0; i < S.nops; i++) {
        const op_t *d = &S.ops[i];
        if (d->status == ST_ACKED && d->kind == K_DEL && d->g == op->g && d->stamp >= op->stamp &&
            d->stamp < S.T - R->cl->cfg.retention_ns)
            return 1;
    }
    return 0;
}

static int covers(replica_t *R, const op_t *op)
{
    return covers_store(R->store, op) || collected(R, op);
}

/* "Holds" for the write quorum (check 4): in memory; in durable mode, on disk: its log synced the change's record, or
 * what a restart would load reflects it (superseded, or in a snapshot). The record alone must count: a replay can drop
 * a family that its push set, as a conflict with another group's instance of it that was cleared in memory by a
 * state transfer (not logged) and is still alive in the log. */
static int holds(replica_t *R, const op_t *op)
{
    if (!S.durable)
        return covers_store(R->store, op);
    return (op->logged & (1u << R->idx)) || covers_store(R->disk, op);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Callbacks of a replica's cluster */

static void drop_ticket_prefix(replica_t *R, size_t k)
{
    if (k == 0)
        return; /* tickets may still be NULL (memmove's arguments must not be, UBSan) */
    memmove(R->tickets, R->tickets + k, (R->ntickets - k) * sizeof(ticket_t));
    R->ntickets -= k;
}

static void on_release(void *ctx, uint64_t upto)
{
    replica_t *R = ctx;
    size_t k = 0;
    while (k < R->ntickets && R->tickets[k].seq <= upto) {
        op_t *op = &S.ops[R->tickets[k].op];
        op->status = ST_ACKED;
        op->acked_at = S.T;
        S.acked++;
        /* check 4: held by W replicas (durable mode: on their disks) */
        unsigned holders = op->crashed_holders;
        for (int i = 0; i < S.n; i++)
            if (S.r[i].up && holds(&S.r[i], op))
                holders |= 1u << i;
        if ((unsigned)__builtin_popcount(holders) < S.W)
            sim_fail("replica %d acknowledged change #%zu (%s g%d) held by %d replicas (mask %x), fewer than W=%u", R->idx,
                     R->tickets[k].op,
                     op->kind == K_PUT    ? "PUT"
                     : op->kind == K_POST ? "POST"
                                          : "DELETE",
                     op->g, __builtin_popcount(holders), holders, S.W);
        k++;
    }
    drop_ticket_prefix(R, k);
}

static void on_time_out(void *ctx, uint64_t late)
{
    replica_t *R = ctx;
    size_t k = 0;
    while (k < R->ntickets && R->tickets[k].seq <= late) {
        S.ops[R->tickets[k].op].status = ST_FAILED;
        S.failed++;
        k++;
    }
    drop_ticket_prefix(R, k);
}

static void on_ready(void *ctx, int r)
{
    replica_t *R = ctx;
    if (!r)
        return;
    atomic_store(&R->core.ready, 1);
    /* check 3: every change acknowledged before this replica (re)started is here */
    for (size_t i = 0; i < S.nops; i++) {
        op_t *op = &S.ops[i];
        if (op->status == ST_ACKED && op->acked_at < R->started && !covers(R, op)) {
            sim_fail("replica %d became ready without change #%zu (g%d, stamp %lld) acknowledged at t=%.3fs, before its "
                     "start at t=%.3fs",
                     R->idx, i, op->g, (long long)op->stamp, (double)(op->acked_at - S.T0) / 1e9,
                     (double)(R->started - S.T0) / 1e9);
            return;
        }
    }
}

static int64_t sim_now(fy_cluster_t *c)
{
    replica_t *R = c->drv;
    return S.T + R->skew;
}

static void sim_noop(fy_cluster_t *c)
{
    (void)c;
}

static void sim_close(fy_cluster_t *c, int li)
{
    (void)c;
    (void)li; /* swept by the driver after the current call, as net.c does */
}

/* net.c's dial: a connection that completes (or is refused) after 0-50 ms */
static void sim_dial(fy_cluster_t *c, int ai)
{
    replica_t *R = c->drv;
    int ci = -1;
    for (int i = 0; i < MAXCONN; i++)
        if (!S.conns[i].used) {
            ci = i;
            break;
        }
    if (ci < 0) {
        fy_cl_dial_failed(c, ai, "simulation: too many connections");
        return;
    }
    int li = fy_cl_link_new(c, ci, 1, ai);
    if (li < 0) {
        fy_cl_dial_failed(c, ai, "too many links");
        return;
    }
    c->links[li].last_tx = -1;
    conn_t *k = &S.conns[ci];
    memset(k, 0, sizeof(*k));
    k->used = 1;
    k->rep[0] = R->idx;
    k->inc[0] = R->inc;
    k->link[0] = li;
    k->rep[1] = ai; /* address i is replica i */
    k->link[1] = -1;
    k->connect_at = S.T + rnd_range(0, 50 * MS);
    k->refuse = chance(0.1);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The network */

static void segs_free(conn_t *k)
{
    for (int d = 0; d < 2; d++) {
        while (k->head[d]) {
            seg_t *s = k->head[d];
            k->head[d] = s->next;
            free(s);
        }
        k->tail[d] = NULL;
    }
}

static void conn_maybe_free(conn_t *k)
{
    if (k->used && (!k->connected || (k->closed[0] && k->closed[1]))) {
        segs_free(k);
        k->used = 0;
    }
}

static void enqueue(conn_t *k, int d, const uint8_t *p, size_t len, int fin)
{
    while (len > 0 || fin) {
        size_t n = len;
        if (len > 1 && chance(0.3))
            n = 1 + (size_t)(rnd() % (len - 1));
        seg_t *s = malloc(sizeof(*s) + n);
        assert_non_null(s);
        s->next = NULL;
        s->len = n;
        s->fin = n == len && fin;
        if (n)
            memcpy(s->data, p, n);
        int64_t at = S.T + rnd_range(0, 50 * MS);
        if (at < k->last_at[d])
            at = k->last_at[d];
        s->at = k->last_at[d] = at;
        if (k->tail[d])
            k->tail[d]->next = s;
        else
            k->head[d] = s;
        k->tail[d] = s;
        p += n;
        len -= n;
        if (s->fin)
            break;
    }
}

/* net.c's sweep: links the protocol closed are closed here (what they still had to send goes first) */
static void sweep(replica_t *R)
{
    fy_cluster_t *c = R->cl;
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = &c->links[li];
        if (!l->used || !l->closing)
            continue;
        conn_t *k = &S.conns[l->fd];
        int e = l->outbound ? 0 : 1;
        if (k->connected && !k->closed[e]) {
            enqueue(k, e, l->out.p + l->out.off, fy_wbuf_len(&l->out), 1);
            k->closed[e] = 1;
        }
        l->closing = 0;
        fy_cl_link_closed(c, li, NULL);
        conn_maybe_free(k);
    }
}

/* net.c's writes: what the links have to send goes into their connections */
static void collect(replica_t *R)
{
    fy_cluster_t *c = R->cl;
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = &c->links[li];
        if (!l->used || l->closing || fy_wbuf_len(&l->out) == 0)
            continue;
        conn_t *k = &S.conns[l->fd];
        if (!k->connected)
            continue;
        enqueue(k, l->outbound ? 0 : 1, l->out.p + l->out.off, fy_wbuf_len(&l->out), 0);
        l->out.off = l->out.n;
        fy_wbuf_compact(&l->out);
    }
}

static int blocked(int from, int to)
{
    return S.blocked[from][to] > S.T;
}

static void connects(void)
{
    for (int ci = 0; ci < MAXCONN; ci++) {
        conn_t *k = &S.conns[ci];
        if (!k->used || k->connected || S.T < k->connect_at)
            continue;
        int a = k->rep[0], b = k->rep[1];
        replica_t *A = &S.r[a], *B = &S.r[b];
        if (!A->up || A->inc != k->inc[0]) {
            k->used = 0;
            continue;
        }
        if (blocked(a, b) || blocked(b, a))
            continue; /* the SYN or its answer is lost: the dialer's timeout decides */
        int lb = -1;
        if (B->up && !k->refuse)
            lb = fy_cl_link_new(B->cl, ci, 0, -1);
        int la = k->link[0];
        if (lb < 0) {
            k->used = 0;
            fy_cl_link_closed(A->cl, la, "connection refused");
            fy_cl_dial_failed(A->cl, b, "connection refused");
            continue;
        }
        k->connected = 1;
        k->link[1] = lb;
        k->inc[1] = B->inc;
        A->cl->links[la].last_tx = S.T;
        fy_cl_link_opened(A->cl, la);
    }
}

static void deliver(void)
{
    for (int ci = 0; ci < MAXCONN; ci++) {
        conn_t *k = &S.conns[ci];
        for (int d = 0; d < 2 && k->used && k->connected; d++) {
            int to = 1 - d;
            while (k->used && k->head[d] && k->head[d]->at <= S.T && !blocked(k->rep[d], k->rep[to])) {
                seg_t *s = k->head[d];
                k->head[d] = s->next;
                if (k->head[d] == NULL)
                    k->tail[d] = NULL;
                replica_t *R = &S.r[k->rep[to]];
                if (!k->closed[to] && R->up && R->inc == k->inc[to]) {
                    fy_cl_link_t *l = &R->cl->links[k->link[to]];
                    if (s->len) {
                        fy_wbuf_add(&l->in, s->data, s->len);
                        fy_cl_input(R->cl, k->link[to]);
                    }
                    if (s->fin && l->used && !l->closing) {
                        l->closing = 1; /* EOF */
                    }
                    free(s);
                    sweep(R); /* may free k */
                } else {
                    free(s);
                }
            }
        }
        if (k->used && k->connected && k->closed[0] && k->closed[1])
            conn_maybe_free(k);
    }
}

/* Both ends closed at once, bytes in flight lost. */
static void reset_conn(conn_t *k)
{
    for (int e = 0; e < 2; e++) {
        replica_t *R = &S.r[k->rep[e]];
        if (k->closed[e] || !R->up || R->inc != k->inc[e])
            continue;
        k->closed[e] = 1;
        R->cl->links[k->link[e]].closing = 0;
        fy_cl_link_closed(R->cl, k->link[e], "connection reset");
    }
    conn_maybe_free(k);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Durable mode: each replica's real persistence file and write-ahead log (persist.h, persist_log.h, persist_wal.h) in
 * a scratch directory, driven without their threads: the simulation decides when the log syncs and when a snapshot
 * is taken. fdatasync is a no-op (a crash here is the simulation's: it drops what the log had not written). */

static fy_selfstats_t sim_stats; /* the log observer's failure flag (the log never fails here) */

static size_t stamp_slot(int64_t stamp)
{
    return (size_t)mix((uint64_t)stamp) & (S.cap_by_stamp - 1);
}

static void stamp_insert(size_t oi)
{
    if (S.cap_by_stamp < 2 * S.cap_ops) { /* at most half full: rebuilt from every applied op */
        free(S.by_stamp);
        S.cap_by_stamp = 4 * S.cap_ops;
        S.by_stamp = calloc(S.cap_by_stamp, sizeof(size_t));
        assert_non_null(S.by_stamp);
        for (size_t i = 0; i < S.nops; i++)
            if (i != oi && S.ops[i].stamp != 0)
                stamp_insert(i);
    }
    size_t k = stamp_slot(S.ops[oi].stamp);
    while (S.by_stamp[k] != 0)
        k = (k + 1) & (S.cap_by_stamp - 1);
    S.by_stamp[k] = oi + 1;
}

static op_t *stamp_find(int64_t stamp)
{
    if (S.cap_by_stamp == 0)
        return NULL;
    for (size_t k = stamp_slot(stamp); S.by_stamp[k] != 0; k = (k + 1) & (S.cap_by_stamp - 1))
        if (S.ops[S.by_stamp[k] - 1].stamp == stamp)
            return &S.ops[S.by_stamp[k] - 1];
    return NULL;
}

static char *render_both(fy_store_t *s)
{
    char *t = render_text(s, NULL), *j = render_json(s);
    size_t n = strlen(t) + strlen(j) + 16;
    char *o = malloc(n);
    snprintf(o, n, "%s\n--- json\n%s", t, j);
    free(t);
    free(j);
    return o;
}

/* One record applied as a restart replays it (app.c's replay_record): decoded, then through the change path at its
 * own stamp. 0, or -1 when it does not decode. */
static int replay_one(fy_core_t *core, unsigned type, const void *payload, size_t len)
{
    fy_record_t rec;
    int rc = fy_record_decode(type, payload, len, &rec);
    if (rc == 0) {
        fy_change_result_t res;
        fy_core_apply(core, &rec.change, &S.arena, &res);
        fy_change_result_free(&res);
    }
    fy_record_free(&rec);
    return rc;
}

static int replay_record(void *ctx, uint64_t seq, unsigned type, const void *payload, size_t len)
{
    replica_t *R = ctx;
    if (replay_one(&R->core, type, payload, len) == 0)
        return 0;
    sim_fail("replica %d: log record %llu (type %u) does not decode", R->idx, (unsigned long long)seq, type);
    return -1;
}

/* The log's writes (fy__persist_write): to the segment file, and while a replica's log syncs (S.capture), each record
 * also to that replica's disk image, so the image holds exactly what was written. During a crash they fail: the
 * records the log had not written yet are lost. */
static ssize_t sim_write(int fd, const void *buf, size_t n)
{
    if (S.crashing) {
        errno = EIO;
        return -1;
    }
    ssize_t w = write(fd, buf, n);
    const uint8_t *p = buf;
    if (S.capture < 0 || (n >= 8 && memcmp(p, "FERRYWAL", 8) == 0))
        return w; /* not a sync, or a new segment's header */
    if (w != (ssize_t)n) {
        sim_fail("a short write of replica %d's log (%zd of %zu bytes)", S.capture, w, n);
        return w;
    }
    replica_t *R = &S.r[S.capture];
    for (size_t off = 0; off < n;) {
        uint32_t len = n - off >= FY_LOG_REC_HEADER ? fy_get_le32(p + off) : 0;
        if (n - off < FY_LOG_REC_HEADER || n - off - FY_LOG_REC_HEADER < len) {
            sim_fail("replica %d's log wrote a partial record", R->idx);
            break;
        }
        const uint8_t *rec = p + off + FY_LOG_REC_HEADER;
        if (replay_one(&R->disk_core, p[off + 8], rec, len) != 0)
            sim_fail("replica %d's log wrote a record that does not decode (type %u)", R->idx, p[off + 8]);
        /* a client's change is logged as a merge or a delete at its stamp (the stamp after the version byte) */
        op_t *op = (p[off + 8] == FY_REC_MERGE || p[off + 8] == FY_REC_DELETE) && len >= 9
                       ? stamp_find((int64_t)fy_get_le64(rec + 1))
                       : NULL;
        if (op != NULL)
            op->logged |= 1u << R->idx;
        off += FY_LOG_REC_HEADER + len;
    }
    return w;
}

static int sim_sync(int fd, int data_only)
{
    (void)fd;
    (void)data_only;
    return 0;
}

/* The disk image rebuilt from the persistence file alone (nothing at a seed's start), loaded as a restart loads it */
static void disk_load(replica_t *R)
{
    if (R->disk != NULL) {
        fy_core_dispose(&R->disk_core);
        fy_store_destroy(R->disk);
    }
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.lww = 1;
    R->disk = fy_store_create(&cfg);
    assert_non_null(R->disk);
    fy_push_limits_t lim = {0, 0, 0};
    fy_core_init(&R->disk_core, R->disk, &lim, NULL);
    R->disk_core.lww = 1;
    fy_persist_t p;
    char err[1024];
    if (fy_persist_load(&p, &R->disk_core, R->path, 0, err, sizeof(err)) != 0)
        sim_fail("replica %d: its snapshot does not load: %s", R->idx, err);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.cond);
}

/* Whether a restarted replica's store is its disk image, and a snapshot's content the store it was taken of (both
 * rendered: text and JSON) */
static void same_as_disk(replica_t *R, const char *what)
{
    char *a = render_both(R->store), *b = render_both(R->disk);
    if (strcmp(a, b) != 0)
        sim_fail("replica %d: %s", R->idx, what);
    free(a);
    free(b);
}

/* The log syncs everything submitted so far, and replication is told, as the log's writer thread tells it (app.c's
 * log_notify). One sync takes what is pending when it runs: a group commit. */
static void log_sync(replica_t *R)
{
    fy_log_stats_t st;
    fy_log_get_stats(R->log, &st);
    R->sync_at = 0;
    if (st.last_seq == st.durable_seq)
        return;
    S.capture = R->idx;
    int rc = fy_log_wait(R->log, st.last_seq);
    S.capture = -1;
    if (rc != 0) {
        sim_fail("replica %d: its log does not sync: %s", R->idx, strerror(errno));
        return;
    }
    S.syncs++;
    fy_cluster_local_durable(R->cl, st.last_seq);
}

/* A snapshot when something changed through the change path since the last one (the snapshot thread's rule; app.c
 * counts with an observer, so a state transfer's groups alone do not trigger one): it drains and rotates the log,
 * writes the file, removes the segments it covers; the disk image is then what the file holds. */
static void log_snapshot(replica_t *R)
{
    R->snap_at = S.T + S.snap_every;
    if (atomic_load(&R->persist.changes) == R->persist.saved_changes)
        return;
    char err[1024];
    S.capture = R->idx;
    int rc = fy_persist_write(&R->persist, err, sizeof(err));
    S.capture = -1;
    if (rc != 0) {
        sim_fail("replica %d: snapshot: %s", R->idx, err);
        return;
    }
    S.snapshots++;
    fy_log_stats_t st;
    fy_log_get_stats(R->log, &st);
    R->sync_at = 0;
    fy_cluster_local_durable(R->cl, st.durable_seq);
    disk_load(R);
    same_as_disk(R, "its snapshot loads as another state than the one it was taken of");
}

/* Per millisecond: a sync that is due, a snapshot that is due; a sync a few ms after records are pending */
static void log_step(replica_t *R)
{
    if (R->sync_at != 0 && S.T >= R->sync_at)
        log_sync(R);
    if (S.snap_every > 0 && S.T >= R->snap_at)
        log_snapshot(R);
    fy_log_stats_t st;
    fy_log_get_stats(R->log, &st);
    if (R->sync_at == 0 && st.last_seq > st.durable_seq)
        R->sync_at = S.T + rnd_range(1, 8) * MS;
}

/* app.c's snapshot_commit: the snapshot thread writes after changes made through the change path */
static const char *count_change(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state,
                                uint64_t *seq)
{
    (void)c;
    (void)r;
    (void)state;
    *seq = 0;
    if (changed)
        fy_persist_changed(ctx);
    return NULL;
}

/* A durable replica's start, as app.c's load_persisted: the snapshot, the log after it, the log opened for appending,
 * then its observer (before replication's, whose tickets wait for the log's). Returns fy_cluster_loaded's argument:
 * the replica loaded at least one group (app.c's cluster_start). */
static int durable_load(replica_t *R)
{
    char err[1024];
    int snap = pt_exists(R->path);
    if (fy_persist_load(&R->persist, &R->core, R->path, 0, err, sizeof(err)) != 0)
        sim_fail("replica %d: its snapshot does not load: %s", R->idx, err);
    fy_log_replay_info_t info;
    memset(&info, 0, sizeof(info));
    if (fy_log_replay(R->waldir, R->persist.wal_seq, 0, replay_record, R, &info, err, sizeof(err)) != 0)
        sim_fail("replica %d: its log does not replay: %s", R->idx, err);
    if (fy_log_open(R->waldir, info.last_seq + 1, &R->log, err, sizeof(err)) != 0)
        fail_msg("replica %d: fy_log_open: %s", R->idx, err);
    R->persist.log = R->log;
    R->persist.order = &R->core.order;
    R->wal.log = R->log;
    R->wal.lww = 1;
    R->wal.stats = &sim_stats;
    fy_change_observer_t w = fy_wal_observer(&R->wal);
    assert_int_equal(fy_core_observe(&R->core, &w), 0);
    fy_change_observer_t n = {&R->persist, 0, NULL, NULL, count_change, NULL, 0};
    assert_int_equal(fy_core_observe(&R->core, &n), 0);
    R->sync_at = 0;
    R->snap_at = S.T + S.snap_every;
    if (R->inc > 1) {
        S.from_snapshot += snap;
        same_as_disk(R, "restarted from its files with another state than what they hold");
    }
    fy_store_stats_t st;
    fy_store_stats(R->store, &st);
    return st.groups > 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Replicas */

/* FY_SIM_TRACE: every change a replica applies, but clients' (traced by client_change) */
static const char *trace_commit(void *ctx, const fy_change_t *c, int changed, const fy_change_result_t *r, void *state,
                                uint64_t *seq)
{
    replica_t *R = ctx;
    (void)r;
    (void)state;
    *seq = 0;
    static const char *const kinds[] = {"?", "PUSH", "DELETE", "WIPE", "BULK", "EXPIRE", "RESTORE", "FAIL", "KILL"};
    if (c->origin != FY_ORIGIN_CLIENT)
        fprintf(stdout, "T=%.3f r%d applies %s%s origin %d stamp %lld %.*s%s%.*s changed %d\n", (double)(S.T - S.T0) / 1e9, R->idx,
                kinds[c->kind], c->kind == FY_CHANGE_PUSH ? (c->post ? "(POST)" : "(PUT)") : "", (int)c->origin,
                (long long)c->now_ns, c->nlabels ? (int)c->labels[0].value.len : 0, c->nlabels ? c->labels[0].value.ptr : "",
                c->family.len ? " family " : "", (int)c->family.len, c->family.ptr ? c->family.ptr : "", changed);
    return NULL;
}

static void replica_start(int i)
{
    replica_t *R = &S.r[i];
    if (S.trace)
        fprintf(stdout, "T=%.3f start r%d\n", (double)(S.T - S.T0) / 1e9, i);
    R->idx = i;
    R->inc++;
    R->up = 1;
    R->skew = rnd_range(-100 * MS, 100 * MS);
    R->started = S.T;
    R->ntickets = 0;
    fy_store_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.lww = 1;
    R->store = fy_store_create(&cfg);
    assert_non_null(R->store);
    fy_push_limits_t lim = {0, 0, 0};
    fy_core_init(&R->core, R->store, &lim, NULL);
    R->core.lww = 1;
    R->core.not_ready = "Service Unavailable: catching up from the other replicas";
    int durable_state = S.durable ? durable_load(R) : 0;
    fy_cluster_config_t cc;
    memset(&cc, 0, sizeof(cc));
    cc.listen = S.addr[i];
    cc.advertise = S.addr[i]; /* recognises itself in the peer list without resolving anything */
    cc.peers = S.addrp;
    cc.npeers = (size_t)S.n;
    cc.label = "sim";
    cc.ack_timeout_ns = S.retention && S.retention < 9 * SEC ? S.retention - 4 * SEC : 5 * SEC; /* net.c's floor */
    cc.peer_timeout_ns = 2 * SEC;
    cc.heartbeat_ns = 250 * MS;
    cc.reconnect_ns = 200 * MS;
    cc.max_offset_ns = 500 * MS;
    cc.retention_ns = S.retention ? S.retention : 3600 * SEC;
    cc.fingerprint = 42;
    cc.backlog_bytes = S.backlog_bytes;
    cc.durable = S.durable;
    cc.ctx = R;
    cc.release = on_release;
    cc.time_out = on_time_out;
    cc.ready = on_ready;
    char err[256];
    R->cl = fy_cluster_create(&cc, &R->core, err, sizeof(err));
    if (R->cl == NULL)
        fail_msg("fy_cluster_create: %s", err);
    fy_cluster_t *c = R->cl;
    c->id = rnd() | 1; /* deterministic identity (a new incarnation each start); the slot is create's */
    c->drv = R;
    c->now = sim_now;
    c->dial = sim_dial;
    c->close_link = sim_close;
    c->wake = sim_noop;
    fy_cl_init(c); /* again, with the simulated clock */
    fy_change_observer_t o = fy_cluster_observer(c);
    assert_int_equal(fy_core_observe(&R->core, &o), 0);
    if (S.trace) {
        fy_change_observer_t t = {R, 0, NULL, NULL, trace_commit, NULL, 0};
        assert_int_equal(fy_core_observe(&R->core, &t), 0);
    }
    R->core.stamp_ctx = c;
    R->core.stamp = fy_cluster_stamp;
    fy_cl_clock_from_store(c); /* as fy_cluster_start does */
    fy_cluster_loaded(c, durable_state);
}

static void replica_destroy(replica_t *R)
{
    if (R->log != NULL) {
        /* the process dies: the records its log had not written are lost */
        S.crashing = 1;
        fy_log_close(R->log);
        S.crashing = 0;
        R->log = NULL;
        pthread_mutex_destroy(&R->persist.lock);
        pthread_cond_destroy(&R->persist.cond);
    }
    fy_cluster_t *c = R->cl;
    for (int li = 0; li < FY_CL_MAX_LINKS; li++)
        if (c->links[li].used) {
            fy_wbuf_free(&c->links[li].in);
            fy_wbuf_free(&c->links[li].out);
            c->links[li].used = 0;
        }
    fy_cluster_destroy(c);
    fy_core_dispose(&R->core);
    fy_store_destroy(R->store);
    R->cl = NULL;
    R->store = NULL;
    R->up = 0;
}

static void replica_crash(int i)
{
    replica_t *R = &S.r[i];
    if (S.trace)
        fprintf(stdout, "T=%.3f crash r%d\n", (double)(S.T - S.T0) / 1e9, i);
    S.crashes++;
    if (S.durable) {
        fy_log_stats_t st;
        fy_log_get_stats(R->log, &st);
        S.crashes_durable++;
        S.lost_tails += st.last_seq > st.durable_seq;
    }
    /* what it held counts for acknowledgements still to come (durable mode: what its disk held) */
    for (size_t k = 0; k < S.nops; k++) {
        op_t *op = &S.ops[k];
        if (op->status == ST_PENDING && holds(R, op))
            op->crashed_holders |= 1u << i;
    }
    for (size_t k = 0; k < R->ntickets; k++) {
        S.ops[R->tickets[k].op].status = ST_LOST;
        S.lost++;
    }
    R->ntickets = 0;
    /* the kernel closes its sockets: what was sent still arrives, then EOF; what it dialled is abandoned */
    for (int ci = 0; ci < MAXCONN; ci++) {
        conn_t *k = &S.conns[ci];
        for (int e = 0; e < 2 && k->used; e++) {
            if (k->rep[e] != i || k->inc[e] != R->inc || k->closed[e])
                continue;
            if (!k->connected) {
                k->used = 0;
                continue;
            }
            enqueue(k, e, NULL, 0, 1);
            k->closed[e] = 1;
            conn_maybe_free(k);
        }
    }
    replica_destroy(R);
    R->down_until = S.T + rnd_range(100 * MS, 4 * SEC);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The workload */

static size_t op_new(void)
{
    if (S.nops == S.cap_ops) {
        S.cap_ops = S.cap_ops ? 2 * S.cap_ops : 1024;
        S.ops = realloc(S.ops, S.cap_ops * sizeof(op_t));
        assert_non_null(S.ops);
    }
    memset(&S.ops[S.nops], 0, sizeof(op_t));
    return S.nops++;
}

static void ticket_add(replica_t *R, uint64_t seq, size_t op)
{
    if (R->ntickets == R->cap_tickets) {
        R->cap_tickets = R->cap_tickets ? 2 * R->cap_tickets : 256;
        R->tickets = realloc(R->tickets, R->cap_tickets * sizeof(ticket_t));
        assert_non_null(R->tickets);
    }
    if (R->ntickets && R->tickets[R->ntickets - 1].seq >= seq)
        sim_fail("replica %d gave ticket %llu after %llu", R->idx, (unsigned long long)seq,
                 (unsigned long long)R->tickets[R->ntickets - 1].seq);
    R->tickets[R->ntickets++] = (ticket_t){seq, op};
}

/* One client change at replica i; returns the HTTP-like status. */
static int client_change(int i, size_t oi)
{
    replica_t *R = &S.r[i];
    op_t *op = &S.ops[oi];
    char job[16], body[512];
    snprintf(job, sizeof(job), "g%d", op->g);
    fy_store_label_t l = {fy_str("job", 3), fy_str(job, strlen(job))};
    size_t n = 0;
    body[0] = '\0';
    for (int f = 0; f < NFAMS; f++)
        if (op->fams & (1u << f))
            n += (size_t)snprintf(body + n, sizeof(body) - n, "# TYPE %s %s\n%s{i=\"%d\"} %zu\n", fam_names[f],
                                  f == FAM_X && op->xgauge ? "gauge" : "counter", fam_names[f], f, oi);
    fy_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.kind = op->kind == K_DEL ? FY_CHANGE_DELETE : FY_CHANGE_PUSH;
    ch.origin = FY_ORIGIN_CLIENT;
    ch.now_ns = sim_now(R->cl);
    ch.labels = &l;
    ch.nlabels = 1;
    ch.post = op->kind == K_POST;
    ch.format = FY_FMT_TEXT;
    ch.body = body;
    ch.body_len = n;
    fy_change_result_t res;
    fy_core_apply(&R->core, &ch, &S.arena, &res);
    int status = res.status;
    if (S.trace)
        fprintf(stdout, "T=%.3f op #%zu %s g%d fams=%x at r%d: %d stamp %lld seq %llu\n", (double)(S.T - S.T0) / 1e9, oi,
                op->kind == K_PUT    ? "PUT"
                : op->kind == K_POST ? "POST"
                                     : "DEL",
                op->g, op->fams, i, status, (long long)atomic_load(&R->cl->hlc_last), (unsigned long long)res.seq);
    if (status < 300) {
        op->rep = i;
        op->stamp = atomic_load(&R->cl->hlc_last);
        if (S.durable)
            stamp_insert(oi);
        op->status = ST_PENDING;
        if (res.seq == 0)
            sim_fail("replica %d answered a client change %d without a ticket", i, status);
        else
            ticket_add(R, res.seq, oi);
    }
    fy_change_result_free(&res);
    return status;
}

static void workload_step(void)
{
    size_t oi = op_new();
    op_t *op = &S.ops[oi];
    op->status = ST_REFUSED;
    op->g = (int)(rnd() % NGROUPS);
    unsigned k = (unsigned)(rnd() % 10);
    op->kind = k < 4 ? K_PUT : k < 8 ? K_POST : K_DEL;
    if (op->kind != K_DEL) {
        op->fams = (unsigned)(rnd() % 8); /* sim_a, sim_b, sim_c; a PUT may be empty */
        if (op->kind == K_POST && op->fams == 0)
            op->fams = 1;
        if (chance(0.05)) {
            op->fams |= 1u << FAM_X;
            op->xgauge = (int)(rnd() & 1);
        }
    }
    /* a load balancer that retries another replica on 503 */
    int first = (int)(rnd() % (uint64_t)S.n);
    for (int t = 0; t < S.n && t < 3; t++) {
        int i = (first + t) % S.n;
        if (!S.r[i].up)
            continue;
        int st = client_change(i, oi);
        if (st != 503)
            break;
    }
    if (op->status == ST_REFUSED)
        S.refused++;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The loop */

static void step(int faults, double op_rate)
{
    S.T += MS;
    /* faults */
    if (faults) {
        /* a replica is down until it is ready again (caught up): crashing another one meanwhile would be a second
         * failure, beyond what the write quorum covers (with N=3, two replicas restarted empty that meet while the
         * third is unreachable take themselves for a new cluster: FY_SIM_DOUBLE_FAULTS=1 allows it) */
        int down = 0;
        for (int i = 0; i < S.n; i++)
            down += !S.r[i].up || (!S.double_faults && !atomic_load(&S.r[i].cl->ready));
        if (down < S.maxdown && chance(1.0 / 2500)) {
            int i = (int)(rnd() % (uint64_t)S.n);
            if (S.r[i].up)
                replica_crash(i);
        }
        if (chance(1.0 / 400)) {
            int ci = (int)(rnd() % MAXCONN);
            if (S.conns[ci].used && S.conns[ci].connected) {
                reset_conn(&S.conns[ci]);
                S.resets++;
            }
        }
        if (chance(1.0 / 1500)) {
            int a = (int)(rnd() % (uint64_t)S.n), b = (int)(rnd() % (uint64_t)S.n);
            if (a != b) {
                S.blocked[a][b] = S.T + rnd_range(200 * MS, 5 * SEC);
                S.partitions++;
            }
        }
    }
    for (int i = 0; i < S.n; i++)
        if (!S.r[i].up && (S.T >= S.r[i].down_until || S.healing))
            replica_start(i);
    connects();
    deliver();
    if (op_rate > 0 && chance(op_rate))
        workload_step();
    for (int i = 0; i < S.n && S.durable; i++)
        if (S.r[i].up)
            log_step(&S.r[i]);
    for (int i = 0; i < S.n; i++) {
        replica_t *R = &S.r[i];
        if (!R->up)
            continue;
        fy_cl_tick(R->cl);
        collect(R);
        sweep(R);
    }
}

static int dump_group(void *ctx, const fy_store_group_view_t *g)
{
    (void)ctx;
    fprintf(stdout, "  group %.*s%s clear %lld del %lld push %lld fail %lld max %lld:", (int)g->labels[0].value.len,
            g->labels[0].value.ptr, g->is_tombstone ? " (tombstone)" : "", (long long)g->clear_ns, (long long)g->del_ns,
            (long long)g->push_ns, (long long)g->fail_ns, (long long)g->max_stamp_ns);
    for (uint32_t i = 0; i < g->nfamilies; i++)
        fprintf(stdout, " %.*s@%lld", (int)g->families[i].name.len, g->families[i].name.ptr, (long long)g->families[i].stamp_ns);
    for (uint32_t i = 0; i < g->nkills; i++)
        fprintf(stdout, " kill %.*s@%lld", (int)g->kills[i].name.len, g->kills[i].name.ptr, (long long)g->kills[i].stamp);
    fprintf(stdout, "\n");
    return 0;
}

/* FY_SIM_TRACE: the protocol's state of every replica */
static void dump_state(void)
{
    for (int i = 0; i < S.n; i++) {
        replica_t *R = &S.r[i];
        if (!R->up) {
            fprintf(stdout, "r%d down\n", i);
            continue;
        }
        fy_cluster_t *c = R->cl;
        fy_store_foreach_changed_since(R->store, 0, dump_group, NULL);
        if (S.durable) {
            fy_log_stats_t st;
            fy_log_get_stats(R->log, &st);
            fprintf(stdout, " r%d on disk (log submitted %llu, synced %llu):\n", i, (unsigned long long)st.last_seq,
                    (unsigned long long)st.durable_seq);
            fy_store_foreach_changed_since(R->disk, 0, dump_group, NULL);
        }
        fprintf(stdout, "r%d id %016llx slot %u ready %d seq %llu released %llu late %llu backlog %zu (from %llu) reachable %d\n",
                i, (unsigned long long)c->id, atomic_load(&c->slot), atomic_load(&c->ready), (unsigned long long)c->seq,
                (unsigned long long)c->released, (unsigned long long)c->late, c->bl_n,
                (unsigned long long)(c->bl_n ? c->backlog[c->bl_head].seq : 0), atomic_load(&c->reachable));
        for (size_t a = 0; a < c->naddrs; a++)
            fprintf(stdout, "  addr %zu self %d link %d node %d caught_up %d next_dial %+.3f\n", a, c->addrs[a].self,
                    c->addrs[a].link, c->addrs[a].node, c->addrs[a].caught_up, (double)(c->addrs[a].next_dial - S.T) / 1e9);
        for (size_t n = 0; n < c->nnodes; n++)
            fprintf(stdout, "  node %zu id %016llx in %d out %d addr %d acked %llu applied %llu held %llu wm %lld\n", n,
                    (unsigned long long)c->nodes[n].id, c->nodes[n].in_link, c->nodes[n].out_link, c->nodes[n].addr,
                    (unsigned long long)c->nodes[n].acked, (unsigned long long)c->nodes[n].applied,
                    (unsigned long long)c->nodes[n].held, (long long)c->nodes[n].watermark);
        for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
            fy_cl_link_t *l = &c->links[li];
            if (l->used)
                fprintf(stdout, "  link %d conn %d out %d addr %d node %d open %d closing %d send_next %llu rx %+.3f\n", li, l->fd,
                        l->outbound, l->addr, l->node, l->open, l->closing, (unsigned long long)l->send_next,
                        (double)(l->last_rx - sim_now(c)) / 1e9);
        }
    }
}

/* 1 when every replica is ready, renders the same, and has no undecided ticket */
static int converged(int report)
{
    for (int i = 0; i < S.n; i++) {
        if (!S.r[i].up || !atomic_load(&S.r[i].cl->ready)) {
            if (report) {
                const char *why = NULL;
                if (S.r[i].up)
                    fy_cluster_is_ready(S.r[i].cl, &why);
                sim_fail("replica %d not ready after healing: %s", i, why ? why : "down");
            }
            return 0;
        }
    }
    char *r0 = render_both(S.r[0].store);
    int same = 1;
    for (int i = 1; i < S.n && same; i++) {
        char *ri = render_both(S.r[i].store);
        if (strcmp(r0, ri) != 0) {
            same = 0;
            if (report) {
                const char *dump = getenv("FY_SIM_DUMP");
                if (dump) {
                    FILE *f = fopen(dump, "w");
                    if (f) {
                        fprintf(f, "=== replica 0\n%s\n=== replica %d\n%s\n", r0, i, ri);
                        fclose(f);
                    }
                }
                sim_fail("replicas 0 and %d differ after healing (FY_SIM_DUMP=file writes both)", i);
            }
        }
        free(ri);
    }
    free(r0);
    if (!same)
        return 0;
    for (int i = 0; i < S.n; i++)
        if (S.r[i].ntickets) {
            if (report)
                sim_fail("replica %d has %zu undecided tickets after healing", i, S.r[i].ntickets);
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Check 2: every acknowledged change is reflected */

typedef struct {
    int g;
    int found;
    int64_t clear;
    int64_t fstamp[NFAMS];
    double fval[NFAMS];
    int fkilled[NFAMS];
} gstate_t;

static int gstate_cb(void *ctx, const fy_store_group_view_t *g)
{
    gstate_t *G = ctx;
    if (!view_is_group(g, G->g))
        return 0;
    G->found = 1;
    G->clear = g->clear_ns > g->del_ns ? g->clear_ns : g->del_ns;
    for (uint32_t i = 0; i < g->nfamilies && !g->is_tombstone; i++)
        for (int f = 0; f < NFAMS; f++)
            if (fy_str_eq_mem(g->families[i].name, fam_names[f], strlen(fam_names[f]))) {
                G->fstamp[f] = g->families[i].stamp_ns;
                G->fval[f] = g->families[i].nseries ? g->families[i].series[0].value : -1;
            }
    for (uint32_t i = 0; i < g->nkills; i++)
        for (int f = 0; f < NFAMS; f++)
            if (fy_str_eq_mem(g->kills[i].name, fam_names[f], strlen(fam_names[f])))
                G->fkilled[f] = 1;
    return 1;
}

static int op_applied(const op_t *op)
{
    return op->status == ST_PENDING || op->status == ST_ACKED || op->status == ST_FAILED || op->status == ST_LOST;
}

static const op_t *op_by_stamp(int64_t stamp)
{
    for (size_t i = 0; i < S.nops; i++)
        if (op_applied(&S.ops[i]) && S.ops[i].stamp == stamp)
            return &S.ops[i];
    return NULL;
}

static void check_reflected(int ri)
{
    replica_t *R = &S.r[ri];
    for (int g = 0; g < NGROUPS; g++) {
        gstate_t G;
        memset(&G, 0, sizeof(G));
        G.g = g;
        fy_store_foreach_changed_since(R->store, 0, gstate_cb, &G);
        for (int f = 0; f < FAM_X; f++) {
            /* the newest acknowledged change touching (g, f) */
            const op_t *A = NULL;
            for (size_t i = 0; i < S.nops; i++) {
                const op_t *op = &S.ops[i];
                if (op->status != ST_ACKED || op->g != g)
                    continue;
                if (op->kind == K_POST && !(op->fams & (1u << f)))
                    continue;
                if (A == NULL || op->stamp > A->stamp)
                    A = op;
            }
            if (G.fkilled[f])
                sim_fail("replica %d: family %s of g%d was killed (no conflict involves it)", ri, fam_names[f], g);
            if (G.fstamp[f]) {
                size_t v = (size_t)G.fval[f];
                if (G.fval[f] < 0 || v >= S.nops || S.ops[v].stamp != G.fstamp[f] || S.ops[v].g != g ||
                    !(S.ops[v].fams & (1u << f)) || !op_applied(&S.ops[v]))
                    sim_fail("replica %d: %s of g%d holds value %g at stamp %lld, which no applied change wrote", ri, fam_names[f],
                             g, G.fval[f], (long long)G.fstamp[f]);
                else if (A != NULL && A->stamp > G.fstamp[f])
                    sim_fail("replica %d: %s of g%d holds change #%zu, older than acknowledged change #%zu", ri, fam_names[f], g, v,
                             (size_t)(A - S.ops));
            } else if (A != NULL && A->kind != K_DEL && (A->fams & (1u << f))) {
                const op_t *C = G.clear > A->stamp ? op_by_stamp(G.clear) : NULL;
                if (C == NULL || C->g != g || (C->kind == K_PUT && (C->fams & (1u << f))) || C->kind == K_POST)
                    sim_fail("replica %d: %s of g%d is missing: acknowledged change #%zu wrote it and nothing newer "
                             "cleared it (clear stamp %lld)",
                             ri, fam_names[f], g, (size_t)(A - S.ops), (long long)G.clear);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------------------- */

/* Durable mode on about half of the seeds, by a hash of the seed: the other seeds draw the same numbers as before
 * durable mode existed, so their runs (and the regression seeds found then) are unchanged */
static int seed_durable(uint64_t seed)
{
    return (int)(mix(seed ^ 0x64757261626c65ULL) & 1);
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

static void sim_cleanup(void)
{
    for (int i = 0; i < MAXR; i++) {
        if (S.r[i].up)
            replica_destroy(&S.r[i]);
        free(S.r[i].tickets);
        if (S.r[i].disk != NULL) {
            fy_core_dispose(&S.r[i].disk_core);
            fy_store_destroy(S.r[i].disk);
        }
    }
    for (int ci = 0; ci < MAXCONN; ci++)
        segs_free(&S.conns[ci]);
    free(S.ops);
    free(S.by_stamp);
    fy_push_arena_free(&S.arena);
    if (S.dir != NULL)
        pt_rmdir(S.dir); /* frees it */
}

static void sim_addresses(void)
{
    for (int i = 0; i < S.n; i++) {
        snprintf(S.addr[i], sizeof(S.addr[i]), "sim:%d", i);
        S.addrp[i] = S.addr[i];
    }
}

/* Durable mode: each replica's files in a new scratch directory, and its disk image (empty) */
static void sim_disks(void)
{
    S.dir = pt_mkdtemp();
    for (int i = 0; i < S.n; i++) {
        replica_t *R = &S.r[i];
        R->idx = i;
        snprintf(R->path, sizeof(R->path), "%s/r%d", S.dir, i);
        assert_int_equal(fy_log_dir_for(R->path, R->waldir, sizeof(R->waldir)), 0);
        disk_load(R);
    }
}

/* One seed: 0, or -1 with S.failure. */
static int run_seed(uint64_t seed, int durable, long steps, int verbose, int64_t retention)
{
    memset(&S, 0, sizeof(S));
    S.seed = seed;
    S.durable = durable;
    S.capture = -1;
    S.trace = getenv("FY_SIM_TRACE") != NULL;
    S.double_faults = env_long("FY_SIM_DOUBLE_FAULTS", 0) != 0;
    S.retention = retention; /* 0: the default hour */
    S.rng = seed * 0x2545F4914F6CDD1DULL + 7;
    S.n = seed % 3 == 2 ? 5 : 3;
    S.maxdown = S.n == 5 ? 2 : 1;
    S.W = (unsigned)S.n / 2 + 1;
    S.backlog_bytes = chance(0.25) ? 4096 : 0; /* a small backlog: reconnecting peers get GAP and state transfer */
    S.T = S.T0 = 1700000000 * SEC + (int64_t)(rnd() % (1000 * SEC));
    sim_addresses();
    if (S.durable) {
        /* a snapshot every 0.3-3 s on three seeds in four (the log alone replays otherwise) */
        S.snap_every = chance(0.75) ? rnd_range(300, 3000) * MS : 0;
        sim_disks();
    }
    for (int i = 0; i < S.n; i++)
        replica_start(i);
    double rate = 0.05 + 0.25 * (double)(rnd() % 100) / 100.0; /* client changes per ms */
    for (long s = 0; s < steps && !S.failure[0]; s++)
        step(1, rate);
    /* heal: everything up, no partition, no fault; then quiesce */
    S.healing = 1;
    memset(S.blocked, 0, sizeof(S.blocked));
    int ok = 0;
    for (long s = 0; s < 60000 && !S.failure[0]; s++) {
        step(0, 0);
        if (s % 250 == 249 && converged(0)) {
            for (int k = 0; k < 1000; k++)
                step(0, 0);
            ok = 1;
            break;
        }
    }
    if (!S.failure[0] && (!ok || !converged(0)))
        converged(1);
    for (int i = 0; i < S.n && !S.failure[0]; i++)
        check_reflected(i);
    if (verbose) {
        fprintf(stdout,
                "seed %llu: n=%d durable=%d ops=%zu acked=%llu failed=%llu lost=%llu refused=%llu crashes=%llu resets=%llu "
                "partitions=%llu backlog=%llu\n",
                (unsigned long long)seed, S.n, S.durable, S.nops, (unsigned long long)S.acked, (unsigned long long)S.failed,
                (unsigned long long)S.lost, (unsigned long long)S.refused, (unsigned long long)S.crashes,
                (unsigned long long)S.resets, (unsigned long long)S.partitions, (unsigned long long)S.backlog_bytes);
        if (S.durable)
            fprintf(stdout, "  durable: syncs=%llu snapshots=%llu (every %.1f s) lost_tails=%llu restarts_from_snapshot=%llu\n",
                    (unsigned long long)S.syncs, (unsigned long long)S.snapshots, (double)S.snap_every / 1e9,
                    (unsigned long long)S.lost_tails, (unsigned long long)S.from_snapshot);
    }
    int rc = S.failure[0] ? -1 : 0;
    if (rc != 0 && S.trace)
        dump_state();
    return rc;
}

/* The replicas' log lines (errors: refused peers and the like) only with FY_SIM_VERBOSE: stderr to /dev/null until
 * restore_stderr, or until a failure is reported (dup2 of the returned descriptor onto 2). -1 when verbose. */
static int quiet_stderr(int verbose)
{
    if (verbose)
        return -1;
    int devnull = open("/dev/null", O_WRONLY);
    int saved = dup(2);
    dup2(devnull, 2);
    close(devnull);
    return saved;
}

static void restore_stderr(int saved)
{
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
}

static void test_cluster_sim(void **state)
{
    (void)state;
    int verbose = env_long("FY_SIM_VERBOSE", 0) != 0;
    fy_log_setup(verbose ? "info" : "error", "logfmt");
    int saved = quiet_stderr(verbose);
    long steps = env_long("FY_SIM_STEPS", 8000);
    const char *one = getenv("FY_SIM_SEED");
    /* a durable seed costs about half again an in-memory one: fewer seeds than before durable mode, the same time */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    long nseeds = env_long("FY_SIM_SEEDS", 160);
#else
    long nseeds = env_long("FY_SIM_SEEDS", 1300);
#endif
    long first = env_long("FY_SIM_FIRST_SEED", 1);
    long force = env_long("FY_SIM_DURABLE", -1); /* 0 or 1: every seed in that mode; else the seed decides */
    /* regression seeds replay in the mode they failed in */
    static const struct {
        uint64_t seed;
        int durable;
    } regressions[] = {{3, 0}, {46, 0}, {54, 0}, {291, 0}, {69, 0}, {7, 1}, {47, 0}};
    long nreg = one ? 0 : (long)(sizeof(regressions) / sizeof(regressions[0]));
    ssize_t (*saved_write)(int, const void *, size_t) = fy__persist_write;
    int (*saved_sync)(int, int) = fy__persist_sync;
    fy__persist_write = sim_write;
    fy__persist_sync = sim_sync;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ops = 0, acked = 0, crashes = 0, crashes_durable = 0, lost_tails = 0, from_snapshot = 0;
    long ran = 0, ran_durable = 0, failures = 0;
    for (long k = -nreg; k < (one ? 1 : nseeds); k++) {
        uint64_t seed = k < 0 ? regressions[nreg + k].seed : one ? strtoull(one, NULL, 10) : (uint64_t)(first + k);
        int durable = k < 0 ? regressions[nreg + k].durable : force >= 0 ? force != 0 : seed_durable(seed);
        int rc = run_seed(seed, durable, steps, verbose || one != NULL, env_long("FY_SIM_RETENTION_MS", 0) * MS);
        ops += S.nops;
        acked += S.acked;
        crashes += S.crashes;
        crashes_durable += S.crashes_durable;
        lost_tails += S.lost_tails;
        from_snapshot += S.from_snapshot;
        ran++;
        ran_durable += durable;
        if (rc != 0) {
            if (saved >= 0)
                dup2(saved, 2);
            fprintf(stderr, "cluster simulation: seed %llu (%s) failed: %s\n  replay: FY_SIM_SEED=%llu FY_SIM_DURABLE=%d %s\n",
                    (unsigned long long)seed, durable ? "durable" : "in memory", S.failure, (unsigned long long)seed, durable,
                    "build/tests/test_cluster_sim");
            failures++;
        }
        sim_cleanup();
        if (failures)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    restore_stderr(saved);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fy__persist_write = saved_write;
    fy__persist_sync = saved_sync;
    fprintf(stderr,
            "cluster simulation: %ld seeds (%ld durable), %llu client changes, %llu acknowledged, %llu crashes: %llu restarted "
            "empty, %llu from their durable log (%llu lost an unsynced tail, %llu restarted from a snapshot), %.1f s\n",
            ran, ran_durable, (unsigned long long)ops, (unsigned long long)acked, (unsigned long long)crashes,
            (unsigned long long)(crashes - crashes_durable), (unsigned long long)crashes_durable, (unsigned long long)lost_tails,
            (unsigned long long)from_snapshot, secs);
    if (failures)
        fail_msg("cluster simulation failed (seed above)");
}

/* The same workload with a tombstone retention of 5.5 s (ack timeout 1.5 s, the floor) and 20 s of faults, so that
 * partitions and crashes outlast the retention and replicas drop their stale state: first the seeds that found a
 * bug that way (each fails with its fix reverted), then a sweep. */
static void test_short_retention(void **state)
{
    (void)state;
    int verbose = env_long("FY_SIM_VERBOSE", 0) != 0;
    fy_log_setup(verbose ? "info" : "error", "logfmt");
    static const struct {
        uint64_t seed;
        int durable;
        const char *bug;
    } regressions[] = {
        {48, 0, "a change acknowledged after its replica had dropped it with its state"},
        {88, 1, "a transfer answered from dropped state let its asker skip the replica's own changes"},
        {1257, 0, "a change acknowledged just before a drop decided by a heartbeat"},
    };
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    long nseeds = 8;
#else
    long nseeds = 60;
#endif
    ssize_t (*saved_write)(int, const void *, size_t) = fy__persist_write;
    int (*saved_sync)(int, int) = fy__persist_sync;
    fy__persist_write = sim_write;
    fy__persist_sync = sim_sync;
    int saved = quiet_stderr(verbose);
    long nreg = (long)(sizeof(regressions) / sizeof(regressions[0])), failures = 0;
    for (long k = -nreg; k < nseeds && !failures; k++) {
        uint64_t seed = k < 0 ? regressions[nreg + k].seed : (uint64_t)(1 + k);
        int durable = k < 0 ? regressions[nreg + k].durable : seed_durable(seed);
        if (run_seed(seed, durable, 20000, verbose, 5500 * MS) != 0) {
            if (saved >= 0)
                dup2(saved, 2);
            fprintf(stderr,
                    "short retention: seed %llu (%s) failed%s%s: %s\n  replay: FY_SIM_RETENTION_MS=5500 FY_SIM_STEPS=20000 "
                    "FY_SIM_SEED=%llu FY_SIM_DURABLE=%d build/tests/test_cluster_sim\n",
                    (unsigned long long)seed, durable ? "durable" : "in memory", k < 0 ? ", once: " : "",
                    k < 0 ? regressions[nreg + k].bug : "", S.failure, (unsigned long long)seed, durable);
            failures++;
        }
        sim_cleanup();
    }
    restore_stderr(saved);
    fy__persist_write = saved_write;
    fy__persist_sync = saved_sync;
    fprintf(stderr, "short retention: %ld regression seeds and %ld more, %ld failed\n", nreg, nseeds, failures);
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Scripted: a conflict with stale state that the state transfer removes */

static int script_change(int i, int kind, int g, unsigned fams, int xgauge)
{
    size_t oi = op_new();
    op_t *op = &S.ops[oi];
    op->status = ST_REFUSED;
    op->kind = kind;
    op->g = g;
    op->fams = fams;
    op->xgauge = xgauge;
    return client_change(i, oi);
}

typedef struct {
    int gi;
    int shard;
} shard_of_t;

static int shard_of_cb(void *ctx, const fy_store_group_view_t *g)
{
    shard_of_t *so = ctx;
    return view_is_group(g, so->gi) ? 1 : 0;
}

/* The shard a group (or its tombstone) is in: a state transfer sends the shards in order */
static int shard_of(fy_store_t *s, int gi)
{
    shard_of_t so = {gi, -1};
    for (uint32_t k = 0; k < fy_store_nshards(s); k++)
        if (fy_store_foreach_changed_since_shards(s, 0, k, 1, shard_of_cb, &so) == 1)
            return (int)k;
    return -1;
}

/* A scripted run's start: 3 replicas (W=2), durable or in memory, ready and identical. */
static void script_begin(uint64_t seed, int durable)
{
    memset(&S, 0, sizeof(S));
    S.seed = seed;
    S.rng = S.seed * 0x2545F4914F6CDD1DULL + 7;
    S.durable = durable;
    S.capture = -1;
    S.n = 3;
    S.maxdown = 1;
    S.W = 2;
    S.T = S.T0 = 1700000000 * SEC;
    sim_addresses();
    if (durable)
        sim_disks();
    for (int i = 0; i < S.n; i++)
        replica_start(i);
    for (long k = 0; k < 10000 && !converged(0); k++)
        step(0, 0);
    assert_true(converged(0));
}

/* Heals everything (a replica kept down starts again) and runs until converged (at most 60 s), not before after; a
 * divergence left then is reported (S.failure). */
static void script_heal(int64_t after)
{
    S.healing = 1;
    for (long k = 0; k < 60000 && !S.failure[0]; k++) {
        step(0, 0);
        if (k % 250 == 249 && S.T > after && converged(0))
            break;
    }
    if (!S.failure[0] && !converged(0))
        converged(1);
}

/* --cluster.tombstone-retention for the running replicas and those started later */
static void script_retention(int64_t retention)
{
    S.retention = retention;
    for (int i = 0; i < S.n; i++)
        S.r[i].cl->cfg.retention_ns = retention;
}

/* script_heal, then whether every replica holds g<gk>'s sim_x gauge and no g0 (what: the case's name and figures for the report).
 */
static int script_heal_gauge_alone(int gk, int64_t after, const char *what)
{
    script_heal(after);
    char want[64];
    snprintf(want, sizeof(want), "sim_x{i=\"3\",instance=\"\",job=\"g%d\"}", gk);
    int ok = !S.failure[0];
    for (int i = 0; i < S.n && ok; i++) {
        char *t = render_text(S.r[i].store, NULL);
        if (strstr(t, want) == NULL || strstr(t, "job=\"g0\"") != NULL) {
            fprintf(stderr, "%s: replica %d does not hold %s alone:\n%s\n", what, i, want, t);
            ok = 0;
        }
        free(t);
    }
    if (S.failure[0])
        fprintf(stderr, "%s: %s\n", what, S.failure);
    return ok;
}

/* One run: sim_x is pushed as a counter in g0 and reaches every replica's log; replica 2 crashes; the cluster deletes
 * g0 and takes sim_x as a gauge in g<gk>, acknowledged by 0 and 1. Replica 2 restarts from its log (g0's counter is
 * back, stale) and catches up by state transfer. When the transfer sends g<gk> before g0's tombstone, the gauge
 * arrives while the stale counter is live: before the fix, replica 2 killed it on every replica, an acknowledged push
 * lost with no concurrent writer. Returns 1 when the order was that one (*ok: the gauge survived everywhere). */
static int stale_conflict_case(int gk, int *ok)
{
    script_begin(5000 + (uint64_t)gk, 1);
    for (long k = 0; k < 1000; k++) /* the start's state transfers are over: the next change goes to every log */
        step(0, 0);
    assert_int_equal(script_change(0, K_PUT, 0, 1u << FAM_X, 0), 200);
    for (long k = 0; k < 1000; k++)
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED);
    assert_true(holds(&S.r[2], &S.ops[S.nops - 1])); /* on replica 2's disk */
    replica_crash(2);
    S.r[2].down_until = INT64_MAX;
    assert_int_equal(script_change(0, K_DEL, 0, 0, 0), 202);
    assert_int_equal(script_change(0, K_PUT, gk, 1u << FAM_X, 1), 200);
    for (long k = 0; k < 1000; k++)
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 2].status, ST_ACKED);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED);
    int s0 = shard_of(S.r[0].store, 0), sk = shard_of(S.r[0].store, gk);
    assert_true(s0 >= 0 && sk >= 0);
    char what[96];
    snprintf(what, sizeof(what), "stale conflict, g%d (shard %d, g0's tombstone in %d)", gk, sk, s0);
    *ok = script_heal_gauge_alone(gk, 0, what); /* replica 2 starts again */
    sim_cleanup();
    return sk < s0;
}

static void test_stale_conflict(void **state)
{
    (void)state;
    int verbose = env_long("FY_SIM_VERBOSE", 0) != 0;
    fy_log_setup(verbose ? "info" : "error", "logfmt");
    ssize_t (*saved_write)(int, const void *, size_t) = fy__persist_write;
    int (*saved_sync)(int, int) = fy__persist_sync;
    fy__persist_write = sim_write;
    fy__persist_sync = sim_sync;
    /* 16 groups: the transfer's order (shards by hash) puts some before g0 and some after; both must end alike */
    int before = 0, failed = 0;
    for (int gk = 1; gk <= 16; gk++) {
        int ok = 0;
        before += stale_conflict_case(gk, &ok);
        failed += !ok;
    }
    fy__persist_write = saved_write;
    fy__persist_sync = saved_sync;
    fprintf(stderr, "stale conflict: 16 cases, %d with the group sent before the stale one's tombstone, %d failed\n", before,
            failed);
    assert_true(before > 0);
    assert_int_equal(failed, 0);
}

/* Scripted: a conflict that only looks concurrent. sim_x is a counter in g0 everywhere; replica 0's bytes to replica
 * 2 stop for a while (1 s, the link stays up; 3 s, past the peer timeout: it drops); replica 0 deletes g0; replica 1
 * applies that
 * and then takes sim_x as a gauge in g<gk> (200: nothing conflicts there); replica 2 gets that push while its g0 is
 * still live. Before the fix it killed the gauge on every replica; now it waits until replica 0's frontier passes the
 * push's stamp (the DELETE arrives first) and merges it. *ok: the gauge is on every replica, g0 on none. */
static void causal_conflict_case(int gk, int64_t block, int *ok)
{
    script_begin(6000 + (uint64_t)gk, 0);
    assert_int_equal(script_change(0, K_PUT, 0, 1u << FAM_X, 0), 200);
    for (long k = 0; k < 500; k++)
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED);
    S.blocked[0][2] = S.T + block;
    assert_int_equal(script_change(0, K_DEL, 0, 0, 0), 202);
    for (long k = 0; k < 200; k++)
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED); /* by replica 1 */
    assert_int_equal(script_change(1, K_PUT, gk, 1u << FAM_X, 1), 200);
    char what[64];
    snprintf(what, sizeof(what), "causal conflict, g%d", gk);
    *ok = script_heal_gauge_alone(gk, S.blocked[0][2], what) && S.ops[S.nops - 1].status == ST_ACKED;
    sim_cleanup();
}

static void test_causal_conflict(void **state)
{
    (void)state;
    fy_log_setup(env_long("FY_SIM_VERBOSE", 0) != 0 ? "info" : "error", "logfmt");
    /* blocked for 1 s (the link stays up) and for 3 s (longer than the peer timeout: the link drops, and replica 0's
     * DELETE comes after a reconnect or by a state transfer) */
    int failed = 0;
    for (int gk = 1; gk <= 8; gk++) {
        int ok = 0;
        causal_conflict_case(gk, (gk <= 4 ? 1000 : 3000) * MS, &ok);
        failed += !ok;
    }
    fprintf(stderr, "causal conflict: 8 cases, %d failed\n", failed);
    assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Scripted: a partition longer than the tombstone retention */

static int holds_job(replica_t *R, int g)
{
    char want[32];
    snprintf(want, sizeof(want), "job=\"g%d\"", g);
    char *t = render_text(R->store, NULL);
    int has = strstr(t, want) != NULL;
    free(t);
    return has;
}

/* g1 (through replica 0) and g2 (through replica 1), both acknowledged */
static void script_put_g1_g2(void)
{
    assert_int_equal(script_change(0, K_PUT, 1, 1u << FAM_X, 0), 200);
    assert_int_equal(script_change(1, K_PUT, 2, 1u << FAM_X, 0), 200);
    for (long k = 0; k < 2000 && !(S.ops[S.nops - 2].status == ST_ACKED && S.ops[S.nops - 1].status == ST_ACKED); k++)
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 2].status, ST_ACKED);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED);
}

/* Once replica 2 is on the minority side (the peer timeout, then half a second there): replica 0 deletes g1 and
 * replica 1 takes g3 */
static void script_changes_while_cut_off(void)
{
    for (long k = 0; k < 3000; k++)
        step(0, 0);
    assert_false(atomic_load(&S.r[2].cl->ready));
    assert_int_equal(script_change(0, K_DEL, 1, 0, 0), 202);
    assert_int_equal(script_change(1, K_PUT, 3, 1u << FAM_X, 0), 200);
}

/* Whether the simulation found nothing wrong and every replica holds exactly the groups g<k> (1-4) whose bit k is set
 * in want; what: the case, for the report. */
static int script_jobs_are(unsigned want, const char *what)
{
    int ok = !S.failure[0];
    if (!ok)
        fprintf(stderr, "%s: %s\n", what, S.failure);
    for (int i = 0; i < S.n && ok; i++)
        for (int g = 1; g <= 4 && ok; g++)
            if (holds_job(&S.r[i], g) != (int)((want >> g) & 1)) {
                char *t = render_text(S.r[i].store, NULL);
                fprintf(stderr, "%s: replica %d %s g%d:\n%s\n", what, i, (want >> g) & 1 ? "misses" : "holds", g, t);
                free(t);
                ok = 0;
            }
    return ok;
}

/* g1 and g2 are everywhere; replica 2 is cut off both ways for `away` (the retention is 20 s); meanwhile replica 0
 * deletes g1 and replica 1 takes g3. After the heal, replica 0 restarts empty (its state transfers then ask replica 2
 * too). Expected on every replica: g2 and g3, no g1; and replica 2 dropped its state (stale_drops) only when it was
 * away longer than the retention. Before the fix, after a 40 s partition replica 2 kept g1 (the
 * tombstone was collected at 20-30 s) and handed it to replica 0 on its restart: the deleted group came back.
 * durable: the replicas log every change (no snapshot); after the heal replica 1 takes g4, which reaches replica 2's
 * log, and replica 2 crashes too (expected: g4 as well). Before the drop was logged, replica 2's replay brought g1
 * back from its log, with g4 its state was not old, and g1 came back everywhere. */
static int long_partition_case(uint64_t seed, int64_t away, int durable, int *dropped)
{
    script_begin(seed, durable);
    script_retention(20 * SEC);
    /* replica 2 restarts first, so that its start-time age check is behind it (it is ready), and the partition
     * begins within a second of its crash: the state request that replicas 0 and 1 send it when they declare its old
     * incarnation lost (a second after the crash) is lost in the partition, so they ask it again at the heal, the
     * moment its state is stale (as in tests/cluster/test_cluster_partition.py) */
    replica_crash(2);
    S.r[2].down_until = S.T + 200 * MS;
    for (long k = 0; k < 2000 && !(k >= 300 && atomic_load(&S.r[2].cl->ready)); k++)
        step(0, 0);
    assert_true(atomic_load(&S.r[2].cl->ready) && S.r[2].cl->stale_checked);
    script_put_g1_g2();
    uint64_t drops_before = S.r[2].cl->stale_drops;
    int64_t until = S.T + away;
    S.blocked[0][2] = S.blocked[2][0] = S.blocked[1][2] = S.blocked[2][1] = until;
    script_changes_while_cut_off();
    while (S.T < until + 5 * SEC && !S.failure[0])
        step(0, 0);
    for (long k = 0; k < 60000 && !converged(0) && !S.failure[0]; k++)
        step(0, 0);
    *dropped = S.r[2].cl->stale_drops > drops_before;
    if (durable) {
        assert_int_equal(script_change(1, K_PUT, 4, 1u << FAM_X, 0), 200);
        const op_t *g4 = &S.ops[S.nops - 1];
        for (long k = 0; k < 3000 && !(g4->status == ST_ACKED && holds(&S.r[2], g4)); k++)
            step(0, 0);
        assert_true(g4->status == ST_ACKED && holds(&S.r[2], g4)); /* on replica 2's disk */
        replica_crash(2);
    }
    replica_crash(0);
    script_heal(0);
    char what[64];
    snprintf(what, sizeof(what), "long partition (%s%.0f s), seed %llu", durable ? "durable, " : "", (double)away / 1e9,
             (unsigned long long)seed);
    int ok = script_jobs_are(durable ? 0x1cu : 0xcu, what); /* g2, g3 (and g4), no g1 */
    sim_cleanup();
    return ok;
}

static void test_long_partition(void **state)
{
    (void)state;
    fy_log_setup(env_long("FY_SIM_VERBOSE", 0) != 0 ? "info" : "error", "logfmt");
    /* (away, whether replica 2 must drop its state): longer than the retention, and a control shorter than it */
    static const struct {
        int64_t away;
        int durable;
        int drops;
    } cases[] = {
        {40 * SEC, 0, 1}, {45 * SEC, 0, 1}, {10 * SEC, 0, 0}, {15 * SEC, 0, 0},
        {40 * SEC, 1, 1}, {45 * SEC, 1, 1}, {15 * SEC, 1, 0},
    };
    ssize_t (*saved_write)(int, const void *, size_t) = fy__persist_write;
    int (*saved_sync)(int, int) = fy__persist_sync;
    fy__persist_write = sim_write;
    fy__persist_sync = sim_sync;
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int dropped = 0;
        int ok = long_partition_case(8000 + i, cases[i].away, cases[i].durable, &dropped);
        if (ok && dropped != cases[i].drops) {
            fprintf(stderr, "long partition (%s%.0f s): replica 2 %s its state\n", cases[i].durable ? "durable, " : "",
                    (double)cases[i].away / 1e9, dropped ? "dropped" : "kept");
            ok = 0;
        }
        failed += !ok;
    }
    fy__persist_write = saved_write;
    fy__persist_sync = saved_sync;
    fprintf(stderr, "long partition: %zu cases, %d failed\n", sizeof(cases) / sizeof(cases[0]), failed);
    assert_int_equal(failed, 0);
}

/* Scripted: a replica restarting just as a long partition heals asks the isolated one for its state before that one
 * has heard from a ready peer. g1 and g2 are everywhere; replica 2 is cut off for 40 s (the retention is 20 s) while
 * replica 0 deletes g1 and replica 1 takes g3; replica 1 crashes 100 ms before the heal and restarts empty at it, and
 * replica 2's links to replica 0 stay blocked for `late` after it (replica 1 is its only peer, and not ready).
 * Expected: g2 and g3 everywhere, no g1. Before the fix, replica 2 answered replica 1's state request at once with g1,
 * replica 1 merged it and became ready with it, and handed it back to replica 2 after its drop: g1 back on both. Now
 * replica 2 holds the request until it hears replica 0 (ready) and drops its state; at most --cluster.peer-timeout (2
 * s), which is why `late` stays below that. */
static int stale_requester_case(uint64_t seed, int64_t late)
{
    script_begin(seed, 0);
    script_retention(20 * SEC);
    script_put_g1_g2();
    int64_t until = S.T + 40 * SEC;
    S.blocked[1][2] = S.blocked[2][1] = until;
    S.blocked[0][2] = S.blocked[2][0] = until + late;
    script_changes_while_cut_off();
    while (S.T < until - 100 * MS && !S.failure[0])
        step(0, 0);
    replica_crash(1);
    S.r[1].down_until = until;
    while (S.T < until + late + 5 * SEC && !S.failure[0])
        step(0, 0);
    script_heal(0);
    char what[64];
    snprintf(what, sizeof(what), "stale requester (%.1f s late), seed %llu", (double)late / 1e9, (unsigned long long)seed);
    int ok = script_jobs_are(0xcu, what); /* g2 and g3, no g1 */
    sim_cleanup();
    return ok;
}

/* The control: every replica cut off from every other for 40 s (all of them on a minority side, none ready), then
 * healed. Each holds the others' state requests (each may drop), none hears a ready peer, so each answers after the
 * peer timeout and they catch up from each other: ready within 5 s, g1 and g2 kept. (One whose handshake comes after
 * another is ready may drop its state and take it back from that one, which merged it: *drops counts those.) */
static int apart_case(uint64_t seed, uint64_t *drops)
{
    script_begin(seed, 0);
    script_retention(20 * SEC);
    script_put_g1_g2();
    int64_t until = S.T + 40 * SEC;
    for (int i = 0; i < S.n; i++)
        for (int j = 0; j < S.n; j++)
            S.blocked[i][j] = i != j ? until : 0;
    while (S.T < until + 5 * SEC && !S.failure[0])
        step(0, 0);
    char what[64];
    snprintf(what, sizeof(what), "cut apart, seed %llu", (unsigned long long)seed);
    int ok = script_jobs_are(0x6u, what); /* g1 and g2 kept */
    for (int i = 0; i < S.n && ok; i++) {
        *drops += S.r[i].cl->stale_drops;
        if (!atomic_load(&S.r[i].cl->ready)) {
            fprintf(stderr, "%s: replica %d is not ready 5 s after the heal\n", what, i);
            ok = 0;
        }
    }
    sim_cleanup();
    return ok;
}

/* Durable: both replicas of the majority restart (from their logs) as the 40 s partition of replica 2 heals, 100 ms
 * after they crash; g4, taken a second before, keeps their state younger than the retention. Each is ready from the
 * other's state transfer alone (a durable restart needs one peer fewer), so neither is ready at its handshakes with
 * replica 2, which holds their state requests (it may drop). Before, it became ready itself on their transfers, with
 * g1, and handed g1 back; with either of the fixes alone (it waits for a ready peer before it is ready; readiness
 * travels in heartbeats) it still did, 4 of 4 cases each. Now the first heartbeat of a ready one makes it drop first.
 * (Without g4 every replica's state is older than the retention, none is ready, and all of it is kept: the documented
 * outage case.) */
static int majority_restart_case(uint64_t seed)
{
    script_begin(seed, 1);
    script_retention(20 * SEC);
    for (long k = 0; k < 1000; k++) /* the start's state transfers are over: the next changes go to every log */
        step(0, 0);
    script_put_g1_g2();
    int64_t until = S.T + 40 * SEC;
    S.blocked[0][2] = S.blocked[2][0] = S.blocked[1][2] = S.blocked[2][1] = until;
    script_changes_while_cut_off();
    while (S.T < until - 1000 * MS && !S.failure[0])
        step(0, 0);
    assert_int_equal(script_change(0, K_PUT, 4, 1u << FAM_X, 0), 200);
    while (S.T < until - 100 * MS && !S.failure[0])
        step(0, 0);
    assert_int_equal(S.ops[S.nops - 1].status, ST_ACKED);
    replica_crash(0);
    replica_crash(1);
    S.r[0].down_until = S.r[1].down_until = until;
    while (S.T < until + 5 * SEC && !S.failure[0])
        step(0, 0);
    script_heal(0);
    char what[64];
    snprintf(what, sizeof(what), "majority restart, seed %llu", (unsigned long long)seed);
    int ok = script_jobs_are(0x1cu, what); /* g2, g3 and g4, no g1 */
    sim_cleanup();
    return ok;
}

static void test_stale_requester(void **state)
{
    (void)state;
    fy_log_setup(env_long("FY_SIM_VERBOSE", 0) != 0 ? "info" : "error", "logfmt");
    static const int64_t lates[] = {300 * MS, 700 * MS, 1000 * MS, 1500 * MS};
    int failed = 0;
    for (size_t i = 0; i < sizeof(lates) / sizeof(lates[0]); i++)
        failed += !stale_requester_case(9500 + i, lates[i]);
    int apart_failed = 0;
    uint64_t drops = 0;
    for (uint64_t seed = 9600; seed < 9606; seed++)
        apart_failed += !apart_case(seed, &drops);
    ssize_t (*saved_write)(int, const void *, size_t) = fy__persist_write;
    int (*saved_sync)(int, int) = fy__persist_sync;
    fy__persist_write = sim_write;
    fy__persist_sync = sim_sync;
    int majority_failed = 0;
    for (uint64_t seed = 9700; seed < 9704; seed++)
        majority_failed += !majority_restart_case(seed);
    fy__persist_write = saved_write;
    fy__persist_sync = saved_sync;
    fprintf(stderr,
            "stale requester: %zu cases, %d failed; cut apart: 6 cases, %d failed (%llu state drops); majority restart: 4 "
            "cases, %d failed\n",
            sizeof(lates) / sizeof(lates[0]), failed, apart_failed, (unsigned long long)drops, majority_failed);
    failed += majority_failed;
    assert_int_equal(failed, 0);
    assert_int_equal(apart_failed, 0);
}

/* Scripted: a cluster started together (a replica may not have met a ready peer at its first handshakes), an hour
 * without pushes (here: the 20 s retention), then each link between two replicas drops for 3 s in turn. All stay
 * ready (each still reaches the third). Before the fix, the start-time age check, never run, ran at the reconnection: the state
 * was older than the retention, so a ready replica dropped everything and served an empty store until its peers'
 * transfers came back. Now the check is over once a replica is ready: every ready replica holds g1 throughout. */
static void test_quiet_reconnect(void **state)
{
    (void)state;
    fy_log_setup(env_long("FY_SIM_VERBOSE", 0) != 0 ? "info" : "error", "logfmt");
    script_begin(9000, 0);
    script_retention(20 * SEC);
    /* Which replica met a ready peer during the simulated start depends on its handshakes' order; in a StatefulSet
     * started in order, replicas 0 and 1 handshake while neither is ready (one alone has no quorum), become ready
     * together, and replica 2's handshakes come while it is not ready itself: none of them has checked. */
    for (int i = 0; i < S.n; i++)
        S.r[i].cl->stale_checked = 0;
    assert_int_equal(script_change(0, K_PUT, 1, 1u << FAM_X, 0), 200);
    for (long k = 0; k < 25000; k++) /* quiet for longer than the retention */
        step(0, 0);
    long missing = 0;
    for (int i = 0; i < S.n; i++) /* each link drops in turn: whichever replica never met a ready peer meets one */
        for (int j = i + 1; j < S.n; j++) {
            S.blocked[i][j] = S.blocked[j][i] = S.T + 3 * SEC;
            for (long k = 0; k < 6000 && !S.failure[0]; k++) {
                step(0, 0);
                for (int r = 0; r < S.n; r++)
                    if (atomic_load(&S.r[r].cl->ready) && !holds_job(&S.r[r], 1) && missing++ == 0)
                        fprintf(stderr, "quiet reconnect: t=%.3fs: replica %d is ready without g1\n", (double)(S.T - S.T0) / 1e9,
                                r);
            }
        }
    uint64_t drops = 0;
    for (int i = 0; i < S.n; i++)
        drops += S.r[i].cl->stale_drops;
    int ok = !S.failure[0] && converged(1);
    fprintf(stderr, "quiet reconnect: %ld ready-replica steps without g1, %llu state drops%s%s\n", missing,
            (unsigned long long)drops, S.failure[0] ? ": " : "", S.failure);
    sim_cleanup();
    assert_true(ok);
    assert_int_equal(missing, 0);
    assert_int_equal(drops, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_conflict),  cmocka_unit_test(test_causal_conflict), cmocka_unit_test(test_long_partition),
        cmocka_unit_test(test_quiet_reconnect), cmocka_unit_test(test_stale_requester), cmocka_unit_test(test_short_retention),
        cmocka_unit_test(test_cluster_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
