/* Forwarding of names outside the mesh to the host's resolvers, async on sd-event (dns-forward.h). */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns-cache.h"
#include "dns-forward.h"
#include "dns-reply.h"
#include "dns-upstream.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"

struct DnsForwarder {
        sd_event *event;
        DnsForwarderConfig config;
        char *resolv_conf, *resolved_resolv_conf;
        DnsCache *cache;
        RateLimit *rate;
        GArray *excluded; /* of NmPrefix */
        GArray *servers;  /* of struct sockaddr_storage: what the files said last */
        struct stat seen[2];
        uint64_t checked_at; /* when the files were last looked at */
        bool checked, warned_none;
        GHashTable *pending; /* DnsForwardRequest set, owned */
        DnsForwarderStats stats;
        uint8_t rbuf[DNS_MAX_TCP];
};

struct DnsForwardRequest {
        DnsForwarder *f;
        DnsQuery q;
        bool udp; /* the client's transport */
        DnsForwardDone done;
        void *userdata;
        GArray *servers; /* a reference: the files or the routes may change meanwhile */
        bool cache;      /* the answer goes into the cache */
        guint next;      /* the next server to try */
        struct sockaddr_storage server;
        uint16_t id;
        int fd;
        bool tcp;
        sd_event_source *io, *timer;
        uint8_t query[2 + 12 + sizeof(((DnsQuery *)0)->qwire) + 11]; /* TCP length prefix, query */
        size_t query_len;
        uint8_t lenbuf[2]; /* TCP: the answer's length */
        uint8_t *in;       /* TCP: the answer being read */
        size_t in_len, in_off, out_off;
};

DnsRoute *dns_route_new(const char *domain)
{
        DnsRoute *r = g_new0(DnsRoute, 1);
        r->domain = g_ascii_strdown(domain, -1);
        r->servers = g_array_new(false, true, sizeof(struct sockaddr_storage));
        return r;
}

void dns_route_free(DnsRoute *r)
{
        if (!r)
                return;
        g_free(r->domain);
        g_array_unref(r->servers);
        g_free(r);
}

const DnsRoute *dns_forward_scope_route(const DnsForwardScope *s, const char *name)
{
        const DnsRoute *best = NULL;
        size_t n = strlen(name);

        for (guint i = 0; s && s->routes && i < s->routes->len; i++) {
                const DnsRoute *r = s->routes->pdata[i];
                size_t d = strlen(r->domain);
                /* The domain itself, or a name below it ("x.corp.example", not "xcorp.example"). */
                bool in = n == d ? streq0(name, r->domain)
                                 : n > d && name[n - d - 1] == '.' && streq0(name + n - d, r->domain);
                if (in && (!best || d > strlen(best->domain)))
                        best = r;
        }
        return best;
}

bool dns_forward_scope_allows(const DnsForwardScope *s, const struct sockaddr *src, int ifindex)
{
        NmInAddr a = {};
        int family;

        if (!s || !s->clients || s->clients->len == 0 || !src)
                return false;
        if (s->ifindex > 0 && ifindex > 0 && ifindex != s->ifindex)
                return false;
        if (src->sa_family == AF_INET) {
                family = AF_INET;
                a.in = ((const struct sockaddr_in *)src)->sin_addr;
        } else if (src->sa_family == AF_INET6) {
                family = AF_INET6;
                a.in6 = ((const struct sockaddr_in6 *)src)->sin6_addr;
        } else
                return false;
        for (guint i = 0; i < s->clients->len; i++) {
                const NmPrefix *p = &g_array_index(s->clients, NmPrefix, i);
                if (p->family == family && nm_prefix_contains(p, family, &a))
                        return true;
        }
        return false;
}

static uint64_t now_usec(DnsForwarder *f)
{
        uint64_t t = 0;
        (void)sd_event_now(f->event, CLOCK_MONOTONIC, &t);
        return t;
}

int dns_forwarder_new(sd_event *event, const DnsForwarderConfig *config, DnsForwarder **ret)
{
        g_autoptr(RateLimit) rate = NULL;
        g_autoptr(DnsCache) cache = NULL;
        int r;

        r = ratelimit_new(config->rate_burst, config->rate_period_usec, config->rate_clients, &rate);
        if (r < 0)
                return r;
        /* Mesh clients share the network's /64: each address is a client of its own. */
        (void)ratelimit_set_ipv6_prefix(rate, 128);
        r = dns_cache_new(config->cache_entries, &cache);
        if (r < 0)
                return r;
        if (config->max_pending == 0 || config->attempt_usec == 0)
                return -EINVAL;
        DnsForwarder *f = g_new0(DnsForwarder, 1);
        f->event = sd_event_ref(event);
        f->config = *config;
        f->resolv_conf = g_strdup(config->resolv_conf);
        f->resolved_resolv_conf = g_strdup(config->resolved_resolv_conf);
        f->config.resolv_conf = f->resolv_conf;
        f->config.resolved_resolv_conf = f->resolved_resolv_conf;
        f->cache = TAKE_PTR(cache);
        f->rate = TAKE_PTR(rate);
        f->excluded = g_array_new(false, true, sizeof(NmPrefix));
        f->servers = g_array_new(false, true, sizeof(struct sockaddr_storage));
        f->pending = g_hash_table_new(NULL, NULL);
        *ret = f;
        return 0;
}

static void request_close(DnsForwardRequest *r)
{
        r->io = sd_event_source_disable_unref(r->io);
        r->timer = sd_event_source_disable_unref(r->timer);
        closep(&r->fd);
        g_clear_pointer(&r->in, g_free);
}

static void request_free(DnsForwardRequest *r)
{
        request_close(r);
        g_array_unref(r->servers);
        g_free(r);
}

void dns_forward_request_cancel(DnsForwardRequest *r)
{
        if (!r)
                return;
        g_hash_table_remove(r->f->pending, r);
        request_free(r);
}

DnsForwarder *dns_forwarder_free(DnsForwarder *f)
{
        if (!f)
                return NULL;
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, f->pending);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                g_hash_table_iter_steal(&it);
                request_free(k);
        }
        g_hash_table_unref(f->pending);
        dns_cache_free(f->cache);
        ratelimit_free(f->rate);
        g_array_unref(f->excluded);
        g_array_unref(f->servers);
        g_free(f->resolv_conf);
        g_free(f->resolved_resolv_conf);
        sd_event_unref(f->event);
        g_free(f);
        return NULL;
}

void dns_forwarder_set_excluded(DnsForwarder *f, const GArray *prefixes)
{
        bool same = prefixes->len == f->excluded->len &&
                    (prefixes->len == 0 ||
                     memcmp(prefixes->data, f->excluded->data, prefixes->len * sizeof(NmPrefix)) == 0);
        if (same)
                return;
        g_array_set_size(f->excluded, 0);
        g_array_append_vals(f->excluded, prefixes->data, prefixes->len);
        f->checked = false; /* choose again with the new exclusions */
}

static bool stat_changed(const char *path, struct stat *seen)
{
        struct stat st = {};
        if (!path || stat(path, &st) < 0)
                memset(&st, 0, sizeof(st));
        bool changed = st.st_ino != seen->st_ino || st.st_dev != seen->st_dev ||
                       st.st_size != seen->st_size || st.st_mtim.tv_sec != seen->st_mtim.tv_sec ||
                       st.st_mtim.tv_nsec != seen->st_mtim.tv_nsec;
        *seen = st;
        return changed;
}

/* The files are looked at again at most once a second, and read again only when they changed. */
static void refresh_servers(DnsForwarder *f, uint64_t now)
{
        if (f->checked && now - f->checked_at < G_USEC_PER_SEC)
                return;
        bool changed = stat_changed(f->resolv_conf, &f->seen[0]);
        changed = stat_changed(f->resolved_resolv_conf, &f->seen[1]) || changed;
        if (f->checked && !changed) {
                f->checked_at = now;
                return;
        }
        g_autoptr(GArray) servers =
                dns_upstream_choose(f->resolv_conf, f->resolved_resolv_conf, f->excluded);
        g_autoptr(GString) list = g_string_new(NULL);
        for (guint i = 0; i < servers->len; i++) {
                struct sockaddr_storage *ss = &g_array_index(servers, struct sockaddr_storage, i);
                g_autofree char *t = dns_upstream_to_string(ss);
                g_string_append_printf(list, "%s%s", i ? ", " : "", t);
                if (ss->ss_family == AF_INET)
                        ((struct sockaddr_in *)ss)->sin_port = htons(f->config.upstream_port);
                else
                        ((struct sockaddr_in6 *)ss)->sin6_port = htons(f->config.upstream_port);
        }
        bool same = servers->len == f->servers->len &&
                    (servers->len == 0 || memcmp(servers->data, f->servers->data,
                                                 servers->len * sizeof(struct sockaddr_storage)) == 0);
        if (!same) {
                if (servers->len > 0)
                        log_info("DNS: forwarding names outside the mesh to %s.", list->str);
                g_array_unref(f->servers);
                f->servers = g_steal_pointer(&servers);
                f->warned_none = false;
        }
        f->checked = true;
        f->checked_at = now;
}

static void reply_empty(DnsForwardRequest *r_or_null, const DnsQuery *q, bool udp, uint8_t rcode,
                        DnsForwardDone done, void *userdata)
{
        uint8_t out[DNS_EDNS_UDP_SIZE];
        ssize_t n = dns_query_write_empty(q, rcode, rcode != DNS_RCODE_REFUSED, out,
                                          udp ? dns_query_udp_limit(q) : sizeof(out));
        (void)r_or_null;
        if (n >= 0)
                done(out, (size_t)n, userdata);
}

/* Ends a request with `reply` (taken; NULL: SERVFAIL), calls back and frees it. */
static void request_finish(DnsForwardRequest *r, DnsReply *reply)
{
        DnsForwarder *f = r->f;
        g_autoptr(DnsReply) owned = reply;

        g_hash_table_remove(f->pending, r);
        request_close(r);
        if (!reply) {
                f->stats.servfail++;
                reply_empty(r, &r->q, r->udp, DNS_RCODE_SERVFAIL, r->done, r->userdata);
        } else {
                size_t max = r->udp ? DNS_EDNS_UDP_SIZE : DNS_MAX_TCP;
                g_autofree uint8_t *out = g_malloc(max);
                ssize_t n = dns_reply_write(reply, &r->q, 0, r->udp, out, max);
                if (r->cache)
                        (void)dns_cache_put(f->cache, &r->q, g_steal_pointer(&owned), now_usec(f));
                if (n >= 0)
                        r->done(out, (size_t)n, r->userdata);
                else {
                        f->stats.servfail++;
                        reply_empty(r, &r->q, r->udp, DNS_RCODE_SERVFAIL, r->done, r->userdata);
                }
        }
        request_free(r);
}

static int start_attempt(DnsForwardRequest *r, bool tcp);
static void advance(DnsForwardRequest *r);

/* What an upstream answered (UDP datagram or the whole TCP message). */
static void on_answer(DnsForwardRequest *r, const uint8_t *a, size_t len)
{
        g_autoptr(DnsReply) reply = NULL;
        int k = dns_reply_parse(a, len, &r->q, r->id, &reply);

        if (k == -EBADMSG && !r->tcp)
                return; /* not the answer to this query (late, or forged): keep waiting */
        if (k < 0) {
                g_autofree char *s = dns_upstream_to_string(&r->server);
                log_debug("DNS: %s gave an unusable answer for %s: %s", s, r->q.name, g_strerror(-k));
                advance(r);
                return;
        }
        if (reply->truncated && !r->tcp) {
                /* The same server again, over TCP. */
                request_close(r);
                if (start_attempt(r, true) < 0)
                        advance(r);
                return;
        }
        if (reply->rcode != DNS_RCODE_NOERROR && reply->rcode != DNS_RCODE_NXDOMAIN) {
                g_autofree char *s = dns_upstream_to_string(&r->server);
                log_debug("DNS: %s answered rcode %u for %s; trying the next server.", s, reply->rcode,
                          r->q.name);
                advance(r);
                return;
        }
        request_finish(r, TAKE_PTR(reply));
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        DnsForwardRequest *r = userdata;
        g_autofree char *server = dns_upstream_to_string(&r->server);
        log_debug("DNS: %s did not answer for %s in time.", server, r->q.name);
        advance(r);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        DnsForwardRequest *r = userdata;
        DnsForwarder *f = r->f;

        if (!r->tcp) {
                ssize_t n = recv(fd, f->rbuf, sizeof(f->rbuf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                advance(r); /* e.g. ICMP port unreachable */
                        return 0;
                }
                on_answer(r, f->rbuf, (size_t)n);
                return 0;
        }
        if (r->out_off < r->query_len) {
                int err = 0;
                socklen_t l = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) {
                        advance(r);
                        return 0;
                }
                ssize_t w = send(fd, r->query + r->out_off, r->query_len - r->out_off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                advance(r);
                        return 0;
                }
                r->out_off += (size_t)w;
                if (r->out_off == r->query_len)
                        (void)sd_event_source_set_io_events(r->io, EPOLLIN);
                return 0;
        }
        /* Two bytes of length, then the message. */
        uint8_t *dst = r->in ? r->in + r->in_off : r->lenbuf + r->in_off;
        size_t want = r->in ? r->in_len - r->in_off : 2 - r->in_off;
        ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                advance(r);
                return 0;
        }
        if (n < 0)
                return 0;
        r->in_off += (size_t)n;
        if (!r->in && r->in_off == 2) {
                r->in_len = (size_t)(r->lenbuf[0] << 8 | r->lenbuf[1]);
                if (r->in_len < 12) {
                        advance(r);
                        return 0;
                }
                r->in = g_malloc(r->in_len);
                r->in_off = 0;
        } else if (r->in && r->in_off == r->in_len) {
                g_autofree uint8_t *msg = TAKE_PTR(r->in);
                on_answer(r, msg, r->in_len);
        }
        return 0;
}

static int start_attempt(DnsForwardRequest *r, bool tcp)
{
        DnsForwarder *f = r->f;
        socklen_t len =
                r->server.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        int k;

        r->tcp = tcp;
        r->id = (uint16_t)randombytes_uniform(65536);
        ssize_t n = dns_query_write_upstream(&r->q, r->id, r->query + 2, sizeof(r->query) - 2);
        if (n < 0)
                return (int)n;
        r->query[0] = (uint8_t)(n >> 8);
        r->query[1] = (uint8_t)n;
        /* A new socket per attempt: a random source port as well as a random id. */
        r->fd = socket(r->server.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       0);
        if (r->fd < 0)
                return -errno;
        if (connect(r->fd, (struct sockaddr *)&r->server, len) < 0 && errno != EINPROGRESS)
                return -errno;
        if (tcp) {
                r->query_len = 2 + (size_t)n;
                r->out_off = 0;
                r->in_off = 0;
                k = sd_event_add_io(f->event, &r->io, r->fd, EPOLLOUT, on_io, r);
        } else {
                if (send(r->fd, r->query + 2, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                        return -errno;
                k = sd_event_add_io(f->event, &r->io, r->fd, EPOLLIN, on_io, r);
        }
        if (k < 0)
                return k;
        k = sd_event_add_time_relative(f->event, &r->timer, CLOCK_MONOTONIC, f->config.attempt_usec, 0,
                                       on_timeout, r);
        if (k < 0)
                return k;
        f->stats.upstream++;
        return 0;
}

/* Tries the next server; 0 when an attempt is under way, -ENOENT when none is left. */
static int start_next(DnsForwardRequest *r)
{
        while (r->next < r->servers->len) {
                request_close(r);
                r->server = g_array_index(r->servers, struct sockaddr_storage, r->next++);
                int k = start_attempt(r, false);
                if (k >= 0)
                        return 0;
                g_autofree char *s = dns_upstream_to_string(&r->server);
                log_debug_errno(k, "DNS: cannot ask %s: %m", s);
        }
        request_close(r);
        return -ENOENT;
}

static void advance(DnsForwardRequest *r)
{
        if (start_next(r) < 0) {
                log_debug("DNS: no upstream server answered for %s; SERVFAIL.", r->q.name);
                request_finish(r, NULL);
        }
}

/* Starts asking `servers` (a reference is taken) for `q`, unless the rate limit, the cache or the
 * bound on pending queries answers it at once. */
static int forward(DnsForwarder *f, const DnsQuery *q, const struct sockaddr *client, bool udp,
                   GArray *servers, bool cache, DnsForwardDone done, void *userdata, DnsForwardRequest **ret)
{
        if (g_hash_table_size(f->pending) >= f->config.max_pending) {
                f->stats.servfail++;
                reply_empty(NULL, q, udp, DNS_RCODE_SERVFAIL, done, userdata);
                return 0;
        }
        DnsForwardRequest *r = g_new0(DnsForwardRequest, 1);
        r->f = f;
        r->q = *q;
        r->udp = udp;
        r->done = done;
        r->userdata = userdata;
        r->servers = g_array_ref(servers);
        r->cache = cache;
        r->fd = -1;
        g_hash_table_add(f->pending, r);
        if (start_next(r) < 0) {
                request_finish(r, NULL);
                return 0;
        }
        *ret = r;
        return 1;
}

int dns_forwarder_query_route(DnsForwarder *f, const DnsQuery *q, const struct sockaddr *client, bool udp,
                              const DnsRoute *route, bool local, DnsForwardDone done, void *userdata,
                              DnsForwardRequest **ret)
{
        *ret = NULL;
        f->stats.queries++;
        if (!local && ratelimit_check(f->rate, client, now_usec(f), NULL) < 0) {
                f->stats.rate_limited++;
                reply_empty(NULL, q, udp, DNS_RCODE_REFUSED, done, userdata);
                return 0;
        }
        if (route->servers->len == 0) {
                f->stats.refused++;
                reply_empty(NULL, q, udp, DNS_RCODE_REFUSED, done, userdata);
                return 0;
        }
        return forward(f, q, client, udp, route->servers, false, done, userdata, ret);
}

int dns_forwarder_query(DnsForwarder *f, const DnsQuery *q, const struct sockaddr *client, bool udp,
                        DnsForwardDone done, void *userdata, DnsForwardRequest **ret)
{
        uint64_t now = now_usec(f);
        uint32_t age = 0;

        *ret = NULL;
        f->stats.queries++;
        if (ratelimit_check(f->rate, client, now, NULL) < 0) {
                f->stats.rate_limited++;
                reply_empty(NULL, q, udp, DNS_RCODE_REFUSED, done, userdata);
                return 0;
        }
        const DnsReply *hit = dns_cache_get(f->cache, q, now, &age);
        if (hit) {
                size_t max = udp ? DNS_EDNS_UDP_SIZE : DNS_MAX_TCP;
                g_autofree uint8_t *out = g_malloc(max);
                ssize_t n = dns_reply_write(hit, q, age, udp, out, max);
                if (n >= 0) {
                        f->stats.cache_hits++;
                        done(out, (size_t)n, userdata);
                        return 0;
                }
        }
        refresh_servers(f, now);
        if (f->servers->len == 0) {
                if (!f->warned_none)
                        log_warning("DNS: no upstream resolver to forward to (%s names none but the stub or "
                                    "mesh addresses); refusing names outside the mesh.",
                                    f->resolv_conf);
                f->warned_none = true;
                f->stats.refused++;
                reply_empty(NULL, q, udp, DNS_RCODE_REFUSED, done, userdata);
                return 0;
        }
        return forward(f, q, client, udp, f->servers, true, done, userdata, ret);
}

void dns_forwarder_get_stats(DnsForwarder *f, DnsForwarderStats *ret)
{
        *ret = f->stats;
        ret->pending = g_hash_table_size(f->pending);
        ret->cached = dns_cache_size(f->cache);
}
