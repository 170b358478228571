/* TLS trust by pin or CA, and self-signed certificates (tls.h), with OpenSSL. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "cidr.h"
#include "keys.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"
#include "tls.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_NAMES, GENERAL_NAMES_free)

bool nm_tls_pin_parse(const char *text, NmTlsPin *ret)
{
        g_autofree guint8 *raw = NULL;
        size_t len;

        if (!text || !g_str_has_prefix(text, NM_TLS_PIN_PREFIX) || strlen(text) != NM_TLS_PIN_TEXT_LEN)
                return false;
        if (nm_base64_decode(text + strlen(NM_TLS_PIN_PREFIX), &raw, &len) < 0 || len != NM_TLS_PIN_LEN)
                return false;
        memcpy(ret->b, raw, NM_TLS_PIN_LEN);
        return true;
}

char *nm_tls_pin_format(const NmTlsPin *p)
{
        g_autofree char *b64 = nm_base64_encode(p->b, sizeof(p->b));
        return g_strconcat(NM_TLS_PIN_PREFIX, b64, NULL);
}

bool nm_tls_pin_equal(const NmTlsPin *a, const NmTlsPin *b)
{
        return sodium_memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

static int pin_of_x509(X509 *x, NmTlsPin *ret)
{
        unsigned char *der = NULL;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (n <= 0)
                return -EINVAL;
        crypto_hash_sha256(ret->b, der, (unsigned long long)n);
        OPENSSL_free(der);
        return 0;
}

int nm_tls_pin_of_pem(const char *pem, size_t len, const char *what, NmTlsPin *ret, GError **error)
{
        g_autoptr(BIO) bio = BIO_new_mem_buf(pem, (int)MIN(len, (size_t)G_MAXINT));
        g_autoptr(X509) x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

        ERR_clear_error();
        if (!x || pin_of_x509(x, ret) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "%s holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", what);
                return -EINVAL;
        }
        return 0;
}

int nm_tls_pin_of_file(const char *path, NmTlsPin *ret, GError **error)
{
        g_autofree char *text = NULL;
        g_autofree char *what = g_strdup_printf("The file %s", path);
        gsize len;
        GError *e = NULL;

        if (!g_file_get_contents(path, &text, &len, &e)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Cannot read the certificate %s: %s",
                            path, e->message);
                g_error_free(e);
                return -ENOENT;
        }
        return nm_tls_pin_of_pem(text, len, what, ret, error);
}

void nm_tls_trust_clear(NmTlsTrust *t)
{
        if (!t)
                return;
        g_clear_pointer(&t->ca_file, g_free);
        g_clear_pointer(&t->failure, g_free);
        *t = (NmTlsTrust){};
}

void nm_tls_trust_copy(NmTlsTrust *dst, const NmTlsTrust *src)
{
        nm_tls_trust_clear(dst);
        dst->mode = src->mode;
        dst->pin = src->pin;
        dst->ca_file = g_strdup(src->ca_file);
}

static char *asn1_time_text(const ASN1_TIME *t)
{
        struct tm tm = {};
        char buf[64];

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1 ||
            strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                return g_strdup("an unreadable date");
        return g_strdup(buf);
}

/* SSL_CTX_set_cert_verify_callback(): replaces the chain building of OpenSSL. In pin mode the
 * only question is whether the leaf carries the pinned key (and is within its dates); a CA, an
 * issuer or a name would add nothing the pin does not already say. */
static int verify_pinned(X509_STORE_CTX *ctx, void *userdata)
{
        NmTlsTrust *t = userdata;
        X509 *leaf = X509_STORE_CTX_get0_cert(ctx);

        g_clear_pointer(&t->failure, g_free);
        t->seen_valid = false;
        if (!leaf || pin_of_x509(leaf, &t->seen) < 0) {
                t->failure = g_strdup("the server presented no usable certificate");
                X509_STORE_CTX_set_error(ctx, X509_V_ERR_UNSPECIFIED);
                return 0;
        }
        t->seen_valid = true;
        if (t->mode == NM_TLS_LEARN) {
                X509_STORE_CTX_set_error(ctx, X509_V_OK);
                return 1;
        }
        if (!nm_tls_pin_equal(&t->seen, &t->pin)) {
                g_autofree char *seen = nm_tls_pin_format(&t->seen), *want = nm_tls_pin_format(&t->pin);
                t->failure = g_strdup_printf("the server's public key is %s, not the pinned %s: this is "
                                             "not the server the token or login was made for",
                                             seen, want);
                X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_REJECTED);
                return 0;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
                g_autofree char *when = asn1_time_text(X509_get0_notAfter(leaf));
                t->failure = g_strdup_printf("the server's certificate (with the pinned key) expired on %s",
                                             when);
                X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_HAS_EXPIRED);
                return 0;
        }
        if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
                g_autofree char *when = asn1_time_text(X509_get0_notBefore(leaf));
                t->failure = g_strdup_printf(
                        "the server's certificate (with the pinned key) is not valid before %s "
                        "(is this machine's clock right?)",
                        when);
                X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_NOT_YET_VALID);
                return 0;
        }
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
}

int nm_tls_trust_apply(void *ssl_ctx, NmTlsTrust *t)
{
        SSL_CTX *ctx = ssl_ctx;

        if (!ctx || !t)
                return -EINVAL;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (t->mode == NM_TLS_CA) {
                int ok = t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                                    : SSL_CTX_set_default_verify_paths(ctx);
                ERR_clear_error();
                return ok == 1 ? 0 : -EIO;
        }
        SSL_CTX_set_cert_verify_callback(ctx, verify_pinned, t);
        return 0;
}

/* ---- plain transports -------------------------------------------------------------------------- */

char *nm_url_host(const char *url)
{
        const char *p;

        if (g_str_has_prefix(url, "https://"))
                p = url + 8;
        else if (g_str_has_prefix(url, "http://"))
                p = url + 7;
        else if (g_str_has_prefix(url, "mqtts://"))
                p = url + 8;
        else if (g_str_has_prefix(url, "mqtt://"))
                p = url + 7;
        else
                return NULL;
        if (*p == '[') {
                const char *end = strchr(p, ']');
                return end ? g_strndup(p + 1, end - p - 1) : NULL;
        }
        size_t n = strcspn(p, ":/");
        return n ? g_strndup(p, n) : NULL;
}

bool nm_host_is_loopback(const char *host)
{
        int family;
        NmInAddr a;

        if (!host)
                return false;
        if (g_ascii_strcasecmp(host, "localhost") == 0 || g_str_has_suffix(host, ".localhost"))
                return true;
        if (nm_addr_parse(host, &family, &a) < 0)
                return false;
        if (family == AF_INET)
                return (ntohl(a.in.s_addr) >> 24) == 127;
        return IN6_IS_ADDR_LOOPBACK(&a.in6);
}

/* ---- self-signed certificates --------------------------------------------------------------- */

static GENERAL_NAME *general_name(const char *name)
{
        GENERAL_NAME *g = GENERAL_NAME_new();
        unsigned char addr[16];
        int len = 0;

        if (!g)
                return NULL;
        if (inet_pton(AF_INET, name, addr) == 1)
                len = 4;
        else if (inet_pton(AF_INET6, name, addr) == 1)
                len = 16;
        if (len > 0) {
                ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
                if (!ip || !ASN1_OCTET_STRING_set(ip, addr, len)) {
                        ASN1_OCTET_STRING_free(ip);
                        GENERAL_NAME_free(g);
                        return NULL;
                }
                GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        } else {
                ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
                if (!dns || !ASN1_STRING_set(dns, name, (int)strlen(name))) {
                        ASN1_IA5STRING_free(dns);
                        GENERAL_NAME_free(g);
                        return NULL;
                }
                GENERAL_NAME_set0_value(g, GEN_DNS, dns);
        }
        return g;
}

static char *bio_text(BIO *bio)
{
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        return n > 0 ? g_strndup(data, (gsize)n) : NULL;
}

/* Sets `error` from OpenSSL's error queue (and empties it). */
static int openssl_failed(GError **error)
{
        unsigned long code = ERR_get_error();
        char buf[256] = "unknown error";

        if (code)
                ERR_error_string_n(code, buf, sizeof(buf));
        ERR_clear_error();
        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to make a self-signed certificate: %s", buf);
        return -EIO;
}

static int add_extensions(X509 *x, const char *const *names)
{
        static const struct {
                int nid;
                const char *value;
        } exts[] = {
                {NID_basic_constraints, "critical,CA:FALSE"},
                {NID_key_usage, "critical,digitalSignature"},
                {NID_ext_key_usage, "serverAuth"},
                {NID_subject_key_identifier, "hash"},
        };
        g_autoptr(GENERAL_NAMES) sans = GENERAL_NAMES_new();
        X509V3_CTX v3;

        if (!sans)
                return -ENOMEM;
        for (const char *const *n = names; *n; n++) {
                GENERAL_NAME *g = general_name(*n);
                if (!g || !sk_GENERAL_NAME_push(sans, g)) {
                        GENERAL_NAME_free(g);
                        return -ENOMEM;
                }
        }
        if (!X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0))
                return -EIO;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
                int ok = e && X509_add_ext(x, e, -1);
                X509_EXTENSION_free(e);
                if (!ok)
                        return -EIO;
        }
        return 0;
}

int nm_tls_make_self_signed(const char *const *names, unsigned days, char **ret_key_pem, char **ret_cert_pem,
                            GError **error)
{
        g_autoptr(EVP_PKEY) key = NULL;
        g_autoptr(X509) x = NULL;
        g_autoptr(BIO) kb = NULL, cb = NULL;
        _cleanup_secret_ char *key_pem = NULL;
        g_autofree char *cert_pem = NULL;
        uint64_t serial;
        X509_NAME *subject;

        if (!names || !names[0]) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "A certificate needs at least one name");
                return -EINVAL;
        }
        key = EVP_EC_gen("P-256");
        x = X509_new();
        if (!key || !x)
                return openssl_failed(error);
        randombytes_buf(&serial, sizeof(serial));
        serial &= INT64_MAX; /* a positive INTEGER */
        if (!X509_set_version(x, X509_VERSION_3) ||
            !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial ?: 1) ||
            /* an hour back: clocks of hosts differ */
            !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) || !X509_set_pubkey(x, key))
                return openssl_failed(error);
        subject = X509_get_subject_name(x);
        if (!X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)names[0], -1,
                                        -1, 0) ||
            !X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, (const unsigned char *)"netmakerd", -1,
                                        -1, 0) ||
            !X509_set_issuer_name(x, subject) || add_extensions(x, names) < 0 ||
            X509_sign(x, key, EVP_sha256()) <= 0)
                return openssl_failed(error);
        kb = BIO_new(BIO_s_secmem());
        cb = BIO_new(BIO_s_mem());
        if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
            !PEM_write_bio_X509(cb, x))
                return openssl_failed(error);
        key_pem = bio_text(kb);
        cert_pem = bio_text(cb);
        if (!key_pem || !cert_pem)
                return openssl_failed(error);
        *ret_key_pem = TAKE_PTR(key_pem);
        *ret_cert_pem = TAKE_PTR(cert_pem);
        return 0;
}

gint64 nm_tls_cert_not_after(const char *pem, size_t len)
{
        g_autoptr(BIO) bio = BIO_new_mem_buf(pem, (int)MIN(len, (size_t)G_MAXINT));
        g_autoptr(X509) x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        struct tm tm = {};

        ERR_clear_error();
        if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
                return 0;
        return (gint64)timegm(&tm);
}
