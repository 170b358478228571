/* TLS trust for every client of the project (netclientd and nmctl towards netmakerd's API, both
 * daemons towards the broker) and netmakerd's own certificate: a server is trusted by the SHA-256
 * of its certificate's public key (a pin, written "sha256//BASE64" as curl and kubeadm do), or by a
 * CA (a CA file, else the system's trust store) and its name. OpenSSL underneath. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define NM_TLS_PIN_PREFIX "sha256//"
#define NM_TLS_PIN_LEN    32
/* "sha256//" + 44 characters of base64 */
#define NM_TLS_PIN_TEXT_LEN (8 + 44)

typedef struct NmTlsPin {
        uint8_t b[NM_TLS_PIN_LEN];
} NmTlsPin;

/* "sha256//<base64 of 32 bytes>"; false for anything else. */
bool nm_tls_pin_parse(const char *text, NmTlsPin *ret);
char *nm_tls_pin_format(const NmTlsPin *p);
bool nm_tls_pin_equal(const NmTlsPin *a, const NmTlsPin *b);
/* The pin of the first certificate in `pem` (its SubjectPublicKeyInfo, DER, hashed). Errors are
 * NM_ERROR_INVALID_ARGUMENT naming what is wrong; `what` names the input in them ("the file
 * /etc/netmaker/tls.crt"). */
int nm_tls_pin_of_pem(const char *pem, size_t len, const char *what, NmTlsPin *ret, GError **error);
int nm_tls_pin_of_file(const char *path, NmTlsPin *ret, GError **error);

/* How a client decides whether to trust a server. */
typedef enum NmTlsMode {
        NM_TLS_CA,    /* the CA file (or the system's trust store) and the server's name */
        NM_TLS_PIN,   /* exactly the pinned public key, within its certificate's validity period */
        NM_TLS_LEARN, /* any server: only records what it presents (nmctl's first login) */
} NmTlsMode;

typedef struct NmTlsTrust {
        NmTlsMode mode;
        NmTlsPin pin;  /* NM_TLS_PIN */
        char *ca_file; /* NM_TLS_CA; NULL: the system's trust store */
        /* Set by the last handshake: */
        bool seen_valid;
        NmTlsPin seen; /* the public key the server presented */
        char *failure; /* why it was refused (pin mode), for the caller's error message */
} NmTlsTrust;

void nm_tls_trust_clear(NmTlsTrust *t);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NmTlsTrust, nm_tls_trust_clear)
/* Copies mode, pin and CA file (not the last handshake's results). */
void nm_tls_trust_copy(NmTlsTrust *dst, const NmTlsTrust *src);

/* Pin and learn modes: makes `ssl_ctx` (an OpenSSL SSL_CTX *) verify every handshake with `t`,
 * which must outlive the handshakes; a refusal sets t->failure. CA mode: loads the CA file or
 * the system's trust store and asks for the peer's verification (the name is the caller's:
 * libcurl and libmosquitto check it). Returns 0 or -EIO. */
int nm_tls_trust_apply(void *ssl_ctx, NmTlsTrust *t);

/* A new ECDSA P-256 key and a self-signed certificate for `names` (DNS names and IP addresses,
 * the first also the common name), valid from now for `days`. PEM texts; the key is a secret. */
int nm_tls_make_self_signed(const char *const *names, unsigned days, char **ret_key_pem, char **ret_cert_pem,
                            GError **error);

/* The host part of an http(s):// or mqtt(s):// URL ("https://[fd00::1]:8081" -> "fd00::1"), or NULL. */
char *nm_url_host(const char *url);
/* Whether `host` (a name or an address) is this machine's loopback: the only place plain http://
 * and mqtt:// are allowed without an explicit insecure option. */
bool nm_host_is_loopback(const char *host);

/* A PEM certificate's notAfter as Unix time (0 on failure), for logs and checks. */
gint64 nm_tls_cert_not_after(const char *pem, size_t len);
