/* The host REST API's registration (docs/protocol.md §2.4): what a host sends (public material
 * only) and what it gets back (its secrets sealed to its message key), one type with one encoder
 * and one strict decoder each, used by netmakerd, netclientd and their tests. */
#pragma once

#include <stdbool.h>
#include <json-glib/json-glib.h>

#include "keys.h"
#include "proto.h"
#include "tls.h"

#define NM_HOST_OS_MAX      32
#define NM_HOST_VERSION_MAX 64

/* POST /api/v1/hosts/register. Structure only: the server judges the name, the labels and the
 * endpoints (and the token), so that its errors say what its rules are. */
typedef struct NmRegistration {
        char *token; /* secret */
        char *name;
        char *os;      /* NULL: "linux" */
        char *version; /* NULL: "unknown" */
        NmKey wg_public_key;
        NmKey msg_public_key;
        guint16 listen_port; /* 0: 51821 */
        char **endpoints;    /* IP addresses as sent; NULL: none */
} NmRegistration;

NmRegistration *nm_registration_new(void);
void nm_registration_free(NmRegistration *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmRegistration, nm_registration_free)
/* The request body (holds the token: a secret, free with nm_free_secret()). */
char *nm_registration_to_json(const NmRegistration *r);
/* Errors: NM_ERROR_INVALID_ARGUMENT naming the member (never quoting the token). */
NmRegistration *nm_registration_from_json(JsonObject *o, GError **error);

/* How a host reaches the broker. */
typedef struct NmBrokerAccess {
        char *url;
        char *username;
        char *password; /* secret; travels sealed */
        char *subscribe;
        char *publish;
        bool has_pin; /* the broker's key, when the server pins it */
        NmTlsPin pin;
        char *ca_pem; /* the CA of the broker's certificate, when the server was given one */
} NmBrokerAccess;

void nm_broker_access_free(NmBrokerAccess *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmBrokerAccess, nm_broker_access_free)

/* The 201 answer. */
typedef struct NmRegistered {
        char *host_id;
        char *credential; /* secret; travels sealed */
        NmKey server_msg_key;
        NmBrokerAccess *mqtt; /* NULL: the server runs without a broker (hosts pull) */
        NmState *state;
} NmRegistered;

NmRegistered *nm_registered_new(void);
void nm_registered_free(NmRegistered *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NmRegistered, nm_registered_free)
/* The body: the credential and the broker password go into "sealed", crypto_box-sealed from
 * the server's message key to the host's (as messages are), so no proxy log or capture of the
 * answer holds them. */
char *nm_registered_to_json(const NmRegistered *r, const NmKey *host_msg_public,
                            const NmKey *server_msg_secret);
/* Checks that "server_msg_key" is `server_msg_public` (the key the token carries), opens the
 * secrets with the host's message key, and checks the state is this host's. */
NmRegistered *nm_registered_parse(const char *data, gssize len, const NmKey *server_msg_public,
                                  const NmKey *host_msg_secret, GError **error);
