/* nmctl dns list|add|delete|export (docs/protocol.md §5, /networks/{net}/dns) and nmctl nameserver
 * list|add|set|delete (§5.1, /networks/{net}/nameservers: split DNS). */
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
        OPT_OUTPUT,
};

typedef struct DnsArgs {
        const char *ipv4, *ipv6, *output;
} DnsArgs;

static int dns_option(int opt, const char *arg, void *userdata)
{
        DnsArgs *a = userdata;

        switch (opt) {
        case OPT_IPV4:
                a->ipv4 = arg;
                return 0;
        case OPT_IPV6:
                a->ipv6 = arg;
                return 0;
        case OPT_OUTPUT:
                a->output = arg;
                return 0;
        default:
                return -1;
        }
}

static char *dns_path(const char *network, const char *name)
{
        g_autofree char *net = path_escape(network);
        g_autofree char *n = name ? path_escape(name) : NULL;
        return g_strconcat("/networks/", net, "/dns", n ? "/" : "", n ? n : "", NULL);
}

static int dns_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl dns list NETWORK\n"
                "\n"
                "Lists a network's DNS names: the automatic names of its nodes and the custom\n"
                "names added with nmctl dns add.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        g_autofree char *path = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("dns list needs exactly one NETWORK");
        path = dns_path(argv[optind], NULL);
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("NAME", "IPV4", "IPV6", "KIND", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                g_autofree char *automatic = json_member_bool(o, "automatic");
                table_add_row_take(t, json_member_string(o, "fqdn"), json_member_string(o, "ipv4"),
                                   json_member_string(o, "ipv6"),
                                   g_strdup(streq0(automatic, "yes") ? "node" : "custom"));
        }
        if (table_rows(t) == 0)
                printf("No DNS names in network %s.\n", argv[optind]);
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int dns_add(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"ipv4", required_argument, NULL, OPT_IPV4},
                {"ipv6", required_argument, NULL, OPT_IPV6},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl dns add NETWORK NAME [--ipv4 ADDRESS] [--ipv6 ADDRESS]\n"
                "\n"
                "Adds the custom name NAME.NETWORK.<dns domain>; every node of the network\n"
                "answers for it at once. NAME: dot-separated labels of a-z, 0-9 and '-', not\n"
                "the name of a node. At least one address is needed; it may lie outside the\n"
                "network (e.g. a printer behind an egress gateway).\n"
                "\n"
                "  --ipv4 ADDRESS     IPv4 address of the name\n"
                "  --ipv6 ADDRESS     IPv6 address of the name\n";
        DnsArgs a = {};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL, *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, dns_option, &a, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("dns add needs a NETWORK and a NAME (see nmctl dns add --help)");
        if (!a.ipv4 && !a.ipv6)
                return usage_error("dns add needs --ipv4 ADDRESS and/or --ipv6 ADDRESS");
        json_builder_begin_object(b);
        nm_json_add_string(b, "name", argv[optind + 1]);
        if (a.ipv4)
                nm_json_add_string(b, "ipv4", a.ipv4);
        if (a.ipv6)
                nm_json_add_string(b, "ipv6", a.ipv6);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        path = dns_path(argv[optind], NULL);
        k = rest_call_show(c, "POST", path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "Name", json_member_string(o, "fqdn"));
        table_add_item_take(t, "IPv4", json_member_string(o, "ipv4"));
        table_add_item_take(t, "IPv6", json_member_string(o, "ipv6"));
        table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int dns_delete(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl dns delete NETWORK NAME\n"
                "\n"
                "Deletes a custom name (a node's automatic name goes when the node leaves).\n";
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("dns delete needs a NETWORK and a NAME");
        path = dns_path(argv[optind], argv[optind + 1]);
        k = rest_call_show(c, "DELETE", path, NULL, NULL);
        if (k == NMCTL_EXIT_OK && !c->json)
                printf("Deleted DNS name %s of network %s.\n", argv[optind + 1], argv[optind]);
        return k;
}

static int dns_export(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"output", required_argument, NULL, OPT_OUTPUT},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl dns export NETWORK [--output FILE]\n"
                "\n"
                "Prints a network's DNS names in hosts(5) format, one \"ADDRESS NAME\" line per\n"
                "address, for resolvers outside the mesh (dnsmasq --addn-hosts=FILE, CoreDNS's\n"
                "hosts plugin).\n"
                "\n"
                "  --output FILE      Write FILE (replaced in one step) instead of printing\n";
        DnsArgs a = {};
        g_autofree char *path = NULL, *hosts = NULL, *net = NULL;
        g_autoptr(GError) e = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, dns_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("dns export needs exactly one NETWORK");
        net = path_escape(argv[optind]);
        path = g_strconcat("/networks/", net, "/dns/hosts", NULL);
        k = rest_call(c, "GET", path, NULL, NULL, &hosts);
        if (k != NMCTL_EXIT_OK)
                return k;
        if (!a.output) {
                fputs(hosts, stdout);
                return NMCTL_EXIT_OK;
        }
        if (!g_file_set_contents(a.output, hosts, -1, &e)) {
                fprintf(stderr, "Error: cannot write %s: %s\n", a.output, e->message);
                return NMCTL_EXIT_USAGE;
        }
        return NMCTL_EXIT_OK;
}

int cmd_dns(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", dns_list, "list NETWORK", "List a network's DNS names"},
                {"add", dns_add, "add NETWORK NAME --ipv4 A", "Add a custom DNS name"},
                {"delete", dns_delete, "delete NETWORK NAME", "Delete a custom DNS name"},
                {"export", dns_export, "export NETWORK", "Print the names in hosts(5) format"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs, "nmctl dns COMMAND: a network's DNS names");
}

/* ---- nameservers ---------------------------------------------------------------------------- */

static char *nameserver_path(const char *network, const char *domain)
{
        g_autofree char *net = path_escape(network);
        g_autofree char *d = domain ? path_escape(domain) : NULL;
        return g_strconcat("/networks/", net, "/nameservers", d ? "/" : "", d ? d : "", NULL);
}

static int nameserver_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl nameserver list NETWORK\n"
                                   "\n"
                                   "Lists a network's nameservers: which servers resolve the names under\n"
                                   "each domain on the network's hosts.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        g_autofree char *path = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("nameserver list needs exactly one NETWORK");
        path = nameserver_path(argv[optind], NULL);
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("DOMAIN", "SERVERS", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "domain"), json_member_strv(o, "servers"));
        }
        if (table_rows(t) == 0)
                printf("No nameservers in network %s.\n", argv[optind]);
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

/* add NETWORK DOMAIN SERVER... (POST) or set NETWORK DOMAIN SERVER... (PUT). */
static int nameserver_write(Ctx *c, int argc, char *argv[], bool add)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help_add[] =
                "nmctl nameserver add NETWORK DOMAIN SERVER...\n"
                "\n"
                "Sends the names under DOMAIN (e.g. corp.example) to the SERVERs (IP addresses,\n"
                "asked on port 53, in order) on every host of the network: each host registers\n"
                "~DOMAIN with systemd-resolved on the network's link and forwards those names.\n";
        static const char help_set[] = "nmctl nameserver set NETWORK DOMAIN SERVER...\n"
                                       "\n"
                                       "Replaces the servers of a nameserver.\n";
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL, *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, add ? help_add : help_set, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind < 3)
                return usage_error("nameserver %s needs a NETWORK, a DOMAIN and at least one SERVER",
                                   add ? "add" : "set");
        json_builder_begin_object(b);
        if (add)
                nm_json_add_string(b, "domain", argv[optind + 1]);
        nm_json_add_strv(b, "servers", (const char *const *)argv + optind + 2);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        path = nameserver_path(argv[optind], add ? NULL : argv[optind + 1]);
        k = rest_call_show(c, add ? "POST" : "PUT", path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "Domain", json_member_string(o, "domain"));
        table_add_item_take(t, "Servers", json_member_strv(o, "servers"));
        table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int nameserver_add(Ctx *c, int argc, char *argv[])
{
        return nameserver_write(c, argc, argv, true);
}

static int nameserver_set(Ctx *c, int argc, char *argv[])
{
        return nameserver_write(c, argc, argv, false);
}

static int nameserver_delete(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl nameserver delete NETWORK DOMAIN\n"
                "\n"
                "Deletes a nameserver: its names go to the hosts' usual resolvers again.\n";
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("nameserver delete needs a NETWORK and a DOMAIN");
        path = nameserver_path(argv[optind], argv[optind + 1]);
        k = rest_call_show(c, "DELETE", path, NULL, NULL);
        if (k == NMCTL_EXIT_OK && !c->json)
                printf("Deleted nameserver %s of network %s.\n", argv[optind + 1], argv[optind]);
        return k;
}

int cmd_nameserver(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", nameserver_list, "list NETWORK", "List a network's nameservers"},
                {"add", nameserver_add, "add NETWORK DOMAIN SERVER...", "Resolve DOMAIN with SERVERs"},
                {"set", nameserver_set, "set NETWORK DOMAIN SERVER...", "Change a nameserver's servers"},
                {"delete", nameserver_delete, "delete NETWORK DOMAIN", "Delete a nameserver"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs,
                              "nmctl nameserver COMMAND: a network's split DNS (domain -> servers)");
}
