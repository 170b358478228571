/* Sealed messages between the server and hosts (docs/protocol.md §3.2). */
#include <string.h>
#include <sodium.h>

#include "macro.h"
#include "nm-error.h"
#include "seal.h"

GBytes *nm_seal(const void *data, size_t len, const NmKey *recipient, const NmKey *sender_secret)
{
        size_t n = len + NM_SEAL_OVERHEAD;
        guint8 *out = g_malloc(n);

        out[0] = NM_SEAL_VERSION;
        randombytes_buf(out + 1, crypto_box_NONCEBYTES);
        if (crypto_box_easy(out + 1 + crypto_box_NONCEBYTES, data, len, out + 1, recipient->b,
                            sender_secret->b) != 0) {
                g_free(out);
                return NULL;
        }
        return g_bytes_new_take(out, n);
}

GBytes *nm_open(const void *data, size_t len, const NmKey *sender, const NmKey *recipient_secret,
                GError **error)
{
        const guint8 *in = data;

        if (len < NM_SEAL_OVERHEAD) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Sealed message too short (%zu bytes)", len);
                return NULL;
        }
        if (in[0] != NM_SEAL_VERSION) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Sealed message of unknown version %u", in[0]);
                return NULL;
        }
        size_t plen = len - NM_SEAL_OVERHEAD;
        if (plen > NM_SEAL_MAX_PLAINTEXT) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Sealed message too large (%zu bytes)", len);
                return NULL;
        }
        guint8 *out = g_malloc(plen + 1);
        if (crypto_box_open_easy(out, in + 1 + crypto_box_NONCEBYTES, len - 1 - crypto_box_NONCEBYTES,
                                 in + 1, sender->b, recipient_secret->b) != 0) {
                g_free(out);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Sealed message does not authenticate (wrong key or tampered)");
                return NULL;
        }
        out[plen] = 0;
        /* Keep the NUL terminator in the allocation but not in the size. */
        return g_bytes_new_with_free_func(out, plen, g_free, out);
}
