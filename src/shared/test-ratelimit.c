/* Proves the per-source token buckets: a source gets its burst at once and then one request per
 * period/burst, with the wait until the next one; sources are independent (IPv4 by address, also
 * IPv4-mapped, IPv6 by /64 or by whole address when asked, Unix sockets as one); no window of random traffic
 * lets a source through more than the bucket allows; and a flood of addresses never grows the table past its
 * bound, never evicts busy sources, and leaves the newcomers one shared bucket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "keys.h"
#include "macro.h"
#include "ratelimit.h"

#define SEC 1000000ULL

static struct sockaddr_storage addr(const char *text)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
                in->sin_family = AF_INET;
        else {
                g_assert_cmpint(inet_pton(AF_INET6, text, &in6->sin6_addr), ==, 1);
                in6->sin6_family = AF_INET6;
        }
        return ss;
}

static int check(RateLimit *rl, const char *text, uint64_t now, uint64_t *retry)
{
        struct sockaddr_storage ss = addr(text);
        return ratelimit_check(rl, (struct sockaddr *)&ss, now, retry);
}

static void test_burst_then_refill(void)
{
        g_autoptr(RateLimit) rl = NULL;
        uint64_t retry = 0;
        const uint64_t t0 = 1000 * SEC;

        g_assert_cmpint(ratelimit_new(0, 60 * SEC, 10, &rl), ==, -EINVAL);
        g_assert_cmpint(ratelimit_new(3, 0, 10, &rl), ==, -EINVAL);
        g_assert_cmpint(ratelimit_new(3, 60 * SEC, 0, &rl), ==, -EINVAL);
        /* 3 per 3 s: three at once, then one a second. */
        g_assert_cmpint(ratelimit_new(3, 3 * SEC, 10, &rl), ==, 0);
        for (unsigned i = 0; i < 3; i++)
                g_assert_cmpint(check(rl, "192.0.2.1", t0, NULL), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t0, &retry), ==, -EBUSY);
        g_assert_cmpuint(retry, ==, 1 * SEC);
        /* Refused requests cost nothing: the wait only shrinks. */
        g_assert_cmpint(check(rl, "192.0.2.1", t0 + SEC / 2, &retry), ==, -EBUSY);
        g_assert_cmpuint(retry, ==, SEC / 2);
        g_assert_cmpint(check(rl, "192.0.2.1", t0 + SEC, NULL), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t0 + SEC, &retry), ==, -EBUSY);
        g_assert_cmpuint(retry, ==, 1 * SEC);
        /* A long pause refills the bucket, but never beyond the burst. */
        const uint64_t t1 = t0 + 3600 * SEC;
        for (unsigned i = 0; i < 3; i++)
                g_assert_cmpint(check(rl, "192.0.2.1", t1, NULL), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t1, &retry), ==, -EBUSY);
        g_assert_cmpuint(retry, ==, 1 * SEC);
}

static void test_sources(void)
{
        g_autoptr(RateLimit) rl = NULL;
        const uint64_t t = 5 * SEC;

        g_assert_cmpint(ratelimit_new(1, 60 * SEC, 100, &rl), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t, NULL), ==, -EBUSY);
        /* Another IPv4 address is another source; the same one through a dual-stack socket is not. */
        g_assert_cmpint(check(rl, "192.0.2.2", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "::ffff:192.0.2.1", t, NULL), ==, -EBUSY);
        g_assert_cmpint(check(rl, "::ffff:192.0.2.3", t, NULL), ==, 0);
        /* IPv6 by /64: the other addresses of one subscriber share its bucket. */
        g_assert_cmpint(check(rl, "2001:db8:1:2::1", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "2001:db8:1:2:ffff:ffff:ffff:ffff", t, NULL), ==, -EBUSY);
        g_assert_cmpint(check(rl, "2001:db8:1:3::1", t, NULL), ==, 0);
        /* A Unix socket (a local proxy) and an unknown address are one source. */
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        g_assert_cmpint(ratelimit_check(rl, (struct sockaddr *)&un, t, NULL), ==, 0);
        g_assert_cmpint(ratelimit_check(rl, NULL, t, NULL), ==, -EBUSY);
        g_assert_cmpuint(ratelimit_n_sources(rl), ==, 6);

        struct sockaddr_storage a = addr("::ffff:192.0.2.9"), b = addr("2001:db8:1:2:3:4:5:6");
        g_autofree char *na = ratelimit_source_name((struct sockaddr *)&a);
        g_autofree char *nb = ratelimit_source_name((struct sockaddr *)&b);
        g_autofree char *nu = ratelimit_source_name((struct sockaddr *)&un);
        g_assert_cmpstr(na, ==, "192.0.2.9");
        g_assert_cmpstr(nb, ==, "2001:db8:1:2::/64");
        g_assert_cmpstr(nu, ==, "local");
}

static void test_ipv6_prefix(void)
{
        g_autoptr(RateLimit) rl = NULL;
        const uint64_t t = 5 * SEC;

        g_assert_cmpint(ratelimit_new(1, 60 * SEC, 100, &rl), ==, 0);
        g_assert_cmpint(ratelimit_set_ipv6_prefix(rl, 0), ==, -EINVAL);
        g_assert_cmpint(ratelimit_set_ipv6_prefix(rl, 63), ==, -EINVAL);
        g_assert_cmpint(ratelimit_set_ipv6_prefix(rl, 136), ==, -EINVAL);
        g_assert_cmpint(ratelimit_set_ipv6_prefix(rl, 128), ==, 0);
        /* Two clients of one mesh /64 are two sources; the same address again is not. */
        g_assert_cmpint(check(rl, "fd00:99::1", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "fd00:99::2", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "fd00:99::1", t, NULL), ==, -EBUSY);
        /* IPv4 is unchanged. */
        g_assert_cmpint(check(rl, "192.0.2.1", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "192.0.2.1", t, NULL), ==, -EBUSY);
}

static void test_flood_of_addresses(void)
{
        g_autoptr(RateLimit) rl = NULL;
        uint64_t t = 10 * SEC;
        char text[64];

        /* 2 per minute, room for 8 sources. */
        g_assert_cmpint(ratelimit_new(2, 60 * SEC, 8, &rl), ==, 0);
        for (unsigned i = 0; i < 8; i++) {
                snprintf(text, sizeof(text), "198.51.100.%u", i);
                g_assert_cmpint(check(rl, text, t, NULL), ==, 0);
        }
        g_assert_false(ratelimit_overflow_notice(rl, t));
        g_assert_cmpuint(ratelimit_burst(rl), ==, 2);
        g_assert_cmpuint(ratelimit_period_usec(rl), ==, 60 * SEC);
        /* 100000 more addresses within the minute: the table stays at 8, and together the
         * newcomers get one bucket's worth. */
        unsigned allowed = 0;
        for (unsigned i = 0; i < 100000; i++) {
                snprintf(text, sizeof(text), "10.%u.%u.%u", i >> 16, (i >> 8) & 0xff, i & 0xff);
                allowed += check(rl, text, t + i, NULL) == 0;
                g_assert_cmpuint(ratelimit_n_sources(rl), <=, 8);
        }
        g_assert_cmpuint(allowed, <=, 2 + 1); /* the burst, and what refilled in 0.1 s */
        /* That is worth one notice a period. */
        g_assert_true(ratelimit_overflow_notice(rl, t + 100000));
        g_assert_false(ratelimit_overflow_notice(rl, t + 100000));
        snprintf(text, sizeof(text), "10.200.0.1");
        g_assert_cmpint(check(rl, text, t + 100001, NULL), ==, -EBUSY);
        g_assert_false(ratelimit_overflow_notice(rl, t + 100001));
        /* The sources that were there keep their own buckets (one request left each). */
        g_assert_cmpint(check(rl, "198.51.100.3", t + 200000, NULL), ==, 0);
        g_assert_cmpint(check(rl, "198.51.100.3", t + 200000, NULL), ==, -EBUSY);

        /* A period later every tracked bucket is full again: they are forgotten, and new sources
         * get places of their own. */
        t += 61 * SEC;
        g_assert_cmpint(check(rl, "203.0.113.1", t, NULL), ==, 0);
        g_assert_cmpuint(ratelimit_n_sources(rl), ==, 1);
        g_assert_cmpint(check(rl, "203.0.113.1", t, NULL), ==, 0);
        g_assert_cmpint(check(rl, "203.0.113.1", t, NULL), ==, -EBUSY);
        /* The overflow of the last period is told once it is over (not again for the same). */
        g_assert_true(ratelimit_overflow_notice(rl, t));
        g_assert_false(ratelimit_overflow_notice(rl, t + 120 * SEC));
}

static void test_random_traffic_never_exceeds_the_bucket(void)
{
        const unsigned burst = 5, n_sources = 6;
        const uint64_t period = 10 * SEC, cost = period / burst;
        g_autoptr(RateLimit) rl = NULL;
        g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
        GArray *times[6] = {};
        uint64_t now = 1 * SEC;

        /* A table smaller than the sources, so forgetting and the shared bucket take part too. */
        g_assert_cmpint(ratelimit_new(burst, period, 4, &rl), ==, 0);
        for (unsigned i = 0; i < n_sources; i++)
                times[i] = g_array_new(false, false, sizeof(uint64_t));
        for (unsigned i = 0; i < 20000; i++) {
                now += g_rand_int_range(rand, 0, 2) ? (uint64_t)g_rand_int_range(rand, 0, (gint32)SEC) : 0;
                unsigned src = (unsigned)g_rand_int_range(rand, 0, (gint32)n_sources);
                char text[32];
                snprintf(text, sizeof(text), "192.0.2.%u", src + 1);
                uint64_t retry = 0;
                if (check(rl, text, now, &retry) == 0)
                        g_array_append_val(times[src], now);
                else
                        g_assert_cmpuint(retry, <=, cost);
        }
        /* In any window of length w, a source gets at most the burst plus one per `cost` (a
         * newcomer sharing the overflow bucket gets less, never more). */
        unsigned total = 0;
        for (unsigned i = 0; i < n_sources; i++) {
                const uint64_t *t = (const uint64_t *)times[i]->data;
                for (guint a = 0; a < times[i]->len; a++)
                        for (guint b = a; b < times[i]->len; b++)
                                g_assert_cmpuint(b - a + 1, <=, burst + (t[b] - t[a]) / cost);
                total += times[i]->len;
                g_array_unref(times[i]);
        }
        g_assert_cmpuint(total, >, 0);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/ratelimit/burst-then-refill", test_burst_then_refill);
        g_test_add_func("/ratelimit/sources", test_sources);
        g_test_add_func("/ratelimit/ipv6-prefix", test_ipv6_prefix);
        g_test_add_func("/ratelimit/flood-of-addresses", test_flood_of_addresses);
        g_test_add_func("/ratelimit/random-traffic", test_random_traffic_never_exceeds_the_bucket);
        return g_test_run();
}
