/* Proves the forwarding firewall: the rules rendered for each role (egress with and without NAT,
 * internet gateway, relay/ingress hairpin, an internet gateway's external clients that are not
 * full-tunnel clients kept from the internet, several networks), that nothing is rendered when nothing
 * forwards, and, as root in a private network namespace, that libnftables installs, replaces and
 * removes our table "inet netmaker" while an unrelated table stays byte for byte the same, and that
 * the forwarding sysctls are switched on. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <nftables/libnftables.h>

#include "firewall.h"
#include "macro.h"
#include "nm-error.h"

static bool have_netns;

static GArray *prefixes(const char *const *list)
{
        GArray *a = g_array_new(false, true, sizeof(NmPrefix));
        for (const char *const *s = list; s && *s; s++) {
                NmPrefix p;
                g_assert_cmpint(nm_prefix_parse(*s, &p, NULL), ==, 0);
                g_array_append_val(a, p);
        }
        return a;
}

static FirewallNetwork net(const char *ifname, const char *const *mesh, const char *const *egress, bool nat,
                           bool igw, bool hairpin)
{
        return (FirewallNetwork){
                .ifname = ifname,
                .mesh_ranges = prefixes(mesh),
                .egress_ranges = prefixes(egress),
                .egress_nat = nat,
                .internet_gateway = igw,
                .hairpin = hairpin,
        };
}

static void net_clear(FirewallNetwork *n)
{
        g_array_unref(n->mesh_ranges);
        g_array_unref(n->egress_ranges);
        if (n->no_internet)
                g_array_unref(n->no_internet);
}

static void test_render_nothing(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", NULL};
        FirewallNetwork n = net("nm-office", mesh, NULL, true, false, false);

        g_assert_false(firewall_network_forwards(&n));
        g_assert_null(firewall_render(NULL, 0));
        /* egress_nat alone, without ranges, forwards nothing. */
        g_assert_null(firewall_render(&n, 1));
        net_clear(&n);
}

static void test_render_egress(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", "fd00:99::/64", NULL};
        static const char *const egress[] = {"192.168.50.0/24", "192.168.60.0/24", "fd00:50::/64", NULL};
        FirewallNetwork n = net("nm-office", mesh, egress, true, false, false);
        g_autofree char *s = firewall_render(&n, 1);

        g_assert_nonnull(s);
        /* One transaction that never fails: add, delete, define. */
        g_assert_true(g_str_has_prefix(
                s, "add table inet netmaker\ndelete table inet netmaker\ntable inet netmaker {\n"));
        g_assert_nonnull(strstr(s, "type filter hook forward priority filter; policy accept;"));
        g_assert_nonnull(strstr(s, "iifname \"nm-office\" ct state established,related accept\n"));
        g_assert_nonnull(
                strstr(s, "iifname \"nm-office\" ip daddr { 192.168.50.0/24, 192.168.60.0/24 } accept\n"));
        g_assert_nonnull(strstr(s, "iifname \"nm-office\" ip6 daddr { fd00:50::/64 } accept\n"));
        g_assert_nonnull(strstr(s, "iifname \"nm-office\" drop\n"));
        g_assert_null(strstr(s, "oifname \"nm-office\" accept"));
        g_assert_null(strstr(s, "iifname \"nm-office\" oifname"));
        g_assert_nonnull(strstr(s, "type nat hook postrouting priority srcnat; policy accept;"));
        g_assert_nonnull(strstr(s,
                                "oifname != \"nm-*\" ip saddr { 10.99.0.0/24 } ip daddr { 192.168.50.0/24, "
                                "192.168.60.0/24 } masquerade\n"));
        g_assert_nonnull(strstr(s,
                                "oifname != \"nm-*\" ip6 saddr { fd00:99::/64 } ip6 daddr { fd00:50::/64 } "
                                "masquerade\n"));
        /* The drop comes after every accept of its link. */
        g_assert_true(strstr(s, "drop") > strstr(s, "ip6 daddr { fd00:50::/64 } accept"));
        net_clear(&n);

        /* Without NAT: no nat chain at all. */
        n = net("nm-office", mesh, egress, false, false, false);
        g_autofree char *t = firewall_render(&n, 1);
        g_assert_null(strstr(t, "postrouting"));
        g_assert_null(strstr(t, "masquerade"));
        net_clear(&n);
}

static void test_render_internet_gateway_and_hairpin(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", NULL};
        static const char *const mesh2[] = {"10.98.0.0/24", NULL};
        FirewallNetwork n[3] = {
                net("nm-office", mesh, NULL, false, true, false),
                net("nm-lab", mesh2, NULL, false, false, true),
                net("nm-idle", mesh2, NULL, true, false, false),
        };
        g_autofree char *s = firewall_render(n, 3);

        g_assert_nonnull(strstr(s, "iifname \"nm-office\" oifname != \"nm-*\" accept\n"));
        g_assert_nonnull(strstr(s, "oifname != \"nm-*\" ip saddr { 10.99.0.0/24 } masquerade\n"));
        g_assert_nonnull(strstr(s, "iifname \"nm-lab\" oifname \"nm-lab\" accept\n"));
        g_assert_nonnull(strstr(s, "iifname \"nm-lab\" drop\n"));
        /* The relay alone does not masquerade; the network without roles is left out. */
        g_assert_null(strstr(s, "10.98.0.0/24"));
        g_assert_null(strstr(s, "nm-idle"));
        for (size_t i = 0; i < G_N_ELEMENTS(n); i++)
                net_clear(&n[i]);
}

static void test_render_internet_for_full_tunnel_clients_only(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", "fd00:99::/64", NULL};
        static const char *const blocked[] = {"10.99.0.253/32", "fd00:99::fffd/128", "192.168.77.0/24",
                                              NULL};
        FirewallNetwork n = net("nm-office", mesh, NULL, false, true, true);
        n.no_internet = prefixes(blocked);
        g_autofree char *s = firewall_render(&n, 1);

        /* The clients that are not full-tunnel are dropped before the internet accept; the others
         * (10.99.0.254, say) go out and are masqueraded with the mesh. */
        const char *drop4 = strstr(s, "iifname \"nm-office\" ip saddr { 10.99.0.253/32, 192.168.77.0/24 } "
                                      "oifname != \"nm-*\" drop\n");
        const char *drop6 = strstr(
                s, "iifname \"nm-office\" ip6 saddr { fd00:99::fffd/128 } oifname != \"nm-*\" drop\n");
        const char *accept = strstr(s, "iifname \"nm-office\" oifname != \"nm-*\" accept\n");
        g_assert_nonnull(drop4);
        g_assert_nonnull(drop6);
        g_assert_true(accept && drop4 < accept && drop6 < accept);
        g_assert_nonnull(strstr(s, "ip saddr { 10.99.0.0/24 } masquerade"));
        /* Hairpin (to the mesh) is not affected: the clients reach the nodes. */
        g_assert_nonnull(strstr(s, "iifname \"nm-office\" oifname \"nm-office\" accept\n"));
        /* Without the internet gateway role nothing of it is rendered. */
        n.internet_gateway = false;
        g_autofree char *t = firewall_render(&n, 1);
        g_assert_null(strstr(t, "10.99.0.253"));
        net_clear(&n);
}

static char *nft(const char *cmd)
{
        struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        char *out;
        int r;

        g_assert_nonnull(ctx);
        nft_ctx_buffer_output(ctx);
        nft_ctx_buffer_error(ctx);
        r = nft_run_cmd_from_buffer(ctx, cmd);
        out = r == 0 ? g_strdup(nft_ctx_get_output_buffer(ctx)) : NULL;
        nft_ctx_free(ctx);
        return out;
}

/* Whether a command succeeds (the output is not needed). */
static bool nft_ok(const char *cmd)
{
        g_autofree char *out = nft(cmd);
        return out != NULL;
}

/* The unrelated tables, as nft prints them (with their counters). */
static char *list_other(void)
{
        g_autofree char *a = nft("list table inet other");
        g_autofree char *b = nft("list table ip filter");
        g_assert_nonnull(a);
        g_assert_nonnull(b);
        return g_strconcat(a, b, NULL);
}

static void test_apply(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", NULL};
        static const char *const egress[] = {"192.168.50.0/24", NULL};
        static const char *const egress2[] = {"192.168.70.0/24", NULL};
        g_autoptr(Firewall) f = NULL;
        g_autoptr(GError) e = NULL;
        g_autofree char *other_before = NULL, *other_after = NULL, *ours = NULL, *gone = NULL;
        FirewallNetwork n;

        if (!have_netns) {
                g_test_skip("needs root and a private network namespace");
                return;
        }
        g_assert_true(nft_ok(
                "table inet other {\n chain c {\n type filter hook forward priority 10; policy drop;\n"
                " counter\n }\n}\ntable ip filter {\n chain FORWARD {\n type filter hook forward "
                "priority 0; policy accept;\n ip daddr 10.1.2.3 drop\n }\n}\n"));
        other_before = list_other();
        g_assert_nonnull(other_before);

        g_assert_cmpint(firewall_new(&f), ==, 0);
        n = net("nm-office", mesh, egress, true, false, true);
        g_assert_cmpint(firewall_apply(f, &n, 1, &e), ==, 1);
        g_assert_no_error(e);
        ours = nft("list table inet netmaker");
        g_assert_nonnull(ours);
        g_assert_nonnull(strstr(ours, "ip daddr 192.168.50.0/24 accept"));
        g_assert_nonnull(strstr(ours, "masquerade"));
        /* The same again changes nothing (not even a transaction). */
        g_assert_cmpint(firewall_apply(f, &n, 1, &e), ==, 0);
        net_clear(&n);

        /* A changed role replaces the table as a whole. */
        n = net("nm-office", mesh, egress2, false, false, false);
        g_assert_cmpint(firewall_apply(f, &n, 1, &e), ==, 1);
        g_free(ours);
        ours = nft("list table inet netmaker");
        g_assert_nonnull(strstr(ours, "192.168.70.0/24"));
        g_assert_null(strstr(ours, "192.168.50.0/24"));
        g_assert_null(strstr(ours, "masquerade"));
        g_assert_null(strstr(ours, "oifname \"nm-office\""));
        net_clear(&n);

        /* Nothing to forward: the table goes; again is a no-op. */
        g_assert_cmpint(firewall_apply(f, NULL, 0, &e), ==, 1);
        g_assert_cmpint(firewall_apply(f, NULL, 0, &e), ==, 0);
        gone = nft("list table inet netmaker");
        g_assert_null(gone);
        /* Removing what is not there is fine, and says so. */
        g_assert_cmpint(firewall_remove(f, &e), ==, 0);
        g_assert_no_error(e);
        /* A new context (a restarted daemon) finds the table and removes it. */
        n = net("nm-office", mesh, egress, true, false, true);
        g_assert_cmpint(firewall_apply(f, &n, 1, &e), ==, 1);
        net_clear(&n);
        firewall_free(g_steal_pointer(&f));
        g_assert_true(nft_ok("list table inet netmaker"));
        g_assert_cmpint(firewall_new(&f), ==, 0);
        g_assert_cmpint(firewall_apply(f, NULL, 0, &e), ==, 1);
        g_assert_false(nft_ok("list table inet netmaker"));
        g_assert_cmpint(firewall_apply(f, NULL, 0, &e), ==, 0);
        g_assert_no_error(e);

        other_after = list_other();
        g_assert_cmpstr(other_after, ==, other_before);
}

static void test_apply_error(void)
{
        static const char *const mesh[] = {"10.99.0.0/24", NULL};
        g_autoptr(Firewall) f = NULL;
        g_autoptr(GError) e = NULL;
        FirewallNetwork n;

        if (!have_netns) {
                g_test_skip("needs root and a private network namespace");
                return;
        }
        g_assert_cmpint(firewall_new(&f), ==, 0);
        /* A name nft cannot take makes nft refuse the transaction, and the message says so. */
        n = net("nm-\"bad", mesh, NULL, false, false, true);
        g_assert_cmpint(firewall_apply(f, &n, 1, &e), <, 0);
        g_assert_error(e, NM_ERROR, NM_ERROR_INTERNAL);
        g_assert_nonnull(strstr(e->message, "inet netmaker"));
        g_assert_false(nft_ok("list table inet netmaker"));
        net_clear(&n);
}

static void test_forwarding_sysctl(void)
{
        g_autofree char *v4 = NULL;

        if (!have_netns) {
                g_test_skip("needs root and a private network namespace");
                return;
        }
        /* A new namespace starts with forwarding off. */
        g_assert_cmpint(sysctl_write("net/ipv4/ip_forward", "0"), >=, 0);
        g_assert_cmpint(firewall_enable_forwarding(AF_INET), ==, 1);
        g_assert_cmpint(firewall_enable_forwarding(AF_INET), ==, 0);
        g_assert_true(g_file_get_contents("/proc/sys/net/ipv4/ip_forward", &v4, NULL, NULL));
        g_assert_cmpstr(g_strstrip(v4), ==, "1");
        g_assert_cmpint(firewall_enable_forwarding(AF_INET6), >=, 0);
        g_assert_cmpint(sysctl_write("net/nonexistent", "1"), ==, -ENOENT);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        have_netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
        g_test_add_func("/firewall/render-nothing", test_render_nothing);
        g_test_add_func("/firewall/render-egress", test_render_egress);
        g_test_add_func("/firewall/render-internet-gateway-hairpin",
                        test_render_internet_gateway_and_hairpin);
        g_test_add_func("/firewall/render-internet-full-tunnel-only",
                        test_render_internet_for_full_tunnel_clients_only);
        g_test_add_func("/firewall/apply", test_apply);
        g_test_add_func("/firewall/apply-error", test_apply_error);
        g_test_add_func("/firewall/forwarding-sysctl", test_forwarding_sysctl);
        return g_test_run();
}
