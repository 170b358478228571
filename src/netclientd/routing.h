/* Policy routing over rtnetlink (libnl): the rules that send a host's traffic through the internet
 * gateway it opted into while the WireGuard packets themselves, and every more specific route of
 * the main table, keep the main table (what wg-quick does for 0.0.0.0/0), and dumps of the rules
 * and routes we made, so a restarted daemon can find and reconcile them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <netlink/netlink.h>

#include "cidr.h"

/* Table ids and firewall marks of internet gateway routing: the base ORed with the network's
 * WireGuard listen port, so every network has its own and they are easy to spot ("0x4e4d..."). */
#define ROUTING_TABLE_BASE 0x4e4d0000u
#define ROUTING_TABLE_MASK 0xffff0000u
/* "lookup main suppress_prefixlength 0": every route of the main table except its default wins. */
#define ROUTING_PRIORITY_MAIN 32700u
/* "not fwmark T lookup T": everything else (not the tunnel's own packets) goes to our table. */
#define ROUTING_PRIORITY_TABLE 32701u

static inline bool routing_table_is_ours(uint32_t table)
{
        return (table & ROUTING_TABLE_MASK) == ROUTING_TABLE_BASE && table != ROUTING_TABLE_BASE;
}

typedef struct RoutingRule {
        int family; /* AF_INET or AF_INET6 */
        uint32_t priority;
        uint32_t table;
        uint32_t fwmark;           /* 0 = none */
        bool invert;               /* "not" */
        int suppress_prefixlength; /* -1 = none */
} RoutingRule;

/* The two kinds of rule we make. */
void routing_rule_main_suppress(RoutingRule *ret, int family);
void routing_rule_not_fwmark(RoutingRule *ret, int family, uint32_t table);
bool routing_rule_equal(const RoutingRule *a, const RoutingRule *b);
/* Ours: one of the two kinds above (by priority and table), whoever added it. */
bool routing_rule_is_ours(const RoutingRule *r);
char *routing_rule_to_string(const RoutingRule *r);

/* Adding an existing rule is not an error; removing a missing one gives -ENOENT. */
int routing_rule_add(struct nl_sock *rtnl, const RoutingRule *rule);
int routing_rule_remove(struct nl_sock *rtnl, const RoutingRule *rule);
/* Every rule of both families; *ret is a GArray of RoutingRule. */
int routing_list_rules(struct nl_sock *rtnl, GArray **ret);

typedef struct RoutingRoute {
        NmPrefix destination; /* canonical */
        uint32_t table;
} RoutingRoute;

/* The unicast routes through `ifindex` with protocol "static" (how link_route_add() makes them) in
 * any table; *ret is a GArray of RoutingRoute. */
int routing_list_link_routes(struct nl_sock *rtnl, int ifindex, GArray **ret);

/* One message of the kernel's rule or route dump, as the two functions above read it: 1 and *ret
 * for a rule that points to a table (a route of those the list keeps), 0 for anything else. For
 * the fuzz target (tests/fuzz/fuzz-netlink.c), which hands them any bytes. */
int routing_rule_from_netlink(const struct nlmsghdr *h, RoutingRule *ret);
int routing_route_from_netlink(const struct nlmsghdr *h, int ifindex, RoutingRoute *ret);
