/* Where the forwarding responder sends what it does not answer itself: the host's own resolvers.
 * With systemd-resolved's stub in /etc/resolv.conf (127.0.0.53 or 127.0.0.54) those are the
 * upstream servers resolved uses (/run/systemd/resolve/resolv.conf), else /etc/resolv.conf's
 * nameservers. Never the stub, never an address of a mesh network (this host's responder or a
 * peer's, which could forward back to us), never the unspecified address. */
#pragma once

#include <sys/socket.h>
#include <glib.h>

#include "cidr.h"

/* At most this many servers are asked, in order (resolv.conf's MAXNS). */
#define DNS_UPSTREAM_MAX 3

/* The nameservers of a resolv.conf-style file (of struct sockaddr_storage, port 53), in order;
 * lines that are not `nameserver ADDRESS` are ignored, and so are IPv6 addresses with a zone
 * (fe80::1%eth0). -errno when the file cannot be read. */
int dns_upstream_read(const char *path, GArray **ret);

/* The servers to forward to (of struct sockaddr_storage; possibly empty), from the two files as
 * described above, without `excluded` (of NmPrefix: the mesh networks' ranges). */
GArray *dns_upstream_choose(const char *resolv_conf, const char *resolved_resolv_conf,
                            const GArray *excluded);

/* "192.0.2.53" or "2001:db8::53" (port 53 is not shown), for logs. */
char *dns_upstream_to_string(const struct sockaddr_storage *ss);
