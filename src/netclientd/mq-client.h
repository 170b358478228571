/* netclientd's broker connection: the host's own MQTT account, its message topic (sealed server
 * messages, opened with the server key pinned at enrollment) and its report topic. */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "proto.h"

/* Uses m->server (URL, credentials, topics) and m->identity; does not connect yet. */
int mq_client_new(Manager *m, MqClient **ret);
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
