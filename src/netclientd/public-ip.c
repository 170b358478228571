/* This host's public address (docs/protocol.md §3.5, §4.5): asked from the configured STUN servers,
 * then from the server's own (the observer endpoint of a joined network, when the server answers
 * STUN there), after every broker connection, with every periodic check-in and when the host's
 * addresses change; a different answer is reported to the server at once. */
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "network.h"
#include "stun.h"

static void on_stun_done(StunQuery *q, const char *public_ip, const char *error, void *userdata)
{
        static const char *const props[] = {"PublicAddress", NULL};
        Manager *m = userdata;

        m->stun = NULL;
        if (!public_ip)
                log_debug("No STUN server answered: %s", strna(error));
        if (streq0(public_ip, m->public_ip))
                return;
        if (public_ip)
                log_info("Public address: %s (was %s).", public_ip, m->public_ip ? m->public_ip : "unknown");
        else
                log_notice("Public address unknown: %s.", strna(error));
        g_free(m->public_ip);
        m->public_ip = g_strdup(public_ip);
        if (m->bus)
                (void)sd_bus_emit_properties_changed_strv(m->bus, NETCLIENT_OBJECT_PATH, NETCLIENT_INTERFACE,
                                                          (char **)props);
        manager_send_checkin(m);
}

/* STUNServers= first (the admin chose them), then the server's, each once, at most STUN_MAX_SERVERS. */
static char **stun_servers(Manager *m)
{
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
        GHashTableIter it;
        gpointer v;

        for (char **s = m->config->stun_servers; s && *s && a->len < STUN_MAX_SERVERS; s++)
                g_ptr_array_add(a, g_strdup(*s));
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v) && a->len < STUN_MAX_SERVERS) {
                const NmObserver *o = ((Network *)v)->desired->observer;
                bool seen = false;
                for (guint i = 0; o && i < a->len && !seen; i++)
                        seen = streq0(a->pdata[i], o->endpoint);
                if (o && o->stun && !seen)
                        g_ptr_array_add(a, g_strdup(o->endpoint));
        }
        if (a->len == 0)
                return NULL;
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(TAKE_PTR(a), false);
}

void manager_public_ip_refresh(Manager *m)
{
        g_auto(GStrv) servers = NULL;
        int r;

        if (!m->event || !m->server || m->stun)
                return;
        servers = stun_servers(m);
        if (!servers)
                return;
        r = stun_query_start(m->event, servers, 0, on_stun_done, m, &m->stun);
        if (r < 0)
                log_warning_errno(r, "Failed to ask the STUN servers for the public address: %m");
}

void manager_public_ip_stop(Manager *m)
{
        m->stun = stun_query_cancel(m->stun);
}
