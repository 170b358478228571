/* REST resource /networks/{net}/nameservers: a network's split DNS (docs/protocol.md §5.1). Names
 * under a nameserver's domain are resolved by its servers on every host of the network; a change
 * reaches those hosts, and no others, as "network-changed". */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "nameservers.h"
#include "names.h"
#include "nm-error.h"

static void json_add_nameserver(JsonBuilder *b, const NmNameserver *ns)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "domain", ns->domain);
        nm_json_add_strv(b, "servers", (const char *const *)ns->servers);
        json_builder_end_object(b);
}

static void reply_nameserver(Request *r, unsigned status, const NmNameserver *ns)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_nameserver(b, ns);
        request_reply_builder(r, status, b);
}

static int nameservers_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k >= 0)
                k = nameservers_load(m->store, n->name, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                json_add_nameserver(b, all->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

/* Every host of the network hears its new list. */
static int fanout(Manager *m, const char *network, Outbox *out, GError **error)
{
        g_autoptr(PeerView) v = NULL;
        int k = peers_load_view(m->store, network, &v, error);
        if (k < 0)
                return k;
        peers_fanout_network_changed(v, out);
        return 0;
}

/* Creates (POST, `domain` from the body) or replaces the servers of (PUT, `domain` from the path)
 * a nameserver. */
static int nameserver_write(Request *r, bool create, GError **error)
{
        static const char *const post_members[] = {"domain", "servers", NULL};
        static const char *const put_members[] = {"servers", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o =
                request_json_object(r, "nameserver", create ? post_members : put_members, error);
        g_autoptr(Network) n = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_auto(GStrv) servers_in = NULL, servers = NULL;
        g_autofree char *domain = NULL;
        const char *domain_in = NULL;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || (create && !nm_json_get_string(o, "domain", true, &domain_in, error)) ||
            !nm_json_get_strv(o, "servers", true, NM_MAX_NAMESERVER_SERVERS + 1, &servers_in, error))
                return -EINVAL;
        if (!create)
                domain_in = request_param(r, "domain");
        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        if (!nameserver_domain_valid(domain_in, n->name, n->dns_domain, &domain, error))
                return g_error_matches(*error, NM_ERROR, NM_ERROR_CONFLICT) ? -EEXIST : -EINVAL;
        if (!nameserver_servers_valid(servers_in, &servers, error))
                return -EINVAL;
        g_autoptr(NmNameserver) ns = nm_nameserver_new(domain, servers);
        k = create ? nameservers_add(m->store, n->name, ns, error)
                   : nameservers_set(m->store, n->name, ns, error);
        if (k >= 0)
                k = fanout(m, n->name, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        g_autofree char *list = g_strjoinv(", ", ns->servers);
        log_info("%s nameserver %s -> %s of network \"%s\"; told %u host(s).", create ? "Added" : "Changed",
                 ns->domain, list, n->name, out->msgs->len);
        reply_nameserver(r, create ? MHD_HTTP_CREATED : MHD_HTTP_OK, ns);
        return 0;
}

static int nameservers_create(Request *r, GError **error)
{
        return nameserver_write(r, true, error);
}

static int nameservers_replace(Request *r, GError **error)
{
        return nameserver_write(r, false, error);
}

static int nameservers_remove(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k >= 0)
                k = nameservers_delete(m->store, n->name, request_param(r, "domain"), error);
        if (k >= 0)
                k = fanout(m, n->name, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        g_autofree char *shown = nm_shown(request_param(r, "domain"));
        log_info("Deleted nameserver %s of network \"%s\"; told %u host(s).", shown, n->name,
                 out->msgs->len);
        request_reply_empty(r);
        return 0;
}

const Route http_nameserver_routes[] = {
        {"GET", "/networks/{net}/nameservers", ACCESS_USER, nameservers_list},
        {"POST", "/networks/{net}/nameservers", ACCESS_ADMIN, nameservers_create},
        {"PUT", "/networks/{net}/nameservers/{domain}", ACCESS_ADMIN, nameservers_replace},
        {"DELETE", "/networks/{net}/nameservers/{domain}", ACCESS_ADMIN, nameservers_remove},
        {},
};
