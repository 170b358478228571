/* nmctl network list|create|show|update|delete (docs/protocol.md §2.3, /networks). */
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum {
        OPT_IPV4 = OPT_FIRST_COMMAND_OPTION,
        OPT_IPV6,
        OPT_LISTEN_PORT,
        OPT_KEEPALIVE,
        OPT_MTU,
        OPT_DNS_DOMAIN,
        OPT_FORCE,
};

typedef struct NetworkArgs {
        const char *ipv4, *ipv6, *dns_domain;
        gint64 listen_port, keepalive, mtu; /* -1: not given */
        bool force;
} NetworkArgs;

#define NETWORK_SETTING_OPTIONS                                                                             \
        {"listen-port", required_argument, NULL, OPT_LISTEN_PORT},                                          \
                {"keepalive", required_argument, NULL, OPT_KEEPALIVE},                                      \
                {"mtu", required_argument, NULL, OPT_MTU},                                                  \
        {                                                                                                   \
                "dns-domain", required_argument, NULL, OPT_DNS_DOMAIN                                       \
        }

#define NETWORK_SETTING_HELP                                                                                \
        "  --listen-port N    Default WireGuard listen port of nodes, 1-65535 (default 51821)\n"            \
        "  --keepalive S      Persistent keepalive in seconds, 0-3600, 0 = off (default 20)\n"              \
        "  --mtu N            MTU of the WireGuard links, 1280-9000 (default 1420)\n"                       \
        "  --dns-domain NAME  DNS domain of the mesh names (default: the server's)\n"

static int network_option(int opt, const char *arg, void *userdata)
{
        NetworkArgs *a = userdata;
        guint64 v;

        switch (opt) {
        case OPT_IPV4:
                a->ipv4 = arg;
                return 0;
        case OPT_IPV6:
                a->ipv6 = arg;
                return 0;
        case OPT_DNS_DOMAIN:
                a->dns_domain = arg;
                return 0;
        case OPT_FORCE:
                a->force = true;
                return 0;
        case OPT_LISTEN_PORT:
                if (!parse_uint_option("--listen-port", arg, 1, 65535, &v))
                        return -1;
                a->listen_port = (gint64)v;
                return 0;
        case OPT_KEEPALIVE:
                if (!parse_uint_option("--keepalive", arg, 0, 3600, &v))
                        return -1;
                a->keepalive = (gint64)v;
                return 0;
        case OPT_MTU:
                if (!parse_uint_option("--mtu", arg, 1280, 9000, &v))
                        return -1;
                a->mtu = (gint64)v;
                return 0;
        default:
                return -1;
        }
}

static void add_settings(JsonBuilder *b, const NetworkArgs *a)
{
        if (a->listen_port >= 0)
                nm_json_add_int(b, "listen_port", a->listen_port);
        if (a->keepalive >= 0)
                nm_json_add_int(b, "keepalive", a->keepalive);
        if (a->mtu >= 0)
                nm_json_add_int(b, "mtu", a->mtu);
        if (a->dns_domain)
                nm_json_add_string(b, "dns_domain", a->dns_domain);
}

static void print_network(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();
        g_autofree char *keepalive = json_member_int(o, "keepalive");

        table_add_item_take(t, "Name", json_member_string(o, "name"));
        table_add_item_take(t, "IPv4 range", json_member_string(o, "ipv4_range"));
        table_add_item_take(t, "IPv6 range", json_member_string(o, "ipv6_range"));
        table_add_item_take(t, "Listen port", json_member_int(o, "listen_port"));
        table_add_item_take(t, "Keepalive", keepalive ? g_strdup_printf("%s s", keepalive) : NULL);
        table_add_item_take(t, "MTU", json_member_int(o, "mtu"));
        table_add_item_take(t, "DNS domain", json_member_string(o, "dns_domain"));
        table_add_item_take(t, "Nodes", json_member_int(o, "nodes"));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_print(t, stdout);
}

static int show_network_answer(Ctx *c, int k, JsonNode *answer)
{
        JsonObject *o;

        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_network(o);
        return NMCTL_EXIT_OK;
}

static int network_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl network list\n\nLists the networks.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("network list takes no arguments");
        k = rest_call_show(c, "GET", "/networks", NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("NAME", "IPV4", "IPV6", "PORT", "MTU", "KEEPALIVE", "DNS DOMAIN", "NODES", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "name"), json_member_string(o, "ipv4_range"),
                                   json_member_string(o, "ipv6_range"), json_member_int(o, "listen_port"),
                                   json_member_int(o, "mtu"), json_member_int(o, "keepalive"),
                                   json_member_string(o, "dns_domain"), json_member_int(o, "nodes"));
        }
        if (table_rows(t) == 0)
                printf("No networks.\n");
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int network_create(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "ipv4", required_argument, NULL, OPT_IPV4 },
                { "ipv6", required_argument, NULL, OPT_IPV6 },
                NETWORK_SETTING_OPTIONS,
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl network create NAME [--ipv4 CIDR] [--ipv6 CIDR] [OPTIONS]\n"
                "\n"
                "Creates a network. NAME: 1-32 characters of a-z, 0-9 and '-'. At least one\n"
                "range is needed.\n"
                "\n"
                "  --ipv4 CIDR        IPv4 range, prefix 8-30 (e.g. 10.99.0.0/24)\n"
                "  --ipv6 CIDR        IPv6 range, prefix 64-126 (e.g. fd00:99::/64)\n" NETWORK_SETTING_HELP;
        NetworkArgs a = {.listen_port = -1, .keepalive = -1, .mtu = -1};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, network_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error(
                        "network create needs exactly one NAME (see nmctl network create --help)");
        if (!a.ipv4 && !a.ipv6)
                return usage_error("network create needs --ipv4 CIDR and/or --ipv6 CIDR");

        json_builder_begin_object(b);
        nm_json_add_string(b, "name", argv[optind]);
        if (a.ipv4)
                nm_json_add_string(b, "ipv4_range", a.ipv4);
        if (a.ipv6)
                nm_json_add_string(b, "ipv6_range", a.ipv6);
        add_settings(b, &a);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        k = rest_call_show(c, "POST", "/networks", body, &answer);
        return show_network_answer(c, k, answer);
}

static int network_show(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl network show NAME\n\nShows one network.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *name = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("network show needs exactly one NAME");
        name = path_escape(argv[optind]);
        path = g_strconcat("/networks/", name, NULL);
        k = rest_call_show(c, "GET", path, NULL, &answer);
        return show_network_answer(c, k, answer);
}

static int network_update(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, NETWORK_SETTING_OPTIONS, {}};
        static const char help[] = "nmctl network update NAME [OPTIONS]\n"
                                   "\n"
                                   "Changes a network's settings; its hosts are told at once.\n"
                                   "\n" NETWORK_SETTING_HELP;
        NetworkArgs a = {.listen_port = -1, .keepalive = -1, .mtu = -1};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL;
        g_autofree char *name = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, network_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("network update needs exactly one NAME");
        if (a.listen_port < 0 && a.keepalive < 0 && a.mtu < 0 && !a.dns_domain)
                return usage_error("network update needs at least one of --listen-port, --keepalive, --mtu, "
                                   "--dns-domain");
        json_builder_begin_object(b);
        add_settings(b, &a);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        name = path_escape(argv[optind]);
        path = g_strconcat("/networks/", name, NULL);
        k = rest_call_show(c, "PUT", path, body, &answer);
        return show_network_answer(c, k, answer);
}

static int network_delete(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "force", no_argument, NULL, OPT_FORCE },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl network delete NAME [--force]\n"
                "\n"
                "Deletes a network. The server refuses while nodes are in it, unless --force:\n"
                "then the nodes leave it first.\n";
        NetworkArgs a = {};
        g_autofree char *name = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, network_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("network delete needs exactly one NAME");
        name = path_escape(argv[optind]);
        path = g_strconcat("/networks/", name, a.force ? "?force=true" : "", NULL);
        k = rest_call_show(c, "DELETE", path, NULL, NULL);
        if (k == NMCTL_EXIT_OK && !c->json)
                printf("Deleted network %s.\n", argv[optind]);
        return k;
}

int cmd_network(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", network_list, "list", "List the networks"},
                {"create", network_create, "create NAME --ipv4 CIDR ...", "Create a network"},
                {"show", network_show, "show NAME", "Show a network"},
                {"update", network_update, "update NAME [--mtu N ...]", "Change a network's settings"},
                {"delete", network_delete, "delete NAME [--force]", "Delete a network"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs,
                              "nmctl network COMMAND: networks (overlays with address ranges)");
}
