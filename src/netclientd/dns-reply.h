/* Answers from upstream resolvers, as the forwarding responder keeps them: checked against the
 * question we asked, their TTLs found, their OPT record taken out, and written again for each client
 * that asks (its id, its question's case, TTLs aged, its own EDNS and UDP size). Pure functions over
 * byte buffers, so the fuzzer and the unit tests drive exactly what the forwarder does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "dns-packet.h"

/* How long any answer is kept at most, whatever its TTLs say. */
#define DNS_REPLY_MAX_TTL 3600

typedef struct DnsReply {
        uint8_t *msg; /* header (id 0, AA clear), question, records; without the OPT record */
        size_t len;
        GArray *ttls;   /* of uint16_t: offsets of every record's TTL in msg */
        uint8_t rcode;  /* NOERROR, NXDOMAIN, SERVFAIL, ... (the header's four bits) */
        bool truncated; /* TC: the rest is to be asked over TCP */
        uint32_t ttl;   /* how long it may be cached (0: not at all), DNS_REPLY_MAX_TTL at most */
} DnsReply;

void dns_reply_free(DnsReply *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DnsReply, dns_reply_free)

/* Reads an upstream's answer to the query `q` we sent with `id`. -EBADMSG when it is not that
 * answer (another id, not a response, another question, records that run past the end, more than
 * one OPT record); -EPROTO for an EDNS error (an extended rcode). Trailing bytes are dropped.
 *
 * Cached for the smallest TTL of its answer and authority records; a negative answer (NXDOMAIN,
 * or NOERROR without answers) for its SOA's TTL or MINIMUM, whichever is smaller (RFC 2308), and
 * not at all without an SOA; a truncated answer or any other rcode never. */
int dns_reply_parse(const uint8_t *answer, size_t len, const DnsQuery *q, uint16_t id, DnsReply **ret);

/* Writes `r` as the answer to the client's query `q`, `age` seconds after it was received: the
 * client's id, RD and question (its case), every TTL less `age` (never below 0), and an OPT record
 * when the client sent one. Over UDP an answer larger than the client takes becomes an empty one
 * with TC set, so the client asks again over TCP. Returns the length, or -ENOBUFS. */
ssize_t dns_reply_write(const DnsReply *r, const DnsQuery *q, uint32_t age, bool udp, uint8_t *out,
                        size_t max);
