/* GetStatus(), GetPeers() and PeersChanged of org.netmaker.Client: one round trip for a desktop
 * menu, and the peers as an array with a serial (a journal of what changed) so a client follows
 * thousands of peers by asking only for what changed since it last looked. */
#include <errno.h>
#include <string.h>

#include "bus-errors.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "network.h"
#include "network-dns.h"
#include "nm-error.h"
#include "peer.h"
#include "status.h"

typedef struct Tombstone {
        NmKey key;
        uint64_t serial;
} Tombstone;

/* What changed in one network, for GetPeers. Peers carry their own change serial (Peer.change_serial);
 * removed ones leave a tombstone. */
typedef struct Journal {
        char *network;
        uint64_t floor;  /* a `since` below this gets the whole list: history before it is gone */
        uint64_t last;   /* the serial of the network's last change */
        GArray *removed; /* of Tombstone, oldest first */
        bool pending;    /* PeersChanged is due */
} Journal;

struct Status {
        Manager *manager;
        /* Serials start at the wall clock in µs: a later run of the daemon starts above what an
         * earlier one gave out (unless the clock went back), and they stay below 2^53, so that
         * JavaScript numbers hold them exactly. */
        uint64_t serial;
        GHashTable *journals; /* network name -> Journal* */
        sd_event_source *signal_timer;
};

static void journal_free(gpointer p)
{
        Journal *j = p;
        g_array_unref(j->removed);
        g_free(j->network);
        g_free(j);
}

int status_new(Manager *m, Status **ret)
{
        Status *s = g_new0(Status, 1);

        s->manager = m;
        s->serial = (uint64_t)g_get_real_time();
        s->journals = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, journal_free);
        *ret = s;
        return 0;
}

Status *status_free(Status *s)
{
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->signal_timer);
        g_hash_table_unref(s->journals);
        g_free(s);
        return NULL;
}

uint64_t status_serial(Status *s)
{
        return s->serial;
}

static Journal *journal_of(Network *n)
{
        Status *s = n->manager->status;
        return s ? g_hash_table_lookup(s->journals, n->name) : NULL;
}

/* ---- PeersChanged, coalesced ----------------------------------------------------------------- */

static void emit_pending(Status *s)
{
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, s->journals);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Journal *j = v;
                if (!j->pending)
                        continue;
                j->pending = false;
                if (s->manager->bus)
                        (void)sd_bus_emit_signal(s->manager->bus, NETCLIENT_OBJECT_PATH, NETCLIENT_INTERFACE,
                                                 "PeersChanged", "st", j->network, j->last);
        }
}

static int on_signal_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        emit_pending(userdata);
        return 0;
}

static void schedule_signal(Status *s)
{
        sd_event *e = s->manager->event;
        uint64_t now;

        if (!e) {
                emit_pending(s);
                return;
        }
        if (s->signal_timer && sd_event_source_get_enabled(s->signal_timer, NULL) > 0)
                return; /* one is due already: this change goes with it */
        (void)sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (!s->signal_timer) {
                if (sd_event_add_time(e, &s->signal_timer, CLOCK_MONOTONIC, now + STATUS_SIGNAL_DELAY_USEC,
                                      0, on_signal_timer, s) < 0) {
                        emit_pending(s);
                        return;
                }
                (void)sd_event_source_set_description(s->signal_timer, "peers-changed");
                return;
        }
        (void)sd_event_source_set_time(s->signal_timer, now + STATUS_SIGNAL_DELAY_USEC);
        (void)sd_event_source_set_enabled(s->signal_timer, SD_EVENT_ONESHOT);
}

static uint64_t journal_touch(Status *s, Journal *j)
{
        uint64_t serial = ++s->serial;
        if (j) {
                j->last = serial;
                j->pending = true;
                schedule_signal(s);
        }
        return serial;
}

/* ---- hooks ----------------------------------------------------------------------------------- */

void status_network_added(Network *n)
{
        Status *s = n->manager->status;
        Journal *j;

        if (!s || g_hash_table_contains(s->journals, n->name))
                return;
        j = g_new0(Journal, 1);
        j->network = g_strdup(n->name);
        /* Nothing before this network existed can be answered with a difference. */
        j->floor = j->last = ++s->serial;
        j->removed = g_array_new(false, false, sizeof(Tombstone));
        g_hash_table_insert(s->journals, j->network, j);
}

void status_network_removed(Network *n)
{
        Status *s = n->manager->status;
        if (s)
                g_hash_table_remove(s->journals, n->name);
}

static void forget_tombstone(Journal *j, const NmKey *key)
{
        for (guint i = 0; i < j->removed->len; i++)
                if (nm_key_equal(&g_array_index(j->removed, Tombstone, i).key, key)) {
                        g_array_remove_index(j->removed, i);
                        return;
                }
}

void status_peer_changed(Peer *p)
{
        Status *s = p->network->manager->status;
        Journal *j;

        if (!s)
                return;
        j = journal_of(p->network);
        p->change_serial = journal_touch(s, j);
        /* Back after a removal: the client sees it as changed, not as removed and changed. */
        if (j)
                forget_tombstone(j, &p->desired->public_key);
}

void status_peer_removed(Peer *p)
{
        Status *s = p->network->manager->status;
        Journal *j = journal_of(p->network);
        Tombstone t;

        if (!s || !j)
                return;
        t.key = p->desired->public_key;
        t.serial = journal_touch(s, j);
        forget_tombstone(j, &t.key);
        g_array_append_val(j->removed, t);
        if (j->removed->len > STATUS_MAX_TOMBSTONES) {
                /* Forget the older half; a client that was further behind gets the whole list. */
                guint drop = j->removed->len / 2;
                j->floor = g_array_index(j->removed, Tombstone, drop - 1).serial;
                g_array_remove_range(j->removed, 0, drop);
        }
}

static bool peer_online(Peer *p)
{
        uint64_t now = (uint64_t)g_get_real_time();

        return network_is_connected(p->network) && p->latest_handshake_usec > 0 &&
               p->latest_handshake_usec + STATUS_ONLINE_USEC > now;
}

void status_peer_refresh_online(Peer *p)
{
        bool online = peer_online(p);

        if (online == p->online)
                return;
        p->online = online;
        status_peer_changed(p);
}

void status_network_connection_changed(Network *n)
{
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                status_peer_refresh_online(v);
}

/* ---- a{sv} helpers --------------------------------------------------------------------------- */

static int dict_s(sd_bus_message *m, const char *k, const char *v)
{
        return sd_bus_message_append(m, "{sv}", k, "s", strempty(v));
}

static int dict_o(sd_bus_message *m, const char *k, const char *v)
{
        return sd_bus_message_append(m, "{sv}", k, "o", v);
}

static int dict_b(sd_bus_message *m, const char *k, bool v)
{
        return sd_bus_message_append(m, "{sv}", k, "b", (int)v);
}

static int dict_u(sd_bus_message *m, const char *k, uint32_t v)
{
        return sd_bus_message_append(m, "{sv}", k, "u", v);
}

static int dict_t(sd_bus_message *m, const char *k, uint64_t v)
{
        return sd_bus_message_append(m, "{sv}", k, "t", v);
}

static int dict_strv(sd_bus_message *m, const char *k, char **v)
{
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", k);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, v ? v : (char *[]){NULL});
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int strcmp_p(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- GetStatus ------------------------------------------------------------------------------- */

static int peer_by_path(gconstpointer a, gconstpointer b)
{
        return strcmp((*(Peer *const *)a)->path, (*(Peer *const *)b)->path);
}

static GPtrArray *sorted_peers(Network *n)
{
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(a, v);
        g_ptr_array_sort(a, peer_by_path);
        return a;
}

/* The internet gateways a user can pick in this network: (node id, name) of the peers that offer one. */
static int append_gateways(sd_bus_message *m, GPtrArray *peers)
{
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "internet-gateways");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(ss)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ss)");
        for (guint i = 0; r >= 0 && i < peers->len; i++) {
                Peer *p = peers->pdata[i];
                if (p->desired->internet_gateway && p->desired->node_id)
                        r = sd_bus_message_append(m, "(ss)", p->desired->node_id,
                                                  strempty(p->desired->name));
        }
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_network_status(sd_bus_message *m, Network *n)
{
        g_autoptr(GPtrArray) peers = sorted_peers(n);
        g_auto(GStrv) addresses = network_addresses(n);
        g_auto(GStrv) roles = network_role_names(n);
        const char *via = n->desired->roles.internet_gateway_via, *via_name = NULL;
        Journal *j = journal_of(n);
        uint32_t online = 0;
        int r;

        for (guint i = 0; i < peers->len; i++) {
                Peer *p = peers->pdata[i];
                if (p->online)
                        online++;
                if (via && streq0(p->desired->node_id, via))
                        via_name = p->desired->name;
        }
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = dict_s(m, "name", n->name);
        if (r >= 0)
                r = dict_o(m, "path", n->path);
        if (r >= 0)
                r = dict_s(m, "interface", n->ifname);
        if (r >= 0)
                r = dict_b(m, "connected", network_is_connected(n));
        if (r >= 0)
                r = dict_s(m, "node-id", n->desired->node_id);
        if (r >= 0)
                r = dict_s(m, "host-name", n->desired->host_name);
        if (r >= 0)
                r = dict_strv(m, "addresses", addresses);
        if (r >= 0)
                r = dict_s(m, "dns-zone", network_dns_zone_name(n));
        if (r >= 0)
                r = dict_s(m, "dns-state", network_dns_state(n));
        if (r >= 0)
                r = dict_strv(m, "roles", roles);
        if (r >= 0)
                r = dict_s(m, "internet-gateway-via", via);
        if (r >= 0)
                r = dict_s(m, "internet-gateway-via-name", via_name);
        if (r >= 0)
                r = append_gateways(m, peers);
        if (r >= 0)
                r = dict_u(m, "peers", peers->len);
        if (r >= 0)
                r = dict_u(m, "peers-online", online);
        if (r >= 0)
                r = dict_t(m, "peers-serial", j ? j->last : 0);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int status_method_get_status(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        ManagerState state = manager_get_state(m);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GHashTableIter it;
        gpointer k;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = dict_s(reply, "version", PACKAGE_VERSION);
        if (r >= 0)
                r = dict_s(reply, "state", manager_state_to_string(state));
        /* Registered and the broker unreachable: the tunnels keep working with the last peers. */
        if (r >= 0)
                r = dict_b(reply, "control-plane-reachable", state == MANAGER_STATE_ONLINE);
        if (r >= 0)
                r = dict_s(reply, "host-id", m->server ? m->server->host_id : "");
        if (r >= 0)
                r = dict_s(reply, "server", m->server ? m->server->api : "");
        if (r >= 0)
                r = dict_s(reply, "public-address", m->public_ip);
        if (r < 0)
                return r;

        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_ptr_array_add(names, k);
        g_ptr_array_sort(names, strcmp_p);
        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "networks");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "aa{sv}");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (guint i = 0; r >= 0 && i < names->len; i++)
                r = append_network_status(reply, manager_get_network(m, names->pdata[i]));
        for (int c = 0; r >= 0 && c < 4; c++) /* a, v, e, and the outer a{sv} */
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- GetPeers -------------------------------------------------------------------------------- */

static int append_peer(sd_bus_message *m, Peer *p)
{
        char key[NM_KEY_B64_LEN + 1];
        char *addresses[3] = {};
        size_t i = 0;
        int r;

        nm_key_to_base64(&p->desired->public_key, key);
        if (p->desired->ipv4)
                addresses[i++] = p->desired->ipv4;
        if (p->desired->ipv6)
                addresses[i++] = p->desired->ipv6;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = dict_o(m, "path", p->path);
        if (r >= 0)
                r = dict_s(m, "public-key", key);
        if (r >= 0)
                r = dict_s(m, "host-id", p->desired->host_id);
        if (r >= 0)
                r = dict_s(m, "node-id", p->desired->node_id);
        if (r >= 0)
                r = dict_s(m, "name", p->desired->name);
        if (r >= 0)
                r = dict_strv(m, "addresses", addresses);
        if (r >= 0)
                r = dict_strv(m, "allowed-ips", p->desired->allowed_ips);
        if (r >= 0)
                r = dict_s(m, "endpoint", peer_endpoint(p));
        if (r >= 0)
                r = dict_b(m, "online", p->online);
        if (r >= 0)
                r = dict_b(m, "external", p->desired->external);
        if (r >= 0)
                r = dict_b(m, "internet-gateway", p->desired->internet_gateway);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int status_method_get_peers(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) peers = NULL;
        Manager *m = userdata;
        const char *network;
        uint64_t since;
        Network *n;
        Journal *j;
        bool complete;
        int r;

        r = sd_bus_message_read(msg, "st", &network, &since);
        if (r < 0)
                return r;
        if (!nm_network_name_valid(network, &e))
                return bus_error_set_gerror(error, e);
        n = manager_get_network(m, network);
        if (!n)
                return bus_error_setf_code(error, NM_ERROR_NOT_FOUND, "Network \"%s\" is not joined",
                                           network);
        j = journal_of(n);
        /* 0, a serial from before the history we keep, or one this run never gave out (another run
         * of the daemon): the whole list. */
        complete = !j || since == 0 || since < j->floor || since > m->status->serial;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "tb", j ? j->last : status_serial(m->status),
                                          (int)complete);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        peers = sorted_peers(n);
        for (guint i = 0; r >= 0 && i < peers->len; i++) {
                Peer *p = peers->pdata[i];
                if (complete || p->change_serial > since)
                        r = append_peer(reply, p);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "s");
        for (guint i = 0; r >= 0 && !complete && i < j->removed->len; i++) {
                Tombstone *t = &g_array_index(j->removed, Tombstone, i);
                char key[NM_KEY_B64_LEN + 1];
                if (t->serial <= since)
                        continue;
                nm_key_to_base64(&t->key, key);
                r = sd_bus_message_append(reply, "s", key);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
