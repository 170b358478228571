/* Proves the store on a temporary SQLite file: migrations run once and leave a 0600 file, a second
 * open keeps the data, a newer schema is refused, unique and foreign-key violations become
 * conflict/not-found errors, a rolled back transaction leaves nothing, a limited key's last
 * use can be taken only once, and a user's token generation is stored (0 for users from before
 * schema 5). */
#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "ipam.h"
#include "macro.h"
#include "nm-error.h"
#include "nameservers.h"
#include "store.h"

static char *tmpdir;

static char *db_url(const char *name)
{
        return g_strdup_printf("sqlite://%s/%s", tmpdir, name);
}

static Store *open_store(const char *name)
{
        g_autofree char *url = db_url(name);
        g_autoptr(GError) e = NULL;
        Store *s = NULL;
        g_assert_cmpint(store_open(url, &s, &e), ==, 0);
        g_assert_no_error(e);
        return s;
}

static void insert_network(Store *s, const char *name, const char *v4)
{
        Network n = {.name = (char *)name,
                     .ipv4_range = (char *)v4,
                     .listen_port = 51821,
                     .keepalive = 20,
                     .mtu = 1420,
                     .dns_domain = (char *)"nm.internal",
                     .created_at = 1};
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(store_network_insert(s, &n, &e), ==, 0);
}

static void test_migrations(void)
{
        g_autoptr(GError) e = NULL;
        gint64 v = 0;
        {
                g_autoptr(Store) s = open_store("m.db");
                g_assert_cmpint(store_schema_version(s, &v, &e), ==, 0);
                g_assert_cmpint(v, >=, 1); /* one per migration; each issue appends its own */
                g_assert_cmpstr(store_backend_name(s), ==, "sqlite");
                g_assert_cmpint(store_setting_set(s, "k", "v1", &e), ==, 0);
                g_assert_cmpint(store_setting_set(s, "k", "v2", &e), ==, 0);
        }
        g_autofree char *path = g_build_filename(tmpdir, "m.db", NULL);
        struct stat st;
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);

        /* Reopening migrates nothing and keeps the data. */
        g_autoptr(Store) s = open_store("m.db");
        g_autoptr(StoreResult) res = NULL;
        g_assert_cmpint(store_exec(s, "SELECT COUNT(*) FROM schema_version", NULL, 0, &res, &e), ==, 0);
        g_assert_cmpint(store_result_int(res, 0, 0), ==, v);
        g_autofree char *val = NULL;
        g_assert_cmpint(store_setting_get(s, "k", &val, &e), ==, 0);
        g_assert_cmpstr(val, ==, "v2");
        g_autofree char *missing = NULL;
        g_assert_cmpint(store_setting_get(s, "nope", &missing, &e), ==, -ENOENT);
        g_clear_error(&e);

        /* A database from a newer netmakerd is refused, not half-understood. */
        StoreValue p[] = {SV_INT(99), SV_INT(0)};
        g_assert_cmpint(store_exec(s, "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", p,
                                   2, NULL, &e),
                        ==, 0);
        g_autofree char *url = db_url("m.db");
        Store *newer = NULL;
        g_assert_cmpint(store_open(url, &newer, &e), ==, -EPROTO);
        g_assert_null(newer);
        g_assert_nonnull(strstr(e->message, "99"));
}

static void test_user_token_generation(void)
{
        g_autoptr(Store) s = open_store("u.db");
        g_autoptr(GError) e = NULL;

        User u = {.username = (char *)"alice",
                  .password_hash = (char *)"$argon2id$x",
                  .role = (char *)"user",
                  .created_at = 10,
                  .password_changed_at = 10,
                  .token_generation = (INT64_C(1) << 53) - 5};
        g_assert_cmpint(store_user_insert(s, &u, &e), ==, 0);
        g_autoptr(User) got = NULL;
        g_assert_cmpint(store_user_get(s, "alice", &got, &e), ==, 0);
        g_assert_cmpint(got->token_generation, ==, u.token_generation);

        got->token_generation++;
        got->password_changed_at = 11;
        g_assert_cmpint(store_user_update(s, got, &e), ==, 0);
        g_autoptr(User) changed = NULL;
        g_assert_cmpint(store_user_get(s, "alice", &changed, &e), ==, 0);
        g_assert_cmpint(changed->token_generation, ==, u.token_generation + 1);
        g_assert_cmpint(changed->password_changed_at, ==, 11);

        /* A row written without the column (as by a netmakerd before schema 5) reads as 0. */
        g_assert_cmpint(store_exec(s,
                                   "INSERT INTO users (username, password_hash, role, created_at, "
                                   "password_changed_at) VALUES ('old', 'h', 'admin', 1, 1)",
                                   NULL, 0, NULL, &e),
                        ==, 0);
        g_autoptr(User) old = NULL;
        g_assert_cmpint(store_user_get(s, "old", &old, &e), ==, 0);
        g_assert_cmpint(old->token_generation, ==, 0);
}

static void test_errors(void)
{
        g_autoptr(Store) s = open_store("e.db");
        g_autoptr(GError) e = NULL;

        insert_network(s, "office", "10.99.0.0/24");
        Network dup = {.name = (char *)"office", .listen_port = 1, .mtu = 1420, .dns_domain = (char *)"x"};
        g_assert_cmpint(store_network_insert(s, &dup, &e), ==, -EEXIST);
        g_assert_error(e, NM_ERROR, NM_ERROR_CONFLICT);
        g_assert_nonnull(strstr(e->message, "office"));
        g_clear_error(&e);

        g_autoptr(Network) n = NULL;
        g_assert_cmpint(store_network_get(s, "nothere", &n, &e), ==, -ENOENT);
        g_assert_error(e, NM_ERROR, NM_ERROR_NOT_FOUND);
        g_clear_error(&e);

        /* A key naming a network that does not exist. */
        char *nets[] = {"office", "ghost", NULL};
        EnrollmentKey k = {.id = (char *)"k1",
                           .name = (char *)"k",
                           .value = (char *)"V1",
                           .networks = nets,
                           .uses_remaining = 1};
        StoreTxn t = {};
        g_assert_cmpint(store_txn_begin(s, &t, &e), ==, 0);
        g_assert_cmpint(store_key_insert(s, &k, &e), ==, -ENOENT);
        g_assert_error(e, NM_ERROR, NM_ERROR_NOT_FOUND);
        g_assert_nonnull(strstr(e->message, "ghost"));
        g_clear_error(&e);
        store_txn_done(&t); /* rolls back the half-inserted key */
        g_autoptr(GPtrArray) keys = NULL;
        g_assert_cmpint(store_key_list(s, &keys, &e), ==, 0);
        g_assert_cmpuint(keys->len, ==, 0);
}

static void test_take_last_use(void)
{
        g_autoptr(Store) s = open_store("k.db");
        g_autoptr(GError) e = NULL;
        insert_network(s, "office", "10.99.0.0/24");
        char *nets[] = {"office", NULL};
        char *tags[] = {"laptop", NULL};
        EnrollmentKey k = {.id = (char *)"k1",
                           .name = (char *)"laptops",
                           .value = (char *)"V1",
                           .networks = nets,
                           .tags = tags,
                           .uses_remaining = 2};
        g_assert_cmpint(store_key_insert(s, &k, &e), ==, 0);
        g_assert_cmpint(store_key_take_use(s, &k, &e), ==, 0);
        g_assert_cmpint(store_key_take_use(s, &k, &e), ==, 0);
        g_assert_cmpint(store_key_take_use(s, &k, &e), ==, -ESTALE);
        g_assert_error(e, NM_ERROR, NM_ERROR_GONE);
        g_clear_error(&e);

        /* A second connection (another netmakerd on the same file) sees the count at 0. */
        g_autoptr(Store) s2 = open_store("k.db");
        g_autoptr(EnrollmentKey) back = NULL;
        g_assert_cmpint(store_key_get_by_value(s2, "V1", &back, &e), ==, 0);
        g_assert_cmpint(back->uses_remaining, ==, 0);
        g_assert_cmpstr(back->networks[0], ==, "office");
        g_assert_cmpstr(back->tags[0], ==, "laptop");
        g_assert_cmpint(store_key_take_use(s2, back, &e), ==, -ESTALE);
        g_clear_error(&e);

        /* Unlimited keys never run out; expired ones are gone. */
        EnrollmentKey u = {
                .id = (char *)"k2", .name = (char *)"u", .value = (char *)"V2", .unlimited = true};
        g_assert_cmpint(store_key_insert(s, &u, &e), ==, 0);
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(store_key_take_use(s, &u, &e), ==, 0);
        EnrollmentKey x = {.id = (char *)"k3",
                           .name = (char *)"x",
                           .value = (char *)"V3",
                           .unlimited = true,
                           .expires_at = 1000};
        g_assert_cmpint(store_key_insert(s, &x, &e), ==, 0);
        g_assert_cmpint(store_key_take_use(s, &x, &e), ==, -ESTALE);
}

static void test_hosts_nodes(void)
{
        g_autoptr(Store) s = open_store("h.db");
        g_autoptr(GError) e = NULL;
        insert_network(s, "office", "10.0.0.0/30");

        Host h = {.id = nm_uuid_new(),
                  .name = (char *)"alpha",
                  .os = (char *)"linux",
                  .version = (char *)"1",
                  .credential_hash = (char *)"x",
                  .listen_port = 51821};
        memset(&h.wg_key, 1, sizeof(h.wg_key));
        char *eps[] = {"198.18.0.2", NULL};
        h.endpoints = eps;
        g_assert_cmpint(store_host_insert(s, &h, &e), ==, 0);
        /* The same WireGuard key again. */
        Host h2 = h;
        h2.id = nm_uuid_new();
        g_assert_cmpint(store_host_insert(s, &h2, &e), ==, -EEXIST);
        g_assert_error(e, NM_ERROR, NM_ERROR_CONFLICT);
        g_clear_error(&e);

        g_autoptr(Network) n = NULL;
        g_assert_cmpint(store_network_get(s, "office", &n, &e), ==, 0);
        Node node = {.id = nm_uuid_new(), .host_id = h.id, .network = (char *)"office", .connected = true};
        g_assert_cmpint(ipam_assign(s, n, &node, &e), ==, 0);
        g_assert_cmpstr(node.ipv4, ==, "10.0.0.1");
        g_assert_cmpint(store_node_insert(s, &node, &e), ==, 0);

        guint64 serial = 0;
        g_assert_cmpint(store_host_bump_serial(s, h.id, &serial, &e), ==, 0);
        g_assert_cmpint(store_host_bump_serial(s, h.id, &serial, &e), ==, 0);
        g_assert_cmpuint(serial, ==, 2);

        g_autoptr(GPtrArray) members = NULL;
        g_assert_cmpint(store_members(s, "office", &members, &e), ==, 0);
        g_assert_cmpuint(members->len, ==, 1);
        Member *m = members->pdata[0];
        g_assert_cmpstr(m->host->name, ==, "alpha");
        g_assert_cmpstr(m->host->endpoints[0], ==, "198.18.0.2");
        g_assert_cmpstr(m->node->host_name, ==, "alpha");
        g_assert_true(nm_key_equal(&m->host->wg_key, &h.wg_key));

        g_autoptr(Network) n2 = NULL;
        g_assert_cmpint(store_network_get(s, "office", &n2, &e), ==, 0);
        g_assert_cmpint(n2->n_nodes, ==, 1);

        /* A host's settings: none at first (defaults), stored and read back, a keepalive of 0
         * ("off") told apart from none, and none again. */
        g_assert_cmpuint(m->host->static_listen_port, ==, 0);
        g_assert_null(m->host->static_endpoint);
        g_assert_false(m->host->has_keepalive);
        g_assert_cmpuint(m->host->mtu, ==, 0);
        g_autoptr(Host) set = host_copy(m->host);
        set->static_listen_port = 51900;
        set->static_endpoint = g_strdup("203.0.113.7");
        set->has_keepalive = true;
        set->keepalive = 0;
        set->mtu = 1380;
        g_assert_cmpint(store_host_update(s, set, &e), ==, 0);
        g_autoptr(Host) got = NULL;
        g_assert_cmpint(store_host_get(s, h.id, &got, &e), ==, 0);
        g_assert_cmpuint(got->static_listen_port, ==, 51900);
        g_assert_cmpstr(got->static_endpoint, ==, "203.0.113.7");
        g_assert_true(got->has_keepalive);
        g_assert_cmpuint(got->keepalive, ==, 0);
        g_assert_cmpuint(got->mtu, ==, 1380);
        /* Its node's port follows the static port (one link per network). */
        guint changed = 0;
        g_assert_cmpint(ipam_reassign_ports(s, got, &changed, &e), ==, 0);
        g_assert_cmpuint(changed, ==, 1);
        g_autoptr(Node) moved = NULL;
        g_assert_cmpint(store_node_get(s, node.id, &moved, &e), ==, 0);
        g_assert_cmpuint(moved->listen_port, ==, 51900);
        g_assert_cmpint(ipam_reassign_ports(s, got, &changed, &e), ==, 0);
        g_assert_cmpuint(changed, ==, 0);
        g_clear_pointer(&got->static_endpoint, g_free);
        got->has_keepalive = false;
        got->mtu = 0;
        got->static_listen_port = 0;
        g_assert_cmpint(store_host_update(s, got, &e), ==, 0);
        g_autoptr(Host) back = NULL;
        g_assert_cmpint(store_host_get(s, h.id, &back, &e), ==, 0);
        g_assert_true(back->static_endpoint == NULL && !back->has_keepalive && back->mtu == 0 &&
                      back->static_listen_port == 0);
        g_assert_cmpint(ipam_reassign_ports(s, back, &changed, &e), ==, 0);
        g_assert_cmpuint(changed, ==, 1); /* the network's port again */

        /* Nameservers: one per domain, replaced, deleted, and gone with their network. */
        char *servers[] = {"192.168.50.53", NULL};
        g_autoptr(NmNameserver) ns = nm_nameserver_new("corp.example", servers);
        g_assert_cmpint(nameservers_add(s, "office", ns, &e), ==, 0);
        g_assert_cmpint(nameservers_add(s, "office", ns, &e), ==, -EEXIST);
        g_assert_error(e, NM_ERROR, NM_ERROR_CONFLICT);
        g_clear_error(&e);
        g_assert_cmpint(nameservers_add(s, "nosuch", ns, &e), ==, -ENOENT);
        g_assert_error(e, NM_ERROR, NM_ERROR_NOT_FOUND);
        g_clear_error(&e);
        g_free(ns->servers[0]);
        ns->servers[0] = g_strdup("192.168.50.54");
        g_assert_cmpint(nameservers_set(s, "office", ns, &e), ==, 0);
        g_autoptr(GPtrArray) listed = NULL;
        g_assert_cmpint(nameservers_load(s, "office", &listed, &e), ==, 0);
        g_assert_cmpuint(listed->len, ==, 1);
        g_assert_cmpstr(((NmNameserver *)listed->pdata[0])->servers[0], ==, "192.168.50.54");
        g_assert_cmpint(nameservers_delete(s, "office", "CORP.example.", &e), ==, 0);
        g_assert_cmpint(nameservers_delete(s, "office", "corp.example", &e), ==, -ENOENT);
        g_clear_error(&e);
        g_assert_cmpint(nameservers_add(s, "office", ns, &e), ==, 0);
        g_autofree char *canon = NULL;
        g_assert_false(nameserver_domain_valid("x.office.nm.internal", "office", "nm.internal", &canon, &e));
        g_assert_error(e, NM_ERROR, NM_ERROR_CONFLICT);
        g_clear_error(&e);
        g_assert_true(nameserver_domain_valid("Corp.Example.", "office", "nm.internal", &canon, &e));
        g_assert_cmpstr(canon, ==, "corp.example");

        /* Deleting the host takes its nodes with it. */
        g_assert_cmpint(store_host_delete(s, h.id, &e), ==, 0);
        g_autoptr(GPtrArray) nodes = NULL;
        g_assert_cmpint(store_node_list(s, NULL, NULL, &nodes, &e), ==, 0);
        g_assert_cmpuint(nodes->len, ==, 0);
        /* Deleting the network takes its nameservers with it. */
        g_assert_cmpint(store_network_delete(s, "office", &e), ==, 0);
        g_autoptr(GHashTable) all_ns = NULL;
        g_assert_cmpint(nameservers_load_all(s, &all_ns, &e), ==, 0);
        g_assert_cmpuint(g_hash_table_size(all_ns), ==, 0);
        g_free(h.id);
        g_free(h2.id);
        g_free(node.id);
        g_free(node.ipv4);
}

static void remove_tree(const char *dir)
{
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(dir, name, NULL);
                (void)g_unlink(p);
        }
        (void)g_rmdir(dir);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        tmpdir = g_dir_make_tmp("test-store-XXXXXX", NULL);
        g_assert_nonnull(tmpdir);
        g_test_add_func("/store/migrations", test_migrations);
        g_test_add_func("/store/errors", test_errors);
        g_test_add_func("/store/user-token-generation", test_user_token_generation);
        g_test_add_func("/store/take-last-use", test_take_last_use);
        g_test_add_func("/store/hosts-nodes", test_hosts_nodes);
        int r = g_test_run();
        remove_tree(tmpdir);
        g_free(tmpdir);
        return r;
}
