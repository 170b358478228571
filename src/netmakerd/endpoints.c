/* Endpoint choice per pair of hosts. */
#include <string.h>

#include "cidr.h"
#include "endpoints.h"
#include "macro.h"

bool endpoint_same_nat(const Host *a, const Host *b)
{
        return a && b && a->public_endpoint && *a->public_endpoint &&
               streq0(a->public_endpoint, b->public_endpoint);
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

char *endpoint_choose(const Host *viewer, const Host *peer, guint16 port)
{
        const char *first = peer->endpoints && peer->endpoints[0] ? peer->endpoints[0] : NULL;
        const char *chosen;
        int family;
        NmInAddr a;

        if (port == 0)
                return NULL;
        if (peer->static_endpoint) /* the admin's endpoint wins over every discovered one */
                chosen = peer->static_endpoint;
        else if (endpoint_same_nat(viewer, peer))
                chosen = local_address(viewer, peer) ?: first;
        else if (peer->public_endpoint && *peer->public_endpoint)
                chosen = peer->public_endpoint;
        else
                chosen = first;
        if (!chosen || nm_addr_parse(chosen, &family, &a) < 0)
                return NULL;
        return nm_endpoint_to_string(family, &a, port);
}
