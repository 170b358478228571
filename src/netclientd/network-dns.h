/* Mesh DNS of one joined network: its zone "<network>.<dns_domain>" (the peers' names, this host's
 * own name and the network's custom names, kept current on every change), the responder's
 * listeners on the node's mesh addresses, and the link's registration with systemd-resolved. The
 * Manager owns the one DnsServer and the Resolved client that every network shares. */
#pragma once

#include "dns-packet.h"
#include "manager.h"
#include "network.h"

/* The Manager's part: the responder and the resolved client (only with a bus and a backend; in
 * state-only unit tests networks keep their zones without sockets). */
int manager_dns_start(Manager *m);
void manager_dns_stop(Manager *m);

typedef struct NetworkDns NetworkDns;
NetworkDns *network_dns_free(NetworkDns *d);

/* Makes the zone, the listeners and the registration match the network's desired state; called
 * after every change of the network (messages, snapshots, Connect/Disconnect, retries). Cheap
 * when nothing changed. */
void network_dns_update(Network *n);
/* The network goes (leave, network-left, host-deleted): listeners closed, registration reverted. */
void network_dns_stop(Network *n);

/* "office.nm.internal", or "" when the network has no DNS domain. */
const char *network_dns_zone_name(Network *n);
/* "off", "pending", "resolved", "networkd" or "failed" (docs/dbus-api.md). */
const char *network_dns_state(Network *n);
/* The zone as answered now (NULL before the first update). */
const DnsZone *network_dns_zone(Network *n);
