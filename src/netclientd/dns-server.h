/* The mesh DNS responder's sockets: UDP and TCP listeners on the node's mesh addresses, driven by
 * sd-event, each answering from the DnsZone of its network, which the agent keeps current. */
#pragma once

#include <systemd/sd-event.h>

#include "cidr.h"
#include "dns-forward.h"
#include "dns-packet.h"

typedef struct DnsServer DnsServer;

int dns_server_new(sd_event *event, DnsServer **ret);
DnsServer *dns_server_free(DnsServer *s);
/* Adds a UDP and a TCP listener on addr:port that answer from `zone` (borrowed: the caller keeps
 * it alive until dns_server_unlisten() and may change it at any time between events), so each
 * network's address answers only that network's names. Names outside the zone are forwarded for
 * the clients `scope` allows (borrowed like the zone; NULL: none) once forwarding is enabled, and
 * refused for everyone else. The address need not be configured yet (IP_FREEBIND), so this can run
 * before the link is up. Returns 0, -EEXIST, or a negative errno. */
int dns_server_listen(DnsServer *s, int family, const NmInAddr *addr, uint16_t port, const DnsZone *zone,
                      const DnsForwardScope *scope);
/* Turns on forwarding (dns-forward.h) for the listeners' scopes. Returns 0 or a negative errno. */
int dns_server_enable_forwarding(DnsServer *s, const DnsForwarderConfig *config);
/* The forwarder, or NULL while forwarding is off. */
DnsForwarder *dns_server_get_forwarder(DnsServer *s);
/* Removes the listeners on addr (all ports) and closes their TCP connections. Returns 0 or -ENOENT. */
int dns_server_unlisten(DnsServer *s, int family, const NmInAddr *addr);
/* The port actually bound by the most recent listen (for port 0 in tests). */
uint16_t dns_server_last_port(DnsServer *s);

typedef struct DnsServerStats {
        guint64 queries;
        guint64 answered;
        guint64 dropped;
        guint64 forwarded; /* handed to the forwarder (answered from its cache, refused or asked upstream) */
        guint tcp_connections;
} DnsServerStats;
void dns_server_get_stats(DnsServer *s, DnsServerStats *ret);
