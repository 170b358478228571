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

enum { OPT_PASSWORD_STDIN = OPT_FIRST_COMMAND_OPTION, OPT_ACCEPT_NEW };

typedef struct LoginOptions {
        bool password_stdin;
        bool accept_new;
} LoginOptions;

static int login_option(int opt, const char *arg, void *userdata)
{
        LoginOptions *o = userdata;
        if (opt == OPT_PASSWORD_STDIN) {
                o->password_stdin = true;
                return 0;
        }
        if (opt == OPT_ACCEPT_NEW) {
                o->accept_new = true;
                return 0;
        }
        return -1;
}

/* A server no pin and no CA vouches for: show its key and ask (as ssh does at a first
 * connection), or take it with --accept-new; then remember it in known-servers. */
static int trust_new_server(Ctx *c, bool accept_new)
{
        NmTlsPin seen;
        bool ca_trusted = false;
        int k;

        if (c->trust.mode != NM_TLS_CA || !g_str_has_prefix(c->server, "https://"))
                return NMCTL_EXIT_OK;
        k = rest_probe_key(c, &seen, &ca_trusted);
        if (k != NMCTL_EXIT_OK || ca_trusted)
                return k;
        g_autofree char *pin = nm_tls_pin_format(&seen);
        fprintf(stderr,
                "The server %s has a certificate no CA of this machine vouches for.\n"
                "The public key of its certificate is\n"
                "    %s\n"
                "Compare it with the key netmakerd printed when it made the certificate (its log, or\n"
                "\"netmakerd --print-pin\" on the server).\n",
                c->server, pin);
        if (!accept_new) {
                g_autofree char *answer =
                        isatty(STDIN_FILENO)
                                ? read_line_tty("Trust this server and remember its key? [y/N] ")
                                : NULL;
                if (!answer) {
                        fprintf(stderr,
                                "Error: not trusting it without asking: give --pin %s (or --accept-new) to "
                                "trust it without a terminal.\n",
                                pin);
                        return NMCTL_EXIT_REFUSED;
                }
                if (g_ascii_strcasecmp(g_strstrip(answer), "y") != 0 &&
                    g_ascii_strcasecmp(answer, "yes") != 0) {
                        fprintf(stderr, "Not trusted; nothing was sent.\n");
                        return NMCTL_EXIT_REFUSED;
                }
        }
        nm_tls_trust_clear(&c->trust);
        c->trust.mode = NM_TLS_PIN;
        c->trust.pin = seen;
        return NMCTL_EXIT_OK;
}

int cmd_login(Ctx *c, int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
                { "accept-new", no_argument, NULL, OPT_ACCEPT_NEW },
                {},
        };
        /* clang-format on */
        static const char help[] =
                "nmctl login [USERNAME] [--password-stdin] [--server URL] [--pin PIN | --accept-new]\n"
                "\n"
                "Logs in with a user name and password and stores the user token for this server in\n"
                "$XDG_CONFIG_HOME/nmctl/token (~/.config/nmctl/token), readable only by you. Later\n"
                "commands use it when no other credential is given, and go to this server when no\n"
                "--server or $NMCTL_SERVER says otherwise.\n"
                "\n"
                "The first login to a server whose certificate no CA vouches for (netmakerd's own,\n"
                "self-signed) shows the pin of its key and asks whether to trust it, as ssh does; the\n"
                "pin is remembered in $XDG_CONFIG_HOME/nmctl/known-servers and checked by every later\n"
                "command.\n"
                "\n"
                "  --password-stdin   Read the password from the first line of standard input\n"
                "                     (otherwise it is asked for on the terminal, without echo)\n"
                "  --pin PIN          Trust the server with this key without asking (and remember it)\n"
                "  --accept-new       Trust a server seen for the first time without asking\n";
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) answer = NULL;
        _cleanup_secret_ char *password = NULL;
        _cleanup_secret_ char *body = NULL;
        g_autofree char *username = NULL;
        g_autofree char *expires = NULL;
        StoredLogin l = {};
        LoginOptions lo = {};
        JsonObject *o;
        const char *token = NULL, *role = NULL;
        gint64 expires_at = 0;
        int k, r;

        if (parse_verb_options(c, argc, argv, options, help, login_option, &lo, &k) < 0)
                return k;
        if (argc - optind > 1)
                return usage_error("login takes at most one argument, the user name");
        if (optind < argc)
                username = g_strdup(argv[optind]);
        else if (!lo.password_stdin && isatty(STDIN_FILENO))
                username = read_line_tty("Username: ");
        if (!username || !*username)
                return usage_error("no user name given (nmctl login USERNAME)");

        /* Who the server is, before a password goes to it. */
        k = trust_new_server(c, lo.accept_new);
        if (k != NMCTL_EXIT_OK)
                return k;

        g_autofree char *prompt = g_strdup_printf("Password for %s at %s: ", username, c->server);
        password = read_password(prompt, lo.password_stdin, false);
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
        if (c->trust.mode == NM_TLS_PIN && !c->pin_known) {
                r = known_server_set(c->server, &c->trust.pin);
                if (r < 0) {
                        g_autofree char *path = known_servers_path();
                        fprintf(stderr, "Error: cannot remember the server's key in %s: %s\n", path,
                                g_strerror(-r));
                        return NMCTL_EXIT_USAGE;
                }
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
        printf("Logged in to %s as %s (%s); the login expires %s.\n", c->server, username, strna(role),
               expires);
        return NMCTL_EXIT_OK;
}

int cmd_logout(Ctx *c, int argc, char *argv[])
{
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
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
        static const struct option options[] = {NMCTL_GLOBAL_OPTIONS, {}};
        static const char help[] = "nmctl health\n\nShows whether the server answers, its version, its "
                                   "database and whether it is\n"
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
