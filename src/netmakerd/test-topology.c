/* Proves the topology computation on in-memory rows (docs/protocol.md §4): what each viewer sees of
 * relays, egress, internet and ingress gateways (a full-tunnel external client: 0.0.0.0/0 and ::/0 in
 * its configuration, `internet` on its gateway's entry of it), that a denied pair never appears, the
 * endpoint chosen per pair (§4.5: observed, STUN, HTTPS source, reported), a failed-over pair as probes with
 * the relay carrying their addresses; and that the targeted diffs (an ACL rule, the default, a node's tags)
 * send exactly the messages a diff of every entry of every viewer would, on random networks. */
#include <string.h>

#include "acl.h"
#include "endpoints.h"
#include "json-util.h"
#include "macro.h"
#include "peers.h"
#include "topology.h"

#include "topology-fixture.h"

static char *ips(const NmPeer *p)
{
        return p ? g_strjoinv(" ", p->allowed_ips) : g_strdup("(none)");
}

static void assert_ips(PeerView *v, const Member *viewer, const Member *peer, const char *want)
{
        g_autoptr(NmPeer) p = topo_peer_entry(v, viewer, peer);
        g_autofree char *got = ips(p);
        g_assert_cmpstr(got, ==, want);
}

static void test_gateways(void)
{
        g_autoptr(PeerView) v = make_view(3);
        Member *gw = member(v, 0), *a = member(v, 1), *b = member(v, 2);

        gw->node->roles.egress_ranges = g_strsplit("192.168.50.0/24,fd50::/64", ",", -1);
        gw->node->roles.internet_gateway = true;
        gw->node->roles.ingress = true;
        a->node->roles.internet_gateway_via = g_strdup(gw->node->id);
        ExtClient *c = g_new0(ExtClient, 1);
        c->id = nm_uuid_new();
        c->name = g_strdup("phone");
        c->network = g_strdup("office");
        c->gateway = g_strdup(gw->node->id);
        c->ipv4 = g_strdup("10.99.0.254");
        c->enabled = true;
        c->extra_allowed_ips = g_strsplit("192.168.77.0/24", ",", -1);
        memset(&c->public_key, 0x55, sizeof(c->public_key));
        g_ptr_array_add(v->ext_clients, c);
        topo_view_changed(v);

        /* a uses the internet gateway: only the IPv4 default, the network has no IPv6. */
        assert_ips(v, a, gw,
                   "10.99.0.1/32 192.168.50.0/24 fd50::/64 10.99.0.254/32 192.168.77.0/24 0.0.0.0/0");
        assert_ips(v, b, gw, "10.99.0.1/32 192.168.50.0/24 fd50::/64 10.99.0.254/32 192.168.77.0/24");
        /* The gateway has the client as an external peer; nobody else does. */
        g_autoptr(NmPeer) ext = topo_ext_client_entry(v, gw, c);
        g_assert_true(ext->external);
        g_assert_false(ext->internet);
        g_assert_null(ext->endpoint);
        g_autofree char *ext_ips = ips(ext);
        g_assert_cmpstr(ext_ips, ==, "10.99.0.254/32 192.168.77.0/24");
        g_assert_null(topo_ext_client_entry(v, a, c));
        g_autoptr(GPtrArray) gw_peers = topo_peers_of(v, gw);
        g_assert_cmpuint(gw_peers->len, ==, 3);
        /* A node the client may not reach does not route it: b drops what the gateway forwards
         * from it, a does not; the gateway itself keeps it as a peer. */
        c->denied_nodes = g_strsplit(b->node->id, ",", -1);
        assert_ips(v, b, gw, "10.99.0.1/32 192.168.50.0/24 fd50::/64");
        assert_ips(v, a, gw,
                   "10.99.0.1/32 192.168.50.0/24 fd50::/64 10.99.0.254/32 192.168.77.0/24 0.0.0.0/0");
        g_autoptr(NmPeer) still = topo_ext_client_entry(v, gw, c);
        g_assert_nonnull(still);
        g_clear_pointer(&c->denied_nodes, g_strfreev);
        /* Disabled: gone everywhere. */
        c->enabled = false;
        g_assert_null(topo_ext_client_entry(v, gw, c));
        assert_ips(v, b, gw, "10.99.0.1/32 192.168.50.0/24 fd50::/64");

        /* The client configuration routes the network and every egress range. */
        g_auto(GStrv) allowed = topo_ext_client_allowed_ips(v, c);
        g_autofree char *joined = g_strjoinv(" ", allowed);
        g_assert_cmpstr(joined, ==, "10.99.0.0/24 192.168.50.0/24 fd50::/64");
        g_auto(GStrv) none = topo_ext_client_allowed_ips(v, NULL);
        g_assert_true(g_strv_equal((const char *const *)none, (const char *const *)allowed));

        /* Full tunnel: everything through the gateway, both families even in an IPv4-only network
         * (IPv6 then goes nowhere rather than around the tunnel); the gateway learns that the
         * client may go out, and the others see the client as before. */
        c->enabled = true;
        c->internet_gateway = true;
        g_auto(GStrv) full = topo_ext_client_allowed_ips(v, c);
        g_autofree char *full_joined = g_strjoinv(" ", full);
        g_assert_cmpstr(full_joined, ==, "0.0.0.0/0 ::/0");
        g_autoptr(NmPeer) tunnel = topo_ext_client_entry(v, gw, c);
        g_assert_true(tunnel->external && tunnel->internet);
        g_autofree char *tunnel_ips = ips(tunnel);
        g_assert_cmpstr(tunnel_ips, ==, "10.99.0.254/32 192.168.77.0/24");
        assert_ips(v, b, gw, "10.99.0.1/32 192.168.50.0/24 fd50::/64 10.99.0.254/32 192.168.77.0/24");
        /* It travels to the gateway and back unchanged (the wire member "internet"). */
        g_autoptr(JsonBuilder) jb = json_builder_new();
        nm_peer_to_json(tunnel, jb);
        g_autoptr(JsonNode) node = json_builder_get_root(jb);
        g_autoptr(NmPeer) back = nm_peer_from_json(node, NULL);
        g_assert_nonnull(back);
        g_assert_true(back->internet && nm_peer_equal(back, tunnel));
        tunnel->internet = false;
        g_assert_false(nm_peer_equal(back, tunnel));
        c->internet_gateway = false;
        c->enabled = false;

        /* A gateway that lost its role is no internet gateway, whatever a user still points at. */
        gw->node->roles.internet_gateway = false;
        g_assert_null(topo_internet_gateway_of(v, a));
}

static void test_relays(void)
{
        g_autoptr(PeerView) v = make_view(5);
        Member *r = member(v, 0), *a = member(v, 1), *b = member(v, 2), *c = member(v, 3), *d = member(v, 4);

        r->node->roles.relay = true;
        a->node->roles.relayed_by = g_strdup(r->node->id);
        b->node->roles.relayed_by = g_strdup(r->node->id);
        c->node->roles.egress_ranges = g_strsplit("192.168.50.0/24", ",", -1);
        topo_view_changed(v);

        /* a's only peer: the relay, carrying everyone a may reach (b too, and c's egress range). */
        g_autoptr(GPtrArray) pa = topo_peers_of(v, a);
        g_assert_cmpuint(pa->len, ==, 1);
        assert_ips(v, a, r, "10.99.0.1/32 10.99.0.3/32 10.99.0.4/32 192.168.50.0/24 10.99.0.5/32");
        g_assert_null(topo_peer_entry(v, a, b));
        g_assert_null(topo_peer_entry(v, a, c));
        /* The others reach a and b through the relay. */
        assert_ips(v, c, r, "10.99.0.1/32 10.99.0.2/32 10.99.0.3/32");
        g_assert_null(topo_peer_entry(v, c, a));
        assert_ips(v, c, d, "10.99.0.5/32");
        /* The relay has everyone directly. */
        assert_ips(v, r, a, "10.99.0.2/32");
        g_autoptr(GPtrArray) pr = topo_peers_of(v, r);
        g_assert_cmpuint(pr->len, ==, 4);

        /* The ACL still counts through the relay. */
        g_autofree char *sa = node_sel(a), *sd = node_sel(d);
        add_rule(v, sa, sd, true);
        assert_ips(v, a, r, "10.99.0.1/32 10.99.0.3/32 10.99.0.4/32 192.168.50.0/24");
        assert_ips(v, d, r, "10.99.0.1/32 10.99.0.3/32");
        assert_ips(v, c, r, "10.99.0.1/32 10.99.0.2/32 10.99.0.3/32");

        /* A chain (which the API refuses) is never followed: a relay that is relayed relays nobody. */
        r->node->roles.relayed_by = g_strdup(d->node->id);
        d->node->roles.relay = true;
        topo_view_changed(v);
        g_assert_null(topo_relay_of(v, a));
        g_assert_true(topo_relay_of(v, r) == d);
}

static void test_acl_denied_pairs_never_peer(void)
{
        g_autoptr(PeerView) v = make_view(4);
        g_autofree char *s0 = node_sel(member(v, 0)), *s1 = node_sel(member(v, 1));
        set_tags(member(v, 2)->node, g_strsplit("web", ",", -1));
        add_rule(v, s0, s1, true);
        add_rule(v, "tag:web", "*", false);
        v->acl_deny = true;
        topo_view_changed(v);
        for (guint i = 0; i < 4; i++)
                for (guint j = 0; j < 4; j++) {
                        g_autoptr(NmPeer) p = topo_peer_entry(v, member(v, i), member(v, j));
                        bool want = i != j && (i == 2 || j == 2);
                        g_assert_cmpint(p != NULL, ==, want);
                }
}

static Member *endpoint_member(const char *endpoints, const char *public_ip, const char *observed,
                               const char *http_address)
{
        Member *m = g_new0(Member, 1);
        m->host = g_new0(Host, 1);
        m->node = g_new0(Node, 1);
        m->host->endpoints = g_strsplit(endpoints, ",", -1);
        m->host->public_endpoint = g_strdup(public_ip);
        m->host->http_address = g_strdup(http_address);
        m->node->observed_endpoint = g_strdup(observed);
        m->node->listen_port = 51821;
        return m;
}

static void test_endpoint_choice(void)
{
        g_autoptr(Member) a = endpoint_member("192.168.1.10", "203.0.113.1", NULL, NULL);
        g_autoptr(Member) b = endpoint_member("10.0.0.5,192.168.1.20", "203.0.113.1", NULL, NULL);
        g_autoptr(Member) c = endpoint_member("172.16.0.3", "198.51.100.7", NULL, NULL);
        g_autoptr(Member) d = endpoint_member("198.18.0.4", NULL, NULL, NULL);
        g_autoptr(Member) e = endpoint_member("fd00:1::5,fd00:2::5", "203.0.113.1", NULL, NULL);
        g_autoptr(Member) f = endpoint_member("fd00:2:0:0:1::9", "203.0.113.1", NULL, NULL);
        /* Observed by the server: behind the same NAT as a and b (203.0.113.1), with a mapped port;
         * and one the server saw elsewhere than STUN said (the observation wins). */
        g_autoptr(Member) o = endpoint_member("192.168.1.30", NULL, "203.0.113.1:20345", NULL);
        g_autoptr(Member) p = endpoint_member("192.168.7.7", "198.51.100.99", "198.51.100.8:31000", NULL);
        /* Only an HTTPS source address: better than a private address for those outside. */
        g_autoptr(Member) h = endpoint_member("192.168.9.9", NULL, NULL, "198.51.100.50");

        struct {
                Member *viewer, *peer;
                const char *want;
        } cases[] = {
                {a, b, "192.168.1.20:51821"}, /* same NAT: the address on a's subnet, not the first */
                {b, a, "192.168.1.10:51821"},
                {c, b, "203.0.113.1:51821"}, /* another NAT: the public address */
                {d, b, "203.0.113.1:51821"}, /* the viewer reported none: the peer's public one */
                {b, d, "198.18.0.4:51821"},  /* the peer reported none: its first address */
                {a, c, "198.51.100.7:51821"},
                {NULL, b, "203.0.113.1:51821"}, /* someone outside */
                {NULL, d, "198.18.0.4:51821"},
                {f, e, "[fd00:2::5]:51821"}, /* IPv6: the same /64 */
                {c, e, "203.0.113.1:51821"},
                {c, o, "203.0.113.1:20345"},  /* observed: address and mapped port */
                {a, o, "192.168.1.30:51821"}, /* observed behind a's NAT: the local address */
                {o, a, "192.168.1.10:51821"},
                {c, p, "198.51.100.8:31000"},  /* the observation beats STUN */
                {c, h, "198.51.100.50:51821"}, /* the HTTPS source beats a private address */
                {h, c, "198.51.100.7:51821"},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *got = endpoint_choose(cases[i].viewer, cases[i].peer);
                g_assert_cmpstr(got, ==, cases[i].want);
        }
        /* Same NAT, no shared subnet: the first address. */
        g_autoptr(Member) g = endpoint_member("10.1.1.1", "203.0.113.1", NULL, NULL);
        g_autofree char *ab = endpoint_choose(g, b);
        g_assert_cmpstr(ab, ==, "10.0.0.5:51821");
        g_autoptr(Member) none = endpoint_member("", NULL, NULL, NULL);
        g_strfreev(none->host->endpoints);
        none->host->endpoints = g_new0(char *, 1);
        g_assert_null(endpoint_choose(a, none));
        b->node->listen_port = 0;
        g_assert_null(endpoint_choose(a, b));
        /* A configuration file: never the observed (NAT-mapped, short-lived) port. */
        g_autofree char *conf_o = endpoint_for_config(o), *conf_p = endpoint_for_config(p);
        g_autofree char *conf_h = endpoint_for_config(h);
        g_assert_cmpstr(conf_o, ==, "192.168.1.30:51821");
        g_assert_cmpstr(conf_p, ==, "198.51.100.99:51821");
        g_assert_cmpstr(conf_h, ==, "198.51.100.50:51821");
}

static void test_failover(void)
{
        g_autoptr(PeerView) v = make_view(5);
        Member *f = member(v, 0), *a = member(v, 1), *b = member(v, 2), *c = member(v, 3), *x = member(v, 4);

        f->node->roles.failover = true;
        c->node->roles.egress_ranges = g_strsplit("192.168.50.0/24", ",", -1);
        add_failover(v, a, c, f);

        /* a and c see each other as probes: endpoint and keepalive, no allowed IPs... */
        g_autoptr(NmPeer) ac = topo_peer_entry(v, a, c);
        g_assert_nonnull(ac);
        g_assert_cmpuint(g_strv_length(ac->allowed_ips), ==, 0);
        g_assert_cmpstr(ac->endpoint, ==, "198.18.0.4:51821");
        g_assert_cmpuint(ac->keepalive, ==, 20);
        assert_ips(v, c, a, "");
        /* ... and reach each other, egress range included, through the relay. */
        assert_ips(v, a, f, "10.99.0.1/32 10.99.0.4/32 192.168.50.0/24");
        assert_ips(v, c, f, "10.99.0.1/32 10.99.0.2/32");
        /* Everyone else is untouched; the relay's own entries too. */
        assert_ips(v, b, f, "10.99.0.1/32");
        assert_ips(v, b, c, "10.99.0.4/32 192.168.50.0/24");
        assert_ips(v, f, a, "10.99.0.2/32");
        assert_ips(v, f, c, "10.99.0.4/32 192.168.50.0/24");
        g_assert_true(topo_failover_relay_of(v, c, a) == f);
        g_assert_null(topo_failover_relay_of(v, a, b));

        /* Without a keepalive in the network, probes still keep the path warm. */
        v->network->keepalive = 0;
        g_autoptr(NmPeer) probe = topo_peer_entry(v, a, c);
        g_assert_cmpuint(probe->keepalive, ==, TOPO_PROBE_KEEPALIVE);
        g_autoptr(NmPeer) plain = topo_peer_entry(v, a, b);
        g_assert_cmpuint(plain->keepalive, ==, 0);
        v->network->keepalive = 20;

        /* A relay that lost its role, or that the ACL keeps from one of them, relays nothing: the
         * pair is direct again, whatever is stored. */
        g_assert_true(topo_failover_relay_eligible(v, f, a, c));
        g_assert_false(topo_failover_relay_eligible(v, x, a, c));
        f->node->roles.failover = false;
        topo_view_changed(v);
        assert_ips(v, a, c, "10.99.0.4/32 192.168.50.0/24");
        assert_ips(v, a, f, "10.99.0.1/32");
        f->node->roles.failover = true;
        g_autofree char *sf = node_sel(f), *sc = node_sel(c);
        add_rule(v, sf, sc, true);
        g_assert_null(topo_failover_relay_of(v, a, c));
        assert_ips(v, a, c, "10.99.0.4/32 192.168.50.0/24");
        g_assert_false(topo_failover_relay_eligible(v, f, a, c));
}

/* ---- the targeted diffs against the full one ------------------------------------------------ */

static gint cmp_str(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every message of the outbox as sorted text lines, "host type content". */
static char *outbox_text(Outbox *o)
{
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                if (m->msg->type == NM_MSG_PEERS) {
                        GPtrArray *parts[] = {m->msg->add, m->msg->update};
                        for (guint k = 0; k < 2; k++)
                                for (guint j = 0; j < parts[k]->len; j++) {
                                        g_autoptr(JsonBuilder) b = json_builder_new();
                                        nm_peer_to_json(parts[k]->pdata[j], b);
                                        g_autofree char *js = nm_json_builder_to_string(b);
                                        g_ptr_array_add(lines, g_strdup_printf("%s %s %s", m->host_id,
                                                                               k ? "update" : "add", js));
                                }
                        for (guint j = 0; j < m->msg->remove->len; j++) {
                                char key[NM_KEY_B64_LEN + 1];
                                nm_key_to_base64(m->msg->remove->pdata[j], key);
                                g_ptr_array_add(lines, g_strdup_printf("%s remove %s", m->host_id, key));
                        }
                } else {
                        g_autofree char *js = nm_message_to_json(m->msg);
                        g_ptr_array_add(lines, g_strdup_printf("%s other %s", m->host_id, js));
                }
        }
        g_ptr_array_sort(lines, cmp_str);
        g_ptr_array_add(lines, NULL);
        return g_strjoinv("\n", (char **)lines->pdata);
}

static void random_topology(PeerView *v)
{
        guint n = v->members->len;
        static const char *const tags[] = {"a", "b", "c"};
        for (guint i = 0; i < n; i++) {
                Member *m = member(v, i);
                g_autoptr(GStrvBuilder) b = g_strv_builder_new();
                for (guint k = 0; k < 3; k++)
                        if (g_test_rand_int_range(0, 3) == 0)
                                g_strv_builder_add(b, tags[k]);
                set_tags(m->node, g_strv_builder_end(b));
        }
        /* One relay with a couple of relayed nodes, an egress and an internet gateway. */
        Member *r = member(v, 0);
        r->node->roles.relay = true;
        for (guint i = 1; i < n; i += 4) {
                g_free(member(v, i)->node->roles.relayed_by);
                member(v, i)->node->roles.relayed_by = g_strdup(r->node->id);
        }
        member(v, 2)->node->roles.egress_ranges = g_strsplit("192.168.50.0/24", ",", -1);
        member(v, 3)->node->roles.internet_gateway = true;
        for (guint i = 4; i < n; i += 3) {
                g_free(member(v, i)->node->roles.internet_gateway_via);
                member(v, i)->node->roles.internet_gateway_via = g_strdup(member(v, 3)->node->id);
        }
        /* A failover relay for two pairs (when they are not relayed: then they do not count). */
        member(v, n - 1)->node->roles.failover = true;
        add_failover(v, member(v, 2), member(v, 3), member(v, n - 1));
        if (n > 6)
                add_failover(v, member(v, 5), member(v, 6), member(v, n - 1));
        /* An ingress gateway (relayed itself) with two external clients, one denied some nodes. */
        Member *ingress = member(v, 1);
        ingress->node->roles.ingress = true;
        for (guint k = 0; k < 2; k++) {
                ExtClient *c = g_new0(ExtClient, 1);
                c->id = nm_uuid_new();
                c->name = g_strdup_printf("client%u", k);
                c->network = g_strdup(v->network->name);
                c->gateway = g_strdup(ingress->node->id);
                c->ipv4 = g_strdup_printf("10.99.0.%u", 250 + k);
                c->enabled = true;
                c->extra_allowed_ips = g_new0(char *, 1);
                g_autoptr(GStrvBuilder) denied = g_strv_builder_new();
                for (guint i = 0; k == 1 && i < n; i++)
                        if (i != 1 && g_test_rand_int_range(0, 3) == 0)
                                g_strv_builder_add(denied, member(v, i)->node->id);
                c->denied_nodes = g_strv_builder_end(denied);
                memset(&c->public_key, 0x40 + (int)k, sizeof(c->public_key));
                g_ptr_array_add(v->ext_clients, c);
        }
        v->acl_deny = g_test_rand_bit();
        for (guint i = 0; i < 6; i++) {
                g_autofree char *s = node_sel(member(v, (guint)g_test_rand_int_range(0, (gint32)n)));
                const char *sides[] = {"*", s, "tag:a", "tag:b", "tag:c"};
                add_rule(v, sides[g_test_rand_int_range(0, 5)], sides[g_test_rand_int_range(0, 5)],
                         g_test_rand_bit());
        }
        topo_view_changed(v);
}

static void check_same_as_full(PeerView *before, PeerView *after, TopoDirty *targeted)
{
        g_autoptr(Outbox) t = outbox_new(), f = outbox_new();
        g_autoptr(TopoDirty) all = topo_dirty_new();
        topo_dirty_all(all);
        topo_diff(before, after, targeted, t);
        topo_diff(before, after, all, f);
        g_autofree char *tt = outbox_text(t), *ft = outbox_text(f);
        g_assert_cmpstr(tt, ==, ft);
}

static void test_targeted_diffs(void)
{
        for (guint round = 0; round < 30; round++) {
                guint n = (guint)g_test_rand_int_range(4, 24);
                g_autoptr(PeerView) before = make_view(n);
                random_topology(before);

                /* A rule is added. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        g_autofree char *s =
                                node_sel(member(after, (guint)g_test_rand_int_range(0, (gint32)n)));
                        const char *sides[] = {"*", s, "tag:a", "tag:b"};
                        AclRule *rule = add_rule(after, sides[g_test_rand_int_range(0, 4)],
                                                 sides[g_test_rand_int_range(0, 4)], g_test_rand_bit());
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_acl_rule_changed(before, after, rule, d);
                        check_same_as_full(before, after, d);
                        /* ... and deleted again. */
                        g_autoptr(TopoDirty) back = topo_dirty_new();
                        topo_acl_rule_changed(after, before, rule, back);
                        check_same_as_full(after, before, back);
                }
                /* The default flips. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        after->acl_deny = !after->acl_deny;
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_acl_default_changed(before, after, d);
                        check_same_as_full(before, after, d);
                }
                /* A node's tags change. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *m = member(after, (guint)g_test_rand_int_range(0, (gint32)n));
                        set_tags(m->node, g_strsplit(g_test_rand_bit() ? "a,c" : "b", ",", -1));
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_acl_node_changed(before, after, m->node->id, d);
                        check_same_as_full(before, after, d);
                }
                /* A node's endpoint changes. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *m = member(after, (guint)g_test_rand_int_range(0, (gint32)n));
                        g_free(m->host->endpoints[0]);
                        m->host->endpoints[0] = g_strdup("198.18.9.9");
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_dirty_peer(d, m->node->id);
                        topo_dirty_viewer(d, m->node->id);
                        check_same_as_full(before, after, d);
                }
                /* Relays change: a node moves in or out of relay 0's set, another node becomes a
                 * relay for some, or relay 0 stops relaying. */
                for (guint variant = 0; variant < 3; variant++) {
                        g_autoptr(PeerView) after = copy_view(before);
                        if (variant == 0) {
                                Member *m = member(after, (guint)g_test_rand_int_range(1, (gint32)n));
                                bool relayed = m->node->roles.relayed_by != NULL;
                                g_free(m->node->roles.relayed_by);
                                m->node->roles.relayed_by =
                                        relayed ? NULL : g_strdup(member(after, 0)->node->id);
                        } else if (variant == 1) {
                                Member *r = member(after, n - 1);
                                r->node->roles.relay = true;
                                g_clear_pointer(&r->node->roles.relayed_by, g_free);
                                for (guint i = 2; i < n - 1; i += 3) {
                                        g_free(member(after, i)->node->roles.relayed_by);
                                        member(after, i)->node->roles.relayed_by = g_strdup(r->node->id);
                                }
                        } else {
                                member(after, 0)->node->roles.relay = false;
                                for (guint i = 1; i < n; i++)
                                        if (streq0(member(after, i)->node->roles.relayed_by,
                                                   member(after, 0)->node->id))
                                                g_clear_pointer(&member(after, i)->node->roles.relayed_by,
                                                                g_free);
                        }
                        topo_view_changed(after);
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_relays_changed(before, after, d);
                        check_same_as_full(before, after, d);
                }
                /* An external client's denied nodes change (PUT /ext-clients/{id}). */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        ExtClient *c = after->ext_clients->pdata[g_test_rand_int_range(0, 2)];
                        g_strfreev(c->denied_nodes);
                        g_autoptr(GStrvBuilder) denied = g_strv_builder_new();
                        for (guint i = 2; i < n; i++)
                                if (g_test_rand_bit())
                                        g_strv_builder_add(denied, member(after, i)->node->id);
                        c->denied_nodes = g_strv_builder_end(denied);
                        topo_view_changed(after);
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_dirty_peer(d, c->id);
                        topo_dirty_peer(d, c->gateway);
                        check_same_as_full(before, after, d);
                }
                /* The observer sees a node elsewhere (another NAT mapping). */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *m = member(after, (guint)g_test_rand_int_range(0, (gint32)n));
                        g_free(m->node->observed_endpoint);
                        m->node->observed_endpoint = g_strdup("203.0.113.9:23456");
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_dirty_peer(d, m->node->id);
                        topo_dirty_viewer(d, m->node->id);
                        check_same_as_full(before, after, d);
                }
                /* A pair fails over, moves to another relay, or connects directly again. */
                for (guint variant = 0; variant < 3; variant++) {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *a = member(after, (guint)g_test_rand_int_range(0, (gint32)n - 1));
                        Member *b = member(after, (guint)g_test_rand_int_range(0, (gint32)n - 1));
                        Member *r = member(after, n - 1), *old = NULL;
                        if (a == b)
                                continue;
                        if (variant == 1) {
                                /* Another relay takes over pair (2, 3). */
                                a = member(after, 2);
                                b = member(after, 3);
                                old = r;
                                r = member(after, 0);
                                r->node->roles.failover = true;
                        }
                        for (guint i = 0; i < after->failovers->len; i++) {
                                Failover *f = after->failovers->pdata[i];
                                if ((streq0(f->node_a, a->node->id) && streq0(f->node_b, b->node->id)) ||
                                    (streq0(f->node_a, b->node->id) && streq0(f->node_b, a->node->id)))
                                        g_ptr_array_remove_index(after->failovers, i--);
                        }
                        if (variant != 2)
                                add_failover(after, a, b, r);
                        topo_view_changed(after);
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_dirty_failover(d, a->node->id, b->node->id, old ? old->node->id : NULL,
                                            r->node->id);
                        check_same_as_full(before, after, d);
                }
                /* A node joins (it is no viewer of the diff: it gets its whole state). */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *m = add_member(after, "newcomer", "198.18.7.7");
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        topo_dirty_peer(d, m->node->id);
                        check_same_as_full(before, after, d);
                }
        }
}

/* A node's entry names its node and whether it offers an internet gateway (what a host needs to
 * choose one), and turning the role on reaches every other host as an update of that entry. */
static void test_internet_gateway_flag(void)
{
        g_autoptr(PeerView) before = make_view(4);
        Member *gw = member(before, 0), *a = member(before, 1);
        g_autoptr(NmPeer) plain = topo_peer_entry(before, a, gw);
        g_assert_cmpstr(plain->node_id, ==, gw->node->id);
        g_assert_false(plain->internet_gateway);

        g_autoptr(PeerView) after = copy_view(before);
        member(after, 0)->node->roles.internet_gateway = true;
        topo_view_changed(after);
        g_autoptr(NmPeer) offered = topo_peer_entry(after, member(after, 1), member(after, 0));
        g_assert_true(offered->internet_gateway);
        /* Nobody uses it yet: the allowed IPs are the same, only the flag differs. */
        g_autofree char *was = ips(plain), *now = ips(offered);
        g_assert_cmpstr(was, ==, now);
        g_assert_false(nm_peer_equal(plain, offered));
        /* Over the wire and back. */
        g_autoptr(JsonBuilder) jb = json_builder_new();
        nm_peer_to_json(offered, jb);
        g_autoptr(JsonNode) node = json_builder_get_root(jb);
        g_autoptr(NmPeer) back = nm_peer_from_json(node, NULL);
        g_assert_nonnull(back);
        g_assert_true(nm_peer_equal(back, offered));

        /* What the server marks for a role change (http-topology.c: the node as every viewer sees
         * it): one peers update for each of the three others. */
        g_autoptr(TopoDirty) d = topo_dirty_new();
        g_autoptr(Outbox) o = outbox_new();
        topo_dirty_peer(d, gw->node->id);
        topo_diff(before, after, d, o);
        for (guint i = 1; i < 4; i++)
                g_assert_cmpuint(outbox_count(o, member(after, i)->host->id, NM_MSG_PEERS), ==, 1);
        g_autofree char *t = outbox_text(o);
        g_auto(GStrv) lines = g_strsplit(t, "\n", -1);
        guint flagged = 0;
        for (char **l = lines; *l; l++)
                if (strstr(*l, " update ") && strstr(*l, "\"internet_gateway\":true"))
                        flagged++;
        g_assert_cmpuint(flagged, ==, 3);
}

/* One rule between two small tags of a big network looks at only the pairs it can match and sends
 * messages only to the nodes of those pairs. */
static void test_rule_cost(void)
{
        const guint N = 400;
        g_autoptr(PeerView) before = make_view(N);
        set_tags(member(before, 10)->node, g_strsplit("x", ",", -1));
        set_tags(member(before, 20)->node, g_strsplit("y", ",", -1));
        set_tags(member(before, 21)->node, g_strsplit("y", ",", -1));
        topo_view_changed(before);
        g_autoptr(PeerView) after = copy_view(before);
        AclRule *rule = add_rule(after, "tag:x", "tag:y", true);
        g_autoptr(TopoDirty) d = topo_dirty_new();
        g_autoptr(Outbox) o = outbox_new();
        topo_acl_rule_changed(before, after, rule, d);
        g_assert_cmpuint(topo_dirty_n_verdicts(d), ==, 2);
        topo_diff(before, after, d, o);
        g_assert_cmpuint(o->msgs->len, ==, 3);
        g_assert_cmpuint(outbox_count(o, member(after, 10)->host->id, NM_MSG_PEERS), ==, 1);
        g_assert_cmpuint(outbox_count(o, member(after, 20)->host->id, NM_MSG_PEERS), ==, 1);
        g_assert_cmpuint(outbox_count(o, member(after, 21)->host->id, NM_MSG_PEERS), ==, 1);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/topology/gateways", test_gateways);
        g_test_add_func("/topology/relays", test_relays);
        g_test_add_func("/topology/acl-denied-pairs", test_acl_denied_pairs_never_peer);
        g_test_add_func("/topology/endpoint-choice", test_endpoint_choice);
        g_test_add_func("/topology/failover", test_failover);
        g_test_add_func("/topology/targeted-diffs", test_targeted_diffs);
        g_test_add_func("/topology/rule-cost", test_rule_cost);
        g_test_add_func("/topology/internet-gateway-flag", test_internet_gateway_flag);
        return g_test_run();
}
