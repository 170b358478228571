/* Enrollment tokens (docs/protocol.md §2.5). */
#include <string.h>
#include <sodium.h>

#include "json-util.h"
#include "macro.h"
#include "nm-error.h"
#include "token.h"

void nm_token_clear(NmToken *t)
{
        g_clear_pointer(&t->api, g_free);
        g_clear_pointer(&t->value, nm_free_secret);
        sodium_memzero(&t->server_key, sizeof(t->server_key));
}

char *nm_token_encode(const char *api, const char *value, const NmKey *server_key, const NmTlsPin *pin)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        char spk[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(server_key, spk);
        json_builder_begin_object(b);
        nm_json_add_int(b, "v", NM_TOKEN_VERSION);
        nm_json_add_string(b, "api", api);
        nm_json_add_string(b, "key", value);
        nm_json_add_string(b, "spk", spk);
        if (pin) {
                g_autofree char *text = nm_tls_pin_format(pin);
                nm_json_add_string(b, "pin", text);
        }
        json_builder_end_object(b);
        _cleanup_secret_ char *json = nm_json_builder_to_string(b);
        return nm_base64url_encode(json, strlen(json));
}

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

char *nm_key_value_new(void)
{
        guint8 raw[NM_KEY_VALUE_LEN];
        char *v = g_malloc(NM_KEY_VALUE_LEN + 1);

        randombytes_buf(raw, sizeof(raw));
        for (int i = 0; i < NM_KEY_VALUE_LEN; i++)
                v[i] = base32[raw[i] & 31];
        v[NM_KEY_VALUE_LEN] = 0;
        sodium_memzero(raw, sizeof(raw));
        return v;
}

bool nm_key_value_valid(const char *v)
{
        if (!v || strlen(v) != NM_KEY_VALUE_LEN)
                return false;
        for (const char *c = v; *c; c++)
                if (!strchr(base32, *c))
                        return false;
        return true;
}

bool nm_api_url_valid(const char *url)
{
        const char *rest;

        if (!url || strlen(url) > 512)
                return false;
        if (g_str_has_prefix(url, "http://"))
                rest = url + 7;
        else if (g_str_has_prefix(url, "https://"))
                rest = url + 8;
        else
                return false;
        if (!*rest || *rest == '/' || *rest == ':')
                return false;
        for (const char *c = rest; *c; c++) {
                if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || strchr("@?#\\\"'<>", *c))
                        return false;
        }
        return true;
}

bool nm_token_decode(const char *token, NmToken *ret, GError **error)
{
        g_autofree guint8 *raw = NULL;
        size_t len;
        GError *e = NULL;

        if (!token || !*token) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid enrollment token: it is empty");
                return false;
        }
        if (strlen(token) > NM_TOKEN_MAX_LEN) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid enrollment token: %zu characters, at most %d are accepted",
                            strlen(token), NM_TOKEN_MAX_LEN);
                return false;
        }
        for (const char *c = token; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_') {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid enrollment token: character %zu is not base64url",
                                    (size_t)(c - token));
                        return false;
                }
        if (nm_base64url_decode(token, &raw, &len) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid enrollment token: not valid base64url");
                return false;
        }
        g_autoptr(JsonObject) o = nm_json_parse_object((const char *)raw, (gssize)len, &e);
        sodium_memzero(raw, len);
        if (!o) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid enrollment token: %s",
                            e->message);
                g_error_free(e);
                return false;
        }
        static const char *const members_v1[] = {"v", "api", "key", "spk", NULL};
        static const char *const members_v2[] = {"v", "api", "key", "spk", "pin", NULL};
        gint64 v = 0;
        const char *api = NULL, *key = NULL, *spk = NULL, *pin = NULL;
        if (!nm_json_get_int(o, "v", true, 0, G_MAXINT32, &v, &e)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid enrollment token: %s",
                            e->message);
                g_error_free(e);
                return false;
        }
        if (v != 1 && v != 2) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Unsupported enrollment token version %" G_GINT64_FORMAT
                            " (this client knows versions 1 and 2)",
                            v);
                return false;
        }
        if (!nm_json_check_members(o, "the enrollment token", v == 1 ? members_v1 : members_v2, &e) ||
            !nm_json_get_string(o, "pin", false, &pin, &e) ||
            !nm_json_get_string(o, "api", true, &api, &e) || !nm_json_get_string(o, "key", true, &key, &e) ||
            !nm_json_get_string(o, "spk", true, &spk, &e)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid enrollment token: %s",
                            e->message);
                g_error_free(e);
                return false;
        }
        if (!nm_api_url_valid(api)) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Invalid enrollment token: the server address is not an http:// or https:// URL");
                return false;
        }
        if (!nm_key_value_valid(key)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid enrollment token: the key is not 32 characters of A-Z and 2-7");
                return false;
        }
        NmToken t = {.version = (int)v};
        if (pin) {
                if (!nm_tls_pin_parse(pin, &t.pin)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid enrollment token: the server's pin is not \"sha256//\" and 32 "
                                    "bytes of "
                                    "base64");
                        return false;
                }
                t.has_pin = true;
        }
        if (nm_key_from_base64(spk, &t.server_key) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid enrollment token: the server key is not 32 bytes of base64");
                return false;
        }
        t.api = g_strdup(api);
        size_t l = strlen(t.api);
        while (l > 0 && t.api[l - 1] == '/')
                t.api[--l] = 0;
        t.value = g_strdup(key);
        *ret = t;
        return true;
}
