/* The WireGuard userspace API (UAPI) protocol: a bounded, strict parser for get/set replies, the
 * set request writer, and request/reply over the interface's unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "macro.h"
#include "nm-error.h"
#include "wg-internal.h"
#include "wg-uapi.h"

const WgUapiLimits wg_uapi_default_limits = {
        .max_line = 512,
        .max_bytes = 128u << 20,
        .max_peers = 1u << 17,
        .max_allowed_ips = 1u << 20,
};

struct WgUapiParser {
        WgUapiReplyKind kind;
        char *ifname;
        WgUapiLimits limits;

        char *line; /* max_line + 1 bytes: the line being read (may hold a key: wiped on free) */
        size_t line_len;
        size_t lineno;
        size_t total;

        WgDevice *device;
        WgPeer *peer;
        GHashTable *keys; /* public keys seen, so a repeated peer is caught */
        size_t n_allowed_ips;

        bool have_errno;
        int errno_value; /* negative or 0 */
        bool done;
        int failed; /* the first error (negative errno), sticky */
        char *failed_message;
};

WgUapiParser *wg_uapi_parser_new(WgUapiReplyKind kind, const char *ifname, const WgUapiLimits *limits)
{
        WgUapiParser *p = g_new0(WgUapiParser, 1);

        p->kind = kind;
        p->ifname = g_strdup(strempty(ifname));
        p->limits = limits ? *limits : wg_uapi_default_limits;
        if (p->limits.max_line < 16)
                p->limits.max_line = 16;
        p->line = g_malloc(p->limits.max_line + 1);
        p->device = wg_device_new(ifname);
        p->keys = g_hash_table_new(wg_key_hash, wg_key_equal);
        return p;
}

void wg_uapi_parser_free(WgUapiParser *p)
{
        if (!p)
                return;
        sodium_memzero(p->line, p->limits.max_line + 1);
        g_free(p->line);
        g_hash_table_unref(p->keys);
        wg_device_free(p->device);
        g_free(p->failed_message);
        g_free(p->ifname);
        g_free(p);
}

static int fail(WgUapiParser *p, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(WgUapiParser *p, int r, const char *fmt, ...)
{
        va_list ap;

        if (p->failed < 0)
                return p->failed;
        va_start(ap, fmt);
        g_autofree char *why = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        p->failed = r;
        if (p->lineno > 0)
                p->failed_message = g_strdup_printf("Invalid UAPI reply for \"%s\", line %zu: %s", p->ifname,
                                                    p->lineno, why);
        else
                p->failed_message = g_strdup_printf("Invalid UAPI reply for \"%s\": %s", p->ifname, why);
        return r;
}

/* A printable, shortened copy of a value for error messages (never used for keys). */
static char *quote(const char *v)
{
        GString *s = g_string_new(NULL);
        for (const char *c = v; *c && s->len < 40; c++)
                g_string_append_c(s, g_ascii_isprint(*c) ? *c : '?');
        if (strlen(v) > 40)
                g_string_append(s, "...");
        return g_string_free(s, FALSE);
}

/* Strict unsigned decimal: digits only, no sign or spaces, at most `max`. */
static bool parse_uint(const char *v, uint64_t max, uint64_t *ret)
{
        uint64_t n = 0;

        if (!*v || strlen(v) > 20)
                return false;
        for (const char *c = v; *c; c++) {
                if (!g_ascii_isdigit(*c))
                        return false;
                unsigned d = (unsigned)(*c - '0');
                if (n > (UINT64_MAX - d) / 10)
                        return false;
                n = n * 10 + d;
        }
        if (n > max)
                return false;
        *ret = n;
        return true;
}

static int bad_value(WgUapiParser *p, const char *key, const char *value, const char *accepted)
{
        g_autofree char *q = quote(value);
        return fail(p, -EBADMSG, "invalid %s \"%s\": %s", key, q, accepted);
}

static int parse_key(WgUapiParser *p, const char *key, const char *value, NmKey *ret)
{
        /* The value may be a secret: never quote it. */
        if (strlen(value) != NM_KEY_HEX_LEN || nm_key_from_hex(value, ret) < 0)
                return fail(p, -EBADMSG, "invalid %s: 64 hex digits are expected", key);
        return 0;
}

static int parse_number(WgUapiParser *p, const char *key, const char *value, uint64_t max, uint64_t *ret)
{
        if (!parse_uint(value, max, ret)) {
                g_autofree char *accepted =
                        g_strdup_printf("a number 0-%" G_GUINT64_FORMAT " is expected", max);
                return bad_value(p, key, value, accepted);
        }
        return 0;
}

static int device_line(WgUapiParser *p, const char *key, const char *value)
{
        WgDevice *d = p->device;
        uint64_t n;
        int r;

        if (streq0(key, "private_key")) {
                r = parse_key(p, key, value, &d->private_key);
                if (r < 0)
                        return r;
                static const NmKey zero = {};
                if (!nm_key_equal(&d->private_key, &zero)) {
                        d->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
                        if (nm_key_public_from_private(&d->private_key, &d->public_key) >= 0)
                                d->flags |= WG_DEVICE_HAS_PUBLIC_KEY;
                }
        } else if (streq0(key, "listen_port")) {
                r = parse_number(p, key, value, UINT16_MAX, &n);
                if (r < 0)
                        return r;
                d->listen_port = (uint16_t)n;
                d->flags |= WG_DEVICE_HAS_LISTEN_PORT;
        } else if (streq0(key, "fwmark")) {
                r = parse_number(p, key, value, UINT32_MAX, &n);
                if (r < 0)
                        return r;
                d->fwmark = (uint32_t)n;
                d->flags |= WG_DEVICE_HAS_FWMARK;
        } else
                return 0; /* unknown device keys: a newer implementation; ignore */
        return 0;
}

static int peer_line(WgUapiParser *p, const char *key, const char *value)
{
        WgPeer *peer = p->peer;
        uint64_t n;
        int r;

        if (streq0(key, "preshared_key")) {
                r = parse_key(p, key, value, &peer->preshared_key);
                if (r < 0)
                        return r;
                peer->flags |= WG_PEER_HAS_PRESHARED_KEY;
        } else if (streq0(key, "endpoint")) {
                WgEndpoint e;
                if (wg_endpoint_parse(value, &e, NULL) < 0)
                        return bad_value(p, key, value, "ip:port or [ipv6]:port is expected");
                wg_peer_set_endpoint(peer, &e);
        } else if (streq0(key, "persistent_keepalive_interval")) {
                r = parse_number(p, key, value, UINT16_MAX, &n);
                if (r < 0)
                        return r;
                wg_peer_set_persistent_keepalive(peer, (uint16_t)n);
        } else if (streq0(key, "allowed_ip")) {
                NmPrefix prefix;
                if (p->n_allowed_ips >= p->limits.max_allowed_ips)
                        return fail(p, -E2BIG, "more than %zu allowed IPs", p->limits.max_allowed_ips);
                /* nm_prefix_parse takes a plain address as a host prefix; the UAPI always writes
                 * the length, so insist on it. */
                if (!strchr(value, '/') || nm_prefix_parse(value, &prefix, NULL) < 0)
                        return bad_value(p, key, value, "address/prefix-length is expected");
                wg_peer_add_allowed_ip(peer, &prefix);
                p->n_allowed_ips++;
        } else if (streq0(key, "last_handshake_time_sec")) {
                r = parse_number(p, key, value, INT64_MAX, &n);
                if (r < 0)
                        return r;
                peer->last_handshake.tv_sec = (time_t)n;
        } else if (streq0(key, "last_handshake_time_nsec")) {
                r = parse_number(p, key, value, 999999999, &n);
                if (r < 0)
                        return r;
                peer->last_handshake.tv_nsec = (long)n;
        } else if (streq0(key, "rx_bytes")) {
                r = parse_number(p, key, value, UINT64_MAX, &n);
                if (r < 0)
                        return r;
                peer->rx_bytes = n;
        } else if (streq0(key, "tx_bytes")) {
                r = parse_number(p, key, value, UINT64_MAX, &n);
                if (r < 0)
                        return r;
                peer->tx_bytes = n;
        } else if (streq0(key, "protocol_version")) {
                r = parse_number(p, key, value, UINT32_MAX, &n);
                if (r < 0)
                        return r;
                peer->protocol_version = (uint32_t)n;
        } else if (streq0(key, "private_key") || streq0(key, "listen_port") || streq0(key, "fwmark"))
                return fail(p, -EBADMSG, "device key \"%s\" after the first peer", key);
        return 0; /* unknown peer keys: a newer implementation; ignore */
}

static bool key_syntax_valid(const char *key)
{
        if (!*key || strlen(key) > 64)
                return false;
        for (const char *c = key; *c; c++)
                if (!(g_ascii_islower(*c) || g_ascii_isdigit(*c) || *c == '_'))
                        return false;
        return true;
}

static int process_line(WgUapiParser *p, char *line)
{
        char *eq, *key, *value;

        p->lineno++;
        if (!*line) {
                p->done = true;
                return 0;
        }
        if (p->have_errno)
                return fail(p, -EBADMSG, "data after the errno line");

        eq = strchr(line, '=');
        if (!eq) {
                g_autofree char *q = quote(line);
                return fail(p, -EBADMSG, "\"%s\" is not a key=value line", q);
        }
        *eq = '\0';
        key = line;
        value = eq + 1;
        if (!key_syntax_valid(key)) {
                g_autofree char *q = quote(key);
                return fail(p, -EBADMSG,
                            "invalid key \"%s\": lowercase letters, digits and '_' are expected", q);
        }

        if (streq0(key, "errno")) {
                const char *digits = value[0] == '-' ? value + 1 : value;
                uint64_t n;
                if (!parse_uint(digits, 4095, &n))
                        return bad_value(p, key, value, "a number -4095-4095 is expected");
                p->have_errno = true;
                p->errno_value = -(int)n;
                return 0;
        }
        if (p->kind == WG_UAPI_REPLY_SET) {
                g_autofree char *q = quote(key);
                return fail(p, -EBADMSG, "unexpected key \"%s\" in a set reply", q);
        }

        if (streq0(key, "public_key")) {
                NmKey k;
                int r = parse_key(p, key, value, &k);
                if (r < 0)
                        return r;
                if (g_hash_table_contains(p->keys, &k))
                        return fail(p, -EBADMSG, "peer %s listed twice", value);
                if (p->device->peers->len >= p->limits.max_peers)
                        return fail(p, -E2BIG, "more than %zu peers", p->limits.max_peers);
                p->peer = wg_device_add_peer(p->device, wg_peer_new(&k));
                g_hash_table_add(p->keys, &p->peer->public_key);
                return 0;
        }
        return p->peer ? peer_line(p, key, value) : device_line(p, key, value);
}

int wg_uapi_parser_feed(WgUapiParser *p, const void *data, size_t len, GError **error)
{
        const char *s = data;

        if (p->failed < 0)
                goto failed;
        if (len > p->limits.max_bytes - p->total) {
                fail(p, -E2BIG, "longer than %zu bytes", p->limits.max_bytes);
                goto failed;
        }
        p->total += len;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (p->done) {
                        fail(p, -EBADMSG, "data after the terminating empty line");
                        goto failed;
                }
                if (c == '\n') {
                        p->line[p->line_len] = '\0';
                        int r = process_line(p, p->line);
                        sodium_memzero(p->line, p->line_len);
                        p->line_len = 0;
                        if (r < 0)
                                goto failed;
                        continue;
                }
                if (c == '\0' || c == '\r') {
                        p->lineno++;
                        fail(p, -EBADMSG, "a NUL or carriage return byte");
                        goto failed;
                }
                if (p->line_len >= p->limits.max_line) {
                        p->lineno++;
                        fail(p, -EBADMSG, "a line longer than %zu bytes", p->limits.max_line);
                        goto failed;
                }
                p->line[p->line_len++] = c;
        }
        return p->done ? 1 : 0;

failed:
        if (error && !*error)
                g_set_error_literal(error, NM_ERROR, NM_ERROR_INTERNAL, p->failed_message);
        return p->failed;
}

int wg_uapi_parser_finish(WgUapiParser *p, WgDevice **ret, GError **error)
{
        if (p->failed < 0)
                return wg_error(error, p->failed, "%s", p->failed_message);
        if (!p->done)
                return wg_error(error, -EBADMSG,
                                "Invalid UAPI reply for \"%s\": truncated after %zu bytes (no terminating "
                                "empty line)",
                                p->ifname, p->total);
        if (!p->have_errno)
                return wg_error(error, -EBADMSG, "Invalid UAPI reply for \"%s\": no errno line", p->ifname);
        if (p->errno_value < 0)
                return wg_error(error, p->errno_value,
                                "The WireGuard implementation of \"%s\" refused the request: %s", p->ifname,
                                g_strerror(-p->errno_value));
        if (ret)
                *ret = TAKE_PTR(p->device);
        return 0;
}

int wg_uapi_parse(WgUapiReplyKind kind, const char *ifname, const void *data, size_t len,
                  const WgUapiLimits *limits, WgDevice **ret, GError **error)
{
        g_autoptr(WgUapiParser) p = wg_uapi_parser_new(kind, ifname, limits);
        int r = wg_uapi_parser_feed(p, data, len, NULL);
        if (r < 0)
                return wg_error(error, r, "%s", p->failed_message);
        return wg_uapi_parser_finish(p, ret, error);
}

static void append_key(GString *s, const char *name, const NmKey *k)
{
        char hex[NM_KEY_HEX_LEN + 1];
        nm_key_to_hex(k, hex);
        g_string_append_printf(s, "%s=%s\n", name, hex);
        sodium_memzero(hex, sizeof(hex));
}

char *wg_uapi_format_set(const WgDevice *c)
{
        /* Sized up front so the string never reallocates and leaves copies of keys behind. */
        size_t guess = 256 + c->peers->len * 256 + wg_device_count_allowed_ips(c) * 64;
        GString *s = g_string_sized_new(guess);

        g_string_append(s, "set=1\n");
        if (c->flags & WG_DEVICE_HAS_PRIVATE_KEY)
                append_key(s, "private_key", &c->private_key);
        if (c->flags & WG_DEVICE_HAS_LISTEN_PORT)
                g_string_append_printf(s, "listen_port=%u\n", c->listen_port);
        if (c->flags & WG_DEVICE_HAS_FWMARK)
                g_string_append_printf(s, "fwmark=%u\n", c->fwmark);
        if (c->flags & WG_DEVICE_REPLACE_PEERS)
                g_string_append(s, "replace_peers=true\n");

        for (guint i = 0; i < c->peers->len; i++) {
                const WgPeer *p = c->peers->pdata[i];

                append_key(s, "public_key", &p->public_key);
                if (p->flags & WG_PEER_REMOVE_ME) {
                        g_string_append(s, "remove=true\n");
                        continue;
                }
                if (p->flags & WG_PEER_UPDATE_ONLY)
                        g_string_append(s, "update_only=true\n");
                if (p->flags & WG_PEER_HAS_PRESHARED_KEY)
                        append_key(s, "preshared_key", &p->preshared_key);
                if (p->flags & WG_PEER_HAS_ENDPOINT && p->endpoint.sa.sa_family != AF_UNSPEC) {
                        g_autofree char *e = wg_endpoint_to_string(&p->endpoint);
                        g_string_append_printf(s, "endpoint=%s\n", e);
                }
                if (p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE)
                        g_string_append_printf(s, "persistent_keepalive_interval=%u\n",
                                               p->persistent_keepalive);
                if (p->flags & WG_PEER_REPLACE_ALLOWEDIPS)
                        g_string_append(s, "replace_allowed_ips=true\n");
                for (guint j = 0; j < p->allowed_ips->len; j++) {
                        NmPrefix a = g_array_index(p->allowed_ips, NmPrefix, j);
                        nm_prefix_canonicalize(&a);
                        g_autofree char *t = nm_prefix_to_string(&a);
                        g_string_append_printf(s, "allowed_ip=%s\n", t);
                }
        }
        g_string_append_c(s, '\n');
        return g_string_free(s, FALSE);
}

char *wg_uapi_socket_path(const char *dir, const char *ifname)
{
        return g_strdup_printf("%s/%s.sock", dir ? dir : WG_UAPI_DEFAULT_DIR, ifname);
}

static int socket_connect(const char *dir, const char *ifname, uint64_t timeout_usec, int *ret)
{
        g_autofree char *path = wg_uapi_socket_path(dir, ifname);
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (timeout_usec == 0)
                timeout_usec = 5 * G_USEC_PER_SEC;
        tv.tv_sec = (time_t)(timeout_usec / G_USEC_PER_SEC);
        tv.tv_usec = (suseconds_t)(timeout_usec % G_USEC_PER_SEC);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

int wg_uapi_socket_alive(const char *dir, const char *ifname)
{
        _cleanup_close_ int fd = -1;
        int r = socket_connect(dir, ifname, G_USEC_PER_SEC, &fd);
        if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTSOCK)
                return 0;
        return r < 0 ? r : 1;
}

static int write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? -ETIMEDOUT : -errno;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

static int transact(const char *dir, const char *ifname, const char *request, uint64_t timeout_usec,
                    WgUapiParser *p, GError **error)
{
        g_autofree char *path = wg_uapi_socket_path(dir, ifname);
        _cleanup_close_ int fd = -1;
        char buf[16384];
        int r;

        r = socket_connect(dir, ifname, timeout_usec, &fd);
        if (r == -ENOENT || r == -ECONNREFUSED)
                return wg_error(error, -ENODEV,
                                "No userspace WireGuard interface \"%s\": nothing answers on %s", ifname,
                                path);
        if (r < 0)
                return wg_error(error, r, "Failed to connect to %s: %s", path, g_strerror(-r));

        r = write_all(fd, request, strlen(request));
        if (r < 0)
                return wg_error(error, r, "Failed to send a request to %s: %s", path, g_strerror(-r));

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = errno == EAGAIN ? -ETIMEDOUT : -errno;
                        sodium_memzero(buf, sizeof(buf));
                        return wg_error(error, r, "Failed to read the reply from %s: %s", path,
                                        g_strerror(-r));
                }
                if (n == 0)
                        break; /* finish() reports a truncated reply */
                r = wg_uapi_parser_feed(p, buf, (size_t)n, NULL);
                if (r != 0)
                        break;
        }
        sodium_memzero(buf, sizeof(buf));
        return 0;
}

int wg_uapi_get(const char *dir, const char *ifname, uint64_t timeout_usec, WgDevice **ret, GError **error)
{
        g_autoptr(WgUapiParser) p = NULL;
        int r;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;
        p = wg_uapi_parser_new(WG_UAPI_REPLY_GET, ifname, NULL);
        r = transact(dir, ifname, "get=1\n\n", timeout_usec, p, error);
        if (r < 0)
                return r;
        return wg_uapi_parser_finish(p, ret, error);
}

int wg_uapi_set(const char *dir, const WgDevice *change, uint64_t timeout_usec, GError **error)
{
        g_autoptr(WgUapiParser) p = NULL;
        _cleanup_secret_ char *request = NULL;
        int r;

        if (!wg_ifname_valid(change->ifname, error))
                return -EINVAL;
        request = wg_uapi_format_set(change);
        p = wg_uapi_parser_new(WG_UAPI_REPLY_SET, change->ifname, NULL);
        r = transact(dir, change->ifname, request, timeout_usec, p, error);
        if (r < 0)
                return r;
        return wg_uapi_parser_finish(p, NULL, error);
}
