/* Registers each mesh link's DNS with systemd-resolved over D-Bus, with networkd as fallback. */
#include <errno.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "resolved.h"

#define RESOLVE1              "org.freedesktop.resolve1"
#define RESOLVE1_PATH         "/org/freedesktop/resolve1"
#define RESOLVE1_IFACE        "org.freedesktop.resolve1.Manager"
#define NETWORK1              "org.freedesktop.network1"
#define NETWORK1_PATH         "/org/freedesktop/network1"
#define NETWORK1_IFACE        "org.freedesktop.network1.Manager"
#define LINK_BUSY             "org.freedesktop.resolve1.LinkBusy"
#define NO_SUCH_LINK          "org.freedesktop.resolve1.NoSuchLink"
#define NETWORK1_NO_SUCH_LINK "org.freedesktop.network1.NoSuchLink"

#define DNS_PORT 53
/* A link resolved does not know yet is asked for again soon; a refusal (e.g. polkit) less often. */
#define RETRY_FIRST_USEC  (100 * 1000ULL)
#define RETRY_MAX_USEC    (5 * 1000 * 1000ULL)
#define FAILED_FIRST_USEC (1000 * 1000ULL)
#define FAILED_MAX_USEC   (60 * 1000 * 1000ULL)

static const char *const state_names[_RESOLVED_LINK_STATE_MAX] = {
        [RESOLVED_LINK_PENDING] = "pending",
        [RESOLVED_LINK_RESOLVED] = "resolved",
        [RESOLVED_LINK_NETWORKD] = "networkd",
        [RESOLVED_LINK_FAILED] = "failed",
};

const char *resolved_link_state_to_string(ResolvedLinkState s)
{
        return s >= 0 && s < _RESOLVED_LINK_STATE_MAX ? state_names[s] : "unknown";
}

/* What we ask of the link, in order. Required calls failing fail the link; the others only make
 * the registration tidier (a resolved that lacks them still routes our domain to us). */
typedef struct Method {
        const char *name;
        bool required;
} Method;

static const Method methods[] = {
        {"SetLinkDNS", true},           /* or SetLinkDNSEx when the port is not 53 */
        {"SetLinkDomains", true},       /* ~<network>.<domain> and the nameservers' domains: only those */
        {"SetLinkDefaultRoute", false}, /* never the default for other names */
        {"SetLinkDNSSEC", false},       /* "no": our zone is not signed; the tunnel protects it */
        {"SetLinkDNSOverTLS", false},   /* "no": plain DNS inside the tunnel */
        {"SetLinkLLMNR", false},        /* "no": multicast does not cross WireGuard */
        {"SetLinkMulticastDNS", false},
};

typedef struct Link {
        Resolved *owner;
        int ifindex;
        ResolvedServer servers[2];
        size_t n_servers;
        uint16_t port;
        char **domains; /* routing domains, without the "~" */
        ResolvedLinkState state;
        char *error;
        GPtrArray *slots;    /* of sd_bus_slot: dropping one cancels its call */
        unsigned generation; /* raised by every apply: replies of older ones are ignored */
        unsigned pending;
        bool via_networkd;
        bool failed;
        unsigned failures; /* applies in a row that failed: only the first is logged as a warning */
        bool no_such_link;
        bool absent; /* the service is not running: pending until it appears */
        sd_event_source *retry;
        uint64_t retry_usec;
} Link;

struct Resolved {
        sd_bus *bus;
        sd_bus_slot *resolve1_match, *network1_match;
        GHashTable *links; /* ifindex -> Link */
        ResolvedStateHandler handler;
        void *userdata;
};

typedef struct Call {
        Link *link;
        unsigned generation;
        bool networkd;
        const Method *method;
} Call;

static void slot_unref(gpointer p)
{
        sd_bus_slot_unref(p);
}

static void link_free(Link *l)
{
        g_ptr_array_unref(l->slots);
        sd_event_source_disable_unref(l->retry);
        g_strfreev(l->domains);
        g_free(l->error);
        g_free(l);
}

static void set_state(Link *l, ResolvedLinkState s)
{
        if (l->state == s)
                return;
        l->state = s;
        if (l->owner->handler)
                l->owner->handler(l->owner, l->ifindex, s, l->owner->userdata);
}

static int append_args(sd_bus_message *m, Link *l, const char *method)
{
        int r = sd_bus_message_append(m, "i", l->ifindex);
        if (r < 0)
                return r;
        if (streq0(method, "SetLinkDNS") || streq0(method, "SetLinkDNSEx")) {
                bool ex = streq0(method, "SetLinkDNSEx");
                r = sd_bus_message_open_container(m, 'a', ex ? "(iayqs)" : "(iay)");
                for (size_t i = 0; r >= 0 && i < l->n_servers; i++) {
                        const ResolvedServer *s = &l->servers[i];
                        r = sd_bus_message_open_container(m, 'r', ex ? "iayqs" : "iay");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "i", s->family);
                        if (r >= 0)
                                r = sd_bus_message_append_array(m, 'y', &s->addr,
                                                                s->family == AF_INET ? 4 : 16);
                        if (r >= 0 && ex)
                                r = sd_bus_message_append(m, "qs", l->port, "");
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        }
        if (streq0(method, "SetLinkDomains")) {
                r = sd_bus_message_open_container(m, 'a', "(sb)");
                for (char **d = l->domains; r >= 0 && d && *d; d++)
                        r = sd_bus_message_append(m, "(sb)", *d, 1);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        }
        if (streq0(method, "SetLinkDefaultRoute"))
                return sd_bus_message_append(m, "b", 0);
        if (streq0(method, "SetLinkDNSSEC") || streq0(method, "SetLinkDNSOverTLS") ||
            streq0(method, "SetLinkLLMNR") || streq0(method, "SetLinkMulticastDNS"))
                return sd_bus_message_append(m, "s", "no");
        return 0; /* RevertLink / RevertLinkDNS take only the ifindex */
}

static void schedule_retry(Link *l, uint64_t first, uint64_t max);
static void apply(Link *l);

static void update_state(Link *l)
{
        if (l->pending > 0)
                return;
        if (l->no_such_link) {
                /* resolved has not seen the link yet (it was just made): ask again shortly. */
                l->no_such_link = false;
                set_state(l, RESOLVED_LINK_PENDING);
                schedule_retry(l, RETRY_FIRST_USEC, RETRY_MAX_USEC);
                return;
        }
        if (l->absent) {
                set_state(l, RESOLVED_LINK_PENDING);
                return;
        }
        if (l->failed) {
                l->failures++;
                set_state(l, RESOLVED_LINK_FAILED);
                schedule_retry(l, FAILED_FIRST_USEC, FAILED_MAX_USEC);
        } else {
                l->retry_usec = 0;
                l->failures = 0;
                set_state(l, l->via_networkd ? RESOLVED_LINK_NETWORKD : RESOLVED_LINK_RESOLVED);
        }
}

static int send_call(Link *l, bool networkd, const Method *method);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Call *c = userdata;
        Link *l = c->link;

        /* Replies to an earlier apply, or from resolved after it said LinkBusy, no longer matter. */
        if (c->generation != l->generation || c->networkd != l->via_networkd)
                return 0;
        l->pending--;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!e) {
                update_state(l);
                return 0;
        }
        if (!l->via_networkd && sd_bus_error_has_name(e, LINK_BUSY)) {
                /* resolved refuses links networkd manages; networkd takes the same settings for them. */
                log_debug("resolved: link %d is managed by networkd, using org.freedesktop.network1",
                          l->ifindex);
                l->via_networkd = true;
                l->absent = false;
                l->pending = 0;
                for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                        if (send_call(l, true, &methods[i]) < 0)
                                log_debug("resolved: cannot queue %s for link %d", methods[i].name,
                                          l->ifindex);
                update_state(l);
                return 0;
        }
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                /* Not running: applied when it appears (name watch). Nothing else is wrong. */
                if (!l->absent)
                        log_debug("resolved: %s is not running; link %d waits for it",
                                  l->via_networkd ? NETWORK1 : RESOLVE1, l->ifindex);
                l->absent = true;
                update_state(l);
                return 0;
        }
        if (sd_bus_error_has_names(e, NO_SUCH_LINK, NETWORK1_NO_SUCH_LINK)) {
                l->no_such_link = true;
                update_state(l);
                return 0;
        }
        if (!c->method->required &&
            sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_INVALID_ARGS)) {
                log_debug("resolved: %s of link %d not supported here (%s); carrying on", c->method->name,
                          l->ifindex, e->message);
                update_state(l);
                return 0;
        }
        log_full(l->failed || l->failures > 0 ? LOG_DEBUG : LOG_WARNING,
                 "Failed to register the DNS of link %d with %s (%s; retrying): %s", l->ifindex,
                 l->via_networkd ? "systemd-networkd" : "systemd-resolved", c->method->name, e->message);
        g_free(l->error);
        l->error = g_strdup(e->message);
        l->failed = true;
        update_state(l);
        return 0;
}

static int send_call(Link *l, bool networkd, const Method *method)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *name = method->name;
        int r;

        if (streq0(name, "SetLinkDNS") && l->port != DNS_PORT)
                name = "SetLinkDNSEx"; /* since systemd 246: servers with a port */
        r = sd_bus_message_new_method_call(l->owner->bus, &m, networkd ? NETWORK1 : RESOLVE1,
                                           networkd ? NETWORK1_PATH : RESOLVE1_PATH,
                                           networkd ? NETWORK1_IFACE : RESOLVE1_IFACE, name);
        if (r < 0)
                return r;
        /* Talk to resolved only when the admin runs it: never start it through bus activation. */
        (void)sd_bus_message_set_auto_start(m, false);
        r = append_args(m, l, name);
        if (r < 0)
                return r;
        Call *c = g_new0(Call, 1);
        c->link = l;
        c->generation = l->generation;
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
        return 0;
}

static void apply(Link *l)
{
        /* Cancel what is still in flight for earlier settings. */
        g_ptr_array_set_size(l->slots, 0);
        l->generation++;
        l->pending = 0;
        l->failed = false;
        l->no_such_link = false;
        l->absent = false;
        l->via_networkd = false;
        g_clear_pointer(&l->error, g_free);
        if (l->retry)
                (void)sd_event_source_set_enabled(l->retry, SD_EVENT_OFF);
        set_state(l, RESOLVED_LINK_PENDING);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (send_call(l, false, &methods[i]) < 0)
                        log_debug("resolved: cannot queue %s for link %d", methods[i].name, l->ifindex);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        apply(userdata);
        return 0;
}

static void schedule_retry(Link *l, uint64_t first, uint64_t max)
{
        sd_event *e = sd_bus_get_event(l->owner->bus);
        uint64_t now;

        if (!e)
                return;
        l->retry_usec = l->retry_usec ? MIN(l->retry_usec * 2, max) : first;
        (void)sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (!l->retry) {
                if (sd_event_add_time(e, &l->retry, CLOCK_MONOTONIC, now + l->retry_usec, 0, on_retry, l) <
                    0)
                        return;
                (void)sd_event_source_set_description(l->retry, "resolved-retry");
                (void)sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
                return;
        }
        (void)sd_event_source_set_time(l->retry, now + l->retry_usec);
        (void)sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Resolved *r = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (!new_owner || !*new_owner) {
                /* Gone: what it held is lost with it, until it comes back (then applied again). */
                bool resolve1 = streq0(name, RESOLVE1);
                GHashTableIter it;
                gpointer v;
                g_hash_table_iter_init(&it, r->links);
                while (g_hash_table_iter_next(&it, NULL, &v)) {
                        Link *l = v;
                        if (l->via_networkd != resolve1)
                                set_state(l, RESOLVED_LINK_PENDING);
                }
                return 0;
        }
        /* A new resolved (or networkd) instance: its runtime state is gone, so apply every link
         * again (starting with resolved; networkd again for the links it manages). */
        log_debug("resolved: %s has a new owner, re-applying %u link(s)", name, g_hash_table_size(r->links));
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, r->links);
        while (g_hash_table_iter_next(&it, NULL, &v))
                apply(v);
        return 0;
}

static int watch_name(Resolved *r, const char *name, sd_bus_slot **slot)
{
        g_autofree char *match =
                g_strdup_printf("type='signal',sender='org.freedesktop.DBus',"
                                "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                                "member='NameOwnerChanged',arg0='%s'",
                                name);
        return sd_bus_add_match_async(r->bus, slot, match, on_owner_changed, NULL, r);
}

int resolved_new(sd_bus *bus, ResolvedStateHandler handler, void *userdata, Resolved **ret)
{
        Resolved *r = g_new0(Resolved, 1);
        int k;

        r->bus = sd_bus_ref(bus);
        r->handler = handler;
        r->userdata = userdata;
        r->links = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)link_free);
        k = watch_name(r, RESOLVE1, &r->resolve1_match);
        if (k >= 0)
                k = watch_name(r, NETWORK1, &r->network1_match);
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
        sd_bus_slot_unref(r->resolve1_match);
        sd_bus_slot_unref(r->network1_match);
        /* Freeing the links drops their slots, which cancels the calls still in flight. */
        r->handler = NULL;
        g_hash_table_unref(r->links);
        sd_bus_unref(r->bus);
        g_free(r);
        return NULL;
}

static bool same_settings(const Link *l, const ResolvedServer *servers, size_t n, uint16_t port,
                          const char *const *domains)
{
        if (l->n_servers != n || l->port != port || !g_strv_equal((const char *const *)l->domains, domains))
                return false;
        for (size_t i = 0; i < n; i++)
                if (l->servers[i].family != servers[i].family ||
                    memcmp(&l->servers[i].addr, &servers[i].addr, nm_family_bits(servers[i].family) / 8) !=
                            0)
                        return false;
        return true;
}

int resolved_set_link(Resolved *r, int ifindex, const ResolvedServer *servers, size_t n_servers,
                      uint16_t port, const char *const *domains)
{
        if (ifindex <= 0 || n_servers == 0 || n_servers > ELEMENTSOF(((Link *)NULL)->servers) || port == 0 ||
            !domains || !domains[0])
                return -EINVAL;
        for (const char *const *d = domains; *d; d++)
                if (!**d)
                        return -EINVAL;
        for (size_t i = 0; i < n_servers; i++)
                if (servers[i].family != AF_INET && servers[i].family != AF_INET6)
                        return -EINVAL;
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (l && same_settings(l, servers, n_servers, port, domains))
                return 0; /* nothing new (a failed link is tried again from its timer) */
        if (!l) {
                l = g_new0(Link, 1);
                l->owner = r;
                l->ifindex = ifindex;
                l->state = RESOLVED_LINK_PENDING;
                l->slots = g_ptr_array_new_with_free_func(slot_unref);
                g_hash_table_insert(r->links, GINT_TO_POINTER(ifindex), l);
        }
        memcpy(l->servers, servers, n_servers * sizeof(*servers));
        l->n_servers = n_servers;
        l->port = port;
        g_strfreev(l->domains);
        l->domains = g_strdupv((char **)domains);
        l->retry_usec = 0;
        l->failures = 0;
        apply(l);
        return 0;
}

int resolved_revert_link(Resolved *r, int ifindex)
{
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (!l)
                return -ENOENT;
        bool networkd = l->via_networkd;
        /* Fire and forget: the Link goes away now; the revert's reply needs no state. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        if (sd_bus_message_new_method_call(r->bus, &m, networkd ? NETWORK1 : RESOLVE1,
                                           networkd ? NETWORK1_PATH : RESOLVE1_PATH,
                                           networkd ? NETWORK1_IFACE : RESOLVE1_IFACE,
                                           networkd ? "RevertLinkDNS" : "RevertLink") >= 0) {
                (void)sd_bus_message_set_auto_start(m, false);
                if (sd_bus_message_append(m, "i", ifindex) >= 0)
                        (void)sd_bus_send(r->bus, m, NULL);
        }
        g_hash_table_remove(r->links, GINT_TO_POINTER(ifindex));
        return 0;
}

void resolved_forget_link(Resolved *r, int ifindex)
{
        g_hash_table_remove(r->links, GINT_TO_POINTER(ifindex));
}

ResolvedLinkState resolved_link_state(Resolved *r, int ifindex, const char **error_message)
{
        Link *l = g_hash_table_lookup(r->links, GINT_TO_POINTER(ifindex));
        if (error_message)
                *error_message = l ? l->error : NULL;
        return l ? l->state : RESOLVED_LINK_FAILED;
}
