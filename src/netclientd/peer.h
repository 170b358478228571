/* A peer of one network as exported on the bus: what the server says about it (name, key,
 * endpoint, allowed IPs) and what the device says (latest handshake, traffic counters). */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "network.h"
#include "proto.h"
#include "wg.h"

struct Peer {
        Network *network;
        NmPeer *desired;
        char *path;
        sd_bus_slot *slot;
        bool exported;
        /* From the device: */
        char *live_endpoint;            /* NULL until the device reports one */
        uint64_t latest_handshake_usec; /* since the epoch; 0 = never */
        uint64_t rx_bytes;
        uint64_t tx_bytes;
        /* For GetPeers (status-bus.c): */
        uint64_t change_serial; /* when what GetPeers shows of it last changed */
        bool online;            /* connected, and a handshake within STATUS_ONLINE_USEC */
};

/* Copies `desired`; exports the object when the manager has a bus. */
int peer_new(Network *n, const NmPeer *desired, Peer **ret);
Peer *peer_free(Peer *p);
/* Replaces the server's view of the peer; emits PropertiesChanged for what changed. */
void peer_set_desired(Peer *p, const NmPeer *desired);
/* Takes the device's view; emits PropertiesChanged for what changed. */
void peer_update_stats(Peer *p, const WgPeer *wp);
/* The endpoint to show: the device's when it knows one, else the server's ("" when none). */
const char *peer_endpoint(Peer *p);

/* peer-bus.c */
int peer_bus_export(Peer *p);
void peer_bus_unexport(Peer *p);
