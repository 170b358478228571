/* nmctl host list|show|set|delete|join and node list|show|delete (docs/protocol.md §2.3, /hosts and
 * /nodes). A host may be named by id or, when unambiguous, by name. */
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "keys.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum {
        OPT_NETWORK = OPT_FIRST_COMMAND_OPTION,
        OPT_NAME,
        OPT_LISTEN_PORT,
        OPT_ENDPOINT,
        OPT_KEEPALIVE,
        OPT_MTU,
};

/* The id of the host named `arg` (an id, or a unique host name). */
static int resolve_host(Ctx *c, const char *arg, char **ret_id)
{
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(GPtrArray) matches = g_ptr_array_new_with_free_func(g_free);
        bool json = c->json;
        JsonArray *a;
        int k;

        if (nm_uuid_valid(arg)) {
                *ret_id = g_strdup(arg);
                return NMCTL_EXIT_OK;
        }
        c->json = false; /* this look-up prints nothing */
        k = rest_call(c, "GET", "/hosts", NULL, &answer, NULL);
        c->json = json;
        if (k != NMCTL_EXIT_OK)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                g_autofree char *name = json_member_string(o, "name");
                if (streq0(name, arg))
                        g_ptr_array_add(matches, json_member_string(o, "id"));
        }
        g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 64));
        if (matches->len == 0) {
                fprintf(stderr, "Error: no host has the id or name \"%s\".\n", shown);
                return NMCTL_EXIT_REFUSED;
        }
        if (matches->len > 1) {
                fprintf(stderr, "Error: %u hosts are named \"%s\"; give the id:\n", matches->len, shown);
                for (guint i = 0; i < matches->len; i++)
                        fprintf(stderr, "  %s\n", (const char *)g_ptr_array_index(matches, i));
                return NMCTL_EXIT_USAGE;
        }
        *ret_id = g_strdup(g_ptr_array_index(matches, 0));
        return NMCTL_EXIT_OK;
}

/* The admin's settings of a host ("settings" in its JSON), or NULL. */
static JsonObject *settings_of(JsonObject *o)
{
        JsonNode *n = o ? json_object_get_member(o, "settings") : NULL;
        return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* A setting as "VALUE" when the admin set one, else `fallback` (the default's description). */
static char *setting_text(JsonObject *o, const char *member, const char *unit, const char *fallback)
{
        JsonObject *st = settings_of(o);
        g_autofree char *v = st ? json_member_string(st, member) : NULL;
        if (!v && st)
                v = json_member_int(st, member);
        if (!v)
                return g_strdup(fallback);
        return g_strconcat(v, unit ? unit : "", " (set by the admin)", NULL);
}

static char *endpoint_text(JsonObject *o)
{
        JsonObject *st = settings_of(o);
        g_autofree char *fixed = st ? json_member_string(st, "endpoint") : NULL;
        if (fixed)
                return g_strconcat(fixed, " (static)", NULL);
        g_autofree char *pub = json_member_string(o, "public_endpoint");
        g_autofree char *eps = json_member_strv(o, "endpoints");
        if (pub && eps && *eps)
                return g_strdup_printf("%s (%s)", pub, eps);
        if (pub)
                return TAKE_PTR(pub);
        return eps && *eps ? TAKE_PTR(eps) : NULL;
}

static void add_node_rows(Table *t, JsonArray *a, bool with_network, bool with_host)
{
        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                char *id = json_member_string(o, "id");
                char *host = with_host ? json_member_string(o, "host_name") : NULL;
                char *net = with_network ? json_member_string(o, "network") : NULL;
                char *v4 = json_member_string(o, "ipv4"), *v6 = json_member_string(o, "ipv6");
                char *port = json_member_int(o, "listen_port"), *conn = json_member_bool(o, "connected");
                if (with_host && with_network)
                        table_add_row_take(t, id, host, net, v4, v6, port, conn);
                else
                        table_add_row_take(t, id, net, v4, v6, port, conn);
        }
}

static int host_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl host list\n\nLists the registered hosts.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("host list takes no arguments");
        k = rest_call_show(c, "GET", "/hosts", NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("ID", "NAME", "STATUS", "OS", "VERSION", "ENDPOINT", "LAST CHECK-IN", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "id"), json_member_string(o, "name"),
                                   json_member_string(o, "status"), json_member_string(o, "os"),
                                   json_member_string(o, "version"), endpoint_text(o),
                                   json_member_time(o, "last_checkin", "never"));
        }
        if (table_rows(t) == 0)
                printf("No hosts.\n");
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static void print_host(JsonObject *o);

static int host_show(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl host show HOST\n\nShows a host (by id or name) and its nodes.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("host show needs exactly one HOST (id or name)");
        k = resolve_host(c, argv[optind], &id);
        if (k != NMCTL_EXIT_OK)
                return k;
        path = g_strconcat("/hosts/", id, NULL);
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;

        print_host(o);
        return NMCTL_EXIT_OK;
}

static void print_host(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "ID", json_member_string(o, "id"));
        table_add_item_take(t, "Name", json_member_string(o, "name"));
        table_add_item_take(t, "Status", json_member_string(o, "status"));
        table_add_item_take(t, "OS", json_member_string(o, "os"));
        table_add_item_take(t, "Version", json_member_string(o, "version"));
        table_add_item_take(t, "WireGuard key", json_member_string(o, "wg_public_key"));
        table_add_item_take(t, "Message key", json_member_string(o, "msg_public_key"));
        table_add_item_take(t, "Listen port", setting_text(o, "listen_port", NULL, "each network's"));
        table_add_item_take(t, "Static endpoint",
                            setting_text(o, "endpoint", NULL, "none (what it reports)"));
        table_add_item_take(t, "Keepalive", setting_text(o, "keepalive", " s", "each network's"));
        table_add_item_take(t, "MTU", setting_text(o, "mtu", NULL, "each network's"));
        table_add_item_take(t, "Endpoints", json_member_strv(o, "endpoints"));
        table_add_item_take(t, "Public endpoint", json_member_string(o, "public_endpoint"));
        table_add_item_take(t, "Last check-in", json_member_time(o, "last_checkin", "never"));
        table_add_item_take(t, "Serial", json_member_int(o, "serial"));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_print(t, stdout);

        JsonNode *nodes = json_object_get_member(o, "nodes");
        if (nodes && JSON_NODE_HOLDS_ARRAY(nodes) && json_array_get_length(json_node_get_array(nodes)) > 0) {
                g_autoptr(Table) nt =
                        table_new("NODE", "NETWORK", "IPV4", "IPV6", "PORT", "CONNECTED", NULL);
                add_node_rows(nt, json_node_get_array(nodes), true, false);
                putchar('\n');
                table_print(nt, stdout);
        }
}

typedef struct HostSetArgs {
        const char *name, *endpoint;
        gint64 listen_port, keepalive, mtu; /* -1: not given; -2: "default" */
} HostSetArgs;

/* "default" (the setting goes back to its default: null), or a number in range. */
static int number_or_default(const char *option, const char *arg, guint64 min, guint64 max, gint64 *ret)
{
        guint64 v;
        if (streq0(arg, "default")) {
                *ret = -2;
                return 0;
        }
        if (!g_ascii_string_to_unsigned(arg, 10, min, max, &v, NULL)) {
                g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 40));
                usage_error("invalid %s \"%s\": expected a number from %" G_GUINT64_FORMAT
                            " to %" G_GUINT64_FORMAT ", or \"default\"",
                            option, shown, min, max);
                return -1;
        }
        *ret = (gint64)v;
        return 0;
}

static int host_set_option(int opt, const char *arg, void *userdata)
{
        HostSetArgs *a = userdata;

        switch (opt) {
        case OPT_NAME:
                a->name = arg;
                return 0;
        case OPT_ENDPOINT:
                a->endpoint = arg;
                return 0;
        case OPT_LISTEN_PORT:
                return number_or_default("--listen-port", arg, 1, 65535, &a->listen_port);
        case OPT_KEEPALIVE:
                return number_or_default("--keepalive", arg, 0, 3600, &a->keepalive);
        case OPT_MTU:
                return number_or_default("--mtu", arg, 1280, 9000, &a->mtu);
        default:
                return -1;
        }
}

static void add_setting(JsonBuilder *b, const char *member, gint64 v)
{
        if (v == -1)
                return;
        json_builder_set_member_name(b, member);
        if (v == -2)
                json_builder_add_null_value(b);
        else
                json_builder_add_int_value(b, v);
}

static int host_set(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"name", required_argument, NULL, OPT_NAME},
                {"listen-port", required_argument, NULL, OPT_LISTEN_PORT},
                {"endpoint", required_argument, NULL, OPT_ENDPOINT},
                {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
                {"mtu", required_argument, NULL, OPT_MTU},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl host set HOST [OPTIONS]\n"
                "\n"
                "Changes a host's settings (by id or name); its peers and the host itself are\n"
                "told at once. \"default\" puts a setting back to its default.\n"
                "\n"
                "  --name NAME          Its name (a DNS label: 1-63 of a-z, 0-9, '-'); DNS follows\n"
                "  --listen-port N      WireGuard port of its links: the first listens on N, the next ones\n"
                "                       on the ports after it (1-65535; default: each network's port)\n"
                "  --endpoint ADDRESS   The address its peers reach it at, whatever it reports (an IPv4 or\n"
                "                       IPv6 address; default: what it reports)\n"
                "  --keepalive S        Persistent keepalive of every pair it is in, both ways (0-3600,\n"
                "                       0 = off; default: each network's)\n"
                "  --mtu N              MTU of its links (1280-9000; default: each network's)\n";
        HostSetArgs a = {.listen_port = -1, .keepalive = -1, .mtu = -1};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = NULL, *path = NULL, *body = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, host_set_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("host set needs exactly one HOST (id or name)");
        if (!a.name && !a.endpoint && a.listen_port == -1 && a.keepalive == -1 && a.mtu == -1)
                return usage_error(
                        "host set needs at least one of --name, --listen-port, --endpoint, --keepalive, "
                        "--mtu");
        json_builder_begin_object(b);
        if (a.name)
                nm_json_add_string(b, "name", a.name);
        add_setting(b, "listen_port", a.listen_port);
        if (a.endpoint)
                nm_json_add_string(b, "endpoint", streq0(a.endpoint, "default") ? NULL : a.endpoint);
        add_setting(b, "keepalive", a.keepalive);
        add_setting(b, "mtu", a.mtu);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);

        k = resolve_host(c, argv[optind], &id);
        if (k != NMCTL_EXIT_OK)
                return k;
        path = g_strconcat("/hosts/", id, NULL);
        k = rest_call_show(c, "PUT", path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_host(o);
        return NMCTL_EXIT_OK;
}

static int host_delete(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl host delete HOST\n\nDeletes a host (by id or name): it is told, its "
                "nodes leave their networks\nand its broker account goes.\n";
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("host delete needs exactly one HOST (id or name)");
        k = resolve_host(c, argv[optind], &id);
        if (k != NMCTL_EXIT_OK)
                return k;
        path = g_strconcat("/hosts/", id, NULL);
        k = rest_call_show(c, "DELETE", path, NULL, NULL);
        if (k == NMCTL_EXIT_OK && !c->json)
                printf("Deleted host %s.\n", id);
        return k;
}

void print_node(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "ID", json_member_string(o, "id"));
        table_add_item_take(t, "Network", json_member_string(o, "network"));
        table_add_item_take(t, "Host", json_member_string(o, "host_name"));
        table_add_item_take(t, "Host ID", json_member_string(o, "host_id"));
        table_add_item_take(t, "IPv4", json_member_string(o, "ipv4"));
        table_add_item_take(t, "IPv6", json_member_string(o, "ipv6"));
        table_add_item_take(t, "Listen port", json_member_int(o, "listen_port"));
        table_add_item_take(t, "Connected", json_member_bool(o, "connected"));
        table_add_item_take(t, "Tags", json_member_strv(o, "tags"));
        table_add_item_take(t, "Roles", node_roles_text(o));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_print(t, stdout);
}

static int host_join(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl host join HOST NETWORK\n\nAdds a registered host (by id or name) to "
                "a network and shows its new node.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = NULL;
        g_autofree char *net = NULL;
        g_autofree char *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("host join needs HOST and NETWORK");
        k = resolve_host(c, argv[optind], &id);
        if (k != NMCTL_EXIT_OK)
                return k;
        net = path_escape(argv[optind + 1]);
        path = g_strconcat("/hosts/", id, "/networks/", net, NULL);
        k = rest_call_show(c, "POST", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_node(o);
        return NMCTL_EXIT_OK;
}

int cmd_host(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", host_list, "list", "List the hosts"},
                {"show", host_show, "show HOST", "Show a host and its nodes"},
                {"set", host_set, "set HOST [--mtu N ...]", "Change a host's settings"},
                {"delete", host_delete, "delete HOST", "Delete a host"},
                {"join", host_join, "join HOST NETWORK", "Add a host to a network"},
                {},
        };
        return dispatch_verbs(
                c, argc, argv, verbs,
                "nmctl host COMMAND: hosts (machines running netclientd); HOST is an id or a name");
}

/* ---- Nodes --------------------------------------------------------------------------------- */

static int node_option(int opt, const char *arg, void *userdata)
{
        const char **network = userdata;
        if (opt != OPT_NETWORK)
                return -1;
        *network = arg;
        return 0;
}

static int node_list(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "network", required_argument, NULL, OPT_NETWORK },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node list [--network NET]\n\nLists the nodes (hosts' memberships of "
                "networks), of one network with --network.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        g_autofree char *path = NULL;
        const char *network = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, node_option, &network, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("node list takes no arguments (filter with --network NET)");
        if (network) {
                g_autofree char *q = path_escape(network);
                path = g_strconcat("/nodes?network=", q, NULL);
        } else
                path = g_strdup("/nodes");
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("ID", "HOST", "NETWORK", "IPV4", "IPV6", "PORT", "CONNECTED", NULL);
        add_node_rows(t, a, true, true);
        if (table_rows(t) == 0)
                printf("No nodes.\n");
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int node_show_or_delete(Ctx *c, int argc, char *argv[], bool delete)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help_show[] = "nmctl node show ID\n\nShows a node.\n";
        static const char help_delete[] =
                "nmctl node delete ID\n\nRemoves a node: the host leaves that network.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, delete ? help_delete : help_show, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("node %s needs exactly one ID", delete ? "delete" : "show");
        id = path_escape(argv[optind]);
        path = g_strconcat("/nodes/", id, NULL);
        if (delete) {
                k = rest_call_show(c, "DELETE", path, NULL, NULL);
                if (k == NMCTL_EXIT_OK && !c->json)
                        printf("Deleted node %s.\n", argv[optind]);
                return k;
        }
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_node(o);
        return NMCTL_EXIT_OK;
}

static int node_show(Ctx *c, int argc, char *argv[])
{
        return node_show_or_delete(c, argc, argv, false);
}

static int node_delete(Ctx *c, int argc, char *argv[])
{
        return node_show_or_delete(c, argc, argv, true);
}

int cmd_node(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", node_list, "list [--network NET]", "List the nodes"},
                {"show", node_show, "show ID", "Show a node"},
                {"delete", node_delete, "delete ID", "Remove a host from a network"},
                {"tags", node_tags, "tags ID [TAG...]", "Set a node's tags (ACLs)"},
                {"egress", node_egress, "egress ID CIDR...|--remove", "Route ranges for the network"},
                {"internet-gateway", node_internet_gateway, "internet-gateway ID [--remove]",
                 "Offer the internet to the network"},
                {"use-internet-gateway", node_use_internet_gateway, "use-internet-gateway ID GW|--remove",
                 "Send internet traffic through a gateway"},
                {"ingress", node_ingress, "ingress ID [--remove [--force]]", "Take external clients"},
                {"relay", node_relay, "relay ID RELAYED-ID...|--remove", "Relay for other nodes"},
                {"failover", node_failover, "failover ID [--remove]", "Relay pairs that cannot connect"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs,
                              "nmctl node COMMAND: nodes (a host's membership of a network)");
}
