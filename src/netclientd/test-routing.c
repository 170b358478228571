/* Proves the policy routing layer against the real kernel in a private network namespace: the two
 * rules of an internet gateway (main with suppress_prefixlength 0, "not fwmark T lookup T") are
 * added once, read back exactly, recognised as ours among the kernel's own rules and removed; and
 * the dump of a link's static routes finds what link_route_add() made in main and in our tables
 * and nothing else. Skipped when not root. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <linux/rtnetlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "link.h"
#include "macro.h"
#include "routing.h"

static struct nl_sock *rtnl;
static bool have_netns;

static size_t count_rule(const RoutingRule *want)
{
        g_autoptr(GArray) rules = NULL;
        size_t n = 0;

        g_assert_cmpint(routing_list_rules(rtnl, &rules), ==, 0);
        for (guint i = 0; i < rules->len; i++)
                if (routing_rule_equal(&g_array_index(rules, RoutingRule, i), want))
                        n++;
        return n;
}

static void test_rule_names(void)
{
        RoutingRule r;
        g_autofree char *a = NULL, *b = NULL;

        routing_rule_main_suppress(&r, AF_INET);
        g_assert_true(routing_rule_is_ours(&r));
        a = routing_rule_to_string(&r);
        g_assert_cmpstr(a, ==, "ipv4 priority 32700 lookup main suppress_prefixlength 0");
        routing_rule_not_fwmark(&r, AF_INET6, ROUTING_TABLE_BASE | 51821);
        g_assert_true(routing_rule_is_ours(&r));
        b = routing_rule_to_string(&r);
        g_assert_cmpstr(b, ==, "ipv6 priority 32701 not fwmark 0x4e4dca6d lookup 1313720941");
        /* The kernel's own rules are not ours. */
        r = (RoutingRule){
                .family = AF_INET, .priority = 32766, .table = RT_TABLE_MAIN, .suppress_prefixlength = -1};
        g_assert_false(routing_rule_is_ours(&r));
        r = (RoutingRule){.family = AF_INET,
                          .priority = ROUTING_PRIORITY_TABLE,
                          .table = 100,
                          .suppress_prefixlength = -1};
        g_assert_false(routing_rule_is_ours(&r));
}

static void test_rules(void)
{
        static const int families[] = {AF_INET, AF_INET6};
        uint32_t table = ROUTING_TABLE_BASE | 51821;

        if (!have_netns) {
                g_test_skip("needs root and a private network namespace");
                return;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
                RoutingRule sup, mark;
                g_autoptr(GArray) rules = NULL;
                unsigned ours = 0;

                routing_rule_main_suppress(&sup, families[i]);
                routing_rule_not_fwmark(&mark, families[i], table);
                g_assert_cmpuint(count_rule(&sup), ==, 0);
                g_assert_cmpint(routing_rule_add(rtnl, &sup), ==, 0);
                g_assert_cmpint(routing_rule_add(rtnl, &mark), ==, 0);
                /* Adding again neither fails nor duplicates. */
                g_assert_cmpint(routing_rule_add(rtnl, &sup), ==, 0);
                g_assert_cmpint(routing_rule_add(rtnl, &mark), ==, 0);
                g_assert_cmpuint(count_rule(&sup), ==, 1);
                g_assert_cmpuint(count_rule(&mark), ==, 1);

                g_assert_cmpint(routing_list_rules(rtnl, &rules), ==, 0);
                for (guint j = 0; j < rules->len; j++) {
                        const RoutingRule *r = &g_array_index(rules, RoutingRule, j);
                        if (r->family == families[i] && routing_rule_is_ours(r))
                                ours++;
                }
                g_assert_cmpuint(ours, ==, 2);

                g_assert_cmpint(routing_rule_remove(rtnl, &mark), ==, 0);
                g_assert_cmpint(routing_rule_remove(rtnl, &sup), ==, 0);
                g_assert_cmpuint(count_rule(&sup), ==, 0);
                g_assert_cmpuint(count_rule(&mark), ==, 0);
                g_assert_cmpint(routing_rule_remove(rtnl, &mark), ==, -ENOENT);
        }
}

static bool has_route(GArray *routes, const char *cidr, uint32_t table)
{
        for (guint i = 0; i < routes->len; i++) {
                const RoutingRoute *r = &g_array_index(routes, RoutingRoute, i);
                g_autofree char *s = nm_prefix_to_string(&r->destination);
                if (streq0(s, cidr) && r->table == table)
                        return true;
        }
        return false;
}

static void test_link_routes(void)
{
        uint32_t table = ROUTING_TABLE_BASE | 51821;
        g_autoptr(GArray) routes = NULL;
        NmPrefix p;
        int idx;

        if (!have_netns) {
                g_test_skip("needs root and a private network namespace");
                return;
        }
        idx = link_get_ifindex("nm-test");
        g_assert_cmpint(idx, >, 0);
        g_assert_cmpint(nm_prefix_parse("10.99.0.1/24", &p, NULL), ==, 0);
        g_assert_cmpint(link_address_add(rtnl, "nm-test", &p), ==, 0);
        g_assert_cmpint(nm_prefix_parse("192.168.50.0/24", &p, NULL), ==, 0);
        g_assert_cmpint(link_route_add(rtnl, "nm-test", &p, 0, 0), ==, 0);
        g_assert_cmpint(nm_prefix_parse("0.0.0.0/0", &p, NULL), ==, 0);
        g_assert_cmpint(link_route_add(rtnl, "nm-test", &p, table, 0), ==, 0);
        g_assert_cmpint(nm_prefix_parse("::/0", &p, NULL), ==, 0);
        g_assert_cmpint(link_route_add(rtnl, "nm-test", &p, table, 0), ==, 0);
        /* On the other link: not listed. */
        g_assert_cmpint(nm_prefix_parse("192.168.60.0/24", &p, NULL), ==, 0);
        g_assert_cmpint(link_route_add(rtnl, "nmt0", &p, 0, 0), ==, 0);

        g_assert_cmpint(routing_list_link_routes(rtnl, idx, &routes), ==, 0);
        g_assert_true(has_route(routes, "192.168.50.0/24", RT_TABLE_MAIN));
        g_assert_true(has_route(routes, "0.0.0.0/0", table));
        g_assert_true(has_route(routes, "::/0", table));
        g_assert_false(has_route(routes, "192.168.60.0/24", RT_TABLE_MAIN));
        /* The subnet route of the address is the kernel's, not ours. */
        g_assert_false(has_route(routes, "10.99.0.0/24", RT_TABLE_MAIN));
        g_assert_cmpuint(routes->len, ==, 3);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
                g_assert_cmpint(link_rtnl_open(&rtnl), ==, 0);
                g_assert_cmpint(rtnl_link_veth_add(rtnl, "nmt0", "nm-test", getpid()), ==, 0);
                g_assert_cmpint(link_set_up(rtnl, "nmt0", true), ==, 0);
                g_assert_cmpint(link_set_up(rtnl, "nm-test", true), ==, 0);
                have_netns = true;
        }
        g_test_add_func("/routing/rule-names", test_rule_names);
        g_test_add_func("/routing/rules", test_rules);
        g_test_add_func("/routing/link-routes", test_link_routes);
        int r = g_test_run();
        if (rtnl)
                nl_socket_free(rtnl);
        return r;
}
