/* Proves address and prefix parsing refuses malformed input with clear messages, and that
 * overlap, containment and host arithmetic are right for IPv4 and IPv6. */
#include <arpa/inet.h>
#include <string.h>

#include "cidr.h"
#include "nm-error.h"

static NmPrefix P(const char *s)
{
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse(s, &p, NULL), ==, 0);
        return p;
}

static void test_parse(void)
{
        NmPrefix p = P("10.99.0.0/24");
        g_assert_cmpint(p.family, ==, AF_INET);
        g_assert_cmpuint(p.prefixlen, ==, 24);
        g_assert_true(nm_prefix_is_canonical(&p));
        g_autofree char *s = nm_prefix_to_string(&p);
        g_assert_cmpstr(s, ==, "10.99.0.0/24");

        NmPrefix h = P("10.99.0.5/24");
        g_assert_false(nm_prefix_is_canonical(&h));
        nm_prefix_canonicalize(&h);
        g_assert_true(nm_prefix_equal(&h, &p));

        NmPrefix v6 = P("fd00:99::/64");
        g_assert_cmpint(v6.family, ==, AF_INET6);
        NmPrefix host = P("192.0.2.1");
        g_assert_cmpuint(host.prefixlen, ==, 32);

        const char *bad[] = {
                "",           "10.0.0.0/33", "10.0.0.0/",     "10.0.0.0/-1", "10.0.0.0/2x", "300.0.0.0/8",
                "fd00::/129", "hello/8",     "10.0.0.0/0024", "10.0.0.0 /24"};
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) e = NULL;
                NmPrefix x;
                g_assert_cmpint(nm_prefix_parse(bad[i], &x, &e), ==, -EINVAL);
                g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
        }
        g_autoptr(GError) e = NULL;
        NmPrefix x;
        nm_prefix_parse("10.0.0.0/33", &x, &e);
        g_assert_nonnull(strstr(e->message, "\"10.0.0.0/33\""));
        g_assert_nonnull(strstr(e->message, "0-32"));
}

static void test_overlap(void)
{
        NmPrefix a = P("10.0.0.0/16"), b = P("10.0.5.0/24"), c = P("10.1.0.0/16"), d = P("fd00::/64");
        g_assert_true(nm_prefix_overlaps(&a, &b));
        g_assert_true(nm_prefix_overlaps(&b, &a));
        g_assert_false(nm_prefix_overlaps(&a, &c));
        g_assert_false(nm_prefix_overlaps(&a, &d));
        NmPrefix e = P("fd00::/48");
        g_assert_true(nm_prefix_overlaps(&d, &e));
        int f;
        NmInAddr addr;
        g_assert_cmpint(nm_addr_parse("10.0.5.7", &f, &addr), ==, 0);
        g_assert_true(nm_prefix_contains(&b, f, &addr));
        g_assert_false(nm_prefix_contains(&c, f, &addr));
}

static void test_nth(void)
{
        NmPrefix p = P("10.99.1.0/24");
        NmInAddr a;
        nm_prefix_nth(&p, 1, &a);
        g_autofree char *s1 = nm_addr_to_string(AF_INET, &a);
        g_assert_cmpstr(s1, ==, "10.99.1.1");
        nm_prefix_nth(&p, 255, &a);
        g_autofree char *s2 = nm_addr_to_string(AF_INET, &a);
        g_assert_cmpstr(s2, ==, "10.99.1.255");
        g_assert_cmpuint(nm_prefix_index_of(&p, &a), ==, 255);
        g_assert_cmpuint(nm_prefix_host_bits(&p), ==, 8);

        NmPrefix q = P("10.99.0.0/16");
        nm_prefix_nth(&q, 256 + 3, &a);
        g_autofree char *s3 = nm_addr_to_string(AF_INET, &a);
        g_assert_cmpstr(s3, ==, "10.99.1.3");

        NmPrefix v6 = P("fd00:99::/64");
        nm_prefix_nth(&v6, 0x1234, &a);
        g_autofree char *s4 = nm_addr_to_string(AF_INET6, &a);
        g_assert_cmpstr(s4, ==, "fd00:99::1234");
        g_assert_cmpuint(nm_prefix_index_of(&v6, &a), ==, 0x1234);
        g_assert_cmpuint(nm_prefix_host_bits(&v6), ==, 63);
}

static void test_endpoint(void)
{
        int f;
        NmInAddr a;
        uint16_t port;
        g_assert_cmpint(nm_endpoint_parse("198.18.0.2:51821", &f, &a, &port), ==, 0);
        g_assert_cmpint(f, ==, AF_INET);
        g_assert_cmpuint(port, ==, 51821);
        g_assert_cmpint(nm_endpoint_parse("[fd00::2]:1", &f, &a, &port), ==, 0);
        g_assert_cmpint(f, ==, AF_INET6);
        g_autofree char *s = nm_endpoint_to_string(f, &a, port);
        g_assert_cmpstr(s, ==, "[fd00::2]:1");
        const char *bad[] = {
                "198.18.0.2",   "198.18.0.2:0", "198.18.0.2:65536", "fd00::2:51821", "[fd00::2]51821",
                "[10.0.0.1]:5", "x:1",          "1.2.3.4:+5",       "1.2.3.4:",      ":5"};
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
                g_assert_cmpint(nm_endpoint_parse(bad[i], &f, &a, &port), ==, -EINVAL);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cidr/parse", test_parse);
        g_test_add_func("/cidr/overlap", test_overlap);
        g_test_add_func("/cidr/nth", test_nth);
        g_test_add_func("/cidr/endpoint", test_endpoint);
        return g_test_run();
}
