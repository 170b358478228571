/* netmakerd: the control-plane server. Parses the command line and the configuration, starts the
 * Manager, tells systemd it is ready and runs the event loop until SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "manager.h"
#include "tls-cert.h"

static void help(void)
{
        g_autofree char *keys = config_help_text();
        printf("Usage: netmakerd [OPTIONS]\n\n"
               "The Netmaker control-plane server: REST API, store and MQTT fan-out.\n\n"
               "Options:\n"
               "  -c, --config PATH   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
               "      --print-pin     print the pin of the API certificate's key (what enrollment tokens\n"
               "                      and \"nmctl login\" check) and exit\n"
               "      --list-routes   print the REST routes (method, path, who may call them) as JSON\n"
               "                      and exit\n"
               "  -h, --help          show this help\n"
               "      --version       show the version\n\n"
               "Configuration keys, in section [" CONFIG_GROUP "] of the file; each environment variable\n"
               "wins over the file:\n\n%s",
               keys);
}

int main(int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"print-pin", no_argument, NULL, 'P'},
                {"list-routes", no_argument, NULL, 'R'},
                {},
        };
        /* clang-format on */
        bool print_pin = false;
        const char *config_path = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(Manager) m = NULL;
        Config *config = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("netmakerd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case 'P':
                        print_pin = true;
                        break;
                case 'R': {
                        /* Needs no configuration: the tables are compiled in. */
                        g_autofree char *routes = http_routes_to_json();
                        printf("%s\n", routes);
                        return EXIT_SUCCESS;
                }
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\"; see netmakerd --help.", argv[optind]);
                return EXIT_FAILURE;
        }

        if (config_load(config_path, NULL, &config, &e) < 0) {
                log_error("%s", e->message);
                return EXIT_FAILURE;
        }
        log_set_max_level(config->log_level);
        if (print_pin) {
                g_autofree char *path = server_cert_path(config);
                NmTlsPin pin;
                r = nm_tls_pin_of_file(path, &pin, &e);
                config_free(config);
                if (r < 0) {
                        log_error("%s%s", e->message,
                                  r == -ENOENT ? " (netmakerd makes it at its first start)" : "");
                        return EXIT_FAILURE;
                }
                g_autofree char *text = nm_tls_pin_format(&pin);
                printf("%s\n", text);
                return EXIT_SUCCESS;
        }
        if (nm_crypto_init() < 0) {
                log_error("Failed to initialise libsodium.");
                config_free(config);
                return EXIT_FAILURE;
        }

        r = manager_new(config, &m); /* owns config from here on, even on failure */
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_start(m);
        if (r >= 0)
                r = manager_run(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
