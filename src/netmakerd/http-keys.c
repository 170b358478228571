/* REST resource /enrollment-keys: keys that let hosts register (uses or unlimited, expiry, tags,
 * the networks they join), each shown with its enrollment token. */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"
#include "token.h"

#define MAX_KEY_NETWORKS 64
#define MAX_KEY_TAGS     32
#define MAX_KEY_USES     1000000
#define MAX_EXPIRES_AT   ((gint64)1 << 40)

void json_add_key(JsonBuilder *b, const EnrollmentKey *k, const char *token)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "id", k->id);
        nm_json_add_string(b, "name", k->name);
        nm_json_add_strv(b, "networks", (const char *const *)k->networks);
        nm_json_add_int(b, "uses_remaining", k->uses_remaining);
        nm_json_add_bool(b, "unlimited", k->unlimited);
        nm_json_add_int(b, "expires_at", k->expires_at);
        nm_json_add_strv(b, "tags", (const char *const *)k->tags);
        nm_json_add_int(b, "created_at", k->created_at);
        nm_json_add_string(b, "token", token);
        json_builder_end_object(b);
}

static void add_key(Manager *m, JsonBuilder *b, const EnrollmentKey *k)
{
        _cleanup_secret_ char *token = nm_token_encode(m->api_url, k->value, &m->msg_public,
                                                       m->has_token_pin ? &m->token_pin : NULL);
        json_add_key(b, k, token);
}

static bool has_duplicates(char **v, const char **ret)
{
        for (guint i = 0; v && v[i]; i++)
                for (guint j = 0; j < i; j++)
                        if (streq0(v[i], v[j])) {
                                *ret = v[i];
                                return true;
                        }
        return false;
}

static int keys_create(Request *r, GError **error)
{
        static const char *const members[] = {"name",       "networks", "uses", "unlimited",
                                              "expires_at", "tags",     NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "enrollment key", members, error);
        const char *name = NULL, *dup = NULL;
        g_auto(GStrv) networks = NULL, tags = NULL;
        gint64 uses = 0, expires_at = 0;
        bool unlimited = false;
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "name", true, &name, error) ||
            !nm_json_get_strv(o, "networks", true, MAX_KEY_NETWORKS, &networks, error) ||
            !nm_json_get_int(o, "uses", false, 1, MAX_KEY_USES, &uses, error) ||
            !nm_json_get_bool(o, "unlimited", false, &unlimited, error) ||
            !nm_json_get_int(o, "expires_at", false, 0, MAX_EXPIRES_AT, &expires_at, error) ||
            !nm_json_get_strv(o, "tags", false, MAX_KEY_TAGS, &tags, error))
                return -EINVAL;
        if (!nm_label_valid("key name", name, NM_KEY_NAME_MAX, error))
                return -EINVAL;
        if (unlimited && uses > 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Give either \"uses\" or \"unlimited\": true, not both");
                return -EINVAL;
        }
        if (expires_at != 0 && expires_at <= manager_now()) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "expires_at %" G_GINT64_FORMAT " is in the past (0 means never)", expires_at);
                return -EINVAL;
        }
        for (char **n = networks; *n; n++)
                if (!nm_network_name_valid(*n, error))
                        return -EINVAL;
        for (char **tg = tags; tg && *tg; tg++)
                if (!nm_label_valid("tag", *tg, NM_KEY_NAME_MAX, error))
                        return -EINVAL;
        if (has_duplicates(networks, &dup) || has_duplicates(tags, &dup)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "\"%s\" is listed twice", dup);
                return -EINVAL;
        }

        g_autoptr(EnrollmentKey) key = g_new0(EnrollmentKey, 1);
        key->id = nm_uuid_new();
        key->name = g_strdup(name);
        key->value = nm_key_value_new();
        key->networks = TAKE_PTR(networks);
        key->tags = tags ? TAKE_PTR(tags) : g_new0(char *, 1);
        key->unlimited = unlimited;
        key->uses_remaining = unlimited ? 0 : (uses ?: 1);
        key->expires_at = expires_at;
        key->created_at = manager_now();

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_key_insert(m->store, key, error); /* a missing network fails here: 404 */
        if (k >= 0)
                k = store_txn_commit(&t, error);
        if (k < 0)
                return k;
        log_info("Created enrollment key \"%s\" (%s).", key->name, key->id);

        g_autoptr(JsonBuilder) b = json_builder_new();
        add_key(m, b, key);
        request_reply_builder(r, MHD_HTTP_CREATED, b);
        return 0;
}

static int keys_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_key_list(m->store, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++)
                add_key(m, b, all->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int keys_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(EnrollmentKey) key = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_key_get(m->store, request_param(r, "id"), &key, error);
        if (k < 0)
                return k;
        add_key(m, b, key);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int keys_delete(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *id = request_param(r, "id");
        int k = store_key_delete(m->store, id, error);
        if (k < 0)
                return k;
        log_info("Deleted enrollment key %s.", id);
        request_reply_empty(r);
        return 0;
}

const Route http_key_routes[] = {
        {"GET", "/enrollment-keys", ACCESS_ADMIN, keys_list},
        {"POST", "/enrollment-keys", ACCESS_ADMIN, keys_create},
        {"GET", "/enrollment-keys/{id}", ACCESS_ADMIN, keys_get},
        {"DELETE", "/enrollment-keys/{id}", ACCESS_ADMIN, keys_delete},
        {},
};
