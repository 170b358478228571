/* The hosts' broker accounts as the Manager keeps them in step with the store: deletions queued
 * until the broker confirms them, and after every connection a reconciliation that deletes the
 * accounts of no host (what a crash between creating an account and committing its host leaves)
 * and binds accounts made before netmakerd bound them to their client id. */
#include <errno.h>

#include "log.h"
#include "manager.h"

void manager_account_pending(Manager *m, const char *host_id)
{
        g_hash_table_add(m->accounts_pending, g_strdup(host_id));
}

void manager_account_settled(Manager *m, const char *host_id)
{
        if (host_id)
                g_hash_table_remove(m->accounts_pending, host_id);
}

typedef struct AccountOp {
        Manager *manager;
        char *host_id;
} AccountOp;

static void account_deleted(int r, const char *message, void *userdata)
{
        AccountOp *op = userdata;
        Manager *m = op->manager;
        g_autoptr(GError) e = NULL;

        /* On failure (or -ECANCELED at shutdown) the account stays queued for the next connection. */
        if (r >= 0 && !m->stopping && store_account_cleanup_remove(m->store, op->host_id, &e) < 0)
                log_warning("Failed to unqueue the broker account of host %s: %s", op->host_id, e->message);
        g_free(op->host_id);
        g_free(op);
}

void manager_delete_account(Manager *m, const char *host_id)
{
        if (!m->mq || !mq_is_connected(m->mq))
                return;
        AccountOp *op = g_new0(AccountOp, 1);
        op->manager = m;
        op->host_id = g_strdup(host_id);
        int r = mq_host_account_delete(m->mq, host_id, account_deleted, op);
        if (r < 0) {
                log_debug_errno(r, "Deleting the broker account of host %s is postponed: %m", host_id);
                g_free(op->host_id);
                g_free(op);
        }
}

/* Compares the broker's host accounts with the store, in one pass of the event loop (so no
 * registration commits in between). An account is deleted only when its role names this server's
 * topics, no host of the store has its id, and no registration is waiting for it: a registration
 * makes the account first and commits the host afterwards. Today it commits in the callback of
 * the account's answer, which the broker sends before the listing's when the registration asked
 * first; the pending set keeps the rule true should the commit ever wait for anything else. */
static void accounts_listed(int r, const char *message, GHashTable *accounts, void *userdata)
{
        Manager *m = userdata;
        g_autoptr(GHashTable) hosts = NULL;
        g_autoptr(GHashTable) queued = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) cleanup = NULL;
        g_autoptr(GError) e = NULL;
        unsigned n_hosts = 0, orphans = 0, pending = 0, bind = 0, foreign = 0, missing = 0;
        GHashTableIter it;
        DynsecHostAccount *a;
        const char *id;

        if (r < 0) {
                /* Lost connection or shutdown: the next connection lists again. */
                if (r != -ENOTCONN && r != -ECANCELED)
                        log_warning_errno(r,
                                          "Could not list the broker's host accounts, so accounts of hosts "
                                          "that no longer exist may be left: %s",
                                          strna(message));
                return;
        }
        if (m->stopping)
                return;
        if (store_host_ids(m->store, &hosts, &e) < 0 ||
            store_account_cleanup_list(m->store, &cleanup, &e) < 0) {
                log_warning("Failed to read the hosts to compare with the broker's accounts: %s",
                            e->message);
                return;
        }
        for (guint i = 0; i < cleanup->len; i++)
                g_hash_table_add(queued, cleanup->pdata[i]);

        g_hash_table_iter_init(&it, accounts);
        while (g_hash_table_iter_next(&it, (gpointer *)&id, (gpointer *)&a)) {
                if (g_hash_table_contains(hosts, id)) {
                        n_hosts++;
                        if (a->has_client && !a->bound) {
                                bind++;
                                r = mq_host_account_bind(m->mq, id, NULL, NULL);
                                if (r < 0)
                                        log_debug_errno(
                                                r, "Binding the broker account of host %s is postponed: %m",
                                                id);
                        }
                        continue;
                }
                if (!a->role_ours) {
                        /* Another server's host (servers may share a broker), or no role to tell. */
                        foreign++;
                        continue;
                }
                if (g_hash_table_contains(m->accounts_pending, id)) {
                        pending++;
                        continue;
                }
                orphans++;
                if (!g_hash_table_contains(queued, id)) /* those are being deleted already */
                        manager_delete_account(m, id);
        }

        g_hash_table_iter_init(&it, hosts);
        while (g_hash_table_iter_next(&it, (gpointer *)&id, NULL)) {
                a = g_hash_table_lookup(accounts, id);
                if (!a || !a->has_client)
                        missing++;
        }

        log_info("Broker accounts: %u of %u host(s) found; deleting %u without a host, binding %u to their "
                 "client id (%u of registrations in progress and %u of other servers left alone).",
                 n_hosts, g_hash_table_size(hosts), orphans, bind, pending, foreign);
        if (missing > 0)
                log_notice("%u host(s) have no broker account (registered without a broker, or the broker's "
                           "accounts were reset): they receive no pushed changes until they register again.",
                           missing);
}

void manager_accounts_sync(Manager *m)
{
        g_autoptr(GPtrArray) cleanup = NULL;
        g_autoptr(GError) e = NULL;
        int r;

        if (store_account_cleanup_list(m->store, &cleanup, &e) < 0)
                log_warning("Failed to list broker accounts to delete: %s", e->message);
        else
                for (guint i = 0; i < cleanup->len; i++)
                        manager_delete_account(m, cleanup->pdata[i]);

        r = mq_host_accounts_list(m->mq, accounts_listed, m);
        if (r < 0)
                log_debug_errno(
                        r, "Listing the broker's host accounts is postponed to the next connection: %m");
}
