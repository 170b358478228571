/* Proves address allocation: IPv4 skips the network and broadcast addresses, IPv6 starts at ::1,
 * freed addresses are reused lowest first, a full range says so, and listen ports avoid the
 * host's other links. */
#include <errno.h>

#include "ipam.h"
#include "macro.h"

static NmPrefix P(const char *s)
{
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse(s, &p, NULL), ==, 0);
        return p;
}

static char *alloc(const char *range, const char *const *used)
{
        NmPrefix p = P(range);
        char *ret = NULL;
        int r = ipam_allocate(&p, used, used ? g_strv_length((char **)used) : 0, &ret);
        if (r == -ENOSPC)
                return NULL;
        g_assert_cmpint(r, ==, 0);
        return ret;
}

static void test_v4(void)
{
        g_autofree char *a = alloc("10.99.0.0/24", NULL);
        g_assert_cmpstr(a, ==, "10.99.0.1");
        g_autofree char *b = alloc("10.99.0.0/24", (const char *[]){"10.99.0.1", "10.99.0.2", NULL});
        g_assert_cmpstr(b, ==, "10.99.0.3");
        /* Carries into the next byte. */
        g_autofree char *c = alloc("10.99.0.0/23", (const char *[]){"10.99.0.255", NULL});
        g_assert_cmpstr(c, ==, "10.99.0.1");
        NmPrefix p = P("10.99.0.0/24");
        g_assert_cmpuint(ipam_capacity(&p), ==, 254);
        p = P("10.0.0.0/8");
        g_assert_cmpuint(ipam_capacity(&p), ==, 16777214);
}

static void test_v6(void)
{
        g_autofree char *a = alloc("fd00:99::/64", NULL);
        g_assert_cmpstr(a, ==, "fd00:99::1");
        g_autofree char *b = alloc("fd00:99::/64", (const char *[]){"fd00:99::1", NULL});
        g_assert_cmpstr(b, ==, "fd00:99::2");
        /* /126: ::1, ::2, ::3 (no broadcast in IPv6). */
        g_autofree char *c = alloc("fd00:99::/126", (const char *[]){"fd00:99::1", "fd00:99::2", NULL});
        g_assert_cmpstr(c, ==, "fd00:99::3");
        NmPrefix p = P("fd00:99::/126");
        g_assert_cmpuint(ipam_capacity(&p), ==, 3);
}

static void test_exhaustion(void)
{
        g_autofree char *full = alloc("10.0.0.0/30", (const char *[]){"10.0.0.1", "10.0.0.2", NULL});
        g_assert_null(full);
        g_autofree char *full6 =
                alloc("fd00::/126", (const char *[]){"fd00::3", "fd00::1", "fd00::2", NULL});
        g_assert_null(full6);
        NmPrefix p = P("10.0.0.0/30");
        g_assert_cmpuint(ipam_capacity(&p), ==, 2);
}

static void test_reuse(void)
{
        /* .2 was freed: it is taken before .4. */
        g_autofree char *a = alloc("10.0.0.0/24", (const char *[]){"10.0.0.1", "10.0.0.3", NULL});
        g_assert_cmpstr(a, ==, "10.0.0.2");
        /* Addresses outside the range (or garbage) do not count. */
        g_autofree char *b = alloc("10.0.0.0/24", (const char *[]){"10.0.1.1", "bogus", "10.0.0.1", NULL});
        g_assert_cmpstr(b, ==, "10.0.0.2");
        g_autofree char *c = alloc("fd00::/64", (const char *[]){"fd00::2", NULL});
        g_assert_cmpstr(c, ==, "fd00::1");
}

static void test_ports(void)
{
        g_assert_cmpuint(ipam_pick_port(51821, NULL, 0), ==, 51821);
        guint16 used[] = {51821, 51822};
        g_assert_cmpuint(ipam_pick_port(51821, used, 2), ==, 51823);
        guint16 top[] = {65535};
        g_assert_cmpuint(ipam_pick_port(65535, top, 1), ==, 1024);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/ipam/v4", test_v4);
        g_test_add_func("/ipam/v6", test_v6);
        g_test_add_func("/ipam/exhaustion", test_exhaustion);
        g_test_add_func("/ipam/reuse", test_reuse);
        g_test_add_func("/ipam/ports", test_ports);
        return g_test_run();
}
