/* The neutral model of a WireGuard device and its peers, shared by the diff and every backend. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <glib.h>

#include "cidr.h"
#include "keys.h"

/* A peer's UDP endpoint: sa.sa_family is AF_UNSPEC when there is none. */
typedef union WgEndpoint {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} WgEndpoint;

/* Device flags. In a device read from a backend the HAS_* bits say which fields it reported; in a
 * change set they say which fields to write. REPLACE_PEERS drops every peer not in the set: only
 * for a first configuration, never for an update (it resets every session). */
typedef enum WgDeviceFlags {
        WG_DEVICE_REPLACE_PEERS = 1u << 0,
        WG_DEVICE_HAS_PRIVATE_KEY = 1u << 1,
        WG_DEVICE_HAS_PUBLIC_KEY = 1u << 2,
        WG_DEVICE_HAS_LISTEN_PORT = 1u << 3,
        WG_DEVICE_HAS_FWMARK = 1u << 4,
} WgDeviceFlags;

/* Peer flags, with the same has/replace/remove meaning as the device flags.
 * REMOVE_ME: delete this peer (nothing else of it is sent).
 * REPLACE_ALLOWEDIPS: the peer's allowed IPs become exactly the list; without it they are added.
 * UPDATE_ONLY: change the peer only if it exists; never create it. */
typedef enum WgPeerFlags {
        WG_PEER_REMOVE_ME = 1u << 0,
        WG_PEER_REPLACE_ALLOWEDIPS = 1u << 1,
        WG_PEER_UPDATE_ONLY = 1u << 2,
        WG_PEER_HAS_PRESHARED_KEY = 1u << 3, /* an all-zero key removes it */
        WG_PEER_HAS_ENDPOINT = 1u << 4,
        WG_PEER_HAS_PERSISTENT_KEEPALIVE = 1u << 5,
} WgPeerFlags;

typedef struct WgPeer {
        NmKey public_key;
        unsigned flags;      /* WgPeerFlags */
        NmKey preshared_key; /* a secret: wiped on free, never logged */
        WgEndpoint endpoint;
        uint16_t persistent_keepalive; /* seconds; 0 = off */
        GArray *allowed_ips;           /* of NmPrefix, never NULL */

        /* Read-only state reported by a backend; ignored when writing. */
        struct timespec last_handshake; /* {0, 0} = never */
        uint64_t rx_bytes;
        uint64_t tx_bytes;
        uint32_t protocol_version; /* 0 = not reported */
} WgPeer;

typedef struct WgDevice {
        char ifname[IFNAMSIZ];
        uint32_t ifindex;  /* 0 when unknown; backends address devices by name */
        unsigned flags;    /* WgDeviceFlags */
        NmKey private_key; /* a secret: wiped on free, never logged */
        NmKey public_key;
        uint16_t listen_port;
        uint32_t fwmark;  /* 0 = off */
        GPtrArray *peers; /* of WgPeer, owned, never NULL */
} WgDevice;

WgPeer *wg_peer_new(const NmKey *public_key);
WgPeer *wg_peer_copy(const WgPeer *p);
void wg_peer_free(WgPeer *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WgPeer, wg_peer_free)

void wg_peer_add_allowed_ip(WgPeer *p, const NmPrefix *prefix);
/* Parses "10.0.0.0/24" or "fd00::/64" and adds it. Returns 0 or -EINVAL (with the message in error). */
int wg_peer_add_allowed_ip_string(WgPeer *p, const char *s, GError **error);
/* Sets the endpoint and its HAS flag. */
void wg_peer_set_endpoint(WgPeer *p, const WgEndpoint *e);
void wg_peer_set_preshared_key(WgPeer *p, const NmKey *psk);
void wg_peer_set_persistent_keepalive(WgPeer *p, uint16_t seconds);

/* ifname may be NULL (set it later); a name longer than IFNAMSIZ-1 is truncated: check with
 * wg_ifname_valid() first. */
WgDevice *wg_device_new(const char *ifname);
WgDevice *wg_device_copy(const WgDevice *d);
void wg_device_free(WgDevice *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WgDevice, wg_device_free)

/* Sets the private key and its HAS flag, and derives the public key. Returns 0 or -EINVAL. */
int wg_device_set_private_key(WgDevice *d, const NmKey *key);
void wg_device_set_listen_port(WgDevice *d, uint16_t port);
void wg_device_set_fwmark(WgDevice *d, uint32_t fwmark);
/* Takes ownership of the peer; returns it. */
WgPeer *wg_device_add_peer(WgDevice *d, WgPeer *p);
WgPeer *wg_device_find_peer(const WgDevice *d, const NmKey *public_key);
/* True when the device carries nothing to write (no device attribute, no peer, no flag). */
bool wg_device_is_empty(const WgDevice *d);
/* Total number of allowed IPs over all peers. */
size_t wg_device_count_allowed_ips(const WgDevice *d);

/* 1-15 characters, none of '/', ':' or whitespace, not "." or "..". */
bool wg_ifname_valid(const char *s, GError **error);

/* "198.18.0.2:51820", "[fd00::2]:51820", "[fe80::1%eth0]:51820". Returns 0 or -EINVAL. */
int wg_endpoint_parse(const char *s, WgEndpoint *ret, GError **error);
/* The same forms; "" for no endpoint. g_free() the result. */
char *wg_endpoint_to_string(const WgEndpoint *e);
bool wg_endpoint_equal(const WgEndpoint *a, const WgEndpoint *b);
/* From/to the NmInAddr form used by the protocol messages. */
void wg_endpoint_from_addr(WgEndpoint *ret, int family, const NmInAddr *addr, uint16_t port);

/* Set equality of two lists of NmPrefix, ignoring order, duplicates and host bits (the kernel
 * masks host bits off, so "10.0.0.1/24" and "10.0.0.0/24" are the same allowed IP). */
bool wg_allowed_ips_equal(const GArray *a, const GArray *b);

/* Computes the changes that make `current` (what a backend reported; NULL for a new device) into
 * `desired`, as a change set for WgBackend.set():
 *   - device attributes only when desired has them (HAS_*) and they differ;
 *   - peers missing from current are added with all their allowed IPs;
 *   - peers in both get UPDATE_ONLY and only the fields that differ (endpoint and keepalive only
 *     when desired has them, the preshared key when desired has one (zero = none), allowed IPs
 *     replaced only when the sets differ); unchanged peers are left out entirely;
 *   - peers missing from desired get REMOVE_ME.
 * Never sets REPLACE_PEERS. Desired peers are authoritative for their allowed IPs.
 * Returns 0 (with *ret always set, possibly an empty change set) or a negative errno. */
int wg_device_diff(const WgDevice *current, const WgDevice *desired, WgDevice **ret);
