/* Mesh address and port allocation: the lowest free address of a network's range (IPv4 without
 * the network and broadcast addresses, IPv6 from ::1 upward in the low 64 bits), and a WireGuard
 * listen port that the host does not already use in another network. */
#pragma once

#include <stdint.h>
#include <glib.h>

#include "cidr.h"
#include "store.h"

/* How many addresses a range offers nodes. */
uint64_t ipam_capacity(const NmPrefix *range);

/* The lowest free address of `range` (text, without prefix length) given the addresses in use.
 * -ENOSPC when none is left. Addresses outside the range are ignored. */
int ipam_allocate(const NmPrefix *range, const char *const *used, size_t n_used, char **ret);
/* The highest free address instead (external clients take theirs from the top of the range, so
 * they stay clear of the nodes). */
int ipam_allocate_top(const NmPrefix *range, const char *const *used, size_t n_used, char **ret);

/* The lowest port from `wanted` upward (wrapping to 1024) that is not in `used`. */
guint16 ipam_pick_port(guint16 wanted, const guint16 *used, size_t n_used);

/* Gives `node` (host_id and network set) its addresses and listen port from the store, inside
 * the caller's transaction: the port is the host's static port (docs/protocol.md §2.4) or else the
 * network's, or the next one the host does not use yet. NM_ERROR_EXHAUSTED (-ENOSPC) names the
 * network and its range. */
int ipam_assign(Store *s, const Network *network, Node *node, GError **error);
/* Gives every node of host `h` its port again, in the order of their ports now (the order they
 * joined in), as ipam_assign() would have with the host's current static port: the host's links
 * listen on static_listen_port and the ports after it, or (without one) on their networks' ports.
 * Writes the ports that change; *ret_changed (may be NULL) gets how many did. */
int ipam_reassign_ports(Store *s, const Host *h, guint *ret_changed, GError **error);
