/* Benchmark for netclientd's WireGuard apply path: how long building the kernel's SET messages (and
 * the diff, and the UAPI text) takes for N peers and how many messages it needs; and, given a real
 * device, how long applying N peers through netclientd's backend takes, next to `wg setconf`.
 *
 *   bench-wg-apply [--peers N] [--ips K] [--rounds R] [--json]
 *   bench-wg-apply --device IFNAME [--backend auto|kernel|userspace] [--peers N] [--compare-wg [--wg-first]]
 *                  [--json]
 *
 * The device mode replaces the device's peers (it is meant for a throwaway link in a VM or a
 * namespace): it adds N peers, updates one, reads the device back, removes them all, and with
 * --compare-wg times `wg setconf IFNAME FILE` with the same peers for comparison: after the
 * backend, or before it with --wg-first (alternating the order between runs evens out what the
 * first one pays, such as a cold cache). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sodium.h>

#include "macro.h"
#include "wg-backend.h"
#include "wg-netlink.h"
#include "wg-uapi.h"

extern char **environ;

static unsigned arg_peers = 1000;
static unsigned arg_ips = 1;
static unsigned arg_rounds = 20;
static const char *arg_device = NULL;
static WgBackendKind arg_backend = WG_BACKEND_AUTO;
static bool arg_compare_wg = false;
static bool arg_wg_first = false;
static bool arg_json = false;

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
        qsort(v, n, sizeof(double), cmp_double);
        return n ? v[n / 2] : 0;
}

/* N peers with real keys, K allowed IPs each (IPv4 /32 first, then IPv6 /128), an endpoint and a
 * keepalive: what a Netmaker host's peer set looks like. */
static WgDevice *make_peers(const char *ifname, unsigned n, unsigned k)
{
        WgDevice *d = wg_device_new(ifname);

        for (unsigned i = 0; i < n; i++) {
                NmKey priv, pub;
                WgEndpoint e = {};
                nm_key_generate_wg(&priv, &pub);
                WgPeer *p = wg_device_add_peer(d, wg_peer_new(&pub));
                for (unsigned j = 0; j < k; j++) {
                        NmPrefix a = {};
                        if (j % 2 == 0) {
                                a.family = AF_INET;
                                a.addr.in.s_addr = htonl(0x0a000000u + i * 8 + j + 1);
                                a.prefixlen = 32;
                        } else {
                                a.family = AF_INET6;
                                a.addr.in6.s6_addr[0] = 0xfd;
                                memcpy(a.addr.in6.s6_addr + 8, &i, sizeof(i));
                                a.addr.in6.s6_addr[15] = (uint8_t)j;
                                a.prefixlen = 128;
                        }
                        wg_peer_add_allowed_ip(p, &a);
                }
                e.in.sin_family = AF_INET;
                e.in.sin_addr.s_addr = htonl(0xc6120000u + (i % 65000) + 1); /* 198.18.x.y */
                e.in.sin_port = htons((uint16_t)(20000 + i % 40000));
                wg_peer_set_endpoint(p, &e);
                wg_peer_set_persistent_keepalive(p, 25);
        }
        return d;
}

static int bench_build(void)
{
        g_autoptr(WgDevice) desired = make_peers("nm-bench", arg_peers, arg_ips);
        g_autoptr(WgDevice) current = NULL;
        g_autofree double *build = g_new0(double, arg_rounds);
        g_autofree double *diff = g_new0(double, arg_rounds);
        g_autofree double *uapi = g_new0(double, arg_rounds);
        size_t budget = wg_netlink_message_budget(), bytes = 0, max_msg = 0;
        guint nmsgs = 0;

        /* The diff case: the device holds everything and one peer's endpoint changed. */
        current = wg_device_copy(desired);
        ((WgPeer *)current->peers->pdata[arg_peers / 2])->endpoint.in.sin_port = htons(1);

        for (unsigned r = 0; r < arg_rounds; r++) {
                g_autoptr(GPtrArray) msgs = NULL;
                g_autoptr(WgDevice) change = NULL;
                g_autoptr(GError) error = NULL;
                double t0 = now_ms();

                if (wg_netlink_build_set(desired, 0x20, 0, &msgs, &error) < 0) {
                        fprintf(stderr, "build failed: %s\n", error->message);
                        return 1;
                }
                build[r] = now_ms() - t0;
                nmsgs = msgs->len;
                bytes = max_msg = 0;
                for (guint i = 0; i < msgs->len; i++) {
                        size_t len = nlmsg_hdr(msgs->pdata[i])->nlmsg_len;
                        bytes += len;
                        max_msg = MAX(max_msg, len);
                }

                t0 = now_ms();
                wg_device_diff(current, desired, &change);
                diff[r] = now_ms() - t0;
                g_assert(change->peers->len == 1);

                t0 = now_ms();
                char *text = wg_uapi_format_set(desired);
                uapi[r] = now_ms() - t0;
                nm_free_secret(text);
        }

        double b = median(build, arg_rounds), d = median(diff, arg_rounds), u = median(uapi, arg_rounds);
        if (arg_json)
                printf("{\"peers\":%u,\"ips_per_peer\":%u,\"budget\":%zu,\"messages\":%u,\"bytes\":%zu,"
                       "\"max_message\":%zu,\"build_ms\":%.3f,\"diff_one_change_ms\":%.3f,\"uapi_format_"
                       "ms\":%.3f}\n",
                       arg_peers, arg_ips, budget, nmsgs, bytes, max_msg, b, d, u);
        else {
                printf("peers: %u, allowed IPs per peer: %u, message budget: %zu bytes\n", arg_peers,
                       arg_ips, budget);
                printf("netlink SET: %u messages, %zu bytes (largest %zu), built in %.3f ms (median of "
                       "%u)\n",
                       nmsgs, bytes, max_msg, b, arg_rounds);
                printf("diff with one changed peer: %.3f ms\n", d);
                printf("UAPI set text: %.3f ms\n", u);
        }
        return 0;
}

static int run_wg_setconf(const char *ifname, const char *conf, double *ret_ms)
{
        char *argv[] = {(char *)"wg", (char *)"setconf", (char *)ifname, (char *)conf, NULL};
        pid_t pid;
        int status, r;
        double t0 = now_ms();

        r = posix_spawnp(&pid, "wg", NULL, NULL, argv, environ);
        if (r != 0)
                return -r;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        *ret_ms = now_ms() - t0;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static char *write_wg_conf(const WgDevice *d, const WgDevice *current)
{
        g_autoptr(GString) s = g_string_new("[Interface]\n");
        char k[NM_KEY_B64_LEN + 1];
        char *path = g_strdup("/tmp/bench-wg-apply-XXXXXX");
        int fd = g_mkstemp_full(path, O_WRONLY, 0600);

        if (fd < 0) {
                g_free(path);
                return NULL;
        }
        if (current->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
                nm_key_to_base64(&current->private_key, k);
                g_string_append_printf(s, "PrivateKey = %s\n", k);
        }
        g_string_append_printf(s, "ListenPort = %u\n", current->listen_port);
        for (guint i = 0; i < d->peers->len; i++) {
                const WgPeer *p = d->peers->pdata[i];
                g_autofree char *ep = wg_endpoint_to_string(&p->endpoint);
                nm_key_to_base64(&p->public_key, k);
                g_string_append_printf(
                        s,
                        "\n[Peer]\nPublicKey = %s\nEndpoint = %s\nPersistentKeepalive = %u\nAllowedIPs = ",
                        k, ep, p->persistent_keepalive);
                for (guint j = 0; j < p->allowed_ips->len; j++) {
                        g_autofree char *a =
                                nm_prefix_to_string(&g_array_index(p->allowed_ips, NmPrefix, j));
                        g_string_append_printf(s, "%s%s", j ? ", " : "", a);
                }
                g_string_append_c(s, '\n');
        }
        if (write(fd, s->str, s->len) != (ssize_t)s->len) {
                close(fd);
                unlink(path);
                g_free(path);
                return NULL;
        }
        sodium_memzero(s->str, s->len);
        close(fd);
        return path;
}

/* `wg setconf` with the peers of `desired`, twice (setconf has no delta: a one-peer change rewrites
 * the whole set again), then back to no peers. */
static int bench_wg_setconf(WgBackend *b, const WgDevice *desired, const WgDevice *current, double *ret_ms,
                            double *ret_again_ms)
{
        g_autoptr(WgDevice) empty = wg_device_new(desired->ifname);
        g_autofree char *conf = write_wg_conf(desired, current);

        if (!conf || run_wg_setconf(desired->ifname, conf, ret_ms) < 0 ||
            run_wg_setconf(desired->ifname, conf, ret_again_ms) < 0) {
                fprintf(stderr, "bench-wg-apply: wg setconf failed\n");
                if (conf)
                        unlink(conf);
                return -EIO;
        }
        unlink(conf);
        return wg_backend_sync(b, empty, NULL) < 0 ? -EIO : 0;
}

static int bench_device(void)
{
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(WgDevice) desired = make_peers(arg_device, arg_peers, arg_ips);
        g_autoptr(WgDevice) current = NULL, empty = wg_device_new(arg_device), read_back = NULL;
        g_autoptr(GError) error = NULL;
        WgBackendOptions o = {.kind = arg_backend};
        double t0, t_add, t_update, t_get, t_remove, t_setconf = -1, t_setconf_update = -1;
        int r;

        if (wg_backend_new(&o, &b, &error) < 0 || wg_backend_get(b, arg_device, &current, &error) < 0) {
                fprintf(stderr, "bench-wg-apply: %s\n", error->message);
                return 1;
        }
        /* Start from no peers (not timed). */
        if (wg_backend_sync(b, empty, &error) < 0) {
                fprintf(stderr, "bench-wg-apply: %s\n", error->message);
                return 1;
        }
        if (arg_compare_wg && arg_wg_first &&
            bench_wg_setconf(b, desired, current, &t_setconf, &t_setconf_update) < 0)
                return 1;

        t0 = now_ms();
        r = wg_backend_sync(b, desired, &error);
        t_add = now_ms() - t0;
        if (r < 0) {
                fprintf(stderr, "bench-wg-apply: adding peers: %s\n", error->message);
                return 1;
        }

        ((WgPeer *)desired->peers->pdata[arg_peers / 2])->endpoint.in.sin_port = htons(1);
        t0 = now_ms();
        r = wg_backend_sync(b, desired, &error);
        t_update = now_ms() - t0;
        if (r != 1) {
                fprintf(stderr, "bench-wg-apply: one-peer update wrote %d changes: %s\n", r,
                        error ? error->message : "");
                return 1;
        }

        t0 = now_ms();
        r = wg_backend_get(b, arg_device, &read_back, &error);
        t_get = now_ms() - t0;
        if (r < 0 || read_back->peers->len != arg_peers) {
                fprintf(stderr, "bench-wg-apply: reading back: %s\n",
                        error ? error->message : "wrong peer count");
                return 1;
        }

        t0 = now_ms();
        r = wg_backend_sync(b, empty, &error);
        t_remove = now_ms() - t0;
        if (r < 0) {
                fprintf(stderr, "bench-wg-apply: removing peers: %s\n", error->message);
                return 1;
        }

        if (arg_compare_wg && !arg_wg_first &&
            bench_wg_setconf(b, desired, current, &t_setconf, &t_setconf_update) < 0)
                return 1;

        if (arg_json)
                printf("{\"device\":\"%s\",\"backend\":\"%s\",\"peers\":%u,\"ips_per_peer\":%u,\"add_ms\":%."
                       "2f,"
                       "\"update_one_ms\":%.2f,\"get_ms\":%.2f,\"remove_all_ms\":%.2f,\"wg_setconf_ms\":%."
                       "2f,"
                       "\"wg_setconf_again_ms\":%.2f}\n",
                       arg_device, b->vtable->name, arg_peers, arg_ips, t_add, t_update, t_get, t_remove,
                       t_setconf, t_setconf_update);
        else {
                printf("device %s (%s backend), %u peers x %u allowed IPs\n", arg_device, b->vtable->name,
                       arg_peers, arg_ips);
                printf("  add all (read + diff + write): %.2f ms\n", t_add);
                printf("  update one peer (read + diff + write): %.2f ms\n", t_update);
                printf("  read back: %.2f ms\n", t_get);
                printf("  remove all: %.2f ms\n", t_remove);
                if (arg_compare_wg)
                        printf("  wg setconf (same peers): %.2f ms; again (what a one-peer change costs "
                               "it): %.2f ms\n",
                               t_setconf, t_setconf_update);
        }
        return 0;
}

int main(int argc, char **argv)
{
        /* clang-format off */
        static const struct option opts[] = {
                {"peers", required_argument, NULL, 'n'},
                {"ips", required_argument, NULL, 'k'},
                {"rounds", required_argument, NULL, 'r'},
                {"device", required_argument, NULL, 'd'},
                {"backend", required_argument, NULL, 'b'},
                {"compare-wg", no_argument, NULL, 'c'},
                {"json", no_argument, NULL, 'j'},
                {"wg-first", no_argument, NULL, 'w'},
                {},
        };
        /* clang-format on */
        int c;

        if (nm_crypto_init() < 0)
                return 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'n':
                        arg_peers = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'k':
                        arg_ips = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        arg_rounds = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        arg_device = optarg;
                        break;
                case 'b':
                        if (wg_backend_kind_from_string(optarg, &arg_backend, NULL) < 0) {
                                fprintf(stderr,
                                        "bench-wg-apply: --backend takes auto, kernel or userspace\n");
                                return 1;
                        }
                        break;
                case 'c':
                        arg_compare_wg = true;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'w':
                        arg_wg_first = true;
                        break;
                default:
                        return 1;
                }
        if (arg_peers < 2 || arg_ips < 1 || arg_rounds < 1) {
                fprintf(stderr, "bench-wg-apply: --peers >= 2, --ips >= 1 and --rounds >= 1 are accepted\n");
                return 1;
        }
        return arg_device ? bench_device() : bench_build();
}
