/* Asynchronous polkit checks for D-Bus method calls, in the way systemd does them: the handler asks,
 * gets "pending" (0), and is dispatched again with the same message once polkit has answered. */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

#define POLKIT_ACTION_JOIN   "org.netmaker.client.join"
#define POLKIT_ACTION_LEAVE  "org.netmaker.client.leave"
#define POLKIT_ACTION_MANAGE "org.netmaker.client.manage"
/* Connect, Disconnect, SetInternetGateway: what a user at the console may do without a password,
 * as NetworkManager lets the active session control the network. */
#define POLKIT_ACTION_CONNECT "org.netmaker.client.connect"

/* Decides whether the sender of `call` may perform `action`.
 * Returns 1 when allowed, 0 when the answer is pending (the handler must return 1 and will run
 * again from the top with the same message), or a negative errno with `error` set:
 * org.freedesktop.DBus.Error.AccessDenied when polkit says no (or cannot be asked), and
 * org.freedesktop.DBus.Error.InteractiveAuthorizationRequired when it wants a password but the caller
 * did not allow interaction (or no authentication agent answered).
 * Callers with CAP_NET_ADMIN (root) are allowed without asking, as systemd's daemons do.
 * `registry` holds the pending queries; free it with polkit_registry_free(). */
int bus_verify_polkit_async(sd_bus_message *call, const char *action, GHashTable **registry,
                            sd_bus_error *error);
void polkit_registry_free(GHashTable *registry);
