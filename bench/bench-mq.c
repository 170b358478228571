/* Speed figures for netmakerd's MQTT side against a real Mosquitto with dynamic security: host
 * account creation latency, sealed publishes to a host (messages/s, bytes on the wire per
 * message) and the time from a broker restart to `connected` again. Figures, not assertions.
 *
 *   bench-mq [--accounts N] [--messages N] [--peers N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "mq.h"
#include "mqtt-loop.h"
#include "seal.h"
#include "test-broker.h"

#define MSEC 1000ULL
#define SEC  (1000 * MSEC)

typedef struct State {
        unsigned connected;
        unsigned done, failed;
        unsigned received;
        uint64_t bytes_received;
        unsigned subscribed;
} State;

static void on_connected(void *userdata)
{
        ((State *)userdata)->connected++;
}

static int on_host_key(void *userdata, const char *host_id, NmKey *ret)
{
        return -ENOENT;
}

static void on_done(int r, const char *message, void *userdata)
{
        State *s = userdata;
        if (r < 0)
                s->failed++;
        s->done++;
}

static void on_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                       bool retained, void *userdata)
{
        State *s = userdata;
        s->received++;
        s->bytes_received += len;
}

static void on_subscribed(MqttLoop *l, int mid, int n, const int *granted, void *userdata)
{
        ((State *)userdata)->subscribed++;
}

static double seconds_since(gint64 t0)
{
        return (double)(g_get_monotonic_time() - t0) / 1e6;
}

static NmPeer *make_peer(unsigned i)
{
        NmPeer *p = nm_peer_new();
        NmKey priv;
        p->host_id = nm_uuid_new();
        p->name = g_strdup_printf("host%u", i);
        (void)nm_key_generate_wg(&priv, &p->public_key);
        p->endpoint = g_strdup_printf("198.18.%u.%u:51821", (i >> 8) & 0xff, i & 0xff);
        p->allowed_ips = g_new0(char *, 3);
        p->allowed_ips[0] = g_strdup_printf("10.%u.%u.%u/32", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        p->allowed_ips[1] = g_strdup_printf("fd00::%x/128", i);
        p->keepalive = 20;
        p->ipv4 = g_strdup_printf("10.%u.%u.%u", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        p->ipv6 = g_strdup_printf("fd00::%x", i);
        return p;
}

int main(int argc, char *argv[])
{
        /* clang-format off */
        static const struct option options[] = {
                { "accounts", required_argument, NULL, 'a' },
                { "messages", required_argument, NULL, 'm' },
                { "peers", required_argument, NULL, 'p' },
                {},
        };
        /* clang-format on */
        unsigned n_accounts = 100, n_messages = 2000, n_peers = 1;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        TestBroker b;
        State s = {}, hs = {};
        Mq *mq = NULL;
        MqttLoop *host = NULL;
        NmKey spub, spriv, hpub, hpriv;
        int opt;

        g_test_init(&argc, &argv, NULL); /* for test-broker.h's g_test_skip() */
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'a':
                        n_accounts = (unsigned)atoi(optarg);
                        break;
                case 'm':
                        n_messages = (unsigned)atoi(optarg);
                        break;
                case 'p':
                        n_peers = (unsigned)atoi(optarg);
                        break;
                default:
                        return 2;
                }
        log_set_max_level(LOG_WARNING);
        if (!test_broker_available(true)) {
                printf("bench-mq: skipped (no mosquitto with dynamic security)\n");
                return 77;
        }
        if (nm_crypto_init() < 0 || sd_event_new(&e) < 0)
                return 1;
        (void)nm_key_generate_box(&spriv, &spub);
        (void)nm_key_generate_box(&hpriv, &hpub);
        test_broker_start(&b, true);

        MqSettings ms = {.url = b.url,
                         .username = b.admin_user,
                         .password = b.admin_password,
                         .server_name = "bench",
                         .server_public = spub,
                         .server_secret = spriv};
        MqCallbacks mcb = {.connected = on_connected, .host_key = on_host_key};
        gint64 t0 = g_get_monotonic_time();
        if (mq_new(e, &ms, &mcb, &s, &mq) < 0 || !TEST_RUN_UNTIL(e, s.connected == 1, 20 * SEC))
                return 1;
        printf("first connection to a fresh broker (incl. ACL set-up):  %.3f s\n", seconds_since(t0));

        /* Account creation: N in flight at once, then one at a time. */
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        for (unsigned i = 0; i < n_accounts; i++)
                g_ptr_array_add(ids, nm_uuid_new());
        t0 = g_get_monotonic_time();
        for (unsigned i = 0; i < n_accounts; i++)
                if (mq_host_account_create(mq, ids->pdata[i], "bench-password", on_done, &s) < 0)
                        return 1;
        if (!TEST_RUN_UNTIL(e, s.done == n_accounts, 120 * SEC))
                return 1;
        printf("host accounts, %u in flight:   %.2f ms each (%u failed)\n", n_accounts,
               seconds_since(t0) * 1000 / n_accounts, s.failed);
        s.done = 0;
        t0 = g_get_monotonic_time();
        for (unsigned i = 0; i < 20; i++) {
                g_autofree char *id = nm_uuid_new();
                if (mq_host_account_create(mq, id, "bench-password", on_done, &s) < 0 ||
                    !TEST_RUN_UNTIL(e, s.done == i + 1, 10 * SEC))
                        return 1;
        }
        printf("host account, one at a time:  %.2f ms round trip\n", seconds_since(t0) * 1000 / 20);

        /* A host's subscriber, then sealed messages to it. */
        const char *host_id = ids->pdata[0];
        g_autofree char *user = g_strconcat("host-", host_id, NULL);
        /* Host accounts are bound to their client id: the user name. */
        MqttLoopSettings ls = {.url = b.url,
                               .client_id = user,
                               .username = user,
                               .password = "bench-password",
                               .clean_session = true};
        MqttLoopCallbacks lcb = {.message = on_message, .subscribed = on_subscribed};
        if (mqtt_loop_new(e, &ls, &lcb, &hs, &host) < 0 || mqtt_loop_start(host) < 0 ||
            !TEST_RUN_UNTIL(e, mqtt_loop_is_connected(host), 10 * SEC))
                return 1;
        g_autofree char *topic = nm_topic_host_msg("bench", host_id);
        if (mqtt_loop_subscribe(host, topic, 1, NULL) < 0 || !TEST_RUN_UNTIL(e, hs.subscribed == 1, 5 * SEC))
                return 1;

        g_autoptr(NmMessage) m = nm_message_new(NM_MSG_PEERS, 1);
        m->network = g_strdup("office");
        m->update = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        for (unsigned i = 0; i < n_peers; i++)
                g_ptr_array_add(m->update, make_peer(i));
        g_autofree char *json = nm_message_to_json(m);
        MqStats st0, st1;
        mq_get_stats(mq, &st0);
        t0 = g_get_monotonic_time();
        for (unsigned i = 0; i < n_messages; i++) {
                m->serial = i + 1;
                if (mq_publish_host(mq, host_id, &hpub, m) < 0)
                        return 1;
                if (i % 100 == 99)
                        (void)sd_event_run(e, 0);
        }
        if (!TEST_RUN_UNTIL(e, hs.received == n_messages, 60 * SEC)) {
                fprintf(stderr, "only %u of %u messages arrived\n", hs.received, n_messages);
                return 1;
        }
        double secs = seconds_since(t0);
        mq_get_stats(mq, &st1);
        printf("sealed publishes (peers delta, %u peer(s), JSON %zu B):  %.0f msg/s end to end, "
               "%.1f B per message on the wire (payload), seal overhead %d B\n",
               n_peers, strlen(json), n_messages / secs,
               (double)(st1.bytes_published - st0.bytes_published) / n_messages, NM_SEAL_OVERHEAD);

        /* Broker restart → connected again. */
        test_broker_stop(&b);
        if (!TEST_RUN_UNTIL(e, !mq_is_connected(mq), 10 * SEC))
                return 1;
        t0 = g_get_monotonic_time();
        test_broker_spawn(&b);
        double spawn = seconds_since(t0);
        if (!TEST_RUN_UNTIL(e, s.connected == 2, 60 * SEC))
                return 1;
        printf("broker restart → connected again:  %.3f s (broker start took %.3f s; backoff 0.25-0.5 s "
               "after the first failure)\n",
               seconds_since(t0), spawn);

        host = mqtt_loop_free(host);
        mq = mq_free(mq);
        test_broker_free(&b);
        return 0;
}
