/* netmakerd's configuration: a table of keys, each with its default, its parser and its check;
 * the key file and the environment both go through the same table. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "mqtt-loop.h"
#include "names.h"
#include "nm-error.h"
#include "tls.h"
#include "token.h"

extern char **environ;

typedef enum KeyType {
        KEY_STRING,
        KEY_LISTEN,
        KEY_PORT,
        KEY_UINT,
        KEY_DURATION,
        KEY_SIZE,
        KEY_RATE,
        KEY_LOG_LEVEL,
        KEY_BOOL,
        KEY_UDP_LISTEN,
} KeyType;

typedef struct KeyDef {
        const char *name;
        KeyType type;
        size_t offset;
        uint64_t min, max;
        bool secret;   /* never quote the value in messages */
        bool nullable; /* an empty value means "unset" */
        bool (*check)(const char *value, GError **error);
        const char *default_text; /* for --help */
        const char *help;
} KeyDef;

static bool check_server_name(const char *v, GError **error)
{
        size_t n = strlen(v);
        bool ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
                ok = g_ascii_isalnum(v[i]) || v[i] == '-' || v[i] == '_' || v[i] == '.';
        if (!ok)
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "expected 1-64 characters of letters, digits, '-', '_' and '.' (it is a part "
                            "of MQTT topic names)");
        return ok;
}

static bool check_api_url(const char *v, GError **error)
{
        if (nm_api_url_valid(v) && !g_str_has_suffix(v, "/"))
                return true;
        g_set_error(
                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                "expected an http:// or https:// URL with a host and no trailing '/', query or credentials, "
                "e.g. https://netmaker.example.com");
        return false;
}

static bool check_broker_url(const char *v, GError **error)
{
        if (strlen(v) <= 512 && mqtt_url_parse(v, NULL, NULL, NULL) >= 0)
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (e.g. mqtt://127.0.0.1:1883), or "
                    "an empty value to run without a broker");
        return false;
}

static bool check_database(const char *v, GError **error)
{
        g_autofree char *scheme = NULL, *location = NULL;
        return config_parse_database(v, &scheme, &location, error) >= 0;
}

static bool check_absolute_path(const char *v, GError **error)
{
        if (g_path_is_absolute(v) && strlen(v) < 4096)
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "expected an absolute path");
        return false;
}

static bool check_dns_domain(const char *v, GError **error)
{
        g_autoptr(GError) e = NULL;
        if (nm_dns_domain_valid(v, &e))
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "expected a DNS domain of labels of a-z, 0-9 and '-' separated by dots");
        return false;
}

static bool check_user_name(const char *v, GError **error)
{
        g_autoptr(GError) e = NULL;
        if (nm_user_name_valid(v, &e))
                return true;
        g_set_error(
                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                "expected 1-%d characters of letters, digits and . _ - @, starting with a letter or digit",
                NM_USER_NAME_MAX);
        return false;
}

static bool check_password(const char *v, GError **error)
{
        size_t n = strlen(v);
        if (n >= 8 && n <= 1024 && g_utf8_validate(v, -1, NULL))
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "expected 8-1024 characters of UTF-8 text");
        return false;
}

static bool check_master_key(const char *v, GError **error)
{
        size_t n = strlen(v);
        bool ok = n >= 16 && n <= 512 && !g_str_has_prefix(v, "nmu.") && !g_str_has_prefix(v, "nmh.");
        for (size_t i = 0; ok && i < n; i++)
                ok = (unsigned char)v[i] > ' ' && (unsigned char)v[i] < 0x7f;
        if (!ok)
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "expected 16-512 printable ASCII characters without spaces, not starting with "
                            "\"nmu.\" or \"nmh.\"");
        return ok;
}

static bool check_token_pin(const char *v, GError **error)
{
        NmTlsPin pin;
        if (streq0(v, "auto") || streq0(v, "none") || nm_tls_pin_parse(v, &pin))
                return true;
        g_set_error(
                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                "expected auto (the pin of the served certificate), none (hosts verify the server by its "
                "CA) or a pin sha256//BASE64 (32 bytes, e.g. a TLS proxy's key)");
        return false;
}

static bool check_endpoint(const char *v, GError **error)
{
        int family;
        NmInAddr a;
        uint16_t port;
        if (strlen(v) <= 64 && nm_endpoint_parse(v, &family, &a, &port) >= 0 && port > 0)
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "expected IPV4:PORT or [IPV6]:PORT with a port 1-65535, e.g. 203.0.113.1:3478");
        return false;
}

static bool check_printable(const char *v, GError **error)
{
        size_t n = strlen(v);
        bool ok = n >= 1 && n <= 256 && g_utf8_validate(v, -1, NULL);
        for (size_t i = 0; ok && i < n; i++)
                ok = (unsigned char)v[i] >= ' ' && v[i] != 0x7f;
        if (!ok)
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "expected 1-256 printable characters");
        return ok;
}

#define OFF(f) offsetof(Config, f)

static const KeyDef keys[] = {
        {"listen", KEY_LISTEN, OFF(listen), 0, 0, false, false, NULL, "127.0.0.1:8081",
         "the REST API's ADDRESS:PORT or [IPV6]:PORT (port 0: any free one); unused with socket activation"},
        {"api_url", KEY_STRING, OFF(api_url), 0, 0, false, true, check_api_url, "https://<listen>",
         "public URL of the REST API, put into enrollment tokens"},
        {"tls", KEY_BOOL, OFF(tls), 0, 0, false, false, NULL, "yes",
         "serve the API over HTTPS; plain HTTP only on loopback (e.g. behind a TLS proxy) or with insecure"},
        {"tls_certificate", KEY_STRING, OFF(tls_certificate), 0, 0, false, true, check_absolute_path,
         "<state_directory>/tls/server.crt",
         "the API's certificate chain (PEM); when neither it nor tls_key is set, a self-signed one is made "
         "at the first start and kept"},
        {"tls_key", KEY_STRING, OFF(tls_key), 0, 0, false, true, check_absolute_path,
         "<state_directory>/tls/server.key", "its private key (PEM)"},
        {"token_pin", KEY_STRING, OFF(token_pin), 0, 0, false, false, check_token_pin, "auto",
         "what enrollment tokens pin: auto (the served certificate's key), none (hosts trust a CA), or "
         "sha256//BASE64 (e.g. the key of a TLS proxy in front)"},
        {"accept_v1_tokens", KEY_BOOL, OFF(accept_v1_tokens), 0, 0, false, false, NULL, "yes",
         "accept enrollment tokens of version 1 (made before tokens pinned the server)"},
        {"insecure", KEY_BOOL, OFF(insecure), 0, 0, false, false, NULL, "no",
         "allow plain HTTP and MQTT off loopback (credentials cross the network in the clear); warns"},
        {"server_name", KEY_STRING, OFF(server_name), 0, 0, false, false, check_server_name,
         DEFAULT_SERVER_NAME, "this server's name in MQTT topics (nm/<server_name>/host/…)"},
        {"broker_url", KEY_STRING, OFF(broker_url), 0, 0, false, true, check_broker_url,
         "mqtt://127.0.0.1:1883",
         "MQTT broker; empty: run without a broker (registration returns \"mqtt\": null)"},
        {"broker_public_url", KEY_STRING, OFF(broker_public_url), 0, 0, false, true, check_broker_url,
         "(broker_url)",
         "the broker URL hosts are given at registration, when they reach it at another address"},
        {"broker_username", KEY_STRING, OFF(broker_username), 0, 0, false, false, check_printable, "admin",
         "the broker's dynamic-security admin account"},
        {"broker_password", KEY_STRING, OFF(broker_password), 0, 0, true, true, NULL, "(empty)",
         "its password"},
        {"broker_certificate", KEY_STRING, OFF(broker_certificate), 0, 0, false, true, check_absolute_path,
         "(none)",
         "mqtts://: the broker's certificate (PEM); its key is pinned by netmakerd and, through "
         "registration, by "
         "hosts"},
        {"broker_ca_file", KEY_STRING, OFF(broker_ca_file), 0, 0, false, true, check_absolute_path,
         "(system trust store)",
         "mqtts:// without broker_certificate: the CA that issued the broker's certificate (hosts get it at "
         "registration)"},
        {"database", KEY_STRING, OFF(database), 0, 0, false, true, check_database,
         "sqlite://<state_directory>/netmaker.db", "the store: sqlite:///ABSOLUTE/PATH"},
        {"state_directory", KEY_STRING, OFF(state_directory), 0, 0, false, false, check_absolute_path,
         "$STATE_DIRECTORY or /var/lib/netmaker", "created 0700 if missing"},
        {"dns_domain", KEY_STRING, OFF(dns_domain), 0, 0, false, false, check_dns_domain, "nm.internal",
         "default DNS domain of new networks"},
        {"default_listen_port", KEY_PORT, OFF(default_listen_port), 1, 65535, false, false, NULL, "51821",
         "default WireGuard listen port of new networks"},
        {"default_keepalive", KEY_UINT, OFF(default_keepalive), 0, 3600, false, false, NULL, "20",
         "default persistent keepalive of new networks, seconds (0 = off)"},
        {"default_mtu", KEY_UINT, OFF(default_mtu), 1280, 9000, false, false, NULL, "1420",
         "default MTU of new networks"},
        {"admin_user", KEY_STRING, OFF(admin_user), 0, 0, false, true, check_user_name, "admin",
         "the admin created at the first start"},
        {"admin_password", KEY_STRING, OFF(admin_password), 0, 0, true, true, check_password, "(random)",
         "its password; when unset a random one is written to <state_directory>/initial-admin-password"},
        {"master_key", KEY_STRING, OFF(master_key), 0, 0, true, true, check_master_key, "(none)",
         "a bearer credential with the admin role, for automation"},
        {"token_lifetime", KEY_DURATION, OFF(token_lifetime), 60, 366 * 86400, false, false, NULL, "24h",
         "lifetime of user tokens from /login (seconds, or with s, m, h, d)"},
        {"max_request_size", KEY_SIZE, OFF(max_request_size), 1024, 16 * 1024 * 1024, false, false, NULL,
         "64K", "largest request body accepted (bytes, or with K, M)"},
        {"max_connections", KEY_UINT, OFF(max_connections), 1, 1000000, false, false, NULL, "1024",
         "simultaneous HTTP connections"},
        {"connection_timeout", KEY_DURATION, OFF(connection_timeout), 1, 3600, false, false, NULL, "60s",
         "idle HTTP connections are closed after this time"},
        {"login_rate_limit", KEY_RATE, OFF(login_rate_limit), 0, 0, false, false, NULL, "10/1m",
         "POST /login per source address (IPv6: per /64): BURST/PERIOD (e.g. 10/1m) or off; more get 429"},
        {"register_rate_limit", KEY_RATE, OFF(register_rate_limit), 0, 0, false, false, NULL, "30/1m",
         "POST /hosts/register per source address, the same way"},
        {"rate_limit_sources", KEY_UINT, OFF(rate_limit_sources), 1, 10000000, false, false, NULL, "10000",
         "source addresses each rate limit keeps track of; past that, new ones share one budget"},
        {"udp_listen", KEY_UDP_LISTEN, OFF(udp_listen), 0, 0, false, false, NULL, "<listen address>:3478",
         "ADDRESS:PORT or [IPV6]:PORT of the UDP port where netmakerd observes hosts' WireGuard endpoints "
         "and answers STUN (port 0 when listen's is 0), or off; unused when systemd passes a datagram "
         "socket"},
        {"udp_public_endpoint", KEY_STRING, OFF(udp_public_endpoint), 0, 0, false, true, check_endpoint,
         "<api_url's address>:<the UDP port>",
         "IP:PORT of that UDP port as hosts reach it; needed when api_url names the server by a DNS name or "
         "a "
         "proxy"},
        {"stun", KEY_BOOL, OFF(stun), 0, 0, false, false, NULL, "yes",
         "answer STUN Binding requests on the UDP port, and have hosts ask it for their public address"},
        {"udp_rate_limit", KEY_RATE, OFF(udp_rate_limit), 0, 0, false, false, NULL, "50/1s",
         "WireGuard handshakes read and STUN requests answered per source address on the UDP port: "
         "BURST/PERIOD or off; more are dropped"},
        {"failover_after", KEY_DURATION, OFF(failover_after), 0, 3600, false, false, NULL, "60s",
         "relay a pair of hosts through a failover relay when neither has had a session with the other "
         "for this long (0 = never)"},
        {"host_offline_after", KEY_DURATION, OFF(host_offline_after), 1, 86400, false, false, NULL, "3m",
         "a host without a check-in for this long is shown offline (hosts check in every minute)"},
        {"host_stale_after", KEY_DURATION, OFF(host_stale_after), 2, 3650 * 86400, false, false, NULL, "30d",
         "... and stale after this long (more than host_offline_after)"},
        {"host_remove_stale", KEY_BOOL, OFF(host_remove_stale), 0, 0, false, false, NULL, "no",
         "delete stale hosts, as DELETE /hosts/{id} does (their nodes leave, their broker accounts go)"},
        {"log_level", KEY_LOG_LEVEL, OFF(log_level), 0, 0, false, false, NULL, "info",
         "debug, info, notice, warning, err"},
};

static char **field_str(Config *c, const KeyDef *k)
{
        return (char **)((uint8_t *)c + k->offset);
}

static void clear_field(Config *c, const KeyDef *k)
{
        char **f = field_str(c, k);
        if (k->secret)
                nm_free_secret(*f);
        else
                g_free(*f);
        *f = NULL;
}

Config *config_new_defaults(void)
{
        Config *c = g_new0(Config, 1);
        const char *sd = getenv("STATE_DIRECTORY");

        c->listen = g_strdup("127.0.0.1:8081");
        c->listen_family = AF_INET;
        c->listen_addr.in.s_addr = htonl(INADDR_LOOPBACK);
        c->listen_port = 8081;
        c->server_name = g_strdup(DEFAULT_SERVER_NAME);
        c->broker_url = g_strdup("mqtt://127.0.0.1:1883");
        c->broker_username = g_strdup("admin");
        /* systemd's StateDirectory= may list several colon-separated directories: the first is ours. */
        if (sd && *sd == '/') {
                const char *colon = strchr(sd, ':');
                c->state_directory = colon ? g_strndup(sd, colon - sd) : g_strdup(sd);
        } else
                c->state_directory = g_strdup("/var/lib/netmaker");
        c->dns_domain = g_strdup("nm.internal");
        c->default_listen_port = 51821;
        c->default_keepalive = 20;
        c->default_mtu = 1420;
        c->token_lifetime = 24 * 3600;
        c->max_request_size = 64 * 1024;
        c->max_connections = 1024;
        c->connection_timeout = 60;
        c->login_rate_limit = (ConfigRate){.burst = 10, .period = 60};
        c->register_rate_limit = (ConfigRate){.burst = 30, .period = 60};
        c->rate_limit_sources = 10000;
        c->log_level = LOG_INFO;
        c->tls = true;
        c->token_pin = g_strdup("auto");
        c->accept_v1_tokens = true;
        c->stun = true;
        c->udp_rate_limit = (ConfigRate){.burst = 50, .period = 1};
        c->failover_after = 60;
        c->host_offline_after = 180;
        c->host_stale_after = 30 * 86400;
        return c;
}

void config_free(Config *c)
{
        if (!c)
                return;
        g_free(c->listen);
        g_free(c->api_url);
        g_free(c->server_name);
        g_free(c->broker_url);
        g_free(c->broker_public_url);
        g_free(c->broker_username);
        nm_free_secret(c->broker_password);
        g_free(c->broker_certificate);
        g_free(c->broker_ca_file);
        g_free(c->tls_certificate);
        g_free(c->tls_key);
        g_free(c->token_pin);
        g_free(c->database);
        g_free(c->state_directory);
        g_free(c->dns_domain);
        g_free(c->udp_listen);
        g_free(c->udp_public_endpoint);
        g_free(c->admin_user);
        nm_free_secret(c->admin_password);
        nm_free_secret(c->master_key);
        g_free(c);
}

static bool parse_uint(const char *v, uint64_t *ret)
{
        char *end;
        if (!g_ascii_isdigit(v[0]) || strlen(v) > 19)
                return false;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end)
                return false;
        *ret = n;
        return true;
}

static bool parse_with_suffix(const char *v, const char *const *suffixes, const uint64_t *factors,
                              uint64_t *ret)
{
        size_t n = strlen(v), digits = 0;
        while (digits < n && g_ascii_isdigit(v[digits]))
                digits++;
        if (digits == 0 || digits > 12)
                return false;
        g_autofree char *num = g_strndup(v, digits);
        const char *suffix = v + digits;
        uint64_t x;
        if (!parse_uint(num, &x))
                return false;
        for (size_t i = 0; suffixes[i]; i++)
                if (g_ascii_strcasecmp(suffix, suffixes[i]) == 0) {
                        *ret = x * factors[i];
                        return true;
                }
        return false;
}

/* Durations: seconds, or a number with a unit ("90", "15m", "24h"). */
static const char *const duration_suffixes[] = {"", "s", "m", "min", "h", "d", NULL};
static const uint64_t duration_factors[] = {1, 1, 60, 60, 3600, 86400};

/* "BURST/PERIOD" with BURST 1-1000000 and PERIOD a duration of 1 s - 1 d ("10/1m", "10/min",
 * "100/1h"), or "off". */
static bool parse_rate(const char *v, ConfigRate *ret)
{
        uint64_t burst, period;

        if (g_ascii_strcasecmp(v, "off") == 0) {
                *ret = (ConfigRate){};
                return true;
        }
        const char *slash = strchr(v, '/');
        if (!slash)
                return false;
        g_autofree char *b = g_strndup(v, slash - v);
        /* A bare unit is one of it: "10/min". */
        g_autofree char *p =
                g_ascii_isalpha(slash[1]) ? g_strconcat("1", slash + 1, NULL) : g_strdup(slash + 1);
        if (!parse_uint(b, &burst) || burst < 1 || burst > 1000000 ||
            !parse_with_suffix(p, duration_suffixes, duration_factors, &period) || period < 1 ||
            period > 86400)
                return false;
        *ret = (ConfigRate){.burst = (unsigned)burst, .period = (unsigned)period};
        return true;
}

int config_parse_database(const char *url, char **ret_scheme, char **ret_location, GError **error)
{
        if (g_str_has_prefix(url, "sqlite://")) {
                const char *path = url + strlen("sqlite://");
                if (!g_path_is_absolute(path) || strlen(path) >= 4096 || g_str_has_suffix(path, "/")) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "expected sqlite:///ABSOLUTE/PATH/FILE (three slashes: the path is "
                                    "absolute)");
                        return -EINVAL;
                }
                *ret_scheme = g_strdup("sqlite");
                *ret_location = g_strdup(path);
                return 0;
        }
        if (g_str_has_prefix(url, "postgres://") || g_str_has_prefix(url, "postgresql://")) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "the PostgreSQL backend is not part of this build; use sqlite:///PATH");
                return -EOPNOTSUPP;
        }
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "expected sqlite:///ABSOLUTE/PATH");
        return -EINVAL;
}

static bool parse_addr_port(const char *v, int *ret_family, NmInAddr *ret_addr, uint16_t *ret_port)
{
        int family;
        NmInAddr addr;
        g_autofree char *host = NULL;
        const char *port;

        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (!close || close[1] != ':')
                        return false;
                host = g_strndup(v + 1, close - v - 1);
                port = close + 2;
                if (nm_addr_parse(host, &family, &addr) < 0 || family != AF_INET6)
                        return false;
        } else {
                const char *colon = strrchr(v, ':');
                if (!colon)
                        return false;
                host = g_strndup(v, colon - v);
                port = colon + 1;
                if (nm_addr_parse(host, &family, &addr) < 0 || family != AF_INET)
                        return false;
        }
        uint64_t p;
        if (!parse_uint(port, &p) || p > 65535)
                return false;
        *ret_family = family;
        *ret_addr = addr;
        *ret_port = (uint16_t)p;
        return true;
}

static bool parse_udp_listen(const char *v, Config *c, GError **error)
{
        if (g_ascii_strcasecmp(v, "off") == 0) {
                c->udp_off = true;
        } else if (parse_addr_port(v, &c->udp_family, &c->udp_addr, &c->udp_port)) {
                c->udp_off = false;
        } else {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "expected IPV4:PORT or [IPV6]:PORT with a port 0-65535, e.g. 0.0.0.0:3478, or off");
                return false;
        }
        g_free(c->udp_listen);
        c->udp_listen = g_strdup(v);
        return true;
}

static bool parse_listen(const char *v, Config *c, GError **error)
{
        int family;
        NmInAddr addr;
        g_autofree char *host = NULL;
        const char *port;

        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (!close || close[1] != ':')
                        goto fail;
                host = g_strndup(v + 1, close - v - 1);
                port = close + 2;
                if (nm_addr_parse(host, &family, &addr) < 0 || family != AF_INET6)
                        goto fail;
        } else {
                const char *colon = strrchr(v, ':');
                if (!colon)
                        goto fail;
                host = g_strndup(v, colon - v);
                port = colon + 1;
                if (nm_addr_parse(host, &family, &addr) < 0 || family != AF_INET)
                        goto fail;
        }
        uint64_t p;
        if (!parse_uint(port, &p) || p > 65535)
                goto fail;
        c->listen_family = family;
        c->listen_addr = addr;
        c->listen_port = (uint16_t)p;
        g_free(c->listen);
        c->listen = g_strdup(v);
        return true;
fail:
        g_set_error(
                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                "expected IPV4:PORT or [IPV6]:PORT with a port 0-65535, e.g. 127.0.0.1:8081 or [::]:8081");
        return false;
}

/* Sets one key from its text; `origin` names where the text came from, for the message. */
static bool set_key(Config *c, const KeyDef *k, const char *value, const char *origin, GError **error)
{
        g_autoptr(GError) e = NULL;
        uint8_t *field = (uint8_t *)c + k->offset;
        uint64_t n = 0;
        bool ok = true;

        switch (k->type) {
        case KEY_STRING:
                if (!*value && k->nullable) {
                        clear_field(c, k);
                        return true;
                }
                if (!*value && !k->check)
                        ok = false,
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "a value is required");
                else if (k->check)
                        ok = k->check(value, &e);
                if (ok) {
                        clear_field(c, k);
                        *field_str(c, k) = g_strdup(value);
                }
                break;
        case KEY_LISTEN:
                ok = parse_listen(value, c, &e);
                break;
        case KEY_UDP_LISTEN:
                ok = parse_udp_listen(value, c, &e);
                break;
        case KEY_PORT:
                ok = parse_uint(value, &n) && n >= k->min && n <= k->max;
                if (ok)
                        *(uint16_t *)field = (uint16_t)n;
                else
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "expected a port number %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                                    k->min, k->max);
                break;
        case KEY_UINT:
                ok = parse_uint(value, &n) && n >= k->min && n <= k->max;
                if (ok)
                        *(unsigned *)field = (unsigned)n;
                else
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "expected a whole number %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                                    k->min, k->max);
                break;
        case KEY_DURATION: {
                ok = parse_with_suffix(value, duration_suffixes, duration_factors, &n) && n >= k->min &&
                     n <= k->max;
                if (!ok)
                        g_set_error(
                                &e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                "expected a duration of %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
                                " seconds: a number with an optional unit s, m, h or d (e.g. 90, 15m, 24h)",
                                k->min, k->max);
                else if (k->offset == OFF(token_lifetime))
                        c->token_lifetime = n;
                else
                        *(unsigned *)field = (unsigned)n;
                break;
        }
        case KEY_SIZE: {
                static const char *const suffixes[] = {"", "B", "K", "KiB", "M", "MiB", NULL};
                static const uint64_t factors[] = {1, 1, 1024, 1024, 1024 * 1024, 1024 * 1024};
                ok = parse_with_suffix(value, suffixes, factors, &n) && n >= k->min && n <= k->max;
                if (ok)
                        *(uint64_t *)field = n;
                else
                        g_set_error(
                                &e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                "expected a size of 1K-16M: a number of bytes with an optional unit K or M");
                break;
        }
        case KEY_BOOL: {
                static const char *const yes[] = {"yes", "true", "on", "1", NULL};
                static const char *const no[] = {"no", "false", "off", "0", NULL};
                if (g_strv_contains(yes, value))
                        *(bool *)field = true;
                else if (g_strv_contains(no, value))
                        *(bool *)field = false;
                else
                        ok = false,
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "expected yes or no");
                break;
        }
        case KEY_RATE:
                ok = parse_rate(value, (ConfigRate *)field);
                if (!ok)
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "expected BURST/PERIOD (BURST requests at once, then BURST more each "
                                    "PERIOD), with BURST 1-1000000 and PERIOD 1s-1d, e.g. 10/1m; or off");
                break;
        case KEY_LOG_LEVEL: {
                int l = log_level_from_string(value);
                ok = l >= 0;
                if (ok)
                        *(int *)field = l;
                else
                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "expected one of debug, info, notice, warning, err (or 0-7)");
                break;
        }
        }
        if (ok)
                return true;
        if (k->secret)
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s (%s): %s", k->name,
                            origin, e->message);
        else {
                g_autofree char *shown = g_utf8_make_valid(value, MIN(strlen(value), 80));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s \"%s\" (%s): %s",
                            k->name, shown, origin, e->message);
        }
        return false;
}

static const KeyDef *find_key(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq0(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

static char *known_keys(void)
{
        g_autoptr(GString) s = g_string_new(NULL);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                g_string_append_printf(s, "%s%s", i ? ", " : "", keys[i].name);
        return g_string_free(TAKE_PTR(s), false);
}

static int load_file(Config *c, const char *path, bool must_exist, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) e = NULL;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
                if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT) && !must_exist)
                        return 0;
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Failed to read the configuration file %s: %s", path, e->message);
                return -EINVAL;
        }

        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                if (!streq0(*g, CONFIG_GROUP)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Unknown section [%s] in %s: the configuration lives in [" CONFIG_GROUP
                                    "]",
                                    *g, path);
                        return -EINVAL;
                }
                g_auto(GStrv) names = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **n = names; n && *n; n++) {
                        const KeyDef *k = find_key(*n);
                        if (!k) {
                                g_autofree char *known = known_keys();
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Unknown key \"%s\" in %s (known keys: %s)", *n, path, known);
                                return -EINVAL;
                        }
                        g_autofree char *origin = g_strdup_printf("in %s", path);
                        _cleanup_secret_ char *v = g_key_file_get_string(kf, *g, *n, &e);
                        /* With a bad escape ("\q") GLib returns its guess and an error: refused. */
                        if (!v || e) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s %s: %s",
                                            *n, origin, e->message);
                                return -EINVAL;
                        }
                        g_strstrip(v);
                        if (!set_key(c, k, v, origin, error))
                                return -EINVAL;
                }
        }
        return 0;
}

static int load_env(Config *c, char **envp, GError **error)
{
        for (char **e = envp; e && *e; e++) {
                if (!g_str_has_prefix(*e, CONFIG_ENV_PREFIX))
                        continue;
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                g_autofree char *var = g_strndup(*e, eq - *e);
                g_autofree char *name = g_ascii_strdown(var + strlen(CONFIG_ENV_PREFIX), -1);
                const KeyDef *k = find_key(name);
                if (!k) {
                        g_autofree char *known = known_keys();
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Unknown environment variable %s: configuration variables "
                                    "are " CONFIG_ENV_PREFIX "<KEY> for the keys %s",
                                    var, known);
                        return -EINVAL;
                }
                g_autofree char *origin = g_strdup_printf("from the environment variable %s", var);
                if (!set_key(c, k, eq + 1, origin, error))
                        return -EINVAL;
        }
        return 0;
}

int config_load(const char *path, char **envp, Config **ret, GError **error)
{
        g_autoptr(Config) c = config_new_defaults();
        int r;

        r = load_file(c, path ?: CONFIG_DEFAULT_PATH, path != NULL, error);
        if (r < 0)
                return r;
        r = load_env(c, envp ?: environ, error);
        if (r < 0)
                return r;

        if (!c->database)
                c->database = g_strdup_printf("sqlite://%s/netmaker.db", c->state_directory);
        if (c->admin_password && !c->admin_user)
                c->admin_user = g_strdup("admin");
        if (c->broker_url && !c->broker_password)
                c->broker_password = g_strdup("");
        if (!c->tls_certificate != !c->tls_key) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "tls_certificate and tls_key go together: set both (or neither, for a self-signed "
                        "certificate made in %s/tls)",
                        c->state_directory);
                return -EINVAL;
        }
        if (!c->udp_listen) {
                /* The API's address; a free port when the API takes one (tests, development). */
                c->udp_family = c->listen_family;
                c->udp_addr = c->listen_addr;
                c->udp_port = c->listen_port == 0 ? 0 : 3478;
        }
        if (c->host_stale_after <= c->host_offline_after) {
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "host_stale_after (%u s) must be longer than host_offline_after (%u s): a host is "
                        "offline first, stale later",
                        c->host_stale_after, c->host_offline_after);
                return -EINVAL;
        }
        if (c->broker_certificate && c->broker_ca_file) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "broker_certificate (pin the broker's key) and broker_ca_file (trust its CA) "
                            "exclude "
                            "each other: set one");
                return -EINVAL;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

char *config_help_text(void)
{
        g_autoptr(GString) s = g_string_new(NULL);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const KeyDef *k = &keys[i];
                g_autofree char *env = g_ascii_strup(k->name, -1);
                g_string_append_printf(s, "  %-22s $%s%s, default %s\n      %s\n", k->name,
                                       CONFIG_ENV_PREFIX, env, k->default_text, k->help);
        }
        return g_string_free(TAKE_PTR(s), false);
}
