/* Credentials of the REST API: user tokens (HMAC-SHA256), argon2id password hashes, host
 * credentials (stored only as hashes) and the master key, all compared in constant time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <systemd/sd-event.h>

#define AUTH_SECRET_LEN             32
#define AUTH_USER_TOKEN_PREFIX      "nmu."
#define AUTH_HOST_CREDENTIAL_PREFIX "nmh."

typedef struct UserClaims {
        char *sub;
        char *role;
        gint64 iat;
        gint64 exp;
        gint64 gen; /* the user's token generation when issued; 0 in tokens from before it existed */
} UserClaims;

void user_claims_clear(UserClaims *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(UserClaims, user_claims_clear)

/* "nmu.<payload>.<mac>" valid from `now` for `lifetime` seconds, for the user's current token
 * `generation`. */
char *auth_user_token_new(const uint8_t secret[AUTH_SECRET_LEN], const char *username, const char *role,
                          gint64 generation, gint64 now, gint64 lifetime);
/* 0, -EBADMSG for a malformed, forged or tampered token, -ETIME for an expired one. */
int auth_user_token_verify(const uint8_t secret[AUTH_SECRET_LEN], const char *token, gint64 now,
                           UserClaims *ret);

/* A new user's first token generation. Every password change adds one, and a token of another
 * generation is refused: unlike the issue time (whole seconds), that also revokes a token issued
 * in the second of the change. Random rather than 1, so that a user deleted and created again
 * under the same name does not inherit the old user's tokens. At most 2^53, exact as a JSON
 * number in every language. */
gint64 auth_token_generation_new(void);

/* argon2id (libsodium's crypto_pwhash_str, interactive limits). */
int auth_password_hash(const char *password, char **ret);
bool auth_password_verify(const char *hash, const char *password);
/* Spends the time of one verification, so that an unknown user name takes as long as a wrong password. */
void auth_password_verify_dummy(const char *password);

/* argon2id costs ~150 ms of CPU and 64 MiB: a few worker threads do it so that the event loop
 * keeps serving hosts while users log in. `done` runs on the event loop with 1 (match), 0 (no
 * match) or a negative errno (-ECANCELED when the worker is freed first). */
typedef struct AuthWorker AuthWorker;
typedef void (*auth_verify_done_t)(int result, void *userdata);
int auth_worker_new(sd_event *event, unsigned threads, unsigned max_pending, AuthWorker **ret);
void auth_worker_free(AuthWorker *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthWorker, auth_worker_free)
/* NULL `hash`: an unknown user, verified against a dummy hash so it takes as long. -EBUSY when
 * max_pending verifications are already waiting. */
int auth_worker_verify(AuthWorker *w, const char *hash, const char *password, auth_verify_done_t done,
                       void *userdata);

/* Host credentials "nmh.<host-id>.<secret>": the secret has 256 bits, so a plain BLAKE2b hash
 * is enough to store it and cheap to check on every request. */
char *auth_host_secret_new(void);
char *auth_host_credential(const char *host_id, const char *secret);
char *auth_host_secret_hash(const char *secret);
/* 0 or -EBADMSG. */
int auth_host_credential_parse(const char *credential, char **ret_host_id, char **ret_secret);
bool auth_host_secret_verify(const char *hash, const char *secret);

bool auth_master_key_matches(const char *configured, const char *given);
