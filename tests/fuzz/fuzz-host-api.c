/* libFuzzer target for the registration contract of the host REST API (src/shared/host-api.c,
 * docs/protocol.md §2.4), both sides: the body netmakerd reads from anyone with a token
 * (nm_registration_from_json()) and the answer netclientd reads from the server
 * (nm_registered_parse(), which checks the server key and opens the sealed secrets). No crash, and
 * what is read is written again (nm_registration_to_json(), nm_registered_to_json()) into the same.
 *
 * First byte even: the rest is a registration body. Odd: the rest is an answer, then optionally a
 * line "---" and the plaintext of its sealed secrets; in the answer "@K" stands for the server's
 * message key and "@S" for those secrets sealed to the host, so the fuzzer gets past both checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host-api.h"
#include "json-util.h"
#include "keys.h"
#include "macro.h"
#include "seal.h"

static NmKey server_pub, server_sec, host_pub, host_sec;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static const uint8_t seed_s[32] = {1}, seed_h[32] = {2};
        if (nm_crypto_init() < 0)
                abort();
        memcpy(server_sec.b, seed_s, 32);
        memcpy(host_sec.b, seed_h, 32);
        nm_key_public_from_private(&server_sec, &server_pub);
        nm_key_public_from_private(&host_sec, &host_pub);
        return 0;
}

static void registration(const char *text, size_t len)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(JsonObject) o = nm_json_parse_object(text, (gssize)len, &e);
        if (!o)
                return;
        g_autoptr(NmRegistration) r = nm_registration_from_json(o, &e);
        if (!r) {
                g_assert(e);
                return;
        }
        g_assert(r->token && r->name && r->os && r->version && r->listen_port > 0);
        g_autofree char *json = nm_registration_to_json(r);
        g_autoptr(JsonObject) o2 = nm_json_parse_object(json, -1, &e);
        g_autoptr(NmRegistration) r2 = o2 ? nm_registration_from_json(o2, &e) : NULL;
        if (!r2)
                g_error("a registration read does not read once written: %s\n%s", e->message, json);
        g_autofree char *json2 = nm_registration_to_json(r2);
        g_assert_cmpstr(json, ==, json2);
        nm_free_secret(TAKE_PTR(json));
        nm_free_secret(TAKE_PTR(json2));
}

static char *replace(const char *text, const char *what, const char *with)
{
        g_auto(GStrv) parts = g_strsplit(text, what, -1);
        return g_strjoinv(with, parts);
}

static void answer(const char *text, size_t len)
{
        g_autofree char *copy = g_strndup(text, len); /* a NUL in the input ends it */
        char *sep = strstr(copy, "\n---\n");
        const char *secrets = "";
        char spk[NM_KEY_B64_LEN + 1];

        if (sep) {
                *sep = 0;
                secrets = sep + 5;
        }
        g_autoptr(GBytes) sealed = nm_seal(secrets, strlen(secrets), &host_pub, &server_sec);
        g_autofree char *sealed_b64 =
                nm_base64_encode(g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed));
        nm_key_to_base64(&server_pub, spk);
        g_autofree char *a = replace(copy, "@K", spk);
        g_autofree char *b = replace(a, "@S", sealed_b64);

        g_autoptr(GError) e = NULL;
        g_autoptr(NmRegistered) r = nm_registered_parse(b, -1, &server_pub, &host_sec, &e);
        if (!r) {
                g_assert(e);
                return;
        }
        g_assert(nm_uuid_valid(r->host_id) && r->credential && r->state);
        g_assert(!r->mqtt || r->mqtt->password);
        g_autofree char *json = nm_registered_to_json(r, &host_pub, &server_sec);
        g_autoptr(NmRegistered) r2 = nm_registered_parse(json, -1, &server_pub, &host_sec, &e);
        if (!r2)
                g_error("a registration answer read does not read once written: %s\n%s", e->message, json);
        g_assert_cmpstr(r->host_id, ==, r2->host_id);
        g_assert_cmpstr(r->credential, ==, r2->credential);
        g_assert((r->mqtt == NULL) == (r2->mqtt == NULL));
        if (r->mqtt) {
                g_assert_cmpstr(r->mqtt->url, ==, r2->mqtt->url);
                g_assert_cmpstr(r->mqtt->password, ==, r2->mqtt->password);
                g_assert_cmpstr(r->mqtt->ca_pem, ==, r2->mqtt->ca_pem);
                g_assert(r->mqtt->has_pin == r2->mqtt->has_pin);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        if (data[0] & 1)
                answer((const char *)data + 1, size - 1);
        else
                registration((const char *)data + 1, size - 1);
        return 0;
}
