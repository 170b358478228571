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

/* One well-formed standard query, as read by dns_query_parse(): what forwarding needs to ask
 * upstream and to answer the client in its own terms. */
typedef struct DnsQuery {
        uint16_t id;
        bool rd;            /* recursion desired: echoed */
        char name[256];     /* lower-case, dotted, no trailing dot; "" for the root */
        uint8_t qwire[260]; /* the question as asked (name, type, class; case preserved) */
        size_t qwire_len;
        uint16_t qtype, qclass;
        bool edns;
        uint16_t udp_size; /* the client's EDNS size, or 512 */
} DnsQuery;

/* Parses a query that another resolver may answer: a standard query (QR 0, opcode 0) with one
 * question of class IN, no answer or authority records, and no EDNS or EDNS version 0. Returns 0,
 * or -EBADMSG for anything else (which dns_answer() then answers or refuses itself). */
int dns_query_parse(const uint8_t *query, size_t len, DnsQuery *ret);
/* Whether `name` (lower-case) lies in one of the zone's domains: such names are answered here and
 * never forwarded. */
bool dns_zone_covers(const DnsZone *z, const char *name);
/* Writes the query we send upstream for `q`: our id, RD, the question, and an OPT record
 * (DNS_EDNS_UDP_SIZE, no DNSSEC). Returns its length, or -ENOBUFS. */
ssize_t dns_query_write_upstream(const DnsQuery *q, uint16_t id, uint8_t *out, size_t max);
/* The largest answer `q`'s client takes over UDP: 512, or its EDNS size up to DNS_EDNS_UDP_SIZE. */
size_t dns_query_udp_limit(const DnsQuery *q);
/* An answer to `q` without records: its id, RD, RA when `ra`, `rcode`, the question, and an OPT
 * record when the client sent one. Returns its length, or -ENOBUFS. */
ssize_t dns_query_write_empty(const DnsQuery *q, uint8_t rcode, bool ra, uint8_t *out, size_t max);

/* Answers one query. Writes the response to `out` (a buffer of `max` bytes) and returns its
 * length, or a negative errno when no response must be sent (not a query, or too short to carry
 * an id). Over UDP the answer also fits what the client can receive (512 bytes, or its EDNS size
 * up to DNS_EDNS_UDP_SIZE) and is truncated with TC set when the answers do not. An EDNS query
 * gets an OPT record back (version 0; other versions get BADVERS). */
ssize_t dns_answer(const DnsZone *z, const uint8_t *query, size_t len, bool udp, uint8_t *out, size_t max);
