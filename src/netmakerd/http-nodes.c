/* REST resource /nodes: a host's membership of one network (its addresses and port); admins
 * remove nodes, which tells the host and its peers. */
#include <errno.h>
#include <microhttpd.h>

#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"

void json_add_node(JsonBuilder *b, const Node *n)
{
        json_builder_begin_object(b);
        nm_json_add_string(b, "id", n->id);
        nm_json_add_string(b, "host_id", n->host_id);
        nm_json_add_string(b, "host_name", n->host_name);
        nm_json_add_string(b, "network", n->network);
        nm_json_add_string(b, "ipv4", n->ipv4);
        nm_json_add_string(b, "ipv6", n->ipv6);
        nm_json_add_int(b, "listen_port", n->listen_port);
        nm_json_add_bool(b, "connected", n->connected);
        nm_json_add_int(b, "created_at", n->created_at);
        nm_json_add_strv(b, "tags", (const char *const *)n->tags);
        json_builder_set_member_name(b, "roles");
        nm_roles_to_json(&n->roles, b);
        nm_json_add_string(b, "observed_endpoint", n->observed_endpoint);
        json_builder_end_object(b);
}

static int nodes_list(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        const char *network = request_query(r, "network");
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        if (network) {
                g_autoptr(Network) n = NULL;
                k = store_network_get(m->store, network, &n, error);
                if (k < 0)
                        return k;
        }
        k = store_node_list(m->store, network, NULL, &nodes, error);
        if (k < 0)
                return k;
        json_builder_begin_array(b);
        for (guint i = 0; i < nodes->len; i++)
                json_add_node(b, nodes->pdata[i]);
        json_builder_end_array(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int nodes_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Node) n = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k = store_node_get(m->store, request_param(r, "id"), &n, error);
        if (k < 0)
                return k;
        json_add_node(b, n);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

static int nodes_delete(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(Node) n = NULL;
        g_autoptr(Outbox) out = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int k;

        k = store_txn_begin(m->store, &t, error);
        if (k >= 0)
                k = store_node_get(m->store, request_param(r, "id"), &n, error);
        if (k >= 0)
                k = peers_node_leave(m->store, n, true, out, error);
        if (k >= 0)
                k = manager_commit(m, &t, out, error);
        if (k < 0)
                return k;
        log_info("Removed host \"%s\" from network \"%s\".", n->host_name, n->network);
        request_reply_empty(r);
        return 0;
}

const Route http_node_routes[] = {
        {"GET", "/nodes", ACCESS_USER, nodes_list},
        {"GET", "/nodes/{id}", ACCESS_USER, nodes_get},
        {"DELETE", "/nodes/{id}", ACCESS_ADMIN, nodes_delete},
        {},
};
