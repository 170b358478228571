/* nmctl key list|create|show|delete: enrollment keys (docs/protocol.md §2.3, /enrollment-keys). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json-util.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum {
        OPT_NAME = OPT_FIRST_COMMAND_OPTION,
        OPT_NETWORK,
        OPT_USES,
        OPT_UNLIMITED,
        OPT_EXPIRES,
        OPT_TAG,
};

typedef struct KeyArgs {
        const char *name;
        GPtrArray *networks;
        GPtrArray *tags;
        gint64 uses; /* 0: not given */
        bool unlimited;
        gint64 expires_at;
} KeyArgs;

/* "+30d", "+12h", "+90m", "+3600s" / "+3600", a Unix time, or "YYYY-MM-DD[THH:MM[:SS]]" (local). */
static bool parse_expiry(const char *s, gint64 now, gint64 *ret)
{
        guint64 v;

        if (s[0] == '+') {
                g_autofree char *num = g_strdup(s + 1);
                size_t n = strlen(num);
                guint64 unit = 1;
                if (n == 0)
                        return false;
                switch (num[n - 1]) {
                case 'd':
                        unit = 86400;
                        break;
                case 'h':
                        unit = 3600;
                        break;
                case 'm':
                        unit = 60;
                        break;
                case 's':
                        break;
                default:
                        unit = 0;
                }
                if (unit)
                        num[n - 1] = 0;
                else
                        unit = 1;
                if (!g_ascii_string_to_unsigned(num, 10, 1, G_MAXINT32, &v, NULL))
                        return false;
                *ret = now + (gint64)(v * unit);
                return true;
        }
        if (g_ascii_string_to_unsigned(s, 10, 1, G_MAXINT64 / 2, &v, NULL)) {
                *ret = (gint64)v;
                return true;
        }
        int year, mon, day, hour = 0, min = 0, sec = 0;
        char tail = 0;
        if (sscanf(s, "%4d-%2d-%2d%c", &year, &mon, &day, &tail) == 3 ||
            (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d%c", &year, &mon, &day, &hour, &min, &tail) == 5) ||
            (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d%c", &year, &mon, &day, &hour, &min, &sec, &tail) ==
             6)) {
                g_autoptr(GTimeZone) tz = g_time_zone_new_local();
                g_autoptr(GDateTime) d = g_date_time_new(tz, year, mon, day, hour, min, sec);
                if (!d)
                        return false;
                *ret = g_date_time_to_unix(d);
                return true;
        }
        return false;
}

static void split_into(GPtrArray *into, const char *arg)
{
        g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
        for (char **p = parts; *p; p++) {
                g_strstrip(*p);
                if (**p)
                        g_ptr_array_add(into, g_strdup(*p));
        }
}

static int key_option(int opt, const char *arg, void *userdata)
{
        KeyArgs *a = userdata;
        guint64 v;

        switch (opt) {
        case OPT_NAME:
                a->name = arg;
                return 0;
        case OPT_NETWORK:
                split_into(a->networks, arg);
                return 0;
        case OPT_TAG:
                split_into(a->tags, arg);
                return 0;
        case OPT_UNLIMITED:
                a->unlimited = true;
                return 0;
        case OPT_USES:
                if (!parse_uint_option("--uses", arg, 1, 1000000000, &v))
                        return -1;
                a->uses = (gint64)v;
                return 0;
        case OPT_EXPIRES:
                if (!parse_expiry(arg, (gint64)time(NULL), &a->expires_at)) {
                        g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 40));
                        usage_error("invalid --expires \"%s\": expected +30d, +12h, +90m, a Unix time or "
                                    "YYYY-MM-DD[THH:MM[:SS]]",
                                    shown);
                        return -1;
                }
                return 0;
        default:
                return -1;
        }
}

static char *uses_text(JsonObject *o)
{
        JsonNode *n = o ? json_object_get_member(o, "unlimited") : NULL;
        if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
            json_node_get_boolean(n))
                return g_strdup("unlimited");
        return json_member_int(o, "uses_remaining");
}

static void print_key(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();

        table_add_item_take(t, "ID", json_member_string(o, "id"));
        table_add_item_take(t, "Name", json_member_string(o, "name"));
        table_add_item_take(t, "Networks", json_member_strv(o, "networks"));
        table_add_item_take(t, "Uses left", uses_text(o));
        table_add_item_take(t, "Expires", json_member_time(o, "expires_at", "never"));
        table_add_item_take(t, "Tags", json_member_strv(o, "tags"));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_add_item_take(t, "Token", json_member_string(o, "token"));
        table_print(t, stdout);
}

static int key_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] =
                "nmctl key list\n\nLists the enrollment keys (key show prints a key's token).\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("key list takes no arguments");
        k = rest_call_show(c, "GET", "/enrollment-keys", NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("ID", "NAME", "NETWORKS", "USES LEFT", "EXPIRES", "TAGS", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "id"), json_member_string(o, "name"),
                                   json_member_strv(o, "networks"), uses_text(o),
                                   json_member_time(o, "expires_at", "never"), json_member_strv(o, "tags"));
        }
        if (table_rows(t) == 0)
                printf("No enrollment keys.\n");
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int key_create(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "name", required_argument, NULL, OPT_NAME },
                { "network", required_argument, NULL, OPT_NETWORK },
                { "uses", required_argument, NULL, OPT_USES },
                { "unlimited", no_argument, NULL, OPT_UNLIMITED },
                { "expires", required_argument, NULL, OPT_EXPIRES },
                { "tag", required_argument, NULL, OPT_TAG },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl key create [NAME] --network NET [--network NET2 ...] [OPTIONS]\n"
                "\n"
                "Creates an enrollment key and prints its token (only the token, so that\n"
                "TOKEN=$(nmctl key create ...) works); a host joins with \"netclient join -t TOKEN\".\n"
                "\n"
                "  --name NAME        A label for the key (or give it as the argument)\n"
                "  --network NET      A network the key joins (repeat, or NET1,NET2)\n"
                "  --uses N           How many hosts may use it (default 1)\n"
                "  --unlimited        Any number of hosts\n"
                "  --expires WHEN     +30d, +12h, +90m, a Unix time or YYYY-MM-DD[THH:MM[:SS]]\n"
                "                     (local time); default: never\n"
                "  --tag TAG          A tag for the hosts that join with it (repeatable)\n";
        g_autoptr(GPtrArray) networks = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) tags = g_ptr_array_new_with_free_func(g_free);
        KeyArgs a = {.networks = networks, .tags = tags};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *body = NULL;
        g_autofree char *token = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, key_option, &a, &k) < 0)
                return k;
        if (argc - optind > 1)
                return usage_error("key create takes at most one argument, the key's name");
        if (optind < argc) {
                if (a.name)
                        return usage_error("give the key's name either as argument or with --name");
                a.name = argv[optind];
        }
        if (!a.name)
                return usage_error("key create needs a name (nmctl key create NAME --network NET)");
        if (networks->len == 0)
                return usage_error("key create needs at least one --network");
        if (a.unlimited && a.uses > 0)
                return usage_error("give either --uses or --unlimited, not both");

        g_ptr_array_add(networks, NULL);
        g_ptr_array_add(tags, NULL);
        json_builder_begin_object(b);
        nm_json_add_string(b, "name", a.name);
        nm_json_add_strv(b, "networks", (const char *const *)networks->pdata);
        if (a.uses > 0)
                nm_json_add_int(b, "uses", a.uses);
        if (a.unlimited)
                nm_json_add_bool(b, "unlimited", true);
        if (a.expires_at > 0)
                nm_json_add_int(b, "expires_at", a.expires_at);
        if (tags->len > 1)
                nm_json_add_strv(b, "tags", (const char *const *)tags->pdata);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);

        k = rest_call_show(c, "POST", "/enrollment-keys", body, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        token = json_member_string(o, "token");
        if (!token) {
                fprintf(stderr, "Error: the server's answer has no token.\n");
                return NMCTL_EXIT_REFUSED;
        }
        puts(token);
        return NMCTL_EXIT_OK;
}

static int key_show_or_delete(Ctx *c, int argc, char *argv[], bool delete)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help_show[] = "nmctl key show ID\n\nShows an enrollment key and its token.\n";
        static const char help_delete[] =
                "nmctl key delete ID\n\nDeletes an enrollment key; hosts that joined "
                "with it stay.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, delete ? help_delete : help_show, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("key %s needs exactly one ID", delete ? "delete" : "show");
        id = path_escape(argv[optind]);
        path = g_strconcat("/enrollment-keys/", id, NULL);
        if (delete) {
                k = rest_call_show(c, "DELETE", path, NULL, NULL);
                if (k == NMCTL_EXIT_OK && !c->json)
                        printf("Deleted enrollment key %s.\n", argv[optind]);
                return k;
        }
        k = rest_call_show(c, "GET", path, NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_key(o);
        return NMCTL_EXIT_OK;
}

static int key_show(Ctx *c, int argc, char *argv[])
{
        return key_show_or_delete(c, argc, argv, false);
}

static int key_delete(Ctx *c, int argc, char *argv[])
{
        return key_show_or_delete(c, argc, argv, true);
}

int cmd_key(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", key_list, "list", "List the enrollment keys"},
                {"create", key_create, "create NAME --network NET ...", "Create a key, print its token"},
                {"show", key_show, "show ID", "Show a key and its token"},
                {"delete", key_delete, "delete ID", "Delete a key"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs,
                              "nmctl key COMMAND: enrollment keys (what hosts join with)");
}
