/* The DNS names of a network (docs/protocol.md §5): the custom names an admin adds (their table,
 * their validation) and the automatic names that come with nodes, as the REST API lists them and
 * as hosts receive them in their network state. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "proto.h"
#include "store.h"

/* One row of GET /networks/{net}/dns. */
typedef struct DnsName {
        char *name; /* relative to the network's zone: "printer", "laptop1" */
        char *ipv4; /* NULL when none */
        char *ipv6;
        bool automatic; /* a node's name: it goes with its node */
} DnsName;

void dns_name_free(DnsName *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DnsName, dns_name_free)

/* Checks a custom name as given and returns it lower-cased (DNS names are case-insensitive):
 * dot-separated labels of a-z, 0-9 and '-', and short enough that "<name>.<network>.<domain>"
 * stays within 253 characters. */
bool dns_name_valid(const char *name, const char *network, const char *dns_domain, char **ret,
                    GError **error);
/* Checks an address of a custom name: any unicast address of the family (a name may point outside
 * the network, e.g. to a printer behind an egress gateway), but not the unspecified address,
 * multicast or the IPv4 limited broadcast. Returns it in canonical form. */
bool dns_name_address_valid(const char *member, const char *text, int family, char **ret, GError **error);

/* The network's custom names (of NmDnsEntry, ordered by name): what hosts get as "dns". */
int dns_names_load_custom(Store *s, const char *network, GPtrArray **ret, GError **error);
/* Every network's custom names: network name -> GPtrArray of NmDnsEntry. */
int dns_names_load_all_custom(Store *s, GHashTable **ret, GError **error);
/* Automatic and custom names of the network (of DnsName, ordered by name, automatic first on a
 * tie). -ENOENT when the network does not exist. */
int dns_names_list(Store *s, const char *network, GPtrArray **ret, GError **error);

/* Adds a custom name (already validated): 404 for an unknown network, 409 when the name is taken
 * by a node or another custom name. Call inside a transaction. */
int dns_names_add(Store *s, const char *network, const NmDnsEntry *e, GError **error);
/* Deletes a custom name: 409 for an automatic name, 404 when there is none. */
int dns_names_delete(Store *s, const char *network, const char *name, GError **error);
