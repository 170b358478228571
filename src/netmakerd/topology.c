/* Topologies: the index of a view (members by id, relayed nodes per relay, external clients per
 * gateway, the ACL bitsets), one peer entry per (viewer, peer), and the diff of two views. */
#include <string.h>

#include "acl.h"
#include "cidr.h"
#include "endpoints.h"
#include "json-util.h"
#include "macro.h"
#include "topology.h"

typedef struct TopoIndex {
        GHashTable *nodes;           /* node id -> Member */
        GHashTable *position;        /* Member -> index + 1 in members */
        GHashTable *clients;         /* ext client id -> ExtClient */
        GHashTable *relayed;         /* relay node id -> GPtrArray of Member it relays (in members order) */
        GHashTable *gateway_clients; /* gateway node id -> GPtrArray of ExtClient */
        GPtrArray *relays;           /* of Member: the members with the relay role */
        GHashTable *failovers;       /* node id -> GPtrArray of Failover it is in, as a pair or as relay */
        AclIndex *acl;
} TopoIndex;

void topo_index_free(TopoIndex *x)
{
        if (!x)
                return;
        g_hash_table_unref(x->nodes);
        g_hash_table_unref(x->position);
        g_hash_table_unref(x->clients);
        g_hash_table_unref(x->relayed);
        g_hash_table_unref(x->gateway_clients);
        g_ptr_array_unref(x->relays);
        g_hash_table_unref(x->failovers);
        acl_index_free(x->acl);
        g_free(x);
}

void topo_view_changed(PeerView *v)
{
        g_clear_pointer(&v->index, topo_index_free);
}

static void append_to(GHashTable *h, const char *key, gpointer value)
{
        GPtrArray *a = g_hash_table_lookup(h, key);
        if (!a) {
                a = g_ptr_array_new();
                g_hash_table_insert(h, (gpointer)key, a);
        }
        g_ptr_array_add(a, value);
}

/* The index is a cache of the view: built on first use, also through a const view. */
static const TopoIndex *index_of(const PeerView *cv)
{
        PeerView *v = (PeerView *)cv;
        if (v->index)
                return v->index;

        TopoIndex *x = g_new0(TopoIndex, 1);
        x->nodes = g_hash_table_new(g_str_hash, g_str_equal);
        x->position = g_hash_table_new(NULL, NULL);
        x->clients = g_hash_table_new(g_str_hash, g_str_equal);
        x->relayed = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
        x->gateway_clients =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
        x->relays = g_ptr_array_new();
        x->failovers =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);

        g_autofree const Node **nodes = g_new0(const Node *, v->members->len + 1);
        for (guint i = 0; i < v->members->len; i++) {
                Member *m = v->members->pdata[i];
                g_hash_table_insert(x->nodes, m->node->id, m);
                g_hash_table_insert(x->position, m, GUINT_TO_POINTER(i + 1));
                nodes[i] = m->node;
        }
        for (guint i = 0; i < v->members->len; i++) {
                Member *m = v->members->pdata[i];
                Member *relay = m->node->roles.relayed_by
                                        ? g_hash_table_lookup(x->nodes, m->node->roles.relayed_by)
                                        : NULL;
                if (m->node->roles.relay)
                        g_ptr_array_add(x->relays, m);
                /* No chains: a relay relays nobody's relay, and nobody relays itself. */
                if (relay && relay != m && relay->node->roles.relay && !relay->node->roles.relayed_by)
                        append_to(x->relayed, relay->node->id, m);
        }
        for (guint i = 0; v->ext_clients && i < v->ext_clients->len; i++) {
                ExtClient *c = v->ext_clients->pdata[i];
                g_hash_table_insert(x->clients, c->id, c);
                append_to(x->gateway_clients, c->gateway, c);
        }
        for (guint i = 0; v->failovers && i < v->failovers->len; i++) {
                Failover *f = v->failovers->pdata[i];
                append_to(x->failovers, f->node_a, f);
                append_to(x->failovers, f->node_b, f);
                append_to(x->failovers, f->relay, f);
        }
        x->acl = acl_index_new(v->acl_deny, v->acl_rules, nodes, v->members->len);
        v->index = x;
        return x;
}

static guint position_of(const TopoIndex *x, const Member *m)
{
        gpointer p = g_hash_table_lookup(x->position, m);
        g_assert(p);
        return GPOINTER_TO_UINT(p) - 1;
}

const Member *topo_find_node(const PeerView *v, const char *node_id)
{
        return node_id ? g_hash_table_lookup(index_of(v)->nodes, node_id) : NULL;
}

const ExtClient *topo_find_ext_client(const PeerView *v, const char *id)
{
        return id ? g_hash_table_lookup(index_of(v)->clients, id) : NULL;
}

static GPtrArray *relayed_by(const PeerView *v, const Member *relay)
{
        return g_hash_table_lookup(index_of(v)->relayed, relay->node->id);
}

const Member *topo_relay_of(const PeerView *v, const Member *m)
{
        const Member *r = topo_find_node(v, m->node->roles.relayed_by);
        GPtrArray *a = r ? relayed_by(v, r) : NULL;
        return a && g_ptr_array_find(a, m, NULL) ? r : NULL;
}

const Member *topo_internet_gateway_of(const PeerView *v, const Member *m)
{
        const Member *g = topo_find_node(v, m->node->roles.internet_gateway_via);
        return g && g != m && g->node->roles.internet_gateway ? g : NULL;
}

bool topo_allowed(const PeerView *v, const Member *a, const Member *b)
{
        const TopoIndex *x = index_of(v);
        return acl_index_allowed(x->acl, position_of(x, a), position_of(x, b));
}

/* `q` is someone `viewer` may exchange packets with, directly or forwarded. A disconnected node is
 * nobody's peer, but keeps its own peers in its state: its link has none while it is disconnected,
 * and a Connect on the host restores them at once, before the server has heard of it. */
static bool reachable(const PeerView *v, const Member *viewer, const Member *q)
{
        return q != viewer && q->node->connected && !streq0(q->host->id, viewer->host->id) &&
               topo_allowed(v, viewer, q);
}

bool topo_direct(const PeerView *v, const Member *viewer, const Member *peer)
{
        if (!reachable(v, viewer, peer))
                return false;
        const Member *rv = topo_relay_of(v, viewer), *rp = topo_relay_of(v, peer);
        return (!rv || rv == peer) && (!rp || rp == viewer);
}

/* A stored failover counts while its relay may relay (the failover role), both nodes peer with it
 * directly, and the two still peer with each other; otherwise the pair is simply direct. */
static const Member *failover_relay(const PeerView *v, const Failover *f)
{
        const Member *a = topo_find_node(v, f->node_a), *b = topo_find_node(v, f->node_b),
                     *r = topo_find_node(v, f->relay);
        if (!a || !b || !r || r == a || r == b || !r->node->roles.failover)
                return NULL;
        if (!topo_direct(v, a, b) || !topo_direct(v, a, r) || !topo_direct(v, b, r))
                return NULL;
        return r;
}

const Member *topo_failover_relay_of(const PeerView *v, const Member *a, const Member *b)
{
        GPtrArray *fs = g_hash_table_lookup(index_of(v)->failovers, a->node->id);
        for (guint i = 0; fs && i < fs->len; i++) {
                const Failover *f = fs->pdata[i];
                if ((streq0(f->node_a, a->node->id) && streq0(f->node_b, b->node->id)) ||
                    (streq0(f->node_b, a->node->id) && streq0(f->node_a, b->node->id)))
                        return failover_relay(v, f);
        }
        return NULL;
}

bool topo_failover_relay_eligible(const PeerView *v, const Member *relay, const Member *a, const Member *b)
{
        return relay != a && relay != b && relay->node->roles.failover && topo_direct(v, a, b) &&
               topo_direct(v, a, relay) && topo_direct(v, b, relay);
}

/* The ids of the nodes whose entries a viewer's failovers tie together: its partners and their
 * relays (as a pair member), or the pairs it relays. */
static void add_failover_ids(GHashTable *into, const PeerView *v, const char *viewer)
{
        GPtrArray *fs = g_hash_table_lookup(index_of(v)->failovers, viewer);
        for (guint i = 0; fs && i < fs->len; i++) {
                const Failover *f = fs->pdata[i];
                g_hash_table_add(into, f->node_a);
                g_hash_table_add(into, f->node_b);
                g_hash_table_add(into, f->relay);
        }
}

/* ---- entries -------------------------------------------------------------------------------- */

typedef struct IpList {
        GPtrArray *ips; /* of char*, NULL-terminated at the end */
        GHashTable *seen;
} IpList;

static void ip_add(IpList *l, const char *ip)
{
        if (!ip || g_hash_table_contains(l->seen, ip))
                return;
        char *c = g_strdup(ip);
        g_hash_table_add(l->seen, c);
        g_ptr_array_add(l->ips, c);
}

static void ip_add_host(IpList *l, const char *addr, bool v6)
{
        if (!addr)
                return;
        g_autofree char *c = g_strconcat(addr, v6 ? "/128" : "/32", NULL);
        ip_add(l, c);
}

static void ip_add_client(IpList *l, const ExtClient *c)
{
        ip_add_host(l, c->ipv4, false);
        ip_add_host(l, c->ipv6, true);
        for (char **e = c->extra_allowed_ips; e && *e; e++)
                ip_add(l, *e);
}

/* What `q` takes from `viewer` towards itself and beyond: its addresses, its egress ranges, its
 * external clients, and the internet when it is the viewer's internet gateway. */
static void ip_add_forwarded(IpList *l, const PeerView *v, const Member *viewer, const Member *q)
{
        const NmRoles *r = &q->node->roles;

        ip_add_host(l, q->node->ipv4, false);
        ip_add_host(l, q->node->ipv6, true);
        for (char **e = r->egress_ranges; e && *e; e++)
                ip_add(l, *e);
        if (r->ingress) {
                GPtrArray *clients = g_hash_table_lookup(index_of(v)->gateway_clients, q->node->id);
                for (guint i = 0; clients && i < clients->len; i++) {
                        const ExtClient *c = clients->pdata[i];
                        /* A node the client may not reach does not take its packets either. */
                        if (c->enabled && !ext_client_denies(c, viewer->node->id))
                                ip_add_client(l, c);
                }
        }
        if (topo_internet_gateway_of(v, viewer) == q) {
                if (v->network->ipv4_range)
                        ip_add(l, "0.0.0.0/0");
                if (v->network->ipv6_range)
                        ip_add(l, "::/0");
        }
}

static char **ip_list_steal(IpList *l)
{
        g_hash_table_steal_all(l->seen);
        g_hash_table_unref(l->seen);
        g_ptr_array_add(l->ips, NULL);
        return (char **)g_ptr_array_free(l->ips, false);
}

static IpList ip_list_new(void)
{
        return (IpList){.ips = g_ptr_array_new(), .seen = g_hash_table_new(g_str_hash, g_str_equal)};
}

guint topo_pair_keepalive(const PeerView *v, const Host *a, const Host *b)
{
        /* A host's own keepalive holds for every pair it is in, in both directions (the side
         * behind a NAT must send them, and either side may be the one); when both set one, the
         * shorter wins, and "off" only when both want it off. */
        if (a->has_keepalive && b->has_keepalive) {
                if (a->keepalive == 0 || b->keepalive == 0)
                        return MAX(a->keepalive, b->keepalive);
                return MIN(a->keepalive, b->keepalive);
        }
        if (a->has_keepalive)
                return a->keepalive;
        if (b->has_keepalive)
                return b->keepalive;
        return v->network->keepalive;
}

NmPeer *topo_peer_entry(const PeerView *v, const Member *viewer, const Member *peer)
{
        if (!topo_direct(v, viewer, peer))
                return NULL;

        IpList l = ip_list_new();
        guint keepalive = topo_pair_keepalive(v, viewer->host, peer->host);
        if (topo_failover_relay_of(v, viewer, peer)) {
                /* Relayed: a probe, with its endpoint and keepalive but no allowed IPs, so WireGuard
                 * keeps trying the direct path while the relay carries the traffic. */
                keepalive = keepalive ?: TOPO_PROBE_KEEPALIVE;
        } else
                ip_add_forwarded(&l, v, viewer, peer);
        if (peer->node->roles.failover) {
                /* What it relays for this viewer: the other node of each of the viewer's failovers
                 * through it. */
                GPtrArray *fs = g_hash_table_lookup(index_of(v)->failovers, viewer->node->id);
                for (guint i = 0; fs && i < fs->len; i++) {
                        const Failover *f = fs->pdata[i];
                        if (!streq0(f->relay, peer->node->id) || failover_relay(v, f) != peer)
                                continue;
                        const Member *other = topo_find_node(
                                v, streq0(f->node_a, viewer->node->id) ? f->node_b : f->node_a);
                        if (other)
                                ip_add_forwarded(&l, v, viewer, other);
                }
        }
        if (topo_relay_of(v, viewer) == peer) {
                /* The viewer's only peer: everything it may reach goes through here. */
                for (guint i = 0; i < v->members->len; i++) {
                        const Member *q = v->members->pdata[i];
                        if (q != peer && reachable(v, viewer, q))
                                ip_add_forwarded(&l, v, viewer, q);
                }
        } else if (peer->node->roles.relay) {
                GPtrArray *relayed = relayed_by(v, peer);
                for (guint i = 0; relayed && i < relayed->len; i++) {
                        const Member *q = relayed->pdata[i];
                        if (reachable(v, viewer, q))
                                ip_add_forwarded(&l, v, viewer, q);
                }
        }

        NmPeer *p = nm_peer_new();
        p->host_id = g_strdup(peer->host->id);
        p->name = g_strdup(peer->host->name);
        p->public_key = peer->host->wg_key;
        p->endpoint = endpoint_choose(viewer, peer);
        p->allowed_ips = ip_list_steal(&l);
        p->keepalive = keepalive;
        p->ipv4 = g_strdup(peer->node->ipv4);
        p->ipv6 = g_strdup(peer->node->ipv6);
        /* So that a host can name the node when it picks its internet gateway (SetInternetGateway). */
        p->node_id = g_strdup(peer->node->id);
        p->internet_gateway = peer->node->roles.internet_gateway;
        return p;
}

NmPeer *topo_ext_client_entry(const PeerView *v, const Member *viewer, const ExtClient *c)
{
        if (!c->enabled || !viewer->node->roles.ingress || !streq0(c->gateway, viewer->node->id))
                return NULL;
        IpList l = ip_list_new();
        ip_add_client(&l, c);
        NmPeer *p = nm_peer_new();
        p->host_id = g_strdup(c->id);
        p->name = g_strdup(c->name);
        p->public_key = c->public_key;
        p->allowed_ips = ip_list_steal(&l);
        p->ipv4 = g_strdup(c->ipv4);
        p->ipv6 = g_strdup(c->ipv6);
        p->external = true;
        p->internet = c->internet_gateway;
        return p;
}

GPtrArray *topo_peers_of(const PeerView *v, const Member *viewer)
{
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        for (guint i = 0; i < v->members->len; i++) {
                NmPeer *p = topo_peer_entry(v, viewer, v->members->pdata[i]);
                if (p)
                        g_ptr_array_add(a, p);
        }
        GPtrArray *clients = g_hash_table_lookup(index_of(v)->gateway_clients, viewer->node->id);
        for (guint i = 0; clients && i < clients->len; i++) {
                NmPeer *p = topo_ext_client_entry(v, viewer, clients->pdata[i]);
                if (p)
                        g_ptr_array_add(a, p);
        }
        return a;
}

char **topo_ext_client_allowed_ips(const PeerView *v, const ExtClient *c)
{
        IpList l = ip_list_new();
        if (c && c->internet_gateway) {
                ip_add(&l, "0.0.0.0/0");
                ip_add(&l, "::/0");
                return ip_list_steal(&l);
        }
        ip_add(&l, v->network->ipv4_range);
        ip_add(&l, v->network->ipv6_range);
        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                for (char **e = m->node->roles.egress_ranges; e && *e; e++)
                        ip_add(&l, *e);
        }
        return ip_list_steal(&l);
}

/* ---- dirty sets ----------------------------------------------------------------------------- */

struct TopoDirty {
        bool all;
        GHashTable *viewers;  /* node ids */
        GHashTable *settings; /* node ids whose own listen port may have changed */
        GHashTable *peers;    /* node or client ids */
        GHashTable *pairs;    /* viewer node id -> GHashTable of peer ids */
        guint n_verdicts;
};

TopoDirty *topo_dirty_new(void)
{
        TopoDirty *d = g_new0(TopoDirty, 1);
        d->viewers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        d->settings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        d->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        d->pairs =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
        return d;
}

void topo_dirty_free(TopoDirty *d)
{
        if (!d)
                return;
        g_hash_table_unref(d->viewers);
        g_hash_table_unref(d->settings);
        g_hash_table_unref(d->peers);
        g_hash_table_unref(d->pairs);
        g_free(d);
}

void topo_dirty_all(TopoDirty *d)
{
        d->all = true;
}

void topo_dirty_viewer(TopoDirty *d, const char *node_id)
{
        if (node_id)
                g_hash_table_add(d->viewers, g_strdup(node_id));
}

void topo_dirty_settings(TopoDirty *d, const char *node_id)
{
        if (node_id)
                g_hash_table_add(d->settings, g_strdup(node_id));
}

void topo_dirty_peer(TopoDirty *d, const char *id)
{
        if (id)
                g_hash_table_add(d->peers, g_strdup(id));
}

void topo_dirty_pair(TopoDirty *d, const char *viewer, const char *peer)
{
        if (!viewer || !peer)
                return;
        GHashTable *h = g_hash_table_lookup(d->pairs, viewer);
        if (!h) {
                h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                g_hash_table_insert(d->pairs, g_strdup(viewer), h);
        }
        g_hash_table_add(h, g_strdup(peer));
}

void topo_dirty_failover(TopoDirty *d, const char *a, const char *b, const char *relay_before,
                         const char *relay_after)
{
        const char *relays[] = {relay_before, relay_after};
        topo_dirty_pair(d, a, b);
        topo_dirty_pair(d, b, a);
        for (size_t i = 0; i < G_N_ELEMENTS(relays); i++) {
                topo_dirty_pair(d, a, relays[i]);
                topo_dirty_pair(d, b, relays[i]);
        }
}

static const char *relay_id(const PeerView *v, const char *node_id)
{
        const Member *m = topo_find_node(v, node_id);
        const Member *r = m ? topo_relay_of(v, m) : NULL;
        return r ? r->node->id : NULL;
}

void topo_dirty_verdict(TopoDirty *d, const PeerView *before, const PeerView *after, const char *a,
                        const char *b)
{
        const PeerView *views[] = {before, after};
        topo_dirty_pair(d, a, b);
        topo_dirty_pair(d, b, a);
        for (guint i = 0; i < G_N_ELEMENTS(views); i++) {
                const char *ra = relay_id(views[i], a), *rb = relay_id(views[i], b);
                topo_dirty_pair(d, a, ra);
                topo_dirty_pair(d, a, rb);
                topo_dirty_pair(d, b, ra);
                topo_dirty_pair(d, b, rb);
        }
        d->n_verdicts++;
}

guint topo_dirty_n_verdicts(const TopoDirty *d)
{
        return d->n_verdicts;
}

void topo_relays_changed(const PeerView *before, const PeerView *after, TopoDirty *d)
{
        for (guint i = 0; i < after->members->len; i++) {
                const Member *a = after->members->pdata[i];
                const Member *b = topo_find_node(before, a->node->id);
                if (!b)
                        continue;
                const Member *ra = topo_relay_of(after, a), *rb = topo_relay_of(before, b);
                bool moved = !streq0(ra ? ra->node->id : NULL, rb ? rb->node->id : NULL);
                if (moved || a->node->roles.relay != b->node->roles.relay) {
                        /* All it sees, and how everyone sees it; relays are looked at with any
                         * dirty peer (they carry what they forward). */
                        topo_dirty_viewer(d, a->node->id);
                        topo_dirty_peer(d, a->node->id);
                }
        }
}

/* ---- ACL changes ---------------------------------------------------------------------------- */

/* Marks (a, b) when its verdict differs; `a` and `b` are members of `after`. */
static void check_verdict(const PeerView *before, const PeerView *after, const Member *a, const Member *b,
                          TopoDirty *d)
{
        const Member *ba = topo_find_node(before, a->node->id), *bb = topo_find_node(before, b->node->id);
        if (a == b || !ba || !bb)
                return;
        if (topo_allowed(before, ba, bb) != topo_allowed(after, a, b))
                topo_dirty_verdict(d, before, after, a->node->id, b->node->id);
}

static gint rule_position(const PeerView *v, const AclRule *rule)
{
        for (guint i = 0; v->acl_rules && i < v->acl_rules->len; i++)
                if (streq0(((AclRule *)v->acl_rules->pdata[i])->id, rule->id))
                        return (gint)i;
        return -1;
}

void topo_acl_rule_changed(const PeerView *before, const PeerView *after, const AclRule *rule, TopoDirty *d)
{
        /* The rule is in the view after an addition, in the one before a deletion; the members
         * are the same in both. */
        gint r = rule_position(after, rule);
        const PeerView *has = after;
        if (r < 0) {
                r = rule_position(before, rule);
                has = before;
        }
        if (r < 0)
                return;
        const TopoIndex *x = index_of(has);
        g_autoptr(GPtrArray) src = g_ptr_array_new(), dst = g_ptr_array_new();
        for (guint i = 0; i < has->members->len; i++) {
                if (acl_index_matches(x->acl, (guint)r, i, false))
                        g_ptr_array_add(src, has->members->pdata[i]);
                if (acl_index_matches(x->acl, (guint)r, i, true))
                        g_ptr_array_add(dst, has->members->pdata[i]);
        }
        g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < src->len; i++)
                for (guint j = 0; j < dst->len; j++) {
                        const Member *s = src->pdata[i], *t = dst->pdata[j];
                        if (s == t)
                                continue;
                        /* Each unordered pair once. */
                        const char *lo = strcmp(s->node->id, t->node->id) < 0 ? s->node->id : t->node->id;
                        const char *hi = lo == s->node->id ? t->node->id : s->node->id;
                        char *key = g_strconcat(lo, " ", hi, NULL);
                        if (!g_hash_table_add(done, key))
                                continue;
                        const Member *a = topo_find_node(after, s->node->id),
                                     *b = topo_find_node(after, t->node->id);
                        if (a && b)
                                check_verdict(before, after, a, b, d);
                }
}

void topo_acl_default_changed(const PeerView *before, const PeerView *after, TopoDirty *d)
{
        const TopoIndex *x = index_of(after);
        for (guint i = 0; i < after->members->len; i++)
                for (guint j = i + 1; j < after->members->len; j++)
                        if (acl_index_unruled(x->acl, i, j))
                                check_verdict(before, after, after->members->pdata[i],
                                              after->members->pdata[j], d);
}

void topo_acl_node_changed(const PeerView *before, const PeerView *after, const char *node_id, TopoDirty *d)
{
        const Member *a = topo_find_node(after, node_id);
        if (!a)
                return;
        for (guint i = 0; i < after->members->len; i++)
                check_verdict(before, after, a, after->members->pdata[i], d);
}

/* ---- diff ----------------------------------------------------------------------------------- */

static NmPeer *entry_by_id(const PeerView *v, const Member *viewer, const char *id)
{
        const Member *m = topo_find_node(v, id);
        if (m)
                return topo_peer_entry(v, viewer, m);
        const ExtClient *c = topo_find_ext_client(v, id);
        return c ? topo_ext_client_entry(v, viewer, c) : NULL;
}

static guint key_hash(gconstpointer k)
{
        guint h;
        memcpy(&h, ((const NmKey *)k)->b, sizeof(h)); /* keys are random */
        return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
        return nm_key_equal(a, b);
}

/* Adds old → new of one entry to the message; takes both. */
static void delta_add(NmMessage *msg, NmPeer *old, NmPeer *new)
{
        if (old && new &&nm_key_equal(&old->public_key, &new->public_key)) {
                if (!nm_peer_equal(old, new))
                        g_ptr_array_add(msg->update, g_steal_pointer(&new));
        } else {
                if (old)
                        g_ptr_array_add(msg->remove, g_memdup2(&old->public_key, sizeof(NmKey)));
                if (new)
                        g_ptr_array_add(msg->add, g_steal_pointer(&new));
        }
        nm_peer_free(old);
        nm_peer_free(new);
}

/* Every entry of the viewer, old against new. */
static void diff_all(const PeerView *before, const Member *bv, const PeerView *after, const Member *av,
                     NmMessage *msg)
{
        g_autoptr(GPtrArray) old = topo_peers_of(before, bv);
        g_autoptr(GPtrArray) new = topo_peers_of(after, av);
        g_autoptr(GHashTable) fresh = g_hash_table_new(key_hash, key_equal);

        for (guint i = 0; i < new->len; i++) {
                NmPeer *p = new->pdata[i];
                g_hash_table_insert(fresh, &p->public_key, GUINT_TO_POINTER(i + 1));
        }
        g_ptr_array_set_free_func(old, NULL);
        for (guint i = 0; i < old->len; i++) {
                NmPeer *o = old->pdata[i];
                guint j = GPOINTER_TO_UINT(g_hash_table_lookup(fresh, &o->public_key));
                NmPeer *n = NULL;
                if (j > 0) {
                        n = new->pdata[j - 1];
                        new->pdata[j - 1] = NULL;
                }
                delta_add(msg, o, n);
        }
        for (guint i = 0; i < new->len; i++)
                if (new->pdata[i]) {
                        delta_add(msg, NULL, new->pdata[i]);
                        new->pdata[i] = NULL;
                }
}

static void add_ids(GHashTable *into, GHashTable *from)
{
        GHashTableIter it;
        gpointer k;
        if (!from)
                return;
        g_hash_table_iter_init(&it, from);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_hash_table_add(into, k);
}

static void add_relays(GHashTable *into, const PeerView *v)
{
        GPtrArray *relays = index_of(v)->relays;
        for (guint i = 0; i < relays->len; i++)
                g_hash_table_add(into, ((Member *)relays->pdata[i])->node->id);
}

/* The member's state entry without peers, as text: what "network-changed" would carry. */
static char *state_text(const PeerView *v, const Member *m, bool with_port)
{
        g_autoptr(NmNetworkState) s = peers_network_state(v, m, false);
        g_autoptr(JsonBuilder) b = json_builder_new();
        /* A port the host reported is nothing to tell it; one the server chose is. */
        if (!with_port)
                s->listen_port = 0;
        nm_network_state_to_json(s, b);
        return nm_json_builder_to_string(b);
}

void topo_diff(const PeerView *before, const PeerView *after, const TopoDirty *d, Outbox *o)
{
        /* The peers every viewer looks at again (ids borrowed from the dirty set and the views). */
        g_autoptr(GHashTable) common = g_hash_table_new(g_str_hash, g_str_equal);
        add_ids(common, d->peers);
        if (g_hash_table_size(d->peers) > 0) {
                add_relays(common, before);
                add_relays(common, after);
        }

        for (guint i = 0; i < after->members->len; i++) {
                const Member *av = after->members->pdata[i];
                const Member *bv = topo_find_node(before, av->node->id);
                if (!bv)
                        continue;

                /* Roles, and anything else of the entry (e.g. the network's DNS names). */
                bool port = g_hash_table_contains(d->settings, av->node->id);
                g_autofree char *old_state = state_text(before, bv, port);
                g_autofree char *new_state = state_text(after, av, port);
                if (!streq0(old_state, new_state)) {
                        NmMessage *changed = nm_message_new(NM_MSG_NETWORK_CHANGED, 0);
                        changed->net = peers_network_state(after, av, false);
                        outbox_add(o, av->host, changed);
                }

                NmMessage *msg = nm_message_new(NM_MSG_PEERS, 0);
                msg->network = g_strdup(after->network->name);
                if (d->all || g_hash_table_contains(d->viewers, av->node->id))
                        diff_all(before, bv, after, av, msg);
                else {
                        GHashTable *pairs = g_hash_table_lookup(d->pairs, av->node->id);
                        g_autoptr(GHashTable) ids = NULL;
                        GHashTable *look = common;
                        /* A failover ties three nodes' entries together: whatever changed, the
                         * viewer's partners and relays are looked at again (a few entries). */
                        bool failovers = g_hash_table_contains(index_of(before)->failovers, av->node->id) ||
                                         g_hash_table_contains(index_of(after)->failovers, av->node->id);
                        if (pairs || failovers) {
                                ids = g_hash_table_new(g_str_hash, g_str_equal);
                                add_ids(ids, common);
                                add_ids(ids, pairs);
                                add_failover_ids(ids, before, av->node->id);
                                add_failover_ids(ids, after, av->node->id);
                                look = ids;
                        }
                        GHashTableIter it;
                        gpointer id;
                        g_hash_table_iter_init(&it, look);
                        while (g_hash_table_iter_next(&it, &id, NULL))
                                if (!streq0(id, av->node->id))
                                        delta_add(msg, entry_by_id(before, bv, id),
                                                  entry_by_id(after, av, id));
                }
                if (msg->add->len + msg->update->len + msg->remove->len > 0)
                        outbox_add(o, av->host, msg);
                else
                        nm_message_free(msg);
        }
}
