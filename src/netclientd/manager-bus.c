/* The org.netmaker.Client interface at /org/netmaker/Client (and the ObjectManager there): methods
 * check their arguments, then polkit, then act; long ones reply when the work is done. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "bus-errors.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "names.h"
#include "network.h"
#include "nm-error.h"
#include "polkit.h"
#include "networkmanager.h"
#include "status.h"
#include "token.h"

static int prop_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int prop_host_id(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "s", m->server ? m->server->host_id : "");
}

static int prop_state(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "s", manager_state_to_string(manager_get_state(m)));
}

static int prop_server(sd_bus *bus, const char *path, const char *iface, const char *prop,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "s", m->server ? m->server->api : "");
}

static int prop_public_key(sd_bus *bus, const char *path, const char *iface, const char *prop,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        char b[NM_KEY_B64_LEN + 1] = "";
        if (m->have_identity)
                nm_key_to_base64(&m->identity.wg_public, b);
        return sd_bus_message_append(reply, "s", b);
}

static int prop_public_address(sd_bus *bus, const char *path, const char *iface, const char *prop,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "s", strempty(m->public_ip));
}

static int prop_networks(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        g_auto(GStrv) paths = manager_network_paths(m);
        int r = sd_bus_message_open_container(reply, 'a', "o");
        for (char **p = paths; r >= 0 && *p; p++)
                r = sd_bus_message_append(reply, "o", *p);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* A network name argument: valid, or a clear error. */
static int check_network_arg(const char *network, sd_bus_error *error)
{
        g_autoptr(GError) e = NULL;
        if (!nm_network_name_valid(network, &e))
                return bus_error_set_gerror(error, e);
        return 0;
}

/* Join options: a{sv} with "name" (s) and "listen-port" (q, or u within 1-65535). */
static int read_join_options(sd_bus_message *m, char **ret_name, uint16_t *ret_port, sd_bus_error *error)
{
        g_autofree char *name = NULL;
        uint16_t port = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents = NULL;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (streq0(key, "name")) {
                        const char *v;
                        g_autoptr(GError) e = NULL;
                        if (!streq0(contents, "s"))
                                return sd_bus_error_setf(
                                        error, BUS_ERROR_INVALID_ARGUMENT,
                                        "Join option \"name\" must be a string (s), not \"%s\"",
                                        strna(contents));
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return r;
                        if (!nm_host_name_valid(v, &e))
                                return bus_error_set_gerror(error, e);
                        g_free(name);
                        name = g_strdup(v);
                } else if (streq0(key, "listen-port")) {
                        uint32_t p;
                        if (streq0(contents, "q")) {
                                uint16_t q;
                                r = sd_bus_message_read(m, "v", "q", &q);
                                p = q;
                        } else if (streq0(contents, "u")) {
                                r = sd_bus_message_read(m, "v", "u", &p);
                        } else if (streq0(contents, "i")) {
                                int32_t i;
                                r = sd_bus_message_read(m, "v", "i", &i);
                                p = i < 0 ? 0 : (uint32_t)i;
                        } else
                                return sd_bus_error_setf(
                                        error, BUS_ERROR_INVALID_ARGUMENT,
                                        "Join option \"listen-port\" must be a number (q, u or "
                                        "i), not \"%s\"",
                                        strna(contents));
                        if (r < 0)
                                return r;
                        if (p < 1 || p > 65535)
                                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                                         "Invalid listen port %u: expected 1-65535", p);
                        port = (uint16_t)p;
                } else {
                        g_autofree char *k = g_utf8_make_valid(key, MIN(strlen(key), 64));
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                                 "Unknown join option \"%s\": accepted are \"name\" and "
                                                 "\"listen-port\"",
                                                 k);
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret_name = TAKE_PTR(name);
        *ret_port = port;
        return 0;
}

static int method_join(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        g_autoptr(GError) e = NULL;
        g_auto(NmToken) t = {};
        g_autofree char *name = NULL;
        uint16_t port = 0;
        const char *token;
        int r;

        r = sd_bus_message_read(msg, "s", &token);
        if (r < 0)
                return r;
        r = read_join_options(msg, &name, &port, error);
        if (r < 0)
                return r;
        if (!*token)
                return sd_bus_error_set(
                        error, BUS_ERROR_INVALID_ARGUMENT,
                        "The enrollment token is empty: pass the token from the server (nmctl keys "
                        "create, or the web UI)");
        if (!nm_token_decode(token, &t, &e))
                return bus_error_set_gerror(error, e);

        r = bus_verify_polkit_async(msg, POLKIT_ACTION_JOIN, &m->polkit_registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit is asking; we run again when it answered */

        r = manager_join(m, msg, token, name, port, error);
        if (r < 0)
                return r;
        return 1;
}

static int method_leave(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *network;
        int r;

        r = sd_bus_message_read(msg, "s", &network);
        if (r < 0)
                return r;
        r = check_network_arg(network, error);
        if (r < 0)
                return r;
        r = bus_verify_polkit_async(msg, POLKIT_ACTION_LEAVE, &m->polkit_registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        r = manager_leave(m, msg, network, error);
        if (r < 0)
                return r;
        return 1;
}

static int method_pull(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r;

        r = bus_verify_polkit_async(msg, POLKIT_ACTION_MANAGE, &m->polkit_registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (!m->server)
                return sd_bus_error_set(error, BUS_ERROR_NOT_REGISTERED,
                                        "This host has not joined any network (netclient join -t TOKEN)");
        r = manager_pull(m, msg);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to pull: %s", g_strerror(-r));
        return 1;
}

static int set_connected(sd_bus_message *msg, Manager *m, bool connected, sd_bus_error *error)
{
        const char *network;
        int r;

        r = sd_bus_message_read(msg, "s", &network);
        if (r < 0)
                return r;
        r = check_network_arg(network, error);
        if (r < 0)
                return r;
        r = bus_verify_polkit_async(msg, POLKIT_ACTION_CONNECT, &m->polkit_registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        r = manager_set_connected(m, network, connected, error);
        if (r < 0)
                return r;
        Network *n = manager_get_network(m, network);
        if (n)
                status_network_connection_changed(n);
        networkmanager_sync(m->networkmanager);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_connect(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return set_connected(msg, userdata, true, error);
}

static int method_disconnect(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return set_connected(msg, userdata, false, error);
}

static int method_set_internet_gateway(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *network, *gateway;
        int r;

        r = sd_bus_message_read(msg, "ss", &network, &gateway);
        if (r < 0)
                return r;
        r = check_network_arg(network, error);
        if (r < 0)
                return r;
        if (*gateway && !nm_uuid_valid(gateway)) {
                g_autofree char *v = g_utf8_make_valid(gateway, MIN(strlen(gateway), 64));
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "Invalid gateway \"%s\": expected the node id (a UUID) of the "
                                         "gateway's node in the network, or \"\" for none",
                                         v);
        }
        r = bus_verify_polkit_async(msg, POLKIT_ACTION_CONNECT, &m->polkit_registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        r = manager_set_internet_gateway(m, msg, network, gateway, error);
        if (r < 0)
                return r;
        return 1;
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("HostId", "s", prop_host_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PublicKey", "s", prop_public_key, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", prop_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Server", "s", prop_server, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Networks", "ao", prop_networks, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PublicAddress", "s", prop_public_address, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Join", SD_BUS_ARGS("s", token, "a{sv}", options),
                                SD_BUS_RESULT("ao", networks), method_join,
                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("Leave", SD_BUS_ARGS("s", network), SD_BUS_NO_RESULT, method_leave,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Pull", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_pull,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Connect", SD_BUS_ARGS("s", network), SD_BUS_NO_RESULT, method_connect,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Disconnect", SD_BUS_ARGS("s", network), SD_BUS_NO_RESULT, method_disconnect,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetInternetGateway", SD_BUS_ARGS("s", network, "s", gateway),
                                SD_BUS_NO_RESULT, method_set_internet_gateway, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                                status_method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPeers", SD_BUS_ARGS("s", network, "t", since),
                                SD_BUS_RESULT("t", serial, "b", complete, "aa{sv}", peers, "as", removed),
                                status_method_get_peers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("JoinProgress", SD_BUS_ARGS("s", step), 0),
        SD_BUS_SIGNAL_WITH_ARGS("PeersChanged", SD_BUS_ARGS("s", network, "t", serial), 0),
        SD_BUS_VTABLE_END,
};

void manager_emit_join_progress(Manager *m, const char *step)
{
        log_debug("Join: %s", step);
        if (m->bus)
                (void)sd_bus_emit_signal(m->bus, NETCLIENT_OBJECT_PATH, NETCLIENT_INTERFACE, "JoinProgress",
                                         "s", step);
}

int manager_bus_register(Manager *m)
{
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, NETCLIENT_OBJECT_PATH, NETCLIENT_INTERFACE,
                                     manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", NETCLIENT_OBJECT_PATH);
        r = sd_bus_add_object_manager(m->bus, NULL, NETCLIENT_OBJECT_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to add the object manager: %m");
        /* A direct (peer-to-peer) connection, as in the unit tests, has no names to take. */
        if (sd_bus_is_bus_client(m->bus) <= 0)
                return 0;
        if (!m->networkmanager) {
                r = networkmanager_new(m, &m->networkmanager);
                if (r < 0)
                        log_warning_errno(r, "Failed to watch NetworkManager (no profiles there): %m");
        }
        r = sd_bus_request_name(m->bus, NETCLIENT_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(
                        r,
                        "Failed to take the bus name %s (is another netclientd running, and is "
                        "the bus policy %s.conf installed?): %m",
                        NETCLIENT_BUS_NAME, NETCLIENT_BUS_NAME);
        return 0;
}
