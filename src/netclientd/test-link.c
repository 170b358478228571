/* Proves the rtnetlink link layer against the real kernel inside a private network namespace (a
 * veth pair the test makes): up/down, MTU, IPv4/IPv6 addresses, routes, the host-address list
 * used for endpoint reports, the change monitor, and clear errnos for missing links. Skipped when
 * not root (it needs CLONE_NEWNET). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "link.h"
#include "macro.h"

static struct nl_sock *rtnl;
static bool have_netns;

static NmPrefix prefix(const char *s)
{
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse(s, &p, NULL), ==, 0);
        return p;
}

static bool skip_without_netns(void)
{
        if (!have_netns)
                g_test_skip("needs root and a private network namespace");
        return !have_netns;
}

/* From the kernel over rtnetlink: /sys still shows the namespace it was mounted in. */
static struct rtnl_link *get_link(const char *ifname)
{
        struct rtnl_link *l = NULL;
        g_assert_cmpint(rtnl_link_get_kernel(rtnl, 0, ifname, &l), ==, 0);
        return l;
}

static unsigned read_flags(const char *ifname)
{
        struct rtnl_link *l = get_link(ifname);
        unsigned f = rtnl_link_get_flags(l);
        rtnl_link_put(l);
        return f;
}

static unsigned read_mtu(const char *ifname)
{
        struct rtnl_link *l = get_link(ifname);
        unsigned mtu = rtnl_link_get_mtu(l);
        rtnl_link_put(l);
        return mtu;
}

static bool has_address(const char *ifname, const char *cidr)
{
        g_autoptr(GArray) a = NULL;
        g_assert_cmpint(link_list_host_addresses(rtnl, NULL, &a), ==, 0);
        for (guint i = 0; i < a->len; i++) {
                LinkAddress *la = &g_array_index(a, LinkAddress, i);
                g_autofree char *s = nm_prefix_to_string(&la->address);
                if (streq0(la->ifname, ifname) && streq0(s, cidr))
                        return true;
        }
        return false;
}

/* True when the kernel's IPv4 table has `dest` (hex as in /proc/net/route) through ifname. */
static bool has_route4(const char *ifname, const char *dest_hex, const char *mask_hex)
{
        g_autofree char *s = NULL;
        g_auto(GStrv) lines = NULL;
        g_assert_true(g_file_get_contents("/proc/net/route", &s, NULL, NULL));
        lines = g_strsplit(s, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) f = g_strsplit_set(*l, "\t ", -1);
                if (g_strv_length(f) > 7 && streq0(f[0], ifname) && streq0(f[1], dest_hex) &&
                    streq0(f[7], mask_hex))
                        return true;
        }
        return false;
}

static bool has_route6(const char *ifname, const char *dest_hex, const char *plen_hex)
{
        g_autofree char *s = NULL;
        g_auto(GStrv) lines = NULL;
        g_assert_true(g_file_get_contents("/proc/net/ipv6_route", &s, NULL, NULL));
        lines = g_strsplit(s, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) f = g_strsplit_set(*l, " ", -1);
                guint n = g_strv_length(f);
                if (n > 9 && streq0(f[n - 1], ifname) && streq0(f[0], dest_hex) && streq0(f[1], plen_hex))
                        return true;
        }
        return false;
}

static void test_up_mtu(void)
{
        if (skip_without_netns())
                return;
        g_assert_cmpint(link_get_ifindex("nmt0"), >, 0);
        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);
        g_assert_true(read_flags("nmt0") & IFF_UP);
        g_assert_cmpint(link_set_mtu(rtnl, "nmt0", 1420), ==, 0);
        g_assert_cmpuint(read_mtu("nmt0"), ==, 1420);
        g_assert_cmpint(link_set_mtu(rtnl, "nmt0", 20), ==, -EINVAL);
        g_assert_cmpint(link_set_up(rtnl, "nmt0", false), ==, 0);
        g_assert_false(read_flags("nmt0") & IFF_UP);
        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);

        g_autofree char *kind = NULL;
        g_assert_cmpint(link_get_kind(rtnl, "nmt0", &kind), ==, 0);
        g_assert_cmpstr(kind, ==, "veth");

        g_assert_cmpint(link_get_ifindex("nosuch0"), ==, -ENODEV);
        g_assert_cmpint(link_set_up(rtnl, "nosuch0", true), ==, -ENODEV);
        g_assert_cmpint(link_delete(rtnl, "nosuch0"), ==, -ENODEV);
        g_free(g_steal_pointer(&kind));
        g_assert_cmpint(link_get_kind(rtnl, "nosuch0", &kind), ==, -ENODEV);
}

static void test_addresses_and_routes(void)
{
        NmPrefix a4 = prefix("198.18.5.1/24"), a6 = prefix("fd00:198:18:5::1/64");
        NmPrefix r4 = prefix("10.123.0.0/16"), r6 = prefix("fd77:1::/48");

        if (skip_without_netns())
                return;
        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a4), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a4), ==, 0); /* again: not an error */
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a6), ==, 0);
        g_assert_true(has_address("nmt0", "198.18.5.1/24"));

        /* Routes through the link, including host bits in the request. */
        NmPrefix r4h = prefix("10.123.45.6/16");
        g_assert_cmpint(link_route_add(rtnl, "nmt0", &r4h, 0, 0), ==, 0);
        g_assert_cmpint(link_route_add(rtnl, "nmt0", &r4, 0, 0), ==, 0); /* again: not an error */
        g_assert_true(has_route4("nmt0", "00007B0A", "0000FFFF"));
        g_assert_cmpint(link_route_add(rtnl, "nmt0", &r6, 0, 100), ==, 0);
        g_assert_true(has_route6("nmt0", "fd770001000000000000000000000000", "30"));
        g_assert_cmpint(link_route_remove(rtnl, "nmt0", &r4, 0, 0), ==, 0);
        g_assert_false(has_route4("nmt0", "00007B0A", "0000FFFF"));
        g_assert_cmpint(link_route_remove(rtnl, "nmt0", &r4, 0, 0), ==, -ESRCH);
        g_assert_cmpint(link_route_remove(rtnl, "nmt0", &r6, 0, 100), ==, 0);
        g_assert_false(has_route6("nmt0", "fd770001000000000000000000000000", "30"));

        g_assert_cmpint(link_address_remove(rtnl, "nmt0", &a4), ==, 0);
        g_assert_false(has_address("nmt0", "198.18.5.1/24"));
        g_assert_cmpint(link_address_remove(rtnl, "nmt0", &a4), ==, -EADDRNOTAVAIL);
        g_assert_cmpint(link_address_remove(rtnl, "nmt0", &a6), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nosuch0", &a4), ==, -ENODEV);
}

static void test_host_addresses(void)
{
        NmPrefix a = prefix("198.18.6.1/24"), b = prefix("198.18.7.1/24"), ll = prefix("fe80::1234/64");
        NmPrefix g6 = prefix("fd00:198:18:6::1/64");
        g_autoptr(GArray) list = NULL;

        if (skip_without_netns())
                return;
        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);
        g_assert_cmpint(link_set_up(rtnl, "nm-test", true), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &g6), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &ll), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nm-test", &b), ==, 0);

        /* "nm-" links are ours: left out; lo and link-local addresses too; IPv4 comes first. The
         * IPv6 address only shows once duplicate address detection has finished with it. */
        g_autoptr(GString) seen = g_string_new(NULL);
        bool tentative_seen = false;
        for (gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
             g_get_monotonic_time() < deadline; g_usleep(50 * 1000)) {
                g_clear_pointer(&list, g_array_unref);
                g_string_truncate(seen, 0);
                g_assert_cmpint(link_list_host_addresses(rtnl, "nm-", &list), ==, 0);
                for (guint i = 0; i < list->len; i++) {
                        LinkAddress *la = &g_array_index(list, LinkAddress, i);
                        g_autofree char *s = nm_prefix_to_string(&la->address);
                        g_string_append_printf(seen, "%s %s;", la->ifname, s);
                        g_assert_cmpint(la->ifindex, ==, link_get_ifindex(la->ifname));
                }
                if (streq0(seen->str, "nmt0 198.18.6.1/24;"))
                        tentative_seen = true;
                else
                        break;
        }
        g_test_message("IPv6 address hidden while tentative: %s", tentative_seen ? "yes" : "not observed");
        g_assert_cmpstr(seen->str, ==, "nmt0 198.18.6.1/24;nmt0 fd00:198:18:6::1/64;");

        /* A link that is down offers nothing. */
        g_assert_cmpint(link_set_up(rtnl, "nmt0", false), ==, 0);
        g_clear_pointer(&list, g_array_unref);
        g_assert_cmpint(link_list_host_addresses(rtnl, "nm-", &list), ==, 0);
        g_assert_cmpuint(list->len, ==, 0);
        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);

        link_address_remove(rtnl, "nmt0", &a);
        link_address_remove(rtnl, "nmt0", &g6);
        link_address_remove(rtnl, "nmt0", &ll);
        link_address_remove(rtnl, "nm-test", &b);
}

typedef struct Seen {
        GPtrArray *events; /* of strings */
} Seen;

static void on_event(LinkMonitor *m, const LinkEvent *ev, void *userdata)
{
        Seen *s = userdata;
        g_autofree char *a = ev->address.family ? nm_prefix_to_string(&ev->address) : g_strdup("");
        static const char *names[] = {"link-new", "link-del", "addr-new", "addr-del", "resync"};
        char ifname[IF_NAMESIZE] = "";
        if_indextoname((unsigned)ev->ifindex, ifname);
        g_ptr_array_add(s->events,
                        g_strdup_printf("%s %s %s", names[ev->type],
                                        ev->type <= LINK_EVENT_LINK_DEL ? ev->ifname : ifname, a));
}

static bool wait_for(sd_event *e, Seen *s, const char *want)
{
        gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < deadline) {
                for (guint i = 0; i < s->events->len; i++)
                        if (streq0(s->events->pdata[i], want))
                                return true;
                sd_event_run(e, 100 * 1000);
        }
        for (guint i = 0; i < s->events->len; i++)
                g_test_message("seen: %s", (char *)s->events->pdata[i]);
        return false;
}

static void test_monitor(void)
{
        g_autoptr(LinkMonitor) m = NULL;
        sd_event *e = NULL;
        Seen s = {.events = g_ptr_array_new_with_free_func(g_free)};
        NmPrefix a = prefix("198.18.8.1/24"), a6 = prefix("fd00:198:18:8::1/64");

        if (skip_without_netns())
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        g_assert_cmpint(link_monitor_new(e, on_event, &s, &m), ==, 0);

        g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a), ==, 0);
        g_assert_true(wait_for(e, &s, "addr-new nmt0 198.18.8.1/24"));
        g_assert_cmpint(link_address_add(rtnl, "nmt0", &a6), ==, 0);
        g_assert_true(wait_for(e, &s, "addr-new nmt0 fd00:198:18:8::1/64"));
        g_assert_cmpint(link_address_remove(rtnl, "nmt0", &a), ==, 0);
        g_assert_true(wait_for(e, &s, "addr-del nmt0 198.18.8.1/24"));
        g_assert_cmpint(link_set_up(rtnl, "nmt1", false), ==, 0);
        g_assert_true(wait_for(e, &s, "link-new nmt1 "));
        link_address_remove(rtnl, "nmt0", &a6);

        g_clear_pointer(&m, link_monitor_free);
        sd_event_unref(e);
        g_ptr_array_unref(s.events);
}

static void test_wireguard_kind(void)
{
        int r;

        if (skip_without_netns())
                return;
        /* Without the kernel module this is the one clear error; with it, a real link. */
        r = link_create_wireguard(rtnl, "nm-wgk0");
        if (r == -EOPNOTSUPP) {
                g_test_message("the kernel has no WireGuard: -EOPNOTSUPP as documented");
                return;
        }
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(link_create_wireguard(rtnl, "nm-wgk0"), ==, -EEXIST);
        g_autofree char *kind = NULL;
        g_assert_cmpint(link_get_kind(rtnl, "nm-wgk0", &kind), ==, 0);
        g_assert_cmpstr(kind, ==, "wireguard");
        g_assert_cmpint(link_delete(rtnl, "nm-wgk0"), ==, 0);
        g_assert_cmpint(link_get_ifindex("nm-wgk0"), ==, -ENODEV);
}

static void setup_netns(void)
{
        if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
                return;
        g_assert_cmpint(link_rtnl_open(&rtnl), ==, 0);
        /* A veth pair named like a host interface, and one named like our own links. */
        g_assert_cmpint(rtnl_link_veth_add(rtnl, "nmt0", "nmt1", getpid()), ==, 0);
        g_assert_cmpint(rtnl_link_veth_add(rtnl, "nm-test", "nm-test-peer", getpid()), ==, 0);
        g_assert_cmpint(link_set_up(rtnl, "nmt1", true), ==, 0);
        g_assert_cmpint(link_set_up(rtnl, "nm-test-peer", true), ==, 0);
        g_assert_cmpint(link_set_up(rtnl, "lo", true), ==, 0);
        have_netns = true;
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        setup_netns();
        g_test_add_func("/link/up-mtu", test_up_mtu);
        g_test_add_func("/link/addresses-and-routes", test_addresses_and_routes);
        g_test_add_func("/link/host-addresses", test_host_addresses);
        g_test_add_func("/link/monitor", test_monitor);
        g_test_add_func("/link/wireguard-kind", test_wireguard_kind);
        int r = g_test_run();
        if (rtnl)
                nl_socket_free(rtnl);
        return r;
}
