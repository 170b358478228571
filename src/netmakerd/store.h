/* netmakerd's store: typed access to users, networks, enrollment keys, hosts and nodes over a
 * small SQL backend interface (SQLite now, PostgreSQL later), with the schema and its migrations.
 * Every function reports failures as a negative errno plus a GError in the NM_ERROR domain whose
 * code maps to the HTTP status (not-found, conflict, unavailable, internal). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "keys.h"
#include "macro.h"
#include "proto.h"

/* ---- backend interface -------------------------------------------------------------------- */

typedef enum StoreType {
        STORE_NULL,
        STORE_INT,
        STORE_TEXT,
} StoreType;

typedef struct StoreValue {
        StoreType type;
        gint64 i;
        const char *s;
} StoreValue;

static inline StoreValue SV_INT(gint64 i)
{
        return (StoreValue){.type = STORE_INT, .i = i};
}
/* NULL becomes SQL NULL. */
static inline StoreValue SV_TEXT(const char *s)
{
        return (StoreValue){.type = s ? STORE_TEXT : STORE_NULL, .s = s};
}

/* An integer, or SQL NULL when not `set`. */
static inline StoreValue SV_OPT_INT(gint64 i, bool set)
{
        return set ? SV_INT(i) : (StoreValue){.type = STORE_NULL};
}

/* Every row of a statement, in memory. */
typedef struct StoreResult {
        guint n_rows;
        guint n_cols;
        StoreType *types; /* n_rows * n_cols */
        gint64 *ints;
        char **texts;
        gint64 changes; /* rows changed by an INSERT/UPDATE/DELETE */
} StoreResult;

StoreResult *store_result_new(guint n_cols);
void store_result_add_row(StoreResult *r);
/* Sets a cell of the last row. */
void store_result_set(StoreResult *r, guint col, StoreType type, gint64 i, const char *s);
void store_result_free(StoreResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreResult, store_result_free)
/* NULL for SQL NULL; integers are not converted. */
const char *store_result_text(const StoreResult *r, guint row, guint col);

/* Helpers for the store's object files: string lists are stored as JSON arrays, and a missing
 * object is NM_ERROR_NOT_FOUND "<What> \"<name>\" does not exist" with -ENOENT. */
char *store_strv_to_json(char **v);
char **store_json_to_strv(const char *text);
int store_not_found(GError **error, const char *what, const char *name);
/* 0 for NULL; text is parsed. */
gint64 store_result_int(const StoreResult *r, guint row, guint col);
bool store_result_is_null(const StoreResult *r, guint row, guint col);

/* A backend: one file each (store-sqlite.c). SQL uses $1, $2… parameters, TEXT ids, INTEGER/BIGINT
 * numbers, 0/1 booleans, RETURNING and ON CONFLICT, which SQLite and PostgreSQL both accept.
 * Errors: -EEXIST for a unique or primary-key violation, -ENOENT for a foreign-key violation,
 * -EBUSY when the database is locked, -EIO otherwise; always with a GError. */
typedef struct StoreBackend {
        const char *name; /* "sqlite" */
        int (*open)(const char *location, void **ret_db, GError **error);
        void (*close)(void *db);
        /* A write transaction that holds its lock from the start (SQLite: BEGIN IMMEDIATE). */
        int (*begin)(void *db, GError **error);
        int (*commit)(void *db, GError **error);
        int (*rollback)(void *db);
        /* One statement with parameters; *ret may be NULL when the caller wants no rows. */
        int (*exec)(void *db, const char *sql, const StoreValue *params, size_t n_params, StoreResult **ret,
                    GError **error);
        /* Several statements without parameters (schema migrations). */
        int (*exec_script)(void *db, const char *sql, GError **error);
} StoreBackend;

extern const StoreBackend store_backend_sqlite;

/* ---- the store ------------------------------------------------------------------------------ */

typedef struct Store Store;

/* Opens "sqlite:///path" and brings its schema up to date (one transaction). */
int store_open(const char *url, Store **ret, GError **error);
void store_free(Store *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)
const char *store_backend_name(Store *s);
int store_schema_version(Store *s, gint64 *ret, GError **error);

int store_exec(Store *s, const char *sql, const StoreValue *params, size_t n_params, StoreResult **ret,
               GError **error);

/* Transactions: every multi-row change happens inside one. A StoreTxn rolls back when it goes out
 * of scope without a commit. Transactions do not nest. */
typedef struct StoreTxn {
        Store *store;
        bool active;
} StoreTxn;
int store_txn_begin(Store *s, StoreTxn *t, GError **error);
int store_txn_commit(StoreTxn *t, GError **error);
void store_txn_done(StoreTxn *t);
#define _cleanup_txn_ _cleanup_(store_txn_done)
bool store_in_transaction(Store *s);

/* ---- settings (server key pair, token secret) ------------------------------------------------ */

int store_setting_get(Store *s, const char *name, char **ret, GError **error); /* -ENOENT */
int store_setting_set(Store *s, const char *name, const char *value, GError **error);

/* ---- objects -------------------------------------------------------------------------------- */

typedef struct User {
        char *username;
        char *password_hash;
        char *role; /* "admin" or "user" */
        gint64 created_at;
        gint64 password_changed_at;
        gint64 token_generation; /* see auth_token_generation_new() */
} User;

typedef struct Network {
        char *name;
        char *ipv4_range; /* canonical CIDR or NULL */
        char *ipv6_range;
        guint16 listen_port;
        guint keepalive;
        guint mtu;
        char *dns_domain;
        gint64 created_at;
        gint64 n_nodes; /* filled by get/list */
} Network;

typedef struct EnrollmentKey {
        char *id;
        char *name;
        char *value;
        char **networks;
        gint64 uses_remaining;
        bool unlimited;
        gint64 expires_at; /* 0 = never */
        char **tags;
        gint64 created_at;
} EnrollmentKey;

typedef struct Host {
        char *id;
        char *name;
        char *os;
        char *version;
        NmKey wg_key;
        NmKey msg_key;
        guint16 listen_port;
        char **endpoints;      /* IP addresses, most preferred first */
        char *public_endpoint; /* IP address or NULL */
        char *credential_hash;
        char **tags;
        gint64 last_checkin;
        gint64 created_at;
        guint64 serial;
        /* The admin's settings (PUT /hosts/{id}, docs/protocol.md §2.4); each unset means "the default". */
        guint16 static_listen_port; /* its links listen here and on the next free ports; 0: the networks' */
        char *static_endpoint;      /* the address its peers reach it at, whatever it reports; NULL: none */
        bool has_keepalive;         /* false: the network's keepalive */
        guint keepalive;            /* persistent keepalive of its pairs, 0-3600 s (0: off) */
        guint mtu;                  /* MTU of its links; 0: the network's */
        char *http_address; /* source address of the host's last HTTPS request (not loopback), or NULL */
} Host;

typedef struct Node {
        char *id;
        char *host_id;
        char *host_name; /* filled by reads */
        char *network;
        char *ipv4; /* address without prefix length, or NULL */
        char *ipv6;
        guint16 listen_port;
        bool connected;
        gint64 created_at;
        char **tags;   /* never NULL after reads (ACL selectors "tag:<tag>", docs/protocol.md §4.2.1) */
        NmRoles roles; /* gateways, relays, internet gateway use (§4.1) */
        /* "ip:port" the server's endpoint observer saw this node's WireGuard packets come from (the
         * mapping its NAT made for the link's socket), or NULL (docs/protocol.md §4.5). */
        char *observed_endpoint;
} Node;

/* A node with its host: what peer computation reads. */
typedef struct Member {
        Node *node;
        Host *host;
} Member;

void user_free(User *u);
void network_free(Network *n);
void enrollment_key_free(EnrollmentKey *k);
void host_free(Host *h);
Host *host_copy(const Host *h);
void node_free(Node *n);
Node *node_copy(const Node *n);
void member_free(Member *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(User, user_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Network, network_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EnrollmentKey, enrollment_key_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Host, host_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Node, node_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Member, member_free)

/* Lists are GPtrArrays that free their elements. */

int store_user_get(Store *s, const char *username, User **ret, GError **error);
int store_user_list(Store *s, GPtrArray **ret, GError **error);
int store_user_insert(Store *s, const User *u, GError **error);
int store_user_update(Store *s, const User *u, GError **error);
int store_user_delete(Store *s, const char *username, GError **error);
/* Users with `role`, or all users when NULL. */
int store_user_count(Store *s, const char *role, gint64 *ret, GError **error);

int store_network_get(Store *s, const char *name, Network **ret, GError **error);
int store_network_list(Store *s, GPtrArray **ret, GError **error);
int store_network_insert(Store *s, const Network *n, GError **error);
int store_network_update(Store *s, const Network *n, GError **error);
int store_network_delete(Store *s, const char *name, GError **error);

int store_key_get(Store *s, const char *id, EnrollmentKey **ret, GError **error);
/* -ENOENT when no key has this value. */
int store_key_get_by_value(Store *s, const char *value, EnrollmentKey **ret, GError **error);
int store_key_list(Store *s, GPtrArray **ret, GError **error);
int store_key_insert(Store *s, const EnrollmentKey *k, GError **error);
int store_key_delete(Store *s, const char *id, GError **error);
/* Takes one use of a limited key atomically: -ESTALE (NM_ERROR_GONE) when none is left. */
int store_key_take_use(Store *s, const EnrollmentKey *k, GError **error);

int store_host_get(Store *s, const char *id, Host **ret, GError **error);
int store_host_list(Store *s, GPtrArray **ret, GError **error);
/* The ids of the hosts whose last check-in is before `before` (unix time), oldest first. */
int store_host_ids_checked_in_before(Store *s, gint64 before, GPtrArray **ret, GError **error);
/* The ids of all hosts, as a set (g_hash_table_contains()). */
int store_host_ids(Store *s, GHashTable **ret, GError **error);
int store_host_insert(Store *s, const Host *h, GError **error);
/* Writes name, os, version, listen_port, endpoints, public_endpoint, last_checkin and the admin's
 * settings (static_listen_port, static_endpoint, keepalive, mtu). */
int store_host_update(Store *s, const Host *h, GError **error);
int store_host_delete(Store *s, const char *id, GError **error);
/* Raises the host's serial by one and returns the new value. */
int store_host_bump_serial(Store *s, const char *id, guint64 *ret, GError **error);
/* The id of the host with this WireGuard key, or -ENOENT. */
int store_host_find_by_wg_key(Store *s, const NmKey *key, char **ret_id, GError **error);

int store_node_get(Store *s, const char *id, Node **ret, GError **error);
/* Filters may be NULL. */
int store_node_list(Store *s, const char *network, const char *host_id, GPtrArray **ret, GError **error);
int store_node_find(Store *s, const char *host_id, const char *network, Node **ret, GError **error);
int store_node_insert(Store *s, const Node *n, GError **error);
int store_node_delete(Store *s, const char *id, GError **error);
int store_node_set_listen_port(Store *s, const char *id, guint16 port, GError **error);
int store_node_set_connected(Store *s, const char *id, bool connected, GError **error);
/* The endpoint the observer saw (NULL clears it), and since when. */
int store_node_set_observed(Store *s, const char *id, const char *endpoint, gint64 now, GError **error);
/* The source address of the host's last HTTPS request (NULL clears it). */
int store_host_set_http_address(Store *s, const char *id, const char *address, GError **error);
/* The addresses in use in a network (family AF_INET or AF_INET6), by nodes and external clients. */
int store_node_addresses(Store *s, const char *network, int family, GPtrArray **ret, GError **error);

/* Every node of a network with its host, or every node of every network when NULL. */
int store_members(Store *s, const char *network, GPtrArray **ret, GError **error);

/* Broker accounts whose deletion has to be retried when the broker is back. */
int store_account_cleanup_add(Store *s, const char *host_id, GError **error);
int store_account_cleanup_remove(Store *s, const char *host_id, GError **error);
int store_account_cleanup_list(Store *s, GPtrArray **ret, GError **error);

/* ---- topologies (store-topology.c): node tags and roles, ACLs, external clients ------------- */

typedef struct AclRule {
        char *id;
        char *network;
        char *source; /* "*", "node:<node id>" or "tag:<tag>" */
        char *destination;
        bool deny; /* else allow */
        gint64 created_at;
} AclRule;

typedef struct ExtClient {
        char *id;
        char *name;
        char *network;
        char *gateway; /* node id of its ingress gateway */
        char *ipv4;    /* without prefix length, or NULL */
        char *ipv6;
        NmKey public_key;
        bool enabled;
        char *dns;                /* the configuration's DNS line, or NULL */
        char **extra_allowed_ips; /* ranges behind the client; never NULL after reads */
        char **denied_nodes;      /* ids of nodes of its network it may not reach; never NULL after reads */
        bool internet_gateway;    /* full tunnel: its gateway (an internet gateway) forwards it anywhere */
        gint64 created_at;
} ExtClient;

/* A pair of nodes that could not connect directly, relayed through a third (docs/topologies.md
 * "Failover"). */
typedef struct Failover {
        char *network;
        char *node_a; /* node ids; stored with the lower first */
        char *node_b;
        char *relay;
        gint64 since;
} Failover;

void failover_free(Failover *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Failover, failover_free)
/* The relayed pairs of a network (of Failover), or of every network when NULL. */
int store_failover_list(Store *s, const char *network, GPtrArray **ret, GError **error);
/* Adds the pair or changes its relay. */
int store_failover_set(Store *s, const Failover *f, GError **error);
/* The pair connects directly again (a missing pair is fine). */
int store_failover_delete(Store *s, const char *a, const char *b, GError **error);

/* Whether the client may not reach the node. */
bool ext_client_denies(const ExtClient *c, const char *node_id);

void acl_rule_free(AclRule *r);
void ext_client_free(ExtClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AclRule, acl_rule_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ExtClient, ext_client_free)

int store_node_set_tags(Store *s, const char *id, char **tags, GError **error);
/* Writes every role column of the node. */
int store_node_set_roles(Store *s, const char *id, const NmRoles *roles, GError **error);
/* Drops what other rows say about a node that leaves: nodes it relayed are no longer relayed,
 * nodes that used it as their internet gateway no longer do, ACL rules that name it go, external
 * clients no longer list it as denied, failovers it is in or relays go. */
int store_node_forget(Store *s, const char *id, GError **error);

/* A network's ACL default: false (allow) when none is stored. */
int store_acl_default_get(Store *s, const char *network, bool *ret_deny, GError **error);
int store_acl_default_set(Store *s, const char *network, bool deny, GError **error);
/* Network name -> GINT_TO_POINTER(1) for every network whose default is deny. */
int store_acl_default_list(Store *s, GHashTable **ret, GError **error);
/* The rules of a network (of AclRule, oldest first), or of every network when NULL. */
int store_acl_rule_list(Store *s, const char *network, GPtrArray **ret, GError **error);
int store_acl_rule_insert(Store *s, const AclRule *r, GError **error);
/* -ENOENT (404) when the network has no rule of that id. */
int store_acl_rule_delete(Store *s, const char *network, const char *id, GError **error);

int store_ext_client_get(Store *s, const char *id, ExtClient **ret, GError **error);
/* Filters may be NULL; oldest first. */
int store_ext_client_list(Store *s, const char *network, const char *gateway, GPtrArray **ret,
                          GError **error);
/* 409 when the name or an address is taken in the network. */
int store_ext_client_insert(Store *s, const ExtClient *c, GError **error);
int store_ext_client_set_enabled(Store *s, const char *id, bool enabled, GError **error);
int store_ext_client_set_denied_nodes(Store *s, const char *id, char **node_ids, GError **error);
int store_ext_client_delete(Store *s, const char *id, GError **error);
