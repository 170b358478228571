/* netmakerd's REST authentication: the Authorization header's bearer credential (a user token, a
 * host credential or the master key) checked against the route's access rule (docs/protocol.md
 * §2.2): 401 for a missing, malformed, forged, expired or revoked credential, 403 for a valid one
 * of the wrong kind or role, or a user's on another user's {name}. */
#include <errno.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "nm-error.h"

static int authenticate_user_token(Request *r, const char *token, Auth *ret, GError **error)
{
        Manager *m = request_manager(r);
        g_auto(UserClaims) claims = {};
        g_autoptr(User) u = NULL;
        g_autoptr(GError) e = NULL;
        int k;

        k = auth_user_token_verify(m->token_secret, token, manager_now(), &claims);
        if (k == -ETIME) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The token has expired: log in again");
                return k;
        }
        if (k < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED, "Invalid token");
                return k;
        }
        k = store_user_get(m->store, claims.sub, &u, &e);
        if (k == -ENOENT) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED, "The token's user no longer exists");
                return k;
        }
        if (k < 0) {
                g_propagate_error(error, TAKE_PTR(e));
                return k;
        }
        /* The generation revokes tokens of the second of a password change too; the time check
         * still covers tokens from before schema 5, which all carry generation 0. */
        if (claims.gen != u->token_generation || claims.iat < u->password_changed_at) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "The token was issued before the last password change: log in again");
                return -EKEYREVOKED;
        }
        ret->kind = AUTH_USER;
        ret->username = g_strdup(u->username);
        ret->admin = streq0(u->role, "admin");
        return 0;
}

static int authenticate_host(Request *r, const char *credential, Auth *ret, GError **error)
{
        Manager *m = request_manager(r);
        g_autofree char *host_id = NULL;
        _cleanup_secret_ char *secret = NULL;
        g_autoptr(Host) h = NULL;
        g_autoptr(GError) e = NULL;
        int k;

        if (auth_host_credential_parse(credential, &host_id, &secret) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED, "Invalid host credential");
                return -EBADMSG;
        }
        k = store_host_get(m->store, host_id, &h, &e);
        if (k == -ENOENT || (k >= 0 && !auth_host_secret_verify(h->credential_hash, secret))) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "Invalid host credential (the host may have been deleted)");
                return -EACCES;
        }
        if (k < 0) {
                g_propagate_error(error, TAKE_PTR(e));
                return k;
        }
        ret->kind = AUTH_HOST;
        ret->host_id = TAKE_PTR(host_id);
        return 0;
}

int http_authenticate(Request *r, const char *header, RouteAccess access, Auth *ret, GError **error)
{
        Manager *m = request_manager(r);
        int k;

        if (access == ACCESS_ANYONE)
                return 0;
        if (!header || !*header) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "Missing credential: send \"Authorization: Bearer <%s>\"",
                            access == ACCESS_HOST ? "host credential" : "token");
                return -EACCES;
        }
        if (g_ascii_strncasecmp(header, "Bearer ", 7) != 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                            "Unsupported Authorization scheme: use \"Bearer <credential>\"");
                return -EACCES;
        }
        const char *cred = header + 7;
        while (*cred == ' ')
                cred++;

        if (g_str_has_prefix(cred, AUTH_HOST_CREDENTIAL_PREFIX))
                k = authenticate_host(r, cred, ret, error);
        else if (g_str_has_prefix(cred, AUTH_USER_TOKEN_PREFIX))
                k = authenticate_user_token(r, cred, ret, error);
        else if (m->config->master_key && auth_master_key_matches(m->config->master_key, cred)) {
                ret->kind = AUTH_MASTER;
                ret->admin = true;
                k = 0;
        } else {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAUTHENTICATED, "Invalid credential");
                k = -EACCES;
        }
        if (k < 0)
                return k;

        if (access == ACCESS_HOST && ret->kind != AUTH_HOST) {
                g_set_error(error, NM_ERROR, NM_ERROR_FORBIDDEN,
                            "Only hosts may call %s: use the host credential from registration",
                            request_path(r));
                return -EPERM;
        }
        if (access != ACCESS_HOST && ret->kind == AUTH_HOST) {
                g_set_error(error, NM_ERROR, NM_ERROR_FORBIDDEN,
                            "A host credential is accepted only by the /api/v1/host endpoints");
                return -EPERM;
        }
        if (access == ACCESS_ADMIN && !ret->admin) {
                g_set_error(error, NM_ERROR, NM_ERROR_FORBIDDEN, "%s %s requires the admin role",
                            request_method(r), request_path(r));
                return -EPERM;
        }
        if (access == ACCESS_SELF && !ret->admin && !streq0(ret->username, request_param(r, "name"))) {
                g_set_error(error, NM_ERROR, NM_ERROR_FORBIDDEN, "Only admins may access other users");
                return -EPERM;
        }
        return 0;
}

const char *route_access_to_string(RouteAccess a)
{
        static const char *const names[_ACCESS_MAX] = {
                [ACCESS_ANYONE] = "anyone", [ACCESS_USER] = "user", [ACCESS_SELF] = "self",
                [ACCESS_ADMIN] = "admin",   [ACCESS_HOST] = "host",
        };
        return a >= 0 && a < _ACCESS_MAX ? names[a] : NULL;
}
