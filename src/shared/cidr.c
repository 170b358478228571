/* IPv4/IPv6 addresses, prefixes and endpoints: parsing, printing and arithmetic. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "macro.h"
#include "nm-error.h"

int nm_addr_parse(const char *s, int *family, NmInAddr *ret)
{
        NmInAddr a = {};

        if (!s)
                return -EINVAL;
        if (inet_pton(AF_INET, s, &a.in) == 1) {
                *family = AF_INET;
                *ret = a;
                return 0;
        }
        if (inet_pton(AF_INET6, s, &a.in6) == 1) {
                *family = AF_INET6;
                *ret = a;
                return 0;
        }
        return -EINVAL;
}

char *nm_addr_to_string(int family, const NmInAddr *a)
{
        char buf[INET6_ADDRSTRLEN];
        if (!inet_ntop(family, a, buf, sizeof(buf)))
                return g_strdup("?");
        return g_strdup(buf);
}

int nm_prefix_parse(const char *s, NmPrefix *ret, GError **error)
{
        NmPrefix p = {};
        const char *slash;
        g_autofree char *addr = NULL;

        if (!s || !*s) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Empty address range");
                return -EINVAL;
        }
        if (strlen(s) > 64) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid address range: too long");
                return -EINVAL;
        }
        slash = strchr(s, '/');
        addr = slash ? g_strndup(s, slash - s) : g_strdup(s);
        if (nm_addr_parse(addr, &p.family, &p.addr) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid address range \"%s\": \"%s\" is not an IPv4 or IPv6 address", s, addr);
                return -EINVAL;
        }
        unsigned bits = nm_family_bits(p.family);
        if (slash) {
                const char *n = slash + 1;
                char *end;
                if (!*n || !g_ascii_isdigit(*n) || strlen(n) > 3) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid address range \"%s\": prefix length must be a number (0-%u)", s,
                                    bits);
                        return -EINVAL;
                }
                unsigned long l = strtoul(n, &end, 10);
                if (*end || l > bits) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid address range \"%s\": prefix length out of range (0-%u)", s,
                                    bits);
                        return -EINVAL;
                }
                p.prefixlen = (uint8_t)l;
        } else
                p.prefixlen = (uint8_t)bits;
        *ret = p;
        return 0;
}

char *nm_prefix_to_string(const NmPrefix *p)
{
        g_autofree char *a = nm_addr_to_string(p->family, &p->addr);
        return g_strdup_printf("%s/%u", a, p->prefixlen);
}

static void mask_bits(NmPrefix *p, bool clear_host)
{
        unsigned bits = nm_family_bits(p->family);
        for (unsigned i = p->prefixlen; i < bits; i++)
                if (clear_host)
                        p->addr.bytes[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
}

bool nm_prefix_is_canonical(const NmPrefix *p)
{
        NmPrefix c = *p;
        nm_prefix_canonicalize(&c);
        return memcmp(&c.addr, &p->addr, nm_family_bits(p->family) / 8) == 0;
}

void nm_prefix_canonicalize(NmPrefix *p)
{
        mask_bits(p, true);
}

static bool prefix_match(const NmInAddr *a, const NmInAddr *b, unsigned len)
{
        unsigned full = len / 8, rest = len % 8;
        if (memcmp(a->bytes, b->bytes, full) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t m = (uint8_t)(0xff << (8 - rest));
        return (a->bytes[full] & m) == (b->bytes[full] & m);
}

bool nm_prefix_overlaps(const NmPrefix *a, const NmPrefix *b)
{
        if (a->family != b->family)
                return false;
        return prefix_match(&a->addr, &b->addr, MIN(a->prefixlen, b->prefixlen));
}

bool nm_prefix_contains(const NmPrefix *p, int family, const NmInAddr *a)
{
        return family == p->family && prefix_match(&p->addr, a, p->prefixlen);
}

bool nm_prefix_equal(const NmPrefix *a, const NmPrefix *b)
{
        return a->family == b->family && a->prefixlen == b->prefixlen &&
               memcmp(&a->addr, &b->addr, nm_family_bits(a->family) / 8) == 0;
}

unsigned nm_prefix_host_bits(const NmPrefix *p)
{
        unsigned h = nm_family_bits(p->family) - p->prefixlen;
        return MIN(h, 63u);
}

void nm_prefix_nth(const NmPrefix *p, uint64_t index, NmInAddr *ret)
{
        NmPrefix c = *p;
        unsigned n = nm_family_bits(p->family) / 8;

        nm_prefix_canonicalize(&c);
        *ret = c.addr;
        /* Add index to the low 64 bits, big-endian. */
        for (int i = (int)n - 1; i >= 0 && index; i--) {
                unsigned sum = ret->bytes[i] + (unsigned)(index & 0xff);
                ret->bytes[i] = (uint8_t)sum;
                index = (index >> 8) + (sum >> 8);
        }
}

uint64_t nm_prefix_index_of(const NmPrefix *p, const NmInAddr *a)
{
        unsigned n = nm_family_bits(p->family) / 8;
        unsigned hb = nm_prefix_host_bits(p);
        uint64_t v = 0;

        for (unsigned i = n > 8 ? n - 8 : 0; i < n; i++)
                v = (v << 8) | a->bytes[i];
        if (hb < 64)
                v &= ((uint64_t)1 << hb) - 1;
        return v;
}

int nm_endpoint_parse(const char *s, int *family, NmInAddr *addr, uint16_t *port)
{
        g_autofree char *host = NULL;
        const char *p;

        if (!s || strlen(s) > 64)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = g_strndup(s + 1, close - s - 1);
                p = close + 2;
                if (nm_addr_parse(host, family, addr) < 0 || *family != AF_INET6)
                        return -EINVAL;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = g_strndup(s, colon - s);
                p = colon + 1;
                if (nm_addr_parse(host, family, addr) < 0 || *family != AF_INET)
                        return -EINVAL;
        }
        if (!*p || strlen(p) > 5)
                return -EINVAL;
        for (const char *c = p; *c; c++)
                if (!g_ascii_isdigit(*c))
                        return -EINVAL;
        unsigned long v = strtoul(p, NULL, 10);
        if (v < 1 || v > 65535)
                return -EINVAL;
        *port = (uint16_t)v;
        return 0;
}

char *nm_endpoint_to_string(int family, const NmInAddr *addr, uint16_t port)
{
        g_autofree char *a = nm_addr_to_string(family, addr);
        if (family == AF_INET6)
                return g_strdup_printf("[%s]:%u", a, port);
        return g_strdup_printf("%s:%u", a, port);
}
