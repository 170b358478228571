/* ACLs (docs/protocol.md §4.2.1) as pure functions: selectors ("*", "node:<id>", "tag:<tag>"), and
 * the verdict for a pair of nodes: rules are symmetric, a matching deny wins, then a matching allow,
 * then the network's default. An AclIndex turns a network's rules into per-node bitsets, so that a
 * pair costs a few word operations and the pairs one rule can match are found without looking at
 * the others. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "store.h"

#define ACL_MAX_RULES 1000

typedef enum AclSelectorKind {
        ACL_SELECTOR_ANY,
        ACL_SELECTOR_NODE,
        ACL_SELECTOR_TAG,
} AclSelectorKind;

/* Parses a selector; *ret_value points into `s` (the node id or tag; NULL for "*"). Fails with
 * NM_ERROR_INVALID_ARGUMENT naming `member` and quoting the value. */
bool acl_selector_parse(const char *member, const char *s, AclSelectorKind *ret_kind, const char **ret_value,
                        GError **error);
bool acl_selector_matches(const char *selector, const Node *n);
/* True when `r` matches the pair in either direction. */
bool acl_rule_matches(const AclRule *r, const Node *a, const Node *b);
/* The verdict by the definition, rule by rule (the reference the index is tested against). */
bool acl_allowed(bool default_deny, GPtrArray *rules, const Node *a, const Node *b);

typedef struct AclIndex AclIndex;

/* `rules` of AclRule and `nodes` are borrowed for the index's lifetime. */
AclIndex *acl_index_new(bool default_deny, GPtrArray *rules, const Node *const *nodes, guint n_nodes);
void acl_index_free(AclIndex *x);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AclIndex, acl_index_free)
/* The verdict for nodes a and b (positions in `nodes`). */
bool acl_index_allowed(const AclIndex *x, guint a, guint b);
/* Whether rule number `rule` matches node `node` on its source (or destination) side. */
bool acl_index_matches(const AclIndex *x, guint rule, guint node, bool destination);
/* True when no rule matches the pair: the default decides it. */
bool acl_index_unruled(const AclIndex *x, guint a, guint b);
