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
 * cluster, core and store are destroyed; the restart is empty, in-memory mode) at most one at a time with 3
 * replicas, two with 5. Each replica's clock is the simulated clock plus a seeded skew of +-100 ms.
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
 *     after holding it counts: it held it).
 * "Holds change X" is semantic: the replica's state for X's group reflects X or something that supersedes it (see
 * covers()).
 *
 * Environment: FY_SIM_SEEDS=n seeds 1..n (default 1500, about 60 s in a Release build on this 2-core VM; 200 under
 * sanitizers), FY_SIM_FIRST_SEED=s to start elsewhere; FY_SIM_SEED=s runs seed s alone (a failure prints it, and the
 * run replays exactly); FY_SIM_STEPS=n simulated milliseconds of workload and faults per seed (default 8000, then up
 * to 60 s of healing); FY_SIM_VERBOSE=1 the replicas' log lines; FY_SIM_TRACE=1 every change applied, and the
 * protocol's state at a failure (stdout); FY_SIM_DUMP=file the renders of two replicas that differ;
 * FY_SIM_DOUBLE_FAULTS=1 lets a replica crash while another one is still catching up (a second failure).
 *
 * Regression seeds (each fails with its fix reverted, and runs first whatever FY_SIM_SEEDS says):
 *   3   state transfer took the failure-time JSON stamp for the failure register (node.c on_group)
 *   46  two replicas with the same random clock slot stamped two changes alike (net.c fy_cluster_create)
 *   54  a GAP bumped the applied mark although the state request could not go out (node.c FY_MSG_GAP)
 *   291 a peer lost a second time was not resynchronised (node.c lost_node, "once")
 *   69  a replica acknowledged changes its state transfer had not brought yet (node.c acks_true; main's skip_to)
 */
#define _GNU_SOURCE
#include "store_testlib.h"

#include <stdarg.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "cluster_int.h"
#include "log.h"

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
    fy_push_arena_t arena;
    uint64_t backlog_bytes;
    int healing, trace, double_faults;
    char failure[2048];
    /* figures */
    uint64_t acked, failed, lost, refused, crashes, resets, partitions;
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

static uint64_t rnd(void)
{
    uint64_t z = (S.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
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

static int covers(replica_t *R, const op_t *op)
{
    cover_t C = {op, 0, 0};
    fy_store_foreach_changed_since(R->store, op->stamp - 1, cover_cb, &C);
    return C.covered;
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
        /* check 4: held by W replicas */
        unsigned holders = op->crashed_holders;
        for (int i = 0; i < S.n; i++)
            if (S.r[i].up && covers(&S.r[i], op))
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
    fy_cluster_config_t cc;
    memset(&cc, 0, sizeof(cc));
    cc.listen = S.addr[i];
    cc.advertise = S.addr[i]; /* recognises itself in the peer list without resolving anything */
    cc.peers = S.addrp;
    cc.npeers = (size_t)S.n;
    cc.label = "sim";
    cc.ack_timeout_ns = 5 * SEC;
    cc.peer_timeout_ns = 2 * SEC;
    cc.heartbeat_ns = 250 * MS;
    cc.reconnect_ns = 200 * MS;
    cc.max_offset_ns = 500 * MS;
    cc.retention_ns = 3600 * SEC;
    cc.fingerprint = 42;
    cc.backlog_bytes = S.backlog_bytes;
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
    fy_cluster_loaded(c, 0);
}

static void replica_destroy(replica_t *R)
{
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
    /* what it held counts for acknowledgements still to come */
    for (size_t k = 0; k < S.nops; k++) {
        op_t *op = &S.ops[k];
        if (op->status == ST_PENDING && covers(R, op))
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
    for (int i = 0; i < S.n; i++) {
        replica_t *R = &S.r[i];
        if (!R->up)
            continue;
        fy_cl_tick(R->cl);
        collect(R);
        sweep(R);
    }
}

static char *render_both(replica_t *R)
{
    char *t = render_text(R->store, NULL), *j = render_json(R->store);
    size_t n = strlen(t) + strlen(j) + 16;
    char *o = malloc(n);
    snprintf(o, n, "%s\n--- json\n%s", t, j);
    free(t);
    free(j);
    return o;
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
    char *r0 = render_both(&S.r[0]);
    int same = 1;
    for (int i = 1; i < S.n && same; i++) {
        char *ri = render_both(&S.r[i]);
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
    }
    for (int ci = 0; ci < MAXCONN; ci++)
        segs_free(&S.conns[ci]);
    free(S.ops);
    fy_push_arena_free(&S.arena);
}

/* One seed: 0, or -1 with S.failure. */
static int run_seed(uint64_t seed, long steps, int verbose)
{
    memset(&S, 0, sizeof(S));
    S.seed = seed;
    S.trace = getenv("FY_SIM_TRACE") != NULL;
    S.double_faults = env_long("FY_SIM_DOUBLE_FAULTS", 0) != 0;
    S.rng = seed * 0x2545F4914F6CDD1DULL + 7;
    S.n = seed % 3 == 2 ? 5 : 3;
    S.maxdown = S.n == 5 ? 2 : 1;
    S.W = (unsigned)S.n / 2 + 1;
    S.backlog_bytes = chance(0.25) ? 4096 : 0; /* a small backlog: reconnecting peers get GAP and state transfer */
    S.T = S.T0 = 1700000000 * SEC + (int64_t)(rnd() % (1000 * SEC));
    for (int i = 0; i < S.n; i++) {
        snprintf(S.addr[i], sizeof(S.addr[i]), "sim:%d", i);
        S.addrp[i] = S.addr[i];
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
                "seed %llu: n=%d ops=%zu acked=%llu failed=%llu lost=%llu refused=%llu crashes=%llu resets=%llu "
                "partitions=%llu backlog=%llu\n",
                (unsigned long long)seed, S.n, S.nops, (unsigned long long)S.acked, (unsigned long long)S.failed,
                (unsigned long long)S.lost, (unsigned long long)S.refused, (unsigned long long)S.crashes,
                (unsigned long long)S.resets, (unsigned long long)S.partitions, (unsigned long long)S.backlog_bytes);
    }
    int rc = S.failure[0] ? -1 : 0;
    if (rc != 0 && S.trace)
        dump_state();
    return rc;
}

static void test_cluster_sim(void **state)
{
    (void)state;
    int verbose = env_long("FY_SIM_VERBOSE", 0) != 0;
    fy_log_setup(verbose ? "info" : "error", "logfmt");
    /* the replicas' log lines (errors: refused peers and the like) only with FY_SIM_VERBOSE */
    int saved = -1;
    if (!verbose) {
        int devnull = open("/dev/null", O_WRONLY);
        saved = dup(2);
        dup2(devnull, 2);
        close(devnull);
    }
    long steps = env_long("FY_SIM_STEPS", 8000);
    const char *one = getenv("FY_SIM_SEED");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    long nseeds = env_long("FY_SIM_SEEDS", 200);
#else
    long nseeds = env_long("FY_SIM_SEEDS", 1500);
#endif
    long first = env_long("FY_SIM_FIRST_SEED", 1);
    static const uint64_t regressions[] = {3, 46, 54, 291, 69};
    long nreg = one ? 0 : (long)(sizeof(regressions) / sizeof(regressions[0]));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ops = 0, acked = 0, crashes = 0;
    long ran = 0, failures = 0;
    for (long k = -nreg; k < (one ? 1 : nseeds); k++) {
        uint64_t seed = k < 0 ? regressions[nreg + k] : one ? strtoull(one, NULL, 10) : (uint64_t)(first + k);
        int rc = run_seed(seed, steps, verbose || one != NULL);
        ops += S.nops;
        acked += S.acked;
        crashes += S.crashes;
        ran++;
        if (rc != 0) {
            if (saved >= 0)
                dup2(saved, 2);
            fprintf(stderr, "cluster simulation: seed %llu failed: %s\n  replay: FY_SIM_SEED=%llu %s\n", (unsigned long long)seed,
                    S.failure, (unsigned long long)seed, "build/tests/test_cluster_sim");
            failures++;
        }
        sim_cleanup();
        if (failures)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "cluster simulation: %ld seeds, %llu client changes, %llu acknowledged, %llu crashes, %.1f s\n", ran,
            (unsigned long long)ops, (unsigned long long)acked, (unsigned long long)crashes, secs);
    if (failures)
        fail_msg("cluster simulation failed (seed above)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
