/* netmakerd's UDP port: the endpoint observer and the STUN responder. Every host keeps the server
 * as a keepalive-only WireGuard peer of each of its links; WireGuard keeps sending handshake
 * initiations to a peer that never answers, so the observer reads them (never answering) and learns
 * the address and port each link's packets arrive from: the mapping the host's NAT made for the
 * WireGuard socket itself, which becomes the node's observed endpoint (docs/protocol.md §4.5). The
 * same port answers STUN Binding requests (RFC 5389) that are at least as large as the answer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"

typedef struct Manager Manager;
typedef struct Observer Observer;

typedef struct ObserverSettings {
        int fd; /* a datagram socket from systemd (taken over), or -1: bind family/address/port */
        int family;
        const NmInAddr *address;
        uint16_t port;
        bool stun;
        unsigned rate_burst; /* datagrams worth work per source address and period; 0: no limit */
        unsigned rate_period_sec;
        unsigned rate_sources;
} ObserverSettings;

typedef struct ObserverStats {
        uint64_t initiations;  /* datagrams shaped like a handshake initiation */
        uint64_t accepted;     /* opened, from a known node, newer than its last one */
        uint64_t moved;        /* accepted from a new endpoint, which was stored */
        uint64_t replayed;     /* a timestamp not newer than the node's last one */
        uint64_t unknown;      /* for no network's key, not opening, or of no node */
        uint64_t rate_limited; /* dropped by the per-source limit or the global budget */
        uint64_t stun_answers;
        uint64_t ignored; /* anything else: never answered */
} ObserverStats;

int observer_new(Manager *m, const ObserverSettings *s, Observer **ret);
void observer_free(Observer *o);
/* The bound address and port. */
int observer_family(Observer *o);
const NmInAddr *observer_address(Observer *o);
uint16_t observer_port(Observer *o);
bool observer_socket_activated(Observer *o);
/* A network was created or deleted: the keys are looked up again before the next packet. */
void observer_networks_changed(Observer *o);
const ObserverStats *observer_stats(Observer *o);
