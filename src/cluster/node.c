/*
 * node.c: the replication protocol (cluster.h, wire.h): handshakes, shipping and applying changes, acknowledgements
 * and the write quorum, state transfer, readiness, the hybrid logical clock. No sockets here: a driver (net.c, or
 * the simulation test) owns the connections, feeds bytes into links and sends what the links' out buffers hold.
 */
#include "cluster_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grouprec.h"
#include "le.h"
#include "log.h"
#include "record.h"

#define SLOT_BITS 4
#define SLOT_MASK ((int64_t)((1 << SLOT_BITS) - 1))

/* ------------------------------------------------------------------------------------------------------------- */
/* The clock: a hybrid logical clock in Unix nanoseconds whose low 4 bits are this replica's slot, so two replicas
 * never give two changes the same stamp (docs/ha.md, "Stamps"). */

int64_t fy_cluster_stamp(void *ctx, int64_t wall)
{
    fy_cluster_t *c = ctx;
    int64_t last = atomic_load(&c->hlc_last) & ~SLOT_MASK, remote = atomic_load(&c->hlc_remote) & ~SLOT_MASK;
    int64_t t = wall & ~SLOT_MASK;
    if (t <= last)
        t = last + (SLOT_MASK + 1);
    if (t <= remote)
        t = remote + (SLOT_MASK + 1);
    t |= (int64_t)atomic_load(&c->slot);
    atomic_store(&c->hlc_last, t);
    return t;
}

/* A stamp or clock from a peer: refused when it is further ahead of our wall clock than the allowed offset (its clock
 * would drag every stamp forward). Returns 0, or -1. */
static int observe_clock(fy_cluster_t *c, int64_t remote)
{
    int64_t now = c->now(c);
    if (remote > now + c->cfg.max_offset_ns)
        return -1;
    int64_t cur = atomic_load(&c->hlc_remote);
    while (remote > cur && !atomic_compare_exchange_weak(&c->hlc_remote, &cur, remote))
        ;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Helpers */

static void slot_check(fy_cluster_t *c, uint64_t id, uint32_t slot, int peer_ready);
static void drop_if_stale(fy_cluster_t *c, int except);

static fy_cl_link_t *L(fy_cluster_t *c, int i)
{
    return &c->links[i];
}

static void close_link(fy_cluster_t *c, int li, const char *why)
{
    fy_cl_link_t *l = L(c, li);
    if (!l->used || l->closing)
        return;
    l->closing = 1;
    c->close_link(c, li); /* the driver calls fy_cl_link_closed */
    (void)why;
}

static void refuse(fy_cluster_t *c, int li, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(fy_cluster_t *c, int li, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fy_cl_link_t *l = L(c, li);
    size_t at = fy_frame_begin(&l->out, FY_MSG_REFUSE);
    fy_frame_str(&l->out, why, strlen(why));
    fy_frame_end(&l->out, at);
    int64_t now = c->now(c);
    if (now - c->refuse_logged_at >= 10 * (int64_t)1000000000) { /* a misconfigured peer retries every few seconds */
        c->refuse_logged_at = now;
        fy_log_error("msg", "refused a peer connection (logged at most every 10 s)", "reason", why);
    }
    close_link(c, li, why);
}

static int node_find(fy_cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id)
            return (int)i;
    return -1;
}

/* The entry of a replica incarnation; a full table reuses the entry least recently heard from without links. */
static int node_get(fy_cluster_t *c, uint64_t id)
{
    int n = node_find(c, id);
    if (n >= 0)
        return n;
    if (c->nnodes < FY_CL_MAX_NODES) {
        n = (int)c->nnodes++;
    } else {
        n = -1;
        for (size_t i = 0; i < c->nnodes; i++)
            if (c->nodes[i].in_link < 0 && c->nodes[i].out_link < 0 && (n < 0 || c->nodes[i].last_heard < c->nodes[n].last_heard))
                n = (int)i;
        if (n < 0)
            return -1;
    }
    fy_cl_node_t *nd = &c->nodes[n];
    memset(nd, 0, sizeof(*nd));
    nd->id = id;
    nd->in_link = nd->out_link = nd->addr = -1;
    return n;
}

static uint16_t my_flags(fy_cluster_t *c)
{
    fy_store_stats_t st;
    fy_store_stats(c->core->store, &st);
    uint16_t f = 0;
    if (st.groups == 0 && st.tombstones == 0)
        f |= FY_WIRE_EMPTY;
    if (atomic_load(&c->ready))
        f |= FY_WIRE_READY;
    return f;
}

static void count_reachable(fy_cluster_t *c)
{
    int n = 0;
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        if (!a->self && a->link >= 0 && L(c, a->link)->open)
            n++;
    }
    atomic_store(&c->reachable, n);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The observer: a change made here (a client's, or a kill of ours) goes to the backlog, in store order. */

typedef struct {
    unsigned type;
    uint8_t *payload;
    size_t len;
} prepared_t;

/* Changes handed on to the peers: those made here (a drop of stale state never leaves the replica) */
static int shipped(const fy_change_t *ch)
{
    return (ch->origin == FY_ORIGIN_CLIENT || ch->origin == FY_ORIGIN_CLUSTER) && ch->kind != FY_CHANGE_DROP;
}

static const char *cl_refuses(void *ctx)
{
    fy_cluster_t *c = ctx;
    static _Thread_local char why[200];
    int have = atomic_load(&c->reachable) + 1;
    if ((unsigned)have >= c->quorum)
        return NULL;
    atomic_fetch_add(&c->refused_no_quorum, 1);
    snprintf(why, sizeof(why),
             "cluster: no write quorum: %d of %u replicas reachable, %u needed (--cluster.write-quorum); nothing was "
             "changed",
             have, c->replicas, c->quorum);
    return why;
}

static int cl_prepare(void *ctx, const fy_change_t *ch, void **state)
{
    *state = NULL;
    if (!shipped(ch) || ch->kind == FY_CHANGE_BULK || ch->kind == FY_CHANGE_RESTORE || ch->kind == FY_CHANGE_EXPIRE)
        return 0;
    prepared_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return -1;
    int rc = fy_record_encode(ch, &p->type, &p->payload, &p->len);
    if (rc != 0) {
        free(p);
        return rc < 0 ? -1 : 0;
    }
    *state = p;
    return 0;
}

/* With mu held: frees the backlog's oldest entry. */
static void backlog_pop(fy_cluster_t *c)
{
    fy_cl_entry_t *e = &c->backlog[c->bl_head];
    c->bl_bytes -= e->len;
    free(e->frame);
    c->bl_head = (c->bl_head + 1) % c->bl_cap;
    c->bl_n--;
}

/* Without mu: `newly` more changes of ours, up to late, were not held by the write quorum in time (503, indeterminate). */
static void report_late(fy_cluster_t *c, uint64_t late, uint64_t newly)
{
    atomic_fetch_add(&c->quorum_failures, newly);
    if (c->cfg.time_out)
        c->cfg.time_out(c->cfg.ctx, late);
}

/* With mu held: appends one change to the backlog. */
static void backlog_add(fy_cluster_t *c, unsigned type, const uint8_t *payload, size_t len, int64_t stamp, uint64_t wal_seq)
{
    if (c->bl_n == c->bl_cap) {
        size_t cap = c->bl_cap ? c->bl_cap * 2 : 1024;
        fy_cl_entry_t *v = malloc(cap * sizeof(*v));
        if (v == NULL) {
            fy_log_error("msg", "out of memory in the replication backlog; exiting");
            abort();
        }
        for (size_t i = 0; i < c->bl_n; i++)
            v[i] = c->backlog[(c->bl_head + i) % c->bl_cap];
        free(c->backlog);
        c->backlog = v;
        c->bl_cap = cap;
        c->bl_head = 0;
    }
    fy_wbuf_t b = {0};
    size_t at = fy_frame_begin(&b, FY_MSG_OP);
    fy_frame_u64(&b, ++c->seq);
    uint8_t t = (uint8_t)type;
    fy_wbuf_add(&b, &t, 1);
    fy_wbuf_add(&b, payload, len);
    fy_frame_end(&b, at);
    fy_cl_entry_t *e = &c->backlog[(c->bl_head + c->bl_n) % c->bl_cap];
    e->seq = c->seq;
    e->wal_seq = wal_seq;
    e->stamp = stamp;
    e->at = c->now(c);
    e->frame = b.p;
    e->len = b.n;
    c->bl_n++;
    c->bl_bytes += b.n;
    c->last_stamp = stamp;
    atomic_fetch_add(&c->sent, 1);
}

static const char *cl_commit(void *ctx, const fy_change_t *ch, int changed, const fy_change_result_t *r, void *state, uint64_t *seq)
{
    fy_cluster_t *c = ctx;
    prepared_t *p = state;
    *seq = 0;
    if (!shipped(ch) || !changed || r == NULL) {
        if (p != NULL) {
            free(p->payload);
            free(p);
        }
        return NULL;
    }
    int waits = ch->origin == FY_ORIGIN_CLIENT;
    uint64_t wal_seq = r->seq; /* the log's, committed just before (its observer comes first) */
    pthread_mutex_lock(&c->mu);
    if (ch->kind == FY_CHANGE_BULK) {
        /* the groups it deleted, each a delete at the change's stamp */
        size_t off = 0;
        unsigned kind;
        fy_str_t bytes;
        while (fy_effect_next(r, &off, &kind, &bytes)) {
            if (kind != FY_EFFECT_DELETED)
                continue;
            fy_store_label_t labels[256];
            size_t n = fy_effect_labels(bytes, labels, 256);
            fy_change_t d = {
                .kind = FY_CHANGE_DELETE, .origin = FY_ORIGIN_CLUSTER, .now_ns = ch->now_ns, .labels = labels, .nlabels = n};
            unsigned type;
            uint8_t *payload;
            size_t len;
            if (fy_record_encode(&d, &type, &payload, &len) == 0) {
                backlog_add(c, type, payload, len, ch->now_ns, wal_seq);
                free(payload);
            }
        }
    } else if (p != NULL) {
        if (ch->kind == FY_CHANGE_PUSH) {
            if (r->failure) {
                p->type = FY_REC_FAIL;
                waits = 0; /* the client gets its 400 now; the failure time follows */
            } else if (r->status < 300) {
                p->type = FY_REC_MERGE;
            } else {
                p->type = 0; /* refused by a limit: nothing happened */
            }
        }
        if (p->type != 0) {
            fy_put_le64(p->payload + 1, (uint64_t)ch->now_ns); /* the stamp, taken after prepare */
            backlog_add(c, p->type, p->payload, p->len, ch->now_ns, wal_seq);
        } else {
            waits = 0;
        }
    } else {
        waits = 0;
    }
    uint64_t s = c->seq;
    pthread_mutex_unlock(&c->mu);
    if (p != NULL) {
        free(p->payload);
        free(p);
    }
    if (waits && r->status < 300)
        *seq = s;
    /* with every link waiting for an ACK, the ACK's arrival sends this change: no wake-up (fy_cl_wait_ns closes the
     * race with a link that just went idle: the network thread reads the sequence after publishing send_busy) */
    if (!atomic_load(&c->send_busy))
        c->wake(c);
    return NULL;
}

static const char *cl_wait(void *ctx, uint64_t seq)
{
    /* only callers off the loops (none in the server today) would wait here; poll the release mark */
    fy_cluster_t *c = ctx;
    for (int i = 0; i < 100000; i++) {
        pthread_mutex_lock(&c->mu);
        uint64_t rel = c->released, late = c->late;
        pthread_mutex_unlock(&c->mu);
        if (rel >= seq)
            return NULL;
        if (late >= seq)
            return "cluster: the write quorum did not answer in time; the change may still reach the other replicas";
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return "cluster: the write quorum did not answer in time";
}

fy_change_observer_t fy_cluster_observer(fy_cluster_t *c)
{
    fy_change_observer_t o = {c, 1, cl_refuses, cl_prepare, cl_commit, cl_wait, 503};
    return o;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Sending */

static void send_hello(fy_cluster_t *c, fy_cl_link_t *l)
{
    size_t at = fy_frame_begin(&l->out, FY_MSG_HELLO);
    fy_frame_u32(&l->out, FY_WIRE_MAGIC);
    fy_frame_u16(&l->out, FY_WIRE_PROTOCOL);
    fy_frame_u16(&l->out, my_flags(c));
    fy_frame_u64(&l->out, c->id);
    fy_frame_u32(&l->out, atomic_load(&c->slot));
    fy_frame_u64(&l->out, (uint64_t)fy_cluster_stamp_peek(c));
    fy_frame_u64(&l->out, c->cfg.fingerprint);
    fy_frame_str(&l->out, c->cfg.label, strlen(c->cfg.label));
    fy_frame_end(&l->out, at);
}

static void send_u64(fy_cl_link_t *l, unsigned type, uint64_t v)
{
    size_t at = fy_frame_begin(&l->out, type);
    fy_frame_u64(&l->out, v);
    fy_frame_end(&l->out, at);
}

/* Asks the replica behind addr for every group changed after since. When our link to it is not open, the request
 * waits for the link (the earliest since wins): a gap or a lost peer must not be forgotten because a link was down. */
static void send_req(fy_cluster_t *c, int addr, int64_t since)
{
    fy_cl_addr_t *a = &c->addrs[addr];
    if (since < 0)
        since = 0;
    if (a->link < 0 || !L(c, a->link)->open) {
        if (a->want_since < 0 || since < a->want_since)
            a->want_since = since;
        return;
    }
    fy_cl_link_t *l = L(c, a->link);
    a->req_id = ++c->req_seq;
    size_t at = fy_frame_begin(&l->out, FY_MSG_REQ);
    fy_frame_u64(&l->out, a->req_id);
    fy_frame_u64(&l->out, (uint64_t)since);
    fy_frame_end(&l->out, at);
}

int64_t fy_cluster_stamp_peek(fy_cluster_t *c)
{
    int64_t t = atomic_load(&c->hlc_last), now = c->now(c);
    return t > now ? t : now;
}

/* Sending is self-clocked, Nagle's rule for batches: while a link has changes out that its peer has not acknowledged,
 * new ones wait for that ACK (at most FLUSH_HOLD_NS), and an idle link sends at once, so a lone push adds no delay.
 * Under load a send carries what accumulated during a round trip instead of what one HTTP loop turn committed, and a
 * loop committing while every link waits does not wake this thread (send_busy). Measured with perf stat on loopback
 * (3 replicas, 32 connections): sends per push 0.42 -> 0.20, the loops' eventfd writes 0.22 -> 0.04 per push. The
 * hold bounds the wait for a peer that does not acknowledge (catching up, or its log syncing in durable mode). */
#define FLUSH_HOLD_NS (1000 * (int64_t)1000)

#define LINK_OUT_MAX (8u << 20) /* bytes of changes queued in a link before the flush waits for the socket */

static int link_busy(fy_cluster_t *c, fy_cl_link_t *l, int64_t now)
{
    return c->nodes[l->node].acked + 1 < l->send_next && now - l->batch_at < FLUSH_HOLD_NS;
}

/* A new incarnation of the peer asks us for a state transfer first: for up to 2 s its link waits for that request
 * rather than being told of a gap. */
static int link_awaits_request(fy_cluster_t *c, fy_cl_link_t *l, int64_t now)
{
    return l->fresh && c->nodes[l->node].skip_to == 0 && now - l->opened_at < 2 * (int64_t)1000000000;
}

/* Our changes into every open outbound link that is not waiting for an ACK, from where each stands. */
void fy_cl_flush(fy_cluster_t *c)
{
    int64_t now = c->now(c);
    pthread_mutex_lock(&c->mu);
    uint64_t first = c->bl_n ? c->backlog[c->bl_head].seq : c->seq + 1;
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = L(c, li);
        if (!l->used || !l->outbound || !l->open || l->closing)
            continue;
        fy_cl_node_t *nd = &c->nodes[l->node];
        if (l->send_next < first && nd->skip_to >= first) {
            /* its state transfer from us holds the rest. In durable mode only in memory (a transfer is not logged):
             * the changes still waiting for the write quorum are sent anyway, so that its acknowledgement of them
             * means "logged" (tests/test_cluster_sim.c, seed 7 durable) */
            uint64_t next = nd->skip_to, decided = c->released > c->late ? c->released : c->late;
            if (c->cfg.durable && decided + 1 < next)
                next = decided + 1 > first ? decided + 1 : first;
            l->send_next = next;
        } else if (l->send_next < first && link_awaits_request(c, l, now)) {
            continue;
        }
        if (l->send_next < first) {
            /* what it missed is gone from the backlog: it will ask for a state transfer */
            send_u64(l, FY_MSG_GAP, first);
            atomic_fetch_add(&c->gaps, 1);
            l->send_next = first;
        }
        if (l->send_next > c->seq || link_busy(c, l, now))
            continue;
        l->batch_at = now;
        while (l->send_next <= c->seq && fy_wbuf_len(&l->out) < LINK_OUT_MAX) {
            fy_cl_entry_t *e = &c->backlog[(c->bl_head + (l->send_next - first)) % c->bl_cap];
            fy_wbuf_add(&l->out, e->frame, e->len);
            l->sent_stamp = e->stamp;
            l->send_next++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Applying a peer's change */

static int dropped_any(const fy_change_result_t *r)
{
    size_t off = 0;
    unsigned kind;
    fy_str_t name;
    while (fy_effect_next(r, &off, &kind, &name))
        if (kind == FY_EFFECT_DROPPED)
            return 1;
    return 0;
}

/* A state transfer we asked for is under way: its END has not come on a link that is still open. */
static int transfer_in_flight(const fy_cluster_t *c)
{
    for (size_t i = 0; i < c->naddrs; i++) {
        const fy_cl_addr_t *a = &c->addrs[i];
        if (!a->self && !a->caught_up && a->link >= 0 && c->links[a->link].open && !c->links[a->link].closing)
            return 1;
    }
    return 0;
}

/* Whether every change that the replica behind node had applied when it stamped a change at stamp has reached us: a
 * peer's frontier (the heartbeat's, or its own changes as they come) at or past it covers that peer's changes, which
 * that replica's clock had passed. A peer whose link to us is closing or just dropped is waited for until lost_node
 * has asked the others for what only they got (a transfer then holds the conflict); one not connected otherwise (never,
 * or lost and handled) is not waited for. */
static int causally_settled(const fy_cluster_t *c, int node, int64_t stamp)
{
    for (size_t n = 0; n < c->nnodes; n++) {
        const fy_cl_node_t *nd = &c->nodes[n];
        if ((int)n == node)
            continue;
        if (nd->lost_at != 0)
            return 0;
        if (nd->in_link < 0)
            continue; /* a link still closing counts: lost_at is set only once the driver has closed it */
        if (nd->watermark < stamp)
            return 0;
    }
    return 1;
}

enum { DEFER_OP = 1, DEFER_GROUP = 2 };
#define DEFER_HEADER 26          /* u8 kind, u8 record type, u32 node, u64 its sequence number, i64 stamp (DEFER_OP), u32 length */
#define HOLD_DEFERRED UINT64_MAX /* a hold's wal_seq: the change waits in c->deferred (settle_deferred) */

static void defer(fy_cluster_t *c, unsigned kind, unsigned type, int node, uint64_t seq, int64_t stamp, fy_str_t bytes)
{
    uint8_t h[DEFER_HEADER] = {(uint8_t)kind, (uint8_t)type};
    fy_put_le32(h + 2, (uint32_t)node);
    fy_put_le64(h + 6, seq);
    fy_put_le64(h + 14, (uint64_t)stamp);
    fy_put_le32(h + 22, (uint32_t)bytes.len);
    fy_wbuf_add(&c->deferred, h, sizeof(h));
    fy_wbuf_add(&c->deferred, bytes.ptr, bytes.len);
}

/* A peer's change whose acknowledgement waits: for the local log (wal_seq), for a deferred conflict (HOLD_DEFERRED),
 * or (0) only for the ones before it. */
static void hold_add(fy_cluster_t *c, int node, uint64_t seq, uint64_t wal_seq)
{
    if (c->nholds == c->cap_holds) {
        c->cap_holds = c->cap_holds ? c->cap_holds * 2 : 256;
        c->holds = realloc(c->holds, c->cap_holds * sizeof(*c->holds));
        if (c->holds == NULL)
            abort();
    }
    c->holds[c->nholds++] = (fy_cl_hold_t){node, seq, wal_seq};
}

static void apply_kills(fy_cluster_t *c, const fy_store_label_t *labels, size_t nlabels, int64_t stamp, const fy_change_result_t *r)
{
    size_t off = 0;
    unsigned kind;
    fy_str_t name;
    while (fy_effect_next(r, &off, &kind, &name)) {
        if (kind != FY_EFFECT_DROPPED)
            continue;
        /* the instance lost a conflict here: every replica drops it (docs/ha.md, "Conflicts") */
        fy_change_t k = {.kind = FY_CHANGE_KILL,
                         .origin = FY_ORIGIN_CLUSTER,
                         .now_ns = stamp,
                         .labels = labels,
                         .nlabels = nlabels,
                         .family = name};
        fy_change_result_t kr;
        fy_core_apply(c->core, &k, &c->arena, &kr);
        fy_change_result_free(&kr);
        atomic_fetch_add(&c->killed, 1);
        if (fy_log_enabled(FY_LOG_INFO)) {
            char fam[256];
            snprintf(fam, sizeof(fam), "%.*s", (int)name.len, name.ptr);
            fy_log_info("msg", "a family pushed at the same time as a conflicting one elsewhere was dropped on every replica",
                        "family", fam);
        }
    }
}

static void on_op(fy_cluster_t *c, int li, fy_str_t payload)
{
    fy_cl_link_t *l = L(c, li);
    fy_cl_node_t *nd = &c->nodes[l->node];
    fy_wrd_t r = fy_wrd(payload);
    uint64_t seq = fy_wrd_u64(&r);
    unsigned type = fy_wrd_u8(&r);
    fy_str_t rec = fy_wrd_rest(&r);
    if (r.bad || rec.len < 9) {
        refuse(c, li, "malformed change from a peer");
        return;
    }
    if (seq <= nd->applied)
        return; /* a resend after a reconnect */
    if (type == FY_REC_DROP) {
        refuse(c, li, "a peer sent a drop of its own stale state, which never leaves a replica");
        return;
    }
    fy_record_t dec;
    if (fy_record_decode(type, rec.ptr, rec.len, &dec) != 0) {
        fy_record_free(&dec);
        refuse(c, li, "a change from a peer does not decode (type %u)", type);
        return;
    }
    dec.change.origin = FY_ORIGIN_PEER;
    dec.change.merge = 1;
    int64_t stamp = dec.change.now_ns;
    if (observe_clock(c, stamp) != 0) {
        fy_record_free(&dec);
        refuse(c, li, "a change stamped %.3f s ahead of this replica's clock (--cluster.max-clock-offset)",
               (double)(stamp - c->now(c)) / 1e9);
        return;
    }
    fy_change_result_t res;
    fy_core_apply(c->core, &dec.change, &c->arena, &res);
    if (res.not_persisted) {
        fy_log_error("msg", "could not apply a peer's change durably; the peer will send it again", "err", res.msg);
        fy_change_result_free(&res);
        fy_record_free(&dec);
        close_link(c, li, "not persisted");
        return;
    }
    /* A conflict waits (settle_deferred) while a transfer is under way, or while another peer may still have a change
     * on its way that the sender had applied before this one: a DELETE on A seen by B before B took this push, and
     * still crossing from A to us (tests/test_cluster_sim.c, test_causal_conflict). So does the change's
     * acknowledgement: until then this replica does not hold all of it (seed 47). */
    int deferred = dropped_any(&res) && (transfer_in_flight(c) || !causally_settled(c, l->node, stamp));
    if (deferred)
        defer(c, DEFER_OP, type, l->node, seq, stamp, rec);
    else
        apply_kills(c, dec.change.labels, dec.change.nlabels, stamp, &res);
    nd->applied = seq;
    if (stamp > nd->watermark)
        nd->watermark = stamp;
    atomic_fetch_add(&c->applied, 1);
    if (deferred)
        hold_add(c, l->node, seq, HOLD_DEFERRED);
    else if (c->cfg.durable && res.seq != 0)
        hold_add(c, l->node, seq, res.seq);
    else if (c->nholds == 0)
        nd->held = seq;
    else
        hold_add(c, l->node, seq, 0); /* in order behind the ones waiting */
    fy_change_result_free(&res);
    fy_record_free(&dec);
}

/* Whether our acknowledgements to a replica are true: our link to it is up to date and its state transfer to us (if
 * one was asked: a restart, a GAP, a lost peer) is complete. A sender skips the changes that transfer holds (skip_to)
 * and a GAP jumps our applied mark over them, but the transfer comes on the other connection: until its END, a
 * cumulative ACK (or WELCOME's applied) would count us for changes we do not hold (tests/test_cluster_sim.c, seed 69
 * : an acknowledged PUT held by its replica alone). */
static int may_drop(fy_cluster_t *c, int64_t now);

/* Whether our state is not to be handed on in a state transfer yet (on_req): it may be dropped, or it was and has not
 * been caught up since. */
static int withheld(fy_cluster_t *c, int64_t now)
{
    return may_drop(c, now) || c->refilling;
}

static int acks_true(fy_cluster_t *c, int n)
{
    int a = c->nodes[n].addr;
    /* nor while our state may yet be dropped (drop_if_stale): the change acknowledged would go with it, after the
     * sender counted us (FY_SIM_RETENTION_MS=5500, seed 1257: a readiness learnt from a heartbeat, mid-stream) */
    return a >= 0 && c->addrs[a].node == n && c->addrs[a].caught_up && !may_drop(c, c->now(c));
}

/* Held peers' changes: acknowledged once the local log has them (durable mode), in order. */
static void settle_holds(fy_cluster_t *c)
{
    uint64_t durable = atomic_load(&c->wal_durable);
    size_t k = 0;
    while (k < c->nholds && (c->holds[k].wal_seq == 0 || c->holds[k].wal_seq <= durable)) {
        fy_cl_node_t *nd = &c->nodes[c->holds[k].node];
        if (c->holds[k].seq > nd->held)
            nd->held = c->holds[k].seq;
        k++;
    }
    if (k) {
        memmove(c->holds, c->holds + k, (c->nholds - k) * sizeof(*c->holds));
        c->nholds -= k;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        fy_cl_node_t *nd = &c->nodes[i];
        if (nd->in_link >= 0 && L(c, nd->in_link)->open && nd->held > L(c, nd->in_link)->ack_sent && acks_true(c, (int)i)) {
            send_u64(L(c, nd->in_link), FY_MSG_ACK, nd->held);
            L(c, nd->in_link)->ack_sent = nd->held;
        }
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* State transfer */

typedef struct {
    fy_cluster_t *c;
    fy_cl_link_t *l;
    fy_grouprec_buf_t b;
    uint64_t n;
} xfer_t;

static int xfer_group(void *ctx, const fy_store_group_view_t *g)
{
    xfer_t *X = ctx;
    if (fy_grouprec_encode(g, 1, &X->b) != 0) {
        fy_log_error("msg", "out of memory while sending a group to a peer; exiting");
        abort();
    }
    size_t at = fy_frame_begin(&X->l->out, FY_MSG_GROUP);
    fy_wbuf_add(&X->l->out, X->b.p, X->b.n);
    fy_frame_end(&X->l->out, at);
    X->n++;
    return 0;
}

static void on_req(fy_cluster_t *c, int li, fy_str_t payload)
{
    fy_wrd_t r = fy_wrd(payload);
    uint64_t id = fy_wrd_u64(&r);
    int64_t since = (int64_t)fy_wrd_u64(&r);
    if (r.bad) {
        refuse(c, li, "malformed state request");
        return;
    }
    /* A newer request replaces one still being answered (the asker waits for the newest only). The transfer goes out
     * a few shards at a time as the link drains (pump_transfers): a million series are 100+ MB, which built at once
     * would stall this thread's heartbeats and hold that much memory. */
    fy_cl_link_t *l = L(c, li);
    l->xfer = 1;
    l->xfer_id = id;
    l->xfer_since = since;
    l->xfer_shard = 0;
    l->xfer_groups = 0;
    /* A replica whose state drop_if_stale may be about to drop (it has not heard from a ready peer since) does not
     * hand that state on yet: the asker (itself not ready, or it would have been that sign) would merge the groups the
     * cluster deleted and forgot, and keep them. The answer waits until this replica knows (a ready peer, or ready
     * itself), and after a drop until it has caught up again (its state without its own changes would let the asker
     * skip them, skip_to), at most --cluster.peer-timeout (a cluster with no ready replica must still catch up: then
     * nobody drops, docs/ha.md). */
    int64_t now = c->now(c);
    l->xfer_held = withheld(c, now) ? now : 0;
    if (l->xfer_held != 0)
        fy_log_info("msg", "cluster: a peer's state request waits until this replica knows whether its state is stale", "peer",
                    l->node >= 0 && c->nodes[l->node].addr >= 0 ? c->addrs[c->nodes[l->node].addr].text : l->peer);
    /* every change of ours up to seq was applied to the store before the first shard is scanned */
    pthread_mutex_lock(&c->mu);
    l->xfer_seq = c->seq;
    pthread_mutex_unlock(&c->mu);
}

/* Whether a held state request can be answered now (on_req). */
static int xfer_released(fy_cluster_t *c, const fy_cl_link_t *l, int64_t now)
{
    return now - l->xfer_held >= c->cfg.peer_timeout_ns || !withheld(c, now);
}

#define XFER_BUFFERED (4u << 20) /* bytes of a transfer waiting in a link before the next shards are read */

static void pump_transfers(fy_cluster_t *c)
{
    uint32_t nshards = fy_store_nshards(c->core->store);
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = L(c, li);
        if (!l->used || l->closing || !l->xfer)
            continue;
        if (l->xfer_held != 0) {
            if (!xfer_released(c, l, c->now(c)))
                continue;
            l->xfer_held = 0;
            pthread_mutex_lock(&c->mu); /* as on_req: what the first shard's scan covers */
            l->xfer_seq = c->seq;
            pthread_mutex_unlock(&c->mu);
        }
        xfer_t X = {c, l, {0}, 0};
        while (l->xfer_shard < nshards && fy_wbuf_len(&l->out) < XFER_BUFFERED)
            fy_store_foreach_changed_since_shards(c->core->store, l->xfer_since, l->xfer_shard++, 1, xfer_group, &X);
        fy_grouprec_buf_free(&X.b);
        l->xfer_groups += X.n;
        if (l->xfer_shard < nshards)
            continue;
        l->xfer = 0;
        fy_cl_node_t *nd = &c->nodes[l->node];
        if (l->xfer_since == 0 && l->xfer_seq + 1 > nd->skip_to)
            nd->skip_to = l->xfer_seq + 1;
        size_t at = fy_frame_begin(&l->out, FY_MSG_END);
        fy_frame_u64(&l->out, l->xfer_id);
        fy_frame_u64(&l->out, l->xfer_groups);
        fy_frame_u64(&l->out, (uint64_t)fy_store_wipe_stamp(c->core->store));
        fy_frame_end(&l->out, at);
    }
}

static void dropped_cb(void *ctx, fy_str_t name)
{
    fy_change_effect_add(ctx, FY_EFFECT_DROPPED, name.ptr, name.len);
}

/* A group of a state transfer merged into the store. A family that conflicts with one live here is dropped and, with
 * kill, killed at its own stamp on every replica; without, the group is deferred when one is (on_group). */
static void merge_group(fy_cluster_t *c, const fy_grouprec_t *g, fy_str_t payload, int kill)
{
    fy_store_merge_group_t m;
    fy_grouprec_merge_view(g, &m);
    fy_change_result_t res;
    memset(&res, 0, sizeof(res));
    fy_store_merge_group(c->core->store, &m, dropped_cb, &res);
    if (!kill && dropped_any(&res)) {
        defer(c, DEFER_GROUP, 0, -1, 0, 0, payload);
        fy_change_result_free(&res);
        return;
    }
    size_t off = 0;
    unsigned kind;
    fy_str_t name;
    while (fy_effect_next(&res, &off, &kind, &name)) {
        int64_t st = 0;
        for (size_t i = 0; i < g->nstamps; i++)
            if (fy_str_eq(g->names[i], name))
                st = g->stamps[i];
        fy_change_t k = {.kind = FY_CHANGE_KILL,
                         .origin = FY_ORIGIN_CLUSTER,
                         .now_ns = st,
                         .labels = g->labels,
                         .nlabels = g->nlabels,
                         .family = name};
        fy_change_result_t kr;
        fy_core_apply(c->core, &k, &c->arena, &kr);
        fy_change_result_free(&kr);
        atomic_fetch_add(&c->killed, 1);
    }
    fy_change_result_free(&res);
}

static void on_group(fy_cluster_t *c, int li, fy_str_t payload)
{
    fy_grouprec_t g;
    char err[256];
    int rc = fy_grouprec_decode(payload.ptr, payload.len, &g, err, sizeof(err));
    if (rc != 0 || g.version != FY_GROUPREC_V3) {
        fy_grouprec_free(&g);
        refuse(c, li, "a group sent by a peer does not decode: %s", rc == -2 ? "out of memory" : err);
        return;
    }
    /* the transfer may yet remove what the group conflicts with: the kill waits for its end (settle_deferred) */
    merge_group(c, &g, payload, 0);
    fy_grouprec_free(&g);
    atomic_fetch_add(&c->groups_received, 1);
}

/* The conflicts held back (on_op, on_group), once each can be settled: no transfer to us is under way and, for a
 * change, every connected peer's frontier has passed its stamp (or now: the replica is about to be ready, so its
 * transfers from enough replicas to cover every write quorum are complete, and with them every acknowledged change
 * that removed stale state here). Each change or group is merged again (merging is idempotent and order-free,
 * tests/test_store_lww.c) and what still conflicts is killed as it would have been at once. What conflicted only with
 * state that a transfer or a peer's earlier change removed is merged instead: killing it would have dropped an
 * acknowledged push on every replica (tests/test_cluster_sim.c, test_stale_conflict and test_causal_conflict). */
static void settle_deferred(fy_cluster_t *c, int now)
{
    if (fy_wbuf_len(&c->deferred) == 0 || (!now && transfer_in_flight(c)))
        return;
    fy_wbuf_t q = c->deferred;
    memset(&c->deferred, 0, sizeof(c->deferred));
    size_t at = q.off, settled = 0;
    uint64_t killed0 = atomic_load(&c->killed);
    while (at + DEFER_HEADER <= q.n) {
        unsigned kind = q.p[at], type = q.p[at + 1];
        int node = (int)fy_get_le32(q.p + at + 2);
        uint64_t seq = fy_get_le64(q.p + at + 6);
        int64_t stamp = (int64_t)fy_get_le64(q.p + at + 14);
        uint32_t len = fy_get_le32(q.p + at + 22);
        assert(at + DEFER_HEADER + len <= q.n);
        fy_str_t bytes = {(const char *)q.p + at + DEFER_HEADER, len};
        if (!now && kind == DEFER_OP && !causally_settled(c, node, stamp)) {
            fy_wbuf_add(&c->deferred, q.p + at, DEFER_HEADER + len); /* not yet: kept, in order */
            at += DEFER_HEADER + len;
            continue;
        }
        at += DEFER_HEADER + len;
        settled++;
        if (kind == DEFER_GROUP) {
            fy_grouprec_t g;
            char err[256];
            if (fy_grouprec_decode(bytes.ptr, bytes.len, &g, err, sizeof(err)) == 0)
                merge_group(c, &g, bytes, 1);
            fy_grouprec_free(&g);
            continue;
        }
        fy_record_t dec;
        uint64_t wal_seq = 0;
        if (fy_record_decode(type, bytes.ptr, bytes.len, &dec) == 0) {
            dec.change.origin = FY_ORIGIN_PEER;
            dec.change.merge = 1;
            fy_change_result_t res;
            fy_core_apply(c->core, &dec.change, &c->arena, &res);
            if (res.not_persisted)
                fy_log_error("msg", "could not apply a peer's change durably after a state transfer", "err", res.msg);
            else
                apply_kills(c, dec.change.labels, dec.change.nlabels, dec.change.now_ns, &res);
            if (c->cfg.durable)
                wal_seq = res.seq;
            fy_change_result_free(&res);
        }
        fy_record_free(&dec);
        for (size_t k = 0; k < c->nholds; k++) /* its acknowledgement goes (durable: once the log has the merge) */
            if (c->holds[k].node == node && c->holds[k].seq == seq && c->holds[k].wal_seq == HOLD_DEFERRED)
                c->holds[k].wal_seq = wal_seq;
    }
    fy_wbuf_free(&q);
    if (settled > 0 && fy_log_enabled(FY_LOG_INFO)) {
        char n[2][32];
        snprintf(n[0], sizeof(n[0]), "%zu", settled);
        snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)(atomic_load(&c->killed) - killed0));
        fy_log_info("msg", "conflicts held back settled", "held", n[0], "killed", n[1]);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Handshakes */

/* Both handshakes: the peer's clock within the allowed offset, and its entry in the node table; -1 (refused) else. */
static int handshake_node(fy_cluster_t *c, int li, uint64_t id, int64_t hlc)
{
    if (observe_clock(c, hlc) != 0) {
        refuse(c, li, "peer clock %.3f s ahead of this replica's (--cluster.max-clock-offset)", (double)(hlc - c->now(c)) / 1e9);
        return -1;
    }
    int n = node_get(c, id);
    if (n < 0)
        refuse(c, li, "too many peer incarnations");
    return n;
}

static void on_hello(fy_cluster_t *c, int li, fy_str_t payload)
{
    fy_cl_link_t *l = L(c, li);
    fy_wrd_t r = fy_wrd(payload);
    uint32_t magic = fy_wrd_u32(&r);
    unsigned proto = fy_wrd_u16(&r), flags = fy_wrd_u16(&r);
    uint64_t id = fy_wrd_u64(&r);
    uint32_t slot = fy_wrd_u32(&r);
    int64_t hlc = (int64_t)fy_wrd_u64(&r);
    uint64_t fp = fy_wrd_u64(&r);
    fy_str_t label = fy_wrd_str(&r);
    if (r.bad || magic != FY_WIRE_MAGIC) {
        refuse(c, li, "not a Ferry peer (bad handshake)");
        return;
    }
    if (proto != FY_WIRE_PROTOCOL) {
        refuse(c, li, "peer protocol version %u, this replica speaks %u", proto, FY_WIRE_PROTOCOL);
        return;
    }
    if (!fy_str_eq(label, fy_str(c->cfg.label, strlen(c->cfg.label)))) {
        refuse(c, li, "cluster label \"%.*s\" differs from this replica's \"%s\" (--cluster.label)", (int)label.len, label.ptr,
               c->cfg.label);
        return;
    }
    if (fp != c->cfg.fingerprint) {
        refuse(c, li,
               "settings differ from this replica's (--push.default-ttl and --push.default-interval must match: "
               "replicas would expire groups at different times)");
        return;
    }
    int n = handshake_node(c, li, id, hlc);
    if (n < 0)
        return;
    fy_cl_node_t *nd = &c->nodes[n];
    if (nd->in_link >= 0 && nd->in_link != li)
        close_link(c, nd->in_link, "replaced");
    nd->in_link = li;
    nd->slot = slot;
    nd->empty = (flags & FY_WIRE_EMPTY) != 0;
    nd->ready = (flags & FY_WIRE_READY) != 0;
    slot_check(c, id, slot, nd->ready);
    if (nd->ready)
        drop_if_stale(c, -1);
    nd->last_heard = c->now(c);
    nd->offset = hlc - c->now(c);
    l->node = n;
    l->open = 1;
    l->ack_sent = acks_true(c, n) ? nd->held : 0; /* WELCOME's applied counts as an acknowledgement */
    size_t at = fy_frame_begin(&l->out, FY_MSG_WELCOME);
    fy_frame_u16(&l->out, my_flags(c));
    fy_frame_u64(&l->out, c->id);
    fy_frame_u32(&l->out, atomic_load(&c->slot));
    fy_frame_u64(&l->out, (uint64_t)fy_cluster_stamp_peek(c));
    fy_frame_u64(&l->out, l->ack_sent);
    fy_frame_end(&l->out, at);
}

/* Two replicas with the same clock slot could give two changes the same stamp. The one that moves is the one not
 * ready yet (it has stamped nothing), or of two not ready, the one with the larger id; it takes the lowest slot no
 * replica it is linked to uses. Slots travel only in handshakes and matter only here: no link is reset. */
static void slot_check(fy_cluster_t *c, uint64_t id, uint32_t slot, int peer_ready)
{
    if (id == c->id || slot != atomic_load(&c->slot))
        return;
    int me_ready = atomic_load(&c->ready);
    if (me_ready && peer_ready) {
        fy_log_error("msg", "two ready replicas use the same clock slot; restart one of them (it will take another)");
        return;
    }
    if (me_ready || (!peer_ready && c->id < id))
        return; /* the other one moves */
    unsigned used = 0;
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].in_link >= 0 || c->nodes[i].out_link >= 0 || c->nodes[i].id == id)
            used |= 1u << (c->nodes[i].slot & 15);
    for (unsigned s = 0; s < 16; s++)
        if (!(used & (1u << s))) {
            char n[2][8];
            snprintf(n[0], sizeof(n[0]), "%u", slot);
            snprintf(n[1], sizeof(n[1]), "%u", s);
            fy_log_info("msg", "cluster: took another clock slot (a peer had this one)", "was", n[0], "now", n[1]);
            atomic_store(&c->slot, s);
            break;
        }
}

static void lost_node(fy_cluster_t *c, int n);

/* A replica's link to us is gone. Its last changes may still be on their way to the other replicas (in their socket
 * buffers): the state transfer that recovers what only they got is asked for a second later (lost_node). */
static void lose_later(fy_cluster_t *c, int n)
{
    if (c->nodes[n].lost_at == 0)
        c->nodes[n].lost_at = c->now(c);
}
static void publish(fy_cluster_t *c, int64_t now);
static int discard_isolated(fy_cluster_t *c);

/* A replica not ready yet whose state may hold groups the cluster deleted and has forgotten (persisted state older
 * than the retention at start, or a stay on the minority side longer than it) drops that state as soon as it hears
 * of a ready peer, in either direction of a link: before it answers that peer's state request, which comes after
 * the handshake on the same link (a ready peer that had not caught up from us asks at once, and would take the stale
 * groups back). Then it asks every peer for everything again; except: an address whose handshake asks below. */
static void drop_if_stale(fy_cluster_t *c, int except)
{
    if (atomic_load(&c->ready))
        return; /* a ready replica holds the cluster's state, whatever its age (check_ready) */
    int dropped = 0;
    if (!c->stale_checked) {
        c->stale_checked = 1;
        dropped = fy_cl_discard_stale(c);
    } else if (c->isolated_at != 0) {
        dropped = discard_isolated(c);
    }
    c->stale_drops += (uint64_t)dropped;
    for (size_t i = 0; dropped && i < c->naddrs; i++) {
        c->addrs[i].caught_up = 0; /* what it sent was merged into the dropped state: again, everything */
        c->addrs[i].catch_since = 0;
        if ((int)i != except && c->addrs[i].link >= 0 && L(c, c->addrs[i].link)->open)
            send_req(c, (int)i, 0);
    }
}

static void on_welcome(fy_cluster_t *c, int li, fy_str_t payload)
{
    fy_cl_link_t *l = L(c, li);
    fy_cl_addr_t *a = &c->addrs[l->addr];
    fy_wrd_t r = fy_wrd(payload);
    unsigned flags = fy_wrd_u16(&r);
    uint64_t id = fy_wrd_u64(&r);
    uint32_t slot = fy_wrd_u32(&r);
    int64_t hlc = (int64_t)fy_wrd_u64(&r);
    uint64_t applied = fy_wrd_u64(&r);
    if (r.bad) {
        refuse(c, li, "malformed handshake answer");
        return;
    }
    if (id == c->id) {
        /* this address is this replica */
        if (!a->self)
            fy_log_info("msg", "a --cluster.peer address is this replica", "peer", a->text);
        a->self = 1;
        close_link(c, li, "self");
        return;
    }
    int n = handshake_node(c, li, id, hlc);
    if (n < 0)
        return;
    if (a->node >= 0 && a->node != n && c->nodes[a->node].id != id) {
        /* the replica behind this address restarted: what it held only it may have lost; the others have it */
        lose_later(c, a->node);
    }
    fy_cl_node_t *nd = &c->nodes[n];
    nd->out_link = li;
    nd->addr = l->addr;
    nd->slot = slot;
    nd->empty = (flags & FY_WIRE_EMPTY) != 0;
    nd->ready = (flags & FY_WIRE_READY) != 0;
    nd->last_heard = c->now(c);
    nd->offset = hlc - c->now(c);
    if (applied > nd->acked)
        nd->acked = applied;
    a->node = n;
    a->refused[0] = '\0';
    l->node = n;
    l->open = 1;
    l->send_next = applied + 1;
    l->fresh = applied == 0;
    l->opened_at = c->now(c);
    count_reachable(c);
    fy_log_info("msg", "connected to a peer", "peer", a->text);
    slot_check(c, id, slot, nd->ready);
    if (nd->ready && l->used && !l->closing)
        drop_if_stale(c, l->addr); /* this link's request follows */
    if (!a->caught_up && l->used && !l->closing) {
        send_req(c, l->addr, a->catch_since);
        if (a->catch_since == 0)
            atomic_fetch_add(&c->resync_full, 1);
        a->want_since = -1;
    } else if (a->want_since >= 0 && l->used && !l->closing) {
        int64_t since = a->want_since;
        a->want_since = -1;
        send_req(c, l->addr, since);
    }
    fy_cl_flush(c);
}

/* A replica incarnation is gone (its link to us closed and stayed closed, or it restarted): a change it took that
 * reached another replica but not us comes from that replica, by a state transfer since the last of its changes
 * we saw (ha-design 8.3, step 5).
 * Not "once": a replica whose link to us went silent may live on and take changes that reach the others only, and
 * be lost again later; each loss asks again, since the watermark (0, nothing seen from it: everything). A peer
 * whose answer does not come (the link drops before the END) is marked not caught up, so that the next handshake
 * asks it again (tests/test_cluster_sim.c, seed 291). */
static void lost_node(fy_cluster_t *c, int n)
{
    fy_cl_node_t *nd = &c->nodes[n];
    /* a margin: a kill carries the stamp of the instance it drops, a little older than the change that caused it */
    int64_t since = nd->watermark ? nd->watermark - 2 * c->cfg.ack_timeout_ns : 0;
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        if (a->self || (a->node >= 0 && c->nodes[a->node].id == nd->id))
            continue;
        a->caught_up = 0; /* its answer may never come (the link drops before the END): the next handshake asks */
        send_req(c, (int)i, since);
        atomic_fetch_add(&c->resync_lost_peer, 1);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Input */

void fy_cl_input(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = L(c, li);
    unsigned type;
    fy_str_t payload;
    int rc;
    int64_t until = c->now(c) + 20 * (int64_t)1000000;
    unsigned nframes = 0;
    l->more_input = 0;
    while (l->used && !l->closing && (rc = fy_frame_next(&l->in, &type, &payload)) != 0) {
        /* a big state transfer is applied 20 ms at a time: the loop's heartbeats and acknowledgements go on */
        if ((++nframes & 63) == 0 && c->now(c) >= until) {
            l->in.off -= 8 + 1 + payload.len; /* this frame is taken again next time */
            l->more_input = 1;
            break;
        }
        if (rc < 0) {
            refuse(c, li, "damaged frame from a peer (checksum or length)");
            break;
        }
        l->last_rx = c->now(c);
        if (l->node >= 0)
            c->nodes[l->node].last_heard = l->last_rx;
        if (type == FY_MSG_REFUSE) {
            fy_wrd_t r = fy_wrd(payload);
            fy_str_t why = fy_wrd_str(&r);
            if (l->outbound) {
                fy_cl_addr_t *a = &c->addrs[l->addr];
                int64_t now = c->now(c);
                char was[sizeof(a->refused)];
                snprintf(was, sizeof(was), "%s", a->refused);
                snprintf(a->refused, sizeof(a->refused), "%.*s", (int)why.len, why.ptr);
                if (strcmp(was, a->refused) != 0 || now - a->logged_at >= 60 * (int64_t)1000000000) {
                    a->logged_at = now;
                    fy_log_error("msg", "a peer refused this replica; retrying every 5 s", "peer", a->text, "reason", a->refused);
                }
                a->refused_until = now + 5 * (int64_t)1000000000;
            }
            close_link(c, li, "refused");
            break;
        }
        if (!l->open) {
            if (!l->outbound && type == FY_MSG_HELLO)
                on_hello(c, li, payload);
            else if (l->outbound && type == FY_MSG_WELCOME)
                on_welcome(c, li, payload);
            else
                refuse(c, li, "unexpected message %u before the handshake", type);
            continue;
        }
        switch (type) {
        case FY_MSG_OP:
            if (l->outbound)
                goto Unexpected;
            on_op(c, li, payload);
            break;
        case FY_MSG_ACK: {
            if (!l->outbound)
                goto Unexpected;
            fy_wrd_t r = fy_wrd(payload);
            uint64_t s = fy_wrd_u64(&r);
            if (s > c->nodes[l->node].acked)
                c->nodes[l->node].acked = s;
            break;
        }
        case FY_MSG_HB: {
            fy_wrd_t r = fy_wrd(payload);
            int64_t hlc = (int64_t)fy_wrd_u64(&r), frontier = (int64_t)fy_wrd_u64(&r);
            fy_cl_node_t *nd = &c->nodes[l->node];
            nd->offset = hlc - c->now(c);
            if (observe_clock(c, hlc) != 0) {
                refuse(c, li, "peer clock %.3f s ahead of this replica's (--cluster.max-clock-offset)",
                       (double)(hlc - c->now(c)) / 1e9);
                break;
            }
            if (!l->outbound && frontier > nd->watermark)
                nd->watermark = frontier;
            /* readiness after the handshake: a peer that was not ready then and is now (it caught up from others) is the
             * sign drop_if_stale waits for, as at a handshake (a peer from before the flags sends none) */
            unsigned flags = fy_wrd_u16(&r);
            if (!r.bad) {
                int was = nd->ready;
                nd->ready = (flags & FY_WIRE_READY) != 0;
                if (nd->ready && !was)
                    drop_if_stale(c, -1);
            }
            break;
        }
        case FY_MSG_REQ:
            if (l->outbound)
                goto Unexpected;
            on_req(c, li, payload);
            break;
        case FY_MSG_GROUP:
            if (!l->outbound)
                goto Unexpected;
            on_group(c, li, payload);
            break;
        case FY_MSG_END: {
            if (!l->outbound)
                goto Unexpected;
            fy_wrd_t r = fy_wrd(payload);
            uint64_t id = fy_wrd_u64(&r), ngroups = fy_wrd_u64(&r);
            int64_t wipe = (int64_t)fy_wrd_u64(&r);
            if (wipe > 0 && wipe > fy_store_wipe_stamp(c->core->store))
                fy_store_wipe(c->core->store, wipe);
            fy_cl_addr_t *a = &c->addrs[l->addr];
            if (id == a->req_id && !a->caught_up) {
                a->caught_up = 1;
                char n[32];
                snprintf(n, sizeof(n), "%llu", (unsigned long long)ngroups);
                fy_log_info("msg", "state transfer from a peer complete", "peer", a->text, "groups", n);
            }
            break;
        }
        case FY_MSG_GAP: {
            if (l->outbound)
                goto Unexpected;
            fy_wrd_t r = fy_wrd(payload);
            uint64_t first = fy_wrd_u64(&r);
            fy_cl_node_t *nd = &c->nodes[l->node];
            /* its changes before first are gone from its backlog: they come by state transfer instead. Our link to it
             * may be down (or drop before the END): the address is marked not caught up, so that the next handshake
             * asks for the transfer again; without that, applied jumped over changes that never came
             * (tests/test_cluster_sim.c, seed 54). */
            if (nd->addr >= 0) {
                c->addrs[nd->addr].caught_up = 0;
                send_req(c, nd->addr, nd->watermark);
            }
            atomic_fetch_add(&c->resync_delta, 1);
            if (first > 0 && first - 1 > nd->applied)
                nd->applied = nd->held = first - 1;
            break;
        }
        default:
        Unexpected:
            refuse(c, li, "unexpected message %u from a peer", type);
            break;
        }
    }
    fy_wbuf_compact(&l->in);
    settle_deferred(c, 0);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Links */

int fy_cl_link_new(fy_cluster_t *c, int fd, int outbound, int addr)
{
    for (int i = 0; i < FY_CL_MAX_LINKS; i++) {
        fy_cl_link_t *l = L(c, i);
        if (l->used)
            continue;
        memset(l, 0, sizeof(*l));
        l->used = 1;
        l->fd = fd;
        l->outbound = outbound;
        l->addr = addr;
        l->node = -1;
        l->last_rx = l->last_tx = c->now(c);
        if (outbound)
            c->addrs[addr].link = i;
        return i;
    }
    return -1;
}

void fy_cl_link_opened(fy_cluster_t *c, int li)
{
    fy_cl_link_t *l = L(c, li);
    l->last_rx = c->now(c);
    send_hello(c, l);
}

void fy_cl_dial_failed(fy_cluster_t *c, int addr, const char *why)
{
    fy_cl_addr_t *a = &c->addrs[addr];
    int64_t now = c->now(c);
    a->next_dial = now + c->cfg.reconnect_ns;
    if (now - a->logged_at > 60 * (int64_t)1000000000) {
        a->logged_at = now;
        fy_log_warn("msg", "cannot reach a peer; retrying", "peer", a->text, "err", why);
    }
}

void fy_cl_link_closed(fy_cluster_t *c, int li, const char *why)
{
    fy_cl_link_t *l = L(c, li);
    if (!l->used)
        return;
    if (l->outbound) {
        fy_cl_addr_t *a = &c->addrs[l->addr];
        a->link = -1;
        a->next_dial = c->now(c) + c->cfg.reconnect_ns;
        if (a->refused_until > a->next_dial)
            a->next_dial = a->refused_until;
        if (l->open && !a->self)
            fy_log_warn("msg", "lost the link to a peer", "peer", a->text, "err", why ? why : "closed");
    }
    if (l->node >= 0) {
        fy_cl_node_t *nd = &c->nodes[l->node];
        if (nd->out_link == li)
            nd->out_link = -1;
        if (nd->in_link == li) {
            nd->in_link = -1;
            lose_later(c, l->node);
        }
    }
    fy_wbuf_free(&l->in);
    fy_wbuf_free(&l->out);
    memset(l, 0, sizeof(*l));
    count_reachable(c);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Timers: heartbeats, silence, redials, the release of tickets, readiness, tombstones */

static int cmp_desc(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

static void release(fy_cluster_t *c, int64_t now)
{
    /* the quorum mark: the (W-1)th largest acknowledgement among the other replicas */
    uint64_t acks[FY_CL_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < c->nnodes; i++)
        acks[n++] = c->nodes[i].acked;
    qsort(acks, n, sizeof(acks[0]), cmp_desc);
    pthread_mutex_lock(&c->mu);
    uint64_t qmark = c->quorum <= 1 ? c->seq : (n >= c->quorum - 1 ? acks[c->quorum - 2] : 0);
    uint64_t mark = qmark, durable = atomic_load(&c->wal_durable), late = c->late;
    /* durable mode: our own log must have it too */
    for (size_t i = 0; i < c->bl_n && c->cfg.durable; i++) {
        fy_cl_entry_t *e = &c->backlog[(c->bl_head + i) % c->bl_cap];
        if (e->seq > mark)
            break;
        if (e->wal_seq > durable) {
            mark = e->seq - 1;
            break;
        }
    }
    if (mark < c->released)
        mark = c->released;
    /* changes not held by the quorum in time fail (503, indeterminate) */
    for (size_t i = 0; i < c->bl_n; i++) {
        fy_cl_entry_t *e = &c->backlog[(c->bl_head + i) % c->bl_cap];
        if (e->seq <= mark || e->seq <= late)
            continue;
        if (now - e->at < c->cfg.ack_timeout_ns)
            break;
        late = e->seq;
    }
    uint64_t newly_late = late > c->late ? late - (c->late > mark ? c->late : mark) : 0;
    int rel = mark > c->released, lt = late > c->late;
    c->released = mark;
    c->late = late;
    /* trim: what every peer holds, or what was decided and is over the size limit */
    uint64_t minacked = UINT64_MAX;
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].out_link >= 0 && c->nodes[i].acked < minacked)
            minacked = c->nodes[i].acked;
    uint64_t decided = mark > late ? mark : late;
    while (c->bl_n) {
        fy_cl_entry_t *e = &c->backlog[c->bl_head];
        int all_have = minacked != UINT64_MAX && e->seq <= minacked && e->seq <= decided;
        int over = c->bl_bytes > c->cfg.backlog_bytes && e->seq <= decided;
        if (!all_have && !over)
            break;
        backlog_pop(c);
    }
    pthread_mutex_unlock(&c->mu);
    if (rel && c->cfg.release)
        c->cfg.release(c->cfg.ctx, mark);
    if (lt)
        report_late(c, late, newly_late);
}

/* A ready replica that has reached fewer replicas than the write quorum for half a second (its links closed after
 * --cluster.peer-timeout of silence, or were refused) is on the minority
 * side of a partition (or alone): it stops serving (/-/ready and store endpoints 503, so that a load balancer sends
 * scrapes elsewhere rather than to stale data) until it is back in touch and has caught up on what it missed: a
 * state transfer from each peer since the last of its changes it saw. */
static void check_isolated(fy_cluster_t *c, unsigned reachable)
{
    int64_t now = c->now(c);
    if (reachable + 1 >= c->quorum || c->replicas == 1) {
        c->minority_since = 0;
        return;
    }
    if (c->minority_since == 0)
        c->minority_since = now;
    if (now - c->minority_since < 500 * (int64_t)1000000)
        return;
    /* the last contact with a quorum: before the links closed on --cluster.peer-timeout of silence */
    c->isolated_at = c->minority_since - c->cfg.peer_timeout_ns;
    c->minority_since = 0;
    atomic_store(&c->ready, 0);
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        a->caught_up = 0;
        a->catch_since = a->node >= 0 ? c->nodes[a->node].watermark - 2 * c->cfg.ack_timeout_ns : 0;
        if (a->catch_since < 0)
            a->catch_since = 0;
    }
    c->not_ready = FY_CLUSTER_ISOLATED;
    fy_log_warn("msg", "cluster: fewer replicas reachable than the write quorum; not ready until back in touch and caught up");
    if (c->cfg.ready)
        c->cfg.ready(c->cfg.ctx, -1);
}

static void check_ready(fy_cluster_t *c)
{
    if (atomic_load(&c->ready)) {
        check_isolated(c, (unsigned)atomic_load(&c->reachable));
        return;
    }
    if (!__atomic_load_n(&c->loaded, __ATOMIC_ACQUIRE)) {
        c->not_ready = "loading persisted metrics";
        return;
    }
    unsigned reachable = (unsigned)atomic_load(&c->reachable), caught = 0, others_empty = 1, others = 0;
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        if (a->self || a->link < 0 || !L(c, a->link)->open || a->node < 0)
            continue;
        others++;
        if (a->caught_up)
            caught++;
        if (!c->nodes[a->node].empty)
            others_empty = 0;
    }
    unsigned need = c->replicas - c->quorum + (__atomic_load_n(&c->durable_state, __ATOMIC_ACQUIRE) ? 0 : 1);
    if (need > c->replicas - 1)
        need = c->replicas - 1; /* --cluster.write-quorum=1: every peer, not more */
    int ok = 0;
    if (reachable + 1 >= c->quorum && others > 0 && others_empty && (my_flags(c) & FY_WIRE_EMPTY))
        ok = 1; /* a new cluster: nobody holds anything yet */
    else if (caught >= need && reachable + 1 >= c->quorum)
        ok = 1;
    else if (c->replicas == 1)
        ok = 1;
    int64_t now = c->now(c);
    if (reachable + 1 < c->quorum)
        c->quorum_since = 0;
    else if (c->quorum_since == 0)
        c->quorum_since = now;
    if (!ok) {
        c->not_ready = reachable + 1 < c->quorum ? "not enough replicas reachable for a write quorum"
                                                 : "catching up from peers (state transfer from enough replicas to cover every "
                                                   "write quorum)";
        return;
    }
    /* A replica whose state drop_if_stale may yet drop does not become ready on its own while a ready peer may still
     * show itself (in a handshake or a heartbeat): ready, it would keep that state, and hand it on. It waits
     * --cluster.peer-timeout from having a write quorum reachable; a cluster with no ready replica at all (a long
     * outage) then goes on with the state it has (docs/ha.md). */
    if (may_drop(c, now) && c->quorum_since != 0 && now - c->quorum_since < c->cfg.peer_timeout_ns) {
        c->not_ready = "waiting to hear from a ready peer (the local state is older than --cluster.tombstone-retention)";
        return;
    }
    settle_deferred(c, 1); /* a change held back by a conflict is visible before the replica is */
    c->isolated_at = 0;
    c->quorum_since = 0;
    c->refilling = 0;
    /* the start-time age check is for a replica that has not caught up yet: a ready one holds the cluster's state
     * (one that never met a ready peer before, in a cluster started together, would otherwise drop everything at its
     * first reconnection after an hour without pushes, while serving) */
    c->stale_checked = 1;
    c->not_ready = NULL;
    atomic_store(&c->ready, 1);
    char n[3][16];
    snprintf(n[0], sizeof(n[0]), "%u", caught);
    snprintf(n[1], sizeof(n[1]), "%u", reachable);
    snprintf(n[2], sizeof(n[2]), "%u", atomic_load(&c->slot));
    fy_log_info("msg", "cluster: caught up, ready", "state_transfers", n[0], "peers_reachable", n[1], "slot", n[2]);
    if (c->cfg.ready)
        c->cfg.ready(c->cfg.ctx, 1);
}

int64_t fy_cl_wait_ns(fy_cluster_t *c)
{
    int64_t wait = 20 * (int64_t)1000000, now = c->now(c);
    pthread_mutex_lock(&c->mu);
    uint64_t seq = c->seq;
    pthread_mutex_unlock(&c->mu);
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = L(c, li);
        if (!l->used || l->closing)
            continue;
        if (l->more_input || (l->xfer && !l->xfer_held && fy_wbuf_len(&l->out) < XFER_BUFFERED))
            return 0;
        if (!l->outbound || !l->open || l->send_next > seq || fy_wbuf_len(&l->out) >= LINK_OUT_MAX)
            continue;
        /* changes not sent to this link: held for its ACK, until the hold ends */
        if (link_busy(c, l, now)) {
            if (l->batch_at + FLUSH_HOLD_NS - now < wait)
                wait = l->batch_at + FLUSH_HOLD_NS - now;
        } else if (!link_awaits_request(c, l, now)) {
            return 0; /* committed after the last flush, by a thread that saw send_busy before it was cleared */
        }
    }
    return wait;
}

/* Whether a change committed now can skip waking this thread: only with a quorum of others to wait for, and every
 * open outbound link waiting for an ACK (whose arrival flushes). */
static void publish_send_busy(fy_cluster_t *c, int64_t now)
{
    int busy = c->quorum >= 2, open = 0;
    for (int li = 0; li < FY_CL_MAX_LINKS && busy; li++) {
        fy_cl_link_t *l = L(c, li);
        if (!l->used || l->closing || !l->outbound || !l->open)
            continue;
        open++;
        if (!link_busy(c, l, now))
            busy = 0;
    }
    atomic_store(&c->send_busy, busy && open > 0);
}

void fy_cl_tick(fy_cluster_t *c)
{
    int64_t now = c->now(c);
    settle_holds(c);
    /* silence: a peer that said nothing for peer-timeout is gone */
    for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
        fy_cl_link_t *l = L(c, li);
        if (l->used && !l->closing && now - l->last_rx > c->cfg.peer_timeout_ns)
            close_link(c, li, "peer silent for --cluster.peer-timeout");
    }
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].lost_at != 0 && now - c->nodes[i].lost_at >= (int64_t)1000000000) {
            c->nodes[i].lost_at = 0;
            lost_node(c, (int)i);
        }
    /* heartbeats */
    if (now >= c->next_hb) {
        c->next_hb = now + c->cfg.heartbeat_ns;
        int64_t hlc = fy_cluster_stamp_peek(c);
        /* The frontier: every change of ours stamped at or below it is in the link before this heartbeat. A link
         * that has every committed change can say more than its last change's stamp: under the order lock no change
         * is between its stamp and its commit, and every later one is stamped above both clocks read here. A
         * frontier that moves with the clocks, not only with our own changes, is what lets a peer settle a conflict
         * (causally_settled) while we push nothing. */
        pthread_mutex_lock(&c->core->order);
        int64_t flushed = atomic_load(&c->hlc_last), remote = atomic_load(&c->hlc_remote);
        pthread_mutex_lock(&c->mu);
        uint64_t seq = c->seq;
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->core->order);
        if (remote > flushed)
            flushed = remote;
        for (int li = 0; li < FY_CL_MAX_LINKS; li++) {
            fy_cl_link_t *l = L(c, li);
            if (!l->used || !l->open || l->closing)
                continue;
            int64_t frontier = 0;
            if (l->outbound)
                frontier = l->send_next > seq && flushed > l->sent_stamp ? flushed : l->sent_stamp;
            size_t at = fy_frame_begin(&l->out, FY_MSG_HB);
            fy_frame_u64(&l->out, (uint64_t)hlc);
            fy_frame_u64(&l->out, (uint64_t)frontier);
            fy_frame_u16(&l->out, my_flags(c));
            fy_frame_end(&l->out, at);
        }
    }
    /* redials */
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        if (!a->self && a->link < 0 && now >= a->next_dial) {
            a->next_dial = now + c->cfg.reconnect_ns;
            c->dial(c, (int)i);
        }
    }
    /* No fixed commit delay (ha-design 8.2 proposes up to 1 ms): measured on loopback with 32 connections, 0.2 ms of
     * delay cost 20% of the acknowledged pushes/s and saved no CPU per push. Batches come from the ACK clock instead
     * (fy_cl_flush). */
    fy_cl_flush(c);
    publish_send_busy(c, now);
    pump_transfers(c);
    settle_deferred(c, 0);
    release(c, now);
    check_ready(c);
    if (now >= c->next_publish) { /* for status pages and scrapes: ten times a second is plenty */
        c->next_publish = now + 100 * (int64_t)1000000;
        pthread_mutex_lock(&c->mu);
        publish(c, now);
        pthread_mutex_unlock(&c->mu);
    }
    if (now >= c->next_gc) {
        c->next_gc = now + 10 * (int64_t)1000000000;
        fy_store_gc_tombstones(c->core->store, now - c->cfg.retention_ns);
    }
}

/* ------------------------------------------------------------------------------------------------------------- */

/* A replica whose newest change is older than --cluster.tombstone-retention drops its state when it first reaches a
 * ready peer: the peers have forgotten the deletes it missed (their tombstones are gone), so its old groups would come
 * back; it takes the peers' state instead. Only with a write quorum of 2 or more (every acknowledged change is held
 * elsewhere) and a ready peer to take it from (a whole cluster restarting after a long outage keeps its state). */
typedef struct {
    int64_t newest;
    uint64_t n;
} newest_t;

static int newest_cb(void *ctx, const fy_store_group_view_t *g)
{
    newest_t *N = ctx;
    if (g->max_stamp_ns > N->newest)
        N->newest = g->max_stamp_ns;
    N->n++;
    return 0;
}

/* The two ages drop_if_stale judges: the local state's newest stamp (N: filled; a scan of the store), and the last
 * contact with a write quorum of a replica on the minority side. */
static int state_too_old(fy_cluster_t *c, int64_t now, newest_t *N)
{
    fy_store_foreach_changed_since(c->core->store, 0, newest_cb, N);
    return N->n != 0 && N->newest < now - c->cfg.retention_ns;
}

static int cut_off_too_long(const fy_cluster_t *c, int64_t now)
{
    return c->isolated_at != 0 && now - c->isolated_at > c->cfg.retention_ns;
}

/* Whether drop_if_stale may yet drop this replica's state, at its first sign of a ready peer: not ready, a write
 * quorum of 2 or more, and cut off for too long, or (not judged yet) loaded with state that was too old (judged once,
 * when loading ended: the state only gets younger after that, so the answer errs on the side of waiting). */
static int may_drop(fy_cluster_t *c, int64_t now)
{
    if (atomic_load(&c->ready) || c->quorum < 2)
        return 0;
    if (c->stale_checked)
        return cut_off_too_long(c, now);
    if (c->loaded_old < 0) {
        if (!__atomic_load_n(&c->loaded, __ATOMIC_ACQUIRE))
            return 1; /* not judged before the state is all there */
        newest_t N = {0, 0};
        c->loaded_old = state_too_old(c, now, &N);
    }
    return c->loaded_old;
}

/* Drops every group and leaves no tombstone: nothing of it is handed on, and the peers' state replaces it. Through the
 * change path, so that the log records it (a replay after a crash must not bring the groups back); it is never
 * shipped. */
uint64_t fy_cluster_drop_local(fy_cluster_t *c)
{
    newest_t N = {0, 0};
    fy_store_foreach_changed_since(c->core->store, 0, newest_cb, &N);
    fy_change_t d = {.kind = FY_CHANGE_DROP, .origin = FY_ORIGIN_CLUSTER, .now_ns = N.newest + 1}; /* after all it holds */
    fy_change_result_t res;
    fy_core_apply(c->core, &d, &c->arena, &res);
    if (res.not_persisted)
        fy_log_error("msg",
                     "the drop of stale state could not be logged; a restart before the next snapshot replays that "
                     "state",
                     "err", res.msg);
    uint64_t n = res.deleted;
    fy_change_result_free(&res);
    return n;
}

static void log_dropped(const char *msg, int64_t age_ns, uint64_t groups)
{
    char age[32], n[32];
    snprintf(age, sizeof(age), "%.0f", (double)age_ns / 1e9);
    snprintf(n, sizeof(n), "%llu", (unsigned long long)groups);
    fy_log_warn("msg", msg, "age_seconds", age, "groups", n);
}

int fy_cl_discard_stale(fy_cluster_t *c)
{
    newest_t N = {0, 0};
    int64_t now = c->now(c);
    if (c->quorum < 2 || !state_too_old(c, now, &N))
        return 0;
    log_dropped("cluster: the persisted state is older than --cluster.tombstone-retention; it is dropped and this "
                "replica takes its peers' state instead",
                now - N.newest, fy_cluster_drop_local(c));
    return 1;
}

/* The same for a replica that stayed running on the minority side of a partition for longer than the retention: the
 * majority went on deleting, and has forgotten those deletes by the time the partition heals, so the groups this
 * replica still holds would come back (through its state transfers to a replica that restarts later, or any change
 * of them). Its first handshake with a ready peer drops them; on the minority side it took no change (no quorum), so
 * every acknowledged one it holds is held by the majority too. */
static int discard_isolated(fy_cluster_t *c)
{
    int64_t now = c->now(c);
    if (c->quorum < 2 || !cut_off_too_long(c, now))
        return 0;
    int64_t away = now - c->isolated_at;
    c->isolated_at = 0;
    /* Our own changes go with the rest, backlog included. Those acknowledged are held by the majority; the others
     * (taken just before the cut, answered 503 after --cluster.ack-timeout, or still waiting if the retention is that
     * short) must not reach the peers now, after the deletes they forgot: they stay indeterminate, and fail now. A peer
     * that lacks some of ours is told of the gap and asks for a state transfer, answered once this replica has caught
     * up again (refilling, on_req). */
    pthread_mutex_lock(&c->mu);
    uint64_t late = c->seq, from = c->late > c->released ? c->late : c->released;
    c->late = late;
    while (c->bl_n)
        backlog_pop(c);
    pthread_mutex_unlock(&c->mu);
    if (late > from)
        report_late(c, late, late - from);
    c->refilling = 1;
    log_dropped("cluster: cut off from a write quorum for longer than --cluster.tombstone-retention; the local state is "
                "dropped and this replica takes its peers' state instead",
                away, fy_cluster_drop_local(c));
    return 1;
}

void fy_cl_clock_from_store(fy_cluster_t *c)
{
    /* a restarted replica never stamps below what it already holds, whatever its wall clock says */
    newest_t N = {0, 0};
    fy_store_foreach_changed_since(c->core->store, 0, newest_cb, &N);
    int64_t cur = atomic_load(&c->hlc_last);
    if (N.newest > cur)
        atomic_store(&c->hlc_last, N.newest);
}

void fy_cl_init(fy_cluster_t *c)
{
    for (size_t i = 0; i < c->naddrs; i++) {
        c->addrs[i].link = -1;
        c->addrs[i].node = -1;
        c->addrs[i].want_since = -1;
    }
    c->started = c->now(c);
    c->loaded_old = -1;
    c->not_ready = c->pub_not_ready = "loading persisted metrics";
}

int fy_cluster_is_ready(fy_cluster_t *c, const char **why)
{
    int r = atomic_load(&c->ready);
    if (why) {
        pthread_mutex_lock(&c->mu);
        *why = r ? NULL : c->pub_not_ready;
        pthread_mutex_unlock(&c->mu);
    }
    return r;
}

/* With mu held, on the network thread: the peers' state for the status page and self-metrics. */
static void publish(fy_cluster_t *c, int64_t now)
{
    size_t k = 0;
    uint64_t first = c->bl_n ? c->backlog[c->bl_head].seq : c->seq + 1;
    for (size_t i = 0; i < c->naddrs; i++) {
        fy_cl_addr_t *a = &c->addrs[i];
        if (a->self)
            continue;
        fy_cluster_peer_status_t *p = &c->pub_peers[k++];
        memset(p, 0, sizeof(*p));
        /* cut to the status fields' sizes (an address or a refusal longer than those is shown shortened) */
        snprintf(p->addr, sizeof(p->addr), "%.127s", a->text);
        p->connected = a->link >= 0 && c->links[a->link].open;
        snprintf(p->refused, sizeof(p->refused), "%.159s", a->refused);
        if (a->node < 0)
            continue;
        fy_cl_node_t *nd = &c->nodes[a->node];
        p->node = nd->id;
        p->acked = nd->acked;
        p->applied = nd->applied;
        p->inbound = nd->in_link >= 0;
        p->clock_offset_seconds = (double)nd->offset / 1e9;
        p->caught_up = a->caught_up;
        if (nd->acked < c->seq && nd->acked + 1 >= first) {
            /* the oldest of our changes it has not acknowledged: how long it has waited */
            fy_cl_entry_t *e = &c->backlog[(c->bl_head + (nd->acked + 1 - first)) % c->bl_cap];
            p->lag_seconds = (double)(now - e->at) / 1e9;
        } else if (nd->acked < c->seq) {
            p->lag_seconds = (double)(now - c->started) / 1e9;
        }
    }
    c->pub_npeers = k;
    c->pub_not_ready = c->not_ready;
}

void fy_cluster_status(fy_cluster_t *c, fy_cluster_status_t *o)
{
    memset(o, 0, sizeof(*o));
    o->node = c->id;
    o->slot = atomic_load(&c->slot);
    o->replicas = c->replicas;
    o->quorum = c->quorum;
    o->ready = atomic_load(&c->ready);
    o->sent = atomic_load(&c->sent);
    o->applied = atomic_load(&c->applied);
    o->quorum_failures = atomic_load(&c->quorum_failures);
    o->refused_no_quorum = atomic_load(&c->refused_no_quorum);
    o->killed = atomic_load(&c->killed);
    o->gaps = atomic_load(&c->gaps);
    o->resync_delta = atomic_load(&c->resync_delta);
    o->resync_full = atomic_load(&c->resync_full);
    o->resync_lost_peer = atomic_load(&c->resync_lost_peer);
    o->groups_received = atomic_load(&c->groups_received);
    fy_store_stats_t st;
    fy_store_stats(c->core->store, &st);
    o->tombstones = st.tombstones;
    pthread_mutex_lock(&c->mu);
    o->backlog_bytes = c->bl_bytes;
    o->not_ready = o->ready ? NULL : c->pub_not_ready;
    o->npeers = c->pub_npeers < 16 ? c->pub_npeers : 16;
    memcpy(o->peers, c->pub_peers, o->npeers * sizeof(o->peers[0]));
    pthread_mutex_unlock(&c->mu);
}
