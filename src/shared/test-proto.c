/* Proves protocol messages and reports round-trip through JSON, and that malformed ones are
 * refused with messages naming the problem; that a copied network state is what a JSON round trip
 * gives and shares nothing with its original; also checks names and interface names, and that a host
 * name is accepted as it is or refused with a message naming the limit, never shortened. */
#include <string.h>

#include "json-util.h"
#include "names.h"
#include "nm-error.h"
#include "proto.h"

static NmPeer *make_peer(const char *name, const char *ip)
{
        NmKey priv;
        NmPeer *p = nm_peer_new();
        nm_key_generate_wg(&priv, &p->public_key);
        p->host_id = nm_uuid_new();
        p->name = g_strdup(name);
        p->endpoint = g_strdup("198.18.0.3:51821");
        p->ipv4 = g_strdup(ip);
        g_autofree char *cidr = g_strdup_printf("%s/32", ip);
        const char *v[] = {cidr, NULL};
        p->allowed_ips = g_strdupv((char **)v);
        p->keepalive = 20;
        return p;
}

static void test_message_roundtrip(void)
{
        g_autoptr(NmMessage) m = nm_message_new(NM_MSG_PEERS, 7);
        m->network = g_strdup("office");
        g_ptr_array_add(m->add, make_peer("laptop2", "10.99.0.2"));
        g_ptr_array_add(m->update, make_peer("laptop3", "10.99.0.3"));
        NmKey *k = g_new(NmKey, 1);
        NmKey priv;
        nm_key_generate_wg(&priv, k);
        g_ptr_array_add(m->remove, k);

        g_autofree char *json = nm_message_to_json(m);
        g_autoptr(GError) e = NULL;
        g_autoptr(NmMessage) back = nm_message_parse(json, -1, &e);
        g_assert_no_error(e);
        g_assert_cmpint(back->type, ==, NM_MSG_PEERS);
        g_assert_cmpuint(back->serial, ==, 7);
        g_assert_cmpstr(back->network, ==, "office");
        g_assert_cmpuint(back->add->len, ==, 1);
        g_assert_true(nm_peer_equal(back->add->pdata[0], m->add->pdata[0]));
        g_assert_true(nm_peer_equal(back->update->pdata[0], m->update->pdata[0]));
        g_assert_true(nm_key_equal(back->remove->pdata[0], k));
}

/* Network "office" with every member set: roles, a DNS entry, a peer and an external client. */
static NmNetworkState *make_network_state(void)
{
        NmNetworkState *n = nm_network_state_new();
        n->network = g_strdup("office");
        n->node_id = nm_uuid_new();
        n->ipv4 = g_strdup("10.99.0.1/24");
        n->ipv6 = g_strdup("fd00:99::1/64");
        n->listen_port = 51821;
        n->keepalive = 20;
        n->mtu = 1420;
        n->dns_domain = g_strdup("nm.internal");
        n->connected = true;
        n->host_name = g_strdup("laptop1");
        const char *ranges[] = {"192.168.50.0/24", NULL};
        n->roles.egress_ranges = g_strdupv((char **)ranges);
        n->roles.egress_nat = true;
        n->roles.relay = true;
        n->roles.internet_gateway_via = nm_uuid_new();
        n->roles.failover = true;
        n->observer = g_new0(NmObserver, 1);
        memset(&n->observer->public_key, 0x33, sizeof(NmKey));
        n->observer->endpoint = g_strdup("198.18.50.254:3478");
        n->observer->keepalive = 25;
        n->observer->stun = true;
        n->failover_after = 30;
        g_ptr_array_add(n->dns, nm_dns_entry_new("printer", "10.99.0.50", NULL));
        const char *servers[] = {"192.168.50.53", "fd00:50::53", NULL};
        g_ptr_array_add(n->nameservers, nm_nameserver_new("corp.example", (char **)servers));
        n->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        g_ptr_array_add(n->peers, make_peer("b", "10.99.0.2"));
        NmPeer *ext = make_peer("phone", "10.99.0.254");
        ext->external = true;
        g_ptr_array_add(n->peers, ext);
        return n;
}

static void test_snapshot_roundtrip(void)
{
        g_autoptr(NmMessage) m = nm_message_new(NM_MSG_SNAPSHOT, 42);
        m->state = nm_state_new();
        m->state->host_id = nm_uuid_new();
        m->state->serial = 42;
        NmNetworkState *n = make_network_state();
        g_ptr_array_add(m->state->networks, n);

        g_autofree char *json = nm_message_to_json(m);
        g_autoptr(GError) e = NULL;
        g_autoptr(NmMessage) back = nm_message_parse(json, -1, &e);
        g_assert_no_error(e);
        NmNetworkState *bn = back->state->networks->pdata[0];
        g_assert_cmpstr(bn->ipv6, ==, "fd00:99::1/64");
        g_assert_cmpuint(bn->peers->len, ==, 2);
        g_assert_true(bn->connected);
        g_assert_false(((NmPeer *)bn->peers->pdata[0])->external);
        g_assert_true(((NmPeer *)bn->peers->pdata[1])->external);
        g_assert_cmpstr(bn->host_name, ==, "laptop1");
        g_assert_true(nm_roles_equal(&bn->roles, &n->roles));
        g_assert_true(nm_roles_forwards(&bn->roles));
        g_assert_true(bn->roles.failover);
        g_assert_true(nm_observer_equal(bn->observer, n->observer));
        g_assert_cmpuint(bn->failover_after, ==, 30);
        g_assert_cmpuint(bn->dns->len, ==, 1);
        g_assert_cmpstr(((NmDnsEntry *)bn->dns->pdata[0])->name, ==, "printer");
        g_assert_null(((NmDnsEntry *)bn->dns->pdata[0])->ipv6);
        g_assert_cmpuint(bn->nameservers->len, ==, 1);
        const NmNameserver *ns = bn->nameservers->pdata[0];
        g_assert_cmpstr(ns->domain, ==, "corp.example");
        g_assert_cmpuint(g_strv_length(ns->servers), ==, 2);
        g_assert_cmpstr(ns->servers[1], ==, "fd00:50::53");

        /* Roles, DNS entries and nameservers are checked like everything else. */
        g_autoptr(GError) e2 = NULL;
        const char *bad_roles =
                "{\"type\":\"network-changed\",\"serial\":1,\"network\":{\"network\":\"a\","
                "\"node_id\":\"00000000-0000-4000-8000-000000000000\",\"ipv4\":\"10.0.0.1/24\","
                "\"listen_port\":1,\"keepalive\":0,\"mtu\":1420,"
                "\"roles\":{\"egress_ranges\":[\"192.168.1.1/24\"]}}}";
        g_assert_null(nm_message_parse(bad_roles, -1, &e2));
        g_assert_nonnull(strstr(e2->message, "192.168.1.1/24"));
        g_autoptr(GError) e3 = NULL;
        const char *bad_dns =
                "{\"type\":\"network-changed\",\"serial\":1,\"network\":{\"network\":\"a\","
                "\"node_id\":\"00000000-0000-4000-8000-000000000000\",\"ipv4\":\"10.0.0.1/24\","
                "\"listen_port\":1,\"keepalive\":0,\"mtu\":1420,\"dns\":[{\"name\":\"x\"}]}}";
        g_assert_null(nm_message_parse(bad_dns, -1, &e3));
        g_assert_nonnull(strstr(e3->message, "neither"));
        g_autoptr(GError) e4 = NULL;
        const char *bad_ns = "{\"type\":\"network-changed\",\"serial\":1,\"network\":{\"network\":\"a\","
                             "\"node_id\":\"00000000-0000-4000-8000-000000000000\",\"ipv4\":\"10.0.0.1/24\","
                             "\"listen_port\":1,\"keepalive\":0,\"mtu\":1420,"
                             "\"nameservers\":[{\"domain\":\"corp.example\",\"servers\":[\"dns.corp\"]}]}}";
        g_assert_null(nm_message_parse(bad_ns, -1, &e4));
        g_assert_nonnull(strstr(e4->message, "dns.corp"));
        g_autoptr(GError) e5 = NULL;
        const char *empty_ns =
                "{\"type\":\"network-changed\",\"serial\":1,\"network\":{\"network\":\"a\","
                "\"node_id\":\"00000000-0000-4000-8000-000000000000\",\"ipv4\":\"10.0.0.1/24\","
                "\"listen_port\":1,\"keepalive\":0,\"mtu\":1420,"
                "\"nameservers\":[{\"domain\":\"corp.example\",\"servers\":[]}]}}";
        g_assert_null(nm_message_parse(empty_ns, -1, &e5));
        g_assert_nonnull(strstr(e5->message, "no servers"));
        g_autoptr(GError) e6 = NULL;
        const char *bad_observer =
                "{\"type\":\"network-changed\",\"serial\":1,\"network\":{\"network\":\"a\","
                "\"node_id\":\"00000000-0000-4000-8000-000000000000\",\"ipv4\":\"10.0.0.1/24\","
                "\"listen_port\":1,\"keepalive\":0,\"mtu\":1420,\"observer\":{\"public_key\":"
                "\"MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=\",\"endpoint\":\"198.18.50.254\","
                "\"keepalive\":25}}}";
        g_assert_null(nm_message_parse(bad_observer, -1, &e6));
        g_assert_nonnull(strstr(e6->message, "198.18.50.254"));
}

static char *network_state_json(const NmNetworkState *s)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        nm_network_state_to_json(s, b);
        return nm_json_builder_to_string(b);
}

/* What netclientd did before nm_network_state_copy(): write the state as JSON and read it back. */
static NmNetworkState *network_state_roundtrip(const NmNetworkState *s)
{
        g_autoptr(GError) e = NULL;
        g_autofree char *json = network_state_json(s);
        g_autoptr(JsonNode) node = nm_json_parse(json, -1, &e);
        g_assert_no_error(e);
        NmNetworkState *back = nm_network_state_from_json(node, &e);
        g_assert_no_error(e);
        return back;
}

static void test_network_state_copy(void)
{
        g_autoptr(NmNetworkState) n = make_network_state();
        g_autoptr(NmNetworkState) c = nm_network_state_copy(n);
        g_autoptr(NmNetworkState) rt = network_state_roundtrip(n);
        g_autofree char *jn = network_state_json(n), *jc = network_state_json(c);
        g_autofree char *jrt = network_state_json(rt);

        /* Every member the codec knows, as the original and as the round trip have it. */
        g_assert_cmpstr(jc, ==, jn);
        g_assert_cmpstr(jc, ==, jrt);
        g_assert_true(nm_roles_equal(&c->roles, &n->roles));
        g_assert_cmpuint(c->peers->len, ==, 2);
        for (guint i = 0; i < c->peers->len; i++)
                g_assert_true(nm_peer_equal(c->peers->pdata[i], n->peers->pdata[i]));

        /* Deep: nothing is shared, so the copy outlives its original (ASan would see a shared byte). */
        g_assert_true(c->peers != n->peers && c->dns != n->dns);
        const NmPeer *cp = c->peers->pdata[0], *np = n->peers->pdata[0];
        g_assert_true(cp != np && cp->allowed_ips != np->allowed_ips && cp->name != np->name);
        g_assert_true(c->roles.egress_ranges != n->roles.egress_ranges);
        g_assert_true(c->dns->pdata[0] != n->dns->pdata[0]);
        g_assert_true(c->observer != n->observer && c->observer->endpoint != n->observer->endpoint);
        const NmNameserver *cns = c->nameservers->pdata[0], *nns = n->nameservers->pdata[0];
        g_assert_true(cns != nns && cns->servers != nns->servers);
        g_clear_pointer(&n, nm_network_state_free);
        g_autofree char *after = network_state_json(c);
        g_assert_cmpstr(after, ==, jn);

        /* A network-changed state carries no peers: the copy has none either (NULL, not an empty list,
         * which would mean "no peers left"); a state without a DNS list gets an empty one. */
        g_autoptr(NmNetworkState) bare = nm_network_state_new();
        bare->network = g_strdup("lab");
        bare->node_id = nm_uuid_new();
        bare->ipv6 = g_strdup("fd00:98::5/64");
        bare->listen_port = 51822;
        bare->mtu = 1420;
        g_clear_pointer(&bare->dns, g_ptr_array_unref);
        g_clear_pointer(&bare->nameservers, g_ptr_array_unref);
        g_autoptr(NmNetworkState) bc = nm_network_state_copy(bare);
        g_autoptr(NmNetworkState) brt = network_state_roundtrip(bare);
        g_assert_null(bc->peers);
        g_assert_null(brt->peers);
        g_assert_nonnull(bc->dns);
        g_assert_cmpuint(bc->dns->len, ==, brt->dns->len);
        g_assert_nonnull(bc->nameservers);
        g_assert_cmpuint(bc->nameservers->len, ==, 0);
        g_assert_false(bc->connected);
        g_autofree char *jbc = network_state_json(bc), *jbrt = network_state_json(brt);
        g_assert_cmpstr(jbc, ==, jbrt);
}

static void expect_bad(const char *json, const char *needle)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(NmMessage) m = nm_message_parse(json, -1, &e);
        g_assert_null(m);
        g_assert_nonnull(e);
        if (needle && !strstr(e->message, needle))
                g_error("message \"%s\" lacks \"%s\"", e->message, needle);
}

static void test_bad_messages(void)
{
        expect_bad("", "Empty");
        expect_bad("{", "Invalid JSON");
        expect_bad("[]", "object");
        expect_bad("{\"type\":\"peers\"}", "serial");
        expect_bad("{\"type\":\"boom\",\"serial\":1}", "Unknown message type");
        expect_bad("{\"type\":\"peers\",\"serial\":-1,\"network\":\"a\"}", "out of range");
        expect_bad("{\"type\":\"peers\",\"serial\":1,\"network\":\"BAD NAME\"}", "network name");
        expect_bad("{\"type\":\"peers\",\"serial\":1,\"network\":\"a\",\"remove\":[\"xx\"]}", "public key");
        expect_bad("{\"type\":\"peers\",\"serial\":1,\"network\":\"a\",\"add\":[{\"host_id\":\"x\"}]}",
                   NULL);
        expect_bad("{\"type\":\"peers\",\"serial\":1,\"network\":\"a\",\"evil\":1}", "Unknown member");
        expect_bad("{\"type\":\"host-deleted\",\"serial\":1,\"x\":[]}", "Unknown member");
        g_autofree char *brackets = g_strnfill(100, '[');
        g_autofree char *deep =
                g_strconcat("{\"type\":\"peers\",\"serial\":1,\"network\":\"a\",\"add\":", brackets, NULL);
        expect_bad(deep, "nested");
}

static void test_report(void)
{
        g_autoptr(NmReport) r = nm_report_new(NM_REPORT_CHECKIN);
        r->version = g_strdup("0.1.0");
        g_hash_table_insert(r->listen_ports, g_strdup("office"), GUINT_TO_POINTER(51822));
        const char *eps[] = {"198.18.0.2", "fd00::2", NULL};
        r->endpoints = g_strdupv((char **)eps);
        r->public_ip = g_strdup("203.0.113.7");
        g_autofree char *json = nm_report_to_json(r);
        g_autoptr(GError) e = NULL;
        g_autoptr(NmReport) back = nm_report_parse(json, -1, &e);
        g_assert_no_error(e);
        g_assert_cmpuint(GPOINTER_TO_UINT(g_hash_table_lookup(back->listen_ports, "office")), ==, 51822);
        g_assert_cmpstr(back->endpoints[1], ==, "fd00::2");
        g_assert_cmpstr(back->public_ip, ==, "203.0.113.7");
        g_assert_null(back->peers);
        g_autoptr(GError) e5 = NULL;
        g_assert_null(nm_report_parse("{\"public_ip\":\"999.1.1.1\"}", -1, &e5));

        /* Peer status: handshake ages (null for none yet), how long each peer has been set up,
         * traffic counters. */
        NmPeerStatus st = {.handshake = 12, .since = 300, .rx_bytes = 1234, .tx_bytes = 5678};
        memset(&st.public_key, 0x21, sizeof(st.public_key));
        nm_report_add_peer_status(r, "office", &st);
        st.handshake = -1;
        st.public_key.b[0] = 0x22;
        nm_report_add_peer_status(r, "office", &st);
        g_autofree char *json2 = nm_report_to_json(r);
        g_assert_nonnull(strstr(json2, "\"handshake\":null"));
        g_autoptr(NmReport) back2 = nm_report_parse(json2, -1, &e);
        g_assert_no_error(e);
        GArray *office = g_hash_table_lookup(back2->peers, "office");
        g_assert_cmpuint(office->len, ==, 2);
        g_assert_cmpint(g_array_index(office, NmPeerStatus, 0).handshake, ==, 12);
        g_assert_cmpuint(g_array_index(office, NmPeerStatus, 0).since, ==, 300);
        g_assert_cmpuint(g_array_index(office, NmPeerStatus, 0).rx_bytes, ==, 1234);
        g_assert_cmpuint(g_array_index(office, NmPeerStatus, 0).tx_bytes, ==, 5678);
        g_assert_cmpint(g_array_index(office, NmPeerStatus, 1).handshake, ==, -1);
        g_assert_cmpuint(g_array_index(office, NmPeerStatus, 1).public_key.b[0], ==, 0x22);
        static const char *const bad_peers[] = {
                "{\"peers\":{\"office\":{}}}",
                "{\"peers\":{\"Office!\":[]}}",
                "{\"peers\":{\"office\":[{\"public_key\":\"x\",\"since\":1}]}}",
                "{\"peers\":{\"office\":[{\"public_key\":\"ISEhISEhISEhISEhISEhISEhISEhISEhISEhISEhISE=\"}]}"
                "}",
                "{\"peers\":{\"office\":[{\"public_key\":\"ISEhISEhISEhISEhISEhISEhISEhISEhISEhISEhISE=\","
                "\"since\":1,\"handshake\":-5}]}}",
                "{\"peers\":{\"office\":[{\"public_key\":\"ISEhISEhISEhISEhISEhISEhISEhISEhISEhISEhISE=\","
                "\"since\":1,\"latency\":5}]}}",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad_peers); i++) {
                g_autoptr(GError) eb = NULL;
                g_autoptr(NmReport) bad = nm_report_parse(bad_peers[i], -1, &eb);
                if (bad)
                        g_error("accepted %s", bad_peers[i]);
                g_assert_nonnull(eb);
        }

        g_autoptr(GError) e2 = NULL;
        g_assert_null(nm_report_parse("{\"listen_ports\":{\"office\":70000}}", -1, &e2));
        g_assert_nonnull(strstr(e2->message, "listen port"));
        g_autoptr(GError) e3 = NULL;
        g_assert_null(nm_report_parse("{\"endpoints\":[\"1.2.3.4.5\"]}", -1, &e3));
        g_assert_nonnull(strstr(e3->message, "1.2.3.4.5"));
        g_autoptr(GError) e4 = NULL;
        g_assert_null(nm_report_parse("{\"type\":\"reboot\"}", -1, &e4));
}

static void test_names(void)
{
        char ifn[IFNAMSIZ];
        nm_network_ifname("office", ifn);
        g_assert_cmpstr(ifn, ==, "nm-office");
        nm_network_ifname("abcdefghijkl", ifn);
        g_assert_cmpstr(ifn, ==, "nm-abcdefghijkl");
        nm_network_ifname("abcdefghijklm", ifn);
        g_assert_cmpuint(strlen(ifn), ==, 15);
        g_assert_true(g_str_has_prefix(ifn, "nm-abcdefg-"));
        char ifn2[IFNAMSIZ];
        nm_network_ifname("abcdefghijklx", ifn2);
        g_assert_cmpstr(ifn, !=, ifn2);

        g_assert_true(nm_network_name_valid("office-1", NULL));
        g_assert_false(nm_network_name_valid("Office", NULL));
        g_assert_false(nm_network_name_valid("-a", NULL));
        g_assert_false(nm_network_name_valid("", NULL));
        g_autofree char *long_name = g_strnfill(33, 'a');
        g_assert_false(nm_network_name_valid(long_name, NULL));
        g_assert_true(nm_dns_domain_valid("nm.internal", NULL));
        g_assert_false(nm_dns_domain_valid("nm..internal", NULL));
        g_assert_false(nm_dns_domain_valid(".", NULL));
        g_autofree char *s = nm_host_name_sanitize("My_Laptop.example.com");
        g_assert_cmpstr(s, ==, "my-laptop");
        g_assert_null(nm_host_name_sanitize("___"));
}

static void test_host_names(void)
{
        g_autofree char *max = g_strnfill(NM_HOST_NAME_MAX, 'a');
        g_autofree char *over = g_strnfill(NM_HOST_NAME_MAX + 1, 'a');
        g_autofree char *huge = g_strnfill(4096, 'x');
        const char *good[] = {"a", "laptop1", "web-01", "0", max, NULL};
        const char *bad[] = {"",          "-a",  "a-",   "Laptop", "my_laptop", "a.b",
                             "caf\u00e9", "a b", "a\nb", over,     huge,        NULL};

        for (const char **g = good; *g; g++)
                g_assert_true(nm_host_name_valid(*g, NULL));
        g_assert_false(nm_host_name_valid(NULL, NULL));
        for (const char **b = bad; *b; b++) {
                g_autoptr(GError) e = NULL;
                g_assert_false(nm_host_name_valid(*b, &e));
                g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
                /* The limit and what is accepted, every time; hostile input quoted in part, tamed. */
                g_assert_nonnull(strstr(e->message, "1-63 characters of a-z, 0-9 and '-'"));
                g_assert_cmpuint(strlen(e->message), <, 256);
                g_assert_null(strchr(e->message, '\n'));
        }
        g_autoptr(GError) e = NULL;
        g_assert_false(nm_host_name_valid(huge, &e));
        g_assert_nonnull(strstr(e->message, "(4096 characters)"));
        g_autoptr(GError) e64 = NULL;
        g_assert_false(nm_host_name_valid(over, &e64));
        g_assert_nonnull(strstr(e64->message, "(64 characters)"));
        g_autoptr(GError) upper = NULL;
        g_assert_false(nm_host_name_valid("Laptop", &upper));
        g_assert_nonnull(strstr(upper->message, "\"Laptop\""));
        g_assert_null(strstr(upper->message, "characters)"));
        /* Characters, not bytes: 40 two-byte ones are not over the limit (refused for what they are). */
        g_autoptr(GString) accents = g_string_new(NULL);
        for (unsigned i = 0; i < 40; i++)
                g_string_append(accents, "\u00e9");
        g_autoptr(GError) ea = NULL;
        g_assert_false(nm_host_name_valid(accents->str, &ea));
        g_assert_null(strstr(ea->message, "characters)"));
        for (unsigned i = 0; i < 40; i++)
                g_string_append(accents, "\u00e9");
        g_autoptr(GError) eb = NULL;
        g_assert_false(nm_host_name_valid(accents->str, &eb));
        g_assert_nonnull(strstr(eb->message, "(80 characters)"));

        /* The default from the system's host name is made to fit: what it yields is valid. */
        g_autofree char *derived = nm_host_name_sanitize(over);
        g_assert_true(nm_host_name_valid(derived, NULL));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/proto/message-roundtrip", test_message_roundtrip);
        g_test_add_func("/proto/snapshot-roundtrip", test_snapshot_roundtrip);
        g_test_add_func("/proto/network-state-copy", test_network_state_copy);
        g_test_add_func("/proto/bad-messages", test_bad_messages);
        g_test_add_func("/proto/report", test_report);
        g_test_add_func("/proto/names", test_names);
        g_test_add_func("/proto/host-names", test_host_names);
        return g_test_run();
}
