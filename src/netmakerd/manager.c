/* netmakerd's owner object: start-up (state directory, store, keys, first admin, HTTP, MQTT),
 * shutdown, the MQTT callbacks, and committing a change before publishing its messages. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"
#include "nm-error.h"
#include "observer-keys.h"
#include "observer.h"

#define SETTING_MSG_SECRET      "msg_secret_key"
#define SETTING_MSG_PUBLIC      "msg_public_key"
#define SETTING_TOKEN_SECRET    "token_secret"
#define SETTING_OBSERVER_SECRET "observer_secret"
/* Hosts' keepalive to the observer: often enough that NAT mappings never time out (30 s is the
 * shortest UDP timeout seen in the wild), seldom enough to cost nothing. */
#define OBSERVER_KEEPALIVE    25
#define INITIAL_PASSWORD_FILE "initial-admin-password"

gint64 manager_now(void)
{
        return (gint64)(g_get_real_time() / G_USEC_PER_SEC);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        log_info("Received %s, shutting down.", strsignal((int)si->ssi_signo));
        (void)sd_notify(false, "STOPPING=1");
        m->stopping = true;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int manager_new(Config *config, Manager **ret)
{
        g_autoptr(Manager) m = g_new0(Manager, 1);
        sigset_t mask;
        int r;

        m->config = config;
        m->accounts_pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        m->failover_reports = failover_reports_new();
        m->passed_api_fd = m->passed_udp_fd = -1;
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        (void)signal(SIGPIPE, SIG_IGN);
        /* Pings systemd's watchdog when the unit sets WatchdogSec=. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog: %m");
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        *ret = TAKE_PTR(m);
        return 0;
}

typedef struct BrokerWaiter {
        Manager *manager;
        sd_event_source *timer;
        BrokerWaitFunc func;
        void *userdata;
} BrokerWaiter;

/* `w` is out of the list already. */
static void broker_waiter_call(BrokerWaiter *w, int r)
{
        BrokerWaitFunc func = w->func;
        void *userdata = w->userdata;

        sd_event_source_disable_unref(w->timer);
        g_free(w);
        func(r, userdata);
}

static void broker_waiters_fire(Manager *m, int r)
{
        /* Only those waiting now: a callback may queue a new waiter (the broker went away again). */
        GList *now = g_list_reverse(TAKE_PTR(m->broker_waiters));
        for (GList *l = now; l; l = l->next)
                broker_waiter_call(l->data, r);
        g_list_free(now);
}

static int on_broker_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        BrokerWaiter *w = userdata;

        w->manager->broker_waiters = g_list_remove(w->manager->broker_waiters, w);
        broker_waiter_call(w, -ETIMEDOUT);
        return 0;
}

int manager_wait_broker(Manager *m, uint64_t timeout_usec, BrokerWaitFunc func, void *userdata)
{
        BrokerWaiter *w = g_new0(BrokerWaiter, 1);
        uint64_t now;
        int r;

        w->manager = m;
        w->func = func;
        w->userdata = userdata;
        r = sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_add_time(m->event, &w->timer, CLOCK_MONOTONIC, now + timeout_usec, 0,
                                      on_broker_wait_timeout, w);
        if (r < 0) {
                g_free(w);
                return r;
        }
        (void)sd_event_source_set_description(w->timer, "broker-wait");
        m->broker_waiters = g_list_prepend(m->broker_waiters, w);
        return 0;
}

void manager_free(Manager *m)
{
        if (!m)
                return;
        m->stopping = true;
        /* HTTP first: suspended registrations are answered while the broker still exists. Then
         * the broker: pending account operations report -ECANCELED and must see m->mq gone. */
        http_free(TAKE_PTR(m->http));
        peers_set_server_info(NULL);
        observer_free(TAKE_PTR(m->observer));
        observer_keys_free(TAKE_PTR(m->observer_keys));
        failover_reports_free(TAKE_PTR(m->failover_reports));
        g_free(m->observer_endpoint);
        sodium_memzero(m->observer_secret, sizeof(m->observer_secret));
        if (m->passed_api_fd >= 0)
                close(m->passed_api_fd);
        if (m->passed_udp_fd >= 0)
                close(m->passed_udp_fd);
        m->stale_timer = sd_event_source_disable_unref(m->stale_timer);
        auth_worker_free(TAKE_PTR(m->auth_worker));
        ratelimit_free(TAKE_PTR(m->login_limit));
        ratelimit_free(TAKE_PTR(m->register_limit));
        broker_waiters_fire(m, -ECANCELED);
        mq_free(TAKE_PTR(m->mq));
        store_free(TAKE_PTR(m->store));
        g_hash_table_unref(m->accounts_pending);
        config_free(m->config);
        sodium_memzero(&m->msg_secret, sizeof(m->msg_secret));
        sodium_memzero(m->token_secret, sizeof(m->token_secret));
        g_free(m->api_url);
        server_cert_clear(&m->cert);
        nm_tls_trust_clear(&m->broker_trust);
        g_free(m->broker_ca_pem);
        sd_event_unref(m->event);
        g_free(m);
}

/* ---- start-up ------------------------------------------------------------------------------- */

static int make_state_directory(const char *path)
{
        struct stat st;

        if (g_mkdir_with_parents(path, 0700) < 0)
                return log_error_errno(errno, "Failed to create the state directory %s: %m", path);
        if (stat(path, &st) < 0)
                return log_error_errno(errno, "Failed to inspect the state directory %s: %m", path);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "The state directory %s is not a directory", path);
        if (st.st_mode & 0077)
                log_warning(
                        "The state directory %s is accessible to others (mode %04o): it holds the server's "
                        "keys; chmod 0700 it.",
                        path, st.st_mode & 07777);
        return 0;
}

static int load_key(Store *s, const char *name, void *buf, size_t len, bool *found, GError **error)
{
        _cleanup_secret_ char *text = NULL;
        g_autofree guint8 *raw = NULL;
        size_t n;
        int r;

        r = store_setting_get(s, name, &text, error);
        if (r == -ENOENT) {
                g_clear_error(error);
                *found = false;
                return 0;
        }
        if (r < 0)
                return r;
        if (nm_base64_decode(text, &raw, &n) < 0 || n != len) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "The stored setting \"%s\" is corrupt",
                            name);
                return -EBADMSG;
        }
        memcpy(buf, raw, len);
        sodium_memzero(raw, n);
        *found = true;
        return 0;
}

static int save_key(Store *s, const char *name, const void *buf, size_t len, GError **error)
{
        _cleanup_secret_ char *text = nm_base64_encode(buf, len);
        return store_setting_set(s, name, text, error);
}

/* The message key pair and the token secret are made once, at the first start, and kept in the
 * store so that every netmakerd sharing the database uses the same ones. */
static int load_or_make_secrets(Manager *m)
{
        g_autoptr(GError) e = NULL;
        _cleanup_txn_ StoreTxn t = {};
        bool have_secret = false, have_public = false, have_token = false, have_observer = false;
        int r;

        r = store_txn_begin(m->store, &t, &e);
        if (r >= 0)
                r = load_key(m->store, SETTING_MSG_SECRET, &m->msg_secret, sizeof(m->msg_secret),
                             &have_secret, &e);
        if (r >= 0)
                r = load_key(m->store, SETTING_MSG_PUBLIC, &m->msg_public, sizeof(m->msg_public),
                             &have_public, &e);
        if (r >= 0)
                r = load_key(m->store, SETTING_TOKEN_SECRET, m->token_secret, sizeof(m->token_secret),
                             &have_token, &e);
        if (r >= 0)
                r = load_key(m->store, SETTING_OBSERVER_SECRET, m->observer_secret,
                             sizeof(m->observer_secret), &have_observer, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to read the server's keys: %s", e->message);

        if (!have_secret || !have_public) {
                r = nm_key_generate_box(&m->msg_secret, &m->msg_public);
                if (r < 0)
                        return log_error_errno(r, "Failed to generate the message key pair: %m");
                r = save_key(m->store, SETTING_MSG_SECRET, &m->msg_secret, sizeof(m->msg_secret), &e);
                if (r >= 0)
                        r = save_key(m->store, SETTING_MSG_PUBLIC, &m->msg_public, sizeof(m->msg_public),
                                     &e);
                if (r < 0)
                        return log_error_errno(r, "Failed to store the message key pair: %s", e->message);
                log_info("Generated the server's message key pair.");
        }
        if (!have_token) {
                randombytes_buf(m->token_secret, sizeof(m->token_secret));
                r = save_key(m->store, SETTING_TOKEN_SECRET, m->token_secret, sizeof(m->token_secret), &e);
                if (r < 0)
                        return log_error_errno(r, "Failed to store the token secret: %s", e->message);
        }
        if (!have_observer) {
                /* The observer's WireGuard keys (one per network) derive from it. */
                randombytes_buf(m->observer_secret, sizeof(m->observer_secret));
                r = save_key(m->store, SETTING_OBSERVER_SECRET, m->observer_secret,
                             sizeof(m->observer_secret), &e);
                if (r < 0)
                        return log_error_errno(r, "Failed to store the observer secret: %s", e->message);
        }
        r = store_txn_commit(&t, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to store the server's keys: %s", e->message);
        return 0;
}

static int write_secret_file(const char *path, const char *content)
{
        g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
        _cleanup_close_ int fd = -1;
        size_t len = strlen(content);

        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, content, len) != (ssize_t)len || fsync(fd) < 0) {
                int r = errno ? -errno : -EIO;
                (void)unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                (void)unlink(tmp);
                return r;
        }
        return 0;
}

static int bootstrap_admin(Manager *m)
{
        const Config *c = m->config;
        g_autoptr(GError) e = NULL;
        _cleanup_txn_ StoreTxn t = {};
        _cleanup_secret_ char *random_password = NULL;
        g_autofree char *hash = NULL;
        const char *username = c->admin_user ?: "admin";
        const char *password = c->admin_password;
        gint64 n;
        int r;

        r = store_txn_begin(m->store, &t, &e);
        if (r >= 0)
                r = store_user_count(m->store, NULL, &n, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to count users: %s", e->message);
        if (n > 0)
                return 0;

        if (!password)
                password = random_password = nm_random_token(18);
        r = auth_password_hash(password, &hash);
        if (r < 0)
                return log_error_errno(r, "Failed to hash the admin password: %m");
        User u = {.username = (char *)username,
                  .password_hash = hash,
                  .role = (char *)"admin",
                  .created_at = manager_now(),
                  .password_changed_at = 0,
                  .token_generation = auth_token_generation_new()};
        r = store_user_insert(m->store, &u, &e);
        if (r >= 0)
                r = store_txn_commit(&t, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to create the admin user: %s", e->message);

        if (!random_password) {
                log_info("Created the admin user \"%s\" from the configuration.", username);
                return 0;
        }
        g_autofree char *path = g_build_filename(c->state_directory, INITIAL_PASSWORD_FILE, NULL);
        g_autofree char *content = g_strconcat(random_password, "\n", NULL);
        r = write_secret_file(path, content);
        explicit_bzero(content, strlen(content));
        if (r < 0)
                return log_error_errno(r, "Failed to write the initial admin password to %s: %m", path);
        log_notice("Created the admin user \"%s\"; its password is in %s (change it, then delete the file).",
                   username, path);
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "Initial password of \"%s\": %s\n", username, random_password);
        return 0;
}

/* ---- MQTT ----------------------------------------------------------------------------------- */

void manager_publish(Manager *m, Outbox *o)
{
        unsigned dropped = 0;

        if (!o || !m->mq)
                return;
        for (guint i = 0; i < o->msgs->len; i++) {
                OutMsg *msg = o->msgs->pdata[i];
                int r = mq_publish_host(m->mq, msg->host_id, &msg->msg_key, msg->msg);
                if (r == -ENOTCONN)
                        dropped++;
                else if (r < 0)
                        log_warning_errno(r, "Failed to send %s #%" G_GUINT64_FORMAT " to host %s: %m",
                                          nm_message_type_to_string(msg->msg->type), msg->msg->serial,
                                          msg->host_id);
        }
        if (dropped > 0)
                log_debug("%u of %u message(s) not sent (the broker is away); the hosts catch up later.",
                          dropped, o->msgs->len);
}

int manager_commit(Manager *m, StoreTxn *t, Outbox *o, GError **error)
{
        int r;

        if (o) {
                r = outbox_assign_serials(o, m->store, error);
                if (r < 0)
                        return r;
        }
        r = store_txn_commit(t, error);
        if (r < 0)
                return r;
        manager_publish(m, o);
        return 0;
}

static void on_mq_connected(void *userdata)
{
        Manager *m = userdata;
        g_autoptr(GError) e = NULL;
        g_autoptr(Outbox) o = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int r;

        /* Messages may have been lost while the broker was away: every host gets a snapshot. */
        r = store_txn_begin(m->store, &t, &e);
        if (r >= 0)
                r = peers_snapshot_all(m->store, o, &e);
        if (r >= 0)
                r = manager_commit(m, &t, o, &e);
        if (r < 0)
                log_warning("Failed to send snapshots after connecting to the broker: %s", e->message);
        else
                log_info("Connected to the broker %s; sent %u snapshot(s).", m->config->broker_url,
                         o->msgs->len);
        (void)sd_notifyf(false, "STATUS=Listening on %s; connected to the broker", http_url(m->http));
        /* Registrations that waited for the broker ask for their accounts now, before the
         * listing below: the broker answers in order, so each has committed its host (or given
         * up and queued its account's deletion) by the time the listing's answer is read. */
        broker_waiters_fire(m, 0);
        manager_accounts_sync(m);
}

static int on_mq_host_key(void *userdata, const char *host_id, NmKey *ret)
{
        Manager *m = userdata;
        g_autoptr(Host) h = NULL;
        int r = store_host_get(m->store, host_id, &h, NULL);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : r;
        *ret = h->msg_key;
        return 0;
}

int manager_handle_report(Manager *m, const char *host_id, const NmReport *report, GError **error)
{
        g_autoptr(Outbox) o = outbox_new();
        _cleanup_txn_ StoreTxn t = {};
        int r;

        r = store_txn_begin(m->store, &t, error);
        if (r < 0)
                return r;
        if (report->type == NM_REPORT_SNAPSHOT_REQUEST)
                r = peers_host_snapshot(m->store, host_id, o, error);
        else
                r = peers_host_checkin(m->store, host_id, report, manager_now(), o, error);
        if (r < 0)
                return r;
        r = manager_commit(m, &t, o, error);
        if (r < 0)
                return r;
        if (report->type == NM_REPORT_CHECKIN && report->peers)
                manager_failover_report(m, host_id, report);
        return 0;
}

static void on_mq_report(void *userdata, const char *host_id, NmReport *report)
{
        Manager *m = userdata;
        g_autoptr(GError) e = NULL;

        if (manager_handle_report(m, host_id, report, &e) < 0)
                log_full(e->code == NM_ERROR_NOT_FOUND ? LOG_DEBUG : LOG_WARNING,
                         "Report of host %s not applied: %s", host_id, e->message);
}

/* The API's certificate and what enrollment tokens pin. */
static int setup_tls(Manager *m)
{
        const Config *c = m->config;
        g_autoptr(GError) e = NULL;
        int r;

        if (c->tls) {
                r = server_cert_load(c, &m->cert, &e);
                if (r < 0)
                        return log_error_errno(r, "%s", e->message);
                g_autofree char *pin = nm_tls_pin_format(&m->cert.pin);
                if (m->cert.made)
                        log_notice("Made a self-signed TLS certificate %s (its key is pinned by enrollment "
                                   "tokens: "
                                   "%s).",
                                   m->cert.cert_path, pin);
                else
                        log_info("TLS certificate %s, public key %s.", m->cert.cert_path, pin);
        }
        if (streq0(c->token_pin, "auto")) {
                m->has_token_pin = c->tls;
                m->token_pin = m->cert.pin;
        } else if (!streq0(c->token_pin, "none")) {
                m->has_token_pin = nm_tls_pin_parse(c->token_pin, &m->token_pin);
        }
        return 0;
}

/* How netmakerd verifies the broker, and what hosts are told to verify it with. */
static int setup_broker_trust(Manager *m)
{
        const Config *c = m->config;
        g_autoptr(GError) e = NULL;
        int r;

        if (c->broker_certificate) {
                m->broker_trust.mode = NM_TLS_PIN;
                r = nm_tls_pin_of_file(c->broker_certificate, &m->broker_trust.pin, &e);
                if (r < 0)
                        return log_error_errno(r, "broker_certificate: %s", e->message);
                return 0;
        }
        m->broker_trust.mode = NM_TLS_CA;
        if (c->broker_ca_file) {
                gsize len;
                m->broker_trust.ca_file = g_strdup(c->broker_ca_file);
                if (!g_file_get_contents(c->broker_ca_file, &m->broker_ca_pem, &len, &e))
                        return log_error_errno(-ENOENT, "broker_ca_file: %s", e->message);
                if (!strstr(m->broker_ca_pem, "-----BEGIN CERTIFICATE-----"))
                        return log_error_errno(-EINVAL, "broker_ca_file %s holds no PEM certificate",
                                               c->broker_ca_file);
        }
        return 0;
}

/* Plain HTTP or MQTT would carry enrollment keys, credentials and broker passwords in the clear:
 * only on loopback, or where the admin said insecure=yes. */
static int check_plain_transports(Manager *m)
{
        const Config *c = m->config;
        const struct {
                const char *key, *url, *advice;
        } checks[] = {
                {"the API", http_url(m->http),
                 "keep tls=yes (the default), or listen on 127.0.0.1 behind a TLS proxy"},
                {"api_url", m->api_url, "give hosts an https:// URL"},
                {"broker_url", c->broker_url, "use mqtts:// and a TLS listener of the broker"},
                {"broker_public_url", c->broker_public_url, "use mqtts:// and a TLS listener of the broker"},
        };

        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                const char *url = checks[i].url;
                if (!url || !(g_str_has_prefix(url, "http://") || g_str_has_prefix(url, "mqtt://")))
                        continue;
                g_autofree char *host = nm_url_host(url);
                if (nm_host_is_loopback(host))
                        continue;
                if (!c->insecure)
                        return log_error_errno(
                                -EPERM,
                                "Refusing plain %s for %s (%s): enrollment keys, credentials and "
                                "broker passwords would cross the network in the clear. Either %s, or "
                                "set insecure=yes to allow it anyway.",
                                g_str_has_prefix(url, "http") ? "HTTP" : "MQTT", checks[i].key, url,
                                checks[i].advice);
                log_warning("INSECURE: plain %s for %s (%s) off loopback: enrollment keys, credentials and "
                            "broker "
                            "passwords cross the network in the clear (insecure=yes).",
                            g_str_has_prefix(url, "http") ? "HTTP" : "MQTT", checks[i].key, url);
        }
        return 0;
}

static int start_mq(Manager *m)
{
        const Config *c = m->config;
        static const MqCallbacks callbacks = {
                .connected = on_mq_connected,
                .host_key = on_mq_host_key,
                .report = on_mq_report,
        };
        MqSettings s = {
                .url = c->broker_url,
                .username = c->broker_username,
                .password = c->broker_password,
                .server_name = c->server_name,
                .server_public = m->msg_public,
                .server_secret = m->msg_secret,
                .trust = &m->broker_trust,
        };
        int r = mq_new(m->event, &s, &callbacks, m, &m->mq);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the MQTT connection to %s: %m", c->broker_url);
        return 0;
}

/* ---- sockets from systemd and the UDP port -------------------------------------------------- */

/* The sockets systemd passed: the listening stream socket named "api" (else the first one) for the
 * API, the first datagram socket for the UDP port; the others are closed. */
static int take_passed_sockets(Manager *m)
{
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0) {
                        if (m->passed_api_fd < 0 || streq0(names[i], "api"))
                                m->passed_api_fd = fd;
                } else if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0 && m->passed_udp_fd < 0)
                        m->passed_udp_fd = fd;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (fd != m->passed_api_fd && fd != m->passed_udp_fd)
                        close(fd);
        }
        g_strfreev(names);
        if (n > 0 && m->passed_api_fd < 0)
                return log_error_errno(-EBADF, "systemd passed %d socket(s), none a listening stream socket",
                                       n);
        return 0;
}

/* The address hosts send to: udp_public_endpoint, else api_url's address (when it is one) with the
 * bound port, else the bound address when it is a specific one. */
static char *public_udp_endpoint(Manager *m)
{
        const Config *c = m->config;
        g_autofree char *host = NULL;
        int family;
        NmInAddr a;

        if (c->udp_public_endpoint)
                return g_strdup(c->udp_public_endpoint);
        host = nm_url_host(m->api_url);
        if (host && nm_addr_parse(host, &family, &a) >= 0)
                return nm_endpoint_to_string(family, &a, observer_port(m->observer));
        const NmInAddr *bound = observer_address(m->observer);
        static const NmInAddr zero = {};
        if (memcmp(bound->bytes, zero.bytes, observer_family(m->observer) == AF_INET ? 4 : 16) != 0)
                return nm_endpoint_to_string(observer_family(m->observer), bound,
                                             observer_port(m->observer));
        return NULL;
}

static int start_observer(Manager *m)
{
        const Config *c = m->config;
        g_autoptr(GError) e = NULL;
        int r;

        m->observer_keys = observer_keys_new(m->observer_secret);
        if (c->udp_off && m->passed_udp_fd < 0) {
                /* Nothing observes them any more: endpoints stored before would never expire. */
                r = store_exec(m->store, "UPDATE nodes SET observed_endpoint = NULL, observed_at = 0", NULL,
                               0, NULL, &e);
                if (r < 0)
                        log_warning("Failed to forget the observed endpoints: %s", e->message);
                log_info("udp_listen=off: no endpoint observer, no STUN; hosts behind NAT are reached at "
                         "what "
                         "they report.");
                return 0;
        }
        ObserverSettings s = {
                .fd = TAKE_FD(m->passed_udp_fd),
                .family = c->udp_family,
                .address = &c->udp_addr,
                .port = c->udp_port,
                .stun = c->stun,
                .rate_burst = c->udp_rate_limit.burst,
                .rate_period_sec = c->udp_rate_limit.period,
                .rate_sources = c->rate_limit_sources,
        };
        r = observer_new(m, &s, &m->observer);
        if (r < 0) {
                g_autofree char *where = nm_endpoint_to_string(c->udp_family, &c->udp_addr, c->udp_port);
                /* Set on purpose: a failure is fatal. The default may collide with a STUN server
                 * already on this machine: then the server runs without observing. */
                if (c->udp_listen)
                        return log_error_errno(r, "Failed to listen on UDP %s (udp_listen): %m", where);
                log_warning_errno(
                        r,
                        "Failed to listen on UDP %s: %m; running without the endpoint observer and "
                        "STUN: set udp_listen= to a free port (or udp_listen=off to silence this).",
                        where);
                return 0;
        }
        m->observer_endpoint = public_udp_endpoint(m);
        g_autofree char *bound = nm_endpoint_to_string(
                observer_family(m->observer), observer_address(m->observer), observer_port(m->observer));
        if (!m->observer_endpoint)
                log_warning(
                        "Observing on UDP %s, but hosts cannot be told where: api_url names no address; set "
                        "udp_public_endpoint.",
                        bound);
        else
                log_info("Observing WireGuard endpoints%s on UDP %s%s, told to hosts as %s.",
                         c->stun ? " and answering STUN" : "", bound,
                         observer_socket_activated(m->observer) ? " (socket from systemd)" : "",
                         m->observer_endpoint);
        return 0;
}

void manager_host_http_address(Manager *m, const char *host_id, const struct sockaddr *sa)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(Outbox) out = outbox_new();
        g_autoptr(Host) h = NULL;
        g_autofree char *address = NULL;
        _cleanup_txn_ StoreTxn t = {};
        NmInAddr a = {};
        int family, r;

        /* Loopback is a proxy on this machine (Caddy): it says nothing about the host. */
        if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
                return;
        if (sa->sa_family == AF_INET) {
                family = AF_INET;
                memcpy(a.bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        } else {
                const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                family = IN6_IS_ADDR_V4MAPPED(in6) ? AF_INET : AF_INET6;
                memcpy(a.bytes, family == AF_INET ? in6->s6_addr + 12 : in6->s6_addr,
                       family == AF_INET ? 4 : 16);
        }
        address = nm_addr_to_string(family, &a);
        if (!address || nm_host_is_loopback(address))
                return;
        if (store_host_get(m->store, host_id, &h, NULL) < 0 || streq0(h->http_address, address))
                return;
        r = store_txn_begin(m->store, &t, &e);
        if (r >= 0)
                r = peers_host_http_address(m->store, host_id, address, out, &e);
        if (r >= 0)
                r = manager_commit(m, &t, out, &e);
        if (r < 0)
                log_warning("Failed to store the HTTPS source address of host %s: %s", host_id, e->message);
        else
                log_debug("Host \"%s\" (%s) connects from %s.", h->name, host_id, address);
}

void manager_networks_changed(Manager *m, const char *deleted)
{
        if (deleted && m->observer_keys)
                observer_keys_forget(m->observer_keys, deleted);
        observer_networks_changed(m->observer);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int make_rate_limit(const ConfigRate *rate, unsigned max_sources, RateLimit **ret)
{
        if (rate->burst == 0)
                return 0; /* "off" */
        return ratelimit_new(rate->burst, (uint64_t)rate->period * G_USEC_PER_SEC, max_sources, ret);
}

int manager_start(Manager *m)
{
        const Config *c = m->config;
        g_autoptr(GError) e = NULL;
        int r;

        r = make_state_directory(c->state_directory);
        if (r < 0)
                return r;
        r = store_open(c->database, &m->store, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to open the database %s: %s", c->database, e->message);
        r = load_or_make_secrets(m);
        if (r < 0)
                return r;
        r = bootstrap_admin(m);
        if (r < 0)
                return r;
        /* Two threads: the machine's cores are shared with the rest; more logins wait their turn. */
        r = auth_worker_new(m->event, 2, 32, &m->auth_worker);
        if (r < 0)
                return log_error_errno(r, "Failed to start the password workers: %m");
        r = make_rate_limit(&c->login_rate_limit, c->rate_limit_sources, &m->login_limit);
        if (r >= 0)
                r = make_rate_limit(&c->register_rate_limit, c->rate_limit_sources, &m->register_limit);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rate limits: %m");

        r = setup_tls(m);
        if (r < 0)
                return r;
        if (manager_broker_enabled(m)) {
                r = setup_broker_trust(m);
                if (r < 0)
                        return r;
        }
        r = take_passed_sockets(m);
        if (r < 0)
                return r;
        HttpSettings hs = {
                .listen_fd = TAKE_FD(m->passed_api_fd),
                .family = c->listen_family,
                .address = &c->listen_addr,
                .port = c->listen_port,
                .max_request_size = c->max_request_size,
                .max_connections = c->max_connections,
                .connection_timeout_sec = c->connection_timeout,
                .tls_cert_pem = m->cert.cert_pem,
                .tls_key_pem = m->cert.key_pem,
        };
        r = http_new(m, m->event, &hs, &m->http);
        if (r < 0)
                return r;
        m->api_url = g_strdup(c->api_url ?: http_url(m->http));
        r = check_plain_transports(m);
        if (r < 0)
                return r;
        if (!c->api_url && (strstr(m->api_url, "//0.0.0.0:") || strstr(m->api_url, "//[::]:")))
                log_warning("api_url is not set and the API listens on a wildcard address: enrollment "
                            "tokens will carry %s, which hosts cannot reach; set api_url.",
                            m->api_url);
        r = start_observer(m);
        if (r < 0)
                return r;
        m->server_info = (PeersServerInfo){
                .observer_endpoint = m->observer_endpoint,
                .stun = m->observer && c->stun,
                .observer_keepalive = OBSERVER_KEEPALIVE,
                .failover_after = c->failover_after,
                .keys = m->observer_keys,
        };
        peers_set_server_info(&m->server_info);

        if (manager_broker_enabled(m)) {
                r = start_mq(m);
                if (r < 0)
                        return r;
        } else
                log_notice("No broker configured (broker_url is empty): hosts get no MQTT account and no "
                           "pushed changes.");

        r = manager_hosts_start(m);
        if (r < 0)
                return r;

        log_info("Listening on %s%s", http_url(m->http),
                 http_socket_activated(m->http) ? " (socket from systemd)" : "");
        log_debug("Enrollment tokens carry %s; database %s; server name \"%s\".", m->api_url,
                  store_backend_name(m->store), c->server_name);
        (void)sd_notifyf(false, "READY=1\nSTATUS=Listening on %s", http_url(m->http));
        return 0;
}

int manager_run(Manager *m)
{
        int r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
