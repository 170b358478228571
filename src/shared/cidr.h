/* IPv4/IPv6 addresses, prefixes and endpoints: parsing, printing and arithmetic. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef union NmInAddr {
        struct in_addr in;
        struct in6_addr in6;
        uint8_t bytes[16];
} NmInAddr;

typedef struct NmPrefix {
        int family; /* AF_INET or AF_INET6 */
        NmInAddr addr;
        uint8_t prefixlen;
} NmPrefix;

static inline unsigned nm_family_bits(int family)
{
        return family == AF_INET ? 32 : 128;
}

/* "10.0.0.1" or "fd00::1". Returns 0 or -EINVAL. */
int nm_addr_parse(const char *s, int *family, NmInAddr *ret);
char *nm_addr_to_string(int family, const NmInAddr *a);

/* "10.0.0.0/24", "fd00::/64"; a plain address is a host prefix (/32, /128).
 * Returns 0 or -EINVAL; with `error`, the message quotes the value and says what is wrong. */
int nm_prefix_parse(const char *s, NmPrefix *ret, GError **error);
/* "10.0.0.1/24": the address keeps its host bits (an interface address). */
char *nm_prefix_to_string(const NmPrefix *p);
/* True when all host bits are zero. */
bool nm_prefix_is_canonical(const NmPrefix *p);
/* Clears the host bits. */
void nm_prefix_canonicalize(NmPrefix *p);
bool nm_prefix_overlaps(const NmPrefix *a, const NmPrefix *b);
bool nm_prefix_contains(const NmPrefix *p, int family, const NmInAddr *a);
bool nm_prefix_equal(const NmPrefix *a, const NmPrefix *b);
/* Number of host bits usable for allocation: capped at 63 so counts fit in a uint64. */
unsigned nm_prefix_host_bits(const NmPrefix *p);
/* The address `index` positions after the network address (index < 2^host_bits). */
void nm_prefix_nth(const NmPrefix *p, uint64_t index, NmInAddr *ret);
/* The offset of `a` from the network address (only the low host bits). */
uint64_t nm_prefix_index_of(const NmPrefix *p, const NmInAddr *a);

/* Endpoints: "198.18.0.2:51821" or "[fd00::2]:51821". Returns 0 or -EINVAL. */
int nm_endpoint_parse(const char *s, int *family, NmInAddr *addr, uint16_t *port);
char *nm_endpoint_to_string(int family, const NmInAddr *addr, uint16_t port);
