/* The host's public address as the outside sees it, from STUN (RFC 5389) Binding requests: a query
 * that asks a list of servers in turn without blocking the event loop (names are resolved and the
 * exchange runs on a worker thread; the answer comes back through an eventfd watched by sd-event).
 * The messages themselves: src/shared/stun-codec.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <systemd/sd-event.h>

#include "cidr.h"
#include "stun-codec.h"

#define STUN_DEFAULT_PORT 3478
#define STUN_MAX_SERVERS  16

/* "stun.example.org", "stun.example.org:3478", "192.0.2.1:3478", "[2001:db8::1]:3478": splits it
 * into host and port (default 3478). Returns 0 or -EINVAL (with a message naming the value). */
int stun_server_parse(const char *s, char **ret_host, uint16_t *ret_port, GError **error);

typedef struct StunQuery StunQuery;

/* The first server that answered gave `public_ip` (an address without port); NULL when none did.
 * `error` says why when none did (for logs). Called once, from the event loop. */
typedef void (*StunCallback)(StunQuery *q, const char *public_ip, const char *error, void *userdata);

/* Asks `servers` in order (each may be tried on several of its addresses) until one answers;
 * `timeout_usec` bounds the wait per address (requests are repeated within it: 0 = 2.5 s). */
int stun_query_start(sd_event *event, char **servers, uint64_t timeout_usec, StunCallback callback,
                     void *userdata, StunQuery **ret);
/* Cancels: the callback is not called. The worker finishes on its own. NULL is fine, and so is a
 * query whose callback is running; once the callback has returned, the handle is gone. */
StunQuery *stun_query_cancel(StunQuery *q);
