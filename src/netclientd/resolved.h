/* Registers each mesh link's DNS with systemd-resolved over D-Bus (SetLinkDNS, SetLinkDomains with
 * a routing domain, SetLinkDefaultRoute(false)), falls back to systemd-networkd's per-link calls
 * when resolved says the link is managed (LinkBusy), re-applies everything when resolved
 * restarts, and reverts on removal. Never starts, stops or reconfigures resolved itself. */
#pragma once

#include <systemd/sd-bus.h>

#include "cidr.h"

typedef struct Resolved Resolved;

/* `bus` is the system bus. Watches resolved's name so a restart re-applies the links. */
int resolved_new(sd_bus *bus, Resolved **ret);
Resolved *resolved_free(Resolved *r);

/* Desired DNS settings of one link: `dns` is the address our responder listens on, `domain` the
 * routing domain without the "~" ("office.nm.internal"). Applied asynchronously now and again
 * whenever resolved (re)appears. Replaces earlier settings of the same link. */
int resolved_set_link(Resolved *r, int ifindex, int family, const NmInAddr *dns, const char *domain);
/* Forgets the link and asks resolved (or networkd) to revert it. Returns 0 or -ENOENT. */
int resolved_revert_link(Resolved *r, int ifindex);

typedef enum ResolvedLinkState {
        RESOLVED_LINK_PENDING,     /* calls in flight, or resolved not running */
        RESOLVED_LINK_RESOLVED,    /* applied through org.freedesktop.resolve1 */
        RESOLVED_LINK_NETWORKD,    /* resolved said LinkBusy; applied through org.freedesktop.network1 */
        RESOLVED_LINK_FAILED,      /* both refused; the last error is kept */
} ResolvedLinkState;

ResolvedLinkState resolved_link_state(Resolved *r, int ifindex, const char **error_message);
