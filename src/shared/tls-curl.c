/* libcurl transfers verified by pin or CA (tls-curl.h). */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "tls-curl.h"

static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userdata)
{
        return nm_tls_trust_apply(ssl_ctx, userdata) < 0 ? CURLE_SSL_CERTPROBLEM : CURLE_OK;
}

static bool curl_uses_openssl(void)
{
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        return v && v->ssl_version && g_str_has_prefix(v->ssl_version, "OpenSSL");
}

int nm_tls_curl_setup(CURL *easy, NmTlsTrust *trust)
{
        g_clear_pointer(&trust->failure, g_free);
        trust->seen_valid = false;
        if (trust->mode == NM_TLS_CA) {
                curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
                curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
                if (trust->ca_file)
                        curl_easy_setopt(easy, CURLOPT_CAINFO, trust->ca_file);
                return 0;
        }
        /* The pin replaces the CA and the name: a self-signed certificate is as good as any. */
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
        if (trust->mode == NM_TLS_PIN) {
                g_autofree char *pin = nm_tls_pin_format(&trust->pin);
                /* Also part of the key curl reuses connections and sessions by. */
                if (curl_easy_setopt(easy, CURLOPT_PINNEDPUBLICKEY, pin) != CURLE_OK)
                        return -EOPNOTSUPP;
        }
        if (!curl_uses_openssl())
                return trust->mode == NM_TLS_PIN ? 0 : -EOPNOTSUPP;
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, trust);
        return 0;
}

char *nm_tls_curl_error(CURLcode code, const char *errbuf, const NmTlsTrust *trust, const char *url,
                        const char *ca_option)
{
        const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(code);
        bool https = url && g_str_has_prefix(url, "https://");

        if (https && trust && trust->failure)
                return g_strdup_printf("The server at %s was refused: %s", url, trust->failure);
        switch (code) {
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                return g_strdup_printf("The server at %s was refused: its public key does not match the pin",
                                       url);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                if (strstr(detail, "expired"))
                        return g_strdup_printf(
                                "The server at %s was refused: its certificate has expired (%s)", url,
                                detail);
                /* Name the store that said no and where the right CA goes: a proxy with a CA of
                 * its own (Caddy's `tls internal`) is refused this way until it is given. */
                return g_strdup_printf(
                        "The server at %s was refused: its certificate is not trusted by %s%s (%s); "
                        "give the CA that issued it (%s), or use a token or login that pins the "
                        "server's key",
                        url, trust && trust->ca_file ? "the CA file " : "the system's trust store",
                        trust && trust->ca_file ? trust->ca_file : "", detail,
                        ca_option ?: "a CA file option");
        case CURLE_SSL_CONNECT_ERROR:
                if (https &&
                    (strstr(detail, "wrong version number") || strstr(detail, "packet length too long")))
                        return g_strdup_printf(
                                "The server at %s does not speak TLS on this port (a plain HTTP "
                                "server?): %s",
                                url, detail);
                return g_strdup_printf("The TLS handshake with the server at %s failed: %s", url, detail);
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
                if (!https)
                        return g_strdup_printf(
                                "No HTTP answer from %s (%s): the server speaks HTTPS on this port? "
                                "Then the address must start with https://",
                                url, detail);
                break;
        default:
                break;
        }
        return g_strdup_printf("Cannot reach the server at %s: %s", url, detail);
}
