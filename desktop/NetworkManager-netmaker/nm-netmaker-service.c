/* nm-netmaker-service: NetworkManager's VPN service for Netmaker mesh networks. NetworkManager
 * starts it to activate a profile of type "netmaker" (vpn.data network=NAME); it asks netclientd
 * (org.netmaker.Client on the system bus) to connect that network and tells NetworkManager which
 * interface carries it. netclientd keeps owning the link, its addresses, routes and DNS: the plugin
 * reports no IP configuration, so NetworkManager configures nothing on the link (see
 * docs/desktop.md for why). It follows netclientd: a network disconnected with `netclient` stops the
 * VPN in NetworkManager too. When NetworkManager itself goes away (a restart) the plugin leaves
 * without touching the network, so a restart of NetworkManager costs the mesh nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <NetworkManager.h>
#include <gio/gio.h>
#include <glib.h>

#define NM_DBUS_SERVICE_NETMAKER "org.freedesktop.NetworkManager.netmaker"
#define NM_NETMAKER_KEY_NETWORK  "network"

#define NETCLIENT_NAME         "org.netmaker.Client"
#define NETCLIENT_PATH         "/org/netmaker/Client"
#define NETCLIENT_IFACE        "org.netmaker.Client"
#define NETCLIENT_NETWORK_PATH "/org/netmaker/Client/network"
#define NETCLIENT_NETWORK      "org.netmaker.Client.Network"

#define CALL_TIMEOUT_MSEC (90 * 1000)

typedef struct {
        NMVpnServicePlugin parent;
        GDBusConnection *bus; /* the system bus, where netclientd is */
        GCancellable *cancellable;
        char *network;
        char *path; /* the network's object */
        guint sub_properties, sub_removed, watch_netclientd;
        gboolean started;   /* NetworkManager has the configuration: the VPN is up */
        gboolean detaching; /* NetworkManager went away (or we were told to quit): leave netclientd alone */
        gboolean by_netclientd; /* the network was disconnected (or left) through netclientd */
} NMNetmakerPlugin;

typedef struct {
        NMVpnServicePluginClass parent;
} NMNetmakerPluginClass;

GType nm_netmaker_plugin_get_type(void);
G_DEFINE_TYPE(NMNetmakerPlugin, nm_netmaker_plugin, NM_TYPE_VPN_SERVICE_PLUGIN)

#define NM_NETMAKER_PLUGIN(o)                                                                               \
        (G_TYPE_CHECK_INSTANCE_CAST((o), nm_netmaker_plugin_get_type(), NMNetmakerPlugin))

static gboolean debug;

#define LOG(level, self, fmt, ...)                                                                          \
        g_log(G_LOG_DOMAIN, level, "netmaker[%s]: " fmt, (self)->network ? (self)->network : "-",           \
              ##__VA_ARGS__)

/* The object path netclientd gives a network: sd_bus_path_encode() (characters other than
 * [A-Za-z0-9] become _xx), as docs/dbus-api.md describes. */
static char *network_path(const char *network)
{
        GString *s = g_string_new(NETCLIENT_NETWORK_PATH "/");
        if (!*network)
                g_string_append_c(s, '_');
        for (const char *c = network; *c; c++) {
                if (g_ascii_isalnum(*c))
                        g_string_append_c(s, *c);
                else
                        g_string_append_printf(s, "_%02x", (unsigned char)*c);
        }
        return g_string_free(s, FALSE);
}

/* ---- following netclientd ------------------------------------------------------------------- */

/* The network was disconnected or left through netclientd (netclient, the Shell menu): the VPN
 * stops in NetworkManager too, without calling netclientd back. */
static void stop_from_netclientd(NMNetmakerPlugin *self, const char *why)
{
        if (!self->started || self->by_netclientd)
                return;
        LOG(G_LOG_LEVEL_MESSAGE, self, "%s: stopping the VPN in NetworkManager", why);
        self->by_netclientd = TRUE;
        (void)nm_vpn_service_plugin_disconnect(NM_VPN_SERVICE_PLUGIN(self), NULL);
}

static void on_network_properties(GDBusConnection *c, const char *sender, const char *path,
                                  const char *iface, const char *signal, GVariant *params,
                                  gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        g_autoptr(GVariant) changed = NULL;
        const char *changed_iface = NULL;
        gboolean connected;

        g_variant_get(params, "(&s@a{sv}@as)", &changed_iface, &changed, NULL);
        if (g_strcmp0(changed_iface, NETCLIENT_NETWORK) != 0)
                return;
        if (g_variant_lookup(changed, "Connected", "b", &connected) && !connected)
                stop_from_netclientd(self, "netclientd disconnected the network");
}

static void on_interfaces_removed(GDBusConnection *c, const char *sender, const char *path,
                                  const char *iface, const char *signal, GVariant *params,
                                  gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        const char *object = NULL;

        g_variant_get(params, "(&oas)", &object, NULL);
        if (g_strcmp0(object, self->path) == 0)
                stop_from_netclientd(self, "the host left the network");
}

static void on_network_reread(GObject *source, GAsyncResult *res, gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);
        g_autoptr(GVariant) inner = NULL;

        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!v) {
                if (g_dbus_error_is_remote_error(e) &&
                    g_strcmp0(g_dbus_error_get_remote_error(e),
                              "org.freedesktop.DBus.Error.UnknownObject") == 0)
                        stop_from_netclientd(self, "the host left the network while netclientd was away");
                return;
        }
        g_variant_get(v, "(v)", &inner);
        if (g_variant_is_of_type(inner, G_VARIANT_TYPE_BOOLEAN) && !g_variant_get_boolean(inner))
                stop_from_netclientd(self, "the network was disconnected while netclientd was away");
}

/* netclientd (re)started: its links stayed, but the network may have been changed meanwhile. */
static void on_netclientd_appeared(GDBusConnection *c, const char *name, const char *owner,
                                   gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        if (!self->started)
                return;
        g_dbus_connection_call(self->bus, NETCLIENT_NAME, self->path, "org.freedesktop.DBus.Properties",
                               "Get", g_variant_new("(ss)", NETCLIENT_NETWORK, "Connected"),
                               G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MSEC,
                               self->cancellable, on_network_reread, self);
}

static void follow_netclientd(NMNetmakerPlugin *self)
{
        self->sub_properties = g_dbus_connection_signal_subscribe(
                self->bus, NETCLIENT_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                self->path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_network_properties, self, NULL);
        self->sub_removed = g_dbus_connection_signal_subscribe(
                self->bus, NETCLIENT_NAME, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                NETCLIENT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_interfaces_removed, self, NULL);
        self->watch_netclientd =
                g_bus_watch_name_on_connection(self->bus, NETCLIENT_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                               on_netclientd_appeared, NULL, self, NULL);
}

static void unfollow_netclientd(NMNetmakerPlugin *self)
{
        if (self->sub_properties)
                g_dbus_connection_signal_unsubscribe(self->bus, self->sub_properties);
        if (self->sub_removed)
                g_dbus_connection_signal_unsubscribe(self->bus, self->sub_removed);
        if (self->watch_netclientd)
                g_bus_unwatch_name(self->watch_netclientd);
        self->sub_properties = self->sub_removed = self->watch_netclientd = 0;
}

/* ---- telling NetworkManager ------------------------------------------------------------------ */

/* NetworkManager wants an "external gateway" and adds a route to it through the uplink unless the
 * profile says ipv4.auto-route-ext-gw=no (netclientd's profiles do). A mesh has no single gateway:
 * this host's own mesh address is given, which a route could never divert (the local table answers
 * for it first). */
static gboolean gateway_of(char **addresses, GVariant **ret)
{
        for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0)
                for (char **a = addresses; a && *a; a++) {
                        g_autofree char *ip = g_strdup(*a);
                        char *slash = strchr(ip, '/');
                        unsigned char buf[16];
                        if (slash)
                                *slash = 0;
                        if (inet_pton(family, ip, buf) != 1)
                                continue;
                        if (family == AF_INET) {
                                guint32 v4;
                                memcpy(&v4, buf, 4);
                                *ret = g_variant_new_uint32(v4);
                        } else
                                *ret = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, buf, 16, 1);
                        return TRUE;
                }
        return FALSE;
}

static void send_config(NMNetmakerPlugin *self, GVariant *props)
{
        NMVpnServicePlugin *plugin = NM_VPN_SERVICE_PLUGIN(self);
        g_autofree const char **addresses = NULL;
        const char *ifname = NULL;
        GVariant *gateway = NULL;
        guint32 mtu = 0;
        GVariantBuilder b;

        if (!g_variant_lookup(props, "Interface", "&s", &ifname) || !*ifname) {
                LOG(G_LOG_LEVEL_WARNING, self, "netclientd names no interface for the network");
                nm_vpn_service_plugin_failure(plugin, NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG);
                return;
        }
        (void)g_variant_lookup(props, "Addresses", "^a&s", &addresses);
        (void)g_variant_lookup(props, "MTU", "u", &mtu);
        if (!gateway_of((char **)addresses, &gateway)) {
                LOG(G_LOG_LEVEL_WARNING, self, "the network has no address on this host yet");
                nm_vpn_service_plugin_failure(plugin, NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG);
                return;
        }

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_TUNDEV, g_variant_new_string(ifname));
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_EXT_GATEWAY, gateway);
        if (mtu > 0)
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_MTU, g_variant_new_uint32(mtu));
        /* No IP configuration at all: NetworkManager then adds no address, route or DNS to the link
         * and removes none when the VPN goes down or NetworkManager restarts. netclientd has them. */
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP4, g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP6, g_variant_new_boolean(FALSE));
        /* Losing the uplink (Wi-Fi roaming, suspend) is no reason to disconnect a mesh: WireGuard
         * carries on by itself when the path comes back. */
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CAN_PERSIST, g_variant_new_boolean(TRUE));
        self->started = TRUE;
        LOG(G_LOG_LEVEL_MESSAGE, self, "connected on %s", ifname);
        nm_vpn_service_plugin_set_config(plugin, g_variant_builder_end(&b));
}

static void on_network_properties_read(GObject *source, GAsyncResult *res, gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);
        g_autoptr(GVariant) props = NULL;

        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!v) {
                LOG(G_LOG_LEVEL_WARNING, self, "cannot read the network from netclientd: %s", e->message);
                nm_vpn_service_plugin_failure(NM_VPN_SERVICE_PLUGIN(self),
                                              NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED);
                return;
        }
        g_variant_get(v, "(@a{sv})", &props);
        send_config(self, props);
}

static void on_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
        NMNetmakerPlugin *self = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);

        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!v) {
                g_dbus_error_strip_remote_error(e);
                LOG(G_LOG_LEVEL_WARNING, self, "netclientd could not connect the network: %s", e->message);
                nm_vpn_service_plugin_failure(NM_VPN_SERVICE_PLUGIN(self),
                                              NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED);
                return;
        }
        g_dbus_connection_call(self->bus, NETCLIENT_NAME, self->path, "org.freedesktop.DBus.Properties",
                               "GetAll", g_variant_new("(s)", NETCLIENT_NETWORK), G_VARIANT_TYPE("(a{sv})"),
                               G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MSEC, self->cancellable,
                               on_network_properties_read, self);
}

/* ---- the plugin's methods -------------------------------------------------------------------- */

static gboolean real_connect(NMVpnServicePlugin *plugin, NMConnection *connection, GError **error)
{
        NMNetmakerPlugin *self = NM_NETMAKER_PLUGIN(plugin);
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
        const char *network = s_vpn ? nm_setting_vpn_get_data_item(s_vpn, NM_NETMAKER_KEY_NETWORK) : NULL;

        if (!network || !*network) {
                g_set_error(
                        error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS,
                        "The profile names no Netmaker network: set vpn.data network=NAME (a network this "
                        "host joined, as `netclient list` shows)");
                return FALSE;
        }
        unfollow_netclientd(self);
        g_free(self->network);
        g_free(self->path);
        self->network = g_strdup(network);
        self->path = network_path(network);
        self->started = self->by_netclientd = FALSE;
        LOG(G_LOG_LEVEL_MESSAGE, self, "asking netclientd to connect the network");
        follow_netclientd(self);
        /* Connect is a no-op for a connected network: activating a profile for a network that is up
         * (netclientd does that to show its networks here) changes nothing on the link. */
        g_dbus_connection_call(self->bus, NETCLIENT_NAME, NETCLIENT_PATH, NETCLIENT_IFACE, "Connect",
                               g_variant_new("(s)", network), G_VARIANT_TYPE("()"),
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, CALL_TIMEOUT_MSEC,
                               self->cancellable, on_connected, self);
        return TRUE;
}

static gboolean real_need_secrets(NMVpnServicePlugin *plugin, NMConnection *connection,
                                  const char **setting_name, GError **error)
{
        return FALSE; /* netclientd holds the keys */
}

static gboolean real_disconnect(NMVpnServicePlugin *plugin, GError **error)
{
        NMNetmakerPlugin *self = NM_NETMAKER_PLUGIN(plugin);
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = NULL;
        gboolean was_started = self->started;

        self->started = FALSE;
        unfollow_netclientd(self);
        /* Only a VPN that was up, taken down by NetworkManager's user (nmcli connection down, the
         * Shell's switch), disconnects the network. A failed activation, NetworkManager going away,
         * or a disconnect that came from netclientd leave the network as it is. */
        if (!was_started || self->detaching || self->by_netclientd)
                return TRUE;
        LOG(G_LOG_LEVEL_MESSAGE, self, "asking netclientd to disconnect the network");
        v = g_dbus_connection_call_sync(
                self->bus, NETCLIENT_NAME, NETCLIENT_PATH, NETCLIENT_IFACE, "Disconnect",
                g_variant_new("(s)", self->network), G_VARIANT_TYPE("()"),
                G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, CALL_TIMEOUT_MSEC, NULL, &e);
        if (!v) {
                g_dbus_error_strip_remote_error(e);
                LOG(G_LOG_LEVEL_WARNING, self, "netclientd could not disconnect the network: %s",
                    e->message);
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_FAILED,
                            "netclientd could not disconnect network %s: %s", self->network, e->message);
                return FALSE;
        }
        return TRUE;
}

/* ---- object ---------------------------------------------------------------------------------- */

static void nm_netmaker_plugin_init(NMNetmakerPlugin *self)
{
        self->cancellable = g_cancellable_new();
}

static void dispose(GObject *object)
{
        NMNetmakerPlugin *self = NM_NETMAKER_PLUGIN(object);

        g_cancellable_cancel(self->cancellable);
        if (self->bus)
                unfollow_netclientd(self);
        g_clear_object(&self->cancellable);
        g_clear_object(&self->bus);
        g_clear_pointer(&self->network, g_free);
        g_clear_pointer(&self->path, g_free);
        G_OBJECT_CLASS(nm_netmaker_plugin_parent_class)->dispose(object);
}

static void nm_netmaker_plugin_class_init(NMNetmakerPluginClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        NMVpnServicePluginClass *parent_class = NM_VPN_SERVICE_PLUGIN_CLASS(klass);

        object_class->dispose = dispose;
        parent_class->connect = real_connect;
        parent_class->need_secrets = real_need_secrets;
        parent_class->disconnect = real_disconnect;
}

/* ---- main ------------------------------------------------------------------------------------ */

typedef struct {
        GMainLoop *loop;
        NMNetmakerPlugin *plugin;
} Main;

/* NetworkManager stopped (a restart, an upgrade): the mesh is netclientd's and stays up. Leave
 * without a word to netclientd; the next NetworkManager starts a new plugin, and netclientd
 * activates the profile again for a connected network. */
static void leave(Main *m, const char *why)
{
        g_message("netmaker: %s: leaving the network to netclientd", why);
        m->plugin->detaching = TRUE;
        g_main_loop_quit(m->loop);
}

static void on_nm_vanished(GDBusConnection *c, const char *name, gpointer user_data)
{
        leave(user_data, "NetworkManager left the bus");
}

static gboolean on_sigterm(gpointer user_data)
{
        leave(user_data, "SIGTERM");
        return G_SOURCE_REMOVE;
}

static void on_quit(NMVpnServicePlugin *plugin, gpointer user_data)
{
        Main *m = user_data;
        g_main_loop_quit(m->loop);
}

int main(int argc, char *argv[])
{
        g_autofree char *bus_name = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GOptionContext) ctx = NULL;
        GOptionEntry options[] = {
                {"bus-name", 0, 0, G_OPTION_ARG_STRING, &bus_name, "D-Bus name to use for this instance",
                 "NAME"},
                {"debug", 0, 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL},
                {NULL},
        };
        Main m = {};
        guint watch;

        ctx = g_option_context_new(NULL);
        g_option_context_set_summary(
                ctx, "NetworkManager's VPN service for Netmaker networks (driven by netclientd).");
        g_option_context_add_main_entries(ctx, options, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
                g_printerr("nm-netmaker-service: %s\n", e->message);
                return 1;
        }
        if (debug)
                g_setenv("G_MESSAGES_DEBUG", "all", TRUE);

        m.plugin = g_initable_new(nm_netmaker_plugin_get_type(), NULL, &e,
                                  NM_VPN_SERVICE_PLUGIN_DBUS_SERVICE_NAME,
                                  bus_name ? bus_name : NM_DBUS_SERVICE_NETMAKER,
                                  /* we watch NetworkManager ourselves: its disappearance must not
                                   * disconnect the network (the default would) */
                                  NM_VPN_SERVICE_PLUGIN_DBUS_WATCH_PEER, FALSE, NULL);
        if (!m.plugin) {
                g_printerr("nm-netmaker-service: cannot start: %s\n", e->message);
                return 1;
        }
        m.plugin->bus = g_object_ref(nm_vpn_service_plugin_get_connection(NM_VPN_SERVICE_PLUGIN(m.plugin)));
        m.loop = g_main_loop_new(NULL, FALSE);
        g_signal_connect(m.plugin, "quit", G_CALLBACK(on_quit), &m);
        watch = g_bus_watch_name_on_connection(m.plugin->bus, "org.freedesktop.NetworkManager",
                                               G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, on_nm_vanished, &m,
                                               NULL);
        g_unix_signal_add(SIGTERM, on_sigterm, &m);
        g_unix_signal_add(SIGINT, on_sigterm, &m);

        g_main_loop_run(m.loop);

        g_bus_unwatch_name(watch);
        g_object_unref(m.plugin);
        g_main_loop_unref(m.loop);
        return 0;
}
