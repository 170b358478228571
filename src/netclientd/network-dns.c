/* Mesh DNS of one joined network: zone, listeners, and the link's registration with resolved. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "dns-server.h"
#include "link.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "network-dns.h"
#include "resolved.h"

struct NetworkDns {
        Network *network;
        DnsZone *zone;
        char *zone_name; /* "<network>.<dns_domain>", or NULL */
        /* Whom names outside the zone are forwarded for: on an ingress gateway its external
         * clients (their allowed IPs), arriving on its link; nobody elsewhere. */
        DnsForwardScope scope;
        bool forwarding;   /* what the log last said */
        char *routes_text; /* the nameservers as the log last said them */
        char **domains;    /* the routing domains registered with resolved: the zone, the nameservers' */
        /* What the responder listens on for this network (family AF_UNSPEC: nothing). */
        struct {
                int family;
                NmInAddr addr;
        } listening[2];
        bool listen_failed;
        bool stopped; /* the network is going: nothing is answered or registered any more */
        int ifindex;  /* the link registered with resolved; 0 = none */
        char *exported_zone, *exported_state; /* what the bus last saw */
};

/* ---- the Manager's part --------------------------------------------------------------------- */

static Network *network_by_ifindex(Manager *m, int ifindex)
{
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, m->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Network *n = v;
                if (n->dns && n->dns->ifindex == ifindex)
                        return n;
        }
        return NULL;
}

static void emit_if_changed(Network *n);

static void on_resolved_state(Resolved *r, int ifindex, ResolvedLinkState state, void *userdata)
{
        Manager *m = userdata;
        Network *n = network_by_ifindex(m, ifindex);
        const char *error = NULL;

        if (!n)
                return;
        (void)resolved_link_state(r, ifindex, &error);
        if (state == RESOLVED_LINK_RESOLVED || state == RESOLVED_LINK_NETWORKD) {
                g_autofree char *domains = n->dns->domains ? g_strjoinv(", ", n->dns->domains) : NULL;
                log_info("Network %s: %s routes %s to this host's responder on %s.", n->name,
                         state == RESOLVED_LINK_RESOLVED ? "systemd-resolved" : "systemd-networkd",
                         domains ? domains : n->dns->zone_name, n->ifname);
        }
        emit_if_changed(n);
}

int manager_dns_start(Manager *m)
{
        int r;

        if (!m->event || !m->bus)
                return 0;
        r = dns_server_new(m->event, &m->dns_server);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the DNS responder: %m");
        /* Only ingress gateways' scopes allow anyone; the forwarder is there for them. */
        r = dns_server_enable_forwarding(m->dns_server, &DNS_FORWARDER_CONFIG_DEFAULT);
        if (r < 0)
                return log_error_errno(r, "Failed to set up DNS forwarding: %m");
        /* Not fatal: without the bus client the responder still answers on the mesh addresses. */
        r = resolved_new(m->bus, on_resolved_state, m, &m->resolved);
        if (r < 0)
                log_warning_errno(
                        r, "Failed to watch systemd-resolved; mesh names are not registered with it: %m");
        return 0;
}

void manager_dns_stop(Manager *m)
{
        m->resolved = resolved_free(m->resolved);
        m->dns_server = dns_server_free(m->dns_server);
}

/* ---- zone ------------------------------------------------------------------------------------ */

static bool add_address(DnsZone *z, const char *fqdn, const char *text)
{
        NmInAddr a;
        int family;
        g_autofree char *plain = NULL;

        if (!text)
                return false;
        /* The node's own addresses come with their prefix length ("10.99.0.1/24"). */
        const char *slash = strchr(text, '/');
        plain = slash ? g_strndup(text, (size_t)(slash - text)) : g_strdup(text);
        if (nm_addr_parse(plain, &family, &a) < 0)
                return false;
        return dns_zone_add_record(z, fqdn, family, &a) >= 0;
}

static void add_name(DnsZone *z, GHashTable *taken, const char *zone, const char *name, const char *ipv4,
                     const char *ipv6)
{
        if (!name || !nm_dns_domain_valid(name, NULL))
                return; /* a name DNS cannot carry (the server validates; this is defence in depth) */
        g_autofree char *fqdn = g_strconcat(name, ".", zone, NULL);
        bool v4 = add_address(z, fqdn, ipv4);
        bool v6 = add_address(z, fqdn, ipv6);
        if (v4 || v6)
                g_hash_table_add(taken, g_ascii_strdown(name, -1));
}

static void rebuild_zone(Network *n)
{
        NetworkDns *d = n->dns;
        const NmNetworkState *s = n->desired;
        g_autoptr(GHashTable) taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        dns_zone_clear(d->zone);
        g_clear_pointer(&d->zone_name, g_free);
        if (!s->dns_domain)
                return;
        g_autofree char *zone = g_strconcat(s->network, ".", s->dns_domain, NULL);
        d->zone_name = g_ascii_strdown(zone, -1);
        if (dns_zone_add_domain(d->zone, d->zone_name) < 0) {
                g_clear_pointer(&d->zone_name, g_free);
                return;
        }
        /* Automatic names first: a node's name wins over a custom name that a later node took. */
        add_name(d->zone, taken, d->zone_name, s->host_name, s->ipv4, s->ipv6);
        for (guint i = 0; s->peers && i < s->peers->len; i++) {
                const NmPeer *p = s->peers->pdata[i];
                add_name(d->zone, taken, d->zone_name, p->name, p->ipv4, p->ipv6);
        }
        for (guint i = 0; s->dns && i < s->dns->len; i++) {
                const NmDnsEntry *e = s->dns->pdata[i];
                g_autofree char *lower = e->name ? g_ascii_strdown(e->name, -1) : NULL;
                if (lower && g_hash_table_contains(taken, lower)) {
                        log_debug("Network %s: custom name %s is also a node's name; the node's wins.",
                                  n->name, lower);
                        continue;
                }
                add_name(d->zone, taken, d->zone_name, e->name, e->ipv4, e->ipv6);
        }
}

/* ---- listeners ------------------------------------------------------------------------------- */

static bool parse_own(const char *text, int *family, NmInAddr *addr)
{
        NmPrefix p;
        if (!text || nm_prefix_parse(text, &p, NULL) < 0)
                return false;
        *family = p.family;
        *addr = p.addr;
        return true;
}

static void stop_listening(Network *n)
{
        NetworkDns *d = n->dns;
        Manager *m = n->manager;

        for (size_t i = 0; i < ELEMENTSOF(d->listening); i++) {
                if (d->listening[i].family == AF_UNSPEC)
                        continue;
                if (m->dns_server)
                        (void)dns_server_unlisten(m->dns_server, d->listening[i].family,
                                                  &d->listening[i].addr);
                d->listening[i].family = AF_UNSPEC;
        }
}

/* Listens on the node's addresses (index 0 IPv4, 1 IPv6); moves when they change. */
static void sync_listeners(Network *n, bool want)
{
        NetworkDns *d = n->dns;
        Manager *m = n->manager;
        const char *own[2] = {n->desired->ipv4, n->desired->ipv6};
        bool failed = false;

        for (size_t i = 0; i < ELEMENTSOF(d->listening); i++) {
                int family = AF_UNSPEC;
                NmInAddr addr = {};
                if (want && !parse_own(own[i], &family, &addr))
                        family = AF_UNSPEC;
                if (d->listening[i].family == family &&
                    (family == AF_UNSPEC ||
                     memcmp(&d->listening[i].addr, &addr, nm_family_bits(family) / 8) == 0))
                        continue;
                if (d->listening[i].family != AF_UNSPEC) {
                        (void)dns_server_unlisten(m->dns_server, d->listening[i].family,
                                                  &d->listening[i].addr);
                        d->listening[i].family = AF_UNSPEC;
                }
                if (family == AF_UNSPEC)
                        continue;
                g_autofree char *text = nm_addr_to_string(family, &addr);
                int r = dns_server_listen(m->dns_server, family, &addr, m->config->dns_port, d->zone,
                                          &d->scope);
                if (r < 0 && r != -EEXIST) {
                        if (!d->listen_failed)
                                log_warning_errno(r, "Network %s: cannot answer DNS on %s port %u: %m",
                                                  n->name, text, m->config->dns_port);
                        failed = true;
                        continue;
                }
                log_debug("Network %s: answering DNS for %s on %s port %u.", n->name, strna(d->zone_name),
                          text, m->config->dns_port);
                d->listening[i].family = family;
                d->listening[i].addr = addr;
        }
        d->listen_failed = failed;
}

/* ---- forwarding ------------------------------------------------------------------------------ */

static void add_prefix(GArray *a, const char *text)
{
        NmPrefix p;
        if (!text || nm_prefix_parse(text, &p, NULL) < 0)
                return;
        nm_prefix_canonicalize(&p);
        g_array_append_val(a, p);
}

/* An ingress gateway forwards for its external clients: their external peers' allowed IPs (their
 * addresses and the ranges behind them), over UDP only as they arrive on the network's link. Other
 * nodes forward for nobody: their peers resolve through their own hosts. */
static void sync_scope(Network *n, bool want)
{
        NetworkDns *d = n->dns;
        const NmNetworkState *s = n->desired;

        g_array_set_size(d->scope.clients, 0);
        d->scope.ifindex = 0;
        if (want && s->roles.ingress) {
                for (guint i = 0; s->peers && i < s->peers->len; i++) {
                        const NmPeer *p = s->peers->pdata[i];
                        for (char **a = p->external ? p->allowed_ips : NULL; a && *a; a++)
                                add_prefix(d->scope.clients, *a);
                }
                int ifindex = link_get_ifindex(n->ifname);
                d->scope.ifindex = ifindex > 0 ? ifindex : 0;
        }
        bool forwarding = d->scope.clients->len > 0;
        if (forwarding != d->forwarding)
                log_info("Network %s: %s names outside %s for %u external client range(s).", n->name,
                         forwarding ? "forwarding" : "no longer forwarding", strna(d->zone_name),
                         d->scope.clients->len);
        d->forwarding = forwarding;

        /* No responder asks a mesh address upstream: not its own, nor a peer's that could ask back. */
        DnsForwarder *f = n->manager->dns_server ? dns_server_get_forwarder(n->manager->dns_server) : NULL;
        if (!f)
                return;
        g_autoptr(GArray) excluded = g_array_new(false, true, sizeof(NmPrefix));
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, n->manager->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                const NmNetworkState *o = ((Network *)v)->desired;
                if (o) {
                        add_prefix(excluded, o->ipv4);
                        add_prefix(excluded, o->ipv6);
                }
        }
        dns_forwarder_set_excluded(f, excluded);
}

/* The network's nameservers (split DNS): names under their domains go to their servers, for this
 * host and for the scope's clients. A server that is one of this host's mesh addresses would be our
 * own responder asking itself: it is left out. */
static void sync_routes(Network *n, bool want)
{
        NetworkDns *d = n->dns;
        const NmNetworkState *s = n->desired;
        g_autoptr(GPtrArray) own = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) text = g_string_new(NULL);
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, n->manager->networks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                const NmNetworkState *o = ((Network *)v)->desired;
                const char *addrs[] = {o ? o->ipv4 : NULL, o ? o->ipv6 : NULL};
                for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
                        NmPrefix p;
                        if (addrs[i] && nm_prefix_parse(addrs[i], &p, NULL) == 0)
                                g_ptr_array_add(own, nm_addr_to_string(p.family, &p.addr));
                }
        }
        g_ptr_array_set_size(d->scope.routes, 0);
        g_clear_pointer(&d->domains, g_strfreev);
        g_autoptr(GStrvBuilder) domains = g_strv_builder_new();
        if (d->zone_name)
                g_strv_builder_add(domains, d->zone_name);
        for (guint i = 0; want && s->nameservers && i < s->nameservers->len; i++) {
                const NmNameserver *ns = s->nameservers->pdata[i];
                g_autoptr(DnsRoute) r = dns_route_new(ns->domain);
                g_string_append_printf(text, "%s%s ->", text->len ? "; " : "", r->domain);
                for (char **a = ns->servers; a && *a; a++) {
                        struct sockaddr_storage ss = {};
                        NmInAddr addr;
                        int family;
                        if (nm_addr_parse(*a, &family, &addr) < 0)
                                continue;
                        g_autofree char *canon = nm_addr_to_string(family, &addr);
                        if (g_ptr_array_find_with_equal_func(own, canon, g_str_equal, NULL)) {
                                g_string_append_printf(text, " (not %s: this host)", canon);
                                continue;
                        }
                        if (family == AF_INET) {
                                struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
                                sin->sin_family = AF_INET;
                                sin->sin_port = htons(53);
                                sin->sin_addr = addr.in;
                        } else {
                                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
                                sin6->sin6_family = AF_INET6;
                                sin6->sin6_port = htons(53);
                                sin6->sin6_addr = addr.in6;
                        }
                        g_array_append_val(r->servers, ss);
                        g_string_append_printf(text, " %s", canon);
                }
                /* A domain inside the zone would be answered by the zone anyway (the server refuses
                 * those); it is no routing domain of its own either. */
                if (!d->zone_name || !dns_zone_covers(d->zone, r->domain))
                        g_strv_builder_add(domains, r->domain);
                g_ptr_array_add(d->scope.routes, TAKE_PTR(r));
        }
        d->domains = g_strv_builder_end(domains);
        if (!streq0(d->routes_text ? d->routes_text : "", text->str)) {
                if (text->len > 0)
                        log_info("Network %s: nameservers %s.", n->name, text->str);
                else if (d->routes_text)
                        log_info("Network %s: no nameservers any more.", n->name);
                g_free(d->routes_text);
                d->routes_text = text->len > 0 ? g_strdup(text->str) : NULL;
        }
}

/* ---- registration with resolved --------------------------------------------------------------- */

static void unregister(Network *n, bool revert)
{
        NetworkDns *d = n->dns;
        Manager *m = n->manager;

        if (d->ifindex <= 0)
                return;
        if (m->resolved) {
                if (revert) {
                        (void)resolved_revert_link(m->resolved, d->ifindex);
                        log_debug("Network %s: reverted the DNS settings of %s.", n->name, n->ifname);
                } else
                        resolved_forget_link(m->resolved, d->ifindex);
        }
        d->ifindex = 0;
}

static void sync_registration(Network *n, bool want)
{
        NetworkDns *d = n->dns;
        Manager *m = n->manager;
        ResolvedServer servers[2];
        size_t k = 0;

        for (size_t i = 0; i < ELEMENTSOF(d->listening); i++)
                if (d->listening[i].family != AF_UNSPEC)
                        servers[k++] = (ResolvedServer){d->listening[i].family, d->listening[i].addr};
        int ifindex = want && k > 0 && d->zone_name ? link_get_ifindex(n->ifname) : -ENODEV;
        if (ifindex != d->ifindex && d->ifindex > 0)
                /* A new link (or none): the old index is gone with its link, or must be undone. */
                unregister(n, ifindex <= 0);
        if (ifindex <= 0 || !m->resolved)
                return;
        d->ifindex = ifindex;
        int r = resolved_set_link(m->resolved, ifindex, servers, k, m->config->dns_port,
                                  (const char *const *)d->domains);
        if (r < 0)
                log_warning_errno(r, "Network %s: cannot register %s with systemd-resolved: %m", n->name,
                                  d->zone_name);
}

/* ---- the bus --------------------------------------------------------------------------------- */

static void emit_if_changed(Network *n)
{
        NetworkDns *d = n->dns;
        const char *zone = network_dns_zone_name(n), *state = network_dns_state(n);
        const char *props[3];
        size_t k = 0;

        if (!streq0(d->exported_zone, zone)) {
                g_free(d->exported_zone);
                d->exported_zone = g_strdup(zone);
                props[k++] = "DNSZone";
        }
        if (!streq0(d->exported_state, state)) {
                log_debug("Network %s: DNS %s -> %s.", n->name, strna(d->exported_state), state);
                g_free(d->exported_state);
                d->exported_state = g_strdup(state);
                props[k++] = "DNSState";
        }
        props[k] = NULL;
        if (k > 0 && n->manager->bus && n->exported)
                (void)sd_bus_emit_properties_changed_strv(n->manager->bus, n->path,
                                                          NETCLIENT_NETWORK_INTERFACE, (char **)props);
}

/* ---- per network ------------------------------------------------------------------------------ */

NetworkDns *network_dns_free(NetworkDns *d)
{
        if (!d)
                return NULL;
        /* The daemon stops (or the object goes): sockets close, the registration stays with the
         * link, which outlives us; the next netclientd registers it again. */
        stop_listening(d->network);
        unregister(d->network, false);
        g_array_unref(d->scope.clients);
        g_ptr_array_unref(d->scope.routes);
        g_strfreev(d->domains);
        g_free(d->routes_text);
        dns_zone_free(d->zone);
        g_free(d->zone_name);
        g_free(d->exported_zone);
        g_free(d->exported_state);
        g_free(d);
        return NULL;
}

void network_dns_update(Network *n)
{
        Manager *m = n->manager;

        if (!n->dns) {
                n->dns = g_new0(NetworkDns, 1);
                n->dns->network = n;
                n->dns->zone = dns_zone_new();
                n->dns->scope.clients = g_array_new(false, true, sizeof(NmPrefix));
                n->dns->scope.routes = g_ptr_array_new_with_free_func((GDestroyNotify)dns_route_free);
        }
        n->dns->stopped = false;
        rebuild_zone(n);
        bool want = m->dns_server && network_is_connected(n) && n->dns->zone_name;
        sync_scope(n, want);
        sync_routes(n, want);
        sync_listeners(n, want);
        sync_registration(n, want && !n->dns->listen_failed);
        emit_if_changed(n);
}

void network_dns_stop(Network *n)
{
        if (!n->dns)
                return;
        stop_listening(n);
        unregister(n, true);
        g_array_set_size(n->dns->scope.clients, 0);
        g_ptr_array_set_size(n->dns->scope.routes, 0);
        n->dns->forwarding = false;
        n->dns->stopped = true;
        emit_if_changed(n);
}

const char *network_dns_zone_name(Network *n)
{
        return n->dns && n->dns->zone_name ? n->dns->zone_name : "";
}

const char *network_dns_state(Network *n)
{
        NetworkDns *d = n->dns;
        Manager *m = n->manager;

        if (!d || d->stopped || !d->zone_name || !m->dns_server || !network_is_connected(n))
                return "off";
        if (d->listen_failed)
                return "failed";
        if (!m->resolved || d->ifindex <= 0)
                return "pending";
        return resolved_link_state_to_string(resolved_link_state(m->resolved, d->ifindex, NULL));
}

const DnsZone *network_dns_zone(Network *n)
{
        return n->dns ? n->dns->zone : NULL;
}
