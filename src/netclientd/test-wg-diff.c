/* Proves that wg_device_diff() sends only what changed: untouched peers are left out, an update
 * never replaces peers, allowed IPs and endpoints are written only when they differ, and a device
 * that already matches produces an empty change set. */
#include <arpa/inet.h>
#include <string.h>

#include "wg.h"

static NmKey key_n(unsigned n)
{
        NmKey k = {};
        k.b[0] = (uint8_t)(n & 0xff);
        k.b[1] = (uint8_t)(n >> 8);
        k.b[31] = 0x42;
        return k;
}

static WgPeer *peer_n(unsigned n)
{
        NmKey k = key_n(n);
        WgPeer *p = wg_peer_new(&k);
        g_autofree char *ip = g_strdup_printf("10.99.%u.%u/32", n >> 8, n & 0xff);
        g_autofree char *ep = g_strdup_printf("198.18.%u.%u:51820", n >> 8, n & 0xff);
        WgEndpoint e;

        g_assert_cmpint(wg_peer_add_allowed_ip_string(p, ip, NULL), ==, 0);
        g_assert_cmpint(wg_endpoint_parse(ep, &e, NULL), ==, 0);
        wg_peer_set_endpoint(p, &e);
        wg_peer_set_persistent_keepalive(p, 20);
        return p;
}

static WgDevice *device_with(unsigned npeers)
{
        WgDevice *d = wg_device_new("nm-test");
        NmKey priv = key_n(9999);
        priv.b[0] &= 248;
        priv.b[31] = (priv.b[31] & 127) | 64;
        g_assert_cmpint(wg_device_set_private_key(d, &priv), ==, 0);
        wg_device_set_listen_port(d, 51820);
        for (unsigned i = 1; i <= npeers; i++)
                wg_device_add_peer(d, peer_n(i));
        return d;
}

/* What a backend would report: the same, plus state the diff must ignore. */
static WgDevice *as_reported(const WgDevice *d)
{
        WgDevice *c = wg_device_copy(d);
        for (guint i = 0; i < c->peers->len; i++) {
                WgPeer *p = c->peers->pdata[i];
                p->flags &= ~(WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_PERSISTENT_KEEPALIVE);
                p->last_handshake.tv_sec = 1700000000 + i;
                p->rx_bytes = 1000 + i;
                p->tx_bytes = 2000 + i;
                p->protocol_version = 1;
        }
        return c;
}

static void test_identical_is_empty(void)
{
        g_autoptr(WgDevice) want = device_with(50);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;

        /* Order and host bits in allowed IPs do not matter. */
        WgPeer *p = have->peers->pdata[3];
        wg_peer_add_allowed_ip_string(p, "fd00:99::3/128", NULL);
        wg_peer_add_allowed_ip_string(want->peers->pdata[3], "fd00:99::3/128", NULL);
        NmPrefix second = g_array_index(p->allowed_ips, NmPrefix, 1);
        g_array_remove_index(p->allowed_ips, 1);
        g_array_prepend_val(p->allowed_ips, second);

        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_true(wg_device_is_empty(change));
        g_assert_cmpuint(change->peers->len, ==, 0);
        g_assert_cmpstr(change->ifname, ==, "nm-test");
}

static void test_new_device(void)
{
        g_autoptr(WgDevice) want = device_with(3);
        g_autoptr(WgDevice) change = NULL;

        g_assert_cmpint(wg_device_diff(NULL, want, &change), ==, 0);
        g_assert_true(change->flags & WG_DEVICE_HAS_PRIVATE_KEY);
        g_assert_true(change->flags & WG_DEVICE_HAS_LISTEN_PORT);
        g_assert_false(change->flags & WG_DEVICE_REPLACE_PEERS);
        g_assert_cmpuint(change->listen_port, ==, 51820);
        g_assert_cmpuint(change->peers->len, ==, 3);
        for (guint i = 0; i < 3; i++) {
                WgPeer *c = change->peers->pdata[i];
                g_assert_true(c->flags & WG_PEER_HAS_ENDPOINT);
                g_assert_true(c->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE);
                g_assert_false(c->flags & (WG_PEER_UPDATE_ONLY | WG_PEER_REMOVE_ME));
                g_assert_cmpuint(c->allowed_ips->len, ==, 1);
        }
}

static void test_one_endpoint_changes(void)
{
        g_autoptr(WgDevice) want = device_with(100);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;
        WgEndpoint e;

        g_assert_cmpint(wg_endpoint_parse("198.18.7.7:40000", &e, NULL), ==, 0);
        wg_peer_set_endpoint(want->peers->pdata[41], &e);

        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->flags & ~WG_DEVICE_HAS_PUBLIC_KEY, ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 1);
        WgPeer *c = change->peers->pdata[0];
        NmKey k = key_n(42);
        g_assert_true(nm_key_equal(&c->public_key, &k));
        g_assert_cmpuint(c->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_HAS_ENDPOINT);
        g_assert_true(wg_endpoint_equal(&c->endpoint, &e));
        g_assert_cmpuint(c->allowed_ips->len, ==, 0);
}

static void test_allowed_ips_change(void)
{
        g_autoptr(WgDevice) want = device_with(10);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;
        WgPeer *w = want->peers->pdata[4];

        wg_peer_add_allowed_ip_string(w, "10.200.0.0/16", NULL);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 1);
        WgPeer *c = change->peers->pdata[0];
        g_assert_cmpuint(c->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_REPLACE_ALLOWEDIPS);
        g_assert_true(wg_allowed_ips_equal(c->allowed_ips, w->allowed_ips));
        g_assert_cmpuint(c->allowed_ips->len, ==, 2);
}

static void test_emptied_allowed_ips(void)
{
        g_autoptr(WgDevice) want = device_with(2);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;

        g_array_set_size(((WgPeer *)want->peers->pdata[1])->allowed_ips, 0);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 1);
        WgPeer *c = change->peers->pdata[0];
        g_assert_cmpuint(c->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_REPLACE_ALLOWEDIPS);
        g_assert_cmpuint(c->allowed_ips->len, ==, 0);
}

static void test_add_remove(void)
{
        g_autoptr(WgDevice) want = device_with(20);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;

        /* Peer 5 leaves, peer 777 joins. */
        g_ptr_array_remove_index(want->peers, 4);
        wg_device_add_peer(want, peer_n(777));

        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_false(change->flags & WG_DEVICE_REPLACE_PEERS);
        g_assert_cmpuint(change->peers->len, ==, 2);
        WgPeer *rm = change->peers->pdata[0], *add = change->peers->pdata[1];
        NmKey k5 = key_n(5), k777 = key_n(777);
        g_assert_true(nm_key_equal(&rm->public_key, &k5));
        g_assert_cmpuint(rm->flags, ==, WG_PEER_REMOVE_ME);
        g_assert_true(nm_key_equal(&add->public_key, &k777));
        g_assert_false(add->flags & (WG_PEER_REMOVE_ME | WG_PEER_UPDATE_ONLY));
        g_assert_cmpuint(add->allowed_ips->len, ==, 1);
}

static void test_endpoint_not_wanted_is_kept(void)
{
        g_autoptr(WgDevice) want = device_with(3);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;
        WgPeer *w = want->peers->pdata[0];

        /* The server does not know peer 1's endpoint yet, but the kernel learnt one: keep it. */
        w->flags &= ~WG_PEER_HAS_ENDPOINT;
        w->endpoint.sa.sa_family = AF_UNSPEC;
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 0);
}

static void test_device_attrs(void)
{
        g_autoptr(WgDevice) want = device_with(3);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;

        wg_device_set_listen_port(want, 51999);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->flags, ==, WG_DEVICE_HAS_LISTEN_PORT);
        g_assert_cmpuint(change->listen_port, ==, 51999);
        g_assert_cmpuint(change->peers->len, ==, 0);
        g_clear_pointer(&change, wg_device_free);

        /* A wanted port of 0 means any; the device's own choice stands. */
        wg_device_set_listen_port(want, 0);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_true(wg_device_is_empty(change));
        g_clear_pointer(&change, wg_device_free);

        NmKey priv = key_n(1234);
        priv.b[0] &= 248;
        g_assert_cmpint(wg_device_set_private_key(want, &priv), ==, 0);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->flags & WG_DEVICE_HAS_PRIVATE_KEY, !=, 0);
        g_assert_true(nm_key_equal(&change->private_key, &priv));
}

static void test_preshared_key_and_keepalive(void)
{
        g_autoptr(WgDevice) want = device_with(3);
        g_autoptr(WgDevice) have = as_reported(want);
        g_autoptr(WgDevice) change = NULL;
        NmKey psk = key_n(4321), zero = {};

        wg_peer_set_preshared_key(want->peers->pdata[2], &psk);
        wg_peer_set_persistent_keepalive(want->peers->pdata[1], 0);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 2);
        WgPeer *ka = change->peers->pdata[0], *ps = change->peers->pdata[1];
        g_assert_cmpuint(ka->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PERSISTENT_KEEPALIVE);
        g_assert_cmpuint(ka->persistent_keepalive, ==, 0);
        g_assert_cmpuint(ps->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PRESHARED_KEY);
        g_assert_true(nm_key_equal(&ps->preshared_key, &psk));
        g_clear_pointer(&change, wg_device_free);

        /* Removing a preshared key: desired says "has" with zeros, the device still holds one. */
        ((WgPeer *)have->peers->pdata[2])->preshared_key = psk;
        ((WgPeer *)have->peers->pdata[1])->persistent_keepalive = 0;
        wg_peer_set_preshared_key(want->peers->pdata[2], &zero);
        g_assert_cmpint(wg_device_diff(have, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 1);
        ps = change->peers->pdata[0];
        g_assert_cmpuint(ps->flags, ==, WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PRESHARED_KEY);
        g_assert_true(nm_key_equal(&ps->preshared_key, &zero));
}

static void test_duplicate_desired_peer(void)
{
        g_autoptr(WgDevice) want = device_with(2);
        g_autoptr(WgDevice) change = NULL;
        WgPeer *dup = peer_n(1);

        wg_peer_add_allowed_ip_string(dup, "10.77.0.0/16", NULL);
        wg_device_add_peer(want, dup);
        g_assert_cmpint(wg_device_diff(NULL, want, &change), ==, 0);
        g_assert_cmpuint(change->peers->len, ==, 2);
        g_assert_cmpuint(((WgPeer *)change->peers->pdata[0])->allowed_ips->len, ==, 1);
}

static void test_endpoint_parse(void)
{
        WgEndpoint e;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(wg_endpoint_parse("[fd00::2]:51820", &e, NULL), ==, 0);
        g_assert_cmpint(e.sa.sa_family, ==, AF_INET6);
        g_autofree char *s = wg_endpoint_to_string(&e);
        g_assert_cmpstr(s, ==, "[fd00::2]:51820");
        g_assert_cmpint(wg_endpoint_parse("[fe80::1%7]:1", &e, NULL), ==, 0);
        g_assert_cmpuint(e.in6.sin6_scope_id, ==, 7);

        const char *bad[] = {"",           "1.2.3.4",     "1.2.3.4:0",    "1.2.3.4:65536", "1.2.3.4:-1",
                             "fd00::1:80", "[fd00::1]80", "[1.2.3.4]:80", "300.1.1.1:80",  "1.2.3.4:80x",
                             "1.2.3.4: 80"};
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_clear_error(&error);
                g_assert_cmpint(wg_endpoint_parse(bad[i], &e, &error), ==, -EINVAL);
                g_assert_nonnull(error);
                g_assert_nonnull(strstr(error->message, "Invalid endpoint"));
        }
        g_assert_false(wg_ifname_valid("a-name-that-is-too-long", NULL));
        g_assert_false(wg_ifname_valid("a/b", NULL));
        g_assert_true(wg_ifname_valid("nm-office", NULL));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/wg-diff/identical-is-empty", test_identical_is_empty);
        g_test_add_func("/wg-diff/new-device", test_new_device);
        g_test_add_func("/wg-diff/one-endpoint-changes", test_one_endpoint_changes);
        g_test_add_func("/wg-diff/allowed-ips-change", test_allowed_ips_change);
        g_test_add_func("/wg-diff/emptied-allowed-ips", test_emptied_allowed_ips);
        g_test_add_func("/wg-diff/add-remove", test_add_remove);
        g_test_add_func("/wg-diff/endpoint-not-wanted-is-kept", test_endpoint_not_wanted_is_kept);
        g_test_add_func("/wg-diff/device-attrs", test_device_attrs);
        g_test_add_func("/wg-diff/preshared-key-and-keepalive", test_preshared_key_and_keepalive);
        g_test_add_func("/wg-diff/duplicate-desired-peer", test_duplicate_desired_peer);
        g_test_add_func("/wg-diff/endpoint-parse", test_endpoint_parse);
        return g_test_run();
}
