/* Asynchronous polkit checks with re-dispatch of the original call (systemd's bus-polkit.c pattern). */
#include <errno.h>
#include <stdbool.h>
#include <linux/capability.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "polkit.h"

typedef struct AsyncPolkitQuery {
        char *action;
        sd_bus_message *request;
        sd_bus_message *reply;
        sd_bus_slot *slot;
        GHashTable *registry;
        sd_event_source *defer;
} AsyncPolkitQuery;

static void async_polkit_query_free(AsyncPolkitQuery *q)
{
        if (!q)
                return;
        sd_bus_slot_unref(q->slot);
        sd_event_source_disable_unref(q->defer);
        sd_bus_message_unref(q->request);
        sd_bus_message_unref(q->reply);
        g_free(q->action);
        g_free(q);
}

void polkit_registry_free(GHashTable *registry)
{
        if (registry)
                g_hash_table_unref(registry);
}

static int async_polkit_defer(sd_event_source *s, void *userdata)
{
        AsyncPolkitQuery *q = userdata;
        /* Removing it from the registry frees it (the registry owns its queries). */
        g_hash_table_remove(q->registry, q->request);
        return 0;
}

static int async_polkit_callback(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        AsyncPolkitQuery *q = userdata;
        sd_bus *bus = sd_bus_message_get_bus(q->request);
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        q->reply = sd_bus_message_ref(reply);

        /* Free the query once the re-dispatched call has been handled: an idle-priority defer runs
         * after the bus has processed its queue. */
        r = sd_event_add_defer(sd_bus_get_event(bus), &q->defer, async_polkit_defer, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->defer, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->defer, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(bus, q->request);
        if (r < 0) {
                log_warning_errno(r, "Failed to re-dispatch a call after polkit answered: %m");
                (void)sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_FAILED,
                                                 "Failed to process the polkit answer: %s", g_strerror(-r));
                g_hash_table_remove(q->registry, q->request);
        }
        return 1;
}

static int evaluate_reply(AsyncPolkitQuery *q, sd_bus_error *error)
{
        const char *member = strna(sd_bus_message_get_member(q->request));
        int authorized = 0, challenge = 0, r;

        if (sd_bus_message_is_method_error(q->reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(q->reply);
                log_warning("polkit could not decide %s for %s: %s", q->action,
                            strna(sd_bus_message_get_sender(q->request)), strna(e ? e->message : NULL));
                /* Without an authority we cannot say yes: fail closed. */
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access to %s denied: polkit could not be asked (%s)", member,
                                         strna(e ? e->name : NULL));
        }
        r = sd_bus_message_enter_container(q->reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(q->reply, "bb", &authorized, &challenge);
        (void)sd_bus_message_rewind(q->reply, true);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access to %s denied: unexpected answer from polkit", member);
        if (authorized)
                return 1;
        if (challenge)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Authentication is required for %s (polkit action %s); allow "
                                         "interactive authorization or use an authentication agent",
                                         member, q->action);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Access to %s denied by polkit (action %s)", member, q->action);
}

int bus_verify_polkit_async(sd_bus_message *call, const char *action, GHashTable **registry,
                            sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *pk = NULL;
        AsyncPolkitQuery *q;
        sd_bus *bus = sd_bus_message_get_bus(call);
        const char *sender;
        bool interactive;
        int r;

        if (*registry) {
                q = g_hash_table_lookup(*registry, call);
                if (q) {
                        if (!q->reply)
                                return 0; /* still waiting */
                        if (!streq0(q->action, action))
                                return -ESTALE; /* one call, one action */
                        return evaluate_reply(q, error);
                }
        }

        /* Like systemd's daemons: a caller that could change the links itself needs no permission. */
        r = sd_bus_query_sender_privilege(call, CAP_NET_ADMIN);
        if (r < 0)
                return r;
        if (r > 0)
                return 1;

        sender = sd_bus_message_get_sender(call);
        if (!sender)
                return -EBADMSG;

        r = sd_bus_message_new_method_call(bus, &pk, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(pk, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        interactive = sd_bus_message_get_allow_interactive_authorization(call) > 0;
        r = sd_bus_message_append(pk, "a{ss}us", 0, (uint32_t)interactive, "");
        if (r < 0)
                return r;

        if (!*registry)
                *registry = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                                  (GDestroyNotify)async_polkit_query_free);
        q = g_new0(AsyncPolkitQuery, 1);
        q->action = g_strdup(action);
        q->request = sd_bus_message_ref(call);
        q->registry = *registry;
        /* An interactive check waits for a human typing a password: give it minutes, not 25 s. */
        r = sd_bus_call_async(bus, &q->slot, pk, async_polkit_callback, q,
                              interactive ? 300 * 1000000ULL : 0);
        if (r < 0) {
                async_polkit_query_free(q);
                return r;
        }
        g_hash_table_insert(*registry, call, q);
        return 0;
}
