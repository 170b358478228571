/* Proves the registration contract round-trips between the two sides: the request keeps what the
 * host sent, the answer's secrets (host credential, broker password) travel only sealed to the
 * host's message key and open only with it, a server without a broker ("mqtt": null) is
 * understood, and an answer from another server key, for another host or with unknown members
 * is refused with a message that says so. */
#include <string.h>

#include "host-api.h"
#include "json-util.h"
#include "nm-error.h"

static NmRegistered *answer(const char *host_id, bool broker)
{
        NmRegistered *r = nm_registered_new();
        r->host_id = g_strdup(host_id);
        r->credential = g_strdup("nmh.11111111-2222-4333-8444-555555555555.CREDENTIAL-SECRET");
        if (broker) {
                r->mqtt = g_new0(NmBrokerAccess, 1);
                r->mqtt->url = g_strdup("mqtts://198.18.0.1:8883");
                r->mqtt->username = g_strdup("host-x");
                r->mqtt->password = g_strdup("BROKER-PASSWORD-SECRET");
                r->mqtt->subscribe = g_strdup("nm/t/host/x/msg");
                r->mqtt->publish = g_strdup("nm/t/host/x/report");
                r->mqtt->has_pin = true;
                memset(r->mqtt->pin.b, 7, sizeof(r->mqtt->pin.b));
        }
        r->state = nm_state_new();
        r->state->host_id = g_strdup(host_id);
        r->state->serial = 3;
        return r;
}

static void test_request(void)
{
        g_autoptr(NmRegistration) r = nm_registration_new();
        g_autoptr(GError) e = NULL;
        NmKey priv;
        r->token = g_strdup("TOKEN");
        r->name = g_strdup("laptop1");
        g_assert_cmpint(nm_key_generate_wg(&priv, &r->wg_public_key), ==, 0);
        g_assert_cmpint(nm_key_generate_box(&priv, &r->msg_public_key), ==, 0);
        r->endpoints = g_strsplit("198.18.0.2,fd00::2", ",", -1);
        g_autofree char *json = nm_registration_to_json(r);
        g_assert_null(strstr(json, "private"));
        g_autoptr(JsonObject) o = nm_json_parse_object(json, -1, &e);
        g_autoptr(NmRegistration) back = nm_registration_from_json(o, &e);
        g_assert_no_error(e);
        g_assert_cmpstr(back->name, ==, "laptop1");
        g_assert_cmpstr(back->os, ==, "linux");
        g_assert_cmpuint(back->listen_port, ==, 51821);
        g_assert_true(nm_key_equal(&back->wg_public_key, &r->wg_public_key));
        g_assert_cmpstr(back->endpoints[1], ==, "fd00::2");

        /* a private key where a public one belongs is an unknown member */
        g_autoptr(JsonObject) bad =
                nm_json_parse_object("{\"token\":\"t\",\"name\":\"n\",\"wg_private_key\":\"x\"}", -1, &e);
        g_assert_null(nm_registration_from_json(bad, &e));
        g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(e->message, "wg_private_key"));
}

static void test_answer(void)
{
        NmKey server_sec, server_pub, host_sec, host_pub, other_sec, other_pub;
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(nm_key_generate_box(&server_sec, &server_pub), ==, 0);
        g_assert_cmpint(nm_key_generate_box(&host_sec, &host_pub), ==, 0);
        g_assert_cmpint(nm_key_generate_box(&other_sec, &other_pub), ==, 0);
        const char *id = "11111111-2222-4333-8444-555555555555";

        g_autoptr(NmRegistered) r = answer(id, true);
        r->server_msg_key = server_pub;
        g_autofree char *json = nm_registered_to_json(r, &host_pub, &server_sec);
        /* Neither secret is on the wire in the clear. */
        g_assert_null(strstr(json, "CREDENTIAL-SECRET"));
        g_assert_null(strstr(json, "BROKER-PASSWORD-SECRET"));
        g_assert_null(strstr(json, "\"password\""));

        g_autoptr(NmRegistered) back = nm_registered_parse(json, -1, &server_pub, &host_sec, &e);
        g_assert_no_error(e);
        g_assert_cmpstr(back->credential, ==, r->credential);
        g_assert_cmpstr(back->mqtt->password, ==, "BROKER-PASSWORD-SECRET");
        g_assert_cmpstr(back->mqtt->url, ==, "mqtts://198.18.0.1:8883");
        g_assert_true(back->mqtt->has_pin && nm_tls_pin_equal(&back->mqtt->pin, &r->mqtt->pin));
        g_assert_cmpuint(back->state->serial, ==, 3);

        /* Another host's key does not open it. */
        g_assert_null(nm_registered_parse(json, -1, &server_pub, &other_sec, &e));
        g_assert_nonnull(strstr(e->message, "do not open"));
        g_clear_error(&e);
        /* An answer from another server key (not the token's) is not trusted. */
        g_assert_null(nm_registered_parse(json, -1, &other_pub, &host_sec, &e));
        g_assert_error(e, NM_ERROR, NM_ERROR_UNAUTHENTICATED);
        g_clear_error(&e);

        /* Without a broker: "mqtt": null, and only the credential is sealed. */
        g_autoptr(NmRegistered) nb = answer(id, false);
        nb->server_msg_key = server_pub;
        g_autofree char *json2 = nm_registered_to_json(nb, &host_pub, &server_sec);
        g_assert_nonnull(strstr(json2, "\"mqtt\":null"));
        g_autoptr(NmRegistered) back2 = nm_registered_parse(json2, -1, &server_pub, &host_sec, &e);
        g_assert_no_error(e);
        g_assert_null(back2->mqtt);
        g_assert_cmpstr(back2->credential, ==, nb->credential);

        /* The state must be this host's. */
        g_autoptr(NmRegistered) mixed = answer(id, false);
        mixed->server_msg_key = server_pub;
        g_free(mixed->state->host_id);
        mixed->state->host_id = g_strdup("21111111-2222-4333-8444-555555555555");
        g_autofree char *json3 = nm_registered_to_json(mixed, &host_pub, &server_sec);
        g_assert_null(nm_registered_parse(json3, -1, &server_pub, &host_sec, &e));
        g_assert_nonnull(strstr(e->message, "another host"));
        g_clear_error(&e);

        /* Unknown members are refused (a password in the clear among them). */
        g_assert_null(nm_registered_parse("{\"host_id\":\"x\",\"password\":\"p\"}", -1, &server_pub,
                                          &host_sec, &e));
        g_assert_nonnull(strstr(e->message, "password"));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/host-api/request", test_request);
        g_test_add_func("/host-api/answer", test_answer);
        return g_test_run();
}
