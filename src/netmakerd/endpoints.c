/* Endpoint choice per pair of nodes. */
#include <string.h>

#include "cidr.h"
#include "endpoints.h"
#include "macro.h"

char *endpoint_address(const char *endpoint)
{
        int family;
        NmInAddr a;
        uint16_t port;

        if (!endpoint || nm_endpoint_parse(endpoint, &family, &a, &port) < 0)
                return NULL;
        return nm_addr_to_string(family, &a);
}

/* The address the outside sees the node at: where its WireGuard packets came from, else what STUN
 * told its host. */
static char *public_address(const Member *m)
{
        char *observed = endpoint_address(m->node->observed_endpoint);
        if (observed)
                return observed;
        return m->host->public_endpoint && *m->host->public_endpoint ? g_strdup(m->host->public_endpoint)
                                                                     : NULL;
}

bool endpoint_same_nat(const Member *a, const Member *b)
{
        if (!a || !b)
                return false;
        g_autofree char *pa = public_address(a), *pb = public_address(b);
        return pa && streq0(pa, pb);
}

static bool same_subnet(int family, const NmInAddr *a, const NmInAddr *b)
{
        /* /24 or /64: the first 3 or 8 bytes. */
        return memcmp(a->bytes, b->bytes, family == AF_INET ? 3 : 8) == 0;
}

/* The first of the peer's addresses on a subnet of one of the viewer's, or NULL. */
static const char *local_address(const Host *viewer, const Host *peer)
{
        for (char **p = peer->endpoints; p && *p; p++) {
                int pf;
                NmInAddr pa;
                if (nm_addr_parse(*p, &pf, &pa) < 0)
                        continue;
                for (char **v = viewer->endpoints; v && *v; v++) {
                        int vf;
                        NmInAddr va;
                        if (nm_addr_parse(*v, &vf, &va) >= 0 && vf == pf && same_subnet(pf, &pa, &va))
                                return *p;
                }
        }
        return NULL;
}

static const char *first_address(const Host *h)
{
        return h->endpoints && h->endpoints[0] ? h->endpoints[0] : NULL;
}

static char *with_port(const char *address, guint16 port)
{
        int family;
        NmInAddr a;

        if (!address || port == 0 || nm_addr_parse(address, &family, &a) < 0)
                return NULL;
        return nm_endpoint_to_string(family, &a, port);
}

/* The unchanging candidates: the admin's static endpoint, STUN, HTTPS source, first reported
 * address. */
static const char *configured_address(const Host *h)
{
        if (h->static_endpoint)
                return h->static_endpoint;
        if (h->public_endpoint && *h->public_endpoint)
                return h->public_endpoint;
        if (h->http_address && *h->http_address)
                return h->http_address;
        return first_address(h);
}

char *endpoint_choose(const Member *viewer, const Member *peer)
{
        guint16 port = peer->node->listen_port;
        int family;
        NmInAddr a;
        uint16_t p;

        if (port == 0)
                return NULL;
        if (peer->host->static_endpoint) /* the admin's endpoint wins over every discovered one */
                return with_port(peer->host->static_endpoint, port);
        if (endpoint_same_nat(viewer, peer))
                return with_port(local_address(viewer->host, peer->host) ?: first_address(peer->host), port);
        if (peer->node->observed_endpoint &&
            nm_endpoint_parse(peer->node->observed_endpoint, &family, &a, &p) >= 0)
                return nm_endpoint_to_string(family, &a, p);
        return with_port(configured_address(peer->host), port);
}

char *endpoint_for_config(const Member *gateway)
{
        return with_port(configured_address(gateway->host), gateway->node->listen_port);
}
