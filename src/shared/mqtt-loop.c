/* One MQTT client connection (libmosquitto, non-threaded) driven by an sd-event loop. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <mosquitto.h>
#include <openssl/ssl.h>

#include "log.h"
#include "mqtt-loop.h"

#define USEC_PER_MSEC           ((uint64_t)1000)
#define USEC_PER_SEC            ((uint64_t)1000000)
#define DEFAULT_KEEPALIVE_SEC   30
#define DEFAULT_BACKOFF_MIN     (500 * USEC_PER_MSEC)
#define DEFAULT_BACKOFF_MAX     (30 * USEC_PER_SEC)
#define DEFAULT_CONNECT_TIMEOUT (15 * USEC_PER_SEC)
#define MAX_PAYLOAD             (256u * 1024 * 1024)

typedef enum LoopState {
        LOOP_IDLE,       /* not started, or stopped */
        LOOP_CONNECTING, /* socket open, waiting for CONNACK */
        LOOP_CONNECTED,
        LOOP_WAITING, /* between attempts */
} LoopState;

struct MqttLoop {
        sd_event *event;
        struct mosquitto *mosq;

        char *url;
        char *host;
        uint16_t port;
        bool tls;
        char *client_id;
        char *username;
        char *password;
        NmTlsTrust trust; /* mqtts:// */
        char *tls_warned; /* the refusal last logged */
        bool clean_session;
        unsigned keepalive;
        uint64_t backoff_min, backoff_max, connect_timeout;

        MqttLoopCallbacks cb;
        void *userdata;

        sd_event_source *io;
        int io_fd;
        sd_event_source *misc_timer;
        sd_event_source *reconnect_timer;

        LoopState state;
        bool ever_attempted;
        unsigned failures; /* attempts since the last connection that lasted */
        uint64_t attempt_start, connected_since;
        int last_error;

        /* Set by libmosquitto's on_disconnect, handled once the library call has returned. */
        bool lost;
        int lost_error;

        /* Callbacks may free us: the outermost entry point does the freeing. */
        unsigned depth;
        bool dead;

        MqttLoopStats stats;
};

static void loop_really_free(MqttLoop *l);

static void loop_enter(MqttLoop *l)
{
        l->depth++;
}

/* Returns true when `l` is gone and must not be touched. */
static bool loop_leave(MqttLoop *l)
{
        g_assert(l->depth > 0);
        if (--l->depth == 0 && l->dead) {
                loop_really_free(l);
                return true;
        }
        return false;
}

static uint64_t now_usec(MqttLoop *l)
{
        uint64_t t = 0;
        (void)sd_event_now(l->event, CLOCK_MONOTONIC, &t);
        return t;
}

int mqtt_error_to_errno(int rc)
{
        switch (rc) {
        case MOSQ_ERR_SUCCESS:
                return 0;
        case MOSQ_ERR_NOMEM:
                return -ENOMEM;
        case MOSQ_ERR_PROTOCOL:
        case MOSQ_ERR_MALFORMED_PACKET:
        case MOSQ_ERR_DUPLICATE_PROPERTY:
        case MOSQ_ERR_MALFORMED_UTF8:
                return -EPROTO;
        case MOSQ_ERR_INVAL:
                return -EINVAL;
        case MOSQ_ERR_NO_CONN:
                return -ENOTCONN;
        case MOSQ_ERR_CONN_REFUSED:
        case MOSQ_ERR_AUTH:
        case MOSQ_ERR_ACL_DENIED:
                return -EACCES;
        case MOSQ_ERR_NOT_FOUND:
                return -ENOENT;
        case MOSQ_ERR_CONN_LOST:
                return -ECONNRESET;
        case MOSQ_ERR_TLS:
        case MOSQ_ERR_TLS_HANDSHAKE:
        case MOSQ_ERR_OCSP:
                return -EKEYREJECTED;
        case MOSQ_ERR_PAYLOAD_SIZE:
        case MOSQ_ERR_OVERSIZE_PACKET:
                return -EMSGSIZE;
        case MOSQ_ERR_NOT_SUPPORTED:
        case MOSQ_ERR_QOS_NOT_SUPPORTED:
        case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case MOSQ_ERR_ERRNO:
                return errno > 0 ? -errno : -EIO;
        case MOSQ_ERR_EAI:
        case MOSQ_ERR_LOOKUP:
                return -EADDRNOTAVAIL;
        case MOSQ_ERR_KEEPALIVE:
        case MOSQ_ERR_TIMEOUT:
                return -ETIMEDOUT;
        case MOSQ_ERR_ADMINISTRATIVE_ACTION:
                return -ECONNABORTED;
        case MOSQ_ERR_ALREADY_EXISTS:
                return -EEXIST;
        default:
                return -EIO;
        }
}

/* MQTT 3.1.1 CONNACK return codes. */
static int connack_to_errno(int code)
{
        switch (code) {
        case 0:
                return 0;
        case 1: /* unacceptable protocol version */
                return -EPROTONOSUPPORT;
        case 2: /* identifier rejected */
        case 4: /* bad user name or password */
        case 5: /* not authorised */
                return -EACCES;
        case 3: /* server unavailable */
                return -EAGAIN;
        default:
                return -EPROTO;
        }
}

uint64_t mqtt_backoff_delay(uint64_t min_usec, uint64_t max_usec, unsigned failures)
{
        uint64_t d = min_usec;

        if (max_usec < min_usec)
                max_usec = min_usec;
        for (unsigned i = 1; i < failures && d < max_usec; i++)
                d *= 2;
        if (d > max_usec)
                d = max_usec;
        if (d < 2)
                return d;
        /* "Equal jitter": half fixed, half random. */
        return d / 2 + (uint64_t)g_random_double_range(0, (double)(d - d / 2));
}

int mqtt_url_parse(const char *url, char **ret_host, uint16_t *ret_port, bool *ret_tls)
{
        const char *p, *host_start, *host_end;
        g_autofree char *host = NULL;
        bool tls;
        unsigned long port;

        if (!url)
                return -EINVAL;
        if (g_str_has_prefix(url, "mqtt://")) {
                p = url + strlen("mqtt://");
                tls = false;
        } else if (g_str_has_prefix(url, "mqtts://")) {
                p = url + strlen("mqtts://");
                tls = true;
        } else
                return -EINVAL;
        port = tls ? MQTT_DEFAULT_TLS_PORT : MQTT_DEFAULT_PORT;

        if (*p == '[') {
                host_start = p + 1;
                host_end = strchr(host_start, ']');
                if (!host_end || host_end == host_start)
                        return -EINVAL;
                p = host_end + 1;
                host = g_strndup(host_start, host_end - host_start);
                if (strspn(host, "0123456789abcdefABCDEF:.") != strlen(host))
                        return -EINVAL;
        } else {
                host_start = p;
                p += strcspn(p, ":/?#@[]");
                host_end = p;
                if (host_end == host_start)
                        return -EINVAL;
                host = g_strndup(host_start, host_end - host_start);
                for (const char *c = host; *c; c++)
                        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '.' && *c != '_')
                                return -EINVAL;
        }
        if (strlen(host) > 253)
                return -EINVAL;

        if (*p == ':') {
                char *end;
                p++;
                if (!g_ascii_isdigit(*p))
                        return -EINVAL;
                errno = 0;
                port = strtoul(p, &end, 10);
                if (errno != 0 || port < 1 || port > 65535 || end - p > 5)
                        return -EINVAL;
                p = end;
        }
        /* A lone trailing slash is harmless; anything else (user info, path, query) is refused. */
        if (*p == '/')
                p++;
        if (*p != 0)
                return -EINVAL;

        if (ret_host)
                *ret_host = TAKE_PTR(host);
        if (ret_port)
                *ret_port = (uint16_t)port;
        if (ret_tls)
                *ret_tls = tls;
        return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The socket and timers */

static void io_drop(MqttLoop *l)
{
        l->io = sd_event_source_disable_unref(l->io);
        l->io_fd = -1;
}

static int io_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Makes the io source follow libmosquitto's socket, with EPOLLOUT only while it has something
 * to write. */
static int io_sync(MqttLoop *l)
{
        int fd = l->mosq ? mosquitto_socket(l->mosq) : -1;
        uint32_t events;
        int r;

        if (fd < 0) {
                io_drop(l);
                return 0;
        }
        events = EPOLLIN | (mosquitto_want_write(l->mosq) ? EPOLLOUT : 0);
        if (l->io && l->io_fd == fd)
                return sd_event_source_set_io_events(l->io, events);

        io_drop(l);
        /* A connection whose data stays unacknowledged (our source address went away, the path
         * died) fails after this long instead of after TCP's ~15 minutes of retransmissions;
         * keepalives catch the idle case. Best effort. */
        unsigned user_timeout_ms = CLAMP(l->keepalive / 2, 5u, 30u) * 1000u;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
        r = sd_event_add_io(l->event, &l->io, fd, events, io_handler, l);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(l->io, "mqtt-io");
        l->io_fd = fd;
        return 0;
}

static unsigned misc_interval_sec(MqttLoop *l)
{
        return CLAMP(l->keepalive / 4, 1u, 15u);
}

static int misc_handler(sd_event_source *s, uint64_t usec, void *userdata);

static int misc_arm(MqttLoop *l)
{
        uint64_t when = now_usec(l) + misc_interval_sec(l) * USEC_PER_SEC;
        int r;

        if (l->state == LOOP_CONNECTING)
                when = MIN(when, l->attempt_start + l->connect_timeout);

        if (l->misc_timer) {
                r = sd_event_source_set_time(l->misc_timer, when);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(l->misc_timer, SD_EVENT_ONESHOT);
        }
        r = sd_event_add_time(l->event, &l->misc_timer, CLOCK_MONOTONIC, when, 100 * USEC_PER_MSEC,
                              misc_handler, l);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(l->misc_timer, "mqtt-misc");
        return 0;
}

static void misc_disarm(MqttLoop *l)
{
        if (l->misc_timer)
                (void)sd_event_source_set_enabled(l->misc_timer, SD_EVENT_OFF);
}

static int reconnect_handler(sd_event_source *s, uint64_t usec, void *userdata);

static void reconnect_schedule(MqttLoop *l)
{
        uint64_t delay;
        int r;

        l->failures++;
        delay = mqtt_backoff_delay(l->backoff_min, l->backoff_max, l->failures);
        l->state = LOOP_WAITING;
        log_debug("MQTT: next attempt to reach %s in %" PRIu64 " ms", l->url, delay / USEC_PER_MSEC);

        if (l->reconnect_timer) {
                r = sd_event_source_set_time(l->reconnect_timer, now_usec(l) + delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->reconnect_timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(l->event, &l->reconnect_timer, CLOCK_MONOTONIC, now_usec(l) + delay,
                                      10 * USEC_PER_MSEC, reconnect_handler, l);
                if (r >= 0)
                        (void)sd_event_source_set_description(l->reconnect_timer, "mqtt-reconnect");
        }
        if (r < 0)
                log_warning_errno(r, "MQTT: failed to schedule a reconnection to %s: %m", l->url);
}

/* Handles a connection (or attempt) that libmosquitto reported lost, once it has returned. */
static void lost_handle(MqttLoop *l)
{
        bool was_connected = l->state == LOOP_CONNECTED;
        int error = l->lost_error;

        l->lost = false;
        io_drop(l);
        misc_disarm(l);
        if (l->state == LOOP_IDLE) /* stopped by us */
                return;

        if (was_connected) {
                l->stats.disconnects++;
                /* A connection that lasted resets the backoff; one the broker drops at once
                 * (a duplicate client id, say) keeps growing it. */
                if (now_usec(l) - l->connected_since >= l->backoff_max)
                        l->failures = 0;
                log_info_errno(error, "MQTT: lost the connection to %s: %m", l->url);
        } else if (l->tls && l->trust.failure) {
                /* Someone else's broker, or ours with another key: worth a warning, once per reason. */
                if (!streq0(l->trust.failure, l->tls_warned))
                        log_warning("MQTT: refused the broker %s: %s", l->url, l->trust.failure);
                g_free(l->tls_warned);
                l->tls_warned = g_strdup(l->trust.failure);
        } else
                log_debug_errno(error, "MQTT: connecting to %s failed: %m", l->url);
        if (error < 0)
                l->last_error = error;
        reconnect_schedule(l);

        if (was_connected && l->cb.disconnected)
                l->cb.disconnected(l, error, l->userdata);
}

/* After each call into libmosquitto. */
static void after_mosq(MqttLoop *l)
{
        if (l->dead)
                return;
        if (!l->lost && (l->state == LOOP_CONNECTING || l->state == LOOP_CONNECTED) &&
            mosquitto_socket(l->mosq) < 0) {
                /* Closed without telling us (it should not happen): treat as lost. */
                l->lost = true;
                l->lost_error = -ECONNRESET;
        }
        if (l->lost) {
                lost_handle(l);
                return;
        }
        /* Also after mqtt_loop_stop(), while the DISCONNECT is still being written. */
        if (l->io || l->state == LOOP_CONNECTING || l->state == LOOP_CONNECTED) {
                int r = io_sync(l);
                if (r < 0)
                        log_warning_errno(r, "MQTT: failed to watch the broker socket: %m");
        }
}

static int attempt(MqttLoop *l)
{
        int rc;

        io_drop(l);
        if (l->reconnect_timer)
                (void)sd_event_source_set_enabled(l->reconnect_timer, SD_EVENT_OFF);

        rc = mosquitto_username_pw_set(l->mosq, l->username, l->username ? l->password : NULL);
        if (rc != MOSQ_ERR_SUCCESS)
                return mqtt_error_to_errno(rc);

        l->stats.attempts++;
        l->state = LOOP_CONNECTING;
        l->attempt_start = now_usec(l);
        l->lost = false;
        log_debug("MQTT: connecting to %s as %s", l->url, strna(l->username));

        errno = 0;
        if (!l->ever_attempted) {
                rc = mosquitto_connect_async(l->mosq, l->host, l->port, (int)l->keepalive);
                if (rc == MOSQ_ERR_SUCCESS)
                        l->ever_attempted = true;
        } else
                rc = mosquitto_reconnect_async(l->mosq);
        if (rc != MOSQ_ERR_SUCCESS) {
                l->lost = true;
                l->lost_error = mqtt_error_to_errno(rc);
                after_mosq(l);
                return 0;
        }
        after_mosq(l);
        if (l->state == LOOP_CONNECTING) {
                int r = misc_arm(l);
                if (r < 0)
                        log_warning_errno(r, "MQTT: failed to arm the keepalive timer: %m");
        }
        return 0;
}

/* A TLS handshake that failed (the TCP connection was refused, or the broker's certificate was):
 * libmosquitto keeps the socket open and reports the error only once, so the attempt must end
 * here, not at the connection timeout. */
static bool tls_connect_failed(MqttLoop *l, int rc)
{
        return l->tls && l->state == LOOP_CONNECTING && rc != MOSQ_ERR_SUCCESS;
}

static int io_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        MqttLoop *l = userdata;
        int rc;

        loop_enter(l);
        if (l->state == LOOP_CONNECTING && (revents & (EPOLLHUP | EPOLLERR))) {
                /* The TCP connection failed. Over TLS libmosquitto takes that for a handshake
                 * still under way (SSL_ERROR_SYSCALL) and would be asked again and again. */
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                        err = ECONNREFUSED;
                l->lost = true;
                l->lost_error = -err;
                after_mosq(l);
                (void)loop_leave(l);
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                errno = 0;
                rc = mosquitto_loop_read(l->mosq, 1);
                if (rc != MOSQ_ERR_SUCCESS && !l->lost &&
                    (mosquitto_socket(l->mosq) < 0 || tls_connect_failed(l, rc))) {
                        l->lost = true;
                        l->lost_error = mqtt_error_to_errno(rc);
                }
        }
        if (!l->dead && !l->lost && (revents & EPOLLOUT) && mosquitto_socket(l->mosq) == fd) {
                errno = 0;
                rc = mosquitto_loop_write(l->mosq, 1);
                if (rc != MOSQ_ERR_SUCCESS && !l->lost &&
                    (mosquitto_socket(l->mosq) < 0 || tls_connect_failed(l, rc))) {
                        l->lost = true;
                        l->lost_error = mqtt_error_to_errno(rc);
                }
        }
        after_mosq(l);
        (void)loop_leave(l);
        return 0;
}

static int misc_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttLoop *l = userdata;

        loop_enter(l);
        if (l->state == LOOP_CONNECTING && now_usec(l) - l->attempt_start >= l->connect_timeout) {
                /* No CONNACK in time. libmosquitto closes the socket on the next attempt. */
                l->lost = true;
                l->lost_error = -ETIMEDOUT;
        } else if (l->state == LOOP_CONNECTING || l->state == LOOP_CONNECTED) {
                errno = 0;
                (void)mosquitto_loop_misc(l->mosq);
        }
        after_mosq(l);
        if (!l->dead && (l->state == LOOP_CONNECTING || l->state == LOOP_CONNECTED))
                (void)misc_arm(l);
        (void)loop_leave(l);
        return 0;
}

static int reconnect_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttLoop *l = userdata;

        loop_enter(l);
        if (l->state == LOOP_WAITING) {
                int r = attempt(l);
                if (r < 0) {
                        log_warning_errno(r, "MQTT: cannot connect to %s: %m", l->url);
                        reconnect_schedule(l);
                }
        }
        (void)loop_leave(l);
        return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* libmosquitto callbacks: these run inside mosquitto_loop_*() */

static void on_connect(struct mosquitto *m, void *userdata, int code)
{
        MqttLoop *l = userdata;

        if (l->dead)
                return;
        if (code != 0) {
                l->last_error = connack_to_errno(code);
                log_notice("MQTT: %s refused the connection: %s", l->url, mosquitto_connack_string(code));
                /* libmosquitto reports the loss next; keep the reason the broker gave. */
                l->lost = true;
                l->lost_error = l->last_error;
                return;
        }
        l->state = LOOP_CONNECTED;
        l->connected_since = now_usec(l);
        l->last_error = 0;
        l->stats.connects++;
        log_info("MQTT: connected to %s as %s", l->url, strna(l->username));
        if (l->cb.connected)
                l->cb.connected(l, l->userdata);
}

static void on_disconnect(struct mosquitto *m, void *userdata, int rc)
{
        MqttLoop *l = userdata;
        /* Read errno (for MOSQ_ERR_ERRNO) before anything here can change it. */
        int error = rc == MOSQ_ERR_SUCCESS ? 0 : mqtt_error_to_errno(rc);

        if (rc != MOSQ_ERR_SUCCESS && error == -EIO)
                error = -ECONNRESET;
        /* The socket may already be closed (keepalive) or about to be (after this returns); in
         * both cases stop watching it now, before its number can be reused. */
        io_drop(l);
        if (l->lost) /* keep the first reason (e.g. a refused CONNACK) */
                return;
        l->lost = true;
        l->lost_error = error;
}

static void on_message(struct mosquitto *m, void *userdata, const struct mosquitto_message *msg)
{
        MqttLoop *l = userdata;

        if (l->dead || !msg || !msg->topic)
                return;
        l->stats.messages_in++;
        if (l->cb.message)
                l->cb.message(l, msg->topic, msg->payload, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
                              msg->qos, msg->retain, l->userdata);
}

static void on_publish(struct mosquitto *m, void *userdata, int mid)
{
        MqttLoop *l = userdata;

        if (!l->dead && l->cb.published)
                l->cb.published(l, mid, l->userdata);
}

static void on_subscribe(struct mosquitto *m, void *userdata, int mid, int n, const int *granted)
{
        MqttLoop *l = userdata;

        if (!l->dead && l->cb.subscribed)
                l->cb.subscribed(l, mid, n, granted, l->userdata);
}

static void on_log(struct mosquitto *m, void *userdata, int level, const char *str)
{
        /* libmosquitto's own tracing ("sending PUBLISH ..."): topics and sizes, never payloads. */
        if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
                log_debug("libmosquitto: %s", str);
}

/* ------------------------------------------------------------------------------------------- */

int mqtt_loop_new(sd_event *event, const MqttLoopSettings *s, const MqttLoopCallbacks *callbacks,
                  void *userdata, MqttLoop **ret)
{
        g_autoptr(MqttLoop) l = NULL;
        int rc;

        g_return_val_if_fail(event, -EINVAL);
        g_return_val_if_fail(s, -EINVAL);
        g_return_val_if_fail(ret, -EINVAL);

        if (s->keepalive_sec != 0 && (s->keepalive_sec < 5 || s->keepalive_sec > 65535))
                return -EINVAL;
        if (!s->client_id && !s->clean_session)
                return -EINVAL;
        if (s->client_id && (!*s->client_id || strlen(s->client_id) > 65535))
                return -EINVAL;

        l = g_new0(MqttLoop, 1);
        l->io_fd = -1;
        l->event = sd_event_ref(event);
        rc = mqtt_url_parse(s->url, &l->host, &l->port, &l->tls);
        if (rc < 0)
                return rc;
        l->url = g_strdup(s->url);
        l->username = g_strdup(s->username);
        l->password = g_strdup(s->password);
        if (s->trust)
                nm_tls_trust_copy(&l->trust, s->trust);
        else
                l->trust = (NmTlsTrust){.mode = NM_TLS_CA, .ca_file = g_strdup(s->ca_file)};
        if (l->trust.mode == NM_TLS_LEARN)
                return -EINVAL;
        l->clean_session = s->clean_session;
        l->keepalive = s->keepalive_sec ?: DEFAULT_KEEPALIVE_SEC;
        l->backoff_min = s->backoff_min_usec ?: DEFAULT_BACKOFF_MIN;
        l->backoff_max = s->backoff_max_usec ?: DEFAULT_BACKOFF_MAX;
        if (l->backoff_max < l->backoff_min)
                l->backoff_max = l->backoff_min;
        l->connect_timeout = s->connect_timeout_usec ?: DEFAULT_CONNECT_TIMEOUT;
        if (callbacks)
                l->cb = *callbacks;
        l->userdata = userdata;

        if (s->client_id)
                l->client_id = g_strdup(s->client_id);
        else {
                g_autofree char *rnd = g_strdup_printf("%08x%08x", g_random_int(), g_random_int());
                l->client_id = g_strconcat("nm-", rnd, NULL);
        }

        mosquitto_lib_init();
        l->mosq = mosquitto_new(l->client_id, l->clean_session, l);
        if (!l->mosq)
                return errno == EINVAL ? -EINVAL : -ENOMEM;
        rc = mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        if (rc != MOSQ_ERR_SUCCESS)
                return mqtt_error_to_errno(rc);
        /* Small control messages: do not wait for Nagle. */
        (void)mosquitto_int_option(l->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        /* QoS 1 messages libmosquitto re-sends itself after a reconnection. */
        (void)mosquitto_reconnect_delay_set(l->mosq, 1, 1, false);
        if (l->tls && l->trust.mode == NM_TLS_PIN) {
                /* Our own context: libmosquitto's would insist on a CA and the broker's name. It
                 * keeps a reference; l->trust outlives it (freed after mosquitto_destroy()). */
                SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
                if (!ctx || nm_tls_trust_apply(ctx, &l->trust) < 0) {
                        SSL_CTX_free(ctx);
                        return -EIO;
                }
                rc = mosquitto_int_option(l->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
                if (rc == MOSQ_ERR_SUCCESS)
                        rc = mosquitto_void_option(l->mosq, MOSQ_OPT_SSL_CTX, ctx);
                SSL_CTX_free(ctx);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mqtt_error_to_errno(rc);
        } else if (l->tls) {
                /* CA mode: libmosquitto verifies the chain and the broker's name. */
                if (l->trust.ca_file)
                        rc = mosquitto_tls_set(l->mosq, l->trust.ca_file, NULL, NULL, NULL, NULL);
                else
                        rc = mosquitto_int_option(l->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mqtt_error_to_errno(rc);
        }

        mosquitto_connect_callback_set(l->mosq, on_connect);
        mosquitto_disconnect_callback_set(l->mosq, on_disconnect);
        mosquitto_message_callback_set(l->mosq, on_message);
        mosquitto_publish_callback_set(l->mosq, on_publish);
        mosquitto_subscribe_callback_set(l->mosq, on_subscribe);
        mosquitto_log_callback_set(l->mosq, on_log);

        *ret = TAKE_PTR(l);
        return 0;
}

static void loop_really_free(MqttLoop *l)
{
        io_drop(l);
        l->misc_timer = sd_event_source_disable_unref(l->misc_timer);
        l->reconnect_timer = sd_event_source_disable_unref(l->reconnect_timer);
        if (l->mosq) {
                mosquitto_destroy(l->mosq);
                mosquitto_lib_cleanup();
        }
        l->event = sd_event_unref(l->event);
        g_free(l->url);
        g_free(l->host);
        g_free(l->client_id);
        g_free(l->username);
        nm_free_secret(l->password);
        nm_tls_trust_clear(&l->trust);
        g_free(l->tls_warned);
        g_free(l);
}

MqttLoop *mqtt_loop_free(MqttLoop *l)
{
        if (!l)
                return NULL;
        if (l->dead)
                return NULL;
        /* Best effort: tell the broker we are going (a DISCONNECT, no will message). */
        if (l->mosq && l->state == LOOP_CONNECTED)
                (void)mosquitto_disconnect(l->mosq);
        l->state = LOOP_IDLE;
        l->dead = true;
        memset(&l->cb, 0, sizeof(l->cb));
        if (l->depth == 0)
                loop_really_free(l);
        else {
                /* Inside a callback: stop everything now, free when the callback returns. */
                io_drop(l);
                misc_disarm(l);
                if (l->reconnect_timer)
                        (void)sd_event_source_set_enabled(l->reconnect_timer, SD_EVENT_OFF);
        }
        return NULL;
}

int mqtt_loop_start(MqttLoop *l)
{
        int r;

        g_return_val_if_fail(l, -EINVAL);
        if (l->dead)
                return -ESTALE;
        if (l->state != LOOP_IDLE)
                return 0;
        l->failures = 0;
        loop_enter(l);
        r = attempt(l);
        (void)loop_leave(l);
        return r;
}

void mqtt_loop_stop(MqttLoop *l)
{
        bool was_connected;

        if (!l || l->dead || l->state == LOOP_IDLE)
                return;
        was_connected = l->state == LOOP_CONNECTED;
        loop_enter(l);
        l->state = LOOP_IDLE;
        if (l->reconnect_timer)
                (void)sd_event_source_set_enabled(l->reconnect_timer, SD_EVENT_OFF);
        if (was_connected)
                /* The broker closes the connection when it reads this; we keep watching the
                 * socket so that the packet gets written. */
                (void)mosquitto_disconnect(l->mosq);
        else
                io_drop(l);
        misc_disarm(l);
        if (!l->dead && l->io)
                (void)io_sync(l);
        if (was_connected) {
                l->stats.disconnects++;
                if (l->cb.disconnected)
                        l->cb.disconnected(l, 0, l->userdata);
        }
        (void)loop_leave(l);
}

int mqtt_loop_reconnect(MqttLoop *l)
{
        bool was_connected;
        int r;

        g_return_val_if_fail(l, -EINVAL);
        if (l->dead)
                return -ESTALE;
        was_connected = l->state == LOOP_CONNECTED;
        loop_enter(l);
        if (was_connected) {
                (void)mosquitto_disconnect(l->mosq);
                l->stats.disconnects++;
        }
        l->failures = 0;
        l->state = LOOP_WAITING;
        if (was_connected && l->cb.disconnected)
                l->cb.disconnected(l, -ECONNRESET, l->userdata);
        r = 0;
        if (!l->dead && l->state == LOOP_WAITING)
                r = attempt(l);
        (void)loop_leave(l);
        return r;
}

int mqtt_loop_set_credentials(MqttLoop *l, const char *username, const char *password)
{
        g_return_val_if_fail(l, -EINVAL);
        g_free(l->username);
        nm_free_secret(l->password);
        l->username = g_strdup(username);
        l->password = g_strdup(password);
        return 0;
}

bool mqtt_loop_is_connected(MqttLoop *l)
{
        return l && !l->dead && l->state == LOOP_CONNECTED;
}

const char *mqtt_loop_tls_failure(MqttLoop *l)
{
        return l && l->tls ? l->trust.failure : NULL;
}

int mqtt_loop_last_error(MqttLoop *l)
{
        return l ? l->last_error : -EINVAL;
}

const char *mqtt_loop_client_id(MqttLoop *l)
{
        return l ? l->client_id : NULL;
}

int mqtt_loop_publish(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos, bool retain,
                      int *ret_mid)
{
        int mid = 0, rc, r;

        g_return_val_if_fail(l, -EINVAL);
        if (!topic || qos < 0 || qos > 2 || len > MAX_PAYLOAD || (len > 0 && !payload))
                return -EINVAL;
        if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (!mqtt_loop_is_connected(l))
                return -ENOTCONN;

        loop_enter(l);
        errno = 0;
        rc = mosquitto_publish(l->mosq, &mid, topic, (int)len, payload, qos, retain);
        r = mqtt_error_to_errno(rc);
        if (r >= 0) {
                l->stats.messages_out++;
                l->stats.bytes_out += len;
        }
        if (l->depth == 1)
                after_mosq(l);
        if (loop_leave(l))
                return r;
        if (r < 0)
                return r;
        if (ret_mid)
                *ret_mid = mid;
        return 0;
}

int mqtt_loop_subscribe(MqttLoop *l, const char *pattern, int qos, int *ret_mid)
{
        int mid = 0, rc, r;

        g_return_val_if_fail(l, -EINVAL);
        if (!pattern || qos < 0 || qos > 2 || mosquitto_sub_topic_check(pattern) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (!mqtt_loop_is_connected(l))
                return -ENOTCONN;

        loop_enter(l);
        errno = 0;
        rc = mosquitto_subscribe(l->mosq, &mid, pattern, qos);
        r = mqtt_error_to_errno(rc);
        if (l->depth == 1)
                after_mosq(l);
        if (loop_leave(l))
                return r;
        if (r < 0)
                return r;
        if (ret_mid)
                *ret_mid = mid;
        return 0;
}

int mqtt_loop_unsubscribe(MqttLoop *l, const char *pattern, int *ret_mid)
{
        int mid = 0, rc, r;

        g_return_val_if_fail(l, -EINVAL);
        if (!pattern || mosquitto_sub_topic_check(pattern) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (!mqtt_loop_is_connected(l))
                return -ENOTCONN;

        loop_enter(l);
        errno = 0;
        rc = mosquitto_unsubscribe(l->mosq, &mid, pattern);
        r = mqtt_error_to_errno(rc);
        if (l->depth == 1)
                after_mosq(l);
        if (loop_leave(l))
                return r;
        if (r < 0)
                return r;
        if (ret_mid)
                *ret_mid = mid;
        return 0;
}

void mqtt_loop_get_stats(MqttLoop *l, MqttLoopStats *ret)
{
        g_return_if_fail(ret);
        if (!l) {
                memset(ret, 0, sizeof(*ret));
                return;
        }
        *ret = l->stats;
}
