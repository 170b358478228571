/* REST resource /networks: create (validated, canonical, non-overlapping ranges), list, read,
 * change settings (hosts are told), delete (refused while nodes are in it unless forced). */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "cidr.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "observer-keys.h"
#include "names.h"
#include "nm-error.h"
#include "topology.h"

void json_add_network(JsonBuilder *b, const Network *n, Manager *m)
{
        const WgResponder *observer = m->observer_endpoint && m->observer_keys
                                              ? observer_keys_get(m->observer_keys, n->name)
                                              : NULL;

        json_builder_begin_object(b);
        nm_json_add_string(b, "name", n->name);
        nm_json_add_string(b, "ipv4_range", n->ipv4_range);
        nm_json_add_string(b, "ipv6_range", n->ipv6_range);
        nm_json_add_int(b, "listen_port", n->listen_port);
        nm_json_add_int(b, "keepalive", n->keepalive);
        nm_json_add_int(b, "mtu", n->mtu);
        nm_json_add_string(b, "dns_domain", n->dns_domain);
        nm_json_add_int(b, "created_at", n->created_at);
        nm_json_add_int(b, "nodes", n->n_nodes);
        /* The server's WireGuard peer on every host's link of the network (docs/protocol.md §3.4). */
        json_builder_set_member_name(b, "observer");
        if (observer) {
                char key[NM_KEY_B64_LEN + 1];
                nm_key_to_base64(&observer->public_key, key);
                json_builder_begin_object(b);
                nm_json_add_string(b, "public_key", key);
                nm_json_add_string(b, "endpoint", m->observer_endpoint);
                json_builder_end_object(b);
        } else
                json_builder_add_null_value(b);
        json_builder_end_object(b);
}

static void reply_network(Request *r, unsigned status, const Network *n)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_network(b, n, request_manager(r));
        request_reply_builder(r, status, b);
}

/* A range as given: the right family, a prefix length we allocate from, host bits clear. */
static int parse_range(const char *member, const char *text, int family, NmPrefix *ret, GError **error)
{
        g_autoptr(GError) e = NULL;
        NmPrefix p;
        unsigned lo = family == AF_INET ? 8 : 64, hi = family == AF_INET ? 30 : 126;

        if (nm_prefix_parse(text, &p, &e) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s: %s", member,
                            e->message);
                return -EINVAL;
        }
        if (p.family != family || !strchr(text, '/')) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": expected an %s range like %s", member, text,
                            family == AF_INET ? "IPv4" : "IPv6",
                            family == AF_INET ? "10.99.0.0/24" : "fd00:99::/64");
                return -EINVAL;
        }
        if (p.prefixlen < lo || p.prefixlen > hi) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": prefix length %u is out of range (%u-%u)", member, text,
                            p.prefixlen, lo, hi);
                return -EINVAL;
        }
        if (!nm_prefix_is_canonical(&p)) {
                NmPrefix c = p;
                nm_prefix_canonicalize(&c);
                g_autofree char *canon = nm_prefix_to_string(&c);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": host bits are set (did you mean %s?)", member, text, canon);
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

static int check_overlap(Manager *m, const char *member, const NmPrefix *p, const char *self, GError **error)
{
        g_autoptr(GPtrArray) all = NULL;
        int r = store_network_list(m->store, &all, error);
        if (r < 0)
                return r;
        g_autofree char *mine = nm_prefix_to_string(p);
        for (guint i = 0; i < all->len; i++) {
                const Network *n = all->pdata[i];
                const char *other = p->family == AF_INET ? n->ipv4_range : n->ipv6_range;
                NmPrefix q;
                if (!other || streq0(n->name, self) || nm_prefix_parse(other, &q, NULL) < 0)
                        continue;
                if (nm_prefix_overlaps(p, &q)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The %s %s overlaps network \"%s\" (%s)", member, mine, n->name, other);
                        return -EEXIST;
                }
        }
        return 0;
}

/* The settings PUT may change, shared with POST; absent members leave `n` as it is. */
static bool read_settings(JsonObject *o, Network *n, GError **error)
{
        gint64 port = n->listen_port, keepalive = n->keepalive, mtu = n->mtu;
        const char *domain = NULL;

        if (!nm_json_get_int(o, "listen_port", false, 1, 65535, &port, error) ||
            !nm_json_get_int(o, "keepalive", false, 0, 3600, &keepalive, error) ||
            !nm_json_get_int(o, "mtu", false, 1280, 9000, &mtu, error) ||
            !nm_json_get_string(o, "dns_domain", false, &domain, error))
                return false;
        if (domain && !nm_dns_domain_valid(domain, error))
                return false;
        n->listen_port = (guint16)port;
        n->keepalive = (guint)keepalive;
        n->mtu = (guint)mtu;
        if (domain) {
                g_free(n->dns_domain);
                n->dns_domain = g_ascii_strdown(domain, -1);
        }
        return true;
}

static int networks_create(Request *r, GError **error)
{
        static const char *const members[] = {"name",      "ipv4_range", "ipv6_range", "listen_port",
                                              "keepalive", "mtu",        "dns_domain", NULL};
        Manager *m = request_manager(r);
        const Config *c = m->config;
        g_autoptr(JsonObject) o = request_json_object(r, "network", members, error);
        const char *name = NULL, *v4 = NULL, *v6 = NULL;
        NmPrefix p4 = {}, p6 = {};
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_string(o, "ipv4_range", false, &v4, error) ||
            !nm_json_get_string(o, "ipv6_range", false, &v6, error))
                return -EINVAL;
        if (!nm_network_name_valid(name, error))
                return -EINVAL;
        if (!v4 && !v6) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Network \"%s\" needs an address range: give ipv4_range, ipv6_range or both",
                            name);
                return -EINVAL;
        }
        if ((v4 && parse_range("ipv4_range", v4, AF_INET, &p4, error) < 0) ||
            (v6 && parse_range("ipv6_range", v6, AF_INET6, &p6, error) < 0))
                return -EINVAL;

        g_autoptr(Network) n = g_new0(Network, 1);
        n->name = g_strdup(name);
        n->ipv4_range = v4 ? nm_prefix_to_string(&p4) : NULL;
        n->ipv6_range = v6 ? nm_prefix_to_string(&p6) : NULL;
        n->listen_port = c->default_listen_port;
        n->keepalive = c->default_keepalive;
        n->mtu = c->default_mtu;
        n->dns_domain = g_strdup(c->dns_domain);
        n->created_at = manager_now();
        if (!read_settings(o, n, error))
                return -EINVAL;

        k = store_txn_begin(m->store, &t, error);
        if (k < 0)
                return k;
        if ((v4 && (k = check_overlap(m, "ipv4_range", &p4, NULL, error)) < 0) ||
            (v6 && (k = check_overlap(m, "ipv6_range", &p6, NULL, error)) < 0))
                return k;
        k = store_network_insert(m->store, n, error);
        if (k < 0)
                return k;
        k = store_txn_commit(&t, error);
        if (k < 0)
                return k;
        manager_networks_changed(m, NULL);
        log_info("Created network \"%s\" (%s%s%s).", n->name, strempty(n->ipv4_range),
                 n->ipv4_range && n->ipv6_range ? ", " : "", strempty(n->ipv6_range));
        reply_network(r, MHD_HTTP_CREATED, n);
        return 0;
}

static int networks_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_network_list(m->store, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                json_add_network(b, all->pdata[i], m);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int networks_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        int k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        reply_network(r, MHD_HTTP_OK, n);
        return 0;
}

static int networks_update(Request *r, GError **error)
{
        static const char *const members[] = {"listen_port", "keepalive", "mtu", "dns_domain", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "network settings", members, error);
        g_autoptr(Network) n = NULL;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o)
                return -EINVAL;
        k = store_txn_begin(m->store, &t, error);
        if (k < 0)
                return k;
        k = peers_load_view(m->store, request_param(r, "net"), &before, error);
        if (k < 0)
                return k;
        n = g_new0(Network, 1);
        *n = *before->network;
        n->name = g_strdup(before->network->name);
        n->ipv4_range = g_strdup(before->network->ipv4_range);
        n->ipv6_range = g_strdup(before->network->ipv6_range);
        n->dns_domain = g_strdup(before->network->dns_domain);
        if (!read_settings(o, n, error))
                return -EINVAL;
        const Network *was = before->network;
        bool changed = was->listen_port != n->listen_port || was->keepalive != n->keepalive ||
                       was->mtu != n->mtu || !streq0(was->dns_domain, n->dns_domain);
        if (changed) {
                k = store_network_update(m->store, n, error);
                if (k >= 0)
                        k = peers_load_view(m->store, n->name, &after, error);
                if (k < 0)
                        return k;
                /* MTU and domain are in each host's state entry ("network-changed" where it differs:
                 * a host with its own MTU keeps it); the keepalive is in every peer entry whose pair
                 * has no host keepalive ("update"). A new default port applies to nodes that join from
                 * now on (existing nodes keep theirs). */
                if (was->keepalive != n->keepalive)
                        topo_dirty_all(dirty);
                topo_diff(before, after, dirty, out);
        }
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        if (changed)
                log_info("Changed the settings of network \"%s\"; told %u host(s).", n->name,
                         out->msgs->len);
        reply_network(r, MHD_HTTP_OK, n);
        return 0;
}

static int networks_delete(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *name = request_param(r, "net");
        g_autoptr(PeerView) v = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        bool force;
        int k;

        k = request_query_bool(r, "force", false, &force, error);
        if (k < 0)
                return k;
        k = store_txn_begin(m->store, &t, error);
        if (k < 0)
                return k;
        k = peers_load_view(m->store, name, &v, error);
        if (k < 0)
                return k;
        if (v->members->len > 0 && !force) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Network \"%s\" still has %u node(s): remove them first, or delete with ?force=true",
                        name, v->members->len);
                return -EBUSY;
        }
        /* Everyone leaves at once: each host hears "network-left", nobody needs removals. */
        for (guint i = 0; i < v->members->len; i++) {
                const Member *mb = v->members->pdata[i];
                NmMessage *msg = nm_message_new(NM_MSG_NETWORK_LEFT, 0);
                msg->network = g_strdup(name);
                outbox_add(out, mb->host, msg);
        }
        k = outbox_assign_serials(out, m->store, error);
        if (k < 0)
                return k;
        k = store_network_delete(m->store, name, error); /* nodes and key links go with it */
        if (k < 0)
                return k;
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        manager_networks_changed(m, name);
        log_info("Deleted network \"%s\" (%u node(s) removed).", name, v->members->len);
        request_reply_empty(r);
        return 0;
}

static int networks_nodes(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *name = request_param(r, "net");
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        k = store_network_get(m->store, name, &n, error);
        if (k < 0)
                return k;
        k = store_node_list(m->store, name, NULL, &nodes, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < nodes->len; i++)
                json_add_node(b, nodes->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

const Route http_network_routes[] = {
        {"GET", "/networks", ACCESS_USER, networks_list},
        {"POST", "/networks", ACCESS_ADMIN, networks_create},
        {"GET", "/networks/{net}", ACCESS_USER, networks_get},
        {"PUT", "/networks/{net}", ACCESS_ADMIN, networks_update},
        {"DELETE", "/networks/{net}", ACCESS_ADMIN, networks_delete},
        {"GET", "/networks/{net}/nodes", ACCESS_USER, networks_nodes},
        {},
};
