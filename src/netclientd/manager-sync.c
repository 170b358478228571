/* Staying in step with the server: its messages (serials, peer deltas, network changes, snapshots),
 * pulls of the full state, check-ins, and the broker connection the messages arrive on. */
#include "config.h"

#include <errno.h>

#include "bus-errors.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "mq-client.h"
#include "network.h"
#include "network-dns.h"
#include "nm-error.h"

static void message_unref(gpointer p)
{
        sd_bus_message_unref(p);
}

GPtrArray *manager_pull_waiters_new(void)
{
        return g_ptr_array_new_with_free_func(message_unref);
}

/* Hands a peers message to its network, then updates what follows the peers; a failure on the link
 * is logged and retried, not fatal. */
static void apply_delta(Manager *m, Network *n, const NmMessage *msg)
{
        g_autoptr(GError) e = NULL;
        int r = network_apply_delta(n, msg, &e);

        if (r < 0) {
                log_error("Failed to update the peers of %s (retrying): %s", n->ifname,
                          e ? e->message : g_strerror(-r));
                manager_schedule_retry(m);
        }
        network_dns_update(n);
        /* An internet gateway's default route comes and goes with its peer. */
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
        manager_sync_connected(m, n);
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
                NmNetworkState *copy = nm_network_state_copy(src);
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
                if (!n)
                        return want_pull(m, "Peers for a network we do not know");
                m->serial = msg->serial;
                apply_delta(m, n, msg);
                log_info("Network %s: %u added, %u updated, %u removed (serial %" G_GUINT64_FORMAT ").",
                         n->name, msg->add ? msg->add->len : 0, msg->update ? msg->update->len : 0,
                         msg->remove ? msg->remove->len : 0, m->serial);
                break;
        }
        case NM_MSG_NETWORK_JOINED: {
                NmNetworkState *copy = nm_network_state_copy(msg->net);
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
                m->serial = msg->serial;
                apply_network_state(m, nm_network_state_copy(msg->net));
                log_info("Network %s: settings changed (serial %" G_GUINT64_FORMAT ").", n->name, m->serial);
                break;
        }
        default:
                return MESSAGE_IGNORED;
        }
        manager_save_state(m);
        return MESSAGE_APPLIED;
}

/* ---- pulls and check-ins ------------------------------------------------------------------------ */

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
                manager_sync_connected(m, n);
        }
        g_strfreev(m->endpoints);
        m->endpoints = manager_host_endpoints(m);
        rep->endpoints = g_strdupv(m->endpoints);
        rep->public_ip = g_strdup(m->public_ip);
        /* Handshake ages: the server relays pairs that cannot connect (docs/protocol.md §3.5). */
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                network_add_peer_status(v, rep);
        if (m->event)
                (void)sd_event_now(m->event, CLOCK_MONOTONIC, &m->last_checkin_usec);
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

#define CHECKIN_MIN_INTERVAL_USEC (5 * G_USEC_PER_SEC)

static int on_checkin_soon(sd_event_source *s, uint64_t usec, void *userdata)
{
        manager_send_checkin(userdata);
        return 0;
}

void manager_checkin_soon(Manager *m)
{
        uint64_t now;
        int r;

        if (!m->event || !m->server || sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        uint64_t at = MAX(now, m->last_checkin_usec + CHECKIN_MIN_INTERVAL_USEC);
        if (m->checkin_soon) {
                int enabled = SD_EVENT_OFF;
                (void)sd_event_source_get_enabled(m->checkin_soon, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return; /* one is coming */
                r = sd_event_source_set_time(m->checkin_soon, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->checkin_soon, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(m->event, &m->checkin_soon, CLOCK_MONOTONIC, at, 100 * 1000,
                                      on_checkin_soon, m);
                if (r >= 0)
                        (void)sd_event_source_set_description(m->checkin_soon, "checkin-soon");
        }
        if (r < 0)
                log_debug_errno(r, "Failed to schedule a check-in: %m");
}

/* ---- Connect and Disconnect ------------------------------------------------------------------------ */

/* `userdata` is the network: a network that goes cancels its request, so it outlives the call. */
static void on_connected_told(ApiClient *c, const ApiResult *res, void *userdata)
{
        Network *n = userdata;
        bool told = n->connected_telling;

        n->connected_request = NULL;
        if (res->error)
                /* Tried again with the next check-in or state from the server. */
                log_warning("Network %s: could not tell the server that this host %s: %s", n->name,
                            told ? "connected" : "disconnected", res->error->message);
        else {
                log_info("Network %s: the server knows this host %s; its peers %s it.", n->name,
                         told ? "connected" : "disconnected", told ? "take back" : "drop");
                /* Its state follows over the broker; without one, fetch it. */
                if (!n->manager->mq || !mq_client_is_ready(n->manager->mq))
                        manager_pull(n->manager, NULL);
        }
}

void manager_sync_connected(Manager *m, Network *n)
{
        g_autoptr(JsonBuilder) b = NULL;
        g_autofree char *escaped = NULL, *url = NULL, *body = NULL;
        bool want = network_is_connected(n);
        int r;

        if (!m->server || !m->api || n->connected_request || n->desired->connected == want)
                return;
        b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_bool(b, "connected", want);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        escaped = g_uri_escape_string(n->name, NULL, false);
        url = g_strdup_printf("%s/api/v1/host/networks/%s/connected", m->server->api, escaped);
        n->connected_telling = want;
        r = api_client_request(m->api, "PUT", url, m->server->credential, body, on_connected_told, n,
                               &n->connected_request);
        if (r < 0)
                log_warning_errno(r, "Network %s: failed to tell the server about the %s: %m", n->name,
                                  want ? "Connect" : "Disconnect");
}

/* ---- the broker --------------------------------------------------------------------------------- */

/* The broker connection went up (subscribed) or down. */
static void on_broker_ready(MqClient *c, bool ready, void *userdata)
{
        Manager *m = userdata;

        manager_state_maybe_changed(m);
        if (!ready)
                return;
        /* Whatever was sent while we were away is not queued for us: catch up with a snapshot. */
        manager_pull(m, NULL);
        manager_send_checkin(m);
        manager_public_ip_refresh(m);
}

static void on_broker_message(MqClient *c, const NmMessage *msg, void *userdata)
{
        manager_handle_message(userdata, msg);
}

void manager_start_broker(Manager *m)
{
        static const MqClientCallbacks callbacks = {
                .ready = on_broker_ready,
                .message = on_broker_message,
        };
        g_auto(NmTlsTrust) trust = {};
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
        r = manager_broker_trust(m, &trust, &e);
        if (r < 0)
                log_error_errno(r, "%s", e->message);
        else
                r = mq_client_new(m->event, m->server, &m->identity, &trust, &callbacks, m, &m->mq);
        if (r >= 0)
                r = mq_client_start(m->mq);
        if (r < 0)
                log_error_errno(r, "Failed to set up the broker connection to %s: %m", m->server->mqtt_url);
}
