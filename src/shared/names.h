/* Validation of names users choose (networks, hosts, users, DNS domains) and the interface
 * name derived from a network name. Each check fails with a message quoting the value and
 * saying what would be accepted. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <glib.h>

#define NM_NETWORK_NAME_MAX 32
#define NM_HOST_NAME_MAX    63
#define NM_USER_NAME_MAX    64
#define NM_KEY_NAME_MAX     64
#define NM_DNS_NAME_MAX     253

bool nm_network_name_valid(const char *s, GError **error);
/* A DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'. The one check
 * of a host name wherever one comes in (registration, netclientd's Join and HostName=), so every
 * side refuses the same names with the same message. */
bool nm_host_name_valid(const char *s, GError **error);
bool nm_user_name_valid(const char *s, GError **error);
/* A free-form label for keys: 1-64 printable characters. */
bool nm_label_valid(const char *what, const char *s, guint max, GError **error);
/* A DNS domain of labels as above, separated by dots, at most 253 characters. */
bool nm_dns_domain_valid(const char *s, GError **error);
/* Lowercases and replaces characters a host name may not have with '-'; truncates to 63.
 * Returns NULL when nothing usable is left. Only for the default netclientd derives from the
 * system's host name: names someone chose are checked with nm_host_name_valid(), never changed. */
char *nm_host_name_sanitize(const char *s);

/* Possibly hostile input fit to quote in a message: at most 64 bytes of it, as valid UTF-8, with
 * control characters shown as '?'. */
char *nm_shown(const char *s);

/* The WireGuard link for a network: "nm-<network>", or "nm-<first 7>-<4 hex>" for long names. */
void nm_network_ifname(const char *network, char ret[IFNAMSIZ]);
