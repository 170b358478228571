/* netmakerd's store: the schema and its migrations, transactions, and typed access to every
 * object, in SQL that SQLite and PostgreSQL both run. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "json-util.h"
#include "log.h"
#include "nm-error.h"
#include "store.h"

struct Store {
        const StoreBackend *backend;
        void *db;
        bool in_txn;
};

/* ---- results -------------------------------------------------------------------------------- */

StoreResult *store_result_new(guint n_cols)
{
        StoreResult *r = g_new0(StoreResult, 1);
        r->n_cols = n_cols;
        return r;
}

void store_result_add_row(StoreResult *r)
{
        guint n = (r->n_rows + 1) * r->n_cols;
        r->types = g_renew(StoreType, r->types, n);
        r->ints = g_renew(gint64, r->ints, n);
        r->texts = g_renew(char *, r->texts, n);
        for (guint i = r->n_rows * r->n_cols; i < n; i++) {
                r->types[i] = STORE_NULL;
                r->ints[i] = 0;
                r->texts[i] = NULL;
        }
        r->n_rows++;
}

void store_result_set(StoreResult *r, guint col, StoreType type, gint64 i, const char *s)
{
        g_assert(r->n_rows > 0 && col < r->n_cols);
        guint k = (r->n_rows - 1) * r->n_cols + col;
        r->types[k] = type;
        r->ints[k] = i;
        g_free(r->texts[k]);
        r->texts[k] = type == STORE_TEXT ? g_strdup(s) : NULL;
}

void store_result_free(StoreResult *r)
{
        if (!r)
                return;
        for (guint i = 0; i < r->n_rows * r->n_cols; i++)
                g_free(r->texts[i]);
        g_free(r->types);
        g_free(r->ints);
        g_free(r->texts);
        g_free(r);
}

const char *store_result_text(const StoreResult *r, guint row, guint col)
{
        g_assert(row < r->n_rows && col < r->n_cols);
        return r->texts[row * r->n_cols + col];
}

gint64 store_result_int(const StoreResult *r, guint row, guint col)
{
        g_assert(row < r->n_rows && col < r->n_cols);
        guint k = row * r->n_cols + col;
        if (r->types[k] == STORE_TEXT)
                return g_ascii_strtoll(r->texts[k], NULL, 10);
        return r->ints[k];
}

bool store_result_is_null(const StoreResult *r, guint row, guint col)
{
        g_assert(row < r->n_rows && col < r->n_cols);
        return r->types[row * r->n_cols + col] == STORE_NULL;
}

/* ---- schema --------------------------------------------------------------------------------- */

/* Each migration runs once, in order, inside the start-up transaction. Never edit a released
 * one: add the next. */
static const char *const migrations[] = {
        /* 1: the initial schema. */
        "CREATE TABLE settings ("
        "  name TEXT PRIMARY KEY,"
        "  value TEXT NOT NULL);"
        "CREATE TABLE users ("
        "  username TEXT PRIMARY KEY,"
        "  password_hash TEXT NOT NULL,"
        "  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),"
        "  created_at BIGINT NOT NULL,"
        "  password_changed_at BIGINT NOT NULL);"
        "CREATE TABLE networks ("
        "  name TEXT PRIMARY KEY,"
        "  ipv4_range TEXT,"
        "  ipv6_range TEXT,"
        "  listen_port INTEGER NOT NULL,"
        "  keepalive INTEGER NOT NULL,"
        "  mtu INTEGER NOT NULL,"
        "  dns_domain TEXT NOT NULL,"
        "  created_at BIGINT NOT NULL);"
        "CREATE TABLE enrollment_keys (  id TEXT PRIMARY KEY,  name TEXT NOT NULL,"
        "  value TEXT NOT NULL UNIQUE,"
        "  uses_remaining INTEGER NOT NULL,"
        "  unlimited INTEGER NOT NULL,"
        "  expires_at BIGINT NOT NULL,"
        "  tags TEXT NOT NULL,"
        "  created_at BIGINT NOT NULL);"
        "CREATE TABLE enrollment_key_networks ("
        "  key_id TEXT NOT NULL REFERENCES enrollment_keys (id) ON DELETE CASCADE,"
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  position INTEGER NOT NULL,"
        "  PRIMARY KEY (key_id, network));"
        "CREATE INDEX enrollment_key_networks_network ON enrollment_key_networks (network);"
        "CREATE TABLE hosts ("
        "  id TEXT PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  os TEXT NOT NULL,"
        "  version TEXT NOT NULL,"
        "  wg_public_key TEXT NOT NULL UNIQUE,"
        "  msg_public_key TEXT NOT NULL,"
        "  listen_port INTEGER NOT NULL,"
        "  endpoints TEXT NOT NULL,"
        "  public_endpoint TEXT,"
        "  credential_hash TEXT NOT NULL,"
        "  tags TEXT NOT NULL,"
        "  last_checkin BIGINT NOT NULL,"
        "  created_at BIGINT NOT NULL,"
        "  serial BIGINT NOT NULL);"
        "CREATE TABLE nodes (  id TEXT PRIMARY KEY,"
        "  host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,"
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  ipv4 TEXT,"
        "  ipv6 TEXT,"
        "  listen_port INTEGER NOT NULL,"
        "  connected INTEGER NOT NULL,"
        "  created_at BIGINT NOT NULL,"
        "  UNIQUE (host_id, network),"
        "  UNIQUE (network, ipv4),"
        "  UNIQUE (network, ipv6));"
        "CREATE INDEX nodes_host ON nodes (host_id);"
        "CREATE TABLE account_cleanup ("
        "  host_id TEXT PRIMARY KEY,"
        "  queued_at BIGINT NOT NULL);",
        /* 2: custom DNS names */
        "CREATE TABLE dns_names ("
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  ipv4 TEXT,"
        "  ipv6 TEXT,"
        "  created_at BIGINT NOT NULL,"
        "  PRIMARY KEY (network, name),"
        "  CHECK (ipv4 IS NOT NULL OR ipv6 IS NOT NULL));",
        /* 3: topologies (docs/protocol.md §4): node tags and roles, each network's ACL default
         * and rules, external clients. */
        "ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';"
        "ALTER TABLE nodes ADD COLUMN egress_ranges TEXT;"
        "ALTER TABLE nodes ADD COLUMN egress_nat INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE nodes ADD COLUMN internet_gateway INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE nodes ADD COLUMN ingress INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE nodes ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE nodes ADD COLUMN relayed_by TEXT;"
        "ALTER TABLE nodes ADD COLUMN internet_gateway_via TEXT;"
        "CREATE TABLE acl_defaults ("
        "  network TEXT PRIMARY KEY REFERENCES networks (name) ON DELETE CASCADE,"
        "  action TEXT NOT NULL CHECK (action IN ('allow', 'deny')));"
        "CREATE TABLE acl_rules ("
        "  id TEXT PRIMARY KEY,"
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  source TEXT NOT NULL,"
        "  destination TEXT NOT NULL,"
        "  action TEXT NOT NULL CHECK (action IN ('allow', 'deny')),"
        "  created_at BIGINT NOT NULL);"
        "CREATE INDEX acl_rules_network ON acl_rules (network);"
        "CREATE TABLE ext_clients ("
        "  id TEXT PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  gateway TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
        "  ipv4 TEXT,"
        "  ipv6 TEXT,"
        "  public_key TEXT NOT NULL UNIQUE,"
        "  enabled INTEGER NOT NULL,"
        "  dns TEXT,"
        "  extra_allowed_ips TEXT NOT NULL,"
        "  created_at BIGINT NOT NULL,"
        "  UNIQUE (network, name),"
        "  UNIQUE (network, ipv4),"
        "  UNIQUE (network, ipv6));"
        "CREATE INDEX ext_clients_gateway ON ext_clients (gateway);",
        /* 4: the nodes an external client may not reach (docs/topologies.md). */
        "ALTER TABLE ext_clients ADD COLUMN denied_nodes TEXT NOT NULL DEFAULT '[]';",
        /* 5: each user's token generation, one more at every password change (docs/protocol.md
         * §2.2); 0 is what tokens from before carry. */
        "ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;",
        /* 6: external clients with full-tunnel access through their gateway (docs/topologies.md). */
        "ALTER TABLE ext_clients ADD COLUMN internet_gateway INTEGER NOT NULL DEFAULT 0;",
        /* 7: hosts' settings made by the admin (NULL: the default), and each network's nameservers
         * (docs/protocol.md §2.4, §5.1). */
        "ALTER TABLE hosts ADD COLUMN static_listen_port INTEGER;"
        "ALTER TABLE hosts ADD COLUMN static_endpoint TEXT;"
        "ALTER TABLE hosts ADD COLUMN keepalive INTEGER;"
        "ALTER TABLE hosts ADD COLUMN mtu INTEGER;"
        "CREATE TABLE nameservers ("
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  domain TEXT NOT NULL,"
        "  servers TEXT NOT NULL,"
        "  created_at BIGINT NOT NULL,"
        "  PRIMARY KEY (network, domain));",
        /* 8: real networks (docs/topologies.md "Endpoints", "Failover"): each node's endpoint as the
         * server's endpoint observer saw its WireGuard packets arrive, the source address of each
         * host's last HTTPS request, the failover relay role, and the pairs relayed because they
         * could not connect directly (node_a < node_b). */
        "ALTER TABLE nodes ADD COLUMN observed_endpoint TEXT;"
        "ALTER TABLE nodes ADD COLUMN observed_at BIGINT NOT NULL DEFAULT 0;"
        "ALTER TABLE nodes ADD COLUMN failover INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN http_address TEXT;"
        "CREATE TABLE failovers ("
        "  network TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,"
        "  node_a TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
        "  node_b TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
        "  relay TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
        "  since BIGINT NOT NULL,"
        "  PRIMARY KEY (node_a, node_b),"
        "  CHECK (node_a < node_b));"
        "CREATE INDEX failovers_network ON failovers (network);",
};

static gint64 now_sec(void)
{
        return (gint64)time(NULL);
}

static int migrate(Store *s, GError **error)
{
        _cleanup_txn_ StoreTxn t = {};
        g_autoptr(StoreResult) res = NULL;
        int r;

        r = store_txn_begin(s, &t, error);
        if (r < 0)
                return r;
        r = s->backend->exec_script(s->db,
                                    "CREATE TABLE IF NOT EXISTS schema_version ("
                                    "  version INTEGER PRIMARY KEY,"
                                    "  applied_at BIGINT NOT NULL);",
                                    error);
        if (r < 0)
                return r;
        r = store_exec(s, "SELECT MAX(version) FROM schema_version", NULL, 0, &res, error);
        if (r < 0)
                return r;
        gint64 have = res->n_rows > 0 ? store_result_int(res, 0, 0) : 0;
        if (have > (gint64)ELEMENTSOF(migrations)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL,
                            "The database has schema version %" G_GINT64_FORMAT
                            ", newer than this netmakerd knows (%zu): refusing to use it",
                            have, ELEMENTSOF(migrations));
                return -EPROTO;
        }
        for (gint64 v = have + 1; v <= (gint64)ELEMENTSOF(migrations); v++) {
                log_debug("Applying database schema migration %" G_GINT64_FORMAT ".", v);
                r = s->backend->exec_script(s->db, migrations[v - 1], error);
                if (r < 0)
                        return r;
                StoreValue p[] = {SV_INT(v), SV_INT(now_sec())};
                r = store_exec(s, "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", p, 2,
                               NULL, error);
                if (r < 0)
                        return r;
        }
        return store_txn_commit(&t, error);
}

int store_open(const char *url, Store **ret, GError **error)
{
        g_autoptr(Store) s = g_new0(Store, 1);
        const char *location;
        int r;

        if (g_str_has_prefix(url, "sqlite://")) {
                s->backend = &store_backend_sqlite;
                location = url + strlen("sqlite://");
        } else {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Unsupported database URL: use sqlite:///PATH");
                return -EOPNOTSUPP;
        }
        r = s->backend->open(location, &s->db, error);
        if (r < 0)
                return r;
        r = migrate(s, error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void store_free(Store *s)
{
        if (!s)
                return;
        if (s->db)
                s->backend->close(s->db);
        g_free(s);
}

const char *store_backend_name(Store *s)
{
        return s->backend->name;
}

int store_schema_version(Store *s, gint64 *ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT MAX(version) FROM schema_version", NULL, 0, &res, error);
        if (r < 0)
                return r;
        *ret = res->n_rows ? store_result_int(res, 0, 0) : 0;
        return 0;
}

int store_exec(Store *s, const char *sql, const StoreValue *params, size_t n_params, StoreResult **ret,
               GError **error)
{
        return s->backend->exec(s->db, sql, params, n_params, ret, error);
}

int store_txn_begin(Store *s, StoreTxn *t, GError **error)
{
        g_assert(!s->in_txn);
        int r = s->backend->begin(s->db, error);
        if (r < 0)
                return r;
        s->in_txn = true;
        t->store = s;
        t->active = true;
        return 0;
}

int store_txn_commit(StoreTxn *t, GError **error)
{
        g_assert(t->active);
        int r = t->store->backend->commit(t->store->db, error);
        if (r < 0)
                return r; /* store_txn_done() rolls back */
        t->active = false;
        t->store->in_txn = false;
        return 0;
}

void store_txn_done(StoreTxn *t)
{
        if (!t || !t->active)
                return;
        t->store->backend->rollback(t->store->db);
        t->active = false;
        t->store->in_txn = false;
}

bool store_in_transaction(Store *s)
{
        return s->in_txn;
}

/* ---- helpers -------------------------------------------------------------------------------- */

char *store_strv_to_json(char **v)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_array(b);
        for (char **i = v; i && *i; i++)
                json_builder_add_string_value(b, *i);
        json_builder_end_array(b);
        return nm_json_builder_to_string(b);
}

char **store_json_to_strv(const char *text)
{
        g_autoptr(JsonNode) n = text ? nm_json_parse(text, -1, NULL) : NULL;
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        if (n && JSON_NODE_HOLDS_ARRAY(n)) {
                JsonArray *a = json_node_get_array(n);
                for (guint i = 0; i < json_array_get_length(a); i++) {
                        const char *s = json_array_get_string_element(a, i);
                        if (s)
                                g_strv_builder_add(b, s);
                }
        }
        return g_strv_builder_end(b);
}

int store_not_found(GError **error, const char *what, const char *name)
{
        g_autofree char *shown = g_utf8_make_valid(name, MIN(strlen(name), 80));
        g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "%s \"%s\" does not exist", what, shown);
        return -ENOENT;
}

/* Rewrites a backend's unique-violation error into one that names the object. */
static int conflict(int r, GError **error, const char *fmt, ...) _printf_(3, 4);
static int conflict(int r, GError **error, const char *fmt, ...)
{
        va_list ap;
        if (r != -EEXIST)
                return r;
        g_clear_error(error);
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(error, NM_ERROR, NM_ERROR_CONFLICT, msg);
        return r;
}

/* ---- settings ------------------------------------------------------------------------------- */

int store_setting_get(Store *s, const char *name, char **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(name)};
        int r = store_exec(s, "SELECT value FROM settings WHERE name = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "Setting", name);
        *ret = g_strdup(store_result_text(res, 0, 0));
        return 0;
}

int store_setting_set(Store *s, const char *name, const char *value, GError **error)
{
        StoreValue p[] = {SV_TEXT(name), SV_TEXT(value)};
        return store_exec(s,
                          "INSERT INTO settings (name, value) VALUES ($1, $2) "
                          "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                          p, 2, NULL, error);
}

/* ---- users ---------------------------------------------------------------------------------- */

void user_free(User *u)
{
        if (!u)
                return;
        g_free(u->username);
        g_free(u->password_hash);
        g_free(u->role);
        g_free(u);
}

#define USER_COLUMNS "username, password_hash, role, created_at, password_changed_at, token_generation"

static User *user_from_row(const StoreResult *res, guint row)
{
        User *u = g_new0(User, 1);
        u->username = g_strdup(store_result_text(res, row, 0));
        u->password_hash = g_strdup(store_result_text(res, row, 1));
        u->role = g_strdup(store_result_text(res, row, 2));
        u->created_at = store_result_int(res, row, 3);
        u->password_changed_at = store_result_int(res, row, 4);
        u->token_generation = store_result_int(res, row, 5);
        return u;
}

int store_user_get(Store *s, const char *username, User **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(username)};
        int r = store_exec(s, "SELECT " USER_COLUMNS " FROM users WHERE username = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "User", username);
        *ret = user_from_row(res, 0);
        return 0;
}

int store_user_list(Store *s, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT " USER_COLUMNS " FROM users ORDER BY username", NULL, 0, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)user_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, user_from_row(res, i));
        *ret = a;
        return 0;
}

int store_user_insert(Store *s, const User *u, GError **error)
{
        StoreValue p[] = {
                SV_TEXT(u->username),  SV_TEXT(u->password_hash),      SV_TEXT(u->role),
                SV_INT(u->created_at), SV_INT(u->password_changed_at), SV_INT(u->token_generation)};
        int r = store_exec(s, "INSERT INTO users (" USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6)", p, 6,
                           NULL, error);
        return conflict(r, error, "User \"%s\" already exists", u->username);
}

int store_user_update(Store *s, const User *u, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(u->username), SV_TEXT(u->password_hash), SV_TEXT(u->role),
                          SV_INT(u->password_changed_at), SV_INT(u->token_generation)};
        int r = store_exec(s,
                           "UPDATE users SET password_hash = $2, role = $3, password_changed_at = $4, "
                           "token_generation = $5 WHERE username = $1",
                           p, 5, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "User", u->username);
        return 0;
}

int store_user_delete(Store *s, const char *username, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(username)};
        int r = store_exec(s, "DELETE FROM users WHERE username = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "User", username);
        return 0;
}

int store_user_count(Store *s, const char *role, gint64 *ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(role)};
        int r = role ? store_exec(s, "SELECT COUNT(*) FROM users WHERE role = $1", p, 1, &res, error)
                     : store_exec(s, "SELECT COUNT(*) FROM users", NULL, 0, &res, error);
        if (r < 0)
                return r;
        *ret = store_result_int(res, 0, 0);
        return 0;
}

/* ---- networks ------------------------------------------------------------------------------- */

void network_free(Network *n)
{
        if (!n)
                return;
        g_free(n->name);
        g_free(n->ipv4_range);
        g_free(n->ipv6_range);
        g_free(n->dns_domain);
        g_free(n);
}

#define NETWORK_SELECT                                                                                      \
        "SELECT n.name, n.ipv4_range, n.ipv6_range, n.listen_port, n.keepalive, n.mtu, n.dns_domain, "      \
        "n.created_at, (SELECT COUNT(*) FROM nodes WHERE nodes.network = n.name) FROM networks n "

static Network *network_from_row(const StoreResult *res, guint row)
{
        Network *n = g_new0(Network, 1);
        n->name = g_strdup(store_result_text(res, row, 0));
        n->ipv4_range = g_strdup(store_result_text(res, row, 1));
        n->ipv6_range = g_strdup(store_result_text(res, row, 2));
        n->listen_port = (guint16)store_result_int(res, row, 3);
        n->keepalive = (guint)store_result_int(res, row, 4);
        n->mtu = (guint)store_result_int(res, row, 5);
        n->dns_domain = g_strdup(store_result_text(res, row, 6));
        n->created_at = store_result_int(res, row, 7);
        n->n_nodes = store_result_int(res, row, 8);
        return n;
}

int store_network_get(Store *s, const char *name, Network **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(name)};
        int r = store_exec(s, NETWORK_SELECT "WHERE n.name = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "Network", name);
        *ret = network_from_row(res, 0);
        return 0;
}

int store_network_list(Store *s, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, NETWORK_SELECT "ORDER BY n.name", NULL, 0, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)network_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, network_from_row(res, i));
        *ret = a;
        return 0;
}

int store_network_insert(Store *s, const Network *n, GError **error)
{
        StoreValue p[] = {SV_TEXT(n->name),       SV_TEXT(n->ipv4_range), SV_TEXT(n->ipv6_range),
                          SV_INT(n->listen_port), SV_INT(n->keepalive),   SV_INT(n->mtu),
                          SV_TEXT(n->dns_domain), SV_INT(n->created_at)};
        int r = store_exec(
                s,
                "INSERT INTO networks (name, ipv4_range, ipv6_range, listen_port, keepalive, mtu, "
                "dns_domain, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                p, 8, NULL, error);
        return conflict(r, error, "Network \"%s\" already exists", n->name);
}

int store_network_update(Store *s, const Network *n, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(n->name), SV_INT(n->listen_port), SV_INT(n->keepalive), SV_INT(n->mtu),
                          SV_TEXT(n->dns_domain)};
        int r = store_exec(s,
                           "UPDATE networks SET listen_port = $2, keepalive = $3, mtu = $4, dns_domain = $5 "
                           "WHERE name = $1",
                           p, 5, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Network", n->name);
        return 0;
}

int store_network_delete(Store *s, const char *name, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(name)};
        int r = store_exec(s, "DELETE FROM networks WHERE name = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Network", name);
        return 0;
}

/* ---- enrollment keys ------------------------------------------------------------------------ */

void enrollment_key_free(EnrollmentKey *k)
{
        if (!k)
                return;
        g_free(k->id);
        g_free(k->name);
        nm_free_secret(k->value);
        g_strfreev(k->networks);
        g_strfreev(k->tags);
        g_free(k);
}

#define KEY_SELECT                                                                                          \
        "SELECT id, name, value, uses_remaining, unlimited, expires_at, tags, created_at FROM "             \
        "enrollment_keys "

static int key_networks(Store *s, EnrollmentKey *k, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(k->id)};
        int r = store_exec(s,
                           "SELECT network FROM enrollment_key_networks WHERE key_id = $1 ORDER BY position",
                           p, 1, &res, error);
        if (r < 0)
                return r;
        k->networks = g_new0(char *, res->n_rows + 1);
        for (guint i = 0; i < res->n_rows; i++)
                k->networks[i] = g_strdup(store_result_text(res, i, 0));
        return 0;
}

static int keys_from_result(Store *s, const StoreResult *res, GPtrArray *out, GError **error)
{
        for (guint i = 0; i < res->n_rows; i++) {
                g_autoptr(EnrollmentKey) k = g_new0(EnrollmentKey, 1);
                k->id = g_strdup(store_result_text(res, i, 0));
                k->name = g_strdup(store_result_text(res, i, 1));
                k->value = g_strdup(store_result_text(res, i, 2));
                k->uses_remaining = store_result_int(res, i, 3);
                k->unlimited = store_result_int(res, i, 4) != 0;
                k->expires_at = store_result_int(res, i, 5);
                k->tags = store_json_to_strv(store_result_text(res, i, 6));
                k->created_at = store_result_int(res, i, 7);
                int r = key_networks(s, k, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(out, TAKE_PTR(k));
        }
        return 0;
}

static int key_get_where(Store *s, const char *where, const char *arg, EnrollmentKey **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func((GDestroyNotify)enrollment_key_free);
        g_autofree char *sql = g_strconcat(KEY_SELECT, where, NULL);
        StoreValue p[] = {SV_TEXT(arg)};
        int r = store_exec(s, sql, p, 1, &res, error);
        if (r < 0)
                return r;
        r = keys_from_result(s, res, a, error);
        if (r < 0)
                return r;
        if (a->len == 0)
                return -ENOENT;
        *ret = g_ptr_array_steal_index(a, 0);
        return 0;
}

int store_key_get(Store *s, const char *id, EnrollmentKey **ret, GError **error)
{
        int r = key_get_where(s, "WHERE id = $1", id, ret, error);
        if (r == -ENOENT)
                return store_not_found(error, "Enrollment key", id);
        return r;
}

int store_key_get_by_value(Store *s, const char *value, EnrollmentKey **ret, GError **error)
{
        int r = key_get_where(s, "WHERE value = $1", value, ret, error);
        if (r == -ENOENT)
                g_set_error(
                        error, NM_ERROR, NM_ERROR_UNAUTHENTICATED,
                        "The enrollment token's key is not known to this server (deleted, or from another "
                        "server)");
        return r;
}

int store_key_list(Store *s, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func((GDestroyNotify)enrollment_key_free);
        int r = store_exec(s, KEY_SELECT "ORDER BY created_at, id", NULL, 0, &res, error);
        if (r < 0)
                return r;
        r = keys_from_result(s, res, a, error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int store_key_insert(Store *s, const EnrollmentKey *k, GError **error)
{
        g_autofree char *tags = store_strv_to_json(k->tags);
        StoreValue p[] = {
                SV_TEXT(k->id),       SV_TEXT(k->name),      SV_TEXT(k->value), SV_INT(k->uses_remaining),
                SV_INT(k->unlimited), SV_INT(k->expires_at), SV_TEXT(tags),     SV_INT(k->created_at)};
        int r = store_exec(
                s,
                "INSERT INTO enrollment_keys (id, name, value, uses_remaining, unlimited, expires_at, "
                "tags, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                p, 8, NULL, error);
        r = conflict(r, error, "Enrollment key \"%s\" already exists", k->id);
        if (r < 0)
                return r;
        for (guint i = 0; k->networks && k->networks[i]; i++) {
                StoreValue q[] = {SV_TEXT(k->id), SV_TEXT(k->networks[i]), SV_INT(i)};
                r = store_exec(s,
                               "INSERT INTO enrollment_key_networks (key_id, network, position) VALUES ($1, "
                               "$2, $3)",
                               q, 3, NULL, error);
                if (r == -ENOENT) {
                        g_clear_error(error);
                        return store_not_found(error, "Network", k->networks[i]);
                }
                r = conflict(r, error, "Network \"%s\" is listed twice", k->networks[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_key_delete(Store *s, const char *id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "DELETE FROM enrollment_keys WHERE id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Enrollment key", id);
        return 0;
}

int store_key_take_use(Store *s, const EnrollmentKey *k, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(k->id), SV_INT(now_sec())};

        /* One statement decides: two registrations racing for the last use cannot both change the
         * row. The expiry is checked again here so that a key expiring meanwhile is not used. */
        int r = store_exec(
                s,
                "UPDATE enrollment_keys SET uses_remaining = uses_remaining - CASE WHEN unlimited = 0 "
                "THEN 1 ELSE 0 END WHERE id = $1 AND (unlimited <> 0 OR uses_remaining > 0) AND "
                "(expires_at = 0 OR expires_at > $2)",
                p, 2, &res, error);
        if (r < 0)
                return r;
        if (res->changes != 1) {
                g_set_error(error, NM_ERROR, NM_ERROR_GONE,
                            "The enrollment key \"%s\" is used up or expired", k->name);
                return -ESTALE;
        }
        return 0;
}

/* ---- hosts ---------------------------------------------------------------------------------- */

void host_free(Host *h)
{
        if (!h)
                return;
        g_free(h->id);
        g_free(h->name);
        g_free(h->os);
        g_free(h->version);
        g_strfreev(h->endpoints);
        g_free(h->public_endpoint);
        g_free(h->credential_hash);
        g_strfreev(h->tags);
        g_free(h->static_endpoint);
        g_free(h->http_address);
        g_free(h);
}

Host *host_copy(const Host *h)
{
        Host *c = g_new0(Host, 1);
        *c = *h;
        c->id = g_strdup(h->id);
        c->name = g_strdup(h->name);
        c->os = g_strdup(h->os);
        c->version = g_strdup(h->version);
        c->endpoints = g_strdupv(h->endpoints);
        c->public_endpoint = g_strdup(h->public_endpoint);
        c->credential_hash = g_strdup(h->credential_hash);
        c->tags = g_strdupv(h->tags);
        c->static_endpoint = g_strdup(h->static_endpoint);
        c->http_address = g_strdup(h->http_address);
        return c;
}

#define HOST_COLUMNS                                                                                        \
        "h.id, h.name, h.os, h.version, h.wg_public_key, h.msg_public_key, h.listen_port, h.endpoints, "    \
        "h.public_endpoint, h.credential_hash, h.tags, h.last_checkin, h.created_at, h.serial, "            \
        "h.static_listen_port, h.static_endpoint, h.keepalive, h.mtu, h.http_address"
#define HOST_N_COLUMNS 19

static Host *host_from_row(const StoreResult *res, guint row, guint c)
{
        Host *h = g_new0(Host, 1);
        h->id = g_strdup(store_result_text(res, row, c + 0));
        h->name = g_strdup(store_result_text(res, row, c + 1));
        h->os = g_strdup(store_result_text(res, row, c + 2));
        h->version = g_strdup(store_result_text(res, row, c + 3));
        (void)nm_key_from_base64(store_result_text(res, row, c + 4), &h->wg_key);
        (void)nm_key_from_base64(store_result_text(res, row, c + 5), &h->msg_key);
        h->listen_port = (guint16)store_result_int(res, row, c + 6);
        h->endpoints = store_json_to_strv(store_result_text(res, row, c + 7));
        h->public_endpoint = g_strdup(store_result_text(res, row, c + 8));
        h->credential_hash = g_strdup(store_result_text(res, row, c + 9));
        h->tags = store_json_to_strv(store_result_text(res, row, c + 10));
        h->last_checkin = store_result_int(res, row, c + 11);
        h->created_at = store_result_int(res, row, c + 12);
        h->serial = (guint64)store_result_int(res, row, c + 13);
        h->static_listen_port = (guint16)store_result_int(res, row, c + 14);
        h->static_endpoint = g_strdup(store_result_text(res, row, c + 15));
        h->has_keepalive = !store_result_is_null(res, row, c + 16);
        h->keepalive = (guint)store_result_int(res, row, c + 16);
        h->mtu = (guint)store_result_int(res, row, c + 17);
        h->http_address = g_strdup(store_result_text(res, row, c + 18));
        return h;
}

int store_host_get(Store *s, const char *id, Host **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "Host", id);
        *ret = host_from_row(res, 0, 0);
        return 0;
}

int store_host_list(Store *s, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT " HOST_COLUMNS " FROM hosts h ORDER BY h.name, h.id", NULL, 0, &res,
                           error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)host_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, host_from_row(res, i, 0));
        *ret = a;
        return 0;
}

int store_host_ids_checked_in_before(Store *s, gint64 before, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_INT(before)};
        int r = store_exec(s, "SELECT id FROM hosts WHERE last_checkin < $1 ORDER BY last_checkin, id", p, 1,
                           &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, g_strdup(store_result_text(res, i, 0)));
        *ret = a;
        return 0;
}

int store_host_ids(Store *s, GHashTable **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT id FROM hosts", NULL, 0, &res, error);
        if (r < 0)
                return r;
        GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < res->n_rows; i++)
                g_hash_table_add(set, g_strdup(store_result_text(res, i, 0)));
        *ret = set;
        return 0;
}

int store_host_insert(Store *s, const Host *h, GError **error)
{
        char wg[NM_KEY_B64_LEN + 1], msg[NM_KEY_B64_LEN + 1];
        g_autofree char *endpoints = store_strv_to_json(h->endpoints);
        g_autofree char *tags = store_strv_to_json(h->tags);

        nm_key_to_base64(&h->wg_key, wg);
        nm_key_to_base64(&h->msg_key, msg);
        StoreValue p[] = {SV_TEXT(h->id),
                          SV_TEXT(h->name),
                          SV_TEXT(h->os),
                          SV_TEXT(h->version),
                          SV_TEXT(wg),
                          SV_TEXT(msg),
                          SV_INT(h->listen_port),
                          SV_TEXT(endpoints),
                          SV_TEXT(h->public_endpoint),
                          SV_TEXT(h->credential_hash),
                          SV_TEXT(tags),
                          SV_INT(h->last_checkin),
                          SV_INT(h->created_at),
                          SV_INT(h->serial),
                          SV_OPT_INT(h->static_listen_port, h->static_listen_port != 0),
                          SV_TEXT(h->static_endpoint),
                          SV_OPT_INT(h->keepalive, h->has_keepalive),
                          SV_OPT_INT(h->mtu, h->mtu != 0),
                          SV_TEXT(h->http_address)};
        int r = store_exec(
                s,
                "INSERT INTO hosts (id, name, os, version, wg_public_key, msg_public_key, listen_port, "
                "endpoints, public_endpoint, credential_hash, tags, last_checkin, created_at, serial, "
                "static_listen_port, static_endpoint, keepalive, mtu, http_address) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
                "$19)",
                p, 19, NULL, error);
        return conflict(r, error, "A host with the WireGuard public key %s is already registered", wg);
}

int store_host_update(Store *s, const Host *h, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *endpoints = store_strv_to_json(h->endpoints);
        StoreValue p[] = {SV_TEXT(h->id),
                          SV_TEXT(h->name),
                          SV_TEXT(h->os),
                          SV_TEXT(h->version),
                          SV_INT(h->listen_port),
                          SV_TEXT(endpoints),
                          SV_TEXT(h->public_endpoint),
                          SV_INT(h->last_checkin),
                          SV_OPT_INT(h->static_listen_port, h->static_listen_port != 0),
                          SV_TEXT(h->static_endpoint),
                          SV_OPT_INT(h->keepalive, h->has_keepalive),
                          SV_OPT_INT(h->mtu, h->mtu != 0)};
        int r = store_exec(
                s,
                "UPDATE hosts SET name = $2, os = $3, version = $4, listen_port = $5, endpoints = $6, "
                "public_endpoint = $7, last_checkin = $8, static_listen_port = $9, static_endpoint = $10, "
                "keepalive = $11, mtu = $12 WHERE id = $1",
                p, 12, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Host", h->id);
        return 0;
}

int store_host_delete(Store *s, const char *id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "DELETE FROM hosts WHERE id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Host", id);
        return 0;
}

int store_host_bump_serial(Store *s, const char *id, guint64 *ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "UPDATE hosts SET serial = serial + 1 WHERE id = $1 RETURNING serial", p, 1,
                           &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "Host", id);
        *ret = (guint64)store_result_int(res, 0, 0);
        return 0;
}

int store_host_find_by_wg_key(Store *s, const NmKey *key, char **ret_id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        char wg[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(key, wg);
        StoreValue p[] = {SV_TEXT(wg)};
        int r = store_exec(s, "SELECT id FROM hosts WHERE wg_public_key = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return -ENOENT;
        *ret_id = g_strdup(store_result_text(res, 0, 0));
        return 0;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

void node_free(Node *n)
{
        if (!n)
                return;
        g_free(n->id);
        g_free(n->host_id);
        g_free(n->host_name);
        g_free(n->network);
        g_free(n->ipv4);
        g_free(n->ipv6);
        g_strfreev(n->tags);
        nm_roles_clear(&n->roles);
        g_free(n->observed_endpoint);
        g_free(n);
}

Node *node_copy(const Node *n)
{
        Node *c = g_new0(Node, 1);
        *c = *n;
        c->id = g_strdup(n->id);
        c->host_id = g_strdup(n->host_id);
        c->host_name = g_strdup(n->host_name);
        c->network = g_strdup(n->network);
        c->ipv4 = g_strdup(n->ipv4);
        c->ipv6 = g_strdup(n->ipv6);
        c->tags = g_strdupv(n->tags);
        c->roles.egress_ranges = g_strdupv(n->roles.egress_ranges);
        c->roles.relayed_by = g_strdup(n->roles.relayed_by);
        c->roles.internet_gateway_via = g_strdup(n->roles.internet_gateway_via);
        c->observed_endpoint = g_strdup(n->observed_endpoint);
        return c;
}

void member_free(Member *m)
{
        if (!m)
                return;
        node_free(m->node);
        host_free(m->host);
        g_free(m);
}

#define NODE_COLUMNS                                                                                        \
        "d.id, d.host_id, h.name, d.network, d.ipv4, d.ipv6, d.listen_port, d.connected, d.created_at, "    \
        "d.tags, d.egress_ranges, d.egress_nat, d.internet_gateway, d.ingress, d.relay, d.relayed_by, "     \
        "d.internet_gateway_via, d.observed_endpoint, d.failover"
#define NODE_N_COLUMNS 19
#define NODE_FROM      " FROM nodes d JOIN hosts h ON h.id = d.host_id "

static Node *node_from_row(const StoreResult *res, guint row)
{
        Node *n = g_new0(Node, 1);
        n->id = g_strdup(store_result_text(res, row, 0));
        n->host_id = g_strdup(store_result_text(res, row, 1));
        n->host_name = g_strdup(store_result_text(res, row, 2));
        n->network = g_strdup(store_result_text(res, row, 3));
        n->ipv4 = g_strdup(store_result_text(res, row, 4));
        n->ipv6 = g_strdup(store_result_text(res, row, 5));
        n->listen_port = (guint16)store_result_int(res, row, 6);
        n->connected = store_result_int(res, row, 7) != 0;
        n->created_at = store_result_int(res, row, 8);
        n->tags = store_json_to_strv(store_result_text(res, row, 9));
        /* NULL: not an egress gateway; "[]" never happens (setting no ranges deletes the role). */
        if (!store_result_is_null(res, row, 10))
                n->roles.egress_ranges = store_json_to_strv(store_result_text(res, row, 10));
        n->roles.egress_nat = store_result_int(res, row, 11) != 0;
        n->roles.internet_gateway = store_result_int(res, row, 12) != 0;
        n->roles.ingress = store_result_int(res, row, 13) != 0;
        n->roles.relay = store_result_int(res, row, 14) != 0;
        n->roles.relayed_by = g_strdup(store_result_text(res, row, 15));
        n->roles.internet_gateway_via = g_strdup(store_result_text(res, row, 16));
        n->observed_endpoint = g_strdup(store_result_text(res, row, 17));
        n->roles.failover = store_result_int(res, row, 18) != 0;
        return n;
}

int store_node_get(Store *s, const char *id, Node **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "SELECT " NODE_COLUMNS NODE_FROM "WHERE d.id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "Node", id);
        *ret = node_from_row(res, 0);
        return 0;
}

int store_node_find(Store *s, const char *host_id, const char *network, Node **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(host_id), SV_TEXT(network)};
        int r = store_exec(s, "SELECT " NODE_COLUMNS NODE_FROM "WHERE d.host_id = $1 AND d.network = $2", p,
                           2, &res, error);
        if (r < 0)
                return r;
        if (res->n_rows == 0) {
                g_autofree char *shown = g_utf8_make_valid(network, MIN(strlen(network), 80));
                g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "The host is not in network \"%s\"", shown);
                return -ENOENT;
        }
        *ret = node_from_row(res, 0);
        return 0;
}

int store_node_list(Store *s, const char *network, const char *host_id, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(host_id)};
        int r = store_exec(s,
                           "SELECT " NODE_COLUMNS NODE_FROM
                           "WHERE (CAST($1 AS TEXT) IS NULL OR d.network = $1) "
                           "AND (CAST($2 AS TEXT) IS NULL OR d.host_id = $2) "
                           "ORDER BY d.network, d.created_at, d.id",
                           p, 2, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, node_from_row(res, i));
        *ret = a;
        return 0;
}

int store_node_insert(Store *s, const Node *n, GError **error)
{
        g_autofree char *tags = store_strv_to_json(n->tags);
        StoreValue p[] = {SV_TEXT(n->id),       SV_TEXT(n->host_id),   SV_TEXT(n->network),
                          SV_TEXT(n->ipv4),     SV_TEXT(n->ipv6),      SV_INT(n->listen_port),
                          SV_INT(n->connected), SV_INT(n->created_at), SV_TEXT(tags)};
        int r = store_exec(s,
                           "INSERT INTO nodes (id, host_id, network, ipv4, ipv6, listen_port, connected, "
                           "created_at, tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           p, 9, NULL, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                return store_not_found(error, "Network", n->network);
        }
        return conflict(r, error, "The host is already in network \"%s\" (or its address is taken)",
                        n->network);
}

int store_node_delete(Store *s, const char *id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "DELETE FROM nodes WHERE id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Node", id);
        return 0;
}

int store_node_set_listen_port(Store *s, const char *id, guint16 port, GError **error)
{
        StoreValue p[] = {SV_TEXT(id), SV_INT(port)};
        return store_exec(s, "UPDATE nodes SET listen_port = $2 WHERE id = $1", p, 2, NULL, error);
}

int store_node_set_connected(Store *s, const char *id, bool connected, GError **error)
{
        StoreValue p[] = {SV_TEXT(id), SV_INT(connected)};
        return store_exec(s, "UPDATE nodes SET connected = $2 WHERE id = $1", p, 2, NULL, error);
}

int store_node_set_observed(Store *s, const char *id, const char *endpoint, gint64 now, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id), SV_TEXT(endpoint), SV_INT(endpoint ? now : 0)};
        int r = store_exec(s, "UPDATE nodes SET observed_endpoint = $2, observed_at = $3 WHERE id = $1", p,
                           3, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0)
                return store_not_found(error, "Node", id);
        return 0;
}

int store_host_set_http_address(Store *s, const char *id, const char *address, GError **error)
{
        StoreValue p[] = {SV_TEXT(id), SV_TEXT(address)};
        return store_exec(s, "UPDATE hosts SET http_address = $2 WHERE id = $1", p, 2, NULL, error);
}

int store_node_addresses(Store *s, const char *network, int family, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s,
                           /* External clients take addresses from the same ranges. */
                           family == AF_INET
                                   ? "SELECT ipv4 FROM nodes WHERE network = $1 AND ipv4 IS NOT NULL "
                                     "UNION ALL SELECT ipv4 FROM ext_clients WHERE network = $1 AND "
                                     "ipv4 IS NOT NULL"
                                   : "SELECT ipv6 FROM nodes WHERE network = $1 AND ipv6 IS NOT NULL "
                                     "UNION ALL SELECT ipv6 FROM ext_clients WHERE network = $1 AND "
                                     "ipv6 IS NOT NULL",
                           p, 1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, g_strdup(store_result_text(res, i, 0)));
        *ret = a;
        return 0;
}

int store_members(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(
                s,
                "SELECT " NODE_COLUMNS ", " HOST_COLUMNS NODE_FROM
                "WHERE (CAST($1 AS TEXT) IS NULL OR d.network = $1) ORDER BY d.network, d.created_at, d.id",
                p, 1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)member_free);
        for (guint i = 0; i < res->n_rows; i++) {
                Member *m = g_new0(Member, 1);
                m->node = node_from_row(res, i);
                m->host = host_from_row(res, i, NODE_N_COLUMNS);
                g_ptr_array_add(a, m);
        }
        *ret = a;
        return 0;
}

/* ---- broker account clean-up ---------------------------------------------------------------- */

int store_account_cleanup_add(Store *s, const char *host_id, GError **error)
{
        StoreValue p[] = {SV_TEXT(host_id), SV_INT(now_sec())};
        return store_exec(
                s, "INSERT INTO account_cleanup (host_id, queued_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                p, 2, NULL, error);
}

int store_account_cleanup_remove(Store *s, const char *host_id, GError **error)
{
        StoreValue p[] = {SV_TEXT(host_id)};
        return store_exec(s, "DELETE FROM account_cleanup WHERE host_id = $1", p, 1, NULL, error);
}

int store_account_cleanup_list(Store *s, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT host_id FROM account_cleanup ORDER BY queued_at", NULL, 0, &res,
                           error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, g_strdup(store_result_text(res, i, 0)));
        *ret = a;
        return 0;
}
