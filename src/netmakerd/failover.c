/* The reports of peer handshakes and the failover decision per pair. */
#include <string.h>

#include "failover.h"
#include "macro.h"
#include "topology.h"

typedef struct NodeReport {
        gint64 at;
        GHashTable *peers; /* NmKey* (owned) -> NmPeerStatus* (owned) */
} NodeReport;

struct FailoverReports {
        GHashTable *nodes; /* node id -> NodeReport* */
        gint64 pruned_at;
};

static guint key_hash(gconstpointer k)
{
        guint h;
        memcpy(&h, ((const NmKey *)k)->b, sizeof(h));
        return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
        return nm_key_equal(a, b);
}

static void node_report_free(gpointer p)
{
        NodeReport *r = p;
        g_hash_table_unref(r->peers);
        g_free(r);
}

FailoverReports *failover_reports_new(void)
{
        FailoverReports *fr = g_new0(FailoverReports, 1);
        fr->nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, node_report_free);
        return fr;
}

void failover_reports_free(FailoverReports *fr)
{
        if (!fr)
                return;
        g_hash_table_unref(fr->nodes);
        g_free(fr);
}

void failover_reports_set(FailoverReports *fr, const char *node_id, gint64 now, const GArray *statuses)
{
        NodeReport *r = g_new0(NodeReport, 1);
        r->at = now;
        r->peers = g_hash_table_new_full(key_hash, key_equal, g_free, g_free);
        for (guint i = 0; statuses && i < statuses->len; i++) {
                const NmPeerStatus *st = &g_array_index(statuses, NmPeerStatus, i);
                g_hash_table_replace(r->peers, g_memdup2(&st->public_key, sizeof(NmKey)),
                                     g_memdup2(st, sizeof(*st)));
        }
        g_hash_table_replace(fr->nodes, g_strdup(node_id), r);
}

void failover_reports_forget(FailoverReports *fr, const char *node_id)
{
        g_hash_table_remove(fr->nodes, node_id);
}

void failover_reports_prune(FailoverReports *fr, gint64 now)
{
        GHashTableIter it;
        gpointer v;

        if (now - fr->pruned_at < 60)
                return;
        fr->pruned_at = now;
        g_hash_table_iter_init(&it, fr->nodes);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (now - ((NodeReport *)v)->at > FAILOVER_REPORT_MAX_AGE)
                        g_hash_table_iter_remove(&it);
}

guint failover_reports_count(const FailoverReports *fr)
{
        return g_hash_table_size(fr->nodes);
}

/* a's current report of b, or NULL. */
static const NmPeerStatus *status_of(const FailoverReports *fr, const Member *a, const Member *b, gint64 now,
                                     gint64 *ret_at)
{
        const NodeReport *r = g_hash_table_lookup(fr->nodes, a->node->id);
        if (!r || now - r->at > FAILOVER_REPORT_MAX_AGE)
                return NULL;
        *ret_at = r->at;
        return g_hash_table_lookup(r->peers, &b->host->wg_key);
}

bool failover_session(const FailoverReports *fr, const Member *a, const Member *b, gint64 now,
                      gint64 *ret_at)
{
        gint64 at;
        const NmPeerStatus *st = status_of(fr, a, b, now, &at);
        if (!st || st->handshake < 0 || st->handshake > FAILOVER_SESSION_LIFETIME)
                return false;
        if (ret_at)
                *ret_at = at - st->handshake;
        return true;
}

gint64 failover_down_for(const FailoverReports *fr, const Member *a, const Member *b, gint64 now)
{
        gint64 at;
        const NmPeerStatus *st = status_of(fr, a, b, now, &at);
        if (!st)
                return -1;
        if (st->handshake < 0)
                return (gint64)st->since + (now - at);
        if (st->handshake <= FAILOVER_SESSION_LIFETIME)
                return -1;
        return st->handshake - FAILOVER_SESSION_LIFETIME + (now - at);
}

void failover_action_free(FailoverAction *x)
{
        if (!x)
                return;
        g_free(x->a);
        g_free(x->b);
        g_free(x->relay);
        g_free(x);
}

static FailoverAction *action_new(const Member *a, const Member *b, const Member *relay)
{
        FailoverAction *x = g_new0(FailoverAction, 1);
        x->a = g_strdup(a->node->id);
        x->b = g_strdup(b->node->id);
        x->relay = relay ? g_strdup(relay->node->id) : NULL;
        return x;
}

static guint relay_load(const PeerView *v, const Member *relay)
{
        guint n = 0;
        for (guint i = 0; v->failovers && i < v->failovers->len; i++)
                if (streq0(((Failover *)v->failovers->pdata[i])->relay, relay->node->id))
                        n++;
        return n;
}

static const Member *pick_relay(const FailoverReports *fr, const PeerView *v, const Member *a,
                                const Member *b, gint64 now)
{
        const Member *best = NULL;
        guint best_load = 0;

        for (guint i = 0; i < v->members->len; i++) {
                const Member *r = v->members->pdata[i];
                if (!topo_failover_relay_eligible(v, r, a, b) || !failover_session(fr, a, r, now, NULL) ||
                    !failover_session(fr, b, r, now, NULL))
                        continue;
                guint load = relay_load(v, r);
                if (!best || load < best_load ||
                    (load == best_load && strcmp(r->node->id, best->node->id) < 0)) {
                        best = r;
                        best_load = load;
                }
        }
        return best;
}

static const Failover *stored_failover(const PeerView *v, const Member *a, const Member *b)
{
        for (guint i = 0; v->failovers && i < v->failovers->len; i++) {
                const Failover *f = v->failovers->pdata[i];
                if ((streq0(f->node_a, a->node->id) && streq0(f->node_b, b->node->id)) ||
                    (streq0(f->node_a, b->node->id) && streq0(f->node_b, a->node->id)))
                        return f;
        }
        return NULL;
}

GPtrArray *failover_evaluate(const FailoverReports *fr, const PeerView *v, const char *node_id, gint64 now,
                             guint after)
{
        GPtrArray *actions = g_ptr_array_new_with_free_func((GDestroyNotify)failover_action_free);
        const Member *a = topo_find_node(v, node_id);

        if (!a || after == 0)
                return actions;
        for (guint i = 0; i < v->members->len; i++) {
                const Member *b = v->members->pdata[i];
                if (b == a || !topo_direct(v, a, b))
                        continue;
                const Member *relay = topo_failover_relay_of(v, a, b);
                if (relay) {
                        /* Relayed: a handshake made since then on either side means the direct
                         * path works again. */
                        const Failover *f = stored_failover(v, a, b);
                        gint64 at_ab = 0, at_ba = 0;
                        bool ab = failover_session(fr, a, b, now, &at_ab),
                             ba = failover_session(fr, b, a, now, &at_ba);
                        if ((ab && at_ab >= f->since) || (ba && at_ba >= f->since))
                                g_ptr_array_add(actions, action_new(a, b, NULL));
                        continue;
                }
                gint64 da = failover_down_for(fr, a, b, now), db = failover_down_for(fr, b, a, now);
                if (da < (gint64)after || db < (gint64)after)
                        continue;
                relay = pick_relay(fr, v, a, b, now);
                if (relay)
                        g_ptr_array_add(actions, action_new(a, b, relay));
        }
        return actions;
}
