/* The WireGuard configuration file of an external client (docs/protocol.md §4.3), the text
 * wg-quick and the WireGuard apps import. */
#pragma once

#include <glib.h>

typedef struct ExtClientConfig {
        const char *private_key;      /* base64 */
        const char *const *addresses; /* "10.99.0.254/32", "fd00:99::fffe/128" */
        const char *dns;              /* NULL or "" for none */
        guint mtu;
        const char *peer_public_key; /* the gateway host's, base64 */
        const char *endpoint;        /* "ip:port" of the gateway */
        const char *const *allowed_ips;
        guint keepalive; /* 0: no PersistentKeepalive line */
} ExtClientConfig;

/* "[Interface]\nPrivateKey = …\nAddress = …\nDNS = …\nMTU = …\n\n[Peer]\nPublicKey = …\n
 * Endpoint = …\nAllowedIPs = …\nPersistentKeepalive = …\n". Holds the private key: free it with
 * nm_free_secret(). */
char *extclient_config_text(const ExtClientConfig *c);
