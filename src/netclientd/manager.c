/* The Manager: state, networks, server messages and pulls (joining and leaving: manager-join.c). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-errors.h"
#include "firewall.h"
#include "host-api.h"
#include "json-util.h"
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

static void message_unref(gpointer p)
{
        sd_bus_message_unref(p);
}

GPtrArray *manager_pull_waiters_new(void)
{
        return g_ptr_array_new_with_free_func(message_unref);
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
        /* Networks go without touching their links: the links outlive the daemon. */
        g_hash_table_unref(m->networks);
        manager_dns_stop(m); /* after the networks: they listen on its sockets */
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

static void apply_network_peers(Network *n, GArray *keys)
{
        g_autoptr(GError) e = NULL;
        int r = network_apply_peers(n, keys, &e);

        if (r < 0) {
                n->apply_failed = true;
                log_error("Failed to update the peers of %s (retrying): %s", n->ifname,
                          e ? e->message : g_strerror(-r));
                manager_schedule_retry(n->manager);
        }
        network_dns_update(n);
        /* An internet gateway's default route comes and goes with its peer. */
        manager_apply_forwarding(n->manager);
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

/* Makes one network what the server says it is: create it, or update it with a full diff. */
static void apply_network_state(Manager *m, NmNetworkState *ns)
{
        Network *n = manager_get_network(m, ns->network);

        if (!n) {
                n = manager_add_network(m, ns);
                if (n)
                        manager_apply_network(m, n);
                return;
        }
        network_set_serial(n, m->serial);
        if (network_set_desired(n, ns) || !n->link_configured || n->apply_failed)
                manager_apply_network(m, n);
        else
                network_dns_update(n); /* names (custom, own) may have changed without the link */
}

int manager_apply_snapshot(Manager *m, const NmState *state, GError **error)
{
        g_autoptr(GHashTable) keep = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) gone = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        if (!m->server || !streq0(state->host_id, m->server->host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "The snapshot is for another host (%.36s)", strna(state->host_id));
                return -EINVAL;
        }
        m->serial = state->serial;
        m->highest_serial_seen = MAX(m->highest_serial_seen, state->serial);
        for (guint i = 0; i < state->networks->len; i++) {
                NmNetworkState *src = state->networks->pdata[i];
                g_hash_table_add(keep, src->network);
        }
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (!g_hash_table_contains(keep, ((Network *)v)->name))
                        g_ptr_array_add(gone, v);
        for (guint i = 0; i < gone->len; i++)
                manager_remove_network(m, gone->pdata[i], true);
        for (guint i = 0; i < state->networks->len; i++) {
                NmNetworkState *src = state->networks->pdata[i];
                /* A snapshot always lists the peers; an absent list means none. */
                g_autoptr(JsonBuilder) b = json_builder_new();
                nm_network_state_to_json(src, b);
                g_autoptr(JsonNode) node = json_builder_get_root(b);
                NmNetworkState *copy = nm_network_state_from_json(node, NULL);
                if (!copy)
                        continue;
                if (!copy->peers)
                        copy->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
                apply_network_state(m, copy);
        }
        manager_save_state(m);
        return 0;
}

/* ---- server messages ---------------------------------------------------------------------------- */

static MessageResult want_pull(Manager *m, const char *why)
{
        log_info("%s: pulling a snapshot from the server.", why);
        manager_pull(m, NULL);
        return MESSAGE_PULL;
}

MessageResult manager_handle_message(Manager *m, const NmMessage *msg)
{
        const char *type = nm_message_type_to_string(msg->type);
        g_autoptr(GError) e = NULL;

        if (!m->server)
                return MESSAGE_IGNORED;

        /* Authenticated by the pinned server key: acted on whatever its serial. */
        if (msg->type == NM_MSG_HOST_DELETED) {
                log_notice(
                        "The server deleted this host: removing every network and forgetting the server.");
                manager_forget_server(m, true);
                return MESSAGE_APPLIED;
        }
        if (msg->type == NM_MSG_SNAPSHOT) {
                if (msg->state->serial < m->serial) {
                        log_debug("Ignoring a snapshot at serial %" G_GUINT64_FORMAT
                                  " (we are at %" G_GUINT64_FORMAT ").",
                                  msg->state->serial, m->serial);
                        return MESSAGE_IGNORED;
                }
                if (manager_apply_snapshot(m, msg->state, &e) < 0) {
                        log_warning("Ignoring a snapshot: %s", e->message);
                        return MESSAGE_IGNORED;
                }
                log_info("Applied a snapshot at serial %" G_GUINT64_FORMAT ".", m->serial);
                return MESSAGE_APPLIED;
        }

        m->highest_serial_seen = MAX(m->highest_serial_seen, msg->serial);
        if (msg->serial <= m->serial) {
                log_debug("Ignoring %s message with old serial %" G_GUINT64_FORMAT " (at %" G_GUINT64_FORMAT
                          ").",
                          type, msg->serial, m->serial);
                return MESSAGE_IGNORED;
        }
        if (msg->serial != m->serial + 1) {
                g_autofree char *why =
                        g_strdup_printf("Serial gap (at %" G_GUINT64_FORMAT ", got %" G_GUINT64_FORMAT ")",
                                        m->serial, msg->serial);
                return want_pull(m, why);
        }
        switch (msg->type) {
        case NM_MSG_PEERS: {
                Network *n = manager_get_network(m, msg->network);
                g_autoptr(GArray) keys = NULL;
                if (!n)
                        return want_pull(m, "Peers for a network we do not know");
                if (network_state_apply_delta(n->desired, msg, &keys, &e) < 0) {
                        log_warning("Cannot apply a peers message: %s", e->message);
                        return want_pull(m, "Unusable peers message");
                }
                m->serial = msg->serial;
                network_set_serial(n, m->serial);
                network_sync_peer_objects(n);
                apply_network_peers(n, keys);
                log_info("Network %s: %u added, %u updated, %u removed (serial %" G_GUINT64_FORMAT ").",
                         n->name, msg->add ? msg->add->len : 0, msg->update ? msg->update->len : 0,
                         msg->remove ? msg->remove->len : 0, m->serial);
                break;
        }
        case NM_MSG_NETWORK_JOINED: {
                g_autoptr(JsonBuilder) b = json_builder_new();
                nm_network_state_to_json(msg->net, b);
                g_autoptr(JsonNode) node = json_builder_get_root(b);
                NmNetworkState *copy = nm_network_state_from_json(node, NULL);
                if (!copy)
                        return want_pull(m, "Unusable network-joined message");
                if (!copy->peers)
                        copy->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
                m->serial = msg->serial;
                apply_network_state(m, copy);
                break;
        }
        case NM_MSG_NETWORK_LEFT: {
                Network *n = manager_get_network(m, msg->network);
                m->serial = msg->serial;
                if (n)
                        manager_remove_network(m, n, true);
                break;
        }
        case NM_MSG_NETWORK_CHANGED: {
                Network *n = manager_get_network(m, msg->net->network);
                if (!n)
                        return want_pull(m, "Settings for a network we do not know");
                g_autoptr(JsonBuilder) b = json_builder_new();
                nm_network_state_to_json(msg->net, b);
                g_autoptr(JsonNode) node = json_builder_get_root(b);
                NmNetworkState *copy = nm_network_state_from_json(node, NULL);
                if (!copy)
                        return want_pull(m, "Unusable network-changed message");
                m->serial = msg->serial;
                apply_network_state(m, copy);
                log_info("Network %s: settings changed (serial %" G_GUINT64_FORMAT ").", n->name, m->serial);
                break;
        }
        default:
                return MESSAGE_IGNORED;
        }
        manager_save_state(m);
        return MESSAGE_APPLIED;
}

/* ---- talking to the server ---------------------------------------------------------------------- */

char *manager_api_url(Manager *m, const char *api, const char *path)
{
        return g_strconcat(api ? api : m->server->api, "/api/v1", path, NULL);
}

static void reply_pull_waiters(Manager *m, const GError *error)
{
        g_autoptr(GPtrArray) waiters = m->pull_waiters;

        m->pull_waiters = manager_pull_waiters_new();
        for (guint i = 0; i < waiters->len; i++) {
                sd_bus_message *call = waiters->pdata[i];
                if (error) {
                        _cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
                        bus_error_set_gerror(&be, error);
                        (void)sd_bus_reply_method_error(call, &be);
                } else
                        (void)sd_bus_reply_method_return(call, NULL);
        }
}

static void on_pulled(ApiClient *c, const ApiResult *res, void *userdata)
{
        Manager *m = userdata;
        g_autoptr(GError) e = NULL;
        const GError *err = res->error;

        m->pull_request = NULL;
        if (!err) {
                g_autoptr(JsonNode) node = nm_json_parse(res->body, (gssize)res->body_len, &e);
                g_autoptr(NmState) state = node ? nm_state_from_json(node, &e) : NULL;
                /* Messages applied while it was on its way may be newer than the snapshot. */
                if (state && state->serial < m->serial)
                        log_debug("Ignoring a pulled snapshot at serial %" G_GUINT64_FORMAT
                                  " (at %" G_GUINT64_FORMAT ").",
                                  state->serial, m->serial);
                else if (state)
                        manager_apply_snapshot(m, state, &e);
                if (e) {
                        g_prefix_error(&e, "The server's snapshot is unusable: ");
                        err = e;
                }
        }
        if (err)
                log_warning("Pull failed: %s", err->message);
        else
                log_info("Pulled the state from the server (serial %" G_GUINT64_FORMAT ", %u network(s)).",
                         m->serial, g_hash_table_size(m->networks));
        reply_pull_waiters(m, err);
        if (m->pull_again || (!err && m->highest_serial_seen > m->serial)) {
                m->pull_again = false;
                manager_pull(m, NULL);
        }
}

int manager_pull(Manager *m, sd_bus_message *waiter)
{
        g_autofree char *url = NULL;
        int r;

        if (!m->server)
                return -ENOLINK;
        m->pulls++;
        if (!m->api)
                return -ENOLINK; /* state only (unit tests) */
        if (!m->pull_request) {
                g_ptr_array_extend_and_steal(m->pull_waiters, g_steal_pointer(&m->pull_waiters_next));
                m->pull_waiters_next = manager_pull_waiters_new();
                url = manager_api_url(m, NULL, "/host");
                r = api_client_request(m->api, "GET", url, m->server->credential, NULL, on_pulled, m,
                                       &m->pull_request);
                if (r < 0)
                        return log_error_errno(r, "Failed to start a pull: %m");
                if (waiter)
                        g_ptr_array_add(m->pull_waiters, sd_bus_message_ref(waiter));
                return 0;
        }
        /* The answer in flight may predate what the caller knows: ask again after it, and reply to
         * the caller from that second answer. */
        m->pull_again = true;
        if (waiter)
                g_ptr_array_add(m->pull_waiters_next, sd_bus_message_ref(waiter));
        return 0;
}

char **manager_host_endpoints(Manager *m)
{
        g_autoptr(GArray) addrs = NULL;
        GPtrArray *a = g_ptr_array_new();

        if (m->rtnl && link_list_host_addresses(m->rtnl, "nm-", &addrs) >= 0)
                for (guint i = 0; i < addrs->len && a->len < NM_MAX_ENDPOINTS; i++) {
                        LinkAddress *la = &g_array_index(addrs, LinkAddress, i);
                        g_ptr_array_add(a, nm_addr_to_string(la->address.family, &la->address.addr));
                }
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(a, false);
}

static void on_checkin_done(ApiClient *c, const ApiResult *res, void *userdata)
{
        Manager *m = userdata;
        m->checkin_request = NULL;
        if (res->error)
                log_warning("Check-in over HTTP failed: %s", res->error->message);
}

int manager_send_checkin(Manager *m)
{
        g_autoptr(NmReport) rep = nm_report_new(NM_REPORT_CHECKIN);
        GHashTableIter it;
        gpointer v;
        int r;

        if (!m->server)
                return 0;
        rep->version = g_strdup(PACKAGE_VERSION);
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Network *n = v;
                g_hash_table_insert(rep->listen_ports, g_strdup(n->name),
                                    GUINT_TO_POINTER(n->desired->listen_port));
        }
        g_strfreev(m->endpoints);
        m->endpoints = manager_host_endpoints(m);
        rep->endpoints = g_strdupv(m->endpoints);
        rep->public_ip = g_strdup(m->public_ip);
        if (log_get_max_level() >= LOG_DEBUG) {
                g_autofree char *eps = g_strjoinv(" ", m->endpoints);
                log_debug("Check-in: endpoints [%s], %u network(s).", eps,
                          g_hash_table_size(rep->listen_ports));
        }

        if (m->mq && mq_client_is_ready(m->mq)) {
                r = mq_client_publish_report(m->mq, rep);
                if (r >= 0) {
                        log_debug("Checked in over MQTT.");
                        return 0;
                }
                log_debug_errno(r, "Check-in over MQTT failed, trying HTTP: %m");
        }
        if (!m->api || m->checkin_request)
                return 0;
        g_autofree char *body = nm_report_to_json(rep);
        g_autofree char *url = manager_api_url(m, NULL, "/host");
        r = api_client_request(m->api, "PUT", url, m->server->credential, body, on_checkin_done, m,
                               &m->checkin_request);
        if (r < 0)
                return log_warning_errno(r, "Failed to start a check-in: %m");
        return 0;
}

void manager_broker_connected(Manager *m, bool connected)
{
        manager_state_maybe_changed(m);
        if (!connected)
                return;
        /* Whatever was sent while we were away is not queued for us: catch up with a snapshot. */
        manager_pull(m, NULL);
        manager_send_checkin(m);
        manager_public_ip_refresh(m);
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
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Refusing plain %s to %s \"%s\": the enrollment key and this host's credentials would "
                            "cross the network in the clear. Use a server with TLS (https://, mqtts://), or set "
                            "Insecure=yes in [Server] of netclientd.conf to allow it anyway",
                            g_str_has_prefix(url, "http") ? "HTTP" : "MQTT", what, shown);
                return -EPERM;
        }
        log_warning("INSECURE: plain %s to %s %s (Insecure=yes): credentials cross the network in the clear.",
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

void manager_start_broker(Manager *m)
{
        g_autoptr(GError) e = NULL;
        int r;

        m->mq = mq_client_free(m->mq);
        if (!m->server || !m->event)
                return;
        if (!m->server->mqtt_url) {
                log_info("The server runs without a broker: changes arrive by pulls and check-ins only.");
                return;
        }
        if (manager_check_plain(m, "the broker", m->server->mqtt_url, &e) < 0) {
                log_error("%s", e->message);
                return;
        }
        r = mq_client_new(m, &m->mq);
        if (r >= 0)
                r = mq_client_start(m->mq);
        if (r < 0)
                log_error_errno(r, "Failed to set up the broker connection to %s: %m", m->server->mqtt_url);
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

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                int r = network_refresh_stats(v);
                if (r < 0)
                        log_debug_errno(r, "Failed to read statistics of %s: %m", ((Network *)v)->ifname);
        }
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
        } else
                log_info("Not registered with a server yet (netclient join -t TOKEN).");
        manager_state_maybe_changed(m);
        return 0;
}
