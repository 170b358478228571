/* netclientd's MQTT client on top of mqtt-loop. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "mq-client.h"
#include "mqtt-loop.h"
#include "nm-error.h"
#include "seal.h"

struct MqClient {
        Manager *manager;
        MqttLoop *loop;
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
        ServerConfig *s = c->manager->server;
        int r;

        log_info("Connected to the broker %s as %s.", s->mqtt_url, s->mqtt_username);
        r = mqtt_loop_subscribe(l, s->topic_msg, 1, &c->sub_mid);
        if (r < 0)
                log_warning_errno(r, "Failed to subscribe to %s: %m", s->topic_msg);
}

static void on_subscribed(MqttLoop *l, int mid, int n_granted, const int *granted_qos, void *userdata)
{
        MqClient *c = userdata;

        if (mid != c->sub_mid)
                return;
        if (n_granted < 1 || granted_qos[0] >= 0x80) {
                log_error("The broker refused our subscription to %s; check the host's broker account.",
                          c->manager->server->topic_msg);
                return;
        }
        c->subscribed = true;
        manager_broker_connected(c->manager, true);
}

static void on_disconnected(MqttLoop *l, int error, void *userdata)
{
        MqClient *c = userdata;
        bool was = c->subscribed;

        c->subscribed = false;
        if (error)
                log_warning_errno(error, "Lost the broker connection (reconnecting): %m");
        if (was)
                manager_broker_connected(c->manager, false);
}

static void on_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                       bool retained, void *userdata)
{
        MqClient *c = userdata;
        Manager *m = c->manager;
        g_autoptr(GError) e = NULL;

        if (!m->server || !streq0(topic, m->server->topic_msg))
                return;
        g_autoptr(NmMessage) msg =
                mq_client_open_message(&m->server->server_key, &m->identity.msg_private, payload, len, &e);
        if (!msg) {
                log_warning("Dropped %s", e->message);
                return;
        }
        manager_handle_message(m, msg);
}

int mq_client_new(Manager *m, MqClient **ret)
{
        static const MqttLoopCallbacks callbacks = {
                .connected = on_connected,
                .disconnected = on_disconnected,
                .message = on_message,
                .subscribed = on_subscribed,
        };
        ServerConfig *s = m->server;
        g_auto(NmTlsTrust) trust = {};
        g_autoptr(GError) e = NULL;
        MqClient *c;
        int r;

        r = manager_broker_trust(m, &trust, &e);
        if (r < 0)
                return log_error_errno(r, "%s", e->message);
        MqttLoopSettings settings = {
                .url = s->mqtt_url,
                .client_id = s->mqtt_username,
                .username = s->mqtt_username,
                .password = s->mqtt_password,
                .trust = &trust,
                .clean_session = true,
        };
        c = g_new0(MqClient, 1);
        c->manager = m;
        r = mqtt_loop_new(m->event, &settings, &callbacks, c, &c->loop);
        if (r < 0) {
                g_free(c);
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
        Manager *m = c->manager;
        g_autofree char *json = NULL;
        g_autoptr(GBytes) sealed = NULL;
        gsize n;

        if (!mq_client_is_ready(c))
                return -ENOTCONN;
        json = nm_report_to_json(report);
        sealed = nm_seal(json, strlen(json), &m->server->server_key, &m->identity.msg_private);
        if (!sealed)
                return -ENOMEM;
        const void *data = g_bytes_get_data(sealed, &n);
        return mqtt_loop_publish(c->loop, m->server->topic_report, data, n, 1, false, NULL);
}
