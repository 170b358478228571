/* nmctl's topology commands (docs/protocol.md §4): node tags|egress|internet-gateway|
 * use-internet-gateway|ingress|relay|failover, acl show|default|rule, and extclient list|create|show|
 * enable|disable|delete (create can write the configuration and its QR code to files). */
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "keys.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum {
        OPT_REMOVE = OPT_FIRST_COMMAND_OPTION,
        OPT_NO_NAT,
        OPT_FORCE,
        OPT_GATEWAY,
        OPT_DNS,
        OPT_EXTRA,
        OPT_DISABLED,
        OPT_CONF,
        OPT_QR,
        OPT_DENY,
        OPT_INTERNET,
};

typedef struct TopoArgs {
        bool remove;
        bool no_nat;
        bool force;
        bool disabled;
        bool internet;
        const char *gateway;
        const char *dns;
        GPtrArray *extra;
        GPtrArray *deny;
        const char *conf;
        const char *qr;
} TopoArgs;

static int topo_option(int opt, const char *arg, void *userdata)
{
        TopoArgs *a = userdata;

        switch (opt) {
        case OPT_REMOVE:
                a->remove = true;
                return 0;
        case OPT_NO_NAT:
                a->no_nat = true;
                return 0;
        case OPT_FORCE:
                a->force = true;
                return 0;
        case OPT_DISABLED:
                a->disabled = true;
                return 0;
        case OPT_INTERNET:
                a->internet = true;
                return 0;
        case OPT_GATEWAY:
                a->gateway = arg;
                return 0;
        case OPT_DNS:
                a->dns = arg;
                return 0;
        case OPT_EXTRA:
        case OPT_DENY: {
                g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
                for (char **p = parts; *p; p++)
                        if (*g_strstrip(*p))
                                g_ptr_array_add(opt == OPT_EXTRA ? a->extra : a->deny, g_strdup(*p));
                return 0;
        }
        case OPT_CONF:
                a->conf = arg;
                return 0;
        case OPT_QR:
                if (!g_str_has_suffix(arg, ".png") && !g_str_has_suffix(arg, ".svg")) {
                        g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 80));
                        usage_error("invalid --qr \"%s\": the file name must end in .png or .svg", shown);
                        return -1;
                }
                a->qr = arg;
                return 0;
        default:
                return -1;
        }
}

static void topo_args_clear(TopoArgs *a)
{
        g_clear_pointer(&a->extra, g_ptr_array_unref);
        g_clear_pointer(&a->deny, g_ptr_array_unref);
}

static char *json_text(JsonBuilder *b)
{
        return nm_json_builder_to_string(b);
}

/* {"<member>": [the strings of v]} as text. */
static char *strv_body(const char *member, char **v)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_strv(b, member, (const char *const *)v);
        json_builder_end_object(b);
        return json_text(b);
}

char *node_roles_text(JsonObject *o)
{
        JsonNode *n = o ? json_object_get_member(o, "roles") : NULL;
        JsonObject *r = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func(g_free);

        if (!r)
                return NULL;
        g_autofree char *egress = json_member_strv(r, "egress_ranges");
        g_autofree char *nat = json_member_bool(r, "egress_nat");
        g_autofree char *inet = json_member_bool(r, "internet_gateway");
        g_autofree char *ingress = json_member_bool(r, "ingress");
        g_autofree char *relay = json_member_bool(r, "relay");
        g_autofree char *relayed_by = json_member_string(r, "relayed_by");
        g_autofree char *via = json_member_string(r, "internet_gateway_via");
        g_autofree char *failover = json_member_bool(r, "failover");
        if (egress)
                g_ptr_array_add(parts,
                                g_strdup_printf("egress %s%s", egress, streq0(nat, "yes") ? " (NAT)" : ""));
        if (streq0(inet, "yes"))
                g_ptr_array_add(parts, g_strdup("internet gateway"));
        if (streq0(ingress, "yes"))
                g_ptr_array_add(parts, g_strdup("ingress gateway"));
        if (streq0(relay, "yes"))
                g_ptr_array_add(parts, g_strdup("relay"));
        if (relayed_by)
                g_ptr_array_add(parts, g_strdup_printf("relayed by %s", relayed_by));
        if (streq0(failover, "yes"))
                g_ptr_array_add(parts, g_strdup("failover relay"));
        if (via)
                g_ptr_array_add(parts, g_strdup_printf("uses internet gateway %s", via));
        if (parts->len == 0)
                return NULL;
        g_ptr_array_add(parts, NULL);
        return g_strjoinv("; ", (char **)parts->pdata);
}

/* PUT or DELETE /nodes/ID/<what> with an optional body; prints the node. */
static int node_call(Ctx *c, const char *method, const char *id, const char *what, const char *query,
                     const char *body)
{
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *eid = path_escape(id);
        g_autofree char *path = g_strconcat("/nodes/", eid, "/", what, query ?: "", NULL);
        int k = rest_call_show(c, method, path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        JsonObject *o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_node(o);
        return NMCTL_EXIT_OK;
}

/* ---- node verbs ----------------------------------------------------------------------------- */

int node_tags(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl node tags ID [TAG...]\n\nSets a node's tags (ACL selectors \"tag:TAG\"); "
                "no TAG clears them.\n";
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind < 1)
                return usage_error("node tags needs a node ID (and the tags)");
        g_autofree char *body = strv_body("tags", argv + optind + 1);
        return node_call(c, "PUT", argv[optind], "tags", NULL, body);
}

int node_egress(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"no-nat", no_argument, NULL, OPT_NO_NAT},
                {"remove", no_argument, NULL, OPT_REMOVE},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node egress ID CIDR... [--no-nat]\n"
                "nmctl node egress ID --remove\n"
                "\n"
                "Makes a node an egress gateway: the other nodes route CIDR... through it (masqueraded\n"
                "unless --no-nat). --remove takes the role away.\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (a.remove) {
                if (argc - optind != 1)
                        return usage_error("node egress --remove needs exactly one node ID");
                return node_call(c, "DELETE", argv[optind], "egress", NULL, NULL);
        }
        if (argc - optind < 2)
                return usage_error("node egress needs a node ID and at least one CIDR (or --remove)");
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_strv(b, "ranges", (const char *const *)argv + optind + 1);
        nm_json_add_bool(b, "nat", !a.no_nat);
        json_builder_end_object(b);
        g_autofree char *body = json_text(b);
        return node_call(c, "PUT", argv[optind], "egress", NULL, body);
}

int node_internet_gateway(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"remove", no_argument, NULL, OPT_REMOVE},
                {},
        };
        /* clang-format on */
        static const char help[] = "nmctl node internet-gateway ID [--remove]\n\nMakes a node an internet "
                                   "gateway (nodes may then send all their traffic\nthrough it), or with "
                                   "--remove takes the role away (its users are switched off it).\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("node internet-gateway needs exactly one node ID");
        return node_call(c, a.remove ? "DELETE" : "PUT", argv[optind], "internet-gateway", NULL, NULL);
}

int node_failover(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"remove", no_argument, NULL, OPT_REMOVE},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node failover ID [--remove]\n\nLets a node relay pairs of nodes that "
                "cannot connect directly (the server\npicks it when both have a session with "
                "it), or with --remove no longer\n(the pairs it relays connect directly "
                "again).\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("node failover needs exactly one node ID");
        return node_call(c, a.remove ? "DELETE" : "PUT", argv[optind], "failover", NULL, NULL);
}

int node_use_internet_gateway(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"remove", no_argument, NULL, OPT_REMOVE},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node use-internet-gateway ID GATEWAY-ID\n"
                "nmctl node use-internet-gateway ID --remove\n"
                "\n"
                "Sends a node's internet traffic through an internet gateway of its network\n"
                "(or, with --remove, no longer).\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (a.remove) {
                if (argc - optind != 1)
                        return usage_error("node use-internet-gateway --remove needs exactly one node ID");
                return node_call(c, "DELETE", argv[optind], "use-internet-gateway", NULL, NULL);
        }
        if (argc - optind != 2)
                return usage_error("node use-internet-gateway needs a node ID and the gateway's node ID");
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        nm_json_add_string(b, "gateway", argv[optind + 1]);
        json_builder_end_object(b);
        g_autofree char *body = json_text(b);
        return node_call(c, "PUT", argv[optind], "use-internet-gateway", NULL, body);
}

int node_ingress(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"remove", no_argument, NULL, OPT_REMOVE},
                {"force", no_argument, NULL, OPT_FORCE},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node ingress ID [--remove [--force]]\n\nLets external clients attach "
                "to a node, or with --remove no longer (refused\nwhile it has external "
                "clients, unless --force deletes them).\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("node ingress needs exactly one node ID");
        if (a.force && !a.remove)
                return usage_error("--force goes with --remove");
        return node_call(c, a.remove ? "DELETE" : "PUT", argv[optind], "ingress",
                         a.force ? "?force=true" : NULL, NULL);
}

int node_relay(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"remove", no_argument, NULL, OPT_REMOVE},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl node relay ID RELAYED-ID...\n"
                "nmctl node relay ID --remove\n"
                "\n"
                "Makes a node the relay of exactly the nodes RELAYED-ID... (their only peer),\n"
                "or with --remove relays nothing.\n";
        _cleanup_(topo_args_clear) TopoArgs a = {};
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (a.remove) {
                if (argc - optind != 1)
                        return usage_error("node relay --remove needs exactly one node ID");
                return node_call(c, "DELETE", argv[optind], "relay", NULL, NULL);
        }
        if (argc - optind < 2)
                return usage_error("node relay needs the relay's node ID and at least one relayed node ID");
        g_autofree char *body = strv_body("relayed", argv + optind + 1);
        return node_call(c, "PUT", argv[optind], "relay", NULL, body);
}

/* ---- acl ------------------------------------------------------------------------------------ */

static char *acl_path(const char *network, const char *rest)
{
        g_autofree char *net = path_escape(network);
        return g_strconcat("/networks/", net, "/acl", rest ?: "", NULL);
}

static void print_acl(JsonObject *o)
{
        g_autofree char *net = json_member_string(o, "network");
        g_autofree char *def = json_member_string(o, "default");
        JsonNode *n = json_object_get_member(o, "rules");
        JsonArray *rules = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;

        printf("Network: %s\nDefault: %s\n", strna(net), strna(def));
        if (!rules || json_array_get_length(rules) == 0) {
                printf("No rules.\n");
                return;
        }
        putchar('\n');
        g_autoptr(Table) t = table_new("ID", "SOURCE", "DESTINATION", "ACTION", NULL);
        for (guint i = 0; i < json_array_get_length(rules); i++) {
                JsonNode *e = json_array_get_element(rules, i);
                JsonObject *r = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(r, "id"), json_member_string(r, "source"),
                                   json_member_string(r, "destination"), json_member_string(r, "action"));
        }
        table_print(t, stdout);
}

static int acl_show_or_default(Ctx *c, int argc, char *argv[], bool set)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help_show[] =
                "nmctl acl show NETWORK\n\nShows a network's ACL: its default and rules.\n";
        static const char help_default[] =
                "nmctl acl default NETWORK allow|deny\n\nSets what happens to pairs of "
                "nodes no rule matches.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, set ? help_default : help_show, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != (set ? 2 : 1))
                return set ? usage_error("acl default needs NETWORK and allow or deny")
                           : usage_error("acl show needs exactly one NETWORK");
        if (set) {
                if (!streq0(argv[optind + 1], "allow") && !streq0(argv[optind + 1], "deny")) {
                        g_autofree char *shown =
                                g_utf8_make_valid(argv[optind + 1], MIN(strlen(argv[optind + 1]), 40));
                        return usage_error("invalid default \"%s\": expected allow or deny", shown);
                }
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_object(b);
                nm_json_add_string(b, "default", argv[optind + 1]);
                json_builder_end_object(b);
                body = json_text(b);
        }
        g_autofree char *path = acl_path(argv[optind], NULL);
        k = rest_call_show(c, set ? "PUT" : "GET", path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        JsonObject *o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_acl(o);
        return NMCTL_EXIT_OK;
}

static int acl_show(Ctx *c, int argc, char *argv[])
{
        return acl_show_or_default(c, argc, argv, false);
}

static int acl_default(Ctx *c, int argc, char *argv[])
{
        return acl_show_or_default(c, argc, argv, true);
}

static int acl_rule_add(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl acl rule add NETWORK SOURCE DESTINATION allow|deny\n"
                "\n"
                "Adds a rule. SOURCE and DESTINATION are \"*\", \"node:NODE-ID\" or \"tag:TAG\"; rules are\n"
                "symmetric, a matching deny wins over a matching allow, then the default decides.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 4)
                return usage_error("acl rule add needs NETWORK SOURCE DESTINATION and allow or deny");
        json_builder_begin_object(b);
        nm_json_add_string(b, "source", argv[optind + 1]);
        nm_json_add_string(b, "destination", argv[optind + 2]);
        nm_json_add_string(b, "action", argv[optind + 3]);
        json_builder_end_object(b);
        g_autofree char *body = json_text(b);
        g_autofree char *path = acl_path(argv[optind], "/rules");
        k = rest_call_show(c, "POST", path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        JsonObject *o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "ID", json_member_string(o, "id"));
        table_add_item_take(t, "Source", json_member_string(o, "source"));
        table_add_item_take(t, "Destination", json_member_string(o, "destination"));
        table_add_item_take(t, "Action", json_member_string(o, "action"));
        table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int acl_rule_delete(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl acl rule delete NETWORK RULE-ID\n\nDeletes a rule.\n";
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("acl rule delete needs NETWORK and RULE-ID");
        g_autofree char *id = path_escape(argv[optind + 1]);
        g_autofree char *rest = g_strconcat("/rules/", id, NULL);
        g_autofree char *path = acl_path(argv[optind], rest);
        k = rest_call_show(c, "DELETE", path, NULL, NULL);
        if (k == NMCTL_EXIT_OK && !c->json)
                printf("Deleted rule %s.\n", argv[optind + 1]);
        return k;
}

static int acl_rule(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"add", acl_rule_add, "add NETWORK SOURCE DESTINATION allow|deny", "Add a rule"},
                {"delete", acl_rule_delete, "delete NETWORK RULE-ID", "Delete a rule"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs, "nmctl acl rule COMMAND: a network's ACL rules");
}

int cmd_acl(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"show", acl_show, "show NETWORK", "Show the default and the rules"},
                {"default", acl_default, "default NETWORK allow|deny", "Set the default"},
                {"rule", acl_rule, "rule add|delete ...", "Add or delete a rule"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs, "nmctl acl COMMAND: which nodes of a network may peer");
}

/* ---- external clients ----------------------------------------------------------------------- */

static void print_ext_client(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "ID", json_member_string(o, "id"));
        table_add_item_take(t, "Name", json_member_string(o, "name"));
        table_add_item_take(t, "Network", json_member_string(o, "network"));
        table_add_item_take(t, "Gateway", json_member_string(o, "gateway"));
        table_add_item_take(t, "IPv4", json_member_string(o, "ipv4"));
        table_add_item_take(t, "IPv6", json_member_string(o, "ipv6"));
        table_add_item_take(t, "Public key", json_member_string(o, "public_key"));
        table_add_item_take(t, "Enabled", json_member_bool(o, "enabled"));
        table_add_item_take(t, "DNS", json_member_string(o, "dns"));
        table_add_item_take(t, "Extra allowed IPs", json_member_strv(o, "extra_allowed_ips"));
        table_add_item_take(t, "Denied nodes", json_member_strv(o, "denied_nodes"));
        table_add_item_take(t, "Internet gateway", json_member_bool(o, "internet_gateway"));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_print(t, stdout);
}

static int extclient_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl extclient list NETWORK\n\nLists a network's external clients.\n";
        g_autoptr(JsonNode) answer = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("extclient list needs exactly one NETWORK");
        g_autofree char *net = path_escape(argv[optind]);
        g_autofree char *path = g_strconcat("/networks/", net, "/ext-clients", NULL);
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        JsonArray *a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        g_autoptr(Table) t = table_new("ID", "NAME", "GATEWAY", "IPV4", "IPV6", "ENABLED", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "id"), json_member_string(o, "name"),
                                   json_member_string(o, "gateway"), json_member_string(o, "ipv4"),
                                   json_member_string(o, "ipv6"), json_member_bool(o, "enabled"));
        }
        if (table_rows(t) == 0)
                printf("No external clients in network %s.\n", argv[optind]);
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

/* Writes a secret file 0600, replacing it atomically. */
static bool write_secret(const char *path, const void *data, size_t len)
{
        g_autoptr(GError) e = NULL;
        if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &e)) {
                fprintf(stderr, "Error: cannot write %s: %s\n", path, e->message);
                return false;
        }
        return true;
}

static int extclient_create(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                {"gateway", required_argument, NULL, OPT_GATEWAY},
                {"dns", required_argument, NULL, OPT_DNS},
                {"extra-allowed-ips", required_argument, NULL, OPT_EXTRA},
                {"disabled", no_argument, NULL, OPT_DISABLED},
                {"deny", required_argument, NULL, OPT_DENY},
                {"internet-gateway", no_argument, NULL, OPT_INTERNET},
                {"conf", required_argument, NULL, OPT_CONF},
                {"qr", required_argument, NULL, OPT_QR},
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl extclient create NETWORK NAME --gateway NODE-ID [--dns IP[,IP...]]\n"
                "        [--extra-allowed-ips CIDR[,CIDR...]] [--deny NODE-ID[,NODE-ID...]] [--disabled]\n"
                "        [--internet-gateway] [--conf FILE] [--qr FILE.png|FILE.svg]\n"
                "\n"
                "Creates an external client (a plain WireGuard peer such as a phone) attached to an\n"
                "ingress gateway. Its private key exists only in this answer: --conf writes the\n"
                "configuration file, --qr its QR code (both 0600); without --conf the configuration\n"
                "is printed. --deny names nodes of the network the client may not reach.\n"
                "--internet-gateway: full tunnel (AllowedIPs = 0.0.0.0/0, ::/0); the gateway must also\n"
                "be an internet gateway, and forwards the client's traffic to the internet.\n";
        _cleanup_(topo_args_clear) TopoArgs a = {.extra = g_ptr_array_new_with_free_func(g_free),
                                                 .deny = g_ptr_array_new_with_free_func(g_free)};
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int k;

        if (parse_verb_options(c, argc, argv, options, help, topo_option, &a, &k) < 0)
                return k;
        if (argc - optind != 2)
                return usage_error("extclient create needs NETWORK and NAME");
        if (!a.gateway)
                return usage_error(
                        "extclient create needs --gateway NODE-ID (a node with the ingress role)");
        json_builder_begin_object(b);
        nm_json_add_string(b, "name", argv[optind + 1]);
        nm_json_add_string(b, "gateway", a.gateway);
        if (a.dns)
                nm_json_add_string(b, "dns", a.dns);
        if (a.extra->len > 0) {
                g_ptr_array_add(a.extra, NULL);
                nm_json_add_strv(b, "extra_allowed_ips", (const char *const *)a.extra->pdata);
        }
        if (a.deny->len > 0) {
                g_ptr_array_add(a.deny, NULL);
                nm_json_add_strv(b, "denied_nodes", (const char *const *)a.deny->pdata);
        }
        if (a.disabled)
                nm_json_add_bool(b, "enabled", false);
        if (a.internet)
                nm_json_add_bool(b, "internet_gateway", true);
        json_builder_end_object(b);
        g_autofree char *body = json_text(b);
        g_autofree char *net = path_escape(argv[optind]);
        g_autofree char *path = g_strconcat("/networks/", net, "/ext-clients", NULL);
        k = rest_call_show(c, "POST", path, body, &answer);
        if (k != NMCTL_EXIT_OK)
                return k;
        JsonObject *o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        _cleanup_secret_ char *config = json_member_string(o, "config");
        if (!config) {
                fprintf(stderr, "Error: the answer has no configuration.\n");
                return NMCTL_EXIT_REFUSED;
        }
        if (a.conf && !write_secret(a.conf, config, strlen(config)))
                return NMCTL_EXIT_USAGE;
        if (a.qr) {
                bool png = g_str_has_suffix(a.qr, ".png");
                _cleanup_secret_ char *qr = json_member_string(o, png ? "qr_png" : "qr_svg");
                g_autofree guint8 *raw = NULL;
                gsize len = 0;
                if (!qr) {
                        fprintf(stderr, "Error: the answer has no QR code.\n");
                        return NMCTL_EXIT_REFUSED;
                }
                if (png)
                        raw = g_base64_decode(qr, &len);
                if (!write_secret(a.qr, png ? (const char *)raw : qr, png ? len : strlen(qr)))
                        return NMCTL_EXIT_USAGE;
                if (raw)
                        explicit_bzero(raw, len);
        }
        if (c->json)
                return NMCTL_EXIT_OK;
        print_ext_client(o);
        if (a.conf)
                printf("\nWrote the configuration (with the only copy of the private key) to %s.\n", a.conf);
        if (a.qr)
                printf("Wrote its QR code to %s.\n", a.qr);
        if (!a.conf)
                printf("\nConfiguration (the only copy of the private key; keep it secret):\n\n%s", config);
        return NMCTL_EXIT_OK;
}

/* GET or PUT /ext-clients/ID, then the client as the server has it now. */
static int client_call(Ctx *c, const char *method, const char *client_id, const char *body)
{
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = path_escape(client_id);
        g_autofree char *path = g_strconcat("/ext-clients/", id, NULL);
        int k = rest_call_show(c, method, path, body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        JsonObject *o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_ext_client(o);
        return NMCTL_EXIT_OK;
}

static int extclient_one(Ctx *c, int argc, char *argv[], const char *verb)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        g_autofree char *help =
                g_strdup_printf("nmctl extclient %s ID\n\n%s\n", verb,
                                streq0(verb, "show")     ? "Shows an external client."
                                : streq0(verb, "delete") ? "Deletes an external client."
                                : streq0(verb, "enable") ? "Lets a disabled external client in again."
                                                         : "Keeps an external client out (its "
                                                           "gateway drops it) until enabled.");
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("extclient %s needs exactly one ID", verb);
        if (streq0(verb, "delete")) {
                g_autofree char *id = path_escape(argv[optind]);
                g_autofree char *path = g_strconcat("/ext-clients/", id, NULL);
                k = rest_call_show(c, "DELETE", path, NULL, NULL);
                if (k == NMCTL_EXIT_OK && !c->json)
                        printf("Deleted external client %s.\n", argv[optind]);
                return k;
        }
        if (streq0(verb, "show"))
                return client_call(c, "GET", argv[optind], NULL);
        return client_call(c, "PUT", argv[optind],
                           streq0(verb, "enable") ? "{\"enabled\":true}" : "{\"enabled\":false}");
}

static int extclient_show(Ctx *c, int argc, char *argv[])
{
        return extclient_one(c, argc, argv, "show");
}

static int extclient_enable(Ctx *c, int argc, char *argv[])
{
        return extclient_one(c, argc, argv, "enable");
}

static int extclient_disable(Ctx *c, int argc, char *argv[])
{
        return extclient_one(c, argc, argv, "disable");
}

static int extclient_delete(Ctx *c, int argc, char *argv[])
{
        return extclient_one(c, argc, argv, "delete");
}

static int extclient_deny(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl extclient deny ID [NODE-ID...]\n"
                "\n"
                "Sets the nodes of its network an external client may not reach (replacing the\n"
                "list); without NODE-ID it may reach every node again. The nodes stop routing the\n"
                "client's addresses: what its gateway forwards from it to them is dropped.\n";
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind < 1)
                return usage_error("extclient deny needs the client's ID (and the NODE-IDs to deny)");
        g_autofree char *body = strv_body("denied_nodes", argv + optind + 1);
        return client_call(c, "PUT", argv[optind], body);
}

int cmd_extclient(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", extclient_list, "list NETWORK", "List a network's external clients"},
                {"create", extclient_create, "create NETWORK NAME --gateway NODE-ID ...",
                 "Create one (prints or writes its configuration)"},
                {"show", extclient_show, "show ID", "Show one"},
                {"enable", extclient_enable, "enable ID", "Let it in again"},
                {"disable", extclient_disable, "disable ID", "Keep it out"},
                {"deny", extclient_deny, "deny ID [NODE-ID...]", "Set the nodes it may not reach"},
                {"delete", extclient_delete, "delete ID", "Delete it"},
                {},
        };
        return dispatch_verbs(
                c, argc, argv, verbs,
                "nmctl extclient COMMAND: external clients (plain WireGuard peers behind an ingress "
                "gateway)");
}
