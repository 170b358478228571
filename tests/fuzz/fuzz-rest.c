/* libFuzzer target for the REST API's request bodies and paths (docs/protocol.md §2, §4, §5): any
 * bytes as a request to any route, answered by the real router and handlers (http_handle_detached)
 * over the real store (SQLite on tmpfs, put back to the same fixture before every input), never
 * crash, never answer 500 (the docs' "a bug") and never leave a request without an answer.
 *
 * An input is up to MAX_REQUESTS requests separated by a line "###". A request is a first line
 * "METHOD /path" (below /api/v1) and the body after it; in both, "@net", "@host", "@host2",
 * "@node", "@node2", "@key", "@token", "@user", "@dns", "@ext", "@rule", "@ns" (a nameserver's
 * domain) stand for the fixture's objects (the ids are new at every start). When the first
 * line is not of that form, a hash of it picks a route of the router's tables and the fixture fills
 * its {parameters}, so every input reaches a handler and new routes are fuzzed without a change
 * here. Routes below /host are called with a host's credential, the others with the master key.
 * POST /login is left out: its password check is asynchronous (the handler suspends). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "host-api.h"
#include "http.h"
#include "json-util.h"
#include "keys.h"
#include "log.h"
#include "manager.h"
#include "store.h"
#include "token.h"

#define MASTER_KEY   "fuzz-master-key-0123456789abcdef"
#define MAX_REQUESTS 8

/* Argon2id with the interactive limits costs about 0.1 s and 64 MiB a password: every input that
 * creates a user or changes a password would be that slow. The same algorithm with its smallest
 * limits keeps the code path (hashes are still verified by crypto_pwhash_str_verify, which reads
 * the limits from the hash) at fuzzing speed. Overrides libsodium's symbol in this program only. */
int crypto_pwhash_str(char out[crypto_pwhash_STRBYTES], const char *const passwd,
                      unsigned long long passwdlen, unsigned long long opslimit, size_t memlimit)
{
        return crypto_pwhash_str_alg(out, passwd, passwdlen, crypto_pwhash_OPSLIMIT_MIN,
                                     crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13);
}

typedef struct Fixture {
        Manager *manager;
        char *dir;
        char *db_path;
        GBytes *db;                   /* the database file after the fixture was made */
        char *host_auth, *host2_auth; /* "Bearer nmh.…" */
        char *master_auth;
        GHashTable *names; /* "@net" -> value */
        GPtrArray *routes; /* of const Route *, without POST /login */
        bool debug;        /* $FUZZ_REST_DEBUG: log, and show each request's answer */
} Fixture;

static Fixture fx;

static void die(const char *what, unsigned status, const char *body)
{
        fprintf(stderr, "fuzz-rest: making the fixture failed at %s: status %u: %s\n", what, status,
                body ? body : "(no body)");
        abort();
}

static char *call(const char *method, const char *path, const char *auth, const char *body, unsigned expect)
{
        char *out = NULL;
        unsigned status =
                http_handle_detached(fx.manager, method, path, auth, body, body ? strlen(body) : 0, &out);
        if (status != expect)
                die(path, status, out);
        return out;
}

static const char *member(const char *json, const char *name)
{
        g_autoptr(JsonObject) o = nm_json_parse_object(json, -1, NULL);
        const char *v = NULL;
        if (!o || !nm_json_get_string(o, name, true, &v, NULL) || !v)
                die(name, 0, json);
        return g_intern_string(v);
}

/* Registers a host with the token and returns its "Bearer <credential>"; its node id in the network
 * "office" goes to *ret_node. */
static char *register_host(const char *token, const char *name, const char *endpoint, const char **ret_host,
                           const char **ret_node)
{
        g_autoptr(NmRegistration) reg = nm_registration_new();
        g_auto(NmToken) t = {};
        NmKey wg_priv, msg_priv;

        if (!nm_token_decode(token, &t, NULL))
                die("decoding the token", 0, token);
        reg->token = g_strdup(token);
        reg->name = g_strdup(name);
        reg->listen_port = 51821;
        reg->endpoints = g_new0(char *, 2);
        reg->endpoints[0] = g_strdup(endpoint);
        nm_key_generate_wg(&wg_priv, &reg->wg_public_key);
        nm_key_generate_box(&msg_priv, &reg->msg_public_key);
        g_autofree char *body = nm_registration_to_json(reg);
        g_autofree char *answer = call("POST", "/api/v1/hosts/register", NULL, body, 201);
        g_autoptr(GError) e = NULL;
        g_autoptr(NmRegistered) r = nm_registered_parse(answer, -1, &t.server_key, &msg_priv, &e);
        if (!r || !r->state || r->state->networks->len < 1)
                die("opening the registration answer", 201, e ? e->message : answer);
        *ret_host = g_intern_string(r->host_id);
        *ret_node = g_intern_string(((NmNetworkState *)r->state->networks->pdata[0])->node_id);
        return g_strconcat("Bearer ", r->credential, NULL);
}

static void name_set(const char *placeholder, const char *value)
{
        g_hash_table_insert(fx.names, (char *)placeholder, (char *)g_intern_string(value));
}

static void make_fixture(void)
{
        const char *host, *node, *host2, *node2;

        g_free(call("POST", "/api/v1/networks", fx.master_auth,
                    "{\"name\":\"office\",\"ipv4_range\":\"10.99.0.0/24\",\"ipv6_range\":\"fd00:99::/64\"}",
                    201));
        g_free(call("POST", "/api/v1/networks", fx.master_auth,
                    "{\"name\":\"lab\",\"ipv4_range\":\"10.98.0.0/24\"}", 201));
        g_autofree char *key = call(
                "POST", "/api/v1/enrollment-keys", fx.master_auth,
                "{\"name\":\"k\",\"networks\":[\"office\"],\"unlimited\":true,\"tags\":[\"laptop\"]}", 201);
        fx.host_auth = register_host(member(key, "token"), "alpha", "198.18.0.1", &host, &node);
        fx.host2_auth = register_host(member(key, "token"), "beta", "198.18.0.2", &host2, &node2);
        g_autofree char *user =
                call("POST", "/api/v1/users", fx.master_auth,
                     "{\"username\":\"alice\",\"password\":\"alice-password-1\",\"role\":\"user\"}", 201);
        g_autofree char *dns = call("POST", "/api/v1/networks/office/dns", fx.master_auth,
                                    "{\"name\":\"printer\",\"ipv4\":\"10.99.0.50\"}", 201);
        g_autofree char *ingress = g_strdup_printf("/api/v1/nodes/%s/ingress", node);
        g_free(call("PUT", ingress, fx.master_auth, NULL, 200));
        g_autofree char *ext_body = g_strdup_printf("{\"name\":\"phone\",\"gateway\":\"%s\"}", node);
        g_autofree char *ext =
                call("POST", "/api/v1/networks/office/ext-clients", fx.master_auth, ext_body, 201);
        g_autofree char *rule_body = g_strdup_printf(
                "{\"source\":\"node:%s\",\"destination\":\"tag:laptop\",\"action\":\"deny\"}", node2);
        g_autofree char *rule =
                call("POST", "/api/v1/networks/office/acl/rules", fx.master_auth, rule_body, 201);
        g_autofree char *ns = call("POST", "/api/v1/networks/office/nameservers", fx.master_auth,
                                   "{\"domain\":\"corp.example\",\"servers\":[\"192.0.2.53\"]}", 201);

        name_set("@net", "office");
        name_set("@host", host);
        name_set("@host2", host2);
        name_set("@node", node);
        name_set("@node2", node2);
        name_set("@key", member(key, "id"));
        name_set("@token", member(key, "token"));
        name_set("@user", member(user, "username"));
        name_set("@dns", member(dns, "name"));
        name_set("@ext", member(ext, "id"));
        name_set("@rule", member(rule, "id"));
        name_set("@ns", member(ns, "domain"));
}

static void add_route(const Route *rt, void *userdata)
{
        if (!(streq0(rt->method, "POST") && streq0(rt->pattern, "/login")))
                g_ptr_array_add(fx.routes, (gpointer)rt);
}

static void remove_dir(void)
{
        if (fx.dir && g_str_has_prefix(fx.dir, "/dev/shm/fuzz-rest-")) {
                g_autoptr(GDir) d = g_dir_open(fx.dir, 0, NULL);
                const char *n;
                while (d && (n = g_dir_read_name(d))) {
                        g_autofree char *p = g_build_filename(fx.dir, n, NULL);
                        (void)unlink(p);
                }
                (void)rmdir(fx.dir);
        }
}

/* The database as the fixture left it: the store is closed (its WAL checkpointed), the file
 * written back and the store opened again. */
static void reset_store(void)
{
        g_autoptr(GError) e = NULL;
        store_free(TAKE_PTR(fx.manager->store));
        g_autofree char *wal = g_strconcat(fx.db_path, "-wal", NULL);
        g_autofree char *shm = g_strconcat(fx.db_path, "-shm", NULL);
        (void)unlink(wal);
        (void)unlink(shm);
        if (!g_file_set_contents_full(fx.db_path, g_bytes_get_data(fx.db, NULL),
                                      (gssize)g_bytes_get_size(fx.db), G_FILE_SET_CONTENTS_NONE, 0600, &e) ||
            store_open(fx.manager->config->database, &fx.manager->store, &e) < 0)
                die("resetting the store", 0, e->message);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        g_autoptr(GError) e = NULL;
        Config *config = NULL;
        char *envp[] = {NULL};

        fx.debug = getenv("FUZZ_REST_DEBUG") != NULL;
        log_set_max_level(fx.debug ? LOG_DEBUG : LOG_CRIT);
        if (nm_crypto_init() < 0)
                abort();
        fx.dir = g_strdup("/dev/shm/fuzz-rest-XXXXXX");
        if (!g_mkdtemp_full(fx.dir, 0700))
                abort();
        atexit(remove_dir);
        fx.db_path = g_build_filename(fx.dir, "netmaker.db", NULL);
        g_autofree char *conf_path = g_build_filename(fx.dir, "netmakerd.conf", NULL);
        g_autofree char *conf = g_strdup_printf("[netmakerd]\nlisten=127.0.0.1:0\ntls=no\nbroker_url=\n"
                                                "state_directory=%s\nmaster_key=" MASTER_KEY "\n"
                                                "admin_password=admin-password-1\nlogin_rate_limit=off\n"
                                                "register_rate_limit=off\n",
                                                fx.dir);
        if (!g_file_set_contents(conf_path, conf, -1, &e) || config_load(conf_path, envp, &config, &e) < 0) {
                fprintf(stderr, "fuzz-rest: %s\n", e->message);
                abort();
        }
        /* The real start-up (store, keys, first admin), listening on a loopback port nobody calls. */
        if (manager_new(config, &fx.manager) < 0 || manager_start(fx.manager) < 0)
                abort();
        fx.master_auth = g_strdup("Bearer " MASTER_KEY);
        fx.names = g_hash_table_new(g_str_hash, g_str_equal);
        fx.routes = g_ptr_array_new();
        http_routes_foreach(add_route, NULL);
        make_fixture();

        store_free(TAKE_PTR(fx.manager->store));
        gchar *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(fx.db_path, &data, &len, &e))
                die("reading the database", 0, e->message);
        fx.db = g_bytes_new_take(data, len);
        reset_store();
        return 0;
}

/* "/nodes/@node/tags" with the fixture's values; any other text stays. */
static char *expand_n(const char *text, size_t len)
{
        g_autoptr(GString) s = g_string_new(NULL);
        g_autofree char *copy = g_strndup(text, len);
        for (const char *p = copy; *p;) {
                if (*p == '@') {
                        size_t n = 1;
                        while (g_ascii_isalnum(p[n]))
                                n++;
                        g_autofree char *ph = g_strndup(p, n);
                        const char *v = g_hash_table_lookup(fx.names, ph);
                        if (v) {
                                g_string_append(s, v);
                                p += n;
                                continue;
                        }
                }
                g_string_append_c(s, *p++);
        }
        return g_string_free(TAKE_PTR(s), false);
}

static char *expand(const char *text)
{
        return expand_n(text, strlen(text));
}

/* A route's pattern with its {parameters} filled from the fixture. */
static char *fill(const Route *rt)
{
        g_auto(GStrv) parts = g_strsplit(rt->pattern, "/", -1);
        for (guint i = 1; parts[i]; i++) {
                if (parts[i][0] != '{')
                        continue;
                const char *prev = parts[i - 1], *v = "office";
                if (streq0(parts[i], "{name}"))
                        v = streq0(prev, "dns") ? "@dns" : "@user";
                else if (streq0(parts[i], "{id}"))
                        v = streq0(prev, "hosts")             ? "@host"
                            : streq0(prev, "enrollment-keys") ? "@key"
                            : streq0(prev, "ext-clients")     ? "@ext"
                            : streq0(prev, "rules")           ? "@rule"
                                                              : "@node";
                else if (streq0(parts[i], "{domain}"))
                        v = "@ns";
                g_free(parts[i]);
                parts[i] = g_strdup(v);
        }
        g_autofree char *p = g_strjoinv("/", parts);
        g_autofree char *full = g_strconcat(HTTP_API_PREFIX, p, NULL);
        return expand(full);
}

static void request(const char *data, size_t size)
{
        const char *nl = memchr(data, '\n', size);
        size_t line_len = nl ? (size_t)(nl - data) : size;
        g_autofree char *line = g_strndup(data, line_len);
        const char *raw_body = nl ? nl + 1 : data + size;
        size_t raw_len = size - (size_t)(raw_body - data);
        /* A NUL in the body stays (it is what a client may send), so expand around it. */
        const char *nul = memchr(raw_body, 0, raw_len);
        g_autofree char *head = expand_n(raw_body, nul ? (size_t)(nul - raw_body) : raw_len);
        g_autoptr(GString) b = g_string_new(head);
        if (nul)
                g_string_append_len(b, nul, (gssize)(raw_len - (size_t)(nul - raw_body)));
        const char *body = b->str;
        size_t body_len = b->len;
        g_autofree char *method = NULL, *path = NULL;
        const char *sp = strchr(line, ' ');

        if (sp && sp > line && sp[1] == '/' && strlen(line) == line_len) {
                method = g_strndup(line, (size_t)(sp - line));
                g_autofree char *rest = g_strconcat(HTTP_API_PREFIX, sp + 1, NULL);
                path = expand(rest);
        } else {
                const Route *rt = fx.routes->pdata[g_str_hash(line) % fx.routes->len];
                method = g_strdup(rt->method);
                path = fill(rt);
        }
        if (g_str_has_prefix(method, "POST") && streq0(path, HTTP_API_PREFIX "/login"))
                return;
        bool host =
                g_str_has_prefix(path, HTTP_API_PREFIX "/host/") || streq0(path, HTTP_API_PREFIX "/host");
        g_autofree char *answer = NULL;
        unsigned status = http_handle_detached(
                fx.manager, method, path, host ? fx.host_auth : fx.master_auth, body, body_len, &answer);
        if (fx.debug)
                fprintf(stderr, "fuzz-rest: %s %s -> %u %s\n", method, path, status, answer ? answer : "");
        if (status == 0 || status == 500) {
                fprintf(stderr, "fuzz-rest: %s %s answered %u: %s\n", method, path, status,
                        answer ? answer : "(no body)");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char sep[] = "\n###\n";
        const char *p = (const char *)data, *end = p + size;

        for (int i = 0; i < MAX_REQUESTS && p <= end; i++) {
                const char *next = memmem(p, (size_t)(end - p), sep, strlen(sep));
                request(p, next ? (size_t)(next - p) : (size_t)(end - p));
                if (!next)
                        break;
                p = next + strlen(sep);
        }
        reset_store();
        return 0;
}
