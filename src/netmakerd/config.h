/* netmakerd's configuration: built-in defaults, then the key file, then NETMAKERD_* environment
 * variables, each value checked with an error that names the key, the value and what is accepted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "cidr.h"

#define CONFIG_DEFAULT_PATH "/etc/netmaker/netmakerd.conf"
#define CONFIG_GROUP        "netmakerd"
#define CONFIG_ENV_PREFIX   "NETMAKERD_"

/* A rate limit per source address, "BURST/PERIOD": BURST requests at once, refilled evenly over
 * PERIOD. */
typedef struct ConfigRate {
        unsigned burst;  /* 0: no limit ("off") */
        unsigned period; /* seconds */
} ConfigRate;

typedef struct Config {
        char *listen;      /* as given: "127.0.0.1:8081", "[::1]:0" */
        int listen_family; /* parsed form of `listen` */
        NmInAddr listen_addr;
        uint16_t listen_port;
        char *api_url; /* NULL: derived from the bound address */
        char *server_name;
        char *broker_url;        /* NULL: MQTT disabled */
        char *broker_public_url; /* what hosts are told; NULL: broker_url */
        char *broker_username;
        char *broker_password;
        char *broker_certificate; /* the broker's certificate: its key is pinned (ours and hosts') */
        char *broker_ca_file;     /* else the CA that issued it; NULL: the system's trust store */
        char *database;           /* "sqlite:///path"; derived from state_directory when unset */
        char *state_directory;
        char *dns_domain;
        uint16_t default_listen_port;
        unsigned default_keepalive;
        unsigned default_mtu;
        char *admin_user;
        char *admin_password;
        char *master_key;
        uint64_t token_lifetime; /* seconds */
        uint64_t max_request_size;
        unsigned max_connections;
        unsigned connection_timeout; /* seconds */
        ConfigRate login_rate_limit;
        ConfigRate register_rate_limit;
        unsigned rate_limit_sources; /* source addresses each limit tracks */
        int log_level;
        bool tls;              /* serve HTTPS (the default) */
        char *tls_certificate; /* PEM; NULL: <state_directory>/tls/server.crt, made at the first start */
        char *tls_key;         /* PEM; NULL: <state_directory>/tls/server.key */
        char *token_pin;       /* "auto", "none" or a pin "sha256//..." put into enrollment tokens */
        bool accept_v1_tokens; /* tokens made before pins (they carry no pin) */
        bool insecure;         /* allow plain HTTP / MQTT off loopback, with a warning */
        /* The UDP port of the endpoint observer and the STUN responder (docs/netmakerd.md "Hosts
         * behind NAT"). */
        char *udp_listen; /* as given, "off", or NULL: the default (listen's address, port 3478) */
        bool udp_off;     /* udp_listen=off */
        int udp_family;   /* parsed form, valid after config_load() unless udp_off */
        NmInAddr udp_addr;
        uint16_t udp_port;
        char *udp_public_endpoint; /* "ip:port" hosts send to; NULL: api_url's address and the bound port */
        bool stun;                 /* answer STUN Binding requests there, and tell hosts to ask */
        ConfigRate udp_rate_limit; /* datagrams worth an answer or a decryption, per source address */
        unsigned failover_after;   /* seconds without a session before a pair is relayed; 0 = never */
        unsigned host_offline_after; /* seconds without a check-in after which a host is offline */
        unsigned host_stale_after;   /* ... and stale */
        bool host_remove_stale;      /* stale hosts are deleted */
} Config;

Config *config_new_defaults(void);
void config_free(Config *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

/* Loads the configuration. `path` NULL means the default path, which may be missing; an explicit
 * path must exist. `envp` NULL means the process environment. Errors are NM_ERROR_INVALID_ARGUMENT
 * with a message fit for the user. */
int config_load(const char *path, char **envp, Config **ret, GError **error);

/* "sqlite" for "sqlite:///…", and the path in *ret_location; -EINVAL (with a message) otherwise. */
int config_parse_database(const char *url, char **ret_scheme, char **ret_location, GError **error);

/* The text of --help's key list: every key, its environment variable and default. */
char *config_help_text(void);
