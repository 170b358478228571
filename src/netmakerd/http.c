/* netmakerd's HTTP server: libmicrohttpd driven by sd-event (MHD's epoll fd plus a timer from
 * MHD_get_timeout), the router, authentication, body limits and the JSON reply helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "nm-error.h"

#define MAX_PARAMS              4
#define CONNECTION_MEMORY_LIMIT (128 * 1024)
/* A chunked body over the limit is read and dropped, up to this many times the limit; past that
 * the connection is closed without an answer. */
#define DISCARD_FACTOR 16

struct Http {
        Manager *manager;
        sd_event *event;
        struct MHD_Daemon *daemon;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *kick; /* runs MHD after a resume from outside it */
        char *url;
        bool activated;
        bool stopping;
        uint64_t max_request_size;
        GList *suspended; /* of Request, each holding a reference */
};

struct Request {
        unsigned n_ref;
        Http *http;       /* NULL once the connection is done: a request may outlive the server */
        Manager *manager; /* outlives everything */
        struct MHD_Connection *connection;
        char *method;
        char *path;
        const Route *route;
        unsigned n_params;
        char *param_names[MAX_PARAMS];
        char *param_values[MAX_PARAMS];
        Auth auth;
        GString *body;
        uint64_t discarded;
        bool too_large;
        bool drain; /* an early answer waits until the body is read, so the client can read it */
        bool dispatched;
        bool suspended;
        bool replied;
        struct MHD_Response *response;
        unsigned status;
        unsigned retry_after; /* seconds, for a 429; 0: the default */
        char *error_message;  /* for the log line */
        char *origin;         /* for the log line: the client's address, and what a proxy says */
        uint64_t start_usec;
        bool detached; /* http_handle_detached(): no connection, the reply is kept here */
        char *detached_body;
};

static const Route *const route_tables[] = {
        http_health_routes, http_user_routes,       http_network_routes,    http_key_routes,
        http_host_routes,   http_node_routes,       http_dns_routes,        http_topology_routes,
        http_acl_routes,    http_ext_client_routes, http_nameserver_routes,
};

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* "192.0.2.7", or behind a proxy "127.0.0.1 (X-Forwarded-For "192.0.2.7")": the header is shown
 * for the log only, never believed (a client can send any), so the rate limits count the address
 * the connection comes from. */
static char *request_origin(struct MHD_Connection *c)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        char buf[INET6_ADDRSTRLEN] = "local";

        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof(buf));
        else if (sa && sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a))
                        inet_ntop(AF_INET, &a->s6_addr[12], buf, sizeof(buf));
                else
                        inet_ntop(AF_INET6, a, buf, sizeof(buf));
        }
        const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
        if (!xff)
                return g_strdup(buf);
        g_autofree char *shown = nm_shown(xff);
        return g_strdup_printf("%s (X-Forwarded-For \"%s\")", buf, shown);
}

static Request *request_new(Http *h, struct MHD_Connection *c, const char *method, const char *url)
{
        Request *r = g_new0(Request, 1);
        r->n_ref = 1;
        r->http = h;
        r->manager = h->manager;
        r->connection = c;
        r->method = g_strdup(method);
        r->path = g_strdup(url);
        r->origin = request_origin(c);
        r->start_usec = now_usec();
        return r;
}

Request *request_ref(Request *r)
{
        if (r)
                r->n_ref++;
        return r;
}

Request *request_unref(Request *r)
{
        if (!r || --r->n_ref > 0)
                return NULL;
        g_free(r->method);
        g_free(r->path);
        for (unsigned i = 0; i < r->n_params; i++) {
                g_free(r->param_names[i]);
                g_free(r->param_values[i]);
        }
        g_free(r->auth.username);
        g_free(r->auth.host_id);
        if (r->body) {
                explicit_bzero(r->body->str, r->body->len); /* may hold passwords */
                g_string_free(r->body, true);
        }
        if (r->response)
                MHD_destroy_response(r->response);
        g_free(r->error_message);
        g_free(r->origin);
        g_free(r->detached_body);
        g_free(r);
        return NULL;
}

Manager *request_manager(Request *r)
{
        return r->manager;
}

const Auth *request_auth(Request *r)
{
        return &r->auth;
}

const char *request_method(Request *r)
{
        return r->method;
}

const char *request_path(Request *r)
{
        return r->path;
}

const char *request_param(Request *r, const char *name)
{
        for (unsigned i = 0; i < r->n_params; i++)
                if (streq0(r->param_names[i], name))
                        return r->param_values[i];
        return NULL;
}

const char *request_query(Request *r, const char *name)
{
        if (!r->connection)
                return NULL;
        return MHD_lookup_connection_value(r->connection, MHD_GET_ARGUMENT_KIND, name);
}

const char *request_body(Request *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r->body ? r->body->len : 0;
        return r->body ? r->body->str : NULL;
}

int request_query_bool(Request *r, const char *name, bool def, bool *ret, GError **error)
{
        const char *v = request_query(r, name);
        if (!v) {
                *ret = def;
                return 0;
        }
        if (streq0(v, "true") || streq0(v, "1") || streq0(v, "yes"))
                *ret = true;
        else if (streq0(v, "false") || streq0(v, "0") || streq0(v, "no"))
                *ret = false;
        else {
                g_autofree char *shown = g_utf8_make_valid(v, MIN(strlen(v), 40));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid value \"%s\" for ?%s: expected true or false", shown, name);
                return -EINVAL;
        }
        return 0;
}

bool request_has_body(Request *r)
{
        return r->body && r->body->len > 0;
}

/* json-glib turns "\u0000" into a C string that silently ends there ("off\u0000ice" would read as
 * "off"): find such strings first, and the member they belong to. */
static bool find_nul_escape(const char *data, size_t len, char **ret_member)
{
        g_autofree char *last = NULL, *member = NULL; /* the last string; the last key */
        bool in_string = false;
        size_t start = 0;

        for (size_t i = 0; i < len; i++) {
                char c = data[i];
                if (!in_string) {
                        if (c == '"') {
                                in_string = true;
                                start = i + 1;
                        } else if (c == ':') {
                                g_free(member);
                                member = TAKE_PTR(last);
                        }
                        continue;
                }
                if (c == '\\') {
                        if (i + 5 < len && data[i + 1] == 'u' && strncmp(data + i + 2, "0000", 4) == 0) {
                                *ret_member = g_strdup(member ?: "");
                                return true;
                        }
                        i++; /* the escaped character */
                } else if (c == '"') {
                        in_string = false;
                        g_free(last);
                        last = g_strndup(data + start, MIN(i - start, 64));
                }
        }
        return false;
}

int request_body_check(Request *r, GError **error)
{
        g_autofree char *member = NULL;
        if (r->body && find_nul_escape(r->body->str, r->body->len, &member)) {
                if (*member) {
                        g_autofree char *shown = g_utf8_make_valid(member, -1);
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid %s: member \"%s\" contains a NUL character (\\u0000)", shown,
                                    shown);
                } else
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid JSON: strings may not contain NUL characters (\\u0000)");
                return -EINVAL;
        }
        return 0;
}

JsonObject *request_json_object(Request *r, const char *what, const char *const *allowed, GError **error)
{
        if (request_body_check(r, error) < 0)
                return NULL;
        if (!request_has_body(r)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON,
                            "Empty body: a JSON object (%s) was expected", what);
                return NULL;
        }
        g_autoptr(JsonObject) o = nm_json_parse_object(r->body->str, (gssize)r->body->len, error);
        if (!o)
                return NULL;
        if (allowed && !nm_json_check_members(o, what, allowed, error))
                return NULL;
        return TAKE_PTR(o);
}

bool request_is_alive(Request *r)
{
        return r->connection && r->http && !r->replied && !r->http->stopping;
}

static void set_response(Request *r, unsigned status, char *body)
{
        if (r->replied || r->response)
                return; /* the first reply wins */
        if (r->detached && body)
                r->detached_body = g_strdup(body);
        size_t len = body ? strlen(body) : 0;
        r->response = body ? MHD_create_response_from_buffer_with_free_callback(len, body, g_free)
                           : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r->response) {
                g_free(body);
                return;
        }
        if (body)
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r->response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        r->status = status;
}

void request_reply_json(Request *r, unsigned status, JsonNode *body)
{
        set_response(r, status, nm_json_to_string(body));
}

void request_reply_builder(Request *r, unsigned status, JsonBuilder *b)
{
        set_response(r, status, nm_json_builder_to_string(b));
}

void request_reply_data(Request *r, unsigned status, const char *content_type, const char *filename,
                        const void *data, size_t len)
{
        if (r->replied || r->response)
                return;
        if (r->detached)
                r->detached_body = g_strndup(data, len);
        r->response = MHD_create_response_from_buffer_with_free_callback(len, g_memdup2(data, len), g_free);
        if (!r->response)
                return;
        MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(r->response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (filename) {
                g_autofree char *disposition = g_strdup_printf("attachment; filename=\"%s\"", filename);
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
        }
        r->status = status;
}

void request_reply_empty(Request *r)
{
        set_response(r, MHD_HTTP_NO_CONTENT, NULL);
}

static void reply_error_code(Request *r, int code, const char *message)
{
        unsigned status = nm_error_http_status(code);
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "error");
        json_builder_begin_object(b);
        nm_json_add_int(b, "status", status);
        nm_json_add_string(b, "code", nm_error_code_name(code));
        nm_json_add_string(b, "message", message);
        json_builder_end_object(b);
        json_builder_end_object(b);
        if (r->replied || r->response)
                return;
        g_free(r->error_message);
        r->error_message = g_strdup(message);
        set_response(r, status, nm_json_builder_to_string(b));
        if (!r->response)
                return;
        if (code == NM_ERROR_UNAUTHENTICATED)
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        "Bearer realm=\"netmaker\"");
        if (code == NM_ERROR_UNAVAILABLE || code == NM_ERROR_TOO_MANY_REQUESTS) {
                char retry[16];
                snprintf(retry, sizeof(retry), "%u", r->retry_after ?: 5);
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_RETRY_AFTER, retry);
        }
}

void request_set_retry_after(Request *r, unsigned seconds)
{
        r->retry_after = seconds;
}

const struct sockaddr *request_client_address(Request *r)
{
        const union MHD_ConnectionInfo *ci = NULL;
        if (r->connection)
                ci = MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        return ci ? ci->client_addr : NULL;
}

static void reply_errorf(Request *r, int code, const char *fmt, ...) _printf_(3, 4);
static void reply_errorf(Request *r, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        reply_error_code(r, code, msg);
}

void request_reply_error(Request *r, const GError *e)
{
        if (!e) {
                reply_error_code(r, NM_ERROR_INTERNAL, "Internal error: the server log has details");
                log_warning("%s %s: failed without an error message", r->method, r->path);
                return;
        }
        if (e->domain != NM_ERROR || e->code == NM_ERROR_INTERNAL) {
                /* Unexpected: keep the details in the log, give the client the pointer. */
                log_warning("%s %s failed: %s", r->method, r->path, e->message);
                reply_error_code(r, NM_ERROR_INTERNAL, "Internal error: the server log has details");
                return;
        }
        reply_error_code(r, e->code, e->message);
}

void request_suspend(Request *r)
{
        /* A detached request cannot wait: its handler is a bug of the caller's (see http.h). */
        g_assert(r->connection && !r->suspended);
        MHD_suspend_connection(r->connection);
        r->suspended = true;
        r->http->suspended = g_list_prepend(r->http->suspended, request_ref(r));
}

void request_resume(Request *r)
{
        if (!r->suspended || !r->http)
                return;
        r->suspended = false;
        MHD_resume_connection(r->connection);
        /* In external-epoll mode a resume does not wake MHD's epoll fd: run MHD soon ourselves. */
        if (r->http->kick)
                (void)sd_event_source_set_enabled(r->http->kick, SD_EVENT_ONESHOT);
        GList *l = g_list_find(r->http->suspended, r);
        if (l) {
                r->http->suspended = g_list_delete_link(r->http->suspended, l);
                request_unref(r);
        }
}

/* ---- routing -------------------------------------------------------------------------------- */

/* -1 when the pattern does not match the path, else the number of literal segments it matched:
 * "/hosts/register" beats "/hosts/{id}" for the path /hosts/register, whatever the method. */
static int match_pattern(const char *pattern, char **segments, Request *save)
{
        g_auto(GStrv) parts = g_strsplit(pattern + 1, "/", -1);
        guint n = g_strv_length(parts);
        int literals = 0;

        if (n != g_strv_length(segments))
                return -1;
        for (guint i = 0; i < n; i++) {
                bool param = parts[i][0] == '{';
                if (param ? !*segments[i] : !streq0(parts[i], segments[i]))
                        return -1;
                literals += !param;
        }
        if (save) {
                for (guint i = 0; i < n && save->n_params < MAX_PARAMS; i++)
                        if (parts[i][0] == '{') {
                                save->param_names[save->n_params] =
                                        g_strndup(parts[i] + 1, strlen(parts[i]) - 2);
                                save->param_values[save->n_params] = g_strdup(segments[i]);
                                save->n_params++;
                        }
        }
        return literals;
}

static void reply_not_found(Request *r)
{
        g_autofree char *shown = g_utf8_make_valid(r->path, MIN(strlen(r->path), 200));
        reply_errorf(r, NM_ERROR_NOT_FOUND, "No such resource: %s", shown);
}

/* The route for method + path; else replies 404 or 405 (with Allow) and returns NULL. */
static const Route *route_request(Request *r)
{
        const char *method = streq0(r->method, "HEAD") ? "GET" : r->method;
        g_autoptr(GString) allow = NULL;

        if (!g_str_has_prefix(r->path, HTTP_API_PREFIX "/")) {
                reply_not_found(r);
                return NULL;
        }
        g_autofree char *rest = g_strdup(r->path + strlen(HTTP_API_PREFIX));
        size_t n = strlen(rest);
        if (n > 1 && rest[n - 1] == '/')
                rest[n - 1] = 0;
        g_auto(GStrv) segments = g_strsplit(rest + 1, "/", -1);

        /* Only the most specific patterns that match the path count. */
        int best = -1;
        for (size_t t = 0; t < ELEMENTSOF(route_tables); t++)
                for (const Route *rt = route_tables[t]; rt->pattern; rt++)
                        best = MAX(best, match_pattern(rt->pattern, segments, NULL));
        if (best < 0) {
                reply_not_found(r);
                return NULL;
        }
        for (size_t t = 0; t < ELEMENTSOF(route_tables); t++)
                for (const Route *rt = route_tables[t]; rt->pattern; rt++) {
                        if (match_pattern(rt->pattern, segments, NULL) != best)
                                continue;
                        if (streq0(rt->method, method)) {
                                match_pattern(rt->pattern, segments, r);
                                return rt;
                        }
                        if (!allow)
                                allow = g_string_new(NULL);
                        if (!strstr(allow->str, rt->method))
                                g_string_append_printf(allow, "%s%s", allow->len ? ", " : "", rt->method);
                }
        if (!allow) {
                reply_not_found(r);
                return NULL;
        }
        reply_errorf(r, NM_ERROR_METHOD_NOT_ALLOWED, "Method %.16s is not allowed on %.200s (allowed: %s)",
                     r->method, r->path, allow->str);
        if (r->response)
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_ALLOW, allow->str);
        return NULL;
}

void http_routes_foreach(void (*func)(const Route *route, void *userdata), void *userdata)
{
        for (size_t t = 0; t < ELEMENTSOF(route_tables); t++)
                for (const Route *rt = route_tables[t]; rt->pattern; rt++)
                        func(rt, userdata);
}

static void add_route_json(const Route *rt, void *userdata)
{
        JsonBuilder *b = userdata;
        g_autofree char *path = g_strconcat(HTTP_API_PREFIX, rt->pattern, NULL);

        json_builder_begin_object(b);
        nm_json_add_string(b, "method", rt->method);
        nm_json_add_string(b, "path", path);
        /* An access level without a name is a bug: "null" makes every test of it fail. */
        nm_json_add_string(b, "access", route_access_to_string(rt->access));
        json_builder_end_object(b);
}

char *http_routes_to_json(void)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_array(b);
        http_routes_foreach(add_route_json, b);
        json_builder_end_array(b);
        return nm_json_builder_to_string(b);
}

/* ---- MHD callbacks -------------------------------------------------------------------------- */

static bool media_type_is_json(const char *ct)
{
        if (!ct)
                return false;
        while (*ct == ' ')
                ct++;
        size_t n = strcspn(ct, ";");
        while (n > 0 && ct[n - 1] == ' ')
                n--;
        if (n != strlen("application/json") || g_ascii_strncasecmp(ct, "application/json", n) != 0)
                return false;
        /* A charset parameter, if any, must be UTF-8. */
        const char *cs = strcasestr(ct, "charset=");
        if (cs) {
                cs += strlen("charset=");
                if (*cs == '"')
                        cs++;
                return g_ascii_strncasecmp(cs, "utf-8", 5) == 0 || g_ascii_strncasecmp(cs, "utf8", 4) == 0;
        }
        return true;
}

/* Everything that can be decided from the request line and headers. */
static void request_begin(Request *r)
{
        Http *h = r->http;
        g_autoptr(GError) e = NULL;

        r->route = route_request(r);
        if (!r->route)
                return;
        if (http_authenticate(r,
                              MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_AUTHORIZATION),
                              r->route->access, &r->auth, &e) < 0) {
                request_reply_error(r, e);
                return;
        }

        const char *cl =
                MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        uint64_t length = cl ? g_ascii_strtoull(cl, NULL, 10) : 0;
        bool body = length > 0 || (te && strcasestr(te, "chunked"));
        /* Answering before the body is read and then closing would reset the connection under a
         * client still sending, and it would never see the answer: read (and drop) a body of
         * reasonable size first. */
        r->drain = body && length <= DISCARD_FACTOR * h->max_request_size;
        if (length > h->max_request_size) {
                reply_errorf(r, NM_ERROR_TOO_LARGE,
                             "The request body of %" G_GUINT64_FORMAT
                             " bytes is over the limit of %" G_GUINT64_FORMAT " bytes",
                             length, h->max_request_size);
                return;
        }
        if (body) {
                const char *ct = MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_CONTENT_TYPE);
                if (!media_type_is_json(ct)) {
                        g_autofree char *shown = ct ? g_utf8_make_valid(ct, MIN(strlen(ct), 80)) : NULL;
                        if (shown)
                                reply_errorf(r, NM_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                             "Content-Type \"%s\" is not accepted: send application/json",
                                             shown);
                        else
                                reply_errorf(r, NM_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                             "A request body needs \"Content-Type: application/json\"");
                        return;
                }
        }
}

static void request_dispatch(Request *r)
{
        g_autoptr(GError) e = NULL;

        r->dispatched = true;
        if (r->route->handler(r, &e) < 0) {
                request_reply_error(r, e);
                return;
        }
        if (!r->suspended && !r->response) {
                log_warning("%s %s: the handler returned without a reply", r->method, r->path);
                reply_error_code(r, NM_ERROR_INTERNAL, "Internal error: the server log has details");
        }
}

unsigned http_handle_detached(Manager *m, const char *method, const char *path, const char *authorization,
                              const void *body, size_t len, char **ret_body)
{
        g_autoptr(Request) r = g_new0(Request, 1);
        g_autoptr(GError) e = NULL;

        r->n_ref = 1;
        r->manager = m;
        r->detached = true;
        r->method = g_strdup(method);
        r->path = g_strdup(path);
        r->origin = g_strdup("detached");
        r->start_usec = now_usec();
        r->route = route_request(r);
        if (r->route && http_authenticate(r, authorization, r->route->access, &r->auth, &e) < 0)
                request_reply_error(r, e);
        else if (r->route) {
                if (len > 0)
                        r->body = g_string_new_len(body, (gssize)len);
                request_dispatch(r);
        }
        if (ret_body)
                *ret_body = TAKE_PTR(r->detached_body);
        return r->response ? r->status : 0;
}

static enum MHD_Result queue_response(Request *r)
{
        enum MHD_Result ret = MHD_queue_response(r->connection, r->status, r->response);
        MHD_destroy_response(r->response);
        r->response = NULL;
        r->replied = true;
        return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        Http *h = cls;
        Request *r = *con_cls;

        if (!r) {
                r = request_new(h, connection, method, url);
                *con_cls = r;
                request_begin(r);
                if (r->response && !r->drain)
                        return queue_response(r);
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (r->replied)
                        return MHD_YES;
                if (r->response) {
                        /* Answered already (refused): drop the body, then send the answer. */
                        r->discarded += n;
                        return r->discarded > DISCARD_FACTOR * h->max_request_size ? MHD_NO : MHD_YES;
                }
                if (r->too_large || (r->body ? r->body->len : 0) + n > h->max_request_size) {
                        /* Never hold more than the limit: count the rest and drop it. */
                        r->too_large = true;
                        r->discarded += n;
                        return r->discarded > DISCARD_FACTOR * h->max_request_size ? MHD_NO : MHD_YES;
                }
                if (!r->body)
                        r->body = g_string_sized_new(n + 1);
                g_string_append_len(r->body, upload_data, (gssize)n);
                return MHD_YES;
        }

        if (r->response)
                return queue_response(r);
        if (r->replied || r->suspended)
                return MHD_YES;
        if (r->too_large)
                reply_errorf(r, NM_ERROR_TOO_LARGE,
                             "The request body is over the limit of %" G_GUINT64_FORMAT " bytes",
                             h->max_request_size);
        else if (!r->dispatched)
                request_dispatch(r);
        else
                reply_error_code(r, NM_ERROR_INTERNAL, "Internal error: the server log has details");
        if (r->suspended)
                return MHD_YES;
        if (!r->response)
                return MHD_NO;
        return queue_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        Request *r = *con_cls;

        if (!r)
                return;
        *con_cls = NULL;
        double ms = (double)(now_usec() - r->start_usec) / 1000.0;
        if (!r->replied)
                log_debug("%s %s from %s: connection closed without a reply (%.1f ms)", r->method, r->path,
                          r->origin, ms);
        else if (r->status >= 500)
                log_warning("%s %s from %s → %u: %s (%.1f ms)", r->method, r->path, r->origin, r->status,
                            strna(r->error_message), ms);
        else if (r->status >= 400)
                log_info("%s %s from %s → %u: %s (%.1f ms)", r->method, r->path, r->origin, r->status,
                         strna(r->error_message), ms);
        else
                log_debug("%s %s from %s → %u (%.1f ms)", r->method, r->path, r->origin, r->status, ms);
        r->connection = NULL;
        r->http = NULL;
        r->replied = true; /* nothing more can be sent */
        request_unref(r);
}

/* Decodes %HH like MHD does, except %00: a NUL would silently cut the path or argument short
 * ("/networks/%00" must not read as "/networks"), so it stays as it is and matches nothing. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
        char *w = s;
        for (const char *p = s; *p; p++) {
                if (p[0] == '%' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2])) {
                        int v = g_ascii_xdigit_value(p[1]) * 16 + g_ascii_xdigit_value(p[2]);
                        if (v != 0) {
                                *w++ = (char)v;
                                p += 2;
                                continue;
                        }
                }
                *w++ = *p;
        }
        *w = 0;
        return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        g_strchomp(msg);
        log_debug("libmicrohttpd: %s", msg);
}

/* ---- event loop glue ------------------------------------------------------------------------ */

static void http_run(Http *h)
{
        MHD_UNSIGNED_LONG_LONG timeout;

        if (MHD_run(h->daemon) == MHD_NO)
                log_debug("MHD_run() failed");
        if (MHD_get_timeout(h->daemon, &timeout) == MHD_YES && timeout == 0) {
                /* More to do now (TLS records GnuTLS already holds: epoll will not say so): on
                 * the next loop iteration, not after a timer's default slack of 250 ms. */
                (void)sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
                (void)sd_event_source_set_enabled(h->kick, SD_EVENT_ONESHOT);
        } else if (MHD_get_timeout(h->daemon, &timeout) == MHD_YES) {
                uint64_t usec = (uint64_t)timeout * 1000, now = 0;
                (void)sd_event_now(h->event, CLOCK_MONOTONIC, &now);
                (void)sd_event_source_set_time(h->timer, now + usec);
                (void)sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        http_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        http_run(userdata);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata)
{
        http_run(userdata);
        return 0;
}

/* ---- listening ------------------------------------------------------------------------------ */

static int bind_socket(const HttpSettings *s, int *ret)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        _cleanup_close_ int fd = -1;
        g_autofree char *shown = nm_addr_to_string(s->family, s->address);

        fd = socket(s->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create the API socket: %m");
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
        if (s->family == AF_INET) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(s->port);
                memcpy(&sa.in.sin_addr, s->address, sizeof(struct in_addr));
                len = sizeof(sa.in);
        } else {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(s->port);
                memcpy(&sa.in6.sin6_addr, s->address, sizeof(struct in6_addr));
                len = sizeof(sa.in6);
                /* "[::]" serves IPv4 too. */
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                                 &(int){!IN6_IS_ADDR_UNSPECIFIED(&sa.in6.sin6_addr)}, sizeof(int));
        }
        if (bind(fd, &sa.sa, len) < 0)
                return log_error_errno(errno, "Failed to listen on %s%s%s:%u: %m",
                                       s->family == AF_INET6 ? "[" : "", shown,
                                       s->family == AF_INET6 ? "]" : "", s->port);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on the API socket: %m");
        *ret = TAKE_FD(fd);
        return 0;
}

static char *socket_url(int fd, bool tls)
{
        const char *scheme = tls ? "https" : "http";
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len = sizeof(sa);
        char buf[INET6_ADDRSTRLEN];

        if (getsockname(fd, &sa.sa, &len) < 0)
                return NULL;
        if (sa.sa.sa_family == AF_INET) {
                inet_ntop(AF_INET, &sa.in.sin_addr, buf, sizeof(buf));
                return g_strdup_printf("%s://%s:%u", scheme, buf, ntohs(sa.in.sin_port));
        }
        if (sa.sa.sa_family == AF_INET6) {
                inet_ntop(AF_INET6, &sa.in6.sin6_addr, buf, sizeof(buf));
                return g_strdup_printf("%s://[%s]:%u", scheme, buf, ntohs(sa.in6.sin6_port));
        }
        return NULL;
}

int http_new(Manager *m, sd_event *event, const HttpSettings *s, Http **ret)
{
        g_autoptr(Http) h = g_new0(Http, 1);
        _cleanup_close_ int fd = -1;
        int r;

        h->manager = m;
        h->event = sd_event_ref(event);
        h->max_request_size = s->max_request_size;

        if (s->listen_fd >= 0) {
                int flags = fcntl(s->listen_fd, F_GETFL);
                if (flags < 0 || fcntl(s->listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "Failed to make the API socket non-blocking: %m");
                fd = s->listen_fd;
                h->activated = true;
        } else {
                r = bind_socket(s, &fd);
                if (r < 0)
                        return r;
        }
        bool tls = s->tls_cert_pem && s->tls_key_pem;
        h->url = socket_url(fd, tls);
        if (!h->url)
                return log_error_errno(errno ?: EINVAL, "Failed to read the API socket's address: %m");
        if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS))
                return log_error_errno(-EOPNOTSUPP, "This libmicrohttpd has no TLS: it cannot serve HTTPS");

        /* MHD hands the PEM texts to GnuTLS at start. */
        struct MHD_OptionItem tls_options[] = {
                {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)s->tls_key_pem},
                {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)s->tls_cert_pem},
                {MHD_OPTION_END, 0, NULL},
        };
        h->daemon = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0), 0,
                NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_ARRAY,
                tls_options, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, h,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned)s->connection_timeout_sec, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                (size_t)CONNECTION_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                MHD_OPTION_END);
        if (!h->daemon)
                return log_error_errno(-EIO, "Failed to start the HTTP server");
        TAKE_FD(fd); /* MHD owns it now */

        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(-EIO, "Failed to get the HTTP server's epoll fd");
        r = sd_event_add_io(event, &h->io, info->epoll_fd, EPOLLIN, on_io, h);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server: %m");
        /* 1 ms accuracy: sd-event's default slack is 250 ms. */
        r = sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, h);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP timer: %m");
        r = sd_event_add_defer(event, &h->kick, on_kick, h);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP resume source: %m");
        (void)sd_event_source_set_enabled(h->kick, SD_EVENT_OFF);
        (void)sd_event_source_set_description(h->io, "http-io");
        (void)sd_event_source_set_description(h->timer, "http-timer");
        http_run(h);
        *ret = TAKE_PTR(h);
        return 0;
}

void http_free(Http *h)
{
        if (!h)
                return;
        h->stopping = true;
        if (h->daemon) {
                /* MHD must not be stopped with suspended connections: answer them first. */
                bool resumed = h->suspended != NULL;
                while (h->suspended) {
                        Request *r = h->suspended->data;
                        reply_error_code(r, NM_ERROR_UNAVAILABLE,
                                         "The server is shutting down; retry later");
                        request_resume(r);
                }
                if (resumed)
                        (void)MHD_run(h->daemon);
                /* Quiesce first so MHD never shutdown()s a socket systemd shares with us. */
                MHD_socket fd = MHD_quiesce_daemon(h->daemon);
                MHD_stop_daemon(h->daemon);
                if (fd != MHD_INVALID_SOCKET)
                        close(fd);
        }
        sd_event_source_disable_unref(h->io);
        sd_event_source_disable_unref(h->timer);
        sd_event_source_disable_unref(h->kick);
        sd_event_unref(h->event);
        g_free(h->url);
        g_free(h);
}

const char *http_url(Http *h)
{
        return h->url;
}

bool http_socket_activated(Http *h)
{
        return h->activated;
}
