/* Proves that each network's DNS zone follows the server's messages: a snapshot gives the peers'
 * names, this host's own name and the custom names under "<network>.<dns_domain>"; peer deltas add
 * and remove names; network-changed adds and removes custom names and moves the zone with the
 * domain; a node's name wins over a custom name of the same name; networks answer only their own
 * names; a disconnected network is "off"; and the zone survives a reload from disk. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "daemon-config.h"
#include "macro.h"
#include "manager.h"
#include "network-dns.h"
#include "network.h"
#include "state.h"
#include "test-agent-fixture.h"

typedef struct Fixture {
        char *dir;
        Config *config;
        Manager *m;
        char *host_id;
        guint64 serial;
} Fixture;

static char *peer_json(const char *name, const char *key, const char *ip4, const char *ip6, bool external)
{
        g_autofree char *id = nm_uuid_new();
        return g_strdup_printf(
                "{\"host_id\":\"%s\",\"name\":\"%s\",\"public_key\":\"%s\",\"endpoint\":null,"
                "\"allowed_ips\":[\"%s/32\"],\"keepalive\":20,\"ipv4\":\"%s\",\"ipv6\":%s%s%s%s}",
                id, name, key, ip4, ip4, ip6 ? "\"" : "", ip6 ? ip6 : "null", ip6 ? "\"" : "",
                external ? ",\"external\":true" : "");
}

/* A network state entry; `peers` NULL leaves them out (network-changed). */
static char *network_json(const char *net, const char *addr4, const char *addr6, const char *domain,
                          const char *dns, const char *peers)
{
        return g_strdup_printf(
                "{\"network\":\"%s\",\"node_id\":\"6f1b2c3d-0000-4000-8000-000000000001\",\"ipv4\":\"%s\","
                "\"ipv6\":%s%s%s,\"listen_port\":51821,\"keepalive\":20,\"mtu\":1420,\"dns_domain\":\"%s\","
                "\"connected\":true,\"host_name\":\"self\",\"dns\":[%s]%s%s%s}",
                net, addr4, addr6 ? "\"" : "", addr6 ? addr6 : "null", addr6 ? "\"" : "", domain,
                dns ? dns : "", peers ? ",\"peers\":[" : "", peers ? peers : "", peers ? "]" : "");
}

static MessageResult handle(Fixture *f, const char *json)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(NmMessage) msg = nm_message_parse(json, -1, &e);
        g_assert_no_error(e);
        return manager_handle_message(f->m, msg);
}

static void send_snapshot(Fixture *f, const char *networks)
{
        f->serial++;
        g_autofree char *msg = g_strdup_printf("{\"type\":\"snapshot\",\"serial\":%" G_GUINT64_FORMAT
                                               ",\"state\":{\"host_id\":\"%s\",\"serial\":%" G_GUINT64_FORMAT
                                               ",\"networks\":[%s]}}",
                                               f->serial, f->host_id, f->serial, networks);
        g_assert_cmpint(handle(f, msg), ==, MESSAGE_APPLIED);
}

static void send_msg(Fixture *f, const char *type, const char *body)
{
        f->serial++;
        g_autofree char *msg = g_strdup_printf("{\"type\":\"%s\",\"serial\":%" G_GUINT64_FORMAT ",%s}", type,
                                               f->serial, body);
        g_assert_cmpint(handle(f, msg), ==, MESSAGE_APPLIED);
}

/* Asks the network's zone for `name` and returns the rcode; the addresses found go to *ret. */
static int query(Fixture *f, const char *network, const char *name, uint16_t qtype, char **ret)
{
        Network *n = manager_get_network(f->m, network);
        g_assert_nonnull(n);
        const DnsZone *z = network_dns_zone(n);
        g_assert_nonnull(z);
        uint8_t q[300] = {0x12, 0x34, 0x01, 0, 0, 1}, a[DNS_EDNS_UDP_SIZE];
        size_t len = 12;
        g_auto(GStrv) labels = g_strsplit(name, ".", -1);
        for (char **l = labels; *l; l++) {
                q[len++] = (uint8_t)strlen(*l);
                memcpy(q + len, *l, strlen(*l));
                len += strlen(*l);
        }
        q[len++] = 0;
        q[len++] = 0;
        q[len++] = (uint8_t)qtype;
        q[len++] = 0;
        q[len++] = 1;
        ssize_t r = dns_answer(z, q, len, true, a, sizeof(a));
        g_assert_cmpint(r, >=, 12);
        g_autoptr(GString) out = g_string_new(NULL);
        size_t off = len;
        for (unsigned i = 0; i < (unsigned)(a[6] << 8 | a[7]); i++) {
                char text[INET6_ADDRSTRLEN];
                uint16_t rdlen = (uint16_t)(a[off + 10] << 8 | a[off + 11]);
                inet_ntop(rdlen == 4 ? AF_INET : AF_INET6, a + off + 12, text, sizeof(text));
                g_string_append_printf(out, "%s%s", out->len ? " " : "", text);
                off += 12 + rdlen;
        }
        if (ret)
                *ret = g_string_free(TAKE_PTR(out), false);
        return a[3] & 0x0f;
}

static void assert_a(Fixture *f, const char *network, const char *name, const char *want)
{
        g_autofree char *got = NULL;
        g_assert_cmpint(query(f, network, name, DNS_TYPE_A, &got), ==, DNS_RCODE_NOERROR);
        g_assert_cmpstr(got, ==, want);
}

static void assert_rcode(Fixture *f, const char *network, const char *name, int rcode)
{
        g_assert_cmpint(query(f, network, name, DNS_TYPE_A, NULL), ==, rcode);
}

static void setup(Fixture *f, gconstpointer data)
{
        agent_fixture_setup("test-network-dns-XXXXXX", &f->dir, &f->config, &f->m, &f->host_id);
}

static void teardown(Fixture *f, gconstpointer data)
{
        agent_fixture_teardown(f->dir, f->config, f->m, f->host_id);
}

static void test_snapshot_and_deltas(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = fixture_key_b64(NULL), *kc = fixture_key_b64(NULL),
                        *kd = fixture_key_b64(NULL);
        g_autofree char *pb = peer_json("beta", kb, "10.99.0.2", "fd00:99::2", false);
        g_autofree char *pc = peer_json("phone", kc, "10.99.0.254", NULL, true);
        g_autofree char *peers = g_strdup_printf("%s,%s", pb, pc);
        g_autofree char *net = network_json("office", "10.99.0.1/24", "fd00:99::1/64", "nm.internal",
                                            "{\"name\":\"printer\",\"ipv4\":\"192.168.50.7\"}", peers);
        send_snapshot(f, net);

        Network *n = manager_get_network(f->m, "office");
        g_assert_cmpstr(network_dns_zone_name(n), ==, "office.nm.internal");
        /* No responder in state-only mode: nothing is registered. */
        g_assert_cmpstr(network_dns_state(n), ==, "off");
        assert_a(f, "office", "beta.office.nm.internal", "10.99.0.2");
        assert_a(f, "office", "self.office.nm.internal", "10.99.0.1");
        assert_a(f, "office", "phone.office.nm.internal", "10.99.0.254"); /* an external client */
        assert_a(f, "office", "printer.office.nm.internal", "192.168.50.7");
        g_autofree char *v6 = NULL;
        g_assert_cmpint(query(f, "office", "SELF.office.nm.internal", DNS_TYPE_AAAA, &v6), ==, 0);
        g_assert_cmpstr(v6, ==, "fd00:99::1");
        assert_rcode(f, "office", "nobody.office.nm.internal", DNS_RCODE_NXDOMAIN);
        assert_rcode(f, "office", "office.nm.internal", DNS_RCODE_NOERROR);
        assert_rcode(f, "office", "example.com", DNS_RCODE_REFUSED);

        /* A peer joins, another leaves. */
        g_autofree char *pd = peer_json("delta", kd, "10.99.0.4", NULL, false);
        g_autofree char *add = g_strdup_printf("\"network\":\"office\",\"add\":[%s]", pd);
        send_msg(f, "peers", add);
        assert_a(f, "office", "delta.office.nm.internal", "10.99.0.4");
        g_autofree char *rm = g_strdup_printf("\"network\":\"office\",\"remove\":[\"%s\"]", kb);
        send_msg(f, "peers", rm);
        assert_rcode(f, "office", "beta.office.nm.internal", DNS_RCODE_NXDOMAIN);
        assert_a(f, "office", "delta.office.nm.internal", "10.99.0.4");

        /* network-changed: a custom name goes, another comes, the peers stay. */
        g_autofree char *changed = network_json("office", "10.99.0.1/24", "fd00:99::1/64", "nm.internal",
                                                "{\"name\":\"nas.lab\",\"ipv6\":\"fd00:50::9\"}", NULL);
        g_autofree char *body = g_strdup_printf("\"network\":%s", changed);
        send_msg(f, "network-changed", body);
        assert_rcode(f, "office", "printer.office.nm.internal", DNS_RCODE_NXDOMAIN);
        assert_rcode(f, "office", "lab.office.nm.internal", DNS_RCODE_NOERROR);
        g_autofree char *nas = NULL;
        g_assert_cmpint(query(f, "office", "nas.lab.office.nm.internal", DNS_TYPE_AAAA, &nas), ==, 0);
        g_assert_cmpstr(nas, ==, "fd00:50::9");
        assert_a(f, "office", "delta.office.nm.internal", "10.99.0.4");

        /* The domain moves: the old zone is refused, the new one answers. */
        g_autofree char *moved = network_json("office", "10.99.0.1/24", NULL, "mesh.example", NULL, NULL);
        g_autofree char *body2 = g_strdup_printf("\"network\":%s", moved);
        send_msg(f, "network-changed", body2);
        g_assert_cmpstr(network_dns_zone_name(n), ==, "office.mesh.example");
        assert_rcode(f, "office", "delta.office.nm.internal", DNS_RCODE_REFUSED);
        assert_a(f, "office", "delta.office.mesh.example", "10.99.0.4");

        /* The saved state brings the same zone back after a restart. */
        manager_free(f->m);
        g_assert_cmpint(manager_new(f->config, &f->m), ==, 0);
        g_assert_cmpint(manager_load_state(f->m), ==, 0);
        n = manager_get_network(f->m, "office");
        g_assert_nonnull(n);
        network_dns_update(n);
        assert_a(f, "office", "delta.office.mesh.example", "10.99.0.4");
        assert_a(f, "office", "self.office.mesh.example", "10.99.0.1");
}

static void test_precedence_and_isolation(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = fixture_key_b64(NULL), *kc = fixture_key_b64(NULL);
        g_autofree char *pb = peer_json("printer", kb, "10.99.0.2", NULL, false);
        g_autofree char *pc = peer_json("gamma", kc, "10.98.0.3", NULL, false);
        /* A custom "printer" that a node named "printer" took later: the node's address wins. */
        g_autofree char *office = network_json("office", "10.99.0.1/24", NULL, "nm.internal",
                                               "{\"name\":\"printer\",\"ipv4\":\"192.168.50.7\"}", pb);
        g_autofree char *lab = network_json("lab", "10.98.0.1/24", NULL, "nm.internal", NULL, pc);
        g_autofree char *both = g_strdup_printf("%s,%s", office, lab);
        send_snapshot(f, both);

        assert_a(f, "office", "printer.office.nm.internal", "10.99.0.2");
        /* Each network's responder answers only its own names. */
        assert_a(f, "lab", "gamma.lab.nm.internal", "10.98.0.3");
        assert_rcode(f, "office", "gamma.lab.nm.internal", DNS_RCODE_REFUSED);
        assert_rcode(f, "lab", "printer.office.nm.internal", DNS_RCODE_REFUSED);

        /* Disconnected: no responder, no registration. */
        sd_bus_error err = SD_BUS_ERROR_NULL;
        g_assert_cmpint(manager_set_connected(f->m, "lab", false, &err), ==, 0);
        g_assert_cmpstr(network_dns_state(manager_get_network(f->m, "lab")), ==, "off");

        /* network-left: the network and its zone are gone. */
        send_msg(f, "network-left", "\"network\":\"lab\"");
        g_assert_null(manager_get_network(f->m, "lab"));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add("/netclientd/dns/snapshot-and-deltas", Fixture, NULL, setup, test_snapshot_and_deltas,
                   teardown);
        g_test_add("/netclientd/dns/precedence-and-isolation", Fixture, NULL, setup,
                   test_precedence_and_isolation, teardown);
        return g_test_run();
}
