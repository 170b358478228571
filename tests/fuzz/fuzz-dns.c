/* libFuzzer target: any bytes as a DNS query must give a bounded answer or none, never a crash. */
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
        }
        size_t max = size > 0 ? (data[0] & 1 ? DNS_MAX_UDP : DNS_MAX_TCP) : DNS_MAX_UDP;
        ssize_t r = dns_answer(zone, data, size, out, max);
        if (r > (ssize_t) max)
                __builtin_trap();
        return 0;
}
