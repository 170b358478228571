/* What a desktop menu needs from netclientd in few round trips: GetStatus() (everything a menu
 * shows), GetPeers(network, since) (a network's peers as an array, or only what changed since a
 * serial) and the coalesced PeersChanged signal, so that an applet never walks thousands of peer
 * objects. The peers' change journal lives here; peer.c and the bus files call the hooks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "manager.h"

/* WireGuard's REJECT_AFTER_TIME: no session outlives it, so a peer whose last handshake is older
 * cannot be talked to without a new one. "Online" = a handshake within this window. */
#define STATUS_ONLINE_USEC (180ULL * 1000000ULL)
/* PeersChanged is sent at most this often per network (a snapshot of 1000 peers is one signal). */
#define STATUS_SIGNAL_DELAY_USEC (250ULL * 1000ULL)
/* Removed peers remembered per network for GetPeers; an older `since` gets the whole list. */
#define STATUS_MAX_TOMBSTONES 1024

typedef struct Status Status;

int status_new(Manager *m, Status **ret);
Status *status_free(Status *s);

/* The newest serial given out (the `since` that returns nothing new). */
uint64_t status_serial(Status *s);

/* Hooks: a network appeared on the bus or went; a peer appeared, changed what GetPeers shows of it,
 * or went; a network was connected or disconnected (its peers' online state follows). All accept
 * a manager without a Status (no bus). */
void status_network_added(Network *n);
void status_network_removed(Network *n);
void status_peer_changed(Peer *p);
void status_peer_removed(Peer *p);
/* Re-evaluates the peer's online state (after new statistics); a change counts as a change. */
void status_peer_refresh_online(Peer *p);
void status_network_connection_changed(Network *n);

/* org.netmaker.Client.GetStatus() -> a{sv} and GetPeers(s network, t since) -> (t serial,
 * b complete, aa{sv} peers, as removed); in manager_vtable (manager-bus.c). */
int status_method_get_status(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int status_method_get_peers(sd_bus_message *msg, void *userdata, sd_bus_error *error);
