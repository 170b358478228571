/* The mesh DNS responder's packet logic: parse one query, answer A/AAAA for names in our zones,
 * refuse everything else cleanly. Pure functions over byte buffers, so the fuzzer and the unit
 * tests drive exactly what the sockets do. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "cidr.h"

#define DNS_MAX_UDP 512
#define DNS_MAX_TCP 65535
/* The largest UDP answer we send to an EDNS client (the DNS flag day 2020 value: no IP
 * fragmentation on any usual path, and well below a mesh MTU of 1280). */
#define DNS_EDNS_UDP_SIZE 1232
/* Short: names change when nodes come and go, and the responder is on the same host or one hop
 * away through the tunnel. Negative answers (with the zone's SOA) are cached as long. */
#define DNS_TTL 5

enum {
        DNS_RCODE_NOERROR = 0,
        DNS_RCODE_FORMERR = 1,
        DNS_RCODE_SERVFAIL = 2,
        DNS_RCODE_NXDOMAIN = 3,
        DNS_RCODE_NOTIMP = 4,
        DNS_RCODE_REFUSED = 5,
        DNS_RCODE_BADVERS = 16, /* EDNS: carried partly in the OPT record */
};

enum {
        DNS_TYPE_A = 1,
        DNS_TYPE_SOA = 6,
        DNS_TYPE_AAAA = 28,
        DNS_TYPE_OPT = 41,
        DNS_TYPE_ANY = 255,
        DNS_CLASS_IN = 1,
};

/* The names we answer for: whole zones (e.g. "office.nm.internal") and the records in them. */
typedef struct DnsZone DnsZone;

DnsZone *dns_zone_new(void);
void dns_zone_free(DnsZone *z);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DnsZone, dns_zone_free)
/* Names are case-insensitive, without a trailing dot. Returns 0 or -EINVAL for a bad name. */
int dns_zone_add_domain(DnsZone *z, const char *domain);
int dns_zone_add_record(DnsZone *z, const char *name, int family, const NmInAddr *addr);
void dns_zone_clear(DnsZone *z);
guint dns_zone_size(const DnsZone *z);

/* Answers one query. Writes the response to `out` (a buffer of `max` bytes) and returns its
 * length, or a negative errno when no response must be sent (not a query, or too short to carry
 * an id). Over UDP the answer also fits what the client can receive (512 bytes, or its EDNS size
 * up to DNS_EDNS_UDP_SIZE) and is truncated with TC set when the answers do not. An EDNS query
 * gets an OPT record back (version 0; other versions get BADVERS). */
ssize_t dns_answer(const DnsZone *z, const uint8_t *query, size_t len, bool udp, uint8_t *out, size_t max);
