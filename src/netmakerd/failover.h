/* Automatic relays for pairs that cannot connect directly (docs/topologies.md "Failover"): what each
 * node last reported of its peers' handshakes, and from it, per pair, whether to relay it through a
 * failover relay or to let it connect directly again. Pure: the Manager applies the decisions. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "peers.h"
#include "proto.h"

/* WireGuard's REJECT_AFTER_TIME: a session older than this is gone, so a pair whose last handshake
 * is older has none (with keepalives a live pair hands shake every two minutes). */
#define FAILOVER_SESSION_LIFETIME 180
/* A node whose last report is older counts as offline: its pairs are left as they are. */
#define FAILOVER_REPORT_MAX_AGE 150

typedef struct FailoverReports FailoverReports;

FailoverReports *failover_reports_new(void);
void failover_reports_free(FailoverReports *fr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FailoverReports, failover_reports_free)
/* Replaces what node `node_id` reported at `now` (Unix seconds) of its peers (of NmPeerStatus). */
void failover_reports_set(FailoverReports *fr, const char *node_id, gint64 now, const GArray *statuses);
void failover_reports_forget(FailoverReports *fr, const char *node_id);
/* Forgets reports too old to count (of nodes that left or went offline); at most once a minute. */
void failover_reports_prune(FailoverReports *fr, gint64 now);
/* Nodes with a report (for tests and logs). */
guint failover_reports_count(const FailoverReports *fr);

/* Whether node `a`'s current report (at most FAILOVER_REPORT_MAX_AGE old at `now`) says it had a
 * session with `b` when it was made: a handshake within FAILOVER_SESSION_LIFETIME; *ret_at the Unix
 * time of that handshake. */
bool failover_session(const FailoverReports *fr, const Member *a, const Member *b, gint64 now,
                      gint64 *ret_at);
/* How long, as of `now`, `a` has had no session with `b`, by a's current report (none since it was
 * set up, or since its last handshake's session ran out); -1 when a has no current report of b
 * or says it has a session. */
gint64 failover_down_for(const FailoverReports *fr, const Member *a, const Member *b, gint64 now);

typedef struct FailoverAction {
        char *a, *b;
        char *relay; /* NULL: connect directly again */
} FailoverAction;

void failover_action_free(FailoverAction *x);
/* The changes the reports call for among node `node_id`'s pairs in `v` (of FailoverAction):
 * - a pair without a relay whose two nodes both report no session for at least `after` seconds
 *   gets the failover relay both report a session with (fewest pairs first, then node id order);
 * - a relayed pair goes back to direct when either node reports a handshake with the other made
 *   since the pair was relayed (the probe entries got through). */
GPtrArray *failover_evaluate(const FailoverReports *fr, const PeerView *v, const char *node_id, gint64 now,
                             guint after);
