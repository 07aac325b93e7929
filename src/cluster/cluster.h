/*
 * cluster.h: replication (docs/ha.md). Every replica accepts every change, stamps it with a hybrid logical clock,
 * applies it, and ships it to its peers over persistent TCP links (a full mesh, wire.h); the store merges changes
 * last-writer-wins (store.h, lww mode), so that delivery order, duplicates and state transfer cannot make replicas
 * diverge. A client's change is answered once a write quorum of replicas (counting this one) holds it; with fewer
 * peers reachable it is refused with 503 before anything is applied. A replica that starts catches up from its
 * peers (state transfer) before it reports ready.
 *
 * The protocol (node.c) is a state machine over links that is driven by one thread: the network thread here
 * (net.c), or a test's simulated network (tests/test_cluster_sim.c). Its only other entry is the change path's
 * observer (fy_cluster_observer), which appends a client's change to the backlog under the core's order lock.
 *
 * Locks: the core's order lock (stamping and the backlog's appends happen under it), then the cluster's `mu`
 * (backlog, pending tickets, status). The network thread takes mu alone, never the order lock while holding mu,
 * and applies peers' changes through fy_core_apply (which takes the order lock) without holding mu.
 */
#ifndef FY_CLUSTER_H
#define FY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "change.h"

typedef struct st_fy_cluster_t fy_cluster_t;

/* Why a replica on the minority side of a partition does not serve reads (its 503). */
#define FY_CLUSTER_ISOLATED                                                                                                        \
    "cluster: fewer replicas reachable than --cluster.write-quorum; not serving until back in touch with them and "                \
    "caught up"

typedef struct st_fy_cluster_config_t {
    const char *listen;       /* --cluster.listen-address HOST:PORT */
    const char *advertise;    /* --cluster.advertise-address, or NULL */
    const char *const *peers; /* --cluster.peer, as given */
    size_t npeers;
    const char *label; /* --cluster.label ("" = none) */
    unsigned quorum;   /* --cluster.write-quorum: 0 = majority, UINT32_MAX = all, else N */
    unsigned replicas; /* --cluster.replicas: 0 = the distinct peers, counting this replica once */
    int64_t ack_timeout_ns, peer_timeout_ns, heartbeat_ns, max_offset_ns, retention_ns, reconnect_ns;
    uint64_t fingerprint;   /* of the settings that must agree (default TTL and interval) */
    int durable;            /* --persistence.durable: a change is held once the local log synced it */
    uint64_t backlog_bytes; /* the resend backlog (default 64 MiB) */
    /* --cluster.tls-config (fy_cluster_set_tls): OpenSSL SSL_CTX pointers owned by the caller and alive until
     * fy_cluster_destroy, NULL for plain TCP; tls_server_name: the name peers' certificates must carry (NULL or "":
     * the host of the --cluster.peer entry dialled) */
    void *tls_server, *tls_client;
    const char *tls_server_name;
    /* callbacks, from the network thread */
    void *ctx;
    void (*release)(void *ctx, uint64_t upto);  /* every ticket <= upto is held by the write quorum */
    void (*time_out)(void *ctx, uint64_t late); /* tickets <= late not released fail: no quorum in time */
    void (*ready)(void *ctx, int ready);        /* caught up (once) */
} fy_cluster_config_t;

/** Checks the configuration and resolves nothing yet. NULL with a message in err. */
fy_cluster_t *fy_cluster_create(const fy_cluster_config_t *cfg, fy_core_t *core, char *err, size_t errlen);

/** The observer to register after the write-ahead log's (its tickets are the ones clients wait for). */
fy_change_observer_t fy_cluster_observer(fy_cluster_t *c);

/** The replica's clock for fy_core_t.stamp. */
int64_t fy_cluster_stamp(void *c, int64_t now_ns);

/** TLS on the peer links (see the config's tls_* fields): before fy_cluster_start. */
void fy_cluster_set_tls(fy_cluster_t *c, void *server_ctx, void *client_ctx, const char *server_name);

/** Binds the peer port and starts the network thread; readiness also waits for fy_cluster_loaded. 0, or -1 with err. */
int fy_cluster_start(fy_cluster_t *c, char *err, size_t errlen);

/** Local loading is done; durable_state: the replica restarted from a durable log (fewer peers are needed). */
void fy_cluster_loaded(fy_cluster_t *c, int durable_state);

/** The local log has synced up to wal_seq (durable mode). Any thread. */
void fy_cluster_local_durable(fy_cluster_t *c, uint64_t wal_seq);

/** Drops every local group without a trace (no tombstone, no wipe stamp), through the change path (logged, never
 * shipped): a persistence file that could not be read is replaced by the peers' state, never by a wipe that would
 * spread (before fy_cluster_start); so is state older than the tombstone retention (the network thread). Returns the
 * number of groups dropped. */
uint64_t fy_cluster_drop_local(fy_cluster_t *c);

void fy_cluster_stop(fy_cluster_t *c);
void fy_cluster_destroy(fy_cluster_t *c);

/** Whether caught up, and if not, why (static text). */
int fy_cluster_is_ready(fy_cluster_t *c, const char **why);

/* Figures for self-metrics and /api/v1/status (a copy taken under mu). */
typedef struct st_fy_cluster_peer_status_t {
    char addr[128];
    uint64_t node;
    int connected;      /* our link to it is open */
    int inbound;        /* its link to us is open */
    double lag_seconds; /* how far its acknowledgements trail our newest change, in time */
    double clock_offset_seconds;
    uint64_t acked;
    uint64_t applied;  /* its changes applied here */
    int caught_up;     /* its state transfer since this replica started is complete */
    char refused[160]; /* why it refused this replica's last handshake, or "" */
} fy_cluster_peer_status_t;

typedef struct st_fy_cluster_status_t {
    uint64_t node;
    unsigned slot, replicas, quorum;
    int ready;
    const char *not_ready;
    uint64_t sent, applied, quorum_failures, refused_no_quorum, killed, gaps;
    uint64_t resync_delta, resync_full, resync_lost_peer, groups_received;
    uint64_t tombstones;
    uint64_t backlog_bytes;
    size_t npeers;
    fy_cluster_peer_status_t peers[16];
} fy_cluster_status_t;

void fy_cluster_status(fy_cluster_t *c, fy_cluster_status_t *out);

#endif
