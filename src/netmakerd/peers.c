/* Peer computation and delta fan-out. A change to host P touches only the members of P's
 * networks: the work and the messages are proportional to the hosts that see P. */
#include <errno.h>
#include <string.h>

#include "cidr.h"
#include "dns-names.h"
#include "ipam.h"
#include "macro.h"
#include "nameservers.h"
#include "nm-error.h"
#include "observer-keys.h"
#include "peers.h"
#include "topology.h"

static const PeersServerInfo *server_info;

void peers_set_server_info(const PeersServerInfo *info)
{
        server_info = info;
}

PeerView *peer_view_new(Network *network)
{
        PeerView *v = g_new0(PeerView, 1);
        v->network = network;
        v->members = g_ptr_array_new_with_free_func((GDestroyNotify)member_free);
        v->dns = g_ptr_array_new_with_free_func((GDestroyNotify)nm_dns_entry_free);
        v->nameservers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_nameserver_free);
        v->ext_clients = g_ptr_array_new_with_free_func((GDestroyNotify)ext_client_free);
        v->acl_rules = g_ptr_array_new_with_free_func((GDestroyNotify)acl_rule_free);
        v->failovers = g_ptr_array_new_with_free_func((GDestroyNotify)failover_free);
        return v;
}

void peer_view_free(PeerView *v)
{
        if (!v)
                return;
        network_free(v->network);
        g_ptr_array_unref(v->members);
        g_ptr_array_unref(v->dns);
        g_ptr_array_unref(v->nameservers);
        g_ptr_array_unref(v->ext_clients);
        g_ptr_array_unref(v->acl_rules);
        g_ptr_array_unref(v->failovers);
        topo_index_free(v->index);
        g_free(v);
}

const Member *peer_view_find_host(const PeerView *v, const char *host_id)
{
        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                if (streq0(m->host->id, host_id))
                        return m;
        }
        return NULL;
}

/* ---- outbox --------------------------------------------------------------------------------- */

static void out_msg_free(OutMsg *m)
{
        if (!m)
                return;
        g_free(m->host_id);
        nm_message_free(m->msg);
        g_free(m);
}

Outbox *outbox_new(void)
{
        Outbox *o = g_new0(Outbox, 1);
        o->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)out_msg_free);
        return o;
}

void outbox_free(Outbox *o)
{
        if (!o)
                return;
        g_ptr_array_unref(o->msgs);
        g_free(o);
}

void outbox_add(Outbox *o, const Host *to, NmMessage *msg)
{
        OutMsg *m = g_new0(OutMsg, 1);
        m->host_id = g_strdup(to->id);
        m->msg_key = to->msg_key;
        m->msg = msg;
        g_ptr_array_add(o->msgs, m);
}

guint outbox_count(const Outbox *o, const char *host_id, NmMessageType type)
{
        guint n = 0;
        for (guint i = 0; i < o->msgs->len; i++) {
                const OutMsg *m = o->msgs->pdata[i];
                if ((!host_id || streq0(m->host_id, host_id)) && m->msg->type == type)
                        n++;
        }
        return n;
}

int outbox_assign_serials(Outbox *o, Store *s, GError **error)
{
        for (guint i = o->n_stamped; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                guint64 serial;
                int r = store_host_bump_serial(s, m->host_id, &serial, error);
                if (r < 0)
                        return r;
                m->msg->serial = serial;
                if (m->msg->state)
                        m->msg->state->serial = serial;
                o->n_stamped = i + 1;
        }
        return 0;
}

/* ---- computation ---------------------------------------------------------------------------- */

static char *iface_address(const char *addr, const char *range)
{
        const char *slash = range ? strchr(range, '/') : NULL;
        if (!addr || !slash)
                return NULL;
        return g_strconcat(addr, slash, NULL);
}

NmNetworkState *peers_network_state(const PeerView *v, const Member *self, bool with_peers)
{
        NmNetworkState *s = nm_network_state_new();

        s->network = g_strdup(v->network->name);
        s->node_id = g_strdup(self->node->id);
        s->ipv4 = iface_address(self->node->ipv4, v->network->ipv4_range);
        s->ipv6 = iface_address(self->node->ipv6, v->network->ipv6_range);
        s->listen_port = self->node->listen_port;
        s->keepalive = v->network->keepalive;
        /* The host's own MTU, when the admin set one, is for its links in every network. */
        s->mtu = self->host->mtu ? self->host->mtu : v->network->mtu;
        s->dns_domain = g_strdup(v->network->dns_domain);
        s->connected = self->node->connected;
        s->host_name = g_strdup(self->host->name);
        for (guint i = 0; i < v->dns->len; i++) {
                const NmDnsEntry *e = v->dns->pdata[i];
                g_ptr_array_add(s->dns, nm_dns_entry_new(e->name, e->ipv4, e->ipv6));
        }
        /* External clients' names as well: only their gateway has them as peers. */
        for (guint i = 0; v->ext_clients && i < v->ext_clients->len; i++) {
                const ExtClient *c = v->ext_clients->pdata[i];
                if (c->ipv4 || c->ipv6)
                        g_ptr_array_add(s->dns, nm_dns_entry_new(c->name, c->ipv4, c->ipv6));
        }
        for (guint i = 0; i < v->nameservers->len; i++)
                g_ptr_array_add(s->nameservers, nm_nameserver_copy(v->nameservers->pdata[i]));
        s->roles.egress_ranges = g_strdupv(self->node->roles.egress_ranges);
        s->roles.egress_nat = self->node->roles.egress_ranges && self->node->roles.egress_nat;
        s->roles.internet_gateway = self->node->roles.internet_gateway;
        s->roles.ingress = self->node->roles.ingress;
        s->roles.relay = self->node->roles.relay;
        s->roles.relayed_by = g_strdup(self->node->roles.relayed_by);
        s->roles.internet_gateway_via = g_strdup(self->node->roles.internet_gateway_via);
        if (server_info && server_info->observer_endpoint && server_info->keys) {
                const WgResponder *r = observer_keys_get(server_info->keys, v->network->name);
                if (r) {
                        s->observer = g_new0(NmObserver, 1);
                        s->observer->public_key = r->public_key;
                        s->observer->endpoint = g_strdup(server_info->observer_endpoint);
                        s->observer->keepalive = server_info->observer_keepalive;
                        s->observer->stun = server_info->stun;
                }
        }
        /* Only where keepalives keep sessions alive: elsewhere an idle pair has none either. */
        if (server_info && v->network->keepalive > 0)
                s->failover_after = server_info->failover_after;
        s->roles.failover = self->node->roles.failover;
        if (with_peers)
                s->peers = topo_peers_of(v, self);
        return s;
}

NmState *peers_state(const Host *host, PeerView *const *views, guint n_views)
{
        NmState *s = nm_state_new();
        s->host_id = g_strdup(host->id);
        s->serial = host->serial;
        for (guint i = 0; i < n_views; i++) {
                const Member *self = peer_view_find_host(views[i], host->id);
                if (self)
                        g_ptr_array_add(s->networks, peers_network_state(views[i], self, true));
        }
        return s;
}

/* ---- fan-out -------------------------------------------------------------------------------- */

void peers_fanout_network_changed(const PeerView *v, Outbox *o)
{
        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                NmMessage *msg = nm_message_new(NM_MSG_NETWORK_CHANGED, 0);
                msg->net = peers_network_state(v, m, false);
                outbox_add(o, m->host, msg);
        }
}

/* ---- loading -------------------------------------------------------------------------------- */

/* External clients, the ACL and the nameservers of the view's network. */
static int load_topology(Store *s, PeerView *v, GError **error)
{
        g_autoptr(GPtrArray) clients = NULL, rules = NULL, failovers = NULL, nameservers = NULL;
        int r;

        r = nameservers_load(s, v->network->name, &nameservers, error);
        if (r < 0)
                return r;
        g_ptr_array_extend_and_steal(v->nameservers, TAKE_PTR(nameservers));
        r = store_ext_client_list(s, v->network->name, NULL, &clients, error);
        if (r >= 0)
                r = store_acl_default_get(s, v->network->name, &v->acl_deny, error);
        if (r >= 0)
                r = store_acl_rule_list(s, v->network->name, &rules, error);
        if (r >= 0)
                r = store_failover_list(s, v->network->name, &failovers, error);
        if (r < 0)
                return r;
        g_ptr_array_extend_and_steal(v->ext_clients, TAKE_PTR(clients));
        g_ptr_array_extend_and_steal(v->acl_rules, TAKE_PTR(rules));
        g_ptr_array_extend_and_steal(v->failovers, TAKE_PTR(failovers));
        topo_view_changed(v);
        return 0;
}

int peers_load_view(Store *s, const char *network, PeerView **ret, GError **error)
{
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) members = NULL;
        int r;

        r = store_network_get(s, network, &n, error);
        if (r < 0)
                return r;
        r = store_members(s, network, &members, error);
        if (r < 0)
                return r;
        PeerView *v = peer_view_new(TAKE_PTR(n));
        g_ptr_array_extend_and_steal(v->members, TAKE_PTR(members));
        g_ptr_array_unref(v->dns);
        r = dns_names_load_custom(s, network, &v->dns, error);
        if (r < 0) {
                v->dns = NULL;
                peer_view_free(v);
                return r;
        }
        r = load_topology(s, v, error);
        if (r < 0) {
                peer_view_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

int peers_load_host_views(Store *s, const char *host_id, GPtrArray **ret, GError **error)
{
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(GPtrArray) views = g_ptr_array_new_with_free_func((GDestroyNotify)peer_view_free);
        int r;

        r = store_node_list(s, NULL, host_id, &nodes, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < nodes->len; i++) {
                PeerView *v;
                r = peers_load_view(s, ((Node *)nodes->pdata[i])->network, &v, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(views, v);
        }
        *ret = TAKE_PTR(views);
        return 0;
}

int peers_load_all_views(Store *s, GHashTable **ret, GError **error)
{
        g_autoptr(GPtrArray) networks = NULL;
        g_autoptr(GPtrArray) members = NULL;
        g_autoptr(GHashTable) dns = NULL, nameservers = NULL;
        g_autoptr(GPtrArray) clients = NULL, rules = NULL, failovers = NULL;
        g_autoptr(GHashTable) deny = NULL;
        g_autoptr(GHashTable) views =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)peer_view_free);
        int r;

        r = store_network_list(s, &networks, error);
        if (r < 0)
                return r;
        r = store_members(s, NULL, &members, error);
        if (r < 0)
                return r;
        r = dns_names_load_all_custom(s, &dns, error);
        if (r >= 0)
                r = nameservers_load_all(s, &nameservers, error);
        if (r < 0)
                return r;
        while (networks->len > 0) {
                Network *n = g_ptr_array_steal_index(networks, networks->len - 1);
                PeerView *v = peer_view_new(n);
                GPtrArray *names = g_hash_table_lookup(dns, n->name);
                GPtrArray *ns = g_hash_table_lookup(nameservers, n->name);
                if (names)
                        g_ptr_array_extend_and_steal(v->dns, g_ptr_array_ref(names));
                if (ns)
                        g_ptr_array_extend_and_steal(v->nameservers, g_ptr_array_ref(ns));
                g_hash_table_insert(views, n->name, v);
        }
        /* Hand each member over to its view; the array keeps only pointers it no longer owns. */
        g_ptr_array_set_free_func(members, NULL);
        for (guint i = 0; i < members->len; i++) {
                Member *m = members->pdata[i];
                PeerView *v = g_hash_table_lookup(views, m->node->network);
                if (v)
                        g_ptr_array_add(v->members, m);
                else
                        member_free(m);
        }
        /* Likewise external clients and ACLs. */
        r = store_ext_client_list(s, NULL, NULL, &clients, error);
        if (r >= 0)
                r = store_acl_rule_list(s, NULL, &rules, error);
        if (r >= 0)
                r = store_acl_default_list(s, &deny, error);
        if (r >= 0)
                r = store_failover_list(s, NULL, &failovers, error);
        if (r < 0)
                return r;
        g_ptr_array_set_free_func(failovers, NULL);
        for (guint i = 0; i < failovers->len; i++) {
                Failover *f = failovers->pdata[i];
                PeerView *v = g_hash_table_lookup(views, f->network);
                if (v)
                        g_ptr_array_add(v->failovers, f);
                else
                        failover_free(f);
        }
        g_ptr_array_set_free_func(clients, NULL);
        for (guint i = 0; i < clients->len; i++) {
                ExtClient *c = clients->pdata[i];
                PeerView *v = g_hash_table_lookup(views, c->network);
                if (v)
                        g_ptr_array_add(v->ext_clients, c);
                else
                        ext_client_free(c);
        }
        g_ptr_array_set_free_func(rules, NULL);
        for (guint i = 0; i < rules->len; i++) {
                AclRule *rule = rules->pdata[i];
                PeerView *v = g_hash_table_lookup(views, rule->network);
                if (v)
                        g_ptr_array_add(v->acl_rules, rule);
                else
                        acl_rule_free(rule);
        }
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, views);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                PeerView *v = value;
                v->acl_deny = g_hash_table_contains(deny, v->network->name);
                topo_view_changed(v);
        }
        *ret = TAKE_PTR(views);
        return 0;
}

int peers_host_state(Store *s, const Host *h, NmState **ret, GError **error)
{
        g_autoptr(GPtrArray) views = NULL;
        int r = peers_load_host_views(s, h->id, &views, error);
        if (r < 0)
                return r;
        *ret = peers_state(h, (PeerView *const *)views->pdata, views->len);
        return 0;
}

/* ---- changes -------------------------------------------------------------------------------- */

int peers_node_join(Store *s, const Host *h, const char *network, bool tell_host, Outbox *o, Node **ret,
                    GError **error)
{
        g_autoptr(Node) existing = NULL;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(GError) e = NULL;
        int r;

        r = peers_load_view(s, network, &before, error);
        if (r < 0)
                return r;
        r = store_node_find(s, h->id, network, &existing, &e);
        if (r >= 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT, "Host \"%s\" is already in network \"%s\"",
                            h->name, network);
                return -EEXIST;
        }
        if (r != -ENOENT) {
                g_propagate_error(error, TAKE_PTR(e));
                return r;
        }

        g_autoptr(Node) node = g_new0(Node, 1);
        node->id = nm_uuid_new();
        node->host_id = g_strdup(h->id);
        node->host_name = g_strdup(h->name);
        node->network = g_strdup(network);
        node->connected = true;
        node->created_at = (gint64)g_get_real_time() / G_USEC_PER_SEC;
        node->tags = h->tags ? g_strdupv(h->tags) : g_new0(char *, 1); /* the enrollment key's */
        r = ipam_assign(s, before->network, node, error);
        if (r < 0)
                return r;
        r = store_node_insert(s, node, error);
        if (r < 0)
                return r;

        r = peers_load_view(s, network, &after, error);
        if (r < 0)
                return r;
        const Member *added = topo_find_node(after, node->id);
        g_assert(added);
        /* The others see the newcomer (where the ACL allows it), relayed nodes through their relay. */
        topo_dirty_peer(dirty, node->id);
        topo_diff(before, after, dirty, o);
        if (tell_host) {
                NmMessage *joined = nm_message_new(NM_MSG_NETWORK_JOINED, 0);
                joined->net = peers_network_state(after, added, true);
                outbox_add(o, added->host, joined);
        }
        if (ret)
                *ret = TAKE_PTR(node);
        return 0;
}

int peers_node_leave(Store *s, const Node *node, bool tell_host, Outbox *o, GError **error)
{
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        int r;

        r = peers_load_view(s, node->network, &before, error);
        if (r < 0)
                return r;
        const Member *m = topo_find_node(before, node->id);
        /* What pointed at it goes with it (relayed nodes, internet gateway users, ACL rules); its
         * external clients go with their gateway. */
        r = store_node_forget(s, node->id, error);
        if (r >= 0)
                r = store_node_delete(s, node->id, error);
        if (r < 0)
                return r;
        r = peers_load_view(s, node->network, &after, error);
        if (r < 0)
                return r;
        /* The nodes a relay relayed now peer with everyone directly. */
        if (m && m->node->roles.relay)
                topo_relays_changed(before, after, dirty);
        topo_dirty_peer(dirty, node->id);
        topo_diff(before, after, dirty, o);
        if (m && tell_host) {
                NmMessage *left = nm_message_new(NM_MSG_NETWORK_LEFT, 0);
                left->network = g_strdup(node->network);
                outbox_add(o, m->host, left);
        }
        return 0;
}

int peers_host_delete(Store *s, const Host *h, Outbox *o, GError **error)
{
        g_autoptr(GPtrArray) nodes = NULL;
        int r;

        r = store_node_list(s, NULL, h->id, &nodes, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < nodes->len; i++) {
                r = peers_node_leave(s, nodes->pdata[i], false, o, error);
                if (r < 0)
                        return r;
        }
        outbox_add(o, h, nm_message_new(NM_MSG_HOST_DELETED, 0));
        r = outbox_assign_serials(o, s, error);
        if (r < 0)
                return r;
        return store_host_delete(s, h->id, error);
}

/* Canonical text, duplicates dropped, order kept. */
static char **normalize_addresses(char **in)
{
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (char **i = in; i && *i; i++) {
                int family;
                NmInAddr a;
                if (nm_addr_parse(*i, &family, &a) < 0)
                        continue;
                char *c = nm_addr_to_string(family, &a);
                if (!g_hash_table_add(seen, c))
                        continue;
                g_strv_builder_add(b, c);
        }
        return g_strv_builder_end(b);
}

static bool strv_same(char **a, char **b)
{
        guint na = a ? g_strv_length(a) : 0, nb = b ? g_strv_length(b) : 0;
        if (na != nb)
                return false;
        for (guint i = 0; i < na; i++)
                if (!streq0(a[i], b[i]))
                        return false;
        return true;
}

int peers_host_checkin(Store *s, const char *host_id, const NmReport *report, gint64 now, Outbox *o,
                       GError **error)
{
        g_autoptr(Host) h = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(GPtrArray) befores = g_ptr_array_new_with_free_func((GDestroyNotify)peer_view_free);
        g_autoptr(GPtrArray) changed = g_ptr_array_new(); /* of Node, parallel to befores */
        g_autofree char *public_ip = NULL;
        int r;

        r = store_host_get(s, host_id, &h, error);
        if (r < 0)
                return r;
        if (report->version) {
                g_free(h->version);
                h->version = g_strdup(report->version);
        }
        /* The endpoint chosen per pair depends on both reported lists and public addresses. */
        bool reach_changed = false;
        if (report->endpoints) {
                g_auto(GStrv) eps = normalize_addresses(report->endpoints);
                if (!strv_same(eps, h->endpoints)) {
                        g_strfreev(h->endpoints);
                        h->endpoints = TAKE_PTR(eps);
                        reach_changed = true;
                }
        }
        if (report->public_ip) {
                char *in[] = {report->public_ip, NULL};
                g_auto(GStrv) norm = normalize_addresses(in);
                public_ip = g_strdup(norm[0]);
        }
        if (!streq0(public_ip, h->public_endpoint)) {
                g_free(h->public_endpoint);
                h->public_endpoint = g_strdup(public_ip);
                reach_changed = true;
        }

        r = store_node_list(s, NULL, host_id, &nodes, error);
        if (r < 0)
                return r;
        /* The views of the networks where something changes, before the change. */
        for (guint i = 0; i < nodes->len; i++) {
                Node *n = nodes->pdata[i];
                gpointer port;
                /* A port the admin set for the host is not the host's to change. */
                bool port_changed =
                        !h->static_listen_port &&
                        g_hash_table_lookup_extended(report->listen_ports, n->network, NULL, &port) &&
                        GPOINTER_TO_UINT(port) != n->listen_port;
                PeerView *v;
                if (!port_changed && !reach_changed)
                        continue;
                r = peers_load_view(s, n->network, &v, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(befores, v);
                g_ptr_array_add(changed, n);
                if (port_changed) {
                        r = store_node_set_listen_port(s, n->id, (guint16)GPOINTER_TO_UINT(port), error);
                        if (r < 0)
                                return r;
                }
        }
        h->last_checkin = now;
        r = store_host_update(s, h, error);
        if (r < 0)
                return r;

        for (guint i = 0; i < changed->len; i++) {
                Node *n = changed->pdata[i];
                g_autoptr(PeerView) after = NULL;
                g_autoptr(TopoDirty) dirty = topo_dirty_new();
                r = peers_load_view(s, n->network, &after, error);
                if (r < 0)
                        return r;
                /* Others' view of this node, and this node's view of the others (a shared NAT). */
                topo_dirty_peer(dirty, n->id);
                topo_dirty_viewer(dirty, n->id);
                topo_diff(befores->pdata[i], after, dirty, o);
        }
        return 0;
}

/* Loads the view before, writes with `change`, loads it after and queues the difference of the
 * entries in `dirty`. */
typedef int (*ChangeFunc)(Store *s, void *userdata, GError **error);

static int change_network(Store *s, const char *network, ChangeFunc change, void *userdata, TopoDirty *dirty,
                          Outbox *o, GError **error)
{
        g_autoptr(PeerView) before = NULL, after = NULL;
        int r;

        r = peers_load_view(s, network, &before, error);
        if (r >= 0 && change)
                r = change(s, userdata, error);
        if (r >= 0)
                r = peers_load_view(s, network, &after, error);
        if (r < 0)
                return r;
        topo_diff(before, after, dirty, o);
        return 0;
}

typedef struct Observed {
        const char *node_id;
        const char *endpoint;
        gint64 now;
} Observed;

static int write_observed(Store *s, void *userdata, GError **error)
{
        const Observed *x = userdata;
        return store_node_set_observed(s, x->node_id, x->endpoint, x->now, error);
}

int peers_node_observed(Store *s, const char *node_id, const char *endpoint, gint64 now, Outbox *o,
                        GError **error)
{
        g_autoptr(Node) node = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        Observed x = {.node_id = node_id, .endpoint = endpoint, .now = now};
        int r;

        r = store_node_get(s, node_id, &node, error);
        if (r < 0)
                return r;
        if (streq0(node->observed_endpoint, endpoint))
                return 0;
        /* Others' view of this node, and this node's view of the others (a shared NAT). */
        topo_dirty_peer(dirty, node_id);
        topo_dirty_viewer(dirty, node_id);
        return change_network(s, node->network, write_observed, &x, dirty, o, error);
}

typedef struct HttpAddress {
        const char *host_id;
        const char *address;
} HttpAddress;

static int write_http_address(Store *s, void *userdata, GError **error)
{
        const HttpAddress *x = userdata;
        return store_host_set_http_address(s, x->host_id, x->address, error);
}

int peers_host_http_address(Store *s, const char *host_id, const char *address, Outbox *o, GError **error)
{
        g_autoptr(Host) h = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        HttpAddress x = {.host_id = host_id, .address = address};
        int r;

        r = store_host_get(s, host_id, &h, error);
        if (r < 0)
                return r;
        if (streq0(h->http_address, address))
                return 0;
        r = store_node_list(s, NULL, host_id, &nodes, error);
        if (r < 0)
                return r;
        if (nodes->len == 0)
                return write_http_address(s, &x, error);
        for (guint i = 0; i < nodes->len; i++) {
                Node *n = nodes->pdata[i];
                g_autoptr(TopoDirty) dirty = topo_dirty_new();
                topo_dirty_peer(dirty, n->id);
                /* The host's row is written with the first network; the later ones only diff. */
                r = change_network(s, n->network, i == 0 ? write_http_address : NULL, &x, dirty, o, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

typedef struct FailoverChange {
        Failover f;
        bool remove;
} FailoverChange;

static int write_failover(Store *s, void *userdata, GError **error)
{
        const FailoverChange *x = userdata;
        return x->remove ? store_failover_delete(s, x->f.node_a, x->f.node_b, error)
                         : store_failover_set(s, &x->f, error);
}

int peers_failover_set(Store *s, const char *network, const char *a, const char *b, const char *relay,
                       gint64 now, Outbox *o, GError **error)
{
        g_autoptr(GPtrArray) existing = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        const char *old_relay = NULL;
        int r;

        r = store_failover_list(s, network, &existing, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < existing->len; i++) {
                const Failover *f = existing->pdata[i];
                if ((streq0(f->node_a, a) && streq0(f->node_b, b)) ||
                    (streq0(f->node_a, b) && streq0(f->node_b, a)))
                        old_relay = f->relay;
        }
        if (streq0(old_relay, relay))
                return 0;
        FailoverChange x = {.f = {.network = (char *)network,
                                  .node_a = (char *)a,
                                  .node_b = (char *)b,
                                  .relay = (char *)relay,
                                  .since = now},
                            .remove = relay == NULL};
        topo_dirty_failover(dirty, a, b, old_relay, relay);
        return change_network(s, network, write_failover, &x, dirty, o, error);
}

/* A name the host may not take in the network: a custom name or an external client's. */
static int check_name_free(const PeerView *v, const char *name, GError **error)
{
        for (guint i = 0; i < v->dns->len; i++) {
                const NmDnsEntry *e = v->dns->pdata[i];
                if (g_ascii_strcasecmp(e->name, name) == 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The name \"%s\" is a custom DNS name of network \"%s\" "
                                    "(%s.%s.%s): delete it first, or choose another name",
                                    name, v->network->name, name, v->network->name,
                                    strempty(v->network->dns_domain));
                        return -EEXIST;
                }
        }
        for (guint i = 0; i < v->ext_clients->len; i++) {
                const ExtClient *c = v->ext_clients->pdata[i];
                if (g_ascii_strcasecmp(c->name, name) == 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The name \"%s\" is an external client's in network \"%s\": choose "
                                    "another name",
                                    name, v->network->name);
                        return -EEXIST;
                }
        }
        return 0;
}

int peers_host_settings(Store *s, const Host *h, Outbox *o, GError **error)
{
        g_autoptr(Host) old = NULL;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(GPtrArray) befores = g_ptr_array_new_with_free_func((GDestroyNotify)peer_view_free);
        int r;

        r = store_host_get(s, h->id, &old, error);
        if (r >= 0)
                r = store_node_list(s, NULL, h->id, &nodes, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < nodes->len; i++) {
                PeerView *v;
                r = peers_load_view(s, ((Node *)nodes->pdata[i])->network, &v, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(befores, v);
                if (!streq0(old->name, h->name) && (r = check_name_free(v, h->name, error)) < 0)
                        return r;
        }
        r = store_host_update(s, h, error);
        if (r >= 0 && old->static_listen_port != h->static_listen_port)
                r = ipam_reassign_ports(s, h, NULL, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < nodes->len; i++) {
                const Node *n = nodes->pdata[i];
                g_autoptr(PeerView) after = NULL;
                g_autoptr(TopoDirty) dirty = topo_dirty_new();
                r = peers_load_view(s, n->network, &after, error);
                if (r < 0)
                        return r;
                /* How the others see it (name, endpoint, port, keepalive), how it sees them (the
                 * keepalive of its pairs), and its own entry (name, MTU, port). */
                topo_dirty_peer(dirty, n->id);
                topo_dirty_viewer(dirty, n->id);
                topo_dirty_settings(dirty, n->id);
                topo_diff(befores->pdata[i], after, dirty, o);
        }
        return 0;
}

int peers_node_set_connected(Store *s, const Node *node, bool connected, Outbox *o, GError **error)
{
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        int r;

        if (node->connected == connected)
                return 0;
        r = peers_load_view(s, node->network, &before, error);
        if (r >= 0)
                r = store_node_set_connected(s, node->id, connected, error);
        if (r >= 0)
                r = peers_load_view(s, node->network, &after, error);
        if (r < 0)
                return r;
        /* Everyone drops or takes back the node (through its relay too); its own state says so. */
        topo_dirty_peer(dirty, node->id);
        topo_diff(before, after, dirty, o);
        return 0;
}

int peers_host_snapshot(Store *s, const char *host_id, Outbox *o, GError **error)
{
        g_autoptr(Host) h = NULL;
        NmState *state = NULL;
        int r;

        r = store_host_get(s, host_id, &h, error);
        if (r < 0)
                return r;
        r = peers_host_state(s, h, &state, error);
        if (r < 0)
                return r;
        NmMessage *msg = nm_message_new(NM_MSG_SNAPSHOT, 0);
        msg->state = state;
        outbox_add(o, h, msg);
        return 0;
}

int peers_snapshot_all(Store *s, Outbox *o, GError **error)
{
        g_autoptr(GHashTable) views = NULL;
        g_autoptr(GPtrArray) hosts = NULL;
        g_autoptr(GHashTable) by_host =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
        GHashTableIter it;
        gpointer value;
        int r;

        r = peers_load_all_views(s, &views, error);
        if (r < 0)
                return r;
        r = store_host_list(s, &hosts, error);
        if (r < 0)
                return r;
        /* Which views each host appears in. */
        g_hash_table_iter_init(&it, views);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                PeerView *v = value;
                for (guint i = 0; i < v->members->len; i++) {
                        const Member *m = v->members->pdata[i];
                        GPtrArray *a = g_hash_table_lookup(by_host, m->host->id);
                        if (!a) {
                                a = g_ptr_array_new();
                                g_hash_table_insert(by_host, m->host->id, a);
                        }
                        g_ptr_array_add(a, v);
                }
        }
        for (guint i = 0; i < hosts->len; i++) {
                const Host *h = hosts->pdata[i];
                GPtrArray *a = g_hash_table_lookup(by_host, h->id);
                NmMessage *msg = nm_message_new(NM_MSG_SNAPSHOT, 0);
                msg->state = peers_state(h, a ? (PeerView *const *)a->pdata : NULL, a ? a->len : 0);
                outbox_add(o, h, msg);
        }
        return 0;
}
