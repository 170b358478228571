/* Proves the reading of WireGuard handshake initiations: an initiation that wireguard-go (v0.0.20220316)
 * sent in a test namespace opens to its sender's static key and timestamp; one built here from the
 * paper's construction opens to what it carries; a wrong responder key fails at mac1 (-EPERM) and a
 * changed byte anywhere, with mac1 made right again, fails to authenticate (-EBADMSG); other sizes,
 * types and reserved bytes are refused before any work; and TAI64N labels order by time. */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "blake2s.h"
#include "wg-initiation.h"

/* Captured with `wg set wgcap0 private-key INIT peer RESP_PUB endpoint 127.0.0.1:9999
 * persistent-keepalive 25` on wireguard-go in a network namespace, read by a UDP socket. */
static const char *const captured_hex =
        "0100000033f07dbceac3e5fc702562c0d4430058e0bdf4dee91f53a0ccbe661f8d9fb409d2d4984b6e84c7ea1991"
        "8c2c3deaaaa8cedef3a5a055684aac1eba8454efdb1519d0cfea4cf1013e0077ec7018625773dac6cb835a07ced7"
        "547a11afb99fc860144cd6c7b3ac378e02811d1e7dd45bab9d84ee087a7f42a1e4548e6bed74da41000000000000"
        "00000000000000000000";
#define INIT_PRIV "AAIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eH2A="
#define INIT_PUB  "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw="
#define RESP_PRIV "YGZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg0Q="

static void unhex(const char *hex, uint8_t *out, size_t len)
{
        g_assert_cmpuint(strlen(hex), ==, 2 * len);
        for (size_t i = 0; i < len; i++) {
                unsigned v;
                g_assert_cmpint(sscanf(hex + 2 * i, "%2x", &v), ==, 1);
                out[i] = (uint8_t)v;
        }
}

static NmKey key(const char *b64)
{
        NmKey k;
        g_assert_cmpint(nm_key_from_base64(b64, &k), ==, 0);
        return k;
}

static void responder(WgResponder *r, const char *priv)
{
        NmKey k = key(priv);
        g_assert_cmpint(wg_responder_init(r, &k), ==, 0);
}

static void fix_mac1(const WgResponder *r, uint8_t *msg)
{
        blake2s(msg + WG_MAC1_OFFSET, WG_MAC_SIZE, msg, WG_MAC1_OFFSET, r->mac1_key, sizeof(r->mac1_key));
}

static void hash2(uint8_t out[32], const void *a, size_t alen, const void *b, size_t blen)
{
        Blake2s s;
        blake2s_init(&s, 32, NULL, 0);
        blake2s_update(&s, a, alen);
        blake2s_update(&s, b, blen);
        blake2s_final(&s, out);
}

/* The initiator's side of the paper's §5.4.2, written out here on its own (mac2 zero). */
static void build_initiation(uint8_t msg[WG_INITIATION_SIZE], const NmKey *init_priv, const NmKey *resp_pub,
                             const uint8_t timestamp[WG_TAI64N_SIZE])
{
        static const uint8_t nonce[12] = {};
        uint8_t c[32], h[32], k[2][32], e_priv[32], e_pub[32], dh[32], s_pub[32], mac1_key[32];
        unsigned long long n;

        memset(msg, 0, WG_INITIATION_SIZE);
        msg[0] = 1;
        randombytes_buf(msg + 4, 4);
        blake2s(c, 32, "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", 37, NULL, 0);
        hash2(h, c, 32, "WireGuard v1 zx2c4 Jason@zx2c4.com", 34);
        hash2(h, h, 32, resp_pub->b, 32);
        randombytes_buf(e_priv, 32);
        g_assert_cmpint(crypto_scalarmult_base(e_pub, e_priv), ==, 0);
        wg_kdf(k, 1, c, e_pub, 32);
        memcpy(c, k[0], 32);
        memcpy(msg + 8, e_pub, 32);
        hash2(h, h, 32, e_pub, 32);
        g_assert_cmpint(crypto_scalarmult(dh, e_priv, resp_pub->b), ==, 0);
        wg_kdf(k, 2, c, dh, 32);
        memcpy(c, k[0], 32);
        g_assert_cmpint(crypto_scalarmult_base(s_pub, init_priv->b), ==, 0);
        crypto_aead_chacha20poly1305_ietf_encrypt(msg + 40, &n, s_pub, 32, h, 32, NULL, nonce, k[1]);
        hash2(h, h, 32, msg + 40, 48);
        g_assert_cmpint(crypto_scalarmult(dh, init_priv->b, resp_pub->b), ==, 0);
        wg_kdf(k, 2, c, dh, 32);
        crypto_aead_chacha20poly1305_ietf_encrypt(msg + 88, &n, timestamp, 12, h, 32, NULL, nonce, k[1]);
        hash2(mac1_key, "mac1----", 8, resp_pub->b, 32);
        blake2s(msg + WG_MAC1_OFFSET, WG_MAC_SIZE, msg, WG_MAC1_OFFSET, mac1_key, 32);
}

static void test_captured_from_wireguard_go(void)
{
        uint8_t msg[WG_INITIATION_SIZE], ts[WG_TAI64N_SIZE];
        WgResponder r;
        NmKey sender, want = key(INIT_PUB);

        unhex(captured_hex, msg, sizeof(msg));
        responder(&r, RESP_PRIV);
        g_assert_true(wg_initiation_looks_valid(msg, sizeof(msg)));
        g_assert_true(wg_initiation_mac1_matches(&r, msg, sizeof(msg)));
        g_assert_cmpint(wg_initiation_open(&r, msg, sizeof(msg), &sender, ts), ==, 0);
        g_assert_true(nm_key_equal(&sender, &want));
        /* It was sent on 2026-12-08 (the machine's clock); nanoseconds stay below 10^9. */
        int64_t unix_time = wg_tai64n_unix(ts);
        g_assert_cmpint(unix_time, >, 1767225600); /* 2026-01-01 */
        g_assert_cmpint(unix_time, <, 1830297600); /* 2028-01-01 */
        g_assert_cmpuint((uint32_t)ts[8] << 24 | ts[9] << 16 | ts[10] << 8 | ts[11], <, 1000000000u);
        wg_responder_clear(&r);
}

static void test_built_here(void)
{
        uint8_t msg[WG_INITIATION_SIZE], ts[WG_TAI64N_SIZE], got[WG_TAI64N_SIZE];
        NmKey ipriv = key(INIT_PRIV), ipub = key(INIT_PUB), sender;
        WgResponder r;

        responder(&r, RESP_PRIV);
        for (int i = 0; i < WG_TAI64N_SIZE; i++)
                ts[i] = (uint8_t)(0x40 + i);
        build_initiation(msg, &ipriv, &r.public_key, ts);
        g_assert_cmpint(wg_initiation_open(&r, msg, sizeof(msg), &sender, got), ==, 0);
        g_assert_true(nm_key_equal(&sender, &ipub));
        g_assert_cmpmem(got, sizeof(got), ts, sizeof(ts));
        wg_responder_clear(&r);
}

static void test_wrong_responder(void)
{
        uint8_t msg[WG_INITIATION_SIZE], ts[WG_TAI64N_SIZE];
        WgResponder other;
        NmKey sender;

        unhex(captured_hex, msg, sizeof(msg));
        /* The initiator's key as a responder: a valid key, but not the one mac1 was made for. */
        responder(&other, INIT_PRIV);
        g_assert_false(wg_initiation_mac1_matches(&other, msg, sizeof(msg)));
        g_assert_cmpint(wg_initiation_open(&other, msg, sizeof(msg), &sender, ts), ==, -EPERM);
        wg_responder_clear(&other);
}

static void test_every_byte_counts(void)
{
        uint8_t orig[WG_INITIATION_SIZE], ts[WG_TAI64N_SIZE];
        WgResponder r;
        NmKey sender;

        unhex(captured_hex, orig, sizeof(orig));
        responder(&r, RESP_PRIV);
        /* Type and reserved bytes: refused before any work. Sender index and mac2: not
         * authenticated by the handshake (mac1 covers the index). Everything else: refused. */
        for (size_t i = 0; i < WG_MAC1_OFFSET; i++) {
                uint8_t msg[WG_INITIATION_SIZE];
                memcpy(msg, orig, sizeof(msg));
                msg[i] ^= 0x01;
                int want = i < 4 ? -EBADMSG : -EPERM;
                g_assert_cmpint(wg_initiation_open(&r, msg, sizeof(msg), &sender, ts), ==, want);
                if (i < 8)
                        continue;
                fix_mac1(&r, msg);
                g_assert_cmpint(wg_initiation_open(&r, msg, sizeof(msg), &sender, ts), ==, -EBADMSG);
        }
        for (size_t i = WG_MAC1_OFFSET; i < WG_MAC1_OFFSET + WG_MAC_SIZE; i++) {
                uint8_t msg[WG_INITIATION_SIZE];
                memcpy(msg, orig, sizeof(msg));
                msg[i] ^= 0x80;
                g_assert_cmpint(wg_initiation_open(&r, msg, sizeof(msg), &sender, ts), ==, -EPERM);
        }
        wg_responder_clear(&r);
}

static void test_sizes(void)
{
        uint8_t msg[WG_INITIATION_SIZE + 1] = {}, ts[WG_TAI64N_SIZE];
        WgResponder r;
        NmKey sender;

        unhex(captured_hex, msg, WG_INITIATION_SIZE);
        responder(&r, RESP_PRIV);
        for (size_t len = 0; len <= sizeof(msg); len++)
                if (len != WG_INITIATION_SIZE)
                        g_assert_cmpint(wg_initiation_open(&r, msg, len, &sender, ts), ==, -EBADMSG);
        /* Other message types of the same size. */
        for (int type = 2; type <= 4; type++) {
                msg[0] = (uint8_t)type;
                g_assert_false(wg_initiation_looks_valid(msg, WG_INITIATION_SIZE));
        }
        wg_responder_clear(&r);
}

static void test_tai64n(void)
{
        uint8_t a[WG_TAI64N_SIZE] = {0x40, 0, 0, 0, 0x69, 0, 0, 0, 0, 0, 0, 5};
        uint8_t b[WG_TAI64N_SIZE];
        memcpy(b, a, sizeof(b));
        g_assert_cmpint(wg_tai64n_compare(a, b), ==, 0);
        b[11] = 6; /* a nanosecond later */
        g_assert_cmpint(wg_tai64n_compare(b, a), >, 0);
        b[11] = 0;
        b[7] = 1; /* a second later, fewer nanoseconds */
        g_assert_cmpint(wg_tai64n_compare(b, a), >, 0);
        g_assert_cmpint(wg_tai64n_compare(a, b), <, 0);
        g_assert_cmpint(wg_tai64n_unix(a), ==, (int64_t)0x69000000 - 10);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/wg-initiation/captured-from-wireguard-go", test_captured_from_wireguard_go);
        g_test_add_func("/wg-initiation/built-here", test_built_here);
        g_test_add_func("/wg-initiation/wrong-responder", test_wrong_responder);
        g_test_add_func("/wg-initiation/every-byte-counts", test_every_byte_counts);
        g_test_add_func("/wg-initiation/sizes", test_sizes);
        g_test_add_func("/wg-initiation/tai64n", test_tai64n);
        return g_test_run();
}
