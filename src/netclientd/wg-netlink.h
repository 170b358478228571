/* The kernel backend's message building and parsing, exposed so tests and benchmarks can run them
 * without a kernel. */
#pragma once

#include <netlink/msg.h>

#include "wg.h"

/* The size each WG_CMD_SET_DEVICE message is kept under: one page, at most 8 KiB, which is what
 * the kernel's generic netlink receive path and the other WireGuard tools are sized for. */
size_t wg_netlink_message_budget(void);

/* Builds the WG_CMD_SET_DEVICE messages that write `change` for the generic netlink family
 * `family_id`, each at most `budget` bytes (0 = wg_netlink_message_budget()):
 *   - every message names the device (WGDEVICE_A_IFNAME, or IFINDEX when there is no name);
 *   - only the first carries the device attributes (private key, port, fwmark, flags);
 *   - a peer that does not fit starts the next message;
 *   - a peer whose allowed IPs overflow continues in the next message with only its public key,
 *     WGPEER_F_UPDATE_ONLY (the first part created it; never re-create a peer someone removed in
 *     between) and the remaining allowed IPs; REPLACE_ALLOWEDIPS, endpoint, keepalive and
 *     preshared key go only in a peer's first part.
 * On success *ret holds the messages (struct nl_msg *, freed with the array) and 0 is returned;
 * -EMSGSIZE when the budget cannot hold one peer, -EINVAL for an invalid change. */
int wg_netlink_build_set(const WgDevice *change, int family_id, size_t budget, GPtrArray **ret,
                         GError **error);

/* Adds the contents of one WG_CMD_GET_DEVICE reply (a whole message: nlmsg_len bytes) to `d`.
 * Peers repeated across the parts of a dump (the kernel continues a peer's allowed IPs in the next
 * part) are merged through `peers_by_key` (NmKey * → WgPeer *, owned by d), which must live for the
 * whole dump. Returns 0 or -EBADMSG for a malformed message. */
int wg_netlink_parse_device(const struct nlmsghdr *h, WgDevice *d, GHashTable *peers_by_key);

/* A GHashTable suitable for wg_netlink_parse_device() (keys not owned). */
GHashTable *wg_peer_key_table_new(void);
