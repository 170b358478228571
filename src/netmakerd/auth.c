/* Credentials of the REST API: user tokens, password hashes, host credentials, the master key. */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "auth.h"
#include "json-util.h"
#include "keys.h"
#include "macro.h"
#include "names.h"

void user_claims_clear(UserClaims *c)
{
        g_clear_pointer(&c->sub, g_free);
        g_clear_pointer(&c->role, g_free);
        c->iat = c->exp = c->gen = 0;
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
                          gint64 generation, gint64 now, gint64 lifetime)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_string(b, "sub", username);
        nm_json_add_string(b, "role", role);
        nm_json_add_int(b, "iat", now);
        nm_json_add_int(b, "exp", now + lifetime);
        nm_json_add_int(b, "gen", generation);
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
        static const char *const members[] = {"sub", "role", "iat", "exp", "gen", NULL};
        const char *sub = NULL, *role = NULL;
        gint64 iat = 0, exp = 0, gen = 0;
        /* "gen" is optional: tokens issued before schema 5 have none and count as generation 0,
         * the generation every user had then. */
        if (!o || !nm_json_check_members(o, "token", members, NULL) ||
            !nm_json_get_string(o, "sub", true, &sub, NULL) ||
            !nm_json_get_string(o, "role", true, &role, NULL) ||
            !nm_json_get_int(o, "iat", true, 0, G_MAXINT64, &iat, NULL) ||
            !nm_json_get_int(o, "exp", true, 0, G_MAXINT64, &exp, NULL) ||
            !nm_json_get_int(o, "gen", false, 0, G_MAXINT64, &gen, NULL))
                return -EBADMSG;
        if (!nm_user_name_valid(sub, NULL))
                return -EBADMSG;
        if (now >= exp)
                return -ETIME;
        ret->sub = g_strdup(sub);
        ret->role = g_strdup(role);
        ret->iat = iat;
        ret->exp = exp;
        ret->gen = gen;
        return 0;
}

gint64 auth_token_generation_new(void)
{
        uint64_t v;
        randombytes_buf(&v, sizeof(v));
        return (gint64)(v % (UINT64_C(1) << 53)) + 1;
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

static const char *dummy_hash(void)
{
        static char *dummy = NULL;
        static GMutex lock;
        g_mutex_lock(&lock);
        if (!dummy && auth_password_hash("not a password of anyone", &dummy) < 0)
                dummy = NULL;
        g_mutex_unlock(&lock);
        return dummy;
}

void auth_password_verify_dummy(const char *password)
{
        const char *dummy = dummy_hash();
        if (dummy)
                (void)auth_password_verify(dummy, password);
}

/* ---- worker threads ------------------------------------------------------------------------- */

typedef struct AuthJob {
        char *hash; /* NULL: the dummy */
        char *password;
        int result;
        auth_verify_done_t done;
        void *userdata;
} AuthJob;

struct AuthWorker {
        GThreadPool *pool;
        GAsyncQueue *finished; /* of AuthJob */
        int efd;
        sd_event_source *source;
        unsigned max_pending;
        unsigned pending; /* submitted, not yet handed back; event loop only */
        gint cancelled;   /* atomic */
};

static void job_free(AuthJob *j)
{
        g_free(j->hash);
        nm_free_secret(j->password);
        g_free(j);
}

static void job_run(gpointer data, gpointer user_data)
{
        AuthJob *j = data;
        AuthWorker *w = user_data;

        if (g_atomic_int_get(&w->cancelled))
                j->result = -ECANCELED;
        else if (j->hash)
                j->result = auth_password_verify(j->hash, j->password);
        else {
                auth_password_verify_dummy(j->password);
                j->result = 0;
        }
        g_async_queue_push(w->finished, j);
        (void)eventfd_write(w->efd, 1);
}

static void hand_back(AuthWorker *w, int force_result)
{
        AuthJob *j;
        while ((j = g_async_queue_try_pop(w->finished))) {
                w->pending--;
                j->done(force_result ? force_result : j->result, j->userdata);
                job_free(j);
        }
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        eventfd_t v;
        (void)eventfd_read(fd, &v);
        hand_back(userdata, 0);
        return 0;
}

int auth_worker_new(sd_event *event, unsigned threads, unsigned max_pending, AuthWorker **ret)
{
        g_autoptr(AuthWorker) w = g_new0(AuthWorker, 1);
        int r;

        w->efd = -1;
        w->max_pending = max_pending;
        w->finished = g_async_queue_new();
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0)
                return -errno;
        r = sd_event_add_io(event, &w->source, w->efd, EPOLLIN, on_finished, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(w->source, "auth-worker");
        w->pool = g_thread_pool_new(job_run, w, (gint)threads, false, NULL);
        if (!w->pool)
                return -ENOMEM;
        *ret = TAKE_PTR(w);
        return 0;
}

void auth_worker_free(AuthWorker *w)
{
        if (!w)
                return;
        /* Queued jobs finish at once; running ones are waited for. Everyone hears -ECANCELED. */
        g_atomic_int_set(&w->cancelled, 1);
        if (w->pool)
                g_thread_pool_free(w->pool, false, true);
        hand_back(w, -ECANCELED);
        sd_event_source_disable_unref(w->source);
        if (w->efd >= 0)
                close(w->efd);
        g_async_queue_unref(w->finished);
        g_free(w);
}

int auth_worker_verify(AuthWorker *w, const char *hash, const char *password, auth_verify_done_t done,
                       void *userdata)
{
        if (w->pending >= w->max_pending)
                return -EBUSY;
        AuthJob *j = g_new0(AuthJob, 1);
        j->hash = g_strdup(hash);
        j->password = g_strdup(password);
        j->done = done;
        j->userdata = userdata;
        if (!g_thread_pool_push(w->pool, j, NULL)) {
                job_free(j);
                return -ENOMEM;
        }
        w->pending++;
        return 0;
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
