/* Curve25519 keys (WireGuard and message keys) and their base64/hex text forms. */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "keys.h"
#include "macro.h"

int nm_crypto_init(void)
{
        return sodium_init() < 0 ? -EIO : 0;
}

int nm_key_generate_wg(NmKey *priv, NmKey *pub)
{
        randombytes_buf(priv->b, NM_KEY_LEN);
        /* Clamp as every WireGuard implementation does, so the stored key is canonical. */
        priv->b[0] &= 248;
        priv->b[31] = (priv->b[31] & 127) | 64;
        return nm_key_public_from_private(priv, pub);
}

int nm_key_generate_box(NmKey *priv, NmKey *pub)
{
        return crypto_box_keypair(pub->b, priv->b) == 0 ? 0 : -EIO;
}

int nm_key_public_from_private(const NmKey *priv, NmKey *pub)
{
        return crypto_scalarmult_base(pub->b, priv->b) == 0 ? 0 : -EINVAL;
}

bool nm_key_is_zero(const NmKey *k)
{
        return sodium_is_zero(k->b, NM_KEY_LEN);
}

bool nm_key_equal(const NmKey *a, const NmKey *b)
{
        return sodium_memcmp(a->b, b->b, NM_KEY_LEN) == 0;
}

void nm_key_to_base64(const NmKey *k, char out[NM_KEY_B64_LEN + 1])
{
        sodium_bin2base64(out, NM_KEY_B64_LEN + 1, k->b, NM_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int nm_key_from_base64(const char *s, NmKey *k)
{
        size_t len;
        NmKey tmp;

        if (!s || strlen(s) != NM_KEY_B64_LEN || s[NM_KEY_B64_LEN - 1] != '=')
                return -EINVAL;
        if (sodium_base642bin(tmp.b, sizeof(tmp.b), s, NM_KEY_B64_LEN, NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) < 0 ||
            len != NM_KEY_LEN)
                return -EINVAL;
        *k = tmp;
        sodium_memzero(&tmp, sizeof(tmp));
        return 0;
}

void nm_key_to_hex(const NmKey *k, char out[NM_KEY_HEX_LEN + 1])
{
        sodium_bin2hex(out, NM_KEY_HEX_LEN + 1, k->b, NM_KEY_LEN);
}

int nm_key_from_hex(const char *s, NmKey *k)
{
        size_t len;

        if (!s || strlen(s) != NM_KEY_HEX_LEN)
                return -EINVAL;
        for (size_t i = 0; i < NM_KEY_HEX_LEN; i++)
                if (!g_ascii_isxdigit(s[i]))
                        return -EINVAL;
        if (sodium_hex2bin(k->b, NM_KEY_LEN, s, NM_KEY_HEX_LEN, NULL, &len, NULL) < 0 || len != NM_KEY_LEN)
                return -EINVAL;
        return 0;
}

static char *encode(const void *data, size_t len, int variant)
{
        size_t n = sodium_base64_encoded_len(len, variant);
        char *out = g_malloc(n);
        sodium_bin2base64(out, n, data, len, variant);
        return out;
}

static int decode(const char *s, int variant, guint8 **ret, size_t *ret_len)
{
        size_t slen, len;

        if (!s)
                return -EINVAL;
        slen = strlen(s);
        g_autofree guint8 *buf = g_malloc(slen / 4 * 3 + 3);
        const char *end;
        if (sodium_base642bin(buf, slen / 4 * 3 + 3, s, slen, NULL, &len, &end, variant) < 0 || *end != 0)
                return -EINVAL;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

char *nm_base64url_encode(const void *data, size_t len)
{
        return encode(data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int nm_base64url_decode(const char *s, guint8 **ret, size_t *ret_len)
{
        return decode(s, sodium_base64_VARIANT_URLSAFE_NO_PADDING, ret, ret_len);
}

char *nm_base64_encode(const void *data, size_t len)
{
        return encode(data, len, sodium_base64_VARIANT_ORIGINAL);
}

int nm_base64_decode(const char *s, guint8 **ret, size_t *ret_len)
{
        return decode(s, sodium_base64_VARIANT_ORIGINAL, ret, ret_len);
}

char *nm_random_token(size_t nbytes)
{
        g_autofree guint8 *buf = g_malloc(nbytes);
        randombytes_buf(buf, nbytes);
        char *r = nm_base64url_encode(buf, nbytes);
        sodium_memzero(buf, nbytes);
        return r;
}

char *nm_uuid_new(void)
{
        guint8 u[16];
        randombytes_buf(u, sizeof(u));
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                               u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                               u[13], u[14], u[15]);
}

bool nm_uuid_valid(const char *s)
{
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!g_ascii_isxdigit(s[i]) || g_ascii_isupper(s[i]))
                        return false;
        }
        return true;
}
