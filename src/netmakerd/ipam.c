/* Mesh address and port allocation. */
#include <errno.h>
#include <string.h>

#include "ipam.h"
#include "macro.h"
#include "nm-error.h"

/* First and last allocatable index of a range. */
static void range_bounds(const NmPrefix *range, uint64_t *first, uint64_t *last)
{
        unsigned hb = nm_prefix_host_bits(range);
        uint64_t top = hb >= 64 ? UINT64_MAX : ((uint64_t)1 << hb) - 1;

        *first = 1; /* never the network address (or the IPv6 subnet-router anycast address) */
        *last = range->family == AF_INET ? top - 1 : top; /* IPv4: never the broadcast address */
}

uint64_t ipam_capacity(const NmPrefix *range)
{
        uint64_t first, last;
        range_bounds(range, &first, &last);
        return last >= first ? last - first + 1 : 0;
}

static int allocate(const NmPrefix *range, const char *const *used, size_t n_used, bool top, char **ret)
{
        g_autoptr(GHashTable) taken = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        uint64_t first, last;

        range_bounds(range, &first, &last);
        for (size_t i = 0; i < n_used; i++) {
                int family;
                NmInAddr a;
                if (!used[i] || nm_addr_parse(used[i], &family, &a) < 0 ||
                    !nm_prefix_contains(range, family, &a))
                        continue;
                gint64 *k = g_new(gint64, 1);
                *k = (gint64)nm_prefix_index_of(range, &a);
                g_hash_table_add(taken, k);
        }
        /* At most n_used + 1 steps: one of the first (or last) n_used + 1 indices is free. */
        for (uint64_t step = 0; last >= first && step <= last - first; step++) {
                uint64_t i = top ? last - step : first + step;
                gint64 k = (gint64)i;
                if (g_hash_table_contains(taken, &k))
                        continue;
                NmInAddr a;
                nm_prefix_nth(range, i, &a);
                *ret = nm_addr_to_string(range->family, &a);
                return 0;
        }
        return -ENOSPC;
}

int ipam_allocate(const NmPrefix *range, const char *const *used, size_t n_used, char **ret)
{
        return allocate(range, used, n_used, false, ret);
}

int ipam_allocate_top(const NmPrefix *range, const char *const *used, size_t n_used, char **ret)
{
        return allocate(range, used, n_used, true, ret);
}

guint16 ipam_pick_port(guint16 wanted, const guint16 *used, size_t n_used)
{
        unsigned p = wanted ? wanted : 51821;
        for (unsigned tries = 0; tries < 65536; tries++) {
                bool busy = false;
                for (size_t i = 0; i < n_used && !busy; i++)
                        busy = used[i] == p;
                if (!busy)
                        return (guint16)p;
                p = p >= 65535 ? 1024 : p + 1;
        }
        return wanted;
}

static int assign_family(Store *s, const Network *network, const char *range_text, int family, char **ret,
                         GError **error)
{
        g_autoptr(GPtrArray) used = NULL;
        NmPrefix range;
        int r;

        if (!range_text)
                return 0;
        r = nm_prefix_parse(range_text, &range, error);
        if (r < 0)
                return r;
        r = store_node_addresses(s, network->name, family, &used, error);
        if (r < 0)
                return r;
        r = ipam_allocate(&range, (const char *const *)used->pdata, used->len, ret);
        if (r == -ENOSPC) {
                uint64_t cap = ipam_capacity(&range);
                g_set_error(error, NM_ERROR, NM_ERROR_EXHAUSTED,
                            "Network \"%s\" has no free %s address (range %s holds %" G_GUINT64_FORMAT
                            " host%s)",
                            network->name, family == AF_INET ? "IPv4" : "IPv6", range_text, cap,
                            cap == 1 ? "" : "s");
        }
        return r;
}

int ipam_assign(Store *s, const Network *network, Node *node, GError **error)
{
        g_autoptr(GPtrArray) mine = NULL;
        g_autoptr(Host) host = NULL;
        int r;

        r = assign_family(s, network, network->ipv4_range, AF_INET, &node->ipv4, error);
        if (r < 0)
                return r;
        r = assign_family(s, network, network->ipv6_range, AF_INET6, &node->ipv6, error);
        if (r < 0)
                return r;

        /* Each network is its own WireGuard link on the host, so its nodes need distinct ports. */
        r = store_host_get(s, node->host_id, &host, error);
        if (r < 0)
                return r;
        r = store_node_list(s, NULL, node->host_id, &mine, error);
        if (r < 0)
                return r;
        g_autofree guint16 *ports = g_new0(guint16, mine->len + 1);
        for (guint i = 0; i < mine->len; i++)
                ports[i] = ((Node *)mine->pdata[i])->listen_port;
        node->listen_port =
                ipam_pick_port(host->static_listen_port ?: network->listen_port, ports, mine->len);
        return 0;
}

/* The order in which a host's nodes get their ports again: the order of their ports now (which is
 * the order they joined in, as each took the next free port), so the links keep their order. */
static int by_port(gconstpointer a, gconstpointer b)
{
        const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
        if (x->listen_port != y->listen_port)
                return x->listen_port < y->listen_port ? -1 : 1;
        if (x->created_at != y->created_at)
                return x->created_at < y->created_at ? -1 : 1;
        return strcmp(x->network, y->network);
}

int ipam_reassign_ports(Store *s, const Host *h, guint *ret_changed, GError **error)
{
        g_autoptr(GPtrArray) mine = NULL;
        guint changed = 0;
        int r;

        r = store_node_list(s, NULL, h->id, &mine, error);
        if (r < 0)
                return r;
        g_ptr_array_sort(mine, by_port);
        g_autofree guint16 *ports = g_new0(guint16, mine->len + 1);
        for (guint i = 0; i < mine->len; i++) {
                Node *n = mine->pdata[i];
                guint16 wanted = h->static_listen_port;
                if (!wanted) {
                        g_autoptr(Network) net = NULL;
                        r = store_network_get(s, n->network, &net, error);
                        if (r < 0)
                                return r;
                        wanted = net->listen_port;
                }
                ports[i] = ipam_pick_port(wanted, ports, i);
                if (ports[i] == n->listen_port)
                        continue;
                r = store_node_set_listen_port(s, n->id, ports[i], error);
                if (r < 0)
                        return r;
                changed++;
        }
        if (ret_changed)
                *ret_changed = changed;
        return 0;
}
