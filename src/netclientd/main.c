/* netclientd: read the configuration, start the Manager, tell systemd we are ready, run the loop. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "daemon-config.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "manager.h"

static void help(void)
{
        printf("%s [OPTIONS...]\n\n"
               "The netmaker node agent: joins mesh networks and owns their WireGuard links.\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "     --config=PATH        Configuration file (default %s; $NETCLIENTD_CONFIG)\n"
               "     --state-dir=PATH     State directory (default %s)\n"
               "     --wg-backend=KIND    auto, kernel or userspace\n"
               "     --log-level=LEVEL    debug, info, notice, warning or err\n",
               program_invocation_short_name, NETCLIENTD_DEFAULT_CONFIG, NETCLIENTD_DEFAULT_STATE_DIR);
}

enum {
        ARG_VERSION = 0x100,
        ARG_CONFIG,
        ARG_STATE_DIR,
        ARG_WG_BACKEND,
        ARG_LOG_LEVEL,
};

/* Options win over the file and the environment, but the file is read first: collect them. */
static int parse_argv(int argc, char *argv[], char **ret_config, GPtrArray *settings)
{
        /* clang-format off */
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"config", required_argument, NULL, ARG_CONFIG},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"wg-backend", required_argument, NULL, ARG_WG_BACKEND},
                {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
                {},
        };
        /* clang-format on */
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("netclientd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        g_free(*ret_config);
                        *ret_config = g_strdup(optarg);
                        break;
                case ARG_STATE_DIR:
                        g_ptr_array_add(settings, g_strdup("StateDirectory"));
                        g_ptr_array_add(settings, g_strdup(optarg));
                        break;
                case ARG_WG_BACKEND:
                        g_ptr_array_add(settings, g_strdup("Backend"));
                        g_ptr_array_add(settings, g_strdup(optarg));
                        break;
                case ARG_LOG_LEVEL:
                        g_ptr_array_add(settings, g_strdup("LogLevel"));
                        g_ptr_array_add(settings, g_strdup(optarg));
                        break;
                case '?':
                        return -EINVAL;
                default:
                        g_assert_not_reached();
                }
        if (optind < argc) {
                log_error("%s takes no arguments.", program_invocation_short_name);
                return -EINVAL;
        }
        return 1;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        log_info("Received %s, exiting; the WireGuard links stay up.", strsignal((int)si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int run(int argc, char *argv[])
{
        g_autoptr(Config) config = config_new();
        g_autoptr(Manager) m = NULL;
        g_autoptr(GPtrArray) settings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) e = NULL;
        g_autofree char *config_file = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv, &config_file, settings);
        if (r <= 0)
                return r;

        if (config_file || g_getenv("NETCLIENTD_CONFIG")) {
                g_free(config->config_file);
                config->config_file = g_strdup(config_file ? config_file : g_getenv("NETCLIENTD_CONFIG"));
        }
        if (config_load_file(config, &e) < 0 || config_load_env(config, NULL, &e) < 0)
                return log_error_errno(-EINVAL, "%s", e->message);
        for (guint i = 0; i + 1 < settings->len; i += 2)
                if (config_set(config, settings->pdata[i], settings->pdata[i + 1], "the command line", &e) <
                    0)
                        return log_error_errno(-EINVAL, "%s", e->message);
        log_set_max_level(config->log_level);

        r = nm_crypto_init();
        if (r < 0)
                return log_error_errno(r, "Failed to initialise libsodium: %m");
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(-EIO, "Failed to initialise libcurl.");

        /* The broker or server may close a socket under us: errors, not deaths. */
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* For the event loop's child sources: wireguard-go processes we start are reaped there. */
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = manager_new(config, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to create the manager: %m");
        r = manager_startup(m);
        if (r < 0)
                return r;

        (void)sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, NULL);
        (void)sd_event_add_signal(m->event, NULL, SIGINT, on_signal, NULL);
        (void)sd_event_set_watchdog(m->event, true);

        (void)sd_notify(false, "READY=1\nSTATUS=Running");
        log_info("netclientd %s running.", PACKAGE_VERSION);
        r = sd_event_loop(m->event);
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);
        curl_global_cleanup();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
