/* Proves the mesh DNS responder answers A/AAAA for its names, says NXDOMAIN/NODATA correctly,
 * refuses names outside its zones, and survives malformed, truncated and hostile packets. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/types.h>

#include "dns-packet.h"

static size_t build_query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
        memset(buf, 0, 12);
        buf[0] = (uint8_t)(id >> 8);
        buf[1] = (uint8_t)id;
        buf[2] = 0x01; /* RD */
        buf[5] = 1;
        size_t n = 12;
        g_auto(GStrv) labels = g_strsplit(name, ".", -1);
        for (char **l = labels; *l; l++) {
                size_t len = strlen(*l);
                buf[n++] = (uint8_t)len;
                memcpy(buf + n, *l, len);
                n += len;
        }
        buf[n++] = 0;
        buf[n++] = (uint8_t)(qtype >> 8);
        buf[n++] = (uint8_t)qtype;
        buf[n++] = 0;
        buf[n++] = 1;
        return n;
}

/* Our SOA record: owner pointer, type, class, TTL, rdlength, MNAME pointer, RNAME
 * "hostmaster" + pointer, five 32-bit timers. */
#define SOA_SIZE (12 + 2 + 13 + 20)

/* The name at `off` in a message (labels and pointers), dotted. */
static char *read_name(const uint8_t *m, size_t off)
{
        GString *s = g_string_new(NULL);
        for (int hops = 0; hops < 10;) {
                uint8_t l = m[off];
                if (l == 0)
                        break;
                if ((l & 0xc0) == 0xc0) {
                        off = (size_t)((l & 0x3f) << 8 | m[off + 1]);
                        hops++;
                        continue;
                }
                g_string_append_printf(s, "%s%.*s", s->len ? "." : "", l, (const char *)m + off + 1);
                off += 1 + l;
        }
        return g_string_free(s, false);
}

static void test_soa(void)
{
        g_autoptr(DnsZone) z = dns_zone_new();
        uint8_t q[512], a[512];
        dns_zone_add_domain(z, "office.nm.internal");

        /* SOA at the apex: one answer, owner = the apex as asked. */
        size_t n = build_query(q, 1, "Office.nm.internal", DNS_TYPE_SOA);
        ssize_t r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpint(r, ==, (ssize_t)n + SOA_SIZE);
        g_assert_cmpuint(a[7], ==, 1);
        g_autofree char *owner = read_name(a, n);
        g_assert_cmpstr(owner, ==, "Office.nm.internal");
        g_autofree char *rname = read_name(a, n + 14);
        g_assert_cmpstr(rname, ==, "hostmaster.Office.nm.internal");

        /* NXDOMAIN deep below the apex: the SOA's owner points at the apex inside the question. */
        n = build_query(q, 2, "a.b.c.office.nm.internal", DNS_TYPE_A);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NXDOMAIN);
        g_assert_cmpuint(a[9], ==, 1);
        g_autofree char *owner2 = read_name(a, n);
        g_assert_cmpstr(owner2, ==, "office.nm.internal");
        g_assert_cmpuint(a[n + 9], ==, DNS_TTL); /* TTL */
        g_assert_cmpuint(a[r - 1], ==, DNS_TTL); /* MINIMUM: the negative TTL */

        /* Without room for it, the SOA is left out rather than truncating. */
        r = dns_answer(z, q, n, false, a, n + 10);
        g_assert_cmpint(r, ==, (ssize_t)n);
        g_assert_cmpuint(a[9], ==, 0);
        g_assert_false(a[2] & 0x02);
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
        ssize_t r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpint(r, >, 0);
        g_assert_cmpuint(a[0], ==, 0x12);
        g_assert_cmpuint(a[1], ==, 0x34);
        g_assert_true(a[2] & 0x80);                      /* QR */
        g_assert_true(a[2] & 0x04);                      /* AA */
        g_assert_true(a[2] & 0x01);                      /* RD echoed */
        g_assert_cmpuint(a[3] & 0x0f, ==, 0);            /* NOERROR */
        g_assert_cmpuint(a[7], ==, 1);                   /* one answer */
        g_assert_cmpmem(a + 12, n - 12, q + 12, n - 12); /* question echoed with its case */
        g_assert_cmpmem(a + r - 4, 4, "\x0a\x63\x00\x02", 4);

        n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_AAAA);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[7], ==, 1);
        struct in6_addr want;
        inet_pton(AF_INET6, "fd00:99::2", &want);
        g_assert_cmpmem(a + r - 16, 16, &want, 16);

        n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_ANY);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[7], ==, 2);

        /* NODATA: the name exists, not with this type. */
        n = build_query(q, 1, "v4only.office.nm.internal", DNS_TYPE_AAAA);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NOERROR);
        g_assert_cmpuint(a[7], ==, 0);
        g_assert_cmpuint(a[9], ==, 1); /* the zone's SOA in the authority section */
        g_assert_cmpint(r, ==, (ssize_t)n + SOA_SIZE);

        /* NXDOMAIN in our zone, REFUSED outside it (no recursion for anyone). */
        n = build_query(q, 1, "nobody.office.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NXDOMAIN);
        n = build_query(q, 1, "example.com", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_false(a[2] & 0x04);
        n = build_query(q, 1, "xoffice.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
}

static void test_truncation(void)
{
        g_autoptr(DnsZone) z = dns_zone_new();
        dns_zone_add_domain(z, "m");
        for (int i = 0; i < 100; i++) {
                NmInAddr a = {};
                a.in.s_addr = htonl(0x0a000001 + (guint)i);
                dns_zone_add_record(z, "many.m", AF_INET, &a);
        }
        uint8_t q[512], a[DNS_MAX_UDP];
        size_t n = build_query(q, 7, "many.m", DNS_TYPE_A);
        ssize_t r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpint(r, <=, DNS_MAX_UDP);
        g_assert_true(a[2] & 0x02); /* TC */
        g_autofree uint8_t *big = g_malloc(DNS_MAX_TCP);
        r = dns_answer(z, q, n, false, big, DNS_MAX_TCP);
        g_assert_false(big[2] & 0x02);
        g_assert_cmpuint(big[7], ==, 100);
}

/* Appends an EDNS(0) OPT record (RFC 6891) with the client's UDP size and version. */
static size_t add_opt(uint8_t *buf, size_t n, uint16_t udp_size, uint8_t version)
{
        uint8_t opt[] = {0, 0, 41, (uint8_t)(udp_size >> 8), (uint8_t)udp_size, 0, version, 0x80, 0, 0, 0};
        memcpy(buf + n, opt, sizeof(opt));
        buf[11] = 1; /* ARCOUNT */
        return n + sizeof(opt);
}

static void test_edns(void)
{
        g_autoptr(DnsZone) z = dns_zone_new();
        dns_zone_add_domain(z, "m");
        for (int i = 0; i < 60; i++) {
                NmInAddr a = {};
                a.in.s_addr = htonl(0x0a000001 + (guint)i);
                dns_zone_add_record(z, "many.m", AF_INET, &a);
        }
        uint8_t q[512], a[DNS_EDNS_UDP_SIZE + 100];

        /* 60 A records (16 bytes each) do not fit 512 bytes, but fit a 1232-byte EDNS answer, which
         * carries our OPT record back (root name, type 41, our size, version 0, DO clear). */
        size_t n = build_query(q, 7, "many.m", DNS_TYPE_A);
        n = add_opt(q, n, 4096, 0);
        ssize_t r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpint(r, >, DNS_MAX_UDP);
        g_assert_cmpint(r, <=, DNS_EDNS_UDP_SIZE);
        g_assert_false(a[2] & 0x02);
        g_assert_cmpuint(a[7], ==, 60);
        g_assert_cmpuint(a[11], ==, 1);
        g_assert_cmpmem(a + r - 11, 5, "\x00\x00\x29\x04\xd0", 5);
        g_assert_cmpuint(a[r - 5], ==, 0);        /* version */
        g_assert_cmpuint(a[r - 4] & 0x80, ==, 0); /* DO */

        /* A client that says 512 (or less) gets at most 512, truncated. */
        n = build_query(q, 7, "many.m", DNS_TYPE_A);
        n = add_opt(q, n, 100, 0);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpint(r, <=, DNS_MAX_UDP);
        g_assert_true(a[2] & 0x02);
        g_assert_cmpuint(a[11], ==, 1); /* the OPT still fits */

        /* EDNS version 1: BADVERS, 16 = 1 in the OPT's extended rcode, 0 in the header. */
        n = build_query(q, 7, "many.m", DNS_TYPE_A);
        n = add_opt(q, n, 1232, 1);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, 0);
        g_assert_cmpuint(a[r - 6], ==, 1);
        g_assert_cmpuint(a[7], ==, 0);

        /* Refused and NXDOMAIN answers carry the OPT too; a bad OPT length is FORMERR. */
        n = build_query(q, 7, "example.com", DNS_TYPE_A);
        n = add_opt(q, n, 1232, 0);
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_cmpuint(a[11], ==, 1);
        q[n - 1] = 5; /* RDLENGTH 5 with no RDATA */
        r = dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
}

static void test_existing_names(void)
{
        g_autoptr(DnsZone) z = make_zone();
        uint8_t q[512], a[512];
        NmInAddr addr;
        int f;

        nm_addr_parse("192.168.50.7", &f, &addr);
        g_assert_cmpint(dns_zone_add_record(z, "nas.lab.office.nm.internal", f, &addr), ==, 0);
        /* The same address twice is one record. */
        g_assert_cmpint(dns_zone_add_record(z, "nas.lab.office.nm.internal", f, &addr), ==, 0);
        size_t n = build_query(q, 1, "nas.lab.office.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[7], ==, 1);

        /* The zone's apex and the parents of names exist: NODATA, not NXDOMAIN. */
        const char *exist[] = {"office.nm.internal", "lab.office.nm.internal", "OFFICE.nm.Internal"};
        for (size_t i = 0; i < G_N_ELEMENTS(exist); i++) {
                n = build_query(q, 1, exist[i], DNS_TYPE_A);
                ssize_t r = dns_answer(z, q, n, true, a, sizeof(a));
                g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NOERROR);
                g_assert_true(a[2] & 0x04);
                g_assert_cmpint(r, ==, (ssize_t)n + SOA_SIZE);
        }
        n = build_query(q, 1, "x.lab.office.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NXDOMAIN);
        /* A suffix above the zone is not ours. */
        n = build_query(q, 1, "nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);

        /* Clearing forgets records and their parents. */
        dns_zone_clear(z);
        g_assert_cmpuint(dns_zone_size(z), ==, 0);
        dns_zone_add_domain(z, "office.nm.internal");
        n = build_query(q, 1, "lab.office.nm.internal", DNS_TYPE_A);
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NXDOMAIN);
}

static void test_malformed(void)
{
        g_autoptr(DnsZone) z = make_zone();
        uint8_t q[512], a[512];
        size_t n = build_query(q, 1, "laptop2.office.nm.internal", DNS_TYPE_A);

        /* Too short for a header: nothing is sent. */
        g_assert_cmpint(dns_answer(z, q, 11, true, a, sizeof(a)), <, 0);
        /* A response is never answered. */
        q[2] |= 0x80;
        g_assert_cmpint(dns_answer(z, q, n, true, a, sizeof(a)), <, 0);
        q[2] &= 0x7f;
        /* Every truncation of a valid query gets FORMERR, never a crash. */
        for (size_t l = 12; l < n; l++) {
                ssize_t r = dns_answer(z, q, l, true, a, sizeof(a));
                g_assert_cmpint(r, ==, 12);
                g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        }
        /* Two questions, an answer section, a compression pointer, an inverse query. */
        q[5] = 2;
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[5] = 1;
        q[7] = 1;
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[7] = 0;
        uint8_t ptr[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1};
        dns_answer(z, ptr, sizeof(ptr), true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_FORMERR);
        q[2] = 0x08; /* opcode 1 */
        dns_answer(z, q, n, true, a, sizeof(a));
        g_assert_cmpuint(a[3] & 0x0f, ==, DNS_RCODE_NOTIMP);
        /* Random garbage never crashes and never produces more than the buffer. */
        GRand *rnd = g_rand_new_with_seed(42);
        for (int i = 0; i < 20000; i++) {
                size_t len = (size_t)g_rand_int_range(rnd, 0, 300);
                for (size_t j = 0; j < len; j++)
                        q[j] = (uint8_t)g_rand_int(rnd);
                if (len > 2)
                        q[2] &= 0x7f;
                ssize_t r = dns_answer(z, q, len, false, a, 64);
                g_assert_cmpint(r, <=, 64);
        }
        g_rand_free(rnd);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dns/answers", test_answers);
        g_test_add_func("/dns/truncation", test_truncation);
        g_test_add_func("/dns/edns", test_edns);
        g_test_add_func("/dns/soa", test_soa);
        g_test_add_func("/dns/existing-names", test_existing_names);
        g_test_add_func("/dns/malformed", test_malformed);
        return g_test_run();
}
