/* The WireGuard device/peer model: construction, copies, endpoints and allowed-IP sets. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "macro.h"
#include "nm-error.h"
#include "wg.h"

WgPeer *wg_peer_new(const NmKey *public_key)
{
        WgPeer *p = g_new0(WgPeer, 1);
        if (public_key)
                p->public_key = *public_key;
        p->endpoint.sa.sa_family = AF_UNSPEC;
        p->allowed_ips = g_array_new(FALSE, TRUE, sizeof(NmPrefix));
        return p;
}

WgPeer *wg_peer_copy(const WgPeer *p)
{
        WgPeer *c;

        if (!p)
                return NULL;
        c = g_new0(WgPeer, 1);
        *c = *p;
        c->allowed_ips = g_array_sized_new(FALSE, TRUE, sizeof(NmPrefix), p->allowed_ips->len);
        g_array_append_vals(c->allowed_ips, p->allowed_ips->data, p->allowed_ips->len);
        return c;
}

void wg_peer_free(WgPeer *p)
{
        if (!p)
                return;
        g_array_unref(p->allowed_ips);
        sodium_memzero(p, sizeof(*p));
        g_free(p);
}

void wg_peer_add_allowed_ip(WgPeer *p, const NmPrefix *prefix)
{
        g_array_append_val(p->allowed_ips, *prefix);
}

int wg_peer_add_allowed_ip_string(WgPeer *p, const char *s, GError **error)
{
        NmPrefix prefix;
        int r = nm_prefix_parse(s, &prefix, error);
        if (r < 0)
                return r;
        wg_peer_add_allowed_ip(p, &prefix);
        return 0;
}

void wg_peer_set_endpoint(WgPeer *p, const WgEndpoint *e)
{
        p->endpoint = *e;
        p->flags |= WG_PEER_HAS_ENDPOINT;
}

void wg_peer_set_preshared_key(WgPeer *p, const NmKey *psk)
{
        p->preshared_key = *psk;
        p->flags |= WG_PEER_HAS_PRESHARED_KEY;
}

void wg_peer_set_persistent_keepalive(WgPeer *p, uint16_t seconds)
{
        p->persistent_keepalive = seconds;
        p->flags |= WG_PEER_HAS_PERSISTENT_KEEPALIVE;
}

WgDevice *wg_device_new(const char *ifname)
{
        WgDevice *d = g_new0(WgDevice, 1);
        if (ifname)
                g_strlcpy(d->ifname, ifname, sizeof(d->ifname));
        d->peers = g_ptr_array_new_with_free_func((GDestroyNotify)wg_peer_free);
        return d;
}

WgDevice *wg_device_copy(const WgDevice *d)
{
        WgDevice *c;

        if (!d)
                return NULL;
        c = g_new0(WgDevice, 1);
        *c = *d;
        c->peers = g_ptr_array_new_full(d->peers->len, (GDestroyNotify)wg_peer_free);
        for (guint i = 0; i < d->peers->len; i++)
                g_ptr_array_add(c->peers, wg_peer_copy(d->peers->pdata[i]));
        return c;
}

void wg_device_free(WgDevice *d)
{
        if (!d)
                return;
        g_ptr_array_unref(d->peers);
        sodium_memzero(d, sizeof(*d));
        g_free(d);
}

int wg_device_set_private_key(WgDevice *d, const NmKey *key)
{
        int r = nm_key_public_from_private(key, &d->public_key);
        if (r < 0)
                return r;
        d->private_key = *key;
        d->flags |= WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_PUBLIC_KEY;
        return 0;
}

void wg_device_set_listen_port(WgDevice *d, uint16_t port)
{
        d->listen_port = port;
        d->flags |= WG_DEVICE_HAS_LISTEN_PORT;
}

void wg_device_set_fwmark(WgDevice *d, uint32_t fwmark)
{
        d->fwmark = fwmark;
        d->flags |= WG_DEVICE_HAS_FWMARK;
}

WgPeer *wg_device_add_peer(WgDevice *d, WgPeer *p)
{
        g_ptr_array_add(d->peers, p);
        return p;
}

WgPeer *wg_device_find_peer(const WgDevice *d, const NmKey *public_key)
{
        for (guint i = 0; i < d->peers->len; i++) {
                WgPeer *p = d->peers->pdata[i];
                if (nm_key_equal(&p->public_key, public_key))
                        return p;
        }
        return NULL;
}

bool wg_device_is_empty(const WgDevice *d)
{
        unsigned writable = WG_DEVICE_REPLACE_PEERS | WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT |
                            WG_DEVICE_HAS_FWMARK;
        return (d->flags & writable) == 0 && d->peers->len == 0;
}

size_t wg_device_count_allowed_ips(const WgDevice *d)
{
        size_t n = 0;
        for (guint i = 0; i < d->peers->len; i++)
                n += ((WgPeer *)d->peers->pdata[i])->allowed_ips->len;
        return n;
}

bool wg_ifname_valid(const char *s, GError **error)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n >= IFNAMSIZ) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid interface name \"%.32s\": 1-%d characters are accepted", strempty(s),
                            IFNAMSIZ - 1);
                return false;
        }
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid interface name \"%s\": \".\" and \"..\" are not accepted", s);
                return false;
        }
        for (const char *c = s; *c; c++)
                if (*c == '/' || *c == ':' || g_ascii_isspace(*c) || !g_ascii_isprint(*c)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid interface name \"%s\": printable characters other than '/', "
                                    "':' and spaces are accepted",
                                    s);
                        return false;
                }
        return true;
}

static int endpoint_error(GError **error, const char *s, const char *why)
{
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "Invalid endpoint \"%.80s\": %s (accepted: 198.18.0.2:51820, [fd00::2]:51820)", s, why);
        return -EINVAL;
}

int wg_endpoint_parse(const char *s, WgEndpoint *ret, GError **error)
{
        g_autofree char *host = NULL;
        const char *port_s;
        WgEndpoint e = {};
        char *end;

        if (!s || !*s)
                return endpoint_error(error, strempty(s), "empty");
        if (strlen(s) > 80)
                return endpoint_error(error, s, "too long");

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                char *scope;

                if (!close || close[1] != ':')
                        return endpoint_error(error, s, "an IPv6 address must be written [address]:port");
                host = g_strndup(s + 1, close - s - 1);
                port_s = close + 2;
                scope = strchr(host, '%');
                if (scope) {
                        *scope++ = '\0';
                        if (!*scope)
                                return endpoint_error(error, s, "empty IPv6 scope");
                        unsigned long idx = strtoul(scope, &end, 10);
                        if (*end == '\0' && g_ascii_isdigit(*scope) && idx <= UINT32_MAX)
                                e.in6.sin6_scope_id = (uint32_t)idx;
                        else if ((idx = if_nametoindex(scope)) > 0)
                                e.in6.sin6_scope_id = (uint32_t)idx;
                        else
                                return endpoint_error(error, s, "unknown IPv6 scope interface");
                }
                if (inet_pton(AF_INET6, host, &e.in6.sin6_addr) != 1)
                        return endpoint_error(error, s, "not an IPv6 address");
                e.in6.sin6_family = AF_INET6;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        return endpoint_error(error, s, "missing \":port\"");
                host = g_strndup(s, colon - s);
                port_s = colon + 1;
                if (inet_pton(AF_INET, host, &e.in.sin_addr) != 1)
                        return endpoint_error(error, s,
                                              "not an IPv4 address (write IPv6 as [address]:port)");
                e.in.sin_family = AF_INET;
        }

        if (!g_ascii_isdigit(*port_s) || strlen(port_s) > 5)
                return endpoint_error(error, s, "the port must be a number 1-65535");
        unsigned long port = strtoul(port_s, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
                return endpoint_error(error, s, "the port must be a number 1-65535");
        if (e.sa.sa_family == AF_INET)
                e.in.sin_port = htons((uint16_t)port);
        else
                e.in6.sin6_port = htons((uint16_t)port);
        *ret = e;
        return 0;
}

char *wg_endpoint_to_string(const WgEndpoint *e)
{
        char buf[INET6_ADDRSTRLEN];

        switch (e->sa.sa_family) {
        case AF_INET:
                inet_ntop(AF_INET, &e->in.sin_addr, buf, sizeof(buf));
                return g_strdup_printf("%s:%u", buf, ntohs(e->in.sin_port));
        case AF_INET6:
                inet_ntop(AF_INET6, &e->in6.sin6_addr, buf, sizeof(buf));
                if (e->in6.sin6_scope_id)
                        return g_strdup_printf("[%s%%%u]:%u", buf, e->in6.sin6_scope_id,
                                               ntohs(e->in6.sin6_port));
                return g_strdup_printf("[%s]:%u", buf, ntohs(e->in6.sin6_port));
        default:
                return g_strdup("");
        }
}

bool wg_endpoint_equal(const WgEndpoint *a, const WgEndpoint *b)
{
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        switch (a->sa.sa_family) {
        case AF_INET:
                return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        case AF_INET6:
                return a->in6.sin6_port == b->in6.sin6_port &&
                       a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
                       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
        default:
                return true;
        }
}

void wg_endpoint_from_addr(WgEndpoint *ret, int family, const NmInAddr *addr, uint16_t port)
{
        *ret = (WgEndpoint){};
        if (family == AF_INET) {
                ret->in.sin_family = AF_INET;
                ret->in.sin_addr = addr->in;
                ret->in.sin_port = htons(port);
        } else if (family == AF_INET6) {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_addr = addr->in6;
                ret->in6.sin6_port = htons(port);
        } else
                ret->sa.sa_family = AF_UNSPEC;
}

static int prefix_compare(gconstpointer x, gconstpointer y)
{
        const NmPrefix *a = x, *b = y;
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        if (a->prefixlen != b->prefixlen)
                return a->prefixlen < b->prefixlen ? -1 : 1;
        return memcmp(a->addr.bytes, b->addr.bytes, a->family == AF_INET ? 4 : 16);
}

/* Canonical, sorted, de-duplicated copy, so two lists compare as sets. */
static GArray *allowed_ips_normalized(const GArray *a)
{
        GArray *c = g_array_sized_new(FALSE, TRUE, sizeof(NmPrefix), a->len);
        for (guint i = 0; i < a->len; i++) {
                NmPrefix p = {};
                const NmPrefix *src = &g_array_index(a, NmPrefix, i);
                p.family = src->family;
                p.prefixlen = src->prefixlen;
                memcpy(p.addr.bytes, src->addr.bytes, src->family == AF_INET ? 4 : 16);
                nm_prefix_canonicalize(&p);
                g_array_append_val(c, p);
        }
        g_array_sort(c, prefix_compare);
        guint out = 0;
        for (guint i = 0; i < c->len; i++) {
                if (out > 0 && prefix_compare(&g_array_index(c, NmPrefix, out - 1),
                                              &g_array_index(c, NmPrefix, i)) == 0)
                        continue;
                g_array_index(c, NmPrefix, out++) = g_array_index(c, NmPrefix, i);
        }
        g_array_set_size(c, out);
        return c;
}

bool wg_allowed_ips_equal(const GArray *a, const GArray *b)
{
        g_autoptr(GArray) na = allowed_ips_normalized(a);
        g_autoptr(GArray) nb = allowed_ips_normalized(b);

        if (na->len != nb->len)
                return false;
        for (guint i = 0; i < na->len; i++)
                if (prefix_compare(&g_array_index(na, NmPrefix, i), &g_array_index(nb, NmPrefix, i)) != 0)
                        return false;
        return true;
}
