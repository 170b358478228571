/* Proves forwarding for the mesh DNS responder: upstream answers are checked against our question
 * (another id or question is ignored), lose their OPT record and get the client's id, case, EDNS and
 * UDP limit (TC when too large), and are cached for their smallest TTL or a negative answer's SOA
 * minimum, aged on the way out and bounded in entries; the upstream servers come from resolved's
 * file behind its stub, else /etc/resolv.conf, never the stub or a mesh address; and, end to end on
 * loopback with a stand-in upstream, a client in the scope gets outside names answered (a repeat
 * from the cache without asking upstream again), over UDP and TCP, while a client outside the scope
 * gets REFUSED, a flood over the rate limit gets REFUSED, a silent upstream gives SERVFAIL and no
 * upstream REFUSED; and the network's nameservers (split DNS): names under their domains (the
 * longest match) go to their servers for this host itself (unlimited, uncached) and for the scope's
 * clients, other names are not forwarded for this host, and strangers get REFUSED for both. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns-cache.h"
#include "dns-forward.h"
#include "dns-reply.h"
#include "dns-server.h"
#include "dns-upstream.h"
#include "macro.h"

static size_t build_query(uint8_t *q, uint16_t id, const char *name, uint16_t type, bool edns)
{
        size_t n = 12;
        memset(q, 0, 12);
        q[0] = (uint8_t)(id >> 8);
        q[1] = (uint8_t)id;
        q[2] = 0x01;
        q[5] = 1;
        g_auto(GStrv) labels = g_strsplit(name, ".", -1);
        for (char **l = labels; *l; l++) {
                q[n++] = (uint8_t)strlen(*l);
                memcpy(q + n, *l, strlen(*l));
                n += strlen(*l);
        }
        q[n++] = 0;
        q[n++] = (uint8_t)(type >> 8);
        q[n++] = (uint8_t)type;
        q[n++] = 0;
        q[n++] = 1;
        if (edns) {
                q[11] = 1;
                const uint8_t opt[11] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
                memcpy(q + n, opt, 11);
                n += 11;
        }
        return n;
}

/* An answer to the query in q (n bytes, no EDNS) with `count` A records of `ttl`, an OPT record
 * from upstream, and `rcode`. */
static size_t build_answer(const uint8_t *q, size_t qn, uint8_t *a, unsigned count, uint32_t ttl,
                           uint8_t rcode, bool soa)
{
        size_t qend = qn;
        memcpy(a, q, qend);
        a[2] = 0x81;
        a[3] = (uint8_t)(0x80 | rcode);
        a[7] = (uint8_t)count;
        a[9] = soa ? 1 : 0;
        a[11] = 1;
        size_t n = qend;
        if (q[11]) { /* drop the query's OPT from the copy */
                n -= 11;
                qend -= 11;
        }
        for (unsigned i = 0; i < count; i++) {
                const uint8_t rr[] = {0xc0,
                                      12,
                                      0,
                                      1,
                                      0,
                                      1,
                                      (uint8_t)(ttl >> 24),
                                      (uint8_t)(ttl >> 16),
                                      (uint8_t)(ttl >> 8),
                                      (uint8_t)ttl,
                                      0,
                                      4,
                                      192,
                                      0,
                                      2,
                                      (uint8_t)(i + 1)};
                memcpy(a + n, rr, sizeof(rr));
                n += sizeof(rr);
        }
        if (soa) {
                /* example. SOA, TTL 300, MINIMUM 30: owner root, mname ".", rname ".". */
                const uint8_t rr[] = {0, 0, 6, 0, 1, 0, 0, 1, 44, 0, 22, 0, 0, 0, 0, 0, 1,
                                      0, 0, 0, 1, 0, 0, 0, 1, 0,  0, 0,  1, 0, 0, 0, 30};
                memcpy(a + n, rr, sizeof(rr));
                n += sizeof(rr);
        }
        const uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
        memcpy(a + n, opt, 11);
        return n + 11;
}

static void parse_query(const uint8_t *q, size_t n, DnsQuery *dq)
{
        g_assert_cmpint(dns_query_parse(q, n, dq), ==, 0);
}

static void test_reply(void)
{
        uint8_t q[512], a[1024], out[2048];
        DnsQuery dq;
        size_t qn = build_query(q, 0x1234, "WWW.Example.test", DNS_TYPE_A, true);
        parse_query(q, qn, &dq);
        g_assert_cmpstr(dq.name, ==, "www.example.test");
        g_assert_true(dq.edns);

        /* Our upstream query: its own id, RD, the question, our OPT. */
        uint8_t up[512];
        ssize_t un = dns_query_write_upstream(&dq, 0xbeef, up, sizeof(up));
        g_assert_cmpint(un, ==, (ssize_t)(12 + dq.qwire_len + 11));
        g_assert_cmpint(up[0], ==, 0xbe);
        g_assert_cmpint(up[2], ==, 0x01);

        /* The upstream answer to our query (lower case), 3 records, TTLs 60. */
        uint8_t plain[512];
        size_t pn = build_query(plain, 0xbeef, "www.example.test", DNS_TYPE_A, false);
        size_t an = build_answer(plain, pn, a, 3, 60, DNS_RCODE_NOERROR, false);
        g_autoptr(DnsReply) r = NULL;
        /* Another id, or another question, is not our answer. */
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeee, &r), ==, -EBADMSG);
        DnsQuery other = dq;
        other.qwire[1] = 'x';
        g_assert_cmpint(dns_reply_parse(a, an, &other, 0xbeef, &r), ==, -EBADMSG);
        g_assert_cmpint(dns_reply_parse(a, an - 1, &dq, 0xbeef, &r), ==, -EBADMSG);
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeef, &r), ==, 0);
        g_assert_cmpuint(r->ttl, ==, 60);
        g_assert_cmpuint(r->ttls->len, ==, 3);
        g_assert_cmpuint(r->len, ==, an - 11); /* OPT taken out */

        /* Written for the client: its id, its case, TTL aged, its OPT. */
        ssize_t n = dns_reply_write(r, &dq, 25, true, out, sizeof(out));
        g_assert_cmpint(n, ==, (ssize_t)(an));
        g_assert_cmpint(out[0], ==, 0x12);
        g_assert_cmpint(out[1], ==, 0x34);
        g_assert_cmpmem(out + 12, dq.qwire_len, q + 12, dq.qwire_len);
        size_t ttl_at = g_array_index(r->ttls, uint16_t, 0);
        g_assert_cmpint(out[ttl_at + 3], ==, 35);
        g_assert_cmpint(out[11], ==, 1);
        /* Aged past its TTL: 0, never below. */
        n = dns_reply_write(r, &dq, 600, true, out, sizeof(out));
        g_assert_cmpint(out[ttl_at + 3], ==, 0);

        /* Too big for a client without EDNS over UDP: empty with TC. */
        DnsQuery small;
        uint8_t q2[512];
        size_t q2n = build_query(q2, 7, "www.example.test", DNS_TYPE_A, false);
        parse_query(q2, q2n, &small);
        uint8_t big[2048];
        size_t bn = build_answer(plain, pn, big, 40, 60, DNS_RCODE_NOERROR, false);
        g_autoptr(DnsReply) rb = NULL;
        g_assert_cmpint(dns_reply_parse(big, bn, &small, 0xbeef, &rb), ==, 0);
        n = dns_reply_write(rb, &small, 0, true, out, sizeof(out));
        g_assert_cmpint(n, ==, (ssize_t)(12 + small.qwire_len));
        g_assert_true(out[2] & 0x02);
        n = dns_reply_write(rb, &small, 0, false, out, sizeof(out));
        g_assert_cmpint(n, ==, (ssize_t)(bn - 11));

        /* Negative: NXDOMAIN with an SOA is kept for min(SOA TTL 300, MINIMUM 30); without, never. */
        g_autoptr(DnsReply) neg = NULL, bare = NULL;
        an = build_answer(plain, pn, a, 0, 0, DNS_RCODE_NXDOMAIN, true);
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeef, &neg), ==, 0);
        g_assert_cmpuint(neg->ttl, ==, 30);
        g_assert_cmpuint(neg->rcode, ==, DNS_RCODE_NXDOMAIN);
        an = build_answer(plain, pn, a, 0, 0, DNS_RCODE_NXDOMAIN, false);
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeef, &bare), ==, 0);
        g_assert_cmpuint(bare->ttl, ==, 0);
        /* SERVFAIL is never cached; an extended rcode is an error. */
        g_autoptr(DnsReply) sf = NULL, ext = NULL;
        an = build_answer(plain, pn, a, 1, 60, DNS_RCODE_SERVFAIL, false);
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeef, &sf), ==, 0);
        g_assert_cmpuint(sf->ttl, ==, 0);
        an = build_answer(plain, pn, a, 1, 60, DNS_RCODE_NOERROR, false);
        a[an - 11 + 5] = 1;
        g_assert_cmpint(dns_reply_parse(a, an, &dq, 0xbeef, &ext), ==, -EPROTO);
}

static void test_cache(void)
{
        g_autoptr(DnsCache) c = NULL;
        uint8_t q[512], a[1024], plain[512];
        g_assert_cmpint(dns_cache_new(0, &c), ==, -EINVAL);
        g_assert_cmpint(dns_cache_new(2, &c), ==, 0);

        const char *names[] = {"a.example.test", "b.example.test", "c.example.test"};
        for (unsigned i = 0; i < 3; i++) {
                DnsQuery dq;
                size_t qn = build_query(q, 1, names[i], DNS_TYPE_A, false);
                parse_query(q, qn, &dq);
                size_t pn = build_query(plain, 9, names[i], DNS_TYPE_A, false);
                size_t an = build_answer(plain, pn, a, 1, 10 + i, DNS_RCODE_NOERROR, false);
                DnsReply *r = NULL;
                g_assert_cmpint(dns_reply_parse(a, an, &dq, 9, &r), ==, 0);
                g_assert_cmpint(dns_cache_put(c, &dq, r, 1000 * G_USEC_PER_SEC), ==, 1);
                g_assert_cmpuint(dns_cache_size(c), <=, 2);
        }
        DnsQuery qa, qc;
        parse_query(q, build_query(q, 1, "A.example.test", DNS_TYPE_A, false), &qa);
        parse_query(q, build_query(q, 1, "c.example.test", DNS_TYPE_A, false), &qc);
        /* The least recently used went; names match without case. */
        g_assert_null(dns_cache_get(c, &qa, 1001 * G_USEC_PER_SEC, NULL));
        uint32_t age = 0;
        g_assert_nonnull(dns_cache_get(c, &qc, 1005 * G_USEC_PER_SEC, &age));
        g_assert_cmpuint(age, ==, 5);
        /* Another type is another entry. */
        DnsQuery qc6;
        parse_query(q, build_query(q, 1, "c.example.test", DNS_TYPE_AAAA, false), &qc6);
        g_assert_null(dns_cache_get(c, &qc6, 1005 * G_USEC_PER_SEC, NULL));
        /* Past its TTL (12 s): gone. */
        g_assert_null(dns_cache_get(c, &qc, 1012 * G_USEC_PER_SEC, NULL));
        g_assert_cmpuint(dns_cache_size(c), ==, 1);
        /* TTL 0 is not kept. */
        DnsReply *r = NULL;
        size_t pn = build_query(plain, 9, "c.example.test", DNS_TYPE_A, false);
        size_t an = build_answer(plain, pn, a, 1, 0, DNS_RCODE_NOERROR, false);
        g_assert_cmpint(dns_reply_parse(a, an, &qc, 9, &r), ==, 0);
        g_assert_cmpint(dns_cache_put(c, &qc, r, 1020 * G_USEC_PER_SEC), ==, 0);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
        char *p = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(p, text, -1, NULL));
        return p;
}

static GArray *choose(const char *etc, const char *resolved)
{
        g_autoptr(GArray) excl = g_array_new(false, true, sizeof(NmPrefix));
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse("10.99.0.0/24", &p, NULL), ==, 0);
        g_array_append_val(excl, p);
        return dns_upstream_choose(etc, resolved, excl);
}

static char *servers_text(GArray *a)
{
        g_autoptr(GString) s = g_string_new(NULL);
        for (guint i = 0; i < a->len; i++) {
                g_autofree char *t = dns_upstream_to_string(&g_array_index(a, struct sockaddr_storage, i));
                g_string_append_printf(s, "%s%s", i ? " " : "", t);
        }
        return g_string_free(g_steal_pointer(&s), false);
}

static void test_upstream(void)
{
        g_autofree char *dir = g_dir_make_tmp("test-dns-upstream-XXXXXX", NULL);
        g_autofree char *stub = write_tmp(dir, "stub", "# resolved\nnameserver 127.0.0.53\noptions edns0\n");
        g_autofree char *plain =
                write_tmp(dir, "plain",
                          "search lan\nnameserver 192.0.2.53\nnameserver 10.99.0.1\n"
                          "nameserver fe80::1%eth0\nnameserver 2001:db8::53\n"
                          "nameserver 192.0.2.53\nnameserver 0.0.0.0\nnameserver 192.0.2.54\n"
                          "nameserver 192.0.2.55\n");
        g_autofree char *resolved =
                write_tmp(dir, "resolved", "nameserver 198.51.100.1\nnameserver 10.99.0.7\n");
        g_autofree char *missing = g_build_filename(dir, "missing", NULL);

        /* Plain: in order, no mesh address, no zone index, no repeats, no 0.0.0.0, at most 3. */
        g_autoptr(GArray) a = choose(plain, resolved);
        g_autofree char *at = servers_text(a);
        g_assert_cmpstr(at, ==, "192.0.2.53 2001:db8::53 192.0.2.54");
        /* Behind resolved's stub: what resolved asks, without our own mesh addresses. */
        g_autoptr(GArray) b = choose(stub, resolved);
        g_autofree char *bt = servers_text(b);
        g_assert_cmpstr(bt, ==, "198.51.100.1");
        /* The stub and no file of resolved's: nothing (never the stub itself). */
        g_autoptr(GArray) c = choose(stub, missing);
        g_assert_cmpuint(c->len, ==, 0);
        g_autoptr(GArray) d = choose(missing, resolved);
        g_assert_cmpuint(d->len, ==, 0);
        GArray *raw = NULL;
        g_assert_cmpint(dns_upstream_read(missing, &raw), ==, -ENOENT);
        unlink(stub);
        unlink(plain);
        unlink(resolved);
        rmdir(dir);
}

/* ---- end to end on loopback -------------------------------------------------------------------- */

typedef struct Upstream {
        int fd, tcp_fd;
        uint16_t port;
        unsigned queries;
        bool silent;
        sd_event_source *src, *tcp_src;
} Upstream;

static int upstream_udp(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Upstream *u = userdata;
        uint8_t q[1500], a[2048];
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&peer, &pl);
        if (n < 12)
                return 0;
        u->queries++;
        if (u->silent)
                return 0;
        size_t qn = (size_t)n - (q[11] ? 11 : 0);
        q[11] = 0;
        size_t an = build_answer(q, qn, a, 1, 300, DNS_RCODE_NOERROR, false);
        (void)sendto(fd, a, an, 0, (struct sockaddr *)&peer, pl);
        return 0;
}

static void upstream_start(sd_event *e, Upstream *u)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(sa);
        u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(bind(u->fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(getsockname(u->fd, (struct sockaddr *)&sa, &l), ==, 0);
        u->port = ntohs(sa.sin_port);
        g_assert_cmpint(sd_event_add_io(e, &u->src, u->fd, EPOLLIN, upstream_udp, u), >=, 0);
}

/* Sends q to addr:port (UDP, or TCP) from a socket bound to `from`, running the loop until the
 * answer comes; returns its length in `a`, or -1 after 3 s. */
static ssize_t ask(sd_event *e, const char *from, const char *to, uint16_t port, const uint8_t *q, size_t qn,
                   bool tcp, uint8_t *a, size_t max)
{
        struct sockaddr_in src = {.sin_family = AF_INET},
                           dst = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, from, &src.sin_addr);
        inet_pton(AF_INET, to, &dst.sin_addr);
        _cleanup_close_ int fd =
                socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&src, sizeof(src)), ==, 0);
        int r = connect(fd, (struct sockaddr *)&dst, sizeof(dst));
        g_assert_true(r == 0 || errno == EINPROGRESS);
        uint8_t buf[2 + 1500];
        size_t off = 0, total = qn;
        if (tcp) {
                buf[0] = (uint8_t)(qn >> 8);
                buf[1] = (uint8_t)qn;
                memcpy(buf + 2, q, qn);
                total = qn + 2;
        } else
                memcpy(buf, q, qn);
        size_t got = 0;
        for (int i = 0; i < 300; i++) {
                (void)sd_event_run(e, 10 * 1000);
                if (off < total) {
                        ssize_t w = send(fd, buf + off, total - off, MSG_NOSIGNAL);
                        if (w > 0)
                                off += (size_t)w;
                        continue;
                }
                ssize_t n = recv(fd, a + got, max - got, 0);
                if (n <= 0)
                        continue;
                if (!tcp)
                        return n;
                got += (size_t)n;
                if (got >= 2 && got >= 2 + (size_t)(a[0] << 8 | a[1])) {
                        memmove(a, a + 2, got - 2);
                        return (ssize_t)(got - 2);
                }
        }
        return -1;
}

static void test_end_to_end(void)
{
        sd_event *e = NULL;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        Upstream u = {};
        upstream_start(e, &u);

        g_autofree char *dir = g_dir_make_tmp("test-dns-forward-XXXXXX", NULL);
        g_autofree char *conf = write_tmp(dir, "resolv.conf", "nameserver 127.0.0.1\n");
        g_autofree char *none = g_build_filename(dir, "none", NULL);
        DnsForwarderConfig cfg = DNS_FORWARDER_CONFIG_DEFAULT;
        cfg.resolv_conf = conf;
        cfg.resolved_resolv_conf = none;
        cfg.upstream_port = u.port;
        cfg.rate_burst = 20;
        cfg.rate_period_usec = 60 * G_USEC_PER_SEC;
        cfg.attempt_usec = 200 * 1000;

        DnsServer *s = NULL;
        g_assert_cmpint(dns_server_new(e, &s), ==, 0);
        g_assert_cmpint(dns_server_enable_forwarding(s, &cfg), ==, 0);
        g_autoptr(DnsZone) zone = dns_zone_new();
        g_assert_cmpint(dns_zone_add_domain(zone, "office.nm.internal"), ==, 0);
        NmInAddr lo, ten;
        int fam;
        nm_addr_parse("127.0.0.10", &fam, &lo);
        nm_addr_parse("10.99.0.2", &fam, &ten);
        g_assert_cmpint(dns_zone_add_record(zone, "node2.office.nm.internal", AF_INET, &ten), ==, 0);
        /* The scope: 127.0.0.20/32 (an external client); 127.0.0.30 is someone else. */
        DnsForwardScope scope = {.clients = g_array_new(false, true, sizeof(NmPrefix))};
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse("127.0.0.20/32", &p, NULL), ==, 0);
        g_array_append_val(scope.clients, p);
        g_assert_cmpint(dns_server_listen(s, AF_INET, &lo, 0, zone, &scope), ==, 0);
        uint16_t port = dns_server_last_port(s);

        uint8_t q[512], a[4096];
        DnsForwarderStats st;
        /* A mesh name: answered here, upstream not asked. */
        size_t qn = build_query(q, 1, "node2.office.nm.internal", DNS_TYPE_A, false);
        ssize_t n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(n, >, 12);
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_NOERROR);
        g_assert_cmpuint(u.queries, ==, 0);

        /* An outside name from the client: forwarded, answered with its id and RA. */
        qn = build_query(q, 2, "www.Example.test", DNS_TYPE_A, true);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(n, >, 12);
        g_assert_cmpint(a[1], ==, 2);
        g_assert_cmpint(a[3], ==, 0x80);
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpint(a[11], ==, 1); /* our OPT for its EDNS */
        g_assert_cmpuint(u.queries, ==, 1);
        /* Again, over UDP and over TCP: from the cache, upstream not asked again. */
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[7], ==, 1);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, true, a, sizeof(a));
        g_assert_cmpint(n, >, 12);
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpuint(u.queries, ==, 1);
        /* A new name over TCP: forwarded (upstream over UDP). */
        qn = build_query(q, 3, "tcp.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, true, a, sizeof(a));
        g_assert_cmpint(n, >, 12);
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpuint(u.queries, ==, 2);

        /* Someone outside the scope: REFUSED, upstream not asked, over UDP and TCP. */
        qn = build_query(q, 4, "other.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.30", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        n = ask(e, "127.0.0.30", "127.0.0.10", port, q, qn, true, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_cmpuint(u.queries, ==, 2);

        /* A silent upstream: SERVFAIL after its time. */
        u.silent = true;
        qn = build_query(q, 5, "silent.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(n, >=, 12);
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_SERVFAIL);
        u.silent = false;

        /* A flood from the client: past its burst, REFUSED (cache hits count too). */
        unsigned refused = 0;
        qn = build_query(q, 6, "www.example.test", DNS_TYPE_A, false);
        for (int i = 0; i < 30; i++) {
                n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
                g_assert_cmpint(n, >=, 12);
                refused += (a[3] & 0x0f) == DNS_RCODE_REFUSED;
        }
        g_assert_cmpuint(refused, >=, 10);
        dns_forwarder_get_stats(dns_server_get_forwarder(s), &st);
        g_assert_cmpuint(st.rate_limited, ==, refused);
        g_assert_cmpuint(st.cache_hits, >=, 2);
        g_assert_cmpuint(st.servfail, ==, 1);
        g_assert_cmpuint(st.pending, ==, 0);

        /* No upstream left (only a mesh address): REFUSED. */
        g_autoptr(GArray) excl = g_array_new(false, true, sizeof(NmPrefix));
        g_assert_cmpint(nm_prefix_parse("127.0.0.0/8", &p, NULL), ==, 0);
        g_array_append_val(excl, p);
        dns_forwarder_set_excluded(dns_server_get_forwarder(s), excl);
        g_array_index(scope.clients, NmPrefix, 0).addr.in.s_addr = htonl(0x7f000015); /* a fresh client */
        qn = build_query(q, 7, "none.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.21", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);

        /* A pending query when the listener goes: cancelled, nothing leaks. */
        dns_forwarder_set_excluded(dns_server_get_forwarder(s), &(GArray){});
        u.silent = true;
        qn = build_query(q, 8, "pending.example.test", DNS_TYPE_A, false);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in src = {.sin_family = AF_INET},
                           dst = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, "127.0.0.21", &src.sin_addr);
        inet_pton(AF_INET, "127.0.0.10", &dst.sin_addr);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&src, sizeof(src)), ==, 0);
        g_assert_cmpint(sendto(fd, q, qn, 0, (struct sockaddr *)&dst, sizeof(dst)), ==, (ssize_t)qn);
        for (int i = 0;
             i < 20 && (dns_forwarder_get_stats(dns_server_get_forwarder(s), &st), st.pending == 0); i++)
                (void)sd_event_run(e, 10 * 1000);
        g_assert_cmpuint(st.pending, ==, 1);
        g_assert_cmpint(dns_server_unlisten(s, AF_INET, &lo), ==, 0);
        dns_forwarder_get_stats(dns_server_get_forwarder(s), &st);
        g_assert_cmpuint(st.pending, ==, 0);

        dns_server_free(s);
        g_array_unref(scope.clients);
        sd_event_source_disable_unref(u.src);
        close(u.fd);
        sd_event_unref(e);
        unlink(conf);
        rmdir(dir);
}

static void test_route_match(void)
{
        DnsForwardScope scope = {.routes = g_ptr_array_new_with_free_func((GDestroyNotify)dns_route_free)};
        g_ptr_array_add(scope.routes, dns_route_new("corp.example"));
        g_ptr_array_add(scope.routes, dns_route_new("DEV.corp.example"));
        g_ptr_array_add(scope.routes, dns_route_new("home.arpa"));

        g_assert_cmpstr(dns_forward_scope_route(&scope, "corp.example")->domain, ==, "corp.example");
        g_assert_cmpstr(dns_forward_scope_route(&scope, "www.corp.example")->domain, ==, "corp.example");
        g_assert_cmpstr(dns_forward_scope_route(&scope, "x.dev.corp.example")->domain, ==,
                        "dev.corp.example");
        g_assert_cmpstr(dns_forward_scope_route(&scope, "dev.corp.example")->domain, ==, "dev.corp.example");
        g_assert_cmpstr(dns_forward_scope_route(&scope, "nas.home.arpa")->domain, ==, "home.arpa");
        g_assert_null(dns_forward_scope_route(&scope, "xcorp.example"));
        g_assert_null(dns_forward_scope_route(&scope, "example"));
        g_assert_null(dns_forward_scope_route(&scope, "corp.example.org"));
        g_assert_null(dns_forward_scope_route(&scope, ""));
        g_assert_null(dns_forward_scope_route(NULL, "corp.example"));
        g_ptr_array_unref(scope.routes);
}

static void test_routes_end_to_end(void)
{
        sd_event *e = NULL;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        Upstream host = {}, corp = {};
        upstream_start(e, &host);
        upstream_start(e, &corp);

        g_autofree char *dir = g_dir_make_tmp("test-dns-forward-XXXXXX", NULL);
        g_autofree char *conf = write_tmp(dir, "resolv.conf", "nameserver 127.0.0.1\n");
        g_autofree char *none = g_build_filename(dir, "none", NULL);
        DnsForwarderConfig cfg = DNS_FORWARDER_CONFIG_DEFAULT;
        cfg.resolv_conf = conf;
        cfg.resolved_resolv_conf = none;
        cfg.upstream_port = host.port;
        cfg.rate_burst = 20;
        cfg.rate_period_usec = 60 * G_USEC_PER_SEC;
        cfg.attempt_usec = 200 * 1000;

        DnsServer *s = NULL;
        g_assert_cmpint(dns_server_new(e, &s), ==, 0);
        g_assert_cmpint(dns_server_enable_forwarding(s, &cfg), ==, 0);
        g_autoptr(DnsZone) zone = dns_zone_new();
        g_assert_cmpint(dns_zone_add_domain(zone, "office.nm.internal"), ==, 0);
        NmInAddr lo;
        int fam;
        nm_addr_parse("127.0.0.10", &fam, &lo);
        /* A client (127.0.0.20), and the nameserver corp.example -> the "corp" upstream. */
        DnsForwardScope scope = {.clients = g_array_new(false, true, sizeof(NmPrefix)),
                                 .routes = g_ptr_array_new_with_free_func((GDestroyNotify)dns_route_free)};
        NmPrefix p;
        g_assert_cmpint(nm_prefix_parse("127.0.0.20/32", &p, NULL), ==, 0);
        g_array_append_val(scope.clients, p);
        DnsRoute *route = dns_route_new("corp.example");
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons(corp.port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct sockaddr_storage ss = {};
        memcpy(&ss, &sin, sizeof(sin));
        g_array_append_val(route->servers, ss);
        g_ptr_array_add(scope.routes, route);
        g_assert_cmpint(dns_server_listen(s, AF_INET, &lo, 0, zone, &scope), ==, 0);
        uint16_t port = dns_server_last_port(s);

        uint8_t q[512], a[4096];
        ssize_t n;
        /* This host itself (from the listener's own address): the nameserver's names go to its
         * servers, over UDP and TCP, every time (not from the cache), beyond the clients' rate. */
        size_t qn = build_query(q, 1, "Intranet.Corp.Example", DNS_TYPE_A, false);
        for (int i = 0; i < 25; i++) {
                n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, i % 5 == 0, a, sizeof(a));
                g_assert_cmpint(n, >, 12);
                g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_NOERROR);
                g_assert_cmpint(a[7], ==, 1);
                g_assert_cmpint(a[1], ==, 1); /* the client's id */
        }
        g_assert_cmpuint(corp.queries, ==, 25);
        qn = build_query(q, 2, "corp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpuint(corp.queries, ==, 26);
        /* Other names are not forwarded for this host (its own resolvers have them), nor names that
         * merely end like the domain. */
        qn = build_query(q, 3, "www.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        qn = build_query(q, 4, "xcorp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_cmpuint(host.queries + corp.queries, ==, 26);

        /* A client: the nameserver's names to its servers, the rest to the host's resolvers. */
        qn = build_query(q, 5, "intranet.corp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpuint(corp.queries, ==, 27);
        qn = build_query(q, 6, "www.example.test", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.20", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[7], ==, 1);
        g_assert_cmpuint(host.queries, ==, 1);

        /* A stranger: REFUSED for both, nobody asked. */
        qn = build_query(q, 7, "intranet.corp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.30", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        n = ask(e, "127.0.0.30", "127.0.0.10", port, q, qn, true, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);
        g_assert_cmpuint(corp.queries, ==, 27);
        g_assert_cmpuint(host.queries, ==, 1);

        /* The nameserver's server is silent: SERVFAIL, so the asking resolver tries elsewhere. */
        corp.silent = true;
        qn = build_query(q, 8, "slow.corp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(n, >=, 12);
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_SERVFAIL);

        /* The nameserver goes: its names are refused for this host again. */
        corp.silent = false;
        g_ptr_array_set_size(scope.routes, 0);
        qn = build_query(q, 9, "intranet.corp.example", DNS_TYPE_A, false);
        n = ask(e, "127.0.0.10", "127.0.0.10", port, q, qn, false, a, sizeof(a));
        g_assert_cmpint(a[3] & 0x0f, ==, DNS_RCODE_REFUSED);

        dns_server_free(s);
        g_array_unref(scope.clients);
        g_ptr_array_unref(scope.routes);
        sd_event_source_disable_unref(host.src);
        sd_event_source_disable_unref(corp.src);
        close(host.fd);
        close(corp.fd);
        sd_event_unref(e);
        unlink(conf);
        rmdir(dir);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dns-forward/reply", test_reply);
        g_test_add_func("/dns-forward/cache", test_cache);
        g_test_add_func("/dns-forward/upstream", test_upstream);
        g_test_add_func("/dns-forward/end-to-end", test_end_to_end);
        g_test_add_func("/dns-forward/route-match", test_route_match);
        g_test_add_func("/dns-forward/routes-end-to-end", test_routes_end_to_end);
        return g_test_run();
}
