/* The WireGuard cross-platform userspace API (UAPI): the text protocol spoken on
 * /run/wireguard/<ifname>.sock by wireguard-go and other userspace implementations. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "wg.h"

#define WG_UAPI_DEFAULT_DIR "/run/wireguard"

/* What a reply may make us hold; anything beyond is refused with an error. */
typedef struct WgUapiLimits {
        size_t max_line;  /* bytes in one line, without the newline */
        size_t max_bytes; /* bytes in the whole reply */
        size_t max_peers;
        size_t max_allowed_ips; /* over all peers */
} WgUapiLimits;

/* 512-byte lines, 128 MiB, 131072 peers, 1048576 allowed IPs. */
extern const WgUapiLimits wg_uapi_default_limits;

typedef enum WgUapiReplyKind {
        WG_UAPI_REPLY_GET, /* device and peer keys, then errno */
        WG_UAPI_REPLY_SET, /* errno only */
} WgUapiReplyKind;

/* An incremental parser for one reply: feed it bytes as they arrive. `ifname` only names the
 * interface in error messages. `limits` may be NULL (the defaults). */
typedef struct WgUapiParser WgUapiParser;
WgUapiParser *wg_uapi_parser_new(WgUapiReplyKind kind, const char *ifname, const WgUapiLimits *limits);
void wg_uapi_parser_free(WgUapiParser *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WgUapiParser, wg_uapi_parser_free)

/* Returns 1 once the reply is complete (its terminating empty line was read), 0 when more is
 * needed, or a negative errno for a malformed reply (the parser then stays failed). */
int wg_uapi_parser_feed(WgUapiParser *p, const void *data, size_t len, GError **error);
/* After the last byte: 0 (with *ret for a GET reply; NULL may be passed for SET), the negative
 * errno the other side answered with (errno=N), or -EBADMSG for a missing or truncated reply. */
int wg_uapi_parser_finish(WgUapiParser *p, WgDevice **ret, GError **error);

/* The whole reply at once (for tests and the fuzzer). */
int wg_uapi_parse(WgUapiReplyKind kind, const char *ifname, const void *data, size_t len,
                  const WgUapiLimits *limits, WgDevice **ret, GError **error);

/* The "set=1" request that writes `change`, with its terminating empty line. It holds secrets
 * when the change carries keys: free it with nm_free_secret(). */
char *wg_uapi_format_set(const WgDevice *change);

/* "<dir>/<ifname>.sock"; dir NULL = WG_UAPI_DEFAULT_DIR. */
char *wg_uapi_socket_path(const char *dir, const char *ifname);
/* 1 when something accepts connections on the interface's socket, 0 when not (missing or stale). */
int wg_uapi_socket_alive(const char *dir, const char *ifname);

/* Request/reply on the interface's socket; timeout_usec 0 = 5 s. */
int wg_uapi_get(const char *dir, const char *ifname, uint64_t timeout_usec, WgDevice **ret, GError **error);
int wg_uapi_set(const char *dir, const WgDevice *change, uint64_t timeout_usec, GError **error);
