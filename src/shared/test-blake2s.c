/* Proves BLAKE2s against RFC 7693 (the "abc" example of Appendix B and the self-test of Appendix E,
 * which hashes every digest length and message length with and without keys into one "grand hash"),
 * the keyed known answers of the reference implementation, that input split anywhere hashes the
 * same, and HMAC-BLAKE2s and WireGuard's KDF against Python's hmac and hashlib (an independent
 * implementation). */
#include <string.h>

#include "blake2s.h"
#include "keys.h"

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
        g_autoptr(GString) s = g_string_new(NULL);
        for (size_t i = 0; i < len; i++)
                g_string_append_printf(s, "%02x", got[i]);
        g_assert_cmpstr(s->str, ==, want);
}

static void test_rfc7693_abc(void)
{
        uint8_t out[32];
        blake2s(out, 32, "abc", 3, NULL, 0);
        assert_hex(out, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

/* RFC 7693 Appendix E: deterministic input of a Fibonacci-like generator. */
static void selftest_seq(uint8_t *out, size_t len, uint32_t seed)
{
        uint32_t a = 0xDEAD4BAD * seed, b = 1;
        for (size_t i = 0; i < len; i++) {
                uint32_t t = a + b;
                a = b;
                b = t;
                out[i] = (uint8_t)(t >> 24);
        }
}

static void test_rfc7693_selftest(void)
{
        static const size_t outlens[] = {16, 20, 28, 32}, inlens[] = {0, 3, 64, 65, 255, 1024};
        uint8_t in[1024], md[32], key[32], grand[32];
        Blake2s ctx;

        blake2s_init(&ctx, 32, NULL, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(outlens); i++)
                for (size_t j = 0; j < G_N_ELEMENTS(inlens); j++) {
                        size_t outlen = outlens[i], inlen = inlens[j];
                        selftest_seq(in, inlen, (uint32_t)inlen);
                        blake2s(md, outlen, in, inlen, NULL, 0);
                        blake2s_update(&ctx, md, outlen);
                        selftest_seq(key, outlen, (uint32_t)outlen);
                        blake2s(md, outlen, in, inlen, key, outlen);
                        blake2s_update(&ctx, md, outlen);
                }
        blake2s_final(&ctx, grand);
        assert_hex(grand, 32, "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
}

static void test_keyed_known_answers(void)
{
        uint8_t key[32], in[64], out[32];
        for (int i = 0; i < 64; i++)
                in[i] = (uint8_t)i;
        memcpy(key, in, 32);
        blake2s(out, 32, in, 0, key, 32);
        assert_hex(out, 32, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");
        blake2s(out, 32, in, 63, key, 32);
        assert_hex(out, 32, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd");
}

static void test_split_input(void)
{
        uint8_t in[300], whole[32], parts[32];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i * 7 + 3);
        for (size_t len = 0; len <= sizeof(in); len += 13) {
                blake2s(whole, 32, in, len, "k", 1);
                for (size_t cut = 0; cut <= len; cut += 11) {
                        Blake2s s;
                        blake2s_init(&s, 32, "k", 1);
                        blake2s_update(&s, in, cut);
                        blake2s_update(&s, in + cut, 0);
                        blake2s_update(&s, in + cut, len - cut);
                        blake2s_final(&s, parts);
                        g_assert_cmpmem(whole, 32, parts, 32);
                }
        }
}

static void test_hmac(void)
{
        const char *fox = "The quick brown fox jumps over the lazy dog";
        uint8_t out[32], longkey[100];
        hmac_blake2s(out, "key", 3, fox, strlen(fox));
        assert_hex(out, 32, "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0");
        /* A key longer than a block is hashed first. */
        for (int i = 0; i < 100; i++)
                longkey[i] = (uint8_t)i;
        hmac_blake2s(out, longkey, sizeof(longkey), "message", 7);
        assert_hex(out, 32, "0d91cbef198cf7e3847de5efd2c35fa5e8b8f90b5d751a12f7c76154a6d0b56f");
}

static void test_wg_kdf(void)
{
        uint8_t key[32], out[3][32], one[1][32];
        for (int i = 0; i < 32; i++)
                key[i] = (uint8_t)i;
        wg_kdf(out, 3, key, "WireGuard input", 15);
        assert_hex(out[0], 32, "b8ad51d3f59ceebdabe6e8c20fad5ef489fc69916ab68ed83e557c1ce45283bb");
        assert_hex(out[1], 32, "057c9a6fa73ae6946de7ec81c845bde5c9bc6f82e9f351509288be08637b8e4f");
        assert_hex(out[2], 32, "d7a401ba6af51603715016a4933cf149d3ab1cede8885622f9f9840ac417acdd");
        /* KDF1 is the first output of KDF3. */
        wg_kdf(one, 1, key, "WireGuard input", 15);
        g_assert_cmpmem(one[0], 32, out[0], 32);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/blake2s/rfc7693-abc", test_rfc7693_abc);
        g_test_add_func("/blake2s/rfc7693-selftest", test_rfc7693_selftest);
        g_test_add_func("/blake2s/keyed-known-answers", test_keyed_known_answers);
        g_test_add_func("/blake2s/split-input", test_split_input);
        g_test_add_func("/blake2s/hmac", test_hmac);
        g_test_add_func("/blake2s/wg-kdf", test_wg_kdf);
        return g_test_run();
}
