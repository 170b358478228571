/* The messages of docs/protocol.md §3 and their strict JSON codecs. */
#include <string.h>

#include "cidr.h"
#include "json-util.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"
#include "proto.h"

NmPeer *nm_peer_new(void)
{
        return g_new0(NmPeer, 1);
}

void nm_peer_free(NmPeer *p)
{
        if (!p)
                return;
        g_free(p->host_id);
        g_free(p->name);
        g_free(p->endpoint);
        g_strfreev(p->allowed_ips);
        g_free(p->ipv4);
        g_free(p->ipv6);
        g_free(p->node_id);
        g_free(p);
}

NmPeer *nm_peer_copy(const NmPeer *p)
{
        NmPeer *c = nm_peer_new();
        c->host_id = g_strdup(p->host_id);
        c->name = g_strdup(p->name);
        c->public_key = p->public_key;
        c->endpoint = g_strdup(p->endpoint);
        c->allowed_ips = g_strdupv(p->allowed_ips);
        c->keepalive = p->keepalive;
        c->ipv4 = g_strdup(p->ipv4);
        c->ipv6 = g_strdup(p->ipv6);
        c->external = p->external;
        c->internet = p->internet;
        c->node_id = g_strdup(p->node_id);
        c->internet_gateway = p->internet_gateway;
        return c;
}

static bool strv_equal0(char **a, char **b)
{
        guint na = a ? g_strv_length(a) : 0, nb = b ? g_strv_length(b) : 0;
        if (na != nb)
                return false;
        for (guint i = 0; i < na; i++)
                if (!streq0(a[i], b[i]))
                        return false;
        return true;
}

bool nm_peer_equal(const NmPeer *a, const NmPeer *b)
{
        return streq0(a->host_id, b->host_id) && streq0(a->name, b->name) &&
               nm_key_equal(&a->public_key, &b->public_key) && streq0(a->endpoint, b->endpoint) &&
               strv_equal0(a->allowed_ips, b->allowed_ips) && a->keepalive == b->keepalive &&
               streq0(a->ipv4, b->ipv4) && streq0(a->ipv6, b->ipv6) && a->external == b->external &&
               a->internet == b->internet && streq0(a->node_id, b->node_id) &&
               a->internet_gateway == b->internet_gateway;
}

void nm_peer_to_json(const NmPeer *p, JsonBuilder *b)
{
        char key[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&p->public_key, key);
        json_builder_begin_object(b);
        nm_json_add_string(b, "host_id", p->host_id);
        nm_json_add_string(b, "name", p->name);
        nm_json_add_string(b, "public_key", key);
        nm_json_add_string(b, "endpoint", p->endpoint);
        nm_json_add_strv(b, "allowed_ips", (const char *const *)p->allowed_ips);
        nm_json_add_int(b, "keepalive", p->keepalive);
        nm_json_add_string(b, "ipv4", p->ipv4);
        nm_json_add_string(b, "ipv6", p->ipv6);
        if (p->external)
                nm_json_add_bool(b, "external", true);
        if (p->internet)
                nm_json_add_bool(b, "internet", true);
        if (p->node_id)
                nm_json_add_string(b, "node_id", p->node_id);
        if (p->internet_gateway)
                nm_json_add_bool(b, "internet_gateway", true);
        json_builder_end_object(b);
}

static JsonObject *expect_object(JsonNode *n, const char *what, GError **error)
{
        if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s: an object was expected",
                            what);
                return NULL;
        }
        return json_node_get_object(n);
}

static bool valid_addr(const char *s, int family, const char *what, GError **error)
{
        int f;
        NmInAddr a;
        if (!s)
                return true;
        if (nm_addr_parse(s, &f, &a) < 0 || f != family) {
                g_autofree char *v = g_utf8_make_valid(s, MIN(strlen(s), 64));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s \"%s\"", what, v);
                return false;
        }
        return true;
}

static bool valid_iface_addr(const char *s, int family, const char *what, GError **error)
{
        NmPrefix p;
        if (!s)
                return true;
        if (nm_prefix_parse(s, &p, error) < 0)
                return false;
        if (p.family != family) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": wrong address family", what, s);
                return false;
        }
        return true;
}

NmPeer *nm_peer_from_json(JsonNode *n, GError **error)
{
        static const char *const members[] = {
                "host_id", "name",     "public_key", "endpoint", "allowed_ips",      "keepalive", "ipv4",
                "ipv6",    "external", "internet",   "node_id",  "internet_gateway", NULL};
        JsonObject *o = expect_object(n, "peer", error);
        const char *host_id = NULL, *name = NULL, *key = NULL, *endpoint = NULL, *ipv4 = NULL, *ipv6 = NULL,
                   *node_id = NULL;
        g_auto(GStrv) allowed = NULL;
        gint64 keepalive = 0;
        bool external = false, internet = false, internet_gateway = false;

        if (!o || !nm_json_check_members(o, "peer", members, error) ||
            !nm_json_get_string(o, "host_id", true, &host_id, error) ||
            !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_string(o, "public_key", true, &key, error) ||
            !nm_json_get_string(o, "endpoint", false, &endpoint, error) ||
            !nm_json_get_strv(o, "allowed_ips", true, NM_MAX_ALLOWED_IPS, &allowed, error) ||
            !nm_json_get_int(o, "keepalive", false, 0, 65535, &keepalive, error) ||
            !nm_json_get_string(o, "ipv4", false, &ipv4, error) ||
            !nm_json_get_string(o, "ipv6", false, &ipv6, error) ||
            !nm_json_get_bool(o, "external", false, &external, error) ||
            !nm_json_get_bool(o, "internet", false, &internet, error) ||
            !nm_json_get_string(o, "node_id", false, &node_id, error) ||
            !nm_json_get_bool(o, "internet_gateway", false, &internet_gateway, error))
                return NULL;

        g_autoptr(NmPeer) p = nm_peer_new();
        if (!nm_uuid_valid(host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid peer host id");
                return NULL;
        }
        if (node_id && !nm_uuid_valid(node_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid peer node id");
                return NULL;
        }
        if (!nm_host_name_valid(name, error))
                return NULL;
        if (nm_key_from_base64(key, &p->public_key) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid peer public key: not 32 bytes of base64");
                return NULL;
        }
        if (endpoint) {
                int f;
                NmInAddr a;
                uint16_t port;
                if (nm_endpoint_parse(endpoint, &f, &a, &port) < 0) {
                        g_autofree char *v = g_utf8_make_valid(endpoint, MIN(strlen(endpoint), 64));
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid peer endpoint \"%s\": expected address:port", v);
                        return NULL;
                }
        }
        for (char **a = allowed; *a; a++) {
                NmPrefix pf;
                if (nm_prefix_parse(*a, &pf, error) < 0)
                        return NULL;
                if (!nm_prefix_is_canonical(&pf)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid allowed IP \"%s\": host bits are set", *a);
                        return NULL;
                }
        }
        if (!valid_addr(ipv4, AF_INET, "peer IPv4 address", error) ||
            !valid_addr(ipv6, AF_INET6, "peer IPv6 address", error))
                return NULL;
        p->host_id = g_strdup(host_id);
        p->name = g_strdup(name);
        p->endpoint = g_strdup(endpoint);
        p->allowed_ips = TAKE_PTR(allowed);
        p->keepalive = (guint)keepalive;
        p->ipv4 = g_strdup(ipv4);
        p->ipv6 = g_strdup(ipv6);
        p->external = external;
        p->internet = internet;
        p->node_id = g_strdup(node_id);
        p->internet_gateway = internet_gateway;
        return TAKE_PTR(p);
}

void nm_roles_clear(NmRoles *r)
{
        g_clear_pointer(&r->egress_ranges, g_strfreev);
        g_clear_pointer(&r->relayed_by, g_free);
        g_clear_pointer(&r->internet_gateway_via, g_free);
        *r = (NmRoles){};
}

bool nm_roles_equal(const NmRoles *a, const NmRoles *b)
{
        return strv_equal0(a->egress_ranges, b->egress_ranges) && !a->egress_ranges == !b->egress_ranges &&
               a->egress_nat == b->egress_nat && a->internet_gateway == b->internet_gateway &&
               a->ingress == b->ingress && a->relay == b->relay && streq0(a->relayed_by, b->relayed_by) &&
               streq0(a->internet_gateway_via, b->internet_gateway_via) && a->failover == b->failover;
}

bool nm_roles_forwards(const NmRoles *r)
{
        return r->egress_ranges || r->internet_gateway || r->ingress || r->relay || r->failover;
}

static bool roles_empty(const NmRoles *r)
{
        return !nm_roles_forwards(r) && !r->egress_nat && !r->relayed_by && !r->internet_gateway_via;
}

static void roles_to_json(const NmRoles *r, JsonBuilder *b)
{
        json_builder_begin_object(b);
        if (r->egress_ranges)
                nm_json_add_strv(b, "egress_ranges", (const char *const *)r->egress_ranges);
        else
                nm_json_add_string(b, "egress_ranges", NULL);
        nm_json_add_bool(b, "egress_nat", r->egress_nat);
        nm_json_add_bool(b, "internet_gateway", r->internet_gateway);
        nm_json_add_bool(b, "ingress", r->ingress);
        nm_json_add_bool(b, "relay", r->relay);
        nm_json_add_string(b, "relayed_by", r->relayed_by);
        nm_json_add_string(b, "internet_gateway_via", r->internet_gateway_via);
        nm_json_add_bool(b, "failover", r->failover);
        json_builder_end_object(b);
}

void nm_roles_to_json(const NmRoles *r, JsonBuilder *b)
{
        roles_to_json(r, b);
}

static bool roles_from_json(JsonObject *o, NmRoles *ret, GError **error)
{
        static const char *const members[] = {
                "egress_ranges", "egress_nat",           "internet_gateway", "ingress", "relay",
                "relayed_by",    "internet_gateway_via", "failover",         NULL};
        NmRoles r = {};
        const char *relayed_by = NULL, *via = NULL;

        if (!nm_json_check_members(o, "roles", members, error) ||
            !nm_json_get_strv(o, "egress_ranges", false, NM_MAX_ALLOWED_IPS, &r.egress_ranges, error) ||
            !nm_json_get_bool(o, "egress_nat", false, &r.egress_nat, error) ||
            !nm_json_get_bool(o, "internet_gateway", false, &r.internet_gateway, error) ||
            !nm_json_get_bool(o, "ingress", false, &r.ingress, error) ||
            !nm_json_get_bool(o, "relay", false, &r.relay, error) ||
            !nm_json_get_string(o, "relayed_by", false, &relayed_by, error) ||
            !nm_json_get_string(o, "internet_gateway_via", false, &via, error) ||
            !nm_json_get_bool(o, "failover", false, &r.failover, error)) {
                nm_roles_clear(&r);
                return false;
        }
        for (char **a = r.egress_ranges; a && *a; a++) {
                NmPrefix pf;
                if (nm_prefix_parse(*a, &pf, error) < 0 || !nm_prefix_is_canonical(&pf)) {
                        if (error && !*error)
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Invalid egress range \"%s\": host bits are set", *a);
                        nm_roles_clear(&r);
                        return false;
                }
        }
        if ((relayed_by && !nm_uuid_valid(relayed_by)) || (via && !nm_uuid_valid(via))) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid node id in roles");
                nm_roles_clear(&r);
                return false;
        }
        r.relayed_by = g_strdup(relayed_by);
        r.internet_gateway_via = g_strdup(via);
        *ret = r;
        return true;
}

NmDnsEntry *nm_dns_entry_new(const char *name, const char *ipv4, const char *ipv6)
{
        NmDnsEntry *e = g_new0(NmDnsEntry, 1);
        e->name = g_strdup(name);
        e->ipv4 = g_strdup(ipv4);
        e->ipv6 = g_strdup(ipv6);
        return e;
}

void nm_dns_entry_free(NmDnsEntry *e)
{
        if (!e)
                return;
        g_free(e->name);
        g_free(e->ipv4);
        g_free(e->ipv6);
        g_free(e);
}

static NmDnsEntry *dns_entry_from_json(JsonNode *n, GError **error)
{
        static const char *const members[] = {"name", "ipv4", "ipv6", NULL};
        JsonObject *o = expect_object(n, "DNS entry", error);
        const char *name = NULL, *ipv4 = NULL, *ipv6 = NULL;

        if (!o || !nm_json_check_members(o, "DNS entry", members, error) ||
            !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_string(o, "ipv4", false, &ipv4, error) ||
            !nm_json_get_string(o, "ipv6", false, &ipv6, error) || !nm_dns_domain_valid(name, error) ||
            !valid_addr(ipv4, AF_INET, "DNS entry IPv4 address", error) ||
            !valid_addr(ipv6, AF_INET6, "DNS entry IPv6 address", error))
                return NULL;
        if (!ipv4 && !ipv6) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "DNS entry \"%s\" has neither an IPv4 nor an IPv6 address", name);
                return NULL;
        }
        return nm_dns_entry_new(name, ipv4, ipv6);
}

void nm_observer_free(NmObserver *o)
{
        if (!o)
                return;
        g_free(o->endpoint);
        g_free(o);
}

NmObserver *nm_observer_copy(const NmObserver *o)
{
        if (!o)
                return NULL;
        NmObserver *c = g_new0(NmObserver, 1);
        *c = *o;
        c->endpoint = g_strdup(o->endpoint);
        return c;
}

bool nm_observer_equal(const NmObserver *a, const NmObserver *b)
{
        if (!a || !b)
                return !a && !b;
        return nm_key_equal(&a->public_key, &b->public_key) && streq0(a->endpoint, b->endpoint) &&
               a->keepalive == b->keepalive && a->stun == b->stun;
}

static void observer_to_json(const NmObserver *o, JsonBuilder *b)
{
        char key[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&o->public_key, key);
        json_builder_begin_object(b);
        nm_json_add_string(b, "public_key", key);
        nm_json_add_string(b, "endpoint", o->endpoint);
        nm_json_add_int(b, "keepalive", o->keepalive);
        nm_json_add_bool(b, "stun", o->stun);
        json_builder_end_object(b);
}

static NmObserver *observer_from_json(JsonObject *o, GError **error)
{
        static const char *const members[] = {"public_key", "endpoint", "keepalive", "stun", NULL};
        const char *key = NULL, *endpoint = NULL;
        gint64 keepalive = 0;
        bool stun = false;
        int f;
        NmInAddr a;
        uint16_t port;

        if (!nm_json_check_members(o, "observer", members, error) ||
            !nm_json_get_string(o, "public_key", true, &key, error) ||
            !nm_json_get_string(o, "endpoint", true, &endpoint, error) ||
            !nm_json_get_int(o, "keepalive", true, 1, 3600, &keepalive, error) ||
            !nm_json_get_bool(o, "stun", false, &stun, error))
                return NULL;
        g_autoptr(NmObserver) r = g_new0(NmObserver, 1);
        if (nm_key_from_base64(key, &r->public_key) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid observer public key: not 32 bytes of base64");
                return NULL;
        }
        if (nm_endpoint_parse(endpoint, &f, &a, &port) < 0 || port == 0) {
                g_autofree char *v = g_utf8_make_valid(endpoint, MIN(strlen(endpoint), 64));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid observer endpoint \"%s\": expected address:port", v);
                return NULL;
        }
        r->endpoint = g_strdup(endpoint);
        r->keepalive = (guint)keepalive;
        r->stun = stun;
        return TAKE_PTR(r);
}

NmNameserver *nm_nameserver_new(const char *domain, char **servers)
{
        NmNameserver *ns = g_new0(NmNameserver, 1);
        ns->domain = g_strdup(domain);
        ns->servers = servers ? g_strdupv(servers) : g_new0(char *, 1);
        return ns;
}

NmNameserver *nm_nameserver_copy(const NmNameserver *ns)
{
        return nm_nameserver_new(ns->domain, ns->servers);
}

void nm_nameserver_free(NmNameserver *ns)
{
        if (!ns)
                return;
        g_free(ns->domain);
        g_strfreev(ns->servers);
        g_free(ns);
}

static NmNameserver *nameserver_from_json(JsonNode *n, GError **error)
{
        static const char *const members[] = {"domain", "servers", NULL};
        JsonObject *o = expect_object(n, "nameserver", error);
        const char *domain = NULL;
        g_auto(GStrv) servers = NULL;

        if (!o || !nm_json_check_members(o, "nameserver", members, error) ||
            !nm_json_get_string(o, "domain", true, &domain, error) ||
            !nm_json_get_strv(o, "servers", true, NM_MAX_NAMESERVER_SERVERS, &servers, error) ||
            !nm_dns_domain_valid(domain, error))
                return NULL;
        if (!servers[0]) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Nameserver \"%s\" has no servers",
                            domain);
                return NULL;
        }
        for (char **a = servers; *a; a++) {
                int f;
                NmInAddr x;
                if (nm_addr_parse(*a, &f, &x) < 0) {
                        g_autofree char *v = g_utf8_make_valid(*a, MIN(strlen(*a), 64));
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid server \"%s\" of nameserver \"%s\": expected an IP address", v,
                                    domain);
                        return NULL;
                }
        }
        g_autofree char *lower = g_ascii_strdown(domain, -1);
        return nm_nameserver_new(lower, servers);
}

NmNetworkState *nm_network_state_new(void)
{
        NmNetworkState *s = g_new0(NmNetworkState, 1);
        s->dns = g_ptr_array_new_with_free_func((GDestroyNotify)nm_dns_entry_free);
        s->nameservers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_nameserver_free);
        return s;
}

void nm_network_state_free(NmNetworkState *s)
{
        if (!s)
                return;
        g_free(s->network);
        g_free(s->node_id);
        g_free(s->ipv4);
        g_free(s->ipv6);
        g_free(s->dns_domain);
        g_free(s->host_name);
        nm_roles_clear(&s->roles);
        if (s->dns)
                g_ptr_array_unref(s->dns);
        if (s->nameservers)
                g_ptr_array_unref(s->nameservers);
        if (s->peers)
                g_ptr_array_unref(s->peers);
        nm_observer_free(s->observer);
        g_free(s);
}

static void roles_copy(NmRoles *dst, const NmRoles *src)
{
        *dst = *src;
        dst->egress_ranges = g_strdupv(src->egress_ranges);
        dst->relayed_by = g_strdup(src->relayed_by);
        dst->internet_gateway_via = g_strdup(src->internet_gateway_via);
}

NmNetworkState *nm_network_state_copy(const NmNetworkState *s)
{
        NmNetworkState *c = nm_network_state_new();

        c->network = g_strdup(s->network);
        c->node_id = g_strdup(s->node_id);
        c->ipv4 = g_strdup(s->ipv4);
        c->ipv6 = g_strdup(s->ipv6);
        c->listen_port = s->listen_port;
        c->keepalive = s->keepalive;
        c->mtu = s->mtu;
        c->dns_domain = g_strdup(s->dns_domain);
        c->connected = s->connected;
        c->host_name = g_strdup(s->host_name);
        roles_copy(&c->roles, &s->roles);
        for (guint i = 0; s->dns && i < s->dns->len; i++) {
                const NmDnsEntry *e = s->dns->pdata[i];
                g_ptr_array_add(c->dns, nm_dns_entry_new(e->name, e->ipv4, e->ipv6));
        }
        for (guint i = 0; s->nameservers && i < s->nameservers->len; i++)
                g_ptr_array_add(c->nameservers, nm_nameserver_copy(s->nameservers->pdata[i]));
        if (s->peers) {
                c->peers = g_ptr_array_new_full(s->peers->len, (GDestroyNotify)nm_peer_free);
                for (guint i = 0; i < s->peers->len; i++)
                        g_ptr_array_add(c->peers, nm_peer_copy(s->peers->pdata[i]));
        }
        c->observer = nm_observer_copy(s->observer);
        c->failover_after = s->failover_after;
        return c;
}

static void peers_to_json(GPtrArray *peers, JsonBuilder *b)
{
        json_builder_begin_array(b);
        for (guint i = 0; peers && i < peers->len; i++)
                nm_peer_to_json(peers->pdata[i], b);
        json_builder_end_array(b);
}

void nm_network_state_to_json(const NmNetworkState *s, JsonBuilder *b)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "network", s->network);
        nm_json_add_string(b, "node_id", s->node_id);
        nm_json_add_string(b, "ipv4", s->ipv4);
        nm_json_add_string(b, "ipv6", s->ipv6);
        nm_json_add_int(b, "listen_port", s->listen_port);
        nm_json_add_int(b, "keepalive", s->keepalive);
        nm_json_add_int(b, "mtu", s->mtu);
        nm_json_add_string(b, "dns_domain", s->dns_domain);
        nm_json_add_bool(b, "connected", s->connected);
        if (s->host_name)
                nm_json_add_string(b, "host_name", s->host_name);
        if (!roles_empty(&s->roles)) {
                json_builder_set_member_name(b, "roles");
                roles_to_json(&s->roles, b);
        }
        if (s->dns && s->dns->len > 0) {
                json_builder_set_member_name(b, "dns");
                json_builder_begin_array(b);
                for (guint i = 0; i < s->dns->len; i++) {
                        NmDnsEntry *e = s->dns->pdata[i];
                        json_builder_begin_object(b);
                        nm_json_add_string(b, "name", e->name);
                        nm_json_add_string(b, "ipv4", e->ipv4);
                        nm_json_add_string(b, "ipv6", e->ipv6);
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
        }
        if (s->observer) {
                json_builder_set_member_name(b, "observer");
                observer_to_json(s->observer, b);
        }
        if (s->failover_after > 0)
                nm_json_add_int(b, "failover_after", s->failover_after);
        if (s->nameservers && s->nameservers->len > 0) {
                json_builder_set_member_name(b, "nameservers");
                json_builder_begin_array(b);
                for (guint i = 0; i < s->nameservers->len; i++) {
                        const NmNameserver *ns = s->nameservers->pdata[i];
                        json_builder_begin_object(b);
                        nm_json_add_string(b, "domain", ns->domain);
                        nm_json_add_strv(b, "servers", (const char *const *)ns->servers);
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
        }
        if (s->peers) {
                json_builder_set_member_name(b, "peers");
                peers_to_json(s->peers, b);
        }
        json_builder_end_object(b);
}

static GPtrArray *peers_from_json(JsonArray *a, GError **error)
{
        guint n = json_array_get_length(a);
        if (n > NM_MAX_PEERS_PER_MESSAGE) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Too many peers (%u)", n);
                return NULL;
        }
        g_autoptr(GPtrArray) peers = g_ptr_array_new_full(n, (GDestroyNotify)nm_peer_free);
        for (guint i = 0; i < n; i++) {
                NmPeer *p = nm_peer_from_json(json_array_get_element(a, i), error);
                if (!p)
                        return NULL;
                g_ptr_array_add(peers, p);
        }
        return TAKE_PTR(peers);
}

NmNetworkState *nm_network_state_from_json(JsonNode *n, GError **error)
{
        static const char *const members[] = {
                "network",     "node_id",    "ipv4",      "ipv6",           "listen_port", "keepalive",
                "mtu",         "dns_domain", "connected", "host_name",      "roles",       "dns",
                "nameservers", "peers",      "observer",  "failover_after", NULL};
        JsonObject *o = expect_object(n, "network state", error);
        const char *network = NULL, *node_id = NULL, *ipv4 = NULL, *ipv6 = NULL, *domain = NULL;
        gint64 port = 0, keepalive = 0, mtu = 0, failover_after = 0;
        bool connected = true;
        JsonArray *peers = NULL, *dns = NULL, *nameservers = NULL;
        JsonObject *roles = NULL, *observer = NULL;
        const char *host_name = NULL;

        if (!o || !nm_json_check_members(o, "network state", members, error) ||
            !nm_json_get_string(o, "network", true, &network, error) ||
            !nm_json_get_string(o, "node_id", true, &node_id, error) ||
            !nm_json_get_string(o, "ipv4", false, &ipv4, error) ||
            !nm_json_get_string(o, "ipv6", false, &ipv6, error) ||
            !nm_json_get_int(o, "listen_port", true, 1, 65535, &port, error) ||
            !nm_json_get_int(o, "keepalive", true, 0, 65535, &keepalive, error) ||
            !nm_json_get_int(o, "mtu", true, 576, 65535, &mtu, error) ||
            !nm_json_get_string(o, "dns_domain", false, &domain, error) ||
            !nm_json_get_bool(o, "connected", false, &connected, error) ||
            !nm_json_get_array(o, "peers", false, &peers, error) ||
            !nm_json_get_string(o, "host_name", false, &host_name, error) ||
            !nm_json_get_object(o, "roles", false, &roles, error) ||
            !nm_json_get_array(o, "dns", false, &dns, error) ||
            !nm_json_get_array(o, "nameservers", false, &nameservers, error) ||
            !nm_json_get_object(o, "observer", false, &observer, error) ||
            !nm_json_get_int(o, "failover_after", false, 0, 86400, &failover_after, error))
                return NULL;
        if (!nm_network_name_valid(network, error))
                return NULL;
        if (!nm_uuid_valid(node_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid node id");
                return NULL;
        }
        if (!ipv4 && !ipv6) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Network state for \"%s\" has neither an IPv4 nor an IPv6 address", network);
                return NULL;
        }
        if (!valid_iface_addr(ipv4, AF_INET, "IPv4 address", error) ||
            !valid_iface_addr(ipv6, AF_INET6, "IPv6 address", error))
                return NULL;
        if (domain && !nm_dns_domain_valid(domain, error))
                return NULL;
        if (host_name && !nm_host_name_valid(host_name, error))
                return NULL;

        g_autoptr(NmNetworkState) s = nm_network_state_new();
        if (peers && !(s->peers = peers_from_json(peers, error)))
                return NULL;
        if (roles && !roles_from_json(roles, &s->roles, error))
                return NULL;
        if (observer && !(s->observer = observer_from_json(observer, error)))
                return NULL;
        s->failover_after = (guint)failover_after;
        if (dns && json_array_get_length(dns) > NM_MAX_PEERS_PER_MESSAGE) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Too many DNS entries");
                return NULL;
        }
        for (guint i = 0; dns && i < json_array_get_length(dns); i++) {
                NmDnsEntry *e = dns_entry_from_json(json_array_get_element(dns, i), error);
                if (!e)
                        return NULL;
                g_ptr_array_add(s->dns, e);
        }
        if (nameservers && json_array_get_length(nameservers) > NM_MAX_NAMESERVERS) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Too many nameservers (%u, at most %d)", json_array_get_length(nameservers),
                            NM_MAX_NAMESERVERS);
                return NULL;
        }
        for (guint i = 0; nameservers && i < json_array_get_length(nameservers); i++) {
                NmNameserver *ns = nameserver_from_json(json_array_get_element(nameservers, i), error);
                if (!ns)
                        return NULL;
                g_ptr_array_add(s->nameservers, ns);
        }
        s->host_name = g_strdup(host_name);
        s->network = g_strdup(network);
        s->node_id = g_strdup(node_id);
        s->ipv4 = g_strdup(ipv4);
        s->ipv6 = g_strdup(ipv6);
        s->listen_port = (guint16)port;
        s->keepalive = (guint)keepalive;
        s->mtu = (guint)mtu;
        s->dns_domain = g_strdup(domain);
        s->connected = connected;
        return TAKE_PTR(s);
}

NmState *nm_state_new(void)
{
        NmState *s = g_new0(NmState, 1);
        s->networks = g_ptr_array_new_with_free_func((GDestroyNotify)nm_network_state_free);
        return s;
}

void nm_state_free(NmState *s)
{
        if (!s)
                return;
        g_free(s->host_id);
        g_ptr_array_unref(s->networks);
        g_free(s);
}

void nm_state_to_json(const NmState *s, JsonBuilder *b)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "host_id", s->host_id);
        nm_json_add_int(b, "serial", (gint64)s->serial);
        json_builder_set_member_name(b, "networks");
        json_builder_begin_array(b);
        for (guint i = 0; i < s->networks->len; i++)
                nm_network_state_to_json(s->networks->pdata[i], b);
        json_builder_end_array(b);
        json_builder_end_object(b);
}

NmState *nm_state_from_json(JsonNode *n, GError **error)
{
        static const char *const members[] = {"host_id", "serial", "networks", NULL};
        JsonObject *o = expect_object(n, "state", error);
        const char *host_id = NULL;
        gint64 serial = 0;
        JsonArray *nets = NULL;

        if (!o || !nm_json_check_members(o, "state", members, error) ||
            !nm_json_get_string(o, "host_id", true, &host_id, error) ||
            !nm_json_get_int(o, "serial", true, 0, G_MAXINT64, &serial, error) ||
            !nm_json_get_array(o, "networks", true, &nets, error))
                return NULL;
        if (!nm_uuid_valid(host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid host id in state");
                return NULL;
        }
        g_autoptr(NmState) s = nm_state_new();
        s->host_id = g_strdup(host_id);
        s->serial = (guint64)serial;
        for (guint i = 0; i < json_array_get_length(nets); i++) {
                NmNetworkState *ns = nm_network_state_from_json(json_array_get_element(nets, i), error);
                if (!ns)
                        return NULL;
                g_ptr_array_add(s->networks, ns);
        }
        return TAKE_PTR(s);
}

static const char *const message_types[_NM_MSG_MAX] = {
        [NM_MSG_PEERS] = "peers",
        [NM_MSG_NETWORK_JOINED] = "network-joined",
        [NM_MSG_NETWORK_LEFT] = "network-left",
        [NM_MSG_NETWORK_CHANGED] = "network-changed",
        [NM_MSG_SNAPSHOT] = "snapshot",
        [NM_MSG_HOST_DELETED] = "host-deleted",
};

const char *nm_message_type_to_string(NmMessageType t)
{
        return t < _NM_MSG_MAX ? message_types[t] : NULL;
}

NmMessage *nm_message_new(NmMessageType type, guint64 serial)
{
        NmMessage *m = g_new0(NmMessage, 1);
        m->type = type;
        m->serial = serial;
        if (type == NM_MSG_PEERS) {
                m->add = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
                m->update = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
                m->remove = g_ptr_array_new_with_free_func(g_free);
        }
        return m;
}

void nm_message_free(NmMessage *m)
{
        if (!m)
                return;
        g_free(m->network);
        if (m->add)
                g_ptr_array_unref(m->add);
        if (m->update)
                g_ptr_array_unref(m->update);
        if (m->remove)
                g_ptr_array_unref(m->remove);
        nm_network_state_free(m->net);
        nm_state_free(m->state);
        g_free(m);
}

char *nm_message_to_json(const NmMessage *m)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        nm_json_add_string(b, "type", nm_message_type_to_string(m->type));
        nm_json_add_int(b, "serial", (gint64)m->serial);
        switch (m->type) {
        case NM_MSG_PEERS:
                nm_json_add_string(b, "network", m->network);
                json_builder_set_member_name(b, "add");
                peers_to_json(m->add, b);
                json_builder_set_member_name(b, "update");
                peers_to_json(m->update, b);
                json_builder_set_member_name(b, "remove");
                json_builder_begin_array(b);
                for (guint i = 0; i < m->remove->len; i++) {
                        char k[NM_KEY_B64_LEN + 1];
                        nm_key_to_base64(m->remove->pdata[i], k);
                        json_builder_add_string_value(b, k);
                }
                json_builder_end_array(b);
                break;
        case NM_MSG_NETWORK_LEFT:
                nm_json_add_string(b, "network", m->network);
                break;
        case NM_MSG_NETWORK_JOINED:
        case NM_MSG_NETWORK_CHANGED:
                json_builder_set_member_name(b, "network");
                nm_network_state_to_json(m->net, b);
                break;
        case NM_MSG_SNAPSHOT:
                json_builder_set_member_name(b, "state");
                nm_state_to_json(m->state, b);
                break;
        case NM_MSG_HOST_DELETED:
        case _NM_MSG_MAX:
                break;
        }
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

NmMessage *nm_message_parse(const char *data, gssize len, GError **error)
{
        g_autoptr(JsonObject) o = nm_json_parse_object(data, len, error);
        const char *type = NULL;
        gint64 serial = 0;
        int t = -1;

        if (!o || !nm_json_get_string(o, "type", true, &type, error) ||
            !nm_json_get_int(o, "serial", true, 0, G_MAXINT64, &serial, error))
                return NULL;
        for (int i = 0; i < _NM_MSG_MAX; i++)
                if (streq0(type, message_types[i]))
                        t = i;
        if (t < 0) {
                g_autofree char *v = g_utf8_make_valid(type, MIN(strlen(type), 64));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Unknown message type \"%s\"", v);
                return NULL;
        }
        g_autoptr(NmMessage) m = nm_message_new(t, (guint64)serial);
        switch (m->type) {
        case NM_MSG_PEERS: {
                static const char *const members[] = {"type",   "serial", "network", "add",
                                                      "update", "remove", NULL};
                const char *network = NULL;
                JsonArray *add = NULL, *update = NULL;
                g_auto(GStrv) remove = NULL;
                if (!nm_json_check_members(o, "peers message", members, error) ||
                    !nm_json_get_string(o, "network", true, &network, error) ||
                    !nm_json_get_array(o, "add", false, &add, error) ||
                    !nm_json_get_array(o, "update", false, &update, error) ||
                    !nm_json_get_strv(o, "remove", false, NM_MAX_PEERS_PER_MESSAGE, &remove, error) ||
                    !nm_network_name_valid(network, error))
                        return NULL;
                m->network = g_strdup(network);
                if (add) {
                        g_ptr_array_unref(m->add);
                        if (!(m->add = peers_from_json(add, error)))
                                return NULL;
                }
                if (update) {
                        g_ptr_array_unref(m->update);
                        if (!(m->update = peers_from_json(update, error)))
                                return NULL;
                }
                for (char **r = remove; r && *r; r++) {
                        NmKey *k = g_new(NmKey, 1);
                        g_ptr_array_add(m->remove, k);
                        if (nm_key_from_base64(*r, k) < 0) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Invalid public key in \"remove\"");
                                return NULL;
                        }
                }
                break;
        }
        case NM_MSG_NETWORK_LEFT: {
                static const char *const members[] = {"type", "serial", "network", NULL};
                const char *network = NULL;
                if (!nm_json_check_members(o, "network-left message", members, error) ||
                    !nm_json_get_string(o, "network", true, &network, error) ||
                    !nm_network_name_valid(network, error))
                        return NULL;
                m->network = g_strdup(network);
                break;
        }
        case NM_MSG_NETWORK_JOINED:
        case NM_MSG_NETWORK_CHANGED: {
                static const char *const members[] = {"type", "serial", "network", NULL};
                if (!nm_json_check_members(o, "network message", members, error))
                        return NULL;
                if (!(m->net = nm_network_state_from_json(json_object_get_member(o, "network"), error)))
                        return NULL;
                break;
        }
        case NM_MSG_SNAPSHOT: {
                static const char *const members[] = {"type", "serial", "state", NULL};
                if (!nm_json_check_members(o, "snapshot message", members, error))
                        return NULL;
                if (!(m->state = nm_state_from_json(json_object_get_member(o, "state"), error)))
                        return NULL;
                break;
        }
        case NM_MSG_HOST_DELETED: {
                static const char *const members[] = {"type", "serial", NULL};
                if (!nm_json_check_members(o, "host-deleted message", members, error))
                        return NULL;
                break;
        }
        case _NM_MSG_MAX:
                g_assert_not_reached();
        }
        return TAKE_PTR(m);
}

NmReport *nm_report_new(NmReportType type)
{
        NmReport *r = g_new0(NmReport, 1);
        r->type = type;
        r->listen_ports = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return r;
}

void nm_report_free(NmReport *r)
{
        if (!r)
                return;
        g_free(r->version);
        g_hash_table_unref(r->listen_ports);
        g_strfreev(r->endpoints);
        g_free(r->public_ip);
        if (r->peers)
                g_hash_table_unref(r->peers);
        g_free(r);
}

void nm_report_add_peer_status(NmReport *r, const char *network, const NmPeerStatus *st)
{
        if (!r->peers)
                r->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify)g_array_unref);
        GArray *a = g_hash_table_lookup(r->peers, network);
        if (!a) {
                a = g_array_new(false, false, sizeof(NmPeerStatus));
                g_hash_table_insert(r->peers, g_strdup(network), a);
        }
        g_array_append_val(a, *st);
}

static void peer_status_to_json(const NmPeerStatus *st, JsonBuilder *b)
{
        char key[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&st->public_key, key);
        json_builder_begin_object(b);
        nm_json_add_string(b, "public_key", key);
        json_builder_set_member_name(b, "handshake");
        if (st->handshake < 0)
                json_builder_add_null_value(b);
        else
                json_builder_add_int_value(b, st->handshake);
        nm_json_add_int(b, "since", (gint64)MIN(st->since, (guint64)G_MAXINT64));
        nm_json_add_int(b, "rx", (gint64)MIN(st->rx_bytes, (guint64)G_MAXINT64));
        nm_json_add_int(b, "tx", (gint64)MIN(st->tx_bytes, (guint64)G_MAXINT64));
        json_builder_end_object(b);
}

static bool peer_status_from_json(JsonNode *n, NmPeerStatus *ret, GError **error)
{
        static const char *const members[] = {"public_key", "handshake", "since", "rx", "tx", NULL};
        JsonObject *o = expect_object(n, "peer status", error);
        const char *key = NULL;
        gint64 handshake = -1, since = 0, rx = 0, tx = 0;

        if (!o || !nm_json_check_members(o, "peer status", members, error) ||
            !nm_json_get_string(o, "public_key", true, &key, error) ||
            !nm_json_get_int(o, "since", true, 0, G_MAXINT64, &since, error) ||
            !nm_json_get_int(o, "rx", false, 0, G_MAXINT64, &rx, error) ||
            !nm_json_get_int(o, "tx", false, 0, G_MAXINT64, &tx, error))
                return false;
        /* "handshake": seconds, or null for none. */
        JsonNode *h = json_object_get_member(o, "handshake");
        if (h && !JSON_NODE_HOLDS_NULL(h) &&
            !nm_json_get_int(o, "handshake", true, 0, G_MAXINT64, &handshake, error))
                return false;
        if (nm_key_from_base64(key, &ret->public_key) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid peer public key in a check-in: not 32 bytes of base64");
                return false;
        }
        ret->handshake = handshake;
        ret->since = (guint64)since;
        ret->rx_bytes = (guint64)rx;
        ret->tx_bytes = (guint64)tx;
        return true;
}

char *nm_report_to_json(const NmReport *r)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_string(b, "type", r->type == NM_REPORT_CHECKIN ? "checkin" : "snapshot-request");
        if (r->type == NM_REPORT_CHECKIN) {
                nm_json_add_string(b, "version", r->version);
                json_builder_set_member_name(b, "listen_ports");
                json_builder_begin_object(b);
                GHashTableIter it;
                gpointer k, v;
                g_hash_table_iter_init(&it, r->listen_ports);
                while (g_hash_table_iter_next(&it, &k, &v)) {
                        json_builder_set_member_name(b, k);
                        json_builder_add_int_value(b, GPOINTER_TO_UINT(v));
                }
                json_builder_end_object(b);
                nm_json_add_strv(b, "endpoints", (const char *const *)r->endpoints);
                if (r->public_ip)
                        nm_json_add_string(b, "public_ip", r->public_ip);
                if (r->peers) {
                        GHashTableIter pit;
                        gpointer net, list;
                        json_builder_set_member_name(b, "peers");
                        json_builder_begin_object(b);
                        g_hash_table_iter_init(&pit, r->peers);
                        while (g_hash_table_iter_next(&pit, &net, &list)) {
                                GArray *a = list;
                                json_builder_set_member_name(b, net);
                                json_builder_begin_array(b);
                                for (guint i = 0; i < a->len; i++)
                                        peer_status_to_json(&g_array_index(a, NmPeerStatus, i), b);
                                json_builder_end_array(b);
                        }
                        json_builder_end_object(b);
                }
        }
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

NmReport *nm_report_parse(const char *data, gssize len, GError **error)
{
        static const char *const members[] = {"type",  "version", "listen_ports", "endpoints", "public_ip",
                                              "peers", NULL};
        g_autoptr(JsonObject) o = nm_json_parse_object(data, len, error);
        const char *type = "checkin", *version = NULL, *public_ip = NULL;
        JsonObject *ports = NULL, *peers = NULL;
        g_auto(GStrv) endpoints = NULL;

        if (!o || !nm_json_check_members(o, "report", members, error) ||
            !nm_json_get_string(o, "type", false, &type, error) ||
            !nm_json_get_string(o, "version", false, &version, error) ||
            !nm_json_get_object(o, "listen_ports", false, &ports, error) ||
            !nm_json_get_strv(o, "endpoints", false, NM_MAX_ENDPOINTS, &endpoints, error) ||
            !nm_json_get_string(o, "public_ip", false, &public_ip, error) ||
            !nm_json_get_object(o, "peers", false, &peers, error))
                return NULL;
        g_autoptr(NmReport) r = NULL;
        if (streq0(type, "checkin"))
                r = nm_report_new(NM_REPORT_CHECKIN);
        else if (streq0(type, "snapshot-request"))
                r = nm_report_new(NM_REPORT_SNAPSHOT_REQUEST);
        else {
                g_autofree char *v = g_utf8_make_valid(type, MIN(strlen(type), 64));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Unknown report type \"%s\" (accepted: checkin, snapshot-request)", v);
                return NULL;
        }
        if (version && !nm_label_valid("version", version, 64, error))
                return NULL;
        r->version = g_strdup(version);
        if (ports) {
                JsonObjectIter it;
                const char *net;
                JsonNode *v;
                if (json_object_get_size(ports) > 1024) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Too many listen ports");
                        return NULL;
                }
                json_object_iter_init(&it, ports);
                while (json_object_iter_next(&it, &net, &v)) {
                        if (!nm_network_name_valid(net, error))
                                return NULL;
                        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_INT64 ||
                            json_node_get_int(v) < 1 || json_node_get_int(v) > 65535) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Invalid listen port for network \"%s\": expected 1-65535", net);
                                return NULL;
                        }
                        g_hash_table_insert(r->listen_ports, g_strdup(net),
                                            GUINT_TO_POINTER((guint)json_node_get_int(v)));
                }
        }
        for (char **e = endpoints; e && *e; e++) {
                int f;
                NmInAddr a;
                if (nm_addr_parse(*e, &f, &a) < 0) {
                        g_autofree char *v = g_utf8_make_valid(*e, MIN(strlen(*e), 64));
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid endpoint address \"%s\": expected an IPv4 or IPv6 address", v);
                        return NULL;
                }
        }
        if (public_ip) {
                int f;
                NmInAddr a;
                if (nm_addr_parse(public_ip, &f, &a) < 0) {
                        g_autofree char *v = g_utf8_make_valid(public_ip, MIN(strlen(public_ip), 64));
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid public address \"%s\": expected an IPv4 or IPv6 address", v);
                        return NULL;
                }
                r->public_ip = g_strdup(public_ip);
        }
        if (peers) {
                JsonObjectIter it;
                const char *net;
                JsonNode *v;
                guint total = 0;
                if (json_object_get_size(peers) > 1024) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Too many networks in \"peers\"");
                        return NULL;
                }
                r->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify)g_array_unref);
                json_object_iter_init(&it, peers);
                while (json_object_iter_next(&it, &net, &v)) {
                        if (!nm_network_name_valid(net, error))
                                return NULL;
                        if (!JSON_NODE_HOLDS_ARRAY(v)) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Invalid \"peers\" of network \"%s\": an array was expected",
                                            net);
                                return NULL;
                        }
                        JsonArray *a = json_node_get_array(v);
                        guint n = json_array_get_length(a);
                        total += n;
                        if (total > NM_MAX_PEERS_PER_MESSAGE) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Too many peers in a check-in");
                                return NULL;
                        }
                        GArray *list = g_array_sized_new(false, false, sizeof(NmPeerStatus), n);
                        g_hash_table_insert(r->peers, g_strdup(net), list);
                        for (guint i = 0; i < n; i++) {
                                NmPeerStatus st = {};
                                if (!peer_status_from_json(json_array_get_element(a, i), &st, error))
                                        return NULL;
                                g_array_append_val(list, st);
                        }
                }
        }
        r->endpoints = TAKE_PTR(endpoints);
        return TAKE_PTR(r);
}

char *nm_topic_host_msg(const char *server, const char *host_id)
{
        return g_strdup_printf("nm/%s/host/%s/msg", server, host_id);
}

char *nm_topic_host_report(const char *server, const char *host_id)
{
        return g_strdup_printf("nm/%s/host/%s/report", server, host_id);
}

char *nm_topic_reports(const char *server)
{
        return g_strdup_printf("nm/%s/host/+/report", server);
}

char *nm_topic_report_host_id(const char *server, const char *topic)
{
        g_autofree char *prefix = g_strdup_printf("nm/%s/host/", server);
        if (!g_str_has_prefix(topic, prefix) || !g_str_has_suffix(topic, "/report"))
                return NULL;
        const char *id = topic + strlen(prefix);
        size_t n = strlen(id) - strlen("/report");
        g_autofree char *r = g_strndup(id, n);
        if (!nm_uuid_valid(r))
                return NULL;
        return TAKE_PTR(r);
}
