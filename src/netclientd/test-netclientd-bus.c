/* Proves the D-Bus methods of org.netmaker.Client check their arguments before anything else and
 * fail with stable error names and messages that name the argument, quote the value (never the
 * token's secret) and say what is accepted; and that the properties read back. The manager's
 * objects are served on one end of a socket pair and called from the other (no bus daemon). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon-config.h"
#include "log.h"
#include "manager.h"
#include "token.h"

typedef struct Fixture {
        char *dir;
        Config *config;
        Manager *m;
        sd_event *event;
        sd_bus *client;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) e = NULL;
        int s[2];
        sd_id128_t id;

        f->dir = g_dir_make_tmp("test-netclientd-bus-XXXXXX", &e);
        g_assert_no_error(e);
        f->config = config_new();
        g_free(f->config->state_dir);
        f->config->state_dir = g_strdup(f->dir);
        g_assert_cmpint(manager_new(f->config, &f->m), ==, 0);
        g_assert_cmpint(manager_load_state(f->m), ==, 0);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->m->event = sd_event_ref(f->event);

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);
        g_assert_cmpint(sd_bus_new(&f->m->bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->m->bus, s[0], s[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(f->m->bus, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_start(f->m->bus), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->m->bus, f->event, 0), >=, 0);
        g_assert_cmpint(manager_bus_register(f->m), ==, 0);

        g_assert_cmpint(sd_bus_new(&f->client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->client, s[1], s[1]), >=, 0);
        g_assert_cmpint(sd_bus_start(f->client), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->client, f->event, 0), >=, 0);
}

static void teardown(Fixture *f, gconstpointer data)
{
        sd_bus_flush_close_unref(f->client);
        manager_free(f->m);
        sd_event_unref(f->event);
        config_free(f->config);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
}

typedef struct Reply {
        bool done;
        char *error_name;
        char *error_message;
        sd_bus_message *msg;
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Reply *r = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        r->done = true;
        if (e) {
                r->error_name = g_strdup(e->name);
                r->error_message = g_strdup(e->message);
        } else
                r->msg = sd_bus_message_ref(m);
        return 0;
}

static void reply_clear(Reply *r)
{
        g_free(r->error_name);
        g_free(r->error_message);
        sd_bus_message_unref(r->msg);
        memset(r, 0, sizeof(*r));
}

/* Sends `call` and runs the loop until the answer is in. */
static void run_call(Fixture *f, sd_bus_message *call, Reply *r)
{
        memset(r, 0, sizeof(*r));
        g_assert_cmpint(sd_bus_call_async(f->client, NULL, call, on_reply, r, 5 * 1000000ULL), >=, 0);
        for (int i = 0; i < 10000 && !r->done; i++)
                g_assert_cmpint(sd_event_run(f->event, 100 * 1000), >=, 0);
        g_assert_true(r->done);
}

static sd_bus_message *new_call(Fixture *f, const char *member)
{
        sd_bus_message *m = NULL;
        g_assert_cmpint(sd_bus_message_new_method_call(f->client, &m, NULL, NETCLIENT_OBJECT_PATH,
                                                       NETCLIENT_INTERFACE, member),
                        >=, 0);
        return m;
}

/* Join(token, {key: value}) with one option of the given type (or none when key is NULL). */
static void join(Fixture *f, const char *token, const char *key, char type, const void *value, Reply *r)
{
        sd_bus_message *m = new_call(f, "Join");
        g_assert_cmpint(sd_bus_message_append(m, "s", token), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
        if (key) {
                char sig[2] = {type, 0};
                g_assert_cmpint(sd_bus_message_open_container(m, 'e', "sv"), >=, 0);
                g_assert_cmpint(sd_bus_message_append(m, "s", key), >=, 0);
                g_assert_cmpint(sd_bus_message_open_container(m, 'v', sig), >=, 0);
                g_assert_cmpint(sd_bus_message_append_basic(m, type, value), >=, 0);
                g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
                g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        }
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        run_call(f, m, r);
        sd_bus_message_unref(m);
}

static void assert_error(Reply *r, const char *name, const char *const *mentions)
{
        g_assert_nonnull(r->error_name);
        g_assert_cmpstr(r->error_name, ==, name);
        for (const char *const *s = mentions; s && *s; s++)
                if (!strstr(r->error_message, *s))
                        g_error("\"%s\" not in \"%s\"", *s, r->error_message);
}

static char *make_token(const char *value)
{
        NmKey k = {};
        for (size_t i = 0; i < sizeof(k.b); i++)
                k.b[i] = (uint8_t)i;
        return nm_token_encode("http://198.18.0.254:9", value, &k, NULL);
}

static void test_join_arguments(Fixture *f, gconstpointer data)
{
        static const char secret[] = "QWERTYUIOPASDFGHJKLZXCVBNM234567";
        g_autofree char *token = make_token(secret);
        Reply r;

        join(f, "", NULL, 0, NULL, &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument", (const char *[]){"empty", NULL});
        reply_clear(&r);

        join(f, "definitely not a token", NULL, 0, NULL, &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument", (const char *[]){"base64url", NULL});
        reply_clear(&r);

        /* A token whose key value is malformed: the error must not quote the secret. */
        g_autofree char *bad_value = g_strdup(secret);
        bad_value[5] = '1';
        g_autofree char *bad = make_token(bad_value);
        join(f, bad, NULL, 0, NULL, &r);
        g_assert_cmpstr(r.error_name, ==, "org.netmaker.Client.Error.InvalidArgument");
        g_assert_null(strstr(r.error_message, "QWERT"));
        reply_clear(&r);

        join(f, token, "colour", 's', "blue", &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument",
                     (const char *[]){"\"colour\"", "\"name\"", "\"listen-port\"", NULL});
        reply_clear(&r);

        uint32_t five = 5;
        join(f, token, "name", 'u', &five, &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument",
                     (const char *[]){"\"name\"", "string", NULL});
        reply_clear(&r);

        join(f, token, "name", 's', "Not_A_Label", &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument", (const char *[]){"Not_A_Label", NULL});
        reply_clear(&r);

        uint32_t big = 70000;
        join(f, token, "listen-port", 'u', &big, &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument",
                     (const char *[]){"70000", "1-65535", NULL});
        reply_clear(&r);

        join(f, token, "listen-port", 's', "51821", &r);
        assert_error(&r, "org.netmaker.Client.Error.InvalidArgument", (const char *[]){"listen-port", NULL});
        reply_clear(&r);

        /* Nothing was started by any of these. */
        g_assert_cmpint(manager_get_state(f->m), ==, MANAGER_STATE_UNREGISTERED);
        g_assert_false(f->m->have_identity);
}

static void test_network_arguments(Fixture *f, gconstpointer data)
{
        static const char *const methods[] = {"Leave", "Connect", "Disconnect"};
        Reply r;

        for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
                sd_bus_message *m = new_call(f, methods[i]);
                g_assert_cmpint(sd_bus_message_append(m, "s", "Bad/Name"), >=, 0);
                run_call(f, m, &r);
                sd_bus_message_unref(m);
                assert_error(&r, "org.netmaker.Client.Error.InvalidArgument",
                             (const char *[]){"\"Bad/Name\"", "a-z", NULL});
                reply_clear(&r);
        }

        /* Well-formed but unknown (the caller here is our own uid, so no polkit is asked). */
        sd_bus_message *m = new_call(f, "Connect");
        g_assert_cmpint(sd_bus_message_append(m, "s", "ghost"), >=, 0);
        run_call(f, m, &r);
        sd_bus_message_unref(m);
        assert_error(&r, "org.netmaker.Client.Error.NotFound", (const char *[]){"\"ghost\"", NULL});
        reply_clear(&r);

        m = new_call(f, "Pull");
        run_call(f, m, &r);
        sd_bus_message_unref(m);
        assert_error(&r, "org.netmaker.Client.Error.NotRegistered", NULL);
        reply_clear(&r);

        /* A wrong signature is the bus library's InvalidArgs. */
        m = new_call(f, "Leave");
        g_assert_cmpint(sd_bus_message_append(m, "u", 5), >=, 0);
        run_call(f, m, &r);
        sd_bus_message_unref(m);
        assert_error(&r, SD_BUS_ERROR_INVALID_ARGS, NULL);
        reply_clear(&r);
}

static void test_properties(Fixture *f, gconstpointer data)
{
        sd_bus_message *m = NULL;
        const char *state = NULL;
        Reply r;

        g_assert_cmpint(sd_bus_message_new_method_call(f->client, &m, NULL, NETCLIENT_OBJECT_PATH,
                                                       "org.freedesktop.DBus.Properties", "Get"),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_append(m, "ss", NETCLIENT_INTERFACE, "State"), >=, 0);
        run_call(f, m, &r);
        sd_bus_message_unref(m);
        g_assert_null(r.error_name);
        g_assert_cmpint(sd_bus_message_read(r.msg, "v", "s", &state), >=, 0);
        g_assert_cmpstr(state, ==, "unregistered");
        reply_clear(&r);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        log_set_max_level(LOG_WARNING);
#define ADD(path, fn) g_test_add("/netclientd/bus/" path, Fixture, NULL, setup, fn, teardown)
        ADD("join-arguments", test_join_arguments);
        ADD("network-arguments", test_network_arguments);
        ADD("properties", test_properties);
        return g_test_run();
}
