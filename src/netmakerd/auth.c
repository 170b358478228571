/* Credentials of the REST API: user tokens, password hashes, host credentials, the master key. */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "auth.h"
#include "json-util.h"
#include "keys.h"
#include "macro.h"
#include "names.h"

void user_claims_clear(UserClaims *c)
{
        g_clear_pointer(&c->sub, g_free);
        g_clear_pointer(&c->role, g_free);
        c->iat = c->exp = 0;
}

static char *token_mac(const uint8_t secret[AUTH_SECRET_LEN], const char *signed_part)
{
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;

        crypto_auth_hmacsha256_init(&st, secret, AUTH_SECRET_LEN);
        crypto_auth_hmacsha256_update(&st, (const uint8_t *)signed_part, strlen(signed_part));
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_memzero(&st, sizeof(st));
        return nm_base64url_encode(mac, sizeof(mac));
}

char *auth_user_token_new(const uint8_t secret[AUTH_SECRET_LEN], const char *username, const char *role,
                          gint64 now, gint64 lifetime)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_string(b, "sub", username);
        nm_json_add_string(b, "role", role);
        nm_json_add_int(b, "iat", now);
        nm_json_add_int(b, "exp", now + lifetime);
        json_builder_end_object(b);
        g_autofree char *json = nm_json_builder_to_string(b);
        g_autofree char *payload = nm_base64url_encode(json, strlen(json));
        g_autofree char *signed_part = g_strconcat(AUTH_USER_TOKEN_PREFIX, payload, NULL);
        g_autofree char *mac = token_mac(secret, signed_part);
        return g_strconcat(signed_part, ".", mac, NULL);
}

int auth_user_token_verify(const uint8_t secret[AUTH_SECRET_LEN], const char *token, gint64 now,
                           UserClaims *ret)
{
        if (!token || !g_str_has_prefix(token, AUTH_USER_TOKEN_PREFIX) || strlen(token) > 2048)
                return -EBADMSG;
        const char *dot = strrchr(token, '.');
        if (!dot || dot < token + strlen(AUTH_USER_TOKEN_PREFIX))
                return -EBADMSG;
        g_autofree char *signed_part = g_strndup(token, dot - token);
        g_autofree char *want = token_mac(secret, signed_part);
        const char *mac = dot + 1;
        if (strlen(mac) != strlen(want) || sodium_memcmp(mac, want, strlen(want)) != 0)
                return -EBADMSG;

        /* Authentic from here on; still parse strictly. */
        g_autofree guint8 *raw = NULL;
        size_t len;
        if (nm_base64url_decode(signed_part + strlen(AUTH_USER_TOKEN_PREFIX), &raw, &len) < 0)
                return -EBADMSG;
        g_autoptr(JsonObject) o = nm_json_parse_object((const char *)raw, (gssize)len, NULL);
        static const char *const members[] = {"sub", "role", "iat", "exp", NULL};
        const char *sub = NULL, *role = NULL;
        gint64 iat = 0, exp = 0;
        if (!o || !nm_json_check_members(o, "token", members, NULL) ||
            !nm_json_get_string(o, "sub", true, &sub, NULL) ||
            !nm_json_get_string(o, "role", true, &role, NULL) ||
            !nm_json_get_int(o, "iat", true, 0, G_MAXINT64, &iat, NULL) ||
            !nm_json_get_int(o, "exp", true, 0, G_MAXINT64, &exp, NULL))
                return -EBADMSG;
        if (!nm_user_name_valid(sub, NULL))
                return -EBADMSG;
        if (now >= exp)
                return -ETIME;
        ret->sub = g_strdup(sub);
        ret->role = g_strdup(role);
        ret->iat = iat;
        ret->exp = exp;
        return 0;
}

int auth_password_hash(const char *password, char **ret)
{
        char hash[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                return -ENOMEM;
        *ret = g_strdup(hash);
        return 0;
}

bool auth_password_verify(const char *hash, const char *password)
{
        if (!hash || !password)
                return false;
        return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void auth_password_verify_dummy(const char *password)
{
        static char *dummy = NULL;
        if (!dummy && auth_password_hash("not a password of anyone", &dummy) < 0)
                return;
        (void)auth_password_verify(dummy, password);
}

char *auth_host_secret_new(void)
{
        return nm_random_token(32);
}

char *auth_host_credential(const char *host_id, const char *secret)
{
        return g_strconcat(AUTH_HOST_CREDENTIAL_PREFIX, host_id, ".", secret, NULL);
}

char *auth_host_secret_hash(const char *secret)
{
        uint8_t h[32];
        char hex[65];
        crypto_generichash(h, sizeof(h), (const uint8_t *)secret, strlen(secret), NULL, 0);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        return g_strdup(hex);
}

int auth_host_credential_parse(const char *credential, char **ret_host_id, char **ret_secret)
{
        if (!credential || !g_str_has_prefix(credential, AUTH_HOST_CREDENTIAL_PREFIX) ||
            strlen(credential) > 512)
                return -EBADMSG;
        const char *id = credential + strlen(AUTH_HOST_CREDENTIAL_PREFIX);
        const char *dot = strchr(id, '.');
        if (!dot)
                return -EBADMSG;
        g_autofree char *host_id = g_strndup(id, dot - id);
        if (!nm_uuid_valid(host_id) || !dot[1])
                return -EBADMSG;
        for (const char *c = dot + 1; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_')
                        return -EBADMSG;
        *ret_host_id = TAKE_PTR(host_id);
        *ret_secret = g_strdup(dot + 1);
        return 0;
}

bool auth_host_secret_verify(const char *hash, const char *secret)
{
        g_autofree char *h = auth_host_secret_hash(secret);
        if (!hash || strlen(hash) != strlen(h))
                return false;
        return sodium_memcmp(hash, h, strlen(h)) == 0;
}

bool auth_master_key_matches(const char *configured, const char *given)
{
        uint8_t a[32], b[32];
        if (!configured || !given)
                return false;
        /* Hash both so the comparison takes the same time whatever the lengths. */
        crypto_generichash(a, sizeof(a), (const uint8_t *)configured, strlen(configured), NULL, 0);
        crypto_generichash(b, sizeof(b), (const uint8_t *)given, strlen(given), NULL, 0);
        return sodium_memcmp(a, b, sizeof(a)) == 0;
}
