/* libFuzzer target for the STUN Binding response parser and the STUN server name parser (what a
 * STUN server, or anyone who can send UDP to the query's port, and the configuration file hand
 * to netclientd): no crash, no read outside the input, and an address only from a well-formed
 * success response of the transaction asked about. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t txid[STUN_TXID_SIZE] = {};
        int family = AF_UNSPEC, r;
        NmInAddr addr;
        uint16_t port;

        /* The input's own transaction id, so the fuzzer gets past the check; and a fixed one. */
        if (size >= STUN_HEADER_SIZE)
                memcpy(txid, data + 8, STUN_TXID_SIZE);
        r = stun_parse_binding_response(data, size, txid, &family, &addr, &port);
        g_assert(r == 0 || r == -EBADMSG || r == -ESRCH || r == -ENOENT);
        if (r == 0) {
                g_assert(family == AF_INET || family == AF_INET6);
                g_assert(size >= STUN_HEADER_SIZE && data[0] == 0x01 && data[1] == 0x01);
        }
        (void)stun_parse_binding_response(data, size, (const uint8_t[STUN_TXID_SIZE]){0}, NULL, NULL, NULL);

        /* Names: a string of at most 300 bytes. */
        if (size <= 300) {
                g_autofree char *s = g_strndup((const char *)data, size);
                g_autofree char *host = NULL;
                uint16_t p = 0;
                r = stun_server_parse(s, &host, &p, NULL);
                g_assert(r == 0 || r == -EINVAL);
                if (r == 0)
                        g_assert(host && *host && p > 0);
        }
        return 0;
}
