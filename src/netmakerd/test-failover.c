/* Proves the failover decisions on in-memory networks: a pair is relayed only when both of its nodes
 * report no session for failover_after (never handshaken since set up, or a last handshake whose
 * session ran out), both report current reports, and a failover relay exists that both have a
 * session with (the least loaded); an old report, one node's word alone, a missing relay or a live
 * session keep the pair direct; a relayed pair goes back to direct when a handshake made since it
 * was relayed is reported, and not for an older one. */
#include <string.h>

#include "failover.h"
#include "topology.h"

#include "topology-fixture.h"

#define NOW 1800000000

static void report(FailoverReports *fr, const Member *from, gint64 at, const Member *peer, gint64 handshake,
                   guint64 since, const Member *peer2, gint64 handshake2)
{
        g_autoptr(GArray) a = g_array_new(false, false, sizeof(NmPeerStatus));
        NmPeerStatus st = {.public_key = peer->host->wg_key, .handshake = handshake, .since = since};
        g_array_append_val(a, st);
        if (peer2) {
                NmPeerStatus st2 = {
                        .public_key = peer2->host->wg_key, .handshake = handshake2, .since = since};
                g_array_append_val(a, st2);
        }
        failover_reports_set(fr, from->node->id, at, a);
}

static FailoverAction *only_action(GPtrArray *actions)
{
        g_assert_cmpuint(actions->len, ==, 1);
        return actions->pdata[0];
}

static void test_relay_when_both_are_down(void)
{
        g_autoptr(PeerView) v = make_view(4);
        Member *a = member(v, 0), *b = member(v, 1), *f = member(v, 2), *g = member(v, 3);
        g_autoptr(FailoverReports) fr = failover_reports_new();
        f->node->roles.failover = true;
        topo_view_changed(v);

        /* Only a says it: nothing. */
        report(fr, a, NOW, b, -1, 40, f, 5);
        g_autoptr(GPtrArray) one = failover_evaluate(fr, v, a->node->id, NOW, 30);
        g_assert_cmpuint(one->len, ==, 0);
        /* b too, but only 20 s so far: nothing yet... */
        report(fr, b, NOW, a, -1, 20, f, 5);
        g_autoptr(GPtrArray) early = failover_evaluate(fr, v, b->node->id, NOW, 30);
        g_assert_cmpuint(early->len, ==, 0);
        /* ... ten seconds later it counts (the report is extrapolated), through f. */
        g_autoptr(GPtrArray) later = failover_evaluate(fr, v, b->node->id, NOW + 10, 30);
        FailoverAction *x = only_action(later);
        g_assert_cmpstr(x->relay, ==, f->node->id);
        g_assert_true((streq0(x->a, a->node->id) && streq0(x->b, b->node->id)) ||
                      (streq0(x->a, b->node->id) && streq0(x->b, a->node->id)));

        /* A second relay with fewer pairs wins; one that b has no session with does not count. */
        g->node->roles.failover = true;
        add_failover(v, member(v, 3), member(v, 2), f); /* some pair on f (not a valid one: ignored) */
        report(fr, a, NOW, b, -1, 40, g, 5);
        g_autoptr(GPtrArray) no_g = failover_evaluate(fr, v, b->node->id, NOW + 10, 30);
        g_assert_cmpuint(no_g->len, ==, 0); /* a no longer reports f, b has no session with g */
        report(fr, a, NOW, b, -1, 40, g, 5);
        report(fr, b, NOW, a, -1, 40, g, 100);
        g_autoptr(GPtrArray) via_g = failover_evaluate(fr, v, b->node->id, NOW, 30);
        g_assert_cmpstr(only_action(via_g)->relay, ==, g->node->id);

        /* Both have sessions with f and g: the one relaying fewer pairs (g; f relays one) is taken. */
        {
                g_autoptr(GArray) sa = g_array_new(false, false, sizeof(NmPeerStatus));
                g_autoptr(GArray) sb = g_array_new(false, false, sizeof(NmPeerStatus));
                NmPeerStatus s1 = {.public_key = b->host->wg_key, .handshake = -1, .since = 40};
                NmPeerStatus s2 = {.public_key = f->host->wg_key, .handshake = 5, .since = 40};
                NmPeerStatus s3 = {.public_key = g->host->wg_key, .handshake = 5, .since = 40};
                g_array_append_val(sa, s1);
                g_array_append_val(sa, s2);
                g_array_append_val(sa, s3);
                s1.public_key = a->host->wg_key;
                g_array_append_val(sb, s1);
                g_array_append_val(sb, s2);
                g_array_append_val(sb, s3);
                failover_reports_set(fr, a->node->id, NOW, sa);
                failover_reports_set(fr, b->node->id, NOW, sb);
                g_autoptr(GPtrArray) least = failover_evaluate(fr, v, a->node->id, NOW, 30);
                g_assert_cmpstr(only_action(least)->relay, ==, g->node->id);
        }

        /* No relay anywhere: nothing to do. */
        f->node->roles.failover = g->node->roles.failover = false;
        topo_view_changed(v);
        g_autoptr(GPtrArray) none = failover_evaluate(fr, v, b->node->id, NOW, 30);
        g_assert_cmpuint(none->len, ==, 0);
}

static void test_sessions_and_old_reports(void)
{
        g_autoptr(PeerView) v = make_view(3);
        Member *a = member(v, 0), *b = member(v, 1), *f = member(v, 2);
        g_autoptr(FailoverReports) fr = failover_reports_new();
        f->node->roles.failover = true;
        topo_view_changed(v);

        /* A live session on one side (a handshake 100 s ago): direct. */
        report(fr, a, NOW, b, 100, 900, f, 5);
        report(fr, b, NOW, a, -1, 900, f, 5);
        g_assert_cmpint(failover_down_for(fr, a, b, NOW), ==, -1);
        g_autoptr(GPtrArray) live = failover_evaluate(fr, v, a->node->id, NOW, 30);
        g_assert_cmpuint(live->len, ==, 0);
        /* Its session ran out 40 s ago (handshake 220 s ago): down for 40 s, relayed. */
        report(fr, a, NOW, b, FAILOVER_SESSION_LIFETIME + 40, 900, f, 5);
        g_assert_cmpint(failover_down_for(fr, a, b, NOW), ==, 40);
        g_autoptr(GPtrArray) expired = failover_evaluate(fr, v, a->node->id, NOW, 30);
        g_assert_cmpuint(expired->len, ==, 1);
        /* b's report is too old: b counts as offline, its pairs stay as they are. */
        report(fr, b, NOW - FAILOVER_REPORT_MAX_AGE - 1, a, -1, 900, f, 5);
        g_autoptr(GPtrArray) offline = failover_evaluate(fr, v, a->node->id, NOW, 30);
        g_assert_cmpuint(offline->len, ==, 0);
        /* failover_after 0: never. */
        report(fr, b, NOW, a, -1, 900, f, 5);
        g_autoptr(GPtrArray) off = failover_evaluate(fr, v, a->node->id, NOW, 0);
        g_assert_cmpuint(off->len, ==, 0);
        failover_reports_forget(fr, b->node->id);
        g_assert_cmpuint(failover_reports_count(fr), ==, 1);
        /* Reports too old to count go (of nodes that left); fresh ones stay. */
        report(fr, b, NOW, a, -1, 900, f, 5);
        report(fr, a, NOW - FAILOVER_REPORT_MAX_AGE - 10, b, -1, 900, f, 5);
        failover_reports_prune(fr, NOW);
        g_assert_cmpuint(failover_reports_count(fr), ==, 1);
}

static void test_back_to_direct(void)
{
        g_autoptr(PeerView) v = make_view(3);
        Member *a = member(v, 0), *b = member(v, 1), *f = member(v, 2);
        g_autoptr(FailoverReports) fr = failover_reports_new();
        f->node->roles.failover = true;
        Failover *stored = add_failover(v, a, b, f);
        stored->since = NOW - 60;

        /* Still no handshake through the probes: stays relayed. */
        report(fr, a, NOW, b, -1, 300, f, 5);
        report(fr, b, NOW, a, -1, 300, f, 5);
        g_autoptr(GPtrArray) stay = failover_evaluate(fr, v, a->node->id, NOW, 30);
        g_assert_cmpuint(stay->len, ==, 0);
        /* A handshake from before the failover (100 s ago) says nothing about now. */
        report(fr, b, NOW, a, 100, 300, f, 5);
        g_autoptr(GPtrArray) old = failover_evaluate(fr, v, b->node->id, NOW, 30);
        g_assert_cmpuint(old->len, ==, 0);
        /* One made 10 s ago got through directly: back to direct. */
        report(fr, b, NOW, a, 10, 300, f, 5);
        g_autoptr(GPtrArray) back = failover_evaluate(fr, v, a->node->id, NOW, 30);
        FailoverAction *x = only_action(back);
        g_assert_null(x->relay);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/failover/relay-when-both-are-down", test_relay_when_both_are_down);
        g_test_add_func("/failover/sessions-and-old-reports", test_sessions_and_old_reports);
        g_test_add_func("/failover/back-to-direct", test_back_to_direct);
        return g_test_run();
}
