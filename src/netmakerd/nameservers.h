/* A network's nameservers (docs/protocol.md §5.1, docs/dns.md "Nameservers"): names under a match
 * domain are resolved by the servers the admin gave, on every host of the network (split DNS). Their
 * table, their validation, and loading them for the hosts' network state. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "proto.h"
#include "store.h"

/* Checks a match domain as given and returns it lower-cased without a trailing dot: a DNS name of
 * labels of a-z, 0-9 and '-', not the network's own zone "<network>.<dns_domain>" nor a name in it
 * (those are the mesh's names: 409). */
bool nameserver_domain_valid(const char *domain, const char *network, const char *dns_domain, char **ret,
                             GError **error);
/* Checks the servers as given (1-NM_MAX_NAMESERVER_SERVERS unicast IP addresses, no duplicates, not
 * loopback or link-local) and returns them in canonical form. */
bool nameserver_servers_valid(char **servers, char ***ret, GError **error);

/* The network's nameservers (of NmNameserver, by domain). */
int nameservers_load(Store *s, const char *network, GPtrArray **ret, GError **error);
/* Every network's: network name -> GPtrArray of NmNameserver. */
int nameservers_load_all(Store *s, GHashTable **ret, GError **error);

/* Call inside a transaction, with a validated nameserver. 409 when the domain has one already or
 * the network has NM_MAX_NAMESERVERS. */
int nameservers_add(Store *s, const char *network, const NmNameserver *ns, GError **error);
/* Replaces the servers of the domain's nameserver: 404 when there is none. */
int nameservers_set(Store *s, const char *network, const NmNameserver *ns, GError **error);
/* 404 when the domain has none. */
int nameservers_delete(Store *s, const char *network, const char *domain, GError **error);
