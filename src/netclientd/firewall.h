/* Forwarding for the roles of this host's nodes: the IP forwarding switches and one nftables table
 * of our own, "inet netmaker", made from what every joined network needs and replaced as a whole in
 * one transaction. No other table, chain or policy is ever read or changed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "cidr.h"

#define FIREWALL_TABLE_FAMILY "inet"
#define FIREWALL_TABLE_NAME   "netmaker"

/* What one network forwards (a network without any of these is left out). */
typedef struct FirewallNetwork {
        const char *ifname;    /* its WireGuard link */
        GArray *mesh_ranges;   /* of NmPrefix: the network's own ranges (canonical) */
        GArray *egress_ranges; /* of NmPrefix: ranges this node routes for the mesh; may be empty */
        bool egress_nat;       /* masquerade what goes from the mesh to the egress ranges */
        bool internet_gateway; /* forward (and masquerade) anything from the mesh to other links */
        bool hairpin;          /* relay or ingress: forward between peers of the same link */
        /* Sources an internet gateway does not forward to the internet: the external clients
         * (their allowed IPs) that are not full-tunnel clients; may be NULL. */
        GArray *no_internet; /* of NmPrefix */
} FirewallNetwork;

/* True when the network has anything for the firewall to do. */
bool firewall_network_forwards(const FirewallNetwork *n);

/* The nftables script that makes our table exactly what `nets` need: it adds the table (so the
 * delete that follows never fails), deletes it and defines it again, all of which nft runs as one
 * transaction, so there is never a moment without rules. With nothing to forward (n_nets == 0, or
 * no network that forwards), NULL: the table is to be removed. Pure (tests use it). */
char *firewall_render(const FirewallNetwork *nets, size_t n_nets);

typedef struct Firewall Firewall;

int firewall_new(Firewall **ret);
/* Frees the context; leaves the table alone (forwarding outlives a restart of the daemon). */
Firewall *firewall_free(Firewall *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Firewall, firewall_free)

/* Makes our table match `nets` (removes it when nothing forwards). Does nothing when the result is
 * what was applied last. Returns 1 when something changed, 0 when not, or a negative errno with
 * nft's message in `error`. */
int firewall_apply(Firewall *f, const FirewallNetwork *nets, size_t n_nets, GError **error);
/* Removes our table if it exists: 1 when it did, 0 when there was none. */
int firewall_remove(Firewall *f, GError **error);

/* Turns on IP forwarding for a family (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) when it
 * is off. Returns 1 when it was switched on, 0 when it was on already, or a negative errno. It is
 * never switched off again: other software may rely on it by then. */
int firewall_enable_forwarding(int family);

/* Writes a value to a file under /proc/sys ("net/ipv4/ip_forward") unless it already holds it.
 * Returns 1 when written, 0 when it already had the value, or a negative errno. */
int sysctl_write(const char *path, const char *value);
