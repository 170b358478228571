/* netclientd's broker connection: the host's own MQTT account, its message topic (sealed server
 * messages, opened with the server key pinned at enrollment) and its report topic. It reports to its
 * owner through callbacks and knows nothing of the Manager. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "proto.h"
#include "state.h"
#include "tls.h"

typedef struct MqClient MqClient;

/* Called from the event loop; each may free the client (mq_client_free()). */
typedef struct MqClientCallbacks {
        /* Subscribed to the message topic (true), or that subscribed connection is lost (false; the
         * client reconnects by itself). */
        void (*ready)(MqClient *c, bool ready, void *userdata);
        /* A server message: authenticated by the server key and parsed; valid during the call only. */
        void (*message)(MqClient *c, const NmMessage *msg, void *userdata);
} MqClientCallbacks;

/* Copies what it needs from `server` (broker URL, account, topics, the server's message key),
 * `identity` (the host's message key) and `trust` (the broker's); does not connect yet. */
int mq_client_new(sd_event *event, const ServerConfig *server, const Identity *identity,
                  const NmTlsTrust *trust, const MqClientCallbacks *callbacks, void *userdata,
                  MqClient **ret);
MqClient *mq_client_free(MqClient *c);
int mq_client_start(MqClient *c);
/* Drops the connection and connects again at once (the address it used may be gone). */
int mq_client_reconnect(MqClient *c);
/* Connected and subscribed to the message topic. */
bool mq_client_is_ready(MqClient *c);
/* Seals a report for the server and publishes it (QoS 1). -ENOTCONN when the broker is down. */
int mq_client_publish_report(MqClient *c, const NmReport *report);
/* Opens and parses one payload from the message topic; NULL (with a GError that never quotes the
 * payload) for anything that does not authenticate or parse. */
NmMessage *mq_client_open_message(const NmKey *server_key, const NmKey *host_secret, const void *payload,
                                  size_t len, GError **error);
