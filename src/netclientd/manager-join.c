/* Joining and leaving: registration with the server, the Join, Leave and Connect/Disconnect
 * operations, and forgetting the server when the host leaves its last network or is deleted. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "boot-unit.h"
#include "bus-errors.h"
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

struct JoinJob {
        Manager *manager;
        sd_bus_message *call;
        NmToken token;
        char *token_text; /* secret: sent to the server, wiped on free */
        char *name;
        uint16_t listen_port;
        ApiRequest *request;
        char **networks; /* the networks this join added (for the reply) */
};

void join_job_free(JoinJob *j)
{
        if (!j)
                return;
        api_request_cancel(j->request);
        sd_bus_message_unref(j->call);
        nm_token_clear(&j->token);
        nm_free_secret(j->token_text);
        g_free(j->name);
        g_strfreev(j->networks);
        g_free(j);
}

/* ---- registration ------------------------------------------------------------------------------ */

void manager_forget_server(Manager *m, bool teardown)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) all = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(all, v);
        for (guint i = 0; i < all->len; i++)
                manager_remove_network(m, all->pdata[i], teardown);
        m->mq = mq_client_free(m->mq);
        api_request_cancel(m->pull_request);
        m->pull_request = NULL;
        api_request_cancel(m->checkin_request);
        m->checkin_request = NULL;
        g_clear_pointer(&m->server, server_config_free);
        manager_update_api_trust(m);
        m->serial = m->highest_serial_seen = 0;
        g_hash_table_remove_all(m->disconnected);
        if (state_remove(m->config->state_dir, STATE_NODES_FILE, &e) < 0 ||
            state_remove(m->config->state_dir, STATE_SERVER_FILE, &e) < 0 ||
            state_remove(m->config->state_dir, STATE_BROKER_CA_FILE, &e) < 0)
                log_error("%s", e->message);
        manager_emit_registration_changed(m);
        manager_state_maybe_changed(m);
}

/* ---- Join ----------------------------------------------------------------------------------------- */

static void join_finish(Manager *m, const GError *error)
{
        JoinJob *j = m->join;

        if (!j)
                return;
        m->join = NULL;
        if (error) {
                log_warning("Join failed: %s", error->message);
                /* A failed first join leaves no server behind: nothing is trusted by its token. */
                manager_update_api_trust(m);
                if (j->call) {
                        _cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
                        bus_error_set_gerror(&be, error);
                        (void)sd_bus_reply_method_error(j->call, &be);
                }
        } else {
                manager_emit_join_progress(m, "done");
                boot_unit_set(m->bus, true);
                if (j->call) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                        int r = sd_bus_message_new_method_return(j->call, &reply);
                        if (r >= 0)
                                r = sd_bus_message_open_container(reply, 'a', "o");
                        for (char **n = j->networks; r >= 0 && n && *n; n++) {
                                Network *net = manager_get_network(m, *n);
                                if (net)
                                        r = sd_bus_message_append(reply, "o", net->path);
                        }
                        if (r >= 0)
                                r = sd_bus_message_close_container(reply);
                        if (r >= 0)
                                r = sd_bus_send(NULL, reply, NULL);
                        if (r < 0)
                                log_warning_errno(r, "Failed to reply to Join: %m");
                }
        }
        join_job_free(j);
        manager_state_maybe_changed(m);
}

static void on_registered(ApiClient *c, const ApiResult *res, void *userdata)
{
        Manager *m = userdata;
        JoinJob *j = m->join;
        g_autoptr(GError) e = NULL;
        g_autoptr(ServerConfig) s = server_config_new();
        g_autoptr(NmRegistered) reg = NULL;
        g_autoptr(NmState) state = NULL;
        GPtrArray *names;

        j->request = NULL;
        if (res->error) {
                join_finish(m, res->error);
                return;
        }
        reg = nm_registered_parse(res->body, (gssize)res->body_len, &j->token.server_key,
                                  &m->identity.msg_private, &e);
        if (!reg) {
                g_prefix_error(&e, "Unusable registration answer from %s: ", j->token.api);
                join_finish(m, e);
                return;
        }
        s->api = g_strdup(j->token.api);
        s->server_key = j->token.server_key;
        s->has_pin = j->token.has_pin;
        s->pin = j->token.pin;
        s->host_id = TAKE_PTR(reg->host_id);
        s->credential = TAKE_PTR(reg->credential);
        if (reg->mqtt) {
                s->mqtt_url = TAKE_PTR(reg->mqtt->url);
                s->mqtt_username = TAKE_PTR(reg->mqtt->username);
                s->mqtt_password = TAKE_PTR(reg->mqtt->password);
                s->topic_msg = TAKE_PTR(reg->mqtt->subscribe);
                s->topic_report = TAKE_PTR(reg->mqtt->publish);
                s->mqtt_has_pin = reg->mqtt->has_pin;
                s->mqtt_pin = reg->mqtt->pin;
                s->mqtt_ca_pem = TAKE_PTR(reg->mqtt->ca_pem);
        }
        state = TAKE_PTR(reg->state);
        if (server_config_save(m->config->state_dir, s, &e) < 0) {
                join_finish(m, e);
                return;
        }
        m->server = TAKE_PTR(s);
        log_info("Registered with %s as host %s.", m->server->api, m->server->host_id);
        manager_emit_registration_changed(m);
        manager_emit_join_progress(m, "registered");

        names = g_ptr_array_new();
        for (guint i = 0; i < state->networks->len; i++)
                g_ptr_array_add(names, g_strdup(((NmNetworkState *)state->networks->pdata[i])->network));
        g_ptr_array_add(names, NULL);
        j->networks = (char **)g_ptr_array_free(names, false);

        manager_emit_join_progress(m, "configuring");
        m->serial = 0;
        if (manager_apply_snapshot(m, state, &e) < 0) {
                join_finish(m, e);
                return;
        }
        manager_emit_join_progress(m, "connecting");
        manager_start_broker(m);
        join_finish(m, NULL);
}

static void on_join_pulled(ApiClient *c, const ApiResult *res, void *userdata)
{
        Manager *m = userdata;
        JoinJob *j = m->join;
        g_autoptr(GError) e = NULL;

        j->request = NULL;
        if (res->error) {
                join_finish(m, res->error);
                return;
        }
        g_autoptr(JsonNode) node = nm_json_parse(res->body, (gssize)res->body_len, &e);
        g_autoptr(NmState) state = node ? nm_state_from_json(node, &e) : NULL;
        manager_emit_join_progress(m, "configuring");
        if (!state || manager_apply_snapshot(m, state, &e) < 0) {
                g_prefix_error(&e, "The server's state is unusable: ");
                join_finish(m, e);
                return;
        }
        join_finish(m, NULL);
}

static void join_register(Manager *m);

static void on_networks_added(ApiClient *c, const ApiResult *res, void *userdata)
{
        Manager *m = userdata;
        JoinJob *j = m->join;
        g_autoptr(GError) e = NULL;
        g_autofree char *url = NULL;
        int r;

        j->request = NULL;
        if (res->error) {
                if (res->status == 401) {
                        /* Our credential is gone: the server deleted this host while we did not hear
                         * it. Start over as a new host with the same keys. */
                        log_notice("The server no longer knows this host; registering again.");
                        manager_forget_server(m, true);
                        join_register(m);
                        return;
                }
                join_finish(m, res->error);
                return;
        }

        g_autoptr(JsonNode) node = nm_json_parse(res->body, (gssize)res->body_len, &e);
        if (!node || !JSON_NODE_HOLDS_ARRAY(node)) {
                g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Unusable answer from %s: expected a list of nodes", m->server->api);
                join_finish(m, e);
                return;
        }
        JsonArray *a = json_node_get_array(node);
        GPtrArray *names = g_ptr_array_new();
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *el = json_array_get_element(a, i);
                const char *net = NULL;
                if (JSON_NODE_HOLDS_OBJECT(el) &&
                    nm_json_get_string(json_node_get_object(el), "network", true, &net, NULL) &&
                    nm_network_name_valid(net, NULL))
                        g_ptr_array_add(names, g_strdup(net));
        }
        g_ptr_array_add(names, NULL);
        j->networks = (char **)g_ptr_array_free(names, false);
        manager_emit_join_progress(m, "registered");

        url = manager_api_url(m, NULL, "/host");
        r = api_client_request(m->api, "GET", url, m->server->credential, NULL, on_join_pulled, m,
                               &j->request);
        if (r < 0) {
                g_set_error(&e, NM_ERROR, NM_ERROR_INTERNAL, "Failed to ask for the state: %s",
                            g_strerror(-r));
                join_finish(m, e);
        }
}

static void join_register(Manager *m)
{
        JoinJob *j = m->join;
        g_autoptr(GError) e = NULL;
        g_auto(GStrv) endpoints = manager_host_endpoints(m);
        g_autofree char *url = manager_api_url(m, j->token.api, "/hosts/register");
        g_autofree char *name = NULL;
        int r;

        /* The token says whom to trust: its pin, or a CA. */
        manager_set_api_trust(m, j->token.has_pin, &j->token.pin);

        if (j->name)
                name = g_strdup(j->name);
        else if (m->config->host_name)
                name = nm_host_name_sanitize(m->config->host_name);
        else
                name = nm_host_name_sanitize(g_get_host_name());
        if (!name)
                name = g_strdup("host");

        /* Public material only: the private keys never leave this host. */
        g_autoptr(NmRegistration) reg = nm_registration_new();
        reg->token = g_strdup(j->token_text);
        reg->name = g_strdup(name);
        reg->os = g_strdup("linux");
        reg->version = g_strdup(PACKAGE_VERSION);
        reg->wg_public_key = m->identity.wg_public;
        reg->msg_public_key = m->identity.msg_public;
        reg->listen_port = j->listen_port ? j->listen_port : 51821;
        reg->endpoints = TAKE_PTR(endpoints);
        _cleanup_secret_ char *body = nm_registration_to_json(reg);

        r = api_client_request(m->api, "POST", url, NULL, body, on_registered, m, &j->request);
        if (r < 0) {
                g_set_error(&e, NM_ERROR, NM_ERROR_INTERNAL, "Failed to contact the server: %s",
                            g_strerror(-r));
                join_finish(m, e);
        }
}

int manager_join(Manager *m, sd_bus_message *call, const char *token, const char *name, uint16_t listen_port,
                 sd_bus_error *error)
{
        g_autoptr(GError) e = NULL;
        JoinJob *j;
        int r;

        if (m->join)
                return sd_bus_error_set(error, BUS_ERROR_BUSY,
                                        "Another join is in progress; try again when it ends");

        j = g_new0(JoinJob, 1);
        j->manager = m;
        if (!nm_token_decode(token, &j->token, &e)) {
                join_job_free(j);
                return bus_error_set_gerror(error, e);
        }
        if (manager_check_plain(m, "the server", j->token.api, &e) < 0) {
                join_job_free(j);
                return bus_error_set_gerror(error, e);
        }
        if (m->server && (!streq0(m->server->api, j->token.api) ||
                          !nm_key_equal(&m->server->server_key, &j->token.server_key) ||
                          (j->token.has_pin &&
                           (!m->server->has_pin || !nm_tls_pin_equal(&m->server->pin, &j->token.pin))))) {
                r = bus_error_setf_code(
                        error, NM_ERROR_CONFLICT,
                        "This host is registered with the server at %s; a token for %s cannot be "
                        "used until the host has left every network there",
                        m->server->api, j->token.api);
                join_job_free(j);
                return r;
        }
        r = identity_load_or_create(m->config->state_dir, &m->identity, &e);
        if (r < 0) {
                join_job_free(j);
                return bus_error_set_gerror(error, e);
        }
        if (r > 0)
                manager_emit_registration_changed(m);
        m->have_identity = true;

        j->call = call ? sd_bus_message_ref(call) : NULL;
        j->token_text = g_strdup(token);
        j->name = g_strdup(name);
        j->listen_port = listen_port;
        m->join = j;
        manager_state_maybe_changed(m);
        manager_emit_join_progress(m, "contacting-server");

        if (!m->server) {
                join_register(m);
                return 1;
        }
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *url = manager_api_url(m, NULL, "/host/networks");
        json_builder_begin_object(b);
        nm_json_add_string(b, "token", token);
        json_builder_end_object(b);
        _cleanup_secret_ char *body = nm_json_builder_to_string(b);
        r = api_client_request(m->api, "POST", url, m->server->credential, body, on_networks_added, m,
                               &j->request);
        if (r < 0) {
                g_set_error(&e, NM_ERROR, NM_ERROR_INTERNAL, "Failed to contact the server: %s",
                            g_strerror(-r));
                join_finish(m, e);
        }
        return 1;
}

/* ---- Leave, Connect, Disconnect ----------------------------------------------------------------- */

typedef struct LeaveJob {
        Manager *manager;
        sd_bus_message *call;
        char *network;
        bool deregister; /* the last network: the host deregisters and forgets the server */
} LeaveJob;

static void leave_job_free(LeaveJob *j)
{
        sd_bus_message_unref(j->call);
        g_free(j->network);
        g_free(j);
}

static void leave_reply(LeaveJob *j, const GError *error)
{
        if (!j->call)
                return;
        if (error) {
                _cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
                bus_error_set_gerror(&be, error);
                (void)sd_bus_reply_method_error(j->call, &be);
        } else
                (void)sd_bus_reply_method_return(j->call, NULL);
}

static void on_deregistered(ApiClient *c, const ApiResult *res, void *userdata)
{
        LeaveJob *j = userdata;
        Manager *m = j->manager;

        if (res->error && res->status != 401 && res->status != 404)
                log_warning("Failed to deregister the host (forgetting the server anyway): %s",
                            res->error->message);
        else
                log_info("Deregistered from %s.", m->server ? m->server->api : "the server");
        manager_forget_server(m, true);
        boot_unit_set(m->bus, false);
        leave_reply(j, NULL);
        leave_job_free(j);
}

static void on_left(ApiClient *c, const ApiResult *res, void *userdata)
{
        LeaveJob *j = userdata;
        Manager *m = j->manager;
        Network *n;
        int r;

        /* Not found: the server had already removed the node; leave locally all the same. */
        if (res->error && !g_error_matches(res->error, NM_ERROR, NM_ERROR_NOT_FOUND)) {
                leave_reply(j, res->error);
                leave_job_free(j);
                return;
        }
        n = manager_get_network(m, j->network);
        if (n)
                manager_remove_network(m, n, true);
        manager_save_state(m);

        if (m->server && g_hash_table_size(m->networks) == 0) {
                g_autofree char *url = manager_api_url(m, NULL, "/host");
                r = api_client_request(m->api, "DELETE", url, m->server->credential, NULL, on_deregistered,
                                       j, NULL);
                if (r >= 0)
                        return;
                manager_forget_server(m, true);
                boot_unit_set(m->bus, false);
        }
        leave_reply(j, NULL);
        leave_job_free(j);
}

int manager_leave(Manager *m, sd_bus_message *call, const char *network, sd_bus_error *error)
{
        g_autofree char *url = NULL, *escaped = NULL;
        LeaveJob *j;
        int r;

        if (!m->server)
                return sd_bus_error_set(error, BUS_ERROR_NOT_REGISTERED,
                                        "This host has not joined any network");
        if (!manager_get_network(m, network))
                return bus_error_setf_code(error, NM_ERROR_NOT_FOUND, "Network \"%s\" is not joined",
                                           network);

        j = g_new0(LeaveJob, 1);
        j->manager = m;
        j->call = sd_bus_message_ref(call);
        j->network = g_strdup(network);
        escaped = g_uri_escape_string(network, NULL, false);
        url = g_strdup_printf("%s/api/v1/host/networks/%s", m->server->api, escaped);
        r = api_client_request(m->api, "DELETE", url, m->server->credential, NULL, on_left, j, NULL);
        if (r < 0) {
                leave_job_free(j);
                return bus_error_setf_code(error, NM_ERROR_INTERNAL, "Failed to contact the server: %s",
                                           g_strerror(-r));
        }
        return 1;
}

int manager_set_connected(Manager *m, const char *network, bool connected, sd_bus_error *error)
{
        static const char *const props[] = {"Connected", NULL};
        g_autoptr(GError) e = NULL;
        Network *n = manager_get_network(m, network);
        int r;

        if (!n)
                return bus_error_setf_code(error, NM_ERROR_NOT_FOUND, "Network \"%s\" is not joined",
                                           network);
        if (network_is_connected(n) == connected)
                return 0;
        if (connected)
                g_hash_table_remove(m->disconnected, network);
        else
                g_hash_table_add(m->disconnected, g_strdup(network));
        manager_save_state(m);
        if (m->bus && n->exported)
                (void)sd_bus_emit_properties_changed_strv(m->bus, n->path, NETCLIENT_NETWORK_INTERFACE,
                                                          (char **)props);
        r = network_apply(n, &e);
        n->apply_failed = r < 0;
        manager_apply_forwarding(m);
        network_dns_update(n);
        /* The peers drop this host, or take it back, once the server knows. */
        manager_sync_connected(m, n);
        if (r < 0) {
                manager_schedule_retry(m);
                return bus_error_set_gerror(error, e);
        }
        log_info("Network %s %s.", network, connected ? "connected" : "disconnected");
        return 0;
}
