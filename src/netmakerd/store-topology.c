/* netmakerd's store for topologies (docs/protocol.md §4): node tags and roles, each network's ACL
 * default and rules, and external clients, in SQL that SQLite and PostgreSQL both run. */
#include <errno.h>
#include <string.h>

#include "json-util.h"
#include "nm-error.h"
#include "store.h"

/* ---- nodes ---------------------------------------------------------------------------------- */

int store_node_set_tags(Store *s, const char *id, char **tags, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *json = store_strv_to_json(tags);
        StoreValue p[] = {SV_TEXT(id), SV_TEXT(json)};
        int r = store_exec(s, "UPDATE nodes SET tags = $2 WHERE id = $1", p, 2, &res, error);
        if (r < 0)
                return r;
        return res->changes == 0 ? store_not_found(error, "Node", id) : 0;
}

int store_node_set_roles(Store *s, const char *id, const NmRoles *roles, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *egress = roles->egress_ranges ? store_strv_to_json(roles->egress_ranges) : NULL;
        StoreValue p[] = {SV_TEXT(id),
                          SV_TEXT(egress),
                          SV_INT(roles->egress_ranges && roles->egress_nat),
                          SV_INT(roles->internet_gateway),
                          SV_INT(roles->ingress),
                          SV_INT(roles->relay),
                          SV_TEXT(roles->relayed_by),
                          SV_TEXT(roles->internet_gateway_via),
                          SV_INT(roles->failover)};
        int r = store_exec(s,
                           "UPDATE nodes SET egress_ranges = $2, egress_nat = $3, internet_gateway = $4, "
                           "ingress = $5, relay = $6, relayed_by = $7, internet_gateway_via = $8, "
                           "failover = $9 WHERE id = $1",
                           p, 9, &res, error);
        if (r < 0)
                return r;
        return res->changes == 0 ? store_not_found(error, "Node", id) : 0;
}

static int ext_clients_forget_node(Store *s, const char *node_id, GError **error);

int store_node_forget(Store *s, const char *id, GError **error)
{
        g_autofree char *selector = g_strconcat("node:", id, NULL);
        StoreValue p[] = {SV_TEXT(id)};
        StoreValue q[] = {SV_TEXT(selector)};
        int r;

        r = store_exec(s, "UPDATE nodes SET relayed_by = NULL WHERE relayed_by = $1", p, 1, NULL, error);
        if (r >= 0)
                r = store_exec(
                        s, "UPDATE nodes SET internet_gateway_via = NULL WHERE internet_gateway_via = $1", p,
                        1, NULL, error);
        if (r >= 0)
                r = store_exec(s, "DELETE FROM acl_rules WHERE source = $1 OR destination = $1", q, 1, NULL,
                               error);
        if (r >= 0)
                r = ext_clients_forget_node(s, id, error);
        if (r >= 0)
                r = store_exec(s, "DELETE FROM failovers WHERE node_a = $1 OR node_b = $1 OR relay = $1", p,
                               1, NULL, error);
        return r;
}

/* ---- failovers ------------------------------------------------------------------------------ */

void failover_free(Failover *f)
{
        if (!f)
                return;
        g_free(f->network);
        g_free(f->node_a);
        g_free(f->node_b);
        g_free(f->relay);
        g_free(f);
}

int store_failover_list(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s,
                           "SELECT network, node_a, node_b, relay, since FROM failovers "
                           "WHERE CAST($1 AS TEXT) IS NULL OR network = $1 ORDER BY network, node_a, node_b",
                           p, 1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)failover_free);
        for (guint i = 0; i < res->n_rows; i++) {
                Failover *f = g_new0(Failover, 1);
                f->network = g_strdup(store_result_text(res, i, 0));
                f->node_a = g_strdup(store_result_text(res, i, 1));
                f->node_b = g_strdup(store_result_text(res, i, 2));
                f->relay = g_strdup(store_result_text(res, i, 3));
                f->since = store_result_int(res, i, 4);
                g_ptr_array_add(a, f);
        }
        *ret = a;
        return 0;
}

int store_failover_set(Store *s, const Failover *f, GError **error)
{
        /* The pair is stored once, its lower node id first. */
        bool swap = strcmp(f->node_a, f->node_b) > 0;
        StoreValue p[] = {SV_TEXT(f->network), SV_TEXT(swap ? f->node_b : f->node_a),
                          SV_TEXT(swap ? f->node_a : f->node_b), SV_TEXT(f->relay), SV_INT(f->since)};
        return store_exec(
                s,
                "INSERT INTO failovers (network, node_a, node_b, relay, since) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (node_a, node_b) DO UPDATE SET relay = $4, since = $5",
                p, 5, NULL, error);
}

int store_failover_delete(Store *s, const char *a, const char *b, GError **error)
{
        bool swap = strcmp(a, b) > 0;
        StoreValue p[] = {SV_TEXT(swap ? b : a), SV_TEXT(swap ? a : b)};
        return store_exec(s, "DELETE FROM failovers WHERE node_a = $1 AND node_b = $2", p, 2, NULL, error);
}

/* ---- ACLs ----------------------------------------------------------------------------------- */

void acl_rule_free(AclRule *r)
{
        if (!r)
                return;
        g_free(r->id);
        g_free(r->network);
        g_free(r->source);
        g_free(r->destination);
        g_free(r);
}

int store_acl_default_get(Store *s, const char *network, bool *ret_deny, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s, "SELECT action FROM acl_defaults WHERE network = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        *ret_deny = res->n_rows > 0 && streq0(store_result_text(res, 0, 0), "deny");
        return 0;
}

int store_acl_default_set(Store *s, const char *network, bool deny, GError **error)
{
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(deny ? "deny" : "allow")};
        int r = store_exec(s,
                           "INSERT INTO acl_defaults (network, action) VALUES ($1, $2) "
                           "ON CONFLICT (network) DO UPDATE SET action = excluded.action",
                           p, 2, NULL, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                return store_not_found(error, "Network", network);
        }
        return r;
}

int store_acl_default_list(Store *s, GHashTable **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        int r = store_exec(s, "SELECT network FROM acl_defaults WHERE action = 'deny'", NULL, 0, &res,
                           error);
        if (r < 0)
                return r;
        GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < res->n_rows; i++)
                g_hash_table_insert(h, g_strdup(store_result_text(res, i, 0)), GINT_TO_POINTER(1));
        *ret = h;
        return 0;
}

#define RULE_COLUMNS "id, network, source, destination, action, created_at"

int store_acl_rule_list(Store *s, const char *network, GPtrArray **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network)};
        int r = store_exec(s,
                           "SELECT " RULE_COLUMNS " FROM acl_rules WHERE (CAST($1 AS TEXT) IS NULL OR "
                           "network = $1) ORDER BY network, created_at, id",
                           p, 1, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)acl_rule_free);
        for (guint i = 0; i < res->n_rows; i++) {
                AclRule *rule = g_new0(AclRule, 1);
                rule->id = g_strdup(store_result_text(res, i, 0));
                rule->network = g_strdup(store_result_text(res, i, 1));
                rule->source = g_strdup(store_result_text(res, i, 2));
                rule->destination = g_strdup(store_result_text(res, i, 3));
                rule->deny = streq0(store_result_text(res, i, 4), "deny");
                rule->created_at = store_result_int(res, i, 5);
                g_ptr_array_add(a, rule);
        }
        *ret = a;
        return 0;
}

int store_acl_rule_insert(Store *s, const AclRule *rule, GError **error)
{
        StoreValue p[] = {SV_TEXT(rule->id),
                          SV_TEXT(rule->network),
                          SV_TEXT(rule->source),
                          SV_TEXT(rule->destination),
                          SV_TEXT(rule->deny ? "deny" : "allow"),
                          SV_INT(rule->created_at)};
        int r = store_exec(s, "INSERT INTO acl_rules (" RULE_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6)", p,
                           6, NULL, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                return store_not_found(error, "Network", rule->network);
        }
        return r;
}

int store_acl_rule_delete(Store *s, const char *network, const char *id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(id)};
        int r = store_exec(s, "DELETE FROM acl_rules WHERE network = $1 AND id = $2", p, 2, &res, error);
        if (r < 0)
                return r;
        if (res->changes == 0) {
                g_autofree char *shown = g_utf8_make_valid(id, MIN(strlen(id), 80));
                g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "Network \"%s\" has no ACL rule \"%s\"",
                            network, shown);
                return -ENOENT;
        }
        return 0;
}

/* ---- external clients ----------------------------------------------------------------------- */

void ext_client_free(ExtClient *c)
{
        if (!c)
                return;
        g_free(c->id);
        g_free(c->name);
        g_free(c->network);
        g_free(c->gateway);
        g_free(c->ipv4);
        g_free(c->ipv6);
        g_free(c->dns);
        g_strfreev(c->extra_allowed_ips);
        g_strfreev(c->denied_nodes);
        g_free(c);
}

bool ext_client_denies(const ExtClient *c, const char *node_id)
{
        return c->denied_nodes && g_strv_contains((const char *const *)c->denied_nodes, node_id);
}

#define EXT_CLIENT_COLUMNS                                                                                  \
        "id, name, network, gateway, ipv4, ipv6, public_key, enabled, dns, extra_allowed_ips, created_at, " \
        "denied_nodes, internet_gateway"

static ExtClient *ext_client_from_row(const StoreResult *res, guint row)
{
        ExtClient *c = g_new0(ExtClient, 1);
        c->id = g_strdup(store_result_text(res, row, 0));
        c->name = g_strdup(store_result_text(res, row, 1));
        c->network = g_strdup(store_result_text(res, row, 2));
        c->gateway = g_strdup(store_result_text(res, row, 3));
        c->ipv4 = g_strdup(store_result_text(res, row, 4));
        c->ipv6 = g_strdup(store_result_text(res, row, 5));
        (void)nm_key_from_base64(store_result_text(res, row, 6), &c->public_key);
        c->enabled = store_result_int(res, row, 7) != 0;
        c->dns = g_strdup(store_result_text(res, row, 8));
        c->extra_allowed_ips = store_json_to_strv(store_result_text(res, row, 9));
        c->created_at = store_result_int(res, row, 10);
        c->denied_nodes = store_json_to_strv(store_result_text(res, row, 11));
        c->internet_gateway = store_result_int(res, row, 12) != 0;
        return c;
}

int store_ext_client_get(Store *s, const char *id, ExtClient **ret, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "SELECT " EXT_CLIENT_COLUMNS " FROM ext_clients WHERE id = $1", p, 1, &res,
                           error);
        if (r < 0)
                return r;
        if (res->n_rows == 0)
                return store_not_found(error, "External client", id);
        *ret = ext_client_from_row(res, 0);
        return 0;
}

int store_ext_client_list(Store *s, const char *network, const char *gateway, GPtrArray **ret,
                          GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(network), SV_TEXT(gateway)};
        int r = store_exec(s,
                           "SELECT " EXT_CLIENT_COLUMNS " FROM ext_clients "
                           "WHERE (CAST($1 AS TEXT) IS NULL OR network = $1) "
                           "AND (CAST($2 AS TEXT) IS NULL OR gateway = $2) "
                           "ORDER BY network, created_at, id",
                           p, 2, &res, error);
        if (r < 0)
                return r;
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)ext_client_free);
        for (guint i = 0; i < res->n_rows; i++)
                g_ptr_array_add(a, ext_client_from_row(res, i));
        *ret = a;
        return 0;
}

int store_ext_client_insert(Store *s, const ExtClient *c, GError **error)
{
        char key[NM_KEY_B64_LEN + 1];
        g_autofree char *extra = store_strv_to_json(c->extra_allowed_ips);
        g_autofree char *denied = store_strv_to_json(c->denied_nodes);

        nm_key_to_base64(&c->public_key, key);
        StoreValue p[] = {SV_TEXT(c->id),
                          SV_TEXT(c->name),
                          SV_TEXT(c->network),
                          SV_TEXT(c->gateway),
                          SV_TEXT(c->ipv4),
                          SV_TEXT(c->ipv6),
                          SV_TEXT(key),
                          SV_INT(c->enabled),
                          SV_TEXT(c->dns),
                          SV_TEXT(extra),
                          SV_INT(c->created_at),
                          SV_TEXT(denied),
                          SV_INT(c->internet_gateway)};
        int r = store_exec(s,
                           "INSERT INTO ext_clients (" EXT_CLIENT_COLUMNS ") "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                           p, 13, NULL, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND,
                            "Network \"%s\" or node \"%s\" does not exist", c->network, c->gateway);
                return r;
        }
        if (r == -EEXIST) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Network \"%s\" already has an external client named \"%s\" (or its address is "
                            "taken)",
                            c->network, c->name);
        }
        return r;
}

int store_ext_client_set_enabled(Store *s, const char *id, bool enabled, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id), SV_INT(enabled)};
        int r = store_exec(s, "UPDATE ext_clients SET enabled = $2 WHERE id = $1", p, 2, &res, error);
        if (r < 0)
                return r;
        return res->changes == 0 ? store_not_found(error, "External client", id) : 0;
}

int store_ext_client_set_denied_nodes(Store *s, const char *id, char **node_ids, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *denied = store_strv_to_json(node_ids);
        StoreValue p[] = {SV_TEXT(id), SV_TEXT(denied)};
        int r = store_exec(s, "UPDATE ext_clients SET denied_nodes = $2 WHERE id = $1", p, 2, &res, error);
        if (r < 0)
                return r;
        return res->changes == 0 ? store_not_found(error, "External client", id) : 0;
}

/* The clients that list the node as denied no longer do. Node ids are UUIDs: no LIKE wildcards. */
static int ext_clients_forget_node(Store *s, const char *node_id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        g_autofree char *pattern = g_strconcat("%\"", node_id, "\"%", NULL);
        StoreValue p[] = {SV_TEXT(pattern)};
        int r = store_exec(s, "SELECT id, denied_nodes FROM ext_clients WHERE denied_nodes LIKE $1", p, 1,
                           &res, error);
        for (guint i = 0; r >= 0 && i < res->n_rows; i++) {
                g_auto(GStrv) old = store_json_to_strv(store_result_text(res, i, 1));
                g_autoptr(GPtrArray) kept = g_ptr_array_new();
                for (char **n = old; *n; n++)
                        if (!streq0(*n, node_id))
                                g_ptr_array_add(kept, *n);
                g_ptr_array_add(kept, NULL);
                r = store_ext_client_set_denied_nodes(s, store_result_text(res, i, 0), (char **)kept->pdata,
                                                      error);
        }
        return r;
}

int store_ext_client_delete(Store *s, const char *id, GError **error)
{
        g_autoptr(StoreResult) res = NULL;
        StoreValue p[] = {SV_TEXT(id)};
        int r = store_exec(s, "DELETE FROM ext_clients WHERE id = $1", p, 1, &res, error);
        if (r < 0)
                return r;
        return res->changes == 0 ? store_not_found(error, "External client", id) : 0;
}
