/* libFuzzer target: any bytes as a DNS query must give a bounded answer or none, never a crash; and
 * any bytes as an upstream's answer (dns-reply.c, for forwarding) must be refused or kept, and
 * written again for a client within its limits. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "dns-packet.h"
#include "dns-reply.h"

static DnsZone *zone;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t out[DNS_MAX_TCP];

        if (!zone) {
                NmInAddr a;
                int f;
                zone = dns_zone_new();
                dns_zone_add_domain(zone, "office.nm.internal");
                nm_addr_parse("10.99.0.2", &f, &a);
                dns_zone_add_record(zone, "a.office.nm.internal", f, &a);
                nm_addr_parse("fd00::2", &f, &a);
                dns_zone_add_record(zone, "a.office.nm.internal", f, &a);
                nm_addr_parse("192.168.50.7", &f, &a);
                dns_zone_add_record(zone, "nas.lab.office.nm.internal", f, &a);
        }
        /* Bit 4 of the first byte: the rest is an upstream's answer to a fixed query (id 0x4242),
         * checked, then written for a client over UDP (no EDNS: 512 bytes) and TCP. */
        if (size > 0 && (data[0] & 0x10)) {
                static const uint8_t query[] = {0,   1,   1,   0,   0,   1,   0, 0,   0,   0,
                                                0,   0,   3,   'w', 'w', 'w', 7, 'e', 'x', 'a',
                                                'm', 'p', 'l', 'e', 0,   0,   1, 0,   1};
                DnsQuery q;
                DnsReply *reply = NULL;
                if (dns_query_parse(query, sizeof(query), &q) < 0)
                        __builtin_trap();
                if (dns_reply_parse(data + 1, size - 1, &q, 0x4242, &reply) == 0) {
                        if (reply->len > size - 1 || reply->ttl > DNS_REPLY_MAX_TTL)
                                __builtin_trap();
                        ssize_t u = dns_reply_write(reply, &q, data[0] >> 5, true, out, DNS_EDNS_UDP_SIZE);
                        if (u > DNS_MAX_UDP)
                                __builtin_trap();
                        ssize_t t = dns_reply_write(reply, &q, 0, false, out, DNS_MAX_TCP);
                        if (t >= 0 && (out[0] != 0 || out[1] != 1))
                                __builtin_trap();
                        dns_reply_free(reply);
                }
                return 0;
        }
        /* A query the forwarder would take is also one dns_answer() answers. */
        DnsQuery fq;
        if (dns_query_parse(data, size, &fq) == 0 &&
            dns_answer(zone, data, size, false, out, DNS_MAX_TCP) < 12)
                __builtin_trap();

        /* The first byte picks the transport and an output buffer size, so both the UDP limits
         * (512, EDNS up to 1232) and a small TCP buffer get exercised. */
        bool udp = size > 0 && (data[0] & 1);
        size_t max = size > 0 && (data[0] & 2) ? 64 : (udp ? DNS_EDNS_UDP_SIZE : DNS_MAX_TCP);
        ssize_t r = dns_answer(zone, data, size, udp, out, max);
        if (r > (ssize_t)max || (udp && r > DNS_EDNS_UDP_SIZE))
                __builtin_trap();
        /* An answer echoes the query's id and is marked a response. */
        if (r >= 12 && (out[0] != data[0] || out[1] != data[1] || !(out[2] & 0x80)))
                __builtin_trap();
        return 0;
}
