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
        /* For check-ins and the device's roaming (network.c): */
        uint64_t created_usec;  /* CLOCK_MONOTONIC: since when this host has had the peer */
        char *applied_endpoint; /* the server's endpoint when we last wrote the peer; NULL: not yet */
        int reported_class;     /* PeerClass at the last check-in */
        /* For GetPeers (status-bus.c): */
        uint64_t change_serial; /* when what GetPeers shows of it last changed */
        bool online;            /* connected, and a handshake within STATUS_ONLINE_USEC */
};

/* What a check-in says about a peer, to check in early when it changes. */
typedef enum PeerClass {
        PEER_CLASS_NONE,    /* not reported yet */
        PEER_CLASS_SESSION, /* a handshake within WireGuard's session lifetime (180 s) */
        PEER_CLASS_NO_SESSION,
        PEER_CLASS_DOWN_LONG, /* no session for the network's failover_after or longer */
} PeerClass;

/* Whether to keep the endpoint the device has for a peer (WireGuard roams it to wherever the peer's
 * packets come from) instead of writing the server's `desired` one: yes while the server says what
 * we last wrote (`applied`), or, when it says something new, while the device has a session
 * (a handshake at `handshake_sec`, within 180 s of `now_sec`) at an endpoint other than `applied`
 * (WireGuard roamed away from it: the peer's own packets showed the way). Without `applied` (after a
 * start): while there is a session. */
bool peer_keep_device_endpoint(const char *applied, const char *desired, const WgEndpoint *device,
                               int64_t handshake_sec, int64_t now_sec);
/* The peer's status for a check-in as of `now_usec` (realtime) and `mono_usec` (monotonic). */
void peer_status(Peer *p, uint64_t now_usec, uint64_t mono_usec, NmPeerStatus *ret);
/* Its class, given the network's failover_after (0: none). */
PeerClass peer_class(const NmPeerStatus *st, unsigned failover_after);

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
