/* REST resources for a network's ACL (docs/protocol.md §4.2.1): the default and the rules. A
 * change looks only at the pairs it can decide (the pairs a rule's selectors match; for the default,
 * the pairs no rule matches) and sends deltas only to the hosts whose allowed pairs change. */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "acl.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "nm-error.h"
#include "topology.h"

static void json_add_rule(JsonBuilder *b, const AclRule *rule)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "id", rule->id);
        nm_json_add_string(b, "source", rule->source);
        nm_json_add_string(b, "destination", rule->destination);
        nm_json_add_string(b, "action", rule->deny ? "deny" : "allow");
        json_builder_end_object(b);
}

static void reply_acl(Request *r, const PeerView *v)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_string(b, "network", v->network->name);
        nm_json_add_string(b, "default", v->acl_deny ? "deny" : "allow");
        json_builder_set_member_name(b, "rules");
        json_builder_begin_array(b);
        for (guint i = 0; i < v->acl_rules->len; i++)
                json_add_rule(b, v->acl_rules->pdata[i]);
        json_builder_end_array(b);
        json_builder_end_object(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
}

static bool parse_action(const char *member, const char *s, bool *ret_deny, GError **error)
{
        if (streq0(s, "allow") || streq0(s, "deny")) {
                *ret_deny = streq0(s, "deny");
                return true;
        }
        g_autofree char *v = g_utf8_make_valid(s, MIN(strlen(s), 40));
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "Invalid %s \"%s\": expected \"allow\" or \"deny\"", member, v);
        return false;
}

/* The view of a network inside a new transaction. */
static int begin(Request *r, StoreTxn *t, PeerView **ret, GError **error)
{
        Manager *m = request_manager(r);
        int k = store_txn_begin(m->store, t, error);
        if (k >= 0)
                k = peers_load_view(m->store, request_param(r, "net"), ret, error);
        return k;
}

static int acl_get(Request *r, GError **error)
{
        g_autoptr(PeerView) v = NULL;
        int k = peers_load_view(request_manager(r)->store, request_param(r, "net"), &v, error);
        if (k < 0)
                return k;
        reply_acl(r, v);
        return 0;
}

static int acl_put(Request *r, GError **error)
{
        static const char *const members[] = {"default", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "ACL", members, error);
        const char *def = NULL;
        bool deny;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "default", true, &def, error) ||
            !parse_action("default", def, &deny, error))
                return -EINVAL;
        k = begin(r, &t, &before, error);
        if (k >= 0)
                k = store_acl_default_set(m->store, before->network->name, deny, error);
        if (k >= 0)
                k = peers_load_view(m->store, before->network->name, &after, error);
        if (k < 0)
                return k;
        topo_acl_default_changed(before, after, dirty);
        topo_diff(before, after, dirty, out);
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("ACL default of \"%s\" is %s: %u pair(s) changed, %u message(s).", after->network->name,
                 def, topo_dirty_n_verdicts(dirty), out->msgs->len);
        reply_acl(r, after);
        return 0;
}

/* The selector names something that exists in the network. */
static int check_selector(Manager *m, const PeerView *v, const char *member, const char *s, GError **error)
{
        AclSelectorKind kind;
        const char *value;
        int k;

        if (!acl_selector_parse(member, s, &kind, &value, error))
                return -EINVAL;
        if (kind == ACL_SELECTOR_NODE) {
                g_autoptr(Node) n = NULL;
                g_autoptr(GError) e = NULL;
                if (topo_find_node(v, value))
                        return 0;
                if (store_node_get(m->store, value, &n, &e) >= 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "The %s names node %s (%s) of network \"%s\", not of \"%s\"", member,
                                    value, n->host_name, n->network, v->network->name);
                        return -EXDEV;
                }
                g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND,
                            "The %s names node %s, which does not exist", member, value);
                return -ENOENT;
        }
        if (kind == ACL_SELECTOR_TAG) {
                g_autoptr(GPtrArray) keys = NULL;
                for (guint i = 0; i < v->members->len; i++) {
                        const Member *mb = v->members->pdata[i];
                        if (mb->node->tags && g_strv_contains((const char *const *)mb->node->tags, value))
                                return 0;
                }
                /* A tag of an enrollment key for this network is known before its nodes join. */
                k = store_key_list(m->store, &keys, error);
                if (k < 0)
                        return k;
                for (guint i = 0; i < keys->len; i++) {
                        const EnrollmentKey *key = keys->pdata[i];
                        if (key->networks &&
                            g_strv_contains((const char *const *)key->networks, v->network->name) &&
                            key->tags && g_strv_contains((const char *const *)key->tags, value))
                                return 0;
                }
                g_autofree char *shown = g_utf8_make_valid(value, -1);
                g_set_error(
                        error, NM_ERROR, NM_ERROR_NOT_FOUND,
                        "The %s names tag \"%s\", which no node of network \"%s\" and no enrollment key for "
                        "it has",
                        member, shown, v->network->name);
                return -ENOENT;
        }
        return 0;
}

static bool same_rule(const AclRule *a, const char *src, const char *dst, bool deny)
{
        return a->deny == deny && ((streq0(a->source, src) && streq0(a->destination, dst)) ||
                                   (streq0(a->source, dst) && streq0(a->destination, src)));
}

static int rules_add(Request *r, GError **error)
{
        static const char *const members[] = {"source", "destination", "action", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "ACL rule", members, error);
        const char *src = NULL, *dst = NULL, *action = NULL;
        bool deny;
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        if (!o || !nm_json_get_string(o, "source", true, &src, error) ||
            !nm_json_get_string(o, "destination", true, &dst, error) ||
            !nm_json_get_string(o, "action", true, &action, error))
                return -EINVAL;
        AclSelectorKind kind;
        const char *value;
        if (!acl_selector_parse("source", src, &kind, &value, error) ||
            !acl_selector_parse("destination", dst, &kind, &value, error) ||
            !parse_action("action", action, &deny, error))
                return -EINVAL;

        k = begin(r, &t, &before, error);
        if (k >= 0)
                k = check_selector(m, before, "source", src, error);
        if (k >= 0)
                k = check_selector(m, before, "destination", dst, error);
        if (k < 0)
                return k;
        for (guint i = 0; i < before->acl_rules->len; i++) {
                const AclRule *existing = before->acl_rules->pdata[i];
                if (same_rule(existing, src, dst, deny)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "Network \"%s\" has this rule already: %s (rules are symmetric)",
                                    before->network->name, existing->id);
                        return -EEXIST;
                }
        }
        if (before->acl_rules->len >= ACL_MAX_RULES) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Network \"%s\" has %u ACL rules, the most a network may have",
                            before->network->name, before->acl_rules->len);
                return -ENOSPC;
        }

        g_autoptr(AclRule) rule = g_new0(AclRule, 1);
        rule->id = nm_uuid_new();
        rule->network = g_strdup(before->network->name);
        rule->source = g_strdup(src);
        rule->destination = g_strdup(dst);
        rule->deny = deny;
        rule->created_at = manager_now();
        k = store_acl_rule_insert(m->store, rule, error);
        if (k >= 0)
                k = peers_load_view(m->store, rule->network, &after, error);
        if (k < 0)
                return k;
        topo_acl_rule_changed(before, after, rule, dirty);
        topo_diff(before, after, dirty, out);
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("ACL of \"%s\": %s %s <-> %s (%s): %u pair(s) changed, %u message(s).", rule->network,
                 action, src, dst, rule->id, topo_dirty_n_verdicts(dirty), out->msgs->len);
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_rule(b, rule);
        request_reply_builder(r, MHD_HTTP_CREATED, b);
        return 0;
}

static int rules_delete(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *id = request_param(r, "id");
        g_autoptr(PeerView) before = NULL, after = NULL;
        g_autoptr(TopoDirty) dirty = topo_dirty_new();
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        const AclRule *rule = NULL;
        int k;

        k = begin(r, &t, &before, error);
        if (k < 0)
                return k;
        for (guint i = 0; i < before->acl_rules->len; i++)
                if (streq0(((AclRule *)before->acl_rules->pdata[i])->id, id))
                        rule = before->acl_rules->pdata[i];
        k = store_acl_rule_delete(m->store, before->network->name, id, error);
        if (k >= 0)
                k = peers_load_view(m->store, before->network->name, &after, error);
        if (k < 0)
                return k;
        g_assert(rule);
        topo_acl_rule_changed(before, after, rule, dirty);
        topo_diff(before, after, dirty, out);
        k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("ACL of \"%s\": deleted rule %s: %u pair(s) changed, %u message(s).", before->network->name,
                 id, topo_dirty_n_verdicts(dirty), out->msgs->len);
        request_reply_empty(r);
        return 0;
}

const Route http_acl_routes[] = {
        {"GET", "/networks/{net}/acl", ACCESS_USER, acl_get},
        {"PUT", "/networks/{net}/acl", ACCESS_ADMIN, acl_put},
        {"POST", "/networks/{net}/acl/rules", ACCESS_ADMIN, rules_add},
        {"DELETE", "/networks/{net}/acl/rules/{id}", ACCESS_ADMIN, rules_delete},
        {},
};
