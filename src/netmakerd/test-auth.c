/* Proves user tokens are accepted only when authentic and unexpired (expired, forged, tampered and
 * truncated ones are refused) and carry the user's token generation (0 when a token from before
 * generations has none; new users start at a random one), host credentials round-trip and are
 * checked against their hash, passwords hash with argon2id and are checked on worker threads
 * (bounded, cancellable). */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "auth.h"
#include "keys.h"
#include "macro.h"

static uint8_t secret[AUTH_SECRET_LEN];

static void test_token_roundtrip(void)
{
        g_autofree char *t = auth_user_token_new(secret, "alice", "admin", 7, 1000, 3600);
        g_assert_true(g_str_has_prefix(t, "nmu."));
        g_auto(UserClaims) c = {};
        g_assert_cmpint(auth_user_token_verify(secret, t, 1001, &c), ==, 0);
        g_assert_cmpstr(c.sub, ==, "alice");
        g_assert_cmpstr(c.role, ==, "admin");
        g_assert_cmpint(c.iat, ==, 1000);
        g_assert_cmpint(c.exp, ==, 4600);
        g_assert_cmpint(c.gen, ==, 7);
}

/* A token with this payload, signed with the test's secret as the server would. */
static char *sign(const char *json)
{
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        g_autofree char *payload = nm_base64url_encode(json, strlen(json));
        g_autofree char *signed_part = g_strconcat("nmu.", payload, NULL);
        crypto_auth_hmacsha256(mac, (const uint8_t *)signed_part, strlen(signed_part), secret);
        g_autofree char *mac64 = nm_base64url_encode(mac, sizeof(mac));
        return g_strconcat(signed_part, ".", mac64, NULL);
}

static void test_token_generation(void)
{
        g_auto(UserClaims) c = {};

        /* Generations round-trip up to the largest a new user can reach in practice. */
        gint64 big = (INT64_C(1) << 53) + 1000;
        g_autofree char *t = auth_user_token_new(secret, "alice", "user", big, 1000, 3600);
        g_assert_cmpint(auth_user_token_verify(secret, t, 1001, &c), ==, 0);
        g_assert_cmpint(c.gen, ==, big);
        user_claims_clear(&c);

        /* A token signed before generations existed (no "gen") is generation 0. */
        g_autofree char *legacy = sign("{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1000,\"exp\":4600}");
        g_assert_cmpint(auth_user_token_verify(secret, legacy, 1001, &c), ==, 0);
        g_assert_cmpint(c.gen, ==, 0);
        user_claims_clear(&c);

        /* A generation that is not a whole non-negative number makes a malformed token. */
        g_autofree char *negative =
                sign("{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1000,\"exp\":4600,\"gen\":-1}");
        g_assert_cmpint(auth_user_token_verify(secret, negative, 1001, &c), ==, -EBADMSG);
        g_autofree char *text =
                sign("{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1000,\"exp\":4600,\"gen\":\"1\"}");
        g_assert_cmpint(auth_user_token_verify(secret, text, 1001, &c), ==, -EBADMSG);

        /* New users' generations: never 0 (what old tokens carry), within 1-2^53, not all alike. */
        gint64 first = auth_token_generation_new();
        bool differ = false;
        for (unsigned i = 0; i < 64; i++) {
                gint64 g = auth_token_generation_new();
                g_assert_cmpint(g, >=, 1);
                g_assert_cmpint(g, <=, INT64_C(1) << 53);
                differ = differ || g != first;
        }
        g_assert_true(differ);
}

static void test_token_expired(void)
{
        g_autofree char *t = auth_user_token_new(secret, "alice", "user", 1, 1000, 60);
        g_auto(UserClaims) c = {};
        g_assert_cmpint(auth_user_token_verify(secret, t, 1059, &c), ==, 0);
        user_claims_clear(&c);
        g_assert_cmpint(auth_user_token_verify(secret, t, 1060, &c), ==, -ETIME);
        g_assert_null(c.sub);
}

static void test_token_forged(void)
{
        uint8_t other[AUTH_SECRET_LEN];
        memset(other, 0x42, sizeof(other));
        g_autofree char *t = auth_user_token_new(other, "mallory", "admin", 1, 1000, 3600);
        g_auto(UserClaims) c = {};
        g_assert_cmpint(auth_user_token_verify(secret, t, 1001, &c), ==, -EBADMSG);
}

static void test_token_tampered(void)
{
        g_autofree char *t = auth_user_token_new(secret, "alice", "user", 1, 1000, 3600);
        g_auto(UserClaims) c = {};

        /* Swap the payload for one that claims admin, keeping the MAC. */
        const char *payload = "{\"sub\":\"alice\",\"role\":\"admin\",\"iat\":1000,\"exp\":4600}";
        g_autofree char *b64 = nm_base64url_encode(payload, strlen(payload));
        const char *mac = strrchr(t, '.');
        g_autofree char *forged = g_strconcat("nmu.", b64, mac, NULL);
        g_assert_cmpint(auth_user_token_verify(secret, forged, 1001, &c), ==, -EBADMSG);

        /* One character of the MAC changed. */
        g_autofree char *flipped = g_strdup(t);
        char *last = flipped + strlen(flipped) - 2;
        *last = *last == 'A' ? 'B' : 'A';
        g_assert_cmpint(auth_user_token_verify(secret, flipped, 1001, &c), ==, -EBADMSG);

        /* Truncated, empty, wrong prefix, no MAC. */
        g_autofree char *cut = g_strndup(t, strlen(t) - 5);
        g_assert_cmpint(auth_user_token_verify(secret, cut, 1001, &c), ==, -EBADMSG);
        g_assert_cmpint(auth_user_token_verify(secret, "", 1001, &c), ==, -EBADMSG);
        g_assert_cmpint(auth_user_token_verify(secret, "nmu.", 1001, &c), ==, -EBADMSG);
        g_autofree char *other_prefix = g_strdup(t);
        other_prefix[2] = 'h';
        g_assert_cmpint(auth_user_token_verify(secret, other_prefix, 1001, &c), ==, -EBADMSG);
        g_autofree char *nomac = g_strndup(t, strrchr(t, '.') - t);
        g_assert_cmpint(auth_user_token_verify(secret, nomac, 1001, &c), ==, -EBADMSG);
}

static void test_host_credential(void)
{
        g_autofree char *id = nm_uuid_new();
        _cleanup_secret_ char *sec = auth_host_secret_new();
        _cleanup_secret_ char *cred = auth_host_credential(id, sec);
        g_autofree char *hash = auth_host_secret_hash(sec);
        g_autofree char *pid = NULL;
        _cleanup_secret_ char *psec = NULL;

        g_assert_null(strstr(hash, sec));
        g_assert_cmpint(auth_host_credential_parse(cred, &pid, &psec), ==, 0);
        g_assert_cmpstr(pid, ==, id);
        g_assert_true(auth_host_secret_verify(hash, psec));
        g_assert_false(auth_host_secret_verify(hash, "x"));

        char *bad[] = {"nmh.", "nmh.not-a-uuid.abc", "nmu.x.y", "", NULL};
        for (char **b = bad; *b; b++) {
                g_autofree char *i = NULL, *s = NULL;
                g_assert_cmpint(auth_host_credential_parse(*b, &i, &s), ==, -EBADMSG);
        }
        g_autofree char *noseq = g_strconcat("nmh.", id, ".", NULL);
        g_autofree char *i2 = NULL, *s2 = NULL;
        g_assert_cmpint(auth_host_credential_parse(noseq, &i2, &s2), ==, -EBADMSG);
}

static void test_password(void)
{
        g_autofree char *h = NULL;
        g_assert_cmpint(auth_password_hash("correct horse", &h), ==, 0);
        g_assert_true(g_str_has_prefix(h, "$argon2id$"));
        g_assert_true(auth_password_verify(h, "correct horse"));
        g_assert_false(auth_password_verify(h, "correct horsE"));
        g_assert_false(auth_password_verify("garbage", "correct horse"));
}

static int results[4];
static unsigned n_results;

static void on_verified(int result, void *userdata)
{
        results[GPOINTER_TO_UINT(userdata)] = result;
        n_results++;
}

static void test_worker(void)
{
        sd_event *e = NULL;
        g_autoptr(AuthWorker) w = NULL;
        g_autofree char *h = NULL;

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        g_assert_cmpint(auth_password_hash("right password", &h), ==, 0);
        g_assert_cmpint(auth_worker_new(e, 2, 3, &w), ==, 0);
        n_results = 0;
        g_assert_cmpint(auth_worker_verify(w, h, "right password", on_verified, GUINT_TO_POINTER(0)), ==, 0);
        g_assert_cmpint(auth_worker_verify(w, h, "wrong password", on_verified, GUINT_TO_POINTER(1)), ==, 0);
        g_assert_cmpint(auth_worker_verify(w, NULL, "right password", on_verified, GUINT_TO_POINTER(2)), ==,
                        0);
        /* The queue is bounded. */
        g_assert_cmpint(auth_worker_verify(w, h, "x", on_verified, GUINT_TO_POINTER(3)), ==, -EBUSY);
        while (n_results < 3)
                g_assert_cmpint(sd_event_run(e, UINT64_MAX), >=, 0);
        g_assert_cmpint(results[0], ==, 1);
        g_assert_cmpint(results[1], ==, 0);
        g_assert_cmpint(results[2], ==, 0); /* unknown user: never a match */

        /* Freeing hands every pending check back as cancelled. */
        n_results = 0;
        g_assert_cmpint(auth_worker_verify(w, h, "right password", on_verified, GUINT_TO_POINTER(3)), ==, 0);
        auth_worker_free(TAKE_PTR(w));
        g_assert_cmpuint(n_results, ==, 1);
        g_assert_cmpint(results[3], ==, -ECANCELED);
        sd_event_unref(e);
}

static void test_master_key(void)
{
        g_assert_true(auth_master_key_matches("0123456789abcdef", "0123456789abcdef"));
        g_assert_false(auth_master_key_matches("0123456789abcdef", "0123456789abcdeF"));
        g_assert_false(auth_master_key_matches("0123456789abcdef", "0123456789abcdef0"));
        g_assert_false(auth_master_key_matches(NULL, "x"));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        randombytes_buf(secret, sizeof(secret));
        g_test_add_func("/auth/token-roundtrip", test_token_roundtrip);
        g_test_add_func("/auth/token-generation", test_token_generation);
        g_test_add_func("/auth/token-expired", test_token_expired);
        g_test_add_func("/auth/token-forged", test_token_forged);
        g_test_add_func("/auth/token-tampered", test_token_tampered);
        g_test_add_func("/auth/host-credential", test_host_credential);
        g_test_add_func("/auth/password", test_password);
        g_test_add_func("/auth/worker", test_worker);
        g_test_add_func("/auth/master-key", test_master_key);
        return g_test_run();
}
