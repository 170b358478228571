/* netmakerd's TLS certificate: the configured one, or a self-signed one made at the first start in
 * the state directory and kept; and the pin enrollment tokens carry. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "config.h"
#include "tls.h"

typedef struct ServerCert {
        char *cert_path;
        char *cert_pem;
        char *key_pem; /* secret */
        NmTlsPin pin;  /* of the certificate's key */
        bool made;     /* made just now */
} ServerCert;

void server_cert_clear(ServerCert *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ServerCert, server_cert_clear)

/* tls_certificate, or <state_directory>/tls/server.crt. */
char *server_cert_path(const Config *c);
/* Loads tls_certificate/tls_key, or <state_directory>/tls/server.{crt,key}, making those (a key
 * file 0600 in a 0700 directory) when they do not exist yet. Errors name the file and the problem. */
int server_cert_load(const Config *c, ServerCert *ret, GError **error);
