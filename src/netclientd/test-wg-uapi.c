/* Proves that the UAPI client reads wireguard-go's replies exactly and survives hostile ones
 * (overlong lines, missing errno, garbage values, malformed keys, huge peer counts, truncation) with
 * a clear error and bounded memory, that it writes set requests with only the flags asked for,
 * and that the userspace backend talks to a socket in a configurable directory. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "wg-backend.h"
#include "wg-uapi.h"

#define PRIV_HEX "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
#define PUB1_HEX "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
#define PUB2_HEX "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceae9a9b2c1e2"
#define PSK_HEX  "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52"

static const char GOOD_GET[] =
        "private_key=" PRIV_HEX "\n"
        "listen_port=51820\n"
        "fwmark=0\n"
        "public_key=" PUB1_HEX "\n"
        "preshared_key=" PSK_HEX "\n"
        "protocol_version=1\n"
        "endpoint=198.18.0.2:51820\n"
        "last_handshake_time_sec=1700000000\n"
        "last_handshake_time_nsec=123456789\n"
        "tx_bytes=38333\n"
        "rx_bytes=2224\n"
        "persistent_keepalive_interval=25\n"
        "allowed_ip=10.99.0.2/32\n"
        "allowed_ip=fd00:99::2/128\n"
        "public_key=" PUB2_HEX "\n"
        "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
        "protocol_version=1\n"
        "endpoint=[fd00::3]:51821\n"
        "last_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\n"
        "tx_bytes=0\n"
        "rx_bytes=0\n"
        "persistent_keepalive_interval=0\n"
        "errno=0\n"
        "\n";

static void check_good_device(const WgDevice *d)
{
        NmKey k1, k2;
        char ep[64];

        g_assert_cmpstr(d->ifname, ==, "nm-test");
        g_assert_true(d->flags & WG_DEVICE_HAS_PRIVATE_KEY);
        g_assert_true(d->flags & WG_DEVICE_HAS_PUBLIC_KEY);
        g_assert_cmpuint(d->listen_port, ==, 51820);
        g_assert_cmpuint(d->peers->len, ==, 2);
        nm_key_from_hex(PUB1_HEX, &k1);
        nm_key_from_hex(PUB2_HEX, &k2);
        WgPeer *p1 = wg_device_find_peer(d, &k1), *p2 = wg_device_find_peer(d, &k2);
        g_assert_nonnull(p1);
        g_assert_nonnull(p2);
        g_assert_cmpuint(p1->allowed_ips->len, ==, 2);
        g_assert_cmpuint(p2->allowed_ips->len, ==, 0);
        g_assert_cmpuint(p1->persistent_keepalive, ==, 25);
        g_assert_cmpint(p1->last_handshake.tv_sec, ==, 1700000000);
        g_assert_cmpint(p1->last_handshake.tv_nsec, ==, 123456789);
        g_assert_cmpuint(p1->tx_bytes, ==, 38333);
        g_assert_cmpuint(p1->rx_bytes, ==, 2224);
        g_assert_cmpuint(p1->protocol_version, ==, 1);
        g_autofree char *e1 = wg_endpoint_to_string(&p1->endpoint);
        g_autofree char *e2 = wg_endpoint_to_string(&p2->endpoint);
        g_snprintf(ep, sizeof(ep), "%s %s", e1, e2);
        g_assert_cmpstr(ep, ==, "198.18.0.2:51820 [fd00::3]:51821");
}

static void test_good_reply(void)
{
        g_autoptr(WgDevice) d = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(
                wg_uapi_parse(WG_UAPI_REPLY_GET, "nm-test", GOOD_GET, strlen(GOOD_GET), NULL, &d, &error),
                ==, 0);
        g_assert_no_error(error);
        check_good_device(d);
}

static void test_byte_by_byte(void)
{
        g_autoptr(WgUapiParser) p = wg_uapi_parser_new(WG_UAPI_REPLY_GET, "nm-test", NULL);
        g_autoptr(WgDevice) d = NULL;
        size_t n = strlen(GOOD_GET);

        for (size_t i = 0; i < n; i++)
                g_assert_cmpint(wg_uapi_parser_feed(p, GOOD_GET + i, 1, NULL), ==, i + 1 == n ? 1 : 0);
        g_assert_cmpint(wg_uapi_parser_finish(p, &d, NULL), ==, 0);
        check_good_device(d);
}

static void expect_error(const char *reply, size_t len, const WgUapiLimits *limits, int want,
                         const char *fragment)
{
        g_autoptr(WgDevice) d = NULL;
        g_autoptr(GError) error = NULL;
        int r = wg_uapi_parse(WG_UAPI_REPLY_GET, "nm-test", reply, len, limits, &d, &error);

        if (r != want || !error || (fragment && !strstr(error->message, fragment)))
                g_error("reply %.60s...: got %d (%s), wanted %d with \"%s\"", reply, r,
                        error ? error->message : "no message", want, strempty(fragment));
        g_assert_null(d);
        /* No error message ever repeats a key. */
        g_assert_null(strstr(error->message, PRIV_HEX));
        g_assert_null(strstr(error->message, PSK_HEX));
        g_assert_nonnull(strstr(error->message, "nm-test"));
}

static void expect_error_s(const char *reply, int want, const char *fragment)
{
        expect_error(reply, strlen(reply), NULL, want, fragment);
}

static void test_hostile(void)
{
        /* Missing errno, truncation, data after the end. */
        expect_error_s("listen_port=1\n\n", -EBADMSG, "no errno");
        expect_error_s("listen_port=1\nerrno=0\n", -EBADMSG, "truncated");
        expect_error_s("", -EBADMSG, "truncated");
        expect_error_s("errno=0\n\nlisten_port=1\n", -EBADMSG, "after the terminating");
        expect_error_s("errno=0\nlisten_port=1\n\n", -EBADMSG, "after the errno");
        /* The other side's error. */
        expect_error_s("errno=-22\n\n", -EINVAL, "refused");
        expect_error_s("errno=5\n\n", -EIO, "refused");
        expect_error_s("errno=99999\n\n", -EBADMSG, "errno");
        expect_error_s("errno=\n\n", -EBADMSG, "errno");
        /* Garbage values. */
        expect_error_s("listen_port=abc\nerrno=0\n\n", -EBADMSG, "invalid listen_port \"abc\"");
        expect_error_s("listen_port=65536\nerrno=0\n\n", -EBADMSG, "listen_port");
        expect_error_s("listen_port=-1\nerrno=0\n\n", -EBADMSG, "listen_port");
        expect_error_s("listen_port=+5\nerrno=0\n\n", -EBADMSG, "listen_port");
        expect_error_s("listen_port= 5\nerrno=0\n\n", -EBADMSG, "listen_port");
        expect_error_s("fwmark=99999999999999999999999\nerrno=0\n\n", -EBADMSG, "fwmark");
        expect_error_s("private_key=" PRIV_HEX "00\nerrno=0\n\n", -EBADMSG, "private_key");
        expect_error_s("private_key=" PRIV_HEX "\npublic_key=zz\nerrno=0\n\n", -EBADMSG, "public_key");
        expect_error_s("private_key=X" PRIV_HEX "\nerrno=0\n\n", -EBADMSG, "64 hex digits");
        expect_error_s("public_key=" PUB1_HEX "\npreshared_key=" PSK_HEX "zz\nerrno=0\n\n", -EBADMSG,
                       "preshared_key");
        expect_error_s("public_key=" PUB1_HEX "\nendpoint=nonsense\nerrno=0\n\n", -EBADMSG,
                       "endpoint \"nonsense\"");
        expect_error_s("public_key=" PUB1_HEX "\nallowed_ip=10.0.0.1\nerrno=0\n\n", -EBADMSG, "allowed_ip");
        expect_error_s("public_key=" PUB1_HEX "\nallowed_ip=10.0.0.0/33\nerrno=0\n\n", -EBADMSG,
                       "allowed_ip");
        expect_error_s("public_key=" PUB1_HEX "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", -EBADMSG,
                       "last_handshake_time_nsec");
        expect_error_s("public_key=" PUB1_HEX "\nrx_bytes=18446744073709551616\nerrno=0\n\n", -EBADMSG,
                       "rx_bytes");
        /* Structure. */
        expect_error_s("public_key=" PUB1_HEX "\npublic_key=" PUB1_HEX "\nerrno=0\n\n", -EBADMSG, "twice");
        expect_error_s("public_key=" PUB1_HEX "\nlisten_port=1\nerrno=0\n\n", -EBADMSG,
                       "after the first peer");
        expect_error_s("no equals sign\nerrno=0\n\n", -EBADMSG, "not a key=value");
        expect_error_s("Listen_Port=1\nerrno=0\n\n", -EBADMSG, "invalid key");
        expect_error_s("=1\nerrno=0\n\n", -EBADMSG, "invalid key");
        expect_error_s("listen_port=1\r\nerrno=0\n\n", -EBADMSG, "carriage return");
        expect_error("listen_port=1\0\nerrno=0\n\n", 24, NULL, -EBADMSG, "NUL");

        /* Overlong lines: refused at the limit, not buffered. */
        g_autofree char *longline = g_strnfill(100000, 'a');
        g_autofree char *lr = g_strdup_printf("foo=%s\nerrno=0\n\n", longline);
        expect_error_s(lr, -EBADMSG, "longer than 512 bytes");
}

static void test_unknown_keys_ignored(void)
{
        /* A newer wireguard-go may report more: well-formed unknown keys are skipped. */
        static const char reply[] = "listen_port=7\nsome_new_device_key=1\npublic_key=" PUB1_HEX
                                    "\nsome_new_peer_key=xyz\nallowed_ip=10.0.0.0/8\nerrno=0\n\n";
        g_autoptr(WgDevice) d = NULL;

        g_assert_cmpint(wg_uapi_parse(WG_UAPI_REPLY_GET, "nm-test", reply, strlen(reply), NULL, &d, NULL),
                        ==, 0);
        g_assert_cmpuint(d->listen_port, ==, 7);
        g_assert_cmpuint(d->peers->len, ==, 1);
}

static void test_limits(void)
{
        WgUapiLimits small = wg_uapi_default_limits;
        GString *s = g_string_new(NULL);

        /* A huge peer count is refused once past the limit, without reading further. */
        small.max_peers = 100;
        for (unsigned i = 0; i < 1000; i++) {
                NmKey k = {};
                char hex[NM_KEY_HEX_LEN + 1];
                memcpy(k.b, &i, sizeof(i));
                nm_key_to_hex(&k, hex);
                g_string_append_printf(s, "public_key=%s\nallowed_ip=10.%u.%u.0/24\n", hex, i >> 8,
                                       i & 0xff);
        }
        g_string_append(s, "errno=0\n\n");
        expect_error(s->str, s->len, &small, -E2BIG, "more than 100 peers");

        small = wg_uapi_default_limits;
        small.max_allowed_ips = 500;
        expect_error(s->str, s->len, &small, -E2BIG, "more than 500 allowed IPs");

        small = wg_uapi_default_limits;
        small.max_bytes = 4096;
        expect_error(s->str, s->len, &small, -E2BIG, "longer than 4096 bytes");

        /* And accepted within the defaults. */
        g_autoptr(WgDevice) d = NULL;
        g_assert_cmpint(wg_uapi_parse(WG_UAPI_REPLY_GET, "x", s->str, s->len, NULL, &d, NULL), ==, 0);
        g_assert_cmpuint(d->peers->len, ==, 1000);
        g_string_free(s, TRUE);
}

static void test_set_reply(void)
{
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(wg_uapi_parse(WG_UAPI_REPLY_SET, "x", "errno=0\n\n", 9, NULL, NULL, NULL), ==, 0);
        g_assert_cmpint(wg_uapi_parse(WG_UAPI_REPLY_SET, "x", "errno=-22\n\n", 11, NULL, NULL, &error), ==,
                        -EINVAL);
        g_clear_error(&error);
        g_assert_cmpint(
                wg_uapi_parse(WG_UAPI_REPLY_SET, "x", "listen_port=1\nerrno=0\n\n", 23, NULL, NULL, &error),
                ==, -EBADMSG);
        g_assert_nonnull(strstr(error->message, "unexpected key"));
}

static void test_format_set(void)
{
        g_autoptr(WgDevice) c = wg_device_new("nm-test");
        _cleanup_secret_ char *s = NULL;
        NmKey k1, k2, k3, priv;
        WgEndpoint e;

        nm_key_from_hex(PUB1_HEX, &k1);
        nm_key_from_hex(PUB2_HEX, &k2);
        nm_key_from_hex(PSK_HEX, &k3);
        nm_key_from_hex(PRIV_HEX, &priv);
        g_assert_cmpint(wg_device_set_private_key(c, &priv), ==, 0);
        wg_device_set_listen_port(c, 51999);

        WgPeer *rm = wg_device_add_peer(c, wg_peer_new(&k1));
        rm->flags = WG_PEER_REMOVE_ME;
        wg_peer_add_allowed_ip_string(rm, "10.1.1.1/32", NULL); /* ignored for a removal */

        WgPeer *up = wg_device_add_peer(c, wg_peer_new(&k2));
        up->flags = WG_PEER_UPDATE_ONLY;
        wg_endpoint_parse("198.18.0.9:4000", &e, NULL);
        wg_peer_set_endpoint(up, &e);

        WgPeer *add = wg_device_add_peer(c, wg_peer_new(&k3));
        add->flags = WG_PEER_REPLACE_ALLOWEDIPS;
        wg_peer_set_persistent_keepalive(add, 20);
        wg_peer_add_allowed_ip_string(add, "10.99.0.7/24", NULL);
        wg_peer_add_allowed_ip_string(add, "fd00::7/128", NULL);

        s = wg_uapi_format_set(c);
        g_assert_cmpstr(s, ==,
                        "set=1\n"
                        "private_key=" PRIV_HEX "\n"
                        "listen_port=51999\n"
                        "public_key=" PUB1_HEX "\n"
                        "remove=true\n"
                        "public_key=" PUB2_HEX "\n"
                        "update_only=true\n"
                        "endpoint=198.18.0.9:4000\n"
                        "public_key=" PSK_HEX "\n"
                        "persistent_keepalive_interval=20\n"
                        "replace_allowed_ips=true\n"
                        "allowed_ip=10.99.0.0/24\n"
                        "allowed_ip=fd00::7/128\n"
                        "\n");
        g_assert_null(strstr(s, "replace_peers"));
}

/* A fake userspace implementation: answers one connection with a canned reply. */
typedef struct FakeServer {
        int listen_fd;
        char *reply;      /* NULL: read the request, then say nothing until closed */
        bool close_early; /* close after half the reply */
        GString *request;
} FakeServer;

static gpointer fake_server_run(gpointer data)
{
        FakeServer *f = data;
        int fd = accept(f->listen_fd, NULL, NULL);
        char buf[4096];

        g_assert_cmpint(fd, >=, 0);
        while (!strstr(f->request->str, "\n\n")) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                g_string_append_len(f->request, buf, n);
        }
        if (f->reply) {
                size_t len = strlen(f->reply);
                g_assert_cmpint(write(fd, f->reply, f->close_early ? len / 2 : len), >, 0);
        } else
                (void)read(fd, buf, sizeof(buf)); /* until the client gives up */
        close(fd);
        return NULL;
}

static GThread *fake_server_start(FakeServer *f, const char *dir, const char *ifname)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        g_autofree char *path = wg_uapi_socket_path(dir, ifname);

        g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
        unlink(path);
        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(f->listen_fd, 1), ==, 0);
        f->request = g_string_new(NULL);
        return g_thread_new("fake-uapi", fake_server_run, f);
}

static void fake_server_stop(FakeServer *f, GThread *t)
{
        g_thread_join(t);
        close(f->listen_fd);
        g_string_free(f->request, TRUE);
}

static void test_socket(void)
{
        g_autofree char *dir = g_dir_make_tmp("wg-uapi-XXXXXX", NULL);
        WgBackendOptions o = {.kind = WG_BACKEND_USERSPACE, .uapi_dir = dir};
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(WgDevice) d = NULL;
        FakeServer f = {};
        GThread *t;

        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpstr(b->vtable->name, ==, "userspace");

        /* Nothing there: not existing, and a clear error naming the socket. */
        g_assert_cmpint(wg_backend_exists(b, "wgu-none"), ==, 0);
        g_assert_cmpint(wg_backend_get(b, "wgu-none", &d, &error), ==, -ENODEV);
        g_assert_nonnull(strstr(error->message, "wgu-none.sock"));
        g_clear_error(&error);

        /* get=1 */
        f.reply = (char *)GOOD_GET;
        t = fake_server_start(&f, dir, "nm-test");
        g_assert_cmpint(wg_backend_get(b, "nm-test", &d, &error), ==, 0);
        g_assert_no_error(error);
        check_good_device(d);
        g_assert_cmpstr(f.request->str, ==, "get=1\n\n");
        fake_server_stop(&f, t);
        g_clear_pointer(&d, wg_device_free);

        /* set=1 refused with errno=-22 */
        f = (FakeServer){.reply = (char *)"errno=-22\n\n"};
        t = fake_server_start(&f, dir, "nm-test");
        g_autoptr(WgDevice) c = wg_device_new("nm-test");
        wg_device_set_listen_port(c, 1234);
        g_assert_cmpint(wg_backend_set(b, c, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error->message, "nm-test"));
        g_assert_cmpstr(f.request->str, ==, "set=1\nlisten_port=1234\n\n");
        g_clear_error(&error);
        fake_server_stop(&f, t);

        /* A reply cut off half-way. */
        f = (FakeServer){.reply = (char *)GOOD_GET, .close_early = true};
        t = fake_server_start(&f, dir, "nm-test");
        g_assert_cmpint(wg_backend_get(b, "nm-test", &d, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error->message, "truncated"));
        g_clear_error(&error);
        fake_server_stop(&f, t);

        /* A server that never answers: a timeout, not a hang. */
        f = (FakeServer){};
        t = fake_server_start(&f, dir, "nm-test");
        g_assert_cmpint(wg_uapi_get(dir, "nm-test", 200 * 1000, &d, &error), ==, -ETIMEDOUT);
        g_clear_error(&error);
        fake_server_stop(&f, t);

        /* A stale socket file (nothing listening) does not count as an interface. */
        g_assert_cmpint(wg_backend_exists(b, "nm-test"), ==, 0);

        g_autofree char *path = wg_uapi_socket_path(dir, "nm-test");
        unlink(path);
        rmdir(dir);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/wg-uapi/good-reply", test_good_reply);
        g_test_add_func("/wg-uapi/byte-by-byte", test_byte_by_byte);
        g_test_add_func("/wg-uapi/hostile", test_hostile);
        g_test_add_func("/wg-uapi/unknown-keys-ignored", test_unknown_keys_ignored);
        g_test_add_func("/wg-uapi/limits", test_limits);
        g_test_add_func("/wg-uapi/set-reply", test_set_reply);
        g_test_add_func("/wg-uapi/format-set", test_format_set);
        g_test_add_func("/wg-uapi/socket", test_socket);
        return g_test_run();
}
