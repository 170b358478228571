/* The mesh DNS responder's sockets: UDP and TCP on the mesh addresses, driven by sd-event, handing
 * names outside the zone to the forwarder for the clients a listener's scope allows. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns-server.h"
#include "log.h"
#include "macro.h"

#define TCP_MAX_CONNECTIONS 64
#define TCP_IDLE_USEC       (10 * G_USEC_PER_SEC)

typedef struct Listener {
        DnsServer *server;
        const DnsZone *zone;          /* borrowed: the names this address answers for */
        const DnsForwardScope *scope; /* borrowed: whom names outside the zone are forwarded for */
        int family;
        NmInAddr addr;
        uint16_t port;
        int udp_fd, tcp_fd;
        sd_event_source *udp_source, *tcp_source;
} Listener;

typedef struct TcpConn {
        DnsServer *server;
        Listener *listener; /* its zone answers; the connection closes with the listener */
        int fd;
        struct sockaddr_storage peer;
        sd_event_source *io, *timer;
        DnsForwardRequest *request; /* a forwarded query whose answer is awaited */
        uint8_t in[2 + DNS_MAX_TCP];
        size_t in_len;
        uint8_t *out;
        size_t out_len, out_off;
} TcpConn;

/* A UDP query waiting for the forwarder. */
typedef struct UdpPending {
        DnsServer *server;
        Listener *listener;
        struct sockaddr_storage peer;
        socklen_t peer_len;
        DnsForwardRequest *request;
} UdpPending;

struct DnsServer {
        sd_event *event;
        DnsForwarder *forwarder; /* NULL: nothing is forwarded */
        GPtrArray *listeners;    /* of Listener */
        GHashTable *conns;       /* TcpConn set */
        GHashTable *udp_pending; /* UdpPending set */
        uint16_t last_port;
        DnsServerStats stats;
};

static void listener_free(Listener *l)
{
        sd_event_source_disable_unref(l->udp_source);
        sd_event_source_disable_unref(l->tcp_source);
        closep(&l->udp_fd);
        closep(&l->tcp_fd);
        g_free(l);
}

static void conn_free(TcpConn *c)
{
        dns_forward_request_cancel(c->request);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        closep(&c->fd);
        g_free(c->out);
        g_free(c);
}

static void udp_pending_free(UdpPending *p)
{
        dns_forward_request_cancel(p->request);
        g_free(p);
}

int dns_server_new(sd_event *event, DnsServer **ret)
{
        DnsServer *s = g_new0(DnsServer, 1);
        s->event = sd_event_ref(event);
        s->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
        s->conns = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)conn_free, NULL);
        s->udp_pending = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)udp_pending_free, NULL);
        *ret = s;
        return 0;
}

DnsServer *dns_server_free(DnsServer *s)
{
        if (!s)
                return NULL;
        /* Pending queries and connections first: they point at their listeners and at requests
         * of the forwarder. */
        g_hash_table_unref(s->udp_pending);
        g_hash_table_unref(s->conns);
        s->forwarder = dns_forwarder_free(s->forwarder);
        g_ptr_array_unref(s->listeners);
        sd_event_unref(s->event);
        g_free(s);
        return NULL;
}

static void on_udp_forwarded(const uint8_t *answer, size_t len, void *userdata)
{
        UdpPending *p = userdata;
        DnsServer *s = p->server;

        if (sendto(p->listener->udp_fd, answer, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (struct sockaddr *)&p->peer, p->peer_len) < 0)
                log_debug_errno(errno, "DNS: UDP send failed: %m");
        else
                s->stats.answered++;
        if (p->request) {
                /* Called from the event loop: the request is done and gone. */
                p->request = NULL;
                g_hash_table_remove(s->udp_pending, p);
        }
}

/* Whether `src` is one of the addresses the responder listens on: this host itself asking (the
 * kernel drops packets from outside that claim a local source, and WireGuard those a peer's allowed
 * IPs do not cover). */
static bool source_is_local(DnsServer *s, const struct sockaddr *src)
{
        NmInAddr a = {};
        int family;

        if (src->sa_family == AF_INET) {
                family = AF_INET;
                a.in = ((const struct sockaddr_in *)src)->sin_addr;
        } else if (src->sa_family == AF_INET6) {
                family = AF_INET6;
                a.in6 = ((const struct sockaddr_in6 *)src)->sin6_addr;
        } else
                return false;
        for (guint i = 0; i < s->listeners->len; i++) {
                const Listener *l = s->listeners->pdata[i];
                if (l->family == family && memcmp(&l->addr, &a, nm_family_bits(family) / 8) == 0)
                        return true;
        }
        return false;
}

/* Hands a query for a name outside the zone to the forwarder when someone may have it forwarded:
 * names under one of the network's nameserver domains go to its servers, for this host itself and
 * for the clients of the listener's scope; other names to the host's resolvers, for those clients
 * only. Returns -1 when it is not forwarded (the zone answers or refuses it), else what
 * dns_forwarder_query() returns (0: answered already; 1: *ret is the pending request). */
static int forward_query(Listener *l, const DnsQuery *dq, const struct sockaddr *peer, int ifindex, bool udp,
                         DnsForwardDone done, void *userdata, DnsForwardRequest **ret)
{
        DnsServer *s = l->server;

        *ret = NULL;
        if (!s->forwarder || dns_zone_covers(l->zone, dq->name))
                return -1;
        const DnsRoute *route = dns_forward_scope_route(l->scope, dq->name);
        bool client = dns_forward_scope_allows(l->scope, peer, ifindex);
        if (route) {
                bool local = source_is_local(s, peer);
                if (!local && !client)
                        return -1;
                s->stats.forwarded++;
                return dns_forwarder_query_route(s->forwarder, dq, peer, udp, route, local, done, userdata,
                                                 ret);
        }
        if (!client)
                return -1;
        s->stats.forwarded++;
        return dns_forwarder_query(s->forwarder, dq, peer, udp, done, userdata, ret);
}

/* A UDP query for a name outside the zone, when forward_query() takes it. Returns true when the
 * forwarder took it (and answers, now or later). */
static bool udp_forward(Listener *l, const uint8_t *q, size_t n, const struct sockaddr_storage *peer,
                        socklen_t plen, int ifindex)
{
        DnsServer *s = l->server;
        DnsQuery dq;

        if (!s->forwarder || dns_query_parse(q, n, &dq) < 0)
                return false;
        UdpPending *p = g_new0(UdpPending, 1);
        p->server = s;
        p->listener = l;
        p->peer = *peer;
        p->peer_len = plen;
        DnsForwardRequest *req = NULL;
        int k = forward_query(l, &dq, (const struct sockaddr *)peer, ifindex, true, on_udp_forwarded, p,
                              &req);
        if (k > 0) {
                p->request = req;
                g_hash_table_add(s->udp_pending, p);
        } else
                g_free(p); /* answered already, or not ours to forward */
        return k >= 0;
}

/* The interface a datagram arrived on, from its IP_PKTINFO / IPV6_PKTINFO; 0 when absent. */
static int arrival_ifindex(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        return pi.ipi_ifindex;
                }
                if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                        struct in6_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        return (int)pi.ipi6_ifindex;
                }
        }
        return 0;
}

static int on_udp(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Listener *l = userdata;
        DnsServer *s = l->server;

        /* Drain what is queued, but bounded so one busy socket cannot starve the loop. */
        for (int i = 0; i < 64; i++) {
                uint8_t q[DNS_EDNS_UDP_SIZE], a[DNS_EDNS_UDP_SIZE];
                struct sockaddr_storage peer;
                union {
                        struct cmsghdr align;
                        uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
                } control;
                struct iovec iov = {.iov_base = q, .iov_len = sizeof(q)};
                struct msghdr mh = {.msg_name = &peer,
                                    .msg_namelen = sizeof(peer),
                                    .msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = &control,
                                    .msg_controllen = sizeof(control)};
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        log_debug_errno(errno, "DNS: UDP receive failed: %m");
                        return 0;
                }
                socklen_t plen = mh.msg_namelen;
                s->stats.queries++;
                if ((size_t)n > sizeof(q)) {
                        s->stats.dropped++;
                        continue;
                }
                if (udp_forward(l, q, (size_t)n, &peer, plen, arrival_ifindex(&mh)))
                        continue;
                ssize_t r = dns_answer(l->zone, q, (size_t)n, true, a, sizeof(a));
                if (r < 0) {
                        s->stats.dropped++;
                        continue;
                }
                if (sendto(fd, a, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&peer, plen) <
                    0)
                        log_debug_errno(errno, "DNS: UDP send failed: %m");
                else
                        s->stats.answered++;
        }
        return 0;
}

static void conn_close(TcpConn *c)
{
        g_hash_table_remove(c->server->conns, c);
}

static int conn_timeout(sd_event_source *src, uint64_t usec, void *userdata)
{
        conn_close(userdata);
        return 0;
}

static void conn_send(TcpConn *c, const uint8_t *answer, size_t len)
{
        uint8_t *a = g_malloc(2 + len);
        a[0] = (uint8_t)(len >> 8);
        a[1] = (uint8_t)len;
        memcpy(a + 2, answer, len);
        c->out = a;
        c->out_len = 2 + len;
        c->out_off = 0;
        c->server->stats.answered++;
        sd_event_source_set_io_events(c->io, EPOLLOUT);
        /* The wait for upstream is not idleness of the client's. */
        sd_event_source_set_time_relative(c->timer, TCP_IDLE_USEC);
}

static void on_tcp_forwarded(const uint8_t *answer, size_t len, void *userdata)
{
        TcpConn *c = userdata;
        c->request = NULL; /* done: from here on the forwarder has forgotten it */
        conn_send(c, answer, len);
}

/* Hands the first query in the buffer to the forwarder when it is for a name outside the zone and
 * the listener's scope allows the client; the connection reads nothing more until it is answered.
 * Returns true when the forwarder took it. */
static bool conn_forward(TcpConn *c, size_t qlen)
{
        DnsServer *s = c->server;
        DnsQuery dq;

        if (!s->forwarder || dns_query_parse(c->in + 2, qlen, &dq) < 0)
                return false;
        /* Reads nothing more until the answer is sent (set before: the answer may come at once). */
        sd_event_source_set_io_events(c->io, 0);
        DnsForwardRequest *req = NULL;
        int k = forward_query(c->listener, &dq, (const struct sockaddr *)&c->peer, 0, false,
                              on_tcp_forwarded, c, &req);
        if (k < 0) {
                sd_event_source_set_io_events(c->io, EPOLLIN);
                return false;
        }
        memmove(c->in, c->in + 2 + qlen, c->in_len - 2 - qlen);
        c->in_len -= 2 + qlen;
        if (k > 0)
                c->request = req;
        return true;
}

/* Answers the next complete query in the buffer, if there is one, and waits to send the answer;
 * otherwise waits for more input. Returns false when the connection was closed. */
static bool conn_next(TcpConn *c)
{
        DnsServer *s = c->server;

        size_t qlen = c->in_len >= 2 ? (size_t)(c->in[0] << 8 | c->in[1]) : 0;
        if (c->in_len < 2 || c->in_len < 2 + qlen) {
                sd_event_source_set_io_events(c->io, EPOLLIN);
                return true;
        }
        s->stats.queries++;
        if (conn_forward(c, qlen))
                return true;
        uint8_t *a = g_malloc(2 + DNS_MAX_TCP);
        ssize_t r = dns_answer(c->listener->zone, c->in + 2, qlen, false, a + 2, DNS_MAX_TCP);
        /* Keep any pipelined bytes of the next query. */
        memmove(c->in, c->in + 2 + qlen, c->in_len - 2 - qlen);
        c->in_len -= 2 + qlen;
        if (r < 0) {
                g_free(a);
                s->stats.dropped++;
                conn_close(c);
                return false;
        }
        a[0] = (uint8_t)(r >> 8);
        a[1] = (uint8_t)r;
        c->out = a;
        c->out_len = 2 + (size_t)r;
        c->out_off = 0;
        s->stats.answered++;
        sd_event_source_set_io_events(c->io, EPOLLOUT);
        return true;
}

static int conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        TcpConn *c = userdata;

        if (revents & (EPOLLERR | EPOLLHUP) && !(revents & (EPOLLIN | EPOLLOUT))) {
                conn_close(c);
                return 0;
        }
        if (c->request)
                return 0; /* waiting for upstream: nothing to read or write yet */
        if (c->out) {
                /* One answer at a time: the next query is read only when this one is out. */
                ssize_t w =
                        send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                conn_close(c);
                        return 0;
                }
                c->out_off += (size_t)w;
                if (c->out_off < c->out_len)
                        return 0;
                g_clear_pointer(&c->out, g_free);
        } else {
                ssize_t n = recv(fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        conn_close(c);
                        return 0;
                }
                if (n < 0)
                        return 0;
                c->in_len += (size_t)n;
                sd_event_source_set_time_relative(c->timer, TCP_IDLE_USEC);
        }
        (void)conn_next(c);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Listener *l = userdata;
        DnsServer *s = l->server;
        struct sockaddr_storage peer = {};
        socklen_t plen = sizeof(peer);
        _cleanup_close_ int cfd = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int r;

        if (cfd < 0)
                return 0;
        if (g_hash_table_size(s->conns) >= TCP_MAX_CONNECTIONS) {
                s->stats.dropped++;
                return 0; /* closed by the cleanup: a bounded number of clients at once */
        }
        TcpConn *c = g_new0(TcpConn, 1);
        c->server = s;
        c->listener = l;
        c->peer = peer;
        c->fd = TAKE_FD(cfd);
        g_hash_table_add(s->conns, c);
        r = sd_event_add_io(s->event, &c->io, c->fd, EPOLLIN, conn_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC, TCP_IDLE_USEC, 0,
                                               conn_timeout, c);
        if (r < 0) {
                log_debug_errno(r, "DNS: cannot watch TCP connection: %m");
                conn_close(c);
        }
        s->stats.tcp_connections = g_hash_table_size(s->conns);
        return 0;
}

static int make_socket(int family, int type, const NmInAddr *addr, uint16_t port, uint16_t *bound)
{
        _cleanup_close_ int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        int one = 1;

        if (fd < 0)
                return -errno;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* The interface each datagram arrived on, for the forwarding scope. */
        if (type == SOCK_DGRAM)
                (void)setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                                 family == AF_INET ? IP_PKTINFO : IPV6_RECVPKTINFO, &one, sizeof(one));
        if (family == AF_INET) {
                (void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
                sa.in.sin_family = AF_INET;
                sa.in.sin_addr = addr->in;
                sa.in.sin_port = htons(port);
                len = sizeof(sa.in);
        } else {
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_addr = addr->in6;
                sa.in6.sin6_port = htons(port);
                len = sizeof(sa.in6);
        }
        if (bind(fd, &sa.sa, len) < 0)
                return -errno;
        if (type == SOCK_STREAM && listen(fd, 16) < 0)
                return -errno;
        len = sizeof(sa);
        if (getsockname(fd, &sa.sa, &len) < 0)
                return -errno;
        *bound = ntohs(family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
        return TAKE_FD(fd);
}

int dns_server_listen(DnsServer *s, int family, const NmInAddr *addr, uint16_t port, const DnsZone *zone,
                      const DnsForwardScope *scope)
{
        uint16_t bound = 0;
        int r;

        for (guint i = 0; i < s->listeners->len; i++) {
                Listener *l = s->listeners->pdata[i];
                if (l->family == family && memcmp(&l->addr, addr, nm_family_bits(family) / 8) == 0 &&
                    (port == 0 || l->port == port))
                        return -EEXIST;
        }
        Listener *l = g_new0(Listener, 1);
        l->server = s;
        l->zone = zone;
        l->scope = scope;
        l->family = family;
        l->addr = *addr;
        l->udp_fd = l->tcp_fd = -1;
        r = make_socket(family, SOCK_DGRAM, addr, port, &bound);
        if (r < 0)
                goto fail;
        l->udp_fd = r;
        /* TCP on the same port UDP got, so port 0 (tests) gives one port for both. */
        r = make_socket(family, SOCK_STREAM, addr, bound, &bound);
        if (r < 0)
                goto fail;
        l->tcp_fd = r;
        l->port = bound;
        r = sd_event_add_io(s->event, &l->udp_source, l->udp_fd, EPOLLIN, on_udp, l);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(s->event, &l->tcp_source, l->tcp_fd, EPOLLIN, on_accept, l);
        if (r < 0)
                goto fail;
        g_ptr_array_add(s->listeners, l);
        s->last_port = bound;
        return 0;
fail:
        listener_free(l);
        return r;
}

static void close_connections_of(DnsServer *s, Listener *l)
{
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, s->udp_pending);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (((UdpPending *)k)->listener == l)
                        g_hash_table_iter_remove(&it);
        g_hash_table_iter_init(&it, s->conns);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (((TcpConn *)k)->listener == l)
                        g_hash_table_iter_remove(&it);
}

int dns_server_unlisten(DnsServer *s, int family, const NmInAddr *addr)
{
        bool found = false;
        for (guint i = s->listeners->len; i > 0; i--) {
                Listener *l = s->listeners->pdata[i - 1];
                if (l->family == family && memcmp(&l->addr, addr, nm_family_bits(family) / 8) == 0) {
                        close_connections_of(s, l);
                        g_ptr_array_remove_index(s->listeners, i - 1);
                        found = true;
                }
        }
        return found ? 0 : -ENOENT;
}

uint16_t dns_server_last_port(DnsServer *s)
{
        return s->last_port;
}

void dns_server_get_stats(DnsServer *s, DnsServerStats *ret)
{
        *ret = s->stats;
        ret->tcp_connections = g_hash_table_size(s->conns);
}

int dns_server_enable_forwarding(DnsServer *s, const DnsForwarderConfig *config)
{
        if (s->forwarder)
                return 0;
        return dns_forwarder_new(s->event, config, &s->forwarder);
}

DnsForwarder *dns_server_get_forwarder(DnsServer *s)
{
        return s->forwarder;
}
