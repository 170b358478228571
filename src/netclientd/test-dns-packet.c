/* Proves the mesh DNS responder answers A/AAAA for its names, says NXDOMAIN/NODATA correctly,
 * refuses names outside its zones, and survives malformed, truncated and hostile packets. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/types.h>

#include "dns-packet.h"

static size_t build_query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
        memset(buf, 0, 12);
        buf[0] = (uint8_t) (id >> 8);
        buf[1] = (uint8_t) id;
        buf[2] = 0x01; /* RD */
        buf[5] = 1;
        size_t n = 12;
        g_auto(GStrv) labels = g_strsplit(name, ".", -1);
        for (char **l = labels; *l; l++) {
                size_t len = strlen(*l);
                buf[n++] = (uint8_t) len;
                memcpy(buf + n, *l, len);
                n += len;
        }
        buf[n++] = 0;
        buf[n++] = (uint8_t) (qtype >> 8);
        buf[n++] = (uint8_t) qtype;
        buf[n++] = 0;
        buf[n++] = 1;
        return n;
}

static DnsZone *make_zone(void)
{
        DnsZone *z = dns_zone_new();
        NmInAddr a;
        int f;
        g_assert_cmpint(dns_zone_add_domain(z, "office.nm.internal"), ==, 0);
        nm_addr_parse("10.99.0.2", &f, &a);
        g_assert_cmpint(dns_zone_add_record(z, "laptop2.office.nm.internal", f, &a), ==, 0);
        nm_addr_parse("fd00:99::2", &f, &a);
        g_assert_cmpint(dns_zone_add_record(z, "laptop2.office.nm.internal", f, &a), ==, 0);
        nm_addr_parse("10.99.0.3", &f, &a);
        g_assert_cmpint(dns_zone_add_record(z, "v4only.office.nm.internal", f, &a), ==, 0);
        g_assert_cmpint(dns_zone_add_record(z, "bad..name", f, &a), ==, -EINVAL);
        return z;
}

static void test_answers(void)
{
        g_autoptr(DnsZone) z = make_zone();
        uint8_t q[512], a[512];

        size_t n = build_query(q, 0x1234, "LapTop2.Office.NM.internal", DNS_TYPE_A);
        ssize_t r = dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpint(r, >, 0);
        g_assert_cmpuint(a[0], ==, 0x12);
        g_assert_cmpuint(a[1], ==, 0x34);
        g_assert_true(a[2] & 0x80);           /* QR */
        g_assert_true(a[2] & 0x04);           /* AA */
        g_assert_true(a[2] & 0x01);           /* RD echoed */
        g_assert_cmpuint(a[3] & 0x0f, ==, 0); /* NOERROR */
        g_assert_cmpuint(a[7], ==, 1);        /* one answer */
        g_assert_cmpmem(a + 12, n - 12, q + 12, n - 12); /* question echoed with its case */
        g_assert_cmpmem(a + r - 4, 4, "\x0a\x63\x00\x02", 4);

        n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_AAAA);
        r = dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[7], ==, 1);
        struct in6_addr want;
        inet_pton(AF_INET6, "fd00:99::2", &want);
        g_assert_cmpmem(a + r - 16, 16, &want, 16);

        n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_ANY);
        r = dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[7], ==, 2);

        /* NODATA: the name exists, not with this type. */
        n = build_query(q, 1, "v4only.office.nm.internal", DNS_TYPE_AAAA);
        r = dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NOERROR);
        g_assert_cmpuint(a[7], ==, 0);
        g_assert_cmpint(r, ==, (ssize_t) n);

        /* NXDOMAIN in our zone, REFUSED outside it (no recursion for anyone). */
        n = build_query(q, 1, "nobody.office.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NXDOMAIN);
        n = build_query(q, 1, "example.com", DNS_TYPE_A);
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_false(a[2] & 0x04);
        n = build_query(q, 1, "xoffice.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
}

static void test_truncation(void)
{
        g_autoptr(DnsZone) z = dns_zone_new();
        dns_zone_add_domain(z, "m");
        for (int i = 0; i < 100; i++) {
                NmInAddr a = {};
                a.in.s_addr = htonl(0x0a000001 + (guint) i);
                dns_zone_add_record(z, "many.m", AF_INET, &a);
        }
        uint8_t q[512], a[DNS_MAX_UDP];
        size_t n = build_query(q, 7, "many.m", DNS_TYPE_A);
        ssize_t r = dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpint(r, <=, DNS_MAX_UDP);
        g_assert_true(a[2] & 0x02); /* TC */
        g_autofree uint8_t *big = g_malloc(DNS_MAX_TCP);
        r = dns_answer(z, q, n, big, DNS_MAX_TCP);
        g_assert_false(big[2] & 0x02);
        g_assert_cmpuint(big[7], ==, 100);
}

static void test_malformed(void)
{
        g_autoptr(DnsZone) z = make_zone();
        uint8_t q[512], a[512];
        size_t n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_A);

        /* Too short for a header: nothing is sent. */
        g_assert_cmpint(dns_answer(z, q, 11, a, sizeof(a)), <, 0);
        /* A response is never answered. */
        q[2] |= 0x80;
        g_assert_cmpint(dns_answer(z, q, n, a, sizeof(a)), <, 0);
        q[2] &= 0x7f;
        /* Every truncation of a valid query gets FORMERR, never a crash. */
        for (size_t l = 12; l < n; l++) {
                ssize_t r = dns_answer(z, q, l, a, sizeof(a));
                g_assert_cmpint(r, ==, 12);
                g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        }
        /* Two questions, an answer section, a compression pointer, an inverse query. */
        q[5] = 2;
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[5] = 1;
        q[7] = 1;
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[7] = 0;
        uint8_t ptr[] = { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1 };
        dns_answer(z, ptr, sizeof(ptr), a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[2] = 0x08; /* opcode 1 */
        dns_answer(z, q, n, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NOTIMP);
        /* Random garbage never crashes and never produces more than the buffer. */
        GRand *rnd = g_rand_new_with_seed(42);
        for (int i = 0; i < 20000; i++) {
                size_t len = (size_t) g_rand_int_range(rnd, 0, 300);
                for (size_t j = 0; j < len; j++)
                        q[j] = (uint8_t) g_rand_int(rnd);
                if (len > 2)
                        q[2] &= 0x7f;
                ssize_t r = dns_answer(z, q, len, a, 64);
                g_assert_cmpint(r, <=, 64);
        }
        g_rand_free(rnd);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dns/answers", test_answers);
        g_test_add_func("/dns/truncation", test_truncation);
        g_test_add_func("/dns/malformed", test_malformed);
        return g_test_run();
}
