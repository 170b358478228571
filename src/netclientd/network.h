/* One joined network: its WireGuard link (nm-<name>), the node's desired state as the server
 * describes it (addresses, port, MTU, peers), the Peer objects exported on the bus, and how that
 * state is applied to the link: as a diff of the device, never by replacing every peer. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <glib.h>
#include <systemd/sd-bus.h>

#include "manager.h"
#include "proto.h"
#include "wg.h"

struct Network {
        Manager *manager;
        char *name;
        char ifname[IFNAMSIZ];
        char *path;
        NmNetworkState *desired; /* peers never NULL */
        GHashTable *peers;       /* base64 public key -> Peer* */
        GHashTable *routes;      /* canonical CIDR strings we routed through the link */
        guint64 serial;          /* the host serial that last changed this network */
        bool exported;
        bool link_configured;                 /* applied at least once since start */
        bool apply_failed;                    /* the last apply failed: retried from a timer */
        struct ApiRequest *connected_request; /* telling the server Connect/Disconnect (manager-sync.c) */
        bool connected_telling;               /* ... which of the two */
        sd_bus_slot *slot;
        struct NetworkDns *dns; /* network-dns.c: zone, listeners, resolved registration */
        /* network-roles.c */
        int routes_ifindex;        /* the link `routes` are on; 0 = not read from the kernel yet */
        unsigned gateway_families; /* internet gateway default routes in place: 1 = IPv4, 2 = IPv6 */
};

/* Takes ownership of `desired`. Exports the object when the manager has a bus. */
int network_new(Manager *m, NmNetworkState *desired, Network **ret);
/* Unexports and frees; leaves the link alone (see network_teardown()). */
Network *network_free(Network *n);

/* The user's choice: false while disconnected. */
bool network_is_connected(Network *n);
/* Lowercase, sorted: "10.99.0.1/24", "fd00::1/64". */
char **network_addresses(Network *n);
/* Sorted object paths of the peers. */
char **network_peer_paths(Network *n);
Peer *network_find_peer(Network *n, const NmKey *key);

/* Makes the link match the desired state: creates or adopts it, sets MTU, addresses, up/down,
 * key, port and peers (a diff against what the device has), and routes for peers' allowed IPs
 * outside the node's own subnets. Used at start, after a snapshot and after Connect. */
int network_apply(Network *n, GError **error);
/* Applies a change to the listed peers only (keys of peers added, updated or removed). */
int network_apply_peers(Network *n, GArray *keys, GError **error);
/* Applies a `peers` message (`msg` names this network): the desired peers, Serial and the Peer
 * objects, then on the link the peers it names, and no others. A failure on the link leaves the new
 * desired state in place and sets apply_failed, so that a retry applies the whole network. A message
 * that is not a peers message for this network changes nothing (-EINVAL). */
int network_apply_delta(Network *n, const NmMessage *msg, GError **error);
/* Deletes the link (and with it its addresses and routes). */
int network_teardown(Network *n, GError **error);
/* Reads handshakes and traffic counters from the device into the Peer objects; 1 when a peer's
 * class (network_peers_class_changed()) changed, else 0, or a negative errno. */
int network_refresh_stats(Network *n);
/* Whether a peer has (or lost) a session, or has been without one for the network's
 * failover_after, since the last check-in said otherwise: worth an early check-in. */
bool network_peers_class_changed(Network *n);
/* Adds every peer's status (handshake age, since when it is a peer, traffic) to a check-in, and
 * remembers what was reported. Nothing for a disconnected network. */
void network_add_peer_status(Network *n, NmReport *report);

/* Pure state changes (no link or bus I/O besides updating exported objects): */
/* Applies a `peers` message to the desired peers; *ret_keys gets the keys touched. */
int network_state_apply_delta(NmNetworkState *s, const NmMessage *msg, GArray **ret_keys, GError **error);
/* Replaces the desired state with `desired` (settings and, when it has them, peers), keeping the
 * Peer objects in step. Returns true when the link needs a full apply. */
bool network_set_desired(Network *n, NmNetworkState *desired);
/* Sets the host serial that last changed this network (the Serial property). */
void network_set_serial(Network *n, guint64 serial);
/* Makes the Peer objects match desired->peers (creating, updating, removing). */
void network_sync_peer_objects(Network *n);

/* network-roles.c */
/* The role names shown on the bus ("egress", "internet-gateway", "ingress", "relay", "relayed",
 * "uses-internet-gateway"). */
char **network_role_names(Network *n);
/* Compares the roles with `old`: logs, emits PropertiesChanged, returns true when they differ. */
bool network_roles_changed(Network *n, const NmRoles *old);
/* The routing table and WireGuard fwmark of the internet gateway this node uses; 0 = none. */
uint32_t network_gateway_table(Network *n);
/* Routes through the link for allowed IPs outside the network's own ranges (an internet gateway's
 * default in its own table), removing those no longer wanted. */
void network_sync_routes(Network *n);

/* network-bus.c */
int network_bus_export(Network *n);
void network_bus_unexport(Network *n);
