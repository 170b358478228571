/* Proves what a desktop client gets from GetStatus(), GetPeers() and PeersChanged: the menu's
 * data in one reply (state, networks with address, connection, peers online, internet gateways to
 * choose from); all peers for since=0 and afterwards only those that changed and the keys of those
 * removed, the whole list again for a serial it cannot answer; one coalesced signal for a burst of
 * changes; and "online" following the handshakes and the network's connection. The manager's
 * objects are served on one end of a socket pair and called from the other (no bus daemon). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager.h"
#include "network.h"
#include "peer.h"
#include "status.h"
#include "test-agent-fixture.h"
#include "wg.h"

typedef struct Fixture {
        char *dir;
        Config *config;
        Manager *m;
        char *host_id;
        sd_event *event;
        sd_bus *client;
        GPtrArray *signals; /* of GVariant (st): PeersChanged as received */
} Fixture;

/* ---- sd-bus message -> GVariant, so that replies are checked with g_variant_lookup() ---------- */

static GVariant *read_one(sd_bus_message *m);

static GVariant *read_items(sd_bus_message *m, char type, const char *contents)
{
        g_autofree char *sig = type == 'a'   ? g_strconcat("a", contents, NULL)
                               : type == 'r' ? g_strconcat("(", contents, ")", NULL)
                                             : g_strconcat("{", contents, "}", NULL);
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE(sig));
        g_assert_cmpint(sd_bus_message_enter_container(m, type, contents), >, 0);
        while (sd_bus_message_at_end(m, false) == 0)
                g_variant_builder_add_value(&b, read_one(m));
        g_assert_cmpint(sd_bus_message_exit_container(m), >, 0);
        return g_variant_builder_end(&b);
}

static GVariant *read_one(sd_bus_message *m)
{
        const char *contents = NULL;
        char type;
        union {
                const char *s;
                int b;
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
        } v;

        g_assert_cmpint(sd_bus_message_peek_type(m, &type, &contents), >, 0);
        switch (type) {
        case 'a':
        case 'r':
        case 'e':
                return read_items(m, type, contents);
        case 'v': {
                g_assert_cmpint(sd_bus_message_enter_container(m, 'v', contents), >, 0);
                GVariant *inner = read_one(m);
                g_assert_cmpint(sd_bus_message_exit_container(m), >, 0);
                return g_variant_new_variant(inner);
        }
        default:
                g_assert_cmpint(sd_bus_message_read_basic(m, type, &v), >, 0);
                switch (type) {
                case 's':
                        return g_variant_new_string(v.s);
                case 'o':
                        return g_variant_new_object_path(v.s);
                case 'b':
                        return g_variant_new_boolean(v.b);
                case 'u':
                        return g_variant_new_uint32(v.u);
                case 't':
                        return g_variant_new_uint64(v.t);
                case 'q':
                        return g_variant_new_uint16(v.q);
                case 'i':
                        return g_variant_new_int32(v.i);
                default:
                        g_error("unexpected type %c", type);
                }
        }
}

/* The whole body as a tuple. */
static GVariant *body(sd_bus_message *m)
{
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_TUPLE);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);
        while (sd_bus_message_at_end(m, true) == 0)
                g_variant_builder_add_value(&b, read_one(m));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* ---- fixture --------------------------------------------------------------------------------- */

static int on_signal(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Fixture *f = userdata;
        g_ptr_array_add(f->signals, body(msg));
        return 0;
}

static void setup(Fixture *f, gconstpointer data)
{
        int s[2];
        sd_id128_t id;

        agent_fixture_setup("test-status-bus-XXXXXX", &f->dir, &f->config, &f->m, &f->host_id);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->m->event = sd_event_ref(f->event);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);
        g_assert_cmpint(sd_bus_new(&f->m->bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->m->bus, s[0], s[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(f->m->bus, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_start(f->m->bus), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->m->bus, f->event, 0), >=, 0);
        g_assert_cmpint(manager_bus_register(f->m), ==, 0);

        g_assert_cmpint(sd_bus_new(&f->client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->client, s[1], s[1]), >=, 0);
        g_assert_cmpint(sd_bus_start(f->client), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->client, f->event, 0), >=, 0);
        f->signals = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        g_assert_cmpint(sd_bus_match_signal(f->client, NULL, NULL, NETCLIENT_OBJECT_PATH,
                                            NETCLIENT_INTERFACE, "PeersChanged", on_signal, f),
                        >=, 0);
}

static void teardown(Fixture *f, gconstpointer data)
{
        sd_bus_flush_close_unref(f->client);
        g_ptr_array_unref(f->signals);
        sd_event_unref(f->event);
        agent_fixture_teardown(f->dir, f->config, f->m, f->host_id);
}

typedef struct Reply {
        bool done;
        char *error_name;
        GVariant *body;
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Reply *r = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        r->done = true;
        if (e)
                r->error_name = g_strdup(e->name);
        else
                r->body = body(m);
        return 0;
}

/* Calls `member` with the arguments appended by the caller and returns the reply's body. */
static GVariant *call(Fixture *f, sd_bus_message *msg, char **ret_error)
{
        Reply r = {};
        g_assert_cmpint(sd_bus_call_async(f->client, NULL, msg, on_reply, &r, 5 * 1000000ULL), >=, 0);
        for (int i = 0; i < 10000 && !r.done; i++)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_true(r.done);
        sd_bus_message_unref(msg);
        if (ret_error)
                *ret_error = r.error_name;
        else
                g_assert_null(r.error_name);
        return r.body;
}

static sd_bus_message *new_call(Fixture *f, const char *member)
{
        sd_bus_message *m = NULL;
        g_assert_cmpint(sd_bus_message_new_method_call(f->client, &m, NULL, NETCLIENT_OBJECT_PATH,
                                                       NETCLIENT_INTERFACE, member),
                        >=, 0);
        return m;
}

static GVariant *get_status(Fixture *f)
{
        GVariant *b = call(f, new_call(f, "GetStatus"), NULL);
        GVariant *d = g_variant_get_child_value(b, 0);
        g_variant_unref(b);
        return d;
}

typedef struct Peers {
        uint64_t serial;
        bool complete;
        GVariant *peers;   /* aa{sv} */
        GVariant *removed; /* as */
} Peers;

static void peers_clear(Peers *p)
{
        g_clear_pointer(&p->peers, g_variant_unref);
        g_clear_pointer(&p->removed, g_variant_unref);
}

static void get_peers(Fixture *f, const char *network, uint64_t since, Peers *ret)
{
        sd_bus_message *m = new_call(f, "GetPeers");
        g_assert_cmpint(sd_bus_message_append(m, "st", network, since), >=, 0);
        g_autoptr(GVariant) b = call(f, m, NULL);
        gboolean complete;
        g_variant_get(b, "(tb@aa{sv}@as)", &ret->serial, &complete, &ret->peers, &ret->removed);
        ret->complete = complete;
}

/* Runs the loop for `usec`. */
static void run_for(Fixture *f, uint64_t usec)
{
        uint64_t until = g_get_monotonic_time() + usec;
        while ((uint64_t)g_get_monotonic_time() < until)
                g_assert_cmpint(sd_event_run(f->event, 10 * 1000), >=, 0);
}

/* ---- state ----------------------------------------------------------------------------------- */

static NmPeer *make_peer(const char *name, guint i, bool gateway)
{
        NmPeer *p = nm_peer_new();
        NmKey priv;
        p->host_id = nm_uuid_new();
        p->node_id = nm_uuid_new();
        p->name = g_strdup(name);
        nm_key_generate_wg(&priv, &p->public_key);
        p->ipv4 = g_strdup_printf("10.99.%u.%u", i / 250, i % 250 + 2);
        g_autofree char *ip = g_strdup_printf("%s/32", p->ipv4);
        p->allowed_ips = g_strsplit(ip, ",", -1);
        p->keepalive = 20;
        p->internet_gateway = gateway;
        return p;
}

/* Joins `name` with `n_peers` peers (the first offers an internet gateway when `gateway`). */
static Network *add_network(Fixture *f, const char *name, const char *address, guint n_peers, bool gateway)
{
        NmNetworkState *s = nm_network_state_new();
        s->network = g_strdup(name);
        s->node_id = nm_uuid_new();
        s->ipv4 = g_strdup(address);
        s->listen_port = 51821;
        s->mtu = 1420;
        s->keepalive = 20;
        s->host_name = g_strdup("laptop");
        s->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        for (guint i = 0; i < n_peers; i++) {
                g_autofree char *pn = g_strdup_printf("peer%u", i);
                g_ptr_array_add(s->peers, make_peer(pn, i, gateway && i == 0));
        }
        Network *n = manager_add_network(f->m, s);
        g_assert_nonnull(n);
        return n;
}

static Peer *peer_at(Network *n, guint i)
{
        NmPeer *dp = n->desired->peers->pdata[i];
        Peer *p = network_find_peer(n, &dp->public_key);
        g_assert_nonnull(p);
        return p;
}

/* The device reports a handshake `age_sec` seconds ago. */
static void handshake(Peer *p, int64_t age_sec)
{
        g_autoptr(WgPeer) wp = wg_peer_new(&p->desired->public_key);
        int64_t at = g_get_real_time() - age_sec * G_USEC_PER_SEC;
        wp->last_handshake.tv_sec = at / G_USEC_PER_SEC;
        wp->last_handshake.tv_nsec = (at % G_USEC_PER_SEC) * 1000;
        wp->rx_bytes = 100;
        peer_update_stats(p, wp);
}

static GVariant *network_entry(GVariant *status, const char *name)
{
        g_autoptr(GVariant) nets = g_variant_lookup_value(status, "networks", G_VARIANT_TYPE("aa{sv}"));
        g_assert_nonnull(nets);
        for (gsize i = 0; i < g_variant_n_children(nets); i++) {
                GVariant *n = g_variant_get_child_value(nets, i);
                const char *nn = NULL;
                if (g_variant_lookup(n, "name", "&s", &nn) && strcmp(nn, name) == 0)
                        return n;
                g_variant_unref(n);
        }
        return NULL;
}

static GHashTable *names_of(GVariant *peers)
{
        GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (gsize i = 0; i < g_variant_n_children(peers); i++) {
                g_autoptr(GVariant) p = g_variant_get_child_value(peers, i);
                const char *name = NULL;
                g_assert_true(g_variant_lookup(p, "name", "&s", &name));
                g_hash_table_add(h, g_strdup(name));
        }
        return h;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_get_status(Fixture *f, gconstpointer data)
{
        Network *office = add_network(f, "office", "10.99.0.1/24", 3, true);
        add_network(f, "lab", "10.98.0.1/24", 1, false);
        g_hash_table_add(f->m->disconnected, g_strdup("lab"));
        NmPeer *gw = office->desired->peers->pdata[0];
        handshake(peer_at(office, 1), 10);
        handshake(peer_at(office, 2), 600); /* long ago: not online */
        g_free(office->desired->roles.internet_gateway_via);
        office->desired->roles.internet_gateway_via = g_strdup(gw->node_id);

        g_autoptr(GVariant) st = get_status(f);
        const char *s = NULL;
        gboolean b = TRUE;
        g_assert_true(g_variant_lookup(st, "state", "&s", &s));
        /* Registered, no broker connection: the control plane is unreachable, the tunnels are not. */
        g_assert_cmpstr(s, ==, "offline");
        g_assert_true(g_variant_lookup(st, "control-plane-reachable", "b", &b));
        g_assert_false(b);
        g_assert_true(g_variant_lookup(st, "host-id", "&s", &s));
        g_assert_cmpstr(s, ==, f->host_id);
        g_assert_true(g_variant_lookup(st, "version", "&s", &s));

        g_autoptr(GVariant) nets = g_variant_lookup_value(st, "networks", G_VARIANT_TYPE("aa{sv}"));
        g_assert_cmpuint(g_variant_n_children(nets), ==, 2);
        g_autoptr(GVariant) first = g_variant_get_child_value(nets, 0);
        g_assert_true(g_variant_lookup(first, "name", "&s", &s));
        g_assert_cmpstr(s, ==, "lab"); /* sorted by name */

        g_autoptr(GVariant) o = network_entry(st, "office");
        g_autofree const char **addresses = NULL;
        uint32_t u = 0;
        g_assert_true(g_variant_lookup(o, "connected", "b", &b));
        g_assert_true(b);
        g_assert_true(g_variant_lookup(o, "addresses", "^a&s", &addresses));
        g_assert_cmpstr(addresses[0], ==, "10.99.0.1/24");
        g_assert_null(addresses[1]);
        g_assert_true(g_variant_lookup(o, "interface", "&s", &s));
        g_assert_cmpstr(s, ==, "nm-office");
        g_assert_true(g_variant_lookup(o, "path", "&o", &s));
        g_assert_cmpstr(s, ==, "/org/netmaker/Client/network/office");
        g_assert_true(g_variant_lookup(o, "peers", "u", &u));
        g_assert_cmpuint(u, ==, 3);
        g_assert_true(g_variant_lookup(o, "peers-online", "u", &u));
        g_assert_cmpuint(u, ==, 1);
        g_assert_true(g_variant_lookup(o, "internet-gateway-via", "&s", &s));
        g_assert_cmpstr(s, ==, gw->node_id);
        g_assert_true(g_variant_lookup(o, "internet-gateway-via-name", "&s", &s));
        g_assert_cmpstr(s, ==, "peer0");
        g_autoptr(GVariant) gws = g_variant_lookup_value(o, "internet-gateways", G_VARIANT_TYPE("a(ss)"));
        g_assert_cmpuint(g_variant_n_children(gws), ==, 1);
        const char *gw_id, *gw_name;
        g_variant_get_child(gws, 0, "(&s&s)", &gw_id, &gw_name);
        g_assert_cmpstr(gw_id, ==, gw->node_id);
        g_assert_cmpstr(gw_name, ==, "peer0");
        uint64_t serial = 0;
        g_assert_true(g_variant_lookup(o, "peers-serial", "t", &serial));
        g_assert_cmpuint(serial, >, 0);
        /* Below 2^53: a JavaScript number holds it exactly. */
        g_assert_cmpuint(serial, <, 1ULL << 53);

        g_autoptr(GVariant) l = network_entry(st, "lab");
        g_assert_true(g_variant_lookup(l, "connected", "b", &b));
        g_assert_false(b);
}

static void test_get_peers_delta(Fixture *f, gconstpointer data)
{
        Network *n = add_network(f, "office", "10.99.0.1/24", 5, false);
        Peers a = {}, b = {}, c = {}, d = {};

        get_peers(f, "office", 0, &a);
        g_assert_true(a.complete);
        g_assert_cmpuint(g_variant_n_children(a.peers), ==, 5);
        g_assert_cmpuint(g_variant_n_children(a.removed), ==, 0);
        /* Nothing changed since: nothing comes back, and it is no full list. */
        get_peers(f, "office", a.serial, &b);
        g_assert_false(b.complete);
        g_assert_cmpuint(b.serial, ==, a.serial);
        g_assert_cmpuint(g_variant_n_children(b.peers), ==, 0);
        peers_clear(&b);

        /* One peer renamed, one removed, one added (a snapshot-like replacement of the peers). */
        NmNetworkState *s = nm_network_state_copy(n->desired);
        NmPeer *renamed = s->peers->pdata[1];
        g_free(renamed->name);
        renamed->name = g_strdup("renamed");
        NmPeer *gone = s->peers->pdata[3];
        char gone_key[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&gone->public_key, gone_key);
        g_ptr_array_remove_index(s->peers, 3);
        g_ptr_array_add(s->peers, make_peer("newcomer", 9, false));
        network_set_desired(n, s);

        get_peers(f, "office", a.serial, &c);
        g_assert_false(c.complete);
        g_assert_cmpuint(c.serial, >, a.serial);
        g_autoptr(GHashTable) changed = names_of(c.peers);
        g_assert_cmpuint(g_hash_table_size(changed), ==, 2);
        g_assert_true(g_hash_table_contains(changed, "renamed"));
        g_assert_true(g_hash_table_contains(changed, "newcomer"));
        g_assert_cmpuint(g_variant_n_children(c.removed), ==, 1);
        const char *k = NULL;
        g_variant_get_child(c.removed, 0, "&s", &k);
        g_assert_cmpstr(k, ==, gone_key);

        /* A serial this run never gave out (another run of the daemon): the whole list. */
        get_peers(f, "office", c.serial + 1000, &d);
        g_assert_true(d.complete);
        g_assert_cmpuint(g_variant_n_children(d.peers), ==, 5);
        peers_clear(&d);
        get_peers(f, "office", 1, &d); /* older than the network */
        g_assert_true(d.complete);
        peers_clear(&d);

        /* Unknown networks and bad names are errors. */
        char *err = NULL;
        sd_bus_message *m = new_call(f, "GetPeers");
        g_assert_cmpint(sd_bus_message_append(m, "st", "ghost", (uint64_t)0), >=, 0);
        g_assert_null(call(f, m, &err));
        g_assert_cmpstr(err, ==, "org.netmaker.Client.Error.NotFound");
        g_free(err);
        m = new_call(f, "GetPeers");
        g_assert_cmpint(sd_bus_message_append(m, "st", "Bad/Name", (uint64_t)0), >=, 0);
        g_assert_null(call(f, m, &err));
        g_assert_cmpstr(err, ==, "org.netmaker.Client.Error.InvalidArgument");
        g_free(err);
        peers_clear(&a);
        peers_clear(&c);
}

static void test_peers_changed_coalesced(Fixture *f, gconstpointer data)
{
        Network *n = add_network(f, "office", "10.99.0.1/24", 0, false);
        run_for(f, 2 * STATUS_SIGNAL_DELAY_USEC);
        g_ptr_array_set_size(f->signals, 0);

        /* A burst: 300 peers arrive, then one is renamed, all within the delay. */
        NmNetworkState *s = nm_network_state_copy(n->desired);
        for (guint i = 0; i < 300; i++) {
                g_autofree char *pn = g_strdup_printf("p%u", i);
                g_ptr_array_add(s->peers, make_peer(pn, i, false));
        }
        network_set_desired(n, s);
        s = nm_network_state_copy(n->desired);
        NmPeer *p0 = s->peers->pdata[0];
        g_free(p0->name);
        p0->name = g_strdup("first");
        network_set_desired(n, s);
        g_assert_cmpuint(f->signals->len, ==, 0); /* not yet: coalescing */
        run_for(f, 3 * STATUS_SIGNAL_DELAY_USEC);
        g_assert_cmpuint(f->signals->len, ==, 1);
        const char *net = NULL;
        uint64_t serial = 0;
        g_variant_get(f->signals->pdata[0], "(&st)", &net, &serial);
        g_assert_cmpstr(net, ==, "office");
        Peers p = {};
        get_peers(f, "office", 0, &p);
        g_assert_cmpuint(p.serial, ==, serial);
        g_assert_cmpuint(g_variant_n_children(p.peers), ==, 300);
        peers_clear(&p);
}

static bool online_in(GVariant *peers, const char *name)
{
        for (gsize i = 0; i < g_variant_n_children(peers); i++) {
                g_autoptr(GVariant) p = g_variant_get_child_value(peers, i);
                const char *pn = NULL;
                gboolean online = FALSE;
                g_variant_lookup(p, "name", "&s", &pn);
                g_variant_lookup(p, "online", "b", &online);
                if (strcmp(pn, name) == 0)
                        return online;
        }
        g_error("peer %s not in the reply", name);
}

static void test_online(Fixture *f, gconstpointer data)
{
        Network *n = add_network(f, "office", "10.99.0.1/24", 2, false);
        Peer *p0 = peer_at(n, 0);
        Peers a = {}, b = {}, c = {}, d = {};

        get_peers(f, "office", 0, &a);
        g_assert_false(online_in(a.peers, "peer0"));
        /* A fresh handshake: online, and that is a change. */
        handshake(p0, 5);
        get_peers(f, "office", a.serial, &b);
        g_assert_cmpuint(g_variant_n_children(b.peers), ==, 1);
        g_assert_true(online_in(b.peers, "peer0"));
        /* Traffic counters and a newer handshake are no change of the array. */
        handshake(p0, 1);
        get_peers(f, "office", b.serial, &c);
        g_assert_cmpuint(g_variant_n_children(c.peers), ==, 0);
        peers_clear(&c);
        /* The session expired: offline. */
        handshake(p0, 200);
        get_peers(f, "office", b.serial, &c);
        g_assert_cmpuint(g_variant_n_children(c.peers), ==, 1);
        g_assert_false(online_in(c.peers, "peer0"));
        /* Online again, then the network is disconnected: nobody is online. */
        handshake(p0, 1);
        g_hash_table_add(f->m->disconnected, g_strdup("office"));
        status_network_connection_changed(n);
        get_peers(f, "office", c.serial, &d);
        g_assert_false(online_in(d.peers, "peer0"));
        g_autoptr(GVariant) st = get_status(f);
        g_autoptr(GVariant) o = network_entry(st, "office");
        uint32_t online = 99;
        g_assert_true(g_variant_lookup(o, "peers-online", "u", &online));
        g_assert_cmpuint(online, ==, 0);
        peers_clear(&a);
        peers_clear(&b);
        peers_clear(&c);
        peers_clear(&d);
}

static void test_tombstones_overflow(Fixture *f, gconstpointer data)
{
        Network *n = add_network(f, "office", "10.99.0.1/24", 0, false);
        Peers a = {}, b = {};
        get_peers(f, "office", 0, &a);
        /* More removals than are remembered: a client that far behind gets the whole list. */
        for (guint round = 0; round < STATUS_MAX_TOMBSTONES / 100 + 2; round++) {
                NmNetworkState *s = nm_network_state_copy(n->desired);
                for (guint i = 0; i < 100; i++) {
                        g_autofree char *pn = g_strdup_printf("r%u-%u", round, i);
                        g_ptr_array_add(s->peers, make_peer(pn, i, false));
                }
                network_set_desired(n, s);
                s = nm_network_state_copy(n->desired);
                g_ptr_array_set_size(s->peers, 0);
                network_set_desired(n, s);
        }
        get_peers(f, "office", a.serial, &b);
        g_assert_true(b.complete);
        g_assert_cmpuint(g_variant_n_children(b.peers), ==, 0);
        peers_clear(&a);
        peers_clear(&b);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        log_set_max_level(LOG_WARNING);
#define ADD(path, fn) g_test_add("/netclientd/status/" path, Fixture, NULL, setup, fn, teardown)
        ADD("get-status", test_get_status);
        ADD("get-peers-delta", test_get_peers_delta);
        ADD("peers-changed-coalesced", test_peers_changed_coalesced);
        ADD("online", test_online);
        ADD("tombstones-overflow", test_tombstones_overflow);
        return g_test_run();
}
