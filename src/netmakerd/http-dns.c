/* REST resource /networks/{net}/dns: list a network's DNS names (automatic and custom), add and
 * delete custom names (every change reaches the network's hosts as "network-changed"), and export
 * them in hosts(5) format for resolvers outside the mesh. */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "dns-names.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "nm-error.h"

static void json_add_dns_name(JsonBuilder *b, const DnsName *d, const Network *n)
{
        g_autofree char *fqdn = g_strdup_printf("%s.%s.%s", d->name, n->name, n->dns_domain);

        json_builder_begin_object(b);
        nm_json_add_string(b, "name", d->name);
        nm_json_add_string(b, "fqdn", fqdn);
        nm_json_add_string(b, "ipv4", d->ipv4);
        nm_json_add_string(b, "ipv6", d->ipv6);
        nm_json_add_bool(b, "automatic", d->automatic);
        json_builder_end_object(b);
}

static int dns_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) names = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        k = dns_names_list(m->store, n->name, &names, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < names->len; i++)
                json_add_dns_name(b, names->pdata[i], n);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

/* Whether a stored name may go into a hosts(5) line as it is: DNS labels only, so that nothing in
 * the database can add a field or a line to the export. */
static bool hosts_name_ok(const char *name)
{
        for (const char *p = name; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
                        return false;
        return *name != 0;
}

/* GET /networks/{net}/dns/hosts: every name of the network with each of its addresses, one
 * "ADDRESS FQDN" line per address, for dnsmasq's addn-hosts, CoreDNS's hosts plugin or /etc/hosts
 * on machines outside the mesh. */
static int dns_hosts(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) names = NULL;
        g_autoptr(GString) s = g_string_new(NULL);
        int k;

        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        k = dns_names_list(m->store, n->name, &names, error);
        if (k < 0)
                return k;
        g_string_append_printf(s, "# DNS names of the netmaker network %s (zone %s.%s): ADDRESS NAME\n",
                               n->name, n->name, n->dns_domain);
        for (guint i = 0; i < names->len; i++) {
                const DnsName *d = names->pdata[i];
                g_autofree char *fqdn = g_strdup_printf("%s.%s.%s", d->name, n->name, n->dns_domain);
                if (!hosts_name_ok(fqdn)) {
                        log_warning("DNS export of network \"%s\": skipped a name that is no DNS name.",
                                    n->name);
                        continue;
                }
                if (d->ipv4)
                        g_string_append_printf(s, "%s %s\n", d->ipv4, fqdn);
                if (d->ipv6)
                        g_string_append_printf(s, "%s %s\n", d->ipv6, fqdn);
        }
        request_reply_data(r, MHD_HTTP_OK, "text/plain; charset=utf-8", NULL, s->str, s->len);
        return 0;
}

/* Tells every host of the network (and only those) its new list of names. */
static int fanout(Manager *m, const char *network, Outbox *out, GError **error)
{
        g_autoptr(PeerView) v = NULL;
        int k = peers_load_view(m->store, network, &v, error);
        if (k < 0)
                return k;
        peers_fanout_network_changed(v, out);
        return 0;
}

static int dns_add(Request *r, GError **error)
{
        static const char *const members[] = {"name", "ipv4", "ipv6", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "DNS name", members, error);
        g_autoptr(Network) n = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_autofree char *name = NULL, *ipv4 = NULL, *ipv6 = NULL;
        const char *name_in = NULL, *v4 = NULL, *v6 = NULL;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "name", true, &name_in, error) ||
            !nm_json_get_string(o, "ipv4", false, &v4, error) ||
            !nm_json_get_string(o, "ipv6", false, &v6, error))
                return -EINVAL;
        k = store_txn_begin(m->store, &t, error);
        if (k < 0)
                return k;
        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        if (!dns_name_valid(name_in, n->name, n->dns_domain, &name, error) ||
            (v4 && !dns_name_address_valid("ipv4", v4, AF_INET, &ipv4, error)) ||
            (v6 && !dns_name_address_valid("ipv6", v6, AF_INET6, &ipv6, error)))
                return -EINVAL;
        if (!ipv4 && !ipv6) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "DNS name \"%s\" needs an address: give ipv4, ipv6 or both", name);
                return -EINVAL;
        }
        g_autoptr(NmDnsEntry) e = nm_dns_entry_new(name, ipv4, ipv6);
        k = dns_names_add(m->store, n->name, e, error);
        if (k < 0)
                return k;
        k = fanout(m, n->name, out, error);
        if (k < 0)
                return k;
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Added DNS name %s.%s.%s (%s%s%s); told %u host(s).", name, n->name, n->dns_domain,
                 strempty(ipv4), ipv4 && ipv6 ? ", " : "", strempty(ipv6), out->msgs->len);

        DnsName d = {.name = name, .ipv4 = ipv4, .ipv6 = ipv6, .automatic = false};
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_dns_name(b, &d, n);
        request_reply_builder(r, MHD_HTTP_CREATED, b);
        return 0;
}

static int dns_delete_name(Request *r, const char *name, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k < 0)
                return k;
        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k < 0)
                return k;
        k = dns_names_delete(m->store, n->name, name, error);
        if (k < 0)
                return k;
        k = fanout(m, n->name, out, error);
        if (k < 0)
                return k;
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Deleted DNS name \"%s\" of network \"%s\"; told %u host(s).", name, n->name,
                 out->msgs->len);
        request_reply_empty(r);
        return 0;
}

static int dns_delete(Request *r, GError **error)
{
        return dns_delete_name(r, request_param(r, "name"), error);
}

/* The path of the export is also the path of a custom name "hosts": the export's literal pattern
 * wins the routing, so deleting that name needs a route of its own. */
static int dns_delete_hosts(Request *r, GError **error)
{
        return dns_delete_name(r, "hosts", error);
}

const Route http_dns_routes[] = {
        {"GET", "/networks/{net}/dns", ACCESS_USER, dns_list},
        {"POST", "/networks/{net}/dns", ACCESS_ADMIN, dns_add},
        {"DELETE", "/networks/{net}/dns/{name}", ACCESS_ADMIN, dns_delete},
        {"GET", "/networks/{net}/dns/hosts", ACCESS_USER, dns_hosts},
        {"DELETE", "/networks/{net}/dns/hosts", ACCESS_ADMIN, dns_delete_hosts},
        {},
};
