/* Proves peer computation (endpoint, allowed IPs, keepalive, who is a peer) on in-memory rows, and
 * that each kind of change (a node joins, leaves, its endpoint changes, the admin changes a host's
 * settings, a node disconnects) sends exactly one message to each host that sees the changed node
 * and nothing to anyone else: work proportional to the changed host's networks, not to the mesh.
 * (Topologies: test-topology.c.) */
#include <string.h>

#include "macro.h"
#include "peers.h"
#include "topology.h"

static int host_counter;

static Host *make_host(const char *name, const char *endpoint)
{
        Host *h = g_new0(Host, 1);
        h->id = nm_uuid_new();
        h->name = g_strdup(name);
        h->os = g_strdup("linux");
        h->version = g_strdup("0.1.0");
        memset(&h->wg_key, ++host_counter, sizeof(h->wg_key));
        memset(&h->msg_key, 0x80 | host_counter, sizeof(h->msg_key));
        h->endpoints = endpoint ? g_strsplit(endpoint, ",", -1) : g_new0(char *, 1);
        return h;
}

static Network *make_network(const char *name, const char *v4, const char *v6)
{
        Network *n = g_new0(Network, 1);
        n->name = g_strdup(name);
        n->ipv4_range = g_strdup(v4);
        n->ipv6_range = g_strdup(v6);
        n->listen_port = 51821;
        n->keepalive = 25;
        n->mtu = 1420;
        n->dns_domain = g_strdup("nm.internal");
        return n;
}

static Member *add_member(PeerView *v, const Host *h, const char *ipv4, const char *ipv6, guint16 port)
{
        Member *m = g_new0(Member, 1);
        m->host = host_copy(h);
        m->node = g_new0(Node, 1);
        m->node->id = nm_uuid_new();
        m->node->host_id = g_strdup(h->id);
        m->node->host_name = g_strdup(h->name);
        m->node->network = g_strdup(v->network->name);
        m->node->ipv4 = g_strdup(ipv4);
        m->node->ipv6 = g_strdup(ipv6);
        m->node->listen_port = port;
        m->node->connected = true;
        g_ptr_array_add(v->members, m);
        return m;
}

/* A network of n members with hosts h<i> at 198.18.0.<i>. */
static PeerView *make_view(const char *name, guint n, GPtrArray *hosts)
{
        PeerView *v = peer_view_new(make_network(name, "10.99.0.0/16", NULL));
        for (guint i = 0; i < n; i++) {
                g_autofree char *hn = g_strdup_printf("%s-h%u", name, i);
                g_autofree char *ep = g_strdup_printf("198.18.%u.%u", i / 250, i % 250 + 1);
                g_autofree char *ip = g_strdup_printf("10.99.%u.%u", i / 250, i % 250 + 1);
                g_autoptr(Host) h = make_host(hn, ep);
                add_member(v, h, ip, NULL, 51821);
                if (hosts)
                        g_ptr_array_add(hosts, host_copy(h));
        }
        return v;
}

/* A deep copy, so that a test can change one view and diff it against the other. */
static PeerView *copy_view(const PeerView *v)
{
        const Network *n = v->network;
        PeerView *c = peer_view_new(make_network(n->name, n->ipv4_range, n->ipv6_range));
        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                Member *cm = g_new0(Member, 1);
                cm->host = host_copy(m->host);
                cm->node = node_copy(m->node);
                g_ptr_array_add(c->members, cm);
        }
        return c;
}

static void test_make_peer(void)
{
        g_autoptr(PeerView) v = peer_view_new(make_network("office", "10.99.0.0/24", "fd00:99::/64"));
        g_autoptr(Host) a = make_host("alpha", "198.18.0.2,198.18.1.2");
        g_autoptr(Host) b = make_host("beta", "fd00:18::3");
        g_autoptr(Host) c = make_host("gamma", NULL);
        Member *ma = add_member(v, a, "10.99.0.1", "fd00:99::1", 51821);
        Member *mb = add_member(v, b, "10.99.0.2", "fd00:99::2", 51830);
        Member *mc = add_member(v, c, "10.99.0.3", NULL, 51821);

        g_autoptr(NmPeer) pa = topo_peer_entry(v, mb, ma);
        g_assert_cmpstr(pa->host_id, ==, a->id);
        g_assert_cmpstr(pa->name, ==, "alpha");
        g_assert_true(nm_key_equal(&pa->public_key, &a->wg_key));
        g_assert_cmpstr(pa->endpoint, ==, "198.18.0.2:51821"); /* the first endpoint */
        g_assert_cmpuint(g_strv_length(pa->allowed_ips), ==, 2);
        g_assert_cmpstr(pa->allowed_ips[0], ==, "10.99.0.1/32");
        g_assert_cmpstr(pa->allowed_ips[1], ==, "fd00:99::1/128");
        g_assert_cmpuint(pa->keepalive, ==, 25);
        g_assert_cmpstr(pa->ipv6, ==, "fd00:99::1");
        g_assert_false(pa->external);

        g_autoptr(NmPeer) pb = topo_peer_entry(v, ma, mb);
        g_assert_cmpstr(pb->endpoint, ==, "[fd00:18::3]:51830"); /* the node's own port */

        g_autoptr(NmPeer) pc = topo_peer_entry(v, ma, mc);
        g_assert_null(pc->endpoint);
        g_assert_cmpuint(g_strv_length(pc->allowed_ips), ==, 1);

        /* Nobody is its own peer. */
        g_assert_null(topo_peer_entry(v, ma, ma));

        /* A public address the viewer does not share wins over reported ones. */
        g_free(ma->host->public_endpoint);
        ma->host->public_endpoint = g_strdup("203.0.113.7");
        g_autoptr(NmPeer) pa2 = topo_peer_entry(v, mb, ma);
        g_assert_cmpstr(pa2->endpoint, ==, "203.0.113.7:51821");

        /* Beta's state: alpha and gamma, never itself; addresses carry the range's prefix. */
        g_autoptr(NmNetworkState) s = peers_network_state(v, mb, true);
        g_assert_cmpstr(s->ipv4, ==, "10.99.0.2/24");
        g_assert_cmpstr(s->ipv6, ==, "fd00:99::2/64");
        g_assert_cmpuint(s->listen_port, ==, 51830);
        g_assert_cmpuint(s->peers->len, ==, 2);
        for (guint i = 0; i < s->peers->len; i++)
                g_assert_cmpstr(((NmPeer *)s->peers->pdata[i])->host_id, !=, b->id);

        /* A disconnected node is nobody's peer. */
        mc->node->connected = false;
        g_autoptr(NmNetworkState) s2 = peers_network_state(v, mb, true);
        g_assert_cmpuint(s2->peers->len, ==, 1);
}

static void check_all_parse(Outbox *o)
{
        /* Everything the fan-out produces must pass the strict codec the agents use. */
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                g_autofree char *json = nm_message_to_json(m->msg);
                g_autoptr(GError) e = NULL;
                g_autoptr(NmMessage) back = nm_message_parse(json, -1, &e);
                g_assert_no_error(e);
                g_assert_cmpint(back->type, ==, m->msg->type);
        }
}

static void test_fanout_node(void)
{
        const guint N = 50;
        g_autoptr(PeerView) after = make_view("office", N, NULL);
        g_autoptr(PeerView) before = copy_view(after);
        g_ptr_array_remove_index(before->members, N - 1);
        const Member *added = after->members->pdata[N - 1];
        g_autoptr(Outbox) o = outbox_new();
        g_autoptr(TopoDirty) d = topo_dirty_new();

        /* A node joins: one "add" to each of the others, nothing else. */
        topo_dirty_peer(d, added->node->id);
        topo_diff(before, after, d, o);
        g_assert_cmpuint(o->msgs->len, ==, N - 1);
        g_assert_cmpuint(outbox_count(o, NULL, NM_MSG_PEERS), ==, N - 1);
        g_assert_cmpuint(outbox_count(o, added->host->id, NM_MSG_PEERS), ==, 0);
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                g_assert_cmpuint(m->msg->add->len, ==, 1);
                g_assert_cmpuint(m->msg->update->len + m->msg->remove->len, ==, 0);
                g_assert_cmpstr(((NmPeer *)m->msg->add->pdata[0])->host_id, ==, added->host->id);
                /* Sealed for the recipient's own message key. */
                const Member *to = peer_view_find_host(after, m->host_id);
                g_assert_nonnull(to);
                g_assert_true(nm_key_equal(&m->msg_key, &to->host->msg_key));
        }
        check_all_parse(o);

        /* Its own state has everyone else. */
        g_autoptr(NmNetworkState) st = peers_network_state(after, added, true);
        g_assert_cmpuint(st->peers->len, ==, N - 1);

        /* It leaves: one "remove" to each of the others. */
        g_autoptr(Outbox) r = outbox_new();
        topo_diff(after, before, d, r);
        g_assert_cmpuint(outbox_count(r, NULL, NM_MSG_PEERS), ==, N - 1);
        g_assert_cmpuint(r->msgs->len, ==, N - 1);
        for (guint i = 0; i < r->msgs->len; i++) {
                OutMsg *m = r->msgs->pdata[i];
                g_assert_cmpuint(m->msg->remove->len, ==, 1);
                g_assert_true(nm_key_equal(m->msg->remove->pdata[0], &added->host->wg_key));
        }
        check_all_parse(r);

        /* Nothing changed: nothing is sent, even when everything is looked at. */
        g_autoptr(Outbox) none = outbox_new();
        g_autoptr(TopoDirty) all = topo_dirty_new();
        topo_dirty_all(all);
        topo_diff(after, after, all, none);
        g_assert_cmpuint(none->msgs->len, ==, 0);

        g_autoptr(Outbox) c = outbox_new();
        peers_fanout_network_changed(after, c);
        g_assert_cmpuint(outbox_count(c, NULL, NM_MSG_NETWORK_CHANGED), ==, N);
        check_all_parse(c);
}

static void test_fanout_proportional(void)
{
        /* Host P is in "small" (5 members) and "medium" (10); "large" (200) does not contain P. */
        g_autoptr(PeerView) small = make_view("small", 4, NULL);
        g_autoptr(PeerView) medium = make_view("medium", 9, NULL);
        g_autoptr(PeerView) large = make_view("large", 200, NULL);
        g_autoptr(Host) p = make_host("p", "198.18.9.9");
        Member *ps = add_member(small, p, "10.99.9.9", NULL, 51821);
        Member *pm = add_member(medium, p, "10.99.9.9", NULL, 51822);
        g_autoptr(PeerView) small_before = copy_view(small);
        g_autoptr(PeerView) medium_before = copy_view(medium);

        /* P's endpoint changes: one update to each host that has P as a peer, 4 + 9 in all. */
        g_free(ps->host->endpoints[0]);
        ps->host->endpoints[0] = g_strdup("198.18.9.10");
        g_free(pm->host->endpoints[0]);
        pm->host->endpoints[0] = g_strdup("198.18.9.10");
        g_autoptr(Outbox) o = outbox_new();
        g_autoptr(TopoDirty) ds = topo_dirty_new(), dm = topo_dirty_new();
        topo_dirty_peer(ds, ps->node->id);
        topo_dirty_viewer(ds, ps->node->id);
        topo_dirty_peer(dm, pm->node->id);
        topo_dirty_viewer(dm, pm->node->id);
        topo_diff(small_before, small, ds, o);
        topo_diff(medium_before, medium, dm, o);
        g_assert_cmpuint(o->msgs->len, ==, 4 + 9);
        g_assert_cmpuint(outbox_count(o, p->id, NM_MSG_PEERS), ==, 0);
        for (guint i = 0; i < large->members->len; i++)
                g_assert_cmpuint(
                        outbox_count(o, ((Member *)large->members->pdata[i])->host->id, NM_MSG_PEERS), ==,
                        0);
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                g_assert_cmpuint(m->msg->update->len, ==, 1);
                g_assert_cmpuint(m->msg->add->len + m->msg->remove->len, ==, 0);
        }
        /* The small network's peers see P's new endpoint with the small network's port. */
        OutMsg *first = o->msgs->pdata[0];
        g_assert_cmpstr(((NmPeer *)first->msg->update->pdata[0])->endpoint, ==, "198.18.9.10:51821");
        check_all_parse(o);

        /* P's full state: 4 + 9 peers, nothing of the large network. */
        PeerView *views[] = {small, medium, large};
        g_autoptr(NmState) st = peers_state(p, views, 3);
        g_assert_cmpuint(st->networks->len, ==, 2);
        g_assert_cmpuint(((NmNetworkState *)st->networks->pdata[0])->peers->len, ==, 4);
        g_assert_cmpuint(((NmNetworkState *)st->networks->pdata[1])->peers->len, ==, 9);
}

/* The message of `type` to `host_id`, or NULL. */
static const NmMessage *message_to(const Outbox *o, const char *host_id, NmMessageType type)
{
        for (guint i = 0; i < o->msgs->len; i++) {
                const OutMsg *m = o->msgs->pdata[i];
                if (streq0(m->host_id, host_id) && m->msg->type == type)
                        return m->msg;
        }
        return NULL;
}

static void test_host_settings(void)
{
        const guint N = 6;
        g_autoptr(PeerView) v = make_view("office", N, NULL);
        Member *p = v->members->pdata[0], *q = v->members->pdata[1];

        /* Keepalive of a pair: the network's, a host's own for every pair it is in (both
         * directions), the shorter of two, off only when both say off. */
        g_assert_cmpuint(topo_pair_keepalive(v, p->host, q->host), ==, 25);
        p->host->has_keepalive = true;
        p->host->keepalive = 5;
        g_assert_cmpuint(topo_pair_keepalive(v, p->host, q->host), ==, 5);
        g_assert_cmpuint(topo_pair_keepalive(v, q->host, p->host), ==, 5);
        q->host->has_keepalive = true;
        q->host->keepalive = 0;
        g_assert_cmpuint(topo_pair_keepalive(v, p->host, q->host), ==, 5);
        p->host->keepalive = 0;
        g_assert_cmpuint(topo_pair_keepalive(v, p->host, q->host), ==, 0);
        q->host->keepalive = 3;
        p->host->keepalive = 9;
        g_assert_cmpuint(topo_pair_keepalive(v, q->host, p->host), ==, 3);
        p->host->has_keepalive = q->host->has_keepalive = false;

        /* The admin sets P's endpoint, keepalive and MTU. */
        g_autoptr(PeerView) before = copy_view(v);
        for (guint i = 0; i < v->members->len; i++) {
                Member *m = v->members->pdata[i];
                if (!streq0(m->host->id, p->host->id))
                        continue;
                m->host->static_endpoint = g_strdup("203.0.113.7");
                m->host->has_keepalive = true;
                m->host->keepalive = 7;
                m->host->mtu = 1380;
        }
        topo_view_changed(v);
        g_autoptr(Outbox) o = outbox_new();
        g_autoptr(TopoDirty) d = topo_dirty_new();
        topo_dirty_peer(d, p->node->id);
        topo_dirty_viewer(d, p->node->id);
        topo_dirty_settings(d, p->node->id);
        topo_diff(before, v, d, o);
        /* Each peer: one update of P (endpoint and keepalive), nothing else. */
        for (guint i = 1; i < N; i++) {
                const Member *m = v->members->pdata[i];
                const NmMessage *msg = message_to(o, m->host->id, NM_MSG_PEERS);
                g_assert_nonnull(msg);
                g_assert_cmpuint(msg->update->len, ==, 1);
                g_assert_cmpuint(msg->add->len + msg->remove->len, ==, 0);
                const NmPeer *e = msg->update->pdata[0];
                g_assert_cmpstr(e->host_id, ==, p->host->id);
                g_assert_cmpstr(e->endpoint, ==, "203.0.113.7:51821"); /* whatever P reported */
                g_assert_cmpuint(e->keepalive, ==, 7);
                g_assert_null(message_to(o, m->host->id, NM_MSG_NETWORK_CHANGED)); /* P's MTU is P's */
        }
        /* P: its MTU, and the keepalive of each of its pairs. */
        const NmMessage *changed = message_to(o, p->host->id, NM_MSG_NETWORK_CHANGED);
        g_assert_nonnull(changed);
        g_assert_cmpuint(changed->net->mtu, ==, 1380);
        const NmMessage *own = message_to(o, p->host->id, NM_MSG_PEERS);
        g_assert_nonnull(own);
        g_assert_cmpuint(own->update->len, ==, N - 1);
        g_assert_cmpuint(((NmPeer *)own->update->pdata[0])->keepalive, ==, 7);
        g_assert_cmpuint(o->msgs->len, ==, (N - 1) + 2);
        check_all_parse(o);

        /* A new port for P's node: its peers get the endpoint, P its own state with the port. */
        g_autoptr(PeerView) before_port = copy_view(v);
        for (guint i = 0; i < v->members->len; i++) {
                Member *m = v->members->pdata[i];
                if (streq0(m->host->id, p->host->id))
                        m->node->listen_port = 51900;
        }
        topo_view_changed(v);
        g_autoptr(Outbox) po = outbox_new();
        topo_diff(before_port, v, d, po);
        const NmMessage *pc = message_to(po, p->host->id, NM_MSG_NETWORK_CHANGED);
        g_assert_nonnull(pc);
        g_assert_cmpuint(pc->net->listen_port, ==, 51900);
        g_assert_null(message_to(po, p->host->id, NM_MSG_PEERS));
        g_assert_cmpuint(po->msgs->len, ==, (N - 1) + 1);

        /* P disconnects: the others drop it; P keeps its peers (for its Connect) and hears its state. */
        g_autoptr(PeerView) before_off = copy_view(v);
        for (guint i = 0; i < v->members->len; i++) {
                Member *m = v->members->pdata[i];
                if (streq0(m->host->id, p->host->id))
                        m->node->connected = false;
        }
        topo_view_changed(v);
        g_autoptr(Outbox) off = outbox_new();
        g_autoptr(TopoDirty) dp = topo_dirty_new();
        topo_dirty_peer(dp, p->node->id);
        topo_diff(before_off, v, dp, off);
        for (guint i = 1; i < N; i++) {
                const NmMessage *msg =
                        message_to(off, ((Member *)v->members->pdata[i])->host->id, NM_MSG_PEERS);
                g_assert_nonnull(msg);
                g_assert_cmpuint(msg->remove->len, ==, 1);
                g_assert_true(nm_key_equal(msg->remove->pdata[0], &p->host->wg_key));
        }
        const NmMessage *st = message_to(off, p->host->id, NM_MSG_NETWORK_CHANGED);
        g_assert_nonnull(st);
        g_assert_false(st->net->connected);
        g_assert_null(message_to(off, p->host->id, NM_MSG_PEERS));
        g_autoptr(NmNetworkState) own_state = peers_network_state(v, p, true);
        g_assert_cmpuint(own_state->peers->len, ==, N - 1);
        g_autoptr(NmNetworkState) q_state = peers_network_state(v, q, true);
        g_assert_cmpuint(q_state->peers->len, ==, N - 2);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/peers/make-peer", test_make_peer);
        g_test_add_func("/peers/fanout-node", test_fanout_node);
        g_test_add_func("/peers/fanout-proportional", test_fanout_proportional);
        g_test_add_func("/peers/host-settings", test_host_settings);
        return g_test_run();
}
