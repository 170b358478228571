/* Curve25519 keys (WireGuard and message keys) and their base64/hex text forms. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define NM_KEY_LEN     32
#define NM_KEY_B64_LEN 44 /* 43 characters + one '=' */
#define NM_KEY_HEX_LEN 64

typedef struct NmKey {
        uint8_t b[NM_KEY_LEN];
} NmKey;

/* Must be called once before any crypto; returns 0 or -EIO. Safe to call repeatedly. */
int nm_crypto_init(void);

/* A WireGuard key pair: a clamped random private key and its public key. */
int nm_key_generate_wg(NmKey *priv, NmKey *pub);
/* A crypto_box key pair for sealed messages. */
int nm_key_generate_box(NmKey *priv, NmKey *pub);
/* The public key for a WireGuard private key. */
int nm_key_public_from_private(const NmKey *priv, NmKey *pub);

bool nm_key_is_zero(const NmKey *k);
bool nm_key_equal(const NmKey *a, const NmKey *b);

/* Standard base64 with padding, 44 characters + NUL. */
void nm_key_to_base64(const NmKey *k, char out[NM_KEY_B64_LEN + 1]);
/* Strict: exactly 44 characters of standard base64 encoding 32 bytes. Returns 0 or -EINVAL. */
int nm_key_from_base64(const char *s, NmKey *k);
void nm_key_to_hex(const NmKey *k, char out[NM_KEY_HEX_LEN + 1]);
/* Exactly 64 hex digits (either case). Returns 0 or -EINVAL. */
int nm_key_from_hex(const char *s, NmKey *k);

/* Random bytes as base64url without padding (for secrets and credentials); g_free() the result. */
char *nm_random_token(size_t nbytes);
/* A random RFC 4122 version 4 UUID string; g_free() the result. */
char *nm_uuid_new(void);
bool nm_uuid_valid(const char *s);

/* base64url without padding. */
char *nm_base64url_encode(const void *data, size_t len);
/* Strict base64url without padding; refuses other characters. Returns 0 or -EINVAL. */
int nm_base64url_decode(const char *s, guint8 **ret, size_t *ret_len);
char *nm_base64_encode(const void *data, size_t len);
int nm_base64_decode(const char *s, guint8 **ret, size_t *ret_len);
