/* Mosquitto dynamic-security commands: the JSON batches netmakerd publishes to
 * $CONTROL/dynamic-security/v1 and the matching of the answers on .../v1/response to requests by
 * correlation id, with a timeout, so that every request completes exactly once. No MQTT here: mq.c
 * publishes what this builds and feeds it what arrives. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-event.h>

#define DYNSEC_TOPIC                "$CONTROL/dynamic-security/v1"
#define DYNSEC_RESPONSE_TOPIC       "$CONTROL/dynamic-security/v1/response"
#define DYNSEC_DEFAULT_TIMEOUT_USEC ((uint64_t)10 * 1000000)
/* The broker's answers are small; anything bigger is not one of ours. */
#define DYNSEC_MAX_RESPONSE (1024u * 1024)

/* ---- Commands and batches ------------------------------------------------------------------ */

typedef struct DynsecBatch DynsecBatch;

DynsecBatch *dynsec_batch_new(void);
void dynsec_batch_free(DynsecBatch *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DynsecBatch, dynsec_batch_free)

/* Appends one command (a JSON object with at least "command"; taken over). The broker errors in
 * `tolerated` (NULL-terminated, may be NULL) count as success for this command: "Client not
 * found" for a delete, say. Returns the command's index. */
guint dynsec_batch_add(DynsecBatch *b, JsonNode *command, const char *const *tolerated);
guint dynsec_batch_size(const DynsecBatch *b);

/* The payload: {"commands":[…]} with "correlationData":"<prefix>.<request id>.<index>" in every
 * command. The result holds passwords: free it with nm_free_secret(), never log it. */
char *dynsec_batch_to_json(const DynsecBatch *b, const char *correlation_prefix, guint64 request_id);

/* After completion: the broker's error for command `i` (NULL if it succeeded, or was not
 * answered), and the "data" member of its answer (NULL if none). */
const char *dynsec_batch_error(const DynsecBatch *b, guint i);
JsonObject *dynsec_batch_data(const DynsecBatch *b, guint i);
bool dynsec_batch_answered(const DynsecBatch *b, guint i);

/* Command builders (docs: mosquitto.org/documentation/dynamic-security). */
typedef struct DynsecAcl {
        const char *acltype; /* publishClientSend, publishClientReceive, subscribePattern, ... */
        const char *topic;
        bool allow;
} DynsecAcl;

JsonNode *dynsec_cmd_create_role(const char *rolename, const DynsecAcl *acls, size_t n_acls);
JsonNode *dynsec_cmd_delete_role(const char *rolename);
JsonNode *dynsec_cmd_add_role_acl(const char *rolename, const DynsecAcl *acl);
/* `clientid` (may be NULL): the only client id the account may connect with. */
JsonNode *dynsec_cmd_create_client(const char *username, const char *password, const char *clientid,
                                   const char *rolename);
/* modifyClient with only "clientid": binds an existing client to one client id. */
JsonNode *dynsec_cmd_set_client_id(const char *username, const char *clientid);
JsonNode *dynsec_cmd_delete_client(const char *username);
JsonNode *dynsec_cmd_get_client(const char *username);
JsonNode *dynsec_cmd_add_client_role(const char *username, const char *rolename);
/* Verbose listings, `count` entries from `offset` (sorted by name). */
JsonNode *dynsec_cmd_list_clients(guint offset, guint count);
JsonNode *dynsec_cmd_list_roles(guint offset, guint count);
/* Default access for clients without a matching ACL: subscribe and publishClientSend. */
JsonNode *dynsec_cmd_set_default_acl_access(bool subscribe, bool publish_client_send);

/* The batches netmakerd sends (docs/protocol.md §3.1). */
char *dynsec_host_name(const char *host_id); /* "host-<id>": client, role and client id */
/* deleteClient + deleteRole (missing is fine), createRole with the host's ACLs, createClient
 * bound to the client id "host-<id>" (so that no other account can take the host's session): a
 * retry after a lost answer replaces the account instead of failing on "already exists". */
DynsecBatch *dynsec_batch_host_account_create(const char *server, const char *host_id, const char *password);
DynsecBatch *dynsec_batch_host_account_delete(const char *server, const char *host_id);
/* Binds the client "host-<id>" to the client id "host-<id>" (accounts made before netmakerd
 * bound them). */
DynsecBatch *dynsec_batch_host_account_bind(const char *host_id);

/* Listing the host accounts: one page is a listClients and a listRoles (verbose) from `offset`,
 * DYNSEC_LIST_PAGE entries of each; dynsec_host_accounts_add() takes the answer. */
#define DYNSEC_LIST_PAGE 500u
/* The most pages one listing may take (a broker that keeps answering full pages is not ours). */
#define DYNSEC_LIST_MAX_PAGES 2000u
DynsecBatch *dynsec_batch_host_accounts_list(guint offset, guint page_size);

/* What the broker holds for one host id: the client and the role "host-<id>". */
typedef struct DynsecHostAccount {
        char *host_id;
        bool has_client;
        bool bound; /* the client may connect only with the client id "host-<id>" */
        bool has_role;
        bool role_ours; /* the role's ACLs name this server's topics nm/<server>/host/<id>/... */
} DynsecHostAccount;
void dynsec_host_account_free(DynsecHostAccount *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DynsecHostAccount, dynsec_host_account_free)

/* Adds the "host-<uuid>" clients and roles of one answered page to `accounts` (host id →
 * DynsecHostAccount, made with g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
 * dynsec_host_account_free)); other entries are skipped. Returns 1 when more pages follow, 0 after
 * the last page, -EBADMSG when the answers are not listings. */
int dynsec_host_accounts_add(const DynsecBatch *b, const char *server, guint offset, guint page_size,
                             GHashTable *accounts);
/* Run on every connection: default ACL access denies subscribe and publishClientSend; the role
 * "netmakerd-<server>" may publish to every host's message topic and read every report topic;
 * then getClient for `admin_user` (see dynsec_client_has_role()). Idempotent. */
#define DYNSEC_SETUP_GET_CLIENT_INDEX(b) (dynsec_batch_size(b) - 1)
char *dynsec_server_role_name(const char *server);
DynsecBatch *dynsec_batch_server_setup(const char *server, const char *admin_user);
/* Whether a getClient answer's data lists `rolename`. */
bool dynsec_client_has_role(JsonObject *get_client_data, const char *rolename);

/* ---- Requests in flight -------------------------------------------------------------------- */

typedef struct Dynsec Dynsec;

/* Called exactly once per request: r = 0 when every command succeeded (or failed with a tolerated
 * error); -EIO with the broker's message for the first command that failed; -ETIMEDOUT when the
 * broker did not answer in time; -ENOTCONN / -ECANCELED from dynsec_fail_all() / dynsec_free().
 * `b` (borrowed) holds each command's answer. */
typedef void (*dynsec_done_t)(int r, const char *message, DynsecBatch *b, void *userdata);

/* `timeout_usec` 0: DYNSEC_DEFAULT_TIMEOUT_USEC. The correlation prefix is random, so several
 * netmakerd sharing a broker ignore each other's answers. */
int dynsec_new(sd_event *event, uint64_t timeout_usec, Dynsec **ret);
/* Fails what is pending with -ECANCELED. May be called from a `done` callback. */
Dynsec *dynsec_free(Dynsec *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Dynsec, dynsec_free)

/* Takes the batch, starts its timeout, and returns the payload to publish on DYNSEC_TOPIC
 * (nm_free_secret() it) and the request's id. `done` is never called from inside
 * dynsec_submit(). */
int dynsec_submit(Dynsec *d, DynsecBatch *b, dynsec_done_t done, void *userdata, char **ret_payload,
                  guint64 *ret_id);
/* Withdraws a request whose payload could not be published, without calling `done`. */
void dynsec_cancel(Dynsec *d, guint64 request_id);

/* A message from DYNSEC_RESPONSE_TOPIC, any bytes. Returns the number of answers that were ours,
 * or -EBADMSG when the payload is not a dynamic-security response at all. Answers for unknown
 * ids (another server's, or late ones) are ignored. */
int dynsec_handle_response(Dynsec *d, const void *payload, size_t len);

/* Fails every pending request (e.g. -ENOTCONN when the connection to the broker is lost). */
void dynsec_fail_all(Dynsec *d, int error, const char *message);
guint dynsec_pending(Dynsec *d);
const char *dynsec_correlation_prefix(Dynsec *d);
