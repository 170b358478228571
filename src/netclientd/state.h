/* netclientd's on-disk state under /var/lib/netclient: the host's key pairs, the server it is
 * registered with (credentials), and the last desired state of every joined network. The directory
 * is 0700 and every file 0600, written atomically (temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves either the old or the new file, never half of one. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "keys.h"
#include "proto.h"
#include "tls.h"

#define STATE_IDENTITY_FILE  "identity.json"
#define STATE_SERVER_FILE    "server.json"
#define STATE_NODES_FILE     "state.json"
#define STATE_BROKER_CA_FILE "broker-ca.pem"
#define STATE_MAX_FILE_SIZE  (64u * 1024 * 1024)

/* Creates the directory (and parents) with mode 0700, or tightens an existing one to 0700. */
int state_dir_prepare(const char *dir, GError **error);
/* Writes `name` in `dir` with mode 0600, atomically. */
int state_write_atomic(const char *dir, const char *name, const void *data, size_t len, GError **error);
/* Reads a whole file; -ENOENT (without setting `error`) when it does not exist. A file that others
 * may read is tightened to 0600 first. */
int state_read(const char *dir, const char *name, char **ret, size_t *ret_len, GError **error);
/* Removes a file; a missing file is not an error. */
int state_remove(const char *dir, const char *name, GError **error);

/* The host's WireGuard key pair and its message (crypto_box) key pair. */
typedef struct Identity {
        NmKey wg_private;
        NmKey wg_public;
        NmKey msg_private;
        NmKey msg_public;
} Identity;

int identity_generate(Identity *ret);
/* -ENOENT when no identity has been saved yet. */
int identity_load(const char *dir, Identity *ret, GError **error);
int identity_save(const char *dir, const Identity *id, GError **error);
/* Loads the identity, or generates and saves one. Returns 1 when a new one was made. */
int identity_load_or_create(const char *dir, Identity *ret, GError **error);
void identity_clear(Identity *id);

/* The one server this host is registered with. */
typedef struct ServerConfig {
        char *api;        /* "https://…", from the token */
        NmKey server_key; /* pinned from the token */
        bool has_pin;     /* the API's TLS key, pinned from the token; else a CA decides */
        NmTlsPin pin;
        char *host_id;
        char *credential; /* secret: "nmh.<id>.<secret>" */
        char *mqtt_url;   /* NULL: the server runs without a broker */
        char *mqtt_username;
        char *mqtt_password; /* secret */
        char *topic_msg;
        char *topic_report;
        bool mqtt_has_pin; /* the broker's TLS key, as the server said at registration */
        NmTlsPin mqtt_pin;
        char *mqtt_ca_pem; /* or the CA of the broker's certificate, as the server said */
} ServerConfig;

ServerConfig *server_config_new(void);
void server_config_free(ServerConfig *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ServerConfig, server_config_free)
/* -ENOENT when the host is not registered. */
int server_config_load(const char *dir, ServerConfig **ret, GError **error);
int server_config_save(const char *dir, const ServerConfig *s, GError **error);
char *server_config_to_json(const ServerConfig *s);
ServerConfig *server_config_from_json(const char *data, size_t len, GError **error);

/* The last desired state of all networks (as the server described it) plus local choices: the
 * networks the user disconnected. */
typedef struct NodeState {
        NmState *state;
        GHashTable *disconnected; /* set of network names */
} NodeState;

NodeState *node_state_new(void);
void node_state_free(NodeState *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NodeState, node_state_free)
int node_state_load(const char *dir, NodeState **ret, GError **error);
int node_state_save(const char *dir, const NmState *state, GHashTable *disconnected, GError **error);
char *node_state_to_json(const NmState *state, GHashTable *disconnected);
NodeState *node_state_from_json(const char *data, size_t len, GError **error);
