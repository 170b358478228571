/* ACL selectors and verdicts; the index keeps, for every node, one bit per rule for "matches the
 * rule's source" and one for "matches its destination". */
#include <errno.h>
#include <string.h>

#include "acl.h"
#include "keys.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"

bool acl_selector_parse(const char *member, const char *s, AclSelectorKind *ret_kind, const char **ret_value,
                        GError **error)
{
        if (streq0(s, "*")) {
                *ret_kind = ACL_SELECTOR_ANY;
                *ret_value = NULL;
                return true;
        }
        if (g_str_has_prefix(s, "node:") && nm_uuid_valid(s + strlen("node:"))) {
                *ret_kind = ACL_SELECTOR_NODE;
                *ret_value = s + strlen("node:");
                return true;
        }
        /* Tags are what enrollment keys accept. */
        if (g_str_has_prefix(s, "tag:") &&
            nm_label_valid("tag", s + strlen("tag:"), NM_KEY_NAME_MAX, NULL)) {
                *ret_kind = ACL_SELECTOR_TAG;
                *ret_value = s + strlen("tag:");
                return true;
        }
        g_autofree char *shown = g_utf8_make_valid(s, MIN(strlen(s), 80));
        for (char *p = shown; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "Invalid %s \"%s\": expected \"*\", \"node:<node id>\" or \"tag:<tag>\"", member, shown);
        return false;
}

bool acl_selector_matches(const char *selector, const Node *n)
{
        if (streq0(selector, "*"))
                return true;
        if (g_str_has_prefix(selector, "node:"))
                return streq0(selector + strlen("node:"), n->id);
        if (g_str_has_prefix(selector, "tag:"))
                return n->tags && g_strv_contains((const char *const *)n->tags, selector + strlen("tag:"));
        return false;
}

bool acl_rule_matches(const AclRule *r, const Node *a, const Node *b)
{
        return (acl_selector_matches(r->source, a) && acl_selector_matches(r->destination, b)) ||
               (acl_selector_matches(r->source, b) && acl_selector_matches(r->destination, a));
}

bool acl_allowed(bool default_deny, GPtrArray *rules, const Node *a, const Node *b)
{
        bool allow = false;
        for (guint i = 0; rules && i < rules->len; i++) {
                const AclRule *r = rules->pdata[i];
                if (!acl_rule_matches(r, a, b))
                        continue;
                if (r->deny)
                        return false;
                allow = true;
        }
        return allow || !default_deny;
}

/* ---- index ---------------------------------------------------------------------------------- */

struct AclIndex {
        bool default_deny;
        guint n_rules;
        guint n_nodes;
        guint n_words;
        guint64 *src; /* n_nodes * n_words */
        guint64 *dst;
        guint64 *allow; /* n_words: the allow rules */
        guint64 *deny;
};

#define BIT(i)  ((guint64)1 << ((i) % 64))
#define WORD(i) ((i) / 64)

AclIndex *acl_index_new(bool default_deny, GPtrArray *rules, const Node *const *nodes, guint n_nodes)
{
        AclIndex *x = g_new0(AclIndex, 1);
        x->default_deny = default_deny;
        x->n_rules = rules ? rules->len : 0;
        x->n_nodes = n_nodes;
        x->n_words = MAX(1u, (x->n_rules + 63) / 64);
        x->src = g_new0(guint64, (gsize)n_nodes * x->n_words);
        x->dst = g_new0(guint64, (gsize)n_nodes * x->n_words);
        x->allow = g_new0(guint64, x->n_words);
        x->deny = g_new0(guint64, x->n_words);
        for (guint r = 0; r < x->n_rules; r++) {
                const AclRule *rule = rules->pdata[r];
                (rule->deny ? x->deny : x->allow)[WORD(r)] |= BIT(r);
                for (guint i = 0; i < n_nodes; i++) {
                        if (acl_selector_matches(rule->source, nodes[i]))
                                x->src[(gsize)i * x->n_words + WORD(r)] |= BIT(r);
                        if (acl_selector_matches(rule->destination, nodes[i]))
                                x->dst[(gsize)i * x->n_words + WORD(r)] |= BIT(r);
                }
        }
        return x;
}

void acl_index_free(AclIndex *x)
{
        if (!x)
                return;
        g_free(x->src);
        g_free(x->dst);
        g_free(x->allow);
        g_free(x->deny);
        g_free(x);
}

/* The rules matching the pair, word w. */
static guint64 matching(const AclIndex *x, guint a, guint b, guint w)
{
        const guint64 *sa = x->src + (gsize)a * x->n_words, *da = x->dst + (gsize)a * x->n_words;
        const guint64 *sb = x->src + (gsize)b * x->n_words, *db = x->dst + (gsize)b * x->n_words;
        return (sa[w] & db[w]) | (sb[w] & da[w]);
}

bool acl_index_allowed(const AclIndex *x, guint a, guint b)
{
        bool allow = false;
        g_assert(a < x->n_nodes && b < x->n_nodes);
        for (guint w = 0; w < x->n_words; w++) {
                guint64 m = matching(x, a, b, w);
                if (m & x->deny[w])
                        return false;
                allow = allow || (m & x->allow[w]);
        }
        return allow || !x->default_deny;
}

bool acl_index_unruled(const AclIndex *x, guint a, guint b)
{
        for (guint w = 0; w < x->n_words; w++)
                if (matching(x, a, b, w))
                        return false;
        return true;
}

bool acl_index_matches(const AclIndex *x, guint rule, guint node, bool destination)
{
        g_assert(rule < x->n_rules && node < x->n_nodes);
        const guint64 *bits = destination ? x->dst : x->src;
        return bits[(gsize)node * x->n_words + WORD(rule)] & BIT(rule);
}
