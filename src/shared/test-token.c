/* Proves enrollment tokens round-trip (version 2 with and without the server's pin; version 1 is
 * still read) and that malformed, hostile and forged tokens are refused with a message that says
 * what is wrong. */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "nm-error.h"
#include "token.h"

static void test_roundtrip(void)
{
        NmKey priv, pub;
        g_assert_cmpint(nm_key_generate_box(&priv, &pub), ==, 0);
        g_autofree char *value = nm_key_value_new();
        g_assert_true(nm_key_value_valid(value));

        NmTlsPin pin;
        for (size_t i = 0; i < sizeof(pin.b); i++)
                pin.b[i] = (uint8_t)(i * 7 + 1);
        g_autofree char *tok = nm_token_encode("https://198.18.0.1:8081/", value, &pub, &pin);
        g_auto(NmToken) t = {};
        g_autoptr(GError) e = NULL;
        g_assert_true(nm_token_decode(tok, &t, &e));
        g_assert_no_error(e);
        g_assert_cmpint(t.version, ==, 2);
        g_assert_cmpstr(t.api, ==, "https://198.18.0.1:8081"); /* trailing slash dropped */
        g_assert_cmpstr(t.value, ==, value);
        g_assert_true(nm_key_equal(&t.server_key, &pub));
        g_assert_true(t.has_pin);
        g_assert_true(nm_tls_pin_equal(&t.pin, &pin));
        /* base64url: no padding, no '+' or '/' */
        g_assert_null(strpbrk(tok, "=+/"));

        /* Without a pin (a server with a CA-issued certificate). */
        g_autofree char *nopin = nm_token_encode("https://nm.example.org", value, &pub, NULL);
        g_auto(NmToken) t2 = {};
        g_assert_true(nm_token_decode(nopin, &t2, &e));
        g_assert_cmpint(t2.version, ==, 2);
        g_assert_false(t2.has_pin);

        /* Version 1, as servers before the pin wrote them. */
        char spk[NM_KEY_B64_LEN + 1], buf[512];
        nm_key_to_base64(&pub, spk);
        snprintf(buf, sizeof(buf),
                 "{\"v\":1,\"api\":\"http://198.18.0.1:8081\",\"key\":\"%s\",\"spk\":\"%s\"}", value, spk);
        g_autofree char *v1 = nm_base64url_encode(buf, strlen(buf));
        g_auto(NmToken) t1 = {};
        g_assert_true(nm_token_decode(v1, &t1, &e));
        g_assert_cmpint(t1.version, ==, 1);
        g_assert_false(t1.has_pin);
        g_assert_cmpstr(t1.value, ==, value);
}

static char *encode_json(const char *json)
{
        return nm_base64url_encode(json, strlen(json));
}

static void expect_refused(const char *tok, const char *needle)
{
        g_auto(NmToken) t = {};
        g_autoptr(GError) e = NULL;
        g_assert_false(nm_token_decode(tok, &t, &e));
        g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
        if (needle && !strstr(e->message, needle))
                g_error("message \"%s\" lacks \"%s\"", e->message, needle);
        g_assert_null(t.value);
}

static void test_hostile(void)
{
        const char *spk = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        char buf[512];

        expect_refused("", "empty");
        expect_refused("!!!!", "base64url");
        expect_refused("eyJ2IjoxfQ=", "base64url"); /* padding is not base64url-nopad */
        g_autofree char *huge = g_strnfill(NM_TOKEN_MAX_LEN + 1, 'A');
        expect_refused(huge, "at most");

        g_autofree char *notjson = encode_json("hello");
        expect_refused(notjson, "JSON");
        g_autofree char *array = encode_json("[1,2,3]");
        expect_refused(array, "object");
        g_autofree char *bomb = encode_json("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]"
                                            "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
        expect_refused(bomb, "nested");

        snprintf(buf, sizeof(buf), "{\"v\":3,\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"%s\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *v3 = encode_json(buf);
        expect_refused(v3, "version 3");

        /* A pin is version 2's; a bad one is named. */
        snprintf(buf, sizeof(buf),
                 "{\"v\":1,\"api\":\"https://a\",\"key\":\"%s\",\"spk\":\"%s\",\"pin\":\"x\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *v1pin = encode_json(buf);
        expect_refused(v1pin, "Unknown member");
        snprintf(buf, sizeof(buf),
                 "{\"v\":2,\"api\":\"https://a\",\"key\":\"%s\",\"spk\":\"%s\",\"pin\":\"%s\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk, "sha1//AAAA");
        g_autofree char *badpin = encode_json(buf);
        expect_refused(badpin, "pin");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"file:///etc/passwd\",\"key\":\"%s\",\"spk\":\"%s\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *file = encode_json(buf);
        expect_refused(file, "http://");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"http://user:pw@host\",\"key\":\"%s\",\"spk\":\"%s\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *creds = encode_json(buf);
        expect_refused(creds, "http://");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"%s\"}", "short",
                 spk);
        g_autofree char *shortkey = encode_json(buf);
        expect_refused(shortkey, "32 characters");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"%s\"}",
                 "abcdefghijklmnopqrstuvwxyz234567", spk);
        g_autofree char *lower = encode_json(buf);
        expect_refused(lower, "32 characters");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"AAAA\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        g_autofree char *shortspk = encode_json(buf);
        expect_refused(shortspk, "server key");

        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"%s\",\"x\":1}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *extra = encode_json(buf);
        expect_refused(extra, "Unknown member");

        snprintf(buf, sizeof(buf), "{\"v\":\"1\",\"api\":\"http://a\",\"key\":\"%s\",\"spk\":\"%s\"}",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", spk);
        g_autofree char *vstr = encode_json(buf);
        expect_refused(vstr, "integer");

        /* Embedded NUL inside the JSON text. */
        const char nul[] = "{\"v\":1,\0\"api\":\"http://a\"}";
        g_autofree char *withnul = nm_base64url_encode(nul, sizeof(nul) - 1);
        expect_refused(withnul, NULL);
}

static void test_secret_not_in_message(void)
{
        char buf[512];
        const char *secret = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
        snprintf(buf, sizeof(buf), "{\"v\":1,\"api\":\"ftp://a\",\"key\":\"%s\",\"spk\":\"x\"}", secret);
        g_autofree char *tok = nm_base64url_encode(buf, strlen(buf));
        g_auto(NmToken) t = {};
        g_autoptr(GError) e = NULL;
        g_assert_false(nm_token_decode(tok, &t, &e));
        g_assert_null(strstr(e->message, secret));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/token/roundtrip", test_roundtrip);
        g_test_add_func("/token/hostile", test_hostile);
        g_test_add_func("/token/secret-not-in-message", test_secret_not_in_message);
        return g_test_run();
}
