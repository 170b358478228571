/* REST resources /login and /users: password login for user tokens, and user management (admins
 * manage everyone; a user reads itself and changes its own password; the last admin stays). */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

void json_add_user(JsonBuilder *b, const User *u)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "username", u->username);
        nm_json_add_string(b, "role", u->role);
        nm_json_add_int(b, "created_at", u->created_at);
        json_builder_end_object(b);
}

static void reply_user(Request *r, unsigned status, const User *u)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_user(b, u);
        request_reply_builder(r, status, b);
}

static bool password_valid(const char *p, GError **error)
{
        size_t n = strlen(p);
        if (n >= PASSWORD_MIN && n <= PASSWORD_MAX)
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid password: use %d-%d characters",
                    PASSWORD_MIN, PASSWORD_MAX);
        return false;
}

static bool role_valid(const char *role, GError **error)
{
        if (streq0(role, "admin") || streq0(role, "user"))
                return true;
        g_autofree char *shown = g_utf8_make_valid(role, MIN(strlen(role), 40));
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "Invalid role \"%s\" (accepted: admin, user)", shown);
        return false;
}

typedef struct Login {
        Request *request;
        char *username;
        char *hash; /* the one checked; NULL for an unknown user */
} Login;

static void login_free(Login *l)
{
        request_unref(l->request);
        g_free(l->username);
        g_free(l->hash);
        g_free(l);
}

static void login_done(int result, void *userdata)
{
        Login *l = userdata;
        Request *r = l->request;
        Manager *m = request_manager(r);
        g_autoptr(User) u = NULL;
        g_autoptr(GError) e = NULL;

        if (result < 0 || !request_is_alive(r)) {
                /* Cancelled at shutdown: the HTTP side has already answered. */
                request_resume(r);
                login_free(l);
                return;
        }
        /* The user may have gone, changed role or changed password while the hash was checked:
         * a password that was right a moment ago gets no token of the new generation. */
        if (result == 0 || store_user_get(m->store, l->username, &u, NULL) < 0 ||
            !streq0(u->password_hash, l->hash))
                g_set_error(&e, NM_ERROR, NM_ERROR_UNAUTHENTICATED, "Invalid user name or password");
        else {
                gint64 now = manager_now();
                gint64 lifetime = (gint64)m->config->token_lifetime;
                _cleanup_secret_ char *token = auth_user_token_new(m->token_secret, u->username, u->role,
                                                                   u->token_generation, now, lifetime);
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_object(b);
                nm_json_add_string(b, "token", token);
                nm_json_add_int(b, "expires_at", now + lifetime);
                nm_json_add_string(b, "role", u->role);
                json_builder_end_object(b);
                request_reply_builder(r, MHD_HTTP_OK, b);
                log_debug("User \"%s\" logged in.", u->username);
        }
        if (e)
                request_reply_error(r, e);
        request_resume(r);
        login_free(l);
}

static int login(Request *r, GError **error)
{
        static const char *const members[] = {"username", "password", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = NULL;
        const char *username = NULL, *password = NULL;
        g_autoptr(User) u = NULL;
        g_autoptr(GError) e = NULL;
        int k;

        /* Counted before anything else: every attempt costs, also a malformed one. */
        k = http_rate_limit(r, m->login_limit, "logins", "login_rate_limit", error);
        if (k < 0)
                return k;
        o = request_json_object(r, "login", members, error);
        if (!o || !nm_json_get_string(o, "username", true, &username, error) ||
            !nm_json_get_string(o, "password", true, &password, error))
                return -EINVAL;
        k = store_user_get(m->store, username, &u, &e);
        if (k < 0 && k != -ENOENT) {
                g_propagate_error(error, TAKE_PTR(e));
                return k;
        }

        /* An unknown user is checked against a dummy hash: it takes as long as a wrong password. */
        Login *l = g_new0(Login, 1);
        l->request = request_ref(r);
        l->username = g_strdup(username);
        l->hash = u ? g_strdup(u->password_hash) : NULL;
        k = auth_worker_verify(m->auth_worker, u ? u->password_hash : NULL, password, login_done, l);
        if (k < 0) {
                login_free(l);
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE,
                            k == -EBUSY ? "Too many logins at once; retry in a moment"
                                        : "Failed to check the password");
                return k;
        }
        request_suspend(r);
        return 0;
}

static int users_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_user_list(m->store, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                json_add_user(b, all->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int users_create(Request *r, GError **error)
{
        static const char *const members[] = {"username", "password", "role", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "user", members, error);
        const char *username = NULL, *password = NULL, *role = "user";
        g_autofree char *hash = NULL;
        int k;

        if (!o || !nm_json_get_string(o, "username", true, &username, error) ||
            !nm_json_get_string(o, "password", true, &password, error) ||
            !nm_json_get_string(o, "role", false, &role, error))
                return -EINVAL;
        if (!nm_user_name_valid(username, error) || !password_valid(password, error) ||
            !role_valid(role, error))
                return -EINVAL;
        k = auth_password_hash(password, &hash);
        if (k < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to hash the password");
                return k;
        }
        gint64 now = manager_now();
        User u = {.username = (char *)username,
                  .password_hash = hash,
                  .role = (char *)role,
                  .created_at = now,
                  .password_changed_at = now,
                  .token_generation = auth_token_generation_new()};
        k = store_user_insert(m->store, &u, error);
        if (k < 0)
                return k;
        log_info("Created user \"%s\" (%s).", username, role);
        reply_user(r, MHD_HTTP_CREATED, &u);
        return 0;
}

static int users_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *name = request_param(r, "name");
        g_autoptr(User) u = NULL;
        int k = store_user_get(m->store, name, &u, error);
        if (k < 0)
                return k;
        reply_user(r, MHD_HTTP_OK, u);
        return 0;
}

static int users_update(Request *r, GError **error)
{
        static const char *const members[] = {"password", "role", NULL};
        Manager *m = request_manager(r);
        const char *name = request_param(r, "name");
        g_autoptr(JsonObject) o = NULL;
        const char *password = NULL, *role = NULL;
        g_autoptr(User) u = NULL;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        o = request_json_object(r, "user change", members, error);
        if (!o || !nm_json_get_string(o, "password", false, &password, error) ||
            !nm_json_get_string(o, "role", false, &role, error))
                return -EINVAL;
        if ((password && !password_valid(password, error)) || (role && !role_valid(role, error)))
                return -EINVAL;
        if (role && !request_auth(r)->admin) {
                g_set_error(error, NM_ERROR, NM_ERROR_FORBIDDEN, "Only admins may change roles");
                return -EPERM;
        }

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_user_get(m->store, name, &u, error);
        if (k < 0)
                return k;
        if (role && streq0(u->role, "admin") && !streq0(role, "admin")) {
                gint64 admins;
                k = store_user_count(m->store, "admin", &admins, error);
                if (k < 0)
                        return k;
                if (admins <= 1) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "\"%s\" is the last admin: make another user admin first", name);
                        return -EBUSY;
                }
        }
        if (password) {
                g_free(u->password_hash);
                k = auth_password_hash(password, &u->password_hash);
                if (k < 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to hash the password");
                        return k;
                }
                /* Every token issued so far stops working, even one of this very second. */
                u->password_changed_at = manager_now();
                u->token_generation++;
        }
        if (role) {
                g_free(u->role);
                u->role = g_strdup(role);
        }
        k = store_user_update(m->store, u, error);
        if (k >= 0)
                k = store_txn_commit(&t, error);
        if (k < 0)
                return k;
        log_info("Changed user \"%s\"%s%s.", name, password ? " (password)" : "", role ? " (role)" : "");
        reply_user(r, MHD_HTTP_OK, u);
        return 0;
}

static int users_delete(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *name = request_param(r, "name");
        g_autoptr(User) u = NULL;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_user_get(m->store, name, &u, error);
        if (k < 0)
                return k;
        if (streq0(u->role, "admin")) {
                gint64 admins;
                k = store_user_count(m->store, "admin", &admins, error);
                if (k < 0)
                        return k;
                if (admins <= 1) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "\"%s\" is the last admin and cannot be deleted", name);
                        return -EBUSY;
                }
        }
        k = store_user_delete(m->store, name, error);
        if (k >= 0)
                k = store_txn_commit(&t, error);
        if (k < 0)
                return k;
        log_info("Deleted user \"%s\".", name);
        request_reply_empty(r);
        return 0;
}

const Route http_user_routes[] = {
        {"POST", "/login", ACCESS_ANYONE, login},
        {"GET", "/users", ACCESS_ADMIN, users_list},
        {"POST", "/users", ACCESS_ADMIN, users_create},
        /* Users see and change (the password of) only themselves: the router checks. */
        {"GET", "/users/{name}", ACCESS_SELF, users_get},
        {"PUT", "/users/{name}", ACCESS_SELF, users_update},
        {"DELETE", "/users/{name}", ACCESS_ADMIN, users_delete},
        {},
};
