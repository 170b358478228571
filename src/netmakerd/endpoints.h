/* The endpoint one node uses for another (docs/protocol.md §4.5), chosen per pair from what the
 * server knows of both: the endpoint its observer saw each node's WireGuard packets come from, the
 * public address STUN told each host, the source address of each host's HTTPS requests, and the
 * addresses each host reported. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "store.h"

/* The "ip:port" at which `viewer` reaches `peer` (its node's WireGuard port), or NULL when nothing
 * is known. A static endpoint the admin set for `peer`'s host wins over everything below: that
 * address with the node's listen port. Two nodes that the outside sees at the same address
 * (observed, else STUN) sit behind the same NAT: the peer's first reported address on a subnet the
 * viewer also has an address in (the same /24 for IPv4, /64 for IPv6: reports carry no prefix
 * lengths), else its first reported address. Otherwise, in this order: the peer's observed
 * endpoint (address and NAT-mapped port), its STUN public address, the source address of its HTTPS
 * requests, its first reported address, the last three with its listen port. `viewer` NULL stands
 * for someone outside. */
char *endpoint_choose(const Member *viewer, const Member *peer);
/* For a configuration file that outlives NAT mappings (an external client's): the gateway's static
 * endpoint, else its STUN public address, else its HTTPS source address, else its first reported
 * address, with its listen port; NULL when none is known. */
char *endpoint_for_config(const Member *gateway);
/* Whether the outside sees both nodes at the same address. */
bool endpoint_same_nat(const Member *a, const Member *b);
/* The address part of an "ip:port" (canonical), or NULL. */
char *endpoint_address(const char *endpoint);
