/*
 * cluster_int.h: the replication state (cluster.h) shared by the protocol (node.c) and its drivers (net.c for real
 * sockets, the simulation test for a seeded network). Not a public header.
 *
 * Ownership: links, addrs and nodes belong to the driving thread (the network thread): only it reads or writes them.
 * `mu` guards what the change path's observer touches from other threads (the backlog, the pending tickets, the
 * sequence counter) and the status copy; `reachable`, `ready`, the clock fields are atomics.
 */
#ifndef FY_CLUSTER_INT_H
#define FY_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "cluster.h"
#include "push.h"
#include "wire.h"

#define FY_CL_MAX_ADDRS 16
#define FY_CL_MAX_NODES 64
#define FY_CL_MAX_LINKS 64

typedef struct st_fy_cl_link_t {
    int used;
    int fd; /* the driver's */
    int outbound;
    int addr; /* outbound: the address dialled; inbound: -1 */
    int node; /* once the handshake named it, else -1 */
    int open; /* handshake done */
    int closing;
    fy_wbuf_t in, out;
    int64_t last_rx, last_tx;
    uint64_t send_next; /* outbound: our next change to send */
    int64_t sent_stamp; /* outbound: the stamp of the last change sent (the heartbeat's frontier) */
    int64_t batch_at;   /* outbound: when changes last went out (fy_cl_flush holds the next batch until an ACK) */
    uint64_t ack_sent;  /* inbound: the last ACK sent */
    int fresh;          /* outbound: the peer had none of our changes (a new incarnation) */
    int more_input;     /* frames left in `in` after a time slice (fy_cl_input runs again without new bytes) */
    /* inbound: a state transfer being answered, a few shards per loop turn (pump_transfers) */
    int xfer;
    uint64_t xfer_id, xfer_groups, xfer_seq;
    int64_t xfer_since;
    uint32_t xfer_shard;
    int64_t xfer_held; /* the request came then, while our state may have been about to be dropped (0: not held) */
    int64_t opened_at;
    /* net.c with --cluster.tls-config (the protocol never looks) */
    void *ssl;       /* SSL *, or NULL: plain TCP (or a dial still connecting) */
    int tls_hs;      /* the TLS handshake is under way */
    short tls_want;  /* POLLIN/POLLOUT: what OpenSSL waits for (handshake, or a read that must write) */
    int tls_wr_read; /* a write waits for the socket to be readable */
    int tls_dead;    /* a fatal TLS error: no close_notify */
    char peer[64];   /* inbound: the remote address, for logs */
} fy_cl_link_t;

typedef struct st_fy_cl_addr_t {
    char text[256];
    char host[256], port[16];
    int self;
    int link; /* our link to it, or -1 */
    int64_t next_dial;
    int node;            /* the replica behind it, once known, else -1 */
    int caught_up;       /* the state transfer we need from it (since catch_since) is complete */
    int64_t catch_since; /* 0 at start; after an isolation, where we lost touch */
    int64_t want_since;  /* a request waiting for the link to open (-1: none) */
    uint64_t req_id;
    char refused[256];     /* the last handshake refusal, for status and logs */
    int64_t refused_until; /* no redial before (a refusing peer is retried every 5 s) */
    int64_t logged_at;     /* last connection error logged (one line per minute per address) */
} fy_cl_addr_t;

/* A remote replica, one entry per incarnation (node id: random per process start). */
typedef struct st_fy_cl_node_t {
    uint64_t id;
    uint32_t slot;
    int in_link, out_link, addr;
    uint64_t acked;    /* our changes it holds */
    uint64_t applied;  /* its changes we applied (its sequence numbers) */
    uint64_t held;     /* of those, the ones held here (durable mode: synced) */
    int64_t watermark; /* every change of its own stamped <= watermark has reached us */
    int64_t last_heard;
    int64_t offset; /* its clock minus ours, at the last heartbeat */
    int empty, ready;
    /* our changes up to skip_to - 1 reached it by the state transfer it asked of us since 0 (0: none yet): a
     * restarted replica is not sent the changes its transfer already holds, nor told of a gap in our backlog */
    uint64_t skip_to;
    int64_t lost_at; /* its link to us closed then: lost_node runs a second later (0: not lost) */
} fy_cl_node_t;

/* A change of ours: its frame (for peers that reconnect) and its ticket. */
typedef struct st_fy_cl_entry_t {
    uint64_t seq;
    uint64_t wal_seq; /* durable mode: the log's sequence number to wait for */
    int64_t stamp, at;
    uint8_t *frame;
    size_t len;
} fy_cl_entry_t;

/* A peer's change applied here, waiting for the local log before it is acknowledged (durable mode). */
typedef struct st_fy_cl_hold_t {
    int node;
    uint64_t seq, wal_seq;
} fy_cl_hold_t;

struct st_fy_cluster_t {
    fy_cluster_config_t cfg;
    fy_core_t *core;
    uint64_t id;
    _Atomic uint32_t slot;
    unsigned replicas, quorum;

    /* the clock */
    _Atomic int64_t hlc_last;   /* written under the core's order lock */
    _Atomic int64_t hlc_remote; /* the largest stamp seen from a peer */

    /* driver state (network thread) */
    fy_cl_link_t links[FY_CL_MAX_LINKS];
    fy_cl_addr_t addrs[FY_CL_MAX_ADDRS];
    size_t naddrs;
    fy_cl_node_t nodes[FY_CL_MAX_NODES];
    size_t nnodes;
    fy_push_arena_t arena;
    fy_cl_hold_t *holds;
    size_t nholds, cap_holds;
    /* Peers' changes and groups in which a family lost a conflict while a state transfer to us was under way: the
     * instance it conflicted with may be stale (replayed from our log, or kept through a partition) and about to be
     * removed by that transfer, so the kill waits until no transfer is (node.c settle_deferred). Entries: u8 kind
     * (DEFER_OP, DEFER_GROUP), u8 record type, u32 length, the bytes. */
    fy_wbuf_t deferred;
    _Atomic uint64_t wal_durable;
    uint64_t released, late;
    int64_t next_gc, next_hb, next_publish;
    uint64_t req_seq;
    int loaded, durable_state;
    int stale_checked;      /* the age of the local state was checked against the first ready peer */
    int loaded_old;         /* -1 until loading ended; then whether the loaded state was older than the retention */
    int64_t quorum_since;   /* not ready, with a write quorum reachable since then (0: not) */
    int refilling;          /* dropped its state (discard_isolated) and not ready since: its state is not the cluster's */
    int64_t minority_since; /* ready, but fewer replicas reachable than the quorum since then (0: not) */
    int64_t isolated_at;    /* not ready on the minority side; its last contact with a quorum was then (0: not) */
    uint64_t stale_drops;   /* local state dropped as older than the tombstone retention (drop_if_stale) */
    int64_t refuse_logged_at;
    int64_t started;
    const char *not_ready;

    /* shared with the observer (mu) */
    pthread_mutex_t mu;
    uint64_t seq;           /* our last change's sequence number */
    fy_cl_entry_t *backlog; /* ring: entries [bl_head, bl_head + bl_n) */
    size_t bl_cap, bl_head, bl_n;
    uint64_t bl_bytes;
    int64_t last_stamp; /* of our last change */

    fy_cluster_peer_status_t pub_peers[FY_CL_MAX_ADDRS]; /* the peers as of the last tick (for other threads) */
    size_t pub_npeers;
    const char *pub_not_ready;

    _Atomic int reachable; /* distinct peers with an open link from us */
    _Atomic int send_busy; /* every open outbound link waits for an ACK: a new change needs no wake-up (cl_commit) */
    _Atomic int ready;
    _Atomic uint64_t sent, applied, quorum_failures, refused_no_quorum, killed, gaps;
    _Atomic uint64_t resync_delta, resync_full, resync_lost_peer, groups_received;

    /* the driver's hooks */
    void *drv;
    void (*dial)(fy_cluster_t *c, int addr);
    void (*close_link)(fy_cluster_t *c, int link);
    void (*wake)(fy_cluster_t *c);
    int64_t (*now)(fy_cluster_t *c);

    /* net.c */
    pthread_t thread;
    int running, listen_fd, wake_fd;
    _Atomic int wake_pending; /* a wake-up is on its way: one eventfd write per loop turn, not per change */
    _Atomic int stop;
    struct {
        char addr[64];
        int64_t at;
    } tls_logged[16]; /* inbound TLS handshake failures: last logged per remote address */
};

/* node.c: the protocol, called by the driver's thread */
int64_t fy_cluster_stamp_peek(fy_cluster_t *c); /* the clock now, without taking a stamp */
void fy_cl_init(fy_cluster_t *c);
int fy_cl_link_new(fy_cluster_t *c, int fd, int outbound, int addr); /* -1 when full */
void fy_cl_link_opened(fy_cluster_t *c, int link);                   /* an outbound connect completed */
void fy_cl_dial_failed(fy_cluster_t *c, int addr, const char *why);
void fy_cl_input(fy_cluster_t *c, int link);                        /* after bytes were added to link->in */
void fy_cl_link_closed(fy_cluster_t *c, int link, const char *why); /* the driver closed or lost it */
void fy_cl_tick(fy_cluster_t *c);                                   /* timers, flushing, release */
void fy_cl_flush(fy_cluster_t *c);
int64_t fy_cl_wait_ns(fy_cluster_t *c);
/* how long the driver may wait for input before calling fy_cl_tick again */ /* new changes into the links */
void fy_cl_clock_from_store(fy_cluster_t *c); /* the clock starts above every stamp the loaded store holds */
int fy_cl_discard_stale(fy_cluster_t *c);     /* local state older than the tombstone retention: dropped (1) */

#endif
