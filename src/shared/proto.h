/* The messages of docs/protocol.md §3: peers, network state, server→host messages and
 * host→server reports, with strict JSON codecs shared by netmakerd, netclientd and tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-glib/json-glib.h>
#include "keys.h"

#define NM_MAX_ALLOWED_IPS       1024
#define NM_MAX_ENDPOINTS         32
#define NM_MAX_PEERS_PER_MESSAGE 100000

typedef struct NmPeer {
        char *host_id;
        char *name;
        NmKey public_key;
        char *endpoint;     /* "ip:port" or NULL */
        char **allowed_ips; /* canonical CIDRs */
        guint keepalive;
        char *ipv4; /* mesh addresses without prefix, or NULL */
        char *ipv6;
        bool external; /* an external client (plain WireGuard config) attached to this ingress gateway */
        bool internet; /* such a client may reach the internet through this gateway (full tunnel) */
        char *node_id; /* the peer's node in the network (NULL for external clients) */
        bool internet_gateway; /* the peer's node offers an internet gateway in the network */
} NmPeer;

NmPeer *nm_peer_new(void);
NmPeer *nm_peer_copy(const NmPeer *p);
void nm_peer_free(NmPeer *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmPeer, nm_peer_free)
bool nm_peer_equal(const NmPeer *a, const NmPeer *b);
void nm_peer_to_json(const NmPeer *p, JsonBuilder *b);
NmPeer *nm_peer_from_json(JsonNode *n, GError **error);

/* What this host's node does in a network besides being a peer (docs/protocol.md §4). */
typedef struct NmRoles {
        char **egress_ranges;  /* canonical CIDRs routed for the network; NULL when not an egress gateway */
        bool egress_nat;       /* masquerade what leaves towards the egress ranges */
        bool internet_gateway; /* offers 0.0.0.0/0 and ::/0 to the nodes that opted in */
        bool ingress;          /* external clients attach here */
        bool relay;            /* forwards between its peers for relayed nodes */
        char *relayed_by;      /* node id of this node's relay, or NULL */
        char *internet_gateway_via; /* node id of the internet gateway this node uses, or NULL */
        bool failover;              /* may relay pairs of nodes that cannot connect directly */
} NmRoles;

void nm_roles_clear(NmRoles *r);
bool nm_roles_equal(const NmRoles *a, const NmRoles *b);
/* True when the node forwards packets for others (egress, internet gateway, ingress, relay or
 * failover relay). */
bool nm_roles_forwards(const NmRoles *r);
/* The roles object of docs/protocol.md §4.1 with every member (a node's "roles" in the REST API). */
void nm_roles_to_json(const NmRoles *r, JsonBuilder *b);

/* A custom DNS name of a network: "<name>.<network>.<dns_domain>" (docs/protocol.md §5). */
typedef struct NmDnsEntry {
        char *name;
        char *ipv4;
        char *ipv6;
} NmDnsEntry;

NmDnsEntry *nm_dns_entry_new(const char *name, const char *ipv4, const char *ipv6);
void nm_dns_entry_free(NmDnsEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmDnsEntry, nm_dns_entry_free)

/* The server's UDP endpoint as a network's hosts use it (docs/protocol.md §3.4): a keepalive-only
 * WireGuard peer whose packets show the server each node's NAT mapping, and (stun) a STUN server. */
typedef struct NmObserver {
        NmKey public_key; /* the server's WireGuard key for this network */
        char *endpoint;   /* "ip:port" */
        guint keepalive;  /* seconds */
        bool stun;        /* the endpoint answers STUN Binding requests */
} NmObserver;

void nm_observer_free(NmObserver *o);
NmObserver *nm_observer_copy(const NmObserver *o);
bool nm_observer_equal(const NmObserver *a, const NmObserver *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmObserver, nm_observer_free)

/* A nameserver of a network (docs/protocol.md §5.1): names under `domain` go to `servers`. */
typedef struct NmNameserver {
        char *domain;   /* lower case, no trailing dot: "corp.example" */
        char **servers; /* IP addresses in canonical form, 1-NM_MAX_NAMESERVER_SERVERS; port 53 */
} NmNameserver;

#define NM_MAX_NAMESERVER_SERVERS 8
#define NM_MAX_NAMESERVERS        64

NmNameserver *nm_nameserver_new(const char *domain, char **servers);
NmNameserver *nm_nameserver_copy(const NmNameserver *ns);
void nm_nameserver_free(NmNameserver *ns);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmNameserver, nm_nameserver_free)

typedef struct NmNetworkState {
        char *network;
        char *node_id;
        char *ipv4; /* "10.99.0.1/24" or NULL */
        char *ipv6;
        guint16 listen_port;
        guint keepalive;
        guint mtu;
        char *dns_domain;
        bool connected;
        char *host_name; /* this host's name in DNS ("<host_name>.<network>.<dns_domain>"), or NULL */
        NmRoles roles;
        GPtrArray *dns;         /* of NmDnsEntry: the network's custom names (never NULL after parsing) */
        GPtrArray *nameservers; /* of NmNameserver, by domain (never NULL after parsing) */
        GPtrArray *peers;       /* of NmPeer; NULL when the message carries no peers */
        NmObserver *observer;   /* NULL: the server observes nothing */
        guint failover_after; /* seconds without a handshake after which the server relays a pair; 0 = never
                               */
} NmNetworkState;

NmNetworkState *nm_network_state_new(void);
void nm_network_state_free(NmNetworkState *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmNetworkState, nm_network_state_free)
/* A deep copy: what nm_network_state_to_json() and _from_json() would give for a valid state, without
 * the JSON. Peers stay NULL when `s` has none; dns and nameservers are never NULL. */
NmNetworkState *nm_network_state_copy(const NmNetworkState *s);
void nm_network_state_to_json(const NmNetworkState *s, JsonBuilder *b);
NmNetworkState *nm_network_state_from_json(JsonNode *n, GError **error);

typedef struct NmState {
        char *host_id;
        guint64 serial;
        GPtrArray *networks; /* of NmNetworkState */
} NmState;

NmState *nm_state_new(void);
void nm_state_free(NmState *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmState, nm_state_free)
void nm_state_to_json(const NmState *s, JsonBuilder *b);
NmState *nm_state_from_json(JsonNode *n, GError **error);

typedef enum NmMessageType {
        NM_MSG_PEERS,
        NM_MSG_NETWORK_JOINED,
        NM_MSG_NETWORK_LEFT,
        NM_MSG_NETWORK_CHANGED,
        NM_MSG_SNAPSHOT,
        NM_MSG_HOST_DELETED,
        _NM_MSG_MAX,
} NmMessageType;

const char *nm_message_type_to_string(NmMessageType t);

typedef struct NmMessage {
        NmMessageType type;
        guint64 serial;
        char *network;       /* NM_MSG_PEERS, NM_MSG_NETWORK_LEFT */
        GPtrArray *add;      /* NM_MSG_PEERS: of NmPeer */
        GPtrArray *update;   /* NM_MSG_PEERS: of NmPeer */
        GPtrArray *remove;   /* NM_MSG_PEERS: of NmKey */
        NmNetworkState *net; /* NM_MSG_NETWORK_JOINED, NM_MSG_NETWORK_CHANGED */
        NmState *state;      /* NM_MSG_SNAPSHOT */
} NmMessage;

NmMessage *nm_message_new(NmMessageType type, guint64 serial);
void nm_message_free(NmMessage *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmMessage, nm_message_free)
char *nm_message_to_json(const NmMessage *m);
NmMessage *nm_message_parse(const char *data, gssize len, GError **error);

typedef enum NmReportType {
        NM_REPORT_CHECKIN,
        NM_REPORT_SNAPSHOT_REQUEST,
        _NM_REPORT_MAX,
} NmReportType;

/* What a host's device says of one peer (docs/protocol.md §3.5). */
typedef struct NmPeerStatus {
        NmKey public_key;
        gint64 handshake; /* seconds since the latest handshake; -1: none since the peer was set up */
        guint64 since;    /* seconds since the peer was set up on this host */
        guint64 rx_bytes;
        guint64 tx_bytes;
} NmPeerStatus;

typedef struct NmReport {
        NmReportType type;
        char *version;
        GHashTable *listen_ports; /* network name -> GUINT_TO_POINTER(port) */
        char **endpoints;         /* IP addresses */
        char *public_ip;          /* the address others see (STUN), or NULL */
        GHashTable *peers;        /* network name -> GArray of NmPeerStatus; NULL: not reported */
} NmReport;

/* Adds (creating the table and the network's list) one peer's status to a check-in. */
void nm_report_add_peer_status(NmReport *r, const char *network, const NmPeerStatus *st);

NmReport *nm_report_new(NmReportType type);
void nm_report_free(NmReport *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmReport, nm_report_free)
char *nm_report_to_json(const NmReport *r);
/* Also accepts the body of PUT /api/v1/host, where "type" may be omitted (then a check-in). */
NmReport *nm_report_parse(const char *data, gssize len, GError **error);

char *nm_topic_host_msg(const char *server, const char *host_id);
char *nm_topic_host_report(const char *server, const char *host_id);
char *nm_topic_reports(const char *server);
/* The host id in a report topic of this server, or NULL. */
char *nm_topic_report_host_id(const char *server, const char *topic);
