/* netmakerd's HTTP server: libmicrohttpd in external-epoll mode on the sd-event loop, the router
 * (method + path pattern → handler + who may call it), authentication, and the request/response
 * helpers every http-*.c resource file uses. Errors always carry the docs/protocol.md §2.1 body. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-event.h>

typedef struct Manager Manager;
typedef struct Http Http;
typedef struct Request Request;

#define HTTP_API_PREFIX "/api/v1"

/* Who may call a route: docs/protocol.md §2.2 says what each level answers to each kind of
 * credential (tests/integration/test_authz_matrix.py checks every route against it). */
typedef enum RouteAccess {
        ACCESS_ANYONE, /* no credential */
        ACCESS_USER,   /* a user token or the master key; any role */
        ACCESS_SELF,   /* the admin role, or the user the route's {name} names */
        ACCESS_ADMIN,  /* the admin role */
        ACCESS_HOST,   /* a host credential */
        _ACCESS_MAX,
} RouteAccess;

/* "anyone", "user", "self", "admin", "host": the names --list-routes and the docs use. */
const char *route_access_to_string(RouteAccess a);

/* Either replies (request_reply_*), suspends (request_suspend) and returns 0, or sets an
 * NM_ERROR and returns a negative errno: the router then replies with the error. */
typedef int (*RouteHandler)(Request *req, GError **error);

typedef struct Route {
        const char *method;
        const char *pattern; /* below /api/v1, with {name} segments: "/networks/{net}" */
        RouteAccess access;
        RouteHandler handler;
} Route;

/* Each resource file's table, ended by an all-zero entry. */
extern const Route http_health_routes[];
extern const Route http_network_routes[];
extern const Route http_key_routes[];
extern const Route http_host_routes[];
extern const Route http_node_routes[];
extern const Route http_user_routes[];
extern const Route http_dns_routes[];
extern const Route http_topology_routes[];   /* http-topology.c: node tags and roles */
extern const Route http_acl_routes[];        /* http-acl.c */
extern const Route http_ext_client_routes[]; /* http-ext-clients.c */
extern const Route http_nameserver_routes[]; /* http-nameservers.c: a network's split DNS */

/* Every route of every table, in the order the router tries them. */
void http_routes_foreach(void (*func)(const Route *route, void *userdata), void *userdata);
/* `netmakerd --list-routes`: a JSON array of {"method","path","access"}, paths with the API prefix,
 * made from the tables the router uses (so tests find every route, also new ones). */
char *http_routes_to_json(void);

typedef enum AuthKind {
        AUTH_NONE,
        AUTH_USER,   /* username set */
        AUTH_MASTER, /* the master key: an admin that is no user */
        AUTH_HOST,   /* host_id set */
} AuthKind;

typedef struct Auth {
        AuthKind kind;
        bool admin;
        char *username;
        char *host_id;
} Auth;

typedef struct HttpSettings {
        int listen_fd;       /* a listening stream socket from systemd (taken over), or -1: bind */
        int family;          /* AF_INET or AF_INET6, for binding when systemd passes no socket */
        const void *address; /* struct in_addr / in6_addr */
        uint16_t port;
        uint64_t max_request_size;
        unsigned max_connections;
        unsigned connection_timeout_sec;
        const char *tls_cert_pem; /* both set: HTTPS; NULL: plain HTTP */
        const char *tls_key_pem;
} HttpSettings;

/* http-ratelimit.c: counts the request against `limit` (NULL: no limit) by its source address; 0, or
 * -EBUSY with an NM_ERROR_TOO_MANY_REQUESTS that names the limit (`what`, e.g. "logins", and the
 * configuration key) and the wait, which also goes into Retry-After. */
typedef struct RateLimit RateLimit;
int http_rate_limit(Request *r, RateLimit *limit, const char *what, const char *key, GError **error);

/* http-auth.c: checks the Authorization header (NULL when absent) against `access`; fills *ret
 * (freed with the request) or sets NM_ERROR_UNAUTHENTICATED / NM_ERROR_FORBIDDEN. */
int http_authenticate(Request *r, const char *authorization, RouteAccess access, Auth *ret, GError **error);

/* One request without a connection or a server, answered synchronously: routing, authentication
 * (`authorization` is the header's value, or NULL), the handler. For tests/fuzz/fuzz-rest.c, which
 * drives the real handlers with a real store. There are no query arguments and no client address;
 * a handler must not suspend (a login's password check does, and so does a registration while a
 * broker is configured). Returns the status (0 when the handler did not reply) and, when
 * `ret_body` is given, the reply body (NULL when it had none). */
unsigned http_handle_detached(Manager *m, const char *method, const char *path, const char *authorization,
                              const void *body, size_t len, char **ret_body);

/* Listens on the socket systemd passed (listen_fd), or binds the configured address. */
int http_new(Manager *m, sd_event *event, const HttpSettings *settings, Http **ret);
void http_free(Http *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Http, http_free)
/* "https://127.0.0.1:8081": the scheme and address actually listened on. */
const char *http_url(Http *h);
bool http_socket_activated(Http *h);

/* ---- requests ------------------------------------------------------------------------------- */

Request *request_ref(Request *r);
Request *request_unref(Request *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Request, request_unref)

Manager *request_manager(Request *r);
const Auth *request_auth(Request *r);
const char *request_method(Request *r);
/* The request's path below the host, "/api/v1/..." (unescaped). */
const char *request_path(Request *r);
/* A {name} segment of the route's pattern. */
const char *request_param(Request *r, const char *name);
/* A query argument, or NULL. */
const char *request_query(Request *r, const char *name);
/* The body as a JSON object whose members are all in `allowed` (strict: see protocol.md §2). */
JsonObject *request_json_object(Request *r, const char *what, const char *const *allowed, GError **error);
bool request_has_body(Request *r);
/* Refuses a body with "\u0000" in a string (json-glib would cut the string there). */
int request_body_check(Request *r, GError **error);
/* The raw body (NUL-terminated), or NULL. */
const char *request_body(Request *r, size_t *ret_len);

/* Replies; each takes effect when the handler returns (or, when suspended, at request_resume). */
void request_reply_json(Request *r, unsigned status, JsonNode *body);
void request_reply_builder(Request *r, unsigned status, JsonBuilder *b);
void request_reply_empty(Request *r); /* 204 */
/* Any body (copied): `filename` (a plain name without quotes) adds "Content-Disposition:
 * attachment". */
void request_reply_data(Request *r, unsigned status, const char *content_type, const char *filename,
                        const void *data, size_t len);
void request_reply_error(Request *r, const GError *error);
/* The Retry-After of an error reply of 503 or 429, in seconds (default 5). */
void request_set_retry_after(Request *r, unsigned seconds);
/* The client's address (IPv4 or IPv6; AF_UNIX on a Unix socket from systemd), or NULL. */
const struct sockaddr *request_client_address(Request *r);

/* Asynchronous handlers: suspend, return 0, later reply and resume. A request whose client is
 * gone (or a server that is shutting down) makes request_is_alive() false; replying is then a
 * no-op. */
void request_suspend(Request *r);
void request_resume(Request *r);
bool request_is_alive(Request *r);

/* ---- the JSON forms of docs/protocol.md §2.4, each in its resource's file ------------------ */

typedef struct Network Network;
typedef struct Node Node;
typedef struct Host Host;
typedef struct EnrollmentKey EnrollmentKey;
typedef struct User User;

void json_add_network(JsonBuilder *b, const Network *n, Manager *m);
void json_add_node(JsonBuilder *b, const Node *n);
/* With its status (manager_host_status()), and `nodes` (of Node) for GET /hosts/{id}. */
void json_add_host(JsonBuilder *b, const Host *h, const char *status, GPtrArray *nodes);
void json_add_key(JsonBuilder *b, const EnrollmentKey *k, const char *token);
void json_add_user(JsonBuilder *b, const User *u);

/* "true"/"false" (or 1/0) query arguments; absent is `def`. */
int request_query_bool(Request *r, const char *name, bool def, bool *ret, GError **error);

/* The user name of the caller when it is a user (NULL for the master key and hosts). */
static inline const char *request_username(Request *r)
{
        const Auth *a = request_auth(r);
        return a->kind == AUTH_USER ? a->username : NULL;
}
