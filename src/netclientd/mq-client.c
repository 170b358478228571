/* netclientd's MQTT client on top of mqtt-loop. */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "log.h"
#include "macro.h"
#include "mq-client.h"
#include "mqtt-loop.h"
#include "nm-error.h"
#include "seal.h"

struct MqClient {
        MqttLoop *loop;
        MqClientCallbacks callbacks;
        void *userdata;
        char *url;      /* for logs */
        char *username; /* for logs */
        char *topic_msg;
        char *topic_report;
        NmKey server_key;
        NmKey host_secret; /* the host's message key: wiped on free */
        int sub_mid;
        bool subscribed;
};

NmMessage *mq_client_open_message(const NmKey *server_key, const NmKey *host_secret, const void *payload,
                                  size_t len, GError **error)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GBytes) plain = nm_open(payload, len, server_key, host_secret, &e);
        gsize n;

        if (!plain) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "%zu bytes that are not sealed by the server (%s)", len, e->message);
                return NULL;
        }
        const char *text = g_bytes_get_data(plain, &n);
        NmMessage *m = nm_message_parse(text, (gssize)n, &e);
        if (!m) {
                /* The parser's message may quote values from the payload: keep it to debug level. */
                log_debug("Unparsable server message: %s", e->message);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "a sealed message of %zu bytes that is not a valid server message", n);
                return NULL;
        }
        return m;
}

static void on_connected(MqttLoop *l, void *userdata)
{
        MqClient *c = userdata;
        int r;

        log_info("Connected to the broker %s as %s.", c->url, c->username);
        r = mqtt_loop_subscribe(l, c->topic_msg, 1, &c->sub_mid);
        if (r < 0)
                log_warning_errno(r, "Failed to subscribe to %s: %m", c->topic_msg);
}

static void on_subscribed(MqttLoop *l, int mid, int n_granted, const int *granted_qos, void *userdata)
{
        MqClient *c = userdata;

        if (mid != c->sub_mid)
                return;
        if (n_granted < 1 || granted_qos[0] >= 0x80) {
                log_error("The broker refused our subscription to %s; check the host's broker account.",
                          c->topic_msg);
                return;
        }
        c->subscribed = true;
        /* Last: the callback may free us. */
        c->callbacks.ready(c, true, c->userdata);
}

static void on_disconnected(MqttLoop *l, int error, void *userdata)
{
        MqClient *c = userdata;
        bool was = c->subscribed;

        c->subscribed = false;
        if (error)
                log_warning_errno(error, "Lost the broker connection (reconnecting): %m");
        if (was)
                c->callbacks.ready(c, false, c->userdata);
}

static void on_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                       bool retained, void *userdata)
{
        MqClient *c = userdata;
        g_autoptr(GError) e = NULL;

        if (!streq0(topic, c->topic_msg))
                return;
        g_autoptr(NmMessage) msg = mq_client_open_message(&c->server_key, &c->host_secret, payload, len, &e);
        if (!msg) {
                log_warning("Dropped %s", e->message);
                return;
        }
        c->callbacks.message(c, msg, c->userdata);
}

int mq_client_new(sd_event *event, const ServerConfig *server, const Identity *identity,
                  const NmTlsTrust *trust, const MqClientCallbacks *callbacks, void *userdata,
                  MqClient **ret)
{
        static const MqttLoopCallbacks loop_callbacks = {
                .connected = on_connected,
                .disconnected = on_disconnected,
                .message = on_message,
                .subscribed = on_subscribed,
        };
        MqttLoopSettings settings = {
                .url = server->mqtt_url,
                .client_id = server->mqtt_username,
                .username = server->mqtt_username,
                .password = server->mqtt_password,
                .trust = trust,
                .clean_session = true,
        };
        MqClient *c;
        int r;

        c = g_new0(MqClient, 1);
        c->callbacks = *callbacks;
        c->userdata = userdata;
        c->url = g_strdup(server->mqtt_url);
        c->username = g_strdup(server->mqtt_username);
        c->topic_msg = g_strdup(server->topic_msg);
        c->topic_report = g_strdup(server->topic_report);
        c->server_key = server->server_key;
        c->host_secret = identity->msg_private;
        r = mqtt_loop_new(event, &settings, &loop_callbacks, c, &c->loop);
        if (r < 0) {
                mq_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

MqClient *mq_client_free(MqClient *c)
{
        if (!c)
                return NULL;
        mqtt_loop_free(c->loop);
        g_free(c->url);
        g_free(c->username);
        g_free(c->topic_msg);
        g_free(c->topic_report);
        sodium_memzero(&c->host_secret, sizeof(c->host_secret));
        g_free(c);
        return NULL;
}

int mq_client_start(MqClient *c)
{
        return mqtt_loop_start(c->loop);
}

int mq_client_reconnect(MqClient *c)
{
        return mqtt_loop_reconnect(c->loop);
}

bool mq_client_is_ready(MqClient *c)
{
        return c && c->subscribed && mqtt_loop_is_connected(c->loop);
}

int mq_client_publish_report(MqClient *c, const NmReport *report)
{
        g_autofree char *json = NULL;
        g_autoptr(GBytes) sealed = NULL;
        gsize n;

        if (!mq_client_is_ready(c))
                return -ENOTCONN;
        json = nm_report_to_json(report);
        sealed = nm_seal(json, strlen(json), &c->server_key, &c->host_secret);
        if (!sealed)
                return -ENOMEM;
        const void *data = g_bytes_get_data(sealed, &n);
        return mqtt_loop_publish(c->loop, c->topic_report, data, n, 1, false, NULL);
}
