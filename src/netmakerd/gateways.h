/* Checks of what gateways and external clients add to their peers' allowed IPs (docs/protocol.md
 * §4.2): every range a WireGuard link routes must be unique on it, so egress ranges and external
 * clients' extra ranges may overlap neither the network's own ranges nor each other. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "peers.h"

#define GATEWAY_MAX_RANGES 64

/* Parses `ranges` (named `member` in messages) as canonical CIDRs for the view's network and
 * returns them in canonical text: 400 for a malformed range, host bits set, 0.0.0.0/0 or ::/0,
 * duplicates or ranges overlapping each other; 409 for a range overlapping the network's ranges,
 * another node's egress ranges or another external client's extra ranges. `self_node` and
 * `self_client` (either may be NULL) are left out of the comparison: the ranges replace theirs. */
int gateways_check_ranges(const PeerView *v, const char *member, char **ranges, const char *self_node,
                          const char *self_client, char ***ret, GError **error);
