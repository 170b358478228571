/* netclientd's configuration sources and their precedence. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-config.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"
#include "stun.h"

#define USEC_PER_SEC 1000000ULL

typedef struct Setting {
        const char *group;
        const char *key;
        const char *env;
} Setting;

static const Setting settings[] = {
        {"Daemon", "LogLevel", "NETCLIENTD_LOG_LEVEL"},
        {"Daemon", "StateDirectory", "NETCLIENTD_STATE_DIR"},
        {"Daemon", "HostName", "NETCLIENTD_HOST_NAME"},
        {"Daemon", "CheckinIntervalSec", "NETCLIENTD_CHECKIN_INTERVAL"},
        {"Daemon", "StatsIntervalSec", "NETCLIENTD_STATS_INTERVAL"},
        {"Daemon", "HTTPTimeoutSec", "NETCLIENTD_HTTP_TIMEOUT"},
        {"Daemon", "STUNServers", "NETCLIENTD_STUN_SERVERS"},
        {"WireGuard", "Backend", "NETCLIENTD_WG_BACKEND"},
        {"WireGuard", "WireGuardGo", "NETCLIENTD_WIREGUARD_GO"},
        {"WireGuard", "UAPISocketDirectory", "NETCLIENTD_UAPI_DIR"},
        {"DNS", "ResponderPort", "NETCLIENTD_DNS_PORT"},
        {"Server", "CAFile", "NETCLIENTD_CA_FILE"},
        {"Server", "Insecure", "NETCLIENTD_INSECURE"},
};

Config *config_new(void)
{
        Config *c = g_new0(Config, 1);
        c->config_file = g_strdup(NETCLIENTD_DEFAULT_CONFIG);
        /* Under systemd, StateDirectory= says where (the first of a colon-separated list). */
        const char *sd = g_getenv("STATE_DIRECTORY");
        if (sd && g_path_is_absolute(sd))
                c->state_dir = g_strndup(sd, strcspn(sd, ":"));
        else
                c->state_dir = g_strdup(NETCLIENTD_DEFAULT_STATE_DIR);
        c->wg_backend = WG_BACKEND_AUTO;
        c->log_level = LOG_INFO;
        c->checkin_usec = 60 * USEC_PER_SEC;
        c->stats_usec = 5 * USEC_PER_SEC;
        c->http_timeout_usec = 30 * USEC_PER_SEC;
        c->dns_port = 53;
        return c;
}

void config_free(Config *c)
{
        if (!c)
                return;
        g_free(c->config_file);
        g_free(c->state_dir);
        g_free(c->wireguard_go);
        g_free(c->uapi_dir);
        g_free(c->ca_file);
        g_free(c->host_name);
        g_strfreev(c->stun_servers);
        g_free(c);
}

static int parse_seconds(const char *key, const char *value, const char *source, guint64 min, guint64 max,
                         uint64_t *ret, GError **error)
{
        guint64 v;
        if (!g_ascii_string_to_unsigned(value, 10, min, max, &v, NULL)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%.32s\" in %s: expected a whole number of seconds from "
                            "%" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                            key, value, source, min, max);
                return -EINVAL;
        }
        *ret = v * USEC_PER_SEC;
        return 0;
}

static int set_path(char **field, const char *key, const char *value, const char *source, bool allow_name,
                    GError **error)
{
        if (!*value || (!allow_name && !g_path_is_absolute(value)) || strlen(value) > 4096) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%.64s\" in %s: expected an absolute path%s", key, value, source,
                            allow_name ? " or a program name" : "");
                return -EINVAL;
        }
        g_free(*field);
        *field = g_strdup(value);
        return 0;
}

int config_set(Config *c, const char *key, const char *value, const char *source, GError **error)
{
        g_autofree char *v = g_strstrip(g_strdup(value));

        if (streq0(key, "LogLevel")) {
                int l = log_level_from_string(v);
                if (l < 0) {
                        g_set_error(
                                error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                "Invalid LogLevel \"%.32s\" in %s: expected debug, info, notice, warning, "
                                "err or 0-7",
                                v, source);
                        return -EINVAL;
                }
                c->log_level = l;
                return 0;
        }
        if (streq0(key, "StateDirectory"))
                return set_path(&c->state_dir, key, v, source, false, error);
        if (streq0(key, "HostName")) {
                if (!*v) {
                        g_clear_pointer(&c->host_name, g_free);
                        return 0;
                }
                g_autoptr(GError) e = NULL;
                if (!nm_host_name_valid(v, &e)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "%s (%s in %s)", e->message,
                                    key, source);
                        return -EINVAL;
                }
                g_free(c->host_name);
                c->host_name = g_strdup(v);
                return 0;
        }
        if (streq0(key, "CheckinIntervalSec"))
                return parse_seconds(key, v, source, 5, 86400, &c->checkin_usec, error);
        if (streq0(key, "StatsIntervalSec"))
                return parse_seconds(key, v, source, 1, 3600, &c->stats_usec, error);
        if (streq0(key, "HTTPTimeoutSec"))
                return parse_seconds(key, v, source, 1, 600, &c->http_timeout_usec, error);
        if (streq0(key, "STUNServers")) {
                /* Separated by spaces or commas; empty: none. */
                g_auto(GStrv) parts = g_strsplit_set(v, " ,\t", -1);
                GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
                for (char **p = parts; *p; p++) {
                        g_autoptr(GError) e = NULL;
                        if (!**p)
                                continue;
                        if (stun_server_parse(*p, NULL, NULL, &e) < 0 || a->len >= STUN_MAX_SERVERS) {
                                if (!e)
                                        g_set_error(&e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                                    "Too many STUN servers: at most %d are accepted",
                                                    STUN_MAX_SERVERS);
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "%s in %s",
                                            e->message, source);
                                g_ptr_array_unref(a);
                                return -EINVAL;
                        }
                        g_ptr_array_add(a, g_strdup(*p));
                }
                g_strfreev(c->stun_servers);
                c->stun_servers = NULL;
                if (a->len > 0) {
                        g_ptr_array_add(a, NULL);
                        c->stun_servers = (char **)g_ptr_array_free(a, false);
                } else
                        g_ptr_array_unref(a);
                return 0;
        }
        if (streq0(key, "Backend")) {
                g_autoptr(GError) e = NULL;
                if (wg_backend_kind_from_string(v, &c->wg_backend, &e) < 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid Backend \"%.32s\" in %s: expected auto, kernel or userspace", v,
                                    source);
                        return -EINVAL;
                }
                return 0;
        }
        if (streq0(key, "WireGuardGo"))
                return set_path(&c->wireguard_go, key, v, source, true, error);
        if (streq0(key, "UAPISocketDirectory"))
                return set_path(&c->uapi_dir, key, v, source, false, error);
        if (streq0(key, "ResponderPort")) {
                guint64 port;
                if (!g_ascii_string_to_unsigned(v, 10, 1, 65535, &port, NULL)) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid ResponderPort \"%.32s\" in %s: expected a port number 1-65535",
                                    v, source);
                        return -EINVAL;
                }
                c->dns_port = (uint16_t)port;
                return 0;
        }

        if (streq0(key, "CAFile"))
                return set_path(&c->ca_file, key, v, source, false, error);
        if (streq0(key, "Insecure")) {
                static const char *const yes[] = {"yes", "true", "on", "1", NULL};
                static const char *const no[] = {"no", "false", "off", "0", NULL};
                if (g_strv_contains(yes, v))
                        c->insecure = true;
                else if (g_strv_contains(no, v))
                        c->insecure = false;
                else {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Invalid Insecure \"%.32s\" in %s: expected yes or no", v, source);
                        return -EINVAL;
                }
                return 0;
        }

        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Unknown setting \"%.64s\" in %s", key,
                    source);
        return -EINVAL;
}

int config_load_file(Config *c, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) e = NULL;

        if (!g_key_file_load_from_file(kf, c->config_file, G_KEY_FILE_NONE, &e)) {
                if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return 0;
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Failed to read %s: %s",
                            c->config_file, e->message);
                return -EINVAL;
        }

        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                g_auto(GStrv) keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++) {
                        const Setting *s = NULL;
                        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                                if (streq0(settings[i].group, *g) && streq0(settings[i].key, *k))
                                        s = &settings[i];
                        if (!s) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Unknown setting [%.32s] %.64s in %s", *g, *k, c->config_file);
                                return -EINVAL;
                        }
                        g_autofree char *where = g_strdup_printf("%s [%s]", c->config_file, *g);
                        g_autofree char *v = g_key_file_get_string(kf, *g, *k, &e);
                        /* A value GLib cannot read is refused: not UTF-8 it was read as "", which
                         * silently meant the default (CAFile=: the system's CAs); with a bad escape
                         * ("\q") as GLib guessed. */
                        if (!v || e) {
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "Invalid %.64s in %s: %s", *k, where, e->message);
                                return -EINVAL;
                        }
                        int r = config_set(c, *k, v, where, error);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int config_load_env(Config *c, char **envp, GError **error)
{
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                const char *v = envp ? g_environ_getenv(envp, settings[i].env) : g_getenv(settings[i].env);
                if (!v)
                        continue;
                g_autofree char *where = g_strdup_printf("$%s", settings[i].env);
                int r = config_set(c, settings[i].key, v, where, error);
                if (r < 0)
                        return r;
        }
        return 0;
}
