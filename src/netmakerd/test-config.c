/* Proves the configuration's precedence (built-in default < key file < NETMAKERD_* variable),
 * that rate limits read as BURST/PERIOD or off, and that bad values, unknown keys and unknown
 * variables fail with a message naming the key, the value and what is accepted, without ever
 * quoting a secret. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "nm-error.h"

static char *write_file(const char *text)
{
        g_autoptr(GError) e = NULL;
        char *path = NULL;
        int fd = g_file_open_tmp("test-config-XXXXXX.conf", &path, &e);
        g_assert_no_error(e);
        g_assert_cmpint(write(fd, text, strlen(text)), ==, (ssize_t)strlen(text));
        close(fd);
        return path;
}

static Config *load(const char *file_text, char **envp, GError **error)
{
        g_autofree char *path = write_file(file_text);
        Config *c = NULL;
        int r = config_load(path, envp, &c, error);
        g_unlink(path);
        return r < 0 ? NULL : c;
}

static void test_defaults(void)
{
        char *env[] = {NULL};
        g_autoptr(GError) e = NULL;
        g_autoptr(Config) c = load("", env, &e);
        g_assert_no_error(e);
        g_assert_cmpstr(c->listen, ==, "127.0.0.1:8081");
        g_assert_cmpuint(c->listen_port, ==, 8081);
        g_assert_null(c->api_url);
        g_assert_cmpstr(c->server_name, ==, DEFAULT_SERVER_NAME);
        g_assert_cmpstr(c->broker_url, ==, "mqtt://127.0.0.1:1883");
        g_assert_cmpstr(c->dns_domain, ==, "nm.internal");
        g_assert_cmpuint(c->default_listen_port, ==, 51821);
        g_assert_cmpuint(c->default_keepalive, ==, 20);
        g_assert_cmpuint(c->default_mtu, ==, 1420);
        g_assert_cmpuint(c->max_request_size, ==, 65536);
        g_assert_cmpuint(c->token_lifetime, ==, 86400);
        g_assert_null(c->master_key);
        g_assert_cmpuint(c->login_rate_limit.burst, ==, 10);
        g_assert_cmpuint(c->login_rate_limit.period, ==, 60);
        g_assert_cmpuint(c->register_rate_limit.burst, ==, 30);
        g_assert_cmpuint(c->register_rate_limit.period, ==, 60);
        g_assert_cmpuint(c->rate_limit_sources, ==, 10000);
        /* The database follows the state directory unless set. */
        g_autofree char *db = g_strdup_printf("sqlite://%s/netmaker.db", c->state_directory);
        g_assert_cmpstr(c->database, ==, db);
}

static void test_precedence(void)
{
        const char *file = "[netmakerd]\n"
                           "listen = 127.0.0.1:9000\n"
                           "dns_domain = file.example\n"
                           "default_mtu = 1400\n"
                           "state_directory = /tmp/from-file\n";
        char *env[] = {"NETMAKERD_DNS_DOMAIN=env.example", "PATH=/usr/bin", "NETMAKERD_TOKEN_LIFETIME=15m",
                       NULL};
        g_autoptr(GError) e = NULL;
        g_autoptr(Config) c = load(file, env, &e);
        g_assert_no_error(e);
        /* default < file */
        g_assert_cmpstr(c->listen, ==, "127.0.0.1:9000");
        g_assert_cmpuint(c->listen_port, ==, 9000);
        g_assert_cmpuint(c->default_mtu, ==, 1400);
        /* file < env */
        g_assert_cmpstr(c->dns_domain, ==, "env.example");
        /* default < env */
        g_assert_cmpuint(c->token_lifetime, ==, 900);
        /* untouched */
        g_assert_cmpuint(c->default_keepalive, ==, 20);
        g_assert_cmpstr(c->database, ==, "sqlite:///tmp/from-file/netmaker.db");
}

static void test_empty_disables(void)
{
        char *env[] = {"NETMAKERD_BROKER_URL=", "NETMAKERD_LISTEN=[::1]:0", NULL};
        g_autoptr(GError) e = NULL;
        g_autoptr(Config) c = load("[netmakerd]\nbroker_url = mqtt://10.0.0.1:1883\n", env, &e);
        g_assert_no_error(e);
        g_assert_null(c->broker_url);
        g_assert_cmpint(c->listen_family, ==, AF_INET6);
        g_assert_cmpuint(c->listen_port, ==, 0);
}

static void expect_error(const char *file, char **env, const char *const *mentions, const char *absent)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(Config) c = load(file, env, &e);
        g_assert_null(c);
        g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
        for (const char *const *m = mentions; *m; m++)
                if (!strstr(e->message, *m))
                        g_error("message \"%s\" does not mention \"%s\"", e->message, *m);
        if (absent && strstr(e->message, absent))
                g_error("message \"%s\" quotes the secret", e->message);
}

static void test_invalid(void)
{
        char *none[] = {NULL};
        expect_error("[netmakerd]\nlisten = 127.0.0.1:99999\n", none,
                     (const char *[]){"listen", "\"127.0.0.1:99999\"", "0-65535", NULL}, NULL);
        expect_error("[netmakerd]\ndefault_mtu = 100\n", none,
                     (const char *[]){"default_mtu", "\"100\"", "1280-9000", NULL}, NULL);
        expect_error("[netmakerd]\nlistne = 1\n", none,
                     (const char *[]){"Unknown key", "listne", "listen", NULL}, NULL);
        expect_error("[server]\nlisten = 127.0.0.1:1\n", none,
                     (const char *[]){"[server]", "[netmakerd]", NULL}, NULL);
        expect_error("[netmakerd]\ndatabase = mysql://x\n", none,
                     (const char *[]){"database", "sqlite://", NULL}, NULL);
        expect_error("[netmakerd]\nbroker_url = http://x\n", none,
                     (const char *[]){"broker_url", "mqtt://", NULL}, NULL);
        char *bad_level[] = {"NETMAKERD_LOG_LEVEL=chatty", NULL};
        expect_error("", bad_level,
                     (const char *[]){"log_level", "\"chatty\"", "NETMAKERD_LOG_LEVEL", "debug", NULL},
                     NULL);
        char *unknown[] = {"NETMAKERD_LISTEN_PROT=1", NULL};
        expect_error("", unknown, (const char *[]){"NETMAKERD_LISTEN_PROT", NULL}, NULL);
        char *short_key[] = {"NETMAKERD_MASTER_KEY=short-secret", NULL};
        expect_error("", short_key, (const char *[]){"master_key", "16", NULL}, "short-secret");
        char *short_pw[] = {"NETMAKERD_ADMIN_PASSWORD=abc", NULL};
        expect_error("", short_pw, (const char *[]){"admin_password", NULL}, "abc\"");
        /* Values the key file cannot read (found by tests/fuzz: two of them set a GError twice). */
        expect_error("[netmakerd]\nserver_name = a\\qb\nadmin_user = c\\qd\n", none,
                     (const char *[]){"server_name", NULL}, NULL);
        expect_error("[netmakerd]\ndns_domain = example\\\n", none, (const char *[]){"dns_domain", NULL},
                     NULL);
}

static void test_rate_limits(void)
{
        static const struct {
                const char *text;
                unsigned burst, period;
        } good[] = {
                {"10/1m", 10, 60}, {"10/min", 10, 60}, {"5/90", 5, 90}, {"100/1h", 100, 3600},
                {"1/d", 1, 86400}, {"3/2s", 3, 2},     {"off", 0, 0},   {"OFF", 0, 0},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                g_autofree char *v = g_strdup_printf("NETMAKERD_LOGIN_RATE_LIMIT=%s", good[i].text);
                char *env[] = {v, "NETMAKERD_REGISTER_RATE_LIMIT=7/1h", "NETMAKERD_RATE_LIMIT_SOURCES=64",
                               NULL};
                g_autoptr(GError) e = NULL;
                g_autoptr(Config) c = load("", env, &e);
                g_assert_no_error(e);
                g_assert_cmpuint(c->login_rate_limit.burst, ==, good[i].burst);
                g_assert_cmpuint(c->login_rate_limit.period, ==, good[i].period);
                g_assert_cmpuint(c->register_rate_limit.burst, ==, 7);
                g_assert_cmpuint(c->register_rate_limit.period, ==, 3600);
                g_assert_cmpuint(c->rate_limit_sources, ==, 64);
        }
        const char *bad[] = {"10",    "/1m",   "0/1m",   "10/0",    "10/2d", "1000001/1m",
                             "-1/1m", "10/1w", "ten/1m", "10/1m/2", "",      NULL};
        for (const char **b = bad; *b; b++) {
                g_autofree char *file = g_strdup_printf("[netmakerd]\nregister_rate_limit = %s\n", *b);
                g_autofree char *quoted = g_strdup_printf("\"%s\"", *b);
                char *none[] = {NULL};
                expect_error(file, none,
                             (const char *[]){"register_rate_limit", quoted, "BURST/PERIOD", "off", NULL},
                             NULL);
        }
        char *zero[] = {"NETMAKERD_RATE_LIMIT_SOURCES=0", NULL};
        expect_error("", zero, (const char *[]){"rate_limit_sources", "\"0\"", "1-10000000", NULL}, NULL);
}

static void test_missing_file(void)
{
        g_autoptr(GError) e = NULL;
        Config *c = NULL;
        char *env[] = {NULL};
        g_assert_cmpint(config_load("/nonexistent/netmakerd.conf", env, &c, &e), <, 0);
        g_assert_nonnull(strstr(e->message, "/nonexistent/netmakerd.conf"));
}

static void test_help(void)
{
        g_autofree char *h = config_help_text();
        g_assert_nonnull(strstr(h, "NETMAKERD_BROKER_URL"));
        g_assert_nonnull(strstr(h, "NETMAKERD_MAX_REQUEST_SIZE"));
        g_assert_nonnull(strstr(h, "51821"));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/config/defaults", test_defaults);
        g_test_add_func("/config/precedence", test_precedence);
        g_test_add_func("/config/empty-disables", test_empty_disables);
        g_test_add_func("/config/invalid", test_invalid);
        g_test_add_func("/config/rate-limits", test_rate_limits);
        g_test_add_func("/config/missing-file", test_missing_file);
        g_test_add_func("/config/help", test_help);
        return g_test_run();
}
