/* Peer computation and delta fan-out: what each host sees of a network (its peers), and which
 * messages one change sends to exactly the hosts that see it. The computation works on in-memory
 * rows (PeerView) so it is testable without a database; the loaders read those rows from the
 * store inside the caller's transaction. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "proto.h"
#include "store.h"

/* A network with every node in it and each node's host. */
typedef struct PeerView {
        Network *network;
        GPtrArray *members;     /* of Member */
        GPtrArray *dns;         /* of NmDnsEntry: the network's custom DNS names (dns-names.c) */
        GPtrArray *nameservers; /* of NmNameserver: where names under other domains go (nameservers.c) */
        /* Topologies (topology.c): */
        GPtrArray *ext_clients;  /* of ExtClient */
        bool acl_deny;           /* the ACL default */
        GPtrArray *acl_rules;    /* of AclRule */
        GPtrArray *failovers;    /* of Failover: pairs relayed because they could not connect */
        struct TopoIndex *index; /* built on first use from the above; topo_view_changed() drops it */
} PeerView;

PeerView *peer_view_new(Network *network); /* takes ownership */
void peer_view_free(PeerView *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PeerView, peer_view_free)
const Member *peer_view_find_host(const PeerView *v, const char *host_id);

/* Messages for hosts, built while the change is in its transaction and published after commit. */
typedef struct OutMsg {
        char *host_id;
        NmKey msg_key;
        NmMessage *msg;
} OutMsg;

typedef struct Outbox {
        GPtrArray *msgs; /* of OutMsg */
        guint n_stamped; /* messages that have their serial */
} Outbox;

Outbox *outbox_new(void);
void outbox_free(Outbox *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Outbox, outbox_free)
void outbox_add(Outbox *o, const Host *to, NmMessage *msg); /* takes ownership of msg */
/* Messages to one host so far (for tests and metrics). */
guint outbox_count(const Outbox *o, const char *host_id, NmMessageType type);
/* Raises each recipient's serial by one per message not stamped yet (in order) and stamps them.
 * Call inside the transaction of the change, before a recipient is deleted. */
int outbox_assign_serials(Outbox *o, Store *s, GError **error);

/* What every network state tells its hosts of the server's UDP endpoint (netmakerd's endpoint
 * observer and STUN responder) and of failover. The Manager sets it once at start-up; without it
 * (unit tests, or no observer) states carry neither. Borrowed: it must outlive every use. */
typedef struct PeersServerInfo {
        const char *observer_endpoint; /* "ip:port" hosts send to; NULL: no observer peer */
        bool stun;                     /* the same address answers STUN */
        guint observer_keepalive;      /* seconds */
        guint failover_after;          /* seconds; 0: no automatic relays */
        struct ObserverKeys *keys;     /* the server's WireGuard key per network */
} PeersServerInfo;

void peers_set_server_info(const PeersServerInfo *info);

/* ---- pure computation (the peers themselves: topology.h) ------------------------------------ */

/* The state entry of network `v` for member `self`, with its peers when `with_peers`. */
NmNetworkState *peers_network_state(const PeerView *v, const Member *self, bool with_peers);
/* A host's full state from the views of its networks (the host's serial is used as it is). */
NmState *peers_state(const Host *host, PeerView *const *views, guint n_views);

/* ---- fan-out over views (changes of peers: topo_diff() in topology.h) ------------------------ */

/* "network-changed" (without peers) to every member's host. */
void peers_fanout_network_changed(const PeerView *v, Outbox *o);

/* ---- loading from the store ------------------------------------------------------------------ */

int peers_load_view(Store *s, const char *network, PeerView **ret, GError **error);
/* The views of every network a host is in. */
int peers_load_host_views(Store *s, const char *host_id, GPtrArray **ret, GError **error);
/* Every network's view, by name (for snapshots to every host). */
int peers_load_all_views(Store *s, GHashTable **ret, GError **error);
int peers_host_state(Store *s, const Host *h, NmState **ret, GError **error);

/* ---- changes: store writes plus their messages, inside the caller's transaction ------------ */

/* Gives host `h` a node in `network` (addresses, port, the host's tags), and queues the messages:
 * "peers" to the members that see it, "network-joined" to `h` if `tell_host` (not at registration:
 * the reply carries the state). */
int peers_node_join(Store *s, const Host *h, const char *network, bool tell_host, Outbox *o, Node **ret,
                    GError **error);
/* Removes a node (and what points at it: relayed nodes, internet gateway users, ACL rules naming
 * it, its external clients) and queues the messages; "network-left" to its host if `tell_host`. */
int peers_node_leave(Store *s, const Node *node, bool tell_host, Outbox *o, GError **error);
/* Queues "host-deleted" for the host and removals for its peers, stamps serials (the host's row
 * goes next) and deletes the host with its nodes. */
int peers_host_delete(Store *s, const Host *h, Outbox *o, GError **error);
/* Applies a check-in (version, endpoints, public address, per-network ports, last check-in) and
 * queues "update" for every viewer whose chosen endpoint of the host changed (docs/protocol.md
 * §4.5: also the host's own view of others behind the same NAT). */
int peers_host_checkin(Store *s, const char *host_id, const NmReport *report, gint64 now, Outbox *o,
                       GError **error);
/* The observer saw the node's WireGuard packets come from `endpoint` ("ip:port"; NULL: forget what it
 * saw): stores it and queues an "update" for every viewer whose chosen endpoint of the node changed
 * (and the node's own view of peers behind the same NAT). */
int peers_node_observed(Store *s, const char *node_id, const char *endpoint, gint64 now, Outbox *o,
                        GError **error);
/* The source address of the host's HTTPS requests changed (NULL: none usable): stores it and queues
 * the endpoint changes it causes. */
int peers_host_http_address(Store *s, const char *host_id, const char *address, Outbox *o, GError **error);
/* Relays the pair (a, b) of `network` through `relay`, or (relay NULL) lets it connect directly
 * again, and queues the deltas: each sees the other as a probe (or back as a peer) and finds the
 * other's addresses in the relay's entry (or no more). */
int peers_failover_set(Store *s, const char *network, const char *a, const char *b, const char *relay,
                       gint64 now, Outbox *o, GError **error);
/* Writes the admin's settings of host `h` (name, static listen port, static endpoint, keepalive,
 * MTU: docs/protocol.md §2.4; already validated) and queues what they change, to exactly the hosts
 * that see a change: "update" of the host to the peers whose entry of it changed (name, endpoint,
 * port, keepalive), its own view of them when the keepalive of their pairs changed, and
 * "network-changed" to the host for its own state entry (name, MTU, ports). A new static port gives
 * its nodes their ports again (ipam_reassign_ports()). 409 for a name that is a custom DNS name or
 * an external client's in one of its networks. */
int peers_host_settings(Store *s, const Host *h, Outbox *o, GError **error);
/* Marks the node connected or not (the host's Connect/Disconnect): its peers drop it or take it back
 * ("remove" / "add"), its host hears its state entry. Nothing when it is already so. */
int peers_node_set_connected(Store *s, const Node *node, bool connected, Outbox *o, GError **error);
/* Queues a "snapshot" for the host. */
int peers_host_snapshot(Store *s, const char *host_id, Outbox *o, GError **error);
/* Queues a "snapshot" for every host (after the broker came back), reading each network once. */
int peers_snapshot_all(Store *s, Outbox *o, GError **error);
