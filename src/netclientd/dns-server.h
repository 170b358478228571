/* The mesh DNS responder's sockets: UDP and TCP listeners on the node's mesh addresses, driven by
 * sd-event, answering from a DnsZone the agent keeps current. */
#pragma once

#include <systemd/sd-event.h>

#include "cidr.h"
#include "dns-packet.h"

typedef struct DnsServer DnsServer;

/* `zone` is borrowed: the caller keeps it alive and may change it at any time between events. */
int dns_server_new(sd_event *event, const DnsZone *zone, DnsServer **ret);
DnsServer *dns_server_free(DnsServer *s);
/* Adds a UDP and a TCP listener on addr:port. The address need not be configured yet
 * (IP_FREEBIND), so this can run before the link is up. Returns 0, -EEXIST, or a negative errno. */
int dns_server_listen(DnsServer *s, int family, const NmInAddr *addr, uint16_t port);
/* Removes the listeners on addr (all ports). Returns 0 or -ENOENT. */
int dns_server_unlisten(DnsServer *s, int family, const NmInAddr *addr);
/* The port actually bound by the most recent listen (for port 0 in tests). */
uint16_t dns_server_last_port(DnsServer *s);

typedef struct DnsServerStats {
        guint64 queries;
        guint64 answered;
        guint64 dropped;
        guint tcp_connections;
} DnsServerStats;
void dns_server_get_stats(DnsServer *s, DnsServerStats *ret);
