/* Proves the sd-event MQTT client parses broker URLs strictly, backs off with bounded jitter, and,
 * against a real Mosquitto, connects while the broker is still down, delivers messages both ways,
 * reconnects after a broker restart, reports refused credentials and unanswered connects, speaks
 * TLS with a pinned CA (and refuses another), stops cleanly and survives being freed from inside
 * its own callback. */
#include <errno.h>
#include <mosquitto.h>
#include <sys/socket.h>

#include "log.h"
#include "macro.h"
#include "mqtt-loop.h"
#include "test-broker.h"

#define MSEC 1000ULL
#define SEC  (1000 * MSEC)

static void test_url_parse(void)
{
        static const struct {
                const char *url;
                const char *host;
                uint16_t port;
                bool tls;
        } good[] = {
                {"mqtt://127.0.0.1:1883", "127.0.0.1", 1883, false},
                {"mqtt://broker.example.org", "broker.example.org", 1883, false},
                {"mqtts://broker.example.org", "broker.example.org", 8883, true},
                {"mqtts://b:8884/", "b", 8884, true},
                {"mqtt://[::1]:1999", "::1", 1999, false},
                {"mqtt://[fd00::1]", "fd00::1", 1883, false},
                {"mqtt://localhost:65535", "localhost", 65535, false},
        };
        static const char *const bad[] = {
                NULL,
                "",
                "mqtt://",
                "mqtt://:1883",
                "http://127.0.0.1:1883",
                "tcp://h:1",
                "127.0.0.1:1883",
                "mqtt://h:0",
                "mqtt://h:65536",
                "mqtt://h:123456",
                "mqtt://h:-1",
                "mqtt://h:",
                "mqtt://h:12x",
                "mqtt://user:pw@h:1883",
                "mqtt://h:1883/path",
                "mqtt://h:1883?x=1",
                "mqtt://h#f",
                "mqtt://[::1",
                "mqtt://[]:1",
                "mqtt://[zz::1]",
                "mqtt://h st",
                "MQTT://h",
                "mqtt://h:1883//",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                g_autofree char *host = NULL;
                uint16_t port = 0;
                bool tls = !good[i].tls;
                g_assert_cmpint(mqtt_url_parse(good[i].url, &host, &port, &tls), ==, 0);
                g_assert_cmpstr(host, ==, good[i].host);
                g_assert_cmpuint(port, ==, good[i].port);
                g_assert_cmpint(tls, ==, good[i].tls);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *host = NULL;
                g_assert_cmpint(mqtt_url_parse(bad[i], &host, NULL, NULL), ==, -EINVAL);
                g_assert_null(host);
        }
        /* A host name longer than DNS allows. */
        g_autofree char *longhost = g_strnfill(254, 'a');
        g_autofree char *longurl = g_strconcat("mqtt://", longhost, NULL);
        g_assert_cmpint(mqtt_url_parse(longurl, NULL, NULL, NULL), ==, -EINVAL);
}

static void test_backoff(void)
{
        const uint64_t min = 500 * MSEC, max = 30 * SEC;
        uint64_t expected = min;

        for (unsigned f = 1; f < 20; f++) {
                for (int k = 0; k < 50; k++) {
                        uint64_t d = mqtt_backoff_delay(min, max, f);
                        g_assert_cmpuint(d, >=, expected / 2);
                        g_assert_cmpuint(d, <=, expected);
                }
                expected = MIN(expected * 2, max);
        }
        /* Jitter really varies. */
        uint64_t a = mqtt_backoff_delay(min, max, 5), differs = 0;
        for (int k = 0; k < 20; k++)
                differs += mqtt_backoff_delay(min, max, 5) != a;
        g_assert_cmpuint(differs, >, 0);
        /* A max below min is treated as min; huge failure counts do not overflow. */
        g_assert_cmpuint(mqtt_backoff_delay(SEC, MSEC, 3), <=, SEC);
        g_assert_cmpuint(mqtt_backoff_delay(min, max, 1000000), <=, max);
}

static void test_errno_mapping(void)
{
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_SUCCESS), ==, 0);
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_NO_CONN), ==, -ENOTCONN);
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_CONN_LOST), ==, -ECONNRESET);
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_KEEPALIVE), ==, -ETIMEDOUT);
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_CONN_REFUSED), ==, -EACCES);
        errno = ECONNREFUSED;
        g_assert_cmpint(mqtt_error_to_errno(MOSQ_ERR_ERRNO), ==, -ECONNREFUSED);
        g_assert_cmpint(mqtt_error_to_errno(12345), ==, -EIO);
}

static void test_new_refuses_bad_settings(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        MqttLoop *l = NULL;
        MqttLoopSettings s = {.url = "mqtt://127.0.0.1:1", .clean_session = true};

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        s.url = "mqtt://";
        g_assert_cmpint(mqtt_loop_new(e, &s, NULL, NULL, &l), ==, -EINVAL);
        s.url = "mqtt://127.0.0.1:1";
        s.keepalive_sec = 2;
        g_assert_cmpint(mqtt_loop_new(e, &s, NULL, NULL, &l), ==, -EINVAL);
        s.keepalive_sec = 0;
        s.clean_session = false; /* a persistent session needs a fixed client id */
        g_assert_cmpint(mqtt_loop_new(e, &s, NULL, NULL, &l), ==, -EINVAL);
        s.client_id = "fixed";
        g_assert_cmpint(mqtt_loop_new(e, &s, NULL, NULL, &l), ==, 0);
        g_assert_cmpstr(mqtt_loop_client_id(l), ==, "fixed");
        g_assert_false(mqtt_loop_is_connected(l));
        g_assert_cmpint(mqtt_loop_publish(l, "a/b", "x", 1, 1, false, NULL), ==, -ENOTCONN);
        g_assert_cmpint(mqtt_loop_publish(l, "a/#", "x", 1, 1, false, NULL), ==, -EINVAL);
        g_assert_cmpint(mqtt_loop_subscribe(l, "a/#/b", 1, NULL), ==, -EINVAL);
        g_assert_cmpint(mqtt_loop_subscribe(l, "a/#", 3, NULL), ==, -EINVAL);
        l = mqtt_loop_free(l);
}

/* ---- Against a real broker ------------------------------------------------------------------ */

static uint64_t attempts(MqttLoop *l)
{
        MqttLoopStats st;
        mqtt_loop_get_stats(l, &st);
        return st.attempts;
}

typedef struct Probe {
        MqttLoop *l;
        const char *resubscribe; /* pattern to subscribe to on every connection */
        unsigned connected, disconnected, messages, published, subscribed;
        int last_disconnect_error;
        int last_granted;
        char *last_topic;
        GByteArray *last_payload;
        bool free_on_message;
} Probe;

static void probe_connected(MqttLoop *l, void *userdata)
{
        Probe *p = userdata;
        p->connected++;
        if (p->resubscribe)
                g_assert_cmpint(mqtt_loop_subscribe(l, p->resubscribe, 1, NULL), ==, 0);
}

static void probe_disconnected(MqttLoop *l, int error, void *userdata)
{
        Probe *p = userdata;
        p->disconnected++;
        p->last_disconnect_error = error;
        g_assert_false(mqtt_loop_is_connected(l));
        g_assert_cmpint(mqtt_loop_publish(l, "x/y", "z", 1, 1, false, NULL), ==, -ENOTCONN);
}

static void probe_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                          bool retained, void *userdata)
{
        Probe *p = userdata;
        p->messages++;
        g_free(p->last_topic);
        p->last_topic = g_strdup(topic);
        if (p->last_payload)
                g_byte_array_unref(p->last_payload);
        p->last_payload = g_byte_array_new();
        g_byte_array_append(p->last_payload, payload, len);
        if (p->free_on_message)
                p->l = mqtt_loop_free(p->l);
}

static void probe_published(MqttLoop *l, int mid, void *userdata)
{
        Probe *p = userdata;
        p->published++;
}

static void probe_subscribed(MqttLoop *l, int mid, int n, const int *granted, void *userdata)
{
        Probe *p = userdata;
        p->subscribed++;
        p->last_granted = n > 0 ? granted[0] : -1;
}

static const MqttLoopCallbacks probe_callbacks = {
        .connected = probe_connected,
        .disconnected = probe_disconnected,
        .message = probe_message,
        .published = probe_published,
        .subscribed = probe_subscribed,
};

static void probe_clear(Probe *p)
{
        p->l = mqtt_loop_free(p->l);
        g_free(p->last_topic);
        if (p->last_payload)
                g_byte_array_unref(p->last_payload);
        memset(p, 0, sizeof(*p));
}

static MqttLoop *probe_new(sd_event *e, Probe *p, const char *url, const char *user, const char *password)
{
        MqttLoopSettings s = {
                .url = url,
                .username = user,
                .password = password,
                .clean_session = true,
                .keepalive_sec = 5,
                .backoff_min_usec = 50 * MSEC,
                .backoff_max_usec = 400 * MSEC,
                .connect_timeout_usec = 2 * SEC,
        };
        g_assert_cmpint(mqtt_loop_new(e, &s, &probe_callbacks, p, &p->l), ==, 0);
        return p->l;
}

static void test_live_roundtrip_and_restart(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Probe p = {};
        MqttLoopStats st;
        int port;

        if (!test_broker_available(false))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);

        /* Start the client first: nothing listens yet, so attempts fail and are retried. */
        port = test_free_port();
        g_autofree char *url = g_strdup_printf("mqtt://127.0.0.1:%d", port);
        probe_new(e, &p, url, NULL, NULL);
        p.resubscribe = "t/#";
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, attempts(p.l) >= 3, 5 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(p.l), ==, -ECONNREFUSED);
        g_assert_cmpuint(p.connected, ==, 0);

        /* Now the broker comes up on that port. */
        test_broker_start_port(&b, false, port);
        g_assert_true(TEST_RUN_UNTIL(e, p.subscribed >= 1, 5 * SEC));
        g_assert_cmpuint(p.connected, ==, 1);
        g_assert_cmpint(p.last_granted, ==, 1);
        g_assert_true(mqtt_loop_is_connected(p.l));
        g_assert_cmpint(mqtt_loop_last_error(p.l), ==, 0);

        /* Our own publish comes back through the subscription. */
        const char payload[] = {'a', 0, 'b', (char)0xff};
        int mid = 0;
        g_assert_cmpint(mqtt_loop_publish(p.l, "t/one", payload, sizeof(payload), 1, false, &mid), ==, 0);
        g_assert_cmpint(mid, >, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.messages >= 1 && p.published >= 1, 5 * SEC));
        g_assert_cmpstr(p.last_topic, ==, "t/one");
        g_assert_cmpmem(p.last_payload->data, p.last_payload->len, payload, sizeof(payload));

        /* A big payload crosses in pieces (EPOLLOUT path). */
        g_autofree char *big = g_malloc(4 * 1024 * 1024);
        memset(big, 'x', 4 * 1024 * 1024);
        g_assert_cmpint(mqtt_loop_publish(p.l, "t/big", big, 4 * 1024 * 1024, 1, false, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.messages >= 2, 10 * SEC));
        g_assert_cmpstr(p.last_topic, ==, "t/big");
        g_assert_cmpuint(p.last_payload->len, ==, 4 * 1024 * 1024);

        /* The broker restarts: disconnected, then connected again with the subscription renewed. */
        test_broker_restart(&b);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 2 && p.subscribed >= 2, 10 * SEC));
        g_assert_cmpuint(p.disconnected, ==, 1);
        g_assert_cmpint(p.last_disconnect_error, <, 0);
        g_assert_cmpint(mqtt_loop_publish(p.l, "t/two", "2", 1, 1, false, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.messages >= 3, 5 * SEC));
        g_assert_cmpstr(p.last_topic, ==, "t/two");

        mqtt_loop_get_stats(p.l, &st);
        g_assert_cmpuint(st.connects, ==, 2);
        g_assert_cmpuint(st.disconnects, ==, 1);
        g_assert_cmpuint(st.messages_in, ==, 3);

        /* A forced reconnection (new network) works at once. */
        g_assert_cmpint(mqtt_loop_reconnect(p.l), ==, 0);
        g_assert_cmpuint(p.disconnected, ==, 2);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 3, 5 * SEC));

        /* Stop: one disconnected(0), and no reconnection afterwards. */
        mqtt_loop_stop(p.l);
        g_assert_cmpuint(p.disconnected, ==, 3);
        g_assert_cmpint(p.last_disconnect_error, ==, 0);
        (void)TEST_RUN_UNTIL(e, false, 1 * SEC);
        g_assert_cmpuint(p.connected, ==, 3);
        g_assert_false(mqtt_loop_is_connected(p.l));

        /* And start again. */
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 4, 5 * SEC));

        /* Freed from inside its own message callback. */
        p.free_on_message = true;
        g_assert_cmpint(mqtt_loop_publish(p.l, "t/last", "x", 1, 0, false, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.l == NULL, 5 * SEC));
        (void)TEST_RUN_UNTIL(e, false, 200 * MSEC);

        probe_clear(&p);
        test_broker_free(&b);
}

static void test_live_refused_credentials(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Probe p = {}, q = {};

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);

        probe_new(e, &p, b.url, b.admin_user, "wrong-password");
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, attempts(p.l) >= 2, 5 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(p.l), ==, -EACCES);
        g_assert_cmpuint(p.connected, ==, 0);
        g_assert_cmpuint(p.disconnected, ==, 0);

        /* New credentials: taken at the next attempt. */
        g_assert_cmpint(mqtt_loop_set_credentials(p.l, b.admin_user, b.admin_password), ==, 0);
        g_assert_cmpint(mqtt_loop_reconnect(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 1, 5 * SEC));

        /* No credentials at all. */
        probe_new(e, &q, b.url, NULL, NULL);
        g_assert_cmpint(mqtt_loop_start(q.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, attempts(q.l) >= 2, 5 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(q.l), ==, -EACCES);

        probe_clear(&p);
        probe_clear(&q);
        test_broker_free(&b);
}

static void test_live_connect_timeout(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t n = sizeof(a);
        Probe p = {};
        int fd;

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        /* Something that accepts TCP (the kernel does, into the backlog) but never answers MQTT. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
        g_assert_cmpint(listen(fd, 16), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &n), ==, 0);
        g_autofree char *url = g_strdup_printf("mqtt://127.0.0.1:%d", ntohs(a.sin_port));

        MqttLoopSettings s = {
                .url = url,
                .clean_session = true,
                .backoff_min_usec = 50 * MSEC,
                .backoff_max_usec = 100 * MSEC,
                .connect_timeout_usec = 300 * MSEC,
        };
        g_assert_cmpint(mqtt_loop_new(e, &s, &probe_callbacks, &p, &p.l), ==, 0);
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, attempts(p.l) >= 3, 10 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(p.l), ==, -ETIMEDOUT);
        g_assert_cmpuint(p.connected, ==, 0);
        probe_clear(&p);
        close(fd);
}

static bool run_openssl(const char *dir, const char *cmd)
{
        g_autofree char *full = g_strdup_printf("cd %s && openssl %s >/dev/null 2>&1", dir, cmd);
        const char *argv[] = {"/bin/sh", "-c", full, NULL};
        int status = 0;
        return g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, NULL, NULL, &status, NULL) &&
               g_spawn_check_wait_status(status, NULL);
}

/* mqtts:// with a private CA: the handshake runs non-blocking inside the loop, and a server
 * certificate from another CA is refused. */
static void test_live_tls(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(GError) err = NULL;
        g_autofree char *openssl = g_find_program_in_path("openssl");
        g_autofree char *bin = test_broker_binary();
        g_autofree char *dir = NULL;
        Probe p = {}, q = {};
        GPid pid;
        int port;

        if (!openssl || !bin) {
                g_test_skip("needs openssl and mosquitto");
                return;
        }
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        dir = g_dir_make_tmp("nm-test-tls-XXXXXX", &err);
        g_assert_no_error(err);
        g_assert_true(run_openssl(dir, "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                       "-keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca"));
        g_assert_true(run_openssl(dir, "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                       "-keyout other.key -out other.crt -days 2 -subj /CN=other-ca"));
        g_assert_true(run_openssl(dir,
                                  "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
                                  "-out srv.csr -subj /CN=127.0.0.1"));
        g_autofree char *ext = g_build_filename(dir, "ext", NULL);
        g_assert_true(g_file_set_contents(ext, "subjectAltName=IP:127.0.0.1\n", -1, NULL));
        g_assert_true(run_openssl(dir, "x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                                       "-out srv.crt -days 2 -extfile ext"));

        port = test_free_port();
        g_autofree char *conf =
                g_strdup_printf("%slistener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                "cafile %s/ca.crt\ncertfile %s/srv.crt\nkeyfile %s/srv.key\n",
                                geteuid() == 0 ? "user root\n" : "", port, dir, dir, dir);
        g_autofree char *conf_file = g_build_filename(dir, "mosquitto.conf", NULL);
        g_assert_true(g_file_set_contents(conf_file, conf, -1, NULL));
        g_autofree char *cmd = g_strdup_printf("exec %s -c %s >%s/broker.log 2>&1", bin, conf_file, dir);
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        g_assert_true(
                g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, &err));
        for (int i = 0; i < 500 && !test_port_open(port); i++)
                g_usleep(10000);

        g_autofree char *url = g_strdup_printf("mqtts://127.0.0.1:%d", port);
        g_autofree char *ca = g_build_filename(dir, "ca.crt", NULL);
        g_autofree char *other = g_build_filename(dir, "other.crt", NULL);
        MqttLoopSettings s = {
                .url = url,
                .clean_session = true,
                .backoff_min_usec = 50 * MSEC,
                .backoff_max_usec = 200 * MSEC,
                .ca_file = ca,
        };
        g_assert_cmpint(mqtt_loop_new(e, &s, &probe_callbacks, &p, &p.l), ==, 0);
        p.resubscribe = "tls/#";
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.subscribed >= 1, 10 * SEC));
        g_assert_cmpint(mqtt_loop_publish(p.l, "tls/x", "secret", 6, 1, false, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.messages >= 1, 5 * SEC));
        g_assert_cmpstr(p.last_topic, ==, "tls/x");

        /* The wrong CA: never connected. */
        s.ca_file = other;
        g_assert_cmpint(mqtt_loop_new(e, &s, &probe_callbacks, &q, &q.l), ==, 0);
        g_assert_cmpint(mqtt_loop_start(q.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, attempts(q.l) >= 3, 10 * SEC));
        g_assert_cmpuint(q.connected, ==, 0);
        g_assert_cmpint(mqtt_loop_last_error(q.l), ==, -EKEYREJECTED);

        probe_clear(&p);
        probe_clear(&q);
        (void)kill(pid, SIGTERM);
        (void)waitpid(pid, NULL, 0);
        g_autofree char *rm = g_strdup_printf("rm -rf %s", dir);
        g_assert_cmpint(system(rm), ==, 0);
}

/* Slow (about 15 s): a broker that stops answering is noticed through keepalives. */
static void test_live_keepalive(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Probe p = {};

        if (!g_test_slow()) {
                g_test_skip("slow; run with -m slow");
                return;
        }
        if (!test_broker_available(false))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, false);
        probe_new(e, &p, b.url, NULL, NULL);
        g_assert_cmpint(mqtt_loop_start(p.l), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 1, 5 * SEC));

        g_assert_cmpint(kill(b.pid, SIGSTOP), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.disconnected >= 1, 30 * SEC));
        g_assert_cmpint(p.last_disconnect_error, ==, -ETIMEDOUT);
        g_assert_cmpint(kill(b.pid, SIGCONT), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, p.connected >= 2, 10 * SEC));

        probe_clear(&p);
        test_broker_free(&b);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        if (g_getenv("NM_TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);
        /* A test that fails must not leave a broker behind; SIGPIPE on a dead broker is an error
         * return, not a crash. */
        signal(SIGPIPE, SIG_IGN);
        g_test_add_func("/mqtt-loop/url-parse", test_url_parse);
        g_test_add_func("/mqtt-loop/backoff", test_backoff);
        g_test_add_func("/mqtt-loop/errno", test_errno_mapping);
        g_test_add_func("/mqtt-loop/new-refuses-bad-settings", test_new_refuses_bad_settings);
        g_test_add_func("/mqtt-loop/live/roundtrip-restart", test_live_roundtrip_and_restart);
        g_test_add_func("/mqtt-loop/live/refused-credentials", test_live_refused_credentials);
        g_test_add_func("/mqtt-loop/live/connect-timeout", test_live_connect_timeout);
        g_test_add_func("/mqtt-loop/live/tls", test_live_tls);
        g_test_add_func("/mqtt-loop/live/keepalive", test_live_keepalive);
        return g_test_run();
}
