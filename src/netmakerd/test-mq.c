/* Proves, against a real Mosquitto with dynamic security, that netmakerd's MQTT side makes host
 * accounts that can read only their own message topic and write only their own report topic and
 * connect only with their own client id (so no host can take another's session), delivers sealed
 * messages a host can open, takes sealed reports and drops everything else, survives a broker
 * restart (accounts kept, `connected` again, pending requests failed), that two servers sharing a
 * broker never complete each other's requests, and that the listing of host accounts reports
 * every "host-<uuid>" client and role, page by page, with its binding and its server. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "dynsec.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "mq.h"
#include "mqtt-loop.h"
#include "seal.h"
#include "test-broker.h"

#define MSEC   1000ULL
#define SEC    (1000 * MSEC)
#define SERVER "nmtest"

typedef struct Host {
        char *id;
        char *password;
        NmKey pub, priv;
        bool known; /* to the server's host_key callback */
} Host;

typedef struct Server {
        Mq *mq;
        NmKey pub, priv;
        Host *hosts[4];
        unsigned connected;
        unsigned reports;
        char *last_report_host;
        NmReportType last_report_type;
        char *last_report_version;
        /* Set before server_start() (0/NULL: SERVER, the default page size). */
        const char *name;
        unsigned page_size;
} Server;

typedef struct Op {
        unsigned calls;
        int r;
        char *message;
} Op;

static void op_done(int r, const char *message, void *userdata)
{
        Op *op = userdata;
        op->calls++;
        op->r = r;
        g_free(op->message);
        op->message = g_strdup(message);
}

static void op_clear(Op *op)
{
        g_free(op->message);
        memset(op, 0, sizeof(*op));
}

static void host_init(Host *h)
{
        h->id = nm_uuid_new();
        h->password = nm_random_token(24);
        g_assert_cmpint(nm_key_generate_box(&h->priv, &h->pub), ==, 0);
        h->known = true;
}

static void host_clear(Host *h)
{
        g_free(h->id);
        g_free(h->password);
}

static void server_connected(void *userdata)
{
        Server *s = userdata;
        s->connected++;
}

static int server_host_key(void *userdata, const char *host_id, NmKey *ret)
{
        Server *s = userdata;
        for (size_t i = 0; i < G_N_ELEMENTS(s->hosts); i++)
                if (s->hosts[i] && s->hosts[i]->known && streq0(s->hosts[i]->id, host_id)) {
                        *ret = s->hosts[i]->pub;
                        return 0;
                }
        return -ENOENT;
}

static void server_report(void *userdata, const char *host_id, NmReport *report)
{
        Server *s = userdata;
        s->reports++;
        g_free(s->last_report_host);
        s->last_report_host = g_strdup(host_id);
        s->last_report_type = report->type;
        g_free(s->last_report_version);
        s->last_report_version = g_strdup(report->version);
}

static const MqCallbacks server_callbacks = {
        .connected = server_connected,
        .host_key = server_host_key,
        .report = server_report,
};

static void server_start(Server *s, sd_event *e, TestBroker *b, uint64_t dynsec_timeout)
{
        if (nm_key_is_zero(&s->priv))
                g_assert_cmpint(nm_key_generate_box(&s->priv, &s->pub), ==, 0);
        MqSettings settings = {
                .url = b->url,
                .username = b->admin_user,
                .password = b->admin_password,
                .server_name = s->name ?: SERVER,
                .server_public = s->pub,
                .server_secret = s->priv,
                .dynsec_timeout_usec = dynsec_timeout,
                .backoff_max_usec = 1 * SEC,
                .list_page_size = s->page_size,
        };
        g_assert_cmpint(mq_new(e, &settings, &server_callbacks, s, &s->mq), ==, 0);
}

static void server_clear(Server *s)
{
        s->mq = mq_free(s->mq);
        g_free(s->last_report_host);
        g_free(s->last_report_version);
}

/* A host's MQTT client, made of the same loop netclientd uses. */
typedef struct Client {
        MqttLoop *l;
        unsigned connected, disconnected, messages, subscribed;
        int granted[8];
        char *last_topic;
        GBytes *last_payload;
} Client;

static void client_connected(MqttLoop *l, void *userdata)
{
        ((Client *)userdata)->connected++;
}

static void client_disconnected(MqttLoop *l, int error, void *userdata)
{
        ((Client *)userdata)->disconnected++;
}

static void client_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                           bool retained, void *userdata)
{
        Client *c = userdata;
        c->messages++;
        g_free(c->last_topic);
        c->last_topic = g_strdup(topic);
        if (c->last_payload)
                g_bytes_unref(c->last_payload);
        c->last_payload = g_bytes_new(payload, len);
}

static void client_subscribed(MqttLoop *l, int mid, int n, const int *granted, void *userdata)
{
        Client *c = userdata;
        if (c->subscribed < G_N_ELEMENTS(c->granted))
                c->granted[c->subscribed] = n > 0 ? granted[0] : -1;
        c->subscribed++;
}

static const MqttLoopCallbacks client_callbacks = {
        .connected = client_connected,
        .disconnected = client_disconnected,
        .message = client_message,
        .subscribed = client_subscribed,
};

/* `client_id` NULL: a random one. */
static void client_start_as(Client *c, sd_event *e, TestBroker *b, const char *user, const char *password,
                            const char *client_id)
{
        MqttLoopSettings s = {
                .url = b->url,
                .client_id = client_id,
                .username = user,
                .password = password,
                .clean_session = true,
                .backoff_min_usec = 50 * MSEC,
                .backoff_max_usec = 200 * MSEC,
        };
        g_assert_cmpint(mqtt_loop_new(e, &s, &client_callbacks, c, &c->l), ==, 0);
        g_assert_cmpint(mqtt_loop_start(c->l), ==, 0);
}

/* As a host connects: its user name is its client id. */
static void client_start(Client *c, sd_event *e, TestBroker *b, const char *user, const char *password)
{
        client_start_as(c, e, b, user, password, user);
}

static void client_clear(Client *c)
{
        c->l = mqtt_loop_free(c->l);
        g_free(c->last_topic);
        if (c->last_payload)
                g_bytes_unref(c->last_payload);
        memset(c, 0, sizeof(*c));
}

static uint64_t client_attempts(Client *c)
{
        MqttLoopStats st;
        mqtt_loop_get_stats(c->l, &st);
        return st.attempts;
}

/* Until the client has tried `n` more times; it must never have got in. */
static void client_refused(Client *c, sd_event *e, unsigned n)
{
        uint64_t before = client_attempts(c);
        g_assert_true(TEST_RUN_UNTIL(e, client_attempts(c) >= before + n, 5 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(c->l), ==, -EACCES);
        g_assert_cmpuint(c->connected, ==, 0);
}

static void publish_report(Client *c, Server *s, Host *h, const char *topic_host_id, const NmKey *seal_key)
{
        g_autoptr(NmReport) r = nm_report_new(NM_REPORT_CHECKIN);
        r->version = g_strdup("9.9.9");
        g_autofree char *json = nm_report_to_json(r);
        g_autoptr(GBytes) sealed = nm_seal(json, strlen(json), seal_key ?: &s->pub, &h->priv);
        g_autofree char *topic = nm_topic_host_report(SERVER, topic_host_id ?: h->id);
        gsize n;
        const void *d = g_bytes_get_data(sealed, &n);
        g_assert_cmpint(mqtt_loop_publish(c->l, topic, d, n, 1, false, NULL), ==, 0);
}

static JsonObject *dynsec_state(TestBroker *b)
{
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(b->dynsec_file, &text, NULL, NULL));
        JsonObject *o = nm_json_parse_object(text, -1, NULL);
        g_assert_nonnull(o);
        return o;
}

static bool dynsec_has(JsonObject *state, const char *list, const char *key, const char *name)
{
        JsonArray *a = json_object_get_array_member(state, list);
        for (guint i = 0; a && i < json_array_get_length(a); i++)
                if (streq0(json_object_get_string_member(json_array_get_object_element(a, i), key), name))
                        return true;
        return false;
}

static void test_accounts_messages_reports(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Server s = {};
        Host ha = {}, hb = {}, hc = {};
        Client ca = {}, cb = {}, spy = {};
        Op op = {}, op2 = {};
        MqStats st;

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);
        host_init(&ha);
        host_init(&hb);
        host_init(&hc);
        s.hosts[0] = &ha;
        s.hosts[1] = &hb;
        s.hosts[2] = &hc;

        server_start(&s, e, &b, 0);
        /* Before the connection is up: refused at once, no callback. */
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, ha.password, op_done, &op), ==, -ENOTCONN);
        g_assert_true(TEST_RUN_UNTIL(e, s.connected == 1, 10 * SEC));
        g_assert_true(mq_is_connected(s.mq));
        g_assert_cmpuint(op.calls, ==, 0);

        /* The broker now denies by default, and our admin has its role. */
        {
                g_autoptr(JsonObject) state = dynsec_state(&b);
                JsonObject *def = json_object_get_object_member(state, "defaultACLAccess");
                g_assert_false(json_object_get_boolean_member(def, "subscribe"));
                g_assert_false(json_object_get_boolean_member(def, "publishClientSend"));
                g_assert_true(dynsec_has(state, "roles", "rolename", "netmakerd-" SERVER));
        }

        /* Bad arguments. */
        g_assert_cmpint(mq_host_account_create(s.mq, "not-a-uuid", "pw", op_done, &op), ==, -EINVAL);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, "", op_done, &op), ==, -EINVAL);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, "with space", op_done, &op), ==, -EINVAL);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, NULL, op_done, &op), ==, -EINVAL);

        /* Create A twice (the second as a retry after a lost answer would be), and B. */
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, "first-password", op_done, &op), ==, 0);
        g_assert_cmpuint(op.calls, ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 1, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, ha.password, op_done, &op), ==, 0);
        g_assert_cmpint(mq_host_account_create(s.mq, hb.id, hb.password, op_done, &op2), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 2 && op2.calls == 1, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);
        g_assert_cmpint(op2.r, ==, 0);
        {
                g_autoptr(JsonObject) state = dynsec_state(&b);
                g_autofree char *na = g_strconcat("host-", ha.id, NULL);
                g_assert_true(dynsec_has(state, "clients", "username", na));
                g_assert_true(dynsec_has(state, "roles", "rolename", na));
        }

        /* A logs in with the password of the second create. */
        g_autofree char *ua = g_strconcat("host-", ha.id, NULL);
        g_autofree char *ub = g_strconcat("host-", hb.id, NULL);
        client_start(&ca, e, &b, ua, ha.password);
        client_start(&cb, e, &b, ub, hb.password);
        g_assert_true(TEST_RUN_UNTIL(e, ca.connected == 1 && cb.connected == 1, 10 * SEC));

        /* (a) its own topic: granted; (b) B's topic, everything, the reports: refused (0x80). */
        g_autofree char *msg_a = nm_topic_host_msg(SERVER, ha.id);
        g_autofree char *msg_b = nm_topic_host_msg(SERVER, hb.id);
        g_autofree char *reports = nm_topic_reports(SERVER);
        g_assert_cmpint(mqtt_loop_subscribe(ca.l, msg_a, 1, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, ca.subscribed == 1, 5 * SEC));
        g_assert_cmpint(mqtt_loop_subscribe(ca.l, msg_b, 1, NULL), ==, 0);
        g_assert_cmpint(mqtt_loop_subscribe(ca.l, "#", 1, NULL), ==, 0);
        g_assert_cmpint(mqtt_loop_subscribe(ca.l, reports, 1, NULL), ==, 0);
        g_assert_cmpint(mqtt_loop_subscribe(cb.l, msg_b, 1, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, ca.subscribed == 4 && cb.subscribed == 1, 5 * SEC));
        g_assert_cmpint(ca.granted[0], ==, 1);
        g_assert_cmpint(ca.granted[1], ==, 0x80);
        g_assert_cmpint(ca.granted[2], ==, 0x80);
        g_assert_cmpint(ca.granted[3], ==, 0x80);
        g_assert_cmpint(cb.granted[0], ==, 1);

        /* A's password with B's client id (every peer of B sees it): refused, so B keeps its session
         * (unbound, the broker would have cut B off for the newcomer); nor may A use any id but its own. */
        {
                Client imp = {}, other = {};
                client_start_as(&imp, e, &b, ua, ha.password, ub);
                client_start_as(&other, e, &b, ua, ha.password, NULL);
                client_refused(&imp, e, 3);
                client_refused(&other, e, 2);
                client_clear(&imp);
                client_clear(&other);
                (void)TEST_RUN_UNTIL(e, false, 200 * MSEC);
                g_assert_cmpuint(cb.disconnected, ==, 0);
                g_assert_cmpuint(ca.disconnected, ==, 0);
                g_assert_true(mqtt_loop_is_connected(cb.l));
        }

        /* The server's sealed message reaches A, opens with A's key and the server's. */
        g_autoptr(NmMessage) m = nm_message_new(NM_MSG_NETWORK_LEFT, 7);
        m->network = g_strdup("office");
        g_assert_cmpint(mq_publish_host(s.mq, ha.id, &ha.pub, m), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, ca.messages == 1, 5 * SEC));
        g_assert_cmpstr(ca.last_topic, ==, msg_a);
        {
                gsize n;
                const guint8 *d = g_bytes_get_data(ca.last_payload, &n);
                g_autoptr(GError) err = NULL;
                g_autoptr(GBytes) plain = nm_open(d, n, &s.pub, &ha.priv, &err);
                g_assert_no_error(err);
                gsize pn;
                const char *text = g_bytes_get_data(plain, &pn);
                g_autoptr(NmMessage) got = nm_message_parse(text, (gssize)pn, &err);
                g_assert_no_error(err);
                g_assert_cmpint(got->type, ==, NM_MSG_NETWORK_LEFT);
                g_assert_cmpuint(got->serial, ==, 7);
                g_assert_cmpstr(got->network, ==, "office");
        }
        /* B got nothing: its topic is another. */
        (void)TEST_RUN_UNTIL(e, false, 200 * MSEC);
        g_assert_cmpuint(cb.messages, ==, 0);
        g_assert_cmpint(mq_publish_host(s.mq, "nope", &ha.pub, m), ==, -EINVAL);

        /* (c) A's sealed report reaches the server. */
        publish_report(&ca, &s, &ha, NULL, NULL);
        g_assert_true(TEST_RUN_UNTIL(e, s.reports == 1, 5 * SEC));
        g_assert_cmpstr(s.last_report_host, ==, ha.id);
        g_assert_cmpint(s.last_report_type, ==, NM_REPORT_CHECKIN);
        g_assert_cmpstr(s.last_report_version, ==, "9.9.9");

        /* Forged into B's report topic: the broker drops it; nothing arrives as B. */
        publish_report(&ca, &s, &ha, hb.id, NULL);
        /* Sealed for the wrong key, garbage, an unknown host: dropped and counted. */
        NmKey other_pub, other_priv;
        g_assert_cmpint(nm_key_generate_box(&other_priv, &other_pub), ==, 0);
        publish_report(&ca, &s, &ha, NULL, &other_pub);
        g_autofree char *rep_a = nm_topic_host_report(SERVER, ha.id);
        g_assert_cmpint(mqtt_loop_publish(ca.l, rep_a, "\x01garbage", 8, 1, false, NULL), ==, 0);
        g_assert_cmpint(mqtt_loop_publish(ca.l, rep_a, "", 0, 1, false, NULL), ==, 0);
        {
                /* Sealed correctly, but not a report. */
                const char *notjson = "{\"type\":\"checkin\",\"bogus\":1}";
                g_autoptr(GBytes) sealed = nm_seal(notjson, strlen(notjson), &s.pub, &ha.priv);
                gsize n;
                const void *d = g_bytes_get_data(sealed, &n);
                g_assert_cmpint(mqtt_loop_publish(ca.l, rep_a, d, n, 1, false, NULL), ==, 0);
        }
        g_assert_true(TEST_RUN_UNTIL(e, (mq_get_stats(s.mq, &st), st.reports_dropped >= 4), 5 * SEC));
        ha.known = false;
        publish_report(&ca, &s, &ha, NULL, NULL);
        g_assert_true(TEST_RUN_UNTIL(e, (mq_get_stats(s.mq, &st), st.reports_dropped >= 5), 5 * SEC));
        ha.known = true;
        (void)TEST_RUN_UNTIL(e, false, 200 * MSEC);
        mq_get_stats(s.mq, &st);
        g_assert_cmpuint(st.reports_dropped, ==, 5);
        g_assert_cmpuint(st.reports_received, ==, 1);
        g_assert_cmpuint(s.reports, ==, 1);
        g_assert_cmpuint(st.messages_published, ==, 1);
        g_assert_cmpuint(st.bytes_published, >, NM_SEAL_OVERHEAD);

        /* A snapshot request parses too. */
        {
                const char *json = "{\"type\":\"snapshot-request\"}";
                g_autoptr(GBytes) sealed = nm_seal(json, strlen(json), &s.pub, &hb.priv);
                g_autofree char *rep_b = nm_topic_host_report(SERVER, hb.id);
                gsize n;
                const void *d = g_bytes_get_data(sealed, &n);
                g_assert_cmpint(mqtt_loop_publish(cb.l, rep_b, d, n, 1, false, NULL), ==, 0);
                g_assert_true(TEST_RUN_UNTIL(e, s.reports == 2, 5 * SEC));
                g_assert_cmpstr(s.last_report_host, ==, hb.id);
                g_assert_cmpint(s.last_report_type, ==, NM_REPORT_SNAPSHOT_REQUEST);
        }

        /* Delete A: its session is cut and it cannot log in again; deleting again is fine. */
        op_clear(&op);
        g_assert_cmpint(mq_host_account_delete(s.mq, ha.id, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 1, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, ca.disconnected == 1, 5 * SEC));
        uint64_t before = client_attempts(&ca);
        g_assert_true(TEST_RUN_UNTIL(e, client_attempts(&ca) >= before + 2, 5 * SEC));
        g_assert_cmpint(mqtt_loop_last_error(ca.l), ==, -EACCES);
        g_assert_cmpuint(ca.connected, ==, 1);
        g_assert_cmpint(mq_host_account_delete(s.mq, ha.id, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 2, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);
        {
                g_autoptr(JsonObject) state = dynsec_state(&b);
                g_assert_false(dynsec_has(state, "clients", "username", ua));
                g_assert_false(dynsec_has(state, "roles", "rolename", ua));
                g_assert_true(dynsec_has(state, "clients", "username", ub));
        }

        /* A client with a made-up account gets nowhere. */
        client_start(&spy, e, &b, "host-00000000-0000-4000-8000-000000000000", "x");
        g_assert_true(TEST_RUN_UNTIL(e, client_attempts(&spy) >= 2, 5 * SEC));
        g_assert_cmpuint(spy.connected, ==, 0);

        /* The server's own connection stayed up all along (after the one reconnection that
         * gives it its role: that one happens before `connected`). */
        g_assert_cmpuint(s.connected, ==, 1);
        mq_get_stats(s.mq, &st);
        g_assert_cmpuint(st.reconnects, ==, 0);

        client_clear(&ca);
        client_clear(&cb);
        client_clear(&spy);
        op_clear(&op);
        op_clear(&op2);
        server_clear(&s);
        host_clear(&ha);
        host_clear(&hb);
        host_clear(&hc);
        test_broker_free(&b);
}

static void test_broker_restart_and_timeouts(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Server s = {};
        Host ha = {}, hb = {};
        Client cb = {};
        Op op = {}, lost = {}, late = {};
        MqStats st;

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);
        host_init(&ha);
        host_init(&hb);
        s.hosts[0] = &ha;
        s.hosts[1] = &hb;
        server_start(&s, e, &b, 500 * MSEC);
        g_assert_true(TEST_RUN_UNTIL(e, s.connected == 1, 10 * SEC));
        g_assert_cmpint(mq_host_account_create(s.mq, hb.id, hb.password, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 1, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);

        /* A broker that does not answer: the request times out, exactly once. */
        g_assert_cmpint(kill(b.pid, SIGSTOP), ==, 0);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, ha.password, op_done, &late), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, late.calls == 1, 5 * SEC));
        g_assert_cmpint(late.r, ==, -ETIMEDOUT);

        /* A request in flight when the connection goes fails with -ENOTCONN. */
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, ha.password, op_done, &lost), ==, 0);
        g_assert_cmpint(kill(b.pid, SIGKILL), ==, 0);
        (void)waitpid(b.pid, NULL, 0);
        b.pid = 0;
        g_assert_true(TEST_RUN_UNTIL(e, lost.calls == 1, 5 * SEC));
        g_assert_cmpint(lost.r, ==, -ENOTCONN);
        g_assert_false(mq_is_connected(s.mq));

        /* While the broker is away, everything says so at once. */
        g_autoptr(NmMessage) m = nm_message_new(NM_MSG_HOST_DELETED, 1);
        g_assert_cmpint(mq_publish_host(s.mq, hb.id, &hb.pub, m), ==, -ENOTCONN);
        g_assert_cmpint(mq_host_account_create(s.mq, ha.id, ha.password, op_done, &op), ==, -ENOTCONN);
        g_assert_cmpint(mq_host_account_delete(s.mq, ha.id, op_done, &op), ==, -ENOTCONN);
        (void)TEST_RUN_UNTIL(e, false, 500 * MSEC);

        /* It comes back with the same file: connected fires again and B's account still works. */
        test_broker_spawn(&b);
        g_assert_true(TEST_RUN_UNTIL(e, s.connected == 2, 10 * SEC));
        mq_get_stats(s.mq, &st);
        g_assert_cmpuint(st.reconnects, ==, 1);
        g_autofree char *ub = g_strconcat("host-", hb.id, NULL);
        client_start(&cb, e, &b, ub, hb.password);
        g_assert_true(TEST_RUN_UNTIL(e, cb.connected == 1, 5 * SEC));
        g_autofree char *msg_b = nm_topic_host_msg(SERVER, hb.id);
        g_assert_cmpint(mqtt_loop_subscribe(cb.l, msg_b, 1, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, cb.subscribed == 1, 5 * SEC));
        g_assert_cmpint(cb.granted[0], ==, 1);
        g_assert_cmpint(mq_publish_host(s.mq, hb.id, &hb.pub, m), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, cb.messages == 1, 5 * SEC));
        /* Reports are subscribed to again. */
        publish_report(&cb, &s, &hb, NULL, NULL);
        g_assert_true(TEST_RUN_UNTIL(e, s.reports == 1, 5 * SEC));

        /* Every callback fired once. */
        g_assert_cmpuint(late.calls, ==, 1);
        g_assert_cmpuint(lost.calls, ==, 1);

        /* Shutting down with a request in flight cancels it. */
        op_clear(&op);
        g_assert_cmpint(mq_host_account_delete(s.mq, ha.id, op_done, &op), ==, 0);
        s.mq = mq_free(s.mq);
        g_assert_cmpuint(op.calls, ==, 1);
        g_assert_cmpint(op.r, ==, -ECANCELED);

        client_clear(&cb);
        op_clear(&op);
        op_clear(&lost);
        op_clear(&late);
        server_clear(&s);
        host_clear(&ha);
        host_clear(&hb);
        test_broker_free(&b);
}

static void test_two_servers_share_a_broker(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Server s1 = {}, s2 = {};
        Host h[6] = {};
        Op ops[6] = {};

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);
        server_start(&s1, e, &b, 0);
        s2.pub = s1.pub;
        s2.priv = s1.priv;
        server_start(&s2, e, &b, 0);
        g_assert_true(TEST_RUN_UNTIL(e, s1.connected == 1 && s2.connected == 1, 10 * SEC));

        for (int i = 0; i < 6; i++) {
                host_init(&h[i]);
                Server *s = i % 2 ? &s2 : &s1;
                g_assert_cmpint(mq_host_account_create(s->mq, h[i].id, h[i].password, op_done, &ops[i]), ==,
                                0);
        }
        g_assert_true(TEST_RUN_UNTIL(e,
                                     ops[0].calls && ops[1].calls && ops[2].calls && ops[3].calls &&
                                             ops[4].calls && ops[5].calls,
                                     10 * SEC));
        (void)TEST_RUN_UNTIL(e, false, 300 * MSEC);
        for (int i = 0; i < 6; i++) {
                g_assert_cmpuint(ops[i].calls, ==, 1);
                g_assert_cmpint(ops[i].r, ==, 0);
                op_clear(&ops[i]);
                host_clear(&h[i]);
        }
        server_clear(&s1);
        server_clear(&s2);
        test_broker_free(&b);
}

typedef struct Later {
        Client *c;
        Server *s;
        Host *h;
        unsigned sent;
} Later;

static int later_publish(sd_event_source *src, uint64_t usec, void *userdata)
{
        Later *l = userdata;
        publish_report(l->c, l->s, l->h, NULL, NULL);
        l->sent++;
        return 0;
}

/* What an agent does: report at once when subscribed, then again from a timer seconds later
 * (idle in between), and after the keepalive had a chance to run. */
static void test_reports_from_timers(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Server s = {};
        Host h = {};
        Client c = {};
        Op op = {};
        Later later = {.c = &c, .s = &s, .h = &h};

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);
        host_init(&h);
        s.hosts[0] = &h;
        server_start(&s, e, &b, 0);
        g_assert_true(TEST_RUN_UNTIL(e, s.connected == 1, 10 * SEC));
        g_assert_cmpint(mq_host_account_create(s.mq, h.id, h.password, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 1, 10 * SEC));
        g_autofree char *user = g_strconcat("host-", h.id, NULL);
        client_start(&c, e, &b, user, h.password);
        g_assert_true(TEST_RUN_UNTIL(e, c.connected == 1, 5 * SEC));
        g_autofree char *topic = nm_topic_host_msg(SERVER, h.id);
        g_assert_cmpint(mqtt_loop_subscribe(c.l, topic, 1, NULL), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, c.subscribed == 1, 5 * SEC));
        publish_report(&c, &s, &h, NULL, NULL);
        g_assert_true(TEST_RUN_UNTIL(e, s.reports == 1, 5 * SEC));

        for (unsigned i = 1; i <= 3; i++) {
                _cleanup_(sd_event_source_unrefp) sd_event_source *t = NULL;
                uint64_t now;
                g_assert_cmpint(sd_event_now(e, CLOCK_MONOTONIC, &now), >=, 0);
                g_assert_cmpint(sd_event_add_time(e, &t, CLOCK_MONOTONIC, now + 1500 * MSEC, 0,
                                                  later_publish, &later),
                                >=, 0);
                g_assert_true(TEST_RUN_UNTIL(e, later.sent == i, 5 * SEC));
                g_assert_true(TEST_RUN_UNTIL(e, s.reports == 1 + i, 5 * SEC));
        }
        client_clear(&c);
        op_clear(&op);
        server_clear(&s);
        host_clear(&h);
        test_broker_free(&b);
}

/* mosquitto_ctrl dynsec ARGS... as the broker's admin: what an older netmakerd, another tool or a
 * crash may have left on the broker. */
static void ctrl(TestBroker *b, const char *first, ...)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autofree char *port = g_strdup_printf("%d", b->port);
        g_autoptr(GError) e = NULL;
        const char *pre[] = {"mosquitto_ctrl", "-h", "127.0.0.1",       "-p",    port, "-u",
                             b->admin_user,    "-P", b->admin_password, "dynsec"};
        va_list ap;
        int status;

        for (size_t i = 0; i < G_N_ELEMENTS(pre); i++)
                g_ptr_array_add(argv, (char *)pre[i]);
        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *))
                g_ptr_array_add(argv, (char *)a);
        va_end(ap);
        g_ptr_array_add(argv, NULL);
        g_assert_true(
                g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                             NULL, NULL, NULL, NULL, &status, &e));
        g_assert_no_error(e);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
}

typedef struct Listing {
        unsigned calls;
        int r;
        GHashTable *accounts; /* a copy of the last answer */
} Listing;

static void listed(int r, const char *message, GHashTable *accounts, void *userdata)
{
        Listing *l = userdata;
        GHashTableIter it;
        DynsecHostAccount *a;

        l->calls++;
        l->r = r;
        g_clear_pointer(&l->accounts, g_hash_table_unref);
        if (!accounts)
                return;
        l->accounts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)dynsec_host_account_free);
        g_hash_table_iter_init(&it, accounts);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&a)) {
                DynsecHostAccount *c = g_memdup2(a, sizeof(*a));
                c->host_id = g_strdup(a->host_id);
                g_hash_table_insert(l->accounts, c->host_id, c);
        }
}

static void list_now(Server *s, sd_event *e, Listing *l)
{
        unsigned before = l->calls;
        g_assert_cmpint(mq_host_accounts_list(s->mq, listed, l), ==, 0);
        g_assert_cmpuint(l->calls, ==, before); /* never from inside the call */
        g_assert_true(TEST_RUN_UNTIL(e, l->calls == before + 1, 10 * SEC));
        g_assert_cmpint(l->r, ==, 0);
        g_assert_nonnull(l->accounts);
}

/* has_client, bound, has_role, role_ours of one host id, as a string: "cbro" with '-' for false,
 * "none" when the listing does not have it. */
static const char *flags(Listing *l, const char *host_id)
{
        static char buf[5];
        DynsecHostAccount *a = g_hash_table_lookup(l->accounts, host_id);
        if (!a)
                return "none";
        buf[0] = a->has_client ? 'c' : '-';
        buf[1] = a->bound ? 'b' : '-';
        buf[2] = a->has_role ? 'r' : '-';
        buf[3] = a->role_ours ? 'o' : '-';
        buf[4] = '\0';
        return buf;
}

static void test_account_listing_and_binding(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        Server s = {.page_size = 2}, other = {.name = "other"};
        Host h[5] = {};
        Op op = {};
        Listing l = {};
        Client old = {}, stray = {}, own = {};

        if (!test_broker_available(true))
                return;
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        test_broker_start(&b, true);
        for (int i = 0; i < 5; i++)
                host_init(&h[i]);
        server_start(&s, e, &b, 0);
        server_start(&other, e, &b, 0);
        g_assert_cmpint(mq_host_accounts_list(s.mq, listed, &l), ==, -ENOTCONN);
        g_assert_true(TEST_RUN_UNTIL(e, s.connected == 1 && other.connected == 1, 10 * SEC));

        /* 0, 1 and 2 are this server's hosts, 3 the other server's. */
        for (int i = 0; i < 4; i++) {
                Server *srv = i == 3 ? &other : &s;
                g_assert_cmpint(mq_host_account_create(srv->mq, h[i].id, h[i].password, op_done, &op), ==,
                                0);
                g_assert_true(TEST_RUN_UNTIL(e, op.calls == (unsigned)i + 1, 10 * SEC));
                g_assert_cmpint(op.r, ==, 0);
        }
        g_autofree char *n1 = g_strconcat("host-", h[1].id, NULL);
        g_autofree char *n2 = g_strconcat("host-", h[2].id, NULL);
        g_autofree char *n4 = g_strconcat("host-", h[4].id, NULL);
        ctrl(&b, "setClientId", n1, NULL);              /* 1: made before accounts were bound */
        ctrl(&b, "deleteClient", n2, NULL);             /* 2: only the role is left */
        ctrl(&b, "createClient", n4, "-p", "pw", NULL); /* 4: a client without a role */
        ctrl(&b, "createClient", "host-not-a-uuid", "-p", "pw", NULL);

        /* Seven roles and six clients, two a page: every host account is found, once. */
        list_now(&s, e, &l);
        g_assert_cmpuint(g_hash_table_size(l.accounts), ==, 5);
        g_assert_cmpstr(flags(&l, h[0].id), ==, "cbro");
        g_assert_cmpstr(flags(&l, h[1].id), ==, "c-ro");
        g_assert_cmpstr(flags(&l, h[2].id), ==, "--ro");
        g_assert_cmpstr(flags(&l, h[3].id), ==, "cbr-");
        g_assert_cmpstr(flags(&l, h[4].id), ==, "c---");
        /* The same in one page. */
        {
                Listing one = {};
                list_now(&other, e, &one);
                g_assert_cmpuint(g_hash_table_size(one.accounts), ==, 5);
                g_assert_cmpstr(flags(&one, h[3].id), ==, "cbro");
                g_assert_cmpstr(flags(&one, h[1].id), ==, "c-r-");
                g_clear_pointer(&one.accounts, g_hash_table_unref);
        }

        /* Unbound, 1's password works with any client id; bound, only with its own. */
        client_start_as(&old, e, &b, n1, h[1].password, NULL);
        g_assert_true(TEST_RUN_UNTIL(e, old.connected == 1, 5 * SEC));
        client_clear(&old);
        op_clear(&op);
        g_assert_cmpint(mq_host_account_bind(s.mq, "nope", op_done, &op), ==, -EINVAL);
        g_assert_cmpint(mq_host_account_bind(s.mq, h[1].id, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 1, 10 * SEC));
        g_assert_cmpint(op.r, ==, 0);
        list_now(&s, e, &l);
        g_assert_cmpstr(flags(&l, h[1].id), ==, "cbro");
        client_start_as(&stray, e, &b, n1, h[1].password, NULL);
        client_refused(&stray, e, 2);
        client_start(&own, e, &b, n1, h[1].password);
        g_assert_true(TEST_RUN_UNTIL(e, own.connected == 1, 5 * SEC));
        /* Binding a client that is gone is the broker's refusal. */
        g_assert_cmpint(mq_host_account_bind(s.mq, h[2].id, op_done, &op), ==, 0);
        g_assert_true(TEST_RUN_UNTIL(e, op.calls == 2, 10 * SEC));
        g_assert_cmpint(op.r, ==, -EIO);
        g_assert_nonnull(strstr(op.message, "Client not found"));

        /* A listing in flight when the server goes is cancelled, once. */
        unsigned before = l.calls;
        g_assert_cmpint(mq_host_accounts_list(s.mq, listed, &l), ==, 0);
        s.mq = mq_free(s.mq);
        g_assert_cmpuint(l.calls, ==, before + 1);
        g_assert_cmpint(l.r, ==, -ECANCELED);
        g_assert_null(l.accounts);

        client_clear(&stray);
        client_clear(&own);
        op_clear(&op);
        server_clear(&s);
        server_clear(&other);
        for (int i = 0; i < 5; i++)
                host_clear(&h[i]);
        test_broker_free(&b);
}

static void test_bad_settings(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Mq *mq = NULL;
        MqSettings s = {
                .url = "mqtt://127.0.0.1:1", .username = "admin", .password = "x", .server_name = "nm"};

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, -EINVAL); /* no key */
        NmKey pub;
        g_assert_cmpint(nm_key_generate_box(&s.server_secret, &pub), ==, 0);
        s.url = "http://x";
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, -EINVAL);
        s.url = "mqtt://127.0.0.1:1";
        s.server_name = "a/b";
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, -EINVAL);
        s.server_name = "+";
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, -EINVAL);
        s.server_name = "nm";
        s.username = NULL;
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, -EINVAL);
        s.username = "admin";
        /* A broker that is not there is no error: it is retried. */
        g_assert_cmpint(mq_new(e, &s, &server_callbacks, NULL, &mq), ==, 0);
        g_assert_false(mq_is_connected(mq));
        mq = mq_free(mq);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(g_getenv("NM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        signal(SIGPIPE, SIG_IGN);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/mq/bad-settings", test_bad_settings);
        g_test_add_func("/mq/live/accounts-messages-reports", test_accounts_messages_reports);
        g_test_add_func("/mq/live/broker-restart-and-timeouts", test_broker_restart_and_timeouts);
        g_test_add_func("/mq/live/two-servers", test_two_servers_share_a_broker);
        g_test_add_func("/mq/live/reports-from-timers", test_reports_from_timers);
        g_test_add_func("/mq/live/account-listing-and-binding", test_account_listing_and_binding);
        return g_test_run();
}
