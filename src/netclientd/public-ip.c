/* This host's public address (docs/protocol.md §3.5, §4.5): asked from the configured STUN servers
 * after every broker connection, with every periodic check-in and when the host's addresses
 * change; a different answer is reported to the server at once. */
#include "log.h"
#include "macro.h"
#include "manager.h"
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

void manager_public_ip_refresh(Manager *m)
{
        int r;

        if (!m->event || !m->server || !m->config->stun_servers || m->stun)
                return;
        r = stun_query_start(m->event, m->config->stun_servers, 0, on_stun_done, m, &m->stun);
        if (r < 0)
                log_warning_errno(r, "Failed to ask the STUN servers for the public address: %m");
}

void manager_public_ip_stop(Manager *m)
{
        m->stun = stun_query_cancel(m->stun);
}
