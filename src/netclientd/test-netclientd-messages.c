/* Proves how netclientd applies server messages to its desired state: serial s+1 is applied, old or
 * repeated serials are ignored, a gap (or a change for a network it does not know) asks for a
 * snapshot, peer deltas touch only the peers they name, network-joined/left/changed add, remove and
 * update networks (settings changes keep the peers), snapshots replace everything, host-deleted
 * forgets the server, the result is saved and survives a reload, and payloads that are not sealed
 * by the pinned server key are refused without their content in the error. */
#include <errno.h>
#include <string.h>

#include "daemon-config.h"
#include "log.h"
#include "manager.h"
#include "mq-client.h"
#include "network.h"
#include "nm-error.h"
#include "peer.h"
#include "seal.h"
#include "state.h"
#include "test-agent-fixture.h"

typedef struct Fixture {
        char *dir;
        Config *config;
        Manager *m;
        char *host_id;
} Fixture;

static char *peer_json(const char *name, const char *key, const char *ip, const char *endpoint)
{
        g_autofree char *id = nm_uuid_new();
        return g_strdup_printf(
                "{\"host_id\":\"%s\",\"name\":\"%s\",\"public_key\":\"%s\",\"endpoint\":%s%s%s,"
                "\"allowed_ips\":[\"%s/32\"],\"keepalive\":20,\"ipv4\":\"%s\"}",
                id, name, key, endpoint ? "\"" : "", endpoint ? endpoint : "null", endpoint ? "\"" : "", ip,
                ip);
}

static char *network_json(const char *net, const char *addr, int port, int mtu, const char *peers)
{
        g_autofree char *node = nm_uuid_new();
        return g_strdup_printf(
                "{\"network\":\"%s\",\"node_id\":\"%s\",\"ipv4\":\"%s\",\"listen_port\":%d,"
                "\"keepalive\":20,\"mtu\":%d,\"dns_domain\":\"nm.internal\",\"connected\":true%s%s%s}",
                net, node, addr, port, mtu, peers ? ",\"peers\":[" : "", peers ? peers : "",
                peers ? "]" : "");
}

static NmMessage *parse(const char *json)
{
        g_autoptr(GError) e = NULL;
        NmMessage *m = nm_message_parse(json, -1, &e);
        g_assert_no_error(e);
        g_assert_nonnull(m);
        return m;
}

static MessageResult handle(Fixture *f, const char *json)
{
        g_autoptr(NmMessage) msg = parse(json);
        return manager_handle_message(f->m, msg);
}

static void setup(Fixture *f, gconstpointer data)
{
        agent_fixture_setup("test-netclientd-messages-XXXXXX", &f->dir, &f->config, &f->m, &f->host_id);
}

static void teardown(Fixture *f, gconstpointer data)
{
        agent_fixture_teardown(f->dir, f->config, f->m, f->host_id);
}

/* A snapshot at `serial` with network "office" and peers b (10.99.0.2) and c (10.99.0.3). */
static void start_with_office(Fixture *f, guint64 serial, char **ret_kb, char **ret_kc)
{
        g_autofree char *kb = fixture_key_b64(NULL), *kc = fixture_key_b64(NULL);
        g_autofree char *pb = peer_json("b", kb, "10.99.0.2", "198.18.0.2:51821");
        g_autofree char *pc = peer_json("c", kc, "10.99.0.3", NULL);
        g_autofree char *peers = g_strdup_printf("%s,%s", pb, pc);
        g_autofree char *net = network_json("office", "10.99.0.1/24", 51821, 1420, peers);
        g_autofree char *msg = g_strdup_printf("{\"type\":\"snapshot\",\"serial\":%" G_GUINT64_FORMAT
                                               ",\"state\":{\"host_id\":\"%s\",\"serial\":%" G_GUINT64_FORMAT
                                               ",\"networks\":[%s]}}",
                                               serial, f->host_id, serial, net);
        g_assert_cmpint(handle(f, msg), ==, MESSAGE_APPLIED);
        g_assert_cmpuint(f->m->serial, ==, serial);
        if (ret_kb)
                *ret_kb = g_strdup(kb);
        if (ret_kc)
                *ret_kc = g_strdup(kc);
}

static Network *office(Fixture *f)
{
        Network *n = manager_get_network(f->m, "office");
        g_assert_nonnull(n);
        return n;
}

static bool has_peer(Network *n, const char *b64)
{
        NmKey k;
        g_assert_cmpint(nm_key_from_base64(b64, &k), ==, 0);
        return network_find_peer(n, &k) != NULL;
}

static void test_serials(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = NULL, *kd = fixture_key_b64(NULL);
        start_with_office(f, 10, &kb, NULL);
        g_autofree char *pd = peer_json("d", kd, "10.99.0.4", "198.18.0.4:51821");
        g_autofree char *add = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":11,\"network\":\"office\",\"add\":[%s]}", pd);

        unsigned pulls = f->m->pulls;
        g_assert_cmpint(handle(f, add), ==, MESSAGE_APPLIED);
        g_assert_cmpuint(f->m->serial, ==, 11);
        g_assert_true(has_peer(office(f), kd));
        g_assert_cmpuint(office(f)->serial, ==, 11);
        /* The same message again, or an older one, changes nothing. */
        g_assert_cmpint(handle(f, add), ==, MESSAGE_IGNORED);
        g_autofree char *old = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":5,\"network\":\"office\",\"remove\":[\"%s\"]}", kb);
        g_assert_cmpint(handle(f, old), ==, MESSAGE_IGNORED);
        g_assert_true(has_peer(office(f), kb));
        g_assert_cmpuint(f->m->pulls, ==, pulls);

        /* A gap: nothing is applied, a snapshot is asked for. */
        g_autofree char *gap = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":13,\"network\":\"office\",\"remove\":[\"%s\"]}", kb);
        g_assert_cmpint(handle(f, gap), ==, MESSAGE_PULL);
        g_assert_cmpuint(f->m->pulls, ==, pulls + 1);
        g_assert_cmpuint(f->m->serial, ==, 11);
        g_assert_true(has_peer(office(f), kb));

        /* Peers for a network we do not have: also a snapshot. */
        g_autofree char *unknown =
                g_strdup_printf("{\"type\":\"peers\",\"serial\":12,\"network\":\"lab\",\"add\":[%s]}", pd);
        g_assert_cmpint(handle(f, unknown), ==, MESSAGE_PULL);
        g_assert_cmpuint(f->m->pulls, ==, pulls + 2);
        g_assert_cmpuint(f->m->serial, ==, 11);
}

static void test_peer_deltas(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = NULL, *kc = NULL;
        start_with_office(f, 1, &kb, &kc);
        Network *n = office(f);
        g_assert_cmpuint(g_hash_table_size(n->peers), ==, 2);
        NmKey key_c;
        nm_key_from_base64(kc, &key_c);
        Peer *pc = network_find_peer(n, &key_c);
        g_assert_cmpstr(peer_endpoint(pc), ==, "");

        /* update: c gets an endpoint; b is untouched (same object, same data). */
        NmKey key_b;
        nm_key_from_base64(kb, &key_b);
        Peer *pb = network_find_peer(n, &key_b);
        g_autofree char *uc = peer_json("c", kc, "10.99.0.3", "198.18.0.3:51821");
        g_autofree char *upd = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":2,\"network\":\"office\",\"update\":[%s]}", uc);
        g_assert_cmpint(handle(f, upd), ==, MESSAGE_APPLIED);
        g_assert_true(network_find_peer(n, &key_b) == pb);
        g_assert_true(network_find_peer(n, &key_c) == pc);
        g_assert_cmpstr(peer_endpoint(pc), ==, "198.18.0.3:51821");
        g_assert_cmpuint(n->desired->peers->len, ==, 2);

        /* remove b. */
        g_autofree char *rm = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":3,\"network\":\"office\",\"remove\":[\"%s\"]}", kb);
        g_assert_cmpint(handle(f, rm), ==, MESSAGE_APPLIED);
        g_assert_false(has_peer(n, kb));
        g_assert_true(has_peer(n, kc));
        g_assert_cmpuint(n->desired->peers->len, ==, 1);

        /* The pure delta: an "add" of a known key replaces it, keys touched are reported. */
        g_autoptr(NmMessage) again = parse(upd);
        g_autoptr(GArray) keys = NULL;
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(network_state_apply_delta(n->desired, again, &keys, &e), ==, 0);
        g_assert_cmpuint(keys->len, ==, 1);
        g_assert_cmpuint(n->desired->peers->len, ==, 1);

        /* Straight from the message to the network: the peers, Serial and the Peer objects; a
         * message for another network changes nothing. */
        g_autofree char *rm_c = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":4,\"network\":\"office\",\"remove\":[\"%s\"]}", kc);
        g_autofree char *rm_lab = g_strdup_printf(
                "{\"type\":\"peers\",\"serial\":4,\"network\":\"lab\",\"remove\":[\"%s\"]}", kc);
        g_autoptr(NmMessage) for_lab = parse(rm_lab);
        g_autoptr(NmMessage) for_office = parse(rm_c);
        g_assert_cmpint(network_apply_delta(n, for_lab, &e), ==, -EINVAL);
        g_assert_nonnull(e);
        g_clear_error(&e);
        g_assert_true(has_peer(n, kc));
        g_assert_cmpuint(n->serial, ==, 3);
        g_assert_cmpint(network_apply_delta(n, for_office, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_false(has_peer(n, kc));
        g_assert_cmpuint(n->desired->peers->len, ==, 0);
        g_assert_cmpuint(n->serial, ==, 4);
}

static void test_networks(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = NULL;
        start_with_office(f, 1, &kb, NULL);

        g_autofree char *lab = network_json("lab", "10.98.0.5/24", 51822, 1420, NULL);
        g_autofree char *joined =
                g_strdup_printf("{\"type\":\"network-joined\",\"serial\":2,\"network\":%s}", lab);
        g_assert_cmpint(handle(f, joined), ==, MESSAGE_APPLIED);
        Network *l = manager_get_network(f->m, "lab");
        g_assert_nonnull(l);
        g_assert_cmpstr(l->ifname, ==, "nm-lab");
        g_assert_cmpuint(l->desired->peers->len, ==, 0);

        /* Settings change: MTU and port follow, the peers stay. */
        g_autofree char *changed_net = network_json("office", "10.99.0.1/24", 51830, 1380, NULL);
        g_autofree char *changed =
                g_strdup_printf("{\"type\":\"network-changed\",\"serial\":3,\"network\":%s}", changed_net);
        g_assert_cmpint(handle(f, changed), ==, MESSAGE_APPLIED);
        g_assert_cmpuint(office(f)->desired->mtu, ==, 1380);
        g_assert_cmpuint(office(f)->desired->listen_port, ==, 51830);
        g_assert_cmpuint(office(f)->desired->peers->len, ==, 2);
        g_assert_true(has_peer(office(f), kb));

        g_assert_cmpint(handle(f, "{\"type\":\"network-left\",\"serial\":4,\"network\":\"lab\"}"), ==,
                        MESSAGE_APPLIED);
        g_assert_null(manager_get_network(f->m, "lab"));
        g_assert_cmpuint(f->m->serial, ==, 4);
        g_auto(GStrv) paths = manager_network_paths(f->m);
        g_assert_cmpuint(g_strv_length(paths), ==, 1);
        g_assert_cmpstr(paths[0], ==, "/org/netmaker/Client/network/office");
}

static void test_snapshots(Fixture *f, gconstpointer data)
{
        start_with_office(f, 20, NULL, NULL);

        /* An older snapshot is ignored; a newer one replaces everything. */
        g_autofree char *lab = network_json("lab", "10.98.0.5/24", 51822, 1420, "");
        g_autofree char *older =
                g_strdup_printf("{\"type\":\"snapshot\",\"serial\":19,\"state\":{\"host_id\":\"%s\","
                                "\"serial\":19,\"networks\":[%s]}}",
                                f->host_id, lab);
        g_assert_cmpint(handle(f, older), ==, MESSAGE_IGNORED);
        g_assert_nonnull(manager_get_network(f->m, "office"));
        g_autofree char *newer =
                g_strdup_printf("{\"type\":\"snapshot\",\"serial\":30,\"state\":{\"host_id\":\"%s\","
                                "\"serial\":30,\"networks\":[%s]}}",
                                f->host_id, lab);
        g_assert_cmpint(handle(f, newer), ==, MESSAGE_APPLIED);
        g_assert_null(manager_get_network(f->m, "office"));
        g_assert_nonnull(manager_get_network(f->m, "lab"));
        g_assert_cmpuint(f->m->serial, ==, 30);

        /* A snapshot for another host is refused. */
        g_autofree char *other = nm_uuid_new();
        g_autofree char *foreign =
                g_strdup_printf("{\"type\":\"snapshot\",\"serial\":40,\"state\":{\"host_id\":\"%s\","
                                "\"serial\":40,\"networks\":[]}}",
                                other);
        g_assert_cmpint(handle(f, foreign), ==, MESSAGE_IGNORED);
        g_assert_nonnull(manager_get_network(f->m, "lab"));
}

static void test_reload(Fixture *f, gconstpointer data)
{
        g_autofree char *kb = NULL;
        start_with_office(f, 7, &kb, NULL);
        g_assert_cmpint(manager_set_connected(f->m, "office", false, NULL), ==, 0);

        /* A new manager on the same directory comes back with the same networks and serial. */
        Config *c2 = config_new();
        g_free(c2->state_dir);
        c2->state_dir = g_strdup(f->dir);
        Manager *m2 = NULL;
        g_assert_cmpint(manager_new(c2, &m2), ==, 0);
        g_assert_cmpint(manager_load_state(m2), ==, 0);
        g_assert_nonnull(m2->server);
        g_assert_cmpstr(m2->server->host_id, ==, f->host_id);
        g_assert_cmpuint(m2->serial, ==, 7);
        Network *n = manager_get_network(m2, "office");
        g_assert_nonnull(n);
        g_assert_true(has_peer(n, kb));
        g_assert_cmpuint(g_hash_table_size(n->peers), ==, 2);
        g_assert_false(network_is_connected(n));
        g_assert_true(nm_key_equal(&m2->identity.wg_public, &f->m->identity.wg_public));
        manager_free(m2);
        config_free(c2);
}

static void test_host_deleted(Fixture *f, gconstpointer data)
{
        start_with_office(f, 3, NULL, NULL);
        /* Acted on whatever its serial: it is authenticated by the server key. */
        g_assert_cmpint(handle(f, "{\"type\":\"host-deleted\",\"serial\":99}"), ==, MESSAGE_APPLIED);
        g_assert_null(f->m->server);
        g_assert_cmpuint(g_hash_table_size(f->m->networks), ==, 0);
        g_assert_cmpint(manager_get_state(f->m), ==, MANAGER_STATE_UNREGISTERED);
        g_autofree char *s = g_build_filename(f->dir, STATE_SERVER_FILE, NULL);
        g_autofree char *n = g_build_filename(f->dir, STATE_NODES_FILE, NULL);
        g_autofree char *i = g_build_filename(f->dir, STATE_IDENTITY_FILE, NULL);
        g_assert_false(g_file_test(s, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(n, G_FILE_TEST_EXISTS));
        /* The keys stay: a later join reuses them. */
        g_assert_true(g_file_test(i, G_FILE_TEST_EXISTS));
}

static void test_sealed_payloads(Fixture *f, gconstpointer data)
{
        NmKey server_priv, server_pub, host_priv, host_pub, other_priv, other_pub;
        g_autoptr(GError) e = NULL;
        const char *json = "{\"type\":\"network-left\",\"serial\":1,\"network\":\"secretname\"}";

        nm_key_generate_box(&server_priv, &server_pub);
        nm_key_generate_box(&host_priv, &host_pub);
        nm_key_generate_box(&other_priv, &other_pub);

        g_autoptr(GBytes) good = nm_seal(json, strlen(json), &host_pub, &server_priv);
        gsize n;
        const void *d = g_bytes_get_data(good, &n);
        g_autoptr(NmMessage) m = mq_client_open_message(&server_pub, &host_priv, d, n, &e);
        g_assert_no_error(e);
        g_assert_cmpint(m->type, ==, NM_MSG_NETWORK_LEFT);

        /* Sealed by someone else: refused, and the error does not quote the content. */
        g_autoptr(GBytes) forged = nm_seal(json, strlen(json), &host_pub, &other_priv);
        d = g_bytes_get_data(forged, &n);
        g_assert_null(mq_client_open_message(&server_pub, &host_priv, d, n, &e));
        g_assert_nonnull(e);
        g_assert_null(strstr(e->message, "secretname"));
        g_clear_error(&e);

        /* Sealed correctly but not a message: refused without content either. */
        const char *junk = "{\"type\":\"explode\",\"serial\":1,\"secretname\":true}";
        g_autoptr(GBytes) bad = nm_seal(junk, strlen(junk), &host_pub, &server_priv);
        d = g_bytes_get_data(bad, &n);
        g_assert_null(mq_client_open_message(&server_pub, &host_priv, d, n, &e));
        g_assert_null(strstr(e->message, "secretname"));
        g_assert_null(strstr(e->message, "explode"));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        log_set_max_level(LOG_WARNING);
#define ADD(path, fn) g_test_add("/netclientd/messages/" path, Fixture, NULL, setup, fn, teardown)
        ADD("serials", test_serials);
        ADD("peer-deltas", test_peer_deltas);
        ADD("networks", test_networks);
        ADD("snapshots", test_snapshots);
        ADD("reload", test_reload);
        ADD("host-deleted", test_host_deleted);
        ADD("sealed-payloads", test_sealed_payloads);
        return g_test_run();
}
