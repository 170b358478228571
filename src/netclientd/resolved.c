/* Registers each mesh link's DNS with systemd-resolved over D-Bus, with networkd as fallback. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "resolved.h"

#define RESOLVE1 "org.freedesktop.resolve1"
#define RESOLVE1_PATH "/org/freedesktop/resolve1"
#define RESOLVE1_IFACE "org.freedesktop.resolve1.Manager"
#define NETWORK1 "org.freedesktop.network1"
#define NETWORK1_PATH "/org/freedesktop/network1"
#define NETWORK1_IFACE "org.freedesktop.network1.Manager"
#define LINK_BUSY "org.freedesktop.resolve1.LinkBusy"

typedef struct Link {
        Resolved *owner;
        int ifindex;
        int family;
        NmInAddr dns;
        char *domain;
        ResolvedLinkState state;
        char *error;
        GPtrArray *slots; /* of sd_bus_slot: dropping one cancels its call */
        unsigned pending;
        bool via_networkd;
        bool failed;
} Link;

struct Resolved {
        sd_bus *bus;
        sd_bus_slot *owner_match;
        GHashTable *links; /* ifindex -> Link */
};

static void message_unrefp(sd_bus_message **m)
{
        sd_bus_message_unref(*m);
}

static void slot_unref(gpointer p)
{
        sd_bus_slot_unref(p);
}

typedef struct Call {
        Link *link;
        bool networkd;
        const char *method;
} Call;

static void link_free(Link *l)
{
        g_ptr_array_unref(l->slots);
        g_free(l->domain);
        g_free(l->error);
        g_free(l);
}

static int append_args(sd_bus_message *m, Link *l, const char *method)
{
        int r = sd_bus_message_append(m, "i", l->ifindex);
        if (r < 0)
                return r;
        if (streq0(method, "SetLinkDNS")) {
                r = sd_bus_message_open_container(m, 'a', "(iay)");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'r', "iay");
                if (r >= 0)
                        r = sd_bus_message_append(m, "i", l->family);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', &l->dns, l->family == AF_INET ? 4 : 16);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        }
        if (streq0(method, "SetLinkDomains"))
                return sd_bus_message_append(m, "a(sb)", 1, l->domain, 1);
        if (streq0(method, "SetLinkDefaultRoute"))
                return sd_bus_message_append(m, "b", 0);
        return 0; /* RevertLink / RevertLinkDNS take only the ifindex */
}

static int send_call(Link *l, bool networkd, const char *method);

static void update_state(Link *l)
{
        if (l->pending > 0)
                return;
        if (l->failed)
                l->state = RESOLVED_LINK_FAILED;
        else
                l->state = l->via_networkd ? RESOLVED_LINK_NETWORKD : RESOLVED_LINK_RESOLVED;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        Link *l = c->link;

        /* Once resolved said LinkBusy, its other replies no longer matter. */
        if (c->networkd != l->via_networkd)
                return 0;
        l->pending--;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!e) {
                update_state(l);
                return 0;
        }
        if (!l->via_networkd && sd_bus_error_has_name(e, LINK_BUSY)) {
                /* resolved refuses links networkd manages; networkd takes the same settings for them. */
                log_debug("resolved: link %d is managed by networkd, using org.freedesktop.network1", l->ifindex);
                l->via_networkd = true;
                l->pending = 0;
                send_call(l, true, "SetLinkDNS");
                send_call(l, true, "SetLinkDomains");
                send_call(l, true, "SetLinkDefaultRoute");
                return 0;
        }
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                /* Not running: applied when it appears (name watch). */
                l->state = RESOLVED_LINK_PENDING;
                return 0;
        }
        log_warning("Failed to register DNS of link %d with %s (%s): %s", l->ifindex,
                    l->via_networkd ? "systemd-networkd" : "systemd-resolved", c->method, e->message);
        g_free(l->error);
        l->error = g_strdup(e->message);
        l->failed = true;
        update_state(l);
        return 0;
}

static int send_call(Link *l, bool networkd, const char *method)
{
        _cleanup_(message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(l->owner->bus, &m, networkd ? NETWORK1 : RESOLVE1,
                                           networkd ? NETWORK1_PATH : RESOLVE1_PATH,
                                           networkd ? NETWORK1_IFACE : RESOLVE1_IFACE, method);
        if (r < 0)
                return r;
        /* Talk to resolved only when the admin runs it: never start it through bus activation. */
        (void) sd_bus_message_set_auto_start(m, false);
        r = append_args(m, l, method);
        if (r < 0)
                return r;
        Call *c = g_new0(Call, 1);
        c->link = l;
        c->networkd = networkd;
        c->method = method;
        sd_bus_slot *slot = NULL;
        r = sd_bus_call_async(l->owner->bus, &slot, m, on_reply, c, 0);
        if (r < 0) {
                g_free(c);
                return r;
        }
        sd_bus_slot_set_destroy_callback(slot, g_free);
        g_ptr_array_add(l->slots, slot);
        l->pending++;
        l->state = RESOLVED_LINK_PENDING;
        return 0;
}

static void apply(Link *l)
{
        /* Cancel what is still in flight for earlier settings. */
        g_ptr_array_set_size(l->slots, 0);
        l->pending = 0;
        l->failed = false;
        l->via_networkd = false;
        g_clear_pointer(&l->error, g_free);
        /* Order matters little to resolved; DNS first, as resolvectl does. */
        if (send_call(l, false, "SetLinkDNS") < 0 || send_call(l, false, "SetLinkDomains") < 0 ||
            send_call(l, false, "SetLinkDefaultRoute") < 0)
                log_debug("resolved: cannot queue calls for link %d", l->ifindex);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Resolved *r = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (!streq0(name, RESOLVE1) || !new_owner || !*new_owner)
                return 0;
        /* A new resolved instance: its runtime state may be gone, so apply every link again. */
        log_debug("resolved: org.freedesktop.resolve1 has a new owner, re-applying %u links",
                  g_hash_table_size(r->links));
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, r->links);
        while (g_hash_table_iter_next(&it, NULL, &v))
                apply(v);
        return 0;
}

int resolved_new(sd_bus *bus, Resolved **ret)
{
        Resolved *r = g_new0(Resolved, 1);
        int k;

        r->bus = sd_bus_ref(bus);
        r->links = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify) link_free);
        k = sd_bus_match_signal_async(bus, &r->owner_match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, NULL, r);
        if (k < 0) {
                resolved_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Resolved *resolved_free(Resolved *r)
{
        if (!r)
                return NULL;
        sd_bus_slot_unref(r->owner_match);
        /* Freeing the links drops their slots, which cancels the calls still in flight. */
        g_hash_table_unref(r->links);
        sd_bus_unref(r->bus);
        g_free(r);
        return NULL;
}

int resolved_set_link(Resolved *r, int ifindex, int family, const NmInAddr *dns, const char *domain)
{
        if (ifindex <= 0 || (family != AF_INET && family != AF_INET6) || !domain || !*domain)
                return -EINVAL;
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (!l) {
                l = g_new0(Link, 1);
                l->owner = r;
                l->ifindex = ifindex;
                l->slots = g_ptr_array_new_with_free_func(slot_unref);
                g_hash_table_insert(r->links, GINT_TO_POINTER(ifindex), l);
        }
        l->family = family;
        l->dns = *dns;
        g_free(l->domain);
        l->domain = g_strdup(domain);
        apply(l);
        return 0;
}

int resolved_revert_link(Resolved *r, int ifindex)
{
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (!l)
                return -ENOENT;
        bool networkd = l->via_networkd;
        /* Fire and forget: the Link goes away now; the revert reply needs no state. */
        _cleanup_(message_unrefp) sd_bus_message *m = NULL;
        if (sd_bus_message_new_method_call(r->bus, &m, networkd ? NETWORK1 : RESOLVE1,
                                           networkd ? NETWORK1_PATH : RESOLVE1_PATH,
                                           networkd ? NETWORK1_IFACE : RESOLVE1_IFACE,
                                           networkd ? "RevertLinkDNS" : "RevertLink") >= 0) {
                (void) sd_bus_message_set_auto_start(m, false);
                if (sd_bus_message_append(m, "i", ifindex) >= 0)
                        (void) sd_bus_send(r->bus, m, NULL);
        }
        g_hash_table_remove(r->links, GINT_TO_POINTER(ifindex));
        return 0;
}

ResolvedLinkState resolved_link_state(Resolved *r, int ifindex, const char **error_message)
{
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (error_message)
                *error_message = l ? l->error : NULL;
        return l ? l->state : RESOLVED_LINK_FAILED;
}
