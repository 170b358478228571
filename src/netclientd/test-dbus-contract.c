/* Proves that dbus/org.netmaker.Client.xml, the contract, is what netclientd exports: the build
 * turns the XML into code with gdbus-codegen (so the file must be valid introspection data), and
 * every method, signal and property of its three interfaces is exported with the same signature,
 * and nothing else. And that each method names the polkit action it checks (annotation
 * org.netmaker.Client.PolkitAction), that action exists in polkit/org.netmaker.client.policy, and
 * the defaults are the documented ones: connecting is allowed to the active local session without a
 * password (as NetworkManager's network-control), joining and leaving need an administrator. */
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager.h"
#include "network.h"
#include "nm-bus-generated.h"
#include "test-agent-fixture.h"

#define POLKIT_ANNOTATION "org.netmaker.Client.PolkitAction"

static const char *policy_path;

/* ---- the polkit policy: action id -> {allow_any, allow_inactive, allow_active} ---------------- */

typedef struct PolicyParse {
        GHashTable *actions; /* id -> GHashTable(element -> value) */
        GHashTable *current;
        char *element;
} PolicyParse;

static void on_start(GMarkupParseContext *c, const char *name, const char **attr_names,
                     const char **attr_values, gpointer userdata, GError **error)
{
        PolicyParse *p = userdata;
        if (strcmp(name, "action") == 0) {
                for (guint i = 0; attr_names[i]; i++)
                        if (strcmp(attr_names[i], "id") == 0) {
                                p->current = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                                g_hash_table_insert(p->actions, g_strdup(attr_values[i]), p->current);
                        }
        }
        g_free(p->element);
        p->element = g_strdup(name);
}

static void on_text(GMarkupParseContext *c, const char *text, gsize len, gpointer userdata, GError **error)
{
        PolicyParse *p = userdata;
        if (p->current && p->element && g_str_has_prefix(p->element, "allow_"))
                g_hash_table_insert(p->current, g_strdup(p->element), g_strstrip(g_strndup(text, len)));
}

static void on_end(GMarkupParseContext *c, const char *name, gpointer userdata, GError **error)
{
        PolicyParse *p = userdata;
        if (strcmp(name, "action") == 0)
                p->current = NULL;
        g_clear_pointer(&p->element, g_free);
}

static GHashTable *load_policy(void)
{
        static const GMarkupParser parser = {
                .start_element = on_start, .end_element = on_end, .text = on_text};
        g_autoptr(GError) e = NULL;
        g_autofree char *text = NULL;
        PolicyParse p = {.actions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                          (GDestroyNotify)g_hash_table_unref)};

        g_assert_true(g_file_get_contents(policy_path, &text, NULL, &e));
        g_autoptr(GMarkupParseContext) ctx = g_markup_parse_context_new(&parser, 0, &p, NULL);
        g_assert_true(g_markup_parse_context_parse(ctx, text, -1, &e));
        g_assert_no_error(e);
        g_free(p.element);
        return p.actions;
}

static const char *allow(GHashTable *policy, const char *action, const char *key)
{
        GHashTable *a = g_hash_table_lookup(policy, action);
        g_assert_nonnull(a);
        return g_hash_table_lookup(a, key);
}

static void test_polkit_annotations(void)
{
        g_autoptr(GHashTable) policy = load_policy();
        g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);
        GDBusInterfaceInfo *info = nm_bus_client_interface_info();

        for (GDBusMethodInfo **m = info->methods; *m; m++) {
                const char *action = g_dbus_annotation_info_lookup((*m)->annotations, POLKIT_ANNOTATION);
                if (!action)
                        g_error("method %s has no %s annotation", (*m)->name, POLKIT_ANNOTATION);
                if (strcmp(action, "none") == 0) {
                        /* Only reading is open to all: nothing that changes state. */
                        g_assert_true(g_str_has_prefix((*m)->name, "Get"));
                        continue;
                }
                if (!g_hash_table_contains(policy, action))
                        g_error("method %s names action %s, which the policy does not declare", (*m)->name,
                                action);
                g_hash_table_add(used, (gpointer)action);
        }
        /* Every declared action is checked by some method. */
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, policy);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (!g_hash_table_contains(used, k))
                        g_error("action %s is declared but no method checks it", (char *)k);

        const char *want_actions[][2] = {
                {"Join", "org.netmaker.client.join"},
                {"Leave", "org.netmaker.client.leave"},
                {"Pull", "org.netmaker.client.manage"},
                {"Connect", "org.netmaker.client.connect"},
                {"Disconnect", "org.netmaker.client.connect"},
                {"SetInternetGateway", "org.netmaker.client.connect"},
                {"GetStatus", "none"},
                {"GetPeers", "none"},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(want_actions); i++) {
                GDBusMethodInfo *m = g_dbus_interface_info_lookup_method(info, want_actions[i][0]);
                g_assert_nonnull(m);
                g_assert_cmpstr(g_dbus_annotation_info_lookup(m->annotations, POLKIT_ANNOTATION), ==,
                                want_actions[i][1]);
        }

        /* Nobody outside a local session, ever; the console user connects without a password. */
        g_hash_table_iter_init(&it, policy);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_assert_cmpstr(allow(policy, k, "allow_any"), ==, "no");
        g_assert_cmpstr(allow(policy, "org.netmaker.client.connect", "allow_active"), ==, "yes");
        g_assert_true(g_str_has_prefix(allow(policy, "org.netmaker.client.connect", "allow_inactive"),
                                       "auth_admin"));
        const char *admin_only[] = {"org.netmaker.client.join", "org.netmaker.client.leave",
                                    "org.netmaker.client.manage"};
        for (size_t i = 0; i < G_N_ELEMENTS(admin_only); i++) {
                g_assert_true(g_str_has_prefix(allow(policy, admin_only[i], "allow_active"), "auth_admin"));
                g_assert_true(
                        g_str_has_prefix(allow(policy, admin_only[i], "allow_inactive"), "auth_admin"));
        }
}

/* ---- the live objects against the contract ---------------------------------------------------- */

static char *args_signature(GDBusArgInfo **args)
{
        GString *s = g_string_new(NULL);
        for (GDBusArgInfo **a = args; a && *a; a++)
                g_string_append_printf(s, "%s;", (*a)->signature);
        return g_string_free(s, false);
}

/* "method Join s;a{sv};->ao;", "signal ...", "property Name s" */
static GHashTable *members(GDBusInterfaceInfo *i)
{
        GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (GDBusMethodInfo **m = i->methods; m && *m; m++) {
                g_autofree char *in = args_signature((*m)->in_args), *out = args_signature((*m)->out_args);
                g_hash_table_add(h, g_strdup_printf("method %s %s->%s", (*m)->name, in, out));
        }
        for (GDBusSignalInfo **s = i->signals; s && *s; s++) {
                g_autofree char *a = args_signature((*s)->args);
                g_hash_table_add(h, g_strdup_printf("signal %s %s", (*s)->name, a));
        }
        for (GDBusPropertyInfo **p = i->properties; p && *p; p++)
                g_hash_table_add(h, g_strdup_printf("property %s %s", (*p)->name, (*p)->signature));
        return h;
}

static void assert_same_members(GDBusInterfaceInfo *contract, GDBusInterfaceInfo *live)
{
        g_autoptr(GHashTable) want = members(contract), got = members(live);
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, want);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (!g_hash_table_contains(got, k))
                        g_error("%s: the XML has \"%s\", netclientd does not export it", contract->name,
                                (char *)k);
        g_hash_table_iter_init(&it, got);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (!g_hash_table_contains(want, k))
                        g_error("%s: netclientd exports \"%s\", the XML does not have it", contract->name,
                                (char *)k);
}

typedef struct Reply {
        bool done;
        char *xml;
} Reply;

static int on_introspect(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Reply *r = userdata;
        const char *xml = NULL;
        r->done = true;
        g_assert_null(sd_bus_message_get_error(m));
        g_assert_cmpint(sd_bus_message_read(m, "s", &xml), >, 0);
        r->xml = g_strdup(xml);
        return 0;
}

static GDBusNodeInfo *introspect(sd_event *event, sd_bus *client, const char *path)
{
        g_autoptr(GError) e = NULL;
        sd_bus_message *m = NULL;
        Reply r = {};

        g_assert_cmpint(sd_bus_message_new_method_call(client, &m, NULL, path,
                                                       "org.freedesktop.DBus.Introspectable", "Introspect"),
                        >=, 0);
        g_assert_cmpint(sd_bus_call_async(client, NULL, m, on_introspect, &r, 5 * 1000000ULL), >=, 0);
        sd_bus_message_unref(m);
        for (int i = 0; i < 10000 && !r.done; i++)
                g_assert_cmpint(sd_event_run(event, 100 * 1000), >=, 0);
        g_assert_true(r.done);
        GDBusNodeInfo *node = g_dbus_node_info_new_for_xml(r.xml, &e);
        g_assert_no_error(e);
        g_free(r.xml);
        return node;
}

static void test_exported_matches_contract(void)
{
        char *dir, *host_id;
        Config *config;
        Manager *m;
        sd_event *event;
        sd_bus *client;
        sd_id128_t id;
        int s[2];

        agent_fixture_setup("test-dbus-contract-XXXXXX", &dir, &config, &m, &host_id);
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        m->event = sd_event_ref(event);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);
        g_assert_cmpint(sd_bus_new(&m->bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(m->bus, s[0], s[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(m->bus, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_start(m->bus), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(m->bus, event, 0), >=, 0);
        g_assert_cmpint(manager_bus_register(m), ==, 0);
        g_assert_cmpint(sd_bus_new(&client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(client, s[1], s[1]), >=, 0);
        g_assert_cmpint(sd_bus_start(client), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(client, event, 0), >=, 0);

        /* A network with a peer, so that all three kinds of object exist. */
        NmNetworkState *ns = nm_network_state_new();
        ns->network = g_strdup("office");
        ns->node_id = nm_uuid_new();
        ns->ipv4 = g_strdup("10.99.0.1/24");
        ns->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        NmPeer *p = nm_peer_new();
        NmKey priv;
        p->host_id = nm_uuid_new();
        p->name = g_strdup("peer");
        nm_key_generate_wg(&priv, &p->public_key);
        g_ptr_array_add(ns->peers, p);
        Network *n = manager_add_network(m, ns);
        g_assert_nonnull(n);
        g_auto(GStrv) peer_paths = network_peer_paths(n);
        g_assert_nonnull(peer_paths[0]);
        const char *peer_path = peer_paths[0];

        struct {
                const char *path;
                GDBusInterfaceInfo *contract;
        } objects[] = {
                {NETCLIENT_OBJECT_PATH, nm_bus_client_interface_info()},
                {n->path, nm_bus_client_network_interface_info()},
                {peer_path, nm_bus_client_peer_interface_info()},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(objects); i++) {
                g_autoptr(GDBusNodeInfo) node = introspect(event, client, objects[i].path);
                GDBusInterfaceInfo *live =
                        g_dbus_node_info_lookup_interface(node, objects[i].contract->name);
                if (!live)
                        g_error("%s is not exported at %s", objects[i].contract->name, objects[i].path);
                assert_same_members(objects[i].contract, live);
        }

        sd_bus_flush_close_unref(client);
        sd_event_unref(event);
        agent_fixture_teardown(dir, config, m, host_id);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        log_set_max_level(LOG_WARNING);
        policy_path = g_getenv("NM_POLKIT_POLICY");
        g_assert_nonnull(policy_path);
        g_test_add_func("/dbus-contract/polkit-annotations", test_polkit_annotations);
        g_test_add_func("/dbus-contract/exported-matches-contract", test_exported_matches_contract);
        return g_test_run();
}
