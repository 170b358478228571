/* The Manager: netclientd's one owner object. It holds the event loop, the bus, the configuration,
 * the host's identity and server credentials, the joined networks (each with its link and peers),
 * the REST and MQTT clients, and decides how server messages change the desired state. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <netlink/netlink.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "api-client.h"
#include "daemon-config.h"
#include "link.h"
#include "proto.h"
#include "state.h"
#include "token.h"
#include "wg-backend.h"

#define NETCLIENT_BUS_NAME          "org.netmaker.Client"
#define NETCLIENT_OBJECT_PATH       "/org/netmaker/Client"
#define NETCLIENT_INTERFACE         "org.netmaker.Client"
#define NETCLIENT_NETWORK_PREFIX    "/org/netmaker/Client/network"
#define NETCLIENT_NETWORK_INTERFACE "org.netmaker.Client.Network"
#define NETCLIENT_PEER_INTERFACE    "org.netmaker.Client.Peer"

typedef struct Network Network;
typedef struct Peer Peer;
typedef struct MqClient MqClient;
typedef struct JoinJob JoinJob;

typedef enum ManagerState {
        MANAGER_STATE_UNREGISTERED, /* no server: join a network first */
        MANAGER_STATE_JOINING,      /* a Join is talking to the server */
        MANAGER_STATE_ONLINE,       /* registered, the broker connection is up */
        MANAGER_STATE_OFFLINE,      /* registered, the broker cannot be reached (retrying) */
        _MANAGER_STATE_MAX,
} ManagerState;

const char *manager_state_to_string(ManagerState s);

/* What happened to one server message (for logs and tests). */
typedef enum MessageResult {
        MESSAGE_APPLIED,
        MESSAGE_IGNORED, /* an old or repeated serial */
        MESSAGE_PULL,    /* a gap, or a change we cannot place: a snapshot was requested */
} MessageResult;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        Config *config;

        Identity identity;
        bool have_identity;
        ServerConfig *server; /* NULL while unregistered */
        guint64 serial;       /* the last server message applied */
        guint64 highest_serial_seen;
        GHashTable *networks;     /* name -> Network* */
        GHashTable *disconnected; /* set of network names the user disconnected */

        WgBackend *wg;        /* NULL: state only (unit tests) */
        struct nl_sock *rtnl; /* NULL: state only */
        LinkMonitor *link_monitor;
        ApiClient *api;
        MqClient *mq;
        GHashTable *polkit_registry;

        JoinJob *join;
        ApiRequest *pull_request;
        GPtrArray *pull_waiters;      /* of sd_bus_message*: Pull() calls waiting for the snapshot */
        GPtrArray *pull_waiters_next; /* those that came while a pull was running: the next one */
        bool pull_again;
        unsigned pulls; /* snapshots requested (for tests) */
        ApiRequest *checkin_request;

        sd_event_source *checkin_timer;
        sd_event_source *stats_timer;
        sd_event_source *endpoints_timer; /* debounces address changes */
        sd_event_source *retry_timer;     /* re-applies networks after a failure */
        sd_event_source *checkin_soon;    /* an early check-in, no sooner than 5 s after the last */
        uint64_t last_checkin_usec;       /* CLOCK_MONOTONIC */
        char **endpoints;                 /* last reported */
        struct DnsServer *dns_server;     /* the mesh DNS responder (network-dns.c); NULL: state only */
        struct Resolved *resolved;        /* registration with systemd-resolved; NULL: none */
        struct Firewall *firewall;        /* NULL: state only (unit tests) */
        char *public_ip;                  /* from STUN; NULL = unknown (public-ip.c) */
        struct Status *status;            /* GetStatus, GetPeers' journal, PeersChanged (status-bus.c) */
        struct StunQuery *stun;           /* running */
        bool forwarding_failed;           /* retried from the retry timer */
        ManagerState exported_state;
        /* profiles in NetworkManager (networkmanager.c); NULL: none */
        struct NetworkManager *networkmanager;
} Manager;

int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

/* Opens the state, the WireGuard backend and the bus, reconciles the saved networks with the links
 * that exist (never resetting sessions), exports the objects, takes the bus name and connects to
 * the broker. */
int manager_startup(Manager *m);
/* The state directory, identity, server and networks only (no bus, links or network I/O). */
int manager_load_state(Manager *m);

ManagerState manager_get_state(Manager *m);
/* Emits PropertiesChanged for State when it changed. */
void manager_state_maybe_changed(Manager *m);
/* Writes the desired state of all networks to disk. */
int manager_save_state(Manager *m);

Network *manager_get_network(Manager *m, const char *name);
/* Sorted object paths of the networks (for the Networks property). */
char **manager_network_paths(Manager *m);

/* Server messages, pulls and check-ins (manager-sync.c). */
/* Applies a server message (already opened and parsed). */
MessageResult manager_handle_message(Manager *m, const NmMessage *msg);
/* Replaces the desired state with a full snapshot. */
int manager_apply_snapshot(Manager *m, const NmState *state, GError **error);

/* Fetches GET /api/v1/host and applies it; `waiter` (may be NULL) is replied to when done. */
int manager_pull(Manager *m, sd_bus_message *waiter);
/* Reports versions, ports, endpoints and the peers' handshakes (MQTT, or HTTP when the broker is
 * down). */
int manager_send_checkin(Manager *m);
/* A peer got or lost a session: checks in now, or 5 s after the last check-in (manager-sync.c). */
void manager_checkin_soon(Manager *m);
/* Tells the server the user's Connect/Disconnect of `n` when the server's state of the network says
 * otherwise (PUT /api/v1/host/networks/{net}/connected); the choice itself is local and works
 * without the server. Called after the choice, after every state from the server and with every
 * check-in, so a choice made while the server was away reaches it later. */
void manager_sync_connected(Manager *m, Network *n);

/* The D-Bus operations (authorisation has been checked; `call` is replied to, now or later;
 * manager-join.c). */
int manager_join(Manager *m, sd_bus_message *call, const char *token, const char *name, uint16_t listen_port,
                 sd_bus_error *error);
int manager_leave(Manager *m, sd_bus_message *call, const char *network, sd_bus_error *error);
int manager_set_connected(Manager *m, const char *network, bool connected, sd_bus_error *error);

/* Asks the STUN servers (if any are configured) for the public address; a new answer is reported
 * with a check-in (public-ip.c). */
void manager_public_ip_refresh(Manager *m);
void manager_public_ip_stop(Manager *m);

/* Makes the host's forwarding (sysctls, our nftables table) and internet gateway routing rules
 * match the roles of all joined networks (network-roles.c). */
void manager_sync_forwarding(Manager *m);
/* Asks the server to route this host's internet traffic in `network` through the node `gateway`
 * ("" = none); replies to `call` once the new state is applied (network-roles.c). */
int manager_set_internet_gateway(Manager *m, sd_bus_message *call, const char *network, const char *gateway,
                                 sd_bus_error *error);

/* Transport security (docs/netclientd.md, "TLS"): refuses plain http:// or mqtt:// off loopback
 * unless Insecure=yes; sets the API client's trust from the saved server (or none); the broker's
 * trust as the server described it at registration. */
int manager_check_plain(Manager *m, const char *what, const char *url, GError **error);
void manager_update_api_trust(Manager *m);
int manager_broker_trust(Manager *m, NmTlsTrust *ret, GError **error);

/* D-Bus (manager-bus.c). */
int manager_bus_register(Manager *m);
void manager_emit_join_progress(Manager *m, const char *step);

/* Shared by the Manager's own files (defined in manager.c unless another is named); nothing else
 * calls these. */
/* Adds a network the server gave us (takes `desired`) and exports it; NULL when that failed. */
Network *manager_add_network(Manager *m, NmNetworkState *desired);
/* Unexports and frees the network, deleting its link when `teardown`. */
void manager_remove_network(Manager *m, Network *n, bool teardown);
/* Applies a network to its link, then its DNS and the forwarding rules; a failure is logged and
 * retried from the retry timer, not fatal. */
void manager_apply_network(Manager *m, Network *n);
/* manager_sync_forwarding(), retried from the retry timer when it failed. */
void manager_apply_forwarding(Manager *m);
/* Arms the retry timer (5 s) unless it is pending: it applies networks whose last apply failed. */
void manager_schedule_retry(Manager *m);
/* Emits PropertiesChanged for HostId, Server and PublicKey. */
void manager_emit_registration_changed(Manager *m);
/* Removes every network (deleting the links when `teardown`), the server, its credentials and
 * the saved state; the host's keys stay (manager-join.c). */
void manager_forget_server(Manager *m, bool teardown);
/* "<api>/api/v1<path>", with the saved server's API when `api` is NULL. */
char *manager_api_url(Manager *m, const char *api, const char *path);
/* The host's addresses as reported to the server (up, non-loopback links other than ours;
 * manager-sync.c). */
char **manager_host_endpoints(Manager *m);
/* The API client trusts this pin, else a CA (CAFile=, or the system's). */
void manager_set_api_trust(Manager *m, bool has_pin, const NmTlsPin *pin);
/* (Re)makes the broker connection for the saved server, when it has a broker; its messages go to
 * manager_handle_message(), and each new connection is followed by a pull and a check-in
 * (manager-sync.c). */
void manager_start_broker(Manager *m);
/* An empty list of Pull() calls (sd_bus_message*, unreferenced when removed; manager-sync.c). */
GPtrArray *manager_pull_waiters_new(void);
/* Cancels the job's request and frees it without replying (manager-join.c). */
void join_job_free(JoinJob *j);
