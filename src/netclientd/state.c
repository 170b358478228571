/* netclientd's on-disk state: atomic 0600 files in a 0700 directory. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "json-util.h"
#include "macro.h"
#include "nm-error.h"
#include "state.h"
#include "token.h"

/* "<what> <path>: <strerror>" */
static int set_errno_error(GError **error, int r, const char *what, const char *path)
{
        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "%s %s: %s", what, path, g_strerror(-r));
        return r;
}

int state_dir_prepare(const char *dir, GError **error)
{
        struct stat st;

        if (g_mkdir_with_parents(dir, 0700) < 0)
                return set_errno_error(error, -errno, "Failed to create state directory", dir);
        if (stat(dir, &st) < 0)
                return set_errno_error(error, -errno, "Failed to stat state directory", dir);
        if (!S_ISDIR(st.st_mode))
                return set_errno_error(error, -ENOTDIR, "Not a directory:", dir);
        if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
                return set_errno_error(error, -errno, "Failed to make private: state directory", dir);
        return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int state_write_atomic(const char *dir, const char *name, const void *data, size_t len, GError **error)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, name);
        _cleanup_close_ int fd = -1, dfd = -1;
        int r;

        fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
                return set_errno_error(error, -errno, "Failed to create a temporary file for", path);
        /* mkstemp honours the umask; make the mode explicit whatever the caller's umask is. */
        r = fchmod(fd, 0600) < 0 ? -errno : 0;
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return set_errno_error(error, r, "Failed to write", path);
        }
        if (close(TAKE_FD(fd)) < 0) {
                r = -errno;
                unlink(tmp);
                return set_errno_error(error, r, "Failed to write", path);
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return set_errno_error(error, r, "Failed to replace", path);
        }
        /* The rename itself is only durable once the directory is synced. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return set_errno_error(error, -errno, "Failed to sync directory of", path);
        return 0;
}

int state_read(const char *dir, const char *name, char **ret, size_t *ret_len, GError **error)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                return set_errno_error(error, -errno, "Failed to open", path);
        }
        if (fstat(fd, &st) < 0)
                return set_errno_error(error, -errno, "Failed to stat", path);
        if (!S_ISREG(st.st_mode))
                return set_errno_error(error, -EBADF, "Not a regular file:", path);
        if ((size_t)st.st_size > STATE_MAX_FILE_SIZE)
                return set_errno_error(error, -EFBIG, "Refusing to read", path);
        if ((st.st_mode & 077) && fchmod(fd, 0600) < 0)
                return set_errno_error(error, -errno, "Failed to make private:", path);

        g_autofree char *buf = g_malloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return set_errno_error(error, -errno, "Failed to read", path);
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = got;
        return 0;
}

int state_remove(const char *dir, const char *name, GError **error)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (unlink(path) < 0 && errno != ENOENT)
                return set_errno_error(error, -errno, "Failed to remove", path);
        return 0;
}

/* ---- identity ---------------------------------------------------------------------------------- */

int identity_generate(Identity *ret)
{
        int r = nm_key_generate_wg(&ret->wg_private, &ret->wg_public);
        if (r < 0)
                return r;
        return nm_key_generate_box(&ret->msg_private, &ret->msg_public);
}

void identity_clear(Identity *id)
{
        sodium_memzero(id, sizeof(*id));
}

static bool get_key(JsonObject *o, const char *member, NmKey *k, const char *file, GError **error)
{
        const char *s = NULL;
        if (!nm_json_get_string(o, member, true, &s, error))
                return false;
        if (nm_key_from_base64(s, k) < 0) {
                /* Never quote the value: it may be a private key. */
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid \"%s\" in %s: expected 44 characters of base64", member, file);
                return false;
        }
        return true;
}

int identity_load(const char *dir, Identity *ret, GError **error)
{
        static const char *const members[] = {"wg_private_key", "msg_private_key", NULL};
        _cleanup_secret_ char *data = NULL;
        size_t len = 0;
        Identity id = {};
        int r;

        r = state_read(dir, STATE_IDENTITY_FILE, &data, &len, error);
        if (r < 0)
                return r;
        g_autoptr(JsonObject) o = nm_json_parse_object(data, (gssize)len, error);
        if (!o || !nm_json_check_members(o, STATE_IDENTITY_FILE, members, error) ||
            !get_key(o, "wg_private_key", &id.wg_private, STATE_IDENTITY_FILE, error) ||
            !get_key(o, "msg_private_key", &id.msg_private, STATE_IDENTITY_FILE, error)) {
                identity_clear(&id);
                return -EINVAL;
        }
        /* Store it the way WireGuard does (clamped; the public key is the same), so comparing it with
         * what a device reports never sees a difference that is not one. */
        id.wg_private.b[0] &= 248;
        id.wg_private.b[31] = (id.wg_private.b[31] & 127) | 64;
        if (nm_key_public_from_private(&id.wg_private, &id.wg_public) < 0 ||
            crypto_scalarmult_base(id.msg_public.b, id.msg_private.b) != 0) {
                identity_clear(&id);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid key pair in %s",
                            STATE_IDENTITY_FILE);
                return -EINVAL;
        }
        *ret = id;
        identity_clear(&id);
        return 0;
}

int identity_save(const char *dir, const Identity *id, GError **error)
{
        char wg[NM_KEY_B64_LEN + 1], msg[NM_KEY_B64_LEN + 1];
        g_autoptr(JsonBuilder) b = json_builder_new();

        nm_key_to_base64(&id->wg_private, wg);
        nm_key_to_base64(&id->msg_private, msg);
        json_builder_begin_object(b);
        nm_json_add_string(b, "wg_private_key", wg);
        nm_json_add_string(b, "msg_private_key", msg);
        json_builder_end_object(b);
        sodium_memzero(wg, sizeof(wg));
        sodium_memzero(msg, sizeof(msg));
        _cleanup_secret_ char *json = nm_json_builder_to_string(b);
        return state_write_atomic(dir, STATE_IDENTITY_FILE, json, strlen(json), error);
}

int identity_load_or_create(const char *dir, Identity *ret, GError **error)
{
        int r = identity_load(dir, ret, error);
        if (r != -ENOENT)
                return r;
        r = identity_generate(ret);
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to generate keys: %s",
                            g_strerror(-r));
                return r;
        }
        r = identity_save(dir, ret, error);
        if (r < 0)
                return r;
        return 1;
}

/* ---- server ------------------------------------------------------------------------------------- */

ServerConfig *server_config_new(void)
{
        return g_new0(ServerConfig, 1);
}

void server_config_free(ServerConfig *s)
{
        if (!s)
                return;
        g_free(s->api);
        g_free(s->host_id);
        nm_free_secret(s->credential);
        g_free(s->mqtt_url);
        g_free(s->mqtt_username);
        nm_free_secret(s->mqtt_password);
        g_free(s->topic_msg);
        g_free(s->topic_report);
        g_free(s->mqtt_ca_pem);
        g_free(s);
}

char *server_config_to_json(const ServerConfig *s)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        char spk[NM_KEY_B64_LEN + 1];

        nm_key_to_base64(&s->server_key, spk);
        json_builder_begin_object(b);
        nm_json_add_string(b, "api", s->api);
        nm_json_add_string(b, "server_msg_key", spk);
        if (s->has_pin) {
                g_autofree char *pin = nm_tls_pin_format(&s->pin);
                nm_json_add_string(b, "pin", pin);
        }
        nm_json_add_string(b, "host_id", s->host_id);
        nm_json_add_string(b, "credential", s->credential);
        json_builder_set_member_name(b, "mqtt");
        if (s->mqtt_url) {
                json_builder_begin_object(b);
                nm_json_add_string(b, "url", s->mqtt_url);
                nm_json_add_string(b, "username", s->mqtt_username);
                nm_json_add_string(b, "password", s->mqtt_password);
                nm_json_add_string(b, "subscribe", s->topic_msg);
                nm_json_add_string(b, "publish", s->topic_report);
                if (s->mqtt_has_pin) {
                        g_autofree char *pin = nm_tls_pin_format(&s->mqtt_pin);
                        nm_json_add_string(b, "pin", pin);
                }
                if (s->mqtt_ca_pem)
                        nm_json_add_string(b, "ca", s->mqtt_ca_pem);
                json_builder_end_object(b);
        } else
                json_builder_add_null_value(b);
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

static bool get_pin(JsonObject *o, const char *member, bool *ret_has, NmTlsPin *ret, GError **error)
{
        const char *text = NULL;

        if (!nm_json_get_string(o, member, false, &text, error))
                return false;
        if (!text)
                return true;
        if (!nm_tls_pin_parse(text, ret)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s in %s: expected sha256//BASE64", member, STATE_SERVER_FILE);
                return false;
        }
        *ret_has = true;
        return true;
}

ServerConfig *server_config_from_json(const char *data, size_t len, GError **error)
{
        static const char *const members[] = {"api",        "server_msg_key", "pin", "host_id",
                                              "credential", "mqtt",           NULL};
        static const char *const mqtt_members[] = {"url",     "username", "password", "subscribe",
                                                   "publish", "pin",      "ca",       NULL};
        const char *api = NULL, *host_id = NULL, *cred = NULL, *url = NULL, *user = NULL, *pw = NULL,
                   *sub = NULL, *pub = NULL, *ca = NULL;
        JsonObject *mq = NULL;
        g_autoptr(ServerConfig) s = server_config_new();

        g_autoptr(JsonObject) o = nm_json_parse_object(data, (gssize)len, error);
        if (!o || !nm_json_check_members(o, STATE_SERVER_FILE, members, error) ||
            !nm_json_get_string(o, "api", true, &api, error) ||
            !get_key(o, "server_msg_key", &s->server_key, STATE_SERVER_FILE, error) ||
            !get_pin(o, "pin", &s->has_pin, &s->pin, error) ||
            !nm_json_get_string(o, "host_id", true, &host_id, error) ||
            !nm_json_get_string(o, "credential", true, &cred, error) ||
            !nm_json_get_object(o, "mqtt", false, &mq, error))
                return NULL;
        if (mq && (!nm_json_check_members(mq, "mqtt", mqtt_members, error) ||
                   !nm_json_get_string(mq, "url", true, &url, error) ||
                   !nm_json_get_string(mq, "username", true, &user, error) ||
                   !nm_json_get_string(mq, "password", true, &pw, error) ||
                   !nm_json_get_string(mq, "subscribe", true, &sub, error) ||
                   !nm_json_get_string(mq, "publish", true, &pub, error) ||
                   !get_pin(mq, "pin", &s->mqtt_has_pin, &s->mqtt_pin, error) ||
                   !nm_json_get_string(mq, "ca", false, &ca, error)))
                return NULL;
        if (!nm_api_url_valid(api) || !nm_uuid_valid(host_id)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid server URL or host id in %s", STATE_SERVER_FILE);
                return NULL;
        }
        s->api = g_strdup(api);
        s->host_id = g_strdup(host_id);
        s->credential = g_strdup(cred);
        s->mqtt_url = g_strdup(url);
        s->mqtt_username = g_strdup(user);
        s->mqtt_password = g_strdup(pw);
        s->topic_msg = g_strdup(sub);
        s->topic_report = g_strdup(pub);
        s->mqtt_ca_pem = g_strdup(ca);
        return TAKE_PTR(s);
}

int server_config_load(const char *dir, ServerConfig **ret, GError **error)
{
        _cleanup_secret_ char *data = NULL;
        size_t len = 0;
        int r = state_read(dir, STATE_SERVER_FILE, &data, &len, error);
        if (r < 0)
                return r;
        ServerConfig *s = server_config_from_json(data, len, error);
        if (!s)
                return -EINVAL;
        *ret = s;
        return 0;
}

int server_config_save(const char *dir, const ServerConfig *s, GError **error)
{
        _cleanup_secret_ char *json = server_config_to_json(s);
        return state_write_atomic(dir, STATE_SERVER_FILE, json, strlen(json), error);
}

/* ---- node state --------------------------------------------------------------------------------- */

NodeState *node_state_new(void)
{
        NodeState *n = g_new0(NodeState, 1);
        n->disconnected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return n;
}

void node_state_free(NodeState *n)
{
        if (!n)
                return;
        nm_state_free(n->state);
        g_hash_table_unref(n->disconnected);
        g_free(n);
}

static int strcmp_p(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char *node_state_to_json(const NmState *state, GHashTable *disconnected)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        nm_json_add_int(b, "version", 1);
        json_builder_set_member_name(b, "state");
        nm_state_to_json(state, b);
        json_builder_set_member_name(b, "disconnected");
        json_builder_begin_array(b);
        if (disconnected) {
                g_autofree gpointer *keys = g_hash_table_get_keys_as_array(disconnected, NULL);
                guint n = g_hash_table_size(disconnected);
                qsort(keys, n, sizeof(gpointer), strcmp_p);
                for (guint i = 0; i < n; i++)
                        json_builder_add_string_value(b, keys[i]);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        return nm_json_builder_to_string(b);
}

NodeState *node_state_from_json(const char *data, size_t len, GError **error)
{
        static const char *const members[] = {"version", "state", "disconnected", NULL};
        gint64 version = 0;
        g_auto(GStrv) disc = NULL;
        g_autoptr(NodeState) n = node_state_new();

        g_autoptr(JsonObject) o = nm_json_parse_object(data, (gssize)len, error);
        if (!o || !nm_json_check_members(o, STATE_NODES_FILE, members, error) ||
            !nm_json_get_int(o, "version", true, 1, 1, &version, error) ||
            !nm_json_get_strv(o, "disconnected", false, 4096, &disc, error))
                return NULL;
        if (!json_object_has_member(o, "state")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Missing \"state\" in %s",
                            STATE_NODES_FILE);
                return NULL;
        }
        n->state = nm_state_from_json(json_object_get_member(o, "state"), error);
        if (!n->state)
                return NULL;
        for (char **d = disc; d && *d; d++)
                g_hash_table_add(n->disconnected, g_strdup(*d));
        return TAKE_PTR(n);
}

int node_state_load(const char *dir, NodeState **ret, GError **error)
{
        g_autofree char *data = NULL;
        size_t len = 0;
        int r = state_read(dir, STATE_NODES_FILE, &data, &len, error);
        if (r < 0)
                return r;
        NodeState *n = node_state_from_json(data, len, error);
        if (!n)
                return -EINVAL;
        *ret = n;
        return 0;
}

int node_state_save(const char *dir, const NmState *state, GHashTable *disconnected, GError **error)
{
        g_autofree char *json = node_state_to_json(state, disconnected);
        return state_write_atomic(dir, STATE_NODES_FILE, json, strlen(json), error);
}
