/* Who peers with whom in a network and what each sees (docs/protocol.md §4), as pure functions of a
 * PeerView: ACL verdicts per pair, relays, the allowed IPs gateways carry (egress ranges, external
 * clients, the internet), the endpoint chosen per pair; and the difference between the views before
 * and after a change as the messages to exactly the hosts whose peers or roles it changes. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "peers.h"

/* ---- one view ------------------------------------------------------------------------------- */

/* The view's members, rules or clients changed in memory: rebuild the index at next use. */
void topo_view_changed(PeerView *v);
void topo_index_free(struct TopoIndex *x);

const Member *topo_find_node(const PeerView *v, const char *node_id);
const ExtClient *topo_find_ext_client(const PeerView *v, const char *id);
/* The relay that relays `m` (a member with the relay role), or NULL. */
const Member *topo_relay_of(const PeerView *v, const Member *m);
/* The internet gateway `m` uses (a member with the role), or NULL. */
const Member *topo_internet_gateway_of(const PeerView *v, const Member *m);
/* The ACL verdict for two members. */
bool topo_allowed(const PeerView *v, const Member *a, const Member *b);
/* Whether `viewer` has `peer` as a direct WireGuard peer: the peer connected (a disconnected viewer
 * keeps its peers, for the moment it connects again), allowed, and neither is relayed by someone
 * else (a relayed node's only peer is its relay). */
bool topo_direct(const PeerView *v, const Member *viewer, const Member *peer);

/* The keepalive of a probe entry (a relayed pair's direct entry) when the network has none. */
#define TOPO_PROBE_KEEPALIVE 25

/* The node that relays the pair (a, b) because it could not connect directly (a stored failover
 * whose relay still has the failover role and peers with both directly), or NULL. */
const Member *topo_failover_relay_of(const PeerView *v, const Member *a, const Member *b);
/* Whether `relay` may relay the pair (a, b): the failover role, and direct peers of both, which
 * peer with each other. */
bool topo_failover_relay_eligible(const PeerView *v, const Member *relay, const Member *a, const Member *b);

/* The persistent keepalive of the pair (a, b) in network `v`, the same in both directions: a host's
 * own keepalive (docs/protocol.md §2.4) when one of them has one, the shorter of two (off only when
 * both say off), else the network's. */
guint topo_pair_keepalive(const PeerView *v, const Host *a, const Host *b);
/* `peer` as `viewer` sees it (its endpoint chosen for the viewer, its allowed IPs with what it
 * forwards for the viewer), or NULL when it is not a direct peer. A pair relayed by a failover
 * relay sees each other as probes (endpoint and keepalive, no allowed IPs) and each other's
 * addresses in the relay's entry. */
NmPeer *topo_peer_entry(const PeerView *v, const Member *viewer, const Member *peer);
/* An external client as its gateway sees it (external: true), or NULL for anyone else and when the
 * client is disabled. */
NmPeer *topo_ext_client_entry(const PeerView *v, const Member *viewer, const ExtClient *c);
/* Every peer of `viewer` (of NmPeer): nodes, then its external clients. */
GPtrArray *topo_peers_of(const PeerView *v, const Member *viewer);
/* What an external client of this network routes through its gateway: the network's ranges and
 * every egress range in it; everything (0.0.0.0/0 and ::/0, whatever families the network has, so
 * nothing leaks beside the tunnel) for a full-tunnel client (`c` with internet_gateway; c may be
 * NULL). */
char **topo_ext_client_allowed_ips(const PeerView *v, const ExtClient *c);

/* ---- changes -------------------------------------------------------------------------------- */

/* Which entries a change may have touched, by node or external-client id. */
typedef struct TopoDirty TopoDirty;

TopoDirty *topo_dirty_new(void);
void topo_dirty_free(TopoDirty *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TopoDirty, topo_dirty_free)
/* Every entry of every viewer. */
void topo_dirty_all(TopoDirty *d);
/* Every entry this viewer has. */
void topo_dirty_viewer(TopoDirty *d, const char *node_id);
/* This node or external client as every viewer sees it; relays are then looked at too, because
 * they carry what they forward in their allowed IPs. */
void topo_dirty_peer(TopoDirty *d, const char *id);
/* The node's own settings changed (its listen port): its host hears its whole state entry again. */
void topo_dirty_settings(TopoDirty *d, const char *node_id);
/* `peer` as `viewer` sees it. */
void topo_dirty_pair(TopoDirty *d, const char *viewer, const char *peer);
/* The ACL verdict of (a, b) changed: each as the other sees it, and their relays as each sees them. */
void topo_dirty_verdict(TopoDirty *d, const PeerView *before, const PeerView *after, const char *a,
                        const char *b);
/* The pair (a, b) was relayed by `relay_before` and now by `relay_after` (either may be NULL). */
void topo_dirty_failover(TopoDirty *d, const char *a, const char *b, const char *relay_before,
                         const char *relay_after);
/* Pairs marked by the ACL helpers below (for logs and tests). */
guint topo_dirty_n_verdicts(const TopoDirty *d);

/* Marks the pairs whose verdict differs between the views (same members in both), among the pairs
 * an added or deleted rule can match: O(|source| x |destination|) pairs, not the whole network. */
void topo_acl_rule_changed(const PeerView *before, const PeerView *after, const AclRule *rule, TopoDirty *d);
/* The default changed: only pairs no rule matches can change. */
void topo_acl_default_changed(const PeerView *before, const PeerView *after, TopoDirty *d);
/* A node's tags changed: the pairs it is in. */
void topo_acl_node_changed(const PeerView *before, const PeerView *after, const char *node_id, TopoDirty *d);

/* Relays changed (roles, who relays whom, a relay leaving): every member whose relay differs
 * between the views, or whose relay role does, as a viewer and as a peer; relays are then looked at
 * by every viewer. O(changed members x network), not the network squared. */
void topo_relays_changed(const PeerView *before, const PeerView *after, TopoDirty *d);

/* For each member in both views: "network-changed" (without peers) when its state entry differs
 * (its roles, or e.g. the network's DNS names), then one
 * "peers" message with the entries among the dirty ones that differ (add, update, remove by public
 * key). Members in only one view (joining, leaving) are the caller's business. */
void topo_diff(const PeerView *before, const PeerView *after, const TopoDirty *d, Outbox *o);
