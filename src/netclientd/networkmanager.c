/* netclientd as a client of NetworkManager: a VPN profile per joined network, activated while the
 * network is connected (networkmanager.h says why). One sync at a time, each a small chain of
 * asynchronous calls: read the active connections, then per network find (or add) its profile and
 * activate it when the network is connected and the profile is not active; delete the profiles of
 * networks that are gone. Failures are logged and retried at the next change (a network, NetworkManager
 * restarting, a new primary connection), never in a loop. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "network.h"
#include "networkmanager.h"

#define NM_NAME                "org.freedesktop.NetworkManager"
#define NM_PATH                "/org/freedesktop/NetworkManager"
#define NM_IFACE               "org.freedesktop.NetworkManager"
#define NM_SETTINGS_PATH       "/org/freedesktop/NetworkManager/Settings"
#define NM_SETTINGS            "org.freedesktop.NetworkManager.Settings"
#define NM_CONNECTION          "org.freedesktop.NetworkManager.Settings.Connection"
#define NM_ACTIVE              "org.freedesktop.NetworkManager.Connection.Active"
#define NM_ERROR_NO_CONNECTION "org.freedesktop.NetworkManager.Settings.InvalidConnection"

#define ADD_TO_DISK       0x1 /* NM_SETTINGS_ADD_CONNECTION2_FLAG_TO_DISK */
#define ACTIVE_ACTIVATING 1
#define ACTIVE_ACTIVATED  2

#define SYNC_DELAY_USEC (200 * 1000ULL)

struct NetworkManager {
        Manager *manager;
        sd_bus *bus;
        sd_bus_slot *owner_match, *props_match;
        sd_event_source *timer;
        GPtrArray *slots;   /* calls of the running sync (unref cancels them) */
        GHashTable *active; /* UUIDs of our profiles that are activating or activated */
        GHashTable *known;  /* networks whose profile this run found or made: deleted when they go */
        unsigned pending;   /* calls of the running sync still out */
        bool running, again;
        bool profiles; /* the sync's second step (the profiles) has started */
        bool said_no_plugin;
};

typedef struct Call {
        NetworkManager *nm;
        char *network;
        char *uuid;
        bool connected;
} Call;

static void call_free(void *p)
{
        Call *c = p;
        g_free(c->network);
        g_free(c->uuid);
        g_free(c);
}

char *networkmanager_profile_uuid(const char *network)
{
        g_autofree char *seed = g_strconcat("netmaker-network:", network, NULL);
        g_autofree char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, seed, -1);
        /* A name-based UUID: version 5's layout (version nibble 5, RFC 4122 variant). */
        h[12] = '5';
        h[16] = "89ab"[g_ascii_xdigit_value(h[16]) & 3];
        return g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

bool networkmanager_plugin_installed(void)
{
        const char *dir = g_getenv("NETCLIENTD_NM_VPN_DIR");
        const char *const dirs[] = {"/usr/lib/NetworkManager/VPN", "/etc/NetworkManager/VPN", NULL};

        if (dir) {
                g_autofree char *f = g_build_filename(dir, "nm-netmaker-service.name", NULL);
                return access(f, R_OK) == 0;
        }
        for (const char *const *d = dirs; *d; d++) {
                g_autofree char *f = g_build_filename(*d, "nm-netmaker-service.name", NULL);
                if (access(f, R_OK) == 0)
                        return true;
        }
        return false;
}

/* ---- one sync -------------------------------------------------------------------------------- */

static void sync_done(NetworkManager *nm)
{
        nm->running = false;
        g_ptr_array_set_size(nm->slots, 0);
        if (nm->again) {
                nm->again = false;
                networkmanager_sync(nm);
        }
}

static void sync_profiles(NetworkManager *nm);

/* A call of the running sync answered (after it queued what follows from it). The first step
 * (reading the active connections) leads to the second (the profiles), the second to the end. */
static void call_finished(NetworkManager *nm)
{
        if (nm->pending > 0)
                nm->pending--;
        if (nm->pending > 0)
                return;
        if (!nm->profiles) {
                nm->profiles = true;
                sync_profiles(nm);
                if (nm->pending > 0)
                        return;
        }
        sync_done(nm);
}

/* Sends a call of the running sync; `c` (may be NULL) is freed with the slot. */
static int send_call(NetworkManager *nm, sd_bus_message *m, sd_bus_message_handler_t handler, Call *c)
{
        sd_bus_slot *slot = NULL;
        int r;

        (void)sd_bus_message_set_auto_start(m, false); /* never start NetworkManager */
        r = sd_bus_call_async(nm->bus, &slot, m, handler, c ? (void *)c : (void *)nm, 0);
        if (r < 0) {
                if (c)
                        call_free(c);
                return r;
        }
        if (c)
                sd_bus_slot_set_destroy_callback(slot, call_free);
        g_ptr_array_add(nm->slots, slot);
        nm->pending++;
        return 0;
}

static void slot_unref(gpointer p)
{
        sd_bus_slot_unref(p);
}

static Call *call_new(NetworkManager *nm, const char *network, bool connected)
{
        Call *c = g_new0(Call, 1);
        c->nm = nm;
        c->network = g_strdup(network);
        c->uuid = networkmanager_profile_uuid(network);
        c->connected = connected;
        return c;
}

static const char *error_text(sd_bus_message *reply)
{
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        return e && e->message ? e->message : e ? e->name : "";
}

static int on_activated(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        if (sd_bus_message_is_method_error(reply, NULL))
                /* Typically: no primary connection yet (NetworkManager activates VPNs only on top of
                 * one). Tried again when the primary connection changes. */
                log_info("NetworkManager did not activate the profile of network %s (tried again when its "
                         "primary connection changes): %s",
                         c->network, error_text(reply));
        else
                log_debug("NetworkManager: activating the profile of network %s.", c->network);
        call_finished(c->nm);
        return 0;
}

static int on_deleted(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        if (sd_bus_message_is_method_error(reply, NULL))
                log_warning("NetworkManager did not delete the profile of network %s: %s", c->network,
                            error_text(reply));
        call_finished(c->nm);
        return 0;
}

static void activate(NetworkManager *nm, const Call *c, const char *profile)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, NM_PATH, NM_IFACE,
                                               "ActivateConnection");
        if (r < 0 || sd_bus_message_append(m, "ooo", profile, "/", "/") < 0 ||
            send_call(nm, m, on_activated, call_new(nm, c->network, c->connected)) < 0)
                log_debug("NetworkManager: cannot queue the activation of %s", c->network);
}

static int on_added(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        const char *path = NULL;

        if (sd_bus_message_is_method_error(reply, NULL))
                log_warning("NetworkManager refused a profile for network %s: %s", c->network,
                            error_text(reply));
        else if (sd_bus_message_read(reply, "o", &path) >= 0) {
                log_info("NetworkManager has a VPN profile for network %s now (%s).", c->network, c->uuid);
                g_hash_table_add(c->nm->known, g_strdup(c->network));
                if (c->connected)
                        activate(c->nm, c, path);
        }
        call_finished(c->nm);
        return 0;
}

static int append_sv_s(sd_bus_message *m, const char *k, const char *v)
{
        return sd_bus_message_append(m, "{sv}", k, "s", v);
}

static int append_sv_b(sd_bus_message *m, const char *k, bool v)
{
        return sd_bus_message_append(m, "{sv}", k, "b", (int)v);
}

/* connection, vpn, ipv4, ipv6: a profile that only names the network. NetworkManager is told to
 * add no route to an external gateway (a mesh has none) and never a default route; the plugin sends
 * no IP configuration anyway, so nothing of the link is NetworkManager's. */
static int append_profile(sd_bus_message *m, const char *network, const char *uuid)
{
        g_autofree char *id = g_strdup_printf("%s (Netmaker)", network);
        int r = sd_bus_message_open_container(m, 'a', "{sa{sv}}");

        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "connection");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = append_sv_s(m, "id", id);
        if (r >= 0)
                r = append_sv_s(m, "uuid", uuid);
        if (r >= 0)
                r = append_sv_s(m, "type", "vpn");
        /* netclientd decides when it is up (it activates the profile itself) */
        if (r >= 0)
                r = append_sv_b(m, "autoconnect", false);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);

        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "vpn");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = append_sv_s(m, "service-type", NETWORKMANAGER_VPN_SERVICE);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "data", "a{ss}", 1, "network", network);
        /* Suspend, roaming, a lost uplink: the mesh carries on, so the VPN stays. */
        if (r >= 0)
                r = append_sv_b(m, "persistent", true);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);

        for (int i = 0; r >= 0 && i < 2; i++) {
                r = sd_bus_message_open_container(m, 'e', "sa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", i == 0 ? "ipv4" : "ipv6");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                if (r >= 0)
                        r = append_sv_s(m, "method", "auto");
                if (r >= 0)
                        r = append_sv_b(m, "never-default", true);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sv}", "auto-route-ext-gw", "i", 0);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static void add_profile(NetworkManager *nm, const Call *c)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, NM_SETTINGS_PATH, NM_SETTINGS,
                                               "AddConnection2");
        if (r >= 0)
                r = append_profile(m, c->network, c->uuid);
        if (r >= 0)
                r = sd_bus_message_append(m, "ua{sv}", (uint32_t)ADD_TO_DISK, 0);
        if (r >= 0)
                r = send_call(nm, m, on_added, call_new(nm, c->network, c->connected));
        if (r < 0)
                log_debug_errno(r, "NetworkManager: cannot queue a profile for %s: %m", c->network);
}

static int on_profile_found(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        NetworkManager *nm = c->nm;
        const char *path = NULL;
        bool joined = manager_get_network(nm->manager, c->network) != NULL;

        if (sd_bus_message_is_method_error(reply, NM_ERROR_NO_CONNECTION)) {
                if (joined)
                        add_profile(nm, c);
                else
                        g_hash_table_remove(nm->known, c->network);
        } else if (sd_bus_message_is_method_error(reply, NULL))
                log_debug("NetworkManager: cannot look up the profile of %s: %s", c->network,
                          error_text(reply));
        else if (sd_bus_message_read(reply, "o", &path) >= 0) {
                if (!joined) {
                        /* The network is gone (left, or the host was deleted): so is its profile. */
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        log_info("Removing the NetworkManager profile of network %s (left).", c->network);
                        g_hash_table_remove(nm->known, c->network);
                        if (sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, path, NM_CONNECTION,
                                                           "Delete") >= 0)
                                (void)send_call(nm, m, on_deleted, call_new(nm, c->network, false));
                } else {
                        g_hash_table_add(nm->known, g_strdup(c->network));
                        if (c->connected && !g_hash_table_contains(nm->active, c->uuid))
                                activate(nm, c, path);
                }
        }
        call_finished(nm);
        return 0;
}

/* Second step: every joined network (and every known one that is gone) by its profile. */
static void sync_profiles(NetworkManager *nm)
{
        g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
        GHashTableIter it;
        gpointer k;

        g_hash_table_iter_init(&it, nm->manager->networks);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_hash_table_add(names, k);
        g_hash_table_iter_init(&it, nm->known);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_hash_table_add(names, k);

        g_hash_table_iter_init(&it, names);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                Network *n = manager_get_network(nm->manager, k);
                Call *c = call_new(nm, k, n && network_is_connected(n));
                if (sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, NM_SETTINGS_PATH, NM_SETTINGS,
                                                   "GetConnectionByUuid") < 0 ||
                    sd_bus_message_append(m, "s", c->uuid) < 0 || send_call(nm, m, on_profile_found, c) < 0)
                        log_debug("NetworkManager: cannot look up the profile of %s", (char *)k);
        }
}

static int on_active_read(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        NetworkManager *nm = userdata;
        const char *uuid = NULL;
        uint32_t state = 0;

        if (!sd_bus_message_is_method_error(reply, NULL) &&
            sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *key = NULL;
                        if (sd_bus_message_read(reply, "s", &key) < 0)
                                break;
                        if (streq0(key, "Uuid"))
                                (void)sd_bus_message_read(reply, "v", "s", &uuid);
                        else if (streq0(key, "State"))
                                (void)sd_bus_message_read(reply, "v", "u", &state);
                        else
                                (void)sd_bus_message_skip(reply, "v");
                        (void)sd_bus_message_exit_container(reply);
                }
                if (uuid && (state == ACTIVE_ACTIVATING || state == ACTIVE_ACTIVATED))
                        g_hash_table_add(nm->active, g_strdup(uuid));
        }
        call_finished(nm);
        return 0;
}

static int on_active_connections(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        NetworkManager *nm = userdata;
        const char *path;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                /* Not running (or going away): nothing to show it. */
                log_debug("NetworkManager: cannot read the active connections: %s", error_text(reply));
                nm->profiles = true; /* no second step */
                call_finished(nm);
                return 0;
        }
        if (sd_bus_message_enter_container(reply, 'v', "ao") > 0 &&
            sd_bus_message_enter_container(reply, 'a', "o") > 0)
                while (sd_bus_message_read(reply, "o", &path) > 0) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        if (sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, path,
                                                           "org.freedesktop.DBus.Properties",
                                                           "GetAll") >= 0 &&
                            sd_bus_message_append(m, "s", NM_ACTIVE) >= 0)
                                (void)send_call(nm, m, on_active_read, NULL);
                }
        call_finished(nm);
        return 0;
}

static void sync_start(NetworkManager *nm)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        if (!networkmanager_plugin_installed()) {
                if (!nm->said_no_plugin)
                        log_debug(
                                "NetworkManager-netmaker is not installed: no profiles for NetworkManager.");
                nm->said_no_plugin = true;
                return;
        }
        nm->said_no_plugin = false;
        nm->running = true;
        nm->profiles = false;
        nm->pending = 0;
        g_hash_table_remove_all(nm->active);
        if (sd_bus_message_new_method_call(nm->bus, &m, NM_NAME, NM_PATH, "org.freedesktop.DBus.Properties",
                                           "Get") < 0 ||
            sd_bus_message_append(m, "ss", NM_IFACE, "ActiveConnections") < 0 ||
            send_call(nm, m, on_active_connections, NULL) < 0)
                sync_done(nm);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        NetworkManager *nm = userdata;
        if (nm->running)
                nm->again = true;
        else
                sync_start(nm);
        return 0;
}

void networkmanager_sync(NetworkManager *nm)
{
        sd_event *e;
        uint64_t now;

        if (!nm)
                return;
        e = nm->manager->event;
        if (!e)
                return;
        (void)sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (!nm->timer) {
                if (sd_event_add_time(e, &nm->timer, CLOCK_MONOTONIC, now + SYNC_DELAY_USEC, 0, on_timer,
                                      nm) >= 0)
                        (void)sd_event_source_set_description(nm->timer, "networkmanager");
                return;
        }
        (void)sd_event_source_set_time(nm->timer, now + SYNC_DELAY_USEC);
        (void)sd_event_source_set_enabled(nm->timer, SD_EVENT_ONESHOT);
}

/* ---- watching NetworkManager ----------------------------------------------------------------- */

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        NetworkManager *nm = userdata;
        const char *name = NULL, *old_owner = NULL, *new_owner = NULL;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (new_owner && *new_owner) {
                /* A (new) NetworkManager: it has the profiles on disk but no VPN active. */
                log_debug("NetworkManager appeared on the bus: syncing the profiles.");
                networkmanager_sync(nm);
        }
        return 0;
}

static int on_nm_properties(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        NetworkManager *nm = userdata;
        const char *iface = NULL;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq0(iface, NM_IFACE))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *key = NULL;
                if (sd_bus_message_read(m, "s", &key) < 0)
                        break;
                if (streq0(key, "PrimaryConnection")) {
                        /* VPNs need one: a network that could not be shown may be shown now. */
                        networkmanager_sync(nm);
                        return 0;
                }
                (void)sd_bus_message_skip(m, "v");
                (void)sd_bus_message_exit_container(m);
        }
        return 0;
}

int networkmanager_new(Manager *m, NetworkManager **ret)
{
        NetworkManager *nm = g_new0(NetworkManager, 1);
        int r;

        nm->manager = m;
        nm->bus = sd_bus_ref(m->bus);
        nm->slots = g_ptr_array_new_with_free_func(slot_unref);
        nm->active = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        nm->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        /* NetworkManager's name only (arg0), not every name on the bus. */
        r = sd_bus_add_match_async(
                nm->bus, &nm->owner_match,
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                "arg0='" NM_NAME "'",
                on_owner_changed, NULL, nm);
        if (r >= 0)
                r = sd_bus_match_signal_async(nm->bus, &nm->props_match, NM_NAME, NM_PATH,
                                              "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                              on_nm_properties, NULL, nm);
        if (r < 0) {
                networkmanager_free(nm);
                return r;
        }
        networkmanager_sync(nm); /* it may be running already */
        *ret = nm;
        return 0;
}

NetworkManager *networkmanager_free(NetworkManager *nm)
{
        if (!nm)
                return NULL;
        g_ptr_array_unref(nm->slots); /* cancels what is in flight */
        sd_bus_slot_unref(nm->owner_match);
        sd_bus_slot_unref(nm->props_match);
        sd_event_source_disable_unref(nm->timer);
        g_hash_table_unref(nm->active);
        g_hash_table_unref(nm->known);
        sd_bus_unref(nm->bus);
        g_free(nm);
        return NULL;
}
