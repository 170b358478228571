/* netclientd's configuration: defaults (and $STATE_DIRECTORY from systemd's StateDirectory=), then
 * /etc/netclient/netclientd.conf, then NETCLIENTD_* environment variables, then command-line
 * options (each later source wins). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "config.h"
#include "wg-backend.h"

#define NETCLIENTD_DEFAULT_CONFIG SYSCONFDIR "/netclient/netclientd.conf"
/* Fixed, not from the build's localstatedir: it must match the unit's StateDirectory=netclient. */
#define NETCLIENTD_DEFAULT_STATE_DIR "/var/lib/netclient"

typedef struct Config {
        char *config_file;
        char *state_dir;
        WgBackendKind wg_backend;
        char *wireguard_go;    /* NULL: "wireguard-go" from PATH */
        char *uapi_dir;        /* NULL: /run/wireguard */
        int log_level;         /* syslog level */
        uint64_t checkin_usec; /* periodic check-in */
        uint64_t stats_usec;   /* peer statistics refresh */
        uint64_t http_timeout_usec;
        char *host_name;     /* NULL: the system host name */
        uint16_t dns_port;   /* the mesh DNS responder's port on the mesh addresses (53) */
        char **stun_servers; /* "host[:port]" each; NULL: no STUN (public_ip is not reported) */
        char *ca_file; /* [Server] CAFile=: trusts a server whose token pins nothing; NULL: the system's */
        bool insecure; /* [Server] Insecure=: allow plain http:// and mqtt:// off loopback */
} Config;

Config *config_new(void);
void config_free(Config *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

/* Loads the key file at c->config_file (a missing file is fine, a malformed one is not). */
int config_load_file(Config *c, GError **error);
/* Applies NETCLIENTD_* variables from `envp` (NULL: the process environment). */
int config_load_env(Config *c, char **envp, GError **error);
/* Sets one setting by its key-file name ("Backend", "LogLevel", ...); used by all three sources
 * so every source accepts the same values with the same messages. */
int config_set(Config *c, const char *key, const char *value, const char *source, GError **error);
