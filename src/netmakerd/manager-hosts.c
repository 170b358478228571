/* Hosts as the Manager keeps them: their deletion (by the admin, by themselves, or when stale), and
 * whether they are online, offline or stale by the age of their last check-in (docs/netmakerd.md,
 * "Stale hosts"). */
#include <errno.h>

#include "log.h"
#include "manager.h"

/* At most this long between two looks for stale hosts; at least a second. */
#define STALE_SWEEP_MAX_USEC (60 * G_USEC_PER_SEC)

int manager_delete_host(Manager *m, const char *host_id, GError **error)
{
        g_autoptr(Host) h = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_host_get(m->store, host_id, &h, error);
        if (k >= 0)
                k = peers_host_delete(m->store, h, out, error);
        if (k >= 0 && manager_broker_enabled(m))
                k = store_account_cleanup_add(m->store, h->id, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        manager_delete_account(m, h->id);
        log_info("Deleted host \"%s\" (%s).", h->name, h->id);
        return 0;
}

const char *manager_host_status(Manager *m, const Host *h, gint64 now)
{
        gint64 age = now - h->last_checkin;
        if (age >= (gint64)m->config->host_stale_after)
                return "stale";
        if (age >= (gint64)m->config->host_offline_after)
                return "offline";
        return "online";
}

static void remove_stale(Manager *m)
{
        gint64 now = manager_now();
        g_autoptr(GPtrArray) ids = NULL;
        g_autoptr(GError) e = NULL;

        if (store_host_ids_checked_in_before(m->store, now - (gint64)m->config->host_stale_after + 1, &ids,
                                             &e) < 0) {
                log_warning("Failed to look for stale hosts: %s", e->message);
                return;
        }
        for (guint i = 0; i < ids->len && !m->stopping; i++) {
                const char *id = ids->pdata[i];
                g_autoptr(Host) h = NULL;
                g_autoptr(GError) de = NULL;
                if (store_host_get(m->store, id, &h, NULL) < 0)
                        continue;
                log_notice("Host \"%s\" (%s) has not checked in for %" G_GINT64_FORMAT
                           " s (host_stale_after=%u s): removing it (host_remove_stale=yes).",
                           h->name, h->id, now - h->last_checkin, m->config->host_stale_after);
                if (manager_delete_host(m, id, &de) < 0)
                        log_warning("Failed to remove the stale host %s: %s", id, de->message);
        }
}

static int on_stale_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        uint64_t period =
                MIN((uint64_t)m->config->host_stale_after * G_USEC_PER_SEC / 4, STALE_SWEEP_MAX_USEC);

        remove_stale(m);
        (void)sd_event_source_set_time_relative(s, MAX(period, (uint64_t)G_USEC_PER_SEC));
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int manager_hosts_start(Manager *m)
{
        int r;

        if (!m->config->host_remove_stale)
                return 0;
        /* At once: hosts that went stale while netmakerd was stopped go now. */
        r = sd_event_add_time_relative(m->event, &m->stale_timer, CLOCK_MONOTONIC, 0, 0, on_stale_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the removal of stale hosts: %m");
        log_info("Hosts without a check-in for %u s are removed (host_remove_stale=yes).",
                 m->config->host_stale_after);
        return 0;
}
