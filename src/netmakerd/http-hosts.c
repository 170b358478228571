/* REST resources for hosts: registration with an enrollment token (the broker account first, then
 * one transaction), the admin's /hosts endpoints, and the host's own /host endpoints (state,
 * reports, joining and leaving networks, deregistering). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "auth.h"
#include "cidr.h"
#include "host-api.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"
#include "proto.h"
#include "tls.h"
#include "token.h"

#define OS_MAX      32
#define VERSION_MAX 64
/* How long a registration waits for a broker that is not connected. */
#define BROKER_WAIT_USEC (10 * G_USEC_PER_SEC)

void json_add_host(JsonBuilder *b, const Host *h, const char *status, GPtrArray *nodes)
{
        char wg[NM_KEY_B64_LEN + 1], msg[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&h->wg_key, wg);
        nm_key_to_base64(&h->msg_key, msg);
        json_builder_begin_object(b);
        nm_json_add_string(b, "id", h->id);
        nm_json_add_string(b, "name", h->name);
        nm_json_add_string(b, "os", h->os);
        nm_json_add_string(b, "version", h->version);
        nm_json_add_string(b, "wg_public_key", wg);
        nm_json_add_string(b, "msg_public_key", msg);
        nm_json_add_int(b, "listen_port", h->listen_port);
        nm_json_add_strv(b, "endpoints", (const char *const *)h->endpoints);
        nm_json_add_string(b, "public_endpoint", h->public_endpoint);
        nm_json_add_string(b, "http_address", h->http_address);
        nm_json_add_int(b, "last_checkin", h->last_checkin);
        nm_json_add_int(b, "created_at", h->created_at);
        nm_json_add_int(b, "serial", (gint64)h->serial);
        nm_json_add_string(b, "status", status);
        /* What the admin set (PUT /hosts/{id}); null: the default. */
        json_builder_set_member_name(b, "settings");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "listen_port");
        if (h->static_listen_port)
                json_builder_add_int_value(b, h->static_listen_port);
        else
                json_builder_add_null_value(b);
        nm_json_add_string(b, "endpoint", h->static_endpoint);
        json_builder_set_member_name(b, "keepalive");
        if (h->has_keepalive)
                json_builder_add_int_value(b, h->keepalive);
        else
                json_builder_add_null_value(b);
        json_builder_set_member_name(b, "mtu");
        if (h->mtu)
                json_builder_add_int_value(b, h->mtu);
        else
                json_builder_add_null_value(b);
        json_builder_end_object(b);
        if (nodes) {
                json_builder_set_member_name(b, "nodes");
                json_builder_begin_array(b);
                for (guint i = 0; i < nodes->len; i++)
                        json_add_node(b, nodes->pdata[i]);
                json_builder_end_array(b);
        }
        json_builder_end_object(b);
}

static void reply_nodes(Request *r, unsigned status, GPtrArray *nodes)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_array(b);
        for (guint i = 0; i < nodes->len; i++)
                json_add_node(b, nodes->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, status, b);
}

/* Whether a token is one this server made: its address, server key and pin are this server's. A
 * token with an edited address would send the next host somewhere else. */
static int check_token_origin(Manager *m, const NmToken *t, GError **error)
{
        if (!nm_key_equal(&t->server_key, &m->msg_public)) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The enrollment token was issued by another server (its server key differs "
                            "from this server's)");
                return -EACCES;
        }
        if (t->version == 1 && !m->config->accept_v1_tokens) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "Enrollment tokens of version 1 (without the server's pin) are no longer "
                            "accepted here: "
                            "get the key's current token (nmctl key list)");
                return -EACCES;
        }
        if (!streq0(t->api, m->api_url)) {
                g_autofree char *shown = nm_shown(t->api);
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The enrollment token's server address \"%s\" is not this server's (%s): the "
                            "token was "
                            "edited, or made before api_url changed; get the key's current token",
                            shown, m->api_url);
                return -EACCES;
        }
        if (t->version >= 2 &&
            (t->has_pin != m->has_token_pin || (t->has_pin && !nm_tls_pin_equal(&t->pin, &m->token_pin)))) {
                g_autofree char *mine =
                        m->has_token_pin ? nm_tls_pin_format(&m->token_pin) : g_strdup("none");
                g_set_error(
                        error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                        "The enrollment token's pin is not this server's (%s): the token was edited, or "
                        "made "
                        "before the server's certificate or token_pin changed; get the key's current token",
                        mine);
                return -EACCES;
        }
        return 0;
}

/* The enrollment key behind a token, if it can still be used. */
static int key_from_token(Manager *m, const char *token, EnrollmentKey **ret, GError **error)
{
        g_auto(NmToken) t = {};
        g_autoptr(EnrollmentKey) k = NULL;
        int r;

        if (!nm_token_decode(token, &t, error))
                return -EINVAL;
        r = check_token_origin(m, &t, error);
        if (r < 0)
                return r;
        r = store_key_get_by_value(m->store, t.value, &k, error);
        if (r < 0)
                return r;
        if (k->expires_at != 0 && k->expires_at <= manager_now()) {
                g_set_error(error, NM_ERROR, NM_ERROR_GONE, "The enrollment key \"%s\" has expired",
                            k->name);
                return -ESTALE;
        }
        if (!k->unlimited && k->uses_remaining <= 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_GONE, "The enrollment key \"%s\" is used up", k->name);
                return -ESTALE;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

/* Endpoint addresses in canonical text, duplicates dropped, order kept. */
static bool parse_endpoints(char **in, char ***ret, GError **error)
{
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (char **e = in; e && *e; e++) {
                int family;
                NmInAddr a;
                if (nm_addr_parse(*e, &family, &a) < 0) {
                        g_autofree char *shown = g_utf8_make_valid(*e, MIN(strlen(*e), 64));
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid endpoint \"%s\": expected an IPv4 or IPv6 address", shown);
                        return false;
                }
                char *c = nm_addr_to_string(family, &a);
                if (g_hash_table_add(seen, c))
                        g_strv_builder_add(b, c);
        }
        *ret = g_strv_builder_end(b);
        return true;
}

/* The client's address, as a candidate endpoint of the host: NULL for loopback (a proxy on this
 * machine) and anything but IPv4 and IPv6. */
static char *http_source_address(Request *r)
{
        const struct sockaddr *sa = request_client_address(r);
        NmInAddr a = {};
        int family;

        if (!sa)
                return NULL;
        if (sa->sa_family == AF_INET) {
                family = AF_INET;
                memcpy(a.bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
                const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                family = IN6_IS_ADDR_V4MAPPED(in6) ? AF_INET : AF_INET6;
                memcpy(a.bytes, family == AF_INET ? in6->s6_addr + 12 : in6->s6_addr,
                       family == AF_INET ? 4 : 16);
        } else
                return NULL;
        g_autofree char *text = nm_addr_to_string(family, &a);
        return nm_host_is_loopback(text) ? NULL : TAKE_PTR(text);
}

/* ---- registration --------------------------------------------------------------------------- */

typedef struct Registration {
        Manager *manager;
        Request *request;
        char *key_id;
        Host *host;
        char *secret;          /* credential secret */
        char *broker_password; /* NULL without a broker */
} Registration;

static void registration_free(Registration *g)
{
        if (!g)
                return;
        /* Committed, or its account queued for deletion: no longer in flight. */
        if (g->manager && g->host)
                manager_account_settled(g->manager, g->host->id);
        request_unref(g->request);
        g_free(g->key_id);
        host_free(g->host);
        nm_free_secret(g->secret);
        nm_free_secret(g->broker_password);
        g_free(g);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Registration, registration_free)

/* The one transaction of a registration: a use of the key, the host, its nodes. */
static int registration_commit(Registration *g, NmState **ret_state, GError **error)
{
        Manager *m = g->manager;
        g_autoptr(EnrollmentKey) key = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int r;

        r = store_txn_begin(m->store, &t, error);
        if (r < 0)
                return r;
        r = store_key_get(m->store, g->key_id, &key, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The enrollment key was deleted meanwhile");
                return r;
        }
        if (r < 0)
                return r;
        r = store_key_take_use(m->store, key, error);
        if (r < 0)
                return r;
        g->host->tags = g_strdupv(key->tags);
        r = store_host_insert(m->store, g->host, error);
        if (r < 0)
                return r;
        for (char **n = key->networks; n && *n; n++) {
                r = peers_node_join(m->store, g->host, *n, false, out, NULL, error);
                if (r < 0)
                        return r;
        }
        r = peers_host_state(m->store, g->host, ret_state, error);
        if (r < 0)
                return r;
        return manager_commit(m, &t, out, error);
}

static void registration_reply(Registration *g, NmState *state)
{
        Manager *m = g->manager;
        const Config *c = m->config;
        g_autoptr(NmRegistered) reg = nm_registered_new();
        _cleanup_secret_ char *body = NULL;

        reg->host_id = g_strdup(g->host->id);
        reg->credential = auth_host_credential(g->host->id, g->secret);
        reg->server_msg_key = m->msg_public;
        if (g->broker_password) {
                NmBrokerAccess *a = reg->mqtt = g_new0(NmBrokerAccess, 1);
                a->url = g_strdup(c->broker_public_url ?: c->broker_url);
                a->username = g_strconcat("host-", g->host->id, NULL);
                a->password = g_strdup(g->broker_password);
                a->subscribe = nm_topic_host_msg(c->server_name, g->host->id);
                a->publish = nm_topic_host_report(c->server_name, g->host->id);
                a->has_pin = m->broker_trust.mode == NM_TLS_PIN;
                a->pin = m->broker_trust.pin;
                a->ca_pem = g_strdup(m->broker_ca_pem);
        }
        /* Borrowed: the state stays the caller's. */
        reg->state = state;
        body = nm_registered_to_json(reg, &g->host->msg_key, &m->msg_secret);
        reg->state = NULL;
        request_reply_data(g->request, MHD_HTTP_CREATED, "application/json", NULL, body, strlen(body));
}

/* Takes back a broker account nobody will use (the deletion is retried at every connection until
 * it succeeds; deleting an account that was never made is no error). */
static void registration_drop_account(Registration *g)
{
        Manager *m = g->manager;
        g_autoptr(GError) e = NULL;

        if (store_account_cleanup_add(m->store, g->host->id, &e) < 0) {
                log_warning("Failed to queue the deletion of the broker account of host %s: %s", g->host->id,
                            e->message);
                return;
        }
        if (!m->stopping)
                manager_delete_account(m, g->host->id);
}

/* Writes the host; on failure undoes the broker account. Always replies. */
static void registration_finish(Registration *g)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(NmState) state = NULL;

        if (registration_commit(g, &state, &e) < 0) {
                if (g->broker_password)
                        registration_drop_account(g);
                request_reply_error(g->request, e);
                return;
        }
        log_info("Registered host \"%s\" (%s) in %u network(s).", g->host->name, g->host->id,
                 state->networks->len);
        registration_reply(g, state);
}

static void on_account_created(int r, const char *message, void *userdata)
{
        g_autoptr(Registration) g = userdata;
        Manager *m = g->manager;

        if (r < 0) {
                /* After a timeout or a cancellation the broker may still make the account. */
                registration_drop_account(g);
                g_autoptr(GError) e =
                        g_error_new(NM_ERROR, NM_ERROR_UNAVAILABLE,
                                    "The message broker did not create the host's account (%s); retry later",
                                    message ?: g_strerror(-r));
                request_reply_error(g->request, e);
                request_resume(g->request);
                return;
        }
        if (!request_is_alive(g->request) || m->stopping) {
                /* Nobody will receive the credential. */
                registration_drop_account(g);
                request_resume(g->request);
                return;
        }
        registration_finish(g);
        request_resume(g->request);
}

/* Asks the broker for the host's account; on success on_account_created() owns `g`. */
static int registration_request_account(Registration *g, GError **error)
{
        int k;

        g->broker_password = nm_random_token(24);
        /* Until the commit, the broker's account has no host: the reconciliation must leave it. */
        manager_account_pending(g->manager, g->host->id);
        k = mq_host_account_create(g->manager->mq, g->host->id, g->broker_password, on_account_created, g);
        if (k < 0) {
                manager_account_settled(g->manager, g->host->id);
                nm_free_secret(TAKE_PTR(g->broker_password));
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE,
                            "The message broker is unavailable (%s); retry later", g_strerror(-k));
                return k;
        }
        return 0;
}

static void on_broker_ready(int r, void *userdata)
{
        g_autoptr(Registration) g = userdata;
        g_autoptr(GError) e = NULL;

        if (r < 0) {
                e = g_error_new(NM_ERROR, NM_ERROR_UNAVAILABLE,
                                "The message broker is unavailable (netmakerd has not reached it for %u s), "
                                "so the host cannot get its account; retry later",
                                (unsigned)(BROKER_WAIT_USEC / G_USEC_PER_SEC));
                request_reply_error(g->request, e);
                request_resume(g->request);
                return;
        }
        if (!request_is_alive(g->request) || g->manager->stopping) {
                request_resume(g->request);
                return;
        }
        if (registration_request_account(g, &e) < 0) {
                request_reply_error(g->request, e);
                request_resume(g->request);
                return;
        }
        TAKE_PTR(g); /* on_account_created() owns it now */
}

static int hosts_register(Request *r, GError **error)
{
        static const char *const members[] = {"token",       "name",          "os",
                                              "version",     "wg_public_key", "msg_public_key",
                                              "listen_port", "endpoints",     NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = NULL;
        g_autoptr(NmRegistration) reg = NULL;
        g_autoptr(EnrollmentKey) key = NULL;
        g_autoptr(Registration) g = NULL;
        g_autofree char *existing = NULL;
        int k;

        k = http_rate_limit(r, m->register_limit, "registrations", "register_rate_limit", error);
        if (k < 0)
                return k;
        o = request_json_object(r, "registration", members, error);
        if (!o || !(reg = nm_registration_from_json(o, error)))
                return -EINVAL;
        const char *name = reg->name, *os = reg->os, *version = reg->version;

        /* The cheap checks first: nothing is created for a request that cannot succeed. */
        k = key_from_token(m, reg->token, &key, error);
        if (k < 0)
                return k;

        g = g_new0(Registration, 1);
        g->manager = m;
        g->request = request_ref(r);
        g->key_id = g_strdup(key->id);
        g->host = g_new0(Host, 1);
        Host *h = g->host;
        h->wg_key = reg->wg_public_key;
        h->msg_key = reg->msg_public_key;
        /* Refused, never shortened or rewritten: the same check as netclientd's Join. */
        if (!nm_host_name_valid(name, error))
                return -EINVAL;
        h->name = g_strdup(name);
        if (!nm_label_valid("os", os, OS_MAX, error) ||
            !nm_label_valid("version", version, VERSION_MAX, error))
                return -EINVAL;
        if (!parse_endpoints(reg->endpoints, &h->endpoints, error))
                return -EINVAL;
        k = store_host_find_by_wg_key(m->store, &h->wg_key, &existing, error);
        if (k >= 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "A host with this WireGuard public key is already registered (%s): delete it "
                            "first, or use new keys",
                            existing);
                return -EEXIST;
        }
        if (k != -ENOENT)
                return k;

        h->id = nm_uuid_new();
        h->http_address = http_source_address(r);
        h->os = g_strdup(os);
        h->version = g_strdup(version);
        h->listen_port = reg->listen_port;
        h->created_at = h->last_checkin = manager_now();
        g->secret = auth_host_secret_new();
        h->credential_hash = auth_host_secret_hash(g->secret);

        if (!manager_broker_enabled(m)) {
                registration_finish(g);
                return 0;
        }
        if (!mq_is_connected(m->mq)) {
                /* Just started, or the broker restarts: wait a little rather than fail the join. */
                k = manager_wait_broker(m, BROKER_WAIT_USEC, on_broker_ready, g);
                if (k < 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE,
                                    "The message broker is unavailable (%s); retry later", g_strerror(-k));
                        return k;
                }
                log_debug("Registration of \"%s\" waits for the broker connection.", h->name);
                TAKE_PTR(g); /* on_broker_ready() owns it now */
                request_suspend(r);
                return 0;
        }
        k = registration_request_account(g, error);
        if (k < 0)
                return k;
        TAKE_PTR(g); /* on_account_created() owns it now */
        request_suspend(r);
        return 0;
}

/* ---- admin endpoints ------------------------------------------------------------------------ */

static int hosts_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        gint64 now = manager_now();
        int k = store_host_list(m->store, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                json_add_host(b, all->pdata[i], manager_host_status(m, all->pdata[i], now), NULL);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int hosts_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Host) h = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_host_get(m->store, request_param(r, "id"), &h, error);
        if (k >= 0)
                k = store_node_list(m->store, NULL, h->id, &nodes, error);
        if (k < 0)
                return k;
        json_add_host(b, h, manager_host_status(m, h, manager_now()), nodes);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

/* Whether the member is present and null (absent members leave a setting as it is; null puts it
 * back to its default). */
static bool member_is_null(JsonObject *o, const char *member)
{
        JsonNode *n = json_object_get_member(o, member);
        return n && JSON_NODE_HOLDS_NULL(n);
}

/* The static endpoint as given: a unicast IP address without a port. */
static bool parse_static_endpoint(const char *text, char **ret, GError **error)
{
        NmInAddr a;
        int family;
        const char *why = NULL;

        if (nm_addr_parse(text, &family, &a) < 0) {
                g_autofree char *v = nm_shown(text);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid endpoint \"%s\": expected an IPv4 or IPv6 address without a port (its "
                            "peers use the host's listen port of each network; set listen_port for a port "
                            "forward), or null for the address the host reports",
                            v);
                return false;
        }
        if (family == AF_INET) {
                uint32_t h = ntohl(a.in.s_addr);
                if (h == 0 || (h >> 24) == 127 || (h >> 28) == 0xe || h == 0xffffffffu)
                        why = "the unspecified, a loopback, a multicast or the broadcast address";
        } else if (IN6_IS_ADDR_UNSPECIFIED(&a.in6) || IN6_IS_ADDR_LOOPBACK(&a.in6) ||
                   IN6_IS_ADDR_MULTICAST(&a.in6) || IN6_IS_ADDR_LINKLOCAL(&a.in6))
                why = "the unspecified, a loopback, a multicast or a link-local address";
        if (why) {
                g_autofree char *v = nm_shown(text);
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Invalid endpoint \"%s\": %s is no address other hosts can reach; give the host's "
                        "public or LAN address",
                        v, why);
                return false;
        }
        *ret = nm_addr_to_string(family, &a);
        return true;
}

/* The settings of PUT /hosts/{id} into `h`: name, listen_port, endpoint, keepalive, mtu; each
 * setting null for its default. */
static bool read_host_settings(JsonObject *o, Host *h, GError **error)
{
        const char *name = NULL, *endpoint = NULL;
        gint64 port = -1, keepalive = -1, mtu = -1;

        if (!nm_json_get_string(o, "name", false, &name, error) ||
            !nm_json_get_int(o, "listen_port", false, 1, 65535, &port, error) ||
            !nm_json_get_string(o, "endpoint", false, &endpoint, error) ||
            !nm_json_get_int(o, "keepalive", false, 0, 3600, &keepalive, error) ||
            !nm_json_get_int(o, "mtu", false, 1280, 9000, &mtu, error))
                return false;
        if (member_is_null(o, "name")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"name\" cannot be null: a host always has a name");
                return false;
        }
        if (name) {
                /* The same rule as registration: refused, never rewritten. */
                if (!nm_host_name_valid(name, error))
                        return false;
                g_free(h->name);
                h->name = g_strdup(name);
        }
        if (port >= 0)
                h->static_listen_port = (guint16)port;
        else if (member_is_null(o, "listen_port"))
                h->static_listen_port = 0;
        if (endpoint) {
                g_autofree char *canon = NULL;
                if (!parse_static_endpoint(endpoint, &canon, error))
                        return false;
                g_free(h->static_endpoint);
                h->static_endpoint = TAKE_PTR(canon);
        } else if (member_is_null(o, "endpoint"))
                g_clear_pointer(&h->static_endpoint, g_free);
        if (keepalive >= 0) {
                h->has_keepalive = true;
                h->keepalive = (guint)keepalive;
        } else if (member_is_null(o, "keepalive"))
                h->has_keepalive = false, h->keepalive = 0;
        if (mtu >= 0)
                h->mtu = (guint)mtu;
        else if (member_is_null(o, "mtu"))
                h->mtu = 0;
        return true;
}

static int hosts_update(Request *r, GError **error)
{
        static const char *const members[] = {"name", "listen_port", "endpoint", "keepalive", "mtu", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "host settings", members, error);
        g_autoptr(Host) h = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o)
                return -EINVAL;
        if (json_object_get_size(o) == 0) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Nothing to change: give at least one of name, listen_port, endpoint, keepalive, "
                        "mtu (null puts a setting back to its default)");
                return -EINVAL;
        }
        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_host_get(m->store, request_param(r, "id"), &h, error);
        if (k < 0)
                return k;
        g_autofree char *old_name = g_strdup(h->name);
        if (!read_host_settings(o, h, error))
                return -EINVAL;
        k = peers_host_settings(m->store, h, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k >= 0)
                k = store_node_list(m->store, NULL, h->id, &nodes, error);
        if (k < 0)
                return k;
        log_info("Changed the settings of host \"%s\" (%s%s%s); told %u host(s).", h->name, h->id,
                 streq0(old_name, h->name) ? "" : ", was ", streq0(old_name, h->name) ? "" : old_name,
                 out->msgs->len);
        json_add_host(b, h, manager_host_status(m, h, manager_now()), nodes);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int hosts_delete(Request *r, GError **error)
{
        int k = manager_delete_host(request_manager(r), request_param(r, "id"), error);
        if (k < 0)
                return k;
        request_reply_empty(r);
        return 0;
}

static int hosts_add_network(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Host) h = NULL;
        g_autoptr(Node) node = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_host_get(m->store, request_param(r, "id"), &h, error);
        if (k >= 0)
                k = peers_node_join(m->store, h, request_param(r, "net"), true, out, &node, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Added host \"%s\" to network \"%s\" (%s).", h->name, node->network,
                 strna(node->ipv4 ?: node->ipv6));
        json_add_node(b, node);
        request_reply_builder(r, MHD_HTTP_CREATED, b);
        return 0;
}

/* ---- the host's own endpoints --------------------------------------------------------------- */

static const char *self_id(Request *r)
{
        return request_auth(r)->host_id;
}

static int host_self_state(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        manager_host_http_address(m, self_id(r), request_client_address(r));
        g_autoptr(Host) h = NULL;
        g_autoptr(NmState) state = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_host_get(m->store, self_id(r), &h, error);
        if (k >= 0)
                k = peers_host_state(m->store, h, &state, error);
        if (k < 0)
                return k;
        nm_state_to_json(state, b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int host_self_report(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        size_t len;
        const char *body = request_body(r, &len);
        g_autoptr(NmReport) report = NULL;

        if (!body) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON,
                            "Empty body: a report object was expected");
                return -EINVAL;
        }
        if (request_body_check(r, error) < 0)
                return -EINVAL;
        report = nm_report_parse(body, (gssize)len, error);
        if (!report)
                return -EINVAL;
        manager_host_http_address(m, self_id(r), request_client_address(r));
        int k = manager_handle_report(m, self_id(r), report, error);
        if (k < 0)
                return k;
        request_reply_empty(r);
        return 0;
}

static int host_self_join(Request *r, GError **error)
{
        static const char *const members[] = {"token", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "join request", members, error);
        const char *token = NULL;
        g_autoptr(EnrollmentKey) key = NULL;
        g_autoptr(Host) h = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "token", true, &token, error))
                return -EINVAL;
        k = key_from_token(m, token, &key, error);
        if (k < 0)
                return k;
        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_host_get(m->store, self_id(r), &h, error);
        if (k < 0)
                return k;
        /* The new nodes get this key's tags (the host's row keeps those of its registration). */
        g_strfreev(h->tags);
        h->tags = g_strdupv(key->tags);
        for (char **n = key->networks; n && *n; n++) {
                g_autoptr(Node) existing = NULL;
                Node *node = NULL;
                if (store_node_find(m->store, h->id, *n, &existing, NULL) >= 0)
                        continue;
                k = peers_node_join(m->store, h, *n, true, out, &node, error);
                if (k < 0)
                        return k;
                g_ptr_array_add(nodes, node);
        }
        if (nodes->len == 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Host \"%s\" is already in every network of this key", h->name);
                return -EEXIST;
        }
        k = store_key_take_use(m->store, key, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Host \"%s\" joined %u network(s) with key \"%s\".", h->name, nodes->len, key->name);
        reply_nodes(r, MHD_HTTP_OK, nodes);
        return 0;
}

static int host_self_leave(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Node) node = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_node_find(m->store, self_id(r), request_param(r, "net"), &node, error);
        if (k >= 0)
                k = peers_node_leave(m->store, node, true, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Host \"%s\" left network \"%s\".", node->host_name, node->network);
        request_reply_empty(r);
        return 0;
}

/* The host's Connect/Disconnect of one network: its peers take it back or drop it. */
static int host_self_connected(Request *r, GError **error)
{
        static const char *const members[] = {"connected", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "connected request", members, error);
        g_autoptr(Node) node = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        bool connected = true;
        int k;

        if (!o || !nm_json_get_bool(o, "connected", true, &connected, error))
                return -EINVAL;
        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_node_find(m->store, self_id(r), request_param(r, "net"), &node, error);
        if (k >= 0)
                k = peers_node_set_connected(m->store, node, connected, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        if (node->connected != connected)
                log_info("Host \"%s\" %s network \"%s\"; told %u host(s).", node->host_name,
                         connected ? "connected to" : "disconnected from", node->network, out->msgs->len);
        request_reply_empty(r);
        return 0;
}

static int host_self_delete(Request *r, GError **error)
{
        int k = manager_delete_host(request_manager(r), self_id(r), error);
        if (k < 0)
                return k;
        request_reply_empty(r);
        return 0;
}

const Route http_host_routes[] = {
        {"POST", "/hosts/register", ACCESS_ANYONE, hosts_register},
        {"GET", "/hosts", ACCESS_USER, hosts_list},
        {"GET", "/hosts/{id}", ACCESS_USER, hosts_get},
        {"PUT", "/hosts/{id}", ACCESS_ADMIN, hosts_update},
        {"DELETE", "/hosts/{id}", ACCESS_ADMIN, hosts_delete},
        {"POST", "/hosts/{id}/networks/{net}", ACCESS_ADMIN, hosts_add_network},
        {"GET", "/host", ACCESS_HOST, host_self_state},
        {"PUT", "/host", ACCESS_HOST, host_self_report},
        {"DELETE", "/host", ACCESS_HOST, host_self_delete},
        {"POST", "/host/networks", ACCESS_HOST, host_self_join},
        {"DELETE", "/host/networks/{net}", ACCESS_HOST, host_self_leave},
        {"PUT", "/host/networks/{net}/connected", ACCESS_HOST, host_self_connected},
        {},
};
