/* Proves the responder's sockets on loopback: UDP and TCP answers from the zone of the address
 * asked, TCP queries split over several segments and pipelined in one, EDNS over UDP, a closed
 * connection for a query that deserves no answer, and that unlisten closes both the listeners and
 * their open TCP connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns-server.h"
#include "macro.h"

static sd_event *event;

static size_t build_query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
        memset(buf, 0, 12);
        buf[0] = (uint8_t)(id >> 8);
        buf[1] = (uint8_t)id;
        buf[5] = 1;
        size_t n = 12;
        g_auto(GStrv) labels = g_strsplit(name, ".", -1);
        for (char **l = labels; *l; l++) {
                buf[n++] = (uint8_t)strlen(*l);
                memcpy(buf + n, *l, strlen(*l));
                n += strlen(*l);
        }
        buf[n++] = 0;
        buf[n++] = 0;
        buf[n++] = (uint8_t)qtype;
        buf[n++] = 0;
        buf[n++] = 1;
        return n;
}

/* Runs the loop until fd is readable (or the peer closed); false after `rounds` of 10 ms. */
static bool pump(int fd, int rounds)
{
        for (int i = 0; i < rounds; i++) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 0) > 0)
                        return true;
                g_assert_cmpint(sd_event_run(event, 10 * 1000), >=, 0);
        }
        return false;
}

static bool pump_until_readable(int fd)
{
        return pump(fd, 500);
}

static int socket_to(int type, const char *ip, uint16_t port)
{
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, ip, &sa.sin_addr);
        if (type == SOCK_STREAM) {
                g_assert_cmpint(fcntl(fd, F_SETFL, O_NONBLOCK), ==, 0);
                int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
                g_assert_true(r == 0 || errno == EINPROGRESS);
                /* Let the server accept. */
                for (int i = 0; i < 20; i++)
                        g_assert_cmpint(sd_event_run(event, 1000), >=, 0);
                g_assert_cmpint(fcntl(fd, F_SETFL, 0), ==, 0);
        } else
                g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
        return fd;
}

static int rcode_of(const uint8_t *a)
{
        return a[3] & 0x0f;
}

static DnsZone *zone_with(const char *domain, const char *name, const char *ip)
{
        DnsZone *z = dns_zone_new();
        NmInAddr a;
        int f;
        g_assert_cmpint(dns_zone_add_domain(z, domain), ==, 0);
        g_assert_cmpint(nm_addr_parse(ip, &f, &a), ==, 0);
        g_assert_cmpint(dns_zone_add_record(z, name, f, &a), ==, 0);
        return z;
}

static void test_udp_and_tcp(void)
{
        g_autoptr(DnsZone) office = zone_with("office.test", "a.office.test", "10.99.0.2");
        g_autoptr(DnsZone) lab = zone_with("lab.test", "b.lab.test", "10.98.0.3");
        DnsServer *s = NULL;
        NmInAddr lo1, lo2;
        int f;
        uint8_t q[512], a[2048];

        g_assert_cmpint(dns_server_new(event, &s), ==, 0);
        nm_addr_parse("127.0.0.1", &f, &lo1);
        nm_addr_parse("127.0.0.2", &f, &lo2);
        g_assert_cmpint(dns_server_listen(s, AF_INET, &lo1, 0, office, NULL), ==, 0);
        uint16_t port1 = dns_server_last_port(s);
        g_assert_cmpint(dns_server_listen(s, AF_INET, &lo1, 0, office, NULL), ==, -EEXIST);
        g_assert_cmpint(dns_server_listen(s, AF_INET, &lo2, 0, lab, NULL), ==, 0);
        uint16_t port2 = dns_server_last_port(s);

        /* UDP: each address answers from its own zone and refuses the other's. */
        int u1 = socket_to(SOCK_DGRAM, "127.0.0.1", port1);
        size_t n = build_query(q, 1, "a.office.test", DNS_TYPE_A);
        g_assert_cmpint(send(u1, q, n, 0), ==, (ssize_t)n);
        g_assert_true(pump_until_readable(u1));
        ssize_t r = recv(u1, a, sizeof(a), 0);
        g_assert_cmpint(r, ==, (ssize_t)n + 16);
        g_assert_cmpint(rcode_of(a), ==, DNS_RCODE_NOERROR);
        g_assert_cmpmem(a + r - 4, 4, "\x0a\x63\x00\x02", 4);
        n = build_query(q, 2, "b.lab.test", DNS_TYPE_A);
        g_assert_cmpint(send(u1, q, n, 0), ==, (ssize_t)n);
        g_assert_true(pump_until_readable(u1));
        g_assert_cmpint(recv(u1, a, sizeof(a), 0), >, 0);
        g_assert_cmpint(rcode_of(a), ==, DNS_RCODE_REFUSED);
        int u2 = socket_to(SOCK_DGRAM, "127.0.0.2", port2);
        g_assert_cmpint(send(u2, q, n, 0), ==, (ssize_t)n);
        g_assert_true(pump_until_readable(u2));
        g_assert_cmpint(recv(u2, a, sizeof(a), 0), >, 0);
        g_assert_cmpint(rcode_of(a), ==, DNS_RCODE_NOERROR);

        /* A response sent to the server is dropped, not answered. */
        q[2] = 0x80;
        g_assert_cmpint(send(u2, q, n, 0), ==, (ssize_t)n);
        g_assert_false(pump(u2, 20));
        close(u2);

        /* TCP: one query split over three writes, then two pipelined in one write. */
        int t = socket_to(SOCK_STREAM, "127.0.0.1", port1);
        n = build_query(q + 2, 3, "a.office.test", DNS_TYPE_A);
        q[0] = 0;
        q[1] = (uint8_t)n;
        g_assert_cmpint(write(t, q, 1), ==, 1);
        g_assert_cmpint(sd_event_run(event, 1000), >=, 0);
        g_assert_cmpint(write(t, q + 1, 5), ==, 5);
        g_assert_cmpint(sd_event_run(event, 1000), >=, 0);
        g_assert_cmpint(write(t, q + 6, n + 2 - 6), ==, (ssize_t)n - 4);
        g_assert_true(pump_until_readable(t));
        r = recv(t, a, sizeof(a), 0);
        g_assert_cmpint(r, ==, 2 + (ssize_t)n + 16);
        g_assert_cmpint(a[0] << 8 | a[1], ==, (int)n + 16);
        g_assert_cmpint(a[2] << 8 | a[3], ==, 3);

        uint8_t two[1024];
        size_t n1 = build_query(two + 2, 4, "a.office.test", DNS_TYPE_A);
        two[0] = 0;
        two[1] = (uint8_t)n1;
        size_t n2 = build_query(two + 4 + n1, 5, "nobody.office.test", DNS_TYPE_A);
        two[2 + n1] = 0;
        two[3 + n1] = (uint8_t)n2;
        g_assert_cmpint(write(t, two, 4 + n1 + n2), ==, (ssize_t)(4 + n1 + n2));
        size_t got = 0;
        /* The second answer carries the zone's SOA (47 bytes) in its authority section. */
        while (got < 2 + n1 + 16 + 2 + n2 + 47) {
                g_assert_true(pump_until_readable(t));
                r = recv(t, a + got, sizeof(a) - got, 0);
                g_assert_cmpint(r, >, 0);
                got += (size_t)r;
        }
        g_assert_cmpint(a[2] << 8 | a[3], ==, 4); /* first answer: id 4 */
        g_assert_cmpint(rcode_of(a + 2), ==, DNS_RCODE_NOERROR);
        size_t second = 2 + n1 + 16;
        g_assert_cmpint(a[second + 2] << 8 | a[second + 3], ==, 5);
        g_assert_cmpint(rcode_of(a + second + 2), ==, DNS_RCODE_NXDOMAIN);

        DnsServerStats st;
        dns_server_get_stats(s, &st);
        g_assert_cmpuint(st.tcp_connections, ==, 1);

        /* Unlisten closes the listeners and the open connection (its zone may go next). */
        g_assert_cmpint(dns_server_unlisten(s, AF_INET, &lo1), ==, 0);
        g_assert_cmpint(dns_server_unlisten(s, AF_INET, &lo1), ==, -ENOENT);
        g_assert_true(pump_until_readable(t));
        g_assert_cmpint(recv(t, a, sizeof(a), 0), ==, 0);
        dns_server_get_stats(s, &st);
        g_assert_cmpuint(st.tcp_connections, ==, 0);
        close(t);
        int t2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port1)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        g_assert_cmpint(connect(t2, (struct sockaddr *)&sa, sizeof(sa)), <, 0);
        g_assert_cmpint(errno, ==, ECONNREFUSED);
        close(t2);
        close(u1);

        /* A TCP query that deserves no answer (a response) closes the connection. */
        t = socket_to(SOCK_STREAM, "127.0.0.2", port2);
        n = build_query(q + 2, 6, "b.lab.test", DNS_TYPE_A);
        q[0] = 0;
        q[1] = (uint8_t)n;
        q[4] = 0x80;
        g_assert_cmpint(write(t, q, n + 2), ==, (ssize_t)n + 2);
        g_assert_true(pump_until_readable(t));
        g_assert_cmpint(recv(t, a, sizeof(a), 0), ==, 0);
        close(t);

        dns_server_free(s);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_test_add_func("/dns-server/udp-and-tcp", test_udp_and_tcp);
        int r = g_test_run();
        sd_event_unref(event);
        return r;
}
