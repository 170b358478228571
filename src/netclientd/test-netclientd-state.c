/* Proves netclientd's on-disk state is private (0700 directory, 0600 files whatever the umask),
 * written atomically (no partial file, no temporary left behind, the old file intact when a write
 * fails), round-trips through a reload, never quotes secrets in errors, and that the configuration
 * sources apply in order (file, then environment, then options) with clear messages (HostName=
 * refused, not shortened, when it is no host name). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon-config.h"
#include "keys.h"
#include "log.h"
#include "nm-error.h"
#include "state.h"

static char *make_tmpdir(void)
{
        g_autoptr(GError) e = NULL;
        char *d = g_dir_make_tmp("test-netclientd-state-XXXXXX", &e);
        g_assert_no_error(e);
        return d;
}

static void rm_rf(const char *dir)
{
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        g_assert_cmpint(system(cmd), ==, 0);
}

static mode_t mode_of(const char *path)
{
        struct stat st;
        g_assert_cmpint(stat(path, &st), ==, 0);
        return st.st_mode & 07777;
}

static unsigned count_entries(const char *dir)
{
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        unsigned n = 0;
        while (g_dir_read_name(d))
                n++;
        return n;
}

static void test_dir_permissions(void)
{
        g_autofree char *tmp = make_tmpdir();
        g_autofree char *dir = g_build_filename(tmp, "a", "b", NULL);
        g_autoptr(GError) e = NULL;

        g_assert_cmpint(state_dir_prepare(dir, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_cmpint(mode_of(dir), ==, 0700);

        /* An existing directory that others could read is tightened. */
        g_assert_cmpint(chmod(dir, 0755), ==, 0);
        g_assert_cmpint(state_dir_prepare(dir, &e), ==, 0);
        g_assert_cmpint(mode_of(dir), ==, 0700);
        rm_rf(tmp);
}

static void test_atomic_write(void)
{
        g_autofree char *dir = make_tmpdir();
        g_autofree char *path = g_build_filename(dir, "f.json", NULL);
        g_autoptr(GError) e = NULL;
        g_autofree char *data = NULL;
        size_t len;
        mode_t old = umask(0);

        g_assert_cmpint(state_write_atomic(dir, "f.json", "first", 5, &e), ==, 0);
        g_assert_no_error(e);
        umask(old);
        /* 0600 even though the umask allowed everything. */
        g_assert_cmpint(mode_of(path), ==, 0600);
        g_assert_cmpint(state_write_atomic(dir, "f.json", "second", 6, &e), ==, 0);
        g_assert_cmpint(state_read(dir, "f.json", &data, &len, &e), ==, 0);
        g_assert_cmpstr(data, ==, "second");
        g_assert_cmpuint(len, ==, 6);
        /* No temporary file is left next to it. */
        g_assert_cmpuint(count_entries(dir), ==, 1);

        /* A write that cannot complete leaves the old file as it was and no temporary. */
        g_autofree char *blocker = g_build_filename(dir, "g.json", NULL);
        g_assert_cmpint(mkdir(blocker, 0700), ==, 0);
        g_assert_cmpint(state_write_atomic(dir, "g.json", "x", 1, &e), <, 0);
        g_assert_error(e, NM_ERROR, NM_ERROR_INTERNAL);
        g_assert_nonnull(strstr(e->message, "g.json"));
        g_clear_error(&e);
        g_assert_cmpuint(count_entries(dir), ==, 2);
        g_clear_pointer(&data, g_free);
        g_assert_cmpint(state_read(dir, "f.json", &data, NULL, &e), ==, 0);
        g_assert_cmpstr(data, ==, "second");

        /* Missing files are -ENOENT without an error; files others may read are tightened. */
        g_assert_cmpint(state_read(dir, "nope", &data, NULL, &e), ==, -ENOENT);
        g_assert_no_error(e);
        g_assert_cmpint(chmod(path, 0644), ==, 0);
        g_clear_pointer(&data, g_free);
        g_assert_cmpint(state_read(dir, "f.json", &data, NULL, &e), ==, 0);
        g_assert_cmpint(mode_of(path), ==, 0600);
        rm_rf(dir);
}

static void test_identity(void)
{
        g_autofree char *dir = make_tmpdir();
        g_autoptr(GError) e = NULL;
        Identity a = {}, b = {};
        NmKey pub;

        g_assert_cmpint(identity_load(dir, &a, &e), ==, -ENOENT);
        g_assert_cmpint(identity_load_or_create(dir, &a, &e), ==, 1);
        g_assert_no_error(e);
        g_assert_false(nm_key_is_zero(&a.wg_private));
        g_assert_cmpint(nm_key_public_from_private(&a.wg_private, &pub), ==, 0);
        g_assert_true(nm_key_equal(&pub, &a.wg_public));
        g_assert_false(nm_key_equal(&a.wg_public, &a.msg_public));

        /* Reloading gives the same keys and makes no new ones. */
        g_assert_cmpint(identity_load_or_create(dir, &b, &e), ==, 0);
        g_assert_true(nm_key_equal(&a.wg_private, &b.wg_private));
        g_assert_true(nm_key_equal(&a.msg_public, &b.msg_public));
        g_autofree char *f = g_build_filename(dir, STATE_IDENTITY_FILE, NULL);
        g_assert_cmpint(mode_of(f), ==, 0600);

        /* An unclamped private key (another tool's) is loaded clamped, as devices report it. */
        Identity u = a;
        u.wg_private.b[0] |= 7;
        u.wg_private.b[31] |= 128;
        g_assert_cmpint(identity_save(dir, &u, &e), ==, 0);
        g_assert_cmpint(identity_load(dir, &b, &e), ==, 0);
        g_assert_true(nm_key_equal(&b.wg_private, &a.wg_private));
        g_assert_true(nm_key_equal(&b.wg_public, &a.wg_public));
        identity_clear(&u);

        /* A damaged file is refused without quoting what is in it. */
        char b64[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&a.wg_private, b64);
        g_autofree char *bad =
                g_strdup_printf("{\"wg_private_key\":\"%.43s!\",\"msg_private_key\":\"%s\"}", b64, b64);
        g_assert_cmpint(state_write_atomic(dir, STATE_IDENTITY_FILE, bad, strlen(bad), &e), ==, 0);
        g_assert_cmpint(identity_load(dir, &b, &e), ==, -EINVAL);
        g_assert_nonnull(e);
        g_assert_null(strstr(e->message, b64));
        g_assert_null(strstr(e->message, "!"));
        identity_clear(&a);
        identity_clear(&b);
        rm_rf(dir);
}

static void test_server_roundtrip(void)
{
        g_autofree char *dir = make_tmpdir();
        g_autoptr(GError) e = NULL;
        g_autoptr(ServerConfig) s = server_config_new(), t = NULL;
        NmKey priv;

        nm_key_generate_box(&priv, &s->server_key);
        s->api = g_strdup("http://198.18.0.254:8081");
        s->host_id = nm_uuid_new();
        s->credential = g_strdup_printf("nmh.%s.secret", s->host_id);
        s->mqtt_url = g_strdup("mqtt://198.18.0.254:1883");
        s->mqtt_username = g_strdup_printf("host-%s", s->host_id);
        s->mqtt_password = g_strdup("pw");
        s->topic_msg = g_strdup("nm/x/host/1/msg");
        s->topic_report = g_strdup("nm/x/host/1/report");

        g_assert_cmpint(server_config_load(dir, &t, &e), ==, -ENOENT);
        g_assert_cmpint(server_config_save(dir, s, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_cmpint(server_config_load(dir, &t, &e), ==, 0);
        g_assert_cmpstr(t->api, ==, s->api);
        g_assert_cmpstr(t->credential, ==, s->credential);
        g_assert_cmpstr(t->mqtt_password, ==, "pw");
        g_assert_cmpstr(t->topic_report, ==, s->topic_report);
        g_assert_true(nm_key_equal(&t->server_key, &s->server_key));
        g_autofree char *f = g_build_filename(dir, STATE_SERVER_FILE, NULL);
        g_assert_cmpint(mode_of(f), ==, 0600);

        /* Unknown members are refused (a typo never passes silently). */
        const char *bad = "{\"api\":\"http://x\",\"extra\":1}";
        g_assert_null(server_config_from_json(bad, strlen(bad), &e));
        g_assert_nonnull(e);
        rm_rf(dir);
}

static NmPeer *peer(const char *name, const char *ip)
{
        NmPeer *p = nm_peer_new();
        NmKey priv;
        nm_key_generate_wg(&priv, &p->public_key);
        p->host_id = nm_uuid_new();
        p->name = g_strdup(name);
        p->endpoint = g_strdup("198.18.0.9:51821");
        p->allowed_ips = g_strsplit(ip, ",", -1);
        p->keepalive = 20;
        return p;
}

static void test_node_state_roundtrip(void)
{
        g_autofree char *dir = make_tmpdir();
        g_autoptr(GError) e = NULL;
        g_autoptr(NmState) s = nm_state_new();
        g_autoptr(NodeState) n = NULL;
        g_autoptr(GHashTable) disc = g_hash_table_new(g_str_hash, g_str_equal);

        s->host_id = nm_uuid_new();
        s->serial = 42;
        NmNetworkState *ns = nm_network_state_new();
        ns->network = g_strdup("office");
        ns->node_id = nm_uuid_new();
        ns->ipv4 = g_strdup("10.99.0.1/24");
        ns->listen_port = 51821;
        ns->keepalive = 20;
        ns->mtu = 1420;
        ns->connected = true;
        ns->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        g_ptr_array_add(ns->peers, peer("b", "10.99.0.2/32"));
        g_ptr_array_add(ns->peers, peer("c", "10.99.0.3/32,10.50.0.0/16"));
        g_ptr_array_add(s->networks, ns);
        g_hash_table_add(disc, "office");

        g_assert_cmpint(node_state_load(dir, &n, &e), ==, -ENOENT);
        g_assert_cmpint(node_state_save(dir, s, disc, &e), ==, 0);
        g_assert_cmpint(node_state_load(dir, &n, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_cmpuint(n->state->serial, ==, 42);
        g_assert_cmpstr(n->state->host_id, ==, s->host_id);
        g_assert_cmpuint(n->state->networks->len, ==, 1);
        NmNetworkState *back = n->state->networks->pdata[0];
        g_assert_cmpuint(back->peers->len, ==, 2);
        for (guint i = 0; i < 2; i++)
                g_assert_true(nm_peer_equal(back->peers->pdata[i], ns->peers->pdata[i]));
        g_assert_true(g_hash_table_contains(n->disconnected, "office"));
        g_autofree char *f = g_build_filename(dir, STATE_NODES_FILE, NULL);
        g_assert_cmpint(mode_of(f), ==, 0600);
        rm_rf(dir);
}

static void test_config_precedence(void)
{
        g_autofree char *dir = make_tmpdir();
        g_autoptr(Config) c = config_new();
        g_autoptr(GError) e = NULL;

        g_free(c->config_file);
        c->config_file = g_build_filename(dir, "netclientd.conf", NULL);
        /* A missing file is fine. */
        g_assert_cmpint(config_load_file(c, &e), ==, 0);
        g_assert_cmpint(c->wg_backend, ==, WG_BACKEND_AUTO);

        const char *text = "[Daemon]\nLogLevel=debug\nCheckinIntervalSec=30\n[WireGuard]\nBackend=kernel\n"
                           "WireGuardGo=/opt/wg-go\n";
        g_assert_true(g_file_set_contents(c->config_file, text, -1, NULL));
        g_assert_cmpint(config_load_file(c, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_cmpint(c->wg_backend, ==, WG_BACKEND_KERNEL);
        g_assert_cmpint(c->log_level, ==, LOG_DEBUG);
        g_assert_cmpuint(c->checkin_usec, ==, 30 * 1000000ULL);
        g_assert_cmpstr(c->wireguard_go, ==, "/opt/wg-go");

        /* The environment wins over the file ... */
        char *env[] = {"NETCLIENTD_WG_BACKEND=userspace", "NETCLIENTD_CHECKIN_INTERVAL=90", NULL};
        g_assert_cmpint(config_load_env(c, env, &e), ==, 0);
        g_assert_cmpint(c->wg_backend, ==, WG_BACKEND_USERSPACE);
        g_assert_cmpuint(c->checkin_usec, ==, 90 * 1000000ULL);
        /* ... and options over both. */
        g_assert_cmpint(config_set(c, "Backend", "kernel", "the command line", &e), ==, 0);
        g_assert_cmpint(c->wg_backend, ==, WG_BACKEND_KERNEL);

        /* Bad values name the setting, the value, the source and what is accepted. */
        char *bad_env[] = {"NETCLIENTD_WG_BACKEND=fast", NULL};
        g_assert_cmpint(config_load_env(c, bad_env, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "\"fast\""));
        g_assert_nonnull(strstr(e->message, "$NETCLIENTD_WG_BACKEND"));
        g_assert_nonnull(strstr(e->message, "userspace"));
        g_clear_error(&e);
        g_assert_true(g_file_set_contents(c->config_file, "[Daemon]\nCheckinInterval=5\n", -1, NULL));
        g_assert_cmpint(config_load_file(c, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "CheckinInterval"));
        g_clear_error(&e);
        g_assert_true(g_file_set_contents(c->config_file, "[Daemon]\nStatsIntervalSec=0\n", -1, NULL));
        g_assert_cmpint(config_load_file(c, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "StatsIntervalSec"));
        g_clear_error(&e);
        /* A value the key file cannot read is refused, not taken as empty (the default). */
        g_assert_cmpint(config_set(c, "CAFile", "/etc/netclient/ca.pem", "the command line", &e), ==, 0);
        g_assert_true(g_file_set_contents(c->config_file, "[Server]\nCAFile=/etc/ca\xff.pem\n", -1, NULL));
        g_assert_cmpint(config_load_file(c, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "CAFile"));
        g_assert_cmpstr(c->ca_file, ==, "/etc/netclient/ca.pem");
        g_clear_error(&e);
        g_assert_true(g_file_set_contents(c->config_file, "[Server]\nCAFile=/etc/ca\\q.pem\n", -1, NULL));
        g_assert_cmpint(config_load_file(c, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "CAFile"));
        g_clear_error(&e);

        /* HostName= is checked as Join's "name" is, and refused rather than shortened. */
        g_assert_cmpint(config_set(c, "HostName", "laptop-1", "the command line", &e), ==, 0);
        g_assert_cmpstr(c->host_name, ==, "laptop-1");
        g_autofree char *long_name = g_strnfill(64, 'a');
        g_autofree char *env_name = g_strconcat("NETCLIENTD_HOST_NAME=", long_name, NULL);
        char *name_env[] = {env_name, NULL};
        g_assert_cmpint(config_load_env(c, name_env, &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "(64 characters)"));
        g_assert_nonnull(strstr(e->message, "1-63"));
        g_assert_nonnull(strstr(e->message, "HostName"));
        g_assert_cmpstr(c->host_name, ==, "laptop-1");
        g_clear_error(&e);
        g_assert_cmpint(config_set(c, "HostName", "My_Laptop", "the command line", &e), ==, -EINVAL);
        g_assert_nonnull(strstr(e->message, "\"My_Laptop\""));
        g_clear_error(&e);
        g_assert_cmpint(config_set(c, "HostName", "", "the command line", &e), ==, 0);
        g_assert_null(c->host_name);
        rm_rf(dir);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/netclientd/state/dir-permissions", test_dir_permissions);
        g_test_add_func("/netclientd/state/atomic-write", test_atomic_write);
        g_test_add_func("/netclientd/state/identity", test_identity);
        g_test_add_func("/netclientd/state/server", test_server_roundtrip);
        g_test_add_func("/netclientd/state/nodes", test_node_state_roundtrip);
        g_test_add_func("/netclientd/config/precedence", test_config_precedence);
        return g_test_run();
}
