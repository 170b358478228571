/* netmakerd's owner object: the event loop, the configuration, the store, the HTTP server, the
 * MQTT connection, the server's message key pair and token secret; and the glue that commits a
 * change and then publishes its messages. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "auth.h"
#include "config.h"
#include "failover.h"
#include "http.h"
#include "keys.h"
#include "mq.h"
#include "peers.h"
#include "ratelimit.h"
#include "store.h"
#include "tls-cert.h"

typedef struct Manager {
        sd_event *event;
        Config *config;
        Store *store;
        Http *http;
        Mq *mq;                  /* NULL when running without a broker */
        AuthWorker *auth_worker; /* password checks off the event loop */
        RateLimit *login_limit;  /* per source address; NULL: off */
        RateLimit *register_limit;
        NmKey msg_public;
        NmKey msg_secret;
        uint8_t token_secret[AUTH_SECRET_LEN];
        char *api_url;
        ServerCert cert;    /* the API's certificate, when config->tls */
        bool has_token_pin; /* what enrollment tokens pin (token_pin=) */
        NmTlsPin token_pin;
        NmTlsTrust broker_trust;      /* how netmakerd, and hosts after registration, verify the broker */
        char *broker_ca_pem;          /* broker_ca_file's text, handed to hosts */
        GList *broker_waiters;        /* BrokerWaiter*, see manager_wait_broker() */
        GHashTable *accounts_pending; /* host ids of registrations between account and commit */
        /* Real networks (docs/netmakerd.md "Hosts behind NAT"): */
        uint8_t observer_secret[32]; /* the per-network observer keys derive from it */
        struct ObserverKeys *observer_keys;
        struct Observer *observer;         /* the UDP port; NULL when udp_listen=off or it failed */
        char *observer_endpoint;           /* "ip:port" hosts are told; NULL: none */
        PeersServerInfo server_info;       /* what network states tell hosts (peers.c) */
        FailoverReports *failover_reports; /* the hosts' latest handshake reports */
        int passed_api_fd, passed_udp_fd;  /* sockets from systemd, until taken over; -1: none */
        sd_event_source *stale_timer;      /* removes stale hosts (host_remove_stale) */
        bool stopping;
} Manager;

/* Takes ownership of `config`. */
int manager_new(Config *config, Manager **ret);
void manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)
/* Opens the store, bootstraps keys and the admin, starts listening and connecting. */
int manager_start(Manager *m);
int manager_run(Manager *m);

static inline bool manager_broker_enabled(Manager *m)
{
        return m->config->broker_url != NULL;
}

/* Calls `func` once: with 0 when the broker connection is (re)established, with -ETIMEDOUT
 * after `timeout_usec`, or with -ECANCELED when the server stops. For requests that arrive while
 * the broker is away for a moment (netmakerd just started, or the broker restarts). */
typedef void (*BrokerWaitFunc)(int r, void *userdata);
int manager_wait_broker(Manager *m, uint64_t timeout_usec, BrokerWaitFunc func, void *userdata);

/* Stamps the outbox's serials, commits, then publishes (messages for hosts whose broker is
 * away are dropped: those hosts catch up with a snapshot). */
int manager_commit(Manager *m, StoreTxn *t, Outbox *o, GError **error);
void manager_publish(Manager *m, Outbox *o);
/* Broker accounts (manager-accounts.c). A registration marks its host id pending from asking for
 * the account until it committed the host or gave up (then it queued the account's deletion):
 * such an account has no host yet and is no orphan. Settling an id that is not pending is fine. */
void manager_account_pending(Manager *m, const char *host_id);
void manager_account_settled(Manager *m, const char *host_id);
/* Deletes a host's broker account now, or keeps it queued until the broker is back. */
void manager_delete_account(Manager *m, const char *host_id);
/* After every connection to the broker: deletes the queued accounts, then lists the broker's
 * host accounts, deletes those of no host and binds those made before accounts were bound to
 * their client id. */
void manager_accounts_sync(Manager *m);
/* Hosts (manager-hosts.c). Deletes a host: it hears "host-deleted", its peers lose it, its broker
 * account goes (now, or at the next connection to the broker). */
int manager_delete_host(Manager *m, const char *host_id, GError **error);
/* "online", "offline" or "stale", by the age of its last check-in at `now` (host_offline_after,
 * host_stale_after). */
const char *manager_host_status(Manager *m, const Host *h, gint64 now);
/* With host_remove_stale, deletes stale hosts now and from then on as they become stale. */
int manager_hosts_start(Manager *m);
/* A host's check-in or snapshot request, from MQTT or PUT /api/v1/host. */
int manager_handle_report(Manager *m, const char *host_id, const NmReport *report, GError **error);
/* The peers' handshakes of a check-in: relays pairs that cannot connect, and lets relayed pairs
 * connect directly again (manager-failover.c). Logs what fails; never fails the check-in. */
void manager_failover_report(Manager *m, const char *host_id, const NmReport *report);
/* Relays the pair (a, b) through `relay`, or lets it connect directly (relay NULL) (manager-failover.c). */
int manager_failover_set(Manager *m, const char *network, const char *a, const char *b, const char *relay,
                         GError **error);
/* The source address of a host's HTTPS request, as a candidate endpoint (not loopback; http-hosts.c
 * calls it). */
void manager_host_http_address(Manager *m, const char *host_id, const struct sockaddr *sa);
/* A network was created or deleted (the observer's keys). */
void manager_networks_changed(Manager *m, const char *deleted);
/* The current unix time. */
gint64 manager_now(void);
