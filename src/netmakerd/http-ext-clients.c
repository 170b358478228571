/* REST resources for external clients (docs/protocol.md §4.3): plain WireGuard peers (phones,
 * routers) attached to a node with the ingress role. Creating one allocates its addresses from the
 * top of the network's ranges, makes its key pair and answers with the only copy of its private key:
 * inside its configuration, as that file, or as a QR code. */
#include <errno.h>
#include <microhttpd.h>
#include <sodium.h>
#include <string.h>

#include "cidr.h"
#include "dns-names.h"
#include "endpoints.h"
#include "extclient-config.h"
#include "gateways.h"
#include "http.h"
#include "ipam.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"
#include "qr.h"
#include "topology.h"

#define MAX_DNS_SERVERS  4
#define MAX_DENIED_NODES 1000
#define QR_SVG_SCALE     8
#define QR_PNG_SCALE     6

typedef enum Format {
        FORMAT_JSON,
        FORMAT_CONF,
        FORMAT_PNG,
        FORMAT_SVG,
} Format;

static void json_add_ext_client(JsonBuilder *b, const ExtClient *c, const char *config, const char *svg,
                                const char *png)
{
        char key[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&c->public_key, key);
        json_builder_begin_object(b);
        nm_json_add_string(b, "id", c->id);
        nm_json_add_string(b, "name", c->name);
        nm_json_add_string(b, "network", c->network);
        nm_json_add_string(b, "gateway", c->gateway);
        nm_json_add_string(b, "ipv4", c->ipv4);
        nm_json_add_string(b, "ipv6", c->ipv6);
        nm_json_add_string(b, "public_key", key);
        nm_json_add_bool(b, "enabled", c->enabled);
        nm_json_add_string(b, "dns", c->dns);
        nm_json_add_strv(b, "extra_allowed_ips", (const char *const *)c->extra_allowed_ips);
        nm_json_add_strv(b, "denied_nodes", (const char *const *)c->denied_nodes);
        nm_json_add_bool(b, "internet_gateway", c->internet_gateway);
        nm_json_add_int(b, "created_at", c->created_at);
        if (config) {
                nm_json_add_string(b, "config", config);
                nm_json_add_string(b, "qr_svg", svg);
                nm_json_add_string(b, "qr_png", png);
        }
        json_builder_end_object(b);
}

static int parse_format(Request *r, Format *ret, GError **error)
{
        const char *f = request_query(r, "format");
        if (!f || streq0(f, "json"))
                *ret = FORMAT_JSON;
        else if (streq0(f, "conf"))
                *ret = FORMAT_CONF;
        else if (streq0(f, "png"))
                *ret = FORMAT_PNG;
        else if (streq0(f, "svg"))
                *ret = FORMAT_SVG;
        else {
                g_autofree char *v = nm_shown(f);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid ?format=%s: expected conf, png, svg or json", v);
                return -EINVAL;
        }
        return 0;
}

/* "1.1.1.1, fd00::53": IP addresses separated by commas, in canonical form. */
static int parse_dns(const char *text, char **ret, GError **error)
{
        g_auto(GStrv) parts = g_strsplit(text, ",", -1);
        g_autoptr(GString) s = g_string_new(NULL);
        guint n = 0;

        for (char **p = parts; *p; p++) {
                g_autofree char *a = g_strstrip(g_strdup(*p));
                int family;
                NmInAddr addr;
                if (nm_addr_parse(a, &family, &addr) < 0 || ++n > MAX_DNS_SERVERS) {
                        g_autofree char *v = nm_shown(text);
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid dns \"%s\": expected 1-%u IP addresses separated by commas", v,
                                    MAX_DNS_SERVERS);
                        return -EINVAL;
                }
                g_autofree char *c = nm_addr_to_string(family, &addr);
                g_string_append_printf(s, "%s%s", s->len ? ", " : "", c);
        }
        *ret = g_string_free(TAKE_PTR(s), false);
        return 0;
}

/* The name is free in the network: no node's host, other external client or custom DNS name has it. */
static int check_name_free(Store *s, const PeerView *v, const char *name, GError **error)
{
        g_autoptr(GPtrArray) names = NULL;
        int k;

        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                if (streq0(m->host->name, name)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The name \"%s\" is taken in network \"%s\" by the host of node %s",
                                    name, v->network->name, m->node->id);
                        return -EEXIST;
                }
        }
        for (guint i = 0; i < v->ext_clients->len; i++) {
                const ExtClient *c = v->ext_clients->pdata[i];
                if (streq0(c->name, name)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The name \"%s\" is taken in network \"%s\" by external client %s", name,
                                    v->network->name, c->id);
                        return -EEXIST;
                }
        }
        k = dns_names_list(s, v->network->name, &names, error);
        if (k < 0)
                return k;
        for (guint i = 0; i < names->len; i++) {
                const DnsName *d = names->pdata[i];
                if (streq0(d->name, name)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The name \"%s\" is taken in network \"%s\" by a DNS name", name,
                                    v->network->name);
                        return -EEXIST;
                }
        }
        return 0;
}

static int allocate(Store *s, const Network *n, const char *range_text, int family, char **ret,
                    GError **error)
{
        g_autoptr(GPtrArray) used = NULL;
        NmPrefix range;
        int k;

        if (!range_text)
                return 0;
        k = nm_prefix_parse(range_text, &range, error);
        if (k >= 0)
                k = store_node_addresses(s, n->name, family, &used, error);
        if (k < 0)
                return k;
        k = ipam_allocate_top(&range, (const char *const *)used->pdata, used->len, ret);
        if (k == -ENOSPC)
                g_set_error(error, NM_ERROR, NM_ERROR_EXHAUSTED,
                            "Network \"%s\" has no free %s address (range %s)", n->name,
                            family == AF_INET ? "IPv4" : "IPv6", range_text);
        return k;
}

/* The gateway member named in a request: in the network, with the ingress role. */
/* The member of the view with node id `id`; `label` names it in the errors: 409 when the node is in
 * another network, 404 when there is none. */
static int find_node(Manager *m, const PeerView *v, const char *label, const char *id, const Member **ret,
                     GError **error)
{
        g_autofree char *s = nm_shown(id);
        g_autoptr(Node) n = NULL;

        *ret = topo_find_node(v, id);
        if (*ret)
                return 0;
        if (nm_uuid_valid(id) && store_node_get(m->store, id, &n, NULL) >= 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "%s %s (%s) is in network \"%s\", not in \"%s\"", label, s, n->host_name,
                            n->network, v->network->name);
                return -EXDEV;
        }
        g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "%s \"%s\" does not exist in network \"%s\"", label,
                    s, v->network->name);
        return -ENOENT;
}

static int find_gateway(Manager *m, const PeerView *v, const char *id, const Member **ret, GError **error)
{
        const Member *g;
        int k = find_node(m, v, "Gateway node", id, &g, error);
        if (k < 0)
                return k;
        if (!g->node->roles.ingress) {
                g_autofree char *s = nm_shown(id);
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Node %s (%s) is not an ingress gateway: PUT /nodes/%s/ingress first, then attach "
                        "external clients to it",
                        s, g->host->name, s);
                return -EBUSY;
        }
        *ret = g;
        return 0;
}

/* The nodes a client may not reach: nodes of its network other than its gateway (which always
 * reaches its own clients), each once. */
static int check_denied_nodes(Manager *m, const PeerView *v, const char *gateway, char **in, char ***ret,
                              GError **error)
{
        g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);

        for (char **p = in; p && *p; p++) {
                const Member *n;
                int k = find_node(m, v, "Denied node", *p, &n, error);
                if (k < 0)
                        return k;
                if (streq0(n->node->id, gateway)) {
                        g_autofree char *s = nm_shown(*p);
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "Node %s (%s) is the client's gateway: a gateway always reaches its own "
                                    "clients, so it cannot be denied",
                                    s, n->host->name);
                        return -EINVAL;
                }
                if (!g_ptr_array_find_with_equal_func(out, n->node->id, g_str_equal, NULL))
                        g_ptr_array_add(out, g_strdup(n->node->id));
        }
        g_ptr_array_add(out, NULL);
        *ret = (char **)g_ptr_array_free(TAKE_PTR(out), false);
        return 0;
}

static int ext_clients_create(Request *r, GError **error)
{
        static const char *const members[] = {
                "name",         "gateway",          "dns", "extra_allowed_ips", "enabled",
                "denied_nodes", "internet_gateway", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "external client", members, error);
        const char *name = NULL, *gateway = NULL, *dns_in = NULL;
        g_auto(GStrv) extra_in = NULL, denied_in = NULL;
        bool enabled = true, internet = false;
        Format format;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        const Member *gw;
        int k;

        if (!o || !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_string(o, "gateway", true, &gateway, error) ||
            !nm_json_get_string(o, "dns", false, &dns_in, error) ||
            !nm_json_get_strv(o, "extra_allowed_ips", false, GATEWAY_MAX_RANGES, &extra_in, error) ||
            !nm_json_get_bool(o, "enabled", false, &enabled, error) ||
            !nm_json_get_strv(o, "denied_nodes", false, MAX_DENIED_NODES, &denied_in, error) ||
            !nm_json_get_bool(o, "internet_gateway", false, &internet, error))
                return -EINVAL;
        if (parse_format(r, &format, error) < 0 || !nm_host_name_valid(name, error))
                return -EINVAL;

        g_autoptr(ExtClient) c = g_new0(ExtClient, 1);
        if (dns_in && parse_dns(dns_in, &c->dns, error) < 0)
                return -EINVAL;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = peers_load_view(m->store, request_param(r, "net"), &before, error);
        if (k >= 0)
                k = find_gateway(m, before, gateway, &gw, error);
        if (k >= 0)
                k = gateways_check_ranges(before, "extra allowed IP", extra_in, NULL, NULL,
                                          &c->extra_allowed_ips, error);
        if (k >= 0)
                k = check_denied_nodes(m, before, gw->node->id, denied_in, &c->denied_nodes, error);
        if (k >= 0)
                k = check_name_free(m->store, before, name, error);
        if (k < 0)
                return k;
        if (internet && !gw->node->roles.internet_gateway) {
                /* Full tunnel goes out where the client comes in: its gateway must be the network's
                 * way to the internet itself. */
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Gateway node %s (%s) is not an internet gateway: \"internet_gateway\": true needs "
                        "a gateway with both roles (PUT /nodes/%s/internet-gateway first)",
                        gw->node->id, gw->host->name, gw->node->id);
                return -EINVAL;
        }
        g_autofree char *endpoint = endpoint_for_config(gw);
        if (!endpoint) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Gateway node %s (%s) has no endpoint yet: its host has not reported an address, so "
                        "no configuration can point at it; retry after it checked in",
                        gw->node->id, gw->host->name);
                return -EADDRNOTAVAIL;
        }

        c->id = nm_uuid_new();
        c->name = g_strdup(name);
        c->network = g_strdup(before->network->name);
        c->gateway = g_strdup(gw->node->id);
        c->enabled = enabled;
        c->internet_gateway = internet;
        c->created_at = manager_now();
        if (!c->dns)
                c->dns = g_strdup(gw->node->ipv4 ?: gw->node->ipv6); /* the gateway answers DNS */
        k = allocate(m->store, before->network, before->network->ipv4_range, AF_INET, &c->ipv4, error);
        if (k >= 0)
                k = allocate(m->store, before->network, before->network->ipv6_range, AF_INET6, &c->ipv6,
                             error);
        if (k < 0)
                return k;
        NmKey priv;
        k = nm_key_generate_wg(&priv, &c->public_key);
        if (k < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to make a key pair: %s",
                            g_strerror(-k));
                return k;
        }
        char priv_b64[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&priv, priv_b64);
        sodium_memzero(&priv, sizeof(priv));

        k = store_ext_client_insert(m->store, c, error);
        if (k >= 0)
                k = peers_load_view(m->store, c->network, &after, error);
        if (k < 0) {
                sodium_memzero(priv_b64, sizeof(priv_b64));
                return k;
        }
        /* The gateway gets the client as a peer; the others its addresses in the gateway's allowed IPs. */
        topo_dirty_peer(dirty, c->id);
        topo_dirty_peer(dirty, gw->node->id);
        topo_diff(before, after, dirty, out);

        char gw_key[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&gw->host->wg_key, gw_key);
        g_autofree char *a4 = c->ipv4 ? g_strconcat(c->ipv4, "/32", NULL) : NULL;
        g_autofree char *a6 = c->ipv6 ? g_strconcat(c->ipv6, "/128", NULL) : NULL;
        const char *addresses[] = {a4 ?: a6, a4 ? a6 : NULL, NULL};
        g_auto(GStrv) allowed = topo_ext_client_allowed_ips(after, c);
        ExtClientConfig cfg = {
                .private_key = priv_b64,
                .addresses = addresses,
                .dns = c->dns,
                .mtu = after->network->mtu,
                .peer_public_key = gw_key,
                .endpoint = endpoint,
                .allowed_ips = (const char *const *)allowed,
                .keepalive = after->network->keepalive,
        };
        _cleanup_secret_ char *config = extclient_config_text(&cfg);
        sodium_memzero(priv_b64, sizeof(priv_b64));

        g_autofree char *svg = NULL;
        g_autofree guint8 *png = NULL;
        size_t png_len = 0;
        if (format == FORMAT_JSON || format == FORMAT_SVG)
                k = qr_svg(config, QR_SVG_SCALE, &svg);
        if (k >= 0 && (format == FORMAT_JSON || format == FORMAT_PNG))
                k = qr_png(config, QR_PNG_SCALE, &png, &png_len);
        if (k < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to make the QR code: %s",
                            g_strerror(-k));
                return k;
        }

        k = manager_commit(m, &t, out, error);
        if (png && k < 0)
                sodium_memzero(png, png_len);
        if (k < 0)
                return k;
        log_info("Created external client \"%s\" (%s) on gateway %s (%s) in \"%s\"%s.", c->name, c->id,
                 gw->node->id, gw->host->name, c->network, c->internet_gateway ? ", full tunnel" : "");

        switch (format) {
        case FORMAT_CONF: {
                g_autofree char *filename = g_strconcat(c->name, ".conf", NULL);
                request_reply_data(r, MHD_HTTP_CREATED, "text/plain; charset=utf-8", filename, config,
                                   strlen(config));
                break;
        }
        case FORMAT_PNG:
                request_reply_data(r, MHD_HTTP_CREATED, "image/png", NULL, png, png_len);
                break;
        case FORMAT_SVG:
                request_reply_data(r, MHD_HTTP_CREATED, "image/svg+xml", NULL, svg, strlen(svg));
                break;
        case FORMAT_JSON: {
                g_autoptr(JsonBuilder) b = json_builder_new();
                _cleanup_secret_ char *png_b64 = g_base64_encode(png, png_len);
                json_add_ext_client(b, c, config, svg, png_b64);
                request_reply_builder(r, MHD_HTTP_CREATED, b);
                break;
        }
        }
        if (png)
                sodium_memzero(png, png_len);
        if (svg)
                sodium_memzero(svg, strlen(svg));
        return 0;
}

static int ext_clients_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k >= 0)
                k = store_ext_client_list(m->store, n->name, NULL, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                json_add_ext_client(b, all->pdata[i], NULL, NULL, NULL);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int ext_clients_get(Request *r, GError **error)
{
        g_autoptr(ExtClient) c = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_ext_client_get(request_manager(r)->store, request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        json_add_ext_client(b, c, NULL, NULL, NULL);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

/* What a PUT or DELETE does to a client. */
typedef struct ClientChange {
        bool delete;
        bool set_enabled, enabled;
        bool set_denied;
        char **denied_nodes; /* as requested: checked against the network here */
} ClientChange;

/* Applies `ch` to a client in one transaction, with the messages it takes. */
static int change_client(Request *r, const ClientChange *ch, ExtClient **ret, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(ExtClient) c = NULL;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        g_auto(GStrv) denied = NULL;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_ext_client_get(m->store, request_param(r, "id"), &c, error);
        if (k >= 0)
                k = peers_load_view(m->store, c->network, &before, error);
        if (k >= 0 && ch->set_denied)
                k = check_denied_nodes(m, before, c->gateway, ch->denied_nodes, &denied, error);
        if (k >= 0 && ch->delete)
                k = store_ext_client_delete(m->store, c->id, error);
        if (k >= 0 && ch->set_enabled)
                k = store_ext_client_set_enabled(m->store, c->id, ch->enabled, error);
        if (k >= 0 && ch->set_denied)
                k = store_ext_client_set_denied_nodes(m->store, c->id, denied, error);
        if (k >= 0)
                k = peers_load_view(m->store, c->network, &after, error);
        if (k < 0)
                return k;
        /* The gateway's clients are in its allowed IPs as every viewer sees it. */
        topo_dirty_peer(dirty, c->id);
        topo_dirty_peer(dirty, c->gateway);
        topo_diff(before, after, dirty, out);
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        if (ch->set_enabled)
                c->enabled = ch->enabled;
        if (ch->set_denied) {
                g_strfreev(c->denied_nodes);
                c->denied_nodes = TAKE_PTR(denied);
        }
        log_info("%s external client \"%s\" (%s) in \"%s\"; %u message(s).",
                 ch->delete         ? "Deleted"
                 : !ch->set_enabled ? "Changed"
                 : ch->enabled      ? "Enabled"
                                    : "Disabled",
                 c->name, c->id, c->network, out->msgs->len);
        if (ret)
                *ret = TAKE_PTR(c);
        return 0;
}

static int ext_clients_update(Request *r, GError **error)
{
        static const char *const members[] = {"enabled", "denied_nodes", NULL};
        g_autoptr(JsonObject) o = request_json_object(r, "external client", members, error);
        g_autoptr(ExtClient) c = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_auto(GStrv) denied = NULL;
        ClientChange ch = {};
        int k;

        if (!o || !nm_json_get_bool(o, "enabled", false, &ch.enabled, error) ||
            !nm_json_get_strv(o, "denied_nodes", false, MAX_DENIED_NODES, &denied, error))
                return -EINVAL;
        ch.set_enabled = json_object_has_member(o, "enabled");
        ch.set_denied = json_object_has_member(o, "denied_nodes");
        ch.denied_nodes = denied;
        if (!ch.set_enabled && !ch.set_denied) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Nothing to change: the external client body needs \"enabled\" or "
                            "\"denied_nodes\"");
                return -EINVAL;
        }
        k = change_client(r, &ch, &c, error);
        if (k < 0)
                return k;
        json_add_ext_client(b, c, NULL, NULL, NULL);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int ext_clients_delete(Request *r, GError **error)
{
        ClientChange ch = {.delete = true};
        int k = change_client(r, &ch, NULL, error);
        if (k < 0)
                return k;
        request_reply_empty(r);
        return 0;
}

const Route http_ext_client_routes[] = {
        {"GET", "/networks/{net}/ext-clients", ACCESS_USER, ext_clients_list},
        {"POST", "/networks/{net}/ext-clients", ACCESS_ADMIN, ext_clients_create},
        {"GET", "/ext-clients/{id}", ACCESS_USER, ext_clients_get},
        {"PUT", "/ext-clients/{id}", ACCESS_ADMIN, ext_clients_update},
        {"DELETE", "/ext-clients/{id}", ACCESS_ADMIN, ext_clients_delete},
        {},
};
