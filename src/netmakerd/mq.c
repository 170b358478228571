/* The server's MQTT side: the broker connection, its dynamic-security set-up, per-host accounts,
 * sealed publishes to hosts and the reports hosts send back (docs/protocol.md §3). */
#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "dynsec.h"
#include "log.h"
#include "mq.h"
#include "mqtt-loop.h"
#include "seal.h"

#define USEC_PER_SEC    ((uint64_t)1000000)
#define SUBACK_FAILURE  0x80
#define SERVER_NAME_MAX 64
#define PASSWORD_MAX    256
#define DROP_LOG_WINDOW (60 * USEC_PER_SEC)
#define DROP_LOG_BURST  10

typedef enum MqPhase {
        MQ_DOWN,
        MQ_SUBSCRIBING_RESPONSES, /* to the dynamic-security answers */
        MQ_SETTING_UP,            /* default ACL access and our own role */
        MQ_SUBSCRIBING_REPORTS,
        MQ_READY,
} MqPhase;

struct Mq {
        sd_event *event;
        MqttLoop *loop;
        Dynsec *dynsec;
        char *server_name;
        char *admin_user;
        char *topic_reports;
        NmKey server_public;
        NmKey server_secret;
        unsigned list_page_size;
        MqCallbacks cb;
        void *userdata;

        MqPhase phase;
        int mid_responses;
        int mid_reports;
        bool ever_ready;
        bool expect_kick; /* after addClientRole for ourselves */

        uint64_t drop_window_start;
        unsigned drops_in_window;
        MqStats stats;
};

typedef enum MqOpKind {
        MQ_OP_CREATE,
        MQ_OP_DELETE,
        MQ_OP_BIND,
} MqOpKind;

typedef struct MqOp {
        Mq *mq;
        mq_done_t done;
        void *userdata;
        char *host_id;
        MqOpKind kind;
} MqOp;

static void mq_op_free(MqOp *op)
{
        if (!op)
                return;
        g_free(op->host_id);
        g_free(op);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MqOp, mq_op_free)

static bool server_name_valid(const char *s)
{
        if (!s || !*s || strlen(s) > SERVER_NAME_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_' && *c != '.')
                        return false;
        return true;
}

static bool password_valid(const char *s)
{
        if (!s || !*s || strlen(s) > PASSWORD_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (*c < 0x21 || *c > 0x7e)
                        return false;
        return true;
}

/* Publishes a dynamic-security batch; on failure the request is withdrawn and `done` never runs. */
static int dynsec_send(Mq *mq, DynsecBatch *b, dynsec_done_t done, void *userdata)
{
        _cleanup_secret_ char *payload = NULL;
        guint64 id;
        int r;

        r = dynsec_submit(mq->dynsec, b, done, userdata, &payload, &id);
        if (r < 0) {
                dynsec_batch_free(b);
                return r;
        }
        r = mqtt_loop_publish(mq->loop, DYNSEC_TOPIC, payload, strlen(payload), 1, false, NULL);
        if (r < 0) {
                dynsec_cancel(mq->dynsec, id);
                return r;
        }
        return 0;
}

/* ---- Connection set-up: answers topic, ACLs, reports topic, then `connected` ---------------- */

static void setup_subscribe_reports(Mq *mq)
{
        int r;

        mq->phase = MQ_SUBSCRIBING_REPORTS;
        r = mqtt_loop_subscribe(mq->loop, mq->topic_reports, 1, &mq->mid_reports);
        if (r < 0) {
                /* Only when the connection just went; the reconnection starts over. */
                log_warning_errno(r, "MQTT: failed to subscribe to %s: %m", mq->topic_reports);
                mq->phase = MQ_DOWN;
        }
}

static void reconnect_for_role(Mq *mq)
{
        int r;

        mq->expect_kick = false;
        mq->phase = MQ_DOWN;
        log_info("MQTT: gave %s the role netmakerd-%s; reconnecting to apply it", mq->admin_user,
                 mq->server_name);
        r = mqtt_loop_reconnect(mq->loop);
        if (r < 0)
                log_warning_errno(r, "MQTT: failed to reconnect: %m");
}

static void setup_role_done(int r, const char *message, DynsecBatch *b, void *userdata)
{
        Mq *mq = userdata;

        if (mq->phase != MQ_SETTING_UP)
                return;
        if (r < 0) {
                log_warning_errno(r, "MQTT: could not give %s the role it needs to publish to hosts: %s",
                                  mq->admin_user, strna(message));
                setup_subscribe_reports(mq);
                return;
        }
        /* Mosquitto disconnects a client whose roles change, usually before this answer arrives
         * (then loop_disconnected() reconnects). Either way: reconnect at once rather than
         * after a backoff. Next time the role is there and this does not happen again. */
        reconnect_for_role(mq);
}

static void setup_done(int r, const char *message, DynsecBatch *b, void *userdata)
{
        Mq *mq = userdata;
        g_autofree char *role = NULL;
        JsonObject *client;

        if (mq->phase != MQ_SETTING_UP)
                return;
        if (r < 0) {
                /* Not fatal: a broker set up by hand may still work; host accounts will tell. */
                log_warning_errno(r, "MQTT: setting up the broker's dynamic security failed: %s",
                                  strna(message));
                setup_subscribe_reports(mq);
                return;
        }

        role = dynsec_server_role_name(mq->server_name);
        client = dynsec_batch_data(b, DYNSEC_SETUP_GET_CLIENT_INDEX(b));
        if (dynsec_client_has_role(client, role)) {
                setup_subscribe_reports(mq);
                return;
        }

        /* addClientRole is not idempotent in Mosquitto 2.0 ("Internal error" when the client
         * has the role), hence the getClient first. */
        g_autoptr(DynsecBatch) add = dynsec_batch_new();
        dynsec_batch_add(add, dynsec_cmd_add_client_role(mq->admin_user, role), NULL);
        r = dynsec_send(mq, TAKE_PTR(add), setup_role_done, mq);
        if (r >= 0)
                mq->expect_kick = true;
        else {
                log_warning_errno(r, "MQTT: failed to send a dynamic-security command: %m");
                setup_subscribe_reports(mq);
        }
}

static void loop_connected(MqttLoop *l, void *userdata)
{
        Mq *mq = userdata;
        int r;

        mq->phase = MQ_SUBSCRIBING_RESPONSES;
        r = mqtt_loop_subscribe(l, DYNSEC_RESPONSE_TOPIC, 1, &mq->mid_responses);
        if (r < 0) {
                log_warning_errno(r, "MQTT: failed to subscribe to the dynamic-security answers: %m");
                mq->phase = MQ_DOWN;
        }
}

static void loop_subscribed(MqttLoop *l, int mid, int n_granted, const int *granted, void *userdata)
{
        Mq *mq = userdata;
        bool refused = n_granted < 1 || granted[0] == SUBACK_FAILURE;
        int r;

        if (mq->phase == MQ_SUBSCRIBING_RESPONSES && mid == mq->mid_responses) {
                if (refused) {
                        log_error("MQTT: the broker does not let %s read %s: host accounts cannot be made",
                                  mq->admin_user, DYNSEC_RESPONSE_TOPIC);
                        setup_subscribe_reports(mq);
                        return;
                }
                mq->phase = MQ_SETTING_UP;
                r = dynsec_send(mq, dynsec_batch_server_setup(mq->server_name, mq->admin_user), setup_done,
                                mq);
                if (r < 0) {
                        log_warning_errno(r, "MQTT: failed to send a dynamic-security command: %m");
                        setup_subscribe_reports(mq);
                }
                return;
        }

        if (mq->phase == MQ_SUBSCRIBING_REPORTS && mid == mq->mid_reports) {
                if (refused)
                        log_error("MQTT: the broker refused our subscription to %s: host reports will only "
                                  "arrive over HTTP",
                                  mq->topic_reports);
                mq->phase = MQ_READY;
                if (mq->ever_ready)
                        mq->stats.reconnects++;
                mq->ever_ready = true;
                log_debug("MQTT: ready (server name \"%s\")", mq->server_name);
                if (mq->cb.connected)
                        mq->cb.connected(mq->userdata);
        }
}

static void loop_disconnected(MqttLoop *l, int error, void *userdata)
{
        Mq *mq = userdata;
        bool kicked = mq->expect_kick;

        mq->phase = MQ_DOWN;
        mq->expect_kick = false;
        dynsec_fail_all(mq->dynsec, -ENOTCONN, "Lost the connection to the broker");
        if (kicked)
                reconnect_for_role(mq);
}

/* ---- Reports -------------------------------------------------------------------------------- */

static void report_drop(Mq *mq, const char *host_id, const char *why)
{
        uint64_t now = 0;
        int level = LOG_DEBUG;

        mq->stats.reports_dropped++;
        (void)sd_event_now(mq->event, CLOCK_MONOTONIC, &now);
        if (now - mq->drop_window_start >= DROP_LOG_WINDOW) {
                mq->drop_window_start = now;
                mq->drops_in_window = 0;
        }
        /* Any host can send garbage to its own topic: say so, but not without end. */
        if (mq->drops_in_window++ < DROP_LOG_BURST)
                level = LOG_NOTICE;
        log_full(level, "MQTT: dropped a report from host %s: %s", strna(host_id), why);
}

static void report_handle(Mq *mq, const char *topic, const void *payload, size_t len)
{
        g_autofree char *host_id = NULL;
        g_autoptr(GBytes) plain = NULL;
        g_autoptr(NmReport) report = NULL;
        g_autoptr(GError) error = NULL;
        const char *text;
        gsize text_len;
        NmKey key;
        int r;

        host_id = nm_topic_report_host_id(mq->server_name, topic);
        if (!host_id) {
                /* Only our subscription's topics arrive here; with a malformed id, nothing to say. */
                report_drop(mq, NULL, "not a report topic of this server");
                return;
        }
        if (!mq->cb.host_key) {
                report_drop(mq, host_id, "no host keys");
                return;
        }
        r = mq->cb.host_key(mq->userdata, host_id, &key);
        if (r < 0) {
                report_drop(mq, host_id, r == -ENOENT ? "unknown host" : "host key lookup failed");
                return;
        }
        plain = nm_open(payload, len, &key, &mq->server_secret, &error);
        if (!plain) {
                report_drop(mq, host_id, "does not open with the host's key");
                return;
        }
        text = g_bytes_get_data(plain, &text_len);
        report = nm_report_parse(text, (gssize)text_len, &error);
        if (!report) {
                /* The parser's message may quote content; keep it out of the log. */
                report_drop(mq, host_id, "not a valid report");
                return;
        }
        mq->stats.reports_received++;
        if (mq->cb.report)
                mq->cb.report(mq->userdata, host_id, report);
}

static void loop_message(MqttLoop *l, const char *topic, const void *payload, size_t len, int qos,
                         bool retained, void *userdata)
{
        Mq *mq = userdata;

        if (streq0(topic, DYNSEC_RESPONSE_TOPIC)) {
                int r = dynsec_handle_response(mq->dynsec, payload, len);
                if (r < 0)
                        log_debug("MQTT: ignored a message on %s that is no dynamic-security answer (%zu "
                                  "bytes)",
                                  DYNSEC_RESPONSE_TOPIC, len);
                return;
        }
        report_handle(mq, topic, payload, len);
}

/* ---- API ------------------------------------------------------------------------------------ */

int mq_new(sd_event *event, const MqSettings *s, const MqCallbacks *callbacks, void *userdata, Mq **ret)
{
        g_autofree char *client_id = NULL;
        Mq *mq;
        int r;

        g_return_val_if_fail(event, -EINVAL);
        g_return_val_if_fail(s, -EINVAL);
        g_return_val_if_fail(ret, -EINVAL);

        if (mqtt_url_parse(s->url, NULL, NULL, NULL) < 0)
                return log_error_errno(
                        -EINVAL,
                        "Invalid broker URL \"%.100s\": expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
                        strna(s->url));
        if (!server_name_valid(s->server_name))
                return log_error_errno(
                        -EINVAL,
                        "Invalid server name \"%.100s\": 1-%d characters of a-z, A-Z, 0-9, '-', '_' and '.'",
                        strna(s->server_name), SERVER_NAME_MAX);
        if (!s->username || !*s->username)
                return log_error_errno(
                        -EINVAL, "No broker user name: netmakerd needs the dynamic-security admin account");
        if (nm_key_is_zero(&s->server_secret))
                return log_error_errno(-EINVAL, "No server message key");

        mq = g_new0(Mq, 1);
        mq->event = sd_event_ref(event);
        mq->server_name = g_strdup(s->server_name);
        mq->admin_user = g_strdup(s->username);
        mq->topic_reports = nm_topic_reports(s->server_name);
        mq->server_public = s->server_public;
        mq->server_secret = s->server_secret;
        mq->list_page_size = s->list_page_size ?: DYNSEC_LIST_PAGE;
        if (callbacks)
                mq->cb = *callbacks;
        mq->userdata = userdata;

        r = dynsec_new(event, s->dynsec_timeout_usec, &mq->dynsec);
        if (r < 0) {
                mq_free(mq);
                return r;
        }

        if (s->client_id)
                client_id = g_strdup(s->client_id);
        else
                client_id = g_strdup_printf("netmakerd-%s-%08x", s->server_name, g_random_int());
        MqttLoopSettings ls = {
                .url = s->url,
                .client_id = client_id,
                .username = s->username,
                .password = s->password,
                .trust = s->trust,
                .clean_session = true,
                .backoff_max_usec = s->backoff_max_usec,
        };
        static const MqttLoopCallbacks lcb = {
                .connected = loop_connected,
                .disconnected = loop_disconnected,
                .message = loop_message,
                .subscribed = loop_subscribed,
        };
        r = mqtt_loop_new(event, &ls, &lcb, mq, &mq->loop);
        if (r < 0) {
                mq_free(mq);
                return log_error_errno(r, "Failed to set up the MQTT client: %m");
        }
        r = mqtt_loop_start(mq->loop);
        if (r < 0) {
                mq_free(mq);
                return log_error_errno(r, "Failed to start the MQTT client: %m");
        }
        log_debug("MQTT: connecting to %s as %s", s->url, s->username);
        *ret = mq;
        return 0;
}

Mq *mq_free(Mq *mq)
{
        if (!mq)
                return NULL;
        mq->phase = MQ_DOWN;
        mq->loop = mqtt_loop_free(mq->loop);
        mq->dynsec = dynsec_free(mq->dynsec);
        sd_event_unref(mq->event);
        g_free(mq->server_name);
        g_free(mq->admin_user);
        g_free(mq->topic_reports);
        sodium_memzero(&mq->server_secret, sizeof(mq->server_secret));
        g_free(mq);
        return NULL;
}

bool mq_is_connected(Mq *mq)
{
        return mq && mq->phase == MQ_READY && mqtt_loop_is_connected(mq->loop);
}

static void op_done(int r, const char *message, DynsecBatch *b, void *userdata)
{
        static const char *const doing[] = {"creating", "deleting", "binding"};
        static const char *const did[] = {"created", "deleted", "bound"};
        g_autoptr(MqOp) op = userdata;

        if (r < 0)
                log_warning_errno(r, "MQTT: %s the broker account of host %s failed: %s", doing[op->kind],
                                  op->host_id, strna(message));
        else
                log_debug("MQTT: %s the broker account of host %s", did[op->kind], op->host_id);
        if (op->done)
                op->done(r, r < 0 ? message : NULL, op->userdata);
}

static int account_op(Mq *mq, MqOpKind kind, const char *host_id, const char *password, mq_done_t done,
                      void *userdata)
{
        g_autoptr(MqOp) op = NULL;
        DynsecBatch *b;
        int r;

        g_return_val_if_fail(mq, -EINVAL);
        if (!host_id || !nm_uuid_valid(host_id))
                return -EINVAL;
        if (kind == MQ_OP_CREATE && !password_valid(password))
                return -EINVAL;
        if (!mq_is_connected(mq))
                return -ENOTCONN;

        op = g_new0(MqOp, 1);
        op->mq = mq;
        op->done = done;
        op->userdata = userdata;
        op->host_id = g_strdup(host_id);
        op->kind = kind;
        switch (kind) {
        case MQ_OP_CREATE:
                b = dynsec_batch_host_account_create(mq->server_name, host_id, password);
                break;
        case MQ_OP_DELETE:
                b = dynsec_batch_host_account_delete(mq->server_name, host_id);
                break;
        default:
                b = dynsec_batch_host_account_bind(host_id);
                break;
        }
        r = dynsec_send(mq, b, op_done, op);
        if (r < 0)
                return r;
        TAKE_PTR(op);
        return 0;
}

int mq_host_account_create(Mq *mq, const char *host_id, const char *password, mq_done_t done, void *userdata)
{
        return account_op(mq, MQ_OP_CREATE, host_id, password, done, userdata);
}

int mq_host_account_delete(Mq *mq, const char *host_id, mq_done_t done, void *userdata)
{
        return account_op(mq, MQ_OP_DELETE, host_id, NULL, done, userdata);
}

int mq_host_account_bind(Mq *mq, const char *host_id, mq_done_t done, void *userdata)
{
        return account_op(mq, MQ_OP_BIND, host_id, NULL, done, userdata);
}

/* ---- Listing the host accounts -------------------------------------------------------------- */

typedef struct MqListing {
        Mq *mq;
        mq_accounts_done_t done;
        void *userdata;
        GHashTable *accounts; /* host id → DynsecHostAccount */
        guint offset;
        guint pages;
} MqListing;

static void mq_listing_free(MqListing *l)
{
        if (!l)
                return;
        g_hash_table_unref(l->accounts);
        g_free(l);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MqListing, mq_listing_free)

static void listing_page_done(int r, const char *message, DynsecBatch *b, void *userdata);

static int listing_request_page(MqListing *l)
{
        return dynsec_send(l->mq, dynsec_batch_host_accounts_list(l->offset, l->mq->list_page_size),
                           listing_page_done, l);
}

static void listing_page_done(int r, const char *message, DynsecBatch *b, void *userdata)
{
        g_autoptr(MqListing) l = userdata;
        Mq *mq = l->mq;

        if (r >= 0) {
                r = dynsec_host_accounts_add(b, mq->server_name, l->offset, mq->list_page_size, l->accounts);
                if (r < 0)
                        message = "The broker's answer to listClients/listRoles is no listing";
        }
        if (r > 0) {
                /* Another page. Entries deleted meanwhile shift the rest: one may be missed this
                 * time, never counted twice. */
                l->offset += mq->list_page_size;
                if (++l->pages >= DYNSEC_LIST_MAX_PAGES) {
                        r = -E2BIG;
                        message = "The broker keeps listing accounts";
                } else {
                        r = listing_request_page(l);
                        if (r >= 0) {
                                TAKE_PTR(l); /* the next page owns it */
                                return;
                        }
                        message = "Failed to ask for the next page of accounts";
                }
        }
        if (r < 0)
                log_debug("MQTT: listing the host accounts failed: %s", strna(message));
        if (l->done)
                l->done(r, r < 0 ? message : NULL, r < 0 ? NULL : l->accounts, l->userdata);
}

int mq_host_accounts_list(Mq *mq, mq_accounts_done_t done, void *userdata)
{
        g_autoptr(MqListing) l = NULL;
        int r;

        g_return_val_if_fail(mq, -EINVAL);
        if (!mq_is_connected(mq))
                return -ENOTCONN;

        l = g_new0(MqListing, 1);
        l->mq = mq;
        l->done = done;
        l->userdata = userdata;
        l->accounts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)dynsec_host_account_free);
        r = listing_request_page(l);
        if (r < 0)
                return r;
        TAKE_PTR(l);
        return 0;
}

int mq_publish_host(Mq *mq, const char *host_id, const NmKey *host_key, const NmMessage *msg)
{
        g_autofree char *json = NULL;
        g_autofree char *topic = NULL;
        g_autoptr(GBytes) sealed = NULL;
        const void *data;
        gsize len;
        int r;

        g_return_val_if_fail(mq, -EINVAL);
        if (!host_id || !nm_uuid_valid(host_id) || !host_key || !msg)
                return -EINVAL;
        if (!mq_is_connected(mq))
                return -ENOTCONN;

        json = nm_message_to_json(msg);
        if (!json)
                return -EINVAL;
        if (strlen(json) > NM_SEAL_MAX_PLAINTEXT)
                return -EMSGSIZE;
        sealed = nm_seal(json, strlen(json), host_key, &mq->server_secret);
        if (!sealed)
                return -EIO;
        data = g_bytes_get_data(sealed, &len);
        topic = nm_topic_host_msg(mq->server_name, host_id);
        r = mqtt_loop_publish(mq->loop, topic, data, len, 1, false, NULL);
        if (r < 0)
                return r;
        mq->stats.messages_published++;
        mq->stats.bytes_published += len;
        return 0;
}

void mq_get_stats(Mq *mq, MqStats *ret)
{
        g_return_if_fail(ret);
        if (!mq) {
                memset(ret, 0, sizeof(*ret));
                return;
        }
        *ret = mq->stats;
}
