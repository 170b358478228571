/* The server's MQTT side: one libmosquitto connection on the sd-event loop, per-host broker
 * accounts through Mosquitto's dynamic-security plugin, sealed publishes to hosts, and host
 * reports handed to the manager. Knows nothing of the store: the manager passes what it needs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "dynsec.h"
#include "keys.h"
#include "proto.h"
#include "tls.h"

typedef struct Mq Mq;

typedef struct MqSettings {
        const char *url;      /* "mqtt://host:port" */
        const char *username; /* dynamic-security admin account */
        const char *password;
        const char *server_name; /* topic prefix component: nm/<server_name>/... */
        NmKey server_public;     /* message key pair */
        NmKey server_secret;
        const NmTlsTrust *trust; /* mqtts://: the broker's pin or CA (NULL: the system's trust store) */
        /* Optional (0/NULL: defaults). */
        const char *client_id;        /* default "netmakerd-<server>-<random>": unique per instance */
        uint64_t dynsec_timeout_usec; /* default 10 s */
        uint64_t backoff_max_usec;    /* reconnect backoff cap, default 30 s */
        unsigned list_page_size; /* accounts per page of mq_host_accounts_list(), default DYNSEC_LIST_PAGE */
} MqSettings;

typedef struct MqCallbacks {
        /* After every (re)connection, once subscribed: the manager brings hosts up to date. */
        void (*connected)(void *userdata);
        /* The message public key of a host, to open its reports; 0 or -ENOENT. */
        int (*host_key)(void *userdata, const char *host_id, NmKey *ret);
        /* A report that opened and parsed; `report` is borrowed (valid during the call). */
        void (*report)(void *userdata, const char *host_id, NmReport *report);
} MqCallbacks;

/* Starts connecting at once and keeps reconnecting with backoff; never fails because the broker
 * is down. Returns 0 or a negative errno for bad settings. */
int mq_new(sd_event *event, const MqSettings *settings, const MqCallbacks *callbacks, void *userdata,
           Mq **ret);
Mq *mq_free(Mq *mq);
bool mq_is_connected(Mq *mq);

/* Called once with 0, or a negative errno and a message (e.g. -ETIMEDOUT, -ENOTCONN, or the
 * broker's error for -EIO; -ECANCELED from mq_free()). The account functions below either return 0
 * and call `done` exactly once later (never from inside the call), or return a negative errno
 * (-ENOTCONN while the broker is away, -EINVAL for a bad id or password) and never call it. */
typedef void (*mq_done_t)(int r, const char *message, void *userdata);

/* Creates client "host-<id>" with `password`, bound to the client id "host-<id>", and role
 * "host-<id>" allowed to subscribe to its message topic and publish to its report topic, nothing
 * else. An existing account of that name is replaced (so a retry after a lost answer succeeds; a
 * connected client of that name is cut off). */
int mq_host_account_create(Mq *mq, const char *host_id, const char *password, mq_done_t done,
                           void *userdata);
/* Deletes the client and role; a missing account is not an error. */
int mq_host_account_delete(Mq *mq, const char *host_id, mq_done_t done, void *userdata);
/* Binds an existing client "host-<id>" to the client id "host-<id>" (for accounts made before
 * netmakerd bound them; some brokers cut the client's session off once for it). */
int mq_host_account_bind(Mq *mq, const char *host_id, mq_done_t done, void *userdata);

/* Called once with 0 and every "host-<uuid>" client and role on the broker (host id →
 * DynsecHostAccount, borrowed: valid during the call), or with a negative errno, a message and
 * NULL. Which of them are this server's is for the caller to decide (role_ours, its hosts). */
typedef void (*mq_accounts_done_t)(int r, const char *message, GHashTable *accounts, void *userdata);
/* Lists the broker's host accounts page by page (list_page_size clients and roles a request).
 * Same rules as the account functions: 0 and `done` later exactly once, or a negative errno. */
int mq_host_accounts_list(Mq *mq, mq_accounts_done_t done, void *userdata);

/* Seals `msg` for the host's message key and publishes it at QoS 1 to its message topic.
 * Returns 0, or -ENOTCONN while the broker is away (the host catches up after reconnecting). */
int mq_publish_host(Mq *mq, const char *host_id, const NmKey *host_key, const NmMessage *msg);

/* Counters for tests and metrics. */
typedef struct MqStats {
        guint64 messages_published;
        guint64 bytes_published;
        guint64 reports_received;
        guint64 reports_dropped;
        guint64 reconnects;
} MqStats;
void mq_get_stats(Mq *mq, MqStats *ret);
