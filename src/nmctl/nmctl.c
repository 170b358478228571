/* nmctl: the admin CLI of netmakerd's REST API (docs/nmctl.md): global options, where the server
 * and the credential come from, and the command groups. */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "credentials.h"
#include "macro.h"
#include "nmctl.h"

int usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("nmctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return NMCTL_EXIT_USAGE;
}

bool ctx_handle_global_option(Ctx *c, int opt, const char *arg)
{
        switch (opt) {
        case OPT_SERVER:
                g_free(c->server);
                c->server = g_strdup(arg);
                c->server_explicit = true;
                return true;
        case OPT_MASTER_KEY:
                nm_free_secret(c->master_key_arg);
                c->master_key_arg = g_strdup(arg);
                return true;
        case OPT_JSON:
                c->json = true;
                return true;
        case OPT_PIN:
                g_free(c->pin_arg);
                c->pin_arg = g_strdup(arg);
                return true;
        case OPT_CA_FILE:
                g_free(c->ca_file);
                c->ca_file = g_strdup(arg);
                return true;
        case OPT_INSECURE:
                c->insecure = true;
                return true;
        default:
                return false;
        }
}

static bool server_url_valid(const char *s)
{
        const char *rest;

        if (g_str_has_prefix(s, "http://"))
                rest = s + strlen("http://");
        else if (g_str_has_prefix(s, "https://"))
                rest = s + strlen("https://");
        else
                return false;
        if (!*rest || *rest == '/')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
                        return false;
        return strlen(s) <= 2048;
}

/* How the server is verified: a pin given (--pin, $NMCTL_PIN) or remembered (known-servers), else
 * a CA (--ca-file, $NMCTL_CA_FILE, else the system's). Plain http:// only to this machine unless
 * --insecure. */
static int ctx_settle_trust(Ctx *c)
{
        const char *env;
        int r;

        if (!c->pin_arg && (env = g_getenv("NMCTL_PIN")) && *env)
                c->pin_arg = g_strdup(env);
        if (!c->ca_file && (env = g_getenv("NMCTL_CA_FILE")) && *env)
                c->ca_file = g_strdup(env);
        if ((env = g_getenv("NMCTL_INSECURE")) && streq0(env, "1"))
                c->insecure = true;

        nm_tls_trust_clear(&c->trust);
        c->pin_known = false;
        if (c->pin_arg) {
                if (!nm_tls_pin_parse(c->pin_arg, &c->trust.pin)) {
                        g_autofree char *shown = g_utf8_make_valid(c->pin_arg, MIN(strlen(c->pin_arg), 80));
                        return usage_error(
                                "invalid pin \"%s\": expected sha256// and 32 bytes of base64 (as netmakerd "
                                "prints it)",
                                shown);
                }
                c->trust.mode = NM_TLS_PIN;
        } else if ((r = known_server_get(c->server, &c->trust.pin)) >= 0) {
                c->trust.mode = NM_TLS_PIN;
                c->pin_known = true;
        } else {
                if (r == -EINVAL) {
                        g_autofree char *path = known_servers_path();
                        fprintf(stderr, "nmctl: ignoring the unreadable pin of %s in %s.\n", c->server,
                                path);
                }
                c->trust.mode = NM_TLS_CA;
                c->trust.ca_file = g_strdup(c->ca_file);
        }

        if (g_str_has_prefix(c->server, "http://")) {
                g_autofree char *host = nm_url_host(c->server);
                if (!nm_host_is_loopback(host)) {
                        if (!c->insecure)
                                return usage_error(
                                        "refusing plain HTTP to %s: passwords and tokens would cross the "
                                        "network in the clear (use https://, or --insecure)",
                                        c->server);
                        fprintf(stderr,
                                "nmctl: INSECURE: plain HTTP to %s: credentials cross the network in the "
                                "clear.\n",
                                c->server);
                }
        }
        return NMCTL_EXIT_OK;
}

int ctx_finish(Ctx *c)
{
        StoredLogin stored = {};
        const char *env;
        int r, r2;

        if (!c->server_explicit && (env = g_getenv("NMCTL_SERVER")) && *env) {
                c->server = g_strdup(env);
                c->server_explicit = true;
        }

        r = credentials_load(&stored);
        if (r == -EPERM) {
                g_autofree char *path = credentials_path();
                fprintf(stderr,
                        "nmctl: ignoring %s: it is readable by others or not yours (chmod 600 it, or log in "
                        "again).\n",
                        path);
        } else if (r == -EINVAL) {
                g_autofree char *path = credentials_path();
                fprintf(stderr, "nmctl: ignoring %s: not a stored nmctl login.\n", path);
        }
        if (!c->server)
                c->server = g_strdup(r >= 0 ? stored.server : NMCTL_DEFAULT_SERVER);

        while (g_str_has_suffix(c->server, "/") && strlen(c->server) > strlen("https://"))
                c->server[strlen(c->server) - 1] = 0;
        if (!server_url_valid(c->server)) {
                g_autofree char *shown = g_utf8_make_valid(c->server, MIN(strlen(c->server), 100));
                stored_login_clear(&stored);
                return usage_error(
                        "invalid server URL \"%s\": expected http://HOST[:PORT] or https://HOST[:PORT]",
                        shown);
        }

        r2 = ctx_settle_trust(c);
        if (r2 != NMCTL_EXIT_OK) {
                stored_login_clear(&stored);
                return r2;
        }

        /* The most explicit credential wins; a stored login only for the server it is from. */
        nm_free_secret(c->credential);
        c->credential = NULL;
        c->auth_source = AUTH_NONE;
        if (c->master_key_arg) {
                c->credential = g_strdup(c->master_key_arg);
                c->auth_source = AUTH_MASTER_KEY_OPTION;
        } else if ((env = g_getenv("NMCTL_MASTER_KEY")) && *env) {
                c->credential = g_strdup(env);
                c->auth_source = AUTH_MASTER_KEY_ENV;
        } else if ((env = g_getenv("NMCTL_TOKEN")) && *env) {
                c->credential = g_strdup(env);
                c->auth_source = AUTH_TOKEN_ENV;
        } else if (r >= 0 && streq0(stored.server, c->server)) {
                c->credential = g_strdup(stored.token);
                c->auth_source = AUTH_TOKEN_FILE;
        }
        if (c->credential && strpbrk(c->credential, "\r\n")) {
                stored_login_clear(&stored);
                return usage_error("the credential contains a line break");
        }
        stored_login_clear(&stored);
        return NMCTL_EXIT_OK;
}

void ctx_clear(Ctx *c)
{
        g_free(c->server);
        nm_free_secret(c->master_key_arg);
        nm_free_secret(c->credential);
        g_free(c->pin_arg);
        g_free(c->ca_file);
        nm_tls_trust_clear(&c->trust);
        memset(c, 0, sizeof(*c));
}

int parse_verb_options(Ctx *c, int argc, char *argv[], const struct option *longopts, const char *help,
                       option_handler_t handle, void *userdata, int *ret_exit)
{
        int opt, k;

        optind = 0; /* GNU: reinitialise, with permutation so options may follow arguments */
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                if (opt == 'h') {
                        fputs(help, stdout);
                        *ret_exit = NMCTL_EXIT_OK;
                        return -1;
                }
                if (ctx_handle_global_option(c, opt, optarg))
                        continue;
                if (opt == '?' || opt == ':') {
                        if (optopt && optopt < 0x100)
                                *ret_exit =
                                        usage_error("unknown option -%c (see %s --help)", optopt, argv[0]);
                        else
                                *ret_exit =
                                        usage_error("unknown option or missing value: %s (see %s --help)",
                                                    argv[optind - 1], argv[0]);
                        return -1;
                }
                if (!handle || handle(opt, optarg, userdata) < 0) {
                        *ret_exit = NMCTL_EXIT_USAGE;
                        return -1;
                }
        }
        k = ctx_finish(c);
        if (k != NMCTL_EXIT_OK) {
                *ret_exit = k;
                return -1;
        }
        return 0;
}

int dispatch_verbs(Ctx *c, int argc, char *argv[], const Verb *verbs, const char *description)
{
        const char *group = argv[0];

        if (argc >= 2 && !streq0(argv[1], "--help") && !streq0(argv[1], "-h"))
                for (const Verb *v = verbs; v->name; v++)
                        if (streq0(argv[1], v->name))
                                return v->run(c, argc - 1, argv + 1);

        FILE *f = argc >= 2 && (streq0(argv[1], "--help") || streq0(argv[1], "-h")) ? stdout : stderr;
        if (argc >= 2 && f == stderr)
                fprintf(stderr, "nmctl: unknown command \"%s %.40s\".\n\n", group, argv[1]);
        fprintf(f, "%s\n\n", description);
        for (const Verb *v = verbs; v->name; v++)
                fprintf(f, "  %s %s %-28s %s\n", c->program, group, v->synopsis, v->summary);
        fprintf(f, "\nEach takes --help, --json, --server URL and --master-key KEY.\n");
        return f == stdout ? NMCTL_EXIT_OK : NMCTL_EXIT_USAGE;
}

char *path_escape(const char *component)
{
        return g_uri_escape_string(component, NULL, false);
}

bool parse_uint_option(const char *name, const char *value, guint64 min, guint64 max, guint64 *ret)
{
        guint64 v;

        if (!g_ascii_string_to_unsigned(value, 10, min, max, &v, NULL)) {
                g_autofree char *shown = g_utf8_make_valid(value, MIN(strlen(value), 40));
                usage_error("invalid %s \"%s\": expected a number from %" G_GUINT64_FORMAT
                            " to %" G_GUINT64_FORMAT,
                            name, shown, min, max);
                return false;
        }
        *ret = v;
        return true;
}

static const char main_help[] =
        "nmctl [OPTIONS] COMMAND ...\n"
        "\n"
        "Administer a netmakerd server through its REST API.\n"
        "\n"
        "Commands:\n"
        "  login [USERNAME]          Log in and store the user token\n"
        "  logout                    Forget the stored token\n"
        "  health                    Show whether the server, its database and broker are up\n"
        "  network list|create|show|update|delete\n"
        "  key list|create|show|delete   Enrollment keys (create prints the token)\n"
        "  host list|show|set|delete|join HOST ...\n"
        "  node list [--network NET]|show|delete\n"
        "  user list|create|show|update|delete\n"
        "  dns list|add|delete|export NETWORK ...   A network's DNS names\n"
        "  nameserver list|add|set|delete NETWORK ...   Split DNS: a domain's servers\n"
        "  node tags|egress|internet-gateway|use-internet-gateway|ingress|relay ID ...\n"
        "  acl show|default|rule add|rule delete NETWORK ...   Which nodes may peer\n"
        "  extclient list|create|show|enable|disable|delete   External clients (QR codes)\n"
        "\n"
        "Options (also accepted after the command):\n"
        "  --server URL       netmakerd's URL (default: $NMCTL_SERVER, else the server of the\n"
        "                     stored login, else " NMCTL_DEFAULT_SERVER ")\n"
        "  --master-key KEY   Authenticate with the master key (prefer $NMCTL_MASTER_KEY: options\n"
        "                     are visible to other local users)\n"
        "  --json             Print the server's JSON answer instead of tables\n"
        "  --pin PIN          Trust the server whose TLS key has this pin (sha256//...; default\n"
        "                     $NMCTL_PIN, else the pin \"nmctl login\" remembered for the server)\n"
        "  --ca-file FILE     Else trust servers whose certificate this CA issued (default\n"
        "                     $NMCTL_CA_FILE, else the system's trust store)\n"
        "  --insecure         Allow plain http:// to another machine ($NMCTL_INSECURE=1)\n"
        "  -h --help          Show this help; COMMAND --help shows a command's\n"
        "  --version          Show the version\n"
        "\n"
        "Credentials, first found wins: --master-key, $NMCTL_MASTER_KEY, $NMCTL_TOKEN, the login\n"
        "stored by \"nmctl login\" for this server.\n"
        "\n"
        "Exit status: 0 done, 1 the server refused (its message is printed), 2 usage error,\n"
        "3 the server cannot be reached.\n";

static const struct {
        const char *name;
        int (*run)(Ctx *c, int argc, char *argv[]);
} groups[] = {
        {"login", cmd_login},
        {"logout", cmd_logout},
        {"health", cmd_health},
        {"network", cmd_network},
        {"networks", cmd_network},
        {"key", cmd_key},
        {"keys", cmd_key},
        {"host", cmd_host},
        {"hosts", cmd_host},
        {"node", cmd_node},
        {"nodes", cmd_node},
        {"user", cmd_user},
        {"users", cmd_user},
        {"dns", cmd_dns},
        {"nameserver", cmd_nameserver},
        {"nameservers", cmd_nameserver},
        {"acl", cmd_acl},
        {"extclient", cmd_extclient},
        {"extclients", cmd_extclient},
};

int main(int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                NMCTL_GLOBAL_OPTIONS,
                { "version", no_argument, NULL, 'V' },
                {},
        };
        /* clang-format on */
        Ctx c = {.program = "nmctl"};
        int opt, k = NMCTL_EXIT_USAGE;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, "+hV", options, NULL)) >= 0) {
                if (opt == 'h') {
                        fputs(main_help, stdout);
                        ctx_clear(&c);
                        return NMCTL_EXIT_OK;
                }
                if (opt == 'V') {
                        printf("nmctl %s\n", PACKAGE_VERSION);
                        ctx_clear(&c);
                        return NMCTL_EXIT_OK;
                }
                if (ctx_handle_global_option(&c, opt, optarg))
                        continue;
                k = usage_error("unknown option or missing value: %s (see nmctl --help)", argv[optind - 1]);
                ctx_clear(&c);
                return k;
        }
        if (optind >= argc) {
                fputs(main_help, stderr);
                ctx_clear(&c);
                return NMCTL_EXIT_USAGE;
        }

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "nmctl: cannot initialise libcurl.\n");
                ctx_clear(&c);
                return NMCTL_EXIT_UNREACHABLE;
        }
        bool found = false;
        for (size_t i = 0; i < G_N_ELEMENTS(groups); i++)
                if (streq0(argv[optind], groups[i].name)) {
                        k = groups[i].run(&c, argc - optind, argv + optind);
                        found = true;
                        break;
                }
        if (!found) {
                g_autofree char *shown = g_utf8_make_valid(argv[optind], MIN(strlen(argv[optind]), 40));
                k = usage_error("unknown command \"%s\" (see nmctl --help)", shown);
        }
        curl_global_cleanup();
        ctx_clear(&c);
        fflush(stdout);
        if (ferror(stdout) && k == NMCTL_EXIT_OK)
                k = NMCTL_EXIT_USAGE;
        return k;
}
