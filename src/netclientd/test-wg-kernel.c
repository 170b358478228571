/* Proves the kernel WireGuard backend against the real kernel, inside a private network namespace:
 * link creation, a 2000-peer set written over many netlink messages and read back whole (the dump
 * merges peers split across parts), one-peer updates that leave the other peers' state alone,
 * removals, and clear errors. Skipped where the kernel has no WireGuard (e.g. this project's
 * build hosts); it runs in the VM tier. Needs root. */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "macro.h"
#include "wg-backend.h"

#define IFNAME "nm-wgktest"

static bool usable;

static bool skip(void)
{
        if (!usable)
                g_test_skip("needs root and a kernel with WireGuard");
        return !usable;
}

static WgDevice *desired_with(unsigned n, GRand *rand)
{
        WgDevice *d = wg_device_new(IFNAME);
        NmKey priv, pub;

        g_assert_cmpint(nm_key_generate_wg(&priv, &pub), ==, 0);
        g_assert_cmpint(wg_device_set_private_key(d, &priv), ==, 0);
        wg_device_set_listen_port(d, 51999);
        for (unsigned i = 0; i < n; i++) {
                WgPeer *p;
                WgEndpoint e = {};

                g_assert_cmpint(nm_key_generate_wg(&priv, &pub), ==, 0);
                p = wg_device_add_peer(d, wg_peer_new(&pub));
                unsigned nips = (unsigned)g_rand_int_range(rand, 1, 4);
                for (unsigned j = 0; j < nips; j++) {
                        NmPrefix a = {.family = AF_INET, .prefixlen = 32};
                        a.addr.in.s_addr = htonl(0x0a000000u + i * 4 + j);
                        wg_peer_add_allowed_ip(p, &a);
                }
                e.in.sin_family = AF_INET;
                e.in.sin_addr.s_addr = htonl(0xc6120000u + i + 1);
                e.in.sin_port = htons(51820);
                wg_peer_set_endpoint(p, &e);
                wg_peer_set_persistent_keepalive(p, 25);
        }
        return d;
}

static void assert_same(const WgDevice *want, const WgDevice *got)
{
        g_assert_cmpuint(got->peers->len, ==, want->peers->len);
        g_assert_true(nm_key_equal(&got->public_key, &want->public_key));
        g_assert_cmpuint(got->listen_port, ==, want->listen_port);
        for (guint i = 0; i < want->peers->len; i++) {
                const WgPeer *w = want->peers->pdata[i];
                const WgPeer *g = wg_device_find_peer(got, &w->public_key);
                g_assert_nonnull(g);
                g_assert_true(wg_allowed_ips_equal(w->allowed_ips, g->allowed_ips));
                g_assert_true(wg_endpoint_equal(&w->endpoint, &g->endpoint));
                g_assert_cmpuint(g->persistent_keepalive, ==, w->persistent_keepalive);
        }
}

static void test_kernel_backend(void)
{
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GRand) rand = g_rand_new_with_seed(42);
        g_autoptr(WgDevice) want = NULL, got = NULL;
        WgBackendOptions o = {.kind = WG_BACKEND_AUTO};
        int r;

        if (skip())
                return;
        g_assert_cmpint(wg_backend_new(&o, &b, &error), ==, 0);
        g_assert_cmpstr(b->vtable->name, ==, "kernel");

        g_assert_cmpint(wg_backend_exists(b, IFNAME), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, IFNAME, &error), ==, 0);
        g_assert_cmpint(wg_backend_exists(b, IFNAME), ==, 1);
        g_assert_cmpint(wg_backend_link_create(b, IFNAME, &error), ==, -EEXIST);
        g_assert_nonnull(strstr(error->message, IFNAME));
        g_clear_error(&error);

        /* 2000 peers: dozens of SET messages, and a multi-part dump to read them back; one of them
         * a gateway with 3000 routes, continued over several messages both ways. */
        want = desired_with(2000, rand);
        WgPeer *gw = want->peers->pdata[0];
        for (unsigned i = 0; i < 3000; i++) {
                NmPrefix a = {.family = AF_INET, .prefixlen = 24};
                a.addr.in.s_addr = htonl(0x64000000u + (i << 8));
                wg_peer_add_allowed_ip(gw, &a);
        }
        r = wg_backend_sync(b, want, &error);
        g_assert_no_error(error);
        g_assert_cmpint(r, ==, 2001);
        g_assert_cmpint(wg_backend_get(b, IFNAME, &got, &error), ==, 0);
        assert_same(want, got);
        g_assert_cmpint(wg_backend_sync(b, want, &error), ==, 0);

        /* One peer: new endpoint and another allowed IP; one removed; one added. */
        WgPeer *p = want->peers->pdata[1000];
        p->endpoint.in.sin_port = htons(4000);
        wg_peer_add_allowed_ip_string(p, "10.250.0.0/16", NULL);
        g_ptr_array_remove_index(want->peers, 5);
        NmKey k, kp;
        nm_key_generate_wg(&kp, &k);
        WgPeer *n = wg_device_add_peer(want, wg_peer_new(&k));
        wg_peer_add_allowed_ip_string(n, "10.251.0.1/32", NULL);
        g_assert_cmpint(wg_backend_sync(b, want, &error), ==, 3);
        g_clear_pointer(&got, wg_device_free);
        g_assert_cmpint(wg_backend_get(b, IFNAME, &got, &error), ==, 0);
        assert_same(want, got);

        /* All gone, then the link. */
        g_autoptr(WgDevice) empty = wg_device_new(IFNAME);
        g_assert_cmpint(wg_backend_sync(b, empty, &error), ==, 2000);
        g_clear_pointer(&got, wg_device_free);
        g_assert_cmpint(wg_backend_get(b, IFNAME, &got, &error), ==, 0);
        g_assert_cmpuint(got->peers->len, ==, 0);
        g_assert_cmpint(wg_backend_link_delete(b, IFNAME, &error), ==, 0);
        g_assert_cmpint(wg_backend_exists(b, IFNAME), ==, 0);

        /* Errors name the interface. */
        g_clear_pointer(&got, wg_device_free);
        g_assert_cmpint(wg_backend_get(b, IFNAME, &got, &error), ==, -ENODEV);
        g_assert_nonnull(strstr(error->message, IFNAME));
        g_clear_error(&error);
        g_assert_cmpint(wg_backend_set(b, want, &error), ==, -ENODEV);
        g_assert_nonnull(strstr(error->message, IFNAME));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        usable = geteuid() == 0 && unshare(CLONE_NEWNET) >= 0 && wg_kernel_available();
        g_test_add_func("/wg-kernel/backend", test_kernel_backend);
        return g_test_run();
}
