/* A network's nameservers: match domain -> servers (table nameservers, migration 7). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "macro.h"
#include "nameservers.h"
#include "names.h"
#include "nm-error.h"

static char *shown(const char *s)
{
        return g_utf8_make_valid(s, MIN(strlen(s), 80));
}

bool nameserver_domain_valid(const char *domain, const char *network, const char *dns_domain, char **ret,
                             GError **error)
{
        g_autofree char *lower = domain ? g_ascii_strdown(domain, -1) : NULL;
        size_t n = lower ? strlen(lower) : 0;

        /* "corp.example." is the same domain written as an absolute name. */
        if (n > 1 && lower[n - 1] == '.')
                lower[n - 1] = '\0';
        if (!lower || !nm_dns_domain_valid(lower, NULL)) {
                g_autofree char *v = shown(domain ? domain : "");
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid nameserver domain \"%s\": expected a DNS domain like corp.example "
                            "(labels of "
                            "a-z, 0-9 and '-', each 1-63 characters, not starting or ending with '-')",
                            v);
                return false;
        }
        if (dns_domain) {
                g_autofree char *zone = g_strconcat(network, ".", dns_domain, NULL);
                g_autofree char *dotted = g_strconcat(".", zone, NULL);
                if (streq0(lower, zone) || g_str_has_suffix(lower, dotted)) {
                        g_set_error(
                                error, NM_ERROR, NM_ERROR_CONFLICT,
                                "The nameserver domain \"%s\" is inside the mesh's own zone %s, whose names "
                                "every node answers itself: choose a domain outside it",
                                lower, zone);
                        return false;
                }
        }
        *ret = TAKE_PTR(lower);
        return true;
}

bool nameserver_servers_valid(char **servers, char ***ret, GError **error)
{
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        guint n = servers ? g_strv_length(servers) : 0;

        if (n < 1 || n > NM_MAX_NAMESERVER_SERVERS) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "A nameserver needs 1-%d servers (IP addresses), not %u",
                            NM_MAX_NAMESERVER_SERVERS, n);
                return false;
        }
        for (char **s = servers; *s; s++) {
                NmInAddr a;
                int family;
                const char *why = NULL;

                if (nm_addr_parse(*s, &family, &a) < 0) {
                        g_autofree char *v = shown(*s);
                        g_set_error(
                                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                "Invalid nameserver server \"%s\": expected an IPv4 or IPv6 address (the "
                                "server is asked on port 53)",
                                v);
                        return false;
                }
                if (family == AF_INET) {
                        uint32_t h = ntohl(a.in.s_addr);
                        if (h == 0)
                                why = "the unspecified address";
                        else if ((h >> 24) == 127)
                                why = "a loopback address (it would be another server on every host)";
                        else if ((h >> 28) == 0xe || h == 0xffffffffu)
                                why = "a multicast or broadcast address";
                } else {
                        if (IN6_IS_ADDR_UNSPECIFIED(&a.in6))
                                why = "the unspecified address";
                        else if (IN6_IS_ADDR_LOOPBACK(&a.in6))
                                why = "a loopback address (it would be another server on every host)";
                        else if (IN6_IS_ADDR_MULTICAST(&a.in6))
                                why = "a multicast address";
                        else if (IN6_IS_ADDR_LINKLOCAL(&a.in6))
                                why = "a link-local address (it names no link on the hosts)";
                }
                if (why) {
                        g_autofree char *v = shown(*s);
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid nameserver server \"%s\": %s; give a unicast address the hosts "
                                    "can reach",
                                    v, why);
                        return false;
                }
                char *canon = nm_addr_to_string(family, &a);
                if (!g_hash_table_add(seen, canon)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Nameserver server %s is given twice", canon);
                        return false;
                }
                g_strv_builder_add(b, canon);
        }
        *ret = g_strv_builder_end(b);
        return true;
}

/* ---- the table ---------------------------------------------------------------------------- */

int nameservers_load(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s, "SELECT domain, servers FROM nameservers WHERE network = $1 ORDER BY domain",
                           p, 1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)nm_nameserver_free);
        for (guint i = 0; i < res->n_rows; i++) {
                g_auto(GStrv) servers = store_json_to_strv(store_result_text(res, i, 1));
                g_ptr_array_add(a, nm_nameserver_new(store_result_text(res, i, 0), servers));
        }
        *ret = a;
        return 0;
}

int nameservers_load_all(Store *s, GHashTable **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT network, domain, servers FROM nameservers ORDER BY network, domain",
                           NULL, 0, &res, error);
        if (r < 0)
                return r;
        GHashTable *h =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
        for (guint i = 0; i < res->n_rows; i++) {
                const char *net = store_result_text(res, i, 0);
                GPtrArray *a = g_hash_table_lookup(h, net);
                if (!a) {
                        a = g_ptr_array_new_with_free_func((GDestroyNotify)nm_nameserver_free);
                        g_hash_table_insert(h, g_strdup(net), a);
                }
                g_auto(GStrv) servers = store_json_to_strv(store_result_text(res, i, 2));
                g_ptr_array_add(a, nm_nameserver_new(store_result_text(res, i, 1), servers));
        }
        *ret = h;
        return 0;
}

int nameservers_add(Store *s, const char *network, const NmNameserver *ns, GError **error)
{
        g_autoptr(StoreResult) count = NULL;
        g_autofree char *servers = store_strv_to_json(ns->servers);
        StoreValue q[] = {SV_TEXT(network)};
        int r;

        r = store_exec(s, "SELECT COUNT(*) FROM nameservers WHERE network = $1", q, 1, &count, error);
        if (r < 0)
                return r;
        if (store_result_int(count, 0, 0) >= NM_MAX_NAMESERVERS) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Network \"%s\" has %d nameservers already, the most it may have", network,
                            NM_MAX_NAMESERVERS);
                return -ENOSPC;
        }
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(ns->domain), SV_TEXT(servers),
                          SV_INT((gint64)time(NULL))};
        r = store_exec(
                s, "INSERT INTO nameservers (network, domain, servers, created_at) VALUES ($1, $2, $3, $4)",
                p, 4, NULL, error);
        if (r == -EEXIST) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Network \"%s\" has a nameserver for %s already: change its servers with PUT "
                            "/networks/%s/nameservers/%s",
                            network, ns->domain, network, ns->domain);
        } else if (r == -ENOENT) {
                g_clear_error(error);
                return store_not_found(error, "Network", network);
        }
        return r;
}

int nameservers_set(Store *s, const char *network, const NmNameserver *ns, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *servers = store_strv_to_json(ns->servers);
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(ns->domain), SV_TEXT(servers)};
        int r = store_exec(s, "UPDATE nameservers SET servers = $3 WHERE network = $1 AND domain = $2", p, 3,
                           &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Nameserver", ns->domain);
        return 0;
}

int nameservers_delete(Store *s, const char *network, const char *domain, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *lower = g_ascii_strdown(domain, -1);
        size_t n = strlen(lower);
        if (n > 1 && lower[n - 1] == '.')
                lower[n - 1] = '\0';
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(lower)};
        int r = store_exec(s, "DELETE FROM nameservers WHERE network = $1 AND domain = $2", p, 2, &res,
                           error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Nameserver", domain);
        return 0;
}
