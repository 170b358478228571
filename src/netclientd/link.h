/* Network interfaces over rtnetlink (libnl-route): WireGuard links, MTU, up/down, addresses,
 * routes, the host's own addresses (for endpoint reports) and a monitor for address changes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include <glib.h>
#include <netlink/netlink.h>
#include <systemd/sd-event.h>

#include "cidr.h"

/* Every function returns 0 (or a positive value where said) or a negative errno; interfaces are
 * named by ifname and looked up in the caller's network namespace. They do not log above debug
 * (the kernel's extended-ACK text, when there is one, is logged at debug level). */

/* A NETLINK_ROUTE socket for the functions below (nl_socket_free() it). */
int link_rtnl_open(struct nl_sock **ret);

/* The interface index, or -ENODEV. */
int link_get_ifindex(const char *ifname);
/* The link kind ("wireguard", "veth", ...; "" for links without one, e.g. tun). g_free() it. */
int link_get_kind(struct nl_sock *rtnl, const char *ifname, char **ret);

/* Creates a kernel WireGuard link. -EEXIST when the name is taken; -EOPNOTSUPP when the kernel has
 * no WireGuard. */
int link_create_wireguard(struct nl_sock *rtnl, const char *ifname);
/* Deletes any link by name. -ENODEV when there is none. */
int link_delete(struct nl_sock *rtnl, const char *ifname);
int link_set_mtu(struct nl_sock *rtnl, const char *ifname, uint32_t mtu);
int link_set_up(struct nl_sock *rtnl, const char *ifname, bool up);

/* Adds an interface address ("10.99.0.1/24": the address with the prefix length of its subnet,
 * which also installs the subnet route). Adding an address that is already there is not an error. */
int link_address_add(struct nl_sock *rtnl, const char *ifname, const NmPrefix *address);
/* -EADDRNOTAVAIL when the address is not on the link. */
int link_address_remove(struct nl_sock *rtnl, const char *ifname, const NmPrefix *address);

/* A route to `destination` (host bits ignored) through the interface, in the main table when
 * table is 0; metric 0 = the kernel's default. Adding an existing route is not an error. */
int link_route_add(struct nl_sock *rtnl, const char *ifname, const NmPrefix *destination, uint32_t table,
                   uint32_t metric);
/* -ESRCH when there is no such route. */
int link_route_remove(struct nl_sock *rtnl, const char *ifname, const NmPrefix *destination, uint32_t table,
                      uint32_t metric);

typedef struct LinkAddress {
        int ifindex;
        char ifname[IFNAMSIZ];
        NmPrefix address; /* host bits kept: the address itself with its prefix length */
} LinkAddress;

/* The addresses a peer could reach this host on: on links that are up and not loopback, not
 * those whose name starts with `exclude_prefix` (e.g. "nm-": our own WireGuard links; NULL = none),
 * without link-local IPv6 or tentative/deprecated addresses. IPv4 first, then IPv6, each in kernel
 * order. *ret is a GArray of LinkAddress. */
int link_list_host_addresses(struct nl_sock *rtnl, const char *exclude_prefix, GArray **ret);

typedef enum LinkEventType {
        LINK_EVENT_LINK_NEW, /* a link appeared or changed (flags, name) */
        LINK_EVENT_LINK_DEL,
        LINK_EVENT_ADDRESS_NEW,
        LINK_EVENT_ADDRESS_DEL,
        /* Events were lost (the socket overflowed): re-read whatever state you keep. */
        LINK_EVENT_RESYNC,
} LinkEventType;

typedef struct LinkEvent {
        LinkEventType type;
        int ifindex;
        char ifname[IFNAMSIZ]; /* link events only ("" when the kernel gave none) */
        unsigned flags;        /* link events: IFF_* */
        NmPrefix address;      /* address events */
} LinkEvent;

/* One rtnetlink notification as the monitor reads it: 1 and *ret for a link or address event,
 * 0 for anything else. For the fuzz target (tests/fuzz/fuzz-netlink.c). */
int link_event_from_netlink(const struct nlmsghdr *h, LinkEvent *ret);

typedef struct LinkMonitor LinkMonitor;
typedef void (*LinkMonitorHandler)(LinkMonitor *m, const LinkEvent *event, void *userdata);

/* Watches links and IPv4/IPv6 addresses (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR)
 * and calls `handler` from an io source on `event` for each change. */
int link_monitor_new(sd_event *event, LinkMonitorHandler handler, void *userdata, LinkMonitor **ret);
LinkMonitor *link_monitor_free(LinkMonitor *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LinkMonitor, link_monitor_free)
