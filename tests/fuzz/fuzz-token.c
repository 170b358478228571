/* libFuzzer target for enrollment tokens (src/shared/token.c, docs/protocol.md §2.5): what a user
 * pastes into "netclient join" and what netmakerd reads at registration. Any string is refused or
 * decoded into a token that keeps every rule of §2.5, and that token written again (version 2)
 * decodes to the same. An odd first byte makes the rest the token's JSON, encoded here, so the
 * fuzzer reaches past the base64url layer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "macro.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(GError) e = NULL;
        g_auto(NmToken) t = {};
        g_autofree char *text = NULL;

        if (size < 1 || size > 4 * NM_TOKEN_MAX_LEN)
                return 0;
        if (data[0] & 1)
                text = nm_base64url_encode(data + 1, size - 1);
        else
                text = g_strndup((const char *)data + 1, size - 1);

        if (!nm_token_decode(text, &t, &e)) {
                g_assert(e && e->message && *e->message);
                g_assert(!t.api && !t.value);
                return 0;
        }
        g_assert(!e);
        g_assert(strlen(text) <= NM_TOKEN_MAX_LEN);
        g_assert(t.version == 1 || t.version == 2);
        g_assert(!t.has_pin || t.version == 2);
        g_assert(nm_api_url_valid(t.api) && !g_str_has_suffix(t.api, "/"));
        g_assert(nm_key_value_valid(t.value));

        g_autofree char *again = nm_token_encode(t.api, t.value, &t.server_key, t.has_pin ? &t.pin : NULL);
        g_auto(NmToken) u = {};
        if (!nm_token_decode(again, &u, &e))
                g_error("a decoded token does not decode again once written: %s", e->message);
        g_assert(u.version == 2 && streq0(u.api, t.api) && streq0(u.value, t.value));
        g_assert(nm_key_equal(&u.server_key, &t.server_key));
        g_assert(u.has_pin == t.has_pin && (!t.has_pin || nm_tls_pin_equal(&u.pin, &t.pin)));
        return 0;
}
