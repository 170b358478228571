/* BLAKE2s as RFC 7693 §3 specifies it (little-endian words, 10 rounds), with HMAC and WireGuard's
 * KDF on top. Used for WireGuard handshake messages (netmakerd's endpoint observer). */
#include <stdbool.h>
#include <string.h>
#include <sodium.h>

#include "blake2s.h"

static const uint32_t iv[8] = {
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

static const uint8_t sigma[10][16] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
        {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
        {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
        {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
        {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
        {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
        {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
        {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
        {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static uint32_t load32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint32_t rotr32(uint32_t x, unsigned n)
{
        return x >> n | x << (32 - n);
}

#define G(a, b, c, d, x, y)                                                                                 \
        do {                                                                                                \
                v[a] = v[a] + v[b] + (x);                                                                   \
                v[d] = rotr32(v[d] ^ v[a], 16);                                                             \
                v[c] = v[c] + v[d];                                                                         \
                v[b] = rotr32(v[b] ^ v[c], 12);                                                             \
                v[a] = v[a] + v[b] + (y);                                                                   \
                v[d] = rotr32(v[d] ^ v[a], 8);                                                              \
                v[c] = v[c] + v[d];                                                                         \
                v[b] = rotr32(v[b] ^ v[c], 7);                                                              \
        } while (0)

static void compress(Blake2s *s, const uint8_t block[BLAKE2S_BLOCK_SIZE], bool last)
{
        uint32_t m[16], v[16];

        for (int i = 0; i < 16; i++)
                m[i] = load32(block + 4 * i);
        for (int i = 0; i < 8; i++) {
                v[i] = s->h[i];
                v[i + 8] = iv[i];
        }
        v[12] ^= s->t[0];
        v[13] ^= s->t[1];
        if (last)
                v[14] = ~v[14];
        for (int r = 0; r < 10; r++) {
                const uint8_t *sg = sigma[r];
                G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
                G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
                G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
                G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
                G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
                G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
                G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
                G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
        }
        for (int i = 0; i < 8; i++)
                s->h[i] ^= v[i] ^ v[i + 8];
        sodium_memzero(m, sizeof(m));
        sodium_memzero(v, sizeof(v));
}

static void increment(Blake2s *s, uint32_t n)
{
        s->t[0] += n;
        if (s->t[0] < n)
                s->t[1]++;
}

void blake2s_init(Blake2s *s, size_t outlen, const void *key, size_t keylen)
{
        memset(s, 0, sizeof(*s));
        memcpy(s->h, iv, sizeof(iv));
        /* Parameter block: digest length, key length, fanout 1, depth 1. */
        s->h[0] ^= 0x01010000u ^ (uint32_t)keylen << 8 ^ (uint32_t)outlen;
        s->outlen = outlen;
        if (keylen > 0) {
                /* The key, padded to a block, is the first block. */
                memcpy(s->buf, key, keylen);
                s->buflen = BLAKE2S_BLOCK_SIZE;
        }
}

void blake2s_update(Blake2s *s, const void *in, size_t inlen)
{
        const uint8_t *p = in;

        while (inlen > 0) {
                /* A full buffer is compressed only when more input follows: the last block is
                 * compressed by blake2s_final() with the final flag. */
                if (s->buflen == BLAKE2S_BLOCK_SIZE) {
                        increment(s, BLAKE2S_BLOCK_SIZE);
                        compress(s, s->buf, false);
                        s->buflen = 0;
                }
                size_t n = BLAKE2S_BLOCK_SIZE - s->buflen;
                if (n > inlen)
                        n = inlen;
                memcpy(s->buf + s->buflen, p, n);
                s->buflen += n;
                p += n;
                inlen -= n;
        }
}

void blake2s_final(Blake2s *s, uint8_t *out)
{
        uint8_t full[BLAKE2S_HASH_SIZE];

        increment(s, (uint32_t)s->buflen);
        memset(s->buf + s->buflen, 0, BLAKE2S_BLOCK_SIZE - s->buflen);
        compress(s, s->buf, true);
        for (int i = 0; i < 8; i++)
                store32(full + 4 * i, s->h[i]);
        memcpy(out, full, s->outlen);
        sodium_memzero(full, sizeof(full));
        sodium_memzero(s, sizeof(*s));
}

void blake2s(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key, size_t keylen)
{
        Blake2s s;
        blake2s_init(&s, outlen, key, keylen);
        blake2s_update(&s, in, inlen);
        blake2s_final(&s, out);
}

void hmac_blake2s(uint8_t out[BLAKE2S_HASH_SIZE], const void *key, size_t keylen, const void *in,
                  size_t inlen)
{
        uint8_t k[BLAKE2S_BLOCK_SIZE] = {}, pad[BLAKE2S_BLOCK_SIZE], inner[BLAKE2S_HASH_SIZE];
        Blake2s s;

        /* Keys longer than a block are hashed first (RFC 2104 §2). */
        if (keylen > BLAKE2S_BLOCK_SIZE)
                blake2s(k, BLAKE2S_HASH_SIZE, key, keylen, NULL, 0);
        else if (keylen > 0)
                memcpy(k, key, keylen);

        for (int i = 0; i < BLAKE2S_BLOCK_SIZE; i++)
                pad[i] = k[i] ^ 0x36;
        blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
        blake2s_update(&s, pad, sizeof(pad));
        blake2s_update(&s, in, inlen);
        blake2s_final(&s, inner);

        for (int i = 0; i < BLAKE2S_BLOCK_SIZE; i++)
                pad[i] = k[i] ^ 0x5c;
        blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
        blake2s_update(&s, pad, sizeof(pad));
        blake2s_update(&s, inner, sizeof(inner));
        blake2s_final(&s, out);

        sodium_memzero(k, sizeof(k));
        sodium_memzero(pad, sizeof(pad));
        sodium_memzero(inner, sizeof(inner));
}

void wg_kdf(uint8_t (*out)[BLAKE2S_HASH_SIZE], unsigned n, const uint8_t key[BLAKE2S_HASH_SIZE],
            const void *input, size_t inlen)
{
        uint8_t tau0[BLAKE2S_HASH_SIZE], buf[BLAKE2S_HASH_SIZE + 1];

        hmac_blake2s(tau0, key, BLAKE2S_HASH_SIZE, input, inlen);
        buf[0] = 1;
        hmac_blake2s(out[0], tau0, sizeof(tau0), buf, 1);
        for (unsigned i = 1; i < n && i < 3; i++) {
                memcpy(buf, out[i - 1], BLAKE2S_HASH_SIZE);
                buf[BLAKE2S_HASH_SIZE] = (uint8_t)(i + 1);
                hmac_blake2s(out[i], tau0, sizeof(tau0), buf, sizeof(buf));
        }
        sodium_memzero(tau0, sizeof(tau0));
        sodium_memzero(buf, sizeof(buf));
}
