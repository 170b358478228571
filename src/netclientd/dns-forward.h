/* Forwarding for the mesh DNS responder: names outside the mesh, asked by the clients a listener
 * serves (an ingress gateway's external clients), go to the host's upstream resolvers
 * (dns-upstream.h) over UDP, and over TCP when an answer is truncated, asynchronously on sd-event;
 * answers are cached for their TTLs (dns-cache.h) and each client is rate-limited. Upstream
 * failures answer SERVFAIL; what we will not do (over the rate, no upstream known) REFUSED. */
#pragma once

#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <glib.h>

#include "cidr.h"
#include "dns-packet.h"

/* Where the names under a domain go: one of a network's nameservers (split DNS, docs/dns.md). */
typedef struct DnsRoute {
        char *domain;    /* lower case, no trailing dot: "corp.example" */
        GArray *servers; /* of struct sockaddr_storage, with their port, in order */
} DnsRoute;

DnsRoute *dns_route_new(const char *domain);
void dns_route_free(DnsRoute *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DnsRoute, dns_route_free)

/* Who a listener forwards for: queries from these sources, and over UDP only those that arrived
 * on this link (a spoofed source on another interface gets no answer sent to the real client);
 * and where names under the network's nameserver domains go (for those clients and for this host
 * itself). */
typedef struct DnsForwardScope {
        GArray *clients;   /* of NmPrefix */
        int ifindex;       /* 0: not checked */
        GPtrArray *routes; /* of DnsRoute; NULL or empty: none */
} DnsForwardScope;

/* Whether `src` (which arrived on `ifindex`; 0 when unknown, as over TCP, whose handshake proves
 * the source) may have names outside the zone forwarded. False for a NULL or empty scope. */
bool dns_forward_scope_allows(const DnsForwardScope *s, const struct sockaddr *src, int ifindex);
/* The route of the longest domain that `name` (lower case, no trailing dot) is or lies under; NULL
 * when none (or for a NULL scope). */
const DnsRoute *dns_forward_scope_route(const DnsForwardScope *s, const char *name);

typedef struct DnsForwarderConfig {
        const char *resolv_conf;          /* /etc/resolv.conf */
        const char *resolved_resolv_conf; /* /run/systemd/resolve/resolv.conf */
        uint16_t upstream_port;           /* 53; others only in tests */
        unsigned cache_entries;
        unsigned rate_burst;       /* per client: this many queries at once, */
        uint64_t rate_period_usec; /* refilled over this time */
        unsigned rate_clients;     /* clients tracked at most */
        uint64_t attempt_usec;     /* how long one upstream server has to answer */
        unsigned max_pending;      /* queries waiting for upstream at most */
} DnsForwarderConfig;

/* 1024 answers; 100 queries per client at once, 100 more every 10 s; 2 s per server; 256
 * pending. */
#define DNS_FORWARDER_CONFIG_DEFAULT                                                                        \
        ((DnsForwarderConfig){.resolv_conf = "/etc/resolv.conf",                                            \
                              .resolved_resolv_conf = "/run/systemd/resolve/resolv.conf",                   \
                              .upstream_port = 53,                                                          \
                              .cache_entries = 1024,                                                        \
                              .rate_burst = 100,                                                            \
                              .rate_period_usec = 10 * G_USEC_PER_SEC,                                      \
                              .rate_clients = 1024,                                                         \
                              .attempt_usec = 2 * G_USEC_PER_SEC,                                           \
                              .max_pending = 256})

typedef struct DnsForwarder DnsForwarder;
typedef struct DnsForwardRequest DnsForwardRequest;
/* The answer for the client (its id and question, sized for its transport). */
typedef void (*DnsForwardDone)(const uint8_t *answer, size_t len, void *userdata);

int dns_forwarder_new(sd_event *event, const DnsForwarderConfig *config, DnsForwarder **ret);
/* Cancels every pending request without calling back. */
DnsForwarder *dns_forwarder_free(DnsForwarder *f);
/* Ranges never asked upstream (of NmPrefix; copied): the mesh networks', so no responder forwards
 * to itself or to a peer that could forward back. */
void dns_forwarder_set_excluded(DnsForwarder *f, const GArray *prefixes);

/* Answers `q` from `client`. Returns 0 when `done` was already called (cache, rate limit, no
 * upstream, a failure at once), or 1 with *ret the pending request, whose `done` comes later from
 * the event loop (after which the request is gone). */
int dns_forwarder_query(DnsForwarder *f, const DnsQuery *q, const struct sockaddr *client, bool udp,
                        DnsForwardDone done, void *userdata, DnsForwardRequest **ret);
/* Answers `q` from `client` with the servers of `route` (a nameserver) instead of the host's
 * resolvers; otherwise as dns_forwarder_query(), but without the cache (the same name may route
 * elsewhere on another network; the client's own resolver caches), and without the rate limit when
 * `local` (this host itself asks). */
int dns_forwarder_query_route(DnsForwarder *f, const DnsQuery *q, const struct sockaddr *client, bool udp,
                              const DnsRoute *route, bool local, DnsForwardDone done, void *userdata,
                              DnsForwardRequest **ret);
/* Forgets a pending request (its client went): `done` is not called. */
void dns_forward_request_cancel(DnsForwardRequest *r);

typedef struct DnsForwarderStats {
        guint64 queries; /* every query handed over */
        guint64 cache_hits;
        guint64 upstream;     /* queries sent to an upstream server (each attempt) */
        guint64 rate_limited; /* refused over a client's rate */
        guint64 refused;      /* refused without an upstream server */
        guint64 servfail;     /* answered SERVFAIL: upstream failed, or too many pending */
        unsigned pending;
        unsigned cached;
} DnsForwarderStats;
void dns_forwarder_get_stats(DnsForwarder *f, DnsForwarderStats *ret);
