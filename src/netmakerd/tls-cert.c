/* The API's certificate: configured, or self-signed and kept in the state directory (tls-cert.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidr.h"
#include "log.h"
#include "macro.h"
#include "nm-error.h"
#include "tls-cert.h"

/* Long: the key is what hosts pin, and a pinned certificate is never checked against a CA; the
 * dates matter only as far as clients check them (ours do). */
#define SELF_SIGNED_DAYS (20 * 365)

void server_cert_clear(ServerCert *c)
{
        g_free(c->cert_path);
        g_free(c->cert_pem);
        nm_free_secret(c->key_pem);
        *c = (ServerCert){};
}

static int read_file(const char *path, const char *what, char **ret, GError **error)
{
        g_autoptr(GError) e = NULL;
        gsize len;

        if (!g_file_get_contents(path, ret, &len, &e)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Cannot read the TLS %s %s: %s",
                            what, path, e->message);
                return -ENOENT;
        }
        return 0;
}

static int write_file(const char *path, const char *content, mode_t mode, GError **error)
{
        g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
        _cleanup_close_ int fd = -1;
        size_t len = strlen(content);

        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 || write(fd, content, len) != (ssize_t)len || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int r = errno ? -errno : -EIO;
                (void)unlink(tmp);
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to write %s: %s", path,
                            g_strerror(-r));
                return r;
        }
        return 0;
}

/* The names a self-signed certificate carries: they matter only to clients that check names
 * (browsers, tools given the certificate as a CA); ours check the pin. */
static GPtrArray *self_signed_names(const Config *c)
{
        GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *api = c->api_url ? nm_url_host(c->api_url) : NULL;
        g_autofree char *listen = NULL;
        const char *hostname = g_get_host_name();

        if (api)
                g_ptr_array_add(names, g_strdup(api));
        if (hostname && *hostname && !streq0(hostname, "localhost"))
                g_ptr_array_add(names, g_strdup(hostname));
        if (c->listen_family == AF_INET ? c->listen_addr.in.s_addr != htonl(INADDR_ANY)
                                        : !IN6_IS_ADDR_UNSPECIFIED(&c->listen_addr.in6))
                listen = nm_addr_to_string(c->listen_family, &c->listen_addr);
        const char *more[] = {listen, "localhost", "127.0.0.1", "::1"};
        for (size_t k = 0; k < ELEMENTSOF(more); k++) {
                const char *n = more[k];
                bool seen = false;
                if (!n)
                        continue;
                for (guint i = 0; i < names->len; i++)
                        seen = seen || streq0(names->pdata[i], n);
                if (!seen)
                        g_ptr_array_add(names, g_strdup(n));
        }
        g_ptr_array_add(names, NULL);
        return names;
}

static int make_self_signed(const Config *c, const char *dir, const char *cert_path, const char *key_path,
                            ServerCert *ret, GError **error)
{
        g_autoptr(GPtrArray) names = self_signed_names(c);
        _cleanup_secret_ char *key = NULL;
        g_autofree char *cert = NULL;
        int r;

        if (g_mkdir_with_parents(dir, 0700) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to create %s: %s", dir,
                            g_strerror(errno));
                return -errno;
        }
        r = nm_tls_make_self_signed((const char *const *)names->pdata, SELF_SIGNED_DAYS, &key, &cert, error);
        if (r < 0)
                return r;
        /* The key first: a certificate without its key would be taken as "configured" next time. */
        r = write_file(key_path, key, 0600, error);
        if (r >= 0)
                r = write_file(cert_path, cert, 0644, error);
        if (r < 0) {
                (void)unlink(key_path);
                return r;
        }
        ret->cert_pem = TAKE_PTR(cert);
        ret->key_pem = TAKE_PTR(key);
        ret->made = true;
        return 0;
}

char *server_cert_path(const Config *c)
{
        return c->tls_certificate ? g_strdup(c->tls_certificate)
                                  : g_build_filename(c->state_directory, "tls", "server.crt", NULL);
}

int server_cert_load(const Config *c, ServerCert *ret, GError **error)
{
        g_auto(ServerCert) sc = {};
        g_autofree char *dir = g_build_filename(c->state_directory, "tls", NULL);
        g_autofree char *cert_path = server_cert_path(c);
        g_autofree char *key_path =
                c->tls_key ? g_strdup(c->tls_key) : g_build_filename(dir, "server.key", NULL);
        struct stat st;
        int r;

        if (!c->tls_certificate && access(cert_path, F_OK) < 0 && errno == ENOENT) {
                r = make_self_signed(c, dir, cert_path, key_path, &sc, error);
                if (r < 0)
                        return r;
        } else {
                r = read_file(cert_path, "certificate", &sc.cert_pem, error);
                if (r >= 0)
                        r = read_file(key_path, "key", &sc.key_pem, error);
                if (r < 0)
                        return r;
                if (stat(key_path, &st) >= 0 && (st.st_mode & 0077))
                        log_warning("The TLS key %s is readable by others (mode %04o): chmod 0600 it.",
                                    key_path, st.st_mode & 07777);
                if (!strstr(sc.key_pem, "PRIVATE KEY-----")) {
                        g_set_error(
                                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                "The TLS key %s holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")",
                                key_path);
                        return -EINVAL;
                }
        }
        g_autofree char *what = g_strdup_printf("The TLS certificate %s", cert_path);
        r = nm_tls_pin_of_pem(sc.cert_pem, strlen(sc.cert_pem), what, &sc.pin, error);
        if (r < 0)
                return r;
        sc.cert_path = TAKE_PTR(cert_path);
        *ret = sc;
        sc = (ServerCert){};
        return 0;
}
