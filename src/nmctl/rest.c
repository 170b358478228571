/* nmctl's REST calls with libcurl's easy interface. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "macro.h"
#include "credentials.h"
#include "rest.h"
#include "tls-curl.h"

#define MAX_ANSWER          (64u * 1024 * 1024)
#define CONNECT_TIMEOUT_SEC 10L
#define TIMEOUT_SEC         120L

typedef struct Answer {
        GByteArray *data;
        bool too_large;
} Answer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        Answer *a = userdata;
        size_t n = size * nmemb;

        if (a->data->len + n > MAX_ANSWER) {
                a->too_large = true;
                return 0; /* aborts the transfer */
        }
        g_byte_array_append(a->data, (const guint8 *)ptr, n);
        return n;
}

/* The server's text, without control characters that could mess with the terminal. */
static char *printable(const char *s, size_t max)
{
        g_autofree char *valid = g_utf8_make_valid(s, MIN(strlen(s), max));
        for (char *p = valid; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return TAKE_PTR(valid);
}

static void print_refusal(Ctx *c, long status, const char *body, size_t len)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        const char *message = NULL;

        if (len > 0 && json_parser_load_from_data(parser, body, (gssize)len, NULL)) {
                JsonNode *root = json_parser_get_root(parser);
                if (root && JSON_NODE_HOLDS_OBJECT(root)) {
                        JsonNode *e = json_object_get_member(json_node_get_object(root), "error");
                        if (e && JSON_NODE_HOLDS_OBJECT(e)) {
                                JsonObject *eo = json_node_get_object(e);
                                JsonNode *m = json_object_get_member(eo, "message");
                                if (m && JSON_NODE_HOLDS_VALUE(m) &&
                                    json_node_get_value_type(m) == G_TYPE_STRING)
                                        message = json_node_get_string(m);
                        }
                }
        }
        if (message) {
                g_autofree char *m = printable(message, 2000);
                fprintf(stderr, "Error: %s\n", m);
                if (c->json)
                        printf("%.*s\n", (int)len, body);
        } else if (status == 502 || status == 504) /* never netmakerd's own */
                fprintf(stderr,
                        "Error: the server answered HTTP %ld without an explanation: a proxy in front of "
                        "netmakerd could not reach it.\n",
                        status);
        else
                fprintf(stderr, "Error: the server answered HTTP %ld without an explanation.\n", status);

        if (status == 401) {
                switch (c->auth_source) {
                case AUTH_NONE:
                        fprintf(stderr, "Hint: log in with \"%s login\", or set NMCTL_MASTER_KEY.\n",
                                c->program);
                        break;
                case AUTH_TOKEN_FILE:
                        fprintf(stderr, "Hint: the stored login may have expired: run \"%s login\" again.\n",
                                c->program);
                        break;
                default:
                        break;
                }
        }
}

/* One transfer with `trust`; the answer in `a`, the HTTP status in *ret_status. */
static CURLcode perform(Ctx *c, NmTlsTrust *trust, const char *method, const char *path, const char *body,
                        Answer *a, long *ret_status, char errbuf[CURL_ERROR_SIZE])
{
        g_autofree char *url = g_strconcat(c->server, "/api/v1", path, NULL);
        g_autofree char *auth = NULL;
        struct curl_slist *headers = NULL;
        CURL *curl;
        CURLcode cc;

        *ret_status = 0;
        curl = curl_easy_init();
        if (!curl)
                return CURLE_OUT_OF_MEMORY;
        headers = curl_slist_append(headers, "Accept: application/json");
        if (body)
                headers = curl_slist_append(headers, "Content-Type: application/json");
        if (c->credential) {
                auth = g_strconcat("Authorization: Bearer ", c->credential, NULL);
                headers = curl_slist_append(headers, auth);
        }
        (void)curl_easy_setopt(curl, CURLOPT_URL, url);
        (void)curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        (void)curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        (void)curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        (void)curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void)curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SEC);
        (void)curl_easy_setopt(curl, CURLOPT_TIMEOUT, TIMEOUT_SEC);
        (void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        (void)curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        (void)curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
        (void)curl_easy_setopt(curl, CURLOPT_USERAGENT, "nmctl/" PACKAGE_VERSION);
        /* HTTP/1.1, as netmakerd speaks: over HTTP/2 (a proxy in front) libcurl turns an answer given
         * before the whole body was read (a proxy's 502) into a framing error. */
        (void)curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        if (body) {
                (void)curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
                (void)curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
        if (nm_tls_curl_setup(curl, trust) < 0)
                cc = CURLE_NOT_BUILT_IN;
        else
                cc = curl_easy_perform(curl);
        if (cc == CURLE_OK)
                (void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        if (auth)
                nm_free_secret(g_steal_pointer(&auth));
        return cc;
}

static bool is_trust_failure(CURLcode cc, const NmTlsTrust *t)
{
        return t->failure || cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

static void print_unreachable(Ctx *c, CURLcode cc, const char *errbuf)
{
        g_autofree char *msg =
                nm_tls_curl_error(cc, errbuf, &c->trust, c->server, "--ca-file or NMCTL_CA_FILE");

        fprintf(stderr, "Error: %s\n", msg);
        if (!is_trust_failure(cc, &c->trust))
                return;
        if (c->pin_known) {
                g_autofree char *path = known_servers_path();
                fprintf(stderr,
                        "WARNING: %s no longer presents the key remembered for it in %s. Someone may be\n"
                        "intercepting the connection, or the server's key changed. Ask the server's admin "
                        "for its\n"
                        "pin; if it did change, remove the server's line from that file and log in again.\n",
                        c->server, path);
        } else if (c->trust.mode == NM_TLS_CA)
                fprintf(stderr,
                        "Hint: run \"%s login\" to see the server's key and trust it, or give --pin or "
                        "--ca-file.\n",
                        c->program);
}

int rest_probe_key(Ctx *c, NmTlsPin *ret, bool *ret_ca_trusted)
{
        char errbuf[CURL_ERROR_SIZE] = "";
        Answer a = {.data = g_byte_array_new()};
        g_autoptr(GByteArray) data = a.data;
        long status;
        CURLcode cc;

        /* A CA that vouches for the server needs no pin. */
        cc = perform(c, &c->trust, "GET", "/health", NULL, &a, &status, errbuf);
        if (cc == CURLE_OK) {
                *ret_ca_trusted = true;
                return NMCTL_EXIT_OK;
        }
        if (!is_trust_failure(cc, &c->trust)) {
                print_unreachable(c, cc, errbuf);
                return NMCTL_EXIT_UNREACHABLE;
        }
        g_auto(NmTlsTrust) learn = {.mode = NM_TLS_LEARN};
        g_byte_array_set_size(data, 0);
        errbuf[0] = 0;
        cc = perform(c, &learn, "GET", "/health", NULL, &a, &status, errbuf);
        if (!learn.seen_valid) {
                g_autofree char *msg =
                        nm_tls_curl_error(cc, errbuf, &learn, c->server, "--ca-file or NMCTL_CA_FILE");
                fprintf(stderr, "Error: %s\n", msg);
                return NMCTL_EXIT_UNREACHABLE;
        }
        *ret_ca_trusted = false;
        *ret = learn.seen;
        return NMCTL_EXIT_OK;
}

int rest_call(Ctx *c, const char *method, const char *path, const char *body, JsonNode **ret, char **ret_raw)
{
        char errbuf[CURL_ERROR_SIZE] = "";
        Answer a = {.data = g_byte_array_new()};
        g_autoptr(GByteArray) data = a.data;
        long status = 0;
        CURLcode cc;

        cc = perform(c, &c->trust, method, path, body, &a, &status, errbuf);
        if (a.too_large) {
                fprintf(stderr, "Error: the answer from %s is larger than %u MiB.\n", c->server,
                        MAX_ANSWER >> 20);
                return NMCTL_EXIT_REFUSED;
        }
        if (cc != CURLE_OK) {
                print_unreachable(c, cc, errbuf);
                return NMCTL_EXIT_UNREACHABLE;
        }
        if (status < 200 || status > 299) {
                print_refusal(c, status, (const char *)data->data, data->len);
                return NMCTL_EXIT_REFUSED;
        }

        if (data->len > 0 && ret) {
                g_autoptr(JsonParser) parser = json_parser_new();
                g_autoptr(GError) e = NULL;
                if (!json_parser_load_from_data(parser, (const char *)data->data, (gssize)data->len, &e) ||
                    !json_parser_get_root(parser)) {
                        fprintf(stderr, "Error: the answer from %s is not JSON (is this a netmakerd?).\n",
                                c->server);
                        return NMCTL_EXIT_REFUSED;
                }
                *ret = json_node_copy(json_parser_get_root(parser));
        } else if (ret)
                *ret = NULL;
        if (ret_raw)
                *ret_raw = g_strndup((const char *)data->data, data->len);
        return NMCTL_EXIT_OK;
}

int rest_call_show(Ctx *c, const char *method, const char *path, const char *body, JsonNode **ret)
{
        g_autofree char *raw = NULL;
        int k = rest_call(c, method, path, body, ret, &raw);

        if (k == NMCTL_EXIT_OK && c->json && raw && *raw) {
                fputs(raw, stdout);
                if (raw[strlen(raw) - 1] != '\n')
                        putchar('\n');
        }
        return k;
}
