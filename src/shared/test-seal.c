/* Proves sealed messages open only for the right key pair and that any tampering, truncation or
 * wrong version is refused. */
#include <string.h>

#include "nm-error.h"
#include "seal.h"

static void test_roundtrip_and_tamper(void)
{
        NmKey spriv, spub, hpriv, hpub, opriv, opub;
        g_assert_cmpint(nm_key_generate_box(&spriv, &spub), ==, 0);
        g_assert_cmpint(nm_key_generate_box(&hpriv, &hpub), ==, 0);
        g_assert_cmpint(nm_key_generate_box(&opriv, &opub), ==, 0);

        const char *msg = "{\"type\":\"snapshot\",\"serial\":1}";
        g_autoptr(GBytes) sealed = nm_seal(msg, strlen(msg), &hpub, &spriv);
        gsize n;
        const guint8 *d = g_bytes_get_data(sealed, &n);
        g_assert_cmpuint(n, ==, strlen(msg) + NM_SEAL_OVERHEAD);
        g_assert_cmpuint(d[0], ==, NM_SEAL_VERSION);
        g_assert_null(memmem(d, n, "snapshot", 8)); /* not plaintext */

        g_autoptr(GError) e = NULL;
        g_autoptr(GBytes) opened = nm_open(d, n, &spub, &hpriv, &e);
        g_assert_no_error(e);
        gsize on;
        const char *o = g_bytes_get_data(opened, &on);
        g_assert_cmpuint(on, ==, strlen(msg));
        g_assert_cmpstr(o, ==, msg); /* NUL-terminated */

        /* Every single-bit flip after the version byte is detected. */
        g_autofree guint8 *copy = g_memdup2(d, n);
        for (gsize i = 1; i < n; i++) {
                for (int bit = 0; bit < 8; bit += 3) {
                        copy[i] ^= (guint8)(1 << bit);
                        g_autoptr(GError) te = NULL;
                        g_autoptr(GBytes) bad = nm_open(copy, n, &spub, &hpriv, &te);
                        g_assert_null(bad);
                        g_assert_error(te, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
                        copy[i] ^= (guint8)(1 << bit);
                }
        }

        /* Another sender (a host pretending to be the server) is refused. */
        g_autoptr(GBytes) forged = nm_seal(msg, strlen(msg), &hpub, &opriv);
        g_autoptr(GError) fe = NULL;
        const guint8 *fd = g_bytes_get_data(forged, &n);
        g_assert_null(nm_open(fd, n, &spub, &hpriv, &fe));
        g_assert_nonnull(strstr(fe->message, "authenticate"));

        /* Truncated and wrong version. */
        g_autoptr(GError) t1 = NULL;
        g_assert_null(nm_open(d, NM_SEAL_OVERHEAD - 1, &spub, &hpriv, &t1));
        g_assert_nonnull(strstr(t1->message, "short"));
        copy[0] = 2;
        g_autoptr(GError) t2 = NULL;
        g_assert_null(nm_open(copy, n, &spub, &hpriv, &t2));
        g_assert_nonnull(strstr(t2->message, "version"));
}

static void test_empty_plaintext(void)
{
        NmKey a, ap, b, bp;
        nm_key_generate_box(&a, &ap);
        nm_key_generate_box(&b, &bp);
        g_autoptr(GBytes) s = nm_seal("", 0, &bp, &a);
        gsize n;
        const void *d = g_bytes_get_data(s, &n);
        g_autoptr(GError) e = NULL;
        g_autoptr(GBytes) o = nm_open(d, n, &ap, &b, &e);
        g_assert_no_error(e);
        g_assert_cmpuint(g_bytes_get_size(o), ==, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/seal/roundtrip-and-tamper", test_roundtrip_and_tamper);
        g_test_add_func("/seal/empty", test_empty_plaintext);
        return g_test_run();
}
