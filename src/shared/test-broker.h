/* For C tests: a throwaway Mosquitto on 127.0.0.1 and a free port (optionally with the
 * dynamic-security plugin and an admin account), and running an sd-event loop until a condition
 * holds. The C twin of tests/integration/nmtest/broker.py. */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <systemd/sd-event.h>

#define TEST_DYNSEC_PLUGIN "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"

typedef struct TestBroker {
        char *dir;
        char *conf;
        char *dynsec_file;
        char *log;
        char *url;
        int port;
        GPid pid;
        bool dynsec;
        const char *admin_user;
        char *admin_password;
} TestBroker;

static inline char *test_broker_binary(void)
{
        char *p = g_find_program_in_path("mosquitto");
        if (!p && g_file_test("/usr/sbin/mosquitto", G_FILE_TEST_IS_EXECUTABLE))
                p = g_strdup("/usr/sbin/mosquitto");
        return p;
}

/* Whether the test can run; tells g_test why not. */
static inline bool test_broker_available(bool dynsec)
{
        g_autofree char *bin = test_broker_binary();
        g_autofree char *ctrl = g_find_program_in_path("mosquitto_ctrl");
        if (!bin) {
                g_test_skip("mosquitto is not installed");
                return false;
        }
        if (dynsec && (!ctrl || !g_file_test(TEST_DYNSEC_PLUGIN, G_FILE_TEST_EXISTS))) {
                g_test_skip("mosquitto's dynamic-security plugin or mosquitto_ctrl is missing");
                return false;
        }
        return true;
}

static inline int test_free_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t n = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &n), ==, 0);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static inline bool test_port_open(int port)
{
        struct sockaddr_in a = {
                .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

/* A test that fails an assertion aborts: the broker must not outlive it. */
static inline void test_broker_child_setup(gpointer data)
{
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static inline void test_broker_spawn(TestBroker *b)
{
        g_autofree char *bin = test_broker_binary();
        g_autofree char *cmd = g_strdup_printf("exec %s -c %s >>%s 2>&1", bin, b->conf, b->log);
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        g_autoptr(GError) e = NULL;

        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                    test_broker_child_setup, NULL, &b->pid, &e));
        g_assert_no_error(e);
        for (int i = 0; i < 500; i++) {
                if (test_port_open(b->port))
                        return;
                if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
                        g_autofree char *log = NULL;
                        (void)g_file_get_contents(b->log, &log, NULL, NULL);
                        g_error("mosquitto exited at start:\n%s", log);
                }
                g_usleep(10000);
        }
        g_error("mosquitto does not accept connections on port %d", b->port);
}

/* `port` 0: a free one. */
static inline void test_broker_start_port(TestBroker *b, bool dynsec, int port)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GString) conf = g_string_new(NULL);

        memset(b, 0, sizeof(*b));
        b->dynsec = dynsec;
        b->dir = g_dir_make_tmp("nm-test-broker-XXXXXX", &e);
        g_assert_no_error(e);
        b->conf = g_build_filename(b->dir, "mosquitto.conf", NULL);
        b->dynsec_file = g_build_filename(b->dir, "dynamic-security.json", NULL);
        b->log = g_build_filename(b->dir, "broker.log", NULL);
        b->port = port > 0 ? port : test_free_port();
        b->url = g_strdup_printf("mqtt://127.0.0.1:%d", b->port);
        b->admin_user = "admin";
        b->admin_password = g_strdup_printf("adm%08x", g_random_int());

        if (geteuid() == 0)
                /* research/test-env.md §6: otherwise it drops to "mosquitto" and cannot read its files. */
                g_string_append(conf, "user root\n");
        g_string_append(conf, "per_listener_settings false\npersistence false\n");
        g_string_append_printf(conf, "listener %d 127.0.0.1\n", b->port);
        g_string_append(conf, "log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n"
                              "log_type information\n");
        if (dynsec) {
                const char *argv[] = {"mosquitto_ctrl", "dynsec",          "init", b->dynsec_file,
                                      b->admin_user,    b->admin_password, NULL};
                int status;
                g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                           NULL, NULL, &status, &e));
                g_assert_no_error(e);
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_string_append_printf(conf, "allow_anonymous false\nplugin %s\nplugin_opt_config_file %s\n",
                                       TEST_DYNSEC_PLUGIN, b->dynsec_file);
        } else
                g_string_append(conf, "allow_anonymous true\n");
        g_assert_true(g_file_set_contents(b->conf, conf->str, -1, &e));
        g_assert_no_error(e);
        test_broker_spawn(b);
}

static inline void test_broker_start(TestBroker *b, bool dynsec)
{
        test_broker_start_port(b, dynsec, 0);
}

static inline void test_broker_stop(TestBroker *b)
{
        if (b->pid <= 0)
                return;
        (void)kill(b->pid, SIGTERM);
        (void)waitpid(b->pid, NULL, 0);
        g_spawn_close_pid(b->pid);
        b->pid = 0;
}

static inline void test_broker_restart(TestBroker *b)
{
        test_broker_stop(b);
        test_broker_spawn(b);
}

static inline void test_broker_free(TestBroker *b)
{
        test_broker_stop(b);
        if (b->dir) {
                const char *files[] = {b->conf, b->dynsec_file, b->log};
                for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
                        (void)g_unlink(files[i]);
                (void)g_rmdir(b->dir);
        }
        g_free(b->dir);
        g_free(b->conf);
        g_free(b->dynsec_file);
        g_free(b->log);
        g_free(b->url);
        g_free(b->admin_password);
        memset(b, 0, sizeof(*b));
}

/* Runs the loop until `cond` holds or the time is up; evaluates to `cond`. */
#define TEST_RUN_UNTIL(e, cond, timeout_usec)                                                               \
        ({                                                                                                  \
                gint64 _deadline = g_get_monotonic_time() + (gint64)(timeout_usec);                         \
                while (!(cond) && g_get_monotonic_time() < _deadline)                                       \
                        g_assert_cmpint(sd_event_run((e), 20 * 1000), >=, 0);                               \
                (cond);                                                                                     \
        })

/* Runs the loop until *flag turns true (or, with flag NULL, for the whole time). Returns *flag. */
static inline bool test_run_until(sd_event *e, const bool *flag, uint64_t timeout_usec)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_usec;
        while (!(flag && *flag) && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(e, 50 * 1000), >=, 0);
        return flag ? *flag : true;
}
