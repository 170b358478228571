/* What a node's roles (docs/protocol.md §4) mean on this host: routes through the network's link
 * for peers' allowed IPs outside the network's own ranges, the default route of an internet
 * gateway this host opted into (a table of its own, policy rules, a fwmark on the WireGuard
 * device), and the host's forwarding (sysctls and our nftables table) for the networks where it
 * forwards for others. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/rtnetlink.h>

#include "bus-errors.h"
#include "firewall.h"
#include "json-util.h"
#include "link.h"
#include "log.h"
#include "macro.h"
#include "network.h"
#include "nm-error.h"
#include "peer.h"
#include "routing.h"

/* ---- names and the bus ---------------------------------------------------------------------------- */

char **network_role_names(Network *n)
{
        const NmRoles *r = &n->desired->roles;
        GPtrArray *a = g_ptr_array_new();

        if (r->egress_ranges && r->egress_ranges[0])
                g_ptr_array_add(a, g_strdup("egress"));
        if (r->internet_gateway)
                g_ptr_array_add(a, g_strdup("internet-gateway"));
        if (r->ingress)
                g_ptr_array_add(a, g_strdup("ingress"));
        if (r->relay)
                g_ptr_array_add(a, g_strdup("relay"));
        if (r->relayed_by)
                g_ptr_array_add(a, g_strdup("relayed"));
        if (r->failover)
                g_ptr_array_add(a, g_strdup("failover"));
        if (r->internet_gateway_via)
                g_ptr_array_add(a, g_strdup("uses-internet-gateway"));
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(a, false);
}

static gboolean strv_equal0(char **a, char **b)
{
        if (!a || !b)
                return (!a || !*a) && (!b || !*b);
        return g_strv_equal((const char *const *)a, (const char *const *)b);
}

bool network_roles_changed(Network *n, const NmRoles *old)
{
        const NmRoles *r = &n->desired->roles;
        g_autoptr(GPtrArray) changed = g_ptr_array_new();
        g_auto(GStrv) names = network_role_names(n);

        if (nm_roles_equal(old, r))
                return false;
        /* "Roles" follows from the others; compare the names it shows. */
        {
                NmNetworkState tmp = {.roles = *old};
                Network o = {.desired = &tmp};
                g_auto(GStrv) old_names = network_role_names(&o);
                if (!strv_equal0(old_names, names))
                        g_ptr_array_add(changed, "Roles");
        }
        if (!strv_equal0(old->egress_ranges, r->egress_ranges))
                g_ptr_array_add(changed, "EgressRanges");
        if (old->egress_nat != r->egress_nat)
                g_ptr_array_add(changed, "EgressNAT");
        if (!streq0(old->relayed_by, r->relayed_by))
                g_ptr_array_add(changed, "RelayedBy");
        if (!streq0(old->internet_gateway_via, r->internet_gateway_via))
                g_ptr_array_add(changed, "InternetGatewayVia");
        {
                g_autofree char *s = g_strjoinv(", ", names);
                log_info("Network %s: roles now %s.", n->name, *s ? s : "none");
        }
        if (changed->len > 0 && n->manager->bus && n->exported) {
                g_ptr_array_add(changed, NULL);
                (void)sd_bus_emit_properties_changed_strv(
                        n->manager->bus, n->path, NETCLIENT_NETWORK_INTERFACE, (char **)changed->pdata);
        }
        return true;
}

/* ---- routes --------------------------------------------------------------------------------------- */

uint32_t network_gateway_table(Network *n)
{
        if (!n->desired->roles.internet_gateway_via || !network_is_connected(n) ||
            n->desired->listen_port == 0)
                return 0;
        return ROUTING_TABLE_BASE | n->desired->listen_port;
}

/* The network's own ranges (from the node's addresses), canonical. */
static GArray *mesh_ranges(Network *n)
{
        const char *own[] = {n->desired->ipv4, n->desired->ipv6};
        GArray *a = g_array_new(false, true, sizeof(NmPrefix));

        for (size_t i = 0; i < G_N_ELEMENTS(own); i++) {
                NmPrefix p;
                if (!own[i] || nm_prefix_parse(own[i], &p, NULL) < 0)
                        continue;
                nm_prefix_canonicalize(&p);
                g_array_append_val(a, p);
        }
        return a;
}

static bool covered_by(const GArray *ranges, const NmPrefix *dst)
{
        for (guint i = 0; i < ranges->len; i++) {
                const NmPrefix *p = &g_array_index(ranges, NmPrefix, i);
                if (p->family == dst->family && p->prefixlen <= dst->prefixlen &&
                    nm_prefix_contains(p, dst->family, &dst->addr))
                        return true;
        }
        return false;
}

/* n->routes holds "<table> <prefix>" for every route we keep through the link. */
static char *route_key(uint32_t table, const NmPrefix *p)
{
        g_autofree char *s = nm_prefix_to_string(p);
        return g_strdup_printf("%u %s", table, s);
}

static bool route_key_parse(const char *key, uint32_t *table, NmPrefix *p)
{
        const char *sp = strchr(key, ' ');
        guint64 t;

        if (!sp)
                return false;
        g_autofree char *ts = g_strndup(key, (gsize)(sp - key));
        if (!g_ascii_string_to_unsigned(ts, 10, 1, UINT32_MAX, &t, NULL))
                return false;
        *table = (uint32_t)t;
        return nm_prefix_parse(sp + 1, p, NULL) == 0;
}

static const char *table_name(uint32_t table, char buf[static 16])
{
        if (table == RT_TABLE_MAIN)
                return "main";
        g_snprintf(buf, 16, "0x%x", table);
        return buf;
}

/* After a start or when the link was made again: take the routes the link already has (that we
 * made: protocol static, in main or one of our tables) as ours, so those no longer wanted go. */
static void adopt_link_routes(Network *n, int ifindex)
{
        g_autoptr(GArray) routes = NULL;
        int r;

        g_hash_table_remove_all(n->routes);
        r = routing_list_link_routes(n->manager->rtnl, ifindex, &routes);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the routes through %s: %m", n->ifname);
                return;
        }
        for (guint i = 0; i < routes->len; i++) {
                const RoutingRoute *rt = &g_array_index(routes, RoutingRoute, i);
                if (rt->table == RT_TABLE_MAIN || routing_table_is_ours(rt->table))
                        g_hash_table_add(n->routes, route_key(rt->table, &rt->destination));
        }
}

void network_sync_routes(Network *n)
{
        Manager *m = n->manager;
        g_autoptr(GHashTable) want = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GArray) own = mesh_ranges(n);
        uint32_t gw_table = network_gateway_table(n);
        GHashTableIter it;
        gpointer k;
        int ifindex;

        if (!m->rtnl)
                return;
        ifindex = link_get_ifindex(n->ifname);
        if (ifindex < 0) {
                /* No link: the kernel took its routes with it. */
                g_hash_table_remove_all(n->routes);
                n->routes_ifindex = 0;
                n->gateway_families = 0;
                return;
        }
        if (ifindex != n->routes_ifindex) {
                adopt_link_routes(n, ifindex);
                n->routes_ifindex = ifindex;
        }

        if (network_is_connected(n))
                for (guint i = 0; i < n->desired->peers->len; i++) {
                        const NmPeer *p = n->desired->peers->pdata[i];
                        for (char **a = p->allowed_ips; a && *a; a++) {
                                NmPrefix pf;
                                if (nm_prefix_parse(*a, &pf, NULL) < 0)
                                        continue;
                                nm_prefix_canonicalize(&pf);
                                if (covered_by(own, &pf))
                                        continue;
                                if (pf.prefixlen == 0) {
                                        /* Only the gateway we opted into, and never in the main
                                         * table, where it would take the host's own default. */
                                        if (gw_table)
                                                g_hash_table_add(want, route_key(gw_table, &pf));
                                        continue;
                                }
                                g_hash_table_add(want, route_key(RT_TABLE_MAIN, &pf));
                        }
                }

        g_hash_table_iter_init(&it, want);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                uint32_t table;
                NmPrefix pf;
                char tb[16];
                int r;
                if (g_hash_table_contains(n->routes, k) || !route_key_parse(k, &table, &pf))
                        continue;
                r = link_route_add(m->rtnl, n->ifname, &pf, table, 0);
                if (r < 0) {
                        g_autofree char *s = nm_prefix_to_string(&pf);
                        log_warning_errno(r, "Failed to add route %s via %s (table %s): %m", s, n->ifname,
                                          table_name(table, tb));
                } else
                        g_hash_table_add(n->routes, g_strdup(k));
        }
        n->gateway_families = 0;
        g_hash_table_iter_init(&it, n->routes);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                uint32_t table;
                NmPrefix pf;
                if (!route_key_parse(k, &table, &pf)) {
                        g_hash_table_iter_remove(&it);
                        continue;
                }
                if (g_hash_table_contains(want, k)) {
                        if (table == gw_table && pf.prefixlen == 0)
                                n->gateway_families |= pf.family == AF_INET ? 1u : 2u;
                        continue;
                }
                (void)link_route_remove(m->rtnl, n->ifname, &pf, table, 0);
                g_hash_table_iter_remove(&it);
        }
}

/* ---- the host: policy rules, forwarding, firewall ------------------------------------------------- */

static void sync_rules(Manager *m, GPtrArray *nets)
{
        g_autoptr(GArray) want = g_array_new(false, true, sizeof(RoutingRule));
        g_autoptr(GArray) keep = g_array_new(false, true, sizeof(uint32_t));
        g_autoptr(GArray) have = NULL;
        unsigned families = 0, users = 0;
        int r;

        for (guint i = 0; i < nets->len; i++) {
                Network *n = nets->pdata[i];
                uint32_t table = network_gateway_table(n);
                if (table && n->routes_ifindex == 0) {
                        /* Not applied yet (we are starting): whatever it had stays until it is, so
                         * a restart does not interrupt the host's internet traffic. */
                        g_array_append_val(keep, table);
                        continue;
                }
                if (!table || !n->gateway_families)
                        continue;
                users++;
                for (int f = 0; f < 2; f++)
                        if (n->gateway_families & (1u << f)) {
                                RoutingRule rule;
                                routing_rule_not_fwmark(&rule, f == 0 ? AF_INET : AF_INET6, table);
                                g_array_append_val(want, rule);
                        }
                families |= n->gateway_families;
        }
        if (users > 1)
                log_warning("%u networks route this host's internet traffic through a gateway; only the "
                            "first one set up is used.",
                            users);
        for (int f = 0; f < 2; f++)
                if (families & (1u << f)) {
                        RoutingRule rule;
                        routing_rule_main_suppress(&rule, f == 0 ? AF_INET : AF_INET6);
                        g_array_append_val(want, rule);
                }
        /* The tunnel's replies must pass the reverse path filter, which otherwise ignores marks. */
        if (families & 1u) {
                r = sysctl_write("net/ipv4/conf/all/src_valid_mark", "1");
                if (r < 0)
                        log_warning_errno(r, "Failed to set net.ipv4.conf.all.src_valid_mark: %m");
        }

        r = routing_list_rules(m->rtnl, &have);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the routing rules: %m");
                m->forwarding_failed = true;
                return;
        }
        for (guint i = 0; i < have->len; i++) {
                const RoutingRule *h = &g_array_index(have, RoutingRule, i);
                bool wanted = false;
                if (!routing_rule_is_ours(h))
                        continue;
                for (guint j = 0; j < want->len && !wanted; j++)
                        wanted = routing_rule_equal(h, &g_array_index(want, RoutingRule, j));
                for (guint j = 0; j < keep->len && !wanted; j++)
                        wanted = h->table == g_array_index(keep, uint32_t, j) || h->table == RT_TABLE_MAIN;
                if (wanted)
                        continue;
                g_autofree char *s = routing_rule_to_string(h);
                r = routing_rule_remove(m->rtnl, h);
                if (r < 0 && r != -ENOENT) {
                        log_warning_errno(r, "Failed to remove the routing rule %s: %m", s);
                        m->forwarding_failed = true;
                } else
                        log_info("Removed the routing rule %s.", s);
        }
        for (guint j = 0; j < want->len; j++) {
                const RoutingRule *w = &g_array_index(want, RoutingRule, j);
                bool present = false;
                for (guint i = 0; i < have->len && !present; i++)
                        present = routing_rule_equal(w, &g_array_index(have, RoutingRule, i));
                if (present)
                        continue;
                g_autofree char *s = routing_rule_to_string(w);
                r = routing_rule_add(m->rtnl, w);
                if (r < 0) {
                        log_warning_errno(r, "Failed to add the routing rule %s: %m", s);
                        m->forwarding_failed = true;
                } else
                        log_info("Added the routing rule %s.", s);
        }
}

static void firewall_network_clear(FirewallNetwork *f)
{
        g_clear_pointer(&f->mesh_ranges, g_array_unref);
        g_clear_pointer(&f->egress_ranges, g_array_unref);
        g_clear_pointer(&f->no_internet, g_array_unref);
}

static void firewall_network_from(Network *n, FirewallNetwork *ret)
{
        const NmRoles *r = &n->desired->roles;

        *ret = (FirewallNetwork){
                .ifname = n->ifname,
                .mesh_ranges = mesh_ranges(n),
                .egress_ranges = g_array_new(false, true, sizeof(NmPrefix)),
                .egress_nat = r->egress_nat,
                .internet_gateway = r->internet_gateway,
                .hairpin = r->relay || r->ingress || r->failover,
                .no_internet = g_array_new(false, true, sizeof(NmPrefix)),
        };
        /* An ingress gateway that is also the internet gateway forwards only its full-tunnel
         * external clients out (`internet` on their entries). */
        for (guint i = 0; r->internet_gateway && n->desired->peers && i < n->desired->peers->len; i++) {
                const NmPeer *p = n->desired->peers->pdata[i];
                for (char **a = p->external && !p->internet ? p->allowed_ips : NULL; a && *a; a++) {
                        NmPrefix pf;
                        if (nm_prefix_parse(*a, &pf, NULL) < 0)
                                continue;
                        nm_prefix_canonicalize(&pf);
                        g_array_append_val(ret->no_internet, pf);
                }
        }
        for (char **e = r->egress_ranges; e && *e; e++) {
                NmPrefix p;
                if (nm_prefix_parse(*e, &p, NULL) < 0)
                        continue;
                nm_prefix_canonicalize(&p);
                g_array_append_val(ret->egress_ranges, p);
        }
}

static void sync_firewall(Manager *m, GPtrArray *nets)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GArray) fw = g_array_new(false, true, sizeof(FirewallNetwork));
        unsigned families = 0;
        int r;

        for (guint i = 0; i < nets->len; i++) {
                FirewallNetwork f;
                firewall_network_from(nets->pdata[i], &f);
                if (!firewall_network_forwards(&f)) {
                        firewall_network_clear(&f);
                        continue;
                }
                for (guint j = 0; j < f.mesh_ranges->len; j++)
                        families |= g_array_index(f.mesh_ranges, NmPrefix, j).family == AF_INET ? 1u : 2u;
                for (guint j = 0; j < f.egress_ranges->len; j++)
                        families |= g_array_index(f.egress_ranges, NmPrefix, j).family == AF_INET ? 1u : 2u;
                g_array_append_val(fw, f);
        }

        for (int f = 0; f < 2; f++) {
                if (!(families & (1u << f)))
                        continue;
                r = firewall_enable_forwarding(f == 0 ? AF_INET : AF_INET6);
                if (r > 0)
                        log_info("Turned on %s forwarding.", f == 0 ? "IPv4" : "IPv6");
                else if (r < 0 && !(r == -EAFNOSUPPORT && f == 1)) {
                        log_error_errno(r, "Failed to turn on %s forwarding: %m", f == 0 ? "IPv4" : "IPv6");
                        m->forwarding_failed = true;
                }
        }

        r = firewall_apply(m->firewall, (FirewallNetwork *)(void *)fw->data, fw->len, &e);
        if (r < 0) {
                log_error("Failed to set up forwarding rules: %s", e ? e->message : g_strerror(-r));
                m->forwarding_failed = true;
        } else if (r > 0 && fw->len > 0)
                log_info("Forwarding rules (nftables table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME
                         ") set for %u network(s).",
                         fw->len);
        else if (r > 0)
                log_info("Removed the forwarding rules (nftables table " FIREWALL_TABLE_FAMILY
                         " " FIREWALL_TABLE_NAME "): nothing to forward.");
        for (guint i = 0; i < fw->len; i++)
                firewall_network_clear(&g_array_index(fw, FirewallNetwork, i));
}

static int cmp_network(gconstpointer a, gconstpointer b)
{
        const Network *x = *(Network *const *)a, *y = *(Network *const *)b;
        return (int)x->desired->listen_port - (int)y->desired->listen_port;
}

void manager_sync_forwarding(Manager *m)
{
        g_autoptr(GPtrArray) nets = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        if (!m->rtnl || !m->firewall)
                return;
        m->forwarding_failed = false;
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(nets, v);
        /* A stable order: the same roles always give the same table. */
        g_ptr_array_sort(nets, cmp_network);
        sync_firewall(m, nets);
        sync_rules(m, nets);
}

/* ---- choosing an internet gateway ----------------------------------------------------------------- */

typedef struct GatewayJob {
        Manager *manager;
        sd_bus_message *call;
        char *network;
} GatewayJob;

static void gateway_job_free(GatewayJob *j)
{
        sd_bus_message_unref(j->call);
        g_free(j->network);
        g_free(j);
}

static void on_gateway_set(ApiClient *c, const ApiResult *res, void *userdata)
{
        GatewayJob *j = userdata;
        Manager *m = j->manager;

        if (res->error) {
                _cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
                bus_error_set_gerror(&be, res->error);
                (void)sd_bus_reply_method_error(j->call, &be);
        } else {
                log_info("The server changed the internet gateway of network %s.", j->network);
                /* The server sends the new roles and peers; the reply waits for them, so a caller sees
                 * the result as soon as the call returns. */
                if (manager_pull(m, j->call) < 0)
                        (void)sd_bus_reply_method_return(j->call, NULL);
        }
        gateway_job_free(j);
}

int manager_set_internet_gateway(Manager *m, sd_bus_message *call, const char *network, const char *gateway,
                                 sd_bus_error *error)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *escaped = NULL, *url = NULL, *body = NULL;
        GatewayJob *j;
        int r;

        if (*gateway && !nm_uuid_valid(gateway)) {
                g_autofree char *v = g_utf8_make_valid(gateway, MIN(strlen(gateway), 64));
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "Invalid gateway \"%s\": expected the node id (a UUID) of the "
                                         "gateway's node in the network, or \"\" for none",
                                         v);
        }
        if (!m->server)
                return sd_bus_error_set(error, BUS_ERROR_NOT_REGISTERED,
                                        "This host has not joined any network (netclient join -t TOKEN)");
        if (!manager_get_network(m, network))
                return bus_error_setf_code(error, NM_ERROR_NOT_FOUND, "Network \"%s\" is not joined",
                                           network);
        if (!m->api)
                return sd_bus_error_set(error, BUS_ERROR_FAILED, "No connection to the server");

        json_builder_begin_object(b);
        nm_json_add_string(b, "gateway", *gateway ? gateway : NULL);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        escaped = g_uri_escape_string(network, NULL, false);
        url = g_strdup_printf("%s/api/v1/host/networks/%s/use-internet-gateway", m->server->api, escaped);

        j = g_new0(GatewayJob, 1);
        j->manager = m;
        j->call = sd_bus_message_ref(call);
        j->network = g_strdup(network);
        r = api_client_request(m->api, "PUT", url, m->server->credential, body, on_gateway_set, j, NULL);
        if (r < 0) {
                gateway_job_free(j);
                return bus_error_setf_code(error, NM_ERROR_INTERNAL, "Failed to contact the server: %s",
                                           g_strerror(-r));
        }
        return 1;
}
