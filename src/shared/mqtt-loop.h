/* One MQTT client connection (libmosquitto, non-threaded) driven by an sd-event loop: the socket
 * is an io source, keepalives run from a timer, connecting is asynchronous and a lost connection
 * is re-made with exponential backoff and jitter. Shared by netmakerd and netclientd.
 *
 * The program must ignore SIGPIPE: libmosquitto writes with write(2). Resolving a broker host
 * name blocks (getaddrinfo() inside libmosquitto); IP literals do not. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <systemd/sd-event.h>

#include "tls.h"

typedef struct MqttLoop MqttLoop;

#define MQTT_DEFAULT_PORT     1883
#define MQTT_DEFAULT_TLS_PORT 8883

/* Parses "mqtt://host[:port]" or "mqtts://host[:port]" ("[v6addr]:port" for IPv6 literals).
 * No user info, path, query or fragment. Returns 0 or -EINVAL; *ret_host is g_free()d by the
 * caller. Any of the ret pointers may be NULL. */
int mqtt_url_parse(const char *url, char **ret_host, uint16_t *ret_port, bool *ret_tls);

typedef struct MqttLoopSettings {
        const char *url;       /* see mqtt_url_parse() */
        const char *client_id; /* NULL: a random one (then clean_session must be true) */
        const char *username;  /* NULL: connect without credentials */
        const char *password;  /* kept in memory, wiped on free, never logged */
        bool clean_session;
        unsigned keepalive_sec;        /* 0: 30 s; at least 5 */
        uint64_t backoff_min_usec;     /* 0: 500 ms: the first delay after a failed attempt */
        uint64_t backoff_max_usec;     /* 0: 30 s */
        uint64_t connect_timeout_usec; /* 0: 15 s: from TCP connect to CONNACK */
        const char *ca_file;           /* mqtts:// only, without trust; NULL: the system's trust store */
        const NmTlsTrust *trust;       /* mqtts:// only: a pin, or a CA file (copied); NULL: ca_file */
} MqttLoopSettings;

/* Callbacks run from the event loop. Inside them every mqtt_loop_*() call is allowed,
 * mqtt_loop_free() included. */
typedef struct MqttLoopCallbacks {
        /* The broker accepted the connection (CONNACK 0). Subscriptions must be made again here
         * when clean_session is true. */
        void (*connected)(MqttLoop *l, void *userdata);
        /* A connection that had been accepted is gone (negative errno: -ECONNRESET, -ETIMEDOUT
         * for a missed keepalive, 0 for our own mqtt_loop_stop()). A reconnect is scheduled
         * unless stopped. Failed attempts do not call this; see mqtt_loop_last_error(). */
        void (*disconnected)(MqttLoop *l, int error, void *userdata);
        /* A message on a subscribed topic; `payload` is valid during the call only. */
        void (*message)(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                        bool retained, void *userdata);
        /* A QoS 1/2 publish was acknowledged (QoS 0: handed to the kernel). */
        void (*published)(MqttLoop *l, int mid, void *userdata);
        /* SUBACK: one granted QoS per requested pattern, 0x80 (128) where the broker refused. */
        void (*subscribed)(MqttLoop *l, int mid, int n_granted, const int *granted_qos, void *userdata);
} MqttLoopCallbacks;

/* Copies the settings; does not connect yet. Returns 0, -EINVAL (bad URL, keepalive, or a random
 * client id with a persistent session) or -ENOMEM. */
int mqtt_loop_new(sd_event *event, const MqttLoopSettings *settings, const MqttLoopCallbacks *callbacks,
                  void *userdata, MqttLoop **ret);
/* Sends DISCONNECT when connected, then frees; never calls a callback. */
MqttLoop *mqtt_loop_free(MqttLoop *l);

/* Starts connecting now; keeps reconnecting until mqtt_loop_stop(). Returns 0 (also when the
 * broker is unreachable: that is retried) or a negative errno for a setup failure. */
int mqtt_loop_start(MqttLoop *l);
/* Disconnects cleanly and stops reconnecting. */
void mqtt_loop_stop(MqttLoop *l);
/* Drops the current connection (or the wait for the next attempt) and connects again now, with
 * the backoff reset: for new credentials, or when the local addresses changed (a connection from
 * an address that is gone looks alive until TCP gives up: data unacknowledged for keepalive/2 s,
 * 5-30 s, or a missed keepalive). */
int mqtt_loop_reconnect(MqttLoop *l);
/* New credentials (NULL username: none), used from the next connection attempt on. */
int mqtt_loop_set_credentials(MqttLoop *l, const char *username, const char *password);

/* True between the `connected` and `disconnected` callbacks. */
bool mqtt_loop_is_connected(MqttLoop *l);
/* The reason the last attempt or connection failed (negative errno; -EACCES for bad credentials
 * or a refused client id, -EKEYREJECTED for a TLS failure such as an untrusted certificate,
 * -ECONNREFUSED, -ETIMEDOUT...), 0 while connected or before the first. */
int mqtt_loop_last_error(MqttLoop *l);
const char *mqtt_loop_client_id(MqttLoop *l);
/* Why the last TLS handshake refused the broker (a pin that did not match, an expired
 * certificate), or NULL. */
const char *mqtt_loop_tls_failure(MqttLoop *l);

/* Each returns 0 and the message id in *ret_mid (may be NULL), -ENOTCONN when not connected,
 * -EINVAL for an invalid topic/pattern, QoS or payload over 256 MiB, or another negative errno. */
int mqtt_loop_publish(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos, bool retain,
                      int *ret_mid);
int mqtt_loop_subscribe(MqttLoop *l, const char *pattern, int qos, int *ret_mid);
int mqtt_loop_unsubscribe(MqttLoop *l, const char *pattern, int *ret_mid);

typedef struct MqttLoopStats {
        uint64_t attempts;     /* connection attempts started */
        uint64_t connects;     /* CONNACK 0 received */
        uint64_t disconnects;  /* accepted connections lost (or stopped) */
        uint64_t messages_in;  /* messages delivered to the `message` callback */
        uint64_t messages_out; /* publishes queued */
        uint64_t bytes_out;    /* payload bytes of those */
} MqttLoopStats;
void mqtt_loop_get_stats(MqttLoop *l, MqttLoopStats *ret);

/* Maps a MOSQ_ERR_* code to a negative errno, using errno for MOSQ_ERR_ERRNO. Exposed for tests. */
int mqtt_error_to_errno(int mosq_rc);

/* The delay before connection attempt number `failures` (1 = after the first failure): doubling
 * from min up to max, then a random point in its upper half so that many clients losing the same
 * broker do not come back in step. Exposed for tests. */
uint64_t mqtt_backoff_delay(uint64_t min_usec, uint64_t max_usec, unsigned failures);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MqttLoop, mqtt_loop_free)
