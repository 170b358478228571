/* The REST client of netclientd: libcurl multi on sd-event. */
#include "config.h"
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <curl/curl.h>

#include "api-client.h"
#include "json-util.h"
#include "macro.h"
#include "nm-error.h"
#include "tls-curl.h"

#define API_MAX_RESPONSE (16u * 1024 * 1024)

struct ApiClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        GHashTable *requests; /* set of ApiRequest* */
        uint64_t timeout_usec;
        NmTlsTrust trust; /* for https://; each request takes a copy */
};

struct ApiRequest {
        ApiClient *client;
        CURL *easy;
        struct curl_slist *headers;
        GByteArray *response;
        char *body;
        char *url;
        char *method;
        ApiCallback callback;
        void *userdata;
        bool done;      /* removed from the multi handle, callback pending */
        bool cancelled; /* cancelled while done: free instead of calling back */
        CURLcode result;
        char errbuf[CURL_ERROR_SIZE];
        NmTlsTrust trust; /* this request's: the handshake records what it saw here */
};

static void api_request_free(ApiRequest *r)
{
        if (!r)
                return;
        if (r->easy) {
                if (!r->done)
                        curl_multi_remove_handle(r->client->multi, r->easy);
                curl_easy_cleanup(r->easy);
        }
        curl_slist_free_all(r->headers);
        if (r->response)
                g_byte_array_unref(r->response);
        /* Bodies may carry an enrollment token: wipe them. */
        nm_free_secret(r->body);
        g_free(r->url);
        g_free(r->method);
        nm_tls_trust_clear(&r->trust);
        g_free(r);
}

void api_client_set_trust(ApiClient *c, const NmTlsTrust *trust)
{
        if (trust)
                nm_tls_trust_copy(&c->trust, trust);
        else {
                nm_tls_trust_clear(&c->trust);
                c->trust.mode = NM_TLS_CA;
        }
}

unsigned api_client_pending(ApiClient *c)
{
        return g_hash_table_size(c->requests);
}

static GError *error_from_response(long status, const char *body, size_t len)
{
        g_autoptr(JsonObject) o = NULL;
        JsonObject *e = NULL;
        const char *code = NULL, *message = NULL;

        if (len > 0) {
                o = nm_json_parse_object(body, (gssize)len, NULL);
                if (o && nm_json_get_object(o, "error", true, &e, NULL) &&
                    nm_json_get_string(e, "code", true, &code, NULL) &&
                    nm_json_get_string(e, "message", true, &message, NULL))
                        return g_error_new(NM_ERROR, nm_error_code_from_name(code), "%s", message);
        }

        int c;
        switch (status) {
        case 400:
                c = NM_ERROR_INVALID_ARGUMENT;
                break;
        case 401:
                c = NM_ERROR_UNAUTHENTICATED;
                break;
        case 403:
                c = NM_ERROR_FORBIDDEN;
                break;
        case 404:
                c = NM_ERROR_NOT_FOUND;
                break;
        case 409:
                c = NM_ERROR_CONFLICT;
                break;
        case 410:
                c = NM_ERROR_GONE;
                break;
        case 502:
        case 503:
        case 504:
                c = NM_ERROR_UNAVAILABLE;
                break;
        case 507:
                c = NM_ERROR_EXHAUSTED;
                break;
        default:
                c = NM_ERROR_INTERNAL;
        }
        if (status == 502 || status == 504) /* never netmakerd's own */
                return g_error_new(
                        NM_ERROR, c,
                        "The server answered HTTP %ld without an error description: a proxy in front "
                        "of netmakerd could not reach it",
                        status);
        return g_error_new(NM_ERROR, c, "The server answered HTTP %ld without an error description", status);
}

static void finish(ApiRequest *r)
{
        g_autoptr(GError) error = NULL;
        ApiResult res = {.body = ""};

        if (r->result != CURLE_OK) {
                g_autofree char *why =
                        nm_tls_curl_error(r->result, r->errbuf, &r->trust, r->url,
                                          "[Server] CAFile= of netclientd, or NETCLIENTD_CA_FILE");
                /* A server that is there but not the one we trust is no outage: retrying will not help. */
                bool refused = r->trust.failure || r->result == CURLE_PEER_FAILED_VERIFICATION ||
                               r->result == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
                error = g_error_new(NM_ERROR, refused ? NM_ERROR_UNAUTHENTICATED : NM_ERROR_UNAVAILABLE,
                                    "%s", why);
        } else {
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
                g_byte_array_append(r->response, (const guint8 *)"", 1);
                res.body = (const char *)r->response->data;
                res.body_len = r->response->len - 1;
                if (res.status < 200 || res.status >= 300)
                        error = error_from_response(res.status, res.body, res.body_len);
        }
        res.error = error;
        r->callback(r->client, &res, r->userdata);
}

static void process_done(ApiClient *c)
{
        g_autoptr(GPtrArray) done = g_ptr_array_new();
        CURLMsg *msg;
        int left;

        /* Collect first, call back afterwards: a callback may start or cancel requests. */
        while ((msg = curl_multi_info_read(c->multi, &left))) {
                ApiRequest *r = NULL;
                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                if (!r)
                        continue;
                r->result = msg->data.result;
                curl_multi_remove_handle(c->multi, r->easy);
                r->done = true;
                g_ptr_array_add(done, r);
        }
        for (guint i = 0; i < done->len; i++) {
                ApiRequest *r = done->pdata[i];
                if (!r->cancelled)
                        finish(r);
                g_hash_table_remove(c->requests, r);
                api_request_free(r);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        ApiClient *c = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, fd, action, &running);
        process_done(c);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        ApiClient *c = userdata;
        int running;

        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(c);
        return 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        ApiClient *c = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        sd_event_source_disable_unref(io);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (io) {
                if (sd_event_source_set_io_events(io, events) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_io(c->event, &io, fd, events, on_io, c) < 0)
                return -1;
        (void)sd_event_source_set_description(io, "api-client-io");
        curl_multi_assign(c->multi, fd, io);
        return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        ApiClient *c = userp;
        uint64_t now;

        if (timeout_ms < 0) {
                if (c->timer)
                        sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return 0;
        }
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        now += (uint64_t)timeout_ms * 1000;
        if (!c->timer) {
                if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, now, 0, on_timer, c) < 0)
                        return -1;
                (void)sd_event_source_set_description(c->timer, "api-client-timer");
                return 0;
        }
        if (sd_event_source_set_time(c->timer, now) < 0 ||
            sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        ApiRequest *r = userdata;
        size_t n = size * nmemb;

        if (r->response->len + n > API_MAX_RESPONSE)
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        g_byte_array_append(r->response, (const guint8 *)ptr, (guint)n);
        return n;
}

int api_client_new(sd_event *event, uint64_t timeout_usec, ApiClient **ret)
{
        ApiClient *c = g_new0(ApiClient, 1);

        c->event = sd_event_ref(event);
        c->timeout_usec = timeout_usec ? timeout_usec : 30 * 1000000ULL;
        c->requests = g_hash_table_new(g_direct_hash, g_direct_equal);
        c->multi = curl_multi_init();
        if (!c->multi) {
                api_client_free(c);
                return -ENOMEM;
        }
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        *ret = c;
        return 0;
}

ApiClient *api_client_free(ApiClient *c)
{
        if (!c)
                return NULL;
        if (c->requests) {
                GHashTableIter it;
                gpointer r;
                g_hash_table_iter_init(&it, c->requests);
                while (g_hash_table_iter_next(&it, &r, NULL)) {
                        g_hash_table_iter_remove(&it);
                        api_request_free(r);
                }
                g_hash_table_unref(c->requests);
        }
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        nm_tls_trust_clear(&c->trust);
        g_free(c);
        return NULL;
}

int api_client_request(ApiClient *c, const char *method, const char *url, const char *bearer,
                       const char *json_body, ApiCallback callback, void *userdata, ApiRequest **ret)
{
        ApiRequest *r = g_new0(ApiRequest, 1);
        long timeout_ms = (long)(c->timeout_usec / 1000);

        r->client = c;
        r->callback = callback;
        r->userdata = userdata;
        r->url = g_strdup(url);
        r->method = g_strdup(method);
        r->response = g_byte_array_new();
        r->easy = curl_easy_init();
        if (!r->easy) {
                api_request_free(r);
                return -ENOMEM;
        }
        r->done = true; /* not in the multi handle yet */

        r->headers = curl_slist_append(r->headers, "Accept: application/json");
        if (json_body)
                r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
        if (bearer) {
                _cleanup_secret_ char *h = g_strdup_printf("Authorization: Bearer %s", bearer);
                r->headers = curl_slist_append(r->headers, h);
        }
        /* No "Expect: 100-continue" round trip for our small bodies. */
        r->headers = curl_slist_append(r->headers, "Expect:");

        curl_easy_setopt(r->easy, CURLOPT_URL, url);
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
        curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, MIN(timeout_ms, 10000L));
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "netclientd/" PACKAGE_VERSION);
        /* netmakerd speaks HTTP/1.1 only; over HTTP/2 (a proxy in front, e.g. Caddy) libcurl reports
         * an answer given before the whole body was read (a 502 while netmakerd is down) as "Stream
         * error in the HTTP/2 framing layer" instead of the answer. */
        curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        nm_tls_trust_copy(&r->trust, &c->trust);
        if (nm_tls_curl_setup(r->easy, &r->trust) < 0) {
                api_request_free(r);
                return -EOPNOTSUPP;
        }
        if (json_body) {
                r->body = g_strdup(json_body);
                curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
                curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
        }

        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
                api_request_free(r);
                return -ENOMEM;
        }
        r->done = false;
        g_hash_table_add(c->requests, r);
        if (ret)
                *ret = r;
        return 0;
}

void api_request_cancel(ApiRequest *r)
{
        if (!r)
                return;
        if (r->done) {
                /* Collected by process_done() and waiting for its callback: skip it there. */
                r->cancelled = true;
                return;
        }
        g_hash_table_remove(r->client->requests, r);
        api_request_free(r);
}
