/* The UDP port: handshake initiations observed (bounded work per datagram and per source, replays
 * refused, never answered), STUN Binding requests answered without amplification, and observed
 * endpoints that go stale expired. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "observer-keys.h"
#include "observer.h"
#include "ratelimit.h"
#include "stun-codec.h"
#include "wg-initiation.h"

/* Datagrams read per wake-up: the loop serves everything else in between. */
#define BATCH 64
/* Initiations opened per second, whoever sends them (two X25519 each). */
#define MAX_OPENS_PER_SEC 2000
/* A node's observed endpoint changes at most this often: a host whose packets alternate between two
 * mappings (two uplinks) cannot make the server fan out a change per packet. */
#define CHANGE_INTERVAL_USEC (10 * G_USEC_PER_SEC)
/* An observed endpoint nobody sent from for this long is forgotten (the host went away, or moved
 * where the server cannot see it); WireGuard sends at least every two minutes to a peer that never
 * answers (18 attempts 5 s apart, then the next keepalive starts over). */
#define EXPIRY_USEC (5 * 60 * G_USEC_PER_SEC)
#define SWEEP_USEC  (60 * G_USEC_PER_SEC)

typedef struct ObservedNode {
        uint8_t timestamp[WG_TAI64N_SIZE]; /* the newest accepted: replay protection */
        bool have_timestamp;
        uint64_t last_seen_usec;
        uint64_t last_change_usec;
} ObservedNode;

typedef struct NetworkKey {
        char *name;
        const WgResponder *responder; /* owned by the Manager's ObserverKeys */
} NetworkKey;

struct Observer {
        Manager *manager;
        int fd;
        bool activated;
        bool stun;
        int family;
        NmInAddr address;
        uint16_t port;
        sd_event_source *io;
        sd_event_source *sweep;
        RateLimit *limit;
        GArray *networks;  /* of NetworkKey; NULL: to be loaded */
        GHashTable *nodes; /* node id -> ObservedNode* */
        uint64_t budget_second;
        unsigned budget_used;
        ObserverStats stats;
};

static uint64_t now_usec(Observer *o)
{
        uint64_t t = 0;
        (void)sd_event_now(o->manager->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void networks_clear(Observer *o)
{
        if (!o->networks)
                return;
        for (guint i = 0; i < o->networks->len; i++)
                g_free(g_array_index(o->networks, NetworkKey, i).name);
        g_clear_pointer(&o->networks, g_array_unref);
}

void observer_networks_changed(Observer *o)
{
        if (o)
                networks_clear(o);
}

static int load_networks(Observer *o)
{
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(GError) e = NULL;
        int r;

        if (o->networks)
                return 0;
        r = store_network_list(o->manager->store, &all, &e);
        if (r < 0)
                return log_warning_errno(r, "Observer: failed to list the networks: %s", e->message);
        o->networks = g_array_new(false, false, sizeof(NetworkKey));
        for (guint i = 0; i < all->len; i++) {
                const Network *n = all->pdata[i];
                NetworkKey k = {.name = g_strdup(n->name),
                                .responder = observer_keys_get(o->manager->observer_keys, n->name)};
                if (k.responder)
                        g_array_append_val(o->networks, k);
                else
                        g_free(k.name);
        }
        return 0;
}

/* Over the global budget of decryptions this second? */
static bool over_budget(Observer *o, uint64_t now)
{
        uint64_t second = now / G_USEC_PER_SEC;
        if (second != o->budget_second) {
                o->budget_second = second;
                o->budget_used = 0;
        }
        return ++o->budget_used > MAX_OPENS_PER_SEC;
}

static bool rate_limited(Observer *o, const struct sockaddr *sa, uint64_t now)
{
        uint64_t retry;
        if (o->limit && ratelimit_check(o->limit, sa, now, &retry) < 0) {
                o->stats.rate_limited++;
                return true;
        }
        return false;
}

static ObservedNode *observed_node(Observer *o, const char *node_id)
{
        ObservedNode *on = g_hash_table_lookup(o->nodes, node_id);
        if (!on) {
                on = g_new0(ObservedNode, 1);
                g_hash_table_insert(o->nodes, g_strdup(node_id), on);
        }
        return on;
}

/* Stores the node's new endpoint (NULL: forgets it) and sends the changes. */
static int store_observed(Observer *o, const Node *node, const char *endpoint)
{
        Manager *m = o->manager;
        g_autoptr(GError) e = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int r;

        r = store_txn_begin(m->store, &t, &e);
        if (r >= 0)
                r = peers_node_observed(m->store, node->id, endpoint, manager_now(), out, &e);
        if (r >= 0)
                r = manager_commit(m, &t, out, &e);
        if (r < 0)
                return log_warning_errno(r, "Observer: failed to store the endpoint of node %s: %s",
                                         node->id, e->message);
        if (endpoint)
                log_info("Network %s: host \"%s\" (node %s) sends from %s (was %s); %u message(s) sent.",
                         node->network, node->host_name, node->id, endpoint, strna(node->observed_endpoint),
                         out->msgs->len);
        else
                log_info(
                        "Network %s: host \"%s\" (node %s) not seen for %u minutes: forgot its endpoint %s.",
                        node->network, node->host_name, node->id,
                        (unsigned)(EXPIRY_USEC / G_USEC_PER_SEC / 60), strna(node->observed_endpoint));
        return 0;
}

static char *sockaddr_endpoint(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                NmInAddr a = {};
                memcpy(a.bytes, &in->sin_addr, 4);
                return nm_endpoint_to_string(AF_INET, &a, ntohs(in->sin_port));
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                NmInAddr a = {};
                memcpy(a.bytes, &in6->sin6_addr, 16);
                return nm_endpoint_to_string(AF_INET6, &a, ntohs(in6->sin6_port));
        }
        return NULL;
}

static void handle_initiation(Observer *o, const uint8_t *buf, size_t len, const struct sockaddr *sa,
                              uint64_t now)
{
        Manager *m = o->manager;
        const NetworkKey *net = NULL;
        uint8_t timestamp[WG_TAI64N_SIZE];
        g_autofree char *host_id = NULL;
        g_autoptr(Node) node = NULL;
        NmKey sender;

        o->stats.initiations++;
        if (rate_limited(o, sa, now))
                return;
        if (load_networks(o) < 0)
                return;
        /* mac1 names the network (one keyed BLAKE2s per network, no Diffie-Hellman). */
        for (guint i = 0; i < o->networks->len && !net; i++) {
                const NetworkKey *k = &g_array_index(o->networks, NetworkKey, i);
                if (wg_initiation_mac1_matches(k->responder, buf, len))
                        net = k;
        }
        if (!net) {
                o->stats.unknown++;
                return;
        }
        if (over_budget(o, now)) {
                o->stats.rate_limited++;
                return;
        }
        if (wg_initiation_open(net->responder, buf, len, &sender, timestamp) < 0 ||
            store_host_find_by_wg_key(m->store, &sender, &host_id, NULL) < 0 ||
            store_node_find(m->store, host_id, net->name, &node, NULL) < 0) {
                o->stats.unknown++;
                return;
        }
        ObservedNode *on = observed_node(o, node->id);
        if (on->have_timestamp && wg_tai64n_compare(timestamp, on->timestamp) <= 0) {
                /* A replay (or a copy sent from elsewhere): it proves nothing about where the node is. */
                o->stats.replayed++;
                return;
        }
        memcpy(on->timestamp, timestamp, sizeof(timestamp));
        on->have_timestamp = true;
        on->last_seen_usec = now;
        o->stats.accepted++;

        g_autofree char *endpoint = sockaddr_endpoint(sa);
        if (!endpoint || streq0(endpoint, node->observed_endpoint))
                return;
        if (on->last_change_usec != 0 && now - on->last_change_usec < CHANGE_INTERVAL_USEC)
                return;
        if (store_observed(o, node, endpoint) >= 0) {
                on->last_change_usec = now;
                o->stats.moved++;
        }
}

static void handle_stun(Observer *o, const uint8_t *buf, size_t len, const struct sockaddr *sa,
                        socklen_t salen, uint64_t now)
{
        uint8_t txid[STUN_TXID_SIZE], out[STUN_RESPONSE_MAX];
        NmInAddr a = {};
        int family;
        uint16_t port;

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                family = AF_INET;
                memcpy(a.bytes, &in->sin_addr, 4);
                port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                family = AF_INET6;
                memcpy(a.bytes, &in6->sin6_addr, 16);
                port = ntohs(in6->sin6_port);
        } else
                return;
        if (stun_parse_binding_request(buf, len, txid) < 0) {
                o->stats.ignored++;
                return;
        }
        size_t n = stun_binding_success(out, sizeof(out), txid, family, &a, port);
        /* Never more bytes out than in: this port cannot amplify anyone's traffic. */
        if (n == 0 || n > len) {
                o->stats.ignored++;
                return;
        }
        if (rate_limited(o, sa, now))
                return;
        if (sendto(o->fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL, sa, salen) == (ssize_t)n)
                o->stats.stun_answers++;
}

/* IPv4 sources of a dual-stack socket arrive as ::ffff:a.b.c.d: count and store them as IPv4. */
static void unmap_v4(struct sockaddr_storage *ss, socklen_t *len)
{
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
                return;
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = in6->sin6_port};
        memcpy(&in.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, &in, sizeof(in));
        *len = sizeof(in);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Observer *o = userdata;

        for (int i = 0; i < BATCH; i++) {
                uint8_t buf[1500];
                struct sockaddr_storage from = {};
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_debug_errno(errno, "Observer: failed to read a datagram: %m");
                        break;
                }
                unmap_v4(&from, &fl);
                uint64_t now = now_usec(o);
                if (wg_initiation_looks_valid(buf, (size_t)n))
                        handle_initiation(o, buf, (size_t)n, (struct sockaddr *)&from, now);
                else if (o->stun && n >= STUN_HEADER_SIZE && (buf[0] & 0xc0) == 0)
                        handle_stun(o, buf, (size_t)n, (struct sockaddr *)&from, fl, now);
                else
                        o->stats.ignored++;
        }
        return 0;
}

/* Forgets endpoints not seen for EXPIRY_USEC. */
static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata)
{
        Observer *o = userdata;
        uint64_t now = now_usec(o);
        g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, o->nodes);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                ObservedNode *on = v;
                if (now - on->last_seen_usec >= EXPIRY_USEC)
                        g_ptr_array_add(stale, g_strdup(k));
        }
        for (guint i = 0; i < stale->len; i++) {
                g_autoptr(Node) node = NULL;
                const char *id = stale->pdata[i];
                if (store_node_get(o->manager->store, id, &node, NULL) >= 0 && node->observed_endpoint)
                        (void)store_observed(o, node, NULL);
                g_hash_table_remove(o->nodes, id);
        }
        (void)sd_event_source_set_time(s, now + SWEEP_USEC);
        return 0;
}

static int bind_socket(const ObserverSettings *s, int *ret)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        _cleanup_close_ int fd = -1;

        fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (s->family == AF_INET) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(s->port);
                memcpy(&sa.in.sin_addr, s->address->bytes, 4);
                len = sizeof(sa.in);
        } else {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(s->port);
                memcpy(&sa.in6.sin6_addr, s->address->bytes, 16);
                len = sizeof(sa.in6);
                /* "[::]" takes IPv4 too. */
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                                 &(int){!IN6_IS_ADDR_UNSPECIFIED(&sa.in6.sin6_addr)}, sizeof(int));
        }
        if (bind(fd, &sa.sa, len) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

static int read_bound(Observer *o)
{
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(ss);

        if (getsockname(o->fd, (struct sockaddr *)&ss, &len) < 0)
                return -errno;
        o->family = ss.ss_family;
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
                memcpy(o->address.bytes, &in->sin_addr, 4);
                o->port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
                memcpy(o->address.bytes, &in6->sin6_addr, 16);
                o->port = ntohs(in6->sin6_port);
        } else
                return -EAFNOSUPPORT;
        return 0;
}

/* What the database says was observed before: those endpoints expire like new ones. */
static void load_observed(Observer *o, uint64_t now)
{
        g_autoptr(GPtrArray) nodes = NULL;
        if (store_node_list(o->manager->store, NULL, NULL, &nodes, NULL) < 0)
                return;
        for (guint i = 0; i < nodes->len; i++) {
                const Node *n = nodes->pdata[i];
                if (n->observed_endpoint)
                        observed_node(o, n->id)->last_seen_usec = now;
        }
}

int observer_new(Manager *m, const ObserverSettings *s, Observer **ret)
{
        Observer *o = g_new0(Observer, 1);
        uint64_t now;
        int r;

        o->manager = m;
        o->fd = -1;
        o->stun = s->stun;
        o->nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (s->fd >= 0) {
                o->fd = s->fd;
                o->activated = true;
                int flags = fcntl(o->fd, F_GETFL);
                if (flags < 0 || fcntl(o->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                        r = -errno;
                        goto fail;
                }
        } else {
                r = bind_socket(s, &o->fd);
                if (r < 0)
                        goto fail;
        }
        r = read_bound(o);
        if (r < 0)
                goto fail;
        if (s->rate_burst > 0) {
                r = ratelimit_new(s->rate_burst, (uint64_t)s->rate_period_sec * G_USEC_PER_SEC,
                                  s->rate_sources, &o->limit);
                if (r < 0)
                        goto fail;
        }
        r = sd_event_add_io(m->event, &o->io, o->fd, EPOLLIN, on_io, o);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(o->io, "observer");
        (void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(m->event, &o->sweep, CLOCK_MONOTONIC, now + SWEEP_USEC, G_USEC_PER_SEC,
                              on_sweep, o);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(o->sweep, "observer-sweep");
        load_observed(o, now);
        *ret = o;
        return 0;
fail:
        observer_free(o);
        return r;
}

void observer_free(Observer *o)
{
        if (!o)
                return;
        sd_event_source_disable_unref(o->io);
        sd_event_source_disable_unref(o->sweep);
        if (o->fd >= 0)
                close(o->fd);
        ratelimit_free(o->limit);
        networks_clear(o);
        g_hash_table_unref(o->nodes);
        g_free(o);
}

int observer_family(Observer *o)
{
        return o->family;
}

const NmInAddr *observer_address(Observer *o)
{
        return &o->address;
}

uint16_t observer_port(Observer *o)
{
        return o->port;
}

bool observer_socket_activated(Observer *o)
{
        return o->activated;
}

const ObserverStats *observer_stats(Observer *o)
{
        return &o->stats;
}
