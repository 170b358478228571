/* STUN Binding queries (RFC 5389 §7.2.1) that run on a worker thread and report back to the event
 * loop, and the STUN server names of the configuration; the messages are src/shared/stun-codec.c. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "macro.h"
#include "nm-error.h"
#include "stun.h"

#define DEFAULT_TIMEOUT_USEC     (2500 * 1000ULL)
#define MAX_ADDRESSES_PER_SERVER 4

static bool host_chars_valid(const char *h)
{
        for (const char *c = h; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != '_')
                        return false;
        return true;
}

int stun_server_parse(const char *s, char **ret_host, uint16_t *ret_port, GError **error)
{
        g_autofree char *host = NULL;
        const char *port_s = NULL;
        guint64 port = STUN_DEFAULT_PORT;
        int family;
        NmInAddr a;

        if (!s || !*s || strlen(s) > 260)
                goto invalid;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end)
                        goto invalid;
                host = g_strndup(s + 1, (gsize)(end - s - 1));
                if (nm_addr_parse(host, &family, &a) < 0 || family != AF_INET6)
                        goto invalid;
                if (end[1] == ':')
                        port_s = end + 2;
                else if (end[1])
                        goto invalid;
        } else if (strchr(s, ':') && strchr(s, ':') != strrchr(s, ':')) {
                /* Several colons: a bare IPv6 address without port. */
                host = g_strdup(s);
                if (nm_addr_parse(host, &family, &a) < 0)
                        goto invalid;
        } else {
                const char *colon = strchr(s, ':');
                host = colon ? g_strndup(s, (gsize)(colon - s)) : g_strdup(s);
                port_s = colon ? colon + 1 : NULL;
                if (!*host || strlen(host) > 253 || !host_chars_valid(host))
                        goto invalid;
        }
        if (port_s && !g_ascii_string_to_unsigned(port_s, 10, 1, 65535, &port, NULL))
                goto invalid;
        if (ret_host)
                *ret_host = TAKE_PTR(host);
        if (ret_port)
                *ret_port = (uint16_t)port;
        return 0;

invalid:;
        g_autofree char *v = g_utf8_make_valid(strempty(s), MIN(strlen(strempty(s)), 64));
        g_set_error(
                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                "Invalid STUN server \"%s\": expected HOST, HOST:PORT, IPv4:PORT or [IPv6]:PORT with a port "
                "of 1-65535",
                v);
        return -EINVAL;
}

/* ---- queries ------------------------------------------------------------------------------------------ */

struct StunQuery {
        gint refs; /* the loop's and the worker's */
        gint cancelled;
        bool finished;
        int efd;
        sd_event_source *io;
        char **servers;
        uint64_t timeout_usec;
        StunCallback callback;
        void *userdata;
        /* Written by the worker before it signals the eventfd. */
        char *result;
        char *error;
};

static void query_unref(StunQuery *q)
{
        if (!q || !g_atomic_int_dec_and_test(&q->refs))
                return;
        if (q->efd >= 0)
                close(q->efd);
        g_strfreev(q->servers);
        g_free(q->result);
        g_free(q->error);
        g_free(q);
}

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* One exchange with one address: requests at 0, 0.5, 1.5 s (RFC 5389's doubling RTO), answers
 * accepted until the deadline. Returns 0 with the address in *ret, or a negative errno. */
static int exchange(StunQuery *q, const struct addrinfo *ai, char **ret)
{
        _cleanup_close_ int fd = -1;
        uint8_t txid[STUN_TXID_SIZE], req[STUN_REQUEST_SIZE], buf[1500];
        uint64_t start = now_usec(), deadline = start + q->timeout_usec, next = start, rto = 500 * 1000;

        if (getrandom(txid, sizeof(txid), 0) != (ssize_t)sizeof(txid))
                return -EIO;
        stun_binding_request(req, txid);
        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                return -errno;

        for (;;) {
                uint64_t now = now_usec(), wake;
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int family, r;
                NmInAddr a;
                ssize_t n;

                if (g_atomic_int_get(&q->cancelled))
                        return -ECANCELED;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (now >= next) {
                        /* A send error (no route, ...) is final for this address. */
                        if (send(fd, req, sizeof(req), 0) < 0)
                                return -errno;
                        next = now + rto;
                        rto *= 2;
                }
                wake = MIN(next, deadline);
                /* Short slices, so a cancelled query lets go soon. */
                r = poll(&p, 1, (int)MIN((wake - now + 999) / 1000, 200));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        /* ICMP port unreachable comes back as ECONNREFUSED: nobody serves there. */
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (stun_parse_binding_response(buf, (size_t)n, txid, &family, &a, NULL) < 0)
                        continue; /* not ours, or malformed: keep waiting */
                *ret = nm_addr_to_string(family, &a);
                return 0;
        }
}

static gpointer worker(gpointer data)
{
        StunQuery *q = data;
        g_autoptr(GString) errors = g_string_new(NULL);

        for (char **s = q->servers; *s && !q->result && !g_atomic_int_get(&q->cancelled); s++) {
                g_autofree char *host = NULL;
                char port_s[8];
                uint16_t port;
                struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
                int r, n = 0;

                if (stun_server_parse(*s, &host, &port, NULL) < 0)
                        continue;
                g_snprintf(port_s, sizeof(port_s), "%u", port);
                r = getaddrinfo(host, port_s, &hints, &res);
                if (r != 0) {
                        g_string_append_printf(errors, "%s%s: %s", errors->len ? "; " : "", *s,
                                               r == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(r));
                        continue;
                }
                for (struct addrinfo *ai = res; ai && n < MAX_ADDRESSES_PER_SERVER && !q->result;
                     ai = ai->ai_next) {
                        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                                continue;
                        n++;
                        r = exchange(q, ai, &q->result);
                        if (r < 0 && r != -ECANCELED)
                                g_string_append_printf(errors, "%s%s: %s", errors->len ? "; " : "", *s,
                                                       r == -ETIMEDOUT ? "no answer" : g_strerror(-r));
                }
                freeaddrinfo(res);
        }
        if (!q->result)
                q->error = g_strdup(errors->len ? errors->str : "no server answered");
        (void)eventfd_write(q->efd, 1);
        query_unref(q);
        return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        StunQuery *q = userdata;
        eventfd_t v;

        (void)eventfd_read(fd, &v);
        q->io = sd_event_source_disable_unref(q->io);
        q->finished = true;
        if (!g_atomic_int_get(&q->cancelled) && q->callback)
                q->callback(q, q->result, q->result ? NULL : q->error, q->userdata);
        query_unref(q);
        return 0;
}

int stun_query_start(sd_event *event, char **servers, uint64_t timeout_usec, StunCallback callback,
                     void *userdata, StunQuery **ret)
{
        g_autoptr(GError) e = NULL;
        StunQuery *q;
        GThread *t;
        int r;

        if (!servers || !*servers)
                return -EINVAL;
        q = g_new0(StunQuery, 1);
        q->refs = 1;
        q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        q->servers = g_strdupv(servers);
        q->timeout_usec = timeout_usec ? timeout_usec : DEFAULT_TIMEOUT_USEC;
        q->callback = callback;
        q->userdata = userdata;
        if (q->efd < 0) {
                r = -errno;
                query_unref(q);
                return r;
        }
        r = sd_event_add_io(event, &q->io, q->efd, EPOLLIN, on_done, q);
        if (r < 0) {
                query_unref(q);
                return r;
        }
        (void)sd_event_source_set_description(q->io, "stun");
        g_atomic_int_inc(&q->refs);
        t = g_thread_try_new("stun", worker, q, &e);
        if (!t) {
                (void)g_atomic_int_dec_and_test(&q->refs);
                q->io = sd_event_source_disable_unref(q->io);
                query_unref(q);
                return -EAGAIN;
        }
        g_thread_unref(t); /* detached: it ends by itself */
        *ret = q;
        return 0;
}

StunQuery *stun_query_cancel(StunQuery *q)
{
        if (!q || q->finished)
                return NULL;
        g_atomic_int_set(&q->cancelled, 1);
        q->io = sd_event_source_disable_unref(q->io);
        query_unref(q);
        return NULL;
}
