/* In-memory networks for the topology tests and benchmarks: members (a host and its node each)
 * with distinct keys, addresses and underlay endpoints, rules, and deep copies of a view to change.
 * Up to 250 members the network is 10.99.0.0/24 with node i at 10.99.0.(i+1) and endpoint
 * 198.18.0.(i+1); beyond, 10.99.0.0/16 and the next /24s. Header-only: static functions. */
#pragma once

#include <string.h>

#include "acl.h"
#include "json-util.h"
#include "macro.h"
#include "peers.h"
#include "topology.h"

static int fixture_counter;

static inline Member *add_member(PeerView *v, const char *name, const char *endpoints)
{
        Member *m = g_new0(Member, 1);
        Host *h = g_new0(Host, 1);
        fixture_counter++;
        h->id = nm_uuid_new();
        h->name = g_strdup(name);
        h->os = g_strdup("linux");
        h->version = g_strdup("0.1.0");
        /* Distinct keys however many members: the counter in the first four bytes. */
        for (guint i = 0; i < sizeof(h->wg_key.b); i++)
                h->wg_key.b[i] = i < 4 ? (guint8)((guint)fixture_counter >> (8 * i))
                                       : (guint8)(fixture_counter * 7 + i);
        memset(&h->msg_key, 0x80 | fixture_counter, sizeof(h->msg_key));
        h->endpoints = endpoints ? g_strsplit(endpoints, ",", -1) : g_new0(char *, 1);
        h->tags = g_new0(char *, 1);
        Node *n = g_new0(Node, 1);
        n->id = nm_uuid_new();
        n->host_id = g_strdup(h->id);
        n->host_name = g_strdup(name);
        n->network = g_strdup(v->network->name);
        n->ipv4 = g_strdup_printf("10.99.%u.%u", v->members->len / 250, v->members->len % 250 + 1);
        n->listen_port = 51821;
        n->connected = true;
        n->tags = g_new0(char *, 1);
        m->host = h;
        m->node = n;
        g_ptr_array_add(v->members, m);
        topo_view_changed(v);
        return m;
}

/* Replaces a node's tags (the old vector is freed). */
static inline void set_tags(Node *n, char **tags)
{
        g_strfreev(n->tags);
        n->tags = tags;
}

static inline PeerView *make_view(guint n)
{
        Network *net = g_new0(Network, 1);
        net->name = g_strdup("office");
        net->ipv4_range = g_strdup(n <= 250 ? "10.99.0.0/24" : "10.99.0.0/16");
        net->listen_port = 51821;
        net->keepalive = 20;
        net->mtu = 1420;
        net->dns_domain = g_strdup("nm.internal");
        PeerView *v = peer_view_new(net);
        for (guint i = 0; i < n; i++) {
                g_autofree char *name = g_strdup_printf("h%u", i);
                g_autofree char *ep = g_strdup_printf("198.18.%u.%u", i / 250, i % 250 + 1);
                add_member(v, name, ep);
        }
        return v;
}

static inline PeerView *copy_view(const PeerView *v)
{
        Network *net = g_new0(Network, 1);
        *net = *v->network;
        net->name = g_strdup(v->network->name);
        net->ipv4_range = g_strdup(v->network->ipv4_range);
        net->ipv6_range = g_strdup(v->network->ipv6_range);
        net->dns_domain = g_strdup(v->network->dns_domain);
        PeerView *c = peer_view_new(net);
        for (guint i = 0; i < v->members->len; i++) {
                const Member *m = v->members->pdata[i];
                Member *cm = g_new0(Member, 1);
                cm->host = host_copy(m->host);
                cm->node = node_copy(m->node);
                g_ptr_array_add(c->members, cm);
        }
        for (guint i = 0; i < v->ext_clients->len; i++) {
                const ExtClient *e = v->ext_clients->pdata[i];
                ExtClient *ce = g_new0(ExtClient, 1);
                *ce = *e;
                ce->id = g_strdup(e->id);
                ce->name = g_strdup(e->name);
                ce->network = g_strdup(e->network);
                ce->gateway = g_strdup(e->gateway);
                ce->ipv4 = g_strdup(e->ipv4);
                ce->ipv6 = g_strdup(e->ipv6);
                ce->dns = g_strdup(e->dns);
                ce->extra_allowed_ips = g_strdupv(e->extra_allowed_ips);
                ce->denied_nodes = g_strdupv(e->denied_nodes);
                ce->internet_gateway = e->internet_gateway;
                g_ptr_array_add(c->ext_clients, ce);
        }
        for (guint i = 0; i < v->acl_rules->len; i++) {
                const AclRule *r = v->acl_rules->pdata[i];
                AclRule *cr = g_new0(AclRule, 1);
                *cr = *r;
                cr->id = g_strdup(r->id);
                cr->network = g_strdup(r->network);
                cr->source = g_strdup(r->source);
                cr->destination = g_strdup(r->destination);
                g_ptr_array_add(c->acl_rules, cr);
        }
        for (guint i = 0; v->failovers && i < v->failovers->len; i++) {
                const Failover *f = v->failovers->pdata[i];
                Failover *cf = g_new0(Failover, 1);
                cf->network = g_strdup(f->network);
                cf->node_a = g_strdup(f->node_a);
                cf->node_b = g_strdup(f->node_b);
                cf->relay = g_strdup(f->relay);
                cf->since = f->since;
                g_ptr_array_add(c->failovers, cf);
        }
        c->acl_deny = v->acl_deny;
        return c;
}

static inline Member *member(PeerView *v, guint i)
{
        return v->members->pdata[i];
}

static inline AclRule *add_rule(PeerView *v, const char *src, const char *dst, bool deny)
{
        AclRule *r = g_new0(AclRule, 1);
        r->id = nm_uuid_new();
        r->network = g_strdup(v->network->name);
        r->source = g_strdup(src);
        r->destination = g_strdup(dst);
        r->deny = deny;
        g_ptr_array_add(v->acl_rules, r);
        topo_view_changed(v);
        return r;
}

/* The pair (a, b) relayed through `relay` (a failover). */
static inline Failover *add_failover(PeerView *v, const Member *a, const Member *b, const Member *relay)
{
        Failover *f = g_new0(Failover, 1);
        f->network = g_strdup(v->network->name);
        f->node_a = g_strdup(a->node->id);
        f->node_b = g_strdup(b->node->id);
        f->relay = g_strdup(relay->node->id);
        g_ptr_array_add(v->failovers, f);
        topo_view_changed(v);
        return f;
}

static inline char *node_sel(const Member *m)
{
        return g_strconcat("node:", m->node->id, NULL);
}
