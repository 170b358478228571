/* BLAKE2s (RFC 7693), HMAC-BLAKE2s (RFC 2104 over BLAKE2s-256) and the HKDF of the WireGuard
 * paper (§5.4: KDF1, KDF2, KDF3 with HMAC-BLAKE2s), which libsodium does not offer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BLAKE2S_BLOCK_SIZE 64
#define BLAKE2S_HASH_SIZE  32 /* the largest digest, and WireGuard's HASH */
#define BLAKE2S_KEY_SIZE   32 /* the largest key */

typedef struct Blake2s {
        uint32_t h[8];
        uint32_t t[2];
        uint8_t buf[BLAKE2S_BLOCK_SIZE];
        size_t buflen;
        size_t outlen;
} Blake2s;

/* outlen 1-32; key NULL with keylen 0 for an unkeyed hash, else keylen 1-32. */
void blake2s_init(Blake2s *s, size_t outlen, const void *key, size_t keylen);
void blake2s_update(Blake2s *s, const void *in, size_t inlen);
/* Writes outlen bytes and wipes the state. */
void blake2s_final(Blake2s *s, uint8_t *out);
/* All at once. */
void blake2s(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key, size_t keylen);

/* HMAC(key, in) with BLAKE2s-256 as the hash: 32 bytes. */
void hmac_blake2s(uint8_t out[BLAKE2S_HASH_SIZE], const void *key, size_t keylen, const void *in,
                  size_t inlen);

/* WireGuard's KDF_n(key, input): tau0 = HMAC(key, input), tau1 = HMAC(tau0, 0x1),
 * tau_i = HMAC(tau0, tau_{i-1} || i); out[i] = tau_{i+1} for i < n (n 1-3). */
void wg_kdf(uint8_t (*out)[BLAKE2S_HASH_SIZE], unsigned n, const uint8_t key[BLAKE2S_HASH_SIZE],
            const void *input, size_t inlen);
