/* libFuzzer target for what netmakerd's UDP port reads from anyone (src/netmakerd/observer.c): a
 * WireGuard handshake initiation (the shape check, mac1, and opening it with a fixed responder key:
 * the one of test-wg-initiation.c, so the seed initiation captured from wireguard-go gets through to
 * the decryption) and a STUN Binding request with the answer built from it. No crash, no read
 * outside the input, an answer never larger than the request it would be sent for when netmakerd
 * sends it, and an initiation opens only when it looks like one and its mac1 matches. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "keys.h"
#include "stun-codec.h"
#include "wg-initiation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static WgResponder responder;
static bool initialised;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!initialised) {
                NmKey k;
                g_assert(nm_crypto_init() == 0);
                g_assert(nm_key_from_base64("YGZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg0Q=", &k) == 0);
                g_assert(wg_responder_init(&responder, &k) == 0);
                initialised = true;
        }

        NmKey sender;
        uint8_t ts[WG_TAI64N_SIZE];
        bool shaped = wg_initiation_looks_valid(data, size);
        bool mac1 = wg_initiation_mac1_matches(&responder, data, size);
        int r = wg_initiation_open(&responder, data, size, &sender, ts);
        g_assert(r == 0 || r == -EBADMSG || r == -EPERM);
        g_assert(!mac1 || shaped);
        if (r == 0)
                g_assert(shaped && mac1);
        if (r == -EPERM)
                g_assert(shaped && !mac1);

        uint8_t txid[STUN_TXID_SIZE], out[STUN_RESPONSE_MAX];
        if (stun_parse_binding_request(data, size, txid) == 0) {
                g_assert(size >= STUN_HEADER_SIZE && size % 4 == 0);
                NmInAddr a = {};
                size_t n4 = stun_binding_success(out, sizeof(out), txid, AF_INET, &a, 1);
                size_t n6 = stun_binding_success(out, sizeof(out), txid, AF_INET6, &a, 1);
                g_assert(n4 == 32 && n6 == 44);
                g_assert(memcmp(out + 8, data + 8, STUN_TXID_SIZE) == 0);
        }
        return 0;
}
