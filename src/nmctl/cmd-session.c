/* nmctl login, logout and health. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "credentials.h"
#include "json-util.h"
#include "macro.h"
#include "nmctl.h"
#include "output.h"
#include "rest.h"

enum { OPT_PASSWORD_STDIN = OPT_FIRST_COMMAND_OPTION };

static int login_option(int opt, const char *arg, void *userdata)
{
        bool *password_stdin = userdata;
        if (opt == OPT_PASSWORD_STDIN) {
                *password_stdin = true;
                return 0;
        }
        return -1;
}

int cmd_login(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
                {},
        };
        static const char help[] =
                "nmctl login [USERNAME] [--password-stdin] [--server URL]\n"
                "\n"
                "Logs in with a user name and password and stores the user token for this server in\n"
                "$XDG_CONFIG_HOME/nmctl/token (~/.config/nmctl/token), readable only by you. Later\n"
                "commands use it when no other credential is given, and go to this server when no\n"
                "--server or $NMCTL_SERVER says otherwise.\n"
                "\n"
                "  --password-stdin   Read the password from the first line of standard input\n"
                "                     (otherwise it is asked for on the terminal, without echo)\n";
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        _cleanup_secret_ char *password = NULL;
        _cleanup_secret_ char *body = NULL;
        g_autofree char *username = NULL;
        g_autofree char *expires = NULL;
        StoredLogin l = {};
        bool password_stdin = false;
        JsonObject *o;
        const char *token = NULL, *role = NULL;
        gint64 expires_at = 0;
        int k, r;

        if (parse_verb_options(c, argc, argv, options, help, login_option, &password_stdin, &k) < 0)
                return k;
        if (argc - optind > 1)
                return usage_error("login takes at most one argument, the user name");
        if (optind < argc)
                username = g_strdup(argv[optind]);
        else if (!password_stdin && isatty(STDIN_FILENO))
                username = read_line_tty("Username: ");
        if (!username || !*username)
                return usage_error("no user name given (nmctl login USERNAME)");

        g_autofree char *prompt = g_strdup_printf("Password for %s at %s: ", username, c->server);
        password = read_password(prompt, password_stdin, false);
        if (!password)
                return NMCTL_EXIT_USAGE;

        json_builder_begin_object(b);
        nm_json_add_string(b, "username", username);
        nm_json_add_string(b, "password", password);
        json_builder_end_object(b);
        body = nm_json_builder_to_string(b);
        /* The login itself goes without the stored credential. */
        nm_free_secret(c->credential);
        c->credential = NULL;
        c->auth_source = AUTH_NONE;
        k = rest_call(c, "POST", "/login", body, &answer, NULL);
        if (k != NMCTL_EXIT_OK)
                return k;

        o = answer_object(answer);
        if (!o || !nm_json_get_string(o, "token", true, &token, NULL) ||
            !nm_json_get_string(o, "role", false, &role, NULL) ||
            !nm_json_get_int(o, "expires_at", false, 0, G_MAXINT64, &expires_at, NULL)) {
                fprintf(stderr, "Error: the server's login answer has no token.\n");
                return NMCTL_EXIT_REFUSED;
        }
        l.server = g_strdup(c->server);
        l.token = g_strdup(token);
        l.username = g_strdup(username);
        l.role = g_strdup(role);
        l.expires_at = expires_at;
        r = credentials_save(&l);
        stored_login_clear(&l);
        if (r < 0) {
                g_autofree char *path = credentials_path();
                fprintf(stderr, "Error: cannot store the token in %s: %s\n", path, g_strerror(-r));
                return NMCTL_EXIT_USAGE;
        }

        if (c->json) {
                /* The token is stored; it is not printed. */
                g_autoptr(JsonBuilder) out = json_builder_new();
                g_autofree char *text = NULL;
                json_builder_begin_object(out);
                nm_json_add_string(out, "server", c->server);
                nm_json_add_string(out, "username", username);
                nm_json_add_string(out, "role", role);
                nm_json_add_int(out, "expires_at", expires_at);
                json_builder_end_object(out);
                text = nm_json_builder_to_string(out);
                puts(text);
                return NMCTL_EXIT_OK;
        }
        expires = expires_at ? format_time(expires_at) : g_strdup("never");
        printf("Logged in to %s as %s (%s); the login expires %s.\n", c->server, username, strna(role), expires);
        return NMCTL_EXIT_OK;
}

int cmd_logout(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = { NMCTL_GLOBAL_OPTIONS, {} };
        static const char help[] = "nmctl logout\n\nForgets the stored login (the token file).\n";
        int k, r;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("logout takes no arguments");
        r = credentials_remove();
        if (r < 0) {
                g_autofree char *path = credentials_path();
                fprintf(stderr, "Error: cannot remove %s: %s\n", path, g_strerror(-r));
                return NMCTL_EXIT_USAGE;
        }
        return NMCTL_EXIT_OK;
}

int cmd_health(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = { NMCTL_GLOBAL_OPTIONS, {} };
        static const char help[] =
                "nmctl health\n\nShows whether the server answers, its version, its database and whether it is\n"
                "connected to the MQTT broker. Needs no credential.\n";
        g_autoptr(JsonNode) answer = NULL;
        g_autoptr(Table) t = NULL;
        JsonObject *o;
        int k;

        if (parse_verb_options(c, argc, argv, options, help, NULL, NULL, &k) < 0)
                return k;
        if (optind < argc)
                return usage_error("health takes no arguments");
        k = rest_call_show(c, "GET", "/health", NULL, &answer);
        if (k != NMCTL_EXIT_OK || c->json)
                return k;
        o = answer_object(answer);
        if (!o)
                return NMCTL_EXIT_REFUSED;
        t = table_new_list();
        table_add_item(t, "Server", c->server);
        table_add_item_take(t, "Status", json_member_string(o, "status"));
        table_add_item_take(t, "Version", json_member_string(o, "version"));
        table_add_item_take(t, "Database", json_member_string(o, "database"));
        JsonNode *bc = json_object_get_member(o, "broker_connected");
        table_add_item(t, "Broker",
                       bc && JSON_NODE_HOLDS_VALUE(bc) && json_node_get_value_type(bc) == G_TYPE_BOOLEAN
                               ? (json_node_get_boolean(bc) ? "connected" : "disconnected")
                               : NULL);
        table_print(t, stdout);
        return NMCTL_EXIT_OK;
}
