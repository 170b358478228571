/* REST resources for what a node does in its network (docs/protocol.md §4.2): tags, egress gateway,
 * internet gateway and its users, ingress gateway, relay, failover relay (and the pairs it relays). Each
 * change is one transaction: the view of the network before, the writes, the view after, and the difference
 * sent to exactly the hosts whose peers or roles it changes. */
#include <errno.h>
#include <microhttpd.h>
#include <string.h>

#include "gateways.h"
#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"
#include "topology.h"

#define MAX_NODE_TAGS 32
#define MAX_RELAYED   1000

/* One change to one node's network. */
typedef struct Change {
        Manager *manager;
        StoreTxn txn;
        PeerView *before;
        const Member *node; /* in `before` */
        TopoDirty *dirty;
        bool relays_changed; /* compare who relays whom once the view after is loaded */
        Outbox *out;
} Change;

static void change_done(Change *c)
{
        store_txn_done(&c->txn);
        peer_view_free(c->before);
        topo_dirty_free(c->dirty);
        outbox_free(c->out);
}

/* Begins the transaction and loads node `node_id` with the view of its network. */
static int change_begin(Manager *m, const char *node_id, Change *c, GError **error)
{
        g_autoptr(Node) n = NULL;
        int r;

        c->manager = m;
        c->dirty = topo_dirty_new();
        c->out = outbox_new();
        r = store_txn_begin(m->store, &c->txn, error);
        if (r >= 0)
                r = store_node_get(m->store, node_id, &n, error);
        if (r >= 0)
                r = peers_load_view(m->store, n->network, &c->before, error);
        if (r < 0)
                return r;
        c->node = topo_find_node(c->before, node_id);
        g_assert(c->node);
        return 0;
}

/* Diffs against the view after the writes, commits, publishes; the node as it is now in *ret. */
static int change_commit(Change *c, Node **ret, GError **error)
{
        g_autoptr(PeerView) after = NULL;
        int r;

        r = peers_load_view(c->manager->store, c->before->network->name, &after, error);
        if (r < 0)
                return r;
        if (c->relays_changed)
                topo_relays_changed(c->before, after, c->dirty);
        topo_diff(c->before, after, c->dirty, c->out);
        const Member *now = topo_find_node(after, c->node->node->id);
        g_assert(now);
        if (ret)
                *ret = node_copy(now->node);
        r = manager_commit(c->manager, &c->txn, c->out, error);
        if (r < 0)
                return r;
        if (c->out->msgs->len > 0)
                log_debug("Network \"%s\": %u message(s) for the change.", c->before->network->name,
                          c->out->msgs->len);
        return 0;
}

static void reply_node(Request *r, const Node *n)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_add_node(b, n);
        request_reply_builder(r, MHD_HTTP_OK, b);
}

/* Writes the node's roles as `roles`. */
static int set_roles(Change *c, const Member *m, const NmRoles *roles, GError **error)
{
        return store_node_set_roles(c->manager->store, m->node->id, roles, error);
}

static void roles_copy(NmRoles *dst, const NmRoles *src)
{
        *dst = *src;
        dst->egress_ranges = g_strdupv(src->egress_ranges);
        dst->relayed_by = g_strdup(src->relayed_by);
        dst->internet_gateway_via = g_strdup(src->internet_gateway_via);
}

/* Writes the node's own new roles (and clears `roles`), then commits: every viewer sees the node
 * anew (its allowed IPs carry what it routes or forwards; through a relay, the relay's). The node
 * as it is now in *ret. */
static int commit_own_roles(Change *c, NmRoles *roles, Node **ret, GError **error)
{
        int k = set_roles(c, c->node, roles, error);
        nm_roles_clear(roles);
        if (k < 0)
                return k;
        topo_dirty_peer(c->dirty, c->node->node->id);
        return change_commit(c, ret, error);
}

/* A body that may be absent, or an object without members. */
static int no_body(Request *r, const char *what, GError **error)
{
        static const char *const none[] = {NULL};
        if (!request_has_body(r))
                return 0;
        g_autoptr(JsonObject) o = request_json_object(r, what, none, error);
        return o ? 0 : -EINVAL;
}

/* A node named in a body: it exists and is in the network of `c`. */
static int other_node(Change *c, const char *member, const char *id, const Member **ret, GError **error)
{
        g_autofree char *v = nm_shown(id);
        const Member *m = topo_find_node(c->before, id);
        g_autoptr(Node) elsewhere = NULL;
        g_autoptr(GError) e = NULL;

        if (m) {
                *ret = m;
                return 0;
        }
        if (nm_uuid_valid(id) && store_node_get(c->manager->store, id, &elsewhere, &e) >= 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Node %s (%s) in %s is in network \"%s\", not in \"%s\"", v,
                            elsewhere->host_name, member, elsewhere->network, c->before->network->name);
                return -EXDEV;
        }
        g_set_error(error, NM_ERROR, NM_ERROR_NOT_FOUND, "Node \"%s\" in %s does not exist", v, member);
        return -ENOENT;
}

/* ---- tags ----------------------------------------------------------------------------------- */

static int node_put_tags(Request *r, GError **error)
{
        static const char *const members[] = {"tags", NULL};
        g_autoptr(JsonObject) o = request_json_object(r, "tags", members, error);
        g_auto(GStrv) tags = NULL;
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        int k;

        if (!o || !nm_json_get_strv(o, "tags", true, MAX_NODE_TAGS, &tags, error))
                return -EINVAL;
        for (guint i = 0; tags[i]; i++) {
                if (!nm_label_valid("tag", tags[i], NM_KEY_NAME_MAX, error))
                        return -EINVAL;
                for (guint j = 0; j < i; j++)
                        if (streq0(tags[i], tags[j])) {
                                g_autofree char *v = nm_shown(tags[i]);
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Tag \"%s\" is listed twice", v);
                                return -EINVAL;
                        }
        }
        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k >= 0)
                k = store_node_set_tags(c.manager->store, c.node->node->id, tags, error);
        if (k < 0)
                return k;
        /* Only the pairs this node is in can change their verdict. */
        {
                g_autoptr(PeerView) after = NULL;
                k = peers_load_view(c.manager->store, c.before->network->name, &after, error);
                if (k < 0)
                        return k;
                topo_acl_node_changed(c.before, after, c.node->node->id, c.dirty);
        }
        k = change_commit(&c, &now, error);
        if (k < 0)
                return k;
        log_info("Set the tags of node %s (%s) in \"%s\".", now->id, now->host_name, now->network);
        reply_node(r, now);
        return 0;
}

/* ---- egress --------------------------------------------------------------------------------- */

static int node_put_egress(Request *r, GError **error)
{
        static const char *const members[] = {"ranges", "nat", NULL};
        g_autoptr(JsonObject) o = request_json_object(r, "egress gateway", members, error);
        g_auto(GStrv) ranges = NULL, canonical = NULL;
        bool nat = true;
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        int k;

        if (!o || !nm_json_get_strv(o, "ranges", true, GATEWAY_MAX_RANGES, &ranges, error) ||
            !nm_json_get_bool(o, "nat", false, &nat, error))
                return -EINVAL;
        if (!ranges[0]) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "ranges: give at least one range (DELETE /nodes/{id}/egress removes the role)");
                return -EINVAL;
        }
        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k >= 0)
                k = gateways_check_ranges(c.before, "egress range", ranges, c.node->node->id, NULL,
                                          &canonical, error);
        if (k < 0)
                return k;
        roles_copy(&roles, &c.node->node->roles);
        g_strfreev(roles.egress_ranges);
        roles.egress_ranges = TAKE_PTR(canonical);
        roles.egress_nat = nat;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) routes %u egress range(s) for \"%s\".", now->id, now->host_name,
                 g_strv_length(now->roles.egress_ranges), now->network);
        reply_node(r, now);
        return 0;
}

static int node_delete_egress(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        int k;

        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        roles_copy(&roles, &c.node->node->roles);
        g_clear_pointer(&roles.egress_ranges, g_strfreev);
        roles.egress_nat = false;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) no longer routes egress ranges.", now->id, now->host_name);
        reply_node(r, now);
        return 0;
}

/* ---- internet gateway ----------------------------------------------------------------------- */

static int node_put_internet_gateway(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        int k;

        k = no_body(r, "internet gateway", error);
        if (k >= 0)
                k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        const Member *via = topo_internet_gateway_of(c.before, c.node);
        if (via) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Node %s (%s) sends its internet traffic through node %s (%s): an internet gateway "
                        "cannot use another (DELETE /nodes/%s/use-internet-gateway first)",
                        c.node->node->id, c.node->host->name, via->node->id, via->host->name,
                        c.node->node->id);
                return -EBUSY;
        }
        roles_copy(&roles, &c.node->node->roles);
        roles.internet_gateway = true;
        g_clear_pointer(&roles.internet_gateway_via, g_free);
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) is an internet gateway of \"%s\".", now->id, now->host_name, now->network);
        reply_node(r, now);
        return 0;
}

static int node_delete_internet_gateway(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        guint users = 0;
        int k;

        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        /* The nodes that used it are switched off it. */
        for (guint i = 0; i < c.before->members->len; i++) {
                const Member *m = c.before->members->pdata[i];
                if (m == c.node || !streq0(m->node->roles.internet_gateway_via, c.node->node->id))
                        continue;
                NmRoles user = {};
                roles_copy(&user, &m->node->roles);
                g_clear_pointer(&user.internet_gateway_via, g_free);
                k = set_roles(&c, m, &user, error);
                nm_roles_clear(&user);
                if (k < 0)
                        return k;
                users++;
        }
        roles_copy(&roles, &c.node->node->roles);
        roles.internet_gateway = false;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) is no longer an internet gateway; %u node(s) switched off it.", now->id,
                 now->host_name, users);
        reply_node(r, now);
        return 0;
}

/* Points node `c.node` at internet gateway `gateway_id`, or nowhere when NULL. */
static int use_internet_gateway(Change *c, const char *gateway_id, GError **error)
{
        const Member *g = NULL;
        NmRoles roles = {};
        int k;

        if (gateway_id) {
                g_autofree char *v = nm_shown(gateway_id);
                if (streq0(gateway_id, c->node->node->id)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Node %s cannot use itself as its internet gateway", v);
                        return -EINVAL;
                }
                k = other_node(c, "gateway", gateway_id, &g, error);
                if (k < 0)
                        return k;
                if (!g->node->roles.internet_gateway) {
                        g_set_error(
                                error, NM_ERROR, NM_ERROR_CONFLICT,
                                "Node %s (%s) is not an internet gateway (PUT /nodes/%s/internet-gateway "
                                "makes it one)",
                                g->node->id, g->host->name, g->node->id);
                        return -EBUSY;
                }
                if (c->node->node->roles.internet_gateway) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "Node %s (%s) is an internet gateway itself: it cannot use another",
                                    c->node->node->id, c->node->host->name);
                        return -EBUSY;
                }
        }
        roles_copy(&roles, &c->node->node->roles);
        g_free(roles.internet_gateway_via);
        roles.internet_gateway_via = g ? g_strdup(g->node->id) : NULL;
        k = set_roles(c, c->node, &roles, error);
        nm_roles_clear(&roles);
        if (k < 0)
                return k;
        /* Only the user's own view changes: the gateway's entry gains or loses the default routes. */
        topo_dirty_viewer(c->dirty, c->node->node->id);
        return 0;
}

static int node_put_use_internet_gateway(Request *r, GError **error)
{
        static const char *const members[] = {"gateway", NULL};
        g_autoptr(JsonObject) o = request_json_object(r, "internet gateway choice", members, error);
        const char *gateway = NULL;
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        int k;

        if (!o || !nm_json_get_string(o, "gateway", true, &gateway, error))
                return -EINVAL;
        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k >= 0)
                k = use_internet_gateway(&c, gateway, error);
        if (k >= 0)
                k = change_commit(&c, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) uses internet gateway %s.", now->id, now->host_name, gateway);
        reply_node(r, now);
        return 0;
}

static int node_delete_use_internet_gateway(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        int k;

        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k >= 0)
                k = use_internet_gateway(&c, NULL, error);
        if (k >= 0)
                k = change_commit(&c, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) uses no internet gateway.", now->id, now->host_name);
        reply_node(r, now);
        return 0;
}

static int host_put_use_internet_gateway(Request *r, GError **error)
{
        static const char *const members[] = {"gateway", NULL};
        Manager *m = request_manager(r);
        g_autoptr(JsonObject) o = request_json_object(r, "internet gateway choice", members, error);
        g_autoptr(Node) node = NULL;
        const char *gateway = NULL;
        _cleanup_(change_done) Change c = {};
        int k;

        if (!o || !nm_json_get_string(o, "gateway", false, &gateway, error))
                return -EINVAL;
        if (!json_object_has_member(o, "gateway")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"gateway\" is required: a node id, or null to stop using one");
                return -EINVAL;
        }
        k = store_node_find(m->store, request_auth(r)->host_id, request_param(r, "net"), &node, error);
        if (k >= 0)
                k = change_begin(m, node->id, &c, error);
        if (k >= 0)
                k = use_internet_gateway(&c, gateway, error);
        if (k >= 0)
                k = change_commit(&c, NULL, error);
        if (k < 0)
                return k;
        log_info("Host \"%s\" chose %s%s as its internet gateway in \"%s\".", node->host_name,
                 gateway ? "node " : "", gateway ?: "none", node->network);
        request_reply_empty(r);
        return 0;
}

/* ---- ingress -------------------------------------------------------------------------------- */

static int node_put_ingress(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        int k;

        k = no_body(r, "ingress gateway", error);
        if (k >= 0)
                k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        roles_copy(&roles, &c.node->node->roles);
        roles.ingress = true;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) takes external clients in \"%s\".", now->id, now->host_name, now->network);
        reply_node(r, now);
        return 0;
}

static int node_delete_ingress(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        guint clients = 0;
        bool force;
        int k;

        k = request_query_bool(r, "force", false, &force, error);
        if (k >= 0)
                k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        for (guint i = 0; i < c.before->ext_clients->len; i++) {
                const ExtClient *ec = c.before->ext_clients->pdata[i];
                if (streq0(ec->gateway, c.node->node->id))
                        clients++;
        }
        if (clients > 0 && !force) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_CONFLICT,
                        "Node %s (%s) has %u external client(s): delete them first, or use ?force=true to "
                        "delete them with the role",
                        c.node->node->id, c.node->host->name, clients);
                return -EBUSY;
        }
        for (guint i = 0; i < c.before->ext_clients->len; i++) {
                const ExtClient *ec = c.before->ext_clients->pdata[i];
                if (!streq0(ec->gateway, c.node->node->id))
                        continue;
                k = store_ext_client_delete(c.manager->store, ec->id, error);
                if (k < 0)
                        return k;
                topo_dirty_peer(c.dirty, ec->id);
        }
        roles_copy(&roles, &c.node->node->roles);
        roles.ingress = false;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) no longer takes external clients (%u deleted).", now->id, now->host_name,
                 clients);
        reply_node(r, now);
        return 0;
}

/* ---- relay ---------------------------------------------------------------------------------- */

/* Makes `c.node` the relay of exactly the members in `relayed` (none: no relay). */
static int set_relayed(Change *c, GPtrArray *relayed, GError **error)
{
        NmRoles roles = {};
        int k;

        for (guint i = 0; i < c->before->members->len; i++) {
                const Member *m = c->before->members->pdata[i];
                bool want = g_ptr_array_find(relayed, m, NULL);
                bool has = streq0(m->node->roles.relayed_by, c->node->node->id);
                if (m == c->node || want == has)
                        continue;
                NmRoles mr = {};
                roles_copy(&mr, &m->node->roles);
                g_free(mr.relayed_by);
                mr.relayed_by = want ? g_strdup(c->node->node->id) : NULL;
                k = set_roles(c, m, &mr, error);
                nm_roles_clear(&mr);
                if (k < 0)
                        return k;
        }
        roles_copy(&roles, &c->node->node->roles);
        roles.relay = relayed->len > 0;
        k = set_roles(c, c->node, &roles, error);
        nm_roles_clear(&roles);
        if (k < 0)
                return k;
        /* Relayed nodes change all their peers, and everyone's view of them and of the relays. */
        c->relays_changed = true;
        return 0;
}

static int node_put_relay(Request *r, GError **error)
{
        static const char *const members[] = {"relayed", NULL};
        g_autoptr(JsonObject) o = request_json_object(r, "relay", members, error);
        g_auto(GStrv) ids = NULL;
        g_autoptr(GPtrArray) relayed = g_ptr_array_new();
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        int k;

        if (!o || !nm_json_get_strv(o, "relayed", true, MAX_RELAYED, &ids, error))
                return -EINVAL;
        if (!ids[0]) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "relayed: give at least one node (DELETE /nodes/{id}/relay removes the role)");
                return -EINVAL;
        }
        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        const Member *self = c.node;
        const Member *my_relay = topo_find_node(c.before, self->node->roles.relayed_by);
        if (my_relay) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Node %s (%s) is relayed by node %s (%s): relays cannot be chained",
                            self->node->id, self->host->name, my_relay->node->id, my_relay->host->name);
                return -EBUSY;
        }
        for (guint i = 0; ids[i]; i++) {
                const Member *m;
                g_autofree char *v = nm_shown(ids[i]);
                if (streq0(ids[i], self->node->id)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Node %s cannot relay itself", v);
                        return -EINVAL;
                }
                k = other_node(&c, "relayed", ids[i], &m, error);
                if (k < 0)
                        return k;
                if (g_ptr_array_find(relayed, m, NULL)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Node %s is listed twice",
                                    v);
                        return -EINVAL;
                }
                const Member *other = topo_find_node(c.before, m->node->roles.relayed_by);
                if (other && other != self) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "Node %s (%s) is already relayed by node %s (%s): a node has one relay",
                                    v, m->host->name, other->node->id, other->host->name);
                        return -EBUSY;
                }
                if (m->node->roles.relay) {
                        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                                    "Node %s (%s) is a relay itself: relays cannot be chained", v,
                                    m->host->name);
                        return -EBUSY;
                }
                g_ptr_array_add(relayed, (gpointer)m);
        }
        k = set_relayed(&c, relayed, error);
        if (k >= 0)
                k = change_commit(&c, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) relays %u node(s) in \"%s\".", now->id, now->host_name, relayed->len,
                 now->network);
        reply_node(r, now);
        return 0;
}

static int node_delete_relay(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(GPtrArray) none = g_ptr_array_new();
        g_autoptr(Node) now = NULL;
        int k;

        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k >= 0)
                k = set_relayed(&c, none, error);
        if (k >= 0)
                k = change_commit(&c, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) relays no node.", now->id, now->host_name);
        reply_node(r, now);
        return 0;
}

/* ---- failover relay ------------------------------------------------------------------------- */

static int node_put_failover(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        int k;

        k = no_body(r, "failover relay", error);
        if (k >= 0)
                k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        if (c.node->node->roles.relayed_by) {
                g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT,
                            "Node %s (%s) is relayed by node %s: a relayed node cannot relay others (DELETE "
                            "/nodes/%s/relay first)",
                            c.node->node->id, c.node->host->name, c.node->node->roles.relayed_by,
                            c.node->node->roles.relayed_by);
                return -EBUSY;
        }
        roles_copy(&roles, &c.node->node->roles);
        roles.failover = true;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) may relay pairs that cannot connect in \"%s\".", now->id, now->host_name,
                 now->network);
        reply_node(r, now);
        return 0;
}

static int node_delete_failover(Request *r, GError **error)
{
        _cleanup_(change_done) Change c = {};
        g_autoptr(Node) now = NULL;
        NmRoles roles = {};
        guint pairs = 0;
        int k;

        k = change_begin(request_manager(r), request_param(r, "id"), &c, error);
        if (k < 0)
                return k;
        /* The pairs it relays connect directly again (or another relay takes them over later). */
        for (guint i = 0; i < c.before->failovers->len; i++) {
                const Failover *f = c.before->failovers->pdata[i];
                if (!streq0(f->relay, c.node->node->id))
                        continue;
                k = store_failover_delete(c.manager->store, f->node_a, f->node_b, error);
                if (k < 0)
                        return k;
                topo_dirty_failover(c.dirty, f->node_a, f->node_b, f->relay, NULL);
                pairs++;
        }
        roles_copy(&roles, &c.node->node->roles);
        roles.failover = false;
        k = commit_own_roles(&c, &roles, &now, error);
        if (k < 0)
                return k;
        log_info("Node %s (%s) no longer relays pairs that cannot connect (%u pair(s) direct again).",
                 now->id, now->host_name, pairs);
        reply_node(r, now);
        return 0;
}

static int network_list_failovers(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Network) n = NULL;
        g_autoptr(GPtrArray) all = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        k = store_network_get(m->store, request_param(r, "net"), &n, error);
        if (k >= 0)
                k = store_failover_list(m->store, n->name, &all, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < all->len; i++) {
                const Failover *f = all->pdata[i];
                json_builder_begin_object(b);
                nm_json_add_string(b, "a", f->node_a);
                nm_json_add_string(b, "b", f->node_b);
                nm_json_add_string(b, "relay", f->relay);
                nm_json_add_int(b, "since", f->since);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

const Route http_topology_routes[] = {
        {"PUT", "/nodes/{id}/tags", ACCESS_ADMIN, node_put_tags},
        {"PUT", "/nodes/{id}/egress", ACCESS_ADMIN, node_put_egress},
        {"DELETE", "/nodes/{id}/egress", ACCESS_ADMIN, node_delete_egress},
        {"PUT", "/nodes/{id}/internet-gateway", ACCESS_ADMIN, node_put_internet_gateway},
        {"DELETE", "/nodes/{id}/internet-gateway", ACCESS_ADMIN, node_delete_internet_gateway},
        {"PUT", "/nodes/{id}/use-internet-gateway", ACCESS_ADMIN, node_put_use_internet_gateway},
        {"DELETE", "/nodes/{id}/use-internet-gateway", ACCESS_ADMIN, node_delete_use_internet_gateway},
        {"PUT", "/host/networks/{net}/use-internet-gateway", ACCESS_HOST, host_put_use_internet_gateway},
        {"PUT", "/nodes/{id}/ingress", ACCESS_ADMIN, node_put_ingress},
        {"DELETE", "/nodes/{id}/ingress", ACCESS_ADMIN, node_delete_ingress},
        {"PUT", "/nodes/{id}/relay", ACCESS_ADMIN, node_put_relay},
        {"DELETE", "/nodes/{id}/relay", ACCESS_ADMIN, node_delete_relay},
        {"PUT", "/nodes/{id}/failover", ACCESS_ADMIN, node_put_failover},
        {"DELETE", "/nodes/{id}/failover", ACCESS_ADMIN, node_delete_failover},
        {"GET", "/networks/{net}/failovers", ACCESS_USER, network_list_failovers},
        {},
};
