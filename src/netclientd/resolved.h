/* Registers each mesh link's DNS with systemd-resolved over D-Bus (SetLinkDNS, SetLinkDomains with
 * a routing domain, SetLinkDefaultRoute(false), and plain DNS without DNSSEC, DNS-over-TLS, LLMNR
 * or mDNS on that link), falls back to systemd-networkd's per-link calls when resolved says the
 * link is managed (LinkBusy), re-applies everything when resolved or networkd restarts, and
 * reverts on removal. Never starts, stops or reconfigures resolved beyond our own links. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "cidr.h"

typedef struct Resolved Resolved;

typedef enum ResolvedLinkState {
        RESOLVED_LINK_PENDING,  /* calls in flight, the link not known to resolved yet, or resolved not
                                   running */
        RESOLVED_LINK_RESOLVED, /* applied through org.freedesktop.resolve1 */
        RESOLVED_LINK_NETWORKD, /* resolved said LinkBusy; applied through org.freedesktop.network1 */
        RESOLVED_LINK_FAILED,   /* refused (e.g. not authorised); the last error is kept */
        _RESOLVED_LINK_STATE_MAX,
} ResolvedLinkState;

/* "pending", "resolved", "networkd", "failed". */
const char *resolved_link_state_to_string(ResolvedLinkState s);

/* Called whenever a link's state changes (from the bus callbacks). */
typedef void (*ResolvedStateHandler)(Resolved *r, int ifindex, ResolvedLinkState state, void *userdata);

/* `bus` is the system bus, attached to an event loop (retries use its timers). Watches resolved's
 * and networkd's names so that a restart re-applies the links. */
int resolved_new(sd_bus *bus, ResolvedStateHandler handler, void *userdata, Resolved **ret);
/* Forgets every link without reverting it (the links and their settings outlive the daemon). */
Resolved *resolved_free(Resolved *r);

typedef struct ResolvedServer {
        int family;
        NmInAddr addr;
} ResolvedServer;

/* Desired DNS settings of one link: `servers` (1-2: our responder's addresses on it) at `port`,
 * and `domains` (NULL-terminated, at least one), the routing domains without the "~": the mesh's
 * zone ("office.nm.internal") and the match domains of the network's nameservers, which our
 * responder forwards. Applied asynchronously now and again whenever resolved (or networkd)
 * reappears; a link resolved does not know yet is retried. Replaces earlier settings of the same
 * link. Returns 0 or -EINVAL. */
int resolved_set_link(Resolved *r, int ifindex, const ResolvedServer *servers, size_t n_servers,
                      uint16_t port, const char *const *domains);
/* Forgets the link and asks resolved (or networkd) to revert it. Returns 0 or -ENOENT. */
int resolved_revert_link(Resolved *r, int ifindex);
/* Forgets the link without reverting it. */
void resolved_forget_link(Resolved *r, int ifindex);

/* The link's state, and the last error when failed; RESOLVED_LINK_FAILED for an unknown link. */
ResolvedLinkState resolved_link_state(Resolved *r, int ifindex, const char **error_message);
