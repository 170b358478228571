/* Proves the ACL rules of docs/protocol.md §4.2.1: selectors parse strictly, rules are symmetric, a
 * matching deny wins over a matching allow, the default decides the rest; and that the bitset index
 * gives the same verdict as the rule-by-rule definition on random networks and rule sets. */
#include <string.h>

#include "acl.h"
#include "macro.h"

static Node *node(const char *tags)
{
        Node *n = g_new0(Node, 1);
        n->id = nm_uuid_new();
        n->tags = tags ? g_strsplit(tags, ",", -1) : g_new0(char *, 1);
        return n;
}

static AclRule *rule(const char *src, const char *dst, bool deny)
{
        AclRule *r = g_new0(AclRule, 1);
        r->id = nm_uuid_new();
        r->source = g_strdup(src);
        r->destination = g_strdup(dst);
        r->deny = deny;
        return r;
}

static void test_selectors(void)
{
        AclSelectorKind kind;
        const char *value;
        g_autofree char *uuid = nm_uuid_new();
        g_autofree char *sel = g_strconcat("node:", uuid, NULL);

        g_assert_true(acl_selector_parse("source", "*", &kind, &value, NULL));
        g_assert_cmpint(kind, ==, ACL_SELECTOR_ANY);
        g_assert_true(acl_selector_parse("source", sel, &kind, &value, NULL));
        g_assert_cmpint(kind, ==, ACL_SELECTOR_NODE);
        g_assert_cmpstr(value, ==, uuid);
        g_assert_true(acl_selector_parse("source", "tag:web servers", &kind, &value, NULL));
        g_assert_cmpint(kind, ==, ACL_SELECTOR_TAG);
        g_assert_cmpstr(value, ==, "web servers");

        static const char *const bad[] = {
                "", "**", "node:", "node:1234", "tag:", "tags:web", "host:a", "TAG:web", "tag:a\nb"};
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) e = NULL;
                g_assert_false(acl_selector_parse("destination", bad[i], &kind, &value, &e));
                g_assert_nonnull(strstr(e->message, "destination"));
                g_assert_nonnull(strstr(e->message, "node:<node id>"));
                g_assert_null(strchr(e->message, '\n')); /* control characters are not echoed */
        }
}

static void test_verdicts(void)
{
        g_autoptr(Node) a = node("web");
        g_autoptr(Node) b = node("db");
        g_autoptr(Node) c = node("web,db");
        g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func((GDestroyNotify)acl_rule_free);
        g_autofree char *sel_a = g_strconcat("node:", a->id, NULL);

        /* No rules: the default. */
        g_assert_true(acl_allowed(false, rules, a, b));
        g_assert_false(acl_allowed(true, rules, a, b));

        /* An allow web -> db holds both ways. */
        g_ptr_array_add(rules, rule("tag:web", "tag:db", false));
        g_assert_true(acl_allowed(true, rules, a, b));
        g_assert_true(acl_allowed(true, rules, b, a));
        g_assert_true(acl_allowed(true, rules, a, c)); /* c is db too */

        /* A deny wins, whatever its position and direction. */
        g_ptr_array_insert(rules, 0, rule("tag:db", sel_a, true));
        g_assert_false(acl_allowed(true, rules, a, b));
        g_assert_false(acl_allowed(false, rules, b, a));
        g_assert_true(acl_allowed(true, rules, c, b)); /* c web, b db: not node a */

        /* "*" matches everyone. */
        g_ptr_array_add(rules, rule("*", "*", true));
        g_assert_false(acl_allowed(false, rules, c, b));
}

/* The index against the definition, pair by pair, for random tags and rules. */
static void test_index_matches_definition(void)
{
        static const char *const tags[] = {"a", "b", "c", "d"};
        for (guint round = 0; round < 50; round++) {
                guint n = (guint)g_test_rand_int_range(2, 30), nr = (guint)g_test_rand_int_range(0, 140);
                g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
                g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func((GDestroyNotify)acl_rule_free);
                for (guint i = 0; i < n; i++) {
                        g_autoptr(GString) t = g_string_new(NULL);
                        for (guint k = 0; k < G_N_ELEMENTS(tags); k++)
                                if (g_test_rand_bit())
                                        g_string_append_printf(t, "%s%s", t->len ? "," : "", tags[k]);
                        g_ptr_array_add(nodes, node(t->len ? t->str : NULL));
                }
                for (guint i = 0; i < nr; i++) {
                        char *side[2];
                        for (guint s = 0; s < 2; s++) {
                                int kind = g_test_rand_int_range(0, 4);
                                const Node *target = nodes->pdata[g_test_rand_int_range(0, (gint32)n)];
                                side[s] = kind == 0 ? g_strdup("*")
                                          : kind == 1
                                                  ? g_strconcat("node:", target->id, NULL)
                                                  : g_strconcat("tag:", tags[g_test_rand_int_range(0, 4)],
                                                                NULL);
                        }
                        g_ptr_array_add(rules, rule(side[0], side[1], g_test_rand_int_range(0, 3) == 0));
                        g_free(side[0]);
                        g_free(side[1]);
                }
                bool deny = g_test_rand_bit();
                g_autoptr(AclIndex) x = acl_index_new(deny, rules, (const Node *const *)nodes->pdata, n);
                for (guint i = 0; i < n; i++)
                        for (guint j = 0; j < n; j++) {
                                const Node *a = nodes->pdata[i], *b = nodes->pdata[j];
                                g_assert_cmpint(acl_index_allowed(x, i, j), ==,
                                                acl_allowed(deny, rules, a, b));
                                bool ruled = false;
                                for (guint r = 0; r < rules->len; r++)
                                        ruled = ruled || acl_rule_matches(rules->pdata[r], a, b);
                                g_assert_cmpint(acl_index_unruled(x, i, j), ==, !ruled);
                        }
                for (guint r = 0; r < rules->len; r++)
                        for (guint i = 0; i < n; i++) {
                                const AclRule *rr = rules->pdata[r];
                                g_assert_cmpint(acl_index_matches(x, r, i, false), ==,
                                                acl_selector_matches(rr->source, nodes->pdata[i]));
                                g_assert_cmpint(acl_index_matches(x, r, i, true), ==,
                                                acl_selector_matches(rr->destination, nodes->pdata[i]));
                        }
        }
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/acl/selectors", test_selectors);
        g_test_add_func("/acl/verdicts", test_verdicts);
        g_test_add_func("/acl/index-matches-definition", test_index_matches_definition);
        return g_test_run();
}
