/* Automatic relays (docs/topologies.md "Failover"): each check-in's handshake report is kept, and
 * when it may change something the network is read and failover_evaluate() decides; the Manager
 * commits each change and publishes its deltas. */
#include <errno.h>
#include <string.h>

#include "failover.h"
#include "log.h"
#include "manager.h"
#include "topology.h"

int manager_failover_set(Manager *m, const char *network, const char *a, const char *b, const char *relay,
                         GError **error)
{
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int r;

        r = store_txn_begin(m->store, &t, error);
        if (r >= 0)
                r = peers_failover_set(m->store, network, a, b, relay, manager_now(), out, error);
        if (r >= 0)
                r = manager_commit(m, &t, out, error);
        return r;
}

/* Whether the report may change anything: a peer without a session for failover_after (a pair to
 * relay), or one with a session while relayed (a pair to un-relay). Cheap: no network is read. */
static bool report_matters(const GArray *statuses, guint after, bool relays_something)
{
        for (guint i = 0; i < statuses->len; i++) {
                const NmPeerStatus *st = &g_array_index(statuses, NmPeerStatus, i);
                if (st->handshake < 0 ? st->since >= after
                                      : st->handshake >= FAILOVER_SESSION_LIFETIME + (gint64)after)
                        return true;
                if (relays_something && st->handshake >= 0 && st->handshake <= FAILOVER_SESSION_LIFETIME)
                        return true;
        }
        return false;
}

static bool node_in_failover(GPtrArray *failovers, const char *node_id)
{
        for (guint i = 0; i < failovers->len; i++) {
                const Failover *f = failovers->pdata[i];
                if (streq0(f->node_a, node_id) || streq0(f->node_b, node_id))
                        return true;
        }
        return false;
}

static void evaluate(Manager *m, const char *network, const char *node_id, gint64 now)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(PeerView) v = NULL;
        g_autoptr(GPtrArray) actions = NULL;

        if (peers_load_view(m->store, network, &v, &e) < 0) {
                log_warning("Failover: failed to read network %s: %s", network, e->message);
                return;
        }
        actions = failover_evaluate(m->failover_reports, v, node_id, now, m->config->failover_after);
        for (guint i = 0; i < actions->len; i++) {
                const FailoverAction *x = actions->pdata[i];
                const Member *a = topo_find_node(v, x->a), *b = topo_find_node(v, x->b);
                const Member *r = x->relay ? topo_find_node(v, x->relay) : NULL;
                g_clear_error(&e);
                if (manager_failover_set(m, network, x->a, x->b, x->relay, &e) < 0) {
                        log_warning("Failover: failed to change the pair %s - %s of %s: %s", x->a, x->b,
                                    network, e->message);
                        continue;
                }
                if (r)
                        log_notice("Network %s: \"%s\" and \"%s\" have had no WireGuard session for %u s or "
                                   "more: "
                                   "relayed through \"%s\".",
                                   network, a->host->name, b->host->name, m->config->failover_after,
                                   r->host->name);
                else
                        log_notice(
                                "Network %s: \"%s\" and \"%s\" reach each other directly again: no longer "
                                "relayed.",
                                network, a->host->name, b->host->name);
        }
}

void manager_failover_report(Manager *m, const char *host_id, const NmReport *report)
{
        guint after = m->config->failover_after;
        gint64 now = manager_now();
        GHashTableIter it;
        gpointer k, v;

        if (after == 0 || !report->peers)
                return;
        failover_reports_prune(m->failover_reports, now);
        g_hash_table_iter_init(&it, report->peers);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                const char *network = k;
                const GArray *statuses = v;
                g_autoptr(Node) node = NULL;
                g_autoptr(GPtrArray) failovers = NULL;

                if (store_node_find(m->store, host_id, network, &node, NULL) < 0 ||
                    store_failover_list(m->store, network, &failovers, NULL) < 0)
                        continue;
                failover_reports_set(m->failover_reports, node->id, now, statuses);
                if (report_matters(statuses, after, node_in_failover(failovers, node->id)))
                        evaluate(m, network, node->id, now);
        }
}
