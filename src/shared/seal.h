/* Sealed messages between the server and hosts: version byte, nonce, crypto_box
 * (docs/protocol.md §3.2). */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include "keys.h"

#define NM_SEAL_VERSION       1
#define NM_SEAL_OVERHEAD      (1 + 24 + 16)
#define NM_SEAL_MAX_PLAINTEXT (4u * 1024 * 1024)

/* Seals `len` bytes for `recipient` with `sender_secret`. Returns a new buffer of len + overhead. */
GBytes *nm_seal(const void *data, size_t len, const NmKey *recipient, const NmKey *sender_secret);
/* Opens a sealed message from `sender`; NULL with a GError (NM_ERROR_INVALID_ARGUMENT) when the
 * message is too short, of another version, too large, or does not authenticate. The returned
 * plaintext is NUL-terminated (not counted in its size). */
GBytes *nm_open(const void *data, size_t len, const NmKey *sender, const NmKey *recipient_secret,
                GError **error);
