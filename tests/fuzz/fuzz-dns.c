/* libFuzzer target: any bytes as a DNS query must give a bounded answer or none, never a crash. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "dns-packet.h"

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
