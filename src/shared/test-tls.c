/* Proves the TLS trust of tls.c in real OpenSSL handshakes (client and server in memory): a
 * self-signed certificate is accepted exactly when its key is the pinned one and it is within its
 * dates, the refusal says which key was seen and which was pinned, learn mode records the key, and
 * pins round-trip through their text form and from PEM. */
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "keys.h"
#include "nm-error.h"
#include "tls.h"

typedef struct Cert {
        char *key_pem;
        char *cert_pem;
} Cert;

static void cert_clear(Cert *c)
{
        g_free(c->key_pem);
        g_free(c->cert_pem);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Cert, cert_clear)

static Cert make_cert(const char *name)
{
        const char *names[] = {name, "127.0.0.1", "::1", NULL};
        Cert c = {};
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(nm_tls_make_self_signed(names, 30, &c.key_pem, &c.cert_pem, &e), ==, 0);
        g_assert_no_error(e);
        g_assert_true(g_str_has_prefix(c.cert_pem, "-----BEGIN CERTIFICATE-----"));
        g_assert_nonnull(strstr(c.key_pem, "PRIVATE KEY"));
        return c;
}

/* The same key, re-signed with notAfter `days` from now (negative: in the past). */
static char *resign(const Cert *c, long days_before, long days_after)
{
        BIO *kb = BIO_new_mem_buf(c->key_pem, -1), *cb = BIO_new_mem_buf(c->cert_pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        g_assert_nonnull(k);
        g_assert_nonnull(x);
        g_assert_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), days_before * 86400));
        g_assert_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), days_after * 86400));
        g_assert_cmpint(X509_sign(x, k, EVP_sha256()), >, 0);
        BIO *out = BIO_new(BIO_s_mem());
        g_assert_cmpint(PEM_write_bio_X509(out, x), ==, 1);
        char *data;
        long n = BIO_get_mem_data(out, &data);
        char *pem = g_strndup(data, (gsize)n);
        BIO_free(out);
        X509_free(x);
        EVP_PKEY_free(k);
        BIO_free(kb);
        BIO_free(cb);
        return pem;
}

/* One handshake between a server presenting `key_pem`/`cert_pem` and a client trusting `t`.
 * Returns whether it completed. */
static bool handshake(const char *key_pem, const char *cert_pem, NmTlsTrust *t)
{
        SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
        BIO *kb = BIO_new_mem_buf(key_pem, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        g_assert_cmpint(SSL_CTX_use_certificate(sctx, x), ==, 1);
        g_assert_cmpint(SSL_CTX_use_PrivateKey(sctx, k), ==, 1);
        g_assert_cmpint(nm_tls_trust_apply(cctx, t), ==, 0);

        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
        BIO *sb, *cbio;
        g_assert_cmpint(BIO_new_bio_pair(&sb, 0, &cbio, 0), ==, 1);
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cbio, cbio);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        bool done_c = false, done_s = false, failed = false;
        for (int i = 0; i < 100 && !(done_c && done_s) && !failed; i++) {
                if (!done_c) {
                        int r = SSL_do_handshake(c);
                        if (r == 1)
                                done_c = true;
                        else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                                failed = true;
                }
                if (!done_s && !failed) {
                        int r = SSL_do_handshake(s);
                        if (r == 1)
                                done_s = true;
                        else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                                failed = true;
                }
        }
        ERR_clear_error();
        SSL_free(s);
        SSL_free(c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        X509_free(x);
        EVP_PKEY_free(k);
        BIO_free(kb);
        BIO_free(cb);
        return done_c && !failed;
}

static void test_pin_text(void)
{
        NmTlsPin p, q;
        for (size_t i = 0; i < sizeof(p.b); i++)
                p.b[i] = (uint8_t)(255 - i);
        g_autofree char *text = nm_tls_pin_format(&p);
        g_assert_true(g_str_has_prefix(text, "sha256//"));
        g_assert_cmpuint(strlen(text), ==, NM_TLS_PIN_TEXT_LEN);
        g_assert_true(nm_tls_pin_parse(text, &q));
        g_assert_true(nm_tls_pin_equal(&p, &q));
        g_assert_false(nm_tls_pin_parse("sha256//AAAA", &q));
        g_assert_false(nm_tls_pin_parse(text + 8, &q));
        g_assert_false(nm_tls_pin_parse(NULL, &q));
}

static void test_pin_of_pem(void)
{
        g_auto(Cert) a = make_cert("server-a");
        NmTlsPin p1, p2;
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(nm_tls_pin_of_pem(a.cert_pem, strlen(a.cert_pem), "a", &p1, &e), ==, 0);
        /* The pin is of the key: a new certificate for the same key has the same pin. */
        g_autofree char *again = resign(&a, -1, 10);
        g_assert_cmpint(nm_tls_pin_of_pem(again, strlen(again), "b", &p2, &e), ==, 0);
        g_assert_true(nm_tls_pin_equal(&p1, &p2));
        g_assert_cmpint(nm_tls_pin_of_pem("junk", 4, "The file x.pem", &p2, &e), ==, -EINVAL);
        g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(e->message, "The file x.pem"));
        g_assert_cmpint(nm_tls_cert_not_after(a.cert_pem, strlen(a.cert_pem)), >,
                        g_get_real_time() / G_USEC_PER_SEC);
}

static void test_handshakes(void)
{
        g_auto(Cert) a = make_cert("server-a");
        g_auto(Cert) b = make_cert("server-b");
        g_auto(NmTlsTrust) t = {.mode = NM_TLS_PIN};
        g_autoptr(GError) e = NULL;
        g_assert_cmpint(nm_tls_pin_of_pem(a.cert_pem, strlen(a.cert_pem), "a", &t.pin, &e), ==, 0);

        /* The pinned server: accepted although self-signed and whatever its name. */
        g_assert_true(handshake(a.key_pem, a.cert_pem, &t));
        g_assert_null(t.failure);
        g_assert_true(t.seen_valid && nm_tls_pin_equal(&t.seen, &t.pin));

        /* Another server's certificate: refused, and the message names both keys. */
        g_assert_false(handshake(b.key_pem, b.cert_pem, &t));
        g_assert_nonnull(t.failure);
        g_autofree char *want = nm_tls_pin_format(&t.pin), *seen = nm_tls_pin_format(&t.seen);
        g_assert_nonnull(strstr(t.failure, want));
        g_assert_nonnull(strstr(t.failure, seen));
        g_assert_nonnull(strstr(t.failure, "not the pinned"));

        /* The pinned key in an expired certificate, or one not valid yet. */
        g_autofree char *expired = resign(&a, -30, -1);
        g_assert_false(handshake(a.key_pem, expired, &t));
        g_assert_nonnull(strstr(t.failure, "expired on"));
        g_autofree char *future = resign(&a, 2, 30);
        g_assert_false(handshake(a.key_pem, future, &t));
        g_assert_nonnull(strstr(t.failure, "not valid before"));

        /* Learn mode takes any server and records its key. */
        g_auto(NmTlsTrust) learn = {.mode = NM_TLS_LEARN};
        g_assert_true(handshake(b.key_pem, b.cert_pem, &learn));
        NmTlsPin pb;
        g_assert_cmpint(nm_tls_pin_of_pem(b.cert_pem, strlen(b.cert_pem), "b", &pb, &e), ==, 0);
        g_assert_true(learn.seen_valid && nm_tls_pin_equal(&learn.seen, &pb));

        /* CA mode with the system's trust store: a self-signed certificate is not trusted. */
        g_auto(NmTlsTrust) ca = {.mode = NM_TLS_CA};
        g_assert_false(handshake(a.key_pem, a.cert_pem, &ca));
        /* ... but with it as the CA file it is (the name is the caller's to check). */
        g_autofree char *path = NULL;
        int fd = g_file_open_tmp("test-tls-XXXXXX.pem", &path, &e);
        g_assert_cmpint(fd, >=, 0);
        close(fd);
        g_assert_true(g_file_set_contents(path, a.cert_pem, -1, &e));
        ca.ca_file = g_strdup(path);
        g_assert_true(handshake(a.key_pem, a.cert_pem, &ca));
        g_assert_false(handshake(b.key_pem, b.cert_pem, &ca));
        unlink(path);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/tls/pin-text", test_pin_text);
        g_test_add_func("/tls/pin-of-pem", test_pin_of_pem);
        g_test_add_func("/tls/handshakes", test_handshakes);
        return g_test_run();
}
