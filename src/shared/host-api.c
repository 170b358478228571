/* Registration request and answer of the host API (host-api.h). */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "host-api.h"
#include "json-util.h"
#include "macro.h"
#include "nm-error.h"
#include "seal.h"

/* ---- the request ---------------------------------------------------------------------------- */

NmRegistration *nm_registration_new(void)
{
        return g_new0(NmRegistration, 1);
}

void nm_registration_free(NmRegistration *r)
{
        if (!r)
                return;
        nm_free_secret(r->token);
        g_free(r->name);
        g_free(r->os);
        g_free(r->version);
        g_strfreev(r->endpoints);
        g_free(r);
}

char *nm_registration_to_json(const NmRegistration *r)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        char wg[NM_KEY_B64_LEN + 1], msg[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&r->wg_public_key, wg);
        nm_key_to_base64(&r->msg_public_key, msg);
        json_builder_begin_object(b);
        nm_json_add_string(b, "token", r->token);
        nm_json_add_string(b, "name", r->name);
        nm_json_add_string(b, "os", r->os ?: "linux");
        nm_json_add_string(b, "version", r->version ?: "unknown");
        nm_json_add_string(b, "wg_public_key", wg);
        nm_json_add_string(b, "msg_public_key", msg);
        nm_json_add_int(b, "listen_port", r->listen_port ?: 51821);
        nm_json_add_strv(b, "endpoints", (const char *const *)(r->endpoints ?: (char *[]){NULL}));
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

static bool get_public_key(JsonObject *o, const char *member, NmKey *ret, GError **error)
{
        const char *text = NULL;

        if (!nm_json_get_string(o, member, true, &text, error))
                return false;
        if (nm_key_from_base64(text, ret) < 0 || nm_key_is_zero(ret)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s: expected a public key of 32 bytes in base64 (44 characters)",
                            member);
                return false;
        }
        return true;
}

NmRegistration *nm_registration_from_json(JsonObject *o, GError **error)
{
        static const char *const members[] = {"token",       "name",          "os",
                                              "version",     "wg_public_key", "msg_public_key",
                                              "listen_port", "endpoints",     NULL};
        g_autoptr(NmRegistration) r = nm_registration_new();
        const char *token = NULL, *name = NULL, *os = "linux", *version = "unknown";
        gint64 port = 51821;

        if (!nm_json_check_members(o, "the registration", members, error) ||
            !nm_json_get_string(o, "token", true, &token, error) ||
            !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_string(o, "os", false, &os, error) ||
            !nm_json_get_string(o, "version", false, &version, error) ||
            !get_public_key(o, "wg_public_key", &r->wg_public_key, error) ||
            !get_public_key(o, "msg_public_key", &r->msg_public_key, error) ||
            !nm_json_get_int(o, "listen_port", false, 1, 65535, &port, error) ||
            !nm_json_get_strv(o, "endpoints", false, NM_MAX_ENDPOINTS, &r->endpoints, error))
                return NULL;
        r->token = g_strdup(token);
        r->name = g_strdup(name);
        r->os = g_strdup(os);
        r->version = g_strdup(version);
        r->listen_port = (guint16)port;
        return TAKE_PTR(r);
}

/* ---- the answer ----------------------------------------------------------------------------- */

void nm_broker_access_free(NmBrokerAccess *a)
{
        if (!a)
                return;
        g_free(a->url);
        g_free(a->username);
        nm_free_secret(a->password);
        g_free(a->subscribe);
        g_free(a->publish);
        g_free(a->ca_pem);
        g_free(a);
}

NmRegistered *nm_registered_new(void)
{
        return g_new0(NmRegistered, 1);
}

void nm_registered_free(NmRegistered *r)
{
        if (!r)
                return;
        g_free(r->host_id);
        nm_free_secret(r->credential);
        nm_broker_access_free(r->mqtt);
        nm_state_free(r->state);
        g_free(r);
}

char *nm_registered_to_json(const NmRegistered *r, const NmKey *host_msg_public,
                            const NmKey *server_msg_secret)
{
        g_autoptr(JsonBuilder) secrets = json_builder_new();
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_secret_ char *plain = NULL;
        g_autoptr(GBytes) sealed = NULL;
        g_autofree char *sealed_b64 = NULL;
        char spk[NM_KEY_B64_LEN + 1];
        gsize n;

        json_builder_begin_object(secrets);
        nm_json_add_string(secrets, "credential", r->credential);
        if (r->mqtt)
                nm_json_add_string(secrets, "mqtt_password", r->mqtt->password);
        json_builder_end_object(secrets);
        plain = nm_json_builder_to_string(secrets);
        sealed = nm_seal(plain, strlen(plain), host_msg_public, server_msg_secret);
        sealed_b64 = nm_base64_encode(g_bytes_get_data(sealed, &n), g_bytes_get_size(sealed));

        nm_key_to_base64(&r->server_msg_key, spk);
        json_builder_begin_object(b);
        nm_json_add_string(b, "host_id", r->host_id);
        nm_json_add_string(b, "server_msg_key", spk);
        nm_json_add_string(b, "sealed", sealed_b64);
        json_builder_set_member_name(b, "mqtt");
        if (r->mqtt) {
                json_builder_begin_object(b);
                nm_json_add_string(b, "url", r->mqtt->url);
                nm_json_add_string(b, "username", r->mqtt->username);
                nm_json_add_string(b, "subscribe", r->mqtt->subscribe);
                nm_json_add_string(b, "publish", r->mqtt->publish);
                if (r->mqtt->has_pin) {
                        g_autofree char *pin = nm_tls_pin_format(&r->mqtt->pin);
                        nm_json_add_string(b, "pin", pin);
                }
                if (r->mqtt->ca_pem)
                        nm_json_add_string(b, "ca", r->mqtt->ca_pem);
                json_builder_end_object(b);
        } else
                json_builder_add_null_value(b);
        json_builder_set_member_name(b, "state");
        nm_state_to_json(r->state, b);
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

static NmBrokerAccess *broker_access_from_json(JsonObject *o, GError **error)
{
        static const char *const members[] = {"url", "username", "subscribe", "publish", "pin", "ca", NULL};
        g_autoptr(NmBrokerAccess) a = g_new0(NmBrokerAccess, 1);
        const char *url = NULL, *user = NULL, *sub = NULL, *pub = NULL, *pin = NULL, *ca = NULL;

        if (!nm_json_check_members(o, "mqtt", members, error) ||
            !nm_json_get_string(o, "url", true, &url, error) ||
            !nm_json_get_string(o, "username", true, &user, error) ||
            !nm_json_get_string(o, "subscribe", true, &sub, error) ||
            !nm_json_get_string(o, "publish", true, &pub, error) ||
            !nm_json_get_string(o, "pin", false, &pin, error) ||
            !nm_json_get_string(o, "ca", false, &ca, error))
                return NULL;
        if (pin) {
                if (!nm_tls_pin_parse(pin, &a->pin)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid mqtt.pin: expected sha256// and 32 bytes of base64");
                        return NULL;
                }
                a->has_pin = true;
        }
        if (ca && !strstr(ca, "-----BEGIN CERTIFICATE-----")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid mqtt.ca: expected PEM certificates");
                return NULL;
        }
        a->url = g_strdup(url);
        a->username = g_strdup(user);
        a->subscribe = g_strdup(sub);
        a->publish = g_strdup(pub);
        a->ca_pem = g_strdup(ca);
        return TAKE_PTR(a);
}

static bool open_secrets(const char *sealed_b64, NmRegistered *r, const NmKey *server_msg_public,
                         const NmKey *host_msg_secret, GError **error)
{
        g_autofree guint8 *raw = NULL;
        g_autoptr(GBytes) plain = NULL;
        g_autoptr(JsonObject) o = NULL;
        static const char *const members[] = {"credential", "mqtt_password", NULL};
        const char *cred = NULL, *pw = NULL;
        size_t len;
        gsize n;

        if (nm_base64_decode(sealed_b64, &raw, &len) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid sealed: not base64");
                return false;
        }
        plain = nm_open(raw, len, server_msg_public, host_msg_secret, error);
        if (!plain) {
                g_prefix_error(error, "The sealed secrets do not open with this host's key: ");
                return false;
        }
        const char *text = g_bytes_get_data(plain, &n);
        o = nm_json_parse_object(text, (gssize)n, error);
        sodium_memzero((void *)text, n);
        if (!o || !nm_json_check_members(o, "the sealed secrets", members, error) ||
            !nm_json_get_string(o, "credential", true, &cred, error) ||
            !nm_json_get_string(o, "mqtt_password", r->mqtt != NULL, &pw, error))
                return false;
        r->credential = g_strdup(cred);
        if (r->mqtt)
                r->mqtt->password = g_strdup(pw);
        return true;
}

NmRegistered *nm_registered_parse(const char *data, gssize len, const NmKey *server_msg_public,
                                  const NmKey *host_msg_secret, GError **error)
{
        static const char *const members[] = {"host_id", "server_msg_key", "sealed", "mqtt", "state", NULL};
        g_autoptr(JsonObject) o = nm_json_parse_object(data, len, error);
        g_autoptr(NmRegistered) r = nm_registered_new();
        const char *host_id = NULL, *spk = NULL, *sealed = NULL;
        JsonObject *mq = NULL;

        if (!o || !nm_json_check_members(o, "the registration answer", members, error) ||
            !nm_json_get_string(o, "host_id", true, &host_id, error) ||
            !nm_json_get_string(o, "server_msg_key", true, &spk, error) ||
            !nm_json_get_string(o, "sealed", true, &sealed, error) ||
            !nm_json_get_object(o, "mqtt", false, &mq, error))
                return NULL;
        if (!nm_uuid_valid(host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "The server sent an invalid host id");
                return NULL;
        }
        if (nm_key_from_base64(spk, &r->server_msg_key) < 0 ||
            !nm_key_equal(&r->server_msg_key, server_msg_public)) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The server's message key differs from the one in the token: not trusting it");
                return NULL;
        }
        if (mq) {
                r->mqtt = broker_access_from_json(mq, error);
                if (!r->mqtt)
                        return NULL;
        }
        if (!open_secrets(sealed, r, server_msg_public, host_msg_secret, error))
                return NULL;
        if (!json_object_has_member(o, "state")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "The registration answer has no state");
                return NULL;
        }
        r->state = nm_state_from_json(json_object_get_member(o, "state"), error);
        if (!r->state)
                return NULL;
        if (!streq0(r->state->host_id, host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "The registration answer's state is for another host");
                return NULL;
        }
        r->host_id = g_strdup(host_id);
        return TAKE_PTR(r);
}
