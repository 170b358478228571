/* Enrollment tokens: base64url JSON carrying the server's API URL, the key value, the server's
 * public message key and (version 2) the pin of the server's TLS key (docs/protocol.md §2.5). */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include "keys.h"
#include "tls.h"

#define NM_TOKEN_MAX_LEN 2048
#define NM_KEY_VALUE_LEN 32

#define NM_TOKEN_VERSION 2 /* what nm_token_encode() writes; version 1 is still read */

typedef struct NmToken {
        int version; /* 1 or 2 */
        char *api;   /* "http://host:port" or "https://…", no trailing slash */
        char *value; /* 32 characters A-Z2-7 */
        NmKey server_key;
        bool has_pin; /* version 2 with "pin": verify the server by this key, not by a CA */
        NmTlsPin pin;
} NmToken;

void nm_token_clear(NmToken *t);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NmToken, nm_token_clear)

/* A version 2 token; `pin` NULL: none (the server is verified by a CA). */
char *nm_token_encode(const char *api, const char *value, const NmKey *server_key, const NmTlsPin *pin);
/* Strict decoding; fails with NM_ERROR_INVALID_ARGUMENT and a message saying what is wrong
 * (never quoting the secret). */
bool nm_token_decode(const char *token, NmToken *ret, GError **error);

/* A new random key value: 32 characters of base32 (160 bits). */
char *nm_key_value_new(void);
bool nm_key_value_valid(const char *v);
/* http:// or https:// URL with a host, no credentials, no query or fragment. */
bool nm_api_url_valid(const char *url);
