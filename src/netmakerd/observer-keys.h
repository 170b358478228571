/* The server's WireGuard key pair per network, for the endpoint observer: each network has its own
 * (a host has one key but one link, and port, per network, so the key a handshake was made for tells
 * which link sent it), derived from one stored secret so that nothing per network is stored and
 * every netmakerd sharing the database derives the same keys. */
#pragma once

#include <stdint.h>
#include <glib.h>

#include "wg-initiation.h"

#define OBSERVER_SECRET_LEN 32

typedef struct ObserverKeys ObserverKeys;

ObserverKeys *observer_keys_new(const uint8_t secret[OBSERVER_SECRET_LEN]);
void observer_keys_free(ObserverKeys *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ObserverKeys, observer_keys_free)
/* The network's responder (key pair and what every initiation to it shares), derived at first use:
 * private key = BLAKE2b-256 keyed with the secret over "netmakerd observer v1\0" and the network's
 * name, clamped for X25519. Owned by `k`; NULL only for a secret that gives an unusable key. */
const WgResponder *observer_keys_get(ObserverKeys *k, const char *network);
/* Forgets a network's keys (the network was deleted). */
void observer_keys_forget(ObserverKeys *k, const char *network);
