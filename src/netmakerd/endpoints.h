/* The endpoint one host uses for another (docs/protocol.md §4.5), chosen per pair from what both
 * reported: their own addresses and the public address the outside sees them at. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "store.h"

/* The "ip:port" at which `viewer` reaches `peer`'s WireGuard port `port`, or NULL when `peer`
 * reported no address. A static endpoint the admin set for `peer` wins over everything below.
 * Two hosts that reported the same public address sit behind the same NAT: the peer's first
 * reported address on a subnet the viewer also has an address in (the same /24 for IPv4, /64 for
 * IPv6: reports carry no prefix lengths), else its first reported address. Otherwise the peer's
 * public address when it reported one, else its first reported address. `viewer` NULL stands for
 * someone outside (an external client). */
char *endpoint_choose(const Host *viewer, const Host *peer, guint16 port);
/* Whether two hosts reported the same public address. */
bool endpoint_same_nat(const Host *a, const Host *b);
