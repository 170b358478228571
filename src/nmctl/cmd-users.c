/* nmctl user list|create|show|update|delete (docs/protocol.md §2.3, /users). */
#include <stdio.h>
#include <string.h>

#include "credentials.h"
#include "json-util.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum {
        OPT_ROLE = OPT_FIRST_COMMAND_OPTION,
        OPT_PASSWORD,
        OPT_PASSWORD_STDIN,
};

typedef struct UserArgs {
        const char *role;
        bool password;       /* ask for a new one */
        bool password_stdin; /* read it from stdin */
} UserArgs;

static int user_option(int opt, const char *arg, void *userdata)
{
        UserArgs *a = userdata;

        switch (opt) {
        case OPT_ROLE:
                if (!streq0(arg, "admin") && !streq0(arg, "user")) {
                        g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 40));
                        usage_error("invalid --role \"%s\": expected admin or user", shown);
                        return -1;
                }
                a->role = arg;
                return 0;
        case OPT_PASSWORD:
                a->password = true;
                return 0;
        case OPT_PASSWORD_STDIN:
                a->password = a->password_stdin = true;
                return 0;
        default:
                return -1;
        }
}

static void print_user(JsonObject *o)
{
        g_autoptr(Table) t = table_new_list();
        table_add_item_take(t, "Username", json_member_string(o, "username"));
        table_add_item_take(t, "Role", json_member_string(o, "role"));
        table_add_item_take(t, "Created", json_member_time(o, "created_at", "-"));
        table_print(t, stdout);
}

static int show_user_answer(Ctx *c, int k, JsonNode *answer)
{
        JsonObject *o;

        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        print_user(o);
        return NMCTL_EXIT_OK;
}

static int user_list(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl user list\n\nLists the users of the REST API.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        JsonArray *a;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("user list takes no arguments");
        k = rest_call_show(c, "GET", "/users", NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        a = answer_array(answer);
        if (!a)
                return NMCTL_EXIT_REFUSED;
        t = table_new("USERNAME", "ROLE", "CREATED", NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                table_add_row_take(t, json_member_string(o, "username"), json_member_string(o, "role"),
                                   json_member_time(o, "created_at", "-"));
        }
        if (table_rows(t) == 0)
                printf("No users.\n");
        else
                table_print(t, stdout);
        return NMCTL_EXIT_OK;
}

static int user_create(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "role", required_argument, NULL, OPT_ROLE },
                { "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl user create USERNAME [--role admin|user] [--password-stdin]\n"
                "\n"
                "Creates a user. The password is asked for twice on the terminal (without\n"
                "echo), or read from the first line of standard input with --password-stdin.\n"
                "\n"
                "  --role ROLE        admin (may do everything) or user (reads; default)\n";
        UserArgs a = {};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        _cleanup_secret_ char *password = NULL;
        _cleanup_secret_ char *body = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, user_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("user create needs exactly one USERNAME");
        g_autofree char *prompt = g_strdup_printf("Password for the new user %s: ", argv[optind]);
        password = read_password(prompt, a.password_stdin, true);
        if (!password)
                return NMCTL_EXIT_USAGE;
        json_builder_begin_object(b);
        nm_json_add_string(b, "username", argv[optind]);
        nm_json_add_string(b, "password", password);
        if (a.role)
                nm_json_add_string(b, "role", a.role);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        k = rest_call_show(c, "POST", "/users", body, &answer);
        return show_user_answer(c, k, answer);
}

static int user_update(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "role", required_argument, NULL, OPT_ROLE },
                { "password", no_argument, NULL, OPT_PASSWORD },
                { "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl user update USERNAME [--role admin|user] [--password | --password-stdin]\n"
                "\n"
                "Changes a user's role (admins only) or password (admins, or the user itself).\n"
                "\n"
                "  --role ROLE        admin or user\n"
                "  --password         Ask for a new password on the terminal\n"
                "  --password-stdin   Read the new password from standard input\n";
        UserArgs a = {};
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        _cleanup_secret_ char *password = NULL;
        _cleanup_secret_ char *body = NULL;
        g_autofree char *name = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, user_option, &a, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("user update needs exactly one USERNAME");
        if (!a.role && !a.password)
                return usage_error("user update needs --role and/or --password (or --password-stdin)");
        if (a.password) {
                g_autofree char *prompt = g_strdup_printf("New password for %s: ", argv[optind]);
                password = read_password(prompt, a.password_stdin, true);
                if (!password)
                        return NMCTL_EXIT_USAGE;
        }
        json_builder_begin_object(b);
        if (password)
                nm_json_add_string(b, "password", password);
        if (a.role)
                nm_json_add_string(b, "role", a.role);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        name = path_escape(argv[optind]);
        path = g_strconcat("/users/", name, NULL);
        k = rest_call_show(c, "PUT", path, body, &answer);
        return show_user_answer(c, k, answer);
}

static int user_show_or_delete(Ctx *c, int argc, char *argv[], bool delete)
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help_show[] = "nmctl user show USERNAME\n\nShows a user.\n";
        static const char help_delete[] =
                "nmctl user delete USERNAME\n\nDeletes a user (not the last admin); "
                "its tokens stop working.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autofree char *name = NULL;
        g_autofree char *path = NULL;
        int k;

        if (parse_verb_options(c, argc, argv, options, delete ? help_delete : help_show, NULL, NULL, &k) < 0)
                return k;
        if (argc - optind != 1)
                return usage_error("user %s needs exactly one USERNAME", delete ? "delete" : "show");
        name = path_escape(argv[optind]);
        path = g_strconcat("/users/", name, NULL);
        if (delete) {
                k = rest_call_show(c, "DELETE", path, NULL, NULL);
                if (k == NMCTL_EXIT_OK && !c->json)
                        printf("Deleted user %s.\n", argv[optind]);
                return k;
        }
        k = rest_call_show(c, "GET", path, NULL, &answer);
        return show_user_answer(c, k, answer);
}

static int user_show(Ctx *c, int argc, char *argv[])
{
        return user_show_or_delete(c, argc, argv, false);
}

static int user_delete(Ctx *c, int argc, char *argv[])
{
        return user_show_or_delete(c, argc, argv, true);
}

int cmd_user(Ctx *c, int argc, char *argv[])
{
        static const Verb verbs[] = {
                {"list", user_list, "list", "List the users"},
                {"create", user_create, "create USERNAME [--role R]", "Create a user"},
                {"show", user_show, "show USERNAME", "Show a user"},
                {"update", user_update, "update USERNAME [--role R] [--password]",
                 "Change role or password"},
                {"delete", user_delete, "delete USERNAME", "Delete a user"},
                {},
        };
        return dispatch_verbs(c, argc, argv, verbs, "nmctl user COMMAND: users of the REST API");
}
