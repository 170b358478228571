/* Validation of user-chosen names and the interface name derived from a network name. */
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "names.h"
#include "nm-error.h"

static char *shown(const char *s)
{
        /* Quote at most 80 characters of possibly hostile input, as valid UTF-8. */
        return g_utf8_make_valid(s, MIN(strlen(s), 80));
}

bool nm_network_name_valid(const char *s, GError **error)
{
        size_t n = s ? strlen(s) : 0;
        bool ok = n >= 1 && n <= NM_NETWORK_NAME_MAX && g_ascii_isalnum(s[0]) && g_ascii_isalnum(s[n - 1]);
        for (size_t i = 0; ok && i < n; i++)
                ok = (g_ascii_isalnum(s[i]) && !g_ascii_isupper(s[i])) || s[i] == '-';
        if (!ok) {
                g_autofree char *v = shown(strempty(s));
                g_set_error(
                        error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                        "Invalid network name \"%s\": use 1-%d characters of a-z, 0-9 and '-', starting and "
                        "ending with a letter or digit",
                        v, NM_NETWORK_NAME_MAX);
        }
        return ok;
}

static bool label_ok(const char *s, size_t n)
{
        if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((g_ascii_isalnum(s[i]) && !g_ascii_isupper(s[i])) || s[i] == '-'))
                        return false;
        return true;
}

bool nm_host_name_valid(const char *s, GError **error)
{
        size_t n = s ? strlen(s) : 0;
        if (s && label_ok(s, n))
                return true;
        g_autofree char *v = nm_shown(strempty(s));
        /* A long name is quoted only in part: say how long it is, so the limit is the obvious cause. */
        size_t chars = s && g_utf8_validate(s, -1, NULL) ? (size_t)g_utf8_strlen(s, -1) : n;
        g_autofree char *length =
                chars > NM_HOST_NAME_MAX ? g_strdup_printf(" (%zu characters)", chars) : NULL;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                    "Invalid host name \"%s\"%s: use 1-%d characters of a-z, 0-9 and '-', not starting or "
                    "ending with '-'",
                    v, strempty(length), NM_HOST_NAME_MAX);
        return false;
}

bool nm_user_name_valid(const char *s, GError **error)
{
        size_t n = s ? strlen(s) : 0;
        bool ok = n >= 1 && n <= NM_USER_NAME_MAX && g_ascii_isalnum(s[0]);
        for (size_t i = 0; ok && i < n; i++)
                ok = g_ascii_isalnum(s[i]) || strchr("._-@", s[i]);
        if (!ok) {
                g_autofree char *v = shown(strempty(s));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid user name \"%s\": use 1-%d characters of letters, digits and . _ - @, "
                            "starting with a letter or digit",
                            v, NM_USER_NAME_MAX);
        }
        return ok;
}

bool nm_label_valid(const char *what, const char *s, guint max, GError **error)
{
        size_t n = s ? strlen(s) : 0;
        bool ok = n >= 1 && n <= max && g_utf8_validate(s, -1, NULL);
        for (size_t i = 0; ok && i < n; i++)
                ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
        if (!ok) {
                g_autofree char *v = shown(strempty(s));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": use 1-%u printable characters", what, v, max);
        }
        return ok;
}

bool nm_dns_domain_valid(const char *s, GError **error)
{
        size_t n = s ? strlen(s) : 0;
        bool ok = n >= 1 && n <= NM_DNS_NAME_MAX;
        const char *p = s;
        while (ok) {
                const char *dot = strchr(p, '.');
                size_t l = dot ? (size_t)(dot - p) : strlen(p);
                ok = label_ok(p, l);
                if (!dot)
                        break;
                p = dot + 1;
        }
        if (!ok) {
                g_autofree char *v = shown(strempty(s));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid DNS domain \"%s\": use dot-separated labels of a-z, 0-9 and '-' "
                            "(at most %d characters)",
                            v, NM_DNS_NAME_MAX);
        }
        return ok;
}

char *nm_host_name_sanitize(const char *s)
{
        GString *g = g_string_new(NULL);
        for (const char *c = s; c && *c && g->len < NM_HOST_NAME_MAX; c++) {
                if (*c == '.')
                        break; /* keep the short host name */
                char ch = g_ascii_tolower(*c);
                g_string_append_c(g, g_ascii_isalnum(ch) ? ch : '-');
        }
        while (g->len && g->str[0] == '-')
                g_string_erase(g, 0, 1);
        while (g->len && g->str[g->len - 1] == '-')
                g_string_truncate(g, g->len - 1);
        if (g->len == 0) {
                g_string_free(g, TRUE);
                return NULL;
        }
        return g_string_free(g, FALSE);
}

void nm_network_ifname(const char *network, char ret[IFNAMSIZ])
{
        size_t n = strlen(network);
        if (n <= IFNAMSIZ - 1 - 3) {
                snprintf(ret, IFNAMSIZ, "nm-%s", network);
                return;
        }
        /* FNV-1a: stable across builds and machines, which is all that matters here. */
        guint32 h = 2166136261u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (guint8)network[i]) * 16777619u;
        snprintf(ret, IFNAMSIZ, "nm-%.7s-%04x", network, h & 0xffff);
}

char *nm_shown(const char *s)
{
        char *v = g_utf8_make_valid(s, MIN(strlen(s), 64));
        for (char *p = v; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        return v;
}
