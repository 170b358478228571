/* Benchmark (not a test): netmakerd's topology computation for one network of N nodes, in memory
 * (the SQLite reads around it are not counted): every host's full peer list (what snapshots after a
 * broker reconnection cost), and the targeted diffs of single changes — an ACL rule between two
 * tags of 5 nodes, one node's endpoint, a relay taking 10 nodes (and, for comparison, the same
 * change diffed entry by entry), an external client's denied nodes —
 * with the messages and JSON bytes (before sealing) each produces. Prints medians of R rounds.
 *
 *   bench-topology [--nodes N] [--rounds R]
 */
#include <stdio.h>
#include <stdlib.h>

#include "topology-fixture.h"

static unsigned arg_nodes = 1000;
static unsigned arg_rounds = 5;

typedef struct Result {
        GArray *ms;
        guint msgs;
        gsize bytes;
} Result;

static gint cmp_double(gconstpointer a, gconstpointer b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(GArray *a)
{
        g_array_sort(a, cmp_double);
        return g_array_index(a, double, a->len / 2);
}

static gsize outbox_bytes(Outbox *o)
{
        gsize n = 0;
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *m = o->msgs->pdata[i];
                g_autofree char *json = nm_message_to_json(m->msg);
                n += strlen(json);
        }
        return n;
}

static void record(Result *r, gint64 t0, Outbox *o)
{
        double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
        g_array_append_val(r->ms, ms);
        r->msgs = o ? o->msgs->len : 0;
        r->bytes = o ? outbox_bytes(o) : 0;
}

static void report(const char *what, Result *r)
{
        printf("  %-44s %9.2f ms", what, median(r->ms));
        if (r->msgs)
                printf("   %5u message(s), %8zu bytes", r->msgs, r->bytes);
        printf("\n");
        g_array_unref(r->ms);
}

/* The network: tags a (nodes 1-5) and b (nodes 6-10), node 0 an ingress gateway with a client. */
static PeerView *network(guint n)
{
        PeerView *v = make_view(n);
        for (guint i = 1; i <= 10 && i < n; i++)
                set_tags(member(v, i)->node, g_strsplit(i <= 5 ? "a" : "b", ",", -1));
        Member *gw = member(v, 0);
        gw->node->roles.ingress = true;
        ExtClient *c = g_new0(ExtClient, 1);
        c->id = nm_uuid_new();
        c->name = g_strdup("phone");
        c->network = g_strdup(v->network->name);
        c->gateway = g_strdup(gw->node->id);
        c->ipv4 = g_strdup("10.99.255.254");
        c->enabled = true;
        c->extra_allowed_ips = g_new0(char *, 1);
        c->denied_nodes = g_new0(char *, 1);
        memset(&c->public_key, 0x42, sizeof(c->public_key));
        g_ptr_array_add(v->ext_clients, c);
        topo_view_changed(v);
        return v;
}

int main(int argc, char *argv[])
{
        for (int i = 1; i < argc; i++) {
                if (streq0(argv[i], "--nodes") && i + 1 < argc)
                        arg_nodes = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (streq0(argv[i], "--rounds") && i + 1 < argc)
                        arg_rounds = (unsigned)strtoul(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "usage: %s [--nodes N] [--rounds R]\n", argv[0]);
                        return 2;
                }
        }
        if (arg_nodes < 21 || arg_nodes > 60000 || arg_rounds < 1) {
                fprintf(stderr, "--nodes must be 21-60000 and --rounds at least 1\n");
                return 2;
        }

        Result all = {}, rule = {}, endpoint = {}, relay = {}, relay_all = {}, denied = {};
        Result *results[] = {&all, &rule, &endpoint, &relay, &relay_all, &denied};
        for (size_t i = 0; i < G_N_ELEMENTS(results); i++)
                results[i]->ms = g_array_new(false, false, sizeof(double));
        guint entries = 0;

        for (unsigned round = 0; round < arg_rounds; round++) {
                g_autoptr(PeerView) before = network(arg_nodes);
                gint64 t0;

                /* Every host's peers. */
                t0 = g_get_monotonic_time();
                entries = 0;
                for (guint i = 0; i < before->members->len; i++) {
                        g_autoptr(GPtrArray) peers = topo_peers_of(before, member(before, i));
                        entries += peers->len;
                }
                record(&all, t0, NULL);

                /* tag:a denies tag:b. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        AclRule *r = add_rule(after, "tag:a", "tag:b", true);
                        g_autoptr(Outbox) o = outbox_new();
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        t0 = g_get_monotonic_time();
                        topo_acl_rule_changed(before, after, r, d);
                        topo_diff(before, after, d, o);
                        record(&rule, t0, o);
                }
                /* Node 20's host moves. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *m = member(after, 20);
                        g_free(m->host->endpoints[0]);
                        m->host->endpoints[0] = g_strdup("198.18.254.254");
                        topo_view_changed(after);
                        g_autoptr(Outbox) o = outbox_new();
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        t0 = g_get_monotonic_time();
                        topo_dirty_peer(d, m->node->id);
                        topo_dirty_viewer(d, m->node->id);
                        topo_diff(before, after, d, o);
                        record(&endpoint, t0, o);
                }
                /* Node 11 relays nodes 12-21: what netmakerd marks (topo_relays_changed), and every
                 * entry of every viewer for comparison. */
                for (guint variant = 0; variant < 2; variant++) {
                        g_autoptr(PeerView) after = copy_view(before);
                        Member *r = member(after, 11);
                        r->node->roles.relay = true;
                        for (guint i = 12; i <= 21; i++)
                                member(after, i)->node->roles.relayed_by = g_strdup(r->node->id);
                        topo_view_changed(after);
                        g_autoptr(Outbox) o = outbox_new();
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        t0 = g_get_monotonic_time();
                        if (variant == 0)
                                topo_relays_changed(before, after, d);
                        else
                                topo_dirty_all(d);
                        topo_diff(before, after, d, o);
                        record(variant == 0 ? &relay : &relay_all, t0, o);
                }
                /* The gateway's client may no longer reach nodes 1-5. */
                {
                        g_autoptr(PeerView) after = copy_view(before);
                        ExtClient *c = after->ext_clients->pdata[0];
                        g_strfreev(c->denied_nodes);
                        c->denied_nodes = g_new0(char *, 6);
                        for (guint i = 0; i < 5; i++)
                                c->denied_nodes[i] = g_strdup(member(after, i + 1)->node->id);
                        topo_view_changed(after);
                        g_autoptr(Outbox) o = outbox_new();
                        g_autoptr(TopoDirty) d = topo_dirty_new();
                        t0 = g_get_monotonic_time();
                        topo_dirty_peer(d, c->id);
                        topo_dirty_peer(d, c->gateway);
                        topo_diff(before, after, d, o);
                        record(&denied, t0, o);
                }
        }

        printf("topology of one network, %u nodes (in memory, no database), median of %u rounds:\n",
               arg_nodes, arg_rounds);
        g_autofree char *what = g_strdup_printf("every host's peers (%u entries)", entries);
        report(what, &all);
        report("ACL rule tag:a x tag:b (5 x 5 nodes)", &rule);
        report("one node's endpoint moves", &endpoint);
        report("a relay for 10 nodes", &relay);
        report("  the same looking at every entry", &relay_all);
        report("an external client denied 5 nodes", &denied);
        return 0;
}
