/* The DNS names of a network: custom names (table dns_names) and the automatic names of nodes. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "dns-names.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"

void dns_name_free(DnsName *n)
{
        if (!n)
                return;
        g_free(n->name);
        g_free(n->ipv4);
        g_free(n->ipv6);
        g_free(n);
}

static DnsName *dns_name_new(const char *name, const char *ipv4, const char *ipv6, bool automatic)
{
        DnsName *n = g_new0(DnsName, 1);
        n->name = g_strdup(name);
        n->ipv4 = g_strdup(ipv4);
        n->ipv6 = g_strdup(ipv6);
        n->automatic = automatic;
        return n;
}

static char *shown(const char *s)
{
        return g_utf8_make_valid(s, MIN(strlen(s), 80));
}

bool dns_name_valid(const char *name, const char *network, const char *dns_domain, char **ret,
                    GError **error)
{
        g_autofree char *lower = name ? g_ascii_strdown(name, -1) : NULL;
        g_autoptr(GError) e = NULL;

        if (!lower || !nm_dns_domain_valid(lower, &e)) {
                g_autofree char *v = shown(name ? name : "");
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Invalid DNS name \"%s\": use dot-separated labels of a-z, 0-9 and '-', each 1-63 "
                        "characters, not starting or ending with '-'",
                        v);
                return false;
        }
        /* The whole name "<name>.<network>.<domain>" must fit a DNS name. */
        size_t full = strlen(lower) + 1 + strlen(network) + 1 + strlen(dns_domain ? dns_domain : "");
        if (full > NM_DNS_NAME_MAX) {
                g_autofree char *v = shown(name);
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Invalid DNS name \"%s\": \"<name>.%s.%s\" would be %zu characters, more than %d", v,
                        network, strempty(dns_domain), full, NM_DNS_NAME_MAX);
                return false;
        }
        *ret = TAKE_PTR(lower);
        return true;
}

bool dns_name_address_valid(const char *member, const char *text, int family, char **ret, GError **error)
{
        NmInAddr a;
        int f;

        if (nm_addr_parse(text, &f, &a) < 0 || f != family) {
                g_autofree char *v = shown(text);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": expected an %s address", member, v,
                            family == AF_INET ? "IPv4" : "IPv6");
                return false;
        }
        const char *why = NULL;
        if (family == AF_INET) {
                uint32_t h = ntohl(a.in.s_addr);
                if (h == 0)
                        why = "the unspecified address";
                else if ((h >> 28) == 0xe)
                        why = "a multicast address";
                else if (h == 0xffffffffu)
                        why = "the broadcast address";
        } else {
                if (IN6_IS_ADDR_UNSPECIFIED(&a.in6))
                        why = "the unspecified address";
                else if (IN6_IS_ADDR_MULTICAST(&a.in6))
                        why = "a multicast address";
        }
        if (why) {
                g_autofree char *v = shown(text);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": %s cannot be a name's address; give a unicast address",
                            member, v, why);
                return false;
        }
        *ret = nm_addr_to_string(family, &a);
        return true;
}

/* ---- reading -------------------------------------------------------------------------------- */

int dns_names_load_custom(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s, "SELECT name, ipv4, ipv6 FROM dns_names WHERE network = $1 ORDER BY name", p,
                           1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)nm_dns_entry_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a,
                                nm_dns_entry_new(store_result_text(res, i, 0), store_result_text(res, i, 1),
                                                 store_result_text(res, i, 2)));
        *ret = a;
        return 0;
}

int dns_names_load_all_custom(Store *s, GHashTable **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT network, name, ipv4, ipv6 FROM dns_names ORDER BY network, name", NULL,
                           0, &res, error);
        if (r < 0)
                return r;
        GHashTable *h =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
        for (guint i = 0; i < res->n_rows; i++) {
                const char *net = store_result_text(res, i, 0);
                GPtrArray *a = g_hash_table_lookup(h, net);
                if (!a) {
                        a = g_ptr_array_new_with_free_func((GDestroyNotify)nm_dns_entry_free);
                        g_hash_table_insert(h, g_strdup(net), a);
                }
                g_ptr_array_add(a,
                                nm_dns_entry_new(store_result_text(res, i, 1), store_result_text(res, i, 2),
                                                 store_result_text(res, i, 3)));
        }
        *ret = h;
        return 0;
}

static int network_exists(Store *s, const char *network, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s, "SELECT 1 FROM networks WHERE name = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0) {
                g_autofree char *v = shown(network);
                g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "Network \"%s\" does not exist", v);
                return -ENOENT;
        }
        return 0;
}

static int by_name(gconstpointer a, gconstpointer b)
{
        const DnsName *x = *(DnsName *const *)a, *y = *(DnsName *const *)b;
        int c = strcmp(x->name, y->name);
        if (c != 0)
                return c;
        return (int)y->automatic - (int)x->automatic;
}

int dns_names_list(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) nodes = NULL, ext = NULL, custom = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r;

        r = network_exists(s, network, error);
        if (r < 0)
                return r;
        r = store_exec(s,
                       "SELECT h.name, d.ipv4, d.ipv6 FROM nodes d JOIN hosts h ON h.id = d.host_id "
                       "WHERE d.network = $1",
                       p, 1, &nodes, error);
        if (r < 0)
                return r;
        r = store_exec(s, "SELECT name, ipv4, ipv6 FROM ext_clients WHERE network = $1", p, 1, &ext, error);
        if (r < 0)
                return r;
        r = store_exec(s, "SELECT name, ipv4, ipv6 FROM dns_names WHERE network = $1", p, 1, &custom, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)dns_name_free);
        for (guint i = 0; i < nodes->n_rows; i++)
                g_ptr_array_add(a,
                                dns_name_new(store_result_text(nodes, i, 0), store_result_text(nodes, i, 1),
                                             store_result_text(nodes, i, 2), true));
        for (guint i = 0; i < ext->n_rows; i++)
                g_ptr_array_add(a, dns_name_new(store_result_text(ext, i, 0), store_result_text(ext, i, 1),
                                                store_result_text(ext, i, 2), true));
        for (guint i = 0; i < custom->n_rows; i++)
                g_ptr_array_add(a, dns_name_new(store_result_text(custom, i, 0),
                                                store_result_text(custom, i, 1),
                                                store_result_text(custom, i, 2), false));
        g_ptr_array_sort(a, by_name);
        *ret = a;
        return 0;
}

/* ---- changing ------------------------------------------------------------------------------- */

/* Whether `name` is an automatic name in the network: 0 and *ret_what ("node", "external client")
 * when it is, -ENOENT when not. */
static int automatic_owner(Store *s, const char *network, const char *name, const char **ret_what,
                           GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(name)};
        int r = store_exec(s,
                           "SELECT 'node' FROM nodes d JOIN hosts h ON h.id = d.host_id "
                           "WHERE d.network = $1 AND LOWER(h.name) = $2 "
                           "UNION ALL SELECT 'external client' FROM ext_clients "
                           "WHERE network = $1 AND LOWER(name) = $2",
                           p, 2, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return -ENOENT;
        *ret_what = streq0(store_result_text(res, 0, 0), "node") ? "a node" : "an external client";
        return 0;
}

int dns_names_add(Store *s, const char *network, const NmDnsEntry *e, GError **error)
{
        int r;

        r = network_exists(s, network, error);
        if (r < 0)
                return r;
        const char *what = NULL;
        r = automatic_owner(s, network, e->name, &what, error);
        if (r == 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "\"%s\" is the name of %s in network \"%s\": choose another name", e->name, what,
                            network);
                return -EEXIST;
        }
        if (r != -ENOENT)
                return r;
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(e->name), SV_TEXT(e->ipv4), SV_TEXT(e->ipv6),
                          SV_INT((gint64)time(NULL))};
        r = store_exec(
                s,
                "INSERT INTO dns_names (network, name, ipv4, ipv6, created_at) VALUES ($1, $2, $3, $4, $5)",
                p, 5, NULL, error);
        if (r == -EEXIST) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Network \"%s\" already has the DNS name \"%s\": delete it first to change it",
                            network, e->name);
        }
        return r;
}

int dns_names_delete(Store *s, const char *network, const char *name, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *lower = g_ascii_strdown(name, -1);
        g_autofree char *v = shown(name);
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(lower)};
        int r;

        r = network_exists(s, network, error);
        if (r < 0)
                return r;
        r = store_exec(s, "DELETE FROM dns_names WHERE network = $1 AND name = $2", p, 2, &res, error);
        if (r < 0)
                return r;
        if (res->changes > 0)
                return 0;
        const char *what = NULL;
        r = automatic_owner(s, network, lower, &what, error);
        if (r == 0) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "\"%s\" is the automatic name of %s in network \"%s\": it goes when %s is removed",
                        v, what, network, streq0(what, "a node") ? "the node leaves or" : "the client");
                return -EBUSY;
        }
        if (r != -ENOENT)
                return r;
        g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "Network \"%s\" has no DNS name \"%s\"", network,
                    v);
        return -ENOENT;
}
