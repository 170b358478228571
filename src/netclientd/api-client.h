/* An HTTP client for the server's REST API: libcurl's multi interface driven by sd-event (sockets
 * as io sources, curl's timer as a time source), JSON in and out, the server's error bodies turned
 * into GErrors with the API's error codes. */
#pragma once

#include <stdint.h>
#include <glib.h>
#include <systemd/sd-event.h>

#include "tls.h"

typedef struct ApiClient ApiClient;
typedef struct ApiRequest ApiRequest;

typedef struct ApiResult {
        long status;      /* HTTP status; 0 when no answer came */
        const char *body; /* NUL-terminated; "" when empty */
        size_t body_len;
        const GError *error; /* NULL on 2xx; otherwise NM_ERROR with the server's code and message,
                              * or NM_ERROR_UNAVAILABLE when the server could not be reached */
} ApiResult;

/* Called once per request, from the event loop (never from inside api_client_request()). */
typedef void (*ApiCallback)(ApiClient *c, const ApiResult *result, void *userdata);

int api_client_new(sd_event *event, uint64_t timeout_usec, ApiClient **ret);
/* How https:// servers are verified from the next request on (copied): a pin, or a CA file (NULL
 * or mode CA without a file: the system's trust store). A server refused by it fails the request
 * with NM_ERROR_UNAUTHENTICATED and a message naming why. */
void api_client_set_trust(ApiClient *c, const NmTlsTrust *trust);
/* Cancels every request still running (their callbacks are not called). */
ApiClient *api_client_free(ApiClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiClient, api_client_free)

/* Starts `method` on `url` with an optional bearer credential and an optional JSON body.
 * *ret (may be NULL) lets the caller cancel; it is invalid after the callback ran. */
int api_client_request(ApiClient *c, const char *method, const char *url, const char *bearer,
                       const char *json_body, ApiCallback callback, void *userdata, ApiRequest **ret);
/* Stops a request; its callback is not called. NULL is fine. */
void api_request_cancel(ApiRequest *r);
/* Number of requests in flight (for tests and shutdown). */
unsigned api_client_pending(ApiClient *c);
