/* Reading WireGuard handshake initiations as their responder: mac1, then the first half of
 * Noise_IKpsk2 (ephemeral, static, timestamp), with BLAKE2s from src/shared and X25519 and
 * ChaCha20-Poly1305 from libsodium. */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "blake2s.h"
#include "wg-initiation.h"

#define CONSTRUCTION "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define IDENTIFIER   "WireGuard v1 zx2c4 Jason@zx2c4.com"
#define LABEL_MAC1   "mac1----"

/* Offsets in the message (the paper's §5.4.2 layout). */
#define OFF_EPHEMERAL  8
#define OFF_STATIC     40
#define STATIC_SIZE    (32 + crypto_aead_chacha20poly1305_IETF_ABYTES)
#define OFF_TIMESTAMP  (OFF_STATIC + STATIC_SIZE)
#define TIMESTAMP_SIZE (WG_TAI64N_SIZE + crypto_aead_chacha20poly1305_IETF_ABYTES)

static void hash2(uint8_t out[32], const void *a, size_t alen, const void *b, size_t blen)
{
        Blake2s s;
        blake2s_init(&s, 32, NULL, 0);
        blake2s_update(&s, a, alen);
        blake2s_update(&s, b, blen);
        blake2s_final(&s, out);
}

int wg_responder_init(WgResponder *r, const NmKey *private_key)
{
        memset(r, 0, sizeof(*r));
        r->private_key = *private_key;
        if (crypto_scalarmult_base(r->public_key.b, r->private_key.b) != 0 ||
            nm_key_is_zero(&r->public_key)) {
                wg_responder_clear(r);
                return -EINVAL;
        }
        hash2(r->mac1_key, LABEL_MAC1, strlen(LABEL_MAC1), r->public_key.b, NM_KEY_LEN);
        blake2s(r->chain, 32, CONSTRUCTION, strlen(CONSTRUCTION), NULL, 0);
        hash2(r->hash, r->chain, 32, IDENTIFIER, strlen(IDENTIFIER));
        hash2(r->hash, r->hash, 32, r->public_key.b, NM_KEY_LEN);
        return 0;
}

void wg_responder_clear(WgResponder *r)
{
        sodium_memzero(r, sizeof(*r));
}

bool wg_initiation_looks_valid(const uint8_t *msg, size_t len)
{
        return len == WG_INITIATION_SIZE && msg[0] == WG_MSG_INITIATION && msg[1] == 0 && msg[2] == 0 &&
               msg[3] == 0;
}

bool wg_initiation_mac1_matches(const WgResponder *r, const uint8_t *msg, size_t len)
{
        uint8_t mac[WG_MAC_SIZE];

        if (!wg_initiation_looks_valid(msg, len))
                return false;
        blake2s(mac, sizeof(mac), msg, WG_MAC1_OFFSET, r->mac1_key, sizeof(r->mac1_key));
        return sodium_memcmp(mac, msg + WG_MAC1_OFFSET, sizeof(mac)) == 0;
}

/* AEAD(key, 0, ciphertext, ad): the counter nonce is zero for both fields of an initiation. */
static int aead_open(uint8_t *out, const uint8_t *c, size_t clen, const uint8_t key[32],
                     const uint8_t ad[32])
{
        static const uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = {};
        unsigned long long n;
        return crypto_aead_chacha20poly1305_ietf_decrypt(out, &n, NULL, c, clen, ad, 32, nonce, key) == 0
                       ? 0
                       : -EBADMSG;
}

int wg_initiation_open(const WgResponder *r, const uint8_t *msg, size_t len, NmKey *ret_static,
                       uint8_t ret_timestamp[WG_TAI64N_SIZE])
{
        uint8_t chain[32], hash[32], dh[32], kdf[2][32], initiator[32], timestamp[WG_TAI64N_SIZE];
        int ret = -EBADMSG;

        if (!wg_initiation_looks_valid(msg, len))
                return -EBADMSG;
        if (!wg_initiation_mac1_matches(r, msg, len))
                return -EPERM;

        const uint8_t *ephemeral = msg + OFF_EPHEMERAL;
        /* C := KDF1(C, E_pub), H := HASH(H || E_pub) */
        wg_kdf(kdf, 1, r->chain, ephemeral, 32);
        memcpy(chain, kdf[0], 32);
        hash2(hash, r->hash, 32, ephemeral, 32);
        /* (C, k) := KDF2(C, DH(S_priv_r, E_pub)); static := AEAD-open(k, 0, msg.static, H) */
        if (crypto_scalarmult(dh, r->private_key.b, ephemeral) != 0)
                goto out;
        wg_kdf(kdf, 2, chain, dh, 32);
        memcpy(chain, kdf[0], 32);
        if (aead_open(initiator, msg + OFF_STATIC, STATIC_SIZE, kdf[1], hash) < 0)
                goto out;
        hash2(hash, hash, 32, msg + OFF_STATIC, STATIC_SIZE);
        /* (C, k) := KDF2(C, DH(S_priv_r, S_pub_i)); timestamp := AEAD-open(k, 0, msg.timestamp, H) */
        if (crypto_scalarmult(dh, r->private_key.b, initiator) != 0)
                goto out;
        wg_kdf(kdf, 2, chain, dh, 32);
        if (aead_open(timestamp, msg + OFF_TIMESTAMP, TIMESTAMP_SIZE, kdf[1], hash) < 0)
                goto out;

        memcpy(ret_static->b, initiator, 32);
        memcpy(ret_timestamp, timestamp, WG_TAI64N_SIZE);
        ret = 0;
out:
        sodium_memzero(chain, sizeof(chain));
        sodium_memzero(hash, sizeof(hash));
        sodium_memzero(dh, sizeof(dh));
        sodium_memzero(kdf, sizeof(kdf));
        return ret;
}

int wg_tai64n_compare(const uint8_t a[WG_TAI64N_SIZE], const uint8_t b[WG_TAI64N_SIZE])
{
        return memcmp(a, b, WG_TAI64N_SIZE);
}

int64_t wg_tai64n_unix(const uint8_t t[WG_TAI64N_SIZE])
{
        uint64_t s = 0;
        for (int i = 0; i < 8; i++)
                s = s << 8 | t[i];
        return (int64_t)(s - (UINT64_C(1) << 62) - 10);
}
