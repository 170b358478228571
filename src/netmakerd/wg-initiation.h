/* WireGuard handshake initiations (message type 1) read by a responder that never answers: check
 * mac1 against the responder's public key, then open the initiator's static public key and its
 * TAI64N timestamp as Noise_IKpsk2 prescribes (the WireGuard paper, §5.4.2). netmakerd's endpoint
 * observer uses it to learn which host sent a packet from which address and port. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define WG_MSG_INITIATION  1
#define WG_INITIATION_SIZE 148
#define WG_TAI64N_SIZE     12
#define WG_MAC1_OFFSET     116 /* mac1 covers the bytes before it */
#define WG_MAC_SIZE        16

typedef struct WgResponder {
        NmKey private_key; /* a secret: wiped by wg_responder_clear() */
        NmKey public_key;
        uint8_t mac1_key[32]; /* HASH("mac1----" || public key) */
        uint8_t chain[32];    /* C after the construction, before the ephemeral */
        uint8_t hash[32];     /* H after the responder's public key */
} WgResponder;

/* Precomputes what every initiation to this key shares. Returns 0 or -EINVAL (not a usable key). */
int wg_responder_init(WgResponder *r, const NmKey *private_key);
void wg_responder_clear(WgResponder *r);

/* The size and first four bytes of a handshake initiation (type 1, three zero bytes). */
bool wg_initiation_looks_valid(const uint8_t *msg, size_t len);
/* Whether mac1 was made for this responder's public key: cheap (one keyed BLAKE2s), so it picks
 * the responder among several before any Diffie-Hellman. */
bool wg_initiation_mac1_matches(const WgResponder *r, const uint8_t *msg, size_t len);
/* Checks mac1, then decrypts: the initiator's static public key and its TAI64N timestamp.
 * Returns 0; -EBADMSG when it is no initiation, -EPERM when mac1 is not for this responder,
 * -EBADMSG when a Diffie-Hellman result is zero or the authentication of a field fails. Reads
 * exactly WG_INITIATION_SIZE bytes; work is bounded (two X25519, two AEAD opens, a few hashes). */
int wg_initiation_open(const WgResponder *r, const uint8_t *msg, size_t len, NmKey *ret_static,
                       uint8_t ret_timestamp[WG_TAI64N_SIZE]);

/* TAI64N labels compare as big-endian byte strings: > 0 when a is later than b. */
int wg_tai64n_compare(const uint8_t a[WG_TAI64N_SIZE], const uint8_t b[WG_TAI64N_SIZE]);
/* The Unix time (seconds) of a TAI64N label (WireGuard writes 2^62 + 10 + Unix seconds). */
int64_t wg_tai64n_unix(const uint8_t t[WG_TAI64N_SIZE]);
