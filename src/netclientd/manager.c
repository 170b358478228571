/* The Manager, netclientd's owner object: creating and freeing it, its state and networks, the retry
 * and periodic timers, how it reaches the server (API URLs, transport security) and start-up.
 * Joining and leaving are in manager-join.c, server messages, pulls and check-ins in manager-sync.c. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boot-unit.h"
#include "firewall.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "mq-client.h"
#include "names.h"
#include "network.h"
#include "network-dns.h"
#include "nm-error.h"
#include "peer.h"
#include "polkit.h"
#include "networkmanager.h"
#include "status.h"

#define USEC_PER_SEC            1000000ULL
#define RETRY_USEC              (5 * USEC_PER_SEC)
#define ENDPOINTS_DEBOUNCE_USEC (500 * 1000ULL)

static const char *const state_names[_MANAGER_STATE_MAX] = {
        [MANAGER_STATE_UNREGISTERED] = "unregistered",
        [MANAGER_STATE_JOINING] = "joining",
        [MANAGER_STATE_ONLINE] = "online",
        [MANAGER_STATE_OFFLINE] = "offline",
};

const char *manager_state_to_string(ManagerState s)
{
        if (s < 0 || s >= _MANAGER_STATE_MAX)
                return "unknown";
        return state_names[s];
}

static void network_free_void(gpointer n)
{
        network_free(n);
}

int manager_new(Config *config, Manager **ret)
{
        Manager *m = g_new0(Manager, 1);

        m->config = config;
        m->networks = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, network_free_void);
        m->disconnected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        m->pull_waiters = manager_pull_waiters_new();
        m->pull_waiters_next = manager_pull_waiters_new();
        m->exported_state = _MANAGER_STATE_MAX;
        (void)status_new(m, &m->status);
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        join_job_free(m->join);
        api_request_cancel(m->pull_request);
        api_request_cancel(m->checkin_request);
        manager_public_ip_stop(m);
        g_free(m->public_ip);
        g_ptr_array_unref(m->pull_waiters);
        g_ptr_array_unref(m->pull_waiters_next);
        mq_client_free(m->mq);
        /* Before the networks: their profiles in NetworkManager outlive the daemon too. */
        m->networkmanager = networkmanager_free(m->networkmanager);
        /* Networks go without touching their links: the links outlive the daemon. */
        g_hash_table_unref(m->networks);
        manager_dns_stop(m);                /* after the networks: they listen on its sockets */
        m->status = status_free(m->status); /* after the networks: their peers report to it */
        g_hash_table_unref(m->disconnected);
        api_client_free(m->api);
        link_monitor_free(m->link_monitor);
        if (m->rtnl)
                nl_socket_free(m->rtnl);
        wg_backend_free(m->wg);
        /* Our nftables table stays: forwarding must not stop while the daemon restarts. */
        firewall_free(m->firewall);
        polkit_registry_free(m->polkit_registry);
        sd_event_source_disable_unref(m->checkin_timer);
        sd_event_source_disable_unref(m->checkin_soon);
        sd_event_source_disable_unref(m->stats_timer);
        sd_event_source_disable_unref(m->endpoints_timer);
        sd_event_source_disable_unref(m->retry_timer);
        g_strfreev(m->endpoints);
        server_config_free(m->server);
        identity_clear(&m->identity);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        g_free(m);
        return NULL;
}

/* ---- state ---------------------------------------------------------------------------------------- */

ManagerState manager_get_state(Manager *m)
{
        if (m->join)
                return MANAGER_STATE_JOINING;
        if (!m->server)
                return MANAGER_STATE_UNREGISTERED;
        return mq_client_is_ready(m->mq) ? MANAGER_STATE_ONLINE : MANAGER_STATE_OFFLINE;
}

static void emit_manager_changed(Manager *m, const char *const *props)
{
        if (!m->bus)
                return;
        (void)sd_bus_emit_properties_changed_strv(m->bus, NETCLIENT_OBJECT_PATH, NETCLIENT_INTERFACE,
                                                  (char **)props);
}

void manager_state_maybe_changed(Manager *m)
{
        ManagerState s = manager_get_state(m);
        static const char *const props[] = {"State", NULL};

        if (s == m->exported_state)
                return;
        log_debug("State: %s -> %s", manager_state_to_string(m->exported_state), manager_state_to_string(s));
        m->exported_state = s;
        emit_manager_changed(m, props);
}

void manager_emit_registration_changed(Manager *m)
{
        static const char *const props[] = {"HostId", "Server", "PublicKey", NULL};
        emit_manager_changed(m, props);
}

static void emit_networks_changed(Manager *m)
{
        static const char *const props[] = {"Networks", NULL};
        emit_manager_changed(m, props);
}

int manager_save_state(Manager *m)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) nets = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;
        int r;

        if (!m->server)
                return 0;
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(nets, ((Network *)v)->desired);
        NmState s = {.host_id = m->server->host_id, .serial = m->serial, .networks = nets};
        r = node_state_save(m->config->state_dir, &s, m->disconnected, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to save the network state: %s", e->message);
        return 0;
}

Network *manager_get_network(Manager *m, const char *name)
{
        return name ? g_hash_table_lookup(m->networks, name) : NULL;
}

static int strcmp_p(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char **manager_network_paths(Manager *m)
{
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(a, g_strdup(((Network *)v)->path));
        g_ptr_array_sort(a, strcmp_p);
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(a, false);
}

/* Forwarding and routing rules follow the roles of all networks; failures are retried. */
void manager_apply_forwarding(Manager *m)
{
        manager_sync_forwarding(m);
        if (m->forwarding_failed)
                manager_schedule_retry(m);
}

/* Applies a network to its link; a failure is logged and retried later, not fatal. */
void manager_apply_network(Manager *m, Network *n)
{
        g_autoptr(GError) e = NULL;
        int r = network_apply(n, &e);

        n->apply_failed = r < 0;
        if (r < 0) {
                log_error("Failed to configure %s for network %s (retrying): %s", n->ifname, n->name,
                          e ? e->message : g_strerror(-r));
                manager_schedule_retry(m);
        }
        network_dns_update(n);
        manager_apply_forwarding(m);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Network *)v)->apply_failed)
                        manager_apply_network(m, v);
        if (m->forwarding_failed)
                manager_apply_forwarding(m);
        return 0;
}

void manager_schedule_retry(Manager *m)
{
        uint64_t now;

        if (!m->event)
                return;
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!m->retry_timer) {
                if (sd_event_add_time(m->event, &m->retry_timer, CLOCK_MONOTONIC, now + RETRY_USEC, 0,
                                      on_retry, m) < 0)
                        return;
                (void)sd_event_source_set_description(m->retry_timer, "retry");
                return;
        }
        if (sd_event_source_get_enabled(m->retry_timer, NULL) > 0)
                return; /* already pending */
        (void)sd_event_source_set_time(m->retry_timer, now + RETRY_USEC);
        (void)sd_event_source_set_enabled(m->retry_timer, SD_EVENT_ONESHOT);
}

/* Adds a network the server gave us (takes `desired`). */
Network *manager_add_network(Manager *m, NmNetworkState *desired)
{
        Network *n;
        int r = network_new(m, desired, &n);

        if (r < 0) {
                log_error_errno(r, "Failed to set up network %s: %m", desired->network);
                nm_network_state_free(desired);
                return NULL;
        }
        n->serial = m->serial;
        g_hash_table_insert(m->networks, n->name, n);
        emit_networks_changed(m);
        log_info("Joined network %s as %s%s%s on %s.", n->name, strempty(n->desired->ipv4),
                 n->desired->ipv4 && n->desired->ipv6 ? ", " : "", strempty(n->desired->ipv6), n->ifname);
        return n;
}

void manager_remove_network(Manager *m, Network *n, bool teardown)
{
        g_autoptr(GError) e = NULL;
        g_autofree char *name = g_strdup(n->name);

        network_dns_stop(n);
        if (teardown && network_teardown(n, &e) < 0)
                log_warning("Failed to remove link %s: %s", n->ifname, e ? e->message : "unknown error");
        g_hash_table_remove(m->disconnected, name);
        g_hash_table_remove(m->networks, name);
        emit_networks_changed(m);
        log_info("Left network %s.", name);
        /* Its roles went with it. */
        manager_apply_forwarding(m);
}

/* ---- talking to the server ---------------------------------------------------------------------- */

char *manager_api_url(Manager *m, const char *api, const char *path)
{
        return g_strconcat(api ? api : m->server->api, "/api/v1", path, NULL);
}

/* ---- transport security ------------------------------------------------------------------------- */

/* Plain http:// or mqtt:// would carry the enrollment key, the host credential and the broker
 * password in the clear: only to this machine, or where the admin said Insecure=yes. */
int manager_check_plain(Manager *m, const char *what, const char *url, GError **error)
{
        if (!url || !(g_str_has_prefix(url, "http://") || g_str_has_prefix(url, "mqtt://")))
                return 0;
        g_autofree char *host = nm_url_host(url);
        if (nm_host_is_loopback(host))
                return 0;
        if (!m->config->insecure) {
                g_autofree char *shown = nm_shown(url);
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Refusing plain %s to %s \"%s\": the enrollment key and this host's credentials "
                        "would "
                        "cross the network in the clear. Use a server with TLS (https://, mqtts://), or set "
                        "Insecure=yes in [Server] of netclientd.conf to allow it anyway",
                        g_str_has_prefix(url, "http") ? "HTTP" : "MQTT", what, shown);
                return -EPERM;
        }
        log_warning(
                "INSECURE: plain %s to %s %s (Insecure=yes): credentials cross the network in the clear.",
                g_str_has_prefix(url, "http") ? "HTTP" : "MQTT", what, url);
        return 0;
}

/* The API's trust: the pin the token carried, else a CA (CAFile=, or the system's). */
void manager_set_api_trust(Manager *m, bool has_pin, const NmTlsPin *pin)
{
        g_auto(NmTlsTrust) t = {.mode = has_pin ? NM_TLS_PIN : NM_TLS_CA};

        if (has_pin)
                t.pin = *pin;
        else
                t.ca_file = g_strdup(m->config->ca_file);
        api_client_set_trust(m->api, &t);
}

void manager_update_api_trust(Manager *m)
{
        if (!m->api)
                return;
        if (m->server)
                manager_set_api_trust(m, m->server->has_pin, &m->server->pin);
        else
                manager_set_api_trust(m, false, NULL);
}

/* The broker's trust, as the server said at registration: its pin, or the CA it handed over
 * (kept as broker-ca.pem in the state directory); else CAFile= or the system's. */
int manager_broker_trust(Manager *m, NmTlsTrust *ret, GError **error)
{
        ServerConfig *s = m->server;

        *ret = (NmTlsTrust){.mode = s->mqtt_has_pin ? NM_TLS_PIN : NM_TLS_CA, .pin = s->mqtt_pin};
        if (s->mqtt_has_pin)
                return 0;
        if (s->mqtt_ca_pem) {
                int r = state_write_atomic(m->config->state_dir, STATE_BROKER_CA_FILE, s->mqtt_ca_pem,
                                           strlen(s->mqtt_ca_pem), error);
                if (r < 0)
                        return r;
                ret->ca_file = g_build_filename(m->config->state_dir, STATE_BROKER_CA_FILE, NULL);
        } else
                ret->ca_file = g_strdup(m->config->ca_file);
        return 0;
}

/* ---- timers and local changes ------------------------------------------------------------------- */

static int rearm(sd_event_source *s, uint64_t usec)
{
        uint64_t now;
        int r = sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_source_set_time(s, now + usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_checkin_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        manager_send_checkin(m);
        /* The public address can change without any local change (the NAT's own address). */
        manager_public_ip_refresh(m);
        return rearm(s, m->config->checkin_usec);
}

static int on_stats_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        GHashTableIter it;
        gpointer v;

        bool changed = false;

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                int r = network_refresh_stats(v);
                if (r < 0)
                        log_debug_errno(r, "Failed to read statistics of %s: %m", ((Network *)v)->ifname);
                changed = changed || r > 0;
        }
        /* A pair got or lost its session: the server wants to know soon (failover). */
        if (changed)
                manager_checkin_soon(m);
        return rearm(s, m->config->stats_usec);
}

static gboolean strv_equal0(char **a, char **b)
{
        if (!a || !b)
                return (!a || !*a) && (!b || !*b);
        return g_strv_equal((const char *const *)a, (const char *const *)b);
}

static int on_endpoints_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        g_auto(GStrv) now = manager_host_endpoints(m);

        if (!m->server || strv_equal0(now, m->endpoints))
                return 0;
        /* A new local address may come with a new public one. */
        manager_public_ip_refresh(m);
        for (char **e = m->endpoints; m->mq && e && *e; e++)
                if (!g_strv_contains((const char *const *)now, *e)) {
                        /* The broker connection may have used the address that went away: its packets
                         * would be lost without an error until the keepalive runs out. Connect again;
                         * the check-in follows the new connection. Meanwhile, tell the server over HTTP. */
                        log_info(
                                "This host's addresses changed (%s is gone): reconnecting to the broker and "
                                "checking in.",
                                *e);
                        (void)mq_client_reconnect(m->mq);
                        manager_state_maybe_changed(m);
                        manager_send_checkin(m);
                        return 0;
                }
        log_info("This host's addresses changed: checking in.");
        manager_send_checkin(m);
        return 0;
}

static void on_link_event(LinkMonitor *mon, const LinkEvent *ev, void *userdata)
{
        Manager *m = userdata;

        if (ev->type == LINK_EVENT_LINK_NEW || ev->type == LINK_EVENT_LINK_DEL) {
                if (g_str_has_prefix(ev->ifname, "nm-"))
                        return;
        }
        /* Debounce: addresses often come and go in bursts. */
        if (m->endpoints_timer)
                (void)rearm(m->endpoints_timer, ENDPOINTS_DEBOUNCE_USEC);
}

/* ---- start ---------------------------------------------------------------------------------------- */

int manager_load_state(Manager *m)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(NodeState) ns = NULL;
        int r;

        r = state_dir_prepare(m->config->state_dir, &e);
        if (r < 0)
                return log_error_errno(r, "%s", e->message);

        r = identity_load(m->config->state_dir, &m->identity, &e);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "%s", e->message);
        m->have_identity = r >= 0;

        r = server_config_load(m->config->state_dir, &m->server, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to load %s/%s: %s", m->config->state_dir,
                                       STATE_SERVER_FILE, e->message);
        if (!m->have_identity)
                return log_error_errno(-ENOKEY, "%s/%s exists but the host's keys (%s) are missing.",
                                       m->config->state_dir, STATE_SERVER_FILE, STATE_IDENTITY_FILE);

        r = node_state_load(m->config->state_dir, &ns, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                /* Not fatal: the server has the truth; a pull will bring it back. */
                log_warning("Ignoring unusable %s/%s: %s", m->config->state_dir, STATE_NODES_FILE,
                            e->message);
                return 0;
        }
        if (!streq0(ns->state->host_id, m->server->host_id)) {
                log_warning("Ignoring %s/%s: it belongs to another host.", m->config->state_dir,
                            STATE_NODES_FILE);
                return 0;
        }
        m->serial = ns->state->serial;
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, ns->disconnected);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_hash_table_add(m->disconnected, g_strdup(k));
        while (ns->state->networks->len > 0) {
                NmNetworkState *s = g_ptr_array_steal_index(ns->state->networks, 0);
                if (manager_get_network(m, s->network)) {
                        nm_network_state_free(s);
                        continue;
                }
                manager_add_network(m, s);
        }
        return 0;
}

static int open_bus(Manager *m)
{
        int r;

        r = sd_bus_open_system_with_description(&m->bus, "netclientd");
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(m->bus, m->event, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        return 0;
}

static int add_timer(Manager *m, sd_event_source **s, uint64_t usec, sd_event_time_handler_t cb,
                     const char *what, bool enabled)
{
        uint64_t now;
        int r;

        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(m->event, s, CLOCK_MONOTONIC, now + usec, 0, cb, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the %s timer: %m", what);
        (void)sd_event_source_set_description(*s, what);
        if (!enabled)
                (void)sd_event_source_set_enabled(*s, SD_EVENT_OFF);
        return 0;
}

int manager_startup(Manager *m)
{
        g_autoptr(GError) e = NULL;
        GHashTableIter it;
        gpointer v;
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to get the event loop: %m");

        /* The bus first, so that networks loaded from disk are exported as they are created. */
        r = open_bus(m);
        if (r < 0)
                return r;

        r = manager_load_state(m);
        if (r < 0)
                return r;

        WgBackendOptions wo = {
                .kind = m->config->wg_backend,
                .uapi_dir = m->config->uapi_dir,
                .wireguard_go = m->config->wireguard_go,
                /* wireguard-go processes are reaped from the loop when they end (a deleted link), but
                 * not owned: they outlive us, so a restart keeps the links and their sessions. */
                .event = m->event,
        };
        r = wg_backend_new(&wo, &m->wg, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the WireGuard backend: %s", e ? e->message : "");
        log_info("WireGuard backend: %s.", m->wg->vtable->name);

        r = link_rtnl_open(&m->rtnl);
        if (r < 0)
                return log_error_errno(r, "Failed to open an rtnetlink socket: %m");
        r = firewall_new(&m->firewall);
        if (r < 0)
                return log_error_errno(r, "Failed to set up nftables: %m");
        r = link_monitor_new(m->event, on_link_event, m, &m->link_monitor);
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to watch address changes (check-ins will be periodic only): %m");

        r = api_client_new(m->event, m->config->http_timeout_usec, &m->api);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP client: %m");
        manager_update_api_trust(m);

        r = manager_bus_register(m);
        if (r < 0)
                return r;
        r = manager_dns_start(m);
        if (r < 0)
                return r;

        /* Links that survived us are adopted and diffed; nothing is recreated or reset. */
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                manager_apply_network(m, v);
        /* Also with no network left: forwarding rules and routing rules a previous run left behind
         * for roles that are gone now are removed. */
        manager_apply_forwarding(m);

        r = add_timer(m, &m->checkin_timer, m->config->checkin_usec, on_checkin_timer, "checkin", true);
        if (r >= 0)
                r = add_timer(m, &m->stats_timer, MIN(m->config->stats_usec, 1 * USEC_PER_SEC),
                              on_stats_timer, "stats", true);
        if (r >= 0)
                r = add_timer(m, &m->endpoints_timer, ENDPOINTS_DEBOUNCE_USEC, on_endpoints_timer,
                              "endpoints", false);
        if (r < 0)
                return r;

        if (m->server) {
                log_info("Registered with %s as host %s, %u network(s), serial %" G_GUINT64_FORMAT ".",
                         m->server->api, m->server->host_id, g_hash_table_size(m->networks), m->serial);
                manager_start_broker(m);
                /* Joined: come back at boot (also repairs a unit disabled by hand or an upgrade). */
                boot_unit_set(m->bus, true);
        } else
                log_info("Not registered with a server yet (netclient join -t TOKEN).");
        manager_state_maybe_changed(m);
        return 0;
}
